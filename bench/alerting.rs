//! Alerting benchmark: from a failing outcome to the first webhook request, and 1,000
//! simultaneous incidents under a channel's rate limit. Method and published figures:
//! docs/benchmarks.md ("Alerting").
//!
//! ```sh
//! cargo run --release --example alerting                      # everything (~2 min)
//! cargo run --release --example alerting -- --only latency    # or burst, pagerduty
//! cargo run --release --example alerting -- --burst-incidents 300 --pagerduty-incidents 30
//! ```
//!
//! Everything runs in this one process, on the real code paths: a local HTTP receiver on
//! 127.0.0.1:0 (axum) that records when each request arrives; for each scenario a temp workspace
//! with a SQLite source (one stale table per incident), a SQLite store, `telltale.yaml` and a check
//! file (freshness with `max_age: 1s`, so every asset fails); an [`Agent`] built from it; the
//! channels from `build_channels`; and `run_dispatcher`. The failing outcomes come from the real
//! `asset_job` of each asset, taken before anything is timed.
//!
//! 1. **Latency.** `--latency-incidents` sequential incidents, one asset each: the clock starts
//!    when `process_outcomes` is called with the failing outcome and stops when the receiver sees
//!    the webhook request. Peer, same run: the same request bodies POSTed directly with a
//!    `reqwest` client (no outbox, no store).
//! 2. **Burst.** One `process_outcomes` call with `--burst-incidents` failing outcomes over as many
//!    assets, to a webhook channel with `rate: --rate`: time until all are delivered, throughput,
//!    peak RSS (`VmHWM`), and the most deliveries the receiver saw in any sliding 1-s window.
//!    Peer, same run: the same burst to a webhook without `rate` (how fast the outbox goes when
//!    nothing holds it back).
//! 3. **PagerDuty limit.** `--pagerduty-incidents` incidents to a `kind: pagerduty` channel whose
//!    `url` is the local receiver (110 events/min + a burst of 10): the most events in any sliding
//!    60-s window must stay ≤ 120.
//!
//! Every wait has a deadline (`--timeout` per scenario); temp dirs are removed on exit, Ctrl-C
//! included. The exit status is 1 when a notification is missing, duplicated or not recorded as
//! delivered, or a limiter's bound was passed; missing the latency target only shows in the output.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use clap::Parser;
use telltale::alert::config::rate_limit;
use telltale::alert::rate::RateLimit;
use telltale::check::CheckSet;
use telltale::clock::{SharedClock, SystemClock};
use telltale::config::Config;
use telltale::runtime::{Agent, CheckOutcome, Status, build_channels, run_dispatcher};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(about = "telltale alerting benchmark (docs/benchmarks.md)")]
struct Args {
    /// Sequential incidents of the latency benchmark.
    #[arg(long, default_value_t = 200)]
    latency_incidents: usize,
    /// Simultaneous incidents of the burst benchmark.
    #[arg(long, default_value_t = 1000)]
    burst_incidents: usize,
    /// `rate:` (messages per second) of the webhook channel in the burst benchmark.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Incidents of the PagerDuty-limit benchmark (110/min + 10: 150 take about 77 s).
    #[arg(long, default_value_t = 150)]
    pagerduty_incidents: usize,
    /// Run one benchmark only: latency, burst or pagerduty.
    #[arg(long)]
    only: Option<String>,
    /// Deadline of each benchmark, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

/// Incidents sent before the latency figures are taken (connection set-up, first queries).
const WARMUP: usize = 5;
/// Pause between two sequential incidents, so each starts from an idle agent.
const GAP: Duration = Duration::from_millis(20);
const WEBHOOK_PATH: &str = "/hook";
const PEER_PATH: &str = "/peer";
const PAGERDUTY_PATH: &str = "/v2/enqueue";

// ---------------------------------------------------------------------------------------------
// The receiver

#[derive(Debug, Clone)]
struct Arrival {
    at: Instant,
    path: String,
    /// `x-telltale-delivery` (webhooks), `dedup_key` (PagerDuty).
    id: Option<String>,
    asset: Option<String>,
    body: Option<Bytes>,
}

#[derive(Default)]
struct Inbox {
    arrivals: Mutex<Vec<Arrival>>,
    changed: Notify,
    keep_bodies: std::sync::atomic::AtomicBool,
}

impl Inbox {
    fn snapshot(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn clear(&self) {
        self.arrivals.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Waits until `pred` holds for the arrivals, or fails after `within`.
    async fn wait_for<T>(
        &self,
        within: Duration,
        what: &str,
        mut pred: impl FnMut(&[Arrival]) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = pred(&self.arrivals.lock().unwrap_or_else(|e| e.into_inner())) {
                return Ok(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                bail!("timed out after {within:?} waiting for {what}");
            }
        }
    }
}

async fn receive(State(inbox): State<Arc<Inbox>>, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let at = Instant::now();
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let (id, asset) = if uri.path() == PAGERDUTY_PATH {
        let key = doc["dedup_key"].as_str().map(str::to_string);
        // `telltale/<asset>/<monitor>`
        let asset = key.as_deref().and_then(|k| k.strip_prefix("telltale/")).and_then(|k| k.split('/').next());
        (key.clone(), asset.map(str::to_string))
    } else {
        let id = headers.get("x-telltale-delivery").and_then(|v| v.to_str().ok()).map(str::to_string);
        (id, doc["incident"]["asset"].as_str().map(str::to_string))
    };
    let keep = inbox.keep_bodies.load(std::sync::atomic::Ordering::Relaxed);
    let response = if uri.path() == PAGERDUTY_PATH {
        let answer = serde_json::json!({"status": "success", "message": "Event processed", "dedup_key": id});
        (StatusCode::ACCEPTED, answer.to_string())
    } else {
        (StatusCode::OK, "ok".to_string())
    };
    let arrival = Arrival { at, path: uri.path().to_string(), id, asset, body: keep.then_some(body) };
    inbox.arrivals.lock().unwrap_or_else(|e| e.into_inner()).push(arrival);
    inbox.changed.notify_waiters();
    response
}

struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Result<Receiver> {
        let inbox = Arc::new(Inbox::default());
        let app = axum::Router::new().fallback(axum::routing::post(receive)).with_state(Arc::clone(&inbox));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("bind the receiver")?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await;
        });
        Ok(Receiver { addr, inbox, stop, task })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

// ---------------------------------------------------------------------------------------------
// A workspace and its agent

struct Bench {
    /// Removed on drop (also when a scenario is abandoned at its deadline or on Ctrl-C).
    _dir: tempfile::TempDir,
    agent: Arc<Agent>,
    stop: CancellationToken,
    dispatcher: JoinHandle<()>,
    /// One failing freshness outcome per asset, from the real `asset_job`.
    outcomes: Vec<CheckOutcome>,
}

impl Bench {
    /// A workspace with `tables` stale tables, `channels` (YAML under `channels:`), the agent and
    /// its dispatcher running.
    async fn new(tables: usize, channels: &str) -> Result<Bench> {
        let dir = tempfile::Builder::new().prefix("telltale-alert-bench.").tempdir()?;
        create_source(&dir.path().join("wh.db"), tables).await?;
        let config = format!(
            "version: 1\nstore: sqlite://state/telltale.db\nserver:\n  enabled: false\nsources:\n  wh:\n    kind: sqlite\n    url: \"sqlite://{}\"\nchannels:\n{channels}checks: [checks/]\n",
            dir.path().join("wh.db").display()
        );
        std::fs::write(dir.path().join("telltale.yaml"), config)?;
        std::fs::create_dir_all(dir.path().join("checks"))?;
        let mut checks = String::from("version: 1\nassets:\n");
        for i in 1..=tables {
            checks.push_str(&format!(
                "  - source: wh\n    table: {}\n    tier: 2\n    monitors:\n      freshness: {{timestamp_column: at, max_age: 1s}}\n",
                table_name(i)
            ));
        }
        std::fs::write(dir.path().join("checks/bench.yaml"), checks)?;
        let config = Config::load(&dir.path().join("telltale.yaml")).map_err(|e| anyhow!("config: {e}"))?;
        let checks = CheckSet::load(&config).map_err(|e| anyhow!("checks: {e}"))?;
        let agent = Agent::new(config, checks, Arc::new(SystemClock) as SharedClock).await?;

        // The failing outcomes, before anything is timed.
        let token = CancellationToken::new();
        let mut jobs = tokio::task::JoinSet::new();
        for asset in agent.checks.assets.keys() {
            let asset = asset.clone();
            let agent = Arc::clone(&agent);
            let token = token.clone();
            jobs.spawn(async move { agent.asset_job(&asset, &token).await });
        }
        let mut outcomes = Vec::new();
        while let Some(r) = jobs.join_next().await {
            outcomes.extend(r?.into_iter().filter(|o| o.monitor == "freshness"));
        }
        outcomes.sort_by(|a, b| a.asset.cmp(&b.asset));
        let failing = outcomes.iter().filter(|o| o.status == Status::Fail).count();
        if failing != tables {
            bail!("expected {tables} failing freshness outcomes, got {failing} of {}", outcomes.len());
        }

        let stop = CancellationToken::new();
        let dispatcher =
            tokio::spawn(run_dispatcher(Arc::clone(&agent), build_channels(&agent.config.alerting), stop.clone()));
        Ok(Bench { _dir: dir, agent, stop, dispatcher, outcomes })
    }

