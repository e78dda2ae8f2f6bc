//! Labelled warehouse scenarios for benchmarking detectors: a seeded, reproducible warehouse of
//! tables with realistic rhythms and noise, benign surprises, and labelled incidents.
//!
//! Every table is loaded on a schedule (hourly, possibly only during business hours; daily at
//! HH:MM; weekday-only daily; irregular), with trend, weekly and daily seasonality, holidays
//! with catch-up, multiplicative and count noise, low/zero-heavy counts, late-arriving rows and
//! schedule jitter. On top of that come benign windows (holidays with their catch-up day,
//! legitimate level shifts, column additions) and labelled incidents of every kind users
//! suffer. Each table yields the series a monitoring agent measures: rows added per bucket,
//! freshness lag at hourly polls, null rate with counts, the mean of a numeric column,
//! categorical frequencies and schema snapshots.
//!
//! Pure and deterministic: the only randomness is [`Rng`] (SplitMix64) seeded by the caller.

use super::Point;
use super::calendar::{DAY, HOUR, WEEK};
use super::count_noise::CountNoise;
use super::schema::Column;
use super::settings::{Sensitivity, TimeRange};
use super::stats::{normal_sf, normal_upper_quantile};

/// Monday 2024-01-01 00:00 UTC: the first instant of every generated warehouse.
pub const EPOCH: i64 = 1_704_067_200;

/// Minute past the hour at which every table is polled (freshness, schema).
pub const POLL_OFFSET: i64 = 30 * 60;

/// Small seeded PRNG (SplitMix64): reproducible, no dependency, good enough for simulation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    /// A generator derived from this seed and a stream number (independent sub-streams).
    pub fn fork(seed: u64, stream: u64) -> Self {
        let mut base = Self::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03));
        base.next_u64();
        base
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [low, high).
    pub fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Uniform integer in [low, high).
    pub fn int(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        low + (self.next_u64() % (high - low) as u64) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Log-uniform in [low, high).
    pub fn log_range(&mut self, low: f64, high: f64) -> f64 {
        self.range(low.ln(), high.ln()).exp()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Poisson with mean `mean` (inversion for small means, normal approximation above 50).
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 50.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let limit = (-mean).exp();
        let mut product = self.uniform();
        let mut count = 0;
        while product > limit {
            product *= self.uniform();
            count += 1;
        }
        count
    }

    /// Binomial(n, p) (exact for small n, normal approximation for large n·p·(1-p)).
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        let p = p.clamp(0.0, 1.0);
        if n == 0 || p == 0.0 {
            return 0;
        }
        if p == 1.0 {
            return n;
        }
        let mean = n as f64 * p;
        let variance = mean * (1.0 - p);
        if variance > 25.0 {
            return (mean + variance.sqrt() * self.normal()).round().clamp(0.0, n as f64) as u64;
        }
        if n <= 64 {
            return (0..n).filter(|_| self.chance(p)).count() as u64;
        }
        // Rare events in a large batch: Poisson with the same mean (capped at n).
        if p < 0.5 { self.poisson(mean).min(n) } else { n - self.poisson(n as f64 * (1.0 - p)).min(n) }
    }
}

/// How a table is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Schedule {
    /// Every hour (some only during business hours).
    Hourly,
    /// Once a day at a fixed time.
    Daily,
    /// Once a day at a fixed time, Monday to Friday.
    WeekdayDaily,
    /// At irregular gaps of a few hours.
    Irregular,
}

impl Schedule {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Hourly => "hourly",
            Schedule::Daily => "daily",
            Schedule::WeekdayDaily => "weekday-only",
            Schedule::Irregular => "irregular",
        }
    }
}

/// Which monitor measures a series (and which monitors may detect an incident).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Monitor {
    /// Rows added per bucket.
    Volume,
    /// Seconds since the last load, polled hourly.
    Freshness,
    /// Null rate of a column per bucket, with counts.
    NullRate,
    /// Mean of a numeric column per bucket.
    Mean,
    /// Frequencies of a categorical column per bucket.
    Categorical,
    /// Column list, polled hourly.
    Schema,
}

impl Monitor {
    /// Every monitor.
    pub const ALL: [Monitor; 6] =
        [Monitor::Volume, Monitor::Freshness, Monitor::NullRate, Monitor::Mean, Monitor::Categorical, Monitor::Schema];

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Monitor::Volume => "volume",
            Monitor::Freshness => "freshness",
            Monitor::NullRate => "null rate",
            Monitor::Mean => "mean",
            Monitor::Categorical => "categorical",
            Monitor::Schema => "schema",
        }
    }
}

/// Kinds of labelled incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IncidentKind {
    /// A scheduled load never happened.
    MissedLoad,
    /// A load came hours late (rows caught up then).
    LateLoad,
    /// The source stopped delivering for hours or days.
    StaleSource,
    /// A load delivered only 70 % of its rows (30 % missing).
    PartialLoad,
    /// A load was applied twice.
    DuplicateLoad,
    /// Ten times the usual rows in one bucket.
    VolumeSpike,
    /// Null rate up by ten percentage points.
    NullSpike,
    /// The mean of a numeric column moved (unit change ×100, ×1000, ÷100, or +30–60 %).
    MeanShift,
    /// A frequent category vanished.
    CategoryDisappeared,
    /// One category's share tripled.
    SkewedDistribution,
    /// Every category value changed spelling (format change).
    FormatChange,
    /// A column was dropped.
    ColumnDropped,
    /// A column was renamed.
    ColumnRenamed,
    /// A column changed type.
    ColumnRetyped,
    /// The load schedule moved by several hours for a few days (wrong time zone).
    TimezoneShift,
}

