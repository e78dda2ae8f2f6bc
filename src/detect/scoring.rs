//! Run detectors over generated [`scenario`](super::scenario) warehouses the way the daemon
//! would (each point judged on its past only) and score them against the labels: recall per
//! incident type and per history length, precision, false alerts per 1000 table-days inside
//! and outside benign windows, detection delay in buckets, and recall at a fixed false-alarm
//! budget (the single ranking number).
//!
//! Two detectors are run side by side: telltale (the [`StreamingDetector`] for volume,
//! freshness, null rate and mean, [`categorical::CategoryHistory`] of a trailing week of buckets, and
//! [`schema::diff`]) and the z-score peer of today's open tools ([`ZScoreDetector`]: mean and
//! standard deviation of a trailing 14-day window that includes the tested point, threshold
//! 3; per-category shares for categorical columns; the same deterministic schema diff). Both get
//! the same excluded ranges (holidays a user configured).
//!
//! # Matching rules
//! An alert counts for an incident when it comes from one of the incident's monitors
//! ([`IncidentKind::monitors`]) at a time (when the measurement is known: bucket end for
//! bucket metrics, poll time for polls) in `[start, end + grace]`, `grace` being one bucket of
//! the table plus one poll. Every other alert is false, and counts as *inside* a benign window
//! when it falls in `[start, end + grace]` of one. Detection delay is `(first alert -
//! detectable_at) / bucket`, floored at 0. For threshold sweeps a point "alerts at threshold
//! θ" when its score reaches θ and none of the three previous points of its series did (one
//! alert per excursion, the same rule for both detectors; schema changes are events and each
//! stands alone), so false alerts and recall are exact functions of θ.

use std::collections::VecDeque;

use super::calendar::{DAY, HOUR};
use super::categorical;
use super::hygiene::ExcursionTracker;
use super::scenario::{BenignKind, BenignWindow, Incident, IncidentKind, Monitor, Schedule, Table};
use super::schema::{self, SchemaChange};
use super::settings::{MetricClass, Settings};
use super::verdict::{Deviation, Event, Status, Verdict};
use super::zscore::{self, ZScoreDetector};
use super::{Point, StreamingDetector};

/// Score given to a breaking schema change (deterministic).
pub const SCHEMA_SCORE: f64 = 100.0;

/// Previous points of a series that must stay below θ for a point to open an excursion.
pub const EXCURSION_MEMORY: usize = 3;

/// Days of trailing history the categorical baseline sums.
pub const CATEGORICAL_BASELINE_DAYS: i64 = 7;

/// One judged point of a monitor's series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    /// When the measurement was known (bucket end, or poll time).
    pub at: i64,
    /// Ranked anomaly score (0 when the point cannot alert: cold start, excluded, filtered
    /// direction or change below the minimum).
    pub score: f32,
    /// Whether the detector alerted at its default setting.
    pub alert: bool,
}

/// The judged series of one monitor of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRun {
    /// Which monitor.
    pub monitor: Monitor,
    /// Judged points, in time order.
    pub points: Vec<Judged>,
}

/// What the scorer needs to know about a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// Table name.
    pub name: String,
    /// Load schedule.
    pub schedule: Schedule,
    /// Bucket (unit of delay).
    pub bucket: i64,
    /// Days of history.
    pub days: f64,
    /// Labelled incidents.
    pub incidents: Vec<Incident>,
    /// Benign windows.
    pub benign: Vec<BenignWindow>,
}

impl Labels {
    /// The labels of a generated table.
    pub fn of(table: &Table) -> Self {
        Self {
            name: table.name.clone(),
            schedule: table.schedule,
            bucket: table.bucket,
            days: table.days(),
            incidents: table.incidents.clone(),
            benign: table.benign.clone(),
        }
    }

    fn grace(&self) -> i64 {
        self.bucket + HOUR
    }
}

/// A table's labels with both detectors' runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    /// The labels.
    pub labels: Labels,
    /// telltale's runs.
    pub telltale: Vec<MonitorRun>,
    /// The z-score peer's runs.
    pub zscore: Vec<MonitorRun>,
}

