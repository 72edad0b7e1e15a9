//! The pipeline parts: simulators, the MQTT→Kafka bridge, stateful processors and the
//! Kafka→InfluxDB sink. Each serves /health and /metrics, stops cleanly on Ctrl-C or SIGTERM,
//! and waits (with backoff) for brokers that are not up yet.

pub mod bridge;
pub mod health;
pub mod kafka_config;
pub(crate) mod mqtt;
pub mod process_calls;
pub mod process_machines;
pub mod process_passthrough;
pub mod simulate_calls;
pub mod simulate_machines;
pub mod simulate_traffic;
pub mod simulate_visits;
pub mod sink_influx;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use pipescope_core::backoff::Backoff;
use prometheus_client::registry::Registry;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, ConsumerContext, MessageStream, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use tokio::net::TcpListener;

pub use crate::shutdown::Stop;
use crate::web;
pub use health::Health;

/// librdkafka settings every part's group consumer starts with (a `-X` of the same key wins).
/// `fetch.wait.max.ms`: tansu holds every fetch for the whole wait even when it has records
/// (librdkafka's 500 ms default capped a consumer at about 90,000 records/s there); Apache
/// Kafka answers as soon as it has data, so a short wait only adds fetches while idle.
/// `fetch.queue.backoff.ms`: once a part is slower than the fetches, librdkafka's local queue
/// passes `queued.min.messages` and the next fetch waited its default 1 s, leaving the part
/// idle most of that second (process machines fell from ~1,000,000 to ~250,000 records/s).
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("fetch.wait.max.ms", "10"),
    ("fetch.queue.backoff.ms", "10"),
];

/// Options every part that talks to Kafka shares.
#[derive(Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, host:port[,host:port].
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub kafka: String,
    /// Extra librdkafka settings, KEY=VALUE (repeatable), e.g. -X session.timeout.ms=6000.
    /// Wins over --kafka-config. Put secrets (sasl.password) in that file instead: anyone on
    /// the machine can read a command line.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub kafka_option: Vec<String>,
    /// A file of librdkafka settings, one KEY=VALUE a line, # comments (as kcat -F reads):
    /// the place for sasl.password and other secrets.
    #[arg(long, value_name = "FILE", env = "PIPESCOPE_KAFKA_CONFIG")]
    pub kafka_config: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaArgs")
            .field("kafka", &self.kafka)
            .field(
                "kafka_option",
                &kafka_config::RedactedOptions(&self.kafka_option),
            )
            .field("kafka_config", &self.kafka_config)
            .finish()
    }
}

impl KafkaArgs {
    /// Kafka at `bootstrap` with no other settings.
    pub fn plain(bootstrap: impl Into<String>) -> Self {
        Self {
            kafka: bootstrap.into(),
            kafka_option: Vec::new(),
            kafka_config: None,
        }
    }

    /// Whether TLS or SASL is asked for: librdkafka reports a refused login or certificate as a
    /// transport failure, like a broker that is down. A settings file counts: that is where
    /// security settings go.
    fn secured(&self) -> bool {
        self.kafka_config.is_some()
            || self.kafka_option.iter().any(|option| {
                let key = option.split('=').next().unwrap_or("").trim();
                key == "security.protocol" || key.starts_with("sasl.") || key.starts_with("ssl.")
            })
    }

    /// The librdkafka settings: bootstrap, then the --kafka-config file's, then -X's.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.kafka);
        if let Some(file) = &self.kafka_config {
            let text = std::fs::read_to_string(file).with_context(|| {
                format!(
                    "cannot read the librdkafka settings file {} (--kafka-config) — give a \
                     readable file of KEY=VALUE lines",
                    file.display()
                )
            })?;
            let settings = kafka_config::parse_properties(&text)
                .with_context(|| format!("in {} (--kafka-config)", file.display()))?;
            for (key, value) in settings {
                config.set(key, value);
            }
        }
        for option in &self.kafka_option {
            let (k, v) = option.split_once('=').with_context(|| {
                format!("-X {option:?}: write librdkafka settings as KEY=VALUE")
            })?;
            config.set(k.trim(), v.trim());
        }
        Ok(config)
    }

    /// A consumer in `group`, subscribed to `topics`, reading from the earliest offset and
    /// committing only when the part says so (after its output is safe).
    pub fn group_consumer<C: ConsumerContext + 'static>(
        &self,
        group: &str,
        topics: &[&str],
        context: C,
    ) -> anyhow::Result<StreamConsumer<C>> {
        let mut config = self.client_config()?;
        for (key, value) in CONSUMER_DEFAULTS {
            if config.get(key).is_none() {
                config.set(*key, *value);
            }
        }
        let consumer: StreamConsumer<C> = config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // A part may start before the topic it reads exists (the demo's sink before
            // process machines made machine.out); librdkafka would only look again after its
            // 5-minute metadata refresh.
            .set("topic.metadata.refresh.interval.ms", "5000")
            .create_with_context(context)
            .with_context(|| format!("cannot make a Kafka consumer for {}", self.kafka))?;
        consumer
            .subscribe(topics)
            .with_context(|| format!("cannot subscribe to {}", topics.join(", ")))?;
        Ok(consumer)
    }
}

