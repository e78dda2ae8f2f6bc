//! Telemetry benchmark: `/metrics` for 10,000 assets (render, memory, the real HTTP scrape) side
//! by side with the prometheus-client crate encoding the same series, and the tracing overhead
//! of a check run with and without the OTLP exporter. Method and published figures:
//! docs/benchmarks.md ("Telemetry").
//!
//! ```sh
//! cargo run --release --example telemetry                      # everything (~3 min)
//! cargo run --release --example telemetry -- --only render     # or http, tracing
//! cargo run --release --example telemetry -- --assets 10000 --renders 200 --tables 100 --runs 40
//! bench/telemetry-callgrind.sh                                 # tracing overhead in instructions
//! ```
//!
//! 1. **Render.** One [`Metrics`] registry filled as telltale fills it for `--assets` assets (28
//!    series per asset), rendered `--renders` times after 3 warm-ups: wall time and the thread's
//!    CPU time (scheduler accounting, averaged over all renders), median, p99 and max. Peers in the
//!    same run, same series, same process: (a) the prometheus-client crate (a `Family` of
//!    `Gauge<f64>` per metric, its text encoder), (b) plain `write!` lines into a `String` (the
//!    floor of any text exposition: no HELP/TYPE, no escaping). Memory: VmRSS before and after
//!    filling each registry, and the growth of the peak (VmHWM) over the renders.
//! 2. **HTTP.** The real `GET /metrics`: an agent with `--assets` checked assets and a SQLite
//!    store behind the API server on loopback, the process registry filled the same way; each
//!    scrape is timed from request to the last body byte read by a reqwest client. The store
//!    refresh (incident gauges, off the scrape path since the scrape only wakes it) is timed on
//!    its own.
//! 3. **Tracing overhead.** A temp workspace with a SQLite source of `--tables` tables (1,000 rows
//!    each), one check per table (freshness on a timestamp column, exact row count, two column
//!    null rates), a SQLite store. `Agent::run_once` (one metadata scan + every asset job: the
//!    whole check-run path) is timed `--runs` times per configuration, interleaved A/B/A/B on a
//!    current-thread runtime: (A) the production default without traces (log lines at `warn`),
//!    (B) the same plus the OpenTelemetry layer exporting every span over OTLP (`--protocol http`,
//!    http/protobuf, telltale's default; or `grpc`) through the batch processor to a collector
//!    (an axum server decoding the requests, or `fake-opentelemetry-collector`) in a **child process**, so
//!    the receiving side costs this process nothing. Per run: wall time and the CPU time of every
//!    thread of the process (`/proc/self/task/*/schedstat`), summed over all runs of a
//!    configuration. Reported: medians, the median of
//!    the paired wall differences B−A with a distribution-free 95% interval, the CPU difference
//!    of the sums, and the spans received.
//!    `--postgres URL` checks the same tables on a PostgreSQL server instead (a warehouse's round
//!    trips). `--mode a|b` runs one configuration alone (for `bench/telemetry-callgrind.sh`, which counts
//!    instructions under valgrind: repeatable on a loaded machine).

