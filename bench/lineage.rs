//! Lineage catalog benchmark: a synthetic graph of 100,000 assets and 500,000 edges.
//!
//! Usage: `cargo run --release --example lineage [-- --assets N --edges M --queries Q --events E --seed S]`
//!
//! Prints: graph build time; blast radius latency (p50/p99/max) over 1,000 random nodes and over
//! 1,000 random sources (the widest radii), with the full list and with the top 20 an alert
//! carries, unlimited and at depth 3;
//! upstream walks; OpenLineage parse and parse+ingest throughput (events/s, MB/s) on generated
//! events shaped like dbt-ol's; and the parse time of one large event at 1 MB and 10 MB, whose
//! ratio shows parsing is linear; and loading the graph back from a SQLite store (as the agent does
//! at start) next to the in-memory build, from SQLite and from PostgreSQL (`TELLTALE_BENCH_POSTGRES_URL`
//! or `TELLTALE_TEST_POSTGRES_URL`; a fresh database is created and dropped). Targets (issue 5): load from store ≤ 2 s, blast radius
//! ≤ 10 ms p99, ingest ≥ 2,000 events/s.
//!
//! The graph imitates a warehouse: 100 domains, 8 layers (sources → staging → marts → exposures),
//! each asset reading ~5 assets of earlier layers, 90% in its own domain, 10% anywhere — the
//! cross-domain edges make blast radii of early layers reach much of the graph, the worst case.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use telltale::catalog::openlineage::{self, DatasetLocation};
use telltale::catalog::{AssetKind, CatalogAsset, ImpactOptions, LineageGraph, NodeId, Origin, Owner};
use telltale::measure::AssetId;

struct Args {
    assets: usize,
    edges: usize,
    queries: usize,
    events: usize,
    seed: u64,
}

fn args() -> Args {
    let mut parsed = Args { assets: 100_000, edges: 500_000, queries: 1_000, events: 20_000, seed: 42 };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    for pair in raw.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| {
            eprintln!("usage: lineage [--assets N] [--edges M] [--queries Q] [--events E] [--seed S]");
            std::process::exit(2)
        });
        match pair[0].as_str() {
            "--assets" => parsed.assets = value as usize,
            "--edges" => parsed.edges = value as usize,
            "--queries" => parsed.queries = value as usize,
            "--events" => parsed.events = value as usize,
            "--seed" => parsed.seed = value,
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2)
            }
        }
    }
    parsed
}

const DOMAINS: usize = 100;
const LAYERS: usize = 8;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn build(args: &Args, rng: &mut StdRng) -> (LineageGraph, Vec<NodeId>, Duration) {
    let started = Instant::now();
    let mut graph = LineageGraph::with_capacity(args.assets, args.edges);
    let per_domain = args.assets.div_ceil(DOMAINS);
    let seen = Utc.with_ymd_and_hms(2026, 8, 20, 9, 0, 0).unwrap();
    let mut ids = Vec::with_capacity(args.assets);
    // Node i: domain i / per_domain, layer (i % per_domain) * LAYERS / per_domain.
    let layer_of = |i: usize| (i % per_domain) * LAYERS / per_domain;
    for i in 0..args.assets {
        let (domain, layer) = (i / per_domain, layer_of(i));
        let kind = match layer {
            0 => AssetKind::Source,
            l if l == LAYERS - 1 => match rng.random_range(0..10) {
                0..=5 => AssetKind::Dashboard,
                6 | 7 => AssetKind::MlModel,
                _ => AssetKind::Application,
            },
            _ => AssetKind::Model,
        };
        let mut asset = CatalogAsset::new(format!("model.d{domain}.n{i}"), format!("n{i}"), kind);
        asset.asset_id = Some(format!("wh{}.d{domain}.n{i}", domain % 4).parse::<AssetId>().unwrap());
        asset.owner = Owner::parse(&format!("team{}@example.com", rng.random_range(0..500)));
        asset.tier = Some(match rng.random_range(0..100) {
            0..=9 => 1,
            10..=39 => 2,
            40..=79 => 3,
            _ => 4,
        });
        ids.push(graph.upsert(asset, Origin::Dbt).unwrap());
    }
    let first_of_layer = |domain: usize, layer: usize| domain * per_domain + (layer * per_domain).div_ceil(LAYERS);
    while graph.edge_count() < args.edges {
        let to = rng.random_range(0..args.assets);
        let layer = layer_of(to);
        if layer == 0 {
            continue;
        }
        let domain = if rng.random_range(0..10) == 0 { rng.random_range(0..DOMAINS) } else { to / per_domain };
        let low = first_of_layer(domain, 0);
        let high = first_of_layer(domain, layer).min(args.assets);
        if high <= low {
            continue;
        }
        let from = rng.random_range(low..high);
        graph.add_edge(ids[from], ids[to], Origin::Dbt, seen).unwrap();
    }
    (graph, ids, started.elapsed())
}

