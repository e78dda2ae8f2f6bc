//! A verdict's sentence for humans, written when it is first read rather than for every point.
//!
//! A replay or the daemon's backfill judges thousands of points whose sentence nobody reads;
//! writing it (digit grouping, three-significant-digit rounding, weekday and clock time) cost
//! about a sixth of a count point's instructions. An [`Explanation`] keeps the few numbers the
//! sentence needs and formats them on first access (it dereferences to `str`), once: the text
//! is the same as if it had been written at once. It serialises as the plain string.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::calendar::{self, DAY, HOUR};
use super::format;
use super::freshness::FreshnessParts;
use super::seasonal::Mode;
use super::verdict::Event;

/// One sentence for humans, e.g. "412 rows added, expected 9 800–11 200 for a Monday 09:00".
///
/// Dereferences to `str` (formatted on first access, then kept); compares, prints and
/// serialises as that text.
#[derive(Clone, Default)]
pub struct Explanation {
    text: OnceLock<String>,
    parts: Parts,
}

/// What the sentence is made of, before it is written.
#[derive(Clone)]
enum Parts {
    /// The text is already written (or was given).
    Text(String),
    /// A verdict of the robust seasonal baseline (counts and continuous metrics).
    Seasonal(SeasonalParts),
    /// A verdict of the proportion model (null rate).
    Proportion(ProportionParts),
    /// A verdict of the freshness model.
    Freshness(FreshnessParts),
}

/// The numbers of a seasonal verdict's sentence.
#[derive(Clone)]
pub(crate) struct SeasonalParts {
    pub noun: Arc<str>,
    pub value: f64,
    pub low: f64,
    pub high: f64,
    /// Seasonal mode whose slot is named ("for a Monday 09:00").
    pub mode: Mode,
    /// The point's local time (UTC offset applied).
    pub local: i64,
    pub step: i64,
    pub day_slot: i64,
    /// Notes of the judgement ("; rows crossed the bucket boundary"), usually empty.
    pub context: String,
    pub anomaly: bool,
    pub relative_change: Option<f64>,
    pub event: Option<Event>,
    /// Written after the model's part: "; marked expected, re-baselined" and the note of a
    /// held bucket.
    pub rebaselined: bool,
    pub note: &'static str,
}

/// The numbers of a proportion verdict's sentence.
#[derive(Clone)]
pub(crate) struct ProportionParts {
    pub noun: Arc<str>,
    pub rate: f64,
    /// The point's own counts, if it had them.
    pub counts: Option<(u64, u64)>,
    /// Rows the range was drawn for.
    pub total: u64,
    pub low: f64,
    pub high: f64,
    pub rebaselined: bool,
    pub note: &'static str,
}

impl Explanation {
    /// A sentence written later from a seasonal verdict's numbers.
    pub(crate) fn seasonal(parts: SeasonalParts) -> Self {
        Self { text: OnceLock::new(), parts: Parts::Seasonal(parts) }
    }

    /// A sentence written later from a proportion verdict's numbers.
    pub(crate) fn proportion(parts: ProportionParts) -> Self {
        Self { text: OnceLock::new(), parts: Parts::Proportion(parts) }
    }

    /// A sentence written later from a freshness verdict's numbers.
    pub(crate) fn freshness(parts: FreshnessParts) -> Self {
        Self { text: OnceLock::new(), parts: Parts::Freshness(parts) }
    }

    /// The text, written now if it was not yet.
    pub fn as_str(&self) -> &str {
        match &self.parts {
            Parts::Text(text) => text,
            Parts::Seasonal(parts) => self.text.get_or_init(|| parts.write()),
            Parts::Proportion(parts) => self.text.get_or_init(|| parts.write()),
            Parts::Freshness(parts) => self.text.get_or_init(|| parts.write()),
        }
    }
}

impl Default for Parts {
    fn default() -> Self {
        Parts::Text(String::new())
    }
}

/// The end every sentence of a streaming verdict shares.
fn write_tail(text: &mut String, rebaselined: bool, note: &str) {
    if rebaselined {
        text.push_str("; marked expected, re-baselined");
    }
    text.push_str(note);
}

