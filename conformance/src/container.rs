//! One throwaway system: a fresh overlayfs upper directory over the read-only base, booted
//! with systemd-nspawn in its own cgroup and network namespace. Dropping a [`Container`]
//! powers it off and removes every trace (mount, cgroups, directories, network slot).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;

use crate::cgroup::{CgroupError, ContainerCgroup};
use crate::network::{Link, NetworkError, Slot};

/// PATH inside the system for every command the harness runs there.
const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long systemd may take to reach `running` (the base boots in about a second).
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a clean poweroff may take before everything is killed.
const POWEROFF_TIMEOUT: Duration = Duration::from_secs(20);
/// Output kept per command; the tail is what matters when a long install fails.
const MAX_OUTPUT: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("the system did not boot within {0:?}: {1}")]
    Boot(Duration, String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let what = what.into();
    move |source| ContainerError::Io { what, source }
}

/// Output and exit status of one command run inside the system.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// Exit code; `None` when it timed out or was killed by a signal.
    pub code: Option<i32>,
    pub timed_out: bool,
    /// stdout and stderr interleaved as written.
    pub output: String,
    pub duration: Duration,
}

/// A booted system. Its fields are torn down in `Drop`, in reverse order of creation.
#[derive(Debug)]
pub struct Container {
    pub name: String,
    pub link: Link,
    init_pid: u32,
    dir: PathBuf,
    root: PathBuf,
    nspawn: Option<Child>,
    cgroup: ContainerCgroup,
    /// Background tasks bound to this container (its proxy listener).
    tasks: Vec<JoinHandle<()>>,
    mounted: bool,
    _slot: Slot,
}

