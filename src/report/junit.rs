//! JUnit XML for CI test-report UIs (GitLab `artifacts:reports:junit`, Jenkins, test-report
//! actions): one `<testsuite>` per asset, one `<testcase>` per outcome.
//!
//! Mapping (documented in `docs/ci.md`):
//! - `classname` = asset, `name` = monitor plus subject (made unique within the asset with ` #2`,
//!   ` #3`, because GitLab keys tests by classname + name and drops duplicates);
//! - `fail` → `<failure message type>` with the message, observed vs expected and the check's
//!   `file:line` in the body; `type` is `anomaly` for anomalies, else the monitor;
//! - `error` → `<error message type>`, `type` = the error class (`unreachable`, `timeout`, …);
//! - `pass` and `recorded` → a passed testcase whose `<system-out>` holds the message. A recorded
//!   outcome was measured and judged (there was simply no rule to break), so it is not "skipped";
//!   telltale never writes `<skipped>` and always reports `skipped="0"`.
//!
//! By default the output is valid against the Jenkins xUnit plugin's `junit-10.xsd` (the schema
//! schema-checking consumers apply; a copy is in `tests/fixtures/junit/junit.xsd`). That schema
//! has no `file`/`line` on `<testcase>`, so the definition goes on `<testsuite file>`, in
//! `<property name="definition">` and in the failure body; [`JunitOptions::testcase_locations`]
//! adds `file`/`line` on each testcase as well, for GitLab and annotation actions that read them.
//! Not validated here: this module is pure and only builds the string.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Summary, by_asset, is_anomaly, is_unwanted_control, location, number, observed_vs_expected, test_name};
use crate::runtime::{CheckOutcome, Status};

/// Everything the JUnit report needs besides the outcomes.
#[derive(Debug, Clone, Copy)]
pub struct JunitOptions<'a> {
    /// `<testsuites name>`, e.g. `telltale check`.
    pub suite_name: &'a str,
    /// Wall time of the whole run (`<testsuites time>`; outcomes carry no timings of their own).
    pub duration: Duration,
    /// Start of the run (`<testsuite timestamp>`).
    pub timestamp: DateTime<Utc>,
    /// Also write `file` and `line` on every `<testcase>` whose definition is known. These
    /// attributes are outside `junit-10.xsd`: consumers that validate (Jenkins xUnit) reject them.
    pub testcase_locations: bool,
}

/// JUnit XML valid against `junit-10.xsd` (no `file`/`line` on testcases).
pub fn junit_xml(outcomes: &[CheckOutcome], suite_name: &str, duration: Duration, timestamp: DateTime<Utc>) -> String {
    junit_xml_with(outcomes, &JunitOptions { suite_name, duration, timestamp, testcase_locations: false })
}

/// JUnit XML with explicit options.
pub fn junit_xml_with(outcomes: &[CheckOutcome], options: &JunitOptions<'_>) -> String {
    let total = Summary::of(outcomes);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
        attr(options.suite_name),
        total.total,
        total.failed,
        total.errors,
        options.duration.as_secs_f64()
    );
    let timestamp = options.timestamp.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for (asset, members) in by_asset(outcomes) {
        write_suite(&mut out, asset, &members, &timestamp, options.testcase_locations);
    }
    out.push_str("</testsuites>\n");
    out
}

fn write_suite(out: &mut String, asset: &str, members: &[&CheckOutcome], timestamp: &str, locations: bool) {
    let failures = members.iter().filter(|o| o.status == Status::Fail).count();
    let errors = members.iter().filter(|o| o.status == Status::Error).count();
    let mut definitions: Vec<&str> = Vec::new();
    for o in members {
        if let Some(d) = o.definition.as_deref().filter(|d| !d.is_empty() && !definitions.contains(d)) {
            definitions.push(d);
        }
    }
    let mut files: Vec<&str> = Vec::new();
    for l in members.iter().filter_map(|o| location(o)) {
        if !files.contains(&l.file) {
            files.push(l.file);
        }
    }
    let file = match files.as_slice() {
        [one] => format!(" file=\"{}\"", attr(one)),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" \
         timestamp=\"{timestamp}\"{file}>",
        attr(asset),
        members.len(),
    );
    if !definitions.is_empty() {
        out.push_str("    <properties>\n");
        for d in definitions {
            let _ = writeln!(out, "      <property name=\"definition\" value=\"{}\"/>", attr(d));
        }
        out.push_str("    </properties>\n");
    }
    let mut seen: Vec<String> = Vec::new();
    for o in members {
        let base = test_name(o);
        let repeats = seen.iter().filter(|n| **n == base).count();
        let name = if repeats == 0 { base.clone() } else { format!("{base} #{}", repeats + 1) };
        seen.push(base);
        write_case(out, asset, &name, o, locations);
    }
    out.push_str("  </testsuite>\n");
}

