//! PagerDuty Events API v2: the event for a notification and its delivery.
//!
//! [`pagerduty_payload`] is pure: `trigger` for a new or reminded incident, `acknowledge` and
//! `resolve` as the incident changes, all with the same stable `dedup_key` (`telltale/<incident
//! key>`, hashed when longer than 255 characters), so a retried or redelivered event is never a
//! second page. The summary stays within 1 024 characters and the body under 512 KB whatever the
//! incident holds (FORMATS.md §2.1). [`PagerDutySink`] posts events and classifies the answer; it
//! never sleeps, retries or rate-limits (the outbox does).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::http::{self, endpoint_label};
use super::text::{self, Unit, headline, hex, subject, truncate};
use super::{AlertError, AlertSink, Delivery, Notification, NotificationEvent};
use crate::secret::Secret;

/// The Events API v2 endpoint (US service region).
pub const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// The endpoint for accounts in PagerDuty's EU service region.
pub const EU_EVENTS_URL: &str = "https://events.eu.pagerduty.com/v2/enqueue";

/// PagerDuty's documented limits (FORMATS.md §2.1).
pub mod limits {
    /// "Events API payloads are limited to 512 KB".
    pub const BODY_BYTES: usize = 512 * 1024;
    pub const SUMMARY_CHARS: usize = 1024;
    pub const DEDUP_KEY_CHARS: usize = 255;
    /// An integration (routing) key is 32 characters.
    pub const ROUTING_KEY_CHARS: usize = 32;
}

/// Per-field budgets inside `custom_details`, so the body is small long before the hard limit.
const EXPLANATION_BYTES: usize = 8 * 1024;
const TEXT_CHARS: usize = 255;
const LONG_TEXT_CHARS: usize = 1024;
const URL_CHARS: usize = 2048;
const KEY_ASSETS_SENT: usize = 50;
const TAGS_SENT: usize = 50;

/// Delivers notifications to one PagerDuty Events API v2 integration.
pub struct PagerDutySink {
    name: String,
    routing_key: Secret,
    events_url: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl PagerDutySink {
    /// `routing_key` is the 32-character integration key; events go to [`DEFAULT_EVENTS_URL`].
    pub fn new(name: impl Into<String>, routing_key: Secret, client: reqwest::Client, timeout: Duration) -> Self {
        PagerDutySink { name: name.into(), routing_key, events_url: DEFAULT_EVENTS_URL.to_string(), client, timeout }
    }

    /// Sends to another endpoint: [`EU_EVENTS_URL`], or a mock server in tests.
    pub fn with_events_url(mut self, url: impl Into<String>) -> Self {
        self.events_url = url.into();
        self
    }
}

impl fmt::Debug for PagerDutySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutySink")
            .field("name", &self.name)
            .field("routing_key", &self.routing_key)
            .field("events_url", &endpoint_label(&self.events_url))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[async_trait]
impl AlertSink for PagerDutySink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    async fn send(&self, notification: &Notification) -> Result<Delivery, AlertError> {
        let payload = pagerduty_payload(notification, &self.routing_key);
        let body = serde_json::to_vec(&payload).expect("a JSON value serializes");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(super::USER_AGENT));
        let response = http::post(&self.client, &self.events_url, headers, body, self.timeout, &self.name).await?;
        http::classify(&self.name, &response, &[self.routing_key.expose()], error_message)?;
        let remote_id = serde_json::from_str::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("dedup_key")?.as_str().map(str::to_string))
            .or_else(|| payload["dedup_key"].as_str().map(str::to_string));
        tracing::debug!(channel = %self.name, notification = %notification.id, "delivered to pagerduty");
        Ok(Delivery { status: response.status, remote_id })
    }
}

/// `{"status":"invalid event","message":"Event object is invalid","errors":["…"]}` → one line.
fn error_message(body: &str) -> String {
    let Ok(parsed) = serde_json::from_str::<Value>(body) else { return body.trim().to_string() };
    let message = parsed.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
    let errors: Vec<String> = match parsed.get("errors") {
        Some(Value::Array(items)) => {
            items.iter().map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string)).collect()
        }
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    match (message.is_empty(), errors.is_empty()) {
        (false, false) => format!("{message}: {}", errors.join("; ")),
        (false, true) => message,
        (true, false) => errors.join("; "),
        (true, true) => body.trim().to_string(),
    }
}

/// The stable deduplication key of an incident: `telltale/<key>`, or `telltale/sha256:<hex>` of
/// the key when that would pass 255 characters.
pub fn dedup_key(incident_key: &str) -> String {
    let plain = format!("telltale/{incident_key}");
    if plain.len() <= limits::DEDUP_KEY_CHARS {
        return plain;
    }
    format!("telltale/sha256:{}", hex(&Sha256::digest(incident_key.as_bytes())))
}

