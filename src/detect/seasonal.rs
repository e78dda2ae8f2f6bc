//! Robust seasonal baseline for count-like metrics (on a log scale) and continuous metrics
//! (on their own scale).
//!
//! The forecast of a point is a robust level (rolling median of deseasonalised values, long
//! or short window, plus a Theil–Sen trend when one is significant) plus seasonal factors:
//! hour-of-day (at the sampling resolution), hour-of-week, or day-of-week for daily series.
//! Factors are medians of past de-levelled values per slot, shrunk towards zero (and
//! hour-of-week towards hour-of-day) while few seasons have been seen. Several candidate
//! models run side by side and the one with the smallest recent absolute error is used, with
//! a preference for the simpler one, which is how `seasonality: auto` decides.
//!
//! The scale is the MAD of the chosen model's recent residuals, floored by a minimal relative
//! change and, for counts, by Poisson noise; tails are Student-t while history is short, and
//! [`Calibrator`] rescales them to the series' own residual distribution.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;

use super::calendar::{self, DAY, HOUR, WEEK};
use super::calibration::{Calibrator, SOURCES};
use super::change::{CHANGE_WEIGHT, ChangeDetector};
use super::count_noise::{CountMean, CountNoise, LOW_COUNT, LOW_COUNT_FLOOR, LOW_COUNT_MIN};
use super::explanation::SeasonalParts;
use super::format;
use super::regime::LevelShiftDetector;
use super::settings::{Direction, MetricClass, Seasonality, Settings};
use super::shape::{SHAPE_WEIGHT, ShapeDetector};
use super::stats::{
    LevelWindow, MAD_TO_SIGMA, MedianWindow, SortedWindow, median_in_place, median_of, median_of_sorted, theil_sen,
};
use super::verdict::{Confidence, Deviation, Event, Expected};

/// A judged point's time, forecast, scale and value (their bits).
type CountedKey = (i64, u64, u64, u64);

/// Seasonal structure a candidate model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Flat = 0,
    Daily = 1,
    Weekly = 2,
    /// Weekly plus an hour-of-week factor: each hour of each weekday keeps its own deviation
    /// from the hour-of-day rhythm (a busy Saturday night and an empty Sunday morning; the
    /// office hours of weekdays against a weekend without rows). Sub-daily series only.
    HourOfWeek = 3,
}

/// Level window a candidate model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Long,
    Short,
    /// A robust damped Holt level and trend (exponential smoothing with Huberised updates)
    /// on the de-seasonalised values, started from the long window's median once two seasons
    /// of its mode were seen.
    Holt,
}

/// State of a robust damped Holt candidate (on the model scale, de-seasonalised).
#[derive(Debug, Clone, Copy)]
struct Holt {
    level: f64,
    trend: f64,
    /// Robust typical absolute one-step error (exponentially weighted, of clipped errors).
    scale: f64,
    /// Timestamp of the last update.
    at: i64,
}

/// `phi^steps`, without a `pow` call for the usual single step (`pow(x, 1) = x` exactly).
fn damping(phi: f64, steps: f64) -> f64 {
    if steps == 1.0 { phi } else { phi.powf(steps) }
}

/// φ + φ² + … + φ^steps: how much of the trend a damped Holt forecast `steps` ahead adds.
fn damped_steps(phi: f64, steps: f64) -> f64 {
    if (phi - 1.0).abs() < 1e-12 { steps } else { phi * (1.0 - damping(phi, steps)) / (1.0 - phi) }
}

/// Errors beyond this many typical errors are clipped before they update a Holt level, trend
/// or scale (Huber): an outage or a spike moves the level by a bounded step only.
const HOLT_CLIP: f64 = 2.5;

/// Tunable constants of the baseline, derived from the sampling interval.
#[derive(Debug, Clone)]
struct Params {
    step: i64,
    long_window: usize,
    /// Recent points the Theil–Sen trend is measured on (eight blocks): the long window for
    /// sub-daily series, [`DAILY_TREND_WINDOW`] for daily ones.
    trend_window: usize,
    short_window: usize,
    residual_window: usize,
    day_slot: i64,
    day_slots: usize,
    day_capacity: usize,
    /// Errors a candidate needs before it can be selected.
    min_errors: usize,
    /// Points between two model selections.
    select_every: usize,
    /// Holt smoothing of the level, of the trend, and damping of the trend per step.
    holt_alpha: f64,
    holt_beta: f64,
    holt_phi: f64,
    /// `damped_steps(holt_phi, 1)`, the usual single step, computed once.
    holt_one_step: f64,
    /// Span a Holt candidate waits for (two seasons of its mode).
    holt_daily_start: i64,
    holt_weekly_start: i64,
    /// Typical errors at which a candidate's errors are winsorised for model selection: 100
    /// for counts, whose weekly misses (an empty weekend forecast full) are orders of
    /// magnitude on the log scale, 10 for continuous metrics.
    error_cap: f64,
    /// Continuous metrics: a candidate's errors are not winsorised while its typical error is
    /// nil (counts keep the cap: their exact zeros are empty buckets of zero-heavy tables).
    exact_fits_uncapped: bool,
}

impl Params {
    fn new(step: i64, settings: &Settings, class: MetricClass) -> Self {
        let step = step.max(1);
        let sub_daily = step < DAY;
        let points_per_day = (DAY / step).max(1) as usize;
        let long_window = if sub_daily { points_per_day.clamp(9, 289) } else { 15 };
        let (day_slot, day_slots) = if sub_daily {
            let slot = step.clamp(5 * 60, HOUR);
            (slot, (DAY / slot) as usize)
        } else {
            (DAY, 1)
        };
        // Slot memories span about eight weeks unless the training window says less.
        let weeks = settings.training_window.map_or(8.0, |w| (w as f64 / WEEK as f64).clamp(1.0, 8.0));
        let day_capacity = ((weeks * 7.0) as usize).clamp(3, DAY_SLOT_MOST);
        let mut long_window = long_window;
        let mut trend_window = if sub_daily { long_window } else { DAILY_TREND_WINDOW };
        if let Some(window) = settings.training_window {
            long_window = long_window.min(((window / step).max(5)) as usize);
            trend_window = trend_window.min(((window / step).max(5)) as usize);
        }
        // A daily series' Holt trend lasts about three weeks (φ 0.95) and learns five times
        // faster than an hourly one's: damped by 0.85 a day and learning at 0.2 / 16, it had
        // faded within a week, and a table growing 1 % a day was forecast 6–15 % low for good
        // (its typical error two to three times its noise, a 30 % partial load inside the range).
        let holt_phi = if sub_daily { 0.98 } else { 0.95 };
        Self {
            step,
            long_window,
            trend_window,
            short_window: 5,
            residual_window: (long_window * 7).clamp(64, 512),
            day_slot,
            day_slots,
            day_capacity,
            // Hourly and finer: two days of errors; daily series: ten days.
            min_errors: if sub_daily { 48 } else { 10 },
            select_every: if sub_daily { 16 } else { 1 },
            // About the long window's memory for the level, a tenth of it for the trend of an
            // hourly series (half of it for a daily one), and a trend that fades over about two
            // days of hourly points or three weeks of daily ones.
            holt_alpha: 2.0 / (long_window as f64 + 1.0),
            holt_beta: if sub_daily { 0.2 } else { 1.0 } / (long_window as f64 + 1.0),
            holt_phi,
            holt_one_step: damped_steps(holt_phi, 1.0),
            holt_daily_start: 2 * DAY,
            holt_weekly_start: 2 * WEEK,
            error_cap: if class == MetricClass::Count { 100.0 } else { 10.0 },
            exact_fits_uncapped: class != MetricClass::Count,
        }
    }
}

/// Values the slots of an hour of the day, of a weekday and of an hour of the week keep at most.
const DAY_SLOT_MOST: usize = 14;
const WEEK_SLOT_MOST: usize = 8;

/// Last few de-levelled values seen in one seasonal slot, in arrival order (a ring) and sorted
/// (in `f64::total_cmp` order), in fixed arrays, so that its median costs nothing and an update
/// slides the value entering from the rank of the one leaving (no allocation, no `memmove`).
/// At most `N` values (the arrays are sized for the slot's kind: the model keeps hundreds).
#[derive(Debug, Clone)]
struct Slot<const N: usize> {
    values: [f64; N],
    sorted: [f64; N],
    len: usize,
    /// The oldest value once the ring is full (0 before).
    head: usize,
}

impl<const N: usize> Default for Slot<N> {
    fn default() -> Self {
        Self { values: [0.0; N], sorted: [0.0; N], len: 0, head: 0 }
    }
}

impl<const N: usize> Slot<N> {
    fn push(&mut self, value: f64, capacity: usize) {
        debug_assert!(capacity <= N);
        let capacity = capacity.clamp(1, N);
        let len = self.len.min(N);
        let mut at = if len >= capacity {
            let oldest = std::mem::replace(&mut self.values[self.head], value);
            self.head = if self.head + 1 >= capacity { 0 } else { self.head + 1 };
            let mut at = self.sorted[..len].partition_point(|x| x.total_cmp(&oldest).is_lt());
            while at + 1 < len && self.sorted[at + 1].total_cmp(&value).is_lt() {
                self.sorted[at] = self.sorted[at + 1];
                at += 1;
            }
            at
        } else {
            self.values[len] = value;
            self.len = len + 1;
            len
        };
        while at > 0 && self.sorted[at - 1].total_cmp(&value).is_gt() {
            self.sorted[at] = self.sorted[at - 1];
            at -= 1;
        }
        self.sorted[at] = value;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Values in arrival order, oldest first.
    fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let values = &self.values[..self.len.min(N)];
        let (newer, older) = values.split_at(self.head.min(values.len()));
        older.iter().chain(newer).copied()
    }

    /// The newest value.
    fn back(&self) -> Option<f64> {
        let index = if self.head == 0 { self.len.checked_sub(1)? } else { self.head - 1 };
        self.values.get(index).copied()
    }

    /// The value at `rank` in ascending order.
    fn sorted_at(&self, rank: usize) -> f64 {
        self.sorted[rank]
    }

    /// The median, exactly as [`median_in_place`] computes it.
    fn median(&self) -> Option<f64> {
        median_of_sorted(&self.sorted[..self.len.min(N)])
    }
}

/// Absolute deviation of `value` from the median of a slot that already holds a few values.
fn slot_deviation<const N: usize>(slot: &Slot<N>, value: f64) -> Option<f64> {
    if slot.len() < 2 {
        return None;
    }
    slot.median().map(|m| (value - m).abs())
}

/// Past standardised residuals the calibration rests on (a few weeks of hourly points).
const CALIBRATION_RESIDUALS: usize = 2_000;

/// Daily points the trend of a daily series is measured on: eight weeks, in blocks of a week.
/// (It was the long window of 15 points, under the 16 the trend needs: a daily series never
/// had one.)
const DAILY_TREND_WINDOW: usize = 56;

/// Rows a bucket's level holds at least, and its slot's factor divides it by at least, for
/// an empty bucket in that slot to be the slot's own emptiness (a weekday-only table's
/// weekend, a business-hours table's night): it says nothing of the level.
const STRUCTURAL_EMPTY_LEVEL: f64 = 11.0;

/// Absolute errors behind each candidate's recent typical error.
const RECENT_RESIDUALS: usize = 128;

/// Errors each candidate remembers in order (at least the level-shift confirmation span).
const RECENT_ERRORS: usize = 12;

/// The last `capacity` values in arrival order (a ring: a value replaces the oldest in place).
#[derive(Debug, Clone)]
struct Ring<T> {
    values: Vec<T>,
    /// The oldest value once the ring is full (0 before).
    head: usize,
    capacity: usize,
}

impl<T: Copy> Ring<T> {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { values: Vec::with_capacity(capacity), head: 0, capacity }
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn clear(&mut self) {
        self.values.clear();
        self.head = 0;
    }

    fn push(&mut self, value: T) {
        if self.values.len() < self.capacity {
            self.values.push(value);
        } else {
            self.values[self.head] = value;
            self.head = if self.head + 1 == self.capacity { 0 } else { self.head + 1 };
        }
    }

    fn oldest(&self) -> Option<T> {
        self.values.get(self.head).copied()
    }

    fn newest(&self) -> Option<T> {
        let index = if self.head == 0 { self.values.len().checked_sub(1)? } else { self.head - 1 };
        self.values.get(index).copied()
    }

    /// Values from the newest to the oldest.
    fn newest_first(&self) -> impl Iterator<Item = T> + '_ {
        let (newer, older) = self.values.split_at(self.head);
        newer.iter().rev().chain(older.iter().rev()).copied()
    }
}

