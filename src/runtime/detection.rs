//! Learned thresholds at run time. Keeps one streaming detector per series (asset, metric,
//! column), warmed from the store's history on first use, so each new point costs microseconds;
//! turns verdicts into outcomes and stored verdict records.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{Agent, CheckOutcome, Status};
use crate::check::AssetCheck;
use crate::detect::{
    Label, LabelKind, MetricClass, Point, Settings, StreamingDetector, TimeRange, Verdict, categorical, ks,
};
use crate::measure::{AssetId, Measurement, MetricKind, ValueCounts};
use crate::store::VerdictRecord;

/// Points of history replayed into a new detector.
const WARM_UP_POINTS: usize = 3000;
/// History older than this is not replayed unless the check sets a longer `training_window`.
const DEFAULT_TRAINING_DAYS: i64 = 56;
/// Days of earlier profiles a column's value frequencies or samples are compared with (a
/// shorter `training_window` shortens it).
pub const PROFILE_BASELINE_DAYS: i64 = 7;
/// Earlier samples a column's distribution is compared with: the newest of the trailing week.
pub const MAX_BASELINE_SAMPLES: usize = 28;
/// Earlier frequency tables a column's categories are compared with: the newest of the
/// trailing week (a week of hourly profiles).
pub const MAX_BASELINE_FRAMES: usize = 168;
/// The name the rows of every value beyond the most frequent ones are compared under.
pub const OTHER_VALUES: &str = "(other values)";

type SeriesKey = (AssetId, MetricKind, String);

struct Cached {
    detector: StreamingDetector,
    last_timestamp: i64,
    settings: Settings,
}

/// The detectors of every series this agent has judged.
#[derive(Default)]
pub struct Detectors {
    series: Mutex<HashMap<SeriesKey, Cached>>,
}

impl Detectors {
    /// Forgets a series (after a label changed its training data).
    pub fn forget(&self, asset: &AssetId, kind: MetricKind, column: &str) {
        self.series.lock().unwrap_or_else(|e| e.into_inner()).remove(&(asset.clone(), kind, column.to_string()));
    }
}

/// Which model judges a metric.
pub fn class_of(kind: MetricKind) -> MetricClass {
    match kind {
        MetricKind::RowCount
        | MetricKind::RowsAdded
        | MetricKind::DistinctCount
        | MetricKind::NullCount
        | MetricKind::InvalidCount
        | MetricKind::ProfiledRows
        | MetricKind::ColumnCount => MetricClass::Count,
        MetricKind::NullRate | MetricKind::DistinctRatio | MetricKind::Uniqueness | MetricKind::InvalidRate => {
            MetricClass::Proportion
        }
        MetricKind::FreshnessLag => MetricClass::Freshness,
        _ => MetricClass::Continuous,
    }
}

/// How long before its `observed_at` the period a measurement counts starts: a timestamp
/// column's bucket of rows added is stored at the bucket's end, and the detector's calendar
/// (hour of the day, weekday, `exclude` ranges, labels, the verdict's sentence) is the
/// bucket's, as in `telltale detect replay` and the benchmark: the rows of Tuesday are judged
/// "for a Tuesday", and an excluded Christmas Day excludes the bucket holding its rows.
pub fn period_of(check: &AssetCheck, kind: MetricKind) -> i64 {
    match check.volume.as_ref() {
        Some(v) if kind == MetricKind::RowsAdded && v.timestamp_column.is_some() => v.bucket.as_secs() as i64,
        _ => 0,
    }
}

pub fn noun(kind: MetricKind, column: &str) -> String {
    match kind {
        MetricKind::RowsAdded => "rows added".into(),
        MetricKind::RowCount => "rows".into(),
        MetricKind::FreshnessLag => "seconds since the last update".into(),
        MetricKind::Custom => column.to_string(),
        other if column.is_empty() => other.to_string(),
        other => format!("{column} {other}"),
    }
}

