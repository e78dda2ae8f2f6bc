//! Lineage learned from OpenLineage events, in the store: datasets and jobs (by their OpenLineage
//! keys), `input → job → output` edges with the time they were last seen, and the last run of the
//! job writing each node. dbt manifests and check files are re-read at start, so only what
//! OpenLineage taught is kept here; a restart loads it back into the graph.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use super::{Backend, INSERT_CHUNK, Store, StoreError, from_ms, ms, placeholders};
use crate::catalog::openlineage::ColumnLineage;
use crate::catalog::{JobRun, Owner, RunState};

/// A dataset or job as OpenLineage named it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredNode {
    /// `namespace/name`, or `job:namespace/name`.
    pub key: String,
    /// `dataset` or `job`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub owner: Option<Owner>,
    pub column_lineage: Option<ColumnLineage>,
    pub updated_at: DateTime<Utc>,
}

/// `from → to`, by OpenLineage keys.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEdge {
    pub from: String,
    pub to: String,
    pub job: Option<String>,
    pub seen_at: DateTime<Utc>,
}

/// What one flush writes (or a load reads).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineageBatch {
    pub nodes: Vec<StoredNode>,
    pub edges: Vec<StoredEdge>,
    /// The last run of the job writing each node, by the node's key.
    pub runs: Vec<(String, JobRun)>,
}

impl LineageBatch {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.edges.is_empty() && self.runs.is_empty()
    }
    pub fn len(&self) -> usize {
        self.nodes.len() + self.edges.len() + self.runs.len()
    }
}

/// Joins an edge's keys when loading; an edge whose key holds it is not saved.
const KEY_SEPARATOR: char = '\u{1f}';

