//! `cargo build --release -p pipescope -p bench-pipeline && target/release/bench-pipeline`
//!
//! The pipeline parts run as the user runs them: the release `pipescope` binary next to this
//! program, against real mosquitto and tansu (sqlite engine) started here on free loopback
//! ports. Each part has a baseline in the same run:
//! 1. `simulate machines` (QoS 0) into mosquitto, counted by mosquitto itself
//!    (`$SYS/broker/publish/messages/received`); baseline `mosquitto_pub -l`, same payloads;
//! 2. `simulate calls` into tansu; baseline a bare rdkafka producer sending the same records
//!    (same keys, partitions and trace headers) to the same broker;
//! 3. `bridge` at QoS 1: simulator (QoS 1) → mosquitto → bridge → tansu; every message read
//!    back from Kafka and its trace sequence checked for gaps;
//! 4. `process calls` and `process machines` pinned to one core (`taskset -c 1`) on a
//!    preloaded topic; baseline a bare rdkafka consumer reading the same records on the same
//!    core. The rate is taken from the first to the last record (the group join is left out).
//!
//! `target/release/bench-pipeline [STAGE ...] [--scale F]` runs some stages only
//! (machines, calls, bridge, process-calls, process-machines) or with F times the records.
//! Record results and the command in BENCHMARKS.md.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pipescope::pipeline::CONSUMER_DEFAULTS;
use pipescope_core::pipeline::calls::{CallGenerator, CallWorkload};
use pipescope_core::pipeline::partition::partition_for_key;
use pipescope_core::pipeline::trace::{MQTT_TOPIC, TraceHeader, TraceTally};
use pipescope_core::pipeline::window::SensorReading;
use pipescope_testkit::{
    Mosquitto, MosquittoOptions, Part, PartBuilder, Tansu, TansuOptions, TansuStorage, wait_until,
};
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

/// One line of the final table.
struct Row {
    measure: String,
    result: String,
    target: String,
}

