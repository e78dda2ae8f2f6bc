//! `telltale demo`: the whole product on the embedded default, with no setup.
//!
//! Creates the SQLite shop warehouse, starts a simulated loader and the agent on a shared
//! accelerated clock, serves the API, and prints a compact live table of what is measured.

pub mod warehouse;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};

use crate::check::CheckSet;
use crate::cli::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME};
use crate::clock::{Clock, ScaledClock, SharedClock};
use crate::config::Config;
use crate::measure::{AssetId, MetricKind};
use crate::runtime::{Agent, CheckOutcome, Status};
use warehouse::{Incident, SCRIPT, Warehouse};

/// The example checks, compiled in so the demo also runs outside the repository.
const EXAMPLE_CHECKS: &str = include_str!("../../checks/shop.yaml");

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Where the warehouse, the metric store and the generated config go (recreated each run).
    #[arg(long, default_value = ".telltale-demo")]
    pub data_dir: PathBuf,
    /// Simulated seconds per real second (720: one simulated hour every 5 s).
    #[arg(long, default_value_t = 720.0)]
    pub speed: f64,
    /// Days of hourly history created before the start.
    #[arg(long, default_value_t = 60)]
    pub history_days: i64,
    /// Stop after this long (real time), e.g. `30s`; default: run until Ctrl-C.
    #[arg(long, value_parser = crate::yaml::parse_duration)]
    pub duration: Option<Duration>,
    /// API address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Check files to use (default: `checks/` when present, else the built-in examples).
    #[arg(long)]
    pub checks: Option<PathBuf>,
    /// Print one line per event instead of redrawing the live table.
    #[arg(long)]
    pub plain: bool,
    /// Seed of the data generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

fn demo_config(data_dir: &Path, checks: &Path, listen: std::net::SocketAddr) -> String {
    format!(
        "version: 1\ndata_dir: {dir}\nstore: sqlite://{dir}/telltale.db\nsources:\n  shop:\n    kind: sqlite\n    url: sqlite://{dir}/shop.db\n    include: [\"main.*\"]\n    schedule: {{every: 15m}}\nserver:\n  listen: {listen}\nchecks: [{checks}]\nshutdown_grace: 5s\n",
        dir = data_dir.display(),
        checks = checks.display(),
    )
}

pub async fn run(args: DemoArgs) -> i32 {
    match run_inner(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_RUNTIME
        }
    }
}

async fn run_inner(args: DemoArgs) -> anyhow::Result<i32> {
    let data_dir = std::path::absolute(&args.data_dir)?;
    std::fs::create_dir_all(&data_dir)?;
    for f in ["telltale.db", "telltale.db-wal", "telltale.db-shm"] {
        let _ = std::fs::remove_file(data_dir.join(f));
    }
    let checks_dir = match &args.checks {
        Some(p) => std::path::absolute(p)?,
        None if Path::new("checks/shop.yaml").is_file() => std::path::absolute("checks")?,
        None => {
            let dir = data_dir.join("checks");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("shop.yaml"), EXAMPLE_CHECKS)?;
            dir
        }
    };
    let config_path = data_dir.join("telltale.yaml");
    std::fs::write(&config_path, demo_config(&data_dir, &checks_dir, args.listen))?;
    let Some((config, checks)) = crate::cli::load(&config_path) else { return Ok(EXIT_CONFIG) };

    let now = Utc::now().with_nanosecond(0).unwrap_or_else(Utc::now);
    let start = now.with_minute(0).and_then(|t| t.with_second(0)).unwrap_or(now);
    println!("telltale demo: creating the shop warehouse ({} days of hourly history)…", args.history_days);
    let mut warehouse = Warehouse::create(&data_dir.join("shop.db"), start, args.history_days, args.seed).await?;
    let clock = Arc::new(ScaledClock::new(start, args.speed));
    let shared: SharedClock = clock.clone();
    let agent = run_agent(config, checks, shared.clone()).await?;

    let shutdown = crate::cli::shutdown_on_signals();
    if let Some(d) = args.duration {
        let t = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            t.cancel();
        });
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e} (pick another with --listen)", args.listen))?;
    let api =
        tokio::spawn(crate::api::serve(listener, crate::api::ApiState { agent: Arc::clone(&agent) }, shutdown.clone()));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<CheckOutcome>>(256);
    let scheduler = tokio::spawn(crate::runtime::run_scheduler(Arc::clone(&agent), shutdown.clone(), Some(tx)));

    let loader_token = shutdown.clone();
    let loader_clock = shared.clone();
    let loader = tokio::spawn(async move {
        let mut hour = 0u32;
        let mut outage_until = 0u32;
        loop {
            let t = start + chrono::Duration::hours(i64::from(hour));
            let next = t + chrono::Duration::hours(1);
            // Wait until the simulated hour is over, then load it.
            while loader_clock.now() < next {
                let left = (next - loader_clock.now()).to_std().unwrap_or_default();
                tokio::select! {
                    _ = loader_token.cancelled() => return warehouse,
                    _ = tokio::time::sleep(loader_clock.real_duration(left).min(Duration::from_millis(250))) => {}
                }
            }
            let incident = SCRIPT.iter().find(|(h, _)| *h == hour).map(|(_, i)| *i);
            let mut volume = 1.0;
            let mut nulls = false;
            match incident {
                Some(Incident::Outage { hours }) => outage_until = hour + hours,
                Some(Incident::PartialLoad { percent }) => volume = f64::from(percent) / 100.0,
                Some(Incident::NullSpike) => nulls = true,
                Some(Incident::ColumnAdded) => {
                    if let Err(e) = warehouse.add_column().await {
                        tracing::warn!(error = %e, "demo loader: cannot add column");
                    }
                }
                None => {}
            }
            if hour >= outage_until
                && let Err(e) = warehouse.load_hour(t, start - chrono::Duration::days(60), volume, nulls, 0).await
            {
                tracing::warn!(error = %e, "demo loader failed");
            }
            hour += 1;
        }
    });

    let live = !args.plain && std::io::stdout().is_terminal();
    let mut latest: BTreeMap<(String, String, String), CheckOutcome> = BTreeMap::new();
    let mut events: Vec<String> = Vec::new();
    let mut redraw = tokio::time::interval(Duration::from_secs(2));
    println!("telltale demo: agent running; API on http://{} (Ctrl-C to stop)", args.listen);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(batch) = rx.recv() => {
                for o in batch {
                    let key = (o.asset.to_string(), o.monitor.clone(), o.subject.clone().unwrap_or_default());
                    let changed = latest.get(&key).map(|p| p.status) != Some(o.status);
                    if changed && (matches!(o.status, Status::Fail | Status::Error) || latest.contains_key(&key)) {
                        let line = format!("{} {:<5} {} {}: {}", clock.now().format("%a %H:%M"), o.status.as_str(), o.asset, o.monitor, o.message);
                        if !live {
                            println!("{line}");
                        }
                        events.push(line);
                    }
                    latest.insert(key, o);
                }
            }
            _ = redraw.tick(), if live => {
                let table = render_table(&agent, clock.now(), args.speed, &latest, &events, args.listen).await;
                print!("\x1b[2J\x1b[H{table}");
                let _ = std::io::stdout().flush();
            }
        }
    }
    let _ = scheduler.await;
    let _ = api.await;
    if let Ok(w) = loader.await {
        w.close().await;
    }
    let final_table = render_table(&agent, clock.now(), args.speed, &latest, &events, args.listen).await;
    if !live {
        println!("{final_table}");
    }
    agent.close().await;
    println!("telltale demo: stopped. Data kept in {}", data_dir.display());
    Ok(EXIT_OK)
}