impl IncidentKind {
    /// Every kind, in report order.
    pub const ALL: [IncidentKind; 15] = [
        IncidentKind::MissedLoad,
        IncidentKind::LateLoad,
        IncidentKind::StaleSource,
        IncidentKind::PartialLoad,
        IncidentKind::DuplicateLoad,
        IncidentKind::VolumeSpike,
        IncidentKind::NullSpike,
        IncidentKind::MeanShift,
        IncidentKind::CategoryDisappeared,
        IncidentKind::SkewedDistribution,
        IncidentKind::FormatChange,
        IncidentKind::ColumnDropped,
        IncidentKind::ColumnRenamed,
        IncidentKind::ColumnRetyped,
        IncidentKind::TimezoneShift,
    ];

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            IncidentKind::MissedLoad => "missed load",
            IncidentKind::LateLoad => "late load",
            IncidentKind::StaleSource => "stale source",
            IncidentKind::PartialLoad => "partial load (-30%)",
            IncidentKind::DuplicateLoad => "duplicate load (x2)",
            IncidentKind::VolumeSpike => "volume spike (x10)",
            IncidentKind::NullSpike => "null spike (+10 pts)",
            IncidentKind::MeanShift => "mean/unit shift",
            IncidentKind::CategoryDisappeared => "category disappeared",
            IncidentKind::SkewedDistribution => "skewed distribution",
            IncidentKind::FormatChange => "value format change",
            IncidentKind::ColumnDropped => "column dropped",
            IncidentKind::ColumnRenamed => "column renamed",
            IncidentKind::ColumnRetyped => "column retyped",
            IncidentKind::TimezoneShift => "timezone shift",
        }
    }

    /// The monitors whose alerts count as detecting this incident.
    pub fn monitors(self) -> &'static [Monitor] {
        match self {
            IncidentKind::MissedLoad
            | IncidentKind::LateLoad
            | IncidentKind::StaleSource
            | IncidentKind::TimezoneShift => &[Monitor::Volume, Monitor::Freshness],
            IncidentKind::PartialLoad | IncidentKind::DuplicateLoad | IncidentKind::VolumeSpike => &[Monitor::Volume],
            IncidentKind::NullSpike => &[Monitor::NullRate],
            IncidentKind::MeanShift => &[Monitor::Mean],
            IncidentKind::CategoryDisappeared | IncidentKind::SkewedDistribution | IncidentKind::FormatChange => {
                &[Monitor::Categorical]
            }
            IncidentKind::ColumnDropped | IncidentKind::ColumnRenamed | IncidentKind::ColumnRetyped => {
                &[Monitor::Schema]
            }
        }
    }

    /// Whether this is a schema change.
    pub fn is_schema(self) -> bool {
        matches!(self, IncidentKind::ColumnDropped | IncidentKind::ColumnRenamed | IncidentKind::ColumnRetyped)
    }
}

/// A labelled incident on one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// What happened.
    pub kind: IncidentKind,
    /// First affected instant.
    pub start: i64,
    /// First instant after the incident (the data is back to normal from here).
    pub end: i64,
    /// The earliest moment a perfect detector could have known.
    pub detectable_at: i64,
    /// Size of the effect relative to the series' own noise (in noise sigmas; 99 for
    /// deterministic changes such as schema changes).
    pub severity: f64,
    /// Days of history the table had when the incident started.
    pub history_days: f64,
    /// For a volume incident (missed, partial or duplicate load, volume spike): the chance that
    /// a detector knowing the bucket's true distribution flags it at the default `medium`
    /// sensitivity (see `TableGenerator::volume_oracle`); the ceiling any detector can reach on
    /// it. `None` for other kinds.
    pub oracle: Option<f64>,
}

/// Kinds of benign (legitimate but unusual) windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BenignKind {
    /// A public holiday (excluded in the settings) and its catch-up day.
    Holiday,
    /// A legitimate, lasting change of volume (step or ramp).
    LevelShift,
    /// A column was added (non-breaking).
    ColumnAdded,
}

/// A benign window on one table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenignWindow {
    /// What happened.
    pub kind: BenignKind,
    /// First instant of the window.
    pub start: i64,
    /// First instant after it.
    pub end: i64,
}

/// Value frequencies of a categorical column in one bucket: (category index, rows).
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryFrame {
    /// Bucket start.
    pub timestamp: i64,
    /// Rows per category, indexing [`Table::category_names`].
    pub counts: Vec<(u16, u64)>,
}

/// One generated table with its measured series and labels.
#[derive(Debug, Clone)]
pub struct Table {
    /// `t017_hourly`.
    pub name: String,
    /// Load schedule.
    pub schedule: Schedule,
    /// Volume bucket in seconds (one hour for hourly tables, one day otherwise): the unit of
    /// detection delay.
    pub bucket: i64,
    /// Whether counts are low and zero-heavy.
    pub low_count: bool,
    /// First instant of the history.
    pub start: i64,
    /// First instant after it.
    pub end: i64,
    /// Rows added per bucket (timestamp = bucket start; measured at bucket end).
    pub volume: Vec<Point>,
    /// Seconds since the last load with rows, polled hourly at :30.
    pub freshness: Vec<Point>,
    /// Null rate of a column per non-empty bucket, with counts.
    pub nulls: Vec<Point>,
    /// Mean of a numeric column per non-empty bucket.
    pub mean: Vec<Point>,
    /// Category names (a format change adds new spellings).
    pub category_names: Vec<String>,
    /// Categorical frequencies per non-empty bucket.
    pub categories: Vec<CategoryFrame>,
    /// Schema snapshots: the initial one, then one at every poll that saw a change.
    pub schema: Vec<(i64, Vec<Column>)>,
    /// Labelled incidents.
    pub incidents: Vec<Incident>,
    /// Benign windows.
    pub benign: Vec<BenignWindow>,
    /// Ranges a user configured as excluded (holidays).
    pub excluded: Vec<TimeRange>,
}

impl Table {
    /// Days of history.
    pub fn days(&self) -> f64 {
        (self.end - self.start) as f64 / DAY as f64
    }
}

/// Size of a generated warehouse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScenarioConfig {
    /// Number of tables.
    pub tables: usize,
    /// Days of history per table.
    pub days: i64,
    /// Seed of everything random.
    pub seed: u64,
    /// Mean number of incidents per table.
    pub incidents_per_table: f64,
}

impl ScenarioConfig {
    /// The standard benchmark warehouse: 200 tables × 60 days.
    pub fn standard(seed: u64) -> Self {
        Self { tables: 200, days: 60, seed, incidents_per_table: 1.6 }
    }
}

/// Generate a warehouse.
pub fn generate(config: &ScenarioConfig) -> Vec<Table> {
    let mut rng = Rng::fork(config.seed, 0);
    // Two weekday public holidays shared by every table, after the first two weeks.
    let mut holidays: Vec<i64> = Vec::new();
    for _attempt in 0..200 {
        if holidays.len() == 2 || config.days < 28 {
            break;
        }
        let day = rng.int(15, config.days - 4);
        let weekday = (day % 7) as usize; // EPOCH is a Monday
        if weekday < 5 && holidays.iter().all(|h| (h - day).abs() > 7) {
            holidays.push(day);
        }
    }
    holidays.sort_unstable();
    (0..config.tables)
        .map(|index| {
            let mut rng = Rng::fork(config.seed, index as u64 + 1);
            TableGenerator::draw(index, config, &holidays, &mut rng).build(&mut rng)
        })
        .collect()
}

