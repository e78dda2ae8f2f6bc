//! Categorical shift: compare the value frequencies of a column now with a baseline, over the
//! baseline's top-K categories (the rest pooled as "other"). Reports the population stability
//! index (PSI) and the Jensen–Shannon divergence, and names categories that disappeared while
//! the current sample was large enough to expect them. Given the earlier frames themselves
//! ([`CategoryHistory`]), it also tests each category's share against the spread of that share
//! from frame to frame, and lets that spread widen the PSI threshold and the evidence a missing
//! category needs.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::calendar::DAY;
use super::format;
use super::proportion::{lower_tail, upper_tail};
use super::settings::{Sensitivity, Settings};
use super::verdict::{Shift, Verdict};

/// Categories compared individually; the rest are pooled.
pub const TOP_K: usize = 20;
/// A category with at least this baseline share that vanishes is reported.
const MIN_SHARE_TO_MISS: f64 = 0.01;
/// ... provided at least this many rows of it were expected in the current sample.
const MIN_EXPECTED_ROWS: f64 = 10.0;
/// ... and, given frames, that the probability of no row of it with the spread of its share is
/// at most `exp(-MIN_EVIDENCE_WITH_SPREAD)` (a category that came in a burst is no surprise
/// when it is gone; one whose share merely wanders keeps the rule of the expected rows).
const MIN_EVIDENCE_WITH_SPREAD: f64 = 8.0;
/// Earlier frequency tables a column needs before [`judge_history`] gives a verdict.
pub const MIN_BASELINE_FRAMES: usize = 3;
/// Smallest change of a category's share worth an alert (share test): a tenth of a percentage
/// point plus a tenth of the share (a category at 0.3 % of 10 million rows that moves to
/// 0.33 % is no incident, however improbable the move).
const MIN_SHARE_CHANGE: f64 = 0.001;
const MIN_RELATIVE_SHARE_CHANGE: f64 = 0.1;

/// Result of comparing two frequency tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalVerdict {
    /// Population stability index over the compared categories.
    pub psi: f64,
    /// Jensen–Shannon divergence in bits, in [0, 1].
    pub jensen_shannon: f64,
    /// PSI above which the shift counts as an anomaly (grows with sampling noise).
    pub threshold: f64,
    /// Baseline categories (share ≥ 1 %) absent from the current sample although expected.
    pub disappeared: Vec<String>,
    /// Categories of the current sample's top-K that the baseline never saw.
    pub appeared: Vec<String>,
    /// Whether this is an anomaly.
    pub anomaly: bool,
    /// Calibrated surprise on the scale of every other verdict (`-log10` of a tail
    /// probability; the sensitivity's threshold at `psi == threshold`): the larger of the PSI
    /// against its threshold and the Poisson evidence of the likeliest vanished category.
    pub score: f64,
    /// One sentence for humans.
    pub explanation: String,
}

/// Compare `current` value counts with `baseline` value counts (category, rows).
pub fn compare(baseline: &[(String, u64)], current: &[(String, u64)], settings: &Settings) -> CategoricalVerdict {
    let base_total: u64 = baseline.iter().map(|(_, n)| n).sum();
    compare_sized(baseline, base_total as f64, current, settings)
}

/// [`compare`], with the baseline's sampling noise that of `base_rows` independent rows. A
/// baseline summed from overlapping samples (profiles of a whole table, each seeing the rows of
/// the one before) holds fewer independent rows than its counts add up to.
pub fn compare_sized(
    baseline: &[(String, u64)],
    base_rows: f64,
    current: &[(String, u64)],
    settings: &Settings,
) -> CategoricalVerdict {
    compare_with(baseline, base_rows, current, settings, None)
}

/// The per-category evidence of a verdict: the category whose share moved the most
/// improbably, given the spread of its share across the earlier frames.
struct ShareShift {
    name: String,
    before: f64,
    now: f64,
    /// Probability of a share at least this far out (beyond the minimum change), over all the
    /// categories tested.
    p_value: f64,
}

