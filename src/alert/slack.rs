//! Slack incoming webhooks: the Block Kit message of a notification and its delivery.
//!
//! [`slack_payload`] is pure and keeps every Block Kit limit (FORMATS.md §2.2) whatever the
//! incident holds: each piece of text has its own budget, so a whole message stays under ~9 000
//! characters even for a 100 KB explanation, far from the ≈13 200-character aggregate cap Slack
//! enforces without documenting it. [`SlackSink`] posts it and classifies Slack's answer; it never
//! sleeps, retries or rate-limits (the outbox does, with [`super::retry`] and [`super::rate`]).
//!
//! Message shapes:
//! - `triggered` / `reminder`: header `SEV-2 · Freshness · shop.main.orders`, the title and the
//!   explanation, up to ten fields (observed, expected, score, owner, status, bad since, detected,
//!   tier, source), the next step, the blast radius when lineage found downstream assets, and a
//!   context line with the monitor, incident id, tags and links to the incident and Grafana.
//! - `acknowledged` / `resolved`: one compact follow-up section (`✅ Resolved after 7 h 37 min · …`)
//!   with a context line.
//!
//! Every message carries `metadata` (`event_type: telltale_notification`, `event_payload:
//! {notification_id, incident_id, event}`) so a receiver can recognise a redelivered message.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use serde_json::{Value, json};

use super::http::{self, endpoint_label};
use super::text::{self, ELLIPSIS, Unit, headline, monitor_label, one_line, status_label, subject, truncate};
use super::{AlertError, AlertSink, Delivery, Notification, NotificationEvent};
use crate::secret::Secret;

/// Slack's documented limits (FORMATS.md §2.2), checked by the tests.
pub mod limits {
    pub const BLOCKS: usize = 50;
    pub const HEADER_CHARS: usize = 150;
    pub const SECTION_TEXT_CHARS: usize = 3000;
    pub const FIELDS: usize = 10;
    pub const FIELD_CHARS: usize = 2000;
    pub const CONTEXT_ELEMENTS: usize = 10;
    pub const TEXT_CHARS: usize = 40_000;
    /// Not a Slack limit: what telltale keeps the whole serialized message under.
    pub const MESSAGE_CHARS: usize = 12_000;
}

/// telltale's own budgets, well inside Slack's limits, so that the sum stays compact.
const EXPLANATION_CHARS: usize = 1800;
const FIELD_CHARS: usize = 200;
const BLAST_RADIUS_CHARS: usize = 1200;
const NEXT_STEP_CHARS: usize = 400;
const CONTEXT_CHARS: usize = 400;
const FALLBACK_TEXT_CHARS: usize = 300;
const NAME_CHARS: usize = 120;
const KEY_ASSETS_SHOWN: usize = 8;
const TAGS_SHOWN: usize = 10;
/// Longer links are left out rather than cut (a cut URL leads nowhere).
const URL_CHARS: usize = 700;
const ID_CHARS: usize = 255;

/// The event type of the idempotency marker in every message's `metadata`.
pub const METADATA_EVENT_TYPE: &str = "telltale_notification";

/// Delivers notifications to one Slack incoming webhook.
pub struct SlackSink {
    name: String,
    webhook_url: Secret,
    client: reqwest::Client,
    timeout: Duration,
}

impl SlackSink {
    /// `webhook_url` is the `https://hooks.slack.com/services/T…/B…/…` URL Slack generated; it
    /// is a credential and never printed. `timeout` bounds each request.
    pub fn new(name: impl Into<String>, webhook_url: Secret, client: reqwest::Client, timeout: Duration) -> Self {
        SlackSink { name: name.into(), webhook_url, client, timeout }
    }
}

impl fmt::Debug for SlackSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackSink")
            .field("name", &self.name)
            .field("webhook_url", &endpoint_label(self.webhook_url.expose()))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[async_trait]
