//! Lineage end to end with real components: the official OpenLineage Python client (HTTP
//! transport, `TELLTALE_OPENLINEAGE_PYTHON` from scripts/tools/lineage.sh) sending events to a
//! running telltale; what the ingest endpoint refuses (malformed, unauthorized, too large, gzip
//! bombs); a restart on a PostgreSQL store keeping what OpenLineage taught; and a broken source
//! table on a real PostgreSQL paging once on Slack (mocked) with its dbt blast radius while the
//! downstream table it starves joins the incident as a symptom.

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use telltale::clock::{ManualClock, SharedClock};
use telltale::runtime::Agent;
use telltale::store::IncidentFilter;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{Workspace, binary, config_with_source, eventually, in_ci, pg_exec, postgres_db};
use crate::require;

const TOKEN: &str = "s3cr3t-lineage-token";
const NS: &str = "postgres://127.0.0.1:5432";

/// A running API on a loopback port; stops on drop.
struct Server {
    url: String,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(agent: &Arc<Agent>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let state = telltale::api::ApiState { agent: Arc::clone(agent) };
    tokio::spawn(telltale::api::serve(listener, state, stop.clone()));
    Server { url, stop }
}

fn python() -> Option<String> {
    match std::env::var("TELLTALE_OPENLINEAGE_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if in_ci() => panic!("TELLTALE_OPENLINEAGE_PYTHON is not set but CI=true: run scripts/tools/lineage.sh"),
        _ => {
            eprintln!("skipped: TELLTALE_OPENLINEAGE_PYTHON is not set (run scripts/tools/lineage.sh)");
            None
        }
    }
}

/// Runs tests/fixtures/openlineage/emit.py; returns its JSON report.
async fn emit(python: &str, url: &str, args: &[&str]) -> Value {
    let script = format!("{}/tests/fixtures/openlineage/emit.py", env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new(python);
    command.arg(script).arg(url).args(args);
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run the OpenLineage client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("emit.py printed {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr)))
}

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).body(body).header("content-type", "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

const REVENUE_CHECKS: &str = r#"version: 1
assets:
  - source: wh
    table: analytics.revenue
    owner: "@finance"
    tier: 2
    downstream:
      - name: Revenue board
        kind: dashboard
        owner: finance-analytics@shop.example
        url: https://bi.example.com/d/revenue
    monitors:
      freshness: {max_age: 1h}
"#;

fn ol_workspace(max: &str) -> Workspace {
    let extra = format!("lineage:\n  api_key: {TOKEN}\n  max_event_size: {max}\n");
    Workspace::new(
        &config_with_source("postgres", "postgres://tt@127.0.0.1:5432/shopdb", &extra),
        &[("revenue.yaml", REVENUE_CHECKS)],
    )
}

fn clock() -> SharedClock {
    Arc::new(ManualClock::new("2026-08-20T10:00:00Z".parse().unwrap())) as SharedClock
}

fn node<'a>(graph: &'a Value, key: &str) -> &'a Value {
    graph["nodes"].as_array().unwrap().iter().find(|n| n["key"] == key).unwrap_or_else(|| panic!("no {key}: {graph:#}"))
}

fn has_edge(graph: &Value, from: &str, to: &str) -> bool {
    graph["edges"].as_array().unwrap().iter().any(|e| e["from"] == from && e["to"] == to)
}

#[tokio::test]
async fn the_openlineage_python_client_builds_the_graph_over_http() {
    let python = require!(python());
    let ws = ol_workspace("12MB");
    let agent = ws.agent(clock()).await;
    let server = serve(&agent).await;

    // Without the token the client's first event is refused; nothing is learned.
    let refused = emit(&python, &server.url, &[]).await;
    assert_eq!(refused["status"], 401, "{refused}");
    assert_eq!(refused["sent"], 0);
    assert!(agent.lineage.graph().find(&format!("{NS}/shopdb.public.orders")).is_none());

    let sent = emit(&python, &server.url, &["--api-key", TOKEN]).await;
    assert_eq!(sent["sent"], 4, "{sent}");
    // The same run again, gzip-compressed (the transport's `compression: gzip`).
    let sent = emit(&python, &server.url, &["--api-key", TOKEN, "--gzip"]).await;
    assert_eq!(sent["sent"], 4, "{sent}");

    let (status, graph) =
        get(&format!("{}/api/v1/lineage/graph?asset=wh.public.orders&direction=both", server.url)).await;
    assert_eq!(status, 200, "{graph}");
    let (raw, orders, revenue) = (
        format!("{NS}/shopdb.public.raw_orders"),
        format!("{NS}/shopdb.public.orders"),
        format!("{NS}/shopdb.analytics.revenue"),
    );
    let (load, build) = ("job:airflow/shop_dag.load_orders", "job:airflow/shop_dag.build_revenue");
    assert!(has_edge(&graph, &raw, load) && has_edge(&graph, load, &orders), "{graph:#}");
    assert!(has_edge(&graph, &orders, build), "{graph:#}");
    // The declared revenue table and the OpenLineage dataset are one node (joined by the asset).
    assert!(has_edge(&graph, build, "wh.analytics.revenue"), "{graph:#}");
    assert!(has_edge(&graph, "wh.analytics.revenue", "declared.dashboard.Revenue board"), "{graph:#}");
    let orders_node = node(&graph, &orders);
    assert_eq!(orders_node["asset_id"], "wh.public.orders");
    assert_eq!(orders_node["owner"]["name"], "commerce", "ownership facet, `team:` dropped");
    assert_eq!(
        orders_node["column_lineage"]["fields"]["amount"]["inputFields"][0]["field"], "amount_cents",
        "{orders_node:#}"
    );
    assert_eq!(orders_node["last_run"]["state"], "COMPLETE");
    let edge = graph["edges"].as_array().unwrap().iter().find(|e| e["from"] == raw).unwrap();
    assert_eq!(edge["origins"][0][0], "openlineage", "{edge}");
    // The FAIL of the job writing revenue is recorded on revenue, with the error message.
    let revenue_node = node(&graph, "wh.analytics.revenue");
    assert_eq!(revenue_node["last_run"]["state"], "FAIL", "{revenue_node:#}");
    assert!(revenue_node["last_run"]["message"].as_str().unwrap().contains("is locked"));
    assert!(graph["nodes"].as_array().unwrap().iter().all(|n| n["key"] != revenue), "one node, found by its alias");

    // Upstream only, one hop: the load job's input side is cut.
    let (_, up) = get(&format!("{}/api/v1/lineage/graph?asset={orders}&direction=upstream&depth=1", server.url)).await;
    assert!(has_edge(&up, load, &orders) && has_edge(&up, &raw, load), "{up:#}");
    assert!(!has_edge(&up, &orders, build), "{up:#}");
    let (status, bad) =
        get(&format!("{}/api/v1/lineage/graph?asset=wh.public.orders&direction=sideways", server.url)).await;
    assert_eq!(status, 400, "{bad}");
    let (status, _) = get(&format!("{}/api/v1/lineage/graph?asset=wh.public.nope", server.url)).await;
    assert_eq!(status, 404);

    // Blast radius of the raw table: orders, revenue, and the declared dashboard (key, owned).
    let (status, impact) = get(&format!("{}/api/v1/assets/wh.public.raw_orders/impact", server.url)).await;
    assert_eq!(status, 200, "{impact}");
    assert_eq!(impact["total"], 3, "{impact:#}");
    assert_eq!(impact["key_total"], 1, "{impact:#}");
    let dashboards = impact["groups"].as_array().unwrap().iter().find(|g| g["group"] == "dashboards").unwrap();
    assert_eq!(dashboards["count"], 1);
    assert_eq!(dashboards["assets"][0]["name"], "declared.dashboard.Revenue board");
    assert_eq!(dashboards["assets"][0]["owner"]["email"], "finance-analytics@shop.example");
    assert_eq!(dashboards["assets"][0]["url"], "https://bi.example.com/d/revenue");
    assert_eq!(dashboards["assets"][0]["key_asset"], true);
    let tables = impact["groups"].as_array().unwrap().iter().find(|g| g["group"] == "tables").unwrap();
    assert_eq!(tables["count"], 2);
    assert_eq!(tables["assets"][0]["tier"], 2, "the check file's tier fills the OpenLineage node");
    assert_eq!(impact["owners"][0]["owner"]["email"], "finance-analytics@shop.example", "{impact:#}");

    // Upstream health: nothing is open anywhere, and the asset is in the graph.
    let (status, health) =
        get(&format!("{}/api/v1/assets/wh.analytics.revenue/health?upstream=true", server.url)).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["in_lineage_graph"], true);
    agent.close().await;
}

