//! The per-job log file under the log directory: every (masked) line of every attempt, with
//! a header and a footer per attempt. Its size per attempt is bounded by the output cap.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use outfitter_contract::event::OutputStream;

use crate::output::OutputLine;

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
        std::fs::create_dir_all(dir)?;
        let path = Self::path_of(dir, job_id);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&path)?;
        let mut log = JobLog {
            out: BufWriter::with_capacity(64 * 1024, file),
            path,
        };
        log.note(header);
        Ok(log)
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
