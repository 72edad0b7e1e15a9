//! The files in deploy/: Grafana dashboards name only metrics pipescope emits (deploy/metrics.txt),
//! their PromQL parses, and the Prometheus alert rules pass promtool's check and unit tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use pipescope_testkit::find_binary;

const DASHBOARDS: [&str; 6] = [
    "kafka-topics",
    "kafka-partitions",
    "kafka-consumer-lag",
    "mqtt-system-metrics",
    "mqtt-topics",
    "mqtt-lastseen",
];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The names in deploy/metrics.txt: the first word of every line that is not a comment.
fn listed_metrics() -> BTreeSet<String> {
    std::fs::read_to_string(deploy().join("metrics.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Every `pipescope_…` metric name in a query.
fn names_in(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = query;
    while let Some(i) = rest.find("pipescope_") {
        let before_ok = i == 0
            || !rest[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        if before_ok {
            out.push(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    out
}

#[derive(Debug)]
struct Query {
    dashboard: String,
    /// "prometheus", "influxdb" or "variable" (a templating query, PromQL helper syntax).
    kind: String,
    text: String,
}

fn collect(dashboard: &str, value: &serde_json::Value, kind: &str, out: &mut Vec<Query>) {
    match value {
        serde_json::Value::Object(map) => {
            let kind = match map.get("datasource").and_then(|d| d["type"].as_str()) {
                Some(t) if kind != "variable" => t,
                _ => kind,
            };
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "query", serde_json::Value::String(s)) => out.push(Query {
                        dashboard: dashboard.into(),
                        kind: kind.into(),
                        text: s.clone(),
                    }),
                    ("templating", _) => collect(dashboard, v, "variable", out),
                    _ => collect(dashboard, v, kind, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect(dashboard, item, kind, out);
            }
        }
        _ => {}
    }
}

fn all_queries() -> Vec<Query> {
    let mut out = Vec::new();
    for name in DASHBOARDS {
        let path = deploy().join(format!("grafana/dashboards/{name}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        collect(name, &json, "", &mut out);
    }
    out
}

#[test]
fn every_dashboard_query_names_only_metrics_pipescope_emits() {
    let listed = listed_metrics();
    let queries = all_queries();
    for name in DASHBOARDS {
        assert!(
            queries.iter().filter(|q| q.dashboard == name).count() >= 3,
            "dashboard {name} has hardly any queries"
        );
    }
    for q in &queries {
        if q.kind == "variable" && !q.text.contains("pipescope_") {
            continue; // a free-text variable such as a topic regex
        }
        let names = names_in(&q.text);
        assert!(
            !names.is_empty(),
            "{}: query names no pipescope metric: {}",
            q.dashboard,
            q.text
        );
        for n in names {
            assert!(
                listed.contains(&n),
                "{}: {n} is not in deploy/metrics.txt (query {:?})",
                q.dashboard,
                q.text
            );
        }
    }
    // Both datasources are used, and only the provisioned ones.
    assert!(queries.iter().any(|q| q.kind == "influxdb"));
    assert!(queries.iter().any(|q| q.kind == "prometheus"));
    let datasources =
        std::fs::read_to_string(deploy().join("grafana/provisioning/datasources/pipescope.yml"))
            .unwrap();
    for name in DASHBOARDS {
        let text =
            std::fs::read_to_string(deploy().join(format!("grafana/dashboards/{name}.json")))
                .unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut uids = Vec::new();
        find_datasource_uids(&json, &mut uids);
        for uid in uids {
            assert!(
                datasources.contains(&format!("uid: {uid}\n")),
                "{name}: datasource {uid} is not provisioned"
            );
        }
    }
}

fn find_datasource_uids(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(uid) = map.get("datasource").and_then(|d| d["uid"].as_str()) {
                out.push(uid.to_string());
            }
            map.values().for_each(|v| find_datasource_uids(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| find_datasource_uids(v, out)),
        _ => {}
    }
}

/// Each PromQL query of the dashboards, with Grafana variables filled in, as a recording rule
/// that promtool parses.
#[test]
fn every_dashboard_promql_query_parses() {
    let mut exprs: Vec<String> = Vec::new();
    for q in all_queries() {
        match q.kind.as_str() {
            "prometheus" => exprs.push(fill_variables(&q.text)),
            // label_values(<selector>, <label>): the selector is PromQL.
            "variable" => {
                if let Some(inner) = q
                    .text
                    .strip_prefix("label_values(")
                    .and_then(|s| s.strip_suffix(')'))
                    .and_then(|s| s.rsplit_once(','))
                {
                    exprs.push(fill_variables(inner.0));
                }
            }
            _ => {}
        }
    }
    assert!(exprs.len() >= 20, "{} queries", exprs.len());
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, expr) in exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:query:{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboards.yml");
    std::fs::write(&file, &rules).unwrap();
    promtool(&["check", "rules", file.to_str().unwrap()], &rules);
}

fn fill_variables(expr: &str) -> String {
    let mut out = String::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            while chars
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
            {
                chars.next();
            }
            out.push('x');
        } else {
            out.push(c);
        }
    }
    out
}

fn promtool(args: &[&str], context: &str) -> String {
    let out = Command::new(find_binary(
        "promtool",
        "sudo apt-get install -y prometheus",
    ))
    .args(args)
    .current_dir(deploy().join("prometheus"))
    .output()
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{text}\non:\n{context}"
    );
    text
}

#[test]
fn alert_rules_pass_promtool_check_and_fire_in_its_unit_tests() {
    let rules = std::fs::read_to_string(deploy().join("prometheus/alerts.yml")).unwrap();
    let listed = listed_metrics();
    let mut alerts = 0;
    for line in rules.lines() {
        if line.trim_start().starts_with("- alert:") {
            alerts += 1;
        }
        if let Some(expr) = line.trim_start().strip_prefix("expr:") {
            for n in names_in(expr) {
                assert!(
                    listed.contains(&n),
                    "alerts.yml: {n} is not in deploy/metrics.txt"
                );
            }
        }
    }
    let checked = promtool(&["check", "rules", "alerts.yml"], &rules);
    assert!(
        checked.contains(&format!("SUCCESS: {alerts} rules found")),
        "{checked}"
    );
    let tests = std::fs::read_to_string(deploy().join("prometheus/alerts_test.yml")).unwrap();
    // Each alert is expected to fire somewhere in the unit tests.
    for line in rules.lines() {
        if let Some(name) = line.trim_start().strip_prefix("- alert:") {
            let name = name.trim();
            let fires = tests
                .split("alertname: ")
                .skip(1)
                .any(|part| part.starts_with(name) && part.contains("exp_labels"));
            assert!(fires, "alerts_test.yml never expects {name} to fire");
        }
    }
    let tested = promtool(&["test", "rules", "alerts_test.yml"], &tests);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// The list is complete for what this build registers: store, bus, InfluxDB export, build info.
#[test]
fn metrics_txt_lists_every_metric_this_build_registers() {
    let (_dir, store, writer) = crate::support::temp_store(4);
    let mut registry = pipescope::metrics::new_registry();
    pipescope::store::metrics::register(&mut registry, store);
    pipescope::metrics::register_bus(&mut registry, &pipescope::bus::Bus::new(1));
    pipescope::export::influx::register(&mut registry, Default::default());
    let text = pipescope::metrics::encode_prometheus_text(&registry);
    let listed = listed_metrics();
    let mut seen = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(
                listed.contains(name),
                "{name} is registered but not in deploy/metrics.txt"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 16, "{text}");
    writer.close();
}

#[test]
fn metric_names_are_found_in_queries() {
    assert_eq!(
        names_in(r#"sum(rate(pipescope_a_total{x="pipescope_b"}[1m])) / my_pipescope_c"#),
        ["pipescope_a_total", "pipescope_b"]
    );
}

/// The Kafka lines of the list are exactly what the Kafka watcher emits: on the bus and on
/// /metrics, per partition and per topic, for a cluster whose view has every kind of series.
#[test]
fn metrics_txt_kafka_lines_are_what_the_kafka_watcher_emits() {
    use pipescope::kafka::metrics::{ClusterFilters, KafkaCollector};
    use pipescope_core::kafka::{
        GroupCommit, KafkaAnalyzer, OffsetRange, OffsetsSnapshot, PartitionOffsets, TopicPartition,
    };

    let snapshot = |s: u64, latest: i64, committed: i64| OffsetsSnapshot {
        time_ms: s * 1_000,
        partitions: vec![PartitionOffsets {
            tp: TopicPartition::new("t", 0),
            offsets: Ok(OffsetRange {
                earliest: 0,
                latest,
            }),
        }],
        commits: vec![GroupCommit {
            group: "g".into(),
            tp: TopicPartition::new("t", 0),
            committed,
            record_time_ms: None,
        }],
    };
    let mut analyzer = KafkaAnalyzer::default();
    analyzer.ingest(&snapshot(0, 100, 40));
    // A minute apart: the per-minute series exist only once a minute is watched.
    let last = snapshot(60, 200, 150);
    let view = analyzer.ingest(&last);
    let state = pipescope::kafka::ClusterState {
        name: "c".into(),
        scraped_at_ms: 10_000,
        scrape_duration_ms: 5,
        data_time_ms: 10_000,
        error: None,
        cluster_id: None,
        controller_id: Some(1),
        brokers: vec![pipescope::kafka::state::KafkaBrokerState {
            id: 1,
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            up: true,
            error: None,
        }],
        topics: vec![pipescope::kafka::state::TopicState {
            id: None,
            name: "t".into(),
            internal: false,
            error: None,
            config: Ok(Default::default()),
            partitions: vec![pipescope::kafka::state::PartitionState {
                partition: 0,
                leader: Some(1),
                replicas: vec![1],
                isr: vec![1],
                offline_replicas: vec![],
                offline: false,
                under_replicated: false,
                error: None,
                earliest: Ok(0),
                latest: Ok(200),
                producers: Ok(vec![]),
            }],
        }],
        groups: vec![pipescope::kafka::state::GroupState {
            name: "g".into(),
            coordinator: Ok(1),
            protocol_type: "consumer".into(),
            description: Err("not described".into()),
            offsets: Ok(vec![pipescope::kafka::state::CommittedOffset {
                topic: "t".into(),
                partition: 0,
                committed: 150,
                metadata: None,
                record_time_ms: None,
                record_time_error: None,
            }]),
        }],
        group_list_errors: vec![],
        stages: vec![],
        snapshot: Some(last),
        view: Some(Arc::new(view)),
    };

    let mut emitted = BTreeSet::new();
    for sample in pipescope::kafka::samples(&state) {
        emitted.insert(sample.metric.to_string());
    }
    let live = pipescope::kafka::LiveState::new();
    live.set(state);
    for granularity in ["partition", "topic"] {
        let config = pipescope::config::parse(
            "test",
            &format!(
                "[kafka.c]\nbootstrap = \"127.0.0.1:1\"\nmetrics_granularity = \"{granularity}\"\n"
            ),
            [],
        )
        .unwrap();
        let filters = ClusterFilters::from_config(&config.kafka["c"]).unwrap();
        let mut registry = pipescope::metrics::new_registry();
        registry.register_collector(Box::new(KafkaCollector::new(
            live.clone(),
            std::collections::BTreeMap::from([("c".to_string(), filters)]),
        )));
        let text = pipescope::metrics::encode_prometheus_text(&registry);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            if name.starts_with("pipescope_kafka_") {
                emitted.insert(name.to_string());
            }
        }
    }
    let listed: BTreeSet<String> = listed_metrics()
        .into_iter()
        .filter(|n| n.starts_with("pipescope_kafka_"))
        .collect();
    assert_eq!(
        listed, emitted,
        "deploy/metrics.txt (left) differs from what the Kafka watcher emits (right)"
    );
}