fn compare_with(
    baseline: &[(String, u64)],
    base_rows: f64,
    current: &[(String, u64)],
    settings: &Settings,
    history: Option<&CategoryHistory>,
) -> CategoricalVerdict {
    let mut top: Vec<&(String, u64)> = baseline.iter().filter(|(_, n)| *n > 0).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_K);
    let count_in =
        |table: &[(String, u64)], name: &str| table.iter().filter(|(n, _)| n == name).map(|(_, c)| *c).sum::<u64>();
    let base_total: u64 = baseline.iter().map(|(_, n)| n).sum();
    let current_total: u64 = current.iter().map(|(_, n)| n).sum();
    let mut base_counts: Vec<f64> = top.iter().map(|(_, n)| *n as f64).collect();
    let mut current_counts: Vec<f64> = top.iter().map(|(name, _)| count_in(current, name) as f64).collect();
    base_counts.push(base_total as f64 - base_counts.iter().sum::<f64>());
    current_counts.push(current_total as f64 - current_counts.iter().sum::<f64>());

    // Half a row of smoothing keeps logarithms finite for empty cells.
    let shares = |counts: &[f64]| {
        let total: f64 = counts.iter().map(|c| c + 0.5).sum();
        counts.iter().map(|c| (c + 0.5) / total).collect::<Vec<f64>>()
    };
    let (b, c) = (shares(&base_counts), shares(&current_counts));
    let psi: f64 = b.iter().zip(&c).map(|(b, c)| (c - b) * (c / b).ln()).sum();
    let kl = |p: &[f64], q: &[f64]| -> f64 { p.iter().zip(q).map(|(p, q)| p * (p / q).log2()).sum() };
    let mixture: Vec<f64> = b.iter().zip(&c).map(|(b, c)| (b + c) / 2.0).collect();
    let jensen_shannon = (0.5 * kl(&b, &mixture) + 0.5 * kl(&c, &mixture)).clamp(0.0, 1.0);

    let cells = b.len() as f64;
    // PSI of two samples from one distribution is about chi²(k-1)·(1/n₁ + 1/n₂).
    // The chi² approximation is optimistic for a sample of a few dozen rows (most cells hold
    // zero or one row, and the half-row smoothing inflates their terms): a wider allowance.
    let allowance = if current_total < 50 { 4.0 } else { 3.0 };
    let spreads = history.map(|h| h.spreads(&top, base_rows)).unwrap_or_default();
    // Shares that vary from frame to frame beyond sampling noise add their variance.
    let dispersion: f64 = spreads.iter().map(|s| s.between / s.share).sum();
    let noise =
        allowance * ((cells - 1.0) * (1.0 / base_rows.max(1.0) + 1.0 / (current_total.max(1) as f64)) + dispersion);
    let base_threshold = match settings.sensitivity {
        Sensitivity::Low => 0.5,
        Sensitivity::Medium => 0.25,
        Sensitivity::High => 0.1,
        Sensitivity::FalseAlarmRate(rate) => 0.25 * (rate / 1e-4).powf(-0.2),
    };
    let threshold = base_threshold + noise;

    // -log10 P(no row of a category): Poisson, and given frames, beta-binomial with the
    // category's spread.
    let absence = |name: &str, rows: u64| -> (f64, f64) {
        let share = rows as f64 / base_total.max(1) as f64;
        let poisson = share * current_total as f64 * std::f64::consts::LOG10_E;
        match spreads.iter().find(|s| s.name == name) {
            Some(spread) => (poisson, -lower_tail(0, current_total, spread.share, spread.variance).max(1e-300).log10()),
            None => (poisson, poisson),
        }
    };
    let disappeared: Vec<(String, f64)> = top
        .iter()
        .filter(|(name, n)| *n as f64 / base_total.max(1) as f64 >= MIN_SHARE_TO_MISS && count_in(current, name) == 0)
        .map(|(name, n)| (name.clone(), absence(name, *n)))
        .filter(|(_, (poisson, spread))| {
            *poisson >= MIN_EXPECTED_ROWS * std::f64::consts::LOG10_E
                && *spread >= MIN_EVIDENCE_WITH_SPREAD * std::f64::consts::LOG10_E
        })
        .map(|(name, (_, spread))| (name, spread))
        .collect();
    let missing = disappeared.iter().map(|(_, evidence)| *evidence).fold(0.0, f64::max);
    let disappeared: Vec<String> = disappeared.into_iter().map(|(name, _)| name).collect();
    let mut current_top: Vec<&(String, u64)> = current.iter().filter(|(_, n)| *n > 0).collect();
    current_top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let appeared: Vec<String> = current_top
        .iter()
        .take(TOP_K)
        .filter(|(name, _)| count_in(baseline, name) == 0)
        .map(|(name, _)| name.clone())
        .collect();
    let alpha =
        settings.sensitivity.false_alarm_rate() * history.map_or(1.0, |h| (h.step.max(1) as f64 / DAY as f64).min(1.0));
    let shift = share_shift(&spreads, current, current_total);
    let shifted = shift.as_ref().is_some_and(|s| s.p_value < alpha);
    let anomaly = psi > threshold || !disappeared.is_empty() || shifted;
    let threshold_score = -settings.sensitivity.false_alarm_rate().log10();
    let shift_score = shift.as_ref().map_or(0.0, |s| -s.p_value.max(1e-300).log10());
    let score = (threshold_score * psi / threshold).max(missing).max(shift_score);
    let mut explanation = format!(
        "distribution shift PSI {} (threshold {}), Jensen–Shannon {}",
        format::approx(psi),
        format::approx(threshold),
        format::approx(jensen_shannon)
    );
    if !disappeared.is_empty() {
        explanation.push_str(&format!("; disappeared: {}", disappeared.join(", ")));
    }
    if !appeared.is_empty() {
        explanation.push_str(&format!("; new: {}", appeared.join(", ")));
    }
    if let Some(shift) = shift.filter(|_| shifted) {
        explanation.push_str(&format!(
            "; share of {} {} (usually {})",
            shift.name,
            format::percent(shift.now),
            format::percent(shift.before)
        ));
    }
    CategoricalVerdict { psi, jensen_shannon, threshold, disappeared, appeared, anomaly, score, explanation }
}

