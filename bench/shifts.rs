//! Cost of judging a column's shift at run time: one `distribution_shift` verdict (the
//! two-sample KS test of a sample against the earlier samples, with the spread and the critical
//! distance) beside the bare KS test of the same data, and one `category_shift` verdict against a
//! week of hourly profiles. Release build, one core, best of several rounds:
//!
//!     cargo run --release --example shifts

use std::time::Instant;

use telltale::detect::{Settings, categorical, ks};

/// A deterministic draw from a roughly normal distribution (sum of 12 uniforms).
struct Draws(u64);

impl Draws {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
    fn sample(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| 50.0 + 10.0 * self.normal()).collect()
    }
}

/// Best time per call, in milliseconds, of `rounds` rounds of `calls` calls.
fn best_ms(rounds: usize, calls: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            start.elapsed().as_secs_f64() * 1e3 / calls as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let settings = Settings::default();
    let mut draws = Draws(0x9e37_79b9_7f4a_7c15);
    println!("| distribution_shift: current against earlier samples | verdict (ms) | bare KS test (ms) |");
    println!("|---|---:|---:|");
    for (n, samples) in [(50, 7), (200, 7), (1_000, 7), (1_000, 28), (5_000, 7)] {
        let history: Vec<ks::Sample> = (0..samples).map(|_| ks::Sample::from_values(&draws.sample(n))).collect();
        let current = ks::Sample::from_values(&draws.sample(n));
        let union = ks::Sample::union(&history);
        let calls = (20_000 / n).max(3);
        let verdict = best_ms(5, calls, || {
            std::hint::black_box(ks::judge(&history, &current, &settings, 86_400, 0, false));
        });
        let bare = best_ms(5, calls, || {
            std::hint::black_box(ks::test(&current, &union));
        });
        println!("| {n} values against {samples} × {n} | {verdict:.3} | {bare:.3} |");
    }

    // A week of hourly profiles of a 20-value column, ~500 rows each.
    let names: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    let mut frame = || -> Vec<(String, u64)> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), 5 + (draws.uniform() * 40.0) as u64 + i as u64))
            .collect()
    };
    let history: Vec<Vec<(String, u64)>> = (0..168).map(|_| frame()).collect();
    let current = frame();
    let verdict = best_ms(5, 20, || {
        std::hint::black_box(categorical::judge_history(&history, &current, &settings, 3_600, 0, false));
    });
    println!();
    println!("| category_shift: 20 values, 168 earlier profiles | verdict (ms) |");
    println!("|---|---:|");
    println!("| one judgement | {verdict:.3} |");
}
