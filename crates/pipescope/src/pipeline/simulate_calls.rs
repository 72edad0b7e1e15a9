//! `pipescope simulate calls`: phone calls to a Kafka topic, keyed by caller, each record
//! traced (docs/trace-headers.md). Prints a JSON summary of what it sent on stdout at the end.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use pipescope_core::pipeline::calls::{CallGenerator, CallText, CallWorkload, duration_ms};
use pipescope_core::pipeline::partition::partition_for_key;
use pipescope_core::pipeline::recent::{RecentCount, describe};
use pipescope_core::pipeline::trace::{self, Sequencer};
use prometheus_client::metrics::counter::Counter;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use serde::Serialize;

use super::{
    Deliveries, KafkaArgs, PartArgs, Stop, counting_producer, ensure_topic, now_ms, progress_bar,
    queue_record,
};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub part: PartArgs,
    /// Kafka topic to write the calls to (created when missing).
    #[arg(long, default_value = "calls")]
    pub topic: String,
    /// Partitions of the topic when this part creates it.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Mean number of calls per minute (before --rate).
    #[arg(long, default_value_t = 600.0)]
    pub calls_per_minute: f64,
    /// Mean call duration in seconds (exponentially distributed).
    #[arg(long, default_value_t = 30.0)]
    pub mean_duration_s: f64,
    /// Multiplies the load (2 = twice as many calls).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Seed of the random generator: the same seed makes the same calls.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Length of a tick.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub tick: Duration,
    /// Distinct phone numbers.
    #[arg(long, default_value_t = 10_000)]
    pub subscribers: u32,
    /// Stop after this many calls.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this long.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Origin id in the trace headers (default: sim-calls-<seed>-<start ms>).
    #[arg(long)]
    pub origin: Option<String>,
}

/// What the simulator sent: the ground truth processors are checked against.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub origin: String,
    pub calls: u64,
    pub duration_ms: u64,
    pub long_calls: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Seconds from the first record queued to the last delivery report.
    pub sending_s: f64,
}

#[derive(Debug, Clone, Default)]
struct Metrics {
    calls: Counter,
    delivered: Counter,
    failed: Counter,
}

impl Metrics {
    fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register(
            "pipescope_simulate_calls_calls",
            "Calls generated",
            self.calls.clone(),
        );
        r.register(
            "pipescope_simulate_calls_delivered_records",
            "Call records Kafka acknowledged",
            self.delivered.clone(),
        );
        r.register(
            "pipescope_simulate_calls_failed_records",
            "Call records Kafka did not take (after librdkafka's retries)",
            self.failed.clone(),
        );
    }
}