use std::fmt::Write as _;
use std::io::{BufRead, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use telltale::check::CheckSet;
use telltale::clock::{SharedClock, SystemClock};
use telltale::config::Config;
use telltale::runtime::Agent;
use telltale::telemetry::config::{Protocol, Sampler, TraceSettings};
use telltale::telemetry::metrics::{self, Metrics};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Parser, Debug)]
#[command(about = "telltale telemetry benchmark (docs/benchmarks.md)")]
struct Args {
    /// Assets in the rendered registry.
    #[arg(long, default_value_t = 10_000)]
    assets: usize,
    /// Timed renders (and HTTP scrapes) per encoder.
    #[arg(long, default_value_t = 200)]
    renders: usize,
    /// Tables (and checks) of the traced check run.
    #[arg(long, default_value_t = 100)]
    tables: usize,
    /// Timed check runs per configuration.
    #[arg(long, default_value_t = 40)]
    runs: usize,
    /// `render`, `http` or `tracing` alone.
    #[arg(long)]
    only: Option<String>,
    /// `a` (no traces) or `b` (OTLP exporter): run that configuration alone, `--runs` times.
    #[arg(long)]
    mode: Option<String>,
    /// Tracing: check tables on this PostgreSQL server (`postgres://…`; tables `tbench<N>` are
    /// created, refilled and left there) instead of an in-process SQLite file.
    #[arg(long)]
    postgres: Option<String>,
    /// Tracing: the OTLP protocol of the exporter, `http` (http/protobuf, telltale's default) or
    /// `grpc`.
    #[arg(long, default_value = "http")]
    protocol: String,
    /// Internal: run the OTLP collector, print its endpoint, count spans until stdin closes.
    #[arg(long, hide = true)]
    collector: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.collector {
        return collector(&args.protocol);
    }
    if let Some(mode) = &args.mode {
        return single_mode(&args, mode);
    }
    let only = args.only.as_deref();
    if only.is_none() || only == Some("render") {
        render(&args);
    }
    if only.is_none() || only == Some("http") {
        http(&args)?;
    }
    if only.is_none() || only == Some("tracing") {
        tracing_overhead(&args)?;
    }
    Ok(())
}

/// `VmHWM` and `VmRSS` of this process, in MB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets the peak RSS (`VmHWM`) to the current RSS, so the next peak is the next phase's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU time the calling thread has run, in ms, from the scheduler's accounting
/// (`/proc/thread-self/schedstat`): what the work costs on a free core, whatever else runs on
/// the machine. The running thread's figure lags by up to one scheduler tick, so it is read
/// around many repetitions and divided, never around one.
fn thread_cpu_ms() -> f64 {
    schedstat_ns("/proc/thread-self/schedstat") / 1e6
}

/// CPU time of every thread of this process, in ms (same accounting, summed over the threads).
fn process_cpu_ms() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    tasks.flatten().map(|t| schedstat_ns(&t.path().join("schedstat").to_string_lossy())).sum::<f64>() / 1e6
}

fn schedstat_ns(path: &str) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<f64>().ok()))
        .unwrap_or(0.0)
}

/// Median, p99 and max of samples.
struct Stats {
    median: f64,
    p99: f64,
    max: f64,
}

fn stats(mut xs: Vec<f64>) -> Stats {
    xs.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    Stats { median: at(0.5), p99: at(0.99), max: xs[xs.len() - 1] }
}

fn median(xs: Vec<f64>) -> f64 {
    stats(xs).median
}

/// The median of `xs` with a distribution-free 95% confidence interval (order statistics).
fn median_ci(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len() as f64;
    let half = 1.96 * n.sqrt() / 2.0;
    let lo = ((n / 2.0 - half).floor().max(0.0)) as usize;
    let hi = ((n / 2.0 + half).ceil() as usize).min(xs.len() - 1);
    (xs[xs.len() / 2], xs[lo], xs[hi])
}

