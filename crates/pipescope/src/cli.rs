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
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented example configuration that passes `pipescope check`.
    Example,
}
