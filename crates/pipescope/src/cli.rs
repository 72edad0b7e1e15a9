//! The command line: one subcommand per job.

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
