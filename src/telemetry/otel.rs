//! The OpenTelemetry trace pipeline: telltale's OTLP exporter (gRPC or HTTP/protobuf,
//! [`super::otlp`]) behind a batch span processor on the tokio runtime, the tracer provider with its resource and sampler, and the
//! `tracing` subscriber that feeds it beside the log output.
//!
//! Export is fire-and-forget: spans go into the processor's bounded queue (dropped when full) and
//! are sent in the background with a deadline, so a slow or dead collector never delays a check.
//! [`Telemetry::shutdown`] flushes what is queued, bounded by the export timeout.

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler as SdkSampler, SdkTracerProvider};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::config::{Protocol, Sampler, TelemetryConfig, TraceSettings};
use super::otlp::{OtlpExporter, Transport};
use super::otlp_grpc::GrpcClient;

/// Why the exporter could not be built (traces stay off; the agent runs on).
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    #[error("cannot build the OTLP exporter for {endpoint}: {message}")]
    Exporter { endpoint: String, message: String },
    #[error("invalid OTLP header `{name}`")]
    Header { name: String },
}

/// What the process needs to keep until exit: the provider to flush on shutdown.
#[must_use = "call `shutdown` before the process exits so queued spans are sent"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// Failed exports counted by the exporter (see [`flush_warning`]).
    export_failures: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The export endpoint, for the startup log.
    pub endpoint: Option<String>,
}

impl Telemetry {
    /// No exporter (traces off).
    pub fn disabled() -> Telemetry {
        Telemetry { provider: None, export_failures: Default::default(), endpoint: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// A tracer for this pipeline (tests and benchmarks build their own subscriber with it).
    pub fn tracer(&self) -> Option<opentelemetry_sdk::trace::SdkTracer> {
        self.provider.as_ref().map(|p| p.tracer("telltale"))
    }

    /// Sends every queued span, then stops the exporter. Runs the blocking SDK shutdown off the
    /// async workers so the processor task can still make progress.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else { return };
        let before = self.export_failures.load(std::sync::atomic::Ordering::Relaxed);
        let result = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        let failed_during_flush = self.export_failures.load(std::sync::atomic::Ordering::Relaxed) - before;
        if let Some(line) = flush_warning(error, failed_during_flush) {
            eprintln!("{line}");
        }
    }
}

/// The line to print after a flush at shutdown: none when it succeeded, and none when it failed
/// because an export failed, which the exporter reported itself (or left silent within a minute
/// of its last report). A failed export used to print twice: the exporter's warning, then the
/// same error wrapped by the SDK's shutdown.
fn flush_warning(error: Option<String>, failed_exports_during_flush: u64) -> Option<String> {
    let error = error?;
    (failed_exports_during_flush == 0).then(|| format!("warning: flushing traces failed: {error}"))
}

/// Builds the exporter and provider for `settings` and registers it globally (with the W3C
/// trace-context and baggage propagators). Must run inside the tokio runtime.
pub fn pipeline(settings: &TraceSettings) -> Result<Telemetry, OtelError> {
    let exporter_error = |message: String| OtelError::Exporter { endpoint: settings.endpoint.clone(), message };
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &settings.headers {
        let key = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| OtelError::Header { name: name.clone() })?;
        let value =
            reqwest::header::HeaderValue::from_str(value).map_err(|_| OtelError::Header { name: name.clone() })?;
        headers.insert(key, value);
    }
    let transport = match settings.protocol {
        Protocol::Grpc => {
            let metadata = tonic::metadata::MetadataMap::from_headers(headers);
            Transport::Grpc(GrpcClient::new(&settings.endpoint, metadata, settings.timeout).map_err(exporter_error)?)
        }
        Protocol::HttpProtobuf => {
            let client = reqwest::Client::builder()
                .user_agent(concat!("telltale/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| exporter_error(e.to_string()))?;
            Transport::Http { client, endpoint: settings.endpoint.clone(), headers }
        }
    };
    let exporter = OtlpExporter::new(transport, settings.timeout);
    let export_failures = exporter.failures();
    let processor = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
        exporter,
        opentelemetry_sdk::runtime::Tokio,
    )
    .build();
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_attributes(settings.resource.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(sdk_sampler(settings.sampler))
        .with_resource(resource)
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(Telemetry { provider: Some(provider), export_failures, endpoint: Some(settings.endpoint.clone()) })
}

fn sdk_sampler(sampler: Sampler) -> SdkSampler {
    match sampler {
        Sampler::AlwaysOn => SdkSampler::AlwaysOn,
        Sampler::AlwaysOff => SdkSampler::AlwaysOff,
        Sampler::TraceIdRatio(r) => SdkSampler::TraceIdRatioBased(r),
        Sampler::ParentBasedAlwaysOn => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOff)),
        Sampler::ParentBasedTraceIdRatio(r) => SdkSampler::ParentBased(Box::new(SdkSampler::TraceIdRatioBased(r))),
    }
}

