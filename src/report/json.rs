//! The machine-readable run document of `telltale check --format json`, schema version 1
//! (documented field by field in `docs/ci.md`).
//!
//! The document has its own types rather than serialising `CheckOutcome`, so the runtime can change
//! its structs without changing what scripts parse. Version 1 only ever gains fields; removing or
//! retyping a field means version 2. Every field is always present (`null` when unknown), so `jq`
//! paths never miss.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Severity, Summary, location, severity, test_name};
use crate::detect::{Confidence, Deviation, Expected, Status as VerdictStatus};
use crate::measure::MetricKind;
use crate::runtime::{CheckOutcome, Status};
use crate::source::ErrorClass;

/// `version` of the document this module writes.
pub const JSON_VERSION: u32 = 1;

/// The whole document; serialise it with `serde_json`, or use [`json_report`].
#[derive(Debug, Clone, Serialize)]
pub struct JsonDocument<'a> {
    pub version: u32,
    /// Start of the run, RFC 3339 in UTC.
    pub started_at: String,
    pub duration_seconds: f64,
    pub summary: JsonSummary,
    /// In the run's order (by asset, then monitor and subject).
    pub outcomes: Vec<JsonOutcome<'a>>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct JsonSummary {
    #[serde(flatten)]
    pub counts: Summary,
    /// The exit code of the run (0 passed, 1 a check failed at or above `--fail-on`, 2 usage or
    /// configuration error, 3 a source unreachable).
    pub exit_code: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct JsonOutcome<'a> {
    pub asset: &'a str,
    pub monitor: &'a str,
    pub subject: Option<&'a str>,
    /// Monitor plus subject, as in JUnit and annotations.
    pub name: String,
    pub status: Status,
    /// `warn` for anomalies, `error` for other failures and errors, `null` for pass and recorded.
    pub severity: Option<Severity>,
    pub value: Option<f64>,
    pub message: &'a str,
    /// `file:line` of the check definition.
    pub definition: Option<&'a str>,
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub metric: Option<MetricKind>,
    pub column: Option<&'a str>,
    pub error_class: Option<ErrorClass>,
    pub verdict: Option<JsonVerdict<'a>>,
}

/// The learned-threshold judgement of the outcome's value.
#[derive(Debug, Clone, Serialize)]
pub struct JsonVerdict<'a> {
    /// `learned`, `cold_start` or `excluded`.
    pub status: VerdictStatus,
    pub anomaly: bool,
    /// The first anomalous point of an excursion (the one that notifies).
    pub alert: bool,
    /// `above` or `below` the forecast; `null` when not judged.
    pub direction: Option<Deviation>,
    /// `{low, high, forecast}` in the metric's units; `null` in cold start and excluded ranges.
    pub expected: Option<Expected>,
    pub score: f64,
    pub confidence: Confidence,
    pub history_points: usize,
    pub explanation: &'a str,
}

/// Builds the document.
pub fn json_document(
    outcomes: &[CheckOutcome],
    exit_code: i32,
    duration: Duration,
    started_at: DateTime<Utc>,
) -> JsonDocument<'_> {
    JsonDocument {
        version: JSON_VERSION,
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_seconds: (duration.as_secs_f64() * 1000.0).round() / 1000.0,
        summary: JsonSummary { counts: Summary::of(outcomes), exit_code },
        outcomes: outcomes.iter().map(outcome).collect(),
    }
}

/// The document as pretty-printed JSON with a final newline.
pub fn json_report(outcomes: &[CheckOutcome], exit_code: i32, duration: Duration, started_at: DateTime<Utc>) -> String {
    let document = json_document(outcomes, exit_code, duration, started_at);
    // Serialising plain structs of strings, numbers and enums cannot fail.
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

fn outcome(o: &CheckOutcome) -> JsonOutcome<'_> {
    let place = location(o);
    JsonOutcome {
        asset: o.asset.as_str(),
        monitor: &o.monitor,
        subject: o.subject.as_deref(),
        name: test_name(o),
        status: o.status,
        severity: severity(o),
        value: o.value,
        message: &o.message,
        definition: o.definition.as_deref(),
        file: place.map(|l| l.file),
        line: place.and_then(|l| l.line),
        metric: o.metric,
        column: o.column.as_deref(),
        error_class: o.error_class,
        verdict: o.verdict.as_ref().map(|v| JsonVerdict {
            status: v.status,
            anomaly: v.anomaly,
            alert: v.alert,
            direction: v.direction,
            expected: v.expected,
            score: v.score,
            confidence: v.confidence,
            history_points: v.history_points,
            explanation: &v.explanation,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::sample;
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_786_007_700, 0).expect("valid time")
    }

    #[test]
    fn json_document_has_version_summary_and_every_field() {
        let outcomes = sample();
        insta::assert_snapshot!(json_report(&outcomes[..2], 1, Duration::from_millis(4_812), at()), @r#"
        {
          "version": 1,
          "started_at": "2026-08-06T09:15:00Z",
          "duration_seconds": 4.812,
          "summary": {
            "total": 2,
            "passed": 0,
            "recorded": 0,
            "failed": 2,
            "anomalies": 1,
            "errors": 0,
            "unreachable": 0,
            "exit_code": 1
          },
          "outcomes": [
            {
              "asset": "shop.main.orders",
              "monitor": "freshness",
              "subject": null,
              "name": "freshness",
              "status": "fail",
              "severity": "error",
              "value": 10800.0,
              "message": "last change 3 h ago, older than max_age 2 h",
              "definition": "checks/shop.yaml:12",
              "file": "checks/shop.yaml",
              "line": 12,
              "metric": "freshness_lag",
              "column": null,
              "error_class": null,
              "verdict": null
            },
            {
              "asset": "shop.main.orders",
              "monitor": "volume",
              "subject": "rows_added",
              "name": "volume rows_added",
              "status": "fail",
              "severity": "warn",
              "value": 412.0,
              "message": "anomaly: 412 rows added, expected 9 800–11 200 for a Monday 09:00",
              "definition": "checks/shop.yaml:12",
              "file": "checks/shop.yaml",
              "line": 12,
              "metric": "rows_added",
              "column": null,
              "error_class": null,
              "verdict": {
                "status": "learned",
                "anomaly": true,
                "alert": true,
                "direction": "below",
                "expected": {
                  "low": 9800.0,
                  "high": 11200.0,
                  "forecast": 10500.0
                },
                "score": 6.5,
                "confidence": "high",
                "history_points": 120,
                "explanation": ""
              }
            }
          ]
        }
        "#);
    }

    #[test]
    fn json_summary_counts_all_outcomes_and_carries_the_exit_code() {
        let outcomes = sample();
        let value: serde_json::Value =
            serde_json::from_str(&json_report(&outcomes, 3, Duration::ZERO, at())).expect("valid JSON");
        insta::assert_snapshot!(serde_json::to_string(&value["summary"]).unwrap_or_default(), @r#"{"anomalies":1,"errors":1,"exit_code":3,"failed":2,"passed":2,"recorded":1,"total":6,"unreachable":1}"#);
        assert_eq!(value["outcomes"].as_array().map(Vec::len), Some(outcomes.len()));
        assert_eq!(value["outcomes"][5]["error_class"], "unreachable");
        assert_eq!(value["outcomes"][5]["file"], serde_json::Value::Null);
    }
}
