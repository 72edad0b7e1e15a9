//! `cargo run --release -p bench-store [-- SECONDS]`
//!
//! In one run, on the same machine and the same samples:
//! 1. sustained batched insert into pipescope's store (samples/s), and InfluxDB 1.6 ingesting
//!    the same samples over line protocol (samples/s) — the ratio is the headline;
//! 2. a 24-hour single-series range query (p50/p99 over 200 runs; target p99 < 20 ms);
//! 3. top-10 of a metric over 10,000 series for 1 hour (p50/p99 over 20 runs; target < 200 ms);
//! 4. disk bytes per stored sample, the store's split by table (raw, roll-ups, series) after
//!    its closed hours were compacted into chunks, and InfluxDB's (TSM files and WAL, after it
//!    has snapshotted and fully compacted them: the program runs itself again with
//!    `INFLUXDB_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION` and
//!    `INFLUXDB_DATA_COMPACT_FULL_WRITE_COLD_DURATION` of 1 s in its environment, which the
//!    influxd it starts reads); each with and without its series index (the store's series
//!    table; InfluxDB's series file and index directories).
//!
//! Record results and the command in BENCHMARKS.md. Run it on an otherwise idle machine.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipescope::store::Store;
use pipescope_core::line_protocol::sample_line;
use pipescope_core::tsdb::{AggregateFn, Retention};
use pipescope_core::{Labels, ManualClock, Sample};
use pipescope_testkit::Influxd;

const HOUR: u64 = 3_600_000;
const SERIES: u64 = 10_000;
const BATCH: u64 = 10_000;

/// Label sets of the `SERIES` series, made once.
fn series_labels() -> Vec<Labels> {
    (0..SERIES)
        .map(|s| {
            Labels::new([
                ("cluster", "bench".to_string()),
                ("topic", format!("topic-{}", s % 100)),
                ("partition", (s / 100).to_string()),
            ])
        })
        .collect()
}

/// Samples `start..start + len` of the run: series after series, one sample every 10 s per
/// series, the last step ending at `end`. Made on the fly so a long run needs little memory;
/// both the store and InfluxDB pay the same cost of making them.
fn chunk(labels: &[Labels], total: u64, end: u64, start: u64, len: u64) -> Vec<Sample> {
    let steps = total.div_ceil(SERIES);
    (start..(start + len).min(total))
        .map(|i| {
            let (step, s) = (i / SERIES, i % SERIES);
            Sample::new(
                "bench_lag_offsets",
                labels[s as usize].clone(),
                end - (steps - step) * 10_000,
                ((s * 7 + step) % 1000) as f64,
            )
        })
        .collect()
}

fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let p = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    (p(0.5), p(0.99))
}

/// InfluxDB settings (environment overrides of its configuration) for the run.
const INFLUX_ENV: [(&str, &str); 2] = [
    ("INFLUXDB_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION", "1s"),
    ("INFLUXDB_DATA_COMPACT_FULL_WRITE_COLD_DURATION", "1s"),
];

/// The bench's shard of InfluxDB on disk: bytes of its TSM files and of its WAL, read from
/// `SHOW STATS` (the tsm1_filestore and tsm1_wal statistics).
fn influx_disk(influxd: &Influxd) -> (u64, u64) {
    let answer: serde_json::Value =
        serde_json::from_str(&influxd.query("", "SHOW STATS")).expect("SHOW STATS is JSON");
    let (mut tsm, mut wal) = (0, 0);
    for series in answer["results"][0]["series"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if series["tags"]["database"] != "bench" {
            continue;
        }
        let columns = series["columns"].as_array().cloned().unwrap_or_default();
        let value = |name: &str| {
            columns
                .iter()
                .position(|c| c == name)
                .and_then(|i| series["values"][0][i].as_u64())
                .unwrap_or(0)
        };
        match series["name"].as_str() {
            Some("tsm1_filestore") => tsm += value("diskBytes"),
            Some("tsm1_wal") => {
                wal += value("currentSegmentDiskBytes") + value("oldSegmentsDiskBytes")
            }
            _ => {}
        }
    }
    (tsm, wal)
}