impl Agent {
    /// Judges every outcome whose metric has a learned threshold; anomalies fail the outcome.
    pub(crate) async fn apply_detection(
        &self,
        check: Option<&AssetCheck>,
        measurements: &[Measurement],
        outcomes: &mut [CheckOutcome],
    ) {
        let Some(check) = check else { return };
        let span = crate::telemetry::spans::detection(&check.asset);
        crate::telemetry::spans::in_span(span.clone(), self.apply_detection_untraced(check, measurements, outcomes))
            .await;
        let judged: Vec<_> = outcomes.iter().filter_map(|o| o.verdict.as_ref()).collect();
        span.record("judged", judged.len() as u64);
        span.record("anomalies", judged.iter().filter(|v| v.anomaly).count() as u64);
    }

    async fn apply_detection_untraced(
        &self,
        check: &AssetCheck,
        measurements: &[Measurement],
        outcomes: &mut [CheckOutcome],
    ) {
        let mut records = Vec::new();
        for o in outcomes.iter_mut() {
            // Judged by their own detector in the job (value frequencies): record and apply.
            if let (Some(kind), Some(verdict)) = (o.metric, o.verdict.as_ref()) {
                let column = o.column.clone().unwrap_or_default();
                let at = measurements
                    .iter()
                    .find(|m| m.asset == check.asset && m.kind == kind && m.column == column)
                    .map(|m| m.observed_at)
                    .or_else(|| DateTime::from_timestamp(verdict.timestamp, 0))
                    .unwrap_or_default();
                records.push(verdict_record(&check.asset, kind, &column, at, verdict));
                if verdict.anomaly && o.status != Status::Fail {
                    o.status = Status::Fail;
                    o.message = format!("anomaly: {}", verdict.explanation);
                } else if o.status != Status::Fail {
                    o.message = format!("{} ({})", o.message, verdict.explanation);
                }
                continue;
            }
            let (Some(kind), Some(value)) = (o.metric, o.value) else { continue };
            if o.status == Status::Error {
                continue;
            }
            let column = o.column.clone().unwrap_or_default();
            let mut settings = match kind {
                MetricKind::FreshnessLag => match check.freshness.as_ref().filter(|f| f.auto) {
                    Some(f) => f.tuning.apply(&check.detection),
                    None => continue,
                },
                _ => match check.rule_for(kind, &column).filter(|r| r.auto) {
                    Some(rule) => rule.tuning.apply(&check.detection),
                    None => continue,
                },
            };
            // The newest measurement of this series with the outcome's value (a recounted older
            // bucket may share the value).
            let Some(m) = measurements
                .iter()
                .filter(|m| m.asset == check.asset && m.kind == kind && m.column == column && m.value == value)
                .max_by_key(|m| m.observed_at)
            else {
                continue;
            };
            // A falling uniqueness or distinct ratio (new duplicates) matters as much as a rising one.
            if matches!(kind, MetricKind::Uniqueness | MetricKind::DistinctRatio) && settings.direction.is_none() {
                settings.direction = Some(crate::detect::Direction::Both);
            }
            let period = period_of(check, kind);
            let point = self.point_for(m, measurements, period);
            let Some(verdict) = self.judge(&check.asset, kind, &column, settings, (point, period), m.observed_at).await
            else {
                continue;
            };
            records.push(verdict_record(&check.asset, kind, &column, m.observed_at, &verdict));
            if verdict.anomaly && o.status != Status::Fail {
                o.status = Status::Fail;
                o.message = format!("anomaly: {}", verdict.explanation);
            } else if o.status != Status::Fail {
                o.message = format!("{} ({})", o.message, verdict.explanation);
            }
            o.verdict = Some(verdict);
        }
        if !records.is_empty()
            && let Err(e) = self.store.record_verdicts(&records).await
        {
            tracing::error!(parent: crate::telemetry::spans::parent(), asset = %check.asset, error = %e, "cannot save verdicts");
        }
    }

