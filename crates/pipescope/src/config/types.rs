//! The configuration's tables as typed structs, with their defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use pipescope_core::quality::drift::DriftConfig;
use pipescope_core::quality::rules::{QualityTopicConfig, RuleConfig};

use crate::alerts::notify::{ReceiverConfig, RootRoute, RouteConfig};

use super::values::{HostPort, MqttUrl, Secret, host_port_list, socket_addr};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub web: Web,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub kafka: BTreeMap<String, KafkaCluster>,
    #[serde(default)]
    pub mqtt: BTreeMap<String, MqttBroker>,
    #[serde(default)]
    pub export: Export,
    /// Observed flows: the hops whose trace headers are read for completeness.
    #[serde(default)]
    pub flows: BTreeMap<String, FlowConfig>,
    /// Probes: the monitor's own traced records, off unless configured.
    #[serde(default)]
    pub probes: Probes,
    /// Data quality of topics: profiles, rules and drift of their payloads.
    #[serde(default)]
    pub quality: BTreeMap<String, QualityConfig>,
    /// Pipeline parts the monitor watches through their `/health` and `/metrics`
    /// (`[watched_parts.<name>]`; not to be confused with a part's own table, which holds its
    /// flags).
    #[serde(default)]
    pub watched_parts: BTreeMap<String, WatchedPart>,
    /// Alerts the monitor evaluates itself, and where their notifications go (docs/alerts.md).
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Bounds on the series the store and InfluxDB receive (docs/scale.md "Series and disk").
    #[serde(default)]
    pub series: SeriesConfig,
}

/// `[series]`: the cap on series per source for the store and InfluxDB.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesConfig {
    /// Series one source (a Kafka cluster, an MQTT broker, a flow) may send to the store and
    /// InfluxDB; samples of new series beyond it are dropped and counted.
    #[serde(default = "default_max_series_per_source")]
    pub max_per_source: usize,
    /// A series not seen for this long frees its place under `max_per_source`.
    #[serde(default = "default_series_retire_after", with = "humantime_serde")]
    pub retire_after: Duration,
}

impl Default for SeriesConfig {
    fn default() -> Self {
        Self {
            max_per_source: default_max_series_per_source(),
            retire_after: default_series_retire_after(),
        }
    }
}

fn default_max_series_per_source() -> usize {
    pipescope_core::series_budget::DEFAULT_MAX_SERIES_PER_SOURCE
}

fn default_series_retire_after() -> Duration {
    Duration::from_millis(pipescope_core::series_budget::DEFAULT_RETIRE_AFTER_MS)
}

/// `[watched_parts.<name>]`: a running pipeline part's HTTP address (its `--listen`). The
/// monitor reads its `/health` and `/metrics` every `interval` (docs/operations.md "Health").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedPart {
    /// `http://host:port` of the part's `--listen`.
    pub url: String,
    #[serde(default = "default_part_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How long one request may take before the part counts as down.
    #[serde(default = "default_part_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_part_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_part_timeout() -> Duration {
    Duration::from_secs(5)
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
    /// Host names (`name` or `name:port`) the server answers to besides IP addresses and
    /// `localhost`: a name not listed is refused, so a rebound DNS name cannot read the API.
    /// `"*"` turns the check off.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose pages may send state-changing requests (POST
    /// `/write`) besides the portal's own. `"*"` turns the check off.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl Default for Web {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            auth: WebAuth::None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
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
pub struct StoreConfig {
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
    /// Bytes the store's database may take ("2GiB", or a number of bytes); past it the oldest
    /// raw data is dropped first, then the oldest 1-minute roll-ups. None by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_disk_size: Option<super::values::ByteSize>,
    /// Move a corrupt database aside and start empty: set by `pipescope run
    /// --move-corrupt-store-aside` for one start, never by the file.
    #[serde(skip)]
    pub move_corrupt_aside: bool,
    /// Where `[quality.X] report_every` writes its HTML reports; default: `reports` beside
    /// `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reports_dir: Option<PathBuf>,
}

