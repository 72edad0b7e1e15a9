//! The command line: one subcommand per job.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pipescope",
    version,
    about = "Watches MQTT + Kafka data pipelines end to end"
)]
pub struct Cli {
    /// Log filter, as in RUST_LOG (for example "info" or "pipescope=debug").
    #[arg(long, global = true, env = "PIPESCOPE_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the monitor: watch the configured brokers and serve the portal and API.
    Run {
        /// The configuration file.
        #[arg(short, long, default_value = "pipescope.toml")]
        config: PathBuf,
    },
    /// Check a configuration file and report every error in it (exit 2 when there are any).
    Check {
        #[arg(short, long, default_value = "pipescope.toml")]
        config: PathBuf,
    },
    /// Start brokers for the occasion (embedded MQTT, tansu for Kafka) and the monitor watching them.
    Demo {
        /// Where the portal, API, /metrics and /health are served.
        #[arg(long, default_value = "127.0.0.1:7575")]
        listen: SocketAddr,
        /// tansu's data and log, and the monitor's store.
        #[arg(long, default_value = "pipescope-demo")]
        data_dir: PathBuf,
        /// Port of the embedded MQTT broker on 127.0.0.1 (0: a free one).
        #[arg(long, default_value_t = 0)]
        mqtt_port: u16,
        /// Port of tansu on 127.0.0.1 (0: a free one).
        #[arg(long, default_value_t = 0)]
        kafka_port: u16,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the version.
    Version,
    /// Traffic simulators (pipeline parts).
    Simulate {
        #[command(subcommand)]
        command: SimulateCommand,
    },
    /// MQTT → Kafka bridge, at least once (pipeline part).
    Bridge(Box<crate::pipeline::bridge::Args>),
    /// Stateful stream processors (pipeline parts).
    Process {
        #[command(subcommand)]
        command: ProcessCommand,
    },
    /// Kafka → outside systems (pipeline parts).
    Sink {
        #[command(subcommand)]
        command: SinkCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// Phone calls to a Kafka topic: Poisson arrivals, exponential durations.
    Calls(Box<crate::pipeline::simulate_calls::Args>),
    /// Machines' sensor states over MQTT, or the replay of an event file.
    Machines(Box<crate::pipeline::simulate_machines::Args>),
    /// Producers and consumer groups over many topics; groups slow, stalled, stopped,
    /// rewinding or crashing on demand.
    Traffic(Box<crate::pipeline::simulate_traffic::Args>),
}

#[derive(Debug, Subcommand)]
pub enum ProcessCommand {
    /// Running call totals, state in a compacted changelog topic.
    Calls(Box<crate::pipeline::process_calls::Args>),
    /// machine.data → machine.out in event-time tumbling windows.
    Machines(Box<crate::pipeline::process_machines::Args>),
}

#[derive(Debug, Subcommand)]
pub enum SinkCommand {
    /// Kafka topics → InfluxDB line protocol, offsets committed after the write.
    Influx(Box<crate::pipeline::sink_influx::Args>),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented example configuration that passes `pipescope check`.
    Example,
}
