//! `bench/kafka_scrape/run` (installs klag-exporter when missing, builds, runs), or
//! `cargo build --release -p bench-kafka-scrape && target/release/bench-kafka-scrape [TOPICS [GROUPS]]`
//!
//! In one run, against one tansu broker (2,000 topics × 5 partitions and 500 groups with
//! committed offsets by default, set up with batched CreateTopics, pipelined Produce and
//! OffsetCommit):
//! 1. a full pipescope scrape (Metadata, offsets, configs, groups, committed offsets, the
//!    record times at lagging commits, DescribeGroups, then rates, lag and verdicts and the
//!    samples) in a child process, so its wall time, CPU time and peak RSS are the watcher's own;
//! 2. the floor: one bare Metadata + ListOffsets (latest of every partition) round trip;
//! 3. klag-exporter 0.1.29 collecting the same cluster (its own collection time, and the time
//!    from its start to a complete `/metrics`);
//! 4. the correctness contrast on a one-partition cluster per engine: a group 1,400 records
//!    behind, on the sqlite engine (whose DescribeGroups fails for a joined group) and on the
//!    memory engine (whose end offset is wrong).
//!
//! The speed comparison runs on the memory engine with one record per batch (its end offsets are
//! then right and its DescribeGroups answers, so both tools complete); the same cluster on the
//! sqlite engine follows (10 records per partition), where DescribeGroups fails for every group.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, GroupId, JoinGroupRequest, ListOffsetsRequest, MetadataRequest,
    OffsetCommitRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use pipescope::kafka::conn::{ConnectOptions, Pool};
use pipescope_core::SystemClock;
use pipescope_core::kafka::KafkaAnalyzer;
use pipescope_testkit::{RecordBatchBuilder, Tansu, TansuOptions, TansuStorage, free_port, now_ms};

const PARTITIONS: i32 = 5;
/// Topics each group commits on.
const TOPICS_PER_GROUP: usize = 4;
const KLAG_VERSION: &str = "0.1.29";
const KLAG_INSTALL: &str = "bench/kafka_scrape/install-klag";
const KLAG_TIMEOUT: Duration = Duration::from_secs(150);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic_name(t: usize) -> String {
    format!("bench-{t:05}")
}

fn pool() -> Pool {
    Pool::new(ConnectOptions {
        client_id: "bench".into(),
        timeout: Duration::from_secs(60),
        tls: None,
        sasl: None,
        max_backoff: Duration::from_secs(1),
    })
}

/// CPU time (user + system) of a process from /proc, in milliseconds (10 ms ticks).
fn cpu_ms(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) * 10
}

/// Peak resident set (VmHWM) of a process, in kB.
fn peak_rss_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The offset each group commits on a partition: every other partition is caught up, the
/// rest are half way (so half the group partitions lag and need a record-time fetch).
fn committed_offset(topic: usize, partition: i32, records: i64) -> i64 {
    if (topic + partition as usize).is_multiple_of(2) {
        records
    } else {
        records / 2
    }
}

fn group_topics(group: usize, topics: usize) -> impl Iterator<Item = usize> {
    (0..TOPICS_PER_GROUP).map(move |i| (group * TOPICS_PER_GROUP + i) % topics)
}

/// `records` records a second apart from `base_ms` (ending about now). kafka-protocol starts a
/// new batch whenever `offset - sequence` changes: with no sequence every record is a batch of
/// its own (on tansu's memory engine, whose end offset is the last batch's base offset + 1, the
/// end offsets are then right); `one_batch` numbers the sequences so that all go in one batch.
fn batch(records: i64, base_ms: i64, one_batch: bool) -> bytes::Bytes {
    let batch = (0..records).fold(RecordBatchBuilder::new(), |batch, i| {
        batch.record(i, base_ms + i * 1000, format!("{{\"i\":{i}}}"))
    });
    if one_batch { batch.one_batch() } else { batch }.build()
}