pub async fn run(args: Args, stop: Stop) -> anyhow::Result<()> {
    let origin = args
        .origin
        .clone()
        .unwrap_or_else(|| format!("sim-calls-{}-{}", args.seed, now_ms()));
    let workload = CallWorkload {
        calls_per_minute: args.calls_per_minute,
        mean_duration_s: args.mean_duration_s,
        rate: args.rate,
        tick_ms: args.tick.as_millis() as u64,
        subscribers: args.subscribers,
        seed: args.seed,
    };
    let mut generator = CallGenerator::new(&workload, &origin)?;
    let metrics = Metrics::default();
    let health = args
        .part
        .serve_metrics("simulate calls", |r| metrics.register(r), &stop)
        .await?;
    health.watch_kafka(&args.kafka, Some(&args.topic), &stop)?;
    let Some(partitions) =
        ensure_topic(&args.kafka, &args.topic, args.partitions, false, &stop).await?
    else {
        return Ok(());
    };
    let counts = Arc::new(Deliveries::new(
        "call",
        metrics.delivered.clone(),
        metrics.failed.clone(),
    ));
    // A ThreadedProducer that counts delivery reports in its callback, as a bare librdkafka
    // producer does: a future per record (FutureProducer) cost about a third of the rate.
    let producer = counting_producer(&args.kafka, &counts)?;

    let progress = progress_bar(args.count, "calls sent");

    let mut summary = Summary {
        origin: origin.clone(),
        ..Summary::default()
    };
    let mut sequencer = Sequencer::new();
    let started = tokio::time::Instant::now();
    let mut interval = tokio::time::interval(args.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let tick_ms = workload.tick_ms;
    let mut tick_start = now_ms();
    let mut payload = Vec::with_capacity(256);
    let (mut text, mut seq, mut ts) = (CallText::default(), String::new(), String::new());
    let mut first_sent: Option<std::time::Instant> = None;
    // The progress line's count over the last minute (not a rate from the last few seconds).
    let mut recent = RecentCount::new(now_ms());
    'ticks: loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.stopped() => break,
        }
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let calls_before = summary.calls;
        for _ in 0..generator.calls_in_tick() {
            if args.count.is_some_and(|c| summary.calls >= c) {
                break;
            }
            // The same calls as `generator.tick`, their text written into reused buffers.
            let drawn = generator.draw(tick_start, tick_ms);
            let call = drawn.write(generator.id_prefix(), &mut text);
            let partition = partition_for_key(call.caller.as_bytes(), partitions);
            seq.clear();
            ts.clear();
            // Writing into a String cannot fail.
            let _ = write!(seq, "{}", sequencer.next(partition));
            let _ = write!(ts, "{}", now_ms());
            let headers = OwnedHeaders::new_with_capacity(3)
                .insert(Header {
                    key: trace::ORIGIN,
                    value: Some(origin.as_bytes()),
                })
                .insert(Header {
                    key: trace::SEQ,
                    value: Some(seq.as_bytes()),
                })
                .insert(Header {
                    key: trace::TS,
                    value: Some(ts.as_bytes()),
                });
            payload.clear();
            serde_json::to_writer(&mut payload, &call).expect("a call serialises");
            let record = BaseRecord::to(&args.topic)
                .key(call.caller.as_bytes())
                .payload(&payload)
                .partition(partition)
                .headers(headers);
            first_sent.get_or_insert_with(std::time::Instant::now);
            let queued = queue_record(&producer, record, Duration::from_millis(1), &stop)
                .await
                .map_err(|e| {
                    anyhow::anyhow!("cannot queue a call record for {} ({e})", args.topic)
                })?;
            if !queued {
                break 'ticks;
            }
            summary.calls += 1;
            summary.duration_ms += duration_ms(call.duration_s);
            summary.long_calls +=
                u64::from(call.duration_s > pipescope_core::pipeline::totals::LONG_CALL_S);
        }
        // Counted per tick, not per call: the progress line and the metric cost nothing then.
        let sent = summary.calls - calls_before;
        metrics.calls.inc_by(sent);
        progress.inc(sent);
        if !progress.is_hidden() {
            let now = now_ms();
            recent.add(now, sent);
            progress.set_message(describe(recent.last_minute(now)));
        }
        tick_start += tick_ms;
        if args.count.is_some_and(|c| summary.calls >= c) {
            break;
        }
    }
    progress.set_message("flushing");
    let producer_flush = producer.clone();
    let flush_for = super::flush_time(&stop);
    tokio::task::spawn_blocking(move || producer_flush.flush(flush_for))
        .await?
        .with_context(|| {
            format!("Kafka did not take every call record within {flush_for:?} of stopping")
        })?;
    summary.sending_s = first_sent.map_or(0.0, |t| t.elapsed().as_secs_f64());
    summary.delivered = counts.delivered_here.load(Ordering::Relaxed);
    summary.failed = counts.failed_here.load(Ordering::Relaxed);
    progress.finish_and_clear();
    tracing::info!(
        calls = summary.calls,
        delivered = summary.delivered,
        failed = summary.failed,
        "simulate calls stopped"
    );
    println!("{}", serde_json::to_string(&summary)?);
    if summary.failed > 0 {
        anyhow::bail!(
            "{} call records were not delivered to {}",
            summary.failed,
            args.topic
        );
    }
    Ok(())
}
