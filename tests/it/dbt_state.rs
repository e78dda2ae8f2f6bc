//! `telltale check --state` and `--changed-since` against the real dbt fixture (manifests written
//! by dbt itself, see tests/fixtures/dbt/regenerate.sh) and tables on a real PostgreSQL: the
//! selection equals dbt's own `state:modified+` (tests/fixtures/dbt/shop/state_modified_plus.txt)
//! mapped to tables, and removed or retyped columns gate the run naming their readers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Workspace, binary, config_with_source, pg_exec, postgres_db};
use crate::require;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dbt/shop").join(name)
}

/// (schema, table) of every model of the fixture; `fct_revenue_daily` is aliased `revenue_daily`.
const MODELS: &[(&str, &str)] = &[
    ("analytics_staging", "stg_orders"),
    ("analytics_staging", "stg_order_items"),
    ("analytics_staging", "stg_customers"),
    ("analytics_staging", "stg_charges"),
    ("analytics_staging", "stg_refunds"),
    ("analytics_staging", "stg_ad_spend"),
    ("analytics_intermediate", "int_order_totals"),
    ("analytics_intermediate", "int_payments"),
    ("analytics_marts", "fct_orders"),
    ("analytics_marts", "dim_customers"),
    ("analytics_marts", "customer_ltv"),
    ("analytics_marts", "revenue_daily"),
    ("analytics_marts", "order_status_counts"),
    ("analytics_marts", "fct_marketing_roi"),
];

/// What dbt's `state:modified+` selects (its own answer, from the fixture), as tables.
fn dbt_selected_tables() -> BTreeSet<String> {
    let text = std::fs::read_to_string(fixture("state_modified_plus.txt")).unwrap();
    let tables: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("model.shop."))
        .map(|m| if m == "fct_revenue_daily" { "revenue_daily" } else { m })
        .map(|table| {
            let (schema, _) = MODELS.iter().find(|(_, t)| *t == table).expect("a model of the fixture");
            format!("wh.{schema}.{table}")
        })
        .collect();
    assert_eq!(tables.len(), 7, "the fixture's state:modified+ has 7 models: {tables:?}");
    tables
}

async fn warehouse(hint: &str) -> Option<String> {
    let url = postgres_db(hint).await?;
    let mut statements = vec![
        "CREATE SCHEMA analytics_staging".to_string(),
        "CREATE SCHEMA analytics_intermediate".to_string(),
        "CREATE SCHEMA analytics_marts".to_string(),
    ];
    for (schema, table) in MODELS {
        statements.push(format!("CREATE TABLE {schema}.{table} (id int, loaded_at timestamptz DEFAULT now())"));
        statements.push(format!("INSERT INTO {schema}.{table} (id) VALUES (1)"));
    }
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    pg_exec(&url, &refs).await;
    Some(url)
}

/// Checks of these models, each with a freshness rule that passes.
fn checks_of(models: &[(&str, &str)], max_age: &str) -> String {
    let mut text = String::from("version: 1\nassets:\n");
    for (schema, table) in models {
        text.push_str(&format!(
            "  - source: wh\n    table: {schema}.{table}\n    monitors:\n      freshness: {{timestamp_column: loaded_at, max_age: {max_age}}}\n"
        ));
    }
    text
}

fn checks() -> String {
    checks_of(MODELS, "1h")
}

fn run(dir: &Path, config: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(binary())
        .current_dir(dir)
        .arg("check")
        .args(["--format", "json"])
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("json report: {e}\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn tables_with(report: &serde_json::Value, monitor: &str) -> BTreeSet<String> {
    report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["monitor"] == monitor && o["message"].as_str().is_some_and(|m| !m.starts_with("breaking change")))
        .map(|o| o["asset"].as_str().unwrap().to_string())
        .collect()
}

fn breaking(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["message"].as_str().is_some_and(|m| m.starts_with("breaking change")))
        .collect()
}

