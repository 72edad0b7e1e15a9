//! The command line: one subcommand per job.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory, Parser, Subcommand};

use crate::config::parts::part_flags;
use crate::pipeline::PART_CONFIG;

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
        /// When the store's database is corrupt, rename it beside itself
        /// (store.db.corrupt-<time>, kept) and start with an empty store.
        #[arg(long)]
        move_corrupt_store_aside: bool,
    },
    /// Check a configuration file and report every error in it (exit 2 when there are any).
    Check {
        #[arg(short, long, default_value = "pipescope.toml")]
        config: PathBuf,
        /// Also print the series the store and InfluxDB would receive, and the store's disk per
        /// day, from each Kafka cluster were it this size, before and after the series bounds:
        /// `partitions=100000,topics=20000,groups=10000[,group_partitions=N]`.
        #[arg(long, value_name = "SIZES")]
        cluster_size: Option<pipescope_core::series_budget::ClusterSize>,
    },
    /// Start brokers for the occasion (embedded MQTT, tansu for Kafka) and the monitor watching
    /// them (in builds with the `demo` feature, the default).
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
    /// Profile records (a JSON-lines file, a Kafka topic, an MQTT filter) into an HTML report
    /// and/or JSON: per field presence, types, distinct and top values, quantiles, alerts.
    Profile(Box<crate::profile::Args>),
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
    /// Web-visit events to a Kafka topic, with empty, null and malformed records on purpose.
    Visits(Box<crate::pipeline::simulate_visits::Args>),
}

#[derive(Debug, Subcommand)]
pub enum ProcessCommand {
    /// Running call totals, state in a compacted changelog topic.
    Calls(Box<crate::pipeline::process_calls::Args>),
    /// machine.data → machine.out in event-time tumbling windows.
    Machines(Box<crate::pipeline::process_machines::Args>),
    /// Copies one topic to another, at least once, keys and headers kept.
    Passthrough(Box<crate::pipeline::process_passthrough::Args>),
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

/// What `pipescope demo` says in a build without the `demo` feature.
pub const NO_DEMO: &str = "error: this pipescope was built without the demo (cargo feature \
    `demo`, left out of production builds to keep the embedded MQTT broker out) — run the demo \
    from a default build: cargo run -p pipescope -- demo";

/// Parses the command line. A pipeline part given `--config FILE` takes its options from its
/// table in FILE (`[bridge]`, `[sink.influx]`, ...: the subcommand's words), keys named as its
/// long flags; the command line, then the environment, win over the file. The file's options
/// are handed to clap as flags, so they are checked exactly like typed ones.
pub fn parse(args: Vec<OsString>) -> Result<Cli, ParseError> {
    let command = Cli::command();
    // A first, lenient look: which part, which file, and which options came from elsewhere.
    let Ok(lenient) = command
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(&args)
    else {
        return Cli::try_parse_from(&args).map_err(ParseError::Clap);
    };
    let mut path = Vec::new();
    let mut matches = &lenient;
    let mut part = &command;
    while let Some((name, sub)) = matches.subcommand() {
        let Some(next) = part.find_subcommand(name) else {
            break;
        };
        path.push(name.to_string());
        matches = sub;
        part = next;
    }
    let file = match matches.try_get_one::<PathBuf>(PART_CONFIG) {
        Ok(Some(file)) => file.clone(),
        _ => return Cli::try_parse_from(&args).map_err(ParseError::Clap),
    };
    let text = std::fs::read_to_string(&file).map_err(|e| ParseError::File {
        file: file.clone(),
        message: format!("cannot read it: {e}"),
    })?;
    let flags = part_flags(&text, &path, part, |id| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    })
    .map_err(|message| ParseError::File {
        file: file.clone(),
        message,
    })?;
    let mut merged = args;
    merged.extend(flags.into_iter().map(OsString::from));
    Cli::try_parse_from(&merged).map_err(|error| ParseError::WithFile { file, error })
}

