//! The server page `/agents/{id}`, its live charts fragment and `GET /api/v1/agents/{id}/metrics`,
//! against a real Redis whose history was written by the runner's own heartbeat script: the
//! charts have lines, the table says the same, hostile names from the server are escaped,
//! installations and jobs of the server are listed, and bad ranges and unknown servers are
//! refused by name.

mod common;

use common::TestPanel;
use outfitter_contract::host::HostFacts;
use outfitter_contract::host_metrics::{
    Disk, HostMetrics, Interface, Load, Memory, Nginx, Process, Services,
};
use outfitter_contract::metrics_history;
use outfitter_contract::redis_keys::AgentRedisKeys;
use serde_json::Value;

const MARKUP: &str = "<img src=x onerror=alert(1)>";

fn metrics(cpu_pct: f64) -> HostMetrics {
    HostMetrics {
        cpu_pct,
        load: Load {
            one: 0.5,
            five: 0.4,
            fifteen: 0.3,
        },
        memory: Memory {
            total_mb: 4096,
            used_mb: 1024,
            free_mb: 2048,
            available_mb: 3072,
            cached_mb: 512,
            swap_total_mb: 1024,
            swap_used_mb: 256,
        },
        disks: vec![Disk {
            mount: "/".into(),
            total_mb: 100_000,
            used_mb: 40_000,
            free_mb: 60_000,
            read_bytes_per_s: 1_000.0,
            write_bytes_per_s: 2_000.0,
        }],
        networks: vec![Interface {
            name: format!("eth{MARKUP}"),
            rx_bytes_per_s: 150_000.0,
            tx_bytes_per_s: 20_000.0,
            ..Interface::default()
        }],
        processes: 87,
        top_cpu: vec![Process {
            pid: 4242,
            name: format!("miner{MARKUP}"),
            cpu_pct: 93.5,
            rss_mb: 300,
        }],
        top_memory: vec![],
        services: Services {
            nginx: Some(Nginx {
                active_connections: 12,
                requests_per_s: 3.5,
            }),
            ..Services::default()
        },
        collect_cpu_us: 900,
    }
}

/// One heartbeat through the runner's script: facts and a history point at `ts`.
async fn beat(p: &TestPanel, agent: &str, ts: i64, cpu_pct: f64) {
    let m = metrics(cpu_pct);
    let facts = HostFacts {
        ts,
        metrics: Some(m.clone()),
        ..common::facts(agent, "debian", "12", 4096)
    };
    let call = metrics_history::heartbeat(
        &AgentRedisKeys::new(agent),
        &serde_json::to_string(&facts).unwrap(),
        600,
        Some((ts, &m.sample())),
    );
    let script = redis::Script::new(metrics_history::HEARTBEAT);
    let mut script = script.prepare_invoke();
    for k in &call.keys {
        script.key(k);
    }
    for a in &call.args {
        script.arg(a);
    }
    let _: redis::Value = script.invoke_async(&mut p.conn()).await.unwrap();
}

/// `count` heartbeats 5 s apart ending now, CPU rising by `step` points from 10%.
async fn history(p: &TestPanel, agent: &str, count: i64, step: f64) -> i64 {
    let now = outfitter_panel::clock::now_ms();
    for i in 0..count {
        beat(
            p,
            agent,
            now - (count - 1 - i) * 5_000,
            10.0 + step * i as f64,
        )
        .await;
    }
    now
}

