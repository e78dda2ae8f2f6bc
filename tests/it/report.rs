//! Run reports on real outcomes: the JUnit XML of an actual run (on a SQLite warehouse, with a
//! failing rule, a passing one and an unreachable source) validates against the JUnit schema CI
//! tools apply (`tests/fixtures/junit/junit.xsd`, checked with `xmllint`), and the other formats
//! agree with it. Without xmllint the schema tests skip, except under `CI=true` where they fail
//! (`scripts/ensure-tools` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use telltale::clock::{ManualClock, SharedClock};
use telltale::report::{self, JunitOptions};
use telltale::runtime::{CheckOutcome, Status};
use tokio_util::sync::CancellationToken;

use crate::common::{Workspace, in_ci};
use crate::require;

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit/junit.xsd")
}

/// `Some(())` when xmllint runs; a skip elsewhere, a failure under CI.
fn xmllint() -> Option<()> {
    match Command::new("xmllint").arg("--version").output() {
        Ok(out) if out.status.success() => Some(()),
        _ if in_ci() => {
            panic!("xmllint is not installed but CI=true: run scripts/ensure-tools (Debian package libxml2-utils)")
        }
        _ => {
            eprintln!("skipped: xmllint is not installed (scripts/ensure-tools installs it)");
            None
        }
    }
}

/// Runs xmllint on `xml`; `Ok` when it accepts the document, `Err(diagnostics)` otherwise.
fn lint(xml: &str, with_schema: bool) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("report.xml");
    std::fs::write(&file, xml).expect("write report");
    let mut command = Command::new("xmllint");
    command.arg("--noout");
    if with_schema {
        command.arg("--schema").arg(schema());
    }
    let out = command.arg(&file).output().expect("run xmllint");
    if out.status.success() { Ok(()) } else { Err(format!("{}\n{xml}", String::from_utf8_lossy(&out.stderr))) }
}

const CHECKS: &str = r#"version: 1
assets:
  - source: wh
    table: orders
    monitors:
      freshness: {timestamp_column: created_at, max_age: 1h}
      columns:
        amount: {null_rate: {max: 0.5}, min: {min: 0}}
      custom_sql:
        - name: negative_amounts
          sql: SELECT count(*) FROM orders WHERE amount < 0
          max: 0
  - source: gone
    table: events
    monitors:
      freshness: {max_age: 1h}
"#;

/// Outcomes of a real `run_once`: `orders` is five hours stale and has a negative amount; the
/// `gone` source's database file does not exist.
async fn real_outcomes() -> Vec<CheckOutcome> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wh.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", db.display())).await.expect("create db");
    for s in [
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, created_at TEXT)",
        "INSERT INTO orders (amount, created_at) VALUES (10, '2026-03-02 04:00:00'), (-5, '2026-03-02 04:00:00')",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(s)).execute(&pool).await.expect("seed");
    }
    pool.close().await;
    let config = format!(
        "version: 1\nstore: sqlite://state/t.db\nsources:\n  wh:\n    kind: sqlite\n    url: sqlite://{}\n  gone:\n    \
         kind: sqlite\n    url: sqlite://{}/missing/nothing.db\n    connect_timeout: 2s\nchecks: [checks/]\n",
        db.display(),
        dir.path().display(),
    );
    let ws = Workspace::new(&config, &[("orders.yaml", CHECKS)]);
    let clock = ManualClock::new("2026-03-02T09:00:00Z".parse().expect("time"));
    let agent = ws.agent(Arc::new(clock) as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    agent.close().await;
    outcomes
}

#[tokio::test]
async fn junit_of_a_real_run_validates_against_the_junit_schema() {
    require!(xmllint());
    let outcomes = real_outcomes().await;
    let statuses: Vec<Status> = outcomes.iter().map(|o| o.status).collect();
    assert!(
        statuses.contains(&Status::Fail) && statuses.contains(&Status::Pass) && statuses.contains(&Status::Error),
        "the run should have passes, failures and errors: {outcomes:#?}"
    );
    let started = "2026-03-02T09:00:00Z".parse().expect("time");
    let xml = report::junit_xml(&outcomes, "telltale check", Duration::from_millis(1_234), started);
    lint(&xml, true).unwrap_or_else(|e| panic!("JUnit output rejected by junit.xsd: {e}"));

    // The failure names observed vs rule and where the check is defined.
    let freshness = xml.split("<testcase ").find(|c| c.starts_with("name=\"freshness\" classname=\"wh.main.orders\""));
    let freshness = freshness.unwrap_or_else(|| panic!("no freshness testcase: {xml}"));
    assert!(freshness.contains("<failure message=\"") && freshness.contains("type=\"freshness\""), "{freshness}");
    assert!(freshness.contains("orders.yaml:3"), "the body names the check's file:line: {freshness}");
    assert!(xml.contains("<testsuite name=\"wh.main.orders\" tests="), "{xml}");
    assert!(xml.contains("<error message="), "the unreachable source is an <error>: {xml}");

    // Counts agree with the JSON document.
    let json: serde_json::Value =
        serde_json::from_str(&report::json_report(&outcomes, 3, Duration::ZERO, started)).expect("json");
    let summary = &json["summary"];
    assert!(xml.contains(&format!(
        "<testsuites name=\"telltale check\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"1.234\">",
        summary["total"], summary["failed"], summary["errors"]
    )));

    // Annotations point at the same file and line.
    let annotations = report::annotations(&outcomes, None);
    assert!(
        annotations
            .lines()
            .any(|l| l.starts_with("::error file=") && l.contains("orders.yaml,line=3,title=freshness%3A")),
        "{annotations}"
    );
}

