//! `/metrics` as Prometheus tools read it: promtool's linter, and a real Prometheus scraping.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use pipescope::bus::Bus;
use pipescope::store::Store;
use pipescope::web::{AppState, router, serve};
use pipescope_core::tsdb::Retention;
use pipescope_core::{Clock, Labels, Sample, SystemClock};
use pipescope_testkit::{find_binary, free_port, wait_until};

/// A registry with everything this process exports about itself, over a store holding 123 samples.
fn registry_with_store(
    dir: &std::path::Path,
) -> (
    prometheus_client::registry::Registry,
    Store,
    pipescope::store::Writer,
) {
    let (store, writer) =
        Store::open(dir, Retention::default(), Arc::new(SystemClock), 16).unwrap();
    let now = SystemClock.now_millis();
    let samples = (0..123)
        .map(|i| Sample::new("promtest", Labels::default(), now - 1_000 + i, 1.0))
        .collect();
    writer.submit(Arc::new(samples));
    writer.flush().unwrap();
    let mut registry = pipescope::metrics::new_registry();
    pipescope::store::metrics::register(&mut registry, store.clone());
    pipescope::metrics::register_bus(&mut registry, &Bus::new(4));
    (registry, store, writer)
}

#[tokio::test]
async fn promtool_check_metrics_accepts_what_metrics_serves() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let (registry, _store, _writer) = registry_with_store(dir.path());
    // No Accept header, as curl or promtool's users send.
    let response = router(AppState::new(registry))
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        pipescope::metrics::PROMETHEUS_TEXT_CONTENT_TYPE
    );
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    for expected in [
        "pipescope_build_info{version=",
        "pipescope_store_samples_written_total 123\n",
        "pipescope_store_write_batches_total 1\n",
        "pipescope_store_samples_dropped_total 0\n",
        "pipescope_store_queue_depth_batches 0\n",
        "pipescope_bus_dropped_batches_total 0\n",
        "# TYPE pipescope_store_size_bytes gauge\n",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
    }
    let promtool = find_binary("promtool", "sudo apt-get install -y prometheus");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\non:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_metrics_and_answers_a_value_back() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _store, _writer) = registry_with_store(&dir.path().join("store"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(AppState::new(registry)), async {
        let _ = stopped.await;
    }));

    let prometheus = find_binary("prometheus", "sudo apt-get install -y prometheus");
    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: pipescope\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prometheus = KillOnDrop(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let url =
        format!("http://127.0.0.1:{port}/api/v1/query?query=pipescope_store_samples_written_total");
    let answer = tokio::task::spawn_blocking(move || {
        let mut last = String::new();
        let found = wait_until(Duration::from_secs(60), || {
            let Ok(mut response) = ureq::get(&url).call() else {
                return false;
            };
            last = response.body_mut().read_to_string().unwrap_or_default();
            let json: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
            json["data"]["result"][0]["value"][1] == "123"
        });
        (found, last)
    })
    .await
    .unwrap();
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert!(
        answer.0,
        "Prometheus never answered 123; last answer: {}\nprometheus log:\n{log}",
        answer.1
    );
    let json: serde_json::Value = serde_json::from_str(&answer.1).unwrap();
    assert_eq!(json["data"]["result"][0]["metric"]["job"], "pipescope");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
