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
