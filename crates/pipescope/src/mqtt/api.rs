//! JSON API of the MQTT watcher:
//! - `GET /api/v1/mqtt/brokers`: every broker, its connection, `$SYS` status and tree size;
//! - `GET /api/v1/mqtt/brokers/{b}/sys`: the broker's typed `$SYS` metrics;
//! - `GET /api/v1/mqtt/brokers/{b}/tree?root=&depth=&limit=&value=`: the topic tree in the nested
//!   `{name, value, children}` shape a sunburst draws directly.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pipescope_core::mqtt::tree::MAX_DEPTH;
use pipescope_core::mqtt::{NodeView, TreeSummary, ValueOf};
use serde::{Deserialize, Serialize};

use super::{BrokerState, Connection, MqttState, SysStatus};

/// Depth of the tree answered when none is asked for.
pub const DEFAULT_DEPTH: usize = 3;
/// Children shown per node when no `limit` is asked for; the others are summed in `(more)`.
pub const DEFAULT_LIMIT: usize = 1_000;

pub fn router(state: MqttState) -> Router {
    Router::new()
        .route("/api/v1/mqtt/brokers", get(brokers))
        .route("/api/v1/mqtt/brokers/{broker}/sys", get(sys))
        .route("/api/v1/mqtt/brokers/{broker}/tree", get(tree))
        .with_state(state)
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
}

fn not_found(error: String) -> Response {
    (StatusCode::NOT_FOUND, Json(ErrorBody { error })).into_response()
}

fn unknown_broker(state: &MqttState, name: &str) -> Response {
    let known: Vec<&str> = state.brokers().map(|b| b.name.as_str()).collect();
    not_found(format!(
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
    pub connection: Connection,
    /// Whether the broker publishes `$SYS`: seen, none, or waiting (not yet known).
    pub sys_status: SysStatus,
    pub sys_messages: u64,
    pub version: Option<String>,
    pub tree: TreeSummary,
}

fn broker_view(b: &BrokerState) -> BrokerView {
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

async fn sys(State(state): State<MqttState>, Path(name): Path<String>) -> Response {
    let Some(b) = state.broker(&name) else {
        return unknown_broker(&state, &name);
    };
    let status = b.sys_status();
    let sys = b.sys().clone();
    Json(SysView {
        broker: name,
        status,
        version: sys.version.clone(),
        sys,
    })
    .into_response()
}

#[derive(Debug, Deserialize)]
struct TreeQuery {
    #[serde(default)]
    root: String,
    depth: Option<usize>,
    limit: Option<usize>,
    #[serde(default)]
    value: ValueOf,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = MqttTree)]
pub struct TreeView {
    broker: String,
    summary: TreeSummary,
    depth: usize,
    /// The subtree asked for: `{name, value, children}` down to `depth` levels below it.
    tree: NodeView,
}

async fn tree(
    State(state): State<MqttState>,
    Path(name): Path<String>,
    query: Result<Query<TreeQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        // JSON like every other error of the API (axum's own rejection is plain text).
        Err(rejection) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(ErrorBody {
                    error: rejection.body_text(),
                }),
            )
                .into_response();
        }
    };
    let Some(b) = state.broker(&name) else {
        return unknown_broker(&state, &name);
    };
    let depth = query.depth.unwrap_or(DEFAULT_DEPTH).min(MAX_DEPTH);
    let now = b.clock.now_millis();
    let root = query.root.as_str();
    let tree = b.tree();
    let summary = tree.summary();
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    match tree.view(root, depth, limit, query.value, now) {
        Some(view) => Json(TreeView {
            broker: name,
            summary,
            depth,
            tree: view,
        })
        .into_response(),
        None => not_found(format!(
            "no topic {root:?} in the tree of MQTT broker {name}"
        )),
    }
}