#[tokio::test]
async fn junit_with_hostile_text_still_validates() {
    require!(xmllint());
    let mut outcomes = real_outcomes().await;
    for o in &mut outcomes {
        o.message = format!("{} <&> \"quoted\" 'single' \u{1}\u{1b}[31m\u{7f}\r\nnext line ]]> \u{fffe}", o.message);
        o.subject = Some("x<y>&\"z\"\t".into());
    }
    let xml = report::junit_xml(&outcomes, "suite <&> \"name\"", Duration::from_secs(3_725), chrono::Utc::now());
    lint(&xml, true).unwrap_or_else(|e| panic!("escaped output rejected: {e}"));
}

#[tokio::test]
async fn testcase_locations_are_well_formed_but_outside_the_strict_schema() {
    require!(xmllint());
    let outcomes = real_outcomes().await;
    let options = JunitOptions {
        suite_name: "telltale check",
        duration: Duration::from_secs(1),
        timestamp: chrono::Utc::now(),
        testcase_locations: true,
    };
    let xml = report::junit_xml_with(&outcomes, &options);
    assert!(xml.contains(" line=\"3\">"), "{xml}");
    lint(&xml, false).unwrap_or_else(|e| panic!("not well-formed: {e}"));
    // The schema check is live: junit-10.xsd has no testcase `file`/`line`, and says so.
    let rejected = lint(&xml, true).expect_err("junit-10.xsd rejects testcase file/line");
    assert!(rejected.contains("'file' is not allowed"), "{rejected}");
}

/// The JSON Schema block of `docs/ci.md`.
fn documented_json_schema() -> serde_json::Value {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ci.md")).expect("docs/ci.md");
    let block = doc
        .split("<!-- json-schema:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- json-schema:end -->").next())
        .expect("docs/ci.md has a json-schema block");
    let json = block.trim().trim_start_matches("```json").trim_end_matches("```");
    serde_json::from_str(json).expect("the documented schema is valid JSON")
}

/// A validator for the JSON Schema keywords the documented schema uses: `type`, `const`, `enum`,
/// `required`, `properties`, `additionalProperties: false`, `items`, `oneOf` and local `$ref`s.
fn violations(
    schema: &serde_json::Value,
    value: &serde_json::Value,
    root: &serde_json::Value,
    path: &str,
) -> Vec<String> {
    use serde_json::Value;
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = reference.strip_prefix("#/").expect("local $ref").split('/').fold(root, |v, key| &v[key]);
        return violations(target, value, root, path);
    }
    let mut problems = Vec::new();
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type keyword at {path}"),
        };
        let fits = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            other => panic!("unknown type {other}"),
        };
        if !allowed.iter().any(|t| fits(t)) {
            problems.push(format!("{path}: {value} is not of type {types}"));
        }
    }
    if let Some(constant) = schema.get("const").filter(|c| *c != value) {
        problems.push(format!("{path}: {value} is not {constant}"));
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array).filter(|o| !o.contains(value)) {
        problems.push(format!("{path}: {value} is not one of {options:?}"));
    }
    if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = alternatives.iter().filter(|s| violations(s, value, root, path).is_empty()).count();
        if matching != 1 {
            problems.push(format!("{path}: {value} matches {matching} of the oneOf alternatives"));
        }
    }
    if let (Some(object), Some(properties)) = (value.as_object(), schema.get("properties").and_then(Value::as_object)) {
        for key in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(key) {
                problems.push(format!("{path}: `{key}` is missing"));
            }
        }
        for (key, item) in object {
            match properties.get(key) {
                Some(sub) => problems.extend(violations(sub, item, root, &format!("{path}.{key}"))),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    problems.push(format!("{path}: `{key}` is not in the schema"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
        for (index, item) in items.iter().enumerate() {
            problems.extend(violations(schema, item, root, &format!("{path}[{index}]")));
        }
    }
    problems
}

#[tokio::test]
async fn json_of_a_real_run_matches_the_schema_documented_in_docs_ci_md() {
    use telltale::detect::{Confidence, Expected, Status as VerdictStatus, Verdict};
    let mut outcomes = real_outcomes().await;
    // A learned verdict, which a first run on an empty store cannot have yet.
    let mut judged = outcomes[0].clone();
    judged.verdict = Some(Verdict {
        timestamp: 1_786_000_000,
        value: 412.0,
        status: VerdictStatus::Learned,
        expected: Some(Expected { low: 9_800.0, high: 11_200.0, forecast: 10_500.0 }),
        score: 6.5,
        anomaly: true,
        alert: true,
        direction: Some(telltale::detect::Deviation::Below),
        event: None,
        confidence: Confidence::High,
        history_points: 120,
        explanation: "412 rows added, expected 9 800–11 200".into(),
    });
    outcomes.push(judged);
    let schema = documented_json_schema();
    let text = report::json_report(&outcomes, 3, Duration::from_millis(1_500), chrono::Utc::now());
    let document: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let problems = violations(&schema, &document, &schema, "$");
    assert!(problems.is_empty(), "{problems:#?}\n{text}");

    // The check bites: an undocumented field is reported.
    let mut extended = document.clone();
    extended["outcomes"][0]["surprise"] = serde_json::json!(1);
    assert_eq!(violations(&schema, &extended, &schema, "$"), ["$.outcomes[0]: `surprise` is not in the schema"]);
}
