//! Regime changes: a lasting level shift is recognised once (two-sided CUSUM on standardised
//! residuals plus a stable new level for `m` points) so that the model re-baselines instead of
//! alerting on every later point.

use std::collections::VecDeque;

use super::stats::{MAD_TO_SIGMA, median_of};

/// Clip standardised residuals before they enter the CUSUM, so one wild point cannot trip it.
const Z_CLIP: f64 = 6.0;

/// Two-sided tabular CUSUM on standardised residuals.
#[derive(Debug, Clone)]
pub struct Cusum {
    /// Allowance: half the smallest shift (in sigmas) worth detecting.
    pub allowance: f64,
    upper: f64,
    lower: f64,
}

impl Cusum {
    /// A CUSUM tuned to shifts of about `2 * allowance` sigmas.
    pub fn new(allowance: f64) -> Self {
        Self { allowance, upper: 0.0, lower: 0.0 }
    }

    /// Add a standardised residual; returns the larger of the two one-sided statistics, signed
    /// (+ for upward drift, - for downward).
    pub fn update(&mut self, z: f64) -> f64 {
        let z = z.clamp(-Z_CLIP, Z_CLIP);
        self.upper = (self.upper + z - self.allowance).max(0.0);
        self.lower = (self.lower - z - self.allowance).max(0.0);
        self.statistic()
    }

    /// The current signed statistic.
    pub fn statistic(&self) -> f64 {
        if self.upper >= self.lower { self.upper } else { -self.lower }
    }

    /// Forget accumulated evidence (after a re-baseline).
    pub fn reset(&mut self) {
        self.upper = 0.0;
        self.lower = 0.0;
    }
}

/// Decides when a sustained deviation has become a new, stable level.
#[derive(Debug, Clone)]
pub struct LevelShiftDetector {
    cusum: Cusum,
    /// CUSUM decision interval, in sigmas.
    threshold: f64,
    /// Points the new level must have held.
    stable_points: usize,
    /// Recent deseasonalised values (model scale), newest last.
    recent: VecDeque<f64>,
    /// Whether the last point carried a shift in progress: pending evidence, and the point
    /// beyond one scale on its side.
    carried: bool,
}

/// A confirmed level shift, on the model's (possibly log) scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// The new level (median of the last `m` deseasonalised values).
    pub new_level: f64,
    /// How many recent points the new level rests on.
    pub points: usize,
}

impl LevelShiftDetector {
    /// A detector that needs CUSUM evidence above `threshold` sigmas and `stable_points` points
    /// at the new level.
    pub fn new(threshold: f64, stable_points: usize) -> Self {
        Self {
            cusum: Cusum::new(0.5),
            threshold,
            stable_points: stable_points.max(2),
            recent: VecDeque::with_capacity(stable_points.max(2)),
            carried: false,
        }
    }

    /// Points the new level must hold before a shift is confirmed.
    pub fn stable_points(&self) -> usize {
        self.stable_points
    }

    /// The signed CUSUM statistic in sigmas.
    pub fn evidence(&self) -> f64 {
        self.cusum.statistic()
    }

    /// The side (+1 upward, -1 downward) of a shift in progress that the last point carried
    /// (pending evidence, the point beyond one scale from the old level on its side), or 0.
    pub fn carried_by_last(&self) -> f64 {
        if self.carried { self.cusum.statistic().signum() } else { 0.0 }
    }

    /// Feed one judged point: its standardised residual `z`, its deseasonalised value, the
    /// current level and scale. Returns a shift once the evidence is strong and the new level
    /// has been stable for `stable_points` points.
    pub fn observe(&mut self, z: f64, deseasonalized: f64, level: f64, scale: f64) -> Option<Shift> {
        let statistic = self.cusum.update(z);
        if self.recent.len() == self.stable_points {
            self.recent.pop_front();
        }
        self.recent.push_back(deseasonalized);
        self.carried = statistic.abs() >= self.threshold && (deseasonalized - level) * statistic.signum() > scale;
        if statistic.abs() < self.threshold || self.recent.len() < self.stable_points {
            return None;
        }
        let new_level = median_of(self.recent.iter().copied())?;
        let spread = median_of(self.recent.iter().map(|v| (v - new_level).abs()))? * MAD_TO_SIGMA;
        let moved = (new_level - level) * statistic.signum();
        // Every recent point on the new side (past the midpoint between the levels), the new
        // level well away from the old one and about as tight as the usual noise: a stable
        // shift, not a burst of noise. (A point one scale past the old level was enough: a unit
        // mistake of two days, back to normal on the third, was re-baselined on that third
        // day, the median of its two wrong values being the "new level", and the next normal
        // day alerted against it.)
        let past_midpoint = (moved / 2.0).max(scale);
        let all_on_new_side = self.recent.iter().all(|v| (v - level) * statistic.signum() > past_midpoint);
        if moved > 3.0 * scale && spread <= 2.0 * scale && all_on_new_side {
            let points = self.recent.len();
            self.reset();
            return Some(Shift { new_level, points });
        }
        None
    }

    /// Forget evidence and recent values.
    pub fn reset(&mut self) {
        self.cusum.reset();
        self.recent.clear();
        self.carried = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cusum_accumulates_small_persistent_drift_only() {
        let mut cusum = Cusum::new(0.5);
        for _ in 0..100 {
            cusum.update(0.3);
        }
        assert_eq!(cusum.statistic(), 0.0, "drift below the allowance is ignored");
        for _ in 0..10 {
            cusum.update(1.5);
        }
        assert!((cusum.statistic() - 10.0).abs() < 1e-9);
        cusum.reset();
        cusum.update(-2.0);
        assert!((cusum.statistic() + 1.5).abs() < 1e-9);
    }

    #[test]
    fn a_burst_that_ended_is_no_new_level() {
        // Two points ten sigmas down, then one back near the old level (1.5 sigmas below it):
        // the median of the three is the burst's level, but the last point is not there.
        let mut detector = LevelShiftDetector::new(5.0, 3);
        for _ in 0..10 {
            assert_eq!(detector.observe(0.0, 0.0, 0.0, 1.0), None);
        }
        assert_eq!(detector.observe(-10.0, -10.0, 0.0, 1.0), None);
        assert_eq!(detector.observe(-10.0, -10.0, 0.0, 1.0), None);
        assert_eq!(detector.observe(-1.5, -1.5, 0.0, 1.0), None);
        // A third point at the new level confirms it.
        let mut detector = LevelShiftDetector::new(5.0, 3);
        detector.observe(-10.0, -10.0, 0.0, 1.0);
        detector.observe(-10.0, -10.0, 0.0, 1.0);
        let shift = detector.observe(-9.2, -9.2, 0.0, 1.0).expect("a stable new level");
        assert!((shift.new_level + 10.0).abs() < 1e-9, "{shift:?}");
    }

    #[test]
    fn a_stable_new_level_is_confirmed_once() {
        let mut detector = LevelShiftDetector::new(5.0, 4);
        let mut shifts = Vec::new();
        let mut level = 0.0;
        for i in 0..20 {
            let value = if i < 5 { 0.0 } else { 10.0 + (i % 2) as f64 * 0.1 };
            let z = value - level;
            if let Some(shift) = detector.observe(z, value, level, 1.0) {
                level = shift.new_level;
                shifts.push((i, shift));
            }
        }
        assert_eq!(shifts.len(), 1, "{shifts:?}");
        assert!((shifts[0].1.new_level - 10.05).abs() < 0.1);
    }
}