impl StoreConfig {
    /// The quality reports' directory: `reports_dir`, or `reports` beside the store's.
    pub fn reports_dir(&self) -> PathBuf {
        self.reports_dir
            .clone()
            .unwrap_or_else(|| self.path.with_file_name("reports"))
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: default_store_path(),
            retention_raw: default_retention_raw(),
            retention_1m: default_retention_1m(),
            retention_1h: default_retention_1h(),
            max_disk_size: None,
            move_corrupt_aside: false,
            reports_dir: None,
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
    /// Which per-partition series reach the store and InfluxDB (not `/metrics`): `"top"` (the
    /// partitions allowed below and the `partition_top_k` most lagging and fastest; every
    /// partition while the cluster has at most `partition_top_k`), `"all"` or `"none"`.
    #[serde(default)]
    pub partition_series: PartitionSeriesMode,
    /// Regexes over topic names whose partitions' series always reach the store and InfluxDB.
    #[serde(default)]
    pub partition_series_allow: Vec<String>,
    /// Regexes over group names whose group-partition series always reach them.
    #[serde(default)]
    pub partition_series_groups_allow: Vec<String>,
    /// K of `partition_series = "top"`: partitions kept by lag, and as many by rate.
    #[serde(default = "default_partition_top_k")]
    pub partition_top_k: usize,
    /// How committed offsets are read: asked per group (OffsetFetch), read from
    /// `__consumer_offsets`, or chosen by the cluster's size (docs/scale.md).
    #[serde(default)]
    pub committed_offsets: CommittedOffsetsMode,
}

/// `committed_offsets`: where a scrape's committed offsets come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommittedOffsetsMode {
    /// `offsets_topic` when the cluster has `__consumer_offsets` and more than
    /// `AUTO_OFFSETS_TOPIC_GROUPS` groups, else `offset_fetch`.
    #[default]
    Auto,
    OffsetFetch,
    /// Read `__consumer_offsets`; OffsetFetch for a scrape while the reader has not caught up.
    OffsetsTopic,
}

fn default_partition_top_k() -> usize {
    pipescope_core::series_budget::DEFAULT_PARTITION_TOP_K
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionSeriesMode {
    #[default]
    Top,
    All,
    None,
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
    /// `mqtt://host[:1883]` or `mqtts://host[:8883]` (all the forms: [`MqttUrl`]).
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

/// One observed flow (`[flows.<name>]`): hops in pipeline order; an edge joins each hop to the
/// next (docs/completeness.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    pub hops: Vec<FlowHop>,
    /// How long a gap may stay open before it is loss (for an edge: how long the next hop may
    /// take).
    #[serde(default = "default_flow_grace", with = "humantime_serde")]
    pub grace: Duration,
    /// How long lost gaps are remembered, so a late arrival still un-loses them.
    #[serde(default = "default_flow_horizon", with = "humantime_serde")]
    pub horizon: Duration,
    /// Streams (origin, partition or MQTT topic) tracked per hop and per edge.
    #[serde(default = "default_flow_max_streams")]
    pub max_streams: usize,
    /// Origin id prefixes that name an origin kind (the only origin label of the figures).
    #[serde(default)]
    pub kind_prefixes: Vec<String>,
    /// Share the flow's Kafka hops between monitor instances configured alike: off unless set
    /// (docs/completeness.md "Sharing a flow between monitors").
    #[serde(default)]
    pub share: Option<FlowShare>,
}

/// `share = { group = "pipescope-flow-machines" }`: the flow's Kafka hops are read in this
/// consumer group (it appears on the cluster, with committed offsets), so instances split the
/// partitions; a partition's streams move between them through `handover_topic`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FlowShare {
    /// The consumer group the instances read in (each Kafka hop as `<group>.<hop index>`).
    pub group: String,
    /// The compacted topic the streams of moving partitions are handed over through; created
    /// (1 partition, cleanup.policy=compact) if missing.
    #[serde(default = "default_handover_topic")]
    pub handover_topic: String,
}

fn default_handover_topic() -> String {
    "pipescope-handover".to_string()
}

