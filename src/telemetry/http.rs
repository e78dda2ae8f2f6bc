//! HTTP in and out: a SERVER span per API request that continues the caller's W3C trace context
//! (`traceparent`, `baggage`), CLIENT spans for telltale's own outgoing requests (alert
//! deliveries) with the context injected, and the `/metrics` endpoint.
//!
//! [`trace_requests`] is router-wide middleware: any route added to `api::router` is traced
//! without further wiring. Probes and `/metrics` are not traced (they would drown real work).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opentelemetry::propagation::{Extractor, Injector};
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Paths that get no span.
const UNTRACED: &[&str] = &["/metrics", "/healthz", "/readyz"];

struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut reqwest::header::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (reqwest::header::HeaderName::from_bytes(key.as_bytes()), reqwest::header::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

/// Middleware: one SERVER span per request, child of the incoming trace context if any.
pub async fn trace_requests(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if UNTRACED.contains(&path.as_str()) {
        return next.run(request).await;
    }
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let method = request.method().to_string();
    let name = match &route {
        Some(r) => format!("{method} {r}"),
        None => method.clone(),
    };
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
    let span = tracing::info_span!(
        "http request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = Empty,
        url.path = %path,
        http.response.status_code = Empty,
        error.type = Empty,
    );
    if let Some(r) = &route {
        span.record("http.route", r.as_str());
    }
    // Without an exporter there is no OpenTelemetry context to attach; that is fine.
    let _ = span.set_parent(parent);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("error.type", status.as_str());
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// A CLIENT span for one outgoing request to `url`; `url_full` is what the span shows of it (the
/// caller redacts tokens and credentials).
pub fn client_span(method: &str, url: &str, url_full: &str, channel: &str) -> tracing::Span {
    let (address, port) = host_and_port(url);
    let span = tracing::info_span!(
        "http client",
        otel.name = %method,
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = %method,
        url.full = %url_full,
        server.address = %address,
        server.port = port,
        http.response.status_code = Empty,
        error.type = Empty,
        telltale.channel = %channel,
    );
    span
}

fn host_and_port(url: &str) -> (String, u16) {
    let https = url.starts_with("https://");
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.parse().unwrap_or_default()),
        _ => (authority.to_string(), if https { 443 } else { 80 }),
    }
}

/// Adds `traceparent` (and `baggage`) for `span` to outgoing headers.
pub fn inject(span: &tracing::Span, headers: &mut reqwest::header::HeaderMap) {
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut HeaderInjector(headers)));
}

/// Records the answer (or the failure) on a client span.
pub fn record_response(span: &tracing::Span, status: Option<u16>, error_type: Option<&str>) {
    if let Some(s) = status {
        span.record("http.response.status_code", s);
        if s >= 400 {
            span.record("error.type", s.to_string().as_str());
            span.record("otel.status_code", "ERROR");
        }
    }
    if let Some(e) = error_type {
        span.record("error.type", e);
        span.record("otel.status_code", "ERROR");
    }
}

/// `GET /metrics`: the in-memory exposition, OpenMetrics when the scraper accepts it (Prometheus
/// does), else the classic text format 0.0.4. No store query on this path: the incident-derived
/// gauges are kept current by [`super::metrics::refresh_loop`], which the scrape wakes for next
/// time.
pub async fn metrics(headers: axum::http::HeaderMap) -> Response {
    let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (content_type, body) = if accept.contains("application/openmetrics-text") {
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", super::metrics::global().encode())
    } else {
        ("text/plain; version=0.0.4; charset=utf-8", super::metrics::global().encode_text())
    };
    super::metrics::request_refresh();
    ([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_spans_name_the_server() {
        assert_eq!(host_and_port("https://hooks.slack.com/services/T/B/x"), ("hooks.slack.com".into(), 443));
        assert_eq!(host_and_port("http://user:pw@127.0.0.1:8081/hook?x=1"), ("127.0.0.1".into(), 8081));
    }
}
