//! The Kafka admin plane against real tansu brokers: exact end offsets and committed offsets,
//! the record timestamp at a committed offset, per-item errors, a broker killed mid-run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use kafka_protocol::messages::ApiKey;
use pipescope::config::KafkaCluster;
use pipescope::kafka::metrics::{ClusterFilters, KafkaCollector};
use pipescope::kafka::{ClusterState, LiveState};
use pipescope_core::SystemClock;
use pipescope_core::kafka::OffsetRange;
use pipescope_testkit::scripted_kafka::{self, ScriptedBroker};
use pipescope_testkit::{Tansu, TansuOptions, TansuStorage, now_ms};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::secure_kafka::{HandTansu, create_scram_users, tls_acceptor, tls_terminator};
use crate::support::get_json;

const TIMEOUT: Duration = Duration::from_secs(30);

pub fn cluster_config(bootstrap: &str, extra: &str) -> KafkaCluster {
    let text = format!(
        "[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"500ms\"\nrequest_timeout = \"2s\"\n{extra}"
    );
    let mut config = pipescope::config::parse("test", &text, []).unwrap();
    config.kafka.remove("local").unwrap()
}

pub fn runtime() -> tokio::runtime::Runtime {
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

pub(crate) fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
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

/// Creates `topic` with one partition whose records older than `retention_ms` are deleted
/// (`cleanup.policy=delete`).
pub(crate) fn create_topic_with_retention(bootstrap: &str, topic: &str, retention_ms: i64) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let retention = retention_ms.to_string();
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "delete")
        .set("retention.ms", &retention);
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    for result in runtime()
        .block_on(admin.create_topics(&[new], &options))
        .unwrap()
    {
        result.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// Produces `per_partition` records to each partition, record i of partition p stamped
/// `base_ms + i * 1000 + p`; returns nothing until every record is delivered.
pub(crate) fn produce(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    per_partition: i64,
    base_ms: i64,
) {
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

pub(crate) fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

/// Joins the group on `topic` and commits exactly `offsets` (partition → offset).
pub(crate) fn commit_at(consumer: &BaseConsumer, topic: &str, offsets: &[(i32, i64)]) {
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

    let standalone = consumer(&bootstrap, "standalone");
    let mut list = TopicPartitionList::new();
    list.add_partition_offset("audit", 0, Offset::Offset(3))
        .unwrap();
    standalone
        .commit(&list, CommitMode::Sync)
        .expect("standalone commit");
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
    let snapshot = state.offsets_snapshot().expect("a snapshot");
    let ranges: BTreeMap<(String, i32), OffsetRange> = snapshot
        .partitions
        .iter()
        .map(|p| {
            (
                (p.tp.topic.to_string(), p.tp.partition),
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
        .filter(|c| &*c.group == "billing")
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
    // A group that only committed (no members) is read the same; tansu cannot describe it
    // either, even asked alone.
    let standalone = state.group("standalone").expect("standalone is listed");
    let commits: Vec<_> = standalone
        .offsets
        .clone()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c.topic.to_string(),
                c.partition,
                c.committed,
                c.record_time_ms,
            )
        })
        .collect();
    assert_eq!(
        commits,
        vec![("audit".to_string(), 0, 3, Some((base_ms + 3_000) as u64))]
    );
    assert!(standalone.description.is_err());
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
    let api = pipescope::kafka::api::router(
        live.clone(),
        std::sync::Arc::new(pipescope_core::SystemClock),
    );
    let (status, clusters) = rt.block_on(get_json(api.clone(), "/api/v1/kafka/clusters"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(clusters[0]["name"], "local");
    assert_eq!(clusters[0]["brokers_up"], 1);
    assert_eq!(clusters[0]["partitions"], 4);
    let (_, topic) = rt.block_on(get_json(
        api.clone(),
        "/api/v1/kafka/clusters/local/topics/orders",
    ));
    assert_eq!(topic["partitions"][1]["latest"], 100);
    let (_, billing_json) = rt.block_on(get_json(
        api.clone(),
        "/api/v1/kafka/clusters/local/groups/billing",
    ));
    assert!(
        billing_json["description"]["error"]
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
    let live_for_topics = live.clone();
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

    // Per topic: one series per topic (and group and topic), summed over the partitions.
    let by_topic = ClusterFilters::from_config(&cluster_config(
        &bootstrap,
        "metrics_granularity = \"topic\"\n",
    ))
    .unwrap();
    let mut registry = pipescope::metrics::new_registry();
    registry.register_collector(Box::new(KafkaCollector::new(
        live_for_topics,
        BTreeMap::from([("local".to_string(), by_topic)]),
    )));
    let text = pipescope::metrics::encode(&registry);
    for line in [
        "pipescope_kafka_topic_end_offset_sum{cluster=\"local\",topic=\"orders\"} 300",
        "pipescope_kafka_topic_end_offset_sum{cluster=\"local\",topic=\"audit\"} 7",
        "pipescope_kafka_group_topic_committed_offset_sum{cluster=\"local\",group=\"billing\",topic=\"orders\"} 140",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    assert!(!text.contains("partition=\""), "{text}");
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
    let snapshot = state.offsets_snapshot().unwrap();
    let latest = snapshot
        .partitions
        .iter()
        .find(|p| &*p.tp.topic == "calls")
        .unwrap()
        .offsets
        .clone()
        .unwrap()
        .latest;
    let commit = snapshot
        .commits
        .iter()
        .find(|c| &*c.group == "counters")
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
        pipescope::kafka::analyzer_config(&cluster),
        pipescope::kafka::Outputs::with_default_series(live.clone(), bus.clone()),
        Arc::new(SystemClock),
        None,
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
            s.error.is_some() && s.brokers.iter().all(|b| !b.up) && s.offsets_time_ms.is_none()
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
    let (_, summary) = rt.block_on(get_json(
        pipescope::kafka::api::router(
            live.clone(),
            std::sync::Arc::new(pipescope_core::SystemClock),
        ),
        "/api/v1/kafka/clusters/local",
    ));
    assert!(summary["staleness_ms"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["brokers_up"], 0, "{summary}");
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

#[test]
fn scripted_broker_members_assignments_producers_and_multi_group_offsets() {
    use pipescope::kafka::state::{AssignedTopic, ProducerState};
    let rt = runtime();
    let broker = rt.block_on(ScriptedBroker::start());
    let cluster = cluster_config(&broker.bootstrap(), "");
    let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
    let state = rt.block_on(scraper.scrape(&SystemClock, None));
    assert_eq!(state.error, None);
    assert_eq!(state.cluster_id.as_deref(), Some("scripted-cluster"));
    assert_eq!(state.brokers[0].rack.as_deref(), Some("rack-a"));

    let topic = state.topic(scripted_kafka::TOPIC).unwrap();
    assert!(topic.partitions.iter().all(|p| p.under_replicated));
    let config = topic.config.clone().unwrap();
    assert_eq!(config.cleanup_policy.as_deref(), Some("compact"));
    assert_eq!(config.retention_ms, Some(604_800_000));
    assert_eq!(config.retention_bytes, Some(-1));
    assert_eq!(config.min_insync_replicas, Some(2));
    assert_eq!(
        topic.partitions[0].producers,
        Ok(vec![ProducerState {
            producer_id: 7,
            producer_epoch: 1,
            last_sequence: 41,
            last_timestamp_ms: scripted_kafka::RECORD_TIME_BASE,
            current_txn_start_offset: None,
        }])
    );
    let not_leader = topic.partitions[1].producers.clone().unwrap_err();
    assert!(not_leader.contains("DescribeProducers"), "{not_leader}");

    // Members and their decoded assignments.
    let app = state.group("payments-app").unwrap();
    let description = app.description.clone().unwrap();
    assert_eq!(description.state, "Stable");
    assert_eq!(description.protocol, "range");
    let members: Vec<_> = description
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.as_str(),
                m.client_id.as_str(),
                m.client_host.as_str(),
                m.assignment.clone(),
            )
        })
        .collect();
    let assigned = |p: i32| {
        vec![AssignedTopic {
            topic: scripted_kafka::TOPIC.to_string(),
            partitions: vec![p],
        }]
    };
    assert_eq!(
        members,
        vec![
            ("m-1", "payments-1", "/10.0.0.1", assigned(0)),
            ("m-2", "payments-2", "/10.0.0.2", assigned(1)),
        ]
    );

    // Both groups' offsets came in one OffsetFetch v8 request; the refused group keeps its error.
    let offsets: Vec<_> = app
        .offsets
        .clone()
        .unwrap()
        .iter()
        .map(|c| (c.partition, c.committed, c.record_time_ms))
        .collect();
    assert_eq!(
        offsets,
        vec![
            (0, 50, None), // at the end: not lagging
            (
                1,
                60,
                Some((scripted_kafka::RECORD_TIME_BASE + 60_000) as u64)
            ),
        ]
    );
    let reporting = state.group("reporting").unwrap();
    let refused = reporting.offsets.clone().unwrap_err();
    assert!(refused.contains("GroupAuthorizationFailed"), "{refused}");
    assert_eq!(reporting.description.clone().unwrap().state, "Empty");

    // Batched: one request of each kind for the whole cluster (ListOffsets: earliest + latest).
    for (api, n) in [
        (ApiKey::Metadata, 1),
        (ApiKey::ListOffsets, 2),
        (ApiKey::DescribeConfigs, 1),
        (ApiKey::ListGroups, 1),
        (ApiKey::FindCoordinator, 1),
        (ApiKey::OffsetFetch, 1),
        (ApiKey::Fetch, 1),
        (ApiKey::DescribeGroups, 1),
        (ApiKey::DescribeProducers, 1),
    ] {
        assert_eq!(broker.requests(api), n, "{api:?} requests");
    }

    // The next scrape: the lagging commit did not move, so the record's time is the one read
    // before, with no Fetch.
    let again = rt.block_on(scraper.scrape(&SystemClock, Some(&state)));
    let lagging = again
        .group("payments-app")
        .unwrap()
        .offsets
        .clone()
        .unwrap()
        .into_iter()
        .find(|c| c.partition == 1)
        .unwrap();
    assert_eq!(
        lagging.record_time_ms,
        Some((scripted_kafka::RECORD_TIME_BASE + 60_000) as u64)
    );
    assert_eq!(broker.requests(ApiKey::Fetch), 1);
    assert_eq!(broker.requests(ApiKey::OffsetFetch), 2);
    // Topic configs are kept from the previous scrape, and read again every few scrapes.
    assert_eq!(broker.requests(ApiKey::DescribeConfigs), 1);
    let kept = again
        .topic(scripted_kafka::TOPIC)
        .unwrap()
        .config
        .clone()
        .unwrap();
    assert_eq!(kept.cleanup_policy.as_deref(), Some("compact"));
    let mut previous = again;
    for _ in 2..pipescope::kafka::scrape::CONFIG_REFRESH_SCRAPES {
        previous = rt.block_on(scraper.scrape(&SystemClock, Some(&previous)));
    }
    assert_eq!(broker.requests(ApiKey::DescribeConfigs), 1);
    let refreshed = rt.block_on(scraper.scrape(&SystemClock, Some(&previous)));
    assert_eq!(broker.requests(ApiKey::DescribeConfigs), 2);
    assert_eq!(
        refreshed
            .topic(scripted_kafka::TOPIC)
            .unwrap()
            .config
            .clone()
            .unwrap(),
        kept
    );
}

fn sasl_config(port: u16, mechanism: &str, user: &str, password: &str) -> KafkaCluster {
    cluster_config(
        &format!("127.0.0.1:{port}"),
        &format!(
            "[kafka.local.sasl]\nmechanism = \"{mechanism}\"\nusername = \"{user}\"\npassword = \"{password}\"\n"
        ),
    )
}

#[test]
fn sasl_scram_against_tansu_and_a_wrong_password_names_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Users are made on an open broker; the same database then serves with authentication.
        let open = HandTansu::start(dir.path(), &[]);
        create_scram_users(
            &open,
            &[
                ("alice", "alice-pw", "scram256"),
                ("bob", "bob-pw", "scram512"),
            ],
        );
    }
    let broker = HandTansu::start(dir.path(), &["--authentication"]);

    for (mechanism, user, password) in [
        ("SCRAM-SHA-256", "alice", "alice-pw"),
        ("SCRAM-SHA-512", "bob", "bob-pw"),
    ] {
        let state = scrape_once(&sasl_config(broker.port, mechanism, user, password));
        assert_eq!(state.error, None, "{mechanism}");
        assert!(
            state.brokers.iter().all(|b| b.up),
            "{mechanism}: {:?}",
            state.brokers
        );
    }

    let state = scrape_once(&sasl_config(
        broker.port,
        "SCRAM-SHA-512",
        "bob",
        "not-bobs",
    ));
    let error = state.error.expect("a wrong password fails the scrape");
    assert!(error.contains("cluster local"), "{error}");
    assert!(error.contains("SASL authentication"), "{error}");
    assert!(
        !error.contains("not-bobs"),
        "the password never shows: {error}"
    );
}

/// The scripted broker behind a rustls acceptor: TLS with SASL PLAIN (tansu authenticates with
/// SCRAM only; tansu over TLS is the terminator test below), and the CA choices.
#[test]
fn tls_with_the_right_ca_works_and_an_untrusted_certificate_names_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pipescope_testkit::TestCa::generate(dir.path());
    let other_dir = tempfile::tempdir().unwrap();
    let other = pipescope_testkit::TestCa::generate(other_dir.path());
    let rt = runtime();
    let broker = rt.block_on(ScriptedBroker::builder().tls(tls_acceptor(&ca)).start());
    let bootstrap = broker.bootstrap();
    let scrape = |extra: String| {
        let cluster = cluster_config(&bootstrap, &extra);
        let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
        rt.block_on(scraper.scrape(&SystemClock, None))
    };
    let plain_sasl = "[kafka.local.sasl]\nmechanism = \"PLAIN\"\nusername = \"ops\"\n";

    let trusted = scrape(format!(
        "[kafka.local.tls]\nca = \"{}\"\n{plain_sasl}password = \"ops-pw\"\n",
        ca.ca_cert.display()
    ));
    assert_eq!(trusted.error, None);
    assert_eq!(trusted.cluster_id.as_deref(), Some("scripted-cluster"));
    assert_eq!(
        trusted.topic(scripted_kafka::TOPIC).unwrap().partitions[1].latest,
        Ok(70)
    );

    let skipped = scrape(format!(
        "[kafka.local.tls]\nskip_verify = true\n{plain_sasl}password = \"ops-pw\"\n"
    ));
    assert_eq!(skipped.error, None);

    let untrusted = scrape(format!(
        "[kafka.local.tls]\nca = \"{}\"\n{plain_sasl}password = \"ops-pw\"\n",
        other.ca_cert.display()
    ));
    let error = untrusted.error.expect("an untrusted certificate fails");
    assert!(error.contains("cluster local"), "{error}");
    assert!(error.contains("TLS with"), "{error}");
    // Both test CAs share a name, so rustls finds "the" issuer and its signature fails.
    assert!(error.contains("invalid peer certificate"), "{error}");

    let wrong_password = scrape(format!(
        "[kafka.local.tls]\nca = \"{}\"\n{plain_sasl}password = \"nope\"\n",
        ca.ca_cert.display()
    ));
    let error = wrong_password.error.expect("a wrong password fails");
    assert!(error.contains("SASL authentication"), "{error}");
    assert!(error.contains("Invalid username or password"), "{error}");
}

/// tansu 0.6 cannot serve TLS itself (docs/brokers.md), so real tansu answers over TLS come
/// through a terminator that tansu advertises as its address: SASL_SSL with SCRAM, exact offsets,
/// and an untrusted certificate or a wrong password named on the cluster.
#[test]
fn tls_and_scram_against_tansu_behind_a_tls_terminator() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = pipescope_testkit::TestCa::generate(ca_dir.path());
    let other_dir = tempfile::tempdir().unwrap();
    let other = pipescope_testkit::TestCa::generate(other_dir.path());
    {
        // Users and records go in on an open broker; the same database then serves with
        // authentication behind TLS.
        let open = HandTansu::start(dir.path(), &[]);
        create_scram_users(&open, &[("carol", "carol-pw", "scram512")]);
        let bootstrap = format!("127.0.0.1:{}", open.port);
        create_topic(&bootstrap, "secured", 2);
        produce(&bootstrap, "secured", 2, 25, now_ms());
    }
    let rt = runtime();
    let tansu_port = pipescope_testkit::free_port();
    let proxy_port = rt.block_on(tls_terminator(tls_acceptor(&ca), tansu_port));
    let _broker = HandTansu::start_on(
        dir.path(),
        tansu_port,
        Some(proxy_port),
        &["--authentication"],
    );
    let scrape = |ca: &pipescope_testkit::TestCa, password: &str| {
        let cluster = cluster_config(
            &format!("127.0.0.1:{proxy_port}"),
            &format!(
                "[kafka.local.tls]\nca = \"{}\"\n[kafka.local.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"carol\"\npassword = \"{password}\"\n",
                ca.ca_cert.display()
            ),
        );
        let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
        rt.block_on(scraper.scrape(&SystemClock, None))
    };

    let state = scrape(&ca, "carol-pw");
    assert_eq!(state.error, None);
    assert!(state.brokers.iter().all(|b| b.up), "{:?}", state.brokers);
    assert!(
        state
            .brokers
            .iter()
            .all(|b| b.port == i32::from(proxy_port)),
        "every connection goes through TLS: {:?}",
        state.brokers
    );
    let topic = state.topic("secured").expect("the topic is seen over TLS");
    assert_eq!(topic.partitions.len(), 2);
    for partition in &topic.partitions {
        assert_eq!(partition.latest, Ok(25), "{partition:?}");
    }

    let untrusted = scrape(&other, "carol-pw");
    let error = untrusted.error.expect("an untrusted certificate fails");
    assert!(error.contains("cluster local"), "{error}");
    assert!(error.contains("invalid peer certificate"), "{error}");

    let wrong_password = scrape(&ca, "not-carols");
    let error = wrong_password.error.expect("a wrong password fails");
    assert!(error.contains("cluster local"), "{error}");
    assert!(error.contains("SASL authentication"), "{error}");
    assert!(
        !error.contains("not-carols"),
        "the password never shows: {error}"
    );
}

#[test]
fn a_broker_stuck_on_describe_groups_holds_the_scrape_only_for_the_request_timeout() {
    let rt = runtime();
    let broker = rt.block_on(ScriptedBroker::builder().hang_describe_groups().start());
    let cluster = cluster_config(&broker.bootstrap(), "");
    assert_eq!(cluster.request_timeout, Duration::from_secs(2));
    let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
    let started = Instant::now();
    let state = rt.block_on(scraper.scrape(&SystemClock, None));
    let took = started.elapsed();
    assert_eq!(broker.requests(ApiKey::DescribeGroups), 1);
    assert!(
        took >= cluster.request_timeout && took < cluster.request_timeout + Duration::from_secs(1),
        "the scrape took {took:?}"
    );
    assert_eq!(state.error, None);
    let app = state.group("payments-app").unwrap();
    let error = app.description.clone().unwrap_err();
    assert!(error.contains("no answer within 2s"), "{error}");
    // Everything else stands: offsets, commits and their record times.
    assert_eq!(app.offsets.clone().unwrap().len(), 2);
    assert_eq!(
        state.topic(scripted_kafka::TOPIC).unwrap().partitions[0].latest,
        Ok(scripted_kafka::LATEST[0])
    );
    assert!(state.brokers[0].up);
}

/// `pipescope run` with a Kafka cluster configured serves its state on the API and /metrics.
#[test]
fn run_watches_the_configured_cluster() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "events", 2);
    produce(&bootstrap, "events", 2, 25, now_ms());
    let dir = tempfile::tempdir().unwrap();
    let port = pipescope_testkit::free_port();
    let config = dir.path().join("pipescope.toml");
    std::fs::write(
        &config,
        format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\n[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"1s\"\n"
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["run", "-c", config.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut topics = String::new();
    let served = pipescope_testkit::wait_until(TIMEOUT, || {
        topics = pipescope_testkit::http_body(port, "/api/v1/kafka/clusters/local/topics")
            .unwrap_or_default();
        topics.contains("\"end_offset_sum\":50")
    });
    let metrics = pipescope_testkit::http_body(port, "/metrics").unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(served, "the API never showed events' 50 records: {topics}");
    assert!(
        metrics.contains(
            "pipescope_kafka_partition_end_offset{cluster=\"local\",topic=\"events\",partition=\"1\"} 25"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("pipescope_kafka_broker_up{cluster=\"local\",broker=\""));
}

#[test]
fn a_leader_that_is_down_fails_its_partitions_only() {
    let rt = runtime();
    let dead = pipescope_testkit::free_port();
    let broker = rt.block_on(ScriptedBroker::builder().dead_broker(dead).start());
    let cluster = cluster_config(&broker.bootstrap(), "");
    let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
    let state = rt.block_on(scraper.scrape(&SystemClock, None));
    assert_eq!(state.error, None);
    let up: Vec<(i32, bool)> = state.brokers.iter().map(|b| (b.id, b.up)).collect();
    assert_eq!(up, vec![(1, true), (2, false)]);
    // Its groups cannot be listed, and the scrape says so.
    assert_eq!(
        state.group_list_errors.len(),
        1,
        "{:?}",
        state.group_list_errors
    );
    assert!(state.group_list_errors[0].contains(&dead.to_string()));
    let reason = state.brokers[1].error.clone().unwrap();
    assert!(
        reason.contains(&format!("cannot reach Kafka broker 127.0.0.1:{dead}")),
        "{reason}"
    );

    let topic = state.topic(scripted_kafka::TOPIC).unwrap();
    assert_eq!(topic.partitions[0].latest, Ok(scripted_kafka::LATEST[0]));
    let unknown = topic.partitions[1].latest.clone().unwrap_err();
    assert!(unknown.contains("cannot reach Kafka broker"), "{unknown}");
    // The snapshot says the same, per partition.
    let snapshot = state.offsets_snapshot().unwrap();
    assert!(snapshot.partitions[0].offsets.is_ok());
    assert!(snapshot.partitions[1].offsets.is_err());
    // Committed offsets come from the coordinator (broker 1) and stand; the lagging partition's
    // record time cannot be fetched from its dead leader, and says so.
    let app = state
        .groups
        .iter()
        .find(|g| g.name == "payments-app")
        .unwrap();
    let offsets = app.offsets.clone().unwrap();
    assert_eq!(offsets.len(), 2);
    assert_eq!(offsets[1].record_time_ms, None);
    let why = offsets[1].record_time_error.clone().unwrap();
    assert!(
        why.contains("not fetched: the partition's offsets are unknown"),
        "{why}"
    );
    assert!(app.description.is_ok());
}

#[test]
fn brokers_without_batched_group_apis_are_asked_per_group() {
    let rt = runtime();
    let broker = rt.block_on(ScriptedBroker::builder().old_versions().start());
    let cluster = cluster_config(&broker.bootstrap(), "");
    let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
    let state = rt.block_on(scraper.scrape(&SystemClock, None));
    assert_eq!(state.error, None);
    assert_eq!(broker.requests(ApiKey::FindCoordinator), 2, "one per group");
    assert_eq!(broker.requests(ApiKey::OffsetFetch), 2, "one per group");
    let app = state.group("payments-app").unwrap();
    assert_eq!(app.coordinator, Ok(1));
    let offsets: Vec<_> = app
        .offsets
        .clone()
        .unwrap()
        .iter()
        .map(|c| (c.partition, c.committed, c.record_time_ms))
        .collect();
    assert_eq!(
        offsets,
        vec![
            (0, 50, None),
            (
                1,
                60,
                Some((scripted_kafka::RECORD_TIME_BASE + 60_000) as u64)
            ),
        ]
    );
    let refused = state
        .group("reporting")
        .unwrap()
        .offsets
        .clone()
        .unwrap_err();
    assert!(refused.contains("GroupAuthorizationFailed"), "{refused}");
}

#[test]
fn a_batch_bigger_than_the_fetch_limit_is_asked_for_again_alone() {
    let rt = runtime();
    let broker = rt.block_on(ScriptedBroker::builder().big_batches().start());
    let cluster = cluster_config(&broker.bootstrap(), "");
    let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
    let state = rt.block_on(scraper.scrape(&SystemClock, None));
    let offsets: Vec<_> = state
        .group("payments-app")
        .unwrap()
        .offsets
        .clone()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c.partition,
                c.committed,
                c.record_time_ms,
                c.record_time_error.clone(),
            )
        })
        .collect();
    let at = |o: i64| Some((scripted_kafka::RECORD_TIME_BASE + o * 1000) as u64);
    assert_eq!(offsets, vec![(0, 45, at(45), None), (1, 60, at(60), None)]);
    // Both partitions in one Fetch; the cut one once more, alone.
    assert_eq!(broker.requests(ApiKey::Fetch), 2);
}

