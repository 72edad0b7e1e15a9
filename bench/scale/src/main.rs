//! `bench/scale/run [grid] [noklag]`, or `bench/scale/run PARTITIONS GROUPS [noklag]`
//!
//! pipescope's own cost at internet scale. Per size, the testkit's synthetic cluster (20
//! brokers on loopback ports, topics of 5 partitions, groups of 20 committed partitions and 2
//! members, answered from memory) is started in this process, and a child process runs what
//! the watcher does per tick (scrape, analyse, make the samples) several times: the first
//! scrape cold, the rest the steady state (offsets and active groups' commits move between
//! scrapes, so every moving lagging commit's record is fetched again). Reported per size: the
//! steady-state scrape's wall and CPU time (median), the child's peak RSS (VmHWM) and peak heap
//! (its allocations, counted), and growth against the smallest size. Per scrape the child also
//! prints its heap before the scrape and live and peak after each phase (scrape, analysis,
//! samples): where the peak comes from. klag-exporter 0.1.29 (bench/kafka_scrape/install-klag)
//! collects the same cluster where installed, with a timeout.
//!
//! `BENCH_COMMITTED_OFFSETS=offsets_topic` (or `offset_fetch`, `auto`) sets the scrape's
//! `committed_offsets` and gives the cluster `__consumer_offsets` (docs/scale.md).
//! `BENCH_PARTITION_SERIES=all` (or `top`, the default, or `none`) sets `partition_series`:
//! the samples are made as the watcher makes them, per-partition series only for the
//! partitions the series stage selects.
//!
//! `BENCH_SCRAPES=N` (default 5) runs N scrapes per size. A watcher's analyzer reaches its
//! steady state only after 15 minutes of scrapes (every window and end-offset history full): with
//! `BENCH_TIME_STEP_MS=S` the child moves each scrape's times (the snapshot's, so the
//! analyzer's "now", and the scrape's own) forward by `i × S` for the `i`-th scrape, as if the
//! scrapes were `S` ms apart on top of their real spacing; the cluster's offsets move one step
//! per scrape as before. `BENCH_SCRAPES=100 BENCH_TIME_STEP_MS=10000` is 16.5 minutes at a 10 s
//! interval, past full history.
//!
//! Sizes: the diagonal (10k/1k, 30k/3k, 100k/10k partitions/groups) and the corners (10k/10k,
//! 100k/1k); `grid` runs all nine.

use std::path::{Path, PathBuf};

/// The allocator the pipescope binary uses (mimalloc), so the child measures what the monitor
/// does; its allocations counted.
#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipescope_core::SystemClock;
use pipescope_core::kafka::KafkaAnalyzer;
use pipescope_testkit::{SyntheticCluster, free_port};

const BROKERS: u32 = 20;
const PARTITIONS_PER_TOPIC: u32 = 5;
const PARTITIONS_PER_GROUP: u32 = 20;
const MEMBERS_PER_GROUP: u32 = 2;
/// Scrapes per size unless `BENCH_SCRAPES` says: one cold, the rest the steady state.
const SCRAPES: usize = 5;
/// Between scrapes, as a watcher's interval would leave.
const PAUSE: Duration = Duration::from_millis(300);
const KLAG_VERSION: &str = "0.1.29";
const KLAG_TIMEOUT: Duration = Duration::from_secs(300);

