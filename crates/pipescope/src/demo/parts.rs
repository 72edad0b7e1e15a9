//! The pipeline parts the demo runs in-process, each a supervised tokio task: a part that fails
//! is logged and started again with backoff; none of them can take the demo down.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use futures::future::BoxFuture;
use pipescope_core::backoff::Backoff;
use tokio::task::JoinHandle;

use crate::pipeline::{
    Stop, bridge, process_calls, process_machines, process_passthrough, simulate_calls,
    simulate_machines, simulate_visits, sink_influx,
};

/// Kafka topics the demo's traffic goes through.
pub const CALLS_TOPIC: &str = "calls";
pub const MACHINE_DATA_TOPIC: &str = "machine.data";
pub const MACHINE_OUT_TOPIC: &str = "machine.out";
/// Where `process calls` keeps its state (its default, from its default group): the calls
/// flow reads the inputs each state record names.
pub const CALLS_CHANGELOG_TOPIC: &str = "pipescope-process-calls-changelog";
/// Machine readings per second the simulator publishes in the demo (2 lines × 5 machines × 4 sensors).
pub const MACHINE_RATE: &str = "100";
/// Where the sink writes: the InfluxDB 1.x `/write` of the monitor's own web server (its
/// embedded store), this database and measurement.
pub const SINK_DATABASE: &str = "pipescope-demo";
pub const SINK_MEASUREMENT: &str = "machine_window";
/// Web visits with defects on purpose (docs/quality-rules.md), copied by `process passthrough`:
/// the quality page shows the simulator's empty and null important fields and its malformed
/// records as rule errors and invalid records.
pub const VISITS_TOPIC: &str = "visits";
pub const VISITS_OUT_TOPIC: &str = "visits.out";
pub const VISITS_PER_SECOND: &str = "20";
pub const VISITS_DEFECTS: &[&str] = &[
    "--empty-fraction",
    "0.02",
    "--null-fraction",
    "0.02",
    "--malformed-fraction",
    "0.01",
];
/// Origin ids in the traces of the demo's simulators (their kinds on the flows page).
pub const CALLS_ORIGIN: &str = "demo-sim-calls";
pub const MACHINES_ORIGIN: &str = "demo-sim-machines";
/// The demo's bridge drops 0.5 % of the messages on purpose (seeded, docs/pipeline.md "Fault
/// injection"), so the flows page shows what a lossy hop looks like: about 30 a minute lost
/// between MQTT `machine/#` and Kafka `machine.data` — none at the MQTT hop, the same gaps at
/// the Kafka hop, and the edge saying they happened between the two.
pub const BRIDGE_FAULTS: &[&str] = &["--inject-drop", "0.005", "--inject-seed", "1"];

/// Parses a part's arguments as its subcommand would, so the defaults and checks are the same.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct Parse<T: clap::Args> {
    #[command(flatten)]
    args: T,
}

