//! The webhook vocabulary: the events a webhook can ask for, the patterns that select them,
//! a registered webhook and one delivery.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Every event a webhook can receive. Job events follow the job record's terminal state;
/// installation events follow the settled installation; rollout events are emitted by
/// rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    JobSucceeded,
    /// Failed, timed out, interrupted, rejected or expired (`data.state` says which).
    JobFailed,
    JobNeedsAttention,
    JobCanceled,
    InstallationInstalled,
    InstallationUpgraded,
    InstallationReconfigured,
    InstallationRolledBack,
    InstallationBackedUp,
    InstallationRestored,
    InstallationFailed,
    InstallationUninstalled,
    /// The job of an action was canceled (or never queued) and the installation is back
    /// where it was.
    InstallationCanceled,
    RolloutHalted,
    RolloutSucceeded,
    RolloutAborted,
    /// A server sent no heartbeat for the offline threshold.
    ServerOffline,
    /// A server's fullest mount went above the disk threshold.
    ServerDiskLow,
    /// A server's memory in use went above the memory threshold.
    ServerMemoryLow,
    /// A server's load stayed above cores × the load factor for the load duration.
    ServerLoadHigh,
    /// A condition raised by one of the four above cleared (`data.condition` says which).
    ServerRecovered,
}

impl EventKind {
    pub const ALL: [EventKind; 21] = [
        EventKind::JobSucceeded,
        EventKind::JobFailed,
        EventKind::JobNeedsAttention,
        EventKind::JobCanceled,
        EventKind::InstallationInstalled,
        EventKind::InstallationUpgraded,
        EventKind::InstallationReconfigured,
        EventKind::InstallationRolledBack,
        EventKind::InstallationBackedUp,
        EventKind::InstallationRestored,
        EventKind::InstallationFailed,
        EventKind::InstallationUninstalled,
        EventKind::InstallationCanceled,
        EventKind::RolloutHalted,
        EventKind::RolloutSucceeded,
        EventKind::RolloutAborted,
        EventKind::ServerOffline,
        EventKind::ServerDiskLow,
        EventKind::ServerMemoryLow,
        EventKind::ServerLoadHigh,
        EventKind::ServerRecovered,
    ];

    /// The name in `X-Outfitter-Event`, the payload and a webhook's `events`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JobSucceeded => "job.succeeded",
            Self::JobFailed => "job.failed",
            Self::JobNeedsAttention => "job.needs_attention",
            Self::JobCanceled => "job.canceled",
            Self::InstallationInstalled => "installation.installed",
            Self::InstallationUpgraded => "installation.upgraded",
            Self::InstallationReconfigured => "installation.reconfigured",
            Self::InstallationRolledBack => "installation.rolled_back",
            Self::InstallationBackedUp => "installation.backed_up",
            Self::InstallationRestored => "installation.restored",
            Self::InstallationFailed => "installation.failed",
            Self::InstallationUninstalled => "installation.uninstalled",
            Self::InstallationCanceled => "installation.canceled",
            Self::RolloutHalted => "rollout.halted",
            Self::RolloutSucceeded => "rollout.succeeded",
            Self::RolloutAborted => "rollout.aborted",
            Self::ServerOffline => "server.offline",
            Self::ServerDiskLow => "server.disk_low",
            Self::ServerMemoryLow => "server.memory_low",
            Self::ServerLoadHigh => "server.load_high",
            Self::ServerRecovered => "server.recovered",
        }
    }

    /// `job`, `installation`, `rollout` or `server`.
    pub fn family(self) -> &'static str {
        self.as_str().split('.').next().unwrap_or("")
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown event {s:?}"))
    }
}

/// What a webhook subscribes to: one event, a family (`installation.*`) or everything (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventPattern {
    One(EventKind),
    Family(&'static str),
    All,
}

impl EventPattern {
    pub fn matches(&self, kind: EventKind) -> bool {
        match self {
            Self::One(k) => *k == kind,
            Self::Family(f) => kind.family() == *f,
            Self::All => true,
        }
    }
}

