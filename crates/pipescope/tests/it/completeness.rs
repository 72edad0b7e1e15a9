//! Observed flows in `pipescope run` against real brokers: the machines simulator publishes
//! traced QoS 1 messages to mosquitto, the bridge carries them to tansu, and the monitor reads
//! both hops and the edge between them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipescope_testkit::{Mosquitto, Part, Tansu, free_port, http_body, wait_until};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The monitor, killed when dropped; its log kept for failure messages.
struct Monitor {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Monitor {
    fn start(dir: &std::path::Path, config: &str) -> Self {
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

    fn flow(&self, name: &str) -> Option<Value> {
        let body = http_body(self.port, &format!("/api/v1/flows/{name}"))?;
        serde_json::from_str::<Value>(&body)
            .ok()
            .filter(|v| v.get("flow").is_some())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for r in runtime
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .unwrap()
    {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

fn counter(figures: &Value, name: &str) -> u64 {
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
fn produce(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    origin: Option<&str>,
    first: u64,
    count: u64,
) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let now = pipescope_testkit::now_ms().to_string();
    for seq in first..first + count {
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
        producer
            .send(
                BaseRecord::<(), str>::to(topic)
                    .partition(partition)
                    .payload("x")
                    .headers(headers),
            )
            .unwrap();
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