/// Rows of one category summed over the frames of a [`CategoryHistory`].
#[derive(Debug, Clone, Copy, Default)]
struct CategorySums {
    /// Σ rows of the category.
    rows: u64,
    /// Σ rows² / frame rows: with `rows`, the frames' spread of the category's share.
    weighted_squares: f64,
}

/// A column's earlier frequency tables (frames), summed so that frames can be added and
/// removed as a trailing window moves: the baseline of [`CategoryHistory::compare`].
///
/// Besides the summed frequencies it keeps, per category, how much its share varied from
/// frame to frame. Batches of real data differ more than multinomial samples of one
/// distribution: a category's share moves a little from batch to batch. Judged against the
/// summed frequencies alone (PSI), a share that tripled from 5 % to 14 % is within the noise
/// allowance of any threshold that keeps those batch-to-batch moves quiet; judged against the
/// spread of its own share, it is far out.
#[derive(Debug, Clone)]
pub struct CategoryHistory {
    frames: usize,
    rows: u64,
    rows_squared: f64,
    categories: HashMap<String, CategorySums>,
    overlapping: bool,
    step: i64,
}

impl Default for CategoryHistory {
    fn default() -> Self {
        Self::new()
    }
}

impl CategoryHistory {
    /// An empty history of independent frames (each a sample of its own rows, such as the
    /// rows a load added), judged once a day.
    pub fn new() -> Self {
        Self { frames: 0, rows: 0, rows_squared: 0.0, categories: HashMap::new(), overlapping: false, step: DAY }
    }

    /// The frames are profiles of a whole table, each seeing the rows of the one before: the
    /// baseline holds the sampling noise of one frame of their mean size, not of their sum.
    pub fn overlapping(mut self) -> Self {
        self.overlapping = true;
        self
    }

    /// The column is judged about every `step` seconds: the sensitivity is a false-alarm rate
    /// per day, so each judgement gets its share of it.
    pub fn judged_every(mut self, step: i64) -> Self {
        self.step = step;
        self
    }

    /// Frames summed.
    pub fn len(&self) -> usize {
        self.frames
    }

    /// Whether no frame is summed.
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Add a frame (category, rows).
    pub fn push(&mut self, frame: &[(String, u64)]) {
        self.apply(frame, 1.0);
    }

    /// Remove a frame added before (the oldest of a trailing window).
    pub fn remove(&mut self, frame: &[(String, u64)]) {
        self.apply(frame, -1.0);
    }

