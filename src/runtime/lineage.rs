//! Lineage as live agent state: one shared graph fed by the dbt manifest (reloaded when the file
//! changes), OpenLineage events (`POST /api/v1/lineage`) and lineage declared in check files, with
//! what OpenLineage taught saved to the store (so a restart keeps it).
//!
//! Also the questions the API, the CLI and incidents ask of it: the blast radius of an asset
//! grouped by kind ([`ImpactReport`]), open incidents upstream of an asset ([`UpstreamHealth`]),
//! and the upstream chain between two assets.
//!
//! Writes take the graph's write lock for the time of one in-memory ingest (microseconds); the
//! store is written by [`run_lineage`] in batches every `lineage.reload_interval`, and once more
//! at shutdown.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::Agent;
use crate::catalog::openlineage::{self, Ingest, LineageEvent, SourceRule, SourceRules};
use crate::catalog::{
    AssetGroup, AssetKind, CatalogAsset, GraphError, ImpactOptions, JobRun, LineageGraph, NodeId, Origin, Owner,
};
use crate::check::{AssetCheck, CheckSet, DeclaredRef};
use crate::config::Config;
use crate::incident::{Health, Incident};
use crate::measure::AssetId;
use crate::store::{LineageBatch, LineagePruned, LoadedLineage, Store, StoreError, StoredEdge, StoredNode};

/// Learned lineage not yet saved, keyed so a busy job's repeated events coalesce.
#[derive(Default)]
struct Pending {
    nodes: HashMap<String, StoredNode>,
    edges: HashMap<(String, String), StoredEdge>,
    runs: HashMap<String, JobRun>,
}

impl Pending {
    fn add_node(&mut self, node: StoredNode) {
        match self.nodes.get_mut(&node.key) {
            Some(known) => {
                known.updated_at = node.updated_at;
                if node.owner.is_some() {
                    known.owner = node.owner;
                }
                if node.column_lineage.is_some() {
                    known.column_lineage = node.column_lineage;
                }
            }
            None => {
                self.nodes.insert(node.key.clone(), node);
            }
        }
    }

    fn into_batch(self) -> LineageBatch {
        LineageBatch {
            nodes: self.nodes.into_values().collect(),
            edges: self.edges.into_values().collect(),
            runs: self.runs.into_iter().collect(),
        }
    }

    /// Puts back a batch that could not be saved (newer pending entries win).
    fn restore(&mut self, batch: LineageBatch) {
        for n in batch.nodes {
            self.nodes.entry(n.key.clone()).or_insert(n);
        }
        for e in batch.edges {
            self.edges.entry((e.from.clone(), e.to.clone())).or_insert(e);
        }
        for (k, r) in batch.runs {
            self.runs.entry(k).or_insert(r);
        }
    }
}

/// What the agent knows about a dbt manifest (and its run results) on disk.
struct ManifestWatch {
    path: PathBuf,
    source: String,
    modified: Mutex<Option<SystemTime>>,
    run_results: Option<PathBuf>,
    run_results_modified: Mutex<Option<SystemTime>>,
}

/// The check files as last seen (path, modification time, size): declared lineage is re-read
/// when this changes.
type CheckFilesSeen = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn check_files_seen(config: &Config) -> CheckFilesSeen {
    CheckSet::files_of(config)
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (path, modified, len)
        })
        .collect()
}

/// The live lineage graph of an agent.
pub struct Lineage {
    graph: RwLock<LineageGraph>,
    rules: SourceRules,
    manifest: Option<ManifestWatch>,
    /// The check files when declared lineage was last read.
    check_files: Mutex<CheckFilesSeen>,
    pending: Mutex<Pending>,
}

/// What re-reading declared lineage changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeclaredReload {
    /// Declared edges now in the graph.
    pub edges: usize,
    /// Declared edges no check file declares any more, withdrawn.
    pub withdrawn: usize,
}

