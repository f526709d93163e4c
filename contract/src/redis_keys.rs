//! Every Redis key and channel name, in one place.
//!
//! An agent's keys all carry the hash tag `{<agent id>}`: every multi-key command and Lua
//! script touching one agent's queue and jobs stays in one cluster slot, and a per-agent
//! ACL user can be confined with `~outfitter:agent:{<id>}:*` and `&outfitter:agent:{<id>}:*`.
//! Panel-wide indexes live outside any agent's tag and are written by the panel only.

/// Prefix of every key and channel.
pub const PREFIX: &str = "outfitter:";

/// The keys of one agent. Agent ids are validated (`[a-z0-9-]`) before they get here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRedisKeys {
    base: String,
}

impl AgentRedisKeys {
    /// The key names under `outfitter:agent:{<agent_id>}:`; `agent_id` must already have
    /// passed [`crate::ids::validate_agent_id`], since a `*` or `{` would widen the ACL pattern.
    pub fn new(agent_id: &str) -> Self {
        Self {
            base: format!("{PREFIX}agent:{{{agent_id}}}:"),
        }
    }

    /// The rules of the agent's own Redis user (`ACL SETUSER <user> <rules…>`, after `reset`),
    /// the one statement of what a runner may do: its own keys and channels only, the
    /// command families it uses (strings, hashes, lists, sorted sets, streams, pubsub, Lua,
    /// transactions), nothing dangerous (`FLUSHALL`, `CONFIG`, `ACL`, `KEYS`, `DEBUG`, …) and
    /// no walking of the keyspace (`SCAN`, `RANDOMKEY`) or emptying of the script cache; on a
    /// cluster, the slot map (`CLUSTER SLOTS`) and nothing else of `CLUSTER`.
    pub fn acl_rules(&self, password: &str) -> Vec<String> {
        [
            "on".to_owned(),
            format!(">{password}"),
            format!("~{}*", self.base),
            format!("&{}*", self.base),
        ]
        .into_iter()
        .chain(
            [
                "-@all",
                "+@read",
                "+@write",
                "+@pubsub",
                "+@scripting",
                "+@transaction",
                "+@connection",
                "-@dangerous",
                "-scan",
                "-randomkey",
                "-script|flush",
                "-function",
                // The cluster client learns which node serves which slot (read-only).
                "+cluster|slots",
            ]
            .map(str::to_owned),
        )
        .collect()
    }

    /// Hash of one installation on this agent: `data` (its JSON) and `rev` (bumped by each
    /// write, so a stale form or a concurrent action is refused).
    pub fn installation(&self, installation_id: &str) -> String {
        format!("{}installation:{installation_id}", self.base)
    }

    /// List of one installation's history entries (JSON), oldest first.
    pub fn installation_history(&self, installation_id: &str) -> String {
        format!("{}installation:{installation_id}:history", self.base)
    }

    /// Hash: `<app id>/<instance>` → installation id, so one instance of an app on a server
    /// has one installation.
    pub fn instances(&self) -> String {
        format!("{}instances", self.base)
    }

    /// List of signed jobs waiting; the panel LPUSHes, the runner BLMOVEs from the right.
    pub fn queue(&self) -> String {
        format!("{}queue", self.base)
    }

    /// List of jobs the runner has taken and not finished (reliable fetch).
    pub fn processing(&self) -> String {
        format!("{}processing", self.base)
    }

    /// Sorted set of signed retries, scored by due time in unix milliseconds.
    pub fn scheduled(&self) -> String {
        format!("{}scheduled", self.base)
    }

    /// Sorted set of `<job id>:<attempt>` already started, scored by envelope expiry (replay guard).
    pub fn seen(&self) -> String {
        format!("{}seen", self.base)
    }

    /// String with the agent's heartbeat (host facts as JSON), with a TTL.
    pub fn heartbeat(&self) -> String {
        format!("{}heartbeat", self.base)
    }

    /// Stream of the server's raw metric samples (see [`crate::metrics_history`]).
    pub fn metrics_raw(&self) -> String {
        format!("{}metrics:raw", self.base)
    }

    /// Stream of the server's one-minute metric averages.
    pub fn metrics_minutes(&self) -> String {
        format!("{}metrics:minutes", self.base)
    }

    /// Stream of the server's hourly metric averages.
    pub fn metrics_hours(&self) -> String {
        format!("{}metrics:hours", self.base)
    }

