//! What the Kafka reader benchmarks share: a tansu broker (memory engine: its Fetch is the same,
//! and filling it is quicker), a topic filled by a librdkafka producer, the baseline (a bare
//! rdkafka `BaseConsumer` reading the same records) and the timing of each phase (wall time and
//! the process's CPU time, user + system of every thread, from /proc/self/stat).

use std::time::{Duration, Instant};

use pipescope::completeness::kafka::RecordSink;
use pipescope_core::EpochMillis;
use pipescope_testkit::{Tansu, TansuOptions, TansuStorage};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// A tansu broker on the memory engine.
pub fn start_tansu() -> Tansu {
    Tansu::start_with(TansuOptions {
        storage: TansuStorage::Memory,
        ..TansuOptions::default()
    })
}

pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("make an admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the admin client");
    let created = runtime
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .expect("create the topic");
    for r in created {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// `records` records round-robin over the partitions; `record(i, partition, payload)` writes
/// record i's payload (cleared first) and returns its headers.
pub fn fill(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    records: u64,
    mut record: impl FnMut(u64, i32, &mut Vec<u8>) -> Option<OwnedHeaders>,
) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("make a producer");
    let mut payload = Vec::new();
    for i in 0..records {
        let partition = (i % partitions as u64) as i32;
        payload.clear();
        let headers = record(i, partition, &mut payload);
        let mut next = BaseRecord::<(), [u8]>::to(topic)
            .partition(partition)
            .payload(&payload);
        if let Some(headers) = headers {
            next = next.headers(headers);
        }
        loop {
            match producer.send(next) {
                Ok(()) => break,
                Err((e, back)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "produce to {topic}: {e}"
                    );
                    next = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .expect("flush the producer");
}

/// The baseline: assign every partition from the beginning, poll until `records` are read,
/// handing each to `touch` (which returns how many bytes it looked at).
pub fn bare_consumer(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    records: u64,
    mut touch: impl FnMut(&BorrowedMessage<'_>) -> u64,
) -> (u64, u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-bare")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()
        .expect("make the bare consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("add a partition");
    }
    consumer.assign(&assignment).expect("assign the partitions");
    let (mut count, mut touched) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(600);
    while count < records {
        assert!(
            Instant::now() < deadline,
            "bare consumer: {count} of {records} in 10 min"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                count += 1;
                touched += touch(&message);
            }
            Some(Err(e)) => eprintln!("bare consumer: {e}"),
            None => {}
        }
    }
    (count, touched)
}

/// A reader's sink that takes `left` records and then closes (so the reader returns), calling
/// `each` after every record (the quality bench closes the observer's windows from it).
pub struct Counted<S, F> {
    pub inner: S,
    pub left: u64,
    pub each: F,
}

impl<S, F> std::fmt::Debug for Counted<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<S: RecordSink, F: FnMut(EpochMillis)> RecordSink for Counted<S, F> {
    fn open(&self) -> bool {
        self.left > 0 && self.inner.open()
    }
    fn status(&mut self, connected: bool, partitions: u32, error: Option<String>) {
        self.inner.status(connected, partitions, error);
    }
    fn skipped(&mut self, partition: u32) {
        self.inner.skipped(partition);
    }
    fn record(&mut self, message: &BorrowedMessage<'_>, partition: u32, arrival_ms: EpochMillis) {
        if self.left > 0 {
            self.left -= 1;
            self.inner.record(message, partition, arrival_ms);
            (self.each)(arrival_ms);
        }
    }
    fn full(&self) -> bool {
        self.left == 0 || self.inner.full()
    }
    fn flush(&mut self) -> bool {
        self.inner.flush()
    }
}

/// One reader's run.
#[derive(Debug)]
pub struct Phase {
    pub wall_s: f64,
    pub cpu_s: f64,
    pub count: u64,
    pub note: String,
}

impl Phase {
    pub fn per_core(&self) -> f64 {
        self.count as f64 / self.cpu_s.max(1e-9)
    }

    /// A row of the results table.
    pub fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {:.2} | {:.2} | {:.0} | {:.0} | {} |",
            self.wall_s,
            self.cpu_s,
            self.count as f64 / self.wall_s,
            self.per_core(),
            self.note
        )
    }
}

pub const TABLE_HEAD: &str = "| reader | wall s | CPU s | records/s | records/s per core | what it did |\n|---|---:|---:|---:|---:|---|";

/// Runs one reader; its wall time and the CPU time the whole process used meanwhile.
pub fn measure(read: impl FnOnce() -> (u64, String)) -> Phase {
    let cpu = cpu_seconds();
    let started = Instant::now();
    let (count, note) = read();
    Phase {
        wall_s: started.elapsed().as_secs_f64(),
        cpu_s: cpu_seconds() - cpu,
        count,
        note,
    }
}

/// CPU seconds (user + system, every thread) this process has used, from /proc/self/stat.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The command name may hold spaces: the fields that follow it start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line (12 and 13 after the name).
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / clock_ticks()
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}
