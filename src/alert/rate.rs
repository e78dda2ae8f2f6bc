//! Per-channel send rates: Slack ≤ 1 message/s per webhook, PagerDuty ≤ 120 events/min per
//! routing key, generic webhooks as configured.
//!
//! [`RateLimiter`] is a token bucket in its GCRA form: one "theoretical arrival time" per limiter,
//! and each caller reserves the next free slot under a lock, then sleeps until it. Callers are
//! served in the order they asked, a burst of `burst` passes at once, and the sustained rate never
//! exceeds `per_second`: any window of `w` seconds holds at most `burst + w × per_second` sends.
//! Time is tokio's (`tokio::time::Instant`, `sleep_until`), so a paused test clock
//! (`tokio::time::pause()`) drives it. The limiter only spaces sends; it never sends, and it does
//! not know about 429s (the retry policy handles those).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How fast one channel may send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimit {
    Unlimited,
    /// At most `per_second` sends per second sustained, `burst` of them back to back.
    Limited {
        per_second: f64,
        burst: u32,
    },
}

impl RateLimit {
    /// Slack: "no more than one message per second" per webhook, short bursts allowed.
    pub const SLACK: RateLimit = RateLimit::Limited { per_second: 1.0, burst: 3 };
    /// PagerDuty: about 120 events per minute per routing key over a sliding 60-s window; 110/min
    /// plus a burst of 10 never passes 120 in any minute.
    pub const PAGERDUTY: RateLimit = RateLimit::Limited { per_second: 110.0 / 60.0, burst: 10 };

    /// `per_second` sends a second, evenly spaced and without a burst, so no 1-second window ever
    /// holds more than `per_second + 1` sends (what a webhook's `rate:` promises).
    pub fn per_second(per_second: f64) -> RateLimit {
        if !per_second.is_finite() || per_second <= 0.0 {
            return RateLimit::Unlimited;
        }
        RateLimit::Limited { per_second, burst: 1 }
    }

    /// The most sends any window of `window` can hold; `None` when unlimited.
    pub fn max_in(&self, window: Duration) -> Option<u64> {
        match *self {
            RateLimit::Unlimited => None,
            RateLimit::Limited { per_second, burst } => {
                Some(u64::from(burst) + (window.as_secs_f64() * per_second + 1e-9).floor() as u64)
            }
        }
    }
}

/// Spaces one channel's sends (see the module docs).
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    /// When the next send would be due if every earlier one went at the sustained rate.
    theoretical_arrival: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter { limit, theoretical_arrival: Mutex::new(None) }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Waits for this caller's slot. Dropping the future while it waits gives up the slot without
    /// returning it (the limiter errs on the slow side).
    pub async fn acquire(&self) {
        let now = Instant::now();
        let at = self.reserve(now, true).unwrap_or(now);
        if at > now {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Takes a slot only if one is free now; otherwise says how long until one is.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        let now = Instant::now();
        match self.reserve(now, false) {
            Some(at) if at > now => Err(at - now),
            _ => Ok(()),
        }
    }

    /// The instant the next send may go, reserving it when it is `now` or when `wait` is set.
    fn reserve(&self, now: Instant, wait: bool) -> Option<Instant> {
        let RateLimit::Limited { per_second, burst } = self.limit else { return None };
        let interval = Duration::from_secs_f64(1.0 / per_second);
        let tolerance = interval * burst.saturating_sub(1);
        let mut tat = self.theoretical_arrival.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = tat.map_or(now, |t| t.max(now));
        let send_at = due.checked_sub(tolerance).map_or(now, |t| t.max(now));
        if send_at <= now || wait {
            *tat = Some(due + interval);
        }
        Some(send_at)
    }
}

/// One limiter per key (a webhook URL, a routing key), shared by every channel that uses it.
#[derive(Debug, Default)]
pub struct RateLimiters {
    limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
}

impl RateLimiters {
    pub fn new() -> Self {
        Self::default()
    }

