//! Committed offsets read from `__consumer_offsets` (`committed_offsets = "offsets_topic"`)
//! against those asked with OffsetFetch: on the synthetic cluster, which writes its commits to
//! the topic as Kafka does; and on tansu, which has no such topic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipescope::kafka::{ClusterState, Scraper};
use pipescope_core::SystemClock;
use pipescope_core::kafka::KafkaAnalyzer;
use pipescope_testkit::{SyntheticCluster, Tansu};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{cluster_config, consumer, create_topic, produce, runtime};

const DEADLINE: Duration = Duration::from_secs(30);

/// (group, topic, partition) → committed offset.
type Commits = BTreeMap<(String, String, i32), i64>;

fn commits(state: &ClusterState) -> Commits {
    state
        .groups
        .iter()
        .flat_map(|g| {
            let offsets = g.offsets.as_ref().expect("the group's offsets are known");
            offsets.iter().map(|c| {
                (
                    (g.name.clone(), c.topic.to_string(), c.partition),
                    c.committed,
                )
            })
        })
        .collect()
}

/// (group, topic, partition) → lag in offsets, from the analyzer's view.
fn lags(state: &ClusterState) -> BTreeMap<(String, String, i32), Option<i64>> {
    let view = state.view.as_ref().expect("analysed");
    view.groups
        .iter()
        .flat_map(|g| {
            g.topics.iter().flat_map(move |t| {
                t.partitions.iter().map(move |p| {
                    (
                        (g.group.clone(), t.topic.clone(), p.partition),
                        p.lag.offsets,
                    )
                })
            })
        })
        .collect()
}

fn scraper(bootstrap: &str, mode: &str) -> Scraper {
    let cluster = cluster_config(bootstrap, &format!("committed_offsets = \"{mode}\"\n"));
    pipescope::kafka::scraper("local", &cluster).unwrap()
}

fn scrape(
    scraper: &Scraper,
    analyzer: &mut KafkaAnalyzer,
    rt: &tokio::runtime::Runtime,
) -> ClusterState {
    let mut state = rt.block_on(scraper.scrape(&SystemClock, None));
    assert_eq!(state.error, None);
    state.view = Some(Arc::new(
        analyzer.ingest(state.offsets_snapshot().expect("a snapshot")),
    ));
    state
}

/// Scrapes until the commits come from `__consumer_offsets` (the reader caught up).
fn scrape_from_the_topic(
    scraper: &Scraper,
    analyzer: &mut KafkaAnalyzer,
    rt: &tokio::runtime::Runtime,
) -> ClusterState {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let state = scrape(scraper, analyzer, rt);
        let source = &state.committed_offsets;
        assert!(source.reader.is_some(), "no reader started: {source:?}");
        if source.from_offsets_topic {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "the reader did not catch up within {DEADLINE:?}: {source:?}"
        );
        // Polled against the deadline above.
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
    }
}

#[test]
fn offsets_topic_gives_the_same_commits_and_lag_as_offset_fetch_on_the_synthetic_cluster() {
    let rt = runtime();
    // Still: every number stays as at start, so both modes must agree exactly.
    let cluster = rt.block_on(
        SyntheticCluster::builder()
            .brokers(3)
            .topics(4)
            .partitions_per_topic(5)
            .groups(30)
            .partitions_per_group(6)
            .offsets_topic(true)
            .moving(false)
            .start(),
    );
    assert_eq!(cluster.offsets_topic_records(), 30 * 6);
    let asked = scraper(&cluster.bootstrap(), "offset_fetch");
    let read = scraper(&cluster.bootstrap(), "offsets_topic");
    let (mut asked_analyzer, mut read_analyzer) =
        (KafkaAnalyzer::default(), KafkaAnalyzer::default());
    let by_offset_fetch = scrape(&asked, &mut asked_analyzer, &rt);
    assert!(!by_offset_fetch.committed_offsets.from_offsets_topic);
    assert_eq!(by_offset_fetch.committed_offsets.reader, None);
    let by_topic = scrape_from_the_topic(&read, &mut read_analyzer, &rt);
    let progress = by_topic.committed_offsets.reader.clone().unwrap();
    assert!(progress.caught_up);
    assert_eq!(progress.commits, 30 * 6);
    assert_eq!(progress.undecodable_records, 0);
    assert_eq!(commits(&by_topic).len(), 30 * 6);
    assert_eq!(commits(&by_topic), commits(&by_offset_fetch));
    assert_eq!(lags(&by_topic), lags(&by_offset_fetch));
    assert!(lags(&by_topic).values().any(|l| *l > Some(0)), "some lag");
    // The scrape that read the topic asked no OffsetFetch.
    let before = cluster.requests(kafka_protocol::messages::ApiKey::OffsetFetch);
    let again = scrape(&read, &mut read_analyzer, &rt);
    assert!(again.committed_offsets.from_offsets_topic);
    assert_eq!(
        cluster.requests(kafka_protocol::messages::ApiKey::OffsetFetch),
        before
    );
}

