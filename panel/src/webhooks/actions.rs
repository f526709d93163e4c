//! What a person does with webhooks, on behalf of a caller and recorded in the audit log, so
//! the API and the page cannot forget to: register, delete, redeliver.

use super::error::Result;
use super::model::{Delivery, Webhook};
use super::store::{self, Created, NewWebhook};
use crate::audit;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::state::AppState;

/// Registers a webhook; the secret in the answer is shown this once.
pub async fn create(state: &AppState, new: NewWebhook, caller: &Caller) -> Result<Created> {
    let mut conn = state.redis.clone();
    let created = store::create(
        &mut conn,
        &state.secret.webhook_key(),
        state.settings.webhook_deny_private,
        new,
        &caller.name,
        now_ms(),
    )
    .await?;
    let w = &created.webhook;
    let detail = format!("url={} events={}", w.url, w.events.join(","));
    audit::record(
        &mut conn,
        &caller.name,
        "webhook.create",
        &w.id,
        &caller.from,
        &detail,
    )
    .await;
    Ok(created)
}

/// Deletes a webhook and its delivery log.
pub async fn delete(state: &AppState, id: &str, caller: &Caller) -> Result<Webhook> {
    let mut conn = state.redis.clone();
    let hook = store::load(&mut conn, id).await?;
    store::delete(&mut conn, id).await?;
    let detail = format!("url={}", hook.url);
    audit::record(
        &mut conn,
        &caller.name,
        "webhook.delete",
        id,
        &caller.from,
        &detail,
    )
    .await;
    Ok(hook)
}

/// Queues one delivery again now.
pub async fn redeliver(
    state: &AppState,
    webhook_id: &str,
    delivery_id: &str,
    caller: &Caller,
) -> Result<Delivery> {
    let mut conn = state.redis.clone();
    let d = store::redeliver(&mut conn, webhook_id, delivery_id, now_ms()).await?;
    super::emit::QUEUED.notify_one();
    let detail = format!("webhook={webhook_id} event={}", d.event);
    audit::record(
        &mut conn,
        &caller.name,
        "webhook.redeliver",
        delivery_id,
        &caller.from,
        &detail,
    )
    .await;
    Ok(d)
}