/// A RunEvent with `inputs` input datasets (≈ 80 bytes each).
fn big_event(inputs: usize) -> Vec<u8> {
    let inputs: Vec<Value> =
        (0..inputs).map(|i| json!({"namespace": NS, "name": format!("shopdb.landing.part_{i:08}")})).collect();
    serde_json::to_vec(&json!({
        "eventType": "COMPLETE",
        "eventTime": "2026-08-20T09:00:00Z",
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0191c9a2-7f3e-7a10-9b1d-3c2f5e6a7b8c"},
        "job": {"namespace": "spark", "name": "compact_landing"},
        "inputs": inputs,
        "outputs": [{"namespace": NS, "name": "shopdb.public.landing"}],
    }))
    .unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn the_ingest_endpoint_refuses_what_it_must_and_bounds_big_events() {
    let ws = ol_workspace("12MB");
    let agent = ws.agent(clock()).await;
    let server = serve(&agent).await;
    let url = format!("{}/api/v1/lineage", server.url);
    let auth = ("authorization", "Bearer s3cr3t-lineage-token");

    let (status, body) = post(&url, b"{}".to_vec(), &[]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("missing bearer token (Authorization: Bearer …)")));
    let (status, _) = post(&url, b"{}".to_vec(), &[("authorization", "Bearer wrong")]).await;
    assert_eq!(status, 401);

    let good = big_event(2);
    let mut no_run_id: Value = serde_json::from_slice(&good).unwrap();
    no_run_id["run"].as_object_mut().unwrap().remove("runId");
    let mut bad_time: Value = serde_json::from_slice(&good).unwrap();
    bad_time["eventTime"] = json!("yesterday");
    let mut bad_input: Value = serde_json::from_slice(&good).unwrap();
    bad_input["inputs"][1].as_object_mut().unwrap().remove("name");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"eventType\": \"START\"".to_vec(), "malformed JSON"),
        (serde_json::to_vec(&no_run_id).unwrap(), "missing required field `run.runId`"),
        (
            serde_json::to_vec(&bad_time).unwrap(),
            "`eventTime` must be an RFC 3339 date-time with a time zone, got \"yesterday\"",
        ),
        (serde_json::to_vec(&bad_input).unwrap(), "missing required field `inputs[1].name`"),
        (
            b"[1, 2]".to_vec(),
            "the body is a JSON array of 2 items, but `POST /api/v1/lineage` takes one event (a JSON object); send several events to `POST /api/v1/lineage/batch`",
        ),
        (b"{\"eventTime\": \"2026-08-20T09:00:00Z\"}".to_vec(), "the body is not an OpenLineage event"),
    ];
    for (body, expected) in cases {
        let (status, answer) = post(&url, body, &[auth]).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(expected), "{answer} should say {expected}");
    }
    let (status, answer) = post(&url, b"not gzip".to_vec(), &[auth, ("content-encoding", "gzip")]).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().starts_with("the body is not valid gzip"), "{answer}");
    let (status, _) = post(&url, good.clone(), &[auth, ("content-encoding", "br")]).await;
    assert_eq!(status, 415);

    // A 10 MB event (≈125,000 inputs) is taken whole, plain and gzip-compressed.
    let big = big_event(125_000);
    assert!(big.len() > 10_000_000 && big.len() < 12 * 1024 * 1024, "{}", big.len());
    let (status, answer) = post(&url, big.clone(), &[auth]).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["ingested"]["datasets"], 125_001);
    assert_eq!(answer["ingested"]["edges"], 125_001);
    let (status, _) = post(&url, gzip(&big), &[auth, ("content-encoding", "gzip")]).await;
    assert_eq!(status, 201);
    // Over the limit: 413 before parsing, plain or as a gzip bomb (tiny compressed, huge inflated).
    let huge = big_event(160_000);
    assert!(huge.len() > 12 * 1024 * 1024);
    let (status, answer) = post(&url, huge.clone(), &[auth]).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("lineage.max_event_size"), "{answer}");
    let bomb = gzip(&vec![b' '; 64 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024);
    let (status, _) = post(&url, bomb, &[auth, ("content-encoding", "gzip")]).await;
    assert_eq!(status, 413);

    // A batch validates each event on its own.
    let batch =
        format!("[{}, {}]", String::from_utf8(good.clone()).unwrap(), serde_json::to_string(&no_run_id).unwrap());
    let (status, answer) = post(&format!("{url}/batch"), batch.into_bytes(), &[auth]).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["accepted"], 1);
    assert!(answer["errors"][0]["error"].as_str().unwrap().contains("`[1].run.runId`"), "{answer}");

    // Still serving.
    let (status, _) = get(&format!("{}/api/v1/assets/wh.public.landing/impact", server.url)).await;
    assert_eq!(status, 200);
    agent.close().await;
}

const FAILED_LOAD: &str = r#"{
  "eventType": "FAIL", "eventTime": "2026-08-20T09:30:00Z",
  "producer": "https://github.com/apache/airflow/tree/providers-openlineage/2.20.3",
  "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
  "run": {"runId": "0191c9a2-7f3e-7a10-9b1d-3c2f5e6a7b8d",
          "facets": {"errorMessage": {"_producer": "x", "_schemaURL": "x", "message": "connection to stripe API timed out", "programmingLanguage": "python"}}},
  "job": {"namespace": "airflow", "name": "stripe_dag.load_refunds"},
  "inputs": [{"namespace": "https://api.stripe.com", "name": "refunds"}],
  "outputs": [{"namespace": "NAMESPACE", "name": "DATABASE.stripe.refund_events"}]
}"#;

/// `postgres://…@host:port/db` → (`postgres://host:port`, `db`).
fn namespace_of(url: &str) -> (String, String) {
    let rest = url.split_once("://").unwrap().1;
    let (authority, path) = rest.split_once('/').unwrap();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (format!("postgres://{host}"), path.split('?').next().unwrap().to_string())
}

#[tokio::test]
async fn a_restart_on_a_postgres_store_keeps_openlineage_lineage_and_the_cli_reads_it() {
    let store = require!(postgres_db("lineage_store").await);
    let python = require!(python());
    let config = format!(
        "version: 1\nstore: \"{store}\"\nsources:\n  wh:\n    kind: postgres\n    url: \"postgres://tt@127.0.0.1:5432/shopdb\"\nlineage:\n  api_key: {TOKEN}\n  reload_interval: 1s\nchecks: [checks/]\n"
    );
    let ws = Workspace::new(&config, &[("revenue.yaml", REVENUE_CHECKS)]);
    let agent = ws.agent(clock()).await;
    let server = serve(&agent).await;
    let stop = CancellationToken::new();
    let saver = tokio::spawn(telltale::runtime::run_lineage(Arc::clone(&agent), stop.clone()));
    assert_eq!(emit(&python, &server.url, &["--api-key", TOKEN]).await["sent"], 4);
    let edges_before = agent.lineage.graph().edge_count();
    stop.cancel();
    saver.await.unwrap();
    drop(server);
    agent.close().await;

    let agent = ws.agent(clock()).await;
    {
        let graph = agent.lineage.graph();
        assert_eq!(graph.edge_count(), edges_before, "every edge came back");
        let orders = graph.find(&format!("{NS}/shopdb.public.orders")).expect("the dataset came back");
        let asset = graph.asset(orders);
        assert_eq!(asset.asset_id.as_ref().map(|a| a.as_str()), Some("wh.public.orders"));
        assert!(asset.column_lineage.is_some(), "column lineage came back");
        assert_eq!(asset.owner.as_ref().and_then(|o| o.name.as_deref()), Some("commerce"));
        let revenue = graph.find_asset(&"wh.analytics.revenue".parse().unwrap()).unwrap();
        let run = graph.asset(revenue).last_run.clone().expect("the failed run came back");
        assert_eq!(run.state, telltale::catalog::RunState::Fail);
        assert!(run.message.unwrap().contains("is locked"));
        let raw = graph.find(&format!("{NS}/shopdb.public.raw_orders")).unwrap();
        let load = graph.find("job:airflow/shop_dag.load_orders").unwrap();
        let edge = graph.edge_between(raw, load).expect("raw → load job");
        assert_eq!(edge.job, Some(load));
    }
    agent.close().await;

    // The CLI reads the same store: a text tree and JSON.
    let run = |format: &str| {
        Command::new(binary())
            .args(["lineage", "impact", "wh.public.raw_orders", "--format", format, "--config"])
            .arg(ws.config_path())
            .output()
            .unwrap()
    };
    let out = run("json");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["total"], 3, "{report:#}");
    assert_eq!(report["key_total"], 1);
    let text = String::from_utf8(run("text").stdout).unwrap();
    assert!(text.starts_with("wh.public.raw_orders (table): 3 downstream, 1 key\n"), "{text}");
    assert!(text.contains("├── dashboards (1, 1 key)\n│   └── ★ declared.dashboard.Revenue board dashboard, finance-analytics@shop.example"), "{text}");
    assert!(text.contains("└── tables (2, 0 key)"), "{text}");
    let depth = Command::new(binary())
        .args(["lineage", "impact", "wh.public.raw_orders", "--depth", "1", "--config"])
        .arg(ws.config_path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&depth.stdout).contains("1 downstream, 0 key (within 1 hops)"), "{depth:?}");
    let unknown = Command::new(binary())
        .args(["lineage", "impact", "wh.public.nope", "--config"])
        .arg(ws.config_path())
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}

