//! `pipescope simulate visits`: web-visit events to a Kafka topic at a steady rate, keyed by
//! user, each record traced (docs/trace-headers.md), with empty or null important fields and
//! truncated (not JSON) records injected on purpose. Prints a JSON summary on stdout at the end
//! with exactly how many of each defect it sent, per field: the ground truth of a quality check.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use pipescope_core::pipeline::partition::partition_for_key;
use pipescope_core::pipeline::recent::{RecentCount, describe};
use pipescope_core::pipeline::trace::{self, Sequencer};
use pipescope_core::pipeline::visits::{
    DefectTally, VisitField, VisitGenerator, VisitWorkload, events_due,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
    /// Kafka topic to write the visits to (created when missing).
    #[arg(long, default_value = "visits")]
    pub topic: String,
    /// Partitions of the topic when this part creates it.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Visit events per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this long.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Seed of the random generator: the same seed makes the same visits and defects.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Distinct users.
    #[arg(long, default_value_t = 10_000)]
    pub users: u32,
    /// Mean visit duration in seconds (exponentially distributed).
    #[arg(long, default_value_t = 45.0)]
    pub mean_duration_s: f64,
    /// Chance (0 to 1) that an important field of a record is sent as "".
    #[arg(long, default_value_t = 0.0)]
    pub empty_fraction: f64,
    /// Chance (0 to 1) that an important field of a record is sent as null.
    #[arg(long, default_value_t = 0.0)]
    pub null_fraction: f64,
    /// Chance (0 to 1) that a record is sent truncated (not JSON).
    #[arg(long, default_value_t = 0.0)]
    pub malformed_fraction: f64,
    /// The fields --empty-fraction and --null-fraction hit, comma-separated (visit_id, user_id,
    /// page, referrer, device, country, started_at, duration_ms, ts).
    #[arg(long, value_delimiter = ',', default_value = "user_id,page")]
    pub important: Vec<VisitField>,
    /// How often the pace is checked (events are sent in bursts of rate × tick).
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub tick: Duration,
    /// Origin id in the trace headers (default: sim-visits-<seed>-<start ms>).
    #[arg(long)]
    pub origin: Option<String>,
}

/// What the simulator sent: the ground truth a quality monitor is checked against.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub origin: String,
    pub topic: String,
    pub seed: u64,
    /// Records sent, malformed ones included; their defects, per important field.
    #[serde(flatten)]
    pub defects: DefectTally,
    pub delivered: u64,
    pub failed: u64,
    /// Seconds from the first record queued to the last delivery report.
    pub sending_s: f64,
}

/// A defect and the field it hit (fields come from a fixed list, never from outside).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DefectLabels {
    defect: &'static str,
    field: &'static str,
}

#[derive(Debug, Clone, Default)]
struct Metrics {
    visits: Counter,
    malformed: Counter,
    defective_fields: Family<DefectLabels, Counter>,
    delivered: Counter,
    failed: Counter,
}

impl Metrics {
    fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register(
            "pipescope_simulate_visits_visits",
            "Visit events sent, malformed ones included",
            self.visits.clone(),
        );
        r.register(
            "pipescope_simulate_visits_malformed_records",
            "Visit events sent truncated (not JSON)",
            self.malformed.clone(),
        );
        r.register(
            "pipescope_simulate_visits_defective_fields",
            "Important fields sent empty or null, per defect and field",
            self.defective_fields.clone(),
        );
        r.register(
            "pipescope_simulate_visits_delivered_records",
            "Visit records Kafka acknowledged",
            self.delivered.clone(),
        );
        r.register(
            "pipescope_simulate_visits_failed_records",
            "Visit records Kafka did not take (after librdkafka's retries)",
            self.failed.clone(),
        );
    }
}