/// Run both detectors over a table.
pub fn evaluate_table(table: &Table, settings: &Settings) -> Evaluated {
    Evaluated { labels: Labels::of(table), telltale: run_telltale(table, settings), zscore: run_zscore(table) }
}

/// The settings a table's monitors run with: `base` plus the table's excluded ranges.
pub fn table_settings(table: &Table, base: &Settings) -> Settings {
    let mut settings = base.clone();
    settings.exclude.extend(table.excluded.iter().copied());
    settings
}

/// Ranked score of a verdict: its score when it could alert (learned or flagged by the
/// cold-start rule, allowed direction, change above the minimum), 0 otherwise. Alerts that
/// come from a level-shift event rank at least at the default threshold.
pub fn ranked_score(verdict: &Verdict, class: MetricClass, settings: &Settings) -> f64 {
    let judged = match verdict.status {
        Status::Learned => true,
        Status::ColdStart => verdict.anomaly,
        Status::Excluded => false,
    };
    if !judged {
        return 0.0;
    }
    let mut score = verdict.score;
    let direction = settings.direction_for(class);
    let allowed = match verdict.direction {
        Some(Deviation::Above) => direction.allows(true),
        Some(Deviation::Below) => direction.allows(false),
        None => false,
    };
    if !allowed {
        score = 0.0;
    }
    let min_change = settings.min_change_for(class);
    if min_change > 0.0
        && let Some(expected) = verdict.expected
        && expected.forecast != 0.0
        && ((verdict.value - expected.forecast) / expected.forecast).abs() < min_change
    {
        score = 0.0;
    }
    if verdict.alert && matches!(verdict.event, Some(Event::LevelShift { .. })) {
        score = score.max(-settings.sensitivity.false_alarm_rate().log10());
    }
    score
}

fn stream(class: MetricClass, settings: &Settings, points: &[Point], delay: i64, noun: &str) -> Vec<Judged> {
    let mut detector = StreamingDetector::new(class, settings.clone()).with_noun(noun);
    points
        .iter()
        .map(|point| {
            let verdict = detector.push(*point);
            Judged {
                at: point.timestamp + delay,
                score: ranked_score(&verdict, class, settings) as f32,
                alert: verdict.alert,
            }
        })
        .collect()
}

/// A column's frames over the last [`CATEGORICAL_BASELINE_DAYS`] days.
struct CategoryBaseline {
    history: categorical::CategoryHistory,
    frames: VecDeque<(i64, Vec<(String, u64)>)>,
}

impl CategoryBaseline {
    fn new(bucket: i64) -> Self {
        Self { history: categorical::CategoryHistory::new().judged_every(bucket), frames: VecDeque::new() }
    }

    fn advance(&mut self, now: i64) {
        while let Some((timestamp, _)) = self.frames.front() {
            if *timestamp > now - CATEGORICAL_BASELINE_DAYS * DAY {
                break;
            }
            if let Some((_, frame)) = self.frames.pop_front() {
                self.history.remove(&frame);
            }
        }
    }

    fn push(&mut self, timestamp: i64, frame: Vec<(String, u64)>) {
        self.history.push(&frame);
        self.frames.push_back((timestamp, frame));
    }
}

fn named(names: &[String], counts: impl Iterator<Item = (usize, u64)>) -> Vec<(String, u64)> {
    counts.filter(|(_, n)| *n > 0).map(|(c, n)| (names[c].clone(), n)).collect()
}

