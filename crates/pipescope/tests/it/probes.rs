//! Probes in `pipescope run` against a real tansu: the Kafka probe produces to every partition
//! of its topic and reads its records back; a frozen broker lowers availability without
//! counting loss; no probe runs (and no topic is made) unless configured.

use std::time::{Duration, Instant};

use pipescope_testkit::{Tansu, http_body, wait_until};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;

use crate::completeness::Monitor;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The probes' answer, when the monitor serves it.
fn probes(monitor: &Monitor) -> Option<Vec<Value>> {
    let body = http_body(monitor.port, "/api/v1/probes")?;
    serde_json::from_str::<Vec<Value>>(&body).ok()
}

fn topics(bootstrap: &str) -> Vec<(String, usize)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    metadata
        .topics()
        .iter()
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect()
}

fn probe_config(bootstrap: &str, interval: &str, timeout: &str) -> String {
    format!(
        "[kafka.local]\nbootstrap = \"{bootstrap}\"\n\
         [probes.kafka.local]\npartitions = 3\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\n"
    )
}

fn partitions(monitor: &Monitor) -> Vec<Value> {
    probes(monitor)
        .and_then(|p| p.into_iter().next())
        .and_then(|p| p["partitions"].as_array().cloned())
        .unwrap_or_default()
}

fn read_counter(p: &Value, name: &str) -> u64 {
    p["read"]["total"]["counters"][name]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// The probe creates its 3-partition topic, and every partition's records are acknowledged
/// and read back once: availability 1.0, nothing lost or duplicated, both latencies measured.
#[test]
fn the_kafka_probe_reads_back_every_record_of_every_partition() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(dir.path(), &probe_config(&bootstrap, "200ms", "2s"));
    let mut seen = Vec::new();
    // Availability covers complete 10-second buckets: wait for the first one.
    let measured = wait_until(TIMEOUT, || {
        seen = partitions(&monitor);
        seen.len() == 3
            && seen.iter().all(|p| {
                p["produce"]["availability"]["1m"].is_number() && read_counter(p, "records") >= 10
            })
    });
    assert!(measured, "no figures: {seen:?}\n{}", monitor.log());
    for p in &seen {
        assert_eq!(p["produce"]["availability"]["1m"], 1.0, "{p}");
        assert_eq!(p["produce"]["failed"], 0, "{p}");
        assert_eq!(read_counter(p, "lost"), 0, "{p}");
        assert_eq!(read_counter(p, "duplicated"), 0, "{p}");
        assert!(
            p["produce"]["ack_latency"]["all"]["p99_ms"].is_number(),
            "{p}"
        );
        let e2e = p["read"]["total"]["latency"]["all"]["p50_ms"]
            .as_f64()
            .unwrap();
        assert!((0.0..5_000.0).contains(&e2e), "{p}");
        assert!(p["leader"].is_number(), "{p}");
    }
    let probe = probes(&monitor).unwrap().remove(0);
    let brokers = probe["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "one tansu leads every partition: {probe}");
    assert_eq!(brokers[0]["partitions"], 3, "{probe}");
    assert_eq!(brokers[0]["lost"], 0, "{probe}");
    assert!(
        topics(&bootstrap).contains(&("pipescope-probe".to_string(), 3)),
        "{:?}",
        topics(&bootstrap)
    );
    assert!(
        monitor.log().contains("pipescope-probe"),
        "the start log names the topic: {}",
        monitor.log()
    );
    let metrics = http_body(monitor.port, "/metrics").unwrap();
    assert!(
        metrics.contains("pipescope_probe_availability_ratio{cluster=\"local\",topic=\"pipescope-probe\",partition=\"0\"} 1"),
        "{metrics}"
    );
}

/// With the broker frozen, records are not acknowledged in time: availability drops. After
/// it runs again acknowledgements resume, and what was never acknowledged — or arrived after
/// its timeout — is not counted lost, nor twice.
#[test]
fn a_frozen_broker_lowers_availability_and_counts_no_loss() {
    let mut tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(dir.path(), &probe_config(&bootstrap, "200ms", "1s"));
    let mut seen = Vec::new();
    let reading = wait_until(TIMEOUT, || {
        seen = partitions(&monitor);
        seen.len() == 3 && seen.iter().all(|p| read_counter(p, "records") >= 3)
    });
    assert!(reading, "no records read back: {seen:?}\n{}", monitor.log());

    tansu.pause();
    let failing = wait_until(TIMEOUT, || {
        seen = partitions(&monitor);
        seen.iter()
            .all(|p| p["produce"]["failed"].as_u64() >= Some(2))
    });
    tansu.resume();
    assert!(failing, "no produce failed while frozen: {seen:?}");
    let acked: Vec<u64> = seen
        .iter()
        .map(|p| p["produce"]["acked"].as_u64().unwrap())
        .collect();

    let recovered = wait_until(TIMEOUT, || {
        seen = partitions(&monitor);
        seen.len() == 3
            && seen.iter().zip(&acked).all(|(p, before)| {
                p["produce"]["acked"].as_u64().unwrap() >= before + 10
                    && p["produce"]["availability"]["1m"].as_f64() < Some(1.0)
            })
    });
    assert!(recovered, "no recovery: {seen:?}\n{}", monitor.log());
    // Past the grace (10 s) of every gap the freeze could have opened.
    let settled_at = Instant::now() + Duration::from_secs(11);
    assert!(wait_until(TIMEOUT, || Instant::now() >= settled_at));
    for p in partitions(&monitor) {
        assert_eq!(read_counter(&p, "lost"), 0, "{p}");
        assert_eq!(read_counter(&p, "duplicated"), 0, "{p}");
        assert!(read_counter(&p, "records") > 10, "{p}");
    }
}

/// Without a [probes] section nothing is produced and no topic is made.
#[test]
fn probes_are_off_by_default() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!("[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"1s\"\n"),
    );
    let serving = wait_until(TIMEOUT, || probes(&monitor) == Some(Vec::new()));
    assert!(serving, "{}", monitor.log());
    // The Kafka watcher has scraped a few times by now.
    let later = Instant::now() + Duration::from_secs(3);
    assert!(wait_until(TIMEOUT, || Instant::now() >= later));
    assert!(
        topics(&bootstrap).iter().all(|(t, _)| !t.contains("probe")),
        "{:?}",
        topics(&bootstrap)
    );
    assert!(!monitor.log().contains("probe"), "{}", monitor.log());
}
