//! A server's metrics history in Redis: its tiers, how long each keeps its points, and the
//! one call that writes a heartbeat and its sample together (`lua/heartbeat.lua`).
//!
//! Three streams per agent, all under the agent's hash tag, each entry's id the sample's unix
//! milliseconds and its fields [`crate::host_metrics::SAMPLE_FIELDS`]:
//!
//! | tier | point | kept | entries at most |
//! |---|---|---|---|
//! | raw | one heartbeat (5 s) | 1 hour | 1,440 (twice the 720 that 5 s gives) |
//! | minutes | average of 1 minute | 24 hours | 1,440 |
//! | hours | average of 1 hour | 30 days | 720 |
//!
//! Redis trims each stream itself in the same script (by age, then by count), so a runner
//! that beats too often or sends a time far ahead cannot grow its history past the caps.

use crate::host_metrics::{SAMPLE_FIELDS, Sample};
use crate::redis_keys::AgentRedisKeys;
use crate::scripts::Call;

/// The heartbeat and history script; its header names its KEYS and ARGV.
pub const HEARTBEAT: &str = include_str!("../lua/heartbeat.lua");

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// One level of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// Width of one point, ms (a raw point is one heartbeat: its width is the interval).
    pub width_ms: i64,
    /// Age kept, ms.
    pub keep_ms: i64,
    /// Most entries kept.
    pub cap: u32,
}

/// Raw samples, one per heartbeat.
pub const RAW: Tier = Tier {
    width_ms: crate::host::HEARTBEAT_INTERVAL_SECS as i64 * 1000,
    keep_ms: HOUR_MS,
    cap: 1440,
};
/// One-minute averages.
pub const MINUTES: Tier = Tier {
    width_ms: MINUTE_MS,
    keep_ms: DAY_MS,
    cap: 1440,
};
/// Hourly averages.
pub const HOURS: Tier = Tier {
    width_ms: HOUR_MS,
    keep_ms: 30 * DAY_MS,
    cap: 720,
};

/// A span of history a chart shows, and the tier it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Range {
    /// The last hour, from raw samples.
    Hour,
    /// The last 24 hours, from one-minute averages.
    Day,
    /// The last 30 days, from hourly averages.
    Month,
}

impl Range {
    /// Every range, shortest first.
    pub const ALL: [Range; 3] = [Range::Hour, Range::Day, Range::Month];

    /// Its name in URLs (`hour`, `day`, `month`).
    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "hour",
            Range::Day => "day",
            Range::Month => "month",
        }
    }

    /// The range named `name`.
    pub fn parse(name: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The tier it reads.
    pub fn tier(self) -> Tier {
        match self {
            Range::Hour => RAW,
            Range::Day => MINUTES,
            Range::Month => HOURS,
        }
    }

    /// Its stream among an agent's keys.
    pub fn stream(self, names: &AgentRedisKeys) -> String {
        match self {
            Range::Hour => names.metrics_raw(),
            Range::Day => names.metrics_minutes(),
            Range::Month => names.metrics_hours(),
        }
    }
}

/// Every key of an agent's history (deleted with the agent).
pub fn keys(names: &AgentRedisKeys) -> [String; 4] {
    [
        names.metrics_raw(),
        names.metrics_minutes(),
        names.metrics_hours(),
        names.metrics_accumulator(),
    ]
}

/// The [`HEARTBEAT`] call: `facts_json` under the heartbeat key for `ttl_secs`, and `sample`
/// (taken at unix ms `ts`) added to the history when there is one.
pub fn heartbeat(
    names: &AgentRedisKeys,
    facts_json: &str,
    ttl_secs: u64,
    sample: Option<(i64, &Sample)>,
) -> Call {
    let mut args = vec![facts_json.to_owned(), ttl_secs.to_string()];
    if let Some((ts, sample)) = sample {
        args.push(ts.to_string());
        for tier in [RAW, MINUTES, HOURS] {
            if tier != RAW {
                args.push(tier.width_ms.to_string());
            }
            args.push(tier.keep_ms.to_string());
            args.push(tier.cap.to_string());
        }
        for ((name, _), value) in SAMPLE_FIELDS.iter().zip(sample.to_stream()) {
            args.push((*name).to_owned());
            args.push(value.to_string());
        }
    }
    Call {
        keys: vec![
            names.heartbeat(),
            names.metrics_raw(),
            names.metrics_minutes(),
            names.metrics_hours(),
            names.metrics_accumulator(),
        ],
        args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_follows_the_script_header() {
        let names = AgentRedisKeys::new("web-1");
        let sample = Sample {
            cpu_pct: 50.0,
            ..Sample::default()
        };
        let call = heartbeat(&names, "{}", 20, Some((1_000, &sample)));
        assert_eq!(call.keys.len(), 5);
        assert!(call.keys.iter().all(|k| k.contains("{web-1}")));
        // facts, ttl, ts, raw keep+cap, minutes width+keep+cap, hours width+keep+cap, pairs
        assert_eq!(call.args.len(), 11 + 2 * SAMPLE_FIELDS.len());
        assert_eq!(call.args[2], "1000");
        assert_eq!(call.args[5], MINUTES.width_ms.to_string());
        assert_eq!(&call.args[11..13], ["c", "500"]);
        assert_eq!(heartbeat(&names, "{}", 20, None).args.len(), 2);
    }

    #[test]
    fn each_range_reads_its_own_tier() {
        assert_eq!(Range::parse("day"), Some(Range::Day));
        assert_eq!(Range::parse("week"), None);
        assert_eq!(Range::Month.tier().width_ms, 3_600_000);
        assert!(Range::Hour.tier().keep_ms / Range::Hour.tier().width_ms <= RAW.cap as i64);
    }
}
