//! `pipescope process calls`: running call totals (number, total duration) overall and per
//! minute, in a consumer group on the calls topic.
//!
//! State: one record per input partition in a compacted changelog topic (key `topic/partition`,
//! written to the same partition number), holding the totals together with the offset of the
//! next input record. Every `--snapshot-interval` the changed states are written and, once Kafka
//! confirmed them, the same offsets are committed to the group. When an instance is assigned a
//! partition (start, restart, or another instance joining or leaving), it restores that
//! partition's state from the changelog and skips the records the state already holds: totals
//! stay exact, and a second instance takes its partitions with their state.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use pipescope_core::pipeline::calls::CallRecordRef;
use pipescope_core::pipeline::lineage::{INPUTS, Inputs};
use pipescope_core::pipeline::totals::{self, Applied, PartitionTotals};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::{Accepted, GroupReader, KafkaArgs, PartArgs, Polled, Stop, ensure_topic, traced_input};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub part: PartArgs,
    /// The calls topic.
    #[arg(long, default_value = "calls")]
    pub topic: String,
    /// Consumer group; start more instances with the same group to share the partitions.
    #[arg(long, default_value = "pipescope-process-calls")]
    pub group: String,
    /// Changelog topic (compacted; created with the calls topic's partition count).
    #[arg(long)]
    pub changelog: Option<String>,
    /// File that calls over 60 s are appended to (one JSON line each).
    #[arg(long, default_value = "long-calls.log")]
    pub long_calls_log: PathBuf,
    /// How often state is written to the changelog and offsets committed.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub snapshot_interval: Duration,
}

/// Records assignment changes for the processing loop, which restores (on assignment) or drops
/// (on revocation) partition state. Restoring happens at assignment, not at the first record:
/// a partition with no new records still shows its totals.
#[derive(Debug, Clone, Copy)]
enum Change {
    Assigned(i32),
    Revoked(i32),
}

