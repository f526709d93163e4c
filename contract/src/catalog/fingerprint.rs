//! What a valid bundle's files looked like when they were read (one `lstat` per file, and a
//! `stat` behind a symlinked manifest; nothing is read), so a rescan can tell that a bundle
//! is unchanged without parsing it again.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::file_stamp::FileStamp;
pub use crate::file_stamp::SETTLE;
use crate::manifest::{Bundle, MANIFEST_FILE};

/// The stamps of every file [`crate::manifest::check_bundle`] read for one valid bundle: the
/// manifest, the install script and each lifecycle script, in [`Bundle`] order.
#[derive(Debug, Clone)]
pub(super) struct Fingerprint {
    /// The manifest's own `lstat`, and the file's `stat` when the manifest is a symlink.
    manifest: (FileStamp, Option<FileStamp>),
    /// Each script's `lstat` (never a symlink: see [`Fingerprint::of`]).
    scripts: Box<[FileStamp]>,
}

impl Fingerprint {
    /// The bundle's files as they are now, when every one of them last changed at least
    /// `settle` before `started` (the start of the scan that read them). `None` also for a
    /// bundle with a symlinked script: whether the link escapes the bundle depends on more
    /// than the link and its target, so such a bundle is always checked again.
    pub(super) fn of(bundle: &Bundle, started: SystemTime, settle: Duration) -> Option<Self> {
        let settled_before = started.checked_sub(settle)?;
        let manifest_path = bundle.dir.join(MANIFEST_FILE);
        let link = FileStamp::lstat(&manifest_path)?;
        let target = if link.is_symlink() {
            Some(FileStamp::stat(&manifest_path)?)
        } else {
            None
        };
        let mut scripts = Vec::with_capacity(1 + bundle.lifecycle_paths.len());
        for path in bundle.script_paths() {
            let stamp = FileStamp::lstat(path)?;
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
        if FileStamp::lstat(&manifest_path) != Some(self.manifest.0) {
            return false;
        }
        if let Some(target) = self.manifest.1
            && FileStamp::stat(&manifest_path) != Some(target)
        {
            return false;
        }
        let paths: Vec<&Path> = bundle.script_paths().collect();
        paths.len() == self.scripts.len()
            && paths
                .iter()
                .zip(self.scripts.iter())
                .all(|(path, stamp)| FileStamp::lstat(path) == Some(*stamp))
    }

    fn stamps(&self) -> impl Iterator<Item = &FileStamp> {
        std::iter::once(&self.manifest.0)
            .chain(self.manifest.1.as_ref())
            .chain(self.scripts.iter())
    }
}
