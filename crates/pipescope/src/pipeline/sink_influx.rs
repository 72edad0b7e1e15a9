//! `pipescope sink influx`: Kafka topics → InfluxDB 1.x line protocol, in a consumer group.
//!
//! Records are mapped to lines by JSON paths (`--tag name=path`, `--field name=path`,
//! `--time path`), written in batches (`/write?precision=ms`), and the batch's offsets are
//! committed only after InfluxDB accepted the write. A write that failed for a passing reason
//! (a 5xx, 408, 429, a timeout, no connection) or for the sink's configuration (401, 403, 404)
//! is retried with backoff (never skipped) and its records counted as retried. A write refused
//! for good (another 4xx: a field type conflict, a bad line) is split in halves until the refused lines are found: those are counted as
//! rejected and logged, the rest written, and the offsets committed past them. InfluxDB keeps
//! one point per series and timestamp, so a write repeated (after a crash, or while
//! isolating refused lines) does not double the data.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use pipescope_core::backoff::Backoff;
use pipescope_core::line_protocol::isolate::{Isolate, is_permanent_refusal};
use pipescope_core::line_protocol::mapping::LineMapping;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rdkafka::consumer::{CommitMode, Consumer, DefaultConsumerContext, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaArgs, PartArgs, Stop};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub part: PartArgs,
    /// Kafka topics to read (repeatable).
    #[arg(long = "topic", required = true)]
    pub topics: Vec<String>,
    #[arg(long, default_value = "pipescope-sink-influx")]
    pub group: String,
    /// InfluxDB 1.x HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8086")]
    pub influx: String,
    /// Database to write to (must exist).
    #[arg(long)]
    pub database: String,
    /// Measurement name of every line.
    #[arg(long)]
    pub measurement: String,
    /// NAME=JSON.PATH (repeatable): a tag from the record.
    #[arg(long = "tag", value_name = "NAME=PATH")]
    pub tags: Vec<String>,
    /// NAME=JSON.PATH (repeatable, at least one): a field from the record.
    #[arg(long = "field", value_name = "NAME=PATH", required = true)]
    pub fields: Vec<String>,
    /// JSON path of the point's time in epoch ms (default: the Kafka record's timestamp).
    #[arg(long)]
    pub time: Option<String>,
    /// Lines per write at most.
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
    /// A batch is written at least this often.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub batch_interval: Duration,
}

fn pairs(specs: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    specs
        .iter()
        .map(|s| {
            let (name, path) = s.split_once('=').with_context(|| {
                format!("--{what} {s:?}: write it as NAME=JSON.PATH, e.g. machine=machine")
            })?;
            anyhow::ensure!(
                !name.is_empty() && !path.is_empty(),
                "--{what} {s:?}: name and path must not be empty"
            );
            Ok((name.to_owned(), path.to_owned()))
        })
        .collect()
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Debug, Clone, Default)]
struct Metrics {
    written: Counter,
    retried: Counter,
    invalid: Counter,
    rejected: Family<StatusLabel, Counter>,
    writes: Counter,
    failed_writes: Counter,
}

impl Metrics {
    fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register(
            "pipescope_sink_influx_records_written",
            "Records InfluxDB accepted",
            self.written.clone(),
        );
        r.register(
            "pipescope_sink_influx_records_retried",
            "Records sent again after a failed write (each retry counts the batch)",
            self.retried.clone(),
        );
        r.register(
            "pipescope_sink_influx_invalid_records",
            "Records the mapping gives no line for (skipped)",
            self.invalid.clone(),
        );
        r.register(
            "pipescope_sink_influx_rejected_lines",
            "Lines InfluxDB refused for good (400, 413, ...: not 401, 403, 404, 408, 429; skipped), by status",
            self.rejected.clone(),
        );
        r.register(
            "pipescope_sink_influx_writes",
            "Successful writes",
            self.writes.clone(),
        );
        r.register(
            "pipescope_sink_influx_failed_writes",
            "Failed writes (retried, or split to find the refused lines)",
            self.failed_writes.clone(),
        );
    }
}

#[derive(Default)]
struct Batch {
    lines: String,
    count: usize,
    /// Next offset per (topic, partition).
    offsets: HashMap<(String, i32), i64>,
}