#[test]
fn a_group_that_makes_the_broker_drop_describe_groups_does_not_hide_the_others() {
    let rt = runtime();
    let broker = rt.block_on(ScriptedBroker::builder().poison_group("reporting").start());
    let cluster = cluster_config(&broker.bootstrap(), "");
    let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
    let state = rt.block_on(scraper.scrape(&SystemClock, None));
    // The batch, then each group alone.
    assert_eq!(broker.requests(ApiKey::DescribeGroups), 3);
    let app = state
        .group("payments-app")
        .unwrap()
        .description
        .clone()
        .unwrap();
    assert_eq!(app.members.len(), 2);
    let error = state
        .group("reporting")
        .unwrap()
        .description
        .clone()
        .unwrap_err();
    assert!(error.contains("connection to"), "{error}");
    assert!(error.contains("was lost during DescribeGroups"), "{error}");
}

#[test]
fn a_broker_that_drops_every_describe_groups_costs_no_reconnect_per_group() {
    let rt = runtime();
    let broker = rt.block_on(
        ScriptedBroker::builder()
            .drop_describe_groups()
            .extra_groups(30)
            .start(),
    );
    let cluster = cluster_config(&broker.bootstrap(), "");
    let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
    let check = |state: &ClusterState| {
        assert_eq!(state.groups.len(), 32);
        for group in &state.groups {
            let error = group.description.clone().unwrap_err();
            assert!(error.contains("was lost during DescribeGroups"), "{error}");
            assert!(
                error.contains("the broker drops every DescribeGroups tried"),
                "{error}"
            );
        }
        // The rest of the scrape stands.
        let offsets = state.group("idle-29").unwrap().offsets.clone().unwrap();
        assert_eq!(offsets.len(), 2);
        assert_eq!(
            state.topic(scripted_kafka::TOPIC).unwrap().partitions[1].latest,
            Ok(scripted_kafka::LATEST[1])
        );
    };
    // First scrape: the batch, then two groups alone; each drop costs one reconnect of the
    // group-descriptions connection. Connections: one per lane (main, side, groups, configs,
    // group descriptions, producers), then 2 reconnects.
    check(&rt.block_on(scraper.scrape(&SystemClock, None)));
    assert_eq!(broker.requests(ApiKey::DescribeGroups), 3);
    assert_eq!(broker.connections(), 8);
    // Until the retry is due, DescribeGroups is not sent, and no connection is made at all.
    for _ in 1..pipescope::kafka::scrape::REFUSED_RETRY_SCRAPES {
        check(&rt.block_on(scraper.scrape(&SystemClock, None)));
    }
    assert_eq!(broker.requests(ApiKey::DescribeGroups), 3);
    assert_eq!(broker.connections(), 8);
    // The retry: one batch on a new connection, no probing (still refused); then nothing again.
    check(&rt.block_on(scraper.scrape(&SystemClock, None)));
    assert_eq!(broker.requests(ApiKey::DescribeGroups), 4);
    check(&rt.block_on(scraper.scrape(&SystemClock, None)));
    assert_eq!(broker.requests(ApiKey::DescribeGroups), 4);
    assert_eq!(broker.connections(), 9);
}

