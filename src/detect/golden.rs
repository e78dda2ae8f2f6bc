//! Golden series: small CSV series under `tests/fixtures/detect/` replayed through
//! [`replay`](super::replay) and compared, verdict by verdict, with the expected output
//! committed beside them. Any change of flags, ranges, scores or explanations shows up as a
//! diff of these files.
//!
//! Regenerate (after an intended change, then review the diff):
//!
//! ```text
//! TELLTALE_REGENERATE_GOLDEN=1 cargo test --lib detect::golden
//! ```
//!
//! Inputs are written too when missing (they are generated from a seeded [`Rng`], so they are
//! reproducible), expected files always.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::scenario::Rng;
use super::{MetricClass, Point, Settings, Verdict, replay};

/// Monday 2024-03-04 00:00 UTC.
const MONDAY: i64 = 1_709_510_400;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/detect")
}

fn regenerate() -> bool {
    std::env::var("TELLTALE_REGENERATE_GOLDEN").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// One golden case: a file name, its metric class and how to generate its input.
struct Case {
    name: &'static str,
    class: MetricClass,
    generate: fn() -> Vec<Point>,
}

const CASES: [Case; 5] = [
    Case { name: "count_hourly", class: MetricClass::Count, generate: count_hourly },
    Case { name: "count_weekdays", class: MetricClass::Count, generate: count_weekdays },
    Case { name: "freshness_daily", class: MetricClass::Freshness, generate: freshness_daily },
    Case { name: "null_rate", class: MetricClass::Proportion, generate: null_rate },
    Case { name: "continuous_unit_shift", class: MetricClass::Continuous, generate: continuous_unit_shift },
];

/// Three weeks of hourly rows with a daily rhythm; a tenfold spike on day 15 at 10:00 and a
/// missed load on day 18 at 03:00.
fn count_hourly() -> Vec<Point> {
    let mut rng = Rng::new(1);
    (0..21 * 24)
        .map(|h| {
            let hour = (h % 24) as f64;
            let daily = 1.0 + 0.5 * ((hour - 14.0) / 24.0 * std::f64::consts::TAU).cos();
            let mut value = (2_000.0 * daily * (1.0 + 0.04 * rng.normal())).round();
            if h == 15 * 24 + 10 {
                value *= 10.0;
            }
            if h == 18 * 24 + 3 {
                value = 0.0;
            }
            Point::new(MONDAY + h * HOUR, value)
        })
        .collect()
}

/// Ten weeks of daily rows loaded Monday to Friday (zero at weekends); a partial load (-50 %)
/// on the Wednesday of week 6 and a missed load on the Tuesday of week 8.
fn count_weekdays() -> Vec<Point> {
    let mut rng = Rng::new(2);
    (0..70)
        .map(|d| {
            let weekday = d % 7;
            let mut value = if weekday < 5 { (50_000.0 * (1.0 + 0.05 * rng.normal())).round() } else { 0.0 };
            if d == 5 * 7 + 2 {
                value = (value * 0.5).round();
            }
            if d == 7 * 7 + 1 {
                value = 0.0;
            }
            Point::new(MONDAY + d * DAY, value)
        })
        .collect()
}

/// Hourly freshness polls of a table loaded daily at 06:00 (± 10 min); the load of day 16
/// never comes.
fn freshness_daily() -> Vec<Point> {
    let mut rng = Rng::new(3);
    let mut last_load = MONDAY - 18 * HOUR;
    let mut loads: Vec<i64> = (0..21).filter(|d| *d != 16).map(|d| MONDAY + d * DAY + 6 * HOUR).collect();
    for load in &mut loads {
        *load += (600.0 * rng.normal()).round() as i64;
    }
    let mut next = 0;
    (0..21 * 24)
        .map(|h| {
            let now = MONDAY + h * HOUR + 30 * 60;
            while next < loads.len() && loads[next] <= now {
                last_load = loads[next];
                next += 1;
            }
            Point::new(now, (now - last_load) as f64)
        })
        .collect()
}

/// Hourly null counts of about 2 % in batches of 800–1 200 rows; +10 points at hour 300.
fn null_rate() -> Vec<Point> {
    let mut rng = Rng::new(4);
    (0..400)
        .map(|h| {
            let total = rng.int(800, 1_200) as u64;
            let rate = if h == 300 { 0.12 } else { 0.02 };
            Point::rate(MONDAY + h * HOUR, rng.binomial(total, rate), total)
        })
        .collect()
}

/// A daily mean amount around 42.5 with noise; three days in cents (×100) from day 40.
fn continuous_unit_shift() -> Vec<Point> {
    let mut rng = Rng::new(5);
    (0..60)
        .map(|d| {
            let mut value = 42.5 * (1.0 + 0.03 * rng.normal());
            if (40..43).contains(&d) {
                value *= 100.0;
            }
            Point::new(MONDAY + d * DAY, (value * 100.0).round() / 100.0)
        })
        .collect()
}

fn write_input(points: &[Point], class: MetricClass) -> String {
    let mut out = String::new();
    if class == MetricClass::Proportion {
        out.push_str("timestamp,count,total\n");
        for point in points {
            let counts = point.counts.expect("rates carry counts");
            let _ = writeln!(out, "{},{},{}", point.timestamp, counts.count, counts.total);
        }
    } else {
        out.push_str("timestamp,value\n");
        for point in points {
            let _ = writeln!(out, "{},{}", point.timestamp, point.value);
        }
    }
    out
}

fn read_input(text: &str) -> Vec<Point> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let rates = header.contains("count");
    lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let timestamp: i64 = fields[0].parse().expect("timestamp");
            if rates {
                Point::rate(timestamp, fields[1].parse().expect("count"), fields[2].parse().expect("total"))
            } else {
                Point::new(timestamp, fields[1].parse().expect("value"))
            }
        })
        .collect()
}

