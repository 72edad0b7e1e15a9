use axum::body::Body;
use axum::http::{Request, StatusCode};
use pipescope::metrics::new_registry;
use pipescope::web::{AppState, router};
use tower::ServiceExt;

#[tokio::test]
async fn health_answers_ok_with_the_version() {
    let response = router(AppState::new(new_registry()))
        .oneshot(Request::get("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let response = router(AppState::new(new_registry()))
        .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_are_served_as_openmetrics_text_to_who_asks() {
    let response = router(AppState::new(new_registry()))
        .oneshot(
            Request::get("/metrics")
                .header("accept", "application/openmetrics-text;version=1.0.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        pipescope::metrics::CONTENT_TYPE
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("pipescope_build_info{version="), "{text}");
}

/// The monitor's whole router, as `pipescope run` serves it.
fn monitor_app(dir: &std::path::Path) -> axum::Router {
    use std::sync::Arc;

    use pipescope::shutdown::{Stop, Supervisor};
    let clock = Arc::new(pipescope_core::SystemClock);
    let config = pipescope::config::parse("t", "", []).unwrap();
    let (store, writer) = pipescope::store::Store::open(
        dir,
        pipescope::store::retention_from(&config.store),
        clock.clone(),
        4,
    )
    .unwrap();
    let sources = pipescope::monitor::Sources {
        bus: pipescope::bus::Bus::new(4),
        store,
        writer,
        kafka: pipescope::kafka::LiveState::new(),
        mqtt: pipescope::mqtt::MqttState::new(&config.mqtt, clock.clone()),
        hub: pipescope::api::Hub::new(clock.clone()),
        tasks: Supervisor::new(Stop::new(), clock.clone()),
        clock,
    };
    pipescope::monitor::app(new_registry(), &sources, &config.web.auth)
}

#[tokio::test]
async fn the_portal_is_served_at_the_root_by_the_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let response = monitor_app(dir.path())
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/html");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let html = String::from_utf8(body.to_vec()).unwrap();
    assert!(html.contains("<title>pipescope</title>"), "{html}");
}

/// A pipeline part's server has /health and /metrics only: no portal whose API calls would fail.
#[tokio::test]
async fn a_parts_server_does_not_serve_the_portal() {
    for path in ["/", "/index.html", "/api/v1/kafka/clusters"] {
        let response = router(AppState::new(new_registry()))
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
