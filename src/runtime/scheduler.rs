//! The daemon loop: keeps each job's next due time, starts due jobs (one at a time per job, under
//! each source's concurrency bound), catches panics, and stops cleanly on shutdown.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Agent, CheckOutcome};
use crate::measure::AssetId;
use crate::schedule::Schedule;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Job {
    Metadata(String),
    Asset(AssetId),
    /// Freshness of every checked asset judged against the clock.
    FreshnessSweep,
    /// Delete history older than the retention.
    Prune,
    /// Re-notify open, unacknowledged incidents whose severity asks for it.
    Reminders,
}

impl Job {
    /// Metric label of the job kind.
    fn kind(&self) -> &'static str {
        match self {
            Job::Metadata(_) => "metadata",
            Job::Asset(_) => "asset",
            Job::FreshnessSweep => "freshness_sweep",
            Job::Prune => "prune",
            Job::Reminders => "reminders",
        }
    }

    fn key(&self) -> String {
        match self {
            Job::Metadata(s) => format!("metadata:{s}"),
            Job::Asset(a) => format!("asset:{a}"),
            Job::FreshnessSweep => "freshness-sweep".to_string(),
            Job::Prune => "prune".to_string(),
            Job::Reminders => "reminders".to_string(),
        }
    }
}

/// How often freshness is judged against the clock between polls.
static FRESHNESS_SWEEP: std::sync::LazyLock<Schedule> =
    std::sync::LazyLock::new(|| Schedule::every(Duration::from_secs(60)));

/// How often history older than the retention is deleted.
static PRUNE: std::sync::LazyLock<Schedule> = std::sync::LazyLock::new(|| Schedule::every(Duration::from_secs(3600)));

/// Optional observer of every finished job (the demo's live table, tests).
pub type OutcomeSink = tokio::sync::mpsc::Sender<Vec<CheckOutcome>>;