impl AlertSink for SlackSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "slack"
    }

    async fn send(&self, notification: &Notification) -> Result<Delivery, AlertError> {
        let body = serde_json::to_vec(&slack_payload(notification)).expect("a JSON value serializes");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(super::USER_AGENT));
        let url = self.webhook_url.expose();
        let response = http::post(&self.client, url, headers, body, self.timeout, &self.name).await?;
        let token = url.rsplit('/').next().unwrap_or_default();
        // Slack answers errors with a bare code such as `invalid_payload` or `channel_not_found`.
        http::classify(&self.name, &response, &[url, token], |body| body.trim().to_string())?;
        tracing::debug!(channel = %self.name, notification = %notification.id, "delivered to slack");
        Ok(Delivery { status: response.status, remote_id: None })
    }
}

/// The Block Kit message for `notification`, within every Slack limit.
pub fn slack_payload(notification: &Notification) -> Value {
    let (text, blocks) = match notification.event {
        NotificationEvent::Triggered | NotificationEvent::Reminder => alert_message(notification),
        NotificationEvent::Acknowledged | NotificationEvent::Resolved => follow_up_message(notification),
    };
    json!({
        "text": text,
        "blocks": blocks,
        "metadata": {
            "event_type": METADATA_EVENT_TYPE,
            "event_payload": {
                "notification_id": truncate(&notification.id, ID_CHARS),
                "incident_id": truncate(&notification.incident.id, ID_CHARS),
                "event": notification.event.as_str(),
            }
        }
    })
}

fn alert_message(n: &Notification) -> (String, Vec<Value>) {
    let i = &n.incident;
    let what = subject(&i.asset, i.column.as_deref());
    let reminder = n.event == NotificationEvent::Reminder;
    let mut blocks = Vec::new();

    let prefix = if reminder { "Reminder · " } else { "" };
    let header = format!("{prefix}{} · {} · {}", i.severity, monitor_label(&i.monitor), one_line(&what));
    blocks.push(json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&header, limits::HEADER_CHARS), "emoji": true}
    }));

    let mut summary = String::new();
    if reminder {
        let open_for = text::elapsed(i.detected_at, n.created_at);
        summary.push_str(&format!("*Still open and not acknowledged after {open_for}.*\n"));
    }
    summary.push_str(&format!("*{}*", mrkdwn(&one_line(&i.title), 300)));
    let explanation = i.explanation.trim();
    if !explanation.is_empty() {
        summary.push('\n');
        summary.push_str(&mrkdwn(explanation, EXPLANATION_CHARS));
    }
    blocks.push(section(summary));

    let unit = Unit::of_monitor(&i.monitor);
    let mut fields = Vec::new();
    if let Some(observed) = i.observed {
        fields.push(field("Observed", &unit.observed(observed)));
    }
    if let Some(expected) = unit.expected(i.expected_low, i.expected_high) {
        fields.push(field("Expected", &expected));
    }
    if let Some(score) = i.score.filter(|s| s.is_finite()) {
        fields.push(field("Score", &format!("{} (p ≈ {:.0e})", text::approx(score), 10f64.powf(-score))));
    }
    fields.push(field("Owner", i.owner.as_deref().filter(|o| !o.trim().is_empty()).unwrap_or("no owner set")));
    fields.push(field("Status", &status_label(&i.status)));
    fields.push(raw_field(
        "Bad since",
        &format!("{} ({} ago)", slack_date(i.first_bad_at), text::elapsed(i.first_bad_at, n.created_at)),
    ));
    fields.push(field("Detected", &format!("after {}", text::elapsed(i.first_bad_at, i.detected_at))));
    if let Some(tier) = i.tier {
        fields.push(field("Tier", &tier.to_string()));
    }
    if !i.source.is_empty() {
        fields.push(raw_field("Source", &code(&i.source)));
    }
    fields.truncate(limits::FIELDS);
    blocks.push(json!({"type": "section", "fields": fields}));

    if let Some(step) = i.next_step.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        blocks.push(section(format!("*Next step:* {}", mrkdwn(step, NEXT_STEP_CHARS))));
    }

    if i.downstream_count > 0 {
        blocks.push(section(blast_radius(n)));
    }

    blocks.push(context(n, true));

    let mut fallback = format!("{} {}: {}", i.severity, i.monitor, headline(&what, &i.title));
    if reminder {
        fallback = format!("Reminder: {fallback}");
    }
    if i.downstream_count > 0 {
        fallback.push_str(&format!(" ({} downstream, {} key assets)", i.downstream_count, i.key_assets.len()));
    }
    (truncate(&fallback, FALLBACK_TEXT_CHARS), blocks)
}

