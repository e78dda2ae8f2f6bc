//! Two-sample Kolmogorov–Smirnov test for a numeric column's values: a random sample of the
//! column now against the union of its samples of the trailing week.
//!
//! This module owns the test itself ([`two_sample`], [`test`]: the statistic at distinct values,
//! an exact p-value for small samples, the Kolmogorov distribution with Stephens' correction
//! otherwise) and the verdict the agent stores for it ([`judge_samples`], [`judge`]: cold start,
//! exclusions, the false-alarm rate per check, a minimum effect size, the column's own
//! day-to-day spread, one alert per excursion and a sentence naming the median and p95 before
//! and after). The test is two-sided: `direction` does not apply.
//!
//! *Ties.* The statistic is evaluated only after each run of equal values, where both
//! empirical distribution functions are defined. The exact p-value is conditional on the tie
//! pattern of the pooled sample (a random split of the pooled values into the two samples,
//! with the statistic looked at only where the pooled values change), so it stays exact for a
//! column of integers; the asymptotic p-value assumes continuous values and is conservative
//! (too large) under ties.
//!
//! *Exact p-value.* `P(D ≥ d)` is the share of monotone lattice paths from `(0, 0)` to
//! `(m, n)` (one step per pooled value, right for the first sample, up for the second) that
//! reach `|i/m − j/n| ≥ d` at a checked step. It is summed over the first such step of each
//! path: the share of paths to that point that stayed inside until then, times the
//! hypergeometric probability that a random path passes through it. Every term is positive,
//! so a tail of 1e-12 is as precise as one of 0.3 (no `1 − P(D < d)` cancellation). The
//! recursion costs `m·n` steps; it is used when `m·n ≤` [`EXACT_MAX_CELLS`].
//!
//! *Asymptotic p-value.* `Q(λ) = 2 Σ (−1)^(k−1) exp(−2k²λ²)` with
//! `λ = (√nₑ + 0.12 + 0.11/√nₑ)·D` and `nₑ = m·n/(m + n)` (Stephens, 1970), evaluated by its
//! theta-function form below `λ = 1.18`, where the alternating series converges slowly.

use serde::{Deserialize, Serialize};

use super::calendar::DAY;
use super::format;
use super::settings::Settings;
use super::stats;
use super::verdict::{Shift, Verdict};

/// Earlier samples a column needs before [`judge`] gives a verdict.
pub const MIN_BASELINE_SAMPLES: usize = 3;
/// Values (not null, not NaN) the current sample and the baseline need before [`judge`] gives a
/// verdict: below this the test has next to no power and the quantiles mean little.
pub const MIN_VALUES: u64 = 20;
/// Smallest KS distance that counts as an anomaly whatever the p-value (a tenth of the values
/// moved past some threshold): samples of thousands of values make trivial shifts significant.
/// `min_change` raises it (0.2 = at least a fifth of the values moved).
pub const MIN_DISTANCE: f64 = 0.1;
/// A verdict also needs `D` beyond the critical distance by this many times the earlier
/// samples' spread beyond sampling noise (the median over them of each one's distance to the
/// union of the others, less that distance's median under sampling noise alone): a column whose
/// samples differ from day to day (a drifting timestamp or id, a weekly rhythm) is judged
/// against its own variability, not against sampling noise alone.
pub const SPREAD_FACTOR: f64 = 2.5;
/// Largest `m·n` for which the p-value is computed exactly (about 200 values on each side).
pub const EXACT_MAX_CELLS: u64 = 40_000;

/// A sample of a numeric column: its distinct values in increasing order with how often each
/// was seen. NaNs and zero multiplicities are dropped, equal values merged, `-0.0` is `0.0`.
/// Serialises as a list of `[value, multiplicity]` pairs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "Vec<(f64, u64)>", into = "Vec<(f64, u64)>")]
pub struct Sample {
    values: Vec<(f64, u64)>,
    len: u64,
}

impl Sample {
    /// A sample of plain values (each counted once).
    pub fn from_values(values: &[f64]) -> Self {
        Self::build(values.iter().map(|&v| (v, 1)).collect())
    }

    /// A sample of `(value, multiplicity)` pairs, in any order, possibly repeating values.
    pub fn from_counts(pairs: &[(f64, u64)]) -> Self {
        Self::build(pairs.to_vec())
    }

    /// The union of several samples (multiplicities added).
    pub fn union<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Self {
        Self::build(samples.into_iter().flat_map(|s| s.values.iter().copied()).collect())
    }

    fn build(mut pairs: Vec<(f64, u64)>) -> Self {
        pairs.retain(|(v, n)| !v.is_nan() && *n > 0);
        for pair in &mut pairs {
            pair.0 += 0.0; // -0.0 + 0.0 is 0.0
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut values: Vec<(f64, u64)> = Vec::with_capacity(pairs.len());
        for (value, count) in pairs {
            match values.last_mut() {
                Some(last) if last.0 == value => last.1 += count,
                _ => values.push((value, count)),
            }
        }
        let len = values.iter().map(|(_, n)| n).sum();
        Self { values, len }
    }

    /// Number of values (multiplicities summed).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the sample holds no value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of distinct values.
    pub fn distinct(&self) -> usize {
        self.values.len()
    }

    /// The distinct values in increasing order with their multiplicities.
    pub fn counts(&self) -> &[(f64, u64)] {
        &self.values
    }

    /// The `q`-quantile (`0 ≤ q ≤ 1`), interpolating between order statistics; `None` when
    /// empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.len == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * (self.len - 1) as f64;
        let below = rank.floor() as u64;
        let low = self.at_rank(below);
        let fraction = rank - below as f64;
        if fraction == 0.0 {
            return Some(low);
        }
        let high = self.at_rank(below + 1);
        Some(low + fraction * (high - low))
    }

    /// The value at 0-based `rank` in sorted order.
    fn at_rank(&self, rank: u64) -> f64 {
        let mut seen = 0;
        for &(value, count) in &self.values {
            seen += count;
            if rank < seen {
                return value;
            }
        }
        self.values.last().map_or(f64::NAN, |v| v.0)
    }
}

impl From<Vec<(f64, u64)>> for Sample {
    fn from(pairs: Vec<(f64, u64)>) -> Self {
        Self::build(pairs)
    }
}

