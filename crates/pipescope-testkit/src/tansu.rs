//! tansu 0.6.0, a Kafka-compatible broker, one per test on a free loopback port.
//!
//! Its storage engines answer differently (see docs/brokers.md): numbers are tested on the
//! sqlite engine, whose offsets are right.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use pipescope_core::kafka::probe::{PROBE_ANSWER_HEAD, api_versions_probe, probe_answered};
use pipescope_core::kafka::tansu::RECORD_HEADER_INDEX_SQL;

use crate::process::{ServiceProcess, service_controls, service_dir};
use crate::{find_binary, free_port};

const INSTALL: &str = "cargo install tansu@0.6.0 --locked --features dynostore,libsql";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TansuStorage {
    /// `sqlite://tansu.db` in the broker's directory: survives a restart.
    #[default]
    Sqlite,
    /// `memory://tansu/`: lost on restart; some answers are wrong (docs/brokers.md).
    Memory,
}

#[derive(Debug, Clone, Default)]
pub struct TansuOptions {
    pub storage: TansuStorage,
    /// More command-line arguments for `tansu broker`.
    pub extra_args: Vec<String>,
    /// How often the sqlite engine runs its maintenance, which deletes the records of
    /// `cleanup.policy=delete` topics older than their `retention.ms` (record timestamps against
    /// the broker's clock). tansu's default is 10 minutes; it also runs once at start.
    pub maintenance_interval: Option<Duration>,
}

#[derive(Debug)]
pub struct Tansu {
    process: ServiceProcess,
    pub port: u16,
    pub storage: TansuStorage,
}

impl Tansu {
    /// A broker on the sqlite engine.
    pub fn start() -> Self {
        Self::start_with(TansuOptions::default())
    }

    pub fn start_with(options: TansuOptions) -> Self {
        let program = find_binary("tansu", INSTALL);
        let dir = service_dir("tansu");
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut storage = match options.storage {
            TansuStorage::Sqlite => "sqlite://tansu.db",
            TansuStorage::Memory => "memory://tansu/",
        }
        .to_string();
        if let Some(every) = options.maintenance_interval {
            // tansu reads it from the storage URL (a humantime duration).
            storage.push_str(&format!("?maintenance_interval={}ms", every.as_millis()));
        }
        let mut args: Vec<String> = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            &storage,
        ]
        .map(String::from)
        .to_vec();
        args.extend(options.extra_args);
        let mut broker = Self {
            process: ServiceProcess::new("tansu", program, args, dir),
            port,
            storage: options.storage,
        };
        broker.start_process();
        broker
    }

    fn start_process(&mut self) {
        self.process.spawn();
        let port = self.port;
        self.process
            .wait_ready(Duration::from_secs(20), || api_versions_answered(port));
        if self.storage == TansuStorage::Sqlite {
            index_record_headers(&self.process.dir().join("tansu.db"));
        }
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    service_controls!(
        "broker",
        "Starts the broker again on the same port (and, on sqlite, the same data)."
    );
}

/// Indexes tansu's record headers ([`RECORD_HEADER_INDEX_SQL`] says why).
fn index_record_headers(database: &std::path::Path) {
    let connection = rusqlite::Connection::open(database)
        .unwrap_or_else(|e| panic!("open tansu's database {} ({e})", database.display()));
    connection
        .busy_timeout(Duration::from_secs(10))
        .expect("set a busy timeout");
    connection
        .execute_batch(RECORD_HEADER_INDEX_SQL)
        .unwrap_or_else(|e| {
            panic!(
                "index tansu's record headers in {} ({e})",
                database.display()
            )
        });
}

/// Whether a Kafka ApiVersions v0 request on `port` gets an answer with our correlation id.
fn api_versions_answered(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = [0u8; PROBE_ANSWER_HEAD];
    stream.write_all(&api_versions_probe()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && probe_answered(&head)
}
