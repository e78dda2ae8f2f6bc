//! Category and distribution shifts end to end: each engine counts a column's values in its own
//! `GROUP BY` and draws a random sample of a numeric column, the store keeps the frequency tables
//! and samples, and the agent flags a vanished category and a unit change once per excursion, on
//! PostgreSQL, MariaDB, SQLite and lake files.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use telltale::api::ApiState;
use telltale::clock::{ManualClock, SharedClock};
use telltale::detect::Status as VerdictStatus;
use telltale::measure::{AssetId, MetricKind};
use telltale::runtime::{Agent, CheckOutcome, Status};
use tokio_util::sync::CancellationToken;

use crate::api::call;
use crate::common::{Workspace, config_with_source, mysql_db, mysql_exec, pg_exec, postgres_db};
use crate::require;

/// `status` is 60 % paid, 30 % shipped, 10 % refunded; `code` has 150 values, 0–99 in 7 rows
/// each and 100–149 in 6, so a frequency table lists 100 values and counts 300 rows as the rest;
/// `amount` spreads evenly over 20–80.
fn rows() -> Vec<(&'static str, u32, f64)> {
    (0..1000u32)
        .map(|i| {
            let status = match i % 10 {
                0..=5 => "paid",
                6..=8 => "shipped",
                _ => "refunded",
            };
            (status, i % 150, 20.0 + f64::from(i * 37 % 1000) * 0.06)
        })
        .collect()
}

fn insert_sql() -> String {
    let values: Vec<String> = rows().iter().map(|(s, c, a)| format!("('{s}', {c}, {a:.2})")).collect();
    format!("INSERT INTO orders (status, code, amount) VALUES {}", values.join(", "))
}

/// A category vanishes and the amounts change unit (×1.5).
const CHANGES: [&str; 2] =
    ["UPDATE orders SET status = 'paid' WHERE status = 'refunded'", "UPDATE orders SET amount = amount * 1.5"];

fn checks(source: &str) -> String {
    format!(
        "version: 1\nassets:\n  - source: {source}\n    table: orders\n    monitors:\n      columns:\n        status: {{category_shift: auto}}\n        code: {{category_shift: {{auto: false}}}}\n        amount: [distribution_shift, mean]\n"
    )
}

fn start() -> DateTime<Utc> {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

fn shift<'a>(outcomes: &'a [CheckOutcome], column: &str) -> &'a CheckOutcome {
    let metric = if column == "amount" { "distribution_shift" } else { "category_shift" };
    let subject = format!("{column}.{metric}");
    outcomes.iter().find(|o| o.subject.as_deref() == Some(subject.as_str())).unwrap_or_else(|| panic!("{outcomes:#?}"))
}

