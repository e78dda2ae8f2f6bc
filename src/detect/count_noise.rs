//! The noise of small counts: a few rows per bucket around their forecast.
//!
//! On a log scale a count of 4 rows and one of 40 are 2.3 apart whatever the forecast, so a
//! table that receives 0–12 rows an hour had a log-scale noise so wide (a zero is as far below
//! a forecast of 4 as 12 is above it) that its range read "0–645 rows" and a tenfold spike
//! scored below its threshold. Below [`LOW_COUNT`] forecast rows a count is instead judged by
//! its own distribution ([`CountNoise`]): a negative binomial with a mean and a variance of
//! `mean + dispersion · mean²` (Poisson when the dispersion is nil). Its mean is the counts'
//! own seasonal mean on the natural scale and its dispersion is measured around that mean
//! ([`CountMean`]); until the hour was seen a few times the log-scale forecast and the part of
//! its noise beyond the Poisson floor stand in. A count's standardised residual is the normal
//! quantile of its mid-p tail probability (a randomised quantile residual without the
//! randomisation): 40 rows where 4 are expected is ~9 sigmas, an empty bucket ~2.4. The
//! calibration then measures these residuals like any other.

use statrs::function::gamma::ln_gamma;

use super::stats::{normal_sf, normal_upper_quantile};

