//! Lake sources on real files: Parquet/CSV/NDJSON written by pyarrow, Delta tables by the Python
//! `deltalake` package, Iceberg tables by pyiceberg (SQL sqlite catalog), and S3 through a real
//! `moto_server` on loopback. Writers come from `scripts/tools/lake.sh` (`TELLTALE_LAKE_PYTHON`,
//! `TELLTALE_MOTO_SERVER`); without them the tests skip, except under `CI=true`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use telltale::clock::{ManualClock, SharedClock};
use telltale::measure::MetricKind;
use telltale::runtime::{CheckOutcome, Status};
use tokio_util::sync::CancellationToken;

use crate::common::{Workspace, in_ci};

fn tool(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if in_ci() => panic!("{var} is not set but CI=true: run scripts/tools/lake.sh (scripts/test does)"),
        _ => {
            eprintln!("skipped: {var} is not set (run scripts/tools/lake.sh, then the tests through scripts/test)");
            None
        }
    }
}

/// Runs a Python fixture script in `dir` with the lake tools' interpreter.
fn py(python: &str, dir: &Path, script: &str) {
    let out = Command::new(python).arg("-c").arg(script).current_dir(dir).output().expect("run python");
    assert!(
        out.status.success(),
        "fixture script failed:\n{script}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn find<'a>(outcomes: &'a [CheckOutcome], asset: &str, monitor: &str, subject: Option<&str>) -> &'a CheckOutcome {
    outcomes
        .iter()
        .find(|o| o.asset.as_str() == asset && o.monitor == monitor && o.subject.as_deref() == subject)
        .unwrap_or_else(|| panic!("no {monitor} outcome {subject:?} for {asset} in {outcomes:#?}"))
}

async fn latest(agent: &telltale::runtime::Agent, asset: &str, kind: MetricKind) -> Option<f64> {
    let asset = asset.parse().unwrap();
    agent
        .store
        .latest(&asset)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == kind && m.column.is_empty())
        .map(|m| m.value)
}

const WRITE_ORDERS: &str = r#"
import os, sys, datetime
import pyarrow as pa, pyarrow.parquet as pq, pyarrow.csv as pcsv
def part(date, ids, extra=False):
    d = f"lake/orders/date={date}"
    os.makedirs(d, exist_ok=True)
    cols = {
        "id": pa.array(ids, pa.int64()),
        "amount": pa.array([float(i) if i % 10 else None for i in ids], pa.float64()),
        "status": pa.array(["paid" if i % 2 else "open" for i in ids]),
        "ts": pa.array([datetime.datetime(2024, 5, 1) + datetime.timedelta(minutes=i) for i in ids], pa.timestamp("us")),
    }
    if extra:
        cols["coupon"] = pa.array(["c%d" % i for i in ids])
    pq.write_table(pa.table(cols), f"{d}/part-{ids[0]}.parquet")
step = sys.argv[1] if len(sys.argv) > 1 else "init"
"#;

