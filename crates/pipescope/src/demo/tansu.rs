//! The demo's Kafka-compatible broker: tansu 0.6.0 as a child process on its sqlite engine,
//! restarted when it dies and killed when the demo stops.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipescope_core::backoff::Backoff;
use pipescope_core::kafka::probe::{PROBE_ANSWER_HEAD, api_versions_probe, probe_answered};
use pipescope_core::kafka::tansu::RECORD_HEADER_INDEX_SQL;

use crate::sync::lock;

pub const INSTALL: &str = "cargo install tansu@0.6.0 --locked --features dynostore,libsql";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum TansuError {
    #[error(
        "tansu is not installed (looked on PATH and in ~/.cargo/bin) — install it with `{INSTALL}` (about 10 minutes once)"
    )]
    NotInstalled,
    #[error("cannot prepare tansu's data directory {dir} ({source})")]
    DataDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start tansu ({program}): {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("tansu exited while starting ({status}); its log is {log}")]
    Exited { status: String, log: PathBuf },
    #[error(
        "cannot index tansu's record headers in {database} ({source}) — without the index tansu falls behind the demo's traffic within minutes"
    )]
    Index {
        database: PathBuf,
        source: rusqlite::Error,
    },
    #[error("tansu does not answer Kafka requests on {addr} after {timeout:?}; its log is {log}")]
    NotReady {
        addr: SocketAddr,
        timeout: Duration,
        log: PathBuf,
    },
}

/// Finds `tansu` on PATH, then in `~/.cargo/bin` (where `cargo install` puts it).
pub fn find_tansu() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    let cargo_bin = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo/bin"));
    on_path
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join("tansu"))
        .find(|candidate| candidate.is_file())
}

/// A tansu child process. A watchdog thread starts it again when it dies; dropping this (or
/// [`ManagedTansu::stop`]) kills it.
#[derive(Debug)]
pub struct ManagedTansu {
    addr: SocketAddr,
    shared: Arc<Shared>,
    watchdog: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    spec: Spec,
    child: Mutex<Option<Child>>,
    stopping: AtomicBool,
    restarts: AtomicU32,
}

#[derive(Debug)]
struct Spec {
    program: PathBuf,
    addr: SocketAddr,
    dir: PathBuf,
    log: PathBuf,
}

impl Spec {
    fn spawn(&self) -> Result<Child, TansuError> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|source| TansuError::DataDir {
                dir: self.dir.clone(),
                source,
            })?;
        let stderr = log.try_clone().map_err(|source| TansuError::DataDir {
            dir: self.dir.clone(),
            source,
        })?;
        let url = format!("tcp://{}", self.addr);
        let mut command = Command::new(&self.program);
        // Its own process group: Ctrl-C in the terminal reaches pipescope only, which then
        // stops tansu itself (instead of the watchdog seeing tansu die and restarting it).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
            ])
            .arg(&url)
            .arg("--storage-engine")
            .arg("sqlite://tansu.db")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(|source| TansuError::Spawn {
                program: self.program.clone(),
                source,
            })
    }
}

impl ManagedTansu {
    /// Starts tansu on `addr` with its sqlite file and log in `dir`, and waits until it answers
    /// an ApiVersions request. Blocking: call it from a blocking context.
    pub fn start(addr: SocketAddr, dir: &Path) -> Result<Self, TansuError> {
        let program = find_tansu().ok_or(TansuError::NotInstalled)?;
        Self::start_program(program, addr, dir)
    }

    /// As [`ManagedTansu::start`] with a given executable.
    pub fn start_program(
        program: PathBuf,
        addr: SocketAddr,
        dir: &Path,
    ) -> Result<Self, TansuError> {
        std::fs::create_dir_all(dir).map_err(|source| TansuError::DataDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let spec = Spec {
            program,
            addr,
            dir: dir.to_path_buf(),
            log: dir.join("tansu.log"),
        };
        let mut child = spec.spawn()?;
        wait_ready(&spec, &mut child)?;
        tracing::info!(%addr, pid = child.id(), "tansu is answering Kafka requests");
        let shared = Arc::new(Shared {
            spec,
            child: Mutex::new(Some(child)),
            stopping: AtomicBool::new(false),
            restarts: AtomicU32::new(0),
        });
        let program = shared.spec.program.clone();
        let watchdog = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("tansu-watchdog".into())
                .spawn(move || watchdog(&shared))
                .map_err(|source| TansuError::Spawn { program, source })?
        };
        Ok(Self {
            addr,
            shared,
            watchdog: Some(watchdog),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The running child's process id (None between a death and its restart).
    pub fn pid(&self) -> Option<u32> {
        lock(&self.shared.child).as_ref().map(Child::id)
    }

    /// How many times the watchdog started tansu again after it died.
    pub fn restarts(&self) -> u32 {
        self.shared.restarts.load(Ordering::Relaxed)
    }

    pub fn log_path(&self) -> &Path {
        &self.shared.spec.log
    }

    /// Kills tansu and stops watching it.
    pub fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        if let Some(watchdog) = self.watchdog.take() {
            let _ = watchdog.join();
        }
        if let Some(mut child) = lock(&self.shared.child).take() {
            let _ = child.kill();
            let _ = child.wait();
            tracing::info!(pid = child.id(), "tansu stopped");
        }
    }
}

impl Drop for ManagedTansu {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_ready(spec: &Spec, child: &mut Child) -> Result<(), TansuError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(TansuError::Exited {
                status: status.to_string(),
                log: spec.log.clone(),
            });
        }
        if api_versions_answered(spec.addr) {
            return index_record_headers(&spec.dir.join("tansu.db"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TansuError::NotReady {
                addr: spec.addr,
                timeout: READY_TIMEOUT,
                log: spec.log.clone(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Adds the record-header index tansu 0.6 lacks ([`RECORD_HEADER_INDEX_SQL`] says why); the
/// index stays in the file, and adding it again is a no-op.
fn index_record_headers(database: &Path) -> Result<(), TansuError> {
    let index = || -> rusqlite::Result<()> {
        let connection = rusqlite::Connection::open(database)?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.execute_batch(RECORD_HEADER_INDEX_SQL)
    };
    index().map_err(|source| TansuError::Index {
        database: database.to_path_buf(),
        source,
    })
}

/// Polls the child; when it has died, starts it again (with a pause that grows on repeated
/// failures, so a broken install does not spin).
fn watchdog(shared: &Shared) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    while !shared.stopping.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let status = {
            let mut child = lock(&shared.child);
            match child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => {
                    child.take();
                    Some(status.to_string())
                }
                Some(_) => None,
                None => Some("not running".to_string()),
            }
        };
        let Some(status) = status else {
            backoff.reset();
            continue;
        };
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        tracing::warn!(
            %status,
            log = %shared.spec.log.display(),
            "tansu died; starting it again"
        );
        let started = shared.spec.spawn().and_then(|mut child| {
            wait_ready(&shared.spec, &mut child)?;
            Ok(child)
        });
        match started {
            Ok(child) => {
                tracing::info!(pid = child.id(), "tansu restarted");
                *lock(&shared.child) = Some(child);
                shared.restarts.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::error!("cannot restart tansu: {e}; trying again in {delay:?}");
                std::thread::sleep(delay);
            }
        }
    }
}

/// Whether a Kafka ApiVersions v0 request to `addr` gets an answer with our correlation id
/// and no error (the same probe the testkit uses).
pub fn api_versions_answered(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = [0u8; PROBE_ANSWER_HEAD];
    stream.write_all(&api_versions_probe()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && probe_answered(&head)
}
