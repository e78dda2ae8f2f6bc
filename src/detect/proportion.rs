//! Proportions such as the null rate: a beta-binomial model of `count` out of `total` rows.
//!
//! The baseline rate is pooled over the training window; batch-to-batch variation beyond
//! binomial sampling becomes the beta-binomial's overdispersion. A point is anomalous when it
//! is improbable even under a rate moved by the minimum relevant change (half a percentage
//! point plus `min_change` of the rate), so 1 null in 10 rows after a clean history is not an
//! incident while 500 in 5 000 is. No z-scores: tails are summed exactly, which stays right
//! for rates near 0 and 1.

use std::collections::VecDeque;
use std::sync::Arc;

use statrs::function::beta::beta_reg;
use statrs::function::gamma::ln_gamma;

use super::explanation::ProportionParts;
use super::seasonal::Judgement;
use super::settings::{Direction, MetricClass, Settings};
use super::verdict::{Confidence, Deviation, Expected};
use super::{Counts, Point};

/// Smallest rate change (absolute) that is ever worth an alert.
const MIN_ABSOLUTE_CHANGE: f64 = 0.005;
/// Rows assumed behind a rate reported without counts.
const ROWS_WITHOUT_COUNTS: u64 = 100;
/// Batches remembered by default.
const DEFAULT_WINDOW: usize = 500;
/// A batch whose normal-approximation tail probability exceeds this many times the false-alarm
/// rate (and 1 %) is scored with it instead of the exact tail sum.
const UNREMARKABLE_FACTOR: f64 = 1_000.0;
/// Standard deviations (binomial plus between-batch, normal approximation) beyond which a
/// learned batch is clipped.
const LEARNED_SIGMAS: f64 = 3.0;
/// Batches learned as they came before the clipping starts.
const WINSORISED_AFTER: usize = 3;
/// Batches after which the clipping is at `LEARNED_SIGMAS` (before: the cold start, whose
/// spread rests on a few batches, clips at `EARLY_LEARNED_SIGMAS`).
const WINSORISED_FULLY_AFTER: usize = 5;
const EARLY_LEARNED_SIGMAS: f64 = 4.0;
/// Fewest batches judged (the cold start of a proportion).
const MIN_JUDGED_BATCHES: usize = 4;
/// The between-batch variance of four batches is taken at its 99 % upper confidence bound:
/// 3 over the 1 % quantile of χ² with 3 degrees of freedom (0.115). Four batches of a 22 %
/// table that happened to lie within 0.3 points of each other made a range of 21.4–23.6 %.
const FOUR_BATCH_VARIANCE_BOUND: f64 = 26.1;
/// Longest exact tail summation before falling back to a normal approximation (only reached
/// far from the tails, where precision does not matter).
const MAX_TERMS: usize = 20_000;

/// P(X >= k) for X ~ BetaBinomial(n, mean, between-batch variance); binomial when the
/// variance is negligible.
pub fn upper_tail(k: u64, n: u64, mean: f64, between_variance: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let mean = mean.clamp(0.0, 1.0);
    if mean <= 0.0 {
        return 0.0;
    }
    if mean >= 1.0 {
        return 1.0;
    }
    let concentration =
        if between_variance > 1e-15 { mean * (1.0 - mean) / between_variance - 1.0 } else { f64::INFINITY };
    if !concentration.is_finite() || concentration > 1e7 || concentration <= 0.0 {
        return beta_reg(k as f64, (n - k + 1) as f64, mean).clamp(0.0, 1.0);
    }
    let (a, b) = (mean * concentration, (1.0 - mean) * concentration);
    if (k as f64) > n as f64 * mean {
        sum_upper(k, n, a, b).unwrap_or_else(|| normal_upper(k, n, mean, between_variance))
    } else {
        // P(X >= k) = 1 - P(X <= k-1) = 1 - P(n-X >= n-k+1), with n-X ~ BB(n, b, a).
        match sum_upper(n - k + 1, n, b, a) {
            Some(lower) => (1.0 - lower).clamp(0.0, 1.0),
            None => normal_upper(k, n, mean, between_variance),
        }
    }
}

/// P(X <= k) under the same model.
pub fn lower_tail(k: u64, n: u64, mean: f64, between_variance: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    upper_tail(n - k, n, 1.0 - mean, between_variance)
}

