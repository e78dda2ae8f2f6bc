//! Which channels hear about an incident: routes matched on severity, owner, tags, tier, source,
//! monitor and asset; mutes (snoozes) per asset or monitor until a time. Pure.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Incident;
use crate::config::glob_match;

/// Conditions of a route; an empty list matches anything.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RouteMatch {
    pub severity: Vec<u8>,
    pub owner: Vec<String>,
    /// The incident's asset has at least one of these tags.
    pub tags: Vec<String>,
    pub tier: Vec<u8>,
    pub source: Vec<String>,
    pub monitor: Vec<String>,
    /// Glob patterns over `source.schema.table`.
    pub asset: Vec<String>,
    /// Owners of key assets downstream of the incident's asset (lineage): a name, an email or
    /// `Name (email)`. Lets a dashboard's owners hear about the table feeding it.
    pub downstream_owner: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    pub matches: RouteMatch,
    pub channels: Vec<String>,
    /// Keep looking at later routes after this one matched.
    pub continue_matching: bool,
}

/// Silence an asset (optionally one monitor) until a time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mute {
    /// Glob over `source.schema.table`.
    pub asset: String,
    pub monitor: Option<String>,
    pub until: DateTime<Utc>,
    pub reason: Option<String>,
}

impl RouteMatch {
    pub fn matches(&self, i: &Incident) -> bool {
        self.matches_with(i, &[])
    }

    /// `matches`, knowing the owners of the key assets downstream of the incident (each as its
    /// name, email and `Name (email)`).
    pub fn matches_with(&self, i: &Incident, downstream_owners: &[String]) -> bool {
        (self.downstream_owner.is_empty() || self.downstream_owner.iter().any(|o| downstream_owners.contains(o)))
            && (self.severity.is_empty() || self.severity.contains(&i.severity))
            && (self.owner.is_empty() || i.owner.as_ref().is_some_and(|o| self.owner.contains(o)))
            && (self.tags.is_empty() || i.tags.iter().any(|t| self.tags.contains(t)))
            && (self.tier.is_empty() || i.tier.is_some_and(|t| self.tier.contains(&t)))
            && (self.source.is_empty() || self.source.contains(&i.source))
            && (self.monitor.is_empty() || self.monitor.contains(&i.monitor))
            && (self.asset.is_empty() || self.asset.iter().any(|p| glob_match(p, &i.asset)))
    }
}

/// Channels for an incident: the first matching route's (and later ones while `continue`), in
/// order, without duplicates. No matching route means no channel.
pub fn channels_for(incident: &Incident, routes: &[Route]) -> Vec<String> {
    channels_for_with(incident, &[], routes)
}

/// [`channels_for`], with the owners of the key assets downstream of the incident.
pub fn channels_for_with(incident: &Incident, downstream_owners: &[String], routes: &[Route]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for route in routes {
        if route.matches.matches_with(incident, downstream_owners) {
            for c in &route.channels {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
            if !route.continue_matching {
                break;
            }
        }
    }
    out
}

/// The mute that silences this incident at `now`, if any.
pub fn muted_by<'m>(incident: &Incident, mutes: &'m [Mute], now: DateTime<Utc>) -> Option<&'m Mute> {
    mutes.iter().find(|m| {
        m.until > now
            && glob_match(&m.asset, &incident.asset)
            && m.monitor.as_ref().is_none_or(|mon| mon == &incident.monitor)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::lifecycle::{Observation, Policy, observe};

    fn incident(severity: u8, monitor: &str, tags: &[&str]) -> Incident {
        let mut list = Vec::new();
        let obs = Observation {
            asset: "wh.sales.orders".into(),
            source: "wh".into(),
            monitor: monitor.into(),
            column: None,
            bad: true,
            at: "2026-01-01T00:00:00Z".parse().unwrap(),
            first_bad_at: None,
            title: "t".into(),
            explanation: "e".into(),
            observed: None,
            expected_low: None,
            expected_high: None,
            score: None,
            owner: Some("@sales".into()),
            tier: Some(severity),
            tags: tags.iter().map(|s| s.to_string()).collect(),
        };
        observe(&mut list, &obs, &Policy::default(), || "inc_1".into());
        list.remove(0)
    }

    #[test]
    fn routes_match_in_order_and_continue_on_request() {
        let routes = vec![
            Route {
                matches: RouteMatch { severity: vec![1, 2], ..RouteMatch::default() },
                channels: vec!["pagerduty".into()],
                continue_matching: true,
            },
            Route {
                matches: RouteMatch {
                    tags: vec!["revenue".into()],
                    owner: vec!["@sales".into()],
                    ..RouteMatch::default()
                },
                channels: vec!["sales-slack".into()],
                continue_matching: false,
            },
            Route { matches: RouteMatch::default(), channels: vec!["catch-all".into()], continue_matching: false },
        ];
        assert_eq!(channels_for(&incident(1, "freshness", &["revenue"]), &routes), vec!["pagerduty", "sales-slack"]);
        assert_eq!(channels_for(&incident(3, "freshness", &["revenue"]), &routes), vec!["sales-slack"]);
        assert_eq!(channels_for(&incident(3, "freshness", &[]), &routes), vec!["catch-all"]);
        let glob = Route {
            matches: RouteMatch {
                asset: vec!["wh.sales.*".into()],
                monitor: vec!["schema".into()],
                ..RouteMatch::default()
            },
            channels: vec!["x".into()],
            continue_matching: false,
        };
        assert!(channels_for(&incident(3, "volume", &[]), std::slice::from_ref(&glob)).is_empty());
        assert_eq!(channels_for(&incident(3, "schema", &[]), &[glob]), vec!["x"]);
    }

    #[test]
    fn routes_can_match_the_owners_of_key_downstream_assets() {
        let routes = vec![
            Route {
                matches: RouteMatch {
                    downstream_owner: vec!["finance-analytics@shop.example".into()],
                    ..RouteMatch::default()
                },
                channels: vec!["finance".into()],
                continue_matching: true,
            },
            Route { matches: RouteMatch::default(), channels: vec!["catch-all".into()], continue_matching: false },
        ];
        let i = incident(2, "volume", &[]);
        assert_eq!(channels_for(&i, &routes), vec!["catch-all"], "no lineage, no downstream owners");
        let owners = vec!["Finance Analytics".to_string(), "finance-analytics@shop.example".to_string()];
        assert_eq!(channels_for_with(&i, &owners, &routes), vec!["finance", "catch-all"]);
    }

    #[test]
    fn mutes_silence_until_their_time() {
        let i = incident(1, "volume", &[]);
        let mutes = vec![Mute {
            asset: "wh.sales.*".into(),
            monitor: Some("volume".into()),
            until: "2026-01-02T00:00:00Z".parse().unwrap(),
            reason: Some("backfill".into()),
        }];
        assert!(muted_by(&i, &mutes, "2026-01-01T12:00:00Z".parse().unwrap()).is_some());
        assert!(muted_by(&i, &mutes, "2026-01-02T00:00:00Z".parse().unwrap()).is_none());
        assert!(muted_by(&incident(1, "freshness", &[]), &mutes, "2026-01-01T12:00:00Z".parse().unwrap()).is_none());
    }
}
