//! Run reports: renders the outcomes of one `telltale check` run as human text, the versioned JSON
//! document, JUnit XML, GitHub Actions workflow commands and a GitHub step-summary Markdown page.
//!
//! Everything here is pure: functions take the outcomes plus whatever the caller knows about the
//! run (name, start time, duration, exit code) and return a `String`. This module must not read
//! the clock, the environment or a terminal, and must not write files; the CLI decides what goes
//! where (`docs/ci.md` documents the formats).
//!
//! Shared vocabulary of the formats:
//! - an outcome's *test name* is its monitor plus its subject (`column email.null_rate`);
//! - an *anomaly* is a `fail` outcome raised by learned thresholds (its message starts with
//!   `anomaly: `); it has [`Severity::Warn`], every other `fail` and every `error` has
//!   [`Severity::Error`];
//! - the *location* is the `file:line` of the check definition, when the outcome has one.

pub mod github;
pub mod json;
pub mod junit;
pub mod text;

pub use github::{MAX_ERROR_ANNOTATIONS, MAX_WARNING_ANNOTATIONS, SUMMARY_BUDGET_BYTES, annotations, markdown_summary};
pub use json::{JSON_VERSION, json_document, json_report};
pub use junit::{JunitOptions, junit_xml, junit_xml_with};
pub use text::text_report;

use serde::Serialize;

use crate::detect::Confidence;
use crate::runtime::{CheckOutcome, Status};
use crate::source::ErrorClass;

/// Prefix the runtime puts on the message of a `fail` outcome raised by learned thresholds.
pub const ANOMALY_PREFIX: &str = "anomaly: ";

/// How bad a non-passing outcome is; ordered so that `severity >= fail_on` selects what fails a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// An anomaly against learned thresholds: worth a look, blocks only with `--fail-on warn`.
    Warn,
    /// A broken hard rule, or a check that could not run.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// Whether the outcome is an anomaly found by learned thresholds (rather than a broken hard rule).
pub fn is_anomaly(outcome: &CheckOutcome) -> bool {
    outcome.status == Status::Fail && outcome.message.starts_with(ANOMALY_PREFIX)
}

/// The severity of a `fail` or `error` outcome; `None` for `pass` and `recorded`.
pub fn severity(outcome: &CheckOutcome) -> Option<Severity> {
    match outcome.status {
        Status::Pass | Status::Recorded => None,
        Status::Fail if outcome.is_warning() => Some(Severity::Warn),
        Status::Fail | Status::Error => Some(Severity::Error),
    }
}

/// Counts of one run. `anomalies` is the part of `failed` raised by learned thresholds;
/// `unreachable` the part of `errors` whose source could not be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub recorded: usize,
    pub failed: usize,
    pub anomalies: usize,
    pub errors: usize,
    pub unreachable: usize,
}

impl Summary {
    pub fn of(outcomes: &[CheckOutcome]) -> Summary {
        let mut s = Summary { total: outcomes.len(), ..Summary::default() };
        for o in outcomes {
            match o.status {
                Status::Pass => s.passed += 1,
                Status::Recorded => s.recorded += 1,
                Status::Fail => {
                    s.failed += 1;
                    s.anomalies += usize::from(is_anomaly(o));
                }
                Status::Error => {
                    s.errors += 1;
                    s.unreachable += usize::from(o.error_class == Some(ErrorClass::Unreachable));
                }
            }
        }
        s
    }

    /// `12 checks: 5 passed, 2 recorded, 4 failed (1 anomaly), 1 error`.
    pub fn sentence(&self) -> String {
        let mut out = format!(
            "{} check{}: {} passed, {} recorded, {} failed",
            self.total,
            plural(self.total),
            self.passed,
            self.recorded,
            self.failed
        );
        if self.anomalies > 0 {
            out.push_str(&format!(" ({} anomal{})", self.anomalies, if self.anomalies == 1 { "y" } else { "ies" }));
        }
        out.push_str(&format!(", {} error{}", self.errors, plural(self.errors)));
        if self.unreachable > 0 {
            out.push_str(&format!(" ({} unreachable)", self.unreachable));
        }
        out
    }
}

/// Where a check is defined: the `file:line` of `CheckOutcome::definition`, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location<'a> {
    pub file: &'a str,
    /// 1-based line, when the definition names one.
    pub line: Option<u32>,
}

/// Splits an outcome's definition at its last `:` when a line number follows (file names may
/// themselves contain `:`).
pub fn location(outcome: &CheckOutcome) -> Option<Location<'_>> {
    let definition = outcome.definition.as_deref().filter(|d| !d.is_empty())?;
    Some(match definition.rsplit_once(':') {
        Some((file, line)) if !file.is_empty() && line.parse::<u32>().is_ok() => {
            Location { file, line: line.parse().ok() }
        }
        _ => Location { file: definition, line: None },
    })
}