async fn create_topics(pool: &Pool, addr: &str, names: &[String], partitions: i32) {
    let requests = names.chunks(100).map(|chunk| async move {
        let mut request = CreateTopicsRequest::default();
        request.timeout_ms = 60_000;
        request.topics = chunk
            .iter()
            .map(|n| {
                let mut t = CreatableTopic::default();
                t.name = TopicName(s(n));
                t.num_partitions = partitions;
                t.replication_factor = 1;
                t
            })
            .collect();
        let response = pool.request(addr, 7, &request).await.expect("CreateTopics");
        for t in &response.topics {
            // 36: TOPIC_ALREADY_EXISTS
            assert!(
                t.error_code == 0 || t.error_code == 36,
                "create topic {}: error {}",
                t.name.0.as_str(),
                t.error_code
            );
        }
    });
    futures::stream::iter(requests)
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
}

/// One batch of `records` records into every partition of `names`, 250 partitions a request.
async fn produce(
    pool: &Pool,
    addr: &str,
    names: &[String],
    partitions: i32,
    records: i64,
    one_batch: bool,
) {
    let base_ms = now_ms() - records * 1000;
    let data = batch(records, base_ms, one_batch);
    let per_request = (250 / partitions.max(1) as usize).max(1);
    let requests = names.chunks(per_request).map(|chunk| {
        let data = data.clone();
        async move {
            let mut request = ProduceRequest::default();
            request.acks = 1;
            request.timeout_ms = 60_000;
            request.topic_data = chunk
                .iter()
                .map(|n| {
                    let mut t = TopicProduceData::default();
                    t.name = TopicName(s(n));
                    t.partition_data = (0..partitions)
                        .map(|p| {
                            let mut pd = PartitionProduceData::default();
                            pd.index = p;
                            pd.records = Some(data.clone());
                            pd
                        })
                        .collect();
                    t
                })
                .collect();
            let response = pool.request(addr, 9, &request).await.expect("Produce");
            for t in &response.responses {
                for p in &t.partition_responses {
                    assert_eq!(
                        p.error_code,
                        0,
                        "produce to {}/{}",
                        t.name.0.as_str(),
                        p.index
                    );
                }
            }
        }
    });
    futures::stream::iter(requests)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// A commit as `member` (generation, member id), or standalone with `None` (generation -1, no
/// member): then the group exists only by its offsets.
async fn commit(
    pool: &Pool,
    addr: &str,
    group: &str,
    member: Option<(i32, StrBytes)>,
    offsets: &[(String, i32, i64)],
) -> Result<(), i16> {
    let mut request = OffsetCommitRequest::default();
    request.group_id = GroupId(s(group));
    let (generation, member_id) = member.unwrap_or((-1, StrBytes::default()));
    request.generation_id_or_member_epoch = generation;
    request.member_id = member_id;
    request.retention_time_ms = -1;
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset) in offsets {
        if topics.last().map(|t| t.name.0.as_str()) != Some(topic.as_str()) {
            let mut t = OffsetCommitRequestTopic::default();
            t.name = TopicName(s(topic));
            topics.push(t);
        }
        let mut p = OffsetCommitRequestPartition::default();
        p.partition_index = *partition;
        p.committed_offset = *offset;
        p.committed_leader_epoch = -1;
        topics.last_mut().unwrap().partitions.push(p);
    }
    request.topics = topics;
    let response = pool.request(addr, 8, &request).await.expect("OffsetCommit");
    match response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.error_code != 0)
    {
        Some(p) => Err(p.error_code),
        None => Ok(()),
    }
}

/// What the cluster must show once set up.
#[derive(Debug, Clone, Copy)]
struct Expected {
    partitions: usize,
    group_partitions: usize,
    lagging: usize,
    lag_sum: i64,
}

