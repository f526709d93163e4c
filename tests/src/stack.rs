//! One test's whole installation: a private Redis, a panel secret, one or more panels, an
//! admin token, and runners registered through `outfitter-panel agent add`. Everything
//! lives in one temporary directory; on failure the tails of every log are printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::api::Api;
use crate::panel::{Panel, PanelSettings};
use crate::redis::{Persistence, RedisCluster, RedisServer, TestCerts};
use crate::runner::Runner;

/// The bundles the suites install: harmless scripts that only print, sleep and exit.
pub fn test_bundles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bundles")
}

/// A running installation for one test.
#[derive(Debug)]
pub struct Stack {
    // Fields drop in order: processes first, the directory holding their files last.
    runners: BTreeMap<String, Runner>,
    panels: Vec<Panel>,
    redis: Option<RedisServer>,
    /// The Redis Cluster of [`Stack::start_cluster`] (then there is no single server).
    pub cluster: Option<RedisCluster>,
    pub settings: PanelSettings,
    /// An admin API token, made with `outfitter-panel token add`.
    pub token: String,
    /// The certificates of a TLS Redis ([`Stack::start_tls`]).
    pub certs: Option<TestCerts>,
    dir: TempDir,
}

impl Stack {
    /// Redis, one panel serving [`test_bundles`], and an admin token.
    pub async fn start() -> Result<Self> {
        Self::start_with(&test_bundles()).await
    }

    /// Like [`Stack::start`] with another installers directory.
    pub async fn start_with(installers: &Path) -> Result<Self> {
        Self::start_configured(installers, &[]).await
    }

    /// Like [`Stack::start_with`], with more `OUTFITTER_*` settings for every panel.
    pub async fn start_configured(installers: &Path, env: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("outfitter-e2e-")
            .tempdir()?;
        let redis = RedisServer::start_in(&dir.path().join("redis"), Persistence::None)?;
        let url = redis.url();
        Self::start_on(dir, Store::Server(redis), url, installers, env).await
    }

    /// Like [`Stack::start_with`] on a private Redis Cluster (3 masters, 3 replicas): the
    /// panels get every node as a seed and `redis_cluster`, and so does each runner's
    /// configuration (`agent add` prints it).
    pub async fn start_cluster(installers: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("outfitter-e2e-")
            .tempdir()?;
        let cluster = RedisCluster::start_in(&dir.path().join("redis"))?;
        let seeds = cluster.seeds();
        let env = [("OUTFITTER_REDIS_CLUSTER", "true")];
        Self::start_on(dir, Store::Cluster(cluster), seeds, installers, &env).await
    }

    /// Like [`Stack::start`] on a Redis reached only over TLS with client certificates: the
    /// panels get `rediss://` and the CA and client certificate settings ([`Stack::tls_env`]
    /// is the same for runners). The certificates are in `certs/` of the stack's directory.
    pub async fn start_tls(installers: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("outfitter-e2e-")
            .tempdir()?;
        let certs = TestCerts::generate(&dir.path().join("certs"))?;
        let redis = RedisServer::start_tls_in(&dir.path().join("redis"), certs.clone())?;
        let url = redis.tls_url().context("the TLS Redis has a TLS URL")?;
        let env = tls_env(&certs);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut stack = Self::start_on(dir, Store::Server(redis), url, installers, &env).await?;
        stack.certs = Some(certs);
        Ok(stack)
    }

