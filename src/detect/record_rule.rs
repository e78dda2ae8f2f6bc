//! The record rule of counts: a hard rule beside the learned model. A count far above the
//! records of the last eight weeks is an anomaly whatever the learned range says:
//!
//! - a sub-daily count at least [`FACTOR`] times the record of its hour of the day and the
//!   hours on either side (each seen on [`MIN_DAYS`] days or more), and at least [`OVER_ANY`]
//!   times the record of any hour;
//! - a daily count at least [`FACTOR`] times the record day, once [`DAILY_MIN_DAYS`] were seen;
//!
//! the record at least the cold-start rule's 10 rows (count noise makes fourfold swings of a
//! few rows), and the verdict scored as the cold-start rule's (a one-in-a-million point).
//!
//! A learned range can be honestly wide (an hourly table's first two weeks, while its weekly
//! rhythm is unknown: a tenfold 23:00 on the second Tuesday sat inside "1 140–174 000") or made
//! absurd by a calibration that absorbed days of misfits (a business-hours table's three-day
//! timezone mistake took its threshold from 5.6 to 72 standardised residuals, and a tenfold
//! hour two weeks later was inside "11.8–834 000 000 000"; a noisy daily table whose level
//! quadrupled over four days without being recognised as a shift judged a tenfold day inside
//! "83–8 080"). Neither a rhythm of the day (each hour is compared with itself), a weekend
//! (lower), a catch-up day (at most twice), an early or a duplicate load (twice) nor growth (the
//! records grow with it) makes a count four times its record; a table whose big loads land at
//! random hours has had loads that size before (the record of any hour). Rises only: a record
//! says nothing of a drop.

use std::collections::VecDeque;

use super::calendar::{DAY, HOUR, second_of_day};
use super::format::write_number;
use super::streaming::{COLD_RULE_MIN_ROWS as MIN_ROWS, COLD_RULE_SCORE as SCORE};
use super::verdict::{Confidence, Deviation, Expected, Status, Verdict};

/// A count at least this many times its record ...
pub(crate) const FACTOR: f64 = 4.0;
/// ... (a sub-daily count: the record of its hour and the hours on either side, each seen on at
/// least this many days) ...
const MIN_DAYS: u16 = 2;
/// ... (a daily count: the record day, once this many days were seen) ...
const DAILY_MIN_DAYS: u16 = 7;
/// ... and a sub-daily count at least this many times the record of any hour.
const OVER_ANY: f64 = 2.0;
/// Days the records are kept for (eight weeks, or the training window if shorter).
pub(crate) const DAYS: usize = 56;

/// The records of a count: the largest count of each local hour of the day over the last days.
#[derive(Debug, Clone)]
pub(crate) struct Records {
    /// Per local day with points (oldest first): the day and the largest count of each hour
    /// (NaN: no point in that hour), in single precision (eight weeks of them are 5 kB a series;
    /// a record needs no more than seven digits).
    days: VecDeque<(i64, [f32; 24])>,
    capacity: usize,
    /// Over the days kept: the record of each hour and the days it was seen on.
    hours: [(f64, u16); 24],
    /// The record of any hour over the days kept.
    largest: f64,
    /// A daily series (one point a day): compared with the record day.
    daily: bool,
}

impl Records {
    /// Records over the last `days` days (at least two) of a sub-daily (`daily` false) or a
    /// daily series.
    pub(crate) fn new(days: usize, daily: bool) -> Self {
        let capacity = days.max(2);
        Self { days: VecDeque::with_capacity(capacity + 1), capacity, hours: [(0.0, 0); 24], largest: 0.0, daily }
    }

