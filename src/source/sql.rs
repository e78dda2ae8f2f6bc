//! SQL text for monitored engines: identifier and literal quoting, and the query builders for
//! profiles, time buckets, freshness and custom metrics. Pure: no connections here.
//!
//! Lake sources (`files`, `delta`, `iceberg`) are queried through DataFusion, which gets its own
//! spelling here too, so warehouse and lake columns share one profile query builder.
//!
//! Every query returns its values cast to text so one decoder serves all engines; numbers are
//! parsed back on our side. Identifiers are always quoted: a table named `x"; drop table y; --` is
//! a name, never SQL.

use crate::config::SourceKind;
use crate::measure::{Column, MetricKind, TableRef};

use super::SourceError;

/// The engine-specific spelling of the same questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect(pub SourceKind);

/// How a column's values can be summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueClass {
    Numeric,
    Temporal,
    Text,
    Other,
}

impl Dialect {
    pub fn quote_ident(self, ident: &str) -> Result<String, SourceError> {
        if ident.is_empty() || ident.contains('\0') {
            return Err(SourceError::Unsupported(format!("identifier {ident:?} is empty or contains a NUL byte")));
        }
        Ok(match self.0 {
            SourceKind::Mysql => format!("`{}`", ident.replace('`', "``")),
            _ => format!("\"{}\"", ident.replace('"', "\"\"")),
        })
    }

    pub fn quote_literal(self, value: &str) -> String {
        let escaped = value.replace('\'', "''");
        match self.0 {
            // MySQL treats backslash as an escape character inside strings by default.
            SourceKind::Mysql => format!("'{}'", escaped.replace('\\', "\\\\")),
            _ => format!("'{escaped}'"),
        }
    }

    pub fn table(self, table: &TableRef) -> Result<String, SourceError> {
        if self.0 == SourceKind::Mysql && table.schema.is_empty() {
            return self.quote_ident(&table.name);
        }
        Ok(format!("{}.{}", self.quote_ident(&table.schema)?, self.quote_ident(&table.name)?))
    }

    fn text(self, expr: &str) -> String {
        match self.0 {
            SourceKind::Postgres => format!("({expr})::text"),
            SourceKind::Mysql => format!("CAST({expr} AS CHAR)"),
            SourceKind::Sqlite => format!("CAST({expr} AS TEXT)"),
            SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg => format!("CAST({expr} AS VARCHAR)"),
        }
    }

    fn float(self, expr: &str) -> String {
        match self.0 {
            SourceKind::Postgres => format!("({expr})::float8"),
            SourceKind::Mysql => format!("CAST({expr} AS DOUBLE)"),
            SourceKind::Sqlite => format!("CAST({expr} AS REAL)"),
            SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg => format!("CAST({expr} AS DOUBLE)"),
        }
    }

    /// Seconds since the epoch of a timestamp/date column (SQLite: ISO text or unix seconds).
    pub fn epoch(self, column: &str) -> String {
        match self.0 {
            SourceKind::Postgres => format!("extract(epoch from {column})::float8"),
            SourceKind::Mysql => format!("UNIX_TIMESTAMP({column})"),
            SourceKind::Sqlite => {
                format!("(CASE WHEN typeof({column}) IN ('integer','real') THEN {column} ELSE unixepoch({column}) END)")
            }
            SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg => {
                format!("CAST(date_part('epoch', {column}) AS DOUBLE)")
            }
        }
    }

    fn length(self, column: &str) -> String {
        match self.0 {
            SourceKind::Mysql => format!("CHAR_LENGTH({column})"),
            SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg => format!("character_length({column})"),
            _ => format!("length({column})"),
        }
    }