async fn bodies(server: &MockServer, at: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == at)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

const SHOP_CHECKS: &str = r#"version: 1
assets:
  - source: wh
    table: stripe.refund_events
    owner: "@payments"
    tier: 1
    monitors:
      freshness: {timestamp_column: at, max_age: 1h}
  - source: wh
    table: analytics_marts.fct_orders
    owner: "@finance"
    tier: 1
    monitors:
      freshness: {timestamp_column: at, max_age: 1h}
"#;

#[tokio::test]
async fn a_broken_source_pages_once_with_its_blast_radius_and_downstream_anomalies_join_as_symptoms() {
    let url = require!(postgres_db("root_cause").await);
    pg_exec(
        &url,
        &[
            "CREATE SCHEMA stripe",
            "CREATE SCHEMA analytics_marts",
            "CREATE TABLE stripe.refund_events (id serial, at timestamptz)",
            "CREATE TABLE analytics_marts.fct_orders (id serial, at timestamptz)",
            "INSERT INTO stripe.refund_events (at) VALUES (now() - interval '10 minutes')",
            "INSERT INTO analytics_marts.fct_orders (at) VALUES (now() - interval '10 minutes')",
        ],
    )
    .await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_string("ok")).mount(&server).await;
    let manifest = format!("{}/tests/fixtures/dbt/shop/manifest.json", env!("CARGO_MANIFEST_DIR"));
    let extra = format!(
        "channels:\n  team:\n    kind: slack\n    webhook_url: {uri}/slack\n  finance:\n    kind: webhook\n    url: {uri}/finance\n\
         routes:\n  - match: {{downstream_owner: Finance Analytics}}\n    channels: [finance]\n    continue: true\n  - channels: [team]\n\
         lineage:\n  dbt_manifest: {manifest}\n  source: wh\n",
        uri = server.uri()
    );
    let ws = Workspace::new(&config_with_source("postgres", &url, &extra), &[("shop.yaml", SHOP_CHECKS)]);
    let agent = ws.agent(Arc::new(telltale::clock::SystemClock) as SharedClock).await;
    // The Airflow job loading refunds failed (OpenLineage), which the incident should say.
    let (namespace, database) = namespace_of(&url);
    let event = FAILED_LOAD.replace("NAMESPACE", &namespace).replace("DATABASE", &database);
    let event = telltale::catalog::openlineage::parse_event(event.as_bytes()).unwrap();
    agent.lineage.ingest(&event, agent.clock.now()).unwrap();

    let stop = CancellationToken::new();
    let dispatcher = tokio::spawn(telltale::runtime::run_dispatcher(
        Arc::clone(&agent),
        telltale::runtime::build_channels(&agent.config.alerting),
        stop.clone(),
    ));
    let token = CancellationToken::new();
    let (source, downstream) = ("wh.stripe.refund_events", "wh.analytics_marts.fct_orders");
    let run_both = || async {
        let mut outcomes = agent.asset_job(&downstream.parse().unwrap(), &token).await;
        outcomes.extend(agent.asset_job(&source.parse().unwrap(), &token).await);
        agent.process_outcomes(&outcomes).await;
    };
    run_both().await;
    assert!(agent.store.incidents(&IncidentFilter { limit: 10, ..Default::default() }).await.unwrap().is_empty());

    // The source stops loading; so, an hour later, does everything built from it.
    pg_exec(
        &url,
        &[
            "UPDATE stripe.refund_events SET at = now() - interval '3 hours'",
            "UPDATE analytics_marts.fct_orders SET at = now() - interval '2 hours'",
        ],
    )
    .await;
    run_both().await;
    let slack = eventually(Duration::from_secs(10), || async {
        let b = bodies(&server, "/slack").await;
        (!b.is_empty()).then_some(b)
    })
    .await
    .expect("a page on Slack");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    run_both().await; // still broken: no new page
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let slack_all = bodies(&server, "/slack").await;
    assert_eq!(slack_all.len(), 1, "one page per root cause: {slack_all:#?}");
    let page = &slack[0];

    // The documented Block Kit message: header, summary, fields, next step, blast radius, context.
    let blocks = page["blocks"].as_array().expect("Block Kit blocks");
    assert_eq!(blocks[0]["type"], "header", "{page:#}");
    assert!(blocks[0]["text"]["text"].as_str().unwrap().contains("refund_events"), "{page:#}");
    let texts: Vec<&str> = blocks.iter().filter_map(|b| b["text"]["text"].as_str()).collect();
    let radius = texts.iter().find(|t| t.starts_with("*Blast radius:*")).unwrap_or_else(|| panic!("{page:#}"));
    assert!(radius.starts_with("*Blast radius:* 12 downstream assets · 5 key assets"), "{radius}");
    for expected in [
        "• `exposure.shop.executive_revenue` (dashboard) — Finance Analytics (finance-analytics@shop.example)",
        "• `exposure.shop.customer_360` (dashboard) — Customer Data (customer-data@shop.example)",
        "• `exposure.shop.churn_model` (ml_model) — Data Science (data-science@shop.example)",
        "• `exposure.shop.storefront_order_status` (application) — storefront@shop.example",
        "• `exposure.shop.refunds_review` (notebook) — Payments Ops",
    ] {
        assert!(radius.contains(expected), "{radius}\nmissing: {expected}");
    }
    assert!(page["text"].as_str().unwrap().contains("(12 downstream, 5 key assets)"), "{page:#}");
    let all_text = texts.join("\n");
    assert!(
        all_text.contains("The job `airflow/stripe_dag.load_refunds` that writes wh.stripe.refund_events failed at 2026-08-20 09:30 UTC"),
        "the failed job run is in the page: {all_text}"
    );
    // The owners of key dashboards downstream heard about it through their route.
    let finance = bodies(&server, "/finance").await;
    assert_eq!(finance.len(), 1, "{finance:#?}");

    // One incident: the root cause, with the downstream freshness problem as a symptom.
    let incidents = agent.store.incidents(&IncidentFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let incident = &incidents[0];
    assert_eq!(incident.asset, source);
    assert_eq!(incident.member_keys, vec![format!("{source}/freshness"), format!("{downstream}/freshness")]);
    assert!(
        incident.explanation.contains("symptom downstream: wh.analytics_marts.fct_orders freshness"),
        "{}",
        incident.explanation
    );
    let chain = vec![source, "wh.analytics_staging.stg_refunds", "wh.analytics_intermediate.int_payments", downstream];
    let events = agent.store.incident_events(&incident.id).await.unwrap();
    let symptom = events.iter().filter(|e| e.kind == "symptom").collect::<Vec<_>>();
    assert_eq!(symptom.len(), 1, "{events:#?}");
    assert!(
        symptom[0].detail.as_deref().unwrap().ends_with(&format!("(downstream: {})", chain.join(" → "))),
        "{symptom:?}"
    );

    let api = serve(&agent).await;
    let (_, detail) = get(&format!("{}/api/v1/incidents/{}", api.url, incident.id)).await;
    assert_eq!(detail["lineage"]["symptoms"][0]["asset"], downstream, "{detail:#}");
    assert_eq!(detail["lineage"]["symptoms"][0]["chain"], json!(chain));
    assert_eq!(detail["lineage"]["last_run"]["state"], "FAIL");
    assert_eq!(detail["lineage"]["downstream_count"], 12);

    // The downstream table is broken through its upstream (API and gate), healthy on its own.
    let (status, health) = get(&format!("{}/api/v1/assets/{downstream}/health?upstream=true", api.url)).await;
    assert_eq!(status, 503, "{health:#}");
    assert_eq!(health["status"], "broken");
    assert_eq!(health["open_incidents"], json!([]));
    assert_eq!(health["upstream_incidents"][0]["asset"], source);
    assert_eq!(health["upstream_incidents"][0]["chain"], json!(chain));
    let (status, _) = get(&format!("{}/api/v1/assets/{downstream}/health", api.url)).await;
    assert_eq!(status, 200);
    let gate = |upstream: bool| {
        let mut c = Command::new(binary());
        c.args(["gate", downstream, "--config"]).arg(ws.config_path());
        if upstream {
            c.arg("--upstream");
        }
        c.output().unwrap()
    };
    let broken = gate(true);
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    let said = String::from_utf8_lossy(&broken.stdout);
    assert!(said.contains(&format!("upstream SEV-1 {}", incident.id)) && said.contains(&chain.join(" → ")), "{said}");
    assert_eq!(gate(false).status.code(), Some(0));

    stop.cancel();
    dispatcher.await.unwrap();
    agent.close().await;
}

