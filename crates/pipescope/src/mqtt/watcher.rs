//! One broker's connection: connect, subscribe to the filters and `$SYS/#`, count every message,
//! and reconnect with exponential backoff and jitter when the connection fails (rumqttc would
//! retry in a tight loop on its own).

use std::sync::Arc;
use std::time::Duration;

use pipescope_core::backoff::Backoff;
use pipescope_core::mqtt::Message;
use pipescope_core::mqtt_filter;
use tokio::task::JoinHandle;

use super::{ConnState, MqttBrokerState, relay, tls};
use crate::bus::Bus;
use crate::config::{MqttBroker, MqttProtocol};

/// Starts the connection and the sampler of one broker.
pub fn spawn(state: Arc<MqttBrokerState>, config: MqttBroker, bus: Bus) -> Vec<JoinHandle<()>> {
    let sampler = tokio::spawn(sample_loop(state.clone(), bus, config.sample_interval));
    let connection = tokio::spawn(run(state, config));
    vec![connection, sampler]
}

/// Publishes the broker's samples on the bus every `interval`.
pub async fn sample_loop(state: Arc<MqttBrokerState>, bus: Bus, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        bus.publish(super::metrics::samples(&state));
    }
}

/// Watches one broker until the task is aborted.
pub async fn run(state: Arc<MqttBrokerState>, config: MqttBroker) {
    let tls = if config.url.tls {
        match tls::client_config(&state.name, config.tls.as_ref()) {
            Ok(tls) => Some(tls),
            Err(message) => {
                // Nothing to retry: the settings themselves are wrong.
                tracing::error!(broker = %state.name, "{message}");
                let now = state.clock.now_millis();
                state
                    .connection()
                    .failed(now, ConnState::Down, message, Duration::ZERO);
                state.connection().next_attempt_ms = None;
                return;
            }
        }
    } else {
        None
    };
    let handler = Handler::new(state, &config);
    match config.protocol {
        MqttProtocol::V311 => run_v4(handler, config, tls).await,
        MqttProtocol::V5 => {
            let transport = match tls {
                Some(tls) => {
                    rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls))
                }
                None => rumqttc::Transport::tcp(),
            };
            run_v5(handler, config, transport).await
        }
    }
}

fn client_id(state: &MqttBrokerState, config: &MqttBroker) -> String {
    config
        .client_id
        .clone()
        .unwrap_or_else(|| format!("pipescope-{}", state.name))
}

/// What both protocol versions share: counting, connection state, backoff.
struct Handler {
    state: Arc<MqttBrokerState>,
    backoff: Backoff,
    /// Configured filters that can match `$` topics (they name the `$` level themselves).
    dollar_filters: Vec<String>,
    username: Option<String>,
    connected_at: Option<std::time::Instant>,
    subscribe_sys: bool,
}

/// A connection up this long resets the reconnect backoff.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);

impl Handler {
    fn new(state: Arc<MqttBrokerState>, config: &MqttBroker) -> Self {
        Self {
            dollar_filters: config
                .filters
                .iter()
                .filter(|f| f.starts_with('$'))
                .cloned()
                .collect(),
            state,
            backoff: Backoff::new(config.reconnect_min, config.reconnect_max),
            username: config.username.clone(),
            connected_at: None,
            subscribe_sys: config.subscribe_sys,
        }
    }

    /// Every filter, and `$SYS/#` for the broker's metrics.
    fn subscriptions(&self) -> Vec<String> {
        let mut filters = self.state.filters.clone();
        if self.subscribe_sys && !filters.iter().any(|f| f == "$SYS/#") {
            filters.push("$SYS/#".to_string());
        }
        filters
    }

    /// Connected: the subscriptions go out now, so the rates count from now (what was published
    /// while not subscribed was not seen).
    fn connected(&mut self) {
        self.connected_at = Some(std::time::Instant::now());
        let now = self.state.clock.now_millis();
        self.state.tree().start_counting(now);
        let mut connection = self.state.connection();
        let again = connection.connects > 0;
        connection.connected(now);
        drop(connection);
        tracing::info!(broker = %self.state.name, url = %self.state.url,
            "{} the MQTT broker", if again { "reconnected to" } else { "connected to" });
    }

    #[inline]
    fn publish(&self, topic: &str, payload: &[u8], qos: u8, retain: bool) {
        let now = self.state.clock.now_millis();
        if topic.starts_with('$') {
            if topic.starts_with("$SYS/") {
                self.state.sys().record(topic, payload, now);
            }
            if !self
                .dollar_filters
                .iter()
                .any(|f| mqtt_filter::matches(f, topic))
            {
                return;
            }
        }
        self.state.tree().record(
            Message {
                topic,
                payload,
                qos,
                retain,
            },
            now,
        );
    }

