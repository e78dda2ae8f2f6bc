//! Number and duration formatting for explanations: "9 800–11 200", "3 h 05 min".
//!
//! Digits are grouped by threes with U+202F NARROW NO-BREAK SPACE (the SI thin space that does
//! not break lines), also in four-digit numbers, so that alerts read the same in every locale.

/// The digit-group separator.
pub(crate) const THIN_SPACE: char = '\u{202f}';

/// Group the digits of a non-negative integer given as text.
fn group_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    let len = digits.len();
    for (index, ch) in digits.chars().enumerate() {
        if index > 0 && (len - index).is_multiple_of(3) {
            out.push(THIN_SPACE);
        }
        out.push(ch);
    }
    out
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

/// Format a value exactly when it is an integer, else with three significant digits.
pub(crate) fn number(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let text = format!("{}", value.abs() as u64);
        let sign = if value < 0.0 { "-" } else { "" };
        return format!("{sign}{}", group_digits(&text));
    }
    approx(value)
}

/// Format a value rounded to three significant digits (for expected ranges).
pub(crate) fn approx(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let rounded = round_significant(value, 3);
    let sign = if rounded < 0.0 { "-" } else { "" };
    let magnitude = rounded.abs();
    if magnitude >= 100.0 {
        return format!("{sign}{}", group_digits(&format!("{}", magnitude.round() as u64)));
    }
    if magnitude == 0.0 {
        return "0".to_string();
    }
    let decimals = (2 - magnitude.log10().floor() as i32).clamp(0, 12) as usize;
    let text = format!("{magnitude:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    format!("{sign}{text}")
}

/// Format a range "low–high" with both ends rounded, collapsing equal ends.
pub(crate) fn range(low: f64, high: f64) -> String {
    let (low, high) = (approx(low), approx(high));
    if low == high { low } else { format!("{low}–{high}") }
}

/// Format a proportion as a percentage with up to three significant digits.
pub(crate) fn percent(rate: f64) -> String {
    format!("{} %", approx(rate * 100.0))
}

/// Format a duration in seconds as "2 d 4 h", "3 h 05 min", "45 min" or "30 s".
pub(crate) fn duration(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let seconds = seconds.unsigned_abs();
    let (days, hours, minutes) = (seconds / 86_400, (seconds % 86_400) / 3_600, (seconds % 3_600) / 60);
    let text = if days > 0 {
        if hours > 0 { format!("{days} d {hours} h") } else { format!("{days} d") }
    } else if hours > 0 {
        format!("{hours} h {minutes:02} min")
    } else if minutes > 0 {
        format!("{minutes} min")
    } else {
        format!("{seconds} s")
    };
    format!("{sign}{text}")
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
    fn durations_read_naturally() {
        assert_eq!(duration(30), "30 s");
        assert_eq!(duration(45 * 60), "45 min");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3 h 05 min");
        assert_eq!(duration(2 * 86_400 + 4 * 3600), "2 d 4 h");
    }
}