#[test]
fn a_group_the_broker_refuses_is_left_out_of_the_next_batches() {
    let rt = runtime();
    let broker = rt.block_on(
        ScriptedBroker::builder()
            .poison_group("reporting")
            .extra_groups(30)
            .start(),
    );
    let cluster = cluster_config(&broker.bootstrap(), "");
    let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
    let check = |state: &ClusterState| {
        let error = state
            .group("reporting")
            .unwrap()
            .description
            .clone()
            .unwrap_err();
        assert!(error.contains("was lost during DescribeGroups"), "{error}");
        let described = state
            .groups
            .iter()
            .filter(|g| g.description.is_ok())
            .count();
        assert_eq!(described, 31);
    };
    // Sorted, "reporting" is the last of the 32. The batch, the first two alone, then halves
    // of the other 30 until "reporting" is alone: 30 drops, 15 ok, 15 drops, 7 ok, 8 drops,
    // 4 ok, 4 drops, 2 ok, 2 drops, 1 ok, "reporting" drops: 1 + 2 + 11 = 14 requests.
    check(&rt.block_on(scraper.scrape(&SystemClock, None)));
    let first = broker.requests(ApiKey::DescribeGroups);
    assert_eq!(first, 14);
    // Then one batch per scrape without it.
    check(&rt.block_on(scraper.scrape(&SystemClock, None)));
    check(&rt.block_on(scraper.scrape(&SystemClock, None)));
    assert_eq!(broker.requests(ApiKey::DescribeGroups), first + 2);
}