fn write_case(out: &mut String, asset: &str, name: &str, o: &CheckOutcome, locations: bool) {
    let mut position = String::new();
    if locations && let Some(l) = location(o) {
        let _ = write!(position, " file=\"{}\"", attr(l.file));
        if let Some(line) = l.line {
            let _ = write!(position, " line=\"{line}\"");
        }
    }
    let _ = writeln!(out, "    <testcase name=\"{}\" classname=\"{}\"{position}>", attr(name), attr(asset));
    match o.status {
        Status::Fail => {
            let kind = if is_anomaly(o) { "anomaly" } else { o.monitor.as_str() };
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                attr(&super::headline(o)),
                attr(kind),
                text(&body(o))
            );
        }
        Status::Error => {
            let kind = o.error_class.map_or("error", |c| c.as_str());
            let _ = writeln!(
                out,
                "      <error message=\"{}\" type=\"{}\">{}</error>",
                attr(&o.message),
                attr(kind),
                text(&body(o))
            );
        }
        Status::Pass | Status::Recorded => {
            let _ = writeln!(out, "      <system-out>{}: {}</system-out>", o.status.as_str(), text(&o.message));
        }
    }
    out.push_str("    </testcase>\n");
}

/// Failure and error text: the message, then one fact per line.
fn body(o: &CheckOutcome) -> String {
    let mut lines = vec![o.message.clone()];
    if let Some(detail) = observed_vs_expected(o) {
        // Name the metric unless the subject already does (`column amount.min`).
        match o.metric.filter(|_| o.subject.is_none()) {
            Some(metric) => lines.push(format!("{}: {detail}", metric.as_str())),
            None => lines.push(detail),
        }
    }
    if let Some(v) = o.verdict.as_ref().filter(|v| v.expected.is_some()) {
        lines.push(format!(
            "score {} (confidence {}, {} points of history)",
            number(v.score),
            super::confidence(v.confidence),
            v.history_points
        ));
    }
    if let Some(class) = o.error_class {
        lines.push(format!("error class: {}", class.as_str()));
    }
    lines.push(format!("asset: {}", o.asset));
    if let Some(d) = o.definition.as_deref().filter(|d| !d.is_empty()) {
        lines.push(format!("check: {d}"));
    }
    lines.join("\n")
}

/// Escapes element text; drops characters XML 1.0 cannot carry.
pub(crate) fn text(value: &str) -> String {
    escape(value, false)
}

/// Escapes an attribute value; tabs and line breaks become character references so that
/// attribute-value normalisation does not turn them into spaces.
pub(crate) fn attr(value: &str) -> String {
    escape(value, true)
}

