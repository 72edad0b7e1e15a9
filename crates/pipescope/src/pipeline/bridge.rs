//! `pipescope bridge`: MQTT subscriptions → Kafka topics, at least once.
//!
//! The MQTT session is persistent (MQTT v5, clean start off, a fixed client id, a session
//! expiry) and the subscriptions are QoS 1, so the broker keeps what arrives while the bridge is
//! away. Acks are manual: a message's PUBACK goes out only after Kafka's delivery report said
//! the record is stored. A bridge killed at any moment therefore loses nothing; messages it had
//! not acknowledged come again (duplicates, recognisable by their trace headers).
//! PUBACKs go out in the order the messages arrived, as MQTT requires (rumqttd drops a session
//! that acks out of order), even when Kafka reports deliveries to other partitions sooner.
//! Backpressure: at most `--max-in-flight` messages wait for their ack (MQTT v5 receive maximum,
//! and a semaphore on our side).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pipescope_core::backoff::Backoff;
use pipescope_core::pipeline::fault::{Fault, FaultPlan, FaultReport};
use pipescope_core::pipeline::mapping::{TopicMapping, route};
use pipescope_core::pipeline::partition::partition_for_key;
use pipescope_core::pipeline::trace::{self, Sequencer, TraceHeader};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::{AsyncClient, Event};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{KafkaArgs, PartArgs, Stop, ensure_topic, now_ms};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub part: PartArgs,
    #[command(flatten)]
    pub mqtt: super::mqtt::MqttArgs,
    /// FILTER=TOPIC (repeatable): MQTT filter to Kafka topic; the topic may use {N} for the
    /// N-th level of the MQTT topic. The key is the levels matched by '+'.
    #[arg(long = "map", required = true, value_name = "FILTER=TOPIC")]
    pub maps: Vec<String>,
    /// MQTT client id; keep it fixed so the broker keeps this bridge's session.
    #[arg(long, default_value = "pipescope-bridge")]
    pub client_id: String,
    /// Session expiry the broker is asked for: how long it keeps messages while the bridge is away.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub session_expiry: Duration,
    /// Messages waiting for Kafka's delivery report at most (backpressure).
    #[arg(long, default_value_t = 1000)]
    pub max_in_flight: u16,
    /// Largest MQTT packet taken, in bytes, declared to the broker (MQTT 5 Maximum Packet
    /// Size): the broker does not send larger messages to the bridge. Kept under Kafka's default
    /// 1 MB record limit; raise both together.
    #[arg(long, default_value_t = 512 * 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_message_size: u32,
    /// Partitions of topics the bridge creates.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Kafka topics the bridge writes to (and creates) at most: a template with {N} makes one
    /// per MQTT level value, which publishers choose. Messages for a topic past the cap are
    /// acknowledged, dropped and counted (pipescope_bridge_topic_cap_dropped_messages_total).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_topics: u32,
    /// Origin id stamped on messages that come without a trace (default: bridge-<client id>-<start ms>).
    #[arg(long)]
    pub origin: Option<String>,
    #[command(flatten)]
    pub inject: InjectArgs,
}

/// Fault injection, for testing monitors (docs/pipeline.md): off unless a fraction is given.
#[derive(Debug, Clone, clap::Args)]
pub struct InjectArgs {
    /// Fraction of mapped messages to drop on purpose (acknowledged, never written to Kafka).
    #[arg(
        id = "inject_drop",
        long = "inject-drop",
        value_name = "FRACTION",
        default_value_t = 0.0
    )]
    pub drop: f64,
    /// Fraction of mapped messages to write to Kafka twice on purpose.
    #[arg(
        id = "inject_duplicate",
        long = "inject-duplicate",
        value_name = "FRACTION",
        default_value_t = 0.0
    )]
    pub duplicate: f64,
    /// Seed of the injected faults: the same seed and the same message order give the same faults.
    #[arg(
        id = "inject_seed",
        long = "inject-seed",
        value_name = "N",
        default_value_t = 0
    )]
    pub seed: u64,
    /// Writes each injected fault as a JSON line (fault, origin, stream, seq, topic, partition).
    #[arg(id = "inject_report", long = "inject-report", value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MappingLabel {
    mapping: String,
}