/// A broker that requires a client certificate signed by the test CA (mutual TLS).
fn mutual_tls_acceptor(ca: &pipescope_testkit::TestCa) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca.ca_cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let certs = CertificateDer::pem_file_iter(&ca.server_cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&ca.server_key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[test]
fn mutual_tls_sends_the_configured_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pipescope_testkit::TestCa::generate(dir.path());
    let rt = runtime();
    let broker = rt.block_on(
        ScriptedBroker::builder()
            .tls(mutual_tls_acceptor(&ca))
            .start(),
    );
    let bootstrap = broker.bootstrap();
    let scrape = |extra: String| {
        let cluster = cluster_config(&bootstrap, &extra);
        let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
        rt.block_on(scraper.scrape(&SystemClock, None))
    };
    // The test CA's server certificate has no usage restriction, so it serves as the client's.
    let with_cert = scrape(format!(
        "[kafka.local.tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        ca.ca_cert.display(),
        ca.server_cert.display(),
        ca.server_key.display()
    ));
    assert_eq!(with_cert.error, None);
    assert_eq!(with_cert.cluster_id.as_deref(), Some("scripted-cluster"));

    let without = scrape(format!(
        "[kafka.local.tls]\nca = \"{}\"\n",
        ca.ca_cert.display()
    ));
    let error = without
        .error
        .expect("the broker refuses a client without certificate");
    assert!(error.contains("cluster local"), "{error}");
}

#[test]
fn an_unreachable_cluster_is_one_clear_error_naming_it_and_the_address() {
    let port = pipescope_testkit::free_port(); // nothing listens there
    let state = scrape_once(&cluster_config(&format!("127.0.0.1:{port}"), ""));
    let error = state.error.expect("nothing answers");
    assert!(
        error.starts_with(&format!(
            "cluster local: no broker answered Metadata: cannot reach Kafka broker 127.0.0.1:{port}"
        )),
        "{error}"
    );
    assert!(error.contains("is the broker running"), "{error}");
    assert!(state.offsets_time_ms.is_none());
    assert_eq!(state.data_time_ms, 0, "no numbers were ever read");
    assert!(state.topics.is_empty() && state.groups.is_empty());
}

/// A watcher (scraper + analyzer) running on its own runtime, with every bus batch it published.
struct Watching {
    rt: tokio::runtime::Runtime,
    live: LiveState,
    batches: Arc<std::sync::Mutex<Vec<pipescope::bus::Batch>>>,
    cluster: KafkaCluster,
}

impl Watching {
    fn start(bootstrap: &str, extra: &str) -> Self {
        Self::start_cluster(cluster_config(bootstrap, extra))
    }

    fn start_cluster(cluster: KafkaCluster) -> Self {
        let live = LiveState::new();
        let bus = pipescope::bus::Bus::new(1024);
        let mut receiver = bus.subscribe();
        let batches = Arc::new(std::sync::Mutex::new(Vec::new()));
        let rt = runtime();
        let kept = batches.clone();
        rt.spawn(async move {
            while let Some(batch) = receiver.recv().await {
                kept.lock().unwrap().push(batch);
            }
        });
        rt.spawn(pipescope::kafka::watch(
            pipescope::kafka::scraper("local", &cluster).unwrap(),
            cluster.scrape_interval,
            pipescope::kafka::analyzer_config(&cluster),
            pipescope::kafka::Outputs::with_default_series(live.clone(), bus),
            Arc::new(SystemClock),
            None,
        ));
        Self {
            rt,
            live,
            batches,
            cluster,
        }
    }

    fn view(&self) -> Option<Arc<pipescope_core::kafka::KafkaView>> {
        self.live.get("local").and_then(|s| s.view.clone())
    }

    fn group_partition(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<pipescope_core::kafka::analyzer::GroupPartitionView> {
        let view = self.view()?;
        let g = view.groups.iter().find(|g| g.group == group)?;
        let t = g.topics.iter().find(|t| t.topic == topic)?;
        t.partitions
            .iter()
            .find(|p| p.partition == partition)
            .cloned()
    }

    fn api(&self, path: &str) -> serde_json::Value {
        let (status, json) = self.rt.block_on(get_json(
            pipescope::kafka::api::router(
                self.live.clone(),
                std::sync::Arc::new(pipescope_core::SystemClock),
            ),
            path,
        ));
        assert_eq!(status, StatusCode::OK, "{path}: {json}");
        json
    }

    fn metrics(&self) -> String {
        let filters = ClusterFilters::from_config(&self.cluster).unwrap();
        let mut registry = pipescope::metrics::new_registry();
        registry.register_collector(Box::new(KafkaCollector::new(
            self.live.clone(),
            BTreeMap::from([("local".to_string(), filters)]),
        )));
        pipescope::metrics::encode(&registry)
    }

    /// Values of `metric` in the published batches whose labels include `labels`, in order.
    fn published(&self, metric: &str, labels: &[(&str, &str)]) -> Vec<(u64, f64)> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.iter())
            .filter(|s| {
                s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
            })
            .map(|s| (s.time_ms, s.value))
            .collect()
    }
}

fn producer(bootstrap: &str, linger_ms: u32) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", linger_ms.to_string())
        .create()
        .unwrap()
}

/// Sends one record stamped with the current time, retrying while the queue is full;
/// returns that time.
fn send_now(producer: &BaseProducer, topic: &str, partition: i32) -> i64 {
    let sent = now_ms();
    let payload = sent.to_string();
    let mut record = BaseRecord::<(), _>::to(topic)
        .partition(partition)
        .payload(&payload)
        .timestamp(sent);
    loop {
        match producer.send(record) {
            Ok(()) => return sent,
            Err((_, r)) => {
                record = r;
                producer.poll(Duration::from_millis(5));
            }
        }
    }
}

/// Commits `offset` for `group` on one partition without joining the group (a standalone
/// consumer), as a consumer that keeps committing the same or any offset would.
pub(crate) fn commit_standalone(consumer: &BaseConsumer, topic: &str, partition: i32, offset: i64) {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(offset))
        .unwrap();
    consumer.commit(&list, CommitMode::Sync).expect("commit");
}

/// Records the producer sent to one topic together: the time before the first send and after
/// they were known delivered (a steady record: its send time twice).
#[derive(Debug, Clone, Copy)]
struct SentBatch {
    topic: &'static str,
    from_ms: u64,
    to_ms: u64,
    records: usize,
}

/// Records of `topic` sent in `(from, to]`: the least (surely inside, `margin_ms` clear of the
/// edges) and the most (possibly inside) a perfect count could be.
fn sent_between(
    sent: &[SentBatch],
    topic: &str,
    from: u64,
    to: u64,
    margin_ms: u64,
) -> (usize, usize) {
    let of_topic = || sent.iter().filter(move |b| b.topic == topic);
    let surely = of_topic()
        .filter(|b| b.from_ms > from + margin_ms && b.to_ms + margin_ms <= to)
        .map(|b| b.records)
        .sum();
    let possibly = of_topic()
        .filter(|b| b.to_ms + margin_ms > from && b.from_ms <= to + margin_ms)
        .map(|b| b.records)
        .sum();
    (surely, possibly)
}

