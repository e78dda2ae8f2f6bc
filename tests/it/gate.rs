//! The CI gate and the circuit breaker on a real PostgreSQL: selection, `--fail-on`, exit codes,
//! and `/api/v1/assets/{asset}/health` + `telltale gate` flipping with an incident.

use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use telltale::clock::{ManualClock, SharedClock};
use telltale::incident::lifecycle::Action;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::common::{Workspace, binary, config_with_source, pg_exec, postgres_db};
use crate::require;

const CHECKS: &str = r#"version: 1
assets:
  - source: wh
    table: fresh
    tags: [finance]
    monitors:
      freshness: {timestamp_column: at, max_age: 1h}
  - source: wh
    table: stale
    owner: "@ops"
    tier: 1
    monitors:
      freshness: {timestamp_column: at, max_age: 1h}
      schema: true
"#;

async fn tables(url: &str) {
    pg_exec(
        url,
        &[
            "CREATE TABLE fresh (at timestamptz)",
            "INSERT INTO fresh VALUES (now())",
            "CREATE TABLE stale (at timestamptz)",
            "INSERT INTO stale VALUES (now() - interval '5 hours')",
        ],
    )
    .await;
}

fn check(ws: &Workspace, args: &[&str]) -> (i32, String) {
    let out = Command::new(binary()).arg("check").args(args).arg("--config").arg(ws.config_path()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn selection_and_fail_on_decide_what_fails_the_run() {
    let url = require!(postgres_db("gate").await);
    tables(&url).await;
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("c.yaml", CHECKS)]);
    let (code, out) = check(&ws, &[]);
    assert_eq!(code, 1, "{out}");
    let (code, out) = check(&ws, &["--select", "tag:finance"]);
    assert_eq!(code, 0, "only the fresh table: {out}");
    assert!(!out.contains("wh.public.stale"), "{out}");
    let (code, out) = check(&ws, &["--exclude", "owner:@ops"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = check(&ws, &["--select", "wh.public.*", "--select", "monitor:schema"]);
    assert_eq!(code, 0, "the stale table's schema passes; freshness is not reported: {out}");
    assert!(out.contains("wh.public.stale") && out.contains("PASS     schema:") && !out.contains("freshness"), "{out}");
    let (code, out) = check(&ws, &["--select", "monitor:freshnes"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("did you mean `freshness`"), "{out}");
    let (code, _) = check(&ws, &["--fail-on", "warn", "--select", "tag:finance"]);
    assert_eq!(code, 0);
}

#[tokio::test]
async fn the_circuit_breaker_flips_with_an_incident() {
    let url = require!(postgres_db("breaker").await);
    tables(&url).await;
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("c.yaml", CHECKS)]);
    let clock = ManualClock::new(chrono::Utc::now());
    let agent = ws.agent(Arc::new(clock.clone()) as SharedClock).await;
    let token = CancellationToken::new();
    let health = |asset: &'static str| {
        let state = telltale::api::ApiState { agent: Arc::clone(&agent) };
        async move {
            let req = Request::get(format!("/api/v1/assets/{asset}/health")).body(Body::empty()).unwrap();
            let res = telltale::api::router(state).oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
            (status, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap())
        }
    };
    let outcomes = agent.run_once(&token).await;
    agent.process_outcomes(&outcomes).await;
    let (status, doc) = health("wh.public.stale").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{doc}");
    assert_eq!(doc["status"], "broken");
    assert_eq!(doc["open_incidents"].as_array().unwrap().len(), 1);
    let (status, doc) = health("wh.public.fresh").await;
    assert_eq!((status, doc["status"].as_str()), (StatusCode::OK, Some("healthy")));
    let (status, _) = telltale_gate(&ws, "wh.public.stale");
    assert_eq!(status, 1, "telltale gate agrees");

    let id = doc_incident_id(&agent).await;
    agent.act_on_incident(&id, Action::Resolve, Some("alice"), None).await.unwrap();
    let (status, doc) = health("wh.public.stale").await;
    assert_eq!((status, doc["status"].as_str()), (StatusCode::OK, Some("healthy")));
    assert_eq!(telltale_gate(&ws, "wh.public.stale").0, 0);
    let (status, doc) = {
        let state = telltale::api::ApiState { agent: Arc::clone(&agent) };
        let req = Request::get("/api/v1/assets/wh.public.stale/health?upstream=true").body(Body::empty()).unwrap();
        let res = telltale::api::router(state).oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
        (status, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap())
    };
    // Without lineage the asset is judged on its own incidents, and the answer says so.
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!((doc["status"].as_str(), doc["in_lineage_graph"].as_bool()), (Some("healthy"), Some(false)), "{doc}");
    agent.close().await;
}

async fn doc_incident_id(agent: &telltale::runtime::Agent) -> String {
    let list =
        agent.store.incidents(&telltale::store::IncidentFilter { limit: 10, ..Default::default() }).await.unwrap();
    list.iter().find(|i| i.asset == "wh.public.stale").unwrap().id.clone()
}

fn telltale_gate(ws: &Workspace, asset: &str) -> (i32, String) {
    let out = Command::new(binary()).args(["gate", asset, "--config"]).arg(ws.config_path()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}
