//! Shape-change detection on a continuous metric's values: the recent window's distribution
//! against the series' own longer past.
//!
//! The seasonal baseline judges each point alone and the variance test ([`super::change`])
//! accumulates large residuals; neither sees a series whose values settle where they rarely
//! were (a signal flattening, oscillating between other levels, spiking more densely) while
//! each point stays within range. This test compares the histogram of the last [`WINDOW`]
//! values with that of the [`REFERENCE`] values before them, over bins at the reference's
//! quantiles (so each bin holds about the same share of the past), by the G statistic
//! `G = 2 Σ oᵢ ln(oᵢ / (w·pᵢ))` (twice `w` times the relative entropy of the recent histogram
//! to the reference one).
//!
//! Recent values overlap and the series' own rhythm (a daily cycle seen through a window of a
//! few hours) moves `G` all the time, so its chi² law does not hold: like the variance test,
//! `G` is calibrated on its own past values (clipped once clearly anomalous) with the conformal
//! bulk and exponential tail of [`Calibrator`], and the baseline fuses its probability with the
//! point's own and the variance test's by weighted Bonferroni ([`SHAPE_WEIGHT`] of the
//! false-alarm budget), so one threshold still means one false-alarm rate.
//!
//! Bin edges and reference shares are refreshed every [`REFRESH_EVERY`] points; between
//! refreshes the recent counts are updated in place (one bin in, one bin out), so a point
//! costs one insertion into the sorted reference, one into the calibrator and a sum over the
//! bins.
//!
//! A recognised level shift or a user's `expected` label clears the reference
//! ([`ShapeDetector::restart`]): the new level is the series' normal now, not a change of
//! shape, and the test stays silent until a new reference and [`WARM_UP`] values of its
//! statistic were seen.

use std::cell::Cell;
use std::collections::VecDeque;

use super::calibration::Calibrator;
use super::stats::LongWindow;

/// Share of the false-alarm budget spent on the shape test.
pub const SHAPE_WEIGHT: f64 = 0.1;
/// Recent values whose distribution is tested.
const WINDOW: usize = 64;
/// Values before the recent window that form the reference distribution.
const REFERENCE: usize = 2_000;
/// Reference values needed before `G` is computed.
const MIN_REFERENCE: usize = 200;
/// Bins (at the reference's quantiles).
const BINS: usize = 10;
/// Points between refreshes of the bin edges and reference shares: once per recent window (the
/// reference then changed by 64 of its 2 000 values; session 10: refreshing every 8 points cost
/// a continuous point ~620 instructions, every 64 ~75, and the benchmark's and NAB's figures
/// did not suffer).
const REFRESH_EVERY: usize = WINDOW;
/// Past values of `G` kept as its reference.
const STATISTIC_SIZE: usize = 4_000;
/// Values of `G` observed before its score is used (its tail must reach `w·α`).
const WARM_UP: usize = 600;
/// Values of `G` needed before anomalous ones enter its reference clipped.
const CLIP_AFTER: usize = 100;
/// Share of past values of `G` at least as large beyond which `G` is judged by that share.
const TIED_SHARE: f64 = 0.05;
/// Degrees of freedom passed to the calibrator (its small-sample reference is never used once
/// warm: see [`WARM_UP`]).
const DOF: f64 = 1e6;

/// A test of the recent values' distribution against the series' longer past.
#[derive(Debug, Clone)]
pub struct ShapeDetector {
    /// The last [`WINDOW`] values with their bin under the current edges.
    recent: VecDeque<(f64, u8)>,
    /// The [`REFERENCE`] values before the recent window.
    reference: LongWindow,
    /// Upper bin edges (a value `v` falls in the first bin whose edge exceeds it).
    edges: Vec<f64>,
    /// `edges` padded with infinities to [`BINS`]` - 1` (a value's bin is the number of edges
    /// at or below it: a fixed count of comparisons instead of a search).
    padded_edges: [f64; BINS - 1],
    /// `ln(w · pᵢ)` of each bin's smoothed reference share.
    log_expected: Vec<f64>,
    /// Recent values per bin.
    counts: Vec<u32>,
    /// `o ln o` for `o` in `0..=WINDOW`.
    o_ln_o: Vec<f64>,
    since_refresh: usize,
    statistic: Calibrator,
    observed: usize,
    /// `G` of the value [`score`](Self::score) computed last (its bits and `G`), for
    /// [`observe`](Self::observe) to reuse when the same value is learned next; cleared by
    /// every change of state.
    scored: Cell<Option<(u64, f64)>>,
}

