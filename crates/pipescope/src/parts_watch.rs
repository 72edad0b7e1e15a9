//! Watching the pipeline parts of `[watched_parts.<name>]`: one supervised task per part reads
//! its `/health` and `/metrics` every `interval`. [`PartsState`] holds what was found, for
//! `/api/v1/parts`, `/ready`, `/metrics` (`pipescope_part_*`) and the alert engine. The parts
//! are the configuration's, so every map here is bounded by it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use pipescope_core::Clock;
use pipescope_core::clock::EpochMillis;
use pipescope_core::health::{PartReading, gauge_value};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use serde::Serialize;

use crate::completeness::metrics::{Series, encode_families};
use crate::config::Config;
use crate::config::types::WatchedPart;
use crate::shutdown::{Stop, Supervisor};

/// The gauge a part exports about itself (1 healthy, 0 not), re-exported per part.
pub const PART_HEALTH_STATUS: &str = "pipescope_part_health_status";
/// Every metric name this module emits (deploy/metrics.txt lists them).
pub const NAMES: [&str; 3] = [
    "pipescope_part_up",
    PART_HEALTH_STATUS,
    "pipescope_part_last_seen_timestamp_seconds",
];
/// The most of a part's `/metrics` read: a part's own exposition is a few kilobytes.
const MAX_METRICS_BYTES: u64 = 4 << 20;

/// One watched part as the last poll found it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PartStatus {
    pub name: String,
    /// Its `/health` and `/metrics` are read under this address.
    pub url: String,
    /// It answered `/health`.
    pub up: bool,
    /// Its own `pipescope_part_health_status` is 1 (or, without that gauge, `/health` answered
    /// 200 with status `ok`).
    pub healthy: bool,
    /// The value of its own `pipescope_part_health_status`; `null` when its `/metrics` lacks it.
    pub health_status: Option<f64>,
    /// False until the first poll ended.
    pub polled: bool,
    /// Since when `up` and `healthy` are what they are (epoch ms; the monitor's start before
    /// the first poll).
    pub since_ms: EpochMillis,
    /// The last poll it answered (epoch ms).
    pub last_seen_ms: Option<EpochMillis>,
    /// Why it is down or unhealthy; `null` when up and healthy.
    pub last_error: Option<String>,
}

/// Every watched part's [`PartStatus`], shared by the watcher tasks, the API, `/ready` and
/// `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct PartsState(Arc<RwLock<BTreeMap<String, PartStatus>>>);

impl PartsState {
    /// Every part of `config`, not polled yet as of `now_ms`.
    pub fn new(config: &BTreeMap<String, WatchedPart>, now_ms: EpochMillis) -> Self {
        let parts = config
            .iter()
            .map(|(name, part)| {
                let status = PartStatus {
                    name: name.clone(),
                    url: part.url.clone(),
                    up: false,
                    healthy: false,
                    health_status: None,
                    polled: false,
                    since_ms: now_ms,
                    last_seen_ms: None,
                    last_error: None,
                };
                (name.clone(), status)
            })
            .collect();
        Self(Arc::new(RwLock::new(parts)))
    }

    /// Every watched part, by name.
    pub fn parts(&self) -> Vec<PartStatus> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Records a poll of `name` that ended at `now_ms`.
    pub(crate) fn record(&self, name: &str, reading: &PartReading, now_ms: EpochMillis) {
        let mut parts = self.0.write().unwrap_or_else(|p| p.into_inner());
        let Some(part) = parts.get_mut(name) else {
            return;
        };
        let verdict = reading.verdict();
        if !part.polled || (part.up, part.healthy) != (verdict.up, verdict.healthy) {
            part.since_ms = now_ms;
        }
        part.polled = true;
        part.up = verdict.up;
        part.healthy = verdict.healthy;
        part.health_status = reading.health_gauge;
        if verdict.up {
            part.last_seen_ms = Some(now_ms);
        }
        part.last_error = match (&reading.health, verdict.healthy) {
            (Err(e), _) => Some(e.clone()),
            (Ok(_), true) => None,
            (Ok((code, status)), false) => Some(match reading.health_gauge {
                Some(gauge) => format!("the part reports {PART_HEALTH_STATUS} {gauge}"),
                None => format!(
                    "/health answered {code} with status {}",
                    status.as_deref().unwrap_or("(none)")
                ),
            }),
        };
    }
}

/// Starts one watcher task per `[watched_parts.<name>]` of `config`.
pub fn start_watching(config: &Config, tasks: &Supervisor, clock: &Arc<dyn Clock>) -> PartsState {
    let state = PartsState::new(&config.watched_parts, clock.now_millis());
    for (name, part) in &config.watched_parts {
        tracing::info!(part = %name, url = %part.url, "watching pipeline part");
        let (name, part, state, clock) = (name.clone(), part.clone(), state.clone(), clock.clone());
        let stop = tasks.stop_handle();
        tasks.spawn(
            format!("part watcher {name}"),
            Box::new(move || {
                Box::pin(watch(
                    name.clone(),
                    part.clone(),
                    state.clone(),
                    clock.clone(),
                    stop.clone(),
                ))
            }),
        );
    }
    state
}

