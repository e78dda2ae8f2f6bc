//! The noise of small counts: a few rows per bucket around their forecast.
//!
//! On a log scale a count of 4 rows and one of 40 are 2.3 apart whatever the forecast, so a
//! table that receives 0–12 rows an hour had a log-scale noise so wide (a zero is as far below
//! a forecast of 4 as 12 is above it) that its range read "0–645 rows" and a tenfold spike
//! scored below its threshold. Below [`LOW_COUNT`] forecast rows a count is instead judged by
//! its own distribution: a negative binomial with the forecast as its mean and a variance of
//! `mean + dispersion · mean²` (Poisson when the dispersion is nil), where the dispersion is
//! the multiplicative noise the log-scale model measured beyond its Poisson floor. A count's
//! standardised residual is the normal quantile of its mid-p tail probability (a randomised
//! quantile residual without the randomisation): 40 rows where 4 are expected is ~9 sigmas,
//! an empty bucket ~2.4. The calibration then measures these residuals like any other.

use statrs::function::gamma::ln_gamma;

use super::stats::{normal_sf, normal_upper_quantile};

/// Forecasts of fewer rows than this are judged by their count noise.
pub(crate) const LOW_COUNT: f64 = 15.0;
/// ... and of at least this many: below one row the forecast (a median of mostly empty
/// buckets) says too little of the mean.
pub(crate) const LOW_COUNT_MIN: f64 = 1.0;
/// Below one forecast row, the last day's mean stands in for the mean from this many rows.
pub(crate) const LOW_COUNT_FLOOR: f64 = 0.25;
/// The most extreme residual reported (a tail probability of 1e-300).
const MAX_Z: f64 = 37.0;
/// A tail term this small relative to the tail's sum ends the sum.
const RELATIVE_EPSILON: f64 = 1e-10;
/// Dispersions below this are Poisson.
const POISSON_DISPERSION: f64 = 1e-9;

/// A negative binomial (or Poisson) distribution of a bucket's rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CountNoise {
    mean: f64,
    /// `variance = mean + dispersion · mean²`.
    dispersion: f64,
}

impl CountNoise {
    pub(crate) fn new(mean: f64, dispersion: f64) -> Self {
        Self { mean: mean.max(1e-9), dispersion: if dispersion > POISSON_DISPERSION { dispersion } else { 0.0 } }
    }

    fn is_poisson(&self) -> bool {
        self.dispersion == 0.0
    }

    /// `P(X = 0)`.
    fn first(&self) -> f64 {
        if self.is_poisson() {
            (-self.mean).exp()
        } else {
            (-(self.dispersion * self.mean).ln_1p() / self.dispersion).exp()
        }
    }

    /// `P(X = x + 1) / P(X = x)`.
    fn ratio(&self, x: f64) -> f64 {
        if self.is_poisson() {
            self.mean / (x + 1.0)
        } else {
            let spread = self.dispersion * self.mean;
            (x + 1.0 / self.dispersion) / (x + 1.0) * (spread / (1.0 + spread))
        }
    }

    /// `ln P(X = x)`, computed directly (for counts far above the mean).
    fn ln_pmf(&self, x: f64) -> f64 {
        if self.is_poisson() {
            x * self.mean.ln() - self.mean - ln_gamma(x + 1.0)
        } else {
            let r = 1.0 / self.dispersion;
            let spread = self.dispersion * self.mean;
            ln_gamma(x + r) - ln_gamma(r) - ln_gamma(x + 1.0) - r * spread.ln_1p() + x * (spread / (1.0 + spread)).ln()
        }
    }

    /// `P(X > x)` given `P(X = x)`: the terms above `x` summed until they no longer count.
    fn above(&self, x: f64, at: f64) -> f64 {
        let mut sum = 0.0;
        let mut term = at;
        let mut j = x;
        let mut ratio = self.ratio(j);
        loop {
            term *= ratio;
            j += 1.0;
            sum += term;
            if term == 0.0 || j - x > 100_000.0 {
                return sum;
            }
            // Past the mode the terms fall at least geometrically: what is left is below
            // `term · next / (1 − next)`.
            let next = self.ratio(j);
            if ratio < 1.0 && next < 1.0 {
                let rest = term * next / (1.0 - next);
                if rest <= RELATIVE_EPSILON * sum {
                    return sum + rest;
                }
            }
            ratio = next;
        }
    }

    /// `(P(X < x), P(X = x))` by the recurrence from zero (for `x` up to a few hundred).
    fn below_and_at(&self, x: f64) -> (f64, f64) {
        let mut below = 0.0;
        let mut term = self.first();
        let mut j = 0.0;
        while j < x {
            below += term;
            term *= self.ratio(j);
            j += 1.0;
        }
        (below, term)
    }

    /// The standardised residual of `value` rows: the normal `z` whose tail probability is
    /// the count's mid-p tail probability on its side of the mean (negative below it).
    pub(crate) fn z(&self, value: f64) -> f64 {
        let x = value.max(0.0).round();
        if x < self.mean {
            let (below, at) = self.below_and_at(x);
            -normal_upper_quantile(below + 0.5 * at).min(MAX_Z)
        } else {
            let ln_at = self.ln_pmf(x);
            if ln_at < -690.0 {
                return MAX_Z;
            }
            let at = ln_at.exp();
            normal_upper_quantile(self.above(x, at) + 0.5 * at).min(MAX_Z)
        }
    }

