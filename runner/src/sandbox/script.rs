//! A started script as the sandbox holds it: its pid, a pidfd that becomes readable when it
//! exits (so waiting needs neither SIGCHLD nor tokio's child reaper), and its output pipes.

#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

/// A script started by [`super::spawn::spawn`].
#[derive(Debug)]
pub struct Script {
    pid: i32,
    pidfd: AsyncFd<OwnedFd>,
    pub stdout: Option<pipe::Receiver>,
    pub stderr: Option<pipe::Receiver>,
    status: Option<ExitStatus>,
}

impl Script {
    pub(super) fn new(
        pid: i32,
        pidfd: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> std::io::Result<Self> {
        // SAFETY: an OwnedFd stays open and the same until the AsyncFd drops it.
        let pidfd = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Script {
            pid,
            pidfd,
            stdout: Some(pipe::Receiver::from_owned_fd(stdout)?),
            stderr: Some(pipe::Receiver::from_owned_fd(stderr)?),
            status: None,
        })
    }

    /// The script's pid, which is also its process group.
    pub fn id(&self) -> i32 {
        self.pid
    }

    /// Waits for the script to exit and reaps it; cancel-safe (the status is kept once read).
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            let mut ready = self.pidfd.readable().await?;
            match reap(self.pidfd.get_ref(), libc::WNOHANG)? {
                Some(status) => self.status = Some(status),
                None => ready.clear_ready(),
            }
        }
    }
}

/// `waitid(P_PIDFD, WEXITED | flags)`: the exit status, or `None` while it runs (`WNOHANG`).
pub(super) fn reap(pidfd: &OwnedFd, flags: libc::c_int) -> std::io::Result<Option<ExitStatus>> {
    // SAFETY: waitid fills a zeroed siginfo_t owned by this frame.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | flags,
        );
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if info.si_pid() == 0 {
            return Ok(None);
        }
        // Back to the wait-status encoding ExitStatus holds.
        let raw = match info.si_code {
            libc::CLD_EXITED => (info.si_status() & 0xff) << 8,
            libc::CLD_DUMPED => info.si_status() | 0x80,
            _ => info.si_status(),
        };
        Ok(Some(ExitStatus::from_raw(raw)))
    }
}
