//! A private cgroup directory per container, in every hierarchy nspawn and the cleanup need.
//!
//! Started from the root cgroup, systemd-nspawn creates `payload`/`supervisor` beside itself,
//! and two parallel runs would collide there; each container therefore starts inside its own
//! directory `<current cgroup>/outfitter-conformance/<name>` of each hierarchy. The v2
//! directory's `cgroup.kill` is the last-resort cleanup that reaches every process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Hierarchies the container joins, by their key in `/proc/self/cgroup`
/// ("" is the v2 hierarchy). cpuset is left out: a new v1 cpuset starts empty.
const WANTED: &[&str] = &["", "name=systemd", "pids", "memory"];
/// Directory grouping every container of every run, below the current cgroup.
const GROUP: &str = "outfitter-conformance";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no cgroup v2 hierarchy is mounted; cannot guarantee cleanup")]
    NoUnified,
}

/// One mounted hierarchy: its key in `/proc/self/cgroup` and its mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    key: String,
    mount: PathBuf,
}

/// The container's directories; removed again by [`ContainerCgroup::remove`].
#[derive(Debug)]
pub struct ContainerCgroup {
    dirs: Vec<PathBuf>,
    unified: PathBuf,
}

impl ContainerCgroup {
    /// Creates `<name>` in every wanted hierarchy the host mounts.
    pub fn create(name: &str) -> Result<Self, CgroupError> {
        let mountinfo = read("/proc/self/mountinfo")?;
        let membership = read("/proc/self/cgroup")?;
        let hierarchies = parse_mountinfo(&mountinfo);
        let mut dirs = Vec::new();
        let mut unified = None;
        for line in membership.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(key), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if !WANTED.contains(&key) {
                continue;
            }
            let Some(h) = hierarchies.iter().find(|h| h.key == key) else {
                continue;
            };
            let dir = h
                .mount
                .join(path.trim_start_matches('/'))
                .join(GROUP)
                .join(name);
            std::fs::create_dir_all(&dir).map_err(|source| CgroupError::Create {
                path: dir.clone(),
                source,
            })?;
            if key.is_empty() {
                unified = Some(dir.clone());
            }
            dirs.push(dir);
        }
        let unified = unified.ok_or(CgroupError::NoUnified)?;
        Ok(Self { dirs, unified })
    }

    /// The `cgroup.procs` files a process writes its pid into to join the container's cgroup.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// The pid of the container's init (systemd), once nspawn has started it.
    pub fn init_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.unified.join("payload/init.scope/cgroup.procs"))
            .or_else(|_| std::fs::read_to_string(self.unified.join("payload/cgroup.procs")))
            .ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// True while any process is left anywhere below the container's v2 directory.
    pub fn populated(&self) -> bool {
        std::fs::read_to_string(self.unified.join("cgroup.events"))
            .map(|events| events.lines().any(|l| l == "populated 1"))
            .unwrap_or(false)
    }

    /// Kills everything inside (setsid escapees included) and waits until it is empty.
    pub fn kill_all(&self, wait: Duration) {
        let _ = std::fs::write(self.unified.join("cgroup.kill"), "1");
        let deadline = Instant::now() + wait;
        while self.populated() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Removes the directories, children first; also the empty group directories above.
    pub fn remove(&self) {
        for dir in &self.dirs {
            remove_tree(dir);
            if let Some(group) = dir.parent() {
                // Fails while another run still has a container there; that is fine.
                let _ = std::fs::remove_dir(group);
            }
        }
    }
}

fn read(path: &str) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.into(),
        source,
    })
}

/// cgroup directories are removed with rmdir, deepest first (their files cannot be unlinked).
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Mounted cgroup hierarchies: v1 keyed by their controllers (`cpu,cpuacct`, `name=systemd`),
/// v2 keyed by "".
fn parse_mountinfo(mountinfo: &str) -> Vec<Hierarchy> {
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        // <id> <parent> <maj:min> <root> <mount point> <options> [optional…] - <fstype> <source> <super options>
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut left_fields = left.split(' ');
        let Some(mount) = left_fields.nth(4) else {
            continue;
        };
        let mut right_fields = right.split(' ');
        let (Some(fstype), Some(_source), Some(options)) = (
            right_fields.next(),
            right_fields.next(),
            right_fields.next(),
        ) else {
            continue;
        };
        let key = match fstype {
            "cgroup2" => String::new(),
            "cgroup" => options
                .split(',')
                .filter(|o| *o != "rw" && *o != "ro")
                .collect::<Vec<_>>()
                .join(","),
            _ => continue,
        };
        found.push(Hierarchy {
            key,
            mount: PathBuf::from(mount),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_mountinfo_yields_v1_and_v2_hierarchies() {
        let found = parse_mountinfo(HYBRID);
        let keys: Vec<&str> = found.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["cpu", "memory", "name=systemd", ""]);
        assert_eq!(found[3].mount, PathBuf::from("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn pure_v2_mountinfo_yields_one_hierarchy() {
        let found =
            parse_mountinfo("25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        assert_eq!(
            found,
            [Hierarchy {
                key: String::new(),
                mount: PathBuf::from("/sys/fs/cgroup")
            }]
        );
    }
}
