//! Number and duration formatting for explanations: "9 800–11 200", "3 h 05 min".
//!
//! Digits are grouped by threes with U+202F NARROW NO-BREAK SPACE (the SI thin space that does
//! not break lines), also in four-digit numbers, so that alerts read the same in every locale.

/// The digit-group separator.
pub(crate) const THIN_SPACE: char = '\u{202f}';

use std::fmt::Write as _;

/// Append the digits of `value` grouped by threes.
fn write_grouped(out: &mut String, value: u64) {
    write_digits(out, value, Some(THIN_SPACE));
}

/// Append the digits of `value`, with `separator` between groups of three when given.
fn write_digits(out: &mut String, mut value: u64, separator: Option<char>) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (value % 10) as u8;
        len += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for index in (0..len).rev() {
        out.push(char::from(digits[index]));
        if let Some(separator) = separator.filter(|_| index > 0 && index % 3 == 0) {
            out.push(separator);
        }
    }
}

/// Round `value` to `digits` significant digits.
pub(crate) fn round_significant(value: f64, digits: i32) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let magnitude = value.abs().log10().floor() as i32;
    let factor = 10f64.powi(digits - 1 - magnitude);
    (value * factor).round() / factor
}

/// Append a value exactly when it is an integer, else with three significant digits.
pub(crate) fn write_number(out: &mut String, value: f64) {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        if value < 0.0 {
            out.push('-');
        }
        write_grouped(out, value.abs() as u64);
    } else {
        write_approx(out, value);
    }
}

/// Format a value exactly when it is an integer, else with three significant digits.
pub(crate) fn number(value: f64) -> String {
    let mut out = String::new();
    write_number(&mut out, value);
    out
}

/// Append a value rounded to three significant digits (for expected ranges).
pub(crate) fn write_approx(out: &mut String, value: f64) {
    if !value.is_finite() {
        let _ = write!(out, "{value}");
        return;
    }
    let rounded = round_significant(value, 3);
    let magnitude = rounded.abs();
    if magnitude == 0.0 {
        out.push('0');
        return;
    }
    if rounded < 0.0 {
        out.push('-');
    }
    if magnitude >= 100.0 {
        write_grouped(out, magnitude.round() as u64);
        return;
    }
    let exponent = magnitude.log10().floor() as i32;
    if (-10..=2).contains(&exponent) {
        // Three significant digits: `magnitude` is within a few ulps of `digits / 10^decimals`,
        // so these digits are exactly what `{magnitude:.decimals$}` prints, without the
        // general float formatting machinery.
        let decimals = (2 - exponent) as usize;
        let digits = (magnitude * 10f64.powi(2 - exponent)).round() as u64;
        write_fixed(out, digits, decimals);
        return;
    }
    let decimals = (2 - exponent).clamp(0, 12) as usize;
    let start = out.len();
    let _ = write!(out, "{magnitude:.decimals$}");
    if out[start..].contains('.') {
        let trimmed = out.trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(trimmed);
    }
}

/// Append `digits / 10^decimals` (`decimals >= 1`) without trailing zeros after the point:
/// `(123, 4)` is "0.0123", `(100, 1)` is "10".
fn write_fixed(out: &mut String, mut digits: u64, mut decimals: usize) {
    while decimals > 0 && digits.is_multiple_of(10) {
        digits /= 10;
        decimals -= 1;
    }
    // At most 20 integer digits, a point and 13 decimals.
    let mut buffer = [b'0'; 40];
    let mut end = buffer.len();
    let mut written = 0;
    while digits > 0 || written <= decimals {
        if written == decimals && decimals > 0 {
            end -= 1;
            buffer[end] = b'.';
        }
        end -= 1;
        buffer[end] = b'0' + (digits % 10) as u8;
        digits /= 10;
        written += 1;
    }
    for &byte in &buffer[end..] {
        out.push(char::from(byte));
    }
}

/// Format a value rounded to three significant digits (for expected ranges).
pub(crate) fn approx(value: f64) -> String {
    let mut out = String::new();
    write_approx(&mut out, value);
    out
}

/// Append a range "low–high" with both ends rounded, collapsing equal ends.
pub(crate) fn write_range(out: &mut String, low: f64, high: f64) {
    let start = out.len();
    write_approx(out, low);
    let middle = out.len();
    out.push('–');
    let high_start = out.len();
    write_approx(out, high);
    if out[start..middle] == out[high_start..] {
        out.truncate(middle);
    }
}

/// Format a range "low–high" with both ends rounded, collapsing equal ends.
#[cfg(test)]
pub(crate) fn range(low: f64, high: f64) -> String {
    let mut out = String::new();
    write_range(&mut out, low, high);
    out
}

/// Format a proportion as a percentage with up to three significant digits.
pub(crate) fn percent(rate: f64) -> String {
    let mut out = String::new();
    write_percent(&mut out, rate);
    out
}

/// Append a proportion as a percentage with up to three significant digits.
pub(crate) fn write_percent(out: &mut String, rate: f64) {
    write_approx(out, rate * 100.0);
    out.push_str(" %");
}

