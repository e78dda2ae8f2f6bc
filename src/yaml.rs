//! A YAML document as a tree of nodes that remember where they were written.
//!
//! Config and check files are read in three steps: this module parses text into [`Node`]s with
//! line and column; [`Decoder`] walks them, collecting every problem as a [`Diagnostic`] (unknown
//! keys with "did you mean", wrong types, bad values) instead of stopping at the first; callers then
//! build their typed settings. It owns no knowledge of telltale's keys.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// A position in a file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub mark: Mark,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or an empty value.
    Null,
    /// Any scalar; `quoted` keeps `"15"` a string where `15` may be a number.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn describe(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// One problem in one file, with everything a reader needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub mark: Mark,
    /// Dotted path of the offending value, e.g. `assets[0].monitors.freshness.max_age`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.mark.line, self.mark.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a set of files; shown one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
}

/// Parses one YAML document. An empty file is `Null`.
pub fn parse(file: &Path, text: &str) -> Result<Node, Diagnostic> {
    let mut builder = TreeBuilder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| Diagnostic {
            file: file.to_path_buf(),
            mark: Mark { line: e.marker().line(), column: e.marker().col() + 1 },
            path: String::new(),
            message: format!("invalid YAML: {}", e.info()),
        })?;
        let mark = Mark { line: span.start.line(), column: span.start.col() + 1 };
        if let Err(message) = builder.event(event, mark) {
            return Err(Diagnostic { file: file.to_path_buf(), mark, path: String::new(), message });
        }
    }
    Ok(builder.root.unwrap_or(Node { value: Value::Null, mark: Mark { line: 1, column: 1 } }))
}

enum Frame {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    documents: usize,
}

impl TreeBuilder {
    fn event(&mut self, event: Event<'_>, mark: Mark) -> Result<(), String> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err("expected one YAML document per file, found a second `---`".into());
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                let is_null = !quoted && tag.is_none() && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                let value = if is_null { Value::Null } else { Value::Scalar { text: text.into_owned(), quoted } };
                self.push(Node { value, mark }, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(Node { value: Value::Seq(Vec::new()), mark }, anchor))
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Node { value: Value::Map(Vec::new()), mark }, anchor, None))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(node, anchor)) | Some(Frame::Map(node, anchor, _)) => (node, anchor),
                    None => return Err("unbalanced YAML structure".into()),
                };
                self.push(node, anchor);
            }
            Event::Alias(id) => {
                let node =
                    self.anchors.get(&id).cloned().ok_or_else(|| "alias refers to an unknown anchor".to_string())?;
                self.push(Node { mark, ..node }, 0);
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(seq, _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if let Value::Map(entries) = &mut map.value {
                        entries.push((key, node));
                    }
                }
            },
        }
    }
}

/// Collects problems while walking a parsed file.
#[derive(Debug)]
pub struct Decoder {
    file: PathBuf,
    problems: Vec<Diagnostic>,
}

