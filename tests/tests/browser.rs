//! The panel in a real headless chromium: sign in, search the catalog, fill a form whose
//! `visible_if` field appears on a toggle, see server-side errors beside the fields, fix
//! them, and watch the job's progress bar and live log reach success; the servers page shows
//! the runners' own counts. Its screenshots go to
//! `target/screenshots/`; `UPDATE_SCREENSHOTS=1` refreshes the committed ones in
//! docs/screenshots/ (the README shows them) — see `browser::screenshot_dir`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use fantoccini::{Client, Locator};
use outfitter_tests::Stack;
use outfitter_tests::browser::Browser;
use outfitter_tests::stack::test_bundles;

const LIMIT: Duration = Duration::from_secs(60);

fn screenshots() -> PathBuf {
    outfitter_tests::browser::screenshot_dir()
}

/// The shipped installers plus the harmless `e2e-website` bundle: the catalog looks real in
/// the screenshots, and the only app this test installs prints and exits.
fn catalog_dir(root: &Path) -> Result<PathBuf> {
    let dir = root.join("installers");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers");
    let mut bundles: Vec<PathBuf> = std::fs::read_dir(&shipped)?
        .flatten()
        .map(|e| e.path())
        .collect();
    bundles.push(test_bundles().join("e2e-website"));
    for bundle in bundles.into_iter().filter(|b| b.is_dir()) {
        copy_tree(
            &bundle,
            &dir.join(bundle.file_name().context("bundle name")?),
        )?;
    }
    Ok(dir)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(&path, to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// Polls a JavaScript expression until it is truthy.
async fn until(c: &Client, what: &str, js: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let v = c.execute(&format!("return !!({js});"), vec![]).await?;
        if v == true {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{what}: `{js}` still false after {LIMIT:?} on {}",
                c.current_url().await?
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text(c: &Client, css: &str) -> Result<String> {
    Ok(c.find(Locator::Css(css))
        .await
        .with_context(|| format!("finding {css}"))?
        .text()
        .await?)
}

async fn set_value(c: &Client, css: &str, value: &str) -> Result<()> {
    let el = c
        .find(Locator::Css(css))
        .await
        .with_context(|| format!("finding {css}"))?;
    el.clear().await?;
    el.send_keys(value).await?;
    Ok(())
}

/// Whether the element `#error-<field>` is shown, non-empty and inside `#field-<field>`.
async fn error_beside(c: &Client, field: &str) -> Result<String> {
    let js = format!(
        "const e = document.querySelector('#field-{field} #error-{field}');\
         return e && !e.hidden && e.offsetParent !== null ? e.textContent.trim() : '';"
    );
    let msg = c.execute(&js, vec![]).await?;
    let msg = msg.as_str().unwrap_or_default().to_owned();
    ensure!(!msg.is_empty(), "no error shown beside {field}");
    Ok(msg)
}

async fn walk_through_the_panel(s: &mut Stack, browser: &Browser) -> Result<()> {
    let c = &browser.client;
    let base = s.panel().url();

    // Sign in with the admin token.
    c.goto(&format!("{base}/login")).await?;
    set_value(c, "#input-token", &s.token).await?;
    c.find(Locator::Css("#sign-in")).await?.click().await?;
    until(
        c,
        "the dashboard after sign-in",
        "document.querySelector('#tiles')",
    )
    .await?;
    c.find(Locator::Css("#nav-catalog")).await?.click().await?;
    until(c, "the catalog", "document.querySelector('#apps')").await?;
    until(
        c,
        "the demo app card",
        "document.querySelector('#app-e2e-website')",
    )
    .await?;
    browser
        .screenshot(&screenshots().join("catalog.png"))
        .await?;

    // Search narrows the catalog.
    set_value(c, "#search", "demo").await?;
    c.find(Locator::Css("#search-form button[type=submit]"))
        .await?
        .click()
        .await?;
    until(c, "search results", "location.search.includes('q=demo')").await?;
    let cards = c.find_all(Locator::Css("#apps .card")).await?;
    ensure!(
        cards.len() == 1,
        "searching 'demo' shows one app, not {}",
        cards.len()
    );
    c.find(Locator::Css("#app-e2e-website h2 a"))
        .await?
        .click()
        .await?;
    until(c, "the app page", "document.querySelector('#install-form')").await?;

    // The TLS email appears only once HTTPS is switched on.
    let email = c.find(Locator::Css("#field-tls_email")).await?;
    ensure!(
        !email.is_displayed().await?,
        "tls_email is hidden while enable_tls is off"
    );
    c.find(Locator::Css("#input-enable_tls"))
        .await?
        .click()
        .await?;
    until(
        c,
        "tls_email revealed",
        "!document.querySelector('#field-tls_email').hidden",
    )
    .await?;
    ensure!(
        email.is_displayed().await?,
        "tls_email shows once enable_tls is on"
    );

    // Invalid values. The browser's own HTML5 checks would stop the submission with a
    // bubble; switch them off so the server's checks (the ones that count) answer.
    set_value(c, "#input-site_name", "Bad Name!").await?;
    set_value(c, "#input-http_port", "80").await?;
    set_value(c, "#input-tls_email", "not-an-email").await?;
    c.execute(
        "document.getElementById('install-form').noValidate = true;",
        vec![],
    )
    .await?;
    c.find(Locator::Css("#install")).await?.click().await?;
    until(
        c,
        "the form with errors",
        "document.querySelector('.field.invalid')",
    )
    .await?;
    for field in ["site_name", "http_port", "tls_email"] {
        error_beside(c, field).await?;
    }
    let kept = c
        .find(Locator::Css("#input-site_name"))
        .await?
        .prop("value")
        .await?;
    ensure!(
        kept.as_deref() == Some("Bad Name!"),
        "the entered value is kept: {kept:?}"
    );
    // All three errors in view for the picture.
    c.execute(
        "document.querySelector('#field-site_name').scrollIntoView({block: 'start'});",
        vec![],
    )
    .await?;
    browser
        .screenshot(&screenshots().join("form-errors.png"))
        .await?;

    // Fixed values go through and lead to the job page.
    set_value(c, "#input-site_name", "shop-demo").await?;
    set_value(c, "#input-http_port", "8443").await?;
    until(
        c,
        "tls_email still shown",
        "!document.querySelector('#field-tls_email').hidden",
    )
    .await?;
    set_value(c, "#input-tls_email", "ops@example.com").await?;
    c.find(Locator::Css("#install")).await?.click().await?;
    until(c, "the job page", "document.querySelector('#job')").await?;

    // Watch the page as it runs: progress moves and log lines arrive before the end.
    let deadline = tokio::time::Instant::now() + LIMIT;
    let (mut seen_partial, mut seen_live_log) = (false, false);
    loop {
        let snap = c
            .execute(
                "const j = document.querySelector('#job'); if (!j) return null;\
                 return [document.querySelector('#progress').value,\
                         document.querySelector('#job-state').textContent.trim(),\
                         document.querySelector('#log').textContent, j.dataset.terminal];",
                vec![],
            )
            .await?;
        if let Some([progress, state, log, terminal]) = snap.as_array().map(Vec::as_slice) {
            let progress = progress.as_f64().unwrap_or(0.0);
            let running = state == "running" || state == "queued";
            seen_partial |= running && progress > 0.0 && progress < 100.0;
            seen_live_log |= running
                && log
                    .as_str()
                    .is_some_and(|l| l.contains("Checking the settings"));
            if terminal == "true" {
                ensure!(state == "succeeded", "the job ended {state}");
                ensure!(progress == 100.0, "the bar is full at the end: {progress}");
                break;
            }
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the job page never reached the end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(seen_partial, "the progress bar moved while the job ran");
    ensure!(seen_live_log, "log lines arrived live while the job ran");
    let log = text(c, "#log").await?;
    ensure!(
        log.contains(
            "Starting the service for shop-demo on port 8443 (https: true, ops@example.com)"
        ),
        "the log shows the submitted settings: {log}"
    );
    browser
        .screenshot(&screenshots().join("job-succeeded.png"))
        .await?;
    change_settings_and_uninstall(c, browser).await?;
    watch_a_rollout(s, c, browser, &base).await?;
    servers_show_the_runners_counts(c, browser, &base).await?;
    a_server_page_with_live_charts(c, browser).await
}

/// From the servers page to the server page of `local`: its charts are filled from the real
/// runner's heartbeats, and while the page stays open the charts update without a reload
/// (the point count grows with the next heartbeat).
async fn a_server_page_with_live_charts(c: &Client, browser: &Browser) -> Result<()> {
    c.find(Locator::Css("#agent-local .agent-link"))
        .await?
        .click()
        .await?;
    until(
        c,
        "the server page of local with a line in its CPU chart",
        "document.querySelector('#chart-cpu path.line-a') && \
         document.querySelector('#chart-network path.line-a')",
    )
    .await?;
    let points = |t: String| -> Result<u64> {
        t.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("no point count in {t:?}"))
    };
    let before = points(text(c, "#points").await?)?;
    ensure!(before >= 2, "a line needs two points: {before}");
    // A marker on the page: gone if the page reloaded instead of swapping its charts.
    c.execute("document.body.dataset.stayed = 'yes';", vec![])
        .await?;
    until(
        c,
        "the charts to update live",
        &format!(
            "parseInt(document.querySelector('#points').textContent, 10) > {before} && \
             document.body.dataset.stayed === 'yes'"
        ),
    )
    .await?;
    let top = text(c, "#top-cpu").await?;
    ensure!(top.contains("PID"), "the top processes table: {top}");
    ensure!(
        text(c, "#agent-jobs").await?.contains("succeeded"),
        "the server's recent jobs"
    );
    c.execute(
        "document.querySelector('#agent-charts').scrollIntoView();",
        vec![],
    )
    .await?;
    browser.screenshot(&screenshots().join("server.png")).await
}

/// The servers page shows what each real runner counted, from its heartbeat: once the
/// jobs of this walk are in it (a heartbeat every 5 s), both servers show succeeded jobs.
async fn servers_show_the_runners_counts(c: &Client, browser: &Browser, base: &str) -> Result<()> {
    let counted = "['local', 'edge-2'].every(a => { \
         const s = document.querySelector('#runner-stats-' + a + ' .stat-succeeded'); \
         return s && parseInt(s.textContent, 10) > 0; })";
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        c.goto(&format!("{base}/agents")).await?;
        until(c, "the servers page", "document.querySelector('#agents')").await?;
        if c.execute(&format!("return !!({counted});"), vec![]).await? == true {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no runner counts on the servers page after {LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let local = text(c, "#runner-stats-local").await?;
    ensure!(
        local.contains("Redis errors") && local.contains("last job"),
        "the counts of local: {local}"
    );
    browser.screenshot(&screenshots().join("servers.png")).await
}

/// Labels two servers on the servers page, starts a rollout over them from the rollouts
/// page (one server at a time, a pause between), and watches its grid change colour live.
async fn watch_a_rollout(s: &mut Stack, c: &Client, browser: &Browser, base: &str) -> Result<()> {
    s.start_agent("edge-2")?;
    s.api().wait_agent_online("edge-2", LIMIT).await?;
    c.goto(&format!("{base}/agents")).await?;
    for agent in ["local", "edge-2"] {
        until(
            c,
            "the labels form",
            &format!("document.querySelector('#labels-{agent}')"),
        )
        .await?;
        set_value(c, &format!("#labels-{agent}"), "role=edge, env=demo").await?;
        c.find(Locator::Css(&format!("#save-labels-{agent}")))
            .await?
            .click()
            .await?;
        until(
            c,
            "the saved labels",
            &format!("document.querySelector('#labels-{agent}').value === 'env=demo, role=edge'"),
        )
        .await?;
    }
    c.find(Locator::Css("#nav-rollouts")).await?.click().await?;
    until(
        c,
        "the rollouts page",
        "document.querySelector('#rollout-form')",
    )
    .await?;
    c.find(Locator::Css("#app_id option[value='e2e-website']"))
        .await?
        .click()
        .await?;
    set_value(c, "#selector", "role=edge").await?;
    set_value(
        c,
        "#inputs",
        r#"{"site_name": "fleet-demo", "http_port": 8080}"#,
    )
    .await?;
    set_value(c, "#pause_seconds", "4").await?;
    c.find(Locator::Css("#start-rollout"))
        .await?
        .click()
        .await?;
    until(
        c,
        "the rollout page",
        "document.querySelector('#rollout-grid')",
    )
    .await?;
    // The first server is done and the second waits out the pause: the grid shows both.
    until(
        c,
        "the first server succeeded, live",
        "document.querySelector('#target-edge-2.target-succeeded') && \
         document.querySelector('#target-local.target-pending')",
    )
    .await?;
    ensure!(text(c, "#rollout-state").await? == "running");
    browser
        .screenshot(&screenshots().join("rollout.png"))
        .await?;
    // The dashboard shows it in progress, and links back to it.
    let rollout_page = c.current_url().await?;
    c.find(Locator::Css("#nav-dashboard"))
        .await?
        .click()
        .await?;
    until(
        c,
        "the rollout in progress on the dashboard",
        "document.querySelector('#rollouts-in-progress tr[id^=\"rollout-\"]') && \
         document.querySelector('#tile-rollouts .value').textContent === '1'",
    )
    .await?;
    browser
        .screenshot(&screenshots().join("dashboard.png"))
        .await?;
    c.goto(rollout_page.as_str()).await?;
    until(
        c,
        "the rollout to succeed, live",
        "document.querySelector('#rollout-state').textContent === 'succeeded' && \
         document.querySelector('#target-local.target-succeeded')",
    )
    .await?;
    // The page reloads itself once the rollout has ended, with its history.
    until(
        c,
        "the ended rollout's page",
        "document.querySelector('#rollout-grid') && \
         document.querySelector('#rollout-grid').dataset.final === 'true'",
    )
    .await?;
    ensure!(
        text(c, "#rollout-history")
            .await?
            .contains("succeeded on 2 server(s)"),
        "the history says how it ended"
    );
    Ok(())
}

/// Waits on a job page until the job ends; returns its state.
async fn job_end(c: &Client) -> Result<String> {
    until(
        c,
        "the job to end",
        "document.querySelector('#job') && document.querySelector('#job').dataset.terminal === 'true'",
    )
    .await?;
    text(c, "#job-state").await
}

/// From the finished install's job page to its installation; change a setting there, then
/// uninstall with the confirmation.
async fn change_settings_and_uninstall(c: &Client, browser: &Browser) -> Result<()> {
    c.find(Locator::Css("#job-installation"))
        .await?
        .click()
        .await?;
    until(
        c,
        "the installation page",
        "document.querySelector('#installation')",
    )
    .await?;
    ensure!(text(c, "#installation-state").await? == "installed");
    let current = c
        .execute(
            "return document.querySelector('#input-site_name').value;",
            vec![],
        )
        .await?;
    ensure!(
        current == "shop-demo",
        "the form shows the current value: {current}"
    );
    set_value(c, "#input-site_name", "shop-two").await?;
    c.find(Locator::Css("#reconfigure")).await?.click().await?;
    until(
        c,
        "the reconfigure job page",
        "document.querySelector('#job')",
    )
    .await?;
    ensure!(
        job_end(c).await? == "succeeded",
        "the change of settings succeeded"
    );
    ensure!(
        text(c, "#log")
            .await?
            .contains("Starting the service for shop-two")
    );

    c.find(Locator::Css("#job-installation"))
        .await?
        .click()
        .await?;
    until(
        c,
        "the settled installation",
        "document.querySelector('#installation-state') && \
         document.querySelector('#installation-state').textContent.trim() === 'installed' && \
         document.querySelectorAll('#history tbody tr').length >= 2",
    )
    .await?;
    ensure!(
        text(c, "#settings").await?.contains("shop-two"),
        "the new value is held"
    );
    browser
        .screenshot(&screenshots().join("installation.png"))
        .await?;

    // Without the confirmation the browser does not submit; with it, the uninstall runs.
    c.find(Locator::Css("#confirm-uninstall"))
        .await?
        .click()
        .await?;
    c.find(Locator::Css("#uninstall")).await?.click().await?;
    until(
        c,
        "the uninstall job page",
        "document.querySelector('#job')",
    )
    .await?;
    ensure!(job_end(c).await? == "succeeded", "the uninstall succeeded");
    ensure!(text(c, "#log").await?.contains("Removing shop-two"));
    c.find(Locator::Css("#job-installation"))
        .await?
        .click()
        .await?;
    until(
        c,
        "the uninstalled installation",
        "document.querySelector('#installation-state') && \
         document.querySelector('#installation-state').textContent.trim() === 'uninstalled'",
    )
    .await?;
    ensure!(
        c.execute("return !document.querySelector('#uninstall-form');", vec![])
            .await?
            == true,
        "an uninstalled installation offers no uninstall"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_in_fills_the_form_fixes_errors_and_watches_the_job_succeed() {
    let root = tempfile::tempdir().expect("temp dir");
    let installers = catalog_dir(root.path()).expect("catalog for the browser test");
    let mut stack = Stack::start_with(&installers)
        .await
        .expect("starting the installation");
    let result = async {
        stack.start_agent("local")?;
        stack.api().wait_agent_online("local", LIMIT).await?;
        let browser = Browser::start(root.path()).await?;
        let walked = walk_through_the_panel(&mut stack, &browser).await;
        if walked.is_err() {
            // The page as it was when things went wrong, for the failure message.
            let shot = std::env::temp_dir().join("outfitter-browser-failure.png");
            let _ = browser.screenshot(&shot).await;
            let source = browser.client.source().await.unwrap_or_default();
            eprintln!(
                "page source at failure:\n{source}\nscreenshot: {}",
                shot.display()
            );
        }
        browser.close().await?;
        walked
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", stack.diagnostics());
    }
}
