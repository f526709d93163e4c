//! The pages: sign-in, catalog, the generated form (errors beside each field, values kept,
//! no secret echoed, hidden inputs dropped), job page, lists, audit, CSRF on every form.

mod common;

use std::collections::HashMap;

use common::{TestPanel, conformance_summary};
use outfitter_contract::conformance::{Outcome, RESULT_FILE};
use outfitter_contract::job::JobState;
use regex::Regex;
use serde_json::Value;

/// A minimal browser: cookies, forms, no automatic redirects.
struct Browser {
    base: String,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    location: String,
    set_cookies: Vec<String>,
    html: String,
}

impl Page {
    /// The value of the hidden/visible input `name` (first one), HTML-decoded.
    fn input_value(&self, name: &str) -> Option<String> {
        let re = Regex::new(&format!(
            r#"<input[^>]*name="{}"[^>]*>"#,
            regex::escape(name)
        ))
        .unwrap();
        let tag = re.find(&self.html)?.as_str();
        let v = Regex::new(r#"value="([^"]*)""#).unwrap();
        Some(
            v.captures(tag)
                .map(|c| c[1].replace("&amp;", "&").replace("&quot;", "\""))
                .unwrap_or_default(),
        )
    }

    /// The element with this id (its opening tag and text up to the closing tag).
    fn element(&self, id: &str) -> String {
        let re = Regex::new(&format!(
            r#"(?s)<(\w+)[^>]*id="{}"[^>]*>.*?</"#,
            regex::escape(id)
        ))
        .unwrap();
        re.find(&self.html)
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|| panic!("no #{id} in page"))
    }

    fn has(&self, s: &str) -> bool {
        self.html.contains(s)
    }
}