/// Runs until `shutdown` is cancelled, then lets in-flight jobs finish within the configured grace
/// period and cancels the rest.
pub async fn run_scheduler(agent: Arc<Agent>, shutdown: CancellationToken, outcomes: Option<OutcomeSink>) {
    let mut queue: BinaryHeap<Reverse<(DateTime<Utc>, Job)>> = BinaryHeap::new();
    let start = agent.clock.now();
    for name in agent.sources.keys() {
        queue.push(Reverse((start, Job::Metadata(name.clone()))));
    }
    for (asset, check) in &agent.checks.assets {
        if check.needs_queries() {
            queue.push(Reverse((start, Job::Asset(asset.clone()))));
        }
    }
    let first_cycle_jobs = queue.len();
    if agent.checks.assets.values().any(|c| c.freshness.is_some()) {
        let first = FRESHNESS_SWEEP.next_after("freshness-sweep", start);
        queue.push(Reverse((first, Job::FreshnessSweep)));
    }
    queue.push(Reverse((PRUNE.next_after("prune", start), Job::Prune)));
    if !agent.config.alerting.channels.is_empty() {
        queue.push(Reverse((FRESHNESS_SWEEP.next_after("reminders", start), Job::Reminders)));
    }
    let mut running: HashSet<Job> = HashSet::new();
    let mut tasks: JoinSet<Job> = JoinSet::new();
    let mut first_cycle: HashSet<Job> = queue
        .iter()
        .map(|Reverse((_, j))| j.clone())
        .filter(|j| !matches!(j, Job::FreshnessSweep | Job::Prune))
        .collect();
    tracing::info!(jobs = first_cycle_jobs, "scheduler started");

    loop {
        let Some(Reverse((due, _))) = queue.peek().cloned() else {
            // Nothing to schedule (no sources): wait for shutdown.
            shutdown.cancelled().await;
            break;
        };
        let now = agent.clock.now();
        let wait = (due - now).to_std().unwrap_or(Duration::ZERO);
        // Never sleep long: clocks may be scaled (demo) or moved (tests).
        let real_wait = agent.clock.real_duration(wait).min(Duration::from_secs(1));
        if !wait.is_zero() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    finished(done, &mut running, &mut first_cycle, &agent);
                }
                _ = tokio::time::sleep(real_wait) => {}
            }
            continue;
        }
        let Some(Reverse((due, job))) = queue.pop() else { continue };
        let lag = (now - due).to_std().unwrap_or_default().as_secs_f64();
        crate::telemetry::metrics::global().observe(&crate::telemetry::metrics::SCHEDULER_LAG, &[job.kind()], lag);
        let schedule = schedule_of(&agent, &job);
        queue.push(Reverse((schedule.next_after(&job.key(), now), job.clone())));
        if running.contains(&job) {
            tracing::debug!(job = job.key(), "previous run still in progress; skipping this slot");
            continue;
        }
        running.insert(job.clone());
        let agent2 = Arc::clone(&agent);
        let token = shutdown.clone();
        let sink = outcomes.clone();
        let job2 = job.clone();
        tasks.spawn(async move {
            // A panic inside a job is caught here so the job can be scheduled again.
            let work = async {
                match &job2 {
                    Job::Metadata(source) => agent2.metadata_job(source, &token).await,
                    Job::FreshnessSweep => {
                        let span = crate::telemetry::spans::freshness_sweep_run();
                        crate::telemetry::spans::traced_run(span, "freshness_sweep", agent2.freshness_sweep()).await
                    }
                    Job::Reminders => {
                        if let Err(e) = agent2.remind().await {
                            tracing::error!(error = %e, "cannot queue reminders");
                        }
                        Vec::new()
                    }
                    Job::Prune => {
                        let before = agent2.clock.now()
                            - chrono::Duration::from_std(agent2.config.retention).unwrap_or_default();
                        match agent2.store.prune(before).await {
                            Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned history older than the retention"),
                            Ok(_) => {}
                            Err(e) => tracing::error!(error = %e, "pruning the store failed"),
                        }
                        Vec::new()
                    }
                    Job::Asset(asset) => {
                        if agent2.needs_backfill(asset).await
                            && let Err(e) = agent2.backfill(asset, 30, &token).await
                        {
                            tracing::warn!(asset = %asset, error = %e, "automatic backfill failed");
                        }
                        agent2.asset_job(asset, &token).await
                    }
                }
            };
            match futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(work)).await {
                Ok(result) => {
                    agent2.process_outcomes(&result).await;
                    if let Some(sink) = sink {
                        let _ = sink.try_send(result);
                    }
                }
                Err(_) => tracing::error!(job = job2.key(), "job panicked; it will run again at its next slot"),
            }
            job2
        });
    }

    tracing::info!(in_flight = tasks.len(), "shutting down: waiting for in-flight checks");
    let grace = agent.config.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while let Some(done) = tasks.join_next().await {
            finished(done, &mut running, &mut first_cycle, &agent);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(cancelled = tasks.len(), "grace period over: cancelling in-flight checks");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

fn finished(
    done: Result<Job, tokio::task::JoinError>,
    running: &mut HashSet<Job>,
    first_cycle: &mut HashSet<Job>,
    agent: &Agent,
) {
    match done {
        Ok(job) => {
            running.remove(&job);
            first_cycle.remove(&job);
            if first_cycle.is_empty() && !agent.is_ready() {
                agent.set_ready();
                tracing::info!("first cycle complete: ready");
            }
        }
        Err(e) => tracing::error!(error = %e, "job task failed"),
    }
}

fn schedule_of(agent: &Agent, job: &Job) -> Schedule {
    match job {
        Job::Metadata(source) => agent
            .config
            .source(source)
            .map(|s| s.schedule.clone())
            .unwrap_or_else(|| Schedule::every(Duration::from_secs(300))),
        Job::Asset(asset) => agent
            .check_for(asset)
            .map(|c| c.schedule.clone())
            .unwrap_or_else(|| Schedule::every(Duration::from_secs(3600))),
        Job::FreshnessSweep => FRESHNESS_SWEEP.clone(),
        Job::Prune => PRUNE.clone(),
        Job::Reminders => FRESHNESS_SWEEP.clone(),
    }
}
