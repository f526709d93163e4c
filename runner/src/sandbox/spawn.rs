//! Starting a script: cleared environment, stdin /dev/null, piped output, own process group,
//! and, between clone and exec, cgroup membership, close-on-exec for every inherited fd,
//! `no_new_privs`, rlimits, default signal handlers and an empty signal mask.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};

use super::script::{self, Script};
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

/// Everything the child does between clone and exec, prepared before the clone: the child
/// shares the runner's memory until it execs (`CLONE_VM | CLONE_VFORK`, what `posix_spawn`
/// does), so it makes only system calls on this data: no allocation, no lock, no unwinding.
struct ChildPlan {
    shell: CString,
    /// Null-terminated pointers into `args`.
    argv: Vec<*const libc::c_char>,
    /// Null-terminated pointers into `vars`.
    envp: Vec<*const libc::c_char>,
    cwd: CString,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    cgroup_procs: Vec<CString>,
    file_size: libc::rlim_t,
    open_files: libc::rlim_t,
    /// Set by a child that could not exec: `stage << 32 | errno`.
    failure: AtomicI64,
    // Owners of what `argv` and `envp` point to.
    _args: Vec<CString>,
    _vars: Vec<CString>,
}

/// Where a child stopped before exec, for the error message.
#[derive(Debug, Clone, Copy)]
#[repr(i64)]
enum Stage {
    ProcessGroup = 1,
    Stdio,
    WorkingDirectory,
    NoNewPrivs,
    Rlimit,
    Exec,
}

impl Stage {
    const ALL: [Stage; 6] = [
        Stage::ProcessGroup,
        Stage::Stdio,
        Stage::WorkingDirectory,
        Stage::NoNewPrivs,
        Stage::Rlimit,
        Stage::Exec,
    ];

    fn from_code(code: i64) -> Stage {
        Stage::ALL
            .into_iter()
            .find(|s| *s as i64 == code)
            .unwrap_or(Stage::Exec)
    }

    fn name(self) -> &'static str {
        match self {
            Stage::ProcessGroup => "setpgid",
            Stage::Stdio => "dup2 of stdin/stdout/stderr",
            Stage::WorkingDirectory => "chdir to the working directory",
            Stage::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS)",
            Stage::Rlimit => "setrlimit",
            Stage::Exec => "execve",
        }
    }
}

impl ChildPlan {
    /// Runs in the child; returns only when something failed, with the stage.
    ///
    /// # Safety
    /// Only in the child of [`start`], whose parent thread is suspended until exec.
    unsafe fn exec(&self) -> Stage {
        // SAFETY: every call below is a plain system call on data prepared in the parent.
        unsafe {
            default_signal_handlers();
            if libc::setpgid(0, 0) != 0 {
                return Stage::ProcessGroup;
            }
            // A cgroup that was made but cannot be joined (seen inside systemd-nspawn
            // containers, whose cgroup files the runner can create but not enter) does not stop
            // the script: it runs in its own process group with the job marker, the kill paths
            // that need no cgroup, as it does with `cgroups = false`.
            for path in &self.cgroup_procs {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    libc::write(fd, b"0".as_ptr().cast(), 1);
                    libc::close(fd);
                }
            }
            // The three are all above 2 (see `above_stdio`), so no dup2 overwrites another.
            if libc::dup2(self.stdin, 0) < 0
                || libc::dup2(self.stdout, 1) < 0
                || libc::dup2(self.stderr, 2) < 0
            {
                return Stage::Stdio;
            }
            if libc::chdir(self.cwd.as_ptr()) != 0 {
                return Stage::WorkingDirectory;
            }
            close_inherited_fds();
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Stage::NoNewPrivs;
            }
            if lower_rlimit(libc::RLIMIT_CORE, 0).is_err()
                || lower_rlimit(libc::RLIMIT_FSIZE, self.file_size).is_err()
                || lower_rlimit(libc::RLIMIT_NOFILE, self.open_files).is_err()
            {
                return Stage::Rlimit;
            }
            // The parent blocked every signal around the clone; the script starts with none.
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::execve(self.shell.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
            Stage::Exec
        }
    }
}

/// The child's own signal table (no `CLONE_SIGHAND`) back to defaults, so no handler of the
/// runner can run in the child on the shared memory once signals are unblocked; SIGPIPE too,
/// which the Rust runtime ignores and a script expects at its default.
///
/// # Safety
/// sigaction on stack structs only.
unsafe fn default_signal_handlers() {
    // SAFETY: sigaction on zeroed stack structs.
    unsafe {
        for sig in 1..=64 {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction == libc::SIG_DFL
                || (old.sa_sigaction == libc::SIG_IGN && sig != libc::SIGPIPE)
            {
                continue;
            }
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &default, std::ptr::null_mut());
        }
    }
}

extern "C" fn child_main(plan: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `start` passes a ChildPlan that outlives the child's use of it (CLONE_VFORK).
    let plan = unsafe { &*(plan as *const ChildPlan) };
    // SAFETY: this is the child of `start`.
    let stage = unsafe { plan.exec() };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    plan.failure
        .store((stage as i64) << 32 | i64::from(errno), Ordering::Relaxed);
    // SAFETY: _exit ends the child without running anything of the parent's.
    unsafe { libc::_exit(127) }
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

fn c_string(bytes: impl Into<Vec<u8>>) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| std::io::Error::other("argument holds a NUL byte"))
}

