//! The MQTT watcher against real mosquitto brokers (sys_interval 1), through its state, its JSON
//! API and /metrics.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use pipescope::bus::Bus;
use pipescope::mqtt::{ConnState, MqttBrokerState, MqttState, api, metrics, watcher};
use pipescope_core::{Clock, ManualClock, SystemClock};
use pipescope_testkit::{Mosquitto, MosquittoOptions, wait_until_async};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::task::JoinHandle;

/// A watcher of one broker named `b`, started from a configuration text.
struct Watch {
    state: MqttState,
    tasks: Vec<JoinHandle<()>>,
}

impl Watch {
    fn start(url: &str, extra: &str) -> Self {
        Self::start_with_clock(url, extra, Arc::new(SystemClock))
    }

    fn start_with_clock(url: &str, extra: &str, clock: Arc<dyn Clock>) -> Self {
        let text = format!("[mqtt.b]\nurl = \"{url}\"\n{extra}\n");
        let config = pipescope::config::parse("test.toml", &text, [])
            .unwrap_or_else(|e| panic!("bad test config: {e}"));
        let state = MqttState::new(&config.mqtt, clock);
        let broker = state.broker("b").unwrap().clone();
        let tasks = watcher::spawn(broker, config.mqtt["b"].clone(), Bus::new(16));
        Self { state, tasks }
    }

    fn broker(&self) -> &Arc<MqttBrokerState> {
        self.state.broker("b").unwrap()
    }

    fn router(&self) -> Router {
        api::router(self.state.clone())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        crate::support::get_json(self.router(), path).await
    }

