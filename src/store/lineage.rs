//! Lineage learned from OpenLineage events, in the store: datasets and jobs (by their OpenLineage
//! keys, each with an integer id), `input → job → output` edges between node ids with the time they
//! were last seen, and the last run of the job writing each node. dbt manifests and check files
//! are re-read at start, so only what OpenLineage taught is kept here; a restart loads it back into
//! the graph ([`Store::load_lineage`]), and [`Store::prune_lineage`] forgets what was not seen for
//! `lineage.retention`.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

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

/// A stored edge as a load reads it: node ids of [`LoadedLineage::nodes`], no strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedEdge {
    pub from: i64,
    pub to: i64,
    pub job: Option<i64>,
    /// Unix milliseconds.
    pub seen_ms: i64,
}

/// Everything a load reads: nodes with their store ids, edges between those ids, runs by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedLineage {
    pub nodes: Vec<(i64, StoredNode)>,
    pub edges: Vec<LoadedEdge>,
    pub runs: Vec<(String, JobRun)>,
}

/// What [`Store::prune_lineage`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LineagePruned {
    pub edges: u64,
    pub runs: u64,
    pub nodes: u64,
}

impl LineagePruned {
    pub fn total(&self) -> u64 {
        self.edges + self.runs + self.nodes
    }
}

