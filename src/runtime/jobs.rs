//! The two kinds of work the scheduler runs, plus backfill.
//!
//! A *metadata job* reads one source's catalog once and turns it into freshness, volume and schema
//! measurements for every watched table. An *asset job* runs the query-based monitors of one
//! check (column profile, custom SQL, timestamp freshness, bucketed volume). Failures become
//! measurement errors and outcomes; they never stop other work.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{Agent, CheckOutcome, RuntimeError, Status};
use crate::check::{AssetCheck, Rule, fmt_num};
use crate::measure::{AssetId, Column, Measurement, MetricKind, diff_schema};
use crate::source::sql::ColumnRequest;
use crate::source::{ProfileRequest, Scope, SourceError, TableMetadata};
use crate::store::{AssetRecord, AssetState, ErrorRecord, MetadataBatch};
use crate::yaml::format_duration;

const METADATA: &str = "metadata";
const BACKFILL: &str = "backfill";

/// What one poll of the catalog says about a table's change history.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeInference {
    pub state: AssetState,
    /// Seconds since the last change; `None` until something is known.
    pub freshness_lag: Option<f64>,
    pub rows_added: Option<f64>,
}

/// Infers "last changed" from the catalog: a change time when the engine has one, otherwise the
/// moment the change counters were first seen to move. Before any move, the lag is a lower bound
/// counted from the first sighting.
pub fn infer_change(previous: Option<&AssetState>, meta: &TableMetadata, now: DateTime<Utc>) -> ChangeInference {
    let rows_added = match (previous.and_then(|p| p.last_row_count), meta.row_count) {
        (Some(before), Some(after)) => Some((after - before).max(0.0)),
        _ => None,
    };
    let (last_changed_at, change_observed) = match (meta.last_modified, previous) {
        (Some(t), _) => (Some(t), true),
        (None, None) => (Some(now), false),
        (None, Some(p)) if p.change_signature != meta.change_signature => (Some(now), true),
        (None, Some(p)) => (p.last_changed_at.or(Some(now)), p.change_observed),
    };
    let freshness_lag = match (previous, last_changed_at) {
        (None, _) if meta.last_modified.is_none() => None,
        (_, Some(t)) => Some(((now - t).num_milliseconds() as f64 / 1000.0).max(0.0)),
        _ => None,
    };
    ChangeInference {
        state: AssetState {
            change_signature: meta.change_signature.clone(),
            last_changed_at,
            change_observed,
            last_row_count: meta.row_count,
        },
        freshness_lag,
        rows_added,
    }
}

fn outcome(check: Option<&AssetCheck>, asset: &AssetId, monitor: &str) -> CheckOutcome {
    CheckOutcome {
        asset: asset.clone(),
        monitor: monitor.to_string(),
        subject: None,
        status: Status::Recorded,
        value: None,
        message: String::new(),
        definition: check.map(|c| format!("{}:{}", c.file.display(), c.line)),
        metric: None,
        column: None,
        error_class: None,
        verdict: None,
        advisory: false,
    }
}

impl CheckOutcome {
    /// Names the metric (and column) an outcome judges, so detection can find its series.
    fn about(mut self, metric: MetricKind, column: &str) -> Self {
        self.metric = Some(metric);
        self.column = (!column.is_empty()).then(|| column.to_string());
        self
    }
}

/// Pass, fail or just recorded, against a rule's hard bounds.
fn judge(mut o: CheckOutcome, value: f64, rule: &Rule, describe: &str) -> CheckOutcome {
    o.value = Some(value);
    match rule.violation(value) {
        Some(why) => {
            o.status = Status::Fail;
            o.message = format!("{describe}: {why}");
        }
        None if rule.has_bounds() => {
            o.status = Status::Pass;
            o.message = format!("{describe}: {} within bounds", fmt_num(value));
        }
        None => o.message = format!("{describe}: {}", fmt_num(value)),
    }
    o
}

impl Agent {
    async fn record(&self, measurements: &[Measurement]) {
        crate::telemetry::metrics::global().observe_measurements(measurements);
        if let Err(e) = crate::telemetry::metrics::timed_store("record", self.store.record(measurements)).await {
            tracing::error!(parent: crate::telemetry::spans::parent(), error = %e, count = measurements.len(), "cannot save measurements");
        }
    }

    async fn record_failure(&self, asset: &AssetId, check: &str, error: &SourceError) -> CheckOutcome {
        tracing::warn!(parent: crate::telemetry::spans::parent(), asset = %asset, check, class = error.class().as_str(), error = %error, "measurement failed");
        let record = ErrorRecord {
            asset: asset.clone(),
            check: check.to_string(),
            class: error.class().as_str().to_string(),
            message: error.to_string(),
            occurred_at: self.clock.now(),
        };
        if let Err(e) = self.store.record_error(&record).await {
            tracing::error!(parent: crate::telemetry::spans::parent(), error = %e, "cannot save measurement error");
        }
        let mut o = outcome(self.check_for(asset), asset, "source");
        o.status = Status::Error;
        o.message = error.to_string();
        o.error_class = Some(error.class());
        o
    }