#[test]
fn offsets_topic_follows_commits_as_the_synthetic_cluster_makes_them() {
    let rt = runtime();
    let cluster = rt.block_on(
        SyntheticCluster::builder()
            .brokers(2)
            .topics(2)
            .partitions_per_topic(4)
            .groups(6)
            .partitions_per_group(4)
            .offsets_topic(true)
            .start(),
    );
    let read = scraper(&cluster.bootstrap(), "offsets_topic");
    let mut analyzer = KafkaAnalyzer::default();
    let mut state = scrape_from_the_topic(&read, &mut analyzer, &rt);
    // The cluster's commits once a scrape is done (its listing moved the active groups').
    let truth = |state: &ClusterState| -> Commits {
        commits(state)
            .into_keys()
            .map(|(g, t, p)| {
                let gi: u32 = g.trim_start_matches("g-").parse().unwrap();
                let ti: u32 = t.trim_start_matches("t-").parse().unwrap();
                let c = cluster.committed(gi, ti, p as u32).unwrap();
                ((g, t, p), c)
            })
            .collect()
    };
    let first = commits(&state);
    let mut read_before = first.clone();
    for _ in 0..4 {
        state = scrape(&read, &mut analyzer, &rt);
        assert!(state.committed_offsets.from_offsets_topic);
        // The reader may trail the cluster by a few commits, but never goes back or ahead.
        let (now, truth_now) = (commits(&state), truth(&state));
        for (key, committed) in &now {
            assert!(
                *committed >= read_before[key] && *committed <= truth_now[key],
                "{key:?}: {committed}, read {} before, the cluster at {}",
                read_before[key],
                truth_now[key]
            );
        }
        read_before = now;
    }
    // Once the cluster stops moving, the reader reaches its every commit.
    cluster.set_moving(false);
    let deadline = Instant::now() + DEADLINE;
    loop {
        state = scrape(&read, &mut analyzer, &rt);
        if commits(&state) == truth(&state) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reader did not reach the cluster's commits within {DEADLINE:?}"
        );
    }
    assert_ne!(commits(&state), first, "the commits moved");
    assert!(cluster.offsets_topic_records() > 6 * 4);
}

#[test]
fn offsets_topic_is_not_on_tansu_so_offset_fetch_answers() {
    // tansu keeps commits in its storage engine: no `__consumer_offsets` (docs/brokers.md).
    let rt = runtime();
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "orders", 1);
    produce(&bootstrap, "orders", 1, 10, pipescope_testkit::now_ms());
    let committer = consumer(&bootstrap, "billing");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset("orders", 0, Offset::Offset(4))
        .unwrap();
    committer.commit(&list, CommitMode::Sync).expect("commit");
    let read = scraper(&bootstrap, "offsets_topic");
    let state = scrape(&read, &mut KafkaAnalyzer::default(), &rt);
    assert!(
        state.topic("__consumer_offsets").is_none(),
        "{:?}",
        state.topics
    );
    assert!(!state.committed_offsets.from_offsets_topic);
    assert_eq!(state.committed_offsets.reader, None);
    let billing = commits(&state);
    assert_eq!(
        billing.get(&("billing".to_string(), "orders".to_string(), 0)),
        Some(&4)
    );
    drop(committer);
}