/// Monitor plus subject: `freshness`, `volume rows_added`, `column email.null_rate`.
pub fn test_name(outcome: &CheckOutcome) -> String {
    match outcome.subject.as_deref().filter(|s| !s.is_empty()) {
        Some(subject) => format!("{} {subject}", outcome.monitor),
        None => outcome.monitor.clone(),
    }
}

/// `observed 412, expected 9800 to 11200, forecast 10500` when the outcome has a value and its
/// verdict an expected range; `observed 412` with a value only; `None` otherwise.
pub fn observed_vs_expected(outcome: &CheckOutcome) -> Option<String> {
    let observed = outcome.value.map(|v| format!("observed {}", number(v)));
    let expected = outcome
        .verdict
        .as_ref()
        .and_then(|v| v.expected)
        .map(|e| format!("expected {} to {}, forecast {}", number(e.low), number(e.high), number(e.forecast)));
    match (observed, expected) {
        (Some(o), Some(e)) => Some(format!("{o}, {e}")),
        (Some(o), None) => Some(o),
        (None, Some(e)) => Some(e),
        (None, None) => None,
    }
}

/// The message followed by ` (observed …, expected …)` when the verdict has an expected range
/// (a hard rule's message already names its bound).
pub(crate) fn headline(outcome: &CheckOutcome) -> String {
    let has_range = outcome.verdict.as_ref().is_some_and(|v| v.expected.is_some());
    match observed_vs_expected(outcome).filter(|_| has_range) {
        Some(detail) if !outcome.message.is_empty() => format!("{} ({detail})", outcome.message),
        Some(detail) => detail,
        None => outcome.message.clone(),
    }
}

/// Order of importance for reports that show the worst first: broken hard rules, then checks that
/// could not run (unreachable first), then anomalies (most surprising first), then the rest.
pub(crate) fn by_importance(outcomes: &[CheckOutcome]) -> Vec<&CheckOutcome> {
    fn rank(o: &CheckOutcome) -> (u8, u8) {
        match o.status {
            Status::Fail if !is_anomaly(o) => (0, 0),
            Status::Error => (1, u8::from(o.error_class != Some(ErrorClass::Unreachable))),
            Status::Fail => (2, 0),
            Status::Recorded => (3, 0),
            Status::Pass => (4, 0),
        }
    }
    let score = |o: &CheckOutcome| o.verdict.as_ref().map_or(0.0, |v| v.score);
    let mut sorted: Vec<&CheckOutcome> = outcomes.iter().collect();
    // Stable: equal ranks keep the run's order (by asset).
    sorted.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| score(b).total_cmp(&score(a))));
    sorted
}

/// Groups outcomes by asset, in order of first appearance.
pub(crate) fn by_asset(outcomes: &[CheckOutcome]) -> Vec<(&str, Vec<&CheckOutcome>)> {
    let mut groups: Vec<(&str, Vec<&CheckOutcome>)> = Vec::new();
    for o in outcomes {
        match groups.iter_mut().find(|(asset, _)| *asset == o.asset.as_str()) {
            Some((_, members)) => members.push(o),
            None => groups.push((o.asset.as_str(), vec![o])),
        }
    }
    groups
}

/// A number as written in reports: integers exactly, others with up to four decimals.
pub(crate) fn number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{}", value as i64);
    }
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".to_string() } else { text.to_string() }
}

