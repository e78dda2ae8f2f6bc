//! OTLP trace export without intermediate protobuf structs: a batch of finished spans is written
//! straight into the bytes of an `ExportTraceServiceRequest` (OTLP 1.x, `trace/v1/trace.proto`)
//! in one pass, and sent as OTLP/HTTP protobuf (`POST …/v1/traces`, with retries of the
//! retryable answers within the export deadline) or as the body of the OTLP/gRPC `Export` call.
//!
//! The SDK's exporters first convert every span into the generated protobuf types (cloning each
//! string), then encode them, computing nested lengths again at every level, then free them: half
//! of what a span cost telltale (docs/telemetry.md, "Tracing overhead"). Here each nested
//! message is written in place after a one-byte length, widened only when it is longer than 127
//! bytes. The output decodes to exactly what the SDK's conversion produces (tested against
//! `opentelemetry-proto`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// `SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`: the exporter knows whether the parent is remote.
const HAS_IS_REMOTE: u32 = 0x100;
/// `SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`.
const IS_REMOTE: u32 = 0x200;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from((field << 3) | wire));
}

/// A length-delimited field (string or bytes); proto3 leaves an empty one out.
fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_bytes_always(out, field, bytes);
    }
}

/// A length-delimited field written even when empty (a `oneof` member is always present).
fn put_bytes_always(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_tag(out, field, VARINT);
        put_varint(out, v);
    }
}

fn put_fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_tag(out, field, FIXED64);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_fixed32(out: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        put_tag(out, field, FIXED32);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A nested message: `write` appends its fields after a one-byte length, which is widened (and
/// the message moved) only when the message is longer than 127 bytes.
fn put_message(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    put_tag(out, field, LEN);
    let at = out.len();
    out.push(0);
    write(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, len as u64);
        out.splice(at..at + 1, prefix);
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
}

/// `common.v1.AnyValue`.
fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => put_bytes_always(out, 1, s.as_str().as_bytes()),
        Value::Bool(b) => {
            put_tag(out, 2, VARINT);
            put_varint(out, u64::from(*b));
        }
        Value::I64(i) => {
            put_tag(out, 3, VARINT);
            put_varint(out, *i as u64);
        }
        Value::F64(f) => {
            put_tag(out, 4, FIXED64);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Array(array) => put_message(out, 5, |out| put_array(out, array)),
        // A kind of value newer than this encoder: its text.
        other => put_bytes_always(out, 1, other.to_string().as_bytes()),
    }
}

/// `common.v1.ArrayValue`: `values` (1) as AnyValues.
fn put_array(out: &mut Vec<u8>, array: &Array) {
    match array {
        Array::Bool(v) => v.iter().for_each(|&b| put_message(out, 1, |o| put_value(o, &Value::Bool(b)))),
        Array::I64(v) => v.iter().for_each(|&i| put_message(out, 1, |o| put_value(o, &Value::I64(i)))),
        Array::F64(v) => v.iter().for_each(|&f| put_message(out, 1, |o| put_value(o, &Value::F64(f)))),
        Array::String(v) => {
            v.iter().for_each(|s| put_message(out, 1, |o| put_bytes_always(o, 1, s.as_str().as_bytes())))
        }
        other => put_message(out, 1, |o| put_bytes_always(o, 1, other.to_string().as_bytes())),
    }
}

/// Repeated `common.v1.KeyValue` in `field`.
fn put_attributes<'a>(out: &mut Vec<u8>, field: u32, attributes: impl IntoIterator<Item = &'a KeyValue>) {
    for kv in attributes {
        put_message(out, field, |out| {
            put_bytes(out, 1, kv.key.as_str().as_bytes());
            put_message(out, 2, |out| put_value(out, &kv.value));
        });
    }
}

/// `resource.v1.Resource`.
fn put_resource(out: &mut Vec<u8>, resource: &Resource) {
    for (key, value) in resource.iter() {
        put_message(out, 1, |out| {
            put_bytes(out, 1, key.as_str().as_bytes());
            put_message(out, 2, |out| put_value(out, value));
        });
    }
}