/// How a load is changed by an incident or a benign event.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Load {
    /// When it lands.
    time: i64,
    /// Rows it was meant to deliver (before noise).
    expected: f64,
    /// Multiplier applied by incidents (partial, duplicate, spike).
    factor: f64,
    /// Dropped (missed, stale, holiday of a weekday-only table).
    dropped: bool,
}

/// Per-bucket distortions of the column series.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ColumnEffect {
    NullSpike,
    Mean(f64),
    Disappear(usize),
    Skew(usize),
    Format,
}

struct TableGenerator<'a> {
    index: usize,
    config: &'a ScenarioConfig,
    holidays: &'a [i64],
    schedule: Schedule,
    bucket: i64,
    low_count: bool,
    /// Rows per load (or per hour for low-count tables) at the start.
    level: f64,
    /// Multiplicative log-noise of rows per load.
    noise: f64,
    /// Log growth over the whole history.
    growth: f64,
    weekend: f64,
    daily_amplitude: f64,
    peak_hour: f64,
    business_hours: Option<(i64, i64)>,
    /// Minute of the hour (hourly) or second of the day (daily) of the load.
    load_offset: i64,
    jitter: f64,
    late_rows: f64,
    holiday_catch_up: f64,
    /// Legitimate level change: (start, ramp length, log factor).
    level_shift: Option<(i64, i64, f64)>,
    null_rate: f64,
    null_dispersion: f64,
    mean: f64,
    mean_cv: f64,
    mean_drift: f64,
    mean_daily: f64,
    shares: Vec<f64>,
    columns: Vec<Column>,
}

const TYPES: [&str; 5] = ["bigint", "text", "numeric(12,2)", "timestamp", "boolean"];

impl<'a> TableGenerator<'a> {
    fn draw(index: usize, config: &'a ScenarioConfig, holidays: &'a [i64], rng: &mut Rng) -> Self {
        let roll = rng.uniform();
        let schedule = if roll < 0.35 {
            Schedule::Hourly
        } else if roll < 0.65 {
            Schedule::Daily
        } else if roll < 0.85 {
            Schedule::WeekdayDaily
        } else {
            Schedule::Irregular
        };
        let bucket = if schedule == Schedule::Hourly { HOUR } else { DAY };
        let low_count = schedule == Schedule::Hourly && rng.chance(0.2);
        let level = if low_count { rng.log_range(0.3, 6.0) } else { rng.log_range(50.0, 2e6) };
        let noise_roll = rng.uniform();
        let noise = if noise_roll < 0.7 {
            rng.range(0.02, 0.08)
        } else if noise_roll < 0.9 {
            rng.range(0.08, 0.15)
        } else {
            rng.range(0.15, 0.3)
        };
        let weekend = if schedule == Schedule::WeekdayDaily || rng.chance(0.4) { 1.0 } else { rng.range(0.2, 0.95) };
        let business_hours =
            (schedule == Schedule::Hourly && rng.chance(0.25)).then(|| (rng.int(6, 9), rng.int(18, 22)));
        let load_offset = match schedule {
            Schedule::Hourly => rng.int(2, 45) * 60,
            _ => rng.int(0, 24) * HOUR + rng.int(0, 12) * 5 * 60,
        };
        let jitter = match schedule {
            Schedule::Hourly => rng.range(30.0, 300.0),
            _ => rng.range(120.0, 1_800.0),
        };
        let level_shift = rng.chance(0.15).then(|| {
            let start = EPOCH + rng.int(12, config.days - 5) * DAY + rng.int(0, 24) * HOUR;
            let ramp = if rng.chance(0.5) { 0 } else { rng.int(2, 7) * DAY };
            let factor = if rng.chance(0.7) { rng.range(1.4, 2.5) } else { rng.range(0.4, 0.7) };
            (start, ramp, factor.ln())
        });
        let null_roll = rng.uniform();
        let null_rate = if null_roll < 0.4 {
            0.0
        } else if null_roll < 0.8 {
            rng.log_range(0.001, 0.05)
        } else {
            rng.range(0.05, 0.3)
        };
        let categories = rng.int(3, 13) as usize;
        let mut shares: Vec<f64> = (0..categories).map(|_| -rng.uniform().max(1e-9).ln() + 0.02).collect();
        let total: f64 = shares.iter().sum();
        shares.iter_mut().for_each(|s| *s /= total);
        let column_count = rng.int(5, 25) as usize;
        let columns = (0..column_count)
            .map(|i| {
                let data_type = if i == 0 { "bigint" } else { TYPES[rng.int(0, TYPES.len() as i64) as usize] };
                Column::new(format!("col_{i}"), data_type, i != 0)
            })
            .collect();
        Self {
            index,
            config,
            holidays,
            schedule,
            bucket,
            low_count,
            level,
            noise,
            growth: rng.range(-0.3, 0.6),
            weekend,
            daily_amplitude: if schedule == Schedule::Hourly { rng.range(0.0, 0.8) } else { 0.0 },
            peak_hour: rng.range(8.0, 20.0),
            business_hours,
            load_offset,
            jitter,
            late_rows: if rng.chance(0.3) { rng.range(0.01, 0.1) } else { 0.0 },
            holiday_catch_up: if rng.chance(0.5) { rng.range(0.3, 0.8) } else { 0.0 },
            level_shift,
            null_rate,
            null_dispersion: rng.range(0.0, 0.3),
            mean: rng.log_range(1.0, 1e4),
            mean_cv: rng.range(0.2, 2.0),
            mean_drift: rng.range(0.002, 0.03),
            mean_daily: if schedule == Schedule::Hourly { rng.range(0.0, 0.1) } else { 0.0 },
            shares,
            columns,
        }
    }

    fn start(&self) -> i64 {
        EPOCH
    }

    fn end(&self) -> i64 {
        EPOCH + self.config.days * DAY
    }

    fn is_holiday(&self, time: i64) -> bool {
        let day = (time - EPOCH).div_euclid(DAY);
        self.holidays.contains(&day)
    }

