//! Alert channels against a real HTTP server (wiremock on a loopback port): the exact requests
//! telltale sends to PagerDuty, Slack and generic webhooks, and how each answer is classified for
//! the retry policy. No database needed: these always run.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use telltale::alert::config::{ChannelConfig, build, decode_channel, rate_limit};
use telltale::alert::example::notification;
use telltale::alert::pagerduty::{PagerDutySink, pagerduty_payload};
use telltale::alert::rate::RateLimit;
use telltale::alert::retry::{Jitter, RetryPolicy};
use telltale::alert::slack::{SlackSink, slack_payload};
use telltale::alert::webhook::{WebhookSink, verify_signature};
use telltale::alert::{AlertError, AlertSink, Notification, NotificationEvent, USER_AGENT};
use telltale::clock::ManualClock;
use telltale::secret::Secret;
use telltale::yaml::{self, Decoder};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ROUTING_KEY: &str = "R0UT1NGKEY0123456789abcdefABCDEF";
const SLACK_TOKEN: &str = "sLaCkToKeN0123456789";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn pagerduty(server: &MockServer) -> PagerDutySink {
    PagerDutySink::new("oncall", Secret::new(ROUTING_KEY), client(), Duration::from_secs(5))
        .with_events_url(format!("{}/v2/enqueue", server.uri()))
}

fn slack(server: &MockServer) -> SlackSink {
    let url = format!("{}/services/T000/B000/{SLACK_TOKEN}", server.uri());
    SlackSink::new("team-slack", Secret::new(url), client(), Duration::from_secs(5))
}

fn slack_path() -> String {
    format!("/services/T000/B000/{SLACK_TOKEN}")
}

fn accepted(dedup_key: &str) -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({
        "status": "success", "message": "Event processed", "dedup_key": dedup_key
    }))
}

fn policy() -> RetryPolicy {
    RetryPolicy { jitter: Jitter::seeded(42), ..RetryPolicy::default() }
}

fn at(n: &Notification) -> DateTime<Utc> {
    n.created_at
}

