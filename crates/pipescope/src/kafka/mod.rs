//! The Kafka watcher: an admin connection layer over `kafka-protocol` ([`conn`]), the scrape of
//! a whole cluster in few batched requests ([`scrape`]), the live state it keeps ([`state`]),
//! the analyzer's rates, lag and verdicts kept beside it, and its outputs: samples on the bus,
//! the JSON API ([`api`]) and Prometheus metrics ([`metrics`]).

pub mod api;
mod api_index;
pub mod conn;
pub mod metrics;
pub mod scram;
pub mod scrape;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use std::collections::{BTreeMap, HashMap};

use pipescope_core::kafka::metrics as names;
use pipescope_core::kafka::rate::EndOffsetPoint;
use pipescope_core::kafka::verdict::CommitPoint;
use pipescope_core::kafka::{AnalyzerConfig, KafkaAnalyzer, TopicPartition, push_view_samples};
use pipescope_core::series_budget::PartitionFilter;
use pipescope_core::tsdb::AggregateFn;
use pipescope_core::windows::Window;
use pipescope_core::{Clock, EpochMillis, Labels, Sample};
use tokio::time::MissedTickBehavior;

use crate::bus::Bus;
use crate::config::KafkaCluster;
use crate::series::SharedStage;
use crate::store::{Store, StoreError};
use crate::sync::lock;
use conn::{ConnectOptions, Pool, SaslCredentials};
pub use scrape::Scraper;
use state::GroupState;
pub use state::{ClusterState, LiveState};

/// The scraper of one configured cluster, with its TLS and SASL settings.
pub fn scraper(name: &str, cluster: &KafkaCluster) -> Result<Scraper, String> {
    let tls = match &cluster.tls {
        Some(tls) => {
            Some(crate::tls::client_config(tls).map_err(|e| format!("kafka.{name}.tls: {e}"))?)
        }
        None => None,
    };
    let options = ConnectOptions {
        client_id: format!("pipescope-{name}"),
        timeout: cluster.request_timeout,
        tls,
        sasl: cluster.sasl.as_ref().map(|s| SaslCredentials {
            mechanism: s.mechanism,
            username: s.username.clone(),
            password: s.password.clone(),
        }),
        max_backoff: cluster.scrape_interval.min(Duration::from_secs(10)),
    };
    let bootstrap = cluster.bootstrap.iter().map(ToString::to_string).collect();
    Ok(Scraper::new(name, bootstrap, Pool::new(options))
        .with_committed_offsets(cluster.committed_offsets))
}

/// Where a watcher's results go: the latest state and view for the API and `/metrics`, the
/// samples for the store and InfluxDB, and the series stage that chooses which partitions'
/// series are made at all.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub live: LiveState,
    pub bus: Bus,
    pub series: SharedStage,
}

impl Outputs {
    /// Outputs with a series stage of the default bounds of its own (every partition's series
    /// while a cluster has at most the default top-K of partitions).
    pub fn with_default_series(live: LiveState, bus: Bus) -> Self {
        let series = crate::series::shared_stage(Default::default());
        Self { live, bus, series }
    }
}

