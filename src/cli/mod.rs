//! Command line: argument parsing, output formats and exit codes.
//!
//! Exit codes never change meaning: 0 ok, 1 a check failed, 2 usage or configuration error,
//! 3 runtime error (a source unreachable, the store unavailable).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::check::CheckSet;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::measure::AssetId;
use crate::runtime::{Agent, CheckOutcome, Status};
use crate::yaml::Diagnostics;

pub mod replay;
pub mod select;
pub mod state;

pub const EXIT_OK: i32 = 0;
pub const EXIT_CHECK_FAILED: i32 = 1;
pub const EXIT_CONFIG: i32 = 2;
pub const EXIT_RUNTIME: i32 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "telltale",
    version,
    about = "Data observability: freshness, volume, schema and distribution of your tables"
)]
pub struct Cli {
    /// Operator settings file.
    #[arg(long, short, global = true, env = "TELLTALE_CONFIG", default_value = "telltale.yaml")]
    pub config: PathBuf,
    /// Log filter (`info`, `debug`, `telltale=debug,sqlx=warn`); RUST_LOG wins when set.
    #[arg(long, global = true, default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the embedded demo: a SQLite shop warehouse, a simulated loader and the agent.
    Demo(crate::demo::DemoArgs),
    /// Run the agent until SIGTERM/SIGINT: poll every source on its schedule, serve the API.
    Run,
    /// Run every check once now and exit (1 if a check failed).
    Check(CheckArgs),
    /// Circuit breaker: exit 0 while the asset is healthy (or only degraded), 1 while a SEV-1/2
    /// incident is open on it; with `--wait`, poll until healthy or the time is up.
    Gate {
        asset: String,
        /// Keep polling this long for the asset to become healthy, e.g. `10m`.
        #[arg(long, value_parser = crate::yaml::parse_duration)]
        wait: Option<std::time::Duration>,
        /// Poll interval with `--wait`.
        #[arg(long, value_parser = crate::yaml::parse_duration, default_value = "30s")]
        interval: std::time::Duration,
        /// Also broken while a SEV-1/2 incident is open on an asset upstream of it (lineage).
        #[arg(long)]
        upstream: bool,
    },
    /// Validate the config and all check files; `--connect` also tests each source.
    Validate {
        #[arg(long)]
        connect: bool,
    },
    /// Measure one asset (`source.schema.table`) now and print the result.
    Measure {
        asset: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Anomaly detection tools: `telltale detect replay --input series.csv`.
    #[command(subcommand)]
    Detect(DetectCommand),
    /// Mark a stretch of a metric as `expected` (re-baseline) or `confirmed-incident` (never
    /// learned from).
    Label {
        /// The asset, `source.schema.table`.
        asset: String,
        #[arg(long)]
        metric: String,
        /// Column (or custom metric name) of the metric, if it has one.
        #[arg(long, default_value = "")]
        column: String,
        /// Start (RFC 3339 or `YYYY-MM-DD HH:MM:SS`, UTC).
        #[arg(long)]
        from: String,
        /// End (exclusive).
        #[arg(long)]
        to: String,
        #[arg(value_enum)]
        label: LabelArg,
        #[arg(long)]
        note: Option<String>,
    },
    /// Incidents: list, show, and act on them (ack, resolve, expected, false-positive).
    #[command(subcommand)]
    Incidents(IncidentsCommand),
    /// Lineage: `telltale lineage impact <asset>` (blast radius as a text tree or JSON).
    #[command(subcommand)]
    Lineage(LineageCommand),
    /// Compute past rows-added buckets of an asset from its timestamp column.
    Backfill {
        asset: String,
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Run only these (comma-separated or repeated): asset globs, `tag:x`, `owner:x`, `monitor:x`,
    /// `file:path`, `tier:n`.
    #[arg(long, value_delimiter = ',')]
    pub select: Vec<String>,
    /// Skip these (same selectors as `--select`).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Run only assets whose check files changed since this git ref (e.g. `origin/main`), plus
    /// the tables of dbt models whose files changed, and everything downstream of both (from the
    /// dbt manifest, when there is one).
    #[arg(long)]
    pub changed_since: Option<String>,
    /// The previous dbt manifest (a `manifest.json` or the directory holding it): run only the
    /// checks of tables that dbt's `state:modified+` selects, and fail on removed or retyped
    /// columns that downstream models or exposures read.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The current dbt manifest for `--state` and `--changed-since` (default:
    /// `lineage.dbt_manifest` in telltale.yaml).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Lowest failure that fails the run: `error` (hard rules, breaking schema changes) or `warn`
    /// (also anomalies from learned thresholds).
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// An unreachable source does not make the run exit 3.
    #[arg(long)]
    pub allow_unreachable: bool,
    /// Show a progress bar even when not on a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Also write a JUnit XML report here (one testcase per check).
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailOn {
    Warn,
    Error,
}

#[derive(Subcommand, Debug)]
pub enum IncidentsCommand {
    /// Incidents, newest first.
    List {
        /// open, acknowledged, resolved, expected or false_positive.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        asset: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One incident with its timeline and notifications.
    Show { id: String },
    /// Acknowledge: someone is on it (stops reminders; PagerDuty is told).
    Ack(ActionArgs),
    /// Resolve; the bad points are kept out of detection's training data.
    Resolve(ActionArgs),
    /// The change was expected: resolve and re-baseline detection on the new level.
    Expected(ActionArgs),
    /// The data was fine: resolve as a false positive.
    FalsePositive(ActionArgs),
}

#[derive(clap::Args, Debug)]
pub struct ActionArgs {
    pub id: String,
    #[arg(long)]
    pub note: Option<String>,
    /// Who acts (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum LineageCommand {
    /// Everything downstream of an asset (`source.schema.table`, a dbt unique_id or an
    /// OpenLineage `namespace/name`), grouped by kind, key assets first, with owners.
    Impact {
        asset: String,
        /// Hops to follow (1 = direct dependents); unlimited by default.
        #[arg(long)]
        depth: Option<u32>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
pub enum DetectCommand {
    /// Stream a series through the daemon's detector and print one verdict per point.
    Replay(replay::ReplayArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LabelArg {
    Expected,
    ConfirmedIncident,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Entry point of the binary; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_RUNTIME;
        }
    };
    // The trace exporter runs on the runtime; spans still queued are flushed before exit.
    let telemetry = runtime.block_on(async { init_logging(&cli) });
    let code = runtime.block_on(dispatch(cli));
    runtime.block_on(telemetry.shutdown());
    code
}

fn init_logging(cli: &Cli) -> crate::telemetry::Telemetry {
    let default = match cli.command {
        Command::Demo(_) => "warn",
        _ => cli.log.as_str(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // The `telemetry:` block of the config file; its mistakes are reported when the command
    // loads the config properly.
    let file = match cli.command {
        Command::Demo(_) | Command::Validate { .. } | Command::Detect(_) => Default::default(),
        _ => Config::load(&cli.config).map(|c| c.telemetry).unwrap_or_default(),
    };
    let logging = crate::telemetry::Logging { filter, ansi: std::io::stderr().is_terminal() };
    crate::telemetry::init(logging, &file)
}

async fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Validate { connect } => validate(&cli.config, connect).await,
        Command::Detect(DetectCommand::Replay(args)) => {
            let mut stdout = std::io::stdout().lock();
            match replay::run(&args, &mut stdout) {
                Ok(_) => EXIT_OK,
                Err(e @ replay::ReplayError::Read { .. }) => {
                    eprintln!("error: {e}");
                    EXIT_RUNTIME
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    EXIT_CONFIG
                }
            }
        }
        command => {
            let Some((mut config, mut checks)) = load(&cli.config) else { return EXIT_CONFIG };
            let mut selected = Selection::default();
            if let Command::Check(args) = &command {
                match selection(args, &cli.config, &config, &mut checks) {
                    Ok(s) => selected = s,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return EXIT_CONFIG;
                    }
                }
                if !args.select.is_empty() || args.changed_since.is_some() || args.state.is_some() {
                    // A selected run measures only the selected tables, not auto-discovered ones.
                    for source in config.sources.values_mut() {
                        source.include.clear();
                    }
                }
            }
            let agent = match Agent::new(config, checks, Arc::new(SystemClock) as SharedClock).await {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_RUNTIME;
                }
            };
            let shutdown = shutdown_on_signals();
            let code = match command {
                Command::Run => run(Arc::clone(&agent), shutdown).await,
                Command::Check(args) => {
                    let started_at = agent.clock.now();
                    let started = std::time::Instant::now();
                    let progress = progress_bar(&agent, args.progress);
                    let outcomes = agent.run_once_with_progress(&shutdown, &|| progress.inc(1)).await;
                    progress.finish_and_clear();
                    let mut outcomes = select::keep_monitors(outcomes, &selected.monitors);
                    outcomes.extend(selected.extra_outcomes);
                    let code = gate_exit_code(&outcomes, args.fail_on, args.allow_unreachable);
                    report(&outcomes, &args, code, started.elapsed(), started_at)
                }
                Command::Gate { asset, wait, interval, upstream } => {
                    gate(&agent, &asset, wait, interval, upstream).await
                }
                Command::Lineage(LineageCommand::Impact { asset, depth, format }) => {
                    match agent.lineage.impact(&asset, depth, None) {
                        Some(report) => {
                            match format {
                                Format::Text => print!("{}", report.to_text()),
                                Format::Json => {
                                    println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default())
                                }
                            }
                            EXIT_OK
                        }
                        None => {
                            eprintln!(
                                "error: `{asset}` is not in the lineage graph (dbt manifest, declared lineage and OpenLineage events in the store)"
                            );
                            EXIT_CONFIG
                        }
                    }
                }
                Command::Measure { asset, format } => match asset.parse::<AssetId>() {
                    Ok(asset) => match agent.measure_now(&asset, &shutdown).await {
                        Ok(outcomes) => {
                            let code = exit_code(&outcomes);
                            print_outcomes_with(&outcomes, format, code, std::time::Duration::ZERO, agent.clock.now());
                            code
                        }
                        Err(e) => {
                            eprintln!("error: {e}");
                            EXIT_RUNTIME
                        }
                    },
                    Err(e) => {
                        eprintln!("error: {e}");
                        EXIT_CONFIG
                    }
                },
                Command::Backfill { asset, days } => match asset.parse::<AssetId>() {
                    Ok(asset) => match agent.backfill(&asset, days, &shutdown).await {
                        Ok(n) => {
                            println!("backfilled {n} buckets of {asset} over {days} days");
                            EXIT_OK
                        }
                        Err(e) => {
                            eprintln!("error: {e}");
                            EXIT_RUNTIME
                        }
                    },
                    Err(e) => {
                        eprintln!("error: {e}");
                        EXIT_CONFIG
                    }
                },
                Command::Label { asset, metric, column, from, to, label, note } => {
                    add_label(&agent, &asset, &metric, &column, &from, &to, label, note).await
                }
                Command::Incidents(command) => incidents(&agent, command).await,
                Command::Demo(_) | Command::Validate { .. } | Command::Detect(_) => EXIT_OK,
            };
            agent.close().await;
            code
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn add_label(
    agent: &Agent,
    asset: &str,
    metric: &str,
    column: &str,
    from: &str,
    to: &str,
    label: LabelArg,
    note: Option<String>,
) -> i32 {
    let parsed = (
        asset.parse::<AssetId>(),
        metric.parse::<crate::measure::MetricKind>(),
        replay::parse_timestamp(from).and_then(|t| chrono::DateTime::from_timestamp(t, 0)),
        replay::parse_timestamp(to).and_then(|t| chrono::DateTime::from_timestamp(t, 0)),
    );
    let (asset, kind, starts_at, ends_at) = match parsed {
        (Ok(a), Ok(k), Some(f), Some(t)) if t > f => (a, k, f, t),
        (Err(e), ..) | (_, Err(e), ..) => {
            eprintln!("error: {e}");
            return EXIT_CONFIG;
        }
        _ => {
            eprintln!(
                "error: --from and --to must be times (RFC 3339 or `YYYY-MM-DD HH:MM:SS`) with --to after --from"
            );
            return EXIT_CONFIG;
        }
    };
    let record = crate::store::LabelRecord {
        asset: asset.clone(),
        kind,
        column: column.to_string(),
        starts_at,
        ends_at,
        label: match label {
            LabelArg::Expected => "expected".into(),
            LabelArg::ConfirmedIncident => "confirmed_incident".into(),
        },
        note,
        created_by: std::env::var("USER").ok(),
    };
    match agent.store.add_label(&record, agent.clock.now()).await {
        Ok(()) => {
            println!(
                "labelled {asset} {kind}{} from {starts_at} to {ends_at} as {}",
                if column.is_empty() { String::new() } else { format!(":{column}") },
                record.label
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_RUNTIME
        }
    }
}

async fn incidents(agent: &Arc<Agent>, command: IncidentsCommand) -> i32 {
    use crate::incident::lifecycle::Action;
    let (args, action) = match command {
        IncidentsCommand::List { status, asset, owner, format } => {
            let status = match status.as_deref().map(crate::incident::IncidentStatus::parse) {
                Some(None) => {
                    eprintln!("error: --status expects open, acknowledged, resolved, expected or false_positive");
                    return EXIT_CONFIG;
                }
                Some(s) => s,
                None => None,
            };
            let filter = crate::store::IncidentFilter { status, asset, owner, active_since: None, limit: 500 };
            return match agent.store.incidents(&filter).await {
                Ok(list) if format == Format::Json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({ "incidents": list })).unwrap_or_default()
                    );
                    EXIT_OK
                }
                Ok(list) => {
                    for i in &list {
                        println!(
                            "{}  {}  {:<13} {}  {}",
                            i.id,
                            i.severity_label(),
                            i.status.as_str(),
                            i.detected_at.format("%Y-%m-%d %H:%M"),
                            i.title
                        );
                    }
                    println!("{} incident{}", list.len(), plural(list.len()));
                    EXIT_OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    EXIT_RUNTIME
                }
            };
        }
        IncidentsCommand::Show { id } => {
            return match (
                agent.store.incident(&id).await,
                agent.store.incident_events(&id).await,
                agent.store.notifications(Some(&id)).await,
            ) {
                (Ok(Some(i)), Ok(events), Ok(notes)) => {
                    let lineage = agent.incident_lineage(&i);
                    let doc = serde_json::json!({ "incident": i, "lineage": lineage, "events": events, "notifications": notes });
                    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                    EXIT_OK
                }
                (Ok(None), ..) => {
                    eprintln!("error: no incident `{id}`");
                    EXIT_CONFIG
                }
                (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
                    eprintln!("error: {e}");
                    EXIT_RUNTIME
                }
            };
        }
        IncidentsCommand::Ack(a) => (a, Action::Acknowledge),
        IncidentsCommand::Resolve(a) => (a, Action::Resolve),
        IncidentsCommand::Expected(a) => (a, Action::Expected),
        IncidentsCommand::FalsePositive(a) => (a, Action::FalsePositive),
    };
    let by = args.by.or_else(|| std::env::var("USER").ok());
    match agent.act_on_incident(&args.id, action, by.as_deref(), args.note.as_deref()).await {
        Ok(Some(i)) => {
            println!("{} is now {}", i.id, i.status.as_str());
            // Deliver what the action queued before exiting, when channels are configured.
            let channels = crate::runtime::build_channels(&agent.config.alerting);
            if !channels.is_empty() {
                let stop = CancellationToken::new();
                let task = tokio::spawn(crate::runtime::run_dispatcher(Arc::clone(agent), channels, stop.clone()));
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                    while agent.store.due_notifications(agent.clock.now(), 1).await.is_ok_and(|d| !d.is_empty()) {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                })
                .await;
                stop.cancel();
                let _ = task.await;
            }
            EXIT_OK
        }
        Ok(None) => {
            eprintln!("error: no incident `{}`", args.id);
            EXIT_CONFIG
        }
        Err(crate::runtime::IncidentActionError::Invalid(e)) => {
            eprintln!("error: {e}");
            EXIT_CHECK_FAILED
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_RUNTIME
        }
    }
}

/// Loads and validates config and checks; prints every problem and returns `None` on any.
pub fn load(path: &Path) -> Option<(Config, CheckSet)> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(ConfigError::Invalid(problems)) => {
            print_problems(&problems);
            return None;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    match CheckSet::load(&config) {
        Ok(checks) => Some((config, checks)),
        Err(problems) => {
            print_problems(&problems);
            None
        }
    }
}

fn print_problems(problems: &Diagnostics) {
    eprintln!("{problems}");
    eprintln!("error: {} problem{} found", problems.len(), if problems.len() == 1 { "" } else { "s" });
}

async fn validate(path: &Path, connect: bool) -> i32 {
    let Some((config, checks)) = load(path) else { return EXIT_CONFIG };
    println!(
        "ok: {} source{}, {} checked asset{} in {} file{}",
        config.sources.len(),
        plural(config.sources.len()),
        checks.assets.len(),
        plural(checks.assets.len()),
        checks.files.len(),
        plural(checks.files.len())
    );
    if !connect {
        return EXIT_OK;
    }
    let mut failed = false;
    for (name, cfg) in &config.sources {
        let result = match crate::source::connect(cfg) {
            Ok(source) => {
                let r = source.healthcheck().await;
                let scope = crate::source::Scope {
                    tables: checks.assets.values().filter(|c| &c.source == name).map(|c| c.table.clone()).collect(),
                    ..crate::source::Scope::default()
                };
                let missing: Vec<String> = match source.scan_metadata(&scope).await {
                    Ok(tables) => checks
                        .assets
                        .values()
                        .filter(|c| &c.source == name && !tables.iter().any(|t| t.table == c.table))
                        .map(|c| format!("{} (checked in {}:{})", c.table, c.file.display(), c.line))
                        .collect(),
                    Err(_) => Vec::new(),
                };
                source.close().await;
                r.map(|_| missing)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(missing) if missing.is_empty() => {
                println!("ok: source `{name}` ({}) is reachable and readable", cfg.display_url())
            }
            Ok(missing) => {
                failed = true;
                for m in missing {
                    println!("error: source `{name}`: table {m} does not exist");
                }
            }
            Err(e) => {
                failed = true;
                println!("error: {e} ({})", cfg.display_url());
            }
        }
    }
    if failed { EXIT_RUNTIME } else { EXIT_OK }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

async fn run(agent: Arc<Agent>, shutdown: CancellationToken) -> i32 {
    let server = if agent.config.server.enabled {
        let listener = match tokio::net::TcpListener::bind(agent.config.server.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", agent.config.server.listen);
                return EXIT_RUNTIME;
            }
        };
        tracing::info!(address = %agent.config.server.listen, "API listening");
        let state = crate::api::ApiState { agent: Arc::clone(&agent) };
        Some(tokio::spawn(crate::api::serve(listener, state, shutdown.clone())))
    } else {
        None
    };
    // The outbox dispatcher stops a moment after the scheduler so the last incidents' alerts go
    // out; whatever is still pending is sent on the next start.
    let dispatcher_stop = CancellationToken::new();
    let dispatcher = tokio::spawn(crate::runtime::run_dispatcher(
        Arc::clone(&agent),
        crate::runtime::build_channels(&agent.config.alerting),
        dispatcher_stop.clone(),
    ));
    let lineage = tokio::spawn(crate::runtime::run_lineage(Arc::clone(&agent), shutdown.clone()));
    crate::runtime::run_scheduler(Arc::clone(&agent), shutdown.clone(), None).await;
    shutdown.cancel();
    let _ = lineage.await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while agent.store.due_notifications(agent.clock.now(), 1).await.is_ok_and(|d| !d.is_empty()) {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    dispatcher_stop.cancel();
    let _ = dispatcher.await;
    if let Some(server) = server {
        let _ = server.await;
    }
    tracing::info!("stopped");
    EXIT_OK
}

/// Cancels on the first SIGINT/SIGTERM; a second signal exits at once.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; send the signal again to quit at once");
        t.cancel();
        wait_for_signal().await;
        eprintln!("second signal: exiting now");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// What `telltale check` runs besides the checks themselves.
#[derive(Default)]
struct Selection {
    /// Monitors to report (empty = all).
    monitors: Vec<String>,
    /// Results found without measuring: breaking changes between dbt manifests.
    extra_outcomes: Vec<CheckOutcome>,
}

fn selection(
    args: &CheckArgs,
    config_path: &Path,
    config: &Config,
    checks: &mut CheckSet,
) -> Result<Selection, String> {
    let parse = |list: &[String]| list.iter().map(|s| select::Selector::parse(s)).collect::<Result<Vec<_>, _>>();
    let selectors = parse(&args.select)?;
    let excluded = parse(&args.exclude)?;
    // The current manifest: needed by --state, used by --changed-since when there is one.
    let has_manifest = args.manifest.is_some() || config.lineage.dbt_manifest.is_some();
    let manifest = if args.state.is_some() || (args.changed_since.is_some() && has_manifest) {
        Some(state::current_manifest(args.manifest.as_deref(), config)?)
    } else {
        None
    };
    // Assets a change touches; `None` when the run is not restricted to changes.
    let mut changed: Option<std::collections::BTreeSet<AssetId>> = None;
    let mut extra_outcomes = Vec::new();
    if let Some(git_ref) = &args.changed_since {
        let dir = config_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let files = select::changed_since(git_ref, dir)?;
        let mut assets = select::assets_in_files(checks, &files);
        if let Some(manifest) = &manifest {
            let source = state::manifest_source(config)?;
            assets = state::changed_with_downstream(manifest, &files, &assets, &source);
        }
        changed.get_or_insert_default().extend(assets);
    }
    if let Some(old_path) = &args.state {
        let old = state::load_manifest(old_path)?;
        let new = manifest.as_ref().expect("loaded above when --state is given");
        let source = state::manifest_source(config)?;
        let comparison = state::compare(&old, new, &source);
        eprintln!("{}", state::describe(&comparison, &old));
        changed.get_or_insert_default().extend(comparison.assets);
        extra_outcomes = comparison.breaking;
    }
    let monitors = select::apply(checks, &selectors, &excluded, changed.as_ref());
    // Breaking changes obey the asset selectors too.
    extra_outcomes.retain(|o| select::selects_asset(&selectors, &excluded, &o.asset));
    Ok(Selection { monitors, extra_outcomes })
}

fn progress_bar(agent: &Agent, forced: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let jobs = agent.sources.len() + agent.checks.assets.values().filter(|c| c.needs_queries()).count();
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if !forced && (in_ci || !std::io::stderr().is_terminal()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(jobs as u64), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} checks {elapsed}") {
        bar.set_style(style);
    }
    bar
}

async fn gate(
    agent: &Agent,
    asset: &str,
    wait: Option<std::time::Duration>,
    interval: std::time::Duration,
    upstream: bool,
) -> i32 {
    let asset: AssetId = match asset.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_CONFIG;
        }
    };
    let deadline = std::time::Instant::now() + wait.unwrap_or_default();
    loop {
        let checked = if upstream {
            agent.upstream_health(&asset).await.map(|h| (h.health, h.own, h.upstream))
        } else {
            crate::api::asset_health_of(agent, &asset).await.map(|(h, open, _)| (h, open, Vec::new()))
        };
        let (health, open, upstream_open) = match checked {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_RUNTIME;
            }
        };
        if health != crate::incident::Health::Broken {
            println!("{asset} is {}", health.as_str());
            return EXIT_OK;
        }
        if std::time::Instant::now() >= deadline {
            println!("{asset} is broken:");
            for i in &open {
                println!("  {} {} {}", i.severity_label(), i.id, i.title);
            }
            for i in &upstream_open {
                println!("  upstream {} {} {} ({})", i.severity, i.id, i.title, i.chain.join(" → "));
            }
            return EXIT_CHECK_FAILED;
        }
        tokio::time::sleep(interval.min(deadline.saturating_duration_since(std::time::Instant::now()))).await;
    }
}

/// Exit code of a gated run: 3 for an unreachable source (unless allowed), 1 when a failure at
/// or above `fail_on` (or an error) happened, 0 otherwise.
pub fn gate_exit_code(outcomes: &[CheckOutcome], fail_on: FailOn, allow_unreachable: bool) -> i32 {
    let unreachable =
        |o: &CheckOutcome| o.status == Status::Error && o.error_class == Some(crate::source::ErrorClass::Unreachable);
    if !allow_unreachable && outcomes.iter().any(unreachable) {
        return EXIT_RUNTIME;
    }
    let failing = outcomes.iter().any(|o| match o.status {
        Status::Fail => fail_on == FailOn::Warn || !o.is_warning(),
        Status::Error => !unreachable(o),
        _ => false,
    });
    if failing { EXIT_CHECK_FAILED } else { EXIT_OK }
}

pub fn exit_code(outcomes: &[CheckOutcome]) -> i32 {
    if outcomes
        .iter()
        .any(|o| o.status == Status::Error && o.error_class == Some(crate::source::ErrorClass::Unreachable))
    {
        EXIT_RUNTIME
    } else if outcomes.iter().any(|o| matches!(o.status, Status::Fail | Status::Error)) {
        EXIT_CHECK_FAILED
    } else {
        EXIT_OK
    }
}

/// Writes every output `telltale check` was asked for; a report that cannot be written turns the
/// run into a runtime error (CI must not pass on a missing report).
fn report(
    outcomes: &[CheckOutcome],
    args: &CheckArgs,
    code: i32,
    duration: std::time::Duration,
    started_at: chrono::DateTime<chrono::Utc>,
) -> i32 {
    print_outcomes_with(outcomes, args.format, code, duration, started_at);
    let mut result = code;
    if let Some(path) = &args.junit {
        let xml = crate::report::junit_xml(outcomes, "telltale", duration, started_at);
        if let Err(e) = std::fs::write(path, xml) {
            eprintln!("error: cannot write the JUnit report {}: {e}", path.display());
            result = EXIT_RUNTIME;
        }
    }
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        // Workflow commands go to stderr so `--format json > file` stays clean.
        let workspace = std::env::var("GITHUB_WORKSPACE").ok();
        eprint!("{}", crate::report::annotations(outcomes, workspace.as_deref()));
        if let Ok(path) = std::env::var("GITHUB_STEP_SUMMARY") {
            let summary = crate::report::markdown_summary(outcomes, "telltale check", duration, code);
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, summary.as_bytes()));
            if let Err(e) = written {
                eprintln!("warning: cannot write the step summary {path}: {e}");
            }
        }
    }
    result
}

fn print_outcomes_with(
    outcomes: &[CheckOutcome],
    format: Format,
    code: i32,
    duration: std::time::Duration,
    started_at: chrono::DateTime<chrono::Utc>,
) {
    use std::io::IsTerminal;
    match format {
        Format::Json => print!("{}", crate::report::json_report(outcomes, code, duration, started_at)),
        Format::Text => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print!("{}", crate::report::text_report(outcomes, colour));
        }
    }
}