    pub fn classify(self, data_type: &str) -> ValueClass {
        let t = data_type.trim().to_ascii_lowercase();
        if self.0.is_lake() {
            return classify_lake(&t);
        }
        if self.0 == SourceKind::Sqlite {
            // SQLite's own affinity rules (datatype3.html §3.1), plus the usual date names.
            return if t.contains("date") || t.contains("time") {
                ValueClass::Temporal
            } else if t.contains("int")
                || t.contains("real")
                || t.contains("floa")
                || t.contains("doub")
                || t.is_empty()
            {
                ValueClass::Numeric
            } else if t.contains("char") || t.contains("clob") || t.contains("text") {
                ValueClass::Text
            } else if t.contains("blob") {
                ValueClass::Other
            } else {
                ValueClass::Numeric
            };
        }
        // The base type name: `numeric(10,2)` → `numeric`, `bigint(20) unsigned` → `bigint`,
        // `timestamp(3) with time zone` → `timestamp`, `character varying(20)` → `character varying`.
        if t.ends_with("[]") || t.starts_with('_') {
            // PostgreSQL arrays: no scalar summaries.
            return ValueClass::Other;
        }
        let base: String = t.split('(').next().unwrap_or_default().trim().to_string();
        let base = base.trim_end_matches(" unsigned").trim_end_matches(" zerofill");
        match base {
            "smallint" | "integer" | "int" | "int2" | "int4" | "int8" | "bigint" | "tinyint" | "mediumint"
            | "numeric" | "decimal" | "dec" | "fixed" | "real" | "double" | "double precision" | "float" | "float4"
            | "float8" | "serial" | "bigserial" | "smallserial" | "number" => ValueClass::Numeric,
            "date" | "datetime" | "timestamp" | "timestamptz" | "time" | "timetz" | "year" => ValueClass::Temporal,
            b if b.starts_with("timestamp") || b.starts_with("time ") => ValueClass::Temporal,
            "char" | "character" | "varchar" | "character varying" | "text" | "tinytext" | "mediumtext"
            | "longtext" | "citext" | "name" | "enum" | "set" | "nchar" | "nvarchar" | "bpchar" => ValueClass::Text,
            b if b.starts_with("enum") || b.starts_with("set") => ValueClass::Text,
            _ => ValueClass::Other,
        }
    }

    fn sample_clause(self, percent: Option<f64>) -> (String, Option<String>) {
        match (self.0, percent) {
            (_, None) => (String::new(), None),
            (SourceKind::Postgres, Some(p)) => (format!(" TABLESAMPLE SYSTEM ({p})"), None),
            (SourceKind::Mysql, Some(p)) => (String::new(), Some(format!("RAND() < {}", p / 100.0))),
            (SourceKind::Sqlite, Some(p)) => {
                (String::new(), Some(format!("(abs(random()) % 1000000) < {}", (p * 10_000.0).round() as i64)))
            }
            // Lake sources sample whole files before the query (see `source::lake`).
            (SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg, Some(_)) => (String::new(), None),
        }
    }

    fn scan_clause(self, table: &TableRef, filter: Option<&str>, sample: Option<f64>) -> Result<String, SourceError> {
        let (tablesample, sample_predicate) = self.sample_clause(sample);
        let mut predicates: Vec<String> = Vec::new();
        if let Some(f) = filter {
            predicates.push(format!("({f})"));
        }
        predicates.extend(sample_predicate);
        let mut sql = format!(" FROM {}{tablesample}", self.table(table)?);
        if !predicates.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&predicates.join(" AND "));
        }
        Ok(sql)
    }
}

/// Value classes of lake column types: Arrow's names (`Int64`, `Utf8`, `Timestamp(µs, "UTC")`),
/// Delta's (`long`, `string`, `timestamp_ntz`) and Iceberg's (`long`, `timestamptz`, `decimal(9,2)`).
fn classify_lake(t: &str) -> ValueClass {
    let base = t.split('(').next().unwrap_or_default().trim();
    match base {
        "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "uint64" | "float16" | "float32"
        | "float64" | "decimal128" | "decimal256" | "decimal32" | "decimal64" | "byte" | "short" | "integer"
        | "int" | "long" | "float" | "double" | "decimal" => ValueClass::Numeric,
        "date32" | "date64" | "date" | "timestamp" | "timestamptz" | "timestamp_ntz" | "timestamp_ns"
        | "timestamptz_ns" | "time32" | "time64" | "time" => ValueClass::Temporal,
        "utf8" | "largeutf8" | "utf8view" | "string" => ValueClass::Text,
        _ => ValueClass::Other,
    }
}