/// Run telltale's monitors over a table (`base` settings plus the table's exclusions).
pub fn run_telltale(table: &Table, base: &Settings) -> Vec<MonitorRun> {
    let settings = table_settings(table, base);
    let bucket = table.bucket;
    let mut runs = vec![
        MonitorRun {
            monitor: Monitor::Volume,
            points: stream(MetricClass::Count, &settings, &table.volume, bucket, "rows added"),
        },
        MonitorRun {
            monitor: Monitor::Freshness,
            points: stream(MetricClass::Freshness, &settings, &table.freshness, 0, "since last update"),
        },
        MonitorRun {
            monitor: Monitor::NullRate,
            points: stream(MetricClass::Proportion, &settings, &table.nulls, bucket, "null rate"),
        },
        MonitorRun {
            monitor: Monitor::Mean,
            points: stream(MetricClass::Continuous, &settings, &table.mean, bucket, "mean amount"),
        },
    ];

    // Categorical: each bucket against the trailing week, one alert per excursion.
    let mut baseline = CategoryBaseline::new(bucket);
    let mut tracker = ExcursionTracker::new(EXCURSION_MEMORY);
    let mut points = Vec::with_capacity(table.categories.len());
    for frame in &table.categories {
        if settings.is_excluded(frame.timestamp) {
            continue;
        }
        baseline.advance(frame.timestamp);
        let current = named(&table.category_names, frame.counts.iter().map(|&(c, n)| (c as usize, n)));
        let judged = if baseline.frames.len() >= 3 {
            let verdict = baseline.history.compare(&current, &settings);
            let score = verdict.score;
            let alert = tracker.observe(verdict.anomaly, Some(Deviation::Above), None);
            Judged { at: frame.timestamp + bucket, score: score as f32, alert }
        } else {
            Judged { at: frame.timestamp + bucket, score: 0.0, alert: false }
        };
        points.push(judged);
        baseline.push(frame.timestamp, current);
    }
    runs.push(MonitorRun { monitor: Monitor::Categorical, points });
    runs.push(MonitorRun { monitor: Monitor::Schema, points: schema_points(table) });
    runs
}

/// The deterministic schema monitor both detectors share: a breaking diff alerts.
fn schema_points(table: &Table) -> Vec<Judged> {
    table
        .schema
        .windows(2)
        .map(|pair| {
            let breaking = schema::diff(&pair[0].1, &pair[1].1).iter().any(SchemaChange::is_breaking);
            Judged { at: pair[1].0, score: if breaking { SCHEMA_SCORE as f32 } else { 0.0 }, alert: breaking }
        })
        .collect()
}

/// Peer z-scores of a plain series, skipping excluded points.
fn zscore_series(points: &[Point], excluded: &Settings, delay: i64) -> Vec<Judged> {
    let mut detector = ZScoreDetector::new();
    let mut out = Vec::with_capacity(points.len());
    for point in points {
        if excluded.is_excluded(point.timestamp) {
            continue;
        }
        let verdict = detector.push(*point);
        out.push(Judged { at: point.timestamp + delay, score: verdict.z as f32, alert: false });
    }
    peer_alerts(&mut out);
    out
}

/// The peer alerts when |z| > 3, once per excursion (same rule as the threshold sweep).
fn peer_alerts(points: &mut [Judged]) {
    let threshold = zscore::THRESHOLD as f32;
    for index in 0..points.len() {
        let previous =
            points[index.saturating_sub(EXCURSION_MEMORY)..index].iter().map(|p| p.score).fold(0.0, f32::max);
        points[index].alert = points[index].score > threshold && previous <= threshold;
    }
}

/// Run the z-score peer over a table.
pub fn run_zscore(table: &Table) -> Vec<MonitorRun> {
    let excluded = table_settings(table, &Settings::default());
    let bucket = table.bucket;
    let mut runs = vec![
        MonitorRun { monitor: Monitor::Volume, points: zscore_series(&table.volume, &excluded, bucket) },
        MonitorRun { monitor: Monitor::Freshness, points: zscore_series(&table.freshness, &excluded, 0) },
        MonitorRun { monitor: Monitor::NullRate, points: zscore_series(&table.nulls, &excluded, bucket) },
        MonitorRun { monitor: Monitor::Mean, points: zscore_series(&table.mean, &excluded, bucket) },
    ];
    // Categorical: z-score of every category's share; the largest |z| of the bucket.
    let names = table.category_names.len();
    let mut detectors: Vec<Option<ZScoreDetector>> = vec![None; names];
    let mut points = Vec::with_capacity(table.categories.len());
    let mut shares = vec![0.0; names];
    for frame in &table.categories {
        if excluded.is_excluded(frame.timestamp) {
            continue;
        }
        let total: u64 = frame.counts.iter().map(|(_, n)| n).sum();
        shares.iter_mut().for_each(|s| *s = 0.0);
        for &(c, n) in &frame.counts {
            shares[c as usize] = n as f64 / total.max(1) as f64;
            detectors[c as usize].get_or_insert_with(ZScoreDetector::new);
        }
        let mut worst = 0.0f64;
        for (c, detector) in detectors.iter_mut().enumerate() {
            if let Some(detector) = detector {
                worst = worst.max(detector.push(Point::new(frame.timestamp, shares[c])).z);
            }
        }
        points.push(Judged { at: frame.timestamp + bucket, score: worst as f32, alert: false });
    }
    peer_alerts(&mut points);
    runs.push(MonitorRun { monitor: Monitor::Categorical, points });
    runs.push(MonitorRun { monitor: Monitor::Schema, points: schema_points(table) });
    runs
}

