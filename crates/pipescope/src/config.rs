//! The one configuration file: its types, loading with environment overrides, and validation
//! that reports every error at once, each with its path and a hint.
//!
//! Loading works in three passes over a TOML tree:
//! 1. environment variables `PIPESCOPE__SECTION__KEY` are written into the tree;
//! 2. the tree is deserialized into [`Config`]; on an error the offending key is recorded and
//!    removed, and deserialization runs again, so one pass finds every structural error;
//! 3. the typed config is checked for what types cannot say (files exist, cert goes with key…).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Prefix of environment variables that override the file, with `__` between path segments.
pub const ENV_PREFIX: &str = "PIPESCOPE__";

/// Top-level tables of the pipeline parts' options, which the monitor leaves alone.
pub const PART_TABLES: [&str; 4] = ["simulate", "bridge", "process", "sink"];

/// The commented example printed by `pipescope config example`; a test keeps it valid.
pub const EXAMPLE: &str = include_str!("config/example.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub web: Web,
    #[serde(default)]
    pub store: Store,
    #[serde(default)]
    pub kafka: BTreeMap<String, KafkaCluster>,
    #[serde(default)]
    pub mqtt: BTreeMap<String, MqttBroker>,
    #[serde(default)]
    pub export: Export,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Web {
    /// Where the portal, the JSON API, `/metrics` and `/health` are served.
    #[serde(default = "default_listen", deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// Who may read the portal and the API (`/health` stays open).
    #[serde(default)]
    pub auth: WebAuth,
}

impl Default for Web {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            auth: WebAuth::None,
        }
    }
}

/// `auth = { type = "none" }` (the default), `{ type = "bearer", token = "..." }` or
/// `{ type = "basic", user = "...", password = "..." }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum WebAuth {
    #[default]
    None,
    Bearer {
        token: Secret,
    },
    Basic {
        user: String,
        password: Secret,
    },
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7575))
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// Directory of the embedded time-series store.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// How long raw samples are kept.
    #[serde(default = "default_retention_raw", with = "humantime_serde")]
    pub retention_raw: Duration,
    /// How long 1-minute roll-ups are kept.
    #[serde(default = "default_retention_1m", with = "humantime_serde")]
    pub retention_1m: Duration,
    /// How long 1-hour roll-ups are kept.
    #[serde(default = "default_retention_1h", with = "humantime_serde")]
    pub retention_1h: Duration,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            path: default_store_path(),
            retention_raw: default_retention_raw(),
            retention_1m: default_retention_1m(),
            retention_1h: default_retention_1h(),
        }
    }
}

fn default_retention_raw() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_retention_1m() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

fn default_retention_1h() -> Duration {
    Duration::from_secs(365 * 24 * 3600)
}

