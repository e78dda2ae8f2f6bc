//! Telemetry benchmark: `/metrics` render time for 10,000 assets, and the tracing overhead of a
//! check run with and without the OTLP exporter. Method and published figures:
//! docs/benchmarks.md ("Telemetry").
//!
//! ```sh
//! cargo run --release --example telemetry                  # both (~1 min)
//! cargo run --release --example telemetry -- --assets 10000 --renders 20 --tables 100 --runs 30
//! ```
//!
//! 1. **Render.** One [`Metrics`] registry filled as telltale fills it for `--assets` assets
//!    (table gauges, two profiled columns, learned bands and scores on three series, status,
//!    downtime, SLO budget, asset info: ~24 series per asset), then rendered `--renders` times with
//!    the real encoder. Peer, same run: the same series written with plain `write!` into a
//!    `String` (the floor of any text exposition). Memory: VmRSS before filling, after filling,
//!    and VmHWM after rendering (render allocates only its output buffer).
//! 2. **Tracing overhead.** A temp workspace with a SQLite source of `--tables` tables (1,000 rows
//!    each), one check per table (freshness on a timestamp column, exact row count, two column
//!    null rates: three queries per table), a SQLite store. `Agent::run_once` (one metadata scan +
//!    every asset job, the full check-run path) is timed `--runs` times per configuration,
//!    interleaved A/B/A/B on a current-thread runtime: (A) the production default without traces
//!    (log lines at `warn`), (B) the same plus the OpenTelemetry layer exporting every span over
//!    OTLP/gRPC through the batch processor to an in-process collector
//!    (`fake-opentelemetry-collector`). Medians are compared; the spans received are counted.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
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
    /// Renders to time.
    #[arg(long, default_value_t = 20)]
    renders: usize,
    /// Tables (and checks) of the traced check run.
    #[arg(long, default_value_t = 100)]
    tables: usize,
    /// Timed check runs per configuration.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// `render` or `tracing` alone.
    #[arg(long)]
    only: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.only.as_deref() != Some("tracing") {
        render(&args);
    }
    if args.only.as_deref() != Some("render") {
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

/// CPU time (user + system) of the calling thread, in ms: what a render costs on a free core,
/// independent of other load on the machine (10 ms resolution; sum several runs).
fn thread_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name `(…)`: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|x| x.parse::<f64>().ok()).sum());
    ticks * 10.0
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// The series telltale keeps for one asset, as (metric, label values, value).
fn asset_series(i: usize) -> Vec<(&'static metrics::MetricDef, Vec<String>, f64)> {
    let source = format!("wh{}", i % 4);
    let asset = format!("{source}.analytics.table_{i:05}");
    let v = i as f64;
    let mut out = vec![
        (&metrics::ASSET_INFO, vec![source.clone(), asset.clone(), format!("@team-{}", i % 20), "2".into()], 1.0),
        (&metrics::ASSET_LAST_UPDATE, vec![source.clone(), asset.clone()], 1.76e9 + v),
        (&metrics::ASSET_FRESHNESS_LAG, vec![source.clone(), asset.clone()], 300.0 + v),
        (&metrics::ASSET_ROWS, vec![source.clone(), asset.clone()], 1e6 + v),
        (&metrics::ASSET_ROWS_ADDED, vec![source.clone(), asset.clone()], 1000.0 + v),
        (&metrics::ASSET_STATUS, vec![source.clone(), asset.clone()], (i % 3) as f64),
        (&metrics::ASSET_DOWNTIME, vec![source.clone(), asset.clone()], (i % 7) as f64 * 60.0),
        (&metrics::ASSET_SLO_BUDGET_LEFT, vec![source.clone(), asset.clone()], 25_000.0),
        (&metrics::ASSET_SLO_BUDGET_LEFT_RATIO, vec![source.clone(), asset.clone()], 0.96),
    ];
    for column in ["customer_id", "amount"] {
        out.push((&metrics::COLUMN_NULL_RATIO, vec![source.clone(), asset.clone(), column.into()], 0.01));
        out.push((
            &metrics::MONITOR_VALUE,
            vec![source.clone(), asset.clone(), "null_rate".into(), column.into()],
            0.01,
        ));
    }
    for monitor in ["row_count", "rows_added", "freshness_lag"] {
        let labels = vec![source.clone(), asset.clone(), monitor.to_string(), String::new()];
        out.push((&metrics::MONITOR_VALUE, labels.clone(), v));
        out.push((&metrics::MONITOR_EXPECTED_LOW, labels.clone(), v * 0.9));
        out.push((&metrics::MONITOR_EXPECTED_HIGH, labels.clone(), v * 1.1));
        out.push((&metrics::MONITOR_ANOMALY_SCORE, labels.clone(), 0.4));
        out.push((&metrics::MONITOR_ANOMALOUS, labels, 0.0));
    }
    out
}

