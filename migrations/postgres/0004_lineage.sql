-- Lineage learned from OpenLineage events, kept across restarts (dbt manifests and check files
-- are re-read at start). Keys are OpenLineage's: `namespace/name` for datasets, `job:namespace/name`.
CREATE TABLE lineage_nodes (
    node_key       TEXT PRIMARY KEY,
    kind           TEXT   NOT NULL,
    namespace      TEXT   NOT NULL,
    name           TEXT   NOT NULL,
    owner          TEXT,
    column_lineage TEXT,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE lineage_edges (
    from_key TEXT   NOT NULL,
    to_key   TEXT   NOT NULL,
    job_key  TEXT,
    seen_at  BIGINT NOT NULL,
    PRIMARY KEY (from_key, to_key)
);

-- The last run of the job writing each node (START/COMPLETE/FAIL…), per node.
CREATE TABLE lineage_runs (
    node_key TEXT PRIMARY KEY,
    job      TEXT   NOT NULL,
    run_id   TEXT   NOT NULL,
    state    TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    message  TEXT
);