fn default_store_path() -> PathBuf {
    PathBuf::from("pipescope-data")
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaCluster {
    /// Brokers to ask for the cluster's metadata: `["host:9092", ...]` or `"host:9092,host2:9092"`.
    #[serde(deserialize_with = "host_port_list")]
    pub bootstrap: Vec<HostPort>,
    #[serde(default = "default_scrape_interval", with = "humantime_serde")]
    pub scrape_interval: Duration,
    /// How long one admin request may take before that item is reported as timed out.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(default)]
    pub tls: Option<Tls>,
    #[serde(default)]
    pub sasl: Option<Sasl>,
    /// Regexes over group names: which groups `/metrics` exports (all when empty). A name
    /// matching any `groups_deny` regex is left out. Bounds the number of series.
    #[serde(default)]
    pub groups_allow: Vec<String>,
    #[serde(default)]
    pub groups_deny: Vec<String>,
    /// The same over topic names, for partition and committed-offset series.
    #[serde(default)]
    pub topics_allow: Vec<String>,
    #[serde(default)]
    pub topics_deny: Vec<String>,
    /// Series per partition, or summed per topic (fewer series on big clusters).
    #[serde(default)]
    pub metrics_granularity: MetricsGranularity,
    /// Observations (one per scrape) in each group partition's verdict window (Burrow's N).
    #[serde(default = "default_verdict_window")]
    pub verdict_window: usize,
}

fn default_verdict_window() -> usize {
    pipescope_core::kafka::verdict::DEFAULT_WINDOW_LEN
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum MetricsGranularity {
    #[default]
    #[serde(rename = "partition")]
    Partition,
    #[serde(rename = "topic")]
    Topic,
}

fn default_scrape_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM file of the certificate authorities to trust; the system's roots when absent.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for brokers that require mutual TLS (goes with `key`).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Accept any server certificate. For tests only: it defeats what TLS is for.
    #[serde(default)]
    pub skip_verify: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttBroker {
    /// `mqtt://host[:1883]` or `mqtts://host[:8883]`.
    pub url: MqttUrl,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Defaults to `pipescope-<broker name>`.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub protocol: MqttProtocol,
    /// Topic filters the watcher subscribes to.
    #[serde(default = "default_filters")]
    pub filters: Vec<String>,
    /// false keeps a persistent session, so the broker queues QoS 1 messages while we are away.
    #[serde(default = "default_true")]
    pub clean_session: bool,
    #[serde(default = "default_keep_alive", with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Only with an `mqtts://` url.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Topics tracked at most; past it new topics are counted in their parent's `(other)`.
    #[serde(default = "default_max_topics")]
    pub max_topics: usize,
    /// Topics exported one by one to Prometheus and the store (topic filters); none by default,
    /// so the number of series stays bounded.
    #[serde(default)]
    pub export_filters: Vec<String>,
    /// QoS of the subscriptions: 2 (default) sees each publisher's own QoS in the QoS mix.
    #[serde(default = "default_subscribe_qos")]
    pub subscribe_qos: u8,
    /// Largest MQTT packet accepted, in bytes; a bigger one breaks the connection.
    #[serde(default = "default_max_packet_size")]
    pub max_packet_size: usize,
    /// First and longest wait between reconnect attempts (doubling, with jitter).
    #[serde(default = "default_reconnect_min", with = "humantime_serde")]
    pub reconnect_min: Duration,
    #[serde(default = "default_reconnect_max", with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// Subscribe to `$SYS/#` for the broker's metrics. rumqttd drops a client that asks for it.
    #[serde(default = "default_true")]
    pub subscribe_sys: bool,
    /// A broker connected this long without any `$SYS` message is shown as publishing none.
    #[serde(default = "default_sys_wait", with = "humantime_serde")]
    pub sys_wait: Duration,
    /// How often samples of this broker go to the store.
    #[serde(default = "default_scrape_interval", with = "humantime_serde")]
    pub sample_interval: Duration,
}

fn default_max_topics() -> usize {
    100_000
}

fn default_subscribe_qos() -> u8 {
    2
}

fn default_max_packet_size() -> usize {
    16 * 1024 * 1024
}

fn default_reconnect_min() -> Duration {
    Duration::from_millis(500)
}

fn default_reconnect_max() -> Duration {
    Duration::from_secs(30)
}

fn default_sys_wait() -> Duration {
    Duration::from_secs(30)
}

fn default_filters() -> Vec<String> {
    vec!["#".to_string()]
}

fn default_true() -> bool {
    true
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum MqttProtocol {
    #[default]
    #[serde(rename = "3.1.1")]
    V311,
    #[serde(rename = "5")]
    V5,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    #[serde(default)]
    pub influx: Option<InfluxExport>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxExport {
    /// `http://host:8086` of InfluxDB 1.x or 2.x.
    pub url: String,
    /// 1 writes to `/write?db=<database>`; 2 writes to `/api/v2/write` with org, bucket and token.
    #[serde(default = "default_influx_version")]
    pub version: u8,
    #[serde(default = "default_influx_database")]
    pub database: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub org: Option<String>,
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default = "default_scrape_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Lines held while InfluxDB is unreachable; beyond that the oldest are dropped (and counted).
    #[serde(default = "default_influx_buffer_lines")]
    pub buffer_lines: usize,
}

fn default_influx_buffer_lines() -> usize {
    100_000
}

fn default_influx_version() -> u8 {
    1
}

fn default_influx_database() -> String {
    "datapipes".to_string()
}

/// A password or token: shown as `***` by Debug and Serialize, so it never reaches logs or the API.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it to a broker.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// A `host:port` address of a broker; IPv6 hosts in brackets (`[::1]:9092`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected host:port, got {s:?}");
        let (host, port) = s.trim().rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains(['[', ']', '/']) {
            return Err(bad());
        }
        // A bare IPv6 address without brackets would split at its last colon.
        if host.contains(':') && !s.trim().starts_with('[') {
            return Err(format!(
                "expected host:port, got {s:?} (write IPv6 hosts as [addr]:port)"
            ));
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(format!(
                "expected host:port with a port from 1 to 65535, got {s:?}"
            ));
        }
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for HostPort {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An MQTT broker address: `mqtt://` (plain TCP) or `mqtts://` (TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl FromStr for MqttUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("expected mqtt://host:port or mqtts://host:port, got {s:?}"))?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => {
                return Err(format!(
                    "unsupported scheme {other:?} in {s:?}: use mqtt:// or mqtts://"
                ));
            }
        };
        let authority = rest.trim_end_matches('/');
        let default_port = if tls { 8883 } else { 1883 };
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !authority.ends_with(']')
        {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        let HostPort { host, port } = with_port
            .parse()
            .map_err(|_| format!("expected mqtt://host:port or mqtts://host:port, got {s:?}"))?;
        Ok(Self { tls, host, port })
    }
}

impl fmt::Display for MqttUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        let address = HostPort {
            host: self.host.clone(),
            port: self.port,
        };
        write!(f, "{scheme}://{address}")
    }
}

impl<'de> Deserialize<'de> for MqttUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl Serialize for MqttUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MqttProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ProtocolVisitor;
        impl Visitor<'_> for ProtocolVisitor {
            type Value = MqttProtocol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"3.1.1\" or \"5\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MqttProtocol, E> {
                match v {
                    "3.1.1" | "4" => Ok(MqttProtocol::V311),
                    "5" | "5.0" => Ok(MqttProtocol::V5),
                    other => Err(E::custom(format!(
                        "expected protocol \"3.1.1\" or \"5\", got {other:?}"
                    ))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MqttProtocol, E> {
                match v {
                    4 => Ok(MqttProtocol::V311),
                    5 => Ok(MqttProtocol::V5),
                    other => Err(E::custom(format!(
                        "expected protocol \"3.1.1\" or \"5\", got {other}"
                    ))),
                }
            }
        }
        d.deserialize_any(ProtocolVisitor)
    }
}

fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| {
        de::Error::custom(format!(
            "expected ip:port such as 127.0.0.1:7575, got {s:?}"
        ))
    })
}

/// Accepts a list of `host:port` strings, or one string with commas (handy in an env variable).
fn host_port_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<HostPort>, D::Error> {
    struct ListVisitor;
    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<HostPort>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of \"host:port\" strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.split(',')
                .filter(|part| !part.trim().is_empty())
                .map(|part| part.parse().map_err(E::custom))
                .collect()
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<HostPort>()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_any(ListVisitor)
}

/// One problem in the configuration, located by its path (`kafka.prod.bootstrap[0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " — {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in one configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub source_name: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{}: {n} error{} in the configuration:",
            self.source_name,
            if n == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            writeln!(f, "  {error}")?;
        }
        Ok(())
    }
}

/// Reads `path`, applies the `PIPESCOPE__…` variables of this process, and validates.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let source_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        source_name: source_name.clone(),
        errors: vec![
            ConfigError::new("", format!("cannot read the file ({e})"))
                .hint("give the path of a TOML file; `pipescope config example` prints one"),
        ],
    })?;
    parse(&source_name, &text, std::env::vars())
}

/// Parses `text` with the given environment (only `PIPESCOPE__…` variables are used).
pub fn parse(
    source_name: &str,
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        source_name: source_name.to_string(),
        errors,
    };
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        fail(vec![ConfigError::new(
            "",
            format!("invalid TOML: {}", e.to_string().trim_end()),
        )])
    })?;
    // The pipeline parts' tables (`pipescope bridge --config FILE`, ...) may share the file.
    for part in PART_TABLES {
        table.remove(part);
    }
    let env_paths = apply_env(&mut table, env);
    let (config, mut errors) = deserialize_collecting_errors(toml::Value::Table(table));
    for error in &mut errors {
        if let Some((_, var)) = env_paths
            .iter()
            .find(|(path, _)| error.path.starts_with(path.as_str()))
        {
            error
                .message
                .push_str(&format!(" (set by the environment variable {var})"));
        }
    }
    if let Some(config) = &config {
        // A value already reported as malformed is not reported again for what its removal left.
        let structural: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
        errors.extend(validate(config).into_iter().filter(|e| {
            !structural
                .iter()
                .any(|p| !p.is_empty() && e.path.starts_with(p.split('[').next().unwrap_or(p)))
        }));
    }
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(fail(errors)),
    }
}

/// Writes `PIPESCOPE__SECTION__KEY=value` variables into the tree, returning which path each set.
///
/// A value is read as a TOML literal when it is one (`5`, `true`, `["a:1", "b:2"]`) and as a
/// string otherwise; where the file already has a string there, the variable stays a string.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut applied = Vec::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let segments: Vec<&str> = var[ENV_PREFIX.len()..].split("__").collect();
        if segments.iter().any(|s| s.is_empty()) {
            continue;
        }
        let mut node = &mut *table;
        let mut path = Vec::new();
        for segment in &segments[..segments.len() - 1] {
            let key = existing_key(node, segment);
            path.push(key.clone());
            let entry = node
                .entry(key)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            node = entry.as_table_mut().expect("made a table above");
        }
        let key = existing_key(node, segments[segments.len() - 1]);
        path.push(key.clone());
        let value = match node.get(&key) {
            Some(toml::Value::String(_)) => toml::Value::String(raw),
            _ => parse_env_literal(&raw),
        };
        node.insert(key, value);
        applied.push((path.join("."), var));
    }
    applied
}

/// The key in `table` that matches `segment` ignoring case, or `segment` lower-cased.
fn existing_key(table: &toml::Table, segment: &str) -> String {
    table
        .keys()
        .find(|k| k.eq_ignore_ascii_case(segment))
        .cloned()
        .unwrap_or_else(|| segment.to_ascii_lowercase())
}