    async fn tree(&self, root: &str, depth: usize) -> Value {
        let (status, json) = self
            .get(&format!(
                "/api/v1/mqtt/brokers/b/tree?root={}&depth={depth}",
                encode(root)
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json["tree"].clone()
    }

    /// Waits until the subscriptions are in place: the first `$SYS` message proves it.
    async fn wait_subscribed(&self) {
        let b = self.broker().clone();
        assert!(
            wait_until_async(Duration::from_secs(15), || b.sys().messages > 0).await,
            "no $SYS message within 15 s; connection: {:?}",
            b.connection().clone()
        );
    }

    fn messages(&self) -> u64 {
        self.broker().tree().summary().messages
    }

    /// What `/metrics` shows of the watcher.
    fn metrics_text(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(metrics::MqttCollector::new(self.state.clone())));
        pipescope::metrics::encode(&registry)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Five QoS 1 messages to `burst/a`, acknowledged by the broker and counted by the watcher.
async fn publish_burst_of_five(publisher: &Publisher, watch: &Watch) {
    for _ in 0..5 {
        publisher
            .publish("burst/a", QoS::AtLeastOnce, false, "42")
            .await;
    }
    publisher.wait_acked(5).await;
    assert!(wait_until_async(Duration::from_secs(10), || watch.messages() == 5).await);
}

/// A publishing client whose event loop runs in a task; `acked` counts PUBACKs and PUBCOMPs.
struct Publisher {
    client: AsyncClient,
    acked: Arc<Mutex<u64>>,
    task: JoinHandle<()>,
}

impl Publisher {
    fn connect(port: u16, id: &str) -> Self {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(10));
        options.set_max_packet_size(1 << 20, 1 << 20);
        Self::with_options(options)
    }

    fn with_options(options: MqttOptions) -> Self {
        let (client, mut eventloop) = AsyncClient::new(options, 1_000);
        let acked = Arc::new(Mutex::new(0u64));
        let counter = acked.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => {
                        *counter.lock().unwrap() += 1;
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Self {
            client,
            acked,
            task,
        }
    }

    async fn publish(&self, topic: &str, qos: QoS, retain: bool, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, qos, retain, payload.into())
            .await
            .unwrap();
    }

    async fn wait_acked(&self, n: u64) {
        let acked = self.acked.clone();
        assert!(
            wait_until_async(Duration::from_secs(30), || *acked.lock().unwrap() >= n).await,
            "only {} of {n} publishes acknowledged",
            self.acked.lock().unwrap()
        );
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn child<'a>(node: &'a Value, name: &str) -> &'a Value {
    node["children"]
        .as_array()
        .and_then(|c| c.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("no child {name:?} in {}", node["topic"]))
}

async fn known_tree_counts_are_exact(protocol: &str) {
    let broker = Mosquitto::start();
    let watch = Watch::start(&broker.url(), &format!("protocol = \"{protocol}\""));
    watch.wait_subscribed().await;
    // topic, messages, payload bytes, QoS
    let plan = [
        ("plant/a/temp", 30u64, 10usize, QoS::AtLeastOnce),
        ("plant/a/hum", 20, 5, QoS::ExactlyOnce),
        ("plant/b/temp", 10, 1, QoS::AtLeastOnce),
        ("plant", 4, 7, QoS::AtLeastOnce),
        ("office/x", 5, 0, QoS::AtMostOnce),
    ];
    // One client per topic: rumqttc 0.25 was seen losing a QoS 1 message that followed QoS 2
    // ones on the same client (mosquitto_sub saw it missing too).
    let mut publishers = Vec::new();
    for (i, (topic, n, size, qos)) in plan.into_iter().enumerate() {
        let publisher = Publisher::connect(broker.port, &format!("known-tree-{i}"));
        for _ in 0..n {
            publisher.publish(topic, qos, false, vec![b'x'; size]).await;
        }
        if qos != QoS::AtMostOnce {
            publisher.wait_acked(n).await;
        }
        // QoS 0 has no acknowledgement: the client stays up until its messages are counted.
        publishers.push(publisher);
    }
    if !wait_until_async(Duration::from_secs(10), || watch.messages() == 69).await {
        let sys = watch.broker().sys().clone();
        panic!(
            "counted {} of 69: {:?} {:?} {:?}",
            watch.messages(),
            watch.broker().connection().clone(),
            sys.metrics.get("$SYS/broker/publish/messages/received"),
            sys.metrics.get("$SYS/broker/publish/messages/sent"),
        );
    }
    let root = watch.tree("", 5).await;
    assert_eq!(root["messages"], 69);
    assert_eq!(root["bytes"], 30 * 10 + 20 * 5 + 10 + 4 * 7);
    assert_eq!(root["topics"], 5);
    assert_eq!(root["value"], 69.0);
    let plant = child(&root, "plant");
    assert_eq!(
        (plant["messages"].as_u64(), plant["bytes"].as_u64()),
        (Some(64), Some(438))
    );
    assert_eq!(plant["is_topic"], true);
    assert_eq!(plant["qos"], serde_json::json!([0, 44, 20]));
    let a = child(plant, "a");
    assert_eq!(
        (a["messages"].as_u64(), a["bytes"].as_u64()),
        (Some(50), Some(400))
    );
    assert_eq!(a["is_topic"], false);
    assert_eq!(child(a, "temp")["messages"], 30);
    assert_eq!(child(a, "temp")["qos"], serde_json::json!([0, 30, 0]));
    assert_eq!(child(a, "hum")["messages"], 20);
    assert_eq!(child(a, "hum")["qos"], serde_json::json!([0, 0, 20]));
    assert_eq!(child(a, "hum")["preview"]["text"], "xxxxx");
    assert_eq!(child(child(plant, "b"), "temp")["messages"], 10);
    let office = child(&root, "office");
    assert_eq!(
        (office["messages"].as_u64(), office["bytes"].as_u64()),
        (Some(5), Some(0))
    );
    assert_eq!(child(office, "x")["qos"], serde_json::json!([5, 0, 0]));
    // root and depth select the subtree
    let sub = watch.tree("plant/a", 0).await;
    assert_eq!(sub["topic"], "plant/a");
    assert_eq!(sub["messages"], 50);
    assert!(sub.get("children").is_none());
    assert_eq!(sub["children_count"], 2);
    // $SYS is not in the tree of "#"
    assert!(
        root["children"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "$SYS")
    );
    let (status, json) = watch.get("/api/v1/mqtt/brokers/b/tree?root=nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(json["error"].as_str().unwrap().contains("nope"), "{json}");
    let (status, json) = watch.get("/api/v1/mqtt/brokers/zz/tree").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        json["error"].as_str().unwrap().contains("configured: b"),
        "{json}"
    );
}

#[tokio::test]
async fn mqtt_known_tree_gives_exact_counts_at_every_level_v311() {
    known_tree_counts_are_exact("3.1.1").await;
}

#[tokio::test]
async fn mqtt_known_tree_gives_exact_counts_at_every_level_v5() {
    known_tree_counts_are_exact("5").await;
}

/// `{count, covered_s, per_minute}` of `window` ("1m", "5m", "15m") of a tree node.
fn window(node: &Value, window: &str) -> (f64, f64, Option<f64>) {
    let c = &node["rates"][window];
    (
        c["count"]
            .as_f64()
            .unwrap_or_else(|| panic!("no count in {c}")),
        c["covered_s"].as_f64().unwrap(),
        c["per_minute"].as_f64(),
    )
}

#[tokio::test]
async fn mqtt_a_burst_right_after_subscribing_reads_as_its_count_not_a_rate() {
    // The issue's case: 5 messages just after the monitor subscribed read 141.7/min in every
    // window. They are 5 messages over the few seconds watched, with no per-minute figure.
    let broker = Mosquitto::start();
    let watch = Watch::start(&broker.url(), "export_filters = [\"burst/#\"]");
    watch.wait_subscribed().await;
    let publisher = Publisher::connect(broker.port, "burst");
    publish_burst_of_five(&publisher, &watch).await;
    // The minute ends at the last 2 s edge: the burst is in it once its bucket is over.
    let mut node = Value::Null;
    for _ in 0..100 {
        node = watch.tree("burst/a", 0).await;
        if window(&node, "1m").0 == 5.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (count, covered_s, per_minute) = window(&node, "1m");
    assert_eq!((count, per_minute), (5.0, None), "{node}");
    let since = watch.broker().tree().summary().counting_since_ms.unwrap();
    let watched_s = (SystemClock.now_millis() - since) as f64 / 1000.0;
    assert!(
        covered_s > 0.0 && covered_s <= watched_s,
        "{covered_s} of {watched_s} s"
    );
    for w in ["5m", "15m"] {
        let (count, covered_s, per_minute) = window(&node, w);
        // Ending at the last 30 s edge, which may fall before or inside the burst.
        assert!(count <= 5.0, "{w}: {node}");
        assert!(covered_s <= watched_s, "{w}: {node}");
        assert_eq!(per_minute, None, "{w}: {node}");
    }
    // The subtree counts what its topic counts (read a moment later: its coverage may be on).
    let parent = window(&watch.tree("burst", 0).await, "1m");
    assert_eq!((parent.0, parent.2), (5.0, None));
    // Not covered: no per-minute series in /metrics yet, the counters are there.
    let text = watch.metrics_text();
    assert!(
        !text.contains("pipescope_mqtt_topic_messages_per_minute{"),
        "{text}"
    );
    assert!(text.contains("pipescope_mqtt_topic_messages_total{broker=\"b\",topic=\"burst/a\"} 5"));
    // Stopped: last seen stays, seconds since last grows.
    let last_seen = node["last_seen_ms"].clone();
    let mut later = Value::Null;
    for _ in 0..100 {
        later = watch.tree("burst/a", 0).await;
        if later["seconds_since_last"].as_f64().unwrap() >= 2.5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(later["last_seen_ms"], last_seen);
    let since_last = later["seconds_since_last"].as_f64().unwrap();
    assert!((2.5..15.0).contains(&since_last), "{since_last}");
    let parent_since = watch.tree("burst", 0).await["seconds_since_last"]
        .as_f64()
        .unwrap();
    assert!(
        (parent_since - since_last).abs() < 0.5,
        "{parent_since} vs {since_last}"
    );
}

#[tokio::test]
async fn mqtt_windows_are_covered_a_whole_window_after_subscribing_and_again_after_a_reconnection()
{
    // The watcher's clock is moved by hand (the broker and the connection are real), so the
    // windows' edges are where the test puts them.
    const T0: u64 = 1_700_000_010_000; // a 30 s edge
    let clock = ManualClock::at(T0);
    let mut broker = Mosquitto::start();
    let watch = Watch::start_with_clock(
        &broker.url(),
        "export_filters = [\"burst/#\"]\nreconnect_min = \"100ms\"\nreconnect_max = \"1s\"",
        Arc::new(clock.clone()),
    );
    watch.wait_subscribed().await;
    let b = watch.broker().clone();
    assert_eq!(b.tree().summary().counting_since_ms, Some(T0));
    let publisher = Publisher::connect(broker.port, "burst");
    publish_burst_of_five(&publisher, &watch).await;
    let per_minute_series = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("pipescope_mqtt_topic_messages_per_minute{"))
            .map(str::to_string)
            .collect()
    };
    clock.set(T0 + 4_000);
    let node = watch.tree("burst/a", 0).await;
    assert_eq!(window(&node, "1m"), (5.0, 4.0, None), "{node}");
    assert_eq!(window(&node, "5m"), (0.0, 0.0, None), "{node}");
    assert!(per_minute_series(&watch.metrics_text()).is_empty());
    // A minute watched: the 1-minute window is covered, the others not yet.
    clock.set(T0 + 60_000);
    let node = watch.tree("burst/a", 0).await;
    assert_eq!(window(&node, "1m"), (5.0, 60.0, Some(5.0)), "{node}");
    assert_eq!(window(&node, "5m"), (5.0, 60.0, None), "{node}");
    assert_eq!(
        per_minute_series(&watch.metrics_text()),
        [
            "pipescope_mqtt_topic_messages_per_minute{broker=\"b\",topic=\"burst/a\",window=\"1m\"} 5.0"
        ]
    );
    // Fifteen minutes watched: every window is covered.
    clock.set(T0 + 900_000);
    let node = watch.tree("burst/a", 0).await;
    assert_eq!(window(&node, "1m"), (0.0, 60.0, Some(0.0)), "{node}");
    assert_eq!(window(&node, "5m"), (0.0, 300.0, Some(0.0)), "{node}");
    assert_eq!(
        window(&node, "15m"),
        (5.0, 900.0, Some(5.0 / 15.0)),
        "{node}"
    );
    assert_eq!(per_minute_series(&watch.metrics_text()).len(), 3);
    // 3 more, then disconnected and subscribed again: what was published meanwhile was not
    // seen, so the windows start over from the new subscription, without what came before.
    for _ in 0..3 {
        publisher
            .publish("burst/a", QoS::AtLeastOnce, false, "42")
            .await;
    }
    publisher.wait_acked(8).await;
    assert!(wait_until_async(Duration::from_secs(10), || watch.messages() == 8).await);
    broker.kill();
    assert!(wait_until_async(Duration::from_secs(10), || b.connection().outages == 1).await);
    let back = T0 + 905_000;
    clock.set(back);
    broker.restart();
    assert!(
        wait_until_async(Duration::from_secs(15), || b.connection().connects == 2).await,
        "{:?}",
        b.connection().clone()
    );
    assert_eq!(b.tree().summary().counting_since_ms, Some(back));
    // Read at T0 + 935 s: the minute ends at the 2 s edge T0 + 934 s, the others at the 30 s
    // edge T0 + 930 s (whose 15 minutes hold the 3 sent before the outage).
    clock.set(back + 30_000);
    let node = watch.tree("burst/a", 0).await;
    for (w, covered_s) in [("1m", 29.0), ("5m", 25.0), ("15m", 25.0)] {
        assert_eq!(window(&node, w), (0.0, covered_s, None), "{w}: {node}");
    }
    assert!(per_minute_series(&watch.metrics_text()).is_empty());
}

#[tokio::test]
async fn mqtt_sys_values_are_parsed_and_typed() {
    let broker = Mosquitto::start();
    let watch = Watch::start(&broker.url(), "");
    watch.wait_subscribed().await;
    let publisher = Publisher::connect(broker.port, "retainer");
    for i in 0..3 {
        publisher
            .publish(&format!("kept/{i}"), QoS::AtLeastOnce, true, "v")
            .await;
    }
    publisher.wait_acked(3).await;
    let b = watch.broker().clone();
    let wanted = [
        "$SYS/broker/retained messages/count",
        "$SYS/broker/uptime",
        "$SYS/broker/bytes/received",
        "$SYS/broker/clients/connected",
        // a gauge whose topic ends in "total": its name must not end in _total
        "$SYS/broker/clients/total",
        "$SYS/broker/load/messages/received/1min",
    ];
    assert!(
        wait_until_async(Duration::from_secs(10), || {
            let sys = b.sys();
            wanted.iter().all(|t| sys.metrics.contains_key(*t))
                && sys.version.is_some()
                && sys.metrics["$SYS/broker/clients/connected"].metric.value >= 2.0
                // $SYS topics are retained: the first copy may be from before any client.
                && sys.metrics["$SYS/broker/bytes/received"].metric.value > 0.0
        })
        .await,
        "missing $SYS topics: {:?}",
        b.sys().metrics.keys().collect::<Vec<_>>()
    );
    let (status, sys) = watch.get("/api/v1/mqtt/brokers/b/sys").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sys["status"], "seen");
    assert!(
        sys["version"]
            .as_str()
            .unwrap()
            .starts_with("mosquitto version 2."),
        "{sys}"
    );
    let m = &sys["metrics"];
    let retained = &m["$SYS/broker/retained messages/count"];
    assert_eq!(retained["name"], "broker_retained_messages");
    assert_eq!(retained["kind"], "gauge");
    assert!(retained["value"].as_f64().unwrap() >= 3.0, "{retained}");
    assert_eq!(m["$SYS/broker/bytes/received"]["kind"], "counter");
    assert_eq!(
        m["$SYS/broker/bytes/received"]["name"],
        "broker_received_bytes_total"
    );
    assert!(m["$SYS/broker/bytes/received"]["value"].as_f64().unwrap() > 0.0);
    assert_eq!(m["$SYS/broker/clients/connected"]["kind"], "gauge");
    // the watcher and the publisher
    assert!(
        m["$SYS/broker/clients/connected"]["value"]
            .as_f64()
            .unwrap()
            >= 2.0
    );
    assert_eq!(m["$SYS/broker/uptime"]["name"], "broker_uptime_seconds");
    assert_eq!(
        m["$SYS/broker/load/messages/received/1min"]["labels"],
        serde_json::json!([["window", "1min"]])
    );
    // /metrics: typed families, valid for Prometheus.
    // promtool reads the Prometheus text format, which has no "info" type: only ours is checked.
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(metrics::MqttCollector::new(watch.state.clone())));
    let text = pipescope::metrics::encode(&registry);
    for line in [
        "# TYPE pipescope_mqtt_broker_received_bytes counter",
        "# TYPE pipescope_mqtt_broker_retained_messages gauge",
        "# TYPE pipescope_mqtt_connected gauge",
        "pipescope_mqtt_connected{broker=\"b\"} 1",
        "pipescope_mqtt_sys_seen{broker=\"b\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        text.contains("pipescope_mqtt_broker_info{broker=\"b\",version=\"mosquitto version 2.")
    );
    promtool_accepts(&text);
}

