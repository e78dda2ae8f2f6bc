//! How observations move incidents: open, dedup, group, flap protection, auto-resolve, and the
//! manual transitions (acknowledge, resolve, expected, false positive). Pure.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Incident, IncidentStatus, incident_key, severity_for};
use crate::alert::NotificationEvent;

/// Settings of the incident lifecycle (`incidents:` in telltale.yaml).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Healthy observations in a row that resolve an incident.
    pub auto_resolve_after: u32,
    /// An incident that resolves and goes bad again within this window is reopened, not new.
    pub flap_window: Duration,
    /// Problems of the same asset detected within this window of an open incident join it.
    pub group_window: Duration,
    /// Re-notify unacknowledged incidents of these severities this often (SEV-1 only by default).
    pub renotify: Vec<(u8, Duration)>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            auto_resolve_after: 2,
            flap_window: Duration::from_secs(3600),
            group_window: Duration::from_secs(1800),
            renotify: vec![(1, Duration::from_secs(1800))],
        }
    }
}

/// One judged monitor result, as the lifecycle sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub asset: String,
    pub source: String,
    pub monitor: String,
    pub column: Option<String>,
    pub bad: bool,
    pub at: DateTime<Utc>,
    /// When the data went bad, if earlier than `at` (e.g. the start of a late window).
    pub first_bad_at: Option<DateTime<Utc>>,
    pub title: String,
    pub explanation: String,
    pub observed: Option<f64>,
    pub expected_low: Option<f64>,
    pub expected_high: Option<f64>,
    pub score: Option<f64>,
    pub owner: Option<String>,
    pub tier: Option<u8>,
    pub tags: Vec<String>,
}

impl Observation {
    pub fn key(&self) -> String {
        incident_key(&self.asset, &self.monitor, self.column.as_deref())
    }
}

/// What an observation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new incident (index into the list).
    Opened(usize),
    /// A resolved incident went bad again within the flap window.
    Reopened(usize),
    /// Folded into an open incident (same problem, or grouped with the asset's other problem).
    Updated(usize),
    /// Joined the open incident of an upstream asset as a symptom (root-cause grouping): no page.
    Symptom(usize),
    /// Healthy long enough: resolved.
    AutoResolved(usize),
    /// Healthy, but not yet long enough (or nothing open).
    Nothing,
}

impl Change {
    /// The notification a change calls for.
    pub fn notification(&self) -> Option<(usize, NotificationEvent)> {
        match *self {
            Change::Opened(i) | Change::Reopened(i) => Some((i, NotificationEvent::Triggered)),
            Change::AutoResolved(i) => Some((i, NotificationEvent::Resolved)),
            Change::Updated(_) | Change::Symptom(_) | Change::Nothing => None,
        }
    }
}

