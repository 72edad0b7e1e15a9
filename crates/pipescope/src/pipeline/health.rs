//! A part's health: `pipescope_part_health_status{part}` on /metrics (1 healthy, 0 not) and the
//! same on /health (JSON, 503 when unhealthy), from checks the part reports ([`Health::passing`],
//! [`Health::failing`]) and a Kafka probe ([`Health::watch_kafka`]). The grace rule is core
//! `pipeline::health`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use pipescope_core::pipeline::health::{CheckReport, PartHealth};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

use super::{KafkaArgs, Stop, now_ms};
use crate::sync::lock;

/// The gauge every part exports.
pub const HEALTH_STATUS: &str = "pipescope_part_health_status";

/// How often the Kafka probe asks for metadata.
const KAFKA_PROBE_EVERY: Duration = Duration::from_secs(1);

/// A part's health, shared by its tasks, its /health and its /metrics.
#[derive(Debug, Clone)]
pub struct Health {
    /// The part's name as a label value: "process-calls".
    part: Arc<str>,
    started: Instant,
    checks: Arc<Mutex<PartHealth>>,
}

impl Health {
    /// `part` as its log names it ("process calls"); the label takes dashes for spaces.
    pub fn new(part: &str) -> Self {
        Self {
            part: part.replace(' ', "-").into(),
            started: Instant::now(),
            checks: Arc::default(),
        }
    }

    /// `check` (one of a fixed set: "kafka", "mqtt", "influxdb", "commit") works now.
    pub fn passing(&self, check: &'static str) {
        lock(&self.checks).passing(check, now_ms());
    }

    /// `check` failed now because of `detail`.
    pub fn failing(&self, check: &'static str, detail: impl std::fmt::Display) {
        lock(&self.checks).failing(check, detail.to_string(), now_ms());
    }

    /// A commit's outcome as the "commit" check: a processor that cannot commit for longer
    /// than the grace is unhealthy even while its brokers answer.
    pub fn committed(&self, result: &rdkafka::error::KafkaResult<()>, topic: &str) {
        match result {
            Ok(()) => self.passing("commit"),
            Err(e) => self.failing("commit", format!("cannot commit offsets of {topic} ({e})")),
        }
    }

    pub fn is_healthy(&self) -> bool {
        lock(&self.checks).report(now_ms()).healthy
    }

    /// Asks the brokers of `kafka` for `topic`'s metadata (every topic's when `None`) every
    /// second until `stop`: the "kafka"
    /// check passes while they answer. Its own client reconnects within a second, so a broker
    /// that is back is seen at once.
    pub fn watch_kafka(
        &self,
        kafka: &KafkaArgs,
        topic: Option<&str>,
        stop: &Stop,
    ) -> anyhow::Result<()> {
        use anyhow::Context;
        let probe: BaseConsumer = kafka
            .client_config()?
            .set("reconnect.backoff.max.ms", "1000")
            .set("allow.auto.create.topics", "false")
            .create()
            .with_context(|| format!("cannot make the Kafka health probe for {}", kafka.kafka))?;
        let probe = Arc::new(probe);
        let (health, topic, stop) = (self.clone(), topic.map(str::to_owned), stop.clone());
        tokio::spawn(async move {
            loop {
                let (client, name) = (probe.clone(), topic.clone());
                let answer = tokio::task::spawn_blocking(move || {
                    client
                        .fetch_metadata(name.as_deref(), Duration::from_secs(2))
                        .map(|_| ())
                })
                .await;
                match answer {
                    Ok(Ok(())) => health.passing("kafka"),
                    Ok(Err(e)) => health.failing("kafka", format!("no answer from Kafka ({e})")),
                    Err(e) => health.failing("kafka", format!("the probe failed ({e})")),
                }
                if stop.sleep(KAFKA_PROBE_EVERY).await {
                    return;
                }
            }
        });
        Ok(())
    }

    /// `pipescope_part_health_status{part}`, read at each scrape.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register_collector(Box::new(HealthCollector(self.clone())));
    }

    /// /health for this part in front of `routes` (the part's /metrics).
    pub fn router(&self, routes: Router) -> Router {
        Router::new()
            .route("/health", get(health))
            .with_state(self.clone())
            .fallback_service(routes)
    }
}

/// What a part's /health answers (503 when not healthy).
#[derive(Debug, Serialize)]
pub struct PartHealthAnswer {
    /// "ok" or "unhealthy".
    pub status: &'static str,
    pub part: String,
    pub version: &'static str,
    pub uptime_s: u64,
    pub checks: Vec<CheckReport>,
}

async fn health(State(health): State<Health>) -> impl IntoResponse {
    let report = lock(&health.checks).report(now_ms());
    let answer = PartHealthAnswer {
        status: if report.healthy { "ok" } else { "unhealthy" },
        part: health.part.to_string(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: health.started.elapsed().as_secs(),
        checks: report.checks,
    };
    let code = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(answer))
}

#[derive(Debug)]
struct HealthCollector(Health);

impl Collector for HealthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new(i64::from(self.0.is_healthy()));
        let mut family = encoder.encode_descriptor(
            HEALTH_STATUS,
            "1 while the part is healthy, 0 once one of its checks (broker connection, writes, \
             commits) has failed for longer than a short grace",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(family.encode_family(&[("part", &*self.0.part)])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn health_and_the_gauge_say_the_same() {
        use tower::ServiceExt;
        let health = Health::new("bridge");
        let mut registry = crate::metrics::new_registry();
        health.register(&mut registry);
        let app = health.router(crate::web::router(crate::web::AppState::new(registry)));
        let get = |path: &str| {
            axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let answer = app.clone().oneshot(get("/health")).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let metrics = app.clone().oneshot(get("/metrics")).await.unwrap();
        let body = axum::body::to_bytes(metrics.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains("pipescope_part_health_status{part=\"bridge\"} 1"),
            "{text}"
        );

        // A failure older than the grace.
        lock(&health.checks).failing("mqtt", "connection refused", 0);
        let answer = app.clone().oneshot(get("/health")).await.unwrap();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], "unhealthy");
        assert_eq!(json["checks"][0]["check"], "mqtt");
        assert_eq!(json["checks"][0]["detail"], "connection refused");
        let metrics = app.oneshot(get("/metrics")).await.unwrap();
        let body = axum::body::to_bytes(metrics.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains("pipescope_part_health_status{part=\"bridge\"} 0"),
            "{text}"
        );
    }
}