/// One candidate forecaster: a level window and a residual window.
#[derive(Debug, Clone)]
struct Candidate {
    mode: Mode,
    reach: Reach,
    level: LevelWindow,
    /// The last absolute errors (median = recent typical error).
    residuals: MedianWindow,
    /// Exponentially weighted mean of winsorised absolute errors, over about
    /// `residual_window` points: the model-selection criterion.
    mean_error: f64,
    errors: usize,
    memory: usize,
    min_errors: usize,
    /// Last few absolute errors, newest last (to tell a shift from a rhythm).
    recent_errors: Ring<f64>,
    /// Typical errors at which errors are winsorised for model selection.
    error_cap: f64,
    /// Continuous metrics: errors are not winsorised while the typical error is nil.
    exact_fits_uncapped: bool,
    /// Holt state of a [`Reach::Holt`] candidate once started.
    holt: Option<Holt>,
    /// Clearly losing: scored only on every [`DORMANT_SAMPLING`]-th point.
    dormant: bool,
}

/// A level shift is explained by switching to another candidate only if that candidate's typical
/// error is at most this many times the active one's (a rhythm it already forecasts, not the
/// luck of its last few points).
const EXPLAINING_MAX_ERROR_RATIO: f64 = 2.0;
/// A daily count outside the range of a model without day-of-week factors is not an anomaly
/// when the weekly candidate of the same reach, whose typical error is at most this many times
/// the active one's, forecasts it.
const WEEKLY_EXCUSE_MAX_ERROR_RATIO: f64 = 1.25;
/// A candidate whose typical error is this many times the best one's goes dormant.
const DORMANT_ERROR_RATIO: f64 = 1.5;
/// Points before any candidate may go dormant (two weeks of hourly points).
const DORMANT_AFTER_POINTS: usize = 336;
/// A dormant candidate is scored on every this-many points.
const DORMANT_SAMPLING: usize = 8;

impl Candidate {
    fn new(mode: Mode, reach: Reach, params: &Params) -> Self {
        let capacity = match reach {
            Reach::Long | Reach::Holt => params.long_window,
            Reach::Short => params.short_window,
        };
        Self {
            mode,
            reach,
            level: LevelWindow::new(capacity),
            residuals: MedianWindow::new(RECENT_RESIDUALS),
            mean_error: 0.0,
            errors: 0,
            memory: params.residual_window,
            min_errors: params.min_errors,
            recent_errors: Ring::new(RECENT_ERRORS),
            error_cap: params.error_cap,
            exact_fits_uncapped: params.exact_fits_uncapped,
            holt: None,
            dormant: false,
        }
    }

    /// Damped Holt forecast `steps` ahead.
    fn holt_forecast(holt: &Holt, steps: f64, params: &Params) -> f64 {
        let damped = if steps == 1.0 { params.holt_one_step } else { damped_steps(params.holt_phi, steps) };
        holt.level + damped * holt.trend
    }

    /// Record an absolute error; only an `informative` one enters the typical error (the
    /// scale). The `active` candidate keeps its errors sorted (its typical error is read at
    /// every point); the others need their median only when the error may reach the cap.
    fn push_error(&mut self, error: f64, informative: bool, active: bool) {
        self.recent_errors.push(error);
        if informative {
            self.residuals.push(error, active);
        }
        // The median is at least `floor`: an error within `error_cap` floors is within the cap
        // (and the typical error is not nil), whatever the exact median.
        let floor = self.residuals.median_floor();
        if floor > 0.0 && error <= self.error_cap * floor {
            self.errors += 1;
            let weight = 1.0 / self.errors.min(self.memory) as f64;
            self.mean_error += (error - self.mean_error) * weight;
            return;
        }
        // Winsorised at a number of typical errors: unlike the median the mean sees the big
        // misses a model makes at every weekend, unlike the plain mean it survives anomalies.
        // A continuous metric's candidate whose typical error is nil (it forecasts a synthetic
        // series exactly most of the time, NAB's perfect square wave) caps nothing at zero: its
        // misses at every step are what tells it from a model that forecasts the steps too.
        let typical = self.residuals.median().unwrap_or(error);
        let cap = if typical > 0.0 || !self.exact_fits_uncapped { self.error_cap * typical } else { f64::INFINITY };
        self.errors += 1;
        let weight = 1.0 / self.errors.min(self.memory) as f64;
        self.mean_error += (error.min(cap) - self.mean_error) * weight;
    }

    /// Largest of the last `count` absolute errors.
    fn worst_recent_error(&self, count: usize) -> Option<f64> {
        if self.recent_errors.len() < count {
            return None;
        }
        self.recent_errors.newest_first().take(count).reduce(f64::max)
    }

    /// Typical error for model selection, once enough errors were seen.
    fn typical_error(&self) -> Option<f64> {
        (self.errors >= self.min_errors).then_some(self.mean_error)
    }
}

/// The middle of the span of a level window's timestamps.
fn centre_time(times: &Ring<i64>) -> Option<i64> {
    let first = times.oldest()?;
    let last = times.newest()?;
    Some(first + (last - first) / 2)
}

/// The last learned point as the active model judged it (for rows that crossed a bucket
/// boundary).
#[derive(Debug, Clone, Copy)]
struct Previous {
    timestamp: i64,
    value: f64,
    /// Forecast on the measured scale.
    forecast: f64,
    /// Standardised residual.
    z: f64,
}

/// Medians of one block of the trend's window (see `update_trend`), kept for the next update.
#[derive(Debug, Clone, Copy)]
struct TrendBlock {
    /// Timestamps of the block's first and last point.
    first: i64,
    last: i64,
    mode: Mode,
    x: f64,
    y: f64,
}

/// Share of a bucket's shortfall (or excess) that its neighbour's excess (or shortfall) must
/// make up for the two to be judged together.
const CARRY_MIN_SHARE: f64 = 0.5;

/// What the baseline thinks of one point, before hygiene and labels are applied.
#[derive(Debug, Clone)]
pub(crate) struct Judgement {
    pub expected: Expected,
    pub score: f64,
    pub anomaly: bool,
    pub side: Option<Deviation>,
    pub event: Option<Event>,
    pub confidence: Confidence,
    pub context: String,
    /// Timestamp of the judged point.
    pub at: i64,
    pub relative_change: Option<f64>,
    /// A bucket of a sub-daily count holding about its own and the next bucket's rows: the
    /// next load may have arrived early, so it is judged once the next bucket is known.
    pub early_load: bool,
    /// Judged together with the previous bucket (rows crossed the boundary).
    pub carried: bool,
    /// Seasonal mode of the model that judged the point (its slot is named in the
    /// explanation, which is written after the point was learned and may have switched models).
    pub mode: Option<Mode>,
}

/// The seasonal factors and the active candidate's forecast at the point judged last: learning
/// that point starts from the same state (nothing changes the model between judging and
/// learning a point), so it reuses them instead of computing them again.
#[derive(Debug, Clone, Copy)]
struct Judged {
    timestamp: i64,
    factors: [f64; 4],
    active: usize,
    forecast: f64,
    /// The forecast on the measured scale (`untransform(forecast)`: an `exp` for counts).
    forecast_value: f64,
    /// The value judged (its bits) and its transform (a logarithm for counts).
    value_bits: u64,
    observed: f64,
    /// The point's novelty for the widening of a count's scale.
    novelty: Option<Novelty>,
}

/// What widens a count's scale at a point besides the scale itself: whether its weekday or hour
/// is not learned yet, and the change of the weekday's offset the active model misses (see
/// [`SeasonalModel::widened_scale_with`]).
#[derive(Debug, Clone, Copy)]
struct Novelty {
    novel: bool,
    week_change: Option<f64>,
}

/// The constant terms of the weighted-Bonferroni fusion of a point's own score with the change
/// and shape tests' (each test's share of the false-alarm budget `α = own + change + shape`,
/// as `log10` of the share, and each test's own level `-log10` of its rate): computed once,
/// not by five logarithms at every point.
#[derive(Debug, Clone, Copy)]
struct Fusion {
    own_share: f64,
    change_share: f64,
    change_level: f64,
    shape_share: f64,
    shape_level: f64,
}

impl Fusion {
    fn new(own: f64, change: f64, shape: f64) -> Self {
        let total = own + change + shape;
        Self {
            own_share: (own / total).log10(),
            change_share: (change / total).log10(),
            change_level: -change.log10(),
            shape_share: (shape / total).log10(),
            shape_level: -shape.log10(),
        }
    }
}

/// Scratch buffers of folding a day into the seasonal slots: the day's values (for its
/// median) and each hour's deviations.
#[derive(Debug, Clone, Default)]
struct DayScratch {
    values: Vec<f64>,
    hours: [Vec<f64>; 24],
}

/// The streaming robust seasonal model for one series.
#[derive(Debug, Clone)]
pub struct SeasonalModel {
    class: MetricClass,
    log_scale: bool,
    alpha: f64,
    direction: Direction,
    min_change: f64,
    seasonality: Seasonality,
    utc_offset: i64,
    params: Params,
    /// Medians of the last seven complete days: the weekly level day-of-week offsets are
    /// measured against.
    day_medians: SortedWindow,
    day: Vec<Slot<DAY_SLOT_MOST>>,
    week: Vec<Slot<WEEK_SLOT_MOST>>,
    /// Cached shrunk factors, refreshed whenever a day is folded in.
    day_factors: Vec<f64>,
    week_offsets: [f64; 7],
    /// Per hour of the week (weekday × 24 + local hour), the last few days' median deviation
    /// of that hour from the day's median and the hour-of-day factor; sub-daily series only.
    week_hours: Vec<Slot<WEEK_HOUR_CAPACITY>>,
    /// Cached hour-of-week factors (medians of `week_hours`, shrunk towards zero).
    week_hour_factors: Vec<f64>,
    /// Typical deviation of an hour-of-week value from its slot's median.
    week_hour_noise: SortedWindow,
    /// The day being accumulated for the seasonal slots: its local midnight and its points
    /// (hour-of-day slot, transformed value).
    day_run: (Option<i64>, Vec<(usize, f64)>),
    /// Buffers of [`close_day`](Self::close_day), kept between days.
    scratch: DayScratch,
    /// Weekdays whose last occurrence was an empty day left out of the factors.
    skipped_empty: [bool; 7],
    /// Deviations of new slot values from their slot's median: the slot noise.
    day_noise: SortedWindow,
    week_noise: SortedWindow,
    candidates: Vec<Candidate>,
    /// Timestamps of the values in the long and the short level windows (the same for every
    /// candidate of a reach; for the trend's lag).
    long_times: Ring<i64>,
    short_times: Ring<i64>,
    active: usize,
    /// Absolute errors of whichever candidate was active, over a long window ...
    active_errors: MedianWindow,
    /// ... and their median, refreshed every [`LONG_ERROR_EVERY`] points (and at every point
    /// while fewer than [`LONG_ERROR_EVERY_POINT`] errors were seen): the long half of the scale.
    long_error: f64,
    calibrator: Calibrator,
    /// Continuous metrics: a CUSUM of the calibrated residuals (a change of variance), which
    /// takes `change_alpha` of the false-alarm budget.
    change: Option<ChangeDetector>,
    change_alpha: f64,
    /// Continuous metrics: the recent values' distribution against the longer past (a change
    /// of shape), which takes `shape_alpha` of the false-alarm budget.
    shape: Option<ShapeDetector>,
    shape_alpha: f64,
    /// The weighted-Bonferroni terms of continuous metrics, computed once (see [`Fusion`]).
    fusion: Fusion,
    /// What judging the last point computed that learning it computes again on the same
    /// state (see [`Judged`]); taken by `learn`, cleared by a re-baseline.
    judged: Cell<Option<Judged>>,
    /// The count-noise residual of the last point judged by it, keyed by the point's time,
    /// forecast, scale and value (bits): learning that point reuses it.
    counted: Cell<Option<(CountedKey, f64)>>,
    shifts: LevelShiftDetector,
    /// Recent trained points (time, transformed value), for re-baselining and trend.
    recent: VecDeque<(i64, f64, [f64; 4])>,
    /// Typical absolute size of recent values, refreshed now and then (scale floor).
    magnitude: f64,
    trend: f64,
    /// Block medians of the last trend update.
    trend_blocks: [Option<TrendBlock>; 8],
    trained: usize,
    /// Weekdays and hour-of-day slots that have been learned at least once.
    weekdays_seen: [u32; 7],
    /// Recent rate of excursions beyond the threshold (exponentially weighted over about the
    /// calibration's window; an excursion counts once, at its first residual beyond).
    exceedance: f64,
    /// Whether the last learned point was an outage's empty bucket (see `learn`).
    in_outage: bool,
    /// Whether the last learned residual was beyond the threshold (inside an excursion).
    beyond_last: bool,
    slots_seen: Vec<u32>,
    /// Local day of the last learned point (to count days, not points).
    last_day: i64,
    since_selection: usize,
    /// Points since dormant candidates were last scored.
    since_sample: usize,
    since_trend: usize,
    first_timestamp: i64,
    previous: Option<Previous>,
    /// Whether a value below zero was ever learned (a continuous metric's range is shown from
    /// zero while none was).
    negative_seen: bool,
    /// Until when counts may catch up the backlog of an excluded range.
    catch_up_until: i64,
    /// Counts: the natural-scale seasonal mean and dispersion small counts are judged by.
    count_mean: Option<Box<CountMean>>,
}