#[test]
fn declared_lineage_and_lineage_settings_are_validated_with_file_and_line() {
    let checks = r#"version: 1
assets:
  - source: wh
    table: orders
    upstream: [orders, whx.public.raw]
    downstream:
      - wh.marts.fct_orders
      - name: Board
        kind: dashbord
        urll: https://bi.example.com/d/1
      - name: Churn
        kind: ml_model
        url: not-a-url
    monitors:
      freshness: {max_age: 1h}
"#;
    let ws = Workspace::new(&config_with_source("postgres", "postgres://u@h/db", ""), &[("o.yaml", checks)]);
    let config = telltale::config::Config::load(&ws.config_path()).unwrap();
    let errors = telltale::check::CheckSet::load(&config).unwrap_err().to_string();
    let file = ws.path().join("checks/o.yaml");
    let file = file.display();
    for expected in [
        format!("{file}:5:16: assets[0].upstream[0]: `orders` is not a table; expected `source.schema.table`"),
        format!("{file}:5:24: assets[0].upstream[1]: unknown source `whx` in `whx.public.raw` (did you mean `wh`?)"),
        format!("{file}:9:15: assets[0].downstream[1].kind: unknown kind `dashbord` (did you mean `dashboard`?)"),
        format!("{file}:10:9: assets[0].downstream[1].urll: unknown key `urll` (did you mean `url`?)"),
        format!("{file}:11:9: assets[0].downstream[2].url: `not-a-url` is not a URL; expected `https://…`"),
    ] {
        assert!(errors.contains(&expected), "{errors}\nmissing: {expected}");
    }
    assert_eq!(errors.lines().count(), 5, "{errors}");

    let parse = |lineage: &str| {
        let text =
            format!("version: 1\nsources:\n  wh:\n    kind: postgres\n    url: postgres://u@h/db\nlineage:\n{lineage}");
        telltale::config::Config::parse(std::path::Path::new("t.yaml"), &text, |_| None).map(|c| c.lineage)
    };
    let errors =
        parse("  dbt_manifest: m.json\n  max_event_size: lots\n  reload_intervall: 5s\n  api_key: ${OL_KEY}\n")
            .unwrap_err()
            .to_string();
    for expected in [
        "t.yaml:7:3: lineage: missing `source`: expected the source whose tables the manifest describes",
        "t.yaml:8:19: lineage.max_event_size: expected a size of at least 1KB, such as `32MB`",
        "t.yaml:9:3: lineage.reload_intervall: unknown key `reload_intervall` (did you mean `reload_interval`?)",
        "t.yaml:10:12: lineage.api_key: environment variable `OL_KEY` is not set",
    ] {
        assert!(errors.contains(expected), "{errors}\nmissing: {expected}");
    }
    let ok = parse("  api_key: k\n  max_event_size: 2MB\n  root_cause_window: 2h\n  upstream_depth: 3\n").unwrap();
    assert_eq!(ok.max_event_bytes, 2 * 1024 * 1024);
    assert_eq!(ok.root_cause_window, Duration::from_secs(7200));
    assert_eq!(ok.upstream_depth, 3);
    assert_eq!(ok.api_key.map(|k| k.expose().to_string()), Some("k".into()));
}

#[tokio::test]
async fn the_dbt_manifest_is_reloaded_when_it_changes() {
    let fixture = format!("{}/tests/fixtures/dbt/shop/manifest.json", env!("CARGO_MANIFEST_DIR"));
    let ws = Workspace::new(
        &config_with_source(
            "postgres",
            "postgres://u@h/db",
            "lineage:\n  dbt_manifest: target/manifest.json\n  dbt_run_results: target/run_results.json\n  source: wh\n  reload_interval: 1s\n",
        ),
        &[],
    );
    let manifest = ws.path().join("target/manifest.json");
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    std::fs::copy(&fixture, &manifest).unwrap();
    let results_fixture = fixture.replace("manifest.json", "run_results.json");
    let results = ws.path().join("target/run_results.json");
    std::fs::copy(&results_fixture, &results).unwrap();
    let agent = ws.agent(Arc::new(telltale::clock::SystemClock) as SharedClock).await;
    let last_run = |agent: &Agent| {
        let graph = agent.lineage.graph();
        graph.asset(graph.find("model.shop.fct_orders").unwrap()).last_run.clone().expect("a dbt run")
    };
    assert_eq!((last_run(&agent).job.as_str(), last_run(&agent).state), ("dbt", telltale::catalog::RunState::Complete));
    let edge = |agent: &Agent| {
        let graph = agent.lineage.graph();
        let (ltv, churn) =
            (graph.find("model.shop.customer_ltv").unwrap(), graph.find("exposure.shop.churn_model").unwrap());
        graph.edge_between(ltv, churn).is_some()
    };
    assert!(edge(&agent));
    assert_eq!(agent.lineage.reload_manifest(agent.clock.now()), Ok(None), "unchanged: not re-read");

    let stop = CancellationToken::new();
    let watcher = tokio::spawn(telltale::runtime::run_lineage(Arc::clone(&agent), stop.clone()));
    // A broken manifest keeps the lineage as it was.
    std::fs::write(&manifest, b"{\"metadata\": {}").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(edge(&agent), "a broken manifest keeps the previous lineage");
    // The churn model no longer reads customer_ltv: the edge goes at the next reload.
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
    doc["exposures"]["exposure.shop.churn_model"]["depends_on"]["nodes"] = json!([]);
    std::fs::write(&manifest, serde_json::to_vec(&doc).unwrap()).unwrap();
    let gone = eventually(Duration::from_secs(10), || async { (!edge(&agent)).then_some(()) }).await;
    assert!(gone.is_some(), "the reload withdrew the edge");
    // dbt fails to build fct_orders: its last run says so once run_results.json is rewritten.
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&results_fixture).unwrap()).unwrap();
    for result in doc["results"].as_array_mut().unwrap() {
        if result["unique_id"] == "model.shop.fct_orders" {
            result["status"] = json!("error");
            result["message"] = json!("relation \"analytics_intermediate.int_payments\" does not exist");
        }
    }
    std::fs::write(&results, serde_json::to_vec(&doc).unwrap()).unwrap();
    let failed = eventually(Duration::from_secs(10), || async {
        let run = last_run(&agent);
        (run.state == telltale::catalog::RunState::Fail).then_some(run)
    })
    .await
    .expect("the failed dbt run");
    assert!(failed.message.unwrap().contains("does not exist"));
    let graph_has_orders = agent.lineage.graph().find("model.shop.fct_orders").is_some();
    assert!(graph_has_orders);
    stop.cancel();
    watcher.await.unwrap();
    agent.close().await;
}

// ------------------------------------------------------------------ store: ids, migration, retention --

/// A fresh store of each kind: a SQLite file, and a database on the test PostgreSQL.
async fn stores(hint: &str) -> Vec<(String, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![(format!("sqlite://{}/store.db", dir.path().display()), dir)];
    if let Some(url) = postgres_db(hint).await {
        urls.push((url, tempfile::tempdir().unwrap()));
    }
    urls
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().unwrap()
}

fn stored_node(key: &str, kind: &str, updated: &str) -> telltale::store::StoredNode {
    let (namespace, name) = key.trim_start_matches("job:").split_once('/').unwrap();
    telltale::store::StoredNode {
        key: key.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
        owner: None,
        column_lineage: None,
        updated_at: at(updated),
    }
}

fn stored_edge(from: &str, to: &str, job: Option<&str>, seen: &str) -> telltale::store::StoredEdge {
    telltale::store::StoredEdge { from: from.into(), to: to.into(), job: job.map(String::from), seen_at: at(seen) }
}

/// The keys of the loaded edges (ids resolved through the loaded nodes), sorted.
fn loaded_edges(loaded: &telltale::store::LoadedLineage) -> Vec<(String, String, Option<String>, i64)> {
    let key = |id: i64| loaded.nodes.iter().find(|(i, _)| *i == id).map(|(_, n)| n.key.clone()).expect("edge id");
    let mut edges: Vec<_> = loaded.edges.iter().map(|e| (key(e.from), key(e.to), e.job.map(key), e.seen_ms)).collect();
    edges.sort();
    edges
}