/// `promtool check metrics` reads the OpenMetrics exposition `text` as /metrics serves it to
/// promtool (Prometheus text) and its linter finds nothing (it exits 3 on a lint problem such as
/// a gauge named `_total`).
fn promtool_accepts(text: &str) {
    let text = &pipescope::metrics::openmetrics_to_prometheus_text(text);
    use std::io::Write;
    let promtool = pipescope_testkit::find_binary("promtool", "sudo apt-get install -y prometheus");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {said}\n{text}");
}

#[tokio::test]
async fn mqtt_broker_without_sys_is_shown_as_such() {
    let broker = Mosquitto::start_with(MosquittoOptions {
        extra_config: "sys_interval 0\n".into(),
        ..Default::default()
    });
    let watch = Watch::start(&broker.url(), "sys_wait = \"2s\"");
    let b = watch.broker().clone();
    assert!(
        wait_until_async(Duration::from_secs(10), || b.connection().state
            == ConnState::Connected)
        .await
    );
    let (_, brokers) = watch.get("/api/v1/mqtt/brokers").await;
    assert_eq!(brokers[0]["sys_status"], "waiting");
    assert!(
        wait_until_async(Duration::from_secs(10), || b.sys_status()
            == pipescope::mqtt::SysStatus::None)
        .await
    );
    let (_, brokers) = watch.get("/api/v1/mqtt/brokers").await;
    assert_eq!(brokers[0]["sys_status"], "none");
    assert_eq!(brokers[0]["sys_messages"], 0);
}

