//! `cargo build --release -p bench-mqtt-ingest && target/release/bench-mqtt-ingest [SECONDS]`
//!
//! One mosquitto on loopback, fed without pause by publishers that saturate it, over 100,000
//! distinct topics with 64-byte payloads. On that same feed, one after the other, three
//! subscribers to `#` are each measured for `SECONDS` (default 15) after a warm-up:
//! 1. `mosquitto_sub -t '#'` (the limit: mosquitto's own client printing every payload);
//! 2. pipescope's MQTT watcher (the real code path: `mqtt::watcher::spawn`, in a child process
//!    so its peak RSS is its own);
//! 3. a Python paho-mqtt subscriber counting per topic in a dict (the seed's way).
//!
//! It prints the delivered messages/s of each, the ratios watcher / mosquitto_sub (target
//! ≥ 0.9×) and watcher / Python, and the watcher's peak RSS at 100,000 topics (target ≤ 150 MB).
//! Record results and the command in BENCHMARKS.md. Run it on an otherwise idle machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use pipescope_testkit::{Mosquitto, MosquittoOptions};

const TOPICS: usize = 100_000;
const PAYLOAD: usize = 64;
/// Publisher connections, each with its own share of the topics.
const PUBLISHERS: usize = 2;
/// Time a subscriber runs before its window starts: it connects, and the watcher fills its tree.
const WARM_UP: Duration = Duration::from_secs(3);

/// mosquitto's limits, raised so that what is measured is how fast each subscriber reads,
/// not where the broker starts dropping: a subscriber that falls behind for a moment (two cores
/// shared by broker, feed and subscriber) is queued for, not dropped.
/// - `max_queued_messages`: QoS 0 messages waiting for one client (default 1,000); mosquitto
///   drops past it (counted in `$SYS/broker/publish/messages/dropped`). A million is ~5 s of feed.
/// - `max_queued_bytes`, `memory_limit`: 0 = no limit in bytes, the count above is the bound.
/// - `max_inflight_messages`, `max_inflight_bytes`: only QoS 1/2 messages are in flight; the feed
///   is QoS 0, so these are set to 0 (no limit) only so no QoS 1/2 window can be the limit.
const BROKER_LIMITS: &str = "max_queued_messages 1000000\n\
                             max_queued_bytes 0\n\
                             max_inflight_messages 0\n\
                             max_inflight_bytes 0\n\
                             memory_limit 0\n";

/// The paho-mqtt subscriber: counts per topic in a dict, and prints its total every 20 ms.
const PAHO_SUBSCRIBER: &str = r##"
import sys, threading, time
import paho.mqtt.client as mqtt

host, port = sys.argv[1], int(sys.argv[2])
counts = {}
total = 0

def on_connect(client, userdata, flags, rc):
    client.subscribe("#", 0)

def on_message(client, userdata, message):
    global total
    counts[message.topic] = counts.get(message.topic, 0) + 1
    total += 1

def report():
    while True:
        print(total, len(counts), flush=True)
        time.sleep(0.02)

try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id="bench-paho")
except AttributeError:  # paho-mqtt 1.x
    client = mqtt.Client(client_id="bench-paho")
client.on_connect = on_connect
client.on_message = on_message
threading.Thread(target=report, daemon=True).start()
client.connect(host, port, 60)
client.loop_forever()
"##;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--watcher") {
        let port = args[2].parse().expect("--watcher PORT");
        watcher_child(port);
        return;
    }
    let window = Duration::from_secs(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(15));
    let python = python_with_paho();
    let broker = Mosquitto::start_with(MosquittoOptions {
        extra_config: BROKER_LIMITS.to_string(),
        ..Default::default()
    });
    println!(
        "mosquitto {} on 127.0.0.1:{}; {TOPICS} topics, {PAYLOAD}-byte payloads, QoS 0, \
         {PUBLISHERS} publisher connections; window {}s after {}s of warm-up",
        mosquitto_version(),
        broker.port,
        window.as_secs(),
        WARM_UP.as_secs()
    );
    println!("load average at start: {}", load_average());
    let feed = Feed::start(broker.port);

    let mut results = Vec::new();
    let sub = Subscriber::bytes(
        "mosquitto_sub",
        Command::new("mosquitto_sub").args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-i",
            "bench-mosquitto-sub",
            "-t",
            "#",
        ]),
        PAYLOAD as u64 + 1,
    );
    results.push(measure(sub, &feed, window));
    let exe = std::env::current_exe().expect("path of this program");
    let sub = Subscriber::lines(
        "pipescope watcher",
        Command::new(exe).args(["--watcher", &broker.port.to_string()]),
    );
    results.push(measure(sub, &feed, window));
    let script = tempfile::NamedTempFile::new().expect("temp file for the paho script");
    std::fs::write(script.path(), PAHO_SUBSCRIBER).expect("write the paho script");
    let sub = Subscriber::lines(
        "python paho-mqtt",
        Command::new(&python)
            .arg(script.path())
            .args(["127.0.0.1".to_string(), broker.port.to_string()]),
    );
    results.push(measure(sub, &feed, window));
    feed.stop();
    println!("load average at end: {}", load_average());

    println!();
    println!(
        "| subscriber | delivered msgs/s | feed msgs/s in its window | topics seen | peak RSS (VmHWM) |"
    );
    println!("|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {:.0} | {:.0} | {} | {:.1} MB |",
            r.name,
            r.rate,
            r.feed_rate,
            r.topics.map_or("—".to_string(), |t| t.to_string()),
            r.peak_rss_kib as f64 / 1024.0
        );
    }
    let (limit, watcher, paho) = (&results[0], &results[1], &results[2]);
    println!();
    println!(
        "watcher / mosquitto_sub = {:.2}×  (target ≥ 0.9×: {})",
        watcher.rate / limit.rate,
        met(watcher.rate >= 0.9 * limit.rate)
    );
    println!(
        "watcher / python paho-mqtt = {:.2}×",
        watcher.rate / paho.rate
    );
    println!(
        "watcher peak RSS at {} topics = {:.1} MB  (target ≤ 150 MB: {})",
        watcher.topics.unwrap_or(0),
        watcher.peak_rss_kib as f64 / 1024.0,
        met(watcher.peak_rss_kib as f64 / 1024.0 <= 150.0)
    );
    assert_eq!(
        watcher.topics,
        Some(TOPICS as u64),
        "the watcher should have seen every topic"
    );
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

