//! Monitors as code: the data team's `checks/*.yaml` files, validated into [`AssetCheck`]s.
//!
//! Validation is pure and collects every problem in every file at once, with file:line:column, the
//! YAML path, the bad value and what was expected. It checks names against the configured sources
//! (and what each engine can compute) but never connects to them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, SourceKind, file_problem};
use crate::detect::{Direction, Seasonality, Sensitivity, Settings, TimeRange};
use crate::measure::{AssetId, MetricKind, TableRef};
use crate::schedule::Schedule;
use crate::yaml::{self, Decoder, Diagnostics, MapReader, Mark, Node, Value};

/// A threshold on one metric: hard bounds, learned (`auto`), or both; or just record it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Rule {
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Learned thresholds from the metric's own history (anomaly detection).
    pub auto: bool,
    /// Per-metric overrides of the asset's detection settings.
    pub tuning: Tuning,
    /// Line of the rule in its check file, for reports that point back at it.
    #[serde(skip)]
    pub mark: Mark,
}

/// Detector overrides a single rule may set.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Tuning {
    pub sensitivity: Option<Sensitivity>,
    pub direction: Option<Direction>,
    pub min_change: Option<f64>,
}

impl Tuning {
    /// The asset's detection settings with this rule's overrides applied.
    pub fn apply(&self, base: &Settings) -> Settings {
        let mut s = base.clone();
        if let Some(v) = self.sensitivity {
            s.sensitivity = v;
        }
        if self.direction.is_some() {
            s.direction = self.direction;
        }
        if self.min_change.is_some() {
            s.min_change = self.min_change;
        }
        s
    }
}

impl Rule {
    /// Whether `value` breaks a hard bound; returns a sentence saying how.
    pub fn violation(&self, value: f64) -> Option<String> {
        match (self.min, self.max) {
            (Some(min), _) if value < min => Some(format!("{} is below the minimum {}", fmt_num(value), fmt_num(min))),
            (_, Some(max)) if value > max => Some(format!("{} is above the maximum {}", fmt_num(value), fmt_num(max))),
            _ => None,
        }
    }
    pub fn has_bounds(&self) -> bool {
        self.min.is_some() || self.max.is_some()
    }
}

pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}").trim_end_matches('0').to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FreshnessMonitor {
    /// Measure freshness as `now - max(timestamp_column)` instead of catalog metadata.
    pub timestamp_column: Option<String>,
    /// Hard SLA: fail when the table is older than this.
    #[serde(with = "secs_opt")]
    pub max_age: Option<Duration>,
    /// Learn the update cadence and alert when the table is later than it allows.
    pub auto: bool,
    pub tuning: Tuning,
    #[serde(skip)]
    pub mark: Mark,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeMonitor {
    /// Count rows added per bucket by this column (enables backfill); without it, rows added is the
    /// row-count delta between polls.
    pub timestamp_column: Option<String>,
    #[serde(with = "secs")]
    pub bucket: Duration,
    /// Use an exact `count(*)` instead of the catalog estimate.
    pub exact: bool,
    pub row_count: Rule,
    pub rows_added: Rule,
    #[serde(skip)]
    pub mark: Mark,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaMonitor {
    /// Fail on any change, not only breaking ones (removed or retyped columns).
    pub fail_on_any_change: bool,
    #[serde(skip)]
    pub mark: Mark,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnMonitor {
    pub name: String,
    pub metrics: Vec<(MetricKind, Rule)>,
    pub accepted_values: Option<Vec<String>>,
    #[serde(skip)]
    pub mark: Mark,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomSql {
    pub name: String,
    pub sql: String,
    pub rule: Rule,
    #[serde(skip)]
    pub mark: Mark,
}

/// Everything telltale watches on one table.
#[derive(Debug, Clone, Serialize)]
pub struct AssetCheck {
    pub asset: AssetId,
    pub source: String,
    pub table: TableRef,
    pub file: PathBuf,
    pub line: usize,
    pub owner: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub tier: Option<u8>,
    #[serde(skip)]
    pub schedule: Schedule,
    /// SQL predicate applied to profile queries (e.g. only the last partition).
    pub filter: Option<String>,
    /// Percent of rows to sample for profiles (TABLESAMPLE or engine equivalent).
    pub sample_percent: Option<f64>,
    pub freshness: Option<FreshnessMonitor>,
    pub volume: Option<VolumeMonitor>,
    pub schema: Option<SchemaMonitor>,
    pub columns: Vec<ColumnMonitor>,
    pub custom_sql: Vec<CustomSql>,
    /// Detection settings shared by every learned threshold of this asset.
    pub detection: Settings,
    /// Target share of time the asset is fresh and healthy (0.995 for `slo: 99.5%`).
    pub slo: Option<f64>,
    /// Declared lineage: what this table reads from (`upstream:`) …
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<DeclaredRef>,
    /// … and who reads it (`downstream:`), including consumers no tool reports (a BI dashboard).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub downstream: Vec<DeclaredRef>,
}

/// One entry of a check file's `upstream:` / `downstream:` list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DeclaredRef {
    /// A telltale asset (`source.schema.table`, or `schema.table` in the checked table's source).
    Asset(AssetId),
    /// Something outside the warehouse: a dashboard, an ML model, an application.
    External {
        name: String,
        kind: crate::catalog::AssetKind,
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tier: Option<u8>,
        /// Explicit key-asset mark (exposure kinds are key by default).
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<bool>,
        #[serde(skip)]
        line: usize,
    },
}

impl AssetCheck {
    /// The rule that governs `kind` (and `column`) on this asset, if any.
    pub fn rule_for(&self, kind: MetricKind, column: &str) -> Option<&Rule> {
        match kind {
            MetricKind::RowCount => self.volume.as_ref().map(|v| &v.row_count),
            MetricKind::RowsAdded => self.volume.as_ref().map(|v| &v.rows_added),
            MetricKind::Custom => self.custom_sql.iter().find(|c| c.name == column).map(|c| &c.rule),
            _ => self
                .columns
                .iter()
                .find(|c| c.name == column)
                .and_then(|c| c.metrics.iter().find(|(m, _)| *m == kind))
                .map(|(_, r)| r),
        }
    }

    /// Whether this check needs queries beyond the metadata scan.
    pub fn needs_queries(&self) -> bool {
        !self.columns.is_empty()
            || !self.custom_sql.is_empty()
            || self.freshness.as_ref().is_some_and(|f| f.timestamp_column.is_some())
            || self.volume.as_ref().is_some_and(|v| v.timestamp_column.is_some() || v.exact)
    }
    /// The check's name in measurements and reports: `file.yaml:line`.
    pub fn name(&self) -> String {
        let file = self.file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        format!("{file}:{}", self.line)
    }
}

mod secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}
mod secs_opt {
    pub fn serialize<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }
}

