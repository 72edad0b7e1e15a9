//! `/api/v1/probes`: every probe's figures per partition.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::{ProbeView, ProbesState};

pub fn router(state: ProbesState) -> Router {
    Router::new()
        .route("/api/v1/probes", get(probes))
        .with_state(state)
}

#[utoipa::path(
    get,
    path = "/api/v1/probes",
    tag = "completeness",
    summary = "Probes ([probes.kafka.X], [probes.mqtt.X], [probes.bridge.X]; `kind` says which): availability and produce-ack latency, and what was read back — lost, duplicated, end-to-end latency; for a bridge probe also the edge between MQTT and Kafka (docs/completeness.md \"Probes\"); empty when no probe is configured",
    responses((status = 200, description = "OK", body = [ProbeView]))
)]
pub(crate) async fn probes(State(state): State<ProbesState>) -> Json<Vec<ProbeView>> {
    Json(state.all())
}