fn parse<T: clap::Args>(part: &str, args: &[String]) -> anyhow::Result<T> {
    Parse::<T>::try_parse_from(args)
        .map(|p| p.args)
        .with_context(|| format!("the demo's arguments for {part} are wrong: {args:?}"))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// One part: its name as printed and a way to start it (again), given the demo's stop.
pub struct Part {
    pub name: &'static str,
    pub start: Box<dyn Fn(Stop) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>,
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn part<T, F>(name: &'static str, args: T, run: fn(T, Stop) -> F) -> Part
where
    T: Clone + Send + Sync + 'static,
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    Part {
        name,
        start: Box::new(move |stop| Box::pin(run(args.clone(), stop))),
    }
}

/// The demo's pipeline parts. Their /metrics servers are off (the monitor's one is the demo's).
pub fn pipeline_parts(kafka: SocketAddr, data_dir: &Path) -> anyhow::Result<Vec<Part>> {
    let kafka = kafka.to_string();
    let long_calls = data_dir.join("long-calls.log").display().to_string();
    let parts = vec![
        part(
            "simulate calls",
            parse::<simulate_calls::Args>(
                "simulate calls",
                &strings(&[
                    "--kafka",
                    &kafka,
                    "--topic",
                    CALLS_TOPIC,
                    "--calls-per-minute",
                    "600",
                    "--origin",
                    CALLS_ORIGIN,
                ]),
            )?,
            simulate_calls::run,
        ),
        part(
            "process calls",
            parse::<process_calls::Args>(
                "process calls",
                &strings(&[
                    "--kafka",
                    &kafka,
                    "--topic",
                    CALLS_TOPIC,
                    "--long-calls-log",
                    &long_calls,
                ]),
            )?,
            process_calls::run,
        ),
        part(
            "simulate visits",
            parse::<simulate_visits::Args>(
                "simulate visits",
                &strings(
                    &[
                        &["--kafka", &kafka, "--topic", VISITS_TOPIC],
                        &["--rate", VISITS_PER_SECOND, "--seed", "1"][..],
                        VISITS_DEFECTS,
                    ]
                    .concat(),
                ),
            )?,
            simulate_visits::run,
        ),
        part(
            "process passthrough",
            parse::<process_passthrough::Args>(
                "process passthrough",
                &strings(&[
                    "--kafka",
                    &kafka,
                    "--input",
                    VISITS_TOPIC,
                    "--output",
                    VISITS_OUT_TOPIC,
                ]),
            )?,
            process_passthrough::run,
        ),
    ];
    Ok(parts)
}

/// The MQTT half: simulate machines → MQTT 5 (`mqtt_v5`) → bridge → `machine.data`; process machines `machine.data` →
/// `machine.out` → sink, writing InfluxDB line protocol to `influx_url`
/// (the monitor's own `/write?db=`, so the points land in its embedded store).
pub fn machine_parts(
    kafka: SocketAddr,
    mqtt_v5: &str,
    influx_url: &str,
) -> anyhow::Result<Vec<Part>> {
    let kafka = kafka.to_string();
    let parts = vec![
        part(
            "simulate machines",
            parse::<simulate_machines::Args>(
                "simulate machines",
                &strings(&[
                    "--mqtt",
                    mqtt_v5,
                    "--lines",
                    "2",
                    "--machines",
                    "5",
                    "--sensors",
                    "4",
                    "--rate",
                    MACHINE_RATE,
                    "--origin",
                    MACHINES_ORIGIN,
                ]),
            )?,
            simulate_machines::run,
        ),
        part(
            "bridge",
            parse::<bridge::Args>(
                "bridge",
                &strings(
                    &[
                        "--kafka",
                        kafka.as_str(),
                        "--mqtt",
                        mqtt_v5,
                        "--map",
                        &format!("machine/+/+/#={MACHINE_DATA_TOPIC}"),
                        "--client-id",
                        "pipescope-demo-bridge",
                    ]
                    .into_iter()
                    .chain(BRIDGE_FAULTS.iter().copied())
                    .collect::<Vec<_>>(),
                ),
            )?,
            bridge::run,
        ),
        part(
            "process machines",
            parse::<process_machines::Args>(
                "process machines",
                &strings(&[
                    "--kafka",
                    &kafka,
                    "--input",
                    MACHINE_DATA_TOPIC,
                    "--output",
                    MACHINE_OUT_TOPIC,
                    // Short windows: a reading reaches machine.out within the flow's grace
                    // (10 s), so the edge into it judges every reading in time.
                    "--window",
                    "5s",
                ]),
            )?,
            process_machines::run,
        ),
        part(
            "sink influx",
            parse::<sink_influx::Args>(
                "sink influx",
                &strings(&[
                    "--kafka",
                    &kafka,
                    "--topic",
                    MACHINE_OUT_TOPIC,
                    "--influx",
                    influx_url,
                    "--database",
                    SINK_DATABASE,
                    "--measurement",
                    SINK_MEASUREMENT,
                    "--tag",
                    "line=line",
                    "--tag",
                    "machine=machine",
                    "--field",
                    "count=count",
                    "--time",
                    "window_end",
                ]),
            )?,
            sink_influx::run,
        ),
    ];
    Ok(parts)
}

/// Runs `part` until `stop`, starting it again with backoff whenever it fails or ends early.
pub fn supervise(part: Part, stop: Stop) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Backoff::default();
        loop {
            let started = tokio::time::Instant::now();
            // Each run in its own task: a panic in a part is a failure like another.
            let outcome = tokio::spawn((part.start)(stop.clone())).await;
            if stop.is_stopped() {
                match outcome {
                    Ok(Err(e)) => {
                        tracing::warn!("demo: {} stopped with an error: {e:#}", part.name)
                    }
                    Err(e) => tracing::warn!("demo: {} stopped with a panic: {e}", part.name),
                    Ok(Ok(())) => tracing::info!("demo: {} stopped", part.name),
                }
                return;
            }
            match outcome {
                Ok(Ok(())) => {
                    tracing::warn!("demo: {} ended by itself; starting it again", part.name)
                }
                Ok(Err(e)) => {
                    tracing::error!("demo: {} failed: {e:#}; starting it again", part.name)
                }
                Err(e) => tracing::error!("demo: {} panicked: {e}; starting it again", part.name),
            }
            // A part that ran a while before failing starts over from the shortest delay.
            if started.elapsed() > Duration::from_secs(60) {
                backoff.reset();
            }
            if stop.sleep(backoff.next_delay()).await {
                return;
            }
        }
    })
}