    fn is_catch_up(&self, time: i64) -> bool {
        let day = (time - EPOCH).div_euclid(DAY);
        self.holidays.contains(&(day - 1))
    }

    fn weekday(time: i64) -> usize {
        ((time - EPOCH).div_euclid(DAY) % 7) as usize
    }

    /// Seasonal × trend × legitimate-shift factor of the expected rows at `time`.
    fn expected_factor(&self, time: i64) -> f64 {
        let progress = (time - self.start()) as f64 / (self.end() - self.start()) as f64;
        let mut log = self.growth * progress;
        if Self::weekday(time) >= 5 {
            log += self.weekend.ln();
        }
        if self.daily_amplitude > 0.0 {
            let hour = ((time - EPOCH).rem_euclid(DAY)) as f64 / HOUR as f64;
            log += (1.0 + self.daily_amplitude * ((hour - self.peak_hour) / 24.0 * std::f64::consts::TAU).cos()).ln();
        }
        if let Some((start, ramp, factor)) = self.level_shift
            && time >= start
        {
            let share = if ramp == 0 { 1.0 } else { ((time - start) as f64 / ramp as f64).min(1.0) };
            log += factor * share;
        }
        log.exp()
    }

    fn in_business_hours(&self, time: i64) -> bool {
        match self.business_hours {
            None => true,
            Some((from, to)) => {
                let hour = (time - EPOCH).rem_euclid(DAY) / HOUR;
                (from..to).contains(&hour)
            }
        }
    }

    /// Scheduled loads before incidents, with jitter.
    fn scheduled_loads(&self, rng: &mut Rng) -> Vec<Load> {
        let mut loads = Vec::new();
        // A week of loads before the history starts: the table existed before monitoring did,
        // so the first polls see a real last update.
        let (start, end) = (self.start() - WEEK, self.end());
        let mut push = |time: i64, expected: f64, rng: &mut Rng, jitter: f64| {
            let time = time + (jitter * rng.normal()).round() as i64;
            loads.push(Load { time, expected, factor: 1.0, dropped: false });
        };
        match self.schedule {
            Schedule::Hourly => {
                let mut hour = start;
                while hour < end {
                    if self.in_business_hours(hour) {
                        let scheduled = hour + self.load_offset;
                        let jitter = self.jitter.min((self.load_offset.min(HOUR - self.load_offset) / 3) as f64);
                        push(scheduled, self.level * self.expected_factor(hour), rng, jitter);
                    }
                    hour += HOUR;
                }
            }
            Schedule::Daily | Schedule::WeekdayDaily => {
                let mut day = start;
                while day < end {
                    if self.schedule == Schedule::Daily || Self::weekday(day) < 5 {
                        let scheduled = day + self.load_offset;
                        // Loads near midnight stay on their day.
                        let room = self.load_offset.min(DAY - self.load_offset) as f64 / 3.0;
                        push(scheduled, self.level * self.expected_factor(day), rng, self.jitter.min(room));
                    }
                    day += DAY;
                }
            }
            Schedule::Irregular => {
                let mean_gap = (self.load_offset % (6 * HOUR)).max(2 * HOUR) as f64;
                let mut time = start + rng.int(0, HOUR);
                while time < end {
                    let day = time - (time - EPOCH).rem_euclid(DAY);
                    // Rows per load scale with the gap so daily totals stay about `level`.
                    let gap = (mean_gap * rng.range(0.3, 1.7)) as i64;
                    let expected = self.level * self.expected_factor(day) * gap as f64 / DAY as f64;
                    loads.push(Load { time, expected, factor: 1.0, dropped: false });
                    time += gap.max(20 * 60);
                }
            }
        }
        loads
    }

    fn build(self, rng: &mut Rng) -> Table {
        let mut loads = self.scheduled_loads(rng);
        let mut incidents: Vec<Incident> = Vec::new();
        let mut benign: Vec<BenignWindow> = Vec::new();
        let mut excluded = Vec::new();
        let mut column_effects: Vec<(i64, i64, ColumnEffect)> = Vec::new();
        let mut schema_events: Vec<(i64, SchemaEvent)> = Vec::new();

        // Holidays: the table behaves as on a weekend day (weekday-only loads skip), the next
        // day may catch up; the user excluded the holiday itself.
        for &day in self.holidays {
            let start = EPOCH + day * DAY;
            excluded.push(TimeRange { start, end: start + DAY });
            benign.push(BenignWindow { kind: BenignKind::Holiday, start, end: start + 2 * DAY });
        }
        for load in &mut loads {
            if self.is_holiday(load.time) {
                if matches!(self.schedule, Schedule::WeekdayDaily) {
                    load.dropped = true;
                } else {
                    load.factor *= self.weekend.min(0.5);
                }
            } else if self.is_catch_up(load.time) {
                load.factor *= 1.0 + self.holiday_catch_up;
            }
        }
        if let Some((start, ramp, _)) = self.level_shift {
            benign.push(BenignWindow { kind: BenignKind::LevelShift, start, end: start + ramp + 3 * DAY });
        }
        if rng.chance(0.2) {
            let at = EPOCH + rng.int(3, self.config.days - 1) * DAY + rng.int(0, 24) * HOUR + rng.int(0, 60) * 60;
            schema_events.push((at, SchemaEvent::Add));
            benign.push(BenignWindow { kind: BenignKind::ColumnAdded, start: at, end: at + 2 * HOUR });
        }

        // Incidents, on days away from each other and from benign windows.
        let count = rng.poisson(self.config.incidents_per_table) as usize;
        let mut busy: Vec<(i64, i64)> = benign.iter().map(|w| (w.start - DAY, w.end + DAY)).collect();
        for _ in 0..count {
            let kinds = self.applicable_kinds();
            let kind = kinds[rng.int(0, kinds.len() as i64) as usize];
            for _attempt in 0..20 {
                let day = rng.int(3, self.config.days - 3);
                let day_start = EPOCH + day * DAY;
                if busy.iter().any(|&(a, b)| day_start + DAY > a - 2 * DAY && day_start < b + 2 * DAY) {
                    continue;
                }
                if let Some(incident) =
                    self.inject(kind, day_start, rng, &mut loads, &mut column_effects, &mut schema_events)
                {
                    busy.push((incident.start, incident.end));
                    incidents.push(incident);
                    break;
                }
            }
        }
        incidents.sort_by_key(|i| i.start);

        // Rows per load with noise, late rows travelling with the next load.
        let mut delivered: Vec<(i64, u64)> = Vec::with_capacity(loads.len());
        loads.sort_by_key(|l| l.time);
        let mut carry = 0.0;
        for load in &loads {
            if load.dropped {
                continue;
            }
            let expected = load.expected * load.factor;
            let noisy = if self.low_count {
                rng.poisson(expected) as f64
            } else {
                let sigma = self.noise;
                let multiplier = (sigma * rng.normal() - sigma * sigma / 2.0).exp();
                rng.poisson(expected * multiplier) as f64
            };
            let late = (noisy * self.late_rows * rng.uniform()).round();
            let rows = (noisy - late + carry).max(0.0);
            carry = late;
            delivered.push((load.time, rows as u64));
        }

        let (start, end) = (self.start(), self.end());
        let buckets = ((end - start) / self.bucket) as usize;
        let mut rows = vec![0u64; buckets];
        for &(time, n) in &delivered {
            if time >= start && time < end {
                rows[((time - start) / self.bucket) as usize] += n;
            }
        }
        let volume: Vec<Point> =
            rows.iter().enumerate().map(|(b, &n)| Point::new(start + b as i64 * self.bucket, n as f64)).collect();

        // Freshness: hourly polls of the time since the last load that brought rows.
        let mut freshness = Vec::with_capacity(((end - start) / HOUR) as usize);
        let mut next = 0;
        let mut last_update = start - WEEK;
        let mut poll = start + POLL_OFFSET;
        while poll < end {
            while next < delivered.len() && delivered[next].0 <= poll {
                if delivered[next].1 > 0 {
                    last_update = delivered[next].0;
                }
                next += 1;
            }
            freshness.push(Point::new(poll, (poll - last_update) as f64));
            poll += HOUR;
        }

        let (nulls, mean, category_names, categories) = self.columns_series(&rows, &column_effects, rng);
        let schema = self.schema_series(&schema_events);
        Table {
            name: format!("t{:03}_{}", self.index, self.schedule.name()),
            schedule: self.schedule,
            bucket: self.bucket,
            low_count: self.low_count,
            start,
            end,
            volume,
            freshness,
            nulls,
            mean,
            category_names,
            categories,
            schema,
            incidents,
            benign,
            excluded,
        }
    }

