//! Rate anomalies without thresholds: is a topic's (or an MQTT subtree's) message count in this
//! window far from what the series usually does at this time?
//!
//! # Method
//!
//! The detector sees one count per window (`window_ms`, 5 minutes by default) per series and
//! keeps two robust baselines of its own past:
//!
//! - **Same hour of the week** (UTC), once that hour has at least `min_weeks` of the last
//!   `history_weeks` weeks recorded: the median of those weeks' mean counts per window in that
//!   hour, and the MAD of the same values. A window is anomalous only if it is so against both
//!   its hour's median and the medians of the two nearest hours interpolated between their
//!   centres: the first follows a weekly step (the weekend's start), the second a daily ramp.
//! - Before that, **the last few windows** (`recent_windows`, once `min_recent` are known): their
//!   median and MAD. Windows judged anomalous stay out of it, so a long silence keeps being one,
//!   until `adopt_after` such windows in a row: then the new level is taken as normal. When the
//!   hour already has one or more past weeks (fewer than `min_weeks`), a window is anomalous only
//!   if it is against both the last windows and those weeks' median: a step the series takes
//!   every week (a quieter weekend) is not a drop, nor is an hour whose one past week was itself
//!   anomalous.
//!
//! The score is the number of deviations the count lies from the expected count `m`:
//! `z = (count - m) / s` with `s = sqrt((1.4826·MAD)² + max(m, 1) + (min_relative_deviation·m)²)`:
//! the MAD term is how much the baseline itself varies, `m` the Poisson variance of a count (so
//! a quiet series, whose counts are noisy, does not flap), and the relative term a floor for
//! baselines that look steadier than traffic ever is.
//!
//! A window is *silent* when its count is 0 while `m >= silent_min_expected` (Poisson odds of a
//! zero below e^-5 ≈ 0.7 % at the default 5); *low* when `z <= -k`, *high* when `z >= k` — those
//! two only when `m >= volume_floor`, so a series too quiet to judge is never called a drop or a
//! spike. A verdict other than [`AnomalyKind::Normal`] needs `windows` such windows in a row:
//! `Silent` before `Drop` (a silent window is also a low one), then `Spike`.
//!
//! # Bounds
//!
//! At most `max_series` series are tracked; observations of others are refused and counted
//! ([`AnomalyStats::series_refused`]): folding series together would make their baselines
//! meaningless. Each series keeps `168 × history_weeks` (week, mean) pairs of 8 bytes, allocated
//! when its first hour closes, and `recent_windows` counts of 8 bytes:
//! [`AnomalyConfig::bytes_per_series`] (5,584 bytes at the defaults, with the key on top).
//!
//! Counts that are not finite or negative, windows that start before or with the last one seen
//! (time going backwards, repeats) and window starts past the year 9999 are refused and counted.
//! A gap of missing windows breaks a run (runs are of consecutive windows); the caller decides
//! whether no data means zero messages and passes 0 if it does.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::EpochMillis;

const HOUR_MS: u64 = 3_600_000;
const HOURS_PER_WEEK: u64 = 168;
/// 9999-12-31T23:59:59.999Z: later window starts are refused, so week numbers fit in a u32.
const LATEST_WINDOW_START_MS: EpochMillis = 253_402_300_799_999;
/// The MAD of normal data times this estimates its standard deviation.
const MAD_TO_SIGMA: f64 = 1.4826;
/// Larger counts are taken as this: beyond any real rate, and still exact in an f32's range.
const MAX_COUNT: f64 = 1e15;

/// The detector's parameters. The defaults are the ones measured in BENCHMARKS.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Length of one window; divides an hour.
    pub window_ms: u64,
    /// Deviations from the baseline that make a window low or high (`k`).
    pub deviations: f64,
    /// Consecutive anomalous windows before a verdict says so.
    pub windows: u32,
    /// Expected count per window below which a series is never called a drop or a spike.
    pub volume_floor: f64,
    /// Expected count per window from which a window of zero messages is silent; `None`: never.
    pub silent_min_expected: Option<f64>,
    /// Weeks of same-hour-of-week history kept.
    pub history_weeks: u32,
    /// Weeks of history an hour of the week needs before its baseline is used.
    pub min_weeks: u32,
    /// Windows of the short baseline used before that.
    pub recent_windows: u32,
    /// Windows the short baseline needs before verdicts start.
    pub min_recent: u32,
    /// Anomalous windows in a row after which the short baseline takes the new level as normal.
    pub adopt_after: u32,
    /// Floor of the deviation as a fraction of the expected count.
    pub min_relative_deviation: f64,
    /// Series tracked at most.
    pub max_series: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            window_ms: 300_000,
            deviations: 3.5,
            windows: 3,
            volume_floor: 20.0,
            silent_min_expected: Some(5.0),
            history_weeks: 4,
            min_weeks: 3,
            recent_windows: 12,
            min_recent: 6,
            adopt_after: 36,
            min_relative_deviation: 0.1,
            max_series: 10_000,
        }
    }
}

