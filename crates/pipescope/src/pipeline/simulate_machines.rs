//! `pipescope simulate machines`: N machines × M sensors publishing JSON sensor states to
//! `machine/<line>/<machine>/<sensor>` over MQTT v5 at a total rate, each message traced with
//! user properties (docs/trace-headers.md); or the replay of a JSON-lines event file.
//! Prints a JSON summary on stdout at the end.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipescope_core::backoff::Backoff;
use pipescope_core::pipeline::recent::{RecentCount, describe};
use pipescope_core::pipeline::topic_template::TopicTemplate;
use pipescope_core::pipeline::trace::{Sequencer, TraceHeader};
use prometheus_client::metrics::counter::Counter;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event};
use serde::Serialize;

use super::{PartArgs, Stop, now_ms};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub part: PartArgs,
    #[command(flatten)]
    pub mqtt: super::mqtt::MqttArgs,
    /// Production lines the machines are spread over.
    #[arg(long, default_value_t = 2)]
    pub lines: u32,
    /// Machines in all.
    #[arg(long, default_value_t = 10)]
    pub machines: u32,
    /// Sensors per machine.
    #[arg(long, default_value_t = 4)]
    pub sensors: u32,
    /// Messages per second, all machines together.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// MQTT QoS: 0 or 1.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this many messages (per pass, when replaying).
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this long.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Replay this JSON-lines file instead: one {"topic": "...", "payload": ...} per line,
    /// sent at --rate messages per second (or, with --topic-template, one record per line).
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// With --replay: each line is a record, sent whole to the topic this template makes of
    /// its fields, e.g. 'machine/{line}/{machine}'. A line without a field is skipped, said on
    /// stderr and counted (`skipped` in the summary).
    #[arg(long, requires = "replay")]
    pub topic_template: Option<String>,
    /// With --replay: start over at the end of the file until stopped.
    #[arg(long = "loop")]
    pub repeat: bool,
    /// Origin id in the trace (default: sim-machines-<seed>-<start ms>); also the MQTT client id.
    #[arg(long)]
    pub origin: Option<String>,
}

const SENSOR_NAMES: [&str; 8] = [
    "temperature",
    "vibration",
    "pressure",
    "rpm",
    "power",
    "humidity",
    "current",
    "voltage",
];

#[derive(Debug, Default, Serialize)]
struct Summary {
    origin: String,
    sent: u64,
    acked: u64,
    /// Replay lines that gave no message (no such field for the topic template, not JSON).
    skipped: u64,
}

/// A `SensorReading` (pipescope-core) as JSON, written from borrowed names: same fields, same
/// order, no copies of the names per message.
#[derive(Debug, Serialize)]
struct ReadingJson<'a> {
    line: &'a str,
    machine: &'a str,
    sensor: &'a str,
    value: f64,
    ts: u64,
}

/// `{topic, payload}`, the replay file's own shape without a topic template.
#[derive(Debug, serde::Deserialize)]
struct EventLine {
    topic: String,
    payload: serde_json::Value,
}

/// A message to replay.
#[derive(Debug)]
struct ReplayLine {
    topic: String,
    payload: Vec<u8>,
}

#[derive(Debug, Default)]
struct Counts {
    outgoing: AtomicU64,
    acked: AtomicU64,
    connected: AtomicBool,
}