/// The producers against a real broker, scraped every second: 5 records every 10 s,
/// 100 records once, and a steady 20 a second. Each topic's 1-minute figure is the count of the
/// last minute as of the scrape (within 2 %), never scaled up before the minute is watched.
#[test]
fn per_minute_figures_count_the_last_minute_of_bursty_and_steady_producers() {
    use pipescope_core::kafka::metrics::{PARTITION_END_OFFSET, TOPIC_MESSAGES_PER_MINUTE};
    use pipescope_core::windows::Window;
    use std::sync::atomic::{AtomicBool, Ordering};

    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    for (topic, partitions) in [("every-10s", 1), ("once", 1), ("steady", 2)] {
        create_topic(&bootstrap, topic, partitions);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(std::sync::Mutex::new(Vec::<SentBatch>::new()));
    let sender = {
        let (bootstrap, stop, sent) = (bootstrap.clone(), stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let producer = producer(&bootstrap, 0);
            let burst = |topic: &'static str, records: usize| {
                let from_ms = now_ms() as u64;
                for _ in 0..records {
                    send_now(&producer, topic, 0);
                }
                producer.flush(TIMEOUT).expect("burst delivered");
                let to_ms = now_ms() as u64;
                SentBatch {
                    topic,
                    from_ms,
                    to_ms,
                    records,
                }
            };
            // A tick every 50 ms on an absolute schedule.
            let start = Instant::now();
            for tick in 0u64.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let due = start + Duration::from_millis(50 * tick);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait); // pacing the producer, not synchronisation
                }
                let at = send_now(&producer, "steady", (tick % 2) as i32) as u64;
                producer.poll(Duration::ZERO);
                let mut batches = vec![SentBatch {
                    topic: "steady",
                    from_ms: at,
                    to_ms: at,
                    records: 1,
                }];
                if tick % 200 == 60 {
                    batches.push(burst("every-10s", 5));
                }
                if tick == 300 {
                    batches.push(burst("once", 100));
                }
                sent.lock().unwrap().extend(batches);
            }
            producer.flush(TIMEOUT).expect("all records delivered");
        })
    };
    // The monitor starts after the first burst: what came before is not its to count.
    assert!(pipescope_testkit::wait_until(TIMEOUT, || {
        sent.lock().unwrap().iter().any(|b| b.topic == "every-10s")
    }));
    let mut cluster = cluster_config(&bootstrap, "");
    cluster.scrape_interval = Duration::from_secs(1);
    let watching = Watching::start_cluster(cluster);
    let topics = ["every-10s", "once", "steady"];
    let last_minute = |view: &pipescope_core::kafka::KafkaView, topic: &str| {
        view.topics
            .iter()
            .find(|t| &*t.topic == topic)
            .and_then(|t| t.rates)
            .map(|r| r.get(Window::OneMinute))
    };
    let first_reading = |topic: &str| -> u64 {
        let readings = watching.published(PARTITION_END_OFFSET, &[("topic", topic)]);
        readings.first().expect("a reading").0
    };

    // Not yet a minute: the count of what arrived since the first reading, and no rate.
    let mut early = None;
    assert!(pipescope_testkit::wait_until(TIMEOUT, || {
        early = watching.view().filter(|v| {
            topics
                .iter()
                .all(|t| last_minute(v, t).is_some_and(|c| c.covered_s >= 20.0))
        });
        early.is_some()
    }));
    let early = early.unwrap();
    let text = watching.metrics();
    for topic in topics {
        let c = last_minute(&early, topic).unwrap();
        assert_eq!(c.per_minute, None, "{topic}: {c:?}");
        assert!(c.covered_s < 60.0, "{topic}: {c:?}");
        let since_first = first_reading(topic).saturating_sub(200);
        let (_, most) = sent_between(&sent.lock().unwrap(), topic, since_first, early.time_ms, 0);
        assert!(c.count <= most as f64, "{topic}: {c:?}, sent {most}");
        assert!(!text.contains(&format!(
            "pipescope_kafka_topic_messages_per_minute{{cluster=\"local\",topic=\"{topic}\""
        )));
    }
    let json = watching.api("/api/v1/kafka/clusters/local/topics");
    let steady = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "steady")
        .unwrap();
    assert!(steady["rates"]["1m"]["per_minute"].is_null(), "{steady}");
    assert!(
        steady["rates"]["1m"]["count"].as_f64().unwrap() > 0.0,
        "{steady}"
    );

    // A minute and more: each figure is the count of the minute before the last scrape.
    let mut covered = None;
    assert!(pipescope_testkit::wait_until(
        Duration::from_secs(90),
        || {
            covered = watching.view().filter(|v| {
                v.time_ms >= first_reading("steady") + 65_000
                    && topics
                        .iter()
                        .all(|t| last_minute(v, t).is_some_and(|c| c.per_minute.is_some()))
            });
            covered.is_some()
        }
    ));
    let covered = covered.unwrap();
    let text = watching.metrics();
    let json = watching.api("/api/v1/kafka/clusters/local/topics");
    let detail = watching.api("/api/v1/kafka/clusters/local/topics/steady");
    let state = watching.live.get("local").unwrap();
    let flow = pipescope::api::flow_cluster(&state);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let sent = sent.lock().unwrap();
    let t_last = covered.time_ms;
    for topic in topics {
        let per_minute = last_minute(&covered, topic).unwrap().per_minute.unwrap();
        // A batch within 200 ms of an edge may count either way.
        let (least, most) = sent_between(&sent, topic, t_last - 60_000, t_last, 200);
        eprintln!("{topic}: {per_minute} per minute, sent {least}..={most} in the last minute");
        assert!(least > 0, "{topic}: nothing sent in the minute");
        assert!(
            per_minute >= least as f64 * 0.98 && per_minute <= most as f64 * 1.02,
            "{topic}: {per_minute} per minute, sent {least}..={most}"
        );
        assert!(text.contains(&format!(
            "pipescope_kafka_topic_messages_per_minute{{cluster=\"local\",topic=\"{topic}\",window=\"1m\"}}"
        )), "{text}");
        assert!(!text.contains(&format!(
            "pipescope_kafka_topic_messages_per_minute{{cluster=\"local\",topic=\"{topic}\",window=\"5m\"}}"
        )));
        // On the bus too: only the 1-minute window, and only once it was covered.
        let published = watching.published(TOPIC_MESSAGES_PER_MINUTE, &[("topic", topic)]);
        let one_minute = watching.published(
            TOPIC_MESSAGES_PER_MINUTE,
            &[("topic", topic), ("window", "1m")],
        );
        assert_eq!(published.len(), one_minute.len());
        assert!(
            published
                .iter()
                .all(|(t, _)| *t >= first_reading(topic) + 60_000)
        );
    }
    assert!(text.contains(
        "pipescope_kafka_partition_messages_per_minute{cluster=\"local\",topic=\"steady\",partition=\"0\",window=\"1m\"}"
    ));
    assert!(text.contains(
        "pipescope_kafka_partition_instant_messages_per_second{cluster=\"local\",topic=\"steady\",partition=\"1\"}"
    ));

    // The topic routes carry the windows and the instant rate, per topic and per partition.
    let steady = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "steady")
        .unwrap();
    assert_eq!(steady["partitions_with_rate"], 2, "{steady}");
    assert!(steady["rates"]["1m"]["per_minute"].is_number(), "{steady}");
    assert_eq!(steady["rates"]["1m"]["covered_s"], 60.0, "{steady}");
    assert!(steady["rates"]["5m"]["per_minute"].is_null(), "{steady}");
    assert!(steady["rates"]["5m"]["covered_s"].as_f64().unwrap() >= 60.0);
    assert!(
        steady["instant_messages_per_second"].is_number(),
        "{steady}"
    );
    let interval = steady["instant_interval_s"].as_f64().unwrap();
    assert!((0.5..=3.0).contains(&interval), "{steady}");
    assert_eq!(detail["partitions"][0]["rate_note"], "measured", "{detail}");
    assert!(detail["partitions"][0]["rates"]["1m"]["per_minute"].is_number());
    assert!(detail["partitions"][1]["instant_messages_per_second"].is_number());
    assert!(detail["partitions"][0]["latest"].as_i64().unwrap() > 0);
    // The flow graph (the overview's figures): the 1-minute count it comes from.
    let steady_flow = flow.topics.iter().find(|t| t.name == "steady").unwrap();
    let view = state.view.as_deref().unwrap();
    assert_eq!(steady_flow.last_minute, last_minute(view, "steady"));
    assert!(steady_flow.last_minute.unwrap().per_minute.is_some());
}

