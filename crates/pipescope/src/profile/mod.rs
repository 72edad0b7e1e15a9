//! `pipescope profile`: the profile of a JSON-lines file, a Kafka topic's records (the last N,
//! since a time, or all) or an MQTT filter's messages for a while, as one self-contained HTML
//! report and/or JSON. The figures come from [`pipescope_core::quality`].

mod html;
mod input;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipescope_core::quality::{Observed, Profile, ProfileLimits, ProfileSummary};
use serde::Serialize;

pub use html::render as render_html;
pub use input::last_per_partition;

use crate::shutdown::Stop;

/// `pipescope profile`'s options.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["file", "kafka", "filter"])))]
pub struct Args {
    /// A JSON-lines file (one record a line; `-`: standard input).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Kafka bootstrap servers, host:port[,host:port]: read --topic without a consumer group.
    #[arg(long, value_name = "BOOTSTRAP", requires = "topic")]
    pub kafka: Option<String>,
    /// The Kafka topic.
    #[arg(long, requires = "kafka")]
    pub topic: Option<String>,
    /// The last N records of the topic (shared over its partitions).
    #[arg(long, value_name = "N", group = "range", requires = "kafka")]
    pub last: Option<u64>,
    /// Records from this time on: an RFC 3339 time (2026-01-31T12:00:00Z) or an age (15m).
    #[arg(long, value_name = "TIME", group = "range", requires = "kafka")]
    pub since: Option<String>,
    /// The whole topic, from each partition's log start.
    #[arg(long, group = "range", requires = "kafka")]
    pub all: bool,
    /// Extra librdkafka settings, KEY=VALUE (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub kafka_option: Vec<String>,
    /// A file of librdkafka settings, one KEY=VALUE a line (the place for secrets).
    #[arg(long, value_name = "FILE", env = "PIPESCOPE_KAFKA_CONFIG")]
    pub kafka_config: Option<PathBuf>,
    /// The MQTT topic filter to subscribe to for --duration (retained messages count too),
    /// at the broker --mqtt.
    #[arg(long, value_name = "FILTER")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub mqtt: crate::pipeline::mqtt::MqttArgs,
    /// How long to listen to MQTT.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Write the HTML report here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the profile as JSON on standard output.
    #[arg(long)]
    pub json: bool,
    /// Write the profile as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Profile one record in N.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_every: u64,
    /// Field paths kept; the values of further paths are counted as `_folded`.
    #[arg(long, value_name = "N", default_value_t = ProfileLimits::default().max_fields)]
    pub max_fields: usize,
    /// Records longer than this many bytes are counted invalid, not parsed.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_record_bytes: usize,
    /// Records shown in the report's sample.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub sample_records: usize,
    /// Give up on Kafka after this long without a record before the end is reached.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
}

/// What `--json` prints and the HTML shows.
#[derive(Debug, Serialize)]
pub struct Report {
    /// What was read: `file x.jsonl`, `kafka topic t at host:port (last 100)`, ...
    pub source: String,
    pub generated_at_ms: u64,
    pub profile: ProfileSummary,
    /// The first records profiled (cut at [`SAMPLE_RECORD_CHARS`]; invalid UTF-8 replaced).
    pub sample: Vec<String>,
}

/// Characters of a record kept in the sample.
pub const SAMPLE_RECORD_CHARS: usize = 2_000;

/// Gathers the records a source reads.
pub(crate) struct Collector {
    profile: Profile,
    sample: Vec<String>,
    sample_records: usize,
    max_record_bytes: usize,
    progress: ProgressBar,
}