/// Column metrics a check may ask for, by name.
pub const COLUMN_METRICS: &[MetricKind] = &[
    MetricKind::NullRate,
    MetricKind::NullCount,
    MetricKind::DistinctCount,
    MetricKind::DistinctRatio,
    MetricKind::Uniqueness,
    MetricKind::Min,
    MetricKind::Max,
    MetricKind::Mean,
    MetricKind::Stddev,
    MetricKind::P50,
    MetricKind::P95,
    MetricKind::MinLength,
    MetricKind::MaxLength,
    MetricKind::MeanLength,
    MetricKind::InvalidCount,
    MetricKind::InvalidRate,
    MetricKind::CategoryShift,
    MetricKind::DistributionShift,
];

/// All checks of a deployment, keyed by asset.
#[derive(Debug, Clone, Default)]
pub struct CheckSet {
    pub assets: BTreeMap<AssetId, AssetCheck>,
    pub files: Vec<PathBuf>,
}

impl CheckSet {
    /// Finds check files from the config's `checks` entries and validates them all.
    pub fn load(config: &Config) -> Result<CheckSet, Diagnostics> {
        let mut problems = Diagnostics::default();
        let files = discover_files(&config.checks, &mut problems, &config.file);
        let mut texts = Vec::new();
        for file in &files {
            match std::fs::read_to_string(file) {
                Ok(t) => texts.push((file.clone(), t)),
                Err(e) => problems.0.push(file_problem(file, format!("cannot read check file: {e}"))),
            }
        }
        match CheckSet::parse(config, &texts) {
            Ok(set) if problems.is_empty() => Ok(set),
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        }
    }

    /// The check files the config's `checks` entries name right now (for watching them).
    pub fn files_of(config: &Config) -> Vec<PathBuf> {
        discover_files(&config.checks, &mut Diagnostics::default(), &config.file)
    }

    /// Validates check files given as (path, text).
    pub fn parse(config: &Config, files: &[(PathBuf, String)]) -> Result<CheckSet, Diagnostics> {
        let mut problems = Diagnostics::default();
        let mut set = CheckSet::default();
        for (path, text) in files {
            set.files.push(path.clone());
            let root = match yaml::parse(path, text) {
                Ok(r) => r,
                Err(d) => {
                    problems.0.push(d);
                    continue;
                }
            };
            let mut d = Decoder::new(path);
            for check in decode_file(&mut d, &root, config) {
                if let Some(previous) = set.assets.get(&check.asset) {
                    d.error(
                        Mark { line: check.line, column: 1 },
                        "",
                        format!(
                            "asset `{}` is already checked in {}:{}; put all monitors of one table in one entry",
                            check.asset,
                            previous.file.display(),
                            previous.line
                        ),
                    );
                    continue;
                }
                set.assets.insert(check.asset.clone(), check);
            }
            problems.extend(d.finish());
        }
        if problems.is_empty() { Ok(set) } else { Err(problems) }
    }
}

fn discover_files(entries: &[PathBuf], problems: &mut Diagnostics, config_file: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in entries {
        let text = entry.to_string_lossy();
        if text.contains(['*', '?', '[']) {
            match glob::glob(&text) {
                Ok(paths) => files.extend(paths.flatten().filter(|p| p.is_file())),
                Err(e) => problems.0.push(file_problem(config_file, format!("checks: invalid pattern `{text}`: {e}"))),
            }
        } else if entry.is_dir() {
            let mut stack = vec![entry.clone()];
            while let Some(dir) = stack.pop() {
                let Ok(read) = std::fs::read_dir(&dir) else { continue };
                for e in read.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                        files.push(p);
                    }
                }
            }
        } else if entry.is_file() {
            files.push(entry.clone());
        } else {
            problems.0.push(file_problem(
                config_file,
                format!(
                    "checks: `{}` does not exist; expected a directory, a file or a glob of check files",
                    entry.display()
                ),
            ));
        }
    }
    files.sort();
    files.dedup();
    files
}

fn decode_file(d: &mut Decoder, root: &Node, config: &Config) -> Vec<AssetCheck> {
    let mut out = Vec::new();
    if root.value == Value::Null {
        return out;
    }
    let Some(mut map) = d.map(root, "") else { return out };
    if let Some(v) = map.require(d, "version", "`version: 1`")
        && v.as_scalar() != Some("1")
    {
        d.error(v.mark, "version", "unsupported version; expected `1`");
    }
    if let Some(node) = map.require(d, "assets", "a list of tables to watch")
        && let Some(items) = d.seq(node, "assets")
    {
        for (i, item) in items.iter().enumerate() {
            if let Some(c) = decode_asset(d, item, &format!("assets[{i}]"), config) {
                out.push(c);
            }
        }
    }
    map.finish(d);
    out
}