#[derive(Debug, Clone, Default)]
struct Metrics {
    received: Family<MappingLabel, Counter>,
    delivered: Family<MappingLabel, Counter>,
    retries: Family<MappingLabel, Counter>,
    carried: Family<MappingLabel, Counter>,
    stamped: Family<MappingLabel, Counter>,
    unmapped: Counter,
    topic_cap_dropped: Counter,
    in_flight: Gauge,
    connected: Gauge,
    subscribed: Gauge,
    reconnects: Counter,
    acks_sent: Counter,
    injected_drops: Counter,
    injected_duplicates: Counter,
}

impl Metrics {
    fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        let r = registry;
        r.register(
            "pipescope_bridge_messages_received",
            "MQTT messages received, per mapping",
            self.received.clone(),
        );
        r.register(
            "pipescope_bridge_records_delivered",
            "Records Kafka acknowledged (then the MQTT message was acknowledged), per mapping",
            self.delivered.clone(),
        );
        r.register(
            "pipescope_bridge_delivery_retries",
            "Records sent again after a failed Kafka delivery, per mapping",
            self.retries.clone(),
        );
        r.register(
            "pipescope_bridge_traces_carried",
            "Messages whose MQTT v5 trace was carried over, per mapping",
            self.carried.clone(),
        );
        r.register(
            "pipescope_bridge_traces_stamped",
            "Messages without a trace that the bridge stamped, per mapping",
            self.stamped.clone(),
        );
        r.register(
            "pipescope_bridge_unmapped_messages",
            "Messages no mapping matched (acknowledged and dropped)",
            self.unmapped.clone(),
        );
        r.register(
            "pipescope_bridge_topic_cap_dropped_messages",
            "Messages for a Kafka topic past --max-topics (acknowledged and dropped)",
            self.topic_cap_dropped.clone(),
        );
        r.register(
            "pipescope_bridge_in_flight_messages",
            "Messages waiting for Kafka's delivery report",
            self.in_flight.clone(),
        );
        r.register(
            "pipescope_bridge_mqtt_connected",
            "1 while connected to the MQTT broker",
            self.connected.clone(),
        );
        r.register(
            "pipescope_bridge_mqtt_subscribed",
            "1 once the broker acknowledged the subscriptions",
            self.subscribed.clone(),
        );
        r.register(
            "pipescope_bridge_mqtt_reconnects",
            "MQTT connections lost",
            self.reconnects.clone(),
        );
        r.register(
            "pipescope_bridge_mqtt_acks_sent",
            "PUBACKs written to the MQTT broker",
            self.acks_sent.clone(),
        );
        r.register(
            "pipescope_bridge_injected_drops",
            "Messages dropped on purpose by --inject-drop (acknowledged, not written)",
            self.injected_drops.clone(),
        );
        r.register(
            "pipescope_bridge_injected_duplicates",
            "Messages written twice on purpose by --inject-duplicate",
            self.injected_duplicates.clone(),
        );
    }
}

