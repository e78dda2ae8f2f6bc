//! Wiring and lifecycle: builds sources and the store from config, runs the scheduler, and shuts
//! down in order (stop scheduling → let in-flight checks finish within the grace period → cancel
//! the rest → close sources → close the store).

mod detection;
mod incidents;
mod jobs;
mod lineage;
mod scheduler;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::check::{AssetCheck, CheckSet};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::detect::Verdict;
use crate::measure::{AssetId, MetricKind};
use crate::source::{self, ErrorClass, SharedSource, SourceError};
use crate::store::{Store, StoreError};

pub use detection::{class_of, noun};
pub use incidents::{Channel, IncidentActionError, build_channels, run_dispatcher};
pub use jobs::{ChangeInference, infer_change};
pub use lineage::{
    DeclaredReload, Dependents, ImpactReport, IncidentLineage, Lineage, LoadStats, Symptom, UpstreamHealth,
    UpstreamIncident, run_lineage,
};
pub use scheduler::run_scheduler;

/// Result of one monitor on one asset in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckOutcome {
    pub asset: AssetId,
    /// `freshness`, `volume`, `schema`, `column`, `custom_sql` or `source`.
    pub monitor: String,
    /// Column or custom metric name, when the monitor has one.
    pub subject: Option<String>,
    pub status: Status,
    /// Observed value, when there is one.
    pub value: Option<f64>,
    pub message: String,
    /// Check definition (file and line) that asked for it, if any.
    pub definition: Option<String>,
    /// The metric judged, when the outcome is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricKind>,
    /// The column (or custom metric name) of that metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Why a measurement could not be taken (for `Error` outcomes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    /// The detector's verdict, for metrics with learned thresholds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// A failure that warns rather than breaks (a breaking change nothing downstream reads): it
    /// fails a gate only with `--fail-on warn`, like an anomaly.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub advisory: bool,
}

