//! The live quality observer (docs/quality-rules.md "The live observer"): one supervised task
//! per `[quality.X]` reads its Kafka topic (every partition from its end, no consumer group:
//! the completeness reader's [`TopicReader`]) or MQTT filter ([`FilterReader`]), hands each
//! payload to its [`TopicObserver`], closes the windows on time, sends drift events to the
//! portal's event stream and its figures to the bus.

pub mod api;
pub mod metrics;
pub mod observer;
pub mod reports;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pipescope_core::live::events::{self, Event, EventKind};
use pipescope_core::quality::ProfileLimits;
use pipescope_core::quality::drift::DriftEvent;
use pipescope_core::{Clock, EpochMillis};
use rdkafka::message::{BorrowedMessage, Message};
use rumqttc::v5::mqttbytes::v5::Publish;
use serde::Serialize;

use crate::api::Hub;
use crate::bus::Bus;
use crate::completeness::kafka::{RecordSink, TopicReader};
use crate::completeness::mqtt::{self, FilterReader, MessageSink};
use crate::config::{Config, QualityConfig};
use crate::shutdown::Supervisor;
use observer::{ObserverOptions, TopicObserver};

/// How often windows are closed (their drift events come within this of the window's end).
const TICK: Duration = Duration::from_secs(1);
/// Figures go to the bus (the store, InfluxDB) every this many ticks.
const TICKS_PER_SAMPLE: u64 = 10;

/// What a quality topic's reader reports.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReaderState {
    /// Subscribed (MQTT), or every partition assigned (Kafka): what is written after is read.
    pub connected: bool,
    /// Kafka partitions read.
    pub partitions: u32,
    /// The last connection or read error, until the next success.
    pub last_error: Option<String>,
}

/// One quality topic: its observer and its reader's state, shared by its task, its reader, the
/// API and `/metrics`.
#[derive(Debug)]
pub struct QualityTopic {
    pub name: String,
    /// `kafka:<cluster>:<topic>` or `mqtt:<broker>:<filter>`.
    pub source: String,
    pub window_ms: u64,
    observer: Mutex<TopicObserver>,
    reader: Mutex<ReaderState>,
    /// Periodic reports; `None` without `report_every`.
    pub reports: Option<ReportSettings>,
    /// Records per report file written since start (at most `keep_reports`).
    report_records: Mutex<BTreeMap<String, u64>>,
    pub reports_written: AtomicU64,
    pub reports_failed: AtomicU64,
}

/// A quality topic's `report_every`, `keep_reports` and the directory they go to.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub every_ms: u64,
    pub keep: usize,
    pub dir: PathBuf,
}

