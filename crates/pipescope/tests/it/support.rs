//! Helpers shared by the test modules (the testkit has the rest: ports, waiting, services).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

/// GET `path` from `router` in-process: the status and the JSON body (panics on a body that is
/// not JSON, with the body).
pub async fn get_json(router: axum::Router, path: &str) -> (StatusCode, serde_json::Value) {
    let response = router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

/// A store in a fresh temporary directory on the system clock with default retention, and its
/// writer (keep the directory alive as long as the store).
pub fn temp_store(
    queue_batches: usize,
) -> (
    tempfile::TempDir,
    pipescope::store::Store,
    pipescope::store::Writer,
) {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = pipescope::store::Store::open(
        dir.path(),
        pipescope_core::tsdb::Retention::default(),
        std::sync::Arc::new(pipescope_core::SystemClock),
        queue_batches,
    )
    .unwrap();
    (dir, store, writer)
}
