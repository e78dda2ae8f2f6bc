//! `telltale detect replay`: streams a `timestamp,value` series (and `count,total` for rates)
//! through the same detector the daemon uses, in time order, each point seeing only its past,
//! and writes one verdict per point. This is how users tune sensitivity, and how we measure.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::detect::{Direction, MetricClass, Point, Seasonality, Sensitivity, Settings, StreamingDetector, Verdict};
use crate::measure::MetricKind;

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// CSV with a header: `timestamp,value` or `timestamp,value,count,total` (`-` for stdin).
    /// Timestamps: unix seconds, RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD`.
    #[arg(long)]
    pub input: PathBuf,
    /// The metric the series is (picks the model): row_count, rows_added, freshness_lag, null_rate, mean, …
    #[arg(long, default_value = "rows_added")]
    pub metric: String,
    #[arg(long, value_enum, default_value_t = ReplayFormat::Csv)]
    pub format: ReplayFormat,
    /// low, medium, high, or a false-alarm probability per day of the series such as 0.0001.
    #[arg(long, default_value = "medium")]
    pub sensitivity: String,
    /// up, down or both (default: the metric's own).
    #[arg(long)]
    pub direction: Option<String>,
    /// auto, none, daily or weekly.
    #[arg(long, default_value = "auto")]
    pub seasonality: String,
    /// Ignore relative changes smaller than this (0.1 = 10 %).
    #[arg(long)]
    pub min_change: Option<f64>,
    /// Write only anomalous points.
    #[arg(long)]
    pub anomalies_only: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReplayFormat {
    Csv,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Parse { path: String, line: usize, message: String },
    #[error("{0}")]
    Usage(String),
}

pub fn settings_from(args: &ReplayArgs) -> Result<Settings, ReplayError> {
    let mut s = Settings {
        sensitivity: match args.sensitivity.as_str() {
            "low" => Sensitivity::Low,
            "medium" => Sensitivity::Medium,
            "high" => Sensitivity::High,
            other => match other.parse::<f64>() {
                Ok(r) if r > 0.0 && r < 0.5 => Sensitivity::FalseAlarmRate(r),
                _ => {
                    return Err(ReplayError::Usage(format!(
                        "invalid --sensitivity `{other}`; expected low, medium, high or a probability below 0.5"
                    )));
                }
            },
        },
        seasonality: match args.seasonality.as_str() {
            "auto" => Seasonality::Auto,
            "none" => Seasonality::None,
            "daily" => Seasonality::Daily,
            "weekly" => Seasonality::Weekly,
            other => {
                return Err(ReplayError::Usage(format!(
                    "invalid --seasonality `{other}`; expected auto, none, daily or weekly"
                )));
            }
        },
        min_change: args.min_change,
        ..Settings::default()
    };
    s.direction = match args.direction.as_deref() {
        None => None,
        Some("up") => Some(Direction::Up),
        Some("down") => Some(Direction::Down),
        Some("both") => Some(Direction::Both),
        Some(other) => {
            return Err(ReplayError::Usage(format!("invalid --direction `{other}`; expected up, down or both")));
        }
    };
    Ok(s)
}

/// Unix seconds from the timestamp forms the replay accepts.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let t = text.trim().trim_matches('"');
    if let Ok(secs) = t.parse::<i64>() {
        return Some(secs);
    }
    if let Ok(secs) = t.parse::<f64>() {
        return Some(secs as i64);
    }
    if let Ok(dt) = t.parse::<chrono::DateTime<chrono::Utc>>() {
        return Some(dt.timestamp());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return Some(dt.and_utc().timestamp());
        }
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
}

/// Reads the series; every bad line is reported with its number.
pub fn read_series(path: &str, reader: impl BufRead) -> Result<Vec<Point>, ReplayError> {
    let mut points = Vec::new();
    // Positions of timestamp, value and (count, total) once the header is read.
    type Columns = (usize, usize, Option<(usize, usize)>);
    let mut columns: Option<Columns> = None;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| ReplayError::Read { path: path.to_string(), source })?;
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let Some((ts, value, counts)) = columns else {
            let find = |name: &str| cells.iter().position(|c| c.trim_matches('"').eq_ignore_ascii_case(name));
            match (find("timestamp"), find("value")) {
                (Some(t), Some(v)) => {
                    columns = Some((t, v, find("count").zip(find("total"))));
                    continue;
                }
                _ => {
                    return Err(ReplayError::Parse {
                        path: path.to_string(),
                        line: number,
                        message: "expected a header naming `timestamp` and `value` (and optionally `count,total`)"
                            .into(),
                    });
                }
            }
        };
        let parse_err = |message: String| ReplayError::Parse { path: path.to_string(), line: number, message };
        let timestamp = cells
            .get(ts)
            .and_then(|c| parse_timestamp(c))
            .ok_or_else(|| parse_err(format!("invalid timestamp `{}`", cells.get(ts).unwrap_or(&""))))?;
        let point = match counts {
            Some((c, t)) if !cells.get(c).unwrap_or(&"").is_empty() => {
                let count = cells.get(c).and_then(|x| x.parse::<u64>().ok());
                let total = cells.get(t).and_then(|x| x.parse::<u64>().ok());
                match (count, total) {
                    (Some(count), Some(total)) => Point::rate(timestamp, count, total),
                    _ => return Err(parse_err("`count` and `total` must be whole numbers".into())),
                }
            }
            _ => {
                let v = cells
                    .get(value)
                    .and_then(|x| x.trim_matches('"').parse::<f64>().ok())
                    .ok_or_else(|| parse_err(format!("invalid value `{}`", cells.get(value).unwrap_or(&""))))?;
                Point::new(timestamp, v)
            }
        };
        points.push(point);
    }
    points.sort_by_key(|p| p.timestamp);
    Ok(points)
}

