//! Observed flows in the running monitor (docs/completeness.md "Reading"): one task per
//! `[flows.X]` reads the trace headers at each hop (an MQTT filter or a Kafka topic), feeds the
//! flow's accounting (`pipescope_core::completeness::Flow`), ticks it every second and
//! publishes its figures to the API, `/metrics` and the bus.

pub mod api;
pub mod inputs;
pub mod kafka;
pub mod metrics;
pub mod mqtt;
pub mod shared;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use pipescope_core::completeness::flow::NamedEdge;
use pipescope_core::completeness::{
    CompletenessConfig, Flow, HopFigures, HopId, is_partition_text,
};
use pipescope_core::live::flow::HopPlace;
use pipescope_core::{Clock, EpochMillis};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::bus::Bus;
use crate::config::{Config, FlowConfig, FlowHop};
use crate::shutdown::{Stop, Supervisor};

/// Batches a flow's readers may have waiting: a slow flow holds its readers back.
const QUEUED_BATCHES: usize = 64;
/// How often the flow settles gaps and publishes its figures.
const TICK: Duration = Duration::from_secs(1);
/// Figures go to the bus (the store, InfluxDB) every this many ticks.
const TICKS_PER_SAMPLE: u64 = 10;
/// How long a shared flow waits at the stop for its readers to hand their partitions over.
const HANDOVER_AT_STOP: Duration = Duration::from_secs(15);

/// A reader's way to its flow: a bounded queue, and the time the reader spent waiting for room
/// in it (backpressure: the flow's accounting is slower than the traffic).
#[derive(Debug, Clone)]
pub struct ToFlow {
    queue: mpsc::Sender<Vec<Seen>>,
    blocked_us: Arc<AtomicU64>,
}

impl ToFlow {
    /// False once the flow is gone.
    pub async fn send(&self, batch: Vec<Seen>) -> bool {
        match self.queue.try_send(batch) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => false,
            Err(TrySendError::Full(batch)) => {
                let waiting = Instant::now();
                let sent = self.queue.send(batch).await.is_ok();
                self.waited(waiting);
                sent
            }
        }
    }

    /// [`ToFlow::send`] from a thread outside the runtime.
    pub fn send_blocking(&self, batch: Vec<Seen>) -> bool {
        match self.queue.try_send(batch) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => false,
            Err(TrySendError::Full(batch)) => {
                let waiting = Instant::now();
                let sent = self.queue.blocking_send(batch).is_ok();
                self.waited(waiting);
                sent
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    fn waited(&self, since: Instant) {
        let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.blocked_us.fetch_add(us, Ordering::Relaxed);
    }
}

/// What a reader saw, handed to its flow.
#[derive(Debug, Clone)]
pub enum Seen {
    /// A traced record; `partition` is the Kafka partition it was read from. The names are
    /// shared copies (`Names`): a record costs no allocation.
    Traced {
        hop: usize,
        partition: Option<u32>,
        origin: Arc<str>,
        stream: Arc<str>,
        seq: u64,
        origin_ms: EpochMillis,
        arrival_ms: EpochMillis,
    },
    /// A record whose trace could not be decoded.
    Malformed { hop: usize, arrival_ms: EpochMillis },
    /// A record without a trace.
    Untraced { hop: usize },
    /// The reader's position on a Kafka partition jumped past records it never read.
    Rebased { hop: usize, partition: u32 },
    /// The reader stopped (why: "ended" or "panicked: ...").
    Ended { hop: usize, why: String },
    /// The reader's connection.
    Reader {
        hop: usize,
        connected: bool,
        /// Kafka partitions assigned (0 for MQTT).
        partitions: u32,
        error: Option<String>,
    },
}

/// What a hop's reader reports, besides the accounting.
#[cfg_attr(test, derive(PartialEq))]
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReaderView {
    /// Reading: subscribed (MQTT), or every partition of the topic assigned at a known offset
    /// (Kafka). Records published after it turns true are read.
    pub connected: bool,
    /// Kafka partitions assigned.
    pub partitions: u32,
    /// Records with no trace header: not judged.
    pub untraced: u64,
    /// Times the position on a Kafka partition jumped past unread records (retention,
    /// compaction): the streams there start a new base, nothing is counted lost.
    pub rebased: u64,
    /// The last connection or read error, until the next success.
    pub last_error: Option<String>,
    /// Seconds the reader waited for the flow to take what it read (backpressure): growing
    /// means the accounting cannot keep up with the traffic.
    pub blocked_s: f64,
}

/// One hop of a flow: where it reads, its reader and its figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HopView {
    /// `mqtt:<broker>:<filter>` or `kafka:<cluster>:<topic>`.
    pub hop: String,
    pub reader: ReaderView,
    pub figures: HopFigures,
}

