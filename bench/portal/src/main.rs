//! `cargo build --release --locked -p pipescope -p bench-portal && target/release/bench-portal`
//!
//! In one run, against a `pipescope demo` it starts (its binary next to this one, or
//! `--pipescope PATH`) on free ports:
//! 1. waits until the demo's Kafka cluster has been scraped with groups;
//! 2. `oha` at 500 requests/s for `--seconds` (default 20) on `/api/v1/kafka/clusters` (the
//!    overview's endpoint), then on `/api/v1/kafka/clusters/demo/groups`: p50, p99, success rate
//!    (target p99 < 50 ms). oha is installed with `cargo install oha --locked` when missing;
//! 3. the portal's first page load in Chromium (bench/portal/page-load.mjs, median of 5 cold
//!    loads), reported.
//!
//! With `--synthetic PARTITIONS,GROUPS` (e.g. `100000,10000`), instead of the demo: the testkit's
//! synthetic cluster of that size in this process (20 brokers, topics of 5 partitions, groups of
//! 20 partitions), and `pipescope run` watching it; then oha at 200 requests/s on the overview's
//! endpoint and the first pages of the topic and group lists sorted by rate and lag (target p99
//! < 50 ms), and 20 cold loads each of the portal's Groups and Topics pages in Chromium until
//! their table shows rows (bench/portal/list-load.mjs; target p95 < 1.5 s).
//!
//! With `--memory MINUTES` as well, the big-cluster run only watches the monitor's memory: its
//! VmRSS and VmHWM (/proc) and the store's size on disk every 30 s for that long, no requests.
//! `BENCH_MONITOR_CONFIG` adds lines to the watched cluster's table (e.g.
//! `partition_series = "none"`), to see what a setting costs.
//!
//! Prints the figures and the load average. Record them in BENCHMARKS.md.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RATE: u32 = 500;
/// The big cluster's rate (issue 19: 200 requests/s with the big cluster loaded).
const SYNTHETIC_RATE: u32 = 200;
const TARGET_P99_MS: f64 = 50.0;
const TARGET_PAGE_P95_MS: f64 = 1500.0;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `oha` on PATH or in ~/.cargo/bin; installed when missing.
fn oha() -> PathBuf {
    let cargo_bin = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin/oha"))
        .unwrap_or_default();
    for candidate in [PathBuf::from("oha"), cargo_bin.clone()] {
        if Command::new(&candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return candidate;
        }
    }
    eprintln!("bench-portal: oha is missing, installing it (cargo install oha --locked)");
    let status = Command::new("cargo")
        .args(["install", "oha", "--locked"])
        .status()
        .expect("cannot run cargo to install oha");
    assert!(status.success(), "cargo install oha --locked failed");
    cargo_bin
}

struct Demo {
    child: Child,
    _data: TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        // SIGTERM: the demo stops its parts and tansu cleanly.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_demo(bin: &Path, port: u16) -> Demo {
    let data = std::env::temp_dir().join(format!("bench-portal-{}", std::process::id()));
    let child = Command::new(bin)
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            &data.display().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}) — build it: cargo build --release --locked -p pipescope",
                bin.display()
            )
        });
    let mut demo = Demo {
        child,
        _data: TempDir(data),
    };
    // Echo the demo's banner (and drain its stdout so it never blocks).
    let stdout = demo.child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("  | {line}");
        }
    });
    demo
}

fn get_json(url: &str) -> Option<serde_json::Value> {
    let mut response = ureq::get(url).call().ok()?;
    let text = response.body_mut().read_to_string().ok()?;
    serde_json::from_str(&text).ok()
}

/// Waits until the demo's cluster has been scraped and lists its groups.
fn wait_ready(base: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let groups = get_json(&format!("{base}/api/v1/kafka/clusters/demo/groups"))
            .and_then(|v| v["items"].as_array().map(Vec::len))
            .unwrap_or(0);
        if groups > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the demo at {base} shows no Kafka groups after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    success_rate: f64,
    rps: f64,
}

