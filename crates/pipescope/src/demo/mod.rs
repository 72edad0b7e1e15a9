//! `pipescope demo`: brokers started for the occasion and the monitor watching them.
//!
//! Runs today: the embedded MQTT broker ([`broker`], rumqttd with a `$SYS` tree), tansu as a
//! child process ([`tansu`]) and the monitor with the portal, configured for both.
//! Not yet: the simulators, the bridge, the processors, the sink and the lagging consumer
//! (they come with the pipeline parts); the demo says so when it starts.

pub mod broker;
pub mod tansu;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use crate::config::{self, Config};

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

/// What the demo does not start yet, printed so nobody expects traffic that is not there.
pub const NOT_RUNNING_YET: &[&str] = &[
    "traffic simulators (calls, machines)",
    "MQTT→Kafka bridge",
    "stream processors (calls, machines)",
    "Kafka→InfluxDB sink",
    "the consumer made to fall behind",
];

pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
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
    // Listen for Ctrl-C / SIGTERM from the start: one arriving while tansu starts must not kill
    // pipescope and leave tansu (in its own process group) running.
    let (mqtt, mut kafka) = tokio::select! {
        started = start_brokers(&options, &data_dir) => started?,
        () = crate::monitor::shutdown_signal() => {
            println!("pipescope demo: stopped while starting");
            return Ok(());
        }
    };

    let config = demo_config(&options, &data_dir, mqtt.addr(), kafka.addr())?;
    println!("pipescope demo {}", env!("CARGO_PKG_VERSION"));
    println!("  portal        http://{}/", options.listen);
    println!(
        "  MQTT broker   {} (embedded rumqttd {}, publishes $SYS/broker/... every second)",
        mqtt.url(),
        broker::RUMQTTD_VERSION
    );
    println!(
        "  Kafka broker  {} (tansu, sqlite engine, pid {}, log {})",
        kafka.addr(),
        kafka.pid().map(|p| p.to_string()).unwrap_or_default(),
        kafka.log_path().display()
    );
    println!("  data          {}", data_dir.display());
    println!("  monitor       configured for both (Kafka cluster \"demo\", MQTT broker \"demo\")");
    println!("  not running yet: {}", NOT_RUNNING_YET.join("; "));
    println!("Stop with Ctrl-C.");

    let result = crate::monitor::run(config).await;
    kafka.stop();
    drop(mqtt);
    result
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

fn free_or(port: u16) -> anyhow::Result<SocketAddr> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("cannot use {addr} for Kafka — is another broker using the port? Pick another with --kafka-port")
    })?;
    Ok(listener.local_addr()?)
}

/// The monitor's configuration for the demo, written as the TOML a user would write, so it goes
/// through the same defaults and checks as `pipescope run`.
pub fn demo_config(
    options: &DemoOptions,
    data_dir: &std::path::Path,
    mqtt: SocketAddr,
    kafka: SocketAddr,
) -> anyhow::Result<Config> {
    let store = data_dir.join("store");
    let text = format!(
        "[web]\nlisten = {listen:?}\n\n[store]\npath = {store:?}\n\n\
         [kafka.demo]\nbootstrap = [{kafka:?}]\nscrape_interval = \"5s\"\n\n\
         [mqtt.demo]\nurl = {mqtt:?}\n",
        listen = options.listen.to_string(),
        store = store.display().to_string(),
        kafka = kafka.to_string(),
        mqtt = format!("mqtt://{mqtt}"),
    );
    config::parse("the demo's configuration", &text, std::iter::empty())
        .map_err(|errors| anyhow::anyhow!("{errors}"))
}