/// Why an [`AnomalyConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnomalyConfigError {
    #[error(
        "anomaly window_ms = {0}: it must divide an hour (3600000 ms) — use e.g. 60000 or 300000"
    )]
    Window(u64),
    #[error("anomaly {name} = {value}: it must be {want}")]
    Out {
        name: &'static str,
        value: String,
        want: &'static str,
    },
}

impl AnomalyConfig {
    /// Checks every parameter, saying which is wrong and what it must be.
    pub fn validate(&self) -> Result<(), AnomalyConfigError> {
        let out = |name, value: &dyn std::fmt::Display, want| {
            Err(AnomalyConfigError::Out {
                name,
                value: value.to_string(),
                want,
            })
        };
        if self.window_ms == 0 || !HOUR_MS.is_multiple_of(self.window_ms) {
            return Err(AnomalyConfigError::Window(self.window_ms));
        }
        if !(self.deviations.is_finite() && self.deviations > 0.0) {
            return out("deviations", &self.deviations, "a number above 0");
        }
        if !(1..=1000).contains(&self.windows) {
            return out("windows", &self.windows, "1 to 1000");
        }
        if !(self.volume_floor.is_finite() && self.volume_floor >= 0.0) {
            return out("volume_floor", &self.volume_floor, "0 or more");
        }
        if let Some(s) = self.silent_min_expected
            && !(s.is_finite() && s > 0.0)
        {
            return out("silent_min_expected", &s, "a number above 0");
        }
        if !(1..=52).contains(&self.history_weeks) {
            return out("history_weeks", &self.history_weeks, "1 to 52");
        }
        if !(1..=self.history_weeks).contains(&self.min_weeks) {
            return out("min_weeks", &self.min_weeks, "1 to history_weeks");
        }
        if !(1..=10_000).contains(&self.recent_windows) {
            return out("recent_windows", &self.recent_windows, "1 to 10000");
        }
        if !(1..=self.recent_windows).contains(&self.min_recent) {
            return out("min_recent", &self.min_recent, "1 to recent_windows");
        }
        if !(self.min_relative_deviation.is_finite() && self.min_relative_deviation >= 0.0) {
            return out(
                "min_relative_deviation",
                &self.min_relative_deviation,
                "0 or more",
            );
        }
        if self.max_series == 0 {
            return out("max_series", &self.max_series, "1 or more");
        }
        Ok(())
    }

    /// Most bytes one series' state holds, its key aside.
    pub fn bytes_per_series(&self) -> usize {
        std::mem::size_of::<SeriesState>()
            + HOURS_PER_WEEK as usize
                * self.history_weeks as usize
                * std::mem::size_of::<WeekMean>()
            + self.recent_windows as usize * std::mem::size_of::<f64>()
    }

    fn windows_per_hour(&self) -> u64 {
        HOUR_MS / self.window_ms
    }
}

/// What a window (and the run it ends) looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AnomalyKind {
    Normal,
    /// Far fewer messages than usual for `windows` windows in a row.
    Drop,
    /// Far more messages than usual for `windows` windows in a row.
    Spike,
    /// No messages where clearly some were expected, for `windows` windows in a row.
    Silent,
}

/// Which baseline a verdict was measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BaselineSource {
    /// The same hour of the week over past weeks.
    HourOfWeek,
    /// The last few windows.
    Recent,
    /// The last few windows and the same hour of fewer past weeks than `min_weeks`: anomalous
    /// only against both.
    RecentAndPastWeeks,
}

/// The detector's answer for one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnomalyVerdict {
    pub kind: AnomalyKind,
    /// The window's start, aligned to `window_ms`.
    pub window_start_ms: EpochMillis,
    pub count: f64,
    /// The baseline's expected count for the window.
    pub expected: f64,
    /// One deviation, in messages.
    pub deviation: f64,
    /// `(count - expected) / deviation`.
    pub score: f64,
    pub baseline: BaselineSource,
    /// Windows in a row (this one included) of the verdict's kind; for `Normal`, 0.
    pub held_windows: u32,
}

/// What the detector refused, for its metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnomalyStats {
    /// Observations of a new series past `max_series`.
    pub series_refused: u64,
    /// Counts that were not finite or negative.
    pub bad_counts: u64,
    /// Windows that started before or with the series' last one, or after the year 9999.
    pub out_of_order: u64,
}