/// How a load went, for logs and the lineage benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LoadStats {
    pub dbt_nodes: usize,
    pub declared_edges: usize,
    pub stored_nodes: usize,
    pub stored_edges: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lineage {
    /// An empty graph mapping OpenLineage datasets to the configured sources.
    pub fn new(config: &Config) -> Lineage {
        let rules = config.sources.values().filter_map(|s| SourceRule::from_url(&s.name, s.url.expose())).collect();
        let manifest = match (&config.lineage.dbt_manifest, &config.lineage.source) {
            (Some(path), Some(source)) => Some(ManifestWatch {
                path: path.clone(),
                source: source.clone(),
                modified: Mutex::new(None),
                run_results: config.lineage.dbt_run_results.clone(),
                run_results_modified: Mutex::new(None),
            }),
            _ => None,
        };
        Lineage {
            graph: RwLock::new(LineageGraph::new()),
            rules: SourceRules(rules),
            manifest,
            check_files: Mutex::new(check_files_seen(config)),
            pending: Mutex::new(Pending::default()),
        }
    }

    /// The graph, for reading (never hold the guard across an `.await`).
    pub fn graph(&self) -> RwLockReadGuard<'_, LineageGraph> {
        self.graph.read().unwrap_or_else(|e| e.into_inner())
    }

    fn graph_mut(&self) -> std::sync::RwLockWriteGuard<'_, LineageGraph> {
        self.graph.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads everything at start: the dbt manifest (a broken one is logged, not fatal), lineage
    /// declared in check files, then what OpenLineage taught before the restart.
    pub async fn load(&self, checks: &CheckSet, store: &Store, now: DateTime<Utc>) -> Result<LoadStats, StoreError> {
        let mut stats = LoadStats::default();
        match self.reload_manifest(now) {
            Ok(Some(n)) => stats.dbt_nodes = n,
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot load the dbt manifest; lineage starts without it"),
        }
        if let Err(e) = self.reload_run_results() {
            tracing::error!(error = %e, "cannot load dbt run results");
        }
        stats.declared_edges = self.apply_declared(checks, now);
        let stored = store.load_lineage().await?;
        stats.stored_nodes = stored.nodes.len();
        stats.stored_edges = stored.edges.len();
        self.apply_stored(&stored);
        Ok(stats)
    }

    /// Re-reads the manifest when its modification time changed; returns the number of dbt nodes
    /// loaded (`None`: unchanged or not configured). Edges the new manifest no longer has are
    /// withdrawn.
    pub fn reload_manifest(&self, now: DateTime<Utc>) -> Result<Option<usize>, String> {
        let Some(watch) = &self.manifest else { return Ok(None) };
        let describe = |e: &dyn std::fmt::Display| format!("{}: {e}", watch.path.display());
        let modified = std::fs::metadata(&watch.path).and_then(|m| m.modified()).map_err(|e| describe(&e))?;
        if *lock(&watch.modified) == Some(modified) {
            return Ok(None);
        }
        let bytes = std::fs::read(&watch.path).map_err(|e| describe(&e))?;
        let manifest = crate::catalog::dbt::parse_manifest(&bytes).map_err(|e| describe(&e))?;
        let source = watch.source.clone();
        let mut graph = self.graph_mut();
        let loaded = manifest.add_to_graph(&mut graph, &|_, _| Some(source.clone()), now).map_err(|e| describe(&e))?;
        let withdrawn = graph.retract_stale(Origin::Dbt, now);
        drop(graph);
        *lock(&watch.modified) = Some(modified);
        // A new manifest may hold new nodes: the run results apply again.
        *lock(&watch.run_results_modified) = None;
        tracing::info!(manifest = %watch.path.display(), nodes = loaded.nodes, edges = loaded.edges, withdrawn, "dbt manifest loaded");
        Ok(Some(loaded.nodes))
    }

    /// Re-reads dbt's `run_results.json` when it changed (or the manifest was reloaded): the last
    /// dbt run of each node. Returns the number of nodes updated (`None`: unchanged).
    pub fn reload_run_results(&self) -> Result<Option<usize>, String> {
        let Some(watch) = &self.manifest else { return Ok(None) };
        let Some(path) = &watch.run_results else { return Ok(None) };
        let describe = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).map_err(|e| describe(&e))?;
        if *lock(&watch.run_results_modified) == Some(modified) {
            return Ok(None);
        }
        let bytes = std::fs::read(path).map_err(|e| describe(&e))?;
        let results = crate::catalog::dbt::parse_run_results(&bytes).map_err(|e| describe(&e))?;
        let updated = results.apply(&mut self.graph_mut());
        *lock(&watch.run_results_modified) = Some(modified);
        Ok(Some(updated))
    }

    /// Re-reads declared lineage when a check file changed, appeared or went (modification time
    /// or size; checked every `lineage.reload_interval`). Edges no check file declares any more
    /// are withdrawn. Check files with mistakes are logged and the declared lineage stays as it
    /// was. `None`: nothing changed.
    pub fn reload_declared(&self, config: &Config, now: DateTime<Utc>) -> Result<Option<DeclaredReload>, String> {
        let seen = check_files_seen(config);
        if *lock(&self.check_files) == seen {
            return Ok(None);
        }
        *lock(&self.check_files) = seen;
        let checks = CheckSet::load(config).map_err(|problems| problems.to_string())?;
        let reload = self.replace_declared(&checks, now);
        tracing::info!(
            edges = reload.edges,
            withdrawn = reload.withdrawn,
            "declared lineage reloaded from check files"
        );
        Ok(Some(reload))
    }

    /// Adds `upstream:` / `downstream:` of every check; returns the number of edges.
    pub fn apply_declared(&self, checks: &CheckSet, now: DateTime<Utc>) -> usize {
        self.replace_declared(checks, now).edges
    }

    /// Makes the declared edges those of `checks`: adds theirs, withdraws the declared origin from
    /// every other edge (an edge another source reports stays, with that source only).
    pub fn replace_declared(&self, checks: &CheckSet, now: DateTime<Utc>) -> DeclaredReload {
        let mut graph = self.graph_mut();
        let mut declared: HashSet<(NodeId, NodeId)> = HashSet::new();
        for check in checks.assets.values() {
            if check.upstream.is_empty() && check.downstream.is_empty() {
                continue;
            }
            let Ok(this) = declared_table(&mut graph, &check.asset, Some(check)) else { continue };
            for (item, downstream) in
                check.upstream.iter().map(|i| (i, false)).chain(check.downstream.iter().map(|i| (i, true)))
            {
                let other = match item {
                    DeclaredRef::Asset(asset) => declared_table(&mut graph, asset, checks.assets.get(asset)),
                    DeclaredRef::External { name, kind, owner, url, tier, key, .. } => {
                        let mut asset = CatalogAsset::new(format!("declared.{kind}.{name}"), name.clone(), *kind);
                        asset.owner = owner.as_deref().and_then(Owner::parse);
                        asset.url = url.clone();
                        asset.tier = *tier;
                        asset.key_asset = *key;
                        graph.upsert(asset, Origin::Declared)
                    }
                };
                let Ok(other) = other else { continue };
                let (from, to) = if downstream { (this, other) } else { (other, this) };
                if graph.add_edge(from, to, Origin::Declared, now).ok().flatten().is_some() {
                    declared.insert((from, to));
                }
            }
        }
        let stale: Vec<(NodeId, NodeId)> = graph
            .edges()
            .filter(|(_, e)| e.last_seen(Origin::Declared).is_some() && !declared.contains(&(e.from, e.to)))
            .map(|(_, e)| (e.from, e.to))
            .collect();
        for &(from, to) in &stale {
            graph.retract_edge(from, to, Origin::Declared);
        }
        DeclaredReload { edges: declared.len(), withdrawn: stale.len() }
    }

    /// View lineage of one SQL source: each view's definition is parsed and every table it reads
    /// becomes an edge `table → view` (origin `sql`). Replaces the source's previous view lineage
    /// (edges into its views no definition reads any more lose the `sql` origin). Definitions
    /// that do not parse are skipped and counted. Returns (edges, withdrawn, unparsed).
    pub fn apply_views(
        &self,
        source: &str,
        kind: crate::config::SourceKind,
        views: &[crate::source::ViewDefinition],
        now: DateTime<Utc>,
    ) -> (usize, usize, usize) {
        let default_schema = match kind {
            crate::config::SourceKind::Sqlite => "main",
            _ => "public",
        };
        let mut graph = self.graph_mut();
        let mut current: HashSet<(NodeId, NodeId)> = HashSet::new();
        let mut unparsed = 0;
        for view in views {
            let tables = match crate::catalog::sql::view_sources(&view.sql, kind, default_schema) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(source, view = %view.view.qualified(), error = %e, "cannot parse a view definition");
                    unparsed += 1;
                    continue;
                }
            };
            let Ok(to) = sql_node(&mut graph, &AssetId::new(source, &view.view), AssetKind::View) else { continue };
            for table in tables {
                let Ok(from) = sql_node(&mut graph, &AssetId::new(source, &table), AssetKind::Table) else { continue };
                if graph.add_edge(from, to, Origin::Sql, now).ok().flatten().is_some() {
                    current.insert((from, to));
                }
            }
        }
        let stale: Vec<(NodeId, NodeId)> = graph
            .edges()
            .filter(|(_, e)| e.last_seen(Origin::Sql).is_some() && !current.contains(&(e.from, e.to)))
            .filter(|(_, e)| graph.asset(e.to).asset_id.as_ref().is_some_and(|a| a.source() == source))
            .map(|(_, e)| (e.from, e.to))
            .collect();
        for &(from, to) in &stale {
            graph.retract_edge(from, to, Origin::Sql);
        }
        (current.len(), stale.len(), unparsed)
    }

    /// Reads the view definitions of every SQL source and applies them ([`Lineage::apply_views`]).
    pub async fn reload_views(&self, agent: &Agent) {
        for (name, source) in &agent.sources {
            let kind = source.kind();
            match source.view_definitions().await {
                Ok(views) => {
                    let (edges, withdrawn, unparsed) = self.apply_views(name, kind, &views, agent.clock.now());
                    tracing::info!(source = %name, views = views.len(), edges, withdrawn, unparsed, "view lineage loaded");
                }
                Err(e) => tracing::error!(source = %name, error = %e, "cannot read view definitions"),
            }
        }
    }

    fn apply_stored(&self, stored: &LoadedLineage) {
        let mut graph = self.graph_mut();
        // Store id → graph node: ids are dense (an autoincrement), so a vector indexed by id.
        let max_id = stored.nodes.iter().map(|(id, _)| *id).max().unwrap_or(0).max(0) as usize;
        let mut by_id: Vec<Option<NodeId>> = vec![None; max_id + 1];
        for (id, n) in &stored.nodes {
            let mut asset = if n.kind == "job" {
                openlineage::job_asset(&n.namespace, &n.name, n.owner.clone())
            } else {
                openlineage::dataset_asset(&n.namespace, &n.name, n.owner.clone(), &self.rules)
            };
            asset.column_lineage = n.column_lineage.clone().map(Box::new);
            match graph.upsert(asset, Origin::OpenLineage) {
                Ok(node) => {
                    if let Some(slot) = usize::try_from(*id).ok().and_then(|i| by_id.get_mut(i)) {
                        *slot = Some(node);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot load stored lineage");
                    return;
                }
            }
        }
        let node = |id: i64| usize::try_from(id).ok().and_then(|i| by_id.get(i).copied().flatten());
        for e in &stored.edges {
            let (Some(from), Some(to)) = (node(e.from), node(e.to)) else { continue };
            let job = e.job.and_then(node);
            let seen = DateTime::from_timestamp_millis(e.seen_ms).unwrap_or_default();
            let _ = graph.add_edge_via(from, to, Origin::OpenLineage, seen, job);
        }
        for (key, run) in &stored.runs {
            if let Some(node) = graph.find(key) {
                openlineage::record_run(&mut graph, node, run);
            }
        }
    }

    /// Merges one OpenLineage event into the graph and queues what it taught for the store.
    pub fn ingest(&self, event: &LineageEvent, now: DateTime<Utc>) -> Result<Ingest, GraphError> {
        let mut graph = self.graph_mut();
        let result = openlineage::ingest(&mut graph, event, &self.rules, now)?;
        let mut pending = lock(&self.pending);
        for d in event.inputs.iter().chain(&event.outputs) {
            pending.add_node(StoredNode {
                key: d.key(),
                kind: "dataset".into(),
                namespace: d.namespace.clone(),
                name: d.name.clone(),
                owner: d.owners.first().cloned(),
                column_lineage: d.column_lineage.clone(),
                updated_at: now,
            });
        }
        let Some(job) = &event.job else { return Ok(result) };
        let job_key = job.key();
        pending.add_node(StoredNode {
            key: job_key.clone(),
            kind: "job".into(),
            namespace: job.namespace.clone(),
            name: job.name.clone(),
            owner: job.owners.first().cloned(),
            column_lineage: None,
            updated_at: now,
        });
        let edges = event
            .inputs
            .iter()
            .map(|d| (d.key(), job_key.clone()))
            .chain(event.outputs.iter().map(|d| (job_key.clone(), d.key())));
        for (from, to) in edges {
            let edge = StoredEdge { from: from.clone(), to: to.clone(), job: Some(job_key.clone()), seen_at: now };
            pending.edges.insert((from, to), edge);
        }
        if result.runs > 0
            && let Some(job_node) = result.job
        {
            for node in std::iter::once(job_node).chain(graph.children(job_node)) {
                let asset = graph.asset(node);
                if let Some(run) = &asset.last_run {
                    pending.runs.insert(asset.key.clone(), run.clone());
                }
            }
        }
        Ok(result)
    }

    /// Saves what OpenLineage taught since the last flush; returns the rows written. On failure
    /// the batch stays queued for the next flush.
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let batch = std::mem::take(&mut *lock(&self.pending)).into_batch();
        if batch.is_empty() {
            return Ok(0);
        }
        let rows = batch.len();
        match store.save_lineage(&batch).await {
            Ok(()) => Ok(rows),
            Err(e) => {
                lock(&self.pending).restore(batch);
                Err(e)
            }
        }
    }

    /// Retention: forgets learned lineage not seen since `now - retention` — edges and runs in the
    /// store (and nodes nothing refers to any more), and the OpenLineage origin of older edges in
    /// the live graph (an edge dbt or a check file also reports stays, with those origins only).
    /// The store's counts come back.
    pub async fn prune(
        &self,
        store: &Store,
        now: DateTime<Utc>,
        retention: std::time::Duration,
    ) -> Result<LineagePruned, StoreError> {
        let cutoff = chrono::Duration::from_std(retention)
            .ok()
            .and_then(|r| now.checked_sub_signed(r))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let withdrawn = self.graph_mut().retract_stale(Origin::OpenLineage, cutoff);
        if withdrawn > 0 {
            tracing::info!(withdrawn, "withdrew OpenLineage edges older than lineage.retention from the graph");
        }
        store.prune_lineage(cutoff).await
    }

    /// The node of a telltale asset (or a key, or an alias).
    pub fn resolve(&self, text: &str) -> Option<NodeId> {
        self.graph().resolve(text)
    }

    /// The chain from `root` down to `asset` (`[root, …, asset]`, display names), when `root` is
    /// upstream of `asset` within `depth` hops.
    pub fn chain(&self, root: &str, asset: &str, depth: u32) -> Option<Vec<String>> {
        let graph = self.graph();
        let (root, node) = (graph.resolve(root)?, graph.resolve(asset)?);
        let upstream = graph.upstream(node, Some(depth));
        let mut chain = upstream.chain_to(root)?;
        chain.reverse();
        Some(chain.into_iter().map(|n| label(graph.asset(n))).collect())
    }

    /// Telltale assets upstream of `asset` within `depth` hops, nearest first.
    pub fn upstream_assets(&self, asset: &AssetId, depth: u32) -> Vec<AssetId> {
        let graph = self.graph();
        let Some(node) = graph.find_asset(asset) else { return Vec::new() };
        graph.upstream(node, Some(depth)).nodes.iter().filter_map(|n| graph.asset(n.node).asset_id.clone()).collect()
    }

    /// The last run of the job writing `asset`, when OpenLineage (or dbt) reported one.
    pub fn last_run(&self, asset: &AssetId) -> Option<JobRun> {
        let graph = self.graph();
        graph.find_asset(asset).and_then(|n| graph.asset(n).last_run.clone())
    }
}

