//! dbt artifacts: `manifest.json` (schema v10–v12, dbt Core 1.6 and newer) and `run_results.json`
//! (v4–v6), read into lineage, plus the two comparisons of a manifest with an older one that CI
//! and change review want: dbt's own `state:modified` selection and breaking column changes.
//!
//! The manifest gives models, sources, seeds, snapshots and exposures (dashboards, notebooks, ML
//! models, applications, analyses with owner, maturity and URL), `depends_on.nodes` edges, and each
//! node's warehouse relation (`database.schema.alias`, a source's `identifier`), which joins dbt
//! nodes to telltale assets through a caller-given (database, schema) → telltale source mapping.
//! Owners come from `meta.owner` (a string or `{name, email}`) or the node's dbt group; tiers from
//! `meta.tier`; `meta.key_asset: true|false` overrides the key-asset policy.
//!
//! Pure: takes bytes, never opens a file (the caller reads and watches the path).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph::{
    AssetKind, CatalogAsset, GraphError, JobRun, LineageGraph, Maturity, Origin, Owner, Relation, RunState,
};

/// Manifest schema versions this module reads.
pub const SUPPORTED_MANIFEST_VERSIONS: std::ops::RangeInclusive<u32> = 10..=12;
/// run_results schema versions this module reads.
pub const SUPPORTED_RUN_RESULTS_VERSIONS: std::ops::RangeInclusive<u32> = 4..=6;

/// Why a dbt artifact could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DbtError {
    /// Not JSON, or JSON of the wrong shape (serde's message names line and column).
    #[error("invalid dbt {artifact}: {source}")]
    Json {
        artifact: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "dbt {artifact} has no `metadata.dbt_schema_version`; expected a dbt artifact such as target/{artifact}.json"
    )]
    MissingVersion { artifact: &'static str },
    #[error("dbt {artifact} schema `{schema}` is not supported: telltale reads {supported}; {hint}")]
    UnsupportedVersion { artifact: &'static str, schema: String, supported: String, hint: &'static str },
}

/// The kind of a dbt resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    Model,
    Seed,
    Snapshot,
    Source,
    Exposure,
    Test,
    /// A dbt analysis (an SQL file under `analyses/`), not an `analysis` exposure.
    Analysis,
    Operation,
    UnitTest,
    Other(String),
}

impl ResourceType {
    fn parse(text: &str) -> ResourceType {
        match text {
            "model" => ResourceType::Model,
            "seed" => ResourceType::Seed,
            "snapshot" => ResourceType::Snapshot,
            "source" => ResourceType::Source,
            "exposure" => ResourceType::Exposure,
            "test" => ResourceType::Test,
            "analysis" => ResourceType::Analysis,
            "operation" => ResourceType::Operation,
            "unit_test" => ResourceType::UnitTest,
            other => ResourceType::Other(other.to_string()),
        }
    }

    /// Uses NodeConfig (whose comparison ignores alias, schema, database, tags and group).
    fn has_node_config(&self) -> bool {
        !matches!(self, ResourceType::Source | ResourceType::Exposure)
    }
}

/// A documented column of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbtColumn {
    pub name: String,
    pub data_type: Option<String>,
    pub description: String,
}

/// One resource of a manifest: a node (model, seed, snapshot, test, …), a source or an exposure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DbtNode {
    pub unique_id: String,
    pub resource_type: ResourceType,
    pub name: String,
    pub package_name: String,
    /// Its warehouse relation; `None` for ephemeral models, tests and exposures.
    pub relation: Option<Relation>,
    /// `config.materialized` (`table`, `view`, `incremental`, `ephemeral`, …).
    pub materialized: Option<String>,
    /// `depends_on.nodes`: what it reads.
    pub depends_on: Vec<String>,
    pub description: String,
    /// Documented columns by name (only what the project declares).
    pub columns: BTreeMap<String, DbtColumn>,
    pub owner: Option<Owner>,
    pub tier: Option<u8>,
    pub key_asset: Option<bool>,
    pub tags: Vec<String>,
    pub group: Option<String>,
    /// Exposures: `dashboard`, `notebook`, `ml`, `application` or `analysis`.
    pub exposure_type: Option<String>,
    pub maturity: Option<Maturity>,
    pub url: Option<String>,
    /// Exposures' display label.
    pub label: Option<String>,
    /// The file that defines it, relative to the dbt project root (`models/marts/fct_orders.sql`).
    pub original_file_path: Option<String>,
    #[serde(skip)]
    compare: Compare,
}

/// What `state:modified` compares, kept raw.
#[derive(Debug, Clone, PartialEq, Default)]
struct Compare {
    fqn: Vec<String>,
    checksum: Option<String>,
    raw_code: Option<String>,
    config: Value,
    unrendered_config: Value,
    macros: Vec<String>,
    generic_test: bool,
    contract_enforced: bool,
    contract_checksum: Option<String>,
    /// Models: `access`, `latest_version`, `deprecation_date`.
    ref_representation: Value,
    /// Sources: rendered database, schema, identifier; quoting; freshness + loaded_at_field; external.
    source_parts: Value,
    /// Exposures: type, owner, maturity, url, description, label and depends_on as a set.
    exposure_parts: Value,
}

impl DbtNode {
    /// The graph kind of this node; `None` for what is not lineage (tests, operations, analyses).
    pub fn asset_kind(&self) -> Option<AssetKind> {
        Some(match self.resource_type {
            ResourceType::Model => AssetKind::Model,
            ResourceType::Seed => AssetKind::Seed,
            ResourceType::Snapshot => AssetKind::Snapshot,
            ResourceType::Source => AssetKind::Source,
            ResourceType::Exposure => match self.exposure_type.as_deref() {
                Some("dashboard") => AssetKind::Dashboard,
                Some("notebook") => AssetKind::Notebook,
                Some("ml") => AssetKind::MlModel,
                Some("analysis") => AssetKind::Analysis,
                _ => AssetKind::Application,
            },
            _ => return None,
        })
    }
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The schema version: 10, 11 or 12.
    pub version: u32,
    pub dbt_version: Option<String>,
    pub project_name: Option<String>,
    pub adapter_type: Option<String>,
    pub generated_at: Option<DateTime<Utc>>,
    pub invocation_id: Option<String>,
    /// Every node, source and exposure by `unique_id`.
    pub nodes: BTreeMap<String, DbtNode>,
    /// Macro SQL by `unique_id` and the macros each macro calls (for `modified.macros`).
    macros: HashMap<String, (String, Vec<String>)>,
}

