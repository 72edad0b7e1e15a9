//! `/api/v1/flows`: every observed flow's hops and edges with their figures.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::{FlowView, FlowsState};
use crate::web::{ApiError, ErrorBody};

pub fn router(state: FlowsState) -> Router {
    Router::new()
        .route("/api/v1/flows", get(flows))
        .route("/api/v1/flows/{flow}", get(flow))
        .with_state(state)
}

#[utoipa::path(
    get,
    path = "/api/v1/flows",
    tag = "completeness",
    summary = "Observed flows ([flows.X]): per hop and per edge, records, lost, duplicated, late and latency (docs/completeness.md); empty until a flow's first tick",
    responses((status = 200, description = "OK", body = [FlowView]))
)]
pub(crate) async fn flows(State(state): State<FlowsState>) -> Json<Vec<FlowView>> {
    Json(state.all())
}

#[utoipa::path(
    get,
    path = "/api/v1/flows/{flow}",
    tag = "completeness",
    summary = "One observed flow's hops and edges with their figures",
    params(("flow" = String, Path)),
    responses(
        (status = 200, description = "OK", body = FlowView),
        (status = 404, description = "no such flow (or it has not ticked yet)", body = ErrorBody),
    )
)]
pub(crate) async fn flow(
    State(state): State<FlowsState>,
    Path(name): Path<String>,
) -> Result<Json<FlowView>, ApiError> {
    state.get(&name).map(Json).ok_or_else(|| {
        let known: Vec<String> = state.all().into_iter().map(|f| f.flow).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no flow {name:?} — the flows are: {} (configured as [flows.<name>])",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        )
    })
}