/// Scrapes every `interval` (from the start of one scrape to the next; a scrape longer than
/// the interval delays the next one rather than overlapping it), derives rates, lag and
/// verdicts with one [`KafkaAnalyzer`] per cluster, keeps the latest state and view in
/// `outputs.live` and publishes their numbers on `outputs.bus`, per-partition series only for
/// the partitions `outputs.series` selects. Runs until the task is dropped.
///
/// Each scrape builds on the watcher's own previous state (kept here, not read back from
/// `live`, which the watcher only writes).
///
/// With a `history` store, the analyzer first rebuilds its end-offset histories and verdict
/// windows from the points stored before a restart (see [`restore`]).
pub async fn watch(
    scraper: Scraper,
    interval: Duration,
    analyzer: AnalyzerConfig,
    outputs: Outputs,
    clock: Arc<dyn Clock>,
    history: Option<Store>,
) {
    let Outputs { live, bus, series } = outputs;
    let mut analyzer = KafkaAnalyzer::new(analyzer);
    if let Some(store) = history {
        let lookback_ms = restore_lookback_ms(interval, analyzer.config());
        match restore(
            &mut analyzer,
            &store,
            scraper.name(),
            clock.now_millis(),
            lookback_ms,
        ) {
            Ok((partitions, windows)) => tracing::info!(
                cluster = scraper.name(),
                partitions,
                windows,
                "rebuilt Kafka history from the store"
            ),
            Err(e) => tracing::warn!(
                cluster = scraper.name(),
                "cannot read Kafka history from the store ({e}); rates, estimated lag and verdicts start from scratch"
            ),
        }
    }
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The watcher's own last state: what the next scrape builds on. `live` is only written.
    let mut previous: Option<Arc<ClusterState>> = None;
    loop {
        ticks.tick().await;
        let mut state = scraper.scrape(clock.as_ref(), previous.as_deref()).await;
        match &state.error {
            Some(e) => tracing::warn!(cluster = scraper.name(), "{e}"),
            None => tracing::debug!(
                cluster = scraper.name(),
                ms = state.scrape_duration_ms,
                "scraped"
            ),
        }
        // The analysis and the samples take a big cluster's scrape hundreds of milliseconds of
        // CPU: on a blocking thread, so the runtime's workers stay free for the scrape's I/O.
        let previous_state = previous.clone();
        let (returned, state) = tokio::task::spawn_blocking(move || {
            analyse(&mut analyzer, &mut state, previous_state.as_deref());
            (analyzer, Arc::new(state))
        })
        .await
        .expect("the Kafka analysis panicked");
        analyzer = returned;
        live.set(Arc::clone(&state));
        // The previous scrape is let go before the samples are made, which need only the new
        // one: at 100,000 partitions a state and its view are ~120 MB.
        previous = Some(Arc::clone(&state));
        let series = series.clone();
        let batch = tokio::task::spawn_blocking(move || bounded_samples(&state, &series))
            .await
            .expect("making the Kafka samples panicked");
        bus.publish(batch);
    }
}

/// What the watcher derives from a scrape: the analyzer's view (rates, lag, verdicts) on
/// `state`. A missed scrape (no offsets read) is not ingested: it only makes the next interval
/// longer. The scale bench calls it too, so it measures what the watcher does.
pub fn analyse(
    analyzer: &mut KafkaAnalyzer,
    state: &mut ClusterState,
    previous: Option<&ClusterState>,
) {
    let Some(snapshot) = state.offsets_snapshot() else {
        return;
    };
    let held = held_groups(&state.groups, &state.group_list_errors, previous);
    analyzer.hold_groups(held.iter().map(String::as_str), snapshot.time_ms);
    state.view = Some(Arc::new(analyzer.ingest(snapshot)));
}

/// Groups whose committed offsets are unknown this scrape although they may still commit: their
/// OffsetFetch (or coordinator lookup) failed, or they are missing from a group list that some
/// broker failed to give. No answer is not "no commit", so they must not drift towards STOPPED.
fn held_groups(
    groups: &[GroupState],
    group_list_errors: &[String],
    previous: Option<&ClusterState>,
) -> Vec<String> {
    let mut held: Vec<String> = groups
        .iter()
        .filter(|g| g.offsets.is_err())
        .map(|g| g.name.clone())
        .collect();
    if !group_list_errors.is_empty() {
        let known = previous.and_then(|p| p.view.as_deref());
        for g in known.into_iter().flat_map(|v| &v.groups) {
            if !groups.iter().any(|listed| listed.name == g.group) {
                held.push(g.group.clone());
            }
        }
    }
    held
}

/// The numbers of one scrape as samples, per-partition series only for the partitions `series`
/// selects for this scrape (it counts the samples left out). The scale bench calls it too.
pub fn bounded_samples(state: &ClusterState, series: &SharedStage) -> Vec<Sample> {
    let filter = match (state.offsets_time_ms, &state.view) {
        (Some(_), Some(view)) => {
            lock(series).partition_filter(&state.name, view, state.scraped_at_ms)
        }
        _ => PartitionFilter::every(),
    };
    let (samples, unselected) = samples(state, &filter);
    if unselected > 0 {
        lock(series).count_unselected(&state.name, unselected);
    }
    samples
}

