//! `pipescope demo`: brokers started for the occasion and the monitor watching them.
//!
//! Runs: the embedded MQTT broker ([`broker`], rumqttd with a `$SYS` tree; MQTT 3.1.1 for the
//! monitor, MQTT 5 for the machine simulator and the bridge), tansu as a child process
//! ([`tansu`]), the pipeline parts as supervised tasks ([`parts`]: simulate calls, process calls;
//! simulate machines → bridge → process machines → sink), a consumer that falls behind now and
//! then ([`laggard`]) and the monitor with the portal, configured for both brokers. The sink
//! writes InfluxDB line protocol to the monitor's own `/write?db=` (its embedded store).

pub mod broker;
pub mod laggard;
pub mod parts;
pub mod tansu;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::config::{self, Config};
use crate::pipeline::Stop;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the portal and API are served.
    pub listen: SocketAddr,
    /// tansu's sqlite file and log, and the monitor's store.
    pub data_dir: PathBuf,
    /// 0: a free port.
    pub mqtt_port: u16,
    /// 0: a free port.
    pub kafka_port: u16,
}

/// How long the pipeline parts get to flush and commit once stopped; a part still busy then
/// (a broker that does not answer) is left behind: every part is at least once, so what it did
/// not commit is read again next time.
const PARTS_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the demo until `stop` fires (in `pipescope demo`, on Ctrl-C or SIGTERM).
pub async fn run(options: DemoOptions, stop: Stop) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data_dir).with_context(|| {
        format!(
            "cannot create the demo's data directory {} — give another with --data-dir",
            options.data_dir.display()
        )
    })?;
    let data_dir = options
        .data_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", options.data_dir.display()))?;
    // A stop arriving while tansu starts must not leave tansu (in its own process group)
    // running: the starting task finishes and drops (kills) it.
    let Some(started) = stop
        .run_until_stopped(start_brokers(&options, &data_dir))
        .await
    else {
        println!("pipescope demo: stopped while starting");
        return Ok(());
    };
    let (mqtt, mut kafka) = started?;

    let config = demo_config(&options, &data_dir, mqtt.v5_addr(), kafka.addr())?;
    println!("pipescope demo {}", env!("CARGO_PKG_VERSION"));
    println!("  portal        http://{}/", options.listen);
    println!(
        "  MQTT broker   {} (MQTT 3.1.1) and {} (MQTT 5): embedded rumqttd {}, publishes $SYS/broker/... every second",
        mqtt.url(),
        mqtt.v5_url(),
        broker::RUMQTTD_VERSION
    );
    println!(
        "  Kafka broker  {} (tansu, sqlite engine, pid {}, log {})",
        kafka.addr(),
        kafka.pid().map(|p| p.to_string()).unwrap_or_default(),
        kafka.log_path().display()
    );
    println!("  data          {}", data_dir.display());
    println!(
        "  monitor       configured for both (Kafka cluster \"demo\", MQTT broker \"demo\" over MQTT 5); observed flows \"machines\" (MQTT machine/# → Kafka {}) and \"calls\" (Kafka {}): #/flows in the portal",
        parts::MACHINE_DATA_TOPIC,
        parts::CALLS_TOPIC
    );
    println!(
        "  pipeline      simulate calls → Kafka {} (600 calls/min); process calls (group pipescope-process-calls)",
        parts::CALLS_TOPIC
    );
    println!(
        "                lagging consumer on {} (group {}): keeps up {}s, pauses {}s, in turn",
        parts::CALLS_TOPIC,
        laggard::GROUP,
        laggard::KEEP_UP.as_secs(),
        laggard::PAUSE.as_secs()
    );
    println!(
        "                simulate machines ({}/s) → MQTT 5 → bridge → Kafka {}; process machines {} → {}",
        parts::MACHINE_RATE,
        parts::MACHINE_DATA_TOPIC,
        parts::MACHINE_DATA_TOPIC,
        parts::MACHINE_OUT_TOPIC
    );
    println!(
        "                simulate visits ({}/s, with empty, null and malformed records on purpose) → Kafka {}; process passthrough → {}, observed for quality (#/quality)",
        parts::VISITS_PER_SECOND,
        parts::VISITS_TOPIC,
        parts::VISITS_OUT_TOPIC
    );
    println!(
        "                sink influx: {} → {} (the monitor's InfluxDB 1.x endpoint, its embedded store; measurement {})",
        parts::MACHINE_OUT_TOPIC,
        sink_url(options.listen),
        parts::SINK_MEASUREMENT
    );
    println!("Stop with Ctrl-C.");

    // The monitor and the parts stop together: on `stop`, or when the monitor fails.
    let stop = stop.child();
    let handles = match start_parts(
        &data_dir,
        kafka.addr(),
        &mqtt.v5_url(),
        options.listen,
        &stop,
    ) {
        Ok(handles) => handles,
        Err(e) => {
            kafka.stop();
            return Err(e);
        }
    };
    let result = crate::monitor::run(config, stop.clone()).await;
    stop.stop();
    let count = handles.len();
    let all = futures::future::join_all(handles);
    if tokio::time::timeout(PARTS_STOP_TIMEOUT, all).await.is_err() {
        tracing::warn!(
            "demo: the pipeline parts did not stop within {PARTS_STOP_TIMEOUT:?}; stopping anyway"
        );
    } else {
        tracing::info!("demo: {count} pipeline parts stopped");
    }
    kafka.stop();
    drop(mqtt);
    result
}

