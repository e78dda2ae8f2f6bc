//! The lineage graph: assets as nodes indexed by dense integer ids, directed edges upstream →
//! downstream with adjacency lists both ways, and the two walks incidents need: the blast radius
//! (everything downstream, ordered by importance) and the upstream chain (root-cause candidates).
//!
//! Every edge remembers which lineage sources reported it (dbt, OpenLineage, declared) and when
//! each last saw it, so a source can retract what it no longer reports without touching the
//! others. Sized for 100,000 nodes and 500,000 edges: walks touch only the adjacency lists
//! (`Vec<Link>` per node, the neighbour id inline), never the edge records, and allocate O(nodes)
//! zeroed memory per walk. Pure data: no IO, no clock (callers pass the time an edge was seen).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::openlineage::ColumnLineage;
use crate::alert::ImpactedAsset;
use crate::measure::AssetId;

/// Dense index of a node in one [`LineageGraph`]; stable for the life of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of an edge in one [`LineageGraph`]; slots of removed edges are reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EdgeId(u32);

impl EdgeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

macro_rules! asset_kinds {
    ($($variant:ident => $name:literal, $group:ident, $doc:literal;)*) => {
        /// What a node is. Exposures (dbt's word for downstream consumers) are the five kinds from
        /// `Dashboard` to `Analysis`. Names are stable: the API and alerts use them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AssetKind {
            $(#[doc = $doc] $variant,)*
        }

        impl AssetKind {
            pub const ALL: &'static [AssetKind] = &[$(AssetKind::$variant,)*];
            pub fn as_str(self) -> &'static str {
                match self { $(AssetKind::$variant => $name,)* }
            }
            /// The blast-radius group this kind is counted in.
            pub fn group(self) -> AssetGroup {
                match self { $(AssetKind::$variant => AssetGroup::$group,)* }
            }
        }

        impl FromStr for AssetKind {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(AssetKind::$variant),)*
                    _ => Err(format!(
                        "unknown asset kind `{s}` (expected one of: {})",
                        [$($name),*].join(", ")
                    )),
                }
            }
        }
    };
}

asset_kinds! {
    Table => "table", Tables, "a warehouse table";
    View => "view", Tables, "a warehouse view";
    Model => "model", Tables, "a dbt model (its relation is a table or a view; ephemeral ones have none)";
    Source => "source", Tables, "a dbt source: a table loaded outside dbt";
    Seed => "seed", Tables, "a dbt seed (CSV loaded as a table)";
    Snapshot => "snapshot", Tables, "a dbt snapshot (slowly changing history table)";
    Dataset => "dataset", Tables, "an OpenLineage dataset that is not a table (files, topics)";
    Dashboard => "dashboard", Dashboards, "an exposure: a BI dashboard";
    Notebook => "notebook", Notebooks, "an exposure: a notebook";
    MlModel => "ml_model", MlModels, "an exposure: a machine-learning model";
    Application => "application", Applications, "an exposure: an application or service";
    Analysis => "analysis", Notebooks, "an exposure: an ad-hoc analysis";
    Job => "job", Jobs, "a job that writes datasets (OpenLineage)";
}

impl AssetKind {
    /// Exposures: the consumers at the end of the lineage (key assets by default).
    pub fn is_exposure(self) -> bool {
        matches!(
            self,
            AssetKind::Dashboard
                | AssetKind::Notebook
                | AssetKind::MlModel
                | AssetKind::Application
                | AssetKind::Analysis
        )
    }

    /// The word alerts use (`ImpactedAsset.kind`): relations are `table` or `view`.
    pub fn alert_kind(self) -> &'static str {
        match self {
            AssetKind::Table | AssetKind::Model | AssetKind::Source | AssetKind::Seed | AssetKind::Snapshot => "table",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for AssetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AssetKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AssetKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How the blast radius groups what it counts, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetGroup {
    Dashboards,
    MlModels,
    Applications,
    Notebooks,
    Tables,
    Jobs,
}

impl AssetGroup {
    pub const ALL: [AssetGroup; 6] = [
        AssetGroup::Dashboards,
        AssetGroup::MlModels,
        AssetGroup::Applications,
        AssetGroup::Notebooks,
        AssetGroup::Tables,
        AssetGroup::Jobs,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AssetGroup::Dashboards => "dashboards",
            AssetGroup::MlModels => "ml_models",
            AssetGroup::Applications => "applications",
            AssetGroup::Notebooks => "notebooks",
            AssetGroup::Tables => "tables",
            AssetGroup::Jobs => "jobs",
        }
    }
}

/// dbt's exposure maturity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Maturity {
    High,
    Medium,
    Low,
}

impl FromStr for Maturity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "high" => Ok(Maturity::High),
            "medium" => Ok(Maturity::Medium),
            "low" => Ok(Maturity::Low),
            _ => Err(format!("unknown maturity `{s}` (expected high, medium or low)")),
        }
    }
}

/// Who to tell when an asset is hurt. At least one of the two is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Owner {
    /// An owner from its parts; `None` when both are empty.
    pub fn new(name: Option<&str>, email: Option<&str>) -> Option<Owner> {
        let clean = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let (name, email) = (clean(name), clean(email));
        (name.is_some() || email.is_some()).then_some(Owner { name, email })
    }

    /// An owner written as one string (dbt `meta.owner`, declared lineage): an email address when
    /// it looks like one (`a@b.c`), otherwise a name or handle such as `@data-platform`.
    pub fn parse(text: &str) -> Option<Owner> {
        let text = text.trim();
        let looks_like_email = !text.contains(char::is_whitespace)
            && text.split_once('@').is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
        if looks_like_email { Owner::new(None, Some(text)) } else { Owner::new(Some(text), None) }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, &self.email) {
            (Some(name), Some(email)) => write!(f, "{name} ({email})"),
            (Some(only), None) | (None, Some(only)) => f.write_str(only),
            (None, None) => Ok(()),
        }
    }
}

/// A warehouse relation as dbt names it: `database.schema.name` (dbt's alias, or a source's
/// identifier). `database` is absent where the engine has none (MySQL, SQLite).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Relation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    pub schema: String,
    pub name: String,
}

impl Relation {
    pub fn new(database: Option<&str>, schema: &str, name: &str) -> Relation {
        Relation {
            database: database.filter(|d| !d.is_empty()).map(str::to_string),
            schema: schema.to_string(),
            name: name.to_string(),
        }
    }

    /// The telltale asset of this relation, given the telltale source that holds it.
    pub fn asset_id(&self, source: &str) -> AssetId {
        AssetId::new(source, &crate::measure::TableRef::new(self.schema.clone(), self.name.clone()))
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.database {
            Some(database) => write!(f, "{database}.{}.{}", self.schema, self.name),
            None => write!(f, "{}.{}", self.schema, self.name),
        }
    }
}

