//! Probes in `pipescope run` against a real tansu: the Kafka probe produces to every partition
//! of its topic and reads its records back; a frozen broker lowers availability without
//! counting loss; no probe runs (and no topic is made) unless configured.

use std::time::{Duration, Instant};

use pipescope_testkit::{Mosquitto, Tansu, free_port, http_body, wait_until};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;

use crate::completeness::Monitor;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The probes' answer, when the monitor serves it.
fn probes(monitor: &Monitor) -> Option<Vec<Value>> {
    let body = http_body(monitor.port, "/api/v1/probes")?;
    serde_json::from_str::<Vec<Value>>(&body).ok()
}

fn topics(bootstrap: &str) -> Vec<(String, usize)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    metadata
        .topics()
        .iter()
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect()
}

fn probe_config(bootstrap: &str, interval: &str, timeout: &str) -> String {
    format!(
        "[kafka.local]\nbootstrap = \"{bootstrap}\"\n\
         [probes.kafka.local]\npartitions = 3\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\n"
    )
}

fn partitions(monitor: &Monitor) -> Vec<Value> {
    probes(monitor)
        .and_then(|p| p.into_iter().next())
        .and_then(|p| p["partitions"].as_array().cloned())
        .unwrap_or_default()
}

fn read_counter(p: &Value, name: &str) -> u64 {
    p["read"]["total"]["counters"][name]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// The probe creates its 3-partition topic, and every partition's records are acknowledged
/// and read back once: availability 1.0, nothing lost or duplicated, both latencies measured.
#[test]
fn the_kafka_probe_reads_back_every_record_of_every_partition() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(dir.path(), &probe_config(&bootstrap, "200ms", "2s"));
    let mut seen = Vec::new();
    // Availability covers complete 10-second buckets: wait for the first one.
    let measured = wait_until(TIMEOUT, || {
        seen = partitions(&monitor);
        seen.len() == 3
            && seen.iter().all(|p| {
                p["produce"]["availability"]["1m"].is_number() && read_counter(p, "records") >= 10
            })
    });
    assert!(measured, "no figures: {seen:?}\n{}", monitor.log());
    for p in &seen {
        assert_eq!(p["produce"]["availability"]["1m"], 1.0, "{p}");
        assert_eq!(p["produce"]["failed"], 0, "{p}");
        assert_eq!(read_counter(p, "lost"), 0, "{p}");
        assert_eq!(read_counter(p, "duplicated"), 0, "{p}");
        assert!(
            p["produce"]["ack_latency"]["all"]["p99_ms"].is_number(),
            "{p}"
        );
        let e2e = p["read"]["total"]["latency"]["all"]["p50_ms"]
            .as_f64()
            .unwrap();
        assert!((0.0..5_000.0).contains(&e2e), "{p}");
        assert!(p["leader"].is_number(), "{p}");
    }
    let probe = probes(&monitor).unwrap().remove(0);
    let brokers = probe["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "one tansu leads every partition: {probe}");
    assert_eq!(brokers[0]["partitions"], 3, "{probe}");
    assert_eq!(brokers[0]["lost"], 0, "{probe}");
    assert!(
        topics(&bootstrap).contains(&("pipescope-probe".to_string(), 3)),
        "{:?}",
        topics(&bootstrap)
    );
    assert!(
        monitor.log().contains("pipescope-probe"),
        "the start log names the topic: {}",
        monitor.log()
    );
    let metrics = http_body(monitor.port, "/metrics").unwrap();
    assert!(
        metrics.contains("pipescope_probe_availability_ratio{system=\"kafka\",cluster=\"local\",topic=\"pipescope-probe\",partition=\"0\"} 1"),
        "{metrics}"
    );
}

/// With the broker frozen, records are not acknowledged in time: availability drops. After
/// it runs again acknowledgements resume, and what was never acknowledged — or arrived after
/// its timeout — is not counted lost, nor twice.
#[test]
fn a_frozen_broker_lowers_availability_and_counts_no_loss() {
    let mut tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    // Not idempotent: tansu 0.6's storage panics on an idempotent producer's retry after a
    // freeze ("more or less than one row", docs/brokers.md) and the broker answers nothing more.
    let config = format!(
        "{}idempotent = false\n",
        probe_config(&bootstrap, "200ms", "1s")
    );
    let monitor = Monitor::start(dir.path(), &config);
    let mut seen = Vec::new();
    let reading = wait_until(TIMEOUT, || {
        seen = partitions(&monitor);
        seen.len() == 3 && seen.iter().all(|p| read_counter(p, "records") >= 3)
    });
    assert!(reading, "no records read back: {seen:?}\n{}", monitor.log());

    tansu.pause();
    let failing = wait_until(TIMEOUT, || {
        seen = partitions(&monitor);
        seen.iter()
            .all(|p| p["produce"]["failed"].as_u64() >= Some(2))
    });
    tansu.resume();
    assert!(failing, "no produce failed while frozen: {seen:?}");
    let acked: Vec<u64> = seen
        .iter()
        .map(|p| p["produce"]["acked"].as_u64().unwrap())
        .collect();

    let recovered = wait_until(TIMEOUT, || {
        seen = partitions(&monitor);
        seen.len() == 3
            && seen.iter().zip(&acked).all(|(p, before)| {
                p["produce"]["acked"].as_u64().unwrap() >= before + 10
                    && p["produce"]["availability"]["1m"].as_f64() < Some(1.0)
            })
    });
    assert!(recovered, "no recovery: {seen:?}\n{}", monitor.log());
    // Past the grace (10 s) of every gap the freeze could have opened.
    let settled_at = Instant::now() + Duration::from_secs(11);
    assert!(wait_until(TIMEOUT, || Instant::now() >= settled_at));
    for p in partitions(&monitor) {
        assert_eq!(read_counter(&p, "lost"), 0, "{p}");
        assert_eq!(read_counter(&p, "duplicated"), 0, "{p}");
        assert!(read_counter(&p, "records") > 10, "{p}");
    }
}

/// Without a [probes] section nothing is produced and no topic is made.
#[test]
fn probes_are_off_by_default() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!("[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"1s\"\n"),
    );
    let serving = wait_until(TIMEOUT, || probes(&monitor) == Some(Vec::new()));
    assert!(serving, "{}", monitor.log());
    // The Kafka watcher has scraped a few times by now.
    let later = Instant::now() + Duration::from_secs(3);
    assert!(wait_until(TIMEOUT, || Instant::now() >= later));
    assert!(
        topics(&bootstrap).iter().all(|(t, _)| !t.contains("probe")),
        "{:?}",
        topics(&bootstrap)
    );
    assert!(!monitor.log().contains("probe"), "{}", monitor.log());
}