/// Where a judged point falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Inside the window of incident `n` (numbered across the evaluation) for a relevant
    /// monitor.
    Incident(usize),
    /// A false alert if it alerts; `benign` when inside a benign window.
    False { benign: bool },
}

/// A classified point with the largest score of its previous points.
#[derive(Debug, Clone, Copy)]
struct Flat {
    score: f32,
    previous: f32,
    alert: bool,
    class: Class,
    monitor: Monitor,
    at: i64,
}

/// History-length bins (days of history at the incident's start) for recall.
pub const HISTORY_BINS: [(f64, f64, &str); 4] =
    [(0.0, 7.0, "< 7 days"), (7.0, 14.0, "7-14 days"), (14.0, 28.0, "14-28 days"), (28.0, f64::INFINITY, ">= 28 days")];

/// Incidents of one group: how many and how many were detected.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Recall {
    /// Labelled incidents.
    pub total: usize,
    /// Detected incidents.
    pub detected: usize,
}

impl Recall {
    /// detected / total (NaN when empty).
    pub fn rate(&self) -> f64 {
        if self.total == 0 { f64::NAN } else { self.detected as f64 / self.total as f64 }
    }

    fn add(&mut self, detected: bool) {
        self.total += 1;
        self.detected += usize::from(detected);
    }
}

/// Detection delays in buckets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delays {
    /// One delay per detected incident.
    pub buckets: Vec<f64>,
}

impl Delays {
    /// Quantile `q` of the delays (NaN when empty).
    pub fn quantile(&self, q: f64) -> f64 {
        let mut sorted = self.buckets.clone();
        sorted.sort_by(f64::total_cmp);
        super::stats::quantile_sorted(&sorted, q).unwrap_or(f64::NAN)
    }
}

/// Per incident type figures of one detector.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeFigures {
    /// The incident type.
    pub kind: IncidentKind,
    /// Recall at the default setting.
    pub recall: Recall,
    /// Recall at the default setting over incidents of severity >= 3 noise sigmas.
    pub recall_severe: Recall,
    /// Recall at the false-alarm budget.
    pub recall_at_budget: Recall,
    /// Detection delays at the default setting.
    pub delays: Delays,
}

/// Figures of one detector over an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorReport {
    /// "telltale" or "z-score".
    pub name: &'static str,
    /// Per incident type.
    pub types: Vec<TypeFigures>,
    /// Per history-length bin (labels of [`HISTORY_BINS`]).
    pub by_history: Vec<(&'static str, Recall)>,
    /// All incidents, default setting.
    pub recall: Recall,
    /// Alerts at the default setting matched to an incident.
    pub true_alerts: usize,
    /// False alerts outside benign windows.
    pub false_outside: usize,
    /// False alerts inside benign windows.
    pub false_inside: usize,
    /// False alerts per monitor (default setting).
    pub false_by_monitor: Vec<(Monitor, usize)>,
    /// False alerts inside benign windows by benign kind.
    pub false_by_benign: Vec<(BenignKind, usize)>,
    /// Detection delays over all detected incidents.
    pub delays: Delays,
    /// The threshold that meets the false-alarm budget.
    pub budget_threshold: f64,
    /// False alerts per 1000 table-days at that threshold.
    pub budget_false_rate: f64,
    /// Recall at the false-alarm budget over all incidents: the ranking number.
    pub recall_at_budget: Recall,
}

impl DetectorReport {
    /// true alerts / all alerts.
    pub fn precision(&self) -> f64 {
        let all = self.true_alerts + self.false_outside + self.false_inside;
        if all == 0 { f64::NAN } else { self.true_alerts as f64 / all as f64 }
    }
}