fn follow_up_message(n: &Notification) -> (String, Vec<Value>) {
    let i = &n.incident;
    let what = subject(&i.asset, i.column.as_deref());
    let (emoji, verb, after) = match n.event {
        NotificationEvent::Resolved => {
            let how = match i.status.as_str() {
                "expected" => " (marked expected)",
                "false_positive" => " (marked a false positive)",
                _ if i.explanation.lines().any(|l| l.starts_with("Grouped under the root-cause incident")) => {
                    " (grouped under its upstream root cause)"
                }
                _ => "",
            };
            ("✅", format!("Resolved{how}"), text::elapsed(i.first_bad_at, i.resolved_at.unwrap_or(n.created_at)))
        }
        _ => {
            ("👀", "Acknowledged".to_string(), text::elapsed(i.detected_at, i.acknowledged_at.unwrap_or(n.created_at)))
        }
    };
    let line = format!(
        "{emoji} *{verb}* after {after} · {} · {} · {}\n{}",
        mrkdwn(&i.severity, 20),
        mrkdwn(&monitor_label(&i.monitor), NAME_CHARS),
        code(&what),
        mrkdwn(&one_line(&i.title), 300)
    );
    let blocks = vec![section(line), context(n, false)];
    let fallback = format!("{emoji} {verb} after {after}: {} {} on {}", i.severity, i.monitor, what);
    (truncate(&fallback, FALLBACK_TEXT_CHARS), blocks)
}

fn blast_radius(n: &Notification) -> String {
    let i = &n.incident;
    let plural = |count: usize, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
    let mut out = format!(
        "*Blast radius:* {} · {}",
        plural(i.downstream_count, "downstream asset"),
        plural(i.key_assets.len(), "key asset")
    );
    let mut listed = 0;
    for asset in i.key_assets.iter().take(KEY_ASSETS_SHOWN) {
        let mut line = format!("\n• {}", code(&asset.name));
        if !asset.kind.is_empty() {
            line.push_str(&format!(" ({})", mrkdwn(&asset.kind, 40)));
        }
        if let Some(owner) = asset.owner.as_deref().filter(|o| !o.is_empty()) {
            line.push_str(&format!(" — {}", mrkdwn(owner, NAME_CHARS)));
        }
        // Stop listing before the budget, leaving room for the "… more" line.
        if out.chars().count() + line.chars().count() > BLAST_RADIUS_CHARS - 40 {
            break;
        }
        out.push_str(&line);
        listed += 1;
    }
    if listed < i.key_assets.len() {
        out.push_str(&format!("\n{ELLIPSIS} and {} more", i.key_assets.len() - listed));
    }
    out
}