fn decode_asset(d: &mut Decoder, node: &Node, path: &str, config: &Config) -> Option<AssetCheck> {
    let mut map = d.map(node, path)?;
    let source_node = map.require(d, "source", "the name of a source in telltale.yaml");
    let source = source_node.and_then(|n| d.text(n, &map.path_of("source")));
    let source_cfg = match (&source, source_node) {
        (Some(name), Some(n)) => match config.source(name) {
            Some(s) => Some(s),
            None => {
                let names: Vec<&str> = config.sources.keys().map(String::as_str).collect();
                let hint = yaml::suggest(name, names.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                d.error(
                    n.mark,
                    &map.path_of("source"),
                    format!(
                        "unknown source `{name}`{hint}; sources in {}: {}",
                        config.file.display(),
                        names.join(", ")
                    ),
                );
                None
            }
        },
        _ => None,
    };
    let kind = source_cfg.map(|s| s.kind);
    let table = map
        .require(d, "table", "`schema.table` (or just `table` for the default schema)")
        .and_then(|n| d.text(n, &map.path_of("table")))
        .filter(|t| {
            let needs_database = !t.contains('.')
                && source_cfg.is_some_and(|s| s.kind == SourceKind::Mysql && s.default_schema().is_empty());
            if needs_database {
                let name = source_cfg.map(|s| s.name.as_str()).unwrap_or_default();
                d.error(
                    table_mark(node),
                    &format!("{}.table", path),
                    format!("the URL of source `{name}` names no database; write `database.{t}`"),
                );
            }
            !needs_database
        })
        .map(|t| match t.split_once('.') {
            Some((schema, name)) => TableRef::new(schema, name),
            None => TableRef::new(source_cfg.map(|s| s.default_schema()).unwrap_or_else(|| "public".into()), t),
        });
    let owner = map.get("owner").and_then(|n| d.text(n, &map.path_of("owner")));
    let description = map.get("description").and_then(|n| d.text(n, &map.path_of("description")));
    let tags = map.get("tags").and_then(|n| d.strings(n, &map.path_of("tags"))).unwrap_or_default();
    let tier = map.get("tier").and_then(|n| d.unsigned(n, &map.path_of("tier"), 1, 4)).map(|t| t as u8);
    let schedule = match map.get("schedule") {
        Some(n) => Schedule::decode(d, n, &map.path_of("schedule")),
        None => Some(Schedule::every(Duration::from_secs(3600))),
    };
    let filter = map.get("where").and_then(|n| d.text(n, &map.path_of("where")));
    let sample_percent = map.get("sample").and_then(|n| {
        decode_percent(
            d,
            n,
            &map.path_of("sample"),
            "expected a percentage of rows to sample, such as `10%` (more than 0, at most 100)",
        )
    });
    let slo = map.get("slo").and_then(|n| {
        let p = map.path_of("slo");
        decode_percent(d, n, &p, "expected a percentage of time healthy, such as `99.5%`").map(|v| v / 100.0).filter(
            |v| {
                let ok = *v < 1.0;
                if !ok {
                    d.error(n.mark, &p, "an SLO of 100% leaves no error budget; use e.g. `99.5%`");
                }
                ok
            },
        )
    });
    let detection = match map.get("detection") {
        Some(n) => decode_detection(d, n, &map.path_of("detection")).unwrap_or_default(),
        None => Settings::default(),
    };
    let upstream = map
        .get("upstream")
        .map(|n| decode_declared(d, n, &map.path_of("upstream"), source.as_deref(), config))
        .unwrap_or_default();
    let downstream = map
        .get("downstream")
        .map(|n| decode_declared(d, n, &map.path_of("downstream"), source.as_deref(), config))
        .unwrap_or_default();
    let mut check_monitors = Monitors::default();
    if let Some(n) = map.require(d, "monitors", "a mapping of monitors: freshness, volume, schema, columns, custom_sql")
    {
        let mpath = map.path_of("monitors");
        check_monitors = decode_monitors(d, n, &mpath, kind);
    }
    map.finish(d);
    let source = source?;
    let table = table?;
    source_cfg?;
    Some(AssetCheck {
        asset: AssetId::new(&source, &table),
        source,
        table,
        file: d.file().to_path_buf(),
        line: node.mark.line,
        owner,
        description,
        tags,
        tier,
        schedule: schedule?,
        filter,
        sample_percent,
        freshness: check_monitors.freshness,
        volume: check_monitors.volume,
        schema: check_monitors.schema,
        columns: check_monitors.columns,
        custom_sql: check_monitors.custom_sql,
        detection,
        slo,
        upstream,
        downstream,
    })
}

/// Kinds a declared external consumer may have.
const DECLARED_KINDS: &[&str] =
    &["dashboard", "ml_model", "application", "notebook", "analysis", "table", "view", "dataset"];

/// A check file's `upstream:` or `downstream:` list: telltale assets as strings, external
/// consumers as mappings (`name`, `kind`, `owner`, `url`, `tier`, `key`).
fn decode_declared(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    source: Option<&str>,
    config: &Config,
) -> Vec<DeclaredRef> {
    let mut out = Vec::new();
    let Some(items) = d.seq(node, path) else { return out };
    for (i, item) in items.iter().enumerate() {
        let ipath = format!("{path}[{i}]");
        if let Value::Scalar { .. } = &item.value {
            let Some(text) = d.text(item, &ipath) else { continue };
            let parts: Vec<&str> = text.split('.').collect();
            let (src, schema, table) = match parts.as_slice() {
                [s, sc, t] if !s.is_empty() && !sc.is_empty() && !t.is_empty() => (s.to_string(), *sc, *t),
                [sc, t] if !sc.is_empty() && !t.is_empty() => match source {
                    Some(s) => (s.to_string(), *sc, *t),
                    None => continue,
                },
                _ => {
                    d.error(
                        item.mark,
                        &ipath,
                        format!(
                            "`{text}` is not a table; expected `source.schema.table`, `schema.table` (same source), or a mapping with `name` and `kind` for a consumer outside the warehouse"
                        ),
                    );
                    continue;
                }
            };
            if config.source(&src).is_none() {
                let names: Vec<&str> = config.sources.keys().map(String::as_str).collect();
                let hint = yaml::suggest(&src, names.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                d.error(
                    item.mark,
                    &ipath,
                    format!("unknown source `{src}` in `{text}`{hint}; sources: {}", names.join(", ")),
                );
                continue;
            }
            out.push(DeclaredRef::Asset(AssetId::new(&src, &TableRef::new(schema, table))));
            continue;
        }
        let Some(mut m) = d.map(item, &ipath) else { continue };
        let name = m
            .require(d, "name", "what people call it, e.g. `Revenue dashboard`")
            .and_then(|n| d.text(n, &m.path_of("name")));
        let kind = m
            .require(d, "kind", &format!("one of {}", DECLARED_KINDS.join(", ")))
            .and_then(|n| d.one_of(n, &m.path_of("kind"), "kind", DECLARED_KINDS))
            .and_then(|k| k.parse::<crate::catalog::AssetKind>().ok());
        let owner = m.get("owner").and_then(|n| d.text(n, &m.path_of("owner")));
        let url = m.get("url").and_then(|n| d.text(n, &m.path_of("url"))).filter(|u| {
            let ok = u.starts_with("http://") || u.starts_with("https://");
            if !ok {
                d.error(item.mark, &format!("{ipath}.url"), format!("`{u}` is not a URL; expected `https://…`"));
            }
            ok
        });
        let tier = m.get("tier").and_then(|n| d.unsigned(n, &m.path_of("tier"), 1, 4)).map(|t| t as u8);
        let key = m.get("key").and_then(|n| d.bool(n, &m.path_of("key")));
        m.finish(d);
        if let (Some(name), Some(kind)) = (name, kind) {
            out.push(DeclaredRef::External { name, kind, owner, url, tier, key, line: item.mark.line });
        }
    }
    out
}

/// The asset's `detection:` block: defaults for every learned threshold.
fn decode_detection(d: &mut Decoder, node: &Node, path: &str) -> Option<Settings> {
    let mut m = d.map(node, path)?;
    let mut s = Settings::default();
    if let Some(x) = m.get("sensitivity") {
        s.sensitivity = decode_sensitivity(d, x, &m.path_of("sensitivity")).unwrap_or_default();
    }
    if let Some(x) = m.get("direction") {
        s.direction = decode_direction(d, x, &m.path_of("direction"));
    }
    if let Some(x) = m.get("min_change") {
        s.min_change = decode_fraction(d, x, &m.path_of("min_change"));
    }
    if let Some(x) = m.get("seasonality") {
        s.seasonality = match d
            .one_of(x, &m.path_of("seasonality"), "seasonality", &["auto", "none", "daily", "weekly"])
            .as_deref()
        {
            Some("none") => Seasonality::None,
            Some("daily") => Seasonality::Daily,
            Some("weekly") => Seasonality::Weekly,
            _ => Seasonality::Auto,
        };
    }
    if let Some(x) = m.get("training_window") {
        let p = m.path_of("training_window");
        s.training_window = d.duration(x, &p).and_then(|w| {
            if w < Duration::from_secs(86_400) {
                d.error(
                    x.mark,
                    &p,
                    "a training window shorter than `1d` cannot learn a daily rhythm; use at least `1d`",
                );
                None
            } else {
                Some(w.as_secs() as i64)
            }
        });
    }
    if let Some(x) = m.get("utc_offset") {
        let p = m.path_of("utc_offset");
        match d.string(x, &p).as_deref().and_then(parse_utc_offset) {
            Some(v) => s.utc_offset = v,
            None => d.error(x.mark, &p, "expected an offset from UTC such as `+01:00` or `-05:00`"),
        }
    }
    if let Some(x) = m.get("exclude") {
        let p = m.path_of("exclude");
        for (i, item) in d.seq(x, &p).unwrap_or_default().iter().enumerate() {
            let ip = format!("{p}[{i}]");
            let Some(mut r) = d.map(item, &ip) else { continue };
            let from = r.require(d, "from", "a date or time such as `2026-12-24` or `2026-12-24T06:00:00Z`");
            let to = r.require(d, "to", "a date or time after `from`");
            let from_path = r.path_of("from");
            let to_path = r.path_of("to");
            r.finish(d);
            let start = from.and_then(|n| decode_instant(d, n, &from_path));
            let end = to.and_then(|n| decode_instant(d, n, &to_path));
            if let (Some(start), Some(end)) = (start, end) {
                if end <= start {
                    d.error(item.mark, &ip, "`to` must be after `from`");
                } else {
                    s.exclude.push(TimeRange { start, end });
                }
            }
        }
    }
    m.finish(d);
    Some(s)
}

fn parse_utc_offset(text: &str) -> Option<i64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h * 60 + m <= 14 * 60 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// A date (`2026-12-24`, midnight UTC) or an RFC 3339 time, as unix seconds.
fn decode_instant(d: &mut Decoder, node: &Node, path: &str) -> Option<i64> {
    let text = d.text(node, path)?;
    if let Ok(t) = text.parse::<chrono::DateTime<chrono::Utc>>() {
        return Some(t.timestamp());
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        return day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
    }
    d.error(
        node.mark,
        path,
        format!("invalid time `{text}`; expected a date such as `2026-12-24` or `2026-12-24T06:00:00Z`"),
    );
    None
}

fn decode_sensitivity(d: &mut Decoder, node: &Node, path: &str) -> Option<Sensitivity> {
    if let Value::Scalar { text, quoted: false } = &node.value
        && let Ok(rate) = text.parse::<f64>()
    {
        if rate > 0.0 && rate < 0.5 {
            return Some(Sensitivity::FalseAlarmRate(rate));
        }
        d.error(
            node.mark,
            path,
            "a numeric sensitivity is a false-alarm probability per day of the series, above 0 and below 0.5 (e.g. `0.0001`)",
        );
        return None;
    }
    match d.one_of(node, path, "sensitivity", &["low", "medium", "high"])?.as_str() {
        "low" => Some(Sensitivity::Low),
        "high" => Some(Sensitivity::High),
        _ => Some(Sensitivity::Medium),
    }
}

fn decode_direction(d: &mut Decoder, node: &Node, path: &str) -> Option<Direction> {
    match d.one_of(node, path, "direction", &["up", "down", "both"])?.as_str() {
        "up" => Some(Direction::Up),
        "down" => Some(Direction::Down),
        _ => Some(Direction::Both),
    }
}

/// `0.1` or `10%`.
fn decode_fraction(d: &mut Decoder, node: &Node, path: &str) -> Option<f64> {
    let text = node.as_scalar().unwrap_or_default().trim().to_string();
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok().map(|v| v / 100.0),
        None => text.parse::<f64>().ok(),
    };
    match value {
        Some(v) if (0.0..=10.0).contains(&v) => Some(v),
        _ => {
            d.error(node.mark, path, "expected a relative change such as `0.1` or `10%`");
            None
        }
    }
}

/// `sensitivity`, `direction` and `min_change` keys of a rule map.
fn decode_tuning(d: &mut Decoder, m: &mut MapReader<'_>) -> Tuning {
    Tuning {
        sensitivity: m.get("sensitivity").and_then(|x| decode_sensitivity(d, x, &m.path_of("sensitivity"))),
        direction: m.get("direction").and_then(|x| decode_direction(d, x, &m.path_of("direction"))),
        min_change: m.get("min_change").and_then(|x| decode_fraction(d, x, &m.path_of("min_change"))),
    }
}

fn table_mark(asset: &Node) -> Mark {
    match &asset.value {
        Value::Map(entries) => {
            entries.iter().find(|(k, _)| k.as_scalar() == Some("table")).map_or(asset.mark, |(_, v)| v.mark)
        }
        _ => asset.mark,
    }
}

fn decode_percent(d: &mut Decoder, node: &Node, path: &str, expected: &str) -> Option<f64> {
    let text = node.as_scalar().unwrap_or_default().trim().to_string();
    let number = text.strip_suffix('%').unwrap_or(&text).trim().parse::<f64>().ok();
    match number {
        Some(p) if p > 0.0 && p <= 100.0 => Some(p),
        _ => {
            d.error(node.mark, path, expected);
            None
        }
    }
}

#[derive(Default)]
struct Monitors {
    freshness: Option<FreshnessMonitor>,
    volume: Option<VolumeMonitor>,
    schema: Option<SchemaMonitor>,
    columns: Vec<ColumnMonitor>,
    custom_sql: Vec<CustomSql>,
}

/// `monitor: true`, `monitor: {}` and `monitor: auto` all switch a monitor on with defaults.
fn enabled_map<'n>(d: &mut Decoder, node: &'n Node, path: &str) -> Option<(Option<MapReader<'n>>, bool)> {
    match &node.value {
        Value::Null => Some((None, false)),
        Value::Scalar { text, .. } if text == "auto" => Some((None, true)),
        Value::Scalar { .. } => match d.bool(node, path) {
            Some(true) => Some((None, false)),
            _ => None,
        },
        _ => d.map(node, path).map(|m| (Some(m), false)),
    }
}