/// Starts every pipeline part and the lagging consumer, each supervised until `stop`.
fn start_parts(
    data_dir: &std::path::Path,
    kafka: SocketAddr,
    mqtt_v5: &str,
    monitor: SocketAddr,
    stop: &Stop,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut all = parts::pipeline_parts(kafka, data_dir)?;
    all.extend(parts::machine_parts(
        kafka,
        mqtt_v5,
        &format!("http://{monitor}"),
    )?);
    let bootstrap = kafka.to_string();
    all.push(parts::Part {
        name: "lagging consumer",
        start: Box::new(move |stop| {
            Box::pin(laggard::run(
                bootstrap.clone(),
                parts::CALLS_TOPIC.to_owned(),
                stop,
            ))
        }),
    });
    Ok(all
        .into_iter()
        .map(|part| parts::supervise(part, stop.clone()))
        .collect())
}

async fn start_brokers(
    options: &DemoOptions,
    data_dir: &std::path::Path,
) -> anyhow::Result<(broker::EmbeddedBroker, tansu::ManagedTansu)> {
    let mqtt_addr = SocketAddr::from(([127, 0, 0, 1], options.mqtt_port));
    let mqtt = tokio::task::spawn_blocking(move || broker::EmbeddedBroker::start(mqtt_addr))
        .await
        .context("the task starting the MQTT broker failed")??;
    let kafka_addr = free_or(options.kafka_port)?;
    let tansu_dir = data_dir.join("tansu");
    // If a signal ends the demo meanwhile, this task still finishes and drops (kills) tansu.
    let kafka =
        tokio::task::spawn_blocking(move || tansu::ManagedTansu::start(kafka_addr, &tansu_dir))
            .await
            .context("the task starting tansu failed")??;
    Ok((mqtt, kafka))
}

/// Where the demo's sink writes, as printed: the monitor's own InfluxDB 1.x endpoint.
pub fn sink_url(monitor: SocketAddr) -> String {
    format!("http://{monitor}/write?db={}", parts::SINK_DATABASE)
}

fn free_or(port: u16) -> anyhow::Result<SocketAddr> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("cannot use {addr} for Kafka — is another broker using the port? Pick another with --kafka-port")
    })?;
    Ok(listener.local_addr()?)
}

