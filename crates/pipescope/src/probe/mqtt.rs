//! MQTT probes (docs/completeness.md "Probes"): every interval one traced QoS 1 message over
//! MQTT 5 (the trace as user properties), acknowledged by a PUBACK, and read back.
//!
//! - `[probes.mqtt.<broker>]` reads it back through its own subscription to the same topic
//!   (the MQTT reading layer) into one [`Hop`].
//! - `[probes.bridge.<name>]` reads it back on MQTT and from the Kafka topic a bridge maps it
//!   to (the Kafka reading layer): two hops and the [`Flow`] edge between them, so loss,
//!   duplicates and latency added by the bridge show.

use std::sync::Arc;
use std::time::Duration;

use pipescope_core::backoff::Backoff;
use pipescope_core::completeness::probe::{
    ProduceAccount, ProduceFigures, PublishTracker, Settled,
};
use pipescope_core::completeness::{CompletenessConfig, Flow, FlowFigures, Hop, HopFigures, HopId};
use pipescope_core::pipeline::trace::{MQTT_TOPIC, STREAM, TraceHeader};
use pipescope_core::{Clock, EpochMillis};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event};
use serde::Serialize;
use tokio::sync::mpsc;

use super::{ProbeView, ProbesState, TICK};
use crate::completeness::kafka::{RecordSink, TopicReader, stream_of};
use crate::completeness::mqtt::{FilterReader, MessageSink, client_options};
use crate::config::{KafkaCluster, MqttBroker};

/// Messages handed to the publisher's client and not yet written, at most (past it a message
/// is not sent and counts as unavailable).
const CLIENT_QUEUE: usize = 64;

/// An MQTT probe's figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MqttProbeView {
    /// The `[mqtt.<name>]` broker.
    pub broker: String,
    pub topic: String,
    /// The trace origin of this run's probe messages.
    pub origin: String,
    /// When these figures were taken (epoch ms).
    pub updated_ms: EpochMillis,
    /// The publisher is connected.
    pub publishing: bool,
    /// The probe's own subscription to its topic is granted.
    pub reading: bool,
    /// The last error (connecting, publishing, reading), until the next success.
    pub last_error: Option<String>,
    pub produce: ProduceFigures,
    /// The messages read back: records, lost, duplicated, end-to-end latency.
    pub read: HopFigures,
}

/// A bridge probe's figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BridgeProbeView {
    /// The `[probes.bridge.<name>]` name.
    pub name: String,
    /// The `[mqtt.<name>]` broker published to.
    pub mqtt: String,
    pub mqtt_topic: String,
    /// The `[kafka.<name>]` cluster read.
    pub kafka: String,
    pub kafka_topic: String,
    pub origin: String,
    pub updated_ms: EpochMillis,
    pub publishing: bool,
    /// The probe's own MQTT subscription to `mqtt_topic` is granted.
    pub mqtt_reading: bool,
    /// Reading every partition of `kafka_topic`.
    pub kafka_reading: bool,
    pub last_error: Option<String>,
    pub produce: ProduceFigures,
    /// Hops `mqtt` and `kafka` and the edge between them: lost and duplicated between MQTT and
    /// Kafka, latency the bridge adds.
    pub flow: FlowFigures,
}

/// What an MQTT probe publishes to and where it reads back.
#[derive(Debug, Clone)]
pub struct MqttProbeSpec {
    /// `<broker>` or the bridge probe's `<name>`: the probe's key and the origin's middle.
    pub name: String,
    pub broker_name: String,
    pub broker: MqttBroker,
    pub topic: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// For a bridge probe: the Kafka cluster (name, settings) and topic read back.
    pub kafka: Option<(String, KafkaCluster, String)>,
}

/// What the probe's readers saw.
#[derive(Debug)]
enum Read {
    Mqtt {
        trace: TraceHeader,
        topic: String,
        arrival_ms: EpochMillis,
    },
    MqttStatus(bool, Option<String>),
    Kafka {
        partition: u32,
        stream: String,
        trace: TraceHeader,
        arrival_ms: EpochMillis,
    },
    KafkaRebased(u32),
    KafkaStatus(bool, Option<String>),
}

