//! When work is due: `every: 15m` or `cron: "0 * * * *"`, with jitter.
//!
//! Pure: computes the next due time after a given instant. Jitter is derived from a stable hash of
//! the job's name, so a restart keeps each job's slot while different jobs spread out.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;

use crate::yaml::{Decoder, Node, Value};

#[derive(Debug, Clone)]
pub enum Cadence {
    Every(Duration),
    Cron { expression: String, cron: Box<Cron> },
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub cadence: Cadence,
    /// Each run is shifted by a stable per-job offset in `[0, jitter)`.
    pub jitter: Duration,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.describe() == other.describe() && self.jitter == other.jitter
    }
}

impl Schedule {
    pub fn every(d: Duration) -> Self {
        Schedule { cadence: Cadence::Every(d), jitter: Duration::ZERO }
    }

    pub fn describe(&self) -> String {
        match &self.cadence {
            Cadence::Every(d) => format!("every {}", crate::yaml::format_duration(*d)),
            Cadence::Cron { expression, .. } => format!("cron {expression}"),
        }
    }

    /// The typical gap between runs, used to size deadlines and buckets.
    pub fn nominal_interval(&self) -> Duration {
        match &self.cadence {
            Cadence::Every(d) => *d,
            Cadence::Cron { cron, .. } => {
                let start = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default();
                let gap = cron
                    .find_next_occurrence(&start, false)
                    .and_then(|a| cron.find_next_occurrence(&a, false).map(|b| b - a));
                gap.ok().and_then(|g| g.to_std().ok()).unwrap_or(Duration::from_secs(3600))
            }
        }
    }

    /// The first due time strictly after `after` for the job named `key`.
    pub fn next_after(&self, key: &str, after: DateTime<Utc>) -> DateTime<Utc> {
        let offset = self.offset(key);
        match &self.cadence {
            Cadence::Every(period) => {
                // Align to multiples of the period since the epoch, shifted by the offset, so runs
                // land on predictable wall-clock slots.
                let period_ms = period.as_millis().max(1) as i64;
                let offset_ms = offset.as_millis() as i64 % period_ms;
                let t = after.timestamp_millis() - offset_ms;
                let next = (t.div_euclid(period_ms) + 1) * period_ms + offset_ms;
                DateTime::from_timestamp_millis(next).unwrap_or(after)
            }
            Cadence::Cron { cron, .. } => {
                let shifted = after - chrono::Duration::from_std(offset).unwrap_or_default();
                match cron.find_next_occurrence(&shifted, false) {
                    Ok(t) => t + chrono::Duration::from_std(offset).unwrap_or_default(),
                    Err(_) => after + chrono::Duration::hours(1),
                }
            }
        }
    }

    fn offset(&self, key: &str) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        Duration::from_millis(h.finish() % self.jitter.as_millis().max(1) as u64)
    }

    /// Decodes `15m`, `{every: 15m, jitter: 1m}` or `{cron: "0 * * * *"}`.
    pub fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Schedule> {
        if let Value::Scalar { .. } = node.value {
            return d.duration(node, path).and_then(|every| check_period(d, node, path, every)).map(Schedule::every);
        }
        let mut map = d.map(node, path)?;
        let every = map.get("every");
        let cron = map.get("cron");
        let jitter_node = map.get("jitter");
        let every_path = map.path_of("every");
        let cron_path = map.path_of("cron");
        let jitter_path = map.path_of("jitter");
        map.finish(d);
        let jitter = match jitter_node {
            Some(n) => d.duration(n, &jitter_path)?,
            None => Duration::ZERO,
        };
        let cadence = match (every, cron) {
            (Some(_), Some(c)) => {
                d.error(c.mark, &cron_path, "give either `every` or `cron`, not both");
                return None;
            }
            (Some(e), None) => {
                let every = d.duration(e, &every_path)?;
                Cadence::Every(check_period(d, e, &every_path, every)?)
            }
            (None, Some(c)) => {
                let expression = d.text(c, &cron_path)?;
                match expression.parse::<Cron>() {
                    Ok(cron) => Cadence::Cron { expression, cron: Box::new(cron) },
                    Err(e) => {
                        d.error(
                            c.mark,
                            &cron_path,
                            format!(
                                "invalid cron expression `{expression}` ({e}); expected five fields like `0 * * * *`"
                            ),
                        );
                        return None;
                    }
                }
            }
            (None, None) => {
                d.error(node.mark, path, "expected `every: <duration>` or `cron: \"<expression>\"`");
                return None;
            }
        };
        Some(Schedule { cadence, jitter })
    }
}

fn check_period(d: &mut Decoder, node: &Node, path: &str, every: Duration) -> Option<Duration> {
    if every < Duration::from_secs(1) {
        d.error(node.mark, path, "schedule period must be at least 1s");
        return None;
    }
    Some(every)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn every_aligns_to_period_slots() {
        let s = Schedule::every(Duration::from_secs(900));
        assert_eq!(s.next_after("a", t("2026-01-01T10:07:00Z")), t("2026-01-01T10:15:00Z"));
        assert_eq!(s.next_after("a", t("2026-01-01T10:15:00Z")), t("2026-01-01T10:30:00Z"));
    }

    #[test]
    fn jitter_is_stable_per_job_and_bounded() {
        let s = Schedule { cadence: Cadence::Every(Duration::from_secs(3600)), jitter: Duration::from_secs(300) };
        let a1 = s.next_after("job-a", t("2026-01-01T10:00:00Z"));
        let a2 = s.next_after("job-a", t("2026-01-01T10:00:00Z"));
        assert_eq!(a1, a2);
        let base = t("2026-01-01T11:00:00Z");
        assert!(a1 >= base - chrono::Duration::hours(1) && a1 < base + chrono::Duration::seconds(300));
        let spread: std::collections::HashSet<_> =
            (0..20).map(|i| s.next_after(&format!("job-{i}"), t("2026-01-01T10:00:00Z"))).collect();
        assert!(spread.len() > 10, "jitter should spread jobs: {spread:?}");
    }

    #[test]
    fn cron_finds_the_next_slot() {
        let root = crate::yaml::parse(Path::new("x"), "cron: \"0 6 * * 1-5\"").unwrap();
        let mut d = Decoder::new(Path::new("x"));
        let s = Schedule::decode(&mut d, &root, "schedule").unwrap();
        // 2026-01-03 is a Saturday: next weekday 06:00 is Monday the 5th.
        assert_eq!(s.next_after("k", t("2026-01-03T12:00:00Z")), t("2026-01-05T06:00:00Z"));
        assert_eq!(s.nominal_interval(), Duration::from_secs(86_400));
    }

    #[test]
    fn bad_schedules_explain_themselves() {
        let root = crate::yaml::parse(Path::new("x"), "cron: \"61 * * *\"\njiter: 5s").unwrap();
        let mut d = Decoder::new(Path::new("x"));
        assert!(Schedule::decode(&mut d, &root, "schedule").is_none());
        let out = d.finish().to_string();
        assert!(out.contains("x:2:1: schedule.jiter: unknown key `jiter` (did you mean `jitter`?)"), "{out}");
        assert!(out.contains("x:1:7: schedule.cron: invalid cron expression `61 * * *`"), "{out}");
    }
}