/// What people call a node: its telltale asset, else its display name.
fn label(asset: &CatalogAsset) -> String {
    asset.asset_id.as_ref().map(AssetId::to_string).unwrap_or_else(|| asset.display_name().to_string())
}

/// The node of a declared telltale table: the existing one (dbt, OpenLineage) when the asset is
/// known, a new `table` node otherwise. The check's owner and tier fill what is missing.
fn declared_table(graph: &mut LineageGraph, asset: &AssetId, check: Option<&AssetCheck>) -> Result<NodeId, GraphError> {
    let owner = check.and_then(|c| c.owner.as_deref()).and_then(Owner::parse);
    let tier = check.and_then(|c| c.tier);
    if let Some(node) = graph.find_asset(asset) {
        graph.update(node, |a| {
            if a.owner.is_none() {
                a.owner = owner;
            }
            if a.tier.is_none() {
                a.tier = tier;
            }
        });
        return Ok(node);
    }
    let mut node = CatalogAsset::new(
        asset.to_string(),
        asset.as_str().rsplit('.').next().unwrap_or_default().to_string(),
        AssetKind::Table,
    );
    node.asset_id = Some(asset.clone());
    node.owner = owner;
    node.tier = tier;
    graph.upsert(node, Origin::Declared)
}

/// The node of a telltale asset found in a view definition: the existing one, else a new node of
/// `kind` (origin `sql`, the lowest: it never overrides what other sources say).
fn sql_node(graph: &mut LineageGraph, asset: &AssetId, kind: AssetKind) -> Result<NodeId, GraphError> {
    if let Some(node) = graph.find_asset(asset) {
        return Ok(node);
    }
    let mut node =
        CatalogAsset::new(asset.to_string(), asset.as_str().rsplit('.').next().unwrap_or_default().to_string(), kind);
    node.asset_id = Some(asset.clone());
    graph.upsert(node, Origin::Sql)
}

