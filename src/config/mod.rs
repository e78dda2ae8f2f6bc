//! Operator settings from `telltale.yaml`: store, sources, HTTP server and where check files live.
//!
//! Parsed into a spanned YAML tree, validated purely (every problem at once, with file:line:column),
//! then turned into [`Config`]. Reaching the sources is not this module's business: see
//! `telltale validate --connect`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod alerting;
mod lake;

pub use alerting::Alerting;
pub use lake::{FileFormat, LakeOptions, S3Options};

use crate::schedule::Schedule;
use crate::secret::{Secret, expand_env, redact_url};
use crate::yaml::{self, Decoder, Diagnostic, Diagnostics, Mark, Node, Value};

pub const SOURCE_KINDS: &[&str] = &["postgres", "mysql", "sqlite", "files", "delta", "iceberg"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Postgres,
    Mysql,
    Sqlite,
    /// Parquet, CSV or NDJSON files under a directory or S3 prefix.
    Files,
    /// Delta Lake tables.
    Delta,
    /// Apache Iceberg tables.
    Iceberg,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Postgres => "postgres",
            SourceKind::Mysql => "mysql",
            SourceKind::Sqlite => "sqlite",
            SourceKind::Files => "files",
            SourceKind::Delta => "delta",
            SourceKind::Iceberg => "iceberg",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "postgres" => Some(SourceKind::Postgres),
            "mysql" => Some(SourceKind::Mysql),
            "sqlite" => Some(SourceKind::Sqlite),
            "files" => Some(SourceKind::Files),
            "delta" => Some(SourceKind::Delta),
            "iceberg" => Some(SourceKind::Iceberg),
            _ => None,
        }
    }
    /// Whether the engine has ordered-set aggregates for p50/p95 inside one profile query.
    pub fn supports_quantiles(self) -> bool {
        matches!(self, SourceKind::Postgres | SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg)
    }
    /// Tables in object storage or local files, read with DataFusion (see `source::lake`).
    pub fn is_lake(self) -> bool {
        matches!(self, SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg)
    }
}

/// The whole of `telltale.yaml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (or a synthetic name).
    pub file: PathBuf,
    /// Where telltale keeps its own files (default: `.telltale` beside the config file).
    pub data_dir: PathBuf,
    /// Metric store URL: `sqlite://path` (default `<data_dir>/telltale.db`) or `postgres://…`.
    pub store: Secret,
    pub sources: BTreeMap<String, SourceConfig>,
    pub server: ServerConfig,
    /// Check files: directories (all `*.yaml`/`*.yml` below) or glob patterns, relative to the config.
    pub checks: Vec<PathBuf>,
    /// How long in-flight checks may finish after SIGTERM before they are cancelled.
    pub shutdown_grace: Duration,
    /// Measurements, verdicts and errors older than this are deleted (hourly).
    pub retention: Duration,
    /// Channels, routes, mutes and the incident lifecycle.
    pub alerting: Alerting,
    /// Lineage: dbt manifest, OpenLineage endpoint, root-cause grouping (defaults when absent).
    pub lineage: LineageConfig,
    /// Where telltale's own traces go (`telemetry:`; the `OTEL_*` variables override it).
    pub telemetry: crate::telemetry::TelemetryConfig,
}

/// `lineage:` in telltale.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct LineageConfig {
    /// Path of dbt's `manifest.json` (relative to the config file); reloaded when it changes.
    pub dbt_manifest: Option<PathBuf>,
    /// The telltale source whose tables the manifest's relations are (required with a manifest).
    pub source: Option<String>,
    /// Path of dbt's `run_results.json`: the last dbt run of each node (reloaded when it changes).
    pub dbt_run_results: Option<PathBuf>,
    /// How often the manifest's modification time is checked (and learned lineage saved).
    pub reload_interval: Duration,
    /// Bearer token `POST /api/v1/lineage` requires (OpenLineage's `api_key`); none = open.
    pub api_key: Option<Secret>,
    /// Largest OpenLineage request body accepted, compressed and decompressed (bytes).
    pub max_event_bytes: usize,
    /// An anomaly downstream of an asset with an open incident detected at most this long ago
    /// joins that incident as a symptom instead of paging.
    pub root_cause_window: Duration,
    /// How many hops upstream root-cause grouping and `health?upstream=true` look.
    pub upstream_depth: u32,
    /// Learned (OpenLineage) edges and runs not seen for this long are deleted, from the store
    /// and the live graph (hourly).
    pub retention: Duration,
    /// Read view definitions from the SQL sources' catalogs (hourly) for view → table lineage.
    pub sql_views: bool,
}

