//! Shared helpers: real servers from the environment, fresh databases, agents over temp configs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Executor};
use telltale::check::CheckSet;
use telltale::clock::SharedClock;
use telltale::config::Config;
use telltale::runtime::Agent;

pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1"))
}

fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => panic!("{var} is not set but CI=true: run the tests through scripts/test"),
        _ => {
            eprintln!("skipped: {var} is not set (run through scripts/test)");
            None
        }
    }
}

/// Returns early from a test when a server is not configured (never under CI).
#[macro_export]
macro_rules! require {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return,
        }
    };
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let cut = base.rfind('/').expect("url has a path");
    format!("{}/{db}{query}", &base[..cut])
}

/// A fresh PostgreSQL database for one test; returns its URL.
pub async fn postgres_db(hint: &str) -> Option<String> {
    let admin = server_url("TELLTALE_TEST_POSTGRES_URL")?;
    let name = unique(&format!("tt_{hint}"));
    let pool = sqlx::PgPool::connect(&admin).await.expect("connect to test PostgreSQL");
    pool.execute(AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
    pool.close().await;
    Some(with_database(&admin, &name))
}

/// A fresh MariaDB/MySQL database for one test; returns its URL.
pub async fn mysql_db(hint: &str) -> Option<String> {
    let admin = server_url("TELLTALE_TEST_MYSQL_URL")?;
    let name = unique(&format!("tt_{hint}"));
    let pool = sqlx::MySqlPool::connect(&admin).await.expect("connect to test MariaDB");
    pool.execute(AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
    pool.close().await;
    Some(with_database(&admin, &name))
}

/// Runs statements on a short-lived connection; closing it flushes PostgreSQL's statistics.
pub async fn pg_exec(url: &str, statements: &[&str]) {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await.expect("connect");
    for s in statements {
        pool.execute(AssertSqlSafe(s.to_string())).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    pool.close().await;
}

pub async fn mysql_exec(url: &str, statements: &[&str]) {
    let pool = sqlx::mysql::MySqlPoolOptions::new().max_connections(1).connect(url).await.expect("connect");
    for s in statements {
        pool.execute(AssertSqlSafe(s.to_string())).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    pool.close().await;
}

/// A directory with `telltale.yaml` and `checks/*.yaml`.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new(config: &str, checks: &[(&str, &str)]) -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("telltale.yaml"), config).unwrap();
        std::fs::create_dir_all(dir.path().join("checks")).unwrap();
        for (name, text) in checks {
            std::fs::write(dir.path().join("checks").join(name), text).unwrap();
        }
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("telltale.yaml")
    }

    pub async fn agent(&self, clock: SharedClock) -> Arc<Agent> {
        let config = Config::load(&self.config_path()).unwrap_or_else(|e| panic!("config: {e}"));
        let checks = CheckSet::load(&config).unwrap_or_else(|e| panic!("checks: {e}"));
        Agent::new(config, checks, clock).await.expect("agent")
    }
}

/// A config with one source and a SQLite store inside the workspace.
pub fn config_with_source(kind: &str, url: &str, extra: &str) -> String {
    format!(
        "version: 1\nstore: sqlite://state/telltale.db\nsources:\n  wh:\n    kind: {kind}\n    url: \"{url}\"\n    statement_timeout: 5s\n    connect_timeout: 3s\n{extra}\nchecks: [checks/]\n"
    )
}

/// Polls `f` until it returns `Some`, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_telltale")
}