/// A flow's hops and the edges between consecutive hops.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FlowView {
    pub flow: String,
    /// When these figures were taken (epoch ms).
    pub updated_ms: EpochMillis,
    pub hops: Vec<HopView>,
    pub edges: Vec<NamedEdge>,
    /// Where each hop reads, for the flow graph.
    #[serde(skip)]
    pub places: Vec<HopPlace>,
}

/// Every flow's latest figures, shared by the flow tasks, the API and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct FlowsState(Arc<RwLock<BTreeMap<String, FlowView>>>);

impl FlowsState {
    pub fn all(&self) -> Vec<FlowView> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<FlowView> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub(crate) fn set(&self, view: FlowView) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(view.flow.clone(), view);
    }
}

/// A hop's name in figures and labels.
pub fn hop_name(hop: &FlowHop) -> String {
    match hop {
        FlowHop {
            mqtt: Some(b),
            filter: Some(f),
            ..
        } => format!("mqtt:{b}:{f}"),
        FlowHop {
            kafka: Some(c),
            topic: Some(t),
            ..
        } => format!("kafka:{c}:{t}"),
        _ => "invalid".to_string(),
    }
}

/// Where a hop reads, for the flow graph.
pub fn hop_place(hop: &FlowHop) -> HopPlace {
    match hop {
        FlowHop {
            mqtt: Some(broker),
            filter: Some(filter),
            ..
        } => HopPlace::Mqtt {
            broker: broker.clone(),
            filter: filter.clone(),
        },
        FlowHop {
            kafka: cluster,
            topic,
            ..
        } => HopPlace::Kafka {
            cluster: cluster.clone().unwrap_or_default(),
            topic: topic.clone().unwrap_or_default(),
        },
    }
}

/// The core's accounting settings for a flow.
pub fn completeness_config(flow: &FlowConfig) -> CompletenessConfig {
    CompletenessConfig {
        grace_ms: flow.grace.as_millis() as u64,
        horizon_ms: flow.horizon.as_millis() as u64,
        max_streams: flow.max_streams,
        kind_prefixes: flow.kind_prefixes.clone(),
        ..CompletenessConfig::default()
    }
}

/// One supervised task per configured flow, and the state they publish.
pub fn start_flows(
    config: &Config,
    bus: &Bus,
    tasks: &Supervisor,
    clock: &Arc<dyn Clock>,
) -> FlowsState {
    let state = FlowsState::default();
    let config = Arc::new(config.clone());
    for name in config.flows.keys() {
        tracing::info!(flow = %name, "observing flow");
        let shared = config.flows[name].share.is_some();
        let (name, config, state, bus, clock, supervisor) = (
            name.clone(),
            config.clone(),
            state.clone(),
            bus.clone(),
            clock.clone(),
            tasks.clone(),
        );
        tasks.spawn(
            format!("flow {name}"),
            Box::new(move || {
                let work = run_flow(
                    name.clone(),
                    config.clone(),
                    state.clone(),
                    bus.clone(),
                    clock.clone(),
                    supervisor.stop_handle(),
                );
                if !shared {
                    return Box::pin(work);
                }
                // A shared flow hands its partitions over after the stop: it runs past it.
                let running = supervisor.spawn_past_stop(work);
                Box::pin(async move {
                    if let Err(e) = running.await
                        && e.is_panic()
                    {
                        std::panic::resume_unwind(e.into_panic());
                    }
                })
            }),
        );
    }
    state
}

/// A flow's accounting with its readers' reports.
#[derive(Debug)]
pub struct FlowAccount {
    name: String,
    flow: Flow,
    hops: Vec<(String, HopId, ReaderView)>,
    places: Vec<HopPlace>,
    /// Per hop, microseconds its reader waited for room in the queue.
    blocked_us: Vec<Arc<AtomicU64>>,
    /// Per hop, whether its reader has connected yet.
    connected_once: Vec<bool>,
}

