//! When to try a failed delivery again, and when to give up.
//!
//! [`RetryPolicy::next_delay`] turns a classified [`AlertError`] into the wait before the next
//! attempt, or `None` to stop: rejected requests (4xx other than 429) are never retried; nothing
//! is retried once `give_up_after` has passed since the first attempt; a 429 waits exactly the
//! receiver's `Retry-After` (Slack sends seconds), or, without one, one to two
//! `rate_limited_delay`s (PagerDuty asks for "a backoff of a few minutes" and its window is 60 s);
//! 5xx and network errors back off exponentially from `base`, capped at `max_delay`, with full
//! jitter (a uniform wait between zero and the cap) so that many failed notifications do not
//! return together. The randomness is injectable ([`Jitter::seeded`]) so tests are deterministic.
//! This module only computes; it never sleeps nor reads the clock.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::AlertError;

/// Where the jitter's randomness comes from.
#[derive(Clone)]
pub enum Jitter {
    /// No jitter: always the full capped exponential delay.
    None,
    /// Uniform draws from a shared generator (seeded from the OS, or fixed in tests).
    Random(Arc<Mutex<StdRng>>),
}

impl Jitter {
    /// Randomness seeded from the operating system.
    pub fn random() -> Self {
        Jitter::Random(Arc::new(Mutex::new(StdRng::from_os_rng())))
    }

    /// A reproducible sequence of draws.
    pub fn seeded(seed: u64) -> Self {
        Jitter::Random(Arc::new(Mutex::new(StdRng::seed_from_u64(seed))))
    }

    /// A draw in `[0, 1)`; `1` without jitter.
    fn unit(&self) -> f64 {
        match self {
            Jitter::None => 1.0,
            Jitter::Random(rng) => rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).random::<f64>(),
        }
    }
}

impl fmt::Debug for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Jitter::None => "None",
            Jitter::Random(_) => "Random",
        })
    }
}