impl Default for LineageConfig {
    fn default() -> Self {
        LineageConfig {
            dbt_manifest: None,
            source: None,
            dbt_run_results: None,
            reload_interval: Duration::from_secs(10),
            api_key: None,
            max_event_bytes: 32 * 1024 * 1024,
            root_cause_window: Duration::from_secs(6 * 3600),
            upstream_depth: 10,
            retention: Duration::from_secs(90 * 86_400),
            sql_views: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    pub url: Secret,
    /// Pool bound: never more than this many connections (and concurrent checks) per source.
    pub max_connections: u32,
    /// Server-side limit for every statement telltale runs; also the client-side deadline.
    pub statement_timeout: Duration,
    pub connect_timeout: Duration,
    /// Auto-discovery: `schema.table` glob patterns to watch without check files.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// How often the metadata scan (freshness, volume, schema of every watched table) runs.
    pub schedule: Schedule,
    /// Where the source was declared, for errors found later.
    pub mark: Mark,
    /// `files`, `delta` and `iceberg` sources: storage, format, catalog and memory settings.
    pub lake: Option<LakeOptions>,
}

impl SourceConfig {
    /// The URL with its password hidden, safe to print.
    pub fn display_url(&self) -> String {
        redact_url(self.url.expose())
    }

    /// The schema of a table named without one: `public`, `main`, or the MySQL URL's database.
    pub fn default_schema(&self) -> String {
        match self.kind {
            SourceKind::Postgres => "public".into(),
            SourceKind::Sqlite | SourceKind::Files | SourceKind::Delta => "main".into(),
            SourceKind::Iceberg => "default".into(),
            SourceKind::Mysql => {
                let url = self.url.expose();
                let after_host = url.split_once("://").map_or(url, |(_, r)| r);
                after_host
                    .split_once('/')
                    .map(|(_, db)| db.split('?').next().unwrap_or_default().to_string())
                    .unwrap_or_default()
            }
        }
    }

    /// Whether auto-discovery watches `schema.table`.
    pub fn discovers(&self, qualified: &str) -> bool {
        self.include.iter().any(|p| glob_match(p, qualified)) && !self.exclude.iter().any(|p| glob_match(p, qualified))
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub enabled: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8080)), enabled: true }
    }
}

/// Errors loading configuration: either the file can't be read, or it has problems.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(path, &text, |k| std::env::var(k).ok()).map_err(ConfigError::Invalid)
    }

    /// Parses and validates; `env` resolves `${NAME}`.
    pub fn parse(path: &Path, text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, Diagnostics> {
        let root = yaml::parse(path, text).map_err(|d| Diagnostics(vec![d]))?;
        let mut d = Decoder::new(path);
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let config = decode_config(&mut d, &root, path, &base_dir, &env);
        let problems = d.finish();
        match config {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(problems),
        }
    }

    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.get(name)
    }
}

