//! The HTTP API without a socket: `router(state)` answered through `tower::ServiceExt::oneshot`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use telltale::api::{ApiState, router};
use telltale::clock::{ManualClock, SharedClock};
use telltale::measure::MetricKind;
use tower::ServiceExt;

use crate::common::{Workspace, config_with_source};

/// Answers one request through the router: status and JSON body (`null` when not JSON).
pub async fn call(
    state: &ApiState,
    method: &str,
    uri: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn verdicts_and_labels_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", db.display())).await.unwrap();
    sqlx::query("CREATE TABLE t (v REAL, at TEXT)").execute(&pool).await.unwrap();
    // 21 days of hourly rows, 50 per hour.
    sqlx::query(
        "WITH RECURSIVE h(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM h WHERE n < 21 * 24 * 50 - 1) \
         INSERT INTO t SELECT n % 7, datetime(1781000000 - 21 * 86400 + (n / 50) * 3600 + n % 50, 'unixepoch') FROM h",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let checks = "version: 1\nassets:\n  - source: wh\n    table: t\n    monitors:\n      volume: {timestamp_column: at, bucket: 1h}\n      columns:\n        v: [mean]\n";
    let ws =
        Workspace::new(&config_with_source("sqlite", &format!("sqlite://{}", db.display()), ""), &[("t.yaml", checks)]);
    // 1781000000 is an hour boundary; the clock sits just after it.
    let clock = ManualClock::new(chrono::DateTime::from_timestamp(1_781_000_000 + 60, 0).unwrap());
    let agent = ws.agent(Arc::new(clock) as SharedClock).await;
    let token = tokio_util::sync::CancellationToken::new();
    let asset = "wh.main.t".parse().unwrap();
    agent.backfill(&asset, 20, &token).await.unwrap();
    agent.run_once(&token).await;
    let state = ApiState { agent: Arc::clone(&agent) };

    let (status, doc) = call(&state, "GET", "/api/v1/assets/wh.main.t/verdicts", None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let verdicts = doc["verdicts"].as_array().unwrap();
    let rows = verdicts.iter().find(|v| v["kind"] == "rows_added").expect("rows_added judged");
    assert_eq!(rows["status"], "learned");
    assert_eq!(rows["anomaly"], false);
    assert!(
        rows["expected_low"].as_f64().unwrap() <= 50.0 && rows["expected_high"].as_f64().unwrap() >= 50.0,
        "{rows}"
    );
    let (_, anomalies) = call(&state, "GET", "/api/v1/assets/wh.main.t/verdicts?anomalies=true", None).await;
    assert_eq!(anomalies["verdicts"].as_array().unwrap().len(), 0);

    let label = serde_json::json!({
        "metric": "rows_added", "from": "2026-06-01T00:00:00Z", "to": "2026-06-02T00:00:00Z",
        "label": "confirmed_incident", "note": "loader bug", "by": "alice"
    });
    let (status, doc) = call(&state, "POST", "/api/v1/assets/wh.main.t/labels", Some(label)).await;
    assert_eq!(status, StatusCode::CREATED, "{doc}");
    let stored = agent.store.labels(&asset, MetricKind::RowsAdded, "").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].created_by.as_deref(), Some("alice"));

    let bad = serde_json::json!({"metric": "rows_added", "from": "2026-06-02T00:00:00Z", "to": "2026-06-01T00:00:00Z", "label": "expected"});
    let (status, doc) = call(&state, "POST", "/api/v1/assets/wh.main.t/labels", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(doc["error"], "`to` must be after `from`");
    let unknown = serde_json::json!({"metric": "rows", "from": "2026-06-01T00:00:00Z", "to": "2026-06-02T00:00:00Z", "label": "expected"});
    let (status, doc) = call(&state, "POST", "/api/v1/assets/wh.main.t/labels", Some(unknown)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(doc["error"], "unknown metric kind `rows`");
    let (status, _) = call(&state, "GET", "/api/v1/assets/nope/verdicts", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&state, "GET", "/api/v1/assets/wh.main.zzz/verdicts", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, doc) = call(&state, "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    agent.close().await;
}
