//! Where `pipescope profile` reads records: a JSON-lines file, a Kafka topic (partitions
//! assigned, no consumer group, nothing committed), an MQTT filter.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{Args, Collector};
use crate::pipeline::{KafkaArgs, now_ms};
use crate::shutdown::Stop;

/// Longest wait of one broker request (metadata, watermarks, offsets for times).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads JSON lines; blank lines are skipped, a line over the size cap is counted invalid.
pub(super) fn read_file(path: &Path, collector: &mut Collector, stop: &Stop) -> anyhow::Result<()> {
    let (reader, size): (Box<dyn Read + Send>, Option<u64>) = if path == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = std::fs::File::open(path).with_context(|| {
            format!(
                "cannot open {} (--file) — give a readable JSON-lines file",
                path.display()
            )
        })?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    collector.expect(size, "bytes");
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let max = collector.max_record_bytes();
    let mut line = Vec::new();
    loop {
        if stop.is_stopped() {
            break;
        }
        let read = read_line_bounded(&mut reader, &mut line, max)
            .with_context(|| format!("cannot read {} (--file)", path.display()))?;
        let Some(read) = read else { break };
        collector.advance(read.bytes);
        let text = trim_line(&line);
        if read.cut {
            collector.oversized(text, read.bytes, now_ms());
        } else if !text.iter().all(u8::is_ascii_whitespace) {
            collector.record(text, now_ms());
        }
    }
    Ok(())
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A line read: its length on disk, and whether it was cut at the cap.
struct LineRead {
    bytes: u64,
    cut: bool,
}

/// Reads one line into `line`, keeping at most `max` bytes (+ the newline) and skipping the
/// rest, so a huge line costs no memory. `None` at the end of input.
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<LineRead>> {
    line.clear();
    let mut bytes = 0u64;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            let cut = trim_line(line).len() > max;
            return Ok((bytes > 0).then_some(LineRead { bytes, cut }));
        }
        let (chunk, done) = match buffer.iter().position(|b| *b == b'\n') {
            Some(end) => (&buffer[..=end], true),
            None => (buffer, false),
        };
        // One byte over the cap (plus the line end) tells a cut line from a full one.
        let room = (max + 2).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..room.min(chunk.len())]);
        let used = chunk.len();
        bytes += used as u64;
        reader.consume(used);
        if done {
            let cut = trim_line(line).len() > max;
            return Ok(Some(LineRead { bytes, cut }));
        }
    }
}

/// Which records of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KafkaRange {
    Last(u64),
    SinceMs(u64),
    All,
}

impl KafkaRange {
    pub(super) fn from_args(args: &Args) -> anyhow::Result<Self> {
        if let Some(n) = args.last {
            return Ok(Self::Last(n));
        }
        if let Some(since) = &args.since {
            return parse_since(since, SystemTime::now()).map(Self::SinceMs);
        }
        anyhow::ensure!(
            args.all,
            "say which records of the topic: --last N, --since TIME or --all"
        );
        Ok(Self::All)
    }
}

impl fmt::Display for KafkaRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Last(n) => write!(f, "the last {n} records"),
            Self::SinceMs(ms) => {
                let at = UNIX_EPOCH + Duration::from_millis(*ms);
                write!(f, "since {}", humantime::format_rfc3339_millis(at))
            }
            Self::All => write!(f, "all records"),
        }
    }
}

/// `--since`: an RFC 3339 time, or an age before `now`, as epoch milliseconds.
fn parse_since(text: &str, now: SystemTime) -> anyhow::Result<u64> {
    let at = match humantime::parse_rfc3339_weak(text) {
        Ok(at) => at,
        Err(_) => {
            let age = humantime::parse_duration(text).map_err(|_| {
                anyhow::anyhow!(
                    "--since {text:?}: give an RFC 3339 time (2026-01-31T12:00:00Z) or an age (15m)"
                )
            })?;
            now.checked_sub(age).unwrap_or(UNIX_EPOCH)
        }
    };
    Ok(at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64)
}

