//! The z-score baseline used by today's open tools, kept as the comparison peer in benchmarks:
//! mean and standard deviation of a trailing 14-day window *including the tested point*,
//! threshold 3. Including the point caps the attainable z at (n-1)/sqrt(n), so with fewer than
//! 11 points it can never fire; that weakness is reproduced on purpose.

use std::collections::VecDeque;

use super::Point;

/// Window of the peer baseline.
pub const WINDOW_SECONDS: i64 = 14 * 86_400;
/// Threshold of the peer baseline.
pub const THRESHOLD: f64 = 3.0;

/// Result of the z-score baseline on one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZScoreVerdict {
    /// |value - mean| / stddev over the window including the point (0 when stddev is 0).
    pub z: f64,
    /// Whether `z > THRESHOLD`.
    pub anomaly: bool,
}

/// Score `latest` against `history` the way the peer tools do.
pub fn evaluate(history: &[Point], latest: Point) -> ZScoreVerdict {
    let mut detector = ZScoreDetector::new();
    for point in history {
        detector.push(*point);
    }
    detector.push(latest)
}

/// Streaming form of the peer baseline with running sums (O(1) per point).
#[derive(Debug, Clone, Default)]
pub struct ZScoreDetector {
    window: VecDeque<(i64, f64)>,
    sum: f64,
    sum_squares: f64,
}

impl ZScoreDetector {
    /// An empty detector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the point to the window, then score it against the window (itself included).
    pub fn push(&mut self, point: Point) -> ZScoreVerdict {
        while let Some(&(timestamp, value)) = self.window.front() {
            if timestamp <= point.timestamp - WINDOW_SECONDS {
                self.window.pop_front();
                self.sum -= value;
                self.sum_squares -= value * value;
            } else {
                break;
            }
        }
        self.window.push_back((point.timestamp, point.value));
        self.sum += point.value;
        self.sum_squares += point.value * point.value;
        let n = self.window.len() as f64;
        let mean = self.sum / n;
        let variance = if n > 1.0 { ((self.sum_squares - n * mean * mean) / (n - 1.0)).max(0.0) } else { 0.0 };
        let stddev = variance.sqrt();
        let z = if stddev > 1e-12 * mean.abs().max(1.0) { (point.value - mean).abs() / stddev } else { 0.0 };
        ZScoreVerdict { z, anomaly: z > THRESHOLD }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn including_the_point_caps_z_below_eleven_points() {
        // Ten flat points then a huge spike: z = (n-1)/sqrt(n) < 3 for n = 10.
        let mut history: Vec<Point> = (0..9).map(|i| Point::new(i * 3_600, 100.0)).collect();
        let verdict = evaluate(&history, Point::new(9 * 3_600, 1e9));
        assert!(!verdict.anomaly, "z = {}", verdict.z);
        history.push(Point::new(9 * 3_600, 100.0));
        let verdict = evaluate(&history, Point::new(10 * 3_600, 1e9));
        assert!(verdict.anomaly, "z = {}", verdict.z);
    }
}
