#!/usr/bin/env python3
"""Helpers of the Foundation benchmarks (bench/*.sh): file generation and result checks.

  catalog-sql POSTGRES_RS                 print telltale's PostgreSQL catalog query (CATALOG_SQL)
  peer-metadata-sql N WIDTH OUT           one `SELECT count(*), max(ts)` per table, as a psql file
  store-counts STORE_DB                   measurements in telltale's SQLite store, as JSON
  profile-files DIR                       the profile check file and the peer's SQL (one query per
                                          metric and column), plus the order of the peer's outputs
  sqlx-breakdown LOG                      where a `--log sqlx=debug` run spent its time: per kind of
                                          statement, the count and the server/driver time sqlx logged
  profile-compare TELLTALE_JSON PEER_OUT ORDER
                                          compare telltale's values with the peer's, print a JSON
                                          summary (metrics measured, errors, mismatches)
"""

import json
import math
import re
import sqlite3
import sys

# The wide table of the profile benchmark: (column, SQL type, class).
PROFILE_COLUMNS = [
    ("id", "bigint", "numeric"),
    ("qty", "integer", "numeric"),
    ("price", "numeric(12,2)", "numeric"),
    ("score", "double precision", "numeric"),
    ("ratio", "real", "numeric"),
    ("category", "text", "text"),
    ("email", "text", "text"),
    ("note", "text", "text"),
    ("created_at", "timestamptz", "temporal"),
    ("updated_at", "timestamp", "temporal"),
]

# Every column metric telltale computes on PostgreSQL for each class (the brief's list).
METRICS = {
    "numeric": ["null_rate", "distinct_count", "min", "max", "mean", "stddev", "p50", "p95"],
    "text": ["null_rate", "distinct_count", "max_length"],
    "temporal": ["min", "max"],
}


def peer_expr(col, cls, metric):
    """The query a per-metric checker runs: one metric of one column, natively."""
    c = f'"{col}"'
    if metric == "null_rate":
        return f"(count(*) - count({c}))::float8 / nullif(count(*), 0)"
    if metric == "distinct_count":
        return f"count(DISTINCT {c})"
    if metric in ("min", "max"):
        # Temporal values come back as epoch seconds so they compare with telltale's.
        return f"extract(epoch from {metric}({c}))" if cls == "temporal" else f"{metric}({c})"
    if metric == "mean":
        return f"avg({c})"
    if metric == "stddev":
        return f"stddev_samp({c})"
    if metric == "p50":
        return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {c})"
    if metric == "p95":
        return f"percentile_cont(0.95) WITHIN GROUP (ORDER BY {c})"
    if metric == "max_length":
        return f"max(length({c}))"
    raise ValueError(metric)


def catalog_sql(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r'CATALOG_SQL: &str = r#"(.*?)"#;', text, re.S)
    if not m:
        sys.exit(f"CATALOG_SQL not found in {path}")
    print(m.group(1).strip())


def peer_metadata_sql(n, width, out):
    with open(out, "w", encoding="utf-8") as f:
        for i in range(1, n + 1):
            f.write(f"SELECT count(*), max(ts) FROM bench.t{i:0{width}d};\n")


def store_counts(db):
    con = sqlite3.connect(db)
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    cycles = [r[0] for r in con.execute("SELECT DISTINCT observed_at FROM measurements ORDER BY 1")]
    last = cycles[-1] if cycles else None
    out = {
        "assets_with_row_count": q("SELECT count(DISTINCT asset) FROM measurements WHERE kind = 'row_count'"),
        "assets_with_freshness_lag": q(
            "SELECT count(DISTINCT asset) FROM measurements WHERE kind = 'freshness_lag'"
        ),
        "measurements": q("SELECT count(*) FROM measurements"),
        "measurements_last_cycle": q(f"SELECT count(*) FROM measurements WHERE observed_at = {last}") if last else 0,
        "assets": q("SELECT count(*) FROM assets"),
        "schema_snapshots": q("SELECT count(*) FROM schema_snapshots"),
        "errors": q("SELECT count(*) FROM measurement_errors"),
        "cycles": len(cycles),
    }
    print(json.dumps(out))