fn latencies(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    format!(
        "p50 {:>10}  p99 {:>10}  max {:>10}",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap())
    )
}

fn bench_walks(graph: &LineageGraph, ids: &[NodeId], args: &Args, rng: &mut StdRng) {
    let any: Vec<NodeId> = (0..args.queries).map(|_| ids[rng.random_range(0..ids.len())]).collect();
    // Sources have the widest blast radii: the worst case.
    let sources: Vec<NodeId> = graph.nodes().filter(|(_, a)| a.kind == AssetKind::Source).map(|(id, _)| id).collect();
    let worst: Vec<NodeId> = (0..args.queries).map(|_| sources[rng.random_range(0..sources.len())]).collect();
    for (label, roots, options) in [
        ("blast radius, sources, all listed", &worst, ImpactOptions::default()),
        ("blast radius, sources, top 20", &worst, ImpactOptions { list_limit: Some(20), ..Default::default() }),
    ]
    .into_iter()
    .chain([
        ("blast radius, all listed", &any, ImpactOptions::default()),
        ("blast radius, top 20", &any, ImpactOptions { list_limit: Some(20), ..Default::default() }),
        (
            "blast radius, top 20, depth 3",
            &any,
            ImpactOptions { list_limit: Some(20), depth_limit: Some(3), ..Default::default() },
        ),
    ]) {
        let mut samples = Vec::with_capacity(roots.len());
        let mut reached = Vec::with_capacity(roots.len());
        for &root in roots {
            let started = Instant::now();
            let impact = graph.blast_radius_with(root, options);
            samples.push(started.elapsed());
            reached.push(impact.total);
        }
        reached.sort_unstable();
        println!(
            "{label:<38} {}   reach p50 {:>6}  max {:>6}",
            latencies(samples),
            reached[reached.len() / 2],
            reached.last().unwrap()
        );
    }
    let mut samples = Vec::with_capacity(any.len());
    for &root in &any {
        let started = Instant::now();
        std::hint::black_box(graph.upstream(root, None));
        samples.push(started.elapsed());
    }
    println!("{:<38} {}", "upstream, any depth", latencies(samples));
}

/// The extreme: a hub above every source, whose blast radius is the whole graph.
fn bench_whole_graph(graph: &mut LineageGraph) {
    let sources: Vec<NodeId> = graph.nodes().filter(|(_, a)| a.kind == AssetKind::Source).map(|(id, _)| id).collect();
    let hub = graph.upsert(CatalogAsset::new("hub", "hub", AssetKind::Table), Origin::Declared).unwrap();
    let seen = Utc.with_ymd_and_hms(2026, 8, 20, 9, 0, 0).unwrap();
    for &source in &sources {
        graph.add_edge(hub, source, Origin::Declared, seen).unwrap();
    }
    for (label, options) in [
        ("whole graph, all listed", ImpactOptions::default()),
        ("whole graph, top 20", ImpactOptions { list_limit: Some(20), ..Default::default() }),
    ] {
        let samples: Vec<Duration> = (0..20)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(graph.blast_radius_with(hub, options));
                started.elapsed()
            })
            .collect();
        let reach = graph.blast_radius_with(hub, options).total;
        println!("{label:<38} {}   reach {reach} (hub + {} edges to sources)", latencies(samples), sources.len());
    }
    for &source in &sources {
        graph.retract_edge(hub, source, Origin::Declared);
    }
}