/// Reloads the manifest, its run results and declared lineage when their files change, saves
/// learned lineage, and prunes it past `lineage.retention`, every `lineage.reload_interval`, until
/// `shutdown` (then saves once more).
pub async fn run_lineage(agent: Arc<Agent>, shutdown: CancellationToken) {
    let every = agent.config.lineage.reload_interval;
    let mut pruned_at: Option<DateTime<Utc>> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = agent.lineage.reload_manifest(agent.clock.now()) {
            tracing::error!(error = %e, "cannot reload the dbt manifest; keeping the previous lineage");
        }
        if let Err(e) = agent.lineage.reload_run_results() {
            tracing::error!(error = %e, "cannot reload dbt run results");
        }
        if let Err(e) = agent.lineage.reload_declared(&agent.config, agent.clock.now()) {
            tracing::error!(error = %e, "cannot reload declared lineage from the check files; keeping the previous one");
        }
        if let Err(e) = agent.lineage.flush(&agent.store).await {
            tracing::error!(error = %e, "cannot save learned lineage; retrying later");
        }
        let now = agent.clock.now();
        if pruned_at.is_none_or(|at| now - at >= chrono::Duration::hours(1)) {
            pruned_at = Some(now);
            if agent.config.lineage.sql_views {
                agent.lineage.reload_views(&agent).await;
            }
            match agent.lineage.prune(&agent.store, now, agent.config.lineage.retention).await {
                Ok(p) if p.total() > 0 => tracing::info!(
                    edges = p.edges,
                    runs = p.runs,
                    nodes = p.nodes,
                    "pruned learned lineage older than lineage.retention"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot prune learned lineage"),
            }
        }
    }
    if let Err(e) = agent.lineage.flush(&agent.store).await {
        tracing::error!(error = %e, "cannot save learned lineage at shutdown");
    }
}

