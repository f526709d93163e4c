//! `GET /metrics` of a real panel: HTTP requests by route pattern and status, build info,
//! and the process metrics.

mod common;

use common::TestPanel;

async fn metrics(p: &TestPanel) -> String {
    p.get_site("/metrics").await.text().await.unwrap()
}

#[actix_web::test]
async fn requests_are_counted_by_route_pattern_and_status() {
    let p = TestPanel::start().await;
    assert_eq!(p.get(&p.viewer, "/apps/demo-form").await.status(), 200);
    assert_eq!(p.get(&p.viewer, "/apps/no-such-app").await.status(), 404);
    assert_eq!(
        p.get(&p.viewer, "/apps/another-missing").await.status(),
        404
    );
    let unmatched = p.get_site("/no/such/page/4711").await;
    assert_eq!(unmatched.status(), 404);

    let text = metrics(&p).await;
    let route = r#"route="/api/v1/apps/{id}""#;
    for line in [
        format!(r#"outfitter_http_requests_total{{method="GET",{route},status="200"}} 1"#),
        format!(r#"outfitter_http_requests_total{{method="GET",{route},status="404"}} 2"#),
        format!(
            r#"outfitter_http_request_duration_seconds_count{{method="GET",{route},status="404"}} 2"#
        ),
        r#"outfitter_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
            .to_owned(),
        format!(
            r#"outfitter_build_info{{version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(text.contains(&line), "missing {line} in:\n{text}");
    }
    assert!(!text.contains("no-such-app"), "ids must not become labels");
    for name in [
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
        "process_threads ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "missing {name}in:\n{text}"
        );
    }
    assert!(text.trim_end().ends_with("# EOF"), "one EOF, at the end");
    assert_eq!(text.matches("# EOF").count(), 1);
}