/// SEV-1 → `critical`, SEV-2 → `error`, SEV-3 → `warning`, SEV-4 → `info`; anything else
/// `error`, so that an unexpected severity still reaches someone.
pub fn severity(sev: &str) -> &'static str {
    match sev.trim().to_ascii_uppercase().as_str() {
        "SEV-1" | "SEV1" => "critical",
        "SEV-2" | "SEV2" => "error",
        "SEV-3" | "SEV3" => "warning",
        "SEV-4" | "SEV4" | "INFO" => "info",
        _ => "error",
    }
}

/// The event for `notification`, under 512 KB with a summary of at most 1 024 characters.
pub fn pagerduty_payload(notification: &Notification, routing_key: &Secret) -> Value {
    let i = &notification.incident;
    let action = match notification.event {
        NotificationEvent::Triggered | NotificationEvent::Reminder => "trigger",
        NotificationEvent::Acknowledged => "acknowledge",
        NotificationEvent::Resolved => "resolve",
    };
    let mut body = json!({
        "routing_key": routing_key.expose(),
        "event_action": action,
        "dedup_key": dedup_key(&i.key),
    });
    if action != "trigger" {
        return body;
    }
    let what = subject(&i.asset, i.column.as_deref());
    let mut summary = format!("[{}][{}] {}", i.severity, i.monitor, headline(&what, &i.title));
    if i.downstream_count > 0 {
        summary.push_str(&format!("; {} downstream, {} key assets", i.downstream_count, i.key_assets.len()));
    }
    let group = i.asset.rsplit_once('.').map_or(i.source.as_str(), |(schema, _)| schema);
    let source = if i.source.trim().is_empty() { "telltale" } else { i.source.as_str() };
    body["payload"] = json!({
        "summary": truncate(&summary, limits::SUMMARY_CHARS),
        "source": truncate(source, TEXT_CHARS),
        "severity": severity(&i.severity),
        "timestamp": text::rfc3339(i.detected_at),
        "component": truncate(&what, TEXT_CHARS),
        "group": truncate(group, TEXT_CHARS),
        "class": truncate(&i.monitor, TEXT_CHARS),
        "custom_details": custom_details(notification),
    });
    let links: Vec<Value> = [(&i.incident_url, "Incident in telltale"), (&i.grafana_url, "Grafana: asset health")]
        .into_iter()
        .filter_map(|(url, label)| {
            let url = url.as_deref()?.trim();
            (!url.is_empty() && url.chars().count() <= URL_CHARS).then(|| json!({"href": url, "text": label}))
        })
        .collect();
    if !links.is_empty() {
        body["links"] = Value::Array(links);
    }
    body["client"] = json!("telltale");
    if let Some(url) = i.incident_url.as_deref().filter(|u| u.chars().count() <= URL_CHARS) {
        body["client_url"] = json!(url);
    }
    fit(&mut body, limits::BODY_BYTES);
    body
}

fn custom_details(n: &Notification) -> Value {
    let i = &n.incident;
    let unit = Unit::of_monitor(&i.monitor);
    let mut d = Map::new();
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            d.insert(key.to_string(), value);
        }
    };
    put("incident_id", json!(truncate(&i.id, TEXT_CHARS)));
    put("incident_key", json!(truncate(&i.key, LONG_TEXT_CHARS)));
    put("notification", json!(n.event.as_str()));
    put("monitor", json!(truncate(&i.monitor, TEXT_CHARS)));
    put("column", json!(i.column.as_deref().map(|c| truncate(c, TEXT_CHARS))));
    put("observed", json!(i.observed.map(|v| unit.observed(v))));
    put("observed_value", json!(i.observed.filter(|v| v.is_finite())));
    put("expected", json!(unit.expected(i.expected_low, i.expected_high)));
    put("expected_low", json!(i.expected_low.filter(|v| v.is_finite())));
    put("expected_high", json!(i.expected_high.filter(|v| v.is_finite())));
    put("score", json!(i.score.filter(|v| v.is_finite())));
    put("owner", json!(i.owner.as_deref().map(|o| truncate(o, TEXT_CHARS))));
    put("tier", json!(i.tier));
    if !i.tags.is_empty() {
        put("tags", json!(i.tags.iter().take(TAGS_SENT).map(|t| truncate(t, 100)).collect::<Vec<_>>()));
    }
    put("first_bad_at", json!(text::rfc3339(i.first_bad_at)));
    put("detected_at", json!(text::rfc3339(i.detected_at)));
    put("downstream_count", json!(i.downstream_count));
    if !i.key_assets.is_empty() {
        let assets: Vec<String> = i
            .key_assets
            .iter()
            .take(KEY_ASSETS_SENT)
            .map(|a| {
                let mut about = vec![truncate(&a.kind, 40)];
                about.extend(a.owner.as_deref().map(|o| truncate(o, 100)));
                about.retain(|s| !s.is_empty());
                let name = truncate(&a.name, TEXT_CHARS);
                if about.is_empty() { name } else { format!("{name} ({})", about.join(", ")) }
            })
            .collect();
        put("key_assets", json!(assets));
    }
    put("explanation", json!(text::truncate_bytes(i.explanation.trim(), EXPLANATION_BYTES)));
    put("next_step", json!(i.next_step.as_deref().map(|s| truncate(s, LONG_TEXT_CHARS))));
    put("incident_url", json!(i.incident_url.as_deref().filter(|u| u.chars().count() <= URL_CHARS)));
    put("grafana_url", json!(i.grafana_url.as_deref().filter(|u| u.chars().count() <= URL_CHARS)));
    Value::Object(d)
}