fn context(n: &Notification, full: bool) -> Value {
    let i = &n.incident;
    let mut elements = Vec::new();
    let mut about = format!("monitor {} · incident {}", code(&i.monitor), code(&i.id));
    if full && !i.tags.is_empty() {
        let tags: Vec<String> = i.tags.iter().take(TAGS_SHOWN).map(|t| code(t)).collect();
        about.push_str(&format!(" · tags {}", tags.join(" ")));
    } else if !full {
        if let Some(owner) = i.owner.as_deref().filter(|o| !o.is_empty()) {
            about.push_str(&format!(" · owner {}", mrkdwn(owner, NAME_CHARS)));
        }
        about.push_str(&format!(" · bad since {}", slack_date(i.first_bad_at)));
    }
    elements.push(json!({"type": "mrkdwn", "text": truncate_mrkdwn(&about, CONTEXT_CHARS)}));
    let links: Vec<String> = [(i.incident_url.as_deref(), "Incident"), (i.grafana_url.as_deref(), "Grafana")]
        .into_iter()
        .filter_map(|(url, label)| link(url?, label))
        .collect();
    if !links.is_empty() {
        elements.push(json!({"type": "mrkdwn", "text": links.join(" · ")}));
    }
    elements.truncate(limits::CONTEXT_ELEMENTS);
    json!({"type": "context", "elements": elements})
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate_mrkdwn(&text, limits::SECTION_TEXT_CHARS)}})
}

fn field(label: &str, value: &str) -> Value {
    raw_field(label, &mrkdwn(value, FIELD_CHARS))
}

/// A field whose value is already mrkdwn.
fn raw_field(label: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": truncate_mrkdwn(&format!("*{label}*\n{value}"), FIELD_CHARS)})
}

/// `<url|label>`, or nothing for a URL not http(s) or too long to show (measured escaped).
fn link(url: &str, label: &str) -> Option<String> {
    let url = url.trim();
    let escaped = escape(url).replace('|', "%7C");
    let ok = (url.starts_with("https://") || url.starts_with("http://")) && escaped.chars().count() <= URL_CHARS;
    ok.then(|| format!("<{escaped}|{label}>"))
}

/// Slack's date token: shown in each reader's time zone, with a UTC fallback.
fn slack_date(at: DateTime<Utc>) -> String {
    format!("<!date^{}^{{date_short_pretty}} {{time}}|{}>", at.timestamp(), text::timestamp(at))
}

/// An inline code span of a name, cut to a readable length.
fn code(name: &str) -> String {
    format!("`{}`", mrkdwn(&one_line(name).replace('`', "'"), NAME_CHARS))
}

/// Slack's three control characters in text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `text` escaped for mrkdwn and cut to `max` chars (counted after escaping, never inside an entity).
fn mrkdwn(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    let total: usize = text.chars().map(escaped_len).sum();
    if total <= max {
        return escape(text);
    }
    for c in text.chars() {
        let len = escaped_len(c);
        if used + len > max.saturating_sub(1) {
            break;
        }
        used += len;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out.push(ELLIPSIS);
    out
}

fn escaped_len(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        _ => 1,
    }
}