/// Sets the W3C `traceparent` + `baggage` propagators (`OTEL_PROPAGATORS` default).
pub fn install_propagators() {
    use opentelemetry::propagation::TextMapCompositePropagator;
    use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
}

/// Log output settings of the binary.
pub struct Logging {
    /// `RUST_LOG`-style filter for the log lines on stderr.
    pub filter: tracing_subscriber::EnvFilter,
    pub ansi: bool,
}

/// Installs the global subscriber: log lines on stderr (filtered by `logging.filter`) and, when
/// traces are configured, telltale's spans at INFO and above to the OTLP exporter (filtered
/// separately, so `--log warn` does not switch traces off). Exporter problems are logged and
/// leave traces off. Must run inside the tokio runtime.
pub fn init(logging: Logging, file: &TelemetryConfig) -> Telemetry {
    install_propagators();
    let (telemetry, problem) = match super::config::resolve(file, &|k| std::env::var(k).ok()) {
        Ok(Some(settings)) => match pipeline(&settings) {
            Ok(t) => (t, None),
            Err(e) => (Telemetry::disabled(), Some(e.to_string())),
        },
        Ok(None) => (Telemetry::disabled(), None),
        Err(e) => (Telemetry::disabled(), Some(e.to_string())),
    };
    let otel = telemetry.tracer().map(layer);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(logging.ansi)
        .with_writer(std::io::stderr)
        .with_filter(logging.filter);
    let _ = tracing_subscriber::registry().with(fmt).with(otel).try_init();
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
    if let Some(endpoint) = &telemetry.endpoint {
        tracing::info!(endpoint = %crate::secret::redact_url(endpoint), "exporting traces over OTLP");
    }
    telemetry
}

/// The `tracing` → OpenTelemetry layer for `tracer`, filtered to telltale's spans. Per-span
/// extras that cost time on every span and say little here (busy/idle timing, thread, source
/// location, target) are off, and so is activating the OpenTelemetry context on every enter of
/// a span (every poll of an instrumented future): telltale reads a span's context explicitly
/// where it propagates it (`telemetry::http::inject`), and parents come from the span tree.
pub fn layer<S>(tracer: opentelemetry_sdk::trace::SdkTracer) -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_target(false)
        .with_context_activation(false)
        .with_filter(trace_filter())
}

/// Which spans are exported: telltale's own at INFO and above.
pub fn trace_filter() -> tracing_subscriber::filter::Targets {
    tracing_subscriber::filter::Targets::new().with_target("telltale", tracing::Level::INFO)
}

#[cfg(test)]
mod tests {
    use super::flush_warning;

    #[test]
    fn a_failed_flush_is_reported_once() {
        assert_eq!(flush_warning(None, 0), None, "a successful flush says nothing");
        assert_eq!(flush_warning(None, 2), None);
        // The exporter already printed why the last batch was dropped.
        assert_eq!(flush_warning(Some("Shutdown errors: [InternalFailure(\"no answer\")]".into()), 1), None);
        // A failure of the processor itself (no export failed) is still reported.
        assert_eq!(
            flush_warning(Some("shutdown timed out".into()), 0).as_deref(),
            Some("warning: flushing traces failed: shutdown timed out")
        );
    }
}