fn render(args: &Args) {
    println!("== /metrics render: {} assets ==", args.assets);
    let (_, rss_empty) = memory();
    let registry = Metrics::new();
    let mut series = 0;
    let fill = Instant::now();
    for i in 0..args.assets {
        for (def, values, value) in asset_series(i) {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            registry.set(def, &values, value);
            series += 1;
        }
    }
    let fill = fill.elapsed();
    let (_, rss_filled) = memory();
    let mut times = Vec::new();
    let mut bytes = 0;
    let cpu_start = thread_cpu_ms();
    for _ in 0..args.renders {
        let started = Instant::now();
        let text = registry.encode();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        bytes = text.len();
        std::hint::black_box(text);
    }
    let cpu = (thread_cpu_ms() - cpu_start) / args.renders as f64;
    let (hwm, _) = memory();
    // Peer: the same series through plain `write!` (no registry, no escaping, no HELP/TYPE).
    type Sample<'a> = (String, Vec<(&'a str, String)>, f64);
    let plain: Vec<Sample> = (0..args.assets)
        .flat_map(asset_series)
        .map(|(def, values, v)| (def.name.to_string(), def.labels.iter().copied().zip(values).collect(), v))
        .collect();
    let mut peer_times = Vec::new();
    let peer_cpu_start = thread_cpu_ms();
    for _ in 0..args.renders {
        let started = Instant::now();
        let mut out = String::with_capacity(bytes);
        for (name, labels, value) in &plain {
            out.push_str(name);
            out.push('{');
            for (k, v) in labels {
                let _ = write!(out, "{k}=\"{v}\",");
            }
            let _ = writeln!(out, "}} {value}");
        }
        peer_times.push(started.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(out);
    }
    let peer_cpu = (thread_cpu_ms() - peer_cpu_start) / args.renders as f64;
    println!(
        "series: {series} ({:.1} per asset), exposition {:.1} MB",
        series as f64 / args.assets as f64,
        bytes as f64 / 1e6
    );
    println!("fill (set every series once): {:.0} ms", fill.as_secs_f64() * 1000.0);
    println!(
        "render, telltale registry (prometheus-client, OpenMetrics): median {:.1} ms, max {:.1} ms over {} renders",
        median(times.clone()),
        times.iter().cloned().fold(0.0, f64::max),
        args.renders
    );
    println!("render, peer (plain write! into a String):               median {:.1} ms", median(peer_times));
    println!("render CPU time per render (thread user+sys): telltale {cpu:.0} ms, peer {peer_cpu:.0} ms");
    println!(
        "memory: VmRSS {rss_empty:.0} MB empty -> {rss_filled:.0} MB filled ({:.0} bytes/series); VmHWM after renders {hwm:.0} MB (includes the peer's copy)",
        (rss_filled - rss_empty) * 1024.0 * 1024.0 / series as f64
    );
    let target = if median(times) <= 100.0 { "met" } else { "MISSED" };
    let target_cpu = if cpu <= 100.0 { "met" } else { "MISSED" };
    println!("target <= 100 ms (render): wall {target}, CPU {target_cpu}");
    if let Err(e) = handler_path(args) {
        println!("handler path: {e:#}");
    }
    println!();
}

/// What `GET /metrics` does on each scrape, minus the socket: refresh the incident-derived gauges
/// of every checked asset from a real store (SQLite), then encode the process registry.
fn handler_path(args: &Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("checks"))?;
    std::fs::write(
        dir.path().join("telltale.yaml"),
        "version: 1\nstore: sqlite://state/telltale.db\nsources:\n  wh0: {kind: sqlite, url: \"sqlite://wh.db\"}\n  wh1: {kind: sqlite, url: \"sqlite://wh.db\"}\n  wh2: {kind: sqlite, url: \"sqlite://wh.db\"}\n  wh3: {kind: sqlite, url: \"sqlite://wh.db\"}\nchecks: [checks/]\n",
    )?;
    let mut checks = String::from("version: 1\nassets:\n");
    for i in 0..args.assets {
        checks.push_str(&format!(
            "  - {{source: wh{}, table: analytics.table_{i:05}, owner: \"@team-{}\", tier: 2, slo: 99%, monitors: {{schema: true}}}}\n",
            i % 4,
            i % 20
        ));
    }
    std::fs::write(dir.path().join("checks/all.yaml"), checks)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let agent = rt.block_on(async {
        let config = Config::load(&dir.path().join("telltale.yaml")).context("config")?;
        let checks = CheckSet::load(&config).map_err(|e| anyhow::anyhow!("checks: {e}"))?;
        Agent::new(config, checks, Arc::new(SystemClock) as SharedClock).await.context("agent")
    })?;
    let global = metrics::global();
    for i in 0..args.assets {
        for (def, values, value) in asset_series(i) {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            global.set(def, &values, value);
        }
    }
    let mut refresh = Vec::new();
    let mut total = Vec::new();
    let cpu_start = thread_cpu_ms();
    for _ in 0..args.renders {
        let started = Instant::now();
        rt.block_on(metrics::refresh_from_store(&agent));
        refresh.push(started.elapsed().as_secs_f64() * 1000.0);
        let text = global.encode();
        total.push(started.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(text);
    }
    let cpu = (thread_cpu_ms() - cpu_start) / args.renders as f64;
    let (hwm, rss) = memory();
    println!(
        "GET /metrics path ({} checked assets, SQLite store): refresh from store median {:.1} ms, refresh + render median {:.1} ms; VmRSS {rss:.0} MB, VmHWM {hwm:.0} MB",
        args.assets,
        median(refresh),
        median(total.clone())
    );
    let target = if median(total) <= 100.0 { "met" } else { "MISSED" };
    println!(
        "whole scrape CPU time of the calling thread (the store query runs on runtime workers, not counted): {cpu:.0} ms"
    );
    println!("target <= 100 ms (whole scrape, wall): {target}");
    rt.block_on(agent.close());
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
    std::fs::write(
        dir.join("telltale.yaml"),
        format!(
            "version: 1\nstore: sqlite://state/telltale.db\nsources:\n  wh:\n    kind: sqlite\n    url: sqlite://{}\nchecks: [checks/]\n",
            db.display()
        ),
    )?;
    let mut checks = String::from("version: 1\nassets:\n");
    for t in 0..tables {
        checks.push_str(&format!(
            "  - source: wh\n    table: t{t}\n    monitors:\n      freshness: {{timestamp_column: created_at, max_age: 1d}}\n      volume: {{exact: true, row_count: {{min: 1}}}}\n      columns:\n        customer_id: {{null_rate: {{max: 0.5}}}}\n        amount: {{null_rate: {{max: 0.5}}}}\n"
        ));
    }
    std::fs::write(dir.join("checks/bench.yaml"), checks)?;
    Ok(())
}

