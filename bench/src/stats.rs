//! Latency samples and their percentiles, and rates.

use std::fmt;
use std::time::Duration;

/// A set of latency samples in microseconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    micros: Vec<f64>,
    sorted: bool,
}

impl Samples {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&mut self, d: Duration) {
        self.push_micros(d.as_secs_f64() * 1e6);
    }

    /// A sample already in microseconds (may be negative only through clock error; kept as is).
    pub(crate) fn push_micros(&mut self, us: f64) {
        self.micros.push(us);
        self.sorted = false;
    }

    pub(crate) fn extend(&mut self, other: &Samples) {
        self.micros.extend_from_slice(&other.micros);
        self.sorted = false;
    }

    pub(crate) fn len(&self) -> usize {
        self.micros.len()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.micros.sort_by(f64::total_cmp);
            self.sorted = true;
        }
    }

    /// The `p`-th percentile (0–100) by the nearest-rank method; `None` without samples.
    pub(crate) fn percentile(&mut self, p: f64) -> Option<f64> {
        if self.micros.is_empty() {
            return None;
        }
        self.sort();
        let n = self.micros.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        Some(self.micros[rank.clamp(1, n) - 1])
    }

    pub(crate) fn mean(&self) -> Option<f64> {
        (!self.micros.is_empty())
            .then(|| self.micros.iter().sum::<f64>() / self.micros.len() as f64)
    }

    /// p50 and p99 together.
    pub(crate) fn summary(&mut self) -> Summary {
        Summary {
            n: self.len(),
            p50: self.percentile(50.0).unwrap_or(f64::NAN),
            p99: self.percentile(99.0).unwrap_or(f64::NAN),
        }
    }
}

/// Percentiles of one set of samples, in microseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
}

/// A duration in microseconds shown in the unit that reads best (µs below 1 ms, else ms).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Micros(pub f64);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0;
        if us.is_nan() {
            write!(f, "n/a")
        } else if us.abs() < 1000.0 {
            write!(f, "{us:.0} µs")
        } else if us.abs() < 10_000.0 {
            write!(f, "{:.2} ms", us / 1000.0)
        } else {
            write!(f, "{:.1} ms", us / 1000.0)
        }
    }
}

/// Events per second, with thousands separated.
pub(crate) fn per_second(count: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 { count as f64 / s } else { f64::NAN }
}

/// A rate shown as a whole number with thousands separators (`12,345/s`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate(pub f64);

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_nan() {
            return write!(f, "n/a");
        }
        write!(f, "{}/s", thousands(self.0.round() as u64))
    }
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio `a / b` as a percentage with no decimals (`n/a` when undefined).
pub(crate) fn percent(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.0}%", 100.0 * a / b)
    } else {
        "n/a".into()
    }
}

/// A ratio `a / b` as a factor (`3.4×`).
pub(crate) fn factor(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.1}×", a / b)
    } else {
        "n/a".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_one_to_hundred() {
        let mut s = Samples::new();
        for i in (1..=100).rev() {
            s.push_micros(i as f64);
        }
        assert_eq!(s.percentile(50.0), Some(50.0));
        assert_eq!(s.percentile(99.0), Some(99.0));
        assert_eq!(s.percentile(100.0), Some(100.0));
        assert_eq!(s.percentile(0.0), Some(1.0));
    }

    #[test]
    fn percentile_of_no_samples_is_none() {
        assert_eq!(Samples::new().percentile(50.0), None);
    }

    #[test]
    fn micros_pick_a_readable_unit() {
        assert_eq!(Micros(512.4).to_string(), "512 µs");
        assert_eq!(Micros(1834.0).to_string(), "1.83 ms");
        assert_eq!(Micros(25_500.0).to_string(), "25.5 ms");
    }

    #[test]
    fn rates_have_thousands_separators() {
        assert_eq!(Rate(1_234_567.4).to_string(), "1,234,567/s");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }

    #[test]
    fn ratios_of_zero_are_undefined() {
        assert_eq!(percent(1.0, 0.0), "n/a");
        assert_eq!(percent(80.0, 100.0), "80%");
        assert_eq!(factor(3.0, 2.0), "1.5×");
    }
}
