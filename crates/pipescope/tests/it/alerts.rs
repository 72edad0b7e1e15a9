//! The alert engine in `pipescope run` against real brokers: rules fire after their `for`,
//! resolve, survive a restart without firing again, and follow brokers that go away.

use std::time::{Duration, Instant};

use pipescope_testkit::{Mosquitto, Tansu, http_body, wait_until};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

use crate::completeness::Monitor;
use crate::kafka::{commit_standalone, create_topic};
use crate::pipeline::mosquitto_pub;

const TIMEOUT: Duration = Duration::from_secs(30);

fn alerts(monitor: &Monitor) -> Value {
    http_body(monitor.port, "/api/v1/alerts")
        .and_then(|body| serde_json::from_str::<Value>(&body).ok())
        .filter(|v| v.get("alerts").is_some())
        .unwrap_or_default()
}

/// The alert of `rule` (the first, when it has several).
fn alert(view: &Value, rule: &str) -> Value {
    view["alerts"]
        .as_array()
        .and_then(|all| all.iter().find(|a| a["rule"] == rule))
        .cloned()
        .unwrap_or_default()
}

/// Waits until `rule` has an alert in `state`; returns it.
fn wait_state(monitor: &Monitor, rule: &str, state: &str) -> Value {
    let mut view = Value::Null;
    let reached = wait_until(TIMEOUT, || {
        view = alerts(monitor);
        alert(&view, rule)["state"] == state
    });
    assert!(reached, "{rule} never {state}: {view:#}\n{}", monitor.log());
    alert(&view, rule)
}

fn events(monitor: &Monitor) -> Vec<Value> {
    http_body(monitor.port, "/api/v1/events?limit=1000")
        .and_then(|body| serde_json::from_str::<Value>(&body).ok())
        .and_then(|page| page["events"].as_array().cloned())
        .unwrap_or_default()
}

fn metrics(monitor: &Monitor) -> String {
    http_body(monitor.port, "/metrics").unwrap_or_default()
}

fn produce(bootstrap: &str, topic: &str, records: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for i in 0..records {
        let payload = format!("{i}");
        producer
            .send(
                BaseRecord::<(), str>::to(topic)
                    .partition(0)
                    .payload(&payload),
            )
            .unwrap();
    }
    producer.flush(TIMEOUT).expect("all records delivered");
}