impl From<Sample> for Vec<(f64, u64)> {
    fn from(sample: Sample) -> Self {
        sample.values
    }
}

/// The outcome of a two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KsResult {
    /// `D = max |F_a(x) − F_b(x)|` over the distinct values, in [0, 1].
    pub statistic: f64,
    /// `P(D ≥ statistic)` when both samples come from one distribution, in (0, 1].
    pub p_value: f64,
    /// Values in the first sample (NaNs dropped).
    pub n_a: u64,
    /// Values in the second sample (NaNs dropped).
    pub n_b: u64,
    /// Whether the p-value is exact (`n_a·n_b ≤` [`EXACT_MAX_CELLS`]) or asymptotic.
    pub exact: bool,
}

/// Two-sample KS test of plain values (NaNs ignored). An empty side gives `D = 0`, `p = 1`.
pub fn two_sample(a: &[f64], b: &[f64]) -> KsResult {
    test(&Sample::from_values(a), &Sample::from_values(b))
}

/// Two-sample KS test of two [`Sample`]s (values with multiplicities).
pub fn test(a: &Sample, b: &Sample) -> KsResult {
    let (m, n) = (a.len(), b.len());
    let walk = Walk::new(a, b);
    let null = Null::for_sizes(m, n, &walk);
    let p_value = if walk.max_gap == 0 { 1.0 } else { null.tail(walk.max_gap) };
    KsResult { statistic: walk.statistic(), p_value, n_a: m, n_b: n, exact: matches!(null, Null::Exact { .. }) }
}

/// The pooled walk through two samples: the largest gap `|A·n − B·m|` between their cumulative
/// counts at the end of each run of equal values (`D` times `m·n`, exact in integers), and the
/// pooled run lengths the exact null distribution conditions on.
struct Walk {
    m: u64,
    n: u64,
    max_gap: u128,
    /// Cumulative pooled counts at the end of each run of equal values.
    run_ends: Vec<u64>,
}

impl Walk {
    fn new(a: &Sample, b: &Sample) -> Self {
        let (m, n) = (a.len(), b.len());
        let mut walk = Self { m, n, max_gap: 0, run_ends: Vec::new() };
        if m == 0 || n == 0 {
            return walk;
        }
        let (mut i, mut j) = (0, 0);
        let (mut seen_a, mut seen_b) = (0u64, 0u64);
        while i < a.values.len() || j < b.values.len() {
            let next_a = a.values.get(i).map(|v| v.0);
            let next_b = b.values.get(j).map(|v| v.0);
            let value = match (next_a, next_b) {
                (Some(x), Some(y)) => x.min(y),
                (Some(x), None) => x,
                (None, Some(y)) => y,
                (None, None) => break,
            };
            if next_a == Some(value) {
                seen_a += a.values[i].1;
                i += 1;
            }
            if next_b == Some(value) {
                seen_b += b.values[j].1;
                j += 1;
            }
            let gap = (u128::from(seen_a) * u128::from(n)).abs_diff(u128::from(seen_b) * u128::from(m));
            walk.max_gap = walk.max_gap.max(gap);
            walk.run_ends.push(seen_a + seen_b);
        }
        walk
    }

    fn statistic(&self) -> f64 {
        if self.m == 0 || self.n == 0 { 0.0 } else { self.max_gap as f64 / (self.m as f64 * self.n as f64) }
    }
}

/// The null distribution of `D` for given sample sizes.
enum Null {
    /// Lattice-path recursion, conditional on the pooled tie pattern.
    Exact { m: u64, n: u64, checked: Vec<bool> },
    /// Kolmogorov distribution with Stephens' correction for sizes `m` and `n` (`n` may be an
    /// effective size); `cells` is the walk's `m·n`, which turns a gap into a distance.
    Asymptotic { m: f64, n: f64, cells: f64 },
}

impl Null {
    fn for_sizes(m: u64, n: u64, walk: &Walk) -> Self {
        if m > 0 && n > 0 && m.saturating_mul(n) <= EXACT_MAX_CELLS {
            let mut checked = vec![false; (m + n + 1) as usize];
            for &end in &walk.run_ends {
                checked[end as usize] = true;
            }
            Null::Exact { m, n, checked }
        } else {
            Null::asymptotic(m as f64, n as f64, m, n)
        }
    }

    /// The asymptotic law for sizes `m` and `n`, of a walk through samples of `walk_m` and
    /// `walk_n` values.
    fn asymptotic(m: f64, n: f64, walk_m: u64, walk_n: u64) -> Self {
        Null::Asymptotic { m, n, cells: walk_m as f64 * walk_n as f64 }
    }

    /// `P(D·m·n ≥ gap)`, in (0, 1].
    fn tail(&self, gap: u128) -> f64 {
        let p = match self {
            Null::Exact { m, n, checked } => exact_tail(*m, *n, checked, gap),
            Null::Asymptotic { m, n, cells } => kolmogorov_tail(stephens_lambda(*m, *n) * gap as f64 / cells),
        };
        p.clamp(f64::MIN_POSITIVE, 1.0)
    }

    /// The smallest distance whose tail probability is at most `alpha` (1 when none is).
    fn critical(&self, alpha: f64) -> f64 {
        match self {
            Null::Exact { m, n, .. } => {
                let cells = u128::from(m * n);
                if self.tail(cells) > alpha {
                    return 1.0;
                }
                // tail(gap) decreases with gap: the smallest gap at or below alpha.
                let (mut low, mut high) = (0u128, cells);
                while high - low > 1 {
                    let middle = low + (high - low) / 2;
                    if self.tail(middle) <= alpha { high = middle } else { low = middle }
                }
                high as f64 / cells as f64
            }
            Null::Asymptotic { m, n, .. } => {
                let (mut low, mut high) = (0.0, 40.0);
                for _ in 0..60 {
                    let middle = 0.5 * (low + high);
                    if kolmogorov_tail(middle) <= alpha { high = middle } else { low = middle }
                }
                (high / stephens_lambda(*m, *n)).min(1.0)
            }
        }
    }

    /// The median of `D` under the null (asymptotic), shown as the verdict's forecast.
    fn median(&self) -> f64 {
        let (m, n) = match self {
            Null::Exact { m, n, .. } => (*m as f64, *n as f64),
            Null::Asymptotic { m, n, .. } => (*m, *n),
        };
        (KOLMOGOROV_MEDIAN / stephens_lambda(m, n)).min(1.0)
    }
}

