//! Hardening of who may come in (issue 14): one token per name even under concurrent
//! creation and every record of a name revoked by one delete; no redirect off this origin
//! after sign-in; failed sign-ins and invalid tokens throttled per address (429 with
//! `Retry-After`) and failed sign-ins audited; the sign-in CSRF value signed by the panel.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::TestPanel;
use futures_util::future::join_all;
use outfitter_contract::redis_keys;
use outfitter_panel::auth::Role;
use outfitter_panel::auth::tokens::{self, TokenRecord};
use redis::AsyncCommands;
use regex::Regex;
use serde_json::{Value, json};

/// What a sign-in form page gave us.
struct LoginForm {
    cookie: String,
    csrf: String,
    next: String,
}

fn input(html: &str, name: &str) -> String {
    let tag = Regex::new(&format!(r#"<input[^>]*name="{name}"[^>]*>"#))
        .unwrap()
        .find(html)
        .unwrap_or_else(|| panic!("no input {name} in {html}"))
        .as_str()
        .to_owned();
    Regex::new(r#"value="([^"]*)""#)
        .unwrap()
        .captures(&tag)
        .map(|c| c[1].replace("&#x2F;", "/").replace("&amp;", "&"))
        .unwrap_or_default()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn login_form(p: &TestPanel, next: Option<&str>) -> LoginForm {
    let url = match next {
        Some(n) => format!("{}/login?next={}", p.url, enc(n)),
        None => format!("{}/login", p.url),
    };
    let r = TestPanel::client().get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("outfitter_login_csrf="))
        .expect("the form sets its CSRF cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let html = r.text().await.unwrap();
    LoginForm {
        cookie,
        csrf: input(&html, "_csrf"),
        next: input(&html, "next"),
    }
}

/// Posts the sign-in form: (status, Location, Retry-After, body).
async fn sign_in(
    p: &TestPanel,
    cookie: &str,
    csrf: &str,
    token: &str,
    next: &str,
) -> (u16, String, Option<String>, String) {
    let body = format!(
        "_csrf={}&token={}&next={}",
        enc(csrf),
        enc(token),
        enc(next)
    );
    let r = TestPanel::client()
        .post(format!("{}/login", p.url))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (status, location, retry) = (
        r.status().as_u16(),
        header("location").unwrap_or_default(),
        header("retry-after"),
    );
    (status, location, retry, r.text().await.unwrap())
}

async fn me(p: &TestPanel, token: &str) -> reqwest::Response {
    p.get(token, "/me").await
}

#[actix_web::test]
async fn concurrent_creations_of_one_name_make_one_token_and_delete_revokes_it() {
    let p = TestPanel::start().await;
    // The same app on 4 workers (as `serve` runs on a multi-core host), and 40 clients with
    // warm connections, so the creations really arrive together.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!("http://{}/api/v1", listener.local_addr().unwrap());
    let state = p.state.clone();
    let server = actix_web::HttpServer::new(move || outfitter_panel::build_app(state.clone()))
        .workers(4)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let clients: Vec<reqwest::Client> = (0..40).map(|_| TestPanel::client()).collect();
    for c in &clients {
        let r = c
            .get(format!("{api}/me"))
            .bearer_auth(&p.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for round in 0..10 {
        let name = format!("racer-{round}");
        let body = json!({"name": name, "role": "viewer"});
        let replies = join_all(clients.iter().map(|c| {
            c.post(format!("{api}/tokens"))
                .bearer_auth(&p.admin)
                .json(&body)
                .send()
        }))
        .await;
        let mut created = Vec::new();
        let mut statuses: HashMap<u16, usize> = HashMap::new();
        for r in replies {
            let r = r.unwrap();
            let status = r.status().as_u16();
            *statuses.entry(status).or_default() += 1;
            let v: Value = r.json().await.unwrap();
            if status == 201 {
                created.push(v["token"].as_str().unwrap().to_owned());
            } else {
                assert_eq!(v["code"], "already_exists", "{v}");
            }
        }
        assert_eq!(statuses.get(&201), Some(&1), "{name}: {statuses:?}");
        assert_eq!(statuses.get(&409), Some(&39), "{name}: {statuses:?}");
        let list: Value = p.get(&p.admin, "/tokens").await.json().await.unwrap();
        let named = list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["name"] == name.as_str())
            .count();
        assert_eq!(named, 1, "{list}");

        assert_eq!(me(&p, &created[0]).await.status(), 200);
        let r = TestPanel::client()
            .delete(p.api(&format!("/tokens/{name}")))
            .bearer_auth(&p.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(me(&p, &created[0]).await.status(), 401);
    }
    handle.stop(false).await;
}

#[actix_web::test]
async fn delete_revokes_every_record_of_the_name() {
    // Duplicates as the racy creation left them in Redis before the fix.
    let p = TestPanel::start().await;
    let mut conn = p.conn();
    let mut dups = Vec::new();
    for _ in 0..3 {
        let token = tokens::random_secret(tokens::TOKEN_PREFIX).unwrap();
        let rec = TokenRecord {
            name: "dup".into(),
            role: Role::Admin,
            created_at: 1,
            created_by: "test".into(),
        };
        let _: () = conn
            .hset(
                redis_keys::TOKENS,
                tokens::hash_token(&token),
                serde_json::to_string(&rec).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(me(&p, &token).await.status(), 200);
        dups.push(token);
    }
    let r = TestPanel::client()
        .delete(p.api("/tokens/dup"))
        .bearer_auth(&p.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for t in &dups {
        assert_eq!(me(&p, t).await.status(), 401, "a duplicate survived");
    }
    assert_eq!(
        me(&p, &p.admin).await.status(),
        200,
        "other names untouched"
    );
}

#[actix_web::test]
async fn sign_in_never_redirects_off_this_origin() {
    let p = TestPanel::start().await;
    let hostile = [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\x0b/evil.example",
        "/\r/evil.example",
        "/\0/evil.example",
        "//evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "/ /evil.example",
        "\t//evil.example",
        "https://evil.example/",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\u{2028}/evil.example",
    ];
    for next in hostile {
        let form = login_form(&p, Some(next)).await;
        assert_eq!(form.next, "/dashboard", "the form kept {next:?}");
        // The form's own value, and the hostile value posted directly: both go to the
        // landing page.
        for posted in [form.next.as_str(), next] {
            let form = login_form(&p, None).await;
            let (status, location, _, body) =
                sign_in(&p, &form.cookie, &form.csrf, &p.viewer, posted).await;
            assert_eq!(status, 303, "{next:?}: {body}");
            assert_eq!(location, "/dashboard", "{next:?}");
        }
    }
    for next in ["/jobs?state=failed", "/apps/demo-form", "/jobs/x?y=%2F%2F"] {
        let form = login_form(&p, Some(next)).await;
        assert_eq!(form.next, next);
        let (status, location, _, _) =
            sign_in(&p, &form.cookie, &form.csrf, &p.viewer, &form.next).await;
        assert_eq!((status, location.as_str()), (303, next));
    }
}

#[actix_web::test]
async fn failed_sign_ins_are_throttled_per_address_and_audited() {
    let p = TestPanel::start_with(|s| {
        s.auth_failure_burst = 3;
        s.auth_failure_refill_secs = 60;
    })
    .await;
    for _ in 0..3 {
        let form = login_form(&p, None).await;
        let (status, ..) = sign_in(&p, &form.cookie, &form.csrf, "oft_wrong", "/").await;
        assert_eq!(status, 401);
    }
    let form = login_form(&p, None).await;
    let (status, _, retry, body) = sign_in(&p, &form.cookie, &form.csrf, "oft_wrong", "/").await;
    assert_eq!(status, 429, "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(body.contains("too many failed sign-ins"), "{body}");
    // Blocked: even the right token is refused, before it is looked at.
    let form = login_form(&p, None).await;
    let (status, location, retry, _) = sign_in(&p, &form.cookie, &form.csrf, &p.viewer, "/").await;
    assert_eq!((status, location.as_str()), (429, ""));
    assert!(retry.is_some());

    let entries = outfitter_panel::audit::list(&mut p.conn(), None, 100)
        .await
        .unwrap();
    let failed: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "session.login_failed")
        .collect();
    assert_eq!(failed.len(), 4, "{entries:?}");
    for e in &failed {
        assert_eq!(
            (e.who.as_str(), e.from.as_str()),
            ("anonymous", "127.0.0.1")
        );
        assert!(!e.detail.contains("oft_wrong"), "no token in the log");
    }
    assert!(failed[0].detail.contains("blocked"), "{:?}", failed[0]);
}

#[actix_web::test]
async fn invalid_bearer_tokens_are_throttled_until_the_bucket_refills() {
    let p = TestPanel::start_with(|s| {
        s.auth_failure_burst = 3;
        s.auth_failure_refill_secs = 2;
    })
    .await;
    let bad = tokens::random_secret(tokens::TOKEN_PREFIX).unwrap();
    for _ in 0..3 {
        assert_eq!(me(&p, &bad).await.status(), 401);
    }
    let r = me(&p, &bad).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "too_many_requests");
    // The address is blocked for every token, the valid ones too (no oracle while blocked).
    assert_eq!(me(&p, &p.admin).await.status(), 429);
    // Valid requests never cost anything: many of them after the block ends.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for _ in 0..20 {
        assert_eq!(me(&p, &p.admin).await.status(), 200);
    }
}

#[actix_web::test]
async fn sign_in_csrf_must_be_a_value_this_panel_issued() {
    let p = TestPanel::start().await;
    // Any equal cookie/field pair the attacker picks is refused.
    let chosen = [
        "abc".to_owned(),
        format!(
            "{}.{}.{}",
            outfitter_panel::clock::now_ms(),
            "a".repeat(64),
            "b".repeat(64)
        ),
    ];
    for v in &chosen {
        let cookie = format!("outfitter_login_csrf={v}");
        let (status, _, _, body) = sign_in(&p, &cookie, v, &p.viewer, "/").await;
        assert_eq!(status, 403, "{v}: {body}");
        assert!(body.contains("csrf_failed"), "{body}");
    }
    // A value issued by the panel, but another form's cookie: refused too.
    let a = login_form(&p, None).await;
    let b = login_form(&p, None).await;
    let (status, ..) = sign_in(&p, &a.cookie, &b.csrf, &p.viewer, "/").await;
    assert_eq!(status, 403);
    let (status, location, _, _) = sign_in(&p, &a.cookie, &a.csrf, &p.viewer, "/").await;
    assert_eq!((status, location.as_str()), (303, "/"));
}