/// `pipescope run` watching a synthetic cluster served from this process.
struct Watching {
    child: Child,
    data: TempDir,
    _cluster: pipescope_testkit::SyntheticCluster,
    _runtime: tokio::runtime::Runtime,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_watching(bin: &Path, port: u16, partitions: u32, groups: u32) -> Watching {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let cluster = runtime.block_on(
        pipescope_testkit::SyntheticCluster::builder()
            .brokers(20)
            .topics(partitions / 5)
            .partitions_per_topic(5)
            .groups(groups)
            .partitions_per_group(20)
            .members_per_group(2)
            .start(),
    );
    let data = std::env::temp_dir().join(format!("bench-portal-big-{}", std::process::id()));
    std::fs::create_dir_all(&data).expect("a temporary directory");
    let config = data.join("pipescope.toml");
    std::fs::write(
        &config,
        format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\n[store]\npath = \"{}\"\n[kafka.big]\nbootstrap = [\"{}\"]\nscrape_interval = \"10s\"\n{}\n",
            data.join("store").display(),
            cluster.bootstrap(),
            std::env::var("BENCH_MONITOR_CONFIG").unwrap_or_default(),
        ),
    )
    .expect("the config file");
    let child = Command::new(bin)
        .args(["run", "--config", &config.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}) — build it: cargo build --release --locked -p pipescope",
                bin.display()
            )
        });
    Watching {
        child,
        data: TempDir(data),
        _cluster: cluster,
        _runtime: runtime,
    }
}

