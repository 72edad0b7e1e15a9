//! Faults a user meets, against the real services (issue 15): a Kafka broker killed with
//! `kill -9` while `pipescope run` scrapes it, consumer groups and topics with hostile names,
//! and influxd answering 500 or too late to `sink influx`. Each asserts that nothing is lost, or
//! that what could not be had is clearly shown and counted.

use std::time::{Duration, Instant};

use pipescope_testkit::{
    Fault, FaultProxy, Influxd, Part, Tansu, free_port, http_get, now_ms, wait_until,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use crate::kafka::{commit_standalone, create_topic};
use crate::pipeline::start_readings_sink;

const TIMEOUT: Duration = Duration::from_secs(30);

/// `pipescope run` watching one cluster `local`, as a user runs it; its log kept in a file.
struct Monitor {
    part: Part,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Monitor {
    /// Scrapes every 200 ms, each request given 1 s: a broker's death shows within about 1.5 s.
    fn start(bootstrap: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("pipescope.toml");
        std::fs::write(
            &config,
            format!(
                "[web]\nlisten = \"127.0.0.1:{port}\"\n[store]\npath = {:?}\n\
                 [kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"200ms\"\nrequest_timeout = \"1s\"\n",
                dir.path().join("store").to_str().unwrap()
            ),
        )
        .unwrap();
        let part = Part::builder(env!("CARGO_BIN_EXE_pipescope"), "pipescope run")
            .args(["run", "-c", config.to_str().unwrap()])
            .port(port)
            .without_web()
            .log_filter("info,pipescope=debug")
            .start();
        Self {
            part,
            port,
            _dir: dir,
        }
    }

    /// The JSON of a GET that answered 200, else None.
    fn json(&self, path: &str) -> Option<Value> {
        let (status, body) = http_get(self.port, path)?;
        (status == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    fn cluster(&self) -> Option<Value> {
        self.json("/api/v1/kafka/clusters/local")
    }

    fn topic(&self, name: &str) -> Option<Value> {
        let topics = self.json("/api/v1/kafka/clusters/local/topics")?;
        topics["items"]
            .as_array()?
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
    }

    fn group(&self, name: &str) -> Option<Value> {
        let groups = self.json("/api/v1/kafka/clusters/local/groups")?;
        groups["items"]
            .as_array()?
            .iter()
            .find(|g| g["name"] == name)
            .cloned()
    }

    /// Waits for `condition` on the monitor; panics with its log after `timeout`.
    fn wait(&self, what: &str, timeout: Duration, mut condition: impl FnMut(&Self) -> bool) {
        if !wait_until(timeout, || condition(self)) {
            panic!(
                "{what}: not within {timeout:?}; cluster {:?}\n--- log ---\n{}",
                self.cluster(),
                self.part.log()
            );
        }
    }

    fn up(&self) -> bool {
        self.cluster()
            .is_some_and(|c| c["error"].is_null() && c["brokers_up"] == 1)
    }

    /// No panic, and still serving /health as ok.
    fn assert_alive(&mut self) {
        let log = self.part.log();
        assert!(!log.contains("panicked"), "a panic in the log:\n{log}");
        assert!(!self.part.has_exited(), "pipescope run exited:\n{log}");
        let (status, health) = http_get(self.port, "/health").expect("/health answers");
        assert_eq!(status, 200, "{health}");
        assert!(health.contains("\"status\":\"ok\""), "{health}");
    }
}

fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

fn produce(producer: &BaseProducer, topic: &str, records: usize) {
    for i in 0..records {
        let payload = format!("{{\"i\":{i}}}");
        producer
            .send(
                BaseRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(&payload),
            )
            .unwrap();
    }
    producer.flush(TIMEOUT).expect("all records delivered");
}

/// The broker dies (`kill -9`) in the middle of a scrape while `pipescope run` scrapes it every
/// 200 ms: the monitor keeps serving, shows the cluster down within a bounded time, marks the
/// numbers it still shows as stale, and once the broker is back (same port, same data) recovers
/// on its own with offsets continuing and windows counting only what was produced.
#[test]
fn a_broker_killed_mid_scrape_is_shown_down_and_the_monitor_recovers_on_its_own() {
    let mut broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "beats", 1);
    let mut monitor = Monitor::start(&bootstrap);
    let started = Instant::now();
    monitor.wait("first scrape", TIMEOUT, Monitor::up);
    let producer = producer(&bootstrap);
    produce(&producer, "beats", 50);
    commit_standalone(&consumer(&bootstrap, "beat-readers"), "beats", 0, 20);
    monitor.wait("50 records and a lag of 30", TIMEOUT, |m| {
        m.topic("beats").is_some_and(|t| t["end_offset_sum"] == 50)
            && m.group("beat-readers")
                .is_some_and(|g| g["lag_offsets"] == 30)
    });

    // Kill it in the middle of a scrape for real: frozen, the broker takes the next scrape's
    // requests (at most an interval away) and answers none; two intervals on, that scrape is
    // waiting on its answers (for up to its 1 s request timeout) when the broker dies.
    let interval_ms = 200;
    broker.pause();
    let paused = now_ms();
    assert!(wait_until(TIMEOUT, || now_ms() >= paused + 2 * interval_ms));
    broker.kill();
    let killed = Instant::now();
    // Two scrapes at most, each at most a request timeout late, and the API's poll.
    let bound = Duration::from_millis(2 * interval_ms as u64 + 1_000 + 1_000);
    monitor.wait("shown down", bound, |m| {
        m.cluster().is_some_and(|c| {
            c["brokers_up"] == 0
                && c["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("cluster local"))
        })
    });
    let shown_down_after = killed.elapsed();
    // Down for a while: its numbers age.
    monitor.wait("stale for a second", TIMEOUT, |m| {
        m.cluster()
            .is_some_and(|c| c["staleness_ms"].as_u64().unwrap_or(0) >= 1_000)
    });
    let metrics = monitor.part.metrics_text().unwrap();
    assert!(
        metrics.contains("pipescope_kafka_broker_up{cluster=\"local\",broker=\"")
            && metrics.contains("\"} 0\n"),
        "{metrics}"
    );
    let staleness =
        pipescope_testkit::part::metric_sum(&metrics, "pipescope_kafka_scrape_staleness_seconds");
    assert!(staleness.is_some_and(|s| s >= 1.0), "{metrics}");
    // What the API shows for the topic and the group while the cluster is down.
    let down_topic = monitor.topic("beats").unwrap();
    let down_group = monitor.group("beat-readers").unwrap();
    eprintln!("while down: topic {down_topic}\ngroup {down_group}");
    assert_stale_not_fresh(&down_topic);
    // The group's lag is the last known, as of the cluster's staleness.
    assert_eq!(down_group["lag_offsets"], 30, "{down_group}");
    assert!(
        !metrics.contains("pipescope_kafka_partition_instant_messages_per_second{"),
        "{metrics}"
    );
    monitor.assert_alive();
    let log = monitor.part.log();
    let failed = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("cluster local"))
        .unwrap_or_else(|| panic!("no warning of the failed scrape:\n{log}"));
    eprintln!("the failed scrape: {failed}");

    broker.restart();
    monitor.wait("recovered", TIMEOUT, Monitor::up);
    // The same data: the offsets continue where they were.
    let topic = monitor.topic("beats").unwrap();
    assert_eq!(topic["end_offset_sum"], 50, "{topic}");
    produce(&producer, "beats", 30);
    monitor.wait("80 records and a lag of 60", TIMEOUT, |m| {
        m.topic("beats").is_some_and(|t| t["end_offset_sum"] == 80)
            && m.group("beat-readers")
                .is_some_and(|g| g["lag_offsets"] == 60)
    });
    // Windows count what was produced, not the gap: 80 records, all within the minute, over
    // no more time than the monitor has been watching.
    let topic = monitor.topic("beats").unwrap();
    let minute = &topic["rates"]["1m"];
    assert_eq!(minute["count"], 80.0, "{topic}");
    assert!(
        minute["covered_s"].as_f64().unwrap() <= started.elapsed().as_secs_f64(),
        "{topic}"
    );
    let group = monitor.group("beat-readers").unwrap();
    assert!(group["verdict"].is_string(), "{group}");
    monitor.assert_alive();
    eprintln!("shown down {shown_down_after:?} after the kill (bound {bound:?})");
}

/// While no broker answers, the topic's numbers are the last ones read: no rate may claim to be
/// over the latest interval, in which nothing was read.
fn assert_stale_not_fresh(topic: &Value) {
    assert!(
        topic["instant_messages_per_second"].is_null() && topic["instant_interval_s"].is_null(),
        "a rate over an interval nothing was read in: {topic}"
    );
    assert_eq!(topic["end_offset_sum"], 50, "{topic}");
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

/// Percent-encodes every byte but the unreserved ones, for a name in a URL path.
fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A line a hostile name would forge in the log if its newline were written as is.
const FORGED: &str = "2026-01-01T00:00:00.000000Z ERROR pipescope: forged entry";

/// A consumer group named with quotes, backslashes, a newline that would forge a log entry,
/// control characters and ~10 KiB of UTF-8, committing on a topic whose name is at Kafka's
/// 249-character limit: the API carries both names exactly, the group's own endpoint answers
/// for its URL-encoded name, `/metrics` passes promtool, and the log stays one line per event.
#[test]
fn hostile_group_and_topic_names_come_out_exact_escaped_and_valid() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    let long_topic: String = "orders.eu_west-1.".chars().cycle().take(249).collect();
    create_topic(&bootstrap, &long_topic, 1);
    // Kafka's metric names mix up '.' and '_': here both are label values, kept apart.
    create_topic(&bootstrap, "collide.me", 1);
    create_topic(&bootstrap, "collide_me", 1);
    let producer = producer(&bootstrap);
    produce(&producer, &long_topic, 10);
    produce(&producer, "collide_me", 3);
    let mut group = format!("say \"hi\" \\ back\\slash\n{FORGED}\r\t\u{1b}[31m red ");
    while group.len() < 10 * 1024 {
        group.push_str("é€😀ü");
    }
    commit_standalone(&consumer(&bootstrap, &group), &long_topic, 0, 4);

    let mut monitor = Monitor::start(&bootstrap);
    monitor.wait("the group with a lag of 6", TIMEOUT, |m| {
        m.group(&group).is_some_and(|g| g["lag_offsets"] == 6)
    });
    let topic = monitor.topic(&long_topic).unwrap();
    assert_eq!(topic["end_offset_sum"], 10, "{topic}");
    assert_eq!(monitor.topic("collide.me").unwrap()["end_offset_sum"], 0);
    assert_eq!(monitor.topic("collide_me").unwrap()["end_offset_sum"], 3);
    let detail = monitor
        .json(&format!(
            "/api/v1/kafka/clusters/local/groups/{}",
            path_segment(&group)
        ))
        .expect("the group's own endpoint answers for its encoded name");
    assert_eq!(detail["name"], group.as_str());
    assert_eq!(detail["partitions"][0]["topic"], long_topic.as_str());
    let detail = monitor
        .json(&format!(
            "/api/v1/kafka/clusters/local/topics/{}",
            path_segment(&long_topic)
        ))
        .expect("the topic's own endpoint answers");
    assert_eq!(detail["name"], long_topic.as_str());

    let metrics = monitor.part.metrics_text().unwrap();
    let escaped = group
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    assert!(
        metrics.contains(&format!(
            "pipescope_kafka_group_committed_offset{{cluster=\"local\",group=\"{escaped}\",topic=\"{long_topic}\",partition=\"0\"}} 4"
        )),
        "{metrics}"
    );
    for (topic, end) in [("collide.me", "0.0"), ("collide_me", "3.0")] {
        assert!(
            metrics.contains(&format!(
                "pipescope_kafka_partition_end_offset{{cluster=\"local\",topic=\"{topic}\",partition=\"0\"}} {end}\n"
            )),
            "{metrics}"
        );
    }
    promtool_check_metrics(&metrics);

    let log = monitor.part.log();
    for line in log.lines() {
        assert!(
            !line.starts_with(FORGED) && line.as_bytes().first().is_some_and(u8::is_ascii_digit),
            "a log line that is no event of its own: {line:?}\n--- log ---\n{log}"
        );
    }
    eprintln!(
        "the group's name is in {} of {} log lines",
        log.lines().filter(|l| l.contains("forged entry")).count(),
        log.lines().count()
    );
    monitor.assert_alive();
}

/// `promtool check metrics` on `text`; panics with what it says when it fails.
fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let promtool = pipescope_testkit::find_binary("promtool", "sudo apt-get install -y prometheus");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The committed offset of `group` on partition 0 of `readings`, or -1 when none.
fn committed(bootstrap: &str, group: &str) -> i64 {
    let consumer = consumer(bootstrap, group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("readings", 0);
    let offsets = consumer.committed_offsets(tpl, TIMEOUT).unwrap();
    match offsets.elements()[0].offset() {
        Offset::Offset(o) => o,
        _ => -1,
    }
}

/// `SELECT count(value), sum(value) FROM reading`, or zeros when there is nothing yet.
fn count_and_sum(influx: &Influxd) -> (u64, f64) {
    let answer: Value =
        serde_json::from_str(&influx.query("it", "SELECT count(value), sum(value) FROM reading"))
            .unwrap();
    let row = &answer["results"][0]["series"][0]["values"][0];
    (row[1].as_u64().unwrap_or(0), row[2].as_f64().unwrap_or(0.0))
}

/// Produces records `from..to` to `readings` (partition 0): value i, time base + i.
fn produce_readings(producer: &BaseProducer, from: u64, to: u64) {
    for i in from..to {
        let payload =
            serde_json::json!({"value": i as f64, "ts": 1_700_000_000_000u64 + i}).to_string();
        producer
            .send(
                BaseRecord::<(), _>::to("readings")
                    .partition(0)
                    .payload(&payload),
            )
            .unwrap();
    }
    producer.flush(TIMEOUT).unwrap();
}

/// The sum of values `0..n`.
fn sum_to(n: u64) -> f64 {
    (0..n).map(|i| i as f64).sum()
}

struct SinkBehindProxy {
    influx: Influxd,
    proxy: FaultProxy,
    _broker: Tansu,
    bootstrap: String,
    producer: BaseProducer,
    sink: Part,
}

/// influxd with a fault proxy in front, tansu with `readings`, and `sink influx` writing
/// through the proxy in batches of 50; 100 records written before any fault.
fn sink_behind_proxy() -> SinkBehindProxy {
    let influx = Influxd::start();
    influx.query("", "CREATE DATABASE it");
    let proxy = FaultProxy::start(&influx.url());
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "readings", 1);
    let sink = start_readings_sink(&bootstrap, &proxy.url(), "50", &[]);
    let producer = producer(&bootstrap);
    produce_readings(&producer, 0, 100);
    sink.wait_metric(
        "pipescope_sink_influx_records_written_total",
        TIMEOUT,
        |v| v == 100.0,
    );
    assert_eq!(count_and_sum(&influx), (100, sum_to(100)));
    SinkBehindProxy {
        influx,
        proxy,
        _broker: broker,
        bootstrap,
        producer,
        sink,
    }
}

/// influxd answers 500 to every write for a while: the sink retries, commits no offset past
/// what influxd stored, and once influxd answers again every record is there exactly once, with
/// the failures and retries counted.
#[test]
fn sink_retries_influxd_500s_and_commits_only_what_was_written() {
    let mut setup = sink_behind_proxy();
    let group = "pipescope-sink-influx";
    assert_eq!(committed(&setup.bootstrap, group), 100);
    setup.proxy.inject(1_000, Fault::Status(500));
    produce_readings(&setup.producer, 100, 300);
    setup
        .sink
        .wait_metric("pipescope_sink_influx_failed_writes_total", TIMEOUT, |v| {
            v >= 3.0
        });
    // Nothing of the new records was stored, so nothing of them is committed.
    assert_eq!(count_and_sum(&setup.influx).0, 100);
    assert_eq!(committed(&setup.bootstrap, group), 100);
    let served = setup.proxy.faults_served();
    setup.proxy.clear();
    setup.sink.wait_metric(
        "pipescope_sink_influx_records_written_total",
        Duration::from_secs(60),
        |v| v == 300.0,
    );
    assert_eq!(count_and_sum(&setup.influx), (300, sum_to(300)));
    assert!(wait_until(TIMEOUT, || committed(&setup.bootstrap, group) == 300));
    let metric = |name: &str| setup.sink.metric(name).unwrap();
    assert!(metric("pipescope_sink_influx_failed_writes_total") >= served as f64);
    // Each retry counts the part of the batch it sends again (50 lines at most here).
    assert!(metric("pipescope_sink_influx_records_retried_total") >= served as f64);
    assert_eq!(
        setup
            .sink
            .metric("pipescope_sink_influx_rejected_lines_total"),
        None,
        "nothing was refused for good"
    );
    setup.sink.terminate();
}

/// Two writes take longer than the sink waits (10 s): the first never reaches influxd, the
/// second is stored late. The sink retries rather than skip the batch (a skipped batch would
/// lack the first's points), and every record is stored once per time.
#[test]
fn sink_retries_a_write_that_timed_out_and_skips_no_batch() {
    let mut setup = sink_behind_proxy();
    let group = "pipescope-sink-influx";
    setup.proxy.inject(1, Fault::Stall(Duration::from_secs(12)));
    setup.proxy.inject(1, Fault::Hold(Duration::from_secs(12)));
    produce_readings(&setup.producer, 100, 200);
    assert!(wait_until(TIMEOUT, || setup.proxy.faults_served() >= 1));
    assert_eq!(committed(&setup.bootstrap, group), 100);
    setup.sink.wait_metric(
        "pipescope_sink_influx_records_written_total",
        Duration::from_secs(60),
        |v| v == 200.0,
    );
    assert_eq!(setup.proxy.faults_served(), 2);
    // The held write landed late, after the sink wrote it again: still one point per time.
    assert!(wait_until(TIMEOUT, || setup.proxy.passed() + 1
        == setup.proxy.requests()));
    assert_eq!(count_and_sum(&setup.influx), (200, sum_to(200)));
    assert!(wait_until(TIMEOUT, || committed(&setup.bootstrap, group) == 200));
    let metric = |name: &str| setup.sink.metric(name).unwrap();
    assert!(metric("pipescope_sink_influx_failed_writes_total") >= 2.0);
    assert!(metric("pipescope_sink_influx_records_retried_total") >= 2.0);
    assert_eq!(
        setup
            .sink
            .metric("pipescope_sink_influx_rejected_lines_total"),
        None,
        "nothing was refused for good"
    );
    setup.sink.terminate();
}

/// A connection lost once while a lone group is described (its broker died or restarted
/// mid-request, as `kill -9` above does) is no fault of the group: it is asked again at once,
/// not left undescribed for `REFUSED_RETRY_SCRAPES` scrapes after the broker is back.
#[test]
fn a_connection_lost_once_while_describing_a_lone_group_does_not_blame_the_group() {
    use kafka_protocol::messages::ApiKey;
    use pipescope_testkit::ScriptedBroker;

    let rt = crate::kafka::runtime();
    // `reporting` is refused for good, so `payments-app` is then the one group asked for.
    let broker = rt.block_on(ScriptedBroker::builder().poison_group("reporting").start());
    let cluster = crate::kafka::cluster_config(&broker.bootstrap(), "");
    let scraper = pipescope::kafka::scraper("local", &cluster).unwrap();
    let first = rt.block_on(scraper.scrape(&pipescope_core::SystemClock, None));
    assert!(first.group("reporting").unwrap().description.is_err());
    assert_eq!(broker.requests(ApiKey::DescribeGroups), 3);
    broker.drop_next_describe_groups(1);
    let second = rt.block_on(scraper.scrape(&pipescope_core::SystemClock, Some(&first)));
    let app = second.group("payments-app").unwrap().description.clone();
    let app = app.unwrap_or_else(|e| panic!("payments-app blamed for a lost connection: {e}"));
    assert_eq!(app.members.len(), 2);
    // Dropped once, then asked again alone.
    assert_eq!(broker.requests(ApiKey::DescribeGroups), 5);
}
