//! Learned thresholds end to end on a real PostgreSQL table: after backfill, the agent flags a
//! partial load and a stopped loader, and leaves a healthy hour alone; on a new daily table the
//! cold-start rule flags a tenfold day; in an hourly table's second week the record rule flags a
//! tenfold hour its honestly wide learned range would hold; an excluded day excludes the bucket
//! of its rows (buckets are stored at their end, judged at their start).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use telltale::clock::{ManualClock, SharedClock};
use telltale::measure::MetricKind;
use telltale::runtime::Status;
use tokio_util::sync::CancellationToken;

use crate::common::{Workspace, config_with_source, pg_exec, postgres_db};
use crate::require;

/// 28 days of hourly loads with a daily rhythm (60–140 rows an hour), ending at `end`.
fn load_history(table: &str, end: DateTime<Utc>, last_hours: &str) -> String {
    let start = end - Duration::days(28);
    format!(
        "INSERT INTO {table} (at) SELECT h.t + make_interval(secs => i * 3599.0 / h.n) FROM \
         (SELECT t, {last_hours} AS n FROM (SELECT t, (100 + 40 * sin(2 * pi() * extract(hour FROM t) / 24))::int AS base \
           FROM generate_series('{start}'::timestamptz, '{end}'::timestamptz - interval '1 hour', interval '1 hour') t) b) h, \
         LATERAL generate_series(1, h.n) i WHERE h.n > 0",
        start = start.to_rfc3339(),
        end = end.to_rfc3339(),
    )
}

const CHECKS: &str = r#"version: 1
assets:
  - source: wh
    table: healthy
    monitors:
      volume: {timestamp_column: at, bucket: 1h}
  - source: wh
    table: partial
    monitors:
      volume: {timestamp_column: at, bucket: 1h}
  - source: wh
    table: stopped
    monitors:
      freshness: {timestamp_column: at}
      volume: {timestamp_column: at, bucket: 1h}
"#;

#[tokio::test]
async fn after_backfill_the_agent_flags_a_partial_load_and_a_stopped_loader() {
    let url = require!(postgres_db("detect").await);
    let end: DateTime<Utc> = "2026-06-10T12:00:00Z".parse().unwrap();
    let last = (end - Duration::hours(1)).to_rfc3339();
    let stop = (end - Duration::hours(1)).to_rfc3339();
    pg_exec(
        &url,
        &[
            "CREATE TABLE healthy (at timestamptz)",
            "CREATE TABLE partial (at timestamptz)",
            "CREATE TABLE stopped (at timestamptz)",
            &load_history("healthy", end, "base"),
            &load_history(
                "partial",
                end,
                &format!("CASE WHEN t = '{last}'::timestamptz THEN (base * 0.3)::int ELSE base END"),
            ),
            &load_history("stopped", end, &format!("CASE WHEN t >= '{stop}'::timestamptz THEN 0 ELSE base END")),
        ],
    )
    .await;
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("t.yaml", CHECKS)]);
    let clock = ManualClock::new(end + Duration::minutes(2));
    let agent = ws.agent(Arc::new(clock.clone()) as SharedClock).await;
    let token = CancellationToken::new();
    for table in ["healthy", "partial", "stopped"] {
        let asset = format!("wh.public.{table}").parse().unwrap();
        assert!(agent.needs_backfill(&asset).await);
        assert_eq!(agent.backfill(&asset, 28, &token).await.unwrap(), 28 * 24);
    }

    let healthy = agent.asset_job(&"wh.public.healthy".parse().unwrap(), &token).await;
    let rows = healthy.iter().find(|o| o.subject.as_deref() == Some("rows_added")).unwrap();
    assert_eq!(rows.status, Status::Recorded, "{rows:#?}");
    let verdict = rows.verdict.as_ref().expect("a learned verdict");
    assert!(!verdict.anomaly && verdict.history_points > 600, "{verdict:#?}");
    let expected = verdict.expected.unwrap();
    assert!(expected.low < rows.value.unwrap() && rows.value.unwrap() < expected.high, "{verdict:#?}");

    let partial = agent.asset_job(&"wh.public.partial".parse().unwrap(), &token).await;
    let rows = partial.iter().find(|o| o.subject.as_deref() == Some("rows_added")).unwrap();
    assert_eq!(rows.status, Status::Fail, "a 30% load is an anomaly: {rows:#?}");
    assert!(rows.message.starts_with("anomaly: "), "{}", rows.message);
    assert!(rows.verdict.as_ref().unwrap().alert);
    // The bucket from 11:00 to 12:00 (stored at its end) is judged as the 11:00 hour of its day.
    let message = rows.message.replace('\u{202f}', " ");
    assert!(message.contains("for a Wednesday 11:00"), "{message}");

    // The loader stopped an hour ago: the first empty bucket is a missed load...
    let stopped = agent.asset_job(&"wh.public.stopped".parse().unwrap(), &token).await;
    let rows = stopped.iter().find(|o| o.subject.as_deref() == Some("rows_added")).unwrap();
    assert_eq!(rows.status, Status::Fail, "an empty hour is a missed load: {rows:#?}");
    let fresh = stopped.iter().find(|o| o.monitor == "freshness").unwrap();
    assert_eq!(fresh.status, Status::Recorded, "an hour old is on time for an hourly table: {fresh:#?}");

    // ...and three hours later the table is late for its own hourly cadence.
    clock.set(end + Duration::hours(3));
    let later = agent.asset_job(&"wh.public.stopped".parse().unwrap(), &token).await;
    let fresh = later.iter().find(|o| o.monitor == "freshness").unwrap();
    assert_eq!(fresh.status, Status::Fail, "four silent hours on an hourly table: {fresh:#?}\n{later:#?}");
    assert!(fresh.message.contains("late"), "{}", fresh.message);

    // The continuous sweep sees it too, without a poll, and records the excursion once.
    let swept = agent.freshness_sweep().await;
    let late = swept.iter().find(|o| o.asset.as_str() == "wh.public.stopped").unwrap();
    assert_eq!(late.status, Status::Fail);
    agent.freshness_sweep().await;
    let anomalies = agent.store.verdicts(&"wh.public.stopped".parse().unwrap(), None, true, 100).await.unwrap();
    let freshness_alerts = anomalies.iter().filter(|v| v.kind == MetricKind::FreshnessLag && v.alert).count();
    assert!(freshness_alerts >= 1, "{anomalies:#?}");
    assert!(anomalies.iter().any(|v| v.kind == MetricKind::RowsAdded), "{anomalies:#?}");
    agent.close().await;
}

