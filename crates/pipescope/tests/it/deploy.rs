//! The files in deploy/: Grafana dashboards name only metrics pipescope emits (deploy/metrics.txt),
//! their PromQL parses, and the Prometheus alert rules pass promtool's check and unit tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use pipescope_testkit::find_binary;
use serde_json::Value;

const DASHBOARDS: [&str; 9] = [
    "kafka-topics",
    "kafka-partitions",
    "kafka-consumer-lag",
    "mqtt-system-metrics",
    "mqtt-topics",
    "mqtt-lastseen",
    "calls-pipeline",
    "machine-pipeline",
    "data-quality",
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
        if q.kind == "influxdb" && q.text.contains("$sink_measurement") {
            continue; // the sink's own points, in the measurement its user chose
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
    assert_eq!(seen, 17, "{text}");
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
    analyzer.ingest(snapshot(0, 100, 40));
    // A minute apart: the per-minute series exist only once a minute is watched.
    let view = analyzer.ingest(snapshot(60, 200, 150));
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
                replicas: vec![1].into(),
                isr: vec![1].into(),
                offline_replicas: vec![].into(),
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
        offsets_time_ms: Some(10_000),
        committed_offsets: pipescope::kafka::state::CommittedOffsetsSource {
            from_offsets_topic: true,
            reader: Some(Default::default()),
        },
        view: Some(Arc::new(view)),
    };

    let mut emitted = BTreeSet::new();
    let every = pipescope_core::series_budget::PartitionFilter::every();
    for sample in pipescope::kafka::samples(&state, &every).0 {
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

#[test]
fn the_scrape_and_alertmanager_configs_pass_their_checkers() {
    let checked = promtool(&["check", "config", "prometheus.yml"], "prometheus.yml");
    assert!(checked.contains("SUCCESS: 1 rule files found"), "{checked}");
    let config = deploy().join("alertmanager/alertmanager.yml");
    let out = Command::new(find_binary(
        "amtool",
        "sudo apt-get install -y prometheus-alertmanager",
    ))
    .args(["check-config", config.to_str().unwrap()])
    .output()
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "amtool check-config failed:\n{text}");
    assert!(text.contains("4 receivers"), "{text}");
}

/// A dashboard variable and the values the test gives it, as Grafana would: a query variable's
/// values are what its `label_values` finds in Prometheus (all of them, as "All" selects, when it
/// is multi-valued; else the first); a text box keeps its default.
#[derive(Debug)]
struct Variable {
    name: String,
    values: Vec<String>,
    multi: bool,
}

/// `value` escaped for a regex inside a PromQL string (`\\.`) or an InfluxQL `/…/` (`\.`, `\/`).
fn regex_escape(value: &str, influx: bool) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push_str(if influx { "\\" } else { "\\\\" });
        } else if influx && c == '/' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` with the variables filled in (longest names first, so `$group` does not eat
/// `$groups`) and, for InfluxQL, Grafana's time filter and interval.
fn fill_in(text: &str, variables: &[Variable], influx: bool) -> String {
    let mut text = text.to_string();
    let mut by_length: Vec<&Variable> = variables.iter().collect();
    by_length.sort_by_key(|v| std::cmp::Reverse(v.name.len()));
    for v in by_length {
        let value = if v.multi {
            let escaped: Vec<String> = v.values.iter().map(|x| regex_escape(x, influx)).collect();
            format!("({})", escaped.join("|"))
        } else {
            v.values.first().cloned().unwrap_or_default()
        };
        text = text.replace(&format!("${}", v.name), &value);
    }
    text.replace("$timeFilter", "time > now() - 15m")
        .replace("$__interval", "5s")
}

fn prometheus_values(prometheus: &pipescope_testkit::Prometheus, promql: &str) -> Vec<Value> {
    let text = prometheus.query(promql);
    let answer: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("Prometheus answered {text:?} to {promql:?}: {e}"));
    assert_eq!(answer["status"], "success", "{promql}: {answer}");
    answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The values of `label_values(<selector>, <label>)` in Prometheus now.
fn label_values(
    prometheus: &pipescope_testkit::Prometheus,
    definition: &str,
    earlier: &[Variable],
) -> Vec<String> {
    let (selector, label) = definition
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .and_then(|s| s.rsplit_once(','))
        .unwrap_or_else(|| panic!("not a label_values query: {definition}"));
    let label = label.trim();
    let selector = fill_in(selector, earlier, false);
    let mut values: Vec<String> =
        prometheus_values(prometheus, &format!("group by ({label}) ({selector})"))
            .iter()
            .filter_map(|s| s["metric"][label].as_str().map(str::to_string))
            .collect();
    values.sort();
    values
}

fn dashboard_variables(
    dashboard: &Value,
    prometheus: &pipescope_testkit::Prometheus,
) -> Vec<Variable> {
    let mut out: Vec<Variable> = Vec::new();
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap().to_string();
        let variable = match v["type"].as_str().unwrap() {
            "query" => Variable {
                values: label_values(prometheus, v["definition"].as_str().unwrap(), &out),
                multi: v["multi"] == true || v["includeAll"] == true,
                name,
            },
            "textbox" | "custom" | "constant" => Variable {
                values: vec![v["query"].as_str().unwrap().to_string()],
                multi: false,
                name,
            },
            other => panic!("variable {name} is of a type the test cannot fill: {other}"),
        };
        out.push(variable);
    }
    out
}

/// True when a Prometheus answer has a series whose value is a number.
fn has_number(series: &[Value]) -> bool {
    series.iter().any(|s| {
        s["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    })
}

/// True when an InfluxQL answer has a series with a value that is not null.
fn influx_has_data(answer: &str) -> bool {
    let json: Value = serde_json::from_str(answer).unwrap_or_default();
    json["results"][0]["series"]
        .as_array()
        .is_some_and(|series| {
            series.iter().any(|s| {
                s["values"].as_array().is_some_and(|rows| {
                    rows.iter().any(|row| {
                        row.as_array()
                            .is_some_and(|cells| cells.iter().skip(1).any(|c| !c.is_null()))
                    })
                })
            })
        })
}

/// THE check of the dashboards: a small pipeline on real brokers (tansu, mosquitto), its parts
/// at a high rate with their /metrics, the monitor (quality and InfluxDB export on), a real
/// Prometheus scraping them all every second and a real influxd receiving the export and the
/// sink's points; then every panel's query of every dashboard, variables filled as Grafana
/// does, must return data — PromQL through Prometheus' /api/v1/query, InfluxQL through /query.
#[test]
fn every_dashboard_query_returns_data_from_a_running_pipeline() {
    use pipescope_testkit::{Influxd, Mosquitto, Part, Prometheus, Tansu};
    use std::time::{Duration, Instant};

    let started = Instant::now();
    let tansu = Tansu::start();
    let mosquitto = Mosquitto::start();
    let influxd = Influxd::start();
    influxd.query("", "CREATE DATABASE pipeline");
    let (bootstrap, mqtt) = (tansu.bootstrap(), mosquitto.url());
    let dir = tempfile::tempdir().unwrap();
    let monitor = crate::completeness::Monitor::start(
        dir.path(),
        &format!(
            "[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"1s\"\n\
             [mqtt.local]\nurl = \"{mqtt}\"\nsample_interval = \"1s\"\nexport_filters = [\"machine/#\"]\n\
             [export.influx]\nurl = \"{influx}\"\ninterval = \"1s\"\n\
             [quality.visits]\nkafka = \"local\"\ntopic = \"visits\"\nwindow = \"2s\"\n\
             rules = [{{ field = \"user_id\", not_null = true, not_empty = true }}, {{ field = \"page\", not_null = true, not_empty = true }}]\n",
            influx = influxd.url(),
        ),
    );
    let pipescope = env!("CARGO_BIN_EXE_pipescope");
    let long_calls = dir.path().join("long-calls.log");
    let part = |name: &str, args: &[&str]| Part::builder(pipescope, name).args(args).start();
    let parts = [
        part(
            "simulate calls",
            &[
                "simulate",
                "calls",
                "--kafka",
                &bootstrap,
                "--calls-per-minute",
                "6000",
                "--mean-duration-s",
                "20",
            ],
        ),
        part(
            "process calls",
            &[
                "process",
                "calls",
                "--kafka",
                &bootstrap,
                "--long-calls-log",
                long_calls.to_str().unwrap(),
            ],
        ),
        part(
            "simulate machines",
            &["simulate", "machines", "--mqtt", &mqtt, "--rate", "100"],
        ),
        part(
            "bridge",
            &[
                "bridge",
                "--mqtt",
                &mqtt,
                "--kafka",
                &bootstrap,
                "--map",
                "machine/+/+/#=machine.data",
                "--client-id",
                "it-dashboards",
            ],
        ),
        part(
            "process machines",
            &[
                "process",
                "machines",
                "--kafka",
                &bootstrap,
                "--input",
                "machine.data",
                "--output",
                "machine.out",
                "--window",
                "2s",
            ],
        ),
        part(
            "sink influx",
            &[
                "sink",
                "influx",
                "--kafka",
                &bootstrap,
                "--topic",
                "machine.out",
                "--influx",
                &influxd.url(),
                "--database",
                "pipeline",
                "--measurement",
                "machine",
                "--tag",
                "line=line",
                "--tag",
                "machine=machine",
                "--field",
                "count=count",
                "--field",
                "temperature_mean=sensors.temperature.mean",
                "--time",
                "window_end",
            ],
        ),
        part(
            "simulate visits",
            &[
                "simulate",
                "visits",
                "--kafka",
                &bootstrap,
                "--topic",
                "visits",
                "--rate",
                "50",
                "--empty-fraction",
                "0.05",
                "--null-fraction",
                "0.05",
                "--malformed-fraction",
                "0.02",
            ],
        ),
    ];
    let mut targets = vec![("monitor", format!("127.0.0.1:{}", monitor.port))];
    let jobs: Vec<String> = parts.iter().map(|p| p.name().replace(' ', "-")).collect();
    for (p, job) in parts.iter().zip(&jobs) {
        targets.push((job.as_str(), format!("127.0.0.1:{}", p.port())));
    }
    let prometheus = Prometheus::start(&targets);

    let dashboards: Vec<(&str, Value)> = DASHBOARDS
        .iter()
        .map(|name| {
            let path = deploy().join(format!("grafana/dashboards/{name}.json"));
            (
                *name,
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(),
            )
        })
        .collect();
    // Every panel's query, as (dashboard, panel title, target); a query leaves the list once
    // it returned data.
    let mut pending: Vec<(&str, String, Value)> = Vec::new();
    for (name, dashboard) in &dashboards {
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let title = panel["title"].as_str().unwrap().to_string();
                pending.push((*name, title, target.clone()));
            }
        }
    }
    let checked = pending.len();
    let mut variables_without_values = Vec::new();
    let mut last_look: Option<Instant> = None;
    // The 1-minute windows exist once the monitor watched a whole minute; a 5-minute window
    // would take five, longer than this test may run: its panels are checked on the 1-minute
    // window, the same series with another label value.
    let all_returned_data = pipescope_testkit::wait_until(Duration::from_secs(80), || {
        // One look a second: each runs every query still without data.
        if last_look.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return false;
        }
        last_look = Some(Instant::now());
        variables_without_values.clear();
        for (name, dashboard) in &dashboards {
            if !pending.iter().any(|(d, _, _)| d == name) {
                continue;
            }
            let variables = dashboard_variables(dashboard, &prometheus);
            for v in variables.iter().filter(|v| v.values.is_empty()) {
                variables_without_values.push(format!("{name}: ${} has no values", v.name));
            }
            pending.retain(|(d, _, target)| {
                if d != name {
                    return true;
                }
                let has_data = if let Some(expr) = target["expr"].as_str() {
                    let expr =
                        fill_in(expr, &variables, false).replace("window=\"5m\"", "window=\"1m\"");
                    has_number(&prometheus_values(&prometheus, &expr))
                } else {
                    let query = fill_in(target["query"].as_str().unwrap(), &variables, true);
                    influx_has_data(&influxd.query("datapipes", &query))
                };
                !has_data
            });
        }
        pending.is_empty()
    });
    let empty: Vec<String> = variables_without_values
        .iter()
        .cloned()
        .chain(
            pending
                .iter()
                .map(|(d, title, target)| format!("{d}: {title:?}: {target}")),
        )
        .collect();
    assert!(
        all_returned_data,
        "{} of {checked} dashboard queries returned no data after {:?}:\n{}\nmonitor log:\n{}",
        empty.len(),
        started.elapsed(),
        empty.join("\n"),
        monitor.log()
    );
    assert!(checked >= 60, "only {checked} queries");
    eprintln!(
        "{checked} dashboard queries returned data after {:?}",
        started.elapsed()
    );
}
