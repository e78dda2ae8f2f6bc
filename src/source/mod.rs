//! Monitored data sources: the [`Source`] trait and the SQL engines behind it.
//!
//! Sources only read. Each measures metadata first (one catalog round trip covers every table) and
//! runs per-table aggregate queries only where a check asks for them, always inside the engine.
//! Connections are pooled with a bound, sessions are read-only, every statement has a deadline.
//! Engine differences live in one file each (`postgres`, `mysql`, `sqlite`) and in [`sql`].
//! Lake tables (`files`, `delta`, `iceberg`) are read through [`lake`] with DataFusion.

pub mod lake;
mod mysql;
mod postgres;
pub mod sql;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Row, Type};

use crate::config::{SourceConfig, SourceKind};
use crate::measure::{Column, MetricKind, TableRef, ValueCounts};
use crate::telemetry::db::QueryInfo;
use sql::{ColumnRequest, Dialect};

/// What went wrong talking to a source, classified for retries, exit codes and metrics.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot reach source `{source_name}`: {message}")]
    Unreachable { source_name: String, message: String },
    #[error(
        "permission denied on source `{source_name}`: {message}; grant telltale's user read access (see docs/configuration.md)"
    )]
    PermissionDenied { source_name: String, message: String },
    #[error(
        "query on source `{source_name}` exceeded its {timeout:?} deadline; raise `statement_timeout` or narrow the check with `where`/`sample`"
    )]
    Timeout { source_name: String, timeout: Duration },
    #[error("table `{table}` not found in source `{source_name}`")]
    TableNotFound { source_name: String, table: String },
    #[error("query failed on source `{source_name}`: {message}")]
    Query { source_name: String, message: String },
    #[error("{0}")]
    Unsupported(String),
}

/// A small shared classification of failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Unreachable,
    Timeout,
    Permission,
    Config,
    Query,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Permission => "permission",
            ErrorClass::Config => "config",
            ErrorClass::Query => "query",
        }
    }
}

impl SourceError {
    pub fn class(&self) -> ErrorClass {
        match self {
            SourceError::Unreachable { .. } => ErrorClass::Unreachable,
            SourceError::Timeout { .. } => ErrorClass::Timeout,
            SourceError::PermissionDenied { .. } => ErrorClass::Permission,
            SourceError::TableNotFound { .. } | SourceError::Unsupported(_) => ErrorClass::Config,
            SourceError::Query { .. } => ErrorClass::Query,
        }
    }
    /// Worth trying again soon: the network or the server may recover. A timeout is not: the
    /// same query would load the source for as long again and most likely time out again.
    pub fn is_retryable(&self) -> bool {
        matches!(self.class(), ErrorClass::Unreachable)
    }
}

/// What the catalog says about one table, gathered for all tables in one round trip.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableMetadata {
    pub table: TableRef,
    pub columns: Vec<Column>,
    /// Rows: the catalog's estimate (PostgreSQL, MySQL) or exact (SQLite).
    pub row_count: Option<f64>,
    pub row_count_exact: bool,
    /// When the engine records it (MySQL `UPDATE_TIME`).
    pub last_modified: Option<DateTime<Utc>>,
    /// Counters that move whenever the table changes; freshness is inferred from them moving
    /// between polls where the engine keeps no change time (PostgreSQL, SQLite).
    pub change_signature: Option<String>,
}

/// A metadata scan in which some tables could not be read: each failure belongs to its table,
/// and the other tables are measured as usual.
#[derive(Debug, Default)]
pub struct MetadataScan {
    pub tables: Vec<TableMetadata>,
    pub failures: Vec<(TableRef, SourceError)>,
}

