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
    /// rules apply. The one built in flags a daily value at least five times the largest of
    /// three or more earlier points, or a positive continuous one twenty times the largest or
    /// a twentieth of the smallest (its verdict has a range and an alert); nothing else is flagged.
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
    /// The expected range (absent in excluded ranges and in cold start, but for the cold-start
    /// rule's verdicts).
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

/// A shift of a column's values judged against its earlier profiles (value frequencies,
/// samples): what the detector measured, before it becomes a [`Verdict`].
pub(crate) struct Shift {
    /// The distance measured (PSI, KS distance).
    pub value: f64,
    /// The distance at which it alerts.
    pub high: f64,
    /// The distance expected when nothing changed.
    pub forecast: f64,
    pub score: f64,
    pub anomaly: bool,
    pub explanation: String,
}

impl Verdict {
    /// The verdict of a shift judged against `history_points` earlier profiles: excluded times
    /// and fewer than `min_history` profiles are not judged (`what` names the profiles in the
    /// cold-start sentence, e.g. "profiles of the column's values"); otherwise `judge` measures
    /// the shift, or says why there is too little to judge (a cold-start sentence), and an
    /// anomaly alerts only when the column's last verdict (`previous_anomaly`) was not one: one
    /// alert per excursion.
    pub(crate) fn of_shift(
        settings: &super::settings::Settings,
        timestamp: i64,
        history_points: usize,
        (min_history, what): (usize, &str),
        previous_anomaly: bool,
        judge: impl FnOnce() -> Result<Shift, String>,
    ) -> Verdict {
        if settings.is_excluded(timestamp) {
            return Verdict::unjudged(timestamp, 0.0, Status::Excluded, history_points, "in an excluded time range");
        }
        if history_points < min_history {
            let text = format!("learning: {history_points} of {min_history} earlier {what}, no verdict yet");
            return Verdict::unjudged(timestamp, 0.0, Status::ColdStart, history_points, text);
        }
        let shift = match judge() {
            Ok(shift) => shift,
            Err(why) => return Verdict::unjudged(timestamp, 0.0, Status::ColdStart, history_points, why),
        };
        Verdict {
            timestamp,
            value: shift.value,
            status: Status::Learned,
            expected: Some(Expected { low: 0.0, high: shift.high, forecast: shift.forecast }),
            score: shift.score,
            anomaly: shift.anomaly,
            alert: shift.anomaly && !previous_anomaly,
            direction: shift.anomaly.then_some(Deviation::Above),
            event: None,
            confidence: match history_points {
                n if n < 7 => Confidence::Low,
                n if n < 28 => Confidence::Medium,
                _ => Confidence::High,
            },
            history_points,
            explanation: shift.explanation.into(),
        }
    }

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
