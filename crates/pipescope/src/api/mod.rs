//! The portal's own API: the live stream (`/api/v1/live`, server-sent events), the kept events
//! (`/api/v1/events`), the flow graph (`/api/v1/flow`), the OpenAPI document of the whole JSON
//! API (`/api/openapi.json`) and the optional authentication in front of all of it ([`auth`]).

pub mod auth;
pub mod hub;
pub mod openapi;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use pipescope_core::live::events::Event;
use pipescope_core::live::flow::{self, FlowCluster, FlowGraph, FlowGroup, FlowTopic};

use crate::completeness::FlowsState;
use pipescope_core::windows::Window;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_stream::wrappers::BroadcastStream;

use crate::kafka::{ClusterState, LiveState};
use crate::web::{ApiError, ErrorBody};
pub use hub::{Hub, LiveMessage};

/// Events answered when no `limit` is asked for.
pub const DEFAULT_EVENTS: usize = 100;
/// How often an idle live stream sends a comment so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Live streams open at once: each holds a connection and a task; more are answered 503. A
/// browser opens one per portal tab.
pub const MAX_LIVE_STREAMS: usize = 64;

#[derive(Debug, Clone)]
struct ApiState {
    hub: Hub,
    kafka: LiveState,
    flows: FlowsState,
    /// One permit per live stream that may open.
    live_slots: Arc<Semaphore>,
}

pub fn router(hub: Hub, kafka: LiveState, flows: FlowsState) -> Router {
    Router::new()
        .route("/api/v1/live", get(live))
        .route("/api/v1/events", get(events))
        .route("/api/v1/flow", get(flow_graph))
        .route("/api/openapi.json", get(openapi::serve))
        .with_state(ApiState {
            hub,
            kafka,
            flows,
            live_slots: Arc::new(Semaphore::new(MAX_LIVE_STREAMS)),
        })
}

fn sse_event(message: LiveMessage) -> sse::Event {
    let (name, data) = match message {
        LiveMessage::Update(u) => ("update", serde_json::to_string(&u)),
        LiveMessage::Event(e) => ("event", serde_json::to_string(&e)),
    };
    sse::Event::default()
        .event(name)
        .data(data.unwrap_or_default())
}

/// The live messages as SSE events; a stream that falls behind skips what it missed. Ends when
/// the hub closes (the server is stopping).
pub fn live_stream(hub: &Hub) -> impl Stream<Item = Result<sse::Event, Infallible>> + use<> {
    let closing = hub.clone();
    BroadcastStream::new(hub.subscribe())
        .filter_map(|m| async move { m.ok().map(|m| Ok(sse_event(m))) })
        .take_until(async move { closing.closed().await })
}

#[utoipa::path(
    get,
    path = "/api/v1/live",
    tag = "portal",
    summary = "Server-sent events: `update` ({at, source}, at most one per second per source) and `event` (an Event); keep-alive comments. Also takes ?access_token= when auth is on",
    params(("access_token" = Option<String>, Query, description = "the bearer token, or base64 of user:password with basic auth", min_length = 1)),
    responses(
        (status = 200, description = "OK", content_type = "text/event-stream", body = String),
        (status = 503, description = "too many live streams are open", body = ErrorBody),
    )
)]
async fn live(State(state): State<ApiState>) -> Response {
    let Ok(slot) = state.live_slots.clone().try_acquire_owned() else {
        let mut refused = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many live streams are open ({MAX_LIVE_STREAMS}): close some portal tabs, \
                 or try again later"
            ),
        )
        .into_response();
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        return refused;
    };
    // The slot is freed when the stream is dropped (the client went away or the server stops).
    let stream = live_stream(&state.hub).map(move |event| {
        let _held = &slot;
        event
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// How many events, newest first (default 100, at most 1000).
    limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventsPage {
    /// Newest first.
    pub events: Vec<Event>,
}

#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "portal",
    summary = "The latest events (broker up/down, verdict changes, MQTT connections, folded topics), newest first",
    params(EventsQuery),
    responses(
        (status = 200, description = "OK", body = EventsPage),
        (status = 400, description = "a parameter is wrong", body = ErrorBody),
    )
)]
async fn events(
    State(state): State<ApiState>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventsPage>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{} — use ?limit=N (at most {})",
            e.body_text(),
            hub::EVENTS_KEPT
        ))
    })?;
    let limit = query.limit.unwrap_or(DEFAULT_EVENTS);
    Ok(Json(EventsPage {
        events: state.hub.events(limit.min(hub::EVENTS_KEPT)),
    }))
}

/// What the flow graph needs of one cluster's state: topics (not internal ones) with their rates
/// and reported producers, groups with their verdicts and the topics they commit on or are
/// assigned.
pub fn flow_cluster(c: &ClusterState) -> FlowCluster {
    let view = c.view.as_deref();
    let topics = c
        .topics
        .iter()
        .filter(|t| !t.internal)
        .map(|t| {
            let mut producers: Vec<i64> = t
                .partitions
                .iter()
                .filter_map(|p| p.producers.as_ref().ok())
                .flatten()
                .map(|p| p.producer_id)
                .collect();
            producers.sort_unstable();
            producers.dedup();
            FlowTopic {
                name: t.name.clone(),
                last_minute: view
                    .and_then(|v| v.topics.iter().find(|v| *v.topic == *t.name))
                    .and_then(|v| v.rates)
                    .map(|r| r.get(Window::OneMinute)),
                producers,
            }
        })
        .collect();
    let groups = c
        .groups
        .iter()
        .map(|g| {
            let mut reads: Vec<String> = g
                .offsets
                .iter()
                .flatten()
                .map(|o| o.topic.to_string())
                .chain(
                    g.description
                        .iter()
                        .flat_map(|d| &d.members)
                        .flat_map(|m| &m.assignment)
                        .map(|a| a.topic.clone()),
                )
                .collect();
            reads.sort();
            reads.dedup();
            FlowGroup {
                name: g.name.clone(),
                verdict: view
                    .and_then(|v| v.groups.iter().find(|v| v.group == g.name))
                    .and_then(|v| serde_json::to_value(v.verdict).ok())
                    .and_then(|v| v.as_str().map(str::to_owned)),
                reads,
                // Nothing the admin plane reads says where a group writes.
                writes: Vec::new(),
            }
        })
        .collect();
    FlowCluster {
        cluster: c.name.clone(),
        topics,
        groups,
    }
}

pub fn flow_of(live: &LiveState) -> FlowGraph {
    let clusters: Vec<FlowCluster> = live.all().iter().map(|c| flow_cluster(c)).collect();
    flow::build(&clusters)
}

#[utoipa::path(
    get,
    path = "/api/v1/flow",
    tag = "portal",
    summary = "The flow graph: producers → topics → consumer groups, with rates and verdicts; observed flows ([flows.X]) add their MQTT subtrees, origin kinds and edges with loss, duplicates and p99 latency over the last minute (alarm: loss)",
    responses((status = 200, description = "OK", body = FlowGraph))
)]
async fn flow_graph(State(state): State<ApiState>) -> Json<FlowGraph> {
    let mut graph = flow_of(&state.kafka);
    let observed: Vec<_> = state
        .flows
        .all()
        .iter()
        .map(crate::completeness::api::observed)
        .collect();
    flow::add_flows(&mut graph, &observed);
    Json(graph)
}

#[cfg(test)]
mod tests;