/// A group 18 offsets behind (the seed's rule: above 15) is pending, then firing once the
/// `for` has passed; the topic no one writes to goes silent; the group's verdict says it is
/// stuck, more than a second behind and, reading nothing, never catching up. Restarted, the monitor reads the firing alert back: the same start, no new firing.
/// The group catches up: resolved. The broker goes away: it is down, the cluster unreachable.
#[test]
fn group_lag_fires_after_its_for_survives_a_restart_and_resolves() {
    let started = Instant::now();
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    create_topic(&bootstrap, "orders", 1);
    produce(&bootstrap, "orders", 20);
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "billing")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    commit_standalone(&group, "orders", 0, 2);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"1s\"\nverdict_window = 3\n\
         [alerts]\nevaluate_every = \"1s\"\n\
         [alerts.rules.billing_lag]\nkind = \"group_lag_offsets\"\ncluster = \"local\"\ngroup = \"billing\"\nabove = 15\nfor = \"2s\"\nlabels = {{ team = \"data\" }}\n\
         [alerts.rules.stuck]\nkind = \"group_verdict\"\nverdicts = [\"STALLED\", \"STOPPED\"]\n\
         [alerts.rules.orders_silent]\nkind = \"topic_silent\"\ntopic = \"orders\"\nsilent_for = \"3s\"\n\
         [alerts.rules.behind_in_time]\nkind = \"group_lag_seconds\"\nabove = \"1s\"\n\
         [alerts.rules.never_catches_up]\nkind = \"group_eta\"\nabove = \"1h\"\n\
         [alerts.rules.broker_down]\nkind = \"kafka_broker_down\"\n\
         [alerts.rules.cluster_down]\nkind = \"kafka_cluster_unreachable\"\n"
    );
    let mut monitor = Monitor::start(dir.path(), &config);

    let firing = wait_state(&monitor, "billing_lag", "firing");
    assert_eq!(firing["value"], 18.0);
    assert_eq!(firing["labels"]["group"], "billing");
    assert_eq!(firing["labels"]["cluster"], "local");
    assert_eq!(firing["labels"]["team"], "data");
    assert_eq!(firing["labels"]["severity"], "warning");
    assert_eq!(
        firing["annotations"]["summary"],
        "consumer group billing on local is 18 offsets behind"
    );
    let active_since = firing["active_since_ms"].as_u64().unwrap();
    let firing_since = firing["firing_since_ms"].as_u64().unwrap();
    assert!(
        firing_since >= active_since + 2_000,
        "fired before its for: {firing}"
    );
    // The API shows the state as soon as it changes; the events follow the store's write.
    let mut kinds: Vec<Value> = Vec::new();
    let told = wait_until(TIMEOUT, || {
        kinds = events(&monitor)
            .into_iter()
            .filter(|e| e["source"] == "alerts/billing_lag")
            .map(|e| e["kind"].clone())
            .collect();
        kinds.len() >= 2
    });
    assert!(told, "{kinds:?}");
    assert_eq!(kinds, ["alert_firing", "alert_pending"], "newest first");
    wait_state(&monitor, "orders_silent", "firing");
    let behind = wait_state(&monitor, "behind_in_time", "firing");
    assert!(behind["value"].as_f64().unwrap() > 1.0, "{behind}");
    // It reads nothing while nothing is written: at these rates, never.
    let never = wait_state(&monitor, "never_catches_up", "firing");
    assert_eq!(never["value"], Value::Null, "{never}");
    assert_eq!(never["annotations"]["value"], "none");
    let stuck = wait_state(&monitor, "stuck", "firing");
    assert!(
        [2.0, 3.0].contains(&stuck["value"].as_f64().unwrap()),
        "{stuck}"
    );
    let text = metrics(&monitor);
    for line in [
        "pipescope_alerts_firing{rule=\"billing_lag\",severity=\"warning\"} 1",
        "pipescope_alerts_transitions_total{rule=\"billing_lag\",to=\"firing\"} 1",
        "pipescope_kafka_topic_under_replicated_partitions{cluster=\"local\",topic=\"orders\"} 0",
        "pipescope_kafka_topic_offline_partitions{cluster=\"local\",topic=\"orders\"} 0",
    ] {
        assert!(text.contains(line), "no {line} in\n{text}");
    }

    assert!(
        monitor.signal_and_wait("-TERM", TIMEOUT),
        "the monitor did not stop"
    );
    drop(monitor);
    let monitor = Monitor::start(dir.path(), &config);
    // Two evaluations after the first: time enough to fire again, were it forgotten.
    let mut first = None;
    let evaluated = wait_until(TIMEOUT, || {
        first = alerts(&monitor)["evaluated_at_ms"].as_u64();
        first.is_some()
    });
    assert!(
        evaluated,
        "never evaluated after the restart\n{}",
        monitor.log()
    );
    let first = first.unwrap();
    assert!(wait_until(TIMEOUT, || alerts(&monitor)["evaluated_at_ms"]
        .as_u64()
        .is_some_and(|t| t >= first + 2_000)));
    let kept = alert(&alerts(&monitor), "billing_lag");
    assert_eq!(kept["state"], "firing", "{kept}");
    assert_eq!(kept["active_since_ms"].as_u64(), Some(active_since));
    assert_eq!(kept["firing_since_ms"].as_u64(), Some(firing_since));
    let text = metrics(&monitor);
    assert!(
        !text.contains("pipescope_alerts_transitions_total{rule=\"billing_lag\""),
        "a transition after the restart:\n{text}"
    );
    assert!(
        !events(&monitor)
            .iter()
            .any(|e| e["source"] == "alerts/billing_lag"),
        "an event after the restart"
    );

    commit_standalone(&group, "orders", 0, 20);
    let resolved = wait_state(&monitor, "billing_lag", "resolved");
    assert_eq!(resolved["active_since_ms"].as_u64(), Some(active_since));
    assert!(resolved["resolved_at_ms"].as_u64().unwrap() > firing_since);

    drop(tansu);
    let down = wait_state(&monitor, "cluster_down", "firing");
    assert_eq!(down["labels"]["cluster"], "local");
    let broker = wait_state(&monitor, "broker_down", "firing");
    assert!(
        broker["labels"]["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{broker}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );
}

/// A subtree with no message for its `silent_for` fires and resolves on the next message; the
/// broker stopped, it is unreachable.
#[test]
fn a_silent_mqtt_subtree_fires_and_resolves_and_a_stopped_broker_is_unreachable() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let url = mosquitto.url();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[mqtt.edge]\nurl = \"{url}\"\n\
             [alerts]\nevaluate_every = \"1s\"\n\
             [alerts.rules.machines_silent]\nkind = \"mqtt_silent\"\nbroker = \"edge\"\nfilter = \"machine/+/temp\"\nsilent_for = \"2s\"\n\
             [alerts.rules.edge_down]\nkind = \"mqtt_unreachable\"\nfor = \"1s\"\nseverity = \"critical\"\n"
        ),
    );
    let silent = wait_state(&monitor, "machines_silent", "firing");
    assert_eq!(silent["labels"]["filter"], "machine/+/temp");
    assert!(silent["value"].as_f64().unwrap() >= 2.0, "{silent}");
    // A message the filter does not match changes nothing; one it matches resolves it.
    mosquitto_pub(port, "machine/1/pressure", b"1");
    mosquitto_pub(port, "machine/1/temp", b"1");
    let resolved = wait_state(&monitor, "machines_silent", "resolved");
    assert!(resolved["value"].as_f64().unwrap() < 2.0, "{resolved}");
    assert_ne!(alert(&alerts(&monitor), "edge_down")["state"], "firing");

    drop(mosquitto);
    let down = wait_state(&monitor, "edge_down", "firing");
    assert_eq!(down["labels"]["broker"], "edge");
    assert_eq!(down["labels"]["severity"], "critical");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// Records breaking a quality rule over the last minute past the threshold fire the rule.