/// One past week's mean count per window in one hour of the week; `week_plus_one` 0 is empty.
#[derive(Debug, Clone, Copy, Default)]
struct WeekMean {
    week_plus_one: u32,
    mean: f32,
}

#[derive(Debug, Default)]
struct SeriesState {
    /// The last window seen, as a window number since the epoch.
    last_window: Option<u64>,
    /// `168 × history_weeks`, slot by slot, ring by week within a slot; empty until first used.
    weeks: Vec<WeekMean>,
    /// The hour being summed (hours since the epoch), its sum and windows.
    hour: u64,
    hour_sum: f64,
    hour_windows: u32,
    recent: VecDeque<f64>,
    /// Anomalous windows in a row kept out of `recent`.
    kept_out: u32,
    silent_run: u32,
    low_run: u32,
    high_run: u32,
}

/// Rate anomaly detector over many series; see the module docs for the method.
#[derive(Debug)]
pub struct AnomalyDetector<K = String> {
    config: AnomalyConfig,
    series: HashMap<K, SeriesState>,
    stats: AnomalyStats,
}

impl<K: Eq + Hash> AnomalyDetector<K> {
    pub fn new(config: AnomalyConfig) -> Result<Self, AnomalyConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            series: HashMap::new(),
            stats: AnomalyStats::default(),
        })
    }

    pub fn config(&self) -> &AnomalyConfig {
        &self.config
    }

    pub fn stats(&self) -> AnomalyStats {
        self.stats
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Stops tracking a series (gone from the broker), freeing its place.
    pub fn forget(&mut self, key: &K) {
        self.series.remove(key);
    }

    /// Most bytes the series' state holds now (its key aside); never above
    /// [`AnomalyConfig::bytes_per_series`].
    pub fn series_bytes(&self, key: &K) -> Option<usize> {
        self.series.get(key).map(|s| {
            std::mem::size_of::<SeriesState>()
                + s.weeks.capacity() * std::mem::size_of::<WeekMean>()
                + s.recent.capacity() * std::mem::size_of::<f64>()
        })
    }

    /// Feeds past windows (from the store, at start) in time order: the baselines learn them,
    /// no verdict comes out. Refused windows count in the stats as in [`Self::observe`].
    pub fn seed(&mut self, key: K, windows: impl IntoIterator<Item = (EpochMillis, f64)>) {
        let (config, stats) = (&self.config, &mut self.stats);
        let Some(state) = state_of(config, stats, &mut self.series, key) else {
            return;
        };
        for (start, count) in windows {
            let _ = observe_in(config, stats, state, start, count);
        }
        // A run does not carry from the past into the live windows.
        state.silent_run = 0;
        state.low_run = 0;
        state.high_run = 0;
    }

    /// The verdict for the window of `key` that starts at `window_start_ms` and saw `count`
    /// messages. `None` when refused (see [`AnomalyStats`]) or while no baseline is known yet.
    pub fn observe(
        &mut self,
        key: K,
        window_start_ms: EpochMillis,
        count: f64,
    ) -> Option<AnomalyVerdict> {
        let (config, stats) = (&self.config, &mut self.stats);
        let state = state_of(config, stats, &mut self.series, key)?;
        observe_in(config, stats, state, window_start_ms, count)
    }
}

/// The series' state, made if there is room for one more.
fn state_of<'a, K: Eq + Hash>(
    config: &AnomalyConfig,
    stats: &mut AnomalyStats,
    series: &'a mut HashMap<K, SeriesState>,
    key: K,
) -> Option<&'a mut SeriesState> {
    if series.len() >= config.max_series && !series.contains_key(&key) {
        stats.series_refused += 1;
        return None;
    }
    Some(series.entry(key).or_default())
}

