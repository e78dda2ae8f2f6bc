//! The Prometheus registry: every metric telltale exposes on `/metrics`, declared once in
//! [`DEFINITIONS`] (name, type, help, labels), and the updates that feed it.
//!
//! Two groups, kept apart: **data health** of the watched assets (`telltale_asset_*`,
//! `telltale_column_*`, `telltale_monitor_*`; labels bounded by the watched assets, their
//! columns and metric kinds) and telltale's **own work** (checks, queries, scheduler, outbox,
//! store). Values live in memory and are updated where the work happens; incident-derived gauges
//! (open incidents, status, downtime, SLO budget) and the outbox depth are refreshed from the
//! store when Prometheus scrapes ([`refresh_from_store`]). Counters and histograms are
//! prometheus-client metrics; gauges (the bulk: ~25 series per asset) are written directly, in the
//! same format, to keep a 10,000-asset scrape fast. `docs/telemetry.md` is generated from
//! [`DEFINITIONS`] ([`reference_markdown`]) and a test keeps it current.
//!
//! Never put query text, incident ids or other unbounded values in labels.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::measure::{Measurement, MetricKind};
use crate::runtime::{CheckOutcome, Status};

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Counter,
    Gauge,
    /// With its bucket upper bounds.
    Histogram(&'static [f64]),
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram(_) => "histogram",
        }
    }
}

/// One metric: the single place its name, type, help and labels are written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// The exposed name (counters end in `_total`).
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    /// `data health` or `telltale`.
    pub group: &'static str,
}

const HEALTH: &str = "data health";
const SELF: &str = "telltale";

/// Query, check and store latencies: 1 ms to ~2 min.
const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
/// Scheduler lag: how late a job started, 10 ms to 10 min.
const LAG_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0];

macro_rules! definitions {
    ($($id:ident = $name:literal, $kind:expr, [$($label:literal),*], $group:ident, $help:literal;)*) => {
        $(
            #[doc = $help]
            pub const $id: MetricDef =
                MetricDef { name: $name, kind: $kind, help: $help, labels: &[$($label),*], group: $group };
        )*
        /// Every metric, in exposition order.
        pub const DEFINITIONS: &[MetricDef] = &[$($id),*];
    };
}

