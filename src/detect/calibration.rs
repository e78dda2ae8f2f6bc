//! Per-series calibration: thresholds from the series' own past residuals, so that one
//! sensitivity means the same false-alarm rate on a smooth table and on a spiky one.
//!
//! Standardised residuals `|z|` are compared with a reference distribution (normal, or
//! Student-t while history is short). Where the series' empirical quantile of past `|z|` at
//! the most extreme level the history can support (split-conformal style) lies above or below
//! the reference quantile, scores are rescaled by that ratio, the *inflation*. Heavy-tailed
//! series thus get wider ranges, and well-behaved ones keep the nominal ones.

use super::stats::{SortedWindow, normal_upper_quantile};

/// Fewest past residuals before the empirical tail is trusted.
const MIN_RESIDUALS: usize = 30;
/// Recompute the inflation every this many observations (it moves slowly).
const REFRESH_EVERY: usize = 8;
/// Bounds of the inflation factor.
const INFLATION_RANGE: (f64, f64) = (0.8, 25.0);

/// Rolling conformal calibrator of absolute standardised residuals.
#[derive(Debug, Clone)]
pub struct Calibrator {
    residuals: SortedWindow,
    inflation: f64,
    since_refresh: usize,
}

impl Calibrator {
    /// A calibrator that remembers the last `capacity` residuals.
    pub fn new(capacity: usize) -> Self {
        Self {
            residuals: SortedWindow::new(capacity),
            inflation: 1.0,
            since_refresh: 0,
        }
    }

    /// Record the absolute standardised residual of a point that has just been judged
    /// (so every judgement only sees residuals of its past).
    pub fn observe(&mut self, abs_z: f64) {
        self.residuals.push(abs_z.abs());
        self.since_refresh += 1;
        if self.since_refresh >= REFRESH_EVERY {
            self.refresh();
        }
    }

    /// Number of residuals the calibration rests on.
    pub fn len(&self) -> usize {
        self.residuals.len()
    }

    /// Whether no residual was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.residuals.is_empty()
    }

    /// Ratio of the series' empirical residual tail to the normal one (1 = nominal).
    pub fn inflation(&self) -> f64 {
        self.inflation
    }

    /// Conformal p-value of `abs_z`: the share of past residuals at least as large (+1).
    pub fn conformal_p_value(&self, abs_z: f64) -> f64 {
        (self.residuals.count_at_least(abs_z) + 1) as f64 / (self.residuals.len() + 1) as f64
    }

    fn refresh(&mut self) {
        self.since_refresh = 0;
        let n = self.residuals.len();
        if n < MIN_RESIDUALS {
            self.inflation = 1.0;
            return;
        }
        // The most extreme two-sided tail level that still has ~10 residuals beyond it.
        let tail = (10.0 / (n as f64 + 1.0)).max(0.01);
        let Some(empirical) = self.residuals.quantile(1.0 - tail) else {
            return;
        };
        let reference = normal_upper_quantile(tail / 2.0);
        if reference > 0.0 && empirical.is_finite() {
            self.inflation = (empirical / reference).clamp(INFLATION_RANGE.0, INFLATION_RANGE.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_tails_inflate_and_normal_tails_do_not() {
        // Deterministic quasi-normal residuals via the inverse CDF on a grid.
        let mut normal = Calibrator::new(1_000);
        let mut heavy = Calibrator::new(1_000);
        for i in 0..1_000 {
            let u = (i as f64 + 0.5) / 1_000.0;
            let z = normal_upper_quantile(u / 2.0);
            normal.observe(z);
            heavy.observe(z * 3.0);
        }
        assert!(
            (normal.inflation() - 1.0).abs() < 0.1,
            "{}",
            normal.inflation()
        );
        assert!(heavy.inflation() > 2.5, "{}", heavy.inflation());
        assert!(normal.conformal_p_value(100.0) < 0.002);
        assert!((normal.conformal_p_value(0.0) - 1.0).abs() < 1e-12);
    }
}