#[tokio::test]
async fn files_on_local_disk_are_measured_from_footers_then_profiled_with_partition_filters() {
    let Some(python) = tool("TELLTALE_LAKE_PYTHON") else { return };
    let checks = r#"version: 1
assets:
  - source: lake
    table: orders
    where: "date >= '2024-05-02'"
    monitors:
      freshness: {timestamp_column: date, max_age: 2d}
      volume: {row_count: {min: 1}}
      schema: {}
      columns:
        amount: [null_rate, mean, min, max, stddev, p50, distinct_count]
        status: [distinct_count, max_length]
        ts: [max]
"#;
    let ws = Workspace::new(
        "version: 1\nstore: sqlite://state/t.db\nsources:\n  lake:\n    kind: files\n    url: lake\n    include: [\"main.*\"]\n    memory_limit: 256MiB\nchecks: [checks/]\n",
        &[("lake.yaml", checks)],
    );
    py(
        &python,
        ws.path(),
        &format!(
            "{WRITE_ORDERS}\npart('2024-05-01', list(range(0, 100)))\npart('2024-05-02', list(range(100, 150)))\n\
os.makedirs('lake/signups', exist_ok=True)\npcsv.write_csv(pa.table({{'email': ['a@x', 'b@x', 'c@x'], 'n': [1, 2, 3]}}), 'lake/signups/day1.csv')\n\
os.makedirs('lake/clicks', exist_ok=True)\nopen('lake/clicks/c.ndjson', 'w').write('{{\"u\": 1}}\\n{{\"u\": 2}}\\n{{\"u\": 3}}\\n{{\"u\": 4}}\\n')\n"
        ),
    );
    let clock = Arc::new(ManualClock::new("2024-05-03T00:00:00Z".parse().unwrap()));
    let agent = ws.agent(clock.clone() as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let errors: Vec<_> = outcomes.iter().filter(|o| o.status == Status::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let orders = "lake.main.orders";
    assert_eq!(find(&outcomes, orders, "volume", None).value, Some(150.0), "rows from the Parquet footers");
    // Newest `date=` partition: 2024-05-02 00:00, one day before the clock.
    assert_eq!(find(&outcomes, orders, "freshness", None).value, Some(86_400.0));
    // The profile read only the partition `where` selects: ids 100..149, every tenth amount null.
    assert_eq!(find(&outcomes, orders, "column", Some("amount.mean")).value, Some(125.0));
    assert_eq!(find(&outcomes, orders, "column", Some("amount.null_rate")).value, Some(0.1));
    assert_eq!(find(&outcomes, orders, "column", Some("amount.min")).value, Some(101.0));
    assert_eq!(find(&outcomes, orders, "column", Some("amount.distinct_count")).value, Some(45.0));
    let p50 = find(&outcomes, orders, "column", Some("amount.p50")).value.unwrap();
    assert!((p50 - 124.5).abs() <= 1.0, "approximate median {p50}");
    assert_eq!(find(&outcomes, orders, "column", Some("status.distinct_count")).value, Some(2.0));
    assert_eq!(find(&outcomes, orders, "column", Some("status.max_length")).value, Some(4.0));
    let ts_max = find(&outcomes, orders, "column", Some("ts.max")).value.unwrap();
    assert_eq!(ts_max, 1_714_521_600.0 + 149.0 * 60.0, "timestamps profile as epoch seconds");
    let profiled = agent.store.latest(&orders.parse().unwrap()).await.unwrap();
    assert!(profiled.iter().any(|m| m.kind == MetricKind::ProfiledRows && m.value == 50.0), "{profiled:?}");
    // Discovered CSV and NDJSON tables: counted once, when new.
    assert_eq!(latest(&agent, "lake.main.signups", MetricKind::RowCount).await, Some(3.0));
    assert_eq!(latest(&agent, "lake.main.clicks", MetricKind::RowCount).await, Some(4.0));

    // An append with a new column: rows added, and a schema change.
    py(&python, ws.path(), &format!("{WRITE_ORDERS}\npart('2024-05-03', list(range(150, 175)), extra=True)\n"));
    clock.advance(std::time::Duration::from_secs(3600));
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    assert_eq!(find(&outcomes, orders, "volume", None).value, Some(175.0));
    assert_eq!(latest(&agent, orders, MetricKind::RowsAdded).await, Some(25.0));
    let schema = find(&outcomes, orders, "schema", None);
    assert!(schema.message.contains("column `coupon` added"), "{schema:?}");
    assert_eq!(find(&outcomes, orders, "freshness", None).value, Some(3600.0));

    // Compaction: the same rows in new files is not new volume.
    py(
        &python,
        ws.path(),
        "import pyarrow.dataset as ds, pyarrow.parquet as pq, glob, os\n\
for d in sorted(glob.glob('lake/orders/date=*')):\n    files = sorted(glob.glob(d + '/*.parquet'))\n    t = ds.dataset(files).to_table()\n    for f in files: os.remove(f)\n    pq.write_table(t, d + '/compacted.parquet')\n",
    );
    clock.advance(std::time::Duration::from_secs(3600));
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    assert_eq!(find(&outcomes, orders, "volume", None).value, Some(175.0));
    assert_eq!(latest(&agent, orders, MetricKind::RowsAdded).await, Some(0.0));
    agent.close().await;
}

#[tokio::test]
async fn a_profile_over_a_million_rows_estimates_distinct_counts_of_every_column_type() {
    // Above 1,000,000 profiled rows distinct counts are HyperLogLog estimates; DataFusion's
    // estimator takes no floating point, so a double column must still be counted.
    let Some(python) = tool("TELLTALE_LAKE_PYTHON") else { return };
    let checks = r#"version: 1
assets:
  - source: lake
    table: big
    monitors:
      columns:
        price: [distinct_count, mean, p50]
        qty: [distinct_count]
        sku: [distinct_count, max_length]
        ts: [distinct_count, max]
"#;
    let ws = Workspace::new(
        "version: 1\nstore: sqlite://state/t.db\nsources:\n  lake:\n    kind: files\n    url: lake\n    include: [\"main.*\"]\nchecks: [checks/]\n",
        &[("big.yaml", checks)],
    );
    py(
        &python,
        ws.path(),
        "import os, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq\n\
os.makedirs('lake/big', exist_ok=True)\n\
n = 1_200_000\n\
i = pa.array(range(n), pa.int64())\n\
price = pc.divide(pc.cast(pc.bit_wise_and(i, 262143), pa.float64()), 4.0)\n\
qty = pc.bit_wise_and(i, 1023)\n\
sku = pc.binary_join_element_wise('sku-', pc.cast(pc.bit_wise_and(i, 65535), pa.string()), '')\n\
ts = pc.cast(pc.multiply(pc.bit_wise_and(i, 4095), 1_000_000), pa.timestamp('us'))\n\
t = pa.table({'price': price, 'qty': qty, 'sku': sku, 'ts': ts})\n\
pq.write_table(t.slice(0, 600_000), 'lake/big/a.parquet')\n\
pq.write_table(t.slice(600_000), 'lake/big/b.parquet')\n",
    );
    let clock = Arc::new(ManualClock::new("2024-05-03T00:00:00Z".parse().unwrap()));
    let agent = ws.agent(clock as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let errors: Vec<_> = outcomes.iter().filter(|o| o.status == Status::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let big = "lake.main.big";
    // Distinct values: price 262,144 (quarter steps), qty 1,024, sku 65,536, ts 4,096.
    for (subject, exact) in [
        ("price.distinct_count", 262_144.0),
        ("qty.distinct_count", 1_024.0),
        ("sku.distinct_count", 65_536.0),
        ("ts.distinct_count", 4_096.0),
    ] {
        let got = find(&outcomes, big, "column", Some(subject)).value.unwrap();
        assert!((got / exact - 1.0).abs() < 0.03, "{subject}: estimate {got} for {exact} distinct values");
    }
    let mean = find(&outcomes, big, "column", Some("price.mean")).value.unwrap();
    // Four whole cycles of 0..262,143 quarters and one of 0..151,423: (4 × 2^18 × 32,767.875 +
    // 151,424 × 18,927.875) / 1,200,000.
    let want = (4.0 * 262_144.0 * 32_767.875 + 151_424.0 * 18_927.875) / 1_200_000.0;
    assert!((mean - want).abs() < 1e-6 * want, "price mean {mean}, expected {want}");
    assert_eq!(find(&outcomes, big, "column", Some("sku.max_length")).value, Some(9.0));
    agent.close().await;
}

#[tokio::test]
async fn a_truncated_parquet_file_fails_its_table_only() {
    let Some(python) = tool("TELLTALE_LAKE_PYTHON") else { return };
    let checks = "version: 1\nassets:\n  - source: lake\n    table: good\n    monitors:\n      volume: {}\n  - source: lake\n    table: bad\n    monitors:\n      volume: {}\n";
    let ws = Workspace::new(
        "version: 1\nstore: sqlite://state/t.db\nsources:\n  lake:\n    kind: files\n    url: lake\nchecks: [checks/]\n",
        &[("lake.yaml", checks)],
    );
    py(
        &python,
        ws.path(),
        "import os, pyarrow as pa, pyarrow.parquet as pq\n\
for t in ['good', 'bad']:\n    os.makedirs('lake/' + t, exist_ok=True)\n    pq.write_table(pa.table({'x': list(range(1000))}), f'lake/{t}/a.parquet')\n\
data = open('lake/bad/a.parquet', 'rb').read()\nopen('lake/bad/a.parquet', 'wb').write(data[: len(data) // 2])\n",
    );
    let agent = ws.agent(Arc::new(ManualClock::new(chrono::Utc::now())) as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let bad = find(&outcomes, "lake.main.bad", "source", None);
    assert_eq!(bad.status, Status::Error);
    assert!(bad.message.contains("bad/a.parquet") && bad.message.contains("not valid Parquet"), "{}", bad.message);
    assert_eq!(find(&outcomes, "lake.main.good", "volume", None).value, Some(1000.0));
    agent.close().await;
}

const DELTA_PRELUDE: &str = r#"
import sys, pyarrow as pa
from deltalake import write_deltalake, DeltaTable
def rows(ids, extra=False):
    cols = {"id": pa.array(ids, pa.int64()), "amount": pa.array([float(i) for i in ids])}
    if extra:
        cols["note"] = pa.array(["n%d" % i for i in ids])
    return pa.table(cols)
"#;

#[tokio::test]
async fn delta_tables_follow_the_log_appends_schema_evolution_and_compaction() {
    let Some(python) = tool("TELLTALE_LAKE_PYTHON") else { return };
    let checks = r#"version: 1
assets:
  - source: dl
    table: sales
    monitors:
      freshness: {}
      volume: {}
      schema: {}
      columns:
        amount: [mean, max]
  - source: dl
    table: broken
    monitors:
      volume: {}
"#;
    let ws = Workspace::new(
        "version: 1\nstore: sqlite://state/t.db\nsources:\n  dl:\n    kind: delta\n    url: tables\nchecks: [checks/]\n",
        &[("dl.yaml", checks)],
    );
    py(
        &python,
        ws.path(),
        &format!(
            "{DELTA_PRELUDE}\nwrite_deltalake('tables/sales', rows([1, 2, 3]))\nwrite_deltalake('tables/sales', rows([4, 5]), mode='append')\n\
for i in range(3):\n    write_deltalake('tables/broken', rows([i]), mode='append')\n\
import os\nos.remove('tables/broken/_delta_log/00000000000000000001.json')\n"
        ),
    );
    let clock = Arc::new(ManualClock::new(chrono::Utc::now() + chrono::Duration::minutes(1)));
    let agent = ws.agent(clock.clone() as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let broken = find(&outcomes, "dl.main.broken", "source", None);
    assert_eq!(broken.status, Status::Error);
    assert!(broken.message.contains("missing commit 1"), "{}", broken.message);
    let sales = "dl.main.sales";
    assert_eq!(find(&outcomes, sales, "volume", None).value, Some(5.0), "numRecords from `add` stats");
    assert_eq!(find(&outcomes, sales, "column", Some("amount.mean")).value, Some(3.0));
    let lag = find(&outcomes, sales, "freshness", None).value.unwrap();
    assert!((0.0..120.0).contains(&lag), "last commit time, {lag}");
    let before_compaction = latest(&agent, sales, MetricKind::LastModified).await;

    // Schema evolution (merge), then compaction and a checkpoint.
    py(
        &python,
        ws.path(),
        &format!(
            "{DELTA_PRELUDE}\nwrite_deltalake('tables/sales', rows([6, 7], extra=True), mode='append', schema_mode='merge')\n"
        ),
    );
    clock.advance(std::time::Duration::from_secs(600));
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    assert_eq!(find(&outcomes, sales, "volume", None).value, Some(7.0));
    assert_eq!(latest(&agent, sales, MetricKind::RowsAdded).await, Some(2.0));
    let schema = find(&outcomes, sales, "schema", None);
    assert!(schema.message.contains("column `note` added (string)"), "{schema:?}");
    let after_append = latest(&agent, sales, MetricKind::LastModified).await;
    assert!(after_append >= before_compaction);

    py(
        &python,
        ws.path(),
        &format!("{DELTA_PRELUDE}\ndt = DeltaTable('tables/sales')\ndt.optimize.compact()\ndt.create_checkpoint()\n"),
    );
    clock.advance(std::time::Duration::from_secs(600));
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    assert_eq!(find(&outcomes, sales, "volume", None).value, Some(7.0));
    assert_eq!(latest(&agent, sales, MetricKind::RowsAdded).await, Some(0.0), "compaction is not new volume");
    assert_eq!(
        latest(&agent, sales, MetricKind::LastModified).await,
        after_append,
        "an OPTIMIZE commit (dataChange: false) is not fresh data"
    );
    assert_eq!(find(&outcomes, sales, "column", Some("amount.max")).value, Some(7.0));
    agent.close().await;

    // A new reader starts from the checkpoint even when the commits before it are gone.
    py(&python, ws.path(), "import os\nfor v in range(3):\n    os.remove('tables/sales/_delta_log/%020d.json' % v)\n");
    let config = telltale::config::Config::load(&ws.config_path()).unwrap();
    let source = telltale::source::connect(config.source("dl").unwrap()).unwrap();
    let scope = telltale::source::Scope {
        tables: [telltale::measure::TableRef::new("main", "sales")].into(),
        ..Default::default()
    };
    let tables = source.scan_metadata(&scope).await.unwrap();
    assert_eq!(tables[0].row_count, Some(7.0));
    assert_eq!(tables[0].columns.len(), 3);
}

/// Delta tables as readers meet them after months of writes: checkpoints (with commits after them,
/// and a compaction checkpointed before the first poll), column mapping (`name`: files hold
/// `col-<uuid>` columns, partition values are keyed by physical names), and a V2 checkpoint with a
/// sidecar. delta-rs writes only classic checkpoints, so the V2 one is made from the real
/// checkpoint of a table it wrote: its `add` rows moved to `_delta_log/_sidecars/<uuid>.parquet`
/// and a `n.checkpoint.<uuid>.json` naming it, as the protocol lays V2 checkpoints out.
#[tokio::test]
async fn delta_checkpoints_v2_sidecars_and_column_mapping_are_read() {
    let Some(python) = tool("TELLTALE_LAKE_PYTHON") else { return };
    let checks = r#"version: 1
assets:
  - source: dl
    table: mapped
    monitors:
      volume: {}
      schema: {}
      freshness: {timestamp_column: day}
      columns:
        "Amount Col": [mean, null_rate, max]
        id: [max]
  - source: dl
    table: compacted
    monitors:
      volume: {}
      freshness: {}
      columns:
        amount: [mean]
  - source: dl
    table: v2
    monitors:
      volume: {}
      columns:
        amount: [mean, max]
"#;
    let ws = Workspace::new(
        "version: 1\nstore: sqlite://state/t.db\nsources:\n  dl:\n    kind: delta\n    url: tables\nchecks: [checks/]\n",
        &[("dl.yaml", checks)],
    );
    py(
        &python,
        ws.path(),
        &format!(
            r#"{DELTA_PRELUDE}
import json, os, time, uuid, pyarrow.parquet as pq, pyarrow.compute as pc
def mapped(ids, day):
    return pa.table({{"id": pa.array(ids, pa.int64()), "Amount Col": pa.array([float(i) for i in ids]), "day": pa.array([day] * len(ids))}})
write_deltalake("tables/mapped", mapped([1, 2, 3], "2024-05-01"), partition_by=["day"], configuration={{"delta.columnMapping.mode": "name"}})
write_deltalake("tables/mapped", mapped([4, 5], "2024-05-02"), mode="append")
DeltaTable("tables/mapped").create_checkpoint()
write_deltalake("tables/mapped", mapped([6], "2024-05-03"), mode="append")

write_deltalake("tables/compacted", rows([1, 2, 3]))
write_deltalake("tables/compacted", rows([4, 5]), mode="append")
time.sleep(1.2)
dt = DeltaTable("tables/compacted")
dt.optimize.compact()
dt.create_checkpoint()
commit = lambda v: [json.loads(l) for l in open("tables/compacted/_delta_log/%020d.json" % v)]
append_ms = [a["commitInfo"]["timestamp"] for a in commit(1) if "commitInfo" in a][0]
assert [a["commitInfo"]["operation"] for a in commit(2) if "commitInfo" in a] == ["OPTIMIZE"]
open("append_ms", "w").write(str(append_ms))

write_deltalake("tables/v2", rows([1, 2, 3, 4]))
write_deltalake("tables/v2", rows([5, 6, 7]), mode="append")
DeltaTable("tables/v2").create_checkpoint()
write_deltalake("tables/v2", rows([8]), mode="append")
log = "tables/v2/_delta_log"
classic = pq.read_table(f"{{log}}/00000000000000000001.checkpoint.parquet")
adds = classic.filter(pc.is_valid(classic["add"])).select(["add"])
assert adds.num_rows == 2
os.makedirs(f"{{log}}/_sidecars")
sidecar = f"{{uuid.uuid4()}}.parquet"
pq.write_table(adds, f"{{log}}/_sidecars/{{sidecar}}")
first = [l.strip() for l in open(f"{{log}}/00000000000000000000.json")]
with open(f"{{log}}/00000000000000000001.checkpoint.{{uuid.uuid4()}}.json", "w") as f:
    f.write(json.dumps({{"checkpointMetadata": {{"version": 1}}}}) + "\n")
    for l in first:
        if '"protocol"' in l or '"metaData"' in l:
            f.write(l + "\n")
    f.write(json.dumps({{"sidecar": {{"path": sidecar, "sizeInBytes": os.path.getsize(f"{{log}}/_sidecars/{{sidecar}}"), "modificationTime": 0}}}}) + "\n")
for name in ["00000000000000000000.json", "00000000000000000001.json", "00000000000000000001.checkpoint.parquet", "_last_checkpoint"]:
    os.remove(f"{{log}}/{{name}}")
"#
        ),
    );
    let clock = Arc::new(ManualClock::new("2024-05-04T00:00:00Z".parse().unwrap()));
    let agent = ws.agent(clock.clone() as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let errors: Vec<_> = outcomes.iter().filter(|o| o.status == Status::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // Column mapping: logical names in the schema and the checks, values read from `col-<uuid>`
    // columns (a reader matching by logical name would see only nulls), partition values keyed by
    // physical names; the append after the checkpoint is counted.
    let mapped = "dl.main.mapped";
    assert_eq!(find(&outcomes, mapped, "volume", None).value, Some(6.0));
    assert_eq!(find(&outcomes, mapped, "column", Some("Amount Col.mean")).value, Some(3.5));
    assert_eq!(find(&outcomes, mapped, "column", Some("Amount Col.null_rate")).value, Some(0.0));
    assert_eq!(find(&outcomes, mapped, "column", Some("Amount Col.max")).value, Some(6.0));
    assert_eq!(find(&outcomes, mapped, "column", Some("id.max")).value, Some(6.0));
    assert_eq!(find(&outcomes, mapped, "freshness", None).value, Some(86_400.0), "newest day= is 2024-05-03");
    let config = telltale::config::Config::load(&ws.config_path()).unwrap();
    let source = telltale::source::connect(config.source("dl").unwrap()).unwrap();
    let scope = telltale::source::Scope {
        tables: [telltale::measure::TableRef::new("main", "mapped")].into(),
        ..Default::default()
    };
    let tables = source.scan_metadata(&scope).await.unwrap();
    let names: Vec<&str> = tables[0].columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "Amount Col", "day"]);

    // A first read that starts at a checkpoint written right after an OPTIMIZE: the checkpoint
    // alone would make the compaction look like fresh data; the commits kept before it say the
    // last data change was the append.
    let compacted = "dl.main.compacted";
    assert_eq!(find(&outcomes, compacted, "volume", None).value, Some(5.0));
    assert_eq!(find(&outcomes, compacted, "column", Some("amount.mean")).value, Some(3.0));
    let append_ms: i64 = std::fs::read_to_string(ws.path().join("append_ms")).unwrap().trim().parse().unwrap();
    assert_eq!(latest(&agent, compacted, MetricKind::LastModified).await, Some((append_ms / 1000) as f64));

    // V2 checkpoint + sidecar, then a commit after it; the commits before it are gone.
    let v2 = "dl.main.v2";
    assert_eq!(find(&outcomes, v2, "volume", None).value, Some(8.0));
    assert_eq!(find(&outcomes, v2, "column", Some("amount.mean")).value, Some(4.5));
    assert_eq!(find(&outcomes, v2, "column", Some("amount.max")).value, Some(8.0));

    // Incremental after the checkpoint: one more append to the mapped table.
    py(
        &python,
        ws.path(),
        &format!(
            "{DELTA_PRELUDE}\nwrite_deltalake('tables/mapped', pa.table({{'id': pa.array([7], pa.int64()), 'Amount Col': [7.0], 'day': ['2024-05-04']}}), mode='append')\n"
        ),
    );
    clock.advance(Duration::from_secs(3600));
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    assert_eq!(find(&outcomes, mapped, "volume", None).value, Some(7.0));
    assert_eq!(latest(&agent, mapped, MetricKind::RowsAdded).await, Some(1.0));
    assert_eq!(find(&outcomes, mapped, "column", Some("Amount Col.mean")).value, Some(4.0));
    agent.close().await;
}

const ICEBERG_PRELUDE: &str = r#"
import os, pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
os.makedirs("wh", exist_ok=True)
cat = SqlCatalog("default", uri="sqlite:///" + os.path.abspath("wh/catalog.db"), warehouse="file://" + os.path.abspath("wh"))
def rows(ids, extra=False):
    cols = {"id": pa.array(ids, pa.int64()), "amount": pa.array([float(i) for i in ids])}
    if extra:
        cols["note"] = pa.array(["n%d" % i for i in ids])
    return pa.table(cols)
"#;

#[tokio::test]
async fn iceberg_tables_in_a_sql_catalog_are_measured_from_snapshots() {
    let Some(python) = tool("TELLTALE_LAKE_PYTHON") else { return };
    let checks = r#"version: 1
assets:
  - source: ice
    table: shop.orders
    monitors:
      freshness: {}
      volume: {}
      schema: {}
      columns:
        amount: [mean]
  - source: ice
    table: shop.lost
    monitors:
      volume: {}
"#;
    let ws = Workspace::new(
        "version: 1\nstore: sqlite://state/t.db\nsources:\n  ice:\n    kind: iceberg\n    url: wh\n    catalog: sqlite://wh/catalog.db\nchecks: [checks/]\n",
        &[("ice.yaml", checks)],
    );
    py(
        &python,
        ws.path(),
        &format!(
            "{ICEBERG_PRELUDE}\ncat.create_namespace('shop')\nt = cat.create_table('shop.orders', schema=rows([1]).schema)\nt.append(rows([1, 2, 3]))\nt.append(rows([4, 5]))\n\
lost = cat.create_table('shop.lost', schema=rows([1]).schema)\nlost.append(rows([1]))\nos.remove(cat.load_table('shop.lost').metadata_location.removeprefix('file://'))\n"
        ),
    );
    let clock = Arc::new(ManualClock::new(chrono::Utc::now() + chrono::Duration::minutes(1)));
    let agent = ws.agent(clock.clone() as SharedClock).await;
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let lost = find(&outcomes, "ice.shop.lost", "source", None);
    assert_eq!(lost.status, Status::Error);
    assert!(lost.message.contains("points at a missing file"), "{}", lost.message);
    let orders = "ice.shop.orders";
    assert_eq!(find(&outcomes, orders, "volume", None).value, Some(5.0), "total-records of the snapshot");
    assert_eq!(find(&outcomes, orders, "column", Some("amount.mean")).value, Some(3.0));
    let lag = find(&outcomes, orders, "freshness", None).value.unwrap();
    assert!((0.0..120.0).contains(&lag), "snapshot time, {lag}");

    py(
        &python,
        ws.path(),
        &format!(
            "{ICEBERG_PRELUDE}\nt = cat.load_table('shop.orders')\nwith t.update_schema() as u:\n    u.union_by_name(rows([1], extra=True).schema)\nt = cat.load_table('shop.orders')\nt.append(rows([6, 7], extra=True))\n"
        ),
    );
    clock.advance(std::time::Duration::from_secs(600));
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    assert_eq!(find(&outcomes, orders, "volume", None).value, Some(7.0));
    assert_eq!(latest(&agent, orders, MetricKind::RowsAdded).await, Some(2.0));
    let schema = find(&outcomes, orders, "schema", None);
    assert!(schema.message.contains("column `note` added (string)"), "{schema:?}");
    // Older data files lack `note`: the profile reads them as nulls.
    assert_eq!(find(&outcomes, orders, "column", Some("amount.mean")).value, Some(4.0));

    // An overwrite replaces the rows: volume follows the snapshot summary.
    py(
        &python,
        ws.path(),
        &format!("{ICEBERG_PRELUDE}\nt = cat.load_table('shop.orders')\nt.overwrite(rows([10, 20], extra=True))\n"),
    );
    clock.advance(std::time::Duration::from_secs(600));
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    assert_eq!(find(&outcomes, orders, "volume", None).value, Some(2.0));
    assert_eq!(find(&outcomes, orders, "column", Some("amount.mean")).value, Some(15.0));

    // A row-level delete: pyiceberg 0.12 writes it copy-on-write (a rewritten data file, no
    // delete file), so both the snapshot summary and the profile see the row gone.
    py(
        &python,
        ws.path(),
        &format!(
            "{ICEBERG_PRELUDE}
t = cat.load_table('shop.orders')
t.delete('id = 10')
assert all(m.content == 0 for m in cat.load_table('shop.orders').current_snapshot().manifests(t.io))
"
        ),
    );
    clock.advance(std::time::Duration::from_secs(600));
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    assert_eq!(find(&outcomes, orders, "volume", None).value, Some(1.0));
    assert_eq!(find(&outcomes, orders, "column", Some("amount.mean")).value, Some(20.0));
    agent.close().await;
}

/// A `moto_server` on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start(binary: &str) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, endpoint }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn files_on_s3_are_listed_across_pages_and_a_vanished_server_is_a_clear_error() {
    let Some(python) = tool("TELLTALE_LAKE_PYTHON") else { return };
    let Some(moto_binary) = tool("TELLTALE_MOTO_SERVER") else { return };
    let mut moto = Moto::start(&moto_binary);
    // 2,400 small files over 24 partitions: three pages of S3 listing.
    py(
        &python,
        Path::new("."),
        &format!(
            "import io, boto3, pyarrow as pa, pyarrow.parquet as pq\n\
s3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='tt-key', aws_secret_access_key='tt-secret', region_name='us-east-1')\n\
s3.create_bucket(Bucket='lake')\n\
for h in range(24):\n    for i in range(100):\n        buf = io.BytesIO()\n        pq.write_table(pa.table({{'v': [h, i, 1]}}), buf)\n        s3.put_object(Bucket='lake', Key=f'raw/events/hour={{h}}/part-{{i}}.parquet', Body=buf.getvalue())\n",
            moto.endpoint
        ),
    );
    // The scan lists three pages and reads 120 files from moto_server, a Python server: on a
    // loaded two-core machine that took more than 20 s once, so the deadline is generous (the
    // vanished server below is bounded by `connect_timeout`, not by it).
    let config = format!(
        "version: 1\nstore: sqlite://state/t.db\nsources:\n  s3lake:\n    kind: files\n    url: s3://lake/raw\n    statement_timeout: 90s\n    connect_timeout: 2s\n    s3:\n      endpoint: {}\n      region: us-east-1\n      access_key_id: ${{TT_S3_KEY}}\n      secret_access_key: ${{TT_S3_SECRET}}\n      path_style: true\n      allow_http: true\nchecks: [checks/]\n",
        moto.endpoint
    );
    // `sample: 5` reads 5% of the files (the same ones every run): 120 files of 3 rows.
    let checks = "version: 1\nassets:\n  - source: s3lake\n    table: events\n    sample: 5\n    monitors:\n      volume: {}\n      freshness: {timestamp_column: hour}\n      columns:\n        v: [max]\n";
    // Credentials through `${VAR}` expansion, as an operator would pass them.
    let env = |k: &str| match k {
        "TT_S3_KEY" => Some("tt-key".to_string()),
        "TT_S3_SECRET" => Some("tt-secret".to_string()),
        _ => None,
    };
    let ws = Workspace::new(&config, &[("s3.yaml", checks)]);
    let parsed = telltale::config::Config::parse(&ws.config_path(), &config, env).unwrap();
    let checkset = telltale::check::CheckSet::load(&parsed).unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let agent = telltale::runtime::Agent::new(parsed, checkset, clock as SharedClock).await.unwrap();
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let errors: Vec<_> = outcomes.iter().filter(|o| o.status == Status::Error).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(find(&outcomes, "s3lake.main.events", "volume", None).value, Some(7200.0));
    let events = "s3lake.main.events".parse().unwrap();
    let measured = agent.store.latest(&events).await.unwrap();
    assert!(measured.iter().any(|m| m.kind == MetricKind::ProfiledRows && m.value == 360.0), "{measured:?}");
    assert!(find(&outcomes, "s3lake.main.events", "column", Some("v.max")).value.is_some());

    // The server goes away: the next scan reports it as unreachable, quickly.
    let _ = moto.child.kill();
    let _ = moto.child.wait();
    let started = std::time::Instant::now();
    let outcomes = agent.run_once(&CancellationToken::new()).await;
    let down = outcomes.iter().find(|o| o.status == Status::Error).unwrap_or_else(|| panic!("{outcomes:#?}"));
    assert_eq!(down.error_class.map(|c| c.as_str()), Some("unreachable"), "{down:?}");
    assert!(down.message.contains("s3://lake/raw"), "{}", down.message);
    assert!(started.elapsed() < Duration::from_secs(30), "bounded retries, took {:?}", started.elapsed());
    agent.close().await;
}

/// A TCP pass-through in front of `moto_server`: it counts the response bytes it forwards (so the
/// test knows a data scan is under way) and can pace them (so the scan lasts long enough to stop
/// the server in the middle of it). When the server closes or resets a connection, the client's
/// side is closed too, as if it had talked to the server directly.
struct Pipe {
    endpoint: String,
    upstream: Arc<std::sync::atomic::AtomicU16>,
    down_bytes: Arc<std::sync::atomic::AtomicU64>,
    /// Bytes per second forwarded towards telltale; 0: as fast as possible.
    pace: Arc<std::sync::atomic::AtomicU64>,
}

impl Pipe {
    async fn start(upstream_port: u16) -> Pipe {
        use std::sync::atomic::Ordering::Relaxed;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let pipe = Pipe {
            endpoint,
            upstream: Arc::new(upstream_port.into()),
            down_bytes: Arc::new(0.into()),
            pace: Arc::new(0.into()),
        };
        let (upstream, down_bytes, pace) = (pipe.upstream.clone(), pipe.down_bytes.clone(), pipe.pace.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (port, down_bytes, pace) = (upstream.load(Relaxed), down_bytes.clone(), pace.clone());
                tokio::spawn(async move {
                    // No server: the client's connection is dropped, like a refused one.
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let requests = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                        let _ = server_write.shutdown().await;
                    });
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = server_read.read(&mut buf).await {
                        if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        down_bytes.fetch_add(n as u64, Relaxed);
                        let rate = pace.load(Relaxed);
                        if rate > 0 {
                            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
                        }
                    }
                    requests.abort();
                });
            }
        });
        pipe
    }

    fn bytes(&self) -> u64 {
        self.down_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until `more` response bytes have passed since `from`.
    async fn wait_for(&self, from: u64, more: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self.bytes() < from + more {
            assert!(std::time::Instant::now() < deadline, "no data scan started ({} bytes)", self.bytes() - from);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn moto_port(moto: &Moto) -> u16 {
    moto.endpoint.rsplit(':').next().unwrap().parse().unwrap()
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill {sig}");
}

/// Big Parquet files (random doubles: incompressible, 16 MB each) and a small table on S3.
fn upload_s3_tables(python: &str, endpoint: &str) {
    py(
        python,
        Path::new("."),
        &format!(
            "import io, boto3, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq\n\
s3 = boto3.client('s3', endpoint_url='{endpoint}', aws_access_key_id='k', aws_secret_access_key='s', region_name='us-east-1')\n\
s3.create_bucket(Bucket='lake')\n\
for i in range(3):\n    buf = io.BytesIO()\n    pq.write_table(pa.table({{'x': pc.random(2_000_000, initializer=i)}}), buf, compression='none', row_group_size=250_000)\n    s3.put_object(Bucket='lake', Key=f'raw/big/part-{{i}}.parquet', Body=buf.getvalue())\n\
buf = io.BytesIO()\npq.write_table(pa.table({{'v': [1, 2, 3]}}), buf)\ns3.put_object(Bucket='lake', Key='raw/small/a.parquet', Body=buf.getvalue())\n"
        ),
    );
}

/// The storage server stops answering, then dies, in the middle of a profile that is reading
/// large files: the scan ends within the source's timeouts with a clear error on that asset, the
/// other assets of the run are measured, and the next run after the server is back succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_server_that_goes_away_during_a_scan_fails_that_asset_within_the_timeouts() {
    let Some(python) = tool("TELLTALE_LAKE_PYTHON") else { return };
    let Some(moto_binary) = tool("TELLTALE_MOTO_SERVER") else { return };
    let mut moto = Moto::start(&moto_binary);
    let pipe = Pipe::start(moto_port(&moto)).await;
    upload_s3_tables(&python, &moto.endpoint);
    let config = format!(
        "version: 1\nstore: sqlite://state/t.db\nsources:\n  s3lake:\n    kind: files\n    url: s3://lake/raw\n    statement_timeout: 8s\n    connect_timeout: 1s\n    s3:\n      endpoint: {}\n      region: us-east-1\n      access_key_id: k\n      secret_access_key: s\n      path_style: true\n      allow_http: true\n  local:\n    kind: files\n    url: lake\nchecks: [checks/]\n",
        pipe.endpoint
    );
    let checks = "version: 1\nassets:\n  - source: s3lake\n    table: big\n    monitors:\n      volume: {}\n      columns:\n        x: [max, null_rate]\n  - source: local\n    table: orders\n    monitors:\n      volume: {}\n      columns:\n        n: [max]\n";
    let ws = Workspace::new(&config, &[("s3.yaml", checks)]);
    py(
        &python,
        ws.path(),
        "import os, pyarrow as pa, pyarrow.parquet as pq\nos.makedirs('lake/orders')\npq.write_table(pa.table({'n': [1, 2, 3, 4]}), 'lake/orders/a.parquet')\n",
    );
    let agent = ws.agent(Arc::new(ManualClock::new(chrono::Utc::now())) as SharedClock).await;
    let (big, local) = ("s3lake.main.big", "local.main.orders");
    let healthy = |outcomes: &[CheckOutcome]| {
        let errors: Vec<_> = outcomes.iter().filter(|o| o.status == Status::Error).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(find(outcomes, big, "volume", None).value, Some(6_000_000.0));
        assert_eq!(find(outcomes, big, "column", Some("x.null_rate")).value, Some(0.0));
        assert_eq!(find(outcomes, local, "column", Some("n.max")).value, Some(4.0));
    };
    healthy(&agent.run_once(&CancellationToken::new()).await);
    let failed_on_big = |outcomes: &[CheckOutcome]| -> CheckOutcome {
        assert_eq!(find(outcomes, local, "volume", None).value, Some(4.0), "the other source is measured");
        assert_eq!(find(outcomes, local, "column", Some("n.max")).value, Some(4.0));
        let errors: Vec<&CheckOutcome> = outcomes.iter().filter(|o| o.status == Status::Error).collect();
        assert!(errors.iter().all(|o| o.asset.as_str() == big), "{errors:#?}");
        (*errors.first().unwrap_or_else(|| panic!("no error for {big}: {outcomes:#?}"))).clone()
    };

    // 1. The server hangs (SIGSTOP) while the profile reads: nothing answers, connections stay
    //    open. The statement timeout (8 s) ends the scan; no retry outlives it.
    pipe.pace.store(16 << 20, std::sync::atomic::Ordering::Relaxed);
    let before = pipe.bytes();
    let started = std::time::Instant::now();
    let token = CancellationToken::new();
    let stop = async {
        pipe.wait_for(before, 4 << 20).await;
        signal(&moto.child, "-STOP");
    };
    let (outcomes, ()) =
        tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(agent.run_once(&token), stop) })
            .await
            .expect("the run hung");
    let elapsed = started.elapsed();
    signal(&moto.child, "-CONT");
    eprintln!("server stopped mid-scan: the run took {elapsed:?}");
    let error = failed_on_big(&outcomes);
    assert_eq!(error.error_class.map(|c| c.as_str()), Some("timeout"), "{error:?}");
    assert!(error.message.contains("8s") || error.message.contains("timed out"), "{}", error.message);
    assert!(elapsed < Duration::from_secs(25), "bounded by the 8 s statement timeout, took {elapsed:?}");

    // The same server is back: the next run measures everything.
    pipe.pace.store(0, std::sync::atomic::Ordering::Relaxed);
    healthy(&agent.run_once(&CancellationToken::new()).await);

    // 2. The server dies (SIGKILL) in the middle of reading the files: a truncated response,
    //    then refused connections. The asset fails as unreachable, quickly, naming the file.
    pipe.pace.store(16 << 20, std::sync::atomic::Ordering::Relaxed);
    let before = pipe.bytes();
    let started = std::time::Instant::now();
    let kill = async {
        pipe.wait_for(before, 4 << 20).await;
        let _ = moto.child.kill();
        let _ = moto.child.wait();
    };
    let (outcomes, ()) =
        tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(agent.run_once(&token), kill) })
            .await
            .expect("the run hung");
    let elapsed = started.elapsed();
    eprintln!("server killed mid-scan: the run took {elapsed:?}");
    let error = failed_on_big(&outcomes);
    // The runtime retries an unreachable source within the run: the last attempt, refused while
    // re-listing the table, is what the outcome reports.
    assert_eq!(error.error_class.map(|c| c.as_str()), Some("unreachable"), "{error:?}");
    assert!(error.message.contains("s3://lake/raw/big"), "{}", error.message);
    assert!(elapsed < Duration::from_secs(25), "took {elapsed:?}");

    // A new server (moto keeps objects in memory: the data is written again) behind the same
    // endpoint: the same agent recovers without a restart.
    pipe.pace.store(0, std::sync::atomic::Ordering::Relaxed);
    let moto2 = Moto::start(&moto_binary);
    pipe.upstream.store(moto_port(&moto2), std::sync::atomic::Ordering::Relaxed);
    upload_s3_tables(&python, &moto2.endpoint);
    healthy(&agent.run_once(&CancellationToken::new()).await);
    agent.close().await;
}
