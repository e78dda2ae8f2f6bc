-- Integer node ids: edges reference their nodes by id instead of repeating both keys, so a load
-- reads four integers per edge (500,000 edges: tens of MB of text less) and a save writes less.
-- Existing rows are carried over; an edge whose key has no node row (never written by telltale)
-- could not be loaded before either and is dropped.
CREATE TABLE lineage_nodes_v5 (
    id             INTEGER PRIMARY KEY,
    node_key       TEXT   NOT NULL UNIQUE,
    kind           TEXT   NOT NULL,
    namespace      TEXT   NOT NULL,
    name           TEXT   NOT NULL,
    owner          TEXT,
    column_lineage TEXT,
    updated_at     BIGINT NOT NULL
);
INSERT INTO lineage_nodes_v5 (node_key, kind, namespace, name, owner, column_lineage, updated_at)
    SELECT node_key, kind, namespace, name, owner, column_lineage, updated_at FROM lineage_nodes ORDER BY node_key;

CREATE TABLE lineage_edges_v5 (
    from_id BIGINT NOT NULL,
    to_id   BIGINT NOT NULL,
    job_id  BIGINT,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (from_id, to_id)
) WITHOUT ROWID;
INSERT INTO lineage_edges_v5 (from_id, to_id, job_id, seen_at)
    SELECT f.id, t.id, j.id, e.seen_at
    FROM lineage_edges e
    JOIN lineage_nodes_v5 f ON f.node_key = e.from_key
    JOIN lineage_nodes_v5 t ON t.node_key = e.to_key
    LEFT JOIN lineage_nodes_v5 j ON j.node_key = e.job_key;

DROP TABLE lineage_edges;
DROP TABLE lineage_nodes;
ALTER TABLE lineage_nodes_v5 RENAME TO lineage_nodes;
ALTER TABLE lineage_edges_v5 RENAME TO lineage_edges;