/// The trace of a message's user properties, when it has one.
fn trace_of(publish: &Publish) -> Option<TraceHeader> {
    let props = publish.properties.as_ref()?;
    let pairs = props
        .user_properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()));
    TraceHeader::decode(pairs).ok().flatten()
}

/// The probe's own MQTT messages, read back.
struct MqttSink {
    origin: String,
    to_probe: mpsc::Sender<Vec<Read>>,
    batch: Vec<Read>,
}

impl MessageSink for MqttSink {
    fn status(&mut self, connected: bool, error: Option<String>) {
        self.batch.push(Read::MqttStatus(connected, error));
    }

    fn message(&mut self, publish: &Publish, arrival_ms: EpochMillis) {
        // Other publishers on the probe topic (an earlier run too) are not judged.
        if let Some(trace) = trace_of(publish).filter(|t| t.origin == self.origin) {
            self.batch.push(Read::Mqtt {
                trace,
                topic: String::from_utf8_lossy(&publish.topic).into_owned(),
                arrival_ms,
            });
        }
    }

    async fn flush(&mut self) -> bool {
        self.batch.is_empty()
            || self
                .to_probe
                .send(std::mem::take(&mut self.batch))
                .await
                .is_ok()
    }
}

/// The bridge probe's records on the Kafka topic: its own origin only.
struct KafkaSink {
    origin: String,
    to_probe: mpsc::Sender<Vec<Read>>,
    batch: Vec<Read>,
}

impl RecordSink for KafkaSink {
    fn open(&self) -> bool {
        !self.to_probe.is_closed()
    }

    fn status(&mut self, connected: bool, _partitions: u32, error: Option<String>) {
        self.batch.push(Read::KafkaStatus(connected, error));
    }

    fn skipped(&mut self, partition: u32) {
        self.batch.push(Read::KafkaRebased(partition));
    }