/// Upper ends of an expected range from here on are written as no upper end at all.
const UNBOUNDED: f64 = 1e15;

impl SeasonalParts {
    fn write(&self) -> String {
        let mut text = String::with_capacity(96);
        format::write_number(&mut text, self.value);
        if !self.noun.is_empty() {
            text.push(' ');
            text.push_str(&self.noun);
        }
        text.push_str(", expected ");
        if self.high.is_finite() && self.high < UNBOUNDED {
            format::write_range(&mut text, self.low, self.high);
        } else if self.low > 0.0 {
            // A range widened for a slot not learned yet can reach beyond any real value (it
            // printed "0–18 446 744 073 709 551 615"): only its lower end says something.
            text.push_str("at least ");
            format::write_approx(&mut text, self.low);
        } else {
            text.push_str("any value");
        }
        let slot_start = |slot: i64| calendar::second_of_day(self.local) / slot * slot;
        match self.mode {
            Mode::Flat => {}
            Mode::Daily => {
                text.push_str(" for ");
                calendar::write_clock_time(&mut text, slot_start(self.day_slot));
            }
            Mode::Weekly | Mode::HourOfWeek => {
                text.push_str(" for a ");
                text.push_str(calendar::weekday_name(calendar::weekday(self.local)));
                if self.step < DAY {
                    text.push(' ');
                    calendar::write_clock_time(&mut text, slot_start(self.day_slot.min(HOUR)));
                }
            }
        }
        text.push_str(&self.context);
        if self.anomaly
            && let Some(change) = self.relative_change
        {
            let side = if change >= 0.0 { "above" } else { "below" };
            let percent = (change.abs() * 100.0).round();
            if (1.0..10_000.0).contains(&percent) {
                text.push_str(&format!(" ({percent} % {side} forecast)"));
            } else {
                text.push_str(&format!(" ({side} forecast)"));
            }
        }
        if let Some(Event::LevelShift { from, to }) = self.event {
            text.push_str(&format!(
                "; level shift from {} to {} recognised, re-baselined",
                format::approx(from),
                format::approx(to)
            ));
        }
        write_tail(&mut text, self.rebaselined, self.note);
        text
    }
}

impl ProportionParts {
    fn write(&self) -> String {
        let mut out = String::with_capacity(96);
        out.push_str(&self.noun);
        out.push(' ');
        format::write_percent(&mut out, self.rate);
        if let Some((count, total)) = self.counts {
            out.push_str(" (");
            format::write_number(&mut out, count as f64);
            out.push_str(" of ");
            format::write_number(&mut out, total as f64);
            out.push_str(" rows)");
        }
        out.push_str(", expected ");
        if self.low <= 0.0 {
            out.push_str("≤ ");
            format::write_percent(&mut out, self.high);
        } else {
            format::write_percent(&mut out, self.low);
            out.push('–');
            format::write_percent(&mut out, self.high);
        }
        out.push_str(" for ");
        format::write_number(&mut out, self.total as f64);
        out.push_str(" rows");
        write_tail(&mut out, self.rebaselined, self.note);
        out
    }
}

impl From<String> for Explanation {
    fn from(text: String) -> Self {
        Self { text: OnceLock::new(), parts: Parts::Text(text) }
    }
}

impl From<&str> for Explanation {
    fn from(text: &str) -> Self {
        Self::from(text.to_string())
    }
}

impl From<Explanation> for String {
    fn from(explanation: Explanation) -> Self {
        match explanation.parts {
            Parts::Text(text) => text,
            _ => explanation.as_str().to_string(),
        }
    }
}

impl Deref for Explanation {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Explanation {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Explanation {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<str> for Explanation {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Explanation {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Explanation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Explanation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_text_reads_prints_and_serialises_as_itself() {
        let explanation = Explanation::from("412 rows added");
        assert_eq!(&*explanation, "412 rows added");
        assert_eq!(explanation.to_string(), "412 rows added");
        assert_eq!(format!("{explanation:?}"), "\"412 rows added\"");
        assert_eq!(serde_json::to_string(&explanation).unwrap(), "\"412 rows added\"");
        let back: Explanation = serde_json::from_str("\"412 rows added\"").unwrap();
        assert_eq!(back, explanation);
        assert_eq!(String::from(back), "412 rows added");
    }

