//! The hour rule of sub-daily counts: a hard rule beside the learned model. A count at least
//! [`FACTOR`] times the largest that its hour of the day and the hours on either side have had
//! over the last eight weeks, and at least [`OVER_ANY`] times the largest of any hour, is an
//! anomaly whatever the learned range says.
//!
//! A learned range can be honestly wide (an hourly table's first two weeks, while its weekly
//! rhythm is unknown: a tenfold 23:00 on the second Tuesday sat inside "1 140–174 000") or made
//! wide by a calibration that absorbed days of misfits (a business-hours table's three-day
//! timezone mistake took its threshold from 5.6 to 72 standardised residuals, and a tenfold
//! hour two weeks later scored 2). Neither a rhythm of the day (each hour is compared with
//! itself), a weekend (lower), a catch-up day (at most twice), an early or a duplicate load
//! (twice) nor growth (the largest of any hour grows with it) makes an hour four times the
//! largest it has had and twice the largest of any hour; a table whose big loads land at random
//! hours has had loads that size before. Rises only.

use std::collections::VecDeque;

use super::format::write_number;
use super::verdict::{Confidence, Deviation, Expected, Status, Verdict};

/// A count at least this many times the largest of its hour and the hours on either side ...
pub(crate) const FACTOR: f64 = 4.0;
/// ... each of the three seen on at least this many days ...
const MIN_DAYS: u16 = 2;
/// ... the largest at least this many rows (count noise makes fourfold swings of a few rows) ...
const MIN_ROWS: f64 = 10.0;
/// ... and at least this many times the largest count of any hour.
const OVER_ANY: f64 = 2.0;
/// Days the maxima are kept for (eight weeks, or the training window if shorter).
pub(crate) const DAYS: usize = 56;
/// The score of the rule's verdicts (the cold-start rule's: a one-in-a-million point).
const SCORE: f64 = 6.0;

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// The largest count of each local hour of the day over the last days.
#[derive(Debug, Clone)]
pub(crate) struct HourMaxima {
    /// Per local day with points (oldest first): the day and the largest count of each hour
    /// (NaN: no point in that hour).
    days: VecDeque<(i64, [f64; 24])>,
    capacity: usize,
    /// Over the days kept: the largest count of each hour and the days it was seen on.
    hours: [(f64, u16); 24],
    /// The largest count of any hour over the days kept.
    largest: f64,
}

impl HourMaxima {
    /// Maxima over the last `days` days (at least two).
    pub(crate) fn new(days: usize) -> Self {
        let capacity = days.max(2);
        Self { days: VecDeque::with_capacity(capacity + 1), capacity, hours: [(0.0, 0); 24], largest: 0.0 }
    }

