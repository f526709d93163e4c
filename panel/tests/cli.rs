//! The binary: `token add`, `agent add`, and `serve` configured by flags, environment and file.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::RedisServer;
use outfitter_contract::keys::PanelSecret;
use outfitter_contract::redis_keys;
use outfitter_test_support::free_port;
use redis::AsyncCommands;

const BIN: &str = env!("CARGO_BIN_EXE_outfitter-panel");

#[actix_web::test]
async fn token_add_prints_the_token_once_on_the_last_line_and_stores_only_its_hash() {
    let redis = RedisServer::start();
    let out = Command::new(BIN)
        .args([
            "token",
            "add",
            "--name",
            "admin",
            "--role",
            "admin",
            "--redis-url",
            &redis.url(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("oft_") && token.len() == 68, "{stdout:?}");
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let stored: std::collections::HashMap<String, String> =
        c.hgetall(redis_keys::TOKENS).await.unwrap();
    assert_eq!(stored.len(), 1);
    let (hash, record) = stored.into_iter().next().unwrap();
    assert_eq!(hash, outfitter_panel::auth::tokens::hash_token(&token));
    assert!(!record.contains(&token) && record.contains(r#""role":"admin""#));

    let again = Command::new(BIN)
        .args([
            "token",
            "add",
            "--name",
            "admin",
            "--role",
            "viewer",
            "--redis-url",
            &redis.url(),
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let bad = Command::new(BIN)
        .args(["token", "add", "--name", "x", "--role", "root"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[actix_web::test]
async fn agent_add_registers_and_prints_the_runner_configuration() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    let out = Command::new(BIN)
        .args(["agent", "add", "web-7", "--redis-url", &redis.url()])
        .arg("--secret-file")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: toml::Table = toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let key = PanelSecret::load_or_create(&secret)
        .unwrap()
        .agent_key("web-7")
        .to_hex();
    assert_eq!(config["agent_id"].as_str(), Some("web-7"));
    assert_eq!(config["agent_key"].as_str(), Some(key.as_str()));
    assert_eq!(config["redis_url"].as_str(), Some(redis.url().as_str()));
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let registered: bool = c.hexists(redis_keys::AGENTS, "web-7").await.unwrap();
    assert!(registered);
    let audit: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(redis_keys::AUDIT)
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|(_, f)| f.iter().any(|(k, v)| k == "action" && v == "agent.add"))
    );

    for bad in ["web*", "a{b}", "Web-1"] {
        let out = Command::new(BIN)
            .args(["agent", "add", bad, "--redis-url", &redis.url()])
            .arg("--secret-file")
            .arg(&secret)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("must match"),
            "{bad}"
        );
    }
}

#[actix_web::test]
async fn serve_reads_the_config_file_and_environment() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("panel.toml");
    std::fs::write(
        &cfg,
        format!(
            "bind = \"127.0.0.1:{port}\"\ninstallers = \"{}\"\nsecret_file = \"{}\"\nredis_url = \"redis://127.0.0.1:1/\"\n",
            common::bundles_dir().display(),
            dir.path().join("secret").display()
        ),
    )
    .unwrap();
    // The environment overrides the file's (wrong) Redis URL.
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("OUTFITTER_REDIS_URL", redis.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    outfitter_test_support::install_tls_provider();
    let mut healthy = false;
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await
            && r.status() == 200
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy, "serve answered /healthz");
}

#[test]
fn error_table_in_docs_matches_the_code_table() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    for code in outfitter_panel::error::Code::ALL {
        let (name, status) = code.spec();
        let row = format!("| `{name}` | {status} |");
        assert!(doc.contains(&row), "docs/api.md lacks the row {row}");
    }
    let rows = doc
        .lines()
        .filter(|l| {
            l.starts_with("| `")
                && l.split('|')
                    .nth(2)
                    .is_some_and(|s| s.trim().parse::<u16>().is_ok())
        })
        .count();
    assert_eq!(
        rows,
        outfitter_panel::error::Code::ALL.len(),
        "no extra codes in the docs"
    );
}