/// The whole report: exposure and both detectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Tables evaluated.
    pub tables: usize,
    /// Table-days evaluated.
    pub table_days: f64,
    /// Table-days inside benign windows.
    pub benign_table_days: f64,
    /// The false-alarm budget, per 1000 table-days.
    pub budget: f64,
    /// Incidents per type.
    pub incidents: Vec<(IncidentKind, usize)>,
    /// Per type, the mean of the incidents' [`oracle`](crate::detect::scenario::Incident::oracle)
    /// chances: the recall a detector knowing each bucket's true distribution would reach at
    /// the default sensitivity. `None` for types without one (all but volume incidents).
    pub oracle: Vec<Option<f64>>,
    /// telltale, then the z-score peer.
    pub detectors: Vec<DetectorReport>,
}

impl Report {
    /// Per 1000 table-days of the whole warehouse.
    pub fn per_thousand(&self, count: usize) -> f64 {
        count as f64 * 1_000.0 / self.table_days
    }

    /// Per 1000 table-days inside benign windows.
    pub fn per_thousand_benign(&self, count: usize) -> f64 {
        count as f64 * 1_000.0 / self.benign_table_days.max(1e-9)
    }
}

fn classify(labels: &Labels, monitor: Monitor, at: i64, first_incident: usize) -> Class {
    let grace = labels.grace();
    for (index, incident) in labels.incidents.iter().enumerate() {
        if incident.kind.monitors().contains(&monitor) && at >= incident.start && at <= incident.end + grace {
            return Class::Incident(first_incident + index);
        }
    }
    let benign = labels.benign.iter().any(|w| at >= w.start && at <= w.end + grace);
    Class::False { benign }
}

fn flatten(evaluated: &[Evaluated], pick: fn(&Evaluated) -> &Vec<MonitorRun>) -> Vec<Flat> {
    let mut flat = Vec::new();
    let mut first_incident = 0;
    for table in evaluated {
        for run in pick(table) {
            let mut recent: VecDeque<f32> = VecDeque::with_capacity(EXCURSION_MEMORY);
            for point in &run.points {
                // Schema snapshots are events, not a sampled series: each change stands alone.
                let previous =
                    if run.monitor == Monitor::Schema { 0.0 } else { recent.iter().copied().fold(0.0, f32::max) };
                if recent.len() == EXCURSION_MEMORY {
                    recent.pop_front();
                }
                recent.push_back(point.score);
                if point.score <= 0.0 && !point.alert {
                    continue;
                }
                flat.push(Flat {
                    score: point.score,
                    previous,
                    alert: point.alert,
                    class: classify(&table.labels, run.monitor, point.at, first_incident),
                    monitor: run.monitor,
                    at: point.at,
                });
            }
        }
        first_incident += table.labels.incidents.len();
    }
    flat
}

/// Lowest threshold whose false alerts stay within `allowed` at it and every higher threshold.
fn budget_threshold(flat: &[Flat], allowed: f64) -> f64 {
    let mut opens: Vec<f32> = Vec::new();
    let mut closes: Vec<f32> = Vec::new();
    let mut candidates: Vec<f32> = Vec::new();
    for point in flat {
        if point.score > point.previous {
            candidates.push(point.score);
            if matches!(point.class, Class::False { .. }) {
                opens.push(point.score);
                closes.push(point.previous);
            }
        }
    }
    let descending = |v: &mut Vec<f32>| v.sort_by(|a, b| b.total_cmp(a));
    descending(&mut opens);
    descending(&mut closes);
    descending(&mut candidates);
    candidates.dedup();
    // False alerts at θ: scores ≥ θ minus previous maxima ≥ θ.
    let at_least = |sorted: &[f32], theta: f32| sorted.partition_point(|x| *x >= theta);
    let mut best = f64::INFINITY;
    for theta in candidates {
        let false_alerts = at_least(&opens, theta) - at_least(&closes, theta);
        if false_alerts as f64 > allowed {
            break;
        }
        best = theta as f64;
    }
    best
}