    /// Learn a count at local time `local`.
    pub(crate) fn learn(&mut self, local: i64, value: f64) {
        if !value.is_finite() {
            return;
        }
        let day = local.div_euclid(DAY);
        let hour = (local.rem_euclid(DAY) / HOUR) as usize;
        if self.days.back().is_none_or(|(last, _)| *last != day) {
            self.days.push_back((day, [f64::NAN; 24]));
            let oldest = day - self.capacity as i64 + 1;
            let mut evicted = false;
            while self.days.front().is_some_and(|(first, _)| *first < oldest) {
                self.days.pop_front();
                evicted = true;
            }
            if evicted {
                self.recompute();
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
        self.hours[hour].0 = self.hours[hour].0.max(value);
        self.largest = self.largest.max(value);
    }

    fn recompute(&mut self) {
        self.hours = [(0.0, 0); 24];
        self.largest = 0.0;
        for (_, day) in &self.days {
            for (hour, &value) in day.iter().enumerate() {
                if !value.is_nan() {
                    self.hours[hour].0 = self.hours[hour].0.max(value);
                    self.hours[hour].1 += 1;
                    self.largest = self.largest.max(value);
                }
            }
        }
    }

    /// The largest count of the hour of `local` and of the hours on either side, once each was
    /// seen on [`MIN_DAYS`] days.
    fn largest_around(&self, local: i64) -> Option<f64> {
        let hour = (local.rem_euclid(DAY) / HOUR) as usize;
        [23, 0, 1].iter().try_fold(0.0_f64, |largest, offset| {
            let (value, days) = self.hours[(hour + offset) % 24];
            (days >= MIN_DAYS).then_some(largest.max(value))
        })
    }

    /// The rule's verdict on a count of `value` at local time `local`, if it flags it; `noun`
    /// names the rows in the sentence, `history` is the points learned so far.
    pub(crate) fn judge(&self, timestamp: i64, local: i64, value: f64, noun: &str, history: usize) -> Option<Verdict> {
        let around = self.largest_around(local)?;
        if around < MIN_ROWS || value < FACTOR * around || value < OVER_ANY * self.largest {
            return None;
        }
        let days = self.days.back().zip(self.days.front()).map_or(1, |(last, first)| last.0 - first.0 + 1);
        let mut text = String::new();
        write_number(&mut text, value);
        if !noun.is_empty() {
            text.push(' ');
            text.push_str(noun);
        }
        text.push_str(
            ", at least four times the largest of this hour of the day and the hours beside it over the last ",
        );
        write_number(&mut text, days as f64);
        text.push_str(" days (");
        write_number(&mut text, around);
        text.push_str(") and twice the largest of any hour (");
        write_number(&mut text, self.largest);
        text.push_str("): whatever the learned range, this hard rule flags it");
        Some(Verdict {
            timestamp,
            value,
            status: Status::Learned,
            expected: Some(Expected {
                low: 0.0,
                high: (FACTOR * around).max(OVER_ANY * self.largest),
                forecast: around,
            }),
            score: SCORE,
            anomaly: true,
            alert: false,
            direction: Some(Deviation::Above),
            event: None,
            confidence: Confidence::Low,
            history_points: history,
            explanation: text.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Local noon of day `day`, hour `hour`.
    fn at(day: i64, hour: i64) -> i64 {
        day * DAY + hour * HOUR
    }

    #[test]
    fn an_hour_four_times_its_largest_and_twice_any_other_is_flagged_once_its_hours_were_seen_twice() {
        let mut maxima = HourMaxima::new(DAYS);
        for day in 0..2 {
            for hour in 0..24 {
                maxima.learn(at(day, hour), if hour == 14 { 300.0 } else { 100.0 });
            }
        }
        // 22:00 has had at most 100 (its neighbours too), the busiest hour 300.
        assert!(maxima.judge(at(2, 22), at(2, 22), 399.0, "rows", 48).is_none());
        assert!(maxima.judge(at(2, 22), at(2, 22), 599.0, "rows", 48).is_none(), "under twice the busiest hour");
        let verdict = maxima.judge(at(2, 22), at(2, 22), 600.0, "rows", 48).expect("flagged");
        assert!(verdict.anomaly && verdict.direction == Some(Deviation::Above));
        assert!(verdict.explanation.starts_with("600 rows, at least four times"), "{}", verdict.explanation);
        // 14:00 itself had 300: four times that is needed.
        assert!(maxima.judge(at(2, 14), at(2, 14), 1_100.0, "rows", 48).is_none());
        // An hour seen on one day only says too little.
        let mut young = HourMaxima::new(DAYS);
        for hour in 0..24 {
            young.learn(at(0, hour), 100.0);
        }
        assert!(young.judge(at(1, 5), at(1, 5), 10_000.0, "rows", 24).is_none());
        // A few rows: count noise.
        let mut small = HourMaxima::new(DAYS);
        for day in 0..3 {
            for hour in 0..24 {
                small.learn(at(day, hour), 2.0);
            }
        }
        assert!(small.judge(at(3, 5), at(3, 5), 40.0, "rows", 72).is_none());
    }

    #[test]
    fn maxima_older_than_the_window_are_forgotten() {
        let mut maxima = HourMaxima::new(7);
        for hour in 0..24 {
            maxima.learn(at(0, hour), 5_000.0);
        }
        for day in 1..10 {
            for hour in 0..24 {
                maxima.learn(at(day, hour), 100.0);
            }
        }
        // Day 0's 5 000 rows left the seven days kept.
        assert_eq!(maxima.largest, 100.0);
        assert!(maxima.judge(at(10, 3), at(10, 3), 450.0, "", 240).is_some());
        assert!(maxima.hours.iter().all(|&(_, days)| days == 7), "{:?}", maxima.hours);
    }
}
