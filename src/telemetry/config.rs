//! Where traces go: the optional `telemetry:` block of `telltale.yaml` and the standard `OTEL_*`
//! environment variables, resolved into one [`TraceSettings`] (pure: the environment is passed in).
//!
//! Precedence: an `OTEL_*` variable wins over the file (operators override a shipped config from
//! the environment, as every OpenTelemetry SDK does); the file wins over the defaults. Traces are
//! off unless an endpoint is set somewhere, and `OTEL_SDK_DISABLED=true` or
//! `OTEL_TRACES_EXPORTER=none` turn them off whatever the file says.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::secret::Secret;
use crate::yaml::{Decoder, MapReader, Node};

/// Wire protocol of the OTLP exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (default port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318).
    HttpProtobuf,
}

impl Protocol {
    pub const NAMES: &'static [&'static str] = &["grpc", "http/protobuf"];

    pub fn parse(text: &str) -> Option<Protocol> {
        match text.trim() {
            "grpc" => Some(Protocol::Grpc),
            "http/protobuf" | "http" => Some(Protocol::HttpProtobuf),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Which traces are kept (`OTEL_TRACES_SAMPLER` values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

impl Sampler {
    pub const NAMES: &'static [&'static str] = &[
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ];

    /// `name` plus the optional ratio argument (default 1.0, as the specification says).
    pub fn parse(name: &str, arg: Option<f64>) -> Option<Sampler> {
        let ratio = arg.unwrap_or(1.0).clamp(0.0, 1.0);
        Some(match name.trim() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatio(ratio),
            "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
            "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Sampler::ParentBasedTraceIdRatio(ratio),
            _ => return None,
        })
    }
}

/// `telemetry:` in telltale.yaml. Every key is optional; the `OTEL_*` variables override them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetryConfig {
    /// OTLP base endpoint, e.g. `http://otel-collector:4317` (gRPC) or `http://collector:4318`
    /// (HTTP; `/v1/traces` is appended). Setting it switches traces on.
    pub endpoint: Option<String>,
    /// `grpc` or `http/protobuf` (default `http/protobuf`).
    pub protocol: Option<Protocol>,
    /// Extra request headers (authentication); values may use `${ENV}` and are never printed.
    pub headers: BTreeMap<String, Secret>,
    /// Deadline of one export request (default `10s`).
    pub timeout: Option<Duration>,
    /// `service.name` of the resource (default `telltale`).
    pub service_name: Option<String>,
    /// More resource attributes, e.g. `deployment.environment.name: prod`.
    pub resource_attributes: BTreeMap<String, String>,
    /// One of [`Sampler::NAMES`] (default `parentbased_always_on`).
    pub sampler: Option<String>,
    /// Ratio for the `*traceidratio` samplers, 0 to 1.
    pub sampler_ratio: Option<f64>,
}

/// Decodes `telemetry:` (absent: all defaults, traces only from the environment).
pub fn decode(d: &mut Decoder, map: &mut MapReader<'_>, env: &dyn Fn(&str) -> Option<String>) -> TelemetryConfig {
    let mut out = TelemetryConfig::default();
    let Some(node) = map.get("telemetry") else { return out };
    let Some(mut m) = d.map(node, "telemetry") else { return out };
    if let Some(n) = m.get("endpoint") {
        let path = m.path_of("endpoint");
        if let Some(url) = expand(d, n, &path, env) {
            if url.starts_with("http://") || url.starts_with("https://") {
                out.endpoint = Some(url);
            } else {
                d.error(n.mark, &path, "expected an `http://` or `https://` URL such as `http://otel-collector:4317`");
            }
        }
    }
    if let Some(n) = m.get("protocol") {
        let path = m.path_of("protocol");
        out.protocol = d.one_of(n, &path, "protocol", Protocol::NAMES).and_then(|p| Protocol::parse(&p));
    }
    if let Some(n) = m.get("headers") {
        let path = m.path_of("headers");
        if let Some(mut h) = d.map(n, &path) {
            for (key, value) in h.entries() {
                let Some(name) = key.as_scalar() else { continue };
                if let Some(v) = expand(d, value, &crate::yaml::join(&path, name), env) {
                    out.headers.insert(name.to_ascii_lowercase(), Secret::new(v));
                }
            }
        }
    }
    if let Some(n) = m.get("timeout") {
        out.timeout = d.duration(n, &m.path_of("timeout"));
    }
    if let Some(n) = m.get("service_name") {
        out.service_name = d.text(n, &m.path_of("service_name"));
    }
    if let Some(n) = m.get("resource_attributes") {
        let path = m.path_of("resource_attributes");
        if let Some(mut r) = d.map(n, &path) {
            for (key, value) in r.entries() {
                let Some(name) = key.as_scalar() else { continue };
                if let Some(v) = expand(d, value, &crate::yaml::join(&path, name), env) {
                    out.resource_attributes.insert(name.to_string(), v);
                }
            }
        }
    }
    if let Some(n) = m.get("sampler") {
        out.sampler = d.one_of(n, &m.path_of("sampler"), "sampler", Sampler::NAMES);
    }
    if let Some(n) = m.get("sampler_ratio") {
        let path = m.path_of("sampler_ratio");
        out.sampler_ratio = d.float(n, &path).filter(|r| {
            let ok = (0.0..=1.0).contains(r);
            if !ok {
                d.error(n.mark, &path, "expected a ratio between 0 and 1");
            }
            ok
        });
    }
    m.finish(d);
    out
}

