//! The durable outbox: no alert is lost across a SIGKILL, none is sent twice, and a channel that
//! is down delays no other channel.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use telltale::clock::{SharedClock, SystemClock};
use telltale::incident::lifecycle::Action;
use telltale::store::IncidentFilter;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{Workspace, binary, config_with_source, eventually, pg_exec, postgres_db};
use crate::require;

const CHECKS: &str = r#"version: 1
assets:
  - source: wh
    table: orders
    tier: 2
    schedule: {every: 1h}
    monitors:
      freshness: {timestamp_column: at, max_age: 1h}
"#;

/// Successful deliveries per notification id, from the webhook's delivery header.
async fn delivered_ids(server: &MockServer) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for r in server.received_requests().await.unwrap_or_default() {
        if let Some(id) = r.headers.get("x-telltale-delivery").and_then(|v| v.to_str().ok()) {
            *out.entry(id.to_string()).or_default() += 1;
        }
    }
    out
}

async fn stale_table(url: &str) {
    pg_exec(
        url,
        &[
            "CREATE TABLE orders (id serial, at timestamptz)",
            "INSERT INTO orders (at) VALUES (now() - interval '3 hours')",
        ],
    )
    .await;
}

fn spawn_run(ws: &Workspace) -> std::process::Child {
    Command::new(binary())
        .args(["run", "--config"])
        .arg(ws.config_path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn crash_and_restart(store: &str, warehouse: &str) {
    let server = MockServer::start().await;
    // The receiver is down at first: notifications stay pending.
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let extra =
        format!("server:\n  enabled: false\nchannels:\n  hook:\n    kind: webhook\n    url: {}/hook\n", server.uri());
    let config = config_with_source("postgres", warehouse, &extra)
        .replace("store: sqlite://state/telltale.db", &format!("store: {store}"));
    let ws = Workspace::new(&config, &[("o.yaml", CHECKS)]);
    let mut child = spawn_run(&ws);
    // Let the agent create and migrate the store before the test opens it too.
    let url = resolve_store(store, &ws);
    sqlx::any::install_default_drivers();
    let migrated = eventually(Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            let pool = sqlx::AnyPool::connect(&url).await.ok()?;
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&pool).await.ok()?;
            pool.close().await;
            (n >= 3).then_some(())
        }
    })
    .await;
    assert!(migrated.is_some(), "the agent migrated its store");
    // Wait until the incident is open and its notification has failed at least once.
    let open_store = telltale::store::Store::open(&url).await.unwrap();
    let attempted = eventually(Duration::from_secs(30), || async {
        let notes = open_store.notifications(None).await.ok()?;
        notes.iter().any(|n| n.attempts >= 1 && n.status == "pending").then_some(notes)
    })
    .await
    .expect("a pending, failed notification");
    assert_eq!(attempted.len(), 1);
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    child.wait().unwrap();
    assert!(delivered_ids(&server).await.len() <= 1, "only failed attempts so far");

    // The receiver recovers; a new agent starts on the same store.
    server.reset().await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let mut child = spawn_run(&ws);
    let delivered = eventually(Duration::from_secs(30), || async {
        let notes = open_store.notifications(None).await.ok()?;
        notes.iter().all(|n| n.status == "delivered").then_some(notes)
    })
    .await;
    // Give a duplicate every chance to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let notes = delivered.expect("the pending notification is delivered after the restart");
    let ids = delivered_ids(&server).await;
    assert_eq!(ids.len(), 1, "one notification: {ids:?}");
    assert_eq!(ids.get(&notes[0].id), Some(&1), "delivered exactly once: {ids:?}");
    let incidents = open_store.incidents(&IncidentFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(incidents.len(), 1, "the restart found the open incident instead of opening another");
    assert!(incidents[0].bad_count >= 2);
    open_store.close().await;
}

fn resolve_store(store: &str, ws: &Workspace) -> String {
    match store.strip_prefix("sqlite://") {
        Some(rel) => format!("sqlite://{}", ws.path().join(rel).display()),
        None => store.to_string(),
    }
}

#[tokio::test]
async fn no_alert_is_lost_or_doubled_across_a_sigkill_with_the_sqlite_store() {
    let warehouse = require!(postgres_db("crash_sqlite").await);
    stale_table(&warehouse).await;
    crash_and_restart("sqlite://state/telltale.db", &warehouse).await;
}

#[tokio::test]
async fn no_alert_is_lost_or_doubled_across_a_sigkill_with_the_postgres_store() {
    let warehouse = require!(postgres_db("crash_pg").await);
    let store = require!(postgres_db("crash_store").await);
    stale_table(&warehouse).await;
    crash_and_restart(&store, &warehouse).await;
}

