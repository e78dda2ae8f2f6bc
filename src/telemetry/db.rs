//! Warehouse queries as OpenTelemetry database client spans (semantic conventions v1.x, stable
//! database spans): `db.system.name`, `db.namespace`, `db.collection.name`, `db.operation.name`,
//! `db.query.summary` (also the span name), `server.address`/`server.port`, and the query text
//! only after [`sanitize`] replaced every literal with `?`. Each query's latency also goes into
//! `telltale_query_duration_seconds`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use tracing::field::Empty;

use crate::config::{SourceConfig, SourceKind};

/// Where a source's queries go, as the conventions name it; built once per source.
#[derive(Debug, Clone, PartialEq)]
pub struct DbTarget {
    /// The telltale source name (metric label).
    pub source: String,
    /// `postgresql`, `mysql` or `sqlite`.
    pub system: &'static str,
    /// The database name (PostgreSQL, MySQL) or file name (SQLite).
    pub namespace: String,
    pub server_address: Option<String>,
    pub server_port: Option<u16>,
}

impl DbTarget {
    pub fn of(config: &SourceConfig) -> DbTarget {
        let url = config.url.expose();
        let system = match config.kind {
            SourceKind::Postgres => "postgresql",
            SourceKind::Mysql => "mysql",
            SourceKind::Sqlite => "sqlite",
            // Lake tables are queried by the embedded DataFusion engine.
            SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg => "datafusion",
        };
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (address, port, namespace) = match config.kind {
            SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg => {
                let location = rest.trim_end_matches('/');
                (None, None, location.rsplit('/').next().unwrap_or(location).to_string())
            }
            SourceKind::Sqlite => {
                let file = rest.trim_start_matches("sqlite:");
                (None, None, file.rsplit('/').next().unwrap_or(file).to_string())
            }
            _ => {
                let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
                let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                let (host, port) = match host_port.rsplit_once(':') {
                    Some((h, p)) if !h.ends_with(']') || host_port.starts_with('[') => (h, p.parse::<u16>().ok()),
                    _ => (host_port, None),
                };
                let default_port = if config.kind == SourceKind::Postgres { 5432 } else { 3306 };
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let host = (!host.is_empty()).then(|| host.to_string());
                (host, Some(port.unwrap_or(default_port)), database.to_string())
            }
        };
        DbTarget { source: config.name.clone(), system, namespace, server_address: address, server_port: port }
    }
}

/// What one query is about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryInfo<'a> {
    /// Metric label: `catalog`, `profile`, `buckets`, `freshness`, `custom_sql`, `ping`.
    pub kind: &'static str,
    /// `db.operation.name`.
    pub operation: &'static str,
    /// `db.collection.name`: the qualified table, when the query reads one.
    pub collection: Option<&'a str>,
}

impl<'a> QueryInfo<'a> {
    pub fn table(kind: &'static str, collection: &'a str) -> Self {
        QueryInfo { kind, operation: "SELECT", collection: Some(collection) }
    }
    pub fn other(kind: &'static str) -> Self {
        QueryInfo { kind, operation: "SELECT", collection: None }
    }
}

/// `db.query.summary`: the operation and the table (`SELECT public.orders`), or the query's kind
/// for queries of no one table (`SELECT catalog`); written only when a span records it.
struct Summary<'q, 'a>(&'q QueryInfo<'a>);

impl std::fmt::Display for Summary<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.collection {
            Some(c) => write!(f, "{} {c}", self.0.operation),
            None => write!(f, "{} {}", self.0.operation, self.0.kind),
        }
    }
}

/// `db.query.text`: the sanitized query, computed only when a span records it.
struct Sanitized<'a>(&'a str);

impl std::fmt::Display for Sanitized<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&sanitized(self.0))
    }
}

/// Texts of queries already sanitized: telltale sends the same few queries per table on every
/// run, and looking one up costs a fraction of sanitizing it again.
static SANITIZED: LazyLock<Mutex<HashMap<Box<str>, Arc<str>>>> = LazyLock::new(Mutex::default);

/// Queries remembered at most; the memory is emptied when it is full.
const SANITIZED_KEPT: usize = 4096;