/// The series telltale keeps for one asset, as (metric, label values, value).
fn asset_series(i: usize) -> Vec<(&'static metrics::MetricDef, Vec<String>, f64)> {
    let source = format!("wh{}", i % 4);
    let asset = format!("{source}.analytics.table_{i:05}");
    let v = i as f64;
    let mut out = vec![
        (&metrics::ASSET_INFO, vec![source.clone(), asset.clone(), format!("@team-{}", i % 20), "2".into()], 1.0),
        (&metrics::ASSET_LAST_UPDATE, vec![source.clone(), asset.clone()], 1.76e9 + v),
        (&metrics::ASSET_FRESHNESS_LAG, vec![source.clone(), asset.clone()], 300.25 + v),
        (&metrics::ASSET_ROWS, vec![source.clone(), asset.clone()], 1e6 + v),
        (&metrics::ASSET_ROWS_ADDED, vec![source.clone(), asset.clone()], 1000.0 + v),
        (&metrics::ASSET_STATUS, vec![source.clone(), asset.clone()], (i % 3) as f64),
        (&metrics::ASSET_DOWNTIME, vec![source.clone(), asset.clone()], (i % 7) as f64 * 60.0),
        (&metrics::ASSET_SLO_BUDGET_LEFT, vec![source.clone(), asset.clone()], 25_000.0),
        (&metrics::ASSET_SLO_BUDGET_LEFT_RATIO, vec![source.clone(), asset.clone()], 0.96),
    ];
    for column in ["customer_id", "amount"] {
        out.push((&metrics::COLUMN_NULL_RATIO, vec![source.clone(), asset.clone(), column.into()], 0.0123));
        out.push((
            &metrics::MONITOR_VALUE,
            vec![source.clone(), asset.clone(), "null_rate".into(), column.into()],
            0.0123,
        ));
    }
    for monitor in ["row_count", "rows_added", "freshness_lag"] {
        let labels = vec![source.clone(), asset.clone(), monitor.to_string(), String::new()];
        out.push((&metrics::MONITOR_VALUE, labels.clone(), v));
        out.push((&metrics::MONITOR_EXPECTED_LOW, labels.clone(), v * 0.9));
        out.push((&metrics::MONITOR_EXPECTED_HIGH, labels.clone(), v * 1.1));
        out.push((&metrics::MONITOR_ANOMALY_SCORE, labels.clone(), 0.4 + v / 1e5));
        out.push((&metrics::MONITOR_ANOMALOUS, labels, 0.0));
    }
    out
}

fn fill(registry: &Metrics, assets: usize) -> usize {
    let mut series = 0;
    for i in 0..assets {
        for (def, values, value) in asset_series(i) {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            registry.set(def, &values, value);
            series += 1;
        }
    }
    series
}