fn expand(d: &mut Decoder, node: &Node, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let raw = d.text(node, path)?;
    match crate::secret::expand_env(&raw, env) {
        Ok(s) => Some(s),
        Err(missing) => {
            for name in missing {
                d.error(node.mark, path, format!("environment variable `{name}` is not set"));
            }
            None
        }
    }
}

/// Everything the exporter needs, after the file and the environment are combined.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The URL requests go to: for OTLP/HTTP it ends in `/v1/traces`.
    pub endpoint: String,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub sampler: Sampler,
    /// `service.name` first, then the other resource attributes.
    pub resource: Vec<(String, String)>,
}

/// Why traces stay off although something asked for them (logged once as a warning).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TraceSettingsError {
    #[error("unsupported {variable} `{value}`; expected one of: {expected}; traces are off")]
    Unsupported { variable: &'static str, value: String, expected: String },
    #[error("{variable} `{value}` is not a URL; expected `http://host:port` or `https://host:port`; traces are off")]
    BadEndpoint { variable: &'static str, value: String },
}

fn is_true(value: Option<String>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The trace exporter's settings, or `None` when traces are off.
pub fn resolve(
    file: &TelemetryConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<TraceSettings>, TraceSettingsError> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if is_true(var("OTEL_SDK_DISABLED")) {
        return Ok(None);
    }
    match var("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(TraceSettingsError::Unsupported {
                variable: "OTEL_TRACES_EXPORTER",
                value: other.to_string(),
                expected: "otlp, none".into(),
            });
        }
    }
    let protocol_var = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .map(|v| ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", v))
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL").map(|v| ("OTEL_EXPORTER_OTLP_PROTOCOL", v)));
    let protocol = match protocol_var {
        Some((variable, value)) => Protocol::parse(&value).ok_or_else(|| TraceSettingsError::Unsupported {
            variable,
            value,
            expected: Protocol::NAMES.join(", "),
        })?,
        None => file.protocol.unwrap_or(Protocol::HttpProtobuf),
    };
    // A signal-specific endpoint is used as is; a base endpoint gets `/v1/traces` over HTTP.
    let (variable, endpoint) = if let Some(e) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", e.trim().to_string())
    } else {
        let (variable, base) = match var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(e) => ("OTEL_EXPORTER_OTLP_ENDPOINT", e),
            None => match &file.endpoint {
                Some(e) => ("telemetry.endpoint", e.clone()),
                None => return Ok(None),
            },
        };
        let base = base.trim().trim_end_matches('/').to_string();
        match protocol {
            Protocol::HttpProtobuf => (variable, format!("{base}/v1/traces")),
            Protocol::Grpc => (variable, base),
        }
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(TraceSettingsError::BadEndpoint { variable, value: endpoint });
    }
    let mut headers: BTreeMap<String, String> =
        file.headers.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect();
    for name in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"] {
        if let Some(list) = var(name).and_then(|v| parse_key_values(&v)) {
            for (k, v) in list {
                headers.insert(k.to_ascii_lowercase(), v);
            }
        }
    }
    let timeout = var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .or(file.timeout)
        .unwrap_or(Duration::from_secs(10));
    let sampler = match var("OTEL_TRACES_SAMPLER") {
        Some(name) => {
            let arg = var("OTEL_TRACES_SAMPLER_ARG").and_then(|a| a.trim().parse::<f64>().ok());
            Sampler::parse(&name, arg).ok_or_else(|| TraceSettingsError::Unsupported {
                variable: "OTEL_TRACES_SAMPLER",
                value: name.clone(),
                expected: Sampler::NAMES.join(", "),
            })?
        }
        None => file
            .sampler
            .as_deref()
            .and_then(|s| Sampler::parse(s, file.sampler_ratio))
            .unwrap_or(Sampler::ParentBasedAlwaysOn),
    };
    // Resource: file attributes, then OTEL_RESOURCE_ATTRIBUTES (discarded whole when it does not
    // decode), then the service name (OTEL_SERVICE_NAME wins over everything).
    let mut resource: BTreeMap<String, String> = file.resource_attributes.clone();
    if let Some(name) = &file.service_name {
        resource.insert("service.name".into(), name.clone());
    }
    if let Some(list) = var("OTEL_RESOURCE_ATTRIBUTES").and_then(|v| parse_key_values(&v)) {
        resource.extend(list);
    }
    if let Some(name) = var("OTEL_SERVICE_NAME") {
        resource.insert("service.name".into(), name.trim().to_string());
    }
    let service = resource.remove("service.name").unwrap_or_else(|| "telltale".into());
    resource.entry("service.version".into()).or_insert_with(|| env!("CARGO_PKG_VERSION").into());
    let mut attributes = vec![("service.name".to_string(), service)];
    attributes.extend(resource);
    Ok(Some(TraceSettings {
        endpoint,
        protocol,
        headers: headers.into_iter().collect(),
        timeout,
        sampler,
        resource: attributes,
    }))
}

