//! `pipescope simulate traffic` against tansu (sqlite engine) and the Kafka watcher: each
//! behaviour of a consumer group yields its lag verdict, the healthy group stays OK.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipescope_core::SystemClock;
use pipescope_core::kafka::metrics::GROUP_VERDICT;
use pipescope_testkit::{Part, Tansu};

/// `pipescope simulate traffic` as a child process (the testkit's part harness): killed on drop,
/// its log printed on failure.
struct Simulator(Part);

impl Simulator {
    fn start(args: &[&str]) -> Self {
        Self(
            Part::builder(env!("CARGO_BIN_EXE_pipescope"), "simulate traffic")
                .args(["simulate", "traffic"])
                .args(args)
                .start(),
        )
    }

    fn log(&self) -> String {
        self.0.log()
    }

    fn metrics(&self) -> String {
        self.0.metrics_text().unwrap_or_default()
    }

    /// SIGTERM, a clean exit, and the JSON summary it printed.
    fn terminate(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.0.terminate()).expect("a JSON summary")
    }
}

/// Per group, its (scrape time, verdict code) as published.
type Verdicts = Arc<Mutex<BTreeMap<String, Vec<(u64, f64)>>>>;

/// A Kafka watcher scraping every 500 ms with a 4-observation verdict window; keeps each
/// group's verdict code per scrape as published on the bus.
struct Watcher {
    _rt: tokio::runtime::Runtime,
    verdicts: Verdicts,
}

impl Watcher {
    fn start(bootstrap: &str) -> Self {
        let text = format!(
            "[kafka.local]\nbootstrap = \"{bootstrap}\"\nscrape_interval = \"500ms\"\nrequest_timeout = \"2s\"\nverdict_window = 4\n"
        );
        let mut config = pipescope::config::parse("test", &text, []).unwrap();
        let cluster = config.kafka.remove("local").unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let bus = pipescope::bus::Bus::new(1024);
        let mut receiver = bus.subscribe();
        let verdicts: Verdicts = Arc::default();
        let kept = verdicts.clone();
        rt.spawn(async move {
            while let Some(batch) = receiver.recv().await {
                let mut kept = kept.lock().unwrap();
                for s in batch.iter().filter(|s| s.metric == GROUP_VERDICT) {
                    if let Some(group) = s.labels.get("group") {
                        kept.entry(group.to_string())
                            .or_default()
                            .push((s.time_ms, s.value));
                    }
                }
            }
        });
        rt.spawn(pipescope::kafka::watch(
            pipescope::kafka::scraper("local", &cluster).unwrap(),
            cluster.scrape_interval,
            pipescope::kafka::analyzer_config(&cluster),
            pipescope::kafka::Outputs::with_default_series(pipescope::kafka::LiveState::new(), bus),
            Arc::new(SystemClock),
            None,
        ));
        Self { _rt: rt, verdicts }
    }

    /// The verdict codes of `group`, one per scrape, oldest first.
    fn of(&self, group: &str) -> Vec<f64> {
        self.verdicts
            .lock()
            .unwrap()
            .get(group)
            .map(|v| v.iter().map(|(_, c)| *c).collect())
            .unwrap_or_default()
    }
}

const OK: f64 = 0.0;
const WARN: f64 = 1.0;
const STOPPED: f64 = 2.0;
const STALLED: f64 = 3.0;
const REWOUND: f64 = 4.0;

