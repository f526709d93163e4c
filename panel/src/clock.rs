//! Wall-clock time as the protocol writes it (unix milliseconds), and how people read it.

pub use outfitter_contract::clock::now_ms;

/// How a time reads on a page.
const UTC_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");

/// `2026-11-22 14:03:07 UTC` for a unix-millisecond time (the epoch if out of range).
pub fn format_utc(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(UTC_FORMAT)
        .unwrap_or_else(|_| "1970-01-01 00:00:00 UTC".into())
}

/// `1 h 02 min`, `3 min 05 s`, `12.3 s` for a duration in milliseconds.
pub fn format_duration(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{}.{} s", s, (ms % 1000) / 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting_matches_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_795_356_187_000), "2026-11-22 14:03:07 UTC");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(12_345), "12.3 s");
        assert_eq!(format_duration(185_000), "3 min 05 s");
        assert_eq!(format_duration(3_720_000), "1 h 02 min");
    }
}
