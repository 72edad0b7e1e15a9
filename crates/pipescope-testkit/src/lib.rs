//! Real services for pipescope's tests, each on free loopback ports, one set per test.
//!
//! Every service runs as a child process with its own temporary directory and config, logs to a
//! file there, and is stopped when its handle drops. When the test panics, the service's log is
//! printed and its directory kept, so a failure can be read. A missing binary fails the test
//! with the command that installs it: nothing is skipped.
//!
//! Besides the services: the pipeline parts run as child processes ([`part`]), a scripted Kafka
//! broker for what the real ones cannot be made to answer ([`scripted_kafka`]), an HTTP proxy
//! that makes a real service answer 500 or too late ([`fault_proxy`]), a webhook receiver that
//! keeps what it gets ([`webhook_sink`]), Kafka record
//! batches ([`records`]), and the small helpers every test needs (a free port, waiting on a
//! condition with a deadline, HTTP GETs, the time). The tests and the benchmarks under `bench/`
//! share them, so the two cannot drift apart.

pub mod alertmanager;
pub mod fault_proxy;
pub mod influxd;
mod kafka_wire;
pub mod mosquitto;
pub mod part;
mod process;
pub mod prometheus;
pub mod records;
pub mod scripted_kafka;
pub mod synthetic_kafka;
pub mod tansu;
pub mod tls;
pub mod webhook_sink;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use alertmanager::Alertmanager;
pub use fault_proxy::{Fault, FaultProxy};
pub use influxd::Influxd;
pub use mosquitto::{Mosquitto, MosquittoOptions};
pub use part::{Part, PartBuilder};
pub use prometheus::Prometheus;
pub use records::RecordBatchBuilder;
pub use scripted_kafka::ScriptedBroker;
pub use synthetic_kafka::SyntheticCluster;
pub use tansu::{Tansu, TansuOptions, TansuStorage};
pub use tls::TestCa;
pub use webhook_sink::{Received, WebhookSink};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind any port on 127.0.0.1")
}

/// Milliseconds since the Unix epoch, now (the unit Kafka and pipescope stamp records with).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as i64
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; true when it held.
///
/// Tests wait on what they need with this, never on a bare sleep: a sleep long enough on an idle
/// machine is too short on a loaded one.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(held) = poll_once(deadline, &mut condition) {
            return held;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// How often [`wait_until`] and [`wait_until_async`] look at their condition.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// One look at `condition`: `Some(true)` when it holds, `Some(false)` when `deadline` has
/// passed, None when the caller should sleep [`POLL_INTERVAL`] and look again.
fn poll_once(deadline: Instant, condition: &mut impl FnMut() -> bool) -> Option<bool> {
    if condition() {
        Some(true)
    } else if Instant::now() >= deadline {
        Some(false)
    } else {
        None
    }
}

/// [`wait_until`] for async tests: polls `condition` every 20 ms without blocking the runtime
/// (the tasks the condition waits on keep running); true when it held within `timeout`.
pub async fn wait_until_async(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(held) = poll_once(deadline, &mut condition) {
            return held;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// GET `http://127.0.0.1:<port><path>`: the status and body, or None when nothing answered
/// within two seconds (a server still starting). Any status is an answer, not an error.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut response = ureq::get(format!("http://127.0.0.1:{port}{path}"))
        .config()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .call()
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.body_mut().read_to_string().ok()?))
}

/// The body of a GET that answered 200, else None.
pub fn http_body(port: u16, path: &str) -> Option<String> {
    http_get(port, path).and_then(|(status, body)| (status == 200).then_some(body))
}

/// Finds a service's binary on PATH (and in the sbin and cargo directories that PATH may lack);
/// panics with the install command when it is not there.
pub fn find_binary(name: &str, install: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed on this machine, and the tests need the real service.\n\
                 Install it with: {install}\n\
                 (scripts/setup installs every service the tests use)"
            )
        })
}
