//! Probes (docs/completeness.md "Probes"): for pipelines whose producers carry no traces, the
//! monitor produces its own traced record to every partition of a probe topic every interval
//! (acks=all, idempotent) and reads it back with the Kafka reading layer. The produce side gives
//! availability and produce-ack latency ([`ProduceAccount`]); what is read back goes to one
//! [`Hop`] per partition, so loss, duplicates and end-to-end latency come from the same
//! accounting as real traffic.

pub mod api;
pub mod metrics;
pub mod mqtt;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use pipescope_core::completeness::probe::{ProduceAccount, ProduceFigures};
use pipescope_core::completeness::{CompletenessConfig, Hop, HopFigures};
use pipescope_core::pipeline::trace::TraceHeader;
use pipescope_core::{Clock, EpochMillis};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::completeness::kafka::{RecordSink, TopicReader, librdkafka_settings};
use crate::config::{Config, KafkaCluster, KafkaProbe};
use crate::shutdown::Supervisor;
pub use mqtt::{BridgeProbeView, MqttProbeSpec, MqttProbeView};

/// Partitions of a probe topic followed at most (one hop and one account each).
const MAX_PARTITIONS: usize = 1_024;
/// How often figures are settled and published.
pub(crate) const TICK: Duration = Duration::from_secs(1);

/// One partition of a probe topic: its leader, the produce side and what was read back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProbePartitionView {
    pub partition: u32,
    /// The partition's leader broker at the last metadata lookup.
    pub leader: Option<i32>,
    pub produce: ProduceFigures,
    /// The records read back: records, lost, duplicated, end-to-end latency.
    pub read: HopFigures,
}

/// A leader broker's partitions of the probe topic, summed: where loss or unavailability
/// gathers on one broker.
#[cfg_attr(test, derive(PartialEq))]
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ProbeBrokerView {
    /// The leader's broker id; absent for partitions without a leader.
    pub leader: Option<i32>,
    pub partitions: u32,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub read: u64,
    pub lost: u64,
    pub duplicated: u64,
}

/// The partitions' figures summed per leader broker.
pub fn by_leader(partitions: &[ProbePartitionView]) -> Vec<ProbeBrokerView> {
    let mut brokers: BTreeMap<Option<i32>, ProbeBrokerView> = BTreeMap::new();
    for p in partitions {
        let b = brokers.entry(p.leader).or_insert_with(|| ProbeBrokerView {
            leader: p.leader,
            ..ProbeBrokerView::default()
        });
        let c = &p.read.total.counters;
        b.partitions += 1;
        b.sent += p.produce.sent;
        b.acked += p.produce.acked;
        b.failed += p.produce.failed;
        b.read += c.records;
        b.lost += c.lost;
        b.duplicated += c.duplicated;
    }
    brokers.into_values().collect()
}

/// A Kafka probe's figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KafkaProbeView {
    pub cluster: String,
    pub topic: String,
    /// The trace origin of this run's probe records.
    pub origin: String,
    /// When these figures were taken (epoch ms).
    pub updated_ms: EpochMillis,
    /// Reading every partition of the probe topic.
    pub reading: bool,
    /// The last error (topic creation, metadata, reading), until the next success.
    pub last_error: Option<String>,
    pub partitions: Vec<ProbePartitionView>,
    /// The same figures per leader broker.
    pub brokers: Vec<ProbeBrokerView>,
}

/// One probe's figures; `kind` says which system it probes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProbeView {
    /// `[probes.kafka.<cluster>]`.
    Kafka(KafkaProbeView),
    /// `[probes.mqtt.<broker>]`.
    Mqtt(Box<MqttProbeView>),
    /// `[probes.bridge.<name>]`: MQTT through a bridge to Kafka.
    Bridge(Box<BridgeProbeView>),
}

impl ProbeView {
    /// Unique per probe: the kind and the configured name.
    fn key(&self) -> String {
        match self {
            ProbeView::Kafka(v) => format!("kafka/{}", v.cluster),
            ProbeView::Mqtt(v) => format!("mqtt/{}", v.broker),
            ProbeView::Bridge(v) => format!("bridge/{}", v.name),
        }
    }
}

/// Every probe's latest figures, shared by the probe tasks, the API and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct ProbesState(Arc<RwLock<BTreeMap<String, ProbeView>>>);

impl ProbesState {
    pub fn all(&self) -> Vec<ProbeView> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn set(&self, view: ProbeView) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(view.key(), view);
    }
}

