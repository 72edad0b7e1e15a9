//! A Kafka broker that speaks the real protocol (kafka-protocol's types) and answers as Apache
//! Kafka documents it, from a script: for what tansu answers wrongly or not at all (group
//! members and assignments, producers, committed offsets of many groups in one OffsetFetch v8+
//! request), and for brokers that misbehave in ways a real one cannot be made to on demand.
//!
//! The cluster it serves is fixed for now:
//! - broker 1 on the port it listens on (rack `rack-a`), controller of cluster
//!   `scripted-cluster`;
//! - topic [`TOPIC`] with two partitions, led by broker 1, replicas 1 and 2 with only 1 in sync
//!   (so under-replicated), log start 0 and log end offsets [`LATEST`]; topic configs
//!   `cleanup.policy=compact`, `retention.ms=604800000`, `retention.bytes=-1`,
//!   `min.insync.replicas=2`;
//! - the record at offset `o` of either partition is stamped [`RECORD_TIME_BASE`] `+ o * 1000`;
//! - group `payments-app` (Stable, protocol `range`; member `m-1` of client `payments-1` on
//!   /10.0.0.1 assigned partition 0, `m-2` of `payments-2` on /10.0.0.2 assigned partition 1),
//!   committed at 50 on partition 0 and 60 on partition 1;
//! - group `reporting` (Empty), whose committed offsets are refused with
//!   GROUP_AUTHORIZATION_FAILED;
//! - partition 0 has one active producer (id 7, epoch 1, last sequence 41, last timestamp
//!   [`RECORD_TIME_BASE`]); partition 1 answers DescribeProducers with NOT_LEADER_OR_FOLLOWER;
//! - SASL PLAIN with user `ops`, password `ops-pw` ([`PLAIN_TOKEN`]), for clients that
//!   authenticate; clients that do not are served as well.
//!
//! [`ScriptedBroker::builder`] changes what it answers (TLS, a dead second broker, old API
//! versions, big batches, dropped or hanging DescribeGroups, more groups, crafted counts that
//! claim billions of items); the broker counts
//! the requests it received per API and the connections made to it.
//!
//! ```no_run
//! # async fn example() {
//! use pipescope_testkit::scripted_kafka::ScriptedBroker;
//! use kafka_protocol::messages::ApiKey;
//! let broker = ScriptedBroker::builder().old_versions().start().await;
//! // ... point a client at broker.bootstrap() ...
//! assert_eq!(broker.requests(ApiKey::FindCoordinator), 2);
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedPartitions,
};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::kafka_wire::{Counted, Counts, api_versions, encode, read_request, write_answer};
use crate::records::RecordBatchBuilder;

/// The one topic of the scripted cluster.
pub const TOPIC: &str = "payments";
/// Log end offsets of the topic's two partitions (their log start is 0).
pub const LATEST: [i64; 2] = [50, 70];
/// The timestamp of offset 0; the record at offset `o` is stamped `RECORD_TIME_BASE + o * 1000`.
pub const RECORD_TIME_BASE: i64 = 1_700_000_000_000;
/// The SASL PLAIN token the broker accepts (user "ops", password "ops-pw").
pub const PLAIN_TOKEN: &[u8] = b"\0ops\0ops-pw";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// What the scripted broker answers beyond the fixed cluster (see the module's documentation):
/// made by [`ScriptedBroker::builder`], started with [`Self::start`].
#[derive(Clone, Default)]
pub struct ScriptedBrokerBuilder {
    tls: Option<tokio_rustls::TlsAcceptor>,
    hang_describe_groups: bool,
    dead_broker_port: Option<u16>,
    old_versions: bool,
    big_batches: bool,
    poison_group: Option<String>,
    drop_describe_groups: bool,
    extra_groups: usize,
    hostile_assignment: bool,
    /// How many Metadata answers are still to be crafted.
    hostile_metadata: Arc<AtomicUsize>,
    /// How many DescribeGroups requests are still to be dropped, whatever they name.
    drop_next_describe_groups: Arc<AtomicUsize>,
}

/// A consumer-protocol assignment of version 0 that claims 2^31 - 1 topics in six bytes.
pub const HOSTILE_ASSIGNMENT: &[u8] = &[0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF];

