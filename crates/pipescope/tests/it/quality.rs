//! The live quality observer in `pipescope run` against real brokers: its counts equal what
//! `simulate visits` says it sent, a field new after the warm-up is a drift event on the event
//! stream, and an MQTT filter is observed alike.

use std::io::Write as _;
use std::time::{Duration, Instant};

use pipescope_testkit::{Mosquitto, Tansu, http_body, http_get, wait_until};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

use crate::completeness::Monitor;
use crate::kafka::create_topic;
use crate::pipeline::start_part;

const TIMEOUT: Duration = Duration::from_secs(30);

fn quality(monitor: &Monitor, name: &str) -> Value {
    http_body(monitor.port, &format!("/api/v1/quality/{name}"))
        .and_then(|body| serde_json::from_str::<Value>(&body).ok())
        .filter(|v| v.get("name").is_some())
        .unwrap_or_default()
}

/// Waits until the quality topic's reader reads (Kafka: `partitions` partitions).
fn wait_reading(monitor: &Monitor, name: &str, partitions: u64) {
    let mut view = Value::Null;
    let reading = wait_until(TIMEOUT, || {
        view = quality(monitor, name);
        view["reader"]["connected"] == true && view["reader"]["partitions"] == partitions
    });
    assert!(
        reading,
        "the reader never started: {view}\n{}",
        monitor.log()
    );
}

