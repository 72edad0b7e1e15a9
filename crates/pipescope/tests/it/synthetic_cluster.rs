//! The synthetic cluster (the scale benchmark's broker) checked against tansu: the same small
//! cluster on both, scraped by pipescope, fills the same fields, so the synthetic answers cannot
//! drift into a shape no broker gives.

use std::sync::Arc;

use pipescope::kafka::ClusterState;
use pipescope_core::SystemClock;
use pipescope_core::kafka::KafkaAnalyzer;
use pipescope_testkit::{SyntheticCluster, Tansu, now_ms};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{cluster_config, consumer, create_topic, produce, runtime};

const TOPICS: u32 = 3;
const PARTITIONS: u32 = 2;
const RECORDS: i64 = 20;

/// What a scrape filled, without the values (which differ by design).
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    cluster_id: bool,
    controller: bool,
    brokers_up: bool,
    /// Topics (not internal), each with its partition count.
    topics: Vec<(String, usize)>,
    topic_ids: bool,
    /// DescribeConfigs answered for every topic (tansu answers without values for topics
    /// created without configs; the synthetic cluster's values are checked below).
    configs: bool,
    partitions_with_offsets: usize,
    partitions_with_leader_and_replicas: usize,
    snapshot_partitions: usize,
    groups: Vec<String>,
    coordinators: bool,
    /// Committed offsets per group, and how many of them lag and carry a record time.
    commits: Vec<(String, usize, usize)>,
    lagging_groups: usize,
    group_lag_unknown: usize,
}

fn shape(state: &ClusterState) -> Shape {
    let topics: Vec<_> = state.topics.iter().filter(|t| !t.internal).collect();
    let partitions = || topics.iter().flat_map(|t| &t.partitions);
    let view = state.view.as_ref().expect("the analyzer's view");
    let groups: Vec<_> = state
        .groups
        .iter()
        .filter(|g| g.name.starts_with("g-"))
        .collect();
    let latest = |topic: &str, partition: i32| {
        state
            .topic(topic)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == partition))
            .and_then(|p| p.latest.clone().ok())
    };
    Shape {
        cluster_id: state.cluster_id.is_some(),
        controller: state.controller_id.is_some(),
        brokers_up: !state.brokers.is_empty() && state.brokers.iter().all(|b| b.up),
        topics: topics
            .iter()
            .map(|t| (t.name.clone(), t.partitions.len()))
            .collect(),
        topic_ids: topics.iter().all(|t| t.id.is_some()),
        configs: topics.iter().all(|t| t.config.is_ok()),
        partitions_with_offsets: partitions()
            .filter(|p| p.earliest.is_ok() && p.latest.is_ok())
            .count(),
        partitions_with_leader_and_replicas: partitions()
            .filter(|p| p.leader.is_some() && !p.replicas.is_empty() && !p.isr.is_empty())
            .count(),
        snapshot_partitions: state
            .offsets_snapshot()
            .map(|s| {
                s.partitions
                    .iter()
                    .filter(|p| p.tp.topic.starts_with("t-") && p.offsets.is_ok())
                    .count()
            })
            .unwrap_or(0),
        groups: groups.iter().map(|g| g.name.clone()).collect(),
        coordinators: groups.iter().all(|g| g.coordinator.is_ok()),
        commits: groups
            .iter()
            .map(|g| {
                let offsets = g.offsets.as_ref().expect("committed offsets");
                let lagging: Vec<_> = offsets
                    .iter()
                    .filter(|c| latest(&c.topic, c.partition).is_some_and(|l| c.committed < l))
                    .collect();
                let timed = lagging
                    .iter()
                    .filter(|c| c.record_time_ms.is_some())
                    .count();
                (g.name.clone(), lagging.len(), timed)
            })
            .collect(),
        lagging_groups: view
            .groups
            .iter()
            .filter(|g| g.group.starts_with("g-") && g.lag_offsets > 0)
            .count(),
        group_lag_unknown: view.groups.iter().map(|g| g.partitions_lag_unknown).sum(),
    }
}

/// Two scrapes (the second with the first as previous), each analysed like the watcher does.
fn scrape_twice(bootstrap: &str, rt: &tokio::runtime::Runtime) -> (ClusterState, ClusterState) {
    let cluster = cluster_config(bootstrap, "");
    let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
    let mut analyzer = KafkaAnalyzer::new(pipescope::kafka::analyzer_config(&cluster));
    let mut scrape = |previous: Option<&ClusterState>| {
        let mut state = rt.block_on(scraper.scrape(&SystemClock, previous));
        assert_eq!(state.error, None);
        let snapshot = state.offsets_snapshot().expect("a snapshot");
        state.view = Some(Arc::new(analyzer.ingest(&snapshot)));
        state
    };
    let first = scrape(None);
    let second = scrape(Some(&first));
    (first, second)
}

