//! `pipescope simulate traffic`: producers and consumer groups over many topics, with groups
//! made slow, stalled, stopped, rewinding or crashing on demand, so that every lag verdict of
//! the Kafka watcher can be produced (knobs: `pipescope_core::pipeline::traffic`,
//! docs/pipeline.md). Records carry the trace header; consumers count the records they read
//! again. Prints a JSON summary on stdout at the end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use pipescope_core::backoff::Backoff;
use pipescope_core::pipeline::trace::{Sequencer, TraceHeader};
use pipescope_core::pipeline::traffic::{
    Allowance, Behaviour, GroupSpec, Phase, RateSchedule, ReplayCounter, parse_groups,
    producer_share, rewind_target,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

/// How often a crashing group's members commit what they read.
const CRASHING_COMMIT_EVERY: Duration = Duration::from_secs(1);
use tokio::time::Instant;

use super::{KafkaArgs, PartArgs, Stop, ensure_topic, now_ms, queue_record};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub part: PartArgs,
    /// Number of topics, named <topic-prefix>0, <topic-prefix>1, ... (created when missing).
    #[arg(long, default_value_t = 3)]
    pub topics: u32,
    /// Prefix of the topic names.
    #[arg(long, default_value = "traffic-")]
    pub topic_prefix: String,
    /// Partitions of each topic when this part creates it.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Producers (each its own Kafka client), all writing to every topic.
    #[arg(long, default_value_t = 2)]
    pub producers: u32,
    /// Records per second per topic, over all producers.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// A consumer group and its behaviour (repeatable): healthy:NAME, slow:NAME:FACTOR,
    /// stalled:NAME[:AFTER], stopped:NAME[:AFTER[:EXPIRE|keep]], rewinding:NAME:EVERY:BY,
    /// crashing:NAME:EVERY:DOWN. Every group reads every topic.
    #[arg(long = "group", value_name = "SPEC")]
    pub groups: Vec<String>,
    /// Extra healthy groups, named traffic-healthy-0, -1, ...
    #[arg(long, default_value_t = 0)]
    pub healthy_groups: u32,
    /// Members (consumers) per group.
    #[arg(long, default_value_t = 1)]
    pub members: u32,
    /// Producers send, and slow consumers get their allowance, once per tick.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub tick: Duration,
    /// Stop after this long.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Start of the origin ids in the trace headers (default sim-traffic-<start ms>); each
    /// producer and topic is its own origin, <origin>-p<N>-<topic>.
    #[arg(long)]
    pub origin: Option<String>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

#[derive(Debug, Clone, Default)]
struct Metrics {
    delivered: Family<TopicLabel, Counter>,
    failed: Family<TopicLabel, Counter>,
    consumed: Family<GroupLabel, Counter>,
    replayed: Family<GroupLabel, Counter>,
    commits: Family<GroupLabel, Counter>,
    rewinds: Family<GroupLabel, Counter>,
    crashes: Family<GroupLabel, Counter>,
}

impl Metrics {
    fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        let r = registry;
        r.register(
            "pipescope_simulate_traffic_records_delivered",
            "Records Kafka acknowledged, per topic",
            self.delivered.clone(),
        );
        r.register(
            "pipescope_simulate_traffic_records_failed",
            "Records Kafka did not take (after librdkafka's retries), per topic",
            self.failed.clone(),
        );
        r.register(
            "pipescope_simulate_traffic_records_consumed",
            "Records a group processed (replays included)",
            self.consumed.clone(),
        );
        r.register(
            "pipescope_simulate_traffic_records_replayed",
            "Records a group processed again (after a rewind or a crash), from the trace headers",
            self.replayed.clone(),
        );
        r.register(
            "pipescope_simulate_traffic_commits",
            "Offset commits a group sent",
            self.commits.clone(),
        );
        r.register(
            "pipescope_simulate_traffic_rewinds",
            "Rewinds of a rewinding group",
            self.rewinds.clone(),
        );
        r.register(
            "pipescope_simulate_traffic_crashes",
            "Crashes of a crashing group's members",
            self.crashes.clone(),
        );
    }
}

/// Records delivered per topic and partition, counted by the producers' delivery reports; the
/// slow consumers' allowance is a share of it.
struct Produced {
    topics: HashMap<String, Vec<AtomicU64>>,
    failed: AtomicU64,
}