pub async fn run(args: Args, stop: Stop) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0.0,
        "--rate must be more than 0 messages per second"
    );
    anyhow::ensure!(
        args.lines >= 1 && args.machines >= 1 && args.sensors >= 1,
        "--lines, --machines and --sensors must each be at least 1"
    );
    let template = args
        .topic_template
        .as_deref()
        .map(TopicTemplate::parse)
        .transpose()?;
    // Read before connecting: a file that cannot be replayed fails before anything is sent.
    let (lines, skipped) = match &args.replay {
        Some(path) => read_replay(path, template.as_ref())?,
        None => (Vec::new(), 0),
    };
    let origin = args
        .origin
        .clone()
        .unwrap_or_else(|| format!("sim-machines-{}-{}", args.seed, now_ms()));
    let qos = if args.qos == 1 {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    };
    let sent_metric = Counter::<u64>::default();
    let health = args
        .part
        .serve_metrics(
            "simulate machines",
            |r| {
                r.register(
                    "pipescope_simulate_machines_messages_sent",
                    "Messages handed to the MQTT client",
                    sent_metric.clone(),
                );
            },
            &stop,
        )
        .await?;
    let mut options = super::mqtt::options(&args.mqtt, &origin)?;
    // A session the broker keeps: rumqttc drops the publishes still unacknowledged when it
    // reconnects to a new session, so a broker restart silently lost them.
    options
        .set_clean_start(false)
        .set_session_expiry_interval(Some(60));
    let (client, mut eventloop) = AsyncClient::new(options, 10_000);
    let counts = Arc::new(Counts::default());
    let loop_counts = counts.clone();
    let mqtt = args.mqtt.url.clone();
    let driver = tokio::spawn(async move {
        let mut backoff = Backoff::default();
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    health.passing("mqtt");
                    loop_counts.connected.store(true, Ordering::Relaxed);
                    tracing::info!(broker = %mqtt, "connected to MQTT");
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    loop_counts.acked.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Outgoing(Outgoing::Publish(_))) => {
                    loop_counts.outgoing.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(e) => {
                    loop_counts.connected.store(false, Ordering::Relaxed);
                    health.failing("mqtt", format!("cannot reach {mqtt} ({e})"));
                    let delay = backoff.next_delay();
                    tracing::warn!(broker = %mqtt, "MQTT connection failed ({e}); retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    });

    let mut sent = 0u64;
    let started = tokio::time::Instant::now();
    // `seq` numbers the messages of one topic (docs/trace-headers.md).
    let publish = async |topic: String, seq: u64, payload: Vec<u8>| -> anyhow::Result<()> {
        let trace = TraceHeader {
            origin: origin.clone(),
            seq,
            ts: now_ms(),
        };
        let properties = PublishProperties {
            user_properties: trace
                .encode()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ..PublishProperties::default()
        };
        client
            .publish_with_properties(topic, qos, false, payload, properties)
            .await
            .context("the MQTT client stopped taking messages")?;
        sent_metric.inc();
        Ok(())
    };
    // Pacing: every 10 ms send what the rate says is due since start.
    let mut pace = tokio::time::interval(Duration::from_millis(10));
    let due = |started: tokio::time::Instant| (args.rate * started.elapsed().as_secs_f64()) as u64;
    let out_of_time =
        |started: tokio::time::Instant| args.duration.is_some_and(|d| started.elapsed() >= d);

    if let Some(path) = &args.replay {
        let mut sequencer: Sequencer<String> = Sequencer::new();
        anyhow::ensure!(!lines.is_empty(), "{}: no events to replay", path.display());
        let total = args
            .count
            .map_or(lines.len() as u64, |c| c.min(lines.len() as u64));
        let progress = if super::stderr_is_terminal() {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        progress.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} events, {msg}")
                .expect("a valid progress template"),
        );
        // The progress line's count over the last minute (not a rate from the last few seconds).
        let mut recent = RecentCount::new(now_ms());
        'passes: loop {
            progress.set_position(0);
            let mut index = 0u64;
            while index < total {
                tokio::select! {
                    _ = pace.tick() => {}
                    () = stop.stopped() => break 'passes,
                }
                if out_of_time(started) {
                    break 'passes;
                }
                let index_before = index;
                while sent < due(started) && index < total {
                    let line = &lines[index as usize];
                    let seq = sequencer.next(line.topic.clone());
                    publish(line.topic.clone(), seq, line.payload.clone()).await?;
                    sent += 1;
                    index += 1;
                    progress.inc(1);
                }
                if !progress.is_hidden() {
                    let now = now_ms();
                    recent.add(now, index - index_before);
                    // When the pace's schedule (--rate since start) sends the pass's last
                    // event: not a guess from the last few seconds' speed.
                    let left = (sent + (total - index)) as f64 / args.rate;
                    let eta_s = (left - started.elapsed().as_secs_f64()).max(0.0);
                    progress.set_message(format!(
                        "{}, {eta_s:.0} s left at {} a second",
                        describe(recent.last_minute(now)),
                        args.rate
                    ));
                }
            }
            if !args.repeat {
                break;
            }
        }
        progress.finish_and_clear();
    } else {
        let mut rng = StdRng::seed_from_u64(args.seed);
        let sensors: Vec<String> = (0..args.sensors)
            .map(|s| {
                SENSOR_NAMES
                    .get(s as usize)
                    .map_or_else(|| format!("sensor{s}"), |n| (*n).to_owned())
            })
            .collect();
        let mut values: Vec<f64> = (0..args.machines * args.sensors)
            .map(|_| rng.random_range(10.0..100.0))
            .collect();
        let pairs = u64::from(args.machines * args.sensors);
        // Names and topics made once: the loop below runs for every message.
        let names: Vec<(String, String, String)> = (0..args.machines * args.sensors)
            .map(|pair| {
                let (machine, sensor) = (pair / args.sensors, pair % args.sensors);
                (
                    format!("l{}", machine % args.lines),
                    format!("m{machine}"),
                    sensors[sensor as usize].clone(),
                )
            })
            .collect();
        let topics: Vec<String> = names
            .iter()
            .map(|(line, machine, sensor)| format!("machine/{line}/{machine}/{sensor}"))
            .collect();
        let mut seqs = vec![0u64; names.len()];
        'run: loop {
            tokio::select! {
                _ = pace.tick() => {}
                () = stop.stopped() => break,
            }
            if out_of_time(started) {
                break;
            }
            while sent < due(started) {
                if args.count.is_some_and(|c| sent >= c) {
                    break 'run;
                }
                let pair = (sent % pairs) as usize;
                let value = &mut values[pair];
                *value += rng.random_range(-1.0..1.0);
                let (line, machine, sensor) = &names[pair];
                let reading = ReadingJson {
                    line,
                    machine,
                    sensor,
                    value: (*value * 1000.0).round() / 1000.0,
                    ts: now_ms(),
                };
                let seq = seqs[pair];
                seqs[pair] += 1;
                publish(topics[pair].clone(), seq, serde_json::to_vec(&reading)?).await?;
                sent += 1;
            }
            if args.count.is_some_and(|c| sent >= c) {
                break;
            }
        }
    }
    // Wait until the broker has everything: PUBACKs at QoS 1, written at QoS 0.
    let done = |c: &Counts| {
        if qos == QoS::AtLeastOnce {
            c.acked.load(Ordering::Relaxed) >= sent
        } else {
            c.outgoing.load(Ordering::Relaxed) >= sent
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(&counts)
        && tokio::time::Instant::now() < deadline
        && !stop.sleep(Duration::from_millis(20)).await
    {}
    if !done(&counts) && stop.is_stopped() {
        // A second stop request: do not wait for the rest.
        tracing::warn!("stopped before the broker took every message");
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), driver).await;
    let summary = Summary {
        origin,
        sent,
        acked: counts.acked.load(Ordering::Relaxed),
        skipped,
    };
    tracing::info!(
        sent = summary.sent,
        acked = summary.acked,
        "simulate machines stopped"
    );
    println!("{}", serde_json::to_string(&summary)?);
    if !done(&counts) {
        anyhow::bail!(
            "the broker at {} did not take every message ({} sent, {} acknowledged)",
            args.mqtt.url,
            summary.sent,
            summary.acked
        );
    }
    Ok(())
}

/// The messages of a replay file, and how many lines were skipped. Without a template every
/// line must be a `{topic, payload}` event; with one, a line that gives no topic is skipped
/// (said on stderr) so one bad record does not stop a long replay.
fn read_replay(
    path: &PathBuf,
    template: Option<&TopicTemplate>,
) -> anyhow::Result<(Vec<ReplayLine>, u64)> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the replay file {}", path.display()))?;
    let mut lines = Vec::new();
    let mut skipped = 0u64;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let Some(template) = template else {
            let event: EventLine = serde_json::from_str(&line).with_context(|| {
                format!(
                    "{}:{}: not an event — write each line as {{\"topic\": \"...\", \"payload\": ...}}, or give --topic-template for lines of records",
                    path.display(),
                    n + 1
                )
            })?;
            let payload = match event.payload {
                serde_json::Value::String(s) => s.into_bytes(),
                other => other.to_string().into_bytes(),
            };
            lines.push(ReplayLine {
                topic: event.topic,
                payload,
            });
            continue;
        };
        let topic = serde_json::from_str::<serde_json::Value>(&line)
            .map_err(|e| format!("not JSON ({e})"))
            .and_then(|record| template.render(&record).map_err(|e| e.to_string()));
        match topic {
            Ok(topic) => lines.push(ReplayLine {
                topic,
                payload: line.into_bytes(),
            }),
            Err(why) => {
                skipped += 1;
                eprintln!(
                    "{}:{}: skipped — {why}; fix the line or the --topic-template",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    Ok((lines, skipped))
}

#[cfg(test)]
mod tests {
    use pipescope_core::pipeline::window::SensorReading;

    use super::ReadingJson;

    #[test]
    fn readings_are_written_as_sensor_readings() {
        let json = serde_json::to_string(&ReadingJson {
            line: "l0",
            machine: "m1",
            sensor: "rpm",
            value: 12.5,
            ts: 7,
        })
        .unwrap();
        let reading: SensorReading = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&reading).unwrap(), json);
    }
}