    async fn start_on(
        dir: TempDir,
        store: Store,
        redis_url: String,
        installers: &Path,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let settings = PanelSettings {
            redis_url,
            secret_file: dir.path().join("panel.secret"),
            installers: installers.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let token = settings.add_token("e2e-admin", "admin")?;
        let (redis, cluster) = match store {
            Store::Server(r) => (Some(r), None),
            Store::Cluster(c) => (None, Some(c)),
        };
        let mut stack = Self {
            runners: BTreeMap::new(),
            panels: Vec::new(),
            redis,
            cluster,
            settings,
            token,
            certs: None,
            dir,
        };
        stack.start_panel().await?;
        Ok(stack)
    }

    /// The one Redis server (every stack but [`Stack::start_cluster`]'s).
    ///
    /// # Panics
    /// On a cluster stack.
    pub fn redis(&self) -> &RedisServer {
        self.redis
            .as_ref()
            .expect("a single Redis server: this stack runs on a cluster")
    }

    /// Starts one more panel on the same Redis and secret file; returns its index.
    pub async fn start_panel(&mut self) -> Result<usize> {
        let panel = Panel::start(&self.settings, &self.dir.path().join("panels")).await?;
        self.panels.push(panel);
        Ok(self.panels.len() - 1)
    }

    /// SIGKILLs panel `i` (its index stays taken; [`Stack::start_panel`] adds a new one).
    pub fn kill_panel(&mut self, i: usize) {
        self.panels[i].kill();
    }

    /// The first panel.
    pub fn panel(&self) -> &Panel {
        &self.panels[0]
    }

    /// The panel with this index.
    pub fn panel_at(&self, i: usize) -> &Panel {
        &self.panels[i]
    }

    /// The admin API of the first panel.
    pub fn api(&self) -> Api {
        self.api_at(0)
    }

    /// The admin API of panel `i`.
    pub fn api_at(&self, i: usize) -> Api {
        Api::new(&self.panels[i].url(), &self.token)
    }

    /// Registers `agent_id` with `outfitter-panel agent add` and prepares its runner (not
    /// started: [`Stack::runner`] then `.start()`).
    pub fn add_agent(&mut self, agent_id: &str) -> Result<&mut Runner> {
        self.add_agent_with(agent_id, &[])
    }

    /// Like [`Stack::add_agent`], with more `agent add` flags (`--redis-user`).
    pub fn add_agent_with(&mut self, agent_id: &str, flags: &[&str]) -> Result<&mut Runner> {
        let config = self.settings.add_agent_with(agent_id, flags)?;
        let dir = self.dir.path().join("runners").join(agent_id);
        let runner = Runner::prepare(agent_id, &config, &self.settings.installers, &dir)?;
        self.runners.insert(agent_id.to_owned(), runner);
        Ok(self.runner(agent_id))
    }

    /// Registers `agent_id` and starts its runner.
    pub fn start_agent(&mut self, agent_id: &str) -> Result<&mut Runner> {
        let runner = self.add_agent(agent_id)?;
        runner
            .start()
            .with_context(|| format!("starting the runner of {agent_id}"))?;
        Ok(runner)
    }

    /// The runner of `agent_id` (registered before).
    pub fn runner(&mut self, agent_id: &str) -> &mut Runner {
        self.runners
            .get_mut(agent_id)
            .unwrap_or_else(|| panic!("agent {agent_id} was never added"))
    }

    /// The tail of every log this installation wrote (panels, runners, Redis).
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        let mut logs = Vec::new();
        collect_logs(self.dir.path(), &mut logs);
        logs.sort();
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            out.push_str(&format!(
                "\n----- {} (last 60 lines) -----\n{tail}\n",
                log.display()
            ));
        }
        out
    }

    /// Runs one test against a fresh installation. On error, prints every log's tail and
    /// panics, so the cause is in the test output rather than lost with the temp directory.
    pub async fn scenario(test: impl AsyncFnOnce(&mut Stack) -> Result<()>) {
        Self::scenario_with(&[], test).await;
    }

    /// [`Stack::scenario`] with more `OUTFITTER_*` settings for every panel.
    pub async fn scenario_with(
        env: &[(&str, &str)],
        test: impl AsyncFnOnce(&mut Stack) -> Result<()>,
    ) {
        let mut stack = match Self::start_configured(&test_bundles(), env).await {
            Ok(s) => s,
            Err(e) => panic!("starting the installation: {e:#}"),
        };
        if let Err(e) = test(&mut stack).await {
            let diagnostics = stack.diagnostics();
            panic!("{e:#}\n{diagnostics}");
        }
    }
}

/// What a stack runs on.
enum Store {
    Server(RedisServer),
    Cluster(RedisCluster),
}

/// The settings (environment of panel and runner alike) for a Redis that wants TLS with a
/// client certificate signed by the CA of `certs`.
pub fn tls_env(certs: &TestCerts) -> Vec<(&'static str, String)> {
    let path = |p: &PathBuf| p.display().to_string();
    vec![
        ("OUTFITTER_REDIS_CA_FILE", path(&certs.ca)),
        ("OUTFITTER_REDIS_CLIENT_CERT", path(&certs.client_cert)),
        ("OUTFITTER_REDIS_CLIENT_KEY", path(&certs.client_key)),
    ]
}

fn collect_logs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_logs(&p, out);
        } else if p.extension().is_some_and(|x| x == "log") {
            out.push(p);
        }
    }
}
