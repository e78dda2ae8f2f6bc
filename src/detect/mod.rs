//! Pure anomaly detection: (history, latest point, settings) → [`Verdict`].
//!
//! This module owns every statistical model telltale uses to decide whether a measurement is
//! unusual: the robust seasonal baseline for count-like and continuous metrics
//! ([`seasonal`]), update-cadence learning for freshness ([`freshness`]), beta-binomial rates
//! for proportions such as the null rate ([`proportion`]), schema diffs ([`schema`]),
//! categorical shift ([`categorical`]), the two-sample Kolmogorov–Smirnov test of a numeric
//! column's sampled values ([`ks`]), per-series calibration ([`calibration`]), level-shift
//! recognition ([`regime`]), alert hygiene ([`hygiene`]) and the record rule of counts beside
//! the learned model (`record_rule`). [`streaming`] ties them together
//! behind one replayable API that the daemon and `telltale detect replay` share, [`zscore`] is
//! the peer baseline used by benchmarks, [`nab`] scores detectors with the published Numenta
//! Anomaly Benchmark rules, and [`scenario`] and [`scoring`] generate labelled warehouses and
//! score detectors on them (`bench/detection.rs`, `docs/detection.md`).
//!
//! It must not do IO, read the clock (every "now" is a parameter), spawn tasks, use ambient
//! randomness (the scenario generator uses its own seeded PRNG), or depend on any other
//! `crate::` module: it is a leaf that can be tested and benchmarked alone.

pub mod calibration;
pub mod categorical;
pub mod change;
pub mod explanation;
pub mod freshness;
pub mod hygiene;
pub mod ks;
pub mod nab;
pub mod proportion;
pub mod regime;
pub mod scenario;
pub mod schema;
pub mod scoring;
pub mod seasonal;
pub mod shape;
pub mod streaming;
pub mod zscore;

mod calendar;
mod count_noise;
pub(crate) mod format;
mod record_rule;
mod settings;
mod stats;
mod verdict;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;

pub use explanation::Explanation;
pub use settings::{Direction, Label, LabelKind, MetricClass, Seasonality, Sensitivity, Settings, TimeRange};
pub use streaming::{StreamingDetector, evaluate, replay};
pub use verdict::{Confidence, Deviation, Event, Expected, Status, Verdict};

use serde::{Deserialize, Serialize};

/// One observation of a metric: a unix timestamp in seconds and a value.
///
/// Rates such as the null rate also carry the `count` of matching rows out of `total`, which
/// lets the proportion model weigh a batch of 10 rows differently from one of 10 000.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Unix time in seconds (UTC) at which the measurement applies.
    pub timestamp: i64,
    /// The measured value (for rates, `count / total`).
    pub value: f64,
    /// For rates: the number of matching rows and the number of rows looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
}

/// Numerator and denominator of a measured proportion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Rows matching (for example rows whose column is null).
    pub count: u64,
    /// Rows looked at.
    pub total: u64,
}

impl Point {
    /// A plain measurement.
    pub fn new(timestamp: i64, value: f64) -> Self {
        Self { timestamp, value, counts: None }
    }

    /// A proportion measured as `count` out of `total` rows; its value is the rate.
    pub fn rate(timestamp: i64, count: u64, total: u64) -> Self {
        let value = if total == 0 { 0.0 } else { count as f64 / total as f64 };
        Self { timestamp, value, counts: Some(Counts { count, total }) }
    }
}