/// One column to profile and the metrics wanted.
#[derive(Debug, Clone)]
pub struct ColumnRequest {
    pub column: Column,
    pub metrics: Vec<MetricKind>,
    pub accepted_values: Option<Vec<String>>,
}

/// A single-scan profile query and how to read its one row back.
#[derive(Debug, Clone)]
pub struct ProfileQuery {
    pub sql: String,
    /// Output position → (column, metric). Position 0 is the row count.
    pub outputs: Vec<(String, MetricKind)>,
    /// Metrics that cannot be computed for a column's type, with the reason.
    pub skipped: Vec<(String, MetricKind, String)>,
    /// Output positions (as in `outputs`) whose value must be square-rooted on our side
    /// (SQLite builds may lack math functions, so it returns the variance).
    pub sqrt_outputs: Vec<usize>,
}

/// Builds the one aggregate query that computes every requested metric of every column.
/// The aggregate lake profiles read `p50` and `p95` from (registered by `source::lake`).
pub const LAKE_QUANTILES: &str = "telltale_quantiles";

pub fn profile_query(
    dialect: Dialect,
    table: &TableRef,
    columns: &[ColumnRequest],
    filter: Option<&str>,
    sample_percent: Option<f64>,
) -> Result<ProfileQuery, SourceError> {
    profile_query_with(dialect, table, columns, filter, sample_percent, false)
}

/// A floating-point type as lake tables name it (Arrow `Float64`, Delta/Iceberg `double`, …).
fn is_float_type(data_type: &str) -> bool {
    matches!(
        data_type.to_ascii_lowercase().as_str(),
        "float16" | "float32" | "float64" | "halffloat" | "float" | "double" | "real"
    )
}

