//! JSON API of the MQTT watcher:
//! - `GET /api/v1/mqtt/brokers`: every broker, its connection, `$SYS` status and tree size;
//! - `GET /api/v1/mqtt/brokers/{b}/sys`: the broker's typed `$SYS` metrics;
//! - `GET /api/v1/mqtt/brokers/{b}/tree?root=&depth=&limit=&value=`: the topic tree in the nested
//!   `{name, value, children}` shape a sunburst draws directly.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use pipescope_core::mqtt::tree::MAX_DEPTH;
use pipescope_core::mqtt::{NodeView, TreeSummary, ValueOf};
use serde::{Deserialize, Serialize};

use super::{MqttBrokerState, MqttConnection, MqttState, SysStatus};
use crate::web::{ApiError, ErrorBody};

/// Depth of the tree answered when none is asked for.
pub const DEFAULT_DEPTH: usize = 3;
/// Children shown per node when no `limit` is asked for; the others are summed in `(more)`.
pub const DEFAULT_LIMIT: usize = 1_000;
/// Children shown per node at most: a larger `limit` is clamped (the answer's `limit` says the
/// one used), so one request cannot make the watcher's lock build a view of the whole tree.
pub const MAX_LIMIT: usize = 1_000;

pub fn router(state: MqttState) -> Router {
    Router::new()
        .route("/api/v1/mqtt/brokers", get(brokers))
        .route("/api/v1/mqtt/brokers/{broker}/sys", get(sys))
        .route("/api/v1/mqtt/brokers/{broker}/tree", get(tree))
        .with_state(state)
}

/// The broker named `name`, or 404 naming the configured ones.
fn watched<'s>(state: &'s MqttState, name: &str) -> Result<&'s MqttBrokerState, ApiError> {
    state
        .broker(name)
        .map(|b| &**b)
        .ok_or_else(|| unknown_broker(state, name))
}

fn unknown_broker(state: &MqttState, name: &str) -> ApiError {
    let known: Vec<&str> = state.brokers().map(|b| b.name.as_str()).collect();
    ApiError::not_found(format!(
        "no MQTT broker named {name:?}; configured: {}",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = MqttBroker)]
pub struct BrokerView {
    pub name: String,
    pub url: String,
    pub protocol: &'static str,
    pub filters: Vec<String>,
    pub export_filters: Vec<String>,
    pub connection: MqttConnection,
    /// Whether the broker publishes `$SYS`: seen, none, or waiting (not yet known).
    pub sys_status: SysStatus,
    pub sys_messages: u64,
    pub version: Option<String>,
    pub tree: TreeSummary,
}

fn broker_view(b: &MqttBrokerState) -> BrokerView {
    let sys_status = b.sys_status();
    let (sys_messages, version) = {
        let sys = b.sys();
        (sys.messages, sys.version.clone())
    };
    BrokerView {
        name: b.name.clone(),
        url: b.url.clone(),
        protocol: b.protocol,
        filters: b.filters.clone(),
        export_filters: b.export_filters.clone(),
        connection: b.connection().clone(),
        sys_status,
        sys_messages,
        version,
        tree: b.tree().summary(),
    }
}

/// What a 404 of these endpoints means.
const NOT_FOUND: &str = "no such broker (or, for the tree, no such topic)";

#[utoipa::path(
    get,
    path = "/api/v1/mqtt/brokers",
    operation_id = "mqtt_brokers",
    tag = "mqtt",
    summary = "Watched MQTT brokers: connection, $SYS status, tree summary",
    responses((status = 200, description = "OK", body = [BrokerView]))
)]
async fn brokers(State(state): State<MqttState>) -> Json<Vec<BrokerView>> {
    Json(state.brokers().map(|b| broker_view(b)).collect())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = MqttSys)]
pub struct SysView {
    broker: String,
    status: SysStatus,
    version: Option<String>,
    #[serde(flatten)]
    sys: pipescope_core::mqtt::SysState,
}