impl Default for ShapeDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl ShapeDetector {
    /// A detector with no history.
    pub fn new() -> Self {
        Self {
            recent: VecDeque::with_capacity(WINDOW + 1),
            reference: LongWindow::new(REFERENCE),
            edges: Vec::with_capacity(BINS),
            padded_edges: [f64::INFINITY; BINS - 1],
            log_expected: Vec::with_capacity(BINS),
            counts: Vec::with_capacity(BINS),
            o_ln_o: (0..=WINDOW).map(|o| if o == 0 { 0.0 } else { o as f64 * (o as f64).ln() }).collect(),
            since_refresh: REFRESH_EVERY,
            statistic: Calibrator::new(STATISTIC_SIZE),
            observed: 0,
            scored: Cell::new(None),
        }
    }

    /// The bin of a finite `value`: the first whose edge exceeds it (`edges` increase strictly,
    /// so this is the number of edges at or below it).
    fn bin(&self, value: f64) -> usize {
        self.padded_edges.iter().map(|&edge| usize::from(edge <= value)).sum()
    }

    /// Recompute bin edges at the reference's quantiles (ties merged), the reference shares
    /// and the recent counts.
    fn refresh(&mut self) {
        self.since_refresh = 0;
        self.edges.clear();
        // The reference's deciles in one walk (none of an empty reference).
        let (mut deciles, mut levels) = ([f64::NAN; BINS - 1], [0.0; BINS - 1]);
        for (k, level) in levels.iter_mut().enumerate() {
            *level = (k + 1) as f64 / BINS as f64;
        }
        self.reference.quantiles(&levels, &mut deciles);
        if !self.reference.is_empty() {
            for edge in deciles {
                if self.edges.last().is_none_or(|&last| edge > last) {
                    self.edges.push(edge);
                }
            }
        }
        self.padded_edges = [f64::INFINITY; BINS - 1];
        self.padded_edges[..self.edges.len()].copy_from_slice(&self.edges);
        let bins = self.edges.len() + 1;
        let n = self.reference.len();
        self.log_expected.clear();
        let mut above = n;
        let mut at_least = [0; BINS - 1];
        self.reference.counts_at_least(&self.edges, &mut at_least);
        for index in 0..bins {
            let next = at_least.get(index).filter(|_| index < self.edges.len()).copied().unwrap_or(0);
            let share = ((above - next) as f64 + 0.5) / (n as f64 + 0.5 * bins as f64);
            self.log_expected.push((WINDOW as f64 * share).ln());
            above = next;
        }
        self.counts.clear();
        self.counts.resize(bins, 0);
        for index in 0..self.recent.len() {
            let (value, known) = self.recent[index];
            // The edges move little between refreshes: a value still between the edges of its
            // bin keeps it (two comparisons instead of nine).
            let known = usize::from(known);
            let still = known < bins
                && (known == 0 || self.padded_edges[known - 1] <= value)
                && self.padded_edges.get(known).is_none_or(|&edge| value < edge);
            let bin = if still { known } else { self.bin(value) };
            self.recent[index].1 = bin as u8;
            self.counts[bin] += 1;
        }
    }

    fn ready(&self) -> bool {
        self.reference.len() >= MIN_REFERENCE && self.recent.len() == WINDOW && !self.counts.is_empty()
    }

    /// `G` of the recent window after `value` joins it (the oldest value leaving it).
    fn statistic_with(&self, value: f64) -> f64 {
        let entering = self.bin(value);
        let leaving = self.recent.front().map_or(usize::MAX, |&(_, bin)| usize::from(bin));
        let mut g = 0.0;
        for (index, (&count, &log_expected)) in self.counts.iter().zip(&self.log_expected).enumerate() {
            let o = count as usize + usize::from(index == entering) - usize::from(index == leaving);
            if o > 0 {
                g += self.o_ln_o[o] - o as f64 * log_expected;
            }
        }
        2.0 * g
    }

    /// `-log10` of the calibrated probability, on this series' past, of a `G` at least as
    /// large as after `value` joins the recent window; 0 while warming up.
    pub fn score(&self, value: f64) -> f64 {
        if self.observed < WARM_UP || !self.ready() || !value.is_finite() {
            return 0.0;
        }
        let g = self.statistic_with(value);
        self.scored.set(Some((value.to_bits(), g)));
        if g <= 0.0 {
            return 0.0;
        }
        // A drifting series often has its whole window in one bin: `G` then takes the same
        // largest value again and again (every bin holds a tenth of the reference). When such
        // ties fill the top of the statistic's past there is no tail to fit, and the
        // calibrator's small-sample fallback would call them extreme (on NAB's
        // machine_temperature the default sensitivity alerted 2 432 times): a `G` that 5 % of
        // the past reached is judged by its share alone.
        let share = self.statistic.conformal_p_value(g);
        if share >= TIED_SHARE { -share.log10() } else { self.statistic.neg_log10_p(g, DOF) }
    }

