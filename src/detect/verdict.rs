//! The verdict every detector returns: expected range, score, flags and a sentence for humans.

use serde::{Deserialize, Serialize};

use super::explanation::Explanation;

/// Whether the model had learned enough to judge the point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A learned verdict.
    Learned,
    /// Too little history (fewer than [`crate::detect::streaming::COLD_START_POINTS`] points,
    /// [`crate::detect::streaming::PROPORTION_COLD_START_POINTS`] for a proportion): only hard
    /// rules apply, nothing is flagged.
    ColdStart,
    /// The point lies in an excluded range (maintenance window, holiday): not judged.
    Excluded,
}

/// The range the model expected, in the metric's own units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    /// Lower edge of the expected range.
    pub low: f64,
    /// Upper edge of the expected range.
    pub high: f64,
    /// The single most likely value.
    pub forecast: f64,
}

/// On which side of the expected range the point fell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deviation {
    /// Above the forecast (spike, late table, more nulls).
    Above,
    /// Below the forecast (drop, partial load).
    Below,
}

/// Something that happened to the model at this point, beyond a single odd value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Event {
    /// A lasting change of level was recognised; the model re-baselined on the new level.
    LevelShift {
        /// Level before the shift, in the metric's units.
        from: f64,
        /// Level after the shift.
        to: f64,
    },
    /// A user label said the change was expected; the model re-baselined.
    Rebaselined,
}

/// How much the model trusts itself, mostly a matter of history length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Fewer points than a few seasons: thresholds are widened.
    Low,
    /// Enough for a level and a scale, seasons still shrunk.
    Medium,
    /// Several full seasons of history.
    High,
}

/// A detector's judgement of one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Timestamp of the judged point.
    pub timestamp: i64,
    /// Value of the judged point.
    pub value: f64,
    /// Whether the verdict is learned, cold-start or excluded.
    pub status: Status,
    /// The expected range (absent in cold start and excluded ranges).
    pub expected: Option<Expected>,
    /// Calibrated surprise, `-log10` of the point's tail probability under the series' own
    /// model; comparable across series (3 = one in a thousand). 0 when not judged.
    pub score: f64,
    /// The point is outside the expected range in a direction that matters and by more than
    /// `min_change`.
    pub anomaly: bool,
    /// Notify: the first anomalous point of an excursion, or a level-shift event outside one.
    /// Later points of the same excursion are anomalies without alerts.
    pub alert: bool,
    /// Side of the forecast the point fell on (None when not judged or exactly on it).
    pub direction: Option<Deviation>,
    /// A model event at this point (level shift, re-baseline).
    pub event: Option<Event>,
    /// How much history backs the verdict.
    pub confidence: Confidence,
    /// Points of history the verdict was learned from.
    pub history_points: usize,
    /// One sentence for humans, e.g. "412 rows added, expected 9 800–11 200 for a Monday 09:00"
    /// (written when first read; serialised as a string).
    pub explanation: Explanation,
}

impl Verdict {
    /// A verdict that judges nothing (cold start or excluded point).
    pub(crate) fn unjudged(
        timestamp: i64,
        value: f64,
        status: Status,
        history_points: usize,
        explanation: impl Into<Explanation>,
    ) -> Self {
        Self {
            timestamp,
            value,
            status,
            expected: None,
            score: 0.0,
            anomaly: false,
            alert: false,
            direction: None,
            event: None,
            confidence: Confidence::Low,
            history_points,
            explanation: explanation.into(),
        }
    }
}
