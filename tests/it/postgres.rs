//! The PostgreSQL source against a real server: catalog scan, profile, backfill buckets, schema
//! changes, permissions, timeouts, a server going away, hostile identifiers, read-only sessions.

use std::sync::Arc;
use std::time::Duration;

use telltale::clock::{ManualClock, SharedClock, SystemClock};
use telltale::config::Config;
use telltale::measure::{MetricKind, TableRef};
use telltale::runtime::Status;
use telltale::source::sql::ColumnRequest;
use telltale::source::{self, ProfileRequest, SourceError};
use tokio_util::sync::CancellationToken;

use crate::common::{Workspace, config_with_source, eventually, pg_exec, postgres_db};
use crate::require;

fn source_for(url: &str, timeout: &str) -> telltale::source::SharedSource {
    let text = format!(
        "version: 1\nsources:\n  wh:\n    kind: postgres\n    url: \"{url}\"\n    statement_timeout: {timeout}\n    connect_timeout: 3s\n"
    );
    let config = Config::parse(std::path::Path::new("t.yaml"), &text, |_| None).unwrap();
    source::connect(&config.sources["wh"]).unwrap()
}

#[tokio::test]
async fn catalog_scan_lists_every_table_with_columns_and_row_estimates() {
    let url = require!(postgres_db("catalog").await);
    pg_exec(&url, &[
        "CREATE SCHEMA analytics",
        "CREATE TABLE analytics.orders (id bigint NOT NULL, amount numeric(10,2), note text, created_at timestamptz)",
        "INSERT INTO analytics.orders SELECT g, g * 1.5, 'n', now() FROM generate_series(1, 250) g",
        "CREATE TABLE public.empty_one (x int)",
    ])
    .await;
    let source = source_for(&url, "5s");
    let tables = eventually(Duration::from_secs(15), || {
        let source = Arc::clone(&source);
        async move {
            let t = source.scan_metadata(&telltale::source::Scope::all()).await.unwrap();
            let orders = t.iter().find(|t| t.table == TableRef::new("analytics", "orders"))?.clone();
            (orders.row_count == Some(250.0)).then_some(t)
        }
    })
    .await
    .expect("statistics should report 250 rows");
    let orders = tables.iter().find(|t| t.table.name == "orders").unwrap();
    let cols: Vec<(&str, &str, bool)> =
        orders.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str(), c.nullable)).collect();
    assert_eq!(
        cols,
        vec![
            ("id", "bigint", false),
            ("amount", "numeric(10,2)", true),
            ("note", "text", true),
            ("created_at", "timestamp with time zone", true)
        ]
    );
    assert!(!orders.row_count_exact);
    assert!(orders.change_signature.as_deref().unwrap().starts_with("250:0:0:250:"));
    assert!(tables.iter().any(|t| t.table == TableRef::new("public", "empty_one")));
    source.close().await;
}

