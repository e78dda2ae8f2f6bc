//! A realistic sample notification: the fixture of the payload snapshot tests, the examples in
//! `docs/alerting.md`, and what a "send a test alert" command can deliver to check a channel.
//!
//! It is fixed data (no clock, no randomness) so that payloads built from it never change.

use chrono::{DateTime, TimeZone, Utc};

use super::{ImpactedAsset, IncidentSnapshot, Notification, NotificationEvent};

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 20, hour, minute, 0).single().expect("a valid fixed time")
}

/// A SEV-2 freshness incident on `shop.main.orders`, as `event` reports it: triggered and reminded
/// at 09:15 UTC, acknowledged at 09:27, resolved at 09:40.
pub fn notification(event: NotificationEvent) -> Notification {
    let mut incident = IncidentSnapshot {
        id: "inc_0191c9a2".into(),
        key: "shop.main.orders/freshness".into(),
        asset: "shop.main.orders".into(),
        source: "shop".into(),
        monitor: "freshness".into(),
        column: None,
        severity: "SEV-2".into(),
        status: "open".into(),
        title: "shop.main.orders has not been updated for 7 h 12 min".into(),
        explanation: "No new rows since 2026-08-20 02:03 UTC. The table usually changes every 40 min \
                      (learned from 28 days of history); more than 2 h without a change is unusual on a \
                      Thursday morning."
            .into(),
        observed: Some(25_920.0),
        expected_low: None,
        expected_high: Some(7_200.0),
        score: Some(6.2),
        owner: Some("@data-platform".into()),
        tier: Some(1),
        tags: vec!["orders".into(), "finance".into()],
        first_bad_at: at(2, 3),
        detected_at: at(4, 5),
        acknowledged_at: None,
        resolved_at: None,
        incident_url: Some("https://telltale.example.com/incidents/inc_0191c9a2".into()),
        grafana_url: Some("https://grafana.example.com/d/telltale-table?var-asset=shop.main.orders".into()),
        next_step: Some("Check the `load_orders` job, then acknowledge the incident.".into()),
        downstream_count: 14,
        key_assets: vec![
            ImpactedAsset {
                name: "exposure.shop.exec_revenue".into(),
                kind: "dashboard".into(),
                owner: Some("@finance-analytics".into()),
            },
            ImpactedAsset { name: "model.shop.fct_revenue_daily".into(), kind: "table".into(), owner: None },
        ],
    };
    let created_at = match event {
        NotificationEvent::Triggered | NotificationEvent::Reminder => at(9, 15),
        NotificationEvent::Acknowledged => {
            incident.status = "acknowledged".into();
            incident.acknowledged_at = Some(at(9, 27));
            at(9, 27)
        }
        NotificationEvent::Resolved => {
            incident.status = "resolved".into();
            incident.acknowledged_at = Some(at(9, 27));
            incident.resolved_at = Some(at(9, 40));
            at(9, 40)
        }
    };
    Notification { id: format!("ntf_0191c9a2_{}", event.as_str()), event, incident, created_at }
}
