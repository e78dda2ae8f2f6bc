//! Which checks `telltale check` runs: `--select` / `--exclude` selectors and `--changed-since`.
//!
//! Selectors: an asset glob (`wh.analytics.*`), `tag:revenue`, `owner:@team`, `monitor:freshness`,
//! `file:checks/orders.yaml`, `tier:1`. An asset is run when it matches any `--select` (or there is
//! none) and no `--exclude`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::check::{AssetCheck, CheckSet};
use crate::config::glob_match;
use crate::measure::AssetId;
use crate::runtime::CheckOutcome;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Asset(String),
    Tag(String),
    Owner(String),
    Monitor(String),
    File(String),
    Tier(u8),
}

pub const MONITORS: &[&str] = &["freshness", "volume", "schema", "column", "custom_sql"];

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        let (kind, value) = match text.split_once(':') {
            Some((k, v)) if ["tag", "owner", "monitor", "file", "tier"].contains(&k) => (k, v),
            _ => return Ok(Selector::Asset(text.to_string())),
        };
        if value.is_empty() {
            return Err(format!("selector `{text}` has no value after `{kind}:`"));
        }
        Ok(match kind {
            "tag" => Selector::Tag(value.into()),
            "owner" => Selector::Owner(value.into()),
            "monitor" => {
                if !MONITORS.contains(&value) {
                    let hint = crate::yaml::suggest(value, MONITORS.iter().copied())
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    return Err(format!(
                        "unknown monitor `{value}` in `{text}`{hint}; expected one of: {}",
                        MONITORS.join(", ")
                    ));
                }
                Selector::Monitor(value.into())
            }
            "file" => Selector::File(value.into()),
            _ => Selector::Tier(
                value
                    .parse()
                    .ok()
                    .filter(|t| (1..=4).contains(t))
                    .ok_or_else(|| format!("`{text}`: a tier is 1 to 4"))?,
            ),
        })
    }

    fn matches(&self, check: &AssetCheck) -> bool {
        match self {
            Selector::Asset(glob) => glob_match(glob, check.asset.as_str()),
            Selector::Tag(t) => check.tags.iter().any(|x| x == t),
            Selector::Owner(o) => check.owner.as_deref() == Some(o.as_str()),
            Selector::Monitor(m) => has_monitor(check, m),
            Selector::File(f) => same_file(&check.file, Path::new(f)),
            Selector::Tier(t) => check.tier == Some(*t),
        }
    }
}

fn has_monitor(check: &AssetCheck, monitor: &str) -> bool {
    match monitor {
        "freshness" => check.freshness.is_some(),
        "volume" => check.volume.is_some(),
        "schema" => check.schema.is_some(),
        "column" => !check.columns.is_empty(),
        _ => !check.custom_sql.is_empty(),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.ends_with(b),
    }
}

/// Keeps the selected checks (and, when `changed` is given, only those of changed assets);
/// returns the monitors to report (empty = all).
pub fn apply(
    checks: &mut CheckSet,
    select: &[Selector],
    exclude: &[Selector],
    changed: Option<&BTreeSet<AssetId>>,
) -> Vec<String> {
    checks.assets.retain(|_, c| {
        let selected = select.is_empty() || select.iter().any(|s| s.matches(c));
        let excluded = exclude.iter().any(|s| s.matches(c));
        let changed =
            changed.is_none_or(|assets| assets.iter().any(|a| a.as_str().eq_ignore_ascii_case(c.asset.as_str())));
        selected && !excluded && changed
    });
    select
        .iter()
        .filter_map(|s| match s {
            Selector::Monitor(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// Assets whose checks are defined in one of `files`.
pub fn assets_in_files(checks: &CheckSet, files: &BTreeSet<PathBuf>) -> BTreeSet<AssetId> {
    checks.assets.values().filter(|c| files.iter().any(|f| same_file(&c.file, f))).map(|c| c.asset.clone()).collect()
}

/// Whether a result that no check file defines (a breaking change between manifests) is in the
/// selection: only asset globs apply to it (it has no tags, owner or file); an `--exclude` glob
/// drops it.
pub fn selects_asset(select: &[Selector], exclude: &[Selector], asset: &AssetId) -> bool {
    let glob = |s: &Selector| matches!(s, Selector::Asset(g) if glob_match(g, asset.as_str()));
    let globs = select.iter().filter(|s| matches!(s, Selector::Asset(_))).count();
    (globs == 0 || select.iter().any(glob)) && !exclude.iter().any(glob)
}

/// Drops outcomes of monitors that were not selected (`source` errors are always kept).
pub fn keep_monitors(outcomes: Vec<CheckOutcome>, monitors: &[String]) -> Vec<CheckOutcome> {
    if monitors.is_empty() {
        return outcomes;
    }
    outcomes.into_iter().filter(|o| o.monitor == "source" || monitors.contains(&o.monitor)).collect()
}

/// Files changed since `git_ref` (committed, staged or not), as absolute paths.
pub fn changed_since(git_ref: &str, dir: &Path) -> Result<BTreeSet<PathBuf>, String> {
    let run = |args: &[&str]| -> Result<String, String> {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if !out.status.success() {
            return Err(format!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let top = run(&["rev-parse", "--show-toplevel"])?;
    let top = PathBuf::from(top.trim());
    let mut files = BTreeSet::new();
    for list in [run(&["diff", "--name-only", git_ref])?, run(&["ls-files", "--others", "--exclude-standard"])?] {
        files.extend(list.lines().filter(|l| !l.is_empty()).map(|l| top.join(l)));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_reject_typos() {
        assert_eq!(Selector::parse("wh.sales.*").unwrap(), Selector::Asset("wh.sales.*".into()));
        assert_eq!(Selector::parse("tag:revenue").unwrap(), Selector::Tag("revenue".into()));
        assert_eq!(Selector::parse("tier:1").unwrap(), Selector::Tier(1));
        let err = Selector::parse("monitor:freshnes").unwrap_err();
        assert!(err.contains("did you mean `freshness`"), "{err}");
        assert!(Selector::parse("tier:9").is_err());
        assert!(Selector::parse("owner:").is_err());
    }
}
