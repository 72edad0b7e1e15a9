//! Observed flows in `pipescope run` against real brokers: the machines simulator publishes
//! traced QoS 1 messages to mosquitto, the bridge carries them to tansu, and the monitor reads
//! both hops and the edge between them.

use crate::kafka::create_topic;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipescope_core::pipeline::trace::{STREAM, TraceHeader, TraceTally};
use pipescope_testkit::{
    Mosquitto, MosquittoOptions, Part, Tansu, free_port, http_body, wait_until,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The monitor, killed when dropped; its log kept for failure messages (the probes' tests use
/// it too).
pub(crate) struct Monitor {
    child: Child,
    pub(crate) port: u16,
    log: std::path::PathBuf,
}

impl Monitor {
    pub(crate) fn start(dir: &std::path::Path, config: &str) -> Self {
        let port = free_port();
        let path = dir.join("pipescope.toml");
        std::fs::write(
            &path,
            format!(
                "[web]\nlisten = \"127.0.0.1:{port}\"\n[store]\npath = \"{}\"\n{config}",
                dir.join("store").display()
            ),
        )
        .unwrap();
        let log = dir.join("monitor.log");
        let child = Command::new(env!("CARGO_BIN_EXE_pipescope"))
            .args(["run", "-c", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { child, port, log }
    }

    pub(crate) fn flow(&self, name: &str) -> Option<Value> {
        let body = http_body(self.port, &format!("/api/v1/flows/{name}"))?;
        serde_json::from_str::<Value>(&body)
            .ok()
            .filter(|v| v.get("flow").is_some())
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (`-TERM`, `-KILL`) and waits up to `within` for the process to end.
    pub(crate) fn signal_and_wait(&mut self, signal: &str, within: Duration) -> bool {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {signal}");
        wait_until(within, || matches!(self.child.try_wait(), Ok(Some(_))))
    }

    /// The monitor's process id (to pause it with `kill -STOP`).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn counter(figures: &Value, name: &str) -> u64 {
    figures["total"]["counters"][name]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// MQTT `machine/#` → bridge → Kafka `machine.data`: every message the simulator sent after
/// the monitor was reading is counted once at both hops and matched on the edge; nothing lost
/// or duplicated; latencies plausible; the monitor is no consumer group.
#[test]
fn a_flow_from_mqtt_through_the_bridge_to_kafka_counts_every_message_once() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let tansu = Tansu::start();
    let (mqtt, bootstrap) = (mosquitto.url(), tansu.bootstrap());
    create_topic(&bootstrap, "machine.data", 2);
    let bridge = Part::builder(env!("CARGO_BIN_EXE_pipescope"), "bridge")
        .args([
            "bridge",
            "--mqtt",
            &mqtt,
            "--kafka",
            &bootstrap,
            "--map",
            "machine/+/+/#=machine.data",
            "--client-id",
            "it-bridge",
            "--partitions",
            "2",
        ])
        .start();
    bridge.wait_metric("pipescope_bridge_mqtt_subscribed", TIMEOUT, |v| v == 1.0);

    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[mqtt.local]\nurl = \"{mqtt}\"\n[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"1s\"\n\
             [flows.machines]\nhops = [{{ mqtt = \"local\", filter = \"machine/#\" }}, {{ kafka = \"local\", topic = \"machine.data\" }}]\ngrace = \"2s\"\n"
        ),
    );
    let mut view = Value::Null;
    let reading = wait_until(TIMEOUT, || {
        view = monitor.flow("machines").unwrap_or_default();
        view["hops"][0]["reader"]["connected"] == true
            && view["hops"][1]["reader"]["connected"] == true
            && view["hops"][1]["reader"]["partitions"] == 2
    });
    assert!(
        reading,
        "the readers never started: {view}\n{}",
        monitor.log()
    );

    let sent: u64 = 2_000;
    let mut simulator = Part::builder(env!("CARGO_BIN_EXE_pipescope"), "simulate machines")
        .args([
            "simulate",
            "machines",
            "--mqtt",
            &mqtt,
            "--machines",
            "5",
            "--sensors",
            "2",
            "--rate",
            "1000",
            "--qos",
            "1",
            "--count",
            &sent.to_string(),
            "--origin",
            "it-sim",
        ])
        .start();
    let summary: Value = serde_json::from_str(&simulator.finish(TIMEOUT)).unwrap();
    assert_eq!(summary["acked"], sent);

    // Both hops and the edge have it all, and the grace has run out since.
    let all_in = wait_until(TIMEOUT, || {
        view = monitor.flow("machines").unwrap_or_default();
        counter(&view["hops"][0]["figures"], "records") == sent
            && counter(&view["hops"][1]["figures"], "records") == sent
            && counter(&view["edges"][0]["figures"], "matched") == sent
    });
    assert!(
        all_in,
        "not every message counted: {view}\n{}",
        monitor.log()
    );
    let counted_at = view["updated_ms"].as_u64().unwrap();
    let settled = wait_until(TIMEOUT, || {
        view = monitor.flow("machines").unwrap_or_default();
        view["updated_ms"].as_u64().unwrap_or(0) > counted_at + 3_000
    });
    assert!(settled, "the flow stopped ticking: {view}");

    for hop in 0..2 {
        let f = &view["hops"][hop]["figures"];
        let name = &view["hops"][hop]["hop"];
        assert_eq!(counter(f, "records"), sent, "{name}");
        for zero in ["lost", "duplicated", "late", "before_base", "untracked"] {
            assert_eq!(counter(f, zero), 0, "{name}: {zero} in {f}");
        }
        assert_eq!(f["malformed"], 0, "{name}");
        assert_eq!(view["hops"][hop]["reader"]["untraced"], 0, "{name}");
        // One origin kind ("it" of it-sim); a stream per MQTT topic at both hops.
        assert!(f["by_kind"]["it"].is_object(), "{f}");
        assert_eq!(
            f["streams"], view["hops"][0]["figures"]["streams"],
            "{name}"
        );
        assert!(f["streams"].as_u64().unwrap() >= 10, "{name}: {f}");
        let latency = &f["total"]["latency"]["1m"];
        assert_eq!(latency["count"], sent, "{name}: {latency}");
        let p50 = latency["p50_ms"].as_f64().expect("a median");
        let p999 = latency["p999_ms"].as_f64().expect("a p99.9");
        let max = latency["max_ms"].as_f64().expect("a maximum");
        assert!(
            (0.0..5_000.0).contains(&p50) && p50 <= p999 && p999 <= max * 1.01 && max < 20_000.0,
            "{name}: {latency}"
        );
    }
    let edge = &view["edges"][0];
    assert_eq!(edge["upstream"], "mqtt:local:machine/#");
    assert_eq!(edge["downstream"], "kafka:local:machine.data");
    for zero in ["lost", "duplicated", "late", "downstream_only", "untracked"] {
        assert_eq!(counter(&edge["figures"], zero), 0, "edge {zero}: {edge}");
    }
    assert!(
        edge["figures"]["total"]["added_latency"]["1m"]["p50_ms"].is_number(),
        "{edge}"
    );

    let metrics = http_body(monitor.port, "/metrics").unwrap_or_default();
    assert!(
        metrics.contains(&format!(
            "pipescope_completeness_hop_records_total{{flow=\"machines\",hop=\"kafka:local:machine.data\",kind=\"it\"}} {sent}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains(
        "pipescope_completeness_edge_lost_total{flow=\"machines\",upstream=\"mqtt:local:machine/#\",downstream=\"kafka:local:machine.data\",kind=\"it\"} 0"
    ));
    assert!(metrics.contains("pipescope_completeness_hop_latency_seconds{flow=\"machines\",hop=\"mqtt:local:machine/#\",kind=\"it\",quantile=\"0.99\"}"));

    // The same series reach the store through the bus (every 10 s).
    let mut stored = String::new();
    let in_store = wait_until(TIMEOUT, || {
        stored = http_body(
            monitor.port,
            "/api/v1/last?metric=pipescope_completeness_edge_matched_total",
        )
        .unwrap_or_default();
        serde_json::from_str::<Value>(&stored).is_ok_and(|v| {
            v["series"][0]["value"] == sent as f64
                && v["series"][0]["labels"]["kind"] == "it"
                && v["series"][0]["labels"]["flow"] == "machines"
        })
    });
    assert!(in_store, "the store has no edge figures: {stored}");

    // The monitor read the topic without joining or creating a consumer group.
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let groups = client
        .fetch_group_list(None, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("cannot list the broker's consumer groups: {e}"));
    let names: Vec<&str> = groups.groups().iter().map(|g| g.name()).collect();
    assert!(names.is_empty(), "consumer groups on the broker: {names:?}");
    drop(bridge);
    eprintln!("took {:?}", started.elapsed());
}

/// Produces `count` records to `partition` of `topic`, numbered from `first` for `origin`
/// (stream: the partition); `None` for `origin` leaves them untraced.
pub(crate) fn produce(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    origin: Option<&str>,
    first: u64,
    count: u64,
) {
    produce_stamped(
        bootstrap,
        topic,
        partition,
        origin,
        first..first + count,
        None,
    );
}

/// Produces `seqs` to `partition` of `topic`, traced for `origin` (`None`: untraced), each
/// record stamped `record_ms` when given (what retention judges), and waits for delivery.
pub(crate) fn produce_stamped(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    origin: Option<&str>,
    seqs: std::ops::Range<u64>,
    record_ms: Option<i64>,
) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let now = pipescope_testkit::now_ms().to_string();
    for seq in seqs {
        let seq_text = seq.to_string();
        let mut headers = OwnedHeaders::new();
        if let Some(origin) = origin {
            for (key, value) in [
                ("pipescope-origin", origin),
                ("pipescope-seq", seq_text.as_str()),
                ("pipescope-ts", now.as_str()),
            ] {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
        }
        let mut record = BaseRecord::<(), str>::to(topic)
            .partition(partition)
            .payload("x")
            .headers(headers);
        if let Some(ms) = record_ms {
            record = record.timestamp(ms);
        }
        producer.send(record).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// A topic created while the monitor reads is picked up at the next metadata refresh and read
/// from its start, so records written before that are counted, not lost (the same path as a
/// partition added later: tansu cannot add partitions); records without a trace are counted as
/// such.
#[test]
fn a_topic_created_while_reading_is_read_from_its_start() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[kafka.local]\nbootstrap = \"{bootstrap}\"\n\
             [flows.orders]\nhops = [{{ kafka = \"local\", topic = \"orders\" }}]\ngrace = \"1s\"\n"
        ),
    );
    let mut view = Value::Null;
    let looked = wait_until(TIMEOUT, || {
        view = monitor.flow("orders").unwrap_or_default();
        view["hops"][0]["reader"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no topic \"orders\""))
    });
    assert!(looked, "the reader never looked: {view}\n{}", monitor.log());
    assert_eq!(view["hops"][0]["reader"]["connected"], false);

    // Written before the monitor's next metadata refresh (every 10 s) finds the topic.
    create_topic(&bootstrap, "orders", 2);
    produce(&bootstrap, "orders", 0, Some("it-orders"), 0, 100);
    produce(&bootstrap, "orders", 1, Some("it-orders"), 0, 100);
    produce(&bootstrap, "orders", 1, None, 0, 3);

    let counted = wait_until(TIMEOUT, || {
        view = monitor.flow("orders").unwrap_or_default();
        view["hops"][0]["reader"]["partitions"] == 2
            && counter(&view["hops"][0]["figures"], "records") == 200
            && view["hops"][0]["reader"]["untraced"] == 3
    });
    assert!(
        counted,
        "not every record counted: {view}\n{}",
        monitor.log()
    );
    assert_eq!(view["hops"][0]["reader"]["connected"], true);
    let at = view["updated_ms"].as_u64().unwrap();
    assert!(wait_until(TIMEOUT, || {
        view = monitor.flow("orders").unwrap_or_default();
        view["updated_ms"].as_u64().unwrap_or(0) > at + 2_000
    }));
    let f = &view["hops"][0]["figures"];
    for zero in ["lost", "duplicated", "before_base", "late"] {
        assert_eq!(counter(f, zero), 0, "{zero}: {f}");
    }
    assert_eq!(f["streams"], 2, "one stream per partition: {f}");
}

/// The `[flows.machines]` monitor config over MQTT `machine/#` and Kafka `machine.data`.
fn machines_flow_config(mqtt: &str, bootstrap: &str) -> String {
    format!(
        "[mqtt.local]\nurl = \"{mqtt}\"\n[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"1s\"\n\
         [flows.machines]\nhops = [{{ mqtt = \"local\", filter = \"machine/#\" }}, {{ kafka = \"local\", topic = \"machine.data\" }}]\ngrace = \"2s\"\n"
    )
}

/// `machine.data` with `partitions` partitions, and the bridge carrying `machine/+/+/#` there.
fn bridge_machine_data(mqtt: &str, bootstrap: &str, partitions: i32) -> Part {
    create_topic(bootstrap, "machine.data", partitions);
    crate::pipeline::start_bridge(
        "bridge",
        free_port(),
        mqtt,
        bootstrap,
        "machine/+/+/#=machine.data",
        &[
            "--client-id",
            "it-bridge",
            "--partitions",
            &partitions.to_string(),
        ],
    )
}

/// Replays `file` (`{topic, payload}` lines) to MQTT at `rate` a second and `qos`, as origin
/// `it-sim`, to the end; returns the simulator's summary.
fn replay_to_mqtt(mqtt: &str, file: &std::path::Path, rate: u32, qos: u8) -> Value {
    let mut simulator = Part::builder(env!("CARGO_BIN_EXE_pipescope"), "simulate machines")
        .args([
            "simulate",
            "machines",
            "--mqtt",
            mqtt,
            "--replay",
            file.to_str().unwrap(),
            "--rate",
            &rate.to_string(),
            "--qos",
            &qos.to_string(),
            "--origin",
            "it-sim",
        ])
        .start();
    serde_json::from_str(&simulator.finish(TIMEOUT)).unwrap()
}

/// Waits until both of the machines flow's readers read (Kafka: `partitions` partitions).
fn wait_reading(monitor: &Monitor, partitions: u64) {
    let mut view = Value::Null;
    let reading = wait_until(TIMEOUT, || {
        view = monitor.flow("machines").unwrap_or_default();
        view["hops"][0]["reader"]["connected"] == true
            && view["hops"][1]["reader"]["connected"] == true
            && view["hops"][1]["reader"]["partitions"] == partitions
    });
    assert!(
        reading,
        "the readers never started: {view}\n{}",
        monitor.log()
    );
}

/// Runs the machines simulator to the end: `count` traced messages at `qos`, origin `origin`.
fn simulate(mqtt: &str, count: u64, qos: &str, origin: &str) -> Value {
    let mut simulator = Part::builder(env!("CARGO_BIN_EXE_pipescope"), "simulate machines")
        .args([
            "simulate",
            "machines",
            "--mqtt",
            mqtt,
            "--machines",
            "5",
            "--sensors",
            "2",
            "--rate",
            "1000",
            "--qos",
            qos,
            "--count",
            &count.to_string(),
            "--origin",
            origin,
        ])
        .start();
    serde_json::from_str(&simulator.finish(TIMEOUT)).unwrap()
}

/// Waits until the flow view satisfies `done`, then for one more grace period (2 s) and a
/// tick, so that open gaps have been judged; returns the settled view.
fn settle(monitor: &Monitor, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut view = Value::Null;
    let reached = wait_until(TIMEOUT, || {
        view = monitor.flow("machines").unwrap_or_default();
        done(&view)
    });
    assert!(reached, "{what}: {view}\n{}", monitor.log());
    let at = view["updated_ms"].as_u64().unwrap();
    let settled = wait_until(TIMEOUT, || {
        view = monitor.flow("machines").unwrap_or_default();
        view["updated_ms"].as_u64().unwrap_or(0) > at + 3_000
    });
    assert!(settled, "the flow stopped ticking: {view}");
    view
}

/// The bridge drops and duplicates messages on purpose (`--inject-drop 0.05
/// --inject-duplicate 0.03 --inject-seed 7`): the edge between MQTT and Kafka counts exactly
/// the dropped messages of its report as lost and the duplicated ones as duplicated; the MQTT
/// hop loses nothing.
#[test]
fn faults_injected_by_the_bridge_are_counted_exactly_on_the_edge() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let tansu = Tansu::start();
    let (mqtt, bootstrap) = (mosquitto.url(), tansu.bootstrap());
    create_topic(&bootstrap, "machine.data", 2);
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("faults.jsonl");
    let bridge = Part::builder(env!("CARGO_BIN_EXE_pipescope"), "bridge")
        .args([
            "bridge",
            "--mqtt",
            &mqtt,
            "--kafka",
            &bootstrap,
            "--map",
            "machine/+/+/#=machine.data",
            "--client-id",
            "it-bridge",
            "--partitions",
            "2",
            "--inject-drop",
            "0.05",
            "--inject-duplicate",
            "0.03",
            "--inject-seed",
            "7",
            "--inject-report",
            report_path.to_str().unwrap(),
        ])
        .start();
    bridge.wait_metric("pipescope_bridge_mqtt_subscribed", TIMEOUT, |v| v == 1.0);
    let monitor = Monitor::start(dir.path(), &machines_flow_config(&mqtt, &bootstrap));
    wait_reading(&monitor, 2);

    let sent: u64 = 2_000;
    let summary = simulate(&mqtt, sent, "1", "it-sim");
    assert_eq!(summary["acked"], sent);
    bridge.wait_metric("pipescope_bridge_in_flight_messages", TIMEOUT, |v| v == 0.0);
    let handled = wait_until(TIMEOUT, || {
        bridge.metric("pipescope_bridge_messages_received_total") == Some(sent as f64)
    });
    assert!(handled, "the bridge did not take every message");

    let report = std::fs::read_to_string(&report_path).unwrap();
    let lines: Vec<Value> = report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |fault: &str| lines.iter().filter(|l| l["fault"] == fault).count() as u64;
    let (dropped, duplicated) = (count("drop"), count("duplicate"));
    assert!(
        dropped > 50 && duplicated > 30,
        "about 5 % and 3 % of {sent}: {dropped} dropped, {duplicated} duplicated"
    );
    for line in &lines {
        assert_eq!(line["origin"], "it-sim", "{line}");
        assert!(
            line["stream"].as_str().unwrap().starts_with("machine/"),
            "{line}"
        );
    }
    assert_eq!(
        bridge.metric("pipescope_bridge_injected_drops_total"),
        Some(dropped as f64)
    );
    assert_eq!(
        bridge.metric("pipescope_bridge_injected_duplicates_total"),
        Some(duplicated as f64)
    );

    // Every stream began after the monitor's readers were in place, so each dropped message is
    // lost between the hops, a stream's first ones included (docs/completeness.md).
    let lost = dropped;
    let view = settle(&monitor, "not every message counted", |v| {
        counter(&v["hops"][0]["figures"], "records") == sent
            && counter(&v["edges"][0]["figures"], "matched") == sent - dropped
            && counter(&v["edges"][0]["figures"], "lost") == lost
    });
    let mqtt_hop = &view["hops"][0]["figures"];
    for zero in ["lost", "duplicated", "late"] {
        assert_eq!(counter(mqtt_hop, zero), 0, "MQTT hop {zero}: {mqtt_hop}");
    }
    let kafka_hop = &view["hops"][1]["figures"];
    assert_eq!(
        counter(kafka_hop, "records"),
        sent - dropped + duplicated,
        "{kafka_hop}"
    );
    assert_eq!(counter(kafka_hop, "duplicated"), duplicated, "{kafka_hop}");
    let edge = &view["edges"][0]["figures"];
    assert_eq!(counter(edge, "lost"), lost, "{edge}");
    assert_eq!(counter(edge, "before_downstream_base"), 0, "{edge}");
    assert_eq!(counter(edge, "duplicated"), duplicated, "{edge}");
    assert_eq!(counter(edge, "late"), 0, "{edge}");
    eprintln!(
        "injected: {dropped} dropped, {duplicated} duplicated of {sent}; took {:?}",
        started.elapsed()
    );
}

/// Counts `machine.data` as the monitor should: every record's trace in the stream its
/// `pipescope-stream` header names.
fn tally_machine_data(bootstrap: &str, partitions: i32) -> TraceTally {
    let mut tally = TraceTally::new();
    crate::pipeline::read_topic(bootstrap, "machine.data", partitions, TIMEOUT, |m| {
        let headers = m.headers().expect("a traced record has headers");
        let pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|h| (h.key, h.value.unwrap_or_default()))
            .collect();
        let trace = TraceHeader::decode(pairs.iter().copied())
            .expect("a well-formed trace")
            .expect("a trace");
        let stream = pairs
            .iter()
            .find(|(k, _)| *k == STREAM)
            .map(|(_, v)| std::str::from_utf8(v).unwrap().to_owned())
            .expect("the bridge names the stream");
        tally.record(&trace, &stream);
        false
    });
    tally
}