fn mosquitto_version() -> String {
    Command::new("mosquitto")
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.replace("mosquitto version ", ""))
        })
        .unwrap_or_default()
}

/// The Python that imports paho-mqtt: Debian's python3 with `python3-paho-mqtt`, installed
/// here when missing (apt-get as root, or sudo), else the `python3` on the PATH with
/// `pip install --user paho-mqtt`.
fn python_with_paho() -> String {
    let imports = |python: &str| {
        Command::new(python)
            .args(["-c", "import paho.mqtt.client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    for python in ["/usr/bin/python3", "python3"] {
        if imports(python) {
            return python.to_string();
        }
    }
    println!("installing paho-mqtt (Debian package python3-paho-mqtt)");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if (apt(&["install", "-y", "-qq", "python3-paho-mqtt"])
        || (apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "python3-paho-mqtt"])))
        && imports("/usr/bin/python3")
    {
        return "/usr/bin/python3".to_string();
    }
    println!("installing paho-mqtt with pip (python3 -m pip install --user paho-mqtt)");
    let pip = Command::new("python3")
        .args(["-m", "pip", "install", "--user", "-q", "paho-mqtt"])
        .status();
    assert!(
        pip.is_ok_and(|s| s.success()) && imports("python3"),
        "cannot install paho-mqtt: install python3-paho-mqtt (Debian) or `pip install paho-mqtt`"
    );
    "python3".to_string()
}

/// `plant/<0-9>/line/<00-99>/machine/<00-99>`: 100,000 topics of one length, in a tree.
fn topic(i: usize) -> String {
    format!(
        "plant/{}/line/{:02}/machine/{:02}",
        i / 10_000,
        (i / 100) % 100,
        i % 100
    )
}

fn payload(i: usize) -> Vec<u8> {
    // Fixed length and no newline: mosquitto_sub's output is then exactly 65 bytes a message.
    let mut p =
        format!("{{\"machine\":{i},\"temperature\":21.50,\"state\":\"running\"}}").into_bytes();
    p.resize(PAYLOAD, b' ');
    p
}

/// Publisher connections writing pre-encoded QoS 0 PUBLISH packets as fast as mosquitto takes
/// them, round the topics again and again, until stopped.
struct Feed {
    published: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Packets written per `write_all`.
const CHUNK: usize = 500;

impl Feed {
    fn start(port: u16) -> Self {
        let published = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..PUBLISHERS)
            .map(|p| {
                let (published, stop) = (published.clone(), stop.clone());
                std::thread::spawn(move || publish(port, p, &published, &stop))
            })
            .collect();
        Self {
            published,
            stop,
            threads,
        }
    }

    fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("publisher thread");
        }
    }
}

fn publish(port: u16, n: usize, published: &AtomicU64, stop: &AtomicBool) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect the publisher");
    let mut buffer = BytesMut::new();
    let mut connect = rumqttc::Connect::new(format!("bench-publisher-{n}"));
    connect.keep_alive = 0;
    connect.write(&mut buffer).expect("encode CONNECT");
    stream.write_all(&buffer).expect("send CONNECT");
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).expect("read CONNACK");
    assert_eq!(connack, [0x20, 2, 0, 0], "mosquitto refused the publisher");
    // Every packet of this publisher's topics, encoded once.
    let mut packets = BytesMut::new();
    let mut chunks = Vec::new();
    let mut in_chunk = 0;
    for i in (n..TOPICS).step_by(PUBLISHERS) {
        rumqttc::Publish::new(topic(i), rumqttc::QoS::AtMostOnce, payload(i))
            .write(&mut packets)
            .expect("encode PUBLISH");
        in_chunk += 1;
        if in_chunk == CHUNK {
            chunks.push((packets.split().freeze(), in_chunk));
            in_chunk = 0;
        }
    }
    if in_chunk > 0 {
        chunks.push((packets.split().freeze(), in_chunk));
    }
    while !stop.load(Ordering::Relaxed) {
        for (chunk, count) in &chunks {
            stream.write_all(chunk).expect("publish to mosquitto");
            published.fetch_add(*count as u64, Ordering::Relaxed);
        }
    }
}