/// Four significant digits: stable across tiny floating-point differences in the tails.
fn significant(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    format!("{}", super::format::round_significant(value, 4))
}

fn render(verdicts: &[Verdict]) -> String {
    let mut out = String::from("timestamp,status,anomaly,alert,score,low,high,explanation\n");
    for verdict in verdicts {
        let (low, high) =
            verdict.expected.map_or((String::new(), String::new()), |e| (significant(e.low), significant(e.high)));
        let status = serde_json::to_string(&verdict.status).unwrap_or_default().replace('"', "");
        let _ = writeln!(
            out,
            "{},{status},{},{},{:.2},{low},{high},\"{}\"",
            verdict.timestamp,
            u8::from(verdict.anomaly),
            u8::from(verdict.alert),
            verdict.score,
            verdict.explanation.replace('\u{202f}', " ").replace('"', "'")
        );
    }
    out
}

#[test]
fn golden_series_match_their_expected_verdicts() {
    let dir = fixtures();
    let regenerate = regenerate();
    let mut failures = Vec::new();
    for case in &CASES {
        let input_path = dir.join(format!("{}.csv", case.name));
        let expected_path = dir.join(format!("{}.expected.csv", case.name));
        if regenerate && !input_path.exists() {
            std::fs::create_dir_all(&dir).expect("create fixtures folder");
            std::fs::write(&input_path, write_input(&(case.generate)(), case.class)).expect("write input");
        }
        let input = std::fs::read_to_string(&input_path)
            .unwrap_or_else(|e| panic!("{}: {e} (TELLTALE_REGENERATE_GOLDEN=1 creates it)", input_path.display()));
        let points = read_input(&input);
        let actual = render(&replay(case.class, &Settings::default(), &points));
        if regenerate {
            std::fs::write(&expected_path, &actual).expect("write expected verdicts");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(0);
            failures.push(format!(
                "{}: first difference at line {}:\n  expected {}\n  actual   {}",
                case.name,
                line + 1,
                expected.lines().nth(line).unwrap_or("<missing>"),
                actual.lines().nth(line).unwrap_or("<missing>")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden verdicts changed (review, then TELLTALE_REGENERATE_GOLDEN=1 cargo test --lib detect::golden):\n{}",
        failures.join("\n")
    );
}

#[test]
fn golden_series_show_the_injected_incidents() {
    // The fixtures are only useful if the incidents in them are caught: check the flags
    // directly, independent of the expected files.
    let alerts_at = |class: MetricClass, points: &[Point]| -> Vec<usize> {
        replay(class, &Settings::default(), points)
            .iter()
            .enumerate()
            .filter(|(_, v)| v.alert)
            .map(|(i, _)| i)
            .collect()
    };
    let hourly = alerts_at(MetricClass::Count, &count_hourly());
    assert!(hourly.contains(&(15 * 24 + 10)) && hourly.contains(&(18 * 24 + 3)), "{hourly:?}");
    let weekdays = alerts_at(MetricClass::Count, &count_weekdays());
    assert!(weekdays.contains(&(5 * 7 + 2)) && weekdays.contains(&(7 * 7 + 1)), "{weekdays:?}");
    let freshness = alerts_at(MetricClass::Freshness, &freshness_daily());
    assert!(freshness.iter().any(|&i| (16 * 24 + 6..16 * 24 + 10).contains(&i)), "{freshness:?}");
    assert!(alerts_at(MetricClass::Proportion, &null_rate()).contains(&300));
    assert!(alerts_at(MetricClass::Continuous, &continuous_unit_shift()).contains(&40));
}