    fn subscription_refused(&self, filter: &str, reason: &str) {
        let message = format!(
            "MQTT broker {} ({}) refused the subscription to {filter:?} ({reason})",
            self.state.name, self.state.url
        );
        tracing::warn!(broker = %self.state.name, "{message}");
        let now = self.state.clock.now_millis();
        let mut connection = self.state.connection();
        connection.push_event(now, ConnState::Connected, message.clone());
        connection.last_error = Some(message);
    }

    /// Records a failed or lost connection and waits before the next attempt.
    async fn failed(&mut self, state: ConnState, message: String) {
        // Only a connection that lasted starts the backoff over: a broker that accepts and then
        // drops us at once must not be reconnected to at the shortest delay forever.
        if let Some(at) = self.connected_at.take()
            && at.elapsed() >= STABLE_CONNECTION
        {
            self.backoff.reset();
        }
        let delay = self.backoff.next_delay_jittered(fastrand::f64());
        let now = self.state.clock.now_millis();
        let was_connected = self.state.connection().state == ConnState::Connected;
        self.state
            .connection()
            .failed(now, state, message.clone(), delay);
        let retry = format!("{:.1}s", delay.as_secs_f64());
        if state == ConnState::Refused {
            tracing::error!(broker = %self.state.name, retry_in = %retry, "{message}");
        } else if was_connected || self.backoff.attempts() == 1 {
            tracing::warn!(broker = %self.state.name, retry_in = %retry, "{message}");
        } else {
            tracing::debug!(broker = %self.state.name, retry_in = %retry, "{message}");
        }
        tokio::time::sleep(delay).await;
    }

    fn refused(&self, code: &str, credentials: bool) -> (ConnState, String) {
        let (name, url) = (&self.state.name, &self.state.url);
        let message = if credentials {
            let user = match &self.username {
                Some(user) => format!("user {user:?}"),
                None => "anonymous access".to_string(),
            };
            format!(
                "MQTT broker {name} ({url}) refused {user} ({code}) — check mqtt.{name}.username and mqtt.{name}.password"
            )
        } else {
            format!(
                "MQTT broker {name} ({url}) refused the connection ({code}) — check mqtt.{name}.client_id and mqtt.{name}.protocol"
            )
        };
        (ConnState::Refused, message)
    }

    fn io(&self, what: String) -> (ConnState, String) {
        let (name, url) = (&self.state.name, &self.state.url);
        let message = if self.state.connection().state == ConnState::Connected {
            format!("lost the connection to MQTT broker {name} at {url} ({what})")
        } else {
            format!(
                "cannot connect to MQTT broker {name} at {url} ({what}) — is the broker running?"
            )
        };
        (ConnState::Down, message)
    }

    fn tls(&self, what: String) -> (ConnState, String) {
        let (name, url) = (&self.state.name, &self.state.url);
        (
            ConnState::Down,
            format!(
                "TLS with MQTT broker {name} at {url} failed ({what}) — check mqtt.{name}.tls and the url's host name"
            ),
        )
    }
}

fn qos_v4(qos: u8) -> rumqttc::QoS {
    match qos {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

/// MQTT 3.1.1 through a [`relay::Relay`] that skips (and counts) messages over max_packet_size:
/// 3.1.1 cannot declare the limit to the broker, and rumqttc drops the connection on such a
/// message, which a broker re-sends on every resubscribe when it is retained.
async fn run_v4(mut handler: Handler, config: MqttBroker, tls: Option<Arc<rustls::ClientConfig>>) {
    use rumqttc::{Event, Packet, SubscribeFilter, SubscribeReasonCode};
    let upstream = relay::Upstream {
        host: config.url.host.clone(),
        port: config.url.port,
        tls,
    };
    let counted = handler.state.clone();
    let max_packet_size = config.max_packet_size;
    let relay = match relay::Relay::start(upstream, max_packet_size, move |dropped| {
        counted.oversized_message(&dropped.topic, dropped.size, max_packet_size)
    }) {
        Ok(relay) => relay,
        Err(e) => {
            let message = format!(
                "cannot watch MQTT broker {}: no local socket for its connection ({e}) — is the temporary directory ({}) writable?",
                handler.state.name,
                std::env::temp_dir().display()
            );
            tracing::error!(broker = %handler.state.name, "{message}");
            let now = handler.state.clock.now_millis();
            let mut connection = handler.state.connection();
            connection.failed(now, ConnState::Down, message, Duration::ZERO);
            connection.next_attempt_ms = None;
            return;
        }
    };
    let mut options = rumqttc::MqttOptions::new(
        client_id(&handler.state, &config),
        relay.socket_path().to_string_lossy(),
        0,
    );
    options
        .set_keep_alive(config.keep_alive)
        .set_clean_session(config.clean_session)
        .set_max_packet_size(config.max_packet_size, config.max_packet_size)
        .set_transport(rumqttc::Transport::unix());
    if let Some(user) = &config.username {
        let password = config.password.as_ref().map(|p| p.expose()).unwrap_or("");
        options.set_credentials(user.clone(), password);
    }
    let filters = handler.subscriptions();
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, filters.len() + 16);
    let mut sent_filters: Vec<String> = Vec::new();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                handler.publish(&p.topic, &p.payload, p.qos as u8, p.retain);
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                handler.connected();
                let subscribe = filters
                    .iter()
                    .map(|f| SubscribeFilter::new(f.clone(), qos_v4(config.subscribe_qos)));
                if let Err(e) = client.try_subscribe_many(subscribe) {
                    handler.subscription_refused("(all)", &format!("cannot send SUBSCRIBE: {e}"));
                }
                sent_filters = filters.clone();
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                for (code, filter) in ack.return_codes.iter().zip(&sent_filters) {
                    if *code == SubscribeReasonCode::Failure {
                        handler.subscription_refused(filter, "Failure");
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                let (state, message) = match (&e, relay.take_error()) {
                    (_, Some(relay::UpstreamError::Io(what))) => handler.io(what),
                    (_, Some(relay::UpstreamError::Tls(what))) => handler.tls(what),
                    (e, None) => classify_v4(&handler, e),
                };
                handler.failed(state, message).await;
            }
        }
    }
}