/// The rule's errors since start.
fn broken(view: &Value, rule: &str) -> u64 {
    view["rules"]["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["rule"] == rule))
        .and_then(|r| r["broken_total"].as_u64())
        .unwrap_or(u64::MAX)
}

fn produce_json(producer: &BaseProducer, topic: &str, payload: &str) {
    producer
        .send(BaseRecord::<(), str>::to(topic).payload(payload))
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// `simulate visits` with empty, null and malformed records on the important fields user_id and
/// page: the monitor reads every record, counts the malformed ones as invalid, and each
/// not_null/not_empty rule's errors are the simulator's null/empty count for its field.
#[test]
fn the_observer_counts_exactly_the_defects_simulate_visits_sent() {
    let started = Instant::now();
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    create_topic(&bootstrap, "visits", 3);
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[kafka.local]\nbootstrap = \"{bootstrap}\"\n\
             [quality.visits]\nkafka = \"local\"\ntopic = \"visits\"\nwindow = \"2s\"\n\
             rules = [{{ field = \"user_id\", not_null = true, not_empty = true }}, {{ field = \"page\", not_null = true, not_empty = true }}]\n"
        ),
    );
    wait_reading(&monitor, "visits", 3);
    let mut simulator = start_part(
        "simulate visits",
        &[
            "simulate",
            "visits",
            "--kafka",
            &bootstrap,
            "--topic",
            "visits",
            "--partitions",
            "3",
            "--count",
            "2000",
            "--rate",
            "20000",
            "--seed",
            "7",
            "--empty-fraction",
            "0.05",
            "--null-fraction",
            "0.05",
            "--malformed-fraction",
            "0.02",
        ],
    );
    let summary: Value = serde_json::from_str(&simulator.finish(Duration::from_secs(60))).unwrap();
    assert_eq!(summary["delivered"], 2000, "{summary}");
    assert!(summary["malformed"].as_u64().unwrap() > 0, "{summary}");

    let mut view = Value::Null;
    let read_all = wait_until(TIMEOUT, || {
        view = quality(&monitor, "visits");
        view["records_total"] == summary["visits"]
    });
    assert!(read_all, "not every record read: {view}\n{}", monitor.log());
    assert_eq!(view["invalid_total"], summary["malformed"], "{view}");
    assert_eq!(view["error_records_total"], summary["defective"], "{view}");
    assert_eq!(
        view["rules"]["records_total"].as_u64().unwrap(),
        2000 - summary["malformed"].as_u64().unwrap()
    );
    for field in ["user_id", "page"] {
        for (check, key) in [("not_null", "null"), ("not_empty", "empty")] {
            assert_eq!(
                Some(broken(&view, &format!("{field}:{check}"))),
                summary[key][field].as_u64(),
                "{field}:{check}: {view}\nsummary {summary}"
            );
        }
    }
    let previews = view["invalid_previews"].as_array().unwrap();
    assert!(!previews.is_empty() && previews.len() <= 5, "{view}");
    assert!(
        previews[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not JSON"),
        "{view}"
    );
    // The list and /metrics agree.
    let list: Value =
        serde_json::from_str(&http_body(monitor.port, "/api/v1/quality").unwrap()).unwrap();
    assert_eq!(list[0]["invalid_total"], summary["malformed"]);
    let metrics = http_body(monitor.port, "/metrics").unwrap();
    let expected = format!(
        "pipescope_quality_rule_errors_total{{quality=\"visits\",rule=\"page:not_null\"}} {}",
        summary["null"]["page"]
    );
    assert!(metrics.contains(&expected), "{expected} not in\n{metrics}");
    // A window closed: profiles per field.
    let profiled = wait_until(TIMEOUT, || {
        view = quality(&monitor, "visits");
        view["profiles"]["fifteen_minutes"]["records"] == summary["visits"]
    });
    assert!(profiled, "the windows never took every record: {view}");
    let fields = view["profiles"]["fifteen_minutes"]["field_profiles"]
        .as_array()
        .unwrap();
    let user = fields.iter().find(|f| f["path"] == "user_id").unwrap();
    assert_eq!(user["nulls"], summary["null"]["user_id"], "{user}");
    eprintln!("took {:?}", started.elapsed());
}

/// Records with one field for two windows (the warm-up), then one with a new field: a drift
/// event in the API and on the portal's event stream.
#[test]
fn a_field_new_after_the_warm_up_is_a_drift_event() {
    let started = Instant::now();
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    create_topic(&bootstrap, "events", 1);
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[kafka.local]\nbootstrap = \"{bootstrap}\"\n\
             [quality.events]\nkafka = \"local\"\ntopic = \"events\"\nwindow = \"1s\"\n\
             drift = {{ warm_up_windows = 2, min_count = 1 }}\n"
        ),
    );
    wait_reading(&monitor, "events", 1);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let mut view = Value::Null;
    for window in 1..=2u64 {
        produce_json(&producer, "events", r#"{"id":1}"#);
        let closed = wait_until(TIMEOUT, || {
            view = quality(&monitor, "events");
            view["drift"]["windows_seen"].as_u64() >= Some(window)
        });
        assert!(closed, "window {window} never closed: {view}");
    }
    assert_eq!(view["drift_events"], serde_json::json!([]), "{view}");
    produce_json(&producer, "events", r#"{"id":2,"coupon":"SPRING"}"#);
    let drifted = wait_until(TIMEOUT, || {
        view = quality(&monitor, "events");
        view["drift_events"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    });
    assert!(drifted, "no drift event: {view}\n{}", monitor.log());
    let event = &view["drift_events"][0];
    assert_eq!(event["kind"], "appeared", "{view}");
    assert_eq!(event["path"], "coupon", "{view}");
    assert_eq!(event["example"], r#"{"id":2,"coupon":"SPRING"}"#, "{view}");
    assert_eq!(view["drift"]["events_total"]["appeared"], 1, "{view}");
    let events: Value =
        serde_json::from_str(&http_body(monitor.port, "/api/v1/events").unwrap()).unwrap();
    let drift = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "schema_drift")
        .unwrap_or_else(|| panic!("no schema_drift event: {events}"));
    assert_eq!(drift["source"], "quality/events");
    assert_eq!(drift["subject"], "field coupon");
    eprintln!("took {:?}", started.elapsed());
}

/// An MQTT filter: every message counted, the malformed one invalid, nulls per rule.
#[test]
fn an_mqtt_quality_topic_counts_every_message() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let url = mosquitto.url();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[mqtt.local]\nurl = \"{url}\"\n\
             [quality.readings]\nmqtt = \"local\"\nfilter = \"readings/#\"\nwindow = \"1s\"\n\
             rules = [{{ field = \"machine\", required = true, not_null = true }}]\n"
        ),
    );
    wait_reading(&monitor, "readings", 0);
    let mut lines = String::new();
    for i in 0..100 {
        lines.push_str(&match i % 10 {
            0 => "{\"value\":1}\n".to_string(),
            1 => "{\"machine\":null}\n".to_string(),
            2 if i < 30 => "{\"machine\":\n".to_string(),
            _ => format!("{{\"machine\":\"m{i}\",\"value\":{i}}}\n"),
        });
    }
    let mut publisher = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", "readings/a", "-l"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run mosquitto_pub");
    publisher
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(publisher.wait().unwrap().success());
    let mut view = Value::Null;
    let read_all = wait_until(TIMEOUT, || {
        view = quality(&monitor, "readings");
        view["records_total"] == 100
    });
    assert!(
        read_all,
        "not every message read: {view}\n{}",
        monitor.log()
    );
    assert_eq!(view["invalid_total"], 3, "{view}");
    assert_eq!(broken(&view, "machine:required"), 10, "{view}");
    assert_eq!(broken(&view, "machine:not_null"), 10, "{view}");
    assert_eq!(view["error_records_total"], 20, "{view}");
    let preview = &view["rules"]["rules"][1]["previews"][0];
    assert_eq!(preview["origin"], "readings/a", "{view}");
    assert_eq!(preview["reason"], "machine is null", "{view}");
    // The same series reach the store through the bus (every 10 s).
    let mut stored = String::new();
    let in_store = wait_until(TIMEOUT, || {
        stored = http_body(
            monitor.port,
            "/api/v1/last?metric=pipescope_quality_rule_errors_total",
        )
        .unwrap_or_default();
        serde_json::from_str::<Value>(&stored).is_ok_and(|v| {
            v["series"].as_array().is_some_and(|series| {
                series.iter().any(|s| {
                    s["labels"]["rule"] == "machine:not_null"
                        && s["labels"]["quality"] == "readings"
                        && s["value"] == 10.0
                })
            })
        })
    });
    assert!(in_store, "the store has no rule errors: {stored}");
    eprintln!("took {:?}", started.elapsed());
}

