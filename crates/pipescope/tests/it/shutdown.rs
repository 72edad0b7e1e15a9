//! One way to stop: the monitor ends soon after its stop fires, whatever its brokers do.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipescope::shutdown::Stop;
use pipescope_testkit::{free_port, http_body, wait_until};

/// A TCP server that accepts connections and never answers: a broker that hangs.
fn black_hole() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

fn config_with_hanging_brokers(web: u16, kafka: &str, mqtt: &str, store: &str) -> String {
    format!(
        "[web]\nlisten = \"127.0.0.1:{web}\"\n\n[store]\npath = {store:?}\n\n\
         [kafka.hung]\nbootstrap = [{kafka:?}]\nscrape_interval = \"1s\"\n\n\
         [mqtt.hung]\nurl = \"mqtt://{mqtt}\"\n"
    )
}

#[test]
fn the_monitor_in_process_ends_within_seconds_of_its_stop_while_brokers_hang() {
    let (_kafka, kafka) = black_hole();
    let (_mqtt, mqtt) = black_hole();
    let dir = tempfile::tempdir().unwrap();
    let web = free_port();
    let text = config_with_hanging_brokers(
        web,
        &kafka,
        &mqtt,
        &dir.path().join("store").display().to_string(),
    );
    let config = pipescope::config::parse("test", &text, std::iter::empty()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stop = Stop::new();
    let monitor = runtime.spawn(pipescope::monitor::run(config, stop.clone()));
    assert!(
        wait_until(Duration::from_secs(20), || {
            http_body(web, "/health").is_some_and(|h| h.contains("kafka watcher hung"))
        }),
        "the monitor serves /health with its watchers"
    );
    stop.stop();
    let asked = Instant::now();
    let ended =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(3), monitor).await });
    let result = ended.unwrap_or_else(|_| {
        panic!(
            "the monitor still runs {:?} after its stop",
            asked.elapsed()
        )
    });
    result.expect("no panic").expect("a clean stop");
    assert!(http_body(web, "/health").is_none(), "the server is closed");
}

#[test]
fn pipescope_run_exits_within_seconds_of_sigterm_while_brokers_hang() {
    let (_kafka, kafka) = black_hole();
    let (_mqtt, mqtt) = black_hole();
    let dir = tempfile::tempdir().unwrap();
    let web = free_port();
    let path = dir.path().join("pipescope.toml");
    std::fs::write(
        &path,
        config_with_hanging_brokers(
            web,
            &kafka,
            &mqtt,
            &dir.path().join("store").display().to_string(),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .arg("run")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || http_body(web, "/health")
            .is_some()),
        "pipescope run serves /health"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut status = None;
    let in_time = wait_until(Duration::from_secs(5), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !in_time {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(in_time, "still running 5 s after SIGTERM\n{stderr}");
    assert!(status.unwrap().success(), "{stderr}");
    assert!(stderr.contains("pipescope stopped"), "{stderr}");
}