    /// Judges a profile's value frequencies of a column against the column's earlier profiles
    /// (the trailing week, less what labels and `exclude` take out), then saves them.
    pub(crate) async fn judge_categories(
        &self,
        asset: &AssetId,
        column: &str,
        settings: &Settings,
        counts: &ValueCounts,
        at: DateTime<Utc>,
    ) -> Verdict {
        let kind = MetricKind::CategoryShift;
        let (mut history, previous_anomaly) = self.earlier_profiles(asset, kind, column, settings, at).await;
        history.drain(..history.len().saturating_sub(MAX_BASELINE_FRAMES));
        let frames: Vec<Vec<(String, u64)>> = history.iter().map(|(_, c)| named_frame(c)).collect();
        let verdict = categorical::judge_history(
            &frames,
            &named_frame(counts),
            settings,
            profile_step(&history),
            at.timestamp(),
            previous_anomaly,
        );
        self.save_profile(asset, kind, column, at, counts).await;
        verdict
    }

    /// The frequency tables or samples a column's earlier profiles saved for `kind` in the
    /// trailing week (a shorter `training_window` shortens it), oldest first: profiles inside a
    /// confirmed incident or an `exclude` range left out, and those before the latest
    /// `expected` label (a re-baseline) too; and whether the series' last verdict was an anomaly.
    async fn earlier_profiles(
        &self,
        asset: &AssetId,
        kind: MetricKind,
        column: &str,
        settings: &Settings,
        at: DateTime<Utc>,
    ) -> (Vec<(DateTime<Utc>, ValueCounts)>, bool) {
        let window = settings.training_window.unwrap_or(i64::MAX).min(PROFILE_BASELINE_DAYS * 86_400);
        let since = at - chrono::Duration::seconds(window);
        let history = match self.store.value_count_history(asset, kind, column, since, at).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(parent: crate::telemetry::spans::parent(), asset = %asset, error = %e, "cannot read earlier profiles");
                Vec::new()
            }
        };
        let labels = self.store.labels(asset, kind, column).await.unwrap_or_default();
        let rebaselined =
            labels.iter().filter(|l| l.label == "expected" && l.starts_at <= at).map(|l| l.starts_at).max();
        let frames = history
            .into_iter()
            .filter(|(t, _)| rebaselined.is_none_or(|r| *t >= r))
            .filter(|(t, _)| {
                !labels.iter().any(|l| l.label != "expected" && l.starts_at <= *t && *t < l.ends_at)
                    && !settings.is_excluded(t.timestamp())
            })
            .collect();
        let previous_anomaly =
            self.store.last_verdict(asset, kind, column).await.ok().flatten().is_some_and(|(_, anomaly)| anomaly);
        (frames, previous_anomaly)
    }

    /// Judges a profile's random sample of a numeric column against the samples of the column's
    /// earlier profiles (as [`Agent::judge_categories`] chooses them), then saves it.
    pub(crate) async fn judge_distribution(
        &self,
        asset: &AssetId,
        column: &str,
        settings: &Settings,
        sample: &[f64],
        at: DateTime<Utc>,
    ) -> Verdict {
        let kind = MetricKind::DistributionShift;
        let (mut history, previous_anomaly) = self.earlier_profiles(asset, kind, column, settings, at).await;
        history.drain(..history.len().saturating_sub(MAX_BASELINE_SAMPLES));
        let earlier: Vec<ks::Sample> = history.iter().map(|(_, c)| ks::Sample::from_counts(&sample_pairs(c))).collect();
        let step = profile_step(&history);
        let current = ks::Sample::from_values(sample);
        let verdict = ks::judge(&earlier, &current, settings, step, at.timestamp(), previous_anomaly);
        // Stored as a frequency table: each distinct value (its shortest round-trip text) and how
        // often it was drawn.
        let values = current.counts().iter().map(|(v, n)| (v.to_string(), *n)).collect();
        self.save_profile(asset, kind, column, at, &ValueCounts { values, rest: 0 }).await;
        verdict
    }

    async fn save_profile(
        &self,
        asset: &AssetId,
        kind: MetricKind,
        column: &str,
        at: DateTime<Utc>,
        counts: &ValueCounts,
    ) {
        if let Err(e) = self.store.record_value_counts(asset, kind, column, at, counts).await {
            tracing::error!(parent: crate::telemetry::spans::parent(), asset = %asset, error = %e, "cannot save a column profile");
        }
        // Only the trailing week is ever read again.
        let since = at - chrono::Duration::days(PROFILE_BASELINE_DAYS);
        // Twice what a baseline reads, so that labels and `exclude` ranges still leave a full one.
        let keep = 2 * if kind == MetricKind::DistributionShift { MAX_BASELINE_SAMPLES } else { MAX_BASELINE_FRAMES };
        if let Err(e) = self.store.trim_value_counts(asset, kind, column, since, keep).await {
            tracing::error!(parent: crate::telemetry::spans::parent(), asset = %asset, error = %e, "cannot trim old column profiles");
        }
    }

    /// A detector point, at the start of the measurement's period (see [`period_of`]);
    /// proportions carry their counts when the profile's row count is known.
    fn point_for(&self, m: &Measurement, batch: &[Measurement], period: i64) -> Point {
        let ts = m.observed_at.timestamp() - period;
        // Only the null rate's denominator is the profiled row count.
        if m.kind == MetricKind::NullRate
            && let Some(rows) =
                batch.iter().find(|r| r.kind == MetricKind::ProfiledRows && r.observed_at == m.observed_at)
            && rows.value >= 1.0
        {
            let total = rows.value.round() as u64;
            return Point::rate(ts, (m.value * rows.value).round() as u64, total);
        }
        Point::new(ts, m.value)
    }

    /// Pushes one point through the series' detector (building and warming it on first use;
    /// stored points are moved back by `period`, as the point was). A point at or before the
    /// last judged one is not judged again.
    pub(crate) async fn judge(
        &self,
        asset: &AssetId,
        kind: MetricKind,
        column: &str,
        mut settings: Settings,
        (point, period): (Point, i64),
        at: DateTime<Utc>,
    ) -> Option<Verdict> {
        let key: SeriesKey = (asset.clone(), kind, column.to_string());
        let labels = self.store.labels(asset, kind, column).await.unwrap_or_default();
        settings.labels = labels
            .iter()
            .map(|l| Label {
                range: TimeRange { start: l.starts_at.timestamp(), end: l.ends_at.timestamp() },
                kind: if l.label == "expected" { LabelKind::Expected } else { LabelKind::ConfirmedIncident },
            })
            .collect();
        {
            let mut series = self.detectors.series.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(cached) = series.get_mut(&key)
                && cached.settings == settings
            {
                if point.timestamp <= cached.last_timestamp {
                    return None;
                }
                cached.last_timestamp = point.timestamp;
                return Some(cached.detector.push(point));
            }
        }
        let (mut detector, _) = self.warm((asset, kind, column), &settings, period, point.timestamp, at).await?;
        let verdict = detector.push(point);
        self.detectors
            .series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Cached { detector, last_timestamp: point.timestamp, settings });
        Some(verdict)
    }

    /// A detector fed every stored point of the series before `before` (oldest first, each
    /// moved back by `period`), and the timestamp of the last one.
    async fn warm(
        &self,
        (asset, kind, column): (&AssetId, MetricKind, &str),
        settings: &Settings,
        period: i64,
        before: i64,
        at: DateTime<Utc>,
    ) -> Option<(StreamingDetector, i64)> {
        let window = settings.training_window.unwrap_or(DEFAULT_TRAINING_DAYS * 86_400);
        let since = at - chrono::Duration::seconds(window);
        let history = self.store.history(asset, Some(kind), Some(column), Some(since), WARM_UP_POINTS).await.ok()?;
        let rows: HashMap<i64, f64> = if kind == MetricKind::NullRate {
            self.store
                .history(asset, Some(MetricKind::ProfiledRows), Some(""), Some(since), WARM_UP_POINTS)
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|m| (m.observed_at.timestamp(), m.value))
                .collect()
        } else {
            HashMap::new()
        };
        let mut detector = StreamingDetector::new(class_of(kind), settings.clone()).with_noun(noun(kind, column));
        let mut last = i64::MIN;
        for m in history.iter().filter(|m| m.observed_at.timestamp() - period < before) {
            let stored = m.observed_at.timestamp();
            let ts = stored - period;
            let p = match rows.get(&stored) {
                Some(total) if *total >= 1.0 => Point::rate(ts, (m.value * total).round() as u64, total.round() as u64),
                _ => Point::new(ts, m.value),
            };
            detector.push(p);
            last = ts;
        }
        Some((detector, last))
    }

    /// Judges a freshness lag at `now` without learning from it (the continuous sweep): a copy
    /// of the series' detector sees the synthetic point.
    pub(crate) async fn probe_freshness(
        &self,
        check: &AssetCheck,
        last_update: i64,
        now: DateTime<Utc>,
    ) -> Option<Verdict> {
        let f = check.freshness.as_ref().filter(|f| f.auto)?;
        let mut settings = f.tuning.apply(&check.detection);
        settings.labels.clear();
        let key: SeriesKey = (check.asset.clone(), MetricKind::FreshnessLag, String::new());
        let lag = (now.timestamp() - last_update).max(0) as f64;
        let point = Point::new(now.timestamp(), lag);
        let cached = {
            let series = self.detectors.series.lock().unwrap_or_else(|e| e.into_inner());
            series.get(&key).map(|c| (c.detector.clone(), c.last_timestamp))
        };
        match cached {
            // A copy judges the probe, so the real series never learns from it; a probe at the
            // instant of the last poll is judged a second later.
            Some((mut detector, last)) => {
                let ts = point.timestamp.max(last + 1);
                Some(detector.push(Point::new(ts, (ts - last_update).max(0) as f64)))
            }
            None => {
                // Not judged by a poll yet in this process: warm the series' detector from history
                // and keep it; the probe is judged on a copy, so it never teaches the real one.
                let (detector, last) =
                    self.warm((&check.asset, MetricKind::FreshnessLag, ""), &settings, 0, point.timestamp, now).await?;
                let mut probe = detector.clone();
                self.detectors
                    .series
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, Cached { detector, last_timestamp: last, settings });
                Some(probe.push(point))
            }
        }
    }
}