    fn applicable_kinds(&self) -> Vec<IncidentKind> {
        use IncidentKind::*;
        let mut kinds = vec![StaleSource, VolumeSpike, ColumnDropped, ColumnRenamed, ColumnRetyped];
        if self.schedule != Schedule::Irregular {
            kinds.extend([MissedLoad, LateLoad, TimezoneShift]);
        }
        if !self.low_count {
            kinds.extend([
                PartialLoad,
                DuplicateLoad,
                NullSpike,
                MeanShift,
                CategoryDisappeared,
                SkewedDistribution,
                FormatChange,
            ]);
        }
        kinds
    }

    /// Indices of loads landing in [from, to).
    fn loads_between(loads: &[Load], from: i64, to: i64) -> Vec<usize> {
        (0..loads.len()).filter(|&i| loads[i].time >= from && loads[i].time < to && !loads[i].dropped).collect()
    }

    /// Log-scale noise of one bucket's rows with `expected` rows.
    fn volume_sigma(&self, expected: f64) -> f64 {
        let sigma = if self.low_count { 0.0 } else { self.noise };
        (sigma * sigma + 1.0 / (expected + 1.0)).sqrt()
    }

    /// Expected rows in the bucket starting at `bucket_start` (before noise).
    fn bucket_expected(&self, loads: &[Load], bucket_start: i64) -> f64 {
        Self::loads_between(loads, bucket_start, bucket_start + self.bucket).iter().map(|&i| loads[i].expected).sum()
    }

    /// The chance that a detector which knows a bucket's true distribution (`expected` rows,
    /// the table's noise) flags a bucket whose expectation an incident moved to `incident`,
    /// two-sided at the `medium` rate per point (1e-4 a day, divided among the day's buckets).
    /// Late rows and everything a detector must learn are left out, so it is an upper bound.
    /// A low-count table's rows are Poisson: a bucket is flagged when a count that low (or
    /// high) has a Poisson chance below half the rate. Other tables' rows are judged on the log
    /// scale with the generator's sigma (`volume_sigma`, its noise and count noise); a bucket
    /// with no rows left is flagged when an empty bucket is that improbable.
    fn volume_oracle(&self, expected: f64, incident: f64) -> f64 {
        let alpha = Sensitivity::Medium.false_alarm_rate() * self.bucket as f64 / DAY as f64;
        if self.low_count || incident < 0.5 {
            return poisson_oracle(expected, incident, alpha / 2.0);
        }
        let z = normal_upper_quantile(alpha / 2.0);
        let (sigma, incident_sigma) = (self.volume_sigma(expected), self.volume_sigma(incident));
        let shift = ((incident + 1.0) / (expected + 1.0)).ln().abs();
        normal_sf((z * sigma - shift) / incident_sigma) + normal_sf((z * sigma + shift) / incident_sigma)
    }

    /// Severity of a bucket going from `expected` to `observed` rows.
    fn volume_severity(&self, expected: f64, observed: f64) -> f64 {
        ((observed + 1.0) / (expected + 1.0)).ln().abs() / self.volume_sigma(expected)
    }

    fn bucket_of(&self, time: i64) -> i64 {
        time - (time - EPOCH).rem_euclid(self.bucket)
    }

    fn history(time: i64) -> f64 {
        (time - EPOCH) as f64 / DAY as f64
    }

    /// The earliest a missing load at `scheduled` can be known: its usual time plus what its
    /// jitter allows, or the end of its bucket, whichever comes first.
    fn missing_detectable(&self, scheduled: i64) -> i64 {
        let allowance = (3.0 * self.jitter).max(600.0) as i64;
        (scheduled + allowance).min(self.bucket_of(scheduled) + self.bucket)
    }