    fn record(&mut self, message: &BorrowedMessage<'_>, partition: u32, arrival_ms: EpochMillis) {
        let Some(headers) = message.headers() else {
            return;
        };
        let pairs = || headers.iter().map(|h| (h.key, h.value.unwrap_or_default()));
        let Ok(Some(trace)) = TraceHeader::decode(pairs()) else {
            return;
        };
        if trace.origin != self.origin {
            return;
        }
        let text = |name: &str| {
            pairs()
                .filter(|(k, _)| *k == name)
                .last()
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
        };
        // The bridge names the stream (the MQTT topic), as for a flow's Kafka hop.
        let stream = stream_of(
            &trace.origin,
            text(STREAM),
            text(MQTT_TOPIC),
            partition,
            &[],
        );
        self.batch.push(Read::Kafka {
            partition,
            stream,
            trace,
            arrival_ms,
        });
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

/// What the read-back is counted in.
enum Account {
    Mqtt(Hop),
    Bridge {
        flow: Flow,
        mqtt: HopId,
        kafka: HopId,
    },
}

impl Account {
    /// Numbers below `bound` may never have been published: not judged at any hop.
    fn skip_below(&mut self, origin: &str, stream: &str, bound: u64) {
        match self {
            Account::Mqtt(hop) => {
                hop.skip_below(origin, stream, bound);
            }
            Account::Bridge { flow, mqtt, kafka } => {
                flow.hop_mut(*mqtt).skip_below(origin, stream, bound);
                flow.hop_mut(*kafka).skip_below(origin, stream, bound);
            }
        }
    }

    fn observe_mqtt(&mut self, trace: &TraceHeader, topic: &str, arrival_ms: EpochMillis) {
        let TraceHeader { origin, seq, ts } = trace;
        match self {
            Account::Mqtt(hop) => {
                hop.observe(origin, topic, *seq, *ts, arrival_ms);
            }
            Account::Bridge { flow, mqtt, .. } => {
                flow.observe(*mqtt, origin, topic, *seq, *ts, arrival_ms);
            }
        }
    }

    /// The MQTT subscription is back after a disconnect: what was published meanwhile never
    /// reached it (a clean session), so the next message sets a new base.
    fn mqtt_resubscribed(&mut self, topic: &str) {
        match self {
            Account::Mqtt(hop) => hop.rebase_on_next(topic),
            Account::Bridge { flow, mqtt, .. } => flow.hop_mut(*mqtt).rebase_on_next(topic),
        }
    }

    fn observe_kafka(
        &mut self,
        partition: u32,
        stream: &str,
        trace: &TraceHeader,
        arrival_ms: EpochMillis,
    ) {
        if let Account::Bridge { flow, kafka, .. } = self {
            let TraceHeader { origin, seq, ts } = trace;
            flow.observe_in_partition(*kafka, partition, origin, stream, *seq, *ts, arrival_ms);
        }
    }

    fn kafka_rebased(&mut self, partition: u32) {
        if let Account::Bridge { flow, kafka, .. } = self {
            flow.hop_mut(*kafka).rebase_partition_on_next(partition);
        }
    }

    fn tick(&mut self, now: EpochMillis) {
        match self {
            Account::Mqtt(hop) => hop.tick(now),
            Account::Bridge { flow, .. } => flow.tick(now),
        }
    }
}

/// The probe's state besides its accounting.
struct View {
    publishing: bool,
    mqtt_reading: bool,
    kafka_reading: bool,
    last_error: Option<String>,
}

impl View {
    fn figures(
        &self,
        spec: &MqttProbeSpec,
        origin: &str,
        now: EpochMillis,
        produce: ProduceFigures,
        account: &Account,
    ) -> ProbeView {
        match account {
            Account::Bridge { flow, .. } => {
                let (kafka, kafka_topic) = spec
                    .kafka
                    .as_ref()
                    .map(|(cluster, _, topic)| (cluster.clone(), topic.clone()))
                    .unwrap_or_default();
                ProbeView::Bridge(Box::new(BridgeProbeView {
                    name: spec.name.clone(),
                    mqtt: spec.broker_name.clone(),
                    mqtt_topic: spec.topic.clone(),
                    kafka,
                    kafka_topic,
                    origin: origin.to_string(),
                    updated_ms: now,
                    publishing: self.publishing,
                    mqtt_reading: self.mqtt_reading,
                    kafka_reading: self.kafka_reading,
                    last_error: self.last_error.clone(),
                    produce,
                    flow: flow.figures(),
                }))
            }
            Account::Mqtt(hop) => ProbeView::Mqtt(Box::new(MqttProbeView {
                broker: spec.broker_name.clone(),
                topic: spec.topic.clone(),
                origin: origin.to_string(),
                updated_ms: now,
                publishing: self.publishing,
                reading: self.mqtt_reading,
                last_error: self.last_error.clone(),
                produce,
                read: hop.figures(),
            })),
        }
    }
}

/// Where publish outcomes are counted.
struct Outcomes<'a> {
    origin: &'a str,
    /// The MQTT topic: the stream at every hop.
    stream: &'a str,
    timeout_ms: u64,
}

impl Outcomes<'_> {
    /// Outcomes, in number order, into the produce account and the hops.
    fn apply(
        &self,
        settled: impl IntoIterator<Item = Settled>,
        produce: &mut ProduceAccount,
        account: &mut Account,
    ) {
        let mut skip_below = None;
        for s in settled {
            match s {
                Settled::Acked { sent_ms, at_ms, .. } => {
                    produce.acked(sent_ms, at_ms, self.timeout_ms);
                }
                Settled::TimedOut { at_ms, .. } => produce.failed(at_ms),
                Settled::Dropped {
                    seq,
                    at_ms,
                    counted,
                } => {
                    if !counted {
                        produce.failed(at_ms);
                    }
                    skip_below = Some(seq + 1);
                }
            }
        }
        if let Some(bound) = skip_below {
            account.skip_below(self.origin, self.stream, bound);
        }
    }
}

/// The publisher's client and the task polling its connection.
struct Connection {
    client: AsyncClient,
    events: mpsc::Receiver<Result<Event, String>>,
    connected: bool,
}

fn connect(spec: &MqttProbeSpec) -> Result<Connection, String> {
    let client_id = format!(
        "pipescope-probe-{}-{:08x}",
        spec.broker_name,
        fastrand::u32(..)
    );
    let mut options = client_options(&spec.broker_name, &spec.broker, client_id)?;
    // A new session each time: nothing is sent again after a reconnect, so packet ids match.
    options.set_clean_start(true);
    let (client, mut eventloop) = AsyncClient::new(options, CLIENT_QUEUE);
    let (tx, events) = mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            let event = eventloop.poll().await.map_err(|e| e.to_string());
            let failed = event.is_err();
            if tx.send(event).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(Connection {
        client,
        events,
        connected: false,
    })
}

