//! Per-series calibration: thresholds from the series' own past residuals, so that one
//! sensitivity means the same false-alarm rate on a smooth table and on a spiky one.
//!
//! Standardised residuals `|z|` of past points (each computed before the point was learned,
//! so they are honest out-of-sample errors) form the reference distribution. Within the bulk
//! the tail probability of a new `|z|` is the split-conformal p-value (the share of past
//! residuals at least as large); beyond the top 5 % it is extrapolated with an exponential
//! (peaks-over-threshold, GPD with shape 0) tail fitted to the excesses, which reaches the
//! small false-alarm rates a sensitivity asks for. With little history a Student-t reference,
//! rescaled by the ratio of the empirical to the normal tail (the *inflation*), stands in.
//!
//! Each residual records its source (the index of the model that made it), so that a model's
//! residuals can be forgotten once a much better one has replaced it: its misfits are not the
//! new model's tails (see `SeasonalModel`'s hour-of-week candidate).

use std::cell::Cell;
use std::collections::VecDeque;

use super::stats::{LongWindow, normal_sf, normal_upper_quantile, student_t_neg_log10_sf, student_t_upper_quantile};

/// Fewest past residuals before the empirical tail is trusted.
const MIN_RESIDUALS: usize = 30;
/// Residuals needed before the exponential tail replaces the parametric one.
const MIN_FOR_TAIL: usize = 100;
/// Share of residuals in the fitted tail.
const TAIL_SHARE: f64 = 0.05;
/// Recompute cached tail parameters every this many observations (they move slowly).
const REFRESH_EVERY: usize = 8;
/// Bounds of the inflation factor.
const INFLATION_RANGE: (f64, f64) = (0.8, 25.0);
/// Pseudo-excesses at the normal tail's mean excess that a calibrator of standardised
/// residuals adds to its tail's (see [`Calibrator::standardised`]): as many as the tail of a
/// 200-residual history holds.
const PRIOR_EXCESSES: f64 = 10.0;

/// Residuals a calibrator that may trust a normal tail needs before it does ...
const NORMAL_TAIL_MIN_RESIDUALS: usize = 300;
/// ... the normal distribution's two-sided shares beyond 2 and 3, which the residuals' shares
/// may exceed by half at most (hourly tables of a few hundred rows, whose log-scale residuals
/// have slightly heavier shoulders; on the tuning seeds three more duplicate loads and no false
/// alert; twice: one more false alert) ...
const NORMAL_SHARE_BEYOND_2: f64 = 0.0455;
const NORMAL_SHARE_BEYOND_3: f64 = 0.0027;
const NORMAL_SHARES_SLACK: f64 = 1.5;
/// ... and the most residuals beyond 4 it allows (the normal share is 6e-5: one in 16 000).
const MOST_BEYOND_4: usize = 1;

/// Fitted exponential tail of past `|z|`: P(|Z| > x) = share · exp(-(x - start) / mean_excess).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tail {
    start: f64,
    mean_excess: f64,
    share: f64,
}

/// Rolling conformal calibrator of absolute standardised residuals.
#[derive(Debug, Clone)]
pub struct Calibrator {
    residuals: LongWindow,
    /// Last (alpha, dof, threshold) computed since the last refresh (the Student-t quantile
    /// is costly and asked for at every point).
    cached: Cell<(f64, f64, f64)>,
    inflation: f64,
    tail: Option<Tail>,
    since_refresh: usize,
    /// The source of each residual, in arrival order (the model that made it; see
    /// [`observe_from`](Self::observe_from)), and how many residuals each source holds.
    sources: VecDeque<u8>,
    per_source: [u32; SOURCES],
    /// Whether the residuals are standardised (see [`standardised`](Self::standardised)).
    standardised: bool,
    /// Whether a tail lighter than normal is only trusted from [`MIN_FOR_TAIL`] residuals.
    no_light_start: bool,
    /// Whether no tail could be fitted to a history long enough for one (at least 95 % of the
    /// residuals identical: a series its model forecasts exactly but for recurring jumps).
    degenerate: bool,
    /// The normal tail's quantile at the last refresh's level (its bits) and the quantile: the
    /// level is the same from a thousand residuals on, and each costs an inverse `erfc`.
    reference: (u64, f64),
    /// The last [`neg_log10_p`](Self::neg_log10_p) asked (the bits of `|z|` and of the
    /// degrees of freedom) and its answer, until the next residual: learning a point asks
    /// again what judging it asked whenever the scale did not move.
    last_score: Cell<(u64, u64, f64)>,
    /// Whether a normal tail is trusted when the residuals show one (see
    /// [`trusting_a_normal_tail`](Self::trusting_a_normal_tail)) ...
    may_trust_normal: bool,
    /// ... and whether they showed one at the last refresh.
    normal_tail: bool,
}