/// The agent on `checks` over the database at `url`, at `now`: backfills `table`'s last `days`
/// (expecting `buckets` buckets), runs its asset job and returns the rows-added outcome.
async fn rows_added_after_backfill(
    url: &str,
    checks: &str,
    table: &str,
    now: DateTime<Utc>,
    (days, buckets): (u32, usize),
) -> telltale::runtime::CheckOutcome {
    let ws = Workspace::new(&config_with_source("postgres", url, ""), &[("t.yaml", checks)]);
    let agent = ws.agent(Arc::new(ManualClock::new(now)) as SharedClock).await;
    let token = CancellationToken::new();
    let asset = format!("wh.public.{table}").parse().unwrap();
    assert_eq!(agent.backfill(&asset, days, &token).await.unwrap(), buckets);
    let outcomes = agent.asset_job(&asset, &token).await;
    let rows = outcomes.into_iter().find(|o| o.subject.as_deref() == Some("rows_added")).expect("a rows-added outcome");
    agent.close().await;
    rows
}

/// A new daily table: three ordinary days, then a day loaded ten times over.
const NEW_TABLE: &str = r#"version: 1
assets:
  - source: wh
    table: fresh_daily
    monitors:
      volume: {timestamp_column: at, bucket: 1d}
"#;

#[tokio::test]
async fn a_new_daily_table_loaded_ten_times_over_is_flagged_by_the_cold_start_rule() {
    let url = require!(postgres_db("cold").await);
    let end: DateTime<Utc> = "2026-06-10T00:00:00Z".parse().unwrap();
    let start = (end - Duration::days(4)).to_rfc3339();
    let spike = (end - Duration::days(1)).to_rfc3339();
    // 1 000 rows a day (10 000 on the last day), spread over the day.
    let insert = format!(
        "INSERT INTO fresh_daily (at) SELECT d.t + make_interval(secs => i * 86399.0 / d.n) FROM \
         (SELECT t, CASE WHEN t = '{spike}'::timestamptz THEN 10000 ELSE 1000 END AS n \
          FROM generate_series('{start}'::timestamptz, '{spike}'::timestamptz, interval '1 day') t) d, \
         LATERAL generate_series(1, d.n) i"
    );
    pg_exec(&url, &["CREATE TABLE fresh_daily (at timestamptz)", &insert]).await;
    let rows = rows_added_after_backfill(&url, NEW_TABLE, "fresh_daily", end + Duration::minutes(2), (4, 4)).await;
    assert_eq!(rows.value, Some(10_000.0), "{rows:#?}");
    assert_eq!(rows.status, Status::Fail, "a tenfold day on the fourth day of a table: {rows:#?}");
    let verdict = rows.verdict.as_ref().expect("the cold-start rule's verdict");
    assert!(verdict.anomaly && verdict.alert && verdict.history_points == 3, "{verdict:#?}");
    let message = rows.message.replace('\u{202f}', " ");
    assert!(message.contains("at least five times the largest of the 3 earlier points (1 000)"), "{message}");
    assert!(message.contains("still learning"), "{message}");
}