// ------------------------------------------------------------------------------ blast radius --

/// One downstream asset in an impact report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpactEntry {
    pub key: String,
    pub name: String,
    pub kind: AssetKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<AssetId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub key_asset: bool,
    /// Hops from the asset (1 = a direct dependent).
    pub depth: u32,
    /// The upstream neighbour it was reached through.
    pub via: String,
}

/// One group of an impact report (dashboards, ML models, applications, notebooks, tables).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpactGroup {
    pub group: &'static str,
    pub count: usize,
    pub key_count: usize,
    /// Most important first (only the listed ones when `limit` cut the list).
    pub assets: Vec<ImpactEntry>,
}

/// An owner of downstream assets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpactOwner {
    pub owner: Owner,
    pub assets: usize,
    pub key_assets: usize,
}

/// `GET /api/v1/assets/{asset}/impact` and `telltale lineage impact`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpactReport {
    pub asset: String,
    pub key: String,
    pub kind: AssetKind,
    pub depth_limit: Option<u32>,
    pub total: usize,
    pub key_total: usize,
    pub max_depth: u32,
    pub truncated_by_depth: bool,
    pub groups: Vec<ImpactGroup>,
    pub owners: Vec<ImpactOwner>,
}

impl Lineage {
    /// The blast radius of `asset` (a telltale asset, a key or an alias), `None` when the graph
    /// does not know it.
    pub fn impact(&self, asset: &str, depth: Option<u32>, limit: Option<usize>) -> Option<ImpactReport> {
        let graph = self.graph();
        let root = graph.resolve(asset)?;
        let impact = graph.blast_radius_with(
            root,
            ImpactOptions { depth_limit: depth, list_limit: limit, ..ImpactOptions::default() },
        );
        let mut groups: Vec<ImpactGroup> = impact
            .groups
            .iter()
            .filter(|g| g.group != AssetGroup::Jobs)
            .map(|g| ImpactGroup {
                group: g.group.as_str(),
                count: g.count,
                key_count: g.key_count,
                assets: Vec::new(),
            })
            .collect();
        for reached in &impact.assets {
            let a = graph.asset(reached.node);
            let Some(group) = groups.iter_mut().find(|g| g.group == a.kind.group().as_str()) else { continue };
            group.assets.push(ImpactEntry {
                key: a.key.clone(),
                name: a.display_name().to_string(),
                kind: a.kind,
                asset_id: a.asset_id.clone(),
                owner: a.owner.clone(),
                tier: a.tier,
                url: a.url.clone(),
                key_asset: reached.key,
                depth: reached.depth,
                via: label(graph.asset(reached.via)),
            });
        }
        let owners = impact
            .owners(&graph)
            .into_iter()
            .map(|(owner, assets, key_assets)| ImpactOwner { owner: owner.clone(), assets, key_assets })
            .collect();
        let root_asset = graph.asset(root);
        Some(ImpactReport {
            asset: label(root_asset),
            key: root_asset.key.clone(),
            kind: root_asset.kind,
            depth_limit: depth,
            total: impact.total,
            key_total: impact.key_total,
            max_depth: impact.max_depth,
            truncated_by_depth: impact.truncated_by_depth,
            groups,
            owners,
        })
    }
}

