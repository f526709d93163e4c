//! What a system holds that an uninstall must take away again: systemd units, listening
//! ports, users, groups, installed packages and files under /etc. A snapshot is taken before
//! the bundle's install (after its prerequisites); after the uninstall, whatever is new is a
//! leftover, less what the bundle's `tests.yml` declares as kept.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::container::Container;
use crate::report::Leftover;
use crate::spec::TestSpec;

/// Prints one `<kind> <name>` line per thing, from inside the system. Unit files and loaded
/// units both count (a unit may be loaded from /run or left running without a file);
/// `not-found` units are references, not units. Packages are the `ii` ones: a removed package
/// whose conffiles stayed shows up as files under /etc instead.
const INVENTORY: &str = r#"set -euo pipefail
systemctl list-unit-files --no-legend --no-pager --plain | awk 'NF {print "unit " $1}'
systemctl list-units --all --no-legend --no-pager --plain --type=service,socket,timer,path \
  | awk '$2 != "not-found" && NF {print "unit " $1}'
dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" {print "package " $2}'
cut -d: -f1 /etc/passwd | sed 's/^/user /'
cut -d: -f1 /etc/group | sed 's/^/group /'
find /etc -xdev ! -type d -printf 'file %p\n'
"#;

/// Files the shadow tools and the loader rewrite whenever anything changes users or
/// libraries: not owned by any bundle, so never a leftover.
const NOISE_FILES: &[&str] = &[
    "/etc/.pwd.lock",
    "/etc/passwd-",
    "/etc/group-",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/subuid-",
    "/etc/subgid-",
    "/etc/ld.so.cache",
];

/// Everything of the system at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Snapshot(BTreeSet<Leftover>);

impl Snapshot {
    /// Takes a snapshot of the running system.
    pub(super) async fn take(container: &Container) -> Result<Self, String> {
        let argv = [
            "/bin/bash".to_owned(),
            "-c".to_owned(),
            INVENTORY.to_owned(),
        ];
        let out = container
            .exec(&argv, &[], Duration::from_secs(120))
            .await
            .map_err(|e| e.to_string())?;
        if out.code != Some(0) {
            return Err(format!(
                "the inventory failed (exit {:?}): {}",
                out.code,
                crate::container::tail_lines(&out.output, 5)
            ));
        }
        let mut things = parse_inventory(&out.output);
        let pid = container.init_pid();
        let tables = |names: &[&str]| -> String {
            names
                .iter()
                .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok())
                .collect()
        };
        for port in listening(&tables(&["tcp", "tcp6"]), TCP_LISTEN) {
            things.insert(item("port", &format!("tcp/{port}")));
        }
        for port in listening(&tables(&["udp", "udp6"]), UDP_UNCONNECTED) {
            things.insert(item("port", &format!("udp/{port}")));
        }
        Ok(Self(things))
    }

    /// Things in `self` that `before` did not have and `spec` does not keep; with `purged`,
    /// nothing is kept.
    pub(super) fn leftovers(&self, before: &Self, spec: &TestSpec, purged: bool) -> Vec<Leftover> {
        self.0
            .difference(&before.0)
            .filter(|l| {
                purged
                    || match l.kind.as_str() {
                        "file" => !spec.is_kept_path(&l.name),
                        "user" | "group" => !spec.kept_users.contains(&l.name),
                        _ => true,
                    }
            })
            .cloned()
            .collect()
    }

    /// How many things of each kind, for the step's detail.
    pub(super) fn describe(&self) -> String {
        let count = |kind: &str| self.0.iter().filter(|l| l.kind == kind).count();
        format!(
            "{} units, {} ports, {} users, {} groups, {} packages, {} files under /etc",
            count("unit"),
            count("port"),
            count("user"),
            count("group"),
            count("package"),
            count("file")
        )
    }
}

fn item(kind: &str, name: &str) -> Leftover {
    Leftover {
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

fn parse_inventory(text: &str) -> BTreeSet<Leftover> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(kind, name)| !(*kind == "file" && NOISE_FILES.contains(name)))
        .map(|(kind, name)| item(kind, name))
        .collect()
}

/// `st` of a listening TCP socket in /proc/net/tcp.
const TCP_LISTEN: &str = "0A";
/// `st` of an unconnected (bound, receiving) UDP socket in /proc/net/udp.
const UDP_UNCONNECTED: &str = "07";

/// Local ports of sockets in state `state` in /proc/net/{tcp,udp}[6] text; for UDP only
/// those with no remote peer (a bound receiver, not a client's connected socket).
fn listening(tables: &str, state: &str) -> BTreeSet<u16> {
    tables
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, st) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
            if *st != state {
                return None;
            }
            let remote_port = remote.rsplit(':').next()?;
            if state == UDP_UNCONNECTED && remote_port != "0000" {
                return None;
            }
            u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> TestSpec {
        TestSpec::parse(text, std::path::Path::new("tests.yml")).unwrap()
    }

    #[test]
    fn listening_reads_tcp_listeners_and_unconnected_udp_only() {
        let tcp = "  sl  local_address rem_address   st\n\
                   0: 00000000:0050 00000000:0000 0A 0\n\
                   1: 0100007F:1F90 0100007F:C350 01 0\n";
        assert_eq!(listening(tcp, TCP_LISTEN), BTreeSet::from([80]));
        let udp = "  sl  local_address rem_address   st\n\
                   0: 00000000:14E9 00000000:0000 07 0\n\
                   1: 0100007F:A000 0100007F:0035 01 0\n";
        assert_eq!(listening(udp, UDP_UNCONNECTED), BTreeSet::from([5353]));
    }

    #[test]
    fn only_new_things_are_leftovers_and_kept_ones_are_allowed() {
        let before = Snapshot(parse_inventory(
            "unit ssh.service\nuser root\nfile /etc/hosts\n",
        ));
        let after = Snapshot(parse_inventory(
            "unit ssh.service\nunit nginx.service\nuser root\nuser postgres\n\
             file /etc/hosts\nfile /etc/postgresql/15/main/pg_hba.conf\nfile /etc/.pwd.lock\n",
        ));
        let spec = spec(
            "kept_paths: [/etc/postgresql]\nkept_users: [postgres]\nchecks: [{name: x, port: 1}]",
        );
        assert_eq!(
            after.leftovers(&before, &spec, false),
            vec![item("unit", "nginx.service")]
        );
        let purged = after.leftovers(&before, &spec, true);
        assert!(purged.contains(&item("user", "postgres")), "{purged:?}");
        assert!(
            purged.contains(&item("file", "/etc/postgresql/15/main/pg_hba.conf")),
            "{purged:?}"
        );
        assert!(
            !purged.contains(&item("file", "/etc/.pwd.lock")),
            "{purged:?}"
        );
    }
}