/// The id of a part's `--config` (`run` and `check` have a `--config` of their own).
pub const PART_CONFIG: &str = "part_config";

/// The options every part takes: `--config FILE` (see [`crate::cli::parse`]) and where it
/// serves /health and /metrics.
#[derive(Debug, Clone, clap::Args)]
pub struct PartArgs {
    /// A TOML file whose table for this part (e.g. [bridge], [sink.influx]) sets its options,
    /// keys named as the long flags; a flag on the command line wins over the file.
    #[arg(id = PART_CONFIG, long = "config", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Address for /health and /metrics (port 0 picks a free one, logged at start).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

impl PartArgs {
    /// A part's start: a registry with the process's metrics, the part's health gauge and
    /// those `register` adds, served on /health and /metrics (as `part`) until `stop` when
    /// `--listen` was given. The part reports its checks into the [`Health`] returned.
    pub async fn serve_metrics(
        &self,
        part: &str,
        register: impl FnOnce(&mut Registry),
        stop: &Stop,
    ) -> anyhow::Result<Health> {
        let health = Health::new(part);
        let mut registry = crate::metrics::new_registry();
        health.register(&mut registry);
        register(&mut registry);
        if let Some(listen) = self.listen {
            serve_web(part, listen, registry, &health, stop.clone()).await?;
        }
        Ok(health)
    }
}

/// How long a producer may take to deliver the records it still holds before a part ends: all
/// the time a healthy broker needs at the natural end of a run, a few seconds once a stop was
/// asked for (a stop ends the part soon whatever Kafka does; what was not delivered is counted
/// as failed).
pub fn flush_time(stop: &Stop) -> Duration {
    if stop.is_stopped() {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(60)
    }
}

/// Queues `record` on `producer`; while librdkafka's queue is full, waits `wait` (for Kafka
/// to take some) and tries again. `Ok(false)` when stopped while waiting.
pub async fn queue_record<C, K, P>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'_, K, P>,
    wait: Duration,
    stop: &Stop,
) -> KafkaResult<bool>
where
    C: ProducerContext<DeliveryOpaque = ()> + 'static,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(true),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                if stop.sleep(wait).await {
                    return Ok(false);
                }
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Serves /health and /metrics until `stop`; returns at once when no address was given.
async fn serve_web(
    part: &str,
    listen: SocketAddr,
    registry: Registry,
    health: &Health,
    stop: Stop,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!(
            "{part}: cannot listen on {listen} for /metrics — is the port taken? Change --listen"
        )
    })?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "{part}: serving /health and /metrics");
    let router = health.router(web::router(web::AppState::new(registry)));
    Ok(tokio::spawn(async move {
        if let Err(e) = web::serve(listener, router, async move { stop.stopped().await }).await {
            tracing::error!("the /metrics server stopped ({e})");
        }
    }))
}

