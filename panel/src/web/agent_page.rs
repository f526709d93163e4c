//! The server page `/agents/{id}`: status and attention, charts of CPU, memory, disk and
//! network over the last hour, day or month (server-side SVG, with the same points as a
//! table for reading without JavaScript), the top processes, service metrics, what is
//! installed there and its recent jobs. `/agents/{id}/charts` is the charts alone, which the
//! page's script fetches again every heartbeat interval.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use outfitter_contract::host::HEARTBEAT_INTERVAL_SECS;
use outfitter_contract::host_metrics::{HostMetrics, Sample};
use outfitter_contract::metrics_history::Range;
use serde::{Deserialize, Serialize};

use super::charts::{self, Chart, Series, Unit};
use super::installation_page::rows;
use super::{WebResult, base_context, render, signed_in, when};
use crate::agents::history::{self, Point};
use crate::agents::{self, AgentStatus};
use crate::clock::now_ms;
use crate::error::{ApiError, Code};
use crate::http::api::agents::{check_agent_id, parse_range};
use crate::installations::store::Filter;
use crate::jobs;
use crate::state::AppState;

/// Points the table under the charts shows (the newest).
const TABLE_ROWS: usize = 60;
/// Recent jobs shown.
const RECENT_JOBS: usize = 10;

#[derive(Debug, Default, Deserialize)]
pub(super) struct RangeQuery {
    range: Option<String>,
}

#[derive(Serialize)]
struct ChartView {
    id: &'static str,
    title: &'static str,
    svg: String,
    legend: Vec<LegendItem>,
}

#[derive(Serialize)]
struct LegendItem {
    name: String,
    class: &'static str,
}

#[derive(Serialize)]
struct Row {
    when: String,
    cpu: String,
    memory: String,
    disk: String,
    load: String,
    rx: String,
    tx: String,
}

#[derive(Serialize)]
struct JobRow {
    id: String,
    app_id: String,
    state: String,
    created: String,
}

/// Points a chart draws at most: about one per two pixels of its plot; more only make the
/// page heavier (a day holds 1,440 minute points).
const DRAWN_POINTS: i64 = 280;

/// `points` over `from..to` in at most [`DRAWN_POINTS`] equal time buckets, each the mean of
/// the points in it (at the time of its first); empty buckets stay empty, so gaps stay gaps.
fn thinned(points: &[Point], from: i64, to: i64) -> Vec<Point> {
    if points.len() as i64 <= DRAWN_POINTS {
        return points.to_vec();
    }
    let width = ((to - from) / DRAWN_POINTS).max(1);
    points
        .chunk_by(|a, b| (a.ts - from).div_euclid(width) == (b.ts - from).div_euclid(width))
        .map(|bucket| Point {
            ts: bucket[0].ts,
            sample: Sample::mean(&bucket.iter().map(|p| p.sample).collect::<Vec<_>>()),
        })
        .collect()
}

/// The four charts of `points` over `range` ending at `now`.
fn charts_of(points: &[Point], range: Range, now: i64) -> Vec<ChartView> {
    let tier = range.tier();
    let from = now - tier.keep_ms;
    let points = &thinned(points, from, now)[..];
    // Three missed points in a row break the line: the server was away.
    let gap_ms = 3 * tier.width_ms.max(tier.keep_ms / DRAWN_POINTS);
    let line = |name: &str, class, f: fn(&Point) -> f64| Series {
        name: name.to_owned(),
        class,
        values: points.iter().map(|p| (p.ts, f(p))).collect(),
    };
    let chart = |id, title, unit, series| Chart {
        id,
        title,
        unit,
        from,
        to: now,
        gap_ms,
        series,
    };
    [
        chart(
            "chart-cpu",
            "CPU busy",
            Unit::Percent,
            vec![line("CPU", "line-a", |p| p.sample.cpu_pct)],
        ),
        chart(
            "chart-memory",
            "Memory and swap in use",
            Unit::Percent,
            vec![
                line("memory", "line-a", |p| p.sample.memory_pct),
                line("swap", "line-b", |p| p.sample.swap_pct),
            ],
        ),
        chart(
            "chart-disk",
            "Fullest disk",
            Unit::Percent,
            vec![line("used", "line-a", |p| p.sample.disk_pct)],
        ),
        chart(
            "chart-network",
            "Network",
            Unit::BytesPerSecond,
            vec![
                line("received", "line-a", |p| p.sample.net_rx_bps),
                line("sent", "line-b", |p| p.sample.net_tx_bps),
            ],
        ),
    ]
    .iter()
    .map(|c| ChartView {
        id: c.id,
        title: c.title,
        svg: charts::svg(c),
        legend: c
            .series
            .iter()
            .map(|s| LegendItem {
                name: s.name.clone(),
                class: s.class,
            })
            .collect(),
    })
    .collect()
}

fn table_of(points: &[Point]) -> Vec<Row> {
    points
        .iter()
        .rev()
        .take(TABLE_ROWS)
        .map(|p| {
            let s = &p.sample;
            Row {
                when: when(Some(p.ts)),
                cpu: charts::label(Unit::Percent, s.cpu_pct),
                memory: charts::label(Unit::Percent, s.memory_pct),
                disk: charts::label(Unit::Percent, s.disk_pct),
                load: format!("{:.2}", s.load1),
                rx: charts::label(Unit::BytesPerSecond, s.net_rx_bps),
                tx: charts::label(Unit::BytesPerSecond, s.net_tx_bps),
            }
        })
        .collect()
}

