//! The demo's parts: the embedded MQTT broker with its `$SYS` tree, the managed tansu, and
//! `pipescope demo` as a user runs it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use pipescope::demo::broker::{EmbeddedBroker, mqtt_connack};
use pipescope::demo::tansu::{INSTALL, ManagedTansu, api_versions_answered};
use pipescope_testkit::{free_port, http_body, wait_until};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test]
async fn embedded_broker_delivers_messages_and_publishes_sys() {
    let broker = tokio::task::spawn_blocking(|| EmbeddedBroker::start(loopback(0)))
        .await
        .unwrap()
        .expect("the embedded broker starts");
    let mut options = MqttOptions::new("demo-test", "127.0.0.1", broker.addr().port());
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 100);
    client.subscribe("$SYS/#", QoS::AtMostOnce).await.unwrap();
    client
        .subscribe("demo/echo", QoS::AtLeastOnce)
        .await
        .unwrap();

    let mut sys: HashMap<String, Vec<String>> = HashMap::new();
    let mut echoed = 0;
    let mut published = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let received = sys
            .get("$SYS/broker/publish/messages/received")
            .and_then(|v| v.last())
            .map(String::as_str);
        let connected = sys
            .get("$SYS/broker/clients/connected")
            .and_then(|v| v.last())
            .map(String::as_str);
        let uptimes = sys.get("$SYS/broker/uptime").map_or(0, Vec::len);
        // The router's meters see our connection at its next tick: wait for it.
        if echoed == 1 && received == Some("1") && connected == Some("1") && uptimes >= 2 {
            break;
        }
        let Ok(polled) = tokio::time::timeout_at(deadline, events.poll()).await else {
            panic!("timed out; echoed {echoed}, $SYS seen: {sys:?}");
        };
        let event = polled.expect("the connection to the embedded broker holds");
        match event {
            Event::Incoming(Packet::SubAck(_)) if !published => {
                published = true;
                client
                    .publish("demo/echo", QoS::AtLeastOnce, false, "hello")
                    .await
                    .unwrap();
            }
            Event::Incoming(Packet::Publish(p)) if p.topic == "demo/echo" => {
                assert_eq!(&p.payload[..], b"hello");
                echoed += 1;
            }
            Event::Incoming(Packet::Publish(p)) => {
                let value = String::from_utf8(p.payload.to_vec()).unwrap();
                sys.entry(p.topic).or_default().push(value);
            }
            _ => {}
        }
    }
    let last = |topic: &str| sys[topic].last().unwrap().clone();
    assert_eq!(last("$SYS/broker/version"), "rumqttd version 0.20.0");
    // At least our client (the broker's own readiness probe may have overlapped it).
    let maximum: u32 = last("$SYS/broker/clients/maximum").parse().unwrap();
    assert!(maximum >= 1, "{sys:?}");
    // Exactly our one message: the broker's own `$SYS` messages are not counted, so its `#`
    // counter was not handed `$SYS` topics (MQTT-4.7.2-1, kept by the patched matching).
    assert_eq!(last("$SYS/broker/messages/received"), "1");
    assert_eq!(last("$SYS/broker/publish/bytes/received"), "5");
    // Uptime is "N seconds" and moves.
    let uptimes: Vec<u64> = sys["$SYS/broker/uptime"]
        .iter()
        .map(|v| v.strip_suffix(" seconds").unwrap().parse().unwrap())
        .collect();
    assert!(uptimes.windows(2).all(|w| w[1] >= w[0]), "{uptimes:?}");
    assert!(uptimes.last() > uptimes.first(), "{uptimes:?}");
}

#[test]
fn embedded_broker_reports_a_busy_port() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = EmbeddedBroker::start(busy.local_addr().unwrap()).unwrap_err();
    assert!(err.to_string().contains("--mqtt-port"), "{err}");
}

fn alive(pid: u32) -> bool {
    // A killed child that was waited for has no /proc entry left.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn managed_tansu_answers_restarts_after_a_crash_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let addr = loopback(free_port());
    let mut tansu = ManagedTansu::start(addr, dir.path()).expect("tansu starts");
    assert!(api_versions_answered(addr));
    assert!(
        dir.path().join("tansu.db").exists(),
        "sqlite file in the data dir"
    );
    // Without it tansu falls behind the demo's traffic within minutes (docs/brokers.md).
    let indexed: i64 = rusqlite::Connection::open(dir.path().join("tansu.db"))
        .unwrap()
        .query_row(
            "select count(*) from sqlite_master where type = 'index' and name = 'header_by_record'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 1, "the demo's tansu has the record-header index");
    let first = tansu.pid().unwrap();
    Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || tansu.restarts() == 1
            && api_versions_answered(addr)),
        "tansu was not restarted; log:\n{}",
        std::fs::read_to_string(tansu.log_path()).unwrap_or_default()
    );
    let second = tansu.pid().unwrap();
    assert_ne!(first, second);
    tansu.stop();
    assert!(!alive(second), "tansu {second} still runs after stop");
    assert!(!api_versions_answered(addr));
}

