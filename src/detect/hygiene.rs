//! Alert hygiene: one alert per excursion. An excursion starts at the first anomalous point
//! and lasts until the series has been back inside its expected range for a few points;
//! later anomalies of the same excursion are reported as anomalies but do not alert again.

use std::collections::VecDeque;

use super::verdict::Deviation;

/// Remembers whether the series is inside an excursion.
#[derive(Debug, Clone)]
pub struct ExcursionTracker {
    inside: Option<Deviation>,
    calm_points: usize,
    calm_to_end: usize,
}

impl ExcursionTracker {
    /// An excursion ends after `calm_to_end` consecutive points without anomaly.
    pub fn new(calm_to_end: usize) -> Self {
        Self { inside: None, calm_points: 0, calm_to_end: calm_to_end.max(1) }
    }

    /// Whether an excursion is in progress, and on which side.
    pub fn current(&self) -> Option<Deviation> {
        self.inside
    }

    /// Feed one verdict; returns true when it opens a new excursion (i.e. should alert).
    /// An anomaly on the other side of the forecast opens a new excursion. `shifting` is the
    /// side of a level shift in progress that the point carried (see
    /// [`SeasonalModel::shift_in_progress`](super::seasonal::SeasonalModel)): such a point is
    /// not calm on that side even inside its range — the step of a level shift whose points
    /// straddle the threshold (or whose range widened) is one excursion until the shift is
    /// recognised.
    pub fn observe(&mut self, anomaly: bool, side: Option<Deviation>, shifting: Option<Deviation>) -> bool {
        if !anomaly && shifting.is_some() && self.inside == shifting {
            self.calm_points = 0;
            return false;
        }
        if anomaly {
            self.calm_points = 0;
            if self.inside.is_some() && self.inside == side {
                return false;
            }
            self.inside = side;
            return true;
        }
        if self.inside.is_some() {
            self.calm_points += 1;
            if self.calm_points >= self.calm_to_end {
                self.inside = None;
                self.calm_points = 0;
            }
        }
        false
    }

    /// End any excursion (after a re-baseline).
    pub fn reset(&mut self) {
        self.inside = None;
        self.calm_points = 0;
    }
}

/// Threshold-free hygiene for ranked scores (benchmarks): a score survives only if it beats
/// every score of the previous `span` points, so a long excursion yields one high score at its
/// start instead of a run of them, whatever threshold is later applied.
#[derive(Debug, Clone)]
pub struct RepeatSuppressor {
    span: usize,
    index: usize,
    /// Monotonic deque of (index, score) with decreasing scores: the sliding maximum.
    window: VecDeque<(usize, f64)>,
}

impl RepeatSuppressor {
    /// Suppress scores not exceeding the maximum of the previous `span` raw scores.
    pub fn new(span: usize) -> Self {
        Self { span, index: 0, window: VecDeque::new() }
    }

    /// Feed the next raw score; returns it if it is a new maximum over the span, else 0.
    pub fn filter(&mut self, score: f64) -> f64 {
        let previous_max = self.push(score);
        if score > previous_max { score } else { 0.0 }
    }

    /// Feed the next raw score; returns the maximum of the previous `span` raw scores (−∞ at
    /// first): the threshold at or below which an alert on this score repeats a recent one.
    pub fn push(&mut self, score: f64) -> f64 {
        while let Some(&(index, _)) = self.window.front() {
            if index + self.span < self.index {
                self.window.pop_front();
            } else {
                break;
            }
        }
        let previous_max = self.window.front().map_or(f64::NEG_INFINITY, |&(_, s)| s);
        while let Some(&(_, s)) = self.window.back() {
            if s <= score {
                self.window.pop_back();
            } else {
                break;
            }
        }
        self.window.push_back((self.index, score));
        self.index += 1;
        previous_max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_alert_per_excursion() {
        let mut tracker = ExcursionTracker::new(3);
        let up = Some(Deviation::Above);
        let pattern = [true, true, false, true, false, false, false, true];
        let alerts: Vec<bool> = pattern.iter().map(|&a| tracker.observe(a, up, None)).collect();
        assert_eq!(alerts, [true, false, false, false, false, false, false, true]);
        // Opposite side opens a new excursion at once.
        assert!(tracker.observe(true, Some(Deviation::Below), None));
    }

    #[test]
    fn points_carrying_a_level_shift_in_progress_keep_its_excursion_open() {
        let mut tracker = ExcursionTracker::new(3);
        let up = Some(Deviation::Above);
        assert!(tracker.observe(true, up, None));
        // Four points inside the range that still carry the upward shift, then an anomaly:
        // one excursion.
        for _ in 0..4 {
            assert!(!tracker.observe(false, up, up));
        }
        assert!(!tracker.observe(true, up, up));
        // A shift in progress on the other side does not hold an upward excursion open.
        for _ in 0..3 {
            assert!(!tracker.observe(false, up, Some(Deviation::Below)));
        }
        assert!(tracker.observe(true, up, None));
    }

    #[test]
    fn repeats_inside_the_span_are_suppressed() {
        let mut suppressor = RepeatSuppressor::new(3);
        let out: Vec<f64> =
            [1.0, 5.0, 4.0, 6.0, 1.0, 1.0, 1.0, 1.0, 2.0].iter().map(|&s| suppressor.filter(s)).collect();
        assert_eq!(out, [1.0, 5.0, 0.0, 6.0, 0.0, 0.0, 0.0, 0.0, 2.0]);
        let mut floors = RepeatSuppressor::new(3);
        let previous: Vec<f64> = [1.0, 5.0, 4.0, 6.0, 1.0].iter().map(|&s| floors.push(s)).collect();
        assert_eq!(previous, [f64::NEG_INFINITY, 1.0, 5.0, 5.0, 6.0]);
    }
}