/// The number of partitions of `topic`, creating it (with `partitions` and, when `compact`,
/// cleanup.policy=compact) if it is not there. Retries with backoff while Kafka is not
/// reachable; `None` once stopped.
pub async fn ensure_topic(
    kafka: &KafkaArgs,
    topic: &str,
    partitions: i32,
    compact: bool,
    stop: &Stop,
) -> anyhow::Result<Option<i32>> {
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config()?
        .create()
        .with_context(|| format!("cannot make a Kafka admin client for {}", kafka.kafka))?;
    let mut backoff = Backoff::default();
    loop {
        if stop.is_stopped() {
            return Ok(None);
        }
        match partition_count(&admin, topic).await {
            Ok(Some(n)) => return Ok(Some(n)),
            Ok(None) => {
                let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
                if compact {
                    new = new.set("cleanup.policy", "compact");
                }
                let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
                match admin.create_topics(&[new], &options).await {
                    Ok(results) => {
                        for r in results {
                            match r {
                                Ok(t) => tracing::info!(topic = %t, partitions, "created topic"),
                                Err((t, e)) => {
                                    tracing::info!(topic = %t, "create topic answered {e}; checking again")
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(topic, "cannot create the topic ({e}); retrying"),
                }
            }
            Err(e) => {
                let hint = if kafka.secured() {
                    "is Kafka up, and are the -X security settings (password, CA) right?"
                } else {
                    "is Kafka up?"
                };
                tracing::warn!(topic, bootstrap = %kafka.kafka, "cannot read topic metadata ({e}) — {hint} retrying");
                if stop.sleep(backoff.next_delay()).await {
                    return Ok(None);
                }
            }
        }
    }
}

async fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<Option<i32>, rdkafka::error::KafkaError> {
    // fetch_metadata blocks; the parts run on the multi-threaded runtime.
    tokio::task::block_in_place(|| {
        let metadata = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len() as i32)
            .filter(|n| *n > 0))
    })
}

/// Whether progress bars should draw: only on a terminal.
pub fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Epoch milliseconds now.
pub fn now_ms() -> u64 {
    use pipescope_core::Clock;
    pipescope_core::SystemClock.now_millis()
}

/// Takes records librdkafka has already fetched without going through the caller's `select!`
/// (its timers and stop future cost more than a record): up to [`ReadyRecords::BATCH`] in a
/// row, then `None`, so the select runs at least that often (snapshots, commits, stops), and
/// whenever no record is ready.
#[derive(Debug, Default)]
struct ReadyRecords {
    left: usize,
}

impl ReadyRecords {
    /// Records taken in a row before the loop looks at its timers again.
    pub const BATCH: usize = 1024;

    /// A record that is ready now, unless the batch is used up.
    pub fn take<S: futures::Stream + Unpin>(&mut self, stream: &mut S) -> Option<S::Item> {
        use futures::{FutureExt, StreamExt};
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        stream.next().now_or_never().flatten()
    }

    /// The select ran: a new batch may be taken.
    pub fn refill(&mut self) {
        self.left = Self::BATCH;
    }
}

/// The read side of a processor's loop over its group consumer. Records librdkafka already
/// fetched are taken without a `select!` (see [`ReadyRecords`]); otherwise it waits for a
/// record, the part's timer or the stop. A failed read is logged and waited out with backoff.
pub(crate) struct GroupReader<'a, C: ConsumerContext + 'static> {
    // One stream for the whole run: `recv()` would register and drop a waker per record.
    stream: MessageStream<'a, C>,
    ready: ReadyRecords,
    backoff: Backoff,
    topic: &'a str,
}

/// What a processor's loop got from [`GroupReader::next`].
pub(crate) enum Polled<'a> {
    /// A read came back: the part takes in rebalances, then hands it to [`GroupReader::accept`].
    Read(KafkaResult<BorrowedMessage<'a>>),
    /// The part's timer (snapshot, commit) fired.
    Tick,
    /// A stop was asked for.
    Stopped,
}

/// What became of a read: its record, a failed read waited out (read again), or a stop asked
/// for while waiting.
pub(crate) enum Accepted<'a> {
    Record(BorrowedMessage<'a>),
    Again,
    Stopped,
}

impl<'a, C: ConsumerContext + 'static> GroupReader<'a, C> {
    /// Reads `consumer`, which reads `topic` (named when a read fails).
    pub fn new(consumer: &'a StreamConsumer<C>, topic: &'a str) -> Self {
        Self {
            stream: consumer.stream(),
            ready: ReadyRecords::default(),
            backoff: Backoff::default(),
            topic,
        }
    }

    /// The next read, tick of `timer` or stop; `idle` runs before each wait (the part's gauges).
    pub async fn next(
        &mut self,
        timer: &mut tokio::time::Interval,
        stop: &Stop,
        idle: impl FnOnce(),
    ) -> Polled<'a> {
        use futures::StreamExt;
        if let Some(read) = self.ready.take(&mut self.stream) {
            return Polled::Read(read);
        }
        idle();
        self.ready.refill();
        tokio::select! {
            () = stop.stopped() => Polled::Stopped,
            _ = timer.tick() => Polled::Tick,
            read = self.stream.next() => Polled::Read(read.expect("Kafka streams never end")),
        }
    }

    /// The record of `read`; a failed read is logged and waited out with backoff.
    pub async fn accept(
        &mut self,
        read: KafkaResult<BorrowedMessage<'a>>,
        stop: &Stop,
    ) -> Accepted<'a> {
        match read {
            Ok(message) => {
                self.backoff.reset();
                Accepted::Record(message)
            }
            Err(e) => {
                let delay = self.backoff.next_delay();
                tracing::warn!("cannot read {} ({e}); retrying in {delay:?}", self.topic);
                if stop.sleep(delay).await {
                    Accepted::Stopped
                } else {
                    Accepted::Again
                }
            }
        }
    }
}

