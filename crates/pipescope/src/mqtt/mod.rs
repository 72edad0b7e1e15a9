//! The MQTT watcher: one connection per configured broker, following the configured filters and
//! `$SYS/#`; its live state (topic tree, broker metrics, connection) is read by the JSON API
//! ([`api::router`]), the Prometheus collector ([`metrics::MqttCollector`]) and the bus sampler.

pub mod api;
pub mod metrics;
mod relay;
pub(crate) mod tls;
pub mod watcher;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pipescope_core::mqtt::{SysState, TopicTree};
use pipescope_core::{Clock, EpochMillis};
use serde::Serialize;

use crate::config::{MqttBroker, MqttProtocol};
use crate::sync::lock;

/// MqttConnection events kept per broker for the API.
const EVENTS_KEPT: usize = 50;

/// At most one log line (and connection event) a minute about skipped oversized messages.
const OVERSIZED_LOG_INTERVAL_MS: u64 = 60_000;

#[derive(Debug, Default)]
struct OversizedMessages {
    total: u64,
    logged_at_ms: Option<EpochMillis>,
    unlogged: u64,
}

/// Every watched broker, by name.
#[derive(Debug, Clone, Default)]
pub struct MqttState {
    brokers: Arc<BTreeMap<String, Arc<MqttBrokerState>>>,
}

impl MqttState {
    pub fn new(config: &BTreeMap<String, MqttBroker>, clock: Arc<dyn Clock>) -> Self {
        let brokers = config
            .iter()
            .map(|(name, broker)| {
                (
                    name.clone(),
                    Arc::new(MqttBrokerState::new(name, broker, clock.clone())),
                )
            })
            .collect();
        Self {
            brokers: Arc::new(brokers),
        }
    }

    pub fn broker(&self, name: &str) -> Option<&Arc<MqttBrokerState>> {
        self.brokers.get(name)
    }

    pub fn brokers(&self) -> impl Iterator<Item = &Arc<MqttBrokerState>> {
        self.brokers.values()
    }
}

/// Live state of one broker.
#[derive(Debug)]
pub struct MqttBrokerState {
    pub name: String,
    /// `mqtt://host:port`: never holds credentials.
    pub url: String,
    pub protocol: &'static str,
    pub filters: Vec<String>,
    pub export_filters: Vec<String>,
    pub sys_wait: Duration,
    pub clock: Arc<dyn Clock>,
    tree: Mutex<TopicTree>,
    sys: Mutex<SysState>,
    connection: Mutex<MqttConnection>,
    oversized: Mutex<OversizedMessages>,
}

impl MqttBrokerState {
    pub fn new(name: &str, config: &MqttBroker, clock: Arc<dyn Clock>) -> Self {
        Self {
            name: name.to_string(),
            url: config.url.to_string(),
            protocol: match config.protocol {
                MqttProtocol::V311 => "3.1.1",
                MqttProtocol::V5 => "5",
            },
            filters: config.filters.clone(),
            export_filters: config.export_filters.clone(),
            sys_wait: config.sys_wait,
            clock,
            tree: Mutex::new(TopicTree::new(config.max_topics)),
            sys: Mutex::new(SysState::default()),
            connection: Mutex::new(MqttConnection::default()),
            oversized: Mutex::new(OversizedMessages::default()),
        }
    }

    /// Messages over max_packet_size the watcher skipped.
    pub fn oversized_messages(&self) -> u64 {
        lock(&self.oversized).total
    }

    /// Counts a skipped message; logs it (topic and size) at most once a minute, with how many
    /// more were skipped since, so a flood of big messages cannot flood the log.
    pub fn oversized_message(&self, topic: &str, size: usize, max_packet_size: usize) {
        let now = self.clock.now_millis();
        let mut oversized = lock(&self.oversized);
        oversized.total += 1;
        if oversized
            .logged_at_ms
            .is_some_and(|at| now.saturating_sub(at) < OVERSIZED_LOG_INTERVAL_MS)
        {
            oversized.unlogged += 1;
            return;
        }
        let more = std::mem::take(&mut oversized.unlogged);
        oversized.logged_at_ms = Some(now);
        drop(oversized);
        let shown: String = topic.chars().take(200).collect();
        let cut = if shown.len() < topic.len() { "…" } else { "" };
        let since = if more > 0 {
            format!(" ({more} more skipped since the last report)")
        } else {
            String::new()
        };
        let message = format!(
            "skipped a {size}-byte message on {shown:?}{cut} from MQTT broker {} — over mqtt.{}.max_packet_size ({max_packet_size}); raise it to see such messages{since}",
            self.name, self.name
        );
        tracing::warn!(broker = %self.name, "{message}");
        self.connection()
            .push_event(now, ConnState::Connected, message);
    }