fn mqtt_probe_config(mqtt: &str, timeout: &str) -> String {
    format!(
        "[mqtt.local]\nurl = \"{mqtt}\"\n\
         [probes.mqtt.local]\ninterval = \"200ms\"\ntimeout = \"{timeout}\"\n"
    )
}

/// The first probe of `kind` the monitor shows.
fn probe_of(monitor: &Monitor, kind: &str) -> Option<Value> {
    probes(monitor)?.into_iter().find(|p| p["kind"] == kind)
}

/// The MQTT probe publishes at QoS 1 and reads every message back once through its own
/// subscription: availability 1.0, nothing lost or duplicated, both latencies measured.
#[test]
fn the_mqtt_probe_reads_back_every_message() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(dir.path(), &mqtt_probe_config(&mosquitto.url(), "2s"));
    let mut seen = Value::Null;
    // Availability covers complete 10-second buckets: wait for the first one.
    let measured = wait_until(TIMEOUT, || {
        seen = probe_of(&monitor, "mqtt").unwrap_or_default();
        seen["produce"]["availability"]["1m"].is_number() && read_counter(&seen, "records") >= 10
    });
    assert!(measured, "no figures: {seen}\n{}", monitor.log());
    assert_eq!(seen["broker"], "local", "{seen}");
    assert_eq!(seen["topic"], "pipescope/probe", "{seen}");
    assert_eq!(
        (&seen["publishing"], &seen["reading"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    assert_eq!(seen["produce"]["availability"]["1m"], 1.0, "{seen}");
    assert_eq!(seen["produce"]["failed"], 0, "{seen}");
    assert_eq!(read_counter(&seen, "lost"), 0, "{seen}");
    assert_eq!(read_counter(&seen, "duplicated"), 0, "{seen}");
    assert!(
        seen["produce"]["ack_latency"]["all"]["p99_ms"].is_number(),
        "{seen}"
    );
    let e2e = seen["read"]["total"]["latency"]["all"]["p50_ms"]
        .as_f64()
        .unwrap();
    assert!((0.0..5_000.0).contains(&e2e), "{seen}");
    assert!(
        monitor
            .log()
            .contains("MQTT probe: publishing to \"pipescope/probe\""),
        "the start log names the topic: {}",
        monitor.log()
    );
    let metrics = http_body(monitor.port, "/metrics").unwrap();
    assert!(
        metrics.contains(
            "pipescope_probe_availability_ratio{system=\"mqtt\",broker=\"local\",topic=\"pipescope/probe\"} 1"
        ),
        "{metrics}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Mosquitto frozen (SIGSTOP): no PUBACK comes within the timeout, so availability drops. The
/// connection holds, so after SIGCONT the broker works through what was sent: every message
/// arrives, none is counted lost or twice, and PUBACKs come in time again.
#[test]
fn a_paused_mosquitto_lowers_mqtt_availability_and_counts_no_loss() {
    let started = Instant::now();
    let mut mosquitto = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(dir.path(), &mqtt_probe_config(&mosquitto.url(), "1s"));
    let mut seen = Value::Null;
    let reading = wait_until(TIMEOUT, || {
        seen = probe_of(&monitor, "mqtt").unwrap_or_default();
        read_counter(&seen, "records") >= 3 && read_counter(&seen, "records") != u64::MAX
    });
    assert!(reading, "nothing read back: {seen}\n{}", monitor.log());

    mosquitto.pause();
    let failing = wait_until(TIMEOUT, || {
        seen = probe_of(&monitor, "mqtt").unwrap_or_default();
        seen["produce"]["failed"].as_u64() >= Some(3)
    });
    mosquitto.resume();
    assert!(failing, "no publish failed while frozen: {seen}");
    let acked = seen["produce"]["acked"].as_u64().unwrap();

    let recovered = wait_until(TIMEOUT, || {
        seen = probe_of(&monitor, "mqtt").unwrap_or_default();
        seen["produce"]["acked"].as_u64().unwrap_or(0) >= acked + 10
            && seen["produce"]["availability"]["1m"].as_f64() < Some(1.0)
    });
    assert!(recovered, "no recovery: {seen}\n{}", monitor.log());
    // Past the grace (10 s) of every gap the freeze could have opened.
    let settled_at = Instant::now() + Duration::from_secs(11);
    assert!(wait_until(TIMEOUT, || Instant::now() >= settled_at));
    let seen = probe_of(&monitor, "mqtt").unwrap();
    assert_eq!(read_counter(&seen, "lost"), 0, "{seen}");
    assert_eq!(read_counter(&seen, "late"), 0, "{seen}");
    assert_eq!(read_counter(&seen, "duplicated"), 0, "{seen}");
    // Every message published was read back and judged, those that timed out too: none
    // excused as maybe never published.
    assert_eq!(read_counter(&seen, "before_base"), 0, "{seen}");
    assert_eq!(read_counter(&seen, "skipped"), 0, "{seen}");
    let produce = &seen["produce"];
    assert!(
        read_counter(&seen, "records") + 5 >= produce["sent"].as_u64().unwrap(),
        "{seen}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

fn bridge_probe_config(mqtt: &str, bootstrap: &str) -> String {
    format!(
        "[mqtt.local]\nurl = \"{mqtt}\"\n[kafka.local]\nbootstrap = \"{bootstrap}\"\n\
         [probes.bridge.machines]\nmqtt = \"local\"\nmqtt_topic = \"machine/probe/pipescope\"\n\
         kafka = \"local\"\nkafka_topic = \"machine.data\"\ninterval = \"200ms\"\ntimeout = \"2s\"\n"
    )
}

const BRIDGE_MAP: &str = "machine/+/+/#=machine.data";
const BRIDGE_ARGS: [&str; 4] = ["--client-id", "it-bridge", "--partitions", "1"];

/// A hop's counters in the bridge probe's flow (`mqtt` or `kafka`).
fn bridge_hop(probe: &Value, hop: &str) -> Value {
    probe["flow"]["hops"]
        .as_array()
        .and_then(|hops| hops.iter().find(|h| h["hop"] == hop))
        .map(|h| h["figures"]["total"].clone())
        .unwrap_or_default()
}

fn bridge_edge(probe: &Value) -> Value {
    probe["flow"]["edges"][0]["figures"]["total"].clone()
}

fn count(figures: &Value, name: &str) -> u64 {
    figures["counters"][name].as_u64().unwrap_or(u64::MAX)
}

/// The bridge probe publishes on MQTT and reads the Kafka topic the running bridge maps it to:
/// every message is seen at both hops once, nothing is lost or duplicated between them, and the
/// latency the bridge adds is measured.
#[test]
fn the_bridge_probe_counts_every_message_through_a_running_bridge() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let tansu = Tansu::start();
    let (mqtt, bootstrap) = (mosquitto.url(), tansu.bootstrap());
    crate::kafka::create_topic(&bootstrap, "machine.data", 1);
    let _bridge = crate::pipeline::start_bridge(
        "bridge",
        free_port(),
        &mqtt,
        &bootstrap,
        BRIDGE_MAP,
        &BRIDGE_ARGS,
    );
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(dir.path(), &bridge_probe_config(&mqtt, &bootstrap));
    let mut seen = Value::Null;
    let measured = wait_until(TIMEOUT, || {
        seen = probe_of(&monitor, "bridge").unwrap_or_default();
        count(&bridge_edge(&seen), "matched") >= 20
            && count(&bridge_edge(&seen), "matched") != u64::MAX
            && bridge_edge(&seen)["added_latency"]["all"]["p50_ms"].is_number()
    });
    assert!(measured, "no figures: {seen}\n{}", monitor.log());
    assert_eq!(seen["produce"]["failed"], 0, "{seen}");
    for hop in ["mqtt", "kafka"] {
        let figures = bridge_hop(&seen, hop);
        for zero in ["lost", "duplicated", "late"] {
            assert_eq!(count(&figures, zero), 0, "{hop} {zero}: {seen}");
        }
    }
    let edge = bridge_edge(&seen);
    for zero in ["lost", "duplicated", "late", "downstream_only"] {
        assert_eq!(count(&edge, zero), 0, "edge {zero}: {edge}");
    }
    let added = edge["added_latency"]["all"]["p50_ms"].as_f64().unwrap();
    assert!((-5.0..5_000.0).contains(&added), "{edge}");
    let metrics = http_body(monitor.port, "/metrics").unwrap();
    assert!(
        metrics.contains("pipescope_probe_edge_lost_total{system=\"bridge\",probe=\"machines\"} 0"),
        "{metrics}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// The bridge stopped for a few seconds and started again: its MQTT session is persistent
/// (clean start off, a fixed client id) and subscribed at QoS 1, so mosquitto keeps what the
/// probe published meanwhile and hands it over on the restart. Nothing is lost between MQTT and
/// Kafka; those messages only arrive late (their Kafka latency spans the stop); a graceful stop
/// acknowledges only what Kafka stored, so nothing comes twice.
#[test]
fn messages_published_while_the_bridge_is_stopped_arrive_after_its_restart() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let tansu = Tansu::start();
    let (mqtt, bootstrap) = (mosquitto.url(), tansu.bootstrap());
    crate::kafka::create_topic(&bootstrap, "machine.data", 1);
    let port = free_port();
    let start_bridge = |name| {
        crate::pipeline::start_bridge(name, port, &mqtt, &bootstrap, BRIDGE_MAP, &BRIDGE_ARGS)
    };
    let mut bridge = start_bridge("bridge");
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(dir.path(), &bridge_probe_config(&mqtt, &bootstrap));
    let mut seen = Value::Null;
    let flowing = wait_until(TIMEOUT, || {
        seen = probe_of(&monitor, "bridge").unwrap_or_default();
        (5..u64::MAX).contains(&count(&bridge_edge(&seen), "matched"))
    });
    assert!(flowing, "no figures: {seen}\n{}", monitor.log());

    assert!(bridge.stop(TIMEOUT).is_some(), "the bridge did not stop");
    let stopped_at = count(&bridge_hop(&seen, "mqtt"), "records");
    let stopped = Instant::now();
    // About 3 s of messages (15) wait in the bridge's session.
    let published = wait_until(TIMEOUT, || {
        seen = probe_of(&monitor, "bridge").unwrap_or_default();
        count(&bridge_hop(&seen, "mqtt"), "records") >= stopped_at + 15
    });
    assert!(published, "{seen}");
    let down = stopped.elapsed();
    let _bridge = start_bridge("bridge (restarted)");
    let mut mqtt_records = 0;
    let caught_up = wait_until(TIMEOUT, || {
        seen = probe_of(&monitor, "bridge").unwrap_or_default();
        mqtt_records = count(&bridge_hop(&seen, "mqtt"), "records");
        count(&bridge_edge(&seen), "matched") >= stopped_at + 25
    });
    assert!(caught_up, "{seen}\n{}", monitor.log());
    // Past the grace (10 s) of every message published before the catch-up.
    let settled_at = Instant::now() + Duration::from_secs(11);
    assert!(wait_until(TIMEOUT, || Instant::now() >= settled_at));
    let seen = probe_of(&monitor, "bridge").unwrap();
    let (mqtt_hop, kafka_hop, edge) = (
        bridge_hop(&seen, "mqtt"),
        bridge_hop(&seen, "kafka"),
        bridge_edge(&seen),
    );
    for zero in ["lost", "duplicated", "late"] {
        assert_eq!(count(&mqtt_hop, zero), 0, "mqtt {zero}: {seen}");
        assert_eq!(count(&kafka_hop, zero), 0, "kafka {zero}: {seen}");
        assert_eq!(count(&edge, zero), 0, "edge {zero}: {seen}");
    }
    assert!(count(&edge, "matched") >= mqtt_records, "{seen}");
    // The messages that waited for the bridge took about as long as it was down.
    let slowest = kafka_hop["latency"]["all"]["max_ms"].as_f64().unwrap();
    assert!(
        slowest >= down.as_millis() as f64 * 0.5,
        "slowest {slowest} ms, bridge down {down:?}: {seen}"
    );
    eprintln!(
        "bridge stopped {down:?}: {} matched, slowest {slowest} ms; took {:?}",
        count(&edge, "matched"),
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Mosquitto killed: the publisher's connection ends, so what waited for a PUBACK is excused
/// (it may never have been published), every interval counts unavailable and the probe says
/// why. Started again on the same port: the probe reconnects, its subscription comes back (the
/// next message read sets a new base) and nothing is counted lost or twice.
#[test]
fn a_killed_mosquitto_is_unavailability_not_loss() {
    let started = Instant::now();
    let mut mosquitto = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    // Reconnects every second at most, so the outage ends soon after the broker is back.
    let config = format!(
        "[mqtt.local]\nurl = \"{}\"\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n\
         [probes.mqtt.local]\ninterval = \"200ms\"\ntimeout = \"1s\"\n",
        mosquitto.url()
    );
    let monitor = Monitor::start(dir.path(), &config);
    let mut seen = Value::Null;
    let reading = wait_until(TIMEOUT, || {
        seen = probe_of(&monitor, "mqtt").unwrap_or_default();
        (3..u64::MAX).contains(&read_counter(&seen, "records"))
    });
    assert!(reading, "nothing read back: {seen}\n{}", monitor.log());

    mosquitto.kill();
    let down = wait_until(TIMEOUT, || {
        seen = probe_of(&monitor, "mqtt").unwrap_or_default();
        seen["publishing"] == false
            && seen["reading"] == false
            && seen["produce"]["failed"].as_u64() >= Some(5)
    });
    assert!(down, "not unavailable: {seen}");
    let error = seen["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("MQTT broker local") && error.contains("is the broker running?"),
        "{seen}"
    );
    mosquitto.restart();
    let acked = seen["produce"]["acked"].as_u64().unwrap();
    let recovered = wait_until(TIMEOUT, || {
        seen = probe_of(&monitor, "mqtt").unwrap_or_default();
        seen["produce"]["acked"].as_u64().unwrap_or(0) >= acked + 10 && seen["reading"] == true
    });
    assert!(recovered, "no recovery: {seen}\n{}", monitor.log());
    // Past the grace (10 s) of every gap the outage could have opened.
    let settled_at = Instant::now() + Duration::from_secs(11);
    assert!(wait_until(TIMEOUT, || Instant::now() >= settled_at));
    let seen = probe_of(&monitor, "mqtt").unwrap();
    for zero in ["lost", "late", "duplicated"] {
        assert_eq!(read_counter(&seen, zero), 0, "{zero}: {seen}");
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}
