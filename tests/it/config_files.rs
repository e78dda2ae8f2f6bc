//! The shipped examples stay valid, and `telltale validate` reports every mistake at once.

use std::path::Path;
use std::process::Command;

use crate::common::{Workspace, binary};

#[test]
fn the_shipped_config_and_example_checks_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = telltale::config::Config::load(&root.join("telltale.yaml")).expect("telltale.yaml is valid");
    let checks = telltale::check::CheckSet::load(&config).expect("checks/ are valid");
    assert_eq!(checks.assets.len(), 3);
    assert!(checks.assets.keys().any(|a| a.as_str() == "shop.main.orders"));
}

#[test]
fn validate_reports_every_problem_with_file_and_line_and_exits_2() {
    let ws = Workspace::new(
        "version: 1\nsources:\n  wh:\n    kind: postgress\n    url: postgres://u@h/db\n",
        &[
            (
                "a.yaml",
                "version: 1\nassets:\n  - source: wh\n    table: t\n    monitors:\n      volume: {bucket: 7m}\n",
            ),
            ("b.yaml", "version: 1\nassets:\n  - source: wh\n    tabel: t\n    monitors: {}\n"),
        ],
    );
    let out = Command::new(binary()).args(["validate", "--config"]).arg(ws.config_path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&ws.path().display().to_string(), "<ws>");
    insta::assert_snapshot!(stderr, @r"
    <ws>/telltale.yaml:4:11: sources.wh.kind: unknown source kind `postgress` (did you mean `postgres`?); expected one of: postgres, mysql, sqlite, files, delta, iceberg
    error: 1 problem found
    ");

    // With the config fixed, both check files report their problems together.
    std::fs::write(ws.config_path(), "version: 1\nsources:\n  wh:\n    kind: postgres\n    url: postgres://u@h/db\n")
        .unwrap();
    let out = Command::new(binary()).args(["validate", "--config"]).arg(ws.config_path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&ws.path().display().to_string(), "<ws>");
    insta::assert_snapshot!(stderr, @r"
    <ws>/checks/a.yaml:6:24: assets[0].monitors.volume.bucket: expected a bucket that divides a day (such as `15m`, `1h`, `6h`) or whole days
    <ws>/checks/b.yaml:3:5: assets[0]: missing `table`: expected `schema.table` (or just `table` for the default schema)
    <ws>/checks/b.yaml:4:5: assets[0].tabel: unknown key `tabel` (did you mean `table`?); valid keys here: description, detection, downstream, monitors, owner, sample, schedule, slo, source, table, tags, tier, upstream, where
    error: 3 problems found
    ");
}

#[test]
fn validate_accepts_good_files_and_connect_reports_unreachable_sources() {
    let ws = Workspace::new(
        "version: 1\nsources:\n  wh:\n    kind: postgres\n    url: postgres://u:${TT_TEST_PW}@127.0.0.1:1/db\n    connect_timeout: 1s\n",
        &[("a.yaml", "version: 1\nassets:\n  - {source: wh, table: t, monitors: {schema: true}}\n")],
    );
    let out = Command::new(binary())
        .args(["validate", "--config"])
        .arg(ws.config_path())
        .env("TT_TEST_PW", "hunter2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok: 1 source, 1 checked asset in 1 file\n");

    let out = Command::new(binary())
        .args(["validate", "--connect", "--config"])
        .arg(ws.config_path())
        .env("TT_TEST_PW", "hunter2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("error: cannot reach source `wh`"), "{stdout}");
    assert!(stdout.contains("postgres://u:**redacted**@127.0.0.1:1/db"), "{stdout}");
    assert!(!stdout.contains("hunter2") && !String::from_utf8_lossy(&out.stderr).contains("hunter2"), "secret leaked");
}