impl ImpactReport {
    /// The report as a text tree (`telltale lineage impact`).
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} ({}): {} downstream, {} key{}\n",
            self.asset,
            self.kind,
            self.total,
            self.key_total,
            if self.truncated_by_depth {
                format!(" (within {} hops)", self.depth_limit.unwrap_or(0))
            } else {
                String::new()
            }
        );
        let groups: Vec<&ImpactGroup> = self.groups.iter().filter(|g| g.count > 0).collect();
        for (gi, group) in groups.iter().enumerate() {
            let last_group = gi + 1 == groups.len();
            out.push_str(&format!(
                "{} {} ({}, {} key)\n",
                if last_group { "└──" } else { "├──" },
                group.group,
                group.count,
                group.key_count
            ));
            let indent = if last_group { "    " } else { "│   " };
            for (i, a) in group.assets.iter().enumerate() {
                let branch = if i + 1 == group.assets.len() { "└──" } else { "├──" };
                let mut line = format!("{indent}{branch} {}{}", if a.key_asset { "★ " } else { "" }, a.name);
                if let Some(id) = a.asset_id.as_ref().filter(|id| id.as_str() != a.name) {
                    line.push_str(&format!(" [{id}]"));
                }
                line.push_str(&format!(" {}", a.kind));
                if let Some(tier) = a.tier {
                    line.push_str(&format!(", tier {tier}"));
                }
                if let Some(owner) = &a.owner {
                    line.push_str(&format!(", {owner}"));
                }
                line.push_str(&format!(", {} hop{} via {}", a.depth, if a.depth == 1 { "" } else { "s" }, a.via));
                out.push_str(&line);
                out.push('\n');
            }
            let listed = group.assets.len();
            if listed < group.count {
                out.push_str(&format!("{indent}    … and {} more\n", group.count - listed));
            }
        }
        if !self.owners.is_empty() {
            out.push_str("owners: ");
            let owners: Vec<String> =
                self.owners.iter().map(|o| format!("{} ({} key of {})", o.owner, o.key_assets, o.assets)).collect();
            out.push_str(&owners.join("; "));
            out.push('\n');
        }
        out
    }
}