impl Store {
    /// Upserts learned lineage in one transaction: an edge keeps its newest `seen_at`, a node
    /// keeps an owner or column lineage a later batch does not repeat. Edges refer to nodes by id:
    /// the batch's nodes are upserted first (their ids come back), ids of other keys are looked up,
    /// and an edge whose key has no node row is skipped.
    pub async fn save_lineage(&self, batch: &LineageBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let backend = self.backend;
        let mut tx = self.pool.begin().await?;
        let mut ids: HashMap<String, i64> = HashMap::with_capacity(batch.nodes.len());
        for chunk in batch.nodes.chunks(INSERT_CHUNK / 7) {
            let sql = format!(
                "INSERT INTO lineage_nodes (node_key, kind, namespace, name, owner, column_lineage, updated_at) VALUES {} \
                 ON CONFLICT (node_key) DO UPDATE SET owner = COALESCE(excluded.owner, lineage_nodes.owner), \
                 column_lineage = COALESCE(excluded.column_lineage, lineage_nodes.column_lineage), \
                 updated_at = excluded.updated_at RETURNING id, node_key",
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
            for row in q.fetch_all(&mut *tx).await? {
                ids.insert(row.try_get(1)?, row.try_get(0)?);
            }
        }
        let mut unknown: Vec<&str> = batch
            .edges
            .iter()
            .flat_map(|e| [Some(e.from.as_str()), Some(e.to.as_str()), e.job.as_deref()])
            .flatten()
            .filter(|k| !ids.contains_key(*k))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        for chunk in unknown.chunks(INSERT_CHUNK) {
            let list = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT id, node_key FROM lineage_nodes WHERE node_key IN ({list})");
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for key in chunk {
                q = q.bind(key.to_string());
            }
            for row in q.fetch_all(&mut *tx).await? {
                ids.insert(row.try_get(1)?, row.try_get(0)?);
            }
        }
        let mut edges = Vec::with_capacity(batch.edges.len());
        for e in &batch.edges {
            let job = match &e.job {
                Some(j) => ids.get(j).copied(),
                None => None,
            };
            if let (Some(&from), Some(&to)) = (ids.get(&e.from), ids.get(&e.to)) {
                edges.push((from, to, job, ms(e.seen_at)));
            }
        }
        if edges.len() < batch.edges.len() {
            tracing::warn!(
                skipped = batch.edges.len() - edges.len(),
                "lineage edges whose nodes are not stored are not saved"
            );
        }
        for chunk in edges.chunks(INSERT_CHUNK / 4) {
            let sql = format!(
                "INSERT INTO lineage_edges (from_id, to_id, job_id, seen_at) VALUES {} \
                 ON CONFLICT (from_id, to_id) DO UPDATE SET job_id = COALESCE(excluded.job_id, lineage_edges.job_id), \
                 seen_at = CASE WHEN excluded.seen_at > lineage_edges.seen_at THEN excluded.seen_at ELSE lineage_edges.seen_at END",
                placeholders(backend, chunk.len(), 4)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for &(from, to, job, seen) in chunk {
                q = q.bind(from).bind(to).bind(job).bind(seen);
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

    /// Everything OpenLineage taught, to rebuild the graph at start. Nodes, edges and runs are
    /// read at the same time on separate connections; edges are four integers each.
    pub async fn load_lineage(&self) -> Result<LoadedLineage, StoreError> {
        let (nodes, edges, runs) = tokio::try_join!(self.load_nodes(), self.load_edges(), self.load_runs())?;
        Ok(LoadedLineage { nodes, edges, runs })
    }

    async fn load_nodes(&self) -> Result<Vec<(i64, StoredNode)>, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("lineage {what}"));
        let rows = sqlx::query(
            "SELECT id, node_key, kind, namespace, name, owner, column_lineage, updated_at FROM lineage_nodes ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut nodes = Vec::with_capacity(rows.len());
        for r in &rows {
            let owner: Option<String> = r.try_get(5)?;
            let columns: Option<String> = r.try_get(6)?;
            nodes.push((
                r.try_get(0)?,
                StoredNode {
                    key: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    namespace: r.try_get(3)?,
                    name: r.try_get(4)?,
                    owner: owner.map(|o| serde_json::from_str(&o)).transpose().map_err(|_| corrupt("owner"))?,
                    column_lineage: columns
                        .map(|c| serde_json::from_str(&c))
                        .transpose()
                        .map_err(|_| corrupt("column lineage"))?,
                    updated_at: from_ms(r.try_get(7)?),
                },
            ));
        }
        Ok(nodes)
    }

    async fn load_edges(&self) -> Result<Vec<LoadedEdge>, StoreError> {
        if self.backend == Backend::Sqlite {
            return self.load_edges_packed().await;
        }
        let rows =
            sqlx::query("SELECT from_id, to_id, job_id, seen_at FROM lineage_edges").fetch_all(&self.pool).await?;
        let mut edges = Vec::with_capacity(rows.len());
        for r in &rows {
            edges.push(LoadedEdge {
                from: r.try_get(0)?,
                to: r.try_get(1)?,
                job: r.try_get(2)?,
                seen_ms: r.try_get(3)?,
            });
        }
        Ok(edges)
    }

    /// SQLite: edges read as packed text, one row per range of [`EDGE_ID_RANGE`] source ids
    /// (`from,to,job,seen;…`, built by SQLite's `group_concat` over the clustered primary key).
    /// Through sqlx's `Any` driver each row costs far more than its four integers; a few hundred
    /// packed rows parse in a fraction of the time (see docs/benchmarks.md, lineage).
    async fn load_edges_packed(&self) -> Result<Vec<LoadedEdge>, StoreError> {
        let bounds = sqlx::query("SELECT MIN(from_id), MAX(from_id) FROM lineage_edges").fetch_one(&self.pool).await?;
        let (Some(mut start), Some(max_id)) =
            (bounds.try_get::<Option<i64>, _>(0)?, bounds.try_get::<Option<i64>, _>(1)?)
        else {
            return Ok(Vec::new());
        };
        let mut edges = Vec::new();
        while start <= max_id {
            let end = start.saturating_add(EDGE_ID_RANGE);
            let row = sqlx::query(
                "SELECT group_concat(from_id || ',' || to_id || ',' || ifnull(job_id, '') || ',' || seen_at, ';') \
                 FROM lineage_edges WHERE from_id >= $1 AND from_id < $2",
            )
            .bind(start)
            .bind(end)
            .fetch_one(&self.pool)
            .await?;
            if let Some(packed) = row.try_get::<Option<String>, _>(0)? {
                parse_packed_edges(&packed, &mut edges)?;
            }
            start = end;
        }
        Ok(edges)
    }

    async fn load_runs(&self) -> Result<Vec<(String, JobRun)>, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("lineage {what}"));
        let rows = sqlx::query("SELECT node_key, job, run_id, state, at, message FROM lineage_runs")
            .fetch_all(&self.pool)
            .await?;
        let mut runs = Vec::with_capacity(rows.len());
        for r in &rows {
            let state: String = r.try_get(3)?;
            runs.push((
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
        Ok(runs)
    }

    /// Retention of learned lineage: deletes edges last seen before `before`, runs that ended
    /// before it, then nodes updated before it that no edge or run refers to any more.
    pub async fn prune_lineage(&self, before: DateTime<Utc>) -> Result<LineagePruned, StoreError> {
        let cutoff = ms(before);
        let mut tx = self.pool.begin().await?;
        let edges = sqlx::query("DELETE FROM lineage_edges WHERE seen_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let runs =
            sqlx::query("DELETE FROM lineage_runs WHERE at < $1").bind(cutoff).execute(&mut *tx).await?.rows_affected();
        // Nodes nothing refers to any more. PostgreSQL plans NOT EXISTS as hash anti-joins; SQLite
        // evaluates an uncorrelated NOT IN once into a temporary index (edges have no index on
        // `to_id` or `job_id` for a correlated subquery to use).
        let sql = match self.backend {
            Backend::Postgres => {
                "DELETE FROM lineage_nodes n WHERE n.updated_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM lineage_edges e WHERE e.from_id = n.id) \
                 AND NOT EXISTS (SELECT 1 FROM lineage_edges e WHERE e.to_id = n.id) \
                 AND NOT EXISTS (SELECT 1 FROM lineage_edges e WHERE e.job_id = n.id) \
                 AND NOT EXISTS (SELECT 1 FROM lineage_runs r WHERE r.node_key = n.node_key)"
            }
            Backend::Sqlite => {
                "DELETE FROM lineage_nodes WHERE updated_at < $1 \
                 AND id NOT IN (SELECT from_id FROM lineage_edges UNION SELECT to_id FROM lineage_edges \
                 UNION SELECT job_id FROM lineage_edges WHERE job_id IS NOT NULL) \
                 AND node_key NOT IN (SELECT node_key FROM lineage_runs)"
            }
        };
        let nodes = sqlx::query(sql).bind(cutoff).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(LineagePruned { edges, runs, nodes })
    }
}

/// Source ids per packed edge row on SQLite: with ~5 edges per node, ~40,000 edges (~1 MB) a row.
const EDGE_ID_RANGE: i64 = 8192;

/// Appends the edges of one `from,to,job,seen;…` text (job empty when none).
fn parse_packed_edges(packed: &str, out: &mut Vec<LoadedEdge>) -> Result<(), StoreError> {
    let corrupt = || StoreError::Corrupt("lineage edge".to_owned());
    for edge in packed.split(';') {
        let mut fields = edge.split(',');
        let mut next = || fields.next().ok_or_else(corrupt);
        let from = next()?.parse().map_err(|_| corrupt())?;
        let to = next()?.parse().map_err(|_| corrupt())?;
        let job = match next()? {
            "" => None,
            id => Some(id.parse().map_err(|_| corrupt())?),
        };
        let seen_ms = next()?.parse().map_err(|_| corrupt())?;
        out.push(LoadedEdge { from, to, job, seen_ms });
    }
    Ok(())
}
