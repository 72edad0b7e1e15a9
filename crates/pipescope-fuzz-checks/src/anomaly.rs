//! The rate anomaly detector.

use std::collections::HashMap;

use arbitrary::{Result, Unstructured};
use pipescope_core::alerts::anomaly::{AnomalyConfig, AnomalyDetector, AnomalyKind};

/// Window lengths that divide an hour, and a few that do not.
const WINDOWS_MS: [u64; 7] = [1, 1_000, 60_000, 300_000, 3_600_000, 7_000, 0];
/// 9999-12-31T23:59:59.999Z, past which window starts are refused.
const LATEST_MS: u64 = 253_402_300_799_999;

fn config(u: &mut Unstructured<'_>) -> Result<AnomalyConfig> {
    let history_weeks = u.int_in_range(0u32..=4)?;
    let recent_windows = u.int_in_range(0u32..=20)?;
    Ok(AnomalyConfig {
        window_ms: *u.choose(&WINDOWS_MS)?,
        deviations: if u.ratio(1, 8)? {
            f64::from_bits(u.arbitrary()?)
        } else {
            f64::from(u.int_in_range(1u8..=6)?)
        },
        windows: u.int_in_range(0u32..=5)?,
        volume_floor: if u.ratio(1, 8)? {
            f64::from_bits(u.arbitrary()?)
        } else {
            f64::from(u.int_in_range(0u8..=50)?)
        },
        silent_min_expected: if u.arbitrary()? {
            None
        } else {
            Some(f64::from(u.int_in_range(0u8..=10)?))
        },
        history_weeks,
        min_weeks: u.int_in_range(0..=history_weeks.max(1))?,
        recent_windows,
        min_recent: u.int_in_range(0..=recent_windows.max(1))?,
        adopt_after: u.int_in_range(0u32..=40)?,
        min_relative_deviation: f64::from(u.int_in_range(0u8..=30)?) / 100.0,
        max_series: u.int_in_range(0usize..=4)?,
    })
}

fn count(u: &mut Unstructured<'_>) -> Result<f64> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => f64::from_bits(u.arbitrary()?),
        1 => f64::NAN,
        2 => u64::MAX as f64,
        3 => 0.0,
        _ => f64::from(u.arbitrary::<u16>()?),
    })
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let config = config(u)?;
    let valid = config.validate().is_ok();
    let Ok(mut d) = AnomalyDetector::<u8>::new(config.clone()) else {
        assert!(!valid, "a valid config was refused");
        return Ok(());
    };
    assert!(valid, "an invalid config was taken: {config:?}");
    let window_ms = config.window_ms;
    // What the detector must do, modelled: the last window seen per tracked series.
    let mut last: HashMap<u8, Option<u64>> = HashMap::new();
    let (mut refused, mut bad, mut out_of_order) = (0u64, 0u64, 0u64);
    let mut now = u.int_in_range(0..=LATEST_MS)?;
    while !u.is_empty() {
        let key = u.int_in_range(0u8..=5)?;
        match u.int_in_range(0u8..=15)? {
            0 => {
                d.forget(&key);
                last.remove(&key);
            }
            op => {
                // Mostly the next window, sometimes a gap, a step back or anywhere at all.
                now = match u.int_in_range(0u8..=9)? {
                    0 => u.arbitrary()?,
                    1 => now.saturating_sub(u64::from(u.arbitrary::<u32>()?)),
                    2 => now.saturating_add(u64::from(u.arbitrary::<u32>()?) * window_ms),
                    _ => now.saturating_add(window_ms),
                };
                let points: Vec<(u64, f64)> = if op == 1 {
                    let n = u.int_in_range(0usize..=30)?;
                    let mut t = now;
                    let mut points = Vec::with_capacity(n);
                    for _ in 0..n {
                        points.push((t, count(u)?));
                        t = t.saturating_add(window_ms * u64::from(u.int_in_range(0u8..=2)?));
                    }
                    points
                } else {
                    vec![(now, count(u)?)]
                };
                let tracked = last.contains_key(&key) || last.len() < config.max_series;
                if tracked {
                    let seen = last.entry(key).or_default();
                    for &(t, c) in &points {
                        if !(c.is_finite() && c >= 0.0) {
                            bad += 1;
                        } else if t > LATEST_MS || seen.is_some_and(|l| t / window_ms <= l) {
                            out_of_order += 1;
                        } else {
                            *seen = Some(t / window_ms);
                        }
                    }
                } else {
                    refused += 1;
                }
                if op == 1 {
                    d.seed(key, points);
                } else if let Some(v) = d.observe(key, now, points[0].1) {
                    assert!(tracked, "a series past max_series had a verdict");
                    assert_eq!(v.window_start_ms, now / window_ms * window_ms, "{v:?}");
                    assert!(v.expected.is_finite() && v.expected >= 0.0, "{v:?}");
                    assert!(v.deviation.is_finite() && v.deviation >= 1.0, "{v:?}");
                    assert!(v.score.is_finite(), "{v:?}");
                    let held = v.held_windows >= config.windows;
                    assert_eq!(v.kind != AnomalyKind::Normal, held, "{v:?}");
                }
            }
        }
        assert!(d.series_count() <= config.max_series);
        let bytes = d.series_bytes(&key).unwrap_or(0);
        assert!(bytes <= config.bytes_per_series(), "{bytes} bytes");
    }
    let stats = d.stats();
    assert_eq!(
        (stats.series_refused, stats.bad_counts, stats.out_of_order),
        (refused, bad, out_of_order)
    );
    Ok(())
}

/// The rate anomaly detector (pipescope-core alerts::anomaly) under arbitrary configs and
/// windows: counts that are NaN, infinite, negative or huge, times anywhere (u64::MAX
/// included), going back, repeating or with gaps, seeds and forgotten series. It must not panic
/// and: configs it takes are the valid ones; every verdict is finite, aligned to its window, and
/// non-normal exactly when its run reached `windows`; no series holds more than
/// `bytes_per_series`, no more than `max_series` are tracked; what it refused is counted
/// exactly as the model says.
pub fn rate_anomaly(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}
