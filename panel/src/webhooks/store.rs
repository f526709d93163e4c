//! Webhooks and their delivery logs in Redis: register (validated, secret sealed), list,
//! delete, read deliveries, redeliver.

use std::collections::{BTreeMap, HashMap};

use outfitter_contract::keys::Key;
use outfitter_contract::redis_keys;
use outfitter_contract::seal;
use outfitter_redis::RedisConn;
use redis::AsyncCommands;
use serde_json::Value;

use super::error::{BadField, Error, Result};
use super::model::{Delivery, EventPattern, Webhook};
use super::{sign, target};
use crate::scripts;

/// Most deliveries one webhook's log keeps (older ones are deleted when new ones come).
pub const MAX_LOG: usize = 1_000;
/// Most event patterns one webhook may list.
pub const MAX_EVENTS: usize = 32;
/// A given secret's length bounds (a generated one has 70 characters).
pub const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// A registration as asked for.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    /// `None`: the panel makes one and shows it once.
    pub secret: Option<String>,
    pub events: Vec<String>,
}

/// A registered webhook and its secret, which is shown this once.
#[derive(Debug, Clone)]
pub struct Created {
    pub webhook: Webhook,
    pub secret: String,
}

/// Checks a webhook id from a path.
pub fn check_webhook_id(id: &str) -> Result<()> {
    let ok = id.len() == 19
        && id.starts_with("wh_")
        && id[3..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "{id:?} is not a webhook id (wh_ and 16 lower-case hex digits)"
        )))
    }
}

/// Checks a delivery id from a path.
pub fn check_delivery_id(id: &str) -> Result<()> {
    let ok = id.len() == 35
        && id.starts_with("dl_")
        && id[3..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "{id:?} is not a delivery id (dl_ and 32 lower-case hex digits)"
        )))
    }
}

/// Every problem of a registration, each naming its field and rule.
pub fn validate(new: &NewWebhook, deny_private: bool) -> Vec<BadField> {
    let mut problems = Vec::new();
    if let Err(Error::Invalid(mut f)) = target::check_url(&new.url, deny_private) {
        problems.append(&mut f);
    }
    if let Some(secret) = &new.secret {
        if !SECRET_LEN.contains(&secret.len()) {
            problems.push(BadField {
                field: "secret",
                rule: "length",
                message: format!(
                    "{} to {} characters (leave it out and the panel makes one)",
                    SECRET_LEN.start(),
                    SECRET_LEN.end()
                ),
            });
        } else if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            problems.push(BadField {
                field: "secret",
                rule: "charset",
                message: "printable ASCII without spaces or control characters".into(),
            });
        }
    }
    if new.events.is_empty() {
        problems.push(BadField {
            field: "events",
            rule: "required",
            message: "name at least one event (e.g. job.failed, installation.*)".into(),
        });
    } else if new.events.len() > MAX_EVENTS {
        problems.push(BadField {
            field: "events",
            rule: "max_items",
            message: format!("at most {MAX_EVENTS} events"),
        });
    }
    for e in new.events.iter().take(MAX_EVENTS) {
        if let Err(why) = e.parse::<EventPattern>() {
            problems.push(BadField {
                field: "events",
                rule: "event",
                message: format!(
                    "{why}; known: {}, or a family like installation.*",
                    super::EventKind::ALL.map(|k| k.as_str()).join(", ")
                ),
            });
        }
    }
    problems
}

/// Registers a webhook.
pub async fn create(
    conn: &mut RedisConn,
    key: &Key,
    deny_private: bool,
    new: NewWebhook,
    by: &str,
    now: i64,
) -> Result<Created> {
    let problems = validate(&new, deny_private);
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    let id = sign::new_webhook_id()?;
    let secret = match new.secret {
        Some(s) => s,
        None => sign::new_secret()?,
    };
    let sealed_secret = seal::seal(
        key,
        &id,
        &BTreeMap::from([("secret".to_owned(), Value::String(secret.clone()))]),
    )
    .map_err(|e| Error::Internal(format!("cannot seal the webhook secret: {e}")))?;
    let mut events = new.events;
    events.dedup();
    let webhook = Webhook {
        id: id.clone(),
        url: new.url,
        events,
        created_at: now,
        created_by: by.to_owned(),
        sealed_secret,
    };
    let json = serde_json::to_string(&webhook).expect("a webhook serializes");
    let _: () = conn.hset(redis_keys::WEBHOOKS, &id, json).await?;
    Ok(Created { webhook, secret })
}