/// [`profile_query`], with distinct counts estimated (HyperLogLog, `approx_distinct`) instead of
/// exact when `approx_distinct` is set: lake sources ask for it on large scans, where exact
/// counts would hold every distinct value in memory.
pub fn profile_query_with(
    dialect: Dialect,
    table: &TableRef,
    columns: &[ColumnRequest],
    filter: Option<&str>,
    sample_percent: Option<f64>,
    approx_distinct: bool,
) -> Result<ProfileQuery, SourceError> {
    let distinct = |col: &str, data_type: &str| {
        if approx_distinct && dialect.0.is_lake() {
            // DataFusion's HyperLogLog takes integers, decimals, times, text and binary, not
            // floating point: a float is counted through its shortest round-trip text, which is
            // distinct exactly when the value is.
            if is_float_type(data_type) {
                format!("approx_distinct(CAST({col} AS VARCHAR))")
            } else {
                format!("approx_distinct({col})")
            }
        } else {
            format!("count(DISTINCT {col})")
        }
    };
    let mut select = vec![dialect.text("count(*)")];
    let mut outputs = Vec::new();
    let mut skipped = Vec::new();
    let mut sqrt_outputs = Vec::new();
    for req in columns {
        let col = dialect.quote_ident(&req.column.name)?;
        let class = dialect.classify(&req.column.data_type);
        for &metric in &req.metrics {
            let numeric_only =
                matches!(metric, MetricKind::Mean | MetricKind::Stddev | MetricKind::P50 | MetricKind::P95);
            let text_only = matches!(metric, MetricKind::MinLength | MetricKind::MaxLength | MetricKind::MeanLength);
            if numeric_only && class != ValueClass::Numeric {
                skipped.push((
                    req.column.name.clone(),
                    metric,
                    format!("`{metric}` needs a numeric column, but `{}` is {}", req.column.name, req.column.data_type),
                ));
                continue;
            }
            if text_only && class != ValueClass::Text {
                skipped.push((
                    req.column.name.clone(),
                    metric,
                    format!("`{metric}` needs a text column, but `{}` is {}", req.column.name, req.column.data_type),
                ));
                continue;
            }
            if matches!(metric, MetricKind::Min | MetricKind::Max | MetricKind::DistributionShift)
                && !matches!(class, ValueClass::Numeric | ValueClass::Temporal)
            {
                let hint =
                    if metric == MetricKind::DistributionShift { "; use `category_shift` for categories" } else { "" };
                skipped.push((
                    req.column.name.clone(),
                    metric,
                    format!(
                        "`{metric}` needs a numeric or time column, but `{}` is {}{hint}",
                        req.column.name, req.column.data_type
                    ),
                ));
                continue;
            }
            let expr = match metric {
                // Value frequencies and samples are queries of their own (`value_counts_query`,
                // `value_sample_query`).
                MetricKind::CategoryShift | MetricKind::DistributionShift => continue,
                MetricKind::NullRate => {
                    format!(
                        "CASE WHEN count(*) = 0 THEN NULL ELSE {} / count(*) END",
                        dialect.float(&format!("count(*) - count({col})"))
                    )
                }
                MetricKind::NullCount => format!("count(*) - count({col})"),
                MetricKind::DistinctCount => distinct(&col, &req.column.data_type),
                MetricKind::DistinctRatio => {
                    format!(
                        "CASE WHEN count(*) = 0 THEN NULL ELSE {} / count(*) END",
                        dialect.float(&distinct(&col, &req.column.data_type))
                    )
                }
                MetricKind::Uniqueness => format!(
                    "CASE WHEN count({col}) = 0 THEN NULL ELSE {} / count({col}) END",
                    dialect.float(&distinct(&col, &req.column.data_type))
                ),
                MetricKind::Min | MetricKind::Max => {
                    let f = if metric == MetricKind::Min { "min" } else { "max" };
                    if class == ValueClass::Temporal {
                        format!("{f}({})", dialect.epoch(&col))
                    } else {
                        dialect.float(&format!("{f}({col})"))
                    }
                }
                MetricKind::Mean => dialect.float(&format!("avg({col})")),
                MetricKind::Stddev => match dialect.0 {
                    SourceKind::Sqlite => {
                        // No stddev in SQLite: the sample variance from sums in one pass; the
                        // square root is taken on our side.
                        let x = dialect.float(&col);
                        sqrt_outputs.push(outputs.len());
                        format!(
                            "CASE WHEN count({col}) < 2 THEN NULL ELSE max(0, (sum({x}*{x}) - sum({x})*sum({x})/count({col})) / (count({col}) - 1)) END"
                        )
                    }
                    _ => dialect.float(&format!("stddev_samp({col})")),
                },
                MetricKind::P50 | MetricKind::P95 => {
                    if !dialect.0.supports_quantiles() {
                        skipped.push((
                            req.column.name.clone(),
                            metric,
                            format!("`{metric}` is not supported by {} sources", dialect.0.as_str()),
                        ));
                        continue;
                    }
                    let q = if metric == MetricKind::P50 { "0.5" } else { "0.95" };
                    if dialect.0.is_lake() {
                        // DataFusion: one t-digest per column in the same pass, for both
                        // percentiles (exact quantiles would sort); see `source::lake::quantiles`.
                        let field = if metric == MetricKind::P50 { "p50" } else { "p95" };
                        format!("get_field({LAKE_QUANTILES}({}), '{field}')", dialect.float(&col))
                    } else {
                        format!("percentile_cont({q}) WITHIN GROUP (ORDER BY {col})")
                    }
                }
                MetricKind::MinLength => format!("min({})", dialect.length(&col)),
                MetricKind::MaxLength => format!("max({})", dialect.length(&col)),
                MetricKind::MeanLength => dialect.float(&format!("avg({})", dialect.length(&col))),
                MetricKind::InvalidCount | MetricKind::InvalidRate => {
                    let Some(values) = &req.accepted_values else {
                        skipped.push((req.column.name.clone(), metric, "needs `accepted_values`".into()));
                        continue;
                    };
                    let list = values.iter().map(|v| dialect.quote_literal(v)).collect::<Vec<_>>().join(", ");
                    let invalid = format!(
                        "sum(CASE WHEN {col} IS NOT NULL AND {} NOT IN ({list}) THEN 1 ELSE 0 END)",
                        dialect.text(&col)
                    );
                    if metric == MetricKind::InvalidCount {
                        format!("coalesce({invalid}, 0)")
                    } else {
                        format!(
                            "CASE WHEN count({col}) = 0 THEN NULL ELSE {} / count({col}) END",
                            dialect.float(&invalid)
                        )
                    }
                }
                other => {
                    skipped.push((req.column.name.clone(), other, format!("`{other}` is not a column metric")));
                    continue;
                }
            };
            select.push(dialect.text(&expr));
            outputs.push((req.column.name.clone(), metric));
        }
    }
    let sql = format!("SELECT {}{}", select.join(", "), dialect.scan_clause(table, filter, sample_percent)?);
    Ok(ProfileQuery { sql, outputs, skipped, sqrt_outputs })
}

