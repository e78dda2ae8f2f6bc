//! GitHub Actions output: workflow-command annotations for the job log (the runner reads them on
//! stdout and stderr) and a Markdown page for `$GITHUB_STEP_SUMMARY`.
//!
//! Annotations: `::error` for broken hard rules and checks that could not run, `::warning` for
//! anomalies (see [`super::severity`]), each with `file`/`line` of the check definition when known
//! and a `title` naming the check and the asset. Escaping follows `actions/toolkit`'s
//! `command.ts`: message data `%`→`%25`, CR→`%0D`, LF→`%0A`; property values additionally
//! `:`→`%3A` and `,`→`%2C`. GitHub shows at most 10 error and 10 warning annotations per step, so
//! the most important come first (see [`super::by_importance`]) and a final `::notice` says how
//! many were left out.
//!
//! The step summary stays under GitHub's 1 MiB limit ([`SUMMARY_BUDGET_BYTES`]): rows that do not
//! fit are counted in a closing line instead.
//!
//! Pure: the caller decides whether `GITHUB_ACTIONS` is set and writes the strings.

use std::fmt::Write as _;
use std::time::Duration;

use super::{
    Severity, Summary, by_importance, headline, is_anomaly, is_unwanted_control, location, severity, test_name,
};
use crate::runtime::{CheckOutcome, Status};

/// Error annotations GitHub displays per step; more are dropped by GitHub.
pub const MAX_ERROR_ANNOTATIONS: usize = 10;
/// Warning annotations GitHub displays per step.
pub const MAX_WARNING_ANNOTATIONS: usize = 10;
/// GitHub rejects a step summary over 1 MiB.
pub const SUMMARY_LIMIT_BYTES: usize = 1024 * 1024;
/// What [`markdown_summary`] allows itself: the limit less room for anything else the step adds.
pub const SUMMARY_BUDGET_BYTES: usize = 1_000_000;

/// Longest message shown in one summary table cell, in characters.
const CELL_CHARS: usize = 500;

/// Workflow commands for every `fail` and `error` outcome, most important first, within GitHub's
/// per-step caps, one per line. `workspace` (the value of `GITHUB_WORKSPACE`) is stripped from
/// absolute check paths, since GitHub resolves `file` against the repository root. Empty when
/// nothing failed.
pub fn annotations(outcomes: &[CheckOutcome], workspace: Option<&str>) -> String {
    let mut out = String::new();
    let (mut errors, mut warnings) = (0usize, 0usize);
    let (mut omitted_errors, mut omitted_warnings) = (0usize, 0usize);
    for o in by_importance(outcomes) {
        let Some(level) = severity(o) else { continue };
        let (shown, cap, omitted, command) = match level {
            Severity::Error => (&mut errors, MAX_ERROR_ANNOTATIONS, &mut omitted_errors, "error"),
            Severity::Warn => (&mut warnings, MAX_WARNING_ANNOTATIONS, &mut omitted_warnings, "warning"),
        };
        if *shown == cap {
            *omitted += 1;
            continue;
        }
        *shown += 1;
        let mut properties = Vec::new();
        if let Some(l) = location(o) {
            properties.push(format!("file={}", property(&relative(l.file, workspace))));
            if let Some(line) = l.line {
                properties.push(format!("line={line}"));
            }
        }
        properties.push(format!("title={}", property(&title(o))));
        let _ = writeln!(out, "::{command} {}::{}", properties.join(","), data(&headline(o)));
    }
    if omitted_errors + omitted_warnings > 0 {
        let _ = writeln!(
            out,
            "::notice title={}::{}",
            property("telltale: annotations omitted"),
            data(&format!(
                "{omitted_errors} more error{} and {omitted_warnings} more warning{} not annotated (GitHub shows at \
                 most {MAX_ERROR_ANNOTATIONS} errors and {MAX_WARNING_ANNOTATIONS} warnings per step); the step \
                 summary and the JUnit report list every result",
                super::plural(omitted_errors),
                super::plural(omitted_warnings),
            ))
        );
    }
    out
}