/// Weight of a seasonal factor `m` estimated as the median of `count` slot values whose
/// typical absolute deviation is `noise`: 1 for a factor far above its standard error, 0 for
/// one that noise alone would produce.
fn shrinkage(m: f64, noise: Option<f64>, count: usize) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let Some(noise) = noise else {
        return count as f64 / (count as f64 + 1.0);
    };
    // Variance of a median of `count` values ≈ (π/2) σ² / count; σ from the median deviation.
    let sigma = noise * MAD_TO_SIGMA;
    let standard_error_squared = std::f64::consts::FRAC_PI_2 * sigma * sigma / count as f64;
    if m == 0.0 {
        return 0.0;
    }
    (1.0 - 2.0 * standard_error_squared / (m * m)).max(0.0)
}

/// Points over which the rate of excursions beyond the threshold is measured (the calibration's
/// window) ...
const EXCURSION_RATE_SPAN: f64 = CALIBRATION_RESIDUALS as f64;
/// ... and the excursions within it beyond which they are common: the calibration, not the
/// data, is off (at the threshold's rate a span expects 0.001–0.01 of them), and residuals
/// enter unclipped.
const COMMON_EXCURSIONS: f64 = 3.0;

/// A sub-daily count's calibration forgets its residuals above [`MISFIT_LEVEL`] standardised
/// residuals once they are older than this (a one-off misfit episode: a timezone mistake, a
/// second weekend before the weekly model, an incident's own residuals), checked every
/// [`MISFIT_CHECK_EVERY`] points (a week of hours; checked daily, the same verdicts on the
/// tuning seeds for three times the cost). A normal residual is beyond 4 once in 16 000: what
/// lies there is misfits, and those that recur come back within the four weeks. Four weeks: on
/// the tuning seeds two weeks added false alerts and three added them inside benign windows.
const MISFIT_MEMORY: i64 = 28 * DAY;
const MISFIT_LEVEL: f64 = 4.0;
const MISFIT_CHECK_EVERY: usize = 168;

/// Calibration residuals of a model whose typical error is this many times the active one's
/// are forgotten ...
const OUTCLASSED_ERROR_RATIO: f64 = 1.5;
/// ... when at least this many residuals remain; otherwise only their residuals beyond the
/// calibration's top [`TAIL_OF_OUTCLASSED`].
const MIN_CALIBRATION_AFTER_FORGETTING: usize = 200;
/// The share of the calibration's largest residuals beyond which an outclassed model's
/// residuals count as its misfits.
const TAIL_OF_OUTCLASSED: f64 = 0.05;

/// Absolute errors of the active candidate behind the long half of the scale. Their median
/// moves slowly: it is selected from an unsorted window every [`LONG_ERROR_EVERY`] points, not
/// kept sorted at every point (session 10: a `SortedWindow` of 512 cost a count point ~290
/// instructions, a selection ~4 000 at each refresh).
const LONG_ERRORS: usize = 512;
const LONG_ERROR_EVERY: usize = 64;
/// Errors before which the long median is refreshed at every point (the first hours' scale).
const LONG_ERROR_EVERY_POINT: usize = 64;

/// Days of one hour of the week remembered for its factor, and needed before it has one.
const WEEK_HOUR_CAPACITY: usize = 4;
const WEEK_HOUR_MIN_DAYS: usize = 2;

/// Extra log-scale uncertainty of a count in a weekday or hour never seen (a factor of 20).
const NOVELTY_LOG_SCALE: f64 = 3.0;
/// ... and for a non-zero count there (a factor of 1.5).
const NOVELTY_LOG_SCALE_NONZERO: f64 = 0.4;

/// Errors the active candidate of a continuous metric must have made before its residuals
/// calibrate the tails.
const CALIBRATION_WARM_UP: usize = 10;
/// Days a continuous sub-daily metric's hour-of-day slot is judged with an unknown rhythm
/// allowed, and that rhythm's size as a share of the metric's typical size.
const RHYTHM_DAYS: u32 = 5;
const RHYTHM_SHARE: f64 = 0.05;

/// Largest change (a factor) that the widening of an unlearned weekday or hour may hide for a
/// non-zero count.
const NOVELTY_MAX_NONZERO_CHANGE: f64 = 8.0;

/// Judged points a model needs before its tails stop being widened for short history.
const SMALL_SAMPLE_DOF_CAP: f64 = 60.0;
/// An empty bucket where at least this many rows were forecast is an outage (see `learn`).
const OUTAGE_MIN_ROWS: f64 = 10.0;

impl SeasonalModel {
    /// A model for a series sampled about every `step` seconds.
    pub fn new(class: MetricClass, settings: &Settings, step: i64, first_timestamp: i64) -> Self {
        let params = Params::new(step, settings, class);
        let mut candidates = Vec::new();
        let modes: &[Mode] = match settings.seasonality {
            Seasonality::Auto => &[Mode::Flat, Mode::Daily, Mode::Weekly, Mode::HourOfWeek],
            Seasonality::None => &[Mode::Flat],
            Seasonality::Daily => &[Mode::Daily],
            Seasonality::Weekly => &[Mode::Weekly, Mode::HourOfWeek],
        };
        for &mode in modes {
            if matches!(mode, Mode::Daily | Mode::HourOfWeek) && params.step >= DAY {
                // Daily series have no hour of day: day-of-week is the Weekly mode.
                continue;
            }
            for reach in [Reach::Long, Reach::Short, Reach::Holt] {
                if reach == Reach::Holt && class != MetricClass::Count {
                    continue;
                }
                // The hour-of-week model refines the weekly one where weekdays differ in their
                // daily rhythm: one level window is enough (the short one: with the long one NAB
                // lost its gain), and each candidate costs every point an error update.
                if mode == Mode::HourOfWeek && reach != Reach::Short {
                    continue;
                }
                if settings.seasonality == Seasonality::Auto && Self::pruned(class, mode, reach, params.step) {
                    continue;
                }
                candidates.push(Candidate::new(mode, reach, &params));
            }
        }
        if candidates.is_empty() {
            candidates.push(Candidate::new(Mode::Weekly, Reach::Long, &params));
            candidates.push(Candidate::new(Mode::Weekly, Reach::Short, &params));
        }
        let stable = (params.long_window / 4).clamp(3, 12);
        // The sensitivity is a false-alarm rate per day of the series: an hourly series is
        // judged 24 times a day, so each of its points gets a 24th of it.
        let alpha = settings.sensitivity.false_alarm_rate() * (params.step as f64 / DAY as f64).min(1.0);
        // Continuous metrics also watch for a change of variance (`change`), which takes its
        // share of the false-alarm budget.
        let change = (class == MetricClass::Continuous).then(ChangeDetector::new);
        let change_weight = if change.is_some() { CHANGE_WEIGHT } else { 0.0 };
        let shape = (class == MetricClass::Continuous).then(ShapeDetector::new);
        let shape_weight = if shape.is_some() { SHAPE_WEIGHT } else { 0.0 };
        let own_alpha = alpha * (1.0 - change_weight - shape_weight);
        let fusion = Fusion::new(own_alpha, alpha * change_weight, alpha * shape_weight);
        Self {
            class,
            log_scale: class == MetricClass::Count,
            // The point's own test keeps the share of the budget the change test leaves.
            alpha: own_alpha,
            direction: settings.direction_for(class),
            min_change: settings.min_change_for(class),
            seasonality: settings.seasonality,
            utc_offset: settings.utc_offset,
            day_medians: SortedWindow::new(7),
            day: vec![Slot::default(); params.day_slots],
            week: vec![Slot::default(); 7],
            day_factors: vec![0.0; params.day_slots],
            week_offsets: [0.0; 7],
            week_hours: if params.step < DAY { vec![Slot::default(); 7 * 24] } else { Vec::new() },
            week_hour_factors: if params.step < DAY { vec![0.0; 7 * 24] } else { Vec::new() },
            week_hour_noise: SortedWindow::new(256),
            day_run: (None, Vec::new()),
            scratch: DayScratch::default(),
            skipped_empty: [false; 7],
            day_noise: SortedWindow::new(256),
            week_noise: SortedWindow::new(256),
            candidates,
            long_times: Ring::new(params.long_window),
            short_times: Ring::new(params.short_window),
            active: 0,
            active_errors: MedianWindow::new(LONG_ERRORS),
            long_error: 0.0,
            calibrator: {
                let calibrator = if params.step < DAY {
                    Calibrator::standardised(CALIBRATION_RESIDUALS).without_light_start()
                } else {
                    Calibrator::standardised(CALIBRATION_RESIDUALS)
                };
                // Counts: residuals of a model that fits have the normal tail (small counts'
                // by construction, see `count_noise`), and a long history that shows it is
                // trusted (see `Calibrator::trusting_a_normal_tail`).
                if class == MetricClass::Count { calibrator.trusting_a_normal_tail() } else { calibrator }
            },
            change,
            change_alpha: alpha * change_weight,
            shape,
            shape_alpha: alpha * shape_weight,
            fusion,
            judged: Cell::new(None),
            counted: Cell::new(None),
            shifts: LevelShiftDetector::new(8.0, stable),
            recent: VecDeque::with_capacity(params.trend_window),
            magnitude: 0.0,
            trend: 0.0,
            trend_blocks: [None; 8],
            trained: 0,
            weekdays_seen: [0; 7],
            exceedance: 0.0,
            in_outage: false,
            beyond_last: false,
            slots_seen: vec![0; params.day_slots],
            last_day: i64::MIN,
            since_selection: 0,
            since_sample: 0,
            since_trend: 0,
            first_timestamp,
            previous: None,
            negative_seen: false,
            catch_up_until: i64::MIN,
            count_mean: (class == MetricClass::Count).then(|| Box::new(CountMean::new(params.day_slots))),
            params,
        }
    }

    /// Whether automatic seasonality leaves out the candidate of `mode` and `reach`: every
    /// candidate costs every point a forecast, an error update and (but for Holt) a level
    /// window, and model selection among near-equal candidates bought nothing measurable on
    /// the benchmark (session 10, see docs/detection-research.md, "Speed"). Counts keep the daily
    /// mode's short window only (its long window and its Holt level were selected at some time
    /// on 15 and 23 % of the tuning seeds' count series; left out, false alerts fell 1.42 →
    /// 1.40 per 1000 table-days with every recall the same), no Holt level for the flat mode,
    /// and a sub-daily series no flat short window either (the daily short window follows the
    /// last hours, of the same day); a daily series keeps it (it follows a steady growth, and
    /// tells a Saturday's own level); sub-daily continuous metrics leave the weekly mode to
    /// the hour-of-week candidate, which refines it (the weekly candidates were never selected
    /// on the benchmark, on NAB for 48 points).
    fn pruned(class: MetricClass, mode: Mode, reach: Reach, step: i64) -> bool {
        if class == MetricClass::Count {
            match mode {
                Mode::Flat => reach == Reach::Holt || (reach == Reach::Short && step < DAY),
                Mode::Daily => reach != Reach::Short,
                Mode::Weekly | Mode::HourOfWeek => false,
            }
        } else {
            mode == Mode::Weekly && step < DAY
        }
    }

    /// A point inside an excluded range ending at `end` was skipped: for a day after it, counts
    /// may catch up the backlog.
    pub(crate) fn skipped_excluded(&mut self, end: i64) {
        self.catch_up_until = self.catch_up_until.max(end + DAY);
    }

    /// The sampling interval the model assumes (seconds).
    pub(crate) fn step(&self) -> i64 {
        self.params.step
    }

    /// Points the model has learned from.
    pub fn trained_points(&self) -> usize {
        self.trained
    }

    fn transform(&self, value: f64) -> f64 {
        if self.log_scale { (value.max(0.0) + 1.0).ln() } else { value }
    }

    fn untransform(&self, value: f64) -> f64 {
        if self.log_scale { (value.exp() - 1.0).max(0.0) } else { value }
    }

    fn local(&self, timestamp: i64) -> i64 {
        timestamp + self.utc_offset
    }

    fn day_index(&self, timestamp: i64) -> usize {
        (calendar::second_of_day(self.local(timestamp)) / self.params.day_slot) as usize % self.params.day_slots
    }

    fn covered(&self, timestamp: i64) -> i64 {
        timestamp - self.first_timestamp
    }

    /// Hour-of-day factor of the slot `timestamp` falls in (0 before a full day was seen).
    fn daily_factor(&self, timestamp: i64) -> f64 {
        if self.params.step >= DAY || self.covered(timestamp) < DAY {
            return 0.0;
        }
        self.day_factors[self.day_index(timestamp)]
    }