/// Bytes of InfluxDB's series index for database `db`: the series file (`<db>/_series`) and
/// the shards' `index` directories (TSI; the default in-memory index has none), as file lengths
/// and as blocks allocated (the series file's segments are preallocated, partly sparse).
fn influx_index_bytes(data_dir: &std::path::Path, db: &str) -> (u64, u64) {
    fn walk(path: &std::path::Path, counted: bool, total: &mut (u64, u64)) {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let name = entry.file_name();
            let counted = counted || name == "_series" || name == "index";
            if meta.is_dir() {
                walk(&entry.path(), counted, total);
            } else if counted {
                use std::os::unix::fs::MetadataExt;
                total.0 += meta.len();
                total.1 += meta.blocks() * 512;
            }
        }
    }
    let mut total = (0, 0);
    walk(&data_dir.join(db), false, &mut total);
    total
}

/// Bytes of each table of the store's database (SQLite's dbstat), grouped.
fn store_tables(dir: &std::path::Path) -> Vec<(String, u64)> {
    let conn = rusqlite::Connection::open(dir.join(pipescope::store::DB_FILE)).expect("open");
    let mut stmt = conn
        .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY name")
        .expect("dbstat");
    stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })
    .expect("dbstat rows")
    .map(|r| r.expect("row"))
    .collect()
}