    /// Pick a load on `day` to break (hourly tables: a random active hour).
    fn pick_load(&self, loads: &[Load], day_start: i64, rng: &mut Rng) -> Option<usize> {
        let candidates = Self::loads_between(loads, day_start, day_start + DAY);
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[rng.int(0, candidates.len() as i64) as usize])
    }

    fn inject(
        &self,
        kind: IncidentKind,
        day_start: i64,
        rng: &mut Rng,
        loads: &mut [Load],
        column_effects: &mut Vec<(i64, i64, ColumnEffect)>,
        schema_events: &mut Vec<(i64, SchemaEvent)>,
    ) -> Option<Incident> {
        use IncidentKind::*;
        let make = |start: i64, end: i64, detectable_at: i64, severity: f64| Incident {
            kind,
            start,
            end,
            detectable_at,
            severity,
            history_days: Self::history(start),
            oracle: None,
        };
        match kind {
            MissedLoad | PartialLoad | DuplicateLoad | VolumeSpike => {
                let index = self.pick_load(loads, day_start, rng)?;
                let time = loads[index].time;
                let bucket = self.bucket_of(time);
                let expected = self.bucket_expected(loads, bucket);
                let factor = match kind {
                    MissedLoad => 0.0,
                    PartialLoad => 0.7,
                    DuplicateLoad => 2.0,
                    _ => 10.0,
                };
                // Irregular tables have no single load per bucket: the whole bucket is hit.
                let hit = if self.schedule == Schedule::Irregular {
                    Self::loads_between(loads, bucket, bucket + self.bucket)
                } else {
                    vec![index]
                };
                let load_expected: f64 = hit.iter().map(|&i| loads[i].expected * loads[i].factor).sum();
                if load_expected < 0.5 {
                    return None;
                }
                let observed = expected - load_expected + load_expected * factor;
                for &i in &hit {
                    if kind == MissedLoad {
                        loads[i].dropped = true;
                    } else {
                        loads[i].factor *= factor;
                    }
                }
                let severity = self.volume_severity(expected, observed);
                let detectable = if kind == MissedLoad { self.missing_detectable(time) } else { bucket + self.bucket };
                let end = if kind == MissedLoad { self.next_load_after(loads, time) } else { bucket + self.bucket };
                let incident = make(time, end.max(bucket + self.bucket), detectable, severity);
                Some(Incident { oracle: Some(self.volume_oracle(expected, observed)), ..incident })
            }
            LateLoad => {
                let index = self.pick_load(loads, day_start, rng)?;
                let time = loads[index].time;
                let delay = match self.schedule {
                    Schedule::Hourly => rng.int(2, 5) * HOUR,
                    _ => rng.int(4, 10) * HOUR,
                };
                let next = self.next_load_after(loads, time);
                if time + delay >= next && self.schedule != Schedule::Hourly {
                    return None;
                }
                loads[index].time = time + delay;
                let expected = self.bucket_expected(loads, self.bucket_of(time)).max(loads[index].expected);
                let volume = if self.bucket_of(time) != self.bucket_of(time + delay) {
                    self.volume_severity(expected, expected - loads[index].expected)
                } else {
                    0.0
                };
                let freshness = delay as f64 / self.jitter.max(60.0) / 3.0;
                Some(make(time, time + delay + 1, self.missing_detectable(time), volume.max(freshness)))
            }
            StaleSource => {
                let first = self.pick_load(loads, day_start, rng)?;
                let length = match self.schedule {
                    Schedule::Hourly => rng.int(6, 36) * HOUR,
                    _ => rng.int(2, 4) * DAY,
                };
                let start = loads[first].time;
                let affected = Self::loads_between(loads, start, start + length);
                let lost: f64 = affected.iter().map(|&i| loads[i].expected).sum();
                if lost < 1.0 {
                    return None;
                }
                for &i in &affected {
                    loads[i].dropped = true;
                }
                let expected = self.bucket_expected(loads, self.bucket_of(start)).max(lost / affected.len() as f64);
                let severity = self.volume_severity(expected, 0.0) * (affected.len() as f64).sqrt();
                let end = self.next_load_after(loads, start + length - 1);
                let detectable = if self.schedule == Schedule::Irregular {
                    start + (self.load_offset % (6 * HOUR)).max(2 * HOUR) * 2
                } else {
                    self.missing_detectable(start)
                };
                Some(make(start, end, detectable, severity))
            }
            TimezoneShift => {
                let shift = match self.schedule {
                    Schedule::Hourly => {
                        if self.daily_amplitude < 0.3 && self.business_hours.is_none() {
                            return None;
                        }
                        rng.int(3, 9) * HOUR * if rng.chance(0.5) { 1 } else { -1 }
                    }
                    _ => rng.int(3, 9) * HOUR,
                };
                let length = rng.int(1, 4) * DAY;
                let affected = Self::loads_between(loads, day_start, day_start + length);
                if affected.is_empty() {
                    return None;
                }
                let first = loads[affected[0]].time;
                for &i in &affected {
                    loads[i].time += shift;
                }
                let severity = if self.schedule == Schedule::Hourly {
                    // Mean log error of the shifted daily profile over a day.
                    let mut total = 0.0;
                    for h in 0..24 {
                        let t = day_start + h * HOUR;
                        let a = self.expected_factor(t).ln();
                        let b = self.expected_factor(t - shift).ln();
                        let active = self.in_business_hours(t) != self.in_business_hours(t - shift);
                        total += if active { 3.0 } else { (a - b).abs() };
                    }
                    total / 24.0 / self.volume_sigma(self.level) * 24f64.sqrt()
                } else {
                    shift as f64 / self.jitter.max(60.0) / 3.0
                };
                let start = first.min(first + shift);
                let detectable = if self.schedule == Schedule::Hourly {
                    self.bucket_of(start) + self.bucket
                } else {
                    self.missing_detectable(first)
                };
                Some(make(start, day_start + length + shift.max(0) + self.bucket, detectable, severity))
            }
            NullSpike | MeanShift | CategoryDisappeared | SkewedDistribution | FormatChange => {
                let index = self.pick_load(loads, day_start, rng)?;
                let bucket = self.bucket_of(loads[index].time);
                let buckets = match kind {
                    NullSpike => rng.int(1, 4),
                    _ => rng.int(1, if self.bucket == HOUR { 24 } else { 3 }),
                };
                let end = bucket + buckets * self.bucket;
                let rows = self.bucket_expected(loads, bucket).max(1.0);
                let (effect, severity) = match kind {
                    NullSpike => {
                        let p = self.null_rate;
                        let sd = (p * (1.0 - p) / rows + (p * self.null_dispersion).powi(2)).sqrt().max(1e-3);
                        (ColumnEffect::NullSpike, 0.1 / sd)
                    }
                    MeanShift => {
                        let factor = match rng.int(0, 5) {
                            0 => 100.0,
                            1 => 1_000.0,
                            2 => 0.01,
                            _ => 1.0 + rng.range(0.3, 0.6),
                        };
                        let sd = (self.mean_cv * self.mean_cv / rows + self.mean_drift * self.mean_drift).sqrt();
                        (ColumnEffect::Mean(factor), (factor - 1.0).abs() / sd)
                    }
                    CategoryDisappeared => {
                        let candidates: Vec<usize> =
                            (0..self.shares.len()).filter(|&c| self.shares[c] >= 0.05).collect();
                        if candidates.is_empty() {
                            return None;
                        }
                        let c = candidates[rng.int(0, candidates.len() as i64) as usize];
                        (ColumnEffect::Disappear(c), (self.shares[c] * rows).sqrt())
                    }
                    SkewedDistribution => {
                        let c = rng.int(0, self.shares.len() as i64) as usize;
                        let share = self.shares[c];
                        let new_share = 3.0 * share / (1.0 + 2.0 * share);
                        (ColumnEffect::Skew(c), (new_share - share) * rows / (share * rows).sqrt())
                    }
                    _ => (ColumnEffect::Format, 99.0),
                };
                column_effects.push((bucket, end, effect));
                Some(make(bucket, end, bucket + self.bucket, severity))
            }
            ColumnDropped | ColumnRenamed | ColumnRetyped => {
                let at = day_start + rng.int(0, 24) * HOUR + rng.int(0, 60) * 60;
                let event = match kind {
                    ColumnDropped => SchemaEvent::Drop,
                    ColumnRenamed => SchemaEvent::Rename,
                    _ => SchemaEvent::Retype,
                };
                schema_events.push((at, event));
                // Seen at the next poll.
                let poll = at - (at - EPOCH).rem_euclid(HOUR) + POLL_OFFSET;
                let poll = if poll < at { poll + HOUR } else { poll };
                Some(make(at, poll + 1, at, 99.0))
            }
        }
    }

    fn next_load_after(&self, loads: &[Load], time: i64) -> i64 {
        loads
            .iter()
            .filter(|l| l.time > time && !l.dropped)
            .map(|l| l.time)
            .min()
            .unwrap_or(self.end())
            .min(time + 3 * DAY)
    }

    /// Null rate, mean and categorical frequencies of every non-empty bucket.
    #[allow(clippy::type_complexity)]
    fn columns_series(
        &self,
        rows: &[u64],
        effects: &[(i64, i64, ColumnEffect)],
        rng: &mut Rng,
    ) -> (Vec<Point>, Vec<Point>, Vec<String>, Vec<CategoryFrame>) {
        let k = self.shares.len();
        let mut names: Vec<String> = (0..k).map(|c| format!("v{c}")).collect();
        names.extend((0..k).map(|c| format!("V-{c:02}")));
        let mut nulls = Vec::new();
        let mut means = Vec::new();
        let mut frames = Vec::new();
        let mut mean_level = 0.0f64;
        for (b, &n) in rows.iter().enumerate() {
            let timestamp = self.start() + b as i64 * self.bucket;
            mean_level = 0.98 * mean_level + self.mean_drift * rng.normal() * 0.2;
            if n == 0 {
                continue;
            }
            let effect = effects.iter().find(|(s, e, _)| (*s..*e).contains(&timestamp)).map(|(_, _, e)| *e);
            // Null rate: beta-ish dispersion around the table's rate.
            let mut p = (self.null_rate * (1.0 + self.null_dispersion * rng.normal())).clamp(0.0, 1.0);
            if effect == Some(ColumnEffect::NullSpike) {
                p = (p + 0.1).min(1.0);
            }
            nulls.push(Point::rate(timestamp, rng.binomial(n, p), n));
            // Mean: drifting level, daily rhythm, sampling noise.
            let hour = ((timestamp - EPOCH).rem_euclid(DAY)) as f64 / HOUR as f64;
            let daily = 1.0 + self.mean_daily * (hour / 24.0 * std::f64::consts::TAU).sin();
            let sampling = self.mean_cv / (n as f64).sqrt() * rng.normal();
            let mut value = self.mean * daily * (1.0 + mean_level + sampling + self.mean_drift * rng.normal());
            if let Some(ColumnEffect::Mean(factor)) = effect {
                value *= factor;
            }
            means.push(Point::new(timestamp, value));
            // Categories: jittered shares, multinomial rows.
            let mut shares: Vec<f64> = self.shares.iter().map(|s| s * (0.05 * rng.normal()).exp()).collect();
            match effect {
                Some(ColumnEffect::Disappear(c)) => shares[c] = 0.0,
                Some(ColumnEffect::Skew(c)) => shares[c] *= 3.0,
                _ => {}
            }
            let offset = if effect == Some(ColumnEffect::Format) { k } else { 0 };
            let total: f64 = shares.iter().sum();
            let mut remaining = n;
            let mut remaining_share = 1.0;
            let mut counts = Vec::with_capacity(k);
            for (c, share) in shares.iter().enumerate() {
                let share = share / total;
                let count =
                    if c == k - 1 { remaining } else { rng.binomial(remaining, (share / remaining_share).min(1.0)) };
                remaining -= count;
                remaining_share -= share;
                if count > 0 {
                    counts.push(((c + offset) as u16, count));
                }
            }
            frames.push(CategoryFrame { timestamp, counts });
        }
        (nulls, means, names, frames)
    }

    fn schema_series(&self, events: &[(i64, SchemaEvent)]) -> Vec<(i64, Vec<Column>)> {
        let mut current = self.columns.clone();
        let mut snapshots = vec![(self.start(), current.clone())];
        let mut events = events.to_vec();
        events.sort_by_key(|e| e.0);
        let mut added = 0;
        for (at, event) in events {
            let poll = at - (at - EPOCH).rem_euclid(HOUR) + POLL_OFFSET;
            let poll = if poll < at { poll + HOUR } else { poll };
            // The last column is the one incidents touch (never the key).
            let last = current.len() - 1;
            match event {
                SchemaEvent::Add => {
                    added += 1;
                    current.push(Column::new(format!("added_{added}"), "text", true));
                }
                SchemaEvent::Drop => {
                    current.remove(last);
                }
                SchemaEvent::Rename => {
                    current[last].name = format!("{}_renamed", current[last].name);
                }
                SchemaEvent::Retype => {
                    let to = if current[last].data_type == "text" { "bigint" } else { "text" };
                    current[last].data_type = to.to_string();
                }
            }
            snapshots.push((poll, current.clone()));
        }
        snapshots
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SchemaEvent {
    Add,
    Drop,
    Rename,
    Retype,
}

/// Total table-days of a warehouse.
pub fn table_days(tables: &[Table]) -> f64 {
    tables.iter().map(Table::days).sum()
}

/// The week a timestamp falls in, counted from [`EPOCH`].
pub fn week_of(timestamp: i64) -> i64 {
    (timestamp - EPOCH).div_euclid(WEEK)
}

/// The chance that a Poisson count of mean `incident` has a tail probability below `half_alpha`
/// (either side) under a Poisson law of mean `expected` (see `TableGenerator::volume_oracle`).
fn poisson_oracle(expected: f64, incident: f64, half_alpha: f64) -> f64 {
    let normal = CountNoise::new(expected, 0.0);
    let flagged = |k: f64| {
        let (lower, upper) = normal.tails(k);
        lower < half_alpha || upper < half_alpha
    };
    if incident <= 0.0 {
        // No rows left: the bucket is empty.
        return if flagged(0.0) { 1.0 } else { 0.0 };
    }
    let hit = CountNoise::new(incident, 0.0);
    // The counts the incident's bucket can show (beyond, its chance is nil).
    let upto = (incident + 12.0 * incident.sqrt() + 40.0).ceil();
    let mut chance = 0.0;
    let mut k = 0.0;
    while k <= upto {
        if flagged(k) {
            chance += hit.pmf(k);
        }
        k += 1.0;
    }
    chance.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_reproducible_and_seed_dependent() {
        let config = ScenarioConfig { tables: 12, days: 30, seed: 7, incidents_per_table: 2.0 };
        let a = generate(&config);
        let b = generate(&config);
        assert_eq!(a.len(), 12);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.volume, y.volume);
            assert_eq!(x.incidents, y.incidents);
            assert_eq!(x.freshness, y.freshness);
        }
        let c = generate(&ScenarioConfig { seed: 8, ..config });
        assert!(a.iter().zip(&c).any(|(x, y)| x.volume != y.volume));
    }

    #[test]
    fn series_cover_the_history_and_labels_are_consistent() {
        let tables = generate(&ScenarioConfig { tables: 40, days: 60, seed: 3, incidents_per_table: 2.0 });
        let mut kinds = std::collections::BTreeSet::new();
        for table in &tables {
            let buckets = (table.end - table.start) / table.bucket;
            assert_eq!(table.volume.len() as i64, buckets, "{}", table.name);
            assert_eq!(table.freshness.len() as i64, 60 * 24);
            assert!(table.freshness.iter().all(|p| p.value >= 0.0));
            assert!(table.nulls.iter().all(|p| p.counts.is_some_and(|c| c.count <= c.total)));
            for incident in &table.incidents {
                assert!(incident.start < incident.end, "{incident:?}");
                assert!(incident.detectable_at >= incident.start, "{incident:?}");
                assert!(incident.severity >= 0.0);
                kinds.insert(incident.kind);
            }
        }
        assert!(kinds.len() >= 12, "{kinds:?}");
    }

    #[test]
    fn a_poisson_oracle_flags_only_counts_improbable_at_the_rate() {
        let half_alpha = 1e-4 / 24.0 / 2.0;
        // A missing load of 3 rows: an empty hour has a chance of e^-3 = 5 %.
        assert_eq!(poisson_oracle(3.0, 0.0, half_alpha), 0.0);
        // Of 30 rows: e^-30, always flagged.
        assert_eq!(poisson_oracle(30.0, 0.0, half_alpha), 1.0);
        // Ten times 0.5 rows: seven rows or more where 0.5 are due have a chance of 9e-7, below
        // half the rate (six: 1.3e-5, above); a Poisson count of mean 5 reaches seven 24 % of
        // the time.
        let spike = poisson_oracle(0.5, 5.0, half_alpha);
        assert!((0.2..0.3).contains(&spike), "{spike}");
        // Ten times 20 rows: always.
        assert!(poisson_oracle(20.0, 200.0, half_alpha) > 0.999);
    }

    #[test]
    fn volume_incidents_carry_the_ceiling_an_oracle_reaches() {
        let tables = generate(&ScenarioConfig::standard(1));
        let (mut zero_heavy_missed, mut other_missed) = (Vec::new(), Vec::new());
        for table in &tables {
            for incident in &table.incidents {
                match incident.kind {
                    IncidentKind::MissedLoad
                    | IncidentKind::PartialLoad
                    | IncidentKind::DuplicateLoad
                    | IncidentKind::VolumeSpike => {
                        let chance = incident.oracle.expect("volume incidents have an oracle");
                        assert!((0.0..=1.0).contains(&chance), "{incident:?}");
                    }
                    _ => assert_eq!(incident.oracle, None, "{incident:?}"),
                }
                if incident.kind == IncidentKind::MissedLoad {
                    let chance = incident.oracle.unwrap_or(f64::NAN);
                    if table.low_count { zero_heavy_missed.push(chance) } else { other_missed.push(chance) }
                }
            }
        }
        // A missing load of a few rows on a zero-heavy table is an ordinary empty hour; a
        // missing load of any other table is an empty bucket no table of its size shows.
        assert!(!zero_heavy_missed.is_empty(), "{other_missed:?}");
        assert!(!other_missed.is_empty());
        assert!(zero_heavy_missed.iter().all(|c| *c < 0.5), "{zero_heavy_missed:?}");
        assert!(other_missed.iter().filter(|c| **c > 0.99).count() * 10 >= other_missed.len() * 9, "{other_missed:?}");
    }

    #[test]
    fn a_volume_spike_is_visible_in_the_series() {
        let tables = generate(&ScenarioConfig { tables: 80, days: 40, seed: 11, incidents_per_table: 2.0 });
        let mut checked = 0;
        for table in &tables {
            for incident in table.incidents.iter().filter(|i| i.kind == IncidentKind::VolumeSpike && !table.low_count) {
                let bucket = incident.start - (incident.start - EPOCH).rem_euclid(table.bucket);
                let index = ((bucket - table.start) / table.bucket) as usize;
                let week = (WEEK / table.bucket) as usize;
                if index < week {
                    continue;
                }
                let before = table.volume[index - week].value.max(1.0);
                assert!(table.volume[index].value > 3.0 * before, "{} {incident:?}", table.name);
                checked += 1;
            }
        }
        assert!(checked > 0);
    }
}