async fn page(p: &TestPanel, session: &str, path: &str) -> (u16, String) {
    let r = TestPanel::client()
        .get(format!("{}{path}", p.url))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[actix_web::test]
async fn the_server_page_draws_its_history_and_escapes_what_the_server_says() {
    let p = TestPanel::start().await;
    history(&p, "web-1", 12, 5.0).await;
    let job = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let (session, _) = p.sign_in(&p.viewer).await;

    let (status, html) = page(&p, &session, "/agents/web-1").await;
    assert_eq!(status, 200, "{html}");
    for chart in ["chart-cpu", "chart-memory", "chart-disk", "chart-network"] {
        let start = html
            .find(&format!(r#"<svg class="chart" id="{chart}""#))
            .unwrap_or_else(|| panic!("no {chart}"));
        let svg = &html[start..start + html[start..].find("</svg>").unwrap()];
        assert!(
            svg.contains(r#"<path class="line-a" d="M"#),
            "{chart}: {svg}"
        );
        assert!(!svg.contains("No data yet"), "{chart} has points");
    }
    assert!(html.contains(r#"id="points">12 points over the last hour"#));
    // The table under the charts: the newest point first, as the charts' values.
    let table = &html[html.find(r#"id="metrics-table""#).unwrap()..];
    let body = &table[table.find("<tbody>").unwrap()..];
    let first_row = &body[..body.find("</tr>").unwrap()];
    assert!(first_row.contains("<td>65%</td>"), "{first_row}");
    assert!(table.contains("<td>10%</td>") && table.contains("150 KB/s"));
    // What the server said, escaped; service metrics; its jobs.
    assert!(
        !html.contains(MARKUP),
        "raw markup from the server reached the page"
    );
    assert!(html.contains("miner&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("eth&lt;img"));
    assert!(html.contains(r#"id="service-nginx">12 active connections"#));
    assert!(html.contains(&format!(r#"href="/jobs/{job}""#)));
    // The demo job's installation, listed as what is installed (or being installed) here.
    let installed = &html[html.find(r#"id="agent-installations""#).unwrap()..];
    assert!(installed.contains(r#"href="/installations/"#) && installed.contains(">demo-form</a>"));
    // The servers page links here.
    let (_, list) = page(&p, &session, "/agents").await;
    assert!(list.contains(r#"href="/agents/web-1" class="agent-link""#));

    // The live fragment is the charts alone, for the range asked.
    let (status, fragment) = page(&p, &session, "/agents/web-1/charts?range=day").await;
    assert_eq!(status, 200);
    assert!(
        fragment.starts_with(r#"<div id="agent-charts" data-agent-id="web-1" data-range="day""#)
    );
    assert!(fragment.contains(r#"id="range-day" class="current""#));
    assert!(!fragment.contains("<html"), "a fragment, not a page");
}

#[actix_web::test]
async fn a_server_without_history_bad_ranges_and_unknown_servers() {
    let p = TestPanel::start().await;
    let (session, _) = p.sign_in(&p.viewer).await;
    let (status, html) = page(&p, &session, "/agents/gone-1").await;
    assert_eq!(status, 200);
    assert!(html.contains("No data yet") && html.contains(r#"id="no-points""#));
    assert!(html.contains(r#"id="no-jobs""#));

    let (status, html) = page(&p, &session, "/agents/web-1?range=year").await;
    assert_eq!(status, 400);
    assert!(
        html.contains("range must be one of hour, day, month"),
        "{html}"
    );
    assert_eq!(page(&p, &session, "/agents/nobody-9").await.0, 404);
    assert_eq!(page(&p, &session, "/agents/bad%20id").await.0, 400);
    assert_eq!(page(&p, &session, "/agents/nobody-9/charts").await.0, 404);
    // Signed out, the page sends to sign-in like every other.
    let r = TestPanel::client()
        .get(format!("{}/agents/web-1", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[actix_web::test]
async fn the_api_gives_the_history_of_each_range() {
    let p = TestPanel::start().await;
    // Three minutes of heartbeats: CPU 10%, 11%, … 46%.
    let now = history(&p, "web-1", 37, 1.0).await;

    let r = p.get(&p.viewer, "/agents/web-1/metrics").await;
    assert_eq!(r.status(), 200);
    let h: Value = r.json().await.unwrap();
    assert_eq!(h["agent_id"], "web-1");
    assert_eq!(h["range"], "hour");
    assert_eq!(h["point_ms"], 5_000);
    let points = h["points"].as_array().unwrap();
    assert_eq!(points.len(), 37, "{h}");
    assert_eq!(points[0]["sample"]["cpu_pct"], 10.0);
    assert_eq!(points[36]["sample"]["cpu_pct"], 46.0);
    assert_eq!(points[36]["sample"]["memory_pct"], 25.0);
    assert!(points[0]["ts"].as_i64().unwrap() < points[36]["ts"].as_i64().unwrap());
    assert!(points[36]["ts"].as_i64().unwrap() <= now);

    // A day is minute averages, each written once its minute is over: two or three here.
    let day: Value = p
        .get(&p.viewer, "/agents/web-1/metrics?range=day")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(day["point_ms"], 60_000);
    let minutes = day["points"].as_array().unwrap();
    assert!(
        (2..=3).contains(&minutes.len()),
        "three minutes of heartbeats are two or three minute points: {day}"
    );
    for m in minutes {
        let cpu = m["sample"]["cpu_pct"].as_f64().unwrap();
        assert!(
            (10.0..=46.0).contains(&cpu),
            "an average of the samples: {m}"
        );
        assert_eq!(
            m["ts"].as_i64().unwrap() % 60_000,
            0,
            "a minute's start: {m}"
        );
    }

    let bad = p.get(&p.viewer, "/agents/web-1/metrics?range=year").await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["code"], "invalid_parameter");
    let unknown = p.get(&p.viewer, "/agents/nobody-9/metrics").await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["code"],
        "agent_not_found"
    );
}
