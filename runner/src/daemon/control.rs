//! The control channel: cancel requests from the panel, on a dedicated pubsub connection
//! (re-subscribed whenever it drops; the cancel flag poll covers messages missed meanwhile).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use outfitter_contract::control::ControlMessage;

use super::Shared;
use crate::metrics::RedisOp;

/// Subscribes through the one server, or a cluster's seed nodes in turn (classic pubsub on a
/// cluster delivers a message published on any node to subscribers on every node).
pub async fn listen_forever(shared: Arc<Shared>) {
    let channel = shared.names.control_channel();
    let clients = match shared.cfg.redis.node_clients() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no control channel: the Redis URLs do not make clients");
            return;
        }
    };
    for client in clients.iter().cycle() {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    let mut messages = pubsub.on_message();
                    // Ends only when the connection drops.
                    while let Some(msg) = messages.next().await {
                        match serde_json::from_slice::<ControlMessage>(msg.get_payload_bytes()) {
                            Ok(ControlMessage::Cancel { job_id }) => {
                                if shared.cancel(&job_id) {
                                    tracing::info!(job = %job_id, "cancel requested");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "unreadable control message"),
                        }
                    }
                    shared.metrics.redis_error(RedisOp::Control);
                }
                Err(e) => {
                    shared.metrics.redis_error(RedisOp::Control);
                    tracing::debug!(error = %e, "cannot subscribe to the control channel")
                }
            },
            Err(e) => {
                shared.metrics.redis_error(RedisOp::Control);
                tracing::debug!(error = %e, "no pubsub connection")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