/// Which tables a metadata scan is about: the checked ones plus auto-discovery patterns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub tables: std::collections::BTreeSet<TableRef>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Scope {
    /// Every table of the source.
    pub fn all() -> Scope {
        Scope { include: vec!["*".into()], ..Scope::default() }
    }
    pub fn contains(&self, table: &TableRef) -> bool {
        let q = table.qualified();
        self.tables.contains(table)
            || (self.include.iter().any(|p| crate::config::glob_match(p, &q))
                && !self.exclude.iter().any(|p| crate::config::glob_match(p, &q)))
    }
}

/// Column metrics of one table, computed in a single scan.
#[derive(Debug, Clone)]
pub struct ProfileRequest {
    pub table: TableRef,
    pub columns: Vec<ColumnRequest>,
    pub filter: Option<String>,
    pub sample_percent: Option<f64>,
}

#[derive(Debug, Clone, Default)]
pub struct ProfileResult {
    pub rows: f64,
    pub values: Vec<(String, MetricKind, Option<f64>)>,
    pub skipped: Vec<(String, MetricKind, String)>,
    /// Value frequencies of the columns that asked for `category_shift`.
    pub frequencies: Vec<(String, ValueCounts)>,
    /// Random samples of the numeric and time columns that asked for `distribution_shift`.
    pub samples: Vec<(String, Vec<f64>)>,
}

/// Reads the rows of a [`sql::value_sample_query`] back (values that are not numbers are left out).
fn sample_from_rows(rows: &[Vec<Option<String>>]) -> Vec<f64> {
    rows.iter().filter_map(|r| r.first()?.as_deref()?.trim().parse::<f64>().ok()).filter(|v| v.is_finite()).collect()
}

/// The value frequencies (`category_shift`) and samples (`distribution_shift`) a profile
/// request asks for, one query per column through `run(what, sql)`, over the profile's rows;
/// a failing query costs its own column's metric only (a skipped metric with the error).
pub(crate) async fn column_value_queries<F, Fut>(
    dialect: sql::Dialect,
    request: &ProfileRequest,
    result: &mut ProfileResult,
    mut run: F,
) -> Result<(), SourceError>
where
    F: FnMut(String, String) -> Fut,
    Fut: std::future::Future<Output = Result<TextRows, SourceError>>,
{
    let (table, filter, sample) = (&request.table, request.filter.as_deref(), request.sample_percent);
    for column in frequency_columns(request) {
        let sql = sql::value_counts_query(dialect, table, column, filter, sample)?;
        match run(format!("value frequencies of {table}.{column}"), sql).await {
            Ok(rows) => result.frequencies.push((column.to_string(), ValueCounts::from_rows(&rows))),
            Err(e) => result.skipped.push((column.to_string(), MetricKind::CategoryShift, e.to_string())),
        }
    }
    for column in sample_columns(request) {
        let Some(sql) = sql::value_sample_query(dialect, table, column, filter, sample)? else { continue };
        match run(format!("value sample of {table}.{}", column.name), sql).await {
            Ok(rows) => result.samples.push((column.name.clone(), sample_from_rows(&rows))),
            Err(e) => result.skipped.push((column.name.clone(), MetricKind::DistributionShift, e.to_string())),
        }
    }
    Ok(())
}

/// Columns of a profile request whose value frequencies are asked for.
fn frequency_columns(request: &ProfileRequest) -> impl Iterator<Item = &str> {
    request.columns.iter().filter(|c| c.metrics.contains(&MetricKind::CategoryShift)).map(|c| c.column.name.as_str())
}

/// Columns of a profile request whose value samples are asked for.
fn sample_columns(request: &ProfileRequest) -> impl Iterator<Item = &Column> {
    request.columns.iter().filter(|c| c.metrics.contains(&MetricKind::DistributionShift)).map(|c| &c.column)
}

/// Rows whose timestamp falls in `[start, start + bucket)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub start: i64,
    pub rows: f64,
    pub newest: Option<f64>,
}