#[tokio::test]
async fn a_channel_that_is_down_delays_no_other_channel() {
    let url = require!(postgres_db("isolated").await);
    stale_table(&url).await;
    let down = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&down).await;
    let rejecting = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_payload"))
        .mount(&rejecting)
        .await;
    let up = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&up).await;
    let extra = format!(
        "channels:\n  broken:\n    kind: webhook\n    url: {}/hook\n  working:\n    kind: webhook\n    url: {}/hook\n  rejecting:\n    kind: webhook\n    url: {}/hook\n",
        down.uri(),
        up.uri(),
        rejecting.uri()
    );
    let ws = Workspace::new(&config_with_source("postgres", &url, &extra), &[("o.yaml", CHECKS)]);
    let agent = ws.agent(Arc::new(SystemClock) as SharedClock).await;
    let stop = CancellationToken::new();
    let dispatcher = tokio::spawn(telltale::runtime::run_dispatcher(
        Arc::clone(&agent),
        telltale::runtime::build_channels(&agent.config.alerting),
        stop.clone(),
    ));
    let started = Instant::now();
    let outcomes = agent.asset_job(&"wh.public.orders".parse().unwrap(), &CancellationToken::new()).await;
    agent.process_outcomes(&outcomes).await;
    let ok = eventually(Duration::from_secs(5), || async { (!up.received_requests().await?.is_empty()).then_some(()) })
        .await;
    assert!(ok.is_some(), "the working channel delivered");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    // Meanwhile the broken channel keeps retrying with backoff, and its failures are recorded.
    let retried = eventually(Duration::from_secs(8), || async {
        let notes = agent.store.notifications(None).await.ok()?;
        let broken = notes.iter().find(|n| n.channel == "broken")?;
        (broken.attempts >= 2 && broken.status == "pending").then(|| broken.clone())
    })
    .await
    .expect("the broken channel is retried");
    assert!(retried.last_error.as_deref().unwrap_or_default().contains("500"), "{retried:?}");
    // A 400 is never retried: one attempt, recorded as given up with the receiver's reason.
    let notes = agent.store.notifications(None).await.unwrap();
    let rejected = notes.iter().find(|n| n.channel == "rejecting").unwrap();
    assert_eq!((rejected.status.as_str(), rejected.attempts), ("gave_up", 1), "{rejected:?}");
    assert!(rejected.last_error.as_deref().unwrap_or_default().contains("400"), "{rejected:?}");
    assert_eq!(rejecting.received_requests().await.unwrap().len(), 1);

    // Acknowledging queues an acknowledgement for both channels; the working one gets it.
    let incident = &agent.store.incidents(&IncidentFilter { limit: 1, ..Default::default() }).await.unwrap()[0];
    agent.act_on_incident(&incident.id, Action::Acknowledge, Some("alice"), Some("looking")).await.unwrap();
    let acked =
        eventually(Duration::from_secs(5), || async { (up.received_requests().await?.len() == 2).then_some(()) }).await;
    assert!(acked.is_some());
    let events = agent.store.incident_events(&incident.id).await.unwrap();
    assert_eq!(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), vec!["opened", "acknowledged"]);
    stop.cancel();
    dispatcher.await.unwrap();
    agent.close().await;
}

#[tokio::test]
async fn a_burst_of_incidents_is_delivered_exactly_once_each() {
    let url = require!(postgres_db("burst").await);
    let mut statements = Vec::new();
    let mut checks = String::from("version: 1\nassets:\n");
    for i in 0..60 {
        statements.push(format!("CREATE TABLE t{i} (at timestamptz)"));
        statements.push(format!("INSERT INTO t{i} VALUES (now() - interval '3 hours')"));
        checks.push_str(&format!(
            "  - source: wh\n    table: t{i}\n    monitors:\n      freshness: {{timestamp_column: at, max_age: 1h}}\n"
        ));
    }
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    pg_exec(&url, &refs).await;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let extra = format!("channels:\n  hook:\n    kind: webhook\n    url: {}/hook\n", server.uri());
    let ws = Workspace::new(&config_with_source("postgres", &url, &extra), &[("c.yaml", &checks)]);
    let agent = ws.agent(Arc::new(SystemClock) as SharedClock).await;
    let stop = CancellationToken::new();
    let dispatcher = tokio::spawn(telltale::runtime::run_dispatcher(
        Arc::clone(&agent),
        telltale::runtime::build_channels(&agent.config.alerting),
        stop.clone(),
    ));
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    agent.process_outcomes(&outcomes).await;
    let delivered = eventually(Duration::from_secs(20), || async {
        let notes = agent.store.notifications(None).await.ok()?;
        (notes.len() == 60 && notes.iter().all(|n| n.status == "delivered")).then_some(())
    })
    .await;
    assert!(delivered.is_some(), "all 60 delivered");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = delivered_ids(&server).await;
    assert_eq!(ids.len(), 60);
    let doubled: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "sent more than once: {doubled:?}");
    stop.cancel();
    dispatcher.await.unwrap();
    agent.close().await;
}
