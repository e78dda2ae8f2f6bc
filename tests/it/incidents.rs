//! Incidents end to end on a real PostgreSQL table with mocked Slack and PagerDuty: a stopped
//! loader opens one freshness incident, each channel gets one trigger, the loader resumes, the
//! incident resolves itself and PagerDuty gets the resolve. Plus people acting on incidents, and
//! downtime accounting, through the API.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use telltale::clock::{ManualClock, SharedClock};
use telltale::incident::IncidentStatus;
use telltale::store::IncidentFilter;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{Workspace, config_with_source, eventually, pg_exec, postgres_db};
use crate::require;

const CHECKS: &str = r#"version: 1
assets:
  - source: wh
    table: orders
    owner: "@commerce"
    tier: 1
    slo: 99%
    monitors:
      freshness: {timestamp_column: at, max_age: 1h}
"#;

fn alerting(server: &MockServer) -> String {
    format!(
        "channels:\n  pager:\n    kind: pagerduty\n    routing_key: 0123456789abcdef0123456789abcdef\n    url: {uri}/v2/enqueue\n  team:\n    kind: slack\n    webhook_url: {uri}/slack\nincidents:\n  auto_resolve_after: 2\n  base_url: https://telltale.example.com\n",
        uri = server.uri()
    )
}