    /// Checks the store: every notification delivered, on the first attempt.
    async fn store_check(&self, expected: usize) -> Result<String> {
        let notes = self.agent.store.notifications(None).await?;
        let delivered = notes.iter().filter(|n| n.status == "delivered").count();
        let retried = notes.iter().filter(|n| n.attempts > 1).count();
        if notes.len() != expected || delivered != expected {
            bail!("store: {} notifications, {delivered} delivered; expected {expected}", notes.len());
        }
        Ok(format!("{expected} notifications in the outbox, all `delivered`, {retried} needed a retry"))
    }

    async fn close(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.dispatcher).await;
        self.agent.close().await;
    }
}

fn table_name(i: usize) -> String {
    format!("t{i:05}")
}

/// `tables` tables `t00001…`, each with one row two days old.
async fn create_source(path: &Path, tables: usize) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display())).await?;
    let mut tx = conn.begin().await?;
    for i in 1..=tables {
        let t = table_name(i);
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE TABLE {t} (id INTEGER PRIMARY KEY, at TEXT NOT NULL)")))
            .execute(&mut *tx)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO {t} (at) VALUES (datetime('now', '-2 days'))")))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    conn.close().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Figures

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// The most arrivals in any window `[t, t + window)` that starts at an arrival.
fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut t = times.to_vec();
    t.sort();
    let mut best = 0;
    let mut j = 0;
    for i in 0..t.len() {
        while j < t.len() && t[j] < t[i] + window {
            j += 1;
        }
        best = best.max(j - i);
    }
    best
}