#[tokio::test]
async fn learned_lineage_is_stored_by_node_id_and_pruned_past_its_retention_on_sqlite_and_postgres() {
    let all = stores("lineage_ids").await;
    if in_ci() {
        assert_eq!(all.len(), 2, "CI=true needs the test PostgreSQL");
    }
    for (url, _dir) in &all {
        let store = telltale::store::Store::open(url).await.unwrap();
        let (raw, orders, job) = ("pg://h:5432/db.public.raw", "pg://h:5432/db.public.orders", "job:airflow/load");
        let old = "pg://h:5432/db.public.old";
        let run = telltale::catalog::JobRun {
            job: "airflow/load".into(),
            run_id: "r1".into(),
            state: telltale::catalog::RunState::Fail,
            at: at("2026-08-20T09:00:00Z"),
            message: Some("boom".into()),
        };
        let batch = telltale::store::LineageBatch {
            nodes: vec![
                stored_node(raw, "dataset", "2026-08-20T09:00:00Z"),
                stored_node(orders, "dataset", "2026-08-20T09:00:00Z"),
                stored_node(job, "job", "2026-08-20T09:00:00Z"),
                stored_node(old, "dataset", "2026-01-01T00:00:00Z"),
            ],
            edges: vec![
                stored_edge(raw, job, Some(job), "2026-08-20T09:00:00Z"),
                stored_edge(job, orders, Some(job), "2026-08-20T09:00:00Z"),
                stored_edge(old, job, Some(job), "2026-01-01T00:00:00Z"),
            ],
            runs: vec![(orders.to_string(), run.clone())],
        };
        store.save_lineage(&batch).await.unwrap();
        // A later batch names nodes it does not carry (saved before: looked up by key), and an
        // older sighting never moves an edge's time back.
        let later = telltale::store::LineageBatch {
            edges: vec![
                stored_edge(raw, job, None, "2026-08-21T09:00:00Z"),
                stored_edge(job, orders, Some(job), "2026-08-19T09:00:00Z"),
                stored_edge("pg://h:5432/db.public.unknown", job, None, "2026-08-21T09:00:00Z"),
            ],
            ..Default::default()
        };
        store.save_lineage(&later).await.unwrap();
        let loaded = store.load_lineage().await.unwrap();
        assert_eq!(loaded.nodes.len(), 4, "{url}");
        let ms = |t: &str| at(t).timestamp_millis();
        assert_eq!(
            loaded_edges(&loaded),
            vec![
                (job.to_string(), orders.to_string(), Some(job.to_string()), ms("2026-08-20T09:00:00Z")),
                (old.to_string(), job.to_string(), Some(job.to_string()), ms("2026-01-01T00:00:00Z")),
                (raw.to_string(), job.to_string(), Some(job.to_string()), ms("2026-08-21T09:00:00Z")),
            ],
            "{url}: the edge to an unknown node is not saved"
        );
        assert_eq!(loaded.runs, vec![(orders.to_string(), run)]);

        // The agent's graph loads it, then retention (90 days before 2026-08-21) forgets the old
        // edge in the graph and in the store, with the node nothing refers to any more.
        let config = format!(
            "version: 1\nstore: \"{url}\"\nsources:\n  wh:\n    kind: postgres\n    url: \"postgres://u@h:5432/db\"\n"
        );
        let config = telltale::config::Config::parse(std::path::Path::new("t.yaml"), &config, |_| None).unwrap();
        assert_eq!(config.lineage.retention, Duration::from_secs(90 * 86_400), "the documented default");
        let lineage = telltale::runtime::Lineage::new(&config);
        let stats =
            lineage.load(&telltale::check::CheckSet::default(), &store, at("2026-08-21T10:00:00Z")).await.unwrap();
        assert_eq!((stats.stored_nodes, stats.stored_edges), (4, 3));
        assert_eq!(lineage.graph().edge_count(), 3);
        let pruned = lineage.prune(&store, at("2026-08-21T10:00:00Z"), config.lineage.retention).await.unwrap();
        assert_eq!(pruned, telltale::store::LineagePruned { edges: 1, runs: 0, nodes: 1 }, "{url}");
        assert_eq!(lineage.graph().edge_count(), 2, "the graph forgot the old edge too");
        let loaded = store.load_lineage().await.unwrap();
        assert_eq!(loaded.nodes.len(), 3);
        assert_eq!(loaded.edges.len(), 2);
        // A year later everything learned is gone, run included.
        let pruned = lineage.prune(&store, at("2027-09-01T00:00:00Z"), config.lineage.retention).await.unwrap();
        assert_eq!(pruned, telltale::store::LineagePruned { edges: 2, runs: 1, nodes: 3 }, "{url}");
        assert_eq!(lineage.graph().edge_count(), 0);
        assert_eq!(store.load_lineage().await.unwrap(), telltale::store::LoadedLineage::default());
        store.close().await;
    }
}

#[tokio::test]
async fn a_learned_graph_wider_than_one_packed_read_loads_back_whole_on_sqlite_and_postgres() {
    // 20,000 nodes span several of SQLite's packed edge reads (8,192 source ids each); every
    // other edge has no job, and the newest sighting of each edge is the one kept.
    let all = stores("lineage_wide").await;
    if in_ci() {
        assert_eq!(all.len(), 2, "CI=true needs the test PostgreSQL");
    }
    let n = 20_000usize;
    let keys: Vec<String> = (0..n).map(|i| format!("pg://h:5432/db.public.t{i}")).collect();
    let job = "job:airflow/load";
    let mut nodes: Vec<_> = keys.iter().map(|k| stored_node(k, "dataset", "2026-08-20T09:00:00Z")).collect();
    nodes.push(stored_node(job, "job", "2026-08-20T09:00:00Z"));
    let mut expected = std::collections::BTreeSet::new();
    let mut edges = Vec::new();
    for i in 0..n {
        for to in [(i + 1) % n, (i * 7_919 + 13) % n] {
            if to == i || !expected.insert((i, to)) {
                continue;
            }
            let with_job = i % 3 != 0;
            edges.push(stored_edge(&keys[i], &keys[to], with_job.then_some(job), "2026-08-20T09:00:00Z"));
        }
    }
    for (url, _dir) in &all {
        let store = telltale::store::Store::open(url).await.unwrap();
        store
            .save_lineage(&telltale::store::LineageBatch { nodes: nodes.clone(), edges: edges.clone(), runs: vec![] })
            .await
            .unwrap();
        let loaded = store.load_lineage().await.unwrap();
        assert_eq!(loaded.nodes.len(), n + 1, "{url}");
        let key: std::collections::HashMap<i64, &str> =
            loaded.nodes.iter().map(|(id, node)| (*id, node.key.as_str())).collect();
        let mut got: Vec<(String, String, Option<String>, i64)> = loaded
            .edges
            .iter()
            .map(|e| (key[&e.from].to_owned(), key[&e.to].to_owned(), e.job.map(|j| key[&j].to_owned()), e.seen_ms))
            .collect();
        got.sort();
        let mut want: Vec<_> =
            edges.iter().map(|e| (e.from.clone(), e.to.clone(), e.job.clone(), e.seen_at.timestamp_millis())).collect();
        want.sort();
        assert_eq!(got.len(), want.len(), "{url}");
        assert!(got == want, "{url}: the loaded edges differ from the saved ones");
        assert!(got.iter().any(|e| e.2.is_none()) && got.iter().any(|e| e.2.is_some()));
        store.close().await;
    }
}