/// Rows per hour of a young hourly table: a daily rhythm, weekends at 0.4 of a weekday, 25 %
/// noise (seeded SplitMix64, sum of twelve uniforms), starting on a Monday.
fn noisy_weekly_hours(hours: usize, seed: u64) -> Vec<i64> {
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..hours)
        .map(|h| {
            let hour = (h % 24) as f64;
            let daily = 1.0 + 0.6 * ((hour - 14.0) / 24.0 * std::f64::consts::TAU).cos();
            let weekly = if (h / 24) % 7 >= 5 { 0.4 } else { 1.0 };
            let normal = (0..12).map(|_| uniform()).sum::<f64>() - 6.0;
            (200.0 * daily * weekly * (1.0 + 0.25 * normal)).round() as i64
        })
        .collect()
}

const YOUNG_HOURLY: &str = r#"version: 1
assets:
  - source: wh
    table: young_hourly
    monitors:
      volume: {timestamp_column: at, bucket: 1h}
"#;

#[tokio::test]
async fn a_tenfold_hour_in_the_second_week_of_an_hourly_table_is_flagged_by_the_record_rule() {
    let url = require!(postgres_db("record").await);
    // Nine days from Monday 2026-06-01; the last hour (Tuesday 23:00) loaded ten times over.
    let start: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
    let end = start + Duration::days(9);
    let mut hours = noisy_weekly_hours(9 * 24, 18);
    let last = hours.len() - 1;
    hours[last] *= 10;
    let counts = hours.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let insert = format!(
        "INSERT INTO young_hourly (at) SELECT '{start}'::timestamptz + (c.o - 1) * interval '1 hour' \
           + make_interval(secs => i * 3599.0 / c.n) \
         FROM unnest(ARRAY[{counts}]) WITH ORDINALITY AS c(n, o), LATERAL generate_series(1, c.n) i",
        start = start.to_rfc3339()
    );
    pg_exec(&url, &["CREATE TABLE young_hourly (at timestamptz)", &insert]).await;
    let rows =
        rows_added_after_backfill(&url, YOUNG_HOURLY, "young_hourly", end + Duration::minutes(2), (9, 9 * 24)).await;
    assert_eq!(rows.value, Some(hours[last] as f64), "{rows:#?}");
    assert_eq!(rows.status, Status::Fail, "a tenfold hour in the second week: {rows:#?}");
    let verdict = rows.verdict.as_ref().expect("a verdict");
    assert!(verdict.anomaly && verdict.alert, "{verdict:#?}");
    let message = rows.message.replace('\u{202f}', " ");
    // The learned range holds it (the weekly rhythm is not known yet): the record rule flags it.
    assert!(message.contains("at least four times the largest of this hour of the day"), "{message}");
    assert!(message.contains("whatever the learned range, this hard rule flags it"), "{message}");
}

/// A daily table with a holiday on its tenth day, excluded by date.
const HOLIDAY: &str = r#"version: 1
assets:
  - source: wh
    table: daily_loads
    detection:
      exclude:
        - {from: 2026-06-10, to: 2026-06-11}
    monitors:
      volume: {timestamp_column: at, bucket: 1d}
"#;

#[tokio::test]
async fn an_excluded_day_excludes_the_bucket_of_its_rows() {
    let url = require!(postgres_db("holiday").await);
    // About 1 000 rows a day from Monday 2026-06-01; none on the holiday, Wednesday 06-10.
    let start: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
    let holiday = start + Duration::days(9);
    let insert = format!(
        "INSERT INTO daily_loads (at) SELECT d.t + make_interval(secs => i * 86399.0 / d.n) FROM \
         (SELECT t, CASE WHEN t = '{holiday}'::timestamptz THEN 0 ELSE 1000 + 37 * (extract(day FROM t)::int % 5) END AS n \
          FROM generate_series('{start}'::timestamptz, '{holiday}'::timestamptz, interval '1 day') t) d, \
         LATERAL generate_series(1, d.n) i WHERE d.n > 0",
        start = start.to_rfc3339(),
        holiday = holiday.to_rfc3339(),
    );
    pg_exec(&url, &["CREATE TABLE daily_loads (at timestamptz)", &insert]).await;
    // The holiday's bucket (06-10 00:00 to 06-11 00:00) is complete, stored at its end.
    let now = holiday + Duration::days(1) + Duration::minutes(2);
    let rows = rows_added_after_backfill(&url, HOLIDAY, "daily_loads", now, (10, 10)).await;
    assert_eq!(rows.value, Some(0.0), "{rows:#?}");
    // Judged as the holiday's rows, so excluded: not a missed load.
    assert_ne!(rows.status, Status::Fail, "{rows:#?}");
    assert!(rows.message.contains("inside an excluded time range"), "{}", rows.message);
}