/// The bridge killed with `kill -9` mid-stream and restarted: the messages it had written but
/// not acknowledged come again. The edge between MQTT and Kafka counts exactly the duplicates
/// a full read of the topic finds, and nothing lost.
#[test]
fn a_bridge_killed_mid_stream_gives_exactly_the_duplicates_in_kafka_and_no_loss() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let tansu = Tansu::start();
    let (mqtt, bootstrap) = (mosquitto.url(), tansu.bootstrap());
    create_topic(&bootstrap, "machine.data", 2);
    let map = "machine/+/+/#=machine.data";
    let bridge_args = [
        "--client-id",
        "it-bridge",
        "--max-in-flight",
        "500",
        "--partitions",
        "2",
    ];
    let port = free_port();
    let mut bridge =
        crate::pipeline::start_bridge("bridge", port, &mqtt, &bootstrap, map, &bridge_args);
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(dir.path(), &machines_flow_config(&mqtt, &bootstrap));
    wait_reading(&monitor, 2);

    let sent: u64 = 6_000;
    let mut simulator = Part::builder(env!("CARGO_BIN_EXE_pipescope"), "simulate machines")
        .args([
            "simulate",
            "machines",
            "--mqtt",
            &mqtt,
            "--machines",
            "5",
            "--sensors",
            "2",
            "--rate",
            "2000",
            "--qos",
            "1",
            "--count",
            &sent.to_string(),
            "--origin",
            "it-sim",
        ])
        .start();
    bridge.wait_metric("pipescope_bridge_records_delivered_total", TIMEOUT, |v| {
        v >= (sent / 4) as f64
    });
    bridge.kill9();
    drop(bridge);
    let bridge = crate::pipeline::start_bridge(
        "bridge (restarted)",
        port,
        &mqtt,
        &bootstrap,
        map,
        &bridge_args,
    );
    let summary: Value = serde_json::from_str(&simulator.finish(TIMEOUT)).unwrap();
    assert_eq!(summary["acked"], sent);
    crate::pipeline::wait_drained(&bridge, &bootstrap, 2, sent);
    let tally = tally_machine_data(&bootstrap, 2);
    assert_eq!(tally.distinct(), sent, "every message is in Kafka");
    assert_eq!(tally.gaps(), 0);
    let duplicates = tally.duplicates();

    let view = settle(&monitor, "not every message counted", |v| {
        counter(&v["hops"][0]["figures"], "records") == sent
            && counter(&v["edges"][0]["figures"], "matched") == sent
            && counter(&v["hops"][1]["figures"], "duplicated") == duplicates
    });
    let mqtt_hop = &view["hops"][0]["figures"];
    let kafka_hop = &view["hops"][1]["figures"];
    let edge = &view["edges"][0]["figures"];
    for zero in ["lost", "duplicated", "late"] {
        assert_eq!(counter(mqtt_hop, zero), 0, "MQTT hop {zero}: {mqtt_hop}");
    }
    assert_eq!(
        counter(kafka_hop, "records"),
        sent + duplicates,
        "{kafka_hop}"
    );
    assert_eq!(counter(kafka_hop, "lost"), 0, "{kafka_hop}");
    assert_eq!(counter(edge, "duplicated"), duplicates, "{edge}");
    for zero in ["lost", "late", "downstream_only"] {
        assert_eq!(counter(edge, zero), 0, "edge {zero}: {edge}");
    }
    eprintln!(
        "bridge kill -9: {duplicates} duplicates of {sent}; took {:?}",
        started.elapsed()
    );
}

