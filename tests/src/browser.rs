//! A headless Debian `chromium` driven through `chromedriver` (both from apt: `chromium`,
//! `chromium-driver`), one fresh profile per test, for the real-browser test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder};
use serde_json::json;
use tempfile::TempDir;

use crate::ports::free_port;
use crate::process::Daemon;

/// The window every screenshot is taken at (the README shows them).
pub const WINDOW: (u32, u32) = (1280, 800);

/// Where the browser test saves its screenshots. By default under the build directory
/// (`$CARGO_TARGET_DIR`, else `target/`) in `screenshots/`, so a test run leaves the tree as
/// it was; with `UPDATE_SCREENSHOTS=1` it refreshes the committed ones in `docs/screenshots/`
/// (the README shows them).
pub fn screenshot_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        return root.join("docs/screenshots");
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("screenshots")
}

/// How long chromedriver may take to answer `/status`.
const READY_LIMIT: Duration = Duration::from_secs(20);

/// Flags for a quiet, deterministic headless chromium: no sandbox (we run as root in a
/// container), no GPU, no QUIC, no first-run UI, no background traffic.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
];

/// A chromedriver process and one browser session through it.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    // Dropped after the client: the driver must outlive the session.
    _driver: Daemon,
    _profile: TempDir,
}

/// The chromium binary (`OUTFITTER_CHROMIUM` overrides).
fn chromium() -> PathBuf {
    std::env::var_os("OUTFITTER_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from)
}

/// The chromedriver binary (`OUTFITTER_CHROMEDRIVER` overrides).
fn chromedriver() -> PathBuf {
    std::env::var_os("OUTFITTER_CHROMEDRIVER")
        .map_or_else(|| "/usr/bin/chromedriver".into(), PathBuf::from)
}

impl Browser {
    /// Starts chromedriver on a free port (log in `log_dir`) and opens a headless session.
    pub async fn start(log_dir: &Path) -> Result<Self> {
        for bin in [chromium(), chromedriver()] {
            if !bin.is_file() {
                bail!(
                    "{} is missing: the browser test needs Debian's chromium and chromium-driver \
                     (scripts/test installs them with apt-get)",
                    bin.display()
                );
            }
        }
        let port = free_port();
        let mut cmd = Command::new(chromedriver());
        cmd.arg(format!("--port={port}"));
        let mut driver = Daemon::spawn("chromedriver", cmd, &log_dir.join("chromedriver.log"))?;
        let url = format!("http://127.0.0.1:{port}");
        wait_for_driver(&mut driver, &url).await?;

        let profile = tempfile::Builder::new()
            .prefix("outfitter-chromium-")
            .tempdir()?;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--window-size={},{}", WINDOW.0, WINDOW.1));
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium(), "args": args}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .with_context(|| {
                format!(
                    "opening a chromium session; chromedriver said:\n{}",
                    driver.output_tail(30)
                )
            })?;
        fit_viewport(&client).await?;
        Ok(Self {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Saves a PNG of the viewport to `path`, checking it is at least [`WINDOW`] in size.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let png = self.client.screenshot().await?;
        let (w, h) = png_size(&png).context("chromium returned something that is not a PNG")?;
        if w < WINDOW.0 || h < WINDOW.1 {
            bail!(
                "screenshot {} is {w}×{h}, smaller than {}×{}",
                path.display(),
                WINDOW.0,
                WINDOW.1
            );
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Ends the session (closing chromium) before the driver is killed.
    pub async fn close(self) -> Result<()> {
        self.client.close().await?;
        Ok(())
    }
}

/// Sizes the window so that the viewport (what a screenshot shows) is exactly [`WINDOW`]:
/// the window size includes the browser's own frame, whose height varies between versions.
async fn fit_viewport(client: &Client) -> Result<()> {
    client.set_window_size(WINDOW.0, WINDOW.1).await?;
    let inner = client
        .execute("return [window.innerWidth, window.innerHeight]", vec![])
        .await?;
    let (iw, ih) = (
        inner[0].as_u64().unwrap_or(0),
        inner[1].as_u64().unwrap_or(0),
    );
    let frame_w = u32::try_from(u64::from(WINDOW.0).saturating_sub(iw)).unwrap_or(0);
    let frame_h = u32::try_from(u64::from(WINDOW.1).saturating_sub(ih)).unwrap_or(0);
    client
        .set_window_size(WINDOW.0 + frame_w, WINDOW.1 + frame_h)
        .await?;
    Ok(())
}

async fn wait_for_driver(driver: &mut Daemon, url: &str) -> Result<()> {
    outfitter_test_support::install_tls_provider();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + READY_LIMIT;
    loop {
        driver.ensure_running()?;
        if let Ok(r) = http.get(format!("{url}/status")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "chromedriver did not answer within {READY_LIMIT:?}:\n{}",
                driver.output_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(png[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(png[20..24].try_into().ok()?);
    Some((w, h))
}