/// Times `renders` calls of `encode` (after 3 warm-ups): wall and thread CPU per call, the
/// output size, and how much the peak RSS grew above the RSS before the renders.
fn time_renders(renders: usize, mut encode: impl FnMut() -> usize) -> (Stats, f64, usize, f64) {
    for _ in 0..3 {
        std::hint::black_box(encode());
    }
    let (_, rss) = memory();
    reset_peak();
    let mut wall = Vec::new();
    let mut bytes = 0;
    let cpu_started = thread_cpu_ms();
    for _ in 0..renders {
        let started = Instant::now();
        bytes = std::hint::black_box(encode());
        wall.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let cpu = (thread_cpu_ms() - cpu_started) / renders as f64;
    let (hwm, _) = memory();
    (stats(wall), cpu, bytes, (hwm - rss).max(0.0))
}

type PeerLabels = Vec<(&'static str, String)>;

fn render(args: &Args) {
    println!("== /metrics render: {} assets, {} renders per encoder ==", args.assets, args.renders);
    let (_, rss_empty) = memory();
    let registry = Metrics::new();
    let started = Instant::now();
    let series = fill(&registry, args.assets);
    let fill_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (_, rss_filled) = memory();
    let (wall, cpu, bytes, peak) = time_renders(args.renders, || registry.encode().len());
    let text = registry.encode_text();
    println!(
        "series: {series} ({:.1} per asset); exposition {:.1} MB OpenMetrics, {:.1} MB text 0.0.4",
        series as f64 / args.assets as f64,
        bytes as f64 / 1e6,
        text.len() as f64 / 1e6
    );
    drop(text);
    let (text_wall, _, _, _) = time_renders(args.renders / 4 + 1, || registry.encode_text().len());
    let held = rss_filled - rss_empty;
    drop(registry);

    // Peer (a): prometheus-client, one Family<labels, Gauge<f64>> per metric.
    let (_, rss_before_peer) = memory();
    let mut peer = prometheus_client::registry::Registry::default();
    let mut families: std::collections::HashMap<&str, Family<PeerLabels, Gauge<f64, AtomicU64>>> =
        std::collections::HashMap::new();
    for def in metrics::DEFINITIONS.iter().filter(|d| d.kind == metrics::Kind::Gauge) {
        let family = Family::<PeerLabels, Gauge<f64, AtomicU64>>::default();
        peer.register(def.name, def.help.trim_end_matches('.'), family.clone());
        families.insert(def.name, family);
    }
    let started = Instant::now();
    for i in 0..args.assets {
        for (def, values, value) in asset_series(i) {
            let labels: PeerLabels = def.labels.iter().copied().zip(values).collect();
            families[def.name].get_or_create(&labels).set(value);
        }
    }
    let peer_fill_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (_, rss_peer) = memory();
    let (peer_wall, peer_cpu, peer_bytes, peer_peak) = time_renders(args.renders, || {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &peer);
        out.len()
    });
    let peer_held = rss_peer - rss_before_peer;
    drop(families);
    drop(peer);

    // Peer (b): the same samples through plain `write!` (the floor of a text exposition).
    type Sample<'a> = (&'a str, Vec<(&'a str, String)>, f64);
    let plain: Vec<Sample> = (0..args.assets)
        .flat_map(asset_series)
        .map(|(def, values, v)| (def.name, def.labels.iter().copied().zip(values).collect(), v))
        .collect();
    let (floor_wall, floor_cpu, floor_bytes, _) = time_renders(args.renders, || {
        let mut out = String::with_capacity(bytes);
        for (name, labels, value) in &plain {
            out.push_str(name);
            out.push('{');
            for (k, v) in labels {
                let _ = write!(out, "{k}=\"{v}\",");
            }
            let _ = writeln!(out, "}} {value}");
        }
        out.len()
    });

    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>10} {:>8} {:>11} {:>10}",
        "encoder", "median", "p99", "max", "CPU mean", "MB out", "held MB", "peak +MB"
    );
    let row = |name: &str, w: &Stats, c: f64, b: usize, held: f64, peak: f64| {
        println!(
            "{name:<44} {:>6.1} ms {:>6.1} ms {:>6.1} ms {:>7.1} ms {:>8.1} {:>11.0} {:>10.0}",
            w.median,
            w.p99,
            w.max,
            c,
            b as f64 / 1e6,
            held,
            peak
        );
    };
    row("telltale Metrics::encode (OpenMetrics)", &wall, cpu, bytes, held, peak);
    println!(
        "{:<44} {:>6.1} ms {:>6.1} ms {:>6.1} ms",
        "telltale Metrics::encode_text (0.0.4)", text_wall.median, text_wall.p99, text_wall.max
    );
    row("peer: prometheus-client 0.25 text::encode", &peer_wall, peer_cpu, peer_bytes, peer_held, peer_peak);
    row("floor: plain write! lines (no HELP/TYPE)", &floor_wall, floor_cpu, floor_bytes, 0.0, 0.0);
    println!(
        "fill (set every series once): telltale {fill_ms:.0} ms, prometheus-client {peer_fill_ms:.0} ms; telltale holds {:.0} bytes/series",
        held * 1024.0 * 1024.0 / series as f64
    );
    println!(
        "target <= 100 ms per render: {} (median {:.1} ms, p99 {:.1} ms wall; CPU mean {:.1} ms)",
        if wall.p99 <= 100.0 {
            "met at p99"
        } else if wall.median <= 100.0 {
            "met at the median"
        } else {
            "MISSED"
        },
        wall.median,
        wall.p99,
        cpu
    );
    println!();
}

