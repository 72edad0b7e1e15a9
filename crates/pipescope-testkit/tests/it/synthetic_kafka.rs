//! The synthetic cluster's answers against tansu's, field by field, where other clients read
//! more than pipescope's scrape does (pipescope's `synthetic_cluster` test compares what the
//! scrape fills): an answer no broker gives can crash a peer measured on the same cluster.

use std::net::TcpStream;
use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse,
};
use kafka_protocol::protocol::StrBytes;
use pipescope_testkit::{SyntheticCluster, Tansu};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

use crate::scripted_kafka::{call, runtime};

/// The highest DescribeConfigs version librdkafka sends: from v1 on, each entry carries its
/// source (an int8), which librdkafka hands to its caller as is.
const LIBRDKAFKA_DESCRIBE_CONFIGS: i16 = 1;
/// ConfigSource values Kafka defines (DescribeConfigsResponse): 1 to 6 and 8 (GROUP_CONFIG).
const CONFIG_SOURCES: [i8; 7] = [1, 2, 3, 4, 5, 6, 8];
const TOPIC_RESOURCE: i8 = 2;

/// A connection to `bootstrap` that gives up on an answer after 10 s.
fn connect(bootstrap: &str) -> TcpStream {
    let stream = TcpStream::connect(bootstrap).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Each config of `topic` as `bootstrap` describes it: name, value, read-only, source, sensitive.
fn described(bootstrap: &str, topic: &str) -> Vec<(String, Option<String>, bool, i8, bool)> {
    let mut stream = connect(bootstrap);
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = TOPIC_RESOURCE;
    resource.resource_name = StrBytes::from_string(topic.to_string());
    resource.configuration_keys = None;
    let mut request = DescribeConfigsRequest::default();
    request.resources = vec![resource];
    let answer: DescribeConfigsResponse = call(
        &mut stream,
        ApiKey::DescribeConfigs,
        LIBRDKAFKA_DESCRIBE_CONFIGS,
        &request,
    );
    assert_eq!(answer.results.len(), 1, "{answer:?}");
    let mut configs: Vec<_> = answer.results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(ToString::to_string),
                c.read_only,
                c.config_source,
                c.is_sensitive,
            )
        })
        .collect();
    configs.sort();
    configs
}

#[test]
fn describe_configs_answers_each_config_with_a_source_as_tansu_does() {
    let rt = runtime();
    let synthetic = rt.block_on(
        SyntheticCluster::builder()
            .brokers(1)
            .topics(1)
            .partitions_per_topic(1)
            .groups(0)
            .start(),
    );
    let topic = SyntheticCluster::topic_name(0);
    let got = described(&synthetic.bootstrap(), &topic);

    // tansu describes the configs a topic was created with: the synthetic cluster's.
    let broker = Tansu::start();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let mut new = NewTopic::new(&topic, 1, TopicReplication::Fixed(1));
    for (name, value, ..) in &got {
        new = new.set(name, value.as_deref().unwrap());
    }
    for result in rt
        .block_on(admin.create_topics(&[new], &AdminOptions::new()))
        .unwrap()
    {
        result.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
    let expected = described(&broker.bootstrap(), &topic);

    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got, expected, "synthetic (left) against tansu (right)");
    for (name, _, _, source, _) in &got {
        assert!(
            CONFIG_SOURCES.contains(source),
            "{name}: source {source} is none Kafka defines"
        );
    }
}

/// The coordinators `bootstrap` names for `keys` (FindCoordinator v4, batched), as
/// (key, error code, whether a broker is named).
fn coordinators(bootstrap: &str, keys: &[&str]) -> Vec<(String, i16, bool)> {
    let mut stream = connect(bootstrap);
    let mut request = FindCoordinatorRequest::default();
    request.coordinator_keys = keys
        .iter()
        .map(|k| StrBytes::from_string(k.to_string()))
        .collect();
    let answer: FindCoordinatorResponse = call(&mut stream, ApiKey::FindCoordinator, 4, &request);
    answer
        .coordinators
        .iter()
        .map(|c| {
            (
                c.key.to_string(),
                c.error_code,
                c.node_id.0 >= 0 && c.port > 0,
            )
        })
        .collect()
}

#[test]
fn find_coordinator_names_a_broker_for_any_group_as_tansu_does() {
    let rt = runtime();
    let synthetic = rt.block_on(
        SyntheticCluster::builder()
            .brokers(3)
            .topics(1)
            .partitions_per_topic(1)
            .groups(2)
            .start(),
    );
    // A listed group and one a consumer is about to create.
    let keys = [
        SyntheticCluster::group_name(1),
        "not-yet-a-group".to_string(),
    ];
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let named = |key: &str| (key.to_string(), 0, true);
    let expected: Vec<_> = keys.iter().map(|k| named(k)).collect();
    assert_eq!(coordinators(&synthetic.bootstrap(), &keys), expected);
    let broker = Tansu::start();
    assert_eq!(coordinators(&broker.bootstrap(), &keys), expected, "tansu");
}