    /// Weekly factor: the daily factor plus the day-of-week offset; the daily factor alone
    /// during the first week.
    fn weekly_factor(&self, timestamp: i64, daily: f64) -> f64 {
        if self.covered(timestamp) < WEEK {
            return daily;
        }
        daily + self.week_offsets[calendar::weekday(self.local(timestamp))]
    }

    /// Hour-of-week factor on top of the weekly one (0 before two weeks were seen).
    fn hour_of_week_factor(&self, timestamp: i64) -> f64 {
        if self.week_hour_factors.is_empty() || self.covered(timestamp) < 2 * WEEK {
            return 0.0;
        }
        self.week_hour_factors[Self::hour_of_week(self.local(timestamp))]
    }

    /// Index of the hour of the week of a local timestamp (weekday × 24 + hour).
    fn hour_of_week(local: i64) -> usize {
        calendar::weekday(local) * 24 + (calendar::second_of_day(local) / HOUR) as usize
    }

    /// Recompute the cached factors after a day was folded into the slots. Hour-of-day
    /// factors are medians over the slot and (for sub-hourly slots) its neighbours; day-of-week
    /// offsets are medians of each past same weekday's median deviation from the weekly level.
    /// Both are shrunk towards zero by how distinguishable they are from slot noise.
    fn refresh_factors(&mut self) {
        let n = self.params.day_slots;
        let neighbours: &[usize] = if self.params.day_slot < HOUR { &[n - 1, 0, 1] } else { &[0] };
        let day_noise = self.slot_noise(&self.day_noise);
        let mut values: Vec<f64> = Vec::with_capacity(3 * self.params.day_capacity);
        for index in 0..n {
            let (median, count) = if neighbours.len() == 1 {
                // One slot: its kept-sorted median.
                let slot = &self.day[index];
                (slot.median(), slot.len())
            } else {
                values.clear();
                for offset in neighbours {
                    values.extend(self.day[(index + offset) % n].iter());
                }
                let count = values.len();
                (median_in_place(&mut values), count)
            };
            self.day_factors[index] = match median {
                Some(m) => m * shrinkage(m, day_noise, count),
                None => 0.0,
            };
        }
        let week_noise = if self.week_noise.len() >= 5 { self.week_noise.median() } else { day_noise };
        let week_level = self.day_medians.median();
        for weekday in 0..7 {
            let slot = &self.week[weekday];
            let count = slot.len();
            let mut median = slot.median();
            // A weekday whose remembered days split evenly between days without rows and days
            // with rows (the first Thursday of a weekday-only table missed its load, or its
            // first Saturday received a Friday load a timezone shift pushed over midnight)
            // follows one of them, not the midpoint of nothing and a full day, which fits
            // neither: Monday to Friday are presumed load days, the weekend not (as the
            // freshness cadence presumes for a weekday not seen yet).
            if self.log_scale
                && count >= 2
                && count.is_multiple_of(2)
                && let Some(level) = week_level
            {
                // The two middle offsets.
                let (lower, upper) = (slot.sorted_at(count / 2 - 1), slot.sorted_at(count / 2));
                if level + lower < std::f64::consts::LN_2 && level + upper > 11f64.ln() {
                    // An empty day and a full one.
                    median = Some(if weekday >= 5 { lower } else { upper });
                } else if count == 2 {
                    // Two occurrences, one of them a tenfold spike: their midpoint is neither,
                    // and the next ordinary Thursday was judged three times too low. Of two,
                    // the offset nearer the weekly level (the less surprising one) stands.
                    median = Some(if lower.abs() <= upper.abs() { lower } else { upper });
                }
            }
            self.week_offsets[weekday] = match median {
                Some(m) => m * shrinkage(m, week_noise, count),
                None => 0.0,
            };
        }
        if !self.week_hours.is_empty() {
            let noise = if self.week_hour_noise.len() >= 16 { self.week_hour_noise.median() } else { day_noise };
            for (factor, slot) in self.week_hour_factors.iter_mut().zip(&self.week_hours) {
                let count = slot.len();
                *factor = match slot.median() {
                    Some(m) if count >= WEEK_HOUR_MIN_DAYS => m * shrinkage(m, noise, count),
                    _ => 0.0,
                };
            }
        }
    }

    /// Typical deviation of a slot value from its slot's median; until enough slots have
    /// repeated, the smallest typical one-step error of any candidate stands in.
    fn slot_noise(&self, deviations: &SortedWindow) -> Option<f64> {
        if deviations.len() >= 16 {
            return deviations.median();
        }
        let needed = if self.params.step >= DAY { 5 } else { 16 };
        self.candidates
            .iter()
            .filter(|c| c.residuals.len() >= needed)
            .filter_map(|c| c.residuals.median())
            .min_by(f64::total_cmp)
    }

    fn factors(&self, timestamp: i64) -> [f64; 4] {
        let daily = self.daily_factor(timestamp);
        let weekly = self.weekly_factor(timestamp, daily);
        [0.0, daily, weekly, weekly + self.hour_of_week_factor(timestamp)]
    }

    fn factor_for(factors: &[f64; 4], mode: Mode) -> f64 {
        // The modes' discriminants are the factors' indices (a load, not a branch).
        factors[mode as usize]
    }

    fn candidate_forecast(&self, candidate: &Candidate, factors: &[f64; 4], timestamp: i64) -> Option<f64> {
        self.candidate_forecast_with(candidate, factors, timestamp, self.lags(timestamp))
    }

    /// The trend's lag at `timestamp` of the long and of the short level windows (the same for
    /// every candidate of a reach).
    fn lags(&self, timestamp: i64) -> [f64; 2] {
        let lag = |times: &Ring<i64>| centre_time(times).map_or(0, |centre| timestamp - centre) as f64;
        [lag(&self.long_times), lag(&self.short_times)]
    }

    /// [`candidate_forecast`](Self::candidate_forecast) with the [`lags`](Self::lags) computed.
    fn candidate_forecast_with(
        &self,
        candidate: &Candidate,
        factors: &[f64; 4],
        timestamp: i64,
        lags: [f64; 2],
    ) -> Option<f64> {
        if candidate.reach == Reach::Holt {
            let holt = candidate.holt.as_ref()?;
            let steps = ((timestamp - holt.at) as f64 / self.params.step as f64).max(1.0);
            return Some(
                Candidate::holt_forecast(holt, steps, &self.params) + Self::factor_for(factors, candidate.mode),
            );
        }
        let level = candidate.level.median()?;
        let lag = if candidate.reach == Reach::Short { lags[1] } else { lags[0] };
        Some(level + self.trend * lag + Self::factor_for(factors, candidate.mode))
    }

    /// Scale at `timestamp` for an observed `value`: [`scale`](Self::scale), widened honestly
    /// for counts in a weekday or an hour of the day the model has not learned yet. A count
    /// of zero there may be a day or an hour without loads (the first weekend of a
    /// weekday-only table, the first night of a business-hours one): a factor of 20 of log
    /// uncertainty. Any other count gets a factor of 1.5, which leaves a tenfold change an
    /// anomaly.
    fn scale_at(&self, forecast: f64, forecast_value: f64, timestamp: i64, value: f64) -> (f64, Option<Novelty>) {
        self.widened_scale_with(self.scale(forecast, forecast_value), timestamp, value, None)
    }

    /// [`scale_at`](Self::scale_at) from the plain [`scale`](Self::scale) already computed,
    /// reusing the `known` novelty of the point (a sub-daily count's, found when it was judged:
    /// the same model state) and returning it.
    fn widened_scale_with(
        &self,
        scale: f64,
        timestamp: i64,
        value: f64,
        known: Option<Novelty>,
    ) -> (f64, Option<Novelty>) {
        if !self.log_scale {
            return (self.widened_continuous_scale(scale, timestamp), None);
        }
        // (A daily series' novelty depends on the scale: found again.)
        let novelty = match known {
            Some(known) if self.params.step < DAY => known,
            _ => Novelty {
                novel: self.novel(timestamp, scale),
                week_change: if value > 0.0 { self.week_change(timestamp) } else { None },
            },
        };
        let novel = novelty.novel;
        let unmodelled = value > 0.0 && novelty.week_change.is_some_and(|change| change > 2.0 * scale);
        let novelty = Some(novelty);
        if !(novel || unmodelled) {
            return (scale, novelty);
        }
        if novel && value <= 0.0 {
            return ((scale * scale + NOVELTY_LOG_SCALE * NOVELTY_LOG_SCALE).sqrt(), novelty);
        }
        // However wide the small-sample threshold, an eightfold change stays outside the range.
        let widened = (scale * scale + NOVELTY_LOG_SCALE_NONZERO * NOVELTY_LOG_SCALE_NONZERO).sqrt();
        let threshold = self.calibrator.threshold(self.alpha, self.degrees_of_freedom());
        (widened.min(NOVELTY_MAX_NONZERO_CHANGE.ln() / threshold).max(scale), novelty)
    }

    /// A continuous metric's scale at `timestamp`.
    fn widened_continuous_scale(&self, scale: f64, timestamp: i64) -> f64 {
        // A continuous metric's hour-of-day rhythm is not known before a few days.
        if self.params.step < DAY && self.slots_seen[self.day_index(timestamp)] < RHYTHM_DAYS {
            let rhythm = RHYTHM_SHARE * self.magnitude;
            return (scale * scale + rhythm * rhythm).sqrt();
        }
        scale
    }

    /// Whether the active model carries yesterday's level into a weekday whose level differs
    /// (hourly series whose model has no day-of-week factors, before the weekly one is
    /// selected): the first Monday after a quiet weekend, the Saturday after a busy week. A
    /// count other than zero there gets the widening of a slot not learned yet.
    /// The answer is whether this change of the weekday's offset exceeds two scales (`None`:
    /// not such a model or weekday).
    fn week_change(&self, timestamp: i64) -> Option<f64> {
        if !self.log_scale
            || self.params.step >= DAY
            || matches!(self.candidates[self.active].mode, Mode::Weekly | Mode::HourOfWeek)
        {
            return None;
        }
        let local = self.local(timestamp);
        let weekday = calendar::weekday(local);
        let previous = (weekday + 6) % 7;
        if self.weekdays_seen[weekday] == 0 || self.weekdays_seen[previous] == 0 {
            return None;
        }
        // Yesterday is folded into the factors when today's first point is learned: at that
        // first point its offset is measured from the points of the day still open.
        let open = self.day_run.0.is_some_and(|day| day < calendar::start_of_day(local));
        let previous_offset = if open {
            let mut values: Vec<f64> = self.day_run.1.iter().map(|&(_, v)| v).collect();
            match (median_in_place(&mut values), self.day_medians.median()) {
                (Some(day), Some(level)) => day - level,
                _ => self.week_offsets[previous],
            }
        } else {
            self.week_offsets[previous]
        };
        Some((self.week_offsets[weekday] - previous_offset).abs())
    }

    /// Whether a count at `timestamp` falls in a weekday or an hour of the day the model has
    /// not learned yet (see [`scale_at`](Self::scale_at)).
    fn novel(&self, timestamp: i64, scale: f64) -> bool {
        if !self.log_scale {
            return false;
        }
        // The first occurrence teaches a factor; for daily series a weekday whose only
        // occurrence stood out waits for a second one, as does a slot of the first two days.
        let weekday = calendar::weekday(self.local(timestamp));
        let seen = self.weekdays_seen[weekday];
        let unconfirmed = seen == 1
            && self.params.step >= DAY
            && self.week[weekday].back().is_some_and(|offset| offset.abs() > 3.0 * scale);
        // For hourly series the first occurrence of a weekday is new until the day is over.
        let first_occurrence =
            seen == 1 && self.params.step < DAY && self.local(timestamp).div_euclid(DAY) == self.last_day;
        let unseen_weekday = seen == 0 || unconfirmed || first_occurrence;
        let unseen_slot = self.params.step < DAY && self.slots_seen[self.day_index(timestamp)] < 2;
        unseen_weekday || unseen_slot
    }

    /// Robust scale of the active candidate's residuals with its floors, on the model scale
    /// (`forecast_value` is `untransform(forecast)`, computed once by the caller).
    fn scale(&self, forecast: f64, forecast_value: f64) -> f64 {
        let candidate = &self.candidates[self.active];
        // The recent window reacts to a noisier regime at once; the long one keeps a lucky
        // quiet stretch from narrowing the range (scale estimates from a few hundred points
        // are ±10 %, which would triple the false-alarm rate at 4 sigma).
        let recent = candidate.residuals.median().unwrap_or(0.0);
        let long = self.long_error;
        let mad = recent.max(long) * MAD_TO_SIGMA;
        let floor = if self.log_scale {
            // Poisson-like noise of a count around the forecast, and 1 % minimal change.
            let expected_count = forecast_value;
            (1.0 / (expected_count + 1.0).sqrt()).max(0.01)
        } else {
            let reference = forecast.abs().max(self.magnitude);
            (reference * 1e-3).max(1e-9)
        };
        mad.max(floor)
    }