/// An agent with `assets` checked assets (SQLite store, sources never queried).
fn scrape_agent(dir: &Path, assets: usize, rt: &tokio::runtime::Runtime) -> Result<Arc<Agent>> {
    std::fs::create_dir_all(dir.join("checks"))?;
    std::fs::write(
        dir.join("telltale.yaml"),
        "version: 1\nstore: sqlite://state/telltale.db\nsources:\n  wh0: {kind: sqlite, url: \"sqlite://wh.db\"}\n  wh1: {kind: sqlite, url: \"sqlite://wh.db\"}\n  wh2: {kind: sqlite, url: \"sqlite://wh.db\"}\n  wh3: {kind: sqlite, url: \"sqlite://wh.db\"}\nchecks: [checks/]\n",
    )?;
    let mut checks = String::from("version: 1\nassets:\n");
    for i in 0..assets {
        checks.push_str(&format!(
            "  - {{source: wh{}, table: analytics.table_{i:05}, owner: \"@team-{}\", tier: 2, slo: 99%, monitors: {{schema: true}}}}\n",
            i % 4,
            i % 20
        ));
    }
    std::fs::write(dir.join("checks/all.yaml"), checks)?;
    rt.block_on(async {
        let config = Config::load(&dir.join("telltale.yaml")).context("config")?;
        let checks = CheckSet::load(&config).map_err(|e| anyhow::anyhow!("checks: {e}"))?;
        Agent::new(config, checks, Arc::new(SystemClock) as SharedClock).await.context("agent")
    })
}

/// The real `GET /metrics` over loopback, and the store refresh that runs beside it.
fn http(args: &Args) -> Result<()> {
    println!("== GET /metrics over HTTP: {} checked assets ==", args.assets);
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let agent = scrape_agent(dir.path(), args.assets, &rt)?;
    fill(metrics::global(), args.assets);
    let mut refresh = Vec::new();
    for _ in 0..(args.renders / 10).max(5) {
        let started = Instant::now();
        rt.block_on(metrics::refresh_from_store(&agent));
        refresh.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let shutdown = CancellationToken::new();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let server =
        rt.spawn(telltale::api::serve(listener, telltale::api::ApiState { agent: agent.clone() }, shutdown.clone()));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/metrics");
    let scrape = |accept: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        rt.block_on(async move {
            let started = Instant::now();
            let body = client.get(&url).header("accept", accept).send().await?.bytes().await?;
            anyhow::Ok((started.elapsed().as_secs_f64() * 1000.0, body.len()))
        })
    };
    const OPEN_METRICS: &str = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    for _ in 0..3 {
        scrape(OPEN_METRICS)?;
    }
    let (_, rss) = memory();
    reset_peak();
    let (mut times, mut bytes) = (Vec::new(), 0);
    for _ in 0..args.renders {
        let (ms, n) = scrape(OPEN_METRICS)?;
        times.push(ms);
        bytes = n;
    }
    let (hwm, _) = memory();
    let mut text_times = Vec::new();
    for _ in 0..(args.renders / 4).max(5) {
        text_times.push(scrape("text/plain")?.0);
    }
    let (s, t, r) = (stats(times), stats(text_times), stats(refresh));
    println!(
        "scrape, OpenMetrics ({:.1} MB): median {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} scrapes (request to last byte, client included)",
        bytes as f64 / 1e6,
        s.median,
        s.p99,
        s.max,
        args.renders
    );
    println!("scrape, text 0.0.4:  median {:.1} ms, p99 {:.1} ms", t.median, t.p99);
    println!("store refresh (background, not on the scrape path): median {:.1} ms, p99 {:.1} ms", r.median, r.p99);
    println!("peak RSS over the scrapes: {hwm:.0} MB, {:.0} MB above the RSS before them", (hwm - rss).max(0.0));
    println!(
        "target <= 100 ms per scrape: {}",
        if s.p99 <= 100.0 {
            "met at p99"
        } else if s.median <= 100.0 {
            "met at the median"
        } else {
            "MISSED"
        }
    );
    shutdown.cancel();
    let _ = rt.block_on(server);
    rt.block_on(agent.close());
    println!();
    Ok(())
}