/// Distinct residual sources a calibrator tells apart (sources at or above share the last).
pub const SOURCES: usize = 16;

impl Calibrator {
    /// A calibrator that remembers the last `capacity` residuals.
    pub fn new(capacity: usize) -> Self {
        Self {
            residuals: LongWindow::new(capacity),
            cached: Cell::new((f64::NAN, f64::NAN, f64::NAN)),
            inflation: 1.0,
            tail: None,
            since_refresh: 0,
            sources: VecDeque::new(),
            per_source: [0; SOURCES],
            standardised: false,
            no_light_start: false,
            degenerate: false,
            reference: (f64::NAN.to_bits(), f64::NAN),
            last_score: Cell::new((f64::NAN.to_bits(), f64::NAN.to_bits(), f64::NAN)),
            may_trust_normal: false,
            normal_tail: false,
        }
    }

    /// A calibrator of standardised residuals (`|z|` of a model's errors over its robust
    /// scale, about half-normal for a model that fits): its exponential tail's mean excess is
    /// estimated with [`PRIOR_EXCESSES`] pseudo-excesses at the normal tail's (about
    /// `1/start`), so a tail fitted to a few excesses (5 % of a short history) leans on the
    /// normal one, and a long history's on its own. Without it, the ten clipped residuals of
    /// one burst made the whole tail of a 200-residual history, and its threshold went from 7
    /// to 200 standardised residuals; and a light tail drawn from a few excesses made the
    /// thresholds too tight.
    ///
    /// And where no tail can be fitted (see [`neg_log10_p`](Self::neg_log10_p)), a residual
    /// within the range of the past ones is not judged rarer than the past made it.
    pub fn standardised(capacity: usize) -> Self {
        Self { standardised: true, ..Self::new(capacity) }
    }

    /// Trust no tail lighter than normal (inflation below 1) before [`MIN_FOR_TAIL`] residuals.
    pub fn without_light_start(self) -> Self {
        Self { no_light_start: true, ..self }
    }

    /// Trust the normal tail once the residuals show it: from [`NORMAL_TAIL_MIN_RESIDUALS`] on,
    /// when no more of them than one and a half times the normal shares lie beyond 2 and beyond
    /// 3 and at most [`MOST_BEYOND_4`] beyond 4, a residual beyond the bulk is judged by the normal tail
    /// where the exponential one judges it more likely, and the threshold is at most the normal
    /// quantile. The exponential tail fitted to the top 5 % extrapolates a normal tail about one
    /// residual too far at an hourly series' rate (5.5 instead of 4.6): for residuals that
    /// follow the model's own distribution (small counts judged by their exact tails, see
    /// `count_noise`) that is blindness, not caution (a zero-heavy table's tenfold hour of 11
    /// rows, residual 4.5, sat under a threshold of 5.8). Two residuals beyond 4 (a spike, a
    /// misfit) end the trust at the next refresh.
    pub fn trusting_a_normal_tail(self) -> Self {
        Self { may_trust_normal: true, ..self }
    }

    /// Record the absolute standardised residual of a point that has just been judged
    /// (so every judgement only sees residuals of its past).
    pub fn observe(&mut self, abs_z: f64) {
        self.observe_from(abs_z, 0);
    }

