//! The demo's "shop" warehouse: a SQLite file with customers, orders, payments and refunds, 60
//! days of hourly history with daily and weekly seasonality, and a loader that keeps adding an
//! hour of data per simulated hour — with scripted incidents so there is something to see.

use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, SqlitePool};

const SCHEMA: &str = "
CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL, country TEXT, created_at TEXT NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT NOT NULL, amount REAL,
                     currency TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE payments (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, method TEXT, amount REAL NOT NULL,
                       paid_at TEXT NOT NULL);
CREATE TABLE refunds (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, amount REAL NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX orders_created_at ON orders (created_at);
CREATE INDEX payments_paid_at ON payments (paid_at);
";

const COUNTRIES: &[&str] = &["DE", "FR", "US", "GB", "NL", "ES", "IT", "PL"];
const METHODS: &[&str] = &["card", "card", "card", "paypal", "paypal", "bank_transfer", "gift_card"];
const STATUSES: &[&str] = &["placed", "paid", "paid", "shipped", "shipped", "delivered", "delivered", "returned"];

/// Something the loader does wrong on purpose at a given simulated hour after the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incident {
    /// Orders and payments stop loading for this many hours.
    Outage { hours: u32 },
    /// Only this percentage of the hour's orders arrive.
    PartialLoad { percent: u32 },
    /// Payment methods go missing.
    NullSpike,
    /// A column is added to `orders` (benign).
    ColumnAdded,
}

/// The scripted incidents, by simulated hours after the demo starts.
pub const SCRIPT: &[(u32, Incident)] = &[
    (2, Incident::Outage { hours: 4 }),
    (8, Incident::PartialLoad { percent: 30 }),
    (10, Incident::NullSpike),
    (12, Incident::ColumnAdded),
];

pub struct Warehouse {
    pool: SqlitePool,
    rng: StdRng,
    next_customer: i64,
    next_order: i64,
    next_payment: i64,
    next_refund: i64,
}

/// Expected orders in the hour starting at `t`: daily curve, weekend dip, slow growth.
pub fn expected_orders(t: DateTime<Utc>, start: DateTime<Utc>) -> f64 {
    let hour = t.hour() as f64;
    let daily = 0.35 + 0.65 * (((hour - 13.0) / 24.0 * std::f64::consts::TAU).cos() * 0.5 + 0.5);
    let weekly = match t.weekday().num_days_from_monday() {
        5 => 0.75,
        6 => 0.65,
        _ => 1.0,
    };
    let days = (t - start).num_hours() as f64 / 24.0;
    120.0 * daily * weekly * (1.0 + 0.003 * days)
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

impl Warehouse {
    /// Creates a fresh warehouse file at `path` with `days` of history before `now`.
    pub async fn create(path: &Path, now: DateTime<Utc>, days: i64, seed: u64) -> Result<Warehouse, sqlx::Error> {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        let mut w = Warehouse {
            pool,
            rng: StdRng::seed_from_u64(seed),
            next_customer: 1,
            next_order: 1,
            next_payment: 1,
            next_refund: 1,
        };
        let start = now - Duration::days(days);
        let mut t = start;
        // Seed customers so orders have someone to belong to.
        w.load_hour(start - Duration::hours(1), start, 1.0, false, 2000).await?;
        while t + Duration::hours(1) <= now {
            w.load_hour(t, start, 1.0, false, 0).await?;
            t += Duration::hours(1);
        }
        Ok(w)
    }

    /// Loads one simulated hour `[t, t+1h)`; `volume` scales the orders, `null_methods` drops
    /// payment methods, `extra_customers` adds customers.
    pub async fn load_hour(
        &mut self,
        t: DateTime<Utc>,
        start: DateTime<Utc>,
        volume: f64,
        null_methods: bool,
        extra_customers: usize,
    ) -> Result<usize, sqlx::Error> {
        let expected = expected_orders(t, start) * volume;
        let orders = (expected + self.rng.random_range(-1.0..1.0) * expected.sqrt() * 1.5).round().max(0.0) as usize;
        let new_customers = extra_customers + (orders / 8).max(1);
        let mut customer_rows = Vec::with_capacity(new_customers);
        for _ in 0..new_customers {
            let id = self.next_customer;
            self.next_customer += 1;
            let at = t + Duration::seconds(self.rng.random_range(0..3600));
            let country = COUNTRIES[self.rng.random_range(0..COUNTRIES.len())];
            customer_rows.push(format!("({id}, 'customer{id}@example.com', '{country}', '{}')", ts(at)));
        }
        let mut order_rows = Vec::with_capacity(orders);
        let mut payment_rows = Vec::with_capacity(orders);
        let mut refund_rows = Vec::new();
        for _ in 0..orders {
            let id = self.next_order;
            self.next_order += 1;
            let customer = self.rng.random_range(1..self.next_customer);
            let at = t + Duration::seconds(self.rng.random_range(0..3600));
            let amount =
                (self.rng.random_range(5.0f64..80.0) * self.rng.random_range(1.0f64..3.0)).round() / 1.0 + 0.99;
            let status = STATUSES[self.rng.random_range(0..STATUSES.len())];
            order_rows.push(format!("({id}, {customer}, '{status}', {amount:.2}, 'EUR', '{}')", ts(at)));
            if status != "placed" {
                let pid = self.next_payment;
                self.next_payment += 1;
                let method = if null_methods && self.rng.random_bool(0.6) {
                    "NULL".to_string()
                } else {
                    format!("'{}'", METHODS[self.rng.random_range(0..METHODS.len())])
                };
                let paid = (at + Duration::seconds(self.rng.random_range(5..600))).min(t + Duration::seconds(3599));
                payment_rows.push(format!("({pid}, {id}, {method}, {amount:.2}, '{}')", ts(paid)));
            }
            if status == "returned" {
                let rid = self.next_refund;
                self.next_refund += 1;
                refund_rows.push(format!("({rid}, {id}, {amount:.2}, '{}')", ts(at)));
            }
        }
        let mut tx = self.pool.begin().await?;
        // Explicit column lists: the loader keeps working after a column is added.
        for (table, columns, rows) in [
            ("customers", "id, email, country, created_at", &customer_rows),
            ("orders", "id, customer_id, status, amount, currency, created_at", &order_rows),
            ("payments", "id, order_id, method, amount, paid_at", &payment_rows),
            ("refunds", "id, order_id, amount, created_at", &refund_rows),
        ] {
            for chunk in rows.chunks(400) {
                let sql = format!("INSERT INTO {table} ({columns}) VALUES {}", chunk.join(","));
                sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(orders)
    }

    /// Adds a column to `orders` (a benign schema change).
    pub async fn add_column(&self) -> Result<(), sqlx::Error> {
        sqlx::query("ALTER TABLE orders ADD COLUMN coupon_code TEXT").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