    /// The tables of a source the agent watches: checked ones and auto-discovered ones.
    pub fn scope(&self, source: &str) -> Scope {
        let config = self.config.source(source);
        Scope {
            tables: self.checks.assets.values().filter(|c| c.source == source).map(|c| c.table.clone()).collect(),
            include: config.map(|c| c.include.clone()).unwrap_or_default(),
            exclude: config.map(|c| c.exclude.clone()).unwrap_or_default(),
        }
    }

    /// Tables of this source that are watched: checked ones and auto-discovered ones.
    fn watched<'m>(&self, source: &str, tables: &'m [TableMetadata]) -> Vec<(AssetId, &'m TableMetadata)> {
        let config = self.config.source(source);
        tables
            .iter()
            .filter_map(|t| {
                let asset = AssetId::new(source, &t.table);
                let checked = self.checks.assets.contains_key(&asset);
                let discovered = config.is_some_and(|c| c.discovers(&t.table.qualified()));
                (checked || discovered).then_some((asset, t))
            })
            .collect()
    }

    /// One catalog round trip → freshness, volume and schema of every watched table.
    pub async fn metadata_job(self: &Arc<Self>, source: &str, shutdown: &CancellationToken) -> Vec<CheckOutcome> {
        let span = crate::telemetry::spans::metadata_run(source);
        crate::telemetry::spans::traced_run(
            span,
            "metadata",
            self.metadata_job_in(source, self.scope(source), shutdown),
        )
        .await
    }

    /// The metadata job narrowed to `scope` (e.g. one table for `telltale measure`).
    async fn metadata_job_in(
        self: &Arc<Self>,
        source: &str,
        scope: Scope,
        shutdown: &CancellationToken,
    ) -> Vec<CheckOutcome> {
        let scan = self
            .with_source(source, shutdown, |s| {
                let scope = scope.clone();
                async move { s.scan_metadata_per_table(&scope).await }
            })
            .await;
        let now = self.clock.now();
        let (tables, failures) = match scan {
            Ok(scan) => (scan.tables, scan.failures),
            Err(e) => {
                // Every asset of the source learns why it has no fresh data.
                let mut outcomes = Vec::new();
                let assets: Vec<AssetId> = self
                    .checks
                    .assets
                    .values()
                    .filter(|c| c.source == source && scope.contains(&c.table))
                    .map(|c| c.asset.clone())
                    .collect();
                for asset in assets {
                    outcomes.push(self.record_failure(&asset, METADATA, &e).await);
                }
                if outcomes.is_empty() {
                    tracing::warn!(parent: crate::telemetry::spans::parent(), source, error = %e, "metadata scan failed");
                    outcomes.push(CheckOutcome {
                        asset: AssetId::new(source, &crate::measure::TableRef::new("*", "*")),
                        monitor: "source".into(),
                        subject: None,
                        status: Status::Error,
                        value: None,
                        message: e.to_string(),
                        definition: None,
                        metric: None,
                        column: None,
                        error_class: Some(e.class()),
                        verdict: None,
                        advisory: false,
                    });
                }
                return outcomes;
            }
        };
        let watched = self.watched(source, &tables);
        let (states, schemas) = match (self.store.asset_states(source).await, self.store.latest_schemas(source).await) {
            (Ok(states), Ok(schemas)) => (states, schemas),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(parent: crate::telemetry::spans::parent(), source, error = %e, "cannot read asset state from the store");
                return Vec::new();
            }
        };
        let mut outcomes = Vec::new();
        // A table that could not be read fails alone; the others are measured below.
        let config = self.config.source(source);
        for (table, e) in &failures {
            let asset = AssetId::new(source, table);
            if self.checks.assets.contains_key(&asset) || config.is_some_and(|c| c.discovers(&table.qualified())) {
                outcomes.push(self.record_failure(&asset, METADATA, e).await);
            }
        }
        let mut batch = MetadataBatch { at: now, ..MetadataBatch::default() };
        for (asset, meta) in &watched {
            let check = self.check_for(asset);
            batch.assets.push(AssetRecord {
                asset: asset.clone(),
                source: source.to_string(),
                schema: meta.table.schema.clone(),
                table: meta.table.name.clone(),
                origin: if check.is_some() { "check".into() } else { "discovered".into() },
                owner: check.and_then(|c| c.owner.clone()),
                tier: check.and_then(|c| c.tier),
                tags: check.map(|c| c.tags.clone()).unwrap_or_default(),
                check_file: check.map(|c| format!("{}:{}", c.file.display(), c.line)),
                first_seen_at: now,
                last_seen_at: now,
            });
            let first = outcomes.len();
            outcomes.extend(observe_metadata(
                asset,
                meta,
                check,
                now,
                states.get(asset),
                schemas.get(asset),
                &mut batch,
            ));
            // A removed or retyped column: name who reads the table (lineage), or only warn when
            // nobody does.
            let breaking = batch
                .snapshots
                .last()
                .is_some_and(|(a, _, changes)| a == asset && changes.iter().any(|c| c.is_breaking()));
            if breaking {
                for o in outcomes[first..].iter_mut().filter(|o| o.monitor == "schema" && o.status == Status::Fail) {
                    self.lineage.annotate_breaking(o, self.config.lineage.upstream_depth);
                }
            }
        }
        // Checked tables the catalog does not list are errors, not silence.
        for check in self.checks.assets.values().filter(|c| c.source == source && scope.contains(&c.table)) {
            if !tables.iter().any(|t| t.table == check.table) && !failures.iter().any(|(t, _)| t == &check.table) {
                let e = SourceError::TableNotFound { source_name: source.to_string(), table: check.table.qualified() };
                outcomes.push(self.record_failure(&check.asset, METADATA, &e).await);
            }
        }
        for (asset, _) in &watched {
            if let Some(check) = self.check_for(asset) {
                let mine: Vec<Measurement> = batch.measurements.iter().filter(|m| &m.asset == asset).cloned().collect();
                let start = outcomes.iter().position(|o| &o.asset == asset);
                if let Some(start) = start {
                    let end =
                        outcomes[start..].iter().position(|o| &o.asset != asset).map_or(outcomes.len(), |n| start + n);
                    self.apply_detection(Some(check), &mine, &mut outcomes[start..end]).await;
                }
            }
        }
        crate::telemetry::metrics::global().observe_measurements(&batch.measurements);
        if let Err(e) = crate::telemetry::metrics::timed_store("save_metadata", self.store.save_metadata(&batch)).await
        {
            tracing::error!(parent: crate::telemetry::spans::parent(), source, error = %e, "cannot save the metadata scan");
        }
        tracing::info!(parent: crate::telemetry::spans::parent(), source, tables = tables.len(), watched = watched.len(), "metadata scan done");
        outcomes
    }

    /// Runs the query-based monitors of one checked asset, as one traced check run.
    pub async fn asset_job(self: &Arc<Self>, asset: &AssetId, shutdown: &CancellationToken) -> Vec<CheckOutcome> {
        let span = crate::telemetry::spans::asset_run(asset, self.check_for(asset).map(|c| c.name()).as_deref());
        crate::telemetry::spans::traced_run(span, "asset", self.asset_job_untraced(asset, shutdown)).await
    }

    async fn asset_job_untraced(self: &Arc<Self>, asset: &AssetId, shutdown: &CancellationToken) -> Vec<CheckOutcome> {
        let Some(check) = self.check_for(asset).cloned() else { return Vec::new() };
        if !check.needs_queries() {
            return Vec::new();
        }
        let now = self.clock.now();
        let name = check.name();
        let mut outcomes = Vec::new();
        let mut measurements = Vec::new();

        // Freshness from a timestamp column, and exact row count, in one scan.
        let ts_col = check.freshness.as_ref().and_then(|f| f.timestamp_column.clone());
        let exact = check.volume.as_ref().is_some_and(|v| v.exact);
        if ts_col.is_some() || exact {
            let table = check.table.clone();
            let col = ts_col.clone();
            let r = self
                .with_source(&check.source, shutdown, |s| {
                    let table = table.clone();
                    let col = col.clone();
                    async move { s.newest_and_count(&table, col.as_deref(), exact).await }
                })
                .await;
            match r {
                Ok((newest, count)) => {
                    if let Some(f) = check.freshness.as_ref().filter(|f| f.timestamp_column.is_some()) {
                        match newest {
                            Some(newest) => {
                                let lag = (now.timestamp_millis() as f64 / 1000.0 - newest).max(0.0);
                                measurements.push(Measurement::new(asset, MetricKind::FreshnessLag, lag, now, &name));
                                measurements.push(Measurement::new(
                                    asset,
                                    MetricKind::LastModified,
                                    newest,
                                    now,
                                    &name,
                                ));
                                outcomes.push(freshness_outcome(Some(&check), asset, lag, f.max_age));
                            }
                            None => {
                                let mut o = outcome(Some(&check), asset, "freshness");
                                o.status = if f.max_age.is_some() { Status::Fail } else { Status::Recorded };
                                o.message = "table has no rows, so no newest timestamp".into();
                                outcomes.push(o);
                            }
                        }
                    }
                    if let (Some(count), Some(v)) = (count, check.volume.as_ref()) {
                        // Rows added between exact counts, unless buckets measure it.
                        if v.timestamp_column.is_none() {
                            let previous = self.store.latest(asset).await.ok().and_then(|l| {
                                l.into_iter().find(|m| m.kind == MetricKind::RowCount && m.column.is_empty())
                            });
                            if let Some(previous) = previous.filter(|p| p.observed_at < now) {
                                let added = (count - previous.value).max(0.0);
                                measurements.push(Measurement::new(asset, MetricKind::RowsAdded, added, now, &name));
                                if v.rows_added.has_bounds() || v.rows_added.auto {
                                    let mut o = judge(
                                        outcome(Some(&check), asset, "volume"),
                                        added,
                                        &v.rows_added,
                                        "rows added since the last count",
                                    )
                                    .about(MetricKind::RowsAdded, "");
                                    o.subject = Some("rows_added".into());
                                    outcomes.push(o);
                                }
                            }
                        }
                        measurements.push(Measurement::new(asset, MetricKind::RowCount, count, now, &name));
                        outcomes.push(
                            judge(outcome(Some(&check), asset, "volume"), count, &v.row_count, "row count")
                                .about(MetricKind::RowCount, ""),
                        );
                    }
                }
                Err(e) => outcomes.push(self.record_failure(asset, &name, &e).await),
            }
        }

        // Rows added per complete bucket; the last two buckets are re-counted for late rows.
        if let Some(v) = check.volume.as_ref()
            && let Some(col) = &v.timestamp_column
        {
            let bucket = v.bucket.as_secs() as i64;
            let end = now.timestamp().div_euclid(bucket) * bucket;
            match self.count_buckets(&check, col, v.bucket, end - 2 * bucket, end, shutdown).await {
                Ok(mut counted) => {
                    if let Some(last) = counted.last() {
                        let mut o = judge(
                            outcome(Some(&check), asset, "volume"),
                            last.value,
                            &v.rows_added,
                            &format!(
                                "rows added in the {} bucket ending {}",
                                format_duration(v.bucket),
                                last.observed_at.format("%Y-%m-%d %H:%M")
                            ),
                        );
                        o.subject = Some("rows_added".into());
                        outcomes.push(o.about(MetricKind::RowsAdded, ""));
                    }
                    for m in &mut counted {
                        m.check = name.clone();
                    }
                    measurements.extend(counted);
                }
                Err(e) => outcomes.push(self.record_failure(asset, &name, &e).await),
            }
        }

        // All column metrics in one scan.
        if !check.columns.is_empty() {
            outcomes.extend(self.profile(&check, now, shutdown, &mut measurements).await);
        }

        for custom in &check.custom_sql {
            let sql = custom.sql.clone();
            let r = self.with_source(&check.source, shutdown, |s| {
                let sql = sql.clone();
                async move { s.custom_metric(&sql).await }
            });
            match r.await {
                Ok(Some(value)) => {
                    measurements
                        .push(Measurement::new(asset, MetricKind::Custom, value, now, &name).with_column(&custom.name));
                    let mut o = judge(outcome(Some(&check), asset, "custom_sql"), value, &custom.rule, &custom.name)
                        .about(MetricKind::Custom, &custom.name);
                    o.subject = Some(custom.name.clone());
                    outcomes.push(o);
                }
                Ok(None) => {
                    let mut o = outcome(Some(&check), asset, "custom_sql");
                    o.subject = Some(custom.name.clone());
                    o.status = Status::Error;
                    o.message = format!("{}: the query returned no number", custom.name);
                    outcomes.push(o);
                }
                Err(e) => {
                    let mut o = self.record_failure(asset, &name, &e).await;
                    o.monitor = "custom_sql".into();
                    o.subject = Some(custom.name.clone());
                    outcomes.push(o);
                }
            }
        }
        self.apply_detection(Some(&check), &measurements, &mut outcomes).await;
        self.record(&measurements).await;
        outcomes
    }

    async fn profile(
        &self,
        check: &AssetCheck,
        now: DateTime<Utc>,
        shutdown: &CancellationToken,
        out: &mut Vec<Measurement>,
    ) -> Vec<CheckOutcome> {
        let asset = &check.asset;
        let name = check.name();
        let mut outcomes = Vec::new();
        // Column types come from the latest schema snapshot (taken by the metadata scan).
        let columns = match self.store.schema_history(asset, 1).await {
            Ok(mut snaps) if !snaps.is_empty() => snaps.remove(0).columns,
            _ => {
                let table = check.table.clone();
                let scope = Scope { tables: [table.clone()].into(), ..Scope::default() };
                let scanned = self
                    .with_source(&check.source, shutdown, |s| {
                        let scope = scope.clone();
                        async move { s.scan_metadata(&scope).await }
                    })
                    .await;
                match scanned {
                    Ok(tables) => tables.into_iter().find(|t| t.table == table).map(|t| t.columns).unwrap_or_default(),
                    Err(e) => return vec![self.record_failure(asset, &name, &e).await],
                }
            }
        };
        let mut requests = Vec::new();
        for c in &check.columns {
            match columns.iter().find(|col| col.name == c.name) {
                Some(column) => {
                    let mut metrics: Vec<MetricKind> = c.metrics.iter().map(|(m, _)| *m).collect();
                    if c.accepted_values.is_some() && !metrics.contains(&MetricKind::InvalidCount) {
                        metrics.push(MetricKind::InvalidCount);
                    }
                    requests.push(ColumnRequest {
                        column: column.clone(),
                        metrics,
                        accepted_values: c.accepted_values.clone(),
                    })
                }
                None => {
                    let mut o = outcome(Some(check), asset, "column");
                    o.subject = Some(c.name.clone());
                    o.status = Status::Error;
                    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
                    let hint = crate::yaml::suggest(&c.name, names.iter().copied())
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    o.message = format!("column `{}` not found in {}{hint}", c.name, check.table);
                    outcomes.push(o);
                }
            }
        }
        if requests.is_empty() {
            return outcomes;
        }
        let request = ProfileRequest {
            table: check.table.clone(),
            columns: requests,
            filter: check.filter.clone(),
            sample_percent: check.sample_percent,
        };
        let result = self
            .with_source(&check.source, shutdown, |s| {
                let request = request.clone();
                async move { s.profile(&request).await }
            })
            .await;
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                let mut o = self.record_failure(asset, &name, &e).await;
                o.monitor = "column".into();
                outcomes.push(o);
                return outcomes;
            }
        };
        out.push(Measurement::new(asset, MetricKind::ProfiledRows, result.rows, now, &name));
        for (column, metric, reason) in &result.skipped {
            let mut o = outcome(Some(check), asset, "column");
            o.subject = Some(format!("{column}.{metric}"));
            o.status = Status::Error;
            o.message = reason.clone();
            outcomes.push(o);
        }
        for (column, metric, value) in &result.values {
            let rule = check
                .columns
                .iter()
                .find(|c| &c.name == column)
                .and_then(|c| c.metrics.iter().find(|(m, _)| m == metric))
                .map(|(_, r)| r.clone());
            let Some(value) = value else {
                if let Some(rule) = rule {
                    let mut o = outcome(Some(check), asset, "column");
                    o.subject = Some(format!("{column}.{metric}"));
                    o.message = if result.rows > 0.0 {
                        format!("{column}.{metric}: no value (every profiled value is null)")
                    } else {
                        format!(
                            "{column}.{metric}: no value (no rows{})",
                            if check.filter.is_some() { " match `where`" } else { "" }
                        )
                    };
                    o.status = if rule.has_bounds() { Status::Fail } else { Status::Recorded };
                    outcomes.push(o);
                }
                continue;
            };
            out.push(Measurement::new(asset, *metric, *value, now, &name).with_column(column));
            if let Some(rule) = rule {
                let mut o = judge(outcome(Some(check), asset, "column"), *value, &rule, &format!("{column}.{metric}"))
                    .about(*metric, column);
                o.subject = Some(format!("{column}.{metric}"));
                outcomes.push(o);
            }
        }
        // Value frequencies and samples: the shift against the column's earlier profiles.
        for (column, counts) in &result.frequencies {
            let kind = MetricKind::CategoryShift;
            let Some(rule) = check.rule_for(kind, column) else { continue };
            let settings = rule.tuning.apply(&check.detection);
            let verdict = self.judge_categories(asset, column, &settings, counts, now).await;
            let summary =
                format!("{} rows in {} values", counts.total(), counts.values.len() + usize::from(counts.rest > 0));
            outcomes.push(shift_outcome(check, (kind, column), rule, verdict, summary, (now, &name), out));
        }
        for (column, sample) in &result.samples {
            let kind = MetricKind::DistributionShift;
            let Some(rule) = check.rule_for(kind, column) else { continue };
            let settings = rule.tuning.apply(&check.detection);
            let verdict = self.judge_distribution(asset, column, &settings, sample, now).await;
            let summary = format!("a sample of {} values", sample.len());
            outcomes.push(shift_outcome(check, (kind, column), rule, verdict, summary, (now, &name), out));
        }
        outcomes
    }

    async fn count_buckets(
        &self,
        check: &AssetCheck,
        column: &str,
        bucket: Duration,
        since: i64,
        until: i64,
        shutdown: &CancellationToken,
    ) -> Result<Vec<Measurement>, SourceError> {
        Ok(self.count_buckets_with_freshness(check, column, bucket, since, until, shutdown).await?.0)
    }

    /// Rows added per bucket, and the freshness a poll at each bucket's end would have seen
    /// (lag since the newest timestamp so far), from one `GROUP BY`.
    async fn count_buckets_with_freshness(
        &self,
        check: &AssetCheck,
        column: &str,
        bucket: Duration,
        since: i64,
        until: i64,
        shutdown: &CancellationToken,
    ) -> Result<(Vec<Measurement>, Vec<Measurement>), SourceError> {
        let table = check.table.clone();
        let buckets = self
            .with_source(&check.source, shutdown, |s| {
                let table = table.clone();
                async move { s.bucket_counts(&table, column, bucket, since, until).await }
            })
            .await?;
        // Empty buckets are real zeros: a missed load must show as 0 rows, not as no data.
        let step = bucket.as_secs() as i64;
        let mut out = Vec::new();
        let mut freshness = Vec::new();
        let mut newest: Option<f64> = None;
        let mut start = since;
        while start < until {
            let found = buckets.iter().find(|b| b.start == start);
            let rows = found.map_or(0.0, |b| b.rows);
            let end = DateTime::from_timestamp(start + step, 0).unwrap_or_default();
            out.push(Measurement::new(&check.asset, MetricKind::RowsAdded, rows, end, BACKFILL));
            if let Some(n) = found.and_then(|b| b.newest) {
                newest = Some(newest.map_or(n, |old: f64| old.max(n)));
            }
            if let Some(n) = newest {
                let lag = ((start + step) as f64 - n).max(0.0);
                freshness.push(Measurement::new(&check.asset, MetricKind::FreshnessLag, lag, end, BACKFILL));
                freshness.push(Measurement::new(&check.asset, MetricKind::LastModified, n, end, BACKFILL));
            }
            start += step;
        }
        Ok((out, freshness))
    }

    /// Computes past buckets of rows added (and the newest timestamp per bucket) with one
    /// `GROUP BY`, so detection has history from day one.
    pub async fn backfill(
        self: &Arc<Self>,
        asset: &AssetId,
        days: u32,
        shutdown: &CancellationToken,
    ) -> Result<usize, RuntimeError> {
        let check = self.check_for(asset).cloned().ok_or_else(|| RuntimeError::UnknownAsset(asset.to_string()))?;
        let Some((column, bucket)) =
            check.volume.as_ref().and_then(|v| v.timestamp_column.clone().map(|c| (c, v.bucket))).or_else(|| {
                check
                    .freshness
                    .as_ref()
                    .and_then(|f| f.timestamp_column.clone())
                    .map(|c| (c, Duration::from_secs(3600)))
            })
        else {
            return Err(RuntimeError::Source(SourceError::Unsupported(format!(
                "asset `{asset}` has no `timestamp_column` in its volume or freshness monitor, so there is nothing to backfill"
            ))));
        };
        let step = bucket.as_secs() as i64;
        let now = self.clock.now().timestamp();
        let until = now.div_euclid(step) * step;
        let since = until - i64::from(days) * 86_400;
        let (mut measurements, freshness) =
            self.count_buckets_with_freshness(&check, &column, bucket, since, until, shutdown).await?;
        let buckets = measurements.len();
        // The freshness a poll would have seen at each bucket end, when freshness is measured on
        // the same column: the update cadence is then known from day one too.
        if check.freshness.as_ref().and_then(|f| f.timestamp_column.as_deref()) == Some(column.as_str()) {
            measurements.extend(freshness);
        }
        if check.volume.as_ref().and_then(|v| v.timestamp_column.as_deref()) != Some(column.as_str()) {
            measurements.retain(|m| m.kind != MetricKind::RowsAdded);
        }
        self.store.record(&measurements).await?;
        tracing::info!(parent: crate::telemetry::spans::parent(), asset = %asset, buckets, "backfill done");
        Ok(buckets)
    }

    /// Whether an asset lacks bucketed history (backfill runs automatically on first sight).
    pub async fn needs_backfill(&self, asset: &AssetId) -> bool {
        let Some(check) = self.check_for(asset) else { return false };
        let kind = if check.volume.as_ref().is_some_and(|v| v.timestamp_column.is_some()) {
            MetricKind::RowsAdded
        } else if check.freshness.as_ref().is_some_and(|f| f.timestamp_column.is_some()) {
            MetricKind::FreshnessLag
        } else {
            return false;
        };
        matches!(self.store.history(asset, Some(kind), Some(""), None, 3).await, Ok(h) if h.len() < 3)
    }

    /// Freshness judged against the clock between polls: a table that stops updating turns late
    /// at the moment its own cadence (or `max_age`) says so, not at the next poll.
    pub async fn freshness_sweep(self: &Arc<Self>) -> Vec<CheckOutcome> {
        let now = self.clock.now();
        let mut outcomes = Vec::new();
        let mut records = Vec::new();
        for check in self.checks.assets.values() {
            let Some(f) = check.freshness.as_ref() else { continue };
            let latest = match self.store.latest(&check.asset).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(parent: crate::telemetry::spans::parent(), asset = %check.asset, error = %e, "cannot read the latest measurements");
                    continue;
                }
            };
            let Some(last_update) = latest.iter().find(|m| m.kind == MetricKind::LastModified).map(|m| m.value as i64)
            else {
                continue;
            };
            let lag = (now.timestamp() - last_update).max(0) as f64;
            let mut o = freshness_outcome(Some(check), &check.asset, lag, f.max_age);
            if let Some(verdict) = self.probe_freshness(check, last_update, now).await {
                if verdict.anomaly && o.status != Status::Fail {
                    o.status = Status::Fail;
                    o.message = format!("anomaly: {}", verdict.explanation);
                }
                o.verdict = Some(verdict);
            }
            let late = o.status == Status::Fail;
            let was_late = {
                let mut set = self.late.lock().unwrap_or_else(|e| e.into_inner());
                if late { !set.insert(check.asset.clone()) } else { set.remove(&check.asset) }
            };
            if late && !was_late {
                let verdict = o.verdict.clone().unwrap_or_else(|| crate::detect::Verdict {
                    timestamp: now.timestamp(),
                    value: lag,
                    status: crate::detect::Status::Learned,
                    expected: f.max_age.map(|m| crate::detect::Expected {
                        low: 0.0,
                        high: m.as_secs_f64(),
                        forecast: 0.0,
                    }),
                    score: 0.0,
                    anomaly: true,
                    alert: true,
                    direction: Some(crate::detect::Deviation::Above),
                    event: None,
                    confidence: crate::detect::Confidence::High,
                    history_points: 0,
                    explanation: o.message.clone().into(),
                });
                let mut record =
                    super::detection::verdict_record(&check.asset, MetricKind::FreshnessLag, "", now, &verdict);
                record.anomaly = true;
                record.alert = true;
                record.explanation = o.message.clone();
                records.push(record);
                tracing::warn!(parent: crate::telemetry::spans::parent(), asset = %check.asset, "{}", o.message);
            }
            outcomes.push(o);
        }
        if !records.is_empty()
            && let Err(e) = self.store.record_verdicts(&records).await
        {
            tracing::error!(parent: crate::telemetry::spans::parent(), error = %e, "cannot save freshness verdicts");
        }
        outcomes
    }

    /// Measures one asset now: its source's metadata (for this table) and its query monitors.
    pub async fn measure_now(
        self: &Arc<Self>,
        asset: &AssetId,
        shutdown: &CancellationToken,
    ) -> Result<Vec<CheckOutcome>, RuntimeError> {
        let source = asset.source().to_string();
        if !self.sources.contains_key(&source) {
            return Err(RuntimeError::UnknownAsset(asset.to_string()));
        }
        let table = asset.as_str().splitn(3, '.').collect::<Vec<_>>();
        let table = crate::measure::TableRef::new(table[1], table[2]);
        let scope = Scope { tables: [table].into(), ..Scope::default() };
        let mut outcomes: Vec<CheckOutcome> =
            self.metadata_job_in(&source, scope, shutdown).await.into_iter().filter(|o| &o.asset == asset).collect();
        outcomes.extend(self.asset_job(asset, shutdown).await);
        Ok(outcomes)
    }
}

