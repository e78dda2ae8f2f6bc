//! Alerts: what a notification says and where it goes.
//!
//! This module owns the channel-neutral [`Notification`] (a snapshot of an incident plus what
//! happened to it), the [`AlertSink`] trait every channel implements, the classification of
//! delivery failures that drives retries, and one file per channel. It never touches a source or
//! the store: the outbox (in `incident`) decides when to send and records the outcome.
//!
//! Files: [`slack`], [`pagerduty`] and [`webhook`] (one per channel: a pure payload builder and a
//! sink), [`config`] (the `kind:`-tagged channel settings of `telltale.yaml`, building sinks),
//! [`retry`] (when to try again, when to give up), [`rate`] (per-channel send rates), [`example`]
//! (a fixed sample notification). The wire formats and every rule are in `docs/alerting.md`.

pub mod config;
pub mod example;
mod http;
pub mod pagerduty;
pub mod rate;
pub mod retry;
pub mod slack;
mod text;
pub mod webhook;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `User-Agent` of every request telltale sends to a channel.
pub const USER_AGENT: &str = concat!("telltale/", env!("CARGO_PKG_VERSION"));

/// What happened to the incident that this notification reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationEvent {
    /// A new incident opened.
    Triggered,
    /// An unacknowledged incident is still open (re-notification for high severities).
    Reminder,
    Acknowledged,
    Resolved,
}

impl NotificationEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationEvent::Triggered => "triggered",
            NotificationEvent::Reminder => "reminder",
            NotificationEvent::Acknowledged => "acknowledged",
            NotificationEvent::Resolved => "resolved",
        }
    }
}

/// A downstream asset hurt by the incident (filled by lineage; empty until then).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpactedAsset {
    pub name: String,
    /// `table`, `dashboard`, `ml_model`, `application`, …
    pub kind: String,
    pub owner: Option<String>,
}

/// The incident as the notification shows it: everything a channel needs, nothing more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSnapshot {
    pub id: String,
    /// Stable key of the problem: `asset/monitor[/column]`; PagerDuty's dedup key derives from it.
    pub key: String,
    pub asset: String,
    pub source: String,
    pub monitor: String,
    pub column: Option<String>,
    /// `SEV-1` (worst) to `SEV-4`.
    pub severity: String,
    /// `open`, `acknowledged`, `resolved`, `expected`, `false_positive`.
    pub status: String,
    /// One line: "orders freshness: no update for 7h12m".
    pub title: String,
    /// What is wrong, since when, what was expected, how sure we are.
    pub explanation: String,
    pub observed: Option<f64>,
    pub expected_low: Option<f64>,
    pub expected_high: Option<f64>,
    /// The detector's score (−log10 tail probability), when a learned threshold fired.
    pub score: Option<f64>,
    pub owner: Option<String>,
    pub tier: Option<u8>,
    pub tags: Vec<String>,
    pub first_bad_at: DateTime<Utc>,
    pub detected_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Link to the incident in telltale's API or UI.
    pub incident_url: Option<String>,
    /// Link to the asset's Grafana dashboard.
    pub grafana_url: Option<String>,
    /// What to do next, one short sentence.
    pub next_step: Option<String>,
    /// Downstream assets (lineage); counts and the most important ones.
    pub downstream_count: usize,
    pub key_assets: Vec<ImpactedAsset>,
}

/// One message to one channel. `id` is stable across retries and restarts: channels that can
/// deduplicate use it (and PagerDuty its dedup key) so a retry is never a second alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub event: NotificationEvent,
    pub incident: IncidentSnapshot,
    pub created_at: DateTime<Utc>,
}

/// A successful delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub status: u16,
    /// What the receiver called it, when it says (PagerDuty's dedup key).
    pub remote_id: Option<String>,
}

/// Why a delivery failed, classified for the retry policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertError {
    /// Rate limited (429): wait `retry_after` when the receiver said, then retry.
    #[error("rate limited by {channel} (HTTP 429){}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { channel: String, retry_after: Option<Duration> },
    /// 5xx, timeouts, connection errors: retry with backoff.
    #[error("{channel} is unavailable: {message}")]
    Transient { channel: String, message: String },
    /// 4xx other than 429: the request is wrong and will stay wrong; never retried.
    #[error("{channel} rejected the notification (HTTP {status}): {message}")]
    Rejected { channel: String, status: u16, message: String },
}

impl AlertError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, AlertError::Rejected { .. })
    }
}

/// A place notifications go (one configured channel).
#[async_trait]
pub trait AlertSink: Send + Sync {
    /// The channel's name in `telltale.yaml`.
    fn name(&self) -> &str;
    /// `slack`, `pagerduty`, `webhook`, …
    fn kind(&self) -> &'static str;
    async fn send(&self, notification: &Notification) -> Result<Delivery, AlertError>;
}
