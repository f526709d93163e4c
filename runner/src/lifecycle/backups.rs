//! Backup directories: `<state dir>/backups/<installation_id>/<backup_id>/`, one per backup a
//! job took (a backup job's, or an upgrade's safety backup), private to the runner.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use outfitter_contract::ids::validate_job_id;
use outfitter_contract::lifecycle::is_backup_id;

/// Where the backups live under the state directory.
pub const BACKUPS_DIR: &str = "backups";

/// The backups under one state directory.
#[derive(Debug, Clone)]
pub struct Backups {
    root: PathBuf,
}

impl Backups {
    pub fn new(state_dir: &Path) -> Self {
        Backups {
            root: state_dir.join(BACKUPS_DIR),
        }
    }

    /// The directory of one backup, or why the ids cannot name one.
    pub fn dir(&self, installation_id: &str, backup_id: &str) -> Result<PathBuf, String> {
        if validate_job_id(installation_id).is_err() {
            return Err(format!(
                "lifecycle.installation_id {installation_id:?} is not a canonical UUID"
            ));
        }
        if !is_backup_id(backup_id) {
            return Err(format!(
                "lifecycle.backup_id {backup_id:?} is not a backup id (<job id>.<attempt>)"
            ));
        }
        Ok(self.root.join(installation_id).join(backup_id))
    }

    /// Creates a new, empty backup directory (0700); one a crashed attempt left is emptied.
    pub fn create(&self, installation_id: &str, backup_id: &str) -> io::Result<PathBuf> {
        let dir = self
            .dir(installation_id, backup_id)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        Ok(dir)
    }

    /// Discards a backup that never completed (the job is starting over).
    pub fn discard(&self, installation_id: &str, backup_id: &str) {
        if let Ok(dir) = self.dir(installation_id, backup_id)
            && let Err(e) = fs::remove_dir_all(&dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(backup = backup_id, error = %e, "cannot discard a partial backup");
        }
    }
}