pub async fn run(args: Args, stop: Stop) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0.0 && args.rate.is_finite(),
        "--rate must be a positive number of events per second, got {}",
        args.rate
    );
    let origin = args
        .origin
        .clone()
        .unwrap_or_else(|| format!("sim-visits-{}-{}", args.seed, now_ms()));
    let workload = VisitWorkload {
        seed: args.seed,
        users: args.users,
        mean_duration_ms: args.mean_duration_s * 1000.0,
        empty_fraction: args.empty_fraction,
        null_fraction: args.null_fraction,
        malformed_fraction: args.malformed_fraction,
        important: args.important.clone(),
    };
    let mut generator = VisitGenerator::new(&workload)?;
    let metrics = Metrics::default();
    let health = args
        .part
        .serve_metrics("simulate visits", |r| metrics.register(r), &stop)
        .await?;
    health.watch_kafka(&args.kafka, Some(&args.topic), &stop)?;
    let Some(partitions) =
        ensure_topic(&args.kafka, &args.topic, args.partitions, false, &stop).await?
    else {
        return Ok(());
    };
    let counts = Arc::new(Deliveries::new(
        "visit",
        metrics.delivered.clone(),
        metrics.failed.clone(),
    ));
    let producer = counting_producer(&args.kafka, &counts)?;

    let progress = progress_bar(args.count, "visits sent");

    let mut summary = Summary {
        origin: origin.clone(),
        topic: args.topic.clone(),
        seed: args.seed,
        defects: DefectTally::new(&args.important),
        ..Summary::default()
    };
    let mut sequencer = Sequencer::new();
    let started = tokio::time::Instant::now();
    let mut interval = tokio::time::interval(args.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut payload = Vec::with_capacity(512);
    let mut first_sent: Option<std::time::Instant> = None;
    let mut recent = RecentCount::new(now_ms());
    let sent = |summary: &Summary| summary.defects.visits;
    'ticks: loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.stopped() => break,
        }
        let elapsed = started.elapsed();
        if args.duration.is_some_and(|d| elapsed >= d) {
            break;
        }
        let before = sent(&summary);
        let mut n = events_due(args.rate, elapsed, before);
        if let Some(count) = args.count {
            n = n.min(count - before);
        }
        for _ in 0..n {
            let now = now_ms();
            let event = generator.next_visit(now);
            event.write_payload(&mut payload);
            let key = event.visit.user_id.as_bytes();
            let partition = partition_for_key(key, partitions);
            let (seq, ts) = (sequencer.next(partition).to_string(), now.to_string());
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
            let record = BaseRecord::to(&args.topic)
                .key(key)
                .payload(&payload)
                .partition(partition)
                .headers(headers);
            first_sent.get_or_insert_with(std::time::Instant::now);
            let queued = queue_record(&producer, record, Duration::from_millis(1), &stop)
                .await
                .map_err(|e| {
                    anyhow::anyhow!("cannot queue a visit record for {} ({e})", args.topic)
                })?;
            if !queued {
                break 'ticks;
            }
            summary.defects.add(&event.defects);
            if event.defects.truncate_at.is_some() {
                metrics.malformed.inc();
            }
            for (defect, fields) in [("empty", event.defects.empty), ("null", event.defects.null)] {
                for field in fields.iter() {
                    metrics
                        .defective_fields
                        .get_or_create(&DefectLabels {
                            defect,
                            field: field.name(),
                        })
                        .inc();
                }
            }
        }
        let sent_now = sent(&summary) - before;
        metrics.visits.inc_by(sent_now);
        progress.inc(sent_now);
        if !progress.is_hidden() {
            let now = now_ms();
            recent.add(now, sent_now);
            progress.set_message(describe(recent.last_minute(now)));
        }
        if args.count.is_some_and(|c| sent(&summary) >= c) {
            break;
        }
    }
    progress.set_message("flushing");
    let producer_flush = producer.clone();
    let flush_for = super::flush_time(&stop);
    tokio::task::spawn_blocking(move || producer_flush.flush(flush_for))
        .await?
        .with_context(|| {
            format!("Kafka did not take every visit record within {flush_for:?} of stopping")
        })?;
    summary.sending_s = first_sent.map_or(0.0, |t| t.elapsed().as_secs_f64());
    summary.delivered = counts.delivered_here.load(Ordering::Relaxed);
    summary.failed = counts.failed_here.load(Ordering::Relaxed);
    progress.finish_and_clear();
    tracing::info!(
        visits = summary.defects.visits,
        malformed = summary.defects.malformed,
        delivered = summary.delivered,
        failed = summary.failed,
        "simulate visits stopped"
    );
    println!("{}", serde_json::to_string(&summary)?);
    if summary.failed > 0 {
        anyhow::bail!(
            "{} visit records were not delivered to {}: the summary's defect counts include them",
            summary.failed,
            args.topic
        );
    }
    Ok(())
}
