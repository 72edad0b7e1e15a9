//! The scripted Kafka broker answers real Kafka requests (kafka-protocol's types on a plain TCP
//! socket), as its documentation says, counts them, and stops listening when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ListGroupsRequest, ListGroupsResponse,
    MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use pipescope_testkit::scripted_kafka::{LATEST, ScriptedBroker, TOPIC};

/// One request on `stream`, its answer decoded.
pub(crate) fn call<Req: Encodable, Resp: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &Req,
) -> Resp {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(StrBytes::from_static_str("testkit"));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.put(body);
    stream.write_all(&frame).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).unwrap();
    let mut answer = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut answer).unwrap();
    let mut answer = bytes::Bytes::from(answer);
    let header = ResponseHeader::decode(&mut answer, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    let response = Resp::decode(&mut answer, version).unwrap();
    assert!(!answer.has_remaining(), "{key:?}: bytes left over");
    response
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn it_answers_as_documented_counts_requests_and_stops_when_dropped() {
    let rt = runtime();
    let broker = rt.block_on(ScriptedBroker::start());
    let mut stream = TcpStream::connect(broker.bootstrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    let versions: ApiVersionsResponse = call(
        &mut stream,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    let offset_fetch = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::OffsetFetch as i16)
        .unwrap();
    assert_eq!(offset_fetch.max_version, 8, "batched OffsetFetch");

    let metadata: MetadataResponse = call(
        &mut stream,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default(),
    );
    assert_eq!(metadata.cluster_id.as_deref(), Some("scripted-cluster"));
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(metadata.brokers[0].port, i32::from(broker.port()));
    let topic = &metadata.topics[0];
    assert_eq!(topic.name.as_ref().unwrap().0.as_str(), TOPIC);
    assert_eq!(topic.partitions.len(), LATEST.len());

    let groups: ListGroupsResponse = call(
        &mut stream,
        ApiKey::ListGroups,
        4,
        &ListGroupsRequest::default(),
    );
    let names: Vec<&str> = groups
        .groups
        .iter()
        .map(|g| g.group_id.0.as_str())
        .collect();
    assert_eq!(names, ["payments-app", "reporting"]);

    assert_eq!(broker.requests(ApiKey::ApiVersions), 1);
    assert_eq!(broker.requests(ApiKey::Metadata), 1);
    assert_eq!(broker.requests(ApiKey::Fetch), 0);
    assert_eq!(broker.connections(), 1);

    let bootstrap = broker.bootstrap();
    drop(broker);
    assert!(
        pipescope_testkit::wait_until(Duration::from_secs(10), || TcpStream::connect(&bootstrap)
            .is_err()),
        "a dropped broker stops listening"
    );
}

#[test]
fn the_builder_changes_what_it_answers() {
    let rt = runtime();
    let dead = pipescope_testkit::free_port();
    let broker = rt.block_on(
        ScriptedBroker::builder()
            .old_versions()
            .extra_groups(2)
            .dead_broker(dead)
            .start(),
    );
    let mut stream = TcpStream::connect(broker.bootstrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let versions: ApiVersionsResponse = call(
        &mut stream,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    let max = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .unwrap()
            .max_version
    };
    assert_eq!(max(ApiKey::OffsetFetch), 7);
    assert_eq!(max(ApiKey::FindCoordinator), 3);

    let metadata: MetadataResponse = call(
        &mut stream,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default(),
    );
    let brokers: Vec<(i32, i32)> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.port))
        .collect();
    assert_eq!(
        brokers,
        [(1, i32::from(broker.port())), (2, i32::from(dead))]
    );
    assert_eq!(metadata.topics[0].partitions[1].leader_id.0, 2);

    let groups: ListGroupsResponse = call(
        &mut stream,
        ApiKey::ListGroups,
        4,
        &ListGroupsRequest::default(),
    );
    let names: Vec<&str> = groups
        .groups
        .iter()
        .map(|g| g.group_id.0.as_str())
        .collect();
    assert_eq!(names, ["payments-app", "reporting", "idle-0", "idle-1"]);
}
