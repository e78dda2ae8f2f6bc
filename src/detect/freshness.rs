//! Freshness: learn when a table is updated and predict when the next update is due.
//!
//! Two schedules are recognised from the history of update times: *daily at HH:MM* on a set
//! of weekdays (so a weekday-only load is not late on Saturday), and *every interval* during
//! the hours of the week that ever saw updates (hourly loads that pause at night or over the
//! weekend). Anything else falls back to quantiles of the inter-update gaps. Lateness is
//! always evaluated against a `now` passed in, never against a clock.

use std::cell::Cell;
use std::fmt::Write as _;

use super::Point;
use super::calendar::{self, DAY, HOUR};
use super::format;
use super::seasonal::Judgement;
use super::settings::Settings;
use super::stats::{MAD_TO_SIGMA, median, median_in_place};
use super::verdict::{Confidence, Deviation, Expected};
use serde::{Deserialize, Serialize};

/// Updates needed before a cadence is learned.
pub const MIN_UPDATES: usize = 3;
/// Never call a table late less than this after its due time.
const MIN_TOLERANCE: i64 = 15 * 60;
/// Updates an interval cadence needs before it may call a single missed update late.
const SHORT_HISTORY_UPDATES: usize = 24;
/// Updates closer than this are one update (polls can see a load in progress).
const SAME_UPDATE: i64 = 60;

/// The learned update schedule of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Cadence {
    /// Fewer than [`MIN_UPDATES`] updates: nothing learned.
    Unknown,
    /// Once a day around `time_of_day` (seconds after local midnight) on `weekdays`
    /// (index 0 = Monday).
    Daily {
        /// Typical local time of the update, seconds after midnight.
        time_of_day: i64,
        /// Weekdays on which the table is loaded.
        weekdays: [bool; 7],
        /// How long after the usual time the table counts as late.
        tolerance: i64,
        /// Offset of local time from UTC.
        utc_offset: i64,
    },
    /// Every `interval` seconds during the active hours of the week.
    Interval {
        /// Typical gap between updates.
        interval: i64,
        /// How long past the typical gap the table counts as late.
        tolerance: i64,
        /// Hours of the week (0 = Monday 00:00 local) that ever saw updates; all true when
        /// fewer than two weeks were seen.
        active_hours: Vec<bool>,
        /// Offset of local time from UTC.
        utc_offset: i64,
        /// For an hourly cadence that skips hours now and then: the chance that each hour of
        /// the day passes without an update (empty for any other cadence). A silence is late
        /// once the product of its active hours' chances falls below the rate per slot, so
        /// the quiet evening hours of a daily rhythm weigh little and inactive ones nothing.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skip_chances: Vec<f64>,
        /// `-log10` of the rate per slot at which a run of skipped hours is late.
        #[serde(default)]
        skip_late_score: f64,
        /// How long after its slot an update still counts as on time.
        #[serde(default)]
        on_time: i64,
    },
    /// Updates at random moments, as on a zero-heavy table where some hours bring rows and
    /// most do not: each hour of the week has its own chance of an update, and the table is
    /// late when a silence this long has become improbable.
    Sparse {
        /// Probability of at least one update in each hour of the week (0 = Monday 00:00
        /// local), learned from the history and shrunk towards the hour of the day.
        hourly: Vec<f64>,
        /// How sure the model is of each weekday's rate (Monday first): the shape of the
        /// gamma law of that weekday's factor, [`SPARSE_WEEKDAY_PRIOR`] plus the updated hours
        /// seen on it. A weekday seen little (the first weekend) makes a silence on it less
        /// surprising than its estimated chances say. Empty: the chances are taken as known.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        weekday_shapes: Vec<f64>,
        /// `-log10` of the probability of the silence at which the table is late.
        late_score: f64,
        /// Offset of local time from UTC.
        utc_offset: i64,
    },
}

/// Hours of the day whose update chance lies strictly between these bounds are "random"; a
/// table with [`SPARSE_MIN_RANDOM_HOURS`] of them has a sparse cadence.
const SPARSE_RANDOM_RANGE: (f64, f64) = (0.1, 0.85);
/// Random hours of the day that make a cadence sparse.
const SPARSE_MIN_RANDOM_HOURS: usize = 6;
/// Weight, in observed hours, of the hour-of-day chance in an hour of the week's chance.
const SPARSE_WEEK_PRIOR: f64 = 4.0;
/// Weight, in observed hours, of the overall chance in a weekday's chance of an update.
const SPARSE_WEEKDAY_WEIGHT: f64 = 24.0;
/// Shape of the gamma law of a weekday's rate factor before any updated hour of it is seen.
const SPARSE_WEEKDAY_PRIOR: f64 = 5.0;
/// Longest silence a sparse cadence looks at (two weeks), in hours.
const SPARSE_HORIZON_HOURS: usize = 336;

/// When the next update is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    /// The usual time of the next update.
    pub expected_at: i64,
    /// From this moment on, the table is late.
    pub late_after: i64,
}

/// The freshness judgement at a given `now`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreshnessVerdict {
    /// Whether the table is later than its own cadence allows.
    pub late: bool,
    /// The due time, when a cadence is known.
    pub due: Option<Due>,
    /// Seconds past `expected_at` (negative: not yet due).
    pub overdue: i64,
    /// Calibrated score on the same scale as [`crate::detect::Verdict::score`]: reaches
    /// `-log10(false-alarm rate)` exactly when the table turns late.
    pub score: f64,
    /// One sentence for humans.
    pub explanation: String,
}

fn circular_offset(value: i64, centre: i64) -> i64 {
    // Signed distance in (-12 h, 12 h].
    let d = (value - centre).rem_euclid(DAY);
    if d > DAY / 2 { d - DAY } else { d }
}

