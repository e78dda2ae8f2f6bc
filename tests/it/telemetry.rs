//! Observability out, against real components: a real Prometheus (Debian `prometheus`) scrapes a
//! running telltale that watches the real PostgreSQL with the docker-compose configuration
//! (`deploy/`); `promtool check metrics` lints the exposition; an in-process OTLP/gRPC collector
//! (`fake-opentelemetry-collector`) receives the spans of real check runs and API requests; the
//! dashboards are validated against Grafana's published schema (`@grafana/schema`) and their
//! queries against the registry; the compose file against the Compose Specification.
//!
//! Tools come from scripts/tools/telemetry.sh: PROMETHEUS_BIN, PROMTOOL_BIN,
//! TELLTALE_GRAFANA_SCHEMA, TELLTALE_NODE_MODULES, TELLTALE_CHECK_JSONSCHEMA.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use serde_json::Value;

use crate::common::{self, in_ci};
use crate::require;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool installed by scripts/tools/telemetry.sh, through its variable.
fn tool(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(path) if !path.is_empty() && Path::new(&path).exists() => Some(path),
        _ if in_ci() => panic!("{var} is not set or missing but CI=true: scripts/tools/telemetry.sh installs it"),
        _ => {
            eprintln!("skipped: {var} is not set (run scripts/tools/telemetry.sh, then scripts/test)");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// SIGTERM and wait for the exit (telltale flushes its traces on the way out).
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "telltale did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A fresh PostgreSQL database loaded with the compose stack's demo data.
async fn shop_warehouse() -> Option<String> {
    let url = common::postgres_db("telemetry").await?;
    let sql = std::fs::read_to_string(repo().join("deploy/postgres/init/01-shop.sql")).unwrap();
    let statements: Vec<&str> = sql.split(";\n").map(str::trim).filter(|s| !s.is_empty() && !is_comment(s)).collect();
    common::pg_exec(&url, &statements).await;
    Some(url)
}

fn is_comment(s: &str) -> bool {
    s.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with("--"))
}

/// The compose stack's telltale configuration and checks, with only the listen address changed.
fn compose_workspace(port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(repo().join("deploy/telltale/telltale.yaml")).unwrap();
    assert!(config.contains("listen: 0.0.0.0:8080"), "deploy/telltale/telltale.yaml changed its listen line");
    let config = config.replace("listen: 0.0.0.0:8080", &format!("listen: 127.0.0.1:{port}"));
    std::fs::write(dir.path().join("telltale.yaml"), config).unwrap();
    std::fs::create_dir_all(dir.path().join("checks")).unwrap();
    for entry in std::fs::read_dir(repo().join("deploy/telltale/checks")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join("checks").join(entry.file_name())).unwrap();
    }
    dir
}