impl Decoder {
    pub fn new(file: &Path) -> Self {
        Decoder { file: file.to_path_buf(), problems: Vec::new() }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn error(&mut self, node_mark: Mark, path: &str, message: impl Into<String>) {
        self.problems.push(Diagnostic {
            file: self.file.clone(),
            mark: node_mark,
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        !self.problems.is_empty()
    }

    pub fn finish(self) -> Diagnostics {
        Diagnostics(self.problems)
    }

    /// Opens a mapping; reports and returns `None` if the node is something else.
    pub fn map<'n>(&mut self, node: &'n Node, path: &str) -> Option<MapReader<'n>> {
        match &node.value {
            Value::Map(entries) => {
                let mut seen: HashMap<&str, Mark> = HashMap::new();
                for (key, _) in entries {
                    match key.as_scalar() {
                        Some(k) => {
                            if seen.insert(k, key.mark).is_some() {
                                self.error(key.mark, &join(path, k), format!("duplicate key `{k}`"));
                            }
                        }
                        None => self.error(key.mark, path, "expected a plain key, found a complex key"),
                    }
                }
                Some(MapReader { node, path: path.to_string(), entries, used: Vec::new() })
            }
            _ => {
                self.error(node.mark, path, format!("expected a mapping, found {}", show(node)));
                None
            }
        }
    }

    /// A list; a single value is accepted as a list of one when `lenient` is set.
    pub fn seq<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.error(node.mark, path, format!("expected a list, found {}", show(node)));
                None
            }
        }
    }

    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar { text, .. } => Some(text.clone()),
            _ => {
                self.error(node.mark, path, format!("expected a string, found {}", show(node)));
                None
            }
        }
    }

    /// A non-empty string.
    pub fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        if s.trim().is_empty() {
            self.error(node.mark, path, "expected a non-empty string");
            return None;
        }
        Some(s)
    }

    pub fn strings(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let items = self.seq(node, path)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.text(item, &format!("{path}[{i}]")) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    pub fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.as_scalar() {
            Some("true" | "True" | "TRUE" | "yes" | "on") => Some(true),
            Some("false" | "False" | "FALSE" | "no" | "off") => Some(false),
            _ => {
                self.error(node.mark, path, format!("expected `true` or `false`, found {}", show(node)));
                None
            }
        }
    }

    pub fn float(&mut self, node: &Node, path: &str) -> Option<f64> {
        if let Value::Scalar { text, quoted: false } = &node.value
            && let Ok(v) = text.replace('_', "").parse::<f64>()
            && v.is_finite()
        {
            return Some(v);
        }
        self.error(node.mark, path, format!("expected a number, found {}", show(node)));
        None
    }

    pub fn unsigned(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u64> {
        if let Value::Scalar { text, quoted: false } = &node.value
            && let Ok(v) = text.replace('_', "").parse::<u64>()
        {
            if v < min || v > max {
                self.error(node.mark, path, format!("expected a whole number from {min} to {max}, found {v}"));
                return None;
            }
            return Some(v);
        }
        self.error(node.mark, path, format!("expected a whole number from {min} to {max}, found {}", show(node)));
        None
    }

    /// A human duration: `90s`, `15m`, `2h`, `1d`, `1h30m`, `500ms`.
    pub fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let text = self.string(node, path)?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(why) => {
                self.error(node.mark, path, format!("{why}, expected a duration such as `90s`, `15m`, `2h` or `1d`"));
                None
            }
        }
    }

    /// A value from a fixed set; suggests the nearest on a miss.
    pub fn one_of(&mut self, node: &Node, path: &str, what: &str, valid: &[&str]) -> Option<String> {
        let text = self.string(node, path)?;
        if valid.contains(&text.as_str()) {
            return Some(text);
        }
        let hint = suggest(&text, valid.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
        self.error(node.mark, path, format!("unknown {what} `{text}`{hint}; expected one of: {}", valid.join(", ")));
        None
    }
}

/// Reads keys out of one mapping and reports the ones nobody asked for.
pub struct MapReader<'n> {
    pub node: &'n Node,
    pub path: String,
    entries: &'n [(Node, Node)],
    used: Vec<&'static str>,
}