/// One supervised task per `[probes.kafka.<cluster>]`; none unless configured.
pub fn start_probes(config: &Config, tasks: &Supervisor, clock: &Arc<dyn Clock>) -> ProbesState {
    let state = ProbesState::default();
    for (cluster_name, probe) in &config.probes.kafka {
        let Some(cluster) = config.kafka.get(cluster_name) else {
            continue;
        };
        tracing::info!(
            cluster = %cluster_name,
            topic = %probe.topic,
            interval = ?probe.interval,
            "Kafka probe: producing to every partition of {:?}, creating it if missing",
            probe.topic
        );
        let args = (
            cluster_name.clone(),
            cluster.clone(),
            probe.clone(),
            state.clone(),
            clock.clone(),
        );
        tasks.spawn(
            format!("kafka probe {cluster_name}"),
            Box::new(move || {
                let (name, cluster, probe, state, clock) = args.clone();
                Box::pin(run_kafka_probe(name, cluster, probe, state, clock))
            }),
        );
    }
    for (broker_name, probe) in &config.probes.mqtt {
        let Some(broker) = config.mqtt.get(broker_name) else {
            continue;
        };
        tracing::info!(
            broker = %broker_name,
            topic = %probe.topic,
            interval = ?probe.interval,
            "MQTT probe: publishing to {:?} and reading it back",
            probe.topic
        );
        spawn_mqtt_probe(
            tasks,
            format!("mqtt probe {broker_name}"),
            MqttProbeSpec {
                name: broker_name.clone(),
                broker_name: broker_name.clone(),
                broker: broker.clone(),
                topic: probe.topic.clone(),
                interval: probe.interval,
                timeout: probe.timeout,
                kafka: None,
            },
            &state,
            clock,
        );
    }
    for (name, probe) in &config.probes.bridge {
        let (Some(broker), Some(cluster)) =
            (config.mqtt.get(&probe.mqtt), config.kafka.get(&probe.kafka))
        else {
            continue;
        };
        tracing::info!(
            probe = %name,
            "bridge probe: publishing to {:?} on MQTT broker {} and reading it back from Kafka topic {:?} of cluster {}",
            probe.mqtt_topic, probe.mqtt, probe.kafka_topic, probe.kafka
        );
        spawn_mqtt_probe(
            tasks,
            format!("bridge probe {name}"),
            MqttProbeSpec {
                name: name.clone(),
                broker_name: probe.mqtt.clone(),
                broker: broker.clone(),
                topic: probe.mqtt_topic.clone(),
                interval: probe.interval,
                timeout: probe.timeout,
                kafka: Some((
                    probe.kafka.clone(),
                    cluster.clone(),
                    probe.kafka_topic.clone(),
                )),
            },
            &state,
            clock,
        );
    }
    state
}

fn spawn_mqtt_probe(
    tasks: &Supervisor,
    task: String,
    spec: MqttProbeSpec,
    state: &ProbesState,
    clock: &Arc<dyn Clock>,
) {
    let args = (spec, state.clone(), clock.clone());
    tasks.spawn(
        task,
        Box::new(move || {
            let (spec, state, clock) = args.clone();
            Box::pin(mqtt::run_mqtt_probe(spec, state, clock))
        }),
    );
}

/// What the probe's reader thread saw.
enum Read {
    Record {
        partition: u32,
        trace: TraceHeader,
        arrival_ms: EpochMillis,
    },
    Rebased(u32),
    Status(bool, Option<String>),
}

/// The probe's [`RecordSink`]: its own records, by partition.
struct ProbeSink {
    origin: String,
    to_probe: mpsc::Sender<Vec<Read>>,
    batch: Vec<Read>,
}

impl RecordSink for ProbeSink {
    fn open(&self) -> bool {
        !self.to_probe.is_closed()
    }

    fn status(&mut self, connected: bool, _partitions: u32, error: Option<String>) {
        self.batch.push(Read::Status(connected, error));
    }

    fn skipped(&mut self, partition: u32) {
        self.batch.push(Read::Rebased(partition));
    }

    fn record(&mut self, message: &BorrowedMessage<'_>, partition: u32, arrival_ms: EpochMillis) {
        let Some(headers) = message.headers() else {
            return;
        };
        let pairs = headers.iter().map(|h| (h.key, h.value.unwrap_or_default()));
        // Other writers' records on the probe topic (an earlier run's too) are not judged.
        if let Ok(Some(trace)) = TraceHeader::decode(pairs)
            && trace.origin == self.origin
        {
            self.batch.push(Read::Record {
                partition,
                trace,
                arrival_ms,
            });
        }
    }

    fn full(&self) -> bool {
        self.batch.len() >= 1_000
    }

