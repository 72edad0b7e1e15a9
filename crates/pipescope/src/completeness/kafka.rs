//! The Kafka reading layer for payload readers ([`TopicReader`]): every partition of a topic
//! assigned (not subscribed), read from its end, nothing committed, so the monitor never
//! appears as a consumer group. Start positions are looked up before the partitions are
//! assigned, so once a reader says it is connected every record written after is read, and the
//! position per partition is known from the start. A topic missing at the first look, and
//! partitions added later, are picked up at the next metadata refresh and read from their
//! beginning (everything in them is new to the monitor). What is read goes to a
//! [`RecordSink`]: the trace reader's is [`TraceSink`]; the quality observer and the probes
//! plug in their own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipescope_core::completeness::{Names, origin_kind};
use pipescope_core::pipeline::trace::{MQTT_TOPIC, STREAM, TraceRef};
use pipescope_core::{Clock, EpochMillis};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::{Seen, ToFlow};
use crate::config::{KafkaCluster, SaslMechanism};

/// How often the topic's partitions are looked up again.
const METADATA_REFRESH: Duration = Duration::from_secs(10);
/// Longest wait of one poll: also how soon the reader notices its flow has gone.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Records handed to the flow at most per batch.
const BATCH: usize = 1_000;

/// librdkafka settings for a `[kafka.X]` cluster: the same bootstrap brokers, TLS and SASL the
/// watcher connects with. Values may hold the SASL password: never log them.
pub fn librdkafka_settings(cluster: &KafkaCluster) -> Vec<(&'static str, String)> {
    let bootstrap: Vec<String> = cluster.bootstrap.iter().map(ToString::to_string).collect();
    let protocol = match (cluster.tls.is_some(), cluster.sasl.is_some()) {
        (false, false) => "plaintext",
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    let mut settings = vec![
        ("bootstrap.servers", bootstrap.join(",")),
        ("security.protocol", protocol.to_string()),
    ];
    if let Some(tls) = &cluster.tls {
        let path = |p: &std::path::PathBuf| p.display().to_string();
        if let Some(ca) = &tls.ca {
            settings.push(("ssl.ca.location", path(ca)));
        }
        if let Some(cert) = &tls.cert {
            settings.push(("ssl.certificate.location", path(cert)));
        }
        if let Some(key) = &tls.key {
            settings.push(("ssl.key.location", path(key)));
        }
        if tls.skip_verify {
            settings.push(("enable.ssl.certificate.verification", "false".into()));
            settings.push(("ssl.endpoint.identification.algorithm", "none".into()));
        }
    }
    if let Some(sasl) = &cluster.sasl {
        let mechanism = match sasl.mechanism {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        };
        settings.push(("sasl.mechanism", mechanism.into()));
        settings.push(("sasl.username", sasl.username.clone()));
        settings.push(("sasl.password", sasl.password.expose().to_string()));
    }
    settings
}

/// A consumer that assigns and never commits. librdkafka refuses `assign()` without a
/// `group.id`, so it has one, but a group exists at the broker only once a member joins it
/// (subscribe) or commits offsets, and this consumer does neither.
pub(super) fn consumer(cluster: &KafkaCluster, group: &str) -> Result<BaseConsumer, String> {
    let mut config = ClientConfig::new();
    for (key, value) in librdkafka_settings(cluster) {
        config.set(key, value);
    }
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // Fallen behind retention: go on from the log start (the jump tells the flow).
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    config.create().map_err(|e| e.to_string())
}

/// What a payload reader (the trace reader, later the quality observer and the probes) does
/// with what [`TopicReader`] reads.
pub trait RecordSink {
    /// False once the reader should stop (its consumer is gone).
    fn open(&self) -> bool;
    /// The reader's state after each metadata lookup: reading every partition (`connected`),
    /// how many, and the last error.
    fn status(&mut self, connected: bool, partitions: u32, error: Option<String>);
    /// Records before the next one of `partition` were deleted before they were read
    /// (retention, compaction, a reset to the log start): not loss.
    fn skipped(&mut self, partition: u32);
    /// One record of `partition`, read at `arrival_ms`.
    fn record(&mut self, message: &BorrowedMessage<'_>, partition: u32, arrival_ms: EpochMillis);
    /// True when the sink holds enough to hand on now.
    fn full(&self) -> bool;
    /// Hands on what the sink holds, after each poll round; false stops the reader.
    fn flush(&mut self) -> bool;
}

/// The Kafka reading layer: one topic of one cluster, every partition assigned.
#[derive(Debug)]
pub struct TopicReader {
    pub cluster_name: String,
    pub cluster: KafkaCluster,
    pub topic: String,
    /// librdkafka's `group.id`, never joined nor committed for.
    pub group: String,
    pub clock: Arc<dyn Clock>,
}

impl TopicReader {
    /// Reads until the sink closes; runs on its own thread (librdkafka blocks).
    pub fn run(self, sink: &mut impl RecordSink) {
        self.read(sink, false);
    }

    /// [`TopicReader::run`], but every partition from its log start: for benchmarks and
    /// replays of a topic's past (`pipescope run` reads from the end).
    pub fn run_from_start(self, sink: &mut impl RecordSink) {
        self.read(sink, true);
    }

    fn read(self, sink: &mut impl RecordSink, from_start: bool) {
        let consumer = match consumer(&self.cluster, &self.group) {
            Ok(c) => c,
            Err(e) => {
                let message = format!(
                    "cannot make a Kafka reader for cluster {} ({e}) — check kafka.{}",
                    self.cluster_name, self.cluster_name
                );
                tracing::error!(cluster = %self.cluster_name, topic = %self.topic, "{message}");
                sink.status(false, 0, Some(message));
                sink.flush();
                return;
            }
        };
        let mut positions = Positions::default();
        let mut assigned: Vec<i32> = Vec::new();
        let mut looked = false;
        let mut refreshed: Option<Instant> = None;
        while sink.open() {
            if refreshed.is_none_or(|at| at.elapsed() >= METADATA_REFRESH) {
                refreshed = Some(Instant::now());
                let refreshed = self.refresh(
                    &consumer,
                    &mut assigned,
                    &mut positions,
                    &mut looked,
                    from_start,
                );
                match refreshed {
                    Ok(()) => sink.status(true, assigned.len() as u32, None),
                    Err(message) => {
                        tracing::warn!(cluster = %self.cluster_name, topic = %self.topic, "{message}");
                        sink.status(false, assigned.len() as u32, Some(message));
                    }
                }
            }
            let mut polled = consumer.poll(POLL_WAIT);
            // One clock read per poll round, not per record: a round takes what librdkafka
            // already holds (at most BATCH records, about a millisecond), so every record of
            // it arrived when the round was polled.
            let arrival_ms = self.clock.now_millis();
            while let Some(result) = polled {
                match result {
                    Ok(message) => {
                        if let Ok(partition) = u32::try_from(message.partition()) {
                            match positions.read(partition, message.offset()) {
                                Read::Next => sink.record(&message, partition, arrival_ms),
                                Read::AfterSkip => {
                                    sink.skipped(partition);
                                    sink.record(&message, partition, arrival_ms);
                                }
                                Read::Again => {}
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(cluster = %self.cluster_name, topic = %self.topic, "Kafka reader: {e}")
                    }
                }
                if sink.full() {
                    break;
                }
                polled = consumer.poll(Duration::ZERO);
            }
            if !sink.flush() {
                return;
            }
        }
    }

    /// Assigns the partitions not assigned yet: from their end at the first look, from their
    /// beginning (log start) when they appear later. `looked`: the topic was looked up once
    /// (found, or found missing); `from_start`: from the log start at the first look too.
    fn refresh(
        &self,
        consumer: &BaseConsumer,
        assigned: &mut Vec<i32>,
        positions: &mut Positions,
        looked: &mut bool,
        from_start: bool,
    ) -> Result<(), String> {
        let metadata = consumer
            .fetch_metadata(Some(&self.topic), Duration::from_secs(5))
            .map_err(|e| {
                format!(
                    "cannot read the partitions of topic {:?} on Kafka cluster {} ({e}) — is the cluster reachable?",
                    self.topic, self.cluster_name
                )
            })?;
        let missing = || {
            format!(
                "no topic {:?} on Kafka cluster {} yet — it is read from its start once it exists",
                self.topic, self.cluster_name
            )
        };
        let Some(topic) = metadata.topics().iter().find(|t| t.name() == self.topic) else {
            *looked = true;
            return Err(missing());
        };
        if let Some(e) = topic.error() {
            let code = rdkafka::error::RDKafkaErrorCode::from(e);
            if code == rdkafka::error::RDKafkaErrorCode::UnknownTopicOrPartition {
                *looked = true;
                return Err(missing());
            }
            return Err(format!(
                "topic {:?} on Kafka cluster {}: {code} — is the cluster healthy?",
                self.topic, self.cluster_name,
            ));
        }
        // At the first look the topic's past is not the monitor's to judge; a topic or a
        // partition that appears later holds only what was written since.
        let from_end = !*looked && !from_start;
        let mut starts = Vec::new();
        for p in topic.partitions() {
            if assigned.contains(&p.id()) {
                continue;
            }
            let (low, high) = consumer
                .fetch_watermarks(&self.topic, p.id(), Duration::from_secs(5))
                .map_err(|e| {
                    format!(
                        "cannot read the offsets of {:?} partition {} on Kafka cluster {} ({e}) — is its leader up?",
                        self.topic,
                        p.id(),
                        self.cluster_name
                    )
                })?;
            starts.push((p.id(), if from_end { high } else { low }));
        }
        if starts.is_empty() {
            *looked = true;
            return Ok(());
        }
        // The whole assignment again (incremental assignment needs a group): the partitions
        // already read go on from the next offset not yet handed to the flow.
        let mut all = TopicPartitionList::new();
        let current = assigned
            .iter()
            .map(|&p| (p, positions.next(p)))
            .chain(starts.iter().map(|&(p, start)| (p, Some(start))));
        for (partition, offset) in current {
            let offset = offset.map_or(Offset::Stored, Offset::Offset);
            all.add_partition_offset(&self.topic, partition, offset)
                .map_err(|e| e.to_string())?;
        }
        consumer
            .assign(&all)
            .map_err(|e| format!("cannot assign the partitions of {:?}: {e}", self.topic))?;
        for (partition, start) in starts {
            assigned.push(partition);
            if let Ok(p) = u32::try_from(partition) {
                positions.start_at(p, start);
            }
        }
        *looked = true;
        tracing::info!(cluster = %self.cluster_name, topic = %self.topic, partitions = assigned.len(), "reading traces");
        Ok(())
    }
}

/// Distinct origins and stream names a sink keeps shared copies of; they are forgotten with
/// each batch anyway, so at most BATCH of each.
const MAX_NAMES: usize = BATCH;
/// Partitions whose names a sink keeps, by number (a topic's partitions count from 0).
const MAX_NAMED_PARTITIONS: u32 = 10_000;

/// The trace reader's sink: each record's trace, handed to the hop's flow in batches.
#[derive(Debug)]
pub struct TraceSink {
    pub hop: usize,
    pub kind_prefixes: Vec<String>,
    pub to_flow: ToFlow,
    pub batch: Vec<Seen>,
    origins: Names,
    streams: Names,
    /// Each partition's number as text, the stream of a record that names none.
    partition_names: Vec<Arc<str>>,
}

impl TraceSink {
    pub fn new(hop: usize, kind_prefixes: Vec<String>, to_flow: ToFlow) -> Self {
        Self {
            hop,
            kind_prefixes,
            to_flow,
            batch: Vec::with_capacity(BATCH),
            origins: Names::new(MAX_NAMES),
            streams: Names::new(MAX_NAMES),
            partition_names: Vec::new(),
        }
    }

    fn partition_name(&mut self, partition: u32) -> Arc<str> {
        if partition >= MAX_NAMED_PARTITIONS {
            return partition.to_string().into();
        }
        let names = &mut self.partition_names;
        while names.len() <= partition as usize {
            names.push(names.len().to_string().into());
        }
        names[partition as usize].clone()
    }
}

impl RecordSink for TraceSink {
    fn open(&self) -> bool {
        !self.to_flow.is_closed()
    }

    fn status(&mut self, connected: bool, partitions: u32, error: Option<String>) {
        self.batch.push(Seen::Reader {
            hop: self.hop,
            connected,
            partitions,
            error,
        });
    }

    fn skipped(&mut self, partition: u32) {
        self.batch.push(Seen::Rebased {
            hop: self.hop,
            partition,
        });
    }

    fn record(&mut self, message: &BorrowedMessage<'_>, partition: u32, arrival_ms: EpochMillis) {
        // The hot path: the headers read once, in place; the names shared, not allocated.
        let headers = message.headers();
        let pairs = headers
            .iter()
            .flat_map(|h| h.iter())
            .map(|h| (h.key, h.value.unwrap_or_default()));
        let (mut stream, mut mqtt_topic) = (None, None);
        let decoded = TraceRef::decode_with(pairs, |name, value| match name {
            STREAM => stream = Some(value),
            MQTT_TOPIC => mqtt_topic = Some(value),
            _ => {}
        });
        let hop = self.hop;
        let seen = match decoded {
            Ok(Some(trace)) => {
                fn text(v: Option<&[u8]>) -> Option<&str> {
                    v.and_then(|v| std::str::from_utf8(v).ok())
                }
                let named = stream_name(
                    trace.origin,
                    text(stream),
                    text(mqtt_topic),
                    &self.kind_prefixes,
                );
                let stream = match named {
                    Some(name) => self.streams.get(name),
                    None => self.partition_name(partition),
                };
                Seen::Traced {
                    hop,
                    partition: Some(partition),
                    origin: self.origins.get(trace.origin),
                    stream,
                    seq: trace.seq,
                    origin_ms: trace.ts,
                    arrival_ms,
                }
            }
            Ok(None) => Seen::Untraced { hop },
            Err(_) => Seen::Malformed { hop, arrival_ms },
        };
        self.batch.push(seen);
    }

    fn full(&self) -> bool {
        self.batch.len() >= BATCH
    }

    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        // Each batch gets its own copies of the names: the flow drops the last batch's while
        // this thread counts references to the next one's, never both on one cache line (a
        // shared count bounced between the two cores cost more than the copies).
        self.origins.clear();
        self.streams.clear();
        self.partition_names.clear();
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.to_flow.send_blocking(batch)
    }
}

/// The stream of a record read from `partition`: the one its `pipescope-stream` header names
/// (the bridge sets it on every record). Records written before that header existed: the
/// `mqtt-topic` of a trace the bridge carried over from MQTT, else the partition; a trace the
/// bridge stamped itself is told apart only by its origin kind `bridge` (wrong with --origin).
pub fn stream_of(
    origin: &str,
    stream: Option<&str>,
    mqtt_topic: Option<&str>,
    partition: u32,
    kind_prefixes: &[String],
) -> String {
    stream_name(origin, stream, mqtt_topic, kind_prefixes)
        .map_or_else(|| partition.to_string(), str::to_owned)
}

/// [`stream_of`] without allocating: `None` when the stream is the partition itself.
pub fn stream_name<'a>(
    origin: &str,
    stream: Option<&'a str>,
    mqtt_topic: Option<&'a str>,
    kind_prefixes: &[String],
) -> Option<&'a str> {
    if let Some(stream) = stream.filter(|s| !s.is_empty()) {
        return Some(stream);
    }
    mqtt_topic.filter(|_| origin_kind(origin, kind_prefixes) != "bridge")
}

/// Partitions whose positions are kept by number, without hashing (a topic's partitions count
/// from 0); any above are kept in a map.
const DENSE_PARTITIONS: u32 = 10_000;

/// The next offset expected per partition.
#[derive(Debug, Default)]
pub struct Positions {
    dense: Vec<Option<i64>>,
    sparse: HashMap<u32, i64>,
}

impl Positions {
    /// The next offset of `partition` to read, once known.
    pub fn next(&self, partition: i32) -> Option<i64> {
        self.get(u32::try_from(partition).ok()?)
    }

    /// The partition is read from `offset`.
    pub fn start_at(&mut self, partition: u32, offset: i64) {
        self.set(partition, offset);
    }

    /// A record at `offset` was read: the next one, one after records it never read (deleted by
    /// retention or compaction, or the position reset to the log start: a rebase, not loss), or
    /// one at an offset it read already (a broker sending a stretch again: not a duplicate).
    pub fn read(&mut self, partition: u32, offset: i64) -> Read {
        let read = match self.get(partition) {
            Some(expected) if offset > expected => Read::AfterSkip,
            Some(expected) if offset < expected => return Read::Again,
            _ => Read::Next,
        };
        self.set(partition, offset + 1);
        read
    }

    fn get(&self, partition: u32) -> Option<i64> {
        if partition < DENSE_PARTITIONS {
            self.dense.get(partition as usize).copied().flatten()
        } else {
            self.sparse.get(&partition).copied()
        }
    }

    fn set(&mut self, partition: u32, next: i64) {
        if partition < DENSE_PARTITIONS {
            let i = partition as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, None);
            }
            self.dense[i] = Some(next);
        } else {
            self.sparse.insert(partition, next);
        }
    }
}