/// `freshness: shop.main.orders`, `anomaly in volume rows_added: shop.main.orders`.
fn title(o: &CheckOutcome) -> String {
    let prefix = match o.status {
        Status::Error => "could not run ",
        _ if is_anomaly(o) => "anomaly in ",
        _ => "",
    };
    format!("{prefix}{}: {}", test_name(o), o.asset)
}

fn relative(file: &str, workspace: Option<&str>) -> String {
    let mut file = file;
    if let Some(root) = workspace.map(|w| w.trim_end_matches('/')).filter(|w| !w.is_empty())
        && let Some(rest) = file.strip_prefix(root).and_then(|r| r.strip_prefix('/'))
    {
        file = rest;
    }
    while let Some(rest) = file.strip_prefix("./") {
        file = rest;
    }
    file.to_string()
}

/// Escapes workflow-command message data.
pub fn data(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a workflow-command property value.
pub fn property(value: &str) -> String {
    data(value).replace(':', "%3A").replace(',', "%2C")
}

/// Markdown for `$GITHUB_STEP_SUMMARY`: a header with the gate's result and the counts, a table of
/// failures and errors (most important first) and the passes in a collapsed `<details>`, all within
/// [`SUMMARY_BUDGET_BYTES`].
pub fn markdown_summary(outcomes: &[CheckOutcome], suite_name: &str, duration: Duration, exit_code: i32) -> String {
    let summary = Summary::of(outcomes);
    let verdict = match exit_code {
        0 => "✅ {} passed",
        1 => "❌ {} failed",
        2 => "⛔ {}: usage or configuration error",
        3 => "🔌 {}: a source was unreachable",
        _ => "❌ {} failed",
    }
    .replace("{}", &cell(suite_name));
    let mut out = format!(
        "## {verdict}\n\n{} in {:.1} s (exit code {exit_code})\n\n",
        summary.sentence(),
        duration.as_secs_f64()
    );
    // Room kept for the closing lines written after the tables.
    let budget = SUMMARY_BUDGET_BYTES - 1_024;
    let sorted = by_importance(outcomes);
    let (bad, good): (Vec<&CheckOutcome>, Vec<&CheckOutcome>) =
        sorted.into_iter().partition(|o| matches!(o.status, Status::Fail | Status::Error));
    let mut omitted = 0usize;
    if bad.is_empty() {
        out.push_str("No failures or errors.\n");
    } else {
        out.push_str("### Failures and errors\n\n");
        omitted += table(&mut out, &bad, budget);
    }
    if !good.is_empty() {
        let _ =
            write!(out, "\n<details><summary>{} passed, {} recorded</summary>\n\n", summary.passed, summary.recorded);
        omitted += table(&mut out, &good, budget);
        out.push_str("\n</details>\n");
    }
    if omitted > 0 {
        let _ = writeln!(
            out,
            "\n_{omitted} more result{} not shown: a step summary is limited to 1 MiB; the JUnit report and \
             `--format json` have every result._",
            super::plural(omitted)
        );
    }
    out
}

/// Writes a table of `rows` while the page stays within `budget` bytes; returns the rows left out.
fn table(out: &mut String, rows: &[&CheckOutcome], budget: usize) -> usize {
    const HEAD: &str = "| result | asset | check | message | definition |\n|---|---|---|---|---|\n";
    if out.len() + HEAD.len() > budget {
        return rows.len();
    }
    out.push_str(HEAD);
    for (index, o) in rows.iter().enumerate() {
        let result = match o.status {
            Status::Fail if is_anomaly(o) => "⚠️ anomaly",
            Status::Fail => "❌ fail",
            Status::Error => "💥 error",
            Status::Pass => "✅ pass",
            Status::Recorded => "📝 recorded",
        };
        let message = headline(o);
        let row = format!(
            "| {result} | {} | {} | {} | {} |\n",
            cell(o.asset.as_str()),
            cell(&test_name(o)),
            cell(&truncate(&message, CELL_CHARS)),
            cell(o.definition.as_deref().unwrap_or("")),
        );
        if out.len() + row.len() > budget {
            return rows.len() - index;
        }
        out.push_str(&row);
    }
    0
}

fn truncate(value: &str, max_chars: usize) -> String {
    match value.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

/// Escapes text for one cell of a GitHub-flavoured Markdown table: HTML-significant characters as
/// entities, Markdown punctuation with a backslash (so `warehouse.*.*` is not emphasis), line
/// breaks as `<br>`, control characters dropped.
fn cell(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push_str("<br>"),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if is_unwanted_control(c) || c == '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{outcome, sample, verdict};
    use super::*;

    #[test]
    fn annotations_are_errors_for_failures_and_warnings_for_anomalies() {
        insta::assert_snapshot!(annotations(&sample(), None), @"
        ::error file=checks/shop.yaml,line=12,title=freshness%3A shop.main.orders::last change 3 h ago, older than max_age 2 h
        ::error title=could not run source%3A warehouse.*.*::source `warehouse` is unreachable: connection refused
        ::warning file=checks/shop.yaml,line=12,title=anomaly in volume rows_added%3A shop.main.orders::anomaly: 412 rows added, expected 9 800–11 200 for a Monday 09:00 (observed 412, expected 9800 to 11200, forecast 10500)
        ");
    }

    #[test]
    fn annotations_escape_data_and_properties() {
        let mut o =
            outcome("shop.main.orders", "custom_sql", Some("late, very: late"), Status::Fail, "100% late\r\nsee: a, b");
        o.definition = Some("/home/runner/work/repo/checks/a:b,c.yaml:7".into());
        let text = annotations(&[o], Some("/home/runner/work/repo/"));
        insta::assert_snapshot!(text, @"::error file=checks/a%3Ab%2Cc.yaml,line=7,title=custom_sql late%2C very%3A late%3A shop.main.orders::100%25 late%0D%0Asee: a, b");
        assert_eq!(text.lines().count(), 1, "one annotation is one line");
    }

    #[test]
    fn escaping_matches_the_toolkit_rules() {
        assert_eq!(data("50% a:b,c\r\n"), "50%25 a:b,c%0D%0A");
        assert_eq!(property("50% a:b,c\r\n"), "50%25 a%3Ab%2Cc%0D%0A");
    }

    #[test]
    fn twenty_five_failures_give_ten_errors_and_a_notice() {
        let outcomes: Vec<CheckOutcome> =
            (0..25).map(|i| outcome(&format!("shop.main.t{i:02}"), "freshness", None, Status::Fail, "late")).collect();
        let text = annotations(&outcomes, None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.iter().filter(|l| l.starts_with("::error ")).count(), MAX_ERROR_ANNOTATIONS);
        assert_eq!(lines.len(), MAX_ERROR_ANNOTATIONS + 1);
        insta::assert_snapshot!(lines[MAX_ERROR_ANNOTATIONS], @"::notice title=telltale%3A annotations omitted::15 more errors and 0 more warnings not annotated (GitHub shows at most 10 errors and 10 warnings per step); the step summary and the JUnit report list every result");
        // The run's order is kept among equals: the first ten assets are annotated.
        assert!(lines[0].contains("shop.main.t00") && lines[9].contains("shop.main.t09"));
    }

    #[test]
    fn caps_apply_per_level_and_keep_the_most_surprising_anomalies() {
        let mut outcomes: Vec<CheckOutcome> = (0..12)
            .map(|i| {
                let mut o = outcome(&format!("s.m.a{i:02}"), "volume", None, Status::Fail, "anomaly: odd");
                o.verdict = Some(verdict(1.0, 2.0, 3.0, 2.5, f64::from(i)));
                o
            })
            .collect();
        outcomes.push(outcome("s.m.hard", "freshness", None, Status::Fail, "late"));
        let text = annotations(&outcomes, None);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("::error ") && lines[0].contains("s.m.hard"), "errors first: {text}");
        assert_eq!(lines.iter().filter(|l| l.starts_with("::warning ")).count(), MAX_WARNING_ANNOTATIONS);
        assert!(lines[1].contains("s.m.a11"), "highest score first: {text}");
        assert!(!text.contains("s.m.a00") && !text.contains("s.m.a01"), "lowest scores dropped: {text}");
        assert!(lines.last().is_some_and(|l| l.starts_with("::notice ") && l.contains("0 more errors and 2 more")));
    }

    #[test]
    fn no_annotations_when_everything_passed() {
        let outcomes = vec![outcome("a.b.c", "freshness", None, Status::Pass, "ok")];
        assert_eq!(annotations(&outcomes, None), "");
    }

    #[test]
    fn summary_has_counts_a_failure_table_and_collapsed_passes() {
        insta::assert_snapshot!(markdown_summary(&sample(), "telltale check", Duration::from_millis(4_812), 3), @r"
        ## 🔌 telltale check: a source was unreachable

        6 checks: 2 passed, 1 recorded, 2 failed (1 anomaly), 1 error (1 unreachable) in 4.8 s (exit code 3)

        ### Failures and errors

        | result | asset | check | message | definition |
        |---|---|---|---|---|
        | ❌ fail | shop.main.orders | freshness | last change 3 h ago, older than max\_age 2 h | checks/shop.yaml:12 |
        | 💥 error | warehouse.\*.\* | source | source \`warehouse\` is unreachable: connection refused |  |
        | ⚠️ anomaly | shop.main.orders | volume rows\_added | anomaly: 412 rows added, expected 9 800–11 200 for a Monday 09:00 (observed 412, expected 9800 to 11200, forecast 10500) | checks/shop.yaml:12 |

        <details><summary>2 passed, 1 recorded</summary>

        | result | asset | check | message | definition |
        |---|---|---|---|---|
        | 📝 recorded | shop.main.customers | column email.null\_rate | email.null\_rate: 0.0125 | checks/customers.yaml:4 |
        | ✅ pass | shop.main.orders | schema | schema unchanged | checks/shop.yaml:12 |
        | ✅ pass | shop.main.customers | volume | row count: 5230 within bounds | checks/customers.yaml:4 |

        </details>
        ");
    }

    #[test]
    fn summary_cells_escape_markdown_and_html() {
        let o = outcome("a.b.c", "custom_sql", Some("x|y"), Status::Fail, "<b>bold</b> | *a* `c`\nnext & [link](u)");
        let md = markdown_summary(&[o], "t", Duration::ZERO, 1);
        insta::assert_snapshot!(md.lines().find(|l| l.starts_with("| ❌")).unwrap_or_default(), @r"| ❌ fail | a.b.c | custom\_sql x\|y | &lt;b&gt;bold&lt;/b&gt; \| \*a\* \`c\`<br>next &amp; \[link\](u) | checks/shop.yaml:12 |");
    }

    #[test]
    fn summary_stays_under_the_step_summary_limit() {
        let long = "x".repeat(2_000);
        let outcomes: Vec<CheckOutcome> = (0..5_000)
            .map(|i| {
                let status = if i % 5 == 0 { Status::Pass } else { Status::Fail };
                outcome(&format!("shop.main.t{i:05}"), "freshness", None, status, &long)
            })
            .collect();
        let md = markdown_summary(&outcomes, "telltale check", Duration::ZERO, 1);
        assert!(md.len() <= SUMMARY_BUDGET_BYTES && SUMMARY_BUDGET_BYTES < SUMMARY_LIMIT_BYTES, "{}", md.len());
        assert!(md.contains("more results not shown"), "{:?}", md.lines().last());
        let shown = md.lines().filter(|l| l.starts_with("| ❌")).count();
        let passes = md.lines().filter(|l| l.starts_with("| ✅")).count();
        assert!(md.contains(&format!("_{} more results not shown", 5_000 - shown - passes)));
        assert!(md.trim_end().ends_with("have every result._"), "the closing line fits");
    }
}
