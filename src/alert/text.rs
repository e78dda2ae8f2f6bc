//! Text shared by the alert payload builders: numbers, durations, labels and truncation.
//!
//! Everything here is pure and measures lengths in `char`s, the unit Slack and PagerDuty state
//! their limits in. Numbers follow the detectors' explanations (digits grouped with U+202F, three
//! significant digits for ranges) so an alert reads the same as the verdict it came from. It must
//! not know any channel's wire format.

use chrono::{DateTime, Utc};

/// The ellipsis appended to anything cut short.
pub const ELLIPSIS: char = '…';

/// `text` cut to at most `max` chars, ending in `…` when something was cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push(ELLIPSIS);
    out
}

/// `text` cut to at most `max` bytes on a char boundary, ending in `…` when something was cut.
pub fn truncate_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let budget = max.saturating_sub(ELLIPSIS.len_utf8());
    let mut end = budget.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = text[..end].to_string();
    if max >= ELLIPSIS.len_utf8() {
        out.push(ELLIPSIS);
    }
    out
}

/// Collapses runs of whitespace (newlines included) into single spaces; for one-line summaries.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `freshness_lag` → `Freshness lag`: a monitor name as a label.
pub fn monitor_label(monitor: &str) -> String {
    let spaced = monitor.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `open` → `Open`, `false_positive` → `False positive`.
pub fn status_label(status: &str) -> String {
    monitor_label(status)
}

/// The asset, with the column when the incident is about one: `shop.main.orders.amount`.
pub fn subject(asset: &str, column: Option<&str>) -> String {
    match column {
        Some(c) if !c.is_empty() => format!("{asset}.{c}"),
        _ => asset.to_string(),
    }
}

/// The title on one line, led by the subject unless it already names it:
/// `shop.main.orders: 412 rows, expected 9 800–11 200`.
pub fn headline(subject: &str, title: &str) -> String {
    let title = one_line(title);
    if title.contains(subject) { title } else { format!("{subject}: {title}") }
}

/// How a monitor's values read: seconds for freshness, shares for rates, plain numbers otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Share,
    Plain,
}

impl Unit {
    pub fn of_monitor(monitor: &str) -> Unit {
        let m = monitor.to_ascii_lowercase();
        if m.contains("freshness") || m.ends_with("_lag") || m.ends_with("_age") {
            Unit::Seconds
        } else if m.ends_with("_rate") || m.ends_with("_ratio") || m == "uniqueness" {
            Unit::Share
        } else {
            Unit::Plain
        }
    }

    /// An observed value, exact when it is a whole number.
    pub fn observed(self, value: f64) -> String {
        match self {
            Unit::Seconds => duration_secs(value),
            Unit::Share => percent(value),
            Unit::Plain => number(value),
        }
    }

    /// A bound of an expected range, rounded to three significant digits.
    pub fn bound(self, value: f64) -> String {
        match self {
            Unit::Seconds => duration_secs(value),
            Unit::Share => percent(value),
            Unit::Plain => approx(value),
        }
    }

    /// `9 810–11 200`, `≤ 2 h 00 min`, `≥ 10`; `None` when neither bound is known.
    pub fn expected(self, low: Option<f64>, high: Option<f64>) -> Option<String> {
        match (low, high) {
            (Some(l), Some(h)) => {
                let (l, h) = (self.bound(l), self.bound(h));
                Some(if l == h { l } else { format!("{l}–{h}") })
            }
            (None, Some(h)) => Some(format!("≤ {}", self.bound(h))),
            (Some(l), None) => Some(format!("≥ {}", self.bound(l))),
            (None, None) => None,
        }
    }
}

// Numbers and durations read the same in alerts as in detector explanations: one formatter.
pub(crate) use crate::detect::format::{approx, duration, number, percent};

fn duration_secs(seconds: f64) -> String {
    if !seconds.is_finite() {
        return format!("{seconds} s");
    }
    duration(seconds.round() as i64)
}

/// The time from `from` to `to`, never negative (clocks of different machines disagree).
pub fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    duration((to - from).num_seconds().max(0))
}

/// `2026-08-20 09:15 UTC`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// RFC 3339 in UTC with a `Z`, to the second: `2026-08-20T09:15:00Z`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// Decodes hexadecimal of either case; `None` on an odd length or a non-hex digit.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes().chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_chars_and_marks_the_cut() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo", 4), "hél…");
        assert_eq!(truncate("héllo", 0), "");
        assert_eq!(truncate_bytes("héllo", 6), "héllo");
        assert_eq!(truncate_bytes("héllo", 5), "h…");
        assert!(truncate_bytes(&"é".repeat(1000), 101).len() <= 101);
    }

    #[test]
    fn values_read_in_the_monitors_unit() {
        let thin = |s: &str| s.replace(' ', "\u{202f}");
        assert_eq!(Unit::of_monitor("freshness").observed(25_920.0), "7 h 12 min");
        assert_eq!(Unit::of_monitor("freshness").expected(None, Some(7200.0)).unwrap(), "≤ 2 h 00 min");
        assert_eq!(Unit::of_monitor("null_rate").observed(0.125), "12.5 %");
        assert_eq!(Unit::of_monitor("rows_added").observed(412.0), "412");
        assert_eq!(
            Unit::of_monitor("rows_added").expected(Some(9_812.0), Some(11_187.0)).unwrap(),
            thin("9 810–11 200")
        );
        assert_eq!(Unit::Plain.expected(Some(3.0), None).unwrap(), "≥ 3");
        assert_eq!(Unit::Plain.expected(None, None), None);
    }

    #[test]
    fn labels_read_like_words() {
        assert_eq!(monitor_label("freshness"), "Freshness");
        assert_eq!(monitor_label("null_rate"), "Null rate");
        assert_eq!(status_label("false_positive"), "False positive");
        assert_eq!(subject("shop.main.orders", Some("amount")), "shop.main.orders.amount");
        assert_eq!(one_line("a\n  b\tc "), "a b c");
        assert_eq!(headline("shop.orders", "shop.orders is late"), "shop.orders is late");
        assert_eq!(headline("shop.orders", "412 rows"), "shop.orders: 412 rows");
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff").unwrap(), vec![0x00, 0xab, 0xff]);
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