pub async fn run(args: Args, stop: Stop) -> anyhow::Result<()> {
    let mappings: Vec<TopicMapping> = args
        .maps
        .iter()
        .map(|m| TopicMapping::parse(m))
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(args.max_in_flight > 0, "--max-in-flight must be at least 1");
    let mut faults = FaultPlan::new(args.inject.drop, args.inject.duplicate, args.inject.seed)?;
    let mut fault_report = match &args.inject.report {
        Some(path) => Some(std::io::LineWriter::new(
            std::fs::File::create(path).with_context(|| {
                format!(
                    "cannot create the --inject-report file {} — does its directory exist?",
                    path.display()
                )
            })?,
        )),
        None => None,
    };
    let origin = args
        .origin
        .clone()
        .unwrap_or_else(|| format!("bridge-{}-{}", args.client_id, now_ms()));
    let metrics = Metrics::default();
    let labels: Vec<MappingLabel> = mappings
        .iter()
        .map(|m| MappingLabel {
            mapping: format!("{}={}", m.filter, m.topic),
        })
        .collect();
    // Wrong MQTT settings (address, TLS files) are said at once, not after Kafka is up.
    let mut options = super::mqtt::options(&args.mqtt, &args.client_id)?;
    let health = args
        .part
        .serve_metrics("bridge", |r| metrics.register(r), &stop)
        .await?;
    health.watch_kafka(&args.kafka, None, &stop)?;
    let producer: FutureProducer = args
        .kafka
        .client_config()?
        .set("linger.ms", "5")
        .set("acks", "all")
        .create()
        .with_context(|| format!("cannot make a Kafka producer for {}", args.kafka.kafka))?;
    // Keyed by topics publishers choose (through {N}): capped by --max-topics.
    let mut partitions: HashMap<String, i32> = HashMap::new();
    let mut cap_log = CapLog::default();
    // Topics without {N} are known now: make sure they exist before taking messages.
    for m in &mappings {
        if !m.topic.contains('{') {
            let Some(n) =
                ensure_topic(&args.kafka, &m.topic, args.partitions, false, &stop).await?
            else {
                return Ok(());
            };
            partitions.insert(m.topic.clone(), n);
        }
    }

    options
        .set_clean_start(false)
        .set_session_expiry_interval(Some(
            args.session_expiry.as_secs().min(u64::from(u32::MAX)) as u32
        ))
        .set_manual_acks(true)
        .set_receive_maximum(Some(args.max_in_flight))
        // Declared, so that the broker drops a larger message instead of sending it: taken
        // over rumqttc's undeclared 10 KiB default, it broke the connection and came first
        // again on every reconnect.
        .set_max_packet_size(Some(args.max_message_size));
    // Acks must never wait on a full request queue: a waiting ack holds its window permit, the
    // loop then stops polling the connection that would drain the queue, and all stalls. A broker
    // resuming a session sends every stored message at once, past the receive maximum (mosquitto
    // 2.0 does), so size the queue for every packet id that can be outstanding (u16).
    let (client, mut eventloop) = AsyncClient::new(options, usize::from(u16::MAX) + 64);
    let window = Arc::new(Semaphore::new(usize::from(args.max_in_flight)));
    let (pending_acks, acks_in_order) = mpsc::unbounded_channel();
    let acker = tokio::spawn(ack_in_arrival_order(client.clone(), acks_in_order));
    let mut sequencer: Sequencer<(String, i32)> = Sequencer::new();
    let mut backoff = Backoff::default();
    loop {
        let event = tokio::select! {
            event = eventloop.poll() => event,
            () = stop.stopped() => {
                tracing::info!("bridge stopping: waiting for the records in flight");
                break;
            }
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                health.passing("mqtt");
                metrics.connected.set(1);
                tracing::info!(broker = %args.mqtt.url, session_present = ack.session_present, "connected to MQTT");
                // Subscribing again on a kept session is harmless and covers a lost session.
                for m in &mappings {
                    client
                        .subscribe(m.filter.clone(), QoS::AtLeastOnce)
                        .await
                        .context("the MQTT client stopped taking requests")?;
                }
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::PubAck(_))) => {
                metrics.acks_sent.inc();
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                metrics.subscribed.set(1);
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let permit = window
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the window is never closed");
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                let Some((index, mapping)) = route(&mappings, &topic) else {
                    metrics.unmapped.inc();
                    tracing::debug!(topic, "no mapping matches; acknowledged and dropped");
                    let _ = pending_acks.send(PendingAck::ready(publish));
                    drop(permit);
                    continue;
                };
                let label = &labels[index];
                metrics.received.get_or_create(label).inc();
                let Some(kafka_topic) = mapping.kafka_topic(&topic) else {
                    metrics.unmapped.inc();
                    tracing::warn!(topic, template = %mapping.topic, "the Kafka topic template gives no legal topic for this message; acknowledged and dropped");
                    let _ = pending_acks.send(PendingAck::ready(publish));
                    drop(permit);
                    continue;
                };
                let key = mapping.key(&topic);
                let count = match partitions.get(&kafka_topic) {
                    Some(n) => *n,
                    None if partitions.len() >= args.max_topics as usize => {
                        metrics.topic_cap_dropped.inc();
                        cap_log.refused(&kafka_topic, &topic, args.max_topics);
                        let _ = pending_acks.send(PendingAck::ready(publish));
                        drop(permit);
                        continue;
                    }
                    None => {
                        let Some(n) =
                            ensure_topic(&args.kafka, &kafka_topic, args.partitions, false, &stop)
                                .await?
                        else {
                            break;
                        };
                        partitions.insert(kafka_topic.clone(), n);
                        n
                    }
                };
                let partition = partition_for_key(key.as_bytes(), count);
                let carried = publish.properties.as_ref().and_then(|p| {
                    TraceHeader::decode(
                        p.user_properties
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_bytes())),
                    )
                    .ok()
                    .flatten()
                });
                // The record names the stream its trace counts in (STREAM): the MQTT topic of a
                // carried-over trace, the partition of one the bridge stamped.
                let (trace, stream) = match carried {
                    Some(t) => {
                        metrics.carried.get_or_create(label).inc();
                        (t, topic.clone())
                    }
                    None => {
                        metrics.stamped.get_or_create(label).inc();
                        let trace = TraceHeader {
                            origin: origin.clone(),
                            seq: sequencer.next((kafka_topic.clone(), partition)),
                            ts: now_ms(),
                        };
                        (trace, partition.to_string())
                    }
                };
                let fault = faults.decide();
                if fault != Fault::Pass {
                    let line = FaultReport {
                        fault,
                        origin: &trace.origin,
                        stream: &stream,
                        seq: trace.seq,
                        topic: &kafka_topic,
                        partition,
                    }
                    .to_line();
                    if let Some(report) = fault_report.as_mut() {
                        use std::io::Write as _;
                        writeln!(report, "{line}").with_context(|| {
                            format!(
                                "cannot write to the --inject-report file {:?}",
                                args.inject.report
                            )
                        })?;
                    }
                    tracing::debug!(fault = line, "injected");
                }
                if fault == Fault::Drop {
                    metrics.injected_drops.inc();
                    let _ = pending_acks.send(PendingAck::ready(publish));
                    drop(permit);
                    continue;
                }
                let copies = if fault == Fault::Duplicate {
                    metrics.injected_duplicates.inc();
                    2
                } else {
                    1
                };
                metrics.in_flight.inc();
                let job = Delivery {
                    producer: producer.clone(),
                    metrics: metrics.clone(),
                    label: label.clone(),
                    topic: kafka_topic,
                    mqtt_topic: topic,
                    key,
                    partition,
                    trace,
                    stream,
                    copies,
                    publish,
                    stop: stop.clone(),
                };
                // Queue in arrival order (keeps per-partition order), then wait for the report apart;
                // the ack waits its turn behind the messages that came before.
                let report = job.enqueue().await;
                let (delivered, done) = oneshot::channel();
                let _ = pending_acks.send(PendingAck { done });
                tokio::spawn(async move {
                    let _ = delivered.send(report.await);
                    drop(permit);
                });
            }
            Ok(_) => {}
            Err(e) => {
                health.failing("mqtt", format!("cannot reach {} ({e})", args.mqtt.url));
                metrics.connected.set(0);
                metrics.subscribed.set(0);
                metrics.reconnects.inc();
                let delay = backoff.next_delay();
                tracing::warn!(broker = %args.mqtt.url, "MQTT connection failed ({e}); retrying in {delay:?}");
                if stop.sleep(delay).await {
                    break;
                }
            }
        }
    }
    // Let the deliveries in flight finish and their acks go out, polling the connection
    // meanwhile; messages that arrive now are left unacknowledged (the broker sends them again).
    let all = u32::from(args.max_in_flight);
    drop(pending_acks);
    let acker_abort = acker.abort_handle();
    let drained = async {
        let _ = window.acquire_many(all).await;
        // Every delivery is done: the acker ends once their acks are queued.
        let _ = acker.await;
    };
    tokio::pin!(drained);
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut drained => break,
            () = &mut deadline => {
                tracing::warn!("records still in flight after 30 s; their messages will come again");
                break;
            }
            event = eventloop.poll() => if event.is_err() { tokio::time::sleep(Duration::from_millis(100)).await },
        }
    }
    acker_abort.abort();
    let flush = producer.clone();
    let _ = tokio::task::spawn_blocking(move || flush.flush(Duration::from_secs(10))).await;
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(event) = eventloop.poll().await {
            if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
    tracing::info!("bridge stopped");
    Ok(())
}

