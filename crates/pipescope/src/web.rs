//! The HTTP server. [`router`] is separate from [`serve`] so tests call it without a socket.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
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
