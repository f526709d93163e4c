//! Apps that stand on others (`requires`), against a real Redis and the real app: servers
//! lacking the base are not eligible and an install there is `dependency_missing`; once the
//! base is installed the dependant goes on; uninstalling the base is `dependency_in_use`
//! naming the dependant, and the installation page shows both and asks first, until `force`.

mod common;

use std::fs;

use common::TestPanel;
use outfitter_contract::job::JobState;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SCRIPT: &str = "#!/usr/bin/env bash\nset -euo pipefail\necho done\n";

fn write_bundle(p: &TestPanel, id: &str, requires: &[&str]) {
    let dir = p.dir.path().join("installers").join(id);
    fs::create_dir_all(&dir).unwrap();
    let manifest = format!(
        "id: {id}\nname: App {id}\nversion: 1.0.0\ndescription: A test app.\ncategory: testing\n\
         author: Outfitter tests\nos_requirements:\n  family: [debian]\n\
         install_script: install.sh\nuninstall_script: uninstall.sh\ntimeout_seconds: 60\n\
         idempotent: true\nrequires: {requires:?}\n"
    );
    fs::write(dir.join("manifest.yml"), manifest.replace('"', "")).unwrap();
    fs::write(dir.join("install.sh"), SCRIPT).unwrap();
    fs::write(dir.join("uninstall.sh"), SCRIPT).unwrap();
}