fn decode_config(
    d: &mut Decoder,
    root: &Node,
    file: &Path,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Config> {
    if root.value == Value::Null {
        d.error(root.mark, "", "the file is empty; expected at least `version: 1` and `sources:`");
        return None;
    }
    let mut map = d.map(root, "")?;
    if let Some(v) = map.require(d, "version", "`version: 1`") {
        let path = map.path_of("version");
        if v.as_scalar() != Some("1") {
            d.error(v.mark, &path, "unsupported version; expected `1`");
        }
    }
    let data_dir = map
        .get("data_dir")
        .and_then(|n| expanded(d, n, "data_dir", env))
        .map(|s| base_dir.join(s))
        .unwrap_or_else(|| base_dir.join(".telltale"));
    let store = match map.get("store") {
        Some(n) => expanded(d, n, "store", env).and_then(|url| {
            if url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://") {
                Some(Secret::new(resolve_sqlite_url(&url, base_dir)))
            } else {
                d.error(
                    n.mark,
                    "store",
                    format!("unsupported store `{}`; expected `sqlite://<path>` or `postgres://…`", redact_url(&url)),
                );
                None
            }
        }),
        None => Some(Secret::new(format!("sqlite://{}", data_dir.join("telltale.db").display()))),
    };
    let mut sources = BTreeMap::new();
    if let Some(node) = map.require(d, "sources", "a mapping of source names to settings") {
        let path = map.path_of("sources");
        if let Some(mut smap) = d.map(node, &path) {
            for (key, value) in smap.entries() {
                let Some(name) = key.as_scalar() else { continue };
                let spath = yaml::join(&path, name);
                if !valid_name(name) {
                    d.error(
                        key.mark,
                        &spath,
                        format!("invalid source name `{name}`; use letters, digits, `_` and `-`"),
                    );
                    continue;
                }
                if let Some(s) = decode_source(d, name, value, &spath, base_dir, env) {
                    sources.insert(name.to_string(), s);
                }
            }
            smap.finish(d);
        }
    }
    let server = match map.get("server") {
        Some(n) => decode_server(d, n, "server"),
        None => Some(ServerConfig::default()),
    };
    let checks = match map.get("checks") {
        Some(n) => {
            let path = map.path_of("checks");
            match &n.value {
                Value::Scalar { .. } => d.text(n, &path).map(|s| vec![base_dir.join(s)]),
                _ => d.strings(n, &path).map(|v| v.into_iter().map(|s| base_dir.join(s)).collect()),
            }
        }
        None => Some(vec![base_dir.join("checks")]),
    };
    let alerting = alerting::decode(d, &mut map, env);
    let lineage = match map.get("lineage") {
        Some(n) => decode_lineage(d, n, &sources, base_dir, env),
        None => Some(LineageConfig::default()),
    };
    let telemetry = crate::telemetry::config::decode(d, &mut map, env);
    let shutdown_grace = match map.get("shutdown_grace") {
        Some(n) => d.duration(n, "shutdown_grace"),
        None => Some(Duration::from_secs(10)),
    };
    let retention = match map.get("retention") {
        Some(n) => d.duration(n, "retention").filter(|r| {
            let ok = *r >= Duration::from_secs(86_400);
            if !ok {
                d.error(n.mark, "retention", "keep at least `1d` of history; detection learns from weeks of it");
            }
            ok
        }),
        None => Some(Duration::from_secs(90 * 86_400)),
    };
    map.finish(d);
    Some(Config {
        file: file.to_path_buf(),
        data_dir,
        store: store?,
        sources,
        server: server?,
        checks: checks?,
        shutdown_grace: shutdown_grace?,
        retention: retention?,
        alerting,
        lineage: lineage?,
        telemetry,
    })
}

