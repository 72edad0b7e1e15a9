//! `/api/v1/alerts`: the configured rules and every alert the engine holds — firing, pending
//! and recently resolved.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use pipescope_core::EpochMillis;
use pipescope_core::alerts::AlertState;
use pipescope_core::alerts::engine::AlertInstance;
use serde::Serialize;

use super::{AlertsState, RuleInfo};

/// The engine's rules and alerts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertsView {
    /// When the rules were last evaluated (epoch ms); `null` before the first evaluation.
    pub evaluated_at_ms: Option<EpochMillis>,
    pub evaluate_every_s: f64,
    pub rules: Vec<RuleInfo>,
    /// Firing first, then pending, then resolved; newest change first within each.
    pub alerts: Vec<AlertInstance>,
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
        alerts,
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

pub fn router(state: AlertsState) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(alerts))
        .with_state(state)
}