    /// The count noise a count forecast of fewer than [`LOW_COUNT`] rows is judged by (see
    /// [`count_noise`](super::count_noise)): a negative binomial around the counts' own
    /// seasonal mean with the dispersion measured around it ([`CountMean`]); where that mean
    /// is not known yet (or is not small), around the forecast, with the part of the log-scale
    /// `scale` beyond the Poisson floor as its dispersion.
    fn count_noise(&self, forecast: f64, scale: f64, timestamp: i64) -> Option<CountNoise> {
        // Until a week is covered the forecast of an hour can be far off while the scale
        // still sits at its Poisson floor: the log scale forgives that, the counts' tail not.
        if !self.log_scale || self.covered(timestamp) < WEEK {
            return None;
        }
        let forecast_rows = self.untransform(forecast);
        if forecast_rows >= LOW_COUNT {
            return None;
        }
        let count_mean = self.count_mean.as_deref()?;
        // Under a row (a median of mostly empty buckets) only on a table that brings a few rows
        // a bucket in all: a business-hours table's night, forecast empty beside hours of
        // thousands of rows, stays on the log scale.
        if forecast_rows < LOW_COUNT_MIN && !(LOW_COUNT_FLOOR..LOW_COUNT).contains(&count_mean.overall_mean()) {
            return None;
        }
        match count_mean.mean(self.day_index(timestamp), calendar::weekday(self.local(timestamp))) {
            Some(natural) if natural < LOW_COUNT => Some(CountNoise::new(natural, count_mean.dispersion())),
            _ if forecast_rows >= LOW_COUNT_MIN => {
                Some(CountNoise::new(forecast_rows, scale * scale - 1.0 / (forecast_rows + 1.0)))
            }
            _ => None,
        }
    }

    /// Typical absolute size of recent values (continuous series): keeps the scale floor
    /// meaningful for series that hover around zero.
    fn recent_magnitude(&self) -> f64 {
        if self.log_scale {
            // Counts' scale floor is Poisson noise: the magnitude is not used.
            return 0.0;
        }
        median_of(self.recent.iter().map(|&(_, v, _)| v.abs())).unwrap_or(0.0)
    }

    fn degrees_of_freedom(&self) -> f64 {
        ((self.trained as f64) - 1.0).clamp(2.0, SMALL_SAMPLE_DOF_CAP)
    }

    fn confidence(&self, timestamp: i64) -> Confidence {
        let covered = self.covered(timestamp);
        if self.trained < 2 * self.params.long_window.min(30) {
            Confidence::Low
        } else if covered >= 2 * WEEK || self.trained >= 8 * self.params.long_window {
            Confidence::High
        } else {
            Confidence::Medium
        }
    }

    /// Judge a point against what was learned so far (does not learn from it).
    pub(crate) fn judge(&self, timestamp: i64, value: f64) -> Option<Judgement> {
        let factors = self.factors(timestamp);
        let active = &self.candidates[self.active];
        let forecast = self.candidate_forecast(active, &factors, timestamp)?;
        let forecast_value = self.untransform(forecast);
        let observed = self.transform(value);
        let (scale, novelty) = self.scale_at(forecast, forecast_value, timestamp, value);
        self.judged.set(Some(Judged {
            timestamp,
            factors,
            active: self.active,
            forecast,
            forecast_value,
            value_bits: value.to_bits(),
            observed,
            novelty,
        }));
        let residual = observed - forecast;
        let dof = self.degrees_of_freedom();
        let threshold = self.calibrator.threshold(self.alpha, dof);
        // Rows that crossed a bucket boundary: a load landing just before (or after) its usual
        // bucket leaves one bucket high and its neighbour low. When the previous bucket stood
        // out on the other side, the two buckets are judged together.
        let carried = if residual.abs() > threshold * scale {
            self.carried_over(timestamp, value, residual, forecast_value, scale)
        } else {
            None
        };
        // The day after an excluded range (a holiday, a maintenance window) may catch up the
        // backlog: up to twice the forecast is expected then.
        let backlog = if self.log_scale && carried.is_none() && residual > 0.0 && timestamp < self.catch_up_until {
            std::f64::consts::LN_2
        } else {
            0.0
        };
        let judged_residual = carried.map_or((residual - backlog).max(0.0), |(together, _)| together);
        let judged_residual = if residual < 0.0 && carried.is_none() { residual } else { judged_residual };
        // A few rows are judged by their own count noise (unless two buckets are judged
        // together or a backlog is allowed: those stay on the log scale).
        let count_noise =
            if carried.is_none() && backlog == 0.0 { self.count_noise(forecast, scale, timestamp) } else { None };
        let z = match &count_noise {
            Some(noise) => {
                let z = noise.z(value);
                let key = (timestamp, forecast.to_bits(), scale.to_bits(), value.to_bits());
                self.counted.set(Some((key, z)));
                z
            }
            None => judged_residual / scale,
        };
        let first_rows = self.log_scale && forecast_value < 1.0 && value >= 1.0 && self.novel(timestamp, scale);
        let score = if z == 0.0 || first_rows { 0.0 } else { self.calibrator.neg_log10_p(z.abs(), dof) };
        // Weighted Bonferroni with the change test: the point is judged at (1 − w)·α on its
        // own and at w·α on the accumulated evidence of its recent past.
        let (score, changed) = match &self.change {
            Some(change) => {
                let change_score = change.score(score);
                let fusion = &self.fusion;
                let fused = (score + fusion.own_share).max(change_score + fusion.change_share).max(0.0);
                (fused, change_score >= fusion.change_level)
            }
            None => (score, false),
        };
        // ... and at its share on the shape of the recent values.
        let (mut score, reshaped) = match &self.shape {
            Some(shape) => {
                let shape_score = shape.score(value);
                let fused = score.max(shape_score + self.fusion.shape_share);
                (fused, shape_score >= self.fusion.shape_level)
            }
            None => (score, false),
        };
        let (mut low, plain_high) = match &count_noise {
            Some(noise) => noise.range(threshold),
            None => (self.untransform(forecast - threshold * scale), self.untransform(forecast + threshold * scale)),
        };
        let mut high =
            if backlog == 0.0 { plain_high } else { self.untransform(forecast + backlog + threshold * scale) };
        if self.min_change > 0.0 {
            let margin = forecast_value.abs() * self.min_change;
            low = low.min(forecast_value - margin);
            high = high.max(forecast_value + margin);
        }
        if self.log_scale {
            low = low.max(0.0);
        }
        let side = if residual > 0.0 {
            Some(Deviation::Above)
        } else if residual < 0.0 {
            Some(Deviation::Below)
        } else {
            None
        };
        let relative_change =
            if forecast_value != 0.0 { Some((value - forecast_value) / forecast_value.abs()) } else { None };
        let big_enough = relative_change.is_none_or(|change| change.abs() >= self.min_change);
        let mut outside = value < low || value > high;
        let mut context = String::new();
        if changed && !outside {
            outside = true;
            context
                .push_str("; the recent points stray from the forecast more than usual: the series' behaviour changed");
        }
        if reshaped && !outside {
            outside = true;
            context.push_str("; the recent values are distributed unlike the series' past: the series' shape changed");
        }
        // Rows in an hour or a weekday not learned yet, where the model expects none (the
        // first business hours after a night of empty buckets): the start of a rhythm, not an
        // incident. The size of a first batch of rows cannot be known from empty buckets.
        if first_rows && outside {
            outside = false;
            context.push_str("; first rows where none were expected, in a slot not learned yet");
        }
        if backlog > 0.0 && value > plain_high && !outside {
            context.push_str("; the day after an excluded range may catch up its backlog");
        }
        if let Some((together, previous)) = carried {
            // Both buckets together must be unusual as well, by more than `min_change`.
            let pair_forecast = previous.forecast + forecast_value;
            let pair_change = (previous.value + value - pair_forecast) / pair_forecast.max(1.0);
            outside &= together.abs() > threshold * scale && pair_change.abs() >= self.min_change;
            if !outside {
                context.push_str("; with the previous bucket's ");
                format::write_number(&mut context, previous.value);
                context.push_str(" rows the two buckets hold ");
                format::write_number(&mut context, previous.value + value);
                context.push_str(", about the expected ");
                format::write_approx(&mut context, pair_forecast);
                context.push_str(": rows crossed the bucket boundary");
            }
        }
        // A daily series still judged by a model without day-of-week factors (the weekly model's
        // first weeks, a copy of the flat one's errors, keep it from ranking 10 % better): a
        // point its weekly candidate forecasts is not an anomaly (the empty Saturday of a
        // weekday-only table after a load once landed on a Saturday).
        if outside
            && carried.is_none()
            && let Some(weekly_residual) = self.weekly_residual(timestamp, &factors, observed)
            && weekly_residual.abs() <= threshold * scale
        {
            outside = false;
            score = score.min(self.calibrator.neg_log10_p(weekly_residual / scale, dof));
            // Daily buckets only: the weekly candidate's slot is the weekday.
            context.push_str("; within the day-of-week rhythm's forecast for a ");
            context.push_str(calendar::weekday_name(calendar::weekday(self.local(timestamp))));
        }
        let anomaly = outside && big_enough && side.is_some_and(|s| self.direction.allows(s == Deviation::Above));
        // A metric that was never below zero (a mean of amounts, a duration, a byte count) is
        // shown a range from zero, not from a negative bound its own symmetric noise model
        // reaches (the judgement above used the model's bound: nothing else changes).
        if !self.log_scale && !self.negative_seen && self.trained > 0 && value >= 0.0 {
            low = low.max(0.0);
        }
        let early_load = anomaly
            && self.log_scale
            && self.params.step < DAY
            && carried.is_none()
            && residual > 0.0
            && self.early_load(timestamp, value, forecast_value, scale);
        Some(Judgement {
            expected: Expected { low, high, forecast: forecast_value },
            score,
            anomaly,
            side,
            event: None,
            confidence: self.confidence(timestamp),
            context,
            at: timestamp,
            relative_change,
            early_load,
            carried: carried.is_some(),
            mode: Some(active.mode),
        })
    }

    /// The residual of a daily count under the weekly candidate of the active one's reach (the
    /// same level, plus day-of-week factors) when the active model has none, the weekday was
    /// seen at least twice and that candidate's typical error is at most 1.25 times the active
    /// one's (`None` otherwise): a weekly candidate that fits worse (a lagging level on a
    /// growing table) does not excuse a partial load.
    fn weekly_residual(&self, timestamp: i64, factors: &[f64; 4], observed: f64) -> Option<f64> {
        let active = &self.candidates[self.active];
        if !self.log_scale
            || self.params.step < DAY
            || matches!(active.mode, Mode::Weekly | Mode::HourOfWeek)
            || self.covered(timestamp) < WEEK
            || self.weekdays_seen[calendar::weekday(self.local(timestamp))] < 2
        {
            return None;
        }
        let weekly = self.candidates.iter().find(|c| c.mode == Mode::Weekly && c.reach == active.reach)?;
        if weekly.typical_error()? > WEEKLY_EXCUSE_MAX_ERROR_RATIO * active.typical_error()? {
            return None;
        }
        let forecast = self.candidate_forecast(weekly, factors, timestamp)?;
        Some(observed - forecast)
    }

    /// Whether `value` is about this bucket's and the next bucket's forecast together.
    fn early_load(&self, timestamp: i64, value: f64, forecast_value: f64, scale: f64) -> bool {
        let next = timestamp + self.params.step;
        let Some(next_forecast) = self.candidate_forecast(&self.candidates[self.active], &self.factors(next), next)
        else {
            return false;
        };
        let together = self.transform(value) - self.transform(forecast_value + self.untransform(next_forecast));
        together.abs() < 2.0 * scale
    }

    /// The residual of the previous and this bucket together (model scale) when the previous
    /// bucket lay on the other side of the forecast by at least half this bucket's difference
    /// and the pair fits: rows that crossed the boundary between two buckets.
    fn carried_over(
        &self,
        timestamp: i64,
        value: f64,
        residual: f64,
        forecast_value: f64,
        scale: f64,
    ) -> Option<(f64, Previous)> {
        let previous = self.previous?;
        let adjacent = timestamp > previous.timestamp && timestamp - previous.timestamp <= self.params.step * 3 / 2;
        let made_up = (previous.value - previous.forecast) / (forecast_value - value);
        if !self.log_scale || !adjacent || previous.z * residual >= 0.0 || made_up < CARRY_MIN_SHARE {
            return None;
        }
        let together = self.transform(previous.value + value) - self.transform(previous.forecast + forecast_value);
        (together.abs() < residual.abs() && together.abs() < 2.0 * scale).then_some((together, previous))
    }

