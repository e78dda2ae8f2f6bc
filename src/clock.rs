//! The only place wall time is read. Everything else asks a [`Clock`], so tests can move time and
//! the demo can run its loader and agent in accelerated time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
    /// How long to really wait for `span` of this clock's time to pass.
    fn real_duration(&self, span: Duration) -> Duration;
}

pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn real_duration(&self, span: Duration) -> Duration {
        span
    }
}

/// Time that runs `factor` times faster than the wall clock from a chosen origin (the demo).
#[derive(Debug, Clone)]
pub struct ScaledClock {
    start_real: DateTime<Utc>,
    start_virtual: DateTime<Utc>,
    factor: f64,
}

impl ScaledClock {
    pub fn new(start_virtual: DateTime<Utc>, factor: f64) -> Self {
        ScaledClock { start_real: Utc::now(), start_virtual, factor: factor.max(1e-6) }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = (Utc::now() - self.start_real).num_microseconds().unwrap_or(0) as f64;
        self.start_virtual + chrono::Duration::microseconds((elapsed * self.factor) as i64)
    }
    fn real_duration(&self, span: Duration) -> Duration {
        span.div_f64(self.factor)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(Mutex::new(at)))
    }
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += chrono::Duration::from_std(by).unwrap_or_default();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn real_duration(&self, _span: Duration) -> Duration {
        Duration::from_millis(10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_runs_faster() {
        let start = "2026-01-01T00:00:00Z".parse().unwrap();
        let c = ScaledClock::new(start, 3600.0);
        assert_eq!(c.real_duration(Duration::from_secs(3600)), Duration::from_secs(1));
        assert!(c.now() >= start);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let c = ManualClock::new(start);
        c.advance(Duration::from_secs(60));
        assert_eq!(c.now(), start + chrono::Duration::seconds(60));
    }
}