#[tokio::test]
async fn mqtt_broker_killed_and_restarted_reconnects_with_backoff_and_reports_the_outage() {
    let mut broker = Mosquitto::start();
    let watch = Watch::start(
        &broker.url(),
        "reconnect_min = \"200ms\"\nreconnect_max = \"5s\"",
    );
    watch.wait_subscribed().await;
    let b = watch.broker().clone();
    broker.kill();
    assert!(
        wait_until_async(Duration::from_secs(10), || b.connection().outages == 1).await,
        "{:?}",
        b.connection().clone()
    );
    // Let it fail a few times against the closed port.
    assert!(
        wait_until_async(Duration::from_secs(10), || b.connection().failed_attempts
            >= 5)
        .await
    );
    let (_, brokers) = watch.get("/api/v1/mqtt/brokers").await;
    assert_eq!(brokers[0]["connection"]["state"], "down");
    assert!(
        brokers[0]["connection"]["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect to MQTT broker b at mqtt://127.0.0.1:"),
        "{}",
        brokers[0]["connection"]
    );
    broker.restart();
    assert!(
        wait_until_async(Duration::from_secs(15), || b.connection().connects == 2).await,
        "{:?}",
        b.connection().clone()
    );
    let connection = b.connection().clone();
    assert_eq!(connection.state, ConnState::Connected);
    assert_eq!(connection.outages, 1);
    assert!(connection.outage_ms_total > 0);
    assert_eq!(connection.failed_attempts, 0);
    // Failures are spaced by a growing delay: jittered between half and all of 200 ms × 2^n.
    let failures: Vec<u64> = connection
        .events
        .iter()
        .filter(|e| e.state == ConnState::Down)
        .map(|e| e.time_ms)
        .collect();
    assert!(failures.len() >= 5, "{connection:?}");
    let gaps: Vec<u64> = failures.windows(2).map(|w| w[1] - w[0]).collect();
    // Delay n is at least half of 200 ms × 2^n (a loaded machine only adds to it), and the
    // fourth is longer than the first can be.
    for (n, gap) in gaps.iter().take(4).enumerate() {
        assert!(*gap + 2 >= 100 << n, "delay {n} too short: {gaps:?}");
    }
    assert!(gaps[3] > 200, "delays do not grow: {gaps:?}");
    assert!(
        connection.events.iter().any(|e| e
            .message
            .starts_with("lost the connection to MQTT broker b")),
        "{connection:?}"
    );
    assert!(
        connection
            .events
            .back()
            .unwrap()
            .message
            .starts_with("reconnected")
    );
    // Subscribed again: new messages are counted.
    let before = watch.messages();
    let publisher = Publisher::connect(broker.port, "after-restart");
    publisher
        .publish("back/again", QoS::AtLeastOnce, false, "1")
        .await;
    publisher.wait_acked(1).await;
    assert!(wait_until_async(Duration::from_secs(10), || watch.messages() == before + 1).await);
    let series = metrics::broker_series(&b);
    let outages = series
        .iter()
        .find(|s| s.name == "pipescope_mqtt_outages_total")
        .unwrap();
    assert_eq!(outages.value, 1.0);
}

/// Everything the watcher logged while `f` ran (on this thread's runtime), at every level.
async fn logged<F: Future>(f: F) -> (F::Output, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let out = f.await;
    let text = String::from_utf8_lossy(&buffer.0.lock().unwrap()).to_string();
    (out, text)
}

#[tokio::test]
async fn mqtt_password_listener_right_and_wrong_credentials() {
    let broker = Mosquitto::start_with(MosquittoOptions {
        credentials: Some(("alice".into(), "wonderland-7Q".into())),
        ..Default::default()
    });
    let ((), logs) = logged(async {
        let good = Watch::start(
            &broker.url(),
            "username = \"alice\"\npassword = \"wonderland-7Q\"",
        );
        good.wait_subscribed().await;
        let (_, brokers) = good.get("/api/v1/mqtt/brokers").await;
        assert_eq!(brokers[0]["connection"]["state"], "connected");
        assert!(!brokers.to_string().contains("wonderland-7Q"));

        let bad = Watch::start(
            &broker.url(),
            "username = \"alice\"\npassword = \"not-the-Pa55word\"\nreconnect_min = \"100ms\"",
        );
        let b = bad.broker().clone();
        assert!(
            wait_until_async(Duration::from_secs(10), || b.connection().failed_attempts
                >= 2)
            .await,
            "{:?}",
            b.connection().clone()
        );
        let (_, brokers) = bad.get("/api/v1/mqtt/brokers").await;
        let connection = &brokers[0]["connection"];
        assert_eq!(connection["state"], "refused");
        let error = connection["last_error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!(
                "MQTT broker b ({}) refused user \"alice\" (",
                broker.url()
            )),
            "{error}"
        );
        assert!(
            error.contains("check mqtt.b.username and mqtt.b.password"),
            "{error}"
        );
        let everything = brokers.to_string();
        assert!(!everything.contains("not-the-Pa55word"), "{everything}");
        let (_, sys) = bad.get("/api/v1/mqtt/brokers/b/sys").await;
        assert!(!sys.to_string().contains("not-the-Pa55word"));
        let mut registry = pipescope::metrics::new_registry();
        registry.register_collector(Box::new(metrics::MqttCollector::new(bad.state.clone())));
        let text = pipescope::metrics::encode(&registry);
        assert!(
            text.contains("pipescope_mqtt_connection_state{broker=\"b\",state=\"refused\"} 1"),
            "{text}"
        );
    })
    .await;
    assert!(logs.contains("refused user \"alice\""), "{logs}");
    assert!(
        !logs.contains("not-the-Pa55word") && !logs.contains("wonderland-7Q"),
        "{logs}"
    );
}

