//! A Redis Cluster owned by one test: three masters with a replica each, every node a private
//! `redis-server` on free ports, slots assigned by `redis-cli --cluster create`. A master can
//! be killed for real and the test waits for its replica to take over.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{RedisServer, StartError};

/// Masters, each with one replica.
const MASTERS: usize = 3;
/// How long the cluster may take to agree that all slots are served.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// A private 3-master, 3-replica Redis Cluster.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    _dir: Option<tempfile::TempDir>,
}

impl RedisCluster {
    /// A cluster in a directory of its own.
    ///
    /// # Panics
    /// When it cannot be started: a test that needs one cannot go on.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut cluster = Self::start_in(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        cluster._dir = Some(dir);
        cluster
    }

    /// A cluster with one directory per node under `dir` (`node-0` …).
    pub fn start_in(dir: &Path) -> Result<Self, StartError> {
        let nodes = (0..MASTERS * 2)
            .map(|i| RedisServer::start_cluster_node_in(&dir.join(format!("node-{i}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .map_err(|e| cli_error(&["--cluster", "create"], e.to_string()))?;
        if !out.status.success() {
            let message = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            return Err(cli_error(&["--cluster", "create"], message));
        }
        let cluster = Self { nodes, _dir: None };
        cluster.wait_until_served()?;
        cluster.wait_until_every_replica_follows()?;
        Ok(cluster)
    }

    /// Every node's URL, comma-separated: what `redis_url` takes with `redis_cluster`.
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The nodes, masters and replicas, in the order they were started.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The node that serves `key` as its master now.
    pub fn master_of(&self, key: &str) -> Result<usize, StartError> {
        let alive = self.alive()?;
        let slot: u16 = alive
            .cli(&["CLUSTER", "KEYSLOT", key])?
            .parse()
            .map_err(|e| cli_error(&["CLUSTER", "KEYSLOT"], format!("{e}")))?;
        let nodes = alive.cli(&["CLUSTER", "NODES"])?;
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| match range.split_once('-') {
                Some((a, b)) => {
                    a.parse::<u16>().is_ok_and(|a| a <= slot)
                        && b.parse::<u16>().is_ok_and(|b| slot <= b)
                }
                None => range.parse::<u16>() == Ok(slot),
            });
            if !serves {
                continue;
            }
            let port = fields[1]
                .split(['@', ','])
                .next()
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| p.parse::<u16>().ok());
            if let Some(i) = self.nodes.iter().position(|n| Some(n.port()) == port) {
                return Ok(i);
            }
        }
        Err(cli_error(
            &["CLUSTER", "NODES"],
            format!("no live master serves slot {slot}:\n{nodes}"),
        ))
    }

    /// Kills node `index` with SIGKILL (an outage) and waits until the cluster serves every
    /// slot again (its replica took over, when it was a master).
    pub fn kill_and_fail_over(&mut self, index: usize) -> Result<(), StartError> {
        let port = format!(":{}@", self.nodes[index].port());
        self.nodes[index].kill();
        // The others still count it in until the node timeout passes and they agree it failed.
        let deadline = Instant::now() + SETTLE_LIMIT;
        loop {
            let nodes = self.alive()?.cli(&["CLUSTER", "NODES"])?;
            let failed = nodes
                .lines()
                .find(|l| l.contains(&port))
                .is_some_and(|l| l.contains("fail") && !l.contains("fail?"));
            if failed {
                break;
            }
            if Instant::now() > deadline {
                return Err(cli_error(
                    &["CLUSTER", "NODES"],
                    format!("node {index} was not marked failed within {SETTLE_LIMIT:?}:\n{nodes}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.wait_until_served()
    }

    /// Waits until the replicas of master `index` have everything it wrote so far (its
    /// replication offset), so that killing it loses nothing acknowledged.
    pub fn wait_replicated(&self, index: usize) -> Result<(), StartError> {
        let deadline = Instant::now() + SETTLE_LIMIT;
        loop {
            let info = self.nodes[index].cli(&["INFO", "replication"])?;
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.trim().strip_prefix(name))
                    .map(str::to_owned)
            };
            let offset = field("master_repl_offset:");
            let replicas: Vec<String> = info
                .lines()
                .filter(|l| l.starts_with("slave") && l.contains("offset="))
                .filter_map(|l| l.split("offset=").nth(1))
                .map(|o| o.split(',').next().unwrap_or_default().to_owned())
                .collect();
            if !replicas.is_empty() && replicas.iter().all(|o| Some(o) == offset.as_ref()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(cli_error(
                    &["INFO", "replication"],
                    format!("the replicas did not catch up within {SETTLE_LIMIT:?}:\n{info}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts node `index` again; it rejoins (a former master as a replica).
    pub fn restart(&mut self, index: usize) -> Result<(), StartError> {
        self.nodes[index].restart()?;
        self.wait_until_served()
    }

    /// Runs `args` with redis-cli on every running node (what is not replicated, such as ACL
    /// users, must reach each one).
    pub fn cli_everywhere(&self, args: &[&str]) -> Result<(), StartError> {
        for node in self.nodes.iter().filter(|n| n.answers_ping()) {
            node.cli(args)?;
        }
        Ok(())
    }

    fn alive(&self) -> Result<&RedisServer, StartError> {
        self.nodes
            .iter()
            .find(|n| n.answers_ping())
            .ok_or_else(|| cli_error(&["PING"], "no node of the cluster answers".into()))
    }

    /// Waits until every node knows all the others and each replica's link to its master is
    /// up: then a command sent to every node (an ACL user) reaches the replicas too.
    fn wait_until_every_replica_follows(&self) -> Result<(), StartError> {
        let deadline = Instant::now() + SETTLE_LIMIT;
        let known = format!("cluster_known_nodes:{}", self.nodes.len());
        loop {
            let mut ready = true;
            for node in &self.nodes {
                let info = node.cli(&["CLUSTER", "INFO"])?;
                let role = node.cli(&["ROLE"])?;
                let following = !role.starts_with("slave")
                    || node
                        .cli(&["INFO", "replication"])?
                        .contains("master_link_status:up");
                ready &= info.contains(&known) && following;
            }
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(cli_error(
                    &["ROLE"],
                    format!("the replicas did not follow their masters within {SETTLE_LIMIT:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running node says `cluster_state:ok` with all 16384 slots served
    /// by a master that is not failed.
    fn wait_until_served(&self) -> Result<(), StartError> {
        let deadline = Instant::now() + SETTLE_LIMIT;
        loop {
            let ok = self.nodes.iter().filter(|n| n.answers_ping()).all(|n| {
                n.cli(&["CLUSTER", "INFO"]).is_ok_and(|info| {
                    info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
                })
            });
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                let info = self
                    .alive()
                    .and_then(|n| n.cli(&["CLUSTER", "NODES"]))
                    .unwrap_or_default();
                return Err(cli_error(
                    &["CLUSTER", "INFO"],
                    format!("the cluster did not settle within {SETTLE_LIMIT:?}:\n{info}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn cli_error(args: &[&str], message: String) -> StartError {
    StartError::Cli {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_masters_with_replicas_serve_every_slot_and_survive_a_master_killed() {
        let mut cluster = RedisCluster::start();
        assert_eq!(cluster.nodes().len(), 6);
        let roles: Vec<String> = cluster
            .nodes()
            .iter()
            .map(|n| n.cli(&["ROLE"]).unwrap().lines().next().unwrap().to_owned())
            .collect();
        assert_eq!(
            roles.iter().filter(|r| *r == "master").count(),
            3,
            "{roles:?}"
        );
        let key = "outfitter:agent:{web-1}:queue";
        let master = cluster.master_of(key).unwrap();
        let node = &cluster.nodes()[master];
        node.cli(&["-c", "SET", key, "kept"]).unwrap();
        cluster.wait_replicated(master).unwrap();
        cluster.kill_and_fail_over(master).unwrap();
        let now = cluster.master_of(key).unwrap();
        assert_ne!(now, master, "the replica took over");
        assert_eq!(cluster.nodes()[now].cli(&["GET", key]).unwrap(), "kept");
        assert!(cluster.seeds().split(',').count() == 6);
    }
}