/// Forecasts of fewer rows than this are judged by their count noise.
pub(crate) const LOW_COUNT: f64 = 15.0;
/// ... and of at least this many: below one row the forecast (a median of mostly empty
/// buckets) says too little of the mean.
pub(crate) const LOW_COUNT_MIN: f64 = 1.0;
/// Below one forecast row, the count noise applies to tables of at least this many rows a
/// bucket in all (their overall mean).
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

    /// `P(X = x)`.
    pub(crate) fn pmf(&self, x: f64) -> f64 {
        self.ln_pmf(x).exp()
    }

    /// `(P(X <= x), P(X >= x))` for a count `x` up to a few hundred.
    pub(crate) fn tails(&self, x: f64) -> (f64, f64) {
        let (below, at) = self.below_and_at(x);
        (below + at, at + self.above(x, at))
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

/// Days an hour-of-day slot's mean is averaged over (exponentially) ...
const SLOT_SPAN: f64 = 21.0;
/// ... occurrences of a weekday its ratio is averaged over ...
const WEEKDAY_SPAN: f64 = 4.0;
/// ... and points the dispersion's moments are averaged over.
const MOMENT_SPAN: f64 = 24.0 * 28.0;
/// A slot mean seen `n` times is shrunk towards the overall mean as if this many more
/// occurrences had brought that.
const SLOT_PRIOR: f64 = 3.0;
/// Occurrences of its slot before a mean is given.
const SLOT_MIN_SEEN: u32 = 3;
/// Counts beyond this many standard deviations of their mean are clipped there before they
/// enter the means and the moments (a spike teaches neither) ...
const CLIP_SD: f64 = 4.0;
/// ... the standard deviations of a dispersion of at most this much.
const MAX_CLIP_DISPERSION: f64 = 0.25;
/// Points the level's drift is measured over; the standard errors and the least factor by
/// which it must stray to move the means; and the days learned before it may.
const DRIFT_SPAN: f64 = 24.0;
const DRIFT_SD: f64 = 4.0;
const DRIFT_MIN: f64 = 1.25;
const DRIFT_MIN_DAYS: u32 = 14;

/// The natural-scale seasonal mean of a small count, and its dispersion measured on the counts
/// around that mean (running sums: O(1) per point). The log-scale model's forecast, a median of
/// `ln(1 + rows)`, is a coarse estimate of the mean of a few rows (off by 30–50 %), and the
/// dispersion it implies takes that error for noise.
///
/// The mean of a bucket is its hour-of-day slot's mean (exponentially weighted over about
/// [`SLOT_SPAN`] days, shrunk towards the overall mean while few days were seen) times its
/// weekday's ratio (the weekday's mean per bucket over the overall one). The dispersion is the
/// method of moments, `Σ((x − μ)² − x) / Σ μ²`, over about [`MOMENT_SPAN`] points. When the
/// last day's rows stray from their means by a factor of 1.25 and four standard errors, every
/// mean moves by that factor (weighted over weeks, the means would lag a change of level, and
/// their error would read as dispersion).
#[derive(Debug, Clone)]
pub(crate) struct CountMean {
    /// Per hour-of-day slot: mean rows and occurrences.
    slots: Vec<(f64, u32)>,
    /// Per weekday: mean rows per bucket of its days, and days.
    weekdays: [(f64, u32); 7],
    /// Mean rows per bucket of all days, and days.
    overall: (f64, u32),
    /// The day being summed: its local midnight, weekday, rows and buckets.
    day: Option<(i64, usize, f64, f64)>,
    /// Weighted sums of `(x − μ)² − x` and of `μ²`.
    moments: (f64, f64),
    /// Weighted sums of the last points' rows and means (their ratio is the level's drift).
    drift: (f64, f64),
}

impl CountMean {
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            slots: vec![(0.0, 0); slots.max(1)],
            weekdays: [(0.0, 0); 7],
            overall: (0.0, 0),
            day: None,
            moments: (0.0, 0.0),
            drift: (0.0, 0.0),
        }
    }

    /// The mean of a bucket in `slot` on `weekday`, `None` while the slot was seen too rarely.
    pub(crate) fn mean(&self, slot: usize, weekday: usize) -> Option<f64> {
        let (slot_mean, seen) = self.slots[slot];
        let (overall, days) = self.overall;
        if seen < SLOT_MIN_SEEN || days == 0 {
            return None;
        }
        let n = seen as f64;
        let shrunk = (n * slot_mean + SLOT_PRIOR * overall) / (n + SLOT_PRIOR);
        let (weekday_mean, weekday_days) = self.weekdays[weekday];
        let ratio = if weekday_days == 0 || overall <= 0.0 {
            1.0
        } else {
            let k = weekday_days as f64;
            1.0 + (weekday_mean / overall - 1.0) * k / (k + 1.0)
        };
        Some(shrunk * ratio)
    }

    /// Mean rows per bucket over the last weeks' days (nil before a day was closed).
    pub(crate) fn overall_mean(&self) -> f64 {
        self.overall.0
    }

    /// The dispersion measured so far (nil while nothing was measured).
    pub(crate) fn dispersion(&self) -> f64 {
        let (excess, squares) = self.moments;
        if squares > 0.0 { (excess / squares).max(0.0) } else { 0.0 }
    }

    /// Learn a bucket of `value` rows in `slot` on the local day starting at `day`.
    pub(crate) fn learn(&mut self, day: i64, weekday: usize, slot: usize, value: f64) {
        if self.day.is_some_and(|(current, ..)| current != day) {
            self.close_day();
        }
        let x = value.max(0.0);
        let x = match self.mean(slot, weekday) {
            Some(mean) => {
                // (The spread the clip allows is bounded: a mean lagging a change of level
                // would otherwise widen its own clip, point after point.)
                let variance = mean * (1.0 + self.dispersion().min(MAX_CLIP_DISPERSION) * mean);
                let sd = variance.sqrt();
                // `(x − μ)² − x` has a standard deviation of about `√2 · variance`.
                let most = CLIP_SD * std::f64::consts::SQRT_2 * variance;
                let excess = ((x - mean) * (x - mean) - x).clamp(-most, most);
                let x = x.clamp((mean - CLIP_SD * sd).max(0.0), mean + CLIP_SD * sd + 1.0);
                // A level that moved (the seasonal means lag it by weeks, and their errors
                // would read as dispersion): the rows of the last day or two against their
                // means, beyond what noise makes of them, move every mean.
                let w = 1.0 / DRIFT_SPAN;
                self.drift.0 += w * (x - self.drift.0);
                self.drift.1 += w * (mean - self.drift.1);
                let (rows, means) = self.drift;
                // (From the third week: the first weekday ratios, shrunk, are off by more.)
                if means > 0.0 && self.overall.1 >= DRIFT_MIN_DAYS {
                    let ratio = rows / means;
                    // Standard error of the ratio over about `2 · DRIFT_SPAN` points.
                    let error = ((1.0 + self.dispersion() * means) / (means * 2.0 * DRIFT_SPAN)).sqrt();
                    if (ratio - 1.0).abs() > DRIFT_SD * error && !(1.0 / DRIFT_MIN..=DRIFT_MIN).contains(&ratio) {
                        self.rescale(ratio);
                        self.drift = (means * ratio, means * ratio);
                    }
                }
                let w = 1.0 / MOMENT_SPAN;
                self.moments.0 += w * (excess - self.moments.0);
                self.moments.1 += w * (mean * mean - self.moments.1);
                x
            }
            None => x,
        };
        let (slot_mean, seen) = &mut self.slots[slot];
        *seen += 1;
        *slot_mean += (x - *slot_mean) / (*seen as f64).min(SLOT_SPAN);
        let entry = self.day.get_or_insert((day, weekday, 0.0, 0.0));
        entry.2 += x;
        entry.3 += 1.0;
    }

    /// A change of level by `factor`: every mean moves with it.
    pub(crate) fn rescale(&mut self, factor: f64) {
        for (mean, _) in self.slots.iter_mut().chain(self.weekdays.iter_mut()) {
            *mean *= factor;
        }
        self.overall.0 *= factor;
        if let Some(day) = self.day.as_mut() {
            day.2 *= factor;
        }
    }

    fn close_day(&mut self) {
        let Some((_, weekday, rows, buckets)) = self.day.take() else {
            return;
        };
        if buckets == 0.0 {
            return;
        }
        let day_mean = rows / buckets;
        let (mean, days) = &mut self.weekdays[weekday];
        *days += 1;
        *mean += (day_mean - *mean) / (*days as f64).min(WEEKDAY_SPAN);
        let (mean, days) = &mut self.overall;
        *days += 1;
        *mean += (day_mean - *mean) / (*days as f64).min(SLOT_SPAN);
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

    /// Uniforms from a fixed linear congruential sequence.
    struct Uniform(u64);

    impl Uniform {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn poisson(&mut self, mean: f64) -> f64 {
            let u = self.next();
            let (mut k, mut term) = (0.0, (-mean).exp());
            let mut cumulative = term;
            while cumulative < u && k < 1_000.0 {
                k += 1.0;
                term *= mean / k;
                cumulative += term;
            }
            k
        }
    }

    /// Eight weeks of hourly counts: `hour_mean(h) · weekday_ratio(d) · day_factor`, Poisson.
    fn learn_weeks(day_factor: &mut dyn FnMut() -> f64, spikes: bool) -> (CountMean, Uniform) {
        let mut uniform = Uniform(7);
        let mut model = CountMean::new(24);
        for day in 0..56i64 {
            let weekday = (day % 7) as usize;
            let factor = day_factor();
            for hour in 0..24 {
                let mean = hour_mean(hour) * weekday_ratio(weekday) * factor;
                let mut value = uniform.poisson(mean);
                if spikes && day % 9 == 4 && hour == 13 {
                    value = 200.0;
                }
                model.learn(day * 86_400, weekday, hour, value);
            }
        }
        (model, uniform)
    }

    fn hour_mean(hour: usize) -> f64 {
        2.0 + 1.5 * ((hour as f64 - 14.0) / 24.0 * std::f64::consts::TAU).cos()
    }

    fn weekday_ratio(weekday: usize) -> f64 {
        if weekday >= 5 { 0.5 } else { 1.2 }
    }

    #[test]
    fn the_seasonal_mean_of_small_counts_follows_the_hour_and_the_weekday() {
        // Poisson counts of 0.25–4.2 rows an hour, with spikes of 200 rows now and then.
        let (model, _) = learn_weeks(&mut || 1.0, true);
        for weekday in [0, 3, 5] {
            for hour in [2, 8, 14, 20] {
                let truth = hour_mean(hour) * weekday_ratio(weekday);
                let mean = model.mean(hour, weekday).unwrap();
                // A median of ln(1 + rows) of these counts is off by 30–50 %.
                assert!((mean / truth - 1.0).abs() < 0.2, "{weekday} {hour}: {mean} for {truth}");
            }
        }
        // Poisson counts: no dispersion beyond the mean's own uncertainty, spikes or not.
        assert!(model.dispersion() < 0.07, "{}", model.dispersion());
        let (plain, _) = learn_weeks(&mut || 1.0, false);
        assert!(plain.dispersion() < 0.05, "{}", plain.dispersion());
        // Days of half or one and a half times the usual rows: a dispersion of about 0.25.
        let mut days = Uniform(11);
        let (varied, _) = learn_weeks(&mut || if days.next() < 0.5 { 0.5 } else { 1.5 }, false);
        assert!((0.12..0.45).contains(&varied.dispersion()), "{}", varied.dispersion());
        // No mean before a slot was seen three times.
        let mut fresh = CountMean::new(24);
        fresh.learn(0, 0, 5, 3.0);
        fresh.learn(86_400, 1, 5, 3.0);
        assert_eq!(fresh.mean(5, 2), None);
    }

    #[test]
    fn the_seasonal_mean_of_small_counts_follows_a_change_of_level_within_days() {
        // Three weeks of 2 rows an hour, then 6.
        let mut uniform = Uniform(3);
        let mut model = CountMean::new(24);
        for day in 0..24i64 {
            let level = if day < 21 { 2.0 } else { 6.0 };
            for hour in 0..24 {
                model.learn(day * 86_400, (day % 7) as usize, hour, uniform.poisson(level));
            }
        }
        // Weighted over three weeks the means would still read about 2.5 rows three days later.
        let mean = (0..24).map(|hour| model.mean(hour, 3).unwrap()).sum::<f64>() / 24.0;
        assert!((mean / 6.0 - 1.0).abs() < 0.2, "{mean}");
        assert!(model.dispersion() < 0.15, "{}", model.dispersion());
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
