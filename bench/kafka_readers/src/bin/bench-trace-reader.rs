//! `cargo build --release -p bench-kafka-readers && target/release/bench-trace-reader [RECORDS [PARTITIONS]]`
//!
//! In one run, against one tansu broker (memory engine: its Fetch is the same, and filling it
//! is quicker), one topic is filled with RECORDS records (3,000,000 by default) over PARTITIONS
//! partitions (4), each with the three trace headers as `simulate calls` writes them (one
//! origin, a sequence per partition). The topic is then read from its start twice, side by side:
//! 1. the baseline: a bare rdkafka `BaseConsumer` (assign, from the beginning), counting the
//!    records and the bytes of their headers;
//! 2. pipescope's Kafka trace reader (`TopicReader` + `TraceSink`, the reading path of
//!    `pipescope run`) feeding the real flow accounting (`FlowAccount`) on another thread, as
//!    the flow task does.
//!
//! Each phase's wall time and the process's CPU time (user + system, every thread, from
//! /proc/self/stat) give records/s and records/s per core; the ratio of the trace reader's
//! records/s per core to the baseline's is the figure of issue 16 (target ≥ 0.8×, and
//! ≥ 500,000 traced records/s per core). The flow's figures are checked: every record counted
//! once, nothing lost or duplicated.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_kafka_readers::{
    Counted, TABLE_HEAD, bare_consumer, create_topic, fill, load_average, measure, start_tansu,
};
use pipescope::completeness::kafka::{TopicReader, TraceSink};
use pipescope::completeness::{FlowAccount, Seen};
use pipescope_core::{Clock, SystemClock};
use pipescope_testkit::now_ms;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use tokio::sync::mpsc;