// ---------------------------------------------------------------------------------- raw shapes --

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    metadata: ProbeMetadata,
}

#[derive(Deserialize, Default)]
struct ProbeMetadata {
    dbt_schema_version: Option<String>,
}

#[derive(Deserialize)]
struct RawManifest {
    metadata: RawMetadata,
    #[serde(default)]
    nodes: HashMap<String, RawNode>,
    #[serde(default)]
    sources: HashMap<String, RawSource>,
    #[serde(default)]
    exposures: HashMap<String, RawExposure>,
    #[serde(default)]
    macros: HashMap<String, RawMacro>,
    #[serde(default)]
    groups: HashMap<String, RawGroup>,
}

#[derive(Deserialize, Default)]
struct RawMetadata {
    dbt_version: Option<String>,
    project_name: Option<String>,
    adapter_type: Option<String>,
    generated_at: Option<DateTime<Utc>>,
    invocation_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawDependsOn {
    #[serde(default)]
    nodes: Vec<String>,
    #[serde(default)]
    macros: Vec<String>,
}

#[derive(Deserialize)]
struct RawChecksum {
    checksum: String,
}

#[derive(Deserialize)]
struct RawColumn {
    #[serde(default)]
    name: String,
    data_type: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawContract {
    #[serde(default)]
    enforced: bool,
    checksum: Option<String>,
}

#[derive(Deserialize)]
struct RawNode {
    unique_id: String,
    original_file_path: Option<String>,
    resource_type: String,
    name: String,
    #[serde(default)]
    package_name: String,
    #[serde(default)]
    fqn: Vec<String>,
    database: Option<String>,
    schema: Option<String>,
    alias: Option<String>,
    relation_name: Option<String>,
    checksum: Option<RawChecksum>,
    raw_code: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    columns: HashMap<String, RawColumn>,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    unrendered_config: Value,
    #[serde(default)]
    meta: Value,
    #[serde(default)]
    tags: Value,
    group: Option<String>,
    #[serde(default)]
    depends_on: RawDependsOn,
    #[serde(default)]
    contract: RawContract,
    test_metadata: Option<Value>,
    #[serde(default)]
    access: Value,
    #[serde(default)]
    latest_version: Value,
    #[serde(default)]
    deprecation_date: Value,
}

#[derive(Deserialize)]
struct RawSource {
    unique_id: String,
    original_file_path: Option<String>,
    name: String,
    #[serde(default)]
    package_name: String,
    #[serde(default)]
    fqn: Vec<String>,
    database: Option<String>,
    schema: Option<String>,
    identifier: Option<String>,
    relation_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    columns: HashMap<String, RawColumn>,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    unrendered_config: Value,
    #[serde(default)]
    meta: Value,
    #[serde(default)]
    source_meta: Value,
    #[serde(default)]
    tags: Value,
    #[serde(default)]
    quoting: Value,
    #[serde(default)]
    freshness: Value,
    #[serde(default)]
    loaded_at_field: Value,
    #[serde(default)]
    external: Value,
}

#[derive(Deserialize)]
struct RawExposure {
    unique_id: String,
    original_file_path: Option<String>,
    name: String,
    #[serde(default)]
    package_name: String,
    #[serde(default)]
    fqn: Vec<String>,
    #[serde(rename = "type")]
    exposure_type: Option<String>,
    #[serde(default)]
    owner: Value,
    maturity: Option<String>,
    url: Option<String>,
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    depends_on: RawDependsOn,
    #[serde(default)]
    meta: Value,
    #[serde(default)]
    tags: Value,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    unrendered_config: Value,
}

#[derive(Deserialize)]
struct RawMacro {
    #[serde(default)]
    macro_sql: String,
    #[serde(default)]
    depends_on: RawDependsOn,
}

#[derive(Deserialize)]
struct RawGroup {
    name: String,
    #[serde(default)]
    package_name: String,
    #[serde(default)]
    owner: Value,
}

// -------------------------------------------------------------------------------------- parsing --

/// `…/dbt/manifest/v12.json` → 12.
fn schema_number(url: &str) -> Option<u32> {
    let file = url.rsplit('/').next()?;
    file.strip_suffix(".json")?.strip_prefix('v')?.parse().ok()
}

fn check_version(
    bytes: &[u8],
    artifact: &'static str,
    supported: &std::ops::RangeInclusive<u32>,
    hint: &'static str,
) -> Result<u32, DbtError> {
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| DbtError::Json { artifact, source })?;
    let schema = probe.metadata.dbt_schema_version.ok_or(DbtError::MissingVersion { artifact })?;
    let right_artifact = schema.contains(&format!("/{}/", artifact.replace('_', "-")));
    match schema_number(&schema) {
        Some(v) if right_artifact && supported.contains(&v) => Ok(v),
        _ => Err(DbtError::UnsupportedVersion {
            artifact,
            schema,
            supported: format!("{artifact} v{}–v{}", supported.start(), supported.end()),
            hint,
        }),
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

fn owner_of(value: &Value) -> Option<Owner> {
    match value {
        Value::String(s) => Owner::parse(s),
        Value::Object(map) => {
            Owner::new(map.get("name").and_then(Value::as_str), map.get("email").and_then(Value::as_str))
        }
        _ => None,
    }
}

/// `1`, `"1"`, `"tier1"`, `"tier-1"`, `"T1"` → 1.
fn tier_of(value: &Value) -> Option<u8> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        Value::String(s) => {
            let digits = s.trim().trim_start_matches(|c: char| !c.is_ascii_digit());
            digits.parse().ok()
        }
        _ => None,
    }
}

fn tags_of(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().filter_map(text).collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `config.meta` merged over `meta` (dbt 1.10 moves meta under config; older manifests have both).
fn meta_field<'a>(meta: &'a Value, config: &'a Value, key: &str) -> Option<&'a Value> {
    config.get("meta").and_then(|m| m.get(key)).or_else(|| meta.get(key)).filter(|v| !v.is_null())
}

fn columns_of(raw: HashMap<String, RawColumn>) -> BTreeMap<String, DbtColumn> {
    raw.into_iter()
        .map(|(key, c)| {
            let name = if c.name.is_empty() { key } else { c.name };
            let data_type = c.data_type.filter(|t| !t.trim().is_empty());
            (name.clone(), DbtColumn { name, data_type, description: c.description.unwrap_or_default() })
        })
        .collect()
}

fn maturity_of(text: Option<&str>) -> Option<Maturity> {
    text.and_then(|m| m.parse().ok())
}

/// Reads a `manifest.json` (schema v10–v12). An unknown schema version is refused by name.
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, DbtError> {
    let version = check_version(
        bytes,
        "manifest",
        &SUPPORTED_MANIFEST_VERSIONS,
        "regenerate it with dbt Core 1.6 or newer (`dbt parse`)",
    )?;
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|source| DbtError::Json { artifact: "manifest", source })?;

    let mut group_owners: HashMap<(String, String), Owner> = HashMap::new();
    for group in raw.groups.into_values() {
        if let Some(owner) = owner_of(&group.owner) {
            group_owners.insert((group.package_name, group.name), owner);
        }
    }
    let group_owner = |package: &str, group: &Option<String>| -> Option<Owner> {
        let group = group.as_ref()?;
        group_owners
            .get(&(package.to_string(), group.clone()))
            .cloned()
            .or_else(|| group_owners.iter().find(|((_, name), _)| name == group).map(|(_, owner)| owner.clone()))
    };

    let mut nodes = BTreeMap::new();
    for node in raw.nodes.into_values() {
        let resource_type = ResourceType::parse(&node.resource_type);
        let materialized = node.config.get("materialized").and_then(text);
        let relation = match (&node.relation_name, &node.schema) {
            (Some(_), Some(schema)) => {
                Some(Relation::new(node.database.as_deref(), schema, node.alias.as_deref().unwrap_or(&node.name)))
            }
            _ => None,
        };
        let group = node.group.clone().or_else(|| node.config.get("group").and_then(text));
        let owner = meta_field(&node.meta, &node.config, "owner")
            .and_then(owner_of)
            .or_else(|| group_owner(&node.package_name, &group));
        let compare = Compare {
            fqn: node.fqn,
            checksum: node.checksum.map(|c| c.checksum),
            raw_code: node.raw_code,
            macros: node.depends_on.macros,
            generic_test: node.test_metadata.is_some(),
            contract_enforced: node.contract.enforced,
            contract_checksum: node.contract.checksum,
            ref_representation: serde_json::json!([node.access, node.latest_version, node.deprecation_date]),
            config: node.config.clone(),
            unrendered_config: node.unrendered_config,
            ..Compare::default()
        };
        let dbt = DbtNode {
            tier: meta_field(&node.meta, &node.config, "tier").and_then(tier_of),
            key_asset: meta_field(&node.meta, &node.config, "key_asset").and_then(Value::as_bool),
            tags: tags_of(&node.tags),
            unique_id: node.unique_id,
            resource_type,
            name: node.name,
            package_name: node.package_name,
            relation,
            materialized,
            depends_on: node.depends_on.nodes,
            description: node.description.unwrap_or_default(),
            columns: columns_of(node.columns),
            owner,
            group,
            exposure_type: None,
            maturity: None,
            url: None,
            label: None,
            original_file_path: node.original_file_path,
            compare,
        };
        nodes.insert(dbt.unique_id.clone(), dbt);
    }

    for source in raw.sources.into_values() {
        let identifier = source.identifier.clone().unwrap_or_else(|| source.name.clone());
        let relation = match (&source.relation_name, &source.schema) {
            (Some(_), Some(schema)) => Some(Relation::new(source.database.as_deref(), schema, &identifier)),
            _ => None,
        };
        let field = |key: &str| {
            meta_field(&source.meta, &source.config, key)
                .or_else(|| source.source_meta.get(key).filter(|v| !v.is_null()))
        };
        let compare = Compare {
            fqn: source.fqn,
            config: source.config.clone(),
            unrendered_config: source.unrendered_config,
            source_parts: serde_json::json!([
                source.database,
                source.schema,
                identifier,
                source.quoting,
                source.freshness,
                source.loaded_at_field,
                source.external
            ]),
            ..Compare::default()
        };
        let dbt = DbtNode {
            owner: field("owner").and_then(owner_of),
            tier: field("tier").and_then(tier_of),
            key_asset: field("key_asset").and_then(Value::as_bool),
            tags: tags_of(&source.tags),
            unique_id: source.unique_id,
            resource_type: ResourceType::Source,
            name: source.name,
            package_name: source.package_name,
            relation,
            materialized: None,
            depends_on: Vec::new(),
            description: source.description.unwrap_or_default(),
            columns: columns_of(source.columns),
            group: None,
            exposure_type: None,
            maturity: None,
            url: None,
            label: None,
            original_file_path: source.original_file_path,
            compare,
        };
        nodes.insert(dbt.unique_id.clone(), dbt);
    }

    for exposure in raw.exposures.into_values() {
        let depends: BTreeSet<&String> = exposure.depends_on.nodes.iter().collect();
        let description = exposure.description.unwrap_or_default();
        let compare = Compare {
            fqn: exposure.fqn,
            config: exposure.config.clone(),
            unrendered_config: exposure.unrendered_config,
            exposure_parts: serde_json::json!([
                exposure.exposure_type,
                exposure.owner,
                exposure.maturity,
                exposure.url,
                description,
                exposure.label,
                depends
            ]),
            ..Compare::default()
        };
        let dbt = DbtNode {
            owner: owner_of(&exposure.owner),
            tier: meta_field(&exposure.meta, &exposure.config, "tier").and_then(tier_of),
            key_asset: meta_field(&exposure.meta, &exposure.config, "key_asset").and_then(Value::as_bool),
            tags: tags_of(&exposure.tags),
            unique_id: exposure.unique_id,
            resource_type: ResourceType::Exposure,
            name: exposure.name,
            package_name: exposure.package_name,
            relation: None,
            materialized: None,
            depends_on: exposure.depends_on.nodes,
            description,
            columns: BTreeMap::new(),
            group: None,
            maturity: maturity_of(exposure.maturity.as_deref()),
            exposure_type: exposure.exposure_type,
            url: exposure.url,
            label: exposure.label,
            original_file_path: exposure.original_file_path,
            compare,
        };
        nodes.insert(dbt.unique_id.clone(), dbt);
    }

    let macros = raw.macros.into_iter().map(|(id, m)| (id, (m.macro_sql, m.depends_on.macros))).collect();
    Ok(Manifest {
        version,
        dbt_version: raw.metadata.dbt_version,
        project_name: raw.metadata.project_name,
        adapter_type: raw.metadata.adapter_type,
        generated_at: raw.metadata.generated_at,
        invocation_id: raw.metadata.invocation_id,
        nodes,
        macros,
    })
}

/// What [`Manifest::add_to_graph`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DbtLoad {
    pub nodes: usize,
    pub edges: usize,
    /// Nodes joined to a telltale asset through the source mapping.
    pub joined: usize,
}