/// A message's ack, waiting for its turn: `done` gives the message once Kafka stored its record
/// (nothing when the bridge stops first: the broker sends it again). The in-flight window's
/// permit is freed by the delivery itself, not here: a slow first record must not stop the
/// loop that reads MQTT (and keeps the connection alive) while later records are stored.
struct PendingAck {
    done: oneshot::Receiver<Option<Publish>>,
}

impl PendingAck {
    /// A message acknowledged without a record (nothing maps it).
    fn ready(publish: Publish) -> Self {
        let (tx, done) = oneshot::channel();
        let _ = tx.send(Some(publish));
        Self { done }
    }
}

/// Sends the PUBACKs in the order the messages arrived.
async fn ack_in_arrival_order(
    client: AsyncClient,
    mut pending: mpsc::UnboundedReceiver<PendingAck>,
) {
    while let Some(PendingAck { done }) = pending.recv().await {
        if let Ok(Some(publish)) = done.await
            && let Err(e) = client.ack(&publish).await
        {
            tracing::warn!(
                "cannot acknowledge an MQTT message ({e}); the broker will send it again"
            );
        }
    }
}

struct Delivery {
    producer: FutureProducer,
    metrics: Metrics,
    label: MappingLabel,
    topic: String,
    mqtt_topic: String,
    key: String,
    partition: i32,
    trace: TraceHeader,
    /// The stream the trace counts in: the MQTT topic of a carried-over trace, else the partition.
    stream: String,
    /// Records to write for this message: 2 when a duplicate is injected.
    copies: u8,
    publish: Publish,
    stop: Stop,
}