#[test]
fn quality_errors_over_the_last_minute_fire() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let url = mosquitto.url();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[mqtt.edge]\nurl = \"{url}\"\n\
             [quality.readings]\nmqtt = \"edge\"\nfilter = \"readings/#\"\nwindow = \"1s\"\n\
             rules = [{{ field = \"machine\", not_null = true }}]\n\
             [alerts]\nevaluate_every = \"1s\"\n\
             [alerts.rules.bad_readings]\nkind = \"quality_errors\"\nquality = \"readings\"\nabove = 3\n"
        ),
    );
    let subscribed = wait_until(TIMEOUT, || {
        http_body(monitor.port, "/api/v1/quality/readings")
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .is_some_and(|v| v["reader"]["connected"] == true)
    });
    assert!(subscribed, "{}", monitor.log());
    for _ in 0..3 {
        mosquitto_pub(port, "readings/a", br#"{"machine":null}"#);
    }
    // Three errors are not above 3: nothing pending while they are counted.
    let counted = wait_until(TIMEOUT, || {
        http_body(monitor.port, "/api/v1/quality/readings")
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .is_some_and(|v| v["error_records_total"] == 3)
    });
    assert!(counted, "{}", monitor.log());
    let evaluated = alerts(&monitor)["evaluated_at_ms"].as_u64().unwrap_or(0);
    assert!(wait_until(TIMEOUT, || alerts(&monitor)["evaluated_at_ms"]
        .as_u64()
        .is_some_and(|t| t >= evaluated + 1_000)));
    assert_eq!(alert(&alerts(&monitor), "bad_readings"), Value::Null);
    mosquitto_pub(port, "readings/a", br#"{"value":1}"#);
    mosquitto_pub(port, "readings/a", br#"{"machine":null}"#);
    let firing = wait_state(&monitor, "bad_readings", "firing");
    assert_eq!(firing["value"], 4.0);
    assert_eq!(firing["labels"]["quality"], "readings");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// A machine simulator publishes steadily, watched as a part; stopped, its MQTT subtree goes
/// silent against the rate the detector learnt (rate_anomaly, no threshold given) and the part
/// is down (part_down).
#[test]
fn a_stopped_simulator_is_a_silent_rate_anomaly_and_a_part_down() {
    let started = Instant::now();
    let mosquitto = Mosquitto::start();
    let url = mosquitto.url();
    let mut simulator = pipescope_testkit::Part::builder(env!("CARGO_BIN_EXE_pipescope"), "sim")
        .args(["simulate", "machines", "--mqtt", &url, "--rate", "200"])
        .start();
    // Serving before the monitor polls it: a poll of a part still starting is a true "down"
    // (part_down fires at once with no `for`), which a loaded machine made happen.
    simulator.wait_metric("pipescope_part_health_status", TIMEOUT, |v| v == 1.0);
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[mqtt.edge]\nurl = \"{url}\"\n\
             [watched_parts.sim]\nurl = \"http://127.0.0.1:{}\"\ninterval = \"500ms\"\ntimeout = \"1s\"\n\
             [alerts]\nevaluate_every = \"1s\"\n\
             [alerts.rules.machines_rate]\nkind = \"rate_anomaly\"\nbroker = \"edge\"\nfilter = \"machine/#\"\nwindow = \"2s\"\nwindows = 2\n\
             [alerts.rules.sim_down]\nkind = \"part_down\"\npart = \"sim\"\nseverity = \"critical\"\n",
            simulator.port()
        ),
    );
    // The detector needs a few whole windows of the steady rate before it judges one.
    let learning = Instant::now();
    assert!(wait_until(TIMEOUT, || {
        learning.elapsed() > Duration::from_secs(20)
    }));
    let view = alerts(&monitor);
    assert_eq!(
        alert(&view, "machines_rate"),
        Value::Null,
        "a steady rate is normal: {view:#}"
    );
    assert_eq!(alert(&view, "sim_down"), Value::Null, "{view:#}");

    simulator.stop(TIMEOUT);
    // The window cut short by the stop is low (a drop); whole windows of nothing are silent.
    let mut view = Value::Null;
    let silent = |view: &Value| {
        view["alerts"].as_array().and_then(|all| {
            all.iter()
                .find(|a| {
                    a["rule"] == "machines_rate"
                        && a["labels"]["anomaly"] == "silent"
                        && a["state"] == "firing"
                })
                .cloned()
        })
    };
    assert!(
        wait_until(TIMEOUT, || {
            view = alerts(&monitor);
            silent(&view).is_some()
        }),
        "no silent rate anomaly: {view:#}\n{}",
        monitor.log()
    );
    let silent = silent(&view).unwrap();
    assert_eq!(silent["labels"]["filter"], "machine/#");
    assert_eq!(silent["labels"]["broker"], "edge");
    assert_eq!(silent["value"], 0.0);
    let down = wait_state(&monitor, "sim_down", "firing");
    assert_eq!(down["labels"]["part"], "sim");
    assert_eq!(down["value"], -1.0);
    assert!(
        started.elapsed() < Duration::from_secs(75),
        "{:?}",
        started.elapsed()
    );
}

/// A request to the monitor's API with any method; the status and body, whatever the status.
fn call(monitor: &Monitor, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://127.0.0.1:{}{path}", monitor.port);
    let mut response = match (method, body) {
        ("POST", Some(body)) => agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.to_string()),
        ("DELETE", _) => agent.delete(&url).call(),
        _ => agent.get(&url).call(),
    }
    .unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (response.status().as_u16(), value)
}

