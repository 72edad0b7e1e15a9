//! `pipescope process machines`: `machine.data` → `machine.out`, merging a machine's sensors
//! in event-time tumbling windows into one record per machine per window (count, min, max,
//! mean per sensor). Readings whose window has closed (past the allowed lateness) are counted
//! as late and dropped; readings stamped more than `--max-ahead` after this process's clock
//! are counted as from the future and dropped (they would move the watermark for good).
//!
//! Offsets: committed every `--commit-interval` up to the oldest record still in an open window,
//! after the windows emitted so far were confirmed by Kafka; a restart computes the open
//! windows again from there (at least once: a window may be emitted twice, never lost).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use pipescope_core::pipeline::lineage::{INPUTS, InputRef};
use pipescope_core::pipeline::partition::partition_for_key;
use pipescope_core::pipeline::trace::{Sequencer, TraceHeader};
use pipescope_core::pipeline::window::{Pushed, SensorReadingRef, Windower};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::{
    Accepted, GroupReader, KafkaArgs, PartArgs, Polled, Stop, ensure_topic, now_ms, traced_input,
};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub part: PartArgs,
    #[arg(long, default_value = "machine.data")]
    pub input: String,
    #[arg(long, default_value = "machine.out")]
    pub output: String,
    #[arg(long, default_value = "pipescope-process-machines")]
    pub group: String,
    /// Window length (event time).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// How long after its end a window still takes readings (event time).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub allowed_lateness: Duration,
    /// Readings stamped further than this ahead of the local clock are dropped as from the
    /// future (a producer's broken clock would otherwise make every later reading late).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub max_ahead: Duration,
    /// How often offsets are committed.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub commit_interval: Duration,
    /// Origin id in the trace headers of machine.out (default: process-machines-<start ms>).
    #[arg(long)]
    pub origin: Option<String>,
}