#[tokio::test]
async fn one_profile_query_computes_every_metric() {
    let url = require!(postgres_db("profile").await);
    pg_exec(&url, &[
        "CREATE TABLE t (v double precision, s text, status text, ts timestamptz)",
        // v = 1..100, ten nulls; s has lengths 1..3; status has one unexpected value
        "INSERT INTO t SELECT g, repeat('x', 1 + g % 3), CASE WHEN g = 7 THEN 'bogus' ELSE 'paid' END, '2026-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 100) g",
        "INSERT INTO t SELECT NULL, NULL, NULL, NULL FROM generate_series(1, 10)",
    ])
    .await;
    let source = source_for(&url, "5s");
    let col =
        |name: &str, ty: &str| telltale::measure::Column { name: name.into(), data_type: ty.into(), nullable: true };
    let request = ProfileRequest {
        table: TableRef::new("public", "t"),
        columns: vec![
            ColumnRequest {
                column: col("v", "double precision"),
                metrics: vec![
                    MetricKind::NullRate,
                    MetricKind::NullCount,
                    MetricKind::DistinctCount,
                    MetricKind::Uniqueness,
                    MetricKind::Min,
                    MetricKind::Max,
                    MetricKind::Mean,
                    MetricKind::Stddev,
                    MetricKind::P50,
                    MetricKind::P95,
                ],
                accepted_values: None,
            },
            ColumnRequest {
                column: col("s", "text"),
                metrics: vec![MetricKind::MinLength, MetricKind::MaxLength, MetricKind::MeanLength],
                accepted_values: None,
            },
            ColumnRequest {
                column: col("status", "text"),
                metrics: vec![MetricKind::InvalidCount, MetricKind::InvalidRate],
                accepted_values: Some(vec!["paid".into(), "refunded".into()]),
            },
            ColumnRequest {
                column: col("ts", "timestamp with time zone"),
                metrics: vec![MetricKind::Max],
                accepted_values: None,
            },
        ],
        filter: None,
        sample_percent: None,
    };
    let result = source.profile(&request).await.unwrap();
    let get = |c: &str, m: MetricKind| {
        result.values.iter().find(|(col, k, _)| col == c && *k == m).and_then(|(_, _, v)| *v).unwrap()
    };
    assert_eq!(result.rows, 110.0);
    assert!((get("v", MetricKind::NullRate) - 10.0 / 110.0).abs() < 1e-12);
    assert_eq!(get("v", MetricKind::NullCount), 10.0);
    assert_eq!(get("v", MetricKind::DistinctCount), 100.0);
    assert_eq!(get("v", MetricKind::Uniqueness), 1.0);
    assert_eq!((get("v", MetricKind::Min), get("v", MetricKind::Max)), (1.0, 100.0));
    assert_eq!(get("v", MetricKind::Mean), 50.5);
    assert!((get("v", MetricKind::Stddev) - 29.011491975882016).abs() < 1e-9);
    assert_eq!(get("v", MetricKind::P50), 50.5);
    assert!((get("v", MetricKind::P95) - 95.05).abs() < 1e-9);
    assert_eq!((get("s", MetricKind::MinLength), get("s", MetricKind::MaxLength)), (1.0, 3.0));
    assert_eq!(get("status", MetricKind::InvalidCount), 1.0);
    assert_eq!(get("status", MetricKind::InvalidRate), 0.01);
    assert_eq!(get("ts", MetricKind::Max), 1767225600.0 + 100.0 * 3600.0);

    // `where` narrows the scan; `sample` still returns a row.
    let narrowed = source.profile(&ProfileRequest { filter: Some("v > 90".into()), ..request.clone() }).await.unwrap();
    assert_eq!(narrowed.rows, 10.0);
    let sampled = source.profile(&ProfileRequest { sample_percent: Some(50.0), ..request }).await.unwrap();
    assert!(sampled.rows <= 110.0);
    source.close().await;
}

#[tokio::test]
async fn backfill_counts_rows_per_bucket_with_one_group_by_and_fills_gaps_with_zero() {
    let url = require!(postgres_db("backfill").await);
    // 3 rows per hour for 48 hours, except hour 10 which is missing.
    pg_exec(&url, &[
        "CREATE TABLE events (id serial, at timestamp)",
        "INSERT INTO events (at) SELECT now()::date - interval '2 days' + h * interval '1 hour' + m * interval '10 minutes' \
         FROM generate_series(0, 47) h, generate_series(0, 2) m WHERE h <> 10",
    ])
    .await;
    let checks = "version: 1\nassets:\n  - source: wh\n    table: events\n    monitors:\n      volume: {timestamp_column: at, bucket: 1h}\n";
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("e.yaml", checks)]);
    let today: chrono::DateTime<chrono::Utc> =
        format!("{}T00:00:00Z", chrono::Utc::now().format("%Y-%m-%d")).parse().unwrap();
    let clock = ManualClock::new(today);
    let agent = ws.agent(Arc::new(clock.clone()) as SharedClock).await;
    let asset = "wh.public.events".parse().unwrap();
    let n = agent.backfill(&asset, 2, &CancellationToken::new()).await.unwrap();
    assert_eq!(n, 48);
    let history = agent.store.history(&asset, Some(MetricKind::RowsAdded), Some(""), None, 1000).await.unwrap();
    assert_eq!(history.len(), 48);
    let values: Vec<f64> = history.iter().map(|m| m.value).collect();
    assert_eq!(values.iter().filter(|v| **v == 3.0).count(), 47);
    assert_eq!(values[10], 0.0, "a missed load is a zero, not a gap");
    // Backfill is idempotent.
    agent.backfill(&asset, 2, &CancellationToken::new()).await.unwrap();
    assert_eq!(agent.store.history(&asset, Some(MetricKind::RowsAdded), Some(""), None, 1000).await.unwrap().len(), 48);
    agent.close().await;
}