/// [`sanitize`], remembered per query text.
fn sanitized(sql: &str) -> Arc<str> {
    let mut kept = SANITIZED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(text) = kept.get(sql) {
        return text.clone();
    }
    let text: Arc<str> = sanitize(sql).into();
    if kept.len() >= SANITIZED_KEPT {
        kept.clear();
    }
    kept.insert(sql.into(), text.clone());
    text
}

/// A CLIENT span for one query, a child of the current work ([`super::spans::parent`]); hold it
/// around the round trip and end it with [`finish`].
pub fn query_span(target: &DbTarget, query: &QueryInfo<'_>, sql: &str) -> tracing::Span {
    // Every known field is given at creation (one visit of the fields instead of a `record` call
    // each), and the computed ones are `Display` wrappers: without traces they are never written.
    tracing::info_span!(
        parent: super::spans::parent(),
        "db query",
        otel.name = %Summary(query),
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = target.system,
        db.namespace = target.namespace.as_str(),
        db.collection.name = query.collection,
        db.operation.name = query.operation,
        db.query.summary = %Summary(query),
        db.query.text = %Sanitized(sql),
        db.response.returned_rows = Empty,
        server.address = target.server_address.as_deref(),
        server.port = target.server_port,
        error.type = Empty,
        telltale.source = target.source.as_str(),
    )
}

/// Records how a query ended on its span and in `telltale_query_duration_seconds`.
pub fn finish(
    span: &tracing::Span,
    target: &DbTarget,
    query: &QueryInfo<'_>,
    started: Instant,
    rows: Option<usize>,
    error: Option<&str>,
) {
    match (rows, error) {
        (_, Some(class)) => {
            span.record("error.type", class);
            span.record("otel.status_code", "ERROR");
        }
        (Some(n), None) => {
            span.record("db.response.returned_rows", n as u64);
        }
        (None, None) => {}
    }
    let outcome = if error.is_some() { "error" } else { "ok" };
    super::metrics::global().observe(
        &super::metrics::QUERY_DURATION,
        &[&target.source, target.system, query.kind, outcome],
        started.elapsed().as_secs_f64(),
    );
}

/// Longest query text kept on a span.
const MAX_QUERY_TEXT: usize = 4096;

