//! The lineage catalog: assets (tables, dbt nodes, dashboards, ML models, jobs), who owns them, how
//! important they are, and the directed edges between them, merged from every lineage source.
//!
//! - [`graph`]: the in-memory graph, blast radius (downstream impact) and upstream chains.
//! - [`dbt`]: dbt artifacts (`manifest.json` v10–v12, `run_results.json`), `state:modified`
//!   comparison and breaking column changes between two manifests.
//! - [`openlineage`]: OpenLineage 2-0-2 events (RunEvent, DatasetEvent, JobEvent) and dataset naming.
//! - [`sql`]: the tables a view's SQL definition reads (`sqlparser`).
//!
//! Pure: no IO, no clock, no async. Callers read files and HTTP bodies, pass the time an edge was
//! seen, and own persistence; this module never touches a source, the store or a channel. The one
//! outward type it produces is [`crate::alert::ImpactedAsset`], the shape alerts carry.

pub mod dbt;
pub mod graph;
pub mod openlineage;
pub mod sql;

pub use graph::{
    AssetGroup, AssetKind, CatalogAsset, Direction, Edge, EdgeId, GraphError, GroupCount, Impact, ImpactOptions,
    ImpactedNode, JobRun, KeyAssetPolicy, LineageGraph, Maturity, NodeId, Origin, Owner, Relation, RunState, SubGraph,
    Upstream,
};
