//! Mounted file systems backed by a block device: size from `statvfs`, read and write rates
//! from the device's counters in `/proc/diskstats`.

use std::collections::HashMap;

use outfitter_contract::host_metrics::{Disk, MAX_DISKS};
use procfs::process::{MountInfo, Process};
use procfs::{Current, DiskStats};

use super::per_second;

const MIB: u64 = 1024 * 1024;
/// `/proc/diskstats` counts 512-byte sectors whatever the device's own sector size.
const SECTOR_BYTES: u64 = 512;
/// Loop devices (snaps, images) are files on another disk: counting them counts twice.
const LOOP_MAJOR: u32 = 7;

/// A device as `major:minor`.
pub(crate) type DeviceId = (u32, u32);

/// Sectors read and written per device since boot.
pub(crate) type SectorCounts = HashMap<DeviceId, (u64, u64)>;

/// One block-device mount: where, and which device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockMount {
    pub mount: String,
    pub device: DeviceId,
}

/// The block-device mounts of this mount namespace, each device once (at its shortest mount
/// point: `/` rather than a bind mount of a directory of it).
pub(crate) fn block_mounts() -> Vec<BlockMount> {
    let infos = match Process::myself().and_then(|p| p.mountinfo()) {
        Ok(m) => m.0,
        Err(e) => {
            tracing::debug!(error = %e, "host metrics: mountinfo unreadable");
            return Vec::new();
        }
    };
    select(&infos)
}

pub(crate) fn select(infos: &[MountInfo]) -> Vec<BlockMount> {
    let mut by_device: HashMap<DeviceId, String> = HashMap::new();
    for m in infos {
        let from_device = m
            .mount_source
            .as_deref()
            .is_some_and(|s| s.starts_with("/dev/"));
        let Some(device) = parse_majmin(&m.majmin) else {
            continue;
        };
        if !from_device || device.0 == 0 || device.0 == LOOP_MAJOR {
            continue;
        }
        let mount = m.mount_point.to_string_lossy().into_owned();
        by_device
            .entry(device)
            .and_modify(|kept| {
                if mount.len() < kept.len() {
                    kept.clone_from(&mount);
                }
            })
            .or_insert(mount);
    }
    by_device
        .into_iter()
        .map(|(device, mount)| BlockMount { mount, device })
        .collect()
}

fn parse_majmin(s: &str) -> Option<DeviceId> {
    let (major, minor) = s.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Sectors read and written of every device now (empty when unreadable).
pub(crate) fn sector_counts() -> SectorCounts {
    match DiskStats::current() {
        Ok(stats) => stats
            .0
            .into_iter()
            .map(|d| {
                (
                    (d.major as u32, d.minor as u32),
                    (d.sectors_read, d.sectors_written),
                )
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "host metrics: /proc/diskstats unreadable");
            SectorCounts::new()
        }
    }
}

/// The disks, largest first, at most [`MAX_DISKS`]; rates over `elapsed_s` since `prev`
/// (0 without it). A mount `statvfs` cannot read is left out.
pub(crate) fn disks(
    mounts: &[BlockMount],
    prev: Option<&SectorCounts>,
    now: &SectorCounts,
    elapsed_s: f64,
) -> Vec<Disk> {
    let mut out: Vec<Disk> = mounts
        .iter()
        .filter_map(|m| {
            let vfs = nix::sys::statvfs::statvfs(m.mount.as_str())
                .map_err(|e| tracing::debug!(mount = %m.mount, error = %e, "host metrics: statvfs"))
                .ok()?;
            let block = vfs.fragment_size();
            let (read, written) = now.get(&m.device).copied().unwrap_or_default();
            let (read0, written0) = prev
                .and_then(|p| p.get(&m.device).copied())
                .unwrap_or((read, written));
            Some(Disk {
                mount: m.mount.clone(),
                total_mb: vfs.blocks() * block / MIB,
                used_mb: vfs.blocks().saturating_sub(vfs.blocks_free()) * block / MIB,
                free_mb: vfs.blocks_available() * block / MIB,
                read_bytes_per_s: per_second(read0, read, elapsed_s) * SECTOR_BYTES as f64,
                write_bytes_per_s: per_second(written0, written, elapsed_s) * SECTOR_BYTES as f64,
            })
        })
        .collect();
    out.sort_by(|a, b| b.total_mb.cmp(&a.total_mb).then(a.mount.cmp(&b.mount)));
    out.truncate(MAX_DISKS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(line: &str) -> MountInfo {
        MountInfo::from_line(line).unwrap()
    }

    #[test]
    fn one_mount_per_block_device_and_no_pseudo_or_loop_file_systems() {
        let infos = [
            info("22 27 0:21 / /proc rw,relatime - proc proc rw"),
            info("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw"),
            info("50 27 254:0 /srv/x /var/lib/x rw,relatime - ext4 /dev/vda rw"),
            info("51 27 7:3 / /snap/core/1 ro,relatime - squashfs /dev/loop3 ro"),
            info("52 27 254:1 / /boot rw,relatime - ext4 /dev/vda1 rw"),
            info("47 27 0:40 / /var/c/root rw,relatime - overlay overlay rw,lowerdir=/a"),
        ];
        let mut got = select(&infos);
        got.sort_by(|a, b| a.mount.cmp(&b.mount));
        assert_eq!(
            got,
            vec![
                BlockMount {
                    mount: "/".into(),
                    device: (254, 0)
                },
                BlockMount {
                    mount: "/boot".into(),
                    device: (254, 1)
                },
            ]
        );
    }
}