/// Median of the Kolmogorov distribution.
const KOLMOGOROV_MEDIAN: f64 = 0.8276;

/// The factor that turns a distance into Stephens' `λ`.
fn stephens_lambda(m: f64, n: f64) -> f64 {
    let root = (m * n / (m + n)).sqrt();
    root + 0.12 + 0.11 / root
}

/// `P(K ≥ λ)` for the Kolmogorov distribution.
fn kolmogorov_tail(lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 1.18 {
        // P(K ≤ λ) = √(2π)/λ · Σ_{k odd} exp(−k²π²/(8λ²)); at most 0.26 here.
        let y = -std::f64::consts::PI.powi(2) / (8.0 * lambda * lambda);
        let mut cdf = 0.0;
        for k in (1..=9).step_by(2) {
            cdf += (f64::from(k * k) * y).exp();
        }
        return (1.0 - (2.0 * std::f64::consts::PI).sqrt() / lambda * cdf).clamp(0.0, 1.0);
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=20 {
        let term = (-2.0 * f64::from(k * k) * lambda * lambda).exp();
        sum += sign * term;
        if term <= sum.abs() * 1e-17 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Exact `P(|i·n − j·m| ≥ gap at some checked step)` for a uniformly random lattice path from
/// `(0, 0)` to `(m, n)`, summed over each path's first such step (see the module doc).
fn exact_tail(m: u64, n: u64, checked: &[bool], gap: u128) -> f64 {
    let (mu, nu) = (m as usize, n as usize);
    // ln k! for k ≤ m + n.
    let mut ln_factorial = Vec::with_capacity(mu + nu + 1);
    ln_factorial.push(0.0f64);
    for k in 1..=mu + nu {
        ln_factorial.push(ln_factorial[k - 1] + (k as f64).ln());
    }
    let ln_binomial = |total: usize, k: usize| ln_factorial[total] - ln_factorial[k] - ln_factorial[total - k];
    let ln_paths = ln_binomial(mu + nu, mu);
    // inside[j]: share of the paths to (i, j) that have not reached the gap before (i, j).
    let mut inside = vec![0.0f64; nu + 1];
    let mut tail = 0.0;
    for i in 0..=mu {
        for j in 0..=nu {
            let share = if i == 0 && j == 0 {
                1.0
            } else {
                let steps = (i + j) as f64;
                let from_left = if i > 0 { inside[j] * i as f64 / steps } else { 0.0 };
                let from_below = if j > 0 { inside[j - 1] * j as f64 / steps } else { 0.0 };
                from_left + from_below
            };
            let reached =
                share > 0.0 && checked[i + j] && (i as u128 * u128::from(n)).abs_diff(j as u128 * u128::from(m)) >= gap;
            if reached {
                let through = ln_binomial(i + j, i) + ln_binomial(mu + nu - i - j, mu - i) - ln_paths;
                tail += share * through.exp();
                inside[j] = 0.0;
            } else {
                inside[j] = share;
            }
        }
    }
    tail
}

/// Judges a column's current sample of values against its earlier samples (oldest first, the
/// ones the trailing week and the user's labels leave), each profile run being one check: the
/// sensitivity's daily false-alarm rate applies to each verdict as a whole (as for categorical
/// columns). A column profiled several times a day should use [`judge`] with its step.
pub fn judge_samples(
    history: &[Vec<f64>],
    current: &[f64],
    settings: &Settings,
    timestamp: i64,
    previous_anomaly: bool,
) -> Verdict {
    let history: Vec<Sample> = history.iter().map(|values| Sample::from_values(values)).collect();
    judge(&history, &Sample::from_values(current), settings, DAY, timestamp, previous_anomaly)
}

/// Judges `current` against the union of the earlier samples `history`, for a column profiled
/// about every `step` seconds: each verdict gets `min(step / day, 1)` of the sensitivity's
/// daily false-alarm rate (as the seasonal and proportion models split it among the points of
/// a day). `previous_anomaly` says whether the column's last verdict was an anomaly: one alert
/// per excursion.
///
/// The verdict's value is the KS distance `D`; its expected range is 0 to the distance needed
/// to alert, its forecast the median of `D` when nothing changed. An anomaly needs a p-value
/// below the per-check rate and `D` at least the required distance: the largest of
/// [`MIN_DISTANCE`], `min_change`, and the critical distance at the per-check rate plus
/// [`SPREAD_FACTOR`] times the earlier samples' excess spread (the median over them of each
/// one's distance to the union of the others, less what sampling noise alone gives such a
/// distance). For samples of one distribution the excess is about 0 and the term is the
/// critical distance; a column that drifts or has a weekly rhythm shows it in its history, and
/// only a change well beyond it alerts. The score is `-log10 p`, kept below the alert threshold
/// while `D` is under the required distance (`threshold·D/required`).
///
/// Earlier samples may overlap (profiles of a slowly changing table see the same rows again):
/// the baseline's sampling noise is that of as many values as it holds distinct ones, at
/// least the largest single sample's and at most all of them. A sample of continuous values
/// repeated from the week before thus counts once; a column of few distinct values counts as
/// one sample's worth.
pub fn judge(
    history: &[Sample],
    current: &Sample,
    settings: &Settings,
    step: i64,
    timestamp: i64,
    previous_anomaly: bool,
) -> Verdict {
    Verdict::of_shift(
        settings,
        timestamp,
        history.len(),
        (MIN_BASELINE_SAMPLES, "samples of the column's values"),
        previous_anomaly,
        || judge_shift(history, current, settings, step),
    )
}

/// The shift of `current` against the union of `history` (enough of both), or the reason it is
/// not judged.
fn judge_shift(history: &[Sample], current: &Sample, settings: &Settings, step: i64) -> Result<Shift, String> {
    let baseline = Sample::union(history);
    if current.len() < MIN_VALUES || baseline.len() < MIN_VALUES {
        let (what, count) = if current.len() < MIN_VALUES {
            ("the current sample holds", current.len())
        } else {
            ("the earlier samples hold", baseline.len())
        };
        let mut text = format!("learning: {what} ");
        format::write_number(&mut text, count as f64);
        text.push_str(&format!(" values, {MIN_VALUES} needed for a verdict"));
        return Err(text);
    }

    let largest = history.iter().map(Sample::len).max().unwrap_or(0);
    let effective = (baseline.distinct() as u64).clamp(largest, baseline.len());
    let walk = Walk::new(current, &baseline);
    let null = if effective == baseline.len() {
        Null::for_sizes(current.len(), baseline.len(), &walk)
    } else {
        Null::asymptotic(current.len() as f64, effective as f64, current.len(), baseline.len())
    };
    let distance = walk.statistic();
    let p_value = if walk.max_gap == 0 { 1.0 } else { null.tail(walk.max_gap) };

    let alpha = (settings.sensitivity.false_alarm_rate() * (step.max(1) as f64 / DAY as f64).min(1.0)).min(0.5);
    let (spread, excess) = spread(history, &baseline);
    let minimum = MIN_DISTANCE.max(settings.min_change.unwrap_or(0.0)).min(1.0);
    let critical = null.critical(alpha);
    let required = minimum.max(critical + SPREAD_FACTOR * excess).min(1.0);
    let threshold_score = -alpha.log10();
    let raw_score = -p_value.log10();
    let score = if distance < required { raw_score.min(threshold_score * distance / required) } else { raw_score };
    let anomaly = p_value < alpha && distance >= required;
    let explanation = explain(&Sentence {
        distance,
        p_value,
        alpha,
        required,
        spread: (excess > 0.0 && critical + SPREAD_FACTOR * excess > minimum).then_some(spread),
        anomaly,
        baseline: &baseline,
        samples: history.len(),
        current,
    });
    Ok(Shift { value: distance, high: required, forecast: null.median(), score, anomaly, explanation })
}

/// The median over the earlier samples of each one's KS distance to the union of the others
/// (`F_rest = (N·F_all − nᵢ·Fᵢ)/(N − nᵢ)`: one pass over the union per sample), and the
/// median of those distances less their median under sampling noise alone (at least 0).
fn spread(history: &[Sample], union: &Sample) -> (f64, f64) {
    let distances: Vec<(f64, f64)> = history
        .iter()
        .filter(|part| !part.is_empty() && part.len() < union.len())
        .map(|part| {
            let (part_len, rest_len) = (u128::from(part.len()), u128::from(union.len() - part.len()));
            let (mut in_union, mut in_part, mut next, mut gap) = (0u128, 0u128, 0usize, 0u128);
            for &(value, count) in &union.values {
                in_union += u128::from(count);
                if part.values.get(next).is_some_and(|v| v.0 == value) {
                    in_part += u128::from(part.values[next].1);
                    next += 1;
                }
                gap = gap.max((in_part * rest_len).abs_diff((in_union - in_part) * part_len));
            }
            let distance = gap as f64 / (part_len as f64 * rest_len as f64);
            let noise = KOLMOGOROV_MEDIAN / stephens_lambda(part_len as f64, rest_len as f64);
            (distance, distance - noise)
        })
        .collect();
    let spread = stats::median_of(distances.iter().map(|d| d.0)).unwrap_or(0.0);
    let excess = stats::median_of(distances.iter().map(|d| d.1)).unwrap_or(0.0).max(0.0);
    (spread, excess)
}

/// What the verdict's sentence says.
struct Sentence<'a> {
    distance: f64,
    p_value: f64,
    alpha: f64,
    /// The distance needed to alert.
    required: f64,
    /// The earlier samples' spread, when it sets the required distance.
    spread: Option<f64>,
    anomaly: bool,
    baseline: &'a Sample,
    samples: usize,
    current: &'a Sample,
}

/// "values shifted: KS distance 0.31 (p = 2e-9) against 4 812 values of 7 earlier samples;
/// median 41.2 → 57.9, p95 88 → 130".
fn explain(s: &Sentence) -> String {
    let mut out = String::new();
    out.push_str(if s.anomaly {
        "values shifted: "
    } else if s.p_value < s.alpha {
        "values differ slightly: "
    } else {
        "values as before: "
    });
    out.push_str("KS distance ");
    format::write_approx(&mut out, s.distance);
    out.push_str(" (");
    write_p(&mut out, s.p_value);
    if !s.anomaly {
        if s.p_value < s.alpha && s.distance < s.required {
            out.push_str(", under the minimum ");
        } else {
            out.push_str(", alerts from ");
        }
        format::write_approx(&mut out, s.required);
    }
    if let Some(spread) = s.spread {
        out.push_str(if s.anomaly { "; " } else { ", " });
        out.push_str("the earlier samples differ from each other by ");
        format::write_approx(&mut out, spread);
    }
    out.push_str(") against ");
    format::write_number(&mut out, s.baseline.len() as f64);
    out.push_str(" values of ");
    format::write_number(&mut out, s.samples as f64);
    out.push_str(" earlier samples; ");
    for (name, q) in [("median", 0.5), ("p95", 0.95)] {
        if q > 0.5 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push(' ');
        format::write_approx(&mut out, s.baseline.quantile(q).unwrap_or(f64::NAN));
        out.push_str(" → ");
        format::write_approx(&mut out, s.current.quantile(q).unwrap_or(f64::NAN));
    }
    out
}

/// "p = 0.41", "p = 2e-9", "p < 1e-300".
fn write_p(out: &mut String, p: f64) {
    if p >= 0.001 {
        out.push_str("p = ");
        format::write_approx(out, format::round_significant(p, 2));
        return;
    }
    if p <= 1e-300 {
        out.push_str("p < 1e-300");
        return;
    }
    let mut exponent = p.log10().floor() as i32;
    let mut mantissa = (p / 10f64.powi(exponent)).round();
    if mantissa >= 10.0 {
        mantissa = 1.0;
        exponent += 1;
    }
    out.push_str(&format!("p = {mantissa}e{exponent}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Deviation, Status};

    /// xorshift64* uniform in (0, 1).
    struct Rng(u64);

    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
            (bits as f64 + 0.5) / (1u64 << 53) as f64
        }

        /// Standard normal (Box–Muller).
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }

        fn normals(&mut self, n: usize, shift: f64) -> Vec<f64> {
            (0..n).map(|_| self.normal() + shift).collect()
        }
    }

    #[test]
    fn identical_samples_have_distance_zero_and_p_one() {
        let values: Vec<f64> = (0..50).map(|i| (i * 7 % 13) as f64).collect();
        let result = two_sample(&values, &values);
        assert_eq!(result.statistic, 0.0);
        assert_eq!(result.p_value, 1.0);
        assert_eq!((result.n_a, result.n_b), (50, 50));
        let big: Vec<f64> = (0..3_000).map(|i| i as f64).collect();
        let result = two_sample(&big, &big);
        assert_eq!((result.statistic, result.p_value, result.exact), (0.0, 1.0, false));
    }

    #[test]
    fn nans_are_ignored_and_empty_samples_are_not_different() {
        let a = [1.0, f64::NAN, 2.0, 3.0];
        let result = two_sample(&a, &[1.0, 2.0, 3.0, f64::NAN]);
        assert_eq!((result.statistic, result.p_value, result.n_a, result.n_b), (0.0, 1.0, 3, 3));
        let empty = two_sample(&[], &a);
        assert_eq!((empty.statistic, empty.p_value), (0.0, 1.0));
    }

    #[test]
    fn the_statistic_is_taken_at_distinct_values_only() {
        // Ties across the samples: after the run of 1s both distribution functions are 1/2;
        // a statistic taken inside the run (between the a's and the b's) would say 1/2.
        let result = two_sample(&[1.0, 2.0], &[1.0, 3.0]);
        assert_eq!(result.statistic, 0.5);
        let tied = two_sample(&[1.0, 1.0, 2.0, 2.0], &[1.0, 2.0]);
        assert_eq!((tied.statistic, tied.p_value), (0.0, 1.0));
        // Multiplicities are the same as repeated values.
        let counted = test(&Sample::from_counts(&[(2.0, 2), (1.0, 2)]), &Sample::from_counts(&[(1.0, 1), (2.0, 1)]));
        assert_eq!(counted, tied);
        assert_eq!(Sample::from_values(&[-0.0, 0.0]).counts(), &[(0.0, 2)]);
    }

    #[test]
    fn samples_serialise_as_sorted_pairs() {
        let sample = Sample::from_counts(&[(3.0, 1), (1.5, 2), (f64::NAN, 4), (3.0, 2), (7.0, 0)]);
        assert_eq!((sample.len(), sample.distinct()), (5, 2));
        let json = serde_json::to_string(&sample).unwrap();
        assert_eq!(json, "[[1.5,2],[3.0,3]]");
        // Unsorted or repeated pairs read back normalised.
        let read: Sample = serde_json::from_str("[[3.0,1],[1.5,2],[3.0,2]]").unwrap();
        assert_eq!(read, sample);
        assert_eq!(sample.quantile(0.5), Some(3.0));
        assert_eq!(sample.quantile(0.0), Some(1.5));
        assert_eq!(sample.quantile(0.375), Some(2.25));
    }

    #[test]
    fn exact_p_values_match_hand_counts() {
        // m = n = 2, no ties: 6 paths; D = 1 only for aabb and bbaa.
        let result = two_sample(&[1.0, 2.0], &[3.0, 4.0]);
        assert_eq!(result.statistic, 1.0);
        assert!((result.p_value - 2.0 / 6.0).abs() < 1e-12, "{result:?}");
        // m = 3, n = 3: D = 1 for aaabbb and bbbaaa, 2 of 20 paths.
        let result = two_sample(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert!((result.p_value - 0.1).abs() < 1e-12, "{result:?}");
        // D ≥ 2/3 for m = n = 3: paths reaching |i − j| = 2: 2·C(6,3) minus the ones that
        // never do: 20 − 6 paths stay within 1 ... counted by brute force below.
        let brute = brute_force_tail(3, 3, 2.0 / 3.0);
        let result = two_sample(&[1.0, 2.0, 4.0], &[3.0, 5.0, 6.0]);
        assert!((result.statistic - 2.0 / 3.0).abs() < 1e-12);
        assert!((result.p_value - brute).abs() < 1e-12, "{result:?} {brute}");
    }

    /// P(D ≥ d) by enumerating every split of m + n distinct values.
    fn brute_force_tail(m: usize, n: usize, d: f64) -> f64 {
        let total = m + n;
        let (mut hits, mut paths) = (0u64, 0u64);
        for mask in 0u32..(1 << total) {
            if mask.count_ones() as usize != m {
                continue;
            }
            paths += 1;
            let (mut i, mut j, mut max) = (0.0, 0.0, 0.0f64);
            for k in 0..total {
                if mask & (1 << k) != 0 {
                    i += 1.0
                } else {
                    j += 1.0
                }
                max = max.max((i / m as f64 - j / n as f64).abs());
            }
            hits += u64::from(max >= d - 1e-12);
        }
        hits as f64 / paths as f64
    }

    #[test]
    fn exact_p_values_match_enumeration_for_every_distance() {
        for (m, n) in [(3, 4), (5, 5), (4, 7), (6, 9)] {
            for gap in 1..=(m * n) as u128 {
                let walk_checked = vec![true; m + n + 1];
                let exact = exact_tail(m as u64, n as u64, &walk_checked, gap);
                let brute = brute_force_tail(m, n, gap as f64 / (m * n) as f64);
                assert!((exact - brute).abs() < 1e-12, "m {m} n {n} gap {gap}: {exact} vs {brute}");
            }
        }
    }

    #[test]
    fn exact_p_values_with_ties_match_enumeration() {
        // Pooled values 1,1,1,2,2,3,3,3,3 split 4/5: the statistic is looked at after each run.
        let pooled = [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0];
        let (a, b) = ([1.0, 1.0, 1.0, 3.0], [2.0, 2.0, 3.0, 3.0, 3.0]);
        let observed = two_sample(&a, &b);
        let (mut hits, mut paths) = (0u64, 0u64);
        for mask in 0u32..(1 << pooled.len()) {
            if mask.count_ones() != 4 {
                continue;
            }
            let first: Vec<f64> = (0..pooled.len()).filter(|k| mask & (1 << k) != 0).map(|k| pooled[k]).collect();
            let second: Vec<f64> = (0..pooled.len()).filter(|k| mask & (1 << k) == 0).map(|k| pooled[k]).collect();
            paths += 1;
            hits += u64::from(two_sample(&first, &second).statistic >= observed.statistic - 1e-12);
        }
        let expected = hits as f64 / paths as f64;
        assert!(observed.exact && (observed.p_value - expected).abs() < 1e-12, "{observed:?} vs {expected}");
    }

    /// The smallest and largest ratio asymptotic / exact p-value over every attainable gap of
    /// samples of `m` and `n` distinct values whose exact tail lies in [1e-8, 0.5].
    fn asymptotic_over_exact(m: u64, n: u64) -> (f64, f64) {
        let checked = vec![true; (m + n + 1) as usize];
        let asymptotic = Null::asymptotic(m as f64, n as f64, m, n);
        let (mut low, mut high) = (f64::INFINITY, 0.0f64);
        // Gaps |i·n − j·m| are multiples of gcd(m, n); stepping by m + n visits a few hundred.
        let mut gap = u128::from(m + n);
        while gap <= u128::from(m * n) {
            let exact = exact_tail(m, n, &checked, gap);
            if (1e-8..=0.5).contains(&exact) {
                let ratio = asymptotic.tail(gap) / exact;
                (low, high) = (low.min(ratio), high.max(ratio));
            }
            gap += u128::from(m + n);
        }
        (low, high)
    }

    #[test]
    fn exact_and_asymptotic_p_values_agree_where_both_apply() {
        // The Stephens-corrected asymptotic p-value against the exact one at the same
        // distances, from p = 0.5 down to 1e-8. With equal sizes D lives on a coarse lattice
        // (steps of 1/150) and the exact tail P(D ≥ d) holds the whole atom at d: the
        // asymptotic tail is 0.77–0.99 of it. With unequal sizes the lattice is fine and they
        // agree within 2–4 per cent (0.98–1.04).
        let (low, high) = asymptotic_over_exact(150, 150);
        assert!(low > 0.75 && high < 1.0, "equal sizes: {low}–{high}");
        let (low, high) = asymptotic_over_exact(130, 190);
        assert!(low > 0.97 && high < 1.05, "unequal sizes: {low}–{high}");
    }

    #[test]
    fn tiny_exact_tails_keep_their_precision() {
        // D = 1 for 30 against 30 values: 2 / C(60, 30) ≈ 1.7e-17, far below the precision
        // of 1 − P(D < 1).
        let a: Vec<f64> = (0..30).map(f64::from).collect();
        let b: Vec<f64> = (100..130).map(f64::from).collect();
        let result = two_sample(&a, &b);
        let expected = 2.0 / 1.182_646_159_0e17;
        assert!(result.exact && (result.p_value / expected - 1.0).abs() < 1e-6, "{result:?}");
    }

    #[test]
    fn p_values_are_about_uniform_under_the_null() {
        // 3 000 draws of two samples from one normal distribution, sizes cycling through exact
        // and asymptotic cases.
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let sizes = [(20, 20), (30, 90), (100, 100), (150, 250), (400, 1_200)];
        let trials = 3_000;
        let (mut below_5, mut below_1) = (0, 0);
        for trial in 0..trials {
            let (m, n) = sizes[trial % sizes.len()];
            let result = two_sample(&rng.normals(m, 0.0), &rng.normals(n, 0.0));
            below_5 += usize::from(result.p_value < 0.05);
            below_1 += usize::from(result.p_value < 0.01);
        }
        let (f5, f1) = (below_5 as f64 / trials as f64, below_1 as f64 / trials as f64);
        // Binomial sd at 3 000 draws: 0.4 points at 5 %, 0.18 at 1 %. The exact test of a
        // lattice statistic is a little conservative (its attainable levels are discrete).
        assert!((0.035..=0.062).contains(&f5), "fraction below 0.05: {f5}");
        assert!((0.005..=0.016).contains(&f1), "fraction below 0.01: {f1}");
    }

    #[test]
    fn ties_do_not_inflate_false_alarms() {
        // Integers 0–4 (heavy ties): the exact test conditions on them, the asymptotic one is
        // conservative. Neither may reject more often than its level.
        let mut rng = Rng(7);
        let trials = 2_000;
        let mut below = [0usize; 2];
        for trial in 0..trials {
            let (m, n) = if trial % 2 == 0 { (40, 60) } else { (500, 1_500) };
            let draw = |rng: &mut Rng, k: usize| (0..k).map(|_| (rng.uniform() * 5.0).floor()).collect::<Vec<f64>>();
            let result = two_sample(&draw(&mut rng, m), &draw(&mut rng, n));
            below[trial % 2] += usize::from(result.p_value < 0.05);
        }
        let exact = below[0] as f64 / (trials / 2) as f64;
        let asymptotic = below[1] as f64 / (trials / 2) as f64;
        assert!((0.02..=0.065).contains(&exact), "exact with ties: {exact}");
        assert!(asymptotic <= 0.05, "asymptotic with ties: {asymptotic}");
    }

    fn history_of(rng: &mut Rng, samples: usize, size: usize, shift: f64) -> Vec<Vec<f64>> {
        (0..samples).map(|_| rng.normals(size, shift)).collect()
    }

    #[test]
    fn a_half_sigma_shift_in_samples_of_a_thousand_is_flagged() {
        let mut rng = Rng(42);
        let settings = Settings::default();
        let trials = 50;
        let mut flagged = 0;
        for _ in 0..trials {
            let history = history_of(&mut rng, 7, 1_000, 0.0);
            let verdict = judge_samples(&history, &rng.normals(1_000, 0.5), &settings, 0, false);
            flagged += usize::from(verdict.anomaly && verdict.alert);
        }
        assert_eq!(flagged, trials);
    }

    #[test]
    fn the_same_distribution_does_not_alert() {
        let mut rng = Rng(4242);
        let settings = Settings { sensitivity: crate::detect::Sensitivity::High, ..Settings::default() };
        let trials = 300;
        let mut flagged = 0;
        for trial in 0..trials {
            let size = [50, 300, 1_000][trial % 3];
            let history = history_of(&mut rng, 3 + trial % 5, size, 0.0);
            let verdict = judge_samples(&history, &rng.normals(size, 0.0), &settings, 0, false);
            assert_eq!(verdict.status, Status::Learned);
            flagged += usize::from(verdict.anomaly);
        }
        assert_eq!(flagged, 0);
    }

    #[test]
    fn a_trivial_shift_in_huge_samples_is_not_an_anomaly() {
        // 0.1 sigma with 5 000 values now and 35 000 before: p far below 1e-4, D about 0.04.
        let mut rng = Rng(99);
        let history = history_of(&mut rng, 7, 5_000, 0.0);
        let verdict = judge_samples(&history, &rng.normals(5_000, 0.1), &Settings::default(), 0, false);
        assert!(!verdict.anomaly && verdict.score < 4.0, "{verdict:?}");
        assert!(verdict.explanation.contains("values differ slightly"), "{}", verdict.explanation.as_str());
        // min_change raises the minimum distance: a 0.5-sigma shift (D ≈ 0.2) is kept below 0.25.
        let settings = Settings { min_change: Some(0.25), ..Settings::default() };
        let history = history_of(&mut rng, 7, 1_000, 0.0);
        let current = rng.normals(1_000, 0.5);
        let verdict = judge_samples(&history, &current, &settings, 0, false);
        assert!(!verdict.anomaly && verdict.expected.unwrap().high == 0.25, "{verdict:?}");
        assert!(judge_samples(&history, &current, &Settings::default(), 0, false).anomaly);
    }

    #[test]
    fn a_drifting_column_is_judged_against_its_own_spread() {
        // A column that moves by 0.3 sigma a day (a timestamp, an id, a slow trend): each day
        // differs from the week before by far more than sampling noise, and the next day as
        // well. The earlier samples' spread lifts the minimum distance above it.
        let mut rng = Rng(21);
        let settings = Settings::default();
        let history: Vec<Vec<f64>> = (0..7).map(|day| rng.normals(1_000, 0.3 * day as f64)).collect();
        let next = judge_samples(&history, &rng.normals(1_000, 0.3 * 7.0), &settings, 0, false);
        assert!(!next.anomaly && next.value > MIN_DISTANCE, "{next:?}");
        assert!(
            next.explanation.contains("the earlier samples differ from each other by"),
            "{}",
            next.explanation.as_str()
        );
        // A jump well beyond the drift still alerts.
        let jump = judge_samples(&history, &rng.normals(1_000, 0.3 * 7.0 + 3.0), &settings, 0, false);
        assert!(jump.anomaly, "{jump:?}");
        // Samples of one distribution: the spread is sampling noise, its excess about 0.
        let flat: Vec<Sample> = (0..7).map(|_| Sample::from_values(&rng.normals(1_000, 0.0))).collect();
        let union = Sample::union(&flat);
        let (noise, excess) = spread(&flat, &union);
        assert!(noise > 0.01 && excess < 0.01, "{noise} {excess}");
        // Each sample's distance to the others, as the test computes it.
        let mut direct: Vec<f64> = (0..flat.len())
            .map(|i| {
                let others = Sample::union(flat.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| s));
                test(&flat[i], &others).statistic
            })
            .collect();
        direct.sort_by(f64::total_cmp);
        assert!((noise - direct[3]).abs() < 1e-12, "{noise} vs {direct:?}");
    }

    #[test]
    fn small_samples_of_one_distribution_keep_their_false_alarm_rate() {
        // Samples of 40 values differ from each other by about 0.14 from sampling noise alone;
        // only the spread beyond that noise may lift the required distance, or small samples
        // would never reach their false-alarm rate (2.5 times the raw spread: 0 alerts).
        let mut rng = Rng(2026);
        let settings =
            Settings { sensitivity: crate::detect::Sensitivity::FalseAlarmRate(0.02), ..Settings::default() };
        let trials = 500;
        let mut flagged = 0;
        for _ in 0..trials {
            let history = history_of(&mut rng, 7, 40, 0.0);
            flagged += usize::from(judge_samples(&history, &rng.normals(40, 0.0), &settings, 0, false).anomaly);
        }
        // 2 % of 500 is 10 (binomial sd 3.1).
        assert!((3..=20).contains(&flagged), "{flagged} of {trials}");
    }

    #[test]
    fn tiny_samples_and_short_histories_cold_start() {
        let mut rng = Rng(5);
        let settings = Settings::default();
        let two = history_of(&mut rng, 2, 100, 0.0);
        let verdict = judge_samples(&two, &rng.normals(100, 3.0), &settings, 0, false);
        assert_eq!(verdict.status, Status::ColdStart);
        assert!(!verdict.anomaly && verdict.explanation.contains("2 of 3 earlier samples"));
        let history = history_of(&mut rng, 5, 100, 0.0);
        let mut tiny = rng.normals(19, 3.0);
        tiny.push(f64::NAN);
        let verdict = judge_samples(&history, &tiny, &settings, 0, false);
        assert_eq!(verdict.status, Status::ColdStart);
        assert!(
            verdict.explanation.contains("the current sample holds 19 values, 20 needed"),
            "{}",
            verdict.explanation.as_str()
        );
        let empty_history = vec![vec![f64::NAN; 10]; 4];
        let verdict = judge_samples(&empty_history, &rng.normals(100, 0.0), &settings, 0, false);
        assert_eq!(verdict.status, Status::ColdStart);
        assert!(verdict.explanation.contains("the earlier samples hold 0 values"));
    }

    #[test]
    fn alerts_once_per_excursion_and_skips_excluded_times() {
        let mut rng = Rng(11);
        let history = history_of(&mut rng, 4, 500, 0.0);
        let shifted = rng.normals(500, 1.0);
        let settings = Settings::default();
        let first = judge_samples(&history, &shifted, &settings, 100, false);
        assert!(first.anomaly && first.alert && first.direction == Some(Deviation::Above), "{first:?}");
        assert!(first.score > 4.0 && first.value > first.expected.unwrap().high);
        let later = judge_samples(&history, &shifted, &settings, 200, true);
        assert!(later.anomaly && !later.alert);
        let mut excluded = Settings::default();
        excluded.exclude.push(crate::detect::TimeRange { start: 0, end: 1_000 });
        let verdict = judge_samples(&history, &shifted, &excluded, 500, false);
        assert_eq!(verdict.status, Status::Excluded);
        assert!(!verdict.anomaly);
    }

    #[test]
    fn more_checks_a_day_need_more_evidence() {
        // A shift worth p ≈ 1e-5: alerts for a daily profile at `medium` (1e-4 per check), not
        // for a profile every five minutes (1e-4 / 288 per check).
        let a: Vec<f64> = (0..200).map(|i| i as f64).collect();
        let history: Vec<Sample> = (0..3).map(|_| Sample::from_values(&a)).collect();
        let settings = Settings::default();
        let mut shift = 0.0;
        let mut daily = None;
        while shift < 200.0 {
            let current: Vec<f64> = a.iter().map(|v| v + shift).collect();
            let verdict = judge(&history, &Sample::from_values(&current), &settings, DAY, 0, false);
            if verdict.score > 5.0 {
                daily = Some((shift, verdict));
                break;
            }
            shift += 1.0;
        }
        let (shift, daily) = daily.expect("some shift reaches p = 1e-5");
        assert!(daily.anomaly, "{daily:?}");
        let current: Vec<f64> = a.iter().map(|v| v + shift).collect();
        let frequent = judge(&history, &Sample::from_values(&current), &settings, 300, 0, false);
        assert!(!frequent.anomaly && frequent.expected.unwrap().high > daily.expected.unwrap().high);
    }

    #[test]
    fn overlapping_samples_count_once() {
        // Seven profiles of the same 200 rows hold 200 values of evidence, not 1 400: the
        // range is that of 200 values. (Seven disjoint interleaved grids of 200 values: same
        // shape, 1 400 distinct values, and no spread between them to lift the minimum.)
        let repeated: Vec<Sample> =
            (0..7).map(|_| Sample::from_values(&(0..200).map(|i| f64::from(i * 7)).collect::<Vec<f64>>())).collect();
        let distinct: Vec<Sample> = (0..7)
            .map(|k| Sample::from_values(&(0..200).map(|i| f64::from(i * 7 + k)).collect::<Vec<f64>>()))
            .collect();
        let current = Sample::from_values(&(0..200).map(|i| f64::from(i * 7) + 3.5).collect::<Vec<f64>>());
        let settings =
            Settings { sensitivity: crate::detect::Sensitivity::FalseAlarmRate(0.01), ..Settings::default() };
        let wide = judge(&repeated, &current, &settings, DAY, 0, false).expected.unwrap().high;
        let narrow = judge(&distinct, &current, &settings, DAY, 0, false).expected.unwrap().high;
        assert!(spread(&distinct, &Sample::union(&distinct)).0 < 0.01);
        assert!(wide > narrow * 1.15, "{wide} vs {narrow}");
    }

    #[test]
    fn the_explanation_reads_naturally() {
        let history: Vec<Vec<f64>> =
            (0..7).map(|day| (0..700).map(|i| 20.0 + ((i * 37 + day * 11) % 500) as f64 * 0.1).collect()).collect();
        let current: Vec<f64> = (0..1_000).map(|i| 40.0 + ((i * 37) % 500) as f64 * 0.1).collect();
        let verdict = judge_samples(&history, &current, &Settings::default(), 0, false);
        let text = verdict.explanation.as_str();
        assert!(verdict.anomaly, "{verdict:?}");
        // Seven samples of the same 500 values hold 500 distinct ones: the p-value is that of
        // 1 000 values against 700 (the largest sample), not against 4 900.
        assert_eq!(
            text,
            "values shifted: KS distance 0.404 (p = 1e-59) against 4\u{202f}900 values of 7 earlier samples; \
             median 44.9 → 65, p95 67.4 → 87.4"
        );
        let calm = judge_samples(&history, &history[0], &Settings::default(), 0, false);
        assert_eq!(
            calm.explanation.as_str(),
            "values as before: KS distance 0.00612 (p = 1, alerts from 0.118) against 4\u{202f}900 values of 7 earlier \
             samples; median 44.9 → 45.2, p95 67.4 → 67.6"
        );
    }

    #[test]
    fn small_p_values_are_written_in_scientific_notation() {
        let write = |p: f64| {
            let mut out = String::new();
            write_p(&mut out, p);
            out
        };
        assert_eq!(write(0.412), "p = 0.41");
        assert_eq!(write(2.2e-9), "p = 2e-9");
        assert_eq!(write(9.7e-5), "p = 1e-4");
        assert_eq!(write(f64::MIN_POSITIVE), "p < 1e-300");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn integers() -> impl Strategy<Value = Vec<f64>> {
            prop::collection::vec(-300i32..300, 1..60).prop_map(|v| v.into_iter().map(f64::from).collect())
        }

        proptest! {
            #[test]
            fn distance_is_symmetric(a in integers(), b in integers()) {
                let (ab, ba) = (two_sample(&a, &b), two_sample(&b, &a));
                prop_assert_eq!(ab.statistic, ba.statistic);
                prop_assert!((ab.p_value - ba.p_value).abs() <= 1e-9 * ab.p_value.max(1e-300));
                prop_assert!(ab.p_value > 0.0 && ab.p_value <= 1.0);
                prop_assert!((0.0..=1.0).contains(&ab.statistic));
            }

            #[test]
            fn distance_is_invariant_to_monotone_transforms(a in integers(), b in integers(), scale in 1i32..50, shift in -1_000i32..1_000) {
                let base = two_sample(&a, &b);
                let affine = |v: &[f64]| v.iter().map(|x| x * f64::from(scale) * 0.25 + f64::from(shift)).collect::<Vec<f64>>();
                let cube = |v: &[f64]| v.iter().map(|x| x * x * x).collect::<Vec<f64>>();
                let exp = |v: &[f64]| v.iter().map(|x| (x / 100.0).exp()).collect::<Vec<f64>>();
                let flip = |v: &[f64]| v.iter().map(|x| -x).collect::<Vec<f64>>();
                for (ta, tb) in [(affine(&a), affine(&b)), (cube(&a), cube(&b)), (exp(&a), exp(&b)), (flip(&a), flip(&b))] {
                    let moved = two_sample(&ta, &tb);
                    prop_assert_eq!(moved.statistic, base.statistic);
                    prop_assert!((moved.p_value - base.p_value).abs() <= 1e-9 * base.p_value);
                }
            }

            #[test]
            fn a_sample_against_itself_is_never_different(a in integers()) {
                let result = two_sample(&a, &a);
                prop_assert_eq!((result.statistic, result.p_value), (0.0, 1.0));
            }
        }
    }
}