/// `records` per partition, in one batch.
async fn set_up(addr: &str, topics: usize, groups: usize, records: i64) -> Expected {
    let pool = pool();
    let names: Vec<String> = (0..topics).map(topic_name).collect();
    let t = Instant::now();
    create_topics(&pool, addr, &names, PARTITIONS).await;
    println!(
        "  CreateTopics: {topics} topics × {PARTITIONS} partitions in {:.1?}",
        t.elapsed()
    );
    let t = Instant::now();
    produce(&pool, addr, &names, PARTITIONS, records, false).await;
    println!(
        "  Produce: {records} records (a batch each) into each of {} partitions in {:.1?}",
        topics * PARTITIONS as usize,
        t.elapsed()
    );
    let t = Instant::now();
    let mut expected = Expected {
        partitions: topics * PARTITIONS as usize,
        group_partitions: 0,
        lagging: 0,
        lag_sum: 0,
    };
    let mut commits = Vec::new();
    for g in 0..groups {
        let offsets: Vec<(String, i32, i64)> = group_topics(g, topics)
            .flat_map(|t| {
                (0..PARTITIONS).map(move |p| (topic_name(t), p, committed_offset(t, p, records)))
            })
            .collect();
        for (_, _, o) in &offsets {
            expected.group_partitions += 1;
            if *o < records {
                expected.lagging += 1;
                expected.lag_sum += records - o;
            }
        }
        commits.push((format!("bench-group-{g:04}"), offsets));
    }
    let pool = &pool;
    futures::stream::iter(commits.iter())
        .map(|(group, offsets)| async move {
            let result = commit(pool, addr, group, None, offsets).await;
            assert_eq!(result, Ok(()), "OffsetCommit of {group}: error code");
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    println!(
        "  OffsetCommit: {groups} groups, {} group partitions ({} lagging) in {:.1?}",
        expected.group_partitions,
        expected.lagging,
        t.elapsed()
    );
    expected
}

/// One bare Metadata (all topics) + ListOffsets (latest of every partition, one request)
/// round trip on `pool`; returns the number of partitions it read.
async fn bare_round_trip(pool: &Pool, addr: &str) -> usize {
    let mut metadata = MetadataRequest::default();
    metadata.topics = None;
    let metadata = pool.request(addr, 12, &metadata).await.expect("Metadata");
    let mut request = ListOffsetsRequest::default();
    request.replica_id = (-1).into();
    request.topics = metadata
        .topics
        .iter()
        .filter_map(|t| {
            let mut lt = ListOffsetsTopic::default();
            lt.name = TopicName(t.name.clone()?.0);
            lt.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut lp = ListOffsetsPartition::default();
                    lp.partition_index = p.partition_index;
                    lp.current_leader_epoch = -1;
                    lp.timestamp = -1;
                    lp
                })
                .collect();
            Some(lt)
        })
        .collect();
    let answer = pool.request(addr, 8, &request).await.expect("ListOffsets");
    answer
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.error_code == 0)
        .count()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One scrape's figures, as the child prints them (`key=value` pairs after `SCRAPE`).
#[derive(Debug, Default, Clone)]
struct ScrapeFigures {
    wall_ms: f64,
    scrape_ms: f64,
    cpu_ms: u64,
    partitions_ok: usize,
    group_partitions: usize,
    record_times: usize,
    lag_sum: i64,
    lag_unknown: usize,
    beyond_end: usize,
    group_errors: usize,
    first_group_error: String,
    samples: usize,
}

