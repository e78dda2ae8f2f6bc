//! Run the Numenta Anomaly Benchmark through telltale's streaming detector and score it with
//! the published NAB rules.
//!
//! Usage: `nab <path-to-NAB> [--results <detector-dir>...]`
//!
//! `<path-to-NAB>` holds `data/` and `labels/combined_windows.json`. Every series is streamed
//! point by point (each point sees only its past) through `StreamingDetector` with the
//! continuous-metric model and default settings. Printed per profile: the normalised score at
//! NAB's oracle threshold (optimised over the corpus, as NAB does) and at telltale's fixed
//! default sensitivity (a detection is an `alert`), next to the z-score peer baseline. With
//! `--results DIR` (a NAB `results/<detector>` folder with per-file `anomaly_score` columns)
//! those published scores are re-scored as a check of the scorer.
//! With `NAB_DUMP=<dir>` every series' verdicts are written there, one CSV per series
//! (`timestamp,value,score,side,forecast,low,high,alert`), for analysing where points are lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use telltale::detect::hygiene::RepeatSuppressor;
use telltale::detect::nab::{self, LabelledSeries, PROFILES};
use telltale::detect::zscore::ZScoreDetector;
use telltale::detect::{MetricClass, Point, Settings, StreamingDetector};

/// Seconds since 1970 of "YYYY-MM-DD HH:MM:SS[.ffffff]" read as UTC.
fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim().trim_matches('"');
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut date_parts = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, d) = (date_parts.next()?.ok()?, date_parts.next()?.ok()?, date_parts.next()?.ok()?);
    let time = time.split('.').next()?;
    let mut time_parts = time.split(':').map(|p| p.parse::<i64>());
    let (hh, mm, ss) =
        (time_parts.next()?.ok()?, time_parts.next().unwrap_or(Ok(0)).ok()?, time_parts.next().unwrap_or(Ok(0)).ok()?);
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3_600 + mm * 60 + ss)
}

/// (timestamps, column values) of a CSV with a header, picking `column` by name.
fn read_csv(path: &Path, column: &str) -> Result<(Vec<i64>, Vec<f64>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or_else(|| format!("{}: empty", path.display()))?.split(',').collect();
    let index = header
        .iter()
        .position(|h| h.trim() == column)
        .ok_or_else(|| format!("{}: no column {column}", path.display()))?;
    let (mut times, mut values) = (Vec::new(), Vec::new());
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let time = parse_timestamp(fields[0]).ok_or_else(|| format!("bad time {line}"))?;
        let value: f64 =
            fields.get(index).and_then(|v| v.trim().parse().ok()).ok_or_else(|| format!("bad value {line}"))?;
        times.push(time);
        values.push(value);
    }
    Ok((times, values))
}

struct Dataset {
    name: String,
    timestamps: Vec<i64>,
    values: Vec<f64>,
    windows: Vec<(i64, i64)>,
}

fn load(root: &Path) -> Result<Vec<Dataset>, String> {
    let labels_path = root.join("labels/combined_windows.json");
    let labels: BTreeMap<String, Vec<[String; 2]>> = serde_json::from_str(
        &std::fs::read_to_string(&labels_path).map_err(|e| format!("{}: {e}", labels_path.display()))?,
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, windows) in labels {
        let (timestamps, values) = read_csv(&root.join("data").join(&name), "value")?;
        let windows = windows
            .iter()
            .map(|[a, b]| Ok((parse_timestamp(a).ok_or("bad window")?, parse_timestamp(b).ok_or("bad window")?)))
            .collect::<Result<Vec<_>, &str>>()?;
        out.push(Dataset { name, timestamps, values, windows });
    }
    Ok(out)
}

fn corpus(datasets: &[Dataset], scores: &[Vec<f64>]) -> Vec<LabelledSeries> {
    datasets
        .iter()
        .zip(scores)
        .map(|(d, s)| LabelledSeries {
            name: d.name.clone(),
            timestamps: d.timestamps.clone(),
            scores: s.clone(),
            windows: d.windows.clone(),
            floors: Vec::new(),
        })
        .collect()
}