impl Produced {
    fn get(&self, topic: &str, partition: i32) -> u64 {
        self.topics
            .get(topic)
            .and_then(|p| p.get(partition as usize))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

struct DeliveryCounter {
    produced: Arc<Produced>,
    metrics: Metrics,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                if let Some(c) = self
                    .produced
                    .topics
                    .get(m.topic())
                    .and_then(|p| p.get(m.partition() as usize))
                {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                self.metrics
                    .delivered
                    .get_or_create(&TopicLabel {
                        topic: m.topic().to_owned(),
                    })
                    .inc();
            }
            Err((e, m)) => {
                tracing::warn!(topic = m.topic(), "a record was not delivered ({e})");
                self.produced.failed.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .failed
                    .get_or_create(&TopicLabel {
                        topic: m.topic().to_owned(),
                    })
                    .inc();
            }
        }
    }
}

/// What a group did, for the summary.
#[derive(Debug, Default, Serialize)]
struct GroupSummary {
    behaviour: String,
    consumed: u64,
    replayed: u64,
    commits: u64,
    rewinds: u64,
    crashes: u64,
    offsets_deleted: bool,
}

#[derive(Debug, Serialize)]
struct Summary {
    origin: String,
    delivered: BTreeMap<String, u64>,
    failed: u64,
    groups: BTreeMap<String, GroupSummary>,
}