#[async_trait]
pub trait Source: Send + Sync {
    fn name(&self) -> &str;
    fn kind(&self) -> SourceKind;
    /// Connects, and checks that the catalog can be read.
    async fn healthcheck(&self) -> Result<(), SourceError>;
    /// Freshness, volume and schema of every table in `scope`, in one catalog round trip.
    async fn scan_metadata(&self, scope: &Scope) -> Result<Vec<TableMetadata>, SourceError>;
    /// Like [`Source::scan_metadata`], but a table that cannot be read fails alone. Engines whose
    /// catalog is one query either answer for every table or fail as a whole.
    async fn scan_metadata_per_table(&self, scope: &Scope) -> Result<MetadataScan, SourceError> {
        Ok(MetadataScan { tables: self.scan_metadata(scope).await?, failures: Vec::new() })
    }
    /// Column metrics in one aggregate query.
    async fn profile(&self, request: &ProfileRequest) -> Result<ProfileResult, SourceError>;
    /// Rows per bucket of `timestamp_column` in `[since, until)` (epoch seconds), one `GROUP BY`.
    async fn bucket_counts(
        &self,
        table: &TableRef,
        timestamp_column: &str,
        bucket: Duration,
        since: i64,
        until: i64,
    ) -> Result<Vec<Bucket>, SourceError>;
    /// Newest timestamp (epoch seconds) and, when `count` is set, the exact row count.
    async fn newest_and_count(
        &self,
        table: &TableRef,
        timestamp_column: Option<&str>,
        count: bool,
    ) -> Result<(Option<f64>, Option<f64>), SourceError>;
    /// A user's query returning one number.
    async fn custom_metric(&self, sql: &str) -> Result<Option<f64>, SourceError>;
    /// The SQL definitions of the views in the catalog (for lineage); none for engines without views.
    async fn view_definitions(&self) -> Result<Vec<ViewDefinition>, SourceError> {
        Ok(Vec::new())
    }
    async fn close(&self);
}

/// A view and the SQL that defines it, as the catalog prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewDefinition {
    pub view: TableRef,
    pub sql: String,
}

pub type SharedSource = Arc<dyn Source>;

/// Builds the runtime object for a configured source (connections open lazily).
pub fn connect(config: &SourceConfig) -> Result<SharedSource, SourceError> {
    if config.kind.is_lake() {
        return Ok(Arc::new(lake::LakeSource::new(config)?));
    }
    Ok(Arc::new(SqlSource::new(config)?))
}

/// Reads the one row of a profile query back: row count first, then one value per output.
pub(crate) fn profile_result(
    query: &sql::ProfileQuery,
    row: &[Option<String>],
    number: impl Fn(&Option<String>) -> Option<f64>,
) -> ProfileResult {
    let mut result = ProfileResult { skipped: query.skipped.clone(), ..ProfileResult::default() };
    result.rows = row.first().and_then(&number).unwrap_or(0.0);
    for (i, (column, metric)) in query.outputs.iter().enumerate() {
        let mut value = row.get(i + 1).and_then(&number);
        if query.sqrt_outputs.contains(&i) {
            value = value.map(|v| v.max(0.0).sqrt());
        }
        result.values.push((column.clone(), *metric, value));
    }
    result
}

enum Pool {
    Postgres(sqlx::PgPool),
    Mysql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// A PostgreSQL, MySQL/MariaDB or SQLite database.
pub struct SqlSource {
    name: String,
    dialect: Dialect,
    pool: Pool,
    timeout: Duration,
    /// How its queries are named in traces and metrics.
    target: crate::telemetry::db::DbTarget,
}

type TextRows = Vec<Vec<Option<String>>>;

fn rows_to_text<R: Row>(rows: Vec<R>) -> Result<TextRows, sqlx::Error>
where
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    rows.iter().map(|row| (0..row.len()).map(|i| row.try_get::<Option<String>, _>(i)).collect()).collect()
}