    #[test]
    fn a_range_without_a_real_upper_end_says_so() {
        let sentence = |low: f64, high: f64| {
            Explanation::seasonal(SeasonalParts {
                noun: Arc::from("rows"),
                value: 0.0,
                low,
                high,
                mode: Mode::Flat,
                local: 1_709_542_800,
                step: HOUR,
                day_slot: HOUR,
                context: String::new(),
                anomaly: false,
                relative_change: None,
                event: None,
                rebaselined: false,
                note: "",
            })
            .replace('\u{202f}', " ")
        };
        assert_eq!(sentence(0.0, 3.5e19), "0 rows, expected any value");
        assert_eq!(sentence(0.0, f64::INFINITY), "0 rows, expected any value");
        assert_eq!(sentence(12.5, 7.3e16), "0 rows, expected at least 12.5");
        assert_eq!(sentence(0.0, 9.9e14), "0 rows, expected 0–990 000 000 000 000");
    }

    #[test]
    fn a_seasonal_sentence_is_written_once_on_first_read() {
        // Monday 2024-03-04 09:00 UTC.
        let explanation = Explanation::seasonal(SeasonalParts {
            noun: Arc::from("rows added"),
            value: 412.0,
            low: 9_800.0,
            high: 11_200.0,
            mode: Mode::Weekly,
            local: 1_709_542_800,
            step: HOUR,
            day_slot: HOUR,
            context: String::new(),
            anomaly: true,
            relative_change: Some(-0.96),
            event: None,
            rebaselined: false,
            note: "",
        });
        assert!(explanation.text.get().is_none());
        let text = explanation.replace('\u{202f}', " ");
        assert_eq!(text, "412 rows added, expected 9 800–11 200 for a Monday 09:00 (96 % below forecast)");
        assert!(explanation.text.get().is_some());
        let copy = explanation.clone();
        assert_eq!(copy, explanation);
        assert_eq!(serde_json::to_string(&copy).unwrap(), serde_json::to_string(&explanation.as_str()).unwrap());
    }

    #[test]
    fn a_freshness_sentence_is_written_on_first_read_as_the_cadence_check_writes_it() {
        use crate::detect::freshness::Cadence;
        use crate::detect::{MetricClass, Point, Settings, StreamingDetector};
        // Hourly polls of a table loaded every day at 09:00 UTC from Monday 2024-03-04, whose
        // fifth load does not come.
        let monday = 1_709_510_400;
        let mut detector = StreamingDetector::new(MetricClass::Freshness, Settings::default());
        let mut last_load = None;
        let mut verdicts = Vec::new();
        for hour in 0..5 * 24 {
            let now = monday + hour * HOUR;
            let load = (0..4).map(|day| monday + day * DAY + 9 * HOUR).rfind(|load| *load <= now);
            let Some(load) = load else { continue };
            last_load = Some(load);
            verdicts.push((load, now, detector.push(Point::new(now, (now - load) as f64))));
        }
        let (load, now, verdict) = verdicts.pop().expect("verdicts");
        assert_eq!(Some(load), last_load);
        assert!(verdict.alert || verdict.anomaly, "the missed load is late: {verdict:?}");
        assert!(verdict.explanation.text.get().is_none(), "written while judging");
        let updates: Vec<i64> = (0..4).map(|day| monday + day * DAY + 9 * HOUR).collect();
        let check = Cadence::learn(&updates, &Settings::default()).check(load, now, 1e-4);
        assert_eq!(&*verdict.explanation, check.explanation.as_str());
        assert!(verdict.explanation.contains(" late: expected by "), "{}", &*verdict.explanation);
        assert!(verdict.explanation.text.get().is_some());
    }
}