def sqlx_breakdown(path):
    """Sums sqlx's per-statement `elapsed_secs` by kind of statement; also the span they cover."""
    import datetime

    kinds = {}
    first = last = None
    for line in open(path, encoding="utf-8", errors="replace"):
        m = re.search(r'summary="([^"]*)".*elapsed_secs=([0-9.eE+-]+)', line)
        if not m:
            continue
        t = datetime.datetime.fromisoformat(line[:26])
        first = first or t
        last = t
        summary = m.group(1)
        if summary.startswith("SELECT n.nspname"):
            kind = "source: catalog query (PostgreSQL)"
        elif summary.startswith("INSERT INTO "):
            kind = "store: INSERT INTO " + summary.split()[2] + " (SQLite)"
        elif summary.startswith("SELECT") and "_sqlx_migrations" not in summary and "SELECT version" not in summary:
            kind = "store: reads (SQLite)"
        else:
            kind = "other (connection setup, migrations)"
        n, secs = kinds.get(kind, (0, 0.0))
        kinds[kind] = (n + 1, secs + float(m.group(2)))
    for kind, (n, secs) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
        print(f"  {kind:<46} {n:5d} statements {secs:8.3f} s")
    if first and last:
        total = sum(v[1] for v in kinds.values())
        print(f"  {'all statements':<46} {sum(v[0] for v in kinds.values()):5d} statements {total:8.3f} s"
              f" (first to last statement: {(last - first).total_seconds():.3f} s)")


def profile_files(d):
    order = []
    yaml = [
        "# Generated by bench/foundation.py: every column metric telltale computes on PostgreSQL.",
        "version: 1",
        "assets:",
        "  - source: bench",
        "    table: prof.wide",
        "    monitors:",
        "      columns:",
    ]
    sql = ["\\pset footer off", "\\pset null NULL"]
    for col, _, cls in PROFILE_COLUMNS:
        metrics = METRICS[cls]
        yaml.append(f"        {col}: [{', '.join(metrics)}]")
        for m in metrics:
            sql.append(f"SELECT {peer_expr(col, cls, m)} FROM prof.wide;")
            order.append(f"{col}.{m}")
    with open(f"{d}/checks/profile.yaml", "w", encoding="utf-8") as f:
        f.write("\n".join(yaml) + "\n")
    with open(f"{d}/peer-profile.sql", "w", encoding="utf-8") as f:
        f.write("\n".join(sql) + "\n")
    with open(f"{d}/peer-profile.order", "w", encoding="utf-8") as f:
        f.write("\n".join(order) + "\n")
    print(len(order))


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def profile_compare(telltale_json, peer_out, order_file):
    doc = json.load(open(telltale_json, encoding="utf-8"))
    ours = {}
    errors = []
    for o in doc.get("outcomes", []):
        if o.get("monitor") == "column" and o.get("subject"):
            if o.get("status") == "error":
                errors.append(f"{o['subject']}: {o.get('message')}")
            else:
                ours[o["subject"]] = o.get("value")
        elif o.get("status") == "error":
            errors.append(f"{o.get('monitor')}: {o.get('message')}")
    order = [line.strip() for line in open(order_file, encoding="utf-8") if line.strip()]
    peer_lines = [line.strip() for line in open(peer_out, encoding="utf-8").read().splitlines()]
    mismatches = []
    if len(peer_lines) != len(order):
        mismatches.append(f"peer returned {len(peer_lines)} values for {len(order)} queries")
    for key, raw in zip(order, peer_lines):
        theirs = float(raw) if raw not in ("", "NULL") else None
        mine = ours.get(key)
        if key not in ours:
            mismatches.append(f"{key}: telltale has no value")
        elif not close(mine, theirs):
            mismatches.append(f"{key}: telltale {mine} vs peer {theirs}")
    print(
        json.dumps(
            {
                "metrics": len(order),
                "telltale_values": len(ours),
                "errors": errors,
                "mismatches": mismatches,
            }
        )
    )


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "catalog-sql":
        catalog_sql(args[0])
    elif cmd == "peer-metadata-sql":
        peer_metadata_sql(int(args[0]), int(args[1]), args[2])
    elif cmd == "store-counts":
        store_counts(args[0])
    elif cmd == "sqlx-breakdown":
        sqlx_breakdown(args[0])
    elif cmd == "profile-files":
        profile_files(args[0])
    elif cmd == "profile-compare":
        profile_compare(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