#[test]
fn a_group_held_at_a_known_position_has_exact_lag_and_a_commit_past_the_end_is_flagged() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "ledger", 1);
    // 60 records over about 3 s, each stamped with its recorded send time.
    let producer = producer(&bootstrap, 0);
    let mut sent = Vec::new();
    for _ in 0..60 {
        sent.push(send_now(&producer, "ledger", 0));
        producer.flush(TIMEOUT).expect("delivered");
        std::thread::sleep(Duration::from_millis(50)); // spreads the send times
    }
    let held = consumer(&bootstrap, "held");
    commit_standalone(&held, "ledger", 0, 20);
    let ahead = consumer(&bootstrap, "ahead");
    commit_standalone(&ahead, "ledger", 0, 1_000);

    let watching = Watching::start(&bootstrap, "verdict_window = 4\n");
    assert!(
        pipescope_testkit::wait_until(TIMEOUT, || watching
            .group_partition("held", "ledger", 0)
            .is_some_and(|p| p.window_observations >= 2)
            && watching.group_partition("ahead", "ledger", 0).is_some()),
        "the groups were never analysed"
    );
    let view = watching.view().unwrap();
    let p = watching.group_partition("held", "ledger", 0).unwrap();
    assert_eq!(p.committed, 20);
    assert_eq!(p.lag.offsets, Some(40));
    assert_eq!(
        p.lag_seconds.basis,
        pipescope_core::kafka::lag::LagSecondsBasis::Exact
    );
    let expected = (view.time_ms as i64 - sent[20]) as f64 / 1000.0;
    let seconds = p.lag_seconds.seconds.unwrap();
    eprintln!("lag {seconds} s (exact); recorded send time gives {expected} s");
    assert!(
        (seconds - expected).abs() <= 1.0,
        "lag {seconds} s, the record at offset 20 was sent {expected} s before the scrape"
    );

    let json = watching.api("/api/v1/kafka/clusters/local/groups/held");
    let part = &json["partitions"][0];
    assert_eq!(part["topic"], "ledger");
    assert_eq!(part["committed"], 20);
    assert_eq!(part["lag_offsets"], 40, "{json}");
    assert_eq!(part["lag_note"], serde_json::Value::Null);
    assert_eq!(part["lag_seconds_basis"], "exact");
    assert!(part["catch_up"]["state"].is_string(), "{json}");
    assert!(part["verdict"].is_string(), "{json}");
    assert_eq!(json["lag_offsets"], 40);
    assert_eq!(json["topics"][0]["topic"], "ledger", "{json}");
    assert_eq!(json["topics"][0]["lag_offsets"], 40, "{json}");
    // The raw fields stay: committed offsets with the record time, plain values.
    assert_eq!(json["offsets"][0]["committed"], 20, "{json}");
    assert_eq!(json["offsets"][0]["record_time_ms"], sent[20], "{json}");

    // Committed 1,000 on a log ending at 60: no race explains it, the lag is unknown.
    let json = watching.api("/api/v1/kafka/clusters/local/groups/ahead");
    let part = &json["partitions"][0];
    assert_eq!(part["lag_offsets"], serde_json::Value::Null, "{json}");
    assert_eq!(part["lag_note"], "committed offset beyond end offset");
    assert_eq!(json["partitions_beyond_end"], 1);
    let summary = watching.api("/api/v1/kafka/clusters/local/groups");
    let held_summary = summary["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "held")
        .unwrap();
    assert_eq!(held_summary["lag_offsets"], 40, "{summary}");

    let text = watching.metrics();
    for line in [
        "pipescope_kafka_group_lag_offsets{cluster=\"local\",group=\"held\",topic=\"ledger\",partition=\"0\"} 40",
        "pipescope_kafka_group_lag_seconds_estimated{cluster=\"local\",group=\"held\",topic=\"ledger\",partition=\"0\"} 0",
        "pipescope_kafka_group_committed_beyond_end{cluster=\"local\",group=\"ahead\",topic=\"ledger\",partition=\"0\"} 1",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    assert!(!text.contains("pipescope_kafka_group_lag_offsets{cluster=\"local\",group=\"ahead\""));
    // Its first sighting had no end-offset growth to compare with, so it was taken for a commit
    // race (lag 0, counted once); the second scrape still past the end flagged it.
    assert!(
        text.contains("pipescope_kafka_clamped_commits_total{cluster=\"local\"} 1"),
        "{text}"
    );
    // Per topic: sums per group and topic instead of partition series.
    let by_topic = Watching {
        cluster: cluster_config(&bootstrap, "metrics_granularity = \"topic\"\n"),
        live: watching.live.clone(),
        batches: Default::default(),
        rt: runtime(),
    };
    let text = by_topic.metrics();
    assert!(
        text.contains("pipescope_kafka_group_topic_lag_offsets_sum{cluster=\"local\",group=\"held\",topic=\"ledger\"} 40"),
        "{text}"
    );
    assert!(!text.contains("partition=\""), "{text}");
    drop((held, ahead));
}

/// One partition late ("processing skew"): a group caught up on two partitions and 30 records
/// behind on the third has skew 30 against its median lag 0, the worst partition in the API
/// only, and one series per group on /metrics.
#[test]
fn a_group_with_one_late_partition_has_its_skew_in_the_api_and_on_metrics() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "orders", 3);
    let producer = producer(&bootstrap, 0);
    for partition in 0..3 {
        for _ in 0..30 {
            send_now(&producer, "orders", partition);
        }
    }
    producer.flush(TIMEOUT).expect("delivered");
    let late = consumer(&bootstrap, "late");
    commit_standalone(&late, "orders", 0, 30);
    commit_standalone(&late, "orders", 1, 0);
    commit_standalone(&late, "orders", 2, 30);

    let watching = Watching::start(&bootstrap, "");
    assert!(
        pipescope_testkit::wait_until(TIMEOUT, || (0..3).all(|p| watching
            .group_partition("late", "orders", p)
            .is_some_and(|p| p.reported_this_scrape && p.lag.offsets.is_some()))),
        "the group was never analysed"
    );
    let json = watching.api("/api/v1/kafka/clusters/local/groups/late");
    let skew = &json["lag_skew"];
    assert_eq!(skew["offsets"], 30.0, "{json}");
    assert_eq!(skew["median_lag_offsets"], 0.0, "{json}");
    assert_eq!(skew["worst_lag_offsets"], 30, "{json}");
    assert_eq!(
        (&skew["worst_topic"], &skew["worst_partition"]),
        (&"orders".into(), &1.into()),
        "{json}"
    );
    assert_eq!(skew["partitions"], 3, "{json}");
    let text = watching.metrics();
    assert!(
        text.contains(
            "pipescope_kafka_group_lag_skew_offsets{cluster=\"local\",group=\"late\"} 30"
        ),
        "{text}"
    );
    drop(late);
}

/// STALLED, REWOUND and STOPPED from real commits, while a healthy consumer stays OK.
#[test]
fn stalled_rewound_and_stopped_consumers_while_a_healthy_one_stays_ok() {
    use pipescope_core::kafka::Verdict;

    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "jobs", 1);
    let producer = producer(&bootstrap, 0);
    let healthy = consumer(&bootstrap, "healthy");
    let stuck = consumer(&bootstrap, "stuck");
    // A consumer that committed once and whose commits then vanish (group deleted).
    let gone = consumer(&bootstrap, "gone");
    commit_standalone(&gone, "jobs", 0, 0);
    let mut end = 0i64;
    // One step: five more records, the healthy consumer commits the end, `stuck` re-commits.
    let mut step = |stuck_at: i64| {
        for _ in 0..5 {
            send_now(&producer, "jobs", 0);
        }
        producer.flush(TIMEOUT).expect("delivered");
        end += 5;
        commit_standalone(&healthy, "jobs", 0, end);
        commit_standalone(&stuck, "jobs", 0, stuck_at);
        std::thread::sleep(Duration::from_millis(100)); // pace: a few steps per scrape
    };
    step(5);
    let watching = Watching::start(&bootstrap, "verdict_window = 4\n");
    let started = Instant::now();
    let verdict = |group: &str| {
        watching
            .group_partition(group, "jobs", 0)
            .map(|p| (p.verdict, p.committed))
    };
    let deadline = Instant::now() + TIMEOUT;
    while verdict("stuck").map(|v| v.0) != Some(Verdict::Stalled) {
        assert!(
            Instant::now() < deadline,
            "never STALLED: {:?}",
            verdict("stuck")
        );
        step(5);
    }
    // Its lag grows while its committed offset stands: it cannot catch up.
    eprintln!("STALLED after {:?}", started.elapsed());
    let json = watching.api("/api/v1/kafka/clusters/local/groups/stuck");
    assert_eq!(json["verdict"], "STALLED", "{json}");
    assert_eq!(json["partitions"][0]["committed"], 5, "{json}");
    assert_eq!(
        json["partitions"][0]["catch_up"]["state"], "falling_behind",
        "{json}"
    );
    // ...over rates it says the span of.
    let rates_over_s = json["partitions"][0]["catch_up"]["rates_over_s"].as_f64();
    assert!(rates_over_s.is_some_and(|s| s > 0.0), "{json}");
    // Sought back: commits a lower offset, and keeps committing it.
    let deadline = Instant::now() + TIMEOUT;
    while verdict("stuck") != Some((Verdict::Rewound, 2)) {
        assert!(
            Instant::now() < deadline,
            "never REWOUND: {:?}",
            verdict("stuck")
        );
        step(2);
    }
    eprintln!("REWOUND after {:?}", started.elapsed());
    let json = watching.api("/api/v1/kafka/clusters/local/groups/stuck");
    assert_eq!(json["verdict"], "REWOUND", "{json}");
    assert_eq!(json["partitions"][0]["verdict"], "REWOUND", "{json}");
    let text = watching.metrics();
    assert!(text.contains("pipescope_kafka_group_verdict{cluster=\"local\",group=\"stuck\"} 4"));

    // The rewind was held back for a scrape: the first view with offset 2 was not REWOUND yet.
    let labels = [("group", "stuck"), ("topic", "jobs"), ("partition", "0")];
    let committed: BTreeMap<u64, f64> = watching
        .published(
            pipescope_core::kafka::metrics::GROUP_COMMITTED_OFFSET,
            &labels,
        )
        .into_iter()
        .collect();
    let verdicts: BTreeMap<u64, f64> = watching
        .published(
            pipescope_core::kafka::metrics::GROUP_PARTITION_VERDICT,
            &labels,
        )
        .into_iter()
        .collect();
    let first_back = committed
        .iter()
        .find(|(_, v)| **v == 2.0)
        .map(|(t, _)| *t)
        .unwrap();
    assert_eq!(
        verdicts[&first_back], 3.0,
        "STALLED until the rewind persists"
    );
    assert!(verdicts.values().any(|v| *v == 4.0));

    // The healthy consumer was OK at every scrape.
    let healthy_verdicts = watching.published(
        pipescope_core::kafka::metrics::GROUP_VERDICT,
        &[("group", "healthy")],
    );
    assert!(healthy_verdicts.len() >= 5, "{healthy_verdicts:?}");
    assert!(
        healthy_verdicts.iter().all(|(_, v)| *v == 0.0),
        "{healthy_verdicts:?}"
    );
    // STOPPED: the group's commits vanish; once the absence outlasts its window it is STOPPED.
    assert_eq!(
        verdict("gone").map(|v| v.0),
        Some(Verdict::Stalled),
        "a consumer that stopped with its offset committed is STALLED"
    );
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let deleted = watching
        .rt
        .block_on(admin.delete_groups(&["gone"], &AdminOptions::new()))
        .expect("DeleteGroups");
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    let deleted_at = Instant::now();
    let deadline = Instant::now() + TIMEOUT;
    while verdict("gone").map(|v| v.0) != Some(Verdict::Stopped) {
        assert!(
            Instant::now() < deadline,
            "never STOPPED: {:?}",
            verdict("gone")
        );
        step(2);
    }
    eprintln!(
        "STOPPED {:?} after the group was deleted",
        deleted_at.elapsed()
    );
    let text = watching.metrics();
    assert!(text.contains("pipescope_kafka_group_verdict{cluster=\"local\",group=\"gone\"} 2"));
    assert!(text.contains("pipescope_kafka_group_verdict{cluster=\"local\",group=\"healthy\"} 0"));
    drop((healthy, stuck, gone));
}