pub async fn run(args: Args, stop: Stop) -> anyhow::Result<()> {
    let mut specs: Vec<String> = args.groups.clone();
    specs.extend((0..args.healthy_groups).map(|i| format!("healthy:traffic-healthy-{i}")));
    let groups = parse_groups(specs.iter().map(String::as_str)).map_err(|errors| {
        anyhow::anyhow!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    anyhow::ensure!(
        args.topics > 0 && args.partitions > 0,
        "--topics and --partitions must be at least 1"
    );
    anyhow::ensure!(
        args.rate.is_finite() && args.rate >= 0.0,
        "--rate must be a number of records per second, 0 or more"
    );
    anyhow::ensure!(
        !args.tick.is_zero(),
        "--tick must be longer than 0 (e.g. 100ms)"
    );
    let origin = args
        .origin
        .clone()
        .unwrap_or_else(|| format!("sim-traffic-{}", now_ms()));
    let topics: Vec<String> = (0..args.topics)
        .map(|i| format!("{}{i}", args.topic_prefix))
        .collect();
    let metrics = Metrics::default();
    let health = args
        .part
        .serve_metrics("simulate traffic", |r| metrics.register(r), &stop)
        .await?;
    health.watch_kafka(&args.kafka, None, &stop)?;
    let mut partitions = HashMap::new();
    for topic in &topics {
        let Some(n) = ensure_topic(&args.kafka, topic, args.partitions, false, &stop).await? else {
            return Ok(());
        };
        partitions.insert(topic.clone(), n);
    }
    let produced = Arc::new(Produced {
        topics: partitions
            .iter()
            .map(|(t, n)| (t.clone(), (0..*n).map(|_| AtomicU64::new(0)).collect()))
            .collect(),
        failed: AtomicU64::new(0),
    });
    let started = Instant::now();
    // Ends the run at --duration, or with the stop.
    let finished = stop.child();
    if let Some(d) = args.duration {
        let finished = finished.clone();
        tokio::spawn(async move {
            if !finished.sleep(d).await {
                finished.stop();
            }
        });
    }

    let mut producers = Vec::new();
    for index in 0..args.producers {
        let context = DeliveryCounter {
            produced: produced.clone(),
            metrics: metrics.clone(),
        };
        let producer: ThreadedProducer<DeliveryCounter> = args
            .kafka
            .client_config()?
            .set("linger.ms", "5")
            .set("client.id", format!("{origin}-p{index}"))
            .create_with_context(context)
            .with_context(|| format!("cannot make a Kafka producer for {}", args.kafka.kafka))?;
        producers.push(tokio::spawn(produce(
            producer,
            index,
            topics.clone(),
            partitions.clone(),
            RateSchedule::new(producer_share(args.rate, args.producers)),
            origin.clone(),
            args.tick,
            started,
            finished.clone(),
        )));
    }
    let mut group_tasks = Vec::new();
    for spec in &groups {
        let group = GroupRun {
            spec: spec.clone(),
            kafka: args.kafka.clone(),
            topics: topics.clone(),
            produced: produced.clone(),
            metrics: metrics.clone(),
            tick: args.tick,
            started,
            stop: finished.clone(),
            counts: Arc::new(GroupCounts::default()),
            replays: Arc::new(std::sync::Mutex::new(ReplayCounter::new())),
        };
        let members = args.members.max(1);
        group_tasks.push(tokio::spawn(group.run(members)));
    }
    for p in producers {
        p.await??;
    }
    let mut summary = Summary {
        origin,
        delivered: BTreeMap::new(),
        failed: produced.failed.load(Ordering::Relaxed),
        groups: BTreeMap::new(),
    };
    for (topic, counts) in &produced.topics {
        summary.delivered.insert(
            topic.clone(),
            counts.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
        );
    }
    for task in group_tasks {
        let (name, group) = task.await??;
        summary.groups.insert(name, group);
    }
    tracing::info!(
        stopped_by_signal = stop.is_stopped(),
        "simulate traffic stopped"
    );
    println!("{}", serde_json::to_string(&summary)?);
    if summary.failed > 0 {
        anyhow::bail!("{} records were not delivered to Kafka", summary.failed);
    }
    Ok(())
}

/// One producer: every tick, the records due on every topic, partitions in turn.
#[allow(clippy::too_many_arguments)]
async fn produce(
    producer: ThreadedProducer<DeliveryCounter>,
    index: u32,
    topics: Vec<String>,
    partitions: HashMap<String, i32>,
    schedule: RateSchedule,
    origin: String,
    tick: Duration,
    started: Instant,
    stop: Stop,
) -> anyhow::Result<()> {
    let mut sequencers: Vec<Sequencer<i32>> = topics.iter().map(|_| Sequencer::new()).collect();
    let origins: Vec<String> = topics
        .iter()
        .map(|t| format!("{origin}-p{index}-{t}"))
        .collect();
    let mut sent: Vec<u64> = vec![0; topics.len()];
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'ticks: loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.stopped() => break,
        }
        let due = schedule.due(started.elapsed().as_millis() as u64);
        for (t, topic) in topics.iter().enumerate() {
            let n = partitions[topic];
            while sent[t] < due {
                // Producers start on different partitions, so a share below one record per
                // tick still spreads.
                let partition = ((sent[t] + u64::from(index)) % n as u64) as i32;
                let trace = TraceHeader {
                    origin: origins[t].clone(),
                    seq: sequencers[t].next(partition),
                    ts: now_ms(),
                };
                let payload = serde_json::json!({
                    "producer": index,
                    "topic": topic,
                    "partition": partition,
                    "seq": trace.seq,
                    "ts": trace.ts,
                })
                .to_string();
                let mut headers = OwnedHeaders::new();
                for (name, value) in trace.encode() {
                    headers = headers.insert(Header {
                        key: name,
                        value: Some(value.as_bytes()),
                    });
                }
                let record = BaseRecord::<(), _>::to(topic)
                    .payload(&payload)
                    .partition(partition)
                    .headers(headers);
                let queued = queue_record(&producer, record, Duration::from_millis(5), &stop)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot queue a record for {topic} ({e})"))?;
                if !queued {
                    break 'ticks;
                }
                sent[t] += 1;
            }
        }
    }
    tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(60)))
        .await?
        .context("Kafka did not take every record within 60 s of stopping")?;
    Ok(())
}

#[derive(Debug, Default)]
struct GroupCounts {
    commits: AtomicU64,
    rewinds: AtomicU64,
    crashes: AtomicU64,
    /// Rewinds the group did (shared by its members and their restarts).
    rewinds_done: AtomicU64,
}

/// One consumer group: its members, what they share, and the offsets deleted when it stops.
#[derive(Clone)]
struct GroupRun {
    spec: GroupSpec,
    kafka: KafkaArgs,
    topics: Vec<String>,
    produced: Arc<Produced>,
    metrics: Metrics,
    tick: Duration,
    started: Instant,
    stop: Stop,
    counts: Arc<GroupCounts>,
    replays: Arc<std::sync::Mutex<ReplayCounter>>,
}

/// Closes a consumer on a blocking thread: the close waits for the broker's answer to
/// LeaveGroup, and a broker that never answers must not hold up a runtime worker (and with
/// it the other groups' commits).
fn close_aside(consumer: StreamConsumer) {
    tokio::task::spawn_blocking(move || drop(consumer));
}