impl Cadence {
    /// Learn a cadence from update times (unix seconds, any order).
    pub fn learn(updates: &[i64], settings: &Settings) -> Cadence {
        let mut updates = updates.to_vec();
        updates.sort_unstable();
        updates.dedup_by(|later, earlier| *later - *earlier <= SAME_UPDATE);
        if updates.len() < MIN_UPDATES {
            return Cadence::Unknown;
        }
        let offset = settings.utc_offset;
        let gaps: Vec<f64> = updates.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let typical_gap = median(&gaps).unwrap_or(DAY as f64);

        // Daily schedule: a gap of about a day (longer ones only bridge skipped days) and
        // a consistent time of day. (The gaps are counted only for a typical gap of about a day.)
        let near_daily = || {
            gaps.iter()
                .filter(|g| {
                    let days = (**g / DAY as f64).round();
                    days >= 1.0 && (**g - days * DAY as f64).abs() < 3.0 * HOUR as f64
                })
                .count()
        };
        if (typical_gap - DAY as f64).abs() < 4.0 * HOUR as f64 && near_daily() * 10 >= gaps.len() * 8 {
            let times: Vec<i64> = updates.iter().map(|t| calendar::second_of_day(t + offset)).collect();
            let anchor = times[times.len() - 1];
            let offsets: Vec<f64> = times.iter().map(|t| circular_offset(*t, anchor) as f64).collect();
            let centre = median(&offsets).unwrap_or(0.0);
            let time_of_day = (anchor + centre.round() as i64).rem_euclid(DAY);
            let deviations: Vec<f64> = offsets.iter().map(|o| (o - centre).abs()).collect();
            let (spread, _) = spread_and_worst(deviations.clone());
            let worst = usual_worst(without_passing_runs(&deviations, spread));
            if spread <= 2.0 * HOUR as f64 {
                let (_, weekdays) = activity(&updates, offset, false);
                let tolerance = small_sample_tolerance(spread, worst, updates.len());
                return Cadence::Daily { time_of_day, weekdays, tolerance, utc_offset: offset };
            }
        }

        if let Some((hourly, weekday_shapes)) = sparse_chances(&updates, offset) {
            let late_score = -settings.sensitivity.false_alarm_rate().log10();
            return Cadence::Sparse { hourly, weekday_shapes, late_score, utc_offset: offset };
        }

        let (hours, weekdays) = activity(&updates, offset, typical_gap <= 2.0 * HOUR as f64);
        let active_hours: Vec<bool> = (0..168).map(|h| weekdays[h / 24] && hours[h % 24]).collect();
        // Gaps that end after an inactive stretch are not part of the rhythm. (When none does,
        // they are all the gaps, whose median is the typical gap.)
        let mut active_gaps = Vec::new();
        if active_hours.iter().any(|active| !active) {
            active_gaps.reserve(gaps.len());
            active_gaps.extend(
                updates
                    .windows(2)
                    .filter(|w| !crosses_inactive(w[0], w[1], &active_hours, offset))
                    .map(|w| (w[1] - w[0]) as f64),
            );
        }
        let (gaps, interval) = if active_gaps.len() >= 2 && active_gaps.len() < gaps.len() {
            let interval = median(&active_gaps).unwrap_or(typical_gap);
            (active_gaps, interval)
        } else {
            (gaps, typical_gap)
        };
        let (spread, worst) = spread_and_worst(gaps.iter().map(|g| (g - interval).abs()).collect());
        // Memoryless gaps (zero-heavy tables) have an exponential tail that the spread does
        // not see: allow for it, fitted to the gaps above the typical one.
        // (Only needed when no slots are skipped.)
        let tail = || {
            let (excess_sum, excesses) = gaps
                .iter()
                .filter(|g| **g > interval)
                .fold((0.0, 0usize), |(sum, count), g| (sum + (g - interval), count + 1));
            let mean_excess = excess_sum / excesses.max(1) as f64;
            mean_excess * (0.5f64 / 1e-4).ln() * (1.0 + 4.0 / updates.len() as f64)
        };
        let on_time = small_sample_tolerance(spread, worst, updates.len()).max((interval * 0.25) as i64);
        // Updates that skip a slot now and then (a zero-heavy table whose hour brought no
        // rows): runs of `m` missed slots have a chance of about `q^m`, so the table is late
        // once that is improbable at the sensitivity's rate per slot. This replaces the
        // exponential tail, which mistakes skipped slots for long gaps.
        let mut skip_chances = Vec::new();
        let mut skip_late_score = 0.0;
        let mut slot_on_time = on_time;
        let mut tolerance = match missed_slots(&gaps, interval, updates.len()) {
            Some(missed) => {
                // The on-time spread from each gap's distance to its nearest slot: a skipped
                // slot is not a late update.
                let jitter =
                    gaps.iter().map(|g| (g - (g / interval).round().max(1.0) * interval).abs()).fold(0.0, f64::max);
                let on_time = small_sample_tolerance(spread, jitter, updates.len()).max((interval * 0.25) as i64);
                let per_slot = (settings.sensitivity.false_alarm_rate() * interval / DAY as f64).min(0.5);
                let runs = per_slot.ln() / missed.ln();
                if updates.len() >= SHORT_HISTORY_UPDATES && (HOURLY_SKIPS.0..=HOURLY_SKIPS.1).contains(&interval) {
                    skip_chances = hourly_skip_chances(&updates, &active_hours, offset, missed);
                    skip_late_score = -per_slot.log10();
                    slot_on_time = on_time;
                }
                on_time.max(on_time + ((runs - 1.0) * interval) as i64)
            }
            None => on_time.max(tail() as i64),
        };
        if updates.len() < SHORT_HISTORY_UPDATES {
            // A day of hourly updates does not tell a steady schedule from a busy stretch of
            // a table that is updated at random: until then one missed update is allowed.
            tolerance = tolerance.max(interval.round() as i64);
        }
        Cadence::Interval {
            interval: interval.round() as i64,
            tolerance,
            active_hours,
            utc_offset: offset,
            skip_chances,
            skip_late_score,
            on_time: slot_on_time,
        }
    }

    /// When the update after `last_update` is due.
    pub fn next_due(&self, last_update: i64) -> Option<Due> {
        self.next_due_with(last_update, &self.surprises())
    }

    /// `-log10` of the chance of each hour's silence that a sparse cadence (168 hours of the
    /// week) or skipped slot that an hourly cadence with skip chances (24 hours of the day)
    /// sums; empty for any other cadence. A model computes them once per learned cadence
    /// instead of a logarithm per hour at every poll (the same numbers).
    fn surprises(&self) -> Vec<f64> {
        match self {
            Cadence::Sparse { hourly, .. } => hourly.iter().map(|chance| -(1.0 - chance).max(1e-6).log10()).collect(),
            Cadence::Interval { skip_chances, .. } => {
                skip_chances.iter().map(|chance| -chance.clamp(1e-6, 1.0).log10()).collect()
            }
            Cadence::Unknown | Cadence::Daily { .. } => Vec::new(),
        }
    }

    /// [`next_due`](Self::next_due) with the cadence's [`surprises`](Self::surprises).
    fn next_due_with(&self, last_update: i64, surprises: &[f64]) -> Option<Due> {
        match self {
            Cadence::Unknown => None,
            Cadence::Daily { time_of_day, weekdays, tolerance, utc_offset } => {
                let local_last = last_update + utc_offset;
                let today = calendar::start_of_day(local_last);
                // The next load day whose usual time is comfortably after the last update
                // (an early load still counts for its own day).
                for days_ahead in 0..=8 {
                    let day_start = today + days_ahead * DAY;
                    let expected_local = day_start + time_of_day;
                    let weekday = calendar::weekday(day_start);
                    if weekdays[weekday] && expected_local - local_last > DAY / 2 {
                        let expected_at = expected_local - utc_offset;
                        return Some(Due { expected_at, late_after: expected_at + tolerance });
                    }
                }
                None
            }
            Cadence::Interval {
                interval,
                tolerance,
                active_hours,
                utc_offset,
                skip_chances,
                skip_late_score,
                on_time,
            } => {
                let mut expected_at = last_update + interval;
                let mut paused = false;
                // Skip hours that never see updates: the next one comes at the start of the
                // next active hour.
                for _ in 0..168 {
                    let hour = (calendar::second_of_week(expected_at + utc_offset) / HOUR) as usize % 168;
                    if active_hours[hour] {
                        break;
                    }
                    let local = expected_at + utc_offset;
                    expected_at = local - local.rem_euclid(HOUR) + HOUR - utc_offset;
                    paused = true;
                }
                if paused {
                    // After a pause the first update comes within the first active hour.
                    expected_at += (*interval).min(HOUR);
                }
                let late_after = if skip_chances.is_empty() {
                    // The tolerance runs in active hours only, as the gaps it was learned from
                    // did: expected at the last active hour of the day, a table is late the next
                    // morning, not in the middle of a night without updates.
                    after_active(expected_at, *tolerance, active_hours, *utc_offset)
                } else {
                    let skipped = SkipRun { interval: *interval, active_hours, surprises, offset: *utc_offset };
                    skipped.late_after(last_update, *on_time, *skip_late_score).max(expected_at + on_time)
                };
                Some(Due { expected_at, late_after })
            }
            Cadence::Sparse { late_score, utc_offset, weekday_shapes, .. } => {
                // Usually within the median silence; late once the silence is improbable.
                let silence = Silence { surprises, weekday_shapes, offset: *utc_offset };
                let expected_at = silence.reaching(last_update, std::f64::consts::LOG10_2);
                let late_after = silence.reaching(last_update, *late_score).max(expected_at + 1);
                Some(Due { expected_at, late_after })
            }
        }
    }

    /// Whether the table, last updated at `last_update`, is late at `now`.
    pub fn is_late(&self, last_update: i64, now: i64) -> bool {
        self.next_due(last_update).is_some_and(|due| now > due.late_after)
    }

    /// Judge freshness at `now` with a false-alarm rate `alpha` for the score scale.
    pub fn check(&self, last_update: i64, now: i64, alpha: f64) -> FreshnessVerdict {
        self.check_due(last_update, self.next_due(last_update), now, alpha)
    }

    /// Judge freshness at `now` against a given due time (see [`check`](Self::check)).
    fn check_due(&self, last_update: i64, due: Option<Due>, now: i64, alpha: f64) -> FreshnessVerdict {
        let age = now - last_update;
        let Some(due) = due else {
            return FreshnessVerdict {
                late: false,
                due: None,
                overdue: 0,
                score: 0.0,
                explanation: format!("last update {} ago; cadence not learned yet", format::duration(age)),
            };
        };
        let (late, score, parts) =
            self.judge_due(last_update, due, now, -alpha.log10(), &self.surprises(), self.label());
        FreshnessVerdict { late, due: Some(due), overdue: parts.overdue, score, explanation: parts.write() }
    }

    /// Whether the table is late at `now` against `due`, its score, and the numbers of the
    /// sentence (written only when it is read: a replay judges every poll).
    /// `threshold_score` is `-log10` of the false-alarm rate.
    fn judge_due(
        &self,
        last_update: i64,
        due: Due,
        now: i64,
        threshold_score: f64,
        surprises: &[f64],
        label: Label,
    ) -> (bool, f64, FreshnessParts) {
        let overdue = now - due.expected_at;
        let allowance = (due.late_after - due.expected_at).max(1);
        let score = match self {
            // The improbability of the silence itself (the same scale: it reaches the
            // threshold when the table turns late).
            Cadence::Sparse { late_score, utc_offset, weekday_shapes, .. } => {
                let silence = Silence { surprises, weekday_shapes, offset: *utc_offset };
                silence.score(last_update, now) * threshold_score / late_score
            }
            _ => (threshold_score * overdue as f64 / allowance as f64).max(0.0),
        };
        let late = now > due.late_after;
        let named = if late { due.late_after } else { due.expected_at } + self.utc_offset();
        let parts =
            FreshnessParts { age: now - last_update, late, overdue, named, label, rebaselined: false, note: "" };
        (late, score, parts)
    }

