//! When a schedule is due: its cron expression (croner; an optional seconds field first) read
//! in its IANA time zone (chrono-tz), so `0 3 * * *` in `Europe/Berlin` is 03:00 Berlin time
//! in summer and in winter, and a time that a DST change skips or repeats fires once.

use chrono::TimeZone as _;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::error::{Error, Result};

/// Longest cron expression accepted.
pub const MAX_EXPRESSION_LEN: usize = 200;
/// No schedule fires more often than this (a seconds field allows every second, which the
/// tick can keep: it runs several times a second).
pub const MIN_PERIOD_MS: i64 = 1_000;
/// How many upcoming due times are checked against [`MIN_PERIOD_MS`].
const PERIOD_SAMPLES: usize = 4;

/// A parsed expression in its zone.
#[derive(Debug, Clone)]
pub struct Cadence {
    cron: Cron,
    tz: chrono_tz::Tz,
}

/// Parses `expr` in zone `timezone`; refuses (field `cron` or `timezone`) an expression
/// croner does not accept, one that never fires, one more often than [`MIN_PERIOD_MS`], and a
/// zone that is not in the IANA database.
pub fn parse(expr: &str, timezone: &str, now_ms: i64) -> Result<Cadence> {
    let tz: chrono_tz::Tz = timezone.parse().map_err(|_| {
        Error::field(
            "timezone",
            "iana_zone",
            format!("{timezone:?} is not an IANA time zone (e.g. UTC, Europe/Berlin)"),
        )
    })?;
    if expr.len() > MAX_EXPRESSION_LEN || expr.chars().any(char::is_control) {
        return Err(Error::field(
            "cron",
            "syntax",
            format!("a cron expression is at most {MAX_EXPRESSION_LEN} printable characters"),
        ));
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| Error::field("cron", "syntax", format!("{expr:?}: {e}")))?;
    let cadence = Cadence { cron, tz };
    let mut at = now_ms;
    for i in 0..PERIOD_SAMPLES {
        let Some(next) = cadence.next_after(at) else {
            return Err(Error::field(
                "cron",
                "fires",
                format!("{expr:?} never fires (a date that does not exist?)"),
            ));
        };
        if i > 0 && next - at < MIN_PERIOD_MS {
            return Err(Error::field(
                "cron",
                "period",
                format!("{expr:?} fires more often than once a second"),
            ));
        }
        at = next;
    }
    Ok(cadence)
}

impl Cadence {
    /// The first due time strictly after `ms` (unix ms), if the expression fires again.
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        let start = self.tz.timestamp_millis_opt(ms).single()?;
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-28 12:00:00 UTC: the day before Europe's spring DST change.
    const SAT_NOON: i64 = 1_774_699_200_000;

    #[test]
    fn seconds_field_is_optional() {
        let every2 = parse("*/2 * * * * *", "UTC", SAT_NOON).unwrap();
        assert_eq!(every2.next_after(SAT_NOON), Some(SAT_NOON + 2_000));
        assert_eq!(every2.next_after(SAT_NOON + 500), Some(SAT_NOON + 2_000));
        let hourly = parse("0 * * * *", "UTC", SAT_NOON).unwrap();
        assert_eq!(hourly.next_after(SAT_NOON), Some(SAT_NOON + 3_600_000));
    }

    #[test]
    fn zone_moves_with_daylight_saving() {
        let three = parse("0 3 * * *", "Europe/Berlin", SAT_NOON).unwrap();
        // Sunday 03:00 CEST (after the change at 02:00 CET) is 01:00 UTC.
        let sunday = three.next_after(SAT_NOON).unwrap();
        assert_eq!(sunday, 1_774_746_000_000);
        // Monday 03:00 CEST is 24 hours later.
        assert_eq!(three.next_after(sunday), Some(sunday + 86_400_000));
    }

    #[test]
    fn time_skipped_by_dst_fires_once() {
        // 02:30 does not exist in Berlin on 2026-03-29; it fires once that day, not never.
        let half_past_two = parse("30 2 * * *", "Europe/Berlin", SAT_NOON).unwrap();
        let first = half_past_two.next_after(SAT_NOON).unwrap();
        let second = half_past_two.next_after(first).unwrap();
        assert!(first < 1_774_800_000_000, "fires on the 29th: {first}");
        assert!(second - first >= 22 * 3_600_000, "{first} then {second}");
    }

    #[test]
    fn bad_expressions_name_their_field() {
        for (expr, tz, field) in [
            ("61 * * * *", "UTC", "cron"),
            ("* * *", "UTC", "cron"),
            ("0 0 30 2 *", "UTC", "cron"),
            ("* * * * * * 2030", "UTC", "cron"),
            ("0 3 * * *", "Mars/Olympus", "timezone"),
            ("0 3 * * *", "", "timezone"),
        ] {
            match parse(expr, tz, SAT_NOON) {
                Err(Error::InvalidFields(f)) => assert_eq!(f[0].field, field, "{expr} {tz}"),
                other => panic!("{expr} {tz}: {other:?}"),
            }
        }
    }
}