/// Applies `obs` to `incidents`: the asset's active incidents and those resolved recently, then
/// (root-cause grouping) active incidents of assets upstream of it, nearest first, which the
/// caller includes only while they are recent enough to explain this asset's problems.
///
/// A bad observation that matches none of the asset's own incidents joins the first upstream
/// incident as a symptom instead of opening (paging) its own. A symptom never resolves, reopens
/// or holds open its root incident: only the root asset's own observations do.
pub fn observe(
    incidents: &mut Vec<Incident>,
    obs: &Observation,
    policy: &Policy,
    new_id: impl FnOnce() -> String,
) -> Change {
    let key = obs.key();
    let active = incidents.iter().position(|i| i.status.is_active() && i.member_keys.contains(&key));
    if let Some(i) = active
        && incidents[i].asset != obs.asset
    {
        // Already a symptom of an upstream incident.
        if obs.bad {
            let incident = &mut incidents[i];
            incident.bad_count += 1;
            incident.updated_at = obs.at;
            return Change::Symptom(i);
        }
        return Change::Nothing;
    }
    if !obs.bad {
        let Some(i) = active else { return Change::Nothing };
        let incident = &mut incidents[i];
        incident.healthy_streak += 1;
        incident.updated_at = obs.at;
        if incident.healthy_streak >= policy.auto_resolve_after {
            incident.status = IncidentStatus::Resolved;
            incident.resolved_at = Some(obs.at);
            incident.resolved_by = Some("telltale (healthy again)".into());
            return Change::AutoResolved(i);
        }
        return Change::Nothing;
    }
    if let Some(i) = active {
        let incident = &mut incidents[i];
        incident.healthy_streak = 0;
        incident.bad_count += 1;
        incident.updated_at = obs.at;
        if incident.key == key {
            refresh(incident, obs);
        }
        return Change::Updated(i);
    }
    // Another problem of the same asset, detected moments ago: one incident, several symptoms.
    let window = chrono::Duration::from_std(policy.group_window).unwrap_or_default();
    if let Some(i) =
        incidents.iter().position(|i| i.status.is_active() && i.asset == obs.asset && obs.at - i.detected_at <= window)
    {
        let incident = &mut incidents[i];
        incident.member_keys.push(key);
        incident.severity = incident.severity.min(severity_for(obs.tier, &obs.monitor));
        incident.healthy_streak = 0;
        incident.bad_count += 1;
        incident.updated_at = obs.at;
        incident.explanation = format!("{}\nalso: {}", incident.explanation, obs.explanation);
        return Change::Updated(i);
    }
    // Downstream of an open incident: a symptom of that root cause, not a new page.
    if let Some(i) = incidents.iter().position(|i| i.status.is_active() && i.asset != obs.asset) {
        let incident = &mut incidents[i];
        incident.member_keys.push(key);
        incident.bad_count += 1;
        incident.updated_at = obs.at;
        incident.explanation = format!("{}\nsymptom downstream: {}", incident.explanation, obs.title);
        return Change::Symptom(i);
    }
    // Flapping: resolved by itself moments ago, bad again → the same incident.
    let flap = chrono::Duration::from_std(policy.flap_window).unwrap_or_default();
    if let Some(i) = incidents.iter().position(|i| {
        i.status == IncidentStatus::Resolved
            && i.asset == obs.asset
            && i.member_keys.contains(&key)
            && i.resolved_at.is_some_and(|r| obs.at - r <= flap)
    }) {
        let incident = &mut incidents[i];
        incident.status = IncidentStatus::Open;
        incident.resolved_at = None;
        incident.resolved_by = None;
        incident.acknowledged_at = None;
        incident.acknowledged_by = None;
        incident.healthy_streak = 0;
        incident.bad_count += 1;
        incident.updated_at = obs.at;
        refresh(incident, obs);
        return Change::Reopened(i);
    }
    let first_bad_at = obs.first_bad_at.filter(|t| *t <= obs.at).unwrap_or(obs.at);
    incidents.push(Incident {
        id: new_id(),
        key: key.clone(),
        member_keys: vec![key],
        asset: obs.asset.clone(),
        source: obs.source.clone(),
        monitor: obs.monitor.clone(),
        column: obs.column.clone(),
        severity: severity_for(obs.tier, &obs.monitor),
        status: IncidentStatus::Open,
        title: obs.title.clone(),
        explanation: obs.explanation.clone(),
        observed: obs.observed,
        expected_low: obs.expected_low,
        expected_high: obs.expected_high,
        score: obs.score,
        owner: obs.owner.clone(),
        tier: obs.tier,
        tags: obs.tags.clone(),
        first_bad_at,
        detected_at: obs.at,
        acknowledged_at: None,
        resolved_at: None,
        updated_at: obs.at,
        healthy_streak: 0,
        bad_count: 1,
        last_notified_at: None,
        acknowledged_by: None,
        resolved_by: None,
    });
    Change::Opened(incidents.len() - 1)
}

/// Lines of an explanation that carry context rather than the latest measurement: other problems
/// grouped in, downstream symptoms, the failed job run. A refresh keeps them.
pub const CONTEXT_PREFIXES: [&str; 3] = ["also: ", "symptom downstream: ", "The job `"];

fn refresh(incident: &mut Incident, obs: &Observation) {
    incident.title = obs.title.clone();
    let context: Vec<&str> =
        incident.explanation.lines().filter(|l| CONTEXT_PREFIXES.iter().any(|p| l.starts_with(p))).collect();
    incident.explanation = std::iter::once(obs.explanation.as_str()).chain(context).collect::<Vec<_>>().join("\n");
    incident.observed = obs.observed;
    incident.expected_low = obs.expected_low;
    incident.expected_high = obs.expected_high;
    incident.score = obs.score;
}

/// A person's action on an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    Resolve,
    Expected,
    FalsePositive,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "acknowledge" | "ack" => Action::Acknowledge,
            "resolve" => Action::Resolve,
            "expected" => Action::Expected,
            "false-positive" | "false_positive" => Action::FalsePositive,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledged",
            Action::Resolve => "resolved",
            Action::Expected => "expected",
            Action::FalsePositive => "false_positive",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("incident {id} is {status}; it cannot be {action}")]
pub struct InvalidTransition {
    pub id: String,
    pub status: &'static str,
    pub action: &'static str,
}

