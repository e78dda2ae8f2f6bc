//! The metric store behaves the same on SQLite and PostgreSQL.

use chrono::{DateTime, Utc};
use telltale::measure::{AssetId, Column, Measurement, MetricKind, ValueCounts};
use telltale::store::{AssetRecord, AssetState, ErrorRecord, MetadataBatch, Store};

use crate::common::postgres_db;
use crate::require;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn exercise(store: Store) {
    let asset: AssetId = "wh.public.orders".parse().unwrap();
    let other: AssetId = "wh2.public.orders".parse().unwrap();
    let col = |n: &str, ty: &str| Column { name: n.into(), data_type: ty.into(), nullable: true };

    // A metadata batch lands in one transaction.
    let batch = MetadataBatch {
        at: t("2026-01-01T00:00:00Z"),
        assets: vec![AssetRecord {
            asset: asset.clone(),
            source: "wh".into(),
            schema: "public".into(),
            table: "orders".into(),
            origin: "check".into(),
            owner: Some("@team".into()),
            tier: Some(1),
            tags: vec!["revenue".into()],
            check_file: Some("checks/o.yaml:3".into()),
            first_seen_at: t("2026-01-01T00:00:00Z"),
            last_seen_at: t("2026-01-01T00:00:00Z"),
        }],
        states: vec![(
            asset.clone(),
            AssetState {
                change_signature: Some("1:2:3".into()),
                last_changed_at: Some(t("2025-12-31T23:00:00Z")),
                change_observed: true,
                last_row_count: Some(10.0),
            },
        )],
        snapshots: vec![(asset.clone(), vec![col("id", "int"), col("amount", "numeric")], vec![])],
        measurements: vec![Measurement::new(&asset, MetricKind::RowCount, 10.0, t("2026-01-01T00:00:00Z"), "metadata")],
    };
    store.save_metadata(&batch).await.unwrap();
    let mut again = batch.clone();
    again.at = t("2026-01-01T01:00:00Z");
    again.assets[0].last_seen_at = again.at;
    again.assets[0].first_seen_at = again.at;
    again.snapshots = vec![(asset.clone(), vec![col("id", "int")], vec![])];
    store.save_metadata(&again).await.unwrap();

    let assets = store.assets().await.unwrap();
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0].first_seen_at, t("2026-01-01T00:00:00Z"), "first sighting is kept");
    assert_eq!(assets[0].last_seen_at, t("2026-01-01T01:00:00Z"));
    assert_eq!(assets[0].tags, vec!["revenue"]);
    assert_eq!(assets[0].tier, Some(1));

    let states = store.asset_states("wh").await.unwrap();
    assert_eq!(states[&asset].change_signature.as_deref(), Some("1:2:3"));
    assert!(store.asset_states("wh2").await.unwrap().is_empty(), "prefix match is by whole source name");
    let schemas = store.latest_schemas("wh").await.unwrap();
    assert_eq!(schemas[&asset].len(), 1, "the newest snapshot wins");
    assert_eq!(store.schema_history(&asset, 10).await.unwrap().len(), 2);

    // History, newest values, idempotent upserts, filters.
    let mut ms = Vec::new();
    for h in 0..48 {
        let at = t("2026-01-02T00:00:00Z") + chrono::Duration::hours(h);
        ms.push(Measurement::new(&asset, MetricKind::RowsAdded, h as f64, at, "backfill"));
        ms.push(Measurement::new(&asset, MetricKind::NullRate, 0.01, at, "c").with_column("amount"));
    }
    ms.push(Measurement::new(&other, MetricKind::RowsAdded, 5.0, t("2026-01-02T00:00:00Z"), "x"));
    store.record(&ms).await.unwrap();
    store.record(&ms[..10]).await.unwrap();
    let added = store.history(&asset, Some(MetricKind::RowsAdded), Some(""), None, 1000).await.unwrap();
    assert_eq!(added.len(), 48);
    assert!(added.windows(2).all(|w| w[0].observed_at < w[1].observed_at), "oldest first");
    let recent = store.history(&asset, None, None, Some(t("2026-01-03T22:00:00Z")), 1000).await.unwrap();
    assert_eq!(recent.len(), 4);
    let latest = store.latest(&asset).await.unwrap();
    let kinds: Vec<(MetricKind, &str, f64)> = latest.iter().map(|m| (m.kind, m.column.as_str(), m.value)).collect();
    assert_eq!(
        kinds,
        vec![
            (MetricKind::NullRate, "amount", 0.01),
            (MetricKind::RowCount, "", 10.0),
            (MetricKind::RowsAdded, "", 47.0)
        ]
    );

    store
        .record_error(&ErrorRecord {
            asset: asset.clone(),
            check: "metadata".into(),
            class: "unreachable".into(),
            message: "cannot reach".into(),
            occurred_at: t("2026-01-05T00:00:00Z"),
        })
        .await
        .unwrap();
    let err = store.last_error(&asset).await.unwrap().unwrap();
    assert_eq!(err.class, "unreachable");
    assert_eq!(store.errors_since(t("2026-01-01T00:00:00Z")).await.unwrap(), 1);
    assert!(store.ping().await);

    // Frequency tables and samples of columns: the rest of the rows (a NULL category) and
    // multiplicities round-trip, re-saving a profile replaces it, trimming keeps the newest.
    let kind = MetricKind::CategoryShift;
    for (day, rest) in [(1, 0), (2, 5), (3, 7)] {
        let counts = ValueCounts { values: vec![("paid".into(), 60 + day), ("o'k".into(), 30)], rest };
        let at = t(&format!("2026-01-0{day}T12:00:00Z"));
        store.record_value_counts(&asset, kind, "status", at, &counts).await.unwrap();
        store.record_value_counts(&asset, kind, "status", at, &counts).await.unwrap();
    }
    let frames = store
        .value_count_history(&asset, kind, "status", t("2026-01-01T00:00:00Z"), t("2026-01-03T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(frames.len(), 2, "[since, before): {frames:?}");
    assert_eq!(frames[1].1, ValueCounts { values: vec![("paid".into(), 62), ("o'k".into(), 30)], rest: 5 });
    assert_eq!(frames[1].1.total(), 97);
    assert!(
        store
            .value_count_history(
                &asset,
                MetricKind::DistributionShift,
                "status",
                t("2026-01-01T00:00:00Z"),
                t("2026-02-01T00:00:00Z")
            )
            .await
            .unwrap()
            .is_empty()
    );
    let trimmed = store.trim_value_counts(&asset, kind, "status", t("2026-01-01T00:00:00Z"), 2).await.unwrap();
    assert_eq!(trimmed, 2, "the oldest profile's two rows");
    let left = store
        .value_count_history(&asset, kind, "status", t("2026-01-01T00:00:00Z"), t("2026-02-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
        vec![t("2026-01-02T12:00:00Z"), t("2026-01-03T12:00:00Z")]
    );
    store.trim_value_counts(&asset, kind, "status", t("2026-01-03T00:00:00Z"), 10).await.unwrap();
    assert_eq!(
        store
            .value_count_history(&asset, kind, "status", t("2026-01-01T00:00:00Z"), t("2026-02-01T00:00:00Z"))
            .await
            .unwrap()
            .len(),
        1
    );

    // Retention: everything observed before the cut goes, the rest stays.
    let deleted = store.prune(t("2026-01-03T00:00:00Z")).await.unwrap();
    assert_eq!(deleted, 1 + 24 * 2 + 1, "the row_count, a day of rows_added and null_rate, wh2's point");
    let left = store.history(&asset, Some(MetricKind::RowsAdded), Some(""), None, 1000).await.unwrap();
    assert_eq!(left.len(), 24);
    assert_eq!(store.errors_since(t("2026-01-01T00:00:00Z")).await.unwrap(), 1, "the error is newer than the cut");
    store.close().await;
}

#[tokio::test]
async fn the_sqlite_store_keeps_history_state_and_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/dir/telltale.db", dir.path().display());
    exercise(Store::open(&url).await.unwrap()).await;
    // Reopening runs no migration twice and keeps the data.
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.assets().await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn the_postgres_store_keeps_history_state_and_schemas() {
    let url = require!(postgres_db("store").await);
    exercise(Store::open(&url).await.unwrap()).await;
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.assets().await.unwrap().len(), 1);
    store.close().await;
}
