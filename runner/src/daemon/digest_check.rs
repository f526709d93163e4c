//! The per-job check that a bundle's files on disk still hash to the digest the panel
//! validated, without reading and hashing them again while they are provably unchanged.
//!
//! A bundle's files are read and hashed when first used, and again whenever one of them is
//! not exactly as it was then. "Exactly" is the file's whole identity and times from one
//! `lstat`: device, inode, type and mode, length, and mtime and ctime to the nanosecond.
//! Rewriting a file in place changes its ctime (no program can set it back), replacing it
//! changes its inode, so an edit of the same length is noticed. Two cases are always read
//! again: a symlinked file (its target can change without the link changing), and a file
//! whose ctime is less than [`SETTLE`] older than the read (file times come from a coarse
//! clock, so a rewrite in the same tick as the read could carry the same times).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use outfitter_contract::file_stamp::FileStamp;
use outfitter_contract::file_stamp::SETTLE;
use outfitter_contract::manifest::{Bundle, MANIFEST_FILE};

/// Every file the digest covers, in digest order.
fn files_of(bundle: &Bundle) -> Vec<PathBuf> {
    std::iter::once(bundle.dir.join(MANIFEST_FILE))
        .chain(bundle.script_paths().map(Path::to_path_buf))
        .collect()
}

/// Every file's own stamp; `None` when one cannot be stat'ed or is a symlink (its target
/// can change under an unchanged link): those bundles are always read.
fn stamps(files: &[PathBuf]) -> Option<Vec<FileStamp>> {
    files
        .iter()
        .map(|f| FileStamp::lstat(f).filter(|s| !s.is_symlink()))
        .collect()
}

/// The stamps of each bundle (by directory and digest) whose files last hashed to its digest.
#[derive(Debug, Default)]
pub struct DigestCheck {
    verified: Mutex<HashMap<(PathBuf, String), Vec<FileStamp>>>,
}

impl DigestCheck {
    /// Whether `bundle`'s files on disk hash to `bundle.digest` (see the module comment for
    /// when that is known without reading them).
    pub fn matches(&self, bundle: &Bundle) -> bool {
        let files = files_of(bundle);
        let key = (bundle.dir.clone(), bundle.digest.clone());
        let now = stamps(&files);
        if let Some(now) = &now
            && self
                .verified
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                == Some(now)
        {
            return true;
        }
        let read_at = SystemTime::now();
        let ok = bundle.digest_on_disk().is_ok_and(|d| d == bundle.digest);
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        verified.remove(&key);
        // The stamps from before the read stand for what was read only if nothing changed
        // while it was read, and every file had settled before.
        if ok
            && let Some(before) = now
            && stamps(&files).as_ref() == Some(&before)
            && before.iter().all(|s| s.changed_before(read_at - SETTLE))
        {
            verified.insert(key, before);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use outfitter_contract::manifest::load_bundle;

    /// A copy of the `happy` test bundle (a scratch copy: the tests edit its files).
    fn bundle_in(dir: &Path) -> Bundle {
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bundles/happy");
        let app = dir.join("happy");
        fs::create_dir_all(&app).unwrap();
        for f in [MANIFEST_FILE, "install.sh"] {
            fs::copy(from.join(f), app.join(f)).unwrap();
        }
        load_bundle(&app).expect("bundle loads")
    }

    fn settled() {
        std::thread::sleep(SETTLE + Duration::from_millis(100));
    }

    #[test]
    fn an_edit_of_the_same_length_is_noticed_after_the_stamps_were_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = bundle_in(tmp.path());
        settled();
        let check = DigestCheck::default();
        assert!(check.matches(&bundle));
        assert_eq!(check.verified.lock().unwrap().len(), 1, "stamps kept");
        assert!(check.matches(&bundle));
        // Same length, same mtime as before: only ctime (and content) differ.
        let script = &bundle.script_path;
        let mtime = fs::metadata(script).unwrap().modified().unwrap();
        let mut text = fs::read(script).unwrap();
        text[0] ^= 1;
        fs::write(script, &text).unwrap();
        fs::File::options()
            .write(true)
            .open(script)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(!check.matches(&bundle));
        assert!(check.verified.lock().unwrap().is_empty());
    }

    #[test]
    fn a_file_changed_within_the_settle_time_is_read_every_time() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = bundle_in(tmp.path());
        let check = DigestCheck::default();
        assert!(check.matches(&bundle));
        assert!(check.verified.lock().unwrap().is_empty(), "not settled");
        fs::write(&bundle.script_path, "echo changed\n").unwrap();
        assert!(!check.matches(&bundle));
    }

    #[test]
    fn a_replaced_file_is_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = bundle_in(tmp.path());
        settled();
        let check = DigestCheck::default();
        assert!(check.matches(&bundle));
        let other = tmp.path().join("other.sh");
        fs::copy(&bundle.script_path, &other).unwrap();
        fs::rename(&other, &bundle.script_path).unwrap();
        // Same content under a new inode: read again, still the digest, not kept (too new).
        assert!(check.matches(&bundle));
        assert!(check.verified.lock().unwrap().is_empty());
    }

    #[test]
    fn a_symlinked_script_is_never_trusted_by_its_stamp() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = bundle_in(tmp.path());
        let real = tmp.path().join("real.sh");
        fs::copy(&bundle.script_path, &real).unwrap();
        fs::remove_file(&bundle.script_path).unwrap();
        std::os::unix::fs::symlink(&real, &bundle.script_path).unwrap();
        settled();
        let check = DigestCheck::default();
        assert!(check.matches(&bundle));
        assert!(check.verified.lock().unwrap().is_empty());
        fs::write(&real, "echo changed\n").unwrap();
        assert!(!check.matches(&bundle));
    }
}