/// CPU time (user + system) of a process (`self` or a pid) from /proc, in milliseconds.
fn cpu_ms(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name (which may hold spaces): utime is field 14, stime 15.
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The child: `--scrape-child BOOTSTRAP SCRAPES`; prints one `SCRAPE` line per scrape and
/// the peak RSS.
fn scrape_child(bootstrap: &str, scrapes: usize) {
    let mode = committed_offsets_mode().unwrap_or_else(|| "offset_fetch".to_string());
    let partition_series =
        std::env::var("BENCH_PARTITION_SERIES").unwrap_or_else(|_| "top".to_string());
    let text = format!(
        "[kafka.bench]\nbootstrap = \"{bootstrap}\"\nrequest_timeout = \"60s\"\ncommitted_offsets = \"{mode}\"\npartition_series = \"{partition_series}\"\n"
    );
    let mut config = pipescope::config::parse("bench", &text, []).expect("bench config");
    let series = pipescope::series::shared_stage(pipescope::series::budget_from(&config));
    let cluster = config.kafka.remove("bench").expect("bench cluster");
    let scraper = pipescope::kafka::scraper("bench", &cluster).expect("scraper");
    let mut analyzer = KafkaAnalyzer::new(pipescope::kafka::analyzer_config(&cluster));
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut previous: Option<pipescope::kafka::ClusterState> = None;
    let mut peak_heap = 0;
    for i in 0..scrapes {
        if i > 0 {
            std::thread::sleep(PAUSE);
        }
        let cpu0 = cpu_ms("self");
        let started = Instant::now();
        heap::phase_start();
        let mut state = runtime.block_on(scraper.scrape(&SystemClock, previous.as_ref()));
        let after_scrape = heap::phase_end(&mut peak_heap);
        let scrape_ms = started.elapsed().as_secs_f64() * 1000.0;
        shift_times(&mut state, i as u64 * time_step_ms());
        pipescope::kafka::analyse(&mut analyzer, &mut state, previous.as_ref());
        let after_analysis = heap::phase_end(&mut peak_heap);
        // As the watcher does: the new state replaces the previous one before the samples.
        previous = Some(state);
        let state = previous.as_ref().expect("just kept");
        let samples = pipescope::kafka::bounded_samples(state, &series);
        let after_samples = heap::phase_end(&mut peak_heap);
        let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
        let cpu = cpu_ms("self") - cpu0;
        let partitions_ok = state
            .topics
            .iter()
            .filter(|t| !t.internal)
            .flat_map(|t| &t.partitions)
            .filter(|p| p.latest.is_ok() && p.earliest.is_ok())
            .count();
        let (mut group_partitions, mut record_times, mut described) = (0, 0, 0);
        for g in &state.groups {
            if let Ok(offsets) = &g.offsets {
                group_partitions += offsets.len();
                record_times += offsets
                    .iter()
                    .filter(|c| c.record_time_ms.is_some())
                    .count();
            }
            described += usize::from(g.description.is_ok());
        }
        let lag_sum: i64 = state
            .view
            .iter()
            .flat_map(|v| &v.groups)
            .map(|g| g.lag_offsets)
            .sum();
        if let Some(e) = &state.error {
            println!("ERROR {e}");
        }
        let stages: Vec<String> = state
            .stages
            .iter()
            .map(|s| format!("{} {:.0}+{:.0}", s.name, s.start_ms, s.duration_ms))
            .collect();
        println!(
            "stages (ms from the start + duration): {}; commits from __consumer_offsets: {:?}",
            stages.join(", "),
            state.committed_offsets
        );
        println!(
            "SCRAPE wall_ms={wall_ms:.1} scrape_ms={scrape_ms:.1} cpu_ms={cpu} partitions_ok={partitions_ok} groups={} described={described} group_partitions={group_partitions} record_times={record_times} lag_sum={lag_sum} samples={}",
            state.groups.len(),
            samples.len(),
        );
        println!(
            "HEAP live before {:.1} MB; scrape {after_scrape}; analysis {after_analysis}; samples {after_samples}",
            heap::mb(heap::before()),
        );
        drop(samples);
    }
    println!("PEAK_RSS_KB {}", peak_rss_kb("self"));
    println!("PEAK_HEAP_KB {}", peak_heap / 1024);
}

/// One scrape's figures, as the child prints them.
#[derive(Debug, Default, Clone)]
struct ScrapeFigures {
    wall_ms: f64,
    scrape_ms: f64,
    cpu_ms: f64,
    partitions_ok: u64,
    groups: u64,
    described: u64,
    group_partitions: u64,
    record_times: u64,
    samples: u64,
}

/// The child's figures per scrape, its peak RSS and its peak heap (kB).
fn run_scrape_child(bootstrap: &str) -> (Vec<ScrapeFigures>, u64, u64) {
    let own = std::env::current_exe().expect("own path");
    // A profiler may wrap the child: BENCH_CHILD_WRAPPER="perf record -g -o /tmp/scale.perf".
    let wrapper = std::env::var("BENCH_CHILD_WRAPPER").unwrap_or_default();
    let mut command: Vec<String> = wrapper.split_whitespace().map(String::from).collect();
    command.push(own.display().to_string());
    // With the allocator options `pipescope run` sets itself (unless the environment does).
    let options = pipescope::allocator::missing_options(|name| std::env::var_os(name));
    let out = Command::new(&command[0])
        .args(&command[1..])
        .args(["--scrape-child", bootstrap, &scrapes().to_string()])
        .envs(options)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the scrape child");
    assert!(out.status.success(), "the scrape child failed");
    let mut figures = Vec::new();
    let (mut rss, mut heap) = (0, 0);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(rest) = line.strip_prefix("SCRAPE ") {
            let mut f = ScrapeFigures::default();
            for (k, v) in rest.split(' ').filter_map(|pair| pair.split_once('=')) {
                let n = v.parse::<f64>().unwrap_or(0.0);
                match k {
                    "wall_ms" => f.wall_ms = n,
                    "scrape_ms" => f.scrape_ms = n,
                    "cpu_ms" => f.cpu_ms = n,
                    "partitions_ok" => f.partitions_ok = n as u64,
                    "groups" => f.groups = n as u64,
                    "described" => f.described = n as u64,
                    "group_partitions" => f.group_partitions = n as u64,
                    "record_times" => f.record_times = n as u64,
                    "samples" => f.samples = n as u64,
                    _ => {}
                }
            }
            figures.push(f);
        } else if let Some(v) = line.strip_prefix("PEAK_RSS_KB ") {
            rss = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("PEAK_HEAP_KB ") {
            heap = v.trim().parse().unwrap_or(0);
        } else {
            println!("  child: {line}");
        }
    }
    (figures, rss, heap)
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
    String::from_utf8_lossy(&version.stdout)
        .contains(KLAG_VERSION)
        .then_some(found)
}

/// klag-exporter's first collection of the cluster: its own collection time, CPU time and
/// peak RSS, or why it did not complete.
fn klag(binary: &Path, bootstrap: &str) -> Result<(Duration, u64, u64), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    // Its per-call Kafka timeout (default 30 s; its README's knob for large clusters) set to the
    // bench's own: at 100k partitions each of its two batched ListOffsets spends over a minute
    // of CPU in librdkafka, which matches every answered partition against the whole request
    // list (rd_kafka_ListOffsets_response_merge), whatever the broker.
    let kafka_timeout = KLAG_TIMEOUT.as_secs();
    let config = format!(
        r#"[exporter]
poll_interval = "600s"
http_port = {port}
http_host = "127.0.0.1"
granularity = "partition"

[exporter.performance]
kafka_timeout = "{kafka_timeout}s"

[exporter.timestamp_sampling]
enabled = true

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
    let result = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains("Collection failed") || l.contains("Collection timed out"))
        {
            break Err(line.to_string());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let last = log.lines().last().unwrap_or("(no log)");
            break Err(format!(
                "klag-exporter exited ({status}) before its first collection; its last log line: {last}"
            ));
        }
        if started.elapsed() > KLAG_TIMEOUT {
            break Err(format!("no complete /metrics within {KLAG_TIMEOUT:?}"));
        }
        // Its own collection time, served as 0 until the first collection completed. Read line
        // by line: at partition granularity its page outgrows ureq's 10 MB limit of a whole
        // body (16.5 MB at 10k partitions), and a refused read would leave klag-exporter
        // rendering it again every poll until the timeout.
        let collection = ureq::get(&url)
            .call()
            .ok()
            .and_then(|mut r| {
                std::io::BufRead::lines(std::io::BufReader::new(r.body_mut().as_reader()))
                    .map_while(Result::ok)
                    .filter(|l| l.starts_with("kafka_lag_exporter_scrape_duration_seconds"))
                    .find_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            })
            .filter(|v| *v > 0.0);
        if let Some(seconds) = collection {
            break Ok(Duration::from_secs_f64(seconds));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (cpu, rss) = (cpu_ms(&pid), peak_rss_kb(&pid));
    let _ = child.kill();
    let _ = child.wait();
    result.map(|d| (d, cpu, rss))
}

/// One size's figures.
struct Row {
    partitions: u32,
    groups: u32,
    cold_wall_ms: f64,
    wall_ms: f64,
    scrape_ms: f64,
    cpu_ms: f64,
    rss_mb: f64,
    heap_mb: f64,
    klag: Option<Result<(Duration, u64, u64), String>>,
}

fn measure(
    runtime: &tokio::runtime::Runtime,
    partitions: u32,
    groups: u32,
    klag_bin: Option<&Path>,
) -> Row {
    let started = Instant::now();
    let cluster = runtime.block_on(
        SyntheticCluster::builder()
            .brokers(BROKERS)
            .topics(partitions / PARTITIONS_PER_TOPIC)
            .partitions_per_topic(PARTITIONS_PER_TOPIC)
            .groups(groups)
            .partitions_per_group(PARTITIONS_PER_GROUP)
            .members_per_group(MEMBERS_PER_GROUP)
            .offsets_topic(committed_offsets_mode().is_some())
            .start(),
    );
    println!(
        "\n== {partitions} partitions ({} topics), {groups} groups ({} group partitions), {BROKERS} brokers; cluster built in {:.1?}",
        partitions / PARTITIONS_PER_TOPIC,
        cluster.group_partitions(),
        started.elapsed()
    );
    let (figures, rss_kb, heap_kb) = run_scrape_child(&cluster.bootstrap());
    for (i, f) in figures.iter().enumerate() {
        println!(
            "  scrape {}: wall {:.0} ms (scrape {:.0}), CPU {:.0} ms; {} partitions with offsets, {} groups ({} described), {} group partitions, {} record times, {} samples",
            i + 1,
            f.wall_ms,
            f.scrape_ms,
            f.cpu_ms,
            f.partitions_ok,
            f.groups,
            f.described,
            f.group_partitions,
            f.record_times,
            f.samples
        );
    }
    let last = figures.last().cloned().unwrap_or_default();
    assert_eq!(
        last.partitions_ok,
        u64::from(partitions),
        "every partition has its offsets"
    );
    assert_eq!(last.groups, u64::from(groups), "every group is listed");
    assert_eq!(
        last.group_partitions,
        cluster.group_partitions(),
        "every commit is read"
    );
    let steady = &figures[1..];
    let row = Row {
        partitions,
        groups,
        cold_wall_ms: figures[0].wall_ms,
        wall_ms: median(steady.iter().map(|f| f.wall_ms).collect()),
        scrape_ms: median(steady.iter().map(|f| f.scrape_ms).collect()),
        cpu_ms: median(steady.iter().map(|f| f.cpu_ms).collect()),
        rss_mb: rss_kb as f64 / 1024.0,
        heap_mb: heap_kb as f64 / 1024.0,
        klag: klag_bin.map(|b| klag(b, &cluster.bootstrap())),
    };
    if let Some(k) = &row.klag {
        match k {
            Ok((d, cpu, rss)) => println!(
                "  klag-exporter {KLAG_VERSION}: collection {d:.1?}, CPU {cpu} ms, peak RSS {:.1} MB",
                *rss as f64 / 1024.0
            ),
            Err(e) => println!("  klag-exporter {KLAG_VERSION}: did not complete: {e}"),
        }
    }
    row
}

/// `BENCH_SCRAPES`, or [`SCRAPES`].
fn scrapes() -> usize {
    std::env::var("BENCH_SCRAPES")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n >= 2)
        .unwrap_or(SCRAPES)
}

