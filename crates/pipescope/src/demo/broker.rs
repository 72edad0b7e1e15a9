//! The demo's embedded MQTT broker: rumqttd on a loopback port, publishing mosquitto-style
//! `$SYS/broker/...` metrics every second so the MQTT pages have broker figures to show.
//!
//! rumqttd has no `$SYS` tree of its own. Its router meters give the number of connections;
//! a local link subscribed to `#` counts the messages clients publish (exactly, unlike the
//! meters' per-interval publish counts, which would include our own `$SYS` messages).
//! rumqttd 0.20 refuses `$SYS` subscriptions as published: the workspace uses a patched copy
//! (vendor/rumqttd/PIPESCOPE-PATCH.md).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::meters::MetersLink;
use rumqttd::{Broker, Config, ConnectionSettings, Meter, Notification, RouterConfig};

/// The version string published as `$SYS/broker/version` (the patched crate's version).
pub const RUMQTTD_VERSION: &str = "0.20.0";
const SYS_CLIENT_ID: &str = "pipescope-demo-sys";
const SYS_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "cannot listen for MQTT on {addr} ({source}) — is another broker using the port? Pick another with --mqtt-port"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the embedded MQTT broker did not start: {0}")]
    Start(String),
    #[error("the embedded MQTT broker does not accept connections on {addr} after {timeout:?}")]
    NotReady { addr: SocketAddr, timeout: Duration },
}

/// A running rumqttd: MQTT 3.1.1 on one port, MQTT 5 on another (rumqttd serves each version
/// on its own listener; both share one router, so clients of either version see each other's
/// messages). Dropping it stops the `$SYS` publisher; rumqttd itself has no way to stop its
/// server threads, so the broker lives until the process exits.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    v5_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    sys: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts the broker on `addr` (port 0: a free port) and waits until it accepts connections.
    pub fn start(addr: SocketAddr) -> Result<Self, BrokerError> {
        // rumqttd binds inside its own thread and only logs a failure there: bind here first so
        // a taken port is an error the caller sees (and port 0 becomes a real port).
        let addr = TcpListener::bind(addr)
            .and_then(|l| l.local_addr())
            .map_err(|source| BrokerError::Bind { addr, source })?;
        let v5_wanted = SocketAddr::new(addr.ip(), 0);
        let v5_addr = TcpListener::bind(v5_wanted)
            .and_then(|l| l.local_addr())
            .map_err(|source| BrokerError::Bind {
                addr: v5_wanted,
                source,
            })?;
        let mut broker = Broker::new(config(addr, v5_addr));
        let meters = broker
            .meters()
            .map_err(|e| BrokerError::Start(format!("no meters link ({e})")))?;
        let (mut tx, rx) = broker
            .link(SYS_CLIENT_ID)
            .map_err(|e| BrokerError::Start(format!("no local link ({e})")))?;
        tx.subscribe("#")
            .map_err(|e| BrokerError::Start(format!("cannot subscribe the local link ({e})")))?;
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!("the embedded MQTT broker stopped: {e}");
                }
            })
            .map_err(|e| BrokerError::Start(format!("cannot start its thread ({e})")))?;
        let timeout = Duration::from_secs(10);
        let deadline = Instant::now() + timeout;
        while !mqtt_connack(addr) {
            if Instant::now() > deadline {
                return Err(BrokerError::NotReady { addr, timeout });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let sys = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("mqtt-broker-sys".into())
                .spawn(move || SysPublisher::new(tx, rx, meters).run(&stop))
                .map_err(|e| BrokerError::Start(format!("cannot start the $SYS thread ({e})")))?
        };
        tracing::info!(%addr, %v5_addr, "embedded MQTT broker (rumqttd {RUMQTTD_VERSION}) is listening (3.1.1, 5)");
        Ok(Self {
            addr,
            v5_addr,
            stop,
            sys: Some(sys),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mqtt://127.0.0.1:<port>` (MQTT 3.1.1).
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// The MQTT 5 listener.
    pub fn v5_addr(&self) -> SocketAddr {
        self.v5_addr
    }

    /// `mqtt://127.0.0.1:<port>` of the MQTT 5 listener.
    pub fn v5_url(&self) -> String {
        format!("mqtt://{}", self.v5_addr)
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sys) = self.sys.take() {
            let _ = sys.join();
        }
    }
}

fn config(addr: SocketAddr, v5_addr: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        // Big enough for the MQTT watcher's 256 KiB payload tests.
        max_payload_size: 1 << 20,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = |name: &str, listen| rumqttd::ServerSettings {
        name: name.into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: connections.clone(),
    };
    // MetricSettings' field is private: build that part from its serde form. Alerts are set
    // too because rumqttd's timer thread panics when only meters are.
    let metrics = serde_json::from_value(serde_json::json!({
        "meters": {"push_interval": 1},
        "alerts": {"push_interval": 1},
    }))
    .expect("a valid rumqttd metrics setting");
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: 200,
            // rumqttd keeps what is published in memory, a log of segments per subscribed
            // filter, until the oldest segment is dropped, and a stored message costs several
            // times the topic and payload bytes the segment size counts: with 2 MB × 4 the
            // demo's memory grew by 100 MB in its first 12 minutes (scripts/soak). 1 MiB × 2
            // still holds over a minute of the busiest filter, more than a subscriber that
            // keeps up needs.
            max_segment_size: 1024 * 1024,
            max_segment_count: 2,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server("demo-v4", addr))])),
        v5: Some(HashMap::from([(
            "1".to_string(),
            server("demo-v5", v5_addr),
        )])),
        metrics: Some(metrics),
        ..Config::default()
    }
}