    pub fn tree(&self) -> MutexGuard<'_, TopicTree> {
        lock(&self.tree)
    }

    pub fn sys(&self) -> MutexGuard<'_, SysState> {
        lock(&self.sys)
    }

    pub fn connection(&self) -> MutexGuard<'_, MqttConnection> {
        lock(&self.connection)
    }

    /// Whether the broker publishes `$SYS`: `seen`, `none` (connected for `sys_wait` without
    /// any), or `waiting`.
    pub fn sys_status(&self) -> SysStatus {
        if self.sys().messages > 0 {
            return SysStatus::Seen;
        }
        let connection = self.connection();
        match connection.connected_total_ms(self.clock.now_millis()) {
            ms if ms >= self.sys_wait.as_millis() as u64 => SysStatus::None,
            _ => SysStatus::Waiting,
        }
    }
}

#[derive(utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SysStatus {
    Seen,
    None,
    Waiting,
}

#[derive(utoipa::ToSchema, Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnState {
    #[default]
    Connecting,
    Connected,
    /// Lost or never reached; retrying.
    Down,
    /// The broker refused our credentials (or our client id); retrying, slowly.
    Refused,
}

#[derive(utoipa::ToSchema, Debug, Clone, Serialize)]
pub struct ConnEvent {
    pub time_ms: EpochMillis,
    pub state: ConnState,
    pub message: String,
}

/// MqttConnection history of a broker, as the API shows it.
#[derive(utoipa::ToSchema, Debug, Clone, Default, Serialize)]
pub struct MqttConnection {
    pub state: ConnState,
    pub since_ms: Option<EpochMillis>,
    /// Successful connections (CONNACK accepted).
    pub connects: u64,
    /// Failed attempts since the last successful connection.
    pub failed_attempts: u64,
    /// Connections lost after having been up.
    pub outages: u64,
    /// Time spent down after having been up at least once, outages finished so far.
    pub outage_ms_total: u64,
    pub down_since_ms: Option<EpochMillis>,
    pub last_error: Option<String>,
    pub next_attempt_ms: Option<EpochMillis>,
    #[schema(value_type = Vec<ConnEvent>)]
    pub events: VecDeque<ConnEvent>,
    /// Time connected, before the current connection.
    #[serde(skip)]
    connected_ms_before: u64,
}

impl MqttConnection {
    fn push_event(&mut self, time_ms: EpochMillis, state: ConnState, message: String) {
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(ConnEvent {
            time_ms,
            state,
            message,
        });
    }

    /// Milliseconds spent connected, all connections together.
    pub fn connected_total_ms(&self, now: EpochMillis) -> u64 {
        let current = match (self.state, self.since_ms) {
            (ConnState::Connected, Some(since)) => now.saturating_sub(since),
            _ => 0,
        };
        self.connected_ms_before + current
    }

    pub(crate) fn connected(&mut self, now: EpochMillis) {
        if let Some(down) = self.down_since_ms.take() {
            self.outage_ms_total += now.saturating_sub(down);
        }
        self.state = ConnState::Connected;
        self.since_ms = Some(now);
        self.connects += 1;
        self.failed_attempts = 0;
        self.next_attempt_ms = None;
        let message = if self.connects > 1 {
            format!("reconnected (connection {})", self.connects)
        } else {
            "connected".to_string()
        };
        self.push_event(now, ConnState::Connected, message);
    }