/// Starts the machines simulator in the background: `count` QoS 1 messages at `rate` per
/// second, with `origin` or, when `None`, its default origin (which includes its start time).
fn start_simulator(mqtt: &str, count: u64, rate: u64, origin: Option<&str>) -> Part {
    let (count, rate) = (count.to_string(), rate.to_string());
    let mut args = vec![
        "simulate",
        "machines",
        "--mqtt",
        mqtt,
        "--machines",
        "5",
        "--sensors",
        "2",
        "--rate",
        &rate,
        "--qos",
        "1",
        "--count",
        &count,
    ];
    if let Some(origin) = origin {
        args.extend(["--origin", origin]);
    }
    Part::builder(env!("CARGO_BIN_EXE_pipescope"), "simulate machines")
        .args(args)
        .start()
}

/// No false alarms: the monitor itself restarted mid-stream (a new process, same config: its
/// streams start a new base), then the simulator killed mid-stream and a new one started (a
/// new origin): nothing lost, nothing duplicated, at either hop or on the edge.
#[test]
fn a_monitor_restart_and_a_new_simulator_are_not_loss() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let tansu = Tansu::start();
    let (mqtt, bootstrap) = (mosquitto.url(), tansu.bootstrap());
    let bridge = bridge_machine_data(&mqtt, &bootstrap, 2);
    let dir = tempfile::tempdir().unwrap();
    let config = machines_flow_config(&mqtt, &bootstrap);
    let first = Monitor::start(dir.path(), &config);
    wait_reading(&first, 2);

    // The monitor is killed and started again while the simulator publishes.
    let sent: u64 = 6_000;
    let mut simulator = start_simulator(&mqtt, sent, 1_000, Some("it-sim"));
    let mut view = Value::Null;
    let counting = wait_until(TIMEOUT, || {
        view = first.flow("machines").unwrap_or_default();
        counter(&view["hops"][1]["figures"], "records") >= 1_000
    });
    assert!(counting, "the first monitor counted nothing: {view}");
    drop(first);
    let monitor = Monitor::start(dir.path(), &config);
    wait_reading(&monitor, 2);
    let summary: Value = serde_json::from_str(&simulator.finish(TIMEOUT)).unwrap();
    assert_eq!(summary["acked"], sent);

    // The simulator is killed mid-stream; a new one (default origin) goes on.
    let mut killed = start_simulator(&mqtt, 100_000, 1_000, None);
    let publishing = wait_until(TIMEOUT, || {
        killed
            .metric("pipescope_simulate_machines_messages_sent_total")
            .is_some_and(|v| v >= 500.0)
    });
    assert!(publishing, "the second simulator never published");
    killed.kill9();
    let mut next = start_simulator(&mqtt, 1_000, 1_000, None);
    let summary: Value = serde_json::from_str(&next.finish(TIMEOUT)).unwrap();
    assert_eq!(summary["acked"], 1_000);
    bridge.wait_metric("pipescope_bridge_in_flight_messages", TIMEOUT, |v| v == 0.0);

    let view = settle(&monitor, "the second monitor counted nothing", |v| {
        let mqtt_records = counter(&v["hops"][0]["figures"], "records");
        let edge = &v["edges"][0]["figures"];
        let judged = counter(edge, "matched")
            + counter(edge, "before_downstream_base")
            + counter(edge, "lost");
        mqtt_records > 1_000 && judged == mqtt_records
    });
    for hop in 0..2 {
        let f = &view["hops"][hop]["figures"];
        for zero in ["lost", "duplicated", "late"] {
            assert_eq!(counter(f, zero), 0, "hop {hop} {zero}: {f}");
        }
    }
    let edge = &view["edges"][0]["figures"];
    for zero in ["lost", "duplicated", "late"] {
        assert_eq!(counter(edge, zero), 0, "edge {zero}: {edge}");
    }
    assert!(
        view["hops"][0]["figures"]["streams"].as_u64().unwrap() >= 20,
        "two origins' streams: {view}"
    );
    eprintln!("took {:?}", started.elapsed());
}