/// Three profiles of cold start, then a learned verdict on an unchanged table; returns the asset.
async fn learn(agent: &Arc<Agent>, clock: &ManualClock, asset: &AssetId) {
    let token = CancellationToken::new();
    // The metadata scan lists the table (and its column types) first, as the daemon does.
    agent.metadata_job(asset.source(), &token).await;
    for hour in 0..4 {
        clock.set(start() + Duration::hours(hour));
        let outcomes = agent.asset_job(asset, &token).await;
        let errors: Vec<_> = outcomes.iter().filter(|o| o.status == Status::Error).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let status = shift(&outcomes, "status");
        let verdict = status.verdict.as_ref().expect("a verdict");
        if hour < 3 {
            assert_eq!(verdict.status, VerdictStatus::ColdStart, "{status:#?}");
            assert_eq!(status.status, Status::Recorded);
            assert!(status.message.contains(&format!("learning: {hour} of 3")), "{}", status.message);
            assert!(status.message.contains("1000 rows in 3 values"), "{}", status.message);
            assert_eq!(status.value, None);
        } else {
            assert_eq!(verdict.status, VerdictStatus::Learned, "{status:#?}");
            assert_eq!(status.status, Status::Recorded, "{status:#?}");
            assert!(status.value.unwrap() < 0.001 && !verdict.anomaly, "{status:#?}");
            assert!(status.message.contains("PSI"), "{}", status.message);
        }
        let amount = shift(&outcomes, "amount");
        let verdict = amount.verdict.as_ref().expect("a verdict");
        if hour < 3 {
            assert_eq!(verdict.status, VerdictStatus::ColdStart, "{amount:#?}");
            assert!(amount.message.contains("a sample of 1000 values (learning: "), "{}", amount.message);
        } else {
            assert_eq!(verdict.status, VerdictStatus::Learned, "{amount:#?}");
            assert!(!verdict.anomaly && amount.value.unwrap() < 0.1, "{amount:#?}");
        }
        // `auto: false`: measured, never judged.
        let code = shift(&outcomes, "code");
        assert!(code.verdict.is_none() && code.status == Status::Recorded, "{code:#?}");
    }
    let frames = agent
        .store
        .value_count_history(asset, MetricKind::CategoryShift, "code", start(), start() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(frames.len(), 4);
    let (_, last) = &frames[3];
    assert_eq!((last.values.len(), last.rest), (100, 300), "{last:?}");
    assert!(last.values.iter().all(|(_, n)| *n == 7), "{last:?}");
    let status = agent
        .store
        .value_count_history(asset, MetricKind::CategoryShift, "status", start(), start() + Duration::days(1))
        .await
        .unwrap();
    let expected = vec![("paid".to_string(), 600), ("shipped".to_string(), 300), ("refunded".to_string(), 100)];
    assert_eq!(status[0].1.values, expected);
}

/// After `refunded` vanished: one alerting anomaly, then an anomaly without a new alert.
async fn flag(agent: &Arc<Agent>, clock: &ManualClock, asset: &AssetId) {
    let token = CancellationToken::new();
    clock.set(start() + Duration::hours(4));
    let outcomes = agent.asset_job(asset, &token).await;
    let status = shift(&outcomes, "status");
    assert_eq!(status.status, Status::Fail, "{status:#?}");
    assert!(
        status.message.starts_with("anomaly: ") && status.message.contains("disappeared: refunded"),
        "{}",
        status.message
    );
    let verdict = status.verdict.as_ref().unwrap();
    assert!(verdict.anomaly && verdict.alert && verdict.score > 4.0, "{verdict:#?}");

    let amount = shift(&outcomes, "amount");
    assert_eq!(amount.status, Status::Fail, "{amount:#?}");
    assert!(amount.message.starts_with("anomaly: ") && amount.message.contains("median"), "{}", amount.message);
    let verdict = amount.verdict.as_ref().unwrap();
    assert!(verdict.anomaly && verdict.alert && amount.value.unwrap() > 0.3, "{verdict:#?}");

    clock.set(start() + Duration::hours(5));
    let outcomes = agent.asset_job(asset, &token).await;
    for column in ["status", "amount"] {
        let verdict = shift(&outcomes, column).verdict.clone().unwrap();
        assert!(verdict.anomaly && !verdict.alert, "one alert per excursion: {verdict:#?}");
    }

    let verdicts = agent.store.verdicts(asset, None, false, 100).await.unwrap();
    for kind in [MetricKind::CategoryShift, MetricKind::DistributionShift] {
        let shifts: Vec<_> = verdicts.iter().filter(|v| v.kind == kind).collect();
        assert_eq!(shifts.len(), 6, "{shifts:#?}");
        assert_eq!(shifts.iter().filter(|v| v.alert).count(), 1);
    }
    // What the verdicts compared, over the API: the last profile has no `refunded` left.
    let state = ApiState { agent: Arc::clone(agent) };
    let (status, doc) =
        call(&state, "GET", &format!("/api/v1/assets/{asset}/columns/status/values?since=2h"), None).await;
    assert_eq!(status, StatusCode::OK);
    let profiles = doc["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 3, "profiles of hours 3, 4 and 5: {doc}");
    assert_eq!(
        profiles[2]["values"],
        serde_json::json!([{"value": "paid", "rows": 700}, {"value": "shipped", "rows": 300}])
    );
    assert_eq!((profiles[0]["rows"].as_u64(), profiles[0]["other_rows"].as_u64()), (Some(1000), Some(0)));
    let uri = format!("/api/v1/assets/{asset}/columns/amount/values?metric=distribution_shift");
    let (_, doc) = call(&state, "GET", &uri, None).await;
    assert_eq!(doc["profiles"].as_array().unwrap().len(), 6);
    assert_eq!(doc["profiles"][0]["rows"], 1000, "a sample of 1 000 values: {}", doc["profiles"][0]);
    let uri = format!("/api/v1/assets/{asset}/columns/status/values?metric=mean");
    assert_eq!(call(&state, "GET", &uri, None).await.0, StatusCode::BAD_REQUEST);

    let psi = agent.store.history(asset, Some(MetricKind::CategoryShift), Some("status"), None, 100).await.unwrap();
    assert_eq!(psi.len(), 3, "a PSI from the fourth profile on: {psi:#?}");
    assert!(psi[2].value > psi[0].value + 0.1);
}

async fn agent_for(ws: &Workspace) -> (Arc<Agent>, ManualClock) {
    let clock = ManualClock::new(start());
    (ws.agent(Arc::new(clock.clone()) as SharedClock).await, clock)
}

#[tokio::test]
async fn postgres_category_shift() {
    let url = require!(postgres_db("categories").await);
    pg_exec(&url, &["CREATE TABLE orders (status text, code int, amount numeric(10,2))", &insert_sql()]).await;
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("t.yaml", &checks("wh"))]);
    let (agent, clock) = agent_for(&ws).await;
    let asset: AssetId = "wh.public.orders".parse().unwrap();
    learn(&agent, &clock, &asset).await;
    pg_exec(&url, &CHANGES).await;
    flag(&agent, &clock, &asset).await;
    agent.close().await;
}