async fn next_event(connection: &mut Option<Connection>) -> Option<Result<Event, String>> {
    match connection {
        Some(c) => c.events.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs one MQTT or bridge probe until its readers end; the supervisor starts it again.
pub async fn run_mqtt_probe(spec: MqttProbeSpec, state: ProbesState, clock: Arc<dyn Clock>) {
    let started = clock.now_millis();
    let origin = format!("pipescope-probe-{}-{started}", spec.name);
    let timeout_ms = spec.timeout.as_millis() as u64;
    // The grace outlasts the timeout: a message dropped with its connection is excused before
    // its gap would be judged.
    let settings = CompletenessConfig {
        grace_ms: (2 * timeout_ms).max(CompletenessConfig::default().grace_ms),
        horizon_ms: (12 * timeout_ms).max(CompletenessConfig::default().horizon_ms),
        max_streams: 4,
        ..CompletenessConfig::default()
    };
    let mut account = match &spec.kafka {
        None => Account::Mqtt(Hop::new(settings, started)),
        Some(_) => {
            let mut flow = Flow::new();
            let mqtt = flow.add_hop("mqtt", settings.clone(), started);
            let kafka = flow.add_hop("kafka", settings, started);
            flow.add_edge(mqtt, kafka);
            Account::Bridge { flow, mqtt, kafka }
        }
    };

    let (to_probe, mut from_readers) = mpsc::channel::<Vec<Read>>(64);
    let reader = FilterReader {
        client_id: format!(
            "pipescope-probe-read-{}-{:08x}",
            spec.broker_name,
            fastrand::u32(..)
        ),
        broker_name: spec.broker_name.clone(),
        broker: spec.broker.clone(),
        filter: spec.topic.clone(),
        clock: clock.clone(),
    };
    let mut mqtt_sink = MqttSink {
        origin: origin.clone(),
        to_probe: to_probe.clone(),
        batch: Vec::new(),
    };
    tokio::spawn(async move { reader.run(&mut mqtt_sink).await });
    if let Some((cluster_name, cluster, kafka_topic)) = &spec.kafka {
        let reader = TopicReader {
            cluster_name: cluster_name.clone(),
            cluster: cluster.clone(),
            topic: kafka_topic.clone(),
            group: format!("pipescope-probe-{}", spec.name),
            clock: clock.clone(),
        };
        let mut sink = KafkaSink {
            origin: origin.clone(),
            to_probe: to_probe.clone(),
            batch: Vec::new(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("probe-{}", spec.name))
            .spawn(move || reader.run(&mut sink));
        if let Err(e) = spawned {
            tracing::error!(probe = %spec.name, "cannot start the probe's Kafka reader thread: {e}");
            return;
        }
    }
    drop(to_probe);

    let mut view = View {
        publishing: false,
        mqtt_reading: false,
        kafka_reading: false,
        last_error: None,
    };
    let mut produce = ProduceAccount::default();
    let outcomes = Outcomes {
        origin: &origin,
        stream: &spec.topic,
        timeout_ms,
    };
    let mut tracker = PublishTracker::default();
    let mut next_seq = 0u64;
    let mut connection: Option<Connection> = None;
    let mut backoff = Backoff::new(spec.broker.reconnect_min, spec.broker.reconnect_max);
    let mut reconnect_at = tokio::time::Instant::now();
    // The MQTT subscription was granted once and lost since.
    let mut resubscribing = false;
    // Messages go out once the publisher is connected and every reader is reading (nothing sent
    // is missed at the start), then on every interval: while the publisher is not connected,
    // each one counts unavailable.
    let mut sending = false;

    let mut send = tokio::time::interval(spec.interval);
    send.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(reconnect_at), if connection.is_none() => {
                match connect(&spec) {
                    Ok(c) => connection = Some(c),
                    Err(e) => {
                        tracing::error!(probe = %spec.name, "{e}");
                        view.last_error = Some(e);
                        reconnect_at = tokio::time::Instant::now() + backoff.next_delay_jittered(fastrand::f64());
                    }
                }
            }
            event = next_event(&mut connection) => {
                let now = clock.now_millis();
                let lost = match event {
                    Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                        if let Some(c) = connection.as_mut() {
                            c.connected = true;
                        }
                        backoff.reset();
                        view.last_error = None;
                        None
                    }
                    Some(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                        tracker.written(pkid);
                        None
                    }
                    Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                        let success = matches!(
                            ack.reason,
                            PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                        );
                        if !success {
                            view.last_error = Some(format!(
                                "MQTT broker {} refused a probe message on {:?} ({:?}) — check the broker's ACL for the monitor's user",
                                spec.broker_name, spec.topic, ack.reason
                            ));
                        }
                        let settled = tracker.acked(ack.pkid, success, now);
                        outcomes.apply(settled, &mut produce, &mut account);
                        None
                    }
                    Some(Ok(_)) => None,
                    Some(Err(e)) => Some(e),
                    None => Some("its connection task ended".to_string()),
                };
                if let Some(e) = lost {
                    // What waited for a PUBACK may never have been published.
                    connection = None;
                    outcomes.apply(tracker.connection_lost(now), &mut produce, &mut account);
                    let delay = backoff.next_delay_jittered(fastrand::f64());
                    let message = format!(
                        "cannot publish to MQTT broker {} at {} ({e}) — is the broker running? Retrying in {:.1}s",
                        spec.broker_name,
                        spec.broker.url,
                        delay.as_secs_f64()
                    );
                    tracing::debug!(probe = %spec.name, "{message}");
                    view.last_error = Some(message);
                    reconnect_at = tokio::time::Instant::now() + delay;
                }
            }
            _ = send.tick(), if sending => {
                let now = clock.now_millis();
                match connection.as_ref().filter(|c| c.connected) {
                    Some(c) => {
                        let trace = TraceHeader { origin: origin.clone(), seq: next_seq, ts: now };
                        let properties = PublishProperties {
                            user_properties: trace
                                .encode()
                                .into_iter()
                                .map(|(k, v)| (k.to_string(), v))
                                .collect(),
                            ..PublishProperties::default()
                        };
                        match c.client.try_publish_with_properties(
                            spec.topic.clone(),
                            QoS::AtLeastOnce,
                            false,
                            &b"pipescope probe"[..],
                            properties,
                        ) {
                            Ok(()) => {
                                tracker.queued(next_seq, now);
                                next_seq += 1;
                            }
                            // The client's queue is full: not sent, unavailable.
                            Err(e) => {
                                tracing::debug!(probe = %spec.name, "probe message not queued: {e}");
                                produce.failed(now);
                            }
                        }
                    }
                    // Not connected: nothing is published, so no number is used up.
                    None => produce.failed(now),
                }
            }
            batch = from_readers.recv() => match batch {
                Some(batch) => for read in batch {
                    match read {
                        Read::Mqtt { trace, topic, arrival_ms } => {
                            account.observe_mqtt(&trace, &topic, arrival_ms);
                        }
                        Read::MqttStatus(subscribed, error) => {
                            if subscribed && resubscribing {
                                account.mqtt_resubscribed(&spec.topic);
                            }
                            resubscribing = (resubscribing || view.mqtt_reading) && !subscribed;
                            view.mqtt_reading = subscribed;
                            if error.is_some() || subscribed {
                                view.last_error = error;
                            }
                        }
                        Read::Kafka { partition, stream, trace, arrival_ms } => {
                            account.observe_kafka(partition, &stream, &trace, arrival_ms);
                        }
                        Read::KafkaRebased(partition) => account.kafka_rebased(partition),
                        Read::KafkaStatus(reading, error) => {
                            view.kafka_reading = reading;
                            if error.is_some() || reading {
                                view.last_error = error;
                            }
                        }
                    }
                },
                None => {
                    tracing::error!(probe = %spec.name, "the probe's reader ended");
                    return;
                }
            },
            _ = tick.tick() => {
                let now = clock.now_millis();
                outcomes.apply(tracker.expire(now, timeout_ms), &mut produce, &mut account);
                account.tick(now);
                view.publishing = connection.as_ref().is_some_and(|c| c.connected);
                state.set(view.figures(&spec, &origin, now, produce.figures(now, started), &account));
            }
        }
        sending |= view.mqtt_reading
            && (spec.kafka.is_none() || view.kafka_reading)
            && connection.as_ref().is_some_and(|c| c.connected);
    }
}
