//! `/ready`: every configured source reached at least once, and the store writable. A task looks
//! at each source every [`LOOK_INTERVAL`] (and each request looks once more) and keeps its
//! state and since when in the core's [`Readiness`]. Liveness (`/health`) is in `web.rs`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use pipescope_core::Clock;
use pipescope_core::health::{Observation, Readiness, SourceStatus};
use serde::Serialize;

use crate::completeness::FlowsState;
use crate::config::Config;
use crate::kafka::LiveState;
use crate::mqtt::{ConnState, MqttState};
use crate::parts_watch::PartsState;
use crate::quality::QualityState;
use crate::store::Store;
use crate::sync::lock;

/// How often the sources are looked at, so that `since_ms` is within this of the change.
pub const LOOK_INTERVAL: Duration = Duration::from_secs(1);

/// What `/ready` reads, and the readiness it keeps.
#[derive(Debug, Clone)]
pub struct ReadyState {
    readiness: Arc<Mutex<Readiness>>,
    kafka: LiveState,
    mqtt: MqttState,
    parts: PartsState,
    flows: FlowsState,
    quality: QualityState,
    store: Store,
    clock: Arc<dyn Clock>,
}

/// The sources of [`ReadyState::new`].
#[derive(Debug, Clone)]
pub struct WatchedSources {
    pub kafka: LiveState,
    pub mqtt: MqttState,
    pub parts: PartsState,
    pub flows: FlowsState,
    pub quality: QualityState,
    pub store: Store,
}

impl ReadyState {
    /// Every source `config` lists, never reached as of now.
    pub fn new(config: &Config, sources: WatchedSources, clock: Arc<dyn Clock>) -> Self {
        let now = clock.now_millis();
        let mut readiness = Readiness::new();
        readiness.add("store", "store", true, now);
        for name in config.kafka.keys() {
            readiness.add("kafka", name, false, now);
        }
        for name in config.mqtt.keys() {
            readiness.add("mqtt", name, false, now);
        }
        for name in config.watched_parts.keys() {
            readiness.add("part", name, false, now);
        }
        for name in config.flows.keys() {
            readiness.add("flow", name, false, now);
        }
        for name in config.quality.keys() {
            readiness.add("quality", name, false, now);
        }
        let WatchedSources {
            kafka,
            mqtt,
            parts,
            flows,
            quality,
            store,
        } = sources;
        Self {
            readiness: Arc::new(Mutex::new(readiness)),
            kafka,
            mqtt,
            parts,
            flows,
            quality,
            store,
            clock,
        }
    }

    /// Looks at every source once.
    pub fn look(&self) {
        let now = self.clock.now_millis();
        let mut seen: Vec<(&'static str, String, Observation)> = Vec::new();
        let failing = self.store.stats().write_failing.load(Ordering::Relaxed) == 1;
        seen.push((
            "store",
            "store".into(),
            if failing {
                Observation::Down(
                    "the store's last commit failed (disk full or its directory gone? see the log)"
                        .into(),
                )
            } else {
                Observation::Up
            },
        ));
        for cluster in self.kafka.all() {
            let seen_now = match &cluster.error {
                None => Observation::Up,
                Some(error) => Observation::Down(error.clone()),
            };
            seen.push(("kafka", cluster.name.clone(), seen_now));
        }
        for broker in self.mqtt.brokers() {
            let connection = broker.connection();
            let seen_now = match connection.state {
                ConnState::Connected => Observation::Up,
                ConnState::Connecting if connection.last_error.is_none() => Observation::Pending,
                ConnState::Connecting | ConnState::Down | ConnState::Refused => Observation::Down(
                    connection
                        .last_error
                        .clone()
                        .unwrap_or_else(|| "not connected".into()),
                ),
            };
            seen.push(("mqtt", broker.name.clone(), seen_now));
        }
        for part in self.parts.parts() {
            let seen_now = match (part.polled, part.up) {
                (false, _) => Observation::Pending,
                (true, true) => Observation::Up,
                (true, false) => Observation::Down(part.last_error.unwrap_or_default()),
            };
            seen.push(("part", part.name, seen_now));
        }
        for flow in self.flows.all() {
            // Up when every hop's reader reads.
            let down = flow.hops.iter().find(|h| !h.reader.connected);
            let seen_now = match down {
                None => Observation::Up,
                Some(hop) => match &hop.reader.last_error {
                    Some(e) => Observation::Down(format!("{}: {e}", hop.hop)),
                    None => Observation::Pending,
                },
            };
            seen.push(("flow", flow.flow, seen_now));
        }
        for topic in self.quality.topics() {
            let reader = topic.reader();
            let seen_now = match (reader.connected, reader.last_error) {
                (true, _) => Observation::Up,
                (false, Some(e)) => Observation::Down(e),
                (false, None) => Observation::Pending,
            };
            seen.push(("quality", topic.name.clone(), seen_now));
        }
        let mut readiness = lock(&self.readiness);
        for (kind, name, observation) in seen {
            readiness.observe(kind, &name, observation, now);
        }
    }

    /// Whether ready, and every source's state.
    pub fn answer(&self) -> Ready {
        self.look();
        let readiness = lock(&self.readiness);
        let sources = readiness.sources();
        Ready {
            ready: readiness.is_ready(),
            waiting_for: sources
                .iter()
                .filter(|s| !s.is_ready())
                .map(|s| format!("{} {}", s.kind, s.name))
                .collect(),
            sources,
        }
    }
}

/// Looks at the sources every [`LOOK_INTERVAL`] until the stop.
pub async fn follow(state: ReadyState) {
    let mut tick = tokio::time::interval(LOOK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        state.look();
    }
}

/// `/ready`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// Every source reached at least once and the store writable.
    pub ready: bool,
    /// `kind name` of each source keeping the monitor from being ready.
    pub waiting_for: Vec<String>,
    /// Every configured source (kafka, mqtt, part, flow, quality) and the store, by kind then
    /// name: its state (`never_reached`, `up`, `down`) and since when.
    pub sources: Vec<SourceStatus>,
}

