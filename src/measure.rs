//! What telltale measures: asset identities, metric kinds, measurements and table schemas.
//!
//! Plain data shared by sources (which produce it), the store (which keeps it), detection and the
//! API (which read it). No IO here.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A watched table, named `source.schema.table` (e.g. `shop.main.orders`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AssetId(String);

impl AssetId {
    pub fn new(source: &str, table: &TableRef) -> Self {
        AssetId(format!("{source}.{}.{}", table.schema, table.name))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The source name: the part before the first dot.
    pub fn source(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AssetId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.splitn(3, '.').count() == 3 && !s.starts_with('.') {
            Ok(AssetId(s.to_string()))
        } else {
            Err(format!("asset `{s}` should be written `source.schema.table`"))
        }
    }
}

/// A table inside one source: schema (PostgreSQL schema, MySQL database, SQLite `main`) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableRef {
    pub schema: String,
    pub name: String,
}

impl TableRef {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableRef { schema: schema.into(), name: name.into() }
    }
    /// `schema.table` as users write it.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

macro_rules! metric_kinds {
    ($($variant:ident => $name:literal: $doc:literal,)*) => {
        /// The kind of a measured number. Names are stable: they are stored and used in the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum MetricKind {
            $(#[doc = $doc] $variant,)*
        }

        impl MetricKind {
            pub const ALL: &'static [MetricKind] = &[$(MetricKind::$variant,)*];
            pub fn as_str(self) -> &'static str {
                match self { $(MetricKind::$variant => $name,)* }
            }
            pub fn description(self) -> &'static str {
                match self { $(MetricKind::$variant => $doc,)* }
            }
        }

        impl FromStr for MetricKind {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(MetricKind::$variant),)*
                    _ => Err(format!("unknown metric kind `{s}`")),
                }
            }
        }
    };
}

metric_kinds! {
    FreshnessLag => "freshness_lag": "seconds since the table last changed (or since its newest timestamp)",
    LastModified => "last_modified": "unix time of the last observed change",
    RowCount => "row_count": "rows in the table (exact, or the catalog's estimate for metadata scans)",
    RowsAdded => "rows_added": "rows added in the interval (timestamp bucket, or row-count delta between polls)",
    ColumnCount => "column_count": "number of columns",
    SchemaChanges => "schema_changes": "number of column changes since the previous schema snapshot",
    NullRate => "null_rate": "share of rows where the column is null",
    NullCount => "null_count": "rows where the column is null",
    DistinctCount => "distinct_count": "distinct non-null values",
    DistinctRatio => "distinct_ratio": "distinct non-null values divided by rows",
    Uniqueness => "uniqueness": "distinct non-null values divided by non-null values (1 = unique)",
    Min => "min": "smallest value",
    Max => "max": "largest value",
    Mean => "mean": "average value",
    Stddev => "stddev": "sample standard deviation",
    P50 => "p50": "median (50th percentile)",
    P95 => "p95": "95th percentile",
    InvalidCount => "invalid_count": "non-null values outside `accepted_values`",
    InvalidRate => "invalid_rate": "share of non-null values outside `accepted_values`",
    DistributionShift => "distribution_shift": "Kolmogorov–Smirnov distance between a random sample of the column's values and the samples of its earlier profiles",
    CategoryShift => "category_shift": "population stability index of the column's value frequencies against its earlier profiles (top 20 values, the rest pooled)",
    MinLength => "min_length": "shortest string length",
    MaxLength => "max_length": "longest string length",
    MeanLength => "mean_length": "average string length",
    Custom => "custom": "value of a custom SQL metric (named by `column`)",
    ProfiledRows => "profiled_rows": "rows a column profile looked at (after `where` and `sample`)",
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most frequent non-null values of a column (at most `source::sql::TOP_VALUES`) with their rows;
/// `rest` counts the rows of every other non-null value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueCounts {
    pub values: Vec<(String, u64)>,
    pub rest: u64,
}

impl ValueCounts {
    /// Reads the rows of a value-frequency query back: `(value, rows, rows of every value)`.
    pub fn from_rows(rows: &[Vec<Option<String>>]) -> ValueCounts {
        let count = |cell: Option<&Option<String>>| {
            cell.and_then(|c| c.as_deref()).and_then(|t| t.trim().parse::<f64>().ok()).map(|v| v.max(0.0) as u64)
        };
        let mut values = Vec::with_capacity(rows.len());
        let mut total = 0;
        for row in rows {
            let (Some(Some(value)), Some(rows)) = (row.first(), count(row.get(1))) else { continue };
            total = total.max(count(row.get(2)).unwrap_or(0));
            values.push((value.clone(), rows));
        }
        let listed: u64 = values.iter().map(|(_, n)| n).sum();
        ValueCounts { values, rest: total.saturating_sub(listed) }
    }

    /// Rows of every non-null value.
    pub fn total(&self) -> u64 {
        self.values.iter().map(|(_, n)| n).sum::<u64>() + self.rest
    }
}

/// One measured number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub asset: AssetId,
    pub kind: MetricKind,
    /// Column name for column metrics, custom metric name for `custom`; empty otherwise.
    pub column: String,
    pub value: f64,
    pub observed_at: DateTime<Utc>,
    /// Name of the check that produced it (`metadata` for catalog scans, `backfill` for history).
    pub check: String,
}

impl Measurement {
    pub fn new(asset: &AssetId, kind: MetricKind, value: f64, observed_at: DateTime<Utc>, check: &str) -> Self {
        Measurement { asset: asset.clone(), kind, column: String::new(), value, observed_at, check: check.to_string() }
    }
    pub fn with_column(mut self, column: &str) -> Self {
        self.column = column.to_string();
        self
    }
}

// Columns and their diff live in the pure `detect` module, which the benchmark scores too.
pub use crate::detect::schema::{Column, SchemaChange, diff as diff_schema};

/// A stable fingerprint of a schema, to store a snapshot only when it changed.
pub fn schema_fingerprint(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| format!("{}:{}:{}", c.name, c.data_type, if c.nullable { "null" } else { "notnull" }))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_kind_names_round_trip() {
        for kind in MetricKind::ALL {
            assert_eq!(kind.as_str().parse::<MetricKind>().unwrap(), *kind);
        }
    }

    #[test]
    fn asset_ids_need_three_parts() {
        assert!("shop.main.orders".parse::<AssetId>().is_ok());
        assert!("orders".parse::<AssetId>().is_err());
        assert_eq!("shop.main.orders".parse::<AssetId>().unwrap().source(), "shop");
    }
}