fn ln_pmf(x: u64, n: u64, a: f64, b: f64) -> f64 {
    let (x, n) = (x as f64, n as f64);
    ln_gamma(n + 1.0) - ln_gamma(x + 1.0) - ln_gamma(n - x + 1.0) + ln_gamma(x + a) + ln_gamma(n - x + b)
        - ln_gamma(n + a + b)
        - (ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b))
}

/// Sum the beta-binomial pmf from `k` upwards with the ratio recursion.
fn sum_upper(k: u64, n: u64, a: f64, b: f64) -> Option<f64> {
    let mut term = ln_pmf(k, n, a, b).exp();
    let mut total = term;
    let mut x = k;
    let mut steps = 0;
    while x < n {
        let xf = x as f64;
        let nf = n as f64;
        term *= (nf - xf) * (xf + a) / ((xf + 1.0) * (nf - xf - 1.0 + b));
        total += term;
        x += 1;
        steps += 1;
        if term <= total * 1e-15 {
            break;
        }
        if steps > MAX_TERMS {
            return None;
        }
    }
    Some(total.clamp(0.0, 1.0))
}

fn normal_upper(k: u64, n: u64, mean: f64, between_variance: f64) -> f64 {
    let nf = n as f64;
    let variance = nf * mean * (1.0 - mean) + nf * nf * between_variance;
    let z = (k as f64 - 0.5 - nf * mean) / variance.sqrt().max(1e-12);
    super::stats::normal_sf(z)
}

/// Streaming beta-binomial model of one rate series.
#[derive(Debug, Clone)]
pub struct ProportionModel {
    batches: VecDeque<Counts>,
    /// Running sums over `batches`: rows matching, rows, Σ count²/total, Σ total².
    sums: (u64, u64, f64, f64),
    capacity: usize,
    alpha: f64,
    direction: Direction,
    min_change: f64,
}

impl ProportionModel {
    /// A model with the settings' sensitivity, direction and minimum change.
    pub fn new(settings: &Settings) -> Self {
        Self {
            batches: VecDeque::new(),
            sums: (0, 0, 0.0, 0.0),
            capacity: DEFAULT_WINDOW,
            alpha: settings.sensitivity.false_alarm_rate(),
            direction: settings.direction_for(MetricClass::Proportion),
            min_change: settings.min_change_for(MetricClass::Proportion),
        }
    }

    /// The series is sampled about every `step` seconds: the sensitivity is a false-alarm rate
    /// per day, so each point gets its share of it.
    pub(crate) fn sampled_every(mut self, step: i64) -> Self {
        self.alpha *= (step.max(1) as f64 / super::calendar::DAY as f64).min(1.0);
        self
    }

    fn counts_of(point: &Point) -> Counts {
        point.counts.unwrap_or(Counts {
            count: (point.value.clamp(0.0, 1.0) * ROWS_WITHOUT_COUNTS as f64).round() as u64,
            total: ROWS_WITHOUT_COUNTS,
        })
    }

    /// Learn from a batch.
    pub fn learn(&mut self, point: &Point) {
        let mut counts = Self::counts_of(point);
        if counts.total == 0 {
            return;
        }
        // Winsorised: a batch beyond three of its standard deviations is learned at that edge,
        // so a past spike, judged or not, cannot widen the between-batch variance for the next
        // 500 batches (the next spike would be within it), while a variance that was
        // underestimated still grows (an edge adds nine times its variance). From the third
        // batch on, so that a spike in the cold start does not hide its own later buckets;
        // until the fifth the spread rests on a few batches and the edge is at four. Only on
        // a side that alerts: a drop of a null rate is no incident, and clipping it would only
        // shrink an early variance.
        if self.batches.len() >= WINSORISED_AFTER
            && let Some((rate, between)) = self.baseline()
        {
            let n = counts.total as f64;
            let sigmas =
                if self.batches.len() < WINSORISED_FULLY_AFTER { EARLY_LEARNED_SIGMAS } else { LEARNED_SIGMAS };
            let spread = sigmas * (rate * (1.0 - rate) / n + between).sqrt();
            let high = if self.direction.allows(true) { ((rate + spread).min(1.0) * n).ceil() } else { n };
            let low = if self.direction.allows(false) { ((rate - spread).max(0.0) * n).floor() } else { 0.0 };
            counts.count = (counts.count as f64).clamp(low, high.max(low)) as u64;
        }
        if self.batches.len() == self.capacity
            && let Some(old) = self.batches.pop_front()
        {
            self.add(old, -1.0);
        }
        self.batches.push_back(counts);
        self.add(counts, 1.0);
    }

