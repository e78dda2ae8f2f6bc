-- Detector verdicts (one per judged point) and user labels on series.
CREATE TABLE verdicts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    asset         TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    column_name   TEXT    NOT NULL DEFAULT '',
    observed_at   BIGINT  NOT NULL,
    value         DOUBLE PRECISION NOT NULL,
    score         DOUBLE PRECISION NOT NULL,
    expected_low  DOUBLE PRECISION,
    expected_high DOUBLE PRECISION,
    forecast      DOUBLE PRECISION,
    anomaly       BIGINT  NOT NULL,
    alert         BIGINT  NOT NULL,
    status        TEXT    NOT NULL,
    explanation   TEXT    NOT NULL,
    UNIQUE (asset, kind, column_name, observed_at)
);
CREATE INDEX verdicts_anomalies ON verdicts (asset, anomaly, observed_at);

CREATE TABLE labels (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    asset       TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    column_name TEXT   NOT NULL DEFAULT '',
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    label       TEXT   NOT NULL,
    note        TEXT,
    created_by  TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX labels_series ON labels (asset, kind, column_name);
