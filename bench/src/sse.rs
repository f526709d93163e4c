//! Opening the panel's `GET /api/v1/jobs/{id}/events` as a browser would; the stream is read
//! with the test-support SSE reader the end-to-end tests use.

use anyhow::{Result, bail};
pub(crate) use outfitter_test_support::sse::SseStream;

/// Opens the event stream of `job_id` on the panel at `base` (`http://host:port`).
pub(crate) async fn open(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    job_id: &str,
) -> Result<SseStream> {
    let resp = http
        .get(format!("{base}/api/v1/jobs/{job_id}/events"))
        .bearer_auth(token)
        .header("Accept", "text/event-stream")
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("GET /api/v1/jobs/{job_id}/events: {}", resp.status());
    }
    Ok(SseStream::new(resp))
}