/// The child: `--scrape-child BOOTSTRAP SCRAPES`. Each scrape is what the watcher does per
/// tick: scrape, analyse, make the samples.
fn scrape_child(bootstrap: &str, scrapes: usize) {
    let pid = "self";
    let text = format!("[kafka.bench]\nbootstrap = \"{bootstrap}\"\nrequest_timeout = \"30s\"\n");
    let mut config = pipescope::config::parse("bench", &text, []).expect("bench config");
    let cluster = config.kafka.remove("bench").expect("bench cluster");
    let scraper = pipescope::kafka::scraper("bench", &cluster).expect("scraper");
    let mut analyzer = KafkaAnalyzer::new(pipescope::kafka::analyzer_config(&cluster));
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut previous: Option<pipescope::kafka::ClusterState> = None;
    for i in 0..scrapes {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        let cpu0 = cpu_ms(pid);
        let started = Instant::now();
        // The third scrape remembers nothing (warm connections): every lagging record is
        // fetched and every config read again, as when every lagging commit has moved.
        let remembered = if i == 2 { None } else { previous.as_ref() };
        let mut state = runtime.block_on(scraper.scrape(&SystemClock, remembered));
        let scrape_ms = started.elapsed().as_secs_f64() * 1000.0;
        if let Some(snapshot) = state.offsets_snapshot() {
            state.view = Some(Arc::new(analyzer.ingest(&snapshot)));
        }
        // Every partition's samples (`partition_series = "all"`): what the figures recorded in
        // BENCHMARKS.md were measured with.
        let every = pipescope_core::series_budget::PartitionFilter::every();
        let (samples, _) = pipescope::kafka::samples(&state, &every);
        let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
        let cpu = cpu_ms(pid) - cpu0;
        let mut f = ScrapeFigures {
            wall_ms,
            scrape_ms,
            cpu_ms: cpu,
            samples: samples.len(),
            ..Default::default()
        };
        f.partitions_ok = state
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.latest.is_ok() && p.earliest.is_ok())
            .count();
        for g in &state.groups {
            if let Ok(offsets) = &g.offsets {
                f.group_partitions += offsets.len();
                f.record_times += offsets
                    .iter()
                    .filter(|c| c.record_time_ms.is_some())
                    .count();
            }
            if let Err(e) = &g.description {
                f.group_errors += 1;
                if f.first_group_error.is_empty() {
                    f.first_group_error = format!("{}: {e}", g.name);
                }
            }
        }
        if let Some(view) = &state.view {
            for g in &view.groups {
                f.lag_sum += g.lag_offsets;
                f.lag_unknown += g.partitions_lag_unknown;
                f.beyond_end += g.partitions_beyond_end;
            }
        }
        if let Some(e) = &state.error {
            println!("ERROR {e}");
        }
        let stages: Vec<String> = state
            .stages
            .iter()
            .map(|s| format!("{} {:.1}+{:.1}", s.name, s.start_ms, s.duration_ms))
            .collect();
        println!(
            "stages (ms from the start + duration): {}",
            stages.join(", ")
        );
        println!(
            "SCRAPE wall_ms={:.1} scrape_ms={:.1} cpu_ms={} partitions_ok={} group_partitions={} record_times={} lag_sum={} lag_unknown={} beyond_end={} group_errors={} samples={} first_group_error={}",
            f.wall_ms,
            f.scrape_ms,
            f.cpu_ms,
            f.partitions_ok,
            f.group_partitions,
            f.record_times,
            f.lag_sum,
            f.lag_unknown,
            f.beyond_end,
            f.group_errors,
            f.samples,
            f.first_group_error.replace(' ', "\u{a0}"),
        );
        previous = Some(state);
    }
    println!("PEAK_RSS_KB {}", peak_rss_kb(pid));
}