definitions! {
    ASSET_INFO = "telltale_asset_info", Kind::Gauge, ["source", "asset", "owner", "tier"], HEALTH,
        "Always 1 for every checked asset; carries its owner and tier for joins (`* on(source, asset) group_left(owner) telltale_asset_info`).";
    ASSET_LAST_UPDATE = "telltale_asset_last_update_timestamp_seconds", Kind::Gauge, ["source", "asset"], HEALTH,
        "Unix time of the asset's last observed change (engine change time, newest timestamp column value, or inferred from write counters).";
    ASSET_FRESHNESS_LAG = "telltale_asset_freshness_lag_seconds", Kind::Gauge, ["source", "asset"], HEALTH,
        "Seconds between the asset's last change and the measurement.";
    ASSET_ROWS = "telltale_asset_rows", Kind::Gauge, ["source", "asset"], HEALTH,
        "Rows in the asset, known exactly: `count(*)` of a check with `volume: {exact: true}`, or a catalog whose figure is exact (SQLite, Delta/Iceberg/Parquet metadata).";
    ASSET_ROWS_ESTIMATE = "telltale_asset_rows_estimate", Kind::Gauge, ["source", "asset"], HEALTH,
        "Rows in the asset as the engine's catalog estimates them in metadata scans (PostgreSQL `reltuples`, MySQL `TABLE_ROWS`). An asset has this or `telltale_asset_rows`, never both: the latest kind of figure wins; `telltale_asset_rows or telltale_asset_rows_estimate` is the best known count.";
    ASSET_ROWS_ADDED = "telltale_asset_rows_added", Kind::Gauge, ["source", "asset"], HEALTH,
        "Rows added in the latest measured interval (timestamp bucket, or row-count delta between polls).";
    COLUMN_NULL_RATIO = "telltale_column_null_ratio", Kind::Gauge, ["source", "asset", "column"], HEALTH,
        "Share of rows (0 to 1) where the column is null, from the latest profile.";
    MONITOR_VALUE = "telltale_monitor_value", Kind::Gauge, ["source", "asset", "monitor", "column"], HEALTH,
        "Latest value of every measured series; `monitor` is the metric kind (row_count, null_rate, custom, ...), `column` is empty for table-level series.";
    MONITOR_EXPECTED_LOW = "telltale_monitor_expected_low", Kind::Gauge, ["source", "asset", "monitor", "column"], HEALTH,
        "Lower bound of the range the detector expected for the latest point of a series with learned thresholds.";
    MONITOR_EXPECTED_HIGH = "telltale_monitor_expected_high", Kind::Gauge, ["source", "asset", "monitor", "column"], HEALTH,
        "Upper bound of the range the detector expected for the latest point of a series with learned thresholds.";
    MONITOR_ANOMALY_SCORE = "telltale_monitor_anomaly_score", Kind::Gauge, ["source", "asset", "monitor", "column"], HEALTH,
        "Calibrated surprise of the latest point, -log10 of its tail probability (3 = one in a thousand).";
    MONITOR_ANOMALOUS = "telltale_monitor_anomalous", Kind::Gauge, ["source", "asset", "monitor", "column"], HEALTH,
        "1 when the latest point of the series is an anomaly, else 0.";
    ASSET_SCHEMA_CHANGES = "telltale_asset_schema_changes_total", Kind::Counter, ["source", "asset"], HEALTH,
        "Column changes (added, removed, retyped) seen between schema snapshots since telltale started.";
    ASSET_OPEN_INCIDENTS = "telltale_asset_open_incidents", Kind::Gauge, ["source", "asset", "severity"], HEALTH,
        "Active (open or acknowledged) incidents of the asset by severity (SEV-1 worst); only non-zero series are exposed.";
    ASSET_STATUS = "telltale_asset_status", Kind::Gauge, ["source", "asset"], HEALTH,
        "Health of every checked asset: 0 healthy, 1 degraded (only SEV-3/4 incidents), 2 broken (a SEV-1/2 incident).";
    ASSET_DOWNTIME = "telltale_asset_downtime_seconds", Kind::Gauge, ["source", "asset"], HEALTH,
        "Data downtime of the asset over the last 30 days: time during which an incident was bad.";
    ASSET_SLO_BUDGET_LEFT = "telltale_asset_slo_budget_remaining_seconds", Kind::Gauge, ["source", "asset"], HEALTH,
        "Error budget left over the last 30 days for assets with an `slo` (negative once overspent).";
    ASSET_SLO_BUDGET_LEFT_RATIO = "telltale_asset_slo_budget_remaining_ratio", Kind::Gauge, ["source", "asset"], HEALTH,
        "Error budget left as a share of the whole budget (1 untouched, 0 spent, negative overspent).";
    CHECK_RUNS = "telltale_check_runs_total", Kind::Counter, ["task", "outcome"], SELF,
        "Finished check runs by task (asset, metadata, freshness_sweep) and worst outcome (pass, recorded, fail, error, none); `task`, not `job`, which Prometheus reserves for the scrape job.";
    CHECK_RUN_DURATION = "telltale_check_run_duration_seconds", Kind::Histogram(LATENCY_BUCKETS), ["task", "outcome"], SELF,
        "Wall time of check runs by task and worst outcome.";
    CHECK_OUTCOMES = "telltale_check_outcomes_total", Kind::Counter, ["monitor", "status"], SELF,
        "Monitor outcomes by monitor (freshness, volume, schema, column, custom_sql, source) and status.";
    ANOMALIES = "telltale_anomalies_total", Kind::Counter, ["monitor"], SELF,
        "Points the detectors judged anomalous, by metric kind.";
    QUERY_DURATION = "telltale_query_duration_seconds", Kind::Histogram(LATENCY_BUCKETS), ["source", "db_system", "query", "outcome"], SELF,
        "Warehouse query latency by source, engine, query kind (catalog, profile, buckets, freshness, custom_sql, ping) and outcome (ok, error).";
    MEASUREMENT_ERRORS = "telltale_measurement_errors_total", Kind::Counter, ["source", "kind"], SELF,
        "Measurements that could not be taken, by source and error kind (unreachable, timeout, permission, config, query).";
    SCHEDULER_LAG = "telltale_scheduler_lag_seconds", Kind::Histogram(LAG_BUCKETS), ["task"], SELF,
        "How late scheduled tasks (asset, metadata, freshness_sweep, prune, reminders) started after their due time.";
    INCIDENT_CHANGES = "telltale_incident_changes_total", Kind::Counter, ["change"], SELF,
        "Incident lifecycle changes made by telltale (opened, reopened, updated, auto_resolved).";
    OUTBOX_DEPTH = "telltale_outbox_depth", Kind::Gauge, [], SELF,
        "Notifications waiting in the outbox (pending or waiting for a retry).";
    ALERT_DELIVERIES = "telltale_alert_deliveries_total", Kind::Counter, ["channel", "outcome"], SELF,
        "Notification delivery attempts by channel and outcome (delivered, retry, gave_up).";
    ALERT_DELIVERY_DURATION = "telltale_alert_delivery_duration_seconds", Kind::Histogram(LATENCY_BUCKETS), ["channel"], SELF,
        "Latency of one delivery attempt (the channel's HTTP request) by channel.";
    LINEAGE_EVENTS = "telltale_lineage_events_ingested_total", Kind::Counter, ["outcome"], SELF,
        "OpenLineage events received on the lineage endpoint, by outcome (accepted, rejected).";
    STORE_DURATION = "telltale_store_operation_duration_seconds", Kind::Histogram(LATENCY_BUCKETS), ["operation"], SELF,
        "Metric store latency by operation (record, save_metadata, save_incidents, read_outbox, scrape).";
    BUILD_INFO = "telltale_build_info", Kind::Gauge, ["version", "revision"], SELF,
        "Always 1; the running telltale's version and source revision.";
}

