//! The alerting part of `telltale.yaml`: `channels`, `routes`, `mutes` and `incidents`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::alert::config::{ChannelConfig, decode_channel};
use crate::incident::Links;
use crate::incident::lifecycle::Policy;
use crate::incident::routing::{Mute, Route, RouteMatch};
use crate::yaml::{self, Decoder, MapReader, Node, Value};

/// Everything about turning outcomes into incidents and notifications.
#[derive(Debug, Clone, Default)]
pub struct Alerting {
    pub channels: BTreeMap<String, ChannelConfig>,
    /// In order; the first match wins unless it says `continue: true`. Without `routes`, every
    /// incident goes to every channel.
    pub routes: Vec<Route>,
    pub mutes: Vec<Mute>,
    pub policy: Policy,
    pub links: Links,
}

pub(super) fn decode(d: &mut Decoder, map: &mut MapReader<'_>, env: &dyn Fn(&str) -> Option<String>) -> Alerting {
    let mut out = Alerting::default();
    if let Some(node) = map.get("channels") {
        let path = map.path_of("channels");
        if let Some(mut cmap) = d.map(node, &path) {
            for (key, value) in cmap.entries() {
                let Some(name) = key.as_scalar() else { continue };
                let cpath = yaml::join(&path, name);
                if !super::valid_name(name) {
                    d.error(
                        key.mark,
                        &cpath,
                        format!("invalid channel name `{name}`; use letters, digits, `_` and `-`"),
                    );
                    continue;
                }
                if let Some(c) = decode_channel(d, name, value, &cpath, env) {
                    out.channels.insert(name.to_string(), c);
                }
            }
            cmap.finish(d);
        }
    }
    let names: Vec<String> = out.channels.keys().cloned().collect();
    match map.get("routes") {
        Some(node) => {
            let path = map.path_of("routes");
            for (i, item) in d.seq(node, &path).unwrap_or_default().iter().enumerate() {
                if let Some(r) = decode_route(d, item, &format!("{path}[{i}]"), &names) {
                    out.routes.push(r);
                }
            }
        }
        None if !names.is_empty() => {
            out.routes.push(Route { matches: RouteMatch::default(), channels: names.clone(), continue_matching: false })
        }
        None => {}
    }
    if let Some(node) = map.get("mutes") {
        let path = map.path_of("mutes");
        for (i, item) in d.seq(node, &path).unwrap_or_default().iter().enumerate() {
            if let Some(m) = decode_mute(d, item, &format!("{path}[{i}]")) {
                out.mutes.push(m);
            }
        }
    }
    if let Some(node) = map.get("incidents") {
        decode_incidents(d, node, &map.path_of("incidents"), &mut out);
    }
    out
}

fn severities(d: &mut Decoder, node: &Node, path: &str) -> Vec<u8> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    items
        .into_iter()
        .filter_map(|n| {
            let text = n.as_scalar().unwrap_or_default().to_ascii_uppercase();
            let v = text
                .trim_start_matches("SEV-")
                .trim_start_matches("SEV")
                .parse::<u8>()
                .ok()
                .filter(|v| (1..=4).contains(v));
            if v.is_none() {
                d.error(n.mark, path, format!("invalid severity `{text}`; expected SEV-1 to SEV-4 (or 1 to 4)"));
            }
            v
        })
        .collect()
}

fn strings(d: &mut Decoder, node: &Node, path: &str) -> Vec<String> {
    match &node.value {
        Value::Scalar { .. } => d.text(node, path).into_iter().collect(),
        _ => d.strings(node, path).unwrap_or_default(),
    }
}

