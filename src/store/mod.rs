//! The metric store: measurement history, measurement errors, schema snapshots, per-asset change
//! state, the asset list, and the value frequencies and samples of profiled columns (the trailing
//! week that `category_shift` and `distribution_shift` compare with), in embedded SQLite
//! (default) or PostgreSQL (teams).
//!
//! One implementation serves both through sqlx's `Any` driver: the schema uses only portable
//! types (text, bigint unix milliseconds, double precision) and `$n` placeholders, and each backend
//! has its own migration directory under `migrations/`. The same test suite runs against both.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Executor, Row};

mod incidents;
mod lineage;

pub use incidents::{IncidentEvent, IncidentFilter, OutboxEntry};
pub use lineage::{LineageBatch, LineagePruned, LoadedEdge, LoadedLineage, StoredEdge, StoredNode};

use crate::measure::{AssetId, Column, Measurement, MetricKind, SchemaChange, ValueCounts};
use crate::secret::redact_url;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Rows per multi-row INSERT (SQLite allows 32 766 bound parameters).
const INSERT_CHUNK: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the metric store at {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot create the store directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("migrating the metric store failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("metric store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("corrupt value in the metric store: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// A failed measurement attempt, kept so the API can say why an asset has no fresh data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorRecord {
    pub asset: AssetId,
    pub check: String,
    pub class: String,
    pub message: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaSnapshot {
    pub captured_at: DateTime<Utc>,
    pub columns: Vec<Column>,
    /// Changes from the previous snapshot (empty for the first).
    pub changes: Vec<SchemaChange>,
}

/// What the agent remembers between polls to infer freshness from change counters.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetState {
    pub change_signature: Option<String>,
    pub last_changed_at: Option<DateTime<Utc>>,
    /// False while `last_changed_at` is only "first seen unchanged" (a lower bound).
    pub change_observed: bool,
    pub last_row_count: Option<f64>,
}

/// Everything one metadata scan writes, saved in one transaction.
#[derive(Debug, Clone, Default)]
pub struct MetadataBatch {
    pub at: DateTime<Utc>,
    pub assets: Vec<AssetRecord>,
    pub states: Vec<(AssetId, AssetState)>,
    /// New snapshots only: first sightings and changed schemas.
    pub snapshots: Vec<(AssetId, Vec<Column>, Vec<SchemaChange>)>,
    pub measurements: Vec<Measurement>,
}

/// A watched table as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetRecord {
    pub asset: AssetId,
    pub source: String,
    pub schema: String,
    pub table: String,
    /// `check` (from a check file) or `discovered` (auto-discovery).
    pub origin: String,
    pub owner: Option<String>,
    pub tier: Option<u8>,
    pub tags: Vec<String>,
    pub check_file: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

impl Store {
    /// Opens (creating a SQLite file and its directory if needed) and migrates.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let connect_url = match backend {
            Backend::Sqlite => {
                let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                if path != ":memory:"
                    && let Some(dir) = Path::new(path).parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir)
                        .map_err(|source| StoreError::Directory { path: dir.display().to_string(), source })?;
                }
                if url.contains('?') { url.to_string() } else { format!("sqlite://{path}?mode=rwc") }
            }
            Backend::Postgres => url.to_string(),
        };
        let options = sqlx::any::AnyConnectOptions::from_str(&connect_url)
            .map_err(|source| StoreError::Open { url: redact_url(url), source })?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(15))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { url: redact_url(url), source })?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Saves measurements; a measurement of the same asset, kind, column and time replaces the old
    /// one, so backfills and retries are idempotent.
    pub async fn record(&self, measurements: &[Measurement]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_measurements(self.backend, &mut tx, measurements).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Saves one profile's value frequencies of a column (replacing any saved at the same time).
    pub async fn record_value_counts(
        &self,
        asset: &AssetId,
        kind: MetricKind,
        column: &str,
        at: DateTime<Utc>,
        counts: &ValueCounts,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM value_counts WHERE asset = $1 AND kind = $2 AND column_name = $3 AND observed_at = $4",
        )
        .bind(asset.as_str().to_string())
        .bind(kind.as_str())
        .bind(column.to_string())
        .bind(ms(at))
        .execute(&mut *tx)
        .await?;
        let rows: Vec<(Option<&str>, u64)> = counts
            .values
            .iter()
            .map(|(v, n)| (Some(v.as_str()), *n))
            .chain((counts.rest > 0).then_some((None, counts.rest)))
            .collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO value_counts (asset, kind, column_name, observed_at, category, row_count) VALUES {}",
                placeholders(self.backend, chunk.len(), 6)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (value, n) in chunk {
                q = q
                    .bind(asset.as_str().to_string())
                    .bind(kind.as_str())
                    .bind(column.to_string())
                    .bind(ms(at))
                    .bind(value.map(str::to_string))
                    .bind(i64::try_from(*n).unwrap_or(i64::MAX));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a column's saved frequency tables or samples older than `since`, and all but the
    /// newest `keep` of the rest; returns rows deleted.
    pub async fn trim_value_counts(
        &self,
        asset: &AssetId,
        kind: MetricKind,
        column: &str,
        since: DateTime<Utc>,
        keep: usize,
    ) -> Result<u64, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM value_counts WHERE asset = $1 AND kind = $2 AND column_name = $3 AND (observed_at < $4 OR observed_at < \
             (SELECT coalesce(min(observed_at), 0) FROM (SELECT DISTINCT observed_at FROM value_counts \
               WHERE asset = $1 AND kind = $2 AND column_name = $3 ORDER BY observed_at DESC LIMIT $5) newest))",
        )
        .bind(asset.as_str().to_string())
        .bind(kind.as_str())
        .bind(column.to_string())
        .bind(ms(since))
        .bind(keep as i64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(deleted)
    }

    /// The value frequencies of a column saved in `[since, before)`, oldest first.
    pub async fn value_count_history(
        &self,
        asset: &AssetId,
        kind: MetricKind,
        column: &str,
        since: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, ValueCounts)>, StoreError> {
        let rows = sqlx::query(
            "SELECT observed_at, category, row_count FROM value_counts \
             WHERE asset = $1 AND kind = $2 AND column_name = $3 AND observed_at >= $4 AND observed_at < $5 \
             ORDER BY observed_at, row_count DESC, category",
        )
        .bind(asset.as_str().to_string())
        .bind(kind.as_str())
        .bind(column.to_string())
        .bind(ms(since))
        .bind(ms(before))
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<(DateTime<Utc>, ValueCounts)> = Vec::new();
        for r in &rows {
            let at = from_ms(r.try_get(0)?);
            let value: Option<String> = r.try_get(1)?;
            let n = r.try_get::<i64, _>(2)?.max(0) as u64;
            if out.last().is_none_or(|(t, _)| *t != at) {
                out.push((at, ValueCounts::default()));
            }
            let frame = &mut out.last_mut().expect("pushed above").1;
            match value {
                Some(v) => frame.values.push((v, n)),
                None => frame.rest += n,
            }
        }
        Ok(out)
    }

    /// The newest verdict of one series, if any.
    pub async fn last_verdict(
        &self,
        asset: &AssetId,
        kind: MetricKind,
        column: &str,
    ) -> Result<Option<(DateTime<Utc>, bool)>, StoreError> {
        let row = sqlx::query(
            "SELECT observed_at, anomaly FROM verdicts WHERE asset = $1 AND kind = $2 AND column_name = $3 \
             ORDER BY observed_at DESC LIMIT 1",
        )
        .bind(asset.as_str().to_string())
        .bind(kind.as_str())
        .bind(column.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((from_ms(r.try_get(0)?), r.try_get::<i64, _>(1)? != 0))).transpose()
    }

    /// Saves everything one metadata scan learned about a source, in one transaction.
    pub async fn save_metadata(&self, batch: &MetadataBatch) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in batch.assets.chunks(INSERT_CHUNK / 2) {
            let sql = format!(
                "INSERT INTO assets (asset, source, schema_name, table_name, origin, owner, tier, tags, check_file, first_seen_at, last_seen_at) \
                 VALUES {} ON CONFLICT (asset) DO UPDATE SET origin = excluded.origin, owner = excluded.owner, tier = excluded.tier, \
                 tags = excluded.tags, check_file = excluded.check_file, last_seen_at = excluded.last_seen_at",
                placeholders(self.backend, chunk.len(), 11)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(r.asset.as_str().to_string())
                    .bind(r.source.clone())
                    .bind(r.schema.clone())
                    .bind(r.table.clone())
                    .bind(r.origin.clone())
                    .bind(r.owner.clone())
                    .bind(r.tier.map(i64::from))
                    .bind(serde_json::to_string(&r.tags).unwrap_or_else(|_| "[]".into()))
                    .bind(r.check_file.clone())
                    .bind(ms(r.first_seen_at))
                    .bind(ms(r.last_seen_at));
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in batch.states.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO asset_state (asset, change_signature, last_changed_at, change_observed, last_row_count, updated_at) \
                 VALUES {} ON CONFLICT (asset) DO UPDATE SET change_signature = excluded.change_signature, \
                 last_changed_at = excluded.last_changed_at, change_observed = excluded.change_observed, \
                 last_row_count = excluded.last_row_count, updated_at = excluded.updated_at",
                placeholders(self.backend, chunk.len(), 6)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (asset, state) in chunk {
                q = q
                    .bind(asset.as_str().to_string())
                    .bind(state.change_signature.clone())
                    .bind(state.last_changed_at.map(ms))
                    .bind(i64::from(state.change_observed))
                    .bind(state.last_row_count)
                    .bind(ms(batch.at));
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in batch.snapshots.chunks(INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO schema_snapshots (asset, captured_at, fingerprint, columns, changes) VALUES {}",
                placeholders(self.backend, chunk.len(), 5)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (asset, columns, changes) in chunk {
                q = q
                    .bind(asset.as_str().to_string())
                    .bind(ms(batch.at))
                    .bind(crate::measure::schema_fingerprint(columns))
                    .bind(serde_json::to_string(columns).unwrap_or_default())
                    .bind(serde_json::to_string(changes).unwrap_or_default());
            }
            q.execute(&mut *tx).await?;
        }
        insert_measurements(self.backend, &mut tx, &batch.measurements).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The change-inference state of every asset of a source.
    pub async fn asset_states(&self, source: &str) -> Result<HashMap<AssetId, AssetState>, StoreError> {
        let prefix = format!("{source}.");
        let rows = sqlx::query(
            "SELECT asset, change_signature, last_changed_at, change_observed, last_row_count FROM asset_state \
             WHERE substr(asset, 1, CAST($1 AS INTEGER)) = $2",
        )
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0)?.parse().map_err(StoreError::Corrupt)?,
                    AssetState {
                        change_signature: r.try_get(1)?,
                        last_changed_at: r.try_get::<Option<i64>, _>(2)?.map(from_ms),
                        change_observed: r.try_get::<i64, _>(3)? != 0,
                        last_row_count: r.try_get(4)?,
                    },
                ))
            })
            .collect()
    }

    /// The newest schema snapshot of every asset of a source.
    pub async fn latest_schemas(&self, source: &str) -> Result<HashMap<AssetId, Vec<Column>>, StoreError> {
        let prefix = format!("{source}.");
        let rows = sqlx::query(
            "SELECT s.asset, s.columns FROM schema_snapshots s \
             JOIN (SELECT asset, max(id) AS id FROM schema_snapshots WHERE substr(asset, 1, CAST($1 AS INTEGER)) = $2 GROUP BY asset) l \
               ON s.id = l.id",
        )
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let asset: AssetId = r.try_get::<String, _>(0)?.parse().map_err(StoreError::Corrupt)?;
                let columns = serde_json::from_str(&r.try_get::<String, _>(1)?)
                    .map_err(|e| StoreError::Corrupt(format!("schema snapshot of {asset}: {e}")))?;
                Ok((asset, columns))
            })
            .collect()
    }

    pub async fn record_error(&self, error: &ErrorRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO measurement_errors (asset, check_name, error_class, message, occurred_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(error.asset.as_str().to_string())
        .bind(error.check.clone())
        .bind(error.class.clone())
        .bind(error.message.clone())
        .bind(ms(error.occurred_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// History of one asset, oldest first, optionally narrowed by kind, column and start time.
    pub async fn history(
        &self,
        asset: &AssetId,
        kind: Option<MetricKind>,
        column: Option<&str>,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<Measurement>, StoreError> {
        let rows = sqlx::query(
            "SELECT asset, kind, column_name, value, observed_at, check_name FROM measurements \
             WHERE asset = $1 AND ($2 = '' OR kind = $2) AND ($3 = '*' OR column_name = $3) AND observed_at >= $4 \
             ORDER BY observed_at DESC, kind, column_name LIMIT $5",
        )
        .bind(asset.as_str().to_string())
        .bind(kind.map(|k| k.as_str()).unwrap_or(""))
        .bind(column.unwrap_or("*").to_string())
        .bind(since.map(ms).unwrap_or(i64::MIN))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows.iter().map(measurement_from_row).collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// The newest value of every (kind, column) of an asset.
    pub async fn latest(&self, asset: &AssetId) -> Result<Vec<Measurement>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.asset, m.kind, m.column_name, m.value, m.observed_at, m.check_name FROM measurements m \
             JOIN (SELECT kind, column_name, max(observed_at) AS t FROM measurements WHERE asset = $1 GROUP BY kind, column_name) l \
               ON m.kind = l.kind AND m.column_name = l.column_name AND m.observed_at = l.t \
             WHERE m.asset = $1 ORDER BY m.kind, m.column_name",
        )
        .bind(asset.as_str().to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(measurement_from_row).collect()
    }

    pub async fn last_error(&self, asset: &AssetId) -> Result<Option<ErrorRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT asset, check_name, error_class, message, occurred_at FROM measurement_errors \
             WHERE asset = $1 ORDER BY occurred_at DESC, id DESC LIMIT 1",
        )
        .bind(asset.as_str().to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ErrorRecord {
                asset: r.try_get::<String, _>(0)?.parse().map_err(StoreError::Corrupt)?,
                check: r.try_get(1)?,
                class: r.try_get(2)?,
                message: r.try_get(3)?,
                occurred_at: from_ms(r.try_get(4)?),
            })
        })
        .transpose()
    }

    pub async fn errors_since(&self, since: DateTime<Utc>) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query("SELECT count(*) FROM measurement_errors WHERE occurred_at >= $1")
            .bind(ms(since))
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(n as usize)
    }

    pub async fn schema_history(&self, asset: &AssetId, limit: usize) -> Result<Vec<SchemaSnapshot>, StoreError> {
        let rows = sqlx::query(
            "SELECT captured_at, columns, changes FROM schema_snapshots WHERE asset = $1 ORDER BY captured_at DESC, id DESC LIMIT $2",
        )
        .bind(asset.as_str().to_string())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("schema snapshot of {asset}: {e}"));
                Ok(SchemaSnapshot {
                    captured_at: from_ms(r.try_get(0)?),
                    columns: serde_json::from_str(&r.try_get::<String, _>(1)?).map_err(corrupt)?,
                    changes: serde_json::from_str(&r.try_get::<String, _>(2)?).map_err(corrupt)?,
                })
            })
            .collect()
    }

    /// Saves verdicts (one per judged point; a re-judged point replaces its verdict).
    pub async fn record_verdicts(&self, verdicts: &[VerdictRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in verdicts.chunks(INSERT_CHUNK / 2) {
            let sql = format!(
                "INSERT INTO verdicts (asset, kind, column_name, observed_at, value, score, expected_low, expected_high, forecast, \
                 anomaly, alert, status, explanation) VALUES {} ON CONFLICT (asset, kind, column_name, observed_at) DO UPDATE SET \
                 value = excluded.value, score = excluded.score, expected_low = excluded.expected_low, \
                 expected_high = excluded.expected_high, forecast = excluded.forecast, anomaly = excluded.anomaly, \
                 alert = excluded.alert, status = excluded.status, explanation = excluded.explanation",
                placeholders(self.backend, chunk.len(), 13)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for v in chunk {
                q = q
                    .bind(v.asset.as_str().to_string())
                    .bind(v.kind.as_str())
                    .bind(v.column.clone())
                    .bind(ms(v.observed_at))
                    .bind(v.value)
                    .bind(v.score)
                    .bind(v.expected_low)
                    .bind(v.expected_high)
                    .bind(v.forecast)
                    .bind(i64::from(v.anomaly))
                    .bind(i64::from(v.alert))
                    .bind(v.status.clone())
                    .bind(v.explanation.clone());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Verdicts of one asset, oldest first.
    pub async fn verdicts(
        &self,
        asset: &AssetId,
        since: Option<DateTime<Utc>>,
        anomalies_only: bool,
        limit: usize,
    ) -> Result<Vec<VerdictRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT asset, kind, column_name, observed_at, value, score, expected_low, expected_high, forecast, anomaly, alert, \
             status, explanation FROM verdicts WHERE asset = $1 AND observed_at >= $2 AND anomaly >= $3 \
             ORDER BY observed_at DESC, kind, column_name LIMIT $4",
        )
        .bind(asset.as_str().to_string())
        .bind(since.map(ms).unwrap_or(i64::MIN))
        .bind(i64::from(anomalies_only))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(VerdictRecord {
                    asset: r.try_get::<String, _>(0)?.parse().map_err(StoreError::Corrupt)?,
                    kind: r.try_get::<String, _>(1)?.parse().map_err(StoreError::Corrupt)?,
                    column: r.try_get(2)?,
                    observed_at: from_ms(r.try_get(3)?),
                    value: r.try_get(4)?,
                    score: r.try_get(5)?,
                    expected_low: r.try_get(6)?,
                    expected_high: r.try_get(7)?,
                    forecast: r.try_get(8)?,
                    anomaly: r.try_get::<i64, _>(9)? != 0,
                    alert: r.try_get::<i64, _>(10)? != 0,
                    status: r.try_get(11)?,
                    explanation: r.try_get(12)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.reverse();
        Ok(out)
    }

    pub async fn add_label(&self, label: &LabelRecord, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO labels (asset, kind, column_name, starts_at, ends_at, label, note, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(label.asset.as_str().to_string())
        .bind(label.kind.as_str())
        .bind(label.column.clone())
        .bind(ms(label.starts_at))
        .bind(ms(label.ends_at))
        .bind(label.label.clone())
        .bind(label.note.clone())
        .bind(label.created_by.clone())
        .bind(ms(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Labels on one series (`kind` + `column`) of an asset.
    pub async fn labels(
        &self,
        asset: &AssetId,
        kind: MetricKind,
        column: &str,
    ) -> Result<Vec<LabelRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT starts_at, ends_at, label, note, created_by FROM labels WHERE asset = $1 AND kind = $2 AND column_name = $3 \
             ORDER BY starts_at",
        )
        .bind(asset.as_str().to_string())
        .bind(kind.as_str())
        .bind(column.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LabelRecord {
                    asset: asset.clone(),
                    kind,
                    column: column.to_string(),
                    starts_at: from_ms(r.try_get(0)?),
                    ends_at: from_ms(r.try_get(1)?),
                    label: r.try_get(2)?,
                    note: r.try_get(3)?,
                    created_by: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Deletes measurements, verdicts, value frequencies and errors older than `before`; returns
    /// rows deleted.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for table in ["measurements", "verdicts", "value_counts"] {
            deleted += sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE observed_at < $1")))
                .bind(ms(before))
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        deleted += sqlx::query("DELETE FROM measurement_errors WHERE occurred_at < $1")
            .bind(ms(before))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted)
    }

    pub async fn assets(&self) -> Result<Vec<AssetRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT asset, source, schema_name, table_name, origin, owner, tier, tags, check_file, first_seen_at, last_seen_at \
             FROM assets ORDER BY asset",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(asset_from_row).collect()
    }

    pub async fn asset(&self, asset: &AssetId) -> Result<Option<AssetRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT asset, source, schema_name, table_name, origin, owner, tier, tags, check_file, first_seen_at, last_seen_at \
             FROM assets WHERE asset = $1",
        )
        .bind(asset.as_str().to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(asset_from_row).transpose()
    }
}

/// `(?, ?, …), (…)` (SQLite) or `($1, $2, …), (…)` (PostgreSQL) for a multi-row VALUES list.
/// SQLite resolves numbered parameters by name, which costs time quadratic in their number:
/// plain `?` binds a 3 000-parameter statement 30× faster.
fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns)
                .map(|c| match backend {
                    Backend::Sqlite => "?".to_string(),
                    Backend::Postgres => format!("${}", r * columns + c),
                })
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn insert_measurements(
    backend: Backend,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    measurements: &[Measurement],
) -> Result<(), StoreError> {
    for chunk in measurements.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO measurements (asset, kind, column_name, value, observed_at, check_name) VALUES {} \
             ON CONFLICT (asset, kind, column_name, observed_at) DO UPDATE SET value = excluded.value, check_name = excluded.check_name",
            placeholders(backend, chunk.len(), 6)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for m in chunk {
            q = q
                .bind(m.asset.as_str().to_string())
                .bind(m.kind.as_str())
                .bind(m.column.clone())
                .bind(m.value)
                .bind(ms(m.observed_at))
                .bind(m.check.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A stored detector verdict, as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictRecord {
    pub asset: AssetId,
    pub kind: MetricKind,
    pub column: String,
    pub observed_at: DateTime<Utc>,
    pub value: f64,
    pub score: f64,
    pub expected_low: Option<f64>,
    pub expected_high: Option<f64>,
    pub forecast: Option<f64>,
    pub anomaly: bool,
    pub alert: bool,
    pub status: String,
    pub explanation: String,
}

/// A user's statement about a stretch of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelRecord {
    pub asset: AssetId,
    pub kind: MetricKind,
    pub column: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `expected` (re-baseline) or `confirmed_incident` (never train on it).
    pub label: String,
    pub note: Option<String>,
    pub created_by: Option<String>,
}

fn measurement_from_row(r: &AnyRow) -> Result<Measurement, StoreError> {
    Ok(Measurement {
        asset: r.try_get::<String, _>(0)?.parse().map_err(StoreError::Corrupt)?,
        kind: r.try_get::<String, _>(1)?.parse().map_err(StoreError::Corrupt)?,
        column: r.try_get(2)?,
        value: r.try_get(3)?,
        observed_at: from_ms(r.try_get(4)?),
        check: r.try_get(5)?,
    })
}

fn asset_from_row(r: &AnyRow) -> Result<AssetRecord, StoreError> {
    Ok(AssetRecord {
        asset: r.try_get::<String, _>(0)?.parse().map_err(StoreError::Corrupt)?,
        source: r.try_get(1)?,
        schema: r.try_get(2)?,
        table: r.try_get(3)?,
        origin: r.try_get(4)?,
        owner: r.try_get(5)?,
        tier: r.try_get::<Option<i64>, _>(6)?.map(|t| t as u8),
        tags: serde_json::from_str(&r.try_get::<String, _>(7)?).unwrap_or_default(),
        check_file: r.try_get(8)?,
        first_seen_at: from_ms(r.try_get(9)?),
        last_seen_at: from_ms(r.try_get(10)?),
    })
}