impl Manifest {
    pub fn node(&self, unique_id: &str) -> Option<&DbtNode> {
        self.nodes.get(unique_id)
    }

    /// Direct dependents of every node (dbt's `child_map`, rebuilt from `depends_on`).
    pub fn child_map(&self) -> HashMap<&str, Vec<&str>> {
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for node in self.nodes.values() {
            for parent in &node.depends_on {
                children.entry(parent.as_str()).or_default().push(node.unique_id.as_str());
            }
        }
        for list in children.values_mut() {
            list.sort_unstable();
            list.dedup();
        }
        children
    }

    /// Every node downstream of `roots` (roots excluded unless reached again), up to `depth` hops;
    /// what dbt's `<selector>+` adds.
    pub fn descendants<'a>(&self, roots: impl IntoIterator<Item = &'a str>, depth: Option<u32>) -> BTreeSet<String> {
        let children = self.child_map();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = BTreeSet::new();
        let mut frontier: Vec<&str> = roots.into_iter().collect();
        let mut hops = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| hops < d) {
            hops += 1;
            let mut next = Vec::new();
            for at in frontier {
                for &child in children.get(at).map(Vec::as_slice).unwrap_or_default() {
                    if seen.insert(child) {
                        out.insert(child.to_string());
                        next.push(child);
                    }
                }
            }
            frontier = next;
        }
        out
    }

    /// The telltale asset of a node: its relation in the telltale source that `source_for`
    /// (database, schema) names.
    pub fn asset_id(
        &self,
        node: &DbtNode,
        source_for: &dyn Fn(Option<&str>, &str) -> Option<String>,
    ) -> Option<crate::measure::AssetId> {
        let relation = node.relation.as_ref()?;
        let source = source_for(relation.database.as_deref(), &relation.schema)?;
        Some(relation.asset_id(&source))
    }

    /// Adds models, seeds, snapshots, sources and exposures with their `depends_on` edges to
    /// `graph` (origin dbt, seen at `seen_at`). Nodes whose relation `source_for` maps join the
    /// telltale asset of that relation. Tests, analyses and operations are not lineage and are left out.
    pub fn add_to_graph(
        &self,
        graph: &mut LineageGraph,
        source_for: &dyn Fn(Option<&str>, &str) -> Option<String>,
        seen_at: DateTime<Utc>,
    ) -> Result<DbtLoad, GraphError> {
        let mut load = DbtLoad::default();
        let mut ids = HashMap::new();
        for node in self.nodes.values() {
            let Some(kind) = node.asset_kind() else { continue };
            let mut asset = CatalogAsset::new(&node.unique_id, node.label.as_deref().unwrap_or(&node.name), kind);
            asset.asset_id = self.asset_id(node, source_for);
            load.joined += usize::from(asset.asset_id.is_some());
            asset.relation = node.relation.clone();
            asset.owner = node.owner.clone();
            asset.tier = node.tier;
            asset.maturity = node.maturity;
            asset.url = node.url.clone();
            asset.key_asset = node.key_asset;
            asset.tags = node.tags.clone();
            ids.insert(node.unique_id.as_str(), graph.upsert(asset, Origin::Dbt)?);
            load.nodes += 1;
        }
        for node in self.nodes.values() {
            let Some(&to) = ids.get(node.unique_id.as_str()) else { continue };
            for parent in &node.depends_on {
                if let Some(&from) = ids.get(parent.as_str())
                    && graph.add_edge(from, to, Origin::Dbt, seen_at)?.is_some()
                {
                    load.edges += 1;
                }
            }
        }
        Ok(load)
    }
}

