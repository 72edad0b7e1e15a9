//! `simulate visits` and `process passthrough` against tansu: the defects in the topic are
//! exactly those the simulator's summary reports, and the passthrough copies every record (at
//! least once through a `kill -9`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use pipescope_core::pipeline::partition::partition_for_key;
use pipescope_core::pipeline::trace::TraceHeader;
use pipescope_testkit::{Tansu, wait_until};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use serde_json::Value;

use crate::pipeline::{end_offsets, kill_and_restart_after_session, read_topic, start_part};

/// Runs `simulate visits` to the end and returns its summary.
fn simulate_visits(bootstrap: &str, topic: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "simulate",
        "visits",
        "--kafka",
        bootstrap,
        "--topic",
        topic,
        "--partitions",
        "3",
    ];
    args.extend_from_slice(extra);
    let mut simulator = start_part("simulate visits", &args);
    serde_json::from_str(&simulator.finish(Duration::from_secs(60))).unwrap()
}

/// One record of a topic as read back.
struct Copy {
    trace: TraceHeader,
    partition: i32,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

fn read_all(bootstrap: &str, topic: &str) -> Vec<Copy> {
    let mut records = Vec::new();
    read_topic(bootstrap, topic, 3, Duration::from_secs(30), |m| {
        let headers = m.headers().expect("a traced record has headers");
        let trace =
            TraceHeader::decode(headers.iter().map(|h| (h.key, h.value.unwrap_or_default())))
                .expect("a well-formed trace")
                .expect("a trace");
        records.push(Copy {
            trace,
            partition: m.partition(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().unwrap_or_default().to_vec(),
        });
        false
    });
    records
}

/// What a reader counts in the payloads, in the summary's shape.
fn count_defects(records: &[Copy], important: &[&str]) -> Value {
    let mut empty: BTreeMap<&str, u64> = important.iter().map(|f| (*f, 0)).collect();
    let mut nulls = empty.clone();
    let mut malformed = 0u64;
    for r in records {
        let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(&r.payload) else {
            malformed += 1;
            continue;
        };
        for field in important {
            match &record[*field] {
                Value::Null => *nulls.get_mut(field).unwrap() += 1,
                Value::String(s) if s.is_empty() => *empty.get_mut(field).unwrap() += 1,
                _ => {}
            }
        }
    }
    serde_json::json!({
        "visits": records.len(),
        "malformed": malformed,
        "empty": empty,
        "null": nulls,
    })
}

#[test]
fn simulate_visits_sends_exactly_the_defects_its_summary_reports_and_a_seed_repeats_them() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let options = [
        "--count",
        "2000",
        "--rate",
        "20000",
        "--seed",
        "7",
        "--empty-fraction",
        "0.05",
        "--null-fraction",
        "0.05",
        "--malformed-fraction",
        "0.02",
    ];
    let summary = simulate_visits(&bootstrap, "visits", &options);
    assert_eq!(summary["visits"], 2000, "{summary}");
    assert_eq!(summary["delivered"], 2000, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let records = read_all(&bootstrap, "visits");
    let seen = count_defects(&records, &["user_id", "page"]);
    for key in ["visits", "malformed", "empty", "null"] {
        assert_eq!(
            seen[key], summary[key],
            "{key}: read {seen}, summary {summary}"
        );
    }
    assert!(summary["malformed"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["null"]["page"].as_u64().unwrap() > 0, "{summary}");
    // Traced like simulate calls: per partition, sequence numbers 0, 1, 2, … with no gap.
    let mut seqs: HashMap<i32, Vec<u64>> = HashMap::new();
    for r in &records {
        assert_eq!(r.trace.origin, summary["origin"].as_str().unwrap());
        seqs.entry(r.partition).or_default().push(r.trace.seq);
        let key = r.key.as_deref().expect("keyed by user");
        assert_eq!(r.partition, partition_for_key(key, 3));
    }
    for (partition, mut seq) in seqs {
        seq.sort_unstable();
        let expected: Vec<u64> = (0..seq.len() as u64).collect();
        assert_eq!(seq, expected, "partition {partition}");
    }

    let again = simulate_visits(&bootstrap, "visits.again", &options);
    for key in ["visits", "malformed", "defective", "empty", "null"] {
        assert_eq!(again[key], summary[key], "{key}: {again} vs {summary}");
    }
    // The same visits too, not only the same counts (ts and started_at follow the clock).
    let ids = |records: &[Copy]| {
        let mut ids: Vec<String> = records
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.payload).ok())
            .filter_map(|v| v["visit_id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&read_all(&bootstrap, "visits.again")), ids(&records));
}

fn passthrough_args<'a>(bootstrap: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "process",
        "passthrough",
        "--kafka",
        bootstrap,
        "--input",
        "visits",
        "--output",
        "visits.out",
        "--group",
        "it-passthrough",
    ];
    args.extend_from_slice(extra);
    args
}

/// Offsets the group committed on `visits`, per partition (-1 for none).
fn committed(bootstrap: &str) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "it-passthrough")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition("visits", p);
    }
    let Ok(committed) = consumer.committed_offsets(tpl, Duration::from_secs(5)) else {
        return vec![-1; 3];
    };
    (0..3)
        .map(
            |p| match committed.find_partition("visits", p).map(|e| e.offset()) {
                Some(rdkafka::Offset::Offset(o)) => o,
                _ => -1,
            },
        )
        .collect()
}