#[tokio::test]
async fn pagerduty_trigger_acknowledge_resolve_share_one_dedup_key() {
    let server = MockServer::start().await;
    let dedup = "telltale/shop.main.orders/freshness";
    let trigger = json!({
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": dedup,
        "payload": {
            "summary": "[SEV-2][freshness] shop.main.orders has not been updated for 7 h 12 min; 14 downstream, 2 key assets",
            "source": "shop",
            "severity": "error",
            "timestamp": "2026-08-20T04:05:00Z",
            "component": "shop.main.orders",
            "group": "shop.main",
            "class": "freshness",
            "custom_details": {
                "incident_id": "inc_0191c9a2",
                "incident_key": "shop.main.orders/freshness",
                "notification": "triggered",
                "monitor": "freshness",
                "observed": "7 h 12 min",
                "observed_value": 25920.0,
                "expected": "≤ 2 h 00 min",
                "expected_high": 7200.0,
                "score": 6.2,
                "owner": "@data-platform",
                "tier": 1,
                "tags": ["orders", "finance"],
                "first_bad_at": "2026-08-20T02:03:00Z",
                "detected_at": "2026-08-20T04:05:00Z",
                "downstream_count": 14,
                "key_assets": [
                    "exposure.shop.exec_revenue (dashboard, @finance-analytics)",
                    "model.shop.fct_revenue_daily (table)"
                ],
                "explanation": "No new rows since 2026-08-20 02:03 UTC. The table usually changes every 40 min (learned from 28 days of history); more than 2 h without a change is unusual on a Thursday morning.",
                "next_step": "Check the `load_orders` job, then acknowledge the incident.",
                "incident_url": "https://telltale.example.com/incidents/inc_0191c9a2",
                "grafana_url": "https://grafana.example.com/d/telltale-table?var-asset=shop.main.orders"
            }
        },
        "links": [
            {"href": "https://telltale.example.com/incidents/inc_0191c9a2", "text": "Incident in telltale"},
            {"href": "https://grafana.example.com/d/telltale-table?var-asset=shop.main.orders", "text": "Grafana: asset health"}
        ],
        "client": "telltale",
        "client_url": "https://telltale.example.com/incidents/inc_0191c9a2"
    });
    let acknowledge = json!({"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": dedup});
    let resolve = json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": dedup});
    for body in [&trigger, &acknowledge, &resolve] {
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .and(header("content-type", "application/json"))
            .and(header("user-agent", USER_AGENT))
            .and(body_json(body))
            .respond_with(accepted(dedup))
            .expect(1)
            .mount(&server)
            .await;
    }

    let sink = pagerduty(&server);
    for event in [NotificationEvent::Triggered, NotificationEvent::Acknowledged, NotificationEvent::Resolved] {
        let delivery = sink.send(&notification(event)).await.unwrap_or_else(|e| panic!("{event:?}: {e}"));
        assert_eq!(delivery.status, 202);
        assert_eq!(delivery.remote_id.as_deref(), Some(dedup));
    }
    let requests = server.received_requests().await.unwrap();
    let actions: Vec<String> = requests
        .iter()
        .map(|r| r.body_json::<Value>().unwrap()["event_action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["trigger", "acknowledge", "resolve"]);
    assert!(requests.iter().all(|r| r.body_json::<Value>().unwrap()["dedup_key"] == dedup));
    assert!(requests.iter().all(|r| r.headers.get("authorization").is_none()), "auth is the routing key in the body");
}

#[tokio::test]
async fn pagerduty_failures_are_classified_and_scrubbed() {
    let server = MockServer::start().await;
    let sink = pagerduty(&server);
    let n = notification(NotificationEvent::Triggered);

    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": [format!("'routing_key' {ROUTING_KEY} is invalid")]
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let err = sink.send(&n).await.unwrap_err();
    assert_eq!(
        err,
        AlertError::Rejected {
            channel: "oncall".into(),
            status: 400,
            message: "Event object is invalid: 'routing_key' **redacted** is invalid".into()
        }
    );
    assert_eq!(policy().next_delay(1, &err, at(&n), at(&n)), None, "400 is never retried");

    Mock::given(method("POST")).respond_with(ResponseTemplate::new(429)).up_to_n_times(1).mount(&server).await;
    let err = sink.send(&n).await.unwrap_err();
    assert_eq!(err, AlertError::RateLimited { channel: "oncall".into(), retry_after: None });
    let wait = policy().next_delay(1, &err, at(&n), at(&n)).unwrap();
    assert!(wait >= Duration::from_secs(60), "PagerDuty asks for minutes without Retry-After: {wait:?}");

    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).up_to_n_times(1).mount(&server).await;
    let err = sink.send(&n).await.unwrap_err();
    assert!(matches!(&err, AlertError::Transient { message, .. } if message.starts_with("HTTP 503")), "{err}");

    // The payload sent is the pure builder's, byte for byte.
    let body: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
    assert_eq!(body, pagerduty_payload(&n, &Secret::new(ROUTING_KEY)));
}

#[tokio::test]
async fn slack_posts_the_block_kit_message() {
    let server = MockServer::start().await;
    let n = notification(NotificationEvent::Triggered);
    Mock::given(method("POST"))
        .and(path(slack_path()))
        .and(header("content-type", "application/json"))
        .and(header("user-agent", USER_AGENT))
        .and(body_json(slack_payload(&n)))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let delivery = slack(&server).send(&n).await.unwrap();
    assert_eq!(delivery.status, 200);
    let body: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
    assert_eq!(body["blocks"][0]["text"]["text"], "SEV-2 · Freshness · shop.main.orders");
    assert_eq!(
        body["metadata"],
        json!({
            "event_type": "telltale_notification",
            "event_payload": {"notification_id": "ntf_0191c9a2_triggered", "incident_id": "inc_0191c9a2", "event": "triggered"}
        })
    );
}

#[tokio::test]
async fn slack_429_is_rate_limited_for_retry_after_seconds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(slack_path()))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1").set_body_string("rate_limited"))
        .expect(1)
        .mount(&server)
        .await;
    let n = notification(NotificationEvent::Triggered);
    let err = slack(&server).send(&n).await.unwrap_err();
    assert_eq!(
        err,
        AlertError::RateLimited { channel: "team-slack".into(), retry_after: Some(Duration::from_secs(1)) }
    );
    assert_eq!(policy().next_delay(1, &err, at(&n), at(&n)), Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn slack_500_is_transient_and_a_retry_delivers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("rollup_error"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let sink = slack(&server);
    let n = notification(NotificationEvent::Triggered);
    let policy = policy();
    let mut waited = Vec::new();
    let mut attempt = 1;
    let delivery = loop {
        match sink.send(&n).await {
            Ok(d) => break d,
            Err(e) => {
                assert_eq!(
                    e,
                    AlertError::Transient { channel: "team-slack".into(), message: "HTTP 500: rollup_error".into() }
                );
                let wait = policy.next_delay(attempt, &e, at(&n), at(&n)).expect("5xx is retried");
                assert!(wait <= policy.backoff_cap(attempt));
                waited.push(wait);
                attempt += 1;
            }
        }
    };
    assert_eq!(delivery.status, 200);
    assert_eq!(waited.len(), 2);
}

#[tokio::test]
async fn slack_client_errors_are_rejected_with_slacks_reason() {
    let server = MockServer::start().await;
    let n = notification(NotificationEvent::Resolved);
    for (status, reason) in
        [(400, "invalid_payload"), (403, "action_prohibited"), (404, "channel_not_found"), (410, "channel_is_archived")]
    {
        server.reset().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_string(reason))
            .mount(&server)
            .await;
        let err = slack(&server).send(&n).await.unwrap_err();
        assert_eq!(err, AlertError::Rejected { channel: "team-slack".into(), status, message: reason.into() });
        assert!(!err.is_retryable());
        assert_eq!(policy().next_delay(1, &err, at(&n), at(&n)), None);
    }
}