    /// [`observe`](Self::observe) a residual made by `source` (a model's index), so that the
    /// residuals of a source can later be [`forgotten`](Self::forget_sources).
    pub fn observe_from(&mut self, abs_z: f64, source: usize) {
        if !abs_z.is_finite() {
            return;
        }
        if self.residuals.len() == self.residuals.capacity()
            && let Some(oldest) = self.sources.pop_front()
        {
            self.per_source[oldest as usize] -= 1;
        }
        let source = source.min(SOURCES - 1);
        self.sources.push_back(source as u8);
        self.per_source[source] += 1;
        self.residuals.push(abs_z.abs());
        self.last_score.set((f64::NAN.to_bits(), f64::NAN.to_bits(), f64::NAN));
        self.since_refresh += 1;
        if self.since_refresh >= REFRESH_EVERY {
            self.refresh();
        }
    }

    /// Residuals held from `source`.
    pub fn count_from(&self, source: usize) -> usize {
        self.per_source[source.min(SOURCES - 1)] as usize
    }

    /// Forget every residual of the sources `forget` selects (in one pass; the others keep
    /// their order).
    pub fn forget_sources(&mut self, forget: impl Fn(usize) -> bool) {
        self.forget_residuals(|source, _| forget(source));
    }

    /// Forget every residual that `forget` selects by its source and value (in one pass; the
    /// others keep their order).
    pub fn forget_residuals(&mut self, forget: impl Fn(usize, f64) -> bool) {
        self.retain(|_, source, residual| !forget(source, residual));
    }

    /// Forget the residuals above `level` among all but the newest `keep`: a misfit episode
    /// (days of a model that could not forecast something, since learned) stops weighing on
    /// the tails once it is that old, where residuals that recur keep coming back.
    pub fn forget_old_excesses(&mut self, keep: usize, level: f64) {
        let n = self.residuals.len();
        if n <= keep || self.residuals.count_at_least(level) == 0 {
            return;
        }
        let old = n - keep;
        if self.residuals.iter_in_order().take(old).all(|residual| residual < level) {
            return;
        }
        self.retain(|index, _, residual| index >= old || residual < level);
    }

    /// Keep the residuals for which `keep(index in arrival order, source, residual)` holds, in
    /// their order (each other one removed from the window, not a rebuild), then refit.
    fn retain(&mut self, mut keep: impl FnMut(usize, usize, f64) -> bool) {
        self.last_score.set((f64::NAN.to_bits(), f64::NAN.to_bits(), f64::NAN));
        let mut sources = std::mem::take(&mut self.sources).into_iter();
        let mut kept_sources = VecDeque::with_capacity(self.residuals.len());
        let mut per_source = [0; SOURCES];
        self.residuals.retain_in_order(|index, residual| {
            let source = sources.next().unwrap_or(0);
            let kept = keep(index, source as usize, residual);
            if kept {
                kept_sources.push_back(source);
                per_source[source as usize] += 1;
            }
            kept
        });
        self.sources = kept_sources;
        self.per_source = per_source;
        self.refresh();
    }

