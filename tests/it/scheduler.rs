//! The daemon loop: jobs run on their schedule in (test-controlled) time, and shutdown cancels
//! in-flight work after the grace period.

use std::sync::Arc;
use std::time::{Duration, Instant};

use telltale::clock::{ManualClock, SharedClock, SystemClock};
use telltale::measure::MetricKind;
use tokio_util::sync::CancellationToken;

use crate::common::{Workspace, config_with_source, eventually, pg_exec, postgres_db};
use crate::require;

#[tokio::test]
async fn jobs_run_on_their_schedule_as_the_clock_moves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", db.display())).await.unwrap();
    sqlx::query("CREATE TABLE t (v INTEGER, at TEXT)").execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO t VALUES (1, '2026-05-01 09:30:00')").execute(&pool).await.unwrap();
    let config = config_with_source(
        "sqlite",
        &format!("sqlite://{}", db.display()),
        "    include: [\"main.*\"]\n    schedule: {every: 10m}",
    );
    let checks = "version: 1\nassets:\n  - source: wh\n    table: t\n    schedule: {every: 1h}\n    monitors:\n      columns:\n        v: [mean]\n";
    let ws = Workspace::new(&config, &[("t.yaml", checks)]);
    let clock = ManualClock::new("2026-05-01T10:00:00Z".parse().unwrap());
    let agent = ws.agent(Arc::new(clock.clone()) as SharedClock).await;
    let token = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let scheduler = tokio::spawn(telltale::runtime::run_scheduler(Arc::clone(&agent), token.clone(), Some(tx)));
    let asset = "wh.main.t".parse().unwrap();

    // Start: one metadata scan and one asset job.
    let ready = eventually(Duration::from_secs(10), || {
        let a = Arc::clone(&agent);
        async move { a.is_ready().then_some(()) }
    })
    .await;
    assert!(ready.is_some(), "first cycle should complete");
    let count = |kind| {
        let a = Arc::clone(&agent);
        let asset = &asset;
        async move { a.store.history(asset, Some(kind), None, None, 1000).await.unwrap().len() }
    };
    assert_eq!(count(MetricKind::ColumnCount).await, 1);
    assert_eq!(count(MetricKind::Mean).await, 1);

    // 25 minutes later: two more metadata scans (10:10, 10:20), no new asset job (due 11:00).
    for _ in 0..5 {
        clock.advance(Duration::from_secs(300));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let scans =
        eventually(Duration::from_secs(5), || async { (count(MetricKind::ColumnCount).await == 3).then_some(()) })
            .await;
    assert!(scans.is_some(), "expected 3 metadata scans, got {}", count(MetricKind::ColumnCount).await);
    assert_eq!(count(MetricKind::Mean).await, 1);

    // Past 11:00 the hourly profile runs again.
    sqlx::query("INSERT INTO t VALUES (3, '2026-05-01 10:45:00')").execute(&pool).await.unwrap();
    clock.set("2026-05-01T11:00:30Z".parse().unwrap());
    let again =
        eventually(Duration::from_secs(5), || async { (count(MetricKind::Mean).await == 2).then_some(()) }).await;
    assert!(again.is_some());
    let means = agent.store.history(&asset, Some(MetricKind::Mean), None, None, 10).await.unwrap();
    assert_eq!(means.last().unwrap().value, 2.0);
    assert!(rx.try_recv().is_ok(), "finished jobs report their outcomes");

    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), scheduler).await.expect("scheduler stops").unwrap();
    pool.close().await;
    agent.close().await;
}

#[tokio::test]
async fn shutdown_cancels_in_flight_checks_after_the_grace_period() {
    let url = require!(postgres_db("grace").await);
    pg_exec(&url, &["CREATE TABLE t (v int)"]).await;
    let config = config_with_source("postgres", &url, "shutdown_grace: 1s")
        .replace("statement_timeout: 5s", "statement_timeout: 60s");
    let checks = "version: 1\nassets:\n  - source: wh\n    table: t\n    monitors:\n      custom_sql:\n        - {name: slow, sql: \"SELECT count(*) FROM t, pg_sleep(30)\"}\n";
    let ws = Workspace::new(&config, &[("t.yaml", checks)]);
    let agent = ws.agent(Arc::new(SystemClock) as SharedClock).await;
    let token = CancellationToken::new();
    let scheduler = tokio::spawn(telltale::runtime::run_scheduler(Arc::clone(&agent), token.clone(), None));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), scheduler).await.expect("scheduler stops").unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "stopped after {took:?}");
    let closing = Instant::now();
    agent.close().await;
    assert!(closing.elapsed() < Duration::from_secs(5), "closing waited for the orphaned query");
    // The server cancels the orphaned query soon after its client went away.
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let gone = eventually(Duration::from_secs(10), || {
        let admin = admin.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()",
            )
            .fetch_one(&admin)
            .await
            .unwrap();
            (n == 0).then_some(())
        }
    })
    .await;
    assert!(gone.is_some(), "the abandoned query kept running on the server");
    admin.close().await;
}