fn main() {
    if INFLUX_ENV
        .iter()
        .any(|(k, v)| std::env::var(k).ok().as_deref() != Some(v))
    {
        // Set before any thread starts: run this program again with them.
        let status = Command::new(std::env::current_exe().expect("own path"))
            .args(std::env::args().skip(1))
            .envs(INFLUX_ENV)
            .status()
            .expect("run the bench again with the InfluxDB settings");
        std::process::exit(status.code().unwrap_or(1));
    }
    let total: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000_000);
    let now = 1_000_000 * HOUR;
    let clock = ManualClock::at(now);
    let labels = series_labels();
    let chunks = || (0..total).step_by(BATCH as usize);
    println!("{total} samples over {SERIES} series, batches of {BATCH}");

    // 1a. pipescope's store
    let dir = tempfile::tempdir().expect("temp dir");
    // Raw kept two days: after the clock moves on to compact, the 24 h query still reads raw.
    let retention = Retention {
        raw_ms: 48 * HOUR,
        ..Retention::default()
    };
    let (store, writer) =
        Store::open(dir.path(), retention, Arc::new(clock.clone()), 64).expect("open store");
    let started = Instant::now();
    let mut written = 0u64;
    for start in chunks() {
        let batch = Arc::new(chunk(&labels, total, now, start, BATCH));
        written += batch.len() as u64;
        // The queue is bounded: wait for room rather than drop samples in a benchmark.
        while !writer.submit(batch.clone()) {
            writer.flush().expect("flush");
        }
    }
    writer.flush().expect("flush");
    let store_rate = written as f64 / started.elapsed().as_secs_f64();
    println!(
        "store: {written} samples in {:.1?} = {store_rate:.0} samples/s",
        started.elapsed()
    );

    // 1b. InfluxDB 1.6, same samples, line protocol in batches of the same size
    let influxd = Influxd::start();
    influxd.query("", "CREATE DATABASE bench");
    let agent = ureq::agent();
    let started = Instant::now();
    let mut sent = 0u64;
    for start in chunks() {
        let batch = chunk(&labels, total, now, start, BATCH);
        let mut body = String::with_capacity(batch.len() * 80);
        for s in &batch {
            sample_line(&mut body, s).expect("finite values");
        }
        agent
            .post(format!("{}/write", influxd.url()))
            .query("db", "bench")
            .query("precision", "ms")
            .send(body)
            .expect("influxd write");
        sent += batch.len() as u64;
    }
    let influx_rate = sent as f64 / started.elapsed().as_secs_f64();
    println!(
        "influxd 1.6: {sent} samples in {:.1?} = {influx_rate:.0} samples/s",
        started.elapsed()
    );
    println!(
        "ratio store / influxd: {:.2}x (target >= 1x)",
        store_rate / influx_rate
    );
    // InfluxDB snapshots its cache after 1 s without writes and fully compacts its files after
    // 1 s more: wait until its WAL is empty and its files stop changing (2 minutes at most), before the store's queries are timed.
    let waited = Instant::now();
    let mut last = influx_disk(&influxd);
    let mut stable_since = Instant::now();
    while waited.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_secs(1));
        let now = influx_disk(&influxd);
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if now.1 == 0 && stable_since.elapsed() >= Duration::from_secs(5) {
            break;
        }
    }
    let (tsm, wal) = last;
    let influx_wait = waited.elapsed();
    let (influx_index, influx_index_allocated) = influx_index_bytes(&influxd.data_dir(), "bench");

    // 2. 24-hour single-series query: write a day of one series at 10 s first.
    let day: Vec<Sample> = (0..8_640u64)
        .map(|i| {
            Sample::new(
                "bench_day",
                Labels::default(),
                now - 24 * HOUR + i * 10_000,
                i as f64,
            )
        })
        .collect();
    writer.submit(Arc::new(day));
    writer.flush().expect("flush");
    let head_bytes = store.size_bytes();
    // The hour is closed 10 minutes after it ends: the next prune compacts it into chunks.
    clock.set(now + 10 * 60_000);
    let started = Instant::now();
    writer.prune().expect("prune");
    let compaction = started.elapsed();
    let stored = written + 8_640;
    println!(
        "compaction of {stored} samples into chunks: {compaction:.1?}; ingest with it: {:.0} samples/s",
        written as f64 / (written as f64 / store_rate + compaction.as_secs_f64())
    );
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let r = store
            .range(
                "bench_day",
                &[],
                now - 24 * HOUR,
                now,
                10_000,
                AggregateFn::Avg,
            )
            .expect("range");
        times.push(t.elapsed());
        assert_eq!(r.series[0].1.len(), 8_640);
    }
    let (p50, p99) = percentiles(times);
    println!(
        "24 h single-series query (8,640 points): p50 {p50:.2?}, p99 {p99:.2?} (target p99 < 20 ms)"
    );

    // 3. top-10 over 10,000 series for the last hour
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let top = store
            .top(
                "bench_lag_offsets",
                &[],
                10,
                now - HOUR,
                now,
                AggregateFn::Max,
            )
            .expect("top");
        times.push(t.elapsed());
        assert_eq!(top.len(), 10);
    }
    let (p50, p99) = percentiles(times);
    println!("top-10 of 10,000 series over 1 h: p50 {p50:.2?}, p99 {p99:.2?} (target < 200 ms)");

    // 4. disk use
    let bytes = store.size_bytes();
    let per = |b: u64| b as f64 / stored as f64;
    println!(
        "store disk before compaction (rows, WAL): {head_bytes} bytes = {:.1} bytes/sample",
        per(head_bytes)
    );
    println!(
        "store disk: {bytes} bytes for {stored} samples = {:.2} bytes/sample (everything: raw, roll-ups, series, free pages, WAL)",
        per(bytes)
    );
    let tables = store_tables(dir.path());
    let group = |names: &[&str]| -> u64 {
        tables
            .iter()
            .filter(|(n, _)| names.iter().any(|p| n.starts_with(p)))
            .map(|(_, b)| b)
            .sum()
    };
    let raw = group(&["raw", "sqlite_autoindex_raw"]);
    let rollups = group(&["m1", "h1", "sqlite_autoindex_m1", "sqlite_autoindex_h1"]);
    let series = group(&["series", "sqlite_autoindex_series"]);
    println!(
        "  raw (head + chunks) {:.2}, roll-ups (1m + 1h) {:.2}, series {:.2} bytes/sample",
        per(raw),
        per(rollups),
        per(series)
    );
    for (name, b) in &tables {
        println!("    {name}: {b} bytes");
    }
    writer.close();
    let influx_per = (tsm + wal) as f64 / sent as f64;
    println!(
        "influxd 1.6 disk: TSM {tsm} + WAL {wal} bytes for {sent} samples = {influx_per:.2} bytes/sample (settled after {influx_wait:.0?}; its series file not counted)"
    );
    println!(
        "influxd 1.6 series index: _series + index dirs {influx_index} bytes long, {influx_index_allocated} allocated = {:.2} bytes/sample allocated",
        influx_index_allocated as f64 / sent as f64
    );
    // Like with like, both ways: each store with its series index, and each without it. The
    // series file's segments are preallocated (sparse): what they take on disk is what counts.
    let influx_with = (tsm + wal + influx_index_allocated) as f64 / sent as f64;
    let store_without = per(bytes - series);
    println!(
        "with the series index:    store {:.2} vs influxd {influx_with:.2} bytes/sample = {:.2}x",
        per(bytes),
        per(bytes) / influx_with
    );
    println!(
        "without the series index: store {store_without:.2} vs influxd {influx_per:.2} bytes/sample = {:.2}x",
        store_without / influx_per
    );
    println!(
        "ratio store (everything) / influxd (TSM + WAL) bytes per sample: {:.2}x (target <= 1x)",
        per(bytes) / influx_per
    );
}