#[derive(Debug, Default)]
struct GroupContext {
    topic: String,
    revoked: Arc<Mutex<Vec<i32>>>,
    assigned: Arc<Mutex<Vec<i32>>>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let list = match rebalance {
            Rebalance::Revoke(_) => &self.revoked,
            Rebalance::Assign(_) => &self.assigned,
            Rebalance::Error(_) => return,
        };
        if let Rebalance::Revoke(tpl) | Rebalance::Assign(tpl) = rebalance {
            list.lock().expect("partitions lock").extend(
                tpl.elements_for_topic(&self.topic)
                    .iter()
                    .map(|e| e.partition()),
            );
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Metrics {
    records: Counter,
    late: Counter,
    future: Counter,
    invalid: Counter,
    windows: Counter,
    open: Gauge,
}

impl Metrics {
    fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register(
            "pipescope_process_machines_records",
            "Readings taken into a window",
            self.records.clone(),
        );
        r.register(
            "pipescope_process_machines_late_records",
            "Readings dropped because their window had closed",
            self.late.clone(),
        );
        r.register(
            "pipescope_process_machines_future_records",
            "Readings dropped because they were stamped more than --max-ahead after the clock",
            self.future.clone(),
        );
        r.register(
            "pipescope_process_machines_invalid_records",
            "Records that are not sensor readings",
            self.invalid.clone(),
        );
        r.register(
            "pipescope_process_machines_windows_emitted",
            "Machine windows written to the output topic",
            self.windows.clone(),
        );
        r.register(
            "pipescope_process_machines_open_windows",
            "Machine windows still open",
            self.open.clone(),
        );
    }
}

pub async fn run(args: Args, stop: Stop) -> anyhow::Result<()> {
    anyhow::ensure!(!args.window.is_zero(), "--window must be longer than 0");
    let origin = args
        .origin
        .clone()
        .unwrap_or_else(|| format!("process-machines-{}", now_ms()));
    let m = Metrics::default();
    let health = args
        .part
        .serve_metrics("process machines", |r| m.register(r), &stop)
        .await?;
    health.watch_kafka(&args.kafka, Some(&args.input), &stop)?;
    if ensure_topic(&args.kafka, &args.input, 3, false, &stop)
        .await?
        .is_none()
    {
        return Ok(());
    }
    let Some(out_partitions) = ensure_topic(&args.kafka, &args.output, 3, false, &stop).await?
    else {
        return Ok(());
    };
    let revoked = Arc::new(Mutex::new(Vec::new()));
    let assigned = Arc::new(Mutex::new(Vec::new()));
    let consumer = args.kafka.group_consumer(
        &args.group,
        &[&args.input],
        GroupContext {
            topic: args.input.clone(),
            revoked: revoked.clone(),
            assigned: assigned.clone(),
        },
    )?;
    let producer: FutureProducer = args
        .kafka
        .client_config()?
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .context("cannot make the output producer")?;

    let mut windows = Windower::new(
        args.window.as_millis() as u64,
        args.allowed_lateness.as_millis() as u64,
    )
    .with_max_ahead(u64::try_from(args.max_ahead.as_millis()).unwrap_or(u64::MAX));
    let mut sequencer = Sequencer::new();
    let mut pending: Vec<DeliveryFuture> = Vec::new();
    let mut commit = tokio::time::interval(args.commit_interval);
    let mut reader = GroupReader::new(&consumer, &args.input);
    loop {
        let read = match reader
            .next(&mut commit, &stop, || {
                m.open.set(windows.open_windows() as i64);
            })
            .await
        {
            Polled::Read(read) => read,
            Polled::Tick => {
                // A window Kafka did not take cannot be emitted again by this process:
                // stop, so that a restart computes it again from the committed offsets.
                commit_safe(&args.input, &consumer, &windows, &mut pending, &health).await?;
                continue;
            }
            Polled::Stopped => break,
        };
        for p in revoked.lock().expect("revoked lock").drain(..) {
            windows.drop_partition(p);
        }
        // Assigned partitions hold the watermark back until they are read (or idle).
        for p in assigned.lock().expect("assigned lock").drain(..) {
            windows.assign(p);
        }
        let message = match reader.accept(read, &stop).await {
            Accepted::Record(message) => message,
            Accepted::Again => continue,
            Accepted::Stopped => break,
        };
        // Names borrowed from the payload: a window copies them only when it opens.
        let reading: Option<SensorReadingRef<'_>> = message
            .payload()
            .and_then(|b| serde_json::from_slice(b).ok());
        let Some(reading) = reading else {
            m.invalid.inc();
            continue;
        };
        let input = traced_input(&message);
        let input_ref = input.as_ref().map(|(trace, stream)| InputRef {
            origin: &trace.origin,
            stream,
            seq: trace.seq,
            ts: trace.ts,
        });
        match windows.push_traced(&reading, message.partition(), message.offset(), input_ref) {
            Pushed::Accepted => m.records.inc(),
            Pushed::Late => m.late.inc(),
            Pushed::Future => m.future.inc(),
        };
        for window in windows.drain_closed() {
            let key = format!("{}/{}", window.line, window.machine);
            let partition = partition_for_key(key.as_bytes(), out_partitions);
            let trace = TraceHeader {
                origin: origin.clone(),
                seq: sequencer.next(partition),
                ts: now_ms(),
            };
            let mut headers = OwnedHeaders::new();
            for (name, value) in trace.encode() {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(value.as_bytes()),
                });
            }
            if !window.inputs.is_empty() {
                headers = headers.insert(Header {
                    key: INPUTS,
                    value: Some(window.inputs.encode().as_bytes()),
                });
            }
            let payload = serde_json::to_vec(&window)?;
            let mut record = FutureRecord::to(&args.output)
                .key(&key)
                .payload(&payload)
                .partition(partition)
                .headers(headers);
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((e, r)) => {
                        tracing::debug!("output queue full ({e}); waiting");
                        record = r;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            m.windows.inc();
        }
    }
    drop(reader);
    tracing::info!("process machines stopping: committing what is safe");
    commit_safe(&args.input, &consumer, &windows, &mut pending, &health).await?;
    consumer.unsubscribe();
    tracing::info!(late = windows.late(), "process machines stopped");
    Ok(())
}

/// Waits for the emitted windows' delivery reports, then commits the safe offsets. An error
/// means a window was lost in Kafka; a failed commit is only logged (the next one catches up).
async fn commit_safe(
    topic: &str,
    consumer: &StreamConsumer<GroupContext>,
    windows: &Windower,
    pending: &mut Vec<DeliveryFuture>,
    health: &super::Health,
) -> anyhow::Result<()> {
    let results = futures::future::join_all(pending.drain(..)).await;
    for r in results {
        match r {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => {
                anyhow::bail!("a window was not delivered ({e}); offsets are not committed")
            }
            Err(_) => anyhow::bail!("the producer went away; offsets are not committed"),
        }
    }
    let safe: HashMap<i32, i64> = windows.safe_offsets();
    if safe.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (p, o) in safe {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))?;
    }
    let committed = tokio::task::block_in_place(|| consumer.commit(&tpl, CommitMode::Sync));
    health.committed(&committed, topic);
    if let Err(e) = committed {
        tracing::warn!("cannot commit offsets of {topic} ({e}); trying again later");
    }
    Ok(())
}