    /// Hash of the averages being summed (bucket start, count, sums per tier).
    pub fn metrics_accumulator(&self) -> String {
        format!("{}metrics:accumulator", self.base)
    }

    /// Pubsub channel for control messages to the runner (cancel).
    pub fn control_channel(&self) -> String {
        format!("{}control", self.base)
    }

    /// Stream of every job this agent refused, with the reason (forged ones included).
    pub fn rejected(&self) -> String {
        format!("{}rejected", self.base)
    }

    /// Hash with the job record.
    pub fn job(&self, job_id: &str) -> String {
        format!("{}job:{job_id}", self.base)
    }

    /// Stream with the job's replayable events; entry ids are `0-<seq>`.
    pub fn job_events(&self, job_id: &str) -> String {
        format!("{}job:{job_id}:events", self.base)
    }

    /// Pubsub channel on which the job's events are published live.
    pub fn job_channel(&self, job_id: &str) -> String {
        format!("{}job:{job_id}:live", self.base)
    }
}

/// Pattern matching every job channel of every agent (one panel subscription fans out).
pub const ALL_JOB_CHANNELS: &str = "outfitter:agent:*:job:*:live";

/// Extracts `(agent id, job id)` from a job channel name.
pub fn parse_job_channel(channel: &str) -> Option<(&str, &str)> {
    let rest = channel.strip_prefix("outfitter:agent:{")?;
    let (agent, rest) = rest.split_once("}:job:")?;
    let job = rest.strip_suffix(":live")?;
    Some((agent, job))
}

/// The Redis user of one agent's runner, when the panel made one (`agent add --redis-user`).
pub fn agent_acl_user(agent_id: &str) -> String {
    format!("agent-{agent_id}")
}

/// Hash: registered agent id → registration JSON.
pub const AGENTS: &str = "outfitter:agents";
/// Hash: removed agent id → JSON with the key generation it had when removed, so that
/// registering the id again continues past it (a removed agent's key never comes back).
pub const RETIRED_AGENTS: &str = "outfitter:retired-agents";
/// Hash: agent id → JSON of the attention conditions raised for its server (disk low,
/// offline, …) and the webhook events decided for them and not yet queued.
pub const ATTENTION: &str = "outfitter:attention";
/// Sorted set: job id scored by creation time (unix ms), for listing.
pub const JOBS_INDEX: &str = "outfitter:jobs";
/// Hash: job id → agent id, to find a job's keys from its id.
pub const JOB_AGENT: &str = "outfitter:job-agent";
/// Sorted set: installation id scored by creation time (unix ms), for listing.
pub const INSTALLATIONS_INDEX: &str = "outfitter:installations";
/// Hash: installation id → agent id, to find an installation's keys from its id.
pub const INSTALLATION_AGENT: &str = "outfitter:installation-agent";
/// Hash: installation id → app id, so a listing by app reads only that app's records
/// (installations made before it have no entry and are read to be told apart).
pub const INSTALLATION_APP: &str = "outfitter:installation-app";
/// Sorted set: the installation ids of one app scored by creation time (unix ms), so the
/// app's page lists them in one read instead of walking [`INSTALLATIONS_INDEX`].
pub fn installations_of_app(app_id: &str) -> String {
    format!("{PREFIX}app-installations:{app_id}")
}
/// String, set once every installation made before [`installations_of_app`] existed is in
/// its app's set; until then, a listing by app walks [`INSTALLATIONS_INDEX`] as before.
pub const INSTALLATIONS_BY_APP_READY: &str = "outfitter:app-installations-ready";
/// Set: installations whose job has not been settled yet; the panel's settler walks it.
pub const INSTALLATIONS_PENDING: &str = "outfitter:installations-pending";
/// Hash: sha256(token) hex → token JSON (name, role).
pub const TOKENS: &str = "outfitter:tokens";
/// Stream: the audit log of state-changing actions.
pub const AUDIT: &str = "outfitter:audit";

/// Sorted set: rollout id scored by creation time (unix ms), for listing.
pub const ROLLOUTS_INDEX: &str = "outfitter:rollouts";
/// Set: rollouts a panel's driver still looks after (not over, or with jobs still out).
pub const ROLLOUTS_ACTIVE: &str = "outfitter:rollouts-active";

/// Hash of one rollout: `data` (its JSON) and `rev` (bumped by each write). A rollout's keys
/// share the hash tag `{<id>}`, so its compare-and-swap (record and history) is in one
/// cluster slot.
pub fn rollout(id: &str) -> String {
    format!("{PREFIX}rollout:{{{id}}}")
}