fn decode_route(d: &mut Decoder, node: &Node, path: &str, channels: &[String]) -> Option<Route> {
    let mut m = d.map(node, path)?;
    let mut matches = RouteMatch::default();
    if let Some(n) = m.get("match") {
        let mp = m.path_of("match");
        if let Some(mut mm) = d.map(n, &mp) {
            if let Some(x) = mm.get("severity") {
                matches.severity = severities(d, x, &mm.path_of("severity"));
            }
            if let Some(x) = mm.get("owner") {
                matches.owner = strings(d, x, &mm.path_of("owner"));
            }
            if let Some(x) = mm.get("tags") {
                matches.tags = strings(d, x, &mm.path_of("tags"));
            }
            if let Some(x) = mm.get("tier") {
                matches.tier = severities(d, x, &mm.path_of("tier"));
            }
            if let Some(x) = mm.get("source") {
                matches.source = strings(d, x, &mm.path_of("source"));
            }
            if let Some(x) = mm.get("monitor") {
                let mp = mm.path_of("monitor");
                for v in strings(d, x, &mp) {
                    let valid = ["freshness", "volume", "schema", "column", "custom_sql"];
                    if !valid.contains(&v.as_str()) {
                        let hint =
                            yaml::suggest(&v, valid).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
                        d.error(
                            x.mark,
                            &mp,
                            format!("unknown monitor `{v}`{hint}; expected one of: {}", valid.join(", ")),
                        );
                    }
                    matches.monitor.push(v);
                }
            }
            if let Some(x) = mm.get("asset") {
                matches.asset = strings(d, x, &mm.path_of("asset"));
            }
            if let Some(x) = mm.get("downstream_owner") {
                matches.downstream_owner = strings(d, x, &mm.path_of("downstream_owner"));
            }
            mm.finish(d);
        }
    }
    let cpath = m.path_of("channels");
    let route_channels = match m.require(d, "channels", "the channels this route notifies") {
        Some(n) => strings(d, n, &cpath),
        None => Vec::new(),
    };
    for c in &route_channels {
        if !channels.contains(c) {
            let hint = yaml::suggest(c, channels.iter().map(String::as_str))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            d.error(node.mark, &cpath, format!("unknown channel `{c}`{hint}; channels: {}", channels.join(", ")));
        }
    }
    let continue_matching = m.get("continue").and_then(|x| d.bool(x, "continue")).unwrap_or(false);
    m.finish(d);
    Some(Route { matches, channels: route_channels, continue_matching })
}

fn decode_time(d: &mut Decoder, node: &Node, path: &str) -> Option<DateTime<Utc>> {
    let text = d.text(node, path)?;
    match text.parse::<DateTime<Utc>>() {
        Ok(t) => Some(t),
        Err(_) => {
            d.error(
                node.mark,
                path,
                format!("invalid time `{text}`; expected RFC 3339 such as `2026-12-01T08:00:00Z`"),
            );
            None
        }
    }
}

fn decode_mute(d: &mut Decoder, node: &Node, path: &str) -> Option<Mute> {
    let mut m = d.map(node, path)?;
    let asset = m.require(d, "asset", "a `source.schema.table` glob").and_then(|x| d.text(x, &m.path_of("asset")));
    let monitor = m.get("monitor").and_then(|x| d.text(x, &m.path_of("monitor")));
    let until = m.require(d, "until", "the end of the mute").and_then(|x| decode_time(d, x, &m.path_of("until")));
    let reason = m.get("reason").and_then(|x| d.text(x, &m.path_of("reason")));
    m.finish(d);
    Some(Mute { asset: asset?, monitor, until: until?, reason })
}

fn decode_incidents(d: &mut Decoder, node: &Node, path: &str, out: &mut Alerting) {
    let Some(mut m) = d.map(node, path) else { return };
    if let Some(x) = m.get("auto_resolve_after")
        && let Some(v) = d.unsigned(x, &m.path_of("auto_resolve_after"), 1, 1000)
    {
        out.policy.auto_resolve_after = v as u32;
    }
    if let Some(x) = m.get("flap_window")
        && let Some(v) = d.duration(x, &m.path_of("flap_window"))
    {
        out.policy.flap_window = v;
    }
    if let Some(x) = m.get("group_window")
        && let Some(v) = d.duration(x, &m.path_of("group_window"))
    {
        out.policy.group_window = v;
    }
    if let Some(x) = m.get("renotify") {
        let rp = m.path_of("renotify");
        if let Some(mut rm) = d.map(x, &rp) {
            let mut renotify: Vec<(u8, Duration)> = Vec::new();
            for (k, v) in rm.entries() {
                let sev = severities(d, k, &rp);
                if let (Some(s), Some(every)) = (sev.first(), d.duration(v, &rp)) {
                    if every < Duration::from_secs(60) {
                        d.error(v.mark, &rp, "re-notify at most once a minute");
                        continue;
                    }
                    renotify.push((*s, every));
                }
            }
            rm.finish(d);
            out.policy.renotify = renotify;
        }
    }
    if let Some(x) = m.get("base_url") {
        out.links.base_url = d.text(x, &m.path_of("base_url"));
    }
    if let Some(x) = m.get("grafana_url") {
        out.links.grafana_url = d.text(x, &m.path_of("grafana_url"));
    }
    m.finish(d);
}
