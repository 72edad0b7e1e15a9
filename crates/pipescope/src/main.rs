use std::process::ExitCode;

use pipescope::cli::{
    Command, ConfigCommand, ParseError, ProcessCommand, SimulateCommand, SinkCommand,
};
use pipescope::{config, demo, monitor, pipeline};

/// Exit code for a configuration that does not validate (as `pipescope check` documents).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = match pipescope::cli::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(ParseError::Clap(error)) => error.exit(),
        Err(ParseError::WithFile { file, error }) => {
            let _ = error.print();
            eprintln!("note: some options came from {}", file.display());
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Command::Version => {
            println!("pipescope {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Config {
            command: ConfigCommand::Example,
        } => {
            print!("{}", config::EXAMPLE);
            ExitCode::SUCCESS
        }
        Command::Check { config: path } => {
            let report = config::check(&path);
            eprint!("{}", report.errors);
            match report.summary {
                Some(summary) => {
                    println!("{summary}");
                    ExitCode::SUCCESS
                }
                None => ExitCode::from(EXIT_CONFIG),
            }
        }
        Command::Simulate { command } => run_part(&cli.log, async move {
            match command {
                SimulateCommand::Calls(args) => pipeline::simulate_calls::run(*args).await,
                SimulateCommand::Machines(args) => pipeline::simulate_machines::run(*args).await,
                SimulateCommand::Traffic(args) => pipeline::simulate_traffic::run(*args).await,
            }
        }),
        Command::Bridge(args) => run_part(&cli.log, pipeline::bridge::run(*args)),
        Command::Process { command } => run_part(&cli.log, async move {
            match command {
                ProcessCommand::Calls(args) => pipeline::process_calls::run(*args).await,
                ProcessCommand::Machines(args) => pipeline::process_machines::run(*args).await,
            }
        }),
        Command::Sink {
            command: SinkCommand::Influx(args),
        } => run_part(&cli.log, pipeline::sink_influx::run(*args)),
        Command::Demo {
            listen,
            data_dir,
            mqtt_port,
            kafka_port,
        } => {
            // rumqttd logs every connection at info: keep the demo's output readable.
            init_logging(&format!("{},rumqttd=warn", cli.log));
            let options = demo::DemoOptions {
                listen,
                data_dir,
                mqtt_port,
                kafka_port,
            };
            block_on(demo::run(options))
        }
        Command::Run { config: path } => {
            init_logging(&cli.log);
            let config = match config::load(&path) {
                Ok(config) => config,
                Err(errors) => {
                    eprint!("{errors}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            block_on(monitor::run(config))
        }
    }
}

/// Runs `work` on a multi-threaded runtime; its error, if any, is printed.
fn block_on(work: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime ({e})");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a pipeline part on the multi-threaded runtime; its error, if any, is printed.
fn run_part(log: &str, part: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    init_logging(log);
    block_on(part)
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("warning: bad log filter {filter:?} ({e}); using \"info\"");
        tracing_subscriber::EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