#[tokio::test]
async fn schema_changes_are_diffed_and_breaking_ones_fail() {
    let url = require!(postgres_db("schema").await);
    pg_exec(&url, &["CREATE TABLE t (id int NOT NULL, name text, price int, legacy text)"]).await;
    let checks = "version: 1\nassets:\n  - source: wh\n    table: t\n    monitors:\n      schema: true\n";
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("t.yaml", checks)]);
    let agent = ws.agent(Arc::new(SystemClock) as SharedClock).await;
    let token = CancellationToken::new();
    let first = agent.metadata_job("wh", &token).await;
    let schema = first.iter().find(|o| o.monitor == "schema").unwrap();
    assert_eq!(schema.status, Status::Pass);
    assert_eq!(schema.message, "schema recorded: 4 columns");

    pg_exec(&url, &["ALTER TABLE t ADD COLUMN created_at timestamptz"]).await;
    let added = agent.metadata_job("wh", &token).await;
    let schema = added.iter().find(|o| o.monitor == "schema").unwrap();
    assert_eq!(schema.status, Status::Pass, "an added column is not breaking");
    assert_eq!(schema.message, "schema changed: column `created_at` added (timestamp with time zone)");

    pg_exec(
        &url,
        &[
            "ALTER TABLE t RENAME COLUMN name TO full_name",
            "ALTER TABLE t ALTER COLUMN price TYPE numeric(12,2)",
            "ALTER TABLE t DROP COLUMN legacy",
            "ALTER TABLE t ALTER COLUMN id DROP NOT NULL",
        ],
    )
    .await;
    let broken = agent.metadata_job("wh", &token).await;
    let schema = broken.iter().find(|o| o.monitor == "schema").unwrap();
    assert_eq!(schema.status, Status::Fail);
    assert_eq!(
        schema.message,
        "schema changed: column `id` became nullable; column `name` renamed to `full_name` (text); \
         column `price` changed type from integer to numeric(12,2); column `legacy` removed (was text)"
    );
    let asset = "wh.public.t".parse().unwrap();
    let history = agent.store.schema_history(&asset, 10).await.unwrap();
    assert_eq!(history.len(), 3, "one snapshot per distinct schema");
    assert_eq!(history[0].changes.iter().filter(|c| c.is_breaking()).count(), 3);
    agent.close().await;
}

#[tokio::test]
async fn freshness_is_inferred_from_write_counters_between_polls() {
    let url = require!(postgres_db("fresh").await);
    pg_exec(&url, &["CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)"]).await;
    let checks = "version: 1\nassets:\n  - source: wh\n    table: t\n    monitors:\n      freshness: {max_age: 2h}\n      volume: {}\n";
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("t.yaml", checks)]);
    let start: chrono::DateTime<chrono::Utc> = "2026-03-02T08:00:00Z".parse().unwrap();
    let clock = ManualClock::new(start);
    let agent = ws.agent(Arc::new(clock.clone()) as SharedClock).await;
    let token = CancellationToken::new();
    let asset: telltale::measure::AssetId = "wh.public.t".parse().unwrap();

    let first = agent.metadata_job("wh", &token).await;
    assert!(first.iter().all(|o| o.monitor != "freshness"), "no freshness before anything is known: {first:?}");

    clock.advance(Duration::from_secs(3 * 3600));
    let stale = agent.metadata_job("wh", &token).await;
    let f = stale.iter().find(|o| o.monitor == "freshness").unwrap();
    assert_eq!(f.status, Status::Fail, "{f:?}");
    assert_eq!(f.value, Some(3.0 * 3600.0));

    pg_exec(&url, &["INSERT INTO t SELECT g FROM generate_series(1, 40) g"]).await;
    clock.advance(Duration::from_secs(600));
    let fresh = eventually(Duration::from_secs(15), || {
        let agent = Arc::clone(&agent);
        let token = token.clone();
        async move {
            let out = agent.metadata_job("wh", &token).await;
            let f = out.iter().find(|o| o.monitor == "freshness")?.clone();
            (f.status == Status::Pass).then_some(f)
        }
    })
    .await
    .expect("the insert should move the counters");
    assert_eq!(fresh.value, Some(0.0));
    let added = agent.store.history(&asset, Some(MetricKind::RowsAdded), Some(""), None, 10).await.unwrap();
    assert!(added.iter().any(|m| m.value == 40.0), "{added:?}");
    agent.close().await;
}