// ---------------------------------------------------------------------------------- run results --

/// One node's result in `run_results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeResult {
    pub unique_id: String,
    /// dbt's status: `success`, `error`, `skipped` (runs); `pass`, `fail`, `warn` (tests); `no-op`.
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub execution_time: f64,
    #[serde(default)]
    pub failures: Option<u64>,
    #[serde(default)]
    timing: Vec<RawTiming>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RawTiming {
    name: String,
    completed_at: Option<DateTime<Utc>>,
}

impl NodeResult {
    /// The status as a run state (`None` for `no-op`, which dbt reports for exposures).
    pub fn run_state(&self) -> Option<RunState> {
        Some(match self.status.as_str() {
            "success" | "pass" | "warn" => RunState::Complete,
            "error" | "fail" | "runtime error" | "partial success" => RunState::Fail,
            "skipped" => RunState::Abort,
            "no-op" => return None,
            _ => RunState::Other,
        })
    }

    /// When the node finished executing.
    pub fn completed_at(&self) -> Option<DateTime<Utc>> {
        let execute = self.timing.iter().find(|t| t.name == "execute").and_then(|t| t.completed_at);
        execute.or_else(|| self.timing.iter().filter_map(|t| t.completed_at).max())
    }
}

/// A parsed `run_results.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResults {
    pub version: u32,
    pub invocation_id: Option<String>,
    pub generated_at: Option<DateTime<Utc>>,
    pub results: Vec<NodeResult>,
}

