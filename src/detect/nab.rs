//! Scoring with the published rules of the Numenta Anomaly Benchmark (NAB v1.1): anomaly
//! windows, the scaled sigmoid that rewards early detection and softens false positives just
//! after a window, the three application profiles, the 15 % probationary period, threshold
//! optimisation over the whole corpus, and normalisation between the null detector (0) and
//! the perfect one (100).
//!
//! Pure: callers load the series, labels and detector scores (no file IO here). Follows NAB's
//! `sweeper.py` (sweep scores, score by threshold) and `runner.py` (normalisation).

/// Weights of one NAB application profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostMatrix {
    /// Reward for the earliest detection in a window (scaled by the sigmoid).
    pub tp_weight: f64,
    /// Cost of a detection outside any window (scaled by the sigmoid after a window).
    pub fp_weight: f64,
    /// Cost of a window without detection.
    pub fn_weight: f64,
}

/// A named NAB profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// NAB's name for it.
    pub name: &'static str,
    /// Its cost matrix.
    pub costs: CostMatrix,
}

/// The three published profiles (`config/profiles.json`).
pub const PROFILES: [Profile; 3] = [
    Profile { name: "standard", costs: CostMatrix { tp_weight: 1.0, fp_weight: 0.11, fn_weight: 1.0 } },
    Profile { name: "reward_low_FP_rate", costs: CostMatrix { tp_weight: 1.0, fp_weight: 0.22, fn_weight: 1.0 } },
    Profile { name: "reward_low_FN_rate", costs: CostMatrix { tp_weight: 1.0, fp_weight: 0.11, fn_weight: 2.0 } },
];

/// Share of each file (at most 5 000 × this many rows) that is not scored.
pub const PROBATION_PERCENT: f64 = 0.15;

/// One data file with its labelled windows and a detector's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledSeries {
    /// Relative path, e.g. `realKnownCause/nyc_taxi.csv` (names windows).
    pub name: String,
    /// Row timestamps, ascending (any unit, the same as the windows').
    pub timestamps: Vec<i64>,
    /// The detector's anomaly score per row; a row is a detection when its score is at least
    /// the threshold.
    pub scores: Vec<f64>,
    /// Labelled anomaly windows, inclusive `(start, end)` timestamps, in order.
    pub windows: Vec<(i64, i64)>,
    /// Per row (empty: none), the threshold at or below which the row is no detection: the
    /// highest score of the rows just before it (a detector that alerts once per excursion
    /// does not alert again while an exceedance of the same threshold is recent). With floors
    /// a row is a detection at thresholds in `(floor, score]`, so each threshold is scored as
    /// the detector alerts at it; NAB's score column cannot say that (its rows are detections
    /// at every threshold up to their score).
    pub floors: Vec<f64>,
}

/// NAB's `scaledSigmoid`: +0.987 at the left edge of a window (relative position -1), 0 at
/// the right edge, tending to -1 after it (and exactly -1 beyond 3 window lengths).
pub fn scaled_sigmoid(relative_position: f64) -> f64 {
    if relative_position >= 3.0 { -1.0 } else { 2.0 / (1.0 + (5.0 * relative_position).exp()) - 1.0 }
}

/// Rows of the probationary period of a file with `rows` rows.
pub fn probationary_length(rows: usize) -> usize {
    ((PROBATION_PERCENT * rows as f64).floor()).min(PROBATION_PERCENT * 5_000.0) as usize
}

/// Where a row falls for scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// Inside the probationary period: never scored.
    Probationary,
    /// Inside window number `n` (numbered across the corpus).
    Window(usize),
    /// Outside every window.
    Outside,
}

/// A row with its detector score and the NAB weight it earns if detected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPoint {
    /// The detector's anomaly score.
    pub score: f64,
    /// The weighted sigmoid value the row earns when it is a detection.
    pub weight: f64,
    /// At or below this threshold the row is no detection (`-∞` without floors).
    pub floor: f64,
    /// Where the row falls.
    pub region: Region,
}