fn escape(value: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if is_unwanted_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{outcome, sample};
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_786_007_700, 0).expect("valid time")
    }

    #[test]
    fn junit_groups_by_asset_and_maps_every_status() {
        let xml = junit_xml(&sample(), "telltale check", Duration::from_millis(4_812), at());
        insta::assert_snapshot!(xml, @r#"
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites name="telltale check" tests="6" failures="2" errors="1" time="4.812">
          <testsuite name="shop.main.orders" tests="3" failures="2" errors="0" skipped="0" timestamp="2026-08-06T09:15:00Z" file="checks/shop.yaml">
            <properties>
              <property name="definition" value="checks/shop.yaml:12"/>
            </properties>
            <testcase name="freshness" classname="shop.main.orders">
              <failure message="last change 3 h ago, older than max_age 2 h" type="freshness">last change 3 h ago, older than max_age 2 h
        freshness_lag: observed 10800
        asset: shop.main.orders
        check: checks/shop.yaml:12</failure>
            </testcase>
            <testcase name="volume rows_added" classname="shop.main.orders">
              <failure message="anomaly: 412 rows added, expected 9 800–11 200 for a Monday 09:00 (observed 412, expected 9800 to 11200, forecast 10500)" type="anomaly">anomaly: 412 rows added, expected 9 800–11 200 for a Monday 09:00
        observed 412, expected 9800 to 11200, forecast 10500
        score 6.5 (confidence high, 120 points of history)
        asset: shop.main.orders
        check: checks/shop.yaml:12</failure>
            </testcase>
            <testcase name="schema" classname="shop.main.orders">
              <system-out>pass: schema unchanged</system-out>
            </testcase>
          </testsuite>
          <testsuite name="shop.main.customers" tests="2" failures="0" errors="0" skipped="0" timestamp="2026-08-06T09:15:00Z" file="checks/customers.yaml">
            <properties>
              <property name="definition" value="checks/customers.yaml:4"/>
            </properties>
            <testcase name="column email.null_rate" classname="shop.main.customers">
              <system-out>recorded: email.null_rate: 0.0125</system-out>
            </testcase>
            <testcase name="volume" classname="shop.main.customers">
              <system-out>pass: row count: 5230 within bounds</system-out>
            </testcase>
          </testsuite>
          <testsuite name="warehouse.*.*" tests="1" failures="0" errors="1" skipped="0" timestamp="2026-08-06T09:15:00Z">
            <testcase name="source" classname="warehouse.*.*">
              <error message="source `warehouse` is unreachable: connection refused" type="unreachable">source `warehouse` is unreachable: connection refused
        error class: unreachable
        asset: warehouse.*.*</error>
            </testcase>
          </testsuite>
        </testsuites>
        "#);
    }

    #[test]
    fn junit_with_locations_puts_file_and_line_on_testcases() {
        let options = JunitOptions {
            suite_name: "telltale check",
            duration: Duration::from_secs(1),
            timestamp: at(),
            testcase_locations: true,
        };
        let xml = junit_xml_with(&sample()[..1], &options);
        insta::assert_snapshot!(xml, @r#"
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites name="telltale check" tests="1" failures="1" errors="0" time="1.000">
          <testsuite name="shop.main.orders" tests="1" failures="1" errors="0" skipped="0" timestamp="2026-08-06T09:15:00Z" file="checks/shop.yaml">
            <properties>
              <property name="definition" value="checks/shop.yaml:12"/>
            </properties>
            <testcase name="freshness" classname="shop.main.orders" file="checks/shop.yaml" line="12">
              <failure message="last change 3 h ago, older than max_age 2 h" type="freshness">last change 3 h ago, older than max_age 2 h
        freshness_lag: observed 10800
        asset: shop.main.orders
        check: checks/shop.yaml:12</failure>
            </testcase>
          </testsuite>
        </testsuites>
        "#);
    }

    #[test]
    fn junit_escapes_markup_quotes_and_line_breaks_and_drops_control_characters() {
        let mut o = outcome(
            "shop.main.orders",
            "custom_sql",
            Some("<a & \"b\">"),
            Status::Fail,
            "it's <broken> & \"bad\"\u{1}\u{1b}[31m\nsecond\tline\r",
        );
        o.definition = Some("checks/a&b.yaml:3".into());
        let xml = junit_xml(&[o], "x<y", Duration::ZERO, at());
        insta::assert_snapshot!(xml, @r#"
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites name="x&lt;y" tests="1" failures="1" errors="0" time="0.000">
          <testsuite name="shop.main.orders" tests="1" failures="1" errors="0" skipped="0" timestamp="2026-08-06T09:15:00Z" file="checks/a&amp;b.yaml">
            <properties>
              <property name="definition" value="checks/a&amp;b.yaml:3"/>
            </properties>
            <testcase name="custom_sql &lt;a &amp; &quot;b&quot;&gt;" classname="shop.main.orders">
              <failure message="it&apos;s &lt;broken&gt; &amp; &quot;bad&quot;[31m&#10;second&#9;line&#13;" type="custom_sql">it's &lt;broken&gt; &amp; "bad"[31m
        second	line&#13;
        asset: shop.main.orders
        check: checks/a&amp;b.yaml:3</failure>
            </testcase>
          </testsuite>
        </testsuites>
        "#);
        assert!(!xml.contains('\u{1}') && !xml.contains('\u{1b}'));
    }

    #[test]
    fn junit_makes_repeated_test_names_unique_within_an_asset() {
        let outcomes = vec![
            outcome("a.b.c", "source", None, Status::Error, "down"),
            outcome("a.b.c", "source", None, Status::Error, "still down"),
            outcome("a.b.c", "source", None, Status::Error, "down again"),
        ];
        let xml = junit_xml(&outcomes, "t", Duration::ZERO, at());
        assert!(xml.contains("name=\"source\" "));
        assert!(xml.contains("name=\"source #2\" "));
        assert!(xml.contains("name=\"source #3\" "));
    }

    #[test]
    fn junit_of_no_outcomes_is_an_empty_testsuites() {
        let xml = junit_xml(&[], "telltale check", Duration::ZERO, at());
        insta::assert_snapshot!(xml, @r#"
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites name="telltale check" tests="0" failures="0" errors="0" time="0.000">
        </testsuites>
        "#);
    }
}