impl FlowAccount {
    pub fn new(name: &str, config: &FlowConfig, now: EpochMillis) -> Self {
        let mut flow = Flow::new();
        let settings = completeness_config(config);
        let hops: Vec<(String, HopId, ReaderView)> = config
            .hops
            .iter()
            .map(|h| {
                let hop = hop_name(h);
                let id = flow.add_hop(hop.clone(), settings.clone(), now);
                (hop, id, ReaderView::default())
            })
            .collect();
        for pair in hops.windows(2) {
            flow.add_edge(pair[0].1, pair[1].1);
        }
        Self {
            name: name.to_string(),
            flow,
            blocked_us: hops.iter().map(|_| Arc::default()).collect(),
            connected_once: vec![false; hops.len()],
            hops,
            places: config.hops.iter().map(hop_place).collect(),
        }
    }

    /// Hop `hop`'s reader's way into `queue`.
    pub fn to_flow(&self, hop: usize, queue: &mpsc::Sender<Vec<Seen>>) -> ToFlow {
        ToFlow {
            queue: queue.clone(),
            blocked_us: self.blocked_us[hop].clone(),
        }
    }

    /// Hop `hop`'s reader reports itself connected at `now`: the first time, the hop (and the
    /// edges into it) judge from then, as what came before its start positions it never saw.
    pub fn reader_connected(&mut self, hop: usize, now: EpochMillis) {
        if !std::mem::replace(&mut self.connected_once[hop], true) {
            self.flow.watching_from(self.hops[hop].1, now);
        }
    }

    pub fn apply(&mut self, seen: Seen) {
        match seen {
            Seen::Traced {
                hop,
                partition,
                origin,
                stream,
                seq,
                origin_ms,
                arrival_ms,
            } => {
                let id = self.hops[hop].1;
                match partition {
                    Some(p) if !is_partition_text(&stream, p) => {
                        self.flow.observe_in_partition(
                            id, p, &origin, &stream, seq, origin_ms, arrival_ms,
                        );
                    }
                    _ => {
                        self.flow
                            .observe(id, &origin, &stream, seq, origin_ms, arrival_ms);
                    }
                }
            }
            Seen::Malformed { hop, arrival_ms } => {
                let id = self.hops[hop].1;
                self.flow.hop_mut(id).malformed(arrival_ms);
            }
            Seen::Untraced { hop } => self.hops[hop].2.untraced += 1,
            Seen::Rebased { hop, partition } => {
                let id = self.hops[hop].1;
                let h = self.flow.hop_mut(id);
                h.rebase_on_next(&partition.to_string());
                h.rebase_partition_on_next(partition);
                self.hops[hop].2.rebased += 1;
            }
            Seen::Ended { hop, why } => {
                let reader = &mut self.hops[hop].2;
                reader.connected = false;
                reader.last_error = Some(format!("the reader {why}"));
            }
            Seen::Reader {
                hop,
                connected,
                partitions,
                error,
            } => {
                let reader = &mut self.hops[hop].2;
                reader.connected = connected;
                reader.partitions = partitions;
                reader.last_error = error;
            }
        }
    }

    pub fn tick(&mut self, now: EpochMillis) {
        self.flow.tick(now);
    }

    pub fn view(&self, now: EpochMillis) -> FlowView {
        let figures = self.flow.figures();
        FlowView {
            flow: self.name.clone(),
            updated_ms: now,
            hops: figures
                .hops
                .into_iter()
                .zip(self.hops.iter().zip(&self.blocked_us))
                .map(|(named, ((_, _, reader), blocked_us))| HopView {
                    hop: named.hop,
                    reader: ReaderView {
                        blocked_s: blocked_us.load(Ordering::Relaxed) as f64 / 1e6,
                        ..reader.clone()
                    },
                    figures: named.figures,
                })
                .collect(),
            edges: figures.edges,
            places: self.places.clone(),
        }
    }
}

/// Runs a Kafka reader on its own thread (librdkafka blocks); when it ends, or panics, the
/// flow is told why through `ended`.
fn spawn_kafka_reader(
    flow: &str,
    hop: usize,
    ended: ToFlow,
    read: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("trace-{flow}-{hop}"))
        .spawn(move || {
            let why = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
                Ok(()) => "ended".to_string(),
                Err(panic) => panic_text(panic.as_ref()),
            };
            // Fails when the flow itself is gone: then nobody needs to know.
            let _ = ended.send_blocking(vec![Seen::Ended { hop, why }]);
        })
        .map(drop)
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    format!("panicked: {message}")
}