/// `{ mqtt = "<broker>", filter = "machine/#" }` or `{ kafka = "<cluster>", topic = "t" }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlowHop {
    /// An `[mqtt.<name>]` broker of this file.
    #[serde(default)]
    pub mqtt: Option<String>,
    /// The MQTT topic filter read there (QoS 1, MQTT v5).
    #[serde(default)]
    pub filter: Option<String>,
    /// A `[kafka.<name>]` cluster of this file.
    #[serde(default)]
    pub kafka: Option<String>,
    /// The Kafka topic read there (every partition, from its end, no consumer group).
    #[serde(default)]
    pub topic: Option<String>,
    /// A processor's output topic: count the input records each record names in its
    /// `pipescope-inputs` header (docs/trace-headers.md), not the record's own trace, so the
    /// edge from the processor's input topic says what went missing or was doubled inside it.
    #[serde(default)]
    pub inputs: bool,
}

fn default_flow_grace() -> Duration {
    Duration::from_millis(pipescope_core::completeness::CompletenessConfig::default().grace_ms)
}

fn default_flow_horizon() -> Duration {
    Duration::from_millis(pipescope_core::completeness::CompletenessConfig::default().horizon_ms)
}

fn default_flow_max_streams() -> usize {
    pipescope_core::completeness::CompletenessConfig::default().max_streams
}

/// `[probes]`: probes the monitor runs itself (docs/completeness.md "Probes").
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Probes {
    /// `[probes.kafka.<cluster>]`: a probe topic on an `[kafka.<cluster>]` of this file.
    #[serde(default)]
    pub kafka: BTreeMap<String, KafkaProbe>,
    /// `[probes.mqtt.<broker>]`: a probe topic on an `[mqtt.<broker>]` of this file.
    #[serde(default)]
    pub mqtt: BTreeMap<String, MqttProbe>,
    /// `[probes.bridge.<name>]`: published on MQTT, read from the Kafka topic a bridge maps it to.
    #[serde(default)]
    pub bridge: BTreeMap<String, BridgeProbe>,
}

/// An MQTT probe: every interval one traced QoS 1 message on `topic`, read back through its own
/// subscription.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttProbe {
    /// The topic published and subscribed to (no wildcards).
    #[serde(default = "default_mqtt_probe_topic")]
    pub topic: String,
    #[serde(default = "default_probe_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// A message without a PUBACK within this long counts as unavailable.
    #[serde(default = "default_probe_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_mqtt_probe_topic() -> String {
    "pipescope/probe".to_string()
}

/// A probe through a bridge: traced QoS 1 messages on `mqtt_topic` of broker `mqtt`, read back
/// from `kafka_topic` of cluster `kafka`, the topic the bridge maps them to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeProbe {
    /// An `[mqtt.<name>]` of this file.
    pub mqtt: String,
    /// A topic the bridge's mapping covers (no wildcards).
    pub mqtt_topic: String,
    /// A `[kafka.<name>]` of this file.
    pub kafka: String,
    /// The Kafka topic the bridge writes that MQTT topic to.
    pub kafka_topic: String,
    #[serde(default = "default_probe_interval", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "default_probe_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// A Kafka probe: every interval a traced record to every partition of `topic`, read back.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaProbe {
    /// The probe topic; created if missing.
    #[serde(default = "default_probe_topic")]
    pub topic: String,
    /// How often a record goes to each partition.
    #[serde(default = "default_probe_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Partitions of the topic when the probe creates it (default: one per broker).
    #[serde(default)]
    pub partitions: Option<u32>,
    /// A record not acknowledged within this long counts as unavailable.
    #[serde(default = "default_probe_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// An idempotent producer (the default: a retried record is never written twice). Off
    /// only for brokers that mishandle it (docs/brokers.md: tansu 0.6's storage can panic on
    /// an idempotent producer's retry after the broker froze).
    #[serde(default = "default_probe_idempotent")]
    pub idempotent: bool,
}

fn default_probe_idempotent() -> bool {
    true
}

fn default_probe_topic() -> String {
    "pipescope-probe".to_string()
}

fn default_probe_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_probe_timeout() -> Duration {
    Duration::from_secs(5)
}