/// The numbers of one scrape as samples: broker up and scrape duration always; when the scrape
/// read offsets, the log start offsets and everything the analyzer derived (end offsets, rates,
/// committed offsets, lag, verdicts: see `pipescope_core::kafka::metrics`), per-partition
/// series for the partitions `filter` keeps. Also returns how many samples it left out.
pub fn samples(state: &ClusterState, filter: &PartitionFilter) -> (Vec<Sample>, u64) {
    let cluster = state.name.as_str();
    let at = state.scraped_at_ms;
    let mut out = vec![Sample::new(
        "pipescope_kafka_scrape_duration_seconds",
        Labels::new([("cluster", cluster)]),
        at,
        state.scrape_duration_ms as f64 / 1000.0,
    )];
    for b in &state.brokers {
        out.push(Sample::new(
            "pipescope_kafka_broker_up",
            Labels::new([
                ("cluster", cluster.to_string()),
                ("broker", b.id.to_string()),
            ]),
            at,
            if b.up { 1.0 } else { 0.0 },
        ));
    }
    // Offsets and what the analyzer derived only when this scrape read them (not the stale
    // copy kept when no broker answered).
    let mut unselected = 0;
    if let (Some(_), Some(view)) = (state.offsets_time_ms, &state.view) {
        unselected = push_view_samples(view, cluster, filter, &mut out);
    }
    (out, unselected)
}

/// How far back [`restore`] reads: enough for the lag history's points at the scrape interval,
/// and at least the longest window plus two intervals (the reading before its start, and the
/// time the first scrape after the restart takes), so a restarted monitor's windows are covered
/// at once.
pub fn restore_lookback_ms(interval: Duration, config: &AnalyzerConfig) -> u64 {
    let interval_ms = interval.as_millis() as u64;
    let history = interval_ms * config.history_points as u64;
    history.max(Window::LONGEST.millis() + 2 * interval_ms)
}

/// One stored series: its labels and its (time, value) points.
type StoredSeries = (Labels, Vec<(EpochMillis, f64)>);

/// Seeds `analyzer` with the cluster's stored points of the last `lookback_ms`: each partition's
/// end-offset history (`pipescope_kafka_partition_end_offset`), and each group partition's
/// verdict window from the committed offsets (`pipescope_kafka_group_committed_offset`) joined
/// with the end offset of the same scrape (both are stamped with the scrape's time).
/// Returns how many partition histories and group windows were rebuilt.
pub fn restore(
    analyzer: &mut KafkaAnalyzer,
    store: &Store,
    cluster: &str,
    now_ms: EpochMillis,
    lookback_ms: u64,
) -> Result<(usize, usize), StoreError> {
    let from = now_ms.saturating_sub(lookback_ms);
    // A 1 ms step reads the raw points at their own times.
    let read = |metric: &str| -> Result<Vec<StoredSeries>, StoreError> {
        let all = store.range_unbounded(metric, &[], from, now_ms, 1, AggregateFn::Last)?;
        Ok(all
            .series
            .into_iter()
            .filter(|(labels, _)| labels.get("cluster") == Some(cluster))
            .collect())
    };
    let tp_of = |labels: &Labels| -> Option<TopicPartition> {
        Some(TopicPartition::new(
            labels.get("topic")?,
            labels.get("partition")?.parse().ok()?,
        ))
    };
    let mut ends: HashMap<TopicPartition, BTreeMap<EpochMillis, i64>> = HashMap::new();
    for (labels, points) in read(names::PARTITION_END_OFFSET)? {
        let Some(tp) = tp_of(&labels) else { continue };
        ends.entry(tp)
            .or_default()
            .extend(points.into_iter().map(|(t, v)| (t, v as i64)));
    }
    let mut windows = 0;
    let window_len = analyzer.config().window_len;
    for (labels, points) in read(names::GROUP_COMMITTED_OFFSET)? {
        let (Some(group), Some(tp)) = (labels.get("group"), tp_of(&labels)) else {
            continue;
        };
        let Some(end) = ends.get(&tp) else { continue };
        let joined: Vec<CommitPoint> = points
            .into_iter()
            .filter_map(|(t, committed)| {
                end.get(&t)
                    .map(|latest| CommitPoint::new(t, committed as i64, *latest))
            })
            .collect();
        let recent = joined.len().saturating_sub(window_len);
        if !joined.is_empty() {
            analyzer.restore_group_window(group, tp, joined.into_iter().skip(recent));
            windows += 1;
        }
    }
    let partitions = ends.len();
    for (tp, points) in ends {
        analyzer.restore_partition_history(
            tp,
            points
                .into_iter()
                .map(|(time_ms, latest)| EndOffsetPoint { time_ms, latest }),
        );
    }
    Ok((partitions, windows))
}