fn observe_in(
    config: &AnomalyConfig,
    stats: &mut AnomalyStats,
    state: &mut SeriesState,
    window_start_ms: EpochMillis,
    count: f64,
) -> Option<AnomalyVerdict> {
    if !(count.is_finite() && count >= 0.0) {
        stats.bad_counts += 1;
        return None;
    }
    let count = count.min(MAX_COUNT);
    let window = window_start_ms / config.window_ms;
    if window_start_ms > LATEST_WINDOW_START_MS || state.last_window.is_some_and(|l| window <= l) {
        stats.out_of_order += 1;
        return None;
    }
    let start = window * config.window_ms;
    if state.last_window.is_some_and(|l| window > l + 1) {
        state.silent_run = 0;
        state.low_run = 0;
        state.high_run = 0;
        if window - state.last_window.unwrap_or(0) > u64::from(config.recent_windows) {
            state.recent.clear();
            state.kept_out = 0;
        }
    }
    state.last_window = Some(window);
    let hour = start / HOUR_MS;
    if hour != state.hour {
        close_hour(config, state);
        state.hour = hour;
    }
    state.hour_sum += count;
    state.hour_windows += 1;

    let Some(Judged {
        baseline,
        expected,
        deviation,
        score,
        silent,
        low,
        high,
    }) = judge_window(config, state, start, count)
    else {
        push_recent(config, state, count);
        return None;
    };
    let bump = |run: &mut u32, on: bool| *run = if on { run.saturating_add(1) } else { 0 };
    bump(&mut state.silent_run, silent);
    bump(&mut state.low_run, low);
    bump(&mut state.high_run, high);
    if low || high {
        state.kept_out = state.kept_out.saturating_add(1);
        if state.kept_out > config.adopt_after {
            push_recent(config, state, count);
        }
    } else {
        state.kept_out = 0;
        push_recent(config, state, count);
    }
    let (kind, held_windows) = if state.silent_run >= config.windows {
        (AnomalyKind::Silent, state.silent_run)
    } else if state.low_run >= config.windows {
        (AnomalyKind::Drop, state.low_run)
    } else if state.high_run >= config.windows {
        (AnomalyKind::Spike, state.high_run)
    } else {
        (AnomalyKind::Normal, 0)
    };
    Some(AnomalyVerdict {
        kind,
        window_start_ms: start,
        count,
        expected,
        deviation,
        score,
        baseline,
        held_windows,
    })
}

fn push_recent(config: &AnomalyConfig, state: &mut SeriesState, count: f64) {
    if state.recent.len() >= config.recent_windows as usize {
        state.recent.pop_front();
    }
    if state.recent.capacity() == 0 {
        state.recent.reserve_exact(config.recent_windows as usize);
    }
    state.recent.push_back(count);
}

/// Records the finished hour's mean count per window, when at least half its windows were seen.
fn close_hour(config: &AnomalyConfig, state: &mut SeriesState) {
    let (sum, seen) = (state.hour_sum, state.hour_windows);
    state.hour_sum = 0.0;
    state.hour_windows = 0;
    if seen == 0 || u64::from(seen) * 2 < config.windows_per_hour() {
        return;
    }
    let weeks = config.history_weeks as usize;
    if state.weeks.is_empty() {
        state.weeks = vec![WeekMean::default(); HOURS_PER_WEEK as usize * weeks];
    }
    let (slot, week) = (state.hour % HOURS_PER_WEEK, state.hour / HOURS_PER_WEEK);
    let at = slot as usize * weeks + (week % weeks as u64) as usize;
    state.weeks[at] = WeekMean {
        week_plus_one: week as u32 + 1,
        mean: (sum / f64::from(seen)) as f32,
    };
}

/// Median and MAD of the past weeks' means of hour `hour` (hours since the epoch), when at least
/// `min_weeks` of the `history_weeks` weeks before its own are known.
fn hour_of_week(
    state: &SeriesState,
    history_weeks: u32,
    hour: u64,
    min_weeks: u32,
) -> Option<(f64, f64)> {
    if state.weeks.is_empty() {
        return None;
    }
    let weeks = history_weeks as usize;
    let (slot, week) = (hour % HOURS_PER_WEEK, hour / HOURS_PER_WEEK);
    let first = slot as usize * weeks;
    let mut means: Vec<f64> = state.weeks[first..first + weeks]
        .iter()
        .filter(|w| {
            let w = u64::from(w.week_plus_one);
            w != 0 && w - 1 < week && week - (w - 1) <= weeks as u64
        })
        .map(|w| f64::from(w.mean))
        .collect();
    if means.len() < min_weeks as usize {
        return None;
    }
    Some(median_and_mad(&mut means))
}

/// A window measured against a baseline.
#[derive(Debug, Clone, Copy)]
struct Judged {
    baseline: BaselineSource,
    expected: f64,
    deviation: f64,
    score: f64,
    silent: bool,
    low: bool,
    high: bool,
}

fn judge(
    config: &AnomalyConfig,
    baseline: BaselineSource,
    count: f64,
    (expected, mad): (f64, f64),
) -> Judged {
    let deviation = ((MAD_TO_SIGMA * mad).powi(2)
        + expected.max(1.0)
        + (config.min_relative_deviation * expected).powi(2))
    .sqrt();
    let score = (count - expected) / deviation;
    let judged = expected >= config.volume_floor;
    let silent = count == 0.0 && config.silent_min_expected.is_some_and(|s| expected >= s);
    Judged {
        baseline,
        expected,
        deviation,
        score,
        silent,
        low: silent || (judged && score <= -config.deviations),
        high: judged && score >= config.deviations,
    }
}