/// Applies a person's action; returns the notification it calls for.
pub fn act(
    incident: &mut Incident,
    action: Action,
    by: Option<&str>,
    at: DateTime<Utc>,
) -> Result<NotificationEvent, InvalidTransition> {
    let invalid =
        |i: &Incident| InvalidTransition { id: i.id.clone(), status: i.status.as_str(), action: action.as_str() };
    match action {
        Action::Acknowledge => {
            if incident.status != IncidentStatus::Open {
                return Err(invalid(incident));
            }
            incident.status = IncidentStatus::Acknowledged;
            incident.acknowledged_at = Some(at);
            incident.acknowledged_by = by.map(String::from);
            incident.updated_at = at;
            Ok(NotificationEvent::Acknowledged)
        }
        Action::Resolve | Action::Expected | Action::FalsePositive => {
            // Reclassifying a resolved incident (resolved → expected) is allowed; reopening is not.
            let allowed = incident.status.is_active()
                || (incident.status == IncidentStatus::Resolved && action != Action::Resolve);
            if !allowed {
                return Err(invalid(incident));
            }
            incident.status = match action {
                Action::Resolve => IncidentStatus::Resolved,
                Action::Expected => IncidentStatus::Expected,
                _ => IncidentStatus::FalsePositive,
            };
            if incident.resolved_at.is_none() {
                incident.resolved_at = Some(at);
            }
            incident.resolved_by = by.map(String::from).or(incident.resolved_by.take());
            incident.updated_at = at;
            Ok(NotificationEvent::Resolved)
        }
    }
}