    fn apply(&mut self, frame: &[(String, u64)], sign: f64) {
        let total: u64 = frame.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return;
        }
        if sign > 0.0 {
            self.frames += 1;
            self.rows += total;
        } else {
            self.frames = self.frames.saturating_sub(1);
            self.rows = self.rows.saturating_sub(total);
        }
        self.rows_squared += sign * (total as f64) * (total as f64);
        for (name, rows) in frame.iter().filter(|(_, n)| *n > 0) {
            let weighted = sign * (*rows as f64) * (*rows as f64) / total as f64;
            if sign > 0.0 {
                let sums = self.categories.entry(name.clone()).or_default();
                sums.rows += rows;
                sums.weighted_squares += weighted;
            } else if let Some(sums) = self.categories.get_mut(name) {
                sums.rows = sums.rows.saturating_sub(*rows);
                sums.weighted_squares += weighted;
                if sums.rows == 0 {
                    self.categories.remove(name);
                }
            }
        }
        if self.frames == 0 {
            self.rows_squared = 0.0;
            self.categories.clear();
        }
    }

    /// The summed frequencies, most frequent first.
    fn summed(&self) -> Vec<(String, u64)> {
        let mut summed: Vec<(String, u64)> = self.categories.iter().map(|(name, s)| (name.clone(), s.rows)).collect();
        summed.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        summed
    }

    /// Rows of independent evidence in the summed frames.
    fn base_rows(&self) -> f64 {
        if self.overlapping { self.rows as f64 / self.frames.max(1) as f64 } else { self.rows as f64 }
    }

    /// Compare `current` value counts with the frames: [`compare_sized`] (PSI, disappeared
    /// categories) plus a test of every compared category's share against the spread of that
    /// share across the frames.
    pub fn compare(&self, current: &[(String, u64)], settings: &Settings) -> CategoricalVerdict {
        compare_with(&self.summed(), self.base_rows(), current, settings, Some(self))
    }

    /// Share and variance of each compared category (`top`, the baseline's most frequent):
    /// the variance of its share in a frame of its own, beyond that frame's sampling noise,
    /// plus the uncertainty of the share the frames give.
    ///
    /// The between-frame variance of a share is estimated per category by the method of
    /// moments with each frame weighted by its rows (as for null rates, see
    /// [`super::proportion::ProportionModel::baseline`]), and at least the pooled estimate of
    /// all categories on a relative scale (variance ∝ share²), which a few frames estimate
    /// better than each category's own.
    fn spreads(&self, top: &[&(String, u64)], base_rows: f64) -> Vec<Spread> {
        if self.frames == 0 || self.rows == 0 {
            return Vec::new();
        }
        let frames = self.frames as f64;
        let rows = self.rows as f64;
        let spread_rows = (rows - self.rows_squared / rows).max(1e-9);
        let cells: Vec<(&str, f64, f64)> = top
            .iter()
            .filter_map(|(name, _)| {
                let sums = self.categories.get(name)?;
                let count = sums.rows as f64;
                let share = (count + 0.5) / (rows + 1.0);
                let observed = (sums.weighted_squares - 2.0 * share * count + share * share * rows).max(0.0);
                let sampling = (frames - 1.0) * share * (1.0 - share);
                Some((name.as_str(), share, observed - sampling))
            })
            .collect();
        let squares: f64 = cells.iter().map(|c| c.1 * c.1).sum();
        let relative = (cells.iter().map(|c| c.2).sum::<f64>() / (spread_rows * squares.max(1e-12))).max(0.0);
        cells
            .into_iter()
            .map(|(name, share, excess)| {
                let between = if self.frames < 2 { 0.0 } else { (excess / spread_rows).max(relative * share * share) };
                Spread {
                    name: name.to_string(),
                    share,
                    between,
                    variance: (between * (1.0 + 1.0 / frames) + share * (1.0 - share) / base_rows.max(1.0))
                        .min(0.5 * share * (1.0 - share)),
                }
            })
            .collect()
    }
}

/// One compared category of a [`CategoryHistory`].
struct Spread {
    name: String,
    /// Its share of the summed frames.
    share: f64,
    /// Variance of its share from frame to frame beyond sampling noise.
    between: f64,
    /// Variance of its share in a new frame around `share`, beyond that frame's sampling noise.
    variance: f64,
}

/// The category whose share now is the least probable, given its share and its variance
/// (beta-binomial, beyond the minimum change), with the probability multiplied by the number
/// of categories tested (both sides).
fn share_shift(spreads: &[Spread], current: &[(String, u64)], current_total: u64) -> Option<ShareShift> {
    if current_total == 0 {
        return None;
    }
    let tested = spreads.len() as f64;
    let n = current_total;
    let mut best: Option<ShareShift> = None;
    for spread in spreads {
        let k: u64 = current.iter().filter(|(c, _)| *c == spread.name).map(|(_, r)| *r).sum();
        let margin = MIN_SHARE_CHANGE + MIN_RELATIVE_SHARE_CHANGE * spread.share;
        let p_up = share_tail(k, n, spread.share + margin, spread.variance, true);
        let p_down = share_tail(k, n, spread.share - margin, spread.variance, false);
        let p_value = (2.0 * tested * p_up.min(p_down)).min(1.0);
        if best.as_ref().is_none_or(|b| p_value < b.p_value) {
            best =
                Some(ShareShift { name: spread.name.clone(), before: spread.share, now: k as f64 / n as f64, p_value });
        }
    }
    best
}