/// `common.v1.InstrumentationScope`.
fn put_scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    put_bytes(out, 1, scope.name().as_bytes());
    put_bytes(out, 2, scope.version().unwrap_or_default().as_bytes());
    put_attributes(out, 3, scope.attributes());
}

fn span_flags(trace_flags: u8, remote: bool) -> u32 {
    u32::from(trace_flags) | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}

fn kind_number(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// `trace.v1.Span`.
fn put_span(out: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    put_bytes(out, 1, &context.trace_id().to_bytes());
    put_bytes(out, 2, &context.span_id().to_bytes());
    let state = context.trace_state().header();
    put_bytes(out, 3, state.as_bytes());
    if span.parent_span_id != SpanId::INVALID {
        put_bytes(out, 4, &span.parent_span_id.to_bytes());
    }
    put_bytes(out, 5, span.name.as_bytes());
    put_uint(out, 6, kind_number(&span.span_kind));
    put_fixed64(out, 7, nanos(span.start_time));
    put_fixed64(out, 8, nanos(span.end_time));
    put_attributes(out, 9, &span.attributes);
    put_uint(out, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        put_message(out, 11, |out| {
            put_fixed64(out, 1, nanos(event.timestamp));
            put_bytes(out, 2, event.name.as_bytes());
            put_attributes(out, 3, &event.attributes);
            put_uint(out, 4, u64::from(event.dropped_attributes_count));
        });
    }
    put_uint(out, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        put_message(out, 13, |out| {
            let context = &link.span_context;
            put_bytes(out, 1, &context.trace_id().to_bytes());
            put_bytes(out, 2, &context.span_id().to_bytes());
            put_bytes(out, 3, context.trace_state().header().as_bytes());
            put_attributes(out, 4, &link.attributes);
            put_uint(out, 5, u64::from(link.dropped_attributes_count));
            put_fixed32(out, 6, span_flags(context.trace_flags().to_u8(), context.is_remote()));
        });
    }
    put_uint(out, 14, u64::from(span.links.dropped_count));
    put_message(out, 15, |out| {
        let (code, message) = match &span.status {
            Status::Unset => (0, ""),
            Status::Ok => (1, ""),
            Status::Error { description } => (2, description.as_ref()),
        };
        put_bytes(out, 2, message.as_bytes());
        put_uint(out, 3, code);
    });
    put_fixed32(out, 16, span_flags(context.trace_flags().to_u8(), span.parent_span_is_remote));
}

/// The resource part of every request, encoded once per resource.
#[derive(Debug, Clone, Default)]
pub struct EncodedResource {
    /// The fields of `resource.v1.Resource`.
    resource: Vec<u8>,
    schema_url: Option<String>,
}

impl EncodedResource {
    pub fn new(resource: &Resource) -> EncodedResource {
        let mut bytes = Vec::new();
        put_resource(&mut bytes, resource);
        EncodedResource { resource: bytes, schema_url: resource.schema_url().map(str::to_string) }
    }
}

/// The bytes of an `ExportTraceServiceRequest` carrying `spans`: one `ResourceSpans`, its spans
/// grouped by instrumentation scope in the order the scopes first appear.
pub fn encode_request(resource: &EncodedResource, spans: &[SpanData]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + spans.len() * 384);
    put_message(&mut out, 1, |out| {
        put_message(out, 1, |out| out.extend_from_slice(&resource.resource));
        let mut done = vec![false; spans.len()];
        for first in 0..spans.len() {
            if done[first] {
                continue;
            }
            let scope = &spans[first].instrumentation_scope;
            put_message(out, 2, |out| {
                put_message(out, 1, |out| put_scope(out, scope));
                for (i, span) in spans.iter().enumerate().skip(first) {
                    if !done[i] && span.instrumentation_scope == *scope {
                        done[i] = true;
                        put_message(out, 2, |out| put_span(out, span));
                    }
                }
                put_bytes(out, 3, scope.schema_url().unwrap_or_default().as_bytes());
            });
        }
        put_bytes(out, 3, resource.schema_url.as_deref().unwrap_or_default().as_bytes());
    });
    out
}