/// Whether an open, unacknowledged incident is due a reminder at `now`.
pub fn reminder_due(incident: &Incident, policy: &Policy, now: DateTime<Utc>) -> bool {
    if incident.status != IncidentStatus::Open {
        return false;
    }
    let Some((_, every)) = policy.renotify.iter().find(|(sev, _)| *sev == incident.severity) else { return false };
    let last = incident.last_notified_at.unwrap_or(incident.detected_at);
    now - last >= chrono::Duration::from_std(*every).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        "2026-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(minutes)
    }

    fn obs(monitor: &str, bad: bool, at: i64) -> Observation {
        Observation {
            asset: "wh.public.orders".into(),
            source: "wh".into(),
            monitor: monitor.into(),
            column: None,
            bad,
            at: t(at),
            first_bad_at: None,
            title: format!("orders {monitor}"),
            explanation: format!("{monitor} is off"),
            observed: Some(1.0),
            expected_low: None,
            expected_high: None,
            score: None,
            owner: Some("@team".into()),
            tier: Some(1),
            tags: vec![],
        }
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("inc_{n}")
        }
    }

    #[test]
    fn a_still_bad_measurement_updates_instead_of_opening_another() {
        let policy = Policy::default();
        let mut list = Vec::new();
        let mut id = ids();
        assert_eq!(observe(&mut list, &obs("freshness", true, 0), &policy, &mut id), Change::Opened(0));
        assert_eq!(observe(&mut list, &obs("freshness", true, 5), &policy, &mut id), Change::Updated(0));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].bad_count, 2);
        assert_eq!(list[0].severity, 1);
    }

    #[test]
    fn healthy_twice_resolves_and_a_relapse_within_the_window_reopens() {
        let policy = Policy::default();
        let mut list = Vec::new();
        let mut id = ids();
        observe(&mut list, &obs("volume", true, 0), &policy, &mut id);
        assert_eq!(observe(&mut list, &obs("volume", false, 10), &policy, &mut id), Change::Nothing);
        assert_eq!(
            observe(&mut list, &obs("volume", true, 20), &policy, &mut id),
            Change::Updated(0),
            "a bad point resets the streak"
        );
        observe(&mut list, &obs("volume", false, 30), &policy, &mut id);
        assert_eq!(observe(&mut list, &obs("volume", false, 40), &policy, &mut id), Change::AutoResolved(0));
        assert_eq!(list[0].status, IncidentStatus::Resolved);
        assert_eq!(list[0].time_to_resolution(t(99)), chrono::Duration::minutes(40));
        assert_eq!(observe(&mut list, &obs("volume", true, 70), &policy, &mut id), Change::Reopened(0));
        assert_eq!(list.len(), 1, "flapping is one incident");
        // Much later it is a new incident.
        observe(&mut list, &obs("volume", false, 80), &policy, &mut id);
        observe(&mut list, &obs("volume", false, 90), &policy, &mut id);
        assert_eq!(observe(&mut list, &obs("volume", true, 300), &policy, &mut id), Change::Opened(1));
    }

    #[test]
    fn problems_of_one_asset_at_once_are_grouped() {
        let policy = Policy::default();
        let mut list = Vec::new();
        let mut id = ids();
        observe(&mut list, &obs("freshness", true, 0), &policy, &mut id);
        let mut null = obs("column", true, 3);
        null.column = Some("amount".into());
        assert_eq!(observe(&mut list, &null, &policy, &mut id), Change::Updated(0));
        assert_eq!(list[0].member_keys, vec!["wh.public.orders/freshness", "wh.public.orders/column/amount"]);
        assert!(list[0].explanation.contains("also: column is off"));
        // Outside the group window a new problem is its own incident.
        assert_eq!(observe(&mut list, &obs("schema", true, 60), &policy, &mut id), Change::Opened(1));
    }

    #[test]
    fn downstream_problems_join_the_upstream_incident_as_symptoms() {
        let policy = Policy::default();
        let mut root = Vec::new();
        let mut id = ids();
        observe(&mut root, &obs("freshness", true, 0), &policy, &mut id);
        // The downstream asset's own incidents (none), then the upstream root incident.
        let mut list = root.clone();
        let mut downstream = obs("volume", true, 5);
        downstream.asset = "wh.marts.fct_orders".into();
        downstream.title = "fct_orders volume: 0 rows".into();
        assert_eq!(observe(&mut list, &downstream, &policy, &mut id), Change::Symptom(0));
        assert_eq!(list.len(), 1, "no incident of its own, no page");
        assert_eq!(Change::Symptom(0).notification(), None);
        assert_eq!(list[0].member_keys, vec!["wh.public.orders/freshness", "wh.marts.fct_orders/volume"]);
        assert!(list[0].explanation.contains("symptom downstream: fct_orders volume: 0 rows"));
        assert_eq!(list[0].severity, 1, "a symptom does not change the root's severity");
        // The root measured again: its explanation is refreshed, the symptom line stays.
        assert_eq!(observe(&mut list, &obs("freshness", true, 7), &policy, &mut id), Change::Updated(0));
        assert_eq!(list[0].explanation, "freshness is off\nsymptom downstream: fct_orders volume: 0 rows");
        // Still bad: still a symptom. Healthy: the root stays open.
        downstream.at = t(10);
        assert_eq!(observe(&mut list, &downstream, &policy, &mut id), Change::Symptom(0));
        let mut healthy = downstream.clone();
        healthy.bad = false;
        for minute in [15, 20, 25] {
            healthy.at = t(minute);
            assert_eq!(observe(&mut list, &healthy, &policy, &mut id), Change::Nothing);
        }
        assert_eq!(list[0].status, IncidentStatus::Open);
        assert_eq!(list[0].healthy_streak, 0);
        // Once the root resolved, a downstream problem pages on its own (no flap-reopen of the root).
        list[0].status = IncidentStatus::Resolved;
        list[0].resolved_at = Some(t(30));
        downstream.at = t(35);
        let mut own: Vec<Incident> = Vec::new();
        assert_eq!(observe(&mut own, &downstream, &policy, &mut id), Change::Opened(0));
        assert_eq!(observe(&mut list, &downstream, &policy, &mut id), Change::Opened(1));
    }

    #[test]
    fn people_move_incidents_and_bad_moves_are_refused() {
        let policy = Policy::default();
        let mut list = Vec::new();
        observe(&mut list, &obs("freshness", true, 0), &policy, ids());
        let incident = &mut list[0];
        assert_eq!(act(incident, Action::Acknowledge, Some("alice"), t(3)).unwrap(), NotificationEvent::Acknowledged);
        assert_eq!(incident.acknowledged_by.as_deref(), Some("alice"));
        assert!(act(incident, Action::Acknowledge, None, t(4)).is_err());
        assert!(!reminder_due(incident, &policy, t(600)), "acknowledged incidents are not re-notified");
        assert_eq!(act(incident, Action::Expected, Some("bob"), t(5)).unwrap(), NotificationEvent::Resolved);
        assert_eq!(incident.status, IncidentStatus::Expected);
        assert!(!incident.status.is_downtime());
        let err = act(incident, Action::Acknowledge, None, t(6)).unwrap_err();
        assert_eq!(err.to_string(), "incident inc_1 is expected; it cannot be acknowledged");
    }

    #[test]
    fn unacknowledged_sev1_incidents_are_re_notified() {
        let policy = Policy::default();
        let mut list = Vec::new();
        observe(&mut list, &obs("freshness", true, 0), &policy, ids());
        assert!(!reminder_due(&list[0], &policy, t(29)));
        assert!(reminder_due(&list[0], &policy, t(30)));
        list[0].severity = 2;
        assert!(!reminder_due(&list[0], &policy, t(300)), "lower severities are not re-notified");
    }
}