/// Runs the scrape child; returns each scrape's figures, the child's peak RSS (kB) and its
/// whole wall time.
fn run_scrape_child(bootstrap: &str, scrapes: usize) -> (Vec<ScrapeFigures>, u64, Duration) {
    let started = Instant::now();
    let own = std::env::current_exe().expect("own path");
    // A profiler may wrap the child: BENCH_CHILD_WRAPPER="heaptrack -o /tmp/scrape".
    let wrapper = std::env::var("BENCH_CHILD_WRAPPER").unwrap_or_default();
    let mut command: Vec<String> = wrapper.split_whitespace().map(String::from).collect();
    command.push(own.display().to_string());
    let out = Command::new(&command[0])
        .args(&command[1..])
        .args(["--scrape-child", bootstrap, &scrapes.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .expect("run the scrape child");
    let wall = started.elapsed();
    assert!(out.status.success(), "the scrape child failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut figures = Vec::new();
    let mut rss = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("SCRAPE ") {
            let mut f = ScrapeFigures::default();
            for pair in rest.split(' ') {
                let Some((k, v)) = pair.split_once('=') else {
                    continue;
                };
                match k {
                    "wall_ms" => f.wall_ms = v.parse().unwrap_or(0.0),
                    "scrape_ms" => f.scrape_ms = v.parse().unwrap_or(0.0),
                    "cpu_ms" => f.cpu_ms = v.parse().unwrap_or(0),
                    "partitions_ok" => f.partitions_ok = v.parse().unwrap_or(0),
                    "group_partitions" => f.group_partitions = v.parse().unwrap_or(0),
                    "record_times" => f.record_times = v.parse().unwrap_or(0),
                    "lag_sum" => f.lag_sum = v.parse().unwrap_or(0),
                    "lag_unknown" => f.lag_unknown = v.parse().unwrap_or(0),
                    "beyond_end" => f.beyond_end = v.parse().unwrap_or(0),
                    "group_errors" => f.group_errors = v.parse().unwrap_or(0),
                    "samples" => f.samples = v.parse().unwrap_or(0),
                    "first_group_error" => f.first_group_error = v.replace('\u{a0}', " "),
                    _ => {}
                }
            }
            figures.push(f);
        } else if let Some(v) = line.strip_prefix("PEAK_RSS_KB ") {
            rss = v.trim().parse().unwrap_or(0);
        } else {
            println!("  child: {line}");
        }
    }
    (figures, rss, wall)
}

fn klag_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    let found = dirs
        .iter()
        .map(|d| d.join("klag-exporter"))
        .find(|p| p.is_file())?;
    let version = Command::new(&found).arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    if !version.contains(KLAG_VERSION) {
        println!(
            "klag-exporter at {} is {}, not {KLAG_VERSION}: run {KLAG_INSTALL}",
            found.display(),
            version.trim()
        );
        return None;
    }
    Some(found)
}

/// What klag-exporter's first collection gave.
#[derive(Debug, Default)]
struct KlagFigures {
    /// From its start to a `/metrics` holding the collection.
    to_metrics: Duration,
    /// Its own `kafka_lag_exporter_scrape_duration_seconds`.
    collection: Option<Duration>,
    cpu_ms: u64,
    peak_rss_kb: u64,
    partitions: usize,
    group_partitions: usize,
    lag_sum: f64,
    /// `kafka_consumergroup_group_lag` by group, for the contrast.
    lags: Vec<(String, f64)>,
    failure: Option<String>,
}

fn metric_value(line: &str) -> Option<f64> {
    line.rsplit(' ').next()?.parse().ok()
}

fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

/// klag-exporter's own collection time: a line of its /metrics, with or without labels.
fn is_klag_scrape_duration(line: &str) -> bool {
    line.strip_prefix("kafka_lag_exporter_scrape_duration_seconds")
        .is_some_and(|rest| rest.starts_with(['{', ' ']))
}

fn klag(binary: &Path, bootstrap: &str) -> KlagFigures {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let sampling = std::env::var("BENCH_KLAG_SAMPLING").unwrap_or_else(|_| "true".into());
    let config = format!(
        r#"[exporter]
poll_interval = "600s"
http_port = {port}
http_host = "127.0.0.1"
granularity = "partition"

[exporter.timestamp_sampling]
enabled = {sampling}

[[clusters]]
name = "bench"
bootstrap_servers = "{bootstrap}"
group_whitelist = [".*"]
group_blacklist = []
topic_whitelist = [".*"]
topic_blacklist = ["^__.*"]
"#
    );
    let config_path = dir.path().join("klag.toml");
    std::fs::write(&config_path, config).expect("write klag config");
    let log_path = dir.path().join("klag.log");
    let log = std::fs::File::create(&log_path).expect("klag log");
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(&config_path)
        .env("NO_COLOR", "1")
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("start klag-exporter");
    let pid = child.id().to_string();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut figures = KlagFigures::default();
    let body = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains("Collection failed") || l.contains("Collection timed out"))
        {
            figures.failure = Some(line.to_string());
            break None;
        }
        if started.elapsed() > KLAG_TIMEOUT {
            // Its last words say where it was stuck.
            let last: Vec<&str> = log.lines().rev().take(6).collect();
            figures.failure = Some(format!(
                "no complete /metrics within {KLAG_TIMEOUT:?}; its log ends: {}",
                last.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
            break None;
        }
        if let Ok(mut r) = ureq::get(&url).call()
            && let Ok(body) = r.body_mut().read_to_string()
            && body.lines().any(|l| {
                // Served as 0 until its first collection has completed.
                is_klag_scrape_duration(l) && metric_value(l).is_some_and(|v| v > 0.0)
            })
        {
            break Some(body);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    figures.to_metrics = started.elapsed();
    figures.cpu_ms = cpu_ms(&pid);
    figures.peak_rss_kb = peak_rss_kb(&pid);
    let _ = child.kill();
    let _ = child.wait();
    for line in body.as_deref().unwrap_or("").lines() {
        if is_klag_scrape_duration(line) {
            figures.collection = metric_value(line).map(Duration::from_secs_f64);
        } else if line.starts_with("kafka_partition_latest_offset{") {
            figures.partitions += 1;
        } else if line.starts_with("kafka_consumergroup_group_lag{") {
            figures.group_partitions += 1;
            let v = metric_value(line).unwrap_or(f64::NAN);
            figures.lag_sum += v;
            figures
                .lags
                .push((label(line, "group").unwrap_or("").to_string(), v));
        }
    }
    figures
}

fn engine_name(storage: TansuStorage) -> &'static str {
    match storage {
        TansuStorage::Sqlite => "sqlite",
        TansuStorage::Memory => "memory",
    }
}

fn scrape_speed(
    storage: TansuStorage,
    records: i64,
    topics: usize,
    groups: usize,
    klag_bin: Option<&Path>,
) {
    println!(
        "== speed: tansu ({} engine), {topics} topics × {PARTITIONS} partitions, {groups} groups",
        engine_name(storage)
    );
    let tansu = Tansu::start_with(TansuOptions {
        storage,
        ..Default::default()
    });
    let addr = tansu.bootstrap();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let t = Instant::now();
    let expected = runtime.block_on(set_up(&addr, topics, groups, records));
    println!("  set-up total: {:.1?}", t.elapsed());

    // (a) the floor: bare Metadata + ListOffsets, cold (new connection) and warm.
    let (cold, warm) = runtime.block_on(async {
        let pool = pool();
        let t = Instant::now();
        let read = bare_round_trip(&pool, &addr).await;
        let cold = t.elapsed();
        assert_eq!(
            read, expected.partitions,
            "bare ListOffsets read every partition"
        );
        let mut warm = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            bare_round_trip(&pool, &addr).await;
            warm.push(t.elapsed());
        }
        (cold, median(warm))
    });
    println!("bare Metadata + ListOffsets: cold {cold:.1?}, warm (median of 5) {warm:.1?}");

    // pipescope: three scrapes in a child process. 1: new connections, nothing remembered;
    // 2: the steady state (rates; commits that stayed put are not fetched again, configs kept);
    // 3: warm connections, nothing remembered (every commit as if it had moved).
    let (figures, rss_kb, child_wall) = run_scrape_child(&addr, 3);
    for (i, f) in figures.iter().enumerate() {
        println!(
            "pipescope scrape {}: {:.1} ms wall ({:.1} ms scrape + analysis and samples), {} ms CPU; {} partitions with offsets, {} group partitions, {} record times, lag sum {}, {} samples, {} groups without description{}",
            i + 1,
            f.wall_ms,
            f.scrape_ms,
            f.cpu_ms,
            f.partitions_ok,
            f.group_partitions,
            f.record_times,
            f.lag_sum,
            f.samples,
            f.group_errors,
            if f.first_group_error.is_empty() {
                String::new()
            } else {
                format!(" (first: {})", f.first_group_error)
            }
        );
    }
    let last = figures.last().cloned().unwrap_or_default();
    let complete = last.partitions_ok == expected.partitions
        && last.group_partitions == expected.group_partitions
        && last.record_times == expected.lagging
        && last.lag_sum == expected.lag_sum;
    println!(
        "pipescope complete and exact: {complete} (expected {} partitions, {} group partitions, {} record times, lag sum {})",
        expected.partitions, expected.group_partitions, expected.lagging, expected.lag_sum
    );
    println!(
        "pipescope child process: {child_wall:.1?} from start to exit (3 scrapes + 0.5 s pauses), peak RSS {:.1} MB",
        rss_kb as f64 / 1024.0
    );
    let scrape = |i: usize| figures.get(i).map(|f| f.wall_ms).unwrap_or(0.0);
    let warm_ms = warm.as_secs_f64() * 1000.0;
    println!(
        "ratio full scrape / bare round trip (target <= 3x): cold {:.2}x (scrape 1 / cold bare), steady {:.2}x (scrape 2 / warm bare), nothing remembered {:.2}x (scrape 3 / warm bare)",
        scrape(0) / (cold.as_secs_f64() * 1000.0),
        scrape(1) / warm_ms,
        scrape(2) / warm_ms,
    );
    println!(
        "peak RSS: {:.1} MB (target <= 60 MB)",
        rss_kb as f64 / 1024.0
    );

    // (b) klag-exporter on the same cluster.
    let Some(binary) = klag_bin else {
        println!("klag-exporter: NOT MEASURED (not installed: run {KLAG_INSTALL})");
        return;
    };
    let k = klag(binary, &addr);
    match &k.failure {
        Some(why) => println!("klag-exporter: collection did not complete: {why}"),
        None => {
            let collection = k.collection.unwrap_or_default();
            println!(
                "klag-exporter {KLAG_VERSION}: collection {collection:.1?} (its own scrape_duration), {:.1?} from start to a complete /metrics, {} ms CPU, peak RSS {:.1} MB; {} partitions, {} group partitions, lag sum {}",
                k.to_metrics,
                k.cpu_ms,
                k.peak_rss_kb as f64 / 1024.0,
                k.partitions,
                k.group_partitions,
                k.lag_sum
            );
            let first = figures.first().map(|f| f.wall_ms).unwrap_or(0.0);
            println!(
                "ratio klag-exporter / pipescope: collection vs first scrape {:.2}x, start to complete numbers {:.2}x (target >= 2x)",
                collection.as_secs_f64() * 1000.0 / first,
                k.to_metrics.as_secs_f64()
                    / (child_wall.as_secs_f64() - 1.0 - (scrape(1) + scrape(2)) / 1000.0)
            );
        }
    }
}

/// One partition, 2,000 records in one batch, a group committed at 600 that joined the group
/// first (so the broker keeps a group record): true lag 1,400.
fn contrast(storage: TansuStorage, klag_bin: Option<&Path>) {
    let engine = engine_name(storage);
    println!("== correctness: tansu ({engine} engine), a group 1,400 records behind");
    let tansu = Tansu::start_with(TansuOptions {
        storage,
        ..Default::default()
    });
    let addr = tansu.bootstrap();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let pool = pool();
        let names = vec!["contrast".to_string()];
        create_topics(&pool, &addr, &names, 1).await;
        produce(&pool, &addr, &names, 1, 2_000, true).await;
        let member = join_group(&pool, &addr, "contrast-group", "contrast").await;
        let offsets = [("contrast".to_string(), 0, 600)];
        if let Err(code) = commit(&pool, &addr, "contrast-group", Some(member), &offsets).await {
            // A broker that wants SyncGroup first: commit without the member instead.
            println!("  commit as the member refused (error {code}); committing standalone");
            let result = commit(&pool, &addr, "contrast-group", None, &offsets).await;
            assert_eq!(result, Ok(()), "OffsetCommit of contrast-group");
        }
    });
    let (figures, _, _) = run_scrape_child(&addr, 2);
    let f = figures.last().cloned().unwrap_or_default();
    println!(
        "  pipescope: lag sum {} over {} group partitions, {} with lag unknown ({} committed beyond the end offset), {} groups without description{}",
        f.lag_sum,
        f.group_partitions,
        f.lag_unknown,
        f.beyond_end,
        f.group_errors,
        if f.first_group_error.is_empty() {
            String::new()
        } else {
            format!(" ({})", f.first_group_error)
        }
    );
    let Some(binary) = klag_bin else {
        println!("  klag-exporter: NOT MEASURED (not installed: run {KLAG_INSTALL})");
        return;
    };
    let k = klag(binary, &addr);
    match &k.failure {
        Some(why) => println!("  klag-exporter: collection failed: {why}"),
        None => println!("  klag-exporter: lag {:?}", k.lags),
    }
}