async fn bodies(server: &MockServer, at: &str) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == at)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn a_stopped_loader_pages_once_and_resolves_itself_when_it_resumes() {
    let url = require!(postgres_db("incident").await);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(
            ResponseTemplate::new(202).set_body_json(
                serde_json::json!({"status": "success", "message": "Event processed", "dedup_key": "k"}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/slack"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;

    let t0: DateTime<Utc> = "2026-07-01T10:00:00Z".parse().unwrap();
    pg_exec(
        &url,
        &["CREATE TABLE orders (id serial, at timestamptz)", "INSERT INTO orders (at) VALUES ('2026-07-01T09:50:00Z')"],
    )
    .await;
    let ws = Workspace::new(&config_with_source("postgres", &url, &alerting(&server)), &[("o.yaml", CHECKS)]);
    let clock = ManualClock::new(t0);
    let agent = ws.agent(Arc::new(clock.clone()) as SharedClock).await;
    let stop = CancellationToken::new();
    let dispatcher = tokio::spawn(telltale::runtime::run_dispatcher(
        Arc::clone(&agent),
        telltale::runtime::build_channels(&agent.config.alerting),
        stop.clone(),
    ));
    let token = CancellationToken::new();
    let asset = "wh.public.orders".parse().unwrap();
    let run = |at: &str| {
        let agent = Arc::clone(&agent);
        let token = token.clone();
        clock.set(at.parse().unwrap());
        let asset = &asset;
        async move {
            let outcomes = agent.asset_job(asset, &token).await;
            agent.process_outcomes(&outcomes).await;
        }
    };

    run("2026-07-01T10:00:00Z").await;
    assert!(agent.store.incidents(&IncidentFilter { limit: 10, ..Default::default() }).await.unwrap().is_empty());

    // The loader stops: two hours without a row.
    run("2026-07-01T12:00:00Z").await;
    run("2026-07-01T12:10:00Z").await;
    let delivered = eventually(Duration::from_secs(10), || async {
        let pd = bodies(&server, "/v2/enqueue").await;
        let slack = bodies(&server, "/slack").await;
        (pd.len() == 1 && slack.len() == 1).then_some((pd, slack))
    })
    .await;
    let (pd, slack) = delivered.expect("one trigger on each channel");
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["payload"]["severity"], "critical", "tier 1 freshness is SEV-1");
    let dedup = pd[0]["dedup_key"].as_str().unwrap().to_string();
    assert!(slack[0]["text"].as_str().unwrap().contains("wh.public.orders"), "{}", slack[0]);

    let incidents = agent.store.incidents(&IncidentFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(incidents.len(), 1, "a still-stale table updates its incident, it does not open another");
    let incident = &incidents[0];
    assert_eq!(incident.status, IncidentStatus::Open);
    assert_eq!(incident.bad_count, 2);
    // Bad since 10:50 (09:50 + max_age), detected at 12:00.
    assert_eq!(incident.first_bad_at, "2026-07-01T10:50:00Z".parse::<DateTime<Utc>>().unwrap());
    assert_eq!(incident.time_to_detection(), chrono::Duration::minutes(70));

    // Nobody acknowledged a SEV-1 for 30 minutes: a reminder, under the same dedup key.
    clock.set("2026-07-01T12:29:00Z".parse().unwrap());
    assert_eq!(agent.remind().await.unwrap(), 0, "not yet");
    clock.set("2026-07-01T12:31:00Z".parse().unwrap());
    assert_eq!(agent.remind().await.unwrap(), 2, "one reminder per routed channel");
    let reminded = eventually(Duration::from_secs(10), || async {
        let pd = bodies(&server, "/v2/enqueue").await;
        (pd.len() == 2).then_some(pd)
    })
    .await
    .expect("PagerDuty hears the reminder");
    assert_eq!(reminded[1]["event_action"], "trigger");
    assert_eq!(reminded[1]["dedup_key"], dedup.as_str());

    // The loader resumes; two healthy checks resolve the incident.
    pg_exec(&url, &["INSERT INTO orders (at) VALUES ('2026-07-01T12:32:00Z')"]).await;
    run("2026-07-01T12:40:00Z").await;
    run("2026-07-01T12:50:00Z").await;
    let resolved = eventually(Duration::from_secs(10), || async {
        let pd = bodies(&server, "/v2/enqueue").await;
        (pd.len() == 3).then_some(pd)
    })
    .await
    .expect("PagerDuty hears the resolve");
    assert_eq!(resolved[2]["event_action"], "resolve");
    assert_eq!(resolved[2]["dedup_key"], dedup.as_str());
    let slack = eventually(Duration::from_secs(10), || async {
        Some(bodies(&server, "/slack").await).filter(|s| s.len() == 3)
    })
    .await;
    assert!(slack.is_some(), "Slack gets the reminder and the resolved follow-up");
    let incident = agent.store.incident(&incident.id).await.unwrap().unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    let notes = agent.store.notifications(Some(&incident.id)).await.unwrap();
    assert_eq!(notes.len(), 6);
    assert!(notes.iter().all(|n| n.status == "delivered" && n.attempts == 1), "{notes:#?}");

    // Downtime through the API: 10:50 → 12:50, against a 99 % SLO over the last day.
    let state = telltale::api::ApiState { agent: Arc::clone(&agent) };
    let response = tower::ServiceExt::oneshot(
        telltale::api::router(state),
        axum::http::Request::get("/api/v1/downtime?group_by=asset&since=1d").body(axum::body::Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let row = &doc["rows"][0];
    assert_eq!(row["group"], "wh.public.orders");
    assert_eq!(row["downtime_seconds"], 120.0 * 60.0);
    assert_eq!(row["slo"], 0.99);
    assert!(row["error_budget_left_seconds"].as_f64().unwrap() < 0.0, "{row}");

    stop.cancel();
    dispatcher.await.unwrap();
    agent.close().await;
}

#[tokio::test]
async fn alerts_name_the_blast_radius_from_the_dbt_manifest() {
    let url = require!(postgres_db("blast").await);
    pg_exec(
        &url,
        &[
            "CREATE SCHEMA stripe",
            "CREATE TABLE stripe.refund_events (at timestamptz)",
            "INSERT INTO stripe.refund_events VALUES (now() - interval '5 hours')",
        ],
    )
    .await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let manifest = format!("{}/tests/fixtures/dbt/shop/manifest.json", env!("CARGO_MANIFEST_DIR"));
    let extra = format!(
        "channels:\n  hook:\n    kind: webhook\n    url: {}/hook\nlineage:\n  dbt_manifest: {manifest}\n  source: wh\n",
        server.uri()
    );
    let checks = "version: 1\nassets:\n  - source: wh\n    table: stripe.refund_events\n    monitors:\n      freshness: {timestamp_column: at, max_age: 1h}\n";
    let ws = Workspace::new(&config_with_source("postgres", &url, &extra), &[("r.yaml", checks)]);
    let agent = ws.agent(Arc::new(telltale::clock::SystemClock) as SharedClock).await;
    assert!(agent.lineage.graph().node_count() > 0, "the manifest loaded");
    let stop = CancellationToken::new();
    let dispatcher = tokio::spawn(telltale::runtime::run_dispatcher(
        Arc::clone(&agent),
        telltale::runtime::build_channels(&agent.config.alerting),
        stop.clone(),
    ));
    let outcomes = agent.asset_job(&"wh.stripe.refund_events".parse().unwrap(), &CancellationToken::new()).await;
    agent.process_outcomes(&outcomes).await;
    let body = eventually(Duration::from_secs(10), || async { bodies(&server, "/hook").await.into_iter().next() })
        .await
        .expect("the alert went out");
    let incident = if body["incident"].is_object() { &body["incident"] } else { &body["notification"]["incident"] };
    assert!(incident["downstream_count"].as_u64().unwrap() >= 5, "{body:#}");
    let key_assets = incident["key_assets"].as_array().unwrap();
    assert!(!key_assets.is_empty(), "{body:#}");
    assert!(key_assets.iter().all(|a| a["name"].is_string()), "{body:#}");
    stop.cancel();
    dispatcher.await.unwrap();
    agent.close().await;
}