/// Where a piece of lineage came from. Also the precedence of node attributes: a declared owner
/// beats dbt's, which beats OpenLineage's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Parsed from a view's SQL definition in the warehouse catalog (lowest precedence).
    Sql,
    #[serde(rename = "openlineage")]
    OpenLineage,
    Dbt,
    Declared,
}

impl Origin {
    pub const ALL: [Origin; 4] = [Origin::Sql, Origin::OpenLineage, Origin::Dbt, Origin::Declared];
    fn slot(self) -> usize {
        self as usize
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Sql => "sql",
            Origin::OpenLineage => "openlineage",
            Origin::Dbt => "dbt",
            Origin::Declared => "declared",
        }
    }
}

/// The state of the last run that wrote an asset (OpenLineage `eventType`; dbt statuses map onto it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    Start,
    Running,
    Complete,
    Abort,
    Fail,
    Other,
}

impl RunState {
    pub const ALL: [RunState; 6] =
        [RunState::Start, RunState::Running, RunState::Complete, RunState::Abort, RunState::Fail, RunState::Other];

    /// The OpenLineage `eventType` spelling (`START`, `FAIL`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Start => "START",
            RunState::Running => "RUNNING",
            RunState::Complete => "COMPLETE",
            RunState::Abort => "ABORT",
            RunState::Fail => "FAIL",
            RunState::Other => "OTHER",
        }
    }

    /// The state an OpenLineage `eventType` names.
    pub fn parse(text: &str) -> Option<RunState> {
        RunState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The run ended (COMPLETE, ABORT or FAIL): a later START begins a new run.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunState::Complete | RunState::Abort | RunState::Fail)
    }
}

/// The last run of the job that writes an asset: a FAIL here is a strong hint for a freshness
/// incident on the asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    /// `namespace/name` for OpenLineage jobs, `dbt` for dbt runs.
    pub job: String,
    pub run_id: String,
    pub state: RunState,
    pub at: DateTime<Utc>,
    /// The error message of a failed run, or the raw status of a dbt node (`error`, `skipped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A node: one asset and what the catalog knows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogAsset {
    /// The primary key: a dbt `unique_id` (`model.shop.fct_orders`), an OpenLineage dataset
    /// `namespace/name`, `job:namespace/name`, or a key chosen by declared lineage.
    pub key: String,
    /// What people call it (dbt name or label, the table name, the job name).
    pub name: String,
    pub kind: AssetKind,
    /// The telltale asset (`source.schema.table`) when the relation maps to a configured source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<AssetId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// 1 (most important) to 4; key asset at tier 1 by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maturity: Option<Maturity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An explicit key-asset mark (declared `key: true`, dbt `meta.key_asset`); overrides the policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_asset: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<JobRun>,
    /// The OpenLineage `columnLineage` facet last reported for this dataset as an output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column_lineage: Option<Box<ColumnLineage>>,
}

impl CatalogAsset {
    /// A bare asset: key, name and kind; everything else unknown.
    pub fn new(key: impl Into<String>, name: impl Into<String>, kind: AssetKind) -> CatalogAsset {
        CatalogAsset {
            key: key.into(),
            name: name.into(),
            kind,
            asset_id: None,
            relation: None,
            owner: None,
            tier: None,
            maturity: None,
            url: None,
            key_asset: None,
            tags: Vec::new(),
            last_run: None,
            column_lineage: None,
        }
    }

    /// The name alerts and the API show: the telltale asset when known, else the key.
    pub fn display_name(&self) -> &str {
        self.asset_id.as_ref().map(AssetId::as_str).unwrap_or(&self.key)
    }

    /// Fills what `other` knows; `other`'s values win when `overwrite`.
    fn merge(&mut self, other: CatalogAsset, overwrite: bool) {
        fn take<T>(mine: &mut Option<T>, theirs: Option<T>, overwrite: bool) {
            if theirs.is_some() && (overwrite || mine.is_none()) {
                *mine = theirs;
            }
        }
        // A specific kind (model, dashboard) beats the generic ones OpenLineage can infer.
        let generic = |kind: AssetKind| matches!(kind, AssetKind::Table | AssetKind::Dataset);
        if overwrite || (generic(self.kind) && !generic(other.kind)) {
            self.kind = other.kind;
        }
        if overwrite && !other.name.is_empty() {
            self.name = other.name;
        }
        take(&mut self.asset_id, other.asset_id, overwrite);
        take(&mut self.relation, other.relation, overwrite);
        take(&mut self.owner, other.owner, overwrite);
        take(&mut self.tier, other.tier, overwrite);
        take(&mut self.maturity, other.maturity, overwrite);
        take(&mut self.url, other.url, overwrite);
        take(&mut self.key_asset, other.key_asset, overwrite);
        take(&mut self.last_run, other.last_run, overwrite);
        take(&mut self.column_lineage, other.column_lineage, overwrite);
        if !other.tags.is_empty() && (overwrite || self.tags.is_empty()) {
            self.tags = other.tags;
        }
    }
}

/// A directed edge `from` (upstream) → `to` (downstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: NodeId,
    pub to: NodeId,
    /// Unix milliseconds each origin last reported the edge (index: [`Origin`] order); 0 = never.
    seen_ms: [i64; 4],
    /// The OpenLineage job that most recently reported the edge.
    pub job: Option<NodeId>,
}

impl Edge {
    /// The origins that currently report this edge.
    pub fn origins(&self) -> impl Iterator<Item = Origin> + '_ {
        Origin::ALL.into_iter().filter(|o| self.seen_ms[o.slot()] != 0)
    }
    /// When `origin` last reported the edge.
    pub fn last_seen(&self, origin: Origin) -> Option<DateTime<Utc>> {
        match self.seen_ms[origin.slot()] {
            0 => None,
            ms => Utc.timestamp_millis_opt(ms).single(),
        }
    }
    /// When any origin last reported the edge.
    pub fn last_seen_any(&self) -> Option<DateTime<Utc>> {
        Origin::ALL.into_iter().filter_map(|o| self.last_seen(o)).max()
    }
    fn is_live(&self) -> bool {
        self.seen_ms.iter().any(|&ms| ms != 0)
    }
}

/// One entry of an adjacency list: the neighbour inline so walks never touch edge records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Link {
    node: u32,
    edge: u32,
}

/// Which assets are "key" in a blast radius when a node carries no explicit mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAssetPolicy {
    /// Exposures (dashboards, ML models, applications, notebooks, analyses) are key.
    pub exposures: bool,
    /// Assets of this tier or better (1 is best) are key; `None`: tiers don't make assets key.
    pub max_tier: Option<u8>,
}

impl Default for KeyAssetPolicy {
    fn default() -> Self {
        KeyAssetPolicy { exposures: true, max_tier: Some(1) }
    }
}

