//! SQLite: connection settings and the catalog query.
//!
//! SQLite keeps neither row counts nor change times, so the catalog scan counts rows exactly (one
//! statement for up to 400 tables, a cheap pass on an embedded file) and uses `count:max(rowid)` as
//! the change signature. Connections are read-only; statements have only the client-side deadline.

use std::str::FromStr;

use sqlx::ConnectOptions;
use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::sql::Dialect;
use super::{ErrorClass, SourceError};
use crate::config::SourceConfig;

/// SQLite allows 500 terms in one compound SELECT.
const TABLES_PER_STATEMENT: usize = 400;

pub(super) fn pool(config: &SourceConfig) -> Result<sqlx::SqlitePool, SourceError> {
    let options = SqliteConnectOptions::from_str(config.url.expose())
        .map_err(|e| SourceError::Unsupported(format!("source `{}`: invalid URL: {e}", config.name)))?
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(5))
        .log_statements(log::LevelFilter::Trace)
        .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(5));
    Ok(SqlitePoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(config.connect_timeout)
        .connect_lazy_with(options))
}

pub(super) fn classify(error: &dyn DatabaseError) -> Option<ErrorClass> {
    let message = error.message();
    if message.contains("no such table") {
        Some(ErrorClass::Config)
    } else if message.contains("unable to open") || message.contains("disk I/O") {
        Some(ErrorClass::Unreachable)
    } else if message.contains("database is locked") {
        Some(ErrorClass::Timeout)
    } else {
        None
    }
}

/// User tables, and whether each has a rowid.
pub(super) const TABLES_SQL: &str = "SELECT name, CAST(coalesce(sql, '') LIKE '%WITHOUT ROWID%' AS TEXT) FROM sqlite_schema \
     WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";

/// Catalog statements for the given `(table, without_rowid)` list, in chunks.
pub(super) fn catalog_sql(dialect: Dialect, tables: &[(String, bool)]) -> Result<Vec<String>, SourceError> {
    let mut statements = Vec::new();
    for chunk in tables.chunks(TABLES_PER_STATEMENT) {
        let mut parts = Vec::new();
        for (name, without_rowid) in chunk {
            let ident = dialect.quote_ident(name)?;
            let literal = dialect.quote_literal(name);
            let newest =
                if *without_rowid { "0".to_string() } else { format!("coalesce((SELECT max(rowid) FROM {ident}), 0)") };
            parts.push(format!(
                "SELECT 'main', {literal}, CAST((SELECT count(*) FROM {ident}) AS TEXT), NULL, \
                 CAST((SELECT count(*) FROM {ident}) || ':' || {newest} AS TEXT), \
                 (SELECT group_concat(p.name || char(31) || p.type || char(31) || \
                  CASE WHEN p.\"notnull\" THEN 'false' ELSE 'true' END, char(30)) FROM pragma_table_info({literal}) p), \
                 'exact'"
            ));
        }
        statements.push(parts.join(" UNION ALL "));
    }
    Ok(statements)
}