/// What the `$SYS` tree says, as mosquitto names it where the meaning matches.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SysFigures {
    pub uptime_s: u64,
    /// Clients connected over the network (our own local link is not counted).
    pub clients_connected: usize,
    pub clients_maximum: usize,
    /// PUBLISH packets received from clients (mosquitto's `messages/received` also counts
    /// control packets; rumqttd does not meter those).
    pub publish_received: u64,
    /// Payload bytes of those PUBLISH packets.
    pub publish_bytes_received: u64,
}

impl SysFigures {
    /// `(topic, payload)` pairs, published under `$SYS/broker/`.
    pub fn messages(&self) -> Vec<(String, String)> {
        [
            ("version", format!("rumqttd version {RUMQTTD_VERSION}")),
            ("uptime", format!("{} seconds", self.uptime_s)),
            ("clients/connected", self.clients_connected.to_string()),
            ("clients/maximum", self.clients_maximum.to_string()),
            ("messages/received", self.publish_received.to_string()),
            (
                "publish/messages/received",
                self.publish_received.to_string(),
            ),
            (
                "publish/bytes/received",
                self.publish_bytes_received.to_string(),
            ),
        ]
        .into_iter()
        .map(|(name, value)| (format!("$SYS/broker/{name}"), value))
        .collect()
    }
}

struct SysPublisher {
    tx: LinkTx,
    rx: LinkRx,
    meters: MetersLink,
    started: Instant,
    figures: SysFigures,
}

impl SysPublisher {
    fn new(tx: LinkTx, rx: LinkRx, meters: MetersLink) -> Self {
        Self {
            tx,
            rx,
            meters,
            started: Instant::now(),
            figures: SysFigures::default(),
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut next = Instant::now() + SYS_INTERVAL;
        while !stop.load(Ordering::Relaxed) {
            if !self.count_until(next) {
                tracing::warn!("the embedded MQTT broker's router is gone; $SYS stops");
                return;
            }
            // After a stall, start again from now rather than publishing a burst to catch up.
            next = (next + SYS_INTERVAL).max(Instant::now());
            self.read_meters();
            self.figures.uptime_s = self.started.elapsed().as_secs();
            for (topic, payload) in self.figures.messages() {
                if let Err(e) = self.tx.publish(topic, payload) {
                    tracing::warn!("cannot publish $SYS to the embedded broker ({e}); $SYS stops");
                    return;
                }
            }
        }
    }

    /// Counts the messages clients publish until `deadline`; false when the router is gone.
    fn count_until(&mut self, deadline: Instant) -> bool {
        loop {
            match self.rx.recv_deadline(deadline) {
                Ok(Some(Notification::Forward(forward))) => {
                    if !forward.publish.topic.starts_with(b"$") {
                        self.figures.publish_received += 1;
                        self.figures.publish_bytes_received += forward.publish.payload.len() as u64;
                    }
                }
                // The router paused this link because its buffer was full: ask for more.
                Ok(Some(Notification::Unschedule)) => {
                    if self.rx.ready().is_err() {
                        return false;
                    }
                }
                Ok(_) => {}
                // A timeout at the deadline is the normal end; an error before it means the
                // router's channel closed.
                Err(_) => return Instant::now() >= deadline,
            }
        }
    }

    fn read_meters(&mut self) {
        // Router meters come only for intervals with publishes; ours make one every second.
        while let Ok(batch) = self.meters.recv() {
            for meter in batch {
                if let Meter::Router(_, router) = meter {
                    // The router counts local links too: ours is not a client.
                    self.figures.clients_connected = router.total_connections.saturating_sub(1);
                    self.figures.clients_maximum = self
                        .figures
                        .clients_maximum
                        .max(self.figures.clients_connected);
                }
            }
        }
    }
}

/// Whether an MQTT 3.1.1 CONNECT to `addr` gets a CONNACK that accepts it (then closes: with a
/// DISCONNECT first, rumqttd logs an error about a connection already gone).
pub fn mqtt_connack(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let client_id = b"pipescope-probe";
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30];
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    let mut connack = [0u8; 4];
    stream.write_all(&packet).is_ok()
        && stream.read_exact(&mut connack).is_ok()
        && connack[0] == 0x20
        && connack[3] == 0
}