impl std::fmt::Debug for ScriptedBrokerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedBrokerBuilder")
            .field("tls", &self.tls.is_some())
            .field("hang_describe_groups", &self.hang_describe_groups)
            .field("dead_broker_port", &self.dead_broker_port)
            .field("old_versions", &self.old_versions)
            .field("big_batches", &self.big_batches)
            .field("poison_group", &self.poison_group)
            .field("drop_describe_groups", &self.drop_describe_groups)
            .field("extra_groups", &self.extra_groups)
            .field("hostile_assignment", &self.hostile_assignment)
            .field("hostile_metadata", &self.hostile_metadata)
            .field("drop_next_describe_groups", &self.drop_next_describe_groups)
            .finish()
    }
}

impl ScriptedBrokerBuilder {
    /// Serves behind TLS with this acceptor (which may require client certificates).
    pub fn tls(mut self, acceptor: tokio_rustls::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Never answers DescribeGroups (the connection stays open), as a stuck broker would.
    pub fn hang_describe_groups(mut self) -> Self {
        self.hang_describe_groups = true;
        self
    }

    /// Lists a broker 2 at `port` (where nothing should listen) as the leader of partition 1.
    pub fn dead_broker(mut self, port: u16) -> Self {
        self.dead_broker_port = Some(port);
        self
    }

    /// Speaks only OffsetFetch v7 and FindCoordinator v3 (one group per request), as brokers
    /// before Kafka 3.0 do.
    pub fn old_versions(mut self) -> Self {
        self.old_versions = true;
        self
    }

    /// Records of 10 KiB, and batches cut to the partition limit for every partition but the
    /// first of a Fetch answer, as Kafka does (KIP-74); `payments-app` is then committed at 45
    /// on partition 0, so it lags on both partitions.
    pub fn big_batches(mut self) -> Self {
        self.big_batches = true;
        self
    }

    /// Drops the connection on a DescribeGroups that names `group` (as tansu's sqlite engine
    /// does for every group).
    pub fn poison_group(mut self, group: &str) -> Self {
        self.poison_group = Some(group.to_string());
        self
    }

    /// Drops the connection on every DescribeGroups (tansu's sqlite engine).
    pub fn drop_describe_groups(mut self) -> Self {
        self.drop_describe_groups = true;
        self
    }

    /// Lists `n` more groups (`idle-0`, `idle-1`, ...), Empty and committed like `payments-app`.
    pub fn extra_groups(mut self, n: usize) -> Self {
        self.extra_groups = n;
        self
    }

    /// Member `m-2` of `payments-app` is assigned [`HOSTILE_ASSIGNMENT`].
    pub fn hostile_assignment(mut self) -> Self {
        self.hostile_assignment = true;
        self
    }

    /// The first `n` Metadata answers end in a brokers array that claims 2^32 - 2 items (2^31 - 1
    /// in versions before 9), with nothing after it; later answers are the usual ones.
    pub fn hostile_metadata(self, n: usize) -> Self {
        self.hostile_metadata.store(n, Ordering::SeqCst);
        self
    }

    /// Listens on a free port of 127.0.0.1 and serves on the current tokio runtime (which must
    /// have its IO and timer drivers enabled) until the returned handle drops.
    pub async fn start(self) -> ScriptedBroker {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("cannot bind a port on 127.0.0.1 for the scripted broker");
        let port = listener.local_addr().unwrap().port();
        let counts = Counts::default();
        let shared = counts.clone();
        let drop_next_describe_groups = Arc::clone(&self.drop_next_describe_groups);
        let script = Arc::new(self);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.add(Counted::Connection);
                let counts = shared.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    match script.tls.clone() {
                        None => serve(stream, port, counts, &script).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, port, counts, &script).await;
                            }
                        }
                    }
                });
            }
        });
        ScriptedBroker {
            port,
            counts,
            accept,
            drop_next_describe_groups,
        }
    }
}

/// A running scripted broker; it stops accepting connections when dropped.
#[derive(Debug)]
pub struct ScriptedBroker {
    port: u16,
    counts: Counts,
    accept: tokio::task::JoinHandle<()>,
    drop_next_describe_groups: Arc<AtomicUsize>,
}

impl ScriptedBroker {
    /// A broker that answers as the module's documentation says; change it with the builder's
    /// methods, then [`ScriptedBrokerBuilder::start`].
    pub fn builder() -> ScriptedBrokerBuilder {
        ScriptedBrokerBuilder::default()
    }

    /// Starts a broker with the plain script (no misbehaviour).
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, to bootstrap a client with.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many requests of `api` it received so far.
    pub fn requests(&self, api: ApiKey) -> usize {
        self.counts.get(Counted::Request(api))
    }

    /// Drops the connection on the next `n` DescribeGroups, whatever they name, then answers
    /// again: a connection lost once, as when a broker dies or restarts mid-request.
    pub fn drop_next_describe_groups(&self, n: usize) {
        self.drop_next_describe_groups.store(n, Ordering::SeqCst);
    }

