//! `cargo build --release -p bench-kafka-readers && target/release/bench-quality-observer [RECORDS [PARTITIONS]]`
//!
//! In one run, against one tansu broker (memory engine), one topic is filled with RECORDS
//! (1,000,000 by default) visit records as `simulate visits` writes them (seeded; 1 % of the
//! important fields null, 1 % empty, 0.5 % of the records cut short) over PARTITIONS partitions
//! (4). The topic is then read from its start three times, side by side:
//! 1. the baseline: a bare rdkafka `BaseConsumer` (assign, from the beginning) that only reads
//!    the records (their payload lengths summed);
//! 2. pipescope's quality observer as `pipescope run` reads a `[quality.X]` Kafka topic (the
//!    shared `TopicReader`, the observer's sink, its windows closed every second), with the
//!    demo's three rules (one parse a record, into a tree the rules and the profile read);
//! 3. the same without rules (the profile reads each record straight from its bytes).
//!
//! Each phase's wall time and the process's CPU time give records/s and records/s per core
//! (issue 17: the observer keeps up with ≥ 300,000 JSON records/s per core). The observer's
//! counts are checked against what was written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_kafka_readers::{
    Counted, TABLE_HEAD, bare_consumer, create_topic, fill, load_average, measure, start_tansu,
};
use pipescope::completeness::kafka::TopicReader;
use pipescope::quality::{KafkaQualitySink, QualityState};
use pipescope_core::pipeline::visits::{VisitGenerator, VisitWorkload};
use pipescope_core::{Clock, SystemClock};
use rdkafka::message::Message;

const TOPIC: &str = "visits.bench";
/// The demo's rules (crates/pipescope/src/demo/mod.rs).
const RULES: &str = r#"rules = [{ field = "user_id", required = true, not_null = true, not_empty = true }, { field = "page", required = true, not_null = true, not_empty = true }, { field = "duration_ms", type = "integer", range = [0, 86400000] }]"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map_or(1_000_000, |a| {
        a.parse().expect("RECORDS must be a whole number")
    });
    let partitions: i32 = args
        .next()
        .map_or(4, |a| a.parse().expect("PARTITIONS must be a whole number"));
    let tansu = start_tansu();
    let bootstrap = tansu.bootstrap();
    create_topic(&bootstrap, TOPIC, partitions);
    let filling = Instant::now();
    let mut visits = VisitGenerator::new(&VisitWorkload {
        seed: 17,
        null_fraction: 0.01,
        empty_fraction: 0.01,
        malformed_fraction: 0.005,
        ..VisitWorkload::default()
    })
    .expect("the bench's workload is valid");
    let (mut malformed, mut bytes) = (0u64, 0u64);
    let start_ms = SystemClock.now_millis();
    fill(&bootstrap, TOPIC, partitions, records, |i, _, payload| {
        let visit = visits.next_visit(start_ms + i);
        visit.write_payload(payload);
        malformed += u64::from(visit.defects.truncate_at.is_some());
        bytes += payload.len() as u64;
        None
    });
    eprintln!(
        "filled {TOPIC}: {records} records ({bytes} bytes, {malformed} malformed) over {partitions} partitions in {:.1} s",
        filling.elapsed().as_secs_f64()
    );

    let load_before = load_average();
    eprintln!("reading with the bare consumer");
    let bare = measure(|| {
        let (count, touched) = bare_consumer(&bootstrap, TOPIC, partitions, records, |m| {
            m.payload().map_or(0, |p| p.len() as u64)
        });
        (count, format!("{touched} payload bytes read"))
    });
    eprintln!("reading with the quality observer (the demo's rules)");
    let with_rules = measure(|| observe(&bootstrap, records, RULES, malformed));
    eprintln!("reading with the quality observer (no rules)");
    let profile_only = measure(|| observe(&bootstrap, records, "", malformed));
    let load_after = load_average();

    println!(
        "\n{records} visit records ({:.0} B on average, {malformed} malformed), {partitions} partitions, tansu 0.6.0 (memory engine); load average {load_before} before, {load_after} after\n",
        bytes as f64 / records as f64
    );
    println!("{TABLE_HEAD}");
    println!("{}", bare.row("bare rdkafka BaseConsumer (baseline)"));
    println!("{}", with_rules.row("pipescope quality observer, 3 rules"));
    println!(
        "{}",
        profile_only.row("pipescope quality observer, profile only")
    );
    for (name, phase) in [("3 rules", &with_rules), ("profile only", &profile_only)] {
        println!(
            "\n{name}: {:.0} records/s per core — target ≥ 300,000: {}; {:.2}× the bare consumer's records/s per core",
            phase.per_core(),
            if phase.per_core() >= 300_000.0 {
                "met"
            } else {
                "NOT met"
            },
            phase.per_core() / bare.per_core()
        );
    }
}

/// pipescope's reader and the topic's observer on this thread until `records` were observed.
fn observe(bootstrap: &str, records: u64, rules: &str, malformed: u64) -> (u64, String) {
    let text = format!(
        "[kafka.bench]\nbootstrap = [\"{bootstrap}\"]\n\n[quality.bench]\nkafka = \"bench\"\ntopic = \"{TOPIC}\"\n{rules}\n"
    );
    let config = pipescope::config::parse("bench", &text, [])
        .unwrap_or_else(|e| panic!("the bench's config: {e}"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = QualityState::new(&config, clock.clone());
    let topic = state
        .get("bench")
        .expect("the bench's quality topic")
        .clone();
    let reader = TopicReader {
        cluster_name: "bench".into(),
        cluster: config.kafka["bench"].clone(),
        topic: TOPIC.into(),
        group: "pipescope-quality-bench".into(),
        clock: clock.clone(),
    };
    // The observer's windows closed every second, as the topic's task does.
    let mut ticked = Instant::now();
    let ticking = topic.clone();
    let mut sink = Counted {
        inner: KafkaQualitySink::new(topic.clone()),
        left: records,
        each: move |arrival_ms| {
            if ticked.elapsed() >= Duration::from_secs(1) {
                ticked = Instant::now();
                ticking.observer().tick(arrival_ms);
            }
        },
    };
    reader.run_from_start(&mut sink);
    let observer = topic.observer();
    let (seen, invalid) = (observer.records_total(), observer.invalid_total());
    assert_eq!(
        (seen, invalid),
        (records, malformed),
        "the observer's records and invalid records"
    );
    let errors = observer.rules(clock.now_millis()).error_records_total;
    (
        seen,
        format!("{seen} records observed, {invalid} invalid, {errors} breaking a rule"),
    )
}