impl Store {
    /// Upserts learned lineage in one transaction: an edge keeps its newest `seen_at`, a node
    /// keeps an owner or column lineage a later batch does not repeat.
    pub async fn save_lineage(&self, batch: &LineageBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let backend = self.backend;
        let mut tx = self.pool.begin().await?;
        for chunk in batch.nodes.chunks(INSERT_CHUNK / 7) {
            let sql = format!(
                "INSERT INTO lineage_nodes (node_key, kind, namespace, name, owner, column_lineage, updated_at) VALUES {} \
                 ON CONFLICT (node_key) DO UPDATE SET owner = COALESCE(excluded.owner, lineage_nodes.owner), \
                 column_lineage = COALESCE(excluded.column_lineage, lineage_nodes.column_lineage), \
                 updated_at = excluded.updated_at",
                placeholders(backend, chunk.len(), 7)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for n in chunk {
                q = q
                    .bind(n.key.clone())
                    .bind(n.kind.clone())
                    .bind(n.namespace.clone())
                    .bind(n.name.clone())
                    .bind(n.owner.as_ref().and_then(|o| serde_json::to_string(o).ok()))
                    .bind(n.column_lineage.as_ref().and_then(|c| serde_json::to_string(c).ok()))
                    .bind(ms(n.updated_at));
            }
            q.execute(&mut *tx).await?;
        }
        let clean = |k: &str| !k.contains(KEY_SEPARATOR);
        let edges: Vec<&StoredEdge> = batch
            .edges
            .iter()
            .filter(|e| clean(&e.from) && clean(&e.to) && e.job.as_deref().is_none_or(clean))
            .collect();
        if edges.len() < batch.edges.len() {
            tracing::warn!(
                skipped = batch.edges.len() - edges.len(),
                "lineage edges with U+001F in a key are not saved"
            );
        }
        for chunk in edges.chunks(INSERT_CHUNK / 4) {
            let sql = format!(
                "INSERT INTO lineage_edges (from_key, to_key, job_key, seen_at) VALUES {} \
                 ON CONFLICT (from_key, to_key) DO UPDATE SET job_key = COALESCE(excluded.job_key, lineage_edges.job_key), \
                 seen_at = CASE WHEN excluded.seen_at > lineage_edges.seen_at THEN excluded.seen_at ELSE lineage_edges.seen_at END",
                placeholders(backend, chunk.len(), 4)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for e in chunk {
                q = q.bind(e.from.clone()).bind(e.to.clone()).bind(e.job.clone()).bind(ms(e.seen_at));
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in batch.runs.chunks(INSERT_CHUNK / 6) {
            let sql = format!(
                "INSERT INTO lineage_runs (node_key, job, run_id, state, at, message) VALUES {} \
                 ON CONFLICT (node_key) DO UPDATE SET job = excluded.job, run_id = excluded.run_id, \
                 state = excluded.state, at = excluded.at, message = excluded.message",
                placeholders(backend, chunk.len(), 6)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (key, run) in chunk {
                q = q
                    .bind(key.clone())
                    .bind(run.job.clone())
                    .bind(run.run_id.clone())
                    .bind(run.state.as_str())
                    .bind(ms(run.at))
                    .bind(run.message.clone());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Everything OpenLineage taught, to rebuild the graph at start.
    pub async fn load_lineage(&self) -> Result<LineageBatch, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("lineage {what}"));
        let mut batch = LineageBatch::default();
        let rows = sqlx::query(
            "SELECT node_key, kind, namespace, name, owner, column_lineage, updated_at FROM lineage_nodes ORDER BY node_key",
        )
        .fetch_all(&self.pool)
        .await?;
        batch.nodes.reserve(rows.len());
        for r in &rows {
            let owner: Option<String> = r.try_get(4)?;
            let columns: Option<String> = r.try_get(5)?;
            batch.nodes.push(StoredNode {
                key: r.try_get(0)?,
                kind: r.try_get(1)?,
                namespace: r.try_get(2)?,
                name: r.try_get(3)?,
                owner: owner.map(|o| serde_json::from_str(&o)).transpose().map_err(|_| corrupt("owner"))?,
                column_lineage: columns
                    .map(|c| serde_json::from_str(&c))
                    .transpose()
                    .map_err(|_| corrupt("column lineage"))?,
                updated_at: from_ms(r.try_get(6)?),
            });
        }
        drop(rows);
        // One text value per edge (keys joined by U+001F, which `save_lineage` keeps out of keys):
        // decoding values is most of a load's cost, and this decodes a quarter as many.
        let edges_sql = match self.backend {
            Backend::Sqlite => {
                "SELECT from_key || char(31) || to_key || char(31) || COALESCE(job_key, '') || char(31) || seen_at FROM lineage_edges"
            }
            Backend::Postgres => {
                "SELECT from_key || chr(31) || to_key || chr(31) || COALESCE(job_key, '') || chr(31) || seen_at::text FROM lineage_edges"
            }
        };
        let rows = sqlx::query(edges_sql).fetch_all(&self.pool).await?;
        batch.edges.reserve(rows.len());
        for r in &rows {
            let packed: String = r.try_get(0)?;
            let mut parts = packed.split(KEY_SEPARATOR);
            let (Some(from), Some(to), Some(job), Some(seen), None) =
                (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(corrupt("edge"));
            };
            batch.edges.push(StoredEdge {
                from: from.to_string(),
                to: to.to_string(),
                job: Some(job).filter(|j| !j.is_empty()).map(str::to_string),
                seen_at: from_ms(seen.parse().map_err(|_| corrupt("edge time"))?),
            });
        }
        drop(rows);
        let rows = sqlx::query("SELECT node_key, job, run_id, state, at, message FROM lineage_runs")
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            let state: String = r.try_get(3)?;
            batch.runs.push((
                r.try_get(0)?,
                JobRun {
                    job: r.try_get(1)?,
                    run_id: r.try_get(2)?,
                    state: RunState::parse(&state).ok_or_else(|| corrupt("run state"))?,
                    at: from_ms(r.try_get(4)?),
                    message: r.try_get(5)?,
                },
            ));
        }
        Ok(batch)
    }
}