/// The secret of a webhook, opened.
pub fn secret(key: &Key, webhook: &Webhook) -> Result<String> {
    let open = seal::open(key, &webhook.id, &webhook.sealed_secret)
        .map_err(|e| Error::Internal(format!("cannot open the webhook secret: {e}")))?;
    open.get("secret")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::Internal("the sealed webhook secret holds no secret".into()))
}

/// Every webhook, newest first. A record that does not parse is skipped (and logged).
pub async fn list(conn: &mut RedisConn) -> Result<Vec<Webhook>> {
    let all: HashMap<String, String> = conn.hgetall(redis_keys::WEBHOOKS).await?;
    let mut hooks: Vec<Webhook> = all
        .into_iter()
        .filter_map(|(id, json)| match serde_json::from_str(&json) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(webhook = %id, error = %e, "unreadable webhook record");
                None
            }
        })
        .collect();
    hooks.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    Ok(hooks)
}

/// One webhook.
pub async fn load(conn: &mut RedisConn, id: &str) -> Result<Webhook> {
    check_webhook_id(id)?;
    let json: Option<String> = conn.hget(redis_keys::WEBHOOKS, id).await?;
    let json = json.ok_or_else(|| Error::WebhookNotFound(id.to_owned()))?;
    serde_json::from_str(&json).map_err(|e| Error::Internal(format!("webhook {id}: {e}")))
}

/// Deletes a webhook with its log; its pending deliveries are never sent.
pub async fn delete(conn: &mut RedisConn, id: &str) -> Result<()> {
    load(conn, id).await?;
    let log = redis_keys::webhook_deliveries(id);
    let ids: Vec<String> = conn.zrange(&log, 0, -1).await?;
    let mut pipe = redis::pipe();
    pipe.hdel(redis_keys::WEBHOOKS, id).del(&log);
    for d in &ids {
        pipe.del(redis_keys::webhook_delivery(d))
            .zrem(redis_keys::WEBHOOK_DUE, d);
    }
    let _: () = pipe.query_async(conn).await?;
    Ok(())
}

/// One delivery, if it exists.
pub async fn delivery(conn: &mut RedisConn, id: &str) -> Result<Option<Delivery>> {
    let fields: HashMap<String, String> = conn.hgetall(redis_keys::webhook_delivery(id)).await?;
    Ok(Delivery::from_fields(id, &fields))
}

/// The newest `limit` deliveries of a webhook, newest first.
pub async fn deliveries(
    conn: &mut RedisConn,
    webhook_id: &str,
    limit: usize,
) -> Result<Vec<Delivery>> {
    load(conn, webhook_id).await?;
    let limit = limit.clamp(1, MAX_LOG);
    let ids: Vec<String> = conn
        .zrevrange(
            redis_keys::webhook_deliveries(webhook_id),
            0,
            limit as isize - 1,
        )
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.hgetall(redis_keys::webhook_delivery(id));
    }
    let all: Vec<HashMap<String, String>> = pipe.query_async(conn).await?;
    Ok(ids
        .iter()
        .zip(all)
        .filter_map(|(id, f)| Delivery::from_fields(id, &f))
        .collect())
}

/// Queues a delivery of `webhook_id` again now, with a fresh attempt count.
pub async fn redeliver(
    conn: &mut RedisConn,
    webhook_id: &str,
    delivery_id: &str,
    now: i64,
) -> Result<Delivery> {
    load(conn, webhook_id).await?;
    check_delivery_id(delivery_id)?;
    let not_found = || Error::DeliveryNotFound(delivery_id.to_owned());
    let d = delivery(conn, delivery_id).await?.ok_or_else(not_found)?;
    if d.webhook_id != webhook_id {
        return Err(not_found());
    }
    let done: i64 = scripts::WEBHOOK_REDELIVER
        .key(redis_keys::WEBHOOK_DUE)
        .key(redis_keys::webhook_delivery(delivery_id))
        .arg(delivery_id)
        .arg(now)
        .invoke_async(conn)
        .await?;
    if done == 0 {
        return Err(not_found());
    }
    delivery(conn, delivery_id).await?.ok_or_else(not_found)
}