impl Container {
    /// Mounts a fresh overlay over `base` below `work_root`, lets `prepare` write files into
    /// the new root, boots it, and configures its private link.
    pub fn boot(
        base: &Path,
        work_root: &Path,
        prepare: impl FnOnce(&Path, &Link) -> std::io::Result<()>,
    ) -> Result<Self, ContainerError> {
        let slot = Slot::acquire()?;
        let name = slot.machine_name();
        let link = slot.link();
        let dir = work_root.join(&name);
        if dir.exists() {
            // Left over by a run that was killed hard; the slot lock proves nobody uses it.
            cleanup_stale(&dir);
        }
        let root = dir.join("root");
        for sub in ["upper", "work", "root"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(io(format!("create {}", dir.join(sub).display())))?;
        }
        let cgroup = ContainerCgroup::create(&name)?;
        let mut container = Self {
            name,
            link,
            init_pid: 0,
            dir,
            root,
            nspawn: None,
            cgroup,
            tasks: Vec::new(),
            mounted: false,
            _slot: slot,
        };
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            container.dir.join("upper").display(),
            container.dir.join("work").display()
        );
        run_host(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &options])
                .arg(&container.root),
        )?;
        container.mounted = true;
        prepare(&container.root, &container.link).map_err(io("prepare the system's files"))?;
        container.start()?;
        Ok(container)
    }

    fn start(&mut self) -> Result<(), ContainerError> {
        let log =
            std::fs::File::create(self.dir.join("nspawn.log")).map_err(io("create nspawn.log"))?;
        let log_err = log.try_clone().map_err(io("clone nspawn.log"))?;
        // The wrapper joins the container's cgroups before exec'ing nspawn, so that nspawn
        // creates payload/supervisor inside them and never at the top of the host's tree.
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(r#"while [ "$1" != -- ]; do echo $$ >"$1"; shift; done; shift; exec "$@""#)
            .arg("sh")
            .args(self.cgroup.procs_files())
            .arg("--")
            .arg("systemd-nspawn")
            .arg("-D")
            .arg(&self.root)
            .args([
                "-M",
                &self.name,
                "-b",
                "--register=no",
                "--keep-unit",
                "--console=passive",
            ])
            .args([
                "--network-veth",
                "--resolv-conf=off",
                "--timezone=off",
                "--link-journal=no",
            ])
            // nspawn's default seccomp filter refuses the keyring calls and bpf(), and runc (docker)
            // needs both (session keyring, cgroup v2 device filter) to start a container.
            .arg("--system-call-filter=add_key keyctl request_key bpf")
            // A pure cgroup v2 tree inside, as on a stock Debian 12 host, whatever the host's
            // own layout: a hybrid layout inside leaves v1 controllers read-only, which
            // breaks nested runtimes (docker's runc).
            .env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a Ctrl-C at the terminal must not reach nspawn, which
            // would forward it to systemd as a reboot request.
            .process_group(0);
        let child = command.spawn().map_err(io("spawn systemd-nspawn"))?;
        self.nspawn = Some(child);

        let deadline = Instant::now() + BOOT_TIMEOUT;
        self.init_pid = loop {
            if let Some(pid) = self.cgroup.init_pid() {
                break pid;
            }
            if let Some(Ok(Some(status))) = self.nspawn.as_mut().map(Child::try_wait) {
                return Err(ContainerError::Boot(
                    BOOT_TIMEOUT,
                    format!("nspawn exited ({status}): {}", self.nspawn_log()),
                ));
            }
            if Instant::now() > deadline {
                return Err(ContainerError::Boot(BOOT_TIMEOUT, self.nspawn_log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.link.configure_host()?;
        self.link.configure_guest(self.init_pid)?;
        let state = loop {
            let out = Command::new("nsenter")
                .args([
                    "-t",
                    &self.init_pid.to_string(),
                    "-a",
                    "systemctl",
                    "is-system-running",
                ])
                .stdin(Stdio::null())
                .output()
                .map_err(io("nsenter systemctl"))?;
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if state == "running" || state == "degraded" || Instant::now() > deadline {
                break state;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if state != "running" && state != "degraded" {
            return Err(ContainerError::Boot(
                BOOT_TIMEOUT,
                format!("state {state:?}; {}", self.nspawn_log()),
            ));
        }
        Ok(())
    }

    fn nspawn_log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("nspawn.log")).unwrap_or_default();
        tail_lines(&log, 15)
    }

    /// The pid of the system's init, for `/proc/<pid>/…` and namespace entry.
    pub fn init_pid(&self) -> u32 {
        self.init_pid
    }

    /// The merged root directory as seen from the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Keeps a background task alive exactly as long as this container.
    pub fn attach_task(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Copies a host file or directory to an absolute path inside the system.
    pub fn copy_in(&self, from: &Path, to: &str) -> Result<(), ContainerError> {
        let dest = self.root.join(to.trim_start_matches('/'));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
        }
        run_host(Command::new("cp").args(["-a", "-T"]).arg(from).arg(&dest))
    }

    /// Runs `argv` inside every namespace of the system with a clean environment plus `env`,
    /// stdin from /dev/null, capturing stdout and stderr together.
    pub async fn exec(
        &self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<ExecOutput, ContainerError> {
        let started = Instant::now();
        let (reader, writer) = std::io::pipe().map_err(io("create a pipe"))?;
        let writer_err = writer.try_clone().map_err(io("clone a pipe"))?;
        let mut command = tokio::process::Command::new("nsenter");
        command
            .args([
                "-t",
                &self.init_pid.to_string(),
                "-a",
                "--",
                "/usr/bin/env",
                "-i",
            ])
            .arg(format!("PATH={GUEST_PATH}"))
            .args(["LANG=C.UTF-8", "HOME=/root", "TERM=dumb"])
            .args(env.iter().map(|(k, v)| format!("{k}={v}")))
            .args(argv)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer_err)
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(io("spawn nsenter"))?;
        // The parent's copies of the write end are gone with `command`; EOF comes when the
        // command and everything that inherited its output are done.
        drop(command);
        let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())
            .map_err(io("watch a pipe"))?;
        let mut output = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = tokio::time::Instant::now() + timeout;
        let mut code = None;
        let (mut exited, mut eof) = (false, false);
        let mut drain_until = deadline;
        loop {
            tokio::select! {
                read = pipe.read(&mut buf), if !eof => match read {
                    Ok(0) | Err(_) => {
                        eof = true;
                        if exited { break }
                    }
                    Ok(n) => {
                        output.extend_from_slice(&buf[..n]);
                        if output.len() > MAX_OUTPUT {
                            output.drain(..output.len() - MAX_OUTPUT);
                        }
                    }
                },
                status = child.wait(), if !exited => {
                    exited = true;
                    code = status.ok().and_then(|s| s.code());
                    if eof { break }
                    // A daemon that inherited the output may keep it open: drain briefly.
                    drain_until = (tokio::time::Instant::now() + Duration::from_secs(3)).min(deadline);
                },
                () = tokio::time::sleep_until(drain_until) => break,
            }
        }
        let timed_out = !exited;
        if timed_out {
            let _ = child.start_kill();
        }
        Ok(ExecOutput {
            code,
            timed_out,
            output: String::from_utf8_lossy(&output).into_owned(),
            duration: started.elapsed(),
        })
    }

    fn teardown(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        if let Some(mut nspawn) = self.nspawn.take() {
            // SIGTERM asks nspawn for a clean poweroff of the system.
            if let Ok(pid) = i32::try_from(nspawn.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let deadline = Instant::now() + POWEROFF_TIMEOUT;
            while Instant::now() < deadline && matches!(nspawn.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = nspawn.kill();
            let _ = nspawn.wait();
        }
        self.cgroup.kill_all(Duration::from_secs(10));
        if self.mounted {
            let unmounted = (0..20).any(|_| {
                let ok = Command::new("umount")
                    .arg(&self.root)
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    std::thread::sleep(Duration::from_millis(250));
                }
                ok
            });
            if !unmounted {
                let _ = Command::new("umount").arg("-l").arg(&self.root).status();
            }
            self.mounted = false;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        self.cgroup.remove();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Removes what a hard-killed run left in a work directory (mount first, then files).
fn cleanup_stale(dir: &Path) {
    let root = dir.join("root");
    let _ = Command::new("umount").arg("-l").arg(&root).status();
    let _ = std::fs::remove_dir_all(dir);
}

fn run_host(command: &mut Command) -> Result<(), ContainerError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ContainerError::Command {
            command: format!("{command:?}"),
            detail: e.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ContainerError::Command {
            command: format!("{command:?}"),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("a", 5), "a");
        assert_eq!(tail_lines("", 5), "");
    }
}
