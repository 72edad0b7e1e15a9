//! Export to InfluxDB 1.x (`/write?db=`, database created if absent) or 2.x (`/api/v2/write`).
//!
//! Samples from the bus become line protocol in a bounded buffer; every `interval` the buffer is
//! written in chunks. A failed write is retried with exponential backoff while new lines keep
//! arriving; when the buffer is full the oldest lines are dropped. Every drop is counted in
//! `pipescope_export_influx_lines_dropped_total` and logged: nothing is lost silently.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pipescope_core::Sample;
use pipescope_core::backoff::Backoff;
use pipescope_core::line_protocol::sample_line;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use crate::bus::BusReceiver;
use crate::config::InfluxExport;
use crate::metrics::encode_const;

/// Lines sent in one HTTP request at most (InfluxDB suggests 5,000 to 10,000).
const LINES_PER_WRITE: usize = 5_000;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct InfluxStats {
    pub lines_sent: AtomicU64,
    pub lines_dropped: AtomicU64,
    pub retries: AtomicU64,
    pub writes: AtomicU64,
    pub buffered: AtomicU64,
}

/// Where and how a write goes: URL, query parameters and the `Authorization` header.
#[derive(Clone)]
pub struct WriteTarget {
    pub url: String,
    pub query: Vec<(&'static str, String)>,
    pub authorization: Option<String>,
}

impl fmt::Debug for WriteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteTarget")
            .field("url", &self.url)
            .field("query", &self.query)
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .finish()
    }
}

impl WriteTarget {
    pub fn new(config: &InfluxExport) -> Self {
        let base = config.url.trim_end_matches('/');
        if config.version == 2 {
            Self {
                url: format!("{base}/api/v2/write"),
                query: vec![
                    ("org", config.org.clone().unwrap_or_default()),
                    ("bucket", config.bucket.clone().unwrap_or_default()),
                    ("precision", "ms".into()),
                ],
                authorization: config
                    .token
                    .as_ref()
                    .map(|t| format!("Token {}", t.expose())),
            }
        } else {
            Self {
                url: format!("{base}/write"),
                query: vec![("db", config.database.clone()), ("precision", "ms".into())],
                // InfluxDB 1.x takes "Token user:password" as well as basic auth.
                authorization: config.username.as_ref().map(|u| {
                    format!(
                        "Token {u}:{}",
                        config.password.as_ref().map(|p| p.expose()).unwrap_or("")
                    )
                }),
            }
        }
    }
}

