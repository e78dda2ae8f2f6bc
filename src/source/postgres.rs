//! PostgreSQL: connection settings and the catalog query.
//!
//! Freshness: PostgreSQL records no change time, so the catalog returns the table's write counters
//! (`pg_stat_user_tables` inserts/updates/deletes, live rows and the relation's file node, which a
//! TRUNCATE replaces) as a change signature; the agent infers "last changed" when it moves between
//! polls. Row counts are the statistics' live-tuple estimate.

use std::str::FromStr;

use sqlx::ConnectOptions;

use sqlx::Executor;
use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{ErrorClass, SourceError};
use crate::config::SourceConfig;

pub(super) fn pool(config: &SourceConfig) -> Result<sqlx::PgPool, SourceError> {
    let options = PgConnectOptions::from_str(config.url.expose())
        .map_err(|e| SourceError::Unsupported(format!("source `{}`: invalid URL: {e}", config.name)))?
        .application_name("telltale")
        .log_statements(log::LevelFilter::Trace)
        .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(5))
        .options([
            ("default_transaction_read_only", "on".to_string()),
            ("statement_timeout", config.statement_timeout.as_millis().to_string()),
            ("TimeZone", "UTC".to_string()),
        ]);
    Ok(PgPoolOptions::new()
        .after_connect(|conn, _| {
            Box::pin(async move {
                // PostgreSQL 14+: cancel a query whose client went away (a cancelled check, a
                // stopped agent) instead of running it to the statement timeout. Older servers
                // lack the setting; that is fine.
                let _ = conn.execute("SET client_connection_check_interval = 2000").await;
                Ok(())
            })
        })
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(config.connect_timeout)
        .idle_timeout(Some(std::time::Duration::from_secs(300)))
        .connect_lazy_with(options))
}

pub(super) fn classify(error: &dyn DatabaseError) -> Option<ErrorClass> {
    let code = error.code()?;
    Some(match code.as_ref() {
        "42501" => ErrorClass::Permission,
        "57014" => ErrorClass::Timeout,
        "42P01" | "3F000" => ErrorClass::Config,
        c if c.starts_with("08") || c == "57P01" || c == "57P02" || c == "57P03" => ErrorClass::Unreachable,
        _ => return None,
    })
}

/// Every user table with its estimate, change signature and packed columns, in one statement.
pub(super) const CATALOG_SQL: &str = r#"
SELECT n.nspname::text,
       c.relname::text,
       (CASE WHEN c.reltuples < 0 OR coalesce(s.n_live_tup, 0) > 0
             THEN coalesce(s.n_live_tup, 0)::float8 ELSE c.reltuples::float8 END)::text,
       NULL::text,
       concat_ws(':', coalesce(s.n_tup_ins, 0), coalesce(s.n_tup_upd, 0), coalesce(s.n_tup_del, 0),
                 coalesce(s.n_live_tup, 0), c.relfilenode),
       (SELECT string_agg(a.attname || chr(31) || format_type(a.atttypid, a.atttypmod) || chr(31)
                          || (NOT a.attnotnull)::text, chr(30) ORDER BY a.attnum)
          FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
       'estimate'::text
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.relkind IN ('r', 'p', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_toast%'
   AND n.nspname NOT LIKE 'pg\_temp%'
"#;