/// `BENCH_TIME_STEP_MS`, or 0 (real time).
fn time_step_ms() -> u64 {
    std::env::var("BENCH_TIME_STEP_MS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Moves a scrape's times forward by `by_ms` (see the module doc's `BENCH_TIME_STEP_MS`).
fn shift_times(state: &mut pipescope::kafka::ClusterState, by_ms: u64) {
    state.scraped_at_ms += by_ms;
    state.data_time_ms += by_ms;
    if let Some(time_ms) = &mut state.offsets_time_ms {
        *time_ms += by_ms;
    }
}

/// `BENCH_COMMITTED_OFFSETS`, when set.
fn committed_offsets_mode() -> Option<String> {
    std::env::var("BENCH_COMMITTED_OFFSETS")
        .ok()
        .filter(|m| !m.is_empty())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--scrape-child") {
        scrape_child(&args[2], args[3].parse().expect("scrape count"));
        return;
    }
    let flag = |f: &str| args.iter().any(|a| a == f);
    let numbers: Vec<u32> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes: Vec<(u32, u32)> = if let [partitions, groups] = numbers[..] {
        vec![(partitions, groups)]
    } else if flag("grid") {
        [10_000, 30_000, 100_000]
            .into_iter()
            .flat_map(|p| [1_000, 3_000, 10_000].map(|g| (p, g)))
            .collect()
    } else {
        vec![
            (10_000, 1_000),
            (30_000, 3_000),
            (100_000, 10_000),
            (10_000, 10_000),
            (100_000, 1_000),
        ]
    };
    let klag_bin = if flag("noklag") { None } else { klag_binary() };
    if klag_bin.is_none() && !flag("noklag") {
        println!(
            "klag-exporter {KLAG_VERSION} is not installed: run bench/kafka_scrape/install-klag (its part is skipped)"
        );
    }
    println!(
        "load average at the start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let started = Instant::now();
    // The cluster's own work runs here, beside the child on the same cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rows: Vec<Row> = sizes
        .iter()
        .map(|(p, g)| measure(&runtime, *p, *g, klag_bin.as_deref()))
        .collect();
    let base = &rows[0];
    println!(
        "\n| partitions | groups | cold scrape wall | steady scrape wall (scrape alone) | steady CPU | peak RSS (heap) | CPU / base | size / base | klag-exporter collection | klag / pipescope wall |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        // Size as partitions + group partitions, the items a scrape reads.
        let items = |r: &Row| {
            f64::from(r.partitions) + f64::from(r.groups) * f64::from(PARTITIONS_PER_GROUP)
        };
        let (klag, ratio) = match &r.klag {
            None => ("not run".to_string(), "—".to_string()),
            Some(Ok((d, _, _))) => (
                format!("{:.2} s", d.as_secs_f64()),
                format!("{:.1}×", d.as_secs_f64() * 1000.0 / r.wall_ms),
            ),
            Some(Err(e)) => (format!("failed: {e}"), "—".to_string()),
        };
        println!(
            "| {} | {} | {:.0} ms | {:.0} ms ({:.0} ms) | {:.0} ms | {:.1} MB ({:.0} MB) | {:.2}× | {:.2}× | {klag} | {ratio} |",
            r.partitions,
            r.groups,
            r.cold_wall_ms,
            r.wall_ms,
            r.scrape_ms,
            r.cpu_ms,
            r.rss_mb,
            r.heap_mb,
            r.cpu_ms / base.cpu_ms.max(1.0),
            items(r) / items(base),
        );
    }
    println!(
        "load average at the end: {}; whole run {:.1?}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim(),
        started.elapsed()
    );
}

/// The child's heap: what is live, and its peak within a phase of a scrape (where the peak RSS
/// comes from). Counting costs two relaxed atomic operations per allocation.
mod heap {
    use std::alloc::{GlobalAlloc, Layout};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// mimalloc, the pipescope binary's allocator, with the live bytes counted.
    #[derive(Debug)]
    pub struct Counting;

    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);
    static BEFORE: AtomicUsize = AtomicUsize::new(0);

    fn grew(by: usize) {
        let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            grew(layout.size());
            // SAFETY: forwarded as is.
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            grew(layout.size());
            // SAFETY: forwarded as is.
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            // SAFETY: forwarded as is.
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
            // SAFETY: forwarded as is.
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }

    pub fn mb(bytes: usize) -> f64 {
        bytes as f64 / (1024.0 * 1024.0)
    }

    /// Starts the first phase of a scrape: the heap live now is its "before".
    pub fn phase_start() {
        let live = LIVE.load(Ordering::Relaxed);
        BEFORE.store(live, Ordering::Relaxed);
        PEAK.store(live, Ordering::Relaxed);
    }

    pub fn before() -> usize {
        BEFORE.load(Ordering::Relaxed)
    }

    /// Ends a phase and starts the next: "live L MB (peak P MB)" as of now. Raises `peak_heap`
    /// to the phase's peak.
    pub fn phase_end(peak_heap: &mut usize) -> String {
        let live = LIVE.load(Ordering::Relaxed);
        let peak = PEAK.swap(live, Ordering::Relaxed);
        *peak_heap = (*peak_heap).max(peak);
        format!("live {:.1} MB (peak {:.1} MB)", mb(live), mb(peak))
    }
}