/// Where each partition starts for the last `n` records of the topic: `n` shared as evenly as
/// the partitions' records allow (a partition with fewer gives the rest to the others).
/// `ranges`: (log start, end) per partition; the answer: the start offset per partition.
pub fn last_per_partition(n: u64, ranges: &[(i64, i64)]) -> Vec<i64> {
    let available: Vec<u64> = ranges
        .iter()
        .map(|(low, high)| (high - low).max(0) as u64)
        .collect();
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|i| available[*i]);
    let mut take = vec![0u64; ranges.len()];
    let mut left = n;
    for (done, index) in order.iter().enumerate() {
        let share = left / (ranges.len() - done) as u64;
        let rest = left % (ranges.len() - done) as u64;
        // The last partition takes the remainder so the shares add up.
        let want = if done + 1 == ranges.len() {
            share + rest
        } else {
            share
        };
        take[*index] = want.min(available[*index]);
        left -= take[*index];
    }
    ranges
        .iter()
        .zip(take)
        .map(|((_, high), take)| high - take as i64)
        .collect()
}

/// Reads the chosen records of `topic`: partitions assigned at their start offsets, read up to
/// the end each had when the read began.
pub(super) fn read_kafka(
    kafka: &KafkaArgs,
    topic: &str,
    range: KafkaRange,
    idle_timeout: Duration,
    collector: &mut Collector,
    stop: &Stop,
) -> anyhow::Result<()> {
    let at = &kafka.kafka;
    let mut config = kafka.client_config()?;
    config
        .set("group.id", "pipescope-profile")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true");
    for (key, value) in crate::pipeline::CONSUMER_DEFAULTS {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config
        .create()
        .with_context(|| format!("cannot make a Kafka reader for {at} — check --kafka and -X"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .with_context(|| {
            format!("cannot read the metadata of {topic} at {at} — is the broker up?")
        })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    anyhow::ensure!(
        !partitions.is_empty(),
        "topic {topic} has no partitions at {at} — is the name right?"
    );
    let mut ranges = Vec::with_capacity(partitions.len());
    for partition in &partitions {
        let watermarks = consumer
            .fetch_watermarks(topic, *partition, REQUEST_TIMEOUT)
            .with_context(|| format!("cannot read the offsets of {topic}/{partition} at {at}"))?;
        ranges.push(watermarks);
    }
    let starts: Vec<i64> = match range {
        KafkaRange::All => ranges.iter().map(|(low, _)| *low).collect(),
        KafkaRange::Last(n) => last_per_partition(n, &ranges),
        KafkaRange::SinceMs(ms) => {
            let mut query = TopicPartitionList::new();
            for partition in &partitions {
                query.add_partition_offset(topic, *partition, Offset::Offset(ms as i64))?;
            }
            let found = consumer
                .offsets_for_times(query, REQUEST_TIMEOUT)
                .with_context(|| format!("cannot look up offsets by time in {topic} at {at}"))?;
            partitions
                .iter()
                .zip(&ranges)
                .map(|(partition, (low, high))| {
                    match found.find_partition(topic, *partition).map(|e| e.offset()) {
                        Some(Offset::Offset(offset)) => offset.clamp(*low, *high),
                        _ => *high,
                    }
                })
                .collect()
        }
    };
    // Per partition: the next offset to read and the end to stop at.
    let mut pending: HashMap<i32, (i64, i64)> = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for ((partition, (_, high)), start) in partitions.iter().zip(&ranges).zip(&starts) {
        if start < high {
            pending.insert(*partition, (*start, *high));
            assignment.add_partition_offset(topic, *partition, Offset::Offset(*start))?;
        }
    }
    let total: i64 = pending.values().map(|(start, end)| end - start).sum();
    collector.expect(Some(total as u64), "records");
    if pending.is_empty() {
        return Ok(());
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("cannot assign the partitions of {topic} at {at}"))?;
    let mut last_record = Instant::now();
    let mut read = 0u64;
    while !pending.is_empty() && !stop.is_stopped() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let partition = message.partition();
                let Some((next, end)) = pending.get_mut(&partition) else {
                    continue;
                };
                // A stretch sent again (tansu, after a fetch below its log start) is read once.
                if message.offset() < *next {
                    continue;
                }
                last_record = Instant::now();
                if message.offset() < *end {
                    let at_ms = message
                        .timestamp()
                        .to_millis()
                        .and_then(|ms| u64::try_from(ms).ok())
                        .unwrap_or_else(now_ms);
                    collector.record(message.payload().unwrap_or_default(), at_ms);
                    read += 1;
                    collector.advance(1);
                }
                *next = message.offset() + 1;
                if *next >= *end {
                    pending.remove(&partition);
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                // The end of what the partition holds (transaction markers may sit below `end`).
                pending.remove(&partition);
            }
            Some(Err(e)) => tracing::debug!("Kafka reader of {topic}: {e}"),
            None => {}
        }
        anyhow::ensure!(
            last_record.elapsed() < idle_timeout,
            "read {read} of {total} records of {topic} at {at}, then nothing for {} — is the \
             broker up? (--idle-timeout)",
            humantime::format_duration(idle_timeout)
        );
    }
    Ok(())
}

/// Subscribes to `filter` and profiles what arrives for `duration` (or until stopped).
pub(super) async fn read_mqtt(
    broker: &crate::pipeline::mqtt::MqttArgs,
    filter: &str,
    duration: Duration,
    collector: &mut Collector,
    stop: &Stop,
) -> anyhow::Result<()> {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event};

    let client_id = format!("pipescope-profile-{}", std::process::id());
    let url = &broker.url;
    let options = crate::pipeline::mqtt::options(broker, &client_id)?;
    let (client, mut events) = AsyncClient::new(options, 1_000);
    collector.expect(None, "messages");
    let deadline = tokio::time::Instant::now() + duration;
    let mut subscribed = false;
    loop {
        let event = tokio::select! {
            event = events.poll() => event,
            () = tokio::time::sleep_until(deadline) => break,
            () = stop.stopped() => break,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) if !subscribed => {
                client
                    .subscribe(filter, QoS::AtLeastOnce)
                    .await
                    .with_context(|| format!("cannot subscribe to {filter} at {url}"))?;
                subscribed = true;
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                collector.record(&publish.payload, now_ms());
                collector.advance(1);
            }
            Ok(_) => {}
            Err(e) => {
                anyhow::bail!("MQTT at {url}: {e} — is the broker running and the address right?")
            }
        }
    }
    let _ = client.try_disconnect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_n_records_are_shared_over_partitions_as_their_records_allow() {
        // 10 over three partitions holding 2, 100 and 100: 2, then 4 and 4.
        assert_eq!(
            last_per_partition(10, &[(0, 2), (50, 150), (0, 100)]),
            [0, 146, 96]
        );
        // More than the topic holds: everything.
        assert_eq!(last_per_partition(1_000, &[(3, 5), (0, 7)]), [3, 0]);
        // An uneven split: the remainder goes to the partition with most records.
        assert_eq!(last_per_partition(5, &[(0, 10), (0, 20)]), [8, 17]);
        assert_eq!(last_per_partition(0, &[(0, 10)]), [10]);
    }

    #[test]
    fn since_takes_a_time_or_an_age() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(parse_since("15m", now).unwrap(), (10_000 - 900) * 1000);
        assert_eq!(parse_since("1970-01-01T00:00:10Z", now).unwrap(), 10_000);
        assert!(
            parse_since("yesterday-ish", now)
                .unwrap_err()
                .to_string()
                .contains("--since")
        );
    }

    #[test]
    fn a_line_past_the_cap_is_skipped_not_kept() {
        let text = b"short\n0123456789abc\r\nlast";
        let mut reader = BufReader::with_capacity(4, &text[..]);
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while let Some(read) = read_line_bounded(&mut reader, &mut line, 8).unwrap() {
            lines.push((trim_line(&line).to_vec(), read.bytes, read.cut));
            assert!(line.len() <= 10);
        }
        assert_eq!(
            lines,
            [
                (b"short".to_vec(), 6, false),
                (b"0123456789".to_vec(), 15, true),
                (b"last".to_vec(), 4, false),
            ]
        );
    }
}
