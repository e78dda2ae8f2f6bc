//! Lake tables: Parquet/CSV/NDJSON files, Delta Lake and Apache Iceberg, on local disk or
//! S3-compatible storage, behind the same [`Source`] trait as the warehouses.
//!
//! Metadata first: freshness, volume and schema come from file listings and Parquet footers
//! ([`files`]), the Delta transaction log ([`delta`]) or Iceberg table metadata ([`iceberg`]),
//! never from scanning data; each is incremental (only new files, commits or metadata files are
//! read on the next poll). Column profiles, bucket counts and custom SQL run in DataFusion over
//! the exact list of live files ([`scan`]) under a bounded memory pool.
//!
//! One table that cannot be read (a truncated file, a gap in a Delta log, a metadata pointer to a
//! missing file) fails alone: [`Source::scan_metadata_per_table`] reports it against that table.

mod delta;
mod files;
mod iceberg;
mod quantiles;
mod scan;
mod store;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{FieldRef, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;

use super::sql::{self, Dialect};
use super::{
    Bucket, MetadataScan, ProfileRequest, ProfileResult, Scope, Source, SourceError, TableMetadata, profile_result,
};
use crate::config::{FileFormat, LakeOptions, SourceConfig, SourceKind};
use crate::measure::{Column, TableRef};
use store::{Location, Store, Stores};

/// Profiles reading more rows than this estimate distinct counts (HyperLogLog, ~1% error)
/// instead of counting them exactly.
pub(crate) const EXACT_DISTINCT_MAX_ROWS: u64 = 1_000_000;

/// Tables read at once during a metadata scan.
const LOAD_CONCURRENCY: usize = 8;

/// One live data file of a table.
#[derive(Debug, Clone)]
pub(crate) struct DataFile {
    pub path: ObjPath,
    pub size: u64,
    /// Exact rows, from a footer or table-format statistics.
    pub rows: Option<u64>,
    pub modified: Option<DateTime<Utc>>,
    /// In the order of [`TableView::partition_fields`].
    pub partition_values: Vec<ScalarValue>,
}

/// What one metadata read says about a table, and what a data scan needs.
#[derive(Debug, Clone)]
pub(crate) struct TableView {
    pub table: TableRef,
    pub store: Store,
    pub format: FileFormat,
    /// The schema in the table format's own type names (what schema history shows).
    pub columns: Vec<Column>,
    /// Arrow schema of the data files, without partition columns.
    pub file_schema: SchemaRef,
    /// Columns whose values live in paths or in the log, not in the files.
    pub partition_fields: Vec<FieldRef>,
    pub files: Vec<DataFile>,
    pub rows: Option<f64>,
    pub last_modified: Option<DateTime<Utc>>,
    pub signature: String,
    /// The names `file_schema`'s fields have inside the data files, when they differ from the
    /// table's (Delta column mapping); in `file_schema` order.
    pub physical_names: Option<Vec<String>>,
    /// Why the data files cannot be scanned (metadata still measures the table).
    pub unsupported_scan: Option<String>,
}

/// Where a table is, as found by listing (or the catalog).
#[derive(Debug, Clone)]
pub(crate) enum Handle {
    Files { table: TableRef, objects: Vec<object_store::ObjectMeta>, root: Location },
    Delta { table: TableRef, dir: Location },
    Iceberg { table: TableRef, metadata_location: String },
}

impl Handle {
    fn table(&self) -> &TableRef {
        match self {
            Handle::Files { table, .. } | Handle::Delta { table, .. } | Handle::Iceberg { table, .. } => table,
        }
    }
}

/// A `files`, `delta` or `iceberg` source.
pub struct LakeSource {
    name: String,
    kind: SourceKind,
    root_url: String,
    options: LakeOptions,
    timeout: Duration,
    threads: usize,
    runtime: Arc<RuntimeEnv>,
    stores: Stores,
    files_cache: Mutex<files::Cache>,
    delta_cache: Mutex<HashMap<TableRef, delta::DeltaState>>,
    iceberg_cache: Mutex<HashMap<TableRef, (String, Arc<TableView>)>>,
    /// Files each table's profile has read, for `profile_new_files_only`.
    profiled: Mutex<HashMap<TableRef, HashSet<String>>>,
}

impl LakeSource {
    pub fn new(config: &SourceConfig) -> Result<Self, SourceError> {
        let options = config.lake.clone().unwrap_or_default();
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(options.memory_limit as usize)))
            .build_arc()
            .map_err(|e| SourceError::Unsupported(format!("source `{}`: {e}", config.name)))?;
        let stores = Stores::new(
            &config.name,
            options.s3.clone(),
            config.statement_timeout,
            config.connect_timeout,
            runtime.clone(),
        );
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(LakeSource {
            name: config.name.clone(),
            kind: config.kind,
            root_url: config.url.expose().to_string(),
            options,
            timeout: config.statement_timeout,
            threads,
            runtime,
            stores,
            files_cache: Mutex::new(files::Cache::default()),
            delta_cache: Mutex::new(HashMap::new()),
            iceberg_cache: Mutex::new(HashMap::new()),
            profiled: Mutex::new(HashMap::new()),
        })
    }

    fn root(&self) -> Result<Location, SourceError> {
        self.stores.locate(&self.root_url)
    }

    async fn deadline<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Timeout { source_name: self.name.clone(), timeout: self.timeout }),
        }
    }

    /// Every table of the source (or just `only`), located but not read.
    fn handles<'a>(&'a self, only: Option<&'a TableRef>) -> BoxFuture<'a, Result<Vec<Handle>, SourceError>> {
        Box::pin(async move {
            match self.kind {
                SourceKind::Files => files::handles(&self.name, &self.root()?, only).await,
                SourceKind::Delta => delta::handles(&self.name, &self.root()?, only).await,
                SourceKind::Iceberg => match &self.options.catalog {
                    Some(catalog) => {
                        iceberg::catalog_handles(&self.name, catalog.expose(), &self.options.catalog_name, only).await
                    }
                    None => iceberg::filesystem_handles(&self.name, &self.root()?, only).await,
                },
                other => Err(SourceError::Unsupported(format!("`{}` is not a lake source kind", other.as_str()))),
            }
        })
    }

    /// Reads one table's metadata (incrementally: caches keep what earlier polls read).
    fn load<'a>(&'a self, handle: &'a Handle) -> BoxFuture<'a, Result<Arc<TableView>, SourceError>> {
        Box::pin(async move {
            match handle {
                Handle::Files { table, objects, root } => {
                    let cache = std::mem::take(&mut *self.files_cache.lock().unwrap_or_else(|e| e.into_inner()));
                    let (cache, view) = files::load(self, table, root, objects, cache).await;
                    self.files_cache.lock().unwrap_or_else(|e| e.into_inner()).merge(cache);
                    view.map(Arc::new)
                }
                Handle::Delta { table, dir } => {
                    let previous = self.delta_cache.lock().unwrap_or_else(|e| e.into_inner()).get(table).cloned();
                    let (state, view) = delta::load(self, table, dir, previous).await?;
                    self.delta_cache.lock().unwrap_or_else(|e| e.into_inner()).insert(table.clone(), state);
                    Ok(Arc::new(view))
                }
                Handle::Iceberg { table, metadata_location } => {
                    let cached = self.iceberg_cache.lock().unwrap_or_else(|e| e.into_inner()).get(table).cloned();
                    if let Some((location, view)) = cached
                        && &location == metadata_location
                    {
                        return Ok(view);
                    }
                    let view = Arc::new(iceberg::load(self, table, metadata_location).await?);
                    self.iceberg_cache
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(table.clone(), (metadata_location.clone(), view.clone()));
                    Ok(view)
                }
            }
        })
    }

    fn view<'a>(&'a self, table: &'a TableRef) -> BoxFuture<'a, Result<Arc<TableView>, SourceError>> {
        Box::pin(async move {
            let handles = self.handles(Some(table)).await?;
            let handle = handles.iter().find(|h| h.table() == table).ok_or_else(|| SourceError::TableNotFound {
                source_name: self.name.clone(),
                table: table.qualified(),
            })?;
            self.load(handle).await
        })
    }

    /// A session with `views` registered under their `schema.table` names.
    fn session_with(
        &self,
        views: &[(Arc<TableView>, Vec<usize>)],
    ) -> Result<datafusion::prelude::SessionContext, SourceError> {
        let ctx = scan::session(&self.runtime, self.threads);
        for (view, files) in views {
            if let Some(why) = &view.unsupported_scan {
                return Err(SourceError::Unsupported(why.clone()));
            }
            let provider = scan::FileTable::new(view, files, self.options.csv_header)
                .map_err(|e| store::data_error(&self.name, &view.table.qualified(), &e))?;
            scan::register(&ctx, &view.table.schema, &view.table.name, Arc::new(provider))
                .map_err(|e| store::data_error(&self.name, &view.table.qualified(), &e))?;
        }
        Ok(ctx)
    }

    fn run<'a>(
        &'a self,
        ctx: datafusion::prelude::SessionContext,
        what: String,
        sql: String,
    ) -> BoxFuture<'a, Result<Vec<Vec<Option<String>>>, SourceError>> {
        Box::pin(async move {
            let work = async move {
                match scan::query_text(&ctx, &sql).await {
                    Ok(rows) => Ok(rows),
                    Err(e) => Err(store::data_error(&self.name, &what, &e)),
                }
            };
            self.deadline(work).await
        })
    }

    fn number(cell: Option<&Option<String>>) -> Option<f64> {
        cell.and_then(|c| c.as_deref()).and_then(|s| s.trim().parse::<f64>().ok()).filter(|v| v.is_finite())
    }
}