/// Process ids whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(needle).then_some(pid)
        })
        .collect()
}

/// The JSON body of a GET on the demo's API, if it answered 200.
fn api_json(port: u16, path: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&http_body(port, path)?).ok()
}

/// End offset sums of the demo cluster's topics.
fn end_offsets(port: u16) -> HashMap<String, i64> {
    let Some(serde_json::Value::Array(topics)) =
        api_json(port, "/api/v1/kafka/clusters/demo/topics").map(|page| page["items"].clone())
    else {
        return HashMap::new();
    };
    topics
        .iter()
        .filter_map(|t| {
            Some((
                t["name"].as_str()?.to_owned(),
                t["end_offset_sum"].as_i64()?,
            ))
        })
        .collect()
}

#[test]
fn demo_runs_the_calls_and_machines_pipelines_and_a_lagging_consumer_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (web, mqtt, kafka) = (free_port(), free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["demo", "--listen", &format!("127.0.0.1:{web}")])
        .args(["--mqtt-port", &mqtt.to_string()])
        .args(["--kafka-port", &kafka.to_string()])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let fail = |child: std::process::Child, what: String| -> ! {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().unwrap();
        panic!(
            "{what}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let health = wait_until(Duration::from_secs(40), || {
        http_body(web, "/health").is_some()
    });
    if !health {
        fail(child, "no /health from the demo".into());
    }
    assert!(mqtt_connack(loopback(mqtt)), "the MQTT broker answers");
    assert!(api_versions_answered(loopback(kafka)), "tansu answers");
    let tansu = processes_with(&format!("--listener-url tcp://127.0.0.1:{kafka}"));
    assert_eq!(tansu.len(), 1, "one tansu child: {tansu:?}");

    // Every topic of the pipeline gets data, and keeps getting it.
    // Calls, and the MQTT half: machines → MQTT 5 → bridge → machine.data → process machines.
    let topics = ["calls", "machine.data", "machine.out"];
    let mut first = HashMap::new();
    let seen = wait_until(Duration::from_secs(90), || {
        first = end_offsets(web);
        topics.iter().all(|t| first.get(*t).is_some_and(|&o| o > 0))
    });
    if !seen {
        fail(
            child,
            format!("not every pipeline topic has data: {first:?}"),
        );
    }
    let mut later = HashMap::new();
    let grew = wait_until(Duration::from_secs(60), || {
        later = end_offsets(web);
        topics
            .iter()
            .all(|t| later.get(*t).is_some_and(|o| *o > first[*t]))
    });
    if !grew {
        fail(
            child,
            format!("end offsets did not grow: {first:?} → {later:?}"),
        );
    }

    let expected_groups = [
        "pipescope-process-calls",
        "pipescope-demo-laggard",
        "pipescope-process-machines",
    ];
    let mut groups = Vec::new();
    let present = wait_until(Duration::from_secs(60), || {
        groups = api_json(web, "/api/v1/kafka/clusters/demo/groups")
            .and_then(|page| page["items"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|g| g["name"].as_str().map(str::to_owned))
            .collect();
        expected_groups
            .iter()
            .all(|g| groups.iter().any(|n| n == g))
    });
    if !present {
        fail(child, format!("consumer groups missing: {groups:?}"));
    }

    // The monitor reads the traces of the machines flow; the bridge drops 0.5 % on purpose, so
    // the edge between the hops counts loss, and the MQTT hop (before the bridge) none.
    let mut flow = serde_json::Value::Null;
    let lossy = wait_until(Duration::from_secs(60), || {
        flow = api_json(web, "/api/v1/flows/machines").unwrap_or_default();
        flow["edges"][0]["figures"]["total"]["counters"]["lost"]
            .as_u64()
            .is_some_and(|lost| lost > 0)
    });
    if !lossy {
        fail(child, format!("the machines edge shows no loss: {flow}"));
    }
    // The flow's last hop reads process machines' output by the inputs its windows name.
    let processed = wait_until(Duration::from_secs(30), || {
        flow = api_json(web, "/api/v1/flows/machines").unwrap_or_default();
        flow["edges"][1]["figures"]["total"]["counters"]["matched"]
            .as_u64()
            .is_some_and(|matched| matched > 0)
    });
    if !processed {
        fail(
            child,
            format!("the edge into machine.out matched no reading: {flow}"),
        );
    }
    let calls_processed = wait_until(Duration::from_secs(30), || {
        flow = api_json(web, "/api/v1/flows/calls").unwrap_or_default();
        flow["edges"][0]["figures"]["total"]["counters"]["matched"]
            .as_u64()
            .is_some_and(|matched| matched > 0)
    });
    if !calls_processed {
        fail(
            child,
            format!("the edge into process calls' state matched no call: {flow}"),
        );
    }
    // The visits, defects included, copied by process passthrough and observed for quality.
    let mut quality = serde_json::Value::Null;
    let observed = wait_until(Duration::from_secs(30), || {
        quality = api_json(web, "/api/v1/quality/visits").unwrap_or_default();
        quality["records_total"].as_u64().is_some_and(|n| n > 0)
            && quality["error_records_total"]
                .as_u64()
                .is_some_and(|n| n > 0)
    });
    if !observed {
        fail(
            child,
            format!("the visits' quality shows no records or no errors: {quality}"),
        );
    }
    flow = api_json(web, "/api/v1/flows/machines").unwrap_or_default();
    let mqtt_hop = &flow["hops"][0];
    if !mqtt_hop["hop"]
        .as_str()
        .is_some_and(|h| h.starts_with("mqtt:"))
        || mqtt_hop["figures"]["total"]["counters"]["lost"].as_u64() != Some(0)
    {
        fail(
            child,
            format!("the MQTT hop of the machines flow counts loss: {mqtt_hop}"),
        );
    }

    // The monitor watches the embedded broker and reads its $SYS figures.
    let mut sys = serde_json::Value::Null;
    let seen_sys = wait_until(Duration::from_secs(30), || {
        sys = api_json(web, "/api/v1/mqtt/brokers/demo/sys").unwrap_or_default();
        sys["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("rumqttd"))
    });
    if !seen_sys {
        fail(child, format!("no $SYS from the embedded broker: {sys}"));
    }

    // The sink writes machine.out's windows into the monitor's own store through /write.
    let mut stored = serde_json::Value::Null;
    let sunk = wait_until(Duration::from_secs(60), || {
        stored = api_json(web, "/api/v1/series?metric=machine_window_count").unwrap_or_default();
        stored.to_string().contains("\"machine\"")
    });
    if !sunk {
        fail(child, format!("no sink data in the store: {stored}"));
    }

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut stopped = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            stopped = child.try_wait().unwrap();
            stopped.is_some()
        }),
        "the demo did not stop on SIGTERM"
    );
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stopped.unwrap().success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("portal        http://127.0.0.1:{web}/")),
        "{stdout}"
    );
    assert!(
        stdout.contains("simulate machines (100/s) → MQTT 5 → bridge → Kafka machine.data; process machines machine.data → machine.out"),
        "{stdout}"
    );
    assert!(stderr.contains("9 pipeline parts stopped"), "{stderr}");
    assert!(!alive(tansu[0]), "tansu {} left behind", tansu[0]);
    assert!(processes_with(&format!("tcp://127.0.0.1:{kafka}")).is_empty());
}