/// Cuts already-built mrkdwn without breaking a `<…>` token or an `&…;` entity.
fn truncate_mrkdwn(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    if let Some(open) = cut.rfind('<')
        && !cut[open..].contains('>')
    {
        cut.truncate(open);
    }
    if let Some(amp) = cut.rfind('&')
        && !cut[amp..].contains(';')
    {
        cut.truncate(amp);
    }
    cut.push(ELLIPSIS);
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::ImpactedAsset;
    use crate::alert::example::notification;

    fn pretty(v: &Value) -> String {
        serde_json::to_string_pretty(v).unwrap().replace('\u{202f}', "\\u202f")
    }

    /// Every Block Kit limit, asserted on a built message.
    fn assert_within_limits(message: &Value) {
        let chars = |v: &Value| v.as_str().unwrap().chars().count();
        assert!(chars(&message["text"]) <= limits::TEXT_CHARS);
        let blocks = message["blocks"].as_array().unwrap();
        assert!(blocks.len() <= limits::BLOCKS);
        for block in blocks {
            match block["type"].as_str().unwrap() {
                "header" => {
                    assert_eq!(block["text"]["type"], "plain_text");
                    assert!(chars(&block["text"]["text"]) <= limits::HEADER_CHARS);
                }
                "section" => {
                    if let Some(text) = block.get("text") {
                        assert!(chars(&text["text"]) <= limits::SECTION_TEXT_CHARS);
                    }
                    if let Some(fields) = block.get("fields") {
                        let fields = fields.as_array().unwrap();
                        assert!(fields.len() <= limits::FIELDS);
                        assert!(fields.iter().all(|f| chars(&f["text"]) <= limits::FIELD_CHARS));
                    }
                }
                "context" => {
                    let elements = block["elements"].as_array().unwrap();
                    assert!(elements.len() <= limits::CONTEXT_ELEMENTS);
                    assert!(elements.iter().all(|e| chars(&e["text"]) <= limits::SECTION_TEXT_CHARS));
                }
                other => panic!("unexpected block type {other}"),
            }
        }
        let total = serde_json::to_string(message).unwrap().chars().count();
        assert!(total <= limits::MESSAGE_CHARS, "message is {total} chars");
    }

    #[test]
    fn trigger_message_snapshot() {
        let message = slack_payload(&notification(NotificationEvent::Triggered));
        assert_within_limits(&message);
        insta::assert_snapshot!(pretty(&message), @r#"
            {
              "blocks": [
                {
                  "text": {
                    "emoji": true,
                    "text": "SEV-2 · Freshness · shop.main.orders",
                    "type": "plain_text"
                  },
                  "type": "header"
                },
                {
                  "text": {
                    "text": "*shop.main.orders has not been updated for 7 h 12 min*\nNo new rows since 2026-08-20 02:03 UTC. The table usually changes every 40 min (learned from 28 days of history); more than 2 h without a change is unusual on a Thursday morning.",
                    "type": "mrkdwn"
                  },
                  "type": "section"
                },
                {
                  "fields": [
                    {
                      "text": "*Observed*\n7 h 12 min",
                      "type": "mrkdwn"
                    },
                    {
                      "text": "*Expected*\n≤ 2 h 00 min",
                      "type": "mrkdwn"
                    },
                    {
                      "text": "*Score*\n6.2 (p ≈ 6e-7)",
                      "type": "mrkdwn"
                    },
                    {
                      "text": "*Owner*\n@data-platform",
                      "type": "mrkdwn"
                    },
                    {
                      "text": "*Status*\nOpen",
                      "type": "mrkdwn"
                    },
                    {
                      "text": "*Bad since*\n<!date^1787191380^{date_short_pretty} {time}|2026-08-20 02:03 UTC> (7 h 12 min ago)",
                      "type": "mrkdwn"
                    },
                    {
                      "text": "*Detected*\nafter 2 h 02 min",
                      "type": "mrkdwn"
                    },
                    {
                      "text": "*Tier*\n1",
                      "type": "mrkdwn"
                    },
                    {
                      "text": "*Source*\n`shop`",
                      "type": "mrkdwn"
                    }
                  ],
                  "type": "section"
                },
                {
                  "text": {
                    "text": "*Next step:* Check the `load_orders` job, then acknowledge the incident.",
                    "type": "mrkdwn"
                  },
                  "type": "section"
                },
                {
                  "text": {
                    "text": "*Blast radius:* 14 downstream assets · 2 key assets\n• `exposure.shop.exec_revenue` (dashboard) — @finance-analytics\n• `model.shop.fct_revenue_daily` (table)",
                    "type": "mrkdwn"
                  },
                  "type": "section"
                },
                {
                  "elements": [
                    {
                      "text": "monitor `freshness` · incident `inc_0191c9a2` · tags `orders` `finance`",
                      "type": "mrkdwn"
                    },
                    {
                      "text": "<https://telltale.example.com/incidents/inc_0191c9a2|Incident> · <https://grafana.example.com/d/telltale-table?var-asset=shop.main.orders|Grafana>",
                      "type": "mrkdwn"
                    }
                  ],
                  "type": "context"
                }
              ],
              "metadata": {
                "event_payload": {
                  "event": "triggered",
                  "incident_id": "inc_0191c9a2",
                  "notification_id": "ntf_0191c9a2_triggered"
                },
                "event_type": "telltale_notification"
              },
              "text": "SEV-2 freshness: shop.main.orders has not been updated for 7 h 12 min (14 downstream, 2 key assets)"
            }
        "#);
    }

    #[test]
    fn resolved_follow_up_snapshot() {
        let message = slack_payload(&notification(NotificationEvent::Resolved));
        assert_within_limits(&message);
        insta::assert_snapshot!(pretty(&message), @r#"
            {
              "blocks": [
                {
                  "text": {
                    "text": "✅ *Resolved* after 7 h 37 min · SEV-2 · Freshness · `shop.main.orders`\nshop.main.orders has not been updated for 7 h 12 min",
                    "type": "mrkdwn"
                  },
                  "type": "section"
                },
                {
                  "elements": [
                    {
                      "text": "monitor `freshness` · incident `inc_0191c9a2` · owner @data-platform · bad since <!date^1787191380^{date_short_pretty} {time}|2026-08-20 02:03 UTC>",
                      "type": "mrkdwn"
                    },
                    {
                      "text": "<https://telltale.example.com/incidents/inc_0191c9a2|Incident> · <https://grafana.example.com/d/telltale-table?var-asset=shop.main.orders|Grafana>",
                      "type": "mrkdwn"
                    }
                  ],
                  "type": "context"
                }
              ],
              "metadata": {
                "event_payload": {
                  "event": "resolved",
                  "incident_id": "inc_0191c9a2",
                  "notification_id": "ntf_0191c9a2_resolved"
                },
                "event_type": "telltale_notification"
              },
              "text": "✅ Resolved after 7 h 37 min: SEV-2 freshness on shop.main.orders"
            }
        "#);
    }

    #[test]
    fn acknowledged_follow_up_snapshot() {
        let message = slack_payload(&notification(NotificationEvent::Acknowledged));
        assert_within_limits(&message);
        insta::assert_snapshot!(pretty(&message), @r#"
            {
              "blocks": [
                {
                  "text": {
                    "text": "👀 *Acknowledged* after 5 h 22 min · SEV-2 · Freshness · `shop.main.orders`\nshop.main.orders has not been updated for 7 h 12 min",
                    "type": "mrkdwn"
                  },
                  "type": "section"
                },
                {
                  "elements": [
                    {
                      "text": "monitor `freshness` · incident `inc_0191c9a2` · owner @data-platform · bad since <!date^1787191380^{date_short_pretty} {time}|2026-08-20 02:03 UTC>",
                      "type": "mrkdwn"
                    },
                    {
                      "text": "<https://telltale.example.com/incidents/inc_0191c9a2|Incident> · <https://grafana.example.com/d/telltale-table?var-asset=shop.main.orders|Grafana>",
                      "type": "mrkdwn"
                    }
                  ],
                  "type": "context"
                }
              ],
              "metadata": {
                "event_payload": {
                  "event": "acknowledged",
                  "incident_id": "inc_0191c9a2",
                  "notification_id": "ntf_0191c9a2_acknowledged"
                },
                "event_type": "telltale_notification"
              },
              "text": "👀 Acknowledged after 5 h 22 min: SEV-2 freshness on shop.main.orders"
            }
        "#);
    }

    #[test]
    fn reminder_says_how_long_it_has_been_open() {
        let message = slack_payload(&notification(NotificationEvent::Reminder));
        assert_within_limits(&message);
        assert_eq!(message["blocks"][0]["text"]["text"], "Reminder · SEV-2 · Freshness · shop.main.orders");
        let summary = message["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(summary.starts_with("*Still open and not acknowledged after 5 h 10 min.*"), "{summary}");
        assert_eq!(message["metadata"]["event_payload"]["event"], "reminder");
    }

    #[test]
    fn huge_incidents_still_fit_every_limit() {
        let mut n = notification(NotificationEvent::Triggered);
        let i = &mut n.incident;
        i.explanation = "rows <missing> & late. ".repeat(100 * 1024 / 23 + 1);
        assert!(i.explanation.len() >= 100 * 1024);
        i.title = "t".repeat(10_000);
        i.asset = format!("warehouse.{}", "a".repeat(5_000));
        i.column = Some("c".repeat(5_000));
        i.monitor = "m".repeat(5_000);
        i.owner = Some("o".repeat(5_000));
        i.next_step = Some("do <this> & that ".repeat(1_000));
        i.source = "s".repeat(5_000);
        i.tags = (0..1_000).map(|k| format!("tag{k}-{}", "x".repeat(100))).collect();
        i.downstream_count = 1_000_000;
        i.key_assets = (0..1_000)
            .map(|k| ImpactedAsset {
                name: format!("model.{k}.{}", "n".repeat(1_000)),
                kind: "k".repeat(1_000),
                owner: Some("w".repeat(1_000)),
            })
            .collect();
        i.incident_url = Some(format!("https://telltale.example.com/{}", "u".repeat(100_000)));
        i.grafana_url = Some(format!("https://grafana.example.com/d/x?a=1&b=<{}>", "g".repeat(300)));
        let ampersands = Some(format!("https://telltale.example.com/?{}", "&".repeat(600)));
        for event in [NotificationEvent::Triggered, NotificationEvent::Reminder, NotificationEvent::Resolved] {
            n.event = event;
            let message = slack_payload(&n);
            assert_within_limits(&message);
            let blocks = serde_json::to_string(&message["blocks"]).unwrap();
            // The over-long incident link is left out, the Grafana link kept and escaped.
            assert!(!blocks.contains("uuuuu"));
            assert!(blocks.contains("<https://grafana.example.com/d/x?a=1&amp;b=&lt;ggg"));
        }
        // A URL that escaping makes too long is left out as well.
        n.incident.incident_url = ampersands;
        assert_within_limits(&slack_payload(&n));
        assert!(!serde_json::to_string(&slack_payload(&n)).unwrap().contains("&amp;&amp;&amp;"));
        n.event = NotificationEvent::Triggered;
        let message = slack_payload(&n);
        let blast = message["blocks"][4]["text"]["text"].as_str().unwrap();
        assert!(blast.starts_with("*Blast radius:* 1000000 downstream assets · 1000 key assets"), "{blast}");
        assert!(blast.ends_with(" more"), "{blast}");
        let summary = message["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(summary.ends_with('…'));
        assert!(!summary.contains("<missing>") && summary.contains("&lt;missing&gt;"));
    }

    #[test]
    fn mrkdwn_cuts_never_split_an_entity() {
        assert_eq!(mrkdwn("a<b>&c", 100), "a&lt;b&gt;&amp;c");
        assert_eq!(mrkdwn("ab<<<<", 7), "ab&lt;…");
        assert_eq!(truncate_mrkdwn("see <https://x.y/abc|link> now", 12), "see …");
        assert_eq!(truncate_mrkdwn("a &amp; b", 5), "a …");
    }

    #[test]
    fn no_blast_radius_without_downstream_assets() {
        let mut n = notification(NotificationEvent::Triggered);
        n.incident.downstream_count = 0;
        n.incident.key_assets.clear();
        let message = slack_payload(&n);
        let text = serde_json::to_string(&message).unwrap();
        assert!(!text.contains("Blast radius"));
        assert!(!message["text"].as_str().unwrap().contains("downstream"));
    }

    #[test]
    fn debug_output_hides_the_webhook_url() {
        let sink = SlackSink::new(
            "oncall",
            Secret::new("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            reqwest::Client::new(),
            Duration::from_secs(10),
        );
        let debug = format!("{sink:?}");
        assert!(!debug.contains("XXXXSECRET") && !debug.contains("T000"), "{debug}");
        assert!(debug.contains("https://hooks.slack.com/**redacted**"), "{debug}");
    }
}