    fn add(&mut self, counts: Counts, sign: f64) {
        let (count, total) = (counts.count as f64, counts.total as f64);
        if sign > 0.0 {
            self.sums.0 += counts.count;
            self.sums.1 += counts.total;
        } else {
            self.sums.0 -= counts.count;
            self.sums.1 -= counts.total;
        }
        self.sums.2 += sign * count * count / total;
        self.sums.3 += sign * total * total;
    }

    /// Pooled rate and between-batch variance of the training window.
    ///
    /// The variance is the method-of-moments estimate with each batch weighted by its rows
    /// (DerSimonian–Laird): Σ total·(r - rate)² has expectation (batches - 1)·rate(1 - rate)
    /// from sampling plus (rows - Σ total²/rows) times the between-batch variance. Unweighted
    /// squared deviations let a batch of 50 rows weigh as much as one of 300, and its
    /// sampling noise (5 nulls of 54 on a 3 % table) made a between-batch sd of two points.
    pub fn baseline(&self) -> Option<(f64, f64)> {
        if self.batches.is_empty() {
            return None;
        }
        let (count, total, sum_weighted_squares, sum_total_squares) = self.sums;
        let (count, total) = (count as f64, total as f64);
        let rate = (count + 0.5) / (total + 1.0);
        if self.batches.len() < 2 {
            return Some((rate, 0.0));
        }
        // Σ total·(r - rate)² from the running sums.
        let observed = (sum_weighted_squares - 2.0 * rate * count + rate * rate * total).max(0.0);
        let sampling = (self.batches.len() - 1) as f64 * rate * (1.0 - rate);
        let rows = (total - sum_total_squares / total).max(1e-12);
        Some((rate, ((observed - sampling) / rows).max(0.0)))
    }

    /// Internal state summary for debugging and tuning: batches, rate, between-batch sd.
    pub(crate) fn debug_state(&self) -> String {
        match self.baseline() {
            Some((rate, between)) => {
                format!("[n={} rate={:.4} sd={:.4}]", self.batches.len(), rate, between.sqrt())
            }
            None => String::new(),
        }
    }

    pub(crate) fn judge(&self, point: &Point) -> Option<Judgement> {
        if self.batches.len() < MIN_JUDGED_BATCHES {
            return None;
        }
        let (rate, mut between) = self.baseline()?;
        if self.batches.len() == MIN_JUDGED_BATCHES {
            between *= FOUR_BATCH_VARIANCE_BOUND;
        }
        let counts = Self::counts_of(point);
        let (k, n) = (counts.count, counts.total);
        let observed = if n == 0 { 0.0 } else { k as f64 / n as f64 };
        let margin = MIN_ABSOLUTE_CHANGE + self.min_change * rate;
        let up_mean = (rate + margin).min(1.0);
        let down_mean = (rate - margin).max(0.0);
        // Exact tails only where they matter: a count on the near side of the mean has a tail
        // probability above one half, which the normal approximation gives well and cheaply,
        // and so does a count whose approximate tail is a thousand times the false-alarm rate
        // (at least 1 %: the score of an unremarkable batch, far from any threshold, even where
        // skewness makes the approximation several times off).
        let unremarkable = (self.alpha * UNREMARKABLE_FACTOR).clamp(0.01, 0.5);
        let p_up = if self.direction == Direction::Down {
            1.0
        } else if (k as f64) <= n as f64 * up_mean {
            normal_upper(k, n, up_mean, between)
        } else {
            let approximate = normal_upper(k, n, up_mean, between);
            if approximate > unremarkable { approximate } else { upper_tail(k, n, up_mean, between) }
        };
        let p_down = if down_mean <= 0.0 || self.direction == Direction::Up {
            1.0
        } else if (k as f64) >= n as f64 * down_mean {
            normal_upper(n - k, n, 1.0 - down_mean, between)
        } else {
            let approximate = normal_upper(n - k, n, 1.0 - down_mean, between);
            if approximate > unremarkable { approximate } else { lower_tail(k, n, down_mean, between) }
        };
        let p = match self.direction {
            Direction::Up => p_up,
            Direction::Down => p_down,
            Direction::Both => (2.0 * p_up.min(p_down)).min(1.0),
        };
        let score = -p.max(1e-300).log10();
        let side = if observed > rate {
            Some(Deviation::Above)
        } else if observed < rate {
            Some(Deviation::Below)
        } else {
            None
        };
        let anomaly = n > 0 && p < self.alpha && side.is_some_and(|s| self.direction.allows(s == Deviation::Above));
        // The range shown is a normal approximation of the same beta-binomial quantiles (the
        // exact tail sums above decide; a range needs no 20 of them).
        let z = super::stats::normal_upper_quantile(self.alpha / 2.0);
        let spread = |mean: f64| (mean * (1.0 - mean) / n.max(1) as f64 + between).sqrt();
        let high = (up_mean + z * spread(up_mean)).min(1.0).max(rate);
        let low = if down_mean <= 0.0 { 0.0 } else { (down_mean - z * spread(down_mean)).max(0.0).min(rate) };
        let confidence = match self.batches.len() {
            0..=9 => Confidence::Low,
            10..=49 => Confidence::Medium,
            _ => Confidence::High,
        };
        Some(Judgement {
            expected: Expected { low, high, forecast: rate },
            score: score.max(0.0),
            anomaly,
            side,
            event: None,
            confidence,
            context: String::new(),
            at: point.timestamp,
            relative_change: None,
            early_load: false,
            carried: false,
            mode: None,
        })
    }

