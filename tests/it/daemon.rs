//! The binary end to end on a real PostgreSQL: `check` exit codes, `measure --format json`,
//! `backfill`, and `run` serving the API until SIGTERM.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Workspace, binary, config_with_source, pg_exec, postgres_db};
use crate::require;

fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

const CHECKS: &str = r#"version: 1
assets:
  - source: wh
    table: orders
    owner: "@sales"
    monitors:
      freshness: {timestamp_column: created_at, max_age: 1h}
      volume: {timestamp_column: created_at, rows_added: {min: 1}}
      columns:
        amount: {null_rate: {max: 0.1}, min: {min: 0}}
"#;

#[tokio::test]
async fn check_exits_0_when_healthy_1_when_a_rule_fails_and_3_when_unreachable() {
    let url = require!(postgres_db("cli").await);
    pg_exec(&url, &[
        "CREATE TABLE orders (id serial, amount numeric, created_at timestamptz)",
        "INSERT INTO orders (amount, created_at) SELECT g, now() - g * interval '1 minute' FROM generate_series(1, 200) g",
    ])
    .await;
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("o.yaml", CHECKS)]);
    let out = Command::new(binary()).args(["check", "--config"]).arg(ws.config_path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("wh.public.orders") && stdout.contains("  PASS     freshness:"), "{stdout}");

    // A stale table fails its max_age.
    pg_exec(&url, &["UPDATE orders SET created_at = created_at - interval '5 hours'"]).await;
    let junit = ws.path().join("report.xml");
    let out = Command::new(binary())
        .args(["check", "--format", "json", "--junit"])
        .arg(&junit)
        .arg("--config")
        .arg(ws.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).expect("a JUnit report");
    assert!(xml.contains("<failure") && xml.contains("wh.public.orders"), "{xml}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&serde_json::Value> =
        doc["outcomes"].as_array().unwrap().iter().filter(|o| o["status"] == "fail").collect();
    assert!(failed.iter().any(|o| o["monitor"] == "freshness"), "{doc:#}");
    assert!(failed.iter().any(|o| o["monitor"] == "volume" && o["subject"] == "rows_added"), "{doc:#}");
    assert_eq!(doc["summary"]["failed"].as_u64(), Some(failed.len() as u64));

    // `validate --connect` reaches the source and finds the checked table.
    let out =
        Command::new(binary()).args(["validate", "--connect", "--config"]).arg(ws.config_path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ok: source `wh`") && stdout.contains("is reachable and readable"), "{stdout}");

    // `measure` prints one asset; `backfill` fills history.
    let out = Command::new(binary())
        .args(["measure", "wh.public.orders", "--format", "json", "--config"])
        .arg(ws.config_path())
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["outcomes"].as_array().unwrap().iter().all(|o| o["asset"] == "wh.public.orders"));
    let out = Command::new(binary())
        .args(["backfill", "wh.public.orders", "--days", "2", "--config"])
        .arg(ws.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "backfilled 48 buckets of wh.public.orders over 2 days\n");

    // An unreachable source is a runtime error.
    let dead =
        Workspace::new(&config_with_source("postgres", "postgres://postgres@127.0.0.1:1/x", ""), &[("o.yaml", CHECKS)]);
    let out = Command::new(binary()).args(["check", "--config"]).arg(dead.config_path()).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test]
async fn run_serves_the_api_and_stops_cleanly_on_sigterm() {
    let url = require!(postgres_db("daemon").await);
    pg_exec(
        &url,
        &[
            "CREATE SCHEMA analytics",
            "CREATE TABLE orders (id serial, amount numeric, created_at timestamptz)",
            "INSERT INTO orders (amount, created_at) SELECT g, now() FROM generate_series(1, 50) g",
            "CREATE TABLE analytics.daily (d date, n int)",
        ],
    )
    .await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = config_with_source(
        "postgres",
        &url,
        &format!(
            "    include: [\"analytics.*\"]\n    schedule: {{every: 2s}}\nserver:\n  listen: {addr}\nshutdown_grace: 5s"
        ),
    );
    let ws = Workspace::new(&config, &[("o.yaml", CHECKS)]);
    let mut child = Command::new(binary())
        .args(["run", "--config"])
        .arg(ws.config_path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ready = false;
    while Instant::now() < deadline {
        if let Some((200, _)) = http_get(&addr, "/readyz") {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ready, "telltale run never became ready");
    assert_eq!(http_get(&addr, "/healthz").unwrap(), (200, "ok".into()));

    let (status, body) = http_get(&addr, "/api/v1/assets").unwrap();
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let assets: Vec<&str> = doc["assets"].as_array().unwrap().iter().map(|a| a["asset"].as_str().unwrap()).collect();
    assert_eq!(assets, vec!["wh.analytics.daily", "wh.public.orders"], "checked and discovered assets");
    let orders = doc["assets"].as_array().unwrap().iter().find(|a| a["asset"] == "wh.public.orders").unwrap();
    assert_eq!(orders["owner"], "@sales");
    assert_eq!(orders["origin"], "check");
    assert!(orders["latest"]["null_rate:amount"]["value"].is_number(), "{orders:#}");

    let (status, body) = http_get(&addr, "/api/v1/assets/wh.public.orders/metrics?kind=column_count").unwrap();
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let points = doc["measurements"].as_array().unwrap();
    assert!(!points.is_empty() && points.iter().all(|p| p["kind"] == "column_count" && p["value"] == 3.0), "{doc:#}");
    assert_eq!(http_get(&addr, "/api/v1/assets/wh.public.nope/metrics").unwrap().0, 404);
    assert_eq!(http_get(&addr, "/api/v1/assets/wh.public.orders/metrics?kind=bogus").unwrap().0, 400);

    let pid = child.id().to_string();
    let started = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "did not stop within the grace period");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}