    fn flush(&mut self) -> bool {
        self.batch.is_empty()
            || self
                .to_probe
                .blocking_send(std::mem::take(&mut self.batch))
                .is_ok()
    }
}

/// The probe topic's partitions and their leaders, creating the topic first if it is missing.
async fn ensure_topic(
    name: &str,
    cluster: &KafkaCluster,
    probe: &KafkaProbe,
) -> Result<Vec<(u32, Option<i32>)>, String> {
    let mut config = ClientConfig::new();
    for (k, v) in librdkafka_settings(cluster) {
        config.set(k, v);
    }
    let admin: AdminClient<DefaultClientContext> = config
        .create()
        .map_err(|e| format!("cannot make a Kafka admin client for cluster {name} ({e})"))?;
    let lookup = |admin: &AdminClient<DefaultClientContext>| {
        admin
            .inner()
            .fetch_metadata(Some(&probe.topic), Duration::from_secs(5))
            .map_err(|e| {
                format!("cannot read the metadata of Kafka cluster {name} ({e}) — is it reachable?")
            })
    };
    let metadata = lookup(&admin)?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == probe.topic && t.error().is_none() && !t.partitions().is_empty())
        .is_some();
    if !found {
        let brokers = metadata.brokers().len().max(1);
        let partitions = probe.partitions.map_or(brokers as i32, |p| p as i32);
        let replication = brokers.min(3) as i32;
        tracing::info!(cluster = %name, topic = %probe.topic, partitions, replication, "Kafka probe: creating the probe topic");
        let topic = NewTopic::new(
            &probe.topic,
            partitions,
            TopicReplication::Fixed(replication),
        );
        let results = admin
            .create_topics([&topic], &AdminOptions::new())
            .await
            .map_err(|e| format!("cannot create probe topic {:?} on Kafka cluster {name} ({e}) — create it yourself or allow this client to", probe.topic))?;
        for r in results {
            if let Err((_, code)) = r
                && code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
            {
                return Err(format!(
                    "cannot create probe topic {:?} on Kafka cluster {name} ({code}) — create it yourself or allow this client to",
                    probe.topic
                ));
            }
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metadata = lookup(&admin)?;
        if let Some(t) = metadata.topics().iter().find(|t| t.name() == probe.topic)
            && t.error().is_none()
            && !t.partitions().is_empty()
        {
            return Ok(t
                .partitions()
                .iter()
                .take(MAX_PARTITIONS)
                .filter_map(|p| {
                    let leader = (p.leader() >= 0).then_some(p.leader());
                    u32::try_from(p.id()).ok().map(|id| (id, leader))
                })
                .collect());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "probe topic {:?} on Kafka cluster {name} has no partitions yet — is the cluster healthy?",
                probe.topic
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The probe's producer: every replica acknowledges (acks=all), idempotent unless configured
/// otherwise, no batching delay, and a record not acknowledged within the probe's timeout fails.
fn make_producer(
    name: &str,
    cluster: &KafkaCluster,
    timeout_ms: u64,
    idempotent: bool,
) -> Result<FutureProducer, String> {
    let mut config = ClientConfig::new();
    for (k, v) in librdkafka_settings(cluster) {
        config.set(k, v);
    }
    config
        .set("acks", "all")
        .set("enable.idempotence", idempotent.to_string())
        .set("linger.ms", "0")
        .set("message.timeout.ms", timeout_ms.to_string())
        .create()
        .map_err(|e| format!("cannot make the probe's Kafka producer for cluster {name} ({e}) — check kafka.{name}"))
}

/// One partition's accounting.
struct PartitionAccount {
    leader: Option<i32>,
    next_seq: u64,
    produce: ProduceAccount,
    read: Hop,
}

async fn run_kafka_probe(
    name: String,
    cluster: KafkaCluster,
    probe: KafkaProbe,
    state: ProbesState,
    clock: Arc<dyn Clock>,
) {
    let started = clock.now_millis();
    let origin = format!("pipescope-probe-{name}-{started}");
    let timeout_ms = probe.timeout.as_millis() as u64;
    let mut view = KafkaProbeView {
        cluster: name.clone(),
        topic: probe.topic.clone(),
        origin: origin.clone(),
        updated_ms: started,
        reading: false,
        last_error: None,
        partitions: Vec::new(),
        brokers: Vec::new(),
    };
    let partitions = match ensure_topic(&name, &cluster, &probe).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(cluster = %name, "{e}");
            view.last_error = Some(e);
            state.set(ProbeView::Kafka(view));
            // Ends: the supervisor tries again with backoff.
            return;
        }
    };
    let mut producer = match make_producer(&name, &cluster, timeout_ms, probe.idempotent) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(cluster = %name, "{e}");
            view.last_error = Some(e);
            state.set(ProbeView::Kafka(view));
            return;
        }
    };
    // A produce failed since the producer was made: the next round starts a new one.
    let mut failed_since_made = false;
    let mut made_at = tokio::time::Instant::now();
    // The grace outlasts the produce timeout: a record whose produce failed is excused before
    // its gap would be judged.
    let settings = CompletenessConfig {
        grace_ms: (2 * timeout_ms).max(CompletenessConfig::default().grace_ms),
        horizon_ms: (12 * timeout_ms).max(CompletenessConfig::default().horizon_ms),
        max_streams: 4,
        ..CompletenessConfig::default()
    };
    let mut accounts: HashMap<u32, PartitionAccount> = partitions
        .iter()
        .map(|&(p, leader)| {
            (
                p,
                PartitionAccount {
                    leader,
                    next_seq: 0,
                    produce: ProduceAccount::default(),
                    read: Hop::new(settings.clone(), started),
                },
            )
        })
        .collect();

    let (to_probe, mut from_reader) = mpsc::channel::<Vec<Read>>(64);
    let reader = TopicReader {
        cluster_name: name.clone(),
        cluster: cluster.clone(),
        topic: probe.topic.clone(),
        group: format!("pipescope-probe-{name}"),
        clock: clock.clone(),
    };
    let mut sink = ProbeSink {
        origin: origin.clone(),
        to_probe: to_probe.clone(),
        batch: Vec::new(),
    };
    let spawned = std::thread::Builder::new()
        .name(format!("probe-{name}"))
        .spawn(move || reader.run(&mut sink));
    if let Err(e) = spawned {
        tracing::error!(cluster = %name, "cannot start the probe's reader thread: {e}");
        return;
    }
    drop(to_probe);

    // (partition, seq, sent at, outcome at, acknowledged)
    let (settled_tx, mut settled) =
        mpsc::unbounded_channel::<(u32, u64, EpochMillis, EpochMillis, bool)>();
    let mut send = tokio::time::interval(probe.interval);
    send.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Records go out once the reader has every partition at a known offset, then on every
    // interval whatever the reader's state (a broker that stops answering is unavailability).
    let mut sending = false;
    loop {
        tokio::select! {
            _ = send.tick(), if sending => {
                // After a timeout librdkafka bumps the idempotent producer's epoch, which some
                // brokers mishandle (tansu 0.6 then fails every later produce): a new producer
                // (a new producer id) at most once per timeout keeps the probe measuring.
                if failed_since_made && made_at.elapsed() >= probe.timeout {
                    match make_producer(&name, &cluster, timeout_ms, probe.idempotent) {
                        Ok(p) => {
                            producer = p;
                            failed_since_made = false;
                            made_at = tokio::time::Instant::now();
                        }
                        Err(e) => tracing::warn!(cluster = %name, "{e}"),
                    }
                }
                for (&partition, account) in &mut accounts {
                    let seq = account.next_seq;
                    account.next_seq += 1;
                    let sent_ms = clock.now_millis();
                    let trace = TraceHeader { origin: origin.clone(), seq, ts: sent_ms };
                    let mut headers = OwnedHeaders::new();
                    for (key, value) in trace.encode() {
                        headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
                    }
                    let record = FutureRecord::<(), [u8]>::to(&probe.topic)
                        .partition(partition as i32)
                        .payload(b"pipescope probe")
                        .headers(headers);
                    let (settled_tx, clock) = (settled_tx.clone(), clock.clone());
                    match producer.send_result(record) {
                        Ok(delivery) => {
                            tokio::spawn(async move {
                                let acked = matches!(delivery.await, Ok(Ok(_)));
                                let _ = settled_tx.send((partition, seq, sent_ms, clock.now_millis(), acked));
                            });
                        }
                        Err((e, _)) => {
                            tracing::debug!(cluster = %name, partition, "probe record not queued: {e}");
                            let _ = settled_tx.send((partition, seq, sent_ms, sent_ms, false));
                        }
                    }
                }
            }
            Some((partition, seq, sent_ms, at_ms, acked)) = settled.recv() => {
                if let Some(account) = accounts.get_mut(&partition) {
                    if acked {
                        account.produce.acked(sent_ms, at_ms, timeout_ms);
                    } else {
                        account.produce.failed(at_ms);
                        failed_since_made = true;
                        // Never acknowledged: unavailability, not loss. Should it arrive after
                        // all, it is below the base and not counted again.
                        account.read.skip_below(&origin, &partition.to_string(), seq + 1);
                    }
                }
            }
            batch = from_reader.recv() => match batch {
                Some(batch) => for read in batch {
                    match read {
                        Read::Record { partition, trace, arrival_ms } => {
                            if let Some(a) = accounts.get_mut(&partition) {
                                a.read.observe(&trace.origin, &partition.to_string(), trace.seq, trace.ts, arrival_ms);
                            }
                        }
                        Read::Rebased(partition) => {
                            if let Some(a) = accounts.get_mut(&partition) {
                                a.read.rebase_on_next(&partition.to_string());
                            }
                        }
                        Read::Status(connected, error) => {
                            view.reading = connected;
                            sending |= connected;
                            if error.is_some() || connected {
                                view.last_error = error;
                            }
                        }
                    }
                },
                None => {
                    tracing::error!(cluster = %name, "the probe's reader ended");
                    return;
                }
            },
            _ = tick.tick() => {
                let now = clock.now_millis();
                let mut partitions: Vec<ProbePartitionView> = accounts
                    .iter_mut()
                    .map(|(&partition, a)| {
                        a.read.tick(now);
                        ProbePartitionView {
                            partition,
                            leader: a.leader,
                            produce: a.produce.figures(now, started),
                            read: a.read.figures(),
                        }
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                view.brokers = by_leader(&partitions);
                view.partitions = partitions;
                view.updated_ms = now;
                state.set(ProbeView::Kafka(view.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pipescope_core::completeness::probe::ProduceAccount;

    use super::*;

    #[test]
    fn partitions_sum_per_leader_broker() {
        let partition = |partition, leader, acked: u64, failed: u64, seqs: &[u64]| {
            let mut produce = ProduceAccount::default();
            for i in 0..acked {
                produce.acked(i, i + 1, 10);
            }
            for i in 0..failed {
                produce.failed(i);
            }
            let mut read = Hop::new(CompletenessConfig::default(), 0);
            for &seq in seqs {
                read.observe("o", "s", seq, 1, 2);
            }
            read.tick(100_000);
            ProbePartitionView {
                partition,
                leader,
                produce: produce.figures(100_000, 0),
                read: read.figures(),
            }
        };
        let brokers = by_leader(&[
            partition(0, Some(1), 3, 0, &[0, 1, 2]),
            partition(1, Some(2), 2, 1, &[0, 2, 2]),
            partition(2, Some(1), 1, 0, &[0]),
            partition(3, None, 0, 1, &[]),
        ]);
        assert_eq!(
            brokers,
            vec![
                ProbeBrokerView {
                    leader: None,
                    partitions: 1,
                    sent: 1,
                    failed: 1,
                    ..Default::default()
                },
                ProbeBrokerView {
                    leader: Some(1),
                    partitions: 2,
                    sent: 4,
                    acked: 4,
                    read: 4,
                    ..Default::default()
                },
                ProbeBrokerView {
                    leader: Some(2),
                    partitions: 1,
                    sent: 3,
                    acked: 2,
                    failed: 1,
                    read: 3,
                    lost: 1,
                    duplicated: 1,
                },
            ]
        );
    }

    #[test]
    fn the_example_mqtt_and_bridge_probes_are_valid_once_uncommented() {
        let text = format!(
            "{}\n{}\n{}",
            crate::config::EXAMPLE,
            crate::config::example_block("# [probes.mqtt.edge]"),
            crate::config::example_block("# [probes.bridge.machines]")
        );
        let config = crate::config::parse("example", &text, []).unwrap();
        assert_eq!(config.probes.mqtt["edge"].topic, "pipescope/probe");
        let bridge = &config.probes.bridge["machines"];
        assert_eq!(
            (bridge.mqtt.as_str(), bridge.kafka_topic.as_str()),
            ("edge", "machine.data")
        );
        let shipped = crate::config::parse("example", crate::config::EXAMPLE, []).unwrap();
        assert!(shipped.probes.mqtt.is_empty() && shipped.probes.bridge.is_empty());
    }

    #[test]
    fn the_example_probe_is_valid_once_uncommented() {
        let example = crate::config::EXAMPLE;
        let block = crate::config::example_block("# [probes.kafka.prod]");
        let text = format!("{example}\n{block}");
        let config = crate::config::parse("example", &text, []).unwrap();
        let probe = &config.probes.kafka["prod"];
        assert_eq!(probe.topic, "pipescope-probe");
        assert_eq!(probe.partitions, Some(3));
        // Off by default: the example as shipped runs none.
        assert!(
            crate::config::parse("example", example, [])
                .unwrap()
                .probes
                .kafka
                .is_empty()
        );
    }
}