/// The InfluxQL that creates the 1.x database (a no-op when it exists).
pub fn create_database_statement(database: &str) -> String {
    format!(
        "CREATE DATABASE \"{}\"",
        database.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

#[derive(Debug)]
enum WriteError {
    /// Worth trying again later: network error, server error, overload, missing database.
    Retry(String),
    /// InfluxDB refused lines; sending them again would fail again. `dropped` is how many it
    /// says it dropped (a partial write keeps the others), or None when it does not say.
    Reject {
        message: String,
        dropped: Option<u64>,
    },
}

/// The `dropped=N` InfluxDB 1.x puts in a partial-write error.
pub fn partial_write_dropped(message: &str) -> Option<u64> {
    let rest = &message[message.find("dropped=")? + "dropped=".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

pub struct InfluxExporter {
    config: InfluxExport,
    target: WriteTarget,
    agent: ureq::Agent,
    stats: Arc<InfluxStats>,
    buffer: VecDeque<String>,
    database_ready: bool,
    backoff: Backoff,
    next_attempt: Instant,
}

impl fmt::Debug for InfluxExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfluxExporter")
            .field("target", &self.target)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

impl InfluxExporter {
    pub fn new(config: InfluxExport, stats: Arc<InfluxStats>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(HTTP_TIMEOUT))
            .build()
            .into();
        Self {
            target: WriteTarget::new(&config),
            // 2.x buckets are made by their owner; only 1.x databases are created here.
            database_ready: config.version == 2,
            config,
            agent,
            stats,
            buffer: VecDeque::new(),
            backoff: Backoff::new(FIRST_BACKOFF, MAX_BACKOFF),
            next_attempt: Instant::now(),
        }
    }

    /// Formats samples into the buffer, dropping the oldest lines beyond its bound.
    pub fn push(&mut self, samples: &[Sample]) {
        let mut invalid = 0u64;
        for sample in samples {
            let mut line = String::new();
            match sample_line(&mut line, sample) {
                Ok(()) => self.buffer.push_back(line),
                Err(e) => {
                    invalid += 1;
                    tracing::debug!("InfluxDB export: {e}");
                }
            }
        }
        let overflow = self.buffer.len().saturating_sub(self.config.buffer_lines);
        if overflow > 0 {
            self.buffer.drain(..overflow);
            tracing::warn!(
                lines = overflow,
                "InfluxDB export buffer is full ({} lines); the oldest lines were dropped — is InfluxDB at {} down?",
                self.config.buffer_lines,
                self.config.url
            );
        }
        if invalid > 0 {
            tracing::warn!(
                samples = invalid,
                "InfluxDB export: samples with NaN or infinite values cannot be written; dropped"
            );
        }
        self.stats
            .lines_dropped
            .fetch_add(overflow as u64 + invalid, Ordering::Relaxed);
        self.stats
            .buffered
            .store(self.buffer.len() as u64, Ordering::Relaxed);
    }

    /// Writes buffered lines until the buffer is empty or a write fails (then backs off).
    pub async fn flush(&mut self) {
        while !self.buffer.is_empty() && Instant::now() >= self.next_attempt {
            let n = self.buffer.len().min(LINES_PER_WRITE);
            let body: String = self.buffer.range(..n).map(String::as_str).collect();
            match self.write(body).await {
                Ok(()) => {
                    self.buffer.drain(..n);
                    self.stats.writes.fetch_add(1, Ordering::Relaxed);
                    self.stats.lines_sent.fetch_add(n as u64, Ordering::Relaxed);
                    self.backoff.reset();
                }
                Err(WriteError::Reject { message, dropped }) => {
                    self.buffer.drain(..n);
                    let dropped = dropped.unwrap_or(n as u64).min(n as u64);
                    self.stats
                        .lines_dropped
                        .fetch_add(dropped, Ordering::Relaxed);
                    self.stats
                        .lines_sent
                        .fetch_add(n as u64 - dropped, Ordering::Relaxed);
                    tracing::error!(
                        lines = dropped,
                        "InfluxDB at {} refused lines ({message}); they are dropped",
                        self.config.url
                    );
                }
                Err(WriteError::Retry(message)) => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let retry_in = self.backoff.next_delay();
                    tracing::warn!(
                        buffered = self.buffer.len(),
                        ?retry_in,
                        "cannot write to InfluxDB at {} ({message}); will retry",
                        self.config.url
                    );
                    self.next_attempt = Instant::now() + retry_in;
                    break;
                }
            }
        }
        self.stats
            .buffered
            .store(self.buffer.len() as u64, Ordering::Relaxed);
    }

    async fn write(&mut self, body: String) -> Result<(), WriteError> {
        if !self.database_ready {
            self.create_database().await?;
            self.database_ready = true;
        }
        let agent = self.agent.clone();
        let target = self.target.clone();
        let (status, text) = tokio::task::spawn_blocking(move || {
            let mut request = agent.post(&target.url);
            for (k, v) in &target.query {
                request = request.query(k, v);
            }
            if let Some(auth) = &target.authorization {
                request = request.header("Authorization", auth);
            }
            let mut response = request.send(body)?;
            let text = response.body_mut().read_to_string().unwrap_or_default();
            Ok::<_, ureq::Error>((response.status().as_u16(), text))
        })
        .await
        .map_err(|e| WriteError::Retry(e.to_string()))?
        .map_err(|e| WriteError::Retry(e.to_string()))?;
        match status {
            200..=299 => Ok(()),
            404 if text.contains("database not found") => {
                self.database_ready = false;
                Err(WriteError::Retry(format!(
                    "database {:?} not found; creating it",
                    self.config.database
                )))
            }
            400 | 413 | 422 => Err(WriteError::Reject {
                dropped: if text.contains("partial write") {
                    partial_write_dropped(&text)
                } else {
                    None
                },
                message: format!("HTTP {status}: {}", text.trim()),
            }),
            _ => Err(WriteError::Retry(format!("HTTP {status}: {}", text.trim()))),
        }
    }

    async fn create_database(&self) -> Result<(), WriteError> {
        let agent = self.agent.clone();
        let url = format!("{}/query", self.config.url.trim_end_matches('/'));
        let statement = create_database_statement(&self.config.database);
        let authorization = self.target.authorization.clone();
        let (status, text) = tokio::task::spawn_blocking(move || {
            let mut request = agent.post(&url).query("q", &statement);
            if let Some(auth) = &authorization {
                request = request.header("Authorization", auth);
            }
            let mut response = request.send_empty()?;
            let text = response.body_mut().read_to_string().unwrap_or_default();
            Ok::<_, ureq::Error>((response.status().as_u16(), text))
        })
        .await
        .map_err(|e| WriteError::Retry(e.to_string()))?
        .map_err(|e| WriteError::Retry(e.to_string()))?;
        if (200..300).contains(&status) && !text.contains("\"error\"") {
            tracing::info!(database = %self.config.database, "InfluxDB database ready");
            Ok(())
        } else {
            Err(WriteError::Retry(format!(
                "cannot create database {:?}: HTTP {status}: {}",
                self.config.database,
                text.trim()
            )))
        }
    }

    /// Exports every batch from the bus until `stop` resolves or the bus closes; then makes one
    /// last attempt to write what is buffered, and counts what remains as dropped.
    pub async fn run(
        mut self,
        mut receiver: BusReceiver,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(self.config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                batch = receiver.recv() => match batch {
                    Some(batch) => self.push(&batch),
                    None => break,
                },
                _ = tick.tick() => self.flush().await,
                () = &mut stop => break,
            }
        }
        self.next_attempt = Instant::now();
        self.flush().await;
        if !self.buffer.is_empty() {
            let lost = self.buffer.len() as u64;
            self.stats.lines_dropped.fetch_add(lost, Ordering::Relaxed);
            tracing::error!(
                lines = lost,
                "InfluxDB export stopped with lines it could not write; they are dropped"
            );
        }
    }
}

/// Registers `pipescope_export_influx_*` metrics.
pub fn register(registry: &mut Registry, stats: Arc<InfluxStats>) {
    registry.register_collector(Box::new(InfluxCollector { stats }));
}

#[derive(Debug)]
struct InfluxCollector {
    stats: Arc<InfluxStats>,
}

impl Collector for InfluxCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        for (name, help, value) in [
            (
                "pipescope_export_influx_lines_sent",
                "Lines InfluxDB accepted.",
                &s.lines_sent,
            ),
            (
                "pipescope_export_influx_lines_dropped",
                "Lines not exported: buffer full, refused by InfluxDB, or NaN/infinite values.",
                &s.lines_dropped,
            ),
            (
                "pipescope_export_influx_retries",
                "Writes to InfluxDB that failed and will be retried.",
                &s.retries,
            ),
            (
                "pipescope_export_influx_writes",
                "Successful write requests to InfluxDB.",
                &s.writes,
            ),
        ] {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            encode_const(&mut encoder, name, help, &counter)?;
        }
        encode_const(
            &mut encoder,
            "pipescope_export_influx_buffer_lines",
            "Lines waiting to be written to InfluxDB.",
            &ConstGauge::new(s.buffered.load(Ordering::Relaxed) as i64),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn config(version: u8) -> InfluxExport {
        InfluxExport {
            url: "http://h:8086/".into(),
            version,
            database: "datapipes".into(),
            username: Some("u".into()),
            password: Some(Secret::new("pw")),
            org: Some("acme".into()),
            bucket: Some("b1".into()),
            token: Some(Secret::new("tok")),
            interval: Duration::from_secs(1),
            buffer_lines: 3,
        }
    }

    #[test]
    fn v1_and_v2_targets() {
        let v1 = WriteTarget::new(&config(1));
        assert_eq!(v1.url, "http://h:8086/write");
        assert_eq!(
            v1.query,
            vec![("db", "datapipes".to_string()), ("precision", "ms".into())]
        );
        assert_eq!(v1.authorization.as_deref(), Some("Token u:pw"));
        let v2 = WriteTarget::new(&config(2));
        assert_eq!(v2.url, "http://h:8086/api/v2/write");
        assert_eq!(
            v2.query,
            vec![
                ("org", "acme".to_string()),
                ("bucket", "b1".into()),
                ("precision", "ms".into())
            ]
        );
        assert_eq!(v2.authorization.as_deref(), Some("Token tok"));
        let shown = format!("{v1:?}{v2:?}");
        assert!(!shown.contains("pw") && !shown.contains("tok"), "{shown}");
    }

    #[test]
    fn partial_write_counts_are_read() {
        assert_eq!(
            partial_write_dropped(
                r#"{"error":"partial write: field type conflict: input field \"value\" on measurement \"m\" is type float, already exists as type string dropped=3"}"#
            ),
            Some(3)
        );
        assert_eq!(partial_write_dropped("unable to parse"), None);
    }

    #[test]
    fn database_names_are_quoted() {
        assert_eq!(
            create_database_statement("data\"pipes"),
            r#"CREATE DATABASE "data\"pipes""#
        );
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_lines_and_counts_them() {
        let stats = Arc::new(InfluxStats::default());
        let mut exporter = InfluxExporter::new(config(1), stats.clone());
        let samples: Vec<Sample> = (0..5)
            .map(|i| Sample::new("m", Default::default(), i, i as f64))
            .chain([Sample::new("m", Default::default(), 9, f64::NAN)])
            .collect();
        exporter.push(&samples);
        assert_eq!(
            exporter.buffer.iter().cloned().collect::<Vec<_>>(),
            ["m value=2.0 2\n", "m value=3.0 3\n", "m value=4.0 4\n"]
        );
        assert_eq!(stats.lines_dropped.load(Ordering::Relaxed), 3);
        assert_eq!(stats.buffered.load(Ordering::Relaxed), 3);
    }
}