impl<'n> MapReader<'n> {
    /// The value of `key`, if present (a `null` value counts as absent).
    pub fn get(&mut self, key: &'static str) -> Option<&'n Node> {
        self.used.push(key);
        self.entries.iter().find(|(k, _)| k.as_scalar() == Some(key)).map(|(_, v)| v).filter(|v| v.value != Value::Null)
    }

    /// The value of `key` even when it is `null` (`freshness:` alone switches a monitor on).
    pub fn present(&mut self, key: &'static str) -> Option<&'n Node> {
        self.used.push(key);
        self.entries.iter().find(|(k, _)| k.as_scalar() == Some(key)).map(|(_, v)| v)
    }

    /// Like `get`, but reports a missing key.
    pub fn require(&mut self, decoder: &mut Decoder, key: &'static str, expected: &str) -> Option<&'n Node> {
        let found = self.get(key);
        if found.is_none() {
            decoder.error(self.node.mark, &self.path, format!("missing `{key}`: expected {expected}"));
        }
        found
    }

    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// All entries, for maps whose keys are names chosen by the user.
    pub fn entries(&mut self) -> &'n [(Node, Node)] {
        self.used.push("*");
        self.entries
    }

    /// Reports every key that was not read, suggesting the nearest known one.
    pub fn finish(self, decoder: &mut Decoder) {
        if self.used.contains(&"*") {
            return;
        }
        for (key, _) in self.entries {
            let Some(k) = key.as_scalar() else { continue };
            if self.used.contains(&k) {
                continue;
            }
            let hint =
                suggest(k, self.used.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            let mut known: Vec<&str> = self.used.clone();
            known.sort_unstable();
            known.dedup();
            decoder.error(
                key.mark,
                &join(&self.path, k),
                format!("unknown key `{k}`{hint}; valid keys here: {}", known.join(", ")),
            );
        }
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// The nearest candidate by edit distance, if it is near enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn show(node: &Node) -> String {
    match &node.value {
        Value::Scalar { text, .. } => format!("`{}`", truncate(text, 60)),
        _ => node.describe().to_string(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

/// Parses `90s`, `15m`, `2h`, `1d`, `1w`, `500ms` and sums like `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration `{s}`"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| format!("invalid duration `{s}`"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds_per = match unit {
            "ms" => {
                total += Duration::from_millis(number);
                continue;
            }
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            "" => return Err(format!("duration `{s}` has no unit")),
            other => return Err(format!("unknown unit `{other}` in duration `{s}`")),
        };
        total += Duration::from_secs(number.saturating_mul(seconds_per));
    }
    Ok(total)
}

/// Formats a duration the way users write them (`1h30m`, `45s`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Node {
        parse(Path::new("t.yaml"), text).unwrap()
    }

    #[test]
    fn nodes_remember_line_and_column() {
        let root = p("a: 1\nb:\n  c: [x, \"y\"]\n");
        let Value::Map(entries) = &root.value else { panic!() };
        assert_eq!(entries[1].0.mark, Mark { line: 2, column: 1 });
        let Value::Map(inner) = &entries[1].1.value else { panic!() };
        assert_eq!(inner[0].0.mark, Mark { line: 3, column: 3 });
        let Value::Seq(items) = &inner[0].1.value else { panic!() };
        assert_eq!(items[1].value, Value::Scalar { text: "y".into(), quoted: true });
        assert_eq!(items[1].mark, Mark { line: 3, column: 10 });
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse(Path::new("bad.yaml"), "a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(err.file, Path::new("bad.yaml"));
        assert!(err.mark.line >= 1);
        assert!(err.message.starts_with("invalid YAML"), "{}", err.message);
    }

    #[test]
    fn aliases_resolve_to_their_anchor() {
        let root = p("base: &b {every: 5m}\nother: *b\n");
        let Value::Map(entries) = &root.value else { panic!() };
        assert_eq!(entries[0].1.value, entries[1].1.value);
    }

    #[test]
    fn unknown_keys_are_reported_with_a_suggestion() {
        let root = p("shedule: 5m\nowner: me\n");
        let mut d = Decoder::new(Path::new("c.yaml"));
        let mut m = d.map(&root, "").unwrap();
        m.get("schedule");
        m.get("owner");
        m.finish(&mut d);
        let out = d.finish().to_string();
        assert_eq!(
            out,
            "c.yaml:1:1: shedule: unknown key `shedule` (did you mean `schedule`?); valid keys here: owner, schedule"
        );
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("15").unwrap_err().contains("no unit"));
        assert!(parse_duration("5y").unwrap_err().contains("unknown unit `y`"));
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let root = p("a: 1\na: 2\n");
        let mut d = Decoder::new(Path::new("x.yaml"));
        let mut m = d.map(&root, "").unwrap();
        m.get("a");
        m.finish(&mut d);
        assert!(d.finish().to_string().contains("x.yaml:2:1: a: duplicate key `a`"));
    }
}
