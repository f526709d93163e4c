//! The crash journal of an upgrade (`<state dir>/lifecycle/<job_id>.json`): the phase it
//! entered, the backup it took and the bundle it leaves, written to disk before each phase
//! starts, so the re-run after a crash knows whether to start over or roll back.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use outfitter_contract::lifecycle::{Phase, PreviousBundle};
use serde::{Deserialize, Serialize};

/// Where the journals live under the state directory.
pub const JOURNAL_DIR: &str = "lifecycle";

/// What an upgrade had reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub phase: Phase,
    /// The safety backup (taken, or being taken in [`Phase::BackingUp`]).
    pub backup_id: Option<String>,
    pub previous: PreviousBundle,
}

impl Entry {
    /// Whether the installation may have changed: a re-run must roll back rather than
    /// start over.
    pub fn past_backup(&self) -> bool {
        self.phase != Phase::BackingUp
    }
}

/// The journals under one state directory.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(state_dir: &Path) -> Self {
        Journal {
            dir: state_dir.join(JOURNAL_DIR),
        }
    }

    fn path(&self, job_id: &str) -> PathBuf {
        self.dir.join(format!("{job_id}.json"))
    }

    /// The entry a job left, if any (an unreadable one counts as past the backup: the
    /// re-run then rolls back, which is safe either way).
    pub fn read(&self, job_id: &str) -> io::Result<Option<Entry>> {
        match fs::read(self.path(job_id)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the entry durably (temp file, fsync, rename, fsync of the directory) before
    /// the phase it names starts.
    pub fn write(&self, job_id: &str, entry: &Entry) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path(job_id);
        let tmp = path.with_extension("json.tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(entry).map_err(io::Error::other)?)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        fs::File::open(&self.dir)?.sync_all()
    }

    /// The job ended: nothing is left to recover.
    pub fn remove(&self, job_id: &str) {
        if let Err(e) = fs::remove_file(self.path(job_id))
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(job = job_id, error = %e, "cannot remove the upgrade journal");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_survives_until_removed_and_says_whether_to_roll_back() {
        let state = tempfile::tempdir().unwrap();
        let journal = Journal::new(state.path());
        let job = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(journal.read(job).unwrap(), None);
        let mut entry = Entry {
            phase: Phase::BackingUp,
            backup_id: Some(format!("{job}.1")),
            previous: PreviousBundle {
                version: "1.0.0".into(),
                digest: "ab".repeat(32),
            },
        };
        journal.write(job, &entry).unwrap();
        assert!(!journal.read(job).unwrap().unwrap().past_backup());
        entry.phase = Phase::Running;
        journal.write(job, &entry).unwrap();
        let read = journal.read(job).unwrap().unwrap();
        assert_eq!(read, entry);
        assert!(read.past_backup());
        journal.remove(job);
        assert_eq!(journal.read(job).unwrap(), None);
    }
}