    fn utc_offset(&self) -> i64 {
        match self {
            Cadence::Unknown => 0,
            Cadence::Daily { utc_offset, .. }
            | Cadence::Interval { utc_offset, .. }
            | Cadence::Sparse { utc_offset, .. } => *utc_offset,
        }
    }

    /// "daily at 09:00 on weekdays", "every 1 h 00 min".
    pub fn describe(&self) -> String {
        let mut out = String::new();
        self.write_description(&mut out);
        out
    }

    /// Append [`describe`](Self::describe)'s text.
    fn write_description(&self, out: &mut String) {
        self.label().write(out);
    }

    /// What [`describe`](Self::describe) needs of the cadence.
    fn label(&self) -> Label {
        match self {
            Cadence::Unknown => Label::Unknown,
            Cadence::Daily { time_of_day, weekdays, .. } => {
                Label::Daily { time_of_day: *time_of_day, weekdays: *weekdays }
            }
            Cadence::Interval { interval, .. } => Label::Interval { interval: *interval },
            Cadence::Sparse { hourly, .. } => Label::Sparse { mean: sparse_mean(hourly) },
        }
    }
}

/// The mean hourly chance of an update of a sparse cadence.
fn sparse_mean(hourly: &[f64]) -> f64 {
    hourly.iter().sum::<f64>() / hourly.len().max(1) as f64
}

/// The few numbers of a cadence that its description names, kept by a verdict whose sentence
/// is written later.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Label {
    Unknown,
    Daily {
        time_of_day: i64,
        weekdays: [bool; 7],
    },
    Interval {
        interval: i64,
    },
    /// The mean of the hourly chances of an update.
    Sparse {
        mean: f64,
    },
}

impl Label {
    /// "daily load at 09:00 on weekdays", "updated every 1 h 00 min".
    fn write(&self, out: &mut String) {
        match self {
            Label::Unknown => out.push_str("cadence unknown"),
            Label::Daily { time_of_day, weekdays } => {
                out.push_str("daily load at ");
                calendar::write_clock_time(out, *time_of_day);
                match weekdays {
                    [true, true, true, true, true, true, true] => {}
                    [true, true, true, true, true, false, false] => out.push_str(" on weekdays"),
                    _ => {
                        out.push_str(" on ");
                        for (index, day) in (0..7).filter(|d| weekdays[*d]).enumerate() {
                            if index > 0 {
                                out.push_str(", ");
                            }
                            out.push_str(&calendar::weekday_name(day)[..3]);
                        }
                    }
                }
            }
            Label::Interval { interval } => {
                out.push_str("updated every ");
                format::write_duration(out, *interval);
            }
            Label::Sparse { mean } => {
                let _ = write!(out, "updated at random, in {:.0} % of hours", mean * 100.0);
            }
        }
    }
}

/// The numbers of a freshness verdict's sentence ("last update 3 h 00 min ago, 2 h 00 min
/// late: expected by Tue 09:15 (daily load at 09:00 on weekdays)").
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FreshnessParts {
    /// Seconds since the last update.
    pub age: i64,
    pub late: bool,
    /// Seconds past the expected time.
    pub overdue: i64,
    /// The local instant the sentence names: when the table turned late, or the next
    /// expected update.
    pub named: i64,
    pub label: Label,
    pub rebaselined: bool,
    pub note: &'static str,
}

impl FreshnessParts {
    /// The sentence, as [`Cadence::check`] writes it (with the streaming verdict's tail).
    pub(crate) fn write(&self) -> String {
        let mut explanation = String::with_capacity(112);
        explanation.push_str("last update ");
        format::write_duration(&mut explanation, self.age);
        if self.late {
            explanation.push_str(" ago, ");
            format::write_duration(&mut explanation, self.overdue);
            explanation.push_str(" late: expected by ");
        } else {
            explanation.push_str(" ago, next expected ");
        }
        calendar::write_instant(&mut explanation, self.named);
        explanation.push_str(" (");
        self.label.write(&mut explanation);
        explanation.push(')');
        if self.rebaselined {
            explanation.push_str("; marked expected, re-baselined");
        }
        explanation.push_str(self.note);
        explanation
    }
}

/// The chance of at least one update in each hour of the week, when updates come at random
/// (at least [`SPARSE_MIN_RANDOM_HOURS`] hours of the day see an update on some of their days
/// but not on most); `None` for a scheduled table. Hours are counted between the first and the
/// last update; an hour of the day's chance is `(updated + 2 p) / (observed + 2)` around the
/// overall chance `p`, an hour of the week's is shrunk towards its hour of the day with a
/// weight of [`SPARSE_WEEK_PRIOR`] hours.
fn sparse_chances(updates: &[i64], offset: i64) -> Option<(Vec<f64>, Vec<f64>)> {
    let (first, last) = (*updates.first()? + offset, *updates.last()? + offset);
    let first_hour = first.div_euclid(HOUR);
    let last_hour = last.div_euclid(HOUR);
    if last_hour - first_hour < 2 * 24 {
        return None;
    }
    let mut observed = [0u32; 168];
    let mut updated = [0u32; 168];
    let mut next = 0;
    // Hours of the week follow each other: the first one's, then one more per hour.
    let mut slot = (calendar::second_of_week(first_hour * HOUR) / HOUR) as usize % 168;
    for hour in first_hour..=last_hour {
        if hour > first_hour {
            slot = if slot == 167 { 0 } else { slot + 1 };
        }
        observed[slot] += 1;
        let mut seen = false;
        while next < updates.len() && (updates[next] + offset).div_euclid(HOUR) <= hour {
            seen |= (updates[next] + offset).div_euclid(HOUR) == hour;
            next += 1;
        }
        updated[slot] += u32::from(seen);
    }
    let (total_observed, total_updated) = (observed.iter().sum::<u32>() as f64, updated.iter().sum::<u32>() as f64);
    let overall = (total_updated + 0.5) / (total_observed + 1.0);
    let counts = |hour: usize, days: std::ops::Range<usize>| {
        days.fold((0.0, 0.0), |(n, u), day| (n + observed[day * 24 + hour] as f64, u + updated[day * 24 + hour] as f64))
    };
    let mut by_hour = [0.0; 24];
    let mut random_hours = 0;
    for (hour, chance) in by_hour.iter_mut().enumerate() {
        let (n, u) = counts(hour, 0..7);
        *chance = (u + 2.0 * overall) / (n + 2.0);
        // Judged on Monday to Friday only, so that a weekday-only schedule does not look random.
        let (n, u) = counts(hour, 0..5);
        let weekday_chance = (u + 2.0 * overall) / (n + 2.0);
        if n >= 3.0 && weekday_chance > SPARSE_RANDOM_RANGE.0 && weekday_chance < SPARSE_RANDOM_RANGE.1 {
            random_hours += 1;
        }
    }
    if random_hours < SPARSE_MIN_RANDOM_HOURS {
        return None;
    }
    // Each weekday's rate relative to the week's (a quiet weekend): an hour of the week is
    // shrunk towards its hour of the day times its weekday's factor, as rates (`-ln` of the
    // chance of silence) multiply. Shrunk towards the hour of the day alone, a weekend hour
    // seen a few times kept most of the weekdays' chance, and an ordinary Sunday silence of
    // half a day was improbable.
    let rate = |chance: f64| -(1.0 - chance).ln();
    let overall_rate = rate(overall);
    let by_weekday: [(f64, f64); 7] = std::array::from_fn(|day| {
        (0..24).fold((0.0, 0.0), |(n, u), hour| {
            (n + observed[day * 24 + hour] as f64, u + updated[day * 24 + hour] as f64)
        })
    });
    let weekday_factors = by_weekday.map(|(n, u)| {
        rate((u + SPARSE_WEEKDAY_WEIGHT * overall) / (n + SPARSE_WEEKDAY_WEIGHT)) / overall_rate.max(1e-12)
    });
    let hourly = (0..168)
        .map(|slot| {
            let prior = 1.0 - (-rate(by_hour[slot % 24]) * weekday_factors[slot / 24]).exp();
            (updated[slot] as f64 + SPARSE_WEEK_PRIOR * prior) / (observed[slot] as f64 + SPARSE_WEEK_PRIOR)
        })
        .collect();
    let shapes = by_weekday.iter().map(|(_, u)| SPARSE_WEEKDAY_PRIOR + u).collect();
    Some((hourly, shapes))
}