// ------------------------------------------------------------------------ breaking changes --

/// Who a breaking column change (removed or retyped) hurts: the `telltale check --state` gate
/// (from two dbt manifests) and the live schema monitor (from the lineage graph) say it the same
/// way, and both only warn when nothing reads the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependents {
    /// Direct readers (`model fct_orders`, `dashboard Revenue board`), most important first.
    pub readers: Vec<String>,
    /// Everything downstream.
    pub downstream: usize,
    /// Exposures (dashboards, ML models, applications…) among them, most important first.
    pub exposures: Vec<String>,
}

impl Dependents {
    /// `read by 2 (model a, model b), 5 downstream in all, including dashboard x`, or `nothing
    /// downstream reads it`.
    pub fn describe(&self) -> String {
        if self.readers.is_empty() {
            return "nothing downstream reads it".into();
        }
        let mut text = format!(
            "read by {} ({}), {} downstream in all",
            self.readers.len(),
            self.readers.join(", "),
            self.downstream
        );
        if !self.exposures.is_empty() {
            text.push_str(&format!(", including {}", self.exposures.join(", ")));
        }
        text
    }

    /// A breaking change nobody reads is a warning, not a failure.
    pub fn is_advisory(&self) -> bool {
        self.readers.is_empty()
    }
}

impl Lineage {
    /// The dependents of a telltale asset in the live graph (`depth` hops for the downstream
    /// count and exposures); `None` when the graph does not know the asset (then nobody can say
    /// whether something reads it).
    pub fn dependents(&self, asset: &AssetId, depth: u32) -> Option<Dependents> {
        let graph = self.graph();
        let node = graph.find_asset(asset)?;
        // A table by its telltale asset, a consumer (dashboard, ML model…) by its name.
        let name = |n: NodeId| {
            let a = graph.asset(n);
            let text = match &a.asset_id {
                Some(id) => id.to_string(),
                None if !a.name.is_empty() => a.name.clone(),
                None => a.key.clone(),
            };
            format!("{} {text}", a.kind)
        };
        let direct = graph.blast_radius(node, Some(1));
        let all = graph.blast_radius(node, Some(depth));
        Some(Dependents {
            readers: direct.assets.iter().map(|r| name(r.node)).collect(),
            downstream: all.total,
            exposures: all
                .assets
                .iter()
                .filter(|r| graph.asset(r.node).kind.is_exposure())
                .map(|r| name(r.node))
                .collect(),
        })
    }