    /// Forget the reference distribution after a recognised level shift or a user's "expected"
    /// label: the new level is the series' normal now, not a change of shape. The test is
    /// silent until a new reference and [`WARM_UP`] values of `G` on it were seen (its
    /// calibration of `G` is kept).
    pub fn restart(&mut self) {
        self.scored.set(None);
        self.recent.clear();
        self.reference = LongWindow::new(REFERENCE);
        self.edges.clear();
        self.padded_edges = [f64::INFINITY; BINS - 1];
        self.log_expected.clear();
        self.counts.clear();
        self.since_refresh = REFRESH_EVERY;
        self.observed = 0;
    }

    /// Learn `value` (after it was judged). Values of `G` beyond 1.5 times the level of
    /// probability `alpha` enter the statistic's reference clipped, so a long change does not
    /// teach it that such distances are normal.
    pub fn observe(&mut self, value: f64, alpha: f64) {
        let scored = self.scored.take();
        if !value.is_finite() {
            return;
        }
        if self.ready() {
            // The value just judged: its `G` on the same state.
            let g = match scored {
                Some((bits, g)) if bits == value.to_bits() => g,
                _ => self.statistic_with(value),
            };
            let g = g.max(0.0);
            let clip = if self.statistic.len() >= CLIP_AFTER {
                1.5 * self.statistic.threshold(alpha, DOF)
            } else {
                f64::INFINITY
            };
            self.statistic.observe(g.min(clip));
            self.observed += 1;
        }
        let bin = if self.counts.is_empty() { 0 } else { self.bin(value) };
        if let Some(count) = self.counts.get_mut(bin) {
            *count += 1;
        }
        self.recent.push_back((value, bin as u8));
        if self.recent.len() > WINDOW
            && let Some((oldest, oldest_bin)) = self.recent.pop_front()
        {
            if let Some(count) = self.counts.get_mut(usize::from(oldest_bin)) {
                *count = count.saturating_sub(1);
            }
            self.reference.push(oldest);
        }
        self.since_refresh += 1;
        if self.reference.len() >= MIN_REFERENCE && self.since_refresh >= REFRESH_EVERY {
            self.refresh();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::Noise;
    use crate::detect::{MetricClass, Point, Settings, StreamingDetector};

    /// Scores of a detector fed `values` (each scored before it is learned).
    fn scores(values: &[f64]) -> Vec<f64> {
        let mut detector = ShapeDetector::new();
        values
            .iter()
            .map(|&value| {
                let score = detector.score(value);
                detector.observe(value, 1e-7);
                score
            })
            .collect()
    }

    #[test]
    fn a_stationary_series_stays_calm_and_warms_up_silently() {
        let mut noise = Noise::new(5);
        let values: Vec<f64> = (0..6_000).map(|_| 10.0 + noise.normal()).collect();
        let scores = scores(&values);
        assert!(scores[..MIN_REFERENCE + WINDOW + WARM_UP].iter().all(|&s| s == 0.0));
        let max = scores.iter().copied().fold(0.0, f64::max);
        assert!(max < 5.0, "stationary values reached {max}");
    }

    #[test]
    fn bins_are_refreshed_once_per_recent_window() {
        let mut noise = Noise::new(7);
        let mut detector = ShapeDetector::new();
        let mut refreshes = Vec::new();
        for index in 0..1_000 {
            detector.observe(noise.normal(), 1e-7);
            if detector.since_refresh == 0 {
                refreshes.push(index);
            }
        }
        // From the first full reference on (200 values after the recent window's 64), every
        // 64th point.
        assert_eq!(refreshes.first(), Some(&(MIN_REFERENCE + WINDOW - 1)));
        assert!(refreshes.windows(2).all(|pair| pair[1] - pair[0] == WINDOW), "{refreshes:?}");
    }

    #[test]
    fn every_recent_value_is_counted_in_its_bin_after_each_refresh() {
        // Refreshes keep a value's bin when it still lies between that bin's new edges and
        // search it otherwise: the bins and counts must be those of a search for every value.
        let mut noise = Noise::new(31);
        let mut detector = ShapeDetector::new();
        for index in 0..1_500 {
            let drift = if index > 900 { (index - 900) as f64 / 100.0 } else { 0.0 };
            let value = if index % 97 == 0 { 3.0 } else { noise.normal() + drift };
            detector.observe(value, 1e-7);
            if detector.since_refresh == 0 {
                let mut counts = vec![0; detector.counts.len()];
                for &(value, bin) in &detector.recent {
                    assert_eq!(usize::from(bin), detector.bin(value), "at {index}");
                    counts[usize::from(bin)] += 1;
                }
                assert_eq!(counts, detector.counts, "at {index}");
            }
        }
    }

    #[test]
    fn learning_a_value_just_scored_learns_what_learning_it_alone_does() {
        // `observe` reuses the `G` that `score` computed for the same value on the same state;
        // a detector that is never asked for scores must learn exactly the same statistic.
        let mut noise = Noise::new(21);
        let values: Vec<f64> = (0..3_000).map(|index| noise.normal() + if index > 2_000 { 2.0 } else { 0.0 }).collect();
        let (mut scored, mut silent) = (ShapeDetector::new(), ShapeDetector::new());
        for (index, &value) in values.iter().enumerate() {
            if index % 3 != 0 {
                scored.score(value);
            }
            if index % 7 == 0 {
                // A score for a value that is not learned next must not be reused.
                scored.score(value + 1.0);
            }
            scored.observe(value, 1e-7);
            silent.observe(value, 1e-7);
        }
        for probe in [-3.0, 0.0, 0.5, 2.0, 4.0] {
            assert_eq!(scored.score(probe).to_bits(), silent.score(probe).to_bits(), "probe {probe}");
        }
        assert!(silent.score(4.0) > 0.0);
    }

    #[test]
    fn values_settling_inside_the_usual_range_are_a_change_of_shape() {
        // Noise around 10, then a signal alternating between 9.5 and 10.5: the same mean,
        // every value well inside the usual range, half the spread.
        let mut noise = Noise::new(9);
        let values: Vec<f64> = (0..5_000)
            .map(|index| {
                if index < 4_000 {
                    10.0 + noise.normal()
                } else if index % 2 == 0 {
                    9.5
                } else {
                    10.5
                }
            })
            .collect();
        let scores = scores(&values);
        let before = scores[..4_000].iter().copied().fold(0.0, f64::max);
        let after = scores[4_000..4_000 + WINDOW].iter().copied().fold(0.0, f64::max);
        assert!(after > before + 3.0 && after >= 6.0, "before {before}, after {after}");
    }

    #[test]
    fn the_statistic_is_invariant_to_the_scale_and_offset_of_the_series() {
        let mut noise = Noise::new(3);
        let values: Vec<f64> = (0..3_000).map(|index| noise.normal() + if index > 2_500 { 0.8 } else { 0.0 }).collect();
        let scaled: Vec<f64> = values.iter().map(|v| 1_000.0 * v - 5.0e4).collect();
        let (a, b) = (scores(&values), scores(&scaled));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
    }

    #[test]
    fn the_streaming_detector_scores_a_flattened_signal_its_range_would_accept() {
        // A 5-minute metric with noise sigma 2 around 100 that flattens at 101: no point
        // leaves the range, the distribution changes.
        let mut noise = Noise::new(12);
        let mut detector = StreamingDetector::new(MetricClass::Continuous, Settings::default());
        let verdicts: Vec<_> = (0..4_500)
            .map(|index| {
                let value = if index < 4_000 { 100.0 + 2.0 * noise.normal() } else { 101.0 + 0.05 * noise.normal() };
                detector.push(Point::new(1_700_000_000 + index * 300, value))
            })
            .collect();
        assert_eq!(verdicts[..4_000].iter().filter(|v| v.alert).count(), 0, "stationary stretch alerted");
        // At 5-minute points `medium` asks the shape test for 3.5e-8 (a score of 7.5), which a
        // window of 64 values reaches only when they leave their usual bins entirely: the
        // flattened stretch is measured by its score, well above anything the stationary one
        // reached.
        let quiet = verdicts[1_000..4_000].iter().map(|v| v.score).fold(0.0, f64::max);
        let flat = verdicts[4_000..4_000 + WINDOW].iter().map(|v| v.score).fold(0.0, f64::max);
        assert!(flat > quiet + 1.0 && flat > 4.5, "stationary {quiet}, flattened {flat}");
    }

    #[test]
    fn a_recognised_level_shift_alerts_once_not_again_as_a_change_of_shape() {
        // A 5-minute metric around 10 (sigma 0.5) that steps to 20 for good: the baseline
        // recognises the level shift and re-baselines; the shape test must not then call the
        // new level a change of shape (it alerted three more times before it restarted).
        let mut noise = Noise::new(7);
        let mut detector = StreamingDetector::new(MetricClass::Continuous, Settings::default());
        let verdicts: Vec<_> = (0..4_000)
            .map(|index| {
                let value = 10.0 + 0.5 * noise.normal() + if index >= 2_500 { 10.0 } else { 0.0 };
                detector.push(Point::new(1_700_000_000 + index * 300, value))
            })
            .collect();
        assert!(verdicts[2_500].alert, "the shift itself alerts");
        assert!(
            verdicts[2_500..].iter().any(|v| matches!(v.event, Some(crate::detect::Event::LevelShift { .. }))),
            "the shift is recognised"
        );
        let alerts: Vec<usize> = (0..verdicts.len()).filter(|&i| verdicts[i].alert).collect();
        assert_eq!(alerts, vec![2_500], "one alert for one level shift");
    }
}
