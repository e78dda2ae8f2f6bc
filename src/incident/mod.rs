//! Incidents: turning failed checks and anomalies into something an on-call engineer can act on.
//!
//! Owns the incident record and its lifecycle (`open → acknowledged → resolved`, plus `expected`
//! and `false_positive`), dedup and grouping ([`lifecycle`]), routing and mutes ([`routing`]),
//! and data-downtime accounting ([`downtime`]). Everything here is pure; the runtime loads and
//! saves incidents and the outbox through the store.

pub mod downtime;
pub mod lifecycle;
pub mod routing;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{IncidentSnapshot, Notification, NotificationEvent};

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    Acknowledged,
    Resolved,
    /// The change was expected (a migration, a backfill): detection re-baselines on it.
    Expected,
    /// The data was fine; the alert was wrong.
    FalsePositive,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Expected => "expected",
            IncidentStatus::FalsePositive => "false_positive",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => IncidentStatus::Open,
            "acknowledged" => IncidentStatus::Acknowledged,
            "resolved" => IncidentStatus::Resolved,
            "expected" => IncidentStatus::Expected,
            "false_positive" => IncidentStatus::FalsePositive,
            _ => return None,
        })
    }
    /// Still needs attention.
    pub fn is_active(self) -> bool {
        matches!(self, IncidentStatus::Open | IncidentStatus::Acknowledged)
    }
    /// Counts as data downtime (expected changes and false positives do not).
    pub fn is_downtime(self) -> bool {
        !matches!(self, IncidentStatus::Expected | IncidentStatus::FalsePositive)
    }
}

/// One incident. `key` names the problem (`asset/monitor[/column]`); grouped problems of the same
/// asset join as `member_keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub key: String,
    pub member_keys: Vec<String>,
    pub asset: String,
    pub source: String,
    pub monitor: String,
    pub column: Option<String>,
    /// 1 (worst) to 4.
    pub severity: u8,
    pub status: IncidentStatus,
    pub title: String,
    pub explanation: String,
    pub observed: Option<f64>,
    pub expected_low: Option<f64>,
    pub expected_high: Option<f64>,
    pub score: Option<f64>,
    pub owner: Option<String>,
    pub tier: Option<u8>,
    pub tags: Vec<String>,
    /// When the data first went bad (the first bad observation).
    pub first_bad_at: DateTime<Utc>,
    /// When telltale noticed.
    pub detected_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Healthy observations since the last bad one (auto-resolve counts these).
    pub healthy_streak: u32,
    /// Bad observations folded into this incident.
    pub bad_count: u32,
    pub last_notified_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_by: Option<String>,
}

impl Incident {
    pub fn severity_label(&self) -> String {
        format!("SEV-{}", self.severity)
    }

    /// Time to detection: first bad observation → detection.
    pub fn time_to_detection(&self) -> chrono::Duration {
        (self.detected_at - self.first_bad_at).max(chrono::Duration::zero())
    }

    /// Time to resolution: detection → resolution (or `now` while open).
    pub fn time_to_resolution(&self, now: DateTime<Utc>) -> chrono::Duration {
        (self.resolved_at.unwrap_or(now) - self.detected_at).max(chrono::Duration::zero())
    }

    /// The channel-neutral view a notification carries.
    pub fn snapshot(&self, links: &Links) -> IncidentSnapshot {
        IncidentSnapshot {
            id: self.id.clone(),
            key: self.key.clone(),
            asset: self.asset.clone(),
            source: self.source.clone(),
            monitor: self.monitor.clone(),
            column: self.column.clone(),
            severity: self.severity_label(),
            status: self.status.as_str().to_string(),
            title: self.title.clone(),
            explanation: self.explanation.clone(),
            observed: self.observed,
            expected_low: self.expected_low,
            expected_high: self.expected_high,
            score: self.score,
            owner: self.owner.clone(),
            tier: self.tier,
            tags: self.tags.clone(),
            first_bad_at: self.first_bad_at,
            detected_at: self.detected_at,
            acknowledged_at: self.acknowledged_at,
            resolved_at: self.resolved_at,
            incident_url: links
                .base_url
                .as_ref()
                .map(|b| format!("{}/api/v1/incidents/{}", b.trim_end_matches('/'), self.id)),
            grafana_url: links.grafana_url.as_ref().map(|g| g.replace("{asset}", &self.asset)),
            next_step: Some(next_step(self)),
            downstream_count: 0,
            key_assets: Vec::new(),
        }
    }