/// Applies migrations 0001–0004 only (copies of the committed files), as a store written before
/// integer node ids was.
async fn migrate_to_0004(url: &str, backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let source = format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.as_str() < "0005" {
            std::fs::copy(&path, dir.path().join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    let statements = [
        "INSERT INTO lineage_nodes VALUES ('ns/a', 'dataset', 'ns', 'a', NULL, NULL, 1), \
         ('ns/b', 'dataset', 'ns', 'b', '{\"name\":\"team\"}', NULL, 2), ('job:ns/j', 'job', 'ns', 'j', NULL, NULL, 3)",
        "INSERT INTO lineage_edges VALUES ('ns/a', 'job:ns/j', 'job:ns/j', 10), ('job:ns/j', 'ns/b', 'job:ns/j', 20), \
         ('ns/gone', 'ns/b', NULL, 30)",
        "INSERT INTO lineage_runs VALUES ('ns/b', 'ns/j', 'r', 'COMPLETE', 40, NULL)",
    ];
    if backend == "sqlite" {
        let options = url.parse::<sqlx::sqlite::SqliteConnectOptions>().unwrap().create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        migrator.run(&pool).await.unwrap();
        for s in statements {
            sqlx::Executor::execute(&pool, s).await.unwrap();
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        migrator.run(&pool).await.unwrap();
        for s in statements {
            sqlx::Executor::execute(&pool, s).await.unwrap();
        }
        pool.close().await;
    }
}

#[tokio::test]
async fn migration_0005_carries_lineage_stored_by_key_over_to_node_ids() {
    for (url, _dir) in stores("lineage_migrate").await {
        let backend = if url.starts_with("sqlite") { "sqlite" } else { "postgres" };
        migrate_to_0004(&url, backend).await;
        let store = telltale::store::Store::open(&url).await.unwrap();
        let loaded = store.load_lineage().await.unwrap();
        let keys: Vec<&str> = loaded.nodes.iter().map(|(_, n)| n.key.as_str()).collect();
        assert_eq!(keys, vec!["job:ns/j", "ns/a", "ns/b"], "{backend}");
        assert_eq!(loaded.nodes[2].1.owner.as_ref().and_then(|o| o.name.as_deref()), Some("team"));
        assert_eq!(
            loaded_edges(&loaded),
            vec![
                ("job:ns/j".into(), "ns/b".into(), Some("job:ns/j".into()), 20),
                ("ns/a".into(), "job:ns/j".into(), Some("job:ns/j".into()), 10),
            ],
            "{backend}: the edge from a key with no node row could never load and is dropped"
        );
        assert_eq!(loaded.runs.len(), 1);
        // New rows get new ids after the carried-over ones.
        let batch = telltale::store::LineageBatch {
            nodes: vec![stored_node("ns/c", "dataset", "2026-08-20T09:00:00Z")],
            edges: vec![stored_edge("ns/b", "ns/c", None, "2026-08-20T09:00:00Z")],
            ..Default::default()
        };
        store.save_lineage(&batch).await.unwrap();
        let loaded = store.load_lineage().await.unwrap();
        assert_eq!(loaded.nodes.len(), 4);
        assert_eq!(loaded.nodes.iter().map(|(id, _)| *id).max(), Some(4), "{backend}");
        assert_eq!(loaded.edges.len(), 3);
        store.close().await;
    }
}

// ------------------------------------------------------------------------- declared lineage reload --

const DECLARED_V1: &str = r#"version: 1
assets:
  - source: wh
    table: public.orders
    upstream: [wh.public.raw_orders]
    downstream:
      - wh.analytics.revenue
      - name: Orders board
        kind: dashboard
        owner: ops@shop.example
        url: https://bi.example.com/d/orders
    monitors:
      freshness: {max_age: 1h}
"#;

const DECLARED_V2: &str = r#"version: 1
assets:
  - source: wh
    table: public.orders
    upstream: [wh.public.raw_orders]
    downstream:
      - wh.analytics.margin
    monitors:
      freshness: {max_age: 1h}
"#;

#[tokio::test]
async fn declared_lineage_is_reloaded_when_check_files_change_and_undeclared_edges_go() {
    let ws = Workspace::new(
        &config_with_source("postgres", "postgres://u@h/db", "lineage:\n  reload_interval: 1s\n"),
        &[("orders.yaml", DECLARED_V1)],
    );
    let agent = ws.agent(Arc::new(telltale::clock::SystemClock) as SharedClock).await;
    let declared = |agent: &Agent| {
        let graph = agent.lineage.graph();
        let mut edges: Vec<String> = graph
            .edges()
            .filter(|(_, e)| e.last_seen(telltale::catalog::Origin::Declared).is_some())
            .map(|(_, e)| format!("{} -> {}", graph.asset(e.from).key, graph.asset(e.to).key))
            .collect();
        edges.sort();
        edges
    };
    let v1 = vec![
        "wh.public.orders -> declared.dashboard.Orders board",
        "wh.public.orders -> wh.analytics.revenue",
        "wh.public.raw_orders -> wh.public.orders",
    ];
    assert_eq!(declared(&agent), v1);
    assert_eq!(agent.lineage.reload_declared(&agent.config, agent.clock.now()), Ok(None), "unchanged: not re-read");

    // An OpenLineage job also reads orders and writes revenue (orders → job → revenue): those
    // edges stay when the declared orders → revenue goes.
    let event = json!({
        "eventType": "COMPLETE", "eventTime": "2026-08-20T09:00:00Z", "producer": "https://x",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0191c9a2-7f3e-7a10-9b1d-3c2f5e6a7b8c"}, "job": {"namespace": "airflow", "name": "revenue"},
        "inputs": [{"namespace": "postgres://h:5432", "name": "db.public.orders"}],
        "outputs": [{"namespace": "postgres://h:5432", "name": "db.analytics.revenue"}]
    });
    let event = telltale::catalog::openlineage::parse_event(event.to_string().as_bytes()).unwrap();
    agent.lineage.ingest(&event, agent.clock.now()).unwrap();

    let stop = CancellationToken::new();
    let watcher = tokio::spawn(telltale::runtime::run_lineage(Arc::clone(&agent), stop.clone()));
    // A check file with a mistake: logged, the declared lineage stays as it was.
    std::fs::write(ws.path().join("checks/orders.yaml"), DECLARED_V1.replace("kind: dashboard", "kind: dashbord"))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(declared(&agent), v1, "a broken check file keeps the previous declared lineage");
    let error = telltale::runtime::Lineage::new(&agent.config);
    std::fs::write(ws.path().join("checks/orders.yaml"), "version: 1\nassets: 7\n").unwrap();
    let message = error.reload_declared(&agent.config, agent.clock.now()).unwrap_err();
    assert!(message.contains("checks/orders.yaml:2:"), "file and line: {message}");

    // The dashboard and the revenue table are no longer declared, margin is: at the next tick
    // the graph follows.
    std::fs::write(ws.path().join("checks/orders.yaml"), DECLARED_V2).unwrap();
    let v2 = vec!["wh.public.orders -> wh.analytics.margin", "wh.public.raw_orders -> wh.public.orders"];
    let reloaded = eventually(Duration::from_secs(10), || async { (declared(&agent) == v2).then_some(()) }).await;
    assert!(reloaded.is_some(), "declared lineage reloaded: {:?}", declared(&agent));
    {
        let graph = agent.lineage.graph();
        let orders = graph.find_asset(&"wh.public.orders".parse().unwrap()).unwrap();
        let revenue = graph.find_asset(&"wh.analytics.revenue".parse().unwrap()).unwrap();
        assert!(graph.edge_between(orders, revenue).is_none(), "the declared edge is gone");
        let job = graph.find("job:airflow/revenue").unwrap();
        let edge = graph.edge_between(orders, job).expect("OpenLineage's orders → job edge stays");
        assert_eq!(edge.origins().collect::<Vec<_>>(), vec![telltale::catalog::Origin::OpenLineage]);
        let board = graph.find("declared.dashboard.Orders board").unwrap();
        assert_eq!(graph.parents(board).count(), 0, "the dashboard is no longer downstream");
    }
    let impact = agent.lineage.impact("wh.public.orders", None, None).unwrap();
    assert_eq!(impact.total, 2, "margin, and revenue through the job: {impact:#?}");
    // A new check file declaring more is picked up too.
    std::fs::write(
        ws.path().join("checks/more.yaml"),
        "version: 1\nassets:\n  - source: wh\n    table: analytics.margin\n    downstream: [wh.analytics.board_feed]\n    monitors:\n      freshness: {max_age: 1h}\n",
    )
    .unwrap();
    let added = eventually(Duration::from_secs(10), || async { (declared(&agent).len() == 3).then_some(()) }).await;
    assert!(added.is_some(), "{:?}", declared(&agent));
    stop.cancel();
    watcher.await.unwrap();
    agent.close().await;
}

// --------------------------------------------------- root cause opened after its downstream symptoms --

const SIBLINGS: &str = r#"version: 1
assets:
  - source: wh
    table: public.raw
    tier: 1
    downstream: [wh.public.a, wh.public.b]
    monitors:
      freshness: {timestamp_column: at, max_age: 1h}
  - source: wh
    table: public.a
    tier: 2
    monitors:
      freshness: {timestamp_column: at, max_age: 1h}
  - source: wh
    table: public.b
    tier: 2
    monitors:
      freshness: {timestamp_column: at, max_age: 1h}
"#;

/// `raw` and its two downstream siblings `a` and `b` (see `SIBLINGS`), each freshly loaded.
const RAW_A_B: &[&str] = &[
    "CREATE TABLE raw (id serial, at timestamptz)",
    "CREATE TABLE a (id serial, at timestamptz)",
    "CREATE TABLE b (id serial, at timestamptz)",
    "INSERT INTO raw (at) VALUES (now() - interval '10 minutes')",
    "INSERT INTO a (at) VALUES (now() - interval '10 minutes')",
    "INSERT INTO b (at) VALUES (now() - interval '10 minutes')",
];

#[tokio::test]
async fn an_upstream_incident_opened_later_absorbs_open_downstream_incidents_without_paging_twice() {
    let url = require!(postgres_db("absorb").await);
    pg_exec(&url, RAW_A_B).await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_string("ok")).mount(&server).await;
    let extra = format!(
        "channels:\n  team:\n    kind: slack\n    webhook_url: {}/slack\nroutes:\n  - channels: [team]\n",
        server.uri()
    );
    let ws = Workspace::new(&config_with_source("postgres", &url, &extra), &[("siblings.yaml", SIBLINGS)]);
    let agent = ws.agent(Arc::new(telltale::clock::SystemClock) as SharedClock).await;
    let token = CancellationToken::new();
    let run = |table: &'static str| {
        let agent = Arc::clone(&agent);
        let token = token.clone();
        async move {
            let outcomes = agent.asset_job(&format!("wh.public.{table}").parse().unwrap(), &token).await;
            agent.process_outcomes(&outcomes).await;
        }
    };
    let dispatch = || {
        let stop = CancellationToken::new();
        let task = tokio::spawn(telltale::runtime::run_dispatcher(
            Arc::clone(&agent),
            telltale::runtime::build_channels(&agent.config.alerting),
            stop.clone(),
        ));
        (stop, task)
    };
    for table in ["raw", "a", "b"] {
        run(table).await;
    }
    assert!(agent.store.incidents(&IncidentFilter { limit: 10, ..Default::default() }).await.unwrap().is_empty());

    // `a` goes stale first and pages (delivered).
    pg_exec(&url, &["UPDATE a SET at = now() - interval '2 hours'"]).await;
    let (stop, task) = dispatch();
    run("a").await;
    let first = eventually(Duration::from_secs(10), || async {
        let b = bodies(&server, "/slack").await;
        (b.len() == 1).then_some(b)
    })
    .await
    .expect("a's page");
    assert!(first[0]["text"].as_str().unwrap().contains("wh.public.a"), "{:#}", first[0]);
    stop.cancel();
    task.await.unwrap();
    // `b` goes stale next; its page is still waiting in the outbox (no dispatcher).
    pg_exec(&url, &["UPDATE b SET at = now() - interval '2 hours'"]).await;
    run("b").await;
    let open = agent.store.active_incidents().await.unwrap();
    assert_eq!(open.len(), 2, "{open:#?}");
    let (inc_a, inc_b) = (open[0].clone(), open[1].clone());
    assert_eq!((inc_a.asset.as_str(), inc_b.asset.as_str()), ("wh.public.a", "wh.public.b"));

    // Then the root cause: raw stopped loading. Its incident absorbs both.
    pg_exec(&url, &["UPDATE raw SET at = now() - interval '3 hours'"]).await;
    run("raw").await;
    let open = agent.store.active_incidents().await.unwrap();
    assert_eq!(open.len(), 1, "one incident per root cause: {open:#?}");
    let root = &open[0];
    assert_eq!(root.asset, "wh.public.raw");
    assert_eq!(root.member_keys, vec!["wh.public.raw/freshness", "wh.public.a/freshness", "wh.public.b/freshness"]);
    assert!(root.explanation.contains("symptom downstream: wh.public.a freshness"), "{}", root.explanation);
    let events = agent.store.incident_events(&root.id).await.unwrap();
    let symptoms: Vec<&str> =
        events.iter().filter(|e| e.kind == "symptom").filter_map(|e| e.detail.as_deref()).collect();
    assert_eq!(symptoms.len(), 2, "{events:#?}");
    assert!(
        symptoms[0].starts_with(&format!("wh.public.a/freshness: incident {} (opened ", inc_a.id))
            && symptoms[0].ends_with("grouped under this root cause (downstream: wh.public.raw → wh.public.a)"),
        "{symptoms:?}"
    );
    for (old, delivered) in [(&inc_a, 1), (&inc_b, 0)] {
        let now = agent.store.incident(&old.id).await.unwrap().unwrap();
        assert_eq!(now.status, telltale::incident::IncidentStatus::Resolved);
        assert_eq!(now.resolved_by.as_deref(), Some(format!("telltale (symptom of {})", root.id).as_str()));
        let grouped = agent.store.incident_events(&old.id).await.unwrap();
        let grouped = grouped.iter().find(|e| e.kind == "grouped").expect("a grouped event");
        assert!(
            grouped.detail.as_deref().unwrap().ends_with(&format!("{delivered} already-sent page(s) resolved")),
            "{grouped:?}"
        );
    }
    let outbox = |id: &str| {
        let agent = Arc::clone(&agent);
        let id = id.to_string();
        async move {
            agent
                .store
                .notifications(Some(&id))
                .await
                .unwrap()
                .into_iter()
                .map(|n| format!("{} {}", n.event, n.status))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(outbox(&inc_a.id).await, vec!["triggered delivered", "resolved pending"], "a's page is closed");
    assert_eq!(outbox(&inc_b.id).await, vec!["triggered cancelled"], "b never pages");
    assert_eq!(outbox(&root.id).await, vec!["triggered pending"]);

    // Delivered: the root's page, and a's page resolved as grouped; b's page is never sent.
    let (stop, task) = dispatch();
    let all = eventually(Duration::from_secs(10), || async {
        let b = bodies(&server, "/slack").await;
        (b.len() == 3).then_some(b)
    })
    .await
    .expect("two more Slack messages");
    let texts: Vec<String> = all.iter().map(|b| b.to_string()).collect();
    assert!(
        texts[1..].iter().any(|t| t.contains("wh.public.raw") && t.contains("symptom downstream: wh.public.b")),
        "{texts:#?}"
    );
    assert!(texts[1..].iter().any(|t| t.contains("Resolved (grouped under its upstream root cause)")), "{texts:#?}");
    // Still stale downstream: symptoms of the root, no new incident, no page.
    run("a").await;
    run("b").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(bodies(&server, "/slack").await.len(), 3);
    assert_eq!(agent.store.active_incidents().await.unwrap().len(), 1);
    stop.cancel();
    task.await.unwrap();
    agent.close().await;
}

#[tokio::test]
async fn a_page_in_flight_when_its_incident_is_grouped_is_followed_by_a_resolved_notification() {
    let url = require!(postgres_db("absorb_in_flight").await);
    pg_exec(&url, RAW_A_B).await;
    // Slack answers after 3 s: long enough for the root cause to be found mid-send.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok").set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let extra = format!(
        "channels:\n  team:\n    kind: slack\n    webhook_url: {}/slack\nroutes:\n  - channels: [team]\n",
        server.uri()
    );
    let ws = Workspace::new(&config_with_source("postgres", &url, &extra), &[("siblings.yaml", SIBLINGS)]);
    let agent = ws.agent(Arc::new(telltale::clock::SystemClock) as SharedClock).await;
    let token = CancellationToken::new();
    let run = |table: &'static str| {
        let agent = Arc::clone(&agent);
        let token = token.clone();
        async move {
            let outcomes = agent.asset_job(&format!("wh.public.{table}").parse().unwrap(), &token).await;
            agent.process_outcomes(&outcomes).await;
        }
    };
    for table in ["raw", "a"] {
        run(table).await;
    }
    let stop = CancellationToken::new();
    let task = tokio::spawn(telltale::runtime::run_dispatcher(
        Arc::clone(&agent),
        telltale::runtime::build_channels(&agent.config.alerting),
        stop.clone(),
    ));

    // `a` goes stale and its page is on the wire…
    pg_exec(&url, &["UPDATE a SET at = now() - interval '2 hours'"]).await;
    run("a").await;
    let inc_a = agent.store.active_incidents().await.unwrap().remove(0);
    eventually(Duration::from_secs(10), || async {
        (server.received_requests().await.unwrap_or_default().len() == 1).then_some(())
    })
    .await
    .expect("a's page sent");
    // …when the root cause is found: a becomes its symptom while the page is in flight.
    pg_exec(&url, &["UPDATE raw SET at = now() - interval '3 hours'"]).await;
    run("raw").await;
    let grouped = agent.store.incident_events(&inc_a.id).await.unwrap();
    let grouped = grouped.iter().find(|e| e.kind == "grouped").expect("a grouped event");
    assert!(
        grouped
            .detail
            .as_deref()
            .unwrap()
            .ends_with("1 pending notification(s) cancelled, 0 already-sent page(s) resolved"),
        "the page was still pending when grouped: {grouped:?}"
    );

    // The page did go out, so a resolved notification follows it on the same channel.
    let outbox = || {
        let agent = Arc::clone(&agent);
        let id = inc_a.id.clone();
        async move {
            let entries = agent.store.notifications(Some(&id)).await.unwrap();
            entries.into_iter().map(|n| format!("{} {}", n.event, n.status)).collect::<Vec<_>>()
        }
    };
    let settled = eventually(Duration::from_secs(20), || async {
        let now = outbox().await;
        (now == ["triggered delivered", "resolved delivered"]).then_some(now)
    })
    .await;
    assert!(settled.is_some(), "a's page is closed: {:?}", outbox().await);
    let texts: Vec<String> = bodies(&server, "/slack").await.iter().map(|b| b.to_string()).collect();
    assert_eq!(texts.len(), 3, "a's page, the root's page, a's resolve: {texts:#?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("wh.public.a") && t.contains("Resolved (grouped under its upstream root cause)")),
        "{texts:#?}"
    );
    let entries = agent.store.notifications(Some(&inc_a.id)).await.unwrap();
    assert!(
        entries[0].last_error.as_deref().unwrap_or("").starts_with("delivered while being cancelled: symptom of"),
        "{:?}",
        entries[0]
    );
    let events = agent.store.incident_events(&inc_a.id).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == "notified" && e.detail.as_deref().unwrap_or("").contains("went out while"))
    );
    // Nothing pages twice: one resolve only, after the dispatcher has had time for more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(bodies(&server, "/slack").await.len(), 3);
    stop.cancel();
    task.await.unwrap();
    agent.close().await;
}