/// After a restart the analyzer rebuilds its histories and verdict windows from the store: the
/// first scrape already has an estimated lag in seconds and a full window.
#[test]
fn a_restarted_watcher_rebuilds_lag_history_and_verdict_windows_from_the_store() {
    use pipescope_core::kafka::lag::LagSecondsBasis;
    use pipescope_core::kafka::{
        AnalyzerConfig, GroupCommit, KafkaAnalyzer, OffsetRange, OffsetsSnapshot, PartitionOffsets,
        TopicPartition, Verdict, view_to_samples,
    };

    let snapshot = |time_ms: u64, latest: i64| OffsetsSnapshot {
        time_ms,
        partitions: vec![PartitionOffsets {
            tp: TopicPartition::new("t", 0),
            offsets: Ok(OffsetRange {
                earliest: 0,
                latest,
            }),
        }],
        commits: vec![GroupCommit {
            group: "g".into(),
            tp: TopicPartition::new("t", 0),
            committed: 100,
            record_time_ms: None,
        }],
    };
    let config = AnalyzerConfig {
        window_len: 4,
        ..AnalyzerConfig::default()
    };
    let t0 = now_ms() as u64 - 10_000;
    // Before the restart: six scrapes 500 ms apart, the log growing by 10 a scrape, the group
    // stuck at 100 (the end offset at t0). Their samples go to the store, as the bus feeds it.
    let (_dir, store, writer) = crate::support::temp_store(16);
    let mut before = KafkaAnalyzer::new(config);
    for i in 0..6 {
        let view = before.ingest(snapshot(t0 + i * 500, 100 + 10 * i as i64));
        assert!(writer.submit(Arc::new(view_to_samples(&view, "local"))));
        // Another cluster's points are not restored.
        assert!(writer.submit(Arc::new(view_to_samples(&view, "other"))));
    }
    writer.flush().unwrap();

    let after_restart = |restore: bool| {
        let mut analyzer = KafkaAnalyzer::new(config);
        if restore {
            let restored =
                pipescope::kafka::restore(&mut analyzer, &store, "local", t0 + 5_000, 60_000)
                    .unwrap();
            assert_eq!(restored, (1, 1));
        }
        let view = analyzer.ingest(snapshot(t0 + 3_000, 160));
        view.groups[0].topics[0].partitions[0].clone()
    };
    let fresh = after_restart(false);
    assert_eq!(fresh.lag_seconds.basis, LagSecondsBasis::Unknown);
    assert_eq!(fresh.verdict, Verdict::Ok);
    assert_eq!(fresh.window_observations, 1);

    let restored = after_restart(true);
    assert_eq!(restored.lag.offsets, Some(60));
    assert_eq!(restored.lag_seconds.basis, LagSecondsBasis::Estimated);
    assert_eq!(restored.lag_seconds.seconds, Some(3.0));
    assert!(restored.window_complete);
    assert_eq!(restored.verdict, Verdict::Stalled);
    writer.close();
}

/// After a restart the store's end offsets of the last 15 minutes (and one before) cover the
/// 1, 5 and 15 minute windows at the first scrape: no minutes of "since start" after a restart.
#[test]
fn a_restarted_watcher_covers_its_rate_windows_at_once_from_the_store() {
    use pipescope_core::kafka::metrics::PARTITION_END_OFFSET;
    use pipescope_core::kafka::{
        AnalyzerConfig, KafkaAnalyzer, OffsetsSnapshot, PartitionOffsets, TopicPartition,
    };
    use pipescope_core::windows::Window;
    use pipescope_core::{Labels, Sample};

    let interval = Duration::from_secs(10);
    let config = AnalyzerConfig::default();
    let now = now_ms() as u64;
    let (_dir, store, writer) = crate::support::temp_store(16);
    // Scraped every 10 s for the 16 minutes before the restart, 6 records a second.
    let labels = Labels::new([("cluster", "local"), ("topic", "t"), ("partition", "0")]);
    let end_at = |t: u64| (t - (now - 960_000)) as i64 * 6 / 1_000;
    let stored: Vec<Sample> = (0..96)
        .map(|k| now - 960_000 + k * 10_000)
        .map(|t| Sample::new(PARTITION_END_OFFSET, labels.clone(), t, end_at(t) as f64))
        .collect();
    assert!(writer.submit(Arc::new(stored)));
    writer.flush().unwrap();

    let first_scrape = |restore: bool| {
        let mut analyzer = KafkaAnalyzer::new(config);
        if restore {
            let lookback = pipescope::kafka::restore_lookback_ms(interval, &config);
            assert!(lookback >= Window::LONGEST.millis() + interval.as_millis() as u64);
            let restored =
                pipescope::kafka::restore(&mut analyzer, &store, "local", now, lookback).unwrap();
            assert_eq!(restored.0, 1);
        }
        let view = analyzer.ingest(&OffsetsSnapshot {
            time_ms: now,
            partitions: vec![PartitionOffsets {
                tp: TopicPartition::new("t", 0),
                offsets: Ok(OffsetRange {
                    earliest: 0,
                    latest: end_at(now),
                }),
            }],
            commits: vec![],
        });
        view.topics[0].rates.unwrap()
    };
    let fresh = first_scrape(false);
    assert_eq!(fresh.get(Window::OneMinute).per_minute, None);
    let restored = first_scrape(true);
    for w in Window::ALL {
        assert_eq!(restored.get(w).per_minute, Some(360.0), "{w:?}");
    }
    writer.close();
}

/// A consumer that commits at every step but reads less than is written: its lag grows across
/// the whole window while its committed offset moves, so it is WARN (not STALLED, not STOPPED);
/// a healthy consumer on the same topic stays OK throughout.
#[test]
fn a_consumer_slower_than_its_producer_is_warn_while_a_healthy_one_stays_ok() {
    use pipescope_core::kafka::Verdict;
    use pipescope_core::kafka::lag::CatchUp;

    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "feed", 1);
    let producer = producer(&bootstrap, 0);
    let healthy = consumer(&bootstrap, "keeps-up");
    let slow = consumer(&bootstrap, "slow");
    let (mut end, mut slow_at) = (0i64, 0i64);
    // One step: five more records; the healthy consumer commits the end, the slow one a single
    // record more. Lag dips only by that one record between the flush and the commit, a few
    // milliseconds, so two scrapes half a second apart see it grow.
    let mut step = || {
        for _ in 0..5 {
            send_now(&producer, "feed", 0);
        }
        producer.flush(TIMEOUT).expect("delivered");
        end += 5;
        slow_at += 1;
        commit_standalone(&healthy, "feed", 0, end);
        commit_standalone(&slow, "feed", 0, slow_at);
        std::thread::sleep(Duration::from_millis(100)); // pace: a few steps per scrape
    };
    step();
    let watching = Watching::start(&bootstrap, "verdict_window = 4\n");
    let started = Instant::now();
    let deadline = Instant::now() + TIMEOUT;
    let warned = loop {
        if let Some(p) = watching.group_partition("slow", "feed", 0)
            && p.verdict == Verdict::Warn
        {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "never WARN: {:?}",
            watching.group_partition("slow", "feed", 0)
        );
        step();
    };
    eprintln!("WARN after {:?}", started.elapsed());
    assert!(warned.window_complete, "{warned:?}");
    let latest = warned.latest.expect("end offset known");
    assert_eq!(warned.lag.offsets, Some(latest - warned.committed));
    assert!(warned.lag.offsets.unwrap() > 0, "{warned:?}");
    assert!(
        matches!(warned.catch_up, CatchUp::FallingBehind { .. }),
        "{warned:?}"
    );
    let json = watching.api("/api/v1/kafka/clusters/local/groups/slow");
    assert_eq!(json["verdict"], "WARN", "{json}");
    assert!(
        watching
            .metrics()
            .contains("pipescope_kafka_group_verdict{cluster=\"local\",group=\"slow\"} 1")
    );

    // Before WARN the slow consumer was only ever OK (window not full yet): never a worse verdict.
    let slow_verdicts = watching.published(
        pipescope_core::kafka::metrics::GROUP_VERDICT,
        &[("group", "slow")],
    );
    assert!(
        slow_verdicts.iter().all(|(_, v)| *v == 0.0 || *v == 1.0),
        "{slow_verdicts:?}"
    );
    // Its committed offsets moved forward at every scrape that saw it.
    let committed: Vec<f64> = watching
        .published(
            pipescope_core::kafka::metrics::GROUP_COMMITTED_OFFSET,
            &[("group", "slow"), ("topic", "feed"), ("partition", "0")],
        )
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert!(committed.len() >= 4, "{committed:?}");
    assert!(committed.windows(2).all(|w| w[1] >= w[0]), "{committed:?}");
    let healthy_verdicts = watching.published(
        pipescope_core::kafka::metrics::GROUP_VERDICT,
        &[("group", "keeps-up")],
    );
    assert!(healthy_verdicts.len() >= 4, "{healthy_verdicts:?}");
    assert!(
        healthy_verdicts.iter().all(|(_, v)| *v == 0.0),
        "{healthy_verdicts:?}"
    );
    drop((healthy, slow));
}