/// A silence keeps a firing alert from its webhook, the API says which silence covers it, and
/// expiring the silence sends the alert; bad silences are refused with what to change.
#[test]
fn a_silenced_alert_is_not_sent_until_its_silence_is_expired() {
    let mosquitto = Mosquitto::start();
    let url = mosquitto.url();
    let sink = pipescope_testkit::webhook_sink::WebhookSink::start();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[mqtt.edge]\nurl = \"{url}\"\n\
             [alerts]\nevaluate_every = \"1s\"\n\
             [alerts.rules.edge_down]\nkind = \"mqtt_unreachable\"\nfor = \"1s\"\nlabels = {{ team = \"ops\" }}\n\
             [alerts.receivers.ops]\ntype = \"webhook\"\nurl = \"{}\"\n\
             [alerts.route]\nreceiver = \"ops\"\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\nrepeat_interval = \"2s\"\n",
            sink.url("/ops")
        ),
    );
    assert!(
        wait_until(TIMEOUT, || http_body(monitor.port, "/api/v1/silences")
            .is_some()),
        "{}",
        monitor.log()
    );
    let now = pipescope_testkit::now_ms() as u64;
    let (status, refused) = call(
        &monitor,
        "POST",
        "/api/v1/silences",
        Some(serde_json::json!({"matchers": [{"name": "team", "value": "ops"}]})),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("ends_at_ms"),
        "{refused}"
    );
    let (status, refused) = call(
        &monitor,
        "POST",
        "/api/v1/silences",
        Some(serde_json::json!({
            "matchers": [{"name": "team", "value": ".*", "is_regex": true}],
            "ends_at_ms": now + 3_600_000
        })),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("every alert"),
        "{refused}"
    );

    let (status, made) = call(
        &monitor,
        "POST",
        "/api/v1/silences",
        Some(serde_json::json!({
            "matchers": [{"name": "alertname", "value": "edge_down"}, {"name": "team", "value": "ops"}],
            "ends_at_ms": now + 3_600_000,
            "created_by": "tester",
            "comment": "broker upgrade"
        })),
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["state"], "active");
    let id = made["id"].as_str().unwrap().to_string();
    let (_, listed) = call(&monitor, "GET", "/api/v1/silences", None);
    assert_eq!(listed["silences"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed["silences"][0]["comment"], "broker upgrade");

    drop(mosquitto);
    let down = wait_state(&monitor, "edge_down", "firing");
    assert_eq!(down["silenced_by"], serde_json::json!([id]), "{down}");
    // Fired, silenced: the webhook hears nothing over several evaluations and repeat intervals.
    let firing_seen = Instant::now();
    assert!(
        !wait_until(Duration::from_secs(5), || !sink
            .received_at("/ops")
            .is_empty()),
        "a silenced alert was sent: {:?}",
        sink.received_at("/ops")
    );

    let (status, expired) = call(&monitor, "DELETE", &format!("/api/v1/silences/{id}"), None);
    assert_eq!(status, 200, "{expired}");
    assert_eq!(expired["state"], "expired");
    let (status, again) = call(&monitor, "DELETE", &format!("/api/v1/silences/{id}"), None);
    assert_eq!(status, 400, "{again}");
    let (status, _) = call(&monitor, "DELETE", "/api/v1/silences/nope", None);
    assert_eq!(status, 404);
    assert!(
        wait_until(TIMEOUT, || !sink.received_at("/ops").is_empty()),
        "the alert was not sent once its silence expired\n{}",
        monitor.log()
    );
    let message: Value = serde_json::from_str(&sink.received_at("/ops")[0].body).unwrap();
    assert_eq!(message["status"], "firing", "{message}");
    assert_eq!(message["alerts"][0]["labels"]["alertname"], "edge_down");
    assert_eq!(
        wait_state(&monitor, "edge_down", "firing")["silenced_by"],
        serde_json::json!([])
    );
    assert!(firing_seen.elapsed() >= Duration::from_secs(5));
}