/// A silence of a sparse cadence: how improbable no update from one moment to another is.
/// Each hour of the week adds its `-log10` chance of silence (its surprise) to its weekday's
/// exposure; a weekday's exposure `x` counts as `a log10(1 + x ln 10 / a)` for its shape `a`
/// (the chance of silence when the weekday's rate is only known up to a gamma factor of mean
/// one and shape `a`), which is `x` for a weekday seen often and much less for one seen
/// little.
struct Silence<'a> {
    /// `-log10` of each hour of the week's chance of silence.
    surprises: &'a [f64],
    /// Each weekday's shape (empty: known rates, the exposures count as they are).
    weekday_shapes: &'a [f64],
    offset: i64,
}

impl Silence<'_> {
    /// What a weekday's exposure (in `log10` units) counts for.
    fn weighed(&self, day: usize, exposure: f64) -> f64 {
        match self.weekday_shapes.get(day) {
            Some(&shape) if shape > 0.0 => {
                shape * (exposure * std::f64::consts::LN_10 / shape).ln_1p() / std::f64::consts::LN_10
            }
            _ => exposure,
        }
    }

    /// The exposure at which a weekday's weighed exposure is `weighed` ([`weighed`](Self::weighed)'s inverse).
    fn exposure_for(&self, day: usize, weighed: f64) -> f64 {
        match self.weekday_shapes.get(day) {
            Some(&shape) if shape > 0.0 => {
                shape * (weighed * std::f64::consts::LN_10 / shape).exp_m1() / std::f64::consts::LN_10
            }
            _ => weighed,
        }
    }

    /// `-log10` of the probability of no update from `from` to `to` (two weeks at most).
    fn score(&self, from: i64, to: i64) -> f64 {
        let mut exposures = [0.0; 7];
        let mut t = from;
        for _ in 0..SPARSE_HORIZON_HOURS {
            if t >= to {
                break;
            }
            let local = t + self.offset;
            let hour_end = local - local.rem_euclid(HOUR) + HOUR - self.offset;
            let piece = (hour_end.min(to) - t) as f64 / HOUR as f64;
            let slot = (calendar::second_of_week(local) / HOUR) as usize % 168;
            exposures[slot / 24] += piece * self.surprises[slot];
            t = hour_end;
        }
        // (Most silences touch a day or two: the others weigh nothing.)
        exposures
            .iter()
            .enumerate()
            .filter(|(_, exposure)| **exposure > 0.0)
            .map(|(day, exposure)| self.weighed(day, *exposure))
            .sum()
    }

    /// The moment after `from` at which the silence's score reaches `target`, or two weeks
    /// after it.
    fn reaching(&self, from: i64, target: f64) -> i64 {
        let mut exposures = [0.0; 7];
        // The weighed exposures of the other days, and the exposure the current day needs to
        // reach the target (set when the day begins: two logarithms a day, not per hour).
        let (mut others, mut needed, mut current) = (0.0, 0.0, usize::MAX);
        let mut t = from;
        for _ in 0..SPARSE_HORIZON_HOURS {
            let local = t + self.offset;
            let hour_end = local - local.rem_euclid(HOUR) + HOUR - self.offset;
            let slot = (calendar::second_of_week(local) / HOUR) as usize % 168;
            let (day, per_hour) = (slot / 24, self.surprises[slot]);
            if day != current {
                if current != usize::MAX {
                    others += self.weighed(current, exposures[current]);
                }
                others -= self.weighed(day, exposures[day]);
                needed = self.exposure_for(day, target - others);
                current = day;
            }
            let added = per_hour * (hour_end - t) as f64 / HOUR as f64;
            if exposures[day] + added >= needed {
                let missing = needed - exposures[day];
                return t + (missing.max(0.0) / per_hour.max(1e-12) * HOUR as f64).round() as i64;
            }
            exposures[day] += added;
            t = hour_end;
        }
        t
    }
}

/// A silence longer than this is an outage, not a schedule's day off: the longest gap of a
/// weekday-only load is Friday to Monday, or Tuesday after a Monday holiday (four days).
const OUTAGE_GAP: i64 = 4 * DAY + 12 * HOUR;

/// Quiet hours in a row needed for a pause (inactive hours); a shorter run is skipped slots.
const MIN_PAUSE_HOURS: usize = 4;

/// Which hours of the day and which weekdays see updates.
///
/// Hours of the day only matter for tables updated about hourly or more often (`frequent`):
/// an hour is active unless it lay inside the observed history on some days and saw updates
/// on at most a quarter of them (a late load or a few days of a shifted schedule do not wake
/// up the night), and only in a run of at least [`MIN_PAUSE_HOURS`] such hours (a quiet hour
/// between busy ones is a skipped slot, not a pause). A weekday is a load day when it saw
/// updates on every occurrence, or on two or more and at least 30 % of them (one stray update,
/// a Friday load late past midnight, does not make Saturday a load day; days inside a silence
/// longer than [`OUTAGE_GAP`] are not occurrences); a weekday not covered yet is presumed a load day from
/// Monday to Friday only (weekday-only loads are common, weekend-only ones are not).
fn activity(updates: &[i64], offset: i64, frequent: bool) -> ([bool; 24], [bool; 7]) {
    let (Some(first), Some(last)) = (updates.first(), updates.last()) else {
        return ([true; 24], [true; 7]);
    };
    let (first, last) = (first + offset, last + offset);
    let first_day = first.div_euclid(DAY);
    let last_day = last.div_euclid(DAY);
    let mut hour_days = [0i64; 24];
    let mut hour_covered = [0i64; 24];
    let mut weekday_days = [0i64; 7];
    let mut occurrences = [0i64; 7];
    // Days wholly inside a silence longer than any weekly schedule skips (a stale source, a
    // table dormant before its loads began) say nothing of which weekdays are load days.
    let silences: Vec<(i64, i64)> =
        updates.windows(2).filter(|w| w[1] - w[0] > OUTAGE_GAP).map(|w| (w[0] + offset, w[1] + offset)).collect();
    for day in first_day..=last_day {
        let (start, end) = (day * DAY, (day + 1) * DAY);
        if silences.iter().any(|&(from, to)| from < start && end <= to) {
            continue;
        }
        occurrences[calendar::weekday(start)] += 1;
    }
    // Every hour of the days between the first and the last lies inside the history; only
    // those two days can be partly outside it.
    let middle_days = (last_day - first_day - 1).max(0);
    for covered in &mut hour_covered {
        *covered += middle_days;
    }
    let mut count_edge_day = |day: i64| {
        for (hour, covered) in hour_covered.iter_mut().enumerate() {
            let slot = day * DAY + hour as i64 * HOUR;
            if slot + HOUR > first && slot <= last {
                *covered += 1;
            }
        }
    };
    count_edge_day(first_day);
    if last_day != first_day {
        count_edge_day(last_day);
    }
    // Updates are sorted: count each (day, hour) and each day once.
    let mut previous_day = i64::MIN;
    let mut previous_hour = (i64::MIN, usize::MAX);
    for t in updates {
        let local = t + offset;
        let day = local.div_euclid(DAY);
        let hour = (calendar::second_of_day(local) / HOUR) as usize;
        if day != previous_day {
            weekday_days[calendar::weekday(local)] += 1;
            previous_day = day;
        }
        if (day, hour) != previous_hour {
            hour_days[hour] += 1;
            previous_hour = (day, hour);
        }
    }
    let mut hours = [true; 24];
    if frequent {
        for hour in 0..24 {
            hours[hour] = hour_covered[hour] == 0 || hour_days[hour] * 4 > hour_covered[hour];
        }
        // A pause is a stretch of quiet hours (a night): a shorter run is skipped slots (the
        // first day of a zero-heavy table, whose quiet hours lie between busy ones).
        if let Some(start) = (0..24).find(|h| hours[*h]) {
            let mut run = 0;
            for step in 1..=24 {
                let hour = (start + step) % 24;
                if !hours[hour] {
                    run += 1;
                    continue;
                }
                if run < MIN_PAUSE_HOURS {
                    for back in 1..=run {
                        hours[(hour + 24 - back) % 24] = true;
                    }
                }
                run = 0;
            }
        }
    }
    let mut weekdays = [true; 7];
    for (weekday, active) in weekdays.iter_mut().enumerate() {
        *active = if occurrences[weekday] == 0 {
            weekday < 5
        } else {
            let (loaded, seen) = (weekday_days[weekday], occurrences[weekday]);
            loaded == seen || loaded >= 2 && loaded * 10 >= seen * 3
        };
    }
    (hours, weekdays)
}