/// A frequency table as the categorical detector reads it: the rows beyond the listed values
/// compared as one more category.
fn named_frame(counts: &ValueCounts) -> Vec<(String, u64)> {
    let mut frame = counts.values.clone();
    if counts.rest > 0 {
        frame.push((OTHER_VALUES.to_string(), counts.rest));
    }
    frame
}

/// A column's usual interval between profiles (the median gap; a day until there are two), so
/// each verdict gets its share of the daily false-alarm rate.
fn profile_step(history: &[(DateTime<Utc>, ValueCounts)]) -> i64 {
    let mut gaps: Vec<i64> = history.windows(2).map(|w| (w[1].0 - w[0].0).num_seconds()).collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied().filter(|g| *g > 0).unwrap_or(86_400)
}

/// A stored sample read back as `(value, times drawn)`.
fn sample_pairs(counts: &ValueCounts) -> Vec<(f64, u64)> {
    counts.values.iter().filter_map(|(v, n)| Some((v.parse::<f64>().ok()?, *n))).collect()
}

pub(crate) fn verdict_record(
    asset: &AssetId,
    kind: MetricKind,
    column: &str,
    at: DateTime<Utc>,
    v: &Verdict,
) -> VerdictRecord {
    VerdictRecord {
        asset: asset.clone(),
        kind,
        column: column.to_string(),
        observed_at: at,
        value: v.value,
        score: v.score,
        expected_low: v.expected.map(|e| e.low),
        expected_high: v.expected.map(|e| e.high),
        forecast: v.expected.map(|e| e.forecast),
        anomaly: v.anomaly,
        alert: v.alert,
        status: serde_json::to_value(v.status).ok().and_then(|s| s.as_str().map(String::from)).unwrap_or_default(),
        explanation: v.explanation.to_string(),
    }
}
