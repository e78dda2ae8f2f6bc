//! The spans of telltale's own work, named in one place: a span per check run (asset, check,
//! source, outcome, anomaly flag), per detection pass, per incident update and per alert
//! delivery. The runtime wraps its work in these; warehouse queries (`db`) and HTTP requests
//! (`http`) become their children. Finishing a run also feeds the run and outcome metrics.

use std::future::Future;
use std::time::Instant;

use tracing::field::Empty;

use super::metrics::{self, global};
use crate::measure::AssetId;
use crate::runtime::CheckOutcome;

/// The span of one asset's query monitors.
pub fn asset_run(asset: &AssetId, check: Option<&str>) -> tracing::Span {
    tracing::info_span!(
        "check run",
        otel.name = %format_args!("check {asset}"),
        otel.status_code = Empty,
        job = "asset",
        asset = asset.as_str(),
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
        otel.name = %format_args!("metadata scan {source}"),
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

tokio::task_local! {
    /// The span the current task's work hangs under: the parent of the spans and events it
    /// creates. Set by [`in_span`] instead of entering the span: a check run's future is polled
    /// once per message of the database driver, and entering and leaving a span on every poll
    /// cost more than the span itself (docs/telemetry.md, "Tracing overhead").
    static PARENT: tracing::Span;
}

/// Runs `work` with `span` as the parent of every span and event it creates (through [`parent`]),
/// without entering `span` on each poll.
pub async fn in_span<F: Future>(span: tracing::Span, work: F) -> F::Output {
    PARENT.scope(span, work).await
}

/// The parent for a new span or event of the current work: the innermost [`in_span`] span of
/// this task, else the span entered on this thread. Use as `info_span!(parent: parent(), ...)`.
pub fn parent() -> Option<tracing::Id> {
    PARENT.try_with(tracing::Span::id).ok().flatten().or_else(|| tracing::Span::current().id())
}

/// The span of the current work (see [`parent`]), to record fields on.
pub fn current() -> tracing::Span {
    PARENT.try_with(tracing::Span::clone).ok().filter(|s| !s.is_disabled()).unwrap_or_else(tracing::Span::current)
}

/// Runs `work` inside `span`, then records its worst outcome and anomaly flag on the span and in
/// `telltale_check_runs_total`, `telltale_check_run_duration_seconds` and the outcome metrics.
pub async fn traced_run<F>(span: tracing::Span, job: &'static str, work: F) -> Vec<CheckOutcome>
where
    F: Future<Output = Vec<CheckOutcome>>,
{
    let started = Instant::now();
    let outcomes = in_span(span.clone(), work).await;
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
    tracing::info_span!(parent: parent(), "detect", asset = asset.as_str(), judged = Empty, anomalies = Empty)
}

/// The span of one asset's incident update (open, update, group, resolve, queue notifications).
pub fn incident_update(asset: &str) -> tracing::Span {
    tracing::info_span!(
        parent: parent(),
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
        tracing::info!(parent: parent(), incident = incident_id, change, "incident {change}: {title}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_in_a_span_hangs_its_spans_and_events_under_the_innermost_one() {
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry());
        let outer = tracing::info_span!("outer");
        let inner = tracing::info_span!("inner");
        assert_eq!(parent(), None, "no span outside any work");
        let (outer_id, inner_id) = (outer.id(), inner.id());
        let seen = in_span(outer.clone(), async {
            let before = parent();
            let nested = in_span(inner.clone(), async {
                tokio::task::yield_now().await;
                let child = tracing::info_span!(parent: parent(), "child");
                (parent(), child.id())
            })
            .await;
            (before, nested, parent(), current().id())
        })
        .await;
        assert_eq!(seen.0, outer_id);
        assert_eq!(seen.1.0, inner_id, "the innermost span is the parent");
        assert!(seen.1.1.is_some());
        assert_eq!(seen.2, outer_id, "leaving the inner work restores the outer span");
        assert_eq!(seen.3, outer_id);
        // Outside any work, the span entered on the thread is the parent.
        let _entered = outer.enter();
        assert_eq!(parent(), outer_id);
    }
}