#[derive(Deserialize)]
struct RawRunResults {
    #[serde(default)]
    metadata: RawMetadata,
    #[serde(default)]
    results: Vec<NodeResult>,
}

/// Reads a `run_results.json` (schema v4–v6).
pub fn parse_run_results(bytes: &[u8]) -> Result<RunResults, DbtError> {
    let version = check_version(
        bytes,
        "run_results",
        &SUPPORTED_RUN_RESULTS_VERSIONS,
        "regenerate it with dbt Core 1.3 or newer",
    )?;
    let raw: RawRunResults =
        serde_json::from_slice(bytes).map_err(|source| DbtError::Json { artifact: "run_results", source })?;
    Ok(RunResults {
        version,
        invocation_id: raw.metadata.invocation_id,
        generated_at: raw.metadata.generated_at,
        results: raw.results,
    })
}

impl RunResults {
    /// Records each node's result as the last run (`job: "dbt"`, run id = invocation id) of the
    /// graph node with its `unique_id`. Returns how many nodes were updated.
    pub fn apply(&self, graph: &mut LineageGraph) -> usize {
        let mut updated = 0;
        for result in &self.results {
            let (Some(node), Some(state)) = (graph.find(&result.unique_id), result.run_state()) else { continue };
            let Some(at) = result.completed_at().or(self.generated_at) else { continue };
            let message = match state {
                RunState::Complete if result.status == "success" || result.status == "pass" => None,
                _ => Some(match &result.message {
                    Some(m) if !m.is_empty() => format!("{}: {m}", result.status),
                    _ => result.status.clone(),
                }),
            };
            let run = JobRun {
                job: "dbt".into(),
                run_id: self.invocation_id.clone().unwrap_or_default(),
                state,
                at,
                message,
            };
            graph.update(node, |asset| asset.last_run = Some(run));
            updated += 1;
        }
        updated
    }
}

// ------------------------------------------------------------------------------ state:modified --

/// Why `state:modified` selects a node (dbt's `modified.*` sub-selectors, plus the rest of its
/// `same_contents` checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Modification {
    /// Not in the old manifest.
    New,
    /// SQL changed (a seed's file checksum, for seeds).
    Body,
    /// A config changed (unrendered, so target-dependent values don't count).
    Configs,
    /// The configured database, schema or alias changed.
    Relation,
    /// A description that `persist_docs` writes to the warehouse changed.
    PersistedDescriptions,
    /// The node moved (its fully-qualified name changed).
    Fqn,
    /// A macro it calls (directly or through other macros) changed.
    Macros,
    /// Its enforced contract changed.
    Contract,
    /// A model's access, latest version or deprecation date changed.
    Access,
    /// A source's relation, quoting, freshness or external properties changed.
    SourceDefinition,
    /// An exposure's type, owner, maturity, URL, description, label or dependencies changed.
    ExposureDefinition,
}

/// A node `state:modified` selects and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModifiedNode {
    pub unique_id: String,
    pub resource_type: ResourceType,
    pub reasons: Vec<Modification>,
}

/// Config keys NodeConfig leaves out of the comparison (compared as the relation, or not at all).
const NODE_CONFIG_IGNORED: [&str; 5] = ["alias", "schema", "database", "tags", "group"];

fn same_config(old: &Value, new: &Value, ignored: &[&str]) -> bool {
    let empty = serde_json::Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    old.keys().chain(new.keys()).filter(|k| !ignored.contains(&k.as_str())).all(|k| old.get(k) == new.get(k))
}

fn relation_config(node: &DbtNode) -> [Option<&Value>; 3] {
    ["database", "schema", "alias"].map(|k| node.compare.unrendered_config.get(k).filter(|v| !v.is_null()))
}

fn persists(node: &DbtNode, what: &str) -> bool {
    node.compare.config.get("persist_docs").and_then(|p| p.get(what)).and_then(Value::as_bool).unwrap_or(false)
}

/// Macros whose SQL changed, that are new, or that were removed.
fn modified_macros(old: &Manifest, new: &Manifest) -> HashSet<String> {
    let mut changed: HashSet<String> = new
        .macros
        .iter()
        .filter(|(id, (sql, _))| old.macros.get(*id).is_none_or(|(old_sql, _)| old_sql != sql))
        .map(|(id, _)| id.clone())
        .collect();
    changed.extend(old.macros.keys().filter(|id| !new.macros.contains_key(*id)).cloned());
    changed
}

fn calls_modified_macro(manifest: &Manifest, macros: &[String], modified: &HashSet<String>) -> bool {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&str> = macros.iter().map(String::as_str).collect();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if modified.contains(id) {
            return true;
        }
        if let Some((_, calls)) = manifest.macros.get(id) {
            stack.extend(calls.iter().map(String::as_str));
        }
    }
    false
}

