//! One streaming API over every series model: feed points in time order, get one verdict per
//! point, each judged only on its past. The daemon ([`evaluate`]) and `telltale detect replay`
//! ([`replay`]) both go through [`StreamingDetector`], so what a user tunes in replay is what
//! the agent does.

use std::sync::Arc;

use super::Point;
use super::calendar::DAY;
use super::explanation::Explanation;
use super::format::write_number;
use super::freshness::FreshnessModel;
use super::hygiene::ExcursionTracker;
use super::proportion::ProportionModel;
use super::record_rule::{self, Records};
use super::seasonal::{Judgement, SeasonalModel};
use super::settings::{LabelKind, MetricClass, Settings};
use super::stats::median_in_place;
use super::verdict::{Confidence, Deviation, Event, Expected, Status, Verdict};

/// Points needed before the first learned verdict; with fewer only hard rules apply.
pub const COLD_START_POINTS: usize = 5;
/// Batches a proportion needs: its sampling noise is known from the counts, and its
/// between-batch variance is taken at an upper confidence bound while it rests on four.
pub const PROPORTION_COLD_START_POINTS: usize = 4;

/// Consecutive unremarkable points that close an excursion.
const CALM_POINTS_TO_END_EXCURSION: usize = 3;

/// The cold-start rule (see [`StreamingDetector::cold_start_rule`]): a count at least this many
/// times the largest earlier point is flagged while the model is learning.
const COLD_RULE_FACTOR: f64 = 5.0;
/// ... and a positive continuous metric at least this many times the largest earlier point, or
/// at most the smallest over it: a unit change (cents for dollars, milliseconds for seconds).
/// A sum kept as a custom metric (a business's revenue) may fall to a fifth at its first
/// weekend; not to a twentieth of three weekdays' smallest, nor rise to twenty times their
/// largest.
const COLD_RULE_UNIT_FACTOR: f64 = 20.0;
/// Earlier points the cold-start rule compares with.
const COLD_RULE_MIN_POINTS: usize = 3;
/// The largest earlier count must reach this many rows: below it, count noise alone makes
/// fivefold swings (a Poisson count of 1 is 5 or more one time in 270).
pub(crate) const COLD_RULE_MIN_ROWS: f64 = 10.0;
/// The rule applies to series measured daily or less often (median gap at least this many
/// seconds): five points of an hourly series are a few hours, whose daily rhythm (a night
/// at a tenth of the day) the rule cannot tell from a spike.
const COLD_RULE_MIN_STEP: i64 = 20 * 3_600;
/// The score of the cold-start rule's verdicts. A rule has no calibrated probability; it is
/// scored as a one-in-a-million point, above the `medium` threshold of any series (scores of
/// 4–5) and below a breaking schema change (100).
pub const COLD_RULE_SCORE: f64 = 6.0;
/// The cold-start rule keeps judging a count or continuous series beside its learned model
/// until this many points were learned (two weeks of a daily series): the model's first
/// ranges are honestly wide (a Student-t of a handful of degrees of freedom), and a tenfold day
/// on day 6 was inside them.
const EARLY_RULE_POINTS: usize = 14;

#[derive(Debug, Clone)]
enum Model {
    Seasonal(Box<SeasonalModel>),
    Proportion(ProportionModel),
    Freshness(Box<FreshnessModel>),
}

/// Streaming detector for one series. Feed points in time order with [`push`](Self::push).
#[derive(Debug, Clone)]
pub struct StreamingDetector {
    class: MetricClass,
    settings: Settings,
    noun: Arc<str>,
    /// The first points: the cold start's, then (counts and continuous metrics) the learned
    /// ones up to [`EARLY_RULE_POINTS`], which the cold-start rule compares with.
    cold: Vec<Point>,
    model: Option<Model>,
    excursions: ExcursionTracker,
    last_timestamp: Option<i64>,
    history: usize,
    /// Points learned inside the current "expected" label, to re-baseline on.
    expected_run: usize,
    /// Score and time of the previous bucket, held because the next load may have arrived
    /// early; dropped unless the next judged point is the next bucket.
    held: Option<(f64, i64)>,
    /// A count's records over the last weeks, for the record rule (see
    /// [`record_rule`](super::record_rule)).
    records: Option<Box<Records>>,
}