    /// The limiter of `key`, created with `limit` on first use (later limits are ignored).
    pub fn get(&self, key: &str, limit: RateLimit) -> Arc<RateLimiter> {
        let mut limiters = self.limiters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        limiters.entry(key.to_string()).or_insert_with(|| Arc::new(RateLimiter::new(limit))).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When each of `count` callers asking at once may send, as offsets from the start. Drives
    /// the limiter's schedule directly: the crate's tokio has no `test-util` (no paused clock).
    fn send_times(limit: RateLimit, count: usize) -> Vec<Duration> {
        let limiter = RateLimiter::new(limit);
        let start = Instant::now();
        (0..count).map(|_| limiter.reserve(start, true).map_or(Duration::ZERO, |at| at - start)).collect()
    }

    fn max_in_any_window(times: &[Duration], window: Duration) -> usize {
        times.iter().map(|&from| times.iter().filter(|&&t| t >= from && t < from + window).count()).max().unwrap_or(0)
    }

    #[test]
    fn slack_sends_a_short_burst_then_one_per_second() {
        let times = send_times(RateLimit::SLACK, 10);
        let millis: Vec<u128> = times.iter().map(|t| t.as_millis()).collect();
        assert_eq!(millis, [0, 0, 0, 1000, 2000, 3000, 4000, 5000, 6000, 7000]);
        assert!(max_in_any_window(&times[3..], Duration::from_secs(1)) <= 1);
    }

    #[test]
    fn pagerduty_never_passes_120_in_any_minute() {
        let times = send_times(RateLimit::PAGERDUTY, 400);
        assert!(max_in_any_window(&times, Duration::from_secs(60)) <= 120);
        // And it is not slower than it needs to be: 400 events in about 3.5 minutes.
        assert!(*times.last().unwrap() < Duration::from_secs(215), "{:?}", times.last());
        assert_eq!(RateLimit::PAGERDUTY.max_in(Duration::from_secs(60)), Some(120));
    }

    #[test]
    fn configured_rates_keep_their_pace() {
        let times = send_times(RateLimit::per_second(5.0), 25);
        assert!(max_in_any_window(&times, Duration::from_secs(1)) <= 6, "at most rate + 1 in any second");
        assert_eq!(times[1], Duration::from_millis(200), "evenly spaced, no burst");
        assert_eq!(times[5], Duration::from_secs(1));
        assert_eq!(RateLimit::per_second(0.5), RateLimit::Limited { per_second: 0.5, burst: 1 });
        assert_eq!(RateLimit::per_second(0.0), RateLimit::Unlimited);
    }

    #[test]
    fn the_bucket_refills_while_idle() {
        let limiter = RateLimiter::new(RateLimit::Limited { per_second: 2.0, burst: 2 });
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(limiter.reserve(at(0), false), Some(at(0)));
        assert_eq!(limiter.reserve(at(0), false), Some(at(0)));
        assert_eq!(limiter.reserve(at(0), false), Some(at(500)));
        // A refused try takes nothing: the wait does not grow.
        assert_eq!(limiter.reserve(at(100), false), Some(at(500)));
        // Ten idle seconds refill the bucket, but only up to its burst.
        assert_eq!(limiter.reserve(at(10_000), false), Some(at(10_000)));
        assert_eq!(limiter.reserve(at(10_000), false), Some(at(10_000)));
        assert_eq!(limiter.reserve(at(10_000), false), Some(at(10_500)));
    }

    #[tokio::test]
    async fn acquire_waits_for_the_reserved_slot() {
        let limiter = RateLimiter::new(RateLimit::Limited { per_second: 20.0, burst: 1 });
        let start = Instant::now();
        limiter.acquire().await;
        assert!(limiter.try_acquire().is_err());
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(50));
        let unlimited = RateLimiter::new(RateLimit::Unlimited);
        for _ in 0..100 {
            unlimited.acquire().await;
            assert!(unlimited.try_acquire().is_ok());
        }
    }

    #[test]
    fn channels_sharing_a_key_share_a_limiter() {
        let limiters = RateLimiters::new();
        let a = limiters.get("slack:abc", RateLimit::SLACK);
        let b = limiters.get("slack:abc", RateLimit::Unlimited);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(b.limit(), RateLimit::SLACK);
        assert!(!Arc::ptr_eq(&a, &limiters.get("slack:def", RateLimit::SLACK)));
    }
}