fn decode_monitors(d: &mut Decoder, node: &Node, path: &str, kind: Option<SourceKind>) -> Monitors {
    let mut out = Monitors::default();
    let Some(mut map) = d.map(node, path) else { return out };
    if let Some(n) = map.present("freshness") {
        let p = map.path_of("freshness");
        if let Some((m, auto)) = enabled_map(d, n, &p) {
            let mut f = FreshnessMonitor {
                timestamp_column: None,
                max_age: None,
                auto,
                tuning: Tuning::default(),
                mark: n.mark,
            };
            if let Some(mut m) = m {
                f.timestamp_column = m.get("timestamp_column").and_then(|x| d.text(x, &m.path_of("timestamp_column")));
                f.max_age = m.get("max_age").and_then(|x| d.duration(x, &m.path_of("max_age")));
                f.tuning = decode_tuning(d, &mut m);
                let tuned = f.tuning != Tuning::default();
                f.auto =
                    m.get("auto").and_then(|x| d.bool(x, &m.path_of("auto"))).unwrap_or(f.max_age.is_none() || tuned);
                m.finish(d);
            } else if !auto {
                f.auto = true;
            }
            out.freshness = Some(f);
        }
    }
    if let Some(n) = map.present("volume") {
        let p = map.path_of("volume");
        if let Some((m, _)) = enabled_map(d, n, &p) {
            let mut v = VolumeMonitor {
                timestamp_column: None,
                bucket: Duration::from_secs(3600),
                exact: false,
                row_count: Rule { auto: true, mark: n.mark, ..Rule::default() },
                rows_added: Rule { auto: true, mark: n.mark, ..Rule::default() },
                mark: n.mark,
            };
            if let Some(mut m) = m {
                v.timestamp_column = m.get("timestamp_column").and_then(|x| d.text(x, &m.path_of("timestamp_column")));
                if let Some(x) = m.get("bucket") {
                    let bp = m.path_of("bucket");
                    if let Some(b) = d.duration(x, &bp) {
                        if b < Duration::from_secs(60) || 86_400 % b.as_secs() != 0 && b.as_secs() % 86_400 != 0 {
                            d.error(
                                x.mark,
                                &bp,
                                "expected a bucket that divides a day (such as `15m`, `1h`, `6h`) or whole days",
                            );
                        } else {
                            v.bucket = b;
                        }
                    }
                }
                v.exact = m.get("exact").and_then(|x| d.bool(x, &m.path_of("exact"))).unwrap_or(false);
                if let Some(x) = m.get("row_count") {
                    v.row_count = decode_rule(d, x, &m.path_of("row_count")).unwrap_or_default();
                }
                if let Some(x) = m.get("rows_added") {
                    v.rows_added = decode_rule(d, x, &m.path_of("rows_added")).unwrap_or_default();
                }
                m.finish(d);
            }
            out.volume = Some(v);
        }
    }
    if let Some(n) = map.present("schema") {
        let p = map.path_of("schema");
        if let Some((m, _)) = enabled_map(d, n, &p) {
            let mut s = SchemaMonitor { fail_on_any_change: false, mark: n.mark };
            if let Some(mut m) = m {
                s.fail_on_any_change = m
                    .get("fail_on_any_change")
                    .and_then(|x| d.bool(x, &m.path_of("fail_on_any_change")))
                    .unwrap_or(false);
                m.finish(d);
            }
            out.schema = Some(s);
        }
    }
    if let Some(n) = map.get("columns") {
        let p = map.path_of("columns");
        if let Some(mut cmap) = d.map(n, &p) {
            for (key, value) in cmap.entries() {
                let Some(name) = key.as_scalar() else { continue };
                let cp = yaml::join(&p, name);
                if let Some(c) = decode_column(d, name, value, &cp, kind) {
                    out.columns.push(c);
                }
            }
            cmap.finish(d);
        }
    }
    if let Some(n) = map.get("custom_sql") {
        let p = map.path_of("custom_sql");
        if let Some(items) = d.seq(n, &p) {
            for (i, item) in items.iter().enumerate() {
                let ip = format!("{p}[{i}]");
                let Some(mut m) = d.map(item, &ip) else { continue };
                let name = m.require(d, "name", "a metric name").and_then(|x| d.text(x, &m.path_of("name")));
                let sql =
                    m.require(d, "sql", "a query returning one number").and_then(|x| d.text(x, &m.path_of("sql")));
                let mut rule = Rule { mark: item.mark, ..Rule::default() };
                rule.min = m.get("min").and_then(|x| d.float(x, &m.path_of("min")));
                rule.max = m.get("max").and_then(|x| d.float(x, &m.path_of("max")));
                rule.tuning = decode_tuning(d, &mut m);
                let tuned = rule.tuning != Tuning::default();
                rule.auto = m.get("auto").and_then(|x| d.bool(x, &m.path_of("auto"))).unwrap_or(tuned);
                m.finish(d);
                if let Some(name) = &name
                    && !crate::config::valid_name(name)
                {
                    d.error(item.mark, &ip, format!("invalid metric name `{name}`; use letters, digits, `_` and `-`"));
                    continue;
                }
                if let (Some(min), Some(max)) = (rule.min, rule.max)
                    && min > max
                {
                    d.error(item.mark, &ip, format!("min {} is greater than max {}", fmt_num(min), fmt_num(max)));
                    continue;
                }
                if let Some(name) = &name
                    && out.custom_sql.iter().any(|c| &c.name == name)
                {
                    d.error(item.mark, &ip, format!("a custom metric named `{name}` is already defined on this asset"));
                    continue;
                }
                if let (Some(name), Some(sql)) = (name, sql) {
                    out.custom_sql.push(CustomSql { name, sql, rule, mark: item.mark });
                }
            }
        }
    }
    map.finish(d);
    out
}