/// Values of a column a frequency query returns (the most frequent first); the rows of every
/// other value are counted together.
pub const TOP_VALUES: usize = 100;

/// The [`TOP_VALUES`] most frequent non-null values of a column, in one `GROUP BY` over the same
/// rows as the profile (`where`, `sample`): `(value as text, rows, rows of every non-null value)`.
pub fn value_counts_query(
    dialect: Dialect,
    table: &TableRef,
    column: &str,
    filter: Option<&str>,
    sample_percent: Option<f64>,
) -> Result<String, SourceError> {
    let col = dialect.quote_ident(column)?;
    // The window sum runs before ORDER BY and LIMIT, over every non-null group.
    Ok(format!(
        "SELECT {} AS tt_value, {} AS tt_rows, {} AS tt_total FROM (SELECT {col} AS v, count(*) AS n{} GROUP BY {col}) g \
         WHERE v IS NOT NULL ORDER BY n DESC, tt_value LIMIT {TOP_VALUES}",
        dialect.text("v"),
        dialect.text("n"),
        dialect.text("sum(n) OVER ()"),
        dialect.scan_clause(table, filter, sample_percent)?,
    ))
}

/// Values a sample query draws for `distribution_shift`.
pub const SAMPLE_VALUES: usize = 1000;

/// A uniform random sample of [`SAMPLE_VALUES`] non-null values of a numeric or time column
/// (times as Unix seconds) over the same rows as the profile; `None` for other columns (the
/// profile query reports them).
pub fn value_sample_query(
    dialect: Dialect,
    table: &TableRef,
    column: &Column,
    filter: Option<&str>,
    sample_percent: Option<f64>,
) -> Result<Option<String>, SourceError> {
    let col = dialect.quote_ident(&column.name)?;
    let value = match dialect.classify(&column.data_type) {
        ValueClass::Numeric => dialect.float(&col),
        ValueClass::Temporal => dialect.epoch(&col),
        _ => return Ok(None),
    };
    let random = match dialect.0 {
        SourceKind::Mysql => "RAND()",
        _ => "random()",
    };
    Ok(Some(format!(
        "SELECT {} AS tt_value FROM (SELECT {value} AS v{}) s WHERE v IS NOT NULL ORDER BY {random} LIMIT {SAMPLE_VALUES}",
        dialect.text("v"),
        dialect.scan_clause(table, filter, sample_percent)?,
    )))
}

/// Rows per time bucket since `since_epoch`: `(bucket_start, rows, newest_epoch)`.
pub fn bucket_counts_query(
    dialect: Dialect,
    table: &TableRef,
    timestamp_column: &str,
    bucket_seconds: u64,
    since_epoch: i64,
    until_epoch: i64,
) -> Result<String, SourceError> {
    let col = dialect.quote_ident(timestamp_column)?;
    let epoch = dialect.epoch(&col);
    let b = bucket_seconds;
    let bucket = match dialect.0 {
        SourceKind::Postgres => format!("floor({epoch} / {b}) * {b}"),
        SourceKind::Mysql => format!("FLOOR({epoch} / {b}) * {b}"),
        SourceKind::Sqlite => format!("(CAST({epoch} AS INTEGER) / {b}) * {b}"),
        SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg => format!("floor({epoch} / {b}) * {b}"),
    };
    let range = match dialect.0 {
        SourceKind::Postgres => format!("{col} >= to_timestamp({since_epoch}) AND {col} < to_timestamp({until_epoch})"),
        SourceKind::Mysql => format!("{col} >= FROM_UNIXTIME({since_epoch}) AND {col} < FROM_UNIXTIME({until_epoch})"),
        SourceKind::Sqlite | SourceKind::Files | SourceKind::Delta | SourceKind::Iceberg => {
            format!("{epoch} >= {since_epoch} AND {epoch} < {until_epoch}")
        }
    };
    Ok(format!(
        "SELECT {}, {}, {} FROM {} WHERE {range} GROUP BY 1 ORDER BY 1",
        dialect.text(&bucket),
        dialect.text("count(*)"),
        dialect.text(&format!("max({epoch})")),
        dialect.table(table)?,
    ))
}