/// Waits until the big cluster's groups are listed with their lag (a scrape analysed).
fn wait_analysed(base: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let url = format!("{base}/api/v1/kafka/clusters/big/groups?sort=lag&order=desc&limit=1");
    loop {
        let page = get_json(&url).unwrap_or_default();
        if page["items"][0]["lag_offsets"].is_number() {
            println!(
                "bench-portal: {} groups listed, the first analysed",
                page["total"]
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pipescope at {base} shows no analysed group after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// p50 and p95 of cold loads of a list page until its table has rows; false when over target.
fn list_loads(base: &str, page: &str, selector: &str) -> bool {
    let script = repo().join("bench/portal/list-load.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("{base}/#/{page}"))
        .arg(selector)
        .arg("20")
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let json: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            let p95 = json["p95_ms"].as_f64().unwrap_or(f64::NAN);
            println!(
                "{page:<8} page, 20 cold loads until its table shows rows ({} rows): p50 {:.0} ms, p95 {p95:.0} ms (target p95 < {TARGET_PAGE_P95_MS} ms: {}); load {}",
                json["rows"],
                json["p50_ms"].as_f64().unwrap_or(f64::NAN),
                if p95 < TARGET_PAGE_P95_MS {
                    "ok"
                } else {
                    "OVER TARGET"
                },
                loadavg()
            );
            p95 < TARGET_PAGE_P95_MS
        }
        Ok(out) => {
            eprintln!(
                "page load of {page} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!(
                "cannot run node {} ({e}) — is node installed?",
                script.display()
            );
            false
        }
    }
}

/// The monitor's memory every 30 s for `minutes`: VmRSS, VmHWM and the store's bytes on disk.
fn watch_memory(watching: &Watching, minutes: u64) {
    let status = format!("/proc/{}/status", watching.child.id());
    let kb = |field: &str| -> u64 {
        std::fs::read_to_string(&status)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(minutes * 60) {
        std::thread::sleep(Duration::from_secs(30));
        let store: u64 = std::fs::read_dir(watching.data.0.join("store"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        println!(
            "memory at {:>4.0} s: VmRSS {:.1} MB, VmHWM {:.1} MB, store on disk {:.1} MB; load {}",
            started.elapsed().as_secs_f64(),
            kb("VmRSS:") as f64 / 1024.0,
            kb("VmHWM:") as f64 / 1024.0,
            store as f64 / 1e6,
            loadavg()
        );
    }
}

/// The big-cluster run: API latency and list page loads; the process exits 1 when over target.
/// With `memory` minutes, the monitor's memory over that time instead.
fn run_synthetic(bin: &Path, oha: &Path, sizes: &str, seconds: u64, memory: Option<u64>) {
    let (partitions, groups) = sizes
        .split_once(',')
        .and_then(|(p, g)| Some((p.trim().parse().ok()?, g.trim().parse().ok()?)))
        .expect("--synthetic PARTITIONS,GROUPS, e.g. 100000,10000");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    println!(
        "bench-portal: pipescope run on {base} watching a synthetic cluster of {partitions} partitions and {groups} groups"
    );
    let watching = start_watching(bin, port, partitions, groups);
    let started = Instant::now();
    wait_analysed(&base, Duration::from_secs(300));
    println!(
        "bench-portal: ready after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if let Some(minutes) = memory {
        watch_memory(&watching, minutes);
        return;
    }
    let mut failed = false;
    for (name, path) in [
        ("overview (clusters)", "/api/v1/kafka/clusters"),
        (
            "groups by lag",
            "/api/v1/kafka/clusters/big/groups?sort=lag&order=desc&limit=100",
        ),
        (
            "topics by rate",
            "/api/v1/kafka/clusters/big/topics?sort=rate&order=desc&limit=100",
        ),
    ] {
        let l = run_oha(oha, &format!("{base}{path}"), seconds, SYNTHETIC_RATE);
        failed |= l.p99_ms >= TARGET_P99_MS || l.success_rate < 1.0;
        println!(
            "{name:<22} {path:<66} {SYNTHETIC_RATE} req/s for {seconds}s: {} requests, {:.0} req/s, success {:.2}%, p50 {:.2} ms, p99 {:.2} ms (target < {TARGET_P99_MS} ms: {}); load {}",
            l.requests,
            l.rps,
            l.success_rate * 100.0,
            l.p50_ms,
            l.p99_ms,
            if l.p99_ms < TARGET_P99_MS {
                "ok"
            } else {
                "OVER TARGET"
            },
            loadavg()
        );
    }
    failed |= !list_loads(&base, "groups", r#"[data-testid="groups-table"] tbody tr"#);
    failed |= !list_loads(&base, "topics", r#"[data-testid="topics-table"] tbody tr"#);
    drop(watching);
    if failed {
        std::process::exit(1);
    }
}

fn run_oha(oha: &Path, url: &str, seconds: u64, rate: u32) -> Latency {
    let output = Command::new(oha)
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "-q",
            &rate.to_string(),
            "-z",
            &format!("{seconds}s"),
            "-c",
            "50",
            url,
        ])
        .output()
        .expect("cannot run oha");
    assert!(
        output.status.success(),
        "oha failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("oha's JSON cannot be read ({e})"));
    let ms = |key: &str| json["latencyPercentiles"][key].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let requests = json["statusCodeDistribution"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    Latency {
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        requests,
        success_rate: json["summary"]["successRate"].as_f64().unwrap_or(f64::NAN),
        rps: json["summary"]["requestsPerSec"]
            .as_f64()
            .unwrap_or(f64::NAN),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut bin = std::env::current_exe()
        .expect("own path")
        .with_file_name("pipescope");
    let mut seconds = 20;
    let mut synthetic = None;
    let mut memory = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pipescope" => bin = PathBuf::from(args.next().expect("--pipescope PATH")),
            "--synthetic" => synthetic = args.next(),
            "--memory" => {
                memory = Some(
                    args.next()
                        .and_then(|s| s.parse().ok())
                        .expect("--memory MINUTES"),
                )
            }
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds N")
            }
            other => panic!(
                "unknown argument {other:?}: use --pipescope PATH, --seconds N, --synthetic PARTITIONS,GROUPS [--memory MINUTES]"
            ),
        }
    }
    let oha = oha();
    if let Some(sizes) = synthetic {
        run_synthetic(&bin, &oha, &sizes, seconds, memory);
        return;
    }
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    println!("bench-portal: starting {} demo on {base}", bin.display());
    let demo = start_demo(&bin, port);
    let started = Instant::now();
    wait_ready(&base, Duration::from_secs(90));
    println!(
        "bench-portal: demo ready after {:.1}s (Kafka groups listed)",
        started.elapsed().as_secs_f64()
    );

    let mut failed = false;
    for (name, path) in [
        ("overview (clusters)", "/api/v1/kafka/clusters"),
        ("groups", "/api/v1/kafka/clusters/demo/groups"),
    ] {
        let l = run_oha(&oha, &format!("{base}{path}"), seconds, RATE);
        let verdict = if l.p99_ms < TARGET_P99_MS {
            "ok"
        } else {
            "OVER TARGET"
        };
        failed |= l.p99_ms >= TARGET_P99_MS || l.success_rate < 1.0;
        println!(
            "{name:<22} {path:<38} {RATE} req/s for {seconds}s: {} requests, {:.0} req/s, success {:.2}%, p50 {:.2} ms, p99 {:.2} ms (target < {TARGET_P99_MS} ms: {verdict}); load {}",
            l.requests,
            l.rps,
            l.success_rate * 100.0,
            l.p50_ms,
            l.p99_ms,
            loadavg()
        );
    }

    let script = repo().join("bench/portal/page-load.mjs");
    let page = Command::new("node")
        .arg(&script)
        .arg(format!("{base}/"))
        .arg("5")
        .output();
    match page {
        Ok(out) if out.status.success() => {
            let json: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            println!(
                "first page load (Chromium, cold, median of 5): load {:.0} ms, DOMContentLoaded {:.0} ms; load {}",
                json["median_load_ms"].as_f64().unwrap_or(f64::NAN),
                json["median_dcl_ms"].as_f64().unwrap_or(f64::NAN),
                loadavg()
            );
        }
        Ok(out) => {
            failed = true;
            eprintln!(
                "page load measurement failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) => {
            failed = true;
            eprintln!(
                "cannot run node {} ({e}) — is node installed?",
                script.display()
            );
        }
    }
    drop(demo);
    if failed {
        std::process::exit(1);
    }
}