impl Delivery {
    fn headers(&self) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new();
        for (name, value) in self.trace.encode() {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        headers = headers.insert(Header {
            key: trace::STREAM,
            value: Some(self.stream.as_bytes()),
        });
        headers.insert(Header {
            key: trace::MQTT_TOPIC,
            value: Some(self.mqtt_topic.as_bytes()),
        })
    }

    /// Queues the record now and returns the wait for its report (retrying failed deliveries):
    /// the MQTT message to acknowledge once Kafka stored the record, or nothing when stopping.
    /// With an injected duplicate, both copies are queued at once and both must be stored.
    async fn enqueue(self) -> impl std::future::Future<Output = Option<Publish>> + Send {
        let mut queued = Vec::with_capacity(usize::from(self.copies));
        for _ in 0..self.copies {
            queued.push(self.send_once().await);
        }
        async move {
            for first in queued {
                let mut result = first;
                let mut backoff = Backoff::default();
                loop {
                    let delivered = match result {
                        Some(delivery) => matches!(delivery.await, Ok(Ok(_))),
                        None => false,
                    };
                    if delivered {
                        break;
                    }
                    if self.stop.is_stopped() {
                        // Not acknowledged: the broker sends the message again after restart.
                        self.metrics.in_flight.dec();
                        return None;
                    }
                    self.metrics.retries.get_or_create(&self.label).inc();
                    let delay = backoff.next_delay();
                    tracing::warn!(topic = %self.topic, "a record was not delivered to Kafka; sending again in {delay:?}");
                    tokio::time::sleep(delay).await;
                    result = self.send_once().await;
                }
            }
            self.metrics.delivered.get_or_create(&self.label).inc();
            self.metrics.in_flight.dec();
            Some(self.publish)
        }
    }

    async fn send_once(&self) -> Option<rdkafka::producer::DeliveryFuture> {
        loop {
            let record = FutureRecord::to(&self.topic)
                .key(self.key.as_bytes())
                .payload(self.publish.payload.as_ref())
                .partition(self.partition)
                .headers(self.headers());
            match self.producer.send_result(record) {
                Ok(delivery) => return Some(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    tracing::warn!(topic = %self.topic, "cannot queue a record ({e})");
                    return None;
                }
            }
        }
    }
}

/// Logs messages refused by --max-topics at most once a minute, with how many since.
#[derive(Default)]
struct CapLog {
    logged_at: Option<std::time::Instant>,
    unlogged: u64,
}

impl CapLog {
    fn refused(&mut self, kafka_topic: &str, mqtt_topic: &str, max_topics: u32) {
        if self
            .logged_at
            .is_some_and(|at| at.elapsed() < Duration::from_secs(60))
        {
            self.unlogged += 1;
            return;
        }
        self.logged_at = Some(std::time::Instant::now());
        let since = std::mem::take(&mut self.unlogged);
        tracing::warn!(
            kafka_topic,
            mqtt_topic,
            refused_since_last_report = since,
            "the bridge already writes to --max-topics ({max_topics}) Kafka topics: this message is acknowledged and dropped — raise --max-topics, or map to fewer topics"
        );
    }
}
