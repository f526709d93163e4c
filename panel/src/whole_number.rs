//! Whole numbers in request bodies. JSON Schema's `integer` admits `154.0` as well as `154`,
//! so every integer field the OpenAPI document declares reads both spellings.

use serde::Deserialize;

/// An optional whole number that fits `T`; `154.0` reads as 154, `1.5`, negatives and
/// numbers too large for `T` are errors naming the range.
pub fn optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    let n: Option<serde_json::Number> = Option::deserialize(d)?;
    let Some(n) = n else { return Ok(None) };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= 9_007_199_254_740_992.0)
            .map(|f| f as u64)
    });
    whole
        .and_then(|v| T::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected a whole number from 0 to {}, not {n}",
                max_of::<T>()
            ))
        })
}

fn max_of<T: TryFrom<u64>>() -> u64 {
    // The largest u64 that converts: found by halving, as `T` has no MAX in this bound.
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if T::try_from(mid).is_ok() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "super::optional")]
        n: Option<u32>,
    }

    fn read(json: &str) -> Result<Option<u32>, String> {
        serde_json::from_str::<Body>(json)
            .map(|b| b.n)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn both_spellings_of_a_whole_number_read_and_others_are_refused_with_the_range() {
        assert_eq!(read(r#"{"n": 548}"#), Ok(Some(548)));
        assert_eq!(read(r#"{"n": 548.0}"#), Ok(Some(548)));
        assert_eq!(read(r#"{"n": null}"#), Ok(None));
        assert_eq!(read("{}"), Ok(None));
        for bad in ["1.5", "-1", "4294967296", "1e300"] {
            let e = read(&format!(r#"{{"n": {bad}}}"#)).unwrap_err();
            assert!(e.contains("from 0 to 4294967295"), "{bad}: {e}");
        }
    }
}