pub(crate) fn confidence(confidence: Confidence) -> &'static str {
    match confidence {
        Confidence::Low => "low",
        Confidence::Medium => "medium",
        Confidence::High => "high",
    }
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Control characters other than tab, line feed and carriage return (C0, DEL, C1): never valid in
/// XML 1.0 (C0) or unsafe to print (terminal escape sequences).
pub(crate) fn is_unwanted_control(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A fixed set of outcomes covering every status, shared by the format tests.

    use crate::detect::{Confidence, Deviation, Expected, Status as VerdictStatus, Verdict};
    use crate::measure::MetricKind;
    use crate::runtime::{CheckOutcome, Status};
    use crate::source::ErrorClass;

    pub fn outcome(asset: &str, monitor: &str, subject: Option<&str>, status: Status, message: &str) -> CheckOutcome {
        CheckOutcome {
            asset: asset.parse().expect("asset id"),
            monitor: monitor.to_string(),
            subject: subject.map(str::to_string),
            status,
            value: None,
            message: message.to_string(),
            definition: Some("checks/shop.yaml:12".to_string()),
            metric: None,
            column: None,
            error_class: None,
            verdict: None,
            advisory: false,
        }
    }

    pub fn verdict(value: f64, low: f64, high: f64, forecast: f64, score: f64) -> Verdict {
        Verdict {
            timestamp: 1_786_000_000,
            value,
            status: VerdictStatus::Learned,
            expected: Some(Expected { low, high, forecast }),
            score,
            anomaly: true,
            alert: true,
            direction: Some(Deviation::Below),
            event: None,
            confidence: Confidence::High,
            history_points: 120,
            explanation: Default::default(),
        }
    }

    /// Six outcomes on three assets: pass, recorded, hard failure, anomaly, unreachable error.
    pub fn sample() -> Vec<CheckOutcome> {
        let mut fresh =
            outcome("shop.main.orders", "freshness", None, Status::Fail, "last change 3 h ago, older than max_age 2 h");
        fresh.value = Some(10_800.0);
        fresh.metric = Some(MetricKind::FreshnessLag);

        let mut rows = outcome(
            "shop.main.orders",
            "volume",
            Some("rows_added"),
            Status::Fail,
            "anomaly: 412 rows added, expected 9 800–11 200 for a Monday 09:00",
        );
        rows.value = Some(412.0);
        rows.metric = Some(MetricKind::RowsAdded);
        rows.verdict = Some(verdict(412.0, 9_800.0, 11_200.0, 10_500.0, 6.5));

        let mut schema = outcome("shop.main.orders", "schema", None, Status::Pass, "schema unchanged");
        schema.value = Some(0.0);

        let mut nulls = outcome(
            "shop.main.customers",
            "column",
            Some("email.null_rate"),
            Status::Recorded,
            "email.null_rate: 0.0125",
        );
        nulls.value = Some(0.0125);
        nulls.metric = Some(MetricKind::NullRate);
        nulls.column = Some("email".into());
        nulls.definition = Some("checks/customers.yaml:4".into());

        let mut count = outcome("shop.main.customers", "volume", None, Status::Pass, "row count: 5230 within bounds");
        count.value = Some(5_230.0);
        count.definition = Some("checks/customers.yaml:4".into());

        let mut down = outcome(
            "warehouse.*.*",
            "source",
            None,
            Status::Error,
            "source `warehouse` is unreachable: connection refused",
        );
        down.definition = None;
        down.error_class = Some(ErrorClass::Unreachable);

        vec![fresh, rows, schema, nulls, count, down]
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{outcome, sample};
    use super::*;

    #[test]
    fn summary_counts_every_status_and_the_anomaly_and_unreachable_subsets() {
        let s = Summary::of(&sample());
        assert_eq!(s, Summary { total: 6, passed: 2, recorded: 1, failed: 2, anomalies: 1, errors: 1, unreachable: 1 });
        insta::assert_snapshot!(s.sentence(), @"6 checks: 2 passed, 1 recorded, 2 failed (1 anomaly), 1 error (1 unreachable)");
    }

    #[test]
    fn anomalies_are_warnings_and_other_failures_errors() {
        let outcomes = sample();
        let severities: Vec<_> = outcomes.iter().map(severity).collect();
        assert_eq!(severities, [Some(Severity::Error), Some(Severity::Warn), None, None, None, Some(Severity::Error)]);
        assert!(Severity::Error > Severity::Warn);
    }

    #[test]
    fn location_splits_at_the_last_colon_followed_by_a_line_number() {
        let mut o = outcome("a.b.c", "freshness", None, Status::Pass, "");
        o.definition = Some("C:/checks/a,b.yaml:17".into());
        assert_eq!(location(&o), Some(Location { file: "C:/checks/a,b.yaml", line: Some(17) }));
        o.definition = Some("checks/a.yaml".into());
        assert_eq!(location(&o), Some(Location { file: "checks/a.yaml", line: None }));
        o.definition = None;
        assert_eq!(location(&o), None);
    }

    #[test]
    fn importance_puts_hard_failures_then_errors_then_anomalies_first() {
        let outcomes = sample();
        let names: Vec<String> =
            by_importance(&outcomes).iter().map(|o| format!("{} {}", o.asset, test_name(o))).collect();
        assert_eq!(
            names,
            [
                "shop.main.orders freshness",
                "warehouse.*.* source",
                "shop.main.orders volume rows_added",
                "shop.main.customers column email.null_rate",
                "shop.main.orders schema",
                "shop.main.customers volume",
            ]
        );
    }

    #[test]
    fn numbers_are_exact_for_integers_and_trimmed_otherwise() {
        assert_eq!(number(10_800.0), "10800");
        assert_eq!(number(0.0125), "0.0125");
        assert_eq!(number(2.00001), "2");
        assert_eq!(number(-0.00001), "0");
        assert_eq!(number(2.5), "2.5");
    }
}
