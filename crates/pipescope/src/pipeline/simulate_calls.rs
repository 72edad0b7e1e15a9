//! `pipescope simulate calls`: phone calls to a Kafka topic, keyed by caller, each record
//! traced (docs/trace-headers.md). Prints a JSON summary of what it sent on stdout at the end.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipescope_core::pipeline::calls::{CallGenerator, CallWorkload};
use pipescope_core::pipeline::partition::partition_for_key;
use pipescope_core::pipeline::trace::{Sequencer, TraceHeader};
use prometheus_client::metrics::counter::Counter;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use serde::Serialize;

use super::{KafkaArgs, Stop, WebArgs, ensure_topic, now_ms, serve_web};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub web: WebArgs,
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
}

#[derive(Debug, Clone, Default)]
struct Metrics {
    calls: Counter,
    delivered: Counter,
    failed: Counter,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (stop, _stop_tx) = Stop::on_signal();
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
    let mut registry = crate::metrics::new_registry();
    registry.register(
        "pipescope_simulate_calls_calls",
        "Calls generated",
        metrics.calls.clone(),
    );
    registry.register(
        "pipescope_simulate_calls_delivered_records",
        "Call records Kafka acknowledged",
        metrics.delivered.clone(),
    );
    registry.register(
        "pipescope_simulate_calls_failed_records",
        "Call records Kafka did not take (after librdkafka's retries)",
        metrics.failed.clone(),
    );
    if let Some(listen) = args.web.listen {
        serve_web("simulate calls", listen, registry, stop.clone()).await?;
    }
    let Some(partitions) =
        ensure_topic(&args.kafka, &args.topic, args.partitions, false, &stop).await?
    else {
        return Ok(());
    };
    let producer: FutureProducer = args
        .kafka
        .client_config()?
        .set("linger.ms", "5")
        .create()
        .with_context(|| format!("cannot make a Kafka producer for {}", args.kafka.kafka))?;

    let progress = if super::stderr_is_terminal() {
        ProgressBar::with_draw_target(args.count, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos} calls sent, {per_sec} {msg} [{elapsed}]")
            .expect("a valid progress template"),
    );

    let mut summary = Summary {
        origin: origin.clone(),
        ..Summary::default()
    };
    let mut sequencer = Sequencer::new();
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let started = tokio::time::Instant::now();
    let mut interval = tokio::time::interval(args.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let tick_ms = workload.tick_ms;
    let mut tick_start = now_ms();
    'ticks: loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.stopped() => break,
        }
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        for call in generator.tick(tick_start, tick_ms) {
            if args.count.is_some_and(|c| summary.calls >= c) {
                break 'ticks;
            }
            let partition = partition_for_key(call.caller.as_bytes(), partitions);
            let trace = TraceHeader {
                origin: origin.clone(),
                seq: sequencer.next(partition),
                ts: now_ms(),
            };
            let payload = serde_json::to_vec(&call).expect("a call serialises");
            let mut headers = OwnedHeaders::new();
            for (name, value) in trace.encode() {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(value.as_bytes()),
                });
            }
            let mut record = FutureRecord::to(&args.topic)
                .key(call.caller.as_bytes())
                .payload(&payload)
                .partition(partition)
                .headers(headers);
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push_back(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        settle(&mut pending, &mut summary, &metrics, 1).await;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => {
                        anyhow::bail!("cannot queue a call record for {} ({e})", args.topic)
                    }
                }
            }
            summary.calls += 1;
            summary.duration_ms += call.duration_ms();
            summary.long_calls +=
                u64::from(call.duration_s > pipescope_core::pipeline::totals::LONG_CALL_S);
            metrics.calls.inc();
            progress.inc(1);
        }
        tick_start += tick_ms;
        // Keep the queue of delivery futures short: settle the ones already done.
        settle_ready(&mut pending, &mut summary, &metrics);
        if args.count.is_some_and(|c| summary.calls >= c) {
            break;
        }
    }
    progress.set_message("flushing");
    let producer_flush = producer.clone();
    tokio::task::spawn_blocking(move || producer_flush.flush(Duration::from_secs(60)))
        .await?
        .context("Kafka did not take every call record within 60 s of stopping")?;
    let left = pending.len();
    settle(&mut pending, &mut summary, &metrics, left).await;
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

fn count(
    result: Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
    summary: &mut Summary,
    metrics: &Metrics,
) {
    match result {
        Ok(Ok(_)) => {
            summary.delivered += 1;
            metrics.delivered.inc();
        }
        Ok(Err((e, _))) => {
            tracing::warn!("a call record was not delivered ({e})");
            summary.failed += 1;
            metrics.failed.inc();
        }
        Err(_) => {
            summary.failed += 1;
            metrics.failed.inc();
        }
    }
}

/// Awaits the oldest `n` deliveries.
async fn settle(
    pending: &mut VecDeque<DeliveryFuture>,
    summary: &mut Summary,
    metrics: &Metrics,
    n: usize,
) {
    for _ in 0..n {
        let Some(delivery) = pending.pop_front() else {
            return;
        };
        count(delivery.await, summary, metrics);
    }
}

/// Counts the deliveries at the front of the queue that are already done.
fn settle_ready(pending: &mut VecDeque<DeliveryFuture>, summary: &mut Summary, metrics: &Metrics) {
    use futures::FutureExt;
    while let Some(front) = pending.front_mut() {
        match front.now_or_never() {
            Some(result) => {
                pending.pop_front();
                count(result, summary, metrics);
            }
            None => break,
        }
    }
}