#[tokio::test]
async fn state_runs_the_modified_models_and_their_children_and_gates_breaking_columns() {
    let url = require!(warehouse("dbt_state").await);
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("models.yaml", &checks())]);
    let old = fixture("manifest.json");
    let new = fixture("manifest.modified.json");
    let state_args = ["--state", old.to_str().unwrap(), "--manifest", new.to_str().unwrap()];

    let (code, report, stderr) = run(ws.path(), &ws.config_path(), &state_args);
    assert_eq!(tables_with(&report, "freshness"), dbt_selected_tables(), "{stderr}");
    assert!(stderr.contains("2 modified nodes") && stderr.contains("modified model.shop.fct_orders"), "{stderr}");
    // fct_orders: `items_amount` numeric → double precision, `refunded_amount` removed; three
    // models read fct_orders, so both changes fail the run.
    let changes = breaking(&report);
    assert_eq!(changes.len(), 2, "{report:#}");
    for change in &changes {
        assert_eq!(change["asset"], "wh.analytics_marts.fct_orders");
        assert_eq!(change["severity"], "error");
        let message = change["message"].as_str().unwrap();
        for reader in ["customer_ltv", "fct_revenue_daily", "order_status_counts"] {
            assert!(message.contains(reader), "{message}");
        }
        assert!(message.contains("executive_revenue"), "exposures downstream are named: {message}");
        let definition = change["definition"].as_str().unwrap();
        assert!(definition.ends_with("models/marts/fct_orders.sql"), "{definition}");
    }
    let subjects: BTreeSet<&str> = changes.iter().map(|c| c["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, BTreeSet::from(["items_amount", "refunded_amount"]));
    assert_eq!(code, 1, "breaking changes with readers fail the gate");

    // Narrowed to staging: only stg_refunds runs, and fct_orders' breaking changes are outside.
    let mut narrowed = state_args.to_vec();
    narrowed.extend(["--select", "wh.analytics_staging.*"]);
    let (code, report, stderr) = run(ws.path(), &ws.config_path(), &narrowed);
    assert_eq!(tables_with(&report, "freshness"), BTreeSet::from(["wh.analytics_staging.stg_refunds".to_string()]));
    assert!(breaking(&report).is_empty());
    assert_eq!(code, 0, "{stderr}");

    // The same manifest on both sides: nothing modified, nothing to run.
    let same = ["--state", new.to_str().unwrap(), "--manifest", new.to_str().unwrap()];
    let (code, report, _) = run(ws.path(), &ws.config_path(), &same);
    assert!(tables_with(&report, "freshness").is_empty() && breaking(&report).is_empty(), "{report:#}");
    assert_eq!(code, 0);

    // A missing current manifest is a usage error.
    let out = Command::new(binary())
        .args(["check", "--state", old.to_str().unwrap(), "--config"])
        .arg(ws.config_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--manifest"));
}

#[tokio::test]
async fn a_breaking_change_nobody_reads_only_warns() {
    let url = require!(warehouse("dbt_state_warn").await);
    let ws = Workspace::new(&config_with_source("postgres", &url, ""), &[("models.yaml", &checks())]);
    // A copy of the new manifest where nothing reads fct_orders any more.
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("manifest.modified.json")).unwrap()).unwrap();
    for section in ["nodes", "exposures"] {
        for node in manifest[section].as_object_mut().unwrap().values_mut() {
            if let Some(parents) = node.pointer_mut("/depends_on/nodes").and_then(|p| p.as_array_mut()) {
                parents.retain(|p| p != "model.shop.fct_orders");
            }
        }
    }
    let new = ws.path().join("manifest.json");
    std::fs::write(&new, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let old = fixture("manifest.json");
    let args = ["--state", old.to_str().unwrap(), "--manifest", new.to_str().unwrap()];
    let (code, report, stderr) = run(ws.path(), &ws.config_path(), &args);
    let changes = breaking(&report);
    assert_eq!(changes.len(), 2, "{report:#}");
    assert!(changes.iter().all(|c| c["severity"] == "warn"), "{report:#}");
    assert!(changes[0]["message"].as_str().unwrap().contains("nothing downstream reads it"));
    assert_eq!(code, 0, "warnings pass the default gate: {stderr}");
    let mut strict = args.to_vec();
    strict.extend(["--fail-on", "warn"]);
    let (code, _, _) = run(ws.path(), &ws.config_path(), &strict);
    assert_eq!(code, 1, "--fail-on warn stops on them");
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git").current_dir(dir).args(args).output().expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn changed_since_brings_the_downstream_of_changed_models_and_checks() {
    let url = require!(warehouse("dbt_changed").await);
    let lineage = "lineage:\n  dbt_manifest: dbt/target/manifest.json\n  source: wh\n";
    let (customers, others): (Vec<_>, Vec<_>) = MODELS.iter().partition(|(_, t)| *t == "stg_customers");
    let ws = Workspace::new(
        &config_with_source("postgres", &url, lineage),
        &[("customers.yaml", &checks_of(&customers, "1h")), ("others.yaml", &checks_of(&others, "1h"))],
    );
    let dbt = ws.path().join("dbt");
    for part in ["models", "seeds", "snapshots"] {
        copy_dir(&fixture(part), &dbt.join(part));
    }
    std::fs::copy(fixture("dbt_project.yml"), dbt.join("dbt_project.yml")).unwrap();
    std::fs::create_dir_all(dbt.join("target")).unwrap();
    std::fs::copy(fixture("manifest.json"), dbt.join("target/manifest.json")).unwrap();
    std::fs::write(ws.path().join(".gitignore"), "state/\n").unwrap();
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["-c", "user.name=t", "-c", "user.email=t@x", "add", "-A"]);
    git(ws.path(), &["-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "base"]);

    let (code, report, stderr) = run(ws.path(), &ws.config_path(), &["--changed-since", "HEAD"]);
    assert!(tables_with(&report, "freshness").is_empty(), "nothing changed: {report:#}\n{stderr}");
    assert_eq!(code, 0);

    // A model's SQL changes: it and everything downstream of it run.
    let sql = dbt.join("models/staging/stg_refunds.sql");
    let body = std::fs::read_to_string(&sql).unwrap();
    std::fs::write(&sql, format!("{body}\n-- refunds now net of fees\n")).unwrap();
    let (code, report, stderr) = run(ws.path(), &ws.config_path(), &["--changed-since", "HEAD"]);
    assert_eq!(tables_with(&report, "freshness"), dbt_selected_tables(), "{stderr}");
    assert_eq!(code, 0, "{stderr}");

    // Only a check file changes: its asset and what is downstream of it in the manifest.
    git(ws.path(), &["checkout", "-q", "--", "."]);
    std::fs::write(ws.path().join("checks/customers.yaml"), checks_of(&customers, "2h")).unwrap();
    let (code, report, stderr) = run(ws.path(), &ws.config_path(), &["--changed-since", "HEAD"]);
    let expected: BTreeSet<String> =
        ["wh.analytics_staging.stg_customers", "wh.analytics_marts.dim_customers", "wh.analytics_marts.customer_ltv"]
            .map(String::from)
            .into();
    assert_eq!(tables_with(&report, "freshness"), expected, "{stderr}");
    assert_eq!(code, 0);
}