impl StreamingDetector {
    /// A detector for a series of metric class `class`.
    pub fn new(class: MetricClass, settings: Settings) -> Self {
        let noun = match class {
            MetricClass::Count => "rows",
            MetricClass::Freshness => "since last update",
            MetricClass::Proportion => "null rate",
            MetricClass::Continuous => "",
        };
        Self {
            class,
            settings,
            noun: Arc::from(noun),
            cold: Vec::with_capacity(COLD_START_POINTS),
            model: None,
            excursions: ExcursionTracker::new(CALM_POINTS_TO_END_EXCURSION),
            last_timestamp: None,
            history: 0,
            expected_run: 0,
            held: None,
            records: None,
        }
    }

    /// Name the measured quantity in explanations ("rows added", "distinct customers").
    pub fn with_noun(mut self, noun: impl Into<String>) -> Self {
        self.noun = Arc::from(noun.into());
        self
    }

    /// Internal state summary for debugging and tuning.
    pub fn debug_state(&self) -> String {
        match &self.model {
            Some(Model::Seasonal(m)) => m.debug_state(),
            Some(Model::Proportion(m)) => m.debug_state(),
            _ => String::new(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Points learned so far.
    pub fn history_points(&self) -> usize {
        self.history
    }

    /// Whether the earliest points are kept for the cold-start rule after the model exists.
    fn keeps_early_points(&self) -> bool {
        matches!(self.class, MetricClass::Count | MetricClass::Continuous)
    }

    fn build_model(&mut self) {
        let step = median_gap(self.cold.iter()).unwrap_or(3_600.0).round() as i64;
        let first = self.cold.first().map_or(0, |p| p.timestamp);
        let mut model = match self.class {
            MetricClass::Count | MetricClass::Continuous => {
                Model::Seasonal(Box::new(SeasonalModel::new(self.class, &self.settings, step, first)))
            }
            MetricClass::Proportion => Model::Proportion(ProportionModel::new(&self.settings).sampled_every(step)),
            MetricClass::Freshness => Model::Freshness(Box::new(FreshnessModel::new(&self.settings))),
        };
        for point in &self.cold {
            match &mut model {
                Model::Seasonal(m) => {
                    m.learn(point.timestamp, point.value);
                }
                Model::Proportion(m) => m.learn(point),
                Model::Freshness(m) => m.learn(point),
            }
        }
        // Counts and continuous metrics keep their first points (and the next ones learned, up
        // to `EARLY_RULE_POINTS`) for the cold-start rule.
        if !self.keeps_early_points() {
            self.cold.clear();
        }
        self.model = Some(model);
    }

    /// Judge `point` on the past, then learn from it (unless excluded or a confirmed incident).
    pub fn push(&mut self, point: Point) -> Verdict {
        let timestamp = point.timestamp;
        if !point.value.is_finite() {
            return Verdict::unjudged(timestamp, point.value, Status::Excluded, self.history, "not a number: skipped");
        }
        if self.settings.is_excluded(timestamp) {
            // The bucket after a held one is excluded: the held bucket is never judged again.
            self.held = None;
            if let Some(Model::Seasonal(model)) = self.model.as_mut()
                && let Some(range) = self.settings.exclude.iter().find(|range| range.contains(timestamp))
            {
                model.skipped_excluded(range.end);
            }
            return Verdict::unjudged(
                timestamp,
                point.value,
                Status::Excluded,
                self.history,
                "inside an excluded time range: not judged, not learned",
            );
        }
        let label = self.settings.label_at(timestamp);
        let in_order = self.last_timestamp.is_none_or(|last| timestamp > last);
        let learns = in_order && label != Some(LabelKind::ConfirmedIncident);

        if self.model.is_none() {
            let needed =
                if self.class == MetricClass::Proportion { PROPORTION_COLD_START_POINTS } else { COLD_START_POINTS };
            if self.cold.len() < needed || self.class == MetricClass::Freshness && !self.freshness_ready() {
                let seen = self.cold.len();
                let ruled = if in_order && label != Some(LabelKind::Expected) {
                    self.cold_start_rule(&point, Some(needed))
                } else {
                    None
                };
                if learns {
                    self.cold.push(point);
                    self.history += 1;
                    self.last_timestamp = Some(timestamp);
                }
                let alert = self.excursions.observe(ruled.is_some(), ruled.as_ref().and_then(|v| v.direction), None);
                if let Some(mut verdict) = ruled {
                    verdict.alert = alert;
                    return verdict;
                }
                return Verdict::unjudged(
                    timestamp,
                    point.value,
                    Status::ColdStart,
                    seen,
                    format!("learning: {seen} of {needed} points of history, no verdict yet"),
                );
            }
            self.build_model();
        }

        let Some(model) = self.model.as_mut() else {
            unreachable!("model built above");
        };
        let judgement: Option<Judgement> = match model {
            Model::Seasonal(m) => m.judge(timestamp, point.value),
            Model::Proportion(m) => m.judge(&point),
            Model::Freshness(m) => m.judge(&point),
        };
        let Some(mut judgement) = judgement else {
            if learns {
                self.learn(&point, label);
            }
            return Verdict::unjudged(
                timestamp,
                point.value,
                Status::ColdStart,
                self.history,
                "learning: not enough history for this model yet",
            );
        };

        if label == Some(LabelKind::Expected) {
            judgement.anomaly = false;
        }
        // The cold-start rule still judges the first weeks beside the model's wide ranges.
        let ruled = if !judgement.anomaly
            && in_order
            && label != Some(LabelKind::Expected)
            && self.keeps_early_points()
            && self.history < EARLY_RULE_POINTS
        {
            self.cold_start_rule(&point, None)
        } else {
            None
        };
        let ruled = match ruled {
            None if !judgement.anomaly && in_order && label != Some(LabelKind::Expected) => self.record_rule(&point),
            ruled => ruled,
        };
        // An anomalous rate is learned at the edge of its expected range: a null spike must
        // not teach the model that spikes are normal (its between-batch variance would widen
        // the range for the next 500 batches).
        let trained = match (&self.model, point.counts) {
            (Some(Model::Proportion(_)), Some(counts)) if judgement.anomaly && counts.total > 0 => {
                let total = counts.total as f64;
                let low = (judgement.expected.low * total).floor();
                let high = (judgement.expected.high * total).ceil();
                Point::rate(timestamp, (counts.count as f64).clamp(low, high.max(low)) as u64, counts.total)
            }
            _ => point,
        };
        let event = if learns { self.learn(&trained, label) } else { None };
        if event.is_some() {
            judgement.event = event;
        }
        // A bucket with about two buckets' rows may hold the next load, arrived early: it is
        // judged with the next bucket. If that one is short, the rows crossed the boundary; if
        // not, the rows came twice (a duplicate load) and the next bucket alerts.
        // Only the next bucket can tell an early load from a duplicate: after a gap the held
        // bucket is dropped.
        let step = match self.model.as_ref() {
            Some(Model::Seasonal(m)) => m.step(),
            _ => 0,
        };
        let held = self.held.take().filter(|(_, at)| timestamp > *at && timestamp - *at <= step * 3 / 2);
        let mut note = "";
        if ruled.is_some() {
            // Flagged by the hard rule: neither held nor judged with a held bucket.
        } else if let Some((score, _)) = held
            && !judgement.carried
            && (!judgement.anomaly || judgement.early_load)
            && label != Some(LabelKind::Expected)
        {
            judgement.anomaly = true;
            judgement.side = Some(Deviation::Above);
            judgement.score = judgement.score.max(score);
            note = "; the previous bucket held about two buckets' rows and this one is not short: rows loaded twice";
        } else if judgement.early_load && label != Some(LabelKind::Expected) {
            judgement.anomaly = false;
            self.held = Some((judgement.score, timestamp));
            note = "; about the rows of two buckets: the next load may have arrived early, judged with the next bucket";
        }
        // A level shift is an event, not an alert: a step alerted at its first anomalous point
        // already, and a gradual change that never left the expected range is not worth a page.
        // A point that carries a level shift in progress keeps the step's excursion open.
        let shifting = match self.model.as_ref() {
            Some(Model::Seasonal(m)) if learns => m.shift_in_progress(),
            _ => None,
        };
        if let Some(mut verdict) = ruled {
            verdict.alert = self.excursions.observe(true, verdict.direction, shifting);
            verdict.event = judgement.event;
            return verdict;
        }
        let alert = self.excursions.observe(judgement.anomaly, judgement.side, shifting);
        // The sentence is written when the verdict is read (`Explanation`): most never are.
        let rebaselined = matches!(event, Some(Event::Rebaselined));
        let explanation = match self.model.as_ref() {
            Some(Model::Seasonal(m)) => {
                let mut parts = m.explain(&self.noun, point.value, &mut judgement);
                (parts.rebaselined, parts.note) = (rebaselined, note);
                Explanation::seasonal(parts)
            }
            Some(Model::Proportion(m)) => {
                let mut parts = m.explain(&self.noun, &point, &judgement);
                (parts.rebaselined, parts.note) = (rebaselined, note);
                Explanation::proportion(parts)
            }
            Some(Model::Freshness(m)) => {
                let mut parts = m.explain();
                (parts.rebaselined, parts.note) = (rebaselined, note);
                Explanation::freshness(parts)
            }
            None => Explanation::default(),
        };
        Verdict {
            timestamp,
            value: point.value,
            status: Status::Learned,
            expected: Some(judgement.expected),
            score: judgement.score,
            anomaly: judgement.anomaly,
            alert,
            direction: judgement.side,
            event: judgement.event,
            confidence: judgement.confidence,
            history_points: self.history.saturating_sub(usize::from(learns)),
            explanation,
        }
    }

    /// The one hard rule of a cold start (the "only hard rules apply"), for series
    /// measured daily or less often with three or more earlier points: a count at least
    /// [`COLD_RULE_FACTOR`] times the largest earlier one is an anomaly, and so is a continuous
    /// metric whose earlier values are all positive (a mean amount, a price) at
    /// [`COLD_RULE_UNIT_FACTOR`] times either way (a unit change: cents for dollars, or back).
    /// No rhythm of a few days explains it: a weekend, a first partial day or a table that
    /// triples daily stay inside. A count needs [`COLD_RULE_MIN_ROWS`] rows at least (count noise), and its drops
    /// are left alone (three weekdays cannot tell a weekday-only table's first weekend from a
    /// missed load: that is freshness's to see). The direction filter, `min_change` and an
    /// `expected` label hold as for learned verdicts.
    ///
    /// `needed` is the cold start's length while the model is not built yet (the verdict's status
    /// is then `cold_start`); `None` once it judges beside the model, for the first
    /// [`EARLY_RULE_POINTS`] points (status `learned`).
    fn cold_start_rule(&self, point: &Point, needed: Option<usize>) -> Option<Verdict> {
        let continuous = match self.class {
            MetricClass::Count => false,
            MetricClass::Continuous => true,
            MetricClass::Proportion | MetricClass::Freshness => return None,
        };
        if self.cold.len() < COLD_RULE_MIN_POINTS {
            return None;
        }
        let largest = self.cold.iter().map(|p| p.value).fold(f64::NEG_INFINITY, f64::max);
        let lowest = self.cold.iter().map(|p| p.value).fold(f64::INFINITY, f64::min);
        let factor = if continuous { COLD_RULE_UNIT_FACTOR } else { COLD_RULE_FACTOR };
        let above = point.value >= factor * largest;
        let below = continuous && point.value <= lowest / factor;
        let applies = if continuous { lowest > 0.0 } else { largest >= COLD_RULE_MIN_ROWS };
        if !applies || !(above || below) || !self.settings.direction_for(self.class).allows(above) {
            return None;
        }
        if median_gap(self.cold.iter().chain(std::iter::once(point))).is_none_or(|gap| gap < COLD_RULE_MIN_STEP as f64)
        {
            return None;
        }
        let (bound, change) =
            if above { (largest, point.value / largest - 1.0) } else { (lowest, 1.0 - point.value / lowest) };
        if change < self.settings.min_change_for(self.class) {
            return None;
        }
        let mut values: Vec<f64> = self.cold.iter().map(|p| p.value).collect();
        let typical = median_in_place(&mut values).unwrap_or(largest);
        let seen = self.cold.len();
        let mut text = String::new();
        write_number(&mut text, point.value);
        if !self.noun.is_empty() {
            text.push(' ');
            text.push_str(&self.noun);
        }
        text.push_str(match (above, continuous) {
            (true, false) => ", at least five times the largest of the ",
            (true, true) => ", at least twenty times the largest of the ",
            (false, _) => ", at most a twentieth of the smallest of the ",
        });
        write_number(&mut text, seen as f64);
        text.push_str(" earlier points (");
        write_number(&mut text, bound);
        match needed {
            Some(needed) => text.push_str(&format!(
                "): still learning ({seen} of {needed} points of history), so only this hard rule judges it"
            )),
            None => text.push_str(&format!(
                "): the learned range is still wide after {seen} points of history, and this hard rule flags it"
            )),
        }
        let low = if continuous { lowest / factor } else { lowest };
        Some(Verdict {
            timestamp: point.timestamp,
            value: point.value,
            status: if needed.is_some() { Status::ColdStart } else { Status::Learned },
            expected: Some(Expected { low, high: factor * largest, forecast: typical }),
            score: COLD_RULE_SCORE,
            anomaly: true,
            alert: false,
            direction: Some(if above { Deviation::Above } else { Deviation::Below }),
            event: None,
            confidence: Confidence::Low,
            history_points: seen,
            explanation: text.into(),
        })
    }

    /// The record rule's verdict on a count (see [`record_rule`](super::record_rule)), with the
    /// direction filter and `min_change` of every verdict.
    fn record_rule(&self, point: &Point) -> Option<Verdict> {
        let records = self.records.as_ref()?;
        let local = point.timestamp + self.settings.utc_offset;
        let verdict = records.judge(point.timestamp, local, point.value, &self.noun, self.history)?;
        let record = verdict.expected.map_or(0.0, |e| e.forecast);
        let change = if record > 0.0 { point.value / record - 1.0 } else { f64::INFINITY };
        (self.settings.direction_for(self.class).allows(true) && change >= self.settings.min_change_for(self.class))
            .then_some(verdict)
    }

    /// The record rule learns a count's learned points.
    fn learn_record(&mut self, point: &Point) {
        if self.class != MetricClass::Count {
            return;
        }
        let step = match self.model.as_ref() {
            Some(Model::Seasonal(m)) => m.step(),
            _ => return,
        };
        let offset = self.settings.utc_offset;
        let records = self.records.get_or_insert_with(|| {
            // Days kept: eight weeks, or the training window if shorter.
            let days = self.settings.training_window.map_or(record_rule::DAYS, |w| (w / DAY) as usize);
            let mut records = Records::new(days.min(record_rule::DAYS), step >= COLD_RULE_MIN_STEP);
            // The cold start's points were learned before the model existed.
            for cold in self.cold.iter().filter(|p| p.timestamp < point.timestamp) {
                records.learn(cold.timestamp + offset, cold.value);
            }
            Box::new(records)
        });
        records.learn(point.timestamp + offset, point.value);
    }

    fn freshness_ready(&self) -> bool {
        // Freshness needs a few distinct updates, not just polls.
        let mut updates: Vec<i64> = self.cold.iter().map(|p| p.timestamp - p.value.max(0.0).round() as i64).collect();
        updates.dedup_by(|a, b| (*a - *b).abs() <= 60);
        updates.len() >= 3
    }

    fn learn(&mut self, point: &Point, label: Option<LabelKind>) -> Option<Event> {
        self.history += 1;
        self.last_timestamp = Some(point.timestamp);
        if self.keeps_early_points() && self.cold.len() < EARLY_RULE_POINTS {
            self.cold.push(*point);
        }
        self.learn_record(point);
        let model = self.model.as_mut()?;
        let mut event = match model {
            Model::Seasonal(m) => m.learn(point.timestamp, point.value),
            Model::Proportion(m) => {
                m.learn(point);
                None
            }
            Model::Freshness(m) => {
                m.learn(point);
                None
            }
        };
        if label == Some(LabelKind::Expected) {
            self.expected_run += 1;
            if let Model::Seasonal(m) = model {
                m.rebaseline(self.expected_run);
            }
            if self.expected_run == 1 {
                event = Some(Event::Rebaselined);
            }
            self.excursions.reset();
        } else {
            self.expected_run = 0;
        }
        event
    }
}

/// The median gap in seconds between consecutive points (in time order), leaving out repeated
/// timestamps; `None` for fewer than two distinct ones.
fn median_gap<'a>(points: impl Iterator<Item = &'a Point>) -> Option<f64> {
    let mut previous: Option<i64> = None;
    let mut gaps: Vec<f64> = points
        .filter_map(|p| {
            let gap = previous.map(|t| (p.timestamp - t) as f64);
            previous = Some(p.timestamp);
            gap
        })
        .filter(|gap| *gap > 0.0)
        .collect();
    median_in_place(&mut gaps)
}

/// Judge every point of `points` (in time order) on its past only: the replay behind
/// `telltale detect replay`.
pub fn replay(class: MetricClass, settings: &Settings, points: &[Point]) -> Vec<Verdict> {
    let mut detector = StreamingDetector::new(class, settings.clone());
    points.iter().map(|point| detector.push(*point)).collect()
}

/// The daemon's entry point: judge `latest` after learning `history` (in time order).
pub fn evaluate(class: MetricClass, settings: &Settings, history: &[Point], latest: Point) -> Verdict {
    let mut detector = StreamingDetector::new(class, settings.clone());
    for point in history {
        detector.push(*point);
    }
    detector.push(latest)
}