    pub(crate) fn failed(
        &mut self,
        now: EpochMillis,
        state: ConnState,
        error: String,
        retry_in: Duration,
    ) {
        if self.state == ConnState::Connected {
            self.outages += 1;
            self.down_since_ms = Some(now);
            if let Some(since) = self.since_ms {
                self.connected_ms_before += now.saturating_sub(since);
            }
        }
        if self.state != state || self.since_ms.is_none() {
            self.since_ms = Some(now);
        }
        self.state = state;
        self.failed_attempts += 1;
        self.next_attempt_ms = Some(now + retry_in.as_millis() as u64);
        self.push_event(now, state, error.clone());
        self.last_error = Some(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipescope_core::ManualClock;

    fn broker(clock: &ManualClock) -> MqttBrokerState {
        let config = crate::config::parse(
            "t",
            "[mqtt.b]\nurl = \"mqtt://h\"\nsys_wait = \"10s\"\n",
            [],
        )
        .unwrap();
        MqttBrokerState::new("b", &config.mqtt["b"], Arc::new(clock.clone()))
    }

    #[test]
    fn oversized_messages_are_all_counted_and_reported_at_most_once_a_minute() {
        let clock = ManualClock::at(1_000);
        let b = broker(&clock);
        let long_topic = "t/".repeat(500);
        b.oversized_message(&long_topic, 20_000_000, 16_777_216);
        clock.advance(Duration::from_secs(59));
        b.oversized_message("big/2", 20_000_000, 16_777_216);
        b.oversized_message("big/3", 20_000_000, 16_777_216);
        clock.advance(Duration::from_secs(1));
        b.oversized_message("big/4", 20_000_000, 16_777_216);
        assert_eq!(b.oversized_messages(), 4);
        let events: Vec<String> = b
            .connection()
            .events
            .iter()
            .map(|e| e.message.clone())
            .collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[0].contains("skipped a 20000000-byte message on \"t/t/"));
        assert!(
            events[0].contains("…"),
            "a long topic is cut: {}",
            events[0]
        );
        assert!(events[0].len() < 400, "{}", events[0]);
        assert!(events[1].contains("\"big/4\""), "{}", events[1]);
        assert!(events[1].contains("(2 more skipped since the last report)"));
        assert!(events[1].contains("mqtt.b.max_packet_size (16777216)"));
    }

    #[test]
    fn outages_are_counted_and_timed_from_the_connection_history() {
        let mut c = MqttConnection::default();
        // Never up yet: failures are not outages.
        c.failed(
            500,
            ConnState::Down,
            "refused".into(),
            Duration::from_millis(250),
        );
        assert_eq!(
            (c.outages, c.failed_attempts, c.next_attempt_ms),
            (0, 1, Some(750))
        );
        c.connected(1_000);
        assert_eq!(
            (c.state, c.connects, c.failed_attempts),
            (ConnState::Connected, 1, 0)
        );
        c.failed(
            5_000,
            ConnState::Down,
            "lost".into(),
            Duration::from_secs(1),
        );
        c.failed(
            6_000,
            ConnState::Down,
            "still down".into(),
            Duration::from_secs(2),
        );
        assert_eq!(
            (c.outages, c.down_since_ms, c.since_ms),
            (1, Some(5_000), Some(5_000))
        );
        assert_eq!(c.connected_total_ms(7_000), 4_000);
        c.connected(9_000);
        assert_eq!((c.connects, c.outages, c.outage_ms_total), (2, 1, 4_000));
        assert_eq!(c.connected_total_ms(10_000), 5_000);
        assert_eq!(
            c.events.back().unwrap().message,
            "reconnected (connection 2)"
        );
        assert_eq!(c.last_error.as_deref(), Some("still down"));
        for i in 0..100 {
            c.failed(20_000 + i, ConnState::Down, "x".into(), Duration::ZERO);
        }
        assert_eq!(c.events.len(), EVENTS_KEPT);
    }

    #[test]
    fn sys_status_waits_for_sys_wait_of_connected_time() {
        let clock = ManualClock::at(1_000_000);
        let b = broker(&clock);
        assert_eq!(b.sys_status(), SysStatus::Waiting);
        b.connection().connected(clock.now_millis());
        clock.advance(Duration::from_secs(9));
        assert_eq!(b.sys_status(), SysStatus::Waiting);
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.sys_status(), SysStatus::None);
        b.sys()
            .record("$SYS/broker/uptime", b"5 seconds", clock.now_millis());
        assert_eq!(b.sys_status(), SysStatus::Seen);
    }
}
