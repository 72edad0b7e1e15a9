//! InfluxDB export against a real influxd 1.6, including a restart of influxd mid-export.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pipescope::bus::Bus;
use pipescope::config::InfluxExport;
use pipescope::export::influx::{InfluxExporter, InfluxStats};
use pipescope_core::{Clock, Labels, Sample, SystemClock};
use pipescope_testkit::{Influxd, wait_until};

fn config(influxd: &Influxd) -> InfluxExport {
    InfluxExport {
        url: influxd.url(),
        version: 1,
        database: "datapipes".into(),
        username: None,
        password: None,
        org: None,
        bucket: None,
        token: None,
        interval: Duration::from_millis(100),
        buffer_lines: 100_000,
    }
}

/// The single number an InfluxQL `SELECT count(...)` answers, or 0 when there is none yet.
fn count(influxd: &Influxd, statement: &str) -> u64 {
    let json: serde_json::Value =
        serde_json::from_str(&influxd.query("datapipes", statement)).unwrap_or_default();
    json["results"][0]["series"][0]["values"][0][1]
        .as_u64()
        .unwrap_or(0)
}

struct Running {
    runtime: tokio::runtime::Runtime,
    bus: Bus,
    stats: Arc<InfluxStats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn start_exporter(config: InfluxExport) -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bus = Bus::new(1024);
    let stats = Arc::new(InfluxStats::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let exporter = InfluxExporter::new(config, stats.clone());
    let receiver = bus.subscribe();
    let task = runtime.spawn(exporter.run(receiver, async {
        let _ = stopped.await;
    }));
    Running {
        runtime,
        bus,
        stats,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Running {
    fn stop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.runtime.block_on(self.task.take().unwrap()).unwrap();
    }
}

#[test]
fn exports_to_influxd_1_6_creating_the_database_and_keeping_names_exact() {
    let influxd = Influxd::start();
    let mut running = start_exporter(config(&influxd));
    let now = SystemClock.now_millis();
    let tricky = [
        ("plain", "orders"),
        ("spaces", "a b"),
        ("punct", "k=v,w"),
        ("slash", "a\\,b\\"),
        ("quote", "say \"hi\""),
    ];
    let samples: Vec<Sample> = tricky
        .iter()
        .enumerate()
        .map(|(i, (name, value))| {
            Sample::new(
                "pipescope_test metric",
                Labels::new([("case", *name), ("topic", *value)]),
                now - 1_000 + i as u64,
                i as f64 + 0.5,
            )
        })
        .collect();
    running.bus.publish(samples);
    assert!(
        wait_until(Duration::from_secs(20), || {
            count(
                &influxd,
                r#"SELECT count("value") FROM "pipescope_test metric""#,
            ) == 5
        }),
        "stats {:?}; answer {}",
        running.stats,
        influxd.query("datapipes", r#"SELECT * FROM "pipescope_test metric""#)
    );
    let answer = influxd.query(
        "datapipes",
        r#"SELECT "value", "topic" FROM "pipescope_test metric" WHERE "case" = 'punct'"#,
    );
    let json: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let row = &json["results"][0]["series"][0]["values"][0];
    assert_eq!(row[1], 2.5, "{answer}");
    assert_eq!(row[2], "k=v,w", "{answer}");
    // InfluxDB cannot store a trailing backslash in a tag: it is left out.
    for (case, expected) in [
        ("spaces", "a b"),
        ("quote", "say \"hi\""),
        ("slash", "a\\,b"),
    ] {
        let answer = influxd.query(
            "datapipes",
            &format!(
                r#"SELECT "value", "topic" FROM "pipescope_test metric" WHERE "case" = '{case}'"#
            ),
        );
        let json: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            json["results"][0]["series"][0]["values"][0][2], expected,
            "{answer}"
        );
    }
    running.stop();
    assert_eq!(running.stats.lines_sent.load(Ordering::Relaxed), 5);
    assert_eq!(running.stats.lines_dropped.load(Ordering::Relaxed), 0);
}

#[test]
fn an_influxd_restart_mid_export_loses_nothing_and_the_retries_are_counted() {
    let mut influxd = Influxd::start();
    let mut running = start_exporter(config(&influxd));
    let base = SystemClock.now_millis() - 60_000;
    let publish = |running: &Running, batch: u64| {
        let samples = (0..100)
            .map(|i| {
                Sample::new(
                    "restart_test",
                    Labels::new([("series", (i % 10).to_string())]),
                    base + batch * 10 + i / 10,
                    1.0,
                )
            })
            .collect();
        running.bus.publish(samples);
    };
    for batch in 0..10 {
        publish(&running, batch);
    }
    let total = |influxd: &Influxd| count(influxd, r#"SELECT count("value") FROM "restart_test""#);
    assert!(wait_until(Duration::from_secs(20), || total(&influxd) == 1_000));

    influxd.kill();
    for batch in 10..30 {
        publish(&running, batch);
    }
    // The exporter has tried, failed and is backing off.
    assert!(wait_until(Duration::from_secs(20), || {
        running.stats.retries.load(Ordering::Relaxed) >= 2
    }));
    for batch in 30..40 {
        publish(&running, batch);
    }
    influxd.restart();
    assert!(
        wait_until(Duration::from_secs(60), || total(&influxd) == 4_000),
        "{} of 4000 points in influxd; stats {:?}",
        total(&influxd),
        running.stats
    );
    running.stop();
    assert_eq!(running.stats.lines_sent.load(Ordering::Relaxed), 4_000);
    assert_eq!(running.stats.lines_dropped.load(Ordering::Relaxed), 0);
    assert!(running.stats.retries.load(Ordering::Relaxed) >= 2);
}

#[test]
fn lines_influxd_refuses_are_counted_as_dropped_and_the_rest_as_sent() {
    let influxd = Influxd::start();
    influxd.query("", "CREATE DATABASE datapipes");
    // "value" already holds strings in this measurement (field types are per shard, so at the
    // same time as the samples): float lines conflict with it.
    let now = SystemClock.now_millis();
    let mut response = ureq::post(format!("{}/write", influxd.url()))
        .query("db", "datapipes")
        .query("precision", "ms")
        .send(format!("conflict value=\"text\" {}\n", now - 1_000))
        .unwrap();
    assert_eq!(
        response.status(),
        204,
        "{:?}",
        response.body_mut().read_to_string()
    );
    let mut running = start_exporter(config(&influxd));
    let samples: Vec<Sample> = (0..5)
        .map(|i| {
            let metric = if i < 3 { "conflict" } else { "fine" };
            Sample::new(metric, Labels::default(), now - 100 + i, 1.0)
        })
        .collect();
    running.bus.publish(samples);
    assert!(wait_until(Duration::from_secs(20), || {
        running.stats.lines_dropped.load(Ordering::Relaxed) > 0
    }));
    assert_eq!(running.stats.lines_dropped.load(Ordering::Relaxed), 3);
    assert_eq!(running.stats.lines_sent.load(Ordering::Relaxed), 2);
    assert_eq!(count(&influxd, r#"SELECT count("value") FROM "fine""#), 2);
    running.stop();
}

/// InfluxDB 2.x is not installed here: a stand-in server records what the exporter sends to
/// `/api/v2/write`, answering 503 to the first write (as an overloaded server does).
#[test]
fn writes_to_influxdb_2_with_org_bucket_and_token_and_retries_a_503() {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use axum::extract::{RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};

    type Seen = Arc<Mutex<Vec<(String, String, String)>>>;
    let seen: Seen = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut running = start_exporter(InfluxExport {
        url: format!("http://127.0.0.1:{port}"),
        version: 2,
        database: "unused".into(),
        username: None,
        password: None,
        org: Some("acme".into()),
        bucket: Some("pipes".into()),
        token: Some(pipescope::config::Secret::new("s3cret")),
        interval: Duration::from_millis(100),
        buffer_lines: 1_000,
    });
    let app = axum::Router::new()
        .route(
            "/api/v2/write",
            axum::routing::post(
                |State((seen, calls)): State<(Seen, Arc<AtomicUsize>)>,
                 RawQuery(query): RawQuery,
                 headers: HeaderMap,
                 body: String| async move {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let auth = headers["authorization"].to_str().unwrap().to_string();
                    seen.lock()
                        .unwrap()
                        .push((query.unwrap_or_default(), auth, body));
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state((seen.clone(), calls.clone()));
    running.runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, app).await.unwrap();
    });
    running.bus.publish(vec![
        Sample::new("m", Labels::new([("t", "a b")]), 1_700_000_000_000, 1.5),
        Sample::new("m", Labels::default(), 1_700_000_000_001, 2.0),
    ]);
    assert!(wait_until(Duration::from_secs(20), || !seen
        .lock()
        .unwrap()
        .is_empty()));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![(
            "org=acme&bucket=pipes&precision=ms".to_string(),
            "Token s3cret".to_string(),
            "m,t=a\\ b value=1.5 1700000000000\nm value=2.0 1700000000001\n".to_string()
        )]
    );
    running.stop();
    assert_eq!(running.stats.retries.load(Ordering::Relaxed), 1);
    assert_eq!(running.stats.lines_sent.load(Ordering::Relaxed), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