fn workspace(dir: &Path, tables: usize) -> Result<()> {
    std::fs::create_dir_all(dir.join("checks"))?;
    let db = dir.join("wh.db");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", db.display());
        let pool = sqlx::SqlitePool::connect(&url).await?;
        for t in 0..tables {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE t{t} (id INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL, created_at TEXT)"
            )))
            .execute(&pool)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                 INSERT INTO t{t} (customer_id, amount, created_at) \
                 SELECT CASE WHEN i % 50 = 0 THEN NULL ELSE i END, i * 1.5, datetime('now', '-' || i || ' minutes') FROM n"
            )))
            .execute(&pool)
            .await?;
        }
        pool.close().await;
        anyhow::Ok(())
    })?;
    let source = format!("kind: sqlite\n    url: sqlite://{}", db.display());
    write_config(dir, &source, tables, "t")
}

/// `telltale.yaml` with the source `wh` (`source`: its settings, indented for the block) and
/// one check per table `<prefix><N>`: freshness, exact row count, two column null rates.
fn write_config(dir: &Path, source: &str, tables: usize, prefix: &str) -> Result<()> {
    std::fs::write(
        dir.join("telltale.yaml"),
        format!("version: 1\nstore: sqlite://state/telltale.db\nsources:\n  wh:\n    {source}\nchecks: [checks/]\n"),
    )?;
    let mut checks = String::from("version: 1\nassets:\n");
    for t in 0..tables {
        checks.push_str(&format!(
            "  - source: wh\n    table: {prefix}{t}\n    monitors:\n      freshness: {{timestamp_column: created_at, max_age: 1d}}\n      volume: {{exact: true, row_count: {{min: 1}}}}\n      columns:\n        customer_id: {{null_rate: {{max: 0.5}}}}\n        amount: {{null_rate: {{max: 0.5}}}}\n"
        ));
    }
    std::fs::write(dir.join("checks/bench.yaml"), checks)?;
    Ok(())
}

/// The tracing workspace over a PostgreSQL server: the same tables, rows and checks as
/// [`workspace`], so the check run pays a network round trip per query as against a warehouse.
fn postgres_workspace(dir: &Path, tables: usize, url: &str) -> Result<()> {
    std::fs::create_dir_all(dir.join("checks"))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(url).await.context("connect to --postgres")?;
        for t in 0..tables {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS tbench{t}"))).execute(&pool).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE tbench{t} (id serial PRIMARY KEY, customer_id integer, amount float8, created_at timestamptz)"
            )))
            .execute(&pool)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO tbench{t} (customer_id, amount, created_at) \
                 SELECT CASE WHEN i % 50 = 0 THEN NULL ELSE i END, i * 1.5, now() - i * interval '1 minute' \
                 FROM generate_series(1, 1000) AS i"
            )))
            .execute(&pool)
            .await?;
        }
        sqlx::query("ANALYZE").execute(&pool).await?;
        pool.close().await;
        anyhow::Ok(())
    })?;
    let source = format!("kind: postgres\n    url: \"{url}\"\n    include: [\"public.tbench*\"]");
    write_config(dir, &source, tables, "public.tbench")
}

/// Child process: the OTLP collector (gRPC: `fake-opentelemetry-collector`; http/protobuf: an
/// axum server decoding each `POST /v1/traces`). Prints its endpoint, then counts the spans it
/// receives until stdin closes, and prints the count.
fn collector(protocol: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let http = protocol == "http";
    rt.block_on(async {
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&received);
        if http {
            use opentelemetry_proto::tonic::collector::trace::v1::{
                ExportTraceServiceRequest, ExportTraceServiceResponse,
            };
            use prost::Message;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            println!("http://{}/v1/traces", listener.local_addr()?);
            let app = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let counter = Arc::clone(&counter);
                    async move {
                        let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                            return (axum::http::StatusCode::BAD_REQUEST, Vec::new());
                        };
                        let spans: usize =
                            request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
                        counter.fetch_add(spans, std::sync::atomic::Ordering::Relaxed);
                        (axum::http::StatusCode::OK, ExportTraceServiceResponse::default().encode_to_vec())
                    }
                }),
            );
            tokio::spawn(async move { axum::serve(listener, app).await });
        } else {
            let mut collector =
                fake_opentelemetry_collector::FakeCollectorServer::start().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", collector.endpoint());
            tokio::spawn(async move {
                loop {
                    let n = collector.exported_spans(1, Duration::from_millis(200)).await.len();
                    counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        std::io::stdout().flush()?;
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        println!("{}", received.load(std::sync::atomic::Ordering::Relaxed));
        anyhow::Ok(())
    })
}

/// The collector child process and its endpoint.
struct Collector {
    child: std::process::Child,
    endpoint: String,
}

impl Collector {
    fn start(protocol: &str) -> Result<Collector> {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .arg("--collector")
            .args(["--protocol", protocol])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut endpoint = String::new();
        std::io::BufReader::new(child.stdout.as_mut().context("collector stdout")?).read_line(&mut endpoint)?;
        Ok(Collector { child, endpoint: endpoint.trim().to_string() })
    }

    /// Stops the collector; returns the spans it received.
    fn finish(mut self) -> Result<usize> {
        drop(self.child.stdin.take());
        let out = self.child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0))
    }
}