/// NAB's `calcSweepScore`: the weight each row of `series` would earn as a detection.
/// `first_window` numbers this file's windows within the corpus.
pub fn sweep(series: &LabelledSeries, costs: CostMatrix, first_window: usize) -> Vec<SweepPoint> {
    let max_tp = scaled_sigmoid(-1.0);
    let probation = probationary_length(series.timestamps.len());
    // Window index ranges (first and last row inside each window).
    let ranges: Vec<Option<(usize, usize)>> = series
        .windows
        .iter()
        .map(|&(start, end)| {
            let first = series.timestamps.partition_point(|&t| t < start);
            let last = series.timestamps.partition_point(|&t| t <= end);
            (last > first).then(|| (first, last - 1))
        })
        .collect();
    let mut points = Vec::with_capacity(series.timestamps.len());
    let mut previous: Option<(usize, f64)> = None; // (right index, width) of the last window
    let mut current = 0usize;
    for (index, &score) in series.scores.iter().enumerate() {
        while current < ranges.len() && ranges[current].is_none_or(|(_, right)| right < index) {
            if let Some((left, right)) = ranges[current] {
                previous = Some((right, (right - left + 1) as f64));
            }
            current += 1;
        }
        let inside = ranges.get(current).copied().flatten().filter(|&(left, _)| left <= index);
        let (weight, window) = match inside {
            Some((left, right)) => {
                let width = (right - left + 1) as f64;
                let position = -((right - index + 1) as f64) / width;
                (scaled_sigmoid(position) * costs.tp_weight / max_tp, Some(first_window + current))
            }
            None => {
                let position = match previous {
                    None => 3.0,
                    Some((right, width)) => (index - right) as f64 / (width - 1.0).max(1.0),
                };
                (scaled_sigmoid(position) * costs.fp_weight, None)
            }
        };
        let region =
            if index < probation { Region::Probationary } else { window.map_or(Region::Outside, Region::Window) };
        let floor = series.floors.get(index).copied().unwrap_or(f64::NEG_INFINITY);
        points.push(SweepPoint { score, weight, floor, region });
    }
    points
}

/// Totals at one threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdScore {
    /// Rows with a score at least this are detections.
    pub threshold: f64,
    /// Raw NAB score (sum over windows and false positives).
    pub score: f64,
    /// Detected rows inside windows.
    pub true_positives: usize,
    /// Detected rows outside windows.
    pub false_positives: usize,
    /// Windows without detection.
    pub missed_windows: usize,
}

/// NAB's `calcScoreByThreshold` over any set of sweep points (one file or the corpus): the
/// raw score at every distinct threshold, highest threshold first. The first entry
/// (threshold +∞) detects nothing. A row is a detection at thresholds in `(floor, score]`
/// (without floors, at every threshold up to its score, as in NAB).
pub fn score_by_threshold(points: &[SweepPoint], costs: CostMatrix) -> Vec<ThresholdScore> {
    let scorable: Vec<&SweepPoint> =
        points.iter().filter(|p| p.region != Region::Probationary && p.score > p.floor).collect();
    // Events by decreasing threshold: a row becomes a detection at its score and stops being
    // one at its floor.
    let mut events: Vec<(f64, bool, usize)> = Vec::with_capacity(2 * scorable.len());
    for (index, point) in scorable.iter().enumerate() {
        events.push((point.score, true, index));
        if point.floor.is_finite() {
            events.push((point.floor, false, index));
        }
    }
    events.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Every window is missed until detected (those with rows outside probation).
    let mut windows: std::collections::BTreeMap<usize, Vec<f64>> = Default::default();
    for point in points.iter().filter(|p| p.region != Region::Probationary) {
        if let Region::Window(window) = point.region {
            windows.entry(window).or_default();
        }
    }
    let window_score = |weights: &Vec<f64>| weights.iter().copied().reduce(f64::max).unwrap_or(-costs.fn_weight);
    let mut window_total: f64 = windows.values().map(window_score).sum();
    let mut missed = windows.len();
    let mut fp_total = 0.0;
    let (mut true_positives, mut false_positives) = (0, 0);
    let mut results = vec![ThresholdScore {
        threshold: f64::INFINITY,
        score: window_total,
        true_positives,
        false_positives,
        missed_windows: missed,
    }];
    let mut index = 0;
    while index < events.len() {
        let threshold = events[index].0;
        while index < events.len() && events[index].0 == threshold {
            let (_, starts, row) = events[index];
            let point = scorable[row];
            match point.region {
                Region::Window(window) => {
                    let weights = windows.entry(window).or_default();
                    let before = window_score(weights);
                    if starts {
                        true_positives += 1;
                        if weights.is_empty() {
                            missed -= 1;
                        }
                        weights.push(point.weight);
                    } else {
                        true_positives -= 1;
                        if let Some(at) = weights.iter().position(|&w| w == point.weight) {
                            weights.swap_remove(at);
                        }
                        if weights.is_empty() {
                            missed += 1;
                        }
                    }
                    window_total += window_score(weights) - before;
                }
                Region::Outside => {
                    if starts {
                        false_positives += 1;
                        fp_total += point.weight;
                    } else {
                        false_positives -= 1;
                        fp_total -= point.weight;
                    }
                }
                Region::Probationary => {}
            }
            index += 1;
        }
        results.push(ThresholdScore {
            threshold,
            score: window_total + fp_total,
            true_positives,
            false_positives,
            missed_windows: missed,
        });
    }
    results
}