const TOPIC: &str = "calls.traced";
/// The flow task's queue length (crates/pipescope/src/completeness/mod.rs).
const QUEUED_BATCHES: usize = 64;
/// Roughly the size of a `simulate calls` record.
const PAYLOAD: &str = r#"{"call_id":"c-0000000000","caller":"+4930123456","callee":"+4940654321","duration_s":42,"cell":"c17"}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map_or(3_000_000, |a| {
        a.parse().expect("RECORDS must be a whole number")
    });
    let partitions: i32 = args
        .next()
        .map_or(4, |a| a.parse().expect("PARTITIONS must be a whole number"));
    let tansu = start_tansu();
    let bootstrap = tansu.bootstrap();
    create_topic(&bootstrap, TOPIC, partitions);
    let filling = Instant::now();
    let origin = format!("sim-calls-7-{}", now_ms());
    let mut next_seq = vec![0u64; partitions as usize];
    fill(
        &bootstrap,
        TOPIC,
        partitions,
        records,
        |_, partition, payload| {
            payload.extend_from_slice(PAYLOAD.as_bytes());
            let seq = next_seq[partition as usize];
            next_seq[partition as usize] += 1;
            let (seq, ts) = (seq.to_string(), now_ms().to_string());
            Some(
                OwnedHeaders::new_with_capacity(3)
                    .insert(Header {
                        key: "pipescope-origin",
                        value: Some(&origin),
                    })
                    .insert(Header {
                        key: "pipescope-seq",
                        value: Some(&seq),
                    })
                    .insert(Header {
                        key: "pipescope-ts",
                        value: Some(&ts),
                    }),
            )
        },
    );
    eprintln!(
        "filled {TOPIC}: {records} records over {partitions} partitions in {:.1} s",
        filling.elapsed().as_secs_f64()
    );

    let load_before = load_average();
    eprintln!("reading with the bare consumer");
    let bare = measure(|| {
        let (count, header_bytes) = bare_consumer(&bootstrap, TOPIC, partitions, records, |m| {
            m.headers().map_or(0, |headers| {
                headers
                    .iter()
                    .map(|h| (h.key.len() + h.value.map_or(0, <[u8]>::len)) as u64)
                    .sum()
            })
        });
        (count, format!("{header_bytes} header bytes touched"))
    });
    let traced = measure(|| trace_reader(&bootstrap, records));
    let load_after = load_average();

    let ratio = traced.per_core() / bare.per_core();
    println!(
        "\n{records} traced records, {partitions} partitions, payload {} B, tansu 0.6.0 (memory engine); load average {load_before} before, {load_after} after\n",
        PAYLOAD.len()
    );
    println!("{TABLE_HEAD}");
    println!("{}", bare.row("bare rdkafka BaseConsumer (baseline)"));
    println!("{}", traced.row("pipescope trace reader + flow accounting"));
    println!(
        "\nratio (trace reader / bare, records/s per core): {ratio:.2}× — target ≥ 0.8×: {}",
        if ratio >= 0.8 { "met" } else { "NOT met" }
    );
    println!(
        "traced records/s per core: {:.0} — target ≥ 500,000: {}",
        traced.per_core(),
        if traced.per_core() >= 500_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// pipescope's reader on its own thread, the flow's accounting on this one (applying each
/// batch, ticking every second), until the reader has handed on `records` records.
fn trace_reader(bootstrap: &str, records: u64) -> (u64, String) {
    let text = format!(
        "[kafka.bench]\nbootstrap = [\"{bootstrap}\"]\n\n[flows.bench]\nhops = [{{ kafka = \"bench\", topic = \"{TOPIC}\" }}]\n"
    );
    let config = pipescope::config::parse("bench", &text, [])
        .unwrap_or_else(|e| panic!("the bench's config: {e}"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut account = FlowAccount::new("bench", &config.flows["bench"], clock.now_millis());
    let (queue, mut from_reader) = mpsc::channel::<Vec<Seen>>(QUEUED_BATCHES);
    let reader = TopicReader {
        cluster_name: "bench".into(),
        cluster: config.kafka["bench"].clone(),
        topic: TOPIC.into(),
        group: "pipescope-trace-bench".into(),
        clock: clock.clone(),
    };
    let mut sink = Counted {
        inner: TraceSink::new(
            0,
            config.flows["bench"].kind_prefixes.clone(),
            account.to_flow(0, &queue),
        ),
        left: records,
        each: |_| {},
    };
    drop(queue);
    eprintln!("reading with the trace reader");
    let reading = std::thread::Builder::new()
        .name("trace-reader".into())
        .spawn(move || reader.run_from_start(&mut sink))
        .expect("start the trace reader thread");
    let mut ticked = Instant::now();
    let (mut batches, mut handed) = (0u64, 0u64);
    while let Some(batch) = from_reader.blocking_recv() {
        batches += 1;
        handed += batch.len() as u64;
        for seen in batch {
            account.apply(seen);
        }
        if ticked.elapsed() >= Duration::from_secs(1) {
            ticked = Instant::now();
            account.tick(clock.now_millis());
        }
    }
    reading.join().expect("the trace reader thread");
    let now = clock.now_millis();
    account.tick(now);
    let view = account.view(now);
    let note = format!(
        "{}; {batches} batches of {:.0} on average",
        checked_figures(&view),
        handed as f64 / batches.max(1) as f64
    );
    let counted = view.hops[0].figures.total.counters.records;
    assert_eq!(
        counted, records,
        "the flow counted {counted} of {records} records"
    );
    (counted, note)
}

/// The hop's counters that show every record was taken once.
fn checked_figures(view: &pipescope::completeness::FlowView) -> String {
    let hop = &view.hops[0];
    let total = &hop.figures.total.counters;
    assert_eq!(
        (
            total.duplicated,
            total.lost,
            hop.reader.untraced,
            hop.figures.malformed
        ),
        (0, 0, 0, 0),
        "the flow's figures: {hop:?}"
    );
    format!(
        "flow counted {} records, {} lost, {} duplicated; reader blocked {:.2} s",
        total.records, total.lost, total.duplicated, hop.reader.blocked_s
    )
}