impl KeyAssetPolicy {
    pub fn is_key(&self, asset: &CatalogAsset) -> bool {
        self.decide(Compact::of(asset))
    }

    fn decide(&self, asset: Compact) -> bool {
        asset.key_asset.unwrap_or_else(|| {
            (self.exposures && asset.kind.is_exposure())
                || matches!((self.max_tier, asset.tier), (Some(max), Some(tier)) if tier <= max)
        })
    }
}

/// What walks and rankings read of each node, packed in a few bytes so a walk over 100,000 nodes
/// stays in cache instead of touching every asset record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Compact {
    kind: AssetKind,
    tier: Option<u8>,
    maturity: Option<Maturity>,
    key_asset: Option<bool>,
}

impl Compact {
    fn of(asset: &CatalogAsset) -> Compact {
        Compact { kind: asset.kind, tier: asset.tier, maturity: asset.maturity, key_asset: asset.key_asset }
    }
}

/// Which way a walk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Upstream,
    Downstream,
    Both,
}

impl FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "upstream" => Ok(Direction::Upstream),
            "downstream" => Ok(Direction::Downstream),
            "both" => Ok(Direction::Both),
            _ => Err(format!("unknown direction `{s}` (expected upstream, downstream or both)")),
        }
    }
}

/// How a blast radius is computed and how much of it is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImpactOptions {
    /// Hops to follow (1 = direct dependents); `None` follows everything.
    pub depth_limit: Option<u32>,
    /// Most assets to list (the most important first); counts always cover everything.
    pub list_limit: Option<usize>,
    /// Count and list jobs reached downstream (jobs only have outgoing edges, so normally none).
    pub include_jobs: bool,
}

/// One asset reached by a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImpactedNode {
    pub node: NodeId,
    /// Hops from the walk's start (1 = direct neighbour).
    pub depth: u32,
    /// The neighbour one hop closer to the start, through which it was first reached.
    pub via: NodeId,
    pub key: bool,
}

/// Counts of one group of a blast radius.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GroupCount {
    pub group: AssetGroup,
    pub count: usize,
    pub key_count: usize,
}

/// Everything downstream of one asset: exact counts, groups, and the assets ordered by importance:
/// key assets first; then consumers before tables ([`AssetGroup`] order: dashboards, ML models,
/// applications, notebooks, tables, jobs); then tier (1 first, none last); maturity (high first);
/// fewer hops; key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Impact {
    pub root: NodeId,
    pub depth_limit: Option<u32>,
    /// Assets downstream (the root excluded).
    pub total: usize,
    /// Key assets downstream.
    pub key_total: usize,
    /// The farthest hop reached.
    pub max_depth: u32,
    /// The depth limit stopped the walk while more assets lay beyond it.
    pub truncated_by_depth: bool,
    /// Non-empty groups in [`AssetGroup`] order.
    pub groups: Vec<GroupCount>,
    /// The assets, most important first; at most `list_limit` of them.
    pub assets: Vec<ImpactedNode>,
}

impl Impact {
    /// The listed key assets, most important first.
    pub fn key_assets(&self) -> impl Iterator<Item = &ImpactedNode> {
        self.assets.iter().filter(|a| a.key)
    }

    /// The count of one group (0 when absent).
    pub fn count(&self, group: AssetGroup) -> usize {
        self.groups.iter().find(|g| g.group == group).map_or(0, |g| g.count)
    }

    /// Distinct owners of the listed assets with how many assets (and key assets) each owns: most
    /// key assets first, then most assets, then the order of their most important asset.
    pub fn owners<'g>(&self, graph: &'g LineageGraph) -> Vec<(&'g Owner, usize, usize)> {
        let mut owners: Vec<(&Owner, usize, usize)> = Vec::new();
        let mut index: HashMap<&Owner, usize> = HashMap::new();
        for reached in &self.assets {
            if let Some(owner) = graph.asset(reached.node).owner.as_ref() {
                let slot = *index.entry(owner).or_insert_with(|| {
                    owners.push((owner, 0, 0));
                    owners.len() - 1
                });
                owners[slot].1 += 1;
                owners[slot].2 += usize::from(reached.key);
            }
        }
        // Stable: ties keep the order of their most important asset.
        owners.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)));
        owners
    }

    /// What an alert carries: the downstream count and up to `limit` key assets with their owners.
    pub fn to_alert(&self, graph: &LineageGraph, limit: usize) -> (usize, Vec<ImpactedAsset>) {
        (self.total, self.key_assets().take(limit).map(|a| graph.impacted_asset(a.node)).collect())
    }
}

/// Upstream of one asset: root-cause candidates, nearest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upstream {
    pub root: NodeId,
    pub depth_limit: Option<u32>,
    /// Reached assets in walk order (by depth); `via` points one hop back towards the root.
    pub nodes: Vec<ImpactedNode>,
}

impl Upstream {
    /// The chain from the root up to `ancestor` (both included): `[root, parent, …, ancestor]`.
    pub fn chain_to(&self, ancestor: NodeId) -> Option<Vec<NodeId>> {
        let index: HashMap<NodeId, &ImpactedNode> = self.nodes.iter().map(|n| (n.node, n)).collect();
        let mut chain = vec![ancestor];
        let mut at = *index.get(&ancestor)?;
        loop {
            chain.push(at.via);
            if at.via == self.root {
                break;
            }
            at = index.get(&at.via)?;
        }
        chain.reverse();
        Some(chain)
    }
}

/// A node as the graph endpoint shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView<'g> {
    pub id: NodeId,
    #[serde(flatten)]
    pub asset: &'g CatalogAsset,
    /// Key in a blast radius (explicit mark or policy); `key` is the node's key string.
    pub is_key_asset: bool,
}

/// An edge as the graph endpoint shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeView<'g> {
    pub from: &'g str,
    pub to: &'g str,
    /// `{origin: last seen}` for each origin that reports the edge.
    pub origins: Vec<(Origin, DateTime<Utc>)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<&'g str>,
}

/// A neighbourhood of the graph, ready to serialize (`GET /api/v1/lineage/graph`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubGraph<'g> {
    pub nodes: Vec<NodeView<'g>>,
    pub edges: Vec<EdgeView<'g>>,
}

/// Why a graph operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("the lineage graph is full ({limit} nodes or edges); raise the limit or prune stale lineage")]
    Full { limit: usize },
}