/// The window starting at `start` measured against the best baseline known: the same hour of
/// the week with `min_weeks`; else the recent windows, and, when the hour has fewer weeks, those
/// too — then it is anomalous only if anomalous against both (a weekly step, such as a quieter
/// weekend, is not a drop; nor is a week whose hour was itself anomalous).
fn judge_window(
    config: &AnomalyConfig,
    state: &SeriesState,
    start: EpochMillis,
    count: f64,
) -> Option<Judged> {
    let weekly = |min_weeks| weekly_baselines(config, state, start, min_weeks);
    let judge_all = |source, baselines: &[(f64, f64)]| {
        baselines
            .iter()
            .map(|b| judge(config, source, count, *b))
            .reduce(|a, b| against_both(source, a, b))
    };
    if let Some(hour) = weekly(config.min_weeks) {
        return judge_all(BaselineSource::HourOfWeek, &hour);
    }
    if state.recent.len() < config.min_recent as usize {
        return None;
    }
    let mut recent: Vec<f64> = state.recent.iter().copied().collect();
    let recent = median_and_mad(&mut recent);
    match weekly(1) {
        Some(thin) => {
            let mut all = vec![recent];
            all.extend(thin);
            judge_all(BaselineSource::RecentAndPastWeeks, &all)
        }
        None => judge_all(BaselineSource::Recent, &[recent]),
    }
}

/// A window anomalous only if it is against both baselines, described by the closer one.
fn against_both(source: BaselineSource, a: Judged, b: Judged) -> Judged {
    let closer = if b.score.abs() < a.score.abs() { b } else { a };
    Judged {
        baseline: source,
        silent: a.silent && b.silent,
        low: a.low && b.low,
        high: a.high && b.high,
        ..closer
    }
}

/// The same-hour-of-week expected count and MAD for the window starting at `start`, when the
/// hour it starts in has at least `min_weeks` weeks: that hour's, and, when the nearest other
/// hour has them too, the two interpolated between their centres. A window is judged against
/// both: interpolation follows a daily ramp, the hour alone a step (a weekend's start).
fn weekly_baselines(
    config: &AnomalyConfig,
    state: &SeriesState,
    start: EpochMillis,
    min_weeks: u32,
) -> Option<Vec<(f64, f64)>> {
    let own = hour_of_week(state, config.history_weeks, start / HOUR_MS, min_weeks)?;
    let middle = start + config.window_ms / 2;
    let from_centre = middle.saturating_sub(HOUR_MS / 2);
    let before = from_centre / HOUR_MS;
    let fraction = (from_centre % HOUR_MS) as f64 / HOUR_MS as f64;
    let other_hour = if before == start / HOUR_MS {
        before + 1
    } else {
        before
    };
    let Some(other) = hour_of_week(state, config.history_weeks, other_hour, min_weeks) else {
        return Some(vec![own]);
    };
    let (a, b) = if other_hour == before {
        (other, own)
    } else {
        (own, other)
    };
    let between = (a.0 + (b.0 - a.0) * fraction, a.1 + (b.1 - a.1) * fraction);
    Some(vec![own, between])
}

/// Median and median absolute deviation of finite, non-empty `values` (reordered).
fn median_and_mad(values: &mut [f64]) -> (f64, f64) {
    let median = median_of(values);
    values.iter_mut().for_each(|v| *v = (*v - median).abs());
    (median, median_of(values))
}