fn metadata_of(view: &TableView) -> TableMetadata {
    TableMetadata {
        table: view.table.clone(),
        columns: view.columns.clone(),
        row_count: view.rows,
        row_count_exact: view.rows.is_some(),
        last_modified: view.last_modified,
        change_signature: Some(view.signature.clone()),
    }
}

/// Files chosen for a profile: every file, a deterministic sample, and/or only new ones.
fn choose_files(view: &TableView, sample_percent: Option<f64>, skip: Option<&HashSet<String>>) -> Vec<usize> {
    let mut chosen: Vec<usize> =
        (0..view.files.len()).filter(|&i| skip.is_none_or(|s| !s.contains(view.files[i].path.as_ref()))).collect();
    if let Some(p) = sample_percent.filter(|p| *p < 100.0) {
        // The same files every run (a hash of the path), so samples are comparable over time.
        let keep = ((chosen.len() as f64) * p / 100.0).ceil().max(1.0) as usize;
        chosen.sort_by_key(|&i| fnv(view.files[i].path.as_ref()));
        chosen.truncate(keep);
        chosen.sort_unstable();
    }
    chosen
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Epoch seconds of a partition value (`date=2024-05-01` → that midnight, UTC).
fn scalar_epoch(v: &ScalarValue) -> Option<f64> {
    match v {
        ScalarValue::Date32(Some(d)) => Some(f64::from(*d) * 86_400.0),
        ScalarValue::Date64(Some(ms)) => Some(*ms as f64 / 1000.0),
        ScalarValue::TimestampSecond(Some(s), _) => Some(*s as f64),
        ScalarValue::TimestampMillisecond(Some(t), _) => Some(*t as f64 / 1e3),
        ScalarValue::TimestampMicrosecond(Some(t), _) => Some(*t as f64 / 1e6),
        ScalarValue::TimestampNanosecond(Some(t), _) => Some(*t as f64 / 1e9),
        ScalarValue::Int64(Some(i)) => Some(*i as f64),
        ScalarValue::Int32(Some(i)) => Some(f64::from(*i)),
        ScalarValue::Utf8(Some(s)) => files::parse_time(s),
        _ => None,
    }
}

#[async_trait]
impl Source for LakeSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> SourceKind {
        self.kind
    }

    async fn healthcheck(&self) -> Result<(), SourceError> {
        self.deadline(async { self.handles(None).await.map(|_| ()) }).await
    }

    async fn scan_metadata(&self, scope: &Scope) -> Result<Vec<TableMetadata>, SourceError> {
        let scan = self.scan_metadata_per_table(scope).await?;
        // A table asked for by name that cannot be read is this call's error.
        if let Some((_, e)) = scan.failures.into_iter().find(|(t, _)| scope.tables.contains(t)) {
            return Err(e);
        }
        Ok(scan.tables)
    }

    async fn scan_metadata_per_table(&self, scope: &Scope) -> Result<MetadataScan, SourceError> {
        let handles = self.deadline(self.handles(None)).await?;
        let wanted: Vec<Handle> = handles.into_iter().filter(|h| scope.contains(h.table())).collect();
        let loads: Vec<BoxFuture<'_, (TableRef, Result<Arc<TableView>, SourceError>)>> = wanted
            .into_iter()
            .map(|h| -> BoxFuture<'_, _> {
                Box::pin(async move {
                    let table = h.table().clone();
                    let result = self.deadline(self.load(&h)).await;
                    (table, result)
                })
            })
            .collect();
        let results: Vec<(TableRef, Result<Arc<TableView>, SourceError>)> =
            futures::stream::iter(loads).buffer_unordered(LOAD_CONCURRENCY).collect().await;
        let mut scan = MetadataScan::default();
        for (table, result) in results {
            match result {
                Ok(view) => scan.tables.push(metadata_of(&view)),
                Err(e) => scan.failures.push((table, e)),
            }
        }
        scan.tables.sort_by(|a, b| a.table.cmp(&b.table));
        Ok(scan)
    }

    async fn profile(&self, request: &ProfileRequest) -> Result<ProfileResult, SourceError> {
        let view = self.deadline(self.view(&request.table)).await?;
        let seen = if self.options.profile_new_files_only {
            self.profiled.lock().unwrap_or_else(|e| e.into_inner()).get(&request.table).cloned()
        } else {
            None
        };
        let files = choose_files(&view, request.sample_percent, seen.as_ref());
        // Exact distinct counts hold every value in memory: above this many rows, HyperLogLog.
        let rows_read: u64 = files.iter().map(|&i| view.files[i].rows.unwrap_or(u64::MAX)).fold(0, u64::saturating_add);
        let query = sql::profile_query_with(
            Dialect(self.kind),
            &request.table,
            &request.columns,
            request.filter.as_deref(),
            request.sample_percent,
            rows_read > EXACT_DISTINCT_MAX_ROWS,
        )?;
        let ctx = self.session_with(&[(view.clone(), files.clone())])?;
        let rows = self.run(ctx, format!("profile of {}", request.table), query.sql.clone()).await?;
        if self.options.profile_new_files_only {
            let mut profiled = self.profiled.lock().unwrap_or_else(|e| e.into_inner());
            let set = profiled.entry(request.table.clone()).or_default();
            // Forget files that left the table (compaction), remember the ones just read.
            let live: HashSet<&str> = view.files.iter().map(|f| f.path.as_ref()).collect();
            set.retain(|p| live.contains(p.as_str()));
            set.extend(files.iter().map(|&i| view.files[i].path.to_string()));
        }
        let row = rows.first().ok_or_else(|| SourceError::Query {
            source_name: self.name.clone(),
            message: "profile query returned no row".into(),
        })?;
        let mut result = profile_result(&query, row, |c| Self::number(Some(c)));
        // Value frequencies and samples read the same files.
        super::column_value_queries(Dialect(self.kind), request, &mut result, |what, sql| {
            let ctx = self.session_with(&[(view.clone(), files.clone())]);
            async move { self.run(ctx?, what, sql).await }
        })
        .await?;
        Ok(result)
    }

    async fn bucket_counts(
        &self,
        table: &TableRef,
        timestamp_column: &str,
        bucket: Duration,
        since: i64,
        until: i64,
    ) -> Result<Vec<Bucket>, SourceError> {
        let view = self.deadline(self.view(table)).await?;
        let sql = sql::bucket_counts_query(
            Dialect(self.kind),
            table,
            timestamp_column,
            bucket.as_secs().max(1),
            since,
            until,
        )?;
        let all: Vec<usize> = (0..view.files.len()).collect();
        let ctx = self.session_with(&[(view, all)])?;
        let rows = self.run(ctx, format!("bucket counts of {table}"), sql).await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(Bucket {
                    start: Self::number(r.first())? as i64,
                    rows: Self::number(r.get(1))?,
                    newest: Self::number(r.get(2)),
                })
            })
            .collect())
    }

    async fn newest_and_count(
        &self,
        table: &TableRef,
        timestamp_column: Option<&str>,
        count: bool,
    ) -> Result<(Option<f64>, Option<f64>), SourceError> {
        let view = self.deadline(self.view(table)).await?;
        // A partition column answers from the file list alone: the newest `date=` partition.
        let partition = timestamp_column.and_then(|c| view.partition_fields.iter().position(|f| f.name() == c));
        let metadata_count = if count { view.rows } else { None };
        if let Some(index) = partition
            && (!count || metadata_count.is_some())
        {
            let newest =
                view.files.iter().filter_map(|f| f.partition_values.get(index).and_then(scalar_epoch)).reduce(f64::max);
            return Ok((newest, metadata_count));
        }
        if timestamp_column.is_none() && (!count || metadata_count.is_some()) {
            return Ok((None, metadata_count));
        }
        let sql = sql::freshness_query(Dialect(self.kind), table, timestamp_column, count)?;
        let all: Vec<usize> = (0..view.files.len()).collect();
        let ctx = self.session_with(&[(view, all)])?;
        let rows = self.run(ctx, format!("freshness of {table}"), sql).await?;
        let row = rows.first().cloned().unwrap_or_default();
        Ok((Self::number(row.first()), Self::number(row.get(1))))
    }

    async fn custom_metric(&self, sql_text: &str) -> Result<Option<f64>, SourceError> {
        let handles = self.deadline(self.handles(None)).await?;
        let loads: Vec<BoxFuture<'_, Result<Arc<TableView>, SourceError>>> =
            handles.iter().map(|h| -> BoxFuture<'_, _> { Box::pin(self.deadline(self.load(h))) }).collect();
        let views: Vec<Arc<TableView>> =
            futures::stream::iter(loads).buffer_unordered(LOAD_CONCURRENCY).try_collect().await?;
        let views: Vec<(Arc<TableView>, Vec<usize>)> = views
            .into_iter()
            .map(|v| {
                let all = (0..v.files.len()).collect();
                (v, all)
            })
            .collect();
        let ctx = self.session_with(&views)?;
        let rows =
            self.run(ctx, "custom metric".into(), sql::custom_metric_query(Dialect(self.kind), sql_text)).await?;
        Ok(Self::number(rows.first().and_then(|r| r.first())))
    }

    async fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_give_epochs() {
        assert_eq!(scalar_epoch(&ScalarValue::Date32(Some(1))), Some(86_400.0));
        assert_eq!(scalar_epoch(&ScalarValue::Utf8(Some("1970-01-02".into()))), Some(86_400.0));
        assert_eq!(scalar_epoch(&ScalarValue::Utf8(Some("x".into()))), None);
    }

    fn view_of_files(n: usize) -> TableView {
        TableView {
            table: TableRef::new("main", "t"),
            store: Store { url: "file://".into(), store: Arc::new(object_store::local::LocalFileSystem::new()) },
            format: FileFormat::Parquet,
            columns: Vec::new(),
            file_schema: Arc::new(datafusion::arrow::datatypes::Schema::empty()),
            partition_fields: Vec::new(),
            files: (0..n)
                .map(|i| DataFile {
                    path: ObjPath::from(format!("t/part-{i}.parquet")),
                    size: 1,
                    rows: Some(1),
                    modified: None,
                    partition_values: Vec::new(),
                })
                .collect(),
            rows: Some(n as f64),
            last_modified: None,
            signature: String::new(),
            physical_names: None,
            unsupported_scan: None,
        }
    }

    #[test]
    fn profiles_sample_whole_files_and_can_skip_the_ones_already_read() {
        let view = view_of_files(200);
        assert_eq!(choose_files(&view, None, None).len(), 200);
        let sample = choose_files(&view, Some(5.0), None);
        assert_eq!(sample.len(), 10, "ceil(5% of 200)");
        assert_eq!(sample, choose_files(&view, Some(5.0), None), "the same files every run");
        assert_eq!(choose_files(&view, Some(0.1), None).len(), 1, "at least one file");
        let seen: HashSet<String> = (0..150).map(|i| format!("t/part-{i}.parquet")).collect();
        let new = choose_files(&view, None, Some(&seen));
        assert_eq!(new, (150..200).collect::<Vec<_>>());
    }

    #[test]
    fn file_samples_are_stable() {
        assert_eq!(fnv("a/b.parquet"), fnv("a/b.parquet"));
        assert_ne!(fnv("a/b.parquet"), fnv("a/c.parquet"));
    }
}
