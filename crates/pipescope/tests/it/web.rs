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
    monitor_app_with(dir, "")
}

/// The monitor's whole router with the configuration `toml`.
fn monitor_app_with(dir: &std::path::Path, toml: &str) -> axum::Router {
    use std::sync::Arc;

    use pipescope::shutdown::{Stop, Supervisor};
    let clock = Arc::new(pipescope_core::SystemClock);
    let config = pipescope::config::parse("t", toml, []).unwrap();
    let (store, writer) = pipescope::store::Store::open(
        dir,
        pipescope::store::retention_from(&config.store),
        clock.clone(),
        4,
    )
    .unwrap();
    let kafka = pipescope::kafka::LiveState::new();
    let mqtt = pipescope::mqtt::MqttState::new(&config.mqtt, clock.clone());
    let quality = pipescope::quality::QualityState::empty(clock.clone());
    let ready = pipescope::health::ReadyState::new(
        &config,
        pipescope::health::WatchedSources {
            kafka: kafka.clone(),
            mqtt: mqtt.clone(),
            parts: Default::default(),
            flows: Default::default(),
            quality: quality.clone(),
            store: store.clone(),
        },
        clock.clone(),
    );
    let sources = pipescope::monitor::Sources {
        bus: pipescope::bus::Bus::new(4),
        store,
        writer,
        kafka,
        mqtt,
        flows: Default::default(),
        probes: Default::default(),
        quality,
        parts: Default::default(),
        ready,
        alerts: pipescope::alerts::AlertsState::new(&config, None, clock.clone()),
        hub: pipescope::api::Hub::new(clock.clone()),
        tasks: Supervisor::new(Stop::new(), clock.clone()),
        clock,
    };
    pipescope::monitor::app(new_registry(), &sources, &config.web)
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

/// The status, headers and body text of `request` sent to `app` in-process.
async fn send(
    app: axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app.oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn write_request(origin: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/write?db=x").header("host", "127.0.0.1:7575");
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.body(Body::from("csrf value=1\n")).unwrap()
}

/// Another site's page can make the browser POST line protocol to the monitor (CSRF): refused
/// unless the Origin is the monitor's own or allowed; curl and the sink send no Origin.
#[tokio::test]
async fn a_cross_origin_write_is_refused_and_same_origin_or_no_origin_writes() {
    let dir = tempfile::tempdir().unwrap();
    let app = monitor_app_with(
        dir.path(),
        "[web]\nallowed_origins = [\"https://grafana.example.com\"]\n",
    );
    let (status, _, body) = send(app.clone(), write_request(Some("http://evil.example"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("allowed_origins"), "{body}");
    for origin in [
        None,
        Some("http://127.0.0.1:7575"),
        Some("https://grafana.example.com"),
    ] {
        let (status, _, body) = send(app.clone(), write_request(origin)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{origin:?}: {body}");
    }
}

/// DNS rebinding: a page at evil.example, its name pointed at 127.0.0.1, reads the API as its
/// own origin; the Host header still says evil.example.
#[tokio::test]
async fn a_host_that_is_not_this_server_is_refused_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let app = monitor_app_with(
        dir.path(),
        "[web]\nallowed_hosts = [\"pipescope.example.com\"]\n",
    );
    let get = |host: &str| {
        Request::get("/api/v1/events")
            .header("host", host)
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, body) = send(app.clone(), get("evil.example:7575")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("allowed_hosts"), "{body}");
    for host in [
        "127.0.0.1:7575",
        "localhost:7575",
        "[::1]:7575",
        "pipescope.example.com",
    ] {
        let (status, _, body) = send(app.clone(), get(host)).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let app = monitor_app(dir.path());
    for (path, host, expected) in [
        ("/", "127.0.0.1:7575", StatusCode::OK),
        ("/api/v1/events", "127.0.0.1:7575", StatusCode::OK),
        ("/health", "127.0.0.1:7575", StatusCode::OK),
        ("/no-such-page", "127.0.0.1:7575", StatusCode::NOT_FOUND),
        ("/api/v1/events", "evil.example", StatusCode::FORBIDDEN),
    ] {
        let request = Request::get(path).header("host", host).body(Body::empty());
        let (status, headers, _) = send(app.clone(), request.unwrap()).await;
        assert_eq!(status, expected, "{path}");
        for (name, value) in pipescope::web::guard::SECURITY_HEADERS {
            assert_eq!(headers[name], *value, "{path}: {name}");
        }
    }
    assert!(
        pipescope::web::guard::CONTENT_SECURITY_POLICY.contains("script-src 'self';"),
        "no inline or foreign script"
    );
}

mod limits {
    use std::time::Duration;

    use axum::routing::{get, post};
    use pipescope::web::{Limits, serve_with};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::{Instant, timeout};

    /// A server on a free port with `limits`, a route answering the body it read, and a live
    /// stream; stops when the returned sender is dropped.
    async fn server(limits: Limits) -> (String, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let hub = pipescope::api::Hub::new(std::sync::Arc::new(pipescope_core::SystemClock));
        let router = axum::Router::new()
            .route("/echo", post(|body: String| async move { body }))
            .route("/hello", get(|| async { "hello" }))
            .merge(pipescope::api::router(
                hub.clone(),
                pipescope::kafka::LiveState::new(),
                pipescope::completeness::FlowsState::default(),
            ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_with(
            listener,
            router,
            async move {
                let _ = stopped.await;
                hub.close();
            },
            limits,
        ));
        (address, stop)
    }

    fn short() -> Limits {
        Limits {
            max_connections: 4,
            header_read_timeout: Duration::from_millis(300),
            body_read_timeout: Duration::from_millis(300),
        }
    }

    /// Everything the server sends until it closes the connection, or what came within `wait`.
    async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> (bool, String) {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (true, String::from_utf8_lossy(&got).into()),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => return (false, String::from_utf8_lossy(&got).into()),
            }
        }
    }

    #[tokio::test]
    async fn a_client_trickling_its_headers_is_cut_off() {
        let (address, _stop) = server(short()).await;
        let mut slow = TcpStream::connect(&address).await.unwrap();
        slow.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let (closed, _) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
        assert!(closed, "the connection is still open after 10 s");
        assert!(started.elapsed() < Duration::from_secs(5));
        // An idle keep-alive connection is closed the same way.
        let mut idle = TcpStream::connect(&address).await.unwrap();
        idle.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (closed, answer) = read_until_closed(&mut idle, Duration::from_secs(10)).await;
        assert!(closed && answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_answered_408() {
        let (address, _stop) = server(short()).await;
        let mut slow = TcpStream::connect(&address).await.unwrap();
        slow.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nsome")
            .await
            .unwrap();
        let (_, answer) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("did not arrive within 0.3 s"), "{answer}");
        // A body sent whole is read as usual.
        let mut quick = TcpStream::connect(&address).await.unwrap();
        quick
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
            .await
            .unwrap();
        let (_, answer) = read_until_closed(&mut quick, Duration::from_secs(10)).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"),
            "{answer}"
        );
    }

    /// Past the cap a connection waits (in the listen queue) until one closes.
    #[tokio::test]
    async fn connections_past_the_cap_wait_for_a_free_slot() {
        let limits = Limits {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(30),
            ..short()
        };
        let (address, _stop) = server(limits).await;
        let first = TcpStream::connect(&address).await.unwrap();
        let _second = TcpStream::connect(&address).await.unwrap();
        let mut third = TcpStream::connect(&address).await.unwrap();
        third
            .write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (_, early) = read_until_closed(&mut third, Duration::from_millis(500)).await;
        assert_eq!(early, "", "answered past the cap");
        drop(first);
        let (closed, answer) = read_until_closed(&mut third, Duration::from_secs(10)).await;
        assert!(closed && answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    /// The header timeout must not cut a live stream, which sends but never reads.
    #[tokio::test]
    async fn a_live_stream_outlives_the_header_timeout_and_ends_at_shutdown() {
        let (address, stop) = server(short()).await;
        let mut live = TcpStream::connect(&address).await.unwrap();
        live.write_all(b"GET /api/v1/live HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (closed, head) = read_until_closed(&mut live, Duration::from_secs(2)).await;
        assert!(!closed, "the live stream was closed: {head}");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        drop(stop);
        let (closed, _) = read_until_closed(&mut live, Duration::from_secs(10)).await;
        assert!(closed, "the live stream is still open after the shutdown");
        assert!(
            timeout(Duration::from_secs(5), TcpStream::connect(&address))
                .await
                .is_ok_and(|c| c.is_err()),
            "still accepting after the shutdown"
        );
    }
}

/// `pipescope run` on `listen`, with no auth and nothing to watch: its log up to a SIGTERM.
fn log_of_run_on(ip: &str) -> String {
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use pipescope_testkit::{free_port, http_body, wait_until};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("pipescope.toml");
    let store = dir.path().join("store");
    std::fs::write(
        &path,
        format!("[web]\nlisten = \"{ip}:{port}\"\n[store]\npath = {store:?}\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["run", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let up = wait_until(Duration::from_secs(20), || {
        http_body(port, "/health").is_some()
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    if !wait_until(Duration::from_secs(5), || {
        child.try_wait().unwrap().is_some()
    }) {
        let _ = child.kill();
    }
    let log = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned();
    assert!(
        up,
        "pipescope run did not serve /health on {ip}:{port}\n{log}"
    );
    log
}

#[test]
fn pipescope_run_warns_once_when_it_listens_beyond_loopback_without_auth() {
    let warning = "with no authentication";
    let open = log_of_run_on("0.0.0.0");
    assert_eq!(open.matches(warning).count(), 1, "{open}");
    assert!(open.contains("[web] auth"), "{open}");
    let local = log_of_run_on("127.0.0.1");
    assert!(!local.contains(warning), "{local}");
}