fn decode_lineage(
    d: &mut Decoder,
    node: &Node,
    sources: &BTreeMap<String, SourceConfig>,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<LineageConfig> {
    let mut m = d.map(node, "lineage")?;
    let mut out = LineageConfig::default();
    let mut ok = true;
    out.dbt_manifest = m.get("dbt_manifest").and_then(|x| d.text(x, "lineage.dbt_manifest")).map(|p| base_dir.join(p));
    out.dbt_run_results =
        m.get("dbt_run_results").and_then(|x| d.text(x, "lineage.dbt_run_results")).map(|p| base_dir.join(p));
    let source_node = m.get("source");
    out.source = source_node.and_then(|x| d.text(x, "lineage.source"));
    if let (Some(name), Some(x)) = (&out.source, source_node)
        && !sources.contains_key(name)
    {
        let hint = yaml::suggest(name, sources.keys().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        d.error(x.mark, "lineage.source", format!("unknown source `{name}`{hint}"));
        ok = false;
    }
    if out.dbt_manifest.is_some() && out.source.is_none() && source_node.is_none() {
        d.error(node.mark, "lineage", "missing `source`: expected the source whose tables the manifest describes");
        ok = false;
    }
    if let Some(x) = m.get("reload_interval") {
        match d.duration(x, "lineage.reload_interval") {
            Some(v) if v >= Duration::from_secs(1) => out.reload_interval = v,
            Some(_) => d.error(x.mark, "lineage.reload_interval", "expected at least `1s`"),
            None => ok = false,
        }
    }
    if let Some(x) = m.get("api_key") {
        out.api_key = expanded(d, x, "lineage.api_key", env).map(Secret::new);
        ok &= out.api_key.is_some();
    }
    if let Some(x) = m.get("max_event_size") {
        match d.text(x, "lineage.max_event_size").map(|t| parse_size(&t)) {
            Some(Some(v)) if v >= 1024 => out.max_event_bytes = v,
            Some(_) => {
                d.error(x.mark, "lineage.max_event_size", "expected a size of at least 1KB, such as `32MB`");
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(x) = m.get("root_cause_window") {
        match d.duration(x, "lineage.root_cause_window") {
            Some(v) => out.root_cause_window = v,
            None => ok = false,
        }
    }
    if let Some(x) = m.get("upstream_depth") {
        match d.unsigned(x, "lineage.upstream_depth", 1, 1000) {
            Some(v) => out.upstream_depth = v as u32,
            None => ok = false,
        }
    }
    if let Some(x) = m.get("sql_views") {
        match d.bool(x, "lineage.sql_views") {
            Some(v) => out.sql_views = v,
            None => ok = false,
        }
    }
    if let Some(x) = m.get("retention") {
        match d.duration(x, "lineage.retention") {
            Some(v) if v >= Duration::from_secs(3600) => out.retention = v,
            Some(_) => {
                d.error(x.mark, "lineage.retention", "expected at least `1h`, such as `90d`");
                ok = false;
            }
            None => ok = false,
        }
    }
    m.finish(d);
    ok.then_some(out)
}

/// `32MB`, `512KB`, `1GB` or a plain number of bytes (units are powers of 1024).
fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let n: usize = number.parse().ok()?;
    let factor = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" => 1024,
        "MB" | "MIB" => 1024 * 1024,
        "GB" | "GIB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
}

fn decode_source(
    d: &mut Decoder,
    name: &str,
    node: &Node,
    path: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<SourceConfig> {
    let mut map = d.map(node, path)?;
    let kind = map
        .require(d, "kind", "the engine: one of postgres, mysql, sqlite, files, delta, iceberg")
        .and_then(|n| d.one_of(n, &yaml::join(path, "kind"), "source kind", SOURCE_KINDS))
        .and_then(|k| SourceKind::parse(&k));
    let url_node = map.require(
        d,
        "url",
        if kind.is_some_and(SourceKind::is_lake) {
            "a local directory or `s3://bucket/prefix`"
        } else {
            "a connection URL such as `postgres://user:${PGPASSWORD}@host:5432/db`"
        },
    );
    let url = url_node.and_then(|n| expanded(d, n, &yaml::join(path, "url"), env));
    if let (Some(kind), Some(url), Some(n)) = (kind, &url, url_node) {
        let ok = match kind {
            SourceKind::Postgres => url.starts_with("postgres://") || url.starts_with("postgresql://"),
            SourceKind::Mysql => url.starts_with("mysql://") || url.starts_with("mariadb://"),
            SourceKind::Sqlite => url.starts_with("sqlite:"),
            SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg => {
                if let Err(why) = lake::check_url(url) {
                    d.error(n.mark, &yaml::join(path, "url"), why);
                }
                true
            }
        };
        if !ok {
            d.error(
                n.mark,
                &yaml::join(path, "url"),
                format!(
                    "`{}` is not a {} URL; expected it to start with {}",
                    redact_url(url),
                    kind.as_str(),
                    match kind {
                        SourceKind::Postgres => "`postgres://` or `postgresql://`",
                        SourceKind::Mysql => "`mysql://` or `mariadb://`",
                        SourceKind::Sqlite => "`sqlite://`",
                        SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg => "a path or `s3://`",
                    }
                ),
            );
        }
    }
    let max_connections = match map.get("max_connections") {
        Some(n) => d.unsigned(n, &yaml::join(path, "max_connections"), 1, 1000).map(|v| v as u32),
        None => Some(4),
    };
    let statement_timeout = match map.get("statement_timeout") {
        Some(n) => d.duration(n, &yaml::join(path, "statement_timeout")),
        None => Some(Duration::from_secs(30)),
    };
    let connect_timeout = match map.get("connect_timeout") {
        Some(n) => d.duration(n, &yaml::join(path, "connect_timeout")),
        None => Some(Duration::from_secs(10)),
    };
    let mut include = Vec::new();
    if let Some(n) = map.get("schemas") {
        let p = yaml::join(path, "schemas");
        include.extend(d.strings(n, &p).unwrap_or_default().into_iter().map(|s| format!("{s}.*")));
    }
    if let Some(n) = map.get("include") {
        let p = yaml::join(path, "include");
        for (i, pattern) in d.strings(n, &p).unwrap_or_default().into_iter().enumerate() {
            if !pattern.contains('.') {
                let item = match &n.value {
                    Value::Seq(items) => items.get(i).map_or(n.mark, |x| x.mark),
                    _ => n.mark,
                };
                d.error(
                    item,
                    &format!("{p}[{i}]"),
                    format!("pattern `{pattern}` should match `schema.table`, e.g. `{pattern}.*`"),
                );
            }
            include.push(pattern);
        }
    }
    let mut exclude = Vec::new();
    if let Some(n) = map.get("exclude") {
        let p = yaml::join(path, "exclude");
        for (i, pattern) in d.strings(n, &p).unwrap_or_default().into_iter().enumerate() {
            if !pattern.contains('.') {
                let item = match &n.value {
                    Value::Seq(items) => items.get(i).map_or(n.mark, |x| x.mark),
                    _ => n.mark,
                };
                d.error(
                    item,
                    &format!("{p}[{i}]"),
                    format!("pattern `{pattern}` should match `schema.table`, e.g. `{pattern}.*`"),
                );
            }
            exclude.push(pattern);
        }
    }
    let schedule = match map.get("schedule") {
        Some(n) => Schedule::decode(d, n, &yaml::join(path, "schedule")),
        None => Some(Schedule::every(Duration::from_secs(300))),
    };
    let lake = kind.filter(|k| k.is_lake()).map(|k| lake::decode(d, &mut map, k.as_str(), base_dir, env));
    map.finish(d);
    let url = url?;
    let kind = kind?;
    let url = match kind {
        SourceKind::Sqlite => resolve_sqlite_url(&url, base_dir),
        k if k.is_lake() => lake::resolve_url(&url, base_dir),
        _ => url,
    };
    Some(SourceConfig {
        name: name.to_string(),
        kind,
        url: Secret::new(url),
        max_connections: max_connections?,
        statement_timeout: statement_timeout?,
        connect_timeout: connect_timeout?,
        include,
        exclude,
        schedule: schedule?,
        mark: node.mark,
        lake,
    })
}

fn decode_server(d: &mut Decoder, node: &Node, path: &str) -> Option<ServerConfig> {
    let mut map = d.map(node, path)?;
    let mut server = ServerConfig::default();
    if let Some(n) = map.get("listen") {
        let p = map.path_of("listen");
        match d.text(n, &p).map(|s| s.parse::<SocketAddr>()) {
            Some(Ok(addr)) => server.listen = addr,
            Some(Err(_)) => d.error(n.mark, &p, "expected an address such as `127.0.0.1:8080` or `0.0.0.0:8080`"),
            None => {}
        }
    }
    if let Some(n) = map.get("enabled") {
        let p = map.path_of("enabled");
        server.enabled = d.bool(n, &p).unwrap_or(true);
    }
    map.finish(d);
    Some(server)
}

fn expanded(d: &mut Decoder, node: &Node, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let raw = d.text(node, path)?;
    match expand_env(&raw, env) {
        Ok(s) => Some(s),
        Err(missing) => {
            for name in missing {
                d.error(node.mark, path, format!("environment variable `{name}` is not set"));
            }
            None
        }
    }
}

/// `sqlite://relative.db` is relative to the config file's directory.
fn resolve_sqlite_url(url: &str, base_dir: &Path) -> String {
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return url.to_string();
    };
    if rest.starts_with('/') || rest.starts_with(":memory:") || base_dir.as_os_str().is_empty() {
        return format!("sqlite://{rest}");
    }
    format!("sqlite://{}", base_dir.join(rest).display())
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Glob match where `*` matches any run of characters and `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// A one-line problem not tied to a YAML node (e.g. a missing check directory).
pub fn file_problem(file: &Path, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        mark: Mark { line: 1, column: 1 },
        path: String::new(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Diagnostics> {
        Config::parse(Path::new("telltale.yaml"), text, |k| (k == "PGPASSWORD").then(|| "pw".into()))
    }

    #[test]
    fn a_full_config_parses_with_defaults() {
        let c = parse(
            "version: 1\nsources:\n  wh:\n    kind: postgres\n    url: postgres://app:${PGPASSWORD}@db/x\n    include: [\"analytics.*\"]\n    exclude: [\"analytics.tmp_*\"]\n",
        )
        .unwrap();
        let wh = &c.sources["wh"];
        assert_eq!(wh.url.expose(), "postgres://app:pw@db/x");
        assert_eq!(wh.display_url(), "postgres://app:**redacted**@db/x");
        assert_eq!(wh.max_connections, 4);
        assert!(wh.discovers("analytics.orders"));
        assert!(!wh.discovers("analytics.tmp_x"));
        assert!(!wh.discovers("public.orders"));
        assert_eq!(c.server.listen.port(), 8080);
        assert!(c.store.expose().ends_with(".telltale/telltale.db"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = parse(
            "version: 2\nsources:\n  wh:\n    kind: postgress\n    url: ${NOPE}\n    max_conections: 3\n  lite:\n    kind: sqlite\n    url: postgres://x\nserver:\n  listen: nowhere\n",
        )
        .unwrap_err();
        insta::assert_snapshot!(err.to_string(), @r"
        telltale.yaml:1:10: version: unsupported version; expected `1`
        telltale.yaml:4:11: sources.wh.kind: unknown source kind `postgress` (did you mean `postgres`?); expected one of: postgres, mysql, sqlite, files, delta, iceberg
        telltale.yaml:5:10: sources.wh.url: environment variable `NOPE` is not set
        telltale.yaml:6:5: sources.wh.max_conections: unknown key `max_conections` (did you mean `max_connections`?); valid keys here: connect_timeout, exclude, include, kind, max_connections, schedule, schemas, statement_timeout, url
        telltale.yaml:9:10: sources.lite.url: `postgres://x` is not a sqlite URL; expected it to start with `sqlite://`
        telltale.yaml:11:11: server.listen: expected an address such as `127.0.0.1:8080` or `0.0.0.0:8080`
        ");
    }

    #[test]
    fn globs_match_schema_and_table() {
        assert!(glob_match("analytics.*", "analytics.fct_orders"));
        assert!(glob_match("*.orders", "main.orders"));
        assert!(glob_match("a.t?", "a.t1"));
        assert!(!glob_match("a.t?", "a.t12"));
    }
}