// ------------------------------------------------------------ live breaking schema changes and lineage --

const SCHEMA_CHECKS: &str = r#"version: 1
assets:
  - source: wh
    table: public.orders
    downstream:
      - wh.public.revenue
      - name: Revenue board
        kind: dashboard
        owner: finance@shop.example
    monitors:
      schema: true
  - source: wh
    table: public.archive
    upstream: [wh.public.landing]
    monitors:
      schema: true
  - source: wh
    table: public.scratch
    monitors:
      schema: true
"#;

#[tokio::test]
async fn a_live_breaking_schema_change_names_its_lineage_dependents_and_only_warns_when_none() {
    let url = require!(postgres_db("live_schema").await);
    pg_exec(
        &url,
        &[
            "CREATE TABLE orders (id int, amount int, note text)",
            "CREATE TABLE archive (day date, amount int)",
            "CREATE TABLE scratch (id int, junk text)",
        ],
    )
    .await;
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("schema.yaml", SCHEMA_CHECKS)]);
    let agent = ws.agent(Arc::new(telltale::clock::SystemClock) as SharedClock).await;
    let token = CancellationToken::new();
    let first = agent.metadata_job("wh", &token).await;
    assert!(first.iter().filter(|o| o.monitor == "schema").all(|o| o.status == telltale::runtime::Status::Pass));
    pg_exec(
        &url,
        &[
            "ALTER TABLE orders DROP COLUMN note",
            "ALTER TABLE orders ALTER COLUMN amount TYPE bigint",
            "ALTER TABLE archive DROP COLUMN amount",
            "ALTER TABLE scratch DROP COLUMN junk",
        ],
    )
    .await;
    let outcomes = agent.metadata_job("wh", &token).await;
    let schema = |table: &str| {
        outcomes.iter().find(|o| o.monitor == "schema" && o.asset.as_str() == format!("wh.public.{table}")).unwrap()
    };
    // Read by a table and a dashboard: fails, naming them.
    let orders = schema("orders");
    assert_eq!(orders.status, telltale::runtime::Status::Fail);
    assert!(!orders.advisory && !orders.is_warning());
    assert_eq!(
        orders.message,
        "schema changed: column `amount` changed type from integer to bigint; column `note` removed (was text); \
         read by 2 (dashboard Revenue board, table wh.public.revenue), 2 downstream in all, including dashboard Revenue board"
    );
    // In the lineage graph with nothing downstream: a warning.
    let archive = schema("archive");
    assert_eq!(archive.status, telltale::runtime::Status::Fail);
    assert!(archive.advisory && archive.is_warning(), "{archive:?}");
    assert_eq!(archive.message, "schema changed: column `amount` removed (was integer); nothing downstream reads it");
    // Not in the lineage graph: nobody can say who reads it, so it fails as before.
    let scratch = schema("scratch");
    assert_eq!(scratch.message, "schema changed: column `junk` removed (was text)");
    assert!(!scratch.advisory);

    // The incidents say the same; the warning opens at SEV-4.
    agent.process_outcomes(&outcomes).await;
    let incidents = agent.store.active_incidents().await.unwrap();
    let of = |asset: &str| incidents.iter().find(|i| i.asset == asset).unwrap_or_else(|| panic!("{incidents:#?}"));
    assert!(of("wh.public.orders").explanation.contains("read by 2 (dashboard Revenue board"));
    assert_eq!(of("wh.public.archive").severity, 4);
    assert_ne!(of("wh.public.scratch").severity, 4);
    agent.close().await;
}

