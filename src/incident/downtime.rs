//! Data downtime: how long data was late, missing or wrong, per asset or owner, and what it cost
//! (`incidents × (time to detection + time to resolution)`), with per-asset SLOs. Pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Incident;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Asset,
    Owner,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DowntimeRow {
    /// The asset or owner.
    pub group: String,
    pub incidents: usize,
    /// Time within the period during which an incident (not expected, not a false positive) was
    /// bad: from its first bad observation to its resolution (or now), clipped to the period.
    pub downtime_seconds: f64,
    pub mean_time_to_detection_seconds: f64,
    pub mean_time_to_resolution_seconds: f64,
    /// Σ (TTD + TTR) over the incidents: the cost formula of data downtime.
    pub cost_seconds: f64,
    /// The asset's SLO (share of time healthy), when one is set.
    pub slo: Option<f64>,
    pub error_budget_seconds: Option<f64>,
    pub error_budget_left_seconds: Option<f64>,
}

/// Downtime over `[since, now]` of the given incidents, grouped; `slo` gives an asset's target.
pub fn downtime(
    incidents: &[Incident],
    group_by: GroupBy,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    slo: impl Fn(&str) -> Option<f64>,
) -> Vec<DowntimeRow> {
    let mut groups: BTreeMap<String, Vec<&Incident>> = BTreeMap::new();
    for i in incidents.iter().filter(|i| i.status.is_downtime()) {
        let end = i.resolved_at.unwrap_or(now);
        if end < since || i.first_bad_at > now {
            continue;
        }
        let key = match group_by {
            GroupBy::Asset => i.asset.clone(),
            GroupBy::Owner => i.owner.clone().unwrap_or_else(|| "(no owner)".into()),
        };
        groups.entry(key).or_default().push(i);
    }
    let period = (now - since).num_milliseconds().max(0) as f64 / 1000.0;
    groups
        .into_iter()
        .map(|(group, list)| {
            // Union of bad intervals, so overlapping incidents of one group count once.
            let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> =
                list.iter().map(|i| (i.first_bad_at.max(since), i.resolved_at.unwrap_or(now).min(now))).collect();
            spans.sort();
            let mut total = 0.0;
            let mut current: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
            for (s, e) in spans {
                match current {
                    Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
                    Some((cs, ce)) => {
                        total += (ce - cs).num_milliseconds() as f64 / 1000.0;
                        current = Some((s, e));
                    }
                    None => current = Some((s, e)),
                }
            }
            if let Some((cs, ce)) = current {
                total += (ce - cs).num_milliseconds().max(0) as f64 / 1000.0;
            }
            let n = list.len() as f64;
            let ttd: f64 = list.iter().map(|i| i.time_to_detection().num_milliseconds() as f64 / 1000.0).sum();
            let ttr: f64 = list.iter().map(|i| i.time_to_resolution(now).num_milliseconds() as f64 / 1000.0).sum();
            let slo = if group_by == GroupBy::Asset { slo(&group) } else { None };
            let budget = slo.map(|s| (1.0 - s) * period);
            DowntimeRow {
                group,
                incidents: list.len(),
                downtime_seconds: total,
                mean_time_to_detection_seconds: ttd / n,
                mean_time_to_resolution_seconds: ttr / n,
                cost_seconds: ttd + ttr,
                slo,
                error_budget_seconds: budget,
                error_budget_left_seconds: budget.map(|b| b - total),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::IncidentStatus;
    use crate::incident::lifecycle::{Observation, Policy, observe};

    fn t(h: i64) -> DateTime<Utc> {
        "2026-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::hours(h)
    }

    fn incident(asset: &str, owner: &str, first_bad: i64, detected: i64, resolved: Option<i64>) -> Incident {
        let mut list = Vec::new();
        let obs = Observation {
            asset: asset.into(),
            source: "wh".into(),
            monitor: "freshness".into(),
            column: None,
            bad: true,
            at: t(detected),
            first_bad_at: Some(t(first_bad)),
            title: "t".into(),
            explanation: "e".into(),
            observed: None,
            expected_low: None,
            expected_high: None,
            score: None,
            owner: Some(owner.into()),
            tier: None,
            tags: vec![],
        };
        observe(&mut list, &obs, &Policy::default(), || format!("inc_{asset}_{first_bad}"));
        let mut i = list.remove(0);
        if let Some(r) = resolved {
            i.status = IncidentStatus::Resolved;
            i.resolved_at = Some(t(r));
        }
        i
    }

    #[test]
    fn downtime_is_the_union_of_bad_time_with_ttd_ttr_and_budget() {
        let incidents = vec![
            incident("a", "@x", 1, 2, Some(4)),
            incident("a", "@x", 3, 3, Some(6)), // overlaps the first: counted once
            incident("b", "@x", 20, 21, None),  // still open at now = 24
        ];
        let rows = downtime(&incidents, GroupBy::Asset, t(0), t(24), |a| (a == "a").then_some(0.99));
        assert_eq!(rows.len(), 2);
        let a = &rows[0];
        assert_eq!((a.group.as_str(), a.incidents), ("a", 2));
        assert_eq!(a.downtime_seconds, 5.0 * 3600.0, "1h→6h");
        assert_eq!(a.mean_time_to_detection_seconds, 1800.0);
        assert_eq!(a.cost_seconds, (1.0 + 2.0 + 0.0 + 3.0) * 3600.0);
        assert!((a.error_budget_seconds.unwrap() - 0.01 * 24.0 * 3600.0).abs() < 1e-6);
        assert!(a.error_budget_left_seconds.unwrap() < 0.0, "5h down blows a 99% daily budget");
        assert_eq!(rows[1].downtime_seconds, 4.0 * 3600.0);
        let owners = downtime(&incidents, GroupBy::Owner, t(0), t(24), |_| None);
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].downtime_seconds, 9.0 * 3600.0);
    }

    #[test]
    fn expected_changes_and_false_positives_are_not_downtime() {
        let mut i = incident("a", "@x", 1, 1, Some(2));
        i.status = IncidentStatus::FalsePositive;
        assert!(downtime(&[i], GroupBy::Asset, t(0), t(24), |_| None).is_empty());
    }
}