/// Turns one table's catalog entry into measurements, state, a schema snapshot when it changed,
/// and the outcomes of its metadata monitors. Pure: the caller loads and saves.
fn observe_metadata(
    asset: &AssetId,
    meta: &TableMetadata,
    check: Option<&AssetCheck>,
    now: DateTime<Utc>,
    previous: Option<&AssetState>,
    previous_schema: Option<&Vec<Column>>,
    batch: &mut MetadataBatch,
) -> Vec<CheckOutcome> {
    let mut outcomes = Vec::new();
    let inference = infer_change(previous, meta, now);
    batch.states.push((asset.clone(), inference.state.clone()));
    let out = &mut batch.measurements;
    let freshness_by_query = check.and_then(|c| c.freshness.as_ref()).is_some_and(|f| f.timestamp_column.is_some());
    let volume = check.and_then(|c| c.volume.as_ref());
    let volume_by_query = volume.is_some_and(|v| v.timestamp_column.is_some());
    if !freshness_by_query {
        if let Some(lag) = inference.freshness_lag {
            out.push(Measurement::new(asset, MetricKind::FreshnessLag, lag, now, METADATA));
            if let Some(f) = check.and_then(|c| c.freshness.as_ref()) {
                outcomes.push(freshness_outcome(check, asset, lag, f.max_age));
            }
        }
        if let Some(t) = inference.state.last_changed_at.filter(|_| inference.state.change_observed) {
            out.push(Measurement::new(asset, MetricKind::LastModified, t.timestamp() as f64, now, METADATA));
        }
    }
    if let Some(rows) = meta.row_count
        && !volume.is_some_and(|v| v.exact)
    {
        out.push(Measurement::new(asset, MetricKind::RowCount, rows, now, METADATA));
        crate::telemetry::metrics::global().observe_rows(asset, rows, meta.row_count_exact);
        if let Some(v) = volume {
            let what = if meta.row_count_exact { "row count" } else { "row count (catalog estimate)" };
            outcomes
                .push(judge(outcome(check, asset, "volume"), rows, &v.row_count, what).about(MetricKind::RowCount, ""));
        }
    }
    let exact = volume.is_some_and(|v| v.exact);
    if !volume_by_query
        && !exact
        && let Some(added) = inference.rows_added
    {
        out.push(Measurement::new(asset, MetricKind::RowsAdded, added, now, METADATA));
        if let Some(v) = volume.filter(|v| v.rows_added.has_bounds() || v.rows_added.auto) {
            let mut o = judge(outcome(check, asset, "volume"), added, &v.rows_added, "rows added since the last poll")
                .about(MetricKind::RowsAdded, "");
            o.subject = Some("rows_added".into());
            outcomes.push(o);
        }
    }
    out.push(Measurement::new(asset, MetricKind::ColumnCount, meta.columns.len() as f64, now, METADATA));
    let first = previous_schema.is_none();
    let changes = previous_schema.map(|old| diff_schema(old, &meta.columns)).unwrap_or_default();
    if first || !changes.is_empty() {
        batch.snapshots.push((asset.clone(), meta.columns.clone(), changes.clone()));
    }
    if !first {
        batch.measurements.push(Measurement::new(
            asset,
            MetricKind::SchemaChanges,
            changes.len() as f64,
            now,
            METADATA,
        ));
    }
    if !changes.is_empty() {
        tracing::info!(parent: crate::telemetry::spans::parent(), asset = %asset, changes = changes.len(), "schema changed");
    }
    if let Some(monitor) = check.and_then(|c| c.schema.as_ref()) {
        let mut o = outcome(check, asset, "schema");
        o.value = Some(changes.len() as f64);
        let breaking = changes.iter().filter(|c| c.is_breaking()).count();
        if changes.is_empty() {
            o.status = Status::Pass;
            o.message = if first {
                format!("schema recorded: {} columns", meta.columns.len())
            } else {
                "schema unchanged".into()
            };
        } else {
            let list = changes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            o.status = if breaking > 0 || monitor.fail_on_any_change { Status::Fail } else { Status::Pass };
            o.message = format!("schema changed: {list}");
        }
        outcomes.push(o);
    }
    outcomes
}

