//! The store when its file or its disk fails: `pipescope run` on a corrupt database, and on a
//! disk that fills up.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipescope::store::{DB_FILE, Store};
use pipescope_core::tsdb::Retention;
use pipescope_core::{Clock, Labels, Sample, SystemClock};
use pipescope_testkit::wait_until;

/// A `pipescope run` child whose log (stderr) is collected as it comes.
struct Monitor {
    child: Child,
    log: Arc<Mutex<String>>,
    port: u16,
}

impl Monitor {
    fn start(command: &mut Command, port: u16) -> Monitor {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pipescope run");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Monitor { child, log, port }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The exit status once the process ended by itself within `timeout`; None if it still runs.
    fn exited_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status
    }

    fn serves(&self, timeout: Duration) -> bool {
        wait_until(timeout, || {
            pipescope_testkit::http_get(self.port, "/health").is_some()
        })
    }

    /// SIGTERM, then the exit status (SIGKILL if it did not stop within 10 s).
    fn stop(mut self) -> ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.exited_within(Duration::from_secs(10))
            .expect("pipescope run did not stop on SIGTERM within 10 s")
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn config(dir: &Path, port: u16, store_dir: &Path) -> PathBuf {
    let config = dir.join("pipescope.toml");
    std::fs::write(
        &config,
        format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\n[store]\npath = {:?}\n",
            store_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    config
}

fn run(config: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipescope"));
    command
        .args(["run", "-c", config.to_str().unwrap()])
        .args(extra)
        .env("RUST_LOG", "info");
    command
}

/// A real store with some history, closed, then cut to half its length (as a copy that ran out
/// of space, or a file system that lost its tail, leaves it).
fn truncated_store(store_dir: &Path) {
    let (store, writer) =
        Store::open(store_dir, Retention::default(), Arc::new(SystemClock), 4).unwrap();
    let now = SystemClock.now_millis();
    let samples: Vec<Sample> = (0..20_000u64)
        .map(|i| {
            let series = (i % 50).to_string();
            Sample::new(
                "history",
                Labels::new([("series", series.as_str())]),
                now - 3_600_000 + i * 100,
                i as f64,
            )
        })
        .collect();
    writer.submit(Arc::new(samples));
    writer.flush().unwrap();
    drop(store);
    writer.close();
    let db = store_dir.join(DB_FILE);
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(len > 64 * 1024, "the store is only {len} bytes");
    assert!(
        !store_dir.join(format!("{DB_FILE}-wal")).exists(),
        "closing the store leaves its log behind"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
}

/// Bytes that are no SQLite database (a deterministic scramble).
fn garbage_store(store_dir: &Path) {
    std::fs::create_dir_all(store_dir).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(store_dir.join(DB_FILE), bytes).unwrap();
}

/// A corrupt store stops the start with what is wrong and how to go on; with
/// `--move-corrupt-store-aside` the file is renamed (kept, never deleted), the log says where,
/// and the monitor starts on an empty store.
#[test]
fn a_corrupt_store_stops_the_start_and_the_flag_moves_it_aside() {
    for (case, make, reason) in [
        (
            "garbage",
            garbage_store as fn(&Path),
            "65536 bytes without an SQLite header: not a database",
        ),
        ("truncated", truncated_store, "truncated: its header counts"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("data");
        make(&store_dir);
        let db = store_dir.join(DB_FILE);
        let corrupt_bytes = std::fs::read(&db).unwrap();
        let port = pipescope_testkit::free_port();
        let config = config(dir.path(), port, &store_dir);

        let mut refused = Monitor::start(&mut run(&config, &[]), port);
        let status = refused.exited_within(Duration::from_secs(15));
        let log = refused.log();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(1),
            "{case}: pipescope run started on a corrupt store:\n{log}"
        );
        assert!(
            log.contains(&format!(
                "the store database {} is corrupt ({reason}",
                db.display()
            )) && log.contains("--move-corrupt-store-aside"),
            "{case}: {log}"
        );
        assert_eq!(
            std::fs::read(&db).unwrap(),
            corrupt_bytes,
            "{case}: the file changed"
        );

        let moved = Monitor::start(&mut run(&config, &["--move-corrupt-store-aside"]), port);
        assert!(
            moved.serves(Duration::from_secs(15)),
            "{case}: not serving:\n{}",
            moved.log()
        );
        assert_eq!(
            pipescope_testkit::http_get(port, "/api/v1/series"),
            Some((200, r#"{"series":[]}"#.to_string())),
            "{case}"
        );
        let aside: Vec<PathBuf> = std::fs::read_dir(&store_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with(&format!("{DB_FILE}.corrupt-")) && !name.ends_with("-wal")
            })
            .collect();
        assert_eq!(aside.len(), 1, "{case}: {aside:?}");
        assert_eq!(std::fs::read(&aside[0]).unwrap(), corrupt_bytes, "{case}");
        let log = moved.log();
        assert!(
            log.contains("is corrupt")
                && log.contains(&format!("moved to {}", aside[0].display()))
                && log.contains("starting with an empty store"),
            "{case}: {log}"
        );
        assert!(moved.stop().success(), "{case}");
        let (store, writer) =
            Store::open(&store_dir, Retention::default(), Arc::new(SystemClock), 4).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok", "{case}");
        writer.close();
    }
}

// ---- disk full ----

/// Largest file the monitor may write while "the disk is full" (RLIMIT_FSIZE): the store's
/// database and its write-ahead log each stop growing there.
const FULL_AT_BYTES: u64 = 1 << 20;
const SERIES: usize = 20;
const SAMPLES_PER_SERIES: usize = 100;

/// `pipescope run` whose files cannot grow beyond `limit` bytes (util-linux's prlimit sets
/// RLIMIT_FSIZE): a write past it fails with EFBIG, as on a full disk, instead of raising the
/// signal that would kill it — the shell ignores SIGXFSZ, and an ignored signal stays ignored
/// across exec. Only the soft limit, so it can be lifted without privileges.
fn run_with_file_size_limit(config: &Path, limit: u64) -> Command {
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            r#"trap '' XFSZ; exec prlimit --fsize="$FSIZE":unlimited -- "$@""#,
            "sh",
            env!("CARGO_BIN_EXE_pipescope"),
            "run",
            "-c",
            config.to_str().unwrap(),
        ])
        .env("FSIZE", limit.to_string())
        .env("RUST_LOG", "info");
    command
}

/// Room on the disk again: lifts the running monitor's file size limit.
fn lift_file_size_limit(pid: u32) {
    let lifted = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--fsize=unlimited:unlimited"])
        .status()
        .unwrap();
    assert!(lifted.success());
}

/// POST over a fresh connection: the status and body, None when nothing answered.
fn post(port: u16, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Line protocol for batch `n`: one sample of each series at times no other batch uses.
fn batch_body(n: usize, base_ms: u64) -> String {
    let mut body = String::new();
    for k in 0..SAMPLES_PER_SERIES {
        let t = base_ms + (n * SAMPLES_PER_SERIES + k) as u64;
        for s in 0..SERIES {
            body.push_str(&format!("fill,series=s{s} value={n}.{k} {t}\n"));
        }
    }
    body
}

fn metric(port: u16, name: &str) -> Option<f64> {
    let metrics = pipescope_testkit::http_body(port, "/metrics")?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Samples of `fill` the monitor's store holds, read through its query API.
fn stored_samples(port: u16) -> f64 {
    let (status, body) = pipescope_testkit::http_get(
        port,
        "/api/v1/top?metric=fill_value&n=1000&agg=count&from=now-3h&to=now",
    )
    .expect("the monitor answers queries");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

/// A full disk under the store (a file size limit on the real binary): the monitor keeps
/// running and answering, /write answers 503 (never 204) while it cannot commit, /metrics
/// shows the store failing, a refused write succeeds once there is room again, and after a
/// restart every sample answered 204 is there.
#[test]
fn a_full_disk_refuses_writes_loses_nothing_answered_and_recovers_when_room_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("data");
    let port = pipescope_testkit::free_port();
    let config = config(dir.path(), port, &store_dir);
    let mut monitor = Monitor::start(&mut run_with_file_size_limit(&config, FULL_AT_BYTES), port);
    assert!(
        monitor.serves(Duration::from_secs(15)),
        "not serving:\n{}",
        monitor.log()
    );
    let base_ms = SystemClock.now_millis() - 3_600_000;
    let per_batch = (SERIES * SAMPLES_PER_SERIES) as f64;

    // Fill the disk: write until the store cannot commit.
    let mut accepted = 0;
    let refused = loop {
        assert!(
            accepted < 500,
            "the store never filled up:\n{}",
            monitor.log()
        );
        let (status, answer) = post(
            port,
            "/write?db=x&precision=ms",
            &batch_body(accepted, base_ms),
        )
        .expect("the monitor answers /write");
        match status {
            204 => accepted += 1,
            503 => break answer,
            _ => panic!("/write answered {status}: {answer}"),
        }
    };
    assert!(accepted > 0, "the first write was refused: {refused}");
    assert!(
        refused.contains("the store could not commit the samples"),
        "{refused}"
    );
    // Still full: refused again, never 204; the monitor runs, answers, and says so.
    for _ in 0..3 {
        let (status, answer) = post(
            port,
            "/write?db=x&precision=ms",
            &batch_body(accepted, base_ms),
        )
        .unwrap();
        assert_eq!(status, 503, "{answer}");
    }
    assert!(
        monitor.child.try_wait().unwrap().is_none(),
        "the monitor died"
    );
    assert_eq!(
        pipescope_testkit::http_get(port, "/health").map(|(s, _)| s),
        Some(200)
    );
    assert_eq!(metric(port, "pipescope_store_write_failing"), Some(1.0));
    // Live but not ready while the store cannot commit.
    let (status, ready) = pipescope_testkit::http_get(port, "/ready").unwrap();
    assert_eq!(status, 503, "{ready}");
    assert!(
        ready.contains(r#""waiting_for":["store store"]"#),
        "{ready}"
    );
    assert!(metric(port, "pipescope_store_write_failures_total").unwrap() >= 4.0);
    assert!(metric(port, "pipescope_store_samples_dropped_total").unwrap() >= 4.0 * per_batch);
    // What was answered 204 is readable, and nothing of the refused batch is there.
    assert_eq!(stored_samples(port), accepted as f64 * per_batch);

    // Room again: the same batch is stored once retried, and later ones too.
    lift_file_size_limit(monitor.child.id());
    let mut status = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            status = post(
                port,
                "/write?db=x&precision=ms",
                &batch_body(accepted, base_ms),
            )
            .map(|(s, _)| s)
            .unwrap_or(0);
            status == 204
        }),
        "still refused ({status}) with room again:\n{}",
        monitor.log()
    );
    accepted += 1;
    assert!(
        wait_until(Duration::from_secs(10), || {
            pipescope_testkit::http_get(port, "/ready").is_some_and(|(status, _)| status == 200)
        }),
        "not ready with room again"
    );
    let (status, answer) = post(
        port,
        "/write?db=x&precision=ms",
        &batch_body(accepted, base_ms),
    )
    .unwrap();
    assert_eq!(status, 204, "{answer}");
    accepted += 1;
    assert_eq!(metric(port, "pipescope_store_write_failing"), Some(0.0));
    let log = monitor.log();
    assert!(
        log.contains("cannot write a batch") && log.contains("commits succeed again"),
        "{log}"
    );
    assert!(monitor.stop().success());

    // After a restart without the limit, every sample answered 204 is there, once.
    let (store, writer) =
        Store::open(&store_dir, Retention::default(), Arc::new(SystemClock), 4).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let now = SystemClock.now_millis();
    let stored: f64 = store
        .top(
            "fill_value",
            &[],
            1000,
            now - 3 * 3_600_000,
            now,
            pipescope_core::tsdb::AggregateFn::Count,
        )
        .unwrap()
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(stored, accepted as f64 * per_batch);
    writer.close();
}
