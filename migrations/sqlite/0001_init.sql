-- telltale metric store, SQLite flavour. Times are unix milliseconds.
CREATE TABLE measurements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    asset       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    column_name TEXT    NOT NULL DEFAULT '',
    value       DOUBLE PRECISION NOT NULL,
    observed_at BIGINT  NOT NULL,
    check_name  TEXT    NOT NULL,
    UNIQUE (asset, kind, column_name, observed_at)
);
CREATE INDEX measurements_recent ON measurements (asset, observed_at);

CREATE TABLE measurement_errors (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    asset       TEXT    NOT NULL,
    check_name  TEXT    NOT NULL,
    error_class TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    occurred_at BIGINT  NOT NULL
);
CREATE INDEX measurement_errors_recent ON measurement_errors (asset, occurred_at);

CREATE TABLE schema_snapshots (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    asset       TEXT    NOT NULL,
    captured_at BIGINT  NOT NULL,
    fingerprint TEXT    NOT NULL,
    columns     TEXT    NOT NULL,
    changes     TEXT    NOT NULL
);
CREATE INDEX schema_snapshots_recent ON schema_snapshots (asset, captured_at);

CREATE TABLE asset_state (
    asset            TEXT PRIMARY KEY,
    change_signature TEXT,
    last_changed_at  BIGINT,
    change_observed  BIGINT NOT NULL DEFAULT 0,
    last_row_count   DOUBLE PRECISION,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE assets (
    asset         TEXT PRIMARY KEY,
    source        TEXT   NOT NULL,
    schema_name   TEXT   NOT NULL,
    table_name    TEXT   NOT NULL,
    origin        TEXT   NOT NULL,
    owner         TEXT,
    tier          BIGINT,
    tags          TEXT   NOT NULL DEFAULT '[]',
    check_file    TEXT,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL
);