/// Waits until the group has committed the end of every partition of `visits`: everything
/// there was copied and acknowledged.
/// Waits until the group committed every input record; on failure, says where the commits and
/// ends are, with `log` (the consuming part's) to tell why.
fn wait_all_committed_within(
    bootstrap: &str,
    what: &str,
    within: Duration,
    log: impl Fn() -> String,
) {
    let ends = end_offsets(bootstrap, "visits", 3);
    let done = wait_until(within, || committed(bootstrap) == ends);
    assert!(
        done,
        "{what}: committed {:?}, ends {ends:?}\n--- its log ---\n{}",
        committed(bootstrap),
        log()
    );
}

/// Every output record is an input record (trace, key, payload, partition by key) and every
/// input record is in the output; returns how many copies were duplicates.
fn check_copies(bootstrap: &str, records: u64) -> u64 {
    let input = read_all(bootstrap, "visits");
    assert_eq!(input.len() as u64, records);
    let by_trace: HashMap<(String, u64, i32), &Copy> = input
        .iter()
        .map(|r| ((r.trace.origin.clone(), r.trace.seq, r.partition), r))
        .collect();
    let output = read_all(bootstrap, "visits.out");
    let mut copied: HashMap<(String, u64, i32), u64> = HashMap::new();
    for out in &output {
        let key = out.key.as_deref().expect("the key is kept");
        // Same partition count, so the key's partition is its input partition.
        let trace = (out.trace.origin.clone(), out.trace.seq, out.partition);
        let original = by_trace
            .get(&trace)
            .unwrap_or_else(|| panic!("{trace:?} is in the output but not in the input"));
        assert_eq!(out.key, original.key);
        assert_eq!(out.payload, original.payload);
        assert_eq!(out.partition, partition_for_key(key, 3));
        *copied.entry(trace).or_default() += 1;
    }
    assert_eq!(
        copied.len() as u64,
        records,
        "input records missing from the output"
    );
    output.len() as u64 - records
}

#[test]
fn process_passthrough_copies_every_record_once_and_commits_it_all_at_a_clean_stop() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let summary = simulate_visits(
        &bootstrap,
        "visits",
        &[
            "--count",
            "3000",
            "--rate",
            "30000",
            "--malformed-fraction",
            "0.02",
            "--null-fraction",
            "0.1",
        ],
    );
    assert_eq!(summary["delivered"], 3000, "{summary}");
    let mut passthrough = start_part(
        "process passthrough",
        &passthrough_args(&bootstrap, &["--commit-interval", "200ms"]),
    );
    passthrough.wait_metric(
        "pipescope_process_passthrough_delivered_records_total",
        Duration::from_secs(60),
        |v| v == 3000.0,
    );
    passthrough.terminate();
    // Everything was committed by the clean stop: a restart copies nothing again.
    assert_eq!(committed(&bootstrap), end_offsets(&bootstrap, "visits", 3));
    assert_eq!(
        check_copies(&bootstrap, 3000),
        0,
        "duplicates without a kill"
    );
}

#[test]
fn process_passthrough_killed_mid_run_copies_every_record_at_least_once() {
    let started = std::time::Instant::now();
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    // The restarted instance gets the partitions once the group drops the killed one: after
    // its session timeout (librdkafka's default is 45 s; 6 s here).
    let args = passthrough_args(
        &bootstrap,
        // Records linger in the producer far longer than a commit interval: a commit that did
        // not wait for their acks would lose them to the kill.
        &[
            "--commit-interval",
            "300ms",
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "linger.ms=1000",
        ],
    );
    let passthrough = start_part("process passthrough", &args);
    let records = 20_000u64;
    let mut simulator = start_part(
        "simulate visits",
        &[
            "simulate", "visits", "--kafka", &bootstrap, "--topic", "visits", "--count", "20000",
            "--rate", "4000", "--seed", "3",
        ],
    );
    passthrough.wait_metric(
        "pipescope_process_passthrough_records_total",
        Duration::from_secs(60),
        |v| v >= 5000.0,
    );
    // Killed just after a commit, while the next records still linger unacknowledged: a commit
    // made before the acks it covers would lose records here.
    let commits = passthrough
        .metric("pipescope_process_passthrough_commits_total")
        .unwrap_or(0.0);
    passthrough.wait_metric(
        "pipescope_process_passthrough_commits_total",
        Duration::from_secs(30),
        |v| v > commits,
    );
    let mut passthrough =
        kill_and_restart_after_session("process passthrough (restarted)", passthrough, &args);
    let summary: Value = serde_json::from_str(&simulator.finish(Duration::from_secs(60))).unwrap();
    assert_eq!(summary["delivered"], records, "{summary}");
    wait_all_committed_within(
        &bootstrap,
        "after the restart",
        Duration::from_secs(90),
        || passthrough.log(),
    );
    let duplicates = check_copies(&bootstrap, records);
    eprintln!(
        "passthrough through a kill -9: {records} records, {duplicates} copied twice ({:?})",
        started.elapsed()
    );
    passthrough.terminate();
}
