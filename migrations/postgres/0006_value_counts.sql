-- Value frequencies of the columns a check watches for category shifts: one row per value per
-- profile; `category` NULL holds the rows of every value beyond the most frequent ones.
CREATE TABLE value_counts (
    asset       TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    column_name TEXT   NOT NULL,
    observed_at BIGINT NOT NULL,
    category    TEXT,
    row_count   BIGINT NOT NULL
);
CREATE INDEX value_counts_series ON value_counts (asset, kind, column_name, observed_at);
