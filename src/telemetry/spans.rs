//! The spans of telltale's own work, named in one place: a span per check run (asset, check,
//! source, outcome, anomaly flag), per detection pass, per incident update and per alert
//! delivery. The runtime wraps its work in these; warehouse queries (`db`) and HTTP requests
//! (`http`) become their children. Finishing a run also feeds the run and outcome metrics.

use std::future::Future;
use std::time::Instant;

use tracing::Instrument;
use tracing::field::Empty;

use super::metrics::{self, global};
use crate::measure::AssetId;
use crate::runtime::CheckOutcome;

/// The span of one asset's query monitors.
pub fn asset_run(asset: &AssetId, check: Option<&str>) -> tracing::Span {
    tracing::info_span!(
        "check run",
        otel.name = %format!("check {asset}"),
        otel.status_code = Empty,
        job = "asset",
        asset = %asset,
        check = check.unwrap_or_default(),
        source = asset.source(),
        outcome = Empty,
        anomaly = Empty,
        outcomes = Empty,
    )
}

/// The span of one source's metadata scan (freshness, volume and schema of every watched table).
pub fn metadata_run(source: &str) -> tracing::Span {
    tracing::info_span!(
        "check run",
        otel.name = %format!("metadata scan {source}"),
        otel.status_code = Empty,
        job = "metadata",
        asset = Empty,
        check = Empty,
        source = source,
        outcome = Empty,
        anomaly = Empty,
        outcomes = Empty,
    )
}

/// The span of one freshness sweep (every checked asset's freshness against the clock).
pub fn freshness_sweep_run() -> tracing::Span {
    tracing::info_span!(
        "check run",
        otel.name = "freshness sweep",
        otel.status_code = Empty,
        job = "freshness_sweep",
        outcome = Empty,
        anomaly = Empty,
        outcomes = Empty,
    )
}

/// Runs `work` inside `span`, then records its worst outcome and anomaly flag on the span and in
/// `telltale_check_runs_total`, `telltale_check_run_duration_seconds` and the outcome metrics.
pub async fn traced_run<F>(span: tracing::Span, job: &'static str, work: F) -> Vec<CheckOutcome>
where
    F: Future<Output = Vec<CheckOutcome>>,
{
    let started = Instant::now();
    let outcomes = work.instrument(span.clone()).await;
    let outcome = metrics::worst_outcome(&outcomes);
    let anomaly = outcomes.iter().any(|o| o.verdict.as_ref().is_some_and(|v| v.anomaly));
    span.record("outcome", outcome);
    span.record("anomaly", anomaly);
    span.record("outcomes", outcomes.len() as u64);
    if outcome == "error" {
        span.record("otel.status_code", "ERROR");
    }
    let m = global();
    m.observe_run(job, outcome, started.elapsed().as_secs_f64());
    m.observe_outcomes(&outcomes);
    outcomes
}

/// The span of one detection pass over an asset's fresh points.
pub fn detection(asset: &AssetId) -> tracing::Span {
    tracing::info_span!("detect", asset = %asset, judged = Empty, anomalies = Empty)
}

/// The span of one asset's incident update (open, update, group, resolve, queue notifications).
pub fn incident_update(asset: &str) -> tracing::Span {
    tracing::info_span!(
        "incident update",
        asset = asset,
        opened = Empty,
        reopened = Empty,
        updated = Empty,
        auto_resolved = Empty,
        notifications = Empty,
    )
}

/// Counts one incident change; the ones a person would care about also become span events.
pub fn incident_changed(change: &'static str, incident_id: &str, title: &str) {
    global().inc(&metrics::INCIDENT_CHANGES, &[change], 1.0);
    metrics::request_refresh();
    if change != "updated" {
        tracing::info!(incident = incident_id, change, "incident {change}: {title}");
    }
}

/// The span of one delivery attempt of a queued notification to a channel.
pub fn delivery(channel: &str, kind: &str, incident: &str, event: &str, attempt: u32) -> tracing::Span {
    tracing::info_span!(
        "alert delivery",
        otel.name = %format!("deliver {channel}"),
        otel.status_code = Empty,
        channel = channel,
        channel_kind = kind,
        incident = incident,
        event = event,
        attempt = attempt,
        outcome = Empty,
    )
}

/// Records a delivery attempt's outcome (`delivered`, `retry`, `gave_up`) and latency.
pub fn delivered(span: &tracing::Span, channel: &str, outcome: &str, started: Instant) {
    span.record("outcome", outcome);
    if outcome != "delivered" {
        span.record("otel.status_code", "ERROR");
    }
    let m = global();
    m.inc(&metrics::ALERT_DELIVERIES, &[channel, outcome], 1.0);
    m.observe(&metrics::ALERT_DELIVERY_DURATION, &[channel], started.elapsed().as_secs_f64());
    metrics::request_refresh();
}