/// `VmHWM` (peak resident set) and `VmRSS` of this process, in MB.
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Counts arrivals per id; returns (distinct ids, duplicates).
fn distinct(arrivals: &[Arrival]) -> (usize, usize) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for a in arrivals {
        *seen.entry(a.id.as_deref().unwrap_or("")).or_default() += 1;
    }
    let dups = seen.values().map(|n| n - 1).sum();
    (seen.len(), dups)
}

fn webhook_channel(name: &str, url: &str, rate: Option<f64>) -> String {
    let rate = rate.map(|r| format!("    rate: {r}\n")).unwrap_or_default();
    format!("  {name}:\n    kind: webhook\n    url: {url}\n{rate}")
}

// ---------------------------------------------------------------------------------------------
// 1. Latency

async fn latency(args: &Args, rx: &Receiver) -> Result<bool> {
    let n = args.latency_incidents;
    println!("\n== 1. Failing outcome → first webhook request: {n} sequential incidents (+{WARMUP} warm-up) ==");
    rx.inbox.clear();
    rx.inbox.keep_bodies.store(true, std::sync::atomic::Ordering::Relaxed);
    let bench = Bench::new(n + WARMUP, &webhook_channel("hook", &rx.url(WEBHOOK_PATH), Some(args.rate))).await?;
    let mut total = Vec::new();
    let mut inside = Vec::new();
    let mut after = Vec::new();
    let mut cold = None;
    for (i, outcome) in bench.outcomes.iter().enumerate() {
        let asset = outcome.asset.to_string();
        let t0 = Instant::now();
        bench.agent.process_outcomes(std::slice::from_ref(outcome)).await;
        let returned = Instant::now();
        let arrived = rx
            .inbox
            .wait_for(Duration::from_secs(10), &format!("the webhook of {asset}"), |a| {
                a.iter().find(|x| x.path == WEBHOOK_PATH && x.asset.as_deref() == Some(asset.as_str())).map(|x| x.at)
            })
            .await?;
        if i == 0 {
            cold = Some(arrived - t0);
        }
        if i >= WARMUP {
            total.push(ms(arrived - t0));
            inside.push(ms(returned - t0));
            after.push(ms(arrived.saturating_duration_since(returned)));
        }
        tokio::time::sleep(GAP).await;
    }
    // Let the last `mark_delivered` land before checking the store.
    let check = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match bench.store_check(n + WARMUP).await {
                Ok(s) => return s,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .map_err(|_| anyhow!("not every notification was recorded as delivered"))?;

    // Peer: the same bodies, POSTed directly.
    let hook: Vec<Arrival> = rx.inbox.snapshot().into_iter().filter(|a| a.path == WEBHOOK_PATH).collect();
    let (ids, dups) = distinct(&hook);
    let client = reqwest::Client::builder().user_agent(telltale::alert::USER_AGENT).build()?;
    let mut peer = Vec::new();
    for (i, a) in hook.iter().enumerate() {
        let body = a.body.clone().unwrap_or_default();
        let marker = format!("peer-{i}");
        let t0 = Instant::now();
        let response = client
            .post(rx.url(PEER_PATH))
            .header("content-type", "application/json")
            .header("x-telltale-event", "triggered")
            .header("x-telltale-delivery", &marker)
            .body(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        let status = response.status();
        let arrived = rx
            .inbox
            .wait_for(Duration::from_secs(10), "a peer request", |x| {
                x.iter().rev().find(|y| y.id.as_deref() == Some(marker.as_str())).map(|y| y.at)
            })
            .await?;
        if !status.is_success() {
            bail!("peer request answered {status}");
        }
        if i >= WARMUP {
            peer.push(ms(arrived - t0));
        }
        tokio::time::sleep(GAP).await;
    }
    rx.inbox.keep_bodies.store(false, std::sync::atomic::Ordering::Relaxed);

    let total = sorted(total);
    let inside = sorted(inside);
    let after = sorted(after);
    let peer = sorted(peer);
    let row = |label: &str, v: &[f64]| {
        println!(
            "{label:<58} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            percentile(v, 0.50),
            percentile(v, 0.90),
            percentile(v, 0.99),
            v.last().copied().unwrap_or(f64::NAN)
        );
    };
    println!("{:<58} {:>8} {:>8} {:>8} {:>8}", "ms", "p50", "p90", "p99", "max");
    row("telltale: process_outcomes called → request at receiver", &total);
    row("  of which inside process_outcomes (store transaction)", &inside);
    row("  of which after it returned (dispatcher → HTTP)", &after);
    row("peer: same body POSTed directly with reqwest", &peer);
    println!(
        "outbox cost (telltale − peer): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&total, 0.5) - percentile(&peer, 0.5),
        percentile(&total, 0.99) - percentile(&peer, 0.99)
    );
    if let Some(c) = cold {
        println!("first (cold) incident, not counted: {:.2} ms", ms(c));
    }
    let p99 = percentile(&total, 0.99);
    println!("target p99 <= 100 ms: {}", if p99 <= 100.0 { "meets" } else { "MISSES" });
    println!("receiver: {} webhook requests, {ids} distinct notification ids, {dups} duplicates; {check}", hook.len());
    let ok = ids == n + WARMUP && dups == 0;
    bench.close().await;
    Ok(ok)
}

// ---------------------------------------------------------------------------------------------
// 2. Burst

struct BurstFigures {
    /// From the `process_outcomes` call until every notification had arrived once.
    total: Duration,
    first: Duration,
    inside: Duration,
    requests: usize,
    duplicates: usize,
    /// Median time from a notification's first arrival to its second, for duplicated ones.
    duplicate_gap: Option<Duration>,
    max_1s: usize,
    /// The busiest 1-s window among those starting 1 s or more after the first request.
    max_1s_later: usize,
    rss_before: f64,
    rss_peak: f64,
    ok: bool,
    check: String,
}

/// Once every notification has arrived, the receiver keeps listening until it has been quiet
/// this long (late duplicates).
const SETTLE: Duration = Duration::from_secs(2);

/// Waits until no request has arrived for [`SETTLE`], for at most `within`.
async fn settle(inbox: &Inbox, within: Duration) {
    let deadline = Instant::now() + within;
    let mut seen = usize::MAX;
    while Instant::now() < deadline {
        let count = inbox.arrivals.lock().unwrap_or_else(|e| e.into_inner()).len();
        if count == seen {
            return;
        }
        seen = count;
        tokio::time::sleep(SETTLE).await;
    }
}

async fn burst_once(n: usize, rate: Option<f64>, rx: &Receiver, timeout: Duration) -> Result<BurstFigures> {
    rx.inbox.clear();
    let bench = Bench::new(n, &webhook_channel("hook", &rx.url(WEBHOOK_PATH), rate)).await?;
    let (_, rss_before) = memory_mb();
    let t0 = Instant::now();
    bench.agent.process_outcomes(&bench.outcomes).await;
    let inside = t0.elapsed();
    let last = rx
        .inbox
        .wait_for(timeout, &format!("{n} webhook requests"), |a| {
            let ids: HashSet<&str> = a.iter().filter_map(|x| x.id.as_deref()).collect();
            (ids.len() >= n).then(|| a.iter().map(|x| x.at).max())
        })
        .await?
        .unwrap_or(t0);
    let check = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match bench.store_check(n).await {
                Ok(s) => return s,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .map_err(|_| anyhow!("not every notification was recorded as delivered"))?;
    settle(&rx.inbox, timeout).await;
    let (rss_peak, _) = memory_mb();
    let arrivals = rx.inbox.snapshot();
    let times: Vec<Instant> = arrivals.iter().map(|a| a.at).collect();
    let first = times.iter().min().copied().unwrap_or(t0);
    let later: Vec<Instant> = times.iter().copied().filter(|t| *t >= first + Duration::from_secs(1)).collect();
    let (ids, duplicates) = distinct(&arrivals);
    bench.close().await;
    Ok(BurstFigures {
        total: last - t0,
        first: first - t0,
        inside,
        requests: arrivals.len(),
        duplicates,
        duplicate_gap: duplicate_gap(&arrivals),
        max_1s: max_in_window(&times, Duration::from_secs(1)),
        max_1s_later: max_in_window(&later, Duration::from_secs(1)),
        rss_before,
        rss_peak,
        ok: ids == n && duplicates == 0,
        check,
    })
}

/// Median time between the first and the second arrival of the ids that arrived more than once.
fn duplicate_gap(arrivals: &[Arrival]) -> Option<Duration> {
    let mut by_id: HashMap<&str, Vec<Instant>> = HashMap::new();
    for a in arrivals {
        by_id.entry(a.id.as_deref().unwrap_or("")).or_default().push(a.at);
    }
    let mut gaps: Vec<Duration> = by_id
        .values_mut()
        .filter(|t| t.len() > 1)
        .map(|t| {
            t.sort();
            t[1] - t[0]
        })
        .collect();
    gaps.sort();
    gaps.get(gaps.len() / 2).copied()
}

async fn burst(args: &Args, rx: &Receiver) -> Result<bool> {
    let n = args.burst_incidents;
    let timeout = Duration::from_secs(args.timeout);
    println!("\n== 2. {n} simultaneous incidents: one process_outcomes call, one webhook channel ==");
    let limited = burst_once(n, Some(args.rate), rx, timeout).await?;
    let free = burst_once(n, None, rx, timeout).await?;
    let limit = RateLimit::per_second(args.rate);
    let bound = limit.max_in(Duration::from_secs(1)).unwrap_or(u64::MAX);
    println!(
        "{:<30} {:>8} {:>8} {:>9} {:>9} {:>6} {:>8} {:>9} {:>8} {:>8}",
        "run", "total s", "notif/s", "1st req s", "requests", "dups", "max/1s", "max/1s>1s", "RSS MB", "peak MB"
    );
    for (label, f) in
        [(format!("telltale, webhook rate: {}", args.rate), &limited), ("peer: same, no rate".into(), &free)]
    {
        println!(
            "{label:<30} {:>8.3} {:>8.1} {:>9.3} {:>9} {:>6} {:>8} {:>9} {:>8.1} {:>8.1}",
            f.total.as_secs_f64(),
            n as f64 / f.total.as_secs_f64(),
            f.first.as_secs_f64(),
            f.requests,
            f.duplicates,
            f.max_1s,
            f.max_1s_later,
            f.rss_before,
            f.rss_peak
        );
    }
    println!(
        "total s: process_outcomes called → every notification arrived once; notif/s = {n} / total; \
         max/1s>1s: busiest 1-s window starting 1 s or more after the first request"
    );
    println!("RSS MB: VmRSS of the whole process just before process_outcomes; peak MB: VmHWM after delivery");
    println!(
        "process_outcomes itself (1 transaction per asset): {:.3} s limited, {:.3} s peer",
        limited.inside.as_secs_f64(),
        free.inside.as_secs_f64()
    );
    println!(
        "rate limit: configured `rate: {}` → {limit:?}; the limiter allows at most {bound} in any 1-s window \
         (burst + rate); busiest 1-s window at the receiver: {} → {}",
        args.rate,
        limited.max_1s,
        if (limited.max_1s as u64) <= bound { "limiter bound held" } else { "LIMITER BOUND BROKEN" },
    );
    println!(
        "   against the configured rate alone ({} per second): busiest window {} ({}), after the first second {} ({})",
        args.rate,
        limited.max_1s,
        if limited.max_1s as f64 <= args.rate.floor() + 1.0 { "within" } else { "ABOVE" },
        limited.max_1s_later,
        if limited.max_1s_later as f64 <= args.rate.floor() + 1.0 { "within" } else { "ABOVE" },
    );
    println!("store: {} / peer: {}", limited.check, free.check);
    for (label, f) in [("telltale", &limited), ("peer", &free)] {
        if f.duplicates > 0 {
            println!(
                "DUPLICATES ({label}): {} requests for {n} notifications; {} notification ids arrived more than once \
                 (median {:.1} ms between first and second arrival)",
                f.requests,
                f.duplicates,
                f.duplicate_gap.map_or(f64::NAN, ms)
            );
        }
    }
    Ok(limited.ok && free.ok && (limited.max_1s as u64) <= bound)
}

// ---------------------------------------------------------------------------------------------
// 3. PagerDuty's limit

async fn pagerduty(args: &Args, rx: &Receiver) -> Result<bool> {
    let n = args.pagerduty_incidents;
    println!("\n== 3. PagerDuty limit: {n} simultaneous incidents to a `kind: pagerduty` channel ==");
    rx.inbox.clear();
    let channel = format!(
        "  pager:\n    kind: pagerduty\n    routing_key: 0123456789abcdef0123456789abcdef\n    url: {}\n",
        rx.url(PAGERDUTY_PATH)
    );
    let bench = Bench::new(n, &channel).await?;
    let limit = rate_limit(&bench.agent.config.alerting.channels["pager"]);
    let t0 = Instant::now();
    bench.agent.process_outcomes(&bench.outcomes).await;
    rx.inbox
        .wait_for(Duration::from_secs(args.timeout), &format!("{n} PagerDuty events"), |a| {
            let ids: HashSet<&str> = a.iter().filter_map(|x| x.id.as_deref()).collect();
            (ids.len() >= n).then_some(())
        })
        .await?;
    let last = rx.inbox.snapshot().iter().map(|a| a.at).max().unwrap_or(t0);
    let check = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match bench.store_check(n).await {
                Ok(s) => return s,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .map_err(|_| anyhow!("not every event was recorded as delivered"))?;
    settle(&rx.inbox, Duration::from_secs(args.timeout)).await;
    let arrivals = rx.inbox.snapshot();
    let times: Vec<Instant> = arrivals.iter().map(|a| a.at).collect();
    let (ids, dups) = distinct(&arrivals);
    bench.close().await;
    let max_60 = max_in_window(&times, Duration::from_secs(60));
    let max_1 = max_in_window(&times, Duration::from_secs(1));
    let in_first_second = times.iter().filter(|t| **t - t0 < Duration::from_secs(1)).count();
    let bound = limit.max_in(Duration::from_secs(60)).unwrap_or(u64::MAX);
    println!("limiter: {limit:?}; at most {bound} in any 60-s window");
    println!(
        "{n} events in {:.1} s ({:.2}/s, {:.1}/min); first second: {in_first_second}; busiest 1-s window: {max_1}",
        (last - t0).as_secs_f64(),
        n as f64 / (last - t0).as_secs_f64(),
        n as f64 * 60.0 / (last - t0).as_secs_f64()
    );
    println!(
        "busiest 60-s window at the receiver: {max_60} events → {}",
        if max_60 <= 120 { "≤ 120, PagerDuty's limit held" } else { "ABOVE 120: LIMIT BROKEN" }
    );
    println!("receiver: {} events, {ids} distinct dedup keys, {dups} duplicates; {check}", arrivals.len());
    Ok(ids == n && dups == 0 && max_60 <= 120 && max_60 as u64 <= bound)
}

// ---------------------------------------------------------------------------------------------

/// Runs one benchmark under its deadline; false when it failed or found a problem.
async fn bounded(name: &str, deadline: Duration, f: impl Future<Output = Result<bool>>) -> bool {
    match tokio::time::timeout(deadline, f).await {
        Ok(Ok(passed)) => passed,
        Ok(Err(e)) => {
            eprintln!("alerting benchmark `{name}` failed: {e:#}");
            false
        }
        Err(_) => {
            eprintln!("alerting benchmark `{name}` exceeded its {deadline:?} deadline (--timeout)");
            false
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    let only = args.only.as_deref();
    if let Some(o) = only
        && !["latency", "burst", "pagerduty"].contains(&o)
    {
        bail!("--only expects latency, burst or pagerduty");
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "telltale alerting benchmark — {} — {cores} cores, load average {}, {}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%MZ"),
        load_average(),
        telltale::alert::USER_AGENT
    );
    let rx = Receiver::start().await?;
    let deadline = Duration::from_secs(args.timeout);
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    let mut ok = true;
    if wanted("latency") {
        ok &= bounded("latency", deadline, latency(&args, &rx)).await;
    }
    if wanted("burst") {
        ok &= bounded("burst", deadline, burst(&args, &rx)).await;
    }
    if wanted("pagerduty") {
        ok &= bounded("pagerduty", deadline, pagerduty(&args, &rx)).await;
    }
    let (hwm, rss) = memory_mb();
    println!("\nprocess: VmHWM {hwm:.1} MB, VmRSS {rss:.1} MB at the end; load average {}", load_average());
    rx.stop().await;
    Ok(ok)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(std::env::var("TELLTALE_LOG").unwrap_or("warn".into())))
        .with_writer(std::io::stderr)
        .init();
    // Dropping the benchmark's future on Ctrl-C drops its temp dirs with it.
    let result = tokio::select! {
        r = run(args) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("alerting benchmark: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
