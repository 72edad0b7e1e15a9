//! `pipescope process passthrough`: copies one topic to another in a consumer group, at least
//! once. Each record keeps its key, payload and headers (the trace headers carried over, so the
//! output can be checked against the input record by record); a keyed record goes to the
//! output partition of its key, an unkeyed one to its input partition's number (modulo the
//! output's partitions).
//!
//! Offsets: every `--commit-interval` the part waits until Kafka acknowledged every record it
//! copied, then commits the offsets after them. A crash re-reads from the last commit: records
//! may be copied twice, never lost. A record Kafka refuses stops the part without committing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use pipescope_core::pipeline::partition::partition_for_key;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::{Accepted, GroupReader, KafkaArgs, PartArgs, Polled, Stop, ensure_topic};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub part: PartArgs,
    /// The topic to copy.
    #[arg(long, default_value = "visits")]
    pub input: String,
    /// The topic to copy to (created with the input's partition count when missing).
    #[arg(long, default_value = "visits.out")]
    pub output: String,
    /// Consumer group; start more instances with the same group to share the partitions.
    #[arg(long, default_value = "pipescope-process-passthrough")]
    pub group: String,
    /// How often offsets are committed (after what was copied is acknowledged).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub commit_interval: Duration,
}

/// Partitions revoked from this instance: their offsets are no longer this instance's to commit.
#[derive(Debug, Default)]
struct GroupContext {
    topic: String,
    revoked: Arc<Mutex<Vec<i32>>>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let partitions: Vec<i32> = tpl
                    .elements_for_topic(&self.topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                tracing::info!(?partitions, "partitions revoked");
                self.revoked
                    .lock()
                    .expect("revoked lock")
                    .extend(partitions);
            }
            Rebalance::Assign(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(?partitions, "partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!("rebalance failed ({e})"),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Metrics {
    records: Counter,
    delivered: Counter,
    commits: Counter,
    pending: Gauge,
}

impl Metrics {
    fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register(
            "pipescope_process_passthrough_records",
            "Input records copied to the output topic (queued)",
            self.records.clone(),
        );
        r.register(
            "pipescope_process_passthrough_delivered_records",
            "Copied records Kafka acknowledged",
            self.delivered.clone(),
        );
        r.register(
            "pipescope_process_passthrough_commits",
            "Offset commits, each after every record before it was acknowledged",
            self.commits.clone(),
        );
        r.register(
            "pipescope_process_passthrough_pending_records",
            "Copied records not acknowledged yet at the last commit",
            self.pending.clone(),
        );
    }
}

/// The output partition of a record: its key's, else its input partition's number.
fn output_partition(key: Option<&[u8]>, input_partition: i32, output_partitions: i32) -> i32 {
    match key {
        Some(key) => partition_for_key(key, output_partitions),
        None => input_partition.rem_euclid(output_partitions),
    }
}

pub async fn run(args: Args, stop: Stop) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.input != args.output,
        "--input and --output are both {}: a passthrough onto its own input would copy \
         forever — give another --output",
        args.input
    );
    let m = Metrics::default();
    let health = args
        .part
        .serve_metrics("process passthrough", |r| m.register(r), &stop)
        .await?;
    health.watch_kafka(&args.kafka, Some(&args.input), &stop)?;
    let Some(in_partitions) = ensure_topic(&args.kafka, &args.input, 3, false, &stop).await? else {
        return Ok(());
    };
    let Some(out_partitions) =
        ensure_topic(&args.kafka, &args.output, in_partitions, false, &stop).await?
    else {
        return Ok(());
    };
    let revoked = Arc::new(Mutex::new(Vec::new()));
    let consumer = args.kafka.group_consumer(
        &args.group,
        &[&args.input],
        GroupContext {
            topic: args.input.clone(),
            revoked: revoked.clone(),
        },
    )?;
    let mut producer_config = args.kafka.client_config()?;
    producer_config.set("acks", "all");
    // A `-X linger.ms` wins (tests hold records back with it).
    if producer_config.get("linger.ms").is_none() {
        producer_config.set("linger.ms", "5");
    }
    let producer: FutureProducer = producer_config
        .create()
        .with_context(|| format!("cannot make a Kafka producer for {}", args.kafka.kafka))?;

    // Per input partition: the offset after the last record copied.
    let mut next_offsets: HashMap<i32, i64> = HashMap::new();
    let mut pending: Vec<DeliveryFuture> = Vec::new();
    let mut commit = tokio::time::interval(args.commit_interval);
    commit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reader = GroupReader::new(&consumer, &args.input);
    loop {
        let read = match reader.next(&mut commit, &stop, || {}).await {
            Polled::Read(read) => read,
            Polled::Tick => {
                drop_revoked(&revoked, &mut next_offsets);
                commit_copied(
                    &args,
                    &consumer,
                    &m,
                    &mut next_offsets,
                    &mut pending,
                    &health,
                )
                .await?;
                continue;
            }
            Polled::Stopped => break,
        };
        drop_revoked(&revoked, &mut next_offsets);
        let message = match reader.accept(read, &stop).await {
            Accepted::Record(message) => message,
            Accepted::Again => continue,
            Accepted::Stopped => break,
        };
        let partition = output_partition(message.key(), message.partition(), out_partitions);
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&args.output).partition(partition);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        if let Some(headers) = message.headers() {
            record = record.headers(headers.detach());
        }
        if let Some(ts) = message.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        let copied = loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break true;
                }
                Err((e, r)) => {
                    tracing::debug!("output queue full ({e}); waiting");
                    record = r;
                    if stop.sleep(Duration::from_millis(5)).await {
                        break false;
                    }
                }
            }
        };
        if !copied {
            // Stopped before it was queued: its offset is not committed.
            break;
        }
        next_offsets.insert(message.partition(), message.offset() + 1);
        m.records.inc();
    }
    drop(reader);
    tracing::info!("process passthrough stopping: committing what was copied");
    drop_revoked(&revoked, &mut next_offsets);
    commit_copied(
        &args,
        &consumer,
        &m,
        &mut next_offsets,
        &mut pending,
        &health,
    )
    .await?;
    consumer.unsubscribe();
    tracing::info!("process passthrough stopped");
    Ok(())
}