/// P(X ≥ k) (`upper`) or P(X ≤ k) of a beta-binomial count of `n` rows with share `mean` and
/// between-frame variance `variance`; 1 on the near side of the mean. Exact tails only where
/// they matter: where the normal approximation gives more than 1 %, it is taken.
fn share_tail(k: u64, n: u64, mean: f64, variance: f64, upper: bool) -> f64 {
    if mean <= 0.0 || mean >= 1.0 {
        return 1.0;
    }
    let (nf, kf) = (n as f64, k as f64);
    if (upper && kf <= nf * mean) || (!upper && kf >= nf * mean) {
        return 1.0;
    }
    let sd = (nf * mean * (1.0 - mean) + nf * nf * variance).sqrt().max(1e-12);
    let z = if upper { (kf - 0.5 - nf * mean) / sd } else { (nf * mean - kf - 0.5) / sd };
    let approximate = super::stats::normal_sf(z);
    if approximate > 0.01 {
        return approximate;
    }
    if upper { upper_tail(k, n, mean, variance) } else { lower_tail(k, n, mean, variance) }
}

/// Judges a column's value frequencies now against its earlier frequency tables (oldest
/// first, the ones a trailing window and the user's labels leave), as the agent does at run
/// time. The baseline is their sum, with the sampling noise of one table of their mean size:
/// profiles of a whole table overlap, so summing their rows would overstate the evidence
/// ([`CategoryHistory::overlapping`]); each category's share is also judged against its spread
/// across the tables.
/// `previous_anomaly` says whether the column's last verdict was an anomaly: one alert per
/// excursion. The verdict's value is the PSI; its expected range is 0 to the threshold. An
/// anomaly can also come from one category's share (the PSI then within its range): the
/// explanation names the category and its usual share. The column is profiled about every
/// `step` seconds: each verdict gets that share of the sensitivity's daily false-alarm rate (a
/// day or more: all of it). A profile without a non-null value is not judged.
pub fn judge_history(
    history: &[Vec<(String, u64)>],
    current: &[(String, u64)],
    settings: &Settings,
    step: i64,
    timestamp: i64,
    previous_anomaly: bool,
) -> Verdict {
    Verdict::of_shift(
        settings,
        timestamp,
        history.len(),
        (MIN_BASELINE_FRAMES, "profiles of the column's values"),
        previous_anomaly,
        || {
            if current.iter().all(|(_, n)| *n == 0) {
                return Err("no non-null value in this profile, nothing to compare".into());
            }
            let mut frames = CategoryHistory::new().overlapping().judged_every(step);
            for frame in history {
                frames.push(frame);
            }
            let verdict = frames.compare(current, settings);
            Ok(Shift {
                value: verdict.psi,
                high: verdict.threshold,
                forecast: 0.0,
                score: verdict.score,
                anomaly: verdict.anomaly,
                explanation: verdict.explanation,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Deviation, Status};

    fn table(rows: &[(&str, u64)]) -> Vec<(String, u64)> {
        rows.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn same_distribution_is_not_a_shift() {
        let base = table(&[("FR", 5_000), ("DE", 3_000), ("US", 2_000)]);
        let now = table(&[("FR", 510), ("DE", 290), ("US", 200)]);
        let verdict = compare(&base, &now, &Settings::default());
        assert!(!verdict.anomaly, "{verdict:?}");
        assert!(verdict.psi < 0.01 && verdict.jensen_shannon < 0.01);
    }

    #[test]
    fn a_disappearing_category_is_flagged_by_name() {
        let base = table(&[("FR", 5_000), ("DE", 3_000), ("US", 2_000)]);
        let now = table(&[("FR", 620), ("DE", 380)]);
        let verdict = compare(&base, &now, &Settings::default());
        assert!(verdict.anomaly);
        assert_eq!(verdict.disappeared, vec!["US".to_string()]);
        assert!(verdict.explanation.contains("disappeared: US"), "{}", verdict.explanation);
        // With only 20 rows, 4 US rows were expected: absence is not evidence.
        let tiny = table(&[("FR", 12), ("DE", 8)]);
        assert!(compare(&base, &tiny, &Settings::default()).disappeared.is_empty());
    }

    #[test]
    fn small_samples_of_the_same_distribution_rarely_alert() {
        // Twelve categories, each half as common as the one before, and a trailing week of 400
        // rows (a table of a few rows per hour); samples of 5 to 49 rows drawn from the same
        // shares. Most cells of such a sample hold zero or one row, where the chi² allowance
        // alone is optimistic.
        let names: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
        let weights: Vec<u64> = (0..12).map(|i| 4_096 >> i).collect();
        let total_weight: u64 = weights.iter().sum();
        let base: Vec<(String, u64)> =
            names.iter().zip(&weights).map(|(n, w)| (n.clone(), (400 * w).div_ceil(total_weight))).collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut alerts = 0;
        let trials = 4_000;
        for trial in 0..trials {
            let rows = 5 + trial % 45;
            let mut counts = vec![0u64; names.len()];
            for _ in 0..rows {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let mut pick = state % total_weight;
                let mut category = 0;
                while pick >= weights[category] {
                    pick -= weights[category];
                    category += 1;
                }
                counts[category] += 1;
            }
            let now: Vec<(String, u64)> = names.iter().cloned().zip(counts).filter(|(_, c)| *c > 0).collect();
            alerts += usize::from(compare(&base, &now, &Settings::default()).anomaly);
        }
        assert!(alerts * 1_000 <= trials, "{alerts} alerts in {trials} samples");
    }

    #[test]
    fn history_judges_after_three_profiles_and_alerts_once_per_excursion() {
        let frame = table(&[("FR", 5_000), ("DE", 3_000), ("US", 2_000)]);
        let settings = Settings::default();
        let cold = judge_history(&[frame.clone(), frame.clone()], &frame, &settings, 86_400, 100, false);
        assert_eq!(cold.status, Status::ColdStart);
        assert!(!cold.anomaly && cold.explanation.as_str().contains("2 of 3"), "{}", cold.explanation.as_str());

        let history = vec![frame.clone(); 5];
        let same = judge_history(
            &history,
            &table(&[("FR", 5_020), ("DE", 2_990), ("US", 1_990)]),
            &settings,
            86_400,
            100,
            false,
        );
        assert_eq!(same.status, Status::Learned);
        assert!(!same.anomaly && same.value < 0.01, "{same:?}");

        let gone = table(&[("FR", 6_200), ("DE", 3_800)]);
        let first = judge_history(&history, &gone, &settings, 86_400, 100, false);
        assert!(first.anomaly && first.alert, "{first:?}");
        assert!(first.explanation.as_str().contains("disappeared: US"));
        assert!(first.score > 3.0 && first.direction == Some(Deviation::Above));
        let later = judge_history(&history, &gone, &settings, 86_400, 200, true);
        assert!(later.anomaly && !later.alert);
    }

    #[test]
    fn history_flags_a_tripled_share_that_the_psi_leaves_under_its_threshold() {
        // Profiles of 20 000 rows in which "e" holds 5 %, give or take a few rows; now 15 %.
        let history: Vec<Vec<(String, u64)>> = (0..7)
            .map(|i| table(&[("a", 8_000 + 10 * i), ("b", 6_000), ("c", 5_000 - 10 * i), ("e", 1_000 + (i % 2))]))
            .collect();
        let now = table(&[("a", 7_000), ("b", 5_300), ("c", 4_700), ("e", 3_000)]);
        let settings = Settings::default();
        let verdict = judge_history(&history, &now, &settings, 86_400, 100, false);
        assert!(verdict.anomaly && verdict.alert && verdict.score > 6.0, "{verdict:?}");
        assert!(verdict.value < verdict.expected.unwrap().high, "the PSI alone is within its range: {verdict:?}");
        assert!(verdict.explanation.as_str().contains("share of e 15"), "{}", verdict.explanation.as_str());
    }

    #[test]
    fn overlapping_profiles_do_not_count_as_independent_rows() {
        // Five profiles of the same 60 rows: the baseline holds 60 rows of evidence, not 300.
        let frame = table(&[("a", 20), ("b", 20), ("c", 20)]);
        let now = table(&[("a", 30), ("b", 18), ("c", 12)]);
        let settings = Settings::default();
        let summed = compare(&table(&[("a", 100), ("b", 100), ("c", 100)]), &now, &settings);
        let judged = judge_history(&vec![frame; 5], &now, &settings, 86_400, 0, false);
        assert!(judged.expected.unwrap().high > summed.threshold, "{judged:?} {summed:?}");
        assert!((judged.value - summed.psi).abs() < 1e-12);
    }

    #[test]
    fn an_empty_profile_is_not_judged() {
        let frame = table(&[("FR", 5_000), ("DE", 3_000)]);
        let v = judge_history(&vec![frame; 4], &[], &Settings::default(), 86_400, 500, false);
        assert!(v.status != Status::Learned && !v.anomaly, "{v:?}");
        assert!(v.explanation.as_str().contains("no non-null value"));
    }

    #[test]
    fn excluded_times_are_not_judged() {
        let frame = table(&[("FR", 5_000), ("DE", 3_000)]);
        let mut settings = Settings::default();
        settings.exclude.push(crate::detect::TimeRange { start: 0, end: 1_000 });
        let v = judge_history(&vec![frame; 4], &table(&[("FR", 10)]), &settings, 86_400, 500, false);
        assert_eq!(v.status, Status::Excluded);
        assert!(!v.anomaly);
    }

    #[test]
    fn a_skewed_distribution_is_flagged() {
        let base = table(&[("a", 2_500), ("b", 2_500), ("c", 2_500), ("d", 2_500)]);
        let now = table(&[("a", 9_000), ("b", 400), ("c", 300), ("d", 300), ("e", 50)]);
        let verdict = compare(&base, &now, &Settings::default());
        assert!(verdict.anomaly && verdict.psi > 1.0, "{verdict:?}");
        assert_eq!(verdict.appeared, vec!["e".to_string()]);
    }

    /// xorshift64 uniform in (0, 1).
    fn uniform(state: &mut u64) -> f64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        ((*state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// `rows` rows drawn one by one from `shares` (summing to 1).
    fn sample(state: &mut u64, names: &[&str], shares: &[f64], rows: u64) -> Vec<(String, u64)> {
        let mut counts = vec![0u64; shares.len()];
        for _ in 0..rows {
            let mut pick = uniform(state);
            let mut category = 0;
            while category + 1 < shares.len() && pick >= shares[category] {
                pick -= shares[category];
                category += 1;
            }
            counts[category] += 1;
        }
        names.iter().map(|n| n.to_string()).zip(counts).filter(|(_, c)| *c > 0).collect()
    }

    /// Shares moved by a log-normal factor of `relative` sd each, renormalised.
    fn jittered(state: &mut u64, shares: &[f64], relative: f64) -> Vec<f64> {
        let moved: Vec<f64> = shares
            .iter()
            .map(|s| {
                let normal = (-2.0 * uniform(state).ln()).sqrt() * (std::f64::consts::TAU * uniform(state)).cos();
                s * (relative * normal).exp()
            })
            .collect();
        let total: f64 = moved.iter().sum();
        moved.iter().map(|s| s / total).collect()
    }

    #[test]
    fn a_five_percent_category_that_triples_is_flagged_against_its_frames() {
        // Two weeks of daily loads of about 800 rows whose shares move by 5 % from load to load;
        // then category "e" (5 %) triples to 13.6 % of a load of 800 rows.
        let names = ["a", "b", "c", "d", "e"];
        let shares = [0.35, 0.25, 0.2, 0.15, 0.05];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut history = CategoryHistory::new();
        for day in 0..14 {
            let jitter = jittered(&mut state, &shares, 0.05);
            history.push(&sample(&mut state, &names, &jitter, 750 + 10 * day));
        }
        let now = table(&[("a", 258), ("b", 184), ("c", 148), ("d", 111), ("e", 109)]);
        let settings = Settings::default();
        let verdict = history.compare(&now, &settings);
        assert!(verdict.anomaly && verdict.score > 6.0, "{verdict:?}");
        assert!(verdict.explanation.contains("share of e 13"), "{}", verdict.explanation);
        // The PSI of the summed frames alone (0.1) stays under its threshold (0.25 and more).
        let summed = compare_sized(&history.summed(), history.base_rows(), &now, &settings);
        assert!(!summed.anomaly && summed.psi < 0.15, "{summed:?}");
    }

    #[test]
    fn frames_with_natural_overdispersion_rarely_alert() {
        // Six categories whose shares move by 10 % from batch to batch (well beyond multinomial
        // sampling for batches of thousands of rows), batches of 50 to 3 000 rows, each judged
        // against the fourteen before it. Judged as multinomial samples of the summed shares,
        // a batch of 3 000 rows whose 30 % category moved by 3 points is far out.
        let names = ["a", "b", "c", "d", "e", "f"];
        let shares = [0.3, 0.25, 0.2, 0.12, 0.08, 0.05];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let settings = Settings::default();
        let mut window: std::collections::VecDeque<Vec<(String, u64)>> = std::collections::VecDeque::new();
        let mut history = CategoryHistory::new();
        let (mut alerts, mut share_alerts, mut judged) = (0, 0, 0);
        for batch in 0..1_500 {
            let rows = 50 + (uniform(&mut state) * 2_950.0) as u64;
            let jitter = jittered(&mut state, &shares, 0.1);
            let frame = sample(&mut state, &names, &jitter, rows);
            if window.len() == 14 {
                let verdict = history.compare(&frame, &settings);
                judged += 1;
                alerts += usize::from(verdict.anomaly);
                share_alerts += usize::from(verdict.explanation.contains("share of"));
                if let Some(old) = window.pop_front() {
                    history.remove(&old);
                }
            }
            history.push(&frame);
            window.push_back(frame);
            let _ = batch;
        }
        assert!(alerts <= 3 && share_alerts <= 2, "{alerts} alerts ({share_alerts} of a share) in {judged} batches");
    }

    #[test]
    fn a_category_that_came_in_a_burst_is_no_disappearance_when_gone() {
        // Seventeen loads of a/b/c, and three in which every value was spelled differently (a
        // format change, since reverted): A, B and C hold 5 % of the summed rows each.
        let normal = table(&[("a", 500), ("b", 300), ("c", 200)]);
        let renamed = table(&[("A", 500), ("B", 300), ("C", 200)]);
        let mut history = CategoryHistory::new();
        for day in 0..20 {
            history.push(if (5..8).contains(&day) { &renamed } else { &normal });
        }
        let now = table(&[("a", 510), ("b", 295), ("c", 195)]);
        let verdict = history.compare(&now, &Settings::default());
        assert!(!verdict.anomaly && verdict.disappeared.is_empty(), "{verdict:?}");
        // Judged against the summed rows alone, all three had disappeared.
        let summed = compare(&history.summed(), &now, &Settings::default());
        assert!(summed.anomaly && summed.disappeared.len() == 3, "{summed:?}");
        // Without the burst, a category present in every load that vanishes is named.
        let mut steady = CategoryHistory::new();
        for _ in 0..20 {
            steady.push(&normal);
        }
        let gone = table(&[("a", 620), ("b", 380)]);
        let verdict = steady.compare(&gone, &Settings::default());
        assert!(verdict.anomaly && verdict.disappeared == vec!["c".to_string()], "{verdict:?}");
    }

    #[test]
    fn a_category_whose_share_wanders_is_still_missed_at_ten_expected_rows() {
        // Daily loads of 400 rows in which "c" holds 7–15 %, more spread than sampling gives.
        // 110 rows without "c" lack 12 expected rows (Poisson e^-12); with the spread of its
        // share, no row of it has a probability of e^-8.4: less evidence, but not a category
        // that came in a burst.
        let history: Vec<Vec<(String, u64)>> =
            [28, 60, 34, 56, 30, 54, 46].iter().map(|c| table(&[("a", 220), ("b", 180 - c), ("c", *c)])).collect();
        let mut frames = CategoryHistory::new();
        for frame in &history {
            frames.push(frame);
        }
        let now = table(&[("a", 62), ("b", 48)]);
        let verdict = frames.compare(&now, &Settings::default());
        assert!(verdict.anomaly && verdict.disappeared == vec!["c".to_string()], "{verdict:?}");
    }

    #[test]
    fn a_history_that_moves_equals_one_built_afresh() {
        let mut state = 7_u64;
        let names = ["a", "b", "c", "d"];
        let frames: Vec<Vec<(String, u64)>> = (0..12)
            .map(|i| {
                let jitter = jittered(&mut state, &[0.4, 0.3, 0.2, 0.1], 0.1);
                sample(&mut state, &names[..if i % 3 == 0 { 3 } else { 4 }], &jitter, 300 + 20 * i)
            })
            .collect();
        let mut moving = CategoryHistory::new();
        for frame in &frames {
            moving.push(frame);
        }
        for frame in &frames[..5] {
            moving.remove(frame);
        }
        let mut fresh = CategoryHistory::new();
        for frame in &frames[5..] {
            fresh.push(frame);
        }
        assert_eq!(moving.len(), 7);
        let now = table(&[("a", 100), ("b", 150), ("c", 40), ("d", 10)]);
        let (a, b) = (moving.compare(&now, &Settings::default()), fresh.compare(&now, &Settings::default()));
        assert!((a.score - b.score).abs() < 1e-6 && (a.threshold - b.threshold).abs() < 1e-9, "{a:?} {b:?}");
        assert_eq!(a.explanation, b.explanation);
    }
}