struct Traced {
    rt: tokio::runtime::Runtime,
    agent: Arc<Agent>,
    _dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Traced {
    fn new(tables: usize, postgres: Option<&str>) -> Result<Traced> {
        let dir = tempfile::tempdir()?;
        match postgres {
            Some(url) => postgres_workspace(dir.path(), tables, url)?,
            None => workspace(dir.path(), tables)?,
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let agent = rt.block_on(async {
            let config = Config::load(&dir.path().join("telltale.yaml")).context("config")?;
            let checks = CheckSet::load(&config).map_err(|e| anyhow::anyhow!("checks: {e}"))?;
            Agent::new(config, checks, Arc::new(SystemClock) as SharedClock).await.context("agent")
        })?;
        Ok(Traced { rt, agent, _dir: dir, shutdown: CancellationToken::new() })
    }

    fn pipeline(&self, endpoint: &str, protocol: &str) -> Result<telltale::telemetry::Telemetry> {
        let settings = TraceSettings {
            endpoint: endpoint.to_string(),
            protocol: if protocol == "http" { Protocol::HttpProtobuf } else { Protocol::Grpc },
            headers: vec![],
            timeout: Duration::from_secs(10),
            sampler: Sampler::AlwaysOn,
            resource: vec![("service.name".into(), "telltale-bench".into())],
        };
        Ok(self.rt.block_on(async { telltale::telemetry::otel::pipeline(&settings) })?)
    }

    /// One check run under `dispatch`: (wall ms, process CPU ms, outcomes).
    fn run(&self, dispatch: &tracing::Dispatch) -> (f64, f64, usize) {
        tracing::dispatcher::with_default(dispatch, || {
            let (started, cpu) = (Instant::now(), process_cpu_ms());
            let outcomes = self.rt.block_on(self.agent.run_once(&self.shutdown));
            (started.elapsed().as_secs_f64() * 1000.0, process_cpu_ms() - cpu, outcomes.len())
        })
    }
}

fn fmt_layer<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(tracing_subscriber::EnvFilter::new("warn"))
}

fn tracing_overhead(args: &Args) -> Result<()> {
    println!(
        "== tracing overhead per check run: {} tables, {} interleaved runs per configuration ==",
        args.tables, args.runs
    );
    let traced = Traced::new(args.tables, args.postgres.as_deref())?;
    let collector = Collector::start(&args.protocol)?;
    let telemetry = traced.pipeline(&collector.endpoint, &args.protocol)?;
    let tracer = telemetry.tracer().context("tracer")?;
    let without = tracing::Dispatch::new(tracing_subscriber::registry().with(fmt_layer()));
    let with = tracing::Dispatch::new(
        tracing_subscriber::registry().with(fmt_layer()).with(telltale::telemetry::otel::layer(tracer)),
    );
    // Warm-up: first detections, SQLite caches, connections.
    for _ in 0..3 {
        traced.run(&without);
        traced.run(&with);
    }
    let (mut a, mut b, mut a_cpu, mut b_cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut outcomes = 0;
    for i in 0..args.runs {
        // Alternate which configuration goes first, so drift favours neither.
        let (first, second) = if i % 2 == 0 { (&without, &with) } else { (&with, &without) };
        let x = traced.run(first);
        let y = traced.run(second);
        let ((ra, rb), _) = if i % 2 == 0 { ((x, y), ()) } else { ((y, x), ()) };
        outcomes = ra.2;
        a.push(ra.0);
        a_cpu.push(ra.1);
        b.push(rb.0);
        b_cpu.push(rb.1);
    }
    traced.rt.block_on(async { telemetry.shutdown().await });
    let spans = collector.finish()?;
    let wall_diff: Vec<f64> = a.iter().zip(&b).map(|(x, y)| y - x).collect();
    // CPU accounting lags by up to a scheduler tick per thread: compare sums over all runs.
    let n = args.runs as f64;
    let (ca, cb) = (a_cpu.iter().sum::<f64>() / n, b_cpu.iter().sum::<f64>() / n);
    let (ma, mb) = (median(a), median(b));
    let (dw, dw_lo, dw_hi) = median_ci(wall_diff);
    let dc = cb - ca;
    println!(
        "check run = metadata scan + {} asset jobs ({} queries, {outcomes} outcomes)",
        args.tables,
        1 + 3 * args.tables
    );
    println!("{:<44} {:>12} {:>14}", "", "wall median", "CPU mean");
    println!("{:<44} {:>9.1} ms {:>11.1} ms", "(A) no traces (production default)", ma, ca);
    let b_label =
        format!("(B) OTLP {} exporter, every span kept", if args.protocol == "http" { "http" } else { "gRPC" });
    println!("{:<44} {:>9.1} ms {:>11.1} ms", b_label, mb, cb);
    println!(
        "paired B-A, wall: median {:+.2} ms = {:+.1}% (95% CI {:+.1}% .. {:+.1}%)",
        dw,
        dw / ma * 100.0,
        dw_lo / ma * 100.0,
        dw_hi / ma * 100.0
    );
    println!(
        "CPU of the process, B-A: {:+.2} ms per run = {:+.1}% (all threads, summed over the runs)",
        dc,
        dc / ca * 100.0
    );
    println!("spans received by the collector (child process): {spans} (~{} per run)", spans / (args.runs + 3));
    println!("target <= 5%: {}", if dc / ca <= 0.05 && dw / ma <= 0.05 { "met" } else { "MISSED" });
    traced.rt.block_on(traced.agent.close());
    Ok(())
}

/// One configuration alone, for instruction counting (`bench/telemetry-callgrind.sh`): 2 warm-up
/// runs, then `--runs` runs.
fn single_mode(args: &Args, mode: &str) -> Result<()> {
    let traced = Traced::new(args.tables, args.postgres.as_deref())?;
    let (dispatch, telemetry, collector) = match mode {
        "a" => (tracing::Dispatch::new(tracing_subscriber::registry().with(fmt_layer())), None, None),
        "b" => {
            let collector = Collector::start(&args.protocol)?;
            let telemetry = traced.pipeline(&collector.endpoint, &args.protocol)?;
            let tracer = telemetry.tracer().context("tracer")?;
            let dispatch = tracing::Dispatch::new(
                tracing_subscriber::registry().with(fmt_layer()).with(telltale::telemetry::otel::layer(tracer)),
            );
            (dispatch, Some(telemetry), Some(collector))
        }
        other => anyhow::bail!("--mode {other}: expected a or b"),
    };
    for _ in 0..2 + args.runs {
        traced.run(&dispatch);
    }
    if let Some(t) = telemetry {
        traced.rt.block_on(async { t.shutdown().await });
    }
    let spans = match collector {
        Some(c) => c.finish()?,
        None => 0,
    };
    traced.rt.block_on(traced.agent.close());
    println!("mode {mode}: {} runs, {spans} spans received", 2 + args.runs);
    Ok(())
}