/// Longest run of missed slots that still counts as skipped slots rather than an outage.
const MAX_SKIPPED_SLOTS: f64 = 6.0;
/// Slots of history below which a frequent cadence's chance of a missed slot is kept honest
/// (at least one miss presumed) even when none was seen.
const MISSED_SLOT_EVIDENCE: f64 = 24.0;

/// The chance that a slot of a frequent cadence (every two hours or more often) passes
/// without an update, from gaps of up to [`MAX_SKIPPED_SLOTS`] slots (longer ones are
/// outages, not the rhythm), as `(missed + 1) / (slots + 1)`: `None` for a cadence that
/// rests on enough slots and skipped fewer than two of them, or a slower one.
fn missed_slots(gaps: &[f64], interval: f64, updates: usize) -> Option<f64> {
    if interval <= 0.0 || interval > 2.0 * HOUR as f64 || updates < MIN_UPDATES {
        return None;
    }
    let (mut slots, mut missed) = (0.0, 0.0);
    for gap in gaps {
        let n = (gap / interval).round().max(1.0);
        if n <= MAX_SKIPPED_SLOTS + 1.0 {
            slots += n;
            missed += n - 1.0;
        }
    }
    (missed >= 2.0 || slots < MISSED_SLOT_EVIDENCE).then(|| (missed + 1.0) / (slots + 1.0))
}

/// Intervals (seconds) of the cadences whose skipped slots are judged per hour of the day.
const HOURLY_SKIPS: (f64, f64) = (45.0 * 60.0, 75.0 * 60.0);
/// Weight, in observed hours, of the overall chance of a skipped slot in an hour's chance.
const SKIP_HOUR_PRIOR: f64 = 4.0;

/// The chance that each hour of the day passes without an update, for an hourly cadence:
/// counted over the active hours (see [`activity`]) between consecutive updates, runs of more
/// than [`MAX_SKIPPED_SLOTS`] silent active hours left out as outages, and shrunk towards the
/// overall chance `missed` of a skipped slot with a weight of [`SKIP_HOUR_PRIOR`] hours.
/// Silent hours on both sides of an inactive stretch count: the evening edge of a daily rhythm
/// goes quiet more often than the day.
fn hourly_skip_chances(updates: &[i64], active_hours: &[bool], offset: i64, missed: f64) -> Vec<f64> {
    let mut observed = [0.0f64; 24];
    let mut empty = [0.0f64; 24];
    let week_hour = |hour: i64| (calendar::second_of_week(hour * HOUR) / HOUR) as usize % 168;
    if let Some(first) = updates.first() {
        observed[(first + offset).div_euclid(HOUR).rem_euclid(24) as usize] += 1.0;
    }
    for pair in updates.windows(2) {
        let (from, to) = ((pair[0] + offset).div_euclid(HOUR), (pair[1] + offset).div_euclid(HOUR));
        if to <= from {
            continue;
        }
        observed[to.rem_euclid(24) as usize] += 1.0;
        if to - from > SPARSE_HORIZON_HOURS as i64 {
            continue;
        }
        let silent = (from + 1..to).filter(|hour| active_hours[week_hour(*hour)]).count();
        if silent as f64 <= MAX_SKIPPED_SLOTS {
            for hour in (from + 1..to).filter(|hour| active_hours[week_hour(*hour)]) {
                observed[hour.rem_euclid(24) as usize] += 1.0;
                empty[hour.rem_euclid(24) as usize] += 1.0;
            }
        }
    }
    (0..24).map(|hour| (empty[hour] + SKIP_HOUR_PRIOR * missed) / (observed[hour] + SKIP_HOUR_PRIOR)).collect()
}

/// A run of skipped slots of an hourly cadence, judged by the chances of its hours.
struct SkipRun<'a> {
    interval: i64,
    active_hours: &'a [bool],
    /// `-log10` of each hour of the day's chance of a skipped slot.
    surprises: &'a [f64],
    offset: i64,
}

impl SkipRun<'_> {
    /// The moment after `last_update` at which the run of skipped slots (each judged missed
    /// `on_time` after it) has a probability below `10^-target`; slots in inactive hours do
    /// not count.
    fn late_after(&self, last_update: i64, on_time: i64, target: f64) -> i64 {
        let interval = self.interval.max(1);
        let mut score = 0.0;
        let mut slot = last_update;
        for _ in 0..SPARSE_HORIZON_HOURS * 2 {
            slot += interval;
            let week_hour = (calendar::second_of_week(slot + self.offset) / HOUR) as usize % 168;
            if !self.active_hours[week_hour] {
                continue;
            }
            let per_slot = self.surprises[week_hour % 24];
            if score + per_slot >= target {
                let fraction = (target - score) / per_slot;
                return slot + on_time - ((1.0 - fraction) * interval as f64).round() as i64;
            }
            score += per_slot;
        }
        slot + on_time
    }
}

/// The normal sigma of absolute deviations (their median, scaled) and the largest of them;
/// zeros when there are none. A selection, not a sort: the same numbers.
fn spread_and_worst(mut deviations: Vec<f64>) -> (f64, f64) {
    let worst = if deviations.is_empty() { 0.0 } else { deviations.iter().copied().fold(f64::NEG_INFINITY, f64::max) };
    let spread = median_in_place(&mut deviations).unwrap_or(0.0) * MAD_TO_SIGMA;
    (spread, worst)
}

/// The largest deviation once one in twenty is left out (the largest of all below twenty): the
/// late loads of a daily table's history are incidents, not its jitter; as the worst they
/// widened its tolerance to one and a half times the latest of them for good (a load 4 hours
/// late once, and a tolerance of 6 hours let the next 4-hour delay pass).
fn usual_worst(mut deviations: Vec<f64>) -> f64 {
    if deviations.is_empty() {
        return 0.0;
    }
    let rank = deviations.len() - 1 - deviations.len() / 20;
    let (_, worst, _) = deviations.select_nth_unstable_by(rank, f64::total_cmp);
    *worst
}

/// Off-schedule updates after which the schedule came back: this many on-time updates end a
/// run (see [`without_passing_runs`]).
const BACK_ON_SCHEDULE: usize = 2;

/// The deviations of a daily schedule's updates (in time order) without those of runs that
/// passed: updates off the schedule by more than four spreads (and [`MIN_TOLERANCE`]),
/// followed by at least [`BACK_ON_SCHEDULE`] updates on it. A load three hours late on three
/// days of a timezone mistake, back at its time since, is an incident, not the table's jitter;
/// as the usual worst it widened the tolerance to four and a half hours for good, and every
/// later delay under that passed. A schedule that moved for good (a new load time) never comes
/// back: its deviations stay, widen the tolerance and let the usual time follow.
fn without_passing_runs(deviations: &[f64], spread: f64) -> Vec<f64> {
    let off = |d: f64| d > (4.0 * spread).max(MIN_TOLERANCE as f64);
    let mut kept = Vec::with_capacity(deviations.len());
    let mut index = 0;
    while index < deviations.len() {
        if !off(deviations[index]) {
            kept.push(deviations[index]);
            index += 1;
            continue;
        }
        let end = (index..deviations.len()).find(|&i| !off(deviations[i])).unwrap_or(deviations.len());
        let back = deviations[end..].iter().take_while(|&&d| !off(d)).count();
        if back < BACK_ON_SCHEDULE {
            kept.extend_from_slice(&deviations[index..end]);
        }
        index = end;
    }
    kept
}

/// Late tolerance from the spread of past deviations, widened honestly while few updates
/// were seen.
fn small_sample_tolerance(spread: f64, worst: f64, updates: usize) -> i64 {
    let widen = 1.0 + 4.0 / updates as f64;
    let floor = (MIN_TOLERANCE as f64).max(SMALL_SAMPLE_FLOOR as f64 / updates as f64);
    ((4.0 * spread).max(1.5 * worst) * widen).max(floor) as i64
}

/// Seconds of tolerance a cadence learned from one update would get: the floor of a tolerance
/// learned from `n` updates is this over `n` (at least [`MIN_TOLERANCE`]).
const SMALL_SAMPLE_FLOOR: i64 = 4 * HOUR;

/// The moment `duration` seconds of active hours (of the week, local time) have passed since
/// `from`; inactive hours do not count. (Two weeks at most: a cadence without active hours
/// counts every hour.)
fn after_active(from: i64, duration: i64, active_hours: &[bool], offset: i64) -> i64 {
    if active_hours.iter().all(|active| *active) || !active_hours.iter().any(|active| *active) {
        return from + duration;
    }
    let (mut t, mut remaining) = (from, duration.max(0));
    for _ in 0..SPARSE_HORIZON_HOURS {
        let local = t + offset;
        let hour_end = local - local.rem_euclid(HOUR) + HOUR - offset;
        let hour = (calendar::second_of_week(local) / HOUR) as usize % 168;
        if active_hours[hour] {
            if t + remaining <= hour_end {
                return t + remaining;
            }
            remaining -= hour_end - t;
        }
        t = hour_end;
    }
    t + remaining
}