async fn watch(
    name: String,
    part: WatchedPart,
    state: PartsState,
    clock: Arc<dyn Clock>,
    stop: Stop,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(part.timeout))
        .build()
        .into();
    let base = part.url.trim_end_matches('/').to_owned();
    loop {
        let (agent, base) = (agent.clone(), base.clone());
        let reading = tokio::task::spawn_blocking(move || poll(&agent, &base))
            .await
            .unwrap_or_else(|e| PartReading {
                health: Err(format!("the poll failed ({e})")),
                health_gauge: None,
            });
        if let Err(e) = &reading.health {
            tracing::debug!(part = %name, "{e}");
        }
        state.record(&name, &reading, clock.now_millis());
        if stop.sleep(part.interval).await {
            return;
        }
    }
}

/// Reads `base/health`, then (when it answered) `base/metrics`.
fn poll(agent: &ureq::Agent, base: &str) -> PartReading {
    let health = http_get(agent, &format!("{base}/health"), 64 << 10).map(|(code, body)| {
        let status = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("status")?.as_str().map(str::to_owned));
        (code, status)
    });
    let health_gauge = match &health {
        Ok(_) => http_get(agent, &format!("{base}/metrics"), MAX_METRICS_BYTES)
            .ok()
            .filter(|(code, _)| *code == 200)
            .and_then(|(_, text)| gauge_value(&text, PART_HEALTH_STATUS)),
        Err(_) => None,
    };
    PartReading {
        health,
        health_gauge,
    }
}

fn http_get(agent: &ureq::Agent, url: &str, limit: u64) -> Result<(u16, String), String> {
    let mut response = agent.get(url).call().map_err(|e| {
        format!("cannot reach the part at {url} ({e}) — is it running with --listen there?")
    })?;
    let code = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
        .map_err(|e| format!("cannot read {url}'s answer ({e})"))?;
    Ok((code, body))
}

/// `pipescope_part_*` on `/metrics`, read at scrape time.
#[derive(Debug)]
pub struct PartsCollector(pub PartsState);

fn help(name: &str) -> &'static str {
    match name {
        "pipescope_part_up" => "1 when the watched part answered its /health at the last poll",
        PART_HEALTH_STATUS => {
            "The watched part's health as it reports it (its own gauge, else its /health): 1 healthy, 0 not"
        }
        "pipescope_part_last_seen_timestamp_seconds" => {
            "When the watched part last answered (Unix seconds)"
        }
        _ => "",
    }
}

impl Collector for PartsCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut series = Vec::new();
        for part in self.0.parts().into_iter().filter(|p| p.polled) {
            let labels = vec![("part".to_owned(), part.name.clone())];
            let mut push = |name: &'static str, value: f64| {
                series.push(Series {
                    name,
                    labels: labels.clone(),
                    value,
                });
            };
            push("pipescope_part_up", f64::from(u8::from(part.up)));
            push(PART_HEALTH_STATUS, f64::from(u8::from(part.healthy)));
            if let Some(seen) = part.last_seen_ms {
                push(
                    "pipescope_part_last_seen_timestamp_seconds",
                    seen as f64 / 1000.0,
                );
            }
        }
        encode_families(encoder, series, help)
    }
}

pub fn router(state: PartsState) -> Router {
    Router::new()
        .route("/api/v1/parts", get(parts))
        .with_state(state)
}

#[utoipa::path(
    get,
    path = "/api/v1/parts",
    tag = "server",
    summary = "Watched pipeline parts ([watched_parts.X]): up (answers /health), healthy (its own pipescope_part_health_status, else its /health), since when, last seen, last error; empty when none is configured",
    responses((status = 200, description = "OK", body = [PartStatus]))
)]
pub(crate) async fn parts(State(state): State<PartsState>) -> Json<Vec<PartStatus>> {
    Json(state.parts())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn state() -> PartsState {
        let part = WatchedPart {
            url: "http://127.0.0.1:1".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        };
        PartsState::new(&BTreeMap::from([("bridge".to_owned(), part)]), 1_000)
    }

    #[test]
    fn since_moves_only_when_up_or_healthy_changes() {
        let parts = state();
        assert!(!parts.parts()[0].polled);
        let healthy = PartReading {
            health: Ok((200, Some("ok".into()))),
            health_gauge: Some(1.0),
        };
        parts.record("bridge", &healthy, 2_000);
        parts.record("bridge", &healthy, 3_000);
        let p = &parts.parts()[0];
        assert_eq!((p.up, p.healthy, p.since_ms), (true, true, 2_000));
        assert_eq!(
            (p.last_seen_ms, p.last_error.as_deref()),
            (Some(3_000), None)
        );

        let sick = PartReading {
            health_gauge: Some(0.0),
            ..healthy
        };
        parts.record("bridge", &sick, 4_000);
        let p = &parts.parts()[0];
        assert_eq!((p.up, p.healthy, p.since_ms), (true, false, 4_000));
        assert_eq!(
            p.last_error.as_deref(),
            Some("the part reports pipescope_part_health_status 0")
        );

        let gone = PartReading {
            health: Err("refused".into()),
            health_gauge: None,
        };
        parts.record("bridge", &gone, 5_000);
        let p = &parts.parts()[0];
        assert_eq!(
            (p.up, p.since_ms, p.last_seen_ms),
            (false, 5_000, Some(4_000))
        );
        assert_eq!(p.last_error.as_deref(), Some("refused"));
        // A name not configured is ignored.
        parts.record("other", &gone, 6_000);
        assert_eq!(parts.parts().len(), 1);
    }
}
