//! The SQLite source and the example checks, on the demo's shop warehouse.

use std::sync::Arc;

use chrono::{Timelike, Utc};
use telltale::clock::{ManualClock, SharedClock};
use telltale::demo::warehouse::Warehouse;
use telltale::measure::MetricKind;
use telltale::runtime::Status;
use tokio_util::sync::CancellationToken;

use crate::common::Workspace;

#[tokio::test]
async fn the_example_checks_run_against_the_demo_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now().with_minute(0).unwrap().with_second(0).unwrap().with_nanosecond(0).unwrap();
    let wh = Warehouse::create(&dir.path().join("shop.db"), now, 3, 7).await.unwrap();
    wh.close().await;
    let config = format!(
        "version: 1\nstore: sqlite://state/t.db\nsources:\n  shop:\n    kind: sqlite\n    url: sqlite://{}/shop.db\n    include: [\"main.*\"]\nchecks: [{}/checks]\n",
        dir.path().display(),
        env!("CARGO_MANIFEST_DIR"),
    );
    let ws = Workspace::new(&config, &[]);
    let clock = ManualClock::new(now + chrono::Duration::minutes(5));
    let agent = ws.agent(Arc::new(clock) as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let bad: Vec<_> = outcomes.iter().filter(|o| matches!(o.status, Status::Fail | Status::Error)).collect();
    assert!(bad.is_empty(), "healthy demo data should pass every hard rule: {bad:#?}");
    let fresh = outcomes.iter().find(|o| o.asset.as_str() == "shop.main.orders" && o.monitor == "freshness").unwrap();
    assert!(fresh.value.unwrap() < 3600.0 + 300.0, "{fresh:?}");
    let status = outcomes.iter().find(|o| o.subject.as_deref() == Some("status.invalid_rate")).unwrap();
    assert_eq!(status.value, Some(0.0));
    let stddev = outcomes.iter().find(|o| o.subject.as_deref() == Some("amount.stddev")).unwrap();
    assert!(stddev.value.unwrap() > 1.0, "stddev computed without SQLite math functions: {stddev:?}");
    // Auto-discovery watches the table no check file mentions.
    let assets: Vec<String> = agent.store.assets().await.unwrap().into_iter().map(|a| a.asset.to_string()).collect();
    assert_eq!(assets, vec!["shop.main.customers", "shop.main.orders", "shop.main.payments", "shop.main.refunds"]);
    let refunds = agent.store.latest(&"shop.main.refunds".parse().unwrap()).await.unwrap();
    assert!(refunds.iter().any(|m| m.kind == MetricKind::RowCount && m.value > 0.0), "{refunds:?}");
    // Automatic backfill gave the volume history from day one.
    let orders = "shop.main.orders".parse().unwrap();
    assert!(agent.needs_backfill(&orders).await);
    agent.backfill(&orders, 3, &CancellationToken::new()).await.unwrap();
    let history = agent.store.history(&orders, Some(MetricKind::RowsAdded), Some(""), None, 1000).await.unwrap();
    assert_eq!(history.len(), 72);
    assert!(history.iter().all(|m| m.value > 10.0), "hourly orders stay above the floor");
    agent.close().await;
}

#[tokio::test]
async fn sqlite_measures_tables_with_hostile_names() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", db.display())).await.unwrap();
    for s in [
        "CREATE TABLE victim (x)",
        r#"CREATE TABLE "x""; DROP TABLE victim; --" (v INTEGER, t TEXT)"#,
        r#"INSERT INTO "x""; DROP TABLE victim; --" VALUES (1, '2026-01-01 00:00:00'), (NULL, '2026-01-01 01:00:00')"#,
        "CREATE TABLE nr (k TEXT PRIMARY KEY, v REAL) WITHOUT ROWID",
        "INSERT INTO nr VALUES ('a', 1.0)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(s)).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let checks = "version: 1\nassets:\n  - source: wh\n    table: 'x\"; DROP TABLE victim; --'\n    monitors:\n      freshness: {timestamp_column: t}\n      columns:\n        v: [null_rate, mean]\n";
    let ws = Workspace::new(
        &crate::common::config_with_source(
            "sqlite",
            &format!("sqlite://{}", db.display()),
            "    include: [\"main.*\"]",
        ),
        &[("h.yaml", checks)],
    );
    let agent = ws.agent(Arc::new(ManualClock::new("2026-01-01T03:00:00Z".parse().unwrap())) as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    assert!(outcomes.iter().all(|o| o.status != Status::Error), "{outcomes:#?}");
    let fresh = outcomes.iter().find(|o| o.monitor == "freshness").unwrap();
    assert_eq!(fresh.value, Some(7200.0));
    assert_eq!(outcomes.iter().find(|o| o.subject.as_deref() == Some("v.null_rate")).unwrap().value, Some(0.5));
    let assets = agent.store.assets().await.unwrap();
    assert_eq!(assets.len(), 3, "WITHOUT ROWID tables are scanned too: {assets:?}");
    agent.close().await;
}
