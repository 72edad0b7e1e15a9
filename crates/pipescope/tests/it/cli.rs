use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use pipescope_testkit::{free_port, wait_until};

fn pipescope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(args)
        .env_remove("PIPESCOPE__WEB__LISTEN")
        .output()
        .expect("run pipescope")
}

fn check(dir: &Path, name: &str, text: &str) -> (i32, String) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = pipescope(&["check", "-c", path.to_str().unwrap()]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().expect("exit code"), text)
}

#[test]
fn the_example_config_passes_check() {
    let example = pipescope(&["config", "example"]);
    assert!(example.status.success());
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = check(
        dir.path(),
        "example.toml",
        &String::from_utf8(example.stdout).unwrap(),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("valid — 1 Kafka cluster(s), 1 MQTT broker(s), web on 127.0.0.1:7575"),
        "{out}"
    );
}

#[test]
fn check_reports_each_class_of_error_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("syntax", "[kafka.prod\n", "invalid TOML"),
        (
            "bad host:port",
            "[kafka.prod]\nbootstrap = [\"localhost\"]\n",
            "kafka.prod.bootstrap[0]: expected host:port, got \"localhost\"",
        ),
        (
            "unknown key",
            "[web]\nlisten_on = \"127.0.0.1:1\"\n",
            "web.listen_on: unknown key \"listen_on\" — did you mean \"listen\"?",
        ),
        (
            "unknown section",
            "[kafak.prod]\nbootstrap = \"a:1\"\n",
            "kafak: unknown key \"kafak\" — did you mean \"kafka\"?",
        ),
        (
            "missing key",
            "[mqtt.edge]\nfilters = [\"#\"]\n",
            "mqtt.edge: missing key \"url\" — give the broker's address",
        ),
        (
            "wrong type",
            "[kafka.prod]\nbootstrap = \"a:1\"\nscrape_interval = 10\n",
            "kafka.prod.scrape_interval:",
        ),
        (
            "bad duration",
            "[kafka.prod]\nbootstrap = \"a:1\"\nscrape_interval = \"0s\"\n",
            "kafka.prod.scrape_interval: must be more than 0",
        ),
        (
            "bad enum",
            "[kafka.prod]\nbootstrap = \"a:1\"\n[kafka.prod.sasl]\nmechanism = \"scram\"\nusername = \"u\"\npassword = \"p\"\n",
            "kafka.prod.sasl.mechanism: unknown value \"scram\"",
        ),
        (
            "bad url",
            "[mqtt.edge]\nurl = \"http://h\"\n",
            "mqtt.edge.url: unsupported scheme \"http\"",
        ),
        (
            "bad filter",
            "[mqtt.edge]\nurl = \"mqtt://h\"\nfilters = [\"a/#/b\"]\n",
            "mqtt.edge.filters[0]: '#' must be the whole last level",
        ),
        (
            "missing file",
            "[kafka.prod]\nbootstrap = \"a:1\"\n[kafka.prod.tls]\nca = \"/nonexistent.pem\"\n",
            "kafka.prod.tls.ca: cannot read /nonexistent.pem",
        ),
        (
            "bad name",
            "[kafka.\"prod cluster\"]\nbootstrap = \"a:1\"\n",
            "invalid name \"prod cluster\"",
        ),
    ];
    for (class, text, expected) in cases {
        let (code, out) = check(dir.path(), "broken.toml", text);
        assert_eq!(code, 2, "{class}: {out}");
        assert!(
            out.contains(expected),
            "{class}: expected {expected:?} in\n{out}"
        );
    }
    let (code, out) = check(
        dir.path(),
        "two.toml",
        "[web]\nlisten = \"x\"\n[mqtt.a]\nurl = \"mqtt://h\"\nfilters = [\"b+\"]\n",
    );
    assert_eq!(code, 2);
    assert!(out.contains("2 errors"), "{out}");
}

#[test]
fn check_of_a_missing_file_says_so() {
    let out = pipescope(&["check", "-c", "/nonexistent/pipescope.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/pipescope.toml") && err.contains("cannot read the file"),
        "{err}"
    );
}

