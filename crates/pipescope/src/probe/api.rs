//! `/api/v1/probes`: every probe's figures per partition.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::{KafkaProbeView, ProbesState};

pub fn router(state: ProbesState) -> Router {
    Router::new()
        .route("/api/v1/probes", get(probes))
        .with_state(state)
}

#[utoipa::path(
    get,
    path = "/api/v1/probes",
    tag = "completeness",
    summary = "Probes ([probes.kafka.X]): per partition of the probe topic, availability and produce-ack latency, and the records read back — lost, duplicated, end-to-end latency (docs/completeness.md \"Probes\"); empty when no probe is configured",
    responses((status = 200, description = "OK", body = [KafkaProbeView]))
)]
pub(crate) async fn probes(State(state): State<ProbesState>) -> Json<Vec<KafkaProbeView>> {
    Json(state.all())
}