/// A bridge given `--origin` stamps untraced messages, numbered per partition; its records
/// also carry `mqtt-topic`. The reader follows the records' `pipescope-stream` header, so two
/// MQTT topics sharing a partition are one stream with no gaps (judged per MQTT topic, as the
/// reader did before the header, every other number would be missing).
#[test]
fn traces_a_bridge_stamps_under_its_own_origin_count_per_partition() {
    let mosquitto = Mosquitto::start();
    let tansu = Tansu::start();
    let (mqtt, bootstrap) = (mosquitto.url(), tansu.bootstrap());
    create_topic(&bootstrap, "plant.data", 1);
    let bridge = crate::pipeline::start_bridge(
        "bridge",
        free_port(),
        &mqtt,
        &bootstrap,
        "plant/+=plant.data",
        &[
            "--client-id",
            "it-bridge",
            "--origin",
            "plant-gw",
            "--partitions",
            "1",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[kafka.local]\nbootstrap = \"{bootstrap}\"\n\
             [flows.plant]\nhops = [{{ kafka = \"local\", topic = \"plant.data\" }}]\ngrace = \"1s\"\n"
        ),
    );
    let mut view = Value::Null;
    assert!(
        wait_until(TIMEOUT, || {
            view = monitor.flow("plant").unwrap_or_default();
            view["hops"][0]["reader"]["partitions"] == 1
        }),
        "the reader never started: {view}"
    );
    for i in 0..20 {
        let topic = if i % 2 == 0 { "plant/a" } else { "plant/b" };
        crate::pipeline::mosquitto_pub(mosquitto.port, topic, b"{}");
    }
    bridge.wait_metric("pipescope_bridge_records_delivered_total", TIMEOUT, |v| {
        v == 20.0
    });
    let counted = wait_until(TIMEOUT, || {
        view = monitor.flow("plant").unwrap_or_default();
        counter(&view["hops"][0]["figures"], "records") == 20
    });
    assert!(counted, "not every record counted: {view}");
    let at = view["updated_ms"].as_u64().unwrap();
    assert!(wait_until(TIMEOUT, || {
        view = monitor.flow("plant").unwrap_or_default();
        view["updated_ms"].as_u64().unwrap_or(0) > at + 2_000
    }));
    let f = &view["hops"][0]["figures"];
    assert_eq!(counter(f, "lost"), 0, "{f}");
    assert_eq!(f["streams"], 1, "one stream, the partition: {f}");
    assert!(f["by_kind"]["plant"].is_object(), "{f}");
}