pub async fn run(args: Args, stop: Stop) -> anyhow::Result<()> {
    let mapping = LineMapping {
        measurement: args.measurement.clone(),
        tags: pairs(&args.tags, "tag")?,
        fields: pairs(&args.fields, "field")?,
        time: args.time.clone(),
    };
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    let m = Metrics::default();
    let health = args
        .part
        .serve_metrics("sink influx", |r| m.register(r), &stop)
        .await?;
    health.watch_kafka(&args.kafka, args.topics.first().map(String::as_str), &stop)?;
    let topics: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    let consumer: StreamConsumer =
        args.kafka
            .group_consumer(&args.group, &topics, DefaultConsumerContext)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        // a refusal's status and text are read, to tell "for good" from "later"
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/write", args.influx.trim_end_matches('/'));
    let mut batch = Batch::default();
    let mut tick = tokio::time::interval(args.batch_interval);
    let mut backoff = Backoff::default();
    loop {
        let message = tokio::select! {
            () = stop.stopped() => break,
            _ = tick.tick() => None,
            message = consumer.recv() => Some(message),
        };
        if let Some(message) = message {
            match message {
                Ok(message) => {
                    backoff.reset();
                    let ts = message
                        .timestamp()
                        .to_millis()
                        .unwrap_or_else(|| super::now_ms() as i64);
                    match mapping.to_line(message.payload().unwrap_or_default(), ts) {
                        Ok(line) => {
                            batch.lines.push_str(&line);
                            batch.lines.push('\n');
                            batch.count += 1;
                        }
                        Err(e) => {
                            m.invalid.inc();
                            tracing::debug!(
                                topic = message.topic(),
                                offset = message.offset(),
                                "record skipped: {e}"
                            );
                        }
                    }
                    batch.offsets.insert(
                        (message.topic().to_owned(), message.partition()),
                        message.offset() + 1,
                    );
                    if batch.count < args.batch_size {
                        continue;
                    }
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!("cannot read from Kafka ({e}); retrying in {delay:?}");
                    if stop.sleep(delay).await {
                        break;
                    }
                    continue;
                }
            }
        }
        if !flush(
            Destination {
                agent: &agent,
                url: &url,
                database: &args.database,
            },
            &mut batch,
            &consumer,
            &m,
            &health,
            &stop,
        )
        .await?
        {
            break;
        }
    }
    tracing::info!("sink influx stopping: writing the last batch");
    // One attempt for what was read; when it fails the offsets stay uncommitted and the next
    // run reads these records again.
    if !batch.offsets.is_empty()
        && tokio::task::block_in_place(|| write(&agent, &url, &args.database, &batch.lines)).is_ok()
    {
        commit(&consumer, &batch, &health)?;
        m.written.inc_by(batch.count as u64);
    }
    consumer.unsubscribe();
    tracing::info!("sink influx stopped");
    Ok(())
}

/// Where the batches go: InfluxDB's `/write` and the database.
#[derive(Clone, Copy)]
struct Destination<'a> {
    agent: &'a ureq::Agent,
    url: &'a str,
    database: &'a str,
}

/// Writes the batch (retrying until it succeeds or a stop comes; lines refused for good are
/// isolated and counted), then commits its offsets. False when stopped before the batch was
/// through.
async fn flush(
    Destination {
        agent,
        url,
        database,
    }: Destination<'_>,
    batch: &mut Batch,
    consumer: &StreamConsumer,
    m: &Metrics,
    health: &super::Health,
    stop: &Stop,
) -> anyhow::Result<bool> {
    if batch.offsets.is_empty() {
        return Ok(true);
    }
    let lines: Vec<&str> = batch.lines.lines().collect();
    let mut isolate = Isolate::new(lines.len());
    let mut backoff = Backoff::default();
    while let Some(part) = isolate.next() {
        let count = part.len();
        let body = lines[part.clone()].join("\n");
        let result = tokio::task::block_in_place(|| write(agent, url, database, &body));
        match result {
            Ok(()) => {
                backoff.reset();
                health.passing("influxdb");
                isolate.written();
                m.writes.inc();
                m.written.inc_by(count as u64);
            }
            Err(WriteError::Refused { status, message }) => {
                m.failed_writes.inc();
                if let Some(line) = isolate.refused() {
                    m.rejected
                        .get_or_create(&StatusLabel {
                            status: status.to_string(),
                        })
                        .inc();
                    tracing::warn!(
                        "InfluxDB at {url} refused a line for good ({message}); skipped: {}",
                        shorten(lines[line.start], 300)
                    );
                }
            }
            Err(WriteError::Failed(e)) => {
                m.failed_writes.inc();
                health.failing("influxdb", format!("cannot write to {url} ({e})"));
                let delay = backoff.next_delay();
                tracing::warn!(
                    lines = count,
                    "cannot write to InfluxDB at {url} ({e}); retrying in {delay:?}"
                );
                if stop.sleep(delay).await {
                    return Ok(false);
                }
                m.retried.inc_by(count as u64);
            }
        }
    }
    commit(consumer, batch, health)?;
    *batch = Batch::default();
    Ok(true)
}

#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// Refused for good: the same lines would be refused again.
    #[error("{message}")]
    Refused { status: u16, message: String },
    /// Worth retrying: a 5xx, 408, 429, 401, 403, 404, a timeout, no connection.
    #[error("{0}")]
    Failed(String),
}

fn write(agent: &ureq::Agent, url: &str, database: &str, lines: &str) -> Result<(), WriteError> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut response = agent
        .post(url)
        .query("db", database)
        .query("precision", "ms")
        .send(lines)
        .map_err(|e| WriteError::Failed(e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_default();
    let message = format!("HTTP {status}: {}", shorten(text.trim(), 300));
    if is_permanent_refusal(status.as_u16()) {
        Err(WriteError::Refused {
            status: status.as_u16(),
            message,
        })
    } else {
        Err(WriteError::Failed(message))
    }
}

/// At most `max` bytes of `s` (cut at a character boundary), for a log line.
fn shorten(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn commit(consumer: &StreamConsumer, batch: &Batch, health: &super::Health) -> anyhow::Result<()> {
    if batch.offsets.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in &batch.offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    // A failed commit only means these records may be written again (idempotent in InfluxDB).
    let committed = tokio::task::block_in_place(|| consumer.commit(&tpl, CommitMode::Sync));
    health.committed(&committed, "the sink's topics");
    if let Err(e) = committed {
        tracing::warn!(
            "cannot commit offsets after a write ({e}); the records may be written again"
        );
    }
    Ok(())
}
