//! Detector settings as they appear in check files, and the per-class defaults behind them.

use serde::{Deserialize, Serialize};

/// Which model applies to a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricClass {
    /// Non-negative counts (rows added per bucket, row count, distinct count): modelled on a
    /// log scale, with Poisson-like noise for small counts.
    Count,
    /// Freshness lag in seconds, measured at poll times: the update cadence is learned.
    Freshness,
    /// A proportion such as the null rate, ideally with `count`/`total`: beta-binomial model.
    Proportion,
    /// Any other real-valued metric (mean, quantiles, sensor readings): linear scale.
    Continuous,
}

impl MetricClass {
    /// The direction that matters unless the check says otherwise: freshness only "late",
    /// nulls only "up", everything else both ways.
    pub fn default_direction(self) -> Direction {
        match self {
            MetricClass::Freshness | MetricClass::Proportion => Direction::Up,
            MetricClass::Count | MetricClass::Continuous => Direction::Both,
        }
    }

    /// Relative changes smaller than this never alert unless the check overrides it.
    pub fn default_min_change(self) -> f64 {
        match self {
            MetricClass::Count => 0.05,
            MetricClass::Proportion => 0.0,
            MetricClass::Freshness | MetricClass::Continuous => 0.0,
        }
    }
}

/// How surprising a point must be to count as an anomaly.
///
/// Each level is a false-alarm probability per day of the series (each point of a series
/// judged several times a day gets its share) that calibration turns into a per-series
/// threshold, so that one setting means the same false-alarm rate on every table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// False-alarm probability 1e-5 per day of the series.
    Low,
    /// False-alarm probability 1e-4 per day of the series.
    #[default]
    Medium,
    /// False-alarm probability 1e-3 per day of the series.
    High,
    /// Numeric override: the false-alarm probability per day of the series, in (0, 0.5).
    FalseAlarmRate(f64),
}

impl Sensitivity {
    /// The false-alarm probability per day of the series this setting stands for (the models
    /// divide it among the points of a day).
    pub fn false_alarm_rate(self) -> f64 {
        match self {
            Sensitivity::Low => 1e-5,
            Sensitivity::Medium => 1e-4,
            Sensitivity::High => 1e-3,
            Sensitivity::FalseAlarmRate(rate) => rate.clamp(1e-12, 0.5),
        }
    }
}

/// Which deviations may raise an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Only values above the expected range (spikes, late tables, null increases).
    Up,
    /// Only values below the expected range (drops, partial loads).
    Down,
    /// Both.
    Both,
}

impl Direction {
    /// Whether a deviation of sign `sign` (positive = above) passes this filter.
    pub fn allows(self, above: bool) -> bool {
        match self {
            Direction::Up => above,
            Direction::Down => !above,
            Direction::Both => true,
        }
    }
}

/// Which seasonal factors the count-like and continuous models may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Seasonality {
    /// Use daily and weekly factors when they explain the series better than a flat level.
    #[default]
    Auto,
    /// No seasonal factors.
    None,
    /// Hour-of-day factors only.
    Daily,
    /// Hour-of-day plus hour-of-week (or day-of-week for daily series) factors.
    Weekly,
}

/// A half-open time range `[start, end)` in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// First second inside the range.
    pub start: i64,
    /// First second after the range.
    pub end: i64,
}

impl TimeRange {
    /// Whether `timestamp` lies inside the range.
    pub fn contains(&self, timestamp: i64) -> bool {
        self.start <= timestamp && timestamp < self.end
    }
}

/// What a user said about a stretch of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelKind {
    /// A real incident: its points never train the model.
    ConfirmedIncident,
    /// The change was expected (a migration, a new customer): re-baseline on it.
    Expected,
}

/// A user label on a time range of one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The labelled stretch.
    pub range: TimeRange,
    /// What the user said about it.
    pub kind: LabelKind,
}

/// Per-monitor detector settings (the `detect:` block of a check file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How surprising a point must be to alert: `low`, `medium` (default), `high`, or a
    /// false-alarm probability per day of the series.
    pub sensitivity: Sensitivity,
    /// Which deviations alert; unset means the metric's default (freshness only late, nulls
    /// only up, volume both ways).
    pub direction: Option<Direction>,
    /// Ignore changes smaller than this fraction of the expected value (0.1 = 10 %); unset
    /// means the metric's default (5 % for counts, none otherwise).
    pub min_change: Option<f64>,
    /// Seasonal factors: `auto` (default), `none`, `daily` or `weekly`.
    pub seasonality: Seasonality,
    /// How far back the model learns from, in seconds; unset means the bounded default
    /// (about eight weeks of slots, a few hundred points of level).
    pub training_window: Option<i64>,
    /// Maintenance windows, holidays: points inside are neither scored nor learned from.
    pub exclude: Vec<TimeRange>,
    /// User labels: confirmed incidents never train the model; expected changes re-baseline.
    pub labels: Vec<Label>,
    /// Offset of the table's local time from UTC in seconds, for hour-of-day and day-of-week.
    pub utc_offset: i64,
}

impl Settings {
    /// The direction filter in force for `class`.
    pub fn direction_for(&self, class: MetricClass) -> Direction {
        self.direction.unwrap_or(class.default_direction())
    }

    /// The minimum relative change in force for `class`.
    pub fn min_change_for(&self, class: MetricClass) -> f64 {
        self.min_change.unwrap_or(class.default_min_change()).max(0.0)
    }

    /// Whether `timestamp` falls in an excluded range.
    pub fn is_excluded(&self, timestamp: i64) -> bool {
        self.exclude.iter().any(|range| range.contains(timestamp))
    }

    /// The label covering `timestamp`, if any (confirmed incidents win over expected).
    pub fn label_at(&self, timestamp: i64) -> Option<LabelKind> {
        let mut found = None;
        for label in &self.labels {
            if label.range.contains(timestamp) {
                if label.kind == LabelKind::ConfirmedIncident {
                    return Some(LabelKind::ConfirmedIncident);
                }
                found = Some(label.kind);
            }
        }
        found
    }
}
