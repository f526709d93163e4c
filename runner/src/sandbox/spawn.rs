//! Starting a script: cleared environment, stdin /dev/null, piped output, own process group,
//! and, between fork and exec, cgroup membership, close-on-exec for every inherited fd,
//! `no_new_privs` and rlimits.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::config::Limits;

/// The interpreter of install scripts.
pub const SHELL: &str = "/bin/bash";

/// What bash runs: a script file of the bundle, or a command line (a health check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// `bash <script>`.
    Script(PathBuf),
    /// `bash -c <command>`.
    Command(String),
}

impl std::fmt::Display for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Program::Script(p) => write!(f, "{}", p.display()),
            Program::Command(c) => write!(f, "-c {c:?}"),
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: Program,
    pub cwd: PathBuf,
    /// The whole environment of the script; nothing else is inherited.
    pub env: Vec<(String, String)>,
    /// `cgroup.procs` files to join before exec.
    pub cgroup_procs: Vec<PathBuf>,
}

/// Everything `pre_exec` needs, prepared before the fork (no allocation after it).
struct PreExec {
    cgroup_procs: Vec<CString>,
    file_size: libc::rlim_t,
    open_files: libc::rlim_t,
}

impl PreExec {
    /// Runs in the child between fork and exec: only async-signal-safe calls.
    fn apply(&self) -> std::io::Result<()> {
        // A cgroup that was made but cannot be joined (seen inside systemd-nspawn containers,
        // whose cgroup files the runner can create but not enter) does not stop the script: it
        // runs in its own process group with the job marker, the kill paths that need no
        // cgroup, as it does with `cgroups = false`.
        // SAFETY: open/write/close on prepared C strings are async-signal-safe.
        unsafe {
            for path in &self.cgroup_procs {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    libc::write(fd, b"0".as_ptr().cast(), 1);
                    libc::close(fd);
                }
            }
        }
        close_inherited_fds();
        // SAFETY: prctl and setrlimit are plain system calls.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        lower_rlimit(libc::RLIMIT_CORE, 0)?;
        lower_rlimit(libc::RLIMIT_FSIZE, self.file_size)?;
        lower_rlimit(libc::RLIMIT_NOFILE, self.open_files)?;
        Ok(())
    }
}

/// Marks every fd from 3 up close-on-exec, so nothing the runner inherited or opened reaches
/// the script (std's own pipes are dup2'ed onto 0–2 first).
fn close_inherited_fds() {
    // SAFETY: close_range and fcntl are plain system calls.
    unsafe {
        let r = libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if r != 0 {
            // Kernels before 5.11: mark them one by one, up to the soft fd limit.
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur.min(1 << 20) as i32
            } else {
                4096
            };
            for fd in 3..max {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}

/// Sets soft and hard limit to `want`, or to the current hard limit if that is lower
/// (raising a hard limit needs CAP_SYS_RESOURCE).
fn lower_rlimit(resource: libc::__rlimit_resource_t, want: libc::rlim_t) -> std::io::Result<()> {
    // SAFETY: getrlimit/setrlimit on a stack struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(resource, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let value = want.min(lim.rlim_max);
        let new = libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        if libc::setrlimit(resource, &new) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn c_path(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path holds a NUL byte"))
}

/// Starts `bash <script>` (or `bash -c <command>`) in the sandbox (through [`super::sys::Sys::spawn`]).
pub fn spawn(launch: &Launch, limits: &Limits) -> std::io::Result<Child> {
    let pre = PreExec {
        cgroup_procs: launch
            .cgroup_procs
            .iter()
            .map(|p| c_path(p))
            .collect::<Result<_, _>>()?,
        file_size: limits.file_size_max_bytes as libc::rlim_t,
        open_files: limits.open_files_max as libc::rlim_t,
    };
    let mut cmd = Command::new(SHELL);
    match &launch.program {
        Program::Script(script) => cmd.arg(script),
        Program::Command(line) => cmd.arg("-c").arg(line),
    };
    cmd.current_dir(&launch.cwd)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    // SAFETY: `apply` only makes async-signal-safe system calls on data prepared above.
    unsafe {
        cmd.pre_exec(move || pre.apply());
    }
    cmd.spawn()
}