type Labels = Vec<(&'static str, String)>;

/// Builds histograms with a definition's buckets.
#[derive(Clone)]
pub struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// The series of one gauge, each kept as its finished exposition line.
///
/// Gauges are the bulk of the exposition (about 28 series per watched asset), so a series is
/// rendered once, when its value is set: the line `name{labels} value\n` is rewritten in place
/// (only the value part) and a scrape copies the lines one after the other, without formatting,
/// escaping, hashing or allocating anything but the output buffer (docs/benchmarks.md,
/// "Telemetry"). The format is the same in OpenMetrics and the classic text format. Lines keep
/// the order in which their series first appeared.
#[derive(Default)]
struct GaugeSeries(std::sync::RwLock<GaugeLines>);

#[derive(Default)]
struct GaugeLines {
    /// The label block (`{a="x",b="y"}`, empty without labels) → its line in `lines`.
    index: HashMap<Box<str>, usize>,
    lines: Vec<GaugeLine>,
}

struct GaugeLine {
    /// `name{labels} value\n`.
    text: String,
    /// Where the value starts (after `name{labels} `).
    value_at: usize,
}

impl GaugeLine {
    fn labels<'a>(&'a self, name: &str) -> &'a str {
        &self.text[name.len()..self.value_at - 1]
    }
}

impl GaugeSeries {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, GaugeLines> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, def: &MetricDef, values: &[&str], value: f64) {
        let key = label_block(def, values);
        let mut series = self.write();
        if let Some(&i) = series.index.get(key.as_str()) {
            let line = &mut series.lines[i];
            line.text.truncate(line.value_at);
            push_value(&mut line.text, value);
            line.text.push('\n');
            return;
        }
        let mut text = String::with_capacity(def.name.len() + key.len() + 24);
        text.push_str(def.name);
        text.push_str(&key);
        text.push(' ');
        let value_at = text.len();
        push_value(&mut text, value);
        text.push('\n');
        let i = series.lines.len();
        series.lines.push(GaugeLine { text, value_at });
        series.index.insert(key.into_boxed_str(), i);
    }

    fn remove(&self, def: &MetricDef, values: &[&str]) {
        let key = label_block(def, values);
        let mut series = self.write();
        let Some(i) = series.index.remove(key.as_str()) else { return };
        series.lines.swap_remove(i);
        if i < series.lines.len() {
            // The last line moved into the hole.
            let moved: Box<str> = series.lines[i].labels(def.name).into();
            series.index.insert(moved, i);
        }
    }

    fn clear(&self) {
        let mut series = self.write();
        series.index.clear();
        series.lines.clear();
    }

    fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).lines.len()
    }

    /// The current value of one series (tests and callers that must compare).
    fn get(&self, def: &MetricDef, values: &[&str]) -> Option<f64> {
        let key = label_block(def, values);
        let series = self.0.read().unwrap_or_else(|e| e.into_inner());
        let line = &series.lines[*series.index.get(key.as_str())?];
        let value = line.text[line.value_at..].trim_end();
        match value {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            v => v.parse().ok(),
        }
    }

    fn encode(&self, def: &MetricDef, out: &mut String) {
        let series = self.0.read().unwrap_or_else(|e| e.into_inner());
        if series.lines.is_empty() {
            return;
        }
        out.push_str("# HELP ");
        out.push_str(def.name);
        out.push(' ');
        out.push_str(def.help);
        out.push_str("\n# TYPE ");
        out.push_str(def.name);
        out.push_str(" gauge\n");
        for line in &series.lines {
            out.push_str(&line.text);
        }
    }
}

/// `{name="value",...}` for a definition's labels (empty when it has none).
fn label_block(def: &MetricDef, values: &[&str]) -> String {
    debug_assert_eq!(def.labels.len(), values.len(), "label values of {}", def.name);
    if def.labels.is_empty() {
        return String::new();
    }
    let mut out =
        String::with_capacity(8 + def.labels.iter().zip(values).map(|(k, v)| k.len() + v.len() + 4).sum::<usize>());
    out.push('{');
    for (i, (name, v)) in def.labels.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        push_escaped(&mut out, v);
        out.push('"');
    }
    out.push('}');
    out
}

/// A label value with `\\`, `"` and newlines escaped (the same rule in both text formats).
fn push_escaped(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(value as i64));
    } else {
        out.push_str(ryu::Buffer::new().format_finite(value));
    }
}

enum Handle {
    Counter(Family<Labels, Counter<f64, AtomicU64>>),
    Gauge(GaugeSeries),
    Histogram(Family<Labels, Histogram, Buckets>),
}