fn telltale(dir: &Path, warehouse: &str, args: &[&str], otlp: Option<&str>) -> Command {
    let mut cmd = Command::new(common::binary());
    cmd.args(args)
        .arg("--config")
        .arg(dir.join("telltale.yaml"))
        .args(["--log", "warn"])
        .env("TELLTALE_WAREHOUSE_URL", warehouse)
        .env("TELLTALE_DATA_DIR", dir.join("data"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for var in
        ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_TRACES_SAMPLER"]
    {
        cmd.env_remove(var);
    }
    match otlp {
        Some(endpoint) => {
            cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
                .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
                .env("OTEL_SERVICE_NAME", "telltale-under-test");
        }
        None => {
            cmd.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        }
    }
    cmd
}

async fn wait_ready(port: u16) {
    let client = reqwest::Client::new();
    let ready = common::eventually(Duration::from_secs(90), || {
        let client = client.clone();
        async move {
            let r = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;
    assert!(ready.is_some(), "telltale did not become ready on port {port}");
}

/// One instant query against Prometheus' HTTP API: `(labels, value)` per series.
async fn prom_query(port: u16, query: &str) -> Vec<(HashMap<String, String>, f64)> {
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let Ok(response) = reqwest::Client::new().get(url).query(&[("query", query)]).send().await else {
        return Vec::new();
    };
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_ne!(body["status"], "error", "query `{query}` failed: {body}");
    body["data"]["result"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .map(|s| {
                    let labels = s["metric"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect();
                    let value = s["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                    (labels, value)
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn prom_value(port: u16, query: &str) -> f64 {
    let found = common::eventually(Duration::from_secs(60), || async {
        prom_query(port, query).await.first().map(|(_, v)| *v)
    })
    .await;
    found.unwrap_or_else(|| panic!("Prometheus has no series for `{query}`"))
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_data_health_from_the_compose_configuration() {
    let prometheus = require!(tool("PROMETHEUS_BIN"));
    let promtool = require!(tool("PROMTOOL_BIN"));
    let warehouse = require!(shop_warehouse().await);
    let api_port = free_port();
    let dir = compose_workspace(api_port);
    let _telltale = Running(telltale(dir.path(), &warehouse, &["run"], None).spawn().unwrap());
    wait_ready(api_port).await;

    // OpenMetrics for scrapers that ask for it (Prometheus does), the classic text format
    // otherwise; promtool's linter accepts the latter.
    let client = reqwest::Client::new();
    let response = client
        .get(format!("http://127.0.0.1:{api_port}/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let open_metrics = response.text().await.unwrap();
    assert!(open_metrics.ends_with("# EOF\n"));
    assert!(open_metrics.contains("# TYPE telltale_check_runs counter"));
    let response = client.get(format!("http://127.0.0.1:{api_port}/metrics")).send().await.unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let exposition = response.text().await.unwrap();
    assert!(exposition.contains("# TYPE telltale_check_runs_total counter") && !exposition.contains("# EOF"));
    let mut lint = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(lint.stdin.as_mut().unwrap(), exposition.as_bytes()).unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(
        lint.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{exposition}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    // A real Prometheus with the compose stack's scrape config, pointed at this telltale.
    let prom_dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let config = std::fs::read_to_string(repo().join("deploy/prometheus/prometheus.yml"))
        .unwrap()
        .replace("telltale:8080", &format!("127.0.0.1:{api_port}"))
        .replace("scrape_interval: 15s", "scrape_interval: 1s");
    std::fs::write(prom_dir.path().join("prometheus.yml"), config).unwrap();
    let _prometheus = Running(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", prom_dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", prom_dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let up = prom_value(prom_port, "up{job=\"telltale\"}").await;
    assert_eq!(up, 1.0, "Prometheus cannot scrape telltale");
    // Data health: every 10th customer has no email, so the null ratio is exactly 0.1.
    let nulls = prom_value(
        prom_port,
        "telltale_column_null_ratio{source=\"warehouse\",asset=\"warehouse.shop.customers\",column=\"email\"}",
    )
    .await;
    assert!((nulls - 0.1).abs() < 1e-9, "email null ratio {nulls}");
    assert_eq!(prom_value(prom_port, "telltale_asset_rows{asset=\"warehouse.shop.customers\"}").await, 2000.0);
    // customers is counted exactly (`volume: {exact: true}`): its catalog estimate is not exposed
    // beside the count; orders and payments are not counted, so they never get an exact series.
    assert!(prom_query(prom_port, "telltale_asset_rows_estimate{asset=\"warehouse.shop.customers\"}").await.is_empty());
    assert!(prom_query(prom_port, "telltale_asset_rows{asset!=\"warehouse.shop.customers\"}").await.is_empty());
    // The newest order was created 3 minutes before the data was loaded.
    let lag =
        prom_value(prom_port, "time() - telltale_asset_last_update_timestamp_seconds{asset=\"warehouse.shop.orders\"}")
            .await;
    assert!((150.0..900.0).contains(&lag), "orders last updated {lag}s ago");
    // One order every 3 minutes: 20 rows added per hourly bucket, inside the learned band.
    let added =
        prom_value(prom_port, "telltale_monitor_value{asset=\"warehouse.shop.orders\",monitor=\"rows_added\"}").await;
    assert_eq!(added, 20.0);
    let low =
        prom_value(prom_port, "telltale_monitor_expected_low{asset=\"warehouse.shop.orders\",monitor=\"rows_added\"}")
            .await;
    let high =
        prom_value(prom_port, "telltale_monitor_expected_high{asset=\"warehouse.shop.orders\",monitor=\"rows_added\"}")
            .await;
    assert!(low <= added && added <= high, "expected band [{low}, {high}] around {added}");
    assert_eq!(
        prom_value(prom_port, "telltale_monitor_anomalous{asset=\"warehouse.shop.orders\",monitor=\"rows_added\"}")
            .await,
        0.0
    );
    // Every checked asset has a status (all healthy here) and its owner for joins.
    let statuses = common::eventually(Duration::from_secs(30), || async {
        let s = prom_query(prom_port, "telltale_asset_status").await;
        (s.len() == 3).then_some(s)
    })
    .await
    .expect("three asset status series");
    assert!(statuses.iter().all(|(_, v)| *v == 0.0), "{statuses:?}");
    let owners = prom_query(
        prom_port,
        "sum by (owner) (telltale_asset_downtime_seconds * on(source, asset) group_left(owner) telltale_asset_info)",
    )
    .await;
    let owners: BTreeSet<String> = owners.into_iter().map(|(l, _)| l["owner"].clone()).collect();
    assert_eq!(owners, ["@commerce-data", "@crm-data", "@finance-data"].into_iter().map(String::from).collect());
    assert_eq!(
        prom_value(prom_port, "telltale_asset_slo_budget_remaining_ratio{asset=\"warehouse.shop.orders\"}").await,
        1.0
    );
    // telltale itself.
    assert!(prom_value(prom_port, "sum(telltale_check_runs_total{task=\"asset\"})").await >= 3.0);
    assert!(prom_value(prom_port, "sum(telltale_query_duration_seconds_count{db_system=\"postgresql\"})").await >= 4.0);
    assert_eq!(prom_value(prom_port, "telltale_build_info").await, 1.0);
    assert_eq!(prom_value(prom_port, "telltale_outbox_depth").await, 0.0);
    assert_eq!(prom_value(prom_port, "telltale_lineage_events_ingested_total{outcome=\"accepted\"}").await, 0.0);
}

/// Collects every span the collector receives, in the background (its own queue is small).
fn drain(mut collector: FakeCollectorServer) -> Arc<Mutex<Vec<ExportedSpan>>> {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&spans);
    tokio::spawn(async move {
        loop {
            let batch = collector.exported_spans(1, Duration::from_millis(100)).await;
            out.lock().unwrap().extend(batch);
        }
    });
    spans
}

/// An attribute's value: the collector keeps the protobuf value's debug text
/// (`Some(AnyValue { value: Some(StringValue("x")) })`).
fn attr<'a>(span: &'a ExportedSpan, key: &str) -> &'a str {
    let raw = span.attributes.get(key).unwrap_or_else(|| panic!("span `{}` has no `{key}`: {span:?}", span.name));
    if let Some((_, text)) = raw.split_once("StringValue(\"") {
        return text.rsplit_once("\")").map_or(text, |(v, _)| v);
    }
    let inner = raw.rsplit_once("Value(").map_or(raw.as_str(), |(_, v)| v);
    inner.split_once(')').map_or(inner, |(v, _)| v)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_run_exports_its_span_tree_over_otlp() {
    let warehouse = require!(shop_warehouse().await);
    let collector = FakeCollectorServer::start().await.unwrap();
    let endpoint = collector.endpoint();
    let spans = drain(collector);
    let dir = compose_workspace(free_port());
    let status = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        let warehouse = warehouse.clone();
        move || telltale(&dir, &warehouse, &["check"], Some(&endpoint)).status().unwrap()
    })
    .await
    .unwrap();
    assert!(status.code().is_some_and(|c| c <= 1), "telltale check: {status}");
    // The spans were flushed before the process exited; give the collector a moment to hand them over.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spans = spans.lock().unwrap().clone();
    let by_id: HashMap<&str, &ExportedSpan> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();

    // One check run per asset, with its identity, outcome and anomaly flag.
    let run = spans.iter().find(|s| s.name == "check warehouse.shop.orders").unwrap_or_else(|| {
        panic!("no check run span for orders among {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>())
    });
    assert_eq!(attr(run, "asset"), "warehouse.shop.orders");
    assert_eq!(attr(run, "source"), "warehouse");
    assert_eq!(attr(run, "job"), "asset");
    assert_eq!(attr(run, "check"), "shop.yaml:4", "the check's file and line");
    assert!(["pass", "recorded", "fail"].contains(&attr(run, "outcome")), "{run:?}");
    assert_eq!(attr(run, "anomaly"), "false");
    assert_eq!(run.kind, "SPAN_KIND_INTERNAL");

    // Its warehouse queries are CLIENT children following the database conventions.
    let queries: Vec<&ExportedSpan> =
        spans.iter().filter(|s| s.parent_span_id == run.span_id && s.kind == "SPAN_KIND_CLIENT").collect();
    assert!(queries.len() >= 3, "freshness, buckets and profile queries: {queries:?}");
    let database = warehouse.rsplit('/').next().unwrap();
    for q in &queries {
        assert_eq!(attr(q, "db.system.name"), "postgresql");
        assert_eq!(attr(q, "db.namespace"), database);
        assert_eq!(attr(q, "db.collection.name"), "shop.orders");
        assert_eq!(attr(q, "db.operation.name"), "SELECT");
        assert_eq!(attr(q, "db.query.summary"), "SELECT shop.orders");
        assert_eq!(q.name, "SELECT shop.orders");
        assert_eq!(attr(q, "server.address"), "127.0.0.1");
        assert!(attr(q, "server.port").parse::<u16>().is_ok());
        let text = attr(q, "db.query.text");
        assert!(text.contains("shop") && !text.contains('\''), "query text must be sanitized: {text}");
        assert_eq!(q.trace_id, run.trace_id);
    }
    // Detection is a child of the run.
    let detect = spans.iter().find(|s| s.name == "detect" && s.parent_span_id == run.span_id).expect("detect span");
    assert_eq!(attr(detect, "asset"), "warehouse.shop.orders");
    assert!(attr(detect, "judged").parse::<u64>().unwrap() >= 1);

    // The metadata scan reads the catalog once.
    let scan = spans.iter().find(|s| s.name == "metadata scan warehouse").expect("metadata scan span");
    let catalog: Vec<_> =
        spans.iter().filter(|s| s.parent_span_id == scan.span_id && s.name == "SELECT catalog").collect();
    assert_eq!(catalog.len(), 1, "one catalog query");
    assert!(!catalog[0].attributes.contains_key("db.collection.name"));
    // No span is orphaned: every parent was exported too.
    for s in &spans {
        assert!(s.parent_span_id.is_empty() || by_id.contains_key(s.parent_span_id.as_str()), "orphan {s:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_requests_continue_the_callers_trace_context() {
    let warehouse = require!(shop_warehouse().await);
    let collector = FakeCollectorServer::start().await.unwrap();
    let endpoint = collector.endpoint();
    let spans = drain(collector);
    let port = free_port();
    let dir = compose_workspace(port);
    let telltale = Running(telltale(dir.path(), &warehouse, &["run"], Some(&endpoint)).spawn().unwrap());
    wait_ready(port).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/assets/warehouse.shop.orders"))
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    // Scrapes and probes are not traced.
    reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap();
    let status = tokio::task::spawn_blocking(move || telltale.terminate()).await.unwrap();
    assert!(status.success(), "telltale run exited with {status}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spans = spans.lock().unwrap().clone();
    let server = spans.iter().find(|s| s.trace_id == trace_id).unwrap_or_else(|| {
        panic!("no span continued trace {trace_id}: {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>())
    });
    assert_eq!(server.parent_span_id, parent);
    assert_eq!(server.kind, "SPAN_KIND_SERVER");
    assert_eq!(server.name, "GET /api/v1/assets/{asset}");
    assert_eq!(attr(server, "http.route"), "/api/v1/assets/{asset}");
    assert_eq!(attr(server, "http.response.status_code"), "200");
    assert!(!spans.iter().any(|s| s.name.contains("/metrics") || s.name.contains("readyz")));
    // The daemon's own check runs were exported and flushed on SIGTERM.
    assert!(spans.iter().any(|s| s.name == "check warehouse.shop.customers"));
}

/// What an OTLP/HTTP receiver saw: request headers and the decoded export requests.
#[derive(Default)]
struct HttpReceived {
    headers: Vec<axum::http::HeaderMap>,
    requests: Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>,
}

/// A real OTLP/HTTP (protobuf) trace receiver on a free loopback port.
async fn otlp_http_receiver() -> (String, Arc<Mutex<HttpReceived>>) {
    use prost::Message;
    let received: Arc<Mutex<HttpReceived>> = Arc::default();
    let state = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let state = Arc::clone(&state);
            async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                let request =
                    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(body).unwrap();
                let mut s = state.lock().unwrap();
                s.headers.push(headers);
                s.requests.push(request);
                let response = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::default();
                ([("content-type", "application/x-protobuf")], response.encode_to_vec())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_go_out_over_otlp_http_with_headers_and_resource_from_the_environment() {
    let warehouse = require!(shop_warehouse().await);
    let (endpoint, received) = otlp_http_receiver().await;
    let dir = compose_workspace(free_port());
    let status = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            let mut cmd = telltale(&dir, &warehouse, &["check"], None);
            cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
                .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
                .env_remove("OTEL_SERVICE_NAME")
                .env("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme%20data")
                .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci");
            cmd.status().unwrap()
        }
    })
    .await
    .unwrap();
    assert!(status.code().is_some_and(|c| c <= 1), "telltale check: {status}");
    let received = received.lock().unwrap();
    assert!(!received.requests.is_empty(), "no OTLP/HTTP request arrived");
    assert!(received.headers.iter().all(|h| h["x-tenant"] == "acme data"));
    let mut names = BTreeSet::new();
    for request in &received.requests {
        for resource_spans in &request.resource_spans {
            let resource: HashMap<String, String> = resource_spans
                .resource
                .as_ref()
                .unwrap()
                .attributes
                .iter()
                .map(|kv| (kv.key.clone(), format!("{:?}", kv.value.as_ref().unwrap().value.as_ref().unwrap())))
                .collect();
            // telltale.yaml's `telemetry.service_name`, the environment's resource attributes.
            assert_eq!(resource["service.name"], "StringValue(\"telltale\")");
            assert_eq!(resource["deployment.environment.name"], "StringValue(\"ci\")");
            assert!(resource.contains_key("service.version"));
            for scope in &resource_spans.scope_spans {
                names.extend(scope.spans.iter().map(|s| s.name.clone()));
            }
        }
    }
    for name in ["check warehouse.shop.orders", "metadata scan warehouse", "SELECT shop.orders", "SELECT catalog"] {
        assert!(names.contains(name), "no `{name}` span among {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_never_answers_does_not_hold_up_checks() {
    let warehouse = require!(shop_warehouse().await);
    // Accepts connections and never answers.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", blackhole.local_addr().unwrap());
    // Two fresh workspaces: the second run must not see the first one's history.
    let (first, second) = (compose_workspace(free_port()), compose_workspace(free_port()));
    let run = |dir: &tempfile::TempDir, otlp: Option<String>| {
        let dir = dir.path().to_path_buf();
        let warehouse = warehouse.clone();
        move || {
            let mut cmd = telltale(&dir, &warehouse, &["check", "--format", "json"], None);
            if let Some(endpoint) = otlp {
                cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint).env("OTEL_EXPORTER_OTLP_TIMEOUT", "1500");
            }
            let started = std::time::Instant::now();
            let output = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap();
            (
                output.status.code(),
                started.elapsed(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    let (plain_code, _, plain, _) = tokio::task::spawn_blocking(run(&first, None)).await.unwrap();
    let (code, elapsed, report, log) = tokio::task::spawn_blocking(run(&second, Some(endpoint))).await.unwrap();
    // The dropped spans are reported once: by the exporter, not again by the shutdown flush.
    let warnings: Vec<&str> = log.lines().filter(|line| line.contains("traces failed")).collect();
    assert_eq!(warnings.len(), 1, "one warning about the dead collector, got {warnings:?}");
    assert!(warnings[0].contains("spans of this batch dropped"), "{}", warnings[0]);
    assert_eq!(code, plain_code, "the exit code does not depend on the collector");
    let statuses = |text: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(text).unwrap();
        v["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| format!("{} {} {}", o["asset"], o["monitor"], o["status"]))
            .collect()
    };
    assert_eq!(statuses(&report), statuses(&plain), "the same outcomes with a dead collector");
    // Checks are not delayed; only the final flush waits, bounded by the export timeout.
    assert!(elapsed < Duration::from_secs(20), "telltale check took {elapsed:?} with a dead collector");
    drop(blackhole);
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_deliveries_are_traced_and_carry_the_trace_to_the_receiver() {
    let warehouse = require!(shop_warehouse().await);
    let collector = FakeCollectorServer::start().await.unwrap();
    let endpoint = collector.endpoint();
    let spans = drain(collector);
    // A webhook receiver that keeps each request's traceparent.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let state = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let state = Arc::clone(&state);
            async move {
                let parent = headers.get("traceparent").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                state.lock().unwrap().push(parent);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // The compose configuration plus a webhook channel, and a customers row-count floor that fails.
    let port = free_port();
    let dir = compose_workspace(port);
    let config = dir.path().join("telltale.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}channels:\n  hook:\n    kind: webhook\n    url: {hook}\n")).unwrap();
    let checks = dir.path().join("checks/shop.yaml");
    let text = std::fs::read_to_string(&checks).unwrap().replace("row_count: {min: 1}", "row_count: {min: 5000}");
    std::fs::write(&checks, text).unwrap();
    let telltale = Running(telltale(dir.path(), &warehouse, &["run"], Some(&endpoint)).spawn().unwrap());
    wait_ready(port).await;
    let delivered =
        common::eventually(Duration::from_secs(30), || async { seen.lock().unwrap().first().cloned() }).await;
    let traceparent = delivered.expect("the webhook was not called");
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("telltale_alert_deliveries_total{channel=\"hook\",outcome=\"delivered\"} 1"), "{metrics}");
    assert!(metrics.contains("telltale_incident_changes_total{change=\"opened\"} 1"));
    assert!(metrics.contains("telltale_asset_status{source=\"warehouse\",asset=\"warehouse.shop.customers\"} 2"));
    assert!(metrics.contains(
        "telltale_asset_open_incidents{source=\"warehouse\",asset=\"warehouse.shop.customers\",severity=\"SEV-"
    ));
    assert!(telltale.terminate().success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spans = spans.lock().unwrap().clone();

    let delivery = spans.iter().find(|s| s.name == "deliver hook").expect("a delivery span");
    assert_eq!(attr(delivery, "outcome"), "delivered");
    assert_eq!(attr(delivery, "channel_kind"), "webhook");
    assert_eq!(attr(delivery, "attempt"), "1");
    let post = spans.iter().find(|s| s.parent_span_id == delivery.span_id).expect("an HTTP client span");
    assert_eq!((post.name.as_str(), post.kind.as_str()), ("POST", "SPAN_KIND_CLIENT"));
    assert_eq!(attr(post, "http.request.method"), "POST");
    assert_eq!(attr(post, "http.response.status_code"), "200");
    assert_eq!(attr(post, "server.address"), "127.0.0.1");
    assert!(attr(post, "url.full").ends_with("/**redacted**"), "the webhook path is a credential");
    // The receiver was handed the client span's context.
    assert_eq!(traceparent, format!("00-{}-{}-01", post.trace_id, post.span_id));
    // The incident change that queued it.
    let update = spans.iter().find(|s| s.name == "incident update" && attr(s, "asset") == "warehouse.shop.customers");
    let update = update.expect("an incident update span");
    assert!(update.events.iter().any(|e| e.name.starts_with("incident opened")), "{update:?}");
}

/// Metric names in a PromQL expression: identifiers that are not functions, keywords, label
/// names in grouping clauses, label matchers, durations or strings.
fn promql_metrics(expr: &str) -> Vec<String> {
    let mut text = String::new();
    // Drop strings and `{...}` matchers and `[...]` ranges.
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    let mut in_string = false;
    for c in expr.chars() {
        match c {
            '"' if depth_brace == 0 => in_string = !in_string,
            _ if in_string => {}
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace > 0 || depth_bracket > 0 => {}
            c => text.push(c),
        }
    }
    // Drop label lists of grouping and matching clauses, and label_values' label argument.
    let clause = ["by", "without", "on", "ignoring", "group_left", "group_right"];
    let tokens: Vec<(usize, String)> = {
        let mut out = Vec::new();
        let mut current = String::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                if current.is_empty() {
                    start = i;
                }
                current.push(c);
            } else if !current.is_empty() {
                out.push((start, std::mem::take(&mut current)));
            }
        }
        if !current.is_empty() {
            out.push((start, current));
        }
        out
    };
    let mut names = Vec::new();
    let mut skip_until_close: Option<usize> = None;
    for (start, token) in &tokens {
        if let Some(close) = skip_until_close {
            if *start < close {
                continue;
            }
            skip_until_close = None;
        }
        let after = text[start + token.len()..].trim_start();
        if clause.contains(&token.as_str()) {
            if after.starts_with('(') {
                let open = text.len() - after.len();
                skip_until_close = text[open..].find(')').map(|i| open + i);
            }
            continue;
        }
        let aggregation = [
            "sum",
            "min",
            "max",
            "avg",
            "count",
            "topk",
            "bottomk",
            "quantile",
            "stddev",
            "stdvar",
            "group",
            "count_values",
        ]
        .contains(&token.as_str());
        let is_function = after.starts_with('(') || aggregation;
        let keyword = ["and", "or", "unless", "bool", "offset"].contains(&token.as_str());
        let number = token.chars().next().is_some_and(|c| c.is_ascii_digit());
        if !is_function && !keyword && !number {
            names.push(token.clone());
        }
    }
    names
}

/// Every PromQL expression of a dashboard: panel targets, template variables, annotations.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        let query = var["query"]["query"].as_str().unwrap();
        // label_values(metric{...}, label): only the first argument names a metric.
        let inner = query.trim_start_matches("label_values(").trim_end_matches(')');
        out.push(inner.rsplit_once(',').map_or(inner, |(m, _)| m).to_string());
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        if let Some(expr) = annotation["expr"].as_str() {
            out.push(expr.to_string());
        }
    }
    out
}

fn dashboards() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn promql_metric_names_are_found_in_expressions() {
    assert_eq!(
        promql_metrics("sum by (owner) (a_seconds * on(source, asset) group_left(owner) b_info{x=\"y\"}) or vector(0)"),
        ["a_seconds", "b_info"]
    );
    assert_eq!(
        promql_metrics("histogram_quantile(0.95, sum by (le, job) (rate(x_bucket{a=\"b\"}[5m])))"),
        ["x_bucket"]
    );
    assert_eq!(promql_metrics("time() - m{asset=\"$asset\"} == 1"), ["m"]);
}

#[test]
fn every_dashboard_query_uses_registered_metrics() {
    let known: BTreeSet<String> = telltale::telemetry::metrics::series_names().into_iter().collect();
    let files = dashboards();
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["asset-detail.json", "data-health-overview.json", "operations.json"]);
    let mut used = BTreeSet::new();
    for file in &files {
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        for expr in dashboard_queries(&dashboard) {
            let metrics = promql_metrics(&expr);
            assert!(!metrics.is_empty(), "{}: `{expr}` names no metric", file.display());
            for m in metrics {
                assert!(known.contains(&m), "{}: `{expr}` uses `{m}`, which telltale does not expose", file.display());
                used.insert(m);
            }
        }
        // Every panel reads the provisioned datasource.
        for panel in dashboard["panels"].as_array().unwrap() {
            assert_eq!(panel["datasource"]["uid"], "prometheus", "{}: {}", file.display(), panel["title"]);
        }
    }
    // The asset detail draws the expected band and marks anomalies.
    for m in ["telltale_monitor_expected_low", "telltale_monitor_expected_high", "telltale_monitor_anomalous"] {
        assert!(used.contains(m), "no dashboard uses {m}");
    }
}

#[test]
fn dashboards_validate_against_grafanas_published_schema() {
    let schema = require!(tool("TELLTALE_GRAFANA_SCHEMA"));
    let node_modules = require!(tool("TELLTALE_NODE_MODULES"));
    let output = Command::new("node")
        .arg(repo().join("scripts/tools/grafana-schema.mjs"))
        .args(["validate", &schema, &node_modules])
        .args(dashboards())
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "dashboards do not match @grafana/schema:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.matches(": valid").count(), 3, "{stdout}");
    // The validator really rejects a broken dashboard.
    let broken = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(broken.path(), r#"{"title": "x", "panels": [{"type": 3}]}"#).unwrap();
    let rejected = Command::new("node")
        .arg(repo().join("scripts/tools/grafana-schema.mjs"))
        .args(["validate", &schema, &node_modules])
        .arg(broken.path())
        .output()
        .unwrap();
    assert!(!rejected.status.success(), "a dashboard without schemaVersion passed");
}

#[test]
fn the_compose_file_follows_the_compose_specification() {
    let checker = require!(tool("TELLTALE_CHECK_JSONSCHEMA"));
    let output = Command::new(&checker)
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(repo().join("docker-compose.yml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "docker-compose.yml:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let compose = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    // The stack runs the configuration the tests above exercise, and provisions the dashboards.
    for needle in [
        "./deploy/telltale:/etc/telltale:ro",
        "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
        "./deploy/postgres/init:/docker-entrypoint-initdb.d:ro",
        "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
        "./dashboards:/var/lib/grafana/dashboards/telltale:ro",
    ] {
        assert!(compose.contains(needle), "docker-compose.yml no longer mounts {needle}");
    }
    // No secret in the file: passwords only come from the environment (.env).
    assert!(!compose.to_lowercase().contains("change-me"));
    assert!(compose.contains("${WAREHOUSE_PASSWORD:?"));
    let example = std::fs::read_to_string(repo().join(".env.example")).unwrap();
    for var in ["WAREHOUSE_PASSWORD", "GRAFANA_ADMIN_PASSWORD"] {
        assert!(example.contains(&format!("{var}=")), ".env.example lacks {var}");
    }
}

const BEGIN: &str = "<!-- BEGIN GENERATED METRICS (cargo test --test it docs_telemetry_lists_every_metric) -->";
const END: &str = "<!-- END GENERATED METRICS -->";

#[test]
fn docs_telemetry_lists_every_metric() {
    let path = repo().join("docs/telemetry.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (head, rest) = doc.split_once(BEGIN).expect("docs/telemetry.md lost its BEGIN GENERATED METRICS marker");
    let (current, tail) = rest.split_once(END).expect("docs/telemetry.md lost its END GENERATED METRICS marker");
    let generated = format!("\n{}", telltale::telemetry::metrics::reference_markdown());
    if current == generated {
        return;
    }
    if std::env::var("TELLTALE_REGENERATE_DOCS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, format!("{head}{BEGIN}{generated}{END}{tail}")).unwrap();
        return;
    }
    panic!(
        "docs/telemetry.md is stale: the metric registry changed. Regenerate it with\n  \
         TELLTALE_REGENERATE_DOCS=1 cargo test --test it docs_telemetry_lists_every_metric"
    );
}