/// Replays and writes verdicts; returns how many anomalies were found.
pub fn run(args: &ReplayArgs, out: &mut impl Write) -> Result<usize, ReplayError> {
    let settings = settings_from(args)?;
    let valid = || {
        let names: Vec<&str> = MetricKind::ALL
            .iter()
            .filter(|k| !matches!(k, MetricKind::CategoryShift | MetricKind::DistributionShift))
            .map(|k| k.as_str())
            .collect();
        names.join(", ")
    };
    let kind: MetricKind =
        args.metric.parse().map_err(|e: String| ReplayError::Usage(format!("{e}; valid metrics: {}", valid())))?;
    if matches!(kind, MetricKind::CategoryShift | MetricKind::DistributionShift) {
        return Err(ReplayError::Usage(format!(
            "`{kind}` is judged on value frequencies or samples of a column, not on a series of numbers, so it cannot be replayed; valid metrics: {}",
            valid()
        )));
    }
    let class: MetricClass = crate::runtime::class_of(kind);
    let path = args.input.display().to_string();
    let points = if path == "-" {
        read_series("stdin", std::io::stdin().lock())?
    } else {
        let file =
            std::fs::File::open(&args.input).map_err(|source| ReplayError::Read { path: path.clone(), source })?;
        read_series(&path, std::io::BufReader::new(file))?
    };
    let mut detector = StreamingDetector::new(class, settings).with_noun(crate::runtime::noun(kind, ""));
    let verdicts: Vec<Verdict> = points.iter().map(|p| detector.push(*p)).collect();
    let anomalies = verdicts.iter().filter(|v| v.anomaly).count();
    let shown = verdicts.iter().filter(|v| !args.anomalies_only || v.anomaly);
    let io = |source| ReplayError::Read { path: "output".into(), source };
    match args.format {
        ReplayFormat::Json => {
            let list: Vec<&Verdict> = shown.collect();
            serde_json::to_writer_pretty(&mut *out, &list).map_err(|e| io(e.into()))?;
            writeln!(out).map_err(io)?;
        }
        ReplayFormat::Csv => {
            writeln!(out, "timestamp,value,status,score,expected_low,expected_high,forecast,anomaly,alert,explanation")
                .map_err(io)?;
            for v in shown {
                let e = v.expected;
                let f = |x: Option<f64>| x.map(|x| format!("{x}")).unwrap_or_default();
                writeln!(
                    out,
                    "{},{},{},{:.3},{},{},{},{},{},\"{}\"",
                    chrono::DateTime::from_timestamp(v.timestamp, 0).map(|t| t.to_rfc3339()).unwrap_or_default(),
                    v.value,
                    serde_json::to_value(v.status).ok().and_then(|s| s.as_str().map(String::from)).unwrap_or_default(),
                    v.score,
                    f(e.map(|e| e.low)),
                    f(e.map(|e| e.high)),
                    f(e.map(|e| e.forecast)),
                    v.anomaly,
                    v.alert,
                    v.explanation.replace('"', "\"\""),
                )
                .map_err(io)?;
            }
        }
    }
    Ok(anomalies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_accepted_form() {
        assert_eq!(parse_timestamp("1767225600"), Some(1_767_225_600));
        assert_eq!(parse_timestamp("2026-01-01T00:00:00Z"), Some(1_767_225_600));
        assert_eq!(parse_timestamp("2026-01-01 00:00:00"), Some(1_767_225_600));
        assert_eq!(parse_timestamp("2026-01-01"), Some(1_767_225_600));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let text = "timestamp,value\n2026-01-01,5\n2026-01-02,five\n";
        let err = read_series("s.csv", text.as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), "s.csv:3: invalid value `five`");
        let err = read_series("s.csv", "a,b\n1,2\n".as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("s.csv:1: expected a header"), "{err}");
    }

    /// The arguments of `telltale detect replay --input INPUT --metric METRIC --anomalies-only`,
    /// everything else at its default.
    fn anomalies_of(input: PathBuf, metric: &str) -> ReplayArgs {
        ReplayArgs {
            input,
            metric: metric.into(),
            format: ReplayFormat::Csv,
            sensitivity: "medium".into(),
            direction: None,
            seasonality: "auto".into(),
            min_change: None,
            anomalies_only: true,
        }
    }

    #[test]
    fn a_replay_flags_the_injected_drop_and_nothing_else() {
        let mut csv = String::from("timestamp,value\n");
        for h in 0..24 * 21 {
            let v = if h == 24 * 21 - 3 { 10 } else { 1000 + (h % 7) * 10 };
            csv.push_str(&format!("{},{v}\n", 1_767_225_600 + h * 3600));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        std::fs::write(&path, csv).unwrap();
        let args = anomalies_of(path, "rows_added");
        let mut out = Vec::new();
        let anomalies = run(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(anomalies, 1, "{text}");
        assert!(text.lines().nth(1).unwrap().starts_with("2026-01-21T21:00:00+00:00,10,learned,"), "{text}");
    }

    #[test]
    fn category_shift_cannot_be_replayed_as_a_series() {
        let args = anomalies_of("unused.csv".into(), "category_shift");
        let err = run(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("judged on value frequencies") && err.contains("rows_added"), "{err}");
        let valid = err.split("valid metrics:").nth(1).unwrap();
        assert!(!valid.contains("category_shift") && !valid.contains("distribution_shift"), "{err}");
    }
}