fn drop_revoked(revoked: &Mutex<Vec<i32>>, next_offsets: &mut HashMap<i32, i64>) {
    for p in revoked.lock().expect("revoked lock").drain(..) {
        next_offsets.remove(&p);
    }
}

/// Waits until Kafka acknowledged every record copied so far, then commits the offsets after
/// them. A refused record is an error: nothing is committed past it.
async fn commit_copied(
    args: &Args,
    consumer: &StreamConsumer<GroupContext>,
    m: &Metrics,
    next_offsets: &mut HashMap<i32, i64>,
    pending: &mut Vec<DeliveryFuture>,
    health: &super::Health,
) -> anyhow::Result<()> {
    m.pending.set(pending.len() as i64);
    for delivery in futures::future::join_all(pending.drain(..)).await {
        match delivery {
            Ok(Ok(_)) => {
                m.delivered.inc();
            }
            Ok(Err((e, _))) => anyhow::bail!(
                "Kafka did not take a record copied to {} ({e}); offsets of {} are not \
                 committed past it — the records are copied again at the next start",
                args.output,
                args.input
            ),
            Err(_) => anyhow::bail!("the producer went away; offsets are not committed"),
        }
    }
    if next_offsets.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in next_offsets.iter() {
        tpl.add_partition_offset(&args.input, *partition, Offset::Offset(*offset))?;
    }
    let committed = tokio::task::block_in_place(|| consumer.commit(&tpl, CommitMode::Sync));
    health.committed(&committed, &args.input);
    match committed {
        Ok(()) => {
            m.commits.inc();
            next_offsets.clear();
        }
        // Kept: the next commit tries these offsets again.
        Err(e) => tracing::warn!(
            "cannot commit offsets of {} ({e}); trying again later",
            args.input
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_record_goes_to_its_keys_partition_and_an_unkeyed_one_keeps_its_number() {
        assert_eq!(
            output_partition(Some(b"user-00001"), 0, 6),
            partition_for_key(b"user-00001", 6)
        );
        assert_eq!(output_partition(None, 2, 3), 2);
        assert_eq!(output_partition(None, 4, 3), 1);
    }
}