fn parse_env_literal(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Deserializes, and on each error records it, removes the offending value and tries again,
/// so that one run reports every structural error instead of only the first.
fn deserialize_collecting_errors(mut value: toml::Value) -> (Option<Config>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let mut removed: HashSet<Vec<PathSegment>> = HashSet::new();
    // Elements removed from each list so far, to report later errors at their original index.
    let mut removed_from_list: HashMap<Vec<PathSegment>, usize> = HashMap::new();
    // Each round removes one value, so the number of values in the file bounds the rounds.
    for _ in 0..10_000 {
        let error = match serde_path_to_error::deserialize::<_, Config>(value.clone()) {
            Ok(config) => return (Some(config), errors),
            Err(error) => error,
        };
        let mut path = to_segments(error.path());
        let message = error.inner().to_string();
        // toml appends "in `a.b`" lines; our path already says where.
        let message = message
            .split("\nin `")
            .next()
            .unwrap_or(&message)
            .trim()
            .to_string();
        let mut record = true;
        if let Some(field) = quoted_name(&message, "unknown field `") {
            // serde_path_to_error may or may not have entered the unknown key already.
            if path.last() != Some(&PathSegment::Key(field.clone())) {
                path.push(PathSegment::Key(field));
            }
        } else if let Some(field) = quoted_name(&message, "missing field `") {
            // A value we removed for being wrong is now missing: that was already reported.
            let mut child = path.clone();
            child.push(PathSegment::Key(field));
            record = !removed.contains(&child);
        }
        let original = original_indices(&path, &removed_from_list);
        if record {
            errors.push(describe(&original, &message));
        }
        if path.is_empty() || !remove_at(&mut value, &path) {
            return (None, errors);
        }
        if let Some((PathSegment::Index(_), list)) = path.split_last() {
            *removed_from_list.entry(list.to_vec()).or_default() += 1;
        }
        removed.insert(original);
    }
    (None, errors)
}

/// Serde reports positions in lists we already removed elements from; this maps them back.
/// Errors inside one list arrive in order, so every removed element stood before this one.
fn original_indices(
    path: &[PathSegment],
    removed_from_list: &HashMap<Vec<PathSegment>, usize>,
) -> Vec<PathSegment> {
    let mut out = Vec::with_capacity(path.len());
    for (i, segment) in path.iter().enumerate() {
        match segment {
            PathSegment::Index(index) => {
                let shift = removed_from_list.get(&path[..i]).copied().unwrap_or(0);
                out.push(PathSegment::Index(index + shift));
            }
            key => out.push(key.clone()),
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PathSegment {
    Key(String),
    Index(usize),
}

fn to_segments(path: &serde_path_to_error::Path) -> Vec<PathSegment> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Map { key } => Some(PathSegment::Key(key.clone())),
            Segment::Seq { index } => Some(PathSegment::Index(*index)),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

fn path_string(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            PathSegment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                if key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    out.push_str(key);
                } else {
                    out.push_str(&format!("{key:?}"));
                }
            }
            PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Removes the value at `path`; false when there is nothing there to remove.
fn remove_at(value: &mut toml::Value, path: &[PathSegment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = value;
    for segment in parents {
        node = match (segment, node) {
            (PathSegment::Key(k), toml::Value::Table(t)) => match t.get_mut(k) {
                Some(child) => child,
                None => return false,
            },
            (PathSegment::Index(i), toml::Value::Array(a)) => match a.get_mut(*i) {
                Some(child) => child,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (PathSegment::Key(k), toml::Value::Table(t)) => t.remove(k).is_some(),
        (PathSegment::Index(i), toml::Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

/// The name between `prefix` and the next backtick in a serde message.
fn quoted_name(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_string())
}

/// Turns a serde message into ours, with a "did you mean" for a near-miss name.
fn describe(path: &[PathSegment], message: &str) -> ConfigError {
    let at = path_string(path);
    if let Some(name) = quoted_name(message, "unknown field `") {
        let error = ConfigError::new(at, format!("unknown key {name:?}"));
        return match closest(&name, &expected_names(message)) {
            Some(suggestion) => error.hint(format!("did you mean {suggestion:?}?")),
            None => error.hint(format!(
                "known keys here: {}",
                expected_names(message).join(", ")
            )),
        };
    }
    if let Some(name) = quoted_name(message, "unknown variant `") {
        let expected = expected_names(message);
        let error = ConfigError::new(at, format!("unknown value {name:?}"));
        return match closest(&name, &expected) {
            Some(suggestion) => error.hint(format!("did you mean {suggestion:?}?")),
            None => error.hint(format!("use one of: {}", expected.join(", "))),
        };
    }
    if let Some(name) = quoted_name(message, "missing field `") {
        let error = ConfigError::new(at, format!("missing key {name:?}"));
        return match name.as_str() {
            "bootstrap" => error.hint("list the cluster's brokers: bootstrap = [\"host:9092\"]"),
            "url" if path.first() == Some(&PathSegment::Key("mqtt".into())) => {
                error.hint("give the broker's address: url = \"mqtt://host:1883\"")
            }
            _ => error,
        };
    }
    let error = ConfigError::new(at, message.to_string());
    if message.contains("time unit") || message.contains("expected number") {
        error.hint("write durations like \"10s\", \"500ms\" or \"2m\"")
    } else {
        error
    }
}

/// The names serde lists after "expected" in an unknown-field or unknown-variant message.
fn expected_names(message: &str) -> Vec<String> {
    let Some(start) = message.find("expected") else {
        return Vec::new();
    };
    message[start..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn closest(name: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&name.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.clone())
}

/// What types cannot say: required lists not empty, files readable, settings that go together.
fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    match &config.web.auth {
        WebAuth::None => {}
        WebAuth::Bearer { token } if token.expose().is_empty() => errors.push(
            ConfigError::new("web.auth.token", "the bearer token is empty").hint(
                "set a long random token, e.g. PIPESCOPE__WEB__AUTH__TOKEN=$(openssl rand -hex 32)",
            ),
        ),
        WebAuth::Bearer { .. } => {}
        WebAuth::Basic { user, password } => {
            if user.is_empty() || user.contains(':') {
                errors.push(
                    ConfigError::new("web.auth.user", "the user name is empty or holds a ':'")
                        .hint("HTTP basic auth cannot carry such a name: pick another"),
                );
            }
            if password.expose().is_empty() {
                errors.push(
                    ConfigError::new("web.auth.password", "the password is empty")
                        .hint("set one, e.g. PIPESCOPE__WEB__AUTH__PASSWORD=..."),
                );
            }
        }
    }
    let store = &config.store;
    for (key, value) in [
        ("retention_raw", store.retention_raw),
        ("retention_1m", store.retention_1m),
        ("retention_1h", store.retention_1h),
    ] {
        check_positive(&format!("store.{key}"), value, &mut errors);
    }
    if store.retention_1m < store.retention_raw || store.retention_1h < store.retention_1m {
        errors.push(
            ConfigError::new("store", "a coarser resolution is kept for less time than a finer one")
                .hint("keep retention_raw <= retention_1m <= retention_1h (defaults 24h, 30days, 365days)"),
        );
    }
    for (name, cluster) in &config.kafka {
        let at = format!("kafka.{name}");
        check_name(&at, name, &mut errors);
        if cluster.bootstrap.is_empty() {
            errors.push(
                ConfigError::new(format!("{at}.bootstrap"), "no brokers listed")
                    .hint("list at least one: bootstrap = [\"host:9092\"]"),
            );
        }
        check_positive(
            &format!("{at}.scrape_interval"),
            cluster.scrape_interval,
            &mut errors,
        );
        check_positive(
            &format!("{at}.request_timeout"),
            cluster.request_timeout,
            &mut errors,
        );
        if let Some(tls) = &cluster.tls {
            check_tls(&format!("{at}.tls"), tls, &mut errors);
        }
        if cluster.verdict_window < 2 {
            errors.push(
                ConfigError::new(
                    format!("{at}.verdict_window"),
                    format!(
                        "{} is too small: a verdict compares at least 2 observations",
                        cluster.verdict_window
                    ),
                )
                .hint("use 2 or more (default 10)"),
            );
        }
        for (key, patterns) in [
            ("groups_allow", &cluster.groups_allow),
            ("groups_deny", &cluster.groups_deny),
            ("topics_allow", &cluster.topics_allow),
            ("topics_deny", &cluster.topics_deny),
        ] {
            for (i, pattern) in patterns.iter().enumerate() {
                if let Err(e) = regex::Regex::new(pattern) {
                    let first_line = e.to_string().lines().last().unwrap_or_default().to_string();
                    errors.push(
                        ConfigError::new(
                            format!("{at}.{key}[{i}]"),
                            format!("invalid regex {pattern:?} ({})", first_line.trim()),
                        )
                        .hint("use Rust regex syntax, e.g. \"^payments-.*\""),
                    );
                }
            }
        }
        if let Some(sasl) = &cluster.sasl {
            if sasl.username.is_empty() {
                errors.push(ConfigError::new(format!("{at}.sasl.username"), "is empty"));
            }
            if sasl.password.expose().is_empty() {
                errors.push(
                    ConfigError::new(format!("{at}.sasl.password"), "is empty").hint(format!(
                        "set it here or in the environment variable {ENV_PREFIX}KAFKA__{}__SASL__PASSWORD",
                        name.to_uppercase()
                    )),
                );
            }
        }
    }
    for (name, broker) in &config.mqtt {
        let at = format!("mqtt.{name}");
        check_name(&at, name, &mut errors);
        if broker.password.is_some() && broker.username.is_none() {
            errors.push(ConfigError::new(
                format!("{at}.password"),
                "a password needs a username",
            ));
        }
        if let Some(tls) = &broker.tls {
            if !broker.url.tls {
                errors.push(
                    ConfigError::new(format!("{at}.tls"), "TLS settings with a plain mqtt:// url")
                        .hint(format!(
                            "use mqtts://{}:{}",
                            broker.url.host, broker.url.port
                        )),
                );
            }
            check_tls(&format!("{at}.tls"), tls, &mut errors);
        }
        if broker.filters.is_empty() {
            errors.push(
                ConfigError::new(format!("{at}.filters"), "no topic filters")
                    .hint("subscribe to everything with filters = [\"#\"]"),
            );
        }
        for (i, filter) in broker.filters.iter().enumerate() {
            if let Err(e) = pipescope_core::mqtt_filter::validate(filter) {
                errors.push(ConfigError::new(
                    format!("{at}.filters[{i}]"),
                    format!("{e}, got {filter:?}"),
                ));
            }
        }
        for (i, filter) in broker.export_filters.iter().enumerate() {
            if let Err(e) = pipescope_core::mqtt_filter::validate(filter) {
                errors.push(ConfigError::new(
                    format!("{at}.export_filters[{i}]"),
                    format!("{e}, got {filter:?}"),
                ));
            }
        }
        if broker.max_topics == 0 {
            errors.push(
                ConfigError::new(format!("{at}.max_topics"), "must be more than 0")
                    .hint("the default is 100000"),
            );
        }
        if broker.subscribe_qos > 2 {
            errors.push(ConfigError::new(
                format!("{at}.subscribe_qos"),
                format!("expected 0, 1 or 2, got {}", broker.subscribe_qos),
            ));
        }
        if broker.max_packet_size < 1024 || broker.max_packet_size > 268_435_455 {
            errors.push(
                ConfigError::new(
                    format!("{at}.max_packet_size"),
                    format!(
                        "expected 1024 to 268435455 bytes, got {}",
                        broker.max_packet_size
                    ),
                )
                .hint("MQTT packets are at most 268435455 bytes"),
            );
        }
        check_positive(
            &format!("{at}.reconnect_min"),
            broker.reconnect_min,
            &mut errors,
        );
        if broker.reconnect_max < broker.reconnect_min {
            errors.push(ConfigError::new(
                format!("{at}.reconnect_max"),
                "must be at least reconnect_min",
            ));
        }
        check_positive(
            &format!("{at}.sample_interval"),
            broker.sample_interval,
            &mut errors,
        );
        if let Some(tls) = &broker.tls
            && tls.cert.is_some()
            && tls.ca.is_none()
            && !tls.skip_verify
        {
            errors.push(
                ConfigError::new(format!("{at}.tls.ca"), "a client certificate needs ca too")
                    .hint("give the PEM file of the CA that signed the broker's certificate"),
            );
        }
        if broker.keep_alive < Duration::from_secs(5) {
            errors.push(
                ConfigError::new(format!("{at}.keep_alive"), "must be at least 5s")
                    .hint("rumqttc and most brokers reject shorter keep-alives"),
            );
        }
    }
    if let Some(influx) = &config.export.influx {
        let at = "export.influx";
        if !(influx.url.starts_with("http://") || influx.url.starts_with("https://")) {
            errors.push(ConfigError::new(
                format!("{at}.url"),
                format!(
                    "expected http://host:port or https://host:port, got {:?}",
                    influx.url
                ),
            ));
        }
        match influx.version {
            1 => {}
            2 => {
                for (key, missing) in [
                    ("org", influx.org.is_none()),
                    ("bucket", influx.bucket.is_none()),
                    ("token", influx.token.is_none()),
                ] {
                    if missing {
                        errors.push(ConfigError::new(
                            format!("{at}.{key}"),
                            "required when version = 2",
                        ));
                    }
                }
            }
            other => errors.push(
                ConfigError::new(
                    format!("{at}.version"),
                    format!("expected 1 or 2, got {other}"),
                )
                .hint("1 for InfluxDB 1.x (/write), 2 for InfluxDB 2.x (/api/v2/write)"),
            ),
        }
        check_positive(&format!("{at}.interval"), influx.interval, &mut errors);
        if influx.buffer_lines == 0 {
            errors.push(
                ConfigError::new(format!("{at}.buffer_lines"), "must be more than 0")
                    .hint("for example 100000"),
            );
        }
    }
    errors
}

/// Names appear in URLs and metric labels, so they are kept to a safe alphabet.
fn check_name(at: &str, name: &str, errors: &mut Vec<ConfigError>) {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        errors.push(
            ConfigError::new(at, format!("invalid name {name:?}"))
                .hint("use letters, digits, '-', '_' and '.'"),
        );
    }
}

fn check_positive(at: &str, value: Duration, errors: &mut Vec<ConfigError>) {
    if value.is_zero() {
        errors.push(ConfigError::new(at, "must be more than 0").hint("for example \"10s\""));
    }
}

fn check_tls(at: &str, tls: &Tls, errors: &mut Vec<ConfigError>) {
    match (&tls.cert, &tls.key) {
        (Some(_), None) => errors.push(ConfigError::new(
            format!("{at}.key"),
            "a client cert needs its key",
        )),
        (None, Some(_)) => errors.push(ConfigError::new(
            format!("{at}.cert"),
            "a client key needs its cert",
        )),
        _ => {}
    }
    for (key, file) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
        if let Some(file) = file
            && let Err(e) = std::fs::metadata(file)
        {
            errors.push(
                ConfigError::new(
                    format!("{at}.{key}"),
                    format!("cannot read {} ({e})", file.display()),
                )
                .hint("give the path of a PEM file"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> Vec<String> {
        errors_with_env(text, &[])
    }

    fn errors_with_env(text: &str, env: &[(&str, &str)]) -> Vec<String> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        match parse("test.toml", text, env) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn the_example_is_valid_and_the_empty_file_gives_defaults() {
        parse("example", EXAMPLE, []).expect("example config is valid");
        let config = parse("empty", "", []).unwrap();
        assert_eq!(config.web.listen, "127.0.0.1:7575".parse().unwrap());
        assert!(config.kafka.is_empty() && config.mqtt.is_empty());
    }

    #[test]
    fn host_port_parsing() {
        assert_eq!(
            "kafka-1:9092".parse::<HostPort>(),
            Ok(HostPort {
                host: "kafka-1".into(),
                port: 9092
            })
        );
        assert_eq!("[::1]:9092".parse::<HostPort>().unwrap().host, "::1");
        assert_eq!(
            "[::1]:9092".parse::<HostPort>().unwrap().to_string(),
            "[::1]:9092"
        );
        assert_eq!(
            "localhost".parse::<HostPort>(),
            Err("expected host:port, got \"localhost\"".to_string())
        );
        assert!("host:0".parse::<HostPort>().is_err());
        assert!("host:70000".parse::<HostPort>().is_err());
        assert!(":9092".parse::<HostPort>().is_err());
        assert!("::1:9092".parse::<HostPort>().is_err());
    }

    #[test]
    fn mqtt_url_parsing_with_default_ports() {
        let plain: MqttUrl = "mqtt://broker".parse().unwrap();
        assert_eq!(
            (plain.tls, plain.host.as_str(), plain.port),
            (false, "broker", 1883)
        );
        let tls: MqttUrl = "mqtts://broker:9999".parse().unwrap();
        assert_eq!((tls.tls, tls.port), (true, 9999));
        assert_eq!("mqtts://[::1]".parse::<MqttUrl>().unwrap().port, 8883);
        assert!(
            "http://broker"
                .parse::<MqttUrl>()
                .unwrap_err()
                .contains("unsupported scheme")
        );
        assert!("broker:1883".parse::<MqttUrl>().is_err());
    }

    #[test]
    fn bad_bootstrap_entry_is_reported_with_its_index() {
        let errors = errors_of("[kafka.prod]\nbootstrap = [\"ok:9092\", \"localhost\"]\n");
        assert_eq!(
            errors,
            vec!["kafka.prod.bootstrap[1]: expected host:port, got \"localhost\""]
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let text = r#"
[web]
listen = "nowhere"

[kafka.prod]
bootstrp = ["a:9092"]
scrape_interval = "10 parsecs"

[kafka.prod.sasl]
mechanism = "SCRAM-SHA256"
username = "svc"
password = "hunter2"

[mqtt.edge]
url = "http://broker"
filters = ["a/#/b"]

[mqtt.plant]
url = "mqtt://plant"
filters = ["ok/#", "bad+"]
password = "secret"

[exprot.influx]
url = "http://x"
"#;
        let errors = errors_of(text);
        let expected_fragments = [
            "web.listen: expected ip:port such as 127.0.0.1:7575, got \"nowhere\"",
            "kafka.prod.bootstrp: unknown key \"bootstrp\" — did you mean \"bootstrap\"?",
            "kafka.prod.scrape_interval:",
            "kafka.prod.sasl.mechanism: unknown value \"SCRAM-SHA256\" — did you mean \"SCRAM-SHA-256\"?",
            "mqtt.edge.url: unsupported scheme \"http\"",
            "mqtt.plant.filters[1]: '+' must fill a whole level",
            "mqtt.plant.password: a password needs a username",
            ": unknown key \"exprot\" — did you mean \"export\"?",
        ];
        for fragment in expected_fragments {
            assert!(
                errors.iter().any(|e| e.contains(fragment)),
                "missing {fragment:?} in {errors:#?}"
            );
        }
        // the kafka.prod entry lost its bootstrap key to the typo: that is reported too.
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("kafka.prod: missing key \"bootstrap\"")),
            "{errors:#?}"
        );
        assert!(!errors.iter().any(|e| e.contains("hunter2")));
    }

    #[test]
    fn unknown_key_error_path_includes_the_key() {
        let errors =
            errors_of("[kafka.prod]\nbootstrap = \"a:1\"\n[kafka.prod.tls]\nskip_verfy = true\n");
        assert_eq!(
            errors,
            vec![
                "kafka.prod.tls.skip_verfy: unknown key \"skip_verfy\" — did you mean \"skip_verify\"?"
            ]
        );
    }

    #[test]
    fn a_wrong_enum_value_is_not_also_reported_as_missing() {
        let errors = errors_of(
            "[kafka.k]\nbootstrap = \"a:1\"\n[kafka.k.sasl]\nmechanism = \"GSSAPI\"\nusername = \"u\"\npassword = \"p\"\n",
        );
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].starts_with("kafka.k.sasl.mechanism: unknown value \"GSSAPI\" — use one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"), "{errors:#?}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let errors = errors_of("[kafka.prod\nbootstrap = 1\n");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("invalid TOML"), "{errors:?}");
        assert!(errors[0].contains("line 1"), "{errors:?}");
    }

    #[test]
    fn env_overrides_set_and_replace_values() {
        let text = "[kafka.Prod]\nbootstrap = [\"a:1\"]\n[kafka.Prod.sasl]\nmechanism = \"PLAIN\"\nusername = \"u\"\npassword = \"from-file\"\n";
        let env = [
            ("PIPESCOPE__WEB__LISTEN", "0.0.0.0:8080"),
            ("PIPESCOPE__KAFKA__PROD__BOOTSTRAP", "b:2,c:3"),
            ("PIPESCOPE__KAFKA__PROD__SASL__PASSWORD", "12345"),
            ("PIPESCOPE__KAFKA__PROD__SCRAPE_INTERVAL", "30s"),
            ("OTHER__WEB__LISTEN", "ignored"),
        ];
        let config = parse(
            "t",
            text,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        assert_eq!(config.web.listen, "0.0.0.0:8080".parse().unwrap());
        let prod = &config.kafka["Prod"];
        assert_eq!(
            prod.bootstrap
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["b:2", "c:3"]
        );
        assert_eq!(prod.sasl.as_ref().unwrap().password.expose(), "12345");
        assert_eq!(prod.scrape_interval, Duration::from_secs(30));
    }

    #[test]
    fn env_errors_name_the_variable() {
        let errors = errors_with_env("", &[("PIPESCOPE__WEB__LISTEN", "nope")]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("PIPESCOPE__WEB__LISTEN"), "{errors:?}");
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_serialize() {
        let text = "[kafka.k]\nbootstrap = \"a:1\"\n[kafka.k.sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"u\"\npassword = \"hunter2\"\n[mqtt.m]\nurl = \"mqtt://h\"\nusername = \"u\"\npassword = \"s3cret\"\n";
        let config = parse("t", text, []).unwrap();
        let debug = format!("{config:?}");
        let json = serde_json::to_string(&config).unwrap();
        for shown in [&debug, &json] {
            assert!(
                !shown.contains("hunter2") && !shown.contains("s3cret"),
                "{shown}"
            );
            assert!(shown.contains("***"));
        }
    }

    #[test]
    fn tls_files_must_exist_and_cert_goes_with_key() {
        let errors = errors_of(
            "[kafka.k]\nbootstrap = \"a:1\"\n[kafka.k.tls]\nca = \"/nonexistent/ca.pem\"\ncert = \"/nonexistent/c.pem\"\n",
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("kafka.k.tls.key: a client cert needs its key")),
            "{errors:#?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("kafka.k.tls.ca: cannot read /nonexistent/ca.pem")),
            "{errors:#?}"
        );
    }

    #[test]
    fn store_retention_defaults_and_checks() {
        let config = parse("empty", "", []).unwrap();
        assert_eq!(config.store.retention_raw, Duration::from_secs(86_400));
        assert_eq!(config.store.retention_1m, Duration::from_secs(30 * 86_400));
        assert_eq!(config.store.retention_1h, Duration::from_secs(365 * 86_400));
        let errors = errors_of(
            "[store]\nretention_raw = \"0s\"\nretention_1m = \"1h\"\nretention_1h = \"30m\"\n",
        );
        assert_eq!(
            errors,
            vec![
                "store.retention_raw: must be more than 0 — for example \"10s\"",
                "store: a coarser resolution is kept for less time than a finer one — keep retention_raw <= retention_1m <= retention_1h (defaults 24h, 30days, 365days)",
            ]
        );
    }

    #[test]
    fn kafka_filter_regexes_are_checked() {
        let errors = errors_of(
            "[kafka.k]\nbootstrap = \"a:1\"\ngroups_allow = [\"^ok-.*\", \"(\"]\ntopics_deny = [\"[\"]\n",
        );
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with("kafka.k.groups_allow[1]: invalid regex \"(\""),
            "{errors:#?}"
        );
        assert!(
            errors[1].starts_with("kafka.k.topics_deny[0]: invalid regex \"[\""),
            "{errors:#?}"
        );
        let errors = errors_of("[kafka.k]\nbootstrap = \"a:1\"\nverdict_window = 1\n");
        assert_eq!(
            errors,
            vec![
                "kafka.k.verdict_window: 1 is too small: a verdict compares at least 2 observations — use 2 or more (default 10)"
            ]
        );
        let errors =
            errors_of("[kafka.k]\nbootstrap = \"a:1\"\nmetrics_granularity = \"topics\"\n");
        assert_eq!(
            errors,
            vec!["kafka.k.metrics_granularity: unknown value \"topics\" — did you mean \"topic\"?"]
        );
    }

    #[test]
    fn mqtt_watcher_keys_are_checked() {
        let errors = errors_of(
            "[mqtt.m]\nurl = \"mqtt://h\"\nmax_topics = 0\nsubscribe_qos = 3\nexport_filters = [\"a/#/b\"]\nmax_packet_size = 10\nreconnect_min = \"2s\"\nreconnect_max = \"1s\"\n",
        );
        for fragment in [
            "mqtt.m.max_topics: must be more than 0",
            "mqtt.m.subscribe_qos: expected 0, 1 or 2, got 3",
            "mqtt.m.export_filters[0]: '#' must be the whole last level",
            "mqtt.m.max_packet_size: expected 1024 to 268435455 bytes, got 10",
            "mqtt.m.reconnect_max: must be at least reconnect_min",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(fragment)),
                "missing {fragment:?} in {errors:#?}"
            );
        }
        let config = parse("t", "[mqtt.m]\nurl = \"mqtt://h\"\n", []).unwrap();
        let m = &config.mqtt["m"];
        assert_eq!(
            (m.max_topics, m.subscribe_qos, m.subscribe_sys),
            (100_000, 2, true)
        );
        assert!(m.export_filters.is_empty());
        assert_eq!(m.reconnect_max, Duration::from_secs(30));
    }

    #[test]
    fn influx_v2_needs_org_bucket_and_token() {
        let errors = errors_of("[export.influx]\nurl = \"http://h:8086\"\nversion = 2\n");
        assert_eq!(
            errors,
            vec![
                "export.influx.org: required when version = 2",
                "export.influx.bucket: required when version = 2",
                "export.influx.token: required when version = 2",
            ]
        );
    }
}