    /// How many connections it accepted so far.
    pub fn connections(&self) -> usize {
        self.counts.get(Counted::Connection)
    }
}

impl Drop for ScriptedBroker {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Answers the requests of one connection, in order, until the client closes it or the script
/// drops it.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    port: u16,
    counts: Counts,
    script: &ScriptedBrokerBuilder,
) {
    while let Some(mut request) = read_request(&mut stream).await {
        let key = request.key;
        let version = request.header.request_api_version;
        counts.add(Counted::Request(key));
        if script.hang_describe_groups && key == ApiKey::DescribeGroups {
            std::future::pending::<()>().await;
        }
        let mut body = BytesMut::new();
        if !answer(key, version, &mut request.body, port, script, &mut body) {
            return; // drops the connection
        }
        if !write_answer(&mut stream, &request, &body).await {
            return;
        }
    }
}

fn assignment(partitions: &[i32]) -> Bytes {
    let mut a = ConsumerProtocolAssignment::default();
    let mut tp = AssignedPartitions::default();
    tp.topic = TopicName(s(TOPIC));
    tp.partitions = partitions.to_vec();
    a.assigned_partitions = vec![tp];
    let mut buf = BytesMut::new();
    buf.put_i16(1); // the consumer protocol's own version comes first
    a.encode(&mut buf, 1).unwrap();
    buf.freeze()
}