/// Reads an `ExportTraceServiceResponse`'s `partial_success` (1): rejected spans (1) and the
/// message (2). `None` when the collector accepted everything.
pub fn partial_success(body: &[u8]) -> Option<(i64, String)> {
    let mut rejected = 0i64;
    let mut message = String::new();
    let inner = field_bytes(body, 1)?;
    let mut rest = inner;
    while let Some((field, wire, value, next)) = read_field(rest) {
        match (field, wire, value) {
            (1, VARINT, Field::Varint(v)) => rejected = v as i64,
            (2, LEN, Field::Bytes(b)) => message = String::from_utf8_lossy(b).into_owned(),
            _ => {}
        }
        rest = next;
    }
    (rejected > 0 || !message.is_empty()).then_some((rejected, message))
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((v, &bytes[i + 1..]));
        }
    }
    None
}

fn read_field(bytes: &[u8]) -> Option<(u32, u32, Field<'_>, &[u8])> {
    if bytes.is_empty() {
        return None;
    }
    let (tag, rest) = read_varint(bytes)?;
    let (field, wire) = ((tag >> 3) as u32, (tag & 7) as u32);
    match wire {
        VARINT => read_varint(rest).map(|(v, r)| (field, wire, Field::Varint(v), r)),
        FIXED64 => (rest.len() >= 8).then(|| (field, wire, Field::Fixed, &rest[8..])),
        FIXED32 => (rest.len() >= 4).then(|| (field, wire, Field::Fixed, &rest[4..])),
        LEN => {
            let (len, rest) = read_varint(rest)?;
            let len = usize::try_from(len).ok()?;
            (rest.len() >= len).then(|| (field, wire, Field::Bytes(&rest[..len]), &rest[len..]))
        }
        _ => None,
    }
}

fn field_bytes(mut bytes: &[u8], wanted: u32) -> Option<&[u8]> {
    while let Some((field, _, value, rest)) = read_field(bytes) {
        if let (true, Field::Bytes(b)) = (field == wanted, value) {
            return Some(b);
        }
        bytes = rest;
    }
    None
}

/// Where and how batches are sent.
#[derive(Debug, Clone)]
pub enum Transport {
    /// OTLP/HTTP: `POST` of `application/x-protobuf` to the full `…/v1/traces` URL.
    Http { client: reqwest::Client, endpoint: String, headers: reqwest::header::HeaderMap },
    /// OTLP/gRPC: the `TraceService/Export` unary call.
    Grpc(super::otlp_grpc::GrpcClient),
}

/// The span exporter behind the batch processor: encodes each batch with [`encode_request`] and
/// sends it with [`Transport`], retrying answers the OTLP specification calls retryable (HTTP 429,
/// 502, 503, 504 and connection failures; gRPC `UNAVAILABLE`, `RESOURCE_EXHAUSTED` and the like)
/// with a growing pause while the export deadline allows.
#[derive(Debug)]
pub struct OtlpExporter {
    transport: Transport,
    timeout: Duration,
    resource: EncodedResource,
    /// When a failed export was last reported on the log (at most one line a minute).
    last_warning: std::sync::Mutex<Option<Instant>>,
    /// Failed exports so far (reported or not), shared with [`super::otel::Telemetry`] so that
    /// a flush at shutdown does not report the same failure a second time.
    failures: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// How one attempt ended.
pub enum Attempt {
    /// Accepted; the body of the collector's answer.
    Done(bytes::Bytes),
    /// Worth another try, after at least the given pause when the collector asked for one.
    Retry(String, Option<Duration>),
    Failed(String),
}

impl OtlpExporter {
    pub fn new(transport: Transport, timeout: Duration) -> OtlpExporter {
        OtlpExporter {
            transport,
            timeout,
            resource: EncodedResource::default(),
            last_warning: std::sync::Mutex::new(None),
            failures: std::sync::Arc::default(),
        }
    }