impl QualityTopic {
    pub fn observer(&self) -> MutexGuard<'_, TopicObserver> {
        self.observer.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn reader(&self) -> ReaderState {
        self.reader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn report_records(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.report_records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn set_reader(&self, connected: bool, partitions: u32, error: Option<String>) {
        *self.reader.lock().unwrap_or_else(|p| p.into_inner()) = ReaderState {
            connected,
            partitions,
            last_error: error,
        };
    }
}

/// Every quality topic, by name, and the clock their figures are read at.
#[derive(Debug, Clone)]
pub struct QualityState {
    topics: Arc<BTreeMap<String, Arc<QualityTopic>>>,
    clock: Arc<dyn Clock>,
    reports_dir: Arc<PathBuf>,
}

impl QualityState {
    /// An observer per `[quality.X]` of `config`, none reading yet.
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Self {
        let mut topics = BTreeMap::new();
        let reports_dir = config.store.reports_dir();
        for (name, q) in &config.quality {
            match topic(name, q, &reports_dir, clock.now_millis()) {
                Ok(t) => {
                    topics.insert(name.clone(), Arc::new(t));
                }
                Err(e) => tracing::error!(quality = %name, "not observed: {e}"),
            }
        }
        Self {
            topics: Arc::new(topics),
            clock,
            reports_dir: Arc::new(reports_dir),
        }
    }

    /// No quality topic (for routers built without a monitor).
    pub fn empty(clock: Arc<dyn Clock>) -> Self {
        Self {
            topics: Arc::default(),
            clock,
            reports_dir: Arc::default(),
        }
    }

    pub fn topics(&self) -> impl Iterator<Item = &Arc<QualityTopic>> {
        self.topics.values()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<QualityTopic>> {
        self.topics.get(name)
    }

    pub fn now(&self) -> EpochMillis {
        self.clock.now_millis()
    }

    pub fn reports_dir(&self) -> &std::path::Path {
        &self.reports_dir
    }
}

fn source_name(q: &QualityConfig) -> String {
    match (&q.kafka, &q.topic, &q.mqtt, &q.filter) {
        (Some(c), Some(t), _, _) => format!("kafka:{c}:{t}"),
        (_, _, Some(b), Some(f)) => format!("mqtt:{b}:{f}"),
        _ => "invalid".to_string(),
    }
}

/// The observer a `[quality.X]` table describes (its rules compile: the config was checked).
fn topic(
    name: &str,
    q: &QualityConfig,
    reports_dir: &std::path::Path,
    now: EpochMillis,
) -> Result<QualityTopic, String> {
    let rules = q.topic_config().compile(name).map_err(|e| e.to_string())?;
    let window_ms = u64::try_from(q.window.as_millis()).unwrap_or(u64::MAX);
    let options = ObserverOptions {
        window_ms,
        limits: ProfileLimits {
            max_fields: q.max_fields,
            sample_every: q.sample.max(1),
            ..ProfileLimits::default()
        },
        reports: q.report_every.is_some(),
    };
    let reports = q.report_every.map(|every| ReportSettings {
        every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
        keep: q.keep_reports,
        dir: reports_dir.to_path_buf(),
    });
    Ok(QualityTopic {
        name: name.to_string(),
        source: source_name(q),
        window_ms,
        observer: Mutex::new(TopicObserver::new(rules, q.drift.clone(), options, now)),
        reader: Mutex::new(ReaderState::default()),
        reports,
        report_records: Mutex::default(),
        reports_written: AtomicU64::new(0),
        reports_failed: AtomicU64::new(0),
    })
}

/// One supervised task per `[quality.X]`, and the state they share with the API.
pub fn start_quality(
    config: &Config,
    bus: &Bus,
    hub: &Hub,
    tasks: &Supervisor,
    clock: &Arc<dyn Clock>,
) -> QualityState {
    let state = QualityState::new(config, clock.clone());
    for t in state.topics() {
        tracing::info!(quality = %t.name, source = %t.source, "observing data quality");
        let (topic, q, config) = (t.clone(), config.quality[&t.name].clone(), config.clone());
        let (bus, hub, clock) = (bus.clone(), hub.clone(), clock.clone());
        tasks.spawn(
            format!("quality {}", t.name),
            Box::new(move || {
                Box::pin(run_topic(
                    topic.clone(),
                    q.clone(),
                    config.clone(),
                    bus.clone(),
                    hub.clone(),
                    clock.clone(),
                ))
            }),
        );
    }
    state
}

/// Set when the topic's task ends: its Kafka reader thread stops at its next poll.
#[derive(Debug, Default)]
struct Closed(AtomicBool);

struct CloseOnDrop(Arc<Closed>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.0.store(true, Ordering::Relaxed);
    }
}

/// The Kafka reader's sink: each record straight into the observer.
#[derive(Debug)]
pub struct KafkaQualitySink {
    topic: Arc<QualityTopic>,
    closed: Arc<Closed>,
    origin: String,
}

impl KafkaQualitySink {
    /// A sink into `topic`'s observer that stays open (the monitor's closes with its task).
    pub fn new(topic: Arc<QualityTopic>) -> Self {
        Self {
            topic,
            closed: Arc::default(),
            origin: String::new(),
        }
    }
}

impl RecordSink for KafkaQualitySink {
    fn open(&self) -> bool {
        !self.closed.0.load(Ordering::Relaxed)
    }

    fn status(&mut self, connected: bool, partitions: u32, error: Option<String>) {
        self.topic.set_reader(connected, partitions, error);
    }

    fn skipped(&mut self, _partition: u32) {}

    fn record(&mut self, message: &BorrowedMessage<'_>, partition: u32, arrival_ms: EpochMillis) {
        self.origin.clear();
        let _ = write!(
            self.origin,
            "partition {partition} offset {}",
            message.offset()
        );
        let payload = message.payload().unwrap_or_default();
        self.topic
            .observer()
            .observe(payload, &self.origin, arrival_ms);
    }

    fn full(&self) -> bool {
        false
    }

    fn flush(&mut self) -> bool {
        self.open()
    }
}

/// The MQTT reader's sink: each message straight into the observer.
struct MqttQualitySink {
    topic: Arc<QualityTopic>,
}

impl MessageSink for MqttQualitySink {
    fn status(&mut self, connected: bool, error: Option<String>) {
        self.topic.set_reader(connected, 0, error);
    }

    fn message(&mut self, p: &Publish, arrival_ms: EpochMillis) {
        let origin = String::from_utf8_lossy(&p.topic);
        self.topic
            .observer()
            .observe(&p.payload, &origin, arrival_ms);
    }

    async fn flush(&mut self) -> bool {
        true
    }
}

/// A drift event as the portal's event stream shows it.
pub fn drift_event(name: &str, e: &DriftEvent) -> Event {
    let change = match (e.kind.label(), &e.before, &e.after) {
        ("type_changed", Some(b), Some(a)) => format!(
            "type changed from {} to {}",
            b.dominant_type.map_or("none", |t| t.name()),
            a.dominant_type.map_or("none", |t| t.name())
        ),
        ("null_ratio_jump", Some(b), Some(a)) => format!(
            "null ratio jumped from {:.1} % to {:.1} %",
            b.null_ratio * 100.0,
            a.null_ratio * 100.0
        ),
        (kind, _, _) => kind.replace('_', " "),
    };
    Event {
        at: e.at_ms,
        kind: EventKind::SchemaDrift,
        source: events::quality_source(name),
        subject: format!("field {}", e.path),
        message: format!("field {} {change}", e.path),
    }
}

async fn run_topic(
    topic: Arc<QualityTopic>,
    q: QualityConfig,
    config: Config,
    bus: Bus,
    hub: Hub,
    clock: Arc<dyn Clock>,
) {
    let closed = Arc::new(Closed::default());
    let _close = CloseOnDrop(closed.clone());
    // Dropped with this task: the MQTT reader is aborted.
    let mut readers = tokio::task::JoinSet::new();
    match (&q.kafka, &q.topic, &q.mqtt, &q.filter) {
        (Some(cluster), Some(kafka_topic), _, _) => {
            let Some(settings) = config.kafka.get(cluster) else {
                return;
            };
            let reader = TopicReader {
                cluster_name: cluster.clone(),
                cluster: settings.clone(),
                topic: kafka_topic.clone(),
                group: format!("pipescope-quality-{}", topic.name),
                clock: clock.clone(),
            };
            let mut sink = KafkaQualitySink {
                closed: closed.clone(),
                ..KafkaQualitySink::new(topic.clone())
            };
            let (reader_topic, reader_closed) = (topic.clone(), closed.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("quality-{}", topic.name))
                .spawn(move || {
                    let run = std::panic::AssertUnwindSafe(|| reader.run(&mut sink));
                    let why = match std::panic::catch_unwind(run) {
                        Ok(()) => "ended".to_string(),
                        Err(_) => "panicked".to_string(),
                    };
                    if !reader_closed.0.load(Ordering::Relaxed) {
                        reader_topic.set_reader(false, 0, Some(format!("the reader {why}")));
                        reader_closed.0.store(true, Ordering::Relaxed);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(quality = %topic.name, "cannot start a Kafka reader thread: {e}");
                return;
            }
        }
        (_, _, Some(broker), Some(filter)) => {
            let Some(settings) = config.mqtt.get(broker) else {
                return;
            };
            let reader = FilterReader {
                client_id: mqtt::client_id(&format!("quality-{}", topic.name)),
                broker_name: broker.clone(),
                broker: settings.clone(),
                filter: filter.clone(),
                clock: clock.clone(),
            };
            let mut sink = MqttQualitySink {
                topic: topic.clone(),
            };
            readers.spawn(async move { reader.run(&mut sink).await });
        }
        _ => return,
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    let mut records_seen = 0u64;
    let source = events::quality_source(&topic.name);
    let report_every = topic.reports.as_ref().map(|r| r.every_ms);
    let mut next_report_ms = report_every.map(|every| clock.now_millis().saturating_add(every));
    loop {
        tick.tick().await;
        let mqtt_reader_ended = readers.try_join_next().is_some();
        if mqtt_reader_ended || closed.0.load(Ordering::Relaxed) {
            // The supervisor starts the task (and a reader) again.
            tracing::error!(quality = %topic.name, "the quality reader stopped");
            if mqtt_reader_ended {
                topic.set_reader(false, 0, Some("the reader ended".into()));
            }
            return;
        }
        let now = clock.now_millis();
        let (drift, records) = {
            let mut observer = topic.observer();
            (observer.tick(now), observer.records_total())
        };
        for e in &drift {
            hub.emit(drift_event(&topic.name, e));
        }
        // The portal's quality page refreshes on updates of its source.
        if records != records_seen || !drift.is_empty() {
            records_seen = records;
            hub.update(&source);
        }
        if let (Some(every), Some(next)) = (report_every, next_report_ms)
            && now >= next
        {
            next_report_ms = Some(now.saturating_add(every));
            let writer = topic.clone();
            let wrote =
                tokio::task::spawn_blocking(move || reports::write_and_count(&writer, now)).await;
            if let Err(e) = wrote {
                tracing::error!(quality = %topic.name, "the report writer failed: {e}");
            }
        }
        ticks += 1;
        if ticks.is_multiple_of(TICKS_PER_SAMPLE) {
            bus.publish(metrics::samples(&topic, now));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_quality_topic_is_valid_once_uncommented() {
        let example = crate::config::EXAMPLE;
        let block = crate::config::example_block("# [quality.visits]");
        let config = crate::config::parse("example", &format!("{example}\n{block}"), []).unwrap();
        let q = &config.quality["visits"];
        assert_eq!(q.rules.len(), 2);
        assert_eq!(q.window, std::time::Duration::from_secs(60));
        assert_eq!(q.report_every, Some(std::time::Duration::from_secs(3600)));
        assert_eq!(q.keep_reports, 48);
        let shipped = crate::config::parse("example", example, []).unwrap();
        assert!(shipped.quality.is_empty(), "off unless configured");
    }
}