fn modifications(old: Option<&DbtNode>, new: &DbtNode, macros_changed: bool) -> Vec<Modification> {
    let Some(old) = old else { return vec![Modification::New] };
    let (o, n) = (&old.compare, &new.compare);
    let mut reasons = Vec::new();
    let mut flag = |changed: bool, why: Modification| {
        if changed {
            reasons.push(why);
        }
    };
    match new.resource_type {
        ResourceType::Source => {
            flag(o.source_parts != n.source_parts, Modification::SourceDefinition);
            flag(o.fqn != n.fqn, Modification::Fqn);
            flag(!same_config(&o.unrendered_config, &n.unrendered_config, &[]), Modification::Configs);
        }
        ResourceType::Exposure => {
            flag(o.exposure_parts != n.exposure_parts, Modification::ExposureDefinition);
            flag(o.fqn != n.fqn, Modification::Fqn);
            flag(!same_config(&o.unrendered_config, &n.unrendered_config, &[]), Modification::Configs);
        }
        _ if n.generic_test => {
            flag(!same_config(&o.unrendered_config, &n.unrendered_config, &NODE_CONFIG_IGNORED), Modification::Configs);
            flag(o.fqn != n.fqn, Modification::Fqn);
            flag(macros_changed, Modification::Macros);
        }
        _ => {
            let body_changed = match (&new.resource_type, &o.raw_code, &n.raw_code) {
                (ResourceType::Seed, _, _) | (_, None, _) | (_, _, None) => o.checksum != n.checksum,
                (_, Some(old_sql), Some(new_sql)) => old_sql != new_sql,
            };
            flag(body_changed, Modification::Body);
            let configs_changed = new.resource_type.has_node_config()
                && !same_config(&o.unrendered_config, &n.unrendered_config, &NODE_CONFIG_IGNORED);
            flag(configs_changed, Modification::Configs);
            let descriptions_changed = (persists(new, "relation") && old.description != new.description)
                || (persists(new, "columns")
                    && old
                        .columns
                        .iter()
                        .map(|(k, c)| (k, &c.description))
                        .ne(new.columns.iter().map(|(k, c)| (k, &c.description))));
            flag(descriptions_changed, Modification::PersistedDescriptions);
            flag(o.fqn != n.fqn, Modification::Fqn);
            flag(relation_config(old) != relation_config(new), Modification::Relation);
            flag(macros_changed, Modification::Macros);
            if new.resource_type == ResourceType::Model && old.resource_type == ResourceType::Model {
                let contract_changed = match (o.contract_enforced, n.contract_enforced) {
                    (false, false) => false,
                    (true, true) => o.contract_checksum != n.contract_checksum,
                    _ => true,
                };
                flag(contract_changed, Modification::Contract);
                flag(o.ref_representation != n.ref_representation, Modification::Access);
            }
        }
    }
    reasons
}

/// The nodes dbt's `state:modified` selects in `new` against `old`, with the reasons, sorted by
/// `unique_id` (tests included when they themselves changed). Nodes deleted from `new` are not
/// selected (there is nothing to run), as in dbt.
pub fn modified_nodes(old: &Manifest, new: &Manifest) -> Vec<ModifiedNode> {
    let changed_macros = modified_macros(old, new);
    new.nodes
        .values()
        .filter_map(|node| {
            let macros_changed = !changed_macros.is_empty()
                && !matches!(node.resource_type, ResourceType::Source | ResourceType::Exposure)
                && calls_modified_macro(new, &node.compare.macros, &changed_macros);
            let reasons = modifications(old.nodes.get(&node.unique_id), node, macros_changed);
            (!reasons.is_empty()).then(|| ModifiedNode {
                unique_id: node.unique_id.clone(),
                resource_type: node.resource_type.clone(),
                reasons,
            })
        })
        .collect()
}

/// What `dbt ls --select state:modified` (or `state:modified+` with `children`) selects, with
/// dbt's default eager indirect selection: every test that reads a selected node comes along.
pub fn select_state_modified(old: &Manifest, new: &Manifest, children: bool) -> BTreeSet<String> {
    let mut selected: BTreeSet<String> = modified_nodes(old, new).into_iter().map(|m| m.unique_id).collect();
    if children {
        let descendants = new.descendants(selected.iter().map(String::as_str), None);
        selected.extend(descendants);
    }
    let tests: Vec<String> = new
        .nodes
        .values()
        .filter(|n| n.resource_type == ResourceType::Test && n.depends_on.iter().any(|p| selected.contains(p)))
        .map(|n| n.unique_id.clone())
        .collect();
    selected.extend(tests);
    selected
}

// ---------------------------------------------------------------------------- breaking changes --

/// What happened to a column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ColumnChange {
    Removed { data_type: Option<String> },
    Retyped { from: String, to: String },
}

/// A removed or retyped column of a model, seed or snapshot; `dependents` empty when no node
/// reads it (a gate warns rather than fails then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakingChange {
    pub unique_id: String,
    pub column: String,
    #[serde(flatten)]
    pub change: ColumnChange,
    /// Nodes that read it directly (tests left out).
    pub dependents: Vec<String>,
    /// Everything downstream (tests left out), exposures included.
    pub downstream: Vec<String>,
}

fn normalized_type(data_type: &str) -> String {
    data_type.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase()
}