/// An event like dbt-ol's for one model: a few inputs, one output with schema and column lineage.
fn event(i: usize, rng: &mut StdRng) -> String {
    let namespace = "postgres://warehouse.internal:5432";
    let table = |n: usize| format!("analytics.d{}.n{n}", n % DOMAINS);
    let inputs: Vec<_> = (0..rng.random_range(1..5))
        .map(|_| json!({"namespace": namespace, "name": table(rng.random_range(0..100_000)), "facets": {}}))
        .collect();
    let columns: Vec<String> = (0..8).map(|c| format!("column_{c}")).collect();
    let lineage: serde_json::Map<String, serde_json::Value> = columns
        .iter()
        .map(|c| {
            let source = &inputs[0]["name"];
            (
                c.clone(),
                json!({"inputFields": [{"namespace": namespace, "name": source, "field": c,
                "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]}]}),
            )
        })
        .collect();
    let producer = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt";
    json!({
        "eventType": if i.is_multiple_of(2) { "START" } else { "COMPLETE" },
        "eventTime": "2026-08-20T09:15:02.123456+00:00",
        "producer": producer,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": format!("0191c9a2-7f3e-7a10-9b1d-{:012x}", i / 2), "facets": {
            "parent": {"_producer": producer, "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json",
                       "job": {"namespace": "dbt", "name": "dbt-run-analytics"}, "run": {"runId": "0191c9a2-7f3e-7a10-9b1d-3c2f5e6a7b8c"}}}},
        "job": {"namespace": "dbt", "name": format!("analytics.model.n{}.build.run", i / 2), "facets": {
            "jobType": {"_producer": producer, "_schemaURL": "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json",
                        "processingType": "BATCH", "integration": "DBT", "jobType": "MODEL"}}},
        "inputs": inputs,
        "outputs": [{"namespace": namespace, "name": table(i / 2), "facets": {
            "schema": {"_producer": producer, "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json",
                       "fields": columns.iter().map(|c| json!({"name": c, "type": "numeric"})).collect::<Vec<_>>()},
            "columnLineage": {"_producer": producer, "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
                              "fields": lineage}}}]
    })
    .to_string()
}

/// One event with as many distinct inputs as fit in `bytes`.
fn large_event(bytes: usize) -> String {
    let input = |i: usize| {
        json!({"namespace": "s3://lake", "name": format!("raw/events/part-{i:06}.parquet"), "facets": {}}).to_string()
    };
    let count = bytes / (input(0).len() + 1);
    let inputs: Vec<String> = (0..count).map(input).collect();
    format!(
        r#"{{"eventType":"COMPLETE","eventTime":"2026-08-20T09:15:02Z","producer":"https://x","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json","run":{{"runId":"0191c9a2-7f3e-7a10-9b1d-3c2f5e6a7b8c"}},"job":{{"namespace":"spark","name":"compact"}},"inputs":[{}],"outputs":[{{"namespace":"s3://lake","name":"compacted"}}]}}"#,
        inputs.join(",")
    )
}

fn mapping(location: &DatasetLocation) -> Option<AssetId> {
    format!("wh.{}.{}", location.schema.as_deref()?, location.object).parse().ok()
}

fn bench_openlineage(graph: &mut LineageGraph, args: &Args, rng: &mut StdRng) -> Vec<String> {
    let events: Vec<String> = (0..args.events).map(|i| event(i, rng)).collect();
    let bytes: usize = events.iter().map(String::len).sum();
    let started = Instant::now();
    for body in &events {
        std::hint::black_box(openlineage::parse_event(body.as_bytes()).unwrap());
    }
    let parse = started.elapsed();
    let seen = Utc.with_ymd_and_hms(2026, 8, 20, 10, 0, 0).unwrap();
    let started = Instant::now();
    for body in &events {
        let event = openlineage::parse_event(body.as_bytes()).unwrap();
        openlineage::ingest(graph, &event, &mapping, seen).unwrap();
    }
    let ingest = started.elapsed();
    let rate = |d: Duration| args.events as f64 / d.as_secs_f64();
    let mb = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "OpenLineage parse            {:>9.0} events/s  {:>6.1} MB/s  ({} events, {:.1} KB average)",
        rate(parse),
        mb(parse),
        args.events,
        bytes as f64 / args.events as f64 / 1e3
    );
    println!(
        "OpenLineage parse + ingest   {:>9.0} events/s  {:>6.1} MB/s  (graph now {} nodes, {} edges)",
        rate(ingest),
        mb(ingest),
        graph.node_count(),
        graph.edge_count()
    );
    let mut times = Vec::new();
    for size in [1_000_000, 10_000_000] {
        let body = large_event(size);
        let started = Instant::now();
        let event = openlineage::parse_event(body.as_bytes()).unwrap();
        let parsed = started.elapsed();
        let mut scratch = LineageGraph::new();
        let started = Instant::now();
        openlineage::ingest(&mut scratch, &event, &mapping, seen).unwrap();
        let ingested = started.elapsed();
        println!(
            "large event {:>5.1} MB          parse {:>10}  ingest {:>10}  ({} inputs)",
            body.len() as f64 / 1e6,
            ms(parsed),
            ms(ingested),
            event.inputs.len()
        );
        times.push(parsed.as_secs_f64());
    }
    println!("large event parse time ratio 10 MB / 1 MB: {:.1} (linear ≈ 10)", times[1] / times[0]);
    events
}

/// The agent's ingest path (`Lineage::ingest`: graph + the queue for the store) with a flush to a
/// SQLite store every 1,000 events, as `run_lineage` flushes every `reload_interval`.
fn bench_live_ingest(events: &[String]) {
    let dir = std::env::temp_dir().join(format!("telltale-lineage-live-{}", std::process::id()));
    let url = format!("sqlite://{}/store.db", dir.display());
    let config = telltale::config::Config::parse(
        std::path::Path::new("bench.yaml"),
        "version: 1\nsources:\n  wh:\n    kind: postgres\n    url: postgres://u@db.internal:5432/analytics\n",
        |_| None,
    )
    .expect("bench config");
    let seen = Utc.with_ymd_and_hms(2026, 8, 20, 10, 0, 0).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = telltale::store::Store::open(&url).await.expect("store");
        let lineage = telltale::runtime::Lineage::new(&config);
        let started = Instant::now();
        let mut rows = 0;
        for (i, body) in events.iter().enumerate() {
            let event = openlineage::parse_event(body.as_bytes()).unwrap();
            lineage.ingest(&event, seen).unwrap();
            if i % 1_000 == 999 {
                rows += lineage.flush(&store).await.unwrap();
            }
        }
        rows += lineage.flush(&store).await.unwrap();
        let took = started.elapsed();
        println!(
            "live ingest + SQLite flushes {:>9.0} events/s  ({} events, {} rows written, graph {} nodes)",
            events.len() as f64 / took.as_secs_f64(),
            events.len(),
            rows,
            lineage.graph().node_count()
        );
        store.close().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args = args();
    let mut rng = StdRng::seed_from_u64(args.seed);
    println!("lineage benchmark: {} assets, {} edges, seed {}", args.assets, args.edges, args.seed);
    let (mut graph, ids, took) = build(&args, &mut rng);
    println!(
        "build                        {:>10}  ({} nodes, {} edges, {:.0} edges/s)",
        ms(took),
        graph.node_count(),
        graph.edge_count(),
        graph.edge_count() as f64 / took.as_secs_f64()
    );
    bench_walks(&graph, &ids, &args, &mut rng);
    bench_load_from_store(&graph, took);
    bench_whole_graph(&mut graph);
    let events = bench_openlineage(&mut graph, &args, &mut rng);
    bench_live_ingest(&events);
}

/// Load from store: the synthetic graph saved as OpenLineage-learned lineage (every asset a
/// dataset, every edge with its last-seen time) in a fresh store, then loaded back the way the
/// agent starts (`Lineage::load`: rows → graph), three times. The peer is the in-memory build
/// above. SQLite always (a file in the temp directory); PostgreSQL when `TELLTALE_BENCH_POSTGRES_URL`
/// (else `TELLTALE_TEST_POSTGRES_URL`) names a server: a fresh database is created there and
/// dropped afterwards.
fn bench_load_from_store(graph: &LineageGraph, built_in: Duration) {
    use telltale::store::{LineageBatch, StoredEdge, StoredNode};
    let seen = Utc.with_ymd_and_hms(2026, 8, 20, 9, 0, 0).unwrap();
    let key = |n: NodeId| format!("bench/{}", graph.asset(n).key);
    let mut batch = LineageBatch::default();
    for (id, asset) in graph.nodes() {
        batch.nodes.push(StoredNode {
            key: key(id),
            kind: "dataset".into(),
            namespace: "bench".into(),
            name: asset.key.clone(),
            owner: asset.owner.clone(),
            column_lineage: None,
            updated_at: seen,
        });
    }
    for (_, edge) in graph.edges() {
        batch.edges.push(StoredEdge { from: key(edge.from), to: key(edge.to), job: None, seen_at: seen });
    }
    let dir = std::env::temp_dir().join(format!("telltale-lineage-bench-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let sqlite = format!("sqlite://{}/store.db", dir.display());
    runtime.block_on(load_from(&sqlite, "SQLite", &batch, built_in));
    let _ = std::fs::remove_dir_all(&dir);
    let server = std::env::var("TELLTALE_BENCH_POSTGRES_URL").or_else(|_| std::env::var("TELLTALE_TEST_POSTGRES_URL"));
    match server {
        Ok(admin) => runtime.block_on(async {
            use sqlx::Executor;
            let name = format!("tt_lineage_bench_{}", std::process::id());
            let pool = sqlx::PgPool::connect(&admin).await.expect("connect to PostgreSQL");
            pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
            let cut = admin.split('?').next().unwrap().rfind('/').expect("url has a path");
            let url = format!("{}/{name}", &admin[..cut]);
            load_from(&url, "PostgreSQL", &batch, built_in).await;
            pool.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).await.expect("drop");
            pool.close().await;
        }),
        Err(_) => println!("store (PostgreSQL): skipped (set TELLTALE_BENCH_POSTGRES_URL)"),
    }
}

async fn load_from(url: &str, label: &str, batch: &telltale::store::LineageBatch, built_in: Duration) {
    use telltale::store::Store;
    let seen = Utc.with_ymd_and_hms(2026, 8, 20, 9, 0, 0).unwrap();
    let config = telltale::config::Config::parse(
        std::path::Path::new("bench.yaml"),
        "version: 1\nsources:\n  wh:\n    kind: postgres\n    url: postgres://u@db.internal:5432/shop\n",
        |_| None,
    )
    .expect("bench config");
    let store = Store::open(url).await.expect("store");
    let started = Instant::now();
    store.save_lineage(batch).await.expect("save");
    println!(
        "store ({label}): save {:>17}  ({} nodes, {} edges in one transaction)",
        ms(started.elapsed()),
        batch.nodes.len(),
        batch.edges.len()
    );
    let started = Instant::now();
    let rows = store.load_lineage().await.expect("read");
    println!(
        "store ({label}): read rows {:>12}  ({} nodes, {} edges)",
        ms(started.elapsed()),
        rows.nodes.len(),
        rows.edges.len()
    );
    drop(rows);
    for round in 1..=3 {
        let lineage = telltale::runtime::Lineage::new(&config);
        let started = Instant::now();
        let stats = lineage.load(&telltale::check::CheckSet::default(), &store, seen).await.expect("load");
        let took = started.elapsed();
        let graph = lineage.graph();
        println!(
            "store ({label}): load, run {round} {:>10}  ({} nodes, {} edges back; in-memory build {})",
            ms(took),
            graph.node_count(),
            graph.edge_count(),
            ms(built_in)
        );
        assert_eq!(stats.stored_edges, batch.edges.len());
        assert_eq!(graph.edge_count(), batch.edges.len());
    }
    store.close().await;
}