fn crosses_inactive(from: i64, to: i64, active_hours: &[bool], offset: i64) -> bool {
    let mut t = from + HOUR;
    while t < to {
        let hour = (calendar::second_of_week(t + offset) / HOUR) as usize % 168;
        if !active_hours[hour] {
            return true;
        }
        t += HOUR;
    }
    false
}

/// Streaming freshness model over a series of freshness-lag measurements (seconds since the
/// last update, measured at poll times).
#[derive(Debug, Clone)]
pub struct FreshnessModel {
    updates: Vec<i64>,
    /// Updates since the cadence was last learned.
    since_learn: usize,
    cadence: Cadence,
    /// The mean hourly chance of an update of a sparse cadence (its description names it).
    sparse_mean: f64,
    /// The cadence's [`Cadence::surprises`].
    surprises: Vec<f64>,
    /// The due time judged last, by its last update (valid until the cadence is re-learned).
    due: Cell<Option<(i64, Option<Due>)>>,
    /// The sentence's numbers of the poll judged last (see [`FreshnessParts`]): age, overdue,
    /// named instant, late, and the cadence it was judged by.
    parts: Cell<(i64, i64, i64, bool, Label)>,
    settings: Settings,
    /// `-log10` of the false-alarm rate (the score at which a table turns late).
    threshold_score: f64,
}

/// Updates remembered for cadence learning.
const MAX_UPDATES: usize = 400;

impl FreshnessModel {
    /// A model for the given settings.
    pub fn new(settings: &Settings) -> Self {
        Self {
            updates: Vec::new(),
            since_learn: 0,
            cadence: Cadence::Unknown,
            sparse_mean: 0.0,
            surprises: Vec::new(),
            due: Cell::new(None),
            parts: Cell::new((0, 0, 0, false, Label::Unknown)),
            settings: settings.clone(),
            threshold_score: -settings.sensitivity.false_alarm_rate().log10(),
        }
    }

    fn last_update_of(point: &Point) -> i64 {
        point.timestamp - point.value.max(0.0).round() as i64
    }

    /// Learn from a poll: a new update time re-learns the cadence.
    pub fn learn(&mut self, point: &Point) {
        let update = Self::last_update_of(point);
        if self.updates.last().is_none_or(|last| update - *last > SAME_UPDATE) {
            self.updates.push(update);
            if self.updates.len() > MAX_UPDATES {
                self.updates.remove(0);
            }
            // A cadence moves slowly: re-learn it at every update while history is short, then
            // every n/16 updates (constant amortised cost).
            self.since_learn += 1;
            if self.since_learn >= (self.updates.len() / 16).max(1) {
                self.since_learn = 0;
                self.cadence = Cadence::learn(&self.updates, &self.settings);
                self.surprises = self.cadence.surprises();
                self.due.set(None);
                if let Cadence::Sparse { hourly, .. } = &self.cadence {
                    self.sparse_mean = sparse_mean(hourly);
                }
            }
        }
    }

    /// What the description of the cadence learned so far names ([`Cadence::label`] without
    /// summing a sparse cadence's chances at every poll).
    fn label(&self) -> Label {
        match &self.cadence {
            Cadence::Sparse { .. } => Label::Sparse { mean: self.sparse_mean },
            cadence => cadence.label(),
        }
    }

    /// The cadence learned so far.
    pub fn cadence(&self) -> &Cadence {
        &self.cadence
    }

    pub(crate) fn judge(&self, point: &Point) -> Option<Judgement> {
        let last_update = Self::last_update_of(point);
        // Lateness is judged at every poll; a poll that sees a fresh update is on time, the
        // polls before it will have flagged a late arrival.
        // A load due inside an excluded range (a holiday) was not expected: the next one is.
        let due = match self.due.get() {
            // Polls between two updates see the same last update: the same due time.
            Some((known, due)) if known == last_update => due,
            _ => {
                let mut due = self.cadence.next_due_with(last_update, &self.surprises);
                for _ in 0..64 {
                    match due {
                        Some(d) if self.settings.exclude.iter().any(|range| range.contains(d.expected_at)) => {
                            due = self.cadence.next_due_with(d.expected_at, &self.surprises);
                        }
                        _ => break,
                    }
                }
                self.due.set(Some((last_update, due)));
                due
            }
        };
        let due = due?;
        let (late, score, parts) = self.cadence.judge_due(
            last_update,
            due,
            point.timestamp,
            self.threshold_score,
            &self.surprises,
            self.label(),
        );
        let expected_lag = (due.expected_at - last_update) as f64;
        let allowed_lag = (due.late_after - last_update) as f64;
        let confidence = match self.updates.len() {
            0..=6 => Confidence::Low,
            7..=20 => Confidence::Medium,
            _ => Confidence::High,
        };
        let judgement = Judgement {
            expected: Expected { low: 0.0, high: allowed_lag.max(0.0), forecast: expected_lag.max(0.0) },
            score,
            anomaly: late,
            side: if late { Some(Deviation::Above) } else { None },
            event: None,
            confidence,
            context: String::new(),
            at: point.timestamp,
            relative_change: None,
            early_load: false,
            carried: false,
            mode: None,
        };
        self.parts.set((parts.age, parts.overdue, parts.named, parts.late, parts.label));
        Some(judgement)
    }