fn classify_v4(handler: &Handler, e: &rumqttc::ConnectionError) -> (ConnState, String) {
    use rumqttc::{ConnectReturnCode, ConnectionError, StateError};
    match e {
        ConnectionError::ConnectionRefused(
            code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
        ) => handler.refused(&format!("{code:?}"), true),
        ConnectionError::ConnectionRefused(code) => handler.refused(&format!("{code:?}"), false),
        ConnectionError::Io(io) => handler.io(io.to_string()),
        ConnectionError::MqttState(StateError::Io(io)) => handler.io(io.to_string()),
        ConnectionError::Tls(tls) => handler.tls(tls.to_string()),
        other => handler.io(other.to_string()),
    }
}

async fn run_v5(mut handler: Handler, config: MqttBroker, transport: rumqttc::Transport) {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Filter, Packet, SubscribeReasonCode};
    use rumqttc::v5::{ConnectionError, Event, StateError};
    let mut options = rumqttc::v5::MqttOptions::new(
        client_id(&handler.state, &config),
        config.url.host.clone(),
        config.url.port,
    );
    options
        .set_keep_alive(config.keep_alive)
        .set_clean_start(config.clean_session)
        .set_max_packet_size(Some(
            u32::try_from(config.max_packet_size).unwrap_or(u32::MAX),
        ))
        .set_transport(transport);
    if let Some(user) = &config.username {
        let password = config.password.as_ref().map(|p| p.expose()).unwrap_or("");
        options.set_credentials(user.clone(), password);
    }
    let qos = match config.subscribe_qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let filters = handler.subscriptions();
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, filters.len() + 16);
    let mut sent_filters: Vec<String> = Vec::new();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let topic = String::from_utf8_lossy(&p.topic);
                handler.publish(&topic, &p.payload, p.qos as u8, p.retain);
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                handler.connected();
                let subscribe = filters.iter().map(|f| Filter::new(f.clone(), qos));
                if let Err(e) = client.try_subscribe_many(subscribe) {
                    handler.subscription_refused("(all)", &format!("cannot send SUBSCRIBE: {e}"));
                }
                sent_filters = filters.clone();
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                for (code, filter) in ack.return_codes.iter().zip(&sent_filters) {
                    if !matches!(code, SubscribeReasonCode::Success(_)) {
                        handler.subscription_refused(filter, &format!("{code:?}"));
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                let (state, message) = match &e {
                    ConnectionError::ConnectionRefused(
                        code @ (ConnectReturnCode::BadUserNamePassword
                        | ConnectReturnCode::NotAuthorized
                        | ConnectReturnCode::BadAuthenticationMethod),
                    ) => handler.refused(&format!("{code:?}"), true),
                    ConnectionError::ConnectionRefused(code) => {
                        handler.refused(&format!("{code:?}"), false)
                    }
                    ConnectionError::Io(io) => handler.io(io.to_string()),
                    ConnectionError::MqttState(StateError::Io(io)) => handler.io(io.to_string()),
                    ConnectionError::Tls(tls) => handler.tls(tls.to_string()),
                    other => handler.io(other.to_string()),
                };
                handler.failed(state, message).await;
            }
        }
    }
}