/// Sweep points of a whole corpus (windows numbered across files).
pub fn corpus_sweep(corpus: &[LabelledSeries], costs: CostMatrix) -> Vec<SweepPoint> {
    let mut points = Vec::new();
    let mut first_window = 0;
    for series in corpus {
        points.extend(sweep(series, costs, first_window));
        first_window += series.windows.len();
    }
    points
}

/// NAB's threshold optimisation: the threshold with the best raw corpus score.
pub fn optimize_threshold(corpus: &[LabelledSeries], costs: CostMatrix) -> ThresholdScore {
    let points = corpus_sweep(corpus, costs);
    score_by_threshold(&points, costs).into_iter().max_by(|a, b| a.score.total_cmp(&b.score)).unwrap_or(
        ThresholdScore {
            threshold: f64::INFINITY,
            score: 0.0,
            true_positives: 0,
            false_positives: 0,
            missed_windows: 0,
        },
    )
}

/// Raw corpus score at a fixed threshold (rows scoring at least `threshold` are detections).
pub fn score_at(corpus: &[LabelledSeries], costs: CostMatrix, threshold: f64) -> ThresholdScore {
    let points = corpus_sweep(corpus, costs);
    let table = score_by_threshold(&points, costs);
    // Entries are by decreasing threshold; take the last one still at or above it.
    table.iter().take_while(|entry| entry.threshold >= threshold).last().copied().unwrap_or(table[0])
}

/// The null detector's raw score: every window missed, no false positive.
pub fn null_score(corpus: &[LabelledSeries], costs: CostMatrix) -> f64 {
    score_by_threshold(&corpus_sweep(corpus, costs), costs)[0].score
}

/// The perfect detector's raw score: every labelled window detected at its left edge.
pub fn perfect_score(corpus: &[LabelledSeries], costs: CostMatrix) -> f64 {
    corpus.iter().map(|s| s.windows.len()).sum::<usize>() as f64 * costs.tp_weight
}

