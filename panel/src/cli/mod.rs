//! `serve`, `agent add|config|rotate|remove`, `token add`: the panel's commands other than
//! `lint`.

pub mod args;
pub mod docs;

use actix_web::{HttpServer, web};
use anyhow::Context as _;
use outfitter_contract::labels::Labels;

use crate::agents::keys as agent_keys;
use crate::agents::lifecycle::{self, Actor, Removal, Rotation};
use crate::auth::Role;
use crate::auth::tokens::{self, TokenError};
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::settings::Settings;
use crate::state::{AppState, connect};
use crate::{agents, audit};

/// Who the command line acts as, in the audit log.
fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// Runs the HTTP server until it is stopped (SIGINT/SIGTERM).
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let bind = settings.bind;
    let workers = settings.workers;
    let state = web::Data::new(AppState::new(settings).await?);
    AppState::spawn_background(&state.clone().into_inner());
    tracing::info!(%bind, "outfitter-panel listening");
    let app_state = state.clone();
    // SSE streams are long-lived: do not wait the default 30 s for them on shutdown.
    let mut server =
        HttpServer::new(move || crate::build_app(app_state.clone())).shutdown_timeout(5);
    if let Some(n) = workers {
        server = server.workers(n.max(1));
    }
    server
        .bind(bind)
        .with_context(|| format!("binding {bind}"))?
        .run()
        .await
        .context("HTTP server")
}

/// `agent add <id> [--label k=v]… [--redis-user]`: registers the agent (with its own Redis
/// user when asked) and returns the runner's configuration. For an id registered already it
/// returns the current configuration, as `agent config` does (its labels stay; `agent label`
/// changes them; `--redis-user` gives it a Redis user it did not have).
pub async fn agent_add(
    settings: &Settings,
    id: &str,
    labels: &Labels,
    redis_user: bool,
) -> anyhow::Result<String> {
    outfitter_contract::ids::validate_agent_id(id)?;
    outfitter_contract::labels::check_labels(labels)?;
    let secret = outfitter_contract::keys::PanelSecret::load_or_create(&settings.secret_file)?;
    let (_, mut conn) = connect(settings).await?;
    let actor = cli_actor();
    if agents::register(&mut conn, id, labels, &actor, now_ms()).await? {
        let detail = outfitter_contract::labels::labels_text(labels);
        audit::record(&mut conn, &actor, "agent.add", id, "local", &detail).await;
        eprintln!("registered agent {id}; its runner configuration follows (keep it secret)");
    } else {
        audit::record(
            &mut conn,
            &actor,
            "agent.config",
            id,
            "local",
            "via agent add",
        )
        .await;
        eprintln!(
            "agent {id} was registered already; its current runner configuration follows (keep it secret)"
        );
    }
    let keys = if redis_user {
        agents::redis_user::enable(&mut conn, &secret, id).await
    } else {
        agent_keys::load(&mut conn, &secret, id).await
    }
    .map_err(ApiError::from)?;
    Ok(keys.runner_config(&settings.redis_url, settings.redis_cluster))
}

/// `agent label <id> [key=value | key-]…`: applies the changes and returns the labels.
pub async fn agent_label(
    settings: &Settings,
    id: &str,
    changes: &[String],
) -> anyhow::Result<Labels> {
    outfitter_contract::ids::validate_agent_id(id)?;
    let (_, mut conn) = connect(settings).await?;
    let reg = agents::registration(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::from(agent_keys::not_registered(id)))?;
    if changes.is_empty() {
        return Ok(reg.labels);
    }
    let mut labels = reg.labels;
    for change in changes {
        match change.strip_suffix('-') {
            Some(key) if !change.contains('=') => {
                outfitter_contract::labels::check_key(key)?;
                labels.remove(key);
            }
            _ => {
                let (k, v) = outfitter_contract::labels::parse_assignment(change)?;
                labels.insert(k, v);
            }
        }
    }
    let who = cli_actor();
    let actor = Actor {
        who: &who,
        from: "local",
    };
    agents::set_labels(&mut conn, id, &labels, actor)
        .await
        .map_err(ApiError::from)?;
    Ok(labels)
}

/// `agent config <id>`: the runner's configuration of a registered agent, at its current key
/// generation (e.g. again after the panel secret was replaced).
pub async fn agent_config(settings: &Settings, id: &str) -> anyhow::Result<String> {
    outfitter_contract::ids::validate_agent_id(id)?;
    let secret = outfitter_contract::keys::PanelSecret::load_or_create(&settings.secret_file)?;
    let (_, mut conn) = connect(settings).await?;
    let keys = agent_keys::load(&mut conn, &secret, id)
        .await
        .map_err(ApiError::from)?;
    let detail = format!("key generation {}", keys.generation);
    audit::record(
        &mut conn,
        &cli_actor(),
        "agent.config",
        id,
        "local",
        &detail,
    )
    .await;
    Ok(keys.runner_config(&settings.redis_url, settings.redis_cluster))
}

/// `agent rotate <id>`: the next key generation; returns the new configuration and the
/// rotation (whose notice says what becomes of the jobs already signed).
pub async fn agent_rotate(settings: &Settings, id: &str) -> anyhow::Result<(String, Rotation)> {
    outfitter_contract::ids::validate_agent_id(id)?;
    let secret = outfitter_contract::keys::PanelSecret::load_or_create(&settings.secret_file)?;
    let (_, mut conn) = connect(settings).await?;
    let who = cli_actor();
    let actor = Actor {
        who: &who,
        from: "local",
    };
    let rotation = lifecycle::rotate(&mut conn, &secret, id, actor)
        .await
        .map_err(ApiError::from)?;
    Ok((
        rotation
            .keys
            .runner_config(&settings.redis_url, settings.redis_cluster),
        rotation,
    ))
}

/// `agent remove <id> [--force]`: unregisters the agent (see [`lifecycle::remove`]).
pub async fn agent_remove(settings: &Settings, id: &str, force: bool) -> anyhow::Result<Removal> {
    outfitter_contract::ids::validate_agent_id(id)?;
    let (_, mut conn) = connect(settings).await?;
    let who = cli_actor();
    let actor = Actor {
        who: &who,
        from: "local",
    };
    // Through `ApiError`, so the command line names the same code as the API (`agent_busy: …`).
    Ok(lifecycle::remove(&mut conn, id, force, now_ms(), actor)
        .await
        .map_err(ApiError::from)?)
}

/// `token add`: creates a token and returns it (shown once).
pub async fn token_add(settings: &Settings, name: &str, role: Role) -> anyhow::Result<String> {
    let (_, mut conn) = connect(settings).await?;
    let actor = cli_actor();
    let token = tokens::create(&mut conn, name, role, &actor, now_ms())
        .await
        .map_err(|e| match e {
            TokenError::Exists(_) => anyhow::anyhow!(
                "{e}; delete it first (DELETE /api/v1/tokens/{name}) or pick another name"
            ),
            other => anyhow::anyhow!(other),
        })?;
    audit::record(&mut conn, &actor, "token.add", name, "local", role.as_str()).await;
    Ok(token)
}