    /// Learn a count at local time `local`.
    pub(crate) fn learn(&mut self, local: i64, value: f64) {
        if !value.is_finite() {
            return;
        }
        // The records hold what the days hold.
        let value = value as f32;
        let day = local.div_euclid(DAY);
        let hour = (second_of_day(local) / HOUR) as usize;
        if self.days.back().is_none_or(|(last, _)| *last != day) {
            self.days.push_back((day, [f32::NAN; 24]));
            let oldest = day - self.capacity as i64 + 1;
            while self.days.front().is_some_and(|(first, _)| *first < oldest) {
                if let Some((_, evicted)) = self.days.pop_front() {
                    self.forget(&evicted);
                }
            }
        }
        let Some((_, today)) = self.days.back_mut() else {
            return;
        };
        if today[hour].is_nan() {
            today[hour] = value;
            self.hours[hour].1 = self.hours[hour].1.saturating_add(1);
        } else {
            today[hour] = today[hour].max(value);
        }
        self.hours[hour].0 = self.hours[hour].0.max(f64::from(value));
        self.largest = self.largest.max(f64::from(value));
    }

    /// Take an evicted day out of the records: an hour whose record it held is recomputed from
    /// the days kept (most evictions change no record).
    fn forget(&mut self, evicted: &[f32; 24]) {
        let mut largest_left = false;
        for (hour, &value) in evicted.iter().enumerate() {
            if value.is_nan() {
                continue;
            }
            let value = f64::from(value);
            let record = &mut self.hours[hour];
            record.1 = record.1.saturating_sub(1);
            if value >= record.0 {
                largest_left |= value >= self.largest;
                record.0 =
                    self.days.iter().map(|(_, day)| f64::from(day[hour])).filter(|v| !v.is_nan()).fold(0.0, f64::max);
            }
        }
        if largest_left {
            self.largest = self.hours.iter().map(|hour| hour.0).fold(0.0, f64::max);
        }
    }

    /// The record a count at local time `local` is compared with, once seen often enough: the
    /// record day of a daily series; the record of the hour of `local` and of the hours on
    /// either side of a sub-daily one.
    fn record_at(&self, local: i64) -> Option<f64> {
        if self.daily {
            return (self.days.len() >= usize::from(DAILY_MIN_DAYS)).then_some(self.largest);
        }
        let hour = (second_of_day(local) / HOUR) as usize;
        [23, 0, 1].iter().try_fold(0.0_f64, |largest, offset| {
            let (value, days) = self.hours[(hour + offset) % 24];
            (days >= MIN_DAYS).then_some(largest.max(value))
        })
    }

    /// The rule's verdict on a count of `value` at `timestamp` (local time `local`), if it
    /// flags it; `noun` names the rows in the sentence, `history` is the points learned so far.
    pub(crate) fn judge(&self, timestamp: i64, local: i64, value: f64, noun: &str, history: usize) -> Option<Verdict> {
        // (Nearly every count is below twice the record of any hour: it returns here.)
        let over_any = if self.daily { 0.0 } else { OVER_ANY * self.largest };
        if value < over_any || value < FACTOR * MIN_ROWS {
            return None;
        }
        let record = self.record_at(local)?;
        if record < MIN_ROWS || value < FACTOR * record {
            return None;
        }
        Some(self.verdict(timestamp, value, record, over_any, noun, history))
    }