    /// Learn from a point. `judged_z` is the standardised residual of the point under the
    /// active model (None while cold). Returns a level-shift event if one was confirmed.
    pub(crate) fn learn(&mut self, timestamp: i64, value: f64) -> Option<Event> {
        let judged = self.judged.take().filter(|judged| judged.timestamp == timestamp && judged.active == self.active);
        let observed = match judged {
            Some(judged) if judged.value_bits == value.to_bits() => judged.observed,
            _ => self.transform(value),
        };
        // The day after an excluded range: rows above the forecast are its backlog (the judgement
        // allowed up to twice the forecast), learned as the forecast. Learned as they came, a
        // holiday's catch-up day (+30–80 %) lifted the levels, so the first hours after it read
        // 40 % short, and its residuals of 8–10 held hourly thresholds near 15 for weeks.
        let (value, observed) = match judged {
            Some(judged) if self.log_scale && timestamp < self.catch_up_until && observed > judged.forecast => {
                (judged.forecast_value, judged.forecast)
            }
            _ => (value, observed),
        };
        let factors = judged.map_or_else(|| self.factors(timestamp), |judged| judged.factors);
        let mut event = None;
        let mut shift_step = None;

        // Residuals of every candidate, for model selection and scale.
        let mut active_forecast = None;
        self.since_sample += 1;
        let sampled = self.since_sample >= DORMANT_SAMPLING;
        if sampled {
            self.since_sample = 0;
        }
        let lags = self.lags(timestamp);
        for index in 0..self.candidates.len() {
            // A candidate that has clearly lost is only re-evaluated on every few points.
            if self.candidates[index].dormant && !sampled && index != self.active {
                continue;
            }
            // (The active candidate's level is the one it was judged by: the candidates before it
            // only learned their errors.)
            let forecast = match judged {
                Some(judged) if index == self.active => Some(judged.forecast),
                _ => self.candidate_forecast_with(&self.candidates[index], &factors, timestamp, lags),
            };
            if let Some(forecast) = forecast {
                // An empty bucket forecast empty (under one row) says nothing of the noise of the
                // rows: its error is nil, and the nights of a business-hours table (13–15 of 24
                // hours) or the weekends of a weekday-only one made the typical error nil or a
                // fraction of the rows' own; the scale fell to its floor, the days' errors
                // became tens of scales and the calibration's tail took over at thresholds of
                // 20–170 (a tenfold spike inside the range). It still counts for model
                // selection, where forecasting the empty night is what a model must do.
                let informative = !(self.log_scale && value <= 0.0 && forecast < std::f64::consts::LN_2);
                self.candidates[index].push_error((observed - forecast).abs(), informative, index == self.active);
                if index == self.active {
                    active_forecast = Some(forecast);
                    if informative {
                        self.active_errors.push((observed - forecast).abs(), false);
                    }
                }
            }
        }
        self.previous = None;
        if let Some(forecast) = active_forecast {
            // (The active candidate's forecast is the judged one when the point was judged.)
            let forecast_value = judged.map_or_else(|| self.untransform(forecast), |judged| judged.forecast_value);
            let plain_scale = self.scale(forecast, forecast_value);
            // (A continuous metric's widening for its unknown first rhythm is for judging
            // only: level shifts are recognised on its plain scale.)
            let scale = if self.log_scale {
                let known =
                    judged.filter(|judged| judged.value_bits == value.to_bits()).and_then(|judged| judged.novelty);
                self.widened_scale_with(plain_scale, timestamp, value, known).0
            } else {
                plain_scale
            };
            let z = (observed - forecast) / scale;
            self.previous = Some(Previous { timestamp, value, forecast: forecast_value, z });
            // The calibrator measures the model's misfit, learning period included; but an
            // empty bucket in a slot not learned yet (the first night of a business-hours table,
            // the first weekend of a weekday-only one) is measured against the widened scale
            // its judgement used: on the plain scale it is a residual of 50–150 that set the
            // tail of the calibration for the next 2 000 points, and blinded hourly tables to
            // tenfold spikes for the rest of their history.
            let raw_scale = if self.log_scale && value <= 0.0 { scale } else { plain_scale };
            let key = (timestamp, forecast.to_bits(), raw_scale.to_bits(), value.to_bits());
            let raw_z = match self.counted.take() {
                Some((judged_key, z)) if judged_key == key => z,
                _ => match self.count_noise(forecast, raw_scale, timestamp) {
                    Some(noise) => noise.z(value),
                    None => (observed - forecast) / raw_scale,
                },
            };
            // Anomalies must not define the normal tail (a day-long outage would blunt the
            // thresholds for months): residuals enter clipped at 1.5 thresholds, so they
            // count as exceedances without dragging the tail's scale, unless excursions beyond
            // the threshold have become common, which means the model, not the data, is off.
            // An excursion counts once, whatever its length, and they are counted over the
            // calibration's window: counted per point over the last 100, the third residual of
            // one burst already meant "common", and the burst entered unclipped (a 4-point
            // spike of ten times the level made the range of the next 300 points 0–356 on a
            // series of 100 ± 1: a jump of twenty noise sigmas was inside it).
            let threshold = self.calibrator.threshold(self.alpha, self.degrees_of_freedom());
            // An empty bucket where ten rows and more were due is an outage: after its first
            // bucket its residuals say nothing more of the model's fit and stay out of the
            // calibration. A stale source of a day and a half, clipped at 1.5 thresholds residual
            // after residual (each raising the tail the next clip is measured by), took a
            // table's threshold from 5 to 98 for the 2 000 points after, and a tenfold spike
            // three days later was in its range.
            let outage = self.log_scale && value <= 0.0 && forecast > OUTAGE_MIN_ROWS.ln_1p();
            let outage_continues = outage && self.in_outage;
            self.in_outage = outage;
            let beyond = raw_z.abs() > threshold;
            let opens = beyond && !self.beyond_last;
            self.beyond_last = beyond;
            self.exceedance += ((if opens { 1.0 } else { 0.0 }) - self.exceedance) / EXCURSION_RATE_SPAN;
            let clip =
                if self.exceedance > COMMON_EXCURSIONS / EXCURSION_RATE_SPAN { f64::INFINITY } else { 1.5 * threshold };
            // The first residuals of a continuous metric rest on a scale from a handful of
            // errors (its floor is only 0.1 % of the level): they would fit the tail to the
            // model's infancy and blind it once the tail takes over. Counts have the Poisson
            // floor, which keeps their first residuals meaningful.
            if self.change.is_some() {
                let score = if raw_z == 0.0 {
                    0.0
                } else {
                    self.calibrator.neg_log10_p(raw_z.abs(), self.degrees_of_freedom())
                };
                let alpha = self.change_alpha;
                if let Some(change) = self.change.as_mut() {
                    change.observe(score, alpha);
                }
            }
            let alpha = self.shape_alpha;
            if let Some(shape) = self.shape.as_mut() {
                shape.observe(value, alpha);
            }
            // An empty hour where no row was due (a business-hours table's night) is no error
            // of the model, and the calibration measures errors: half a day of exact zeros
            // made the points that can alert (hours with rows, or where rows were due) only
            // half of its residuals. (Daily series keep them: measured, leaving a weekday-only
            // table's empty weekends out cost two partial loads.)
            let structural_zero = self.log_scale && self.params.step < DAY && value <= 0.0 && forecast_value < 0.05;
            if !outage_continues
                && !structural_zero
                && (self.log_scale || self.candidates[self.active].errors > CALIBRATION_WARM_UP)
            {
                self.calibrator.observe_from(raw_z.abs().min(clip), self.active);
                // Sub-daily counts: a misfit episode weighs on the thresholds for four weeks,
                // not for the 2 000 residuals (twelve weeks of hours) the window holds.
                if self.log_scale && self.params.step < DAY && self.trained.is_multiple_of(MISFIT_CHECK_EVERY) {
                    let keep = (MISFIT_MEMORY / self.params.step) as usize;
                    if keep < CALIBRATION_RESIDUALS {
                        self.calibrator.forget_old_excesses(keep, MISFIT_LEVEL);
                    }
                }
            }
            let mode = self.candidates[self.active].mode;
            let deseasonalized = observed - Self::factor_for(&factors, mode);
            let level = forecast - Self::factor_for(&factors, mode);
            if let Some(shift) = self.shifts.observe(z, deseasonalized, level, scale) {
                // A rhythm another candidate already forecasts (the first weekends of a
                // weekly series) is not a shift: switch models instead of re-baselining.
                if let Some(better) = self.candidate_explaining(shift.points, scale) {
                    self.active = better;
                } else if self.log_scale && shift.new_level < std::f64::consts::LN_2 && level > 11f64.ln() {
                    // A table that stopped receiving rows is an outage (a stale source), not a
                    // new level: it stays one anomaly, and the rows that come back are judged
                    // against the level before, not against nothing.
                    self.shifts.reset();
                } else {
                    shift_step = Some(shift.new_level - level);
                    event = Some(Event::LevelShift {
                        from: self.untransform(level),
                        to: self.untransform(shift.new_level),
                    });
                }
            }
        }

        // Seasonal slots learn each day at its end, against that day's own median, so that
        // hour-of-day factors are not biased by the day-to-day (weekly) rhythm.
        let day = calendar::start_of_day(self.local(timestamp));
        if self.day_run.0 != Some(day) {
            self.close_day();
            self.day_run.0 = Some(day);
        }
        let slot = self.day_index(timestamp);
        self.day_run.1.push((slot, observed));
        self.long_times.push(timestamp);
        self.short_times.push(timestamp);
        for index in 0..self.candidates.len() {
            let (mode, reach) = (self.candidates[index].mode, self.candidates[index].reach);
            let factor = Self::factor_for(&factors, mode);
            let value = observed - factor;
            // An empty bucket its slot forecasts empty (a weekday-only table's weekend) says
            // nothing of the level: minus its slot's offset it is the level of the weeks that
            // offset was learned in, and fed to the level windows and the Holt level it held a
            // growing table back by weeks of growth.
            if self.log_scale && observed <= 0.0 && factor < -STRUCTURAL_EMPTY_LEVEL.ln() {
                let candidate = &self.candidates[index];
                let level = match reach {
                    Reach::Holt => candidate.holt.as_ref().map(|holt| holt.level),
                    _ => candidate.level.median(),
                };
                if level
                    .is_some_and(|level| level > STRUCTURAL_EMPTY_LEVEL.ln() && level + factor < std::f64::consts::LN_2)
                {
                    continue;
                }
            }
            if reach != Reach::Holt {
                self.candidates[index].level.push(value);
                continue;
            }
            // A Holt candidate shares its mode's long window (the same values) and starts from
            // it once two seasons of its mode were seen.
            let span = if matches!(mode, Mode::Weekly | Mode::HourOfWeek) {
                self.params.holt_weekly_start
            } else {
                self.params.holt_daily_start
            };
            let start = if self.candidates[index].holt.is_none() && timestamp - self.first_timestamp >= span {
                self.long_sibling(mode).and_then(|sibling| {
                    let window = &self.candidates[sibling].level;
                    let level = window.median()?;
                    let mut deviations: Vec<f64> = window.iter_sorted().map(|v| (v - level).abs()).collect();
                    Some((level, median_in_place(&mut deviations).unwrap_or(0.0)))
                })
            } else {
                None
            };
            Self::update_holt(&mut self.candidates[index], &self.params, timestamp, value, start);
        }
        if self.recent.len() >= self.params.trend_window {
            self.recent.pop_front();
        }
        self.recent.push_back((timestamp, observed, factors));
        self.trained += 1;
        self.negative_seen |= value < 0.0;
        let local_day = self.local(timestamp).div_euclid(DAY);
        if local_day != self.last_day {
            self.last_day = local_day;
            self.weekdays_seen[calendar::weekday(self.local(timestamp))] += 1;
        }
        self.slots_seen[slot] += 1;
        if let Some(count_mean) = self.count_mean.as_mut() {
            let local = timestamp + self.utc_offset;
            count_mean.learn(calendar::start_of_day(local), calendar::weekday(local), slot, value);
        }

        if event.is_some() {
            let stable = self.shifts.stable_points();
            self.rebaseline(stable);
            if let Some(step) = shift_step {
                // The counts' own seasonal mean moves with the level (it would lag it by weeks).
                if let (Some(count_mean), Some(Event::LevelShift { from, to })) = (self.count_mean.as_mut(), &event) {
                    count_mean.rescale((to + 1.0) / (from + 1.0));
                }
                // The trend's window still holds the points before the step: block medians
                // across it made a steep slope out of the step, which forecast the new level's
                // next points far beyond it (an hourly series that doubled was forecast 2 400
                // at 2 000 a day later, and a second level shift was recognised). They are moved
                // by the step, so the trend measures only the drift on either side of it.
                let before = self.recent.len().saturating_sub(stable);
                for point in self.recent.iter_mut().take(before) {
                    point.1 += step;
                }
                self.trend_blocks = [None; 8];
            }
        }

        self.since_selection += 1;
        if self.since_selection >= self.params.select_every {
            self.since_selection = 0;
            self.select();
            self.magnitude = self.recent_magnitude();
        }
        if self.trained.is_multiple_of(LONG_ERROR_EVERY) || self.active_errors.len() < LONG_ERROR_EVERY_POINT {
            self.long_error = self.active_errors.median().unwrap_or(0.0);
        }
        self.since_trend += 1;
        if self.since_trend >= (self.params.trend_window / 8).max(1) {
            self.since_trend = 0;
            self.update_trend();
        }
        // The active candidate's typical error is read at every point (judging's scale).
        self.candidates[self.active].residuals.make_sorted();
        event
    }