    pub(crate) fn explain(&self, noun: &Arc<str>, point: &Point, judgement: &Judgement) -> ProportionParts {
        let counts = Self::counts_of(point);
        ProportionParts {
            noun: Arc::clone(noun),
            rate: point.value,
            counts: point.counts.map(|_| (counts.count, counts.total)),
            total: counts.total,
            low: judgement.expected.low,
            high: judgement.expected.high,
            rebaselined: false,
            note: "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_match_the_binomial_when_there_is_no_overdispersion() {
        // P(X >= 1 | n = 10, p = 0.1) = 1 - 0.9^10.
        let expected = 1.0 - 0.9f64.powi(10);
        assert!((upper_tail(1, 10, 0.1, 0.0) - expected).abs() < 1e-9);
        // Overdispersion fattens the tail.
        assert!(upper_tail(5, 10, 0.1, 0.01) > upper_tail(5, 10, 0.1, 0.0));
        // Upper and lower tails agree with each other.
        let total = upper_tail(4, 20, 0.2, 0.002) + lower_tail(3, 20, 0.2, 0.002);
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }

    fn model_with_clean_history() -> ProportionModel {
        let mut model = ProportionModel::new(&Settings::default());
        // 2 % of 100 rows, less dispersed than binomial sampling: no between-batch variance.
        for (i, count) in [1, 2, 3, 2].iter().cycle().take(60).enumerate() {
            model.learn(&Point::rate(i as i64 * 86_400, *count, 100));
        }
        model
    }

    #[test]
    fn a_learned_spike_does_not_widen_the_range_for_the_next_one() {
        let mut model = model_with_clean_history();
        let next = Point::rate(61 * 86_400, 12, 100);
        assert!(model.judge(&next).is_some_and(|j| j.anomaly), "12 of 100 after a clean 2 % history");
        // A spike learned as it came (30 of 100 once) made the between-batch sd 3.6 points:
        // 12 of 100 was within the range.
        model.learn(&Point::rate(60 * 86_400, 30, 100));
        let (rate, between) = model.baseline().unwrap();
        assert!(rate < 0.022 && between.sqrt() < 0.01, "rate {rate} sd {}", between.sqrt());
        let judgement = model.judge(&next).unwrap();
        assert!(judgement.anomaly, "{:?}", judgement.expected);
    }

    #[test]
    fn a_small_batch_s_sampling_noise_is_not_taken_for_dispersion() {
        // Daily batches of about 300 rows at 3 % nulls, and one of 54 rows with 5 nulls: as
        // binomial as the rest, once its size is taken into account.
        let mut model = ProportionModel::new(&Settings::default());
        let batches = [(9, 300), (10, 310), (5, 54), (9, 290), (8, 305), (10, 320), (9, 295), (9, 300)];
        for (i, (count, total)) in batches.iter().enumerate() {
            model.learn(&Point::rate(i as i64 * 86_400, *count, *total));
        }
        let (rate, between) = model.baseline().unwrap();
        assert!((rate - 0.03).abs() < 0.002, "rate {rate}");
        // Unweighted squared deviations made it 1.7 points.
        assert!(between.sqrt() < 0.005, "sd {}", between.sqrt());
        // A null spike of +10 points on 278 rows.
        let judgement = model.judge(&Point::rate(9 * 86_400, 38, 278)).unwrap();
        assert!(judgement.anomaly, "{:?}", judgement.expected);
    }

    #[test]
    fn a_spike_in_the_cold_start_does_not_hide_its_later_buckets() {
        // No nulls in three batches, then a spike of 10 % that began in the cold start (its
        // first two buckets learned without a verdict) and goes on.
        let mut model = ProportionModel::new(&Settings::default());
        for (i, count) in [0, 0, 0, 100, 100].iter().enumerate() {
            model.learn(&Point::rate(i as i64 * 86_400, *count, 1_000));
        }
        // Learned as they came, the two spiked batches made the range reach 36 %.
        let judgement = model.judge(&Point::rate(5 * 86_400, 100, 1_000)).unwrap();
        assert!(judgement.anomaly, "{:?}", judgement.expected);
    }

    #[test]
    fn the_cold_start_clips_at_four_standard_deviations_not_three() {
        // 20 % of 1 000 rows in three batches (sd 1.26 points, binomial): 24.5 % is 3.6 sds
        // above, within what a spread estimated from three batches may have missed.
        let mut model = ProportionModel::new(&Settings::default());
        for (i, count) in [190, 200, 210, 245].iter().enumerate() {
            model.learn(&Point::rate(i as i64 * 86_400, *count, 1_000));
        }
        assert_eq!(model.batches.back().map(|c| c.count), Some(245));
        // Past the cold start the edge is at three: 3.6 sds is clipped.
        for i in 4..40 {
            model.learn(&Point::rate(i * 86_400, 200, 1_000));
        }
        model.learn(&Point::rate(40 * 86_400, 245, 1_000));
        assert!(model.batches.back().is_some_and(|c| c.count < 245));
    }

    #[test]
    fn four_batches_that_lie_close_together_do_not_make_a_narrow_range() {
        // 22.5 % of 240 000 rows, four batches within 0.3 points (sampling sd 0.085 points).
        let mut model = ProportionModel::new(&Settings::default());
        for (i, count) in [54_000, 54_700, 53_800, 54_500].iter().enumerate() {
            model.learn(&Point::rate(i as i64 * 86_400, *count, 240_000));
        }
        let next = Point::rate(4 * 86_400, 57_600, 240_000);
        // Taken at face value, 24 % was an anomaly.
        assert!(!model.judge(&next).unwrap().anomaly);
        // A fifth batch as close together: the estimate is taken as it is.
        model.learn(&Point::rate(4 * 86_400, 54_200, 240_000));
        assert!(model.judge(&next).unwrap().anomaly);
        // Fewer than four batches are not judged.
        let mut young = ProportionModel::new(&Settings::default());
        for i in 0..3 {
            young.learn(&Point::rate(i * 86_400, 0, 1_000));
        }
        assert!(young.judge(&Point::rate(3 * 86_400, 100, 1_000)).is_none());
    }

    #[test]
    fn only_a_side_that_alerts_is_clipped() {
        // A null rate alerts only when it rises: a batch with few nulls is learned as it came.
        let learned = |direction: Direction| {
            let settings = Settings { direction: Some(direction), ..Settings::default() };
            let mut model = ProportionModel::new(&settings);
            for (i, count) in [195, 200, 205, 200].iter().cycle().take(40).enumerate() {
                model.learn(&Point::rate(i as i64 * 86_400, *count, 1_000));
            }
            model.learn(&Point::rate(40 * 86_400, 50, 1_000));
            model.baseline().unwrap().1
        };
        assert!(learned(Direction::Up) > 4.0 * learned(Direction::Both));
    }

    #[test]
    fn a_winsorised_variance_still_grows_when_the_batches_become_noisier() {
        let mut model = model_with_clean_history();
        // From now on the rate swings between 2 % and 12 % (between-batch sd 5 points): the
        // clipped batches still teach the model, and 12 of 100 stops being an incident.
        for i in 0..200 {
            model.learn(&Point::rate((60 + i) * 86_400, if i % 2 == 0 { 2 } else { 12 }, 100));
        }
        let (_, between) = model.baseline().unwrap();
        assert!(between.sqrt() > 0.03, "sd {}", between.sqrt());
        assert!(!model.judge(&Point::rate(300 * 86_400, 12, 100)).unwrap().anomaly);
    }
}