/// Runs the simulator with `groups` (plus a healthy group `ok`) on its own tansu until every
/// `(group, verdict)` of `wanted` was seen and `also` holds on the verdicts; checks that the
/// healthy group was OK at every scrape until then (or until `offsets_deleted_at` after the
/// start: tansu 0.6's group coordinator stalls other groups' commits for a while after it
/// deletes a group's offsets, docs/brokers.md) and that every group committed. Returns the
/// running simulator, the broker and the simulator's /metrics text.
fn run_until(
    groups: &[&str],
    wanted: &[(&str, f64)],
    offsets_deleted_at: Option<Duration>,
    also: impl Fn(&Watcher) -> bool,
) -> (Simulator, Tansu, String) {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let watcher = Watcher::start(&bootstrap);
    let started = Instant::now();
    let mut args = vec![
        "--kafka",
        &bootstrap,
        "--topics",
        "2",
        "--partitions",
        "2",
        "--producers",
        "2",
        "--rate",
        "200",
        // Bursts twice a second: the healthy group is caught up (lag 0) most of the time.
        "--tick",
        "500ms",
        "--origin",
        "it-traffic",
        "--group",
        "healthy:ok",
    ];
    for g in groups {
        args.extend(["--group", g]);
    }
    let simulator = Simulator::start(&args);
    let mut reached: BTreeMap<&str, Duration> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut healthy = Vec::new();
    loop {
        if offsets_deleted_at.is_none_or(|at| started.elapsed() < at) {
            healthy = watcher.of("ok");
        }
        for (group, verdict) in wanted {
            if !reached.contains_key(group) && watcher.of(group).contains(verdict) {
                reached.insert(group, started.elapsed());
            }
        }
        if reached.len() == wanted.len() && also(&watcher) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every verdict within 60 s; reached {reached:?}; verdicts per scrape: {:?}",
            wanted
                .iter()
                .map(|(g, _)| (g, watcher.of(g)))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "verdicts reached after the start: {reached:?} ({} scrapes; load {})",
        healthy.len(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    // The healthy group was OK at every scrape that saw it (before any group deletion).
    assert!(healthy.len() >= 4, "{healthy:?}");
    assert!(healthy.iter().all(|v| *v == OK), "{healthy:?}");
    let metrics = simulator.metrics();
    for g in groups.iter().chain(&["healthy:ok"]) {
        let name = g.split(':').nth(1).unwrap();
        assert!(
            metric(&metrics, "pipescope_simulate_traffic_commits_total", name) > 0.0,
            "{name} committed: {metrics}"
        );
    }
    (simulator, tansu, metrics)
}

/// The value of a per-group counter in a /metrics text (0 when absent).
fn metric(text: &str, name: &str, group: &str) -> f64 {
    let prefix = format!("{name}{{group=\"{group}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn slow_stalled_and_stopped_groups_yield_warn_stalled_and_stopped() {
    let (simulator, tansu, metrics) = run_until(
        &[
            "slow:lagging:0.5",
            "stalled:frozen:3s",
            "stopped:gone:3s:10s",
        ],
        &[("lagging", WARN), ("frozen", STALLED), ("gone", STOPPED)],
        // `gone` leaves after 3 s; its offsets are deleted 10 s later.
        Some(Duration::from_secs(13)),
        |_| true,
    );
    let consumed = |g: &str| {
        metric(
            &metrics,
            "pipescope_simulate_traffic_records_consumed_total",
            g,
        )
    };
    assert!(
        consumed("lagging") < 0.75 * consumed("ok") && consumed("lagging") > 0.0,
        "the slow group read about half: {} of {}",
        consumed("lagging"),
        consumed("ok")
    );
    assert!(
        simulator.log().contains("deleted the group's offsets"),
        "{}",
        simulator.log()
    );
    // tansu 0.6 (sqlite) stops answering group coordinator requests some seconds after a
    // DeleteGroups, so a clean stop can hang on it: this test ends here.
    drop((simulator, tansu));
}

#[test]
fn a_rewinding_group_yields_rewound() {
    // `crashing` is not run beside the healthy group: tansu 0.6 (sqlite) fails librdkafka's
    // LeaveGroup, keeps the crashed member, and its coordinator then answers so late that the
    // healthy group's commits lag too (seen: WARN on the healthy group after the first crash).
    // It is tested alone below.
    let (mut simulator, _tansu, _) = run_until(
        &["rewinding:replay:3s:2000"],
        &[("replay", REWOUND)],
        None,
        |_| true,
    );
    let summary = simulator.terminate();
    eprintln!("simulate traffic summary: {summary}");
    let groups = &summary["groups"];
    assert_eq!(summary["failed"], 0, "{summary}");
    for topic in ["traffic-0", "traffic-1"] {
        let delivered = summary["delivered"][topic].as_u64().unwrap();
        assert!(delivered > 0, "{topic}: nothing delivered");
    }
    assert_eq!(groups["ok"]["replayed"], 0, "{summary}");
    assert!(
        groups["replay"]["rewinds"].as_u64().unwrap() >= 2,
        "{summary}"
    );
    // Records read again after the rewinds, counted from the trace headers.
    assert!(
        groups["replay"]["replayed"].as_u64().unwrap() > 0,
        "{summary}"
    );
}

/// A crashing group against tansu (sqlite): it comes back after every crash and reads on, and
/// the work lost at a crash (read, not committed) is read again, counted from the trace headers.
/// Alone, without the watcher's healthy group: tansu 0.6 fails librdkafka's LeaveGroup and keeps
/// the crashed member until its session times out (6 s here), and its coordinator then answers
/// the other groups late (docs/brokers.md). Each crash-down cycle is long enough to outlast that.
#[test]
fn a_crashing_group_comes_back_after_every_crash_and_reads_its_lost_work_again() {
    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let mut simulator = Simulator::start(&[
        "--kafka",
        &bootstrap,
        "--topics",
        "1",
        "--partitions",
        "2",
        "--producers",
        "1",
        "--rate",
        "200",
        "--tick",
        "200ms",
        "--origin",
        "it-crash",
        // Reads for 8 s, down for 2 s, over and over.
        "--group",
        "crashing:flaky:8s:2s",
    ]);
    let value = |name: &str| metric(&simulator.metrics(), name, "flaky");
    let deadline = Instant::now() + Duration::from_secs(75);
    // (crashes, records consumed) when the second crash was first seen.
    let mut at_second_crash: Option<f64> = None;
    loop {
        let crashes = value("pipescope_simulate_traffic_crashes_total");
        let consumed = value("pipescope_simulate_traffic_records_consumed_total");
        // Whether a crash lost work (records read but not committed yet) depends on where in
        // its commit cycle it fell, which the machine's load shifts: wait until one did and the
        // work was read again, rather than taking the first crashes for it.
        let replayed = value("pipescope_simulate_traffic_records_replayed_total");
        match at_second_crash {
            None if crashes >= 2.0 => at_second_crash = Some(consumed),
            // Back after the second crash: reading again, lost work read again.
            Some(before) if consumed > before && replayed > 0.0 => break,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no second crash, comeback and replay within 75 s: crashes {crashes}, consumed {consumed}, replayed {replayed}, at the second crash {at_second_crash:?}\n{}",
            simulator.metrics()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let summary = simulator.terminate();
    eprintln!("simulate traffic summary: {summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let flaky = &summary["groups"]["flaky"];
    assert!(flaky["crashes"].as_u64().unwrap() >= 2, "{summary}");
    assert!(flaky["commits"].as_u64().unwrap() > 0, "{summary}");
    // Everything produced so far was read at least once (the member caught up after each
    // comeback), some of it twice: what a crash lost before its commit.
    let delivered = summary["delivered"]["traffic-0"].as_u64().unwrap();
    let consumed = flaky["consumed"].as_u64().unwrap();
    let replayed = flaky["replayed"].as_u64().unwrap();
    assert!(replayed > 0, "{summary}");
    assert!(consumed > replayed, "{summary}");
    assert!(delivered > 0, "{summary}");
}
