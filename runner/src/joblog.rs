//! The per-job log file under the log directory: every (masked) line of every attempt, with
//! a header and a footer per attempt. Its size per attempt is bounded by the output cap.
//!
//! A new job's file is the spare one ([`SPARE`]) renamed: creating a file costs an inode
//! allocation (about 0.3 ms on the ext4 of the test machines, more after many deletions),
//! which [`JobLog::prepare_spare`] does for the next job off the job's path.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use outfitter_contract::event::OutputStream;

use crate::output::OutputLine;

/// The empty file kept ready in the log directory for the next job's log.
pub const SPARE: &str = ".spare";

/// Appends to `<log_dir>/<job id>.log`.
#[derive(Debug)]
pub struct JobLog {
    out: BufWriter<File>,
    path: PathBuf,
}

fn stream_name(s: OutputStream) -> &'static str {
    match s {
        OutputStream::Stdout => "stdout",
        OutputStream::Stderr => "stderr",
        OutputStream::Runner => "runner",
    }
}

impl JobLog {
    /// The log file of a job.
    pub fn path_of(dir: &Path, job_id: &str) -> PathBuf {
        dir.join(format!("{job_id}.log"))
    }

    pub fn open(dir: &Path, job_id: &str, header: &str) -> std::io::Result<Self> {
        let path = Self::path_of(dir, job_id);
        // The spare becomes this job's file unless the job has one (an earlier attempt); with
        // no spare (the first job, or two taken at once) the file is created here.
        let _ = nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &dir.join(SPARE),
            nix::fcntl::AT_FDCWD,
            &path,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        );
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(&path)
        };
        // The directory is made when it is missing, not checked on every job.
        let file = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                open()?
            }
            r => r?,
        };
        let mut log = JobLog {
            out: BufWriter::with_capacity(64 * 1024, file),
            path,
        };
        log.note(header);
        Ok(log)
    }

    /// Creates the spare file for the next job's log, if there is none (on a blocking thread:
    /// it is the file creation the next job does not have to wait for).
    pub fn prepare_spare(dir: &Path) -> std::io::Result<()> {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(dir.join(SPARE))
        {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn line(&mut self, ts_ms: i64, line: &OutputLine) {
        let _ = writeln!(
            self.out,
            "{ts_ms} {} {}",
            stream_name(line.stream),
            line.text
        );
    }

    /// A line of the runner's own (header, footer, notes).
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.out, "=== {text}");
    }

    pub fn close(mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_log_directory_is_made_on_first_use_and_attempts_append() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("jobs/deeper");
        JobLog::open(&dir, "j", "attempt 1").unwrap().close();
        JobLog::prepare_spare(&dir).unwrap();
        JobLog::open(&dir, "j", "attempt 2").unwrap().close();
        let text = std::fs::read_to_string(JobLog::path_of(&dir, "j")).unwrap();
        assert_eq!(text, "=== attempt 1\n=== attempt 2\n");
        // The job had its file: the spare waits for the next job.
        assert!(dir.join(SPARE).exists());
    }
}