#[tokio::test]
async fn network_failures_are_transient_and_never_name_the_url() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/services/T000/B000/{SLACK_TOKEN}");
    let sink = SlackSink::new("team-slack", Secret::new(url), client(), Duration::from_secs(5));
    let err = sink.send(&notification(NotificationEvent::Triggered)).await.unwrap_err();
    assert!(matches!(err, AlertError::Transient { .. }), "{err}");
    assert!(!err.to_string().contains(SLACK_TOKEN), "{err}");
    assert!(err.to_string().starts_with("team-slack is unavailable: cannot connect: tcp connect error"), "{err}");

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let url = format!("{}/services/T000/B000/{SLACK_TOKEN}", server.uri());
    let sink = SlackSink::new("team-slack", Secret::new(url), client(), Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = sink.send(&notification(NotificationEvent::Triggered)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "the timeout bounds a hung receiver");
    assert_eq!(err, AlertError::Transient { channel: "team-slack".into(), message: "no response within 0.2s".into() });
}

#[tokio::test]
async fn webhook_requests_are_signed_and_verifiable() {
    let server = MockServer::start().await;
    let secret = "whsec-0123456789abcdef";
    let sent_at = Utc.with_ymd_and_hms(2026, 8, 20, 9, 15, 5).unwrap();
    let n = notification(NotificationEvent::Triggered);
    let mut expected = serde_json::to_value(&n).unwrap();
    expected["schema"] = json!("telltale.notification.v1");
    Mock::given(method("POST"))
        .and(path("/hooks/telltale"))
        .and(header("content-type", "application/json"))
        .and(header("user-agent", USER_AGENT))
        .and(header("x-telltale-event", "triggered"))
        .and(header("x-telltale-delivery", "ntf_0191c9a2_triggered"))
        .and(header("x-telltale-timestamp", sent_at.timestamp().to_string().as_str()))
        .and(header("authorization", "Bearer hook-token"))
        .and(body_json(&expected))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let mut sink = WebhookSink::new(
        "hook",
        Secret::new(format!("{}/hooks/telltale", server.uri())),
        client(),
        Duration::from_secs(5),
    )
    .with_secret(Secret::new(secret))
    .with_clock(Arc::new(ManualClock::new(sent_at)));
    sink.add_header("Authorization", &Secret::new("Bearer hook-token")).unwrap();
    assert_eq!(sink.send(&n).await.unwrap().status, 204);

    let request: Request = server.received_requests().await.unwrap().remove(0);
    let signature = request.headers.get("x-telltale-signature").unwrap().to_str().unwrap();
    let timestamp = request.headers.get("x-telltale-timestamp").unwrap().to_str().unwrap();
    assert!(verify_signature(secret, timestamp, &request.body, signature));
    assert!(!verify_signature("another-secret-0123", timestamp, &request.body, signature));
    assert!(!verify_signature(secret, "1787217306", &request.body, signature), "the timestamp is signed");
    let mut tampered = request.body.clone();
    tampered[10] ^= 1;
    assert!(!verify_signature(secret, timestamp, &tampered, signature));
    // The documented JSON document round-trips into the shared type.
    let document: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(document["schema"], "telltale.notification.v1");
}