/// The monitor's configuration for the demo, written as the TOML a user would write, so it goes
/// through the same defaults and checks as `pipescope run`. `mqtt_v5` is the broker's MQTT 5
/// listener: the flows' readers need user properties (the traces).
pub fn demo_config(
    options: &DemoOptions,
    data_dir: &std::path::Path,
    mqtt_v5: SocketAddr,
    kafka: SocketAddr,
) -> anyhow::Result<Config> {
    let store = data_dir.join("store");
    let text = format!(
        "[web]\nlisten = {listen:?}\n\n[store]\npath = {store:?}\n\n\
         [kafka.demo]\nbootstrap = [{kafka:?}]\nscrape_interval = \"5s\"\n\n\
         [mqtt.demo]\nurl = {mqtt:?}\nprotocol = \"5\"\n\n\
         [flows.machines]\nhops = [{{ mqtt = \"demo\", filter = \"machine/#\" }}, \
         {{ kafka = \"demo\", topic = {machine_data:?} }}, \
         {{ kafka = \"demo\", topic = {machine_out:?}, inputs = true }}]\nkind_prefixes = [{machines:?}]\n\n\
         [flows.calls]\nhops = [{{ kafka = \"demo\", topic = {calls:?} }}, \
         {{ kafka = \"demo\", topic = {calls_state:?}, inputs = true }}]\n\
         kind_prefixes = [{calls_origin:?}]\n\n\
         [quality.visits]\nkafka = \"demo\"\ntopic = {visits_out:?}\nreport_every = \"1m\"\n\
         rules = [{{ field = \"user_id\", required = true, not_null = true, not_empty = true }}, \
         {{ field = \"page\", required = true, not_null = true, not_empty = true }}, \
         {{ field = \"duration_ms\", type = \"integer\", range = [0, 86400000] }}]\n\n\
         [alerts]\nevaluate_every = \"5s\"\n\n\
         [alerts.rules.visits_errors]\nkind = \"quality_errors\"\nquality = \"visits\"\nabove = 0\nfor = \"10s\"\n\
         summary = \"{{quality}}: {{value}} records a minute break a rule (the simulator injects them)\"\n\n\
         [alerts.rules.group_lag]\nkind = \"group_lag_offsets\"\nabove = 15\nfor = \"5m\"\n\n\
         [alerts.rules.kafka_down]\nkind = \"kafka_cluster_unreachable\"\nfor = \"30s\"\nseverity = \"critical\"\n",
        listen = options.listen.to_string(),
        store = store.display().to_string(),
        kafka = kafka.to_string(),
        mqtt = format!("mqtt://{mqtt_v5}"),
        machine_data = parts::MACHINE_DATA_TOPIC,
        machine_out = parts::MACHINE_OUT_TOPIC,
        machines = parts::MACHINES_ORIGIN,
        calls = parts::CALLS_TOPIC,
        calls_state = parts::CALLS_CHANGELOG_TOPIC,
        calls_origin = parts::CALLS_ORIGIN,
        visits_out = parts::VISITS_OUT_TOPIC,
    );
    config::parse("the demo's configuration", &text, std::iter::empty())
        .map_err(|errors| anyhow::anyhow!("{errors}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_observes_its_machines_and_calls_flows() {
        let options = DemoOptions {
            listen: "127.0.0.1:8080".parse().unwrap(),
            data_dir: "/tmp/d".into(),
            mqtt_port: 0,
            kafka_port: 0,
        };
        let config = demo_config(
            &options,
            std::path::Path::new("/tmp/d"),
            "127.0.0.1:1884".parse().unwrap(),
            "127.0.0.1:9092".parse().unwrap(),
        )
        .unwrap();
        let hops = |flow: &str| -> Vec<String> {
            config.flows[flow]
                .hops
                .iter()
                .map(crate::completeness::hop_name)
                .collect()
        };
        assert_eq!(
            hops("machines"),
            [
                "mqtt:demo:machine/#",
                "kafka:demo:machine.data",
                "kafka:demo:machine.out"
            ]
        );
        assert!(config.flows["machines"].hops[2].inputs);
        assert_eq!(
            config.quality["visits"].topic.as_deref(),
            Some("visits.out")
        );
        assert_eq!(config.quality["visits"].rules.len(), 3);
        assert_eq!(
            hops("calls"),
            [
                "kafka:demo:calls",
                "kafka:demo:pipescope-process-calls-changelog"
            ]
        );
        assert_eq!(
            config.mqtt["demo"].protocol,
            crate::config::MqttProtocol::V5
        );
        assert_eq!(
            config.flows["machines"].kind_prefixes,
            [parts::MACHINES_ORIGIN]
        );
    }
}
