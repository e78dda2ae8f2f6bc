//! Integration tests: one binary, one module per area. Tests that need PostgreSQL or MariaDB read
//! `TELLTALE_TEST_POSTGRES_URL` / `TELLTALE_TEST_MYSQL_URL` (set by `scripts/test`); without them
//! they skip, except under `CI=true` where a missing server is a failure.

mod alert;
mod api;
mod catalog;
mod common;
mod config_files;
mod daemon;
mod dbt_state;
mod demo;
mod detection;
mod gate;
mod incidents;
mod lake;
mod lineage;
mod mysql;
mod outbox;
mod postgres;
mod report;
mod scheduler;
mod shifts;
mod sqlite;
mod store;
mod telemetry;