    /// The count of failed exports, which stays readable after the exporter moved into the
    /// batch processor.
    pub fn failures(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        std::sync::Arc::clone(&self.failures)
    }

    async fn attempt(&self, body: &bytes::Bytes, remaining: Duration) -> Attempt {
        match &self.transport {
            Transport::Http { client, endpoint, headers } => {
                let request = client
                    .post(endpoint)
                    .timeout(remaining)
                    .headers(headers.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(body.clone());
                match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let retry_after = response
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        let body = response.bytes().await.unwrap_or_default();
                        if status.is_success() {
                            Attempt::Done(body)
                        } else {
                            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                            let message = format!("collector answered {status}: {}", text.trim());
                            match status.as_u16() {
                                429 | 502 | 503 | 504 => Attempt::Retry(message, retry_after),
                                _ => Attempt::Failed(message),
                            }
                        }
                    }
                    Err(e) if e.is_timeout() => Attempt::Failed(format!("no answer within the deadline: {e}")),
                    Err(e) => Attempt::Retry(format!("cannot reach the collector: {e}"), None),
                }
            }
            Transport::Grpc(client) => client.export(body.clone(), remaining).await,
        }
    }

    /// Report a failed export (at most one line a minute) and count it.
    fn fail(&self, message: &str) {
        self.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.warn(message);
    }

    fn warn(&self, message: &str) {
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *last = Some(Instant::now());
            eprintln!("warning: exporting traces failed (spans of this batch dropped): {message}");
        }
    }
}

