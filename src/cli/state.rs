//! dbt state for `telltale check`: which assets a change touches, and which column changes break
//! someone.
//!
//! `--state <old manifest>` compares the old manifest with the current one (`--manifest`, else
//! `lineage.dbt_manifest` of telltale.yaml) the way dbt's `state:modified+` does, and keeps the
//! checks of the modified nodes' tables and of everything downstream. The same comparison feeds
//! the breaking-change gate: a documented column that was removed or retyped fails the run when
//! something downstream reads the model (the result names those dependents), and only warns when
//! nothing does. `--changed-since <git ref>` uses the manifest too: models whose files changed,
//! and the assets of changed check files, bring their downstream assets along.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::catalog::dbt::{self, BreakingChange, ColumnChange, DbtNode, Manifest};
use crate::config::Config;
use crate::measure::{AssetId, TableRef};
use crate::runtime::{CheckOutcome, Status};

/// A manifest and where it came from.
pub struct LoadedManifest {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// The dbt project directory (where `dbt_project.yml` is), when it can be found.
    pub project_dir: Option<PathBuf>,
}

/// Reads a `manifest.json`, or the `manifest.json` inside a directory (dbt's `--state` takes the
/// directory of the previous run's artifacts).
pub fn load_manifest(path: &Path) -> Result<LoadedManifest, String> {
    let file = if path.is_dir() { path.join("manifest.json") } else { path.to_path_buf() };
    let bytes = std::fs::read(&file).map_err(|e| format!("cannot read the dbt manifest {}: {e}", file.display()))?;
    let manifest = dbt::parse_manifest(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let project_dir = project_dir_of(&file);
    Ok(LoadedManifest { path: file, manifest, project_dir })
}

/// The nearest directory at or above the manifest's that holds `dbt_project.yml`.
fn project_dir_of(manifest: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(manifest).ok()?;
    start.ancestors().skip(1).find(|dir| dir.join("dbt_project.yml").is_file()).map(Path::to_path_buf)
}

/// The current manifest of a check run: `--manifest`, else the configured lineage manifest.
pub fn current_manifest(explicit: Option<&Path>, config: &Config) -> Result<LoadedManifest, String> {
    match (explicit, &config.lineage.dbt_manifest) {
        (Some(path), _) => load_manifest(path),
        (None, Some(manifest)) => load_manifest(manifest),
        (None, None) => Err("comparing dbt state needs the current manifest: pass `--manifest <path>` or set \
             `lineage.dbt_manifest` in telltale.yaml"
            .into()),
    }
}

/// The telltale source that holds the manifest's relations: `lineage.source`, else the only
/// configured source.
pub fn manifest_source(config: &Config) -> Result<String, String> {
    if let Some(source) = &config.lineage.source {
        return Ok(source.clone());
    }
    let mut names = config.sources.keys();
    match (names.next(), names.next()) {
        (Some(only), None) => Ok(only.clone()),
        _ => Err("several sources are configured: set `lineage.source` in telltale.yaml to the one that holds \
             the dbt project's tables"
            .into()),
    }
}

impl LoadedManifest {
    fn asset_of(&self, node: &DbtNode, source: &str) -> Option<AssetId> {
        self.manifest.asset_id(node, &|_, _| Some(source.to_string()))
    }

    /// Assets of these nodes (those with a warehouse relation).
    pub fn assets_of<'a>(&self, ids: impl IntoIterator<Item = &'a String>, source: &str) -> BTreeSet<AssetId> {
        ids.into_iter().filter_map(|id| self.manifest.node(id)).filter_map(|n| self.asset_of(n, source)).collect()
    }

    /// Nodes whose relation is one of `assets`.
    fn nodes_of(&self, assets: &BTreeSet<AssetId>, source: &str) -> Vec<String> {
        self.manifest
            .nodes
            .values()
            .filter(|n| self.asset_of(n, source).is_some_and(|a| assets.iter().any(|x| same_asset(x, &a))))
            .map(|n| n.unique_id.clone())
            .collect()
    }

    /// Nodes defined in one of `files` (absolute paths).
    fn nodes_in_files(&self, files: &BTreeSet<PathBuf>) -> Vec<String> {
        let Some(project) = &self.project_dir else { return Vec::new() };
        self.manifest
            .nodes
            .values()
            .filter(|n| n.original_file_path.as_ref().is_some_and(|p| files.contains(&project.join(p))))
            .map(|n| n.unique_id.clone())
            .collect()
    }

    /// `roots` and every node downstream of them.
    fn with_descendants(&self, roots: Vec<String>) -> BTreeSet<String> {
        let mut all = self.manifest.descendants(roots.iter().map(String::as_str), None);
        all.extend(roots);
        all
    }

    /// Where a node is defined, for reports: the file under the project directory, else the manifest.
    fn definition_of(&self, node: &DbtNode) -> String {
        match (&self.project_dir, &node.original_file_path) {
            (Some(dir), Some(file)) => dir.join(file).display().to_string(),
            _ => self.path.display().to_string(),
        }
    }
}