/// Removed or retyped columns of models, seeds and snapshots, with their dependents in `new`
/// (possibly none). Only columns the project documents (with `data_type` for retyping) can be compared; a
/// node without documented columns in `old` is skipped. Case-insensitive column names.
pub fn breaking_changes(old: &Manifest, new: &Manifest) -> Vec<BreakingChange> {
    let children = new.child_map();
    let mut changes = Vec::new();
    for node in new.nodes.values() {
        if !matches!(node.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot) {
            continue;
        }
        let Some(previous) = old.nodes.get(&node.unique_id) else { continue };
        if previous.columns.is_empty() {
            continue;
        }
        let is_lineage = |id: &&&str| new.nodes.get(**id).is_some_and(|n| n.resource_type != ResourceType::Test);
        let dependents: Vec<String> = children
            .get(node.unique_id.as_str())
            .map(|c| c.iter().filter(is_lineage).map(|s| s.to_string()).collect())
            .unwrap_or_default();
        let current: HashMap<String, &DbtColumn> =
            node.columns.values().map(|c| (c.name.to_ascii_lowercase(), c)).collect();
        let mut found = Vec::new();
        for column in previous.columns.values() {
            match current.get(&column.name.to_ascii_lowercase()) {
                None => {
                    found.push((column.name.clone(), ColumnChange::Removed { data_type: column.data_type.clone() }))
                }
                Some(now) => {
                    if let (Some(from), Some(to)) = (&column.data_type, &now.data_type)
                        && normalized_type(from) != normalized_type(to)
                    {
                        found.push((column.name.clone(), ColumnChange::Retyped { from: from.clone(), to: to.clone() }));
                    }
                }
            }
        }
        if found.is_empty() {
            continue;
        }
        let downstream: Vec<String> = new
            .descendants([node.unique_id.as_str()], None)
            .into_iter()
            .filter(|id| new.nodes.get(id).is_some_and(|n| n.resource_type != ResourceType::Test))
            .collect();
        for (column, change) in found {
            changes.push(BreakingChange {
                unique_id: node.unique_id.clone(),
                column,
                change,
                dependents: dependents.clone(),
                downstream: downstream.clone(),
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(version: u32, nodes: Value, sources: Value, exposures: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "metadata": {
                "dbt_schema_version": format!("https://schemas.getdbt.com/dbt/manifest/v{version}.json"),
                "dbt_version": "1.6.0",
                "project_name": "p",
                "generated_at": "2026-08-20T09:00:00Z",
                "invocation_id": "inv-1"
            },
            "nodes": nodes,
            "sources": sources,
            "exposures": exposures,
            "macros": {},
            "groups": {"group.p.fin": {"name": "fin", "package_name": "p", "owner": {"name": "Finance", "email": null}}},
        }))
        .unwrap()
    }

    fn model(name: &str, deps: &[&str], extra: Value) -> (String, Value) {
        let id = format!("model.p.{name}");
        let mut node = json!({
            "unique_id": id, "resource_type": "model", "name": name, "package_name": "p",
            "fqn": ["p", name], "database": "wh", "schema": "marts", "alias": name,
            "relation_name": format!("\"wh\".\"marts\".\"{name}\""),
            "checksum": {"name": "sha256", "checksum": format!("sum-{name}")},
            "raw_code": format!("select 1 as {name}"),
            "config": {"materialized": "table", "meta": {}}, "unrendered_config": {"materialized": "table"},
            "depends_on": {"nodes": deps, "macros": []}, "columns": {}
        });
        for (k, v) in extra.as_object().unwrap() {
            node[k] = v.clone();
        }
        (id, node)
    }

    fn sample(version: u32) -> Vec<u8> {
        let nodes: serde_json::Map<String, Value> = [
            model("stg", &["source.p.raw.orders"], json!({"materialized": "view"})),
            model(
                "fct",
                &["model.p.stg"],
                json!({"group": "fin", "meta": {"tier": "tier-1"}, "columns": {
                    "id": {"name": "id", "data_type": "integer"}, "amount": {"name": "amount", "data_type": "numeric"}}}),
            ),
            model("eph", &["model.p.stg"], json!({"relation_name": null, "config": {"materialized": "ephemeral"}})),
        ]
        .into_iter()
        .collect();
        let sources = json!({"source.p.raw.orders": {
            "unique_id": "source.p.raw.orders", "resource_type": "source", "name": "orders", "package_name": "p",
            "source_name": "raw", "fqn": ["p", "raw", "orders"], "database": "wh", "schema": "raw",
            "identifier": "orders_v2", "relation_name": "\"wh\".\"raw\".\"orders_v2\"",
            "source_meta": {"owner": {"name": "Platform", "email": "platform@x.io"}}, "meta": {}, "config": {"enabled": true}
        }});
        let exposures = json!({"exposure.p.board": {
            "unique_id": "exposure.p.board", "resource_type": "exposure", "name": "board", "package_name": "p",
            "fqn": ["p", "board"], "type": "dashboard", "maturity": "high", "url": "https://bi/1", "label": "Board",
            "owner": {"name": "Exec", "email": "exec@x.io"}, "depends_on": {"nodes": ["model.p.fct"], "macros": []}
        }});
        manifest(version, Value::Object(nodes), sources, exposures)
    }

    #[test]
    fn reads_versions_10_to_12_with_relations_owners_and_tiers() {
        for version in 10..=12 {
            let m = parse_manifest(&sample(version)).unwrap();
            assert_eq!(m.version, version);
            let fct = m.node("model.p.fct").unwrap();
            assert_eq!(fct.relation.as_ref().unwrap().to_string(), "wh.marts.fct");
            assert_eq!(fct.owner.as_ref().unwrap().to_string(), "Finance", "group owner");
            assert_eq!(fct.tier, Some(1));
            assert_eq!(fct.columns["amount"].data_type.as_deref(), Some("numeric"));
            let source = m.node("source.p.raw.orders").unwrap();
            assert_eq!(source.relation.as_ref().unwrap().to_string(), "wh.raw.orders_v2", "identifier, not name");
            assert_eq!(source.owner.as_ref().unwrap().to_string(), "Platform (platform@x.io)");
            assert_eq!(m.node("model.p.eph").unwrap().relation, None, "ephemeral models have no relation");
            let board = m.node("exposure.p.board").unwrap();
            assert_eq!(board.asset_kind(), Some(AssetKind::Dashboard));
            assert_eq!(board.maturity, Some(Maturity::High));
        }
    }

    #[test]
    fn unknown_versions_are_refused_by_name() {
        for (version, wanted) in [(9, "`https://schemas.getdbt.com/dbt/manifest/v9.json`"), (13, "v13.json")] {
            let err = parse_manifest(&sample(version)).unwrap_err().to_string();
            assert!(err.contains(wanted) && err.contains("manifest v10–v12"), "{err}");
        }
        let err = parse_manifest(br#"{"metadata": {}}"#).unwrap_err().to_string();
        assert!(err.contains("no `metadata.dbt_schema_version`"), "{err}");
        let run_results =
            br#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"}}"#;
        let err = parse_manifest(run_results).unwrap_err().to_string();
        assert!(err.contains("run-results/v6.json"), "a run_results file is not a manifest: {err}");
        let err = parse_manifest(b"{not json").unwrap_err().to_string();
        assert!(err.starts_with("invalid dbt manifest: ") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn graph_joins_relations_to_telltale_assets() {
        let m = parse_manifest(&sample(12)).unwrap();
        let mut g = LineageGraph::new();
        let map = |database: Option<&str>, schema: &str| {
            (database == Some("wh") && schema == "marts").then(|| "warehouse".to_string())
        };
        let at = DateTime::parse_from_rfc3339("2026-08-20T09:00:00Z").unwrap().with_timezone(&Utc);
        let load = m.add_to_graph(&mut g, &map, at).unwrap();
        assert_eq!(load, DbtLoad { nodes: 5, edges: 4, joined: 2 });
        let fct = g.resolve("warehouse.marts.fct").unwrap();
        assert_eq!(g.asset(fct).key, "model.p.fct");
        let source = g.find("source.p.raw.orders").unwrap();
        let impact = g.blast_radius(source, None);
        let names: Vec<&str> = impact.assets.iter().map(|a| g.asset(a.node).key.as_str()).collect();
        assert_eq!(names, ["exposure.p.board", "model.p.fct", "model.p.stg", "model.p.eph"], "key, consumers, closer");
        assert_eq!(g.asset(g.find("exposure.p.board").unwrap()).name, "Board");
    }

    #[test]
    fn state_comparison_reasons() {
        let old = parse_manifest(&sample(12)).unwrap();
        let mut new = old.clone();
        let stg = new.nodes.get_mut("model.p.stg").unwrap();
        stg.compare.raw_code = Some("select 2".into());
        let fct = new.nodes.get_mut("model.p.fct").unwrap();
        fct.compare.unrendered_config = json!({"materialized": "incremental"});
        let eph = new.nodes.get_mut("model.p.eph").unwrap();
        // Tags and schema don't count as configs; a configured schema counts as the relation.
        eph.compare.unrendered_config = json!({"materialized": "table", "tags": ["x"], "schema": "other"});
        let board = new.nodes.get_mut("exposure.p.board").unwrap();
        board.compare.exposure_parts = json!(["dashboard", {"name": "Someone else"}]);
        let mut added = new.nodes["model.p.stg"].clone();
        added.unique_id = "model.p.added".into();
        new.nodes.insert(added.unique_id.clone(), added);

        let reasons: Vec<(String, Vec<Modification>)> =
            modified_nodes(&old, &new).into_iter().map(|m| (m.unique_id, m.reasons)).collect();
        assert_eq!(
            reasons,
            [
                ("exposure.p.board".into(), vec![Modification::ExposureDefinition]),
                ("model.p.added".into(), vec![Modification::New]),
                ("model.p.eph".into(), vec![Modification::Relation]),
                ("model.p.fct".into(), vec![Modification::Configs]),
                ("model.p.stg".into(), vec![Modification::Body]),
            ]
        );
        assert!(modified_nodes(&old, &old).is_empty());
        let plus = select_state_modified(&old, &new, true);
        assert!(plus.contains("exposure.p.board") && plus.contains("model.p.fct"));
        assert_eq!(
            old.descendants(["model.p.stg"], Some(1)),
            BTreeSet::from(["model.p.eph".into(), "model.p.fct".into()])
        );
    }

    #[test]
    fn breaking_changes_need_documented_columns_and_name_dependents() {
        let old = parse_manifest(&sample(12)).unwrap();
        let mut new = old.clone();
        let fct = new.nodes.get_mut("model.p.fct").unwrap();
        fct.columns.remove("amount");
        fct.columns.get_mut("id").unwrap().data_type = Some("BIGINT".into());
        let changes = breaking_changes(&old, &new);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].column, "amount");
        assert_eq!(changes[0].change, ColumnChange::Removed { data_type: Some("numeric".into()) });
        assert_eq!(changes[1].change, ColumnChange::Retyped { from: "integer".into(), to: "BIGINT".into() });
        assert_eq!(changes[0].dependents, ["exposure.p.board"]);
        // Same type in another case is not a change.
        new.nodes.get_mut("model.p.fct").unwrap().columns.get_mut("id").unwrap().data_type = Some("INTEGER".into());
        assert_eq!(breaking_changes(&old, &new).len(), 1);
        // Nobody reads it any more: still reported, with no dependents.
        new.nodes.remove("exposure.p.board");
        let changes = breaking_changes(&old, &new);
        assert_eq!(changes.len(), 1);
        assert!(changes[0].dependents.is_empty() && changes[0].downstream.is_empty());
        // Undocumented columns cannot be compared.
        let mut bare = old.clone();
        bare.nodes.get_mut("model.p.fct").unwrap().columns.clear();
        assert!(breaking_changes(&bare, &new).is_empty());
    }

    #[test]
    fn run_results_set_the_last_run() {
        let m = parse_manifest(&sample(12)).unwrap();
        let mut g = LineageGraph::new();
        m.add_to_graph(&mut g, &|_, _| None, Utc::now()).unwrap();
        let bytes = serde_json::to_vec(&json!({
            "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json", "invocation_id": "inv-9",
                         "generated_at": "2026-08-20T09:10:00Z"},
            "results": [
                {"unique_id": "model.p.fct", "status": "error", "message": "relation does not exist",
                 "timing": [{"name": "execute", "started_at": "2026-08-20T09:05:00Z", "completed_at": "2026-08-20T09:06:00Z"}]},
                {"unique_id": "model.p.stg", "status": "success", "timing": []},
                {"unique_id": "exposure.p.board", "status": "no-op", "timing": []},
                {"unique_id": "test.p.gone", "status": "pass", "timing": []}
            ]
        }))
        .unwrap();
        let results = parse_run_results(&bytes).unwrap();
        assert_eq!(results.apply(&mut g), 2);
        let fct = g.asset(g.find("model.p.fct").unwrap()).last_run.clone().unwrap();
        assert_eq!(fct.state, RunState::Fail);
        assert_eq!(fct.run_id, "inv-9");
        assert_eq!(fct.message.as_deref(), Some("error: relation does not exist"));
        assert_eq!(fct.at.to_rfc3339(), "2026-08-20T09:06:00+00:00");
        let stg = g.asset(g.find("model.p.stg").unwrap()).last_run.clone().unwrap();
        assert_eq!((stg.state, stg.message), (RunState::Complete, None));
        assert_eq!(stg.at.to_rfc3339(), "2026-08-20T09:10:00+00:00", "no timing: the artifact's time");
        let err = parse_run_results(&sample(12)).unwrap_err().to_string();
        assert!(err.contains("run_results v4–v6"), "{err}");
    }
}