pub fn router(state: ReadyState) -> Router {
    Router::new().route("/ready", get(ready)).with_state(state)
}

#[utoipa::path(
    get,
    path = "/ready",
    tag = "server",
    summary = "Readiness: every configured source (Kafka cluster, MQTT broker, watched part, flow and quality reader) reached at least once and the store writable — 503 until then, with each source's state and since when (open even with auth)",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Not ready: `waiting_for` says for what", body = Ready)
    )
)]
pub(crate) async fn ready(State(state): State<ReadyState>) -> (StatusCode, Json<Ready>) {
    let answer = state.answer();
    let code = if answer.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(answer))
}

#[cfg(test)]
mod tests {
    use pipescope_core::ManualClock;
    use pipescope_core::health::{PartReading, SourceState};

    use super::*;
    use crate::kafka::ClusterState;

    #[test]
    fn each_kind_of_source_is_read_from_its_state_and_the_store_must_stay_writable() {
        let clock = Arc::new(ManualClock::at(1_000));
        let config = crate::config::parse(
            "t",
            "[kafka.k]\nbootstrap = \"127.0.0.1:1\"\n[mqtt.m]\nurl = \"mqtt://127.0.0.1:1\"\n\
             [watched_parts.p]\nurl = \"http://127.0.0.1:1\"\n",
            [],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (store, writer) = Store::open(
            dir.path(),
            crate::store::retention_from(&config.store),
            clock.clone(),
            4,
        )
        .unwrap();
        let kafka = LiveState::new();
        let mqtt = MqttState::new(&config.mqtt, clock.clone());
        let parts = PartsState::new(&config.watched_parts, 1_000);
        let ready = ReadyState::new(
            &config,
            WatchedSources {
                kafka: kafka.clone(),
                mqtt: mqtt.clone(),
                parts: parts.clone(),
                flows: FlowsState::default(),
                quality: QualityState::empty(clock.clone()),
                store: store.clone(),
            },
            clock.clone(),
        );
        let state_of = |answer: &Ready, kind: &str| {
            let s = answer.sources.iter().find(|s| s.kind == kind).unwrap();
            (s.state, s.since_ms, s.last_error.clone())
        };

        let answer = ready.answer();
        assert!(!answer.ready);
        assert_eq!(answer.waiting_for, ["kafka k", "mqtt m", "part p"]);
        assert_eq!(state_of(&answer, "store"), (SourceState::Up, 1_000, None));

        // Tried and failed: still never reached, with why.
        clock.set(2_000);
        kafka.set(ClusterState::unreachable(
            "k",
            None,
            2_000,
            5,
            "no broker answered".into(),
            "refused".into(),
        ));
        {
            let broker = mqtt.broker("m").unwrap();
            let mut connection = broker.connection();
            connection.state = ConnState::Down;
            connection.last_error = Some("connection refused".into());
        }
        parts.record(
            "p",
            &PartReading {
                health: Err("cannot reach the part".into()),
                health_gauge: None,
            },
            2_000,
        );
        let answer = ready.answer();
        assert_eq!(
            state_of(&answer, "kafka"),
            (
                SourceState::NeverReached,
                1_000,
                Some("no broker answered".into())
            )
        );
        assert_eq!(
            state_of(&answer, "mqtt").2.as_deref(),
            Some("connection refused")
        );
        assert_eq!(state_of(&answer, "part").0, SourceState::NeverReached);

        // Each reached: ready.
        clock.set(3_000);
        let mut reached =
            ClusterState::unreachable("k", None, 3_000, 5, String::new(), String::new());
        reached.error = None;
        kafka.set(reached);
        mqtt.broker("m").unwrap().connection().state = ConnState::Connected;
        parts.record(
            "p",
            &PartReading {
                health: Ok((200, Some("ok".into()))),
                health_gauge: None,
            },
            3_000,
        );
        let answer = ready.answer();
        assert!(answer.ready, "{:?}", answer.waiting_for);
        assert_eq!(state_of(&answer, "kafka"), (SourceState::Up, 3_000, None));
        assert_eq!(state_of(&answer, "mqtt").0, SourceState::Up);

        // The store failing its commits: not ready until it commits again.
        clock.set(4_000);
        store.stats().write_failing.store(1, Ordering::Relaxed);
        let answer = ready.answer();
        assert!(!answer.ready);
        assert_eq!(answer.waiting_for, ["store store"]);
        assert_eq!(state_of(&answer, "store").0, SourceState::Down);
        store.stats().write_failing.store(0, Ordering::Relaxed);
        assert!(ready.answer().ready);
        writer.close();
    }
}