async fn run_agent(config: Config, checks: CheckSet, clock: SharedClock) -> anyhow::Result<Arc<Agent>> {
    Ok(Agent::new(config, checks, clock).await?)
}

fn human(n: f64) -> String {
    let s = format!("{}", n.round() as i64);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn age(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}d", s / 86_400)
    }
}

/// The compact live view: one line per watched table, then the latest problems.
async fn render_table(
    agent: &Agent,
    now: DateTime<Utc>,
    speed: f64,
    latest: &BTreeMap<(String, String, String), CheckOutcome>,
    events: &[String],
    listen: std::net::SocketAddr,
) -> String {
    let mut out = format!(
        "telltale demo · simulated {} (×{speed}) · API http://{listen}/api/v1/assets\n\n{:<24} {:>9} {:>9} {:>10} {:>6}  {}\n",
        now.format("%a %Y-%m-%d %H:%M"),
        "ASSET",
        "ROWS",
        "+ROWS/1h",
        "FRESHNESS",
        "COLS",
        "STATUS"
    );
    let assets = agent.store.assets().await.unwrap_or_default();
    for a in assets {
        let values = agent.store.latest(&a.asset).await.unwrap_or_default();
        let get = |k: MetricKind| values.iter().find(|m| m.kind == k && m.column.is_empty());
        let rows = get(MetricKind::RowCount).map_or("-".into(), |m| human(m.value));
        let added = get(MetricKind::RowsAdded).map_or("-".into(), |m| human(m.value));
        let fresh = match get(MetricKind::LastModified) {
            Some(m) => age((now.timestamp() as f64 - m.value).max(0.0)),
            None => get(MetricKind::FreshnessLag).map_or("-".into(), |m| age(m.value)),
        };
        let cols = get(MetricKind::ColumnCount).map_or("-".into(), |m| human(m.value));
        let status = status_of(&a.asset, latest);
        out.push_str(&format!("{:<24} {rows:>9} {added:>9} {fresh:>10} {cols:>6}  {status}\n", a.asset.as_str()));
    }
    let open = agent
        .store
        .incidents(&crate::store::IncidentFilter { limit: 200, ..Default::default() })
        .await
        .unwrap_or_default();
    let active: Vec<_> = open.iter().filter(|i| i.status.is_active()).collect();
    out.push_str(&format!(
        "\nincidents: {} open, {} resolved (curl http://{listen}/api/v1/incidents)\n",
        active.len(),
        open.len() - active.len()
    ));
    for i in active.iter().take(5) {
        out.push_str(&format!("  {} {}  {}\n", i.severity_label(), i.id, i.title));
    }
    out.push_str("\nrecent events:\n");
    for e in events.iter().rev().take(8) {
        out.push_str(&format!("  {e}\n"));
    }
    out
}

fn status_of(asset: &AssetId, latest: &BTreeMap<(String, String, String), CheckOutcome>) -> String {
    let mine: Vec<&CheckOutcome> = latest.values().filter(|o| &o.asset == asset).collect();
    let failing: Vec<String> = mine
        .iter()
        .filter(|o| matches!(o.status, Status::Fail | Status::Error))
        .map(|o| format!("{} {}", o.status.as_str(), o.subject.clone().unwrap_or_else(|| o.monitor.clone())))
        .collect();
    if failing.is_empty() { if mine.is_empty() { "watching".into() } else { "ok".into() } } else { failing.join(", ") }
}