    /// A notification about this incident; its id is unique per incident, event and channel.
    pub fn notification(
        &self,
        event: NotificationEvent,
        channel: &str,
        at: DateTime<Utc>,
        links: &Links,
    ) -> Notification {
        Notification {
            id: format!("{}-{}-{}-{}", self.id, event.as_str(), channel, at.timestamp_millis()),
            event,
            incident: self.snapshot(links),
            created_at: at,
        }
    }
}

/// Where links in notifications point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links {
    /// telltale's own address as users reach it (e.g. `https://telltale.example.com`).
    pub base_url: Option<String>,
    /// Grafana dashboard URL with `{asset}` in place of the asset name.
    pub grafana_url: Option<String>,
}

fn next_step(incident: &Incident) -> String {
    let owner = incident.owner.as_deref().unwrap_or("the table's owner");
    match incident.monitor.as_str() {
        "freshness" => format!("check the loader or job that writes {}; {owner} owns it", incident.asset),
        "volume" => format!(
            "compare today's load of {} with yesterday's; a partial or duplicate load is likely",
            incident.asset
        ),
        "schema" => format!("find the migration that changed {} and the readers it breaks", incident.asset),
        _ => format!("run `telltale measure {}` to see the current values", incident.asset),
    }
}

/// An asset's health for circuit breakers: `broken` while a SEV-1 or SEV-2 incident is open,
/// `degraded` while a milder one is, `healthy` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Degraded,
    Broken,
}

impl Health {
    pub fn of(open_incidents: &[Incident]) -> Health {
        let active: Vec<&Incident> = open_incidents.iter().filter(|i| i.status.is_active()).collect();
        if active.iter().any(|i| i.severity <= 2) {
            Health::Broken
        } else if active.is_empty() {
            Health::Healthy
        } else {
            Health::Degraded
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Broken => "broken",
        }
    }
}

/// `asset/monitor[/column]`: the identity of one problem.
pub fn incident_key(asset: &str, monitor: &str, column: Option<&str>) -> String {
    match column {
        Some(c) if !c.is_empty() => format!("{asset}/{monitor}/{c}"),
        _ => format!("{asset}/{monitor}"),
    }
}

/// Severity from the asset's tier (1–4, unset = 3) and the monitor: table-level pillars keep
/// the tier's severity, column and custom metrics are one level milder.
pub fn severity_for(tier: Option<u8>, monitor: &str) -> u8 {
    let base = tier.unwrap_or(3).clamp(1, 4);
    let adjust = match monitor {
        "freshness" | "volume" | "schema" => 0,
        _ => 1,
    };
    (base + adjust).min(4)
}

/// A new, time-ordered incident id: `inc_` + milliseconds (hex) + 6 random hex digits.
pub fn new_id(at: DateTime<Utc>) -> String {
    format!("inc_{:011x}{:06x}", at.timestamp_millis(), rand::random::<u32>() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_follows_tier_and_monitor() {
        assert_eq!(severity_for(Some(1), "freshness"), 1);
        assert_eq!(severity_for(Some(1), "column"), 2);
        assert_eq!(severity_for(None, "volume"), 3);
        assert_eq!(severity_for(Some(4), "custom_sql"), 4);
    }

    #[test]
    fn ids_sort_by_time() {
        let a = new_id("2026-01-01T00:00:00Z".parse().unwrap());
        let b = new_id("2026-01-01T00:00:01Z".parse().unwrap());
        assert!(a < b && a.starts_with("inc_"));
        assert_eq!(incident_key("s.m.t", "column", Some("amount")), "s.m.t/column/amount");
    }
}