/// A fast hasher for the packed `(from, to)` edge keys (FxHash's multiply-rotate; the keys are
/// our own dense ids, not attacker-chosen strings).
#[derive(Default, Clone, Copy)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        // The table indexes buckets by the low bits, and a product's low bits depend only on the
        // key's low bits (`to`): fold the high half in, or all edges into one node (a job with
        // 100,000 inputs) would share a bucket and probe quadratically.
        self.0 ^ (self.0 >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type PairMap = HashMap<u64, u32, BuildHasherDefault<PairHasher>>;

fn pair(from: u32, to: u32) -> u64 {
    (u64::from(from) << 32) | u64::from(to)
}

fn millis(at: DateTime<Utc>) -> i64 {
    // 0 means "never": clamp the (theoretical) epoch instant to 1 ms.
    at.timestamp_millis().max(1)
}

/// The lineage graph. See the module doc.
#[derive(Debug, Clone, Default)]
pub struct LineageGraph {
    assets: Vec<CatalogAsset>,
    /// Each node's kind, tier, maturity and key mark, packed: walks read the kind per hop (jobs
    /// cost no depth), rankings the rest.
    compact: Vec<Compact>,
    /// The highest-precedence origin that set each node's attributes.
    ranks: Vec<Origin>,
    out: Vec<Vec<Link>>,
    inc: Vec<Vec<Link>>,
    edges: Vec<Edge>,
    free_edges: Vec<u32>,
    edge_index: PairMap,
    by_key: HashMap<String, NodeId>,
    by_asset: HashMap<AssetId, NodeId>,
    policy: KeyAssetPolicy,
}

impl LineageGraph {
    pub fn new() -> LineageGraph {
        LineageGraph::default()
    }

    /// An empty graph with room for `nodes` and `edges` (avoids regrowth on bulk loads).
    pub fn with_capacity(nodes: usize, edges: usize) -> LineageGraph {
        LineageGraph {
            assets: Vec::with_capacity(nodes),
            compact: Vec::with_capacity(nodes),
            ranks: Vec::with_capacity(nodes),
            out: Vec::with_capacity(nodes),
            inc: Vec::with_capacity(nodes),
            edges: Vec::with_capacity(edges),
            edge_index: PairMap::with_capacity_and_hasher(edges, Default::default()),
            by_key: HashMap::with_capacity(nodes),
            ..LineageGraph::default()
        }
    }

    pub fn policy(&self) -> KeyAssetPolicy {
        self.policy
    }

    pub fn set_policy(&mut self, policy: KeyAssetPolicy) {
        self.policy = policy;
    }

    pub fn node_count(&self) -> usize {
        self.assets.len()
    }

    pub fn edge_count(&self) -> usize {
        self.edge_index.len()
    }

    /// Adds an asset, or merges it into the node that already has its key, one of its aliases'
    /// keys, or its telltale asset id. Attributes set by a lower-precedence origin only fill gaps.
    pub fn upsert(&mut self, asset: CatalogAsset, origin: Origin) -> Result<NodeId, GraphError> {
        let existing =
            self.by_key.get(&asset.key).copied().or_else(|| asset.asset_id.as_ref().and_then(|a| self.find_asset(a)));
        let id = match existing {
            Some(id) => {
                let slot = id.index();
                let overwrite = origin >= self.ranks[slot];
                if overwrite {
                    self.ranks[slot] = origin;
                }
                let key = asset.key.clone();
                // The primary key of a node never changes; another source's key becomes an alias.
                let mut incoming = asset;
                incoming.key = self.assets[slot].key.clone();
                self.assets[slot].merge(incoming, overwrite);
                self.compact[slot] = Compact::of(&self.assets[slot]);
                self.by_key.entry(key).or_insert(id);
                id
            }
            None => {
                if self.assets.len() >= u32::MAX as usize {
                    return Err(GraphError::Full { limit: u32::MAX as usize });
                }
                let id = NodeId(self.assets.len() as u32);
                self.by_key.insert(asset.key.clone(), id);
                self.compact.push(Compact::of(&asset));
                self.assets.push(asset);
                self.ranks.push(origin);
                self.out.push(Vec::new());
                self.inc.push(Vec::new());
                id
            }
        };
        if let Some(asset_id) = self.assets[id.index()].asset_id.clone() {
            self.by_asset.entry(asset_id).or_insert(id);
        }
        Ok(id)
    }

    /// Makes `alias` find `node` too (e.g. an OpenLineage dataset name for a dbt model). An alias
    /// already taken by another node is left alone; returns whether `alias` now finds `node`.
    pub fn add_alias(&mut self, node: NodeId, alias: impl Into<String>) -> bool {
        *self.by_key.entry(alias.into()).or_insert(node) == node
    }

    /// The node with this key or alias.
    pub fn find(&self, key: &str) -> Option<NodeId> {
        self.by_key.get(key).copied()
    }

    /// The node of a telltale asset.
    pub fn find_asset(&self, asset: &AssetId) -> Option<NodeId> {
        self.by_asset.get(asset).copied()
    }

    /// A node by key, alias or telltale asset id (as users type it in the API or CLI).
    pub fn resolve(&self, text: &str) -> Option<NodeId> {
        self.find(text).or_else(|| text.parse::<AssetId>().ok().and_then(|a| self.find_asset(&a)))
    }

    pub fn asset(&self, node: NodeId) -> &CatalogAsset {
        &self.assets[node.index()]
    }

    /// Changes a node in place (keeps the kind and asset-id indexes in step).
    pub fn update<T>(&mut self, node: NodeId, change: impl FnOnce(&mut CatalogAsset) -> T) -> T {
        let asset = &mut self.assets[node.index()];
        let result = change(asset);
        self.compact[node.index()] = Compact::of(asset);
        if let Some(asset_id) = asset.asset_id.clone() {
            self.by_asset.entry(asset_id).or_insert(node);
        }
        result
    }

    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &CatalogAsset)> {
        self.assets.iter().enumerate().map(|(i, a)| (NodeId(i as u32), a))
    }

    pub fn is_key(&self, node: NodeId) -> bool {
        self.policy.is_key(self.asset(node))
    }

    /// Records that `origin` saw `from → to` at `seen_at` (an edge already there just gets
    /// the origin and the newer time). Self-loops are ignored (`None`).
    pub fn add_edge(
        &mut self,
        from: NodeId,
        to: NodeId,
        origin: Origin,
        seen_at: DateTime<Utc>,
    ) -> Result<Option<EdgeId>, GraphError> {
        self.add_edge_via(from, to, origin, seen_at, None)
    }

    /// [`add_edge`](Self::add_edge), remembering the job that moved the data.
    pub fn add_edge_via(
        &mut self,
        from: NodeId,
        to: NodeId,
        origin: Origin,
        seen_at: DateTime<Utc>,
        job: Option<NodeId>,
    ) -> Result<Option<EdgeId>, GraphError> {
        if from == to {
            return Ok(None);
        }
        let ms = millis(seen_at);
        if let Some(&slot) = self.edge_index.get(&pair(from.0, to.0)) {
            let edge = &mut self.edges[slot as usize];
            let seen = &mut edge.seen_ms[origin.slot()];
            *seen = (*seen).max(ms);
            if job.is_some() {
                edge.job = job;
            }
            return Ok(Some(EdgeId(slot)));
        }
        let mut seen_ms = [0; 4];
        seen_ms[origin.slot()] = ms;
        let edge = Edge { from, to, seen_ms, job };
        let slot = match self.free_edges.pop() {
            Some(slot) => {
                self.edges[slot as usize] = edge;
                slot
            }
            None => {
                if self.edges.len() >= u32::MAX as usize {
                    return Err(GraphError::Full { limit: u32::MAX as usize });
                }
                self.edges.push(edge);
                (self.edges.len() - 1) as u32
            }
        };
        self.edge_index.insert(pair(from.0, to.0), slot);
        self.out[from.index()].push(Link { node: to.0, edge: slot });
        self.inc[to.index()].push(Link { node: from.0, edge: slot });
        Ok(Some(EdgeId(slot)))
    }

    /// The edge `from → to`, if any.
    pub fn edge_between(&self, from: NodeId, to: NodeId) -> Option<&Edge> {
        self.edge_index.get(&pair(from.0, to.0)).map(|&slot| &self.edges[slot as usize])
    }

    pub fn edge(&self, edge: EdgeId) -> &Edge {
        &self.edges[edge.index()]
    }

    /// Every live edge.
    pub fn edges(&self) -> impl Iterator<Item = (EdgeId, &Edge)> {
        self.edges.iter().enumerate().filter(|(_, e)| e.is_live()).map(|(i, e)| (EdgeId(i as u32), e))
    }

    /// Direct dependents of `node`.
    pub fn children(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.out[node.index()].iter().map(|l| NodeId(l.node))
    }

    /// Direct dependencies of `node`.
    pub fn parents(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.inc[node.index()].iter().map(|l| NodeId(l.node))
    }

    /// Withdraws `origin` from the edges it last saw before `cutoff` (a manifest reload passes the
    /// time of the new load); edges no origin reports any more are removed. Returns how many.
    pub fn retract_stale(&mut self, origin: Origin, cutoff: DateTime<Utc>) -> usize {
        let cutoff = millis(cutoff);
        let mut removed = Vec::new();
        for (slot, edge) in self.edges.iter_mut().enumerate() {
            let seen = &mut edge.seen_ms[origin.slot()];
            if *seen != 0 && *seen < cutoff {
                *seen = 0;
                if !edge.is_live() && self.edge_index.contains_key(&pair(edge.from.0, edge.to.0)) {
                    removed.push(slot as u32);
                }
            }
        }
        for &slot in &removed {
            self.unlink(slot);
        }
        removed.len()
    }

    /// Withdraws `origin` from `from → to`; removes the edge when no origin reports it any more.
    /// Returns whether the edge is gone.
    pub fn retract_edge(&mut self, from: NodeId, to: NodeId, origin: Origin) -> bool {
        let Some(&slot) = self.edge_index.get(&pair(from.0, to.0)) else { return false };
        let edge = &mut self.edges[slot as usize];
        edge.seen_ms[origin.slot()] = 0;
        if edge.is_live() {
            return false;
        }
        self.unlink(slot);
        true
    }

    fn unlink(&mut self, slot: u32) {
        let (from, to) = {
            let edge = &mut self.edges[slot as usize];
            edge.seen_ms = [0; 4];
            edge.job = None;
            (edge.from, edge.to)
        };
        self.edge_index.remove(&pair(from.0, to.0));
        let out = &mut self.out[from.index()];
        if let Some(pos) = out.iter().position(|l| l.edge == slot) {
            out.swap_remove(pos);
        }
        let inc = &mut self.inc[to.index()];
        if let Some(pos) = inc.iter().position(|l| l.edge == slot) {
            inc.swap_remove(pos);
        }
        self.free_edges.push(slot);
    }

    /// Breadth-first walk from `root` along `adjacency` (`downstream`: the out-lists). Hops into a
    /// job cost 0, so `table → job → table` is one hop like a dbt edge (a 0-1 BFS: linear, and
    /// depths are shortest). Stops early when `target` is reached. Returns the reached nodes in
    /// order of first reach, and whether the depth limit left unreached neighbours.
    /// Memory: two zeroed `u32` per node.
    fn walk(
        &self,
        root: NodeId,
        downstream: bool,
        depth_limit: Option<u32>,
        target: Option<NodeId>,
    ) -> (Vec<ImpactedNode>, bool) {
        let adjacency = if downstream { &self.out } else { &self.inc };
        // depth + 1 of each reached node, 0 = not reached (calloc'd: cheap even for big graphs).
        let mut depth_of = vec![0u32; self.assets.len()];
        let mut via = vec![0u32; self.assets.len()];
        depth_of[root.index()] = 1;
        let mut order: Vec<u32> = Vec::new();
        let mut queue = VecDeque::from([root.0]);
        'walk: while let Some(at) = queue.pop_front() {
            let depth = depth_of[at as usize] - 1;
            for link in &adjacency[at as usize] {
                let head = if downstream { link.node } else { at };
                let next = depth + u32::from(self.compact[head as usize].kind != AssetKind::Job);
                if depth_limit.is_some_and(|limit| next > limit) {
                    continue;
                }
                let slot = &mut depth_of[link.node as usize];
                if *slot == 0 || next + 1 < *slot {
                    if *slot == 0 {
                        order.push(link.node);
                    }
                    *slot = next + 1;
                    via[link.node as usize] = at;
                    if Some(NodeId(link.node)) == target {
                        break 'walk;
                    }
                    if next == depth {
                        queue.push_front(link.node);
                    } else {
                        queue.push_back(link.node);
                    }
                }
            }
        }
        // Every reachable neighbour of a reached node is reached unless the limit stopped it.
        let truncated = depth_limit.is_some()
            && target.is_none()
            && std::iter::once(root.0)
                .chain(order.iter().copied())
                .any(|n| adjacency[n as usize].iter().any(|l| depth_of[l.node as usize] == 0));
        let reached = order
            .into_iter()
            .map(|n| ImpactedNode {
                node: NodeId(n),
                depth: depth_of[n as usize] - 1,
                via: NodeId(via[n as usize]),
                key: false,
            })
            .collect();
        (reached, truncated)
    }

    /// Everything downstream of `node` up to `depth_limit` hops, every asset listed.
    pub fn blast_radius(&self, node: NodeId, depth_limit: Option<u32>) -> Impact {
        self.blast_radius_with(node, ImpactOptions { depth_limit, ..ImpactOptions::default() })
    }

    /// Everything downstream of `node`, with counts, groups and the assets ordered by importance.
    pub fn blast_radius_with(&self, node: NodeId, options: ImpactOptions) -> Impact {
        let (mut reached, truncated_by_depth) = self.walk(node, true, options.depth_limit, None);
        if !options.include_jobs {
            reached.retain(|r| self.compact[r.node.index()].kind != AssetKind::Job);
        }
        let mut counts = [(0usize, 0usize); 6];
        let mut max_depth = 0;
        // Importance as one integer (smaller first), computed once per asset; the key only breaks ties.
        let mut ranked: Vec<(u64, ImpactedNode)> = Vec::with_capacity(reached.len());
        for mut r in reached {
            let asset = self.compact[r.node.index()];
            r.key = self.policy.decide(asset);
            let group = asset.kind.group();
            counts[group as usize].0 += 1;
            counts[group as usize].1 += usize::from(r.key);
            max_depth = max_depth.max(r.depth);
            let rank = (u64::from(!r.key) << 44)
                | ((group as u64) << 40)
                | (u64::from(asset.tier.unwrap_or(u8::MAX)) << 32)
                | (asset.maturity.map_or(3, |m| m as u64) << 24)
                | u64::from(r.depth.min(0xFF_FFFF));
            ranked.push((rank, r));
        }
        let total = ranked.len();
        let key_total = counts.iter().map(|c| c.1).sum();
        let groups = AssetGroup::ALL
            .into_iter()
            .zip(counts)
            .filter(|(_, (count, _))| *count > 0)
            .map(|(group, (count, key_count))| GroupCount { group, count, key_count })
            .collect();
        if let Some(limit) = options.list_limit.filter(|&l| l < ranked.len()) {
            if limit == 0 {
                ranked.clear();
            } else {
                // Integer selection first; ties at the cut are settled by key below.
                let (_, &mut (cut, _), _) = ranked.select_nth_unstable_by_key(limit - 1, |(rank, _)| *rank);
                ranked.retain(|(rank, _)| *rank <= cut);
            }
        }
        ranked.sort_unstable_by(|(ra, a), (rb, b)| {
            ra.cmp(rb).then_with(|| self.assets[a.node.index()].key.cmp(&self.assets[b.node.index()].key))
        });
        if let Some(limit) = options.list_limit {
            ranked.truncate(limit);
        }
        let reached = ranked.into_iter().map(|(_, r)| r).collect();
        Impact {
            root: node,
            depth_limit: options.depth_limit,
            total,
            key_total,
            max_depth,
            truncated_by_depth,
            groups,
            assets: reached,
        }
    }

    /// Everything upstream of `node` up to `depth` hops, nearest first (root-cause candidates;
    /// [`Upstream::chain_to`] gives the chain to one of them).
    pub fn upstream(&self, node: NodeId, depth: Option<u32>) -> Upstream {
        let (mut nodes, _) = self.walk(node, false, depth, None);
        nodes.sort_by_key(|n| n.depth);
        for n in &mut nodes {
            n.key = self.policy.is_key(self.asset(n.node));
        }
        Upstream { root: node, depth_limit: depth, nodes }
    }

    /// Whether `ancestor` is upstream of `node` within `depth` hops (root-cause grouping: does an
    /// open incident on `ancestor` explain an anomaly on `node`?). Stops at the first hit.
    pub fn is_upstream_of(&self, ancestor: NodeId, node: NodeId, depth: Option<u32>) -> bool {
        ancestor != node && self.walk(node, false, depth, Some(ancestor)).0.last().is_some_and(|r| r.node == ancestor)
    }

    /// The neighbourhood of `node` (itself included) up to `depth` hops in `direction`, with every
    /// edge between the nodes it holds.
    pub fn neighbourhood(&self, node: NodeId, depth: Option<u32>, direction: Direction) -> SubGraph<'_> {
        let mut members = vec![node];
        if matches!(direction, Direction::Upstream | Direction::Both) {
            members.extend(self.walk(node, false, depth, None).0.iter().map(|r| r.node));
        }
        if matches!(direction, Direction::Downstream | Direction::Both) {
            members.extend(self.walk(node, true, depth, None).0.iter().map(|r| r.node));
        }
        self.subgraph(&members)
    }

    /// The given nodes and every edge between two of them.
    pub fn subgraph(&self, members: &[NodeId]) -> SubGraph<'_> {
        let inside: HashSet<u32> = members.iter().map(|n| n.0).collect();
        let mut ordered: Vec<NodeId> = inside.iter().map(|&n| NodeId(n)).collect();
        ordered.sort_unstable_by(|a, b| self.asset(*a).key.cmp(&self.asset(*b).key));
        let mut edges = Vec::new();
        for &from in &ordered {
            for link in &self.out[from.index()] {
                if inside.contains(&link.node) {
                    let edge = &self.edges[link.edge as usize];
                    edges.push(EdgeView {
                        from: &self.asset(from).key,
                        to: &self.assets[link.node as usize].key,
                        origins: edge.origins().filter_map(|o| Some((o, edge.last_seen(o)?))).collect(),
                        job: edge.job.map(|j| self.asset(j).key.as_str()),
                    });
                }
            }
        }
        edges.sort_unstable_by(|a, b| (a.from, a.to).cmp(&(b.from, b.to)));
        let nodes = ordered
            .into_iter()
            .map(|id| NodeView { id, asset: self.asset(id), is_key_asset: self.is_key(id) })
            .collect();
        SubGraph { nodes, edges }
    }

    /// The alert shape of one asset: display name, alert kind, owner.
    pub fn impacted_asset(&self, node: NodeId) -> ImpactedAsset {
        let asset = self.asset(node);
        ImpactedAsset {
            name: asset.display_name().to_string(),
            kind: asset.kind.alert_kind().to_string(),
            owner: asset.owner.as_ref().map(Owner::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 8, 20, 9, minute, 0).unwrap()
    }

    fn add(g: &mut LineageGraph, key: &str, kind: AssetKind, tier: Option<u8>, owner: Option<&str>) -> NodeId {
        let mut asset = CatalogAsset::new(key, key, kind);
        asset.tier = tier;
        asset.owner = owner.and_then(Owner::parse);
        g.upsert(asset, Origin::Dbt).unwrap()
    }

    fn keys(g: &LineageGraph, nodes: impl IntoIterator<Item = NodeId>) -> Vec<String> {
        nodes.into_iter().map(|n| g.asset(n).key.clone()).collect()
    }

    /// raw → stg → fct → {daily (tier 1), dash (dashboard)}; daily → ml; stg → other
    fn sample() -> (LineageGraph, [NodeId; 7]) {
        let mut g = LineageGraph::new();
        let raw = add(&mut g, "raw", AssetKind::Source, None, None);
        let stg = add(&mut g, "stg", AssetKind::Model, Some(3), None);
        let fct = add(&mut g, "fct", AssetKind::Model, Some(2), Some("finance@shop.example"));
        let daily = add(&mut g, "daily", AssetKind::Model, Some(1), Some("finance@shop.example"));
        let dash = add(&mut g, "dash", AssetKind::Dashboard, None, Some("Exec Team"));
        let ml = add(&mut g, "ml", AssetKind::MlModel, None, Some("ds@shop.example"));
        let other = add(&mut g, "other", AssetKind::View, None, None);
        for (a, b) in [(raw, stg), (stg, fct), (fct, daily), (fct, dash), (daily, ml), (stg, other), (daily, dash)] {
            g.add_edge(a, b, Origin::Dbt, at(0)).unwrap();
        }
        (g, [raw, stg, fct, daily, dash, ml, other])
    }

    #[test]
    fn blast_radius_lists_everything_downstream_ordered_by_importance() {
        let (g, [raw, ..]) = sample();
        let impact = g.blast_radius(raw, None);
        assert_eq!(impact.total, 6);
        assert_eq!(impact.key_total, 3);
        assert_eq!(impact.max_depth, 4);
        // key first: exposures (dashboard before ML model), the tier-1 model; then by tier.
        assert_eq!(keys(&g, impact.assets.iter().map(|a| a.node)), ["dash", "ml", "daily", "fct", "stg", "other"]);
        assert_eq!(impact.count(AssetGroup::Tables), 4);
        assert_eq!(impact.count(AssetGroup::Dashboards), 1);
        assert_eq!(impact.count(AssetGroup::MlModels), 1);
        assert!(!impact.truncated_by_depth);
        let depth: HashMap<String, u32> =
            impact.assets.iter().map(|a| (g.asset(a.node).key.clone(), a.depth)).collect();
        assert_eq!(depth["dash"], 3, "the shortest path counts");
    }

    #[test]
    fn depth_limit_cuts_the_walk_and_says_so() {
        let (g, [raw, stg, ..]) = sample();
        let impact = g.blast_radius(raw, Some(2));
        assert_eq!(keys(&g, impact.assets.iter().map(|a| a.node)), ["fct", "stg", "other"]);
        assert!(impact.truncated_by_depth);
        let all = g.blast_radius(stg, Some(3));
        assert_eq!(all.total, 5);
        assert!(!all.truncated_by_depth, "nothing lies beyond depth 3 from stg");
        assert_eq!(g.blast_radius(raw, Some(0)).total, 0);
    }

    #[test]
    fn list_limit_keeps_exact_counts_and_the_most_important() {
        let (g, [raw, ..]) = sample();
        let impact = g.blast_radius_with(raw, ImpactOptions { list_limit: Some(2), ..Default::default() });
        assert_eq!(impact.total, 6);
        assert_eq!(keys(&g, impact.assets.iter().map(|a| a.node)), ["dash", "ml"]);
    }

    #[test]
    fn owners_and_alert_conversion() {
        let (g, [raw, ..]) = sample();
        let impact = g.blast_radius(raw, None);
        let owners: Vec<(String, usize, usize)> =
            impact.owners(&g).into_iter().map(|(o, n, k)| (o.to_string(), n, k)).collect();
        assert_eq!(
            owners,
            [
                ("finance@shop.example".to_string(), 2, 1),
                ("Exec Team".to_string(), 1, 1),
                ("ds@shop.example".to_string(), 1, 1)
            ]
        );
        let (count, assets) = impact.to_alert(&g, 2);
        assert_eq!(count, 6);
        assert_eq!(
            assets,
            [
                ImpactedAsset { name: "dash".into(), kind: "dashboard".into(), owner: Some("Exec Team".into()) },
                ImpactedAsset { name: "ml".into(), kind: "ml_model".into(), owner: Some("ds@shop.example".into()) },
            ]
        );
    }

    #[test]
    fn key_asset_policy_and_explicit_marks() {
        let (mut g, [raw, _, fct, _, dash, ..]) = sample();
        g.update(fct, |a| a.key_asset = Some(true));
        g.update(dash, |a| a.key_asset = Some(false));
        g.set_policy(KeyAssetPolicy { exposures: true, max_tier: None });
        let keys_now = keys(&g, g.blast_radius(raw, None).key_assets().map(|a| a.node));
        assert_eq!(keys_now, ["ml", "fct"]);
    }

    #[test]
    fn upstream_walk_and_chain() {
        let (g, [raw, stg, fct, daily, dash, ml, _]) = sample();
        let up = g.upstream(ml, None);
        assert_eq!(keys(&g, up.nodes.iter().map(|n| n.node)), ["daily", "fct", "stg", "raw"]);
        assert_eq!(up.chain_to(raw), Some(vec![ml, daily, fct, stg, raw]));
        assert_eq!(up.chain_to(dash), None);
        assert!(g.is_upstream_of(raw, ml, None));
        assert!(!g.is_upstream_of(raw, ml, Some(3)));
        assert!(g.is_upstream_of(raw, ml, Some(4)));
        assert!(!g.is_upstream_of(ml, raw, None));
        assert_eq!(g.upstream(dash, Some(1)).nodes.len(), 2);
    }

    #[test]
    fn cycles_terminate() {
        let mut g = LineageGraph::new();
        let a = add(&mut g, "a", AssetKind::Table, None, None);
        let b = add(&mut g, "b", AssetKind::Table, None, None);
        g.add_edge(a, b, Origin::OpenLineage, at(1)).unwrap();
        g.add_edge(b, a, Origin::OpenLineage, at(1)).unwrap();
        assert_eq!(g.add_edge(a, a, Origin::OpenLineage, at(1)).unwrap(), None);
        assert_eq!(keys(&g, g.blast_radius(a, None).assets.iter().map(|x| x.node)), ["b"]);
        assert!(g.is_upstream_of(b, a, None));
    }

    #[test]
    fn upsert_merges_by_key_and_asset_id_with_origin_precedence() {
        let mut g = LineageGraph::new();
        let asset: AssetId = "wh.marts.orders".parse().unwrap();
        let mut from_ol = CatalogAsset::new("postgres://db:5432/shop.marts.orders", "orders", AssetKind::Table);
        from_ol.asset_id = Some(asset.clone());
        from_ol.owner = Owner::parse("ol-owner");
        let a = g.upsert(from_ol, Origin::OpenLineage).unwrap();
        let mut from_dbt = CatalogAsset::new("model.shop.orders", "orders", AssetKind::Model);
        from_dbt.asset_id = Some(asset.clone());
        from_dbt.owner = Owner::parse("dbt-owner");
        from_dbt.tier = Some(1);
        let b = g.upsert(from_dbt, Origin::Dbt).unwrap();
        assert_eq!(a, b);
        assert_eq!(g.node_count(), 1);
        assert_eq!(g.find("model.shop.orders"), Some(a));
        assert_eq!(g.resolve("wh.marts.orders"), Some(a));
        let node = g.asset(a);
        assert_eq!(
            (node.kind, node.tier, node.owner.as_ref().unwrap().to_string()),
            (AssetKind::Model, Some(1), "dbt-owner".into())
        );
        // A later OpenLineage upsert fills gaps only.
        let mut again = CatalogAsset::new("postgres://db:5432/shop.marts.orders", "orders", AssetKind::Table);
        again.owner = Owner::parse("ol-owner");
        again.url = Some("https://x".into());
        g.upsert(again, Origin::OpenLineage).unwrap();
        let node = g.asset(a);
        assert_eq!((node.kind, node.owner.as_ref().unwrap().to_string()), (AssetKind::Model, "dbt-owner".into()));
        assert_eq!(node.url.as_deref(), Some("https://x"));
    }

    #[test]
    fn edges_remember_origins_and_stale_ones_are_retracted() {
        let (mut g, [raw, stg, fct, ..]) = sample();
        g.add_edge(raw, stg, Origin::OpenLineage, at(5)).unwrap();
        let edge = g.edge_between(raw, stg).unwrap();
        assert_eq!(edge.origins().collect::<Vec<_>>(), [Origin::OpenLineage, Origin::Dbt]);
        assert_eq!(edge.last_seen(Origin::OpenLineage), Some(at(5)));
        assert_eq!(edge.last_seen_any(), Some(at(5)));
        // A dbt reload at minute 10 re-reports only stg → fct.
        g.add_edge(stg, fct, Origin::Dbt, at(10)).unwrap();
        let before = g.edge_count();
        let removed = g.retract_stale(Origin::Dbt, at(10));
        assert_eq!(removed, before - 2, "all dbt-only edges but stg → fct are gone");
        assert_eq!(g.edge_count(), 2);
        assert_eq!(g.edge_between(raw, stg).unwrap().origins().collect::<Vec<_>>(), [Origin::OpenLineage]);
        assert_eq!(keys(&g, g.blast_radius(raw, None).assets.iter().map(|a| a.node)), ["fct", "stg"]);
        assert!(g.retract_edge(raw, stg, Origin::OpenLineage));
        assert_eq!(g.blast_radius(raw, None).total, 0);
        // Freed slots are reused.
        g.add_edge(raw, fct, Origin::Declared, at(11)).unwrap();
        assert_eq!(g.edge_count(), 2);
        assert_eq!(g.parents(fct).count(), 2);
    }

    #[test]
    fn neighbourhood_holds_nodes_and_edges_between_them() {
        let (g, [_, _, fct, ..]) = sample();
        let sub = g.neighbourhood(fct, Some(1), Direction::Both);
        let names: Vec<&str> = sub.nodes.iter().map(|n| n.asset.key.as_str()).collect();
        assert_eq!(names, ["daily", "dash", "fct", "stg"]);
        let edges: Vec<(&str, &str)> = sub.edges.iter().map(|e| (e.from, e.to)).collect();
        assert_eq!(edges, [("daily", "dash"), ("fct", "daily"), ("fct", "dash"), ("stg", "fct")]);
        let json = serde_json::to_value(&sub).unwrap();
        assert_eq!(json["edges"][0]["origins"][0][0], "dbt");
        assert_eq!(json["nodes"][1]["kind"], "dashboard");
        assert_eq!(json["nodes"][1]["key"], "dash");
        assert_eq!(json["nodes"][1]["is_key_asset"], true);
    }

    /// Shortest depths from `root` by relaxing to a fixed point (hops into jobs cost 0).
    fn naive_depths(g: &LineageGraph, root: NodeId) -> HashMap<NodeId, u32> {
        let mut depth = HashMap::from([(root, 0u32)]);
        loop {
            let mut changed = false;
            for (_, edge) in g.edges() {
                if let Some(&d) = depth.get(&edge.from) {
                    let next = d + u32::from(g.asset(edge.to).kind != AssetKind::Job);
                    if depth.get(&edge.to).is_none_or(|&old| next < old) {
                        depth.insert(edge.to, next);
                        changed = true;
                    }
                }
            }
            if !changed {
                return depth;
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn blast_radius_is_the_reachable_set_at_shortest_depths(
            kinds in proptest::collection::vec(0u8..5, 2..30),
            edges in proptest::collection::vec((0usize..30, 0usize..30), 0..90),
            limit in proptest::option::of(0u32..5),
        ) {
            let mut g = LineageGraph::new();
            let ids: Vec<NodeId> = kinds
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let kind = if *k == 0 { AssetKind::Job } else { AssetKind::Table };
                    g.upsert(CatalogAsset::new(format!("n{i}"), format!("n{i}"), kind), Origin::Dbt).unwrap()
                })
                .collect();
            for (a, b) in edges {
                let (a, b) = (a % ids.len(), b % ids.len());
                g.add_edge(ids[a], ids[b], Origin::Dbt, at(0)).unwrap();
            }
            let root = ids[0];
            let expected = naive_depths(&g, root);
            let within = |d: u32| limit.is_none_or(|l| d <= l);
            let impact = g.blast_radius_with(root, ImpactOptions { depth_limit: limit, include_jobs: true, ..Default::default() });
            let got: HashMap<NodeId, u32> = impact.assets.iter().map(|a| (a.node, a.depth)).collect();
            let want: HashMap<NodeId, u32> =
                expected.iter().filter(|(n, d)| **n != root && within(**d)).map(|(n, d)| (*n, *d)).collect();
            proptest::prop_assert_eq!(&got, &want);
            proptest::prop_assert_eq!(impact.truncated_by_depth, expected.values().any(|d| !within(*d)));
            let without_jobs = g.blast_radius(root, limit);
            proptest::prop_assert_eq!(
                without_jobs.total,
                want.keys().filter(|n| g.asset(**n).kind != AssetKind::Job).count()
            );
            for (&node, &depth) in &want {
                proptest::prop_assert!(g.is_upstream_of(root, node, Some(depth)));
                proptest::prop_assert!(depth == 0 || !g.is_upstream_of(root, node, Some(depth - 1)));
            }
        }
    }

    #[test]
    fn owner_parsing() {
        assert_eq!(Owner::parse("a@b.io").unwrap().email.as_deref(), Some("a@b.io"));
        assert_eq!(Owner::parse("@data-platform").unwrap().name.as_deref(), Some("@data-platform"));
        assert_eq!(Owner::parse("  "), None);
        assert_eq!(Owner::new(Some("Fin"), Some("f@x.io")).unwrap().to_string(), "Fin (f@x.io)");
    }

    #[test]
    fn kinds_round_trip_and_unknown_kinds_list_the_valid_ones() {
        for kind in AssetKind::ALL {
            assert_eq!(kind.as_str().parse::<AssetKind>().unwrap(), *kind);
        }
        let err = "dashbord".parse::<AssetKind>().unwrap_err();
        assert!(err.contains("dashboard") && err.contains("ml_model"), "{err}");
    }
}