/// The registry and a handle per metric.
pub struct Metrics {
    /// Counters and histograms (gauges are [`GaugeSeries`]).
    registry: Registry,
    handles: HashMap<&'static str, Handle>,
    /// The last exposition's size, to allocate the next one at once.
    size_hint: std::sync::atomic::AtomicUsize,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The process-wide metrics every part of telltale records into and `/metrics` exposes.
pub fn global() -> &'static Metrics {
    static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &GLOBAL
}

/// The client adds the final period itself.
fn help(def: &MetricDef) -> &'static str {
    def.help.trim_end_matches('.')
}

fn labels(def: &MetricDef, values: &[&str]) -> Labels {
    debug_assert_eq!(def.labels.len(), values.len(), "label values of {}", def.name);
    def.labels.iter().zip(values).map(|(k, v)| (*k, (*v).to_string())).collect()
}

impl Metrics {
    /// A registry with every metric of [`DEFINITIONS`] declared.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let mut handles = HashMap::new();
        for def in DEFINITIONS {
            let handle = match def.kind {
                Kind::Counter => {
                    let family = Family::<Labels, Counter<f64, AtomicU64>>::default();
                    // The client appends `_total` itself.
                    registry.register(def.name.trim_end_matches("_total"), help(def), family.clone());
                    Handle::Counter(family)
                }
                Kind::Gauge => Handle::Gauge(GaugeSeries::default()),
                Kind::Histogram(buckets) => {
                    let family = Family::<Labels, Histogram, Buckets>::new_with_constructor(Buckets(buckets));
                    registry.register(def.name, help(def), family.clone());
                    Handle::Histogram(family)
                }
            };
            handles.insert(def.name, handle);
        }
        let metrics = Metrics { registry, handles, size_hint: std::sync::atomic::AtomicUsize::new(1 << 16) };
        let revision = option_env!("TELLTALE_REVISION").unwrap_or("unknown");
        metrics.set(&BUILD_INFO, &[env!("CARGO_PKG_VERSION"), revision], 1.0);
        // Families without series are not exposed; these exist from the start.
        metrics.set(&OUTBOX_DEPTH, &[], 0.0);
        for outcome in ["accepted", "rejected"] {
            metrics.inc(&LINEAGE_EVENTS, &[outcome], 0.0);
        }
        metrics
    }

    pub fn set(&self, def: &MetricDef, values: &[&str], value: f64) {
        if let Some(Handle::Gauge(g)) = self.handles.get(def.name) {
            g.set(def, values, value);
        }
    }

    pub fn inc(&self, def: &MetricDef, values: &[&str], by: f64) {
        if let Some(Handle::Counter(f)) = self.handles.get(def.name) {
            f.get_or_create(&labels(def, values)).inc_by(by);
        }
    }

    pub fn observe(&self, def: &MetricDef, values: &[&str], value: f64) {
        if let Some(Handle::Histogram(f)) = self.handles.get(def.name) {
            f.get_or_create(&labels(def, values)).observe(value);
        }
    }

    /// Drops every series of a gauge (before re-setting the ones that still apply).
    pub fn clear(&self, def: &MetricDef) {
        if let Some(Handle::Gauge(g)) = self.handles.get(def.name) {
            g.clear();
        }
    }

    /// Removes one series of a gauge.
    pub fn remove(&self, def: &MetricDef, values: &[&str]) {
        if let Some(Handle::Gauge(g)) = self.handles.get(def.name) {
            g.remove(def, values);
        }
    }

    /// The value of one gauge series, if it is exposed.
    pub fn gauge(&self, def: &MetricDef, values: &[&str]) -> Option<f64> {
        match self.handles.get(def.name) {
            Some(Handle::Gauge(g)) => g.get(def, values),
            _ => None,
        }
    }

    /// How many series a gauge exposes.
    pub fn gauge_series(&self, def: &MetricDef) -> usize {
        match self.handles.get(def.name) {
            Some(Handle::Gauge(g)) => g.len(),
            _ => 0,
        }
    }

    /// The OpenMetrics text exposition (ends with `# EOF`): gauges in definition order, then
    /// the counters and histograms encoded by prometheus-client.
    pub fn encode(&self) -> String {
        let mut out = self.encode_gauges();
        // Writing into a String cannot fail; the registry ends with `# EOF`.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        self.size_hint.store(out.len() + out.len() / 8, std::sync::atomic::Ordering::Relaxed);
        out
    }

    /// The classic Prometheus text format (0.0.4) of the same registry, for scrapers and tools
    /// that do not speak OpenMetrics (`promtool check metrics`, older agents): the gauge lines are
    /// the same; in the (small) prometheus-client part, counter families are named with their
    /// `_total`, and `# EOF`/`# UNIT` lines are dropped.
    pub fn encode_text(&self) -> String {
        let mut out = self.encode_gauges();
        let mut open_metrics = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut open_metrics, &self.registry);
        for line in open_metrics.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
                let rest = line.strip_prefix(prefix)?;
                let (family, tail) = rest.split_once(' ')?;
                let def = DEFINITIONS
                    .iter()
                    .find(|d| d.kind == Kind::Counter && d.name.strip_suffix("_total") == Some(family))?;
                Some(format!("{prefix}{} {tail}", def.name))
            });
            match renamed {
                Some(l) => out.push_str(&l),
                None => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }

    /// Every gauge's lines, in definition order, into a buffer sized after the last scrape.
    fn encode_gauges(&self) -> String {
        let mut out = String::with_capacity(self.size_hint.load(std::sync::atomic::Ordering::Relaxed));
        for def in DEFINITIONS {
            if let Some(Handle::Gauge(g)) = self.handles.get(def.name) {
                g.encode(def, &mut out);
            }
        }
        out
    }

    /// Data-health gauges from freshly taken measurements.
    pub fn observe_measurements(&self, measurements: &[Measurement]) {
        for m in measurements {
            let (source, asset) = (m.asset.source(), m.asset.to_string());
            let table = [source, asset.as_str()];
            match m.kind {
                MetricKind::LastModified => self.set(&ASSET_LAST_UPDATE, &table, m.value),
                MetricKind::FreshnessLag => self.set(&ASSET_FRESHNESS_LAG, &table, m.value),
                // Metadata scans report whether the catalog's figure is exact (`observe_rows`).
                MetricKind::RowCount if m.column.is_empty() && m.check != "metadata" => {
                    self.observe_rows(&m.asset, m.value, true);
                }
                MetricKind::RowsAdded if m.column.is_empty() => self.set(&ASSET_ROWS_ADDED, &table, m.value),
                MetricKind::NullRate => self.set(&COLUMN_NULL_RATIO, &[source, &asset, &m.column], m.value),
                MetricKind::SchemaChanges if m.value > 0.0 => self.inc(&ASSET_SCHEMA_CHANGES, &table, m.value),
                _ => {}
            }
            if m.kind != MetricKind::SchemaChanges {
                self.set(&MONITOR_VALUE, &[source, &asset, m.kind.as_str(), &m.column], m.value);
            }
        }
    }

    /// The row count of an asset: exact (`count(*)`, or an exact catalog figure) into
    /// [`ASSET_ROWS`], a catalog estimate into [`ASSET_ROWS_ESTIMATE`]. Each asset keeps only the
    /// series of its latest figure, so an exact count is never shadowed by an older estimate and a
    /// check that stops counting exactly does not leave a frozen exact count behind.
    pub fn observe_rows(&self, asset: &crate::measure::AssetId, rows: f64, exact: bool) {
        let name = asset.to_string();
        let table = [asset.source(), name.as_str()];
        let (keep, drop) =
            if exact { (&ASSET_ROWS, &ASSET_ROWS_ESTIMATE) } else { (&ASSET_ROWS_ESTIMATE, &ASSET_ROWS) };
        self.set(keep, &table, rows);
        self.remove(drop, &table);
    }

    /// Verdicts (expected band, score, anomaly flag) and outcome counts of one finished run.
    pub fn observe_outcomes(&self, outcomes: &[CheckOutcome]) {
        for o in outcomes {
            self.inc(&CHECK_OUTCOMES, &[&o.monitor, o.status.as_str()], 1.0);
            if let Some(class) = o.error_class {
                self.inc(&MEASUREMENT_ERRORS, &[o.asset.source(), class.as_str()], 1.0);
            }
            let asset = o.asset.to_string();
            if o.monitor == "freshness"
                && o.status != Status::Error
                && let Some(lag) = o.value
            {
                // The freshness sweep judges lag against the clock between polls.
                self.set(&ASSET_FRESHNESS_LAG, &[o.asset.source(), &asset], lag);
            }
            let (Some(kind), Some(verdict)) = (o.metric, o.verdict.as_ref()) else { continue };
            let column = o.column.clone().unwrap_or_default();
            let series = [o.asset.source(), asset.as_str(), kind.as_str(), column.as_str()];
            match &verdict.expected {
                Some(expected) => {
                    self.set(&MONITOR_EXPECTED_LOW, &series, expected.low);
                    self.set(&MONITOR_EXPECTED_HIGH, &series, expected.high);
                }
                None => {
                    self.remove(&MONITOR_EXPECTED_LOW, &series);
                    self.remove(&MONITOR_EXPECTED_HIGH, &series);
                }
            }
            self.set(&MONITOR_ANOMALY_SCORE, &series, verdict.score);
            self.set(&MONITOR_ANOMALOUS, &series, if verdict.anomaly { 1.0 } else { 0.0 });
            if verdict.anomaly {
                self.inc(&ANOMALIES, &[kind.as_str()], 1.0);
            }
        }
    }

    /// One finished check run: counts and duration by its worst outcome.
    pub fn observe_run(&self, task: &str, outcome: &str, seconds: f64) {
        self.inc(&CHECK_RUNS, &[task, outcome], 1.0);
        self.observe(&CHECK_RUN_DURATION, &[task, outcome], seconds);
    }
}