/// Why the command line (with its file) was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    Clap(clap::Error),
    #[error("{}: {message}", file.display())]
    File { file: PathBuf, message: String },
    #[error("{error} (some options came from {})", file.display())]
    WithFile { file: PathBuf, error: clap::Error },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(file_text: &str, args: &[&str]) -> Result<Cli, ParseError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parts.toml");
        std::fs::write(&file, file_text).unwrap();
        let mut argv: Vec<OsString> = args.iter().map(OsString::from).collect();
        argv.push("--config".into());
        argv.push(file.into());
        parse(argv)
    }

    fn sink(cli: Cli) -> crate::pipeline::sink_influx::Args {
        match cli.command {
            Command::Sink {
                command: SinkCommand::Influx(args),
            } => *args,
            other => panic!("not the sink: {other:?}"),
        }
    }

    const SINK: &str = r#"
        [sink.influx]
        topic = ["machine.out", "calls"]
        database = "pipeline"
        measurement = "machine"
        batch_size = 100
        batch-interval = "250ms"
        kafka_option = { "session.timeout.ms" = "6000" }
        [sink.influx.field]
        mean = "sensors.temperature.mean"
        [sink.influx.tag]
        machine = "machine"
        [bridge]
        map = { "machine/+/+/#" = "machine.data" }
    "#;

    #[test]
    fn a_part_takes_its_table_lists_maps_and_both_spellings_of_keys() {
        let args = sink(parse_with(SINK, &["pipescope", "sink", "influx"]).unwrap());
        assert_eq!(args.topics, ["machine.out", "calls"]);
        assert_eq!(args.database, "pipeline");
        assert_eq!(args.batch_size, 100);
        assert_eq!(args.batch_interval, std::time::Duration::from_millis(250));
        assert_eq!(args.fields, ["mean=sensors.temperature.mean"]);
        assert_eq!(args.tags, ["machine=machine"]);
        assert_eq!(args.kafka.kafka_option, ["session.timeout.ms=6000"]);
        // What the file does not set keeps its default.
        assert_eq!(args.group, "pipescope-sink-influx");
    }

    #[test]
    fn the_command_line_wins_over_the_file_lists_included() {
        let cli = parse_with(
            SINK,
            &[
                "pipescope",
                "sink",
                "influx",
                "--database",
                "other",
                "--field",
                "max=sensors.temperature.max",
            ],
        )
        .unwrap();
        let args = sink(cli);
        assert_eq!(args.database, "other");
        assert_eq!(args.fields, ["max=sensors.temperature.max"]);
        assert_eq!(args.measurement, "machine");
    }

    #[test]
    fn a_boolean_flag_is_set_by_true_and_left_by_false() {
        let machines = |text: &str| match parse_with(text, &["pipescope", "simulate", "machines"])
            .unwrap()
            .command
        {
            Command::Simulate {
                command: SimulateCommand::Machines(args),
            } => args.repeat,
            other => panic!("{other:?}"),
        };
        assert!(machines("[simulate.machines]\nrepeat = true\n"));
        assert!(!machines("[simulate.machines]\nrepeat = false\n"));
    }

    #[test]
    fn mistakes_in_the_file_are_named_with_the_file_table_and_key() {
        let error = |text: &str| {
            parse_with(text, &["pipescope", "sink", "influx"])
                .unwrap_err()
                .to_string()
        };
        let unknown = error("[sink.influx]\ndatabse = \"x\"\n");
        assert!(unknown.contains("parts.toml"), "{unknown}");
        assert!(
            unknown.contains("[sink.influx] databse: no such option"),
            "{unknown}"
        );
        assert!(unknown.contains("database"), "{unknown}");
        let missing = error("[bridge]\nmqtt = \"mqtt://h:1883\"\n");
        assert!(missing.contains("no [sink.influx] table"), "{missing}");
        let typed = error("[sink.influx]\ndatabase = [1, 2]\n");
        assert!(typed.contains("database: takes one value"), "{typed}");
        let nested = error("[sink.influx]\ntopic = [[\"a\"]]\n");
        assert!(nested.contains("topic: expected a string"), "{nested}");
        let toml = error("[sink.influx\n");
        assert!(toml.contains("invalid TOML"), "{toml}");
        // A value clap refuses is reported by clap, with where it came from.
        let refused = error(
            "[sink.influx]\ntopic = [\"t\"]\ndatabase = \"d\"\nmeasurement = \"m\"\nfield = { a = \"b\" }\nbatch_size = \"many\"\n",
        );
        assert!(refused.contains("--batch-size"), "{refused}");
        assert!(refused.contains("some options came from"), "{refused}");
    }

    #[test]
    fn without_config_the_command_line_is_parsed_as_it_is() {
        let cli = parse(
            ["pipescope", "process", "calls", "--topic", "c"]
                .iter()
                .map(OsString::from)
                .collect(),
        )
        .unwrap();
        match cli.command {
            Command::Process {
                command: ProcessCommand::Calls(args),
            } => assert_eq!(args.topic, "c"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(vec!["pipescope".into(), "nonsense".into()]),
            Err(ParseError::Clap(_))
        ));
    }
}