/// A pooled connection that is closed, not returned to the pool, when its query is abandoned
/// (deadline, shutdown): returning it would wait for the server to finish the orphaned query, and
/// closing the socket lets the server cancel it.
struct CloseIfCancelled<DB: sqlx::Database> {
    conn: sqlx::pool::PoolConnection<DB>,
    done: bool,
}

impl<DB: sqlx::Database> CloseIfCancelled<DB> {
    fn new(conn: sqlx::pool::PoolConnection<DB>) -> Self {
        CloseIfCancelled { conn, done: false }
    }
    fn get(&mut self) -> &mut sqlx::pool::PoolConnection<DB> {
        &mut self.conn
    }
    fn finished(&mut self) {
        self.done = true;
    }
}

impl<DB: sqlx::Database> Drop for CloseIfCancelled<DB> {
    fn drop(&mut self) {
        if !self.done {
            self.conn.close_on_drop();
        }
    }
}

impl SqlSource {
    pub fn new(config: &SourceConfig) -> Result<Self, SourceError> {
        let pool = match config.kind {
            SourceKind::Postgres => Pool::Postgres(postgres::pool(config)?),
            SourceKind::Mysql => Pool::Mysql(mysql::pool(config)?),
            SourceKind::Sqlite => Pool::Sqlite(sqlite::pool(config)?),
            other => {
                return Err(SourceError::Unsupported(format!(
                    "source `{}`: `{}` is not a SQL engine",
                    config.name,
                    other.as_str()
                )));
            }
        };
        Ok(SqlSource {
            name: config.name.clone(),
            dialect: Dialect(config.kind),
            pool,
            timeout: config.statement_timeout,
            target: crate::telemetry::db::DbTarget::of(config),
        })
    }

    /// Runs one statement with the client-side deadline; every value comes back as text. The
    /// round trip is a database client span and a `telltale_query_duration_seconds` sample.
    async fn query_text(&self, query: QueryInfo<'_>, sql: String) -> Result<TextRows, SourceError> {
        let span = crate::telemetry::db::query_span(&self.target, &query, &sql);
        let started = std::time::Instant::now();
        // The span is held, not entered: a query has no child spans, and entering on every poll
        // of the driver's future cost more than the span itself (docs/telemetry.md).
        let result = self.query_text_untraced(sql).await;
        let (rows, error) = match &result {
            Ok(rows) => (Some(rows.len()), None),
            Err(e) => (None, Some(e.class().as_str())),
        };
        crate::telemetry::db::finish(&span, &self.target, &query, started, rows, error);
        result
    }

    async fn query_text_untraced(&self, sql: String) -> Result<TextRows, SourceError> {
        let run = async {
            match &self.pool {
                Pool::Postgres(p) => {
                    let mut conn = CloseIfCancelled::new(p.acquire().await?);
                    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut **conn.get()).await?;
                    conn.finished();
                    rows_to_text(rows)
                }
                Pool::Mysql(p) => {
                    let mut conn = CloseIfCancelled::new(p.acquire().await?);
                    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut **conn.get()).await?;
                    conn.finished();
                    rows_to_text(rows)
                }
                Pool::Sqlite(p) => rows_to_text(sqlx::query(AssertSqlSafe(sql)).fetch_all(p).await?),
            }
        };
        // The server enforces `statement_timeout`; the client deadline (a little longer) also
        // covers a server that stops answering altogether.
        match tokio::time::timeout(self.timeout + Duration::from_secs(2), run).await {
            Ok(result) => result.map_err(|e| self.classify(e)),
            Err(_) => Err(SourceError::Timeout { source_name: self.name.clone(), timeout: self.timeout }),
        }
    }

    fn classify(&self, error: sqlx::Error) -> SourceError {
        let source_name = self.name.clone();
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => SourceError::Unreachable { source_name, message: error.to_string() },
            sqlx::Error::Database(db) => {
                let kind = match self.dialect.0 {
                    SourceKind::Postgres => postgres::classify(db.as_ref()),
                    SourceKind::Mysql => mysql::classify(db.as_ref()),
                    SourceKind::Sqlite => sqlite::classify(db.as_ref()),
                    _ => None,
                };
                let message = db.message().to_string();
                match kind {
                    Some(ErrorClass::Permission) => SourceError::PermissionDenied { source_name, message },
                    Some(ErrorClass::Timeout) => SourceError::Timeout { source_name, timeout: self.timeout },
                    Some(ErrorClass::Unreachable) => SourceError::Unreachable { source_name, message },
                    Some(ErrorClass::Config) => SourceError::TableNotFound { source_name, table: message },
                    _ => SourceError::Query { source_name, message },
                }
            }
            _ => SourceError::Query { source_name, message: error.to_string() },
        }
    }

    fn number(&self, cell: &Option<String>) -> Option<f64> {
        cell.as_deref().and_then(|s| s.trim().parse::<f64>().ok()).filter(|v| v.is_finite())
    }
}

