//! Health that tells the truth: `/health` (liveness), `/ready` (every source reached once, the
//! store writable) and the watched parts, against a real tansu and real parts.

use std::time::Duration;

use pipescope::shutdown::Stop;
use pipescope_testkit::part::Part;
use pipescope_testkit::tansu::Tansu;
use pipescope_testkit::{free_port, http_body, http_get, wait_until};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

fn json(port: u16, path: &str) -> Option<(u16, Value)> {
    let (status, body) = http_get(port, path)?;
    Some((status, serde_json::from_str(&body).ok()?))
}

fn source<'a>(ready: &'a Value, kind: &str, name: &str) -> &'a Value {
    ready["sources"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["kind"] == kind && s["name"] == name))
        .unwrap_or(&Value::Null)
}

fn part<'a>(parts: &'a Value, name: &str) -> &'a Value {
    parts
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == name))
        .unwrap_or(&Value::Null)
}

fn simulator(bootstrap: &str, topic: &str) -> Part {
    Part::builder(env!("CARGO_BIN_EXE_pipescope"), topic)
        .args([
            "simulate",
            "calls",
            "--kafka",
            bootstrap,
            "--topic",
            topic,
            "--partitions",
            "1",
            "--calls-per-minute",
            "60",
        ])
        .start()
}

/// Forwards every connection on `port` to `target`: the Kafka bootstrap address appears when
/// this starts (tansu picks its own port).
async fn forward(port: u16, target: String) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the forwarder's port is free");
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut broker) = tokio::net::TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
            }
        });
    }
}

/// A monitor whose Kafka is not there yet is live but not ready, and says it waits for that
/// cluster; it turns ready once the cluster answers. Two real parts are watched: both up and
/// healthy, then one stopped is down (since then, with its error) while the other stays up, and
/// /ready stays ready (each was reached once).
#[test]
fn live_before_its_sources_ready_once_each_was_reached_and_a_stopped_part_is_down() {
    let tansu = Tansu::start();
    let part_a = simulator(&tansu.bootstrap(), "calls-a");
    let mut part_b = simulator(&tansu.bootstrap(), "calls-b");
    let kafka_port = free_port();
    let web = free_port();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[web]\nlisten = \"127.0.0.1:{web}\"\n[store]\npath = {:?}\n\
         [kafka.k]\nbootstrap = \"127.0.0.1:{kafka_port}\"\nscrape_interval = \"1s\"\n\
         [watched_parts.a]\nurl = \"http://127.0.0.1:{}\"\ninterval = \"500ms\"\n\
         [watched_parts.b]\nurl = \"http://127.0.0.1:{}/\"\ninterval = \"500ms\"\ntimeout = \"1s\"\n",
        dir.path().join("store").display().to_string(),
        part_a.port(),
        part_b.port(),
    );
    let config = pipescope::config::parse("test", &text, std::iter::empty()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stop = Stop::new();
    let monitor = runtime.spawn(pipescope::monitor::run(config, stop.clone()));

    // Live, not ready: the cluster was never reached (tried and failed).
    let mut ready = Value::Null;
    assert!(
        wait_until(TIMEOUT, || {
            ready = json(web, "/ready").map(|r| r.1).unwrap_or_default();
            source(&ready, "kafka", "k")["last_error"].is_string()
        }),
        "the Kafka source never failed: {ready}"
    );
    let (status, ready) = json(web, "/ready").unwrap();
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["ready"], false);
    let kafka = source(&ready, "kafka", "k");
    assert_eq!(kafka["state"], "never_reached", "{ready}");
    assert!(
        ready["waiting_for"]
            .as_array()
            .unwrap()
            .contains(&Value::from("kafka k")),
        "{ready}"
    );
    assert_eq!(source(&ready, "store", "store")["state"], "up", "{ready}");
    let (status, health) = json(web, "/health").unwrap();
    assert_eq!(
        (status, &health["status"]),
        (200, &Value::from("ok")),
        "{health}"
    );

    // Both parts answer: up and healthy.
    let mut parts = Value::Null;
    assert!(
        wait_until(TIMEOUT, || {
            parts = json(web, "/api/v1/parts").map(|r| r.1).unwrap_or_default();
            ["a", "b"]
                .iter()
                .all(|n| part(&parts, n)["up"] == true && part(&parts, n)["healthy"] == true)
        }),
        "the parts are not both up and healthy: {parts}"
    );

    // The cluster appears: ready.
    runtime.spawn(forward(kafka_port, tansu.bootstrap()));
    let mut ready = Value::Null;
    assert!(
        wait_until(TIMEOUT, || {
            let answer = json(web, "/ready");
            ready = answer.as_ref().map(|r| r.1.clone()).unwrap_or_default();
            answer.is_some_and(|(status, _)| status == 200)
        }),
        "never ready: {ready}"
    );
    let kafka = source(&ready, "kafka", "k");
    assert_eq!(kafka["state"], "up", "{ready}");
    assert_eq!(kafka["first_reached_ms"], kafka["since_ms"], "{ready}");
    assert_eq!(ready["waiting_for"], Value::Array(Vec::new()));

    // One part stops: down since then, the other still up; still ready.
    let b_up_since = part(&parts, "b")["since_ms"].as_u64().unwrap();
    part_b.terminate();
    assert!(
        wait_until(TIMEOUT, || {
            parts = json(web, "/api/v1/parts").map(|r| r.1).unwrap_or_default();
            part(&parts, "b")["up"] == false
        }),
        "the stopped part is not down: {parts}"
    );
    let b = part(&parts, "b");
    assert_eq!(b["healthy"], false);
    assert!(b["since_ms"].as_u64().unwrap() > b_up_since, "{b}");
    assert!(
        b["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach the part")),
        "{b}"
    );
    assert!(b["last_seen_ms"].as_u64().unwrap() >= b_up_since, "{b}");
    assert_eq!(part(&parts, "a")["up"], true, "{parts}");
    let metrics = http_body(web, "/metrics").unwrap();
    for line in [
        "pipescope_part_up{part=\"a\"} 1",
        "pipescope_part_up{part=\"b\"} 0",
        "pipescope_part_health_status{part=\"a\"} 1",
        "pipescope_part_health_status{part=\"b\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from /metrics");
    }
    assert!(metrics.contains("pipescope_part_last_seen_timestamp_seconds{part=\"b\"}"));
    let (status, ready) = json(web, "/ready").unwrap();
    assert_eq!(status, 200, "reached once is enough: {ready}");
    assert_eq!(source(&ready, "part", "b")["state"], "down", "{ready}");

    stop.stop();
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), monitor).await })
        .expect("the monitor stops")
        .expect("no panic")
        .expect("a clean stop");
    drop(part_a);
}