/// List of one rollout's history entries (JSON), oldest first.
pub fn rollout_history(id: &str) -> String {
    format!("{PREFIX}rollout:{{{id}}}:history")
}

/// The names [`rollout`], [`rollout_history`] and [`rollout_lease`] had before they carried a
/// hash tag (up to 0.1 of 2026-12-03), in that order: the panel renames what it finds.
pub fn rollout_untagged(id: &str) -> [String; 3] {
    [
        format!("{PREFIX}rollout:{id}"),
        format!("{PREFIX}rollout:{id}:history"),
        format!("{PREFIX}rollout:{id}:lease"),
    ]
}

/// String: the rollout id reserved for one key (a schedule's due time), with a TTL.
pub fn rollout_key(key: &str) -> String {
    format!("{PREFIX}rollout-key:{key}")
}

/// String: which panel drives the rollout now, with a TTL.
pub fn rollout_lease(id: &str) -> String {
    format!("{PREFIX}rollout:{{{id}}}:lease")
}

/// String: `Idempotency-Key` of `POST /jobs` → job id, with a TTL.
pub fn idempotency(token_name: &str, key: &str) -> String {
    format!("{PREFIX}idempotency:{token_name}:{key}")
}

/// String: browser session → session JSON, with a TTL.
pub fn session(session_id: &str) -> String {
    format!("{PREFIX}session:{session_id}")
}

// Webhooks. Every key carries the hash tag `{webhooks}`, so each delivery script touches one
// cluster slot.

/// Hash: webhook id → webhook JSON (URL, events, sealed secret).
pub const WEBHOOKS: &str = "outfitter:webhooks:{webhooks}:hooks";
/// Sorted set: delivery id scored by due time (unix ms). A claimed delivery is re-scored to
/// its lease's end, so a panel that dies mid-POST leaves it due again.
pub const WEBHOOK_DUE: &str = "outfitter:webhooks:{webhooks}:due";
/// Sorted set: job ids whose end is yet to be announced, scored by when they were watched.
pub const WEBHOOK_WATCHED_JOBS: &str = "outfitter:webhooks:{webhooks}:watched-jobs";

/// Hash: one delivery (webhook id, event, data, status, attempts, last response).
pub fn webhook_delivery(delivery_id: &str) -> String {
    format!("{PREFIX}webhooks:{{webhooks}}:delivery:{delivery_id}")
}

/// Sorted set: one webhook's delivery ids scored by creation time (the delivery log).
pub fn webhook_deliveries(webhook_id: &str) -> String {
    format!("{PREFIX}webhooks:{{webhooks}}:log:{webhook_id}")
}

// Schedules: panel-wide, every key under the one hash tag `{schedules}`, so the script that
// advances a schedule (record, run history and the due index at once) stays in one cluster
// slot.

/// Sorted set: schedule id scored by creation time (unix ms), for listing.
pub const SCHEDULES_INDEX: &str = "outfitter:{schedules}:index";
/// Sorted set: schedule id scored by its next due time (unix ms); paused ones are absent.
/// Every panel's tick reads the due ones from here.
pub const SCHEDULES_DUE: &str = "outfitter:{schedules}:due";

/// Hash of one schedule: `data` (its definition, JSON), `paused` (`0`/`1`), `next_due`
/// (unix ms, empty while paused) and `last` (the last run, JSON).
pub fn schedule(schedule_id: &str) -> String {
    format!("{PREFIX}{{schedules}}:schedule:{schedule_id}")
}

/// List of one schedule's runs (JSON), oldest first, trimmed to the newest few.
pub fn schedule_runs(schedule_id: &str) -> String {
    format!("{PREFIX}{{schedules}}:schedule:{schedule_id}:runs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_keys_share_one_hash_tag() {
        let k = AgentRedisKeys::new("web-1");
        for key in [
            k.queue(),
            k.processing(),
            k.scheduled(),
            k.seen(),
            k.heartbeat(),
            k.job("j"),
            k.job_events("j"),
        ] {
            assert!(key.starts_with("outfitter:agent:{web-1}:"), "{key}");
        }
    }

    #[test]
    fn job_channel_round_trips() {
        let k = AgentRedisKeys::new("web-1");
        let ch = k.job_channel("0192-ab");
        assert_eq!(parse_job_channel(&ch), Some(("web-1", "0192-ab")));
        assert_eq!(parse_job_channel("outfitter:agent:{x}:control"), None);
    }
}