/// NAB's normalised score: 0 for the null detector, 100 for the perfect one.
pub fn normalize(raw: f64, null: f64, perfect: f64) -> f64 {
    100.0 * (raw - null) / (perfect - null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(scores: Vec<f64>, windows: Vec<(i64, i64)>) -> LabelledSeries {
        LabelledSeries {
            name: "test.csv".to_string(),
            timestamps: (0..scores.len() as i64).collect(),
            scores,
            windows,
            floors: Vec::new(),
        }
    }

    #[test]
    fn sigmoid_matches_the_published_anchor_values() {
        assert!((scaled_sigmoid(-1.0) - 0.986_614).abs() < 1e-6);
        assert!((scaled_sigmoid(-0.5) - 0.848_283).abs() < 1e-6);
        assert!(scaled_sigmoid(0.0).abs() < 1e-12);
        assert!((scaled_sigmoid(1.0) + 0.986_614).abs() < 1e-6);
        assert_eq!(scaled_sigmoid(3.0), -1.0);
    }

    #[test]
    fn null_scores_zero_and_perfect_scores_hundred() {
        let costs = PROFILES[0].costs;
        // 200 rows: probation is 30 rows; one window at rows 100..=119.
        let mut perfect = vec![0.0; 200];
        perfect[100] = 1.0;
        let corpus = vec![series(perfect, vec![(100, 119)])];
        let null = null_score(&corpus, costs);
        assert_eq!(null, -1.0);
        let best = optimize_threshold(&corpus, costs);
        assert!((best.score - 1.0).abs() < 1e-12, "{best:?}");
        assert!((normalize(best.score, null, perfect_score(&corpus, costs)) - 100.0).abs() < 1e-9);
        let nothing = score_at(&corpus, costs, 2.0);
        assert_eq!(normalize(nothing.score, null, 1.0), 0.0);
    }

    #[test]
    fn late_detections_and_false_positives_cost_as_published() {
        let costs = PROFILES[0].costs;
        let mut scores = vec![0.0; 200];
        scores[109] = 1.0; // middle of the window
        scores[50] = 1.0; // false positive before any window: full fp weight
        scores[125] = 1.0; // just after the window: softened
        let corpus = vec![series(scores, vec![(100, 119)])];
        let at = score_at(&corpus, costs, 0.5);
        let tp = scaled_sigmoid(-(119.0 - 109.0 + 1.0) / 20.0) / scaled_sigmoid(-1.0);
        let fp_after = scaled_sigmoid((125.0 - 119.0) / 19.0) * 0.11;
        assert!((at.score - (tp - 0.11 + fp_after)).abs() < 1e-12, "{at:?}");
        assert_eq!((at.true_positives, at.false_positives, at.missed_windows), (1, 2, 0));
        // Only the earliest detection in a window counts.
        let mut twice = corpus[0].clone();
        twice.scores[115] = 1.0;
        let again = score_at(&[twice], costs, 0.5);
        assert!((again.score - at.score).abs() < 1e-12);
    }

    #[test]
    fn probationary_rows_are_never_scored() {
        let costs = PROFILES[0].costs;
        let mut scores = vec![0.0; 200];
        scores[10] = 1.0;
        let corpus = vec![series(scores, vec![(100, 119)])];
        assert_eq!(score_at(&corpus, costs, 0.5).score, -1.0);
        assert_eq!(probationary_length(100_000), 750);
    }

    #[test]
    fn with_floors_a_growing_excursion_is_one_detection_at_each_threshold() {
        let costs = PROFILES[0].costs;
        // An excursion outside any window whose scores grow (3, 4, 5), then a window at 100.
        let mut scores = vec![0.0; 200];
        scores[50..53].copy_from_slice(&[3.0, 4.0, 5.0]);
        scores[105] = 6.0;
        let mut floors = vec![0.0; 200];
        floors[51] = 3.0;
        floors[52] = 4.0;
        let plain = series(scores.clone(), vec![(100, 119)]);
        let mut once = plain.clone();
        once.floors = floors;
        // As a score column every new maximum is a detection: three false positives at 2.5.
        assert_eq!(score_at(std::slice::from_ref(&plain), costs, 2.5).false_positives, 3);
        // With floors one, at every threshold up to the excursion's peak; none above it.
        for threshold in [0.5, 2.5, 3.5, 4.5] {
            let at = score_at(std::slice::from_ref(&once), costs, threshold);
            assert_eq!((at.false_positives, at.true_positives, at.missed_windows), (1, 1, 0), "{threshold}");
        }
        assert_eq!(score_at(std::slice::from_ref(&once), costs, 5.5).false_positives, 0);
        let tp = scaled_sigmoid(-(119.0 - 105.0 + 1.0) / 20.0) / scaled_sigmoid(-1.0);
        let best = optimize_threshold(&[once], costs);
        assert!((best.score - tp).abs() < 1e-12, "{best:?}");
        assert!(best.threshold > 5.0 && best.threshold <= 6.0, "{best:?}");
    }

    #[test]
    fn a_window_detected_only_through_a_floored_row_is_missed_again_below_its_floor() {
        let costs = PROFILES[0].costs;
        let mut scores = vec![0.0; 200];
        scores[98] = 2.0; // just before the window
        scores[101] = 3.0; // inside it, an alert repeating at thresholds up to 2
        let mut floors = vec![0.0; 200];
        floors[101] = 2.0;
        let mut corpus = series(scores, vec![(100, 119)]);
        corpus.floors = floors;
        let high = score_at(std::slice::from_ref(&corpus), costs, 2.5);
        assert_eq!((high.true_positives, high.false_positives, high.missed_windows), (1, 0, 0));
        let low = score_at(std::slice::from_ref(&corpus), costs, 1.5);
        assert_eq!((low.true_positives, low.false_positives, low.missed_windows), (0, 1, 1));
    }
}
