//! The command line: one subcommand per job.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, Parser, Subcommand};

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

/// The pipeline parts' tables in a configuration file (`[bridge]`, `[sink.influx]`, ...),
/// each checked as its part would read it: unknown keys, values of the wrong type, values the
/// part's flags refuse. Options a table leaves out are not errors (the command line may give
/// them). Returns the commands of the tables found, and the errors.
pub fn check_part_tables(text: &str) -> (Vec<String>, Vec<String>) {
    let Ok(root) = text.parse::<toml::Table>() else {
        return (Vec::new(), Vec::new()); // the monitor's own check reports bad TOML
    };
    let mut parts = Vec::new();
    let mut errors = Vec::new();
    let command = Cli::command();
    let mut pending: Vec<(Vec<String>, &clap::Command)> = vec![(Vec::new(), &command)];
    while let Some((path, cmd)) = pending.pop() {
        for sub in cmd.get_subcommands() {
            let mut sub_path = path.clone();
            sub_path.push(sub.get_name().to_string());
            if !sub.get_arguments().any(|a| a.get_id() == PART_CONFIG) {
                pending.push((sub_path, sub));
                continue;
            }
            let mut table = Some(&root);
            for word in &sub_path {
                table = match table.and_then(|t| t.get(word)) {
                    Some(toml::Value::Table(t)) => Some(t),
                    _ => None,
                };
            }
            if table.is_none() {
                continue;
            }
            parts.push(sub_path.join(" "));
            let flags = match part_flags(text, &sub_path, sub, |_| false) {
                Ok(flags) => flags,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let argv = std::iter::once("pipescope".to_string())
                .chain(sub_path.iter().cloned())
                .chain(flags);
            if let Err(e) = Cli::try_parse_from(argv)
                && e.kind() != clap::error::ErrorKind::MissingRequiredArgument
            {
                let first = e.to_string();
                let first = first.lines().next().unwrap_or_default();
                let first = first.strip_prefix("error: ").unwrap_or(first);
                errors.push(format!("[{}] {first}", sub_path.join(".")));
            }
        }
    }
    parts.sort();
    errors.sort();
    (parts, errors)
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

/// The flags that the part's table in `text` stands for, leaving out the options `given`
/// says came from the command line or the environment.
fn part_flags(
    text: &str,
    path: &[String],
    part: &clap::Command,
    given: impl Fn(&str) -> bool,
) -> Result<Vec<String>, String> {
    let root: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("invalid TOML: {}", e.to_string().trim_end()))?;
    let table_name = path.join(".");
    let mut table = &root;
    for word in path {
        table = match table.get(word) {
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(format!("[{table_name}] must be a table")),
            None => {
                return Err(format!(
                    "no [{table_name}] table: the options of `pipescope {}` go there",
                    path.join(" ")
                ));
            }
        };
    }
    let options: Vec<&clap::Arg> = part
        .get_arguments()
        .filter(|a| a.get_id() != PART_CONFIG && !a.is_positional())
        .collect();
    let mut flags = Vec::new();
    for (key, value) in table {
        let wanted = key.replace('_', "-");
        let Some(arg) = options.iter().find(|a| {
            a.get_long() == Some(wanted.as_str()) || a.get_id().as_str().replace('_', "-") == wanted
        }) else {
            let mut known: Vec<String> = options
                .iter()
                .map(|a| match a.get_long() {
                    Some(long) => long.to_string(),
                    None => a.get_id().as_str().replace('_', "-"),
                })
                .collect();
            known.sort();
            return Err(format!(
                "[{table_name}] {key}: no such option; known: {}",
                known.join(", ")
            ));
        };
        if given(arg.get_id().as_str()) {
            continue;
        }
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => continue,
        };
        let scalar = |v: &toml::Value| -> Result<String, String> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                toml::Value::Datetime(d) => Ok(d.to_string()),
                _ => Err(format!(
                    "[{table_name}] {key}: expected a string, number or boolean"
                )),
            }
        };
        if !arg.get_action().takes_values() {
            match value {
                toml::Value::Boolean(true) => flags.push(flag),
                toml::Value::Boolean(false) => {}
                _ => return Err(format!("[{table_name}] {key}: expected true or false")),
            }
            continue;
        }
        let repeatable = matches!(arg.get_action(), ArgAction::Append);
        let values = match value {
            toml::Value::Array(items) if repeatable => {
                items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?
            }
            toml::Value::Table(pairs) if repeatable => pairs
                .iter()
                .map(|(k, v)| Ok(format!("{k}={}", scalar(v)?)))
                .collect::<Result<Vec<_>, String>>()?,
            toml::Value::Array(_) | toml::Value::Table(_) => {
                return Err(format!("[{table_name}] {key}: takes one value"));
            }
            v => vec![scalar(v)?],
        };
        for v in values {
            flags.push(flag.clone());
            flags.push(v);
        }
    }
    Ok(flags)
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