/// `k1=v1,k2=v2` with percent-encoded keys and values; `None` when any pair does not decode.
pub fn parse_key_values(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        let (k, v) = (percent_decode(k.trim())?, percent_decode(v.trim())?);
        if k.is_empty() {
            return None;
        }
        out.push((k, v));
    }
    Some(out)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn traces_are_off_without_an_endpoint() {
        assert_eq!(resolve(&TelemetryConfig::default(), &env_of(&[])), Ok(None));
        assert_eq!(resolve(&TelemetryConfig::default(), &env_of(&[("OTEL_SERVICE_NAME", "x")])), Ok(None));
    }

    #[test]
    fn a_base_endpoint_gets_the_signal_path_over_http_only() {
        let env = env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]);
        let s = resolve(&TelemetryConfig::default(), &env).unwrap().unwrap();
        assert_eq!(s.endpoint, "http://c:4318/v1/traces");
        assert_eq!(s.protocol, Protocol::HttpProtobuf);
        let env = env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert_eq!(resolve(&TelemetryConfig::default(), &env).unwrap().unwrap().endpoint, "http://c:4317");
        let env = env_of(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:9/custom")]);
        assert_eq!(resolve(&TelemetryConfig::default(), &env).unwrap().unwrap().endpoint, "http://c:9/custom");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let file = TelemetryConfig {
            endpoint: Some("http://file:4317".into()),
            protocol: Some(Protocol::Grpc),
            service_name: Some("from-file".into()),
            sampler: Some("traceidratio".into()),
            sampler_ratio: Some(0.5),
            headers: [("authorization".to_string(), Secret::new("Bearer file".to_string()))].into(),
            ..TelemetryConfig::default()
        };
        let s = resolve(&file, &env_of(&[])).unwrap().unwrap();
        assert_eq!(s.endpoint, "http://file:4317");
        assert_eq!(s.sampler, Sampler::TraceIdRatio(0.5));
        assert_eq!(s.resource[0], ("service.name".into(), "from-file".into()));
        let env = env_of(&[
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=attr,deployment.environment.name=prod%2Ceu"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20env,x-tenant=a"),
            ("OTEL_TRACES_SAMPLER", "always_off"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]);
        let s = resolve(&file, &env).unwrap().unwrap();
        assert_eq!(s.resource[0], ("service.name".into(), "from-env".into()));
        assert!(s.resource.contains(&("deployment.environment.name".into(), "prod,eu".into())));
        assert_eq!(s.headers, vec![("authorization".into(), "Bearer env".into()), ("x-tenant".into(), "a".into())]);
        assert_eq!(s.sampler, Sampler::AlwaysOff);
        assert_eq!(s.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn disabling_switches_win() {
        let file = TelemetryConfig { endpoint: Some("http://file:4318".into()), ..TelemetryConfig::default() };
        assert_eq!(resolve(&file, &env_of(&[("OTEL_SDK_DISABLED", "true")])), Ok(None));
        assert_eq!(resolve(&file, &env_of(&[("OTEL_TRACES_EXPORTER", "none")])), Ok(None));
        assert!(matches!(
            resolve(&file, &env_of(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])),
            Err(TraceSettingsError::Unsupported { variable: "OTEL_EXPORTER_OTLP_PROTOCOL", .. })
        ));
    }

    fn parse(text: &str) -> Result<crate::config::Config, crate::yaml::Diagnostics> {
        let config = format!("version: 1\nsources:\n  wh: {{kind: sqlite, url: \"sqlite://x.db\"}}\n{text}");
        crate::config::Config::parse(std::path::Path::new("telltale.yaml"), &config, |k| {
            (k == "OTLP_TOKEN").then(|| "s3cret".into())
        })
    }

    #[test]
    fn the_telemetry_block_is_decoded_with_secrets_from_the_environment() {
        let c = parse(
            "telemetry:\n  endpoint: http://collector:4317\n  protocol: grpc\n  headers: {Authorization: \"Bearer ${OTLP_TOKEN}\"}\n  timeout: 5s\n  service_name: tt\n  resource_attributes: {deployment.environment.name: prod}\n  sampler: parentbased_traceidratio\n  sampler_ratio: 0.25\n",
        )
        .unwrap();
        let t = &c.telemetry;
        assert_eq!(t.endpoint.as_deref(), Some("http://collector:4317"));
        assert_eq!(t.protocol, Some(Protocol::Grpc));
        assert_eq!(t.headers["authorization"].expose(), "Bearer s3cret");
        assert_eq!(format!("{:?}", t.headers), "{\"authorization\": **redacted**}");
        assert_eq!(t.timeout, Some(Duration::from_secs(5)));
        let s = resolve(t, &env_of(&[])).unwrap().unwrap();
        assert_eq!(s.sampler, Sampler::ParentBasedTraceIdRatio(0.25));
        assert_eq!(s.resource[0], ("service.name".into(), "tt".into()));
        assert!(parse("").unwrap().telemetry == TelemetryConfig::default());
    }

    #[test]
    fn telemetry_mistakes_name_file_line_and_the_expected_value() {
        let err = parse(
            "telemetry:\n  endpoint: collector:4317\n  protocl: grpc\n  sampler: parentbased_traceid_ratio\n  sampler_ratio: 2\n",
        )
        .unwrap_err();
        insta::assert_snapshot!(err.to_string(), @r"
        telltale.yaml:5:13: telemetry.endpoint: expected an `http://` or `https://` URL such as `http://otel-collector:4317`
        telltale.yaml:7:12: telemetry.sampler: unknown sampler `parentbased_traceid_ratio` (did you mean `parentbased_traceidratio`?); expected one of: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio
        telltale.yaml:8:18: telemetry.sampler_ratio: expected a ratio between 0 and 1
        telltale.yaml:6:3: telemetry.protocl: unknown key `protocl` (did you mean `protocol`?); valid keys here: endpoint, headers, protocol, resource_attributes, sampler, sampler_ratio, service_name, timeout
        ");
    }

    #[test]
    fn resource_attributes_that_do_not_decode_are_discarded_whole() {
        assert_eq!(parse_key_values("a=1,b=%zz"), None);
        assert_eq!(parse_key_values("a=1, b = 2"), Some(vec![("a".into(), "1".into()), ("b".into(), "2".into())]));
    }
}