/// Format a duration in seconds as "2 d 4 h", "3 h 05 min", "45 min" or "30 s".
pub(crate) fn duration(seconds: i64) -> String {
    let mut out = String::new();
    write_duration(&mut out, seconds);
    out
}

/// Append a duration in seconds as "2 d 4 h", "3 h 05 min", "45 min" or "30 s".
pub(crate) fn write_duration(out: &mut String, seconds: i64) {
    if seconds < 0 {
        out.push('-');
    }
    let seconds = seconds.unsigned_abs();
    let (days, hours, minutes) = (seconds / 86_400, (seconds % 86_400) / 3_600, (seconds % 3_600) / 60);
    if days > 0 {
        write_plain(out, days);
        out.push_str(" d");
        if hours > 0 {
            out.push(' ');
            write_plain(out, hours);
            out.push_str(" h");
        }
    } else if hours > 0 {
        write_plain(out, hours);
        out.push_str(" h ");
        write_two_digits(out, minutes);
        out.push_str(" min");
    } else if minutes > 0 {
        write_plain(out, minutes);
        out.push_str(" min");
    } else {
        write_plain(out, seconds);
        out.push_str(" s");
    }
}

/// Append the digits of `value` (no grouping), as `{value}` prints them.
pub(crate) fn write_plain(out: &mut String, value: u64) {
    write_digits(out, value, None);
}

/// Append `value` (below 100) with two digits, as `{value:02}` prints it.
pub(crate) fn write_two_digits(out: &mut String, value: u64) {
    out.push(char::from(b'0' + (value / 10 % 10) as u8));
    out.push(char::from(b'0' + (value % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_with_thin_spaces() {
        let thin = |s: &str| s.replace(' ', "\u{202f}");
        assert_eq!(number(412.0), "412");
        assert_eq!(number(9_800.0), thin("9 800"));
        assert_eq!(number(1_234_567.0), thin("1 234 567"));
        assert_eq!(range(9_812.0, 11_187.0), thin("9 810–11 200"));
        assert_eq!(approx(0.012_345), "0.0123");
        assert_eq!(approx(12.34), "12.3");
        assert_eq!(number(-3.0), "-3");
        assert_eq!(percent(0.1), "10 %");
    }

    #[test]
    fn approximations_match_the_general_float_formatting() {
        // The reference: `{:.decimals$}` with trailing zeros trimmed.
        let reference = |value: f64| {
            let rounded = round_significant(value, 3);
            let magnitude = rounded.abs();
            let decimals = (2 - magnitude.log10().floor() as i32).clamp(0, 12) as usize;
            let text = format!("{magnitude:.decimals$}");
            let text =
                if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
            if rounded < 0.0 { format!("-{text}") } else { text }
        };
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..200_000 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let mantissa = (state >> 11) as f64 / (1u64 << 53) as f64;
            let exponent = ((state >> 3) % 28) as i32 - 14;
            let value = (mantissa * 10.0 + 0.5) * 10f64.powi(exponent) * if state & 1 == 0 { 1.0 } else { -1.0 };
            if round_significant(value, 3).abs() >= 100.0 {
                continue;
            }
            assert_eq!(approx(value), reference(value), "{value:e}");
        }
        for value in [0.001, 0.00999, 9.995, 99.95, 1e-10, 1.23e-11, 0.5, 1.0, 10.0, 0.1, 0.105] {
            assert_eq!(approx(value), reference(value), "{value:e}");
        }
    }

    #[test]
    fn durations_match_the_general_formatting() {
        for seconds in (-200_000..200_000).step_by(7).chain([0, 59, 60, 3_599, 3_600, 86_399, 86_400, 1 << 40]) {
            let sign = if seconds < 0 { "-" } else { "" };
            let s = i64::unsigned_abs(seconds);
            let (days, hours, minutes) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
            let text = if days > 0 {
                if hours > 0 { format!("{days} d {hours} h") } else { format!("{days} d") }
            } else if hours > 0 {
                format!("{hours} h {minutes:02} min")
            } else if minutes > 0 {
                format!("{minutes} min")
            } else {
                format!("{s} s")
            };
            assert_eq!(duration(seconds), format!("{sign}{text}"));
        }
    }

    #[test]
    fn grouped_digits_match_a_plain_grouping() {
        let reference = |value: u64| {
            let plain = value.to_string();
            let mut out = String::new();
            for (index, digit) in plain.chars().enumerate() {
                if index > 0 && (plain.len() - index).is_multiple_of(3) {
                    out.push(THIN_SPACE);
                }
                out.push(digit);
            }
            out
        };
        let mut value = 1_u64;
        for step in 0..2_000_u64 {
            for candidate in [value, value - 1, value + step, step] {
                let mut out = String::new();
                write_grouped(&mut out, candidate);
                assert_eq!(out, reference(candidate));
            }
            value = value.wrapping_mul(3).wrapping_add(step) % 10_000_000_000_000_000_000;
            value = value.max(1);
        }
        let mut out = String::new();
        write_grouped(&mut out, u64::MAX);
        assert_eq!(out, reference(u64::MAX));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(30), "30 s");
        assert_eq!(duration(45 * 60), "45 min");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3 h 05 min");
        assert_eq!(duration(2 * 86_400 + 4 * 3600), "2 d 4 h");
    }
}