/// `[quality.<name>]`: a Kafka topic or an MQTT filter whose payloads the monitor profiles and
/// checks (docs/quality-rules.md "The live observer"). The source, `rules` and `drift` are the
/// core's [`QualityTopicConfig`]; the rest says how the observer keeps its windows.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QualityConfig {
    #[serde(default)]
    pub kafka: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub mqtt: Option<String>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub drift: DriftConfig,
    /// Length of the tumbling windows profiles are kept over and drift is compared between.
    #[serde(default = "default_quality_window", with = "humantime_serde")]
    pub window: Duration,
    /// Profile one record in N (rules check every record).
    #[serde(default = "default_quality_sample")]
    pub sample: u64,
    /// Field paths profiled per window; values of further paths are only counted.
    #[serde(default = "default_quality_max_fields")]
    pub max_fields: usize,
    /// Write an HTML profile report of the windows closed in each such span (off when absent).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub report_every: Option<Duration>,
    /// Reports kept of this topic; older ones are deleted.
    #[serde(default = "default_keep_reports")]
    pub keep_reports: usize,
}

fn default_keep_reports() -> usize {
    48
}

fn default_quality_window() -> Duration {
    Duration::from_secs(60)
}

fn default_quality_sample() -> u64 {
    1
}

fn default_quality_max_fields() -> usize {
    256
}

impl QualityConfig {
    /// The part the core checks and compiles.
    pub fn topic_config(&self) -> QualityTopicConfig {
        QualityTopicConfig {
            kafka: self.kafka.clone(),
            topic: self.topic.clone(),
            mqtt: self.mqtt.clone(),
            filter: self.filter.clone(),
            rules: self.rules.clone(),
            drift: self.drift.clone(),
        }
    }
}

/// `[alerts]`: the rules the monitor evaluates (and, later in the file, where it sends them).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// How often every rule is evaluated over the live state.
    #[serde(default = "default_evaluate_every", with = "humantime_serde")]
    pub evaluate_every: Duration,
    /// How long a resolved alert stays listed (API, portal).
    #[serde(default = "default_keep_resolved", with = "humantime_serde")]
    pub keep_resolved: Duration,
    /// Alert instances kept per rule (one per group, topic…); more are dropped and counted.
    #[serde(default = "default_max_instances_per_rule")]
    pub max_instances_per_rule: usize,
    /// The portal's address as its users reach it, for the links in notifications
    /// (`generatorURL`); `http://<web.listen>` when absent.
    #[serde(default)]
    pub external_url: Option<String>,
    #[serde(default)]
    pub rules: BTreeMap<String, AlertRuleConfig>,
    #[serde(default)]
    pub receivers: BTreeMap<String, ReceiverConfig>,
    /// What no route takes, and the grouping and timing every route inherits.
    #[serde(default)]
    pub route: RootRoute,
    /// Tried in order: the first that matches takes an alert, unless it says `continue`.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            evaluate_every: default_evaluate_every(),
            keep_resolved: default_keep_resolved(),
            max_instances_per_rule: default_max_instances_per_rule(),
            external_url: None,
            rules: BTreeMap::new(),
            receivers: BTreeMap::new(),
            route: RootRoute::default(),
            routes: Vec::new(),
        }
    }
}

fn default_evaluate_every() -> Duration {
    Duration::from_secs(15)
}

fn default_keep_resolved() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_max_instances_per_rule() -> usize {
    1000
}

/// `[alerts.rules.<name>]`: a kind with its settings, and what every rule has.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AlertRuleConfig {
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for", default, with = "humantime_serde")]
    pub for_duration: Duration,
    #[serde(default = "default_severity")]
    pub severity: pipescope_core::alerts::Severity,
    /// Added to every alert of the rule (`team = "payments"` routes it).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `{label}` and `{value}` are filled in; the kind's own summary when absent.
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(flatten)]
    pub kind: crate::alerts::kinds::AlertKindConfig,
}

fn default_severity() -> pipescope_core::alerts::Severity {
    pipescope_core::alerts::Severity::Warning
}