fn row(measure: impl Into<String>, result: impl Into<String>, target: impl Into<String>) -> Row {
    Row {
        measure: measure.into(),
        result: result.into(),
        target: target.into(),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn fmt_rate(r: f64) -> String {
    let r = r.round() as u64;
    let s = r.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The release `pipescope` binary next to this program.
fn pipescope_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let bin = exe.with_file_name("pipescope");
    assert!(
        bin.is_file(),
        "{} is missing — build it with this program: cargo build --release -p pipescope -p bench-pipeline",
        bin.display()
    );
    bin
}

fn taskset_available() -> bool {
    Command::new("taskset")
        .args(["-c", "0", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// A pipescope part from the release binary (the testkit's part harness, as the tests run
/// them), pinned to `core` when given.
fn start_part(name: &str, args: &[&str], core: Option<u32>) -> Part {
    Part::builder(pipescope_binary(), name)
        .args(args)
        .pinned_to(core)
        .log_filter("warn")
        .start()
}

/// This program (or another) in a child mode: no web endpoint.
fn child_builder(name: &str, program: PathBuf, args: &[&str]) -> PartBuilder {
    Part::builder(program, name)
        .args(args)
        .without_web()
        .log_filter("warn")
}

/// Follows mosquitto's count of PUBLISH packets received (`$SYS`, every second).
struct SysCounter {
    value: Arc<AtomicU64>,
    seen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl SysCounter {
    fn start(port: u16) -> Self {
        let value = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut options = rumqttc::MqttOptions::new("bench-sys", "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut connection) = rumqttc::Client::new(options, 16);
        client
            .subscribe(
                "$SYS/broker/publish/messages/received",
                rumqttc::QoS::AtMostOnce,
            )
            .expect("subscribe to $SYS");
        let (v, s, st) = (value.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let _client = client;
            for event in connection.iter() {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                match event {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        if let Some(n) = std::str::from_utf8(&p.payload)
                            .ok()
                            .and_then(|t| t.trim().parse::<u64>().ok())
                        {
                            v.store(n, Ordering::Relaxed);
                            s.store(true, Ordering::Relaxed);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    Ok(_) => {}
                }
            }
        });
        Self { value, seen, stop }
    }

    fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    /// Waits until mosquitto reports at least `n`; false after `timeout`.
    fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.seen.load(Ordering::Relaxed) && self.get() >= n
        })
    }

    /// Waits until the count stays the same over two `$SYS` updates (the broker is idle).
    fn settle(&self) -> u64 {
        let _ = wait_until(Duration::from_secs(10), || {
            self.seen.load(Ordering::Relaxed)
        });
        let mut last = self.get();
        loop {
            std::thread::sleep(Duration::from_millis(2100));
            let now = self.get();
            if now == last {
                return now;
            }
            last = now;
        }
    }
}

impl Drop for SysCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ----- Kafka helpers -----

/// tansu on its memory engine: the sqlite engine takes about 1,400 records/s here whoever
/// sends them (stage `calls` shows it), which would measure the disk, not the parts.
fn tansu_memory() -> Tansu {
    Tansu::start_with(TansuOptions {
        storage: TansuStorage::Memory,
        ..TansuOptions::default()
    })
}

fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    let results = futures::executor::block_on(admin.create_topics(
        &new,
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .expect("create topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// A record as both a part and its baseline send it.
struct Rec {
    key: String,
    partition: i32,
    payload: Vec<u8>,
    trace: TraceHeader,
}

#[derive(Default)]
struct Counting {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Sends `records` with a bare librdkafka producer (default settings) and waits for every
/// delivery report; returns the time taken and the number delivered.
fn bare_produce(bootstrap: &str, topic: &str, records: &[Rec]) -> (Duration, u64) {
    bare_produce_with(bootstrap, topic, records, &[])
}

fn bare_produce_with(
    bootstrap: &str,
    topic: &str,
    records: &[Rec],
    settings: &[(String, String)],
) -> (Duration, u64) {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (k, v) in settings {
        config.set(k, v);
    }
    let producer: ThreadedProducer<Counting> = config
        .create_with_context(Counting::default())
        .expect("producer");
    // Connect and learn the topic first, as the parts do before their first record.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let started = Instant::now();
    for r in records {
        let seq = r.trace.seq.to_string();
        let ts = r.trace.ts.to_string();
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header {
                key: pipescope_core::pipeline::trace::ORIGIN,
                value: Some(r.trace.origin.as_str()),
            })
            .insert(Header {
                key: pipescope_core::pipeline::trace::SEQ,
                value: Some(seq.as_str()),
            })
            .insert(Header {
                key: pipescope_core::pipeline::trace::TS,
                value: Some(ts.as_str()),
            });
        let mut record = BaseRecord::to(topic)
            .key(r.key.as_bytes())
            .payload(&r.payload)
            .partition(r.partition)
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let elapsed = started.elapsed();
    let c = producer.context();
    assert_eq!(
        c.failed.load(Ordering::Relaxed),
        0,
        "bare producer failures"
    );
    (elapsed, c.delivered.load(Ordering::Relaxed))
}

/// The calls `simulate calls --calls-per-minute 60000000 --tick 10ms --seed 1` makes, as records.
fn call_records(n: u64, origin: &str, partitions: i32) -> Vec<Rec> {
    let workload = CallWorkload {
        calls_per_minute: 60_000_000.0,
        mean_duration_s: 30.0,
        rate: 1.0,
        tick_ms: 10,
        subscribers: 10_000,
        seed: 1,
    };
    let mut generator = CallGenerator::new(&workload, origin).expect("workload");
    let mut seq = vec![0u64; partitions as usize];
    let mut out = Vec::with_capacity(n as usize);
    let mut tick = 1_700_000_000_000u64;
    while (out.len() as u64) < n {
        for call in generator.tick(tick, 10) {
            if out.len() as u64 >= n {
                break;
            }
            let partition = partition_for_key(call.caller.as_bytes(), partitions);
            let s = &mut seq[partition as usize];
            out.push(Rec {
                key: call.caller.clone(),
                partition,
                payload: serde_json::to_vec(&call).expect("json"),
                trace: TraceHeader {
                    origin: origin.to_owned(),
                    seq: *s,
                    ts: tick,
                },
            });
            *s += 1;
        }
        tick += 10;
    }
    out
}

/// Sensor readings of 100 machines × 4 sensors, 1 ms of event time apart, keyed line/machine.
fn reading_records(n: u64, partitions: i32) -> Vec<Rec> {
    const SENSORS: [&str; 4] = ["temperature", "vibration", "pressure", "rpm"];
    let mut seq = vec![0u64; partitions as usize];
    (0..n)
        .map(|i| {
            let pair = i % 400;
            let machine = pair / 4;
            let reading = SensorReading {
                line: format!("l{}", machine % 2),
                machine: format!("m{machine}"),
                sensor: SENSORS[(pair % 4) as usize].to_owned(),
                value: 50.0 + (i % 1000) as f64 / 10.0,
                ts: 1_700_000_000_000 + i,
            };
            let key = format!("{}/{}", reading.line, reading.machine);
            let partition = partition_for_key(key.as_bytes(), partitions);
            let s = &mut seq[partition as usize];
            *s += 1;
            Rec {
                key,
                partition,
                payload: serde_json::to_vec(&reading).expect("json"),
                trace: TraceHeader {
                    origin: "bench-readings".into(),
                    seq: *s - 1,
                    ts: reading.ts,
                },
            }
        })
        .collect()
}

/// CPU seconds (user + system, every thread) `pid` has used so far, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: the fields that follow it start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (12 and 13 after the name).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The pid of the tansu broker listening on `port` (to show its CPU time next to a part's).
fn tansu_pid(port: u16) -> Option<u32> {
    let needle = format!("tcp://127.0.0.1:{port}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        (cmdline.contains("tansu") && cmdline.contains(&needle)).then_some(pid)
    })
}

/// Child mode: `bench-pipeline consume BOOTSTRAP TOPIC PARTITIONS COUNT [KEY=VALUE ...]` reads
/// COUNT records from the beginning with a bare librdkafka consumer (with the librdkafka
/// settings given); prints the seconds and its own CPU seconds from the first record to the
/// last, and the seconds from start to the last.
fn consume_child(args: &[String]) {
    let [bootstrap, topic, partitions, count, settings @ ..] = args else {
        panic!("usage: bench-pipeline consume BOOTSTRAP TOPIC PARTITIONS COUNT [KEY=VALUE ...]");
    };
    let partitions: i32 = partitions.parse().expect("partitions");
    let count: u64 = count.parse().expect("count");
    let started = Instant::now();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-bare-{topic}"))
        .set("enable.auto.commit", "false");
    for s in settings {
        let (k, v) = s.split_once('=').expect("KEY=VALUE");
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let me = std::process::id();
    // The broker's pid, to take its CPU time over the same stretch.
    let broker: Option<u32> = std::env::var("BENCH_BROKER_PID")
        .ok()
        .and_then(|p| p.parse().ok());
    let mut n = 0u64;
    let mut bytes = 0usize;
    // Runs of records from one partition: how the partitions' records interleave.
    let (mut runs, mut last_partition) = (0u64, None);
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while n < count && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            first.get_or_insert_with(|| {
                let broker_cpu = broker.and_then(cpu_seconds).unwrap_or(0.0);
                (Instant::now(), cpu_seconds(me).unwrap_or(0.0), broker_cpu)
            });
            bytes += m.payload().map_or(0, <[u8]>::len);
            if last_partition != Some(m.partition()) {
                runs += 1;
                last_partition = Some(m.partition());
            }
            n += 1;
        }
    }
    assert_eq!(n, count, "bare consumer read only {n} of {count} records");
    let (first, first_cpu, first_broker_cpu) = first.expect("records");
    let broker_cpu = broker.and_then(cpu_seconds).unwrap_or(0.0) - first_broker_cpu;
    println!(
        "{}",
        serde_json::json!({"records": n, "bytes": bytes, "partition_runs": runs,
            "first_to_last_s": first.elapsed().as_secs_f64(),
            "first_to_last_cpu_s": cpu_seconds(me).unwrap_or(0.0) - first_cpu,
            "broker_cpu_s": broker_cpu,
            "total_s": started.elapsed().as_secs_f64()})
    );
}

/// What a consuming run measured: wall rate from the first record to the last, and records
/// per CPU-second of the consumer (and of the broker) over the same stretch.
#[derive(Debug, Clone, Copy)]
struct ConsumeRate {
    wall: f64,
    per_cpu_s: f64,
    broker_cpu_share: f64,
}

impl ConsumeRate {
    fn describe(&self) -> String {
        format!(
            "{} records/s wall, {} records per CPU-second (tansu used {:.0} % of a core meanwhile)",
            fmt_rate(self.wall),
            fmt_rate(self.per_cpu_s),
            self.broker_cpu_share * 100.0
        )
    }
}

fn bare_consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    n: u64,
    core: Option<u32>,
    settings: &[(&str, &str)],
    broker: Option<u32>,
) -> ConsumeRate {
    let exe = std::env::current_exe().expect("own path");
    let mut args: Vec<String> = [
        "consume".to_string(),
        bootstrap.into(),
        topic.into(),
        partitions.to_string(),
        n.to_string(),
    ]
    .to_vec();
    args.extend(settings.iter().map(|(k, v)| format!("{k}={v}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = child_builder("bare consumer", exe, &args)
        .pinned_to(core)
        .env(
            "BENCH_BROKER_PID",
            broker.map(|p| p.to_string()).unwrap_or_default(),
        )
        .start();
    let out: serde_json::Value =
        serde_json::from_str(&child.finish(Duration::from_secs(180))).expect("consumer output");
    let wall = out["first_to_last_s"].as_f64().expect("seconds");
    println!(
        "bare consumer: {} records in {} runs from one partition",
        out["records"], out["partition_runs"]
    );
    ConsumeRate {
        wall: n as f64 / wall,
        per_cpu_s: n as f64 / out["first_to_last_cpu_s"].as_f64().expect("cpu"),
        broker_cpu_share: out["broker_cpu_s"].as_f64().expect("cpu") / wall,
    }
}

/// Polls `metrics` (summed) until they reach `n`; the rate from the first poll that saw
/// records to the one that saw all (the group join and start-up are left out), and the part's
/// and the broker's CPU time (/proc/PID/stat) over the same stretch.
fn processed_rate(
    part: &Part,
    metrics: &[&str],
    n: u64,
    timeout: Duration,
    broker: Option<u32>,
) -> ConsumeRate {
    let deadline = Instant::now() + timeout;
    let read = || -> Option<u64> {
        let mut sum = 0.0;
        for m in metrics {
            sum += part.metric(m)?;
        }
        Some(sum as u64)
    };
    let pid = part.pid();
    let cpu = || {
        (
            cpu_seconds(pid).unwrap_or(0.0),
            broker.and_then(cpu_seconds).unwrap_or(0.0),
        )
    };
    let mut first: Option<(Instant, u64, (f64, f64))> = None;
    loop {
        let now = Instant::now();
        let v = read().unwrap_or(0);
        if v > 0 && first.is_none() {
            first = Some((now, v, cpu()));
        }
        if v >= n {
            let (t0, v0, (cpu0, broker0)) = first.expect("seen");
            let (cpu1, broker1) = cpu();
            assert!(
                v0 < n,
                "{}: all {n} records were done before the first look; raise --scale",
                part.name()
            );
            let wall = (now - t0).as_secs_f64();
            let records = (v - v0) as f64;
            return ConsumeRate {
                wall: records / wall,
                per_cpu_s: records / (cpu1 - cpu0),
                broker_cpu_share: (broker1 - broker0) / wall,
            };
        }
        assert!(
            now < deadline,
            "{}: {:?} reached {v} of {n} in {timeout:?}\n{}",
            part.name(),
            metrics,
            part.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ----- stages -----

fn settings_from(list: &str) -> Vec<(String, String)> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let (k, v) = s.split_once('=').expect("KEY=VALUE");
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// Exploration, not part of the default run: the bare consumer on preloaded calls with
/// several partition counts and librdkafka settings (env SWEEP_PARTITIONS="3,6",
/// SWEEP_PRODUCER="k=v,...", SWEEP_CONSUMER="k=v,...;k=v,..." — one run per `;` set).
fn stage_consume_sweep(scale: f64, core: Option<u32>) {
    let n = (600_000.0 * scale) as u64;
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let producer = settings_from(&env("SWEEP_PRODUCER", ""));
    let consumer_sets: Vec<Vec<(String, String)>> = env("SWEEP_CONSUMER", "")
        .split(';')
        .map(settings_from)
        .collect();
    for partitions in env("SWEEP_PARTITIONS", "3").split(',') {
        let partitions: i32 = partitions.trim().parse().expect("partitions");
        let tansu = tansu_memory();
        let bootstrap = tansu.bootstrap();
        let broker = tansu_pid(tansu.port);
        create_topics(&bootstrap, &[("calls", partitions)]);
        let records = call_records(n, "bench-calls", partitions);
        let (load_time, _) = bare_produce_with(&bootstrap, "calls", &records, &producer);
        drop(records);
        println!(
            "\n{partitions} partitions, {n} records preloaded in {load_time:.2?} ({producer:?})"
        );
        for set in &consumer_sets {
            let set: Vec<(&str, &str)> =
                set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let r = bare_consume(&bootstrap, "calls", partitions, n, core, &set, broker);
            println!("  {set:?}: {}", r.describe());
        }
    }
}

fn stage_machines(scale: f64, rows: &mut Vec<Row>) {
    let n = (1_000_000.0 * scale) as u64;
    println!("\n== simulate machines → mosquitto, {n} messages, QoS 0");
    let mosquitto = Mosquitto::start();
    let port = mosquitto.port.to_string();
    let sys = SysCounter::start(mosquitto.port);
    let before = sys.settle();

    // Baseline: mosquitto_pub reading the same payloads, one message per line.
    let mut lines = String::with_capacity(n as usize * 100);
    for i in 0..n {
        let reading = SensorReading {
            line: "l0".into(),
            machine: format!("m{}", i % 100),
            sensor: "temperature".into(),
            value: 50.0 + (i % 1000) as f64 / 10.0,
            ts: 1_700_000_000_000 + i,
        };
        lines.push_str(&serde_json::to_string(&reading).expect("json"));
        lines.push('\n');
    }
    let started = Instant::now();
    let mut publisher = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "machine/l0/m0/temperature",
            "-q",
            "0",
            "-l",
            "-i",
            "bench-mosquitto-pub",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub (Debian package mosquitto-clients)");
    publisher
        .stdin
        .take()
        .expect("stdin")
        .write_all(lines.as_bytes())
        .expect("feed mosquitto_pub");
    assert!(publisher.wait().expect("wait").success());
    let base_time = started.elapsed();
    drop(lines);
    assert!(
        sys.wait_for(before + n, Duration::from_secs(30)),
        "mosquitto received {} of the baseline's {n}",
        sys.get() - before
    );
    let base = rate(n, base_time);
    println!(
        "mosquitto_pub -l: {n} in {base_time:.2?} = {} msgs/s",
        fmt_rate(base)
    );

    let before = sys.settle();
    let started = Instant::now();
    let mut sim = start_part(
        "simulate machines",
        &[
            "simulate",
            "machines",
            "--mqtt",
            &mosquitto.url(),
            "--machines",
            "100",
            "--sensors",
            "4",
            "--rate",
            "100000000",
            "--qos",
            "0",
            "--count",
            &n.to_string(),
            "--origin",
            "bench-machines",
        ],
        None,
    );
    sim.finish(Duration::from_secs(180));
    let sim_time = started.elapsed();
    let received = sys.wait_for(before + n, Duration::from_secs(30));
    let got = sys.get() - before;
    assert!(received, "mosquitto received {got} of the simulator's {n}");
    let sim_rate = rate(n, sim_time);
    println!(
        "simulate machines: {n} in {sim_time:.2?} (process start to exit) = {} msgs/s; mosquitto counted {got}",
        fmt_rate(sim_rate)
    );
    rows.push(row(
        "simulate machines → mosquitto, QoS 0",
        format!("{} msgs/s (mosquitto counted {got})", fmt_rate(sim_rate)),
        format!("≥ 100,000 msgs/s — {}", verdict(sim_rate >= 100_000.0)),
    ));
    rows.push(row(
        "baseline mosquitto_pub -l, same payloads",
        format!(
            "{} msgs/s (simulator/baseline {:.2}×)",
            fmt_rate(base),
            sim_rate / base
        ),
        "—",
    ));
}

fn stage_calls(scale: f64, rows: &mut Vec<Row>) {
    let n = (600_000.0 * scale) as u64;
    // The sqlite engine first, with few records: it is the limit for both senders.
    let small = (5_000.0 * scale.min(1.0)) as u64;
    println!("\n== simulate calls → tansu (sqlite), {small} records");
    let (sqlite_bare, sqlite_sim) = calls_pair(Tansu::start, small);
    rows.push(row(
        "tansu **sqlite**: simulate calls / bare producer (process start to exit)",
        format!(
            "{} / {} records/s = {:.2}× (the engine is the limit for both)",
            fmt_rate(sqlite_sim.process),
            fmt_rate(sqlite_bare.process),
            sqlite_sim.process / sqlite_bare.process
        ),
        "—",
    ));

    println!("\n== simulate calls → tansu (memory), {n} records");
    let (base, sim) = calls_pair(tansu_memory, n);
    let ratio = sim.process / base.process;
    rows.push(row(
        "simulate calls → tansu memory, better of 2 runs: process start to exit (first record to last report)",
        format!(
            "{} records/s ({})",
            fmt_rate(sim.process),
            fmt_rate(sim.sending)
        ),
        "—",
    ));
    rows.push(row(
        "bare rdkafka producer child, same records, better of 2: start to exit (first record to last report)",
        format!(
            "{} records/s ({})",
            fmt_rate(base.process),
            fmt_rate(base.sending)
        ),
        "—",
    ));
    rows.push(row(
        "ratio simulate calls / bare producer, both start to exit (memory engine)",
        format!(
            "**{ratio:.2}×** (first record to last report: {:.2}×)",
            sim.sending / base.sending
        ),
        format!(
            "≥ 0.8× — {}",
            verdict(ratio >= 0.8 && sim.sending / base.sending >= 0.8)
        ),
    ));
}

/// Child mode: `bench-pipeline produce BOOTSTRAP TOPIC PARTITIONS COUNT ORIGIN` makes the calls
/// `simulate calls --calls-per-minute 60000000 --tick 10ms --seed 1` makes, one by one as it
/// sends them (the same JSON, keys, partitions and trace headers), with a bare librdkafka
/// producer (its default settings; the simulator sets linger.ms 5, librdkafka's default), and
/// waits for every delivery report; prints the seconds from the first record queued to the
/// last report.
fn produce_child(args: &[String]) {
    let [bootstrap, topic, partitions, count, origin] = args else {
        panic!("usage: bench-pipeline produce BOOTSTRAP TOPIC PARTITIONS COUNT ORIGIN");
    };
    let partitions: i32 = partitions.parse().expect("partitions");
    let n: u64 = count.parse().expect("count");
    let producer: ThreadedProducer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create_with_context(Counting::default())
        .expect("producer");
    // Connect and learn the topic first, as the simulator does before its first record.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let workload = CallWorkload {
        calls_per_minute: 60_000_000.0,
        mean_duration_s: 30.0,
        rate: 1.0,
        tick_ms: 10,
        subscribers: 10_000,
        seed: 1,
    };
    let mut generator = CallGenerator::new(&workload, origin).expect("workload");
    let mut seqs = vec![0u64; partitions as usize];
    let mut tick = 1_700_000_000_000u64;
    let mut sent = 0u64;
    let started = Instant::now();
    while sent < n {
        for call in generator.tick(tick, 10) {
            if sent >= n {
                break;
            }
            let partition = partition_for_key(call.caller.as_bytes(), partitions);
            let seq = &mut seqs[partition as usize];
            let seq_text = seq.to_string();
            *seq += 1;
            let ts = tick.to_string();
            let payload = serde_json::to_vec(&call).expect("json");
            let headers = OwnedHeaders::new_with_capacity(3)
                .insert(Header {
                    key: pipescope_core::pipeline::trace::ORIGIN,
                    value: Some(origin.as_str()),
                })
                .insert(Header {
                    key: pipescope_core::pipeline::trace::SEQ,
                    value: Some(seq_text.as_str()),
                })
                .insert(Header {
                    key: pipescope_core::pipeline::trace::TS,
                    value: Some(ts.as_str()),
                });
            let mut record = BaseRecord::to(topic)
                .key(call.caller.as_bytes())
                .payload(&payload)
                .partition(partition)
                .headers(headers);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            sent += 1;
        }
        tick += 10;
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let c = producer.context();
    assert_eq!(
        c.failed.load(Ordering::Relaxed),
        0,
        "bare producer failures"
    );
    println!(
        "{}",
        serde_json::json!({"delivered": c.delivered.load(Ordering::Relaxed),
            "sending_s": started.elapsed().as_secs_f64()})
    );
}

/// A sender's rate measured two ways: its process from start to exit, and from its first
/// record queued to its last delivery report.
#[derive(Debug, Clone, Copy)]
struct SendRate {
    process: f64,
    sending: f64,
}

/// Runs `program args` as a child process, `n` records; both rates (its stdout is JSON with
/// `delivered` and `sending_s`).
fn timed_sender(name: &str, program: PathBuf, args: &[&str], n: u64) -> SendRate {
    let started = Instant::now();
    let mut child = child_builder(name, program, args).start();
    let out: serde_json::Value =
        serde_json::from_str(&child.finish(Duration::from_secs(180))).expect("summary");
    let process_time = started.elapsed();
    assert_eq!(out["delivered"], n, "{name}: {out}");
    let rate = SendRate {
        process: rate(n, process_time),
        sending: n as f64 / out["sending_s"].as_f64().expect("sending_s"),
    };
    println!(
        "{name}: {n} records, process start to exit {process_time:.2?} = {} records/s; first record to last delivery report {} records/s",
        fmt_rate(rate.process),
        fmt_rate(rate.sending)
    );
    rate
}

/// The bare producer and the simulator, `n` records each, both as child processes, twice each
/// in the order bare, simulator, simulator, bare, each run on a broker of its own just started
/// (a broker already holding the other's records, or a later turn, must not favour either);
/// the better of each one's two runs.
fn calls_pair(broker: fn() -> Tansu, n: u64) -> (SendRate, SendRate) {
    let exe = std::env::current_exe().expect("own path");
    let count = n.to_string();
    let run = |simulator: bool| {
        let tansu = broker();
        let bootstrap = tansu.bootstrap();
        create_topics(&bootstrap, &[("calls", 3)]);
        if simulator {
            timed_sender(
                "simulate calls",
                pipescope_binary(),
                &[
                    "simulate",
                    "calls",
                    "--kafka",
                    &bootstrap,
                    "--topic",
                    "calls",
                    "--calls-per-minute",
                    "60000000",
                    "--tick",
                    "10ms",
                    "--count",
                    &count,
                    "--seed",
                    "1",
                    "--origin",
                    "bench-calls",
                ],
                n,
            )
        } else {
            timed_sender(
                "bare rdkafka producer",
                exe.clone(),
                &["produce", &bootstrap, "calls", "3", &count, "bench-calls"],
                n,
            )
        }
    };
    let better = |a: SendRate, b: SendRate| SendRate {
        process: a.process.max(b.process),
        sending: a.sending.max(b.sending),
    };
    let bare1 = run(false);
    let sim1 = run(true);
    let sim2 = run(true);
    let bare2 = run(false);
    (better(bare1, bare2), better(sim1, sim2))
}

/// The lowest rate over any stretch of at least `span` between the first sample with records
/// and the first with all `n` (samples are (time, records so far)); None when the records took
/// less than `span` (there is no such stretch).
fn slowest_stretch(samples: &[(Duration, f64)], n: u64, span: Duration) -> Option<f64> {
    let start = samples.iter().position(|(_, v)| *v > 0.0)?;
    let end = start + samples[start..].iter().position(|(_, v)| *v as u64 >= n)?;
    let active = &samples[start..=end];
    let mut slowest: Option<f64> = None;
    for (i, (t0, v0)) in active.iter().enumerate() {
        if let Some((t1, v1)) = active[i..].iter().find(|(t1, _)| *t1 >= *t0 + span) {
            let r = (v1 - v0) / (*t1 - *t0).as_secs_f64();
            slowest = Some(slowest.map_or(r, |s| s.min(r)));
        }
    }
    slowest
}

fn stage_bridge(scale: f64, rows: &mut Vec<Row>) {
    let n = (600_000.0 * scale) as u64;
    const PARTITIONS: i32 = 6;
    println!("\n== simulate machines (QoS 1) → mosquitto → bridge → tansu (memory), {n} messages");
    let mosquitto = Mosquitto::start_with(MosquittoOptions {
        // The bridge's receive maximum decides its window; mosquitto's own default (20
        // messages in flight per client) would cap the simulator's publishing instead.
        extra_config: "max_inflight_messages 0\n".into(),
        ..MosquittoOptions::default()
    });
    let tansu = tansu_memory();
    let bootstrap = tansu.bootstrap();
    create_topics(&bootstrap, &[("machine.data", PARTITIONS)]);
    let mqtt = mosquitto.url();
    let mut bridge = start_part(
        "bridge",
        &[
            "bridge",
            "--mqtt",
            &mqtt,
            "--kafka",
            &bootstrap,
            "--map",
            "machine/+/+/#=machine.data",
            "--client-id",
            "bench-bridge",
        ],
        None,
    );
    assert!(
        wait_until(Duration::from_secs(60), || bridge
            .metric("pipescope_bridge_mqtt_subscribed")
            == Some(1.0)),
        "the bridge did not subscribe\n{}",
        bridge.log()
    );
    let started = Instant::now();
    let mut sim = start_part(
        "simulate machines (QoS 1)",
        &[
            "simulate",
            "machines",
            "--mqtt",
            &mqtt,
            "--machines",
            "100",
            "--sensors",
            "4",
            "--rate",
            "100000000",
            "--qos",
            "1",
            "--count",
            &n.to_string(),
            "--origin",
            "bench-bridge-sim",
        ],
        None,
    );
    let mut sim_done = None;
    let mut samples: Vec<(Duration, f64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if sim_done.is_none() && sim.has_exited() {
            sim.finish(Duration::from_secs(1));
            sim_done = Some(started.elapsed());
        }
        let delivered = bridge
            .metric("pipescope_bridge_records_delivered_total")
            .unwrap_or(0.0);
        samples.push((started.elapsed(), delivered));
        if delivered as u64 >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bridge delivered {delivered} of {n}\n{}",
            bridge.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let bridge_time = started.elapsed();
    let sim_time = sim_done.unwrap_or_else(|| {
        sim.finish(Duration::from_secs(60));
        started.elapsed()
    });
    let bridge_rate = rate(n, bridge_time);
    // Sustained: the slowest 2-second stretch between the first and the last record.
    let slowest = slowest_stretch(&samples, n, Duration::from_secs(2));
    let slowest_text = slowest.map_or_else(
        || "none: the run was shorter than 2 s".to_owned(),
        |r| format!("{} msgs/s", fmt_rate(r)),
    );
    println!(
        "bridge: {n} delivered {bridge_time:.2?} after the simulator started = {} msgs/s (slowest 2 s: {slowest_text}); the simulator alone took {sim_time:.2?} = {} msgs/s at QoS 1",
        fmt_rate(bridge_rate),
        fmt_rate(rate(n, sim_time))
    );
    bridge.stop(Duration::from_secs(30));

    // Every message in Kafka: read all of machine.data, check trace sequences for gaps.
    let read_started = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "bench-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    // Read until every message is there or nothing comes for 10 s (the memory engine's end
    // offsets are not right, so they cannot say where the end is).
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("machine.data", p, rdkafka::Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut tally = TraceTally::new();
    let mut read = 0u64;
    let mut last = Instant::now();
    while tally.distinct() < n && last.elapsed() < Duration::from_secs(10) {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        last = Instant::now();
        let m = m.expect("consume");
        read += 1;
        let headers = m.headers().expect("headers");
        let pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|h| (h.key, h.value.unwrap_or_default()))
            .collect();
        let trace = TraceHeader::decode(pairs.iter().copied())
            .expect("a well-formed trace")
            .expect("a trace");
        let topic = pairs
            .iter()
            .find(|(k, _)| *k == MQTT_TOPIC)
            .map(|(_, v)| std::str::from_utf8(v).expect("utf-8"))
            .expect("mqtt-topic header");
        tally.record(&trace, topic);
    }
    println!(
        "read back {read} records in {:.2?}: {} distinct, {} duplicates, {} gaps",
        read_started.elapsed(),
        tally.distinct(),
        tally.duplicates(),
        tally.gaps()
    );
    let lossless = tally.distinct() == n && tally.gaps() == 0;
    rows.push(row(
        "bridge, QoS 1, mosquitto → tansu memory (simulator start to last delivery)",
        format!(
            "{} msgs/s (slowest 2 s stretch: {slowest_text})",
            fmt_rate(bridge_rate)
        ),
        format!("≥ 50,000 msgs/s — {}", verdict(bridge_rate >= 50_000.0)),
    ));
    rows.push(row(
        "bridge loss check (every record read back, trace sequences)",
        format!(
            "{} of {n} distinct, {} gaps, {} duplicates",
            tally.distinct(),
            tally.gaps(),
            tally.duplicates()
        ),
        format!("zero loss — {}", verdict(lossless)),
    ));
    rows.push(row(
        "simulate machines at QoS 1 in the same run",
        format!("{} msgs/s", fmt_rate(rate(n, sim_time))),
        "—",
    ));
}

/// Partitions of the processors' input topics (librdkafka fetches them in parallel).
const PROCESS_PARTITIONS: i32 = 3;

/// The processor's rows: its rate pinned to one core, the bare consumer's, both per CPU-second.
fn processor_rows(
    part: &str,
    extra: String,
    r: ConsumeRate,
    base: ConsumeRate,
    rows: &mut Vec<Row>,
) {
    println!("{part}: {} {extra}", r.describe());
    rows.push(row(
        format!("{part}, pinned to one core: records/s from first to last record"),
        format!("**{}** records/s ({extra})", fmt_rate(r.wall)),
        format!(
            "≥ 200,000 records/s on one core — {}",
            verdict(r.wall >= 200_000.0)
        ),
    ));
    rows.push(row(
        format!("{part}: records per CPU-second of the processor (utime+stime)"),
        format!(
            "{} (tansu used {:.0} % of a core meanwhile)",
            fmt_rate(r.per_cpu_s),
            r.broker_cpu_share * 100.0
        ),
        "—",
    ));
    rows.push(row(
        "bare rdkafka consumer, same records, same core, same fetch settings",
        format!(
            "{} records/s, {} per CPU-second ({part} / bare {:.2}× wall)",
            fmt_rate(base.wall),
            fmt_rate(base.per_cpu_s),
            r.wall / base.wall
        ),
        "—",
    ));
}

fn stage_process_calls(scale: f64, core: Option<u32>, rows: &mut Vec<Row>) {
    let n = (1_000_000.0 * scale) as u64;
    println!("\n== process calls on one core, {n} preloaded records in tansu (memory)");
    let tansu = tansu_memory();
    let bootstrap = tansu.bootstrap();
    let broker = tansu_pid(tansu.port);
    create_topics(&bootstrap, &[("calls", PROCESS_PARTITIONS)]);
    let records = call_records(n, "bench-calls", PROCESS_PARTITIONS);
    let duration_ms: u64 = records
        .iter()
        .map(|r| {
            serde_json::from_slice::<pipescope_core::pipeline::calls::CallRecord>(&r.payload)
                .expect("call")
                .duration_ms()
        })
        .sum();
    let (load_time, delivered) = bare_produce(&bootstrap, "calls", &records);
    drop(records);
    assert_eq!(delivered, n);
    println!("preloaded in {load_time:.2?}");
    let base = bare_consume(
        &bootstrap,
        "calls",
        PROCESS_PARTITIONS,
        n,
        core,
        CONSUMER_DEFAULTS,
        broker,
    );
    println!("bare rdkafka consumer: {}", base.describe());
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("long-calls.log");
    let mut part = start_part(
        "process calls",
        &[
            "process",
            "calls",
            "--kafka",
            &bootstrap,
            "--topic",
            "calls",
            "--group",
            "bench-process-calls",
            "--long-calls-log",
            log.to_str().expect("path"),
        ],
        core,
    );
    let r = processed_rate(
        &part,
        &["pipescope_process_calls_records_total"],
        n,
        Duration::from_secs(180),
        broker,
    );
    // The totals are gauges the processor sets when it next runs out of ready records, a moment
    // after its record counter reached n: wait for them (with a deadline), do not read once.
    let exact = pipescope_testkit::wait_until(Duration::from_secs(10), || {
        part.metric("pipescope_process_calls_calls") == Some(n as f64)
            && part.metric("pipescope_process_calls_duration_milliseconds")
                == Some(duration_ms as f64)
    });
    part.stop(Duration::from_secs(30));
    processor_rows(
        "process calls",
        format!("totals exact: {exact}"),
        r,
        base,
        rows,
    );
}

fn stage_process_machines(scale: f64, core: Option<u32>, rows: &mut Vec<Row>) {
    process_machines_run(scale, core, 1, rows);
    process_machines_run(scale, core, PROCESS_PARTITIONS, rows);
}

/// One input partition, then several: librdkafka hands partitions over in long runs, which a
/// single shared watermark turned into late readings (BENCHMARKS.md); with a watermark per
/// partition none is late, and every reading goes through a window.
fn process_machines_run(scale: f64, core: Option<u32>, partitions: i32, rows: &mut Vec<Row>) {
    let n = (1_000_000.0 * scale) as u64;
    println!(
        "\n== process machines on one core, {n} preloaded readings in tansu (memory), {partitions} partition(s)"
    );
    let tansu = tansu_memory();
    let bootstrap = tansu.bootstrap();
    let broker = tansu_pid(tansu.port);
    create_topics(
        &bootstrap,
        &[("machine.data", partitions), ("machine.out", 3)],
    );
    let records = reading_records(n, partitions);
    let (load_time, delivered) = bare_produce(&bootstrap, "machine.data", &records);
    drop(records);
    assert_eq!(delivered, n);
    println!("preloaded in {load_time:.2?}");
    let base = bare_consume(
        &bootstrap,
        "machine.data",
        partitions,
        n,
        core,
        CONSUMER_DEFAULTS,
        broker,
    );
    println!("bare rdkafka consumer: {}", base.describe());
    let lateness = std::env::var("BENCH_LATENESS").unwrap_or_else(|_| "0s".into());
    let mut part = start_part(
        "process machines",
        &[
            "process",
            "machines",
            "--kafka",
            &bootstrap,
            "--group",
            "bench-process-machines",
            // Readings of a partition are in event-time order: no lateness needed.
            "--allowed-lateness",
            &lateness,
        ],
        core,
    );
    let r = processed_rate(
        &part,
        &[
            "pipescope_process_machines_records_total",
            "pipescope_process_machines_late_records_total",
        ],
        n,
        Duration::from_secs(180),
        broker,
    );
    let late = part
        .metric("pipescope_process_machines_late_records_total")
        .unwrap_or(-1.0);
    let windows = part
        .metric("pipescope_process_machines_windows_emitted_total")
        .unwrap_or(-1.0);
    part.stop(Duration::from_secs(30));
    processor_rows(
        &format!("process machines, {partitions} input partition(s)"),
        format!("{windows} windows emitted, {late} late"),
        r,
        base,
        rows,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("consume") {
        consume_child(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some("produce") {
        produce_child(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some("consume-sweep") {
        let scale = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
        stage_consume_sweep(scale, taskset_available().then_some(1));
        return;
    }
    let mut scale = 1.0;
    let mut stages = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--scale" {
            scale = it
                .next()
                .and_then(|s| s.parse().ok())
                .expect("--scale takes a number");
        } else {
            stages.push(a.clone());
        }
    }
    let all = [
        "machines",
        "calls",
        "bridge",
        "process-calls",
        "process-machines",
    ];
    if stages.is_empty() {
        stages = all.map(String::from).to_vec();
    }
    for s in &stages {
        assert!(
            all.contains(&s.as_str()),
            "unknown stage {s:?}; stages: {all:?}"
        );
    }
    pipescope_binary();
    let core = taskset_available().then_some(1);
    if core.is_none() {
        println!("taskset is not available: processors run unpinned");
    }
    let started = Instant::now();
    let load_start = loadavg();
    println!("load average at start: {load_start}");
    let mut rows = Vec::new();
    for s in &stages {
        match s.as_str() {
            "machines" => stage_machines(scale, &mut rows),
            "calls" => stage_calls(scale, &mut rows),
            "bridge" => stage_bridge(scale, &mut rows),
            "process-calls" => stage_process_calls(scale, core, &mut rows),
            "process-machines" => stage_process_machines(scale, core, &mut rows),
            _ => unreachable!(),
        }
    }
    println!(
        "\nwhole run {:.0?}; load average at start {load_start}, at end {}\n",
        started.elapsed(),
        loadavg()
    );
    println!("| measure | result | target |\n|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.measure, r.result, r.target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowest_stretch_is_none_under_the_span_and_the_lowest_rate_over_it() {
        let s = |ms: u64, v: f64| (Duration::from_millis(ms), v);
        // All 100 records within 1.5 s: no 2-second stretch (it printed u64::MAX before).
        let short = [s(0, 0.0), s(500, 10.0), s(1000, 60.0), s(1500, 100.0)];
        assert_eq!(slowest_stretch(&short, 100, Duration::from_secs(2)), None);
        // 0 → 1000 at 1,000/s, then a slow second (100), then fast again to 3,000.
        let long = [
            s(0, 0.0),
            s(1000, 1000.0),
            s(2000, 2000.0),
            s(3000, 2100.0),
            s(4000, 3000.0),
            s(5000, 3000.0),
        ];
        // Stretches from the first sample with records (1 s): 1→3 s = 550/s, 2→4 s = 500/s.
        assert_eq!(
            slowest_stretch(&long, 3000, Duration::from_secs(2)),
            Some(500.0)
        );
        assert_eq!(
            slowest_stretch(&[s(0, 0.0)], 1, Duration::from_secs(2)),
            None
        );
    }
}