#[utoipa::path(
    get,
    path = "/api/v1/mqtt/brokers/{broker}/sys",
    tag = "mqtt",
    summary = "A broker's $SYS figures",
    params(("broker" = String, Path)),
    responses(
        (status = 200, description = "OK", body = SysView),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    )
)]
async fn sys(
    State(state): State<MqttState>,
    Path(name): Path<String>,
) -> Result<Json<SysView>, ApiError> {
    let b = watched(&state, &name)?;
    let status = b.sys_status();
    let sys = b.sys().clone();
    Ok(Json(SysView {
        broker: name,
        status,
        version: sys.version.clone(),
        sys,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TreeQuery {
    /// subtree to start at (default the root)
    #[serde(default)]
    root: String,
    /// levels to answer (default 3; more is answered as 32)
    #[param(minimum = 0)]
    depth: Option<usize>,
    /// children per node (default 1000; more is answered as 1000; the rest summed in (more))
    #[param(minimum = 0)]
    limit: Option<usize>,
    /// what sizes a node: messages, bytes, or the count over the last 1, 5 or 15 minutes
    /// (rate_1m, rate_5m, rate_15m; counts over one window compare as per-minute figures do)
    #[serde(default)]
    #[param(inline, value_type = Option<TreeValue>)]
    value: ValueOf,
}

// What sizes a node of the tree, as the query string spells it (the document's enumeration
// of `ValueOf`).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
enum TreeValue {
    Messages,
    Bytes,
    #[schema(rename = "rate_1m")]
    Rate1m,
    #[schema(rename = "rate_5m")]
    Rate5m,
    #[schema(rename = "rate_15m")]
    Rate15m,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = MqttTree)]
pub struct TreeView {
    broker: String,
    summary: TreeSummary,
    /// Levels answered: the one asked for, at most 32.
    depth: usize,
    /// Children per node answered: the one asked for, at most 1000.
    limit: usize,
    /// The subtree asked for: `{name, value, children}` down to `depth` levels below it.
    tree: NodeView,
}

#[utoipa::path(
    get,
    path = "/api/v1/mqtt/brokers/{broker}/tree",
    tag = "mqtt",
    summary = "A broker's topic tree (counts, rates, last seen), for the browser and the sunburst",
    params(("broker" = String, Path), TreeQuery),
    responses(
        (status = 200, description = "OK", body = TreeView),
        (status = 400, description = "a parameter is wrong", body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    )
)]
async fn tree(
    State(state): State<MqttState>,
    Path(name): Path<String>,
    query: Result<Query<TreeQuery>, QueryRejection>,
) -> Result<Json<TreeView>, ApiError> {
    // JSON like every other error of the API (axum's own rejection is plain text).
    let Query(query) = query?;
    let b = watched(&state, &name)?;
    let depth = query.depth.unwrap_or(DEFAULT_DEPTH).min(MAX_DEPTH);
    let now = b.clock.now_millis();
    let root = query.root.as_str();
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    // Built under the lock every incoming message takes, bounded by the limits; serialized
    // after it is released.
    let (summary, view) = {
        let tree = b.tree();
        (
            tree.summary(),
            tree.view(root, depth, limit, query.value, now),
        )
    };
    match view {
        Some(view) => Ok(Json(TreeView {
            broker: name,
            summary,
            depth,
            limit,
            tree: view,
        })),
        None => Err(ApiError::not_found(format!(
            "no topic {root:?} in the tree of MQTT broker {name}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use pipescope_core::mqtt::tree::Message;
    use pipescope_core::{Clock, ManualClock};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_huge_limit_and_depth_are_clamped_and_said_so() {
        let config = crate::config::parse("t", "[mqtt.b]\nurl = \"mqtt://h\"\n", []).unwrap();
        let clock = ManualClock::at(1_000_000);
        let state = MqttState::new(&config.mqtt, Arc::new(clock.clone()));
        {
            let mut tree = state.broker("b").unwrap().tree();
            for i in 0..MAX_LIMIT * 3 {
                let topic = format!("wide/{i}");
                let message = Message {
                    topic: &topic,
                    payload: b"1",
                    qos: 0,
                    retain: false,
                };
                tree.record(message, clock.now_millis());
            }
        }
        let response = router(state)
            .oneshot(
                Request::get(
                    "/api/v1/mqtt/brokers/b/tree?root=wide&limit=1000000000&depth=1000000",
                )
                .body(Body::empty())
                .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["limit"], MAX_LIMIT);
        assert_eq!(answer["depth"], MAX_DEPTH);
        let children = answer["tree"]["children"].as_array().unwrap();
        // the largest MAX_LIMIT, then (more) holding the rest
        assert_eq!(children.len(), MAX_LIMIT + 1);
        let more = children.last().unwrap();
        assert_eq!(more["name"], pipescope_core::mqtt::tree::MORE);
        assert_eq!(more["children_count"], MAX_LIMIT * 2);
        assert_eq!(answer["tree"]["messages"], MAX_LIMIT * 3);
    }
}