/// Trims `custom_details` until the serialized body is under `limit` bytes: first the lists and
/// the explanation, then everything but the incident id. The field budgets make this a safety net.
fn fit(body: &mut Value, limit: usize) {
    let size = |b: &Value| serde_json::to_vec(b).map_or(usize::MAX, |v| v.len());
    if size(body) < limit {
        return;
    }
    let Some(details) = body.pointer_mut("/payload/custom_details").and_then(Value::as_object_mut) else { return };
    details.remove("key_assets");
    details.remove("tags");
    if let Some(Value::String(explanation)) = details.get_mut("explanation") {
        *explanation = text::truncate_bytes(explanation, 1024);
    }
    details.insert("trimmed".into(), json!(true));
    if size(body) < limit {
        return;
    }
    let id = body.pointer("/payload/custom_details/incident_id").cloned().unwrap_or(Value::Null);
    body["payload"]["custom_details"] = json!({"incident_id": id, "trimmed": true});
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::example::notification;

    fn key() -> Secret {
        Secret::new("0123456789abcdef0123456789abcdef")
    }

    fn pretty(v: &Value) -> String {
        serde_json::to_string_pretty(v).unwrap().replace('\u{202f}', "\\u202f")
    }

    #[test]
    fn trigger_event_snapshot() {
        let event = pagerduty_payload(&notification(NotificationEvent::Triggered), &key());
        insta::assert_snapshot!(pretty(&event), @r#"
            {
              "client": "telltale",
              "client_url": "https://telltale.example.com/incidents/inc_0191c9a2",
              "dedup_key": "telltale/shop.main.orders/freshness",
              "event_action": "trigger",
              "links": [
                {
                  "href": "https://telltale.example.com/incidents/inc_0191c9a2",
                  "text": "Incident in telltale"
                },
                {
                  "href": "https://grafana.example.com/d/telltale-table?var-asset=shop.main.orders",
                  "text": "Grafana: asset health"
                }
              ],
              "payload": {
                "class": "freshness",
                "component": "shop.main.orders",
                "custom_details": {
                  "detected_at": "2026-08-20T04:05:00Z",
                  "downstream_count": 14,
                  "expected": "≤ 2 h 00 min",
                  "expected_high": 7200.0,
                  "explanation": "No new rows since 2026-08-20 02:03 UTC. The table usually changes every 40 min (learned from 28 days of history); more than 2 h without a change is unusual on a Thursday morning.",
                  "first_bad_at": "2026-08-20T02:03:00Z",
                  "grafana_url": "https://grafana.example.com/d/telltale-table?var-asset=shop.main.orders",
                  "incident_id": "inc_0191c9a2",
                  "incident_key": "shop.main.orders/freshness",
                  "incident_url": "https://telltale.example.com/incidents/inc_0191c9a2",
                  "key_assets": [
                    "exposure.shop.exec_revenue (dashboard, @finance-analytics)",
                    "model.shop.fct_revenue_daily (table)"
                  ],
                  "monitor": "freshness",
                  "next_step": "Check the `load_orders` job, then acknowledge the incident.",
                  "notification": "triggered",
                  "observed": "7 h 12 min",
                  "observed_value": 25920.0,
                  "owner": "@data-platform",
                  "score": 6.2,
                  "tags": [
                    "orders",
                    "finance"
                  ],
                  "tier": 1
                },
                "group": "shop.main",
                "severity": "error",
                "source": "shop",
                "summary": "[SEV-2][freshness] shop.main.orders has not been updated for 7 h 12 min; 14 downstream, 2 key assets",
                "timestamp": "2026-08-20T04:05:00Z"
              },
              "routing_key": "0123456789abcdef0123456789abcdef"
            }
        "#);
    }

    #[test]
    fn follow_ups_carry_only_the_dedup_key() {
        let ack = pagerduty_payload(&notification(NotificationEvent::Acknowledged), &key());
        insta::assert_snapshot!(pretty(&ack), @r#"
            {
              "dedup_key": "telltale/shop.main.orders/freshness",
              "event_action": "acknowledge",
              "routing_key": "0123456789abcdef0123456789abcdef"
            }
        "#);
        let resolve = pagerduty_payload(&notification(NotificationEvent::Resolved), &key());
        assert_eq!(resolve["event_action"], "resolve");
        assert_eq!(resolve["dedup_key"], ack["dedup_key"]);
        let reminder = pagerduty_payload(&notification(NotificationEvent::Reminder), &key());
        assert_eq!(reminder["event_action"], "trigger");
        assert_eq!(reminder["dedup_key"], ack["dedup_key"]);
    }

    #[test]
    fn severities_map_to_pagerduty_levels() {
        let levels: Vec<&str> = ["SEV-1", "SEV-2", "SEV-3", "SEV-4", "info", "sev-9"].map(severity).to_vec();
        assert_eq!(levels, ["critical", "error", "warning", "info", "info", "error"]);
    }

    #[test]
    fn long_incident_keys_hash_into_a_short_stable_dedup_key() {
        assert_eq!(dedup_key("shop.main.orders/freshness"), "telltale/shop.main.orders/freshness");
        let long = "k".repeat(300);
        let hashed = dedup_key(&long);
        assert!(hashed.len() <= limits::DEDUP_KEY_CHARS);
        assert_eq!(hashed, dedup_key(&long));
        assert_ne!(hashed, dedup_key(&"k".repeat(301)));
        assert_eq!(hashed.len(), "telltale/sha256:".len() + 64);
        // Exactly at the limit the key stays readable.
        let edge = "e".repeat(limits::DEDUP_KEY_CHARS - "telltale/".len());
        assert_eq!(dedup_key(&edge), format!("telltale/{edge}"));
    }

    #[test]
    fn huge_incidents_stay_within_pagerduty_limits() {
        let mut n = notification(NotificationEvent::Triggered);
        n.incident.explanation = "x".repeat(100 * 1024);
        n.incident.title = "t".repeat(5_000);
        n.incident.key = "k/".repeat(2_000);
        n.incident.key_assets = (0..100_000)
            .map(|k| crate::alert::ImpactedAsset { name: format!("a{k}"), kind: "table".into(), owner: None })
            .collect();
        n.incident.tags = vec!["t".repeat(10_000); 10_000];
        let event = pagerduty_payload(&n, &key());
        assert!(event["payload"]["summary"].as_str().unwrap().chars().count() <= limits::SUMMARY_CHARS);
        assert!(event["dedup_key"].as_str().unwrap().chars().count() <= limits::DEDUP_KEY_CHARS);
        assert!(serde_json::to_vec(&event).unwrap().len() < limits::BODY_BYTES);
        assert_eq!(event["payload"]["custom_details"]["key_assets"].as_array().unwrap().len(), KEY_ASSETS_SENT);
    }

    #[test]
    fn oversized_bodies_lose_details_first() {
        let mut event = pagerduty_payload(&notification(NotificationEvent::Triggered), &key());
        let size = serde_json::to_vec(&event).unwrap().len();
        fit(&mut event, size);
        let details = &event["payload"]["custom_details"];
        assert_eq!(details["trimmed"], true);
        assert!(details.get("key_assets").is_none());
        assert_eq!(details["incident_id"], "inc_0191c9a2");
        fit(&mut event, 100);
        assert_eq!(event["payload"]["custom_details"], json!({"incident_id": "inc_0191c9a2", "trimmed": true}));
        assert_eq!(event["payload"]["summary"].as_str().unwrap().chars().next(), Some('['));
    }

    #[test]
    fn error_bodies_become_one_line() {
        let body =
            r#"{"status":"invalid event","message":"Event object is invalid","errors":["'routing_key' is invalid"]}"#;
        assert_eq!(error_message(body), "Event object is invalid: 'routing_key' is invalid");
        assert_eq!(error_message("<html>nope</html>"), "<html>nope</html>");
    }

    #[test]
    fn debug_output_hides_the_routing_key() {
        let sink = PagerDutySink::new("pd", key(), reqwest::Client::new(), Duration::from_secs(5));
        let debug = format!("{sink:?}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
    }
}
