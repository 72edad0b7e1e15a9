//! The portal's live feed: events derived from the watchers' states, kept in a bounded ring
//! and broadcast with "new data" notifications (at most one per second per source) to every
//! open `/api/v1/live` stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipescope_core::live::events::{
    self, Event, EventRing, KafkaBrokerPoint, KafkaPoint, MqttPoint, Throttle,
};
use pipescope_core::{Clock, EpochMillis};
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::kafka::{ClusterState, LiveState};
use crate::mqtt::{ConnState, MqttBrokerState, MqttState};
use crate::sync::lock;

/// Events kept for `/api/v1/events`.
pub const EVENTS_KEPT: usize = 1_000;
/// Messages a slow live stream may fall behind before it skips some.
const STREAM_BUFFER: usize = 1_024;
/// How often the MQTT watchers' figures are looked at.
const MQTT_LOOK_INTERVAL: Duration = Duration::from_secs(1);

/// `event: update` data: a source has new data.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Update {
    pub at: EpochMillis,
    /// `kafka/<cluster>` or `mqtt/<broker>`.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LiveMessage {
    Update(Update),
    Event(Event),
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Arc<dyn Clock>,
    ring: Mutex<EventRing>,
    throttle: Mutex<Throttle>,
    tx: broadcast::Sender<LiveMessage>,
    closed: watch::Sender<bool>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("events", &lock(&self.inner.ring).len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                clock,
                ring: Mutex::new(EventRing::new(EVENTS_KEPT)),
                throttle: Mutex::new(Throttle::new(1_000)),
                tx: broadcast::channel(STREAM_BUFFER).0,
                closed: watch::Sender::new(false),
            }),
        }
    }

    pub fn now(&self) -> EpochMillis {
        self.inner.clock.now_millis()
    }

    /// Keeps `event` and sends it to every live stream.
    pub fn emit(&self, event: Event) {
        tracing::info!(source = %event.source, kind = ?event.kind, "{}", event.message);
        lock(&self.inner.ring).push(event.clone());
        let _ = self.inner.tx.send(LiveMessage::Event(event));
    }

    /// Tells the live streams that `source` has new data, unless it did less than a second ago.
    pub fn update(&self, source: &str) {
        let at = self.now();
        if lock(&self.inner.throttle).allow(source, at) {
            let _ = self.inner.tx.send(LiveMessage::Update(Update {
                at,
                source: source.to_owned(),
            }));
        }
    }

    /// Up to `limit` kept events, newest first.
    pub fn events(&self, limit: usize) -> Vec<Event> {
        lock(&self.inner.ring).newest(limit)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveMessage> {
        self.inner.tx.subscribe()
    }

    /// Ends every live stream (the server is stopping: open streams would keep it waiting).
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Resolves once [`Hub::close`] has been called.
    pub async fn closed(&self) {
        let mut rx = self.inner.closed.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }
}

fn kafka_point(c: &ClusterState) -> KafkaPoint {
    KafkaPoint {
        brokers: c
            .brokers
            .iter()
            .map(|b| KafkaBrokerPoint {
                id: b.id,
                address: format!("{}:{}", b.host, b.port),
                up: b.up,
                error: b.error.clone(),
            })
            .collect(),
        verdicts: c
            .view
            .iter()
            .flat_map(|v| &v.groups)
            .map(|g| (g.group.clone(), g.verdict))
            .collect(),
    }
}

/// Follows the Kafka watchers: after each scrape, its events and an update.
pub async fn follow_kafka(live: LiveState, hub: Hub) {
    let mut changes = live.changes();
    let mut seen: HashMap<String, (EpochMillis, KafkaPoint)> = HashMap::new();
    loop {
        for cluster in live.all() {
            if seen
                .get(&cluster.name)
                .is_some_and(|(at, _)| *at == cluster.scraped_at_ms)
            {
                continue;
            }
            let point = kafka_point(&cluster);
            let prev = seen.get(&cluster.name).map(|(_, p)| p);
            for event in events::kafka_events(&cluster.name, prev, &point, hub.now()) {
                hub.emit(event);
            }
            hub.update(&events::kafka_source(&cluster.name));
            seen.insert(cluster.name.clone(), (cluster.scraped_at_ms, point));
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

fn mqtt_point(b: &MqttBrokerState) -> MqttPoint {
    let summary = b.tree().summary();
    let sys_messages = b.sys().messages;
    let connection = b.connection();
    MqttPoint {
        url: b.url.clone(),
        connected: connection.state == ConnState::Connected,
        connects: connection.connects,
        outages: connection.outages,
        failed_attempts: connection.failed_attempts,
        last_error: connection.last_error.clone(),
        messages: summary.messages,
        sys_messages,
        other_nodes: summary.other_nodes,
        folded_messages: summary.folded_messages,
        topics: summary.topics,
        max_topics: summary.max_topics,
    }
}

/// Follows the MQTT watchers: once a second, their events and an update when anything changed.
pub async fn follow_mqtt(mqtt: MqttState, hub: Hub) {
    let mut seen: HashMap<String, MqttPoint> = mqtt
        .brokers()
        .map(|b| {
            let start = MqttPoint {
                url: b.url.clone(),
                ..MqttPoint::default()
            };
            (b.name.clone(), start)
        })
        .collect();
    let mut tick = tokio::time::interval(MQTT_LOOK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for broker in mqtt.brokers() {
            let next = mqtt_point(broker);
            let Some(prev) = seen.get_mut(&broker.name) else {
                continue;
            };
            let (found, changed) = events::mqtt_events(&broker.name, prev, &next, hub.now());
            for event in found {
                hub.emit(event);
            }
            if changed {
                hub.update(&events::mqtt_source(&broker.name));
            }
            *prev = next;
        }
    }
}
