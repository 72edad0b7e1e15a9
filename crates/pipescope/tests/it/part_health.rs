//! Every part's health against real brokers: `pipescope_part_health_status{part}` and /health
//! turn unhealthy (0, 503) once the part's broker has been gone past the grace, and healthy
//! again when it is back.

use std::time::Duration;

use pipescope_testkit::{Mosquitto, Part, Tansu, http_get, wait_until};

/// Covers the grace (5 s) and a probe that waits 2 s for an answer, with room for a busy machine.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What the part says about itself: /health's status code and `status`, whether `check` has
/// reported yet, and the gauge.
fn health(part: &Part, check: &str) -> Option<(u16, String, bool, f64)> {
    let (code, body) = http_get(part.port(), "/health")?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    let checked = json["checks"]
        .as_array()?
        .iter()
        .any(|c| c["check"] == check);
    let gauge = part.metric("pipescope_part_health_status")?;
    Some((code, json["status"].as_str()?.to_string(), checked, gauge))
}

/// Waits until `check` has reported and the part is `healthy` (or not) on both /health and
/// /metrics.
fn wait_health(part: &Part, check: &str, healthy: bool, what: &str) {
    let want = if healthy {
        (200, "ok", true, 1.0)
    } else {
        (503, "unhealthy", true, 0.0)
    };
    let mut seen = None;
    let reached = wait_until(TIMEOUT, || {
        seen = health(part, check);
        seen.as_ref()
            .is_some_and(|(c, s, checked, g)| (*c, s.as_str(), *checked, *g) == want)
    });
    assert!(
        reached,
        "{what}: expected {want:?}, last saw {seen:?}\n{}",
        part.log()
    );
}

#[test]
fn a_kafka_part_turns_unhealthy_while_its_broker_is_down_and_healthy_when_it_is_back() {
    let mut tansu = Tansu::start();
    let part = Part::builder(env!("CARGO_BIN_EXE_pipescope"), "process calls")
        .args([
            "process",
            "calls",
            "--kafka",
            &tansu.bootstrap(),
            "--long-calls-log",
            "/dev/null",
        ])
        .start();
    wait_health(&part, "kafka", true, "broker up");
    let body = http_get(part.port(), "/health").unwrap().1;
    assert!(body.contains(r#""part":"process-calls""#), "{body}");
    assert!(body.contains(r#""check":"kafka""#), "{body}");

    tansu.kill();
    wait_health(&part, "kafka", false, "broker killed");
    let body = http_get(part.port(), "/health").unwrap().1;
    assert!(body.contains("no answer from Kafka"), "{body}");

    tansu.restart();
    wait_health(&part, "kafka", true, "broker back");
}

#[test]
fn an_mqtt_part_turns_unhealthy_while_its_broker_is_down_and_healthy_when_it_is_back() {
    let mut mosquitto = Mosquitto::start();
    let part = Part::builder(env!("CARGO_BIN_EXE_pipescope"), "simulate machines")
        .args([
            "simulate",
            "machines",
            "--mqtt",
            &mosquitto.url(),
            "--rate",
            "10",
        ])
        .start();
    wait_health(&part, "mqtt", true, "broker up");

    mosquitto.kill();
    wait_health(&part, "mqtt", false, "broker killed");
    let body = http_get(part.port(), "/health").unwrap().1;
    assert!(body.contains(r#""check":"mqtt""#), "{body}");

    mosquitto.restart();
    wait_health(&part, "mqtt", true, "broker back");
}