#[async_trait]
impl Source for SqlSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> SourceKind {
        self.dialect.0
    }

    async fn healthcheck(&self) -> Result<(), SourceError> {
        self.query_text(QueryInfo::other("ping"), "SELECT '1'".to_string()).await?;
        self.scan_metadata(&Scope::default()).await.map(|_| ())
    }

    async fn scan_metadata(&self, scope: &Scope) -> Result<Vec<TableMetadata>, SourceError> {
        let statements = match self.dialect.0 {
            SourceKind::Postgres => vec![postgres::CATALOG_SQL.to_string()],
            SourceKind::Mysql => vec![mysql::CATALOG_SQL.to_string()],
            SourceKind::Sqlite => {
                // SQLite keeps no row counts: list tables first, then count them in compound
                // statements (cheap for an embedded file).
                let tables = self.query_text(QueryInfo::other("catalog"), sqlite::TABLES_SQL.to_string()).await?;
                let tables: Vec<(String, bool)> = tables
                    .into_iter()
                    .filter_map(|r| {
                        Some((r.first().cloned().flatten()?, r.get(1).cloned().flatten().as_deref() == Some("1")))
                    })
                    .collect();
                sqlite::catalog_sql(self.dialect, &tables)?
            }
            other => return Err(SourceError::Unsupported(format!("`{}` is not a SQL engine", other.as_str()))),
        };
        let mut tables = Vec::new();
        for sql in statements {
            tables.extend(
                self.query_text(QueryInfo::other("catalog"), sql)
                    .await?
                    .iter()
                    .filter_map(|r| parse_catalog_row(r))
                    .filter(|t| scope.contains(&t.table)),
            );
        }
        Ok(tables)
    }

    async fn view_definitions(&self) -> Result<Vec<ViewDefinition>, SourceError> {
        let statement = match self.dialect.0 {
            SourceKind::Postgres => {
                "SELECT schemaname::text, viewname::text, definition FROM pg_views \
                 WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            }
            SourceKind::Mysql => {
                "SELECT CAST(table_schema AS CHAR), CAST(table_name AS CHAR), CAST(view_definition AS CHAR) \
                 FROM information_schema.views \
                 WHERE table_schema NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema') ORDER BY 1, 2"
            }
            SourceKind::Sqlite => "SELECT 'main', name, sql FROM sqlite_master WHERE type = 'view' ORDER BY 2",
            _ => return Ok(Vec::new()),
        };
        let rows = self.query_text(QueryInfo::other("views"), statement.to_string()).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let mut r = r.into_iter();
                let (schema, name, sql) = (r.next()??, r.next()??, r.next()??);
                Some(ViewDefinition { view: TableRef::new(&schema, &name), sql })
            })
            .collect())
    }

    async fn profile(&self, request: &ProfileRequest) -> Result<ProfileResult, SourceError> {
        let query = sql::profile_query(
            self.dialect,
            &request.table,
            &request.columns,
            request.filter.as_deref(),
            request.sample_percent,
        )?;
        let table = request.table.qualified();
        let rows = self.query_text(QueryInfo::table("profile", &table), query.sql.clone()).await?;
        let row = rows.first().ok_or_else(|| SourceError::Query {
            source_name: self.name.clone(),
            message: "profile query returned no row".into(),
        })?;
        let mut result = profile_result(&query, row, |c| self.number(c));
        column_value_queries(self.dialect, request, &mut result, |_, sql| {
            self.query_text(QueryInfo::table("profile", &table), sql)
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
        let sql =
            sql::bucket_counts_query(self.dialect, table, timestamp_column, bucket.as_secs().max(1), since, until)?;
        let qualified = table.qualified();
        let rows = self.query_text(QueryInfo::table("buckets", &qualified), sql).await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(Bucket {
                    start: self.number(&r[0])? as i64,
                    rows: self.number(&r[1])?,
                    newest: self.number(&r[2]),
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
        let qualified = table.qualified();
        let sql = sql::freshness_query(self.dialect, table, timestamp_column, count)?;
        let rows = self.query_text(QueryInfo::table("freshness", &qualified), sql).await?;
        let row = rows.first().cloned().unwrap_or_default();
        Ok((row.first().and_then(|c| self.number(c)), row.get(1).and_then(|c| self.number(c))))
    }

    async fn custom_metric(&self, sql_text: &str) -> Result<Option<f64>, SourceError> {
        let sql = sql::custom_metric_query(self.dialect, sql_text);
        let rows = self.query_text(QueryInfo::other("custom_sql"), sql).await?;
        Ok(rows.first().and_then(|r| r.first()).and_then(|c| self.number(c)))
    }

    async fn close(&self) {
        match &self.pool {
            Pool::Postgres(p) => p.close().await,
            Pool::Mysql(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

/// Catalog rows are `schema, table, rows, last_modified_epoch, signature, columns` where columns
/// are packed as `name\x1ftype\x1fnullable` joined by `\x1e`.
fn parse_catalog_row(row: &[Option<String>]) -> Option<TableMetadata> {
    let get = |i: usize| row.get(i).cloned().flatten();
    let schema = get(0)?;
    let name = get(1)?;
    let row_count = get(2).and_then(|s| s.parse::<f64>().ok()).filter(|v| *v >= 0.0);
    let last_modified = get(3)
        .and_then(|s| s.parse::<f64>().ok())
        .and_then(|secs| DateTime::from_timestamp_millis((secs * 1000.0) as i64));
    let columns = get(5)
        .unwrap_or_default()
        .split('\u{1e}')
        .filter(|s| !s.is_empty())
        .filter_map(|c| {
            let mut parts = c.split('\u{1f}');
            let name = parts.next()?.to_string();
            let data_type = parts.next().unwrap_or_default().to_string();
            let nullable = matches!(parts.next(), Some("true" | "YES" | "1" | "t"));
            Some(Column { name, data_type, nullable })
        })
        .collect();
    Some(TableMetadata {
        table: TableRef::new(schema, name),
        columns,
        row_count,
        row_count_exact: get(6).as_deref() == Some("exact"),
        last_modified,
        change_signature: get(4),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_rows_unpack_columns() {
        let row = vec![
            Some("public".into()),
            Some("orders".into()),
            Some("42".into()),
            None,
            Some("10:2:0".into()),
            Some("id\u{1f}bigint\u{1f}false\u{1e}note\u{1f}text\u{1f}true".into()),
            None,
        ];
        let m = parse_catalog_row(&row).unwrap();
        assert_eq!(m.table, TableRef::new("public", "orders"));
        assert_eq!(m.row_count, Some(42.0));
        assert_eq!(m.columns.len(), 2);
        assert!(!m.columns[0].nullable && m.columns[1].nullable);
        assert!(!m.row_count_exact);
    }
}