/// The worst status among outcomes (`none` when there are none), for run-level labels.
pub fn worst_outcome(outcomes: &[CheckOutcome]) -> &'static str {
    outcomes.iter().map(|o| o.status).max_by_key(|s| status_rank(*s)).map_or("none", Status::as_str)
}

fn status_rank(status: Status) -> u8 {
    match status {
        Status::Recorded => 0,
        Status::Pass => 1,
        Status::Fail => 2,
        Status::Error => 3,
    }
}

/// Times one store operation into [`STORE_DURATION`].
pub async fn timed_store<T>(operation: &str, work: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = work.await;
    global().observe(&STORE_DURATION, &[operation], started.elapsed().as_secs_f64());
    out
}

/// The window over which downtime and SLO budgets are exposed.
const DOWNTIME_WINDOW_DAYS: i64 = 30;

/// Bumped whenever the store-derived gauges may be out of date: a scrape was served, an incident
/// changed, a notification was delivered. Every [`refresh_loop`] wakes on it.
static STALE: LazyLock<tokio::sync::watch::Sender<u64>> = LazyLock::new(|| tokio::sync::watch::channel(0).0);

/// How long a refresher waits after a wake-up before reading the store, so that a burst (the
/// incident changes of one run, a scrape right after) costs one refresh.
const REFRESH_COALESCE: std::time::Duration = std::time::Duration::from_millis(200);

