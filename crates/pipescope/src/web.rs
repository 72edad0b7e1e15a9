//! The HTTP server. [`router`] is separate from [`serve`] so tests call it without a socket.

pub mod guard;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::shutdown::{Supervisor, TaskHealth};

#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    started: Instant,
    registry: Registry,
    tasks: Option<Supervisor>,
}

impl AppState {
    /// `registry` holds every metric `/metrics` exports; see [`crate::metrics`].
    pub fn new(registry: Registry) -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                registry,
                tasks: None,
            }),
        }
    }

    /// `/health` reports these supervised tasks.
    pub fn with_tasks(self, tasks: Supervisor) -> Self {
        let inner = Arc::into_inner(self.inner).expect("set before the state is shared");
        Self {
            inner: Arc::new(Inner {
                tasks: Some(tasks),
                ..inner
            }),
        }
    }
}

/// The routes every pipescope server has: `/health` and `/metrics`, nothing else (a pipeline
/// part serves these alone). The monitor merges its API and the portal into this one.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Every error the HTTP API answers: a status and the JSON body `{"error": "what failed and
/// what to do"}` ([`ErrorBody`]). Handlers return `Result<Json<T>, ApiError>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: a parameter or the body is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such cluster, broker, topic, group...
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500: the server failed at what it was asked.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What failed and what to do.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

/// A query string the handler cannot read: 400 with axum's explanation, as JSON like every
/// other error (axum's own rejection is plain text).
impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while a supervised task is down between a failure and its restart.
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_s: u64,
    /// The monitor's long-lived tasks (watchers, live updates); absent on a pipeline part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<TaskHealth>>,
}

/// OpenMetrics when the scraper asks for it, otherwise the Prometheus text format (promtool).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "server",
    summary = "Prometheus / OpenMetrics exposition of pipescope's own metrics",
    responses((status = 200, description = "OK", content_type = "text/plain", body = String))
)]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if crate::metrics::wants_openmetrics(accept) {
        (
            [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
            crate::metrics::encode(&state.inner.registry),
        )
    } else {
        (
            [(
                header::CONTENT_TYPE,
                crate::metrics::PROMETHEUS_TEXT_CONTENT_TYPE,
            )],
            crate::metrics::encode_prometheus_text(&state.inner.registry),
        )
    }
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "server",
    summary = "Liveness: status, version, uptime (open even with auth)",
    responses((status = 200, description = "OK", body = Health))
)]
async fn health(State(state): State<AppState>) -> Json<Health> {
    let tasks = state.inner.tasks.as_ref().map(Supervisor::health);
    let all_running = tasks.iter().flatten().all(|task| task.running);
    Json(Health {
        status: if all_running { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.inner.started.elapsed().as_secs(),
        tasks,
    })
}
