//! Retention deleting records before the monitor's own trace reader read them is not loss: the
//! reader finds its position jumped to the log start and rebases the partition's streams.
//! (Records deleted before a consumer group read them are lost for that group: see
//! `kafka::records_deleted_by_retention_before_a_slow_group_read_them_are_lost_for_that_group`.)

use std::time::Duration;

use pipescope_testkit::{Tansu, TansuOptions, http_body, now_ms, wait_until};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;

use crate::completeness::{Monitor, produce_stamped};
use crate::kafka::create_topic_with_retention;

const TIMEOUT: Duration = Duration::from_secs(30);
const RETENTION_MS: i64 = 600_000;

/// Produces `seqs` to partition 0 of `topic`, traced for `origin` (`None`: untraced), each
/// record stamped `record_ms` (what retention judges), and waits for delivery.
fn produce(
    bootstrap: &str,
    topic: &str,
    origin: Option<&str>,
    seqs: std::ops::Range<u64>,
    record_ms: i64,
) {
    produce_stamped(bootstrap, topic, 0, origin, seqs, Some(record_ms));
}

fn flow(monitor: &Monitor) -> Value {
    http_body(monitor.port, "/api/v1/flows/trail")
        .and_then(|body| serde_json::from_str::<Value>(&body).ok())
        .filter(|v| v.get("flow").is_some())
        .unwrap_or_default()
}

fn counter(view: &Value, name: &str) -> u64 {
    view["hops"][0]["figures"]["total"]["counters"][name]
        .as_u64()
        .unwrap_or(u64::MAX)
}

fn signal(monitor: &Monitor, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), monitor.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} the monitor");
}

/// The monitor reads seq 0..99, is frozen while seq 100..199 and 200..249 are written and
/// retention deletes offsets 0..200 (seq 0..199 and an untraced record), and reads seq
/// 200..249 after: a rebase, nothing lost.
#[test]
fn records_retention_deleted_before_the_trace_reader_read_them_are_not_lost() {
    let broker = Tansu::start_with(TansuOptions {
        maintenance_interval: Some(Duration::from_secs(1)),
        ..Default::default()
    });
    let bootstrap = broker.bootstrap();
    create_topic_with_retention(&bootstrap, "trail", RETENTION_MS);
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[kafka.local]\nbootstrap = \"{bootstrap}\"\n\
             [flows.trail]\nhops = [{{ kafka = \"local\", topic = \"trail\" }}]\ngrace = \"1s\"\n"
        ),
    );
    let mut view = Value::Null;
    let reading = wait_until(TIMEOUT, || {
        view = flow(&monitor);
        view["hops"][0]["reader"]["connected"] == true
    });
    assert!(
        reading,
        "the reader never started: {view}\n{}",
        monitor.log()
    );

    // Stamped to expire 8 s from now (time enough to read them), so that retention deletes
    // the log's whole prefix, as it does on a real broker.
    let now = now_ms();
    let expired = now - RETENTION_MS - 60_000;
    produce(
        &bootstrap,
        "trail",
        Some("it-trail"),
        0..100,
        now - RETENTION_MS + 8_000,
    );
    assert!(
        wait_until(TIMEOUT, || {
            view = flow(&monitor);
            counter(&view, "records") == 100
        }),
        "seq 0..99 never read: {view}\n{}",
        monitor.log()
    );

    signal(&monitor, "STOP");
    // tansu holds a fetch for the consumer's whole wait (librdkafka's fetch.wait.max.ms,
    // 500 ms) before it answers: a fetch the reader had in flight when frozen would carry every
    // record written within that wait. Nothing can be observed of a frozen process, so the
    // writes wait until that fetch has been answered (empty). Should it still be waiting, it
    // takes the first record written after: an untraced one, deleted with the rest.
    std::thread::sleep(Duration::from_millis(1_500));
    produce(&bootstrap, "trail", None, 0..1, expired);
    produce(&bootstrap, "trail", Some("it-trail"), 100..200, expired);
    produce(&bootstrap, "trail", Some("it-trail"), 200..250, now_ms());
    let watermarks: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let mut offsets = (0, 0);
    let deleted = wait_until(TIMEOUT, || {
        offsets = watermarks
            .fetch_watermarks("trail", 0, Duration::from_secs(5))
            .unwrap_or_default();
        offsets == (201, 251)
    });
    assert!(
        deleted,
        "retention never deleted offsets 0..200: {offsets:?}"
    );
    signal(&monitor, "CONT");

    // tansu 0.6 answers a fetch below the log start with the records from the log start, but
    // gives the first of them the headers of the offset asked for (none: deleted), and
    // librdkafka then reads the same offsets again (three passes here): the reader takes each
    // offset once, so 49 traced records after the jump.
    assert!(
        wait_until(TIMEOUT, || {
            view = flow(&monitor);
            view["hops"][0]["reader"]["rebased"] == 1 && counter(&view, "records") >= 149
        }),
        "seq 200..249 never read after a rebase: {view}\n{}",
        monitor.log()
    );
    // Past the grace period (1 s) and a tick: any gap would have been judged lost by then.
    let at = view["updated_ms"].as_u64().unwrap();
    assert!(wait_until(TIMEOUT, || {
        view = flow(&monitor);
        view["updated_ms"].as_u64().unwrap_or(0) > at + 2_000
    }));
    let figures = &view["hops"][0]["figures"];
    for zero in ["lost", "late"] {
        assert_eq!(counter(&view, zero), 0, "{zero}: {figures}");
    }
    assert_eq!(view["hops"][0]["reader"]["rebased"], 1, "{view}");
    // tansu's passes over the same offsets are read once: the reader drops offsets it read.
    assert_eq!(counter(&view, "duplicated"), 0, "{figures}");
    assert_eq!(counter(&view, "records"), 149, "{figures}");
    eprintln!(
        "after the rebase: {} records, {} duplicated (offsets read again), {} untraced",
        counter(&view, "records"),
        counter(&view, "duplicated"),
        view["hops"][0]["reader"]["untraced"]
    );
}