#[tokio::test]
async fn mariadb_category_shift() {
    let url = require!(mysql_db("categories").await);
    mysql_exec(&url, &["CREATE TABLE orders (status VARCHAR(10), code INT, amount DECIMAL(10,2))", &insert_sql()])
        .await;
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
    let ws = Workspace::new(&config_with_source("mysql", &url, ""), &[("t.yaml", &checks("wh"))]);
    let (agent, clock) = agent_for(&ws).await;
    let asset: AssetId = format!("wh.{db}.orders").parse().unwrap();
    learn(&agent, &clock, &asset).await;
    mysql_exec(&url, &CHANGES).await;
    flag(&agent, &clock, &asset).await;
    agent.close().await;
}

#[tokio::test]
async fn sqlite_category_shift() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", db.display())).await.unwrap();
    for s in ["CREATE TABLE orders (status TEXT, code INTEGER, amount REAL)".to_string(), insert_sql()] {
        sqlx::query(sqlx::AssertSqlSafe(s)).execute(&pool).await.unwrap();
    }
    let ws = Workspace::new(
        &config_with_source("sqlite", &format!("sqlite://{}", db.display()), ""),
        &[("t.yaml", &checks("wh"))],
    );
    let (agent, clock) = agent_for(&ws).await;
    let asset: AssetId = "wh.main.orders".parse().unwrap();
    learn(&agent, &clock, &asset).await;
    for change in CHANGES {
        sqlx::query(change).execute(&pool).await.unwrap();
    }
    pool.close().await;
    flag(&agent, &clock, &asset).await;
    agent.close().await;
}

#[tokio::test]
async fn lake_files_category_shift() {
    let csv = |vanished: bool| {
        let mut text = String::from("status,code,amount\n");
        for (s, c, a) in rows() {
            let (s, a) = if vanished { (if s == "refunded" { "paid" } else { s }, a * 1.5) } else { (s, a) };
            text.push_str(&format!("{s},{c},{a:.2}\n"));
        }
        text
    };
    let ws = Workspace::new(
        "version: 1\nstore: sqlite://state/t.db\nsources:\n  lake:\n    kind: files\n    url: lake\n    include: [\"main.*\"]\nchecks: [checks/]\n",
        &[("t.yaml", &checks("lake"))],
    );
    std::fs::create_dir_all(ws.path().join("lake/orders")).unwrap();
    std::fs::write(ws.path().join("lake/orders/part-0.csv"), csv(false)).unwrap();
    let (agent, clock) = agent_for(&ws).await;
    let asset: AssetId = "lake.main.orders".parse().unwrap();
    learn(&agent, &clock, &asset).await;
    std::fs::write(ws.path().join("lake/orders/part-0.csv"), csv(true)).unwrap();
    flag(&agent, &clock, &asset).await;
    agent.close().await;
}