fn c_path(p: &Path) -> std::io::Result<CString> {
    c_string(p.as_os_str().as_bytes())
}

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// `fd` moved above 0–2 if it landed there (a runner started with closed stdio), so the
/// child's dup2s onto 0–2 cannot overwrite one another.
fn above_stdio(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: fcntl on an fd this function owns; the new one is owned by the result.
    unsafe {
        let moved = libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3);
        if moved < 0 {
            return Err(last_error());
        }
        Ok(OwnedFd::from_raw_fd(moved))
    }
}

/// A pipe, both ends close-on-exec: (read end non-blocking for tokio, write end blocking
/// for the script).
fn output_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds, owned from here on.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(last_error());
        }
        let (read, write) = (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]));
        if libc::fcntl(read.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) != 0 {
            return Err(last_error());
        }
        Ok((above_stdio(read)?, above_stdio(write)?))
    }
}

fn dev_null() -> std::io::Result<OwnedFd> {
    // SAFETY: open of a constant path; the fd is owned from here on.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(last_error());
        }
        above_stdio(OwnedFd::from_raw_fd(fd))
    }
}

/// The child's stack while it shares the runner's memory: the few system calls above need a
/// few KiB; the rest is margin.
const CHILD_STACK: usize = 64 * 1024;

/// Starts `bash <script>` (or `bash -c <command>`) in the sandbox (through [`super::sys::Sys::spawn`]).
///
/// No fork: the child borrows the runner's memory until it execs, so starting a script costs
/// the same whatever the runner's size and leaves no copy-on-write faults behind (see
/// docs/architecture.md, "Starting a script").
pub fn spawn(launch: &Launch, limits: &Limits) -> std::io::Result<Script> {
    let mut args = vec![c_string(SHELL)?];
    match &launch.program {
        Program::Script(script) => args.push(c_path(script)?),
        Program::Command(line) => {
            args.push(c_string("-c")?);
            args.push(c_string(line.as_str())?);
        }
    }
    let vars = launch
        .env
        .iter()
        .map(|(k, v)| c_string(format!("{k}={v}")))
        .collect::<Result<Vec<_>, _>>()?;
    let stdin = dev_null()?;
    let (stdout_read, stdout_write) = output_pipe()?;
    let (stderr_read, stderr_write) = output_pipe()?;
    let plan = ChildPlan {
        shell: args[0].clone(),
        argv: null_terminated(&args),
        envp: null_terminated(&vars),
        cwd: c_path(&launch.cwd)?,
        stdin: stdin.as_raw_fd(),
        stdout: stdout_write.as_raw_fd(),
        stderr: stderr_write.as_raw_fd(),
        cgroup_procs: launch
            .cgroup_procs
            .iter()
            .map(|p| c_path(p))
            .collect::<Result<_, _>>()?,
        file_size: limits.file_size_max_bytes as libc::rlim_t,
        open_files: limits.open_files_max as libc::rlim_t,
        failure: AtomicI64::new(0),
        _args: args,
        _vars: vars,
    };
    let (pid, pidfd) = start(&plan)?;
    // The child has exec'd or exited: its ends of the pipes are the script's alone.
    drop((stdin, stdout_write, stderr_write));
    let failure = plan.failure.load(Ordering::Relaxed);
    if failure != 0 {
        let _ = script::reap(&pidfd, 0);
        let os = std::io::Error::from_raw_os_error((failure & 0xffff_ffff) as i32);
        return Err(std::io::Error::new(
            os.kind(),
            format!("{}: {os}", Stage::from_code(failure >> 32).name()),
        ));
    }
    Script::new(pid, pidfd, stdout_read, stderr_read)
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` into [`child_main`]; returns once the child
/// has exec'd or exited, with its pid and pidfd.
fn start(plan: &ChildPlan) -> std::io::Result<(i32, OwnedFd)> {
    let mut stack = Vec::<u8>::with_capacity(CHILD_STACK);
    // Stacks grow down; the top must be 16-byte aligned.
    let top = ((stack.as_mut_ptr() as usize + CHILD_STACK) & !15) as *mut libc::c_void;
    let mut pidfd: libc::c_int = -1;
    // SAFETY: every signal is blocked while the child shares this thread's memory (its
    // handlers are reset before it unblocks them); the plan and the stack outlive the child's
    // use of them, as CLONE_VFORK suspends this thread until the child execs or exits.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut before: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut before);
        let pid = libc::clone(
            child_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            plan as *const ChildPlan as *mut libc::c_void,
            &mut pidfd as *mut libc::c_int,
        );
        let error = last_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
        if pid < 0 {
            return Err(error);
        }
        pid
    };
    // SAFETY: CLONE_PIDFD stored a new fd owned from here on.
    Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

#[cfg(test)]
#[path = "spawn_tests.rs"]
mod tests;