/// The outcome of a shift judged on a column's profile (`category_shift`, `distribution_shift`):
/// the shift is stored and held to the rule's bounds once it is learned; the verdict goes along
/// for detection to record when the rule is `auto`.
fn shift_outcome(
    check: &AssetCheck,
    (kind, column): (MetricKind, &str),
    rule: &Rule,
    verdict: crate::detect::Verdict,
    summary: String,
    (now, name): (DateTime<Utc>, &str),
    out: &mut Vec<Measurement>,
) -> CheckOutcome {
    let subject = format!("{column}.{kind}");
    let mut o = outcome(Some(check), &check.asset, "column").about(kind, column);
    if verdict.status == crate::detect::Status::Learned {
        out.push(Measurement::new(&check.asset, kind, verdict.value, now, name).with_column(column));
        o = judge(o, verdict.value, rule, &subject);
    } else {
        o.message = format!("{subject}: {summary}");
    }
    o.subject = Some(subject);
    if rule.auto {
        o.verdict = Some(verdict);
    }
    o
}

fn freshness_outcome(check: Option<&AssetCheck>, asset: &AssetId, lag: f64, max_age: Option<Duration>) -> CheckOutcome {
    let mut o = outcome(check, asset, "freshness").about(MetricKind::FreshnessLag, "");
    o.value = Some(lag);
    let age = format_duration(Duration::from_secs(lag as u64));
    match max_age {
        Some(max) if lag > max.as_secs_f64() => {
            o.status = Status::Fail;
            o.message = format!("last change {age} ago, older than max_age {}", format_duration(max));
        }
        Some(max) => {
            o.status = Status::Pass;
            o.message = format!("last change {age} ago (max_age {})", format_duration(max));
        }
        None => o.message = format!("last change {age} ago"),
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::TableRef;

    fn meta(rows: f64, signature: &str) -> TableMetadata {
        TableMetadata {
            table: TableRef::new("public", "t"),
            columns: vec![],
            row_count: Some(rows),
            row_count_exact: false,
            last_modified: None,
            change_signature: Some(signature.into()),
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn change_time_is_inferred_from_counters_moving() {
        let first = infer_change(None, &meta(10.0, "a"), t("2026-01-01T00:00:00Z"));
        assert_eq!(first.freshness_lag, None, "nothing is known on first sight");
        assert!(!first.state.change_observed);

        let same = infer_change(Some(&first.state), &meta(10.0, "a"), t("2026-01-01T01:00:00Z"));
        assert_eq!(same.freshness_lag, Some(3600.0), "a lower bound from first sight");
        assert_eq!(same.rows_added, Some(0.0));

        let moved = infer_change(Some(&same.state), &meta(25.0, "b"), t("2026-01-01T02:00:00Z"));
        assert_eq!(moved.freshness_lag, Some(0.0));
        assert_eq!(moved.rows_added, Some(15.0));
        assert!(moved.state.change_observed);

        let later = infer_change(Some(&moved.state), &meta(25.0, "b"), t("2026-01-01T05:00:00Z"));
        assert_eq!(later.freshness_lag, Some(3.0 * 3600.0));
    }

    #[test]
    fn an_engine_change_time_wins() {
        let mut m = meta(5.0, "x");
        m.last_modified = Some(t("2026-01-01T00:00:00Z"));
        let r = infer_change(None, &m, t("2026-01-01T00:30:00Z"));
        assert_eq!(r.freshness_lag, Some(1800.0));
    }
}
