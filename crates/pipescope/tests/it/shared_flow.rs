//! A flow shared between two `pipescope run` instances (`share = { group = ... }`) on tansu:
//! they split a 4-partition topic as a consumer group does, every traced record is counted
//! once over both, and when one instance stops the other takes all partitions with the
//! streams handed over, so the accounting stays exact across the move.

use std::time::{Duration, Instant};

use pipescope_testkit::{Tansu, wait_until};
use serde_json::Value;

use crate::completeness::{Monitor, counter, produce};
use crate::kafka::create_topic;

const TIMEOUT: Duration = Duration::from_secs(30);
const TOPIC: &str = "machine.data";
const PARTITIONS: i32 = 4;
/// Records per partition in each round.
const ROUND: u64 = 250;

fn config(bootstrap: &str) -> String {
    format!(
        "[kafka.local]\nbootstrap = \"{bootstrap}\"\n\
         [flows.machines]\nhops = [{{ kafka = \"local\", topic = \"{TOPIC}\" }}]\ngrace = \"2s\"\n\
         share = {{ group = \"pipescope-flow-machines\" }}\n"
    )
}

/// The Kafka hop's view at one instance (`Null` while it does not answer).
fn hop(monitor: &Monitor) -> Value {
    monitor
        .flow("machines")
        .map_or(Value::Null, |v| v["hops"][0].clone())
}

fn partitions(hop: &Value) -> u64 {
    hop["reader"]["partitions"].as_u64().unwrap_or(u64::MAX)
}

fn figures(hop: &Value) -> (u64, u64, u64) {
    let f = &hop["figures"];
    (
        counter(f, "records"),
        counter(f, "lost"),
        counter(f, "duplicated"),
    )
}

/// `count` traced records to every partition, numbered from `first` (one stream each).
fn round(bootstrap: &str, first: u64, count: u64) {
    for p in 0..PARTITIONS {
        produce(bootstrap, TOPIC, p, Some("sim-1"), first, count);
    }
}

/// Waits until `done` holds for the two hops' views; fails with both views and logs.
fn wait_for(a: &Monitor, b: &Monitor, what: &str, done: impl Fn(&Value, &Value) -> bool) {
    let (mut va, mut vb) = (Value::Null, Value::Null);
    let reached = wait_until(TIMEOUT, || {
        (va, vb) = (hop(a), hop(b));
        done(&va, &vb)
    });
    assert!(
        reached,
        "{what}\nA: {va}\nB: {vb}\nA's log:\n{}\nB's log:\n{}",
        a.log(),
        b.log()
    );
}

#[test]
fn two_monitors_share_a_flow_and_hand_its_streams_over_when_one_stops() {
    let started = Instant::now();
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Monitor::start(dir_a.path(), &config(&bootstrap));
    let mut b = Monitor::start(dir_b.path(), &config(&bootstrap));
    wait_for(
        &a,
        &b,
        "the two instances never split the partitions",
        |a, b| partitions(a) == 2 && partitions(b) == 2,
    );

    // Round 1: every record counted once over both instances, nothing lost or duplicated.
    round(&bootstrap, 0, ROUND);
    let produced = ROUND * PARTITIONS as u64;
    wait_for(&a, &b, "round 1 not counted once over both", |a, b| {
        figures(a).0 + figures(b).0 == produced
    });
    let (a1, b1) = (figures(&hop(&a)), figures(&hop(&b)));
    assert_eq!((a1.1, a1.2, b1.1, b1.2), (0, 0, 0, 0), "A {a1:?}, B {b1:?}");
    assert!(
        a1.0 > 0 && b1.0 > 0,
        "each reads its share: A {a1:?}, B {b1:?}"
    );

    // B stops (SIGTERM): it hands its partitions over and commits; A takes all four.
    assert!(
        b.signal_and_wait("-TERM", TIMEOUT),
        "B did not stop\n{}",
        b.log()
    );
    let b_log = b.log();
    assert!(
        b_log.contains("partitions were handed over"),
        "B did not hand over at its stop:\n{b_log}"
    );
    // Written while the partitions move, each stream skipping one number: B's partitions are
    // read by A from B's committed offsets, and the skipped number is found lost only if A
    // holds their streams as B handed them over (a fresh base would hide it).
    round(&bootstrap, ROUND + 1, ROUND);
    wait_for(&a, &a, "A never took all partitions", |a, _| {
        partitions(a) == 4
    });
    round(&bootstrap, 2 * ROUND + 1, ROUND);
    let produced = produced + 2 * ROUND * PARTITIONS as u64;
    wait_for(&a, &a, "A did not count the rest exactly", |a, _| {
        let (records, lost, _) = figures(a);
        b1.0 + records == produced && lost == PARTITIONS as u64
    });
    let a2 = figures(&hop(&a));
    assert_eq!(
        (b1.0 + a2.0, a2.1, a2.2),
        (produced, PARTITIONS as u64, 0),
        "summed records, lost (one skipped number per stream), duplicated"
    );
    let a_log = a.log();
    assert!(!a_log.contains("cannot adopt"), "{a_log}");
    eprintln!("took {:?}", started.elapsed());
}