impl CheckOutcome {
    /// A failure that only a learned threshold saw (no hard rule broken), or an advisory one: a
    /// warning for gates.
    pub fn is_warning(&self) -> bool {
        self.status == Status::Fail && (self.advisory || self.message.starts_with("anomaly: "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Measured and within every hard rule.
    Pass,
    /// Measured; no hard rule applies and learned thresholds (if any) found nothing unusual or
    /// are still learning.
    Recorded,
    /// A hard rule was broken.
    Fail,
    /// The measurement could not be taken.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Recorded => "recorded",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("no such asset `{0}`; `telltale validate` lists the checked assets, the API lists discovered ones")]
    UnknownAsset(String),
}

/// Everything the agent needs at run time; shared by the scheduler, the CLI and the API.
pub struct Agent {
    pub config: Config,
    pub checks: CheckSet,
    pub store: Store,
    pub clock: SharedClock,
    pub sources: BTreeMap<String, SharedSource>,
    permits: HashMap<String, Arc<Semaphore>>,
    ready: AtomicBool,
    /// One streaming detector per judged series.
    pub detectors: detection::Detectors,
    /// Serializes incident updates (jobs of one asset may finish together).
    incident_lock: tokio::sync::Mutex<()>,
    /// Wakes the outbox dispatcher when notifications were queued.
    pub outbox_ready: tokio::sync::Notify,
    /// The live lineage graph: dbt manifest, OpenLineage events, declared lineage.
    pub lineage: Lineage,
    /// Assets the freshness sweep currently sees as late (to record each excursion once).
    late: std::sync::Mutex<std::collections::HashSet<AssetId>>,
    /// Retries for retryable source errors (unreachable, timeout) within one run.
    pub retries: u32,
    pub retry_base: Duration,
}

impl Agent {
    /// Builds sources (connections open lazily) and opens the store.
    pub async fn new(config: Config, checks: CheckSet, clock: SharedClock) -> Result<Arc<Agent>, RuntimeError> {
        let store = Store::open(config.store.expose()).await?;
        let mut sources = BTreeMap::new();
        let mut permits = HashMap::new();
        for (name, cfg) in &config.sources {
            sources.insert(name.clone(), source::connect(cfg)?);
            permits.insert(name.clone(), Arc::new(Semaphore::new(cfg.max_connections as usize)));
        }
        let lineage = Lineage::new(&config);
        lineage.load(&checks, &store, clock.now()).await?;
        Ok(Arc::new(Agent {
            config,
            checks,
            store,
            clock,
            sources,
            permits,
            ready: AtomicBool::new(false),
            detectors: detection::Detectors::default(),
            late: std::sync::Mutex::new(std::collections::HashSet::new()),
            lineage,
            incident_lock: tokio::sync::Mutex::new(()),
            outbox_ready: tokio::sync::Notify::new(),
            retries: 2,
            retry_base: Duration::from_secs(1),
        }))
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn check_for(&self, asset: &AssetId) -> Option<&AssetCheck> {
        self.checks.assets.get(asset)
    }

    /// Runs every metadata scan and every asset check once, now (`telltale check`).
    pub async fn run_once(self: &Arc<Self>, shutdown: &CancellationToken) -> Vec<CheckOutcome> {
        self.run_once_with_progress(shutdown, &|| {}).await
    }

    /// `run_once`, calling `tick` as each job finishes (progress bars).
    pub async fn run_once_with_progress(
        self: &Arc<Self>,
        shutdown: &CancellationToken,
        tick: &dyn Fn(),
    ) -> Vec<CheckOutcome> {
        let mut tasks = tokio::task::JoinSet::new();
        for name in self.sources.keys() {
            let agent = Arc::clone(self);
            let name = name.clone();
            let token = shutdown.clone();
            tasks.spawn(async move { agent.metadata_job(&name, &token).await });
        }
        let mut outcomes = Vec::new();
        while let Some(r) = tasks.join_next().await {
            outcomes.extend(r.unwrap_or_default());
            tick();
        }
        // A source whose catalog could not be reached gets no per-table queries: each would wait
        // out its own connection timeouts and retries only to fail the same way.
        let unreachable: std::collections::HashSet<String> = outcomes
            .iter()
            .filter(|o| o.error_class == Some(ErrorClass::Unreachable))
            .map(|o| o.asset.source().to_string())
            .collect();
        for asset in self.checks.assets.keys().filter(|a| self.checks.assets[*a].needs_queries()) {
            if unreachable.contains(asset.source()) {
                tick();
                continue;
            }
            let agent = Arc::clone(self);
            let asset = asset.clone();
            let token = shutdown.clone();
            tasks.spawn(async move { agent.asset_job(&asset, &token).await });
        }
        while let Some(r) = tasks.join_next().await {
            outcomes.extend(r.unwrap_or_default());
            tick();
        }
        self.set_ready();
        outcomes.sort_by(|a, b| (&a.asset, &a.monitor, &a.subject).cmp(&(&b.asset, &b.monitor, &b.subject)));
        outcomes
    }

    /// Closes sources and the store. A connection still busy with a cancelled query is not
    /// waited for beyond a few seconds (the server cancels the orphaned query on its own).
    pub async fn close(&self) {
        for (name, source) in &self.sources {
            if tokio::time::timeout(Duration::from_secs(3), source.close()).await.is_err() {
                tracing::warn!(source = name.as_str(), "source connections still busy; closing without waiting");
            }
        }
        self.store.close().await;
    }

    /// Runs `f` against a source under its concurrency bound, retrying retryable errors with
    /// jittered exponential backoff unless shutting down.
    async fn with_source<T, F, Fut>(&self, name: &str, shutdown: &CancellationToken, f: F) -> Result<T, SourceError>
    where
        F: Fn(SharedSource) -> Fut,
        Fut: std::future::Future<Output = Result<T, SourceError>>,
    {
        let source = self
            .sources
            .get(name)
            .cloned()
            .ok_or_else(|| SourceError::Unsupported(format!("source `{name}` is not configured")))?;
        let permits = self.permits.get(name).cloned();
        let mut attempt = 0;
        loop {
            let _permit = match &permits {
                Some(p) => Some(p.acquire().await.map_err(|_| SourceError::Unsupported("shutting down".into()))?),
                None => None,
            };
            match f(Arc::clone(&source)).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.retries && !shutdown.is_cancelled() => {
                    attempt += 1;
                    let backoff =
                        self.retry_base.mul_f64(2f64.powi(attempt as i32 - 1) * (0.75 + rand::random::<f64>() * 0.5));
                    tracing::warn!(source = name, attempt, error = %e, "retrying after {backoff:?}");
                    drop(_permit);
                    tokio::select! {
                        _ = shutdown.cancelled() => return Err(e),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}