/// Why a member's consumer ended.
#[derive(Debug, PartialEq)]
enum Ended {
    Stopped,
    Left { delete_at_ms: Option<u64> },
    Crashed { until_ms: u64 },
}

type Key = (String, i32);

impl GroupRun {
    fn label(&self) -> GroupLabel {
        GroupLabel {
            group: self.spec.name.clone(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    async fn run(self, members: u32) -> anyhow::Result<(String, GroupSummary)> {
        let tasks: Vec<_> = (0..members)
            .map(|m| tokio::spawn(self.clone().member(m)))
            .collect();
        let mut left = None;
        for t in tasks {
            if let Ended::Left { delete_at_ms } = t.await?? {
                left = delete_at_ms;
            }
        }
        let offsets_deleted = match left {
            Some(at) => {
                // Offsets stay while the lag grows, then go, as offset expiry does.
                let wait = Duration::from_millis(at.saturating_sub(self.elapsed_ms()));
                !self.stop.sleep(wait).await && self.delete_offsets().await?
            }
            None => false,
        };
        let replays = self.replays.lock().expect("replay counter").clone();
        Ok((
            self.spec.name.clone(),
            GroupSummary {
                behaviour: self.spec.to_string(),
                consumed: replays.records(),
                replayed: replays.replayed(),
                commits: self.counts.commits.load(Ordering::Relaxed),
                rewinds: self.counts.rewinds.load(Ordering::Relaxed),
                crashes: self.counts.crashes.load(Ordering::Relaxed),
                offsets_deleted,
            },
        ))
    }

    /// A member: runs a consumer while the behaviour says so, comes back after crashes.
    async fn member(self, index: u32) -> anyhow::Result<Ended> {
        loop {
            match self.spec.behaviour.phase_at(self.elapsed_ms()) {
                Phase::Down { until_ms } => {
                    let wait = Duration::from_millis(until_ms.saturating_sub(self.elapsed_ms()));
                    if self.stop.sleep(wait).await {
                        return Ok(Ended::Stopped);
                    }
                    continue;
                }
                Phase::Left { delete_at_ms } => return Ok(Ended::Left { delete_at_ms }),
                Phase::Consuming { .. } | Phase::Frozen => {}
            }
            match self.consume(index).await? {
                Ended::Crashed { until_ms } => {
                    self.counts.crashes.fetch_add(1, Ordering::Relaxed);
                    self.metrics.crashes.get_or_create(&self.label()).inc();
                    tracing::info!(group = %self.spec.name, member = index, back_in_ms = until_ms.saturating_sub(self.elapsed_ms()), "member crashed");
                }
                ended => return Ok(ended),
            }
        }
    }

    fn consumer(&self, index: u32) -> anyhow::Result<StreamConsumer> {
        let mut config = self.kafka.client_config()?;
        // A crashed member whose leave did not reach the broker holds up the group's next
        // rebalance until its session times out: keep that short unless -X says otherwise.
        if config.get("session.timeout.ms").is_none() {
            config.set("session.timeout.ms", "6000");
            config.set("heartbeat.interval.ms", "1000");
        }
        let consumer: StreamConsumer = config
            .set("group.id", &self.spec.name)
            .set("client.id", format!("{}-{index}", self.spec.name))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // Read a burst as soon as it lands, so a healthy group commits the end quickly.
            .set("fetch.wait.max.ms", "10")
            .create()
            .with_context(|| format!("cannot make a Kafka consumer for {}", self.kafka.kafka))?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .with_context(|| format!("cannot subscribe to {}", topics.join(", ")))?;
        Ok(consumer)
    }

    /// Runs one consumer until the behaviour makes it leave or crash, or the run stops.
    async fn consume(&self, index: u32) -> anyhow::Result<Ended> {
        let consumer = self.consumer(index)?;
        let label = self.label();
        let mut positions: HashMap<Key, i64> = HashMap::new();
        let mut held: HashMap<Key, std::collections::VecDeque<(i64, Option<TraceHeader>)>> =
            HashMap::new();
        let mut paused: HashSet<Key> = HashSet::new();
        let mut allowance: Allowance<Key> = Allowance::new();
        let mut dirty = false;
        let mut commit_at: Option<Instant> = None;
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let process = |key: &Key, offset: i64, trace: Option<TraceHeader>| {
            if let Some(t) = trace {
                let stream = format!("{}/{}", key.0, key.1);
                if self
                    .replays
                    .lock()
                    .expect("replay counter")
                    .record(&t.origin, &stream, t.seq)
                {
                    self.metrics.replayed.get_or_create(&label).inc();
                }
            } else {
                self.replays
                    .lock()
                    .expect("replay counter")
                    .record("", "untraced", u64::MAX);
            }
            self.metrics.consumed.get_or_create(&label).inc();
            offset + 1
        };
        let commit = |positions: &HashMap<Key, i64>| {
            if positions.is_empty() {
                return;
            }
            let mut list = TopicPartitionList::new();
            for ((topic, partition), offset) in positions {
                let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*offset));
            }
            match consumer.commit(&list, CommitMode::Async) {
                Ok(()) => {
                    self.counts.commits.fetch_add(1, Ordering::Relaxed);
                    self.metrics.commits.get_or_create(&label).inc();
                }
                Err(e) => tracing::warn!(group = %self.spec.name, "commit failed ({e})"),
            }
        };
        let pause = |key: &Key, resume: bool| {
            let mut list = TopicPartitionList::new();
            list.add_partition(&key.0, key.1);
            let result = if resume {
                consumer.resume(&list)
            } else {
                consumer.pause(&list)
            };
            if let Err(e) = result {
                tracing::debug!(group = %self.spec.name, "pause/resume {key:?}: {e}");
            }
        };
        loop {
            let debounce = async {
                match commit_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = consumer.recv() => {
                    let message = match message {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(group = %self.spec.name, "consume error ({e})");
                            continue;
                        }
                    };
                    let key: Key = (message.topic().to_owned(), message.partition());
                    let trace = message.headers().and_then(|h| {
                        TraceHeader::decode(h.iter().map(|h| (h.key, h.value.unwrap_or_default())))
                            .ok()
                            .flatten()
                    });
                    let offset = message.offset();
                    drop(message);
                    match self.spec.behaviour.phase_at(self.elapsed_ms()) {
                        Phase::Consuming { speed: None } => {
                            let next = process(&key, offset, trace);
                            positions.insert(key, next);
                            dirty = true;
                            if matches!(self.spec.behaviour, Behaviour::Crashing { .. }) {
                                // Once a second, as auto-commit would: a crash then loses up
                                // to a second of work, which is read again after it.
                                commit_at.get_or_insert(Instant::now() + CRASHING_COMMIT_EVERY);
                            } else {
                                // Commit once the burst is read: 5 ms after its last record.
                                commit_at = Some(Instant::now() + Duration::from_millis(5));
                            }
                        }
                        Phase::Consuming { speed: Some(_) } => {
                            let queue = held.entry(key.clone()).or_default();
                            if queue.is_empty() && allowance.take(&key) {
                                positions.insert(key.clone(), process(&key, offset, trace));
                                dirty = true;
                            } else {
                                queue.push_back((offset, trace));
                                if paused.insert(key.clone()) {
                                    pause(&key, false);
                                }
                            }
                        }
                        _ => {
                            // Frozen (or about to leave or crash): read nothing more.
                            if paused.insert(key.clone()) {
                                pause(&key, false);
                            }
                        }
                    }
                }
                () = debounce => {
                    commit_at = None;
                    if dirty {
                        commit(&positions);
                        dirty = false;
                    }
                }
                _ = interval.tick() => {
                    // Keep only what belongs to the current assignment.
                    let assigned: HashSet<Key> = consumer
                        .assignment()
                        .map(|l| {
                            l.elements()
                                .iter()
                                .map(|e| (e.topic().to_owned(), e.partition()))
                                .collect()
                        })
                        .unwrap_or_default();
                    positions.retain(|k, _| assigned.contains(k));
                    held.retain(|k, _| assigned.contains(k));
                    paused.retain(|k| assigned.contains(k));
                    let elapsed = self.elapsed_ms();
                    match self.spec.behaviour.phase_at(elapsed) {
                        Phase::Consuming { speed } => {
                            if let Some(speed) = speed {
                                for key in &assigned {
                                    allowance.produced(key, self.produced.get(&key.0, key.1), speed);
                                    let queue = held.entry(key.clone()).or_default();
                                    while !queue.is_empty() && allowance.take(key) {
                                        let (offset, trace) = queue.pop_front().expect("not empty");
                                        positions.insert(key.clone(), process(key, offset, trace));
                                        dirty = true;
                                    }
                                    if queue.is_empty() && paused.remove(key) {
                                        pause(key, true);
                                    }
                                }
                            }
                            if let Behaviour::Rewinding { by, .. } = self.spec.behaviour {
                                let due = self.spec.behaviour.rewinds_due(elapsed);
                                if self.counts.rewinds_done.load(Ordering::Relaxed) < due
                                    && !positions.is_empty()
                                {
                                    self.rewind(&consumer, &mut positions, &mut held, &mut allowance, &mut paused, by);
                                    self.counts.rewinds_done.store(due, Ordering::Relaxed);
                                    self.counts.rewinds.fetch_add(1, Ordering::Relaxed);
                                    self.metrics.rewinds.get_or_create(&label).inc();
                                    dirty = true;
                                }
                            }
                            if dirty {
                                commit(&positions);
                                dirty = false;
                            }
                        }
                        Phase::Frozen => {
                            for key in &assigned {
                                if paused.insert(key.clone()) {
                                    pause(key, false);
                                }
                            }
                            held.clear();
                            // The same offsets, again and again, while the lag grows.
                            commit(&positions);
                        }
                        Phase::Left { delete_at_ms } => {
                            commit(&positions);
                            tracing::info!(group = %self.spec.name, member = index, "leaving the group");
                            close_aside(consumer);
                            return Ok(Ended::Left { delete_at_ms });
                        }
                        Phase::Down { until_ms } => {
                            // A crash: the work since the last commit is lost and redone later.
                            close_aside(consumer);
                            return Ok(Ended::Crashed { until_ms });
                        }
                    }
                }
                () = self.stop.stopped() => {
                    if dirty {
                        let mut list = TopicPartitionList::new();
                        for ((topic, partition), offset) in &positions {
                            let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*offset));
                        }
                        if !positions.is_empty() && let Err(e) = consumer.commit(&list, CommitMode::Sync) {
                            tracing::warn!(group = %self.spec.name, "last commit failed ({e})");
                        }
                    }
                    return Ok(Ended::Stopped);
                }
            }
        }
    }

    /// Seeks every partition with a known position back by `by` records and forgets what was
    /// held; the next commit writes the lower offsets.
    #[allow(clippy::too_many_arguments)]
    fn rewind(
        &self,
        consumer: &StreamConsumer,
        positions: &mut HashMap<Key, i64>,
        held: &mut HashMap<Key, std::collections::VecDeque<(i64, Option<TraceHeader>)>>,
        allowance: &mut Allowance<Key>,
        paused: &mut HashSet<Key>,
        by: u64,
    ) {
        let mut list = TopicPartitionList::new();
        for (key, position) in positions.iter_mut() {
            *position = rewind_target(*position, by, 0);
            let _ = list.add_partition_offset(&key.0, key.1, Offset::Offset(*position));
            held.remove(key);
            allowance.forget(key);
        }
        if let Err(e) = consumer.seek_partitions(list.clone(), Duration::from_secs(5)) {
            tracing::warn!(group = %self.spec.name, "seek back failed ({e})");
        }
        if let Err(e) = consumer.resume(&list) {
            tracing::debug!(group = %self.spec.name, "resume after seek: {e}");
        }
        for key in positions.keys() {
            paused.remove(key);
        }
        tracing::info!(group = %self.spec.name, by, "rewound");
    }

    /// Deletes the group's committed offsets once it is empty (as offset expiry would), so
    /// the watcher sees its commits vanish. Retries while the broker still holds members.
    async fn delete_offsets(&self) -> anyhow::Result<bool> {
        let admin: AdminClient<DefaultClientContext> =
            self.kafka.client_config()?.create().with_context(|| {
                format!("cannot make a Kafka admin client for {}", self.kafka.kafka)
            })?;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
            match admin.delete_groups(&[&self.spec.name], &options).await {
                Ok(results) if results.iter().all(Result::is_ok) => {
                    tracing::info!(group = %self.spec.name, "deleted the group's offsets");
                    return Ok(true);
                }
                Ok(results) => {
                    tracing::info!(group = %self.spec.name, "delete group answered {results:?}; retrying")
                }
                Err(e) => {
                    tracing::warn!(group = %self.spec.name, "cannot delete the group ({e}); retrying")
                }
            }
            if self.stop.sleep(backoff.next_delay()).await {
                return Ok(false);
            }
        }
    }
}
