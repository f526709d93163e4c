//! The private link between the host and one container: a locked slot, its /30 subnet, and
//! the `ip` commands that configure both ends. The container reaches nothing but the host
//! end of its link, where the package proxy listens.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use nix::fcntl::{Flock, FlockArg};

/// Where slot locks live; a slot is held by the process that holds its file lock, so a
/// crashed run frees its slots by dying.
const SLOT_DIR: &str = "/run/outfitter-conformance/slots";
/// Slots available: 10.213.0.0/16 cut into /30 links.
const SLOT_COUNT: u16 = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("cannot prepare {SLOT_DIR}: {0}")]
    SlotDir(std::io::Error),
    #[error("all {SLOT_COUNT} network slots are taken")]
    NoFreeSlot,
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
}

/// A network slot held for the life of one container.
#[derive(Debug)]
pub struct Slot {
    pub index: u16,
    _lock: Flock<File>,
}

impl Slot {
    /// Takes the first slot no other run holds.
    pub fn acquire() -> Result<Self, NetworkError> {
        std::fs::create_dir_all(SLOT_DIR).map_err(NetworkError::SlotDir)?;
        for index in 0..SLOT_COUNT {
            let path = Path::new(SLOT_DIR).join(index.to_string());
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(NetworkError::SlotDir)?;
            if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                // Another run may have configured this subnet and died; its veth vanished
                // with its container, so the subnet is free again.
                return Ok(Self { index, _lock: lock });
            }
        }
        Err(NetworkError::NoFreeSlot)
    }

    /// The machine name, short enough that `ve-<name>` fits the 15-byte interface limit.
    pub fn machine_name(&self) -> String {
        format!("oc-{}", self.index)
    }

    pub fn link(&self) -> Link {
        Link::for_slot(self.index, &self.machine_name())
    }
}

/// Addresses and interface names of one host↔container link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub host_if: String,
    pub host_addr: Ipv4Addr,
    pub guest_addr: Ipv4Addr,
}

/// Name of the container's end of the veth pair, fixed by systemd-nspawn.
const GUEST_IF: &str = "host0";

impl Link {
    fn for_slot(index: u16, machine: &str) -> Self {
        let [hi, lo] = index.to_be_bytes();
        // index = 64 * third octet + link number; each link is 4 addresses.
        let third = (hi << 2) | (lo >> 6);
        let base = (lo & 0x3f) << 2;
        Self {
            host_if: format!("ve-{machine}"),
            host_addr: Ipv4Addr::new(10, 213, third, base + 1),
            guest_addr: Ipv4Addr::new(10, 213, third, base + 2),
        }
    }

    /// Gives the host end its address and brings it up.
    pub fn configure_host(&self) -> Result<(), NetworkError> {
        run(Command::new("ip").args([
            "addr",
            "replace",
            &format!("{}/30", self.host_addr),
            "dev",
            &self.host_if,
        ]))?;
        run(Command::new("ip").args(["link", "set", &self.host_if, "up"]))
    }

    /// Configures the container's end from the host, inside the container's network
    /// namespace: the container needs no network tools of its own.
    pub fn configure_guest(&self, init_pid: u32) -> Result<(), NetworkError> {
        let netns = |args: &[&str]| {
            let mut command = Command::new("nsenter");
            command
                .args(["-t", &init_pid.to_string(), "-n", "ip"])
                .args(args);
            run(&mut command)
        };
        netns(&["link", "set", "lo", "up"])?;
        netns(&[
            "addr",
            "replace",
            &format!("{}/30", self.guest_addr),
            "dev",
            GUEST_IF,
        ])?;
        netns(&["link", "set", GUEST_IF, "up"])?;
        netns(&[
            "route",
            "replace",
            "default",
            "via",
            &self.host_addr.to_string(),
        ])
    }
}

fn run(command: &mut Command) -> Result<(), NetworkError> {
    let output = command.output().map_err(|e| NetworkError::Command {
        command: format!("{command:?}"),
        stderr: e.to_string(),
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Command {
            command: format!("{command:?}"),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_get_disjoint_30_subnets() {
        let first = Link::for_slot(0, "oc-0");
        assert_eq!(
            (first.host_addr, first.guest_addr),
            (Ipv4Addr::new(10, 213, 0, 1), Ipv4Addr::new(10, 213, 0, 2))
        );
        let next = Link::for_slot(1, "oc-1");
        assert_eq!(next.host_addr, Ipv4Addr::new(10, 213, 0, 5));
        let wrap = Link::for_slot(64, "oc-64");
        assert_eq!(wrap.host_addr, Ipv4Addr::new(10, 213, 1, 1));
        let last = Link::for_slot(SLOT_COUNT - 1, "oc-16383");
        assert_eq!(last.guest_addr, Ipv4Addr::new(10, 213, 255, 254));
    }

    #[test]
    fn host_interface_name_fits_the_kernel_limit() {
        let link = Link::for_slot(SLOT_COUNT - 1, &format!("oc-{}", SLOT_COUNT - 1));
        assert!(link.host_if.len() <= 15, "{}", link.host_if);
    }
}
