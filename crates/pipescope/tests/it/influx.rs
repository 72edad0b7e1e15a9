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