/// Where a record read stands in its partition (see [`Positions::read`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Next,
    AfterSkip,
    Again,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(extra: &str) -> KafkaCluster {
        let text = format!("[kafka.k]\nbootstrap = [\"a:9092\", \"b:9093\"]\n{extra}");
        crate::config::parse("t", &text, []).unwrap().kafka["k"].clone()
    }

    fn get<'a>(settings: &'a [(&str, String)], key: &str) -> Option<&'a str> {
        settings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_cluster_settings_map_to_librdkafka_options() {
        let plain = librdkafka_settings(&cluster(""));
        assert_eq!(
            plain,
            vec![
                ("bootstrap.servers", "a:9092,b:9093".to_string()),
                ("security.protocol", "plaintext".to_string()),
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let secure = librdkafka_settings(&cluster(&format!(
            "[kafka.k.tls]\nca = \"{}\"\nskip_verify = true\n[kafka.k.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"u\"\npassword = \"p\"\n",
            ca.display()
        )));
        assert_eq!(get(&secure, "security.protocol"), Some("sasl_ssl"));
        assert_eq!(get(&secure, "ssl.ca.location"), ca.to_str());
        assert_eq!(
            get(&secure, "enable.ssl.certificate.verification"),
            Some("false")
        );
        assert_eq!(get(&secure, "sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(get(&secure, "sasl.username"), Some("u"));
        assert_eq!(get(&secure, "sasl.password"), Some("p"));
        let tls_only = librdkafka_settings(&cluster("[kafka.k.tls]\n"));
        assert_eq!(get(&tls_only, "security.protocol"), Some("ssl"));
        assert_eq!(get(&tls_only, "ssl.ca.location"), None);
        let sasl_only = librdkafka_settings(&cluster(
            "[kafka.k.sasl]\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"p\"\n",
        ));
        assert_eq!(get(&sasl_only, "security.protocol"), Some("sasl_plaintext"));
        // Every key is one librdkafka knows (the TLS files are checked at creation).
        let mut config = ClientConfig::new();
        for (k, v) in sasl_only {
            config.set(k, v);
        }
        config.create::<BaseConsumer>().unwrap();
    }

    #[test]
    fn a_jump_in_offsets_is_a_rebase_the_first_read_is_not_and_a_read_again_is_dropped() {
        let mut p = Positions::default();
        assert_eq!(p.read(0, 100), Read::Next);
        assert_eq!(p.read(0, 101), Read::Next);
        assert_eq!(
            p.read(0, 150),
            Read::AfterSkip,
            "102..150 were deleted unread"
        );
        assert_eq!(
            p.read(1, 7),
            Read::Next,
            "another partition starts on its own"
        );
        assert_eq!(p.read(0, 151), Read::Next);
        // A broker sending a stretch again (tansu after a fetch below the log start).
        assert_eq!(p.read(0, 150), Read::Again);
        assert_eq!(p.read(0, 151), Read::Again);
        assert_eq!(p.read(0, 152), Read::Next);
        // Assigned at a known offset: a first record above it was preceded by deleted ones.
        p.start_at(2, 10);
        assert_eq!(p.read(2, 10), Read::Next);
        p.start_at(3, 10);
        assert_eq!(p.read(3, 12), Read::AfterSkip);
        assert_eq!((p.next(3), p.next(4), p.next(-1)), (Some(13), None, None));
        // Partitions past the dense ones, alike.
        let far = DENSE_PARTITIONS + 5;
        assert_eq!(p.read(far, 7), Read::Next);
        assert_eq!(p.read(far, 9), Read::AfterSkip);
        p.start_at(far + 1, 3);
        assert_eq!(p.next(far as i32), Some(10));
        assert_eq!(p.next(far as i32 + 1), Some(3));
    }

    #[test]
    fn the_stream_header_names_the_stream_whatever_the_origin() {
        let none: Vec<String> = Vec::new();
        // A bridge given --origin stamps a record that also has mqtt-topic: its stream header
        // says the partition, although the origin kind is not `bridge`.
        assert_eq!(
            stream_of("plant-bridge", Some("3"), Some("machine/a/b"), 3, &none),
            "3"
        );
        assert_eq!(
            stream_of("sim-1", Some("machine/a/b"), Some("machine/a/b"), 3, &none),
            "machine/a/b"
        );
        // Any producer may name its stream.
        assert_eq!(
            stream_of("app-1", Some("orders-eu"), None, 0, &none),
            "orders-eu"
        );
    }

    #[test]
    fn records_without_the_stream_header_are_read_as_before() {
        let none: Vec<String> = Vec::new();
        assert_eq!(
            stream_of("sim-1", None, Some("machine/a/b"), 3, &none),
            "machine/a/b"
        );
        assert_eq!(stream_of("sim-1", None, None, 3, &none), "3");
        assert_eq!(
            stream_of("bridge-it-7", None, Some("machine/a/b"), 3, &none),
            "3"
        );
    }

    #[test]
    fn the_stream_name_is_borrowed_and_none_for_the_partition() {
        let none: Vec<String> = Vec::new();
        let name = |o, s, t| stream_name(o, s, t, &none);
        assert_eq!(name("sim-1", Some("orders-eu"), None), Some("orders-eu"));
        assert_eq!(
            name("sim-1", Some(""), Some("machine/a")),
            Some("machine/a")
        );
        assert_eq!(name("sim-1", None, None), None);
        assert_eq!(name("bridge-it-7", None, Some("machine/a/b")), None);
    }
}