/// The analyzer settings of one configured cluster.
pub fn analyzer_config(cluster: &KafkaCluster) -> AnalyzerConfig {
    AnalyzerConfig {
        window_len: cluster.verdict_window,
        ..AnalyzerConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipescope_core::kafka::KafkaView;
    use pipescope_core::kafka::analyzer::GroupView;
    use pipescope_core::kafka::{GroupCommit, OffsetRange, OffsetsSnapshot, PartitionOffsets};
    use pipescope_core::series_budget::{ClusterSeries, PartitionSeries, SeriesBudget};
    use state::{CommittedOffset, PartitionState, TopicState};

    fn cluster(groups: &[(&str, bool)], list_errors: &[&str]) -> ClusterState {
        ClusterState {
            name: "c".into(),
            scraped_at_ms: 1,
            scrape_duration_ms: 0,
            data_time_ms: 1,
            error: None,
            cluster_id: None,
            controller_id: None,
            brokers: vec![],
            topics: vec![],
            groups: groups
                .iter()
                .map(|(name, offsets_ok)| GroupState {
                    name: name.to_string(),
                    coordinator: Ok(1),
                    protocol_type: String::new(),
                    description: Err("not asked".into()),
                    offsets: if *offsets_ok {
                        Ok(vec![])
                    } else {
                        Err("coordinator not available".into())
                    },
                })
                .collect(),
            group_list_errors: list_errors.iter().map(ToString::to_string).collect(),
            stages: vec![],
            offsets_time_ms: None,
            committed_offsets: Default::default(),
            view: None,
        }
    }

    fn with_view(mut state: ClusterState, groups: &[&str]) -> ClusterState {
        state.view = Some(Arc::new(KafkaView {
            time_ms: 1,
            partitions: vec![],
            topics: vec![],
            groups: groups
                .iter()
                .map(|g| GroupView {
                    group: g.to_string(),
                    lag_offsets: 0,
                    partitions_lag_unknown: 0,
                    partitions_beyond_end: 0,
                    max_lag_seconds: None,
                    max_lag_seconds_estimated: false,
                    verdict: Default::default(),
                    verdict_reason: None,
                    lost_to_retention: 0,
                    topics: vec![],
                })
                .collect(),
            counters: Default::default(),
        }));
        state
    }

    #[test]
    fn restore_reads_back_past_the_longest_window_whatever_the_interval() {
        let config = AnalyzerConfig::default();
        // Every second: 120 points of lag history are 2 minutes, the windows need 15 and a bit.
        assert_eq!(
            restore_lookback_ms(Duration::from_secs(1), &config),
            900_000 + 2_000
        );
        // Every 30 s: the lag history reaches further (an hour).
        assert_eq!(
            restore_lookback_ms(Duration::from_secs(30), &config),
            3_600_000
        );
    }

    /// `state` with topic `t` (one partition, offsets 0..`latest`) and its first group
    /// committed at `committed` on it.
    fn with_commit(mut state: ClusterState, latest: i64, committed: i64) -> ClusterState {
        state.topics = vec![TopicState {
            name: "t".into(),
            id: None,
            internal: false,
            error: None,
            config: Err("not read".into()),
            partitions: vec![PartitionState::healthy(0, latest, Ok(vec![]))],
        }];
        state.groups[0].offsets = Ok(vec![CommittedOffset {
            topic: "t".into(),
            partition: 0,
            committed,
            metadata: None,
            record_time_ms: None,
            record_time_error: None,
        }]);
        state
    }

    #[test]
    fn the_offsets_snapshot_is_made_from_the_scrape_when_it_read_offsets() {
        let mut state = with_commit(cluster(&[("g", true)], &[]), 10, 4);
        assert_eq!(state.offsets_snapshot(), None, "no offsets read");
        state.offsets_time_ms = Some(7);
        state.groups[0].offsets.as_mut().unwrap()[0].record_time_ms = Some(500);
        state.topics[0]
            .partitions
            .push(PartitionState::healthy(1, 3, Ok(vec![])));
        state.topics[0].partitions[1].earliest = Err("leader not available".into());
        assert_eq!(
            state.offsets_snapshot(),
            Some(OffsetsSnapshot {
                time_ms: 7,
                partitions: vec![
                    PartitionOffsets {
                        tp: TopicPartition::new("t", 0),
                        offsets: Ok(OffsetRange {
                            earliest: 0,
                            latest: 10,
                        }),
                    },
                    PartitionOffsets {
                        tp: TopicPartition::new("t", 1),
                        offsets: Err("leader not available".into()),
                    },
                ],
                commits: vec![GroupCommit {
                    group: "g".into(),
                    tp: TopicPartition::new("t", 0),
                    committed: 4,
                    record_time_ms: Some(500),
                }],
            })
        );
    }

    fn held(state: &ClusterState, previous: Option<&ClusterState>) -> Vec<String> {
        held_groups(&state.groups, &state.group_list_errors, previous)
    }

    #[test]
    fn an_analysed_scrape_gets_its_view_and_samples() {
        let mut state = with_commit(cluster(&[("g", true)], &[]), 10, 4);
        state.offsets_time_ms = Some(1);
        let mut analyzer = KafkaAnalyzer::default();
        analyse(&mut analyzer, &mut state, None);
        let view = state.view.as_deref().expect("a view");
        assert_eq!(view.partitions.len(), 1);
        assert_eq!(view.groups[0].lag_offsets, 6);
        let lag_of = |series: &SharedStage| -> Vec<f64> {
            bounded_samples(&state, series)
                .iter()
                .filter(|s| s.metric == names::GROUP_LAG_OFFSETS)
                .map(|s| s.value)
                .collect()
        };
        let every = crate::series::shared_stage(SeriesBudget::default());
        assert_eq!(lag_of(&every), [6.0]);
        // No per-partition series: none is made, and the stage counts what was left out (start
        // and end offsets; the group partition's verdict, committed offset, lag and beyond-end
        // flag).
        let none = ClusterSeries {
            mode: PartitionSeries::None,
            ..ClusterSeries::default()
        };
        let none = crate::series::shared_stage(SeriesBudget {
            clusters: [("c".to_string(), none)].into(),
            ..SeriesBudget::default()
        });
        assert_eq!(lag_of(&none), [0.0; 0]);
        assert_eq!(lock(&none).counts()[0].unselected_samples, 2 + 4);

        // A missed scrape (no snapshot) is not ingested.
        let mut missed = cluster(&[], &[]);
        analyse(&mut analyzer, &mut missed, None);
        assert!(missed.view.is_none());
    }

    #[test]
    fn groups_whose_offsets_failed_are_held() {
        let state = cluster(&[("a", true), ("b", false)], &[]);
        assert_eq!(held(&state, None), ["b"]);
    }

    #[test]
    fn groups_missing_from_an_incomplete_list_are_held_but_not_from_a_complete_one() {
        let previous = with_view(cluster(&[("a", true), ("gone", true)], &[]), &["a", "gone"]);
        let complete = cluster(&[("a", true)], &[]);
        assert!(held(&complete, Some(&previous)).is_empty());
        let incomplete = cluster(&[("a", true)], &["broker 2: ListGroups timed out"]);
        assert_eq!(held(&incomplete, Some(&previous)), ["gone"]);
    }
}