fn median_of(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    if !n.is_multiple_of(2) {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    const WEEK_MS: u64 = HOURS_PER_WEEK * HOUR_MS;

    fn detector(config: AnomalyConfig) -> AnomalyDetector<&'static str> {
        AnomalyDetector::new(config).expect("a valid config")
    }

    fn kinds(
        d: &mut AnomalyDetector<&'static str>,
        from: u64,
        counts: &[f64],
    ) -> Vec<Option<AnomalyKind>> {
        counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                d.observe("t", from + i as u64 * d.config().window_ms, c)
                    .map(|v| v.kind)
            })
            .collect()
    }

    #[test]
    fn median_and_mad_are_exact() {
        assert_eq!(median_and_mad(&mut [3.0, 1.0, 2.0]), (2.0, 1.0));
        assert_eq!(median_and_mad(&mut [1.0, 2.0, 3.0, 10.0]), (2.5, 1.0));
        assert_eq!(median_and_mad(&mut [5.0]), (5.0, 0.0));
    }

    #[test]
    fn the_short_baseline_is_the_median_of_the_last_windows_and_the_deviation_is_poisson_aware() {
        let mut d = detector(AnomalyConfig::default());
        // Six windows to learn from, then a window of 100 against a median of 100, MAD 2.
        assert!(
            kinds(&mut d, 0, &[98.0, 100.0, 102.0, 100.0, 98.0, 102.0])
                .iter()
                .all(Option::is_none)
        );
        let v = d.observe("t", 6 * 300_000, 70.0).expect("a verdict");
        assert_eq!(v.baseline, BaselineSource::Recent);
        assert_eq!(v.expected, 100.0);
        // sqrt((1.4826·2)² + 100 + (0.1·100)²)
        let deviation = ((1.4826f64 * 2.0).powi(2) + 100.0 + 100.0).sqrt();
        assert_eq!(v.deviation, deviation);
        assert_eq!(v.score, -30.0 / deviation);
        assert_eq!((v.kind, v.held_windows), (AnomalyKind::Normal, 0));
    }

    #[test]
    fn a_drop_is_called_only_after_it_holds_for_the_configured_windows_and_ends_with_it() {
        let mut d = detector(AnomalyConfig::default());
        let mut counts = vec![100.0; 12];
        counts.extend([30.0, 30.0, 30.0, 30.0, 100.0]);
        let got = kinds(&mut d, 0, &counts);
        use AnomalyKind::*;
        assert_eq!(
            got[12..],
            [
                Some(Normal),
                Some(Normal),
                Some(Drop),
                Some(Drop),
                Some(Normal)
            ]
        );
        let v = d.observe("t", 17 * 300_000, 300.0).expect("a verdict");
        assert_eq!(v.kind, Normal, "one high window is not a spike yet");
    }

    #[test]
    fn spikes_and_silences_are_told_apart_from_drops() {
        let mut d = detector(AnomalyConfig::default());
        let mut counts = vec![100.0; 12];
        counts.extend([300.0; 3]);
        counts.extend([100.0; 2]);
        counts.extend([0.0; 3]);
        let got = kinds(&mut d, 0, &counts);
        use AnomalyKind::*;
        assert_eq!(got[14], Some(Spike));
        assert_eq!(got[15], Some(Normal));
        assert_eq!(got[19], Some(Silent));
        let v = d.observe("t", 20 * 300_000, 0.0).expect("a verdict");
        assert_eq!((v.kind, v.held_windows), (Silent, 4));
    }

    #[test]
    fn a_series_below_the_volume_floor_is_never_a_drop_or_spike_but_can_fall_silent() {
        let config = AnomalyConfig {
            volume_floor: 20.0,
            ..AnomalyConfig::default()
        };
        let mut d = detector(config.clone());
        let mut counts = vec![10.0; 12];
        counts.extend([200.0; 5]);
        counts.extend([1.0; 5]);
        let got = kinds(&mut d, 0, &counts);
        assert!(got[12..].iter().all(|k| *k == Some(AnomalyKind::Normal)));

        let mut d = detector(config.clone());
        let mut counts = vec![10.0; 12];
        counts.extend([0.0; 3]);
        assert_eq!(kinds(&mut d, 0, &counts)[14], Some(AnomalyKind::Silent));

        // Expecting 3 messages: a window without any is not unusual enough.
        let mut d = detector(config.clone());
        let mut counts = vec![3.0; 12];
        counts.extend([0.0; 5]);
        assert!(
            kinds(&mut d, 0, &counts)[12..]
                .iter()
                .all(|k| *k == Some(AnomalyKind::Normal))
        );

        let mut d = detector(AnomalyConfig {
            silent_min_expected: None,
            ..config
        });
        let mut counts = vec![10.0; 12];
        counts.extend([0.0; 5]);
        assert_eq!(kinds(&mut d, 0, &counts)[16], Some(AnomalyKind::Normal));
    }

    #[test]
    fn a_long_silence_stays_one_until_adopt_after_windows_then_the_new_level_is_normal() {
        let mut d = detector(AnomalyConfig::default());
        let mut counts = vec![100.0; 12];
        counts.extend([0.0; 60]);
        let got = kinds(&mut d, 0, &counts);
        assert!(
            got[14..12 + 37]
                .iter()
                .all(|k| *k == Some(AnomalyKind::Silent))
        );
        // 36 kept out; from the 37th on they are pushed; once zeros are the median, normal.
        assert_eq!(got[71], Some(AnomalyKind::Normal));
    }

    #[test]
    fn with_enough_weeks_the_same_hour_of_the_week_is_the_baseline_interpolated_between_hours() {
        let config = AnomalyConfig {
            window_ms: 30 * MIN,
            min_recent: 1,
            ..AnomalyConfig::default()
        };
        let mut d = detector(config.clone());
        // Three weeks: every hour of the week h has count 10·(h % 24) + 100 per window, and week
        // w adds w to it (so the median is week 1's).
        for week in 0..3u64 {
            for h in 0..HOURS_PER_WEEK {
                for half in 0..2 {
                    let t = week * WEEK_MS + h * HOUR_MS + half * 30 * MIN;
                    let c = (10 * (h % 24) + 100 + week) as f64;
                    d.observe("t", t, c);
                }
            }
        }
        // Week 3, hour 5: windows at :00 (middle :15) and :30 (middle :45).
        // Judged against hour 5's median and the interpolated one; the closer is told.
        let t = 3 * WEEK_MS + 5 * HOUR_MS;
        let v = d.observe("t", t, 100.0).expect("a verdict");
        assert_eq!(v.baseline, BaselineSource::HourOfWeek);
        // Quarter of the way from hour 4's centre (141) to hour 5's (151).
        assert_eq!(v.expected, 141.0 + 10.0 * 0.75);
        let v = d.observe("t", t + 30 * MIN, 200.0).expect("a verdict");
        assert_eq!(v.expected, 151.0 + 10.0 * 0.25);
        assert_eq!(v.kind, AnomalyKind::Normal);
        // MAD of {150, 151, 152} → 1, the same for every hour.
        let deviation = ((1.4826f64).powi(2) + 153.5 + (0.1f64 * 153.5).powi(2)).sqrt();
        assert_eq!(v.deviation, deviation);
    }

    #[test]
    fn a_weekly_step_is_not_an_anomaly_though_interpolation_blurs_it() {
        let mut d = detector(AnomalyConfig::default());
        // Weekdays (hours 0..120 of the week) 400 per window, then the weekend 100.
        let usual = |w: u64| {
            if w % (168 * 12) < 120 * 12 {
                400.0
            } else {
                100.0
            }
        };
        for w in 0..3 * 168 * 12 {
            d.observe("t", w * 300_000, usual(w));
        }
        let week = 3 * 168 * 12;
        let got: Vec<_> = (week..week + 168 * 12)
            .map(|w| d.observe("t", w * 300_000, usual(w)).expect("a verdict"))
            .collect();
        // The first windows of the weekend lie between the centres of hour 119 (400) and 120.
        let first = got[120 * 12];
        assert_eq!((first.kind, first.expected), (AnomalyKind::Normal, 100.0));
        assert!(got.iter().all(|v| v.kind == AnomalyKind::Normal));
        // A drop at the same place still is one.
        let v: Vec<_> = (week + 168 * 12..week + 168 * 12 + 3)
            .map(|w| d.observe("t", w * 300_000, 20.0).expect("a verdict").kind)
            .collect();
        assert_eq!(v[2], AnomalyKind::Drop);
    }

    #[test]
    fn two_weeks_of_history_are_not_enough_at_the_default_three() {
        let mut d = detector(AnomalyConfig::default());
        for w in 0..2 * HOURS_PER_WEEK * 12 {
            d.observe("t", w * 300_000, 100.0);
        }
        let v = d.observe("t", 2 * WEEK_MS, 100.0).expect("a verdict");
        assert_eq!(v.baseline, BaselineSource::RecentAndPastWeeks);
    }

    #[test]
    fn with_fewer_weeks_a_window_is_anomalous_only_against_both_the_recent_and_the_past_weeks() {
        let mut d = detector(AnomalyConfig::default());
        // Weekdays (hours 0..120 of the week) 100 per window, then the weekend 40.
        let usual = |w: u64| {
            if w % (168 * 12) < 120 * 12 {
                100.0
            } else {
                40.0
            }
        };
        let mut first_week = Vec::new();
        for w in 0..168 * 12 {
            first_week.push(d.observe("t", w * 300_000, usual(w)).map(|v| v.kind));
        }
        // Without any past week, the weekend's step down looks like a drop.
        assert_eq!(first_week[120 * 12 + 2], Some(AnomalyKind::Drop));
        let mut second_week = Vec::new();
        for w in 168 * 12..2 * 168 * 12 {
            let hour = (w / 12) % 168;
            // A real drop, to 5 from 40, in hour 130.
            let count = if hour == 130 { 5.0 } else { usual(w) };
            let v = d.observe("t", w * 300_000, count).expect("a verdict");
            second_week.push((hour, v.kind, v.baseline));
        }
        let kinds_in = |hour| {
            second_week
                .iter()
                .filter(|(h, ..)| *h == hour)
                .map(|(_, k, _)| *k)
                .collect::<Vec<_>>()
        };
        use AnomalyKind::*;
        assert_eq!(kinds_in(120), [Normal; 12], "last week had the same step");
        assert_eq!(kinds_in(130)[..3], [Normal, Normal, Drop]);
        assert!(second_week.iter().all(
            |(h, k, b)| (*h == 130 || *k == Normal) && *b == BaselineSource::RecentAndPastWeeks
        ));
    }

    #[test]
    fn an_hour_missing_more_than_half_its_windows_is_not_recorded() {
        let config = AnomalyConfig {
            min_weeks: 1,
            ..AnomalyConfig::default()
        };
        let mut d = detector(config);
        // Hour 0 of week 0: 5 of 12 windows; hour 1: 6 of 12.
        for w in 0..5 {
            d.observe("t", w * 300_000, 100.0);
        }
        for w in 12..18 {
            d.observe("t", w * 300_000, 200.0);
        }
        d.observe("t", 2 * HOUR_MS, 1.0); // closes hour 1
        // Between hour 0's centre and hour 1's: hour 0 has no week, so hour 1's mean alone.
        let v = d.observe("t", WEEK_MS + HOUR_MS, 200.0).expect("a verdict");
        assert_eq!(
            (v.baseline, v.expected),
            (BaselineSource::HourOfWeek, 200.0)
        );
    }

    #[test]
    fn weeks_older_than_the_history_are_not_used() {
        let config = AnomalyConfig {
            min_weeks: 1,
            history_weeks: 2,
            min_recent: 1,
            ..AnomalyConfig::default()
        };
        let mut d = detector(config);
        for w in 0..13 {
            d.observe("t", w * 300_000, 100.0);
        }
        // Three weeks later, hour 0 of week 0 is too old.
        let v = d.observe("t", 3 * WEEK_MS, 100.0);
        assert_eq!(v, None, "a gap this long also empties the short baseline");
    }

    #[test]
    fn bad_input_is_refused_and_counted_and_time_may_not_go_back() {
        let mut d = detector(AnomalyConfig::default());
        for c in [f64::NAN, f64::INFINITY, -1.0] {
            assert_eq!(d.observe("t", 0, c), None);
        }
        d.observe("t", 600_000, 5.0);
        assert_eq!(d.observe("t", 600_000, 5.0), None);
        assert_eq!(d.observe("t", 300_000, 5.0), None);
        assert_eq!(d.observe("t", u64::MAX, 5.0), None);
        let stats = d.stats();
        assert_eq!((stats.bad_counts, stats.out_of_order), (3, 3));
    }

    #[test]
    fn a_gap_breaks_a_run() {
        let mut d = detector(AnomalyConfig::default());
        let mut counts = vec![100.0; 12];
        counts.extend([30.0; 2]);
        kinds(&mut d, 0, &counts);
        // The third low window comes after a missing one: not three in a row.
        let v = d.observe("t", 15 * 300_000, 30.0).expect("a verdict");
        assert_eq!((v.kind, v.held_windows), (AnomalyKind::Normal, 0));
    }

    #[test]
    fn series_past_the_cap_are_refused_and_counted_and_forgetting_frees_a_place() {
        let mut d = detector(AnomalyConfig {
            max_series: 2,
            ..AnomalyConfig::default()
        });
        d.observe("a", 0, 1.0);
        d.observe("b", 0, 1.0);
        d.observe("c", 0, 1.0);
        assert_eq!((d.series_count(), d.stats().series_refused), (2, 1));
        d.forget(&"a");
        d.observe("c", 0, 1.0);
        assert_eq!(d.series_count(), 2);
    }

    #[test]
    fn seeding_teaches_the_baseline_without_verdicts_or_runs() {
        let mut d = detector(AnomalyConfig::default());
        let past = (0..12u64).map(|w| (w * 300_000, 100.0));
        d.seed("t", past.chain([(12 * 300_000, 0.0), (13 * 300_000, 0.0)]));
        let v = d.observe("t", 14 * 300_000, 0.0).expect("a verdict");
        assert_eq!(v.expected, 100.0);
        assert_eq!((v.kind, v.held_windows), (AnomalyKind::Normal, 0));
    }

    #[test]
    fn a_series_state_stays_within_its_stated_bytes() {
        let config = AnomalyConfig::default();
        assert_eq!(config.bytes_per_series(), 5_584);
        let mut d = detector(config.clone());
        for w in 0..5 * HOURS_PER_WEEK * 12 {
            d.observe("t", w * 300_000, (w % 7) as f64);
        }
        let bytes = d.series_bytes(&"t").expect("tracked");
        assert!(bytes <= config.bytes_per_series(), "{bytes}");
    }

    #[test]
    fn invalid_configs_say_what_is_wrong() {
        let bad = |c: AnomalyConfig| c.validate().unwrap_err().to_string();
        let d = AnomalyConfig::default;
        assert!(
            bad(AnomalyConfig {
                window_ms: 7 * MIN,
                ..d()
            })
            .contains("must divide an hour")
        );
        assert!(
            bad(AnomalyConfig {
                min_weeks: 5,
                ..d()
            })
            .contains("min_weeks = 5")
        );
        assert!(
            bad(AnomalyConfig {
                deviations: f64::NAN,
                ..d()
            })
            .contains("deviations")
        );
    }
}