impl Browser {
    fn new(p: &TestPanel) -> Self {
        Browser {
            base: p.url.clone(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, r: reqwest::Response) -> Page {
        let set_cookies: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookies {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            set_cookies,
            html: r.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = TestPanel::client()
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = form
            .iter()
            .map(|(k, v)| {
                let enc = |s: &str| {
                    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                        .to_string()
                };
                format!("{}={}", enc(k), enc(v))
            })
            .collect::<Vec<_>>()
            .join("&");
        let r = TestPanel::client()
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    /// Signs in with a token and returns the session's CSRF token.
    async fn sign_in(&mut self, token: &str) -> String {
        let login = self.get("/login").await;
        let csrf = login.input_value("_csrf").unwrap();
        let done = self
            .post(
                "/login",
                &[("_csrf", &csrf), ("token", token), ("next", "/")],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.html);
        let home = self.get("/").await;
        home.input_value("_csrf")
            .expect("pages carry the session's CSRF token")
    }
}

#[actix_web::test]
async fn pages_need_sign_in_and_the_session_cookie_is_http_only_and_strict() {
    let p = TestPanel::start().await;
    let mut b = Browser::new(&p);
    let home = b.get("/jobs?state=failed").await;
    assert_eq!(home.status, 303);
    assert_eq!(home.location, "/login?next=/jobs%3Fstate%3Dfailed");

    let login = b.get("/login?next=/jobs").await;
    assert_eq!(login.status, 200);
    let csrf = login.input_value("_csrf").unwrap();
    assert!(login.has(r#"name="token""#));

    let wrong = b
        .post(
            "/login",
            &[("_csrf", &csrf), ("token", "oft_nope"), ("next", "/jobs")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(
        !wrong.element("error-token").contains("hidden"),
        "{}",
        wrong.element("error-token")
    );

    let login = b.get("/login").await;
    let csrf = login.input_value("_csrf").unwrap();
    let forged = b
        .post("/login", &[("_csrf", "forged"), ("token", &p.operator)])
        .await;
    assert_eq!(forged.status, 403);
    assert!(forged.has(r#"data-code="csrf_failed""#));

    let ok = b
        .post(
            "/login",
            &[("_csrf", &csrf), ("token", &p.operator), ("next", "/jobs")],
        )
        .await;
    assert_eq!((ok.status, ok.location.as_str()), (303, "/jobs"));
    let session = ok
        .set_cookies
        .iter()
        .find(|c| c.starts_with("outfitter_session="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(session.contains("Path=/"), "{session}");
    assert!(
        !session.contains(&p.operator),
        "the cookie is not the token"
    );
    let jobs = b.get("/jobs").await;
    assert_eq!(jobs.status, 200);
    assert!(jobs.element("who").contains("ops"));

    let after = b
        .post("/login", &[("_csrf", &csrf), ("token", &p.operator)])
        .await;
    assert_eq!(after.status, 403, "the sign-in CSRF cookie is single-use");

    let page_csrf = jobs.input_value("_csrf").unwrap();
    assert_eq!(b.post("/logout", &[("_csrf", "bad")]).await.status, 403);
    let out = b.post("/logout", &[("_csrf", &page_csrf)]).await;
    assert_eq!((out.status, out.location.as_str()), (303, "/login"));
    assert_eq!(b.get("/").await.status, 303, "signed out");
}

#[actix_web::test]
async fn catalog_searches_and_shows_admins_the_invalid_bundles() {
    let p = TestPanel::start().await;
    let mut admin = Browser::new(&p);
    admin.sign_in(&p.admin).await;
    let page = admin.get("/").await;
    assert!(page.has(r#"name="q""#));
    for id in ["app-demo-form", "app-postgresql-database", "app-big-app"] {
        page.element(id);
    }
    assert!(!page.has("app-broken"), "the invalid bundle is not offered");
    let section = page.element("not-offered");
    assert!(page.has("Broken_App") && page.has("<code>M"), "{section}");
    let card = page.element("app-postgresql-database");
    assert!(card.contains("PostgreSQL database"));

    let found = admin.get("/?q=postgresql").await;
    assert!(found.has(r#"id="app-postgresql-database""#) && !found.has(r#"id="app-demo-form""#));
    let by_cat = admin.get("/?category=testing").await;
    assert!(by_cat.has(r#"id="app-demo-form""#) && !by_cat.has(r#"id="app-postgresql-database""#));
    let none = admin.get("/?q=%3Cscript%3Ealert(1)%3C/script%3E").await;
    assert!(
        none.has("no-apps") && !none.has("<script>alert"),
        "queries are escaped"
    );

    let mut viewer = Browser::new(&p);
    viewer.sign_in(&p.viewer).await;
    assert!(
        !viewer.get("/").await.has("not-offered"),
        "only admins see why"
    );
}

#[actix_web::test]
async fn app_form_is_generated_from_the_manifest() {
    let p = TestPanel::start().await;
    let mut b = Browser::new(&p);
    b.sign_in(&p.operator).await;
    let page = b.get("/apps/demo-form").await;
    assert_eq!(page.status, 200);
    let site = Regex::new(r#"<input[^>]*name="site_name"[^>]*>"#)
        .unwrap()
        .find(&page.html)
        .unwrap()
        .as_str()
        .to_owned();
    for attr in [
        r#"type="text""#,
        r#"value="demo-site""#,
        r#"pattern="^[a-z][a-z-]*$""#,
        r#"minlength="3""#,
        r#"maxlength="30""#,
        "required",
    ] {
        assert!(site.contains(attr), "{attr} in {site}");
    }
    assert!(page.has(r#"type="email" name="admin_email""#));
    let port = Regex::new(r#"<input[^>]*name="http_port"[^>]*>"#)
        .unwrap()
        .find(&page.html)
        .unwrap()
        .as_str()
        .to_owned();
    assert!(
        port.contains(r#"type="number""#)
            && port.contains(r#"min="1""#)
            && port.contains(r#"max="65535""#)
            && port.contains(r#"value="8080""#)
    );
    assert!(page.has(r#"<select name="db_mode""#));
    assert!(page.has(r#"type="password" name="db_password""#));
    assert!(page.has(r#"type="checkbox" name="enable_tls""#));
    let host = page.element("field-db_host");
    assert!(
        host.contains(r#"data-visible-if="{&quot;db_mode&quot;:[&quot;external&quot;]}""#),
        "{host}"
    );
    assert!(page.has("Used only when db_mode is external."));
    for name in [
        "site_name",
        "admin_email",
        "http_port",
        "workers",
        "db_mode",
        "db_host",
        "db_password",
        "enable_tls",
    ] {
        assert!(
            page.element(&format!("error-{name}")).contains("hidden"),
            "no error shown yet for {name}"
        );
    }
    // The picker: eligible servers enabled, the others disabled with the reason.
    assert!(page.has(r#"<select name="_agent" id="agent" required>"#));
    assert!(
        page.has(r#"<option value="web-1" selected>web-1</option>"#),
        "{}",
        page.html
    );
    assert!(page.has(r#"<option value="old-1" disabled>old-1 — runs debian version 10 but the app needs at least 11</option>"#));
    assert!(page.has(r#"<option value="gone-1" disabled>gone-1 — offline</option>"#));

    let big = b.get("/apps/big-app").await;
    assert!(
        big.has(r#"id="no-agent""#) && big.has("65536 MiB"),
        "no server fits the big app"
    );
}

#[actix_web::test]
async fn the_picker_shows_a_server_registered_here_at_once_and_a_new_heartbeat_within_a_second() {
    let p = TestPanel::start().await;
    let mut b = Browser::new(&p);
    b.sign_in(&p.operator).await;
    // The first view takes the panel's snapshot of the statuses.
    assert!(!b.get("/apps/demo-form").await.has(r#"value="new-1""#));

    let r = p
        .post(&p.admin, "/agents", &serde_json::json!({"id": "new-1"}))
        .await;
    assert_eq!(r.status(), 201);
    let page = b.get("/apps/demo-form").await;
    assert!(
        page.has(r#"<option value="new-1" disabled>new-1 — offline</option>"#),
        "a registration of this panel is offered at once: {}",
        page.html
    );

    p.heartbeat(&common::facts("new-1", "debian", "12", 4096))
        .await;
    let written = std::time::Instant::now();
    loop {
        let page = b.get("/apps/demo-form").await;
        if page.has(r#"<option value="new-1""#) && !page.has(r#"value="new-1" disabled"#) {
            break;
        }
        assert!(
            written.elapsed() < std::time::Duration::from_secs(3),
            "the heartbeat of new-1 is not in the picker {:?} after it was written",
            written.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn app_page_shows_the_conformance_result_date_and_both_times() {
    let p = TestPanel::start().await;
    p.write_conformance(
        "demo-form",
        &conformance_summary(
            Outcome::Passed,
            &p.digest("demo-form"),
            "2026-11-22T10:51:10Z",
            16_607,
            2_269,
        ),
    );
    p.write_conformance(
        "big-app",
        &conformance_summary(
            Outcome::Failed,
            &p.digest("big-app"),
            "2026-11-21T07:00:00Z",
            4_000,
            1_500,
        ),
    );
    // The fixture bundle ships a result; without it the app is untested.
    let shipped = p
        .dir
        .path()
        .join("installers/postgresql-database")
        .join(RESULT_FILE);
    if shipped.exists() {
        std::fs::remove_file(shipped).unwrap();
    }
    p.state.reload_catalog();
    let mut b = Browser::new(&p);
    b.sign_in(&p.viewer).await;

    let page = b.get("/apps/demo-form").await;
    assert_eq!(page.status, 200);
    assert!(page.element("conformance-status").contains(">passed<"));
    let date = page.element("conformance-tested-at");
    assert!(
        date.contains(r#"datetime="2026-11-22T10:51:10Z""#)
            && date.contains("2026-11-22 10:51:10 UTC"),
        "{date}"
    );
    assert!(page.element("conformance-install").contains("16.6 s"));
    assert!(page.element("conformance-reinstall").contains("2.3 s"));

    let failed = b.get("/apps/big-app").await;
    assert!(failed.element("conformance-status").contains(">failed<"));
    let install = failed.element("conformance-install");
    assert!(install.contains("4.0 s"), "{install}");

    let untested = b.get("/apps/postgresql-database").await;
    assert!(
        untested
            .element("conformance-status")
            .contains(">untested<")
    );
    assert!(!untested.has("conformance-install"));

    let catalog = b.get("/").await;
    let card = |id: &str| {
        let start = catalog.html.find(&format!(r#"id="app-{id}""#)).unwrap();
        let end = start + catalog.html[start..].find("</article>").unwrap();
        catalog.html[start..end].to_owned()
    };
    assert!(card("demo-form").contains("tests passed"));
    assert!(card("big-app").contains("tests failed"));
    assert!(card("postgresql-database").contains(">untested<"));
}

#[actix_web::test]
async fn invalid_form_shows_each_error_beside_its_field_keeps_values_and_never_echoes_secrets() {
    let p = TestPanel::start().await;
    let mut b = Browser::new(&p);
    let csrf = b.sign_in(&p.operator).await;
    let secret = "my-very-secret-pw";
    let page = b
        .post(
            "/apps/demo-form",
            &[
                ("_csrf", &csrf),
                ("_agent", "web-1"),
                ("site_name", "Bad Name"),
                ("admin_email", "not-an-email"),
                ("http_port", "8081"),
                ("workers", "99"),
                ("db_mode", "external"),
                ("db_host", ""),
                ("db_password", secret),
                ("enable_tls", "true"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.html);
    for field in ["site_name", "admin_email", "workers", "db_host"] {
        let err = page.element(&format!("error-{field}"));
        assert!(!err.contains("hidden"), "error shown beside {field}: {err}");
        assert!(
            err.len() > format!(r#"<p class="error" id="error-{field}">"#).len() + 3,
            "message for {field}: {err}"
        );
        assert!(
            page.element(&format!("field-{field}"))
                .contains("field invalid")
        );
    }
    for field in ["http_port", "db_password", "enable_tls", "db_mode"] {
        assert!(
            page.element(&format!("error-{field}")).contains("hidden"),
            "no error for {field}"
        );
    }
    assert_eq!(page.input_value("site_name").as_deref(), Some("Bad Name"));
    assert_eq!(page.input_value("http_port").as_deref(), Some("8081"));
    assert_eq!(
        page.input_value("admin_email").as_deref(),
        Some("not-an-email")
    );
    assert!(page.has(r#"<option value="external" selected>"#));
    assert!(
        page.has(r#"value="true" checked"#),
        "the checkbox stays checked"
    );
    assert_eq!(page.input_value("db_password").as_deref(), Some(""));
    assert!(!page.has(secret), "the secret is never echoed");
}

#[actix_web::test]
async fn hidden_inputs_are_dropped_on_the_server_and_a_valid_form_queues_the_job() {
    let p = TestPanel::start().await;
    let mut b = Browser::new(&p);
    let csrf = b.sign_in(&p.operator).await;
    let done = b
        .post(
            "/apps/demo-form",
            &[
                ("_csrf", &csrf),
                ("_agent", "web-1"),
                ("site_name", "good-site"),
                ("admin_email", "me@example.com"),
                ("db_mode", "local"),
                ("db_host", "sneaky.example.com"), // hidden while db_mode is local
                ("db_password", "long enough secret"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.html);
    let id = done.location.strip_prefix("/jobs/").unwrap().to_owned();
    let (env, _) = p.take_job("web-1").await;
    assert_eq!(env.job_id, id);
    assert!(
        !env.inputs.contains_key("db_host"),
        "hidden input dropped: {:?}",
        env.inputs
    );
    assert_eq!(env.inputs["site_name"], "good-site");
    assert_eq!(env.inputs["enable_tls"], false);
    let job: serde_json::Value = p
        .get(&p.viewer, &format!("/jobs/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(job["inputs"].get("db_host").is_none());
    assert_eq!(job["created_by"], "ops");

    let no_agent = b
        .post("/apps/demo-form", &[("_csrf", &csrf), ("site_name", "x")])
        .await;
    assert_eq!(no_agent.status, 422);
    assert!(!no_agent.element("error-_agent").contains("hidden"));
    assert!(
        !no_agent.element("error-site_name").contains("hidden"),
        "field errors shown too"
    );

    let forged = b
        .post(
            "/apps/demo-form",
            &[("_agent", "web-1"), ("site_name", "good-site")],
        )
        .await;
    assert_eq!(forged.status, 403, "no CSRF token, no job");

    let mut viewer = Browser::new(&p);
    let vcsrf = viewer.sign_in(&p.viewer).await;
    assert!(
        viewer
            .get("/apps/demo-form")
            .await
            .has("can browse but not install")
    );
    let denied = viewer
        .post("/apps/demo-form", &[("_csrf", &vcsrf), ("_agent", "web-1")])
        .await;
    assert_eq!(denied.status, 403);
}

#[actix_web::test]
async fn the_job_page_of_a_long_log_shows_its_tail_and_links_the_whole_log() {
    let p = TestPanel::start().await;
    let mut b = Browser::new(&p);
    b.sign_in(&p.viewer).await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    p.log_lines("web-1", &id, 2_100).await;
    let page = b.get(&format!("/jobs/{id}")).await;
    let log = page.element("log");
    assert!(log.contains("line 02099"), "the last line is shown");
    assert!(!log.contains("line 00000"), "the head of a long log is not");
    assert!(
        page.element("log-truncated")
            .contains(&format!("/api/v1/jobs/{id}/log"))
    );
    assert!(
        page.has(r#"data-last-seq="2101""#),
        "live updates resume after the tail"
    );
}

#[actix_web::test]
async fn job_page_shows_progress_log_and_offers_cancel_and_retry() {
    let p = TestPanel::start().await;
    let mut b = Browser::new(&p);
    let csrf = b.sign_in(&p.operator).await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let page = b.get(&format!("/jobs/{id}")).await;
    assert!(page.element("job-state").contains("queued"));
    assert!(page.has(r#"<progress id="progress" max="100" value="0">"#));
    assert!(page.has(r#"data-last-seq="1""#));
    page.element("log");
    page.element("cancel");
    assert!(!page.has(r#"id="retry""#));
    assert!(page.has("********"), "the secret input shows redacted");

    let canceled = b
        .post(&format!("/jobs/{id}/cancel"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(
        (canceled.status, canceled.location.clone()),
        (303, format!("/jobs/{id}"))
    );
    let page = b.get(&format!("/jobs/{id}")).await;
    assert!(page.element("job-state").contains("canceled"));
    assert!(page.has(r#"id="retry""#) && !page.has(r#"id="cancel""#));
    let retried = b
        .post(&format!("/jobs/{id}/retry"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(retried.status, 303);
    // The canceled original left the queue; only the new attempt is there.
    let (env, _) = p.take_job("web-1").await;
    assert_eq!(env.attempt, 2);
    p.run_job("web-1", &id, 2, JobState::Succeeded, Some(0))
        .await;
    let page = b.get(&format!("/jobs/{id}")).await;
    assert!(page.element("job-state").contains("succeeded"));
    assert!(page.element("progress").contains(r#"value="50""#));
    assert!(page.element("exit-code").contains('0'));
    assert!(page.element("duration").contains("1.5 s"));
    assert!(page.element("attempts").contains("2 of 2"));
    assert!(page.element("log").contains("hello from the script"));
    assert!(page.has("Demo done."), "post-install message");
    assert_eq!(
        b.post(&format!("/jobs/{id}/retry"), &[("_csrf", "bad")])
            .await
            .status,
        403
    );
    let refused = b
        .post(&format!("/jobs/{id}/cancel"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(refused.status, 409);
}

#[actix_web::test]
async fn cancel_form_with_a_bad_or_missing_csrf_token_is_403_and_cancels_nothing() {
    let p = TestPanel::start().await;
    let mut b = Browser::new(&p);
    let csrf = b.sign_in(&p.operator).await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let path = format!("/jobs/{id}/cancel");
    let other_session = Browser::new(&p).sign_in(&p.operator).await;
    for form in [
        vec![("_csrf", "bad")],
        vec![],
        vec![("_csrf", "")],
        vec![("_csrf", other_session.as_str())],
    ] {
        let refused = b.post(&path, &form).await;
        assert_eq!(refused.status, 403, "{form:?}");
        assert!(refused.has(r#"data-code="csrf_failed""#), "{form:?}");
        assert_eq!(
            p.job_hash("web-1", &id).await["state"],
            "queued",
            "{form:?}"
        );
    }
    // Still queued and cancelable with the session's own token.
    let depth: u64 = redis::AsyncCommands::llen(
        &mut p.conn(),
        outfitter_contract::redis_keys::AgentRedisKeys::new("web-1").queue(),
    )
    .await
    .unwrap();
    assert_eq!(depth, 1);
    let ok = b.post(&path, &[("_csrf", &csrf)]).await;
    assert_eq!(ok.status, 303);
}

#[actix_web::test]
async fn lists_filter_jobs_show_servers_and_audit_is_for_admins() {
    let p = TestPanel::start().await;
    let a = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let bj = p.demo_job().await["id"].as_str().unwrap().to_owned();
    p.run_job("web-1", &a, 1, JobState::Failed, Some(1)).await;
    let mut b = Browser::new(&p);
    b.sign_in(&p.operator).await;
    let failed = b.get("/jobs?state=failed").await;
    assert!(failed.has(&format!(r#"id="job-{a}""#)) && !failed.has(&format!(r#"id="job-{bj}""#)));
    assert!(failed.has(r#"<option value="failed" selected>"#));
    let all = b.get("/jobs?app_id=demo-form&agent_id=web-1").await;
    assert!(all.has(&format!(r#"id="job-{a}""#)) && all.has(&format!(r#"id="job-{bj}""#)));
    assert_eq!(b.get("/jobs?state=bogus").await.status, 400);

    let servers = b.get("/agents").await;
    assert!(servers.element("agent-web-1").contains(r#"class="online""#));
    assert!(
        servers
            .element("agent-gone-1")
            .contains(r#"class="offline""#)
    );
    assert!(servers.has("debian 12") && servers.has("4096 MiB"));
    assert_eq!(b.get("/audit").await.status, 403);

    let mut admin = Browser::new(&p);
    admin.sign_in(&p.admin).await;
    let audit = admin.get("/audit").await;
    assert_eq!(audit.status, 200);
    assert!(audit.has("job.create") && audit.has("session.login"));
}

/// The whole cell `id` (to its `</td>`), tags and all.
fn cell(page: &Page, id: &str) -> String {
    let start = page
        .html
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no #{id} in page"));
    let len = page.html[start..].find("</td>").expect("the cell ends");
    page.html[start..start + len].to_owned()
}

#[actix_web::test]
async fn servers_page_shows_the_runner_counts_of_each_heartbeat() {
    let p = TestPanel::start().await;
    let mut f = common::facts("web-1", "debian", "12", 4096);
    f.runner = Some(outfitter_contract::host::RunnerStats {
        started_at: 1_767_225_600_000,
        jobs_succeeded: 41,
        jobs_failed: 3,
        jobs_retried: 2,
        jobs_rejected: 1,
        jobs_running: 0,
        outbox_depth: 5,
        redis_errors: 7,
        last_job_ms: Some(2_400),
    });
    p.heartbeat(&f).await;
    let mut b = Browser::new(&p);
    b.sign_in(&p.viewer).await;
    let servers = b.get("/agents").await;
    assert_eq!(servers.status, 200);
    let web1 = cell(&servers, "runner-stats-web-1");
    for shown in [
        "41 succeeded",
        "3 failed",
        "2 retried",
        "1 rejected",
        "outbox 5",
        "Redis errors 7",
        "last job 2.4 s",
        "Runner since 2026-01-01",
    ] {
        assert!(web1.contains(shown), "{shown} missing in {web1}");
    }
    // Failures, a waiting outbox and Redis errors stand out.
    assert!(web1.contains(r#"class="stat-failed bad""#), "{web1}");
    assert!(web1.contains(r#"class="stat-outbox bad""#), "{web1}");
    assert!(web1.contains(r#"class="stat-redis-errors bad""#), "{web1}");
    // A heartbeat without counts (a runner older than them) shows none, and no error.
    assert!(servers.has(r#"id="agent-old-1""#));
    assert!(!servers.has(r#"id="runner-stats-old-1""#));
}

#[actix_web::test]
async fn static_files_and_security_headers() {
    let p = TestPanel::start().await;
    let js = p.get_site("/static/panel.js").await;
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        js.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert_eq!(js.headers()["x-frame-options"], "DENY");
    let js = js.text().await.unwrap();
    assert!(js.contains("visibleIf") && js.contains("EventSource"));
    let css = p.get_site("/static/panel.css").await;
    assert_eq!(css.status(), 200);
    let missing = p.get_site("/nope").await;
    assert_eq!(missing.status(), 404);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .contains(r#"data-code="not_found""#)
    );
}

#[actix_web::test]
async fn a_browser_session_reads_the_api_but_writes_only_with_its_csrf_header() {
    let p = TestPanel::start().await;
    let mut b = Browser::new(&p);
    let csrf = b.sign_in(&p.operator).await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let events = TestPanel::client()
        .get(p.api(&format!("/jobs/{id}/events")))
        .header("cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.status(),
        200,
        "the job page's EventSource authenticates with the cookie"
    );
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    drop(events);
    let cancel = |header: Option<String>| {
        let mut r = TestPanel::client()
            .post(p.api(&format!("/jobs/{id}/cancel")))
            .header("cookie", b.cookie_header());
        if let Some(h) = header {
            r = r.header("x-csrf-token", h);
        }
        r.send()
    };
    let refused = cancel(None).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.json::<serde_json::Value>().await.unwrap()["code"],
        "csrf_failed"
    );
    assert_eq!(cancel(Some("wrong".into())).await.unwrap().status(), 403);
    assert_eq!(cancel(Some(csrf)).await.unwrap().status(), 202);
}

#[actix_web::test]
async fn webhooks_page_registers_shows_the_secret_once_redelivers_and_deletes() {
    use outfitter_panel::webhooks::{Event, EventKind, emit};
    let p = TestPanel::start().await;
    let mut ops = Browser::new(&p);
    ops.sign_in(&p.operator).await;
    assert_eq!(ops.get("/webhooks").await.status, 403);
    assert!(!ops.get("/").await.has("nav-webhooks"));

    let mut b = Browser::new(&p);
    let csrf = b.sign_in(&p.admin).await;
    let page = b.get("/webhooks").await;
    assert_eq!(page.status, 200);
    assert!(page.has(r#"id="webhook-form""#) && page.has(r#"id="no-webhooks""#));
    assert!(b.get("/").await.has(r#"id="nav-webhooks""#));

    let bad = b
        .post(
            "/webhooks",
            &[
                ("_csrf", &csrf),
                ("url", "ftp://example.com/"),
                ("events", "job.failed"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.element("error")
            .contains("url: the scheme must be http or https")
    );
    assert_eq!(
        bad.input_value("url").as_deref(),
        Some("ftp://example.com/")
    );

    let forged = b
        .post(
            "/webhooks",
            &[
                ("_csrf", "forged"),
                ("url", "http://127.0.0.1:9/"),
                ("events", "*"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    let made = b
        .post(
            "/webhooks",
            &[
                ("_csrf", &csrf),
                ("url", "http://127.0.0.1:9/hook"),
                ("events", "job.failed, installation.*"),
            ],
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.html);
    let secret = made.element("secret");
    let secret = secret
        .split('>')
        .nth(1)
        .unwrap()
        .trim_end_matches("</")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let again = b.get("/webhooks").await;
    assert!(!again.has(&secret), "the secret is shown once");
    assert!(again.has("job.failed, installation.*"));

    let mut conn = p.conn();
    let event = Event::new(
        EventKind::JobFailed,
        "job.failed:page:1:0",
        serde_json::json!({}),
    );
    emit(&mut conn, &event).await.unwrap();
    let listed = b.get("/webhooks").await;
    let action =
        Regex::new(r#"action="(/webhooks/(wh_[0-9a-f]+)/deliveries/dl_[0-9a-f]+/redeliver)""#)
            .unwrap();
    let caps = action.captures(&listed.html).expect("a redeliver form");
    let (redeliver, hook) = (caps[1].to_owned(), caps[2].to_owned());
    assert!(listed.has(r#"class="status pending""#) || listed.has(r#"class="status failed""#));
    assert_eq!(b.post(&redeliver, &[("_csrf", "forged")]).await.status, 403);
    let done = b.post(&redeliver, &[("_csrf", &csrf)]).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location, format!("/webhooks#{hook}"));

    let gone = b
        .post(&format!("/webhooks/{hook}/delete"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(gone.status, 303);
    assert!(b.get("/webhooks").await.has(r#"id="no-webhooks""#));
    let audit = b.get("/audit").await;
    for a in ["webhook.create", "webhook.redeliver", "webhook.delete"] {
        assert!(audit.has(a), "{a} in the audit log");
    }
}

#[actix_web::test]
async fn schedules_page_creates_pauses_resumes_and_deletes_and_shows_refusals_beside_the_form() {
    let p = TestPanel::start().await;
    let mut b = Browser::new(&p);
    let csrf = b.sign_in(&p.operator).await;
    let page = b.get("/schedules").await;
    assert_eq!(page.status, 200);
    assert!(page.has(r#"id="nav-schedules""#));
    assert!(page.has(r#"id="no-schedules""#));
    assert!(page.has(r#"id="schedule-form""#));

    // The test bundles all ask for a secret: refused, with the reason and the typed values.
    let refused = b
        .post(
            "/schedules",
            &[
                ("_csrf", &csrf),
                ("name", "nightly"),
                ("cron", "0 3 * * *"),
                ("timezone", "Europe/Berlin"),
                ("kind", "job"),
                ("app_id", "demo-form"),
                ("agent_id", "web-1"),
                ("inputs", r#"{"db_password": "correct horse battery"}"#),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(refused.element("schedule-error").contains("secret"));
    assert_eq!(refused.input_value("name").as_deref(), Some("nightly"));
    assert!(
        !refused.has("correct horse battery"),
        "a secret is never echoed"
    );

    let bad_cron = b
        .post(
            "/schedules",
            &[
                ("_csrf", &csrf),
                ("name", "x"),
                ("cron", "nope"),
                ("kind", "job"),
            ],
        )
        .await;
    assert_eq!(bad_cron.status, 422);
    assert!(bad_cron.element("schedule-error").contains("cron"));

    // An installation's backup: demo-form has no backup script, so that is refused too; an
    // upgrade is a fine thing to schedule.
    let demo = p.demo_job().await;
    let inst = demo["installation_id"].as_str().unwrap();
    let made = b
        .post(
            "/schedules",
            &[
                ("_csrf", &csrf),
                ("name", "weekly upgrade"),
                ("cron", "0 4 * * MON"),
                ("timezone", "UTC"),
                ("kind", "installation"),
                ("installation_id", inst),
                ("action", "upgrade"),
                ("catch_up", "skip"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.html);
    let list = b.get("/schedules").await;
    let id = Regex::new(r#"id="schedule-([0-9a-f-]{36})""#)
        .unwrap()
        .captures(&list.html)
        .expect("a schedule row")[1]
        .to_owned();
    assert!(
        list.element(&format!("schedule-{id}"))
            .contains("weekly upgrade")
    );
    assert!(list.has(r#"class="pause""#));

    let paused = b
        .post(&format!("/schedules/{id}/pause"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(paused.status, 303);
    assert!(b.get("/schedules").await.has(r#"class="resume""#));
    let forged = b
        .post(&format!("/schedules/{id}/resume"), &[("_csrf", "forged")])
        .await;
    assert_eq!(forged.status, 403);
    let resumed = b
        .post(&format!("/schedules/{id}/resume"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(resumed.status, 303);
    let deleted = b
        .post(&format!("/schedules/{id}/delete"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(deleted.status, 303);
    assert!(b.get("/schedules").await.has(r#"id="no-schedules""#));

    let mut viewer = Browser::new(&p);
    viewer.sign_in(&p.viewer).await;
    let seen = viewer.get("/schedules").await;
    assert_eq!(seen.status, 200);
    assert!(!seen.has(r#"id="schedule-form""#));
}

#[actix_web::test]
async fn the_dashboard_counts_the_fleet_and_each_number_links_to_its_list() {
    let p = TestPanel::start().await;
    // web-1: demo-form's install fails, then its script asks for a person, then it goes in;
    // then the catalog moves on to a newer version of it.
    let mut installation = String::new();
    for end in [
        JobState::Failed,
        JobState::NeedsAttention,
        JobState::Succeeded,
    ] {
        let job = p.demo_job().await;
        let id = job["id"].as_str().unwrap().to_owned();
        installation = job["installation_id"].as_str().unwrap().to_owned();
        p.take_job("web-1").await;
        let exit = if end == JobState::Succeeded { 0 } else { 1 };
        p.run_job("web-1", &id, 1, end, Some(exit)).await;
    }
    let manifest = p.dir.path().join("installers/demo-form/manifest.yml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("version: 1.2.0", "version: 1.3.0")).unwrap();
    p.state.reload_catalog();

    let mut b = Browser::new(&p);
    // Signed in from the login page itself (no page to go back to): the dashboard.
    let login = b.get("/login").await;
    let csrf = login.input_value("_csrf").unwrap();
    let done = b
        .post("/login", &[("_csrf", &csrf), ("token", &p.viewer)])
        .await;
    assert_eq!((done.status, done.location.as_str()), (303, "/dashboard"));
    let page = b.get("/dashboard").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.has(r#"id="nav-dashboard""#));
    let value = |id: &str| -> u64 {
        let tile = page.element(&format!("tile-{id}"));
        let re = Regex::new(r#"class="value">(\d+)<"#).unwrap();
        re.captures(&tile).unwrap()[1].parse().unwrap()
    };
    // web-1 and old-1 beat; gone-1 never did.
    assert_eq!(value("servers-online"), 2);
    assert_eq!(value("servers-offline"), 1);
    assert_eq!(value("servers-attention"), 1);
    assert_eq!(value("failures"), 2);
    assert_eq!(value("upgrades"), 1);
    assert_eq!(value("rollouts"), 0);
    let servers: Value = p.get(&p.viewer, "/agents").await.json().await.unwrap();
    let waiting: u64 = servers["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["queue_depth"].as_u64().unwrap())
        .sum();
    assert_eq!(value("jobs-queued"), waiting);
    assert!(
        page.element("tile-servers-attention")
            .contains(r#"href="/agents?status=attention""#)
    );
    for (state, link) in [
        ("failed", "/jobs?state=failed&amp;app_id=demo-form"),
        (
            "needs_attention",
            "/jobs?state=needs_attention&amp;app_id=demo-form",
        ),
    ] {
        assert!(
            page.has(link),
            "{state}: {}",
            page.element("failures-by-app")
        );
    }
    assert!(page.has(&format!(r#"href="/installations/{installation}""#)));
    assert!(
        page.has("<td>1.2.0</td><td>1.3.0</td>"),
        "installed and available"
    );
    assert!(page.has(r#"id="no-rollouts""#));

    // The links land on lists filtered the same way.
    let failed = b.get("/jobs?state=failed&app_id=demo-form").await;
    assert!(failed.has(r#"class="state-failed""#));
    assert!(!failed.has(r#"class="state-succeeded""#) && !failed.has(r#"class="state-queued""#));
    let attention = b.get("/agents?status=attention").await;
    assert!(attention.has(r#"id="agent-web-1""#));
    assert!(!attention.has(r#"id="agent-old-1""#) && !attention.has(r#"id="agent-gone-1""#));
    assert!(attention.has(r#"id="showing""#));
    let offline = b.get("/agents?status=offline").await;
    assert!(offline.has(r#"id="agent-gone-1""#) && !offline.has(r#"id="agent-web-1""#));
    let upgradable = b.get("/agents?upgrade=available").await;
    assert!(upgradable.has(&format!(r#"id="installation-{installation}""#)));
    let bad = b.get("/agents?status=sideways").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.has("status must be one of online, offline, attention"),
        "{}",
        bad.html
    );
}