/// The trace of an input record and the stream it counts in (as the monitor reads it), for a
/// processor to name it in the `pipescope-inputs` header of what it makes of it.
pub(crate) fn traced_input(
    message: &rdkafka::message::BorrowedMessage<'_>,
) -> Option<(pipescope_core::pipeline::trace::TraceHeader, String)> {
    use pipescope_core::pipeline::trace::{MQTT_TOPIC, STREAM, TraceHeader};
    use rdkafka::message::{Headers, Message};
    let headers = message.headers()?;
    let pairs = || headers.iter().map(|h| (h.key, h.value.unwrap_or_default()));
    let trace = TraceHeader::decode(pairs()).ok()??;
    let text = |name: &str| {
        pairs()
            .filter(|(k, _)| *k == name)
            .last()
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    };
    let partition = u32::try_from(message.partition()).unwrap_or_default();
    let stream = crate::completeness::kafka::stream_of(
        &trace.origin,
        text(STREAM),
        text(MQTT_TOPIC),
        partition,
        &[],
    );
    Some((trace, stream))
}

/// A simulator's delivery reports, counted in librdkafka's callback (a future per record
/// would cost about a third of the rate).
#[derive(Debug)]
pub(crate) struct Deliveries {
    /// What a record is, for the log: "call", "visit".
    what: &'static str,
    pub delivered_here: std::sync::atomic::AtomicU64,
    pub failed_here: std::sync::atomic::AtomicU64,
    delivered: prometheus_client::metrics::counter::Counter,
    failed: prometheus_client::metrics::counter::Counter,
}

impl Deliveries {
    pub(crate) fn new(
        what: &'static str,
        delivered: prometheus_client::metrics::counter::Counter,
        failed: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        Self {
            what,
            delivered_here: Default::default(),
            failed_here: Default::default(),
            delivered,
            failed,
        }
    }
}

/// A simulator's producer (5 ms linger) that counts delivery reports into [`Deliveries`].
pub(crate) fn counting_producer(
    kafka: &KafkaArgs,
    counts: &std::sync::Arc<Deliveries>,
) -> anyhow::Result<rdkafka::producer::ThreadedProducer<CountDeliveries>> {
    use anyhow::Context;
    kafka
        .client_config()?
        .set("linger.ms", "5")
        .create_with_context(CountDeliveries(counts.clone()))
        .with_context(|| format!("cannot make a Kafka producer for {}", kafka.kafka))
}

/// A progress line on a terminal (hidden otherwise): `{spinner} {pos} <what>, {msg} [{elapsed}]`.
pub(crate) fn progress_bar(length: Option<u64>, what: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let progress = if stderr_is_terminal() {
        ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {{pos}} {what}, {{msg}} [{{elapsed}}]"
        ))
        .expect("a valid progress template"),
    );
    progress
}

/// The producer context that counts into [`Deliveries`].
pub(crate) struct CountDeliveries(pub std::sync::Arc<Deliveries>);

impl rdkafka::ClientContext for CountDeliveries {}

impl rdkafka::producer::ProducerContext for CountDeliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        use std::sync::atomic::Ordering;
        match result {
            Ok(_) => {
                self.0.delivered_here.fetch_add(1, Ordering::Relaxed);
                self.0.delivered.inc();
            }
            Err((e, _)) => {
                tracing::warn!("a {} record was not delivered ({e})", self.0.what);
                self.0.failed_here.fetch_add(1, Ordering::Relaxed);
                self.0.failed.inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_settings_come_from_the_file_then_the_command_line_and_debug_hides_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kafka.properties");
        std::fs::write(
            &file,
            "# login\nsasl.username=svc\nsasl.password=hunter2\nacks=1\n",
        )
        .unwrap();
        let mut args = KafkaArgs::plain("k:9092");
        args.kafka_config = Some(file.clone());
        args.kafka_option = vec!["acks=all".into(), "ssl.key.password=s3cret".into()];
        let config = args.client_config().unwrap();
        assert_eq!(config.get("bootstrap.servers"), Some("k:9092"));
        assert_eq!(config.get("sasl.username"), Some("svc"));
        assert_eq!(config.get("sasl.password"), Some("hunter2"));
        assert_eq!(config.get("acks"), Some("all"), "-X wins over the file");
        assert!(args.secured());
        let debug = format!("{args:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("hunter2"),
            "{debug}"
        );
        assert!(debug.contains("ssl.key.password=***"), "{debug}");

        std::fs::write(&file, "sasl.password=hunter2\nnot a setting\n").unwrap();
        let error = format!("{:#}", args.client_config().unwrap_err());
        assert!(error.contains("line 2: expected KEY=VALUE"), "{error}");
        assert!(
            error.contains("--kafka-config") && !error.contains("hunter2"),
            "{error}"
        );
        args.kafka_config = Some(dir.path().join("missing"));
        let error = format!("{:#}", args.client_config().unwrap_err());
        assert!(
            error.starts_with("cannot read the librdkafka settings file"),
            "{error}"
        );
    }
}