fn decode_column(
    d: &mut Decoder,
    name: &str,
    node: &Node,
    path: &str,
    kind: Option<SourceKind>,
) -> Option<ColumnMonitor> {
    let mut column =
        ColumnMonitor { name: name.to_string(), metrics: Vec::new(), accepted_values: None, mark: node.mark };
    // `amount: [null_rate, mean]` is shorthand for recording those metrics with learned thresholds.
    if let Value::Seq(items) = &node.value {
        if items.is_empty() {
            d.error(node.mark, path, "no metrics for this column; expected e.g. `[null_rate, mean]`");
        }
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{path}[{i}]");
            if item.as_scalar() == Some("accepted_values") {
                d.error(
                    item.mark,
                    &ip,
                    "`accepted_values` needs its list of values: write `accepted_values: [a, b]` in the mapping form",
                );
                continue;
            }
            if let Some(metric) = metric_name(d, item, &ip, kind) {
                if matches!(metric, MetricKind::InvalidCount | MetricKind::InvalidRate) {
                    d.error(item.mark, &ip, format!("`{metric}` counts values outside `accepted_values`; write `accepted_values: [a, b]` in the mapping form"));
                    continue;
                }
                if column.metrics.iter().any(|(m, _)| *m == metric) {
                    d.error(item.mark, &ip, format!("`{metric}` is listed twice"));
                    continue;
                }
                column.metrics.push((metric, Rule { auto: true, mark: item.mark, ..Rule::default() }));
            }
        }
        return Some(column);
    }
    let mut map = d.map(node, path)?;
    let entries = map.entries();
    for (key, value) in entries {
        let Some(k) = key.as_scalar() else { continue };
        let kp = yaml::join(path, k);
        if k == "accepted_values" {
            decode_accepted_values(d, value, &kp, &mut column);
            continue;
        }
        let Some(metric) = metric_name(d, key, &kp, kind) else { continue };
        if let Some(rule) = decode_rule(d, value, &kp) {
            // A shift has no direction; PSI has no forecast to change from either, while the KS
            // distance takes `min_change` as the least distance worth an alert.
            let not_applicable: &[&str] = match metric {
                MetricKind::CategoryShift => &["direction", "min_change"],
                MetricKind::DistributionShift => &["direction"],
                _ => &[],
            };
            for &name in not_applicable {
                let set = if name == "direction" {
                    rule.tuning.direction.is_some()
                } else {
                    rule.tuning.min_change.is_some()
                };
                if set {
                    let hint = if metric == MetricKind::CategoryShift {
                        "which has no direction and no forecast to change from; use `sensitivity`, or `max` on the shift's PSI"
                    } else {
                        "which has no direction; use `sensitivity`, `min_change` (the least KS distance that alerts) or `max`"
                    };
                    d.error(
                        node_mark_of_in(value, name).unwrap_or(value.mark),
                        &yaml::join(&kp, name),
                        format!("`{name}` does not apply to `{metric}`, {hint}"),
                    );
                }
            }
            column.metrics.push((metric, rule));
        }
    }
    map.finish(d);
    // invalid_count / invalid_rate only make sense with accepted values; `accepted_values`
    // itself adds an invalid_rate rule, which an explicit `invalid_rate:` replaces.
    let explicit_rate = entries.iter().any(|(k, _)| k.as_scalar() == Some("invalid_rate"));
    if explicit_rate && column.accepted_values.is_some() {
        let implicit = column
            .metrics
            .iter()
            .position(|(m, r)| *m == MetricKind::InvalidRate && r.mark == node_mark_of(entries, "accepted_values"));
        if let Some(i) = implicit {
            column.metrics.remove(i);
        }
    }
    if column.accepted_values.is_none() {
        for (key, _) in entries {
            if matches!(key.as_scalar(), Some("invalid_rate" | "invalid_count")) {
                d.error(key.mark, &yaml::join(path, key.as_scalar().unwrap_or_default()), "counts values outside `accepted_values`, which this column does not list; add `accepted_values: [a, b]`");
            }
        }
    }
    if entries.is_empty() {
        d.error(
            node.mark,
            path,
            "no metrics for this column; expected e.g. `null_rate: {max: 0.01}` or `[null_rate, mean]`",
        );
    }
    Some(column)
}