    /// The verdict of a count the rule flags.
    #[cold]
    fn verdict(&self, timestamp: i64, value: f64, record: f64, over_any: f64, noun: &str, history: usize) -> Verdict {
        let days = self.days.back().zip(self.days.front()).map_or(1, |(last, first)| last.0 - first.0 + 1);
        let mut text = String::new();
        write_number(&mut text, value);
        if !noun.is_empty() {
            text.push(' ');
            text.push_str(noun);
        }
        if self.daily {
            text.push_str(", at least four times the largest day of the last ");
            write_number(&mut text, days as f64);
            text.push_str(" days (");
            write_number(&mut text, record);
        } else {
            text.push_str(
                ", at least four times the largest of this hour of the day and the hours beside it over the last ",
            );
            write_number(&mut text, days as f64);
            text.push_str(" days (");
            write_number(&mut text, record);
            text.push_str(") and twice the largest of any hour (");
            write_number(&mut text, self.largest);
        }
        text.push_str("): whatever the learned range, this hard rule flags it");
        Verdict {
            timestamp,
            value,
            status: Status::Learned,
            expected: Some(Expected { low: 0.0, high: (FACTOR * record).max(over_any), forecast: record }),
            score: SCORE,
            anomaly: true,
            alert: false,
            direction: Some(Deviation::Above),
            event: None,
            confidence: Confidence::Low,
            history_points: history,
            explanation: text.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Local time of `hour` on day `day`.
    fn at(day: i64, hour: i64) -> i64 {
        day * DAY + hour * HOUR
    }

    #[test]
    fn an_hour_four_times_its_record_and_twice_any_other_is_flagged_once_its_hours_were_seen_twice() {
        let mut records = Records::new(DAYS, false);
        for day in 0..2 {
            for hour in 0..24 {
                records.learn(at(day, hour), if hour == 14 { 300.0 } else { 100.0 });
            }
        }
        // 22:00 has had at most 100 (its neighbours too), the busiest hour 300.
        assert!(records.judge(at(2, 22), at(2, 22), 399.0, "rows", 48).is_none());
        assert!(records.judge(at(2, 22), at(2, 22), 599.0, "rows", 48).is_none(), "under twice the busiest hour");
        let verdict = records.judge(at(2, 22), at(2, 22), 600.0, "rows", 48).expect("flagged");
        assert!(verdict.anomaly && verdict.direction == Some(Deviation::Above));
        assert!(verdict.explanation.starts_with("600 rows, at least four times"), "{}", verdict.explanation);
        // 14:00 itself had 300: four times that is needed.
        assert!(records.judge(at(2, 14), at(2, 14), 1_100.0, "rows", 48).is_none());
        // An hour seen on one day only says too little.
        let mut young = Records::new(DAYS, false);
        for hour in 0..24 {
            young.learn(at(0, hour), 100.0);
        }
        assert!(young.judge(at(1, 5), at(1, 5), 10_000.0, "rows", 24).is_none());
        // A few rows: count noise.
        let mut small = Records::new(DAYS, false);
        for day in 0..3 {
            for hour in 0..24 {
                small.learn(at(day, hour), 2.0);
            }
        }
        assert!(small.judge(at(3, 5), at(3, 5), 40.0, "rows", 72).is_none());
    }

    #[test]
    fn a_day_four_times_the_record_day_is_flagged_after_a_week() {
        let mut records = Records::new(DAYS, true);
        for day in 0..6 {
            records.learn(at(day, 0), if day == 3 { 1_500.0 } else { 1_000.0 });
        }
        assert!(records.judge(at(6, 0), at(6, 0), 10_000.0, "rows", 6).is_none(), "six days say too little");
        records.learn(at(6, 0), 1_000.0);
        assert!(records.judge(at(7, 0), at(7, 0), 5_999.0, "rows", 7).is_none());
        let verdict = records.judge(at(7, 0), at(7, 0), 6_000.0, "rows", 7).expect("flagged");
        let expected = "four times the largest day of the last 7 days (1\u{202f}500)";
        assert!(verdict.explanation.contains(expected), "{}", verdict.explanation);
    }

    #[test]
    fn records_older_than_the_window_are_forgotten() {
        let mut records = Records::new(7, false);
        for hour in 0..24 {
            records.learn(at(0, hour), 5_000.0);
        }
        for day in 1..10 {
            for hour in 0..24 {
                records.learn(at(day, hour), 100.0);
            }
        }
        // Day 0's 5 000 rows left the seven days kept.
        assert_eq!(records.largest, 100.0);
        assert!(records.judge(at(10, 3), at(10, 3), 450.0, "", 240).is_some());
        assert!(records.hours.iter().all(|&(_, days)| days == 7), "{:?}", records.hours);
    }
}
