-- Incidents, their history, and the durable outbox of notifications.
CREATE TABLE incidents (
    id              TEXT PRIMARY KEY,
    incident_key    TEXT   NOT NULL,
    member_keys     TEXT   NOT NULL,
    asset           TEXT   NOT NULL,
    source          TEXT   NOT NULL,
    monitor         TEXT   NOT NULL,
    column_name     TEXT   NOT NULL DEFAULT '',
    severity        BIGINT NOT NULL,
    status          TEXT   NOT NULL,
    title           TEXT   NOT NULL,
    explanation     TEXT   NOT NULL,
    observed        DOUBLE PRECISION,
    expected_low    DOUBLE PRECISION,
    expected_high   DOUBLE PRECISION,
    score           DOUBLE PRECISION,
    owner           TEXT,
    tier            BIGINT,
    tags            TEXT   NOT NULL DEFAULT '[]',
    first_bad_at    BIGINT NOT NULL,
    detected_at     BIGINT NOT NULL,
    acknowledged_at BIGINT,
    resolved_at     BIGINT,
    updated_at      BIGINT NOT NULL,
    healthy_streak  BIGINT NOT NULL DEFAULT 0,
    bad_count       BIGINT NOT NULL DEFAULT 1,
    last_notified_at BIGINT,
    acknowledged_by TEXT,
    resolved_by     TEXT
);
CREATE INDEX incidents_by_asset ON incidents (asset, status);
CREATE INDEX incidents_by_time ON incidents (detected_at);

CREATE TABLE incident_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    actor       TEXT,
    note        TEXT,
    detail      TEXT
);
CREATE INDEX incident_events_by_incident ON incident_events (incident_id, at);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    incident_id     TEXT   NOT NULL,
    channel         TEXT   NOT NULL,
    event           TEXT   NOT NULL,
    payload         TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT,
    remote_id       TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_incident ON outbox (incident_id);