/// Retry timing for one channel's deliveries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// The cap of the first retry's delay; doubles with every attempt.
    pub base: Duration,
    /// No backoff delay is longer than this (an explicit `Retry-After` may be).
    pub max_delay: Duration,
    /// Age, from the first attempt, after which a notification is given up (and recorded so).
    pub give_up_after: Duration,
    /// After a 429 without `Retry-After`, wait between one and two of these.
    pub rate_limited_delay: Duration,
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    /// 1 s doubling up to 5 min, 60–120 s after an unexplained 429, give up after 24 h.
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            give_up_after: Duration::from_secs(24 * 3600),
            rate_limited_delay: Duration::from_secs(60),
            jitter: Jitter::random(),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, given that attempt `attempt` (1 for the first
    /// try) failed with `error`; `None` to stop retrying. `first_attempt_at` is when the first
    /// attempt was made (for a notification, when it was first sent), `now` the current time.
    pub fn next_delay(
        &self,
        attempt: u32,
        error: &AlertError,
        first_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<Duration> {
        if !error.is_retryable() {
            return None;
        }
        self.delay_with(attempt, error, first_attempt_at, now, self.jitter.unit())
    }

    /// [`next_delay`](Self::next_delay) with the jitter draw given: `unit` in `[0, 1]`.
    pub fn delay_with(
        &self,
        attempt: u32,
        error: &AlertError,
        first_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
        unit: f64,
    ) -> Option<Duration> {
        let elapsed = (now - first_attempt_at).to_std().unwrap_or(Duration::ZERO);
        let remaining = self.give_up_after.checked_sub(elapsed).filter(|r| !r.is_zero())?;
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 1.0 };
        let delay = match error {
            AlertError::Rejected { .. } => return None,
            // The receiver said when; retrying sooner is pointless and later than the deadline futile.
            AlertError::RateLimited { retry_after: Some(wait), .. } => return (*wait <= remaining).then_some(*wait),
            AlertError::RateLimited { retry_after: None, .. } => {
                self.rate_limited_delay + self.rate_limited_delay.mul_f64(unit)
            }
            AlertError::Transient { .. } => self.backoff_cap(attempt).mul_f64(unit),
        };
        Some(delay.min(remaining))
    }

    /// `min(max_delay, base × 2^(attempt − 1))`: the longest wait after attempt `attempt`.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        u32::try_from(factor)
            .ok()
            .and_then(|f| self.base.checked_mul(f))
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// When a notification first tried at `first_attempt_at` is given up.
    pub fn deadline(&self, first_attempt_at: DateTime<Utc>) -> DateTime<Utc> {
        first_attempt_at + chrono::Duration::from_std(self.give_up_after).unwrap_or(chrono::Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            give_up_after: Duration::from_secs(3600),
            rate_limited_delay: Duration::from_secs(60),
            jitter,
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 8, 20, 9, 0, 0).unwrap()
    }

    fn after(secs: i64) -> DateTime<Utc> {
        t0() + chrono::Duration::seconds(secs)
    }

    fn transient() -> AlertError {
        AlertError::Transient { channel: "c".into(), message: "HTTP 500".into() }
    }

    fn rate_limited(secs: Option<u64>) -> AlertError {
        AlertError::RateLimited { channel: "c".into(), retry_after: secs.map(Duration::from_secs) }
    }

    #[test]
    fn rejected_requests_are_never_retried() {
        let rejected = AlertError::Rejected { channel: "c".into(), status: 400, message: "invalid_payload".into() };
        assert_eq!(policy(Jitter::None).next_delay(1, &rejected, t0(), t0()), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_without_jitter() {
        let p = policy(Jitter::None);
        let delays: Vec<u64> = (1..=9).map(|a| p.next_delay(a, &transient(), t0(), t0()).unwrap().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.backoff_cap(0), Duration::from_secs(1));
        assert_eq!(p.backoff_cap(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn full_jitter_stays_under_the_cap_and_is_reproducible() {
        let draws = |seed| {
            let p = policy(Jitter::seeded(seed));
            (1..=20).map(|a| p.next_delay(a, &transient(), t0(), t0()).unwrap()).collect::<Vec<_>>()
        };
        let first = draws(7);
        assert_eq!(first, draws(7));
        assert_ne!(first, draws(8));
        let p = policy(Jitter::None);
        for (a, d) in (1..=20).zip(&first) {
            assert!(*d <= p.backoff_cap(a), "attempt {a}: {d:?}");
        }
        // Full jitter spreads delays: not all at the cap.
        assert!(first.iter().any(|d| *d < Duration::from_secs(30)));
    }

    #[test]
    fn rate_limits_honour_retry_after() {
        let p = policy(Jitter::seeded(1));
        assert_eq!(p.next_delay(1, &rate_limited(Some(1)), t0(), t0()), Some(Duration::from_secs(1)));
        // An explicit Retry-After is honoured even when longer than max_delay ...
        assert_eq!(p.next_delay(1, &rate_limited(Some(600)), t0(), t0()), Some(Duration::from_secs(600)));
        // ... but not past the give-up deadline.
        assert_eq!(p.next_delay(1, &rate_limited(Some(600)), t0(), after(3300)), None);
        // Without one, a minute or two (PagerDuty's window is 60 s).
        for attempt in 1..10 {
            let d = p.next_delay(attempt, &rate_limited(None), t0(), t0()).unwrap();
            assert!(d >= Duration::from_secs(60) && d <= Duration::from_secs(120), "{d:?}");
        }
    }

    #[test]
    fn nothing_is_retried_after_give_up_after() {
        let p = policy(Jitter::None);
        assert_eq!(p.next_delay(3, &transient(), t0(), after(3600)), None);
        assert_eq!(p.next_delay(3, &rate_limited(Some(1)), t0(), after(4000)), None);
        // The last wait is cut to the deadline, so a final attempt happens just in time.
        assert_eq!(p.next_delay(20, &transient(), t0(), after(3590)), Some(Duration::from_secs(10)));
        assert_eq!(p.deadline(t0()), after(3600));
        // A clock that went backwards counts as no time elapsed.
        assert_eq!(p.next_delay(1, &transient(), t0(), after(-30)), Some(Duration::from_secs(1)));
    }

    #[test]
    fn delay_with_is_pure() {
        let p = policy(Jitter::None);
        assert_eq!(p.delay_with(3, &transient(), t0(), t0(), 0.5), Some(Duration::from_secs(2)));
        assert_eq!(p.delay_with(3, &transient(), t0(), t0(), 0.0), Some(Duration::ZERO));
        assert_eq!(p.delay_with(1, &rate_limited(None), t0(), t0(), 0.25), Some(Duration::from_secs(75)));
    }
}
