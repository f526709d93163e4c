//! A file's identity and times from one `lstat` (or `stat`), and how long a change must be
//! past before they can stand for the file's content: the catalog's rescan and the runner's
//! per-job digest check both skip reading a file whose stamp is the one it had when read.

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long before a read a file must last have changed (by its change time, which no
/// program can set) for its stamp to stand for what was read. File times come from a coarse
/// clock (one kernel tick; 2 s on FAT; the server's clock on NFS), so a file rewritten in the
/// same tick as it was read, with the same length, would otherwise look unchanged.
pub const SETTLE: Duration = Duration::from_secs(2);

/// One file's identity and times: device, inode, type and permissions, length, and the
/// modification and change times to the nanosecond. An edit in place changes the change
/// time, a replacement the inode, a file turned into a symlink the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    mode: u32,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// The file-type bits of `st_mode`, and the type of a symlink (POSIX values, as on Linux).
const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;

impl FileStamp {
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

    /// The stamp of `path` itself (a symlink's own), or `None` when it cannot be read.
    pub fn lstat(path: &Path) -> Option<Self> {
        fs::symlink_metadata(path).ok().map(|m| Self::of(&m))
    }

    /// The stamp of what `path` leads to, or `None` when it cannot be read.
    pub fn stat(path: &Path) -> Option<Self> {
        fs::metadata(path).ok().map(|m| Self::of(&m))
    }

    /// Whether this is a symlink's own stamp (its target can change under it).
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// Whether the file last changed before `before`.
    pub fn changed_before(&self, before: SystemTime) -> bool {
        let (secs, nanos) = self.ctime;
        let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else {
            return false;
        };
        SystemTime::UNIX_EPOCH + Duration::new(secs, nanos) < before
    }
}