/// A subscriber in a child process, and what it has received so far.
struct Subscriber {
    name: &'static str,
    child: Child,
    /// Messages received, and when that count was read.
    received: Arc<Mutex<(u64, Instant)>>,
    topics: Arc<AtomicU64>,
    counts_topics: bool,
}

impl Subscriber {
    /// A child whose stdout is every payload: counted as bytes / `per_message`.
    fn bytes(name: &'static str, command: &mut Command, per_message: u64) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut out = child.stdout.take().expect("stdout");
        let received = Arc::new(Mutex::new((0, Instant::now())));
        let counter = received.clone();
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 1 << 20];
            let mut bytes = 0u64;
            while let Ok(n @ 1..) = out.read(&mut buffer) {
                bytes += n as u64;
                *counter.lock().expect("counter") = (bytes / per_message, Instant::now());
            }
        });
        Self {
            name,
            child,
            received,
            topics: Arc::new(AtomicU64::new(0)),
            counts_topics: false,
        }
    }

    /// A child that prints `<messages> <topics>` lines as it goes.
    fn lines(name: &'static str, command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let out = child.stdout.take().expect("stdout");
        let received = Arc::new(Mutex::new((0, Instant::now())));
        let topics = Arc::new(AtomicU64::new(0));
        let (counter, topic_counter) = (received.clone(), topics.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let mut fields = line.split_whitespace().map(|f| f.parse::<u64>());
                if let (Some(Ok(messages)), Some(Ok(t))) = (fields.next(), fields.next()) {
                    *counter.lock().expect("counter") = (messages, Instant::now());
                    topic_counter.store(t, Ordering::Relaxed);
                }
            }
        });
        Self {
            name,
            child,
            received,
            topics,
            counts_topics: true,
        }
    }

    fn received(&self) -> (u64, Instant) {
        *self.received.lock().expect("counter")
    }
}

struct Measured {
    name: &'static str,
    rate: f64,
    feed_rate: f64,
    topics: Option<u64>,
    peak_rss_kib: u64,
}

/// Waits for messages to flow, lets the subscriber warm up, then counts over `window`.
fn measure(mut sub: Subscriber, feed: &Feed, window: Duration) -> Measured {
    let deadline = Instant::now() + Duration::from_secs(30);
    while sub.received().0 == 0 {
        if let Ok(Some(status)) = sub.child.try_wait() {
            panic!("{} exited before receiving anything ({status})", sub.name);
        }
        assert!(
            Instant::now() < deadline,
            "{} received nothing in 30 s",
            sub.name
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(WARM_UP);
    let ((c0, t0), p0, f0) = (sub.received(), feed.published(), Instant::now());
    std::thread::sleep(window);
    let ((c1, t1), p1, f1) = (sub.received(), feed.published(), Instant::now());
    let peak_rss_kib = vm_hwm_kib(sub.child.id());
    let topics = sub
        .counts_topics
        .then(|| sub.topics.load(Ordering::Relaxed));
    let _ = sub.child.kill();
    let _ = sub.child.wait();
    let m = Measured {
        name: sub.name,
        rate: (c1 - c0) as f64 / (t1 - t0).as_secs_f64(),
        feed_rate: (p1 - p0) as f64 / (f1 - f0).as_secs_f64(),
        topics,
        peak_rss_kib,
    };
    println!(
        "{}: {:.0} msgs/s delivered ({} messages in {:.2}s), feed {:.0} msgs/s, peak RSS {:.1} MB",
        m.name,
        m.rate,
        c1 - c0,
        (t1 - t0).as_secs_f64(),
        m.feed_rate,
        m.peak_rss_kib as f64 / 1024.0
    );
    m
}

/// Peak resident set size of a process (`VmHWM`), in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The watcher as `pipescope run` starts it (same runtime, same spawn), subscribed to `#` and
/// `$SYS/#` with the default settings; prints its tree's message and topic counts every 20 ms.
fn watcher_child(port: u16) {
    use pipescope::bus::Bus;
    use pipescope::mqtt::{MqttState, watcher};
    use pipescope_core::SystemClock;

    let config = pipescope::config::parse(
        "bench",
        &format!(
            "[mqtt.bench]\nurl = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"bench-watcher\"\n"
        ),
        [],
    )
    .expect("watcher configuration");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let mqtt = MqttState::new(&config.mqtt, Arc::new(SystemClock));
        let state = mqtt.broker("bench").expect("broker state").clone();
        let _tasks = watcher::spawn(state.clone(), config.mqtt["bench"].clone(), Bus::new(64));
        let mut out = std::io::stdout();
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let summary = state.tree().summary();
            if writeln!(out, "{} {}", summary.messages, summary.topics).is_err() {
                return;
            }
            let _ = out.flush();
        }
    });
}