#[tokio::test]
async fn permission_denied_is_reported_as_such() {
    let url = require!(postgres_db("perm").await);
    let role = crate::common::unique("nobody");
    pg_exec(
        &url,
        &[
            "CREATE TABLE secret (x int)",
            &format!("CREATE ROLE {role} LOGIN"),
            &format!("REVOKE ALL ON secret FROM {role}"),
        ],
    )
    .await;
    let restricted = url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let source = source_for(&restricted, "5s");
    let err = source.custom_metric("SELECT count(*) FROM secret").await.unwrap_err();
    assert!(matches!(err, SourceError::PermissionDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("grant telltale's user read access"), "{err}");
    source.close().await;
}

#[tokio::test]
async fn statement_timeout_cancels_slow_queries() {
    let url = require!(postgres_db("timeout").await);
    let source = source_for(&url, "300ms");
    let started = std::time::Instant::now();
    let err = source.custom_metric("SELECT 1 FROM pg_sleep(5)").await.unwrap_err();
    assert!(matches!(err, SourceError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "the server-side timeout should fire first");
    source.close().await;
}

#[tokio::test]
async fn a_server_that_goes_away_mid_query_is_unreachable_and_retryable() {
    let url = require!(postgres_db("away").await);
    let source = source_for(&url, "20s");
    let killer_url = url.clone();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        pg_exec(&killer_url, &[
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'telltale' AND pid <> pg_backend_pid()",
        ])
        .await;
    });
    let err = source.custom_metric("SELECT 1 FROM pg_sleep(10)").await.unwrap_err();
    killer.await.unwrap();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.class(), telltale::source::ErrorClass::Unreachable, "{err:?}");
    // The pool recovers with a new connection.
    assert_eq!(source.custom_metric("SELECT 42").await.unwrap(), Some(42.0));
    source.close().await;

    // Nothing listening at all.
    let dead = source_for("postgres://postgres@127.0.0.1:1/postgres", "2s");
    let err = dead.scan_metadata(&telltale::source::Scope::all()).await.unwrap_err();
    assert_eq!(err.class(), telltale::source::ErrorClass::Unreachable, "{err:?}");
}

#[tokio::test]
async fn hostile_identifiers_are_measured_never_executed() {
    let url = require!(postgres_db("hostile").await);
    pg_exec(
        &url,
        &[
            "CREATE TABLE victim (x int)",
            r#"CREATE TABLE "x""; drop table victim; --" ("we""ird col" int, ts timestamptz)"#,
            r#"INSERT INTO "x""; drop table victim; --" VALUES (1, now()), (NULL, now())"#,
        ],
    )
    .await;
    let checks = r#"version: 1
assets:
  - source: wh
    table: 'public.x"; drop table victim; --'
    monitors:
      freshness: {timestamp_column: ts}
      volume: {exact: true}
      columns:
        'we"ird col': [null_rate]
"#;
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("h.yaml", checks)]);
    let agent = ws.agent(Arc::new(SystemClock) as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    assert!(outcomes.iter().all(|o| o.status != Status::Error), "{outcomes:#?}");
    let null_rate = outcomes.iter().find(|o| o.subject.as_deref() == Some("we\"ird col.null_rate")).unwrap();
    assert_eq!(null_rate.value, Some(0.5));
    let rows = outcomes.iter().find(|o| o.monitor == "volume").unwrap();
    assert_eq!(rows.value, Some(2.0));
    agent.close().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM victim").fetch_one(&pool).await.unwrap();
    assert_eq!(n, 0, "the victim table still exists");
    pool.close().await;
}

#[tokio::test]
async fn sessions_are_read_only() {
    let url = require!(postgres_db("readonly").await);
    pg_exec(&url, &["CREATE SEQUENCE s"]).await;
    let source = source_for(&url, "5s");
    let err = source.custom_metric("SELECT nextval('s')").await.unwrap_err();
    assert!(err.to_string().contains("read-only transaction"), "{err}");
    source.close().await;
}

#[tokio::test]
async fn a_failing_check_does_not_stop_the_others() {
    let url = require!(postgres_db("isolation").await);
    pg_exec(&url, &["CREATE TABLE good (v int)", "INSERT INTO good VALUES (1), (2)"]).await;
    let checks = r#"version: 1
assets:
  - source: wh
    table: good
    monitors:
      columns:
        v: {max: {max: 10}}
        missing_col: [null_rate]
      custom_sql:
        - {name: broken, sql: "SELECT * FROM no_such_table"}
        - {name: total, sql: "SELECT sum(v) FROM good", min: 3}
  - source: wh
    table: gone
    monitors:
      schema: true
"#;
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("c.yaml", checks)]);
    let agent = ws.agent(Arc::new(SystemClock) as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let find = |subject: &str| {
        outcomes
            .iter()
            .find(|o| o.subject.as_deref() == Some(subject))
            .unwrap_or_else(|| panic!("{subject}: {outcomes:#?}"))
    };
    assert_eq!(find("v.max").status, Status::Pass);
    assert_eq!(find("missing_col").status, Status::Error);
    assert_eq!(find("broken").status, Status::Error);
    assert_eq!(find("total").status, Status::Pass);
    assert_eq!(find("total").value, Some(3.0));
    let gone = outcomes.iter().find(|o| o.asset.as_str() == "wh.public.gone").unwrap();
    assert_eq!(gone.status, Status::Error);
    assert!(gone.message.contains("table `public.gone` not found"), "{}", gone.message);
    let err = agent.store.last_error(&"wh.public.gone".parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(err.class, "config");
    agent.close().await;
}