fn decode_accepted_values(d: &mut Decoder, value: &Node, path: &str, column: &mut ColumnMonitor) {
    let (values_node, rule) = match &value.value {
        Value::Seq(_) => (Some(value), Rule { max: Some(0.0), mark: value.mark, ..Rule::default() }),
        _ => {
            let Some(mut m) = d.map(value, path) else { return };
            let v = m.require(d, "values", "the list of allowed values");
            let mut rule = Rule { mark: value.mark, ..Rule::default() };
            rule.max = m.get("max_rate").and_then(|x| d.float(x, &m.path_of("max_rate"))).or(Some(0.0));
            m.finish(d);
            (v, rule)
        }
    };
    if let Some(values) = values_node.and_then(|n| d.strings(n, path)) {
        if values.is_empty() {
            d.error(value.mark, path, "expected at least one accepted value");
            return;
        }
        column.accepted_values = Some(values);
        column.metrics.push((MetricKind::InvalidRate, rule));
    }
}

/// The mark of `key`'s entry when `node` is a mapping that holds it.
fn node_mark_of_in(node: &Node, key: &str) -> Option<Mark> {
    match &node.value {
        Value::Map(entries) => entries.iter().find(|(k, _)| k.as_scalar() == Some(key)).map(|(k, _)| k.mark),
        _ => None,
    }
}

