//! The MySQL/MariaDB source against a real MariaDB server.

use std::sync::Arc;
use std::time::Duration;

use telltale::clock::{SharedClock, SystemClock};
use telltale::config::Config;
use telltale::measure::{MetricKind, TableRef};
use telltale::runtime::Status;
use telltale::source::{self, SourceError};
use tokio_util::sync::CancellationToken;

use crate::common::{Workspace, config_with_source, mysql_db, mysql_exec};
use crate::require;

fn source_for(url: &str, timeout: &str) -> telltale::source::SharedSource {
    let text = format!(
        "version: 1\nsources:\n  wh:\n    kind: mysql\n    url: \"{url}\"\n    statement_timeout: {timeout}\n    connect_timeout: 3s\n"
    );
    let config = Config::parse(std::path::Path::new("t.yaml"), &text, |_| None).unwrap();
    source::connect(&config.sources["wh"]).unwrap()
}

fn database_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn catalog_scan_reads_information_schema_in_one_query() {
    let url = require!(mysql_db("catalog").await);
    let db = database_of(&url);
    mysql_exec(&url, &[
        "CREATE TABLE orders (id BIGINT NOT NULL PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(20), created_at DATETIME)",
        "INSERT INTO orders VALUES (1, 1.5, 'a', NOW()), (2, 2.5, NULL, NOW()), (3, NULL, 'c', NOW())",
        "ANALYZE TABLE orders",
    ])
    .await;
    let source = source_for(&url, "5s");
    let tables = source.scan_metadata(&telltale::source::Scope::all()).await.unwrap();
    let orders = tables.iter().find(|t| t.table == TableRef::new(db.clone(), "orders")).expect("orders listed");
    let cols: Vec<(&str, &str, bool)> =
        orders.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str(), c.nullable)).collect();
    assert_eq!(
        cols,
        vec![
            ("id", "bigint(20)", false),
            ("amount", "decimal(10,2)", true),
            ("note", "varchar(20)", true),
            ("created_at", "datetime", true)
        ]
    );
    assert_eq!(orders.row_count, Some(3.0));
    assert!(orders.last_modified.is_some(), "InnoDB keeps UPDATE_TIME after writes");
    assert!(tables.iter().all(|t| t.table.schema != "mysql" && t.table.schema != "information_schema"));
    source.close().await;
}

#[tokio::test]
async fn profile_buckets_and_custom_sql_compute_inside_mariadb() {
    let url = require!(mysql_db("profile").await);
    mysql_exec(&url, &[
        "CREATE TABLE t (v INT, s VARCHAR(10), status VARCHAR(10), at DATETIME)",
        "INSERT INTO t SELECT seq, REPEAT('x', 1 + seq % 3), IF(seq = 7, 'bog\\\\us', 'paid'), '2026-01-01 00:00:00' + INTERVAL seq HOUR FROM seq_1_to_100",
        "INSERT INTO t VALUES (NULL, NULL, NULL, NULL)",
    ])
    .await;
    let checks = r#"version: 1
assets:
  - source: wh
    table: t
    monitors:
      volume: {exact: true}
      columns:
        v: [null_rate, distinct_count, min, max, mean, stddev]
        s: [max_length]
        status: {accepted_values: {values: [paid], max_rate: 0.5}}
      custom_sql:
        - {name: big, sql: "SELECT count(*) FROM t WHERE v > 90;", max: 10}
"#;
    let ws = Workspace::new(&config_with_source("mysql", &url, ""), &[("t.yaml", checks)]);
    let agent = ws.agent(Arc::new(SystemClock) as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let value = |s: &str| {
        outcomes
            .iter()
            .find(|o| o.subject.as_deref() == Some(s))
            .unwrap_or_else(|| panic!("{s}: {outcomes:#?}"))
            .value
            .unwrap()
    };
    assert!((value("v.null_rate") - 1.0 / 101.0).abs() < 1e-9);
    assert_eq!(value("v.distinct_count"), 100.0);
    assert_eq!((value("v.min"), value("v.max")), (1.0, 100.0));
    assert_eq!(value("v.mean"), 50.5);
    assert!((value("v.stddev") - 29.011491975882016).abs() < 1e-6);
    assert_eq!(value("s.max_length"), 3.0);
    assert_eq!(value("status.invalid_rate"), 0.01);
    assert_eq!(value("big"), 10.0);
    let volume = outcomes.iter().find(|o| o.monitor == "volume").unwrap();
    assert_eq!(volume.value, Some(101.0));
    assert!(outcomes.iter().all(|o| o.status != Status::Error), "{outcomes:#?}");

    let source = source_for(&url, "5s");
    let buckets = source
        .bucket_counts(
            &TableRef::new(database_of(&url), "t"),
            "at",
            Duration::from_secs(86_400),
            1_767_225_600,
            1_767_225_600 + 3 * 86_400,
        )
        .await
        .unwrap();
    let counts: Vec<(i64, f64)> = buckets.iter().map(|b| (b.start, b.rows)).collect();
    assert_eq!(counts, vec![(1_767_225_600, 23.0), (1_767_225_600 + 86_400, 24.0), (1_767_225_600 + 2 * 86_400, 24.0)]);
    source.close().await;
    agent.close().await;
    let _ = MetricKind::RowsAdded;
}

#[tokio::test]
async fn permission_timeout_and_hostile_names_on_mariadb() {
    let url = require!(mysql_db("errors").await);
    let db = database_of(&url);
    let user = crate::common::unique("ro");
    mysql_exec(
        &url,
        &[
            "CREATE TABLE secret (x INT)",
            "CREATE TABLE victim (x INT)",
            "CREATE TABLE `x``; DROP TABLE victim; --` (`we'ird` INT)",
            "INSERT INTO `x``; DROP TABLE victim; --` VALUES (1), (NULL)",
            &format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"),
            &format!("GRANT SELECT ON {db}.victim TO '{user}'@'%'"),
        ],
    )
    .await;
    let restricted = url.replacen("telltale:telltale@", &format!("{user}:pw@"), 1);
    let source = source_for(&restricted, "5s");
    let err = source.custom_metric("SELECT count(*) FROM secret").await.unwrap_err();
    assert!(matches!(err, SourceError::PermissionDenied { .. }), "{err:?}");
    source.close().await;

    let slow = source_for(&url, "1s");
    let started = std::time::Instant::now();
    let err = slow.custom_metric("SELECT SLEEP(5) + count(*) FROM information_schema.tables").await.unwrap_err();
    assert!(matches!(err, SourceError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    slow.close().await;

    let checks = "version: 1\nassets:\n  - source: wh\n    table: \"x`; DROP TABLE victim; --\"\n    monitors:\n      columns:\n        \"we'ird\": [null_rate]\n";
    let ws = Workspace::new(&config_with_source("mysql", &url, ""), &[("h.yaml", checks)]);
    let agent = ws.agent(Arc::new(SystemClock) as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let nr = outcomes
        .iter()
        .find(|o| o.subject.as_deref() == Some("we'ird.null_rate"))
        .unwrap_or_else(|| panic!("{outcomes:#?}"));
    assert_eq!(nr.value, Some(0.5));
    agent.close().await;
    let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM victim").fetch_one(&pool).await.unwrap();
    assert_eq!(n, 0);
    pool.close().await;
}