impl Collector {
    fn new(args: &Args) -> Self {
        let progress = if crate::pipeline::stderr_is_terminal() {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        Self {
            profile: Profile::new(ProfileLimits {
                sample_every: args.sample_every,
                max_fields: args.max_fields,
                ..ProfileLimits::default()
            }),
            sample: Vec::new(),
            sample_records: args.sample_records,
            max_record_bytes: args.max_record_bytes,
            progress,
        }
    }

    /// Records to expect (a bar), or unknown (a spinner).
    pub(crate) fn expect(&self, total: Option<u64>, unit: &str) {
        let template = match total {
            Some(total) => {
                self.progress.set_length(total);
                format!("{{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed}}, {{eta}} left]")
            }
            None => format!("{{spinner}} {{pos}} {unit} [{{elapsed}}]"),
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            self.progress.set_style(style);
        }
    }

    pub(crate) fn advance(&self, by: u64) {
        self.progress.inc(by);
    }

    pub(crate) fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    pub(crate) fn record(&mut self, payload: &[u8], at_ms: u64) {
        if payload.len() > self.max_record_bytes {
            let reason = format!(
                "record of {} bytes is over --max-record-bytes {}",
                payload.len(),
                self.max_record_bytes
            );
            self.profile.reject(payload, &reason, at_ms);
            return;
        }
        if self.profile.observe(payload, at_ms) == Observed::Profiled
            && self.sample.len() < self.sample_records
        {
            let text = String::from_utf8_lossy(payload);
            self.sample
                .push(text.chars().take(SAMPLE_RECORD_CHARS).collect());
        }
    }

    /// A record cut at the size cap while reading (its head only).
    pub(crate) fn oversized(&mut self, head: &[u8], length: u64, at_ms: u64) {
        let reason = format!(
            "record of {length} bytes or more is over --max-record-bytes {}",
            self.max_record_bytes
        );
        self.profile.reject(head, &reason, at_ms);
    }
}

/// Runs `pipescope profile`.
pub async fn run(args: Args, stop: Stop) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.out.is_some() || args.json || args.json_out.is_some(),
        "say where the profile goes: --out report.html, --json or --json-out FILE"
    );
    let mut collector = Collector::new(&args);
    let source;
    if let Some(file) = args.file.clone() {
        source = format!("file {}", file.display());
        collector = tokio::task::spawn_blocking(move || {
            input::read_file(&file, &mut collector, &stop).map(|()| collector)
        })
        .await
        .context("the file reader failed")??;
    } else if let (Some(kafka), Some(topic)) = (args.kafka.clone(), args.topic.clone()) {
        let range = input::KafkaRange::from_args(&args)?;
        source = format!("Kafka topic {topic} at {kafka} ({range})");
        let kafka_args = crate::pipeline::KafkaArgs {
            kafka,
            kafka_option: args.kafka_option.clone(),
            kafka_config: args.kafka_config.clone(),
        };
        let idle = args.idle_timeout;
        collector = tokio::task::spawn_blocking(move || {
            input::read_kafka(&kafka_args, &topic, range, idle, &mut collector, &stop)
                .map(|()| collector)
        })
        .await
        .context("the Kafka reader failed")??;
    } else if let Some(filter) = &args.filter {
        source = format!(
            "MQTT filter {filter} at {} for {}",
            args.mqtt.url,
            humantime::format_duration(args.duration)
        );
        input::read_mqtt(&args.mqtt, filter, args.duration, &mut collector, &stop).await?;
    } else {
        anyhow::bail!("give a source: --file F, --kafka B --topic T, or --mqtt URL --filter F");
    }
    collector.progress.finish_and_clear();
    let report = Report {
        source,
        generated_at_ms: crate::pipeline::now_ms(),
        profile: collector.profile.summary(),
        sample: collector.sample,
    };
    write_outputs(&args, &report)
}

fn write_outputs(args: &Args, report: &Report) -> anyhow::Result<()> {
    if let Some(path) = &args.out {
        std::fs::write(path, html::render(report)).with_context(|| {
            format!("cannot write the HTML report to {} (--out)", path.display())
        })?;
        eprintln!(
            "profiled {} records ({} invalid, {} fields) from {}: report in {}",
            report.profile.records,
            report.profile.invalid,
            report.profile.fields,
            report.source,
            path.display()
        );
    }
    if args.json || args.json_out.is_some() {
        let mut json = serde_json::to_string_pretty(report).context("cannot encode the profile")?;
        json.push('\n');
        if let Some(path) = &args.json_out {
            std::fs::write(path, &json).with_context(|| {
                format!(
                    "cannot write the JSON profile to {} (--json-out)",
                    path.display()
                )
            })?;
        }
        if args.json {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(json.as_bytes())
                .and_then(|()| stdout.flush())
            {
                // A reader that stopped early (`| head`) is not an error of ours.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(e).context("cannot write the JSON profile to standard output");
                }
                _ => {}
            }
        }
    }
    Ok(())
}
