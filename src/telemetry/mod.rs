//! Observability out: telltale's own traces (OpenTelemetry, OTLP) and the Prometheus exposition
//! of data health and of telltale's work.
//!
//! - [`config`]: the `telemetry:` block of telltale.yaml and the `OTEL_*` variables (pure).
//! - [`otel`]: the tracer provider, batch processor and the `tracing` subscriber; flush on shutdown.
//! - [`otlp`]: the OTLP exporter, writing protobuf straight from the span records (HTTP and,
//!   through [`otlp_grpc`], gRPC).
//! - [`db`]: OpenTelemetry database client spans for warehouse queries (sanitized query text).
//! - [`http`]: W3C trace-context on API requests, client spans for outgoing HTTP, `/metrics`.
//! - [`spans`]: the spans of check runs, detection, incident updates and alert deliveries.
//! - [`metrics`]: the one registry declaring every metric, its updates and its documentation.
//!
//! Nothing here may block or fail a check: exports are queued and dropped when the queue is
//! full, metric updates are in-memory atomics.

pub mod config;
pub mod db;
pub mod http;
pub mod metrics;
pub mod otel;
pub mod otlp;
pub mod otlp_grpc;
pub mod spans;

pub use config::TelemetryConfig;
pub use otel::{Logging, Telemetry, init};
