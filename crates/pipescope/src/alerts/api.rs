//! `/api/v1/alerts`: the configured rules and every alert the engine holds — firing, pending
//! and recently resolved — and `/api/v1/silences`, where silences are listed, added and expired.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use pipescope_core::EpochMillis;
use pipescope_core::alerts::AlertState;
use pipescope_core::alerts::engine::AlertInstance;
use pipescope_core::alerts::silences::{Silence, SilenceError, SilenceRequest, SilenceState};
use serde::Serialize;

use super::{AlertsState, RuleInfo};
use crate::web::{ApiError, ErrorBody};

/// An alert and the active silences that cover it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    #[serde(flatten)]
    pub alert: AlertInstance,
    /// Ids of the active silences covering it: notifiers are not told it fires.
    pub silenced_by: Vec<String>,
}

/// The engine's rules and alerts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertsView {
    /// When the rules were last evaluated (epoch ms); `null` before the first evaluation.
    pub evaluated_at_ms: Option<EpochMillis>,
    pub evaluate_every_s: f64,
    pub rules: Vec<RuleInfo>,
    /// Firing first, then pending, then resolved; newest change first within each.
    pub alerts: Vec<AlertView>,
    /// New alerts each rule left out at its cap (`[alerts] max_instances_per_rule`), by rule.
    pub dropped: std::collections::BTreeMap<String, u64>,
}

pub fn view(state: &AlertsState) -> AlertsView {
    let mut alerts = state.instances();
    let rank = |s: AlertState| match s {
        AlertState::Firing => 0,
        AlertState::Pending => 1,
        AlertState::Resolved => 2,
    };
    alerts.sort_by(|a, b| {
        rank(a.state)
            .cmp(&rank(b.state))
            .then(b.since_ms.cmp(&a.since_ms))
            .then(a.labels.cmp(&b.labels))
    });
    AlertsView {
        evaluated_at_ms: state.last_evaluation_ms(),
        evaluate_every_s: state.evaluate_every().as_secs_f64(),
        rules: state.rules().to_vec(),
        alerts: alerts
            .into_iter()
            .map(|alert| AlertView {
                silenced_by: state.silencing(&alert.labels),
                alert,
            })
            .collect(),
        dropped: state.dropped().into_iter().collect(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "alerts",
    summary = "The alert rules ([alerts.rules.X]) and their alerts: firing, pending and recently resolved, with labels, annotations, since when and the value (docs/alerts.md)",
    responses((status = 200, description = "OK", body = AlertsView))
)]
pub(crate) async fn alerts(State(state): State<AlertsState>) -> Json<AlertsView> {
    Json(view(&state))
}

/// A silence and where it stands now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SilenceView {
    #[serde(flatten)]
    pub silence: Silence,
    pub state: SilenceState,
}

/// The kept silences.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SilencesView {
    /// Active first, then pending, then expired (within the last day); latest end first within
    /// each.
    pub silences: Vec<SilenceView>,
}

fn silence_view(silence: Silence, now: EpochMillis) -> SilenceView {
    SilenceView {
        state: silence.state(now),
        silence,
    }
}

pub fn silences_view(state: &AlertsState) -> SilencesView {
    let now = state.now();
    let rank = |s: SilenceState| match s {
        SilenceState::Active => 0,
        SilenceState::Pending => 1,
        SilenceState::Expired => 2,
    };
    let mut silences: Vec<SilenceView> = state
        .silences()
        .into_iter()
        .map(|s| silence_view(s, now))
        .collect();
    silences.sort_by(|a, b| {
        rank(a.state)
            .cmp(&rank(b.state))
            .then(b.silence.ends_at_ms.cmp(&a.silence.ends_at_ms))
            .then(a.silence.id.cmp(&b.silence.id))
    });
    SilencesView { silences }
}

#[utoipa::path(
    get,
    path = "/api/v1/silences",
    tag = "alerts",
    summary = "The silences: active, pending and expired within the last day (docs/alerts.md)",
    responses((status = 200, description = "OK", body = SilencesView))
)]
pub(crate) async fn silences(State(state): State<AlertsState>) -> Json<SilencesView> {
    Json(silences_view(&state))
}

fn refusal(e: SilenceError) -> ApiError {
    match e {
        SilenceError::NotFound(_) => ApiError::not_found(e.to_string()),
        SilenceError::Full => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        _ => ApiError::bad_request(e.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SilenceError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the silence was not saved: {e}")))?
        .map_err(refusal)
}

#[utoipa::path(
    post,
    path = "/api/v1/silences",
    tag = "alerts",
    summary = "Adds a silence: while active, notifiers are not told that alerts matching all its matchers fire. An end is required; kept in the store (docs/alerts.md)",
    request_body = SilenceRequest,
    responses(
        (status = 201, description = "Added", body = SilenceView),
        (status = 400, description = "The body is not a valid silence: the error says what to change", body = ErrorBody),
        (status = 409, description = "The cap of kept silences is reached", body = ErrorBody)
    )
)]
pub(crate) async fn add_silence(
    State(state): State<AlertsState>,
    body: Bytes,
) -> Result<(StatusCode, Json<SilenceView>), ApiError> {
    let request: SilenceRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not a silence ({e}): send JSON like {{\"matchers\": [{{\"name\": \"alertname\", \"value\": \"lag\"}}], \"ends_at_ms\": 1767225600000, \"created_by\": \"me\", \"comment\": \"why\"}}"
        ))
    })?;
    let adding = state.clone();
    let silence = blocking(move || adding.add_silence(request)).await?;
    Ok((
        StatusCode::CREATED,
        Json(silence_view(silence, state.now())),
    ))
}

#[utoipa::path(
    delete,
    path = "/api/v1/silences/{id}",
    tag = "alerts",
    summary = "Expires a silence now; it stays listed as expired for a day",
    params(("id" = String, Path, description = "the silence's id")),
    responses(
        (status = 200, description = "Expired", body = SilenceView),
        (status = 400, description = "It has expired already", body = ErrorBody),
        (status = 404, description = "No such silence", body = ErrorBody)
    )
)]
pub(crate) async fn expire_silence(
    State(state): State<AlertsState>,
    Path(id): Path<String>,
) -> Result<Json<SilenceView>, ApiError> {
    let expiring = state.clone();
    let silence = blocking(move || expiring.expire_silence(&id)).await?;
    Ok(Json(silence_view(silence, state.now())))
}

pub fn router(state: AlertsState) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/silences", get(silences).post(add_silence))
        .route("/api/v1/silences/{id}", delete(expire_silence))
        .with_state(state)
}