/// The agent or a 404; the id is checked first.
async fn agent(state: &AppState, id: &str) -> Result<AgentStatus, ApiError> {
    check_agent_id(id)?;
    let mut conn = state.redis.clone();
    agents::status(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::new(Code::AgentNotFound, format!("no registered agent {id:?}")))
}

/// The charts part of the page: its context keys `range`, `charts`, `rows`, `points`.
async fn charts_context(
    state: &AppState,
    ctx: &mut tera::Context,
    id: &str,
    range: Range,
) -> Result<(), ApiError> {
    let mut conn = state.redis.clone();
    let now = now_ms();
    let points = history::points(&mut conn, id, range, now).await?;
    ctx.insert("agent_id", id);
    ctx.insert("range", range.as_str());
    ctx.insert("ranges", &Range::ALL.map(Range::as_str));
    ctx.insert("charts", &charts_of(&points, range, now));
    ctx.insert("rows", &table_of(&points));
    ctx.insert("points", &points.len());
    ctx.insert("refresh_ms", &(HEARTBEAT_INTERVAL_SECS * 1000));
    Ok(())
}

/// What both routes start with: the caller signed in, the range and the agent checked, and
/// a context holding the charts.
async fn charts_page(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    query: &RangeQuery,
) -> WebResult<(AgentStatus, tera::Context)> {
    let caller = signed_in(state, req).await?;
    let range = parse_range(query.range.as_deref())?;
    let a = agent(state, id).await?;
    let mut ctx = base_context(Some(&caller));
    charts_context(state, &mut ctx, id, range).await?;
    Ok((a, ctx))
}

pub(super) async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<RangeQuery>,
) -> WebResult<HttpResponse> {
    let (a, mut ctx) = charts_page(&state, &req, &id, &query).await?;
    let metrics: Option<&HostMetrics> = a.facts.as_ref().and_then(|f| f.metrics.as_ref());
    let attention: Vec<String> = a
        .attention
        .iter()
        .map(|r| format!("{}: {}", r.condition.as_str(), r.detail))
        .collect();
    let installations = rows(
        &state,
        &Filter {
            agent_id: Some(a.id.clone()),
            ..Filter::default()
        },
    )
    .await?;
    let mut conn = state.redis.clone();
    let filter = jobs::store::Filter {
        agent_id: Some(a.id.clone()),
        ..jobs::store::Filter::default()
    };
    let recent: Vec<JobRow> = jobs::store::list(&mut conn, &filter, None, RECENT_JOBS)
        .await?
        .jobs
        .into_iter()
        .map(|j| JobRow {
            created: when(Some(j.created_at)),
            state: j.state.as_str().to_owned(),
            app_id: j.app_id,
            id: j.id,
        })
        .collect();
    ctx.insert("agent", &a);
    ctx.insert("last_seen", &when(a.last_seen));
    ctx.insert("attention", &attention);
    ctx.insert("metrics", &metrics);
    ctx.insert("installations", &installations);
    ctx.insert("jobs", &recent);
    render(&state, "agent.html", &ctx, StatusCode::OK)
}

/// The charts and their table alone (the live update swaps them in).
pub(super) async fn charts_fragment(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<RangeQuery>,
) -> WebResult<HttpResponse> {
    let (_, ctx) = charts_page(&state, &req, &id, &query).await?;
    render(&state, "agent_charts.html", &ctx, StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_the_newest_points_first() {
        let p = |ts, cpu_pct| Point {
            ts,
            sample: Sample {
                cpu_pct,
                ..Sample::default()
            },
        };
        let rows = table_of(&[p(1_000, 10.0), p(2_000, 20.0)]);
        assert_eq!(rows[0].cpu, "20%");
        assert_eq!(rows[1].cpu, "10%");
        assert_eq!(charts_of(&[], Range::Day, 0).len(), 4);
    }

    #[test]
    fn a_day_of_minutes_is_drawn_as_buckets_of_their_means_keeping_gaps() {
        let day = 86_400_000;
        let p = |ts, cpu_pct| Point {
            ts,
            sample: Sample {
                cpu_pct,
                ..Sample::default()
            },
        };
        // 1,440 minute points, with the server away for the middle two hours.
        let points: Vec<Point> = (0..1440)
            .filter(|m| !(660..780).contains(m))
            .map(|m| p(m * 60_000, if m % 2 == 0 { 10.0 } else { 30.0 }))
            .collect();
        let drawn = thinned(&points, 0, day);
        assert!(drawn.len() as i64 <= DRAWN_POINTS + 1, "{}", drawn.len());
        assert!(drawn.len() > 200, "{}", drawn.len());
        assert!(
            drawn
                .iter()
                .all(|d| (10.0..=30.0).contains(&d.sample.cpu_pct))
        );
        let means = drawn
            .iter()
            .filter(|d| d.sample.cpu_pct > 10.0 && d.sample.cpu_pct < 30.0)
            .count();
        assert!(
            means > 200,
            "buckets hold means, not single points: {means}"
        );
        assert!(drawn.windows(2).all(|w| w[0].ts < w[1].ts));
        let widest = drawn.windows(2).map(|w| w[1].ts - w[0].ts).max().unwrap();
        assert!(
            widest >= 2 * 3_600_000,
            "the two hours away stay a gap: {widest}"
        );
        // Few points are drawn as they are.
        assert_eq!(thinned(&points[..10], 0, day), points[..10].to_vec());
    }
}