/// Installs `app` on web-1 and plays its job to success; the installation id.
async fn install(p: &TestPanel, app: &str) -> String {
    let r = p
        .post(
            &p.operator,
            "/jobs",
            &json!({"app_id": app, "agent_id": "web-1", "inputs": {}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    p.take_job("web-1").await;
    p.run_job("web-1", id, 1, JobState::Succeeded, Some(0))
        .await;
    let inst = job["installation_id"].as_str().unwrap().to_owned();
    let v: Value = p
        .get(&p.viewer, &format!("/installations/{inst}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "installed", "{v}");
    inst
}

async fn page(p: &TestPanel, path: &str) -> String {
    let (session, _) = p.sign_in(&p.operator).await;
    TestPanel::client()
        .get(format!("{}{path}", p.url))
        .header("cookie", session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_dependant_waits_for_its_base_and_the_base_is_not_removed_from_under_it() {
    let p = TestPanel::start().await;
    write_bundle(&p, "base-db", &[]);
    write_bundle(&p, "shop", &["base-db"]);
    p.state.reload_catalog();

    let app: Value = p.get(&p.viewer, "/apps/shop").await.json().await.unwrap();
    assert_eq!(app["requires"], json!(["base-db"]));
    let web1 = app["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "web-1")
        .unwrap();
    assert_eq!(web1["eligible"], false, "{web1}");
    assert_eq!(web1["reason"], "needs base-db installed first");
    assert!(
        page(&p, "/apps/shop")
            .await
            .contains(r#"<a href="/apps/base-db">base-db</a>"#)
    );

    let r = p
        .post(
            &p.operator,
            "/jobs",
            &json!({"app_id": "shop", "agent_id": "web-1", "inputs": {}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "dependency_missing", "{v}");
    assert!(v["message"].as_str().unwrap().contains("base-db"), "{v}");

    let base = install(&p, "base-db").await;
    let app: Value = p.get(&p.viewer, "/apps/shop").await.json().await.unwrap();
    assert!(
        app["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "web-1" && a["eligible"] == true),
        "{app}"
    );
    let shop = install(&p, "shop").await;

    let r = p
        .post(
            &p.operator,
            &format!("/installations/{base}/uninstall"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "dependency_in_use", "{v}");
    assert!(v["message"].as_str().unwrap().contains(&shop), "{v}");

    let base_page = page(&p, &format!("/installations/{base}")).await;
    assert!(base_page.contains(&format!(r#"href="/installations/{shop}">shop</a>"#)));
    assert!(
        base_page.contains(r#"id="force-uninstall""#),
        "asks before going on"
    );
    let shop_page = page(&p, &format!("/installations/{shop}")).await;
    assert!(shop_page.contains(&format!(r#"href="/installations/{base}">base-db</a>"#)));

    let r = p
        .post(
            &p.operator,
            &format!("/installations/{base}/uninstall"),
            &json!({"force": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
}

#[actix_web::test]
async fn an_app_whose_requirement_is_missing_from_the_catalog_is_not_offered() {
    let p = TestPanel::start().await;
    write_bundle(&p, "lonely", &["no-such-app"]);
    p.state.reload_catalog();
    assert_eq!(p.get(&p.viewer, "/apps/lonely").await.status(), 404);
    let cat: Value = p.get(&p.admin, "/catalog").await.json().await.unwrap();
    let text = cat.to_string();
    assert!(
        text.contains("M049") && text.contains("no-such-app"),
        "{text}"
    );
}

#[actix_web::test]
async fn a_listing_by_app_finds_only_that_app_also_for_installations_made_before_the_app_index() {
    let p = TestPanel::start().await;
    write_bundle(&p, "base", &[]);
    write_bundle(&p, "other", &[]);
    p.state.reload_catalog();
    let base = install(&p, "base").await;
    let other = install(&p, "other").await;
    let ids_of = |app: &'static str| {
        let p = &p;
        async move {
            let v: Value = p
                .get(&p.viewer, &format!("/installations?app_id={app}"))
                .await
                .json()
                .await
                .unwrap();
            v["installations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids_of("base").await, std::slice::from_ref(&base));
    assert_eq!(ids_of("other").await, std::slice::from_ref(&other));
    // As an installation made by a panel before the index: no entry, its record tells.
    let mut conn = redis::Client::open(p.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let removed: i64 = redis::cmd("HDEL")
        .arg(outfitter_contract::redis_keys::INSTALLATION_APP)
        .arg(&base)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(removed, 1, "the installation was indexed by app");
    assert_eq!(ids_of("base").await, std::slice::from_ref(&base));
    assert_eq!(ids_of("other").await, [other]);
    assert!(page(&p, "/apps/base").await.contains(&base));
}

#[actix_web::test]
async fn the_per_app_index_is_filled_once_for_older_installations_and_forgets_deleted_ones() {
    use outfitter_contract::redis_keys;
    use outfitter_panel::installations::store;
    use redis::AsyncCommands;

    let p = TestPanel::start().await;
    for app in ["base", "other", "late"] {
        write_bundle(&p, app, &[]);
    }
    p.state.reload_catalog();
    let base = install(&p, "base").await;
    let other = install(&p, "other").await;
    let mut conn = p.state.redis.clone();
    let listed = |app: &'static str| {
        let p = &p;
        async move {
            let filter = store::Filter {
                app_id: Some(app.to_owned()),
                ..store::Filter::default()
            };
            let found = store::list(&mut p.state.redis.clone(), &filter).await;
            found.unwrap().into_iter().map(|i| i.id).collect::<Vec<_>>()
        }
    };
    // As a panel before the per-app index left them: no per-app sets and no mark of a
    // finished backfill; the older one without its id → app entry either.
    let _: () = redis::pipe()
        .del(redis_keys::installations_of_app("base"))
        .del(redis_keys::installations_of_app("other"))
        .del(redis_keys::INSTALLATIONS_BY_APP_READY)
        .hdel(redis_keys::INSTALLATION_APP, &base)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        listed("base").await,
        std::slice::from_ref(&base),
        "before the backfill"
    );
    assert_eq!(store::index_by_app(&mut conn).await.unwrap(), 2);
    assert_eq!(store::index_by_app(&mut conn).await.unwrap(), 0, "once");
    let in_set: Vec<String> = conn
        .zrange(redis_keys::installations_of_app("base"), 0, -1)
        .await
        .unwrap();
    assert_eq!(in_set, std::slice::from_ref(&base));
    // The app's set alone is read now: the panel-wide index is not walked.
    let _: () = conn
        .zrem(redis_keys::INSTALLATIONS_INDEX, &base)
        .await
        .unwrap();
    assert_eq!(listed("base").await, std::slice::from_ref(&base));
    assert_eq!(listed("other").await, [other]);
    // Made after the backfill: indexed where it is created.
    let late = install(&p, "late").await;
    assert_eq!(listed("late").await, [late]);
    // A record that is gone is not listed, although its id stays in the set.
    let agent = outfitter_contract::redis_keys::AgentRedisKeys::new("web-1");
    let _: () = conn.del(agent.installation(&base)).await.unwrap();
    assert!(listed("base").await.is_empty());
    assert!(!page(&p, "/apps/base").await.contains(&base));
}