#[tokio::test]
async fn webhook_without_secret_is_unsigned_and_any_2xx_is_delivered() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(202)).expect(1).mount(&server).await;
    let sink = WebhookSink::new("hook", Secret::new(server.uri()), client(), Duration::from_secs(5));
    sink.send(&notification(NotificationEvent::Acknowledged)).await.unwrap();
    let request = server.received_requests().await.unwrap().remove(0);
    assert!(request.headers.get("x-telltale-signature").is_none());
    assert_eq!(request.headers.get("x-telltale-event").unwrap(), "acknowledged");
}

#[tokio::test]
async fn channels_from_yaml_deliver_to_their_endpoints() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(slack_path()))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(accepted("telltale/shop.main.orders/freshness"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("x-api-key", "k-123"))
        .and(header_exists_signature())
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let uri = server.uri();
    let text = format!(
        "slack:\n  kind: slack\n  webhook_url: ${{SLACK_URL}}\n  timeout: 2s\n\
         pd:\n  kind: pagerduty\n  routing_key: ${{PD_KEY}}\n  url: {uri}/v2/enqueue\n\
         hook:\n  kind: webhook\n  url: {uri}/hook\n  secret: ${{HOOK_SECRET}}\n  headers:\n    X-Api-Key: k-123\n  rate: 5\n"
    );
    let slack_url = format!("{uri}{}", slack_path());
    let env = move |name: &str| match name {
        "SLACK_URL" => Some(slack_url.clone()),
        "PD_KEY" => Some(ROUTING_KEY.to_string()),
        "HOOK_SECRET" => Some("hook-secret-0123456789".to_string()),
        _ => None,
    };
    let root = yaml::parse(Path::new("telltale.yaml"), &text).unwrap();
    let mut d = Decoder::new(Path::new("telltale.yaml"));
    let mut channels = Vec::new();
    let mut map = d.map(&root, "channels").unwrap();
    for (key, value) in map.entries() {
        let name = key.as_scalar().unwrap();
        channels.extend(decode_channel(&mut d, name, value, &format!("channels.{name}"), &env));
    }
    assert!(d.finish().is_empty());
    let limits: Vec<RateLimit> = channels.iter().map(rate_limit).collect();
    assert_eq!(limits, [RateLimit::SLACK, RateLimit::PAGERDUTY, RateLimit::Limited { per_second: 5.0, burst: 1 }]);
    assert!(matches!(channels[0], ChannelConfig::Slack(_)));
    let n = notification(NotificationEvent::Triggered);
    for channel in &channels {
        let sink = build(channel, client());
        sink.send(&n).await.unwrap_or_else(|e| panic!("{}: {e}", channel.name()));
    }
}

fn header_exists_signature() -> wiremock::matchers::HeaderExistsMatcher {
    wiremock::matchers::header_exists("x-telltale-signature")
}