    /// The side of a level shift in progress that the last learned point carried (see
    /// [`LevelShiftDetector::carried_by_last`]), if any.
    pub(crate) fn shift_in_progress(&self) -> Option<Deviation> {
        let side = self.shifts.carried_by_last();
        if side > 0.0 {
            Some(Deviation::Above)
        } else if side < 0.0 {
            Some(Deviation::Below)
        } else {
            None
        }
    }

    /// Fold the finished day into the seasonal slots: each point's deviation from the day's
    /// median into its hour-of-day slot, the day's median against the weekly level into its
    /// weekday slot. Days with less than half their points are skipped.
    fn close_day(&mut self) {
        let Some(day) = self.day_run.0 else {
            return;
        };
        // The day's points and the scratch buffers keep their capacity for the next day (no
        // allocation per day).
        let mut points = std::mem::take(&mut self.day_run.1);
        let mut scratch = std::mem::take(&mut self.scratch);
        self.fold_day(day, &points, &mut scratch);
        points.clear();
        self.day_run.1 = points;
        self.scratch = scratch;
    }

    /// [`close_day`](Self::close_day) of the day starting at `day` with its `points`.
    fn fold_day(&mut self, day: i64, points: &[(usize, f64)], scratch: &mut DayScratch) {
        let expected = (DAY / self.params.step).max(1) as usize;
        if points.len() * 2 < expected {
            return;
        }
        let values = &mut scratch.values;
        values.clear();
        values.extend(points.iter().map(|&(_, v)| v));
        let Some(day_median) = median_in_place(values) else {
            return;
        };
        // A day without rows on a weekday that brings rows (a missed load, an outage) teaches
        // no factor, from the weekday's second occurrence on: two missed Mondays would
        // otherwise make every Monday expect nothing, and one missed Monday after a single full
        // one would make the next Monday expect the midpoint of nothing and a full day. The
        // second such day in a row of that weekday is learned: the rhythm may have changed.
        let weekday = calendar::weekday(day);
        let empty = self.log_scale
            && day_median == 0.0
            && !self.week[weekday].is_empty()
            && !self.skipped_empty[weekday]
            && self.day_medians.median().is_some_and(|level| {
                // Only a weekday that has always brought rows: one whose past days were empty
                // too (the weekend of a weekday-only table, once mixed up by a shifted load)
                // learns its empty day.
                level + self.week_offsets[weekday] > 11f64.ln()
                    && self.week[weekday].iter().all(|offset| level + offset > 11f64.ln())
            });
        self.skipped_empty[weekday] = empty;
        if empty {
            return;
        }
        if !self.week_hours.is_empty() {
            // Each hour's median deviation from the day's median and the hour-of-day factor
            // (the factors before this day is folded in), into its hour of the week.
            let hours = &mut scratch.hours;
            for values in hours.iter_mut() {
                values.clear();
            }
            for &(slot, observed) in points {
                let hour = (slot as i64 * self.params.day_slot / HOUR) as usize % 24;
                hours[hour].push(observed - day_median - self.day_factors[slot]);
            }
            for (hour, values) in hours.iter_mut().enumerate() {
                if let Some(median) = median_in_place(values) {
                    let slot = &mut self.week_hours[weekday * 24 + hour];
                    if let Some(deviation) = slot_deviation(slot, median) {
                        self.week_hour_noise.push(deviation);
                    }
                    slot.push(median, WEEK_HOUR_CAPACITY);
                }
            }
        }
        if self.params.step < DAY {
            for &(slot, observed) in points {
                let delevelled = observed - day_median;
                if let Some(deviation) = slot_deviation(&self.day[slot], delevelled) {
                    self.day_noise.push(deviation);
                }
                self.day[slot].push(delevelled, self.params.day_capacity);
            }
        }
        if let Some(week_level) = self.day_medians.median() {
            let offset = day_median - week_level;
            if let Some(deviation) = slot_deviation(&self.week[weekday], offset) {
                self.week_noise.push(deviation);
            }
            self.week[weekday].push(offset, WEEK_SLOT_MOST);
        }
        // The weekly level is that of the days that bring rows: the empty weekend of a
        // weekday-only table, or the days of an outage, would drag it to nothing (a Saturday
        // measured against a week of a stale source looks like a full day).
        let without_rows =
            self.log_scale && day_median == 0.0 && self.day_medians.median().is_some_and(|level| level > 11f64.ln());
        if !without_rows {
            self.day_medians.push(day_median);
        }
        self.refresh_factors();
    }

    /// Update a Holt candidate with the de-seasonalised `value` (starting it from the long
    /// window's median once `ready`): the one-step error, clipped at [`HOLT_CLIP`] typical
    /// errors, moves the level by `alpha` of it and the damped trend by `beta` of it.
    fn update_holt(candidate: &mut Candidate, params: &Params, timestamp: i64, value: f64, start: Option<(f64, f64)>) {
        let Some(holt) = candidate.holt.as_mut() else {
            // Started from the long window's median and its values' typical deviation from it.
            if let Some((level, scale)) = start {
                candidate.holt = Some(Holt { level, trend: 0.0, scale: scale.max(1e-9), at: timestamp });
            }
            return;
        };
        let steps = ((timestamp - holt.at) as f64 / params.step as f64).max(1.0);
        let forecast = Candidate::holt_forecast(holt, steps, params);
        let error = value - forecast;
        let bound = HOLT_CLIP * holt.scale;
        let clipped = error.clamp(-bound, bound);
        holt.scale += (clipped.abs() - holt.scale) * params.holt_alpha;
        holt.scale = holt.scale.max(1e-9);
        holt.level = forecast + params.holt_alpha * clipped;
        holt.trend = holt.trend * damping(params.holt_phi, steps) + params.holt_beta * clipped;
        holt.at = timestamp;
    }

    /// The long-window candidate of `mode`, whose level window a Holt candidate shares.
    fn long_sibling(&self, mode: Mode) -> Option<usize> {
        self.candidates.iter().position(|c| c.mode == mode && c.reach == Reach::Long)
    }

    /// Restart every level from the last `points` values (after a level shift or a user's
    /// "expected" label), keeping seasonal factors and scale.
    pub(crate) fn rebaseline(&mut self, points: usize) {
        self.judged.set(None);
        let keep: Vec<(i64, f64, [f64; 4])> = self.recent.iter().rev().take(points.max(1)).rev().copied().collect();
        self.day_medians.clear();
        for candidate in &mut self.candidates {
            candidate.level.clear();
        }
        self.long_times.clear();
        self.short_times.clear();
        for &(timestamp, observed, factors) in &keep {
            self.long_times.push(timestamp);
            self.short_times.push(timestamp);
            for candidate in &mut self.candidates {
                candidate.level.push(observed - Self::factor_for(&factors, candidate.mode));
            }
        }
        // Holt candidates restart from the new level, without trend.
        for index in 0..self.candidates.len() {
            let mode = self.candidates[index].mode;
            let level = self.long_sibling(mode).and_then(|sibling| self.candidates[sibling].level.median());
            if let (Some(holt), Some(level)) = (self.candidates[index].holt.as_mut(), level) {
                holt.level = level;
                holt.trend = 0.0;
            }
        }
        self.shifts.reset();
        self.trend = 0.0;
        if let Some(change) = self.change.as_mut() {
            change.reset();
        }
        if let Some(shape) = self.shape.as_mut() {
            shape.restart();
        }
    }