fn node_mark_of(entries: &[(Node, Node)], key: &str) -> Mark {
    entries.iter().find(|(k, _)| k.as_scalar() == Some(key)).map(|(_, v)| v.mark).unwrap_or_default()
}

fn metric_name(d: &mut Decoder, node: &Node, path: &str, kind: Option<SourceKind>) -> Option<MetricKind> {
    let mut names: Vec<&str> = COLUMN_METRICS.iter().map(|m| m.as_str()).collect();
    names.push("accepted_values");
    let name = d.one_of(node, path, "column metric", &names)?;
    let metric: MetricKind = name.parse().ok()?;
    if matches!(metric, MetricKind::P50 | MetricKind::P95)
        && let Some(k) = kind
        && !k.supports_quantiles()
    {
        d.error(
            node.mark,
            path,
            format!(
                "`{name}` needs ordered-set aggregates, which {} sources lack; use min, max, mean and stddev there",
                k.as_str()
            ),
        );
        return None;
    }
    Some(metric)
}

/// `auto`, `true`, `{}`, `{min: 0, max: 10}` or `{auto: true, max: 10}`.
fn decode_rule(d: &mut Decoder, node: &Node, path: &str) -> Option<Rule> {
    let mut rule = Rule { mark: node.mark, ..Rule::default() };
    match &node.value {
        Value::Null => rule.auto = true,
        Value::Scalar { text, .. } if text == "auto" => rule.auto = true,
        Value::Scalar { .. } => {
            if d.bool(node, path)? {
                rule.auto = true;
            } else {
                return None;
            }
        }
        _ => {
            let mut m = d.map(node, path)?;
            rule.min = m.get("min").and_then(|x| d.float(x, &m.path_of("min")));
            rule.max = m.get("max").and_then(|x| d.float(x, &m.path_of("max")));
            rule.tuning = decode_tuning(d, &mut m);
            let tuned = rule.tuning != Tuning::default();
            rule.auto =
                m.get("auto").and_then(|x| d.bool(x, &m.path_of("auto"))).unwrap_or(!rule.has_bounds() || tuned);
            m.finish(d);
            if let (Some(min), Some(max)) = (rule.min, rule.max)
                && min > max
            {
                d.error(node.mark, path, format!("min {} is greater than max {}", fmt_num(min), fmt_num(max)));
                return None;
            }
        }
    }
    Some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            Path::new("telltale.yaml"),
            "version: 1\nsources:\n  shop:\n    kind: sqlite\n    url: sqlite://shop.db\n  wh:\n    kind: postgres\n    url: postgres://x@h/db\n",
            |_| None,
        )
        .unwrap()
    }

    fn parse(text: &str) -> Result<CheckSet, Diagnostics> {
        CheckSet::parse(&config(), &[(PathBuf::from("checks/orders.yaml"), text.to_string())])
    }

    #[test]
    fn a_complete_check_file_parses() {
        let set = parse(
            r#"version: 1
assets:
  - source: wh
    table: analytics.orders
    owner: "@data-platform"
    tags: [revenue, tier1]
    tier: 1
    schedule: {every: 15m, jitter: 1m}
    where: "created_at > now() - interval '7 days'"
    sample: 10%
    monitors:
      freshness: {timestamp_column: created_at, max_age: 2h}
      volume: {timestamp_column: created_at, rows_added: {min: 100}}
      schema: true
      columns:
        amount: {null_rate: {max: 0.01}, mean: auto, p95: {}}
        status:
          accepted_values: [placed, shipped]
        email: [uniqueness, max_length]
      custom_sql:
        - name: negative_totals
          sql: select count(*) from analytics.orders where total < 0
          max: 0
"#,
        )
        .unwrap();
        let check = &set.assets[&"wh.analytics.orders".parse().unwrap()];
        assert_eq!(check.line, 3);
        assert_eq!(check.sample_percent, Some(10.0));
        assert_eq!(check.freshness.as_ref().unwrap().max_age, Some(Duration::from_secs(7200)));
        assert_eq!(check.volume.as_ref().unwrap().rows_added.min, Some(100.0));
        assert_eq!(check.columns.len(), 3);
        assert_eq!(check.columns[0].metrics[0].0, MetricKind::NullRate);
        assert_eq!(check.columns[0].metrics[0].1.max, Some(0.01));
        assert!(check.columns[0].metrics[1].1.auto);
        assert_eq!(check.columns[1].accepted_values.as_deref().unwrap(), ["placed", "shipped"]);
        assert_eq!(check.custom_sql[0].rule.max, Some(0.0));
        assert!(check.needs_queries());
        assert_eq!(check.name(), "orders.yaml:3");
    }

    #[test]
    fn every_mistake_is_reported_with_position_and_hint() {
        let err = parse(
            r#"version: 1
assets:
  - source: shopp
    table: orders
    monitors:
      freshnes: {}
  - source: shop
    table: orders
    schedule: {every: often}
    sample: 200%
    monitors:
      volume: {bucket: 7m, row_count: {min: 10, max: 1}}
      columns:
        amount: {null_rat: {max: 0.1}, p95: {}}
        status: {}
      custom_sql:
        - sql: select 1
"#,
        )
        .unwrap_err();
        insta::assert_snapshot!(err.to_string(), @r"
        checks/orders.yaml:3:13: assets[0].source: unknown source `shopp` (did you mean `shop`?); sources in telltale.yaml: shop, wh
        checks/orders.yaml:6:7: assets[0].monitors.freshnes: unknown key `freshnes` (did you mean `freshness`?); valid keys here: columns, custom_sql, freshness, schema, volume
        checks/orders.yaml:9:23: assets[1].schedule.every: invalid duration `often`, expected a duration such as `90s`, `15m`, `2h` or `1d`
        checks/orders.yaml:10:13: assets[1].sample: expected a percentage of rows to sample, such as `10%` (more than 0, at most 100)
        checks/orders.yaml:12:24: assets[1].monitors.volume.bucket: expected a bucket that divides a day (such as `15m`, `1h`, `6h`) or whole days
        checks/orders.yaml:12:39: assets[1].monitors.volume.row_count: min 10 is greater than max 1
        checks/orders.yaml:14:18: assets[1].monitors.columns.amount.null_rat: unknown column metric `null_rat` (did you mean `null_rate`?); expected one of: null_rate, null_count, distinct_count, distinct_ratio, uniqueness, min, max, mean, stddev, p50, p95, min_length, max_length, mean_length, invalid_count, invalid_rate, category_shift, distribution_shift, accepted_values
        checks/orders.yaml:14:40: assets[1].monitors.columns.amount.p95: `p95` needs ordered-set aggregates, which sqlite sources lack; use min, max, mean and stddev there
        checks/orders.yaml:15:17: assets[1].monitors.columns.status: no metrics for this column; expected e.g. `null_rate: {max: 0.01}` or `[null_rate, mean]`
        checks/orders.yaml:17:11: assets[1].monitors.custom_sql[0]: missing `name`: expected a metric name
        ");
    }

    #[test]
    fn category_shift_takes_sensitivity_and_bounds_but_not_a_direction() {
        let set = parse(
            "version: 1\nassets:\n  - source: shop\n    table: orders\n    monitors:\n      columns:\n        status: {category_shift: {max: 0.5, sensitivity: high}}\n        country: [category_shift, null_rate]\n",
        )
        .unwrap();
        let check = set.assets.values().next().unwrap();
        let rule = check.rule_for(MetricKind::CategoryShift, "status").unwrap();
        assert_eq!((rule.max, rule.auto, rule.tuning.sensitivity), (Some(0.5), true, Some(Sensitivity::High)));
        assert!(check.rule_for(MetricKind::CategoryShift, "country").unwrap().auto);

        let err = parse(
            "version: 1\nassets:\n  - source: shop\n    table: orders\n    monitors:\n      columns:\n        status:\n          category_shift: {direction: down, min_change: 0.1}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("checks/orders.yaml:8:28: assets[0].monitors.columns.status.category_shift.direction: `direction` does not apply to `category_shift`"),
            "{err}"
        );
        assert!(err.contains("category_shift.min_change: `min_change` does not apply"), "{err}");

        let err = parse(
            "version: 1\nassets:\n  - source: shop\n    table: orders\n    monitors:\n      columns:\n        amount: {distribution_shift: {direction: up, min_change: 0.2}}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("amount.distribution_shift.direction: `direction` does not apply to `distribution_shift`"),
            "{err}"
        );
        assert!(!err.contains("distribution_shift.min_change"), "min_change is the least KS distance: {err}");
    }

    #[test]
    fn the_same_table_twice_is_an_error() {
        let err = parse(
            "version: 1\nassets:\n  - {source: shop, table: orders, monitors: {schema: true}}\n  - {source: shop, table: main.orders, monitors: {volume: auto}}\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(
                "checks/orders.yaml:4:1: asset `shop.main.orders` is already checked in checks/orders.yaml:3"
            ),
            "{err}"
        );
    }

    #[test]
    fn hard_rules_say_how_they_are_broken() {
        let rule = Rule { min: Some(100.0), max: Some(200.0), ..Rule::default() };
        assert_eq!(rule.violation(50.0).unwrap(), "50 is below the minimum 100");
        assert_eq!(rule.violation(250.5).unwrap(), "250.5 is above the maximum 200");
        assert!(rule.violation(150.0).is_none());
    }
}