    /// The residual at quantile `q` (nearest rank), if any.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.residuals.quantile(q)
    }

    /// Number of residuals the calibration rests on.
    pub fn len(&self) -> usize {
        self.residuals.len()
    }

    /// Whether no residual was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.residuals.is_empty()
    }

    /// Quantiles of the recorded residuals (for debugging and tuning).
    pub fn describe(&self) -> String {
        let q = |p: f64| self.residuals.quantile(p).unwrap_or(f64::NAN);
        format!(
            "n={} q50={:.2} q95={:.2} q99={:.2} q999={:.2} max={:.1} tail={:?}",
            self.residuals.len(),
            q(0.5),
            q(0.95),
            q(0.99),
            q(0.999),
            q(1.0),
            self.tail.map(|t| (t.start, t.mean_excess))
        )
    }

    /// Ratio of the series' empirical residual tail to the normal one (1 = nominal).
    pub fn inflation(&self) -> f64 {
        self.inflation
    }

    /// Conformal p-value of `abs_z`: the share of past residuals at least as large (+1).
    pub fn conformal_p_value(&self, abs_z: f64) -> f64 {
        (self.residuals.count_at_least(abs_z) + 1) as f64 / (self.residuals.len() + 1) as f64
    }

    /// `-log10` of the calibrated probability of a residual at least `abs_z` (two-sided);
    /// `dof` are the degrees of freedom of the small-sample reference.
    pub fn neg_log10_p(&self, abs_z: f64, dof: f64) -> f64 {
        let abs_z = abs_z.abs();
        if abs_z == 0.0 {
            return 0.0;
        }
        let (z_bits, dof_bits, known) = self.last_score.get();
        if z_bits == abs_z.to_bits() && dof_bits == dof.to_bits() {
            return known;
        }
        let score = self.neg_log10_p_uncached(abs_z, dof);
        self.last_score.set((abs_z.to_bits(), dof.to_bits(), score));
        score
    }

    fn neg_log10_p_uncached(&self, abs_z: f64, dof: f64) -> f64 {
        let score = match self.tail {
            Some(tail) if abs_z > tail.start => {
                let ln_p = tail.share.ln() - (abs_z - tail.start) / tail.mean_excess;
                let score = -ln_p / std::f64::consts::LN_10;
                if self.normal_tail { score.max(-(2.0 * normal_sf(abs_z)).log10()) } else { score }
            }
            Some(_) => -self.conformal_p_value(abs_z).log10(),
            None => (student_t_neg_log10_sf(abs_z / self.inflation, dof) - std::f64::consts::LOG10_2).max(0.0),
        };
        // Standardised residuals without a tail to fit although the history is long enough (at
        // least 95 % identical: a series forecast exactly but for recurring jumps, such as a
        // flat metric that jumps every few hours): the Student-t stand-in, rescaled by an
        // inflation capped at 25, judged every recurring jump one in millions however often it
        // came. A residual no larger than some past ones is judged by their share at most.
        if self.empirical_floor() && self.residuals.count_at_least(abs_z) > 0 {
            return score.min(-self.conformal_p_value(abs_z).log10());
        }
        score
    }

    /// Whether residuals within the past's range are judged by their share at most (a
    /// calibrator of standardised residuals whose history is too degenerate for a tail).
    fn empirical_floor(&self) -> bool {
        self.degenerate && self.standardised
    }

    /// The `|z|` whose calibrated two-sided tail probability is `alpha`.
    pub fn threshold(&self, alpha: f64, dof: f64) -> f64 {
        let (cached_alpha, cached_dof, cached) = self.cached.get();
        if cached_alpha == alpha && cached_dof == dof && self.tail.is_none_or(|tail| alpha < tail.share) {
            return cached;
        }
        let threshold = self.compute_threshold(alpha, dof);
        self.cached.set((alpha, dof, threshold));
        threshold
    }

    fn compute_threshold(&self, alpha: f64, dof: f64) -> f64 {
        let threshold = match self.tail {
            Some(tail) if alpha < tail.share => {
                let exponential = tail.start + tail.mean_excess * (tail.share / alpha).ln();
                if self.normal_tail { exponential.min(normal_upper_quantile(alpha / 2.0)) } else { exponential }
            }
            Some(_) => self.residuals.quantile(1.0 - alpha).unwrap_or(0.0),
            None => student_t_upper_quantile(alpha / 2.0, dof) * self.inflation,
        };
        if !self.empirical_floor() {
            return threshold;
        }
        // The `m`-th largest residual, `m = max(1, ⌊alpha (n + 1)⌋)`, is the largest whose share
        // (at least `(m + 1) / (n + 1)`) stays above `alpha`.
        let n = self.residuals.len();
        let m = ((alpha * (n + 1) as f64).floor() as usize).clamp(1, n);
        let rank = (n - m) as f64 / (n - 1).max(1) as f64;
        threshold.max(self.residuals.quantile(rank).unwrap_or(0.0))
    }

    fn refresh(&mut self) {
        self.since_refresh = 0;
        self.cached.set((f64::NAN, f64::NAN, f64::NAN));
        let n = self.residuals.len();
        if n < MIN_RESIDUALS {
            self.inflation = 1.0;
            self.tail = None;
            self.degenerate = false;
            return;
        }
        // The most extreme two-sided tail level that still has ~10 residuals beyond it.
        let level = (10.0 / (n as f64 + 1.0)).max(0.01);
        if let Some(empirical) = self.residuals.quantile(1.0 - level) {
            if self.reference.0 != level.to_bits() {
                self.reference = (level.to_bits(), normal_upper_quantile(level / 2.0));
            }
            let reference = self.reference.1;
            if reference > 0.0 && empirical.is_finite() {
                let lightest = if self.no_light_start && n < MIN_FOR_TAIL { 1.0 } else { INFLATION_RANGE.0 };
                self.inflation = (empirical / reference).clamp(lightest, INFLATION_RANGE.1);
            }
        }
        self.tail = None;
        if n >= MIN_FOR_TAIL {
            let start_rank = ((1.0 - TAIL_SHARE) * n as f64).floor() as usize;
            if let Some(start) = self.residuals.quantile(start_rank as f64 / (n - 1) as f64) {
                let excesses = n.saturating_sub(start_rank + 1);
                let sum = self.residuals.iter_sorted_from(start_rank + 1).map(|x| x - start).sum::<f64>();
                // (A standardised residual's normal tail beyond `start` has a mean excess of
                // about 1/start.)
                let prior_excesses = if self.standardised { PRIOR_EXCESSES } else { 0.0 };
                let prior = prior_excesses / start.max(1.0);
                let mean_excess = (sum + prior) / (excesses as f64 + prior_excesses).max(1.0);
                // A degenerate tail (many identical residuals) keeps the parametric reference.
                if mean_excess > 1e-9 && start > 0.0 {
                    // A light tail from few excesses is not trusted beyond half the normal
                    // tail's mean excess (about 1/start), so bounded noise cannot make the
                    // model hypersensitive.
                    let floor = 0.5 / start.max(1.0);
                    self.tail =
                        Some(Tail { start, mean_excess: mean_excess.max(floor), share: excesses as f64 / n as f64 });
                }
            }
        }
        self.degenerate = n >= MIN_FOR_TAIL && self.tail.is_none();
        self.normal_tail = self.may_trust_normal
            && self.standardised
            && self.tail.is_some()
            && n >= NORMAL_TAIL_MIN_RESIDUALS
            && self.residuals.count_at_least(2.0) as f64 <= NORMAL_SHARES_SLACK * NORMAL_SHARE_BEYOND_2 * n as f64
            && self.residuals.count_at_least(3.0) as f64
                <= (NORMAL_SHARES_SLACK * NORMAL_SHARE_BEYOND_3 * n as f64).max(1.0)
            && self.residuals.count_at_least(4.0) <= MOST_BEYOND_4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_history_that_looks_lighter_than_normal_does_not_narrow_the_threshold() {
        // The first residuals of an hourly business-hours table: its scale fell from 19 to
        // 0.16 within a day, so most residuals standardised by the early scale are tiny. From
        // 30 of them the inflation said "lighter than normal" (0.8), the threshold fell by a
        // fifth at once, and an empty evening hour alerted.
        let alpha = 4.2e-6;
        let fill = |mut calibrator: Calibrator| {
            for index in 0..40 {
                calibrator.observe(if index % 4 == 0 { 0.9 } else { 0.01 });
            }
            calibrator
        };
        let plain = fill(Calibrator::standardised(2_000));
        let careful = fill(Calibrator::standardised(2_000).without_light_start());
        assert!(plain.inflation() < 1.0, "{}", plain.inflation());
        assert_eq!(careful.inflation(), 1.0);
        assert!(careful.threshold(alpha, 39.0) > 1.2 * plain.threshold(alpha, 39.0));
        // From a hundred residuals on, a light tail is the data's and counts.
        let long = (0..120).fold(Calibrator::standardised(2_000).without_light_start(), |mut c, i| {
            c.observe(if i % 4 == 0 { 0.9 } else { 0.01 });
            c
        });
        assert!(long.inflation() < 1.0, "{}", long.inflation());
    }

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
        assert!((normal.inflation() - 1.0).abs() < 0.1, "{}", normal.inflation());
        assert!(heavy.inflation() > 2.5, "{}", heavy.inflation());
        assert!(normal.conformal_p_value(100.0) < 0.002);
        assert!((normal.conformal_p_value(0.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_long_history_with_the_normal_tail_is_judged_by_it() {
        // 400 residuals on a half-normal grid: the exponential tail fitted to their top 5 %
        // puts the threshold of an hourly series' rate at about 5.5 standardised residuals;
        // trusted, the normal tail puts it at its quantile.
        let (alpha, dof) = (4.2e-6, 1e6);
        let grid = |calibrator: Calibrator| {
            (0..400).fold(calibrator, |mut c, i| {
                c.observe(normal_upper_quantile((i as f64 + 0.5) / 400.0 / 2.0));
                c
            })
        };
        let plain = grid(Calibrator::standardised(2_000));
        let trusting = grid(Calibrator::standardised(2_000).trusting_a_normal_tail());
        let normal = normal_upper_quantile(alpha / 2.0);
        assert!(plain.threshold(alpha, dof) > normal + 0.5, "{}", plain.threshold(alpha, dof));
        assert!((trusting.threshold(alpha, dof) - normal).abs() < 1e-9, "{}", trusting.threshold(alpha, dof));
        // Scores follow the same tail: a residual at the normal quantile scores -log10(alpha).
        assert!((trusting.neg_log10_p(normal, dof) + alpha.log10()).abs() < 1e-6);
        assert!(plain.neg_log10_p(normal, dof) < -alpha.log10() - 0.5);
        // Shoulders somewhat heavier than normal (six more residuals at 2.5: 1.3 times the normal
        // share beyond 2) are still trusted.
        let mut shoulders = grid(Calibrator::standardised(2_000).trusting_a_normal_tail());
        for _ in 0..6 {
            shoulders.observe(2.5);
        }
        for i in 0..2 {
            shoulders.observe(normal_upper_quantile((i as f64 + 0.5) / 2.0 / 2.0));
        }
        assert!((shoulders.threshold(alpha, dof) - normal).abs() < 1e-9, "{}", shoulders.threshold(alpha, dof));
        // Fewer than 300 residuals, or two beyond 4 (a spike, a misfit): the exponential tail.
        let short = (0..290).fold(Calibrator::standardised(2_000).trusting_a_normal_tail(), |mut c, i| {
            c.observe(normal_upper_quantile((i as f64 + 0.5) / 290.0 / 2.0));
            c
        });
        assert!(short.threshold(alpha, dof) > normal + 0.5);
        let mut spiked = trusting;
        for residual in [6.0, 0.1, 0.2, 9.0, 0.3, 0.4, 0.5, 0.6] {
            spiked.observe(residual);
        }
        assert!(spiked.threshold(alpha, dof) > normal + 0.5, "{}", spiked.threshold(alpha, dof));
    }

    #[test]
    fn old_excesses_are_forgotten_and_recent_ones_kept() {
        let mut calibrator = Calibrator::standardised(2_000);
        for i in 0..1_000 {
            // A half-normal grid, with an episode of large residuals early and one late.
            let residual = if (100..110).contains(&i) || i == 990 {
                30.0
            } else {
                normal_upper_quantile((i % 500) as f64 / 500.0 / 2.0 + 0.0005)
            };
            calibrator.observe(residual);
        }
        let (alpha, dof) = (4.2e-6, 1e6);
        let before = calibrator.threshold(alpha, dof);
        calibrator.forget_old_excesses(672, 4.0);
        // The ten early ones are gone, the late one stays, the bulk is untouched.
        assert_eq!(calibrator.len(), 990);
        assert_eq!(calibrator.quantile(1.0), Some(30.0));
        assert!(calibrator.threshold(alpha, dof) < before, "{before}");
        // Nothing old beyond the level: nothing changes.
        let kept = calibrator.len();
        calibrator.forget_old_excesses(672, 4.0);
        assert_eq!(calibrator.len(), kept);
    }

    /// A calibrator of `calibrator` fed `copies` times the same 200 residuals: 190 of a
    /// half-normal grid and ten of a burst (8 to 30).
    fn with_a_burst(mut calibrator: Calibrator, copies: usize) -> Calibrator {
        for _ in 0..copies {
            for i in 0..190 {
                calibrator.observe(normal_upper_quantile((i as f64 + 0.5) / 190.0 / 2.0));
            }
            for i in 0..10 {
                calibrator.observe(8.0 + 2.2 * i as f64);
            }
        }
        calibrator
    }

    #[test]
    fn a_tail_of_standardised_residuals_from_few_excesses_leans_on_the_normal_tail() {
        // The same distribution (a normal bulk and a burst of 5 %) in a short history and in a
        // ten times longer one: the short one's tail rests on ten excesses, all of one burst,
        // and leans on the normal tail; the long one's rests on a hundred and keeps its own.
        let (alpha, dof) = (1e-6, 1e6);
        let short = with_a_burst(Calibrator::standardised(200), 1).threshold(alpha, dof);
        let long = with_a_burst(Calibrator::standardised(2_000), 10).threshold(alpha, dof);
        assert!(short < 0.75 * long, "short history {short}, long history {long}");
        // A generic statistic (a CUSUM sum, a G statistic) has no normal tail to lean on.
        let plain_short = with_a_burst(Calibrator::new(200), 1).threshold(alpha, dof);
        let plain_long = with_a_burst(Calibrator::new(2_000), 10).threshold(alpha, dof);
        assert!((plain_short / plain_long - 1.0).abs() < 0.1, "{plain_short} vs {plain_long}");
        assert!(long > 0.85 * plain_long, "the long history keeps its tail: {long} vs {plain_long}");
    }

    #[test]
    fn forgetting_a_source_keeps_the_others_in_order_and_narrows_the_tail() {
        let mut calibrator = Calibrator::new(500);
        // A misfitting model (source 1) every fifth residual, a good one (source 2) otherwise.
        for i in 0..600 {
            let (z, source) = if i % 5 == 0 { (30.0 + (i % 7) as f64, 1) } else { ((i % 13) as f64 / 6.0, 2) };
            calibrator.observe_from(z, source);
        }
        assert_eq!(calibrator.len(), 500);
        assert_eq!(calibrator.count_from(1) + calibrator.count_from(2), 500);
        assert_eq!(calibrator.count_from(1), 100);
        let wide = calibrator.threshold(1e-4, 1e6);
        calibrator.forget_sources(|source| source == 1);
        assert_eq!((calibrator.len(), calibrator.count_from(1), calibrator.count_from(2)), (400, 0, 400));
        let narrow = calibrator.threshold(1e-4, 1e6);
        assert!(narrow < wide / 3.0, "{narrow} vs {wide}");
        // The ring still evicts the oldest kept residual first.
        for _ in 0..100 {
            calibrator.observe_from(1.0, 3);
        }
        assert_eq!((calibrator.len(), calibrator.count_from(2), calibrator.count_from(3)), (500, 400, 100));
        calibrator.observe_from(1.0, 3);
        assert_eq!((calibrator.count_from(2), calibrator.count_from(3)), (399, 101));
    }

    #[test]
    fn forgetting_by_value_takes_only_the_selected_residuals_of_a_source() {
        let mut calibrator = Calibrator::new(500);
        for i in 0..300 {
            let (z, source) =
                if i % 3 == 0 { (if i % 30 == 0 { 40.0 } else { 1.0 }, 1) } else { (1.0 + (i % 7) as f64 / 7.0, 2) };
            calibrator.observe_from(z, source);
        }
        let wide = calibrator.threshold(1e-5, 1e6);
        calibrator.forget_residuals(|source, residual| source == 1 && residual > 5.0);
        assert_eq!((calibrator.count_from(1), calibrator.count_from(2)), (90, 200));
        let narrow = calibrator.threshold(1e-5, 1e6);
        assert!(narrow < wide / 2.0, "{narrow} vs {wide}");
    }
}