fn tracing_overhead(args: &Args) -> Result<()> {
    println!("== tracing overhead per check run: {} tables ==", args.tables);
    let dir = tempfile::tempdir()?;
    workspace(dir.path(), args.tables)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let agent = rt.block_on(async {
        let config = Config::load(&dir.path().join("telltale.yaml")).context("config")?;
        let checks = CheckSet::load(&config).map_err(|e| anyhow::anyhow!("checks: {e}"))?;
        Agent::new(config, checks, Arc::new(SystemClock) as SharedClock).await.context("agent")
    })?;
    let mut collector =
        rt.block_on(fake_opentelemetry_collector::FakeCollectorServer::start()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let endpoint = collector.endpoint();
    // The collector's queue is small: drain it while the runs go on, counting spans.
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    rt.spawn(async move {
        loop {
            let n = collector.exported_spans(1, Duration::from_millis(200)).await.len();
            counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let settings = TraceSettings {
        endpoint,
        protocol: Protocol::Grpc,
        headers: vec![],
        timeout: Duration::from_secs(10),
        sampler: Sampler::AlwaysOn,
        resource: vec![("service.name".into(), "telltale-bench".into())],
    };
    let telemetry = rt.block_on(async { telltale::telemetry::otel::pipeline(&settings) })?;
    let tracer = telemetry.tracer().context("tracer")?;
    let fmt = || {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::EnvFilter::new("warn"))
    };
    let without = tracing::Dispatch::new(tracing_subscriber::registry().with(fmt()));
    let with = tracing::Dispatch::new(
        tracing_subscriber::registry().with(fmt()).with(telltale::telemetry::otel::layer(tracer)),
    );
    let shutdown = CancellationToken::new();
    let run = |dispatch: &tracing::Dispatch| {
        tracing::dispatcher::with_default(dispatch, || {
            let started = Instant::now();
            let outcomes = rt.block_on(agent.run_once(&shutdown));
            (started.elapsed().as_secs_f64() * 1000.0, outcomes.len())
        })
    };
    // Warm-up: first detections, SQLite caches, connections.
    for _ in 0..3 {
        run(&without);
        run(&with);
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut outcomes = 0;
    for _ in 0..args.runs {
        let (ms, n) = run(&without);
        a.push(ms);
        outcomes = n;
        b.push(run(&with).0);
    }
    // Every span of the timed runs reaches the collector.
    rt.block_on(async {
        telemetry.shutdown().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let spans = received.load(std::sync::atomic::Ordering::Relaxed);
    let (ma, mb) = (median(a), median(b));
    println!(
        "check run = metadata scan + {} asset jobs ({} queries, {outcomes} outcomes)",
        args.tables,
        1 + 3 * args.tables
    );
    println!("(A) no traces (production default):       median {ma:.1} ms per check run");
    println!("(B) OTLP/gRPC exporter, every span kept:  median {mb:.1} ms per check run");
    println!(
        "overhead: {:+.1}% ({:+.2} ms per asset job); spans received by the collector: {spans}",
        (mb - ma) / ma * 100.0,
        (mb - ma) / args.tables as f64
    );
    let target = if (mb - ma) / ma <= 0.05 { "met" } else { "MISSED" };
    println!("target <= 5%: {target}");
    rt.block_on(agent.close());
    Ok(())
}