/// A JoinGroup as a consumer of `topic`: the broker then keeps a group record with a member.
/// Returns the generation and member id to commit with.
async fn join_group(pool: &Pool, addr: &str, group: &str, topic: &str) -> (i32, StrBytes) {
    let mut request = JoinGroupRequest::default();
    request.group_id = GroupId(s(group));
    request.session_timeout_ms = 30_000;
    request.rebalance_timeout_ms = 30_000;
    request.protocol_type = s("consumer");
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = s("range");
    // Consumer protocol subscription v0: version, [topic], user data (null).
    let mut metadata = Vec::new();
    metadata.extend_from_slice(&0i16.to_be_bytes());
    metadata.extend_from_slice(&1i32.to_be_bytes());
    metadata.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    metadata.extend_from_slice(topic.as_bytes());
    metadata.extend_from_slice(&(-1i32).to_be_bytes());
    protocol.metadata = bytes::Bytes::from(metadata);
    request.protocols = vec![protocol];
    // v4+ first answers MEMBER_ID_REQUIRED with the member id to join with.
    let mut answer = pool.request(addr, 5, &request).await.expect("JoinGroup");
    if answer.error_code == 79 {
        request.member_id = answer.member_id.clone();
        answer = pool.request(addr, 5, &request).await.expect("JoinGroup");
    }
    assert_eq!(answer.error_code, 0, "JoinGroup {group}");
    (answer.generation_id, answer.member_id)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--scrape-child") {
        scrape_child(&args[2], args[3].parse().expect("scrape count"));
        return;
    }
    if args.get(1).map(String::as_str) == Some("contrast") {
        let klag_bin = klag_binary();
        contrast(TansuStorage::Sqlite, klag_bin.as_deref());
        contrast(TansuStorage::Memory, klag_bin.as_deref());
        return;
    }
    let topics: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let groups: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(500);
    let klag_bin = klag_binary();
    // A third argument (memory or sqlite) measures that engine alone, without the correctness
    // contrast; a fourth, "noklag", leaves the peer out too: the quick loop while working on
    // the scrape.
    let only = args.get(3).map(|engine| match engine.as_str() {
        "memory" => TansuStorage::Memory,
        "sqlite" => TansuStorage::Sqlite,
        other => panic!("engine {other:?}: memory or sqlite"),
    });
    if let Some(storage) = only {
        let records = if storage == TansuStorage::Memory {
            1
        } else {
            10
        };
        let klag_bin = klag_bin.filter(|_| args.get(4).map(String::as_str) != Some("noklag"));
        scrape_speed(storage, records, topics, groups, klag_bin.as_deref());
        return;
    }
    if klag_bin.is_none() {
        println!(
            "klag-exporter {KLAG_VERSION} is not installed: run {KLAG_INSTALL} (its part is skipped)"
        );
    }
    let started = Instant::now();
    // The memory engine first: with one record per batch its end offsets are right, and its
    // DescribeGroups answers, so both tools complete there (the speed comparison). Then the
    // sqlite engine, the one whose numbers are right for any batch size, where DescribeGroups
    // fails for every group.
    scrape_speed(TansuStorage::Memory, 1, topics, groups, klag_bin.as_deref());
    scrape_speed(
        TansuStorage::Sqlite,
        10,
        topics,
        groups,
        klag_bin.as_deref(),
    );
    contrast(TansuStorage::Sqlite, klag_bin.as_deref());
    contrast(TansuStorage::Memory, klag_bin.as_deref());
    println!(
        "load average: {}whole run: {:.1?}",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default(),
        started.elapsed()
    );
}