/// Encodes the answer to one request into `out`; false to drop the connection instead.
fn answer(
    key: ApiKey,
    version: i16,
    request: &mut Bytes,
    port: u16,
    script: &ScriptedBrokerBuilder,
    out: &mut BytesMut,
) -> bool {
    match key {
        ApiKey::ApiVersions => {
            let ours: [(ApiKey, i16); 12] = [
                (ApiKey::ApiVersions, 3),
                (ApiKey::SaslHandshake, 1),
                (ApiKey::SaslAuthenticate, 2),
                (ApiKey::Metadata, 12),
                (ApiKey::ListOffsets, 8),
                (ApiKey::DescribeConfigs, 4),
                (ApiKey::ListGroups, 4),
                (
                    ApiKey::FindCoordinator,
                    if script.old_versions { 3 } else { 4 },
                ),
                (ApiKey::DescribeGroups, 5),
                (ApiKey::OffsetFetch, if script.old_versions { 7 } else { 8 }),
                (ApiKey::Fetch, 11),
                (ApiKey::DescribeProducers, 0),
            ];
            api_versions(&ours, version, out);
        }
        ApiKey::Metadata
            if script
                .hostile_metadata
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok() =>
        {
            if version >= 3 {
                out.put_i32(0); // throttle time
            }
            if version >= 9 {
                out.put_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]); // compact: 2^32 - 1 - 1
            } else {
                out.put_i32(i32::MAX);
            }
        }
        ApiKey::Metadata => {
            let mut r = MetadataResponse::default();
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(1);
            b.host = s("127.0.0.1");
            b.port = port as i32;
            b.rack = Some(s("rack-a"));
            r.brokers = vec![b];
            if let Some(dead) = script.dead_broker_port {
                let mut b = MetadataResponseBroker::default();
                b.node_id = BrokerId(2);
                b.host = s("127.0.0.1");
                b.port = dead as i32;
                r.brokers.push(b);
            }
            r.cluster_id = Some(s("scripted-cluster"));
            r.controller_id = BrokerId(1);
            let mut t = MetadataResponseTopic::default();
            t.name = Some(TopicName(s(TOPIC)));
            t.partitions = (0..2)
                .map(|p| {
                    let mut mp = MetadataResponsePartition::default();
                    mp.partition_index = p;
                    mp.leader_id = BrokerId(if p == 1 && script.dead_broker_port.is_some() {
                        2
                    } else {
                        1
                    });
                    mp.replica_nodes = vec![BrokerId(1), BrokerId(2)];
                    mp.isr_nodes = vec![BrokerId(1)];
                    mp
                })
                .collect();
            r.topics = vec![t];
            encode(r, version, out);
        }
        ApiKey::ListOffsets => {
            let req = ListOffsetsRequest::decode(request, version).unwrap();
            let mut r = ListOffsetsResponse::default();
            r.topics = req
                .topics
                .iter()
                .map(|t| {
                    let mut rt = ListOffsetsTopicResponse::default();
                    rt.name = t.name.clone();
                    rt.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut rp = ListOffsetsPartitionResponse::default();
                            rp.partition_index = p.partition_index;
                            rp.offset = if p.timestamp == -2 {
                                0
                            } else {
                                LATEST[p.partition_index as usize]
                            };
                            rp
                        })
                        .collect();
                    rt
                })
                .collect();
            encode(r, version, out);
        }
        ApiKey::DescribeConfigs => {
            let req = DescribeConfigsRequest::decode(request, version).unwrap();
            let mut r = DescribeConfigsResponse::default();
            r.results = req
                .resources
                .iter()
                .map(|res| {
                    let mut result = DescribeConfigsResult::default();
                    result.resource_type = res.resource_type;
                    result.resource_name = res.resource_name.clone();
                    result.configs = [
                        ("cleanup.policy", "compact"),
                        ("retention.ms", "604800000"),
                        ("retention.bytes", "-1"),
                        ("min.insync.replicas", "2"),
                    ]
                    .iter()
                    .map(|(k, v)| {
                        let mut c = DescribeConfigsResourceResult::default();
                        c.name = s(k);
                        c.value = Some(s(v));
                        c
                    })
                    .collect();
                    result
                })
                .collect();
            encode(r, version, out);
        }
        ApiKey::ListGroups => {
            let mut r = ListGroupsResponse::default();
            let extra = (0..script.extra_groups).map(|i| format!("idle-{i}"));
            r.groups = ["payments-app".to_string(), "reporting".to_string()]
                .into_iter()
                .chain(extra)
                .map(|g| {
                    let mut l = ListedGroup::default();
                    l.group_id = GroupId(s(&g));
                    l.protocol_type = s("consumer");
                    l
                })
                .collect();
            encode(r, version, out);
        }
        ApiKey::FindCoordinator => {
            let req = FindCoordinatorRequest::decode(request, version).unwrap();
            let mut r = FindCoordinatorResponse::default();
            if version < 4 {
                r.node_id = BrokerId(1);
                r.host = s("127.0.0.1");
                r.port = port as i32;
                assert!(!req.key.is_empty(), "one key per request before v4");
            }
            r.coordinators = req
                .coordinator_keys
                .iter()
                .map(|k| {
                    let mut c = Coordinator::default();
                    c.key = k.clone();
                    c.node_id = BrokerId(1);
                    c.host = s("127.0.0.1");
                    c.port = port as i32;
                    c
                })
                .collect();
            encode(r, version, out);
        }
        ApiKey::OffsetFetch => {
            let mut req = OffsetFetchRequest::decode(request, version).unwrap();
            if version < 8 {
                // One group per request: answer it in the same shape as v8+ below.
                let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
                g.group_id = req.group_id.clone();
                req.groups = vec![g];
            }
            let mut r = OffsetFetchResponse::default();
            r.groups = req
                .groups
                .iter()
                .map(|g| {
                    let mut rg = OffsetFetchResponseGroup::default();
                    rg.group_id = g.group_id.clone();
                    if g.group_id.0.as_str() == "reporting" {
                        rg.error_code = 30; // GROUP_AUTHORIZATION_FAILED
                    } else {
                        let mut t = OffsetFetchResponseTopics::default();
                        t.name = TopicName(s(TOPIC));
                        let p0 = if script.big_batches { 45 } else { 50 };
                        t.partitions = [(0, p0), (1, 60)]
                            .iter()
                            .map(|(p, o)| {
                                let mut rp = OffsetFetchResponsePartitions::default();
                                rp.partition_index = *p;
                                rp.committed_offset = *o;
                                rp
                            })
                            .collect();
                        rg.topics = vec![t];
                    }
                    rg
                })
                .collect();
            if version < 8 {
                let g = r.groups.pop().unwrap();
                r.error_code = g.error_code;
                r.topics = g
                    .topics
                    .iter()
                    .map(|t| {
                        let mut rt = offset_fetch_response::OffsetFetchResponseTopic::default();
                        rt.name = t.name.clone();
                        rt.partitions = t
                            .partitions
                            .iter()
                            .map(|p| {
                                let mut rp =
                                    offset_fetch_response::OffsetFetchResponsePartition::default();
                                rp.partition_index = p.partition_index;
                                rp.committed_offset = p.committed_offset;
                                rp
                            })
                            .collect();
                        rt
                    })
                    .collect();
            }
            encode(r, version, out);
        }
        ApiKey::Fetch => {
            let req = FetchRequest::decode(request, version).unwrap();
            let mut r = FetchResponse::default();
            let mut first = true;
            r.responses = req
                .topics
                .iter()
                .map(|t| {
                    let mut rt = FetchableTopicResponse::default();
                    rt.topic = t.topic.clone();
                    rt.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pd = PartitionData::default();
                            pd.partition_index = p.partition;
                            pd.high_watermark = LATEST[p.partition as usize];
                            // A batch that starts before the wanted offset, as Kafka sends.
                            let records = (p.fetch_offset - 2..p.fetch_offset + 3).fold(
                                RecordBatchBuilder::new(),
                                |batch, offset| {
                                    let value = if script.big_batches {
                                        Bytes::from(vec![b'x'; 10 * 1024])
                                    } else {
                                        Bytes::from_static(b"{}")
                                    };
                                    batch.record(offset, RECORD_TIME_BASE + offset * 1000, value)
                                },
                            );
                            let mut buf = records.build();
                            let limit = p.partition_max_bytes as usize;
                            if script.big_batches && !first && buf.len() > limit {
                                buf.truncate(limit);
                            }
                            first = false;
                            pd.records = Some(buf);
                            pd
                        })
                        .collect();
                    rt
                })
                .collect();
            encode(r, version, out);
        }
        ApiKey::DescribeGroups => {
            let req = DescribeGroupsRequest::decode(request, version).unwrap();
            if script.drop_describe_groups
                || script
                    .drop_next_describe_groups
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                return false;
            }
            if let Some(poison) = &script.poison_group
                && req.groups.iter().any(|g| g.0.as_str() == poison)
            {
                return false;
            }
            let mut r = DescribeGroupsResponse::default();
            r.groups = req
                .groups
                .iter()
                .map(|g| {
                    let mut d = DescribedGroup::default();
                    d.group_id = g.clone();
                    d.protocol_type = s("consumer");
                    if g.0.as_str() == "payments-app" {
                        d.group_state = s("Stable");
                        d.protocol_data = s("range");
                        d.members = [
                            ("m-1", "payments-1", "/10.0.0.1", vec![0]),
                            ("m-2", "payments-2", "/10.0.0.2", vec![1]),
                        ]
                        .into_iter()
                        .map(|(id, client, host, parts)| {
                            let mut m = DescribedGroupMember::default();
                            m.member_id = s(id);
                            m.client_id = s(client);
                            m.client_host = s(host);
                            m.member_assignment = if script.hostile_assignment && id == "m-2" {
                                Bytes::from_static(HOSTILE_ASSIGNMENT)
                            } else {
                                assignment(&parts)
                            };
                            m
                        })
                        .collect();
                    } else {
                        d.group_state = s("Empty");
                    }
                    d
                })
                .collect();
            encode(r, version, out);
        }
        ApiKey::DescribeProducers => {
            let req = DescribeProducersRequest::decode(request, version).unwrap();
            let mut r = DescribeProducersResponse::default();
            r.topics = req
                .topics
                .iter()
                .map(|t| {
                    let mut rt = TopicResponse::default();
                    rt.name = t.name.clone();
                    rt.partitions = t
                        .partition_indexes
                        .iter()
                        .map(|p| {
                            let mut rp = PartitionResponse::default();
                            rp.partition_index = *p;
                            if *p == 0 {
                                let mut ps = ProducerState::default();
                                ps.producer_id = ProducerId(7);
                                ps.producer_epoch = 1;
                                ps.last_sequence = 41;
                                ps.last_timestamp = RECORD_TIME_BASE;
                                ps.current_txn_start_offset = -1;
                                rp.active_producers = vec![ps];
                            } else {
                                rp.error_code = 6; // NOT_LEADER_OR_FOLLOWER
                            }
                            rp
                        })
                        .collect();
                    rt
                })
                .collect();
            encode(r, version, out);
        }
        ApiKey::SaslHandshake => {
            let req = SaslHandshakeRequest::decode(request, version).unwrap();
            let mut r = SaslHandshakeResponse::default();
            r.mechanisms = vec![s("PLAIN")];
            if req.mechanism.as_str() != "PLAIN" {
                r.error_code = 33; // UNSUPPORTED_SASL_MECHANISM
            }
            encode(r, version, out);
        }
        ApiKey::SaslAuthenticate => {
            let req = SaslAuthenticateRequest::decode(request, version).unwrap();
            let mut r = SaslAuthenticateResponse::default();
            if req.auth_bytes.as_ref() != PLAIN_TOKEN {
                r.error_code = 58; // SASL_AUTHENTICATION_FAILED
                r.error_message = Some(s("Invalid username or password"));
            }
            encode(r, version, out);
        }
        other => panic!("scripted broker: unexpected {other:?} v{version}"),
    }
    true
}
