//! Past message counts per window of a rate series, read from the store's roll-ups, to seed the
//! rate anomaly detector (pipescope-core `alerts::anomaly`) at start so it needs no weeks of
//! warm-up after a restart.

use pipescope_core::tsdb::{AggregateFn, MatchOp, Matcher};
use pipescope_core::{EpochMillis, Labels};

use super::{Store, StoreError};

/// The series of `metric` matching `matchers`, at most `max` of them (the detector's
/// `max_series`): the caller reads them one at a time with [`window_counts`], so what is held
/// at once is one series' history.
pub fn rate_series(
    store: &Store,
    metric: &str,
    matchers: &[Matcher],
    max: usize,
) -> Result<Vec<Labels>, StoreError> {
    let mut series = store.series(Some(metric), matchers)?;
    series.truncate(max);
    Ok(series.into_iter().map(|s| s.labels).collect())
}

/// Messages per window of the series `labels` of `metric`, a rate in messages per minute (such
/// as `pipescope_kafka_topic_messages_per_minute` with `window="1m"`), in `[from_ms, to_ms]`:
/// one point per `window_ms` window (aligned to the epoch) that has data, the window's mean rate
/// times its minutes, oldest first. Read from the minute roll-ups while their retention covers
/// `from_ms` (30 days by default: four weeks of history fit); beyond it from the hour roll-ups,
/// one point per hour, which the detector does not learn from (an hour needs half its windows).
pub fn window_counts(
    store: &Store,
    metric: &str,
    labels: &Labels,
    window_ms: u64,
    from_ms: EpochMillis,
    to_ms: EpochMillis,
) -> Result<Vec<(EpochMillis, f64)>, StoreError> {
    let matchers: Vec<Matcher> = labels
        .iter()
        .filter_map(|(name, value)| Matcher::new(name, MatchOp::Eq, value).ok())
        .collect();
    // pipescope's own read at start, one series: the configuration bounds its size.
    let answer = store.range_unbounded(
        metric,
        &matchers,
        from_ms,
        to_ms,
        window_ms.max(1),
        AggregateFn::Avg,
    )?;
    let minutes = window_ms as f64 / 60_000.0;
    Ok(answer
        .series
        .into_iter()
        // Equality matchers also match series with more labels than these.
        .find(|(l, _)| l == labels)
        .map(|(_, points)| {
            points
                .into_iter()
                .filter(|(_, rate)| rate.is_finite())
                .map(|(t, rate)| (t, rate * minutes))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pipescope_core::tsdb::Retention;
    use pipescope_core::{ManualClock, Sample};

    use super::*;

    const METRIC: &str = "pipescope_kafka_topic_messages_per_minute";
    const HOUR: u64 = 3_600_000;

    #[test]
    fn window_counts_are_the_mean_rate_of_each_window_times_its_minutes_of_one_series_only() {
        let dir = tempfile::tempdir().unwrap();
        let now = 100 * HOUR;
        let (store, writer) = Store::open(
            dir.path(),
            Retention::default(),
            Arc::new(ManualClock::at(now)),
            4,
        )
        .unwrap();
        let orders = Labels::new([("topic", "orders"), ("window", "1m")]);
        let with_more = Labels::new([("topic", "orders"), ("window", "1m"), ("cluster", "b")]);
        let other = Labels::new([("topic", "audit"), ("window", "1m")]);
        // Two hours ago: one hour at 60 a minute, then 30 minutes at 120 (a sample every 30 s),
        // and other series alongside that must not be mixed in.
        let from = now - 2 * HOUR;
        let mut samples = Vec::new();
        for i in 0..180u64 {
            let t = from + i * 30_000;
            let rate = if i < 120 { 60.0 } else { 120.0 };
            samples.push(Sample::new(METRIC, orders.clone(), t, rate));
            samples.push(Sample::new(METRIC, with_more.clone(), t, 1.0));
            samples.push(Sample::new(METRIC, other.clone(), t, 7.0));
        }
        writer.store(Arc::new(samples)).unwrap();

        let series = rate_series(&store, METRIC, &[], 10).unwrap();
        assert_eq!(series.len(), 3);
        assert_eq!(rate_series(&store, METRIC, &[], 2).unwrap().len(), 2);

        let counts = window_counts(&store, METRIC, &orders, 300_000, from, now).unwrap();
        let expected: Vec<(u64, f64)> = (0..18u64)
            .map(|w| (from + w * 300_000, if w < 12 { 300.0 } else { 600.0 }))
            .collect();
        assert_eq!(counts, expected);
        let missing = Labels::new([("topic", "gone")]);
        assert!(
            window_counts(&store, METRIC, &missing, 300_000, from, now)
                .unwrap()
                .is_empty()
        );
        writer.close();
    }
}