/// MQTT QoS 0 messages dropped by the broker: mosquitto drops QoS 0 messages for a client whose
/// socket is full and whose queue is past `max_queued_messages`. The bridge is paused (SIGSTOP)
/// while the simulator replays large QoS 0 messages; the monitor's own subscription keeps up.
/// Lost between MQTT and Kafka: exactly what the simulator sent minus what is in Kafka (those at
/// the start of a stream are below the Kafka hop's base instead); what the bridge delivers once
/// resumed, after the grace, is late; nothing lost at the MQTT hop.
#[test]
fn qos_0_messages_a_broker_drops_for_a_paused_bridge_are_lost_on_the_edge_exactly() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start_with(MosquittoOptions {
        extra_config: "max_queued_messages 10\n".into(),
        ..Default::default()
    });
    let tansu = Tansu::start();
    let (mqtt, bootstrap) = (mosquitto.url(), tansu.bootstrap());
    let bridge = bridge_machine_data(&mqtt, &bootstrap, 1);
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(dir.path(), &machines_flow_config(&mqtt, &bootstrap));
    wait_reading(&monitor, 1);

    // Large payloads fill the paused bridge's socket, then the broker's queue for it.
    let sent: u64 = 20_000;
    let replay = dir.path().join("replay.jsonl");
    let padding = "x".repeat(2_000);
    let lines: Vec<String> = (0..sent)
        .map(|i| {
            serde_json::json!({"topic": format!("machine/l/m{}/v", i % 5), "payload": padding})
                .to_string()
        })
        .collect();
    std::fs::write(&replay, lines.join("\n")).unwrap();
    let signal = |name: &str| {
        let status = Command::new("kill")
            .args([name, &bridge.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {name}");
    };
    signal("-STOP");
    let summary = replay_to_mqtt(&mqtt, &replay, 10000, 0);
    assert_eq!(summary["sent"], sent);
    // The monitor's own subscription has every message before the bridge goes on.
    let mut view = Value::Null;
    let all_at_mqtt = wait_until(TIMEOUT, || {
        view = monitor.flow("machines").unwrap_or_default();
        counter(&view["hops"][0]["figures"], "records") == sent
    });
    assert!(
        all_at_mqtt,
        "the monitor's MQTT hop missed messages: {view}"
    );
    signal("-CONT");
    let view = settle(&monitor, "the edge never judged every message", |v| {
        let edge = &v["edges"][0]["figures"];
        // Those the paused bridge delivered after the grace are late, the rest lost.
        counter(edge, "matched")
            + counter(edge, "late")
            + counter(edge, "before_downstream_base")
            + counter(edge, "lost")
            == sent
    });
    bridge.wait_metric("pipescope_bridge_in_flight_messages", TIMEOUT, |v| v == 0.0);
    let in_kafka = tally_machine_data(&bootstrap, 1);
    let missing = sent - in_kafka.distinct();
    assert!(
        missing > 0,
        "the broker dropped nothing: the test made no loss"
    );
    assert_eq!(in_kafka.duplicates(), 0);
    let mqtt_hop = &view["hops"][0]["figures"];
    for zero in ["lost", "duplicated"] {
        assert_eq!(counter(mqtt_hop, zero), 0, "MQTT hop {zero}: {mqtt_hop}");
    }
    let edge = &view["edges"][0]["figures"];
    assert_eq!(
        counter(edge, "matched") + counter(edge, "late"),
        in_kafka.distinct(),
        "{edge}"
    );
    assert_eq!(counter(edge, "lost"), missing, "{edge}");
    assert_eq!(counter(edge, "before_downstream_base"), 0, "{edge}");
    assert_eq!(counter(edge, "duplicated"), 0, "{edge}");
    eprintln!(
        "QoS 0: {missing} of {sent} dropped by the broker, {} lost and {} late on the edge; took {:?}",
        counter(edge, "lost"),
        counter(edge, "late"),
        started.elapsed()
    );
}

/// `process machines` names the traced readings each window took in (`pipescope-inputs`), and
/// the flow reads its output topic with `inputs = true`: the edge from `machine.data` to
/// `machine.out` matches every reading that made it into a window, and counts the ones the
/// processor dropped as late as lost inside it — exactly. The bridge's edge loses nothing.
#[test]
fn readings_a_processor_drops_as_late_are_lost_between_its_input_and_output() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let tansu = Tansu::start();
    let (mqtt, bootstrap) = (mosquitto.url(), tansu.bootstrap());
    create_topic(&bootstrap, "machine.out", 1);
    let _bridge = bridge_machine_data(&mqtt, &bootstrap, 1);
    let _processor = crate::pipeline::start_part(
        "process machines",
        &[
            "process",
            "machines",
            "--kafka",
            &bootstrap,
            "--window",
            "1s",
            "--commit-interval",
            "200ms",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[mqtt.local]\nurl = \"{mqtt}\"\n[kafka.local]\nbootstrap = \"{bootstrap}\"\n\
         [flows.machines]\nhops = [{{ mqtt = \"local\", filter = \"machine/#\" }}, {{ kafka = \"local\", topic = \"machine.data\" }}, {{ kafka = \"local\", topic = \"machine.out\", inputs = true }}]\ngrace = \"3s\"\n"
    );
    let monitor = Monitor::start(dir.path(), &config);
    let mut view = Value::Null;
    let reading = wait_until(TIMEOUT, || {
        view = monitor.flow("machines").unwrap_or_default();
        (0..3).all(|hop| view["hops"][hop]["reader"]["connected"] == true)
    });
    assert!(
        reading,
        "the readers never started: {view}\n{}",
        monitor.log()
    );

    // 40 readings of now, then 6 from a minute ago: the window of those closed long since.
    let (on_time, late) = (40u64, 6u64);
    let now = pipescope_testkit::now_ms() as u64;
    let reading = |ts: u64| {
        serde_json::json!({"topic": "machine/l1/m1/temp",
            "payload": {"line": "l1", "machine": "m1", "sensor": "temp", "value": 1.0, "ts": ts}})
        .to_string()
    };
    let lines: Vec<String> = (0..on_time)
        .map(|i| reading(now + i * 5))
        .chain((0..late).map(|i| reading(now - 60_000 + i)))
        .collect();
    let replay = dir.path().join("replay.jsonl");
    std::fs::write(&replay, lines.join("\n")).unwrap();
    let summary = replay_to_mqtt(&mqtt, &replay, 1000, 1);
    assert_eq!(summary["acked"], on_time + late);
    // An untraced reading well ahead moves the processor's watermark past every window.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let flush = serde_json::json!({"line": "l1", "machine": "m9", "sensor": "temp", "value": 0.0, "ts": now + 10_000}).to_string();
    producer
        .send(BaseRecord::<(), str>::to("machine.data").payload(&flush))
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();

    let view = settle(
        &monitor,
        "the processor's output never named every reading",
        |v| {
            let inside = &v["edges"][1]["figures"];
            counter(inside, "matched") == on_time && counter(inside, "lost") == late
        },
    );
    let bridge_edge = &view["edges"][0]["figures"];
    assert_eq!(
        counter(bridge_edge, "matched"),
        on_time + late,
        "{bridge_edge}"
    );
    for zero in ["lost", "duplicated", "before_downstream_base"] {
        assert_eq!(
            counter(bridge_edge, zero),
            0,
            "bridge edge {zero}: {bridge_edge}"
        );
    }
    let inside = &view["edges"][1]["figures"];
    assert_eq!(
        view["edges"][1]["upstream"], "kafka:local:machine.data",
        "{view}"
    );
    for (name, want) in [
        ("matched", on_time),
        ("lost", late),
        ("duplicated", 0),
        ("before_downstream_base", 0),
        ("downstream_only", 0),
    ] {
        assert_eq!(
            counter(inside, name),
            want,
            "processor edge {name}: {inside}"
        );
    }
    let output_hop = &view["hops"][2];
    assert_eq!(
        counter(&output_hop["figures"], "records"),
        on_time,
        "{output_hop}"
    );
    assert_eq!(output_hop["reader"]["untraced"], 0, "{output_hop}");
    eprintln!("took {:?}", started.elapsed());
}

/// `process calls` names the traced calls each changelog record of its state took in: through
/// a kill -9 and restart of the processor and a second instance joining its group (a
/// rebalance), the edge from `calls` to the changelog matches every call exactly once — no
/// false loss, no false duplicates.
#[test]
fn a_processor_killed_and_rebalanced_keeps_every_call_exactly_once_on_its_edge() {
    let started = Instant::now();
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    // The grace covers the killed processor's outage (its session timeout, 6 s, then its
    // restart and restore): a call it copies after that is matched, not late.
    let config = format!(
        "[kafka.local]\nbootstrap = \"{bootstrap}\"\n\
         [flows.calls]\nhops = [{{ kafka = \"local\", topic = \"calls\" }}, {{ kafka = \"local\", topic = \"pipescope-process-calls-changelog\", inputs = true }}]\ngrace = \"30s\"\n"
    );
    let monitor = Monitor::start(dir.path(), &config);
    let flow = || monitor.flow("calls").unwrap_or_default();
    let mut view = Value::Null;
    let looked = wait_until(TIMEOUT, || {
        view = flow();
        view["hops"][0]["reader"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no topic"))
    });
    assert!(
        looked,
        "the readers never looked: {view}\n{}",
        monitor.log()
    );

    let long_log = dir.path().join("long-calls.log");
    let processor_args = crate::pipeline::process_calls_args(&bootstrap, &long_log);
    let processor_args: Vec<&str> = processor_args.iter().map(String::as_str).collect();
    let a = crate::pipeline::start_part("process calls A", &processor_args);
    a.wait_metric("pipescope_process_calls_owned_partitions", TIMEOUT, |_| {
        true
    });
    let calls = 4_000u64;
    let mut simulator = crate::pipeline::start_part(
        "simulate calls",
        &[
            "simulate",
            "calls",
            "--kafka",
            &bootstrap,
            "--calls-per-minute",
            "30000",
            "--count",
            &calls.to_string(),
            "--seed",
            "7",
            "--origin",
            "it-calls",
        ],
    );
    a.wait_metric("pipescope_process_calls_records_total", TIMEOUT, |v| {
        v >= 1_000.0
    });
    let a = crate::pipeline::kill_and_restart_after_session(
        "process calls A (restarted)",
        a,
        &processor_args,
    );
    a.wait_metric("pipescope_process_calls_records_total", TIMEOUT, |v| {
        v >= 500.0
    });
    let b = crate::pipeline::start_part("process calls B", &processor_args);
    b.wait_metric("pipescope_process_calls_owned_partitions", TIMEOUT, |v| {
        v >= 1.0
    });
    let summary: Value = serde_json::from_str(&simulator.finish(Duration::from_secs(90))).unwrap();
    assert_eq!(summary["calls"], calls);

    let settled = wait_until(Duration::from_secs(60), || {
        view = flow();
        let edge = &view["edges"][0]["figures"];
        counter(&view["hops"][0]["figures"], "records") == calls
            && counter(edge, "matched") == calls
    });
    assert!(
        settled,
        "the changelog never named every call once: {view}\n--- A ---\n{}\n--- B ---\n{}",
        a.log(),
        b.log()
    );
    // One grace more: nothing turns into loss or duplicates afterwards.
    let at = view["updated_ms"].as_u64().unwrap();
    assert!(wait_until(TIMEOUT, || {
        view = flow();
        view["updated_ms"].as_u64().unwrap_or(0) > at + 4_000
    }));
    let edge = &view["edges"][0]["figures"];
    for (name, want) in [
        ("matched", calls),
        ("lost", 0),
        ("duplicated", 0),
        ("before_downstream_base", 0),
        ("downstream_only", 0),
    ] {
        assert_eq!(counter(edge, name), want, "edge {name}: {edge}");
    }
    let calls_hop = &view["hops"][0]["figures"];
    assert_eq!(counter(calls_hop, "lost"), 0, "{calls_hop}");
    eprintln!("took {:?}", started.elapsed());
}
