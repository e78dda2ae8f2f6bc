//! telltale: a data-observability agent.
//!
//! It watches warehouse tables for the four pillars of data health (freshness, volume, schema and
//! distribution), keeps the history in a metric store and serves it over HTTP. Module map and
//! dependency rules: `docs/ARCHITECTURE.md`.

pub mod alert;
pub mod api;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod detect;
pub mod incident;
pub mod measure;
pub mod report;
pub mod runtime;
pub mod schedule;
pub mod secret;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod yaml;
