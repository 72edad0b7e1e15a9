use std::process::ExitCode;

use pipescope::cli::{
    Command, ConfigCommand, ParseError, ProcessCommand, SimulateCommand, SinkCommand,
};
use pipescope::shutdown::{self, Stop};
use pipescope::{config, monitor, pipeline};

/// mimalloc instead of glibc's malloc: a scrape of 100,000 partitions spent 20-30 % of its CPU
/// in malloc/free and left the heap fragmented (BENCHMARKS.md, "Scale"). The monitor runs it
/// with options of its own (`pipescope::allocator`).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Check {
            config: path,
            cluster_size,
        } => {
            let report = config::check_sized(&path, cluster_size);
            eprint!("{}{}", report.errors, report.warnings);
            match report.summary {
                Some(summary) => {
                    println!("{summary}");
                    print!("{}", report.estimate);
                    ExitCode::SUCCESS
                }
                None => ExitCode::from(EXIT_CONFIG),
            }
        }
        Command::Simulate { command } => run_part(&cli.log, |stop| async move {
            match command {
                SimulateCommand::Calls(args) => pipeline::simulate_calls::run(*args, stop).await,
                SimulateCommand::Machines(args) => {
                    pipeline::simulate_machines::run(*args, stop).await
                }
                SimulateCommand::Traffic(args) => {
                    pipeline::simulate_traffic::run(*args, stop).await
                }
                SimulateCommand::Visits(args) => pipeline::simulate_visits::run(*args, stop).await,
            }
        }),
        Command::Bridge(args) => run_part(&cli.log, |stop| pipeline::bridge::run(*args, stop)),
        Command::Process { command } => run_part(&cli.log, |stop| async move {
            match command {
                ProcessCommand::Calls(args) => pipeline::process_calls::run(*args, stop).await,
                ProcessCommand::Machines(args) => {
                    pipeline::process_machines::run(*args, stop).await
                }
                ProcessCommand::Passthrough(args) => {
                    pipeline::process_passthrough::run(*args, stop).await
                }
            }
        }),
        Command::Sink {
            command: SinkCommand::Influx(args),
        } => run_part(&cli.log, |stop| pipeline::sink_influx::run(*args, stop)),
        Command::Profile(args) => run_part(&cli.log, |stop| pipescope::profile::run(*args, stop)),
        #[cfg(feature = "demo")]
        Command::Demo {
            listen,
            data_dir,
            mqtt_port,
            kafka_port,
        } => {
            pipescope::allocator::restart_with_monitor_options();
            // rumqttd logs every connection at info: keep the demo's output readable.
            init_logging(&format!("{},rumqttd=warn", cli.log));
            let options = pipescope::demo::DemoOptions {
                listen,
                data_dir,
                mqtt_port,
                kafka_port,
            };
            block_on(|stop| pipescope::demo::run(options, stop))
        }
        #[cfg(not(feature = "demo"))]
        Command::Demo { .. } => {
            eprintln!("{}", pipescope::cli::NO_DEMO);
            ExitCode::from(EXIT_CONFIG)
        }
        Command::Run {
            config: path,
            move_corrupt_store_aside,
        } => {
            pipescope::allocator::restart_with_monitor_options();
            init_logging(&cli.log);
            let mut config = match config::load(&path) {
                Ok(config) => config,
                Err(errors) => {
                    eprint!("{errors}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            config.store.move_corrupt_aside = move_corrupt_store_aside;
            for warning in config::security_warnings(&config) {
                tracing::warn!("{warning}");
            }
            block_on(|stop| monitor::run(config, stop))
        }
    }
}

/// Runs `work` on a multi-threaded runtime with a [`Stop`] that the first Ctrl-C or SIGTERM
/// fires; its error, if any, is printed.
fn block_on<F: Future<Output = anyhow::Result<()>>>(work: impl FnOnce(Stop) -> F) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime ({e})");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let stop = Stop::new();
        shutdown::stop_on_signal(stop.clone());
        work(stop).await
    });
    // Work left behind (a flush or a commit waiting on a broker that does not answer) must not
    // keep the process alive after `work` returned.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How long tasks still running when the work returned get to end.
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs a pipeline part on the multi-threaded runtime; its error, if any, is printed.
fn run_part<F: Future<Output = anyhow::Result<()>>>(
    log: &str,
    part: impl FnOnce(Stop) -> F,
) -> ExitCode {
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
        .with_writer(pipescope::log::OneLinePerEvent(std::io::stderr))
        // Colours only on a terminal: escape codes in a log file or a pipe are noise to its readers.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