/// `max(timestamp_column)` as epoch seconds and, when asked, the exact row count, in one scan.
pub fn freshness_query(
    dialect: Dialect,
    table: &TableRef,
    timestamp_column: Option<&str>,
    count: bool,
) -> Result<String, SourceError> {
    let newest = match timestamp_column {
        Some(c) => dialect.text(&format!("max({})", dialect.epoch(&dialect.quote_ident(c)?))),
        None => "NULL".to_string(),
    };
    let rows = if count { dialect.text("count(*)") } else { "NULL".to_string() };
    Ok(format!("SELECT {newest}, {rows} FROM {}", dialect.table(table)?))
}

/// Wraps a user's query (one row, one number) so it comes back as text on every engine.
pub fn custom_metric_query(dialect: Dialect, sql: &str) -> String {
    let trimmed = sql.trim().trim_end_matches(';').trim();
    format!("SELECT {}", dialect.text(&format!("({trimmed})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column { name: name.into(), data_type: ty.into(), nullable: true }
    }

    #[test]
    fn hostile_identifiers_stay_identifiers() {
        let pg = Dialect(SourceKind::Postgres);
        assert_eq!(pg.quote_ident(r#"x"; drop table y; --"#).unwrap(), r#""x""; drop table y; --""#);
        let my = Dialect(SourceKind::Mysql);
        assert_eq!(my.quote_ident("a`b").unwrap(), "`a``b`");
        assert_eq!(my.quote_literal(r"it's \ok"), r"'it''s \\ok'");
        assert!(pg.quote_ident("a\0b").is_err());
    }

    #[test]
    fn a_profile_is_one_query_with_every_metric() {
        let q = profile_query(
            Dialect(SourceKind::Postgres),
            &TableRef::new("public", "orders"),
            &[
                ColumnRequest {
                    column: col("amount", "numeric(10,2)"),
                    metrics: vec![MetricKind::NullRate, MetricKind::Mean, MetricKind::P95, MetricKind::MaxLength],
                    accepted_values: None,
                },
                ColumnRequest {
                    column: col("status", "text"),
                    metrics: vec![MetricKind::InvalidRate, MetricKind::DistinctCount],
                    accepted_values: Some(vec!["paid".into(), "o'k".into()]),
                },
            ],
            Some("created_at > now() - interval '1 day'"),
            Some(5.0),
        )
        .unwrap();
        insta::assert_snapshot!(q.sql, @r#"SELECT (count(*))::text, (CASE WHEN count(*) = 0 THEN NULL ELSE (count(*) - count("amount"))::float8 / count(*) END)::text, ((avg("amount"))::float8)::text, (percentile_cont(0.95) WITHIN GROUP (ORDER BY "amount"))::text, (CASE WHEN count("status") = 0 THEN NULL ELSE (sum(CASE WHEN "status" IS NOT NULL AND ("status")::text NOT IN ('paid', 'o''k') THEN 1 ELSE 0 END))::float8 / count("status") END)::text, (count(DISTINCT "status"))::text FROM "public"."orders" TABLESAMPLE SYSTEM (5) WHERE (created_at > now() - interval '1 day')"#);
        assert_eq!(q.outputs.len(), 5);
        assert_eq!(q.skipped.len(), 1);
        assert!(q.skipped[0].2.contains("needs a text column"), "{:?}", q.skipped);
    }

    #[test]
    fn value_classes_follow_catalog_type_names() {
        let d = Dialect(SourceKind::Mysql);
        assert_eq!(d.classify("decimal(10,2)"), ValueClass::Numeric);
        assert_eq!(d.classify("bigint(20) unsigned"), ValueClass::Numeric);
        assert_eq!(d.classify("datetime"), ValueClass::Temporal);
        assert_eq!(d.classify("varchar(20)"), ValueClass::Text);
        assert_eq!(d.classify("enum('a','b')"), ValueClass::Text);
        assert_eq!(d.classify("blob"), ValueClass::Other);
        let pg = Dialect(SourceKind::Postgres);
        assert_eq!(pg.classify("interval"), ValueClass::Other, "interval is not an int");
        assert_eq!(pg.classify("point"), ValueClass::Other);
        assert_eq!(pg.classify("money"), ValueClass::Other);
        assert_eq!(pg.classify("uuid"), ValueClass::Other, "length() and avg() fail on uuid");
        assert_eq!(pg.classify("timestamp without time zone[]"), ValueClass::Other);
        assert_eq!(pg.classify("timestamp(3) with time zone"), ValueClass::Temporal);
        assert_eq!(pg.classify("character varying(20)"), ValueClass::Text);
        assert_eq!(pg.classify("double precision"), ValueClass::Numeric);
        let lite = Dialect(SourceKind::Sqlite);
        assert_eq!(lite.classify("VARCHAR(10)"), ValueClass::Text);
        assert_eq!(lite.classify("BIGINT"), ValueClass::Numeric);
        assert_eq!(lite.classify("TEXT"), ValueClass::Text);
    }

    #[test]
    fn lake_types_classify_by_arrow_delta_and_iceberg_names() {
        let d = Dialect(SourceKind::Files);
        assert_eq!(d.classify("Int64"), ValueClass::Numeric);
        assert_eq!(d.classify("Decimal128(10, 2)"), ValueClass::Numeric);
        assert_eq!(d.classify("Timestamp(Microsecond, Some(\"UTC\"))"), ValueClass::Temporal);
        assert_eq!(d.classify("Utf8View"), ValueClass::Text);
        assert_eq!(d.classify("long"), ValueClass::Numeric);
        assert_eq!(d.classify("timestamptz"), ValueClass::Temporal);
        assert_eq!(d.classify("string"), ValueClass::Text);
        assert_eq!(d.classify("struct<a: int>"), ValueClass::Other);
        assert_eq!(d.classify("Binary"), ValueClass::Other);
    }

    #[test]
    fn lake_profiles_use_datafusion_spelling() {
        let q = profile_query(
            Dialect(SourceKind::Delta),
            &TableRef::new("main", "events"),
            &[ColumnRequest {
                column: col("amount", "double"),
                metrics: vec![MetricKind::P50, MetricKind::Stddev, MetricKind::NullRate],
                accepted_values: None,
            }],
            None,
            Some(10.0),
        )
        .unwrap();
        insta::assert_snapshot!(q.sql, @r#"SELECT CAST(count(*) AS VARCHAR), CAST(get_field(telltale_quantiles(CAST("amount" AS DOUBLE)), 'p50') AS VARCHAR), CAST(CAST(stddev_samp("amount") AS DOUBLE) AS VARCHAR), CAST(CASE WHEN count(*) = 0 THEN NULL ELSE CAST(count(*) - count("amount") AS DOUBLE) / count(*) END AS VARCHAR) FROM "main"."events""#);
    }

    #[test]
    fn large_lake_profiles_estimate_distinct_counts() {
        let columns = [ColumnRequest {
            column: col("user", "Utf8"),
            metrics: vec![MetricKind::DistinctCount, MetricKind::Uniqueness],
            accepted_values: None,
        }];
        let table = TableRef::new("main", "events");
        let q = profile_query_with(Dialect(SourceKind::Files), &table, &columns, None, None, true).unwrap();
        insta::assert_snapshot!(q.sql, @r#"SELECT CAST(count(*) AS VARCHAR), CAST(approx_distinct("user") AS VARCHAR), CAST(CASE WHEN count("user") = 0 THEN NULL ELSE CAST(approx_distinct("user") AS DOUBLE) / count("user") END AS VARCHAR) FROM "main"."events""#);
        // Warehouses count exactly whatever the flag says.
        let q = profile_query_with(Dialect(SourceKind::Postgres), &table, &columns, None, None, true).unwrap();
        assert!(q.sql.contains("count(DISTINCT \"user\")") && !q.sql.contains("approx"), "{}", q.sql);
    }

    #[test]
    fn value_frequencies_are_one_group_by_over_the_profiled_rows() {
        let q = value_counts_query(
            Dialect(SourceKind::Postgres),
            &TableRef::new("public", "orders"),
            "sta\"tus",
            Some("created_at > now() - interval '1 day'"),
            Some(10.0),
        )
        .unwrap();
        assert_eq!(
            q,
            "SELECT (v)::text AS tt_value, (n)::text AS tt_rows, (sum(n) OVER ())::text AS tt_total FROM (SELECT \"sta\"\"tus\" AS v, count(*) AS n \
             FROM \"public\".\"orders\" TABLESAMPLE SYSTEM (10) WHERE (created_at > now() - interval '1 day') \
             GROUP BY \"sta\"\"tus\") g WHERE v IS NOT NULL ORDER BY n DESC, tt_value LIMIT 100"
        );
        let my = value_counts_query(Dialect(SourceKind::Mysql), &TableRef::new("shop", "t"), "s", None, None).unwrap();
        assert!(my.starts_with(
            "SELECT CAST(v AS CHAR) AS tt_value, CAST(n AS CHAR) AS tt_rows, CAST(sum(n) OVER () AS CHAR) AS tt_total FROM (SELECT `s` AS v"
        ));
        // The value-frequency metric is not part of the aggregate profile query.
        let profile = profile_query(
            Dialect(SourceKind::Sqlite),
            &TableRef::new("main", "t"),
            &[ColumnRequest {
                column: col("s", "text"),
                metrics: vec![MetricKind::CategoryShift, MetricKind::NullCount],
                accepted_values: None,
            }],
            None,
            None,
        )
        .unwrap();
        assert_eq!(profile.outputs, vec![("s".to_string(), MetricKind::NullCount)]);
        assert!(profile.skipped.is_empty());
    }

    #[test]
    fn value_samples_draw_numbers_or_epoch_seconds_at_random() {
        let table = TableRef::new("public", "orders");
        let q = value_sample_query(Dialect(SourceKind::Postgres), &table, &col("amount", "numeric(10,2)"), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            q,
            "SELECT (v)::text AS tt_value FROM (SELECT (\"amount\")::float8 AS v FROM \"public\".\"orders\") s \
             WHERE v IS NOT NULL ORDER BY random() LIMIT 1000"
        );
        let my = value_sample_query(Dialect(SourceKind::Mysql), &table, &col("at", "datetime"), Some("x > 1"), None)
            .unwrap()
            .unwrap();
        assert!(my.contains("UNIX_TIMESTAMP(`at`) AS v") && my.contains("WHERE (x > 1)"), "{my}");
        assert!(my.ends_with("ORDER BY RAND() LIMIT 1000"), "{my}");
        assert_eq!(
            value_sample_query(Dialect(SourceKind::Sqlite), &table, &col("s", "text"), None, None).unwrap(),
            None
        );
        // A text column asking for a distribution shift is told why not, by the profile query.
        let profile = profile_query(
            Dialect(SourceKind::Postgres),
            &table,
            &[ColumnRequest {
                column: col("s", "text"),
                metrics: vec![MetricKind::DistributionShift],
                accepted_values: None,
            }],
            None,
            None,
        )
        .unwrap();
        assert!(profile.outputs.is_empty());
        assert!(profile.skipped[0].2.contains("needs a numeric or time column"), "{:?}", profile.skipped);
    }

    #[test]
    fn custom_sql_loses_its_trailing_semicolon() {
        assert_eq!(custom_metric_query(Dialect(SourceKind::Sqlite), "select 1; "), "SELECT CAST((select 1) AS TEXT)");
    }
}