    /// The numbers of the sentence of the poll judged last (see [`FreshnessParts`]), written
    /// when the verdict is read.
    pub(crate) fn explain(&self) -> FreshnessParts {
        let (age, overdue, named, late, label) = self.parts.get();
        FreshnessParts { age, late, overdue, named, label, rebaselined: false, note: "" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::calendar::WEEK;

    /// Monday 2024-03-04 00:00 UTC.
    const MONDAY: i64 = 1_709_510_400;

    fn weekday_loads(weeks: i64) -> Vec<i64> {
        let mut updates = Vec::new();
        for week in 0..weeks {
            for day in 0..5 {
                // 09:00 give or take a few minutes.
                let jitter = ((week * 7 + day) % 5 - 2) * 120;
                updates.push(MONDAY + week * WEEK + day * DAY + 9 * HOUR + jitter);
            }
        }
        updates
    }

    #[test]
    fn weekday_only_daily_load_is_not_late_on_saturday_but_late_on_tuesday() {
        let updates = weekday_loads(3);
        let cadence = Cadence::learn(&updates, &Settings::default());
        let Cadence::Daily { weekdays, time_of_day, .. } = &cadence else {
            panic!("expected a daily cadence, got {cadence:?}");
        };
        assert_eq!(*weekdays, [true, true, true, true, true, false, false]);
        assert!((time_of_day - 9 * HOUR).abs() <= 300);

        let week4 = MONDAY + 3 * WEEK;
        let friday_load = week4 + 4 * DAY + 9 * HOUR;
        let saturday_noon = week4 + 5 * DAY + 12 * HOUR;
        assert!(!cadence.is_late(friday_load, saturday_noon));
        let sunday_night = week4 + 6 * DAY + 23 * HOUR;
        assert!(!cadence.is_late(friday_load, sunday_night));

        let monday_load = week4 + 9 * HOUR;
        let tuesday_noon = week4 + DAY + 12 * HOUR;
        assert!(cadence.is_late(monday_load, tuesday_noon));
        let check = cadence.check(monday_load, tuesday_noon, 1e-4);
        assert!(check.late && check.score > 4.0, "{check:?}");
        assert!(check.explanation.contains("3 h 00 min late"), "{}", check.explanation);
        assert!(check.explanation.contains("on weekdays"), "{}", check.explanation);
    }

    #[test]
    fn loads_off_schedule_for_a_few_days_then_back_do_not_widen_the_tolerance_but_a_move_does() {
        // Six weeks of 09:00 loads; in the third week three loads come at 12:00 (a timezone
        // mistake), then the table is back at 09:00.
        let mut updates = weekday_loads(6);
        for load in &mut updates[10..13] {
            *load += 3 * HOUR;
        }
        let cadence = Cadence::learn(&updates, &Settings::default());
        let Cadence::Daily { tolerance, .. } = cadence else { panic!("a daily cadence: {cadence:?}") };
        assert!(tolerance < HOUR, "the passing run is an incident, not jitter: {tolerance}");
        // A load three and a half hours late is late again.
        let week7 = MONDAY + 6 * WEEK;
        assert!(cadence.is_late(week7 + 9 * HOUR, week7 + DAY + 12 * HOUR + 30 * 60));

        // The same three hours for good (the load moved to 12:00): the last loads never come
        // back, so the tolerance follows them and a 12:00 load is not late.
        let mut moved = weekday_loads(6);
        let len = moved.len();
        for load in &mut moved[len - 3..] {
            *load += 3 * HOUR;
        }
        let cadence = Cadence::learn(&moved, &Settings::default());
        let Cadence::Daily { tolerance, .. } = cadence else { panic!("a daily cadence: {cadence:?}") };
        assert!(tolerance > 3 * HOUR, "{tolerance}");
        assert!(!cadence.is_late(week7 + 12 * HOUR, week7 + DAY + 12 * HOUR + 5 * 60));
    }

    #[test]
    fn days_of_a_dormant_stretch_do_not_teach_which_weekdays_are_load_days() {
        // The table's last update before its loads began was a week earlier: the days between
        // say nothing of its schedule, and its first Thursday's load is due as any weekday's.
        let updates =
            vec![MONDAY - WEEK + 20 * HOUR, MONDAY + 20 * HOUR, MONDAY + DAY + 20 * HOUR, MONDAY + 2 * DAY + 20 * HOUR];
        let cadence = Cadence::learn(&updates, &Settings::default());
        let Cadence::Daily { weekdays, .. } = cadence else { panic!("a daily cadence: {cadence:?}") };
        assert_eq!(weekdays, [true, true, true, true, true, false, false]);
        let wednesday_load = MONDAY + 2 * DAY + 20 * HOUR;
        assert!(cadence.is_late(wednesday_load, MONDAY + 3 * DAY + 23 * HOUR));
    }

    #[test]
    fn one_stray_saturday_update_does_not_make_saturday_a_load_day_but_a_daily_table_s_does() {
        // Three weeks of weekday loads at 19:00; one Friday load came past midnight.
        let mut updates = weekday_loads(3).iter().map(|t| t + 10 * HOUR).collect::<Vec<_>>();
        updates[9] += 6 * HOUR;
        let cadence = Cadence::learn(&updates, &Settings::default());
        let Cadence::Daily { weekdays, .. } = cadence else { panic!("a daily cadence: {cadence:?}") };
        assert_eq!(weekdays, [true, true, true, true, true, false, false], "{updates:?}");
        // A daily table's first Saturday load makes Saturday a load day at once.
        let daily: Vec<i64> = (0..6).map(|day| MONDAY + day * DAY + 9 * HOUR).collect();
        let Cadence::Daily { weekdays, .. } = Cadence::learn(&daily, &Settings::default()) else { panic!() };
        assert!(weekdays[5], "{weekdays:?}");
    }

    #[test]
    fn hourly_load_is_late_after_a_missed_hour_but_not_overnight_pause() {
        // Hourly loads 08:00–18:00 on weekdays for three weeks.
        let mut updates = Vec::new();
        for week in 0..3 {
            for day in 0..5 {
                for hour in 8..=18 {
                    updates.push(MONDAY + week * WEEK + day * DAY + hour * HOUR + 300);
                }
            }
        }
        let cadence = Cadence::learn(&updates, &Settings::default());
        assert!(matches!(cadence, Cadence::Interval { interval, .. } if interval == HOUR), "{cadence:?}");
        let week4 = MONDAY + 3 * WEEK;
        // Last load 18:05 on Monday: not late at 23:00, nor at 07:59 on Tuesday.
        let evening = week4 + 18 * HOUR + 300;
        assert!(!cadence.is_late(evening, week4 + 23 * HOUR));
        assert!(!cadence.is_late(evening, week4 + DAY + 7 * HOUR + 59 * 60));
        // Last load 10:05: late by 12:00.
        let morning = week4 + 10 * HOUR + 300;
        assert!(cadence.is_late(morning, week4 + 12 * HOUR));
    }

    /// Updates at random for `days` days from [`MONDAY`]: an hour gets rows with chance
    /// `weekday` (in tenths) Monday to Friday and `weekend` on Saturday and Sunday.
    fn random_hours(days: i64, weekday: u64, weekend: u64) -> Vec<i64> {
        let mut updates = Vec::new();
        let mut state: u64 = 11;
        for hour in 0..days * 24 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let tenths = if (hour / 24) % 7 < 5 { weekday } else { weekend };
            if (state >> 33) % 10 < tenths {
                updates.push(MONDAY + hour * HOUR + 20 * 60);
            }
        }
        updates
    }

    #[test]
    fn a_sparse_table_with_quiet_weekends_is_not_late_on_an_ordinary_weekend_silence() {
        // Rows in 70 % of weekday hours and 15 % of weekend hours for three weeks and five
        // days, the last on Friday 23:20. Twenty silent hours on a Saturday happen about once
        // in thirty weekends; shrunk towards the hour of the day alone (the weekdays' chance),
        // the Saturday's three observed days said one in ten thousand.
        let mut updates = random_hours(26, 7, 1);
        updates.retain(|t| *t < MONDAY + 25 * DAY);
        let friday_night = MONDAY + 25 * DAY + 23 * HOUR + 20 * 60;
        updates.push(friday_night);
        let cadence = Cadence::learn(&updates, &Settings::default());
        assert!(matches!(cadence, Cadence::Sparse { .. }), "{cadence:?}");
        let saturday = cadence.check(friday_night, friday_night + 20 * HOUR, 1e-4);
        assert!(!saturday.late && saturday.score < 3.0, "{saturday:?}");
        // The same silence on a weekday is an outage.
        let tuesday_night = updates.iter().copied().filter(|t| *t < MONDAY + 23 * DAY).max().unwrap();
        let weekday = cadence.check(tuesday_night, tuesday_night + 20 * HOUR, 1e-4);
        assert!(weekday.late && weekday.score > 8.0, "{weekday:?}");
        // A weekend without rows is rare but possible (one in a few thousand); the silence
        // is late by Monday morning.
        assert!(!cadence.is_late(friday_night, friday_night + 2 * DAY));
        assert!(cadence.is_late(friday_night, friday_night + 2 * DAY + 12 * HOUR));
    }

    #[test]
    fn a_weekday_not_seen_yet_is_judged_with_an_honestly_wide_chance() {
        // Five weekdays of rows in half the hours: nothing says yet how busy a Saturday is. A
        // Saturday silence of twenty hours is not an outage, though it would be on a weekday
        // (a chance of 1e-6 at the weekdays' rate).
        let updates = random_hours(5, 5, 5);
        let friday_night = *updates.last().unwrap();
        assert!(friday_night >= MONDAY + 4 * DAY + 22 * HOUR, "{friday_night}");
        let cadence = Cadence::learn(&updates, &Settings::default());
        assert!(matches!(cadence, Cadence::Sparse { .. }), "{cadence:?}");
        let saturday = cadence.check(friday_night, friday_night + 20 * HOUR, 1e-4);
        assert!(!saturday.late, "{saturday:?}");
        let wednesday = updates.iter().copied().filter(|t| *t < MONDAY + 2 * DAY + 12 * HOUR).max().unwrap();
        assert!(cadence.is_late(wednesday, wednesday + 20 * HOUR));
        // A silence of days still is.
        assert!(cadence.is_late(friday_night, friday_night + 3 * DAY));
    }

    #[test]
    fn a_sparse_silence_reaches_its_target_where_its_score_says() {
        // `reaching` inverts `score`, across weekdays seen well and little.
        let surprises: Vec<f64> =
            (0..168).map(|slot| 0.05 + (slot % 24) as f64 * 0.01 + (slot / 24) as f64 * 0.02).collect();
        let weekday_shapes = vec![40.0, 30.0, 5.0, 60.0, 8.0, 5.0, 5.0];
        for offset in [0, 3600, -5 * 3600] {
            let silence = Silence { surprises: &surprises, weekday_shapes: &weekday_shapes, offset };
            for from in [MONDAY + 1234, MONDAY + 3 * DAY + 17 * HOUR, MONDAY + 5 * DAY + 59] {
                for target in [0.3, 1.0, 2.5, 4.0, 6.0] {
                    let at = silence.reaching(from, target);
                    assert!(at > from);
                    let score = silence.score(from, at);
                    assert!((score - target).abs() < 1e-3, "{offset} {from} {target}: {score} at {at}");
                }
            }
        }
        // Without shapes the exposures add up as they are.
        let known = Silence { surprises: &surprises, weekday_shapes: &[], offset: 0 };
        let expected: f64 = (0..10).map(|hour| surprises[hour]).sum();
        assert!((known.score(MONDAY, MONDAY + 10 * HOUR) - expected).abs() < 1e-9);
    }

    #[test]
    fn three_punctual_daily_loads_do_not_make_a_tolerance_of_minutes() {
        // Three loads at 19:42 give or take a minute say little of the load's jitter: the
        // fourth, 47 minutes late, is not an incident yet (the floor of a tolerance from n
        // updates is 4 h / n: 80 minutes here); three hours late is.
        let updates: Vec<i64> = [0, 60, -60]
            .iter()
            .enumerate()
            .map(|(day, s)| MONDAY + day as i64 * DAY + 19 * HOUR + 42 * 60 + s)
            .collect();
        let cadence = Cadence::learn(&updates, &Settings::default());
        let Cadence::Daily { tolerance, .. } = &cadence else {
            panic!("expected a daily cadence, got {cadence:?}");
        };
        assert_eq!(*tolerance, 80 * 60);
        let last = updates[2];
        assert!(!cadence.is_late(last, last + DAY + 47 * 60));
        assert!(cadence.is_late(last, last + DAY + 3 * HOUR));
        // With more history the floor gives way to the learned spread (15 minutes at least).
        let month: Vec<i64> =
            (0..30).map(|day| MONDAY + day * DAY + 19 * HOUR + 42 * 60 + (day % 3 - 1) * 60).collect();
        let Cadence::Daily { tolerance, .. } = Cadence::learn(&month, &Settings::default()) else {
            panic!("expected a daily cadence");
        };
        assert_eq!(tolerance, MIN_TOLERANCE);
    }

    #[test]
    fn the_tolerance_of_a_daytime_hourly_cadence_runs_in_its_active_hours() {
        // Updates about every hour from 08:00 to 17:00, with a few skipped hours, for two days
        // (a new table): the night is inactive, and the tolerance learned from the day's gaps
        // is hours long. Due at 17:xx, the table is not late at 04:00 in the night but only
        // once that tolerance has run in the next day's active hours.
        let mut updates = vec![MONDAY - DAY + 17 * HOUR + 600];
        for day in 0..2 {
            // (The last update at 16:xx: the next is due at 17:xx, an active hour.)
            for hour in 8..(if day == 1 { 17 } else { 18 }) {
                if (day * 10 + hour) % 4 != 1 {
                    updates.push(MONDAY + day * DAY + hour * HOUR + 60 * ((hour * 7 + day * 3) % 20));
                }
            }
        }
        let cadence = Cadence::learn(&updates, &Settings::default());
        let Cadence::Interval { active_hours, tolerance, .. } = &cadence else {
            panic!("expected an interval cadence, got {cadence:?}");
        };
        assert!(!active_hours[2] && !active_hours[22] && active_hours[12], "{active_hours:?}");
        assert!(*tolerance > 2 * HOUR, "{tolerance}");
        let last = *updates.last().unwrap();
        let due = cadence.next_due(last).unwrap();
        let late_hour = (due.late_after % DAY) / HOUR;
        assert!((8..18).contains(&late_hour), "late at {late_hour}:00 ({due:?})");
        // Counted in wall time, its hours ended in the night to Wednesday; in active hours, the
        // next day (Tuesday's last, Wednesday's ten, then Thursday's first).
        assert!(!cadence.is_late(last, MONDAY + 2 * DAY + 7 * HOUR), "{due:?}");
        assert!(!cadence.is_late(last, MONDAY + 2 * DAY + 12 * HOUR), "{due:?}");
        assert!(cadence.is_late(last, MONDAY + 3 * DAY + 12 * HOUR), "{due:?}");
    }

    #[test]
    fn a_zero_heavy_table_is_late_only_after_an_improbable_silence() {
        // Rows arrive in about a third of the hours (deterministic pseudo-random pattern) for
        // three weeks: gaps of one to several hours are normal, a day of silence is not.
        let mut updates = Vec::new();
        let mut state: u64 = 7;
        for hour in 0..21 * 24 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            if (state >> 33).is_multiple_of(3) {
                updates.push(MONDAY + hour * HOUR + 20 * 60);
            }
        }
        let cadence = Cadence::learn(&updates, &Settings::default());
        let Cadence::Sparse { hourly, .. } = &cadence else {
            panic!("expected a sparse cadence, got {cadence:?}");
        };
        let mean = hourly.iter().sum::<f64>() / hourly.len() as f64;
        assert!((0.25..0.42).contains(&mean), "{mean}");
        let last = MONDAY + 21 * 24 * HOUR + 20 * 60;
        assert!(!cadence.is_late(last, last + 6 * HOUR));
        assert!(cadence.is_late(last, last + 36 * HOUR));
        let check = cadence.check(last, last + 36 * HOUR, 1e-4);
        assert!(check.late && check.score > 4.0, "{check:?}");
        assert!(check.explanation.contains("updated at random"), "{}", check.explanation);
        // The score is the improbability of the silence: it grows with every silent hour.
        let earlier = cadence.check(last, last + 12 * HOUR, 1e-4);
        assert!(earlier.score > 1.0 && earlier.score < check.score, "{earlier:?}");
    }

