//! What a valid bundle's files looked like when they were read (one `lstat` per file, and a
//! `stat` behind a symlinked manifest; nothing is read), so a rescan can tell that a bundle
//! is unchanged without parsing it again.

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::manifest::{Bundle, MANIFEST_FILE};

/// How long before a scan started a bundle's files must last have changed (by their change
/// time, which no program can set) for the next rescan to take the bundle over. File times
/// come from a coarse clock (one kernel tick; 2 s on FAT; the server's clock on NFS), so a
/// file rewritten in the same tick as it was read, with the same length, would otherwise look
/// unchanged. A bundle edited within this window is simply checked again next time.
pub const SETTLE: Duration = Duration::from_secs(2);

/// One file's identity and times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    /// File type and permissions: a file replaced by a symlink differs here.
    mode: u32,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(metadata: &Metadata) -> Self {
        Self {
            dev: metadata.dev(),
            ino: metadata.ino(),
            mode: metadata.mode(),
            len: metadata.len(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    fn lstat(path: &Path) -> Option<Self> {
        fs::symlink_metadata(path).ok().map(|m| Self::of(&m))
    }

    fn stat(path: &Path) -> Option<Self> {
        fs::metadata(path).ok().map(|m| Self::of(&m))
    }

    fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// Whether the file last changed before `before`.
    fn changed_before(&self, before: SystemTime) -> bool {
        let (secs, nanos) = self.ctime;
        let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else {
            return false;
        };
        SystemTime::UNIX_EPOCH + Duration::new(secs, nanos) < before
    }
}

/// The stamps of every file [`crate::manifest::check_bundle`] read for one valid bundle: the
/// manifest, the install script and each lifecycle script, in [`Bundle`] order.
#[derive(Debug, Clone)]
pub(super) struct Fingerprint {
    /// The manifest's own `lstat`, and the file's `stat` when the manifest is a symlink.
    manifest: (Stamp, Option<Stamp>),
    /// Each script's `lstat` (never a symlink: see [`Fingerprint::of`]).
    scripts: Box<[Stamp]>,
}

impl Fingerprint {
    /// The bundle's files as they are now, when every one of them last changed at least
    /// `settle` before `started` (the start of the scan that read them). `None` also for a
    /// bundle with a symlinked script: whether the link escapes the bundle depends on more
    /// than the link and its target, so such a bundle is always checked again.
    pub(super) fn of(bundle: &Bundle, started: SystemTime, settle: Duration) -> Option<Self> {
        let settled_before = started.checked_sub(settle)?;
        let manifest_path = bundle.dir.join(MANIFEST_FILE);
        let link = Stamp::lstat(&manifest_path)?;
        let target = if link.is_symlink() {
            Some(Stamp::stat(&manifest_path)?)
        } else {
            None
        };
        let mut scripts = Vec::with_capacity(1 + bundle.lifecycle_paths.len());
        for path in script_paths(bundle) {
            let stamp = Stamp::lstat(path)?;
            if stamp.is_symlink() {
                return None;
            }
            scripts.push(stamp);
        }
        let fingerprint = Self {
            manifest: (link, target),
            scripts: scripts.into_boxed_slice(),
        };
        let settled = fingerprint
            .stamps()
            .all(|s| s.changed_before(settled_before));
        settled.then_some(fingerprint)
    }

    /// Whether every file of `bundle` still has the stamp it had when it was read; a missing
    /// file or any difference means the bundle must be checked again.
    pub(super) fn unchanged(&self, bundle: &Bundle) -> bool {
        let manifest_path = bundle.dir.join(MANIFEST_FILE);
        if Stamp::lstat(&manifest_path) != Some(self.manifest.0) {
            return false;
        }
        if let Some(target) = self.manifest.1
            && Stamp::stat(&manifest_path) != Some(target)
        {
            return false;
        }
        let paths: Vec<&Path> = script_paths(bundle).collect();
        paths.len() == self.scripts.len()
            && paths
                .iter()
                .zip(self.scripts.iter())
                .all(|(path, stamp)| Stamp::lstat(path) == Some(*stamp))
    }

    fn stamps(&self) -> impl Iterator<Item = &Stamp> {
        std::iter::once(&self.manifest.0)
            .chain(self.manifest.1.as_ref())
            .chain(self.scripts.iter())
    }
}

/// The install script, then each lifecycle script.
fn script_paths(bundle: &Bundle) -> impl Iterator<Item = &Path> {
    std::iter::once(bundle.script_path.as_path())
        .chain(bundle.lifecycle_paths.iter().map(|(_, p)| p.as_path()))
}

/// The file-type bits of `st_mode`, and the type of a symlink (POSIX values, as on Linux).
const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;