    /// A candidate whose last `points` errors all stayed within 2.5 scales, if any, among those
    /// whose typical error is at most [`EXPLAINING_MAX_ERROR_RATIO`] times the active one's: a
    /// flat short window fits the last hours of a business day as well as the weekly model
    /// does, and switching to it forecast the empty evening at the daytime level.
    fn candidate_explaining(&self, points: usize, scale: f64) -> Option<usize> {
        let active_error = self.candidates[self.active].typical_error();
        (0..self.candidates.len())
            .filter(|&i| i != self.active)
            .filter(|&i| {
                active_error.is_none_or(|active| {
                    self.candidates[i].typical_error().is_some_and(|error| error <= EXPLAINING_MAX_ERROR_RATIO * active)
                })
            })
            .filter_map(|i| {
                let worst = self.candidates[i].worst_recent_error(points)?;
                (worst < 2.5 * scale).then_some((i, worst))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    /// Pick the candidate with the smallest typical error; a more complex one must beat a
    /// simpler one by 10 %.
    fn select(&mut self) {
        let complexity = |c: &Candidate| {
            let mode = match c.mode {
                Mode::Flat => 0,
                Mode::Daily => 1,
                Mode::Weekly => 2,
                Mode::HourOfWeek => 3,
            };
            let reach = match c.reach {
                Reach::Long => 0,
                Reach::Short => 1,
                Reach::Holt => 2,
            };
            mode * 3 + reach
        };
        // Candidates are created in order of complexity (modes, then reaches).
        debug_assert!(self.candidates.windows(2).all(|w| complexity(&w[0]) < complexity(&w[1])));
        let mut best: Option<(usize, f64)> = None;
        for index in 0..self.candidates.len() {
            let Some(error) = self.candidates[index].typical_error() else {
                continue;
            };
            match best {
                None => best = Some((index, error)),
                Some((_, best_error)) if error < 0.9 * best_error => best = Some((index, error)),
                _ => {}
            }
        }
        // Candidates far behind the best for a while stop being scored at every point (they
        // keep their levels, and are re-evaluated on every few points, so they can come back).
        // Counts only: on continuous metrics (NAB's series) it cost detections for little speed.
        let settled = self.log_scale && self.trained >= DORMANT_AFTER_POINTS;
        if let Some((_, best_error)) = best {
            for candidate in &mut self.candidates {
                candidate.dormant =
                    settled && candidate.typical_error().is_some_and(|error| error > DORMANT_ERROR_RATIO * best_error);
            }
        }
        if let Some((index, error)) = best {
            self.active = index;
            self.forget_outclassed_residuals(error);
        }
    }

    /// Once the hour-of-week model is active, forget the calibration residuals of the models
    /// it outclasses, when the rest can carry the tails: the misfits of a model that could not
    /// forecast the weekends (every weekend, by the size of the rhythm) are not the tails of
    /// the model that replaced it, and would keep its thresholds wide for the 2 000 points they
    /// stay. (Forgetting at any switch to a much better model cost NAB a point: a daily model
    /// replacing the flat one on a noiseless series then calibrates on a few hundred tiny
    /// residuals.)
    fn forget_outclassed_residuals(&mut self, active_error: f64) {
        if self.candidates[self.active].mode != Mode::HourOfWeek {
            return;
        }
        let outclassed = |index: usize| {
            index != self.active
                && self.candidates[index]
                    .typical_error()
                    .is_some_and(|error| error >= OUTCLASSED_ERROR_RATIO * active_error)
        };
        let mut forgotten = 0;
        let mut forget = [false; SOURCES];
        for (index, flag) in forget.iter_mut().enumerate().take(self.candidates.len()) {
            if self.calibrator.count_from(index) > 0 && outclassed(index) {
                *flag = true;
                forgotten += self.calibrator.count_from(index);
            }
        }
        if forgotten == 0 {
            return;
        }
        let outclassed_source = |source: usize| forget.get(source).copied().unwrap_or(false);
        if self.calibrator.len() - forgotten >= MIN_CALIBRATION_AFTER_FORGETTING {
            self.calibrator.forget_sources(outclassed_source);
        } else if let Some(bulk) = self.calibrator.quantile(1.0 - TAIL_OF_OUTCLASSED) {
            // Too few of the active model's own: keep the outclassed models' bulk, forget their
            // misfits (their residuals beyond the calibration's top few per cent).
            self.calibrator.forget_residuals(|source, residual| outclassed_source(source) && residual > bulk);
        }
    }

    /// Theil–Sen slope of block medians of the recent deseasonalised values; kept only when
    /// the drift over the window is large against the noise.
    fn update_trend(&mut self) {
        let n = self.recent.len();
        if n < 16 || self.candidates[self.active].reach == Reach::Short {
            self.trend = 0.0;
            return;
        }
        let blocks = 8;
        let size = n / blocks;
        let mode = self.candidates[self.active].mode;
        let (mut xs, mut ys) = ([0.0; 8], [0.0; 8]);
        let mut blocks_now = [None; 8];
        let mut found = 0;
        for block in 0..blocks {
            // `recent` slides by one block between two updates: the blocks that were already
            // there (the same points, in the same mode) keep their medians.
            let (first, last) = (self.recent[block * size].0, self.recent[block * size + size - 1].0);
            let known =
                self.trend_blocks.iter().flatten().find(|b| b.first == first && b.last == last && b.mode == mode);
            let medians = match known {
                Some(known) => Some((known.x, known.y)),
                None => {
                    let points = || self.recent.iter().skip(block * size).take(size);
                    let y =
                        median_of(points().map(|&(_, observed, factors)| observed - Self::factor_for(&factors, mode)));
                    // `recent` is in time order: the median time is the middle one (or the mean
                    // of the middle two), as a selection would find it.
                    let time = |index: usize| self.recent[block * size + index].0 as f64;
                    let x = if size == 0 {
                        None
                    } else if size % 2 == 1 {
                        Some(time(size / 2))
                    } else {
                        Some((time(size / 2 - 1) + time(size / 2)) / 2.0)
                    };
                    x.zip(y)
                }
            };
            if let Some((x, y)) = medians {
                xs[found] = x;
                ys[found] = y;
                blocks_now[found] = Some(TrendBlock { first, last, mode, x, y });
                found += 1;
            }
        }
        self.trend_blocks = blocks_now;
        let (xs, ys) = (&xs[..found], &ys[..found]);
        // Consistent direction across blocks and drift above twice the noise (the slope is
        // only needed for a consistent direction).
        let rising = ys.windows(2).filter(|w| w[1] > w[0]).count();
        let consistent = rising >= ys.len() - 2 || rising <= 1;
        if !consistent {
            self.trend = 0.0;
            return;
        }
        let slope = theil_sen(xs, ys).unwrap_or(0.0);
        let span = xs.last().zip(xs.first()).map_or(0.0, |(l, f)| l - f);
        let noise = self.candidates[self.active].residuals.median().unwrap_or(0.0) * MAD_TO_SIGMA;
        self.trend = if (slope * span).abs() > 2.0 * noise { slope } else { 0.0 };
    }

    /// The numbers of a judgement's sentence, written when the verdict is read (it takes the
    /// judgement's notes).
    pub(crate) fn explain(&self, noun: &Arc<str>, value: f64, judgement: &mut Judgement) -> SeasonalParts {
        SeasonalParts {
            noun: Arc::clone(noun),
            value,
            low: judgement.expected.low,
            high: judgement.expected.high,
            mode: judgement.mode.unwrap_or(self.candidates[self.active].mode),
            local: self.local(judgement.at),
            step: self.params.step,
            day_slot: self.params.day_slot,
            context: std::mem::take(&mut judgement.context),
            anomaly: judgement.anomaly,
            relative_change: judgement.relative_change,
            event: judgement.event,
            rebaselined: false,
            note: "",
        }
    }

    /// Internal state summary for debugging and tuning.
    pub fn debug_state(&self) -> String {
        let mut out = format!(
            "active={} trend={:.2e} infl={:.2} scale={:.4} thr={:.2}",
            self.active,
            self.trend,
            self.calibrator.inflation(),
            self.candidates[self.active].residuals.median().unwrap_or(0.0).max(self.long_error) * MAD_TO_SIGMA,
            self.calibrator.threshold(self.alpha, self.degrees_of_freedom())
        );
        for c in &self.candidates {
            out.push_str(&format!(" {:?}/{:?}:{:.3}", c.mode, c.reach, c.typical_error().unwrap_or(f64::NAN)));
        }
        out.push_str(" calib ");
        out.push_str(&self.calibrator.describe());
        out
    }

    /// The metric class this model serves.
    pub fn class(&self) -> MetricClass {
        self.class
    }

    /// The seasonality setting this model was built with.
    pub fn seasonality(&self) -> Seasonality {
        self.seasonality
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::{HOUR, MONDAY, Noise};

    #[test]
    fn empty_buckets_forecast_empty_do_not_shrink_the_scale_of_the_rows() {
        // A business-hours table: rows from 09:00 to 17:00 with 3 % noise, half to all of an
        // hour's rows at 08:00 and 18:00, nothing in the other 13 hours. The empty buckets'
        // errors are exactly nil and were most of the errors: the typical error was nil and the
        // scale fell to its 1 % floor, a third of the rows' own noise.
        let mut rng = Noise::new(21);
        let mut model = SeasonalModel::new(MetricClass::Count, &Settings::default(), HOUR, MONDAY);
        for h in 0..24 * 28 {
            let value = match h % 24 {
                9..=17 => (50_000.0 * (1.0 + 0.03 * rng.normal())).round(),
                8 | 18 => (50_000.0 * (0.5 + 0.5 * rng.uniform())).round(),
                _ => 0.0,
            };
            model.learn(MONDAY + h * HOUR, value);
        }
        let noon = MONDAY + (24 * 28 + 12) * HOUR;
        let forecast = model
            .candidate_forecast(&model.candidates[model.active], &model.factors(noon), noon)
            .expect("a forecast after four weeks");
        let scale = model.scale(forecast, model.untransform(forecast));
        assert!(scale >= 0.02, "scale {scale} for rows with a log-scale noise of 0.03");
        // Nor do they calibrate the tails: an empty hour where no row was due is no error of
        // the model. The 13 empty hours a day stay out once forecast empty (the first nights,
        // not forecast yet, are in).
        let calibrated = model.calibrator.len();
        assert!((11 * 28..15 * 28).contains(&calibrated), "{calibrated} residuals calibrate the tails");
    }

    fn kinds(class: MetricClass, seasonality: Seasonality, step: i64) -> Vec<(Mode, Reach)> {
        let settings = Settings { seasonality, ..Settings::default() };
        SeasonalModel::new(class, &settings, step, MONDAY).candidates.iter().map(|c| (c.mode, c.reach)).collect()
    }

    #[test]
    fn automatic_seasonality_scores_only_the_candidates_that_earn_their_cost() {
        use Mode::*;
        use Reach::*;
        // Hourly counts: the flat long window, the daily short one, the weekly mode's three, the
        // hour-of-week one.
        assert_eq!(
            kinds(MetricClass::Count, Seasonality::Auto, HOUR),
            [(Flat, Long), (Daily, Short), (Weekly, Long), (Weekly, Short), (Weekly, Holt), (HourOfWeek, Short)]
        );
        // Daily counts: the flat short window too.
        assert_eq!(
            kinds(MetricClass::Count, Seasonality::Auto, 24 * HOUR),
            [(Flat, Long), (Flat, Short), (Weekly, Long), (Weekly, Short), (Weekly, Holt)]
        );
        // Hourly continuous metrics: the hour-of-week candidate stands for the weekly mode ...
        assert_eq!(
            kinds(MetricClass::Continuous, Seasonality::Auto, HOUR),
            [(Flat, Long), (Flat, Short), (Daily, Long), (Daily, Short), (HourOfWeek, Short)]
        );
        // ... daily ones keep it (it is their only day-of-week model).
        assert_eq!(
            kinds(MetricClass::Continuous, Seasonality::Auto, 24 * HOUR),
            [(Flat, Long), (Flat, Short), (Weekly, Long), (Weekly, Short)]
        );
        // A seasonality the user chose keeps every reach of its modes.
        assert_eq!(kinds(MetricClass::Count, Seasonality::Daily, HOUR), [(Daily, Long), (Daily, Short), (Daily, Holt)]);
        assert_eq!(
            kinds(MetricClass::Continuous, Seasonality::Weekly, HOUR),
            [(Weekly, Long), (Weekly, Short), (HourOfWeek, Short)]
        );
    }

    #[test]
    fn the_long_half_of_the_scale_is_refreshed_every_64_points() {
        let mut rng = Noise::new(5);
        let mut model = SeasonalModel::new(MetricClass::Count, &Settings::default(), HOUR, MONDAY);
        let mut refreshed = f64::NAN;
        for h in 0..24 * 21 {
            let value = (1_000.0 * (1.0 + 0.05 * rng.normal())).round();
            model.learn(MONDAY + h * HOUR, value);
            let exact = model.active_errors.median().unwrap_or(0.0);
            if model.active_errors.len() < LONG_ERROR_EVERY_POINT || model.trained.is_multiple_of(LONG_ERROR_EVERY) {
                // The exact median of the active errors ...
                assert_eq!(model.long_error, exact, "after {} points", model.trained);
                refreshed = exact;
            } else {
                // ... kept until the next refresh.
                assert_eq!(model.long_error, refreshed, "after {} points", model.trained);
            }
        }
        assert!(refreshed > 0.0);
    }

    #[test]
    fn a_slot_keeps_the_last_values_in_order_and_sorted() {
        let mut state = 13_u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            match (state >> 33) % 6 {
                0 => 0.0,
                1 => -0.0,
                2 => 0.25,
                _ => ((state >> 11) % 1_000) as f64 / 13.0 - 30.0,
            }
        };
        for capacity in [1, 4, 8, 14, 16] {
            let mut slot = Slot::<16>::default();
            let mut queue = VecDeque::new();
            for _ in 0..500 {
                let value = next();
                slot.push(value, capacity);
                queue.push_back(value);
                if queue.len() > capacity {
                    queue.pop_front();
                }
                let mut sorted: Vec<f64> = queue.iter().copied().collect();
                sorted.sort_by(f64::total_cmp);
                assert_eq!(slot.len(), queue.len());
                assert!(slot.iter().map(f64::to_bits).eq(queue.iter().map(|v| v.to_bits())), "capacity {capacity}");
                assert_eq!(slot.back().map(f64::to_bits), queue.back().map(|v| v.to_bits()));
                for (rank, value) in sorted.iter().enumerate() {
                    assert_eq!(slot.sorted_at(rank).to_bits(), value.to_bits());
                }
                let mut copy = sorted.clone();
                assert_eq!(slot.median().map(f64::to_bits), median_in_place(&mut copy).map(f64::to_bits));
            }
        }
    }

    #[test]
    fn a_ring_keeps_the_last_values_like_a_bounded_queue() {
        let mut ring = Ring::new(4);
        let mut queue = VecDeque::new();
        assert_eq!((ring.oldest(), ring.newest()), (None, None));
        for value in 0..11 {
            ring.push(value);
            if queue.len() == 4 {
                queue.pop_front();
            }
            queue.push_back(value);
            assert_eq!(ring.len(), queue.len());
            assert_eq!((ring.oldest(), ring.newest()), (queue.front().copied(), queue.back().copied()));
            assert!(ring.newest_first().eq(queue.iter().rev().copied()), "after {value}");
            if value == 6 {
                ring.clear();
                queue.clear();
            }
        }
    }

    #[test]
    fn learning_a_point_just_judged_learns_what_learning_it_alone_does() {
        // `learn` reuses the factors and the active forecast that `judge` computed for the same
        // point on the same state: a model that is never asked to judge must learn the same.
        let monday = 1_709_510_400;
        let settings = Settings::default();
        for class in [MetricClass::Count, MetricClass::Continuous] {
            let mut judged = SeasonalModel::new(class, &settings, HOUR, monday);
            let mut silent = SeasonalModel::new(class, &settings, HOUR, monday);
            let mut noise = Noise::new(5);
            let value_at = |hour: i64, noise: &mut Noise| {
                let daily = 100.0 + 50.0 * ((hour % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
                (daily + 10.0 * noise.normal()).max(0.0).round()
            };
            for hour in 0..24 * 21 {
                let timestamp = monday + hour * HOUR;
                let value = value_at(hour, &mut noise);
                if hour % 5 != 0 {
                    judged.judge(timestamp, value);
                }
                if hour % 11 == 0 {
                    // A judgement of another point (another slot of the day) is not reused.
                    judged.judge(timestamp + 5 * HOUR, value + 40.0);
                }
                judged.learn(timestamp, value);
                silent.learn(timestamp, value);
            }
            let next = monday + 24 * 21 * HOUR;
            for probe in [0.0, 80.0, 150.0, 400.0] {
                let bits = |model: &SeasonalModel| {
                    model
                        .judge(next, probe)
                        .map(|j| (j.score.to_bits(), j.expected.low.to_bits(), j.expected.high.to_bits(), j.anomaly))
                };
                assert_eq!(bits(&judged), bits(&silent), "{class:?}, probe {probe}");
            }
            assert_eq!(judged.debug_state(), silent.debug_state(), "{class:?}");
        }
    }
}