    /// Names the lineage dependents of a failing live schema result with breaking changes (as
    /// `telltale check --state` does for manifests) and makes it a warning when nothing
    /// downstream reads the table. A table the graph does not know is left as it is.
    pub fn annotate_breaking(&self, outcome: &mut crate::runtime::CheckOutcome, depth: u32) {
        let Some(dependents) = self.dependents(&outcome.asset, depth) else { return };
        outcome.message = format!("{}; {}", outcome.message, dependents.describe());
        outcome.advisory = dependents.is_advisory();
    }
}

// ------------------------------------------------------------------------ upstream health --

/// An open incident upstream of an asset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamIncident {
    pub asset: String,
    pub id: String,
    pub severity: String,
    pub status: String,
    pub title: String,
    pub detected_at: DateTime<Utc>,
    /// From the incident's asset down to the asked one.
    pub chain: Vec<String>,
}

/// The health of an asset including the open incidents upstream of it.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamHealth {
    pub health: Health,
    pub own: Vec<Incident>,
    pub upstream: Vec<UpstreamIncident>,
    /// Whether the lineage graph knows the asset at all.
    pub in_graph: bool,
    pub checked_at: Option<DateTime<Utc>>,
}

impl Agent {
    /// Active incidents of the asset and of every asset upstream of it (`lineage.upstream_depth`
    /// hops): `broken` when any of them is SEV-1/2.
    pub async fn upstream_health(&self, asset: &AssetId) -> Result<UpstreamHealth, StoreError> {
        let (_, own, checked_at) = crate::api::asset_health_of(self, asset).await?;
        let depth = self.config.lineage.upstream_depth;
        let in_graph = self.lineage.graph().find_asset(asset).is_some();
        let upstream_assets = self.lineage.upstream_assets(asset, depth);
        let mut upstream = Vec::new();
        let mut all = own.clone();
        if !upstream_assets.is_empty() {
            let active = self.store.active_incidents().await?;
            for up in &upstream_assets {
                let key = up.to_string();
                for incident in active.iter().filter(|i| i.asset == key) {
                    let chain = self.lineage.chain(&key, &asset.to_string(), depth).unwrap_or_default();
                    upstream.push(UpstreamIncident {
                        asset: key.clone(),
                        id: incident.id.clone(),
                        severity: incident.severity_label(),
                        status: incident.status.as_str().to_string(),
                        title: incident.title.clone(),
                        detected_at: incident.detected_at,
                        chain,
                    });
                    all.push(incident.clone());
                }
            }
        }
        Ok(UpstreamHealth { health: Health::of(&all), own, upstream, in_graph, checked_at })
    }
}

// ----------------------------------------------------------------------- incident context --

/// A downstream problem grouped into an upstream incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Symptom {
    /// The problem's key (`asset/monitor[/column]`).
    pub key: String,
    pub asset: String,
    /// From the incident's (root) asset down to the symptom's asset.
    pub chain: Vec<String>,
}

/// What lineage says about an incident (`GET /api/v1/incidents/{id}`, `telltale incidents show`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentLineage {
    /// Downstream problems that joined this incident instead of paging.
    pub symptoms: Vec<Symptom>,
    /// The last run of the job writing the incident's asset (a FAIL is a likely cause).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<JobRun>,
    pub downstream_count: usize,
    pub key_assets: Vec<crate::alert::ImpactedAsset>,
}

impl Agent {
    pub fn incident_lineage(&self, incident: &Incident) -> IncidentLineage {
        let depth = self.config.lineage.upstream_depth;
        let symptoms = incident
            .member_keys
            .iter()
            .filter_map(|key| {
                let asset = key.split('/').next()?;
                (asset != incident.asset).then(|| Symptom {
                    key: key.clone(),
                    asset: asset.to_string(),
                    chain: self.lineage.chain(&incident.asset, asset, depth).unwrap_or_default(),
                })
            })
            .collect();
        let asset = incident.asset.parse::<AssetId>().ok();
        let last_run = asset.as_ref().and_then(|a| self.lineage.last_run(a));
        let (downstream_count, key_assets) = asset
            .and_then(|a| {
                let graph = self.lineage.graph();
                let node = graph.find_asset(&a)?;
                Some(graph.blast_radius(node, Some(depth)).to_alert(&graph, 10))
            })
            .unwrap_or_default();
        IncidentLineage { symptoms, last_run, downstream_count, key_assets }
    }
}