    #[test]
    fn a_short_hourly_history_allows_one_missed_update_then_not() {
        let loads = |hours: i64| (0..hours).map(|h| MONDAY + h * HOUR + 600).collect::<Vec<_>>();
        // Ten hourly updates: a busy stretch of a random table looks the same, and ten slots
        // cannot tell how often one is skipped (a skip is presumed): a few misses are allowed.
        let short = Cadence::learn(&loads(10), &Settings::default());
        let last = MONDAY + 9 * HOUR + 600;
        assert!(!short.is_late(last, last + 3 * HOUR), "{short:?}");
        assert!(short.is_late(last, last + 7 * HOUR), "{short:?}");
        // Two days of them: one missed hour is late.
        let long = Cadence::learn(&loads(48), &Settings::default());
        let last = MONDAY + 47 * HOUR + 600;
        assert!(long.is_late(last, last + HOUR + 30 * 60), "{long:?}");
    }

    #[test]
    fn an_hourly_table_that_skips_hours_now_and_then_is_late_only_after_an_improbable_run() {
        // Ten days of hourly updates, every 23rd hour skipped (and one run of two): a skip is
        // about a 5 % chance per hour, so three silent hours are normal, six are not.
        let updates: Vec<i64> =
            (0..240).filter(|h| h % 23 != 3 && *h != 100 && *h != 101).map(|h| MONDAY + h * HOUR + 600).collect();
        let cadence = Cadence::learn(&updates, &Settings::default());
        assert!(matches!(cadence, Cadence::Interval { .. }), "{cadence:?}");
        let last = MONDAY + 239 * HOUR + 600;
        assert!(!cadence.is_late(last, last + 3 * HOUR), "{cadence:?}");
        assert!(cadence.is_late(last, last + 6 * HOUR), "{cadence:?}");
        // A strictly hourly table of the same length is late after one missed update.
        let strict =
            Cadence::learn(&(0..240).map(|h| MONDAY + h * HOUR + 600).collect::<Vec<_>>(), &Settings::default());
        assert!(strict.is_late(last, last + 2 * HOUR), "{strict:?}");
    }

    #[test]
    fn a_quiet_evening_of_an_hourly_table_that_skips_hours_is_not_late_but_a_quiet_day_is() {
        // Three weeks of updates from 08:00 to 17:00, an hour skipped now and then, and in
        // the evening hours 18:00–20:00 on about half of the days; nothing at night.
        let mut updates = Vec::new();
        for day in 0..21 {
            for hour in 8..=20 {
                let skipped = if hour <= 17 { (day * 7 + hour) % 19 == 0 } else { (day + hour) % 2 == 0 };
                if !skipped {
                    updates.push(MONDAY + day * DAY + hour * HOUR + 300);
                }
            }
        }
        let cadence = Cadence::learn(&updates, &Settings::default());
        let Cadence::Interval { skip_chances, .. } = &cadence else {
            panic!("expected an interval cadence, got {cadence:?}");
        };
        assert_eq!(skip_chances.len(), 24, "{cadence:?}");
        assert!(skip_chances[19] > 3.0 * skip_chances[12], "{skip_chances:?}");
        let day22 = MONDAY + 21 * DAY;
        // Last update 17:05: an evening without rows is normal, so is the night after it.
        let evening = day22 + 17 * HOUR + 300;
        assert!(!cadence.is_late(evening, day22 + 23 * HOUR + 30 * 60), "{cadence:?}");
        assert!(!cadence.is_late(evening, day22 + DAY + 8 * HOUR + 30 * 60), "{cadence:?}");
        // Last update 08:05: five silent hours of the day are not.
        let morning = day22 + 8 * HOUR + 300;
        assert!(cadence.is_late(morning, day22 + 14 * HOUR), "{cadence:?}");
    }

    #[test]
    fn too_few_updates_learn_nothing() {
        let cadence = Cadence::learn(&[MONDAY, MONDAY + DAY], &Settings::default());
        assert_eq!(cadence, Cadence::Unknown);
        assert!(!cadence.is_late(MONDAY + DAY, MONDAY + 30 * DAY));
    }
}
