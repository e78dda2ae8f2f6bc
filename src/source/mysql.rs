//! MySQL and MariaDB: connection settings and the catalog query.
//!
//! `information_schema.TABLES` gives an estimated row count and, for InnoDB, `UPDATE_TIME` (kept in
//! memory, empty after a server restart until the next write). The change signature (rows, data
//! length, auto-increment, update time) covers tables where `UPDATE_TIME` is empty.

use std::str::FromStr;

use sqlx::ConnectOptions;

use sqlx::error::DatabaseError;
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPoolOptions};
use sqlx::{Executor, Row};

use super::{ErrorClass, SourceError};
use crate::config::SourceConfig;

pub(super) fn pool(config: &SourceConfig) -> Result<sqlx::MySqlPool, SourceError> {
    let url = config.url.expose().replacen("mariadb://", "mysql://", 1);
    let options = MySqlConnectOptions::from_str(&url)
        .map_err(|e| SourceError::Unsupported(format!("source `{}`: invalid URL: {e}", config.name)))?
        .timezone(Some("+00:00".to_string()))
        .log_statements(log::LevelFilter::Trace)
        .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(5));
    let timeout = config.statement_timeout;
    Ok(MySqlPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(config.connect_timeout)
        .idle_timeout(Some(std::time::Duration::from_secs(300)))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                let version: String = sqlx::query("SELECT VERSION()").fetch_one(&mut *conn).await?.try_get(0)?;
                let limit = if version.contains("MariaDB") {
                    format!("SET SESSION max_statement_time = {}", timeout.as_secs_f64())
                } else {
                    format!(
                        "SET SESSION max_execution_time = {}, SESSION information_schema_stats_expiry = 0",
                        timeout.as_millis()
                    )
                };
                conn.execute(sqlx::AssertSqlSafe(limit)).await?;
                conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                conn.execute("SET SESSION group_concat_max_len = 16777216").await?;
                Ok(())
            })
        })
        .connect_lazy_with(options))
}

pub(super) fn classify(error: &dyn DatabaseError) -> Option<ErrorClass> {
    let number = error.try_downcast_ref::<MySqlDatabaseError>()?.number();
    Some(match number {
        // access denied: table, column, database, user, command
        1142 | 1143 | 1044 | 1045 | 1227 | 1370 => ErrorClass::Permission,
        // MySQL max_execution_time, MariaDB max_statement_time, lock wait
        3024 | 1969 | 1205 => ErrorClass::Timeout,
        1146 | 1049 => ErrorClass::Config,
        2006 | 2013 | 1053 | 1927 => ErrorClass::Unreachable,
        _ => return None,
    })
}

pub(super) const CATALOG_SQL: &str = "
SELECT CAST(t.TABLE_SCHEMA AS CHAR),
       CAST(t.TABLE_NAME AS CHAR),
       CAST(t.TABLE_ROWS AS CHAR),
       CAST(UNIX_TIMESTAMP(t.UPDATE_TIME) AS CHAR),
       CAST(CONCAT_WS(':', t.TABLE_ROWS, t.DATA_LENGTH, t.AUTO_INCREMENT, t.UPDATE_TIME) AS CHAR),
       CAST(GROUP_CONCAT(CONCAT_WS(CHAR(31 USING utf8mb4), c.COLUMN_NAME, c.COLUMN_TYPE,
                                   IF(c.IS_NULLABLE = 'YES', 'true', 'false'))
                         ORDER BY c.ORDINAL_POSITION SEPARATOR '\u{1e}') AS CHAR),
       'estimate'
  FROM information_schema.TABLES t
  JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME
 WHERE t.TABLE_TYPE = 'BASE TABLE'
   AND t.TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
 GROUP BY t.TABLE_SCHEMA, t.TABLE_NAME, t.TABLE_ROWS, t.UPDATE_TIME, t.DATA_LENGTH, t.AUTO_INCREMENT
";