/// Records in lz4 and zstd batches: the record time at a committed offset inside such a batch is
/// read exactly (the Fetch answer is decompressed). lz4 batches come from librdkafka; zstd ones
/// from a Produce request of our own (the bundled librdkafka is built without zstd).
#[test]
fn record_times_are_read_from_lz4_and_zstd_batches() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{FetchRequest, ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{Compression, RecordBatchDecoder};
    use pipescope_testkit::RecordBatchBuilder;

    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    let base_ms = now_ms() - 600_000;
    let pool = pipescope::kafka::conn::Pool::new(pipescope::kafka::conn::ConnectOptions {
        client_id: "it".into(),
        timeout: TIMEOUT,
        tls: None,
        sasl: None,
        max_backoff: Duration::from_secs(1),
    });
    let rt = runtime();
    let payload = |i: i64| format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(64));

    // lz4 from librdkafka: a long linger sends the 20 records as one compressed batch.
    create_topic(&bootstrap, "packed-lz4", 1);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("compression.type", "lz4")
        .set("linger.ms", "200")
        .create()
        .unwrap();
    for i in 0..20i64 {
        let value = payload(i);
        producer
            .send(
                BaseRecord::<(), _>::to("packed-lz4")
                    .partition(0)
                    .payload(&value)
                    .timestamp(base_ms + i * 1000),
            )
            .expect("queued");
    }
    producer.flush(TIMEOUT).expect("delivered");

    // zstd: 20 records (a batch each: they carry no producer sequence), compressed here, sent in
    // a Produce request.
    create_topic(&bootstrap, "packed-zstd", 1);
    let batch = (0..20i64)
        .fold(RecordBatchBuilder::new(), |batch, i| {
            batch.record(i, base_ms + i * 1000, payload(i))
        })
        .compression(Compression::Zstd)
        .build();
    let mut request = ProduceRequest::default();
    request.acks = 1;
    request.timeout_ms = 10_000;
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("packed-zstd"));
    let mut partition = PartitionProduceData::default();
    partition.records = Some(batch);
    topic.partition_data = vec![partition];
    request.topic_data = vec![topic];
    let answer = rt
        .block_on(pool.request(&bootstrap, 9, &request))
        .expect("Produce");
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 0);

    for codec in ["lz4", "zstd"] {
        let group = consumer(&bootstrap, &format!("reads-{codec}"));
        commit_standalone(&group, &format!("packed-{codec}"), 0, 13);
    }
    let state = scrape_once(&cluster_config(&bootstrap, ""));
    for codec in ["lz4", "zstd"] {
        let group = state
            .group(&format!("reads-{codec}"))
            .expect("group listed");
        let offsets = group.offsets.as_ref().expect("offsets read");
        assert_eq!(offsets.len(), 1, "{offsets:?}");
        let c = &offsets[0];
        assert_eq!(c.committed, 13);
        assert_eq!(
            c.record_time_ms,
            Some((base_ms + 13_000) as u64),
            "{codec}: {:?}",
            c.record_time_error
        );
    }

    // The broker hands the batches back compressed as they were sent, so the decoders above
    // were exercised (a broker that re-encoded them would fail here).
    for (topic, compression) in [
        ("packed-lz4", Compression::Lz4),
        ("packed-zstd", Compression::Zstd),
    ] {
        let mut request = FetchRequest::default();
        request.replica_id = (-1).into();
        request.max_bytes = 1 << 20;
        request.session_epoch = -1;
        let mut t = FetchTopic::default();
        t.topic = TopicName(StrBytes::from_static_str(topic));
        let mut p = FetchPartition::default();
        p.partition_max_bytes = 1 << 20;
        t.partitions = vec![p];
        request.topics = vec![t];
        let answer = rt
            .block_on(pool.request(&bootstrap, 11, &request))
            .expect("Fetch");
        let data = answer.responses[0].partitions[0]
            .records
            .clone()
            .expect("records");
        let info = RecordBatchDecoder::decode_batch_info(&mut data.clone()).expect("batch headers");
        let compressions: Vec<Compression> = info.iter().map(|b| b.compression).collect();
        assert!(
            compressions.contains(&compression),
            "{topic}: batches came back as {compressions:?}"
        );
        let count: i32 = info.iter().map(|b| b.record_count).sum();
        assert_eq!(count, 20, "{topic}");
    }
}

/// Sends one record per stamp to partition 0 of `topic`, stamped so, and waits for delivery.
fn produce_stamped(bootstrap: &str, topic: &str, stamps: &[i64]) {
    let producer = producer(bootstrap, 5);
    for stamp in stamps {
        let payload = stamp.to_string();
        let mut record = BaseRecord::<(), _>::to(topic)
            .partition(0)
            .payload(&payload)
            .timestamp(*stamp);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(TIMEOUT).expect("all records delivered");
}

/// Retention deletes records before a slow group read them: lost for that group, exactly, and
/// not for a group that had read past them. tansu 0.6 has no DeleteRecords (its engines'
/// `delete_records` is `todo!()`: rdkafka's `delete_records` gets a transport failure and the
/// broker answers nothing more), but its sqlite engine's maintenance deletes the records of a
/// `cleanup.policy=delete` topic older than `retention.ms` by their timestamps: records stamped
/// in the past are deleted at the next maintenance.
#[test]
fn records_deleted_by_retention_before_a_slow_group_read_them_are_lost_for_that_group() {
    let broker = Tansu::start_with(TansuOptions {
        maintenance_interval: Some(Duration::from_secs(1)),
        ..Default::default()
    });
    let bootstrap = broker.bootstrap();
    let retention_ms: i64 = 600_000;
    create_topic_with_retention(&bootstrap, "events", retention_ms);
    let slow = consumer(&bootstrap, "slow");
    commit_standalone(&slow, "events", 0, 5);
    let fast = consumer(&bootstrap, "fast");
    commit_standalone(&fast, "events", 0, 25);
    let watching = Watching::start(&bootstrap, "verdict_window = 4\n");

    // Offsets 0..19 are past retention at once; 20..29 will be in 20 s; 30..34 stay.
    let now = now_ms();
    let first_expiry = now + 20_000;
    let stamps: Vec<i64> = std::iter::repeat_n(now - retention_ms - 60_000, 20)
        .chain(std::iter::repeat_n(first_expiry - retention_ms, 10))
        .chain(std::iter::repeat_n(now, 5))
        .collect();
    produce_stamped(&bootstrap, "events", &stamps);

    let lost = |group: &str| {
        watching
            .group_partition(group, "events", 0)
            .map(|p| p.lost_to_retention)
    };
    let log_start = || {
        let view = watching.view()?;
        view.partitions
            .iter()
            .find(|p| &*p.topic == "events")
            .and_then(|p| p.earliest)
    };
    assert!(
        pipescope_testkit::wait_until(TIMEOUT, || log_start() == Some(20)
            && lost("slow") == Some(15)),
        "retention never deleted offsets 0..19 (log start {:?}, slow lost {:?})",
        log_start(),
        lost("slow")
    );
    assert!(now_ms() < first_expiry, "set-up outlasted the first stage");
    assert_eq!(lost("fast"), Some(0), "fast had read past offset 20");
    let p = watching.group_partition("slow", "events", 0).unwrap();
    assert_eq!(p.verdict, pipescope_core::kafka::Verdict::Lost);

    // The log start moves on to 30: only the new stretch is added, for both groups.
    assert!(
        pipescope_testkit::wait_until(Duration::from_secs(40), || log_start() == Some(30)
            && lost("slow") == Some(25)),
        "retention never deleted offsets 20..29 (log start {:?}, slow lost {:?})",
        log_start(),
        lost("slow")
    );
    assert!(
        pipescope_testkit::wait_until(TIMEOUT, || lost("fast") == Some(5)),
        "fast lost {:?}",
        lost("fast")
    );
    // Later scrapes see the same state again and add nothing.
    let seen = watching.view().unwrap().time_ms;
    assert!(pipescope_testkit::wait_until(TIMEOUT, || watching
        .view()
        .is_some_and(|v| v.time_ms >= seen + 1_000)));
    assert_eq!((lost("slow"), lost("fast")), (Some(25), Some(5)));

    let json = watching.api("/api/v1/kafka/clusters/local/groups/slow");
    assert_eq!(json["lost_to_retention"], 25, "{json}");
    assert_eq!(json["verdict"], "LOST", "{json}");
    assert_eq!(
        json["verdict_reason"],
        "events partition 0: committed offset 5 is below the log start 30: records deleted by retention or DeleteRecords before the group read them (25 lost so far)",
        "{json}"
    );
    assert_eq!(json["topics"][0]["lost_to_retention"], 25, "{json}");
    assert_eq!(json["partitions"][0]["lost_to_retention"], 25, "{json}");
    let summary = watching.api("/api/v1/kafka/clusters/local/groups");
    let fast_summary = summary["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "fast")
        .unwrap();
    assert_eq!(fast_summary["lost_to_retention"], 5, "{summary}");
    let text = watching.metrics();
    for line in [
        "pipescope_kafka_group_lost_records_total{cluster=\"local\",group=\"slow\",topic=\"events\"} 25",
        "pipescope_kafka_group_lost_records_total{cluster=\"local\",group=\"fast\",topic=\"events\"} 5",
        "pipescope_kafka_group_verdict{cluster=\"local\",group=\"slow\"} 5",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    drop((slow, fast));
}
