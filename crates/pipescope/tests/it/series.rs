//! Bounded series: against a real tansu, only the top-K partitions' series reach the store
//! while topic and group series all do, and a cap on series per source drops and counts the
//! rest; `pipescope check --cluster-size` prints the estimate.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use pipescope_testkit::{Tansu, http_get, now_ms, wait_until};
use serde_json::Value;

use crate::completeness::Monitor;
use crate::kafka::{commit_at, consumer, create_topic, produce};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The stored series of `metric` as `labels` objects.
fn stored(monitor: &Monitor, metric: &str) -> Vec<Value> {
    let Some((200, body)) = http_get(monitor.port, &format!("/api/v1/series?metric={metric}"))
    else {
        return Vec::new();
    };
    let answer: Value = serde_json::from_str(&body).unwrap();
    answer["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["labels"].clone())
        .collect()
}

fn partitions(series: &[Value]) -> BTreeSet<String> {
    series
        .iter()
        .map(|l| {
            format!(
                "{}/{}",
                l["topic"].as_str().unwrap(),
                l["partition"].as_str().unwrap()
            )
        })
        .collect()
}

/// The value of the `/metrics` line starting with `prefix ` (0 when absent).
fn metric(monitor: &Monitor, prefix: &str) -> f64 {
    let Some((200, text)) = http_get(monitor.port, "/metrics") else {
        return 0.0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix(prefix)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// A cluster of 3 partitions with one lagging, watched with `partition_top_k = 1`.
fn lagging_cluster() -> (Tansu, String) {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "orders", 3);
    produce(&bootstrap, "orders", 3, 100, now_ms() - 60_000);
    commit_at(
        &consumer(&bootstrap, "billing"),
        "orders",
        &[(0, 100), (1, 40), (2, 100)],
    );
    (broker, bootstrap)
}

#[test]
fn top_k_of_one_stores_only_the_lagging_partition_and_every_group_series() {
    let started = Instant::now();
    let (_broker, bootstrap) = lagging_cluster();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"300ms\"\npartition_top_k = 1\n"
        ),
    );
    // Group series arrive with the scrape that knows the group's lag.
    assert!(
        wait_until(TIMEOUT, || {
            !stored(&monitor, "pipescope_kafka_group_verdict").is_empty()
                && !stored(&monitor, "pipescope_kafka_group_lag_offsets").is_empty()
                && metric(
                    &monitor,
                    "pipescope_series_unselected_samples_total{source=\"kafka/local\"}",
                ) > 0.0
        }),
        "no group series stored; log:\n{}",
        monitor.log()
    );
    let lagging = BTreeSet::from(["orders/1".to_string()]);
    for name in [
        "pipescope_kafka_partition_end_offset",
        "pipescope_kafka_partition_start_offset",
        "pipescope_kafka_group_lag_offsets",
        "pipescope_kafka_group_committed_offset",
        "pipescope_kafka_group_partition_verdict",
    ] {
        assert_eq!(partitions(&stored(&monitor, name)), lagging, "{name}");
    }
    let verdicts = stored(&monitor, "pipescope_kafka_group_verdict");
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0]["group"], "billing");
    let lost = stored(&monitor, "pipescope_kafka_group_lost_records_total");
    assert_eq!((lost.len(), &lost[0]["topic"]), (1, &Value::from("orders")));
    assert_eq!(
        stored(&monitor, "pipescope_kafka_clamped_commits_total").len(),
        1
    );
    // /metrics keeps its own filters: every partition is there.
    let (_, text) = http_get(monitor.port, "/metrics").unwrap();
    for p in 0..3 {
        let line = format!(
            "pipescope_kafka_partition_end_offset{{cluster=\"local\",topic=\"orders\",partition=\"{p}\"}} 100"
        );
        assert!(text.contains(&line), "{line} missing in /metrics");
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_cap_on_series_per_source_drops_and_counts_the_rest() {
    let (_broker, bootstrap) = lagging_cluster();
    let dir = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(
        dir.path(),
        &format!(
            "[series]\nmax_per_source = 5\n[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"300ms\"\npartition_series = \"all\"\n"
        ),
    );
    let dropped = "pipescope_series_dropped_samples_total{source=\"kafka/local\"}";
    assert!(
        wait_until(TIMEOUT, || metric(&monitor, dropped) > 0.0),
        "nothing dropped; log:\n{}",
        monitor.log()
    );
    assert_eq!(
        metric(
            &monitor,
            "pipescope_series_admitted{source=\"kafka/local\"}"
        ),
        5.0
    );
    // Two scrapes later the store still holds the same 5 series of the cluster.
    let after = metric(&monitor, dropped);
    assert!(wait_until(TIMEOUT, || metric(&monitor, dropped) > after));
    let local = |monitor: &Monitor| {
        let (_, body) = http_get(monitor.port, "/api/v1/series").unwrap();
        let answer: Value = serde_json::from_str(&body).unwrap();
        answer["series"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["labels"]["cluster"] == "local")
            .count()
    };
    assert!(
        wait_until(TIMEOUT, || local(&monitor) == 5),
        "{} series of the cluster stored",
        local(&monitor)
    );
    let before = metric(&monitor, dropped);
    assert!(wait_until(TIMEOUT, || metric(&monitor, dropped) > before));
    assert_eq!(local(&monitor), 5);
}

#[test]
fn check_prints_the_series_and_disk_a_cluster_size_would_take() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pipescope.toml");
    std::fs::write(
        &config,
        "[kafka.prod]\nbootstrap = \"k:9092\"\n[export.influx]\nurl = \"http://127.0.0.1:8086\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["check", "-c", config.to_str().unwrap()])
        .args([
            "--cluster-size",
            "partitions=100000,topics=20000,groups=10000",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let estimate: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(
        estimate,
        [
            "series a Kafka cluster of 100000 partitions, 20000 topics, 10000 groups (50000 group partitions) sends to the store and InfluxDB (/metrics is bounded by groups_allow/topics_allow instead; 1.5 bytes per stored sample):",
            "  kafka.prod (scrape every 10s, partition_series = \"top\", partition_top_k = 200, series.max_per_source = 200000):",
            "    every series: 790002 series, 10.2 GB/day",
            "    bounded:      92802 series, 1.2 GB/day",
        ]
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["check", "-c", config.to_str().unwrap()])
        .args(["--cluster-size", "partitions=10,topics=20,groups=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("20 topics for 10 partitions: a topic has at least one partition"),
        "{stderr}"
    );
}