fn alerts_at(point: &Flat, theta: f64) -> bool {
    point.score as f64 >= theta && (point.previous as f64) < theta
}

/// Score one detector.
fn score_detector(
    name: &'static str,
    evaluated: &[Evaluated],
    pick: fn(&Evaluated) -> &Vec<MonitorRun>,
    table_days: f64,
    budget: f64,
) -> DetectorReport {
    let incidents: Vec<(&Labels, &Incident)> =
        evaluated.iter().flat_map(|e| e.labels.incidents.iter().map(move |i| (&e.labels, i))).collect();
    let flat = flatten(evaluated, pick);
    let threshold = budget_threshold(&flat, budget * table_days / 1_000.0);

    let mut first_alert: Vec<Option<i64>> = vec![None; incidents.len()];
    let mut at_budget = vec![false; incidents.len()];
    let (mut true_alerts, mut false_outside, mut false_inside) = (0, 0, 0);
    let mut by_monitor: Vec<(Monitor, usize)> = Monitor::ALL.iter().map(|m| (*m, 0)).collect();
    let mut budget_false = 0;
    for point in &flat {
        match point.class {
            Class::Incident(index) => {
                if point.alert {
                    true_alerts += 1;
                    first_alert[index] = Some(first_alert[index].map_or(point.at, |t| t.min(point.at)));
                }
                if alerts_at(point, threshold) {
                    at_budget[index] = true;
                }
            }
            Class::False { benign } => {
                if point.alert {
                    if benign {
                        false_inside += 1;
                    } else {
                        false_outside += 1;
                    }
                    if let Some(entry) = by_monitor.iter_mut().find(|(m, _)| *m == point.monitor) {
                        entry.1 += 1;
                    }
                }
                if alerts_at(point, threshold) {
                    budget_false += 1;
                }
            }
        }
    }
    let mut false_by_benign: Vec<(BenignKind, usize)> =
        [BenignKind::Holiday, BenignKind::LevelShift, BenignKind::ColumnAdded].iter().map(|k| (*k, 0)).collect();
    // Attribute benign false alerts to the kind of window they fell in.
    for table in evaluated {
        for run in pick(table) {
            for point in run.points.iter().filter(|p| p.alert) {
                if let Class::False { benign: true } = classify(&table.labels, run.monitor, point.at, 0) {
                    let grace = table.labels.grace();
                    if let Some(window) =
                        table.labels.benign.iter().find(|w| point.at >= w.start && point.at <= w.end + grace)
                        && let Some(entry) = false_by_benign.iter_mut().find(|(k, _)| *k == window.kind)
                    {
                        entry.1 += 1;
                    }
                }
            }
        }
    }

    let mut types: Vec<TypeFigures> = IncidentKind::ALL
        .iter()
        .map(|&kind| TypeFigures {
            kind,
            recall: Recall::default(),
            recall_severe: Recall::default(),
            recall_at_budget: Recall::default(),
            delays: Delays::default(),
        })
        .collect();
    let mut by_history: Vec<(&'static str, Recall)> = HISTORY_BINS.iter().map(|b| (b.2, Recall::default())).collect();
    let mut recall = Recall::default();
    let mut recall_at_budget = Recall::default();
    let mut delays = Delays::default();
    for (index, (labels, incident)) in incidents.iter().enumerate() {
        let detected = first_alert[index].is_some();
        let figures = types.iter_mut().find(|t| t.kind == incident.kind).expect("every kind has a row");
        figures.recall.add(detected);
        if incident.severity >= 3.0 {
            figures.recall_severe.add(detected);
        }
        figures.recall_at_budget.add(at_budget[index]);
        recall.add(detected);
        recall_at_budget.add(at_budget[index]);
        if let Some(at) = first_alert[index] {
            let delay = (at - incident.detectable_at).max(0) as f64 / labels.bucket as f64;
            figures.delays.buckets.push(delay);
            delays.buckets.push(delay);
        }
        if let Some(bin) = HISTORY_BINS.iter().position(|b| incident.history_days >= b.0 && incident.history_days < b.1)
        {
            by_history[bin].1.add(detected);
        }
    }
    DetectorReport {
        name,
        types,
        by_history,
        recall,
        true_alerts,
        false_outside,
        false_inside,
        false_by_monitor: by_monitor,
        false_by_benign,
        delays,
        budget_threshold: threshold,
        budget_false_rate: budget_false as f64 * 1_000.0 / table_days,
        recall_at_budget,
    }
}

/// Score both detectors over evaluated tables, with a false-alarm budget of `budget` false
/// alerts per 1000 table-days for the ranking number.
pub fn score(evaluated: &[Evaluated], budget: f64) -> Report {
    let table_days: f64 = evaluated.iter().map(|e| e.labels.days).sum();
    let benign_table_days: f64 = evaluated
        .iter()
        .map(|e| {
            // Union length of the table's benign windows, in days.
            let mut windows: Vec<(i64, i64)> = e.labels.benign.iter().map(|w| (w.start, w.end)).collect();
            windows.sort_unstable();
            let mut total = 0;
            let mut covered_to = i64::MIN;
            for (start, end) in windows {
                let start = start.max(covered_to);
                if end > start {
                    total += end - start;
                }
                covered_to = covered_to.max(end);
            }
            total as f64 / DAY as f64
        })
        .sum();
    let mut incidents: Vec<(IncidentKind, usize)> = IncidentKind::ALL.iter().map(|k| (*k, 0)).collect();
    for e in evaluated {
        for incident in &e.labels.incidents {
            if let Some(entry) = incidents.iter_mut().find(|(k, _)| *k == incident.kind) {
                entry.1 += 1;
            }
        }
    }
    let oracle = IncidentKind::ALL
        .iter()
        .map(|kind| {
            let chances: Vec<f64> = evaluated
                .iter()
                .flat_map(|e| &e.labels.incidents)
                .filter(|incident| incident.kind == *kind)
                .filter_map(|incident| incident.oracle)
                .collect();
            (!chances.is_empty()).then(|| chances.iter().sum::<f64>() / chances.len() as f64)
        })
        .collect();
    let detectors = vec![
        score_detector("telltale", evaluated, |e| &e.telltale, table_days, budget),
        score_detector("z-score", evaluated, |e| &e.zscore, table_days, budget),
    ];
    Report { tables: evaluated.len(), table_days, benign_table_days, budget, incidents, oracle, detectors }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::scenario::{ScenarioConfig, generate};

    fn flat(score: f32, previous: f32, class: Class) -> Flat {
        Flat { score, previous, alert: false, class, monitor: Monitor::Volume, at: 0 }
    }

    #[test]
    fn budget_threshold_counts_excursion_openings_only() {
        let points = vec![
            flat(9.0, 0.0, Class::False { benign: false }),
            flat(8.0, 9.0, Class::False { benign: false }), // same excursion: never opens
            flat(5.0, 1.0, Class::False { benign: false }),
            flat(7.0, 0.0, Class::Incident(0)),
        ];
        // One false alert allowed: θ may go down to just above 5.
        assert_eq!(budget_threshold(&points, 1.0), 7.0);
        assert_eq!(budget_threshold(&points, 2.0), 5.0);
        assert_eq!(budget_threshold(&points, 0.0), f64::INFINITY);
        assert!(alerts_at(&points[0], 5.0) && !alerts_at(&points[1], 5.0));
    }

    #[test]
    fn a_small_warehouse_scores_end_to_end() {
        let tables = generate(&ScenarioConfig { tables: 6, days: 30, seed: 5, incidents_per_table: 2.0 });
        let evaluated: Vec<Evaluated> = tables.iter().map(|t| evaluate_table(t, &Settings::default())).collect();
        let report = score(&evaluated, 2.0);
        assert_eq!(report.tables, 6);
        assert!((report.table_days - 180.0).abs() < 1e-9);
        assert_eq!(report.detectors.len(), 2);
        let total: usize = report.incidents.iter().map(|(_, n)| n).sum();
        assert_eq!(report.detectors[0].recall.total, total);
        // Schema changes are deterministic: both detectors catch all of them.
        for detector in &report.detectors {
            for figures in detector.types.iter().filter(|t| t.kind.is_schema()) {
                assert_eq!(figures.recall.detected, figures.recall.total, "{}", detector.name);
            }
        }
    }
}