impl FromStr for EventPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            return Ok(Self::All);
        }
        if let Some(family) = s.strip_suffix(".*") {
            return EventKind::ALL
                .into_iter()
                .map(EventKind::family)
                .find(|f| *f == family)
                .map(Self::Family)
                .ok_or_else(|| {
                    format!("unknown event family {family:?} (job, installation or rollout)")
                });
        }
        s.parse().map(Self::One)
    }
}

/// A registered webhook, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// The patterns as given (`job.failed`, `installation.*`).
    pub events: Vec<String>,
    pub created_at: i64,
    pub created_by: String,
    /// The secret, sealed with the panel's webhook key and bound to the id; never shown.
    pub sealed_secret: String,
}

impl Webhook {
    /// Whether `kind` is one of the events this webhook asked for.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events
            .iter()
            .filter_map(|p| p.parse::<EventPattern>().ok())
            .any(|p| p.matches(kind))
    }
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its (next) attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; only a redeliver sends it again.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// One delivery: one event for one webhook, with the outcome of its attempts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    /// The occurrence's key (`job.failed:<job id>:<attempt>`), unique per occurrence.
    pub key: String,
    pub data: serde_json::Value,
    pub status: Status,
    /// Attempts since it was created or last redelivered.
    pub attempts: u32,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
    /// HTTP status of the last answer, if the receiver answered at all.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed (timeout, connection refused, non-2xx).
    pub last_error: Option<String>,
}

/// Field names of the delivery hash (one place, shared with the Lua scripts' ARGV).
pub mod field {
    pub const WEBHOOK: &str = "webhook_id";
    pub const EVENT: &str = "event";
    pub const KEY: &str = "key";
    pub const DATA: &str = "data";
    pub const STATUS: &str = "status";
    pub const ATTEMPTS: &str = "attempts";
    pub const CREATED: &str = "created_at";
    pub const UPDATED: &str = "updated_at";
    pub const SINCE: &str = "since";
    pub const NEXT: &str = "next_at";
    pub const DELIVERED: &str = "delivered_at";
    pub const CODE: &str = "last_code";
    pub const ERROR: &str = "last_error";
}

impl Delivery {
    /// Reads a delivery hash; `None` when it is gone or not a delivery.
    pub fn from_fields(id: &str, f: &HashMap<String, String>) -> Option<Self> {
        let get = |k: &str| f.get(k).filter(|v| !v.is_empty());
        let num = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
        let status = Status::parse(get(field::STATUS)?);
        Some(Self {
            id: id.to_owned(),
            webhook_id: get(field::WEBHOOK)?.clone(),
            event: get(field::EVENT)?.clone(),
            key: get(field::KEY).cloned().unwrap_or_default(),
            data: get(field::DATA)
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(serde_json::Value::Null),
            status,
            attempts: num(field::ATTEMPTS).unwrap_or(0).try_into().unwrap_or(0),
            created_at: num(field::CREATED).unwrap_or(0),
            updated_at: num(field::UPDATED).unwrap_or(0),
            next_attempt_at: num(field::NEXT).filter(|_| status == Status::Pending),
            delivered_at: num(field::DELIVERED),
            last_status_code: num(field::CODE).and_then(|c| u16::try_from(c).ok()),
            last_error: get(field::ERROR).cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_select_one_event_a_family_or_all() {
        let p: EventPattern = "installation.*".parse().unwrap();
        assert!(p.matches(EventKind::InstallationUpgraded));
        assert!(!p.matches(EventKind::JobFailed));
        let p: EventPattern = "job.failed".parse().unwrap();
        assert!(p.matches(EventKind::JobFailed) && !p.matches(EventKind::JobSucceeded));
        assert!(
            "*".parse::<EventPattern>()
                .unwrap()
                .matches(EventKind::RolloutHalted)
        );
        let p: EventPattern = "server.*".parse().unwrap();
        assert!(p.matches(EventKind::ServerDiskLow) && p.matches(EventKind::ServerRecovered));
        assert!(!p.matches(EventKind::JobFailed));
        for bad in ["job.exploded", "host.*", "job.*.*", "", "job", "*.failed"] {
            assert!(bad.parse::<EventPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>(), Ok(k));
        }
    }
}
