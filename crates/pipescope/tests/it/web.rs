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

#[tokio::test]
async fn the_portal_is_served_at_the_root() {
    let response = router(AppState::new(new_registry()))
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