/// Asks the running refreshers to re-read the incident-derived gauges and the outbox depth.
/// Never waits.
pub fn request_refresh() {
    STALE.send_modify(|n| *n = n.wrapping_add(1));
}

/// Keeps the incident-derived gauges (open incidents, status, downtime, SLO budget, asset info)
/// and the outbox depth current, off the scrape path: one refresh at start, then one after each
/// [`request_refresh`] (coalesced), until `shutdown`. `GET /metrics` only copies memory and
/// requests a refresh, so values are at most one scrape interval old (incident changes are
/// picked up within [`REFRESH_COALESCE`] plus one store read).
pub async fn refresh_loop(agent: std::sync::Arc<crate::runtime::Agent>, shutdown: tokio_util::sync::CancellationToken) {
    let mut stale = STALE.subscribe();
    loop {
        stale.borrow_and_update();
        refresh_from_store(&agent).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = stale.changed() => if changed.is_err() { return },
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REFRESH_COALESCE) => {}
        }
    }
}

/// Refreshes the incident-derived gauges and the outbox depth from the store (one incident
/// query and one count). Runs in [`refresh_loop`], never on the scrape path.
pub async fn refresh_from_store(agent: &crate::runtime::Agent) {
    let metrics = global();
    let now = agent.clock.now();
    let since = now - chrono::Duration::days(DOWNTIME_WINDOW_DAYS);
    let filter = crate::store::IncidentFilter { active_since: Some(since), limit: 100_000, ..Default::default() };
    let incidents = match timed_store("scrape", agent.store.incidents(&filter)).await {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read incidents for /metrics; incident gauges keep their last values");
            return;
        }
    };
    if let Ok(depth) = timed_store("scrape", agent.store.pending_notifications()).await {
        metrics.set(&OUTBOX_DEPTH, &[], depth as f64);
    }
    let source_of = |asset: &str| asset.split_once('.').map_or("", |(s, _)| s).to_string();
    // Open incidents by severity: only non-zero series, so a resolved incident's series goes away.
    let mut open: HashMap<(String, u8), f64> = HashMap::new();
    let mut active_by_asset: HashMap<&str, Vec<crate::incident::Incident>> = HashMap::new();
    for i in incidents.iter().filter(|i| i.status.is_active()) {
        *open.entry((i.asset.clone(), i.severity)).or_default() += 1.0;
        active_by_asset.entry(i.asset.as_str()).or_default().push(i.clone());
    }
    metrics.clear(&ASSET_OPEN_INCIDENTS);
    for ((asset, severity), n) in &open {
        metrics.set(&ASSET_OPEN_INCIDENTS, &[&source_of(asset), asset, &format!("SEV-{severity}")], *n);
    }
    let checks = &agent.checks.assets;
    let rows =
        crate::incident::downtime::downtime(&incidents, crate::incident::downtime::GroupBy::Asset, since, now, |a| {
            a.parse::<crate::measure::AssetId>().ok().and_then(|a| checks.get(&a)).and_then(|c| c.slo)
        });
    let downtime: HashMap<&str, &crate::incident::downtime::DowntimeRow> =
        rows.iter().map(|r| (r.group.as_str(), r)).collect();
    let period = (DOWNTIME_WINDOW_DAYS * 86_400) as f64;
    for (id, check) in checks {
        let asset = id.to_string();
        let table = [id.source(), asset.as_str()];
        let owner = check.owner.clone().unwrap_or_default();
        let tier = check.tier.map(|t| t.to_string()).unwrap_or_default();
        metrics.set(&ASSET_INFO, &[id.source(), &asset, &owner, &tier], 1.0);
        let health = crate::incident::Health::of(active_by_asset.get(asset.as_str()).map_or(&[][..], |v| v.as_slice()));
        let status = match health {
            crate::incident::Health::Healthy => 0.0,
            crate::incident::Health::Degraded => 1.0,
            crate::incident::Health::Broken => 2.0,
        };
        metrics.set(&ASSET_STATUS, &table, status);
        let row = downtime.get(asset.as_str());
        metrics.set(&ASSET_DOWNTIME, &table, row.map_or(0.0, |r| r.downtime_seconds));
        if let Some(slo) = check.slo {
            let budget = (1.0 - slo) * period;
            let left = row.and_then(|r| r.error_budget_left_seconds).unwrap_or(budget);
            metrics.set(&ASSET_SLO_BUDGET_LEFT, &table, left);
            metrics.set(&ASSET_SLO_BUDGET_LEFT_RATIO, &table, if budget > 0.0 { left / budget } else { 0.0 });
        }
    }
}