/// Print oracle and fixed-threshold normalised scores of one detector for every profile.
fn report(label: &str, oracle_scores: &[LabelledSeries], fixed: Option<(&[LabelledSeries], f64)>) {
    for profile in PROFILES {
        let null = nab::null_score(oracle_scores, profile.costs);
        let perfect = nab::perfect_score(oracle_scores, profile.costs);
        let best = nab::optimize_threshold(oracle_scores, profile.costs);
        let mut line = format!(
            "{label:<28} {:<20} oracle {:>6.1} (threshold {:.4}, tp {}, fp {}, missed {})",
            profile.name,
            nab::normalize(best.score, null, perfect),
            best.threshold,
            best.true_positives,
            best.false_positives,
            best.missed_windows
        );
        if let Some((corpus, threshold)) = fixed {
            let at = nab::score_at(corpus, profile.costs, threshold);
            line.push_str(&format!(
                " | default {:>6.1} (fp {}, missed {})",
                nab::normalize(at.score, null, perfect),
                at.false_positives,
                at.missed_windows
            ));
        }
        println!("{line}");
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(args.first().ok_or("usage: nab <path-to-NAB> [--results DIR]...")?);
    let datasets = load(&root)?;
    let points: usize = datasets.iter().map(|d| d.values.len()).sum();
    let windows: usize = datasets.iter().map(|d| d.windows.len()).sum();
    println!("NAB: {} series, {points} points, {windows} windows", datasets.len());

    // telltale: raw calibrated scores with one-per-excursion hygiene for the oracle sweep,
    // and the daemon's own alert flags for the default sensitivity.
    let dump_dir = std::env::var("NAB_DUMP").ok();
    let started = Instant::now();
    let mut ranked = Vec::new();
    let mut excursions = Vec::new();
    let mut alerts = Vec::new();
    let mut per_series_micros = Vec::new();
    for dataset in &datasets {
        let series_started = Instant::now();
        let mut detector = StreamingDetector::new(MetricClass::Continuous, Settings::default());
        let divisor: usize = std::env::var("NAB_SPAN_DIV").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
        let span = (dataset.values.len() / divisor).max(10);
        let mut suppressor = RepeatSuppressor::new(span);
        let mut scores = Vec::with_capacity(dataset.values.len());
        let (mut raw_scores, mut floors) =
            (Vec::with_capacity(dataset.values.len()), Vec::with_capacity(dataset.values.len()));
        let mut flags = Vec::with_capacity(dataset.values.len());
        let mut dump = String::new();
        for (&timestamp, &value) in dataset.timestamps.iter().zip(&dataset.values) {
            let verdict = detector.push(Point::new(timestamp, value));
            let floor = suppressor.push(verdict.score);
            scores.push(if verdict.score > floor { verdict.score } else { 0.0 });
            raw_scores.push(verdict.score);
            floors.push(floor);
            flags.push(if verdict.alert { 1.0 } else { 0.0 });
            if dump_dir.is_some() {
                let sign = match verdict.direction {
                    Some(telltale::detect::Deviation::Above) => 1,
                    Some(telltale::detect::Deviation::Below) => -1,
                    None => 0,
                };
                let (f, lo, hi) =
                    verdict.expected.map_or((f64::NAN, f64::NAN, f64::NAN), |e| (e.forecast, e.low, e.high));
                dump.push_str(&format!(
                    "{timestamp},{value},{},{sign},{f},{lo},{hi},{}\n",
                    verdict.score,
                    u8::from(verdict.alert)
                ));
            }
        }
        if let Some(dir) = &dump_dir {
            let path = PathBuf::from(dir).join(dataset.name.replace('/', "__"));
            std::fs::write(&path, dump).map_err(|e| e.to_string())?;
        }
        per_series_micros.push((series_started.elapsed().as_secs_f64() * 1e6, dataset.values.len()));
        ranked.push(scores);
        excursions.push((raw_scores, floors));
        alerts.push(flags);
    }
    let elapsed = started.elapsed();
    let ranked = corpus(&datasets, &ranked);
    let alerts = corpus(&datasets, &alerts);
    report("telltale", &ranked, Some((&alerts, 0.5)));
    // The same verdicts, a detection at a threshold only when no score of the span before it
    // reached that threshold (one alert per excursion at every threshold, as the daemon
    // alerts), instead of NAB's score column (where an excursion that grows counts again).
    let once: Vec<LabelledSeries> = datasets
        .iter()
        .zip(excursions)
        .map(|(d, (scores, floors))| LabelledSeries {
            name: d.name.clone(),
            timestamps: d.timestamps.clone(),
            scores,
            windows: d.windows.clone(),
            floors,
        })
        .collect();
    report("telltale, once per excursion", &once, Some((&alerts, 0.5)));

    // Peer baseline: z-score with the point in its own 14-day window, threshold 3.
    let mut z_scores = Vec::new();
    for dataset in &datasets {
        let mut detector = ZScoreDetector::new();
        z_scores.push(
            dataset
                .timestamps
                .iter()
                .zip(&dataset.values)
                .map(|(&t, &v)| detector.push(Point::new(t, v)).z)
                .collect::<Vec<f64>>(),
        );
    }
    let z_corpus = corpus(&datasets, &z_scores);
    report("z-score peer (|z|, z>3)", &z_corpus, Some((&z_corpus, 3.0 + 1e-12)));

    // Sanity: the null detector scores 0 everywhere.
    let zeros: Vec<Vec<f64>> = datasets.iter().map(|d| vec![0.0; d.values.len()]).collect();
    let null_corpus = corpus(&datasets, &zeros);
    report("null (sanity: 0)", &null_corpus, Some((&null_corpus, 0.5)));

    // Optional: re-score published result files.
    let mut iter = args.iter().skip(1);
    while let Some(flag) = iter.next() {
        if flag != "--results" {
            continue;
        }
        let dir = PathBuf::from(iter.next().ok_or("--results needs a folder")?);
        let detector_name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("detector").to_string();
        let mut scores = Vec::new();
        for dataset in &datasets {
            let (folder, file) = dataset.name.split_once('/').ok_or("bad name")?;
            let path = dir.join(folder).join(format!("{detector_name}_{file}"));
            let (_, column) = read_csv(&path, "anomaly_score")?;
            scores.push(column);
        }
        report(&format!("published {detector_name}"), &corpus(&datasets, &scores), None);
    }

    let total_micros: f64 = per_series_micros.iter().map(|(m, _)| m).sum();
    let mut per_2000: Vec<f64> = per_series_micros.iter().map(|(m, n)| m / *n as f64 * 2_000.0).collect();
    per_2000.sort_by(f64::total_cmp);
    println!(
        "timing: {:.1} ms for {points} points ({:.2} µs/point); per 2 000 points: median {:.0} µs, max {:.0} µs",
        elapsed.as_secs_f64() * 1e3,
        total_micros / points as f64,
        per_2000[per_2000.len() / 2],
        per_2000[per_2000.len() - 1]
    );
    Ok(())
}