#[derive(Debug, Default)]
struct GroupContext {
    topic: String,
    changes: Arc<Mutex<Vec<Change>>>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut changes = self.changes.lock().expect("changes lock");
        match rebalance {
            Rebalance::Assign(tpl) => {
                for e in tpl.elements_for_topic(&self.topic) {
                    changes.push(Change::Assigned(e.partition()));
                }
                tracing::info!(partitions = ?tpl.elements().iter().map(|e| e.partition()).collect::<Vec<_>>(), "partitions assigned");
            }
            Rebalance::Revoke(tpl) => {
                for e in tpl.elements_for_topic(&self.topic) {
                    changes.push(Change::Revoked(e.partition()));
                }
                tracing::info!(partitions = ?tpl.elements().iter().map(|e| e.partition()).collect::<Vec<_>>(), "partitions revoked");
            }
            Rebalance::Error(e) => tracing::warn!("rebalance failed ({e})"),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Metrics {
    calls: Gauge,
    duration_ms: Gauge,
    long_calls: Gauge,
    owned: Gauge,
    records: Counter,
    skipped: Counter,
    invalid: Counter,
    restores: Counter,
    snapshots: Counter,
}

impl Metrics {
    fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register(
            "pipescope_process_calls_calls",
            "Calls counted in the partitions this instance owns",
            self.calls.clone(),
        );
        r.register(
            "pipescope_process_calls_duration_milliseconds",
            "Total call duration in the partitions this instance owns",
            self.duration_ms.clone(),
        );
        r.register(
            "pipescope_process_calls_long_calls",
            "Calls over 60 s in the partitions this instance owns",
            self.long_calls.clone(),
        );
        r.register(
            "pipescope_process_calls_owned_partitions",
            "Input partitions whose state this instance holds",
            self.owned.clone(),
        );
        r.register(
            "pipescope_process_calls_records",
            "Input records applied",
            self.records.clone(),
        );
        r.register(
            "pipescope_process_calls_skipped_records",
            "Input records skipped because the restored state already held them",
            self.skipped.clone(),
        );
        r.register(
            "pipescope_process_calls_invalid_records",
            "Input records that are not calls, or whose duration is not 0 s to 7 days",
            self.invalid.clone(),
        );
        r.register(
            "pipescope_process_calls_restores",
            "Partition states restored from the changelog",
            self.restores.clone(),
        );
        r.register(
            "pipescope_process_calls_snapshots",
            "State records written to the changelog",
            self.snapshots.clone(),
        );
    }
}

struct Partition {
    state: PartitionTotals,
    dirty: bool,
    /// The traced calls counted since the state was last written: its changelog record names
    /// them in its `pipescope-inputs` header (docs/trace-headers.md).
    inputs: Inputs,
}

pub async fn run(args: Args, stop: Stop) -> anyhow::Result<()> {
    let changelog = args
        .changelog
        .clone()
        .unwrap_or_else(|| format!("{}-changelog", args.group));
    let m = Metrics::default();
    let health = args
        .part
        .serve_metrics("process calls", |r| m.register(r), &stop)
        .await?;
    health.watch_kafka(&args.kafka, Some(&args.topic), &stop)?;
    let Some(partitions) = ensure_topic(&args.kafka, &args.topic, 3, false, &stop).await? else {
        return Ok(());
    };
    if ensure_topic(&args.kafka, &changelog, partitions, true, &stop)
        .await?
        .is_none()
    {
        return Ok(());
    }
    // Buffered (a long call is one record in seven at a 30 s mean); flushed before every
    // state snapshot, so a saved state never counts a call whose line was not written.
    let mut long_log = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.long_calls_log)
            .with_context(|| {
                format!(
                    "cannot open the long-calls log {}",
                    args.long_calls_log.display()
                )
            })?,
    );

    let changes = Arc::new(Mutex::new(Vec::new()));
    let consumer = args.kafka.group_consumer(
        &args.group,
        &[&args.topic],
        GroupContext {
            topic: args.topic.clone(),
            changes: changes.clone(),
        },
    )?;
    let producer: FutureProducer = args
        .kafka
        .client_config()?
        .set("acks", "all")
        .create()
        .context("cannot make the changelog producer")?;
    let restorer: BaseConsumer = args
        .kafka
        .client_config()?
        .set("group.id", format!("{}-restore", args.group))
        .set("enable.auto.commit", "false")
        .create()
        .context("cannot make the changelog reader")?;

    let mut owned: HashMap<i32, Partition> = HashMap::new();
    let mut snapshot = tokio::time::interval(args.snapshot_interval);
    snapshot.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let log = Changelog {
        topic: &args.topic,
        name: &changelog,
        producer: &producer,
        reader: &restorer,
    };
    let mut reader = GroupReader::new(&consumer, &args.topic);
    loop {
        let read = match reader
            .next(&mut snapshot, &stop, || update_gauges(&owned, &m))
            .await
        {
            Polled::Read(read) => read,
            Polled::Tick => {
                apply_changes(&changes, &mut owned, &m, log).await?;
                // The log lines of the records a state holds are written before it.
                long_log.flush().with_context(|| {
                    format!("cannot append to {}", args.long_calls_log.display())
                })?;
                match save(log, &consumer, &mut owned, &m).await {
                    Ok(()) => health.passing("commit"),
                    Err(e) => {
                        health.failing("commit", format!("cannot save state ({e:#})"));
                        tracing::warn!(
                            "cannot save state ({e:#}); trying again at the next snapshot"
                        );
                    }
                }
                continue;
            }
            Polled::Stopped => break,
        };
        apply_changes(&changes, &mut owned, &m, log).await?;
        let message = match reader.accept(read, &stop).await {
            Accepted::Record(message) => message,
            Accepted::Again => continue,
            Accepted::Stopped => break,
        };
        let partition = message.partition();
        let offset = message.offset();
        own(&mut owned, partition, &m, log).await?;
        let p = owned.get_mut(&partition).expect("owned now");
        match step(&mut p.state, offset, message.payload()) {
            Step::Skipped => {
                m.skipped.inc();
            }
            Step::Counted { long } => {
                m.records.inc();
                p.dirty = true;
                if let Some((trace, stream)) = traced_input(&message) {
                    p.inputs.add(&trace.origin, &stream, trace.seq, trace.ts);
                }
                if let Some(line) = long {
                    long_log.write_all(line.as_bytes()).with_context(|| {
                        format!("cannot append to {}", args.long_calls_log.display())
                    })?;
                }
            }
            Step::Invalid => {
                m.invalid.inc();
                p.dirty = true;
            }
            Step::Ignored => {}
        }
    }
    drop(reader);
    tracing::info!("process calls stopping: saving state");
    apply_changes(&changes, &mut owned, &m, log).await?;
    long_log.flush()?;
    save(log, &consumer, &mut owned, &m).await?;
    consumer.unsubscribe();
    tracing::info!("process calls stopped");
    Ok(())
}

/// The changelog topic `name` that holds the states of `topic`'s partitions: written by
/// `producer`, read back by `reader`.
#[derive(Clone, Copy)]
struct Changelog<'a> {
    topic: &'a str,
    name: &'a str,
    producer: &'a FutureProducer,
    reader: &'a BaseConsumer,
}

/// Applies assignment changes in order: revoked partitions are dropped (another instance may
/// own them now; what was not saved is done again there), assigned ones restored.
async fn apply_changes(
    changes: &Mutex<Vec<Change>>,
    owned: &mut HashMap<i32, Partition>,
    m: &Metrics,
    log: Changelog<'_>,
) -> anyhow::Result<()> {
    let drained: Vec<Change> = changes.lock().expect("changes lock").drain(..).collect();
    if drained.is_empty() {
        // Runs for every record: nothing to do is the common case.
        return Ok(());
    }
    for change in drained {
        match change {
            Change::Revoked(p) => {
                owned.remove(&p);
            }
            Change::Assigned(p) => own(owned, p, m, log).await?,
        }
    }
    update_gauges(owned, m);
    Ok(())
}