    /// The counts whose residual lies within `±threshold`: `(low, high)`, the smallest count
    /// not below `-threshold` and the largest not above `threshold`.
    pub(crate) fn range(&self, threshold: f64) -> (f64, f64) {
        let tail = normal_sf(threshold.min(MAX_Z)).max(1e-300);
        let floor = self.mean.floor();
        // Low: the first count whose lower mid-p reaches the tail; the same walk from zero
        // goes on to the mean's floor.
        let mut below = 0.0;
        let mut term = self.first();
        let mut x = 0.0;
        while x < self.mean && below + 0.5 * term < tail {
            below += term;
            term *= self.ratio(x);
            x += 1.0;
        }
        let low = x;
        while x < floor {
            term *= self.ratio(x);
            x += 1.0;
        }
        // High: walk up past the mean until a count's own probability is below the tail and
        // falling, then as far as its mid-p is too, then down, summing the tail above each
        // count, to the last count inside.
        let mut at = term;
        let mut steps = 0;
        loop {
            let ratio = self.ratio(x);
            if (at < tail && ratio < 1.0) || steps >= 100_000 {
                break;
            }
            at *= ratio;
            x += 1.0;
            steps += 1;
        }
        let mut above = self.above(x, at);
        while above + 0.5 * at >= tail && steps < 100_000 {
            above -= at * self.ratio(x);
            at *= self.ratio(x);
            x += 1.0;
            steps += 1;
            above = above.max(0.0);
        }
        while x > floor && above + 0.5 * at < tail {
            above += at;
            x -= 1.0;
            at /= self.ratio(x);
        }
        (low, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probabilities by brute force: the pmf summed from zero.
    fn brute(noise: &CountNoise, x: f64) -> (f64, f64, f64) {
        let mut term = noise.first();
        let (mut below, mut at, mut above) = (0.0, 0.0, 0.0);
        for j in 0..5_000 {
            let j = j as f64;
            if j < x {
                below += term;
            } else if j == x {
                at = term;
            } else {
                above += term;
            }
            term *= noise.ratio(j);
        }
        (below, at, above)
    }

    #[test]
    fn tail_probabilities_match_the_distribution_summed_from_zero() {
        for noise in [CountNoise::new(4.0, 0.0), CountNoise::new(2.5, 0.3), CountNoise::new(25.0, 0.05)] {
            for x in [0.0, 1.0, 3.0, 7.0, 20.0, 45.0] {
                let (below, at, above) = brute(&noise, x);
                assert!((below + at + above - 1.0).abs() < 1e-9);
                let (fast_below, fast_at) = noise.below_and_at(x);
                assert!((fast_below - below).abs() < 1e-12 && (fast_at - at).abs() < 1e-12, "{noise:?} {x}");
                assert!((noise.ln_pmf(x).exp() - at).abs() < 1e-9 * at.max(1e-300), "{noise:?} {x}");
                let fast_above = noise.above(x, at);
                assert!((fast_above - above).abs() <= 1e-9 * above.max(1e-300), "{noise:?} {x}: {fast_above} {above}");
            }
        }
    }

    #[test]
    fn poisson_residuals_have_the_normal_tail_of_their_probability() {
        let noise = CountNoise::new(4.0, 0.0);
        // P(X = 0) = e^-4 = 0.0183: mid-p 0.00916, z = -2.36.
        assert!((noise.z(0.0) + 2.359).abs() < 0.01, "{}", noise.z(0.0));
        // Ten times the mean is far out: P(X >= 40 | 4) is about 1e-23.
        assert!(noise.z(40.0) > 9.5, "{}", noise.z(40.0));
        assert!(noise.z(4.0).abs() < 0.5);
        // Residuals grow with the count and the dispersion widens them.
        let wide = CountNoise::new(4.0, 0.5);
        for x in [8.0, 12.0, 20.0, 40.0] {
            assert!(noise.z(x) > noise.z(x - 1.0));
            assert!(wide.z(x) < noise.z(x));
        }
        assert_eq!(noise.z(1e9), MAX_Z);
    }

    #[test]
    fn the_range_holds_exactly_the_counts_within_the_threshold() {
        for noise in [CountNoise::new(1.3, 0.0), CountNoise::new(6.0, 0.2), CountNoise::new(29.0, 0.02)] {
            for threshold in [2.0, 4.5, 6.0, 9.0] {
                let (low, high) = noise.range(threshold);
                assert!(low <= noise.mean && high >= noise.mean.floor(), "{noise:?} {threshold}: {low} {high}");
                assert!(noise.z(high) <= threshold && noise.z(high + 1.0) > threshold, "{noise:?} {threshold}: {high}");
                if low > 0.0 {
                    assert!(noise.z(low) >= -threshold && noise.z(low - 1.0) < -threshold, "{noise:?} {threshold}");
                }
            }
        }
        // A forecast of 5 rows with Poisson noise: a hundred rows is out at any threshold below
        // the most extreme residual, and nothing low is at 4.5 sigmas (an empty bucket is 2.6).
        let (low, high) = CountNoise::new(5.0, 0.0).range(4.5);
        assert_eq!(low, 0.0);
        assert!((14.0..=20.0).contains(&high), "{high}");
    }
}