// ------------------------------------------------------------------------------- lineage from views --

#[tokio::test]
async fn view_definitions_on_postgres_and_mariadb_become_lineage() {
    let pg = require!(postgres_db("views").await);
    let my = require!(crate::common::mysql_db("views").await);
    pg_exec(
        &pg,
        &[
            "CREATE SCHEMA crm",
            "CREATE TABLE orders (id int, customer_id int, amount numeric)",
            "CREATE TABLE crm.customers (id int, name text)",
            "CREATE VIEW big_orders AS WITH big AS (SELECT * FROM orders WHERE amount > 100) \
             SELECT big.id, c.name FROM big JOIN crm.customers c ON c.id = big.customer_id",
            "CREATE VIEW crm.names AS SELECT name FROM crm.customers",
        ],
    )
    .await;
    let database = my.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
    crate::common::mysql_exec(
        &my,
        &[
            "CREATE TABLE payments (id int, order_id int, amount decimal(12,2))",
            "CREATE VIEW paid AS SELECT p.order_id, sum(p.amount) AS paid FROM payments p GROUP BY p.order_id",
        ],
    )
    .await;
    let config = format!(
        "version: 1\nstore: sqlite://state/telltale.db\nsources:\n  wh:\n    kind: postgres\n    url: \"{pg}\"\n  my:\n    kind: mysql\n    url: \"{my}\"\nlineage:\n  sql_views: true\nchecks: [checks/]\n"
    );
    let ws = Workspace::new(&config, &[]);
    let agent = ws.agent(Arc::new(telltale::clock::SystemClock) as SharedClock).await;
    assert!(agent.config.lineage.sql_views);
    agent.lineage.reload_views(&agent).await;
    let parents = |asset: &str| {
        let graph = agent.lineage.graph();
        let Some(node) = graph.find_asset(&asset.parse().unwrap()) else { return Vec::new() };
        let mut p: Vec<String> = graph.parents(node).map(|n| graph.asset(n).display_name().to_string()).collect();
        p.sort();
        p
    };
    assert_eq!(parents("wh.public.big_orders"), ["wh.crm.customers", "wh.public.orders"], "the CTE is not a table");
    assert_eq!(parents("wh.crm.names"), ["wh.crm.customers"]);
    assert_eq!(parents(&format!("my.{database}.paid")), [format!("my.{database}.payments")]);
    {
        let graph = agent.lineage.graph();
        let view = graph.find_asset(&"wh.public.big_orders".parse().unwrap()).unwrap();
        assert_eq!(graph.asset(view).kind, telltale::catalog::AssetKind::View);
        let orders = graph.find_asset(&"wh.public.orders".parse().unwrap()).unwrap();
        let edge = graph.edge_between(orders, view).unwrap();
        assert_eq!(edge.origins().collect::<Vec<_>>(), [telltale::catalog::Origin::Sql]);
    }
    let impact = agent.lineage.impact("wh.crm.customers", None, None).unwrap();
    assert_eq!(impact.total, 2, "{impact:#?}");

    // A view redefined: the next reload follows.
    pg_exec(
        &pg,
        &["CREATE OR REPLACE VIEW big_orders AS SELECT id, 'n/a'::text AS name FROM orders WHERE amount > 100"],
    )
    .await;
    agent.lineage.reload_views(&agent).await;
    assert_eq!(parents("wh.public.big_orders"), ["wh.public.orders"], "customers no longer feeds it");
    agent.close().await;
}
