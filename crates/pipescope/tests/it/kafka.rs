//! The Kafka admin plane against real tansu brokers: exact end offsets and committed offsets,
//! the record timestamp at a committed offset, per-item errors, a broker killed mid-run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use pipescope::config::KafkaCluster;
use pipescope::kafka::metrics::{ClusterFilters, KafkaCollector};
use pipescope::kafka::{ClusterState, LiveState};
use pipescope_core::SystemClock;
use pipescope_core::kafka::OffsetRange;
use pipescope_testkit::{Tansu, TansuOptions, TansuStorage};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tower::ServiceExt;

const TIMEOUT: Duration = Duration::from_secs(30);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn cluster_config(bootstrap: &str, extra: &str) -> KafkaCluster {
    let text = format!(
        "[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"500ms\"\nrequest_timeout = \"2s\"\n{extra}"
    );
    let mut config = pipescope::config::parse("test", &text, []).unwrap();
    config.kafka.remove("local").unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn scrape_once(cluster: &KafkaCluster) -> ClusterState {
    let scraper = pipescope::kafka::scraper("local", cluster).unwrap();
    runtime().block_on(scraper.scrape(&SystemClock, None))
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let results = runtime()
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        ))
        .unwrap();
    for result in results {
        result.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// Produces `per_partition` records to each partition, record i of partition p stamped
/// `base_ms + i * 1000 + p`; returns nothing until every record is delivered.
fn produce(bootstrap: &str, topic: &str, partitions: i32, per_partition: i64, base_ms: i64) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for p in 0..partitions {
        for i in 0..per_partition {
            let payload = format!("{{\"p\":{p},\"i\":{i}}}");
            let mut record = BaseRecord::<(), _>::to(topic)
                .partition(p)
                .payload(&payload)
                .timestamp(base_ms + i * 1000 + p as i64);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
    }
    producer.flush(TIMEOUT).expect("all records delivered");
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

/// Joins the group on `topic` and commits exactly `offsets` (partition → offset).
fn commit_at(consumer: &BaseConsumer, topic: &str, offsets: &[(i32, i64)]) {
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumer.assignment().unwrap().count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the consumer never got partitions"
        );
        consumer.poll(Duration::from_millis(100));
    }
    let mut list = TopicPartitionList::new();
    for (p, o) in offsets {
        list.add_partition_offset(topic, *p, Offset::Offset(*o))
            .unwrap();
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit");
}

async fn get_json(router: axum::Router, path: &str) -> (StatusCode, serde_json::Value) {
    let response = router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[test]
fn sqlite_scrape_has_exact_offsets_commits_and_record_times() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "orders", 3);
    create_topic(&bootstrap, "audit", 1);
    let base_ms = now_ms() - 3_600_000;
    produce(&bootstrap, "orders", 3, 100, base_ms);
    produce(&bootstrap, "audit", 1, 7, base_ms);
    let billing = consumer(&bootstrap, "billing");
    commit_at(&billing, "orders", &[(0, 40), (1, 100), (2, 0)]);

    let cluster = cluster_config(&bootstrap, "");
    let started = Instant::now();
    let state = scrape_once(&cluster);
    let took = started.elapsed();
    assert_eq!(state.error, None);
    assert!(state.cluster_id.is_some());
    assert_eq!(state.brokers.len(), 1);
    assert!(state.brokers[0].up, "{:?}", state.brokers);
    assert_eq!(state.brokers[0].port as u16, broker.port);

    // Exact end offsets, per partition.
    let orders = state.topic("orders").expect("orders is listed");
    assert!(!orders.internal);
    let ends: Vec<_> = orders.partitions.iter().map(|p| p.latest.clone()).collect();
    assert_eq!(ends, vec![Ok(100), Ok(100), Ok(100)]);
    assert!(orders.partitions.iter().all(|p| p.earliest == Ok(0)));
    assert!(
        orders
            .partitions
            .iter()
            .all(|p| p.leader.is_some() && !p.offline)
    );
    assert_eq!(
        state.topic("audit").unwrap().partitions[0].latest,
        Ok(7),
        "audit"
    );

    // The snapshot the analyzer reads holds the same numbers.
    let snapshot = state.snapshot.as_ref().expect("a snapshot");
    let ranges: BTreeMap<(String, i32), OffsetRange> = snapshot
        .partitions
        .iter()
        .map(|p| {
            (
                (p.tp.topic.clone(), p.tp.partition),
                p.offsets.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ranges[&("orders".to_string(), 2)],
        OffsetRange {
            earliest: 0,
            latest: 100
        }
    );
    assert_eq!(
        ranges[&("audit".to_string(), 0)],
        OffsetRange {
            earliest: 0,
            latest: 7
        }
    );

    // Exact committed offsets; the record time at each lagging committed offset is the
    // producer's timestamp of that record.
    let group = state
        .group("billing")
        .unwrap_or_else(|| panic!("billing is not listed: {state:#?}"));
    let mut offsets = group.offsets.clone().expect("offsets of billing");
    offsets.sort_by_key(|c| c.partition);
    let committed: Vec<(i32, i64)> = offsets.iter().map(|c| (c.partition, c.committed)).collect();
    assert_eq!(committed, vec![(0, 40), (1, 100), (2, 0)]);
    assert_eq!(
        offsets[0].record_time_ms,
        Some((base_ms + 40_000) as u64),
        "{offsets:?}"
    );
    assert_eq!(
        offsets[1].record_time_ms, None,
        "not lagging: nothing fetched"
    );
    assert_eq!(offsets[2].record_time_ms, Some((base_ms + 2) as u64));
    let mut commits: Vec<_> = snapshot
        .commits
        .iter()
        .filter(|c| c.group == "billing")
        .map(|c| (c.tp.partition, c.committed, c.record_time_ms))
        .collect();
    commits.sort();
    assert_eq!(
        commits,
        vec![
            (0, 40, Some((base_ms + 40_000) as u64)),
            (1, 100, None),
            (2, 0, Some((base_ms + 2) as u64)),
        ]
    );

    // tansu's sqlite engine fails DescribeGroups: the error is on the group, the rest stands,
    // and the scrape is not held up beyond the request timeout.
    let description = group
        .description
        .as_ref()
        .expect_err("sqlite cannot describe");
    assert!(description.contains("DescribeGroups"), "{description}");
    assert!(
        took < cluster.request_timeout * 2,
        "the scrape took {took:?}"
    );
    // tansu drops the connection on DescribeConfigs with named keys and answers it without
    // them, with no values: the configs are known to be unset, not an error.
    assert_eq!(orders.config, Ok(Default::default()));
    // tansu lacks DescribeProducers: said per partition, no guessing.
    assert_eq!(
        orders.partitions[0].producers,
        Err("broker does not report producers".to_string())
    );

    // The JSON API and /metrics read the same state.
    let live = LiveState::new();
    live.set(state.clone());
    let rt = runtime();
    let api = pipescope::kafka::api::router(live.clone());
    let (status, clusters) = rt.block_on(get_json(api.clone(), "/api/v1/kafka/clusters"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(clusters[0]["name"], "local");
    assert_eq!(clusters[0]["brokers_up"], 1);
    assert_eq!(clusters[0]["partitions"], 4);
    let (_, topic) = rt.block_on(get_json(
        api.clone(),
        "/api/v1/kafka/clusters/local/topics/orders",
    ));
    assert_eq!(topic["partitions"][1]["latest"]["Ok"], 100);
    let (_, billing_json) = rt.block_on(get_json(
        api.clone(),
        "/api/v1/kafka/clusters/local/groups/billing",
    ));
    assert!(
        billing_json["description"]["Err"]
            .as_str()
            .unwrap()
            .contains("DescribeGroups")
    );
    let (status, _) = rt.block_on(get_json(api, "/api/v1/kafka/clusters/local/groups/nope"));
    assert_eq!(status, StatusCode::NOT_FOUND);

    let filters = pipescope::kafka::metrics::ClusterFilters::from_config(&cluster_config(
        &bootstrap,
        "topics_deny = [\"^audit$\"]\n",
    ))
    .unwrap();
    let mut registry = pipescope::metrics::new_registry();
    registry.register_collector(Box::new(KafkaCollector::new(
        live,
        BTreeMap::from([("local".to_string(), filters)]),
    )));
    let text = pipescope::metrics::encode(&registry);
    assert!(
        text.contains(
            "pipescope_kafka_partition_end_offset{cluster=\"local\",topic=\"orders\",partition=\"1\"} 100"
        ),
        "{text}"
    );
    assert!(
        text.contains("pipescope_kafka_group_committed_offset{cluster=\"local\",group=\"billing\",topic=\"orders\",partition=\"0\"} 40"),
        "{text}"
    );
    assert!(text.contains("pipescope_kafka_broker_up{cluster=\"local\",broker=\""));
    assert!(!text.contains("topic=\"audit\""), "audit is denied: {text}");
    drop(billing);
}

#[test]
fn memory_engine_wrong_end_offsets_are_visible_and_the_scrape_survives() {
    let broker = Tansu::start_with(TansuOptions {
        storage: TansuStorage::Memory,
        ..Default::default()
    });
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "calls", 1);
    // Many records per batch: the memory engine's "latest" is the last batch's base + 1.
    produce(&bootstrap, "calls", 1, 2_000, now_ms());
    let counters = consumer(&bootstrap, "counters");
    commit_at(&counters, "calls", &[(0, 2_000)]);

    let state = scrape_once(&cluster_config(&bootstrap, ""));
    assert_eq!(state.error, None);
    let snapshot = state.snapshot.as_ref().unwrap();
    let latest = snapshot
        .partitions
        .iter()
        .find(|p| p.tp.topic == "calls")
        .unwrap()
        .offsets
        .clone()
        .unwrap()
        .latest;
    let commit = snapshot
        .commits
        .iter()
        .find(|c| c.group == "counters")
        .expect("the commit is read");
    assert_eq!(commit.committed, 2_000);
    assert!(
        latest < commit.committed,
        "the memory engine's end offset {latest} is below the committed 2000: visible as is"
    );
    // The memory engine describes the group: its member is there.
    let description = state
        .group("counters")
        .unwrap()
        .description
        .clone()
        .expect("the memory engine answers DescribeGroups");
    assert_eq!(description.members.len(), 1, "{description:?}");
    drop(counters);
}

#[test]
fn a_killed_broker_is_down_within_two_scrapes_and_recovers() {
    let mut broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "beats", 1);
    produce(&bootstrap, "beats", 1, 5, now_ms());
    let cluster = cluster_config(&bootstrap, "");
    let interval = cluster.scrape_interval;
    let live = LiveState::new();
    let bus = pipescope::bus::Bus::new(64);
    let mut samples = bus.subscribe();
    let rt = runtime();
    let watcher = rt.spawn(pipescope::kafka::watch(
        pipescope::kafka::scraper("local", &cluster).unwrap(),
        interval,
        live.clone(),
        bus.clone(),
        Arc::new(SystemClock),
    ));
    let up = |live: &LiveState| {
        live.get("local")
            .is_some_and(|s| s.error.is_none() && s.brokers.iter().all(|b| b.up))
    };
    assert!(pipescope_testkit::wait_until(TIMEOUT, || up(&live)));
    // Samples reach the bus: the end offset of beats is 5.
    let batch = rt
        .block_on(async { tokio::time::timeout(TIMEOUT, samples.recv()).await })
        .unwrap()
        .unwrap();
    assert!(
        batch
            .iter()
            .any(|s| s.metric == "pipescope_kafka_partition_end_offset"
                && s.labels.get("topic") == Some("beats")
                && s.value == 5.0),
        "{batch:?}"
    );

    broker.kill();
    let killed = Instant::now();
    let down = |live: &LiveState| {
        live.get("local").is_some_and(|s| {
            s.error.is_some() && s.brokers.iter().all(|b| !b.up) && s.snapshot.is_none()
        })
    };
    // Two scrapes, each at most a connect timeout late.
    let within = interval * 2 + cluster.request_timeout;
    assert!(
        pipescope_testkit::wait_until(within + Duration::from_secs(1), || down(&live)),
        "not reported down within {within:?}"
    );
    let state = live.get("local").unwrap();
    assert!(
        state.error.as_ref().unwrap().contains("cluster local"),
        "{:?}",
        state.error
    );
    // The last numbers are kept, marked stale.
    assert!(state.topic("beats").is_some());
    assert!(state.scraped_at_ms > state.data_time_ms);
    eprintln!("reported down after {:?}", killed.elapsed());

    broker.restart();
    assert!(
        pipescope_testkit::wait_until(TIMEOUT, || up(&live)),
        "the watcher did not recover"
    );
    let state = live.get("local").unwrap();
    assert_eq!(state.topic("beats").unwrap().partitions[0].latest, Ok(5));
    watcher.abort();
}

/// A filter over names: deny wins, empty allow lets everything through.
#[test]
fn name_filters_allow_and_deny() {
    let filters = ClusterFilters::from_config(&cluster_config(
        "127.0.0.1:1",
        "groups_allow = [\"^pay\", \"^bill\"]\ngroups_deny = [\"-test$\"]\n",
    ))
    .unwrap();
    assert!(filters.groups.allows("payments"));
    assert!(filters.groups.allows("billing"));
    assert!(!filters.groups.allows("payments-test"));
    assert!(!filters.groups.allows("audit"));
    assert!(filters.topics.allows("anything"));
}