#[test]
fn the_synthetic_cluster_answers_in_the_shape_tansu_does() {
    // The synthetic cluster: 3 topics × 2 partitions on 3 brokers; group g-00000 (active) on
    // t-00000, g-00001 (stalled) on t-00001.
    let rt = runtime();
    let synthetic = rt.block_on(
        SyntheticCluster::builder()
            .brokers(3)
            .topics(TOPICS)
            .partitions_per_topic(PARTITIONS)
            .groups(2)
            .partitions_per_group(2)
            .start(),
    );
    let (synthetic_first, synthetic_second) = scrape_twice(&synthetic.bootstrap(), &rt);

    // The same names on tansu, committed alike: one partition of each group caught up, the
    // other behind, with records a second apart.
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    let base_ms = now_ms() - 3_600_000;
    for t in 0..TOPICS {
        let topic = SyntheticCluster::topic_name(t);
        create_topic(&bootstrap, &topic, PARTITIONS as i32);
        produce(&bootstrap, &topic, PARTITIONS as i32, RECORDS, base_ms);
    }
    let mut committers = Vec::new();
    for (g, committed) in [(0, [RECORDS, 10]), (1, [15, 5])] {
        let committer = consumer(&bootstrap, &SyntheticCluster::group_name(g));
        let mut list = TopicPartitionList::new();
        for (p, offset) in committed.into_iter().enumerate() {
            let topic = SyntheticCluster::topic_name(g);
            list.add_partition_offset(&topic, p as i32, Offset::Offset(offset))
                .unwrap();
        }
        committer.commit(&list, CommitMode::Sync).expect("commit");
        committers.push(committer);
    }
    let (tansu_first, tansu_second) = scrape_twice(&bootstrap, &rt);

    for (tansu, synthetic) in [
        (&tansu_first, &synthetic_first),
        (&tansu_second, &synthetic_second),
    ] {
        // By design: tansu is one broker, the synthetic cluster three.
        assert_eq!(tansu.brokers.len(), 1);
        assert_eq!(synthetic.brokers.len(), 3);
        let (expected, got) = (shape(tansu), shape(synthetic));
        assert_eq!(got, expected, "synthetic (left) against tansu (right)");
    }

    // By design (docs/brokers.md): tansu's sqlite engine cannot describe a group (members,
    // assignments); the synthetic cluster describes each with its members and assignments.
    for g in tansu_first
        .groups
        .iter()
        .filter(|g| g.name.starts_with("g-"))
    {
        assert!(g.description.is_err(), "tansu described {}: {g:?}", g.name);
    }
    for g in &synthetic_first.groups {
        let d = g
            .description
            .as_ref()
            .expect("a synthetic group is described");
        assert_eq!(d.state, "Stable");
        assert_eq!(d.members.len(), 2, "{d:?}");
        let assigned: usize = d
            .members
            .iter()
            .flat_map(|m| &m.assignment)
            .map(|a| a.partitions.len())
            .sum();
        assert_eq!(assigned, 2, "{d:?}");
    }

    let config = synthetic_first
        .topic("t-00002")
        .unwrap()
        .config
        .clone()
        .unwrap();
    assert_eq!(config.cleanup_policy.as_deref(), Some("delete"));
    assert_eq!(config.retention_ms, Some(604_800_000));

    // The synthetic numbers are exact, and its offsets move between scrapes.
    let t0 = SyntheticCluster::topic_name(0);
    let latest =
        |state: &ClusterState, p: usize| state.topic(&t0).unwrap().partitions[p].latest.clone();
    assert_eq!(latest(&synthetic_second, 1), Ok(synthetic.latest(0, 1)));
    assert!(latest(&synthetic_second, 1).unwrap() > latest(&synthetic_first, 1).unwrap());
    let g0 = synthetic_second
        .group(&SyntheticCluster::group_name(0))
        .unwrap();
    for c in g0.offsets.as_ref().unwrap() {
        assert_eq!(
            Some(c.committed),
            synthetic.committed(0, 0, c.partition as u32)
        );
        if let Some(time) = c.record_time_ms {
            assert_eq!(time as i64, synthetic.record_time_ms(c.committed));
        }
    }
    drop(committers);
}
