//! The HTTP server. [`router`] is separate from [`serve`] so tests call it without a socket.

pub mod guard;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

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

/// How long a client may take to send a request's head, and how long an idle keep-alive
/// connection stays open: a client trickling its headers (slowloris) is cut off.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request's whole body (answered 408 after).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; more wait in the listen queue until one closes. Above the
/// live streams' cap ([`crate::api::MAX_LIVE_STREAMS`]) so that a full portal still loads.
pub const MAX_CONNECTIONS: usize = 256;

/// What one client may hold of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
        }
    }
}

/// Serves `router` on `listener` with the default [`Limits`] until `shutdown` completes, then
/// lets the requests under way finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, Limits::default()).await
}

/// [`serve`] with other limits (tests use short ones).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        limits.body_read_timeout,
        time_body,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stopping, stopping_seen) = tokio::sync::watch::channel(false);
    let connections = tokio_util::task::TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A connection is accepted only with a free slot: the others wait in the kernel's queue.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let mut stopping = stopping_seen.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "HTTP connection ended with an error");
                    }
                    return;
                }
                _ = stopping.wait_for(|stopping| *stopping) => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Errors of one connection are skipped; others (out of file descriptors) pause accepting a
/// moment instead of spinning.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        tracing::warn!(error = %e, "cannot accept an HTTP connection");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Fails the reading of a request body that has not all arrived `limit` after its head, and
/// answers 408 in place of what the handler made of the cut body.
async fn time_body(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    if request.body().size_hint().exact() == Some(0) {
        return next.run(request).await;
    }
    let deadline = tokio::time::Instant::now() + limit;
    let timed_out = Arc::new(AtomicBool::new(false));
    let flag = timed_out.clone();
    let request = request.map(|body| {
        let chunks = futures::stream::unfold(Some(body.into_data_stream()), move |data| {
            let flag = flag.clone();
            async move {
                let mut data = data?;
                match tokio::time::timeout_at(deadline, data.next()).await {
                    Ok(Some(chunk)) => Some((chunk.map_err(axum::BoxError::from), Some(data))),
                    Ok(None) => None,
                    Err(_) => {
                        flag.store(true, Ordering::Relaxed);
                        Some((Err("the request body is late".into()), None))
                    }
                }
            }
        });
        Body::from_stream(chunks)
    });
    let response = next.run(request).await;
    if timed_out.load(Ordering::Relaxed) {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s: send it whole, faster",
                limit.as_secs_f64()
            ),
        )
        .into_response();
    }
    response
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
    /// `ok`; `degraded` while a supervised task is between a failure and its restart (still
    /// live, 200); `failing` (503) when a task is dead or in a crash loop (see `tasks`).
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_s: u64,
    /// The monitor's long-lived tasks (watchers, live updates); absent on a pipeline part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<TaskHealth>>,
    /// The tasks that fail liveness, with since when (`failing_since_ms`); absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<TaskHealth>,
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
    summary = "Liveness: the process and its tasks work — 503 when a supervised task is dead or in a crash loop, saying which and since when (open even with auth)",
    responses(
        (status = 200, description = "Live", body = Health),
        (status = 503, description = "A task is dead or in a crash loop", body = Health)
    )
)]
pub(crate) async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let tasks = state.inner.tasks.as_ref().map(Supervisor::health);
    let failing: Vec<TaskHealth> = tasks
        .iter()
        .flatten()
        .filter(|task| task.liveness.fails_liveness())
        .cloned()
        .collect();
    let all_running = tasks.iter().flatten().all(|task| task.running);
    let (code, status) = match (failing.is_empty(), all_running) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "failing"),
        (true, false) => (StatusCode::OK, "degraded"),
        (true, true) => (StatusCode::OK, "ok"),
    };
    let health = Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.inner.started.elapsed().as_secs(),
        tasks,
        failing,
    };
    (code, Json(health))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use pipescope_core::SystemClock;
    use tower::ServiceExt;

    use super::*;
    use crate::shutdown::Stop;

    async fn health_of(state: AppState) -> (StatusCode, serde_json::Value) {
        let response = router(state)
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn health_fails_with_the_task_in_a_crash_loop_and_since_when() {
        let stop = Stop::new();
        let tasks = Supervisor::new(stop.clone(), Arc::new(SystemClock));
        tasks.spawn("fine", Box::new(|| Box::pin(std::future::pending::<()>())));
        let state = AppState::new(Registry::default()).with_tasks(tasks.clone());
        let (status, health) = health_of(state.clone()).await;
        assert_eq!(status, StatusCode::OK, "{health}");
        assert_eq!(health["status"], "ok");
        assert!(health.get("failing").is_none(), "{health}");

        tasks.spawn("kafka watcher k", Box::new(|| Box::pin(async {})));
        let deadline = Instant::now() + Duration::from_secs(10);
        let (status, health) = loop {
            let (status, health) = health_of(state.clone()).await;
            if status == StatusCode::SERVICE_UNAVAILABLE {
                break (status, health);
            }
            assert!(Instant::now() < deadline, "never failing: {health}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(health["status"], "failing");
        let failing = &health["failing"][0];
        assert_eq!(failing["name"], "kafka watcher k", "{health}");
        assert_eq!(failing["liveness"], "crash_loop");
        assert!(failing["failing_since_ms"].as_u64().is_some(), "{health}");
        assert_eq!(failing["last_failure"], "ended by itself");
        stop.stop();
        tasks.wait().await;
    }
}