#[tokio::test]
async fn mqtt_tls_listener_with_the_generated_ca() {
    let broker = Mosquitto::start_with(MosquittoOptions {
        tls: true,
        ..Default::default()
    });
    let url = broker.tls_url().unwrap();
    let ca = broker.ca.as_ref().unwrap().ca_cert.display().to_string();
    let good = Watch::start(&url, &format!("[mqtt.b.tls]\nca = \"{ca}\""));
    good.wait_subscribed().await;
    let publisher = Publisher::connect(broker.port, "plain-side");
    publisher
        .publish("over/tls", QoS::AtLeastOnce, false, "x")
        .await;
    publisher.wait_acked(1).await;
    assert!(wait_until_async(Duration::from_secs(10), || good.messages() == 1).await);
    // Without the CA the system's roots do not trust the broker: a TLS error naming it.
    let bad = Watch::start(&url, "reconnect_min = \"100ms\"");
    let b = bad.broker().clone();
    assert!(
        wait_until_async(Duration::from_secs(10), || b.connection().failed_attempts
            >= 1)
        .await,
        "{:?}",
        b.connection().clone()
    );
    let error = b.connection().last_error.clone().unwrap();
    assert!(
        error.starts_with(&format!("TLS with MQTT broker b at {url} failed"))
            || error.contains("cannot connect to MQTT broker b"),
        "{error}"
    );
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[tokio::test]
async fn mqtt_topic_cap_folds_new_topics_and_memory_stays_flat() {
    let broker = Mosquitto::start();
    let watch = Watch::start(&broker.url(), "max_topics = 1000");
    watch.wait_subscribed().await;
    let publisher = Publisher::connect(broker.port, "many-topics");
    let per_round = 10_000u64;
    let mut rss = Vec::new();
    for round in 0..6u64 {
        for i in 0..per_round {
            publisher
                .publish(
                    &format!("fleet/r{round}/dev{i}/temp"),
                    QoS::AtLeastOnce,
                    false,
                    vec![b'1'; 64],
                )
                .await;
        }
        publisher.wait_acked((round + 1) * per_round).await;
        let total = (round + 1) * per_round;
        assert!(
            wait_until_async(Duration::from_secs(30), || watch.messages() == total).await,
            "counted {} of {total}",
            watch.messages()
        );
        rss.push(rss_kib());
    }
    let summary = watch.broker().tree().summary();
    assert_eq!(summary.topics, 1000);
    assert_eq!(summary.folded_messages, 6 * per_round - 1000);
    let (_, brokers) = watch.get("/api/v1/mqtt/brokers").await;
    assert_eq!(brokers[0]["tree"]["folded_messages"], 6 * per_round - 1000);
    // Every message is still in the totals, folded ones under "(other)".
    let fleet = watch.tree("fleet", 2).await;
    assert_eq!(fleet["messages"], 6 * per_round);
    assert_eq!(fleet["bytes"], 6 * per_round * 64);
    let r0 = child(&fleet, "r0");
    assert_eq!(r0["messages"], per_round);
    assert_eq!(child(r0, "(other)")["messages"], per_round - 1000);
    assert_eq!(child(r0, "(other)")["folded"], true);
    assert_eq!(child(&fleet, "(other)")["messages"], 5 * per_round);
    // 1,001 children under fleet/r0: a limit of 10 shows 10 and sums the rest in "(more)".
    let (status, limited) = watch
        .get("/api/v1/mqtt/brokers/b/tree?root=fleet%2Fr0&depth=1&limit=10")
        .await;
    assert_eq!(status, StatusCode::OK);
    let children = limited["tree"]["children"].as_array().unwrap();
    assert_eq!(children.len(), 11);
    assert_eq!(children[0]["name"], "(other)");
    assert_eq!(children[10]["name"], "(more)");
    assert_eq!(children[10]["children_count"], 991);
    let sum: u64 = children
        .iter()
        .map(|c| c["messages"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, per_round);
    // Memory flat: the last rounds (50,000 new topics) add next to nothing.
    let growth = rss[5].saturating_sub(rss[1]);
    assert!(
        growth < 16 * 1024,
        "RSS grew {growth} KiB over 40,000 folded topics: {rss:?}"
    );
}

#[tokio::test]
async fn mqtt_odd_payloads_and_topics_are_handled() {
    let broker = Mosquitto::start();
    let watch = Watch::start(&broker.url(), "");
    watch.wait_subscribed().await;
    let mut options = MqttOptions::new("odd", "127.0.0.1", broker.port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let publisher = Publisher::with_options(options);
    let big = vec![b'z'; 256 * 1024];
    // mosquitto 2.0.11 takes at most 201 levels (it drops a publisher that sends more); the
    // 1,000-level topic is tested on the tree itself (pipescope-core) and on rumqttd.
    let deep = vec!["l"; 201].join("/");
    let long = "n".repeat(60 * 1024);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("odd/binary", vec![0x00, 0x01, 0xfe, 0xff]),
        ("odd/invalid-utf8", b"ab\xc3\x28cd".to_vec()),
        ("odd/empty", Vec::new()),
        ("odd/big", big.clone()),
        (&deep, b"deep".to_vec()),
        (&long, b"long".to_vec()),
    ];
    for (topic, payload) in &cases {
        publisher
            .publish(topic, QoS::AtLeastOnce, false, payload.clone())
            .await;
    }
    publisher.wait_acked(cases.len() as u64).await;
    assert!(
        wait_until_async(Duration::from_secs(10), || watch.messages() == 6).await,
        "counted {}; connection {:?}",
        watch.messages(),
        watch.broker().connection().clone()
    );
    let odd = watch.tree("odd", 1).await;
    let binary = &child(&odd, "binary")["preview"];
    assert_eq!(
        (binary["encoding"].as_str(), binary["text"].as_str()),
        (Some("hex"), Some("0001feff"))
    );
    let invalid = &child(&odd, "invalid-utf8")["preview"];
    assert_eq!(invalid["encoding"], "hex");
    assert_eq!(invalid["text"], "6162c3286364");
    let empty = &child(&odd, "empty")["preview"];
    assert_eq!(
        (empty["text"].as_str(), empty["size"].as_u64()),
        (Some(""), Some(0))
    );
    let big_node = child(&odd, "big");
    assert_eq!(big_node["bytes"], 256 * 1024);
    assert_eq!(big_node["preview"]["size"], 256 * 1024);
    assert_eq!(big_node["preview"]["truncated"], true);
    assert_eq!(big_node["preview"]["text"].as_str().unwrap().len(), 64);
    // The whole tree, as deep as it goes, is served and parses.
    let root = watch.tree("", 40).await;
    assert_eq!(root["messages"], 6);
    let mut depth = 0;
    let mut node = child(&root, "l");
    while let Some(next) = node["children"].as_array().and_then(|c| c.first()) {
        node = next;
        depth += 1;
    }
    assert_eq!(depth + 1, pipescope_core::mqtt::tree::MAX_DEPTH);
    assert_eq!(node["messages"], 1);
    let long_node = root["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with("nnn"))
        .unwrap();
    assert!(long_node["name"].as_str().unwrap().len() <= 1024 + 3);
    assert_eq!(long_node["messages"], 1);
    let summary = watch.broker().tree().summary();
    assert_eq!(summary.cut_topic_messages, 1);
    let connection = watch.broker().connection().clone();
    assert_eq!(
        (connection.connects, connection.outages),
        (1, 0),
        "{connection:?}"
    );
}

/// The embedded broker of the demo, on a free port, in a thread of its own (it never returns).
fn start_rumqttd() -> u16 {
    let port = pipescope_testkit::free_port();
    let text = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 100
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10
[v4.1]
name = "v4-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = 1048576
max_inflight_count = 100
dynamic_filters = true
"#
    );
    let config: rumqttd::Config = toml::from_str(&text).expect("rumqttd config");
    std::thread::spawn(move || {
        if let Err(e) = rumqttd::Broker::new(config).start() {
            eprintln!("rumqttd stopped: {e}");
        }
    });
    assert!(
        pipescope_testkit::wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "rumqttd did not listen on {port}"
    );
    port
}

#[tokio::test]
async fn mqtt_tree_works_on_embedded_rumqttd_with_a_thousand_level_topic() {
    let port = start_rumqttd();
    // This listener has no $SYS tree (the demo publishes one of its own).
    let watch = Watch::start(
        &format!("mqtt://127.0.0.1:{port}"),
        "sys_wait = \"2s\"\nsubscribe_sys = false",
    );
    let b = watch.broker().clone();
    assert!(
        wait_until_async(Duration::from_secs(10), || b.connection().state
            == ConnState::Connected)
        .await,
        "{:?}",
        b.connection().clone()
    );
    // rumqttd answers SUBACK without a message that says so: give the subscription a moment
    // by waiting for a probe message to come through.
    let publisher = Publisher::connect(port, "rumqttd-pub");
    assert!(
        wait_until_async(Duration::from_secs(10), || {
            if watch.messages() > 0 {
                return true;
            }
            let client = publisher.client.clone();
            tokio::spawn(async move {
                let _ = client.publish("probe", QoS::AtMostOnce, false, "p").await;
            });
            false
        })
        .await,
        "nothing arrived through rumqttd"
    );
    let deep = vec!["l"; 1000].join("/");
    let plan: [(&str, u64); 3] = [("site/a/temp", 7), ("site/b/temp", 3), (&deep, 2)];
    for (topic, n) in plan {
        for _ in 0..n {
            publisher.publish(topic, QoS::AtLeastOnce, false, "1").await;
        }
    }
    publisher.wait_acked(12).await;
    // Probes may still be arriving: count everything but them.
    let counted = || {
        let tree = b.tree();
        let now = b.clock.now_millis();
        let probes = tree.figures("probe", now).map_or(0, |f| f.messages);
        tree.summary().messages - probes
    };
    assert!(
        wait_until_async(Duration::from_secs(10), || counted() == 12).await,
        "counted {} of 12",
        counted()
    );
    // rumqttd delivers each message at the subscription's QoS instead of the lower of the
    // publisher's and the subscription's (MQTT-3.8.4-6; docs/brokers.md): the watcher records the
    // QoS it received, so there the QoS 0 probes show up in another column.
    let probe_qos = {
        let now = b.clock.now_millis();
        b.tree().figures("probe", now).expect("probe topic").qos
    };
    assert!(
        probe_qos[0] == 0 && probe_qos[2] > 0,
        "QoS 0 probes through rumqttd arrived as {probe_qos:?} (QoS 0, 1, 2): docs/brokers.md needs updating"
    );
    let site = watch.tree("site", 2).await;
    assert_eq!(site["messages"], 10);
    assert_eq!(child(child(&site, "a"), "temp")["messages"], 7);
    assert_eq!(child(child(&site, "b"), "temp")["messages"], 3);
    let l = watch.tree("l", 0).await;
    assert_eq!(l["messages"], 2);
    assert_eq!(watch.broker().tree().summary().cut_topic_messages, 2);
    // rumqttd publishes no $SYS: shown as such.
    assert!(
        wait_until_async(Duration::from_secs(10), || b.sys_status()
            == pipescope::mqtt::SysStatus::None)
        .await
    );
}

#[tokio::test]
async fn mqtt_export_filters_choose_the_per_topic_series_and_samples_reach_the_bus() {
    let broker = Mosquitto::start();
    let text = format!(
        "[mqtt.b]\nurl = \"{}\"\nexport_filters = [\"plant/+/temp\"]\nsample_interval = \"200ms\"\n",
        broker.url()
    );
    let config = pipescope::config::parse("test.toml", &text, []).unwrap();
    let state = MqttState::new(&config.mqtt, Arc::new(SystemClock));
    let bus = Bus::new(64);
    let mut samples = bus.subscribe();
    let tasks = watcher::spawn(
        state.broker("b").unwrap().clone(),
        config.mqtt["b"].clone(),
        bus.clone(),
    );
    let watch = Watch { state, tasks };
    watch.wait_subscribed().await;
    let publisher = Publisher::connect(broker.port, "exported");
    for topic in [
        "plant/a/temp",
        "plant/a/temp",
        "plant/a/hum",
        "plant/b/temp",
    ] {
        publisher
            .publish(topic, QoS::AtLeastOnce, false, "20")
            .await;
    }
    publisher.wait_acked(4).await;
    assert!(wait_until_async(Duration::from_secs(10), || watch.messages() == 4).await);
    let text = watch.metrics_text();
    assert!(
        text.contains("pipescope_mqtt_topic_messages_total{broker=\"b\",topic=\"plant/a/temp\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("pipescope_mqtt_topic_messages_total{broker=\"b\",topic=\"plant/b/temp\"} 1")
    );
    assert!(
        text.contains("pipescope_mqtt_topic_bytes_total{broker=\"b\",topic=\"plant/a/temp\"} 4")
    );
    // No window is covered seconds after subscribing: no per-minute figure yet.
    assert!(
        !text.contains("pipescope_mqtt_topic_messages_per_minute"),
        "{text}"
    );
    assert!(!text.contains("plant/a/hum"), "{text}");
    assert!(text.contains("pipescope_mqtt_messages_total{broker=\"b\"} 4"));
    promtool_accepts(&text);
    // The sampler publishes the same series, timestamped, on the bus.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let batch = tokio::time::timeout(Duration::from_secs(5), samples.recv())
            .await
            .expect("a sample batch within 5 s")
            .expect("the bus is open");
        let topic = batch.iter().find(|s| {
            s.metric == "pipescope_mqtt_topic_messages_total"
                && s.labels.get("topic") == Some("plant/a/temp")
        });
        if let Some(sample) = topic.filter(|s| s.value == 2.0) {
            assert_eq!(sample.labels.get("broker"), Some("b"));
            assert!(sample.time_ms > 1_600_000_000_000);
            assert!(
                batch
                    .iter()
                    .any(|s| s.metric == "pipescope_mqtt_connected" && s.value == 1.0)
            );
            break;
        }
        assert!(Instant::now() < deadline, "no sample of plant/a/temp = 2");
    }
}

#[test]
fn mqtt_pipescope_run_watches_the_configured_brokers() {
    use std::io::Read;
    let broker = Mosquitto::start_with(MosquittoOptions {
        credentials: Some(("svc".into(), "s3cret-Good".into())),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let port = pipescope_testkit::free_port();
    let config = dir.path().join("pipescope.toml");
    std::fs::write(
        &config,
        format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\n\
             [mqtt.good]\nurl = \"{url}\"\nusername = \"svc\"\n\
             [mqtt.bad]\nurl = \"{url}\"\nusername = \"svc\"\npassword = \"Wr0ng-pass\"\n",
            url = broker.url()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["run", "-c", config.to_str().unwrap()])
        .env("PIPESCOPE__MQTT__GOOD__PASSWORD", "s3cret-Good")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut brokers = Value::Null;
    let up = pipescope_testkit::wait_until(Duration::from_secs(15), || {
        let Some(body) = pipescope_testkit::http_body(port, "/api/v1/mqtt/brokers") else {
            return false;
        };
        brokers = serde_json::from_str(&body).unwrap_or(Value::Null);
        brokers[1]["sys_status"] == "seen" && brokers[0]["connection"]["state"] == "refused"
    });
    let metrics = pipescope_testkit::http_body(port, "/metrics").unwrap_or_default();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(up, "{brokers:#}\n{log}");
    assert_eq!(brokers[1]["name"], "good");
    assert_eq!(brokers[1]["connection"]["state"], "connected");
    assert!(
        metrics.contains("pipescope_mqtt_connected{broker=\"good\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("pipescope_mqtt_connected{broker=\"bad\"} 0"));
    assert!(metrics.contains("pipescope_build_info"));
    assert!(log.contains("MQTT broker bad"), "{log}");
    assert!(
        log.contains("check mqtt.bad.username and mqtt.bad.password"),
        "{log}"
    );
    for shown in [&log, &brokers.to_string(), &metrics] {
        assert!(
            !shown.contains("s3cret-Good") && !shown.contains("Wr0ng-pass"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn mqtt_a_hundred_thousand_topics_fit_in_bounded_memory() {
    let broker = Mosquitto::start();
    let before = rss_kib();
    let watch = Watch::start(&broker.url(), "");
    watch.wait_subscribed().await;
    let publisher = Publisher::connect(broker.port, "hundred-thousand");
    let n = 100_000u64;
    for i in 0..n {
        publisher
            .publish(
                &format!("site{}/line{}/machine{i}/temp", i % 10, i % 100),
                QoS::AtLeastOnce,
                false,
                vec![b'5'; 64],
            )
            .await;
    }
    publisher.wait_acked(n).await;
    assert!(
        wait_until_async(Duration::from_secs(60), || watch.messages() == n).await,
        "counted {} of {n}",
        watch.messages()
    );
    let summary = watch.broker().tree().summary();
    assert_eq!((summary.topics, summary.folded_messages), (100_000, 0));
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    eprintln!("RSS grew {grown_mib} MiB for 100,000 topics (watcher, publisher and test together)");
    assert!(
        grown_mib < 150,
        "RSS grew {grown_mib} MiB for 100,000 topics"
    );
    assert_eq!(watch.tree("", 1).await["messages"], n);
}

/// A broker hands stored retained messages to a new subscription with the retain flag set, and
/// live ones without it (MQTT 3.1.1 §3.3.1.3; v5 without retain-as-published): the tree shows
/// the flag of each topic's last message and counts the retained ones.
async fn retained_flag_from_a_real_broker(protocol: &str) {
    let broker = Mosquitto::start();
    let publisher = Publisher::connect(broker.port, "retainer");
    publisher
        .publish("site/r/1", QoS::AtLeastOnce, true, "stored one")
        .await;
    publisher
        .publish("site/r/2", QoS::AtLeastOnce, true, "stored two")
        .await;
    publisher.wait_acked(2).await;
    let watch = Watch::start(&broker.url(), &format!("protocol = \"{protocol}\""));
    watch.wait_subscribed().await;
    assert!(
        wait_until_async(Duration::from_secs(10), || watch.messages() == 2).await,
        "retained messages counted: {} of 2",
        watch.messages()
    );
    // Live messages on a subscribed topic, one of them published with retain: both arrive
    // without the flag.
    publisher
        .publish("site/r/1", QoS::AtLeastOnce, false, "live")
        .await;
    publisher
        .publish("site/r/3", QoS::AtLeastOnce, true, "retained, live")
        .await;
    publisher.wait_acked(4).await;
    assert!(
        wait_until_async(Duration::from_secs(10), || watch.messages() == 4).await,
        "messages counted: {} of 4",
        watch.messages()
    );
    let tree = watch.tree("site/r", 1).await;
    let (one, two, three) = (child(&tree, "1"), child(&tree, "2"), child(&tree, "3"));
    assert_eq!(
        (one["messages"].as_u64(), one["retained_messages"].as_u64()),
        (Some(2), Some(1)),
        "{one}"
    );
    assert_eq!(one["retained"], false, "last message was live: {one}");
    assert_eq!(two["retained"], true, "{two}");
    assert_eq!(two["retained_messages"], 1);
    assert_eq!(three["retained"], false, "{three}");
    assert_eq!(three["retained_messages"], 0);
    assert_eq!(tree["retained_messages"], 2, "subtree sum: {tree}");
    assert_eq!(tree["qos"], serde_json::json!([0, 4, 0]));
}

#[tokio::test]
async fn mqtt_retained_flag_and_count_from_a_real_broker_v311() {
    retained_flag_from_a_real_broker("3.1.1").await;
}

#[tokio::test]
async fn mqtt_retained_flag_and_count_from_a_real_broker_v5() {
    retained_flag_from_a_real_broker("5").await;
}

/// Publishes `size` bytes as one retained QoS 1 message with `mosquitto_pub`, so the test's own
/// memory (measured below) never holds it.
fn publish_retained_with_mosquitto_pub(port: u16, topic: &str, size: usize) {
    use std::io::Write;
    let program = pipescope_testkit::find_binary(
        "mosquitto_pub",
        "sudo apt-get install -y mosquitto-clients",
    );
    let mut child = std::process::Command::new(program)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-r",
            "-t",
            topic,
            "-s",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("start mosquitto_pub");
    let mut stdin = child.stdin.take().unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        stdin
            .write_all(&chunk[..n])
            .expect("write to mosquitto_pub");
        left -= n;
    }
    drop(stdin);
    let status = child.wait().expect("wait for mosquitto_pub");
    assert!(status.success(), "mosquitto_pub failed: {status}");
}

/// A retained message bigger than the watcher's max_packet_size must not blind it: the other
/// retained topics and every live message still arrive, the connection is not dropped over and
/// over, the monitor does not hold the message, and (3.1.1) the message is counted.
async fn an_oversized_retained_message_does_not_blind_the_watcher(protocol: &str) {
    const BIG: usize = 100 << 20;
    let broker = Mosquitto::start();
    let publisher = Publisher::connect(broker.port, "retainer");
    publisher
        .publish("a/small", QoS::AtLeastOnce, true, "1")
        .await;
    publisher.wait_acked(1).await;
    publish_retained_with_mosquitto_pub(broker.port, "b/big", BIG);
    publisher
        .publish("c/small", QoS::AtLeastOnce, true, "2")
        .await;
    publisher.wait_acked(2).await;

    let rss_before = rss_kib();
    let watch = Watch::start(&broker.url(), &format!("protocol = \"{protocol}\""));
    assert!(
        wait_until_async(Duration::from_secs(20), || watch.messages() >= 2).await,
        "the small retained messages were not counted ({}); connection: {:?}",
        watch.messages(),
        watch.broker().connection().clone()
    );
    watch.wait_subscribed().await;
    for _ in 0..5 {
        publisher
            .publish("live/x", QoS::AtLeastOnce, false, "42")
            .await;
    }
    publisher.wait_acked(7).await;
    assert!(
        wait_until_async(Duration::from_secs(10), || watch.messages() == 7).await,
        "live messages after the oversized one: {} of 7 counted",
        watch.messages()
    );
    let connection = watch.broker().connection().clone();
    assert_eq!(connection.connects, 1, "reconnected: {connection:?}");
    assert_eq!(connection.state, ConnState::Connected);
    let grew_kib = rss_kib().saturating_sub(rss_before);
    assert!(grew_kib < 40 << 10, "the watcher grew by {grew_kib} KiB");
    eprintln!("{protocol}: a {BIG}-byte retained message; the watcher grew by {grew_kib} KiB");
    let metrics = watch.metrics_text();
    let expected = if protocol == "3.1.1" { 1 } else { 0 };
    assert!(
        metrics.contains(&format!(
            "pipescope_mqtt_oversized_messages_total{{broker=\"b\"}} {expected}.0\n"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn mqtt_an_oversized_retained_message_does_not_blind_the_watcher_v311() {
    an_oversized_retained_message_does_not_blind_the_watcher("3.1.1").await;
}

#[tokio::test]
async fn mqtt_an_oversized_retained_message_does_not_blind_the_watcher_v5() {
    an_oversized_retained_message_does_not_blind_the_watcher("5").await;
}

/// The vendored rumqttd (the demo's broker) reads every packet type a client can send without
/// panicking: a v5 CONNACK or UNSUBACK from a client (types a server never receives) hit an
/// `unreachable!()` in its v5 reader and panicked the connection's task. Each is now a protocol
/// error, which closes that client only. Every type, with a body, through both readers.
#[test]
fn mqtt_rumqttd_refuses_every_unexpected_packet_type_without_panicking() {
    use rumqttd::protocol::{Protocol, v4::V4, v5::V5};
    for kind in 0u8..16 {
        for flags in [0u8, 2] {
            let frame = [(kind << 4) | flags, 2, 0, 1];
            let v5 = std::panic::catch_unwind(|| {
                V5.read_mut(&mut bytes::BytesMut::from(&frame[..]), 1024)
                    .map(|_| ())
            });
            assert!(v5.is_ok(), "the v5 reader panicked on {frame:02x?}");
            let v4 = std::panic::catch_unwind(|| {
                V4.read_mut(&mut bytes::BytesMut::from(&frame[..]), 1024)
                    .map(|_| ())
            });
            assert!(v4.is_ok(), "the v4 reader panicked on {frame:02x?}");
        }
    }
    // The two that did, as a client sends them: a protocol error.
    for frame in [[0x20, 2, 0, 0], [0xb0, 2, 0, 1]] {
        let read = V5.read_mut(&mut bytes::BytesMut::from(&frame[..]), 1024);
        assert!(read.is_err(), "{frame:02x?} read as {read:?}");
    }
}

/// The relay acknowledges the oversized QoS 1 and 2 messages it skips (PUBACK; PUBREC, then
/// PUBCOMP for the broker's PUBREL): unacknowledged, they would fill mosquitto's window of 20
/// messages in flight, and it would send the watcher nothing more at QoS 1 or 2. (QoS 2 comes in
/// two rounds that fit the window apart but not together: mosquitto 2.0.11 stalls queued QoS 2
/// messages for any subscriber, relay or not.)
#[tokio::test]
async fn mqtt_skipped_qos_1_and_2_messages_are_acknowledged_so_the_broker_keeps_sending_v311() {
    let broker = Mosquitto::start();
    let watch = Watch::start(
        &broker.url(),
        "protocol = \"3.1.1\"\nmax_packet_size = 1024\nsubscribe_qos = 2",
    );
    watch.wait_subscribed().await;
    let publisher = Publisher::connect(broker.port, "big-publisher");
    let skipped = || watch.broker().oversized_messages();
    let mut published = 0;
    for (qos, n) in [
        (QoS::AtLeastOnce, 30),
        (QoS::ExactlyOnce, 10),
        (QoS::ExactlyOnce, 15),
    ] {
        for _ in 0..n {
            publisher
                .publish("big/x", qos, false, vec![b'x'; 2048])
                .await;
        }
        published += n;
        assert!(
            wait_until_async(Duration::from_secs(10), || skipped() == published).await,
            "skipped {} of {published} ({qos:?} round)",
            skipped()
        );
    }
    for _ in 0..5 {
        publisher
            .publish("live/x", QoS::AtLeastOnce, false, "42")
            .await;
    }
    publisher.wait_acked(60).await;
    assert!(
        wait_until_async(Duration::from_secs(10), || watch.messages() == 5).await,
        "live messages after 55 skipped ones: {} of 5 counted",
        watch.messages()
    );
    assert_eq!(watch.broker().connection().connects, 1);
}
