//! `telltale demo` runs end to end: warehouse, loader, agent, API, scripted incidents.

use std::process::Command;

use crate::common::binary;

#[test]
fn the_demo_measures_the_shop_and_catches_the_scripted_outage() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = Command::new(binary())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["demo", "--plain", "--history-days", "3", "--speed", "3600", "--duration", "12s", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for asset in ["shop.main.customers", "shop.main.orders", "shop.main.payments", "shop.main.refunds"] {
        assert!(stdout.contains(asset), "{asset} missing from the live table:\n{stdout}");
    }
    // The loader's outage (simulated hours 2-5) empties hourly buckets of orders.
    assert!(
        stdout.lines().any(|l| l.contains("fail")
            && l.contains("shop.main.orders volume")
            && l.contains("0 is below the minimum 10")),
        "{stdout}"
    );
    assert!(dir.path().join("shop.db").exists() && dir.path().join("telltale.db").exists());
}
