//! Human-readable run report: outcomes grouped by asset, one line each, and a closing summary
//! line. ANSI colours only when the caller asks (it knows whether stdout is a terminal and whether
//! `NO_COLOR` is set); text from warehouses is stripped of control characters either way, so a
//! column name cannot smuggle escape sequences into a terminal.

use std::fmt::Write as _;

use super::{Summary, by_asset, headline, is_anomaly, is_unwanted_control, test_name};
use crate::runtime::{CheckOutcome, Status};

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[1;31m";
const MAGENTA: &str = "\x1b[1;35m";

/// The report, ending with a newline. Anomalies are `FAIL` lines coloured as warnings.
pub fn text_report(outcomes: &[CheckOutcome], colour: bool) -> String {
    let paint = |code: &str, text: &str| if colour { format!("{code}{text}{RESET}") } else { text.to_string() };
    let mut out = String::new();
    for (asset, members) in by_asset(outcomes) {
        let mut definitions: Vec<&str> = members.iter().filter_map(|o| o.definition.as_deref()).collect();
        definitions.dedup();
        let defined = match definitions.as_slice() {
            [one] if members.iter().all(|o| o.definition.is_some()) => format!("  ({})", clean(one)),
            _ => String::new(),
        };
        let _ = writeln!(out, "{}{defined}", paint(BOLD, &clean(asset)));
        for o in members {
            let code = match o.status {
                Status::Pass => GREEN,
                Status::Recorded => CYAN,
                Status::Fail if is_anomaly(o) => YELLOW,
                Status::Fail => RED,
                Status::Error => MAGENTA,
            };
            let word = format!("{:<8}", o.status.as_str().to_uppercase());
            let _ = writeln!(out, "  {} {}", paint(code, &word), clean(&describe(o)));
        }
    }
    let summary = Summary::of(outcomes);
    if !outcomes.is_empty() {
        out.push('\n');
    }
    let code = match (summary.failed - summary.anomalies, summary.errors, summary.anomalies) {
        (0, 0, 0) => GREEN,
        (0, 0, _) => YELLOW,
        _ => RED,
    };
    let _ = writeln!(out, "{}", paint(code, &summary.sentence()));
    out
}

/// `column email.null_rate: 0.0125` rather than `column email.null_rate: email.null_rate: 0.0125`
/// when the message already starts with the subject.
fn describe(o: &CheckOutcome) -> String {
    let message = headline(o);
    match o.subject.as_deref().filter(|s| !s.is_empty()) {
        Some(subject) if message.starts_with(&format!("{subject}: ")) => format!("{} {message}", o.monitor),
        _ => format!("{}: {message}", test_name(o)),
    }
}

/// One line of plain text: line breaks become spaces, other control characters are dropped.
fn clean(value: &str) -> String {
    value
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if is_unwanted_control(c) => None,
            c => Some(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{outcome, sample};
    use super::*;

    #[test]
    fn text_groups_by_asset_without_colour() {
        insta::assert_snapshot!(text_report(&sample(), false), @"
        shop.main.orders  (checks/shop.yaml:12)
          FAIL     freshness: last change 3 h ago, older than max_age 2 h
          FAIL     volume rows_added: anomaly: 412 rows added, expected 9 800–11 200 for a Monday 09:00 (observed 412, expected 9800 to 11200, forecast 10500)
          PASS     schema: schema unchanged
        shop.main.customers  (checks/customers.yaml:4)
          RECORDED column email.null_rate: 0.0125
          PASS     volume: row count: 5230 within bounds
        warehouse.*.*
          ERROR    source: source `warehouse` is unreachable: connection refused

        6 checks: 2 passed, 1 recorded, 2 failed (1 anomaly), 1 error (1 unreachable)
        ");
    }

    #[test]
    fn text_colours_only_when_asked() {
        let outcomes = &sample()[..2];
        let coloured = text_report(outcomes, true);
        assert!(coloured.contains("\x1b[1;31mFAIL    \x1b[0m freshness"), "{coloured:?}");
        assert!(coloured.contains("\x1b[33mFAIL    \x1b[0m volume rows_added"), "{coloured:?}");
        assert!(!text_report(outcomes, false).contains('\x1b'));
    }

    #[test]
    fn text_strips_escape_sequences_and_line_breaks_from_data() {
        let o = outcome("a.b.c", "column", Some("evil\x1b[2J"), Status::Fail, "bad\nvalue\x07");
        let text = text_report(&[o], false);
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(text.contains("column evil[2J: bad value"), "{text:?}");
    }

    #[test]
    fn text_of_no_outcomes_is_the_summary_line() {
        assert_eq!(text_report(&[], false), "0 checks: 0 passed, 0 recorded, 0 failed, 0 errors\n");
    }
}