/// Restores `partition`'s state from the changelog unless this instance holds it already.
async fn own(
    owned: &mut HashMap<i32, Partition>,
    partition: i32,
    m: &Metrics,
    log: Changelog<'_>,
) -> anyhow::Result<()> {
    if let std::collections::hash_map::Entry::Vacant(slot) = owned.entry(partition) {
        let state = restore(log.reader, log.name, log.topic, partition).await?;
        m.restores.inc();
        tracing::info!(
            partition,
            next_offset = state.next_offset,
            calls = state.overall.calls,
            "restored partition state"
        );
        slot.insert(Partition {
            state,
            dirty: false,
            inputs: Inputs::default(),
        });
    }
    Ok(())
}

/// What one input record did to its partition's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Already part of the restored state.
    Skipped,
    /// Counted; for a call over 60 s, its line for the long-calls log.
    Counted { long: Option<String> },
    /// Not a call: counted nowhere, the position moves past it.
    Invalid,
    /// Not a call, and behind the position already.
    Ignored,
}

/// The per-record work of the processor: read the call and apply it to its partition's totals.
/// The text fields are borrowed from the payload, not copied (this runs for every record).
pub fn step(state: &mut PartitionTotals, offset: i64, payload: Option<&[u8]>) -> Step {
    let call: Option<CallRecordRef<'_>> = payload.and_then(|b| serde_json::from_slice(b).ok());
    match call {
        Some(call) => match state.apply_call(offset, call.start, call.duration_s) {
            Applied::AlreadyCounted => Step::Skipped,
            Applied::Refused => Step::Invalid,
            Applied::Counted { long } => Step::Counted {
                long: long.then(|| {
                    let mut line = serde_json::to_string(&call).expect("a call serialises");
                    line.push('\n');
                    line
                }),
            },
        },
        None if offset >= state.next_offset => {
            state.skip(offset);
            Step::Invalid
        }
        None => Step::Ignored,
    }
}

/// Only the overall totals: summing the per-minute maps here would cost more than the record.
fn update_gauges(owned: &HashMap<i32, Partition>, m: &Metrics) {
    let mut overall = totals::Totals::default();
    for p in owned.values() {
        overall.add(&p.state.overall);
    }
    m.calls.set(overall.calls as i64);
    m.duration_ms.set(overall.duration_ms as i64);
    m.long_calls.set(overall.long_calls as i64);
    m.owned.set(owned.len() as i64);
}

/// Writes changed states to the changelog, then commits their offsets.
async fn save(
    log: Changelog<'_>,
    consumer: &StreamConsumer<GroupContext>,
    owned: &mut HashMap<i32, Partition>,
    m: &Metrics,
) -> anyhow::Result<()> {
    let Changelog {
        topic,
        name: changelog,
        producer,
        ..
    } = log;
    let mut offsets = TopicPartitionList::new();
    for (partition, p) in owned.iter_mut().filter(|(_, p)| p.dirty) {
        let key = totals::changelog_key(topic, *partition);
        let value = serde_json::to_vec(&p.state)?;
        let inputs = (!p.inputs.is_empty()).then(|| p.inputs.encode());
        let headers = inputs.as_ref().map(|inputs| {
            OwnedHeaders::new().insert(Header {
                key: INPUTS,
                value: Some(inputs.as_bytes()),
            })
        });
        let mut record = FutureRecord::to(changelog)
            .key(&key)
            .payload(&value)
            .partition(*partition);
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| {
                anyhow::anyhow!("cannot write the state of {key} to {changelog} ({e})")
            })?;
        m.snapshots.inc();
        p.dirty = false;
        p.inputs = Inputs::default();
        offsets.add_partition_offset(topic, *partition, Offset::Offset(p.state.next_offset))?;
    }
    if offsets.count() > 0 {
        tokio::task::block_in_place(|| consumer.commit(&offsets, CommitMode::Sync))
            .with_context(|| format!("cannot commit offsets of {topic}"))?;
    }
    Ok(())
}

/// The last state written for `partition`, or an empty one.
async fn restore(
    reader: &BaseConsumer,
    changelog: &str,
    topic: &str,
    partition: i32,
) -> anyhow::Result<PartitionTotals> {
    tokio::task::block_in_place(|| {
        let timeout = Duration::from_secs(10);
        let (_, high) = reader
            .fetch_watermarks(changelog, partition, timeout)
            .with_context(|| format!("cannot read the end of {changelog} partition {partition}"))?;
        if high <= 0 {
            return Ok(PartitionTotals::default());
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(changelog, partition, Offset::Offset(high - 1))?;
        reader.assign(&tpl)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let key = totals::changelog_key(topic, partition);
        while std::time::Instant::now() < deadline {
            let Some(message) = reader.poll(Duration::from_millis(200)) else {
                continue;
            };
            let message = message.with_context(|| format!("cannot read {changelog}"))?;
            if message.offset() == high - 1 {
                anyhow::ensure!(
                    message.key() == Some(key.as_bytes()),
                    "{changelog} partition {partition} ends with a record for another key; is the changelog shared with another topic?"
                );
                let state = serde_json::from_slice(message.payload().unwrap_or_default())
                    .with_context(|| {
                        format!("the state of {key} in {changelog} is not readable")
                    })?;
                return Ok(state);
            }
        }
        anyhow::bail!("the state of {key} in {changelog} could not be read within 30 s")
    })
}