/// `report_every`: the windows' profile is written as an HTML report into the reports directory
/// beside the store, listed and served by the API without scripts; a name outside the list is
/// refused.
#[test]
fn an_mqtt_quality_topic_writes_periodic_reports_the_api_lists_and_serves() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let url = mosquitto.url();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.html"), "not a report").unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[mqtt.local]\nurl = \"{url}\"\n\
             [quality.readings]\nmqtt = \"local\"\nfilter = \"readings/#\"\nwindow = \"1s\"\n\
             report_every = \"10s\"\nkeep_reports = 2\n"
        ),
    );
    wait_reading(&monitor, "readings", 0);
    let lines: String = (0..20)
        .map(|i| format!("{{\"machine\":\"m{i}\",\"report_marker_field\":{i}}}\n"))
        .collect();
    let mut publisher = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", "readings/a", "-l"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run mosquitto_pub");
    publisher
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(publisher.wait().unwrap().success());
    // The messages may straddle two reports.
    let mut listed = Value::Null;
    let reported = wait_until(TIMEOUT, || {
        listed = http_body(monitor.port, "/api/v1/quality/reports")
            .and_then(|body| serde_json::from_str(&body).ok())
            .unwrap_or_default();
        let records: u64 = listed
            .as_array()
            .map(|l| l.iter().filter_map(|r| r["records"].as_u64()).sum())
            .unwrap_or_default();
        records == 20
    });
    assert!(
        reported,
        "no report of the 20 records: {listed}\n{}",
        monitor.log()
    );
    let reports = listed.as_array().unwrap();
    assert!(reports.len() <= 2, "keep_reports = 2: {listed}");
    let with_records = reports
        .iter()
        .find(|r| r["records"].as_u64() > Some(0))
        .unwrap();
    assert_eq!(with_records["quality"], "readings");
    let file = with_records["file"].as_str().unwrap();
    assert!(
        file.starts_with("readings-") && file.ends_with("Z.html"),
        "{file}"
    );
    assert!(dir.path().join("reports").join(file).is_file());
    let mut response = ureq::get(format!(
        "http://127.0.0.1:{}/api/v1/quality/reports/{file}",
        monitor.port
    ))
    .call()
    .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert!(header("content-security-policy").starts_with("default-src 'none'"));
    let html = response.body_mut().read_to_string().unwrap();
    assert_eq!(with_records["bytes"].as_u64(), Some(html.len() as u64));
    assert!(
        html.contains("report_marker_field") && html.contains("quality topic readings"),
        "{html}"
    );
    for refused in [
        "..%2Fsecret.html",
        "..%2F..%2Fsecret.html",
        "secret.html",
        "readings-20270115T080000Z.html",
    ] {
        let answer = http_get(monitor.port, &format!("/api/v1/quality/reports/{refused}"));
        assert_eq!(answer.map(|a| a.0), Some(404), "{refused}");
    }
    let metrics = http_body(monitor.port, "/metrics").unwrap_or_default();
    assert!(
        metrics.lines().any(|l| l
            .starts_with("pipescope_quality_reports_written_total{quality=\"readings\"}")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
    assert!(
        metrics.contains("pipescope_quality_reports_failed_total{quality=\"readings\"} 0"),
        "{metrics}"
    );
    eprintln!("took {:?}", started.elapsed());
}
