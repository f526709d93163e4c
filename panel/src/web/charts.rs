//! Line charts as inline SVG, drawn on the server: the page works offline and without
//! JavaScript, and the live update swaps in the same markup. Pure functions of the points;
//! every text that reaches the markup is escaped here.

use std::fmt::Write as _;

/// What a chart's values are, for its scale and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    /// 0–100, the scale fixed at 100.
    Percent,
    /// Bytes per second, the scale rounded up from the largest value.
    BytesPerSecond,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Series {
    pub(super) name: String,
    /// CSS class of the line (`line-a`, `line-b`): its colour.
    pub(super) class: &'static str,
    /// (unix ms, value), oldest first.
    pub(super) values: Vec<(i64, f64)>,
}

/// A chart over `from..=to` (unix ms).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Chart {
    pub(super) id: &'static str,
    pub(super) title: &'static str,
    pub(super) unit: Unit,
    pub(super) from: i64,
    pub(super) to: i64,
    /// Points further apart than this are not joined (the server was away).
    pub(super) gap_ms: i64,
    pub(super) series: Vec<Series>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// The chart as an `<svg>` element.
pub(super) fn svg(chart: &Chart) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = scale_max(chart);
    let span = (chart.to - chart.from).max(1) as f64;
    let x = |ts: i64| LEFT + ((ts - chart.from) as f64 / span).clamp(0.0, 1.0) * plot_w;
    let y = |v: f64| TOP + plot_h - (v / max).clamp(0.0, 1.0) * plot_h;

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>"#,
        id = chart.id,
        title = escape(chart.title),
    );
    for frac in [0.0, 0.5, 1.0] {
        let gy = y(max * frac);
        let _ = write!(
            out,
            r#"<line class="gridline" x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            gy + 4.0,
            escape(&label(chart.unit, max * frac)),
        );
    }
    let wide = chart.to - chart.from > 2 * 86_400_000;
    for (frac, anchor) in [(0.0, "start"), (0.5, "middle"), (1.0, "end")] {
        let ts = chart.from + ((chart.to - chart.from) as f64 * frac) as i64;
        let _ = write!(
            out,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            LEFT + plot_w * frac,
            HEIGHT - 6.0,
            time_label(ts, wide),
        );
    }
    let mut any = false;
    for s in &chart.series {
        let path = path(&s.values, chart.gap_ms, &x, &y);
        if path.is_empty() {
            continue;
        }
        any = true;
        let _ = write!(
            out,
            r#"<path class="{}" d="{path}"><title>{}</title></path>"#,
            s.class,
            escape(&s.name)
        );
    }
    if !any {
        let _ = write!(
            out,
            r#"<text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle">No data yet</text>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0,
        );
    }
    out.push_str("</svg>");
    out
}

/// `M x y L x y …`, a new `M` after each gap; a lone point becomes a short dash so it shows.
fn path(
    values: &[(i64, f64)],
    gap_ms: i64,
    x: &impl Fn(i64) -> f64,
    y: &impl Fn(f64) -> f64,
) -> String {
    let mut d = String::new();
    let mut last: Option<i64> = None;
    let mut run = 0;
    for &(ts, v) in values.iter().filter(|(_, v)| v.is_finite()) {
        let joined = last.is_some_and(|l| ts - l <= gap_ms);
        if !joined {
            if run == 1 {
                let _ = write!(d, " h2");
            }
            run = 0;
        }
        let cmd = if joined { 'L' } else { 'M' };
        let _ = write!(
            d,
            "{}{cmd}{:.1} {:.1}",
            if d.is_empty() { "" } else { " " },
            x(ts),
            y(v)
        );
        run += 1;
        last = Some(ts);
    }
    if run == 1 {
        d.push_str(" h2");
    }
    d
}

/// The top of the scale: 100 for percentages; else the largest value rounded up to 1, 2 or
/// 5 times a power of ten (at least 1).
fn scale_max(chart: &Chart) -> f64 {
    if chart.unit == Unit::Percent {
        return 100.0;
    }
    let top = chart
        .series
        .iter()
        .flat_map(|s| s.values.iter().map(|(_, v)| *v))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    if top <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(top.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|m| *m >= top)
        .unwrap_or(10.0 * magnitude)
}

/// A value as the axis shows it: `50%`, `1.5 MB/s`.
pub(super) fn label(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Percent => format!("{v:.0}%"),
        Unit::BytesPerSecond => format!("{}/s", bytes(v)),
    }
}

/// `512 B`, `1.5 KB`, `20 MB` (powers of 1000, as network rates are spoken).
pub(super) fn bytes(v: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = v.max(0.0);
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 || v >= 100.0 {
        format!("{v:.0} {}", units[i])
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// `14:05` within two days, `11-28` beyond (UTC, as every time on the pages).
fn time_label(ms: i64, wide: bool) -> String {
    let full = crate::clock::format_utc(ms);
    // "2026-11-28 14:05:07 UTC"
    if wide {
        full.get(5..10).unwrap_or("").to_owned()
    } else {
        full.get(11..16).unwrap_or("").to_owned()
    }
}

/// Text and attribute escaping for markup built here.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(unit: Unit, values: Vec<(i64, f64)>) -> Chart {
        Chart {
            id: "cpu",
            title: "CPU <busy>",
            unit,
            from: 0,
            to: 60_000,
            gap_ms: 15_000,
            series: vec![Series {
                name: "a \"b\" <c>".into(),
                class: "line-a",
                values,
            }],
        }
    }

    #[test]
    fn no_points_says_so() {
        let s = svg(&chart(Unit::Percent, vec![]));
        assert!(s.contains("No data yet"));
        assert!(!s.contains("<path"));
    }

    #[test]
    fn a_lone_point_is_drawn_as_a_dash() {
        let s = svg(&chart(Unit::Percent, vec![(30_000, 50.0)]));
        // Half way along the plot (64 + 568 / 2), half way up.
        assert!(s.contains(r#"d="M348.0 79.0 h2""#), "{s}");
    }

    #[test]
    fn points_map_onto_the_plot_and_gaps_break_the_line() {
        let s = svg(&chart(
            Unit::Percent,
            vec![(0, 0.0), (5_000, 100.0), (60_000, 50.0)],
        ));
        // x from 64 to 632 over 0..60 s; y from 148 (0%) up to 10 (100%).
        assert!(
            s.contains(r#"d="M64.0 148.0 L111.3 10.0 M632.0 79.0 h2""#),
            "{s}"
        );
    }

    #[test]
    fn text_is_escaped_and_nothing_is_nan() {
        let s = svg(&chart(Unit::BytesPerSecond, vec![(0, f64::NAN), (1, 3.0)]));
        assert!(s.contains("CPU &lt;busy&gt;"));
        assert!(s.contains("a &quot;b&quot; &lt;c&gt;"));
        assert!(!s.contains("NaN") && !s.contains("<c>") && !s.contains("inf"));
    }

    #[test]
    fn rates_get_a_round_scale_and_readable_labels() {
        let c = chart(Unit::BytesPerSecond, vec![(0, 1_300_000.0)]);
        assert_eq!(scale_max(&c), 2_000_000.0);
        assert_eq!(label(Unit::BytesPerSecond, 2_000_000.0), "2.0 MB/s");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(250_000.0), "250 KB");
        assert_eq!(scale_max(&chart(Unit::BytesPerSecond, vec![(0, 0.2)])), 1.0);
        assert_eq!(scale_max(&chart(Unit::Percent, vec![(0, 3.0)])), 100.0);
    }
}