/// Counts one OpenLineage event received by the lineage endpoint (`accepted` or `rejected`).
pub fn lineage_event_ingested(outcome: &str) {
    global().inc(&LINEAGE_EVENTS, &[outcome], 1.0);
}

/// The metric reference of `docs/telemetry.md`, generated from [`DEFINITIONS`].
pub fn reference_markdown() -> String {
    let mut out = String::new();
    for group in [HEALTH, SELF] {
        let title = if group == HEALTH { "Data health" } else { "telltale itself" };
        out.push_str(&format!("### {title}\n\n| metric | type | labels | help |\n|---|---|---|---|\n"));
        for def in DEFINITIONS.iter().filter(|d| d.group == group) {
            let labels = if def.labels.is_empty() {
                "—".to_string()
            } else {
                def.labels.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ")
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                def.name,
                def.kind.as_str(),
                labels,
                def.help.replace('|', "\\|")
            ));
        }
        out.push('\n');
    }
    out
}

/// Every series name an exposition of `def` can contain (histograms add `_bucket`, `_sum`,
/// `_count`), for checking that dashboard queries use real metrics.
pub fn series_names() -> Vec<String> {
    let mut names = Vec::new();
    for def in DEFINITIONS {
        names.push(def.name.to_string());
        if let Kind::Histogram(_) = def.kind {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.push(format!("{}{suffix}", def.name));
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definition_is_exposed_with_its_type_and_help() {
        let m = Metrics::new();
        for def in DEFINITIONS {
            let values: Vec<&str> = def.labels.iter().map(|_| "x").collect();
            match def.kind {
                Kind::Counter => m.inc(def, &values, 1.0),
                Kind::Gauge => m.set(def, &values, 1.0),
                Kind::Histogram(_) => m.observe(def, &values, 0.2),
            }
        }
        m.inc(&CHECK_RUNS, &["asset", "pass"], 1.0);
        let text = m.encode();
        assert!(text.contains("telltale_lineage_events_ingested_total{outcome=\"accepted\"} 0"), "{text}");
        assert!(!text.contains("..\n"), "help texts end with one period");
        for def in DEFINITIONS {
            let family = def.name.trim_end_matches("_total");
            assert!(text.contains(&format!("# TYPE {family} {}", def.kind.as_str())), "{} missing:\n{text}", def.name);
            assert!(text.contains(&format!("# HELP {family} ")), "{}", def.name);
        }
        assert!(text.contains("telltale_check_runs_total{task=\"asset\",outcome=\"pass\"} 1"));
        assert!(text.contains("telltale_build_info{version=\""));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn gauge_lines_are_rewritten_in_place_and_removed_without_losing_others() {
        let m = Metrics::new();
        let series = |asset: &str| ["wh", asset, "row_count", ""].map(str::to_string);
        for (i, asset) in ["wh.a", "wh.b", "wh.c"].iter().enumerate() {
            let s = series(asset);
            m.set(&MONITOR_VALUE, &s.each_ref().map(String::as_str), i as f64);
        }
        let b = series("wh.b");
        let b = b.each_ref().map(String::as_str);
        m.set(&MONITOR_VALUE, &b, 0.25);
        m.set(&MONITOR_VALUE, &b, 1e6);
        assert_eq!(m.gauge(&MONITOR_VALUE, &b), Some(1e6));
        let text = m.encode();
        assert!(
            text.contains(
                "telltale_monitor_value{source=\"wh\",asset=\"wh.b\",monitor=\"row_count\",column=\"\"} 1000000\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches("asset=\"wh.b\"").count(), 1, "one line per series");
        // Removing the first series moves the last one into its place; both stay reachable.
        let a = series("wh.a");
        m.remove(&MONITOR_VALUE, &a.each_ref().map(String::as_str));
        assert_eq!(m.gauge_series(&MONITOR_VALUE), 2);
        let c = series("wh.c");
        let c = c.each_ref().map(String::as_str);
        m.set(&MONITOR_VALUE, &c, f64::NAN);
        m.remove(&MONITOR_VALUE, &b);
        assert_eq!(m.gauge_series(&MONITOR_VALUE), 1);
        assert!(m.gauge(&MONITOR_VALUE, &c).is_some_and(f64::is_nan));
        let text = m.encode();
        assert!(text.contains("asset=\"wh.c\",monitor=\"row_count\",column=\"\"} NaN\n"), "{text}");
        assert!(!text.contains("wh.a") && !text.contains("wh.b"));
        // Label values are escaped once, when the series appears.
        m.set(&COLUMN_NULL_RATIO, &["wh", "wh.t", "we\"ird\\col\n"], 0.5);
        assert!(m.encode().contains("column=\"we\\\"ird\\\\col\\n\"} 0.5\n"));
        m.clear(&MONITOR_VALUE);
        assert_eq!(m.gauge_series(&MONITOR_VALUE), 0);
        assert!(!m.encode().contains("# TYPE telltale_monitor_value"), "empty families are not exposed");
    }

    #[test]
    fn an_asset_has_either_an_exact_row_count_or_an_estimate() {
        let m = Metrics::new();
        let asset: crate::measure::AssetId = "wh.public.orders".parse().unwrap();
        let table = ["wh", "wh.public.orders"];
        m.observe_rows(&asset, 990.0, false);
        assert_eq!(m.gauge(&ASSET_ROWS_ESTIMATE, &table), Some(990.0));
        assert_eq!(m.gauge(&ASSET_ROWS, &table), None);
        // An exact count (a check with `volume: {exact: true}`) replaces the estimate.
        let now = chrono::Utc::now();
        m.observe_measurements(&[Measurement::new(&asset, MetricKind::RowCount, 1000.0, now, "checks/a.yaml:3")]);
        assert_eq!(m.gauge(&ASSET_ROWS, &table), Some(1000.0));
        assert_eq!(m.gauge(&ASSET_ROWS_ESTIMATE, &table), None);
        // A metadata scan's measurement does not touch the exact series by itself: the scan
        // reports whether its figure is exact through `observe_rows`.
        m.observe_measurements(&[Measurement::new(&asset, MetricKind::RowCount, 980.0, now, "metadata")]);
        assert_eq!(m.gauge(&ASSET_ROWS, &table), Some(1000.0));
        m.observe_rows(&asset, 1010.0, true);
        assert_eq!(m.gauge(&ASSET_ROWS, &table), Some(1010.0));
        assert_eq!(m.gauge(&ASSET_ROWS_ESTIMATE, &table), None);
        // A check that stops counting exactly: the estimate takes over, no frozen exact count.
        m.observe_rows(&asset, 1020.0, false);
        assert_eq!(m.gauge(&ASSET_ROWS, &table), None);
        assert_eq!(m.gauge(&ASSET_ROWS_ESTIMATE, &table), Some(1020.0));
        // Every series keeps its latest value under `telltale_monitor_value` too.
        assert_eq!(m.gauge(&MONITOR_VALUE, &["wh", "wh.public.orders", "row_count", ""]), Some(980.0));
    }

    #[test]
    fn the_text_format_has_the_same_gauges_and_renames_counter_families() {
        let m = Metrics::new();
        m.set(&ASSET_ROWS, &["wh", "wh.t"], 5.0);
        m.inc(&CHECK_RUNS, &["asset", "pass"], 2.0);
        let (open, text) = (m.encode(), m.encode_text());
        assert!(open.contains("# TYPE telltale_check_runs counter\n"));
        assert!(text.contains("# TYPE telltale_check_runs_total counter\n"), "{text}");
        assert!(text.contains("telltale_check_runs_total{task=\"asset\",outcome=\"pass\"} 2"), "{text}");
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
        let gauges = |s: &str| s.lines().take_while(|l| !l.contains("telltale_check_")).collect::<Vec<_>>().join("\n");
        assert_eq!(gauges(&open), gauges(&text));
    }

    #[test]
    fn names_follow_prometheus_practice() {
        let mut seen = std::collections::HashSet::new();
        for def in DEFINITIONS {
            assert!(seen.insert(def.name), "{} declared twice", def.name);
            assert!(def.name.starts_with("telltale_"), "{}", def.name);
            assert!(def.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
            assert_eq!(
                def.kind == Kind::Counter,
                def.name.ends_with("_total"),
                "{}: only counters end in _total",
                def.name
            );
            // Prometheus renames scraped `job`/`instance` labels to `exported_*`.
            assert!(!def.labels.iter().any(|l| ["job", "instance"].contains(l)), "{}", def.name);
            // promtool rejects these suffixes outside histograms and summaries.
            for suffix in ["_count", "_sum", "_bucket"] {
                assert!(!def.name.ends_with(suffix), "{}", def.name);
            }
            assert!(def.help.len() > 20, "{} needs a real help text", def.name);
        }
    }
}