/// Warehouse identifiers compare case-insensitively (dbt lower-cases, PostgreSQL folds).
fn same_asset(a: &AssetId, b: &AssetId) -> bool {
    a.as_str().eq_ignore_ascii_case(b.as_str())
}

/// What `--state` selects and what it found.
pub struct StateComparison {
    /// Nodes `state:modified` selects, with reasons.
    pub modified: Vec<dbt::ModifiedNode>,
    /// Modified nodes and everything downstream (`state:modified+`), tests left out.
    pub selected: BTreeSet<String>,
    /// Their warehouse tables.
    pub assets: BTreeSet<AssetId>,
    /// One gate result per removed or retyped column.
    pub breaking: Vec<CheckOutcome>,
}

/// Compares the old manifest with the current one.
pub fn compare(old: &LoadedManifest, new: &LoadedManifest, source: &str) -> StateComparison {
    let modified = dbt::modified_nodes(&old.manifest, &new.manifest);
    let selected: BTreeSet<String> = dbt::select_state_modified(&old.manifest, &new.manifest, true)
        .into_iter()
        .filter(|id| new.manifest.node(id).is_some_and(|n| n.asset_kind().is_some()))
        .collect();
    let assets = new.assets_of(&selected, source);
    let breaking = dbt::breaking_changes(&old.manifest, &new.manifest)
        .iter()
        .filter_map(|change| breaking_outcome(change, new, source))
        .collect();
    StateComparison { modified, selected, assets, breaking }
}

fn breaking_outcome(change: &BreakingChange, new: &LoadedManifest, source: &str) -> Option<CheckOutcome> {
    let node = new.manifest.node(&change.unique_id)?;
    let asset = new.asset_of(node, source).unwrap_or_else(|| {
        // An ephemeral model has no table; it still breaks whoever reads it.
        AssetId::new("dbt", &TableRef::new(&node.package_name, &node.name))
    });
    let what = match &change.change {
        ColumnChange::Removed { data_type: Some(t) } => format!("column `{}` ({t}) removed", change.column),
        ColumnChange::Removed { data_type: None } => format!("column `{}` removed", change.column),
        ColumnChange::Retyped { from, to } => format!("column `{}` retyped from {from} to {to}", change.column),
    };
    let name_of = |id: &String| new.manifest.node(id).map_or(id.clone(), |n| format!("{} {}", kind_word(n), n.name));
    let dependents = crate::runtime::Dependents {
        readers: change.dependents.iter().map(name_of).collect(),
        downstream: change.downstream.len(),
        exposures: change
            .downstream
            .iter()
            .filter(|id| new.manifest.node(id).is_some_and(|n| n.resource_type == dbt::ResourceType::Exposure))
            .map(name_of)
            .collect(),
    };
    let message = format!("breaking change in {}: {what}; {}", change.unique_id, dependents.describe());
    Some(CheckOutcome {
        asset,
        monitor: "schema".into(),
        subject: Some(change.column.clone()),
        status: Status::Fail,
        value: Some(change.dependents.len() as f64),
        message,
        definition: Some(new.definition_of(node)),
        metric: None,
        column: Some(change.column.clone()),
        error_class: None,
        verdict: None,
        advisory: dependents.is_advisory(),
    })
}

fn kind_word(node: &DbtNode) -> String {
    node.asset_kind().map_or_else(|| "node".to_string(), |kind| kind.to_string())
}

/// Assets of the changed check files and of the models defined in changed files, with everything
/// downstream of either in the manifest.
pub fn changed_with_downstream(
    manifest: &LoadedManifest,
    changed_files: &BTreeSet<PathBuf>,
    changed_assets: &BTreeSet<AssetId>,
    source: &str,
) -> BTreeSet<AssetId> {
    let mut roots = manifest.nodes_in_files(changed_files);
    roots.extend(manifest.nodes_of(changed_assets, source));
    let mut assets = manifest.assets_of(&manifest.with_descendants(roots), source);
    assets.extend(changed_assets.iter().cloned());
    assets
}

/// A short account of a `--state` selection for the terminal.
pub fn describe(comparison: &StateComparison, old: &LoadedManifest) -> String {
    let mut lines = vec![format!(
        "--state {}: {} modified node{}, {} with downstream, {} table{} to check",
        old.path.display(),
        comparison.modified.len(),
        if comparison.modified.len() == 1 { "" } else { "s" },
        comparison.selected.len(),
        comparison.assets.len(),
        if comparison.assets.len() == 1 { "" } else { "s" },
    )];
    for m in &comparison.modified {
        let reasons: Vec<String> = m
            .reasons
            .iter()
            .map(|r| serde_json::to_value(r).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())
            .collect();
        lines.push(format!("  modified {} ({})", m.unique_id, reasons.join(", ")));
    }
    lines.join("\n")
}