#[test]
fn version_prints_the_crate_version() {
    let out = pipescope(&["version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("pipescope {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn run_serves_health_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("pipescope.toml");
    let store = dir.path().join("store");
    std::fs::write(
        &config,
        format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\n[store]\npath = {:?}\n",
            store.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["run", "-c", config.to_str().unwrap()])
        // A user's own allocator setting; the monitor adds the one it lacks.
        .env("MIMALLOC_PURGE_DELAY", "250")
        .env_remove("MIMALLOC_ALLOW_THP")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut answer = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            answer = pipescope_testkit::http_get(port, "/health");
            answer.is_some()
        }),
        "pipescope run did not serve /health"
    );
    let (status, answer) = answer.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"status\":\"ok\""), "{answer}");
    // It started again in the same process with its allocator options (pipescope::allocator).
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
    let environ: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    for option in ["MIMALLOC_PURGE_DELAY=250", "MIMALLOC_ALLOW_THP=0"] {
        assert!(
            environ.contains(&option.as_bytes()),
            "{option} not in the environment of pipescope run"
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stopped = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            stopped = child.try_wait().unwrap();
            stopped.is_some()
        }),
        "pipescope run did not stop on SIGTERM"
    );
    assert!(stopped.unwrap().success());
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("SIGTERM received"), "{log}");
    // A log going to a pipe or a file has no terminal colour codes in it.
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a piped log: {log:?}"
    );
}

#[test]
fn run_reports_a_busy_listen_address() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pipescope.toml");
    std::fs::write(&config, format!("[web]\nlisten = \"127.0.0.1:{port}\"\n")).unwrap();
    let out = pipescope(&["run", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn run_and_check_warn_about_a_login_without_tls() {
    // A taken port ends `run` right after its start-up warnings.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\n\
         [mqtt.edge]\nurl = \"mqtt://127.0.0.1:1\"\nusername = \"u\"\npassword = \"hunter2\"\n"
    );
    let warning = "mqtt.edge: user \"u\" logs in over mqtt://127.0.0.1:1 without TLS";
    let (code, out) = check(dir.path(), "pipescope.toml", &text);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("warning: {warning}")), "{out}");
    let config = dir.path().join("pipescope.toml");
    let out = pipescope(&["run", "-c", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches(warning).count(), 1, "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// Every example under config/ loads into its part's options, and all of them joined in one
/// file with the monitor's example still pass `pipescope check`.
#[test]
fn every_example_part_config_loads_and_shares_a_file_with_the_monitor() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut joined = String::from_utf8(pipescope(&["config", "example"]).stdout).unwrap();
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        // sink-influx.toml is for `pipescope sink influx`.
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let mut args: Vec<std::ffi::OsString> = vec!["pipescope".into()];
        args.extend(stem.split('-').map(Into::into));
        args.push("--config".into());
        args.push(path.clone().into());
        if let Err(e) = pipescope::cli::parse(args) {
            panic!("{}: {e}", path.display());
        }
        joined.push_str(&std::fs::read_to_string(&path).unwrap());
        loaded.push(stem);
    }
    loaded.sort();
    assert_eq!(
        loaded,
        [
            "bridge",
            "process-calls",
            "process-machines",
            "process-passthrough",
            "simulate-calls",
            "simulate-machines",
            "simulate-traffic",
            "simulate-visits",
            "sink-influx"
        ]
    );
    let tmp = tempfile::tempdir().unwrap();
    let (code, out) = check(tmp.path(), "pipeline.toml", &joined);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("pipeline parts: bridge, process calls, process machines, process passthrough, simulate calls, simulate machines, simulate traffic, simulate visits, sink influx"),
        "{out}"
    );
    // The real binary reads its part's table from the joined file too.
    let joined_path = tmp.path().join("pipeline.toml");
    let out = pipescope(&[
        "sink",
        "influx",
        "--config",
        joined_path.to_str().unwrap(),
        "--batch-size",
        "nonsense",
    ]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("--batch-size"), "{text}");
    assert!(text.contains("some options came from"), "{text}");
}

/// `pipescope check` reads the parts' tables as the parts would: every mistake in them is
/// reported (with the monitor's own), and options left for the command line are not mistakes.
#[test]
fn check_reports_mistakes_in_the_parts_tables() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = check(
        dir.path(),
        "pipeline.toml",
        r#"
[bridge]
mqtt = "mqtt://127.0.0.1:1883"
max_in_flight = "lots"

[sink.influx]
databse = "x"

[process.machines]
window = "10 parsecs"

[simulate.calls]
rate = 2.0
"#,
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("[bridge] invalid value 'lots' for '--max-in-flight"),
        "{out}"
    );
    assert!(
        out.contains("[sink.influx] databse: no such option"),
        "{out}"
    );
    assert!(
        out.contains("[process.machines] invalid value '10 parsecs' for '--window"),
        "{out}"
    );
    // `--map` (required by the bridge) is left to the command line; [simulate.calls] is fine.
    assert!(!out.contains("--map"), "{out}");
    assert!(!out.contains("simulate.calls"), "{out}");
}