#[test]
fn demo_without_tansu_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["demo", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(dir.path())
        .env("PATH", "/nonexistent")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(INSTALL), "{stderr}");
}

/// Ctrl-C ends everything within a few seconds whatever the brokers do: here tansu is frozen
/// (SIGSTOP) while the pipeline runs, so every part and the monitor are waiting on it.
#[test]
fn demo_stops_within_seconds_on_sigterm_while_its_kafka_is_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let (web, kafka) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["demo", "--listen", &format!("127.0.0.1:{web}")])
        .args(["--kafka-port", &kafka.to_string()])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let flowing = wait_until(Duration::from_secs(90), || {
        end_offsets(web).get("calls").is_some_and(|&o| o > 0)
    });
    let tansu = processes_with(&format!("--listener-url tcp://127.0.0.1:{kafka}"));
    if !flowing || tansu.len() != 1 {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "the demo's calls did not flow (tansu {tansu:?})\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let signal = |name: &str, pid: u32| {
        Command::new("kill")
            .args([name, &pid.to_string()])
            .status()
            .unwrap()
    };
    signal("-STOP", tansu[0]);
    let asked = std::time::Instant::now();
    signal("-TERM", child.id());
    let mut stopped = None;
    let in_time = wait_until(Duration::from_secs(10), || {
        stopped = child.try_wait().unwrap();
        stopped.is_some()
    });
    let took = asked.elapsed();
    if !in_time {
        signal("-CONT", tansu[0]);
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        in_time,
        "the demo did not stop within 10 s of SIGTERM with tansu frozen\n{stderr}"
    );
    assert!(stopped.unwrap().success(), "{stderr}");
    assert!(
        wait_until(Duration::from_secs(5), || !alive(tansu[0])),
        "tansu {} left behind",
        tansu[0]
    );
    eprintln!("stopped in {took:?}");
}
