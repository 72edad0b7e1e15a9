//! `/api/v1/flows`: every observed flow's hops and edges with their figures; what the flow
//! graph (`/api/v1/flow`) draws of them; the events when loss starts and stops.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use std::collections::HashMap;
use std::time::Duration;

use pipescope_core::EpochMillis;
use pipescope_core::completeness::edge::EdgeKindFigures;
use pipescope_core::completeness::hop::KindFigures;
use pipescope_core::live::events::{self, LossSubject, LossWatch};
use pipescope_core::live::flow::{LastMinute, ObservedEdge, ObservedFlow, ObservedHop};

use super::{FlowView, FlowsState};
use crate::api::Hub;
use crate::web::{ApiError, ErrorBody};

/// How often the flows' loss counts are looked at for events (a flow ticks every second).
const LOSS_LOOK_INTERVAL: Duration = Duration::from_secs(1);
/// Looks without new loss before a "loss stopped" event: 30 s of quiet, so a trickle of loss
/// makes one spell, not an event storm.
const QUIET_LOOKS_TO_STOP: u32 = 30;
/// Edges and hops watched for loss events, over every flow.
const MAX_LOSS_SUBJECTS: usize = 1_000;

fn hop_last_minute(k: &KindFigures) -> LastMinute {
    LastMinute {
        records: Some(k.windows.records.one_minute),
        lost: k.windows.lost.one_minute.count,
        duplicated: k.windows.duplicated.one_minute.count,
        p99_latency_ms: k.latency.one_minute.p99_ms,
    }
}

fn edge_last_minute(e: &EdgeKindFigures) -> LastMinute {
    LastMinute {
        records: Some(e.windows.matched.one_minute),
        lost: e.windows.lost.one_minute.count,
        duplicated: e.windows.duplicated.one_minute.count,
        p99_latency_ms: e.added_latency.one_minute.p99_ms,
    }
}

/// What the flow graph draws of a flow: its hops with their origin kinds, its edges.
pub fn observed(view: &FlowView) -> ObservedFlow {
    let index = |name: &str| view.hops.iter().position(|h| h.hop == name);
    ObservedFlow {
        name: view.flow.clone(),
        hops: view
            .hops
            .iter()
            .zip(&view.places)
            .map(|(h, place)| ObservedHop {
                place: place.clone(),
                kinds: h
                    .figures
                    .by_kind
                    .iter()
                    .map(|(kind, k)| (kind.clone(), hop_last_minute(k)))
                    .collect(),
            })
            .collect(),
        edges: view
            .edges
            .iter()
            .filter_map(|e| {
                Some(ObservedEdge {
                    upstream: index(&e.upstream)?,
                    downstream: index(&e.downstream)?,
                    figures: edge_last_minute(&e.figures.total),
                })
            })
            .collect(),
    }
}

/// Every edge's and hop's loss count since the flow started, named as its events say.
pub fn loss_counts(view: &FlowView) -> Vec<(LossSubject, u64)> {
    let subject = |subject: String| LossSubject {
        flow: view.flow.clone(),
        subject,
    };
    let edges = view.edges.iter().map(|e| {
        (
            subject(format!("edge {} → {}", e.upstream, e.downstream)),
            e.figures.total.counters.lost,
        )
    });
    let hops = view.hops.iter().map(|h| {
        (
            subject(format!("hop {}", h.hop)),
            h.figures.total.counters.lost,
        )
    });
    edges.chain(hops).collect()
}

/// The loss events of successive looks at the flows.
#[derive(Debug)]
pub struct LossEvents {
    watch: LossWatch,
    /// When each flow's figures were last looked at: one entry per configured flow.
    looked: HashMap<String, EpochMillis>,
}

impl Default for LossEvents {
    fn default() -> Self {
        Self {
            watch: LossWatch::new(QUIET_LOOKS_TO_STOP, MAX_LOSS_SUBJECTS),
            looked: HashMap::new(),
        }
    }
}

impl LossEvents {
    /// Emits the events of the flows that ticked since the last look, and an update for each.
    pub fn look(&mut self, views: &[FlowView], hub: &Hub) {
        for view in views {
            if self.looked.get(&view.flow) == Some(&view.updated_ms) {
                continue;
            }
            for (subject, lost) in loss_counts(view) {
                if let Some(event) = self.watch.look(&subject, lost, view.updated_ms) {
                    hub.emit(event);
                }
            }
            hub.update(&events::flow_source(&view.flow));
            self.looked.insert(view.flow.clone(), view.updated_ms);
        }
    }
}

/// Follows the flows: after each tick of a flow, its loss events and an update.
pub async fn follow_flows(flows: FlowsState, hub: Hub) {
    let mut loss = LossEvents::default();
    let mut tick = tokio::time::interval(LOSS_LOOK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loss.look(&flows.all(), &hub);
    }
}
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