/// The query with every string and numeric literal replaced by `?` and whitespace collapsed, so
/// that no value from a user's `where` filter or custom SQL reaches a trace. Quoted identifiers
/// (`"name"`, `` `name` ``) are kept.
pub fn sanitize(sql: &str) -> String {
    // Byte by byte: every character that matters here is ASCII, and the bytes of any other UTF-8
    // character are copied as they are.
    let b = sql.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len().min(MAX_QUERY_TEXT));
    let mut i = 0;
    let mut last_space = true;
    while i < b.len() && out.len() < MAX_QUERY_TEXT {
        let c = b[i];
        match c {
            b'\'' => {
                // A string literal; '' inside is an escaped quote.
                i += 1;
                while i < b.len() {
                    if b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                out.push(b'?');
                last_space = false;
                i += 1;
            }
            b'"' | b'`' => {
                let close = c;
                let body = b[i + 1..].iter().position(|&x| x == close).map_or(b.len(), |p| i + 1 + p);
                out.extend_from_slice(&b[i..body]);
                if body < b.len() {
                    out.push(close);
                }
                last_space = false;
                i = body + 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                // A comment may carry anything; drop it.
                i = b[i..].iter().position(|&x| x == b'\n').map_or(b.len(), |p| i + p);
            }
            b'$' if b.get(i + 1) == Some(&b'$') => {
                // PostgreSQL dollar quoting.
                let end = (i + 2..b.len().saturating_sub(1)).find(|&j| b[j] == b'$' && b[j + 1] == b'$');
                out.push(b'?');
                last_space = false;
                i = end.map_or(b.len(), |j| j + 2);
            }
            d if d.is_ascii_digit() => {
                // Non-ASCII bytes belong to identifiers' letters.
                let in_identifier =
                    out.last().is_some_and(|&p| p.is_ascii_alphanumeric() || p == b'_' || p == b'$' || p >= 0x80);
                if in_identifier {
                    out.push(d);
                    i += 1;
                } else {
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                        i += 1;
                    }
                    out.push(b'?');
                }
                last_space = false;
            }
            w if w.is_ascii_whitespace() => {
                if !last_space {
                    out.push(b' ');
                    last_space = true;
                }
                i += 1;
            }
            other => {
                out.push(other);
                last_space = false;
                i += 1;
            }
        }
    }
    while out.last() == Some(&b' ') {
        out.pop();
    }
    // Cut only between characters: a multi-byte character cut by the length limit is dropped.
    match String::from_utf8(out) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_never_reach_a_trace() {
        assert_eq!(
            sanitize(
                "SELECT count(*) FROM \"s\".\"t1\" WHERE email = 'a''b@x.io' AND amount > 42.5 -- secret\n LIMIT 10"
            ),
            "SELECT count(*) FROM \"s\".\"t1\" WHERE email = ? AND amount > ? LIMIT ?"
        );
        assert_eq!(sanitize("SELECT $$x$$, col2, `weird 'name`"), "SELECT ?, col2, `weird 'name`");
        assert_eq!(sanitize("SELECT 'it\\'s'"), "SELECT ?");
    }

    #[test]
    fn a_remembered_query_text_is_the_same_sanitized_text() {
        let sql = "SELECT count(*) FROM t WHERE region = 'eu-west' /* remembered */";
        let first = sanitized(sql);
        assert_eq!(&*first, sanitize(sql));
        assert!(Arc::ptr_eq(&first, &sanitized(sql)), "the second lookup reuses the first text");
        let other = sanitized("SELECT count(*) FROM t WHERE region = 'us-east' /* remembered */");
        assert_eq!(&*other, &*first, "literals differ, the sanitized texts do not");
        assert_eq!(Sanitized(sql).to_string(), sanitize(sql));
    }

    #[test]
    fn sanitizing_keeps_other_characters_whole() {
        // Letters outside ASCII stay, digits after them are part of the identifier, literals go.
        assert_eq!(
            sanitize("SELECT  größe2, \"straße\" FROM t WHERE name = 'Zoë' AND n\t=\n3"),
            "SELECT größe2, \"straße\" FROM t WHERE name = ? AND n = ?"
        );
        assert_eq!(sanitize("SELECT \"unterminated"), "SELECT \"unterminated");
        assert_eq!(sanitize("SELECT 1 -- no newline"), "SELECT ?");
        // The length limit never cuts a character in two.
        let long = format!("SELECT {}", "é".repeat(MAX_QUERY_TEXT));
        let cut = sanitize(&long);
        assert!(cut.len() <= MAX_QUERY_TEXT && cut.len() >= MAX_QUERY_TEXT - 1, "{}", cut.len());
        assert!(cut.starts_with("SELECT éé") && cut.ends_with('é'));
    }

    fn source(kind: SourceKind, url: &str) -> SourceConfig {
        SourceConfig {
            name: "wh".into(),
            kind,
            url: crate::secret::Secret::new(url),
            max_connections: 1,
            statement_timeout: std::time::Duration::from_secs(1),
            connect_timeout: std::time::Duration::from_secs(1),
            include: vec![],
            exclude: vec![],
            schedule: crate::schedule::Schedule::every(std::time::Duration::from_secs(60)),
            mark: Default::default(),
            lake: None,
        }
    }

    #[test]
    fn targets_name_host_port_and_database_without_credentials() {
        let t =
            DbTarget::of(&source(SourceKind::Postgres, "postgres://u:p%40ss@db.internal:6432/shop?sslmode=require"));
        assert_eq!(
            (t.system, t.namespace.as_str(), t.server_address.as_deref(), t.server_port),
            ("postgresql", "shop", Some("db.internal"), Some(6432))
        );
        let t = DbTarget::of(&source(SourceKind::Mysql, "mysql://root@127.0.0.1/app"));
        assert_eq!(
            (t.server_address.as_deref(), t.server_port, t.namespace.as_str()),
            (Some("127.0.0.1"), Some(3306), "app")
        );
        let t = DbTarget::of(&source(SourceKind::Sqlite, "sqlite:///var/data/shop.db"));
        assert_eq!((t.system, t.namespace.as_str(), t.server_address), ("sqlite", "shop.db", None));
    }
}