impl SpanExporter for OtlpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let body = bytes::Bytes::from(encode_request(&self.resource, &batch));
        drop(batch);
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(100);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                self.fail("no answer within the deadline");
                return Err(OTelSdkError::Timeout(self.timeout));
            }
            match self.attempt(&body, remaining).await {
                Attempt::Done(answer) => {
                    if let Some((rejected, message)) = partial_success(&answer) {
                        self.warn(&format!("the collector rejected {rejected} spans: {message}"));
                    }
                    return Ok(());
                }
                Attempt::Failed(message) => {
                    self.fail(&message);
                    return Err(OTelSdkError::InternalFailure(message));
                }
                Attempt::Retry(message, asked) => {
                    let wait = asked.unwrap_or(pause).max(pause);
                    if Instant::now() + wait >= deadline {
                        self.fail(&message);
                        return Err(OTelSdkError::InternalFailure(message));
                    }
                    tokio::time::sleep(wait).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = EncodedResource::new(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use opentelemetry::trace::{SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use proptest::prelude::*;
    use prost::Message;

    use super::*;

    fn span(i: u64, attributes: Vec<KeyValue>, scope: &InstrumentationScope) -> SpanData {
        let trace_id = TraceId::from_bytes((u128::from(i) * 0x9E37_79B9_7F4A_7C15 + 1).to_be_bytes());
        let state = if i.is_multiple_of(3) {
            TraceState::from_key_value([("vendor", "x1")]).unwrap()
        } else {
            TraceState::NONE
        };
        let flags = if i.is_multiple_of(2) { TraceFlags::SAMPLED } else { TraceFlags::default() };
        let context = SpanContext::new(trace_id, SpanId::from_bytes((i + 1).to_be_bytes()), flags, false, state);
        let mut events = SpanEvents::default();
        if i % 4 == 1 {
            events.events.push(opentelemetry::trace::Event::new(
                "incident opened",
                UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789 + i),
                vec![KeyValue::new("incident", "inc-1"), KeyValue::new("level", "info")],
                1,
            ));
            events.dropped_count = 2;
        }
        let mut links = SpanLinks::default();
        if i % 5 == 2 {
            let linked =
                SpanContext::new(trace_id, SpanId::from_bytes([7; 8]), TraceFlags::SAMPLED, true, TraceState::NONE);
            links.links.push(opentelemetry::trace::Link::new(linked, vec![KeyValue::new("why", "caller")], 0));
        }
        SpanData {
            span_context: context,
            parent_span_id: if i % 3 == 1 { SpanId::INVALID } else { SpanId::from_bytes((i + 1000).to_be_bytes()) },
            parent_span_is_remote: i % 7 == 3,
            span_kind: [SpanKind::Internal, SpanKind::Client, SpanKind::Server, SpanKind::Producer, SpanKind::Consumer]
                [(i % 5) as usize]
                .clone(),
            name: Cow::Owned(format!("SELECT public.t{i}")),
            start_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + i * 1000),
            end_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_500_000 + i * 1000),
            attributes,
            dropped_attributes_count: (i % 2) as u32,
            events,
            links,
            status: match i % 3 {
                0 => Status::Unset,
                1 => Status::Ok,
                _ => Status::error(format!("timeout on t{i}")),
            },
            instrumentation_scope: scope.clone(),
        }
    }

    fn reference(resource: &Resource, spans: Vec<SpanData>) -> ExportTraceServiceRequest {
        let resource = ResourceAttributesWithSchema::from(resource);
        ExportTraceServiceRequest { resource_spans: group_spans_by_resource_and_scope(spans, &resource) }
    }

    fn ours(resource: &Resource, spans: &[SpanData]) -> ExportTraceServiceRequest {
        let bytes = encode_request(&EncodedResource::new(resource), spans);
        ExportTraceServiceRequest::decode(bytes.as_slice()).expect("our bytes decode as OTLP")
    }

    fn resource() -> Resource {
        Resource::builder_empty()
            .with_attributes([KeyValue::new("service.name", "telltale"), KeyValue::new("host.cores", 2)])
            .with_schema_url(Vec::<KeyValue>::new(), "https://opentelemetry.io/schemas/1.30.0")
            .build()
    }

    #[test]
    fn a_batch_decodes_to_what_the_sdk_conversion_produces() {
        let telltale = InstrumentationScope::builder("telltale").with_version("0.1.0").build();
        let other = InstrumentationScope::builder("other")
            .with_schema_url("https://example.com/schema")
            .with_attributes([KeyValue::new("scope.attr", true)])
            .build();
        let long = "x".repeat(5000);
        let spans: Vec<SpanData> = (0..40)
            .map(|i| {
                let attributes = vec![
                    KeyValue::new("db.system.name", "postgresql"),
                    KeyValue::new("db.response.returned_rows", i as i64 * 1_000_003 - 7),
                    KeyValue::new("negative", -(i as i64)),
                    KeyValue::new("ratio", 0.25 * i as f64),
                    KeyValue::new("anomaly", i % 2 == 0),
                    KeyValue::new("empty", ""),
                    KeyValue::new("db.query.text", if i == 3 { long.clone() } else { format!("select {i}") }),
                    KeyValue::new("list", Value::Array(Array::I64(vec![1, -2, 3]))),
                    KeyValue::new("names", Value::Array(Array::String(vec!["a".into(), "".into()]))),
                    KeyValue::new("flags", Value::Array(Array::Bool(vec![true, false]))),
                    KeyValue::new("floats", Value::Array(Array::F64(vec![1.5, -0.0]))),
                ];
                span(i, attributes, if i % 4 == 3 { &other } else { &telltale })
            })
            .collect();
        let resource = resource();
        assert_eq!(ours(&resource, &spans), reference(&resource, spans));
    }

    #[test]
    fn an_empty_batch_and_an_empty_resource_are_still_one_resource_spans() {
        let resource = Resource::builder_empty().build();
        assert_eq!(ours(&resource, &[]), reference(&resource, vec![]));
    }

    proptest! {
        #[test]
        fn any_attribute_values_round_trip(
            strings in proptest::collection::vec(".{0,300}", 0..6),
            ints in proptest::collection::vec(any::<i64>(), 0..6),
            floats in proptest::collection::vec(any::<f64>().prop_filter("NaN is not equal to itself", |f| !f.is_nan()), 0..6),
            name in ".{0,200}",
        ) {
            let mut attributes = Vec::new();
            for (i, s) in strings.iter().enumerate() {
                attributes.push(KeyValue::new(format!("s{i}"), s.clone()));
            }
            for (i, v) in ints.iter().enumerate() {
                attributes.push(KeyValue::new(format!("i{i}"), *v));
            }
            for (i, v) in floats.iter().enumerate() {
                attributes.push(KeyValue::new(format!("f{i}"), *v));
            }
            let scope = InstrumentationScope::builder("telltale").build();
            let mut one = span(1, attributes, &scope);
            one.name = Cow::Owned(name);
            let resource = resource();
            prop_assert_eq!(ours(&resource, std::slice::from_ref(&one)), reference(&resource, vec![one]));
        }
    }

    /// An OTLP/HTTP receiver on loopback answering each request with the next status of
    /// `answers` (then 200), keeping the bodies it got.
    async fn receiver(answers: Vec<u16>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
        use std::sync::{Arc, Mutex};
        let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let seen = bodies.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: bytes::Bytes| {
                let seen = seen.clone();
                let answers = answers.clone();
                async move {
                    let mut seen = seen.lock().unwrap();
                    let status = answers.get(seen.len()).copied().unwrap_or(200);
                    seen.push(body.to_vec());
                    (axum::http::StatusCode::from_u16(status).unwrap(), "")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{address}/v1/traces"), bodies)
    }

    fn http_exporter(endpoint: String, timeout: Duration) -> OtlpExporter {
        let transport = Transport::Http { client: reqwest::Client::new(), endpoint, headers: Default::default() };
        let mut exporter = OtlpExporter::new(transport, timeout);
        exporter.set_resource(&resource());
        exporter
    }

    #[tokio::test]
    async fn a_busy_collector_gets_the_same_batch_again_and_a_rejecting_one_does_not() {
        let scope = InstrumentationScope::builder("telltale").build();
        let batch = || vec![span(1, vec![KeyValue::new("asset", "shop.orders")], &scope)];

        let (endpoint, bodies) = receiver(vec![503, 429]).await;
        let exporter = http_exporter(endpoint, Duration::from_secs(5));
        exporter.export(batch()).await.expect("delivered on the third attempt");
        assert_eq!(exporter.failures().load(std::sync::atomic::Ordering::Relaxed), 0, "retries are not failures");
        let bodies = bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 3, "two retryable answers, then accepted");
        assert!(bodies.iter().all(|b| *b == bodies[0]), "every attempt carries the same request");
        let request = ExportTraceServiceRequest::decode(bodies[0].as_slice()).unwrap();
        assert_eq!(request.resource_spans[0].scope_spans[0].spans[0].name, "SELECT public.t1");

        let (endpoint, bodies) = receiver(vec![400]).await;
        let exporter = http_exporter(endpoint, Duration::from_secs(5));
        assert!(exporter.export(batch()).await.is_err(), "a rejected batch is an error");
        assert_eq!(bodies.lock().unwrap().len(), 1, "a 400 is not retried");
        assert_eq!(exporter.failures().load(std::sync::atomic::Ordering::Relaxed), 1, "the failure is counted");

        // Always busy: retries stop at the deadline.
        let (endpoint, bodies) = receiver(vec![503; 100]).await;
        let exporter = http_exporter(endpoint, Duration::from_millis(700));
        let started = Instant::now();
        assert!(exporter.export(batch()).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(2), "gave up after {:?}", started.elapsed());
        let attempts = bodies.lock().unwrap().len();
        assert!((2..=4).contains(&attempts), "{attempts} attempts within 700 ms (pauses of 100, 200, 400 ms)");
        assert_eq!(
            exporter.failures().load(std::sync::atomic::Ordering::Relaxed),
            1,
            "one failed export, counted once"
        );
    }

    #[test]
    fn a_partial_success_is_read_and_a_full_success_is_none() {
        use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 3, error_message: "too old".into() }),
        };
        assert_eq!(partial_success(&partial.encode_to_vec()), Some((3, "too old".to_string())));
        let full = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 0, error_message: String::new() }),
        };
        assert_eq!(partial_success(&full.encode_to_vec()), None);
        assert_eq!(partial_success(&[]), None);
        assert_eq!(partial_success(&[0xff, 0xff]), None);
    }
}