async fn run_flow(
    name: String,
    config: Arc<Config>,
    state: FlowsState,
    bus: Bus,
    clock: Arc<dyn Clock>,
    stop: Stop,
) {
    let Some(flow_config) = config.flows.get(&name) else {
        return;
    };
    let mut account = FlowAccount::new(&name, flow_config, clock.now_millis());
    if flow_config.share.is_some() {
        shared::share_kafka_hops(&mut account, flow_config);
    }
    let (to_flow, mut from_readers) = mpsc::channel::<Vec<Seen>>(QUEUED_BATCHES);
    let (control, mut requests) = mpsc::channel::<shared::Control>(QUEUED_BATCHES);
    let mut shared_readers = 0usize;
    // Dropped with this task: MQTT readers are aborted, Kafka reader threads see the channel
    // closed and end.
    let mut readers = tokio::task::JoinSet::new();
    for (hop, h) in flow_config.hops.iter().enumerate() {
        let to_flow = account.to_flow(hop, &to_flow);
        match h {
            FlowHop {
                mqtt: Some(broker),
                filter: Some(filter),
                ..
            } => {
                let Some(settings) = config.mqtt.get(broker) else {
                    continue;
                };
                let reader = mqtt::FilterReader {
                    client_id: mqtt::client_id(&name),
                    broker_name: broker.clone(),
                    broker: settings.clone(),
                    filter: filter.clone(),
                    clock: clock.clone(),
                };
                let mut sink = mqtt::TraceMessages {
                    hop,
                    to_flow,
                    batch: Vec::new(),
                };
                readers.spawn(async move { reader.run(&mut sink).await });
            }
            FlowHop {
                kafka: Some(cluster),
                topic: Some(topic),
                inputs: counts_inputs,
                ..
            } if flow_config.share.is_some() => {
                let (Some(settings), Some(share)) = (config.kafka.get(cluster), &flow_config.share)
                else {
                    continue;
                };
                let reader = shared::GroupReader {
                    flow: name.clone(),
                    hop,
                    cluster_name: cluster.clone(),
                    cluster: settings.clone(),
                    topic: topic.clone(),
                    group: shared::hop_group(&share.group, hop),
                    handover_topic: share.handover_topic.clone(),
                    clock: clock.clone(),
                    control: control.clone(),
                    stop: stop.clone(),
                };
                let sink =
                    kafka::TraceSink::new(hop, flow_config.kind_prefixes.clone(), to_flow.clone());
                let counts_inputs = *counts_inputs;
                let spawned = spawn_kafka_reader(&name, hop, to_flow, move || {
                    if counts_inputs {
                        reader.run(inputs::InputsSink(sink));
                    } else {
                        reader.run(sink);
                    }
                });
                match spawned {
                    Ok(()) => shared_readers += 1,
                    Err(e) => {
                        tracing::error!(flow = %name, "cannot start a Kafka reader thread: {e}")
                    }
                }
            }
            FlowHop {
                kafka: Some(cluster),
                topic: Some(topic),
                inputs: counts_inputs,
                ..
            } => {
                let Some(settings) = config.kafka.get(cluster) else {
                    continue;
                };
                let reader = kafka::TopicReader {
                    cluster_name: cluster.clone(),
                    cluster: settings.clone(),
                    topic: topic.clone(),
                    group: format!("pipescope-trace-{name}"),
                    clock: clock.clone(),
                };
                let mut sink =
                    kafka::TraceSink::new(hop, flow_config.kind_prefixes.clone(), to_flow.clone());
                let counts_inputs = *counts_inputs;
                let spawned = spawn_kafka_reader(&name, hop, to_flow.clone(), move || {
                    if counts_inputs {
                        reader.run(&mut inputs::InputsSink(sink));
                    } else {
                        reader.run(&mut sink);
                    }
                });
                if let Err(e) = spawned {
                    tracing::error!(flow = %name, "cannot start a Kafka reader thread: {e}");
                }
            }
            _ => {}
        }
    }
    drop(to_flow);
    drop(control);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    // Once stopped, a shared flow goes on until its Kafka readers have handed over and ended.
    let mut stopping: Option<tokio::time::Instant> = None;
    let take = |account: &mut FlowAccount,
                batch: Vec<Seen>,
                mut readers_left: Option<&mut usize>| {
        for seen in batch {
            if let Seen::Ended { hop, why } = &seen {
                if let Some(left) = readers_left.as_deref_mut().filter(|left| **left > 0) {
                    *left -= 1;
                    if *left == 0 {
                        return false;
                    }
                    continue;
                }
                tracing::error!(flow = %name, hop = %account.hops[*hop].0, "the hop's reader {why}");
                return false;
            }
            if let Seen::Reader {
                hop,
                connected: true,
                ..
            } = &seen
            {
                account.reader_connected(*hop, clock.now_millis());
            }
            account.apply(seen);
        }
        true
    };
    loop {
        // A reader that ends takes the flow with it: the supervisor starts the flow again (with
        // backoff) and shows the failure, rather than a hop going quiet.
        tokio::select! {
            batch = from_readers.recv() => match batch {
                Some(batch) => {
                    if !take(&mut account, batch, stopping.is_some().then_some(&mut shared_readers)) {
                        return;
                    }
                }
                None => return,
            },
            Some(request) = requests.recv() => {
                // Everything read before the request counts in what is handed over.
                while let Ok(batch) = from_readers.try_recv() {
                    if !take(&mut account, batch, stopping.is_some().then_some(&mut shared_readers)) {
                        return;
                    }
                }
                shared::answer(&mut account, request);
            }
            () = stop.stopped(), if stopping.is_none() && shared_readers > 0 => {
                stopping = Some(tokio::time::Instant::now() + HANDOVER_AT_STOP);
            }
            () = tokio::time::sleep_until(stopping.unwrap_or_else(tokio::time::Instant::now)), if stopping.is_some() => {
                tracing::warn!(flow = %name, "the shared flow's readers did not hand over within {HANDOVER_AT_STOP:?}: their partitions start a fresh base elsewhere");
                return;
            }
            Some(ended) = readers.join_next() => {
                let why = match ended {
                    Ok(()) => "ended".to_string(),
                    Err(e) => e.try_into_panic().map_or_else(|e| e.to_string(), |p| panic_text(p.as_ref())),
                };
                tracing::error!(flow = %name, "an MQTT reader of the flow {why}");
                return;
            }
            _ = tick.tick() => {
                let now = clock.now_millis();
                account.tick(now);
                let view = account.view(now);
                ticks += 1;
                if ticks.is_multiple_of(TICKS_PER_SAMPLE) {
                    bus.publish(metrics::samples(&view));
                }
                state.set(view);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub fn flow_config() -> FlowConfig {
        let text = "[mqtt.edge]\nurl = \"mqtt://h\"\n[kafka.prod]\nbootstrap = \"a:1\"\n\
                    [flows.m]\nhops = [{ mqtt = \"edge\", filter = \"machine/#\" }, { kafka = \"prod\", topic = \"machine.data\" }]\ngrace = \"2s\"\n";
        crate::config::parse("t", text, []).unwrap().flows["m"].clone()
    }

    pub fn traced(hop: usize, partition: Option<u32>, stream: &str, seq: u64, at: u64) -> Seen {
        Seen::Traced {
            hop,
            partition,
            origin: "sim-1".into(),
            stream: stream.into(),
            seq,
            origin_ms: at - 5,
            arrival_ms: at,
        }
    }

    /// Five records at MQTT, four of them at Kafka (2 lost, 3 twice), one untraced and one
    /// malformed at Kafka, settled.
    pub fn sample_view() -> FlowView {
        let mut a = FlowAccount::new("m", &flow_config(), 1_000);
        for seq in 0..5 {
            a.apply(traced(0, None, "machine/a", seq, 2_000 + seq));
        }
        for seq in [0, 1, 3, 3, 4] {
            a.apply(traced(1, Some(0), "machine/a", seq, 2_010 + seq));
        }
        a.apply(Seen::Untraced { hop: 1 });
        a.apply(Seen::Malformed {
            hop: 1,
            arrival_ms: 2_100,
        });
        a.tick(10_000);
        a.view(10_000)
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn a_flow_counts_hops_and_the_edge_between_them() {
        let view = sample_view();
        assert_eq!(view.hops[0].hop, "mqtt:edge:machine/#");
        assert_eq!(view.hops[1].hop, "kafka:prod:machine.data");
        let (up, down) = (&view.hops[0].figures.total, &view.hops[1].figures.total);
        assert_eq!((up.counters.records, up.counters.lost), (5, 0));
        assert_eq!(down.counters.records, 5);
        assert_eq!(down.counters.lost, 1);
        assert_eq!(down.counters.duplicated, 1);
        assert_eq!(view.hops[1].reader.untraced, 1);
        assert_eq!(view.hops[1].figures.malformed, 1);
        let edge = &view.edges[0];
        assert_eq!(
            (edge.upstream.as_str(), edge.downstream.as_str()),
            ("mqtt:edge:machine/#", "kafka:prod:machine.data")
        );
        assert_eq!(edge.figures.total.counters.lost, 1);
        assert_eq!(edge.figures.total.counters.duplicated, 1);
    }

    #[test]
    fn the_example_flow_is_valid_once_uncommented() {
        let example = crate::config::EXAMPLE;
        let block = crate::config::example_block("# [flows.machines]");
        // The commented block stays where it is; its uncommented copy goes at the end.
        let text = format!("{example}\n{block}");
        let config = crate::config::parse("example", &text, []).unwrap();
        let flow = &config.flows["machines"];
        assert_eq!(
            flow.hops.iter().map(hop_name).collect::<Vec<_>>(),
            ["mqtt:edge:machine/#", "kafka:prod:machine.data"]
        );
        assert_eq!(completeness_config(flow), CompletenessConfig::default());
    }

    #[test]
    fn a_jump_past_deleted_records_rebases_the_partition_instead_of_losing_them() {
        let mut a = FlowAccount::new("m", &flow_config(), 1_000);
        a.apply(traced(1, Some(0), "machine/a", 0, 2_000));
        a.apply(traced(1, Some(3), "3", 0, 2_000));
        a.apply(Seen::Rebased {
            hop: 1,
            partition: 0,
        });
        a.apply(Seen::Rebased {
            hop: 1,
            partition: 3,
        });
        a.apply(traced(1, Some(0), "machine/a", 40, 2_001));
        a.apply(traced(1, Some(3), "3", 70, 2_001));
        a.tick(20_000);
        let view = a.view(20_000);
        assert_eq!(view.hops[1].figures.total.counters.lost, 0);
        assert_eq!(view.hops[1].reader.rebased, 2);
    }

    #[test]
    fn a_reader_is_told_when_its_flow_is_gone_and_only_waiting_counts_as_blocked() {
        let a = FlowAccount::new("m", &flow_config(), 1_000);
        let (queue, mut taken) = mpsc::channel(4);
        let to_flow = a.to_flow(1, &queue);
        assert!(to_flow.send_blocking(vec![Seen::Untraced { hop: 1 }]));
        assert_eq!(taken.try_recv().unwrap().len(), 1);
        assert_eq!(a.view(2_000).hops[1].reader.blocked_s, 0.0);
        drop(taken);
        assert!(to_flow.is_closed());
        assert!(!to_flow.send_blocking(vec![Seen::Untraced { hop: 1 }]));
    }

    #[test]
    fn the_kafka_hop_judges_from_when_its_reader_first_connected() {
        let mut a = FlowAccount::new("m", &flow_config(), 1_000);
        a.reader_connected(1, 9_000);
        // A reconnection later does not move it.
        a.reader_connected(1, 50_000);
        let view = a.view(60_000);
        assert_eq!(view.hops[1].figures.watching_since_ms, 9_000);
        assert_eq!(view.edges[0].figures.downstream_since_ms, 9_000);
        assert_eq!(view.hops[0].figures.watching_since_ms, 1_000);
    }

    #[test]
    fn a_reader_that_stopped_says_why() {
        let mut a = FlowAccount::new("m", &flow_config(), 1_000);
        a.apply(Seen::Reader {
            hop: 1,
            connected: true,
            partitions: 2,
            error: None,
        });
        let panic = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        a.apply(Seen::Ended {
            hop: 1,
            why: panic_text(panic.as_ref()),
        });
        let reader = &a.view(2_000).hops[1].reader;
        assert!(!reader.connected);
        assert_eq!(
            reader.last_error.as_deref(),
            Some("the reader panicked: boom 1")
        );
    }
}
