//! Round trips through tansu with librdkafka, on both storage engines. The assertions record
//! which of tansu's answers are right on each engine; docs/brokers.md is the table of them.

use std::time::{Duration, Instant};

use pipescope_testkit::{Tansu, TansuOptions, TansuStorage};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const RECORDS: usize = 10_000;
const PARTITIONS: i32 = 3;
const TIMEOUT: Duration = Duration::from_secs(30);

fn create_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = runtime
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        ))
        .unwrap();
    for result in results {
        result.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// Produces RECORDS records in batches of many records each (linger), returns delivered count.
fn produce(bootstrap: &str, topic: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.num.messages", "1000")
        .create()
        .unwrap();
    for i in 0..RECORDS {
        let key = format!("key-{}", i % 97);
        let payload = format!("{{\"n\":{i}}}");
        let mut record = BaseRecord::to(topic).key(&key).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("produce: {e}"),
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

/// Consumes until `RECORDS` records arrived, commits, and returns the committed offsets' sum.
fn consume_all_and_commit(consumer: &BaseConsumer, topic: &str) -> i64 {
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut received = 0;
    while received < RECORDS {
        assert!(
            Instant::now() < deadline,
            "only {received} of {RECORDS} records consumed"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("consume");
            assert!(message.payload().is_some());
            received += 1;
        }
    }
    assert_eq!(received, RECORDS);
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    committed_sum(consumer)
}

fn committed_sum(consumer: &BaseConsumer) -> i64 {
    consumer
        .committed(TIMEOUT)
        .expect("fetch committed offsets")
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().expect("a committed offset"))
        .sum()
}

fn high_watermarks(consumer: &BaseConsumer, topic: &str) -> i64 {
    (0..PARTITIONS)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, TIMEOUT)
                .expect("list offsets")
                .1
        })
        .sum()
}

#[test]
fn sqlite_engine_round_trip_offsets_and_commits_are_exact() {
    let broker = Tansu::start();
    create_topic(&broker.bootstrap(), "calls");
    produce(&broker.bootstrap(), "calls");
    let consumer = consumer(&broker.bootstrap(), "counters");
    assert_eq!(
        high_watermarks(&consumer, "calls"),
        RECORDS as i64,
        "end offsets are exact"
    );
    assert_eq!(consume_all_and_commit(&consumer, "calls"), RECORDS as i64);
    // A new client reads the same committed offsets back (OffsetFetch).
    let reader = self::consumer(&broker.bootstrap(), "counters");
    let mut partitions = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        partitions.add_partition("calls", p);
    }
    let committed = reader
        .committed_offsets(partitions, TIMEOUT)
        .expect("offset fetch");
    let sum: i64 = committed
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap())
        .sum();
    assert_eq!(sum, RECORDS as i64);
}

#[test]
fn sqlite_engine_fails_describe_groups() {
    let broker = Tansu::start();
    create_topic(&broker.bootstrap(), "calls");
    produce(&broker.bootstrap(), "calls");
    let consumer = consumer(&broker.bootstrap(), "counters");
    consume_all_and_commit(&consumer, "calls");
    // DescribeGroups: the engine cannot decode the group it stored and drops the connection.
    let described = consumer.fetch_group_list(Some("counters"), Duration::from_secs(10));
    match described {
        Err(e) => assert!(e.to_string().contains("BrokerTransportFailure"), "{e}"),
        Ok(list) => panic!(
            "tansu's sqlite engine now describes groups: update docs/brokers.md ({:?})",
            list.groups()
                .iter()
                .map(|g| (g.name().to_string(), g.members().len()))
                .collect::<Vec<_>>()
        ),
    }
}

#[test]
fn memory_engine_round_trip_works_but_end_offsets_are_wrong() {
    let broker = Tansu::start_with(TansuOptions {
        storage: TansuStorage::Memory,
        ..Default::default()
    });
    create_topic(&broker.bootstrap(), "calls");
    produce(&broker.bootstrap(), "calls");
    let consumer = consumer(&broker.bootstrap(), "counters");
    // "latest" is the base offset of the last batch + 1: short by the batch's other records.
    let high = high_watermarks(&consumer, "calls");
    assert!(
        high < RECORDS as i64,
        "memory engine end offsets are now right ({high}): update docs/brokers.md"
    );
    assert_eq!(
        consume_all_and_commit(&consumer, "calls"),
        RECORDS as i64,
        "commits are right"
    );
    // Describing the group works and lists the member, but without its client id, host,
    // protocol or assignment.
    let groups = consumer
        .fetch_group_list(Some("counters"), Duration::from_secs(10))
        .expect("memory engine answers DescribeGroups");
    let group = groups
        .groups()
        .iter()
        .find(|g| g.name() == "counters")
        .expect("the group is listed");
    assert_eq!(group.state(), "Stable");
    assert_eq!(group.members().len(), 1);
    let member = &group.members()[0];
    assert!(member.id().starts_with("rdkafka-"), "{}", member.id());
    assert_eq!(
        (
            member.client_id(),
            member.client_host(),
            member.assignment(),
            group.protocol()
        ),
        ("", "", None, ""),
        "memory engine now describes members fully: update docs/brokers.md"
    );
}
