//! The embedded store: writes, roll-ups, queries, retention, the query API, and `kill -9`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use pipescope::bus::Bus;
use pipescope::store::{Store, Writer, feed_from_bus};
use pipescope_core::tsdb::{AggregateFn, Resolution, Retention, parse_selector};
use pipescope_core::{Clock, Labels, ManualClock, Sample, SystemClock};
use pipescope_testkit::wait_until;
use tower::ServiceExt;

const HOUR: u64 = 3_600_000;
/// A fixed "now" for tests with a manual clock: a whole hour, so buckets are easy to reason about.
const NOW: u64 = 1_000_000 * HOUR;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied())
}

fn open(dir: &std::path::Path, clock: &ManualClock) -> (Store, Writer) {
    Store::open(dir, Retention::default(), Arc::new(clock.clone()), 64).expect("open store")
}

/// One sample every 10 s for the hour before NOW, value = minute index, on two topics
/// (topic b's values are ten times topic a's).
fn hour_of_samples() -> Vec<Sample> {
    let mut out = Vec::new();
    for i in 0..360u64 {
        let t = NOW - HOUR + i * 10_000;
        let minute = (i / 6) as f64;
        out.push(Sample::new("lag", labels(&[("topic", "a")]), t, minute));
        out.push(Sample::new(
            "lag",
            labels(&[("topic", "b")]),
            t,
            minute * 10.0,
        ));
    }
    out
}

#[test]
fn range_last_top_and_series_give_exact_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    for chunk in hour_of_samples().chunks(100) {
        assert!(writer.submit(Arc::new(chunk.to_vec())));
    }
    writer.submit(Arc::new(vec![Sample::new(
        "other",
        Labels::default(),
        NOW - 1,
        f64::NAN,
    )]));
    writer.flush().unwrap();
    assert_eq!(store.stats().samples_written.load(Ordering::Relaxed), 720);
    assert_eq!(store.stats().samples_dropped.load(Ordering::Relaxed), 1);

    let only_a = parse_selector(r#"{topic="a"}"#).unwrap();
    // Step 10 s: raw data, one point per sample.
    let raw = store
        .range("lag", &only_a, NOW - HOUR, NOW, 10_000, AggregateFn::Avg)
        .unwrap();
    assert_eq!(raw.resolution, Resolution::Raw);
    assert_eq!(raw.series.len(), 1);
    assert_eq!(raw.series[0].0, labels(&[("topic", "a")]));
    assert_eq!(raw.series[0].1.len(), 360);
    assert_eq!(raw.series[0].1[7], (NOW - HOUR + 70_000, 1.0));

    // Step 5 minutes: read from the 1-minute roll-ups; minutes 0..4 average 2, max 4.
    let avg = store
        .range("lag", &only_a, NOW - HOUR, NOW, 300_000, AggregateFn::Avg)
        .unwrap();
    assert_eq!(avg.resolution, Resolution::Minute);
    let points = &avg.series[0].1;
    assert_eq!(points.len(), 12);
    assert_eq!(points[0], (NOW - HOUR, 2.0));
    assert_eq!(points[11], (NOW - 300_000, 57.0));
    let max = store
        .range("lag", &only_a, NOW - HOUR, NOW, 300_000, AggregateFn::Max)
        .unwrap();
    assert_eq!(max.series[0].1[0], (NOW - HOUR, 4.0));
    let count = store
        .range("lag", &only_a, NOW - HOUR, NOW, 300_000, AggregateFn::Count)
        .unwrap();
    assert!(count.series[0].1.iter().all(|p| p.1 == 30.0));

    // Step 1 hour: the hourly roll-up has all 360 samples: avg of 0..59 is 29.5, last 59.
    let hourly = store
        .range("lag", &[], NOW - HOUR, NOW, HOUR, AggregateFn::Last)
        .unwrap();
    assert_eq!(hourly.resolution, Resolution::Hour);
    assert_eq!(hourly.series.len(), 2);
    assert_eq!(hourly.series[0].1, vec![(NOW - HOUR, 59.0)]);
    assert_eq!(hourly.series[1].1, vec![(NOW - HOUR, 590.0)]);
    let hourly_avg = store
        .range("lag", &only_a, NOW - HOUR, NOW, HOUR, AggregateFn::Avg)
        .unwrap();
    assert_eq!(hourly_avg.series[0].1, vec![(NOW - HOUR, 29.5)]);

    let last = store.last("lag", &[]).unwrap();
    assert_eq!(last.len(), 2);
    assert_eq!(
        (last[1].labels.get("topic"), last[1].time_ms, last[1].value),
        (Some("b"), NOW - 10_000, 590.0)
    );

    let top = store
        .top("lag", &[], 1, NOW - HOUR, NOW, AggregateFn::Max)
        .unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(
        (top[0].labels.get("topic"), top[0].value),
        (Some("b"), 590.0)
    );
    let not_b = parse_selector(r#"{topic!~"b|c"}"#).unwrap();
    let top = store
        .top("lag", &not_b, 5, NOW - HOUR, NOW, AggregateFn::Avg)
        .unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(
        (top[0].labels.get("topic"), top[0].value),
        (Some("a"), 29.5)
    );

    let all = store.series(None, &[]).unwrap();
    let names: Vec<String> = all
        .iter()
        .map(|s| format!("{}{}", s.metric, s.labels))
        .collect();
    // The NaN sample was not stored, so its series does not exist.
    assert_eq!(names, [r#"lag{topic="a"}"#, r#"lag{topic="b"}"#]);
    writer.close();
}

/// `top` reads whole minutes from the roll-ups and the ends from raw rows: the same numbers as
/// computing over the raw samples, for a range that starts and ends mid-minute.
#[test]
fn top_over_an_unaligned_range_equals_the_raw_computation() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    let samples = hour_of_samples();
    writer.submit(Arc::new(samples.clone()));
    writer.flush().unwrap();
    let (from, to) = (NOW - HOUR + 25_000, NOW - 95_000);
    let only_a = parse_selector(r#"{topic="a"}"#).unwrap();
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.labels.get("topic") == Some("a") && (from..=to).contains(&s.time_ms))
        .collect();
    let count = inside.len() as f64;
    let sum: f64 = inside.iter().map(|s| s.value).sum();
    let min = inside.iter().map(|s| s.value).fold(f64::INFINITY, f64::min);
    let max = inside
        .iter()
        .map(|s| s.value)
        .fold(f64::NEG_INFINITY, f64::max);
    let last = inside.iter().max_by_key(|s| s.time_ms).unwrap();
    assert_eq!((count, min, max), (348.0, 0.0, 58.0));
    for (function, expected) in [
        (AggregateFn::Count, count),
        (AggregateFn::Sum, sum),
        (AggregateFn::Avg, sum / count),
        (AggregateFn::Min, min),
        (AggregateFn::Max, max),
        (AggregateFn::Last, last.value),
    ] {
        let top = store.top("lag", &only_a, 1, from, to, function).unwrap();
        assert_eq!(top[0].value, expected, "{function:?}");
        assert_eq!(top[0].time_ms, last.time_ms);
    }
    // Within one minute: raw rows only (samples 40, 30 and 20 s before NOW).
    let top = store
        .top(
            "lag",
            &only_a,
            1,
            NOW - 45_000,
            NOW - 15_000,
            AggregateFn::Count,
        )
        .unwrap();
    assert_eq!(top[0].value, 3.0);
    writer.close();
}

#[test]
fn a_repeated_sample_is_stored_once_and_roll_ups_count_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    let s = Sample::new("m", Labels::default(), NOW - 1_000, 4.0);
    writer.submit(Arc::new(vec![s.clone(), s.clone()]));
    writer.submit(Arc::new(vec![s]));
    writer.flush().unwrap();
    assert_eq!(store.stats().samples_written.load(Ordering::Relaxed), 1);
    let count = store
        .range("m", &[], NOW - HOUR, NOW, HOUR, AggregateFn::Count)
        .unwrap();
    assert_eq!(count.series[0].1, vec![(NOW - HOUR, 1.0)]);
    writer.close();
}

#[test]
fn retention_deletes_each_resolution_in_turn_and_the_size_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let retention = Retention {
        raw_ms: HOUR,
        minute_ms: 2 * HOUR,
        hour_ms: 3 * HOUR,
    };
    let (store, writer) = Store::open(dir.path(), retention, Arc::new(clock.clone()), 64).unwrap();
    // 2,000 series with one sample each, 30 minutes before NOW.
    let batch: Vec<Sample> = (0..2_000)
        .map(|i| {
            Sample::new(
                "size_test",
                labels(&[("n", &i.to_string()), ("pad", &"x".repeat(200))]),
                NOW - HOUR / 2,
                i as f64,
            )
        })
        .collect();
    writer.submit(Arc::new(batch));
    writer.flush().unwrap();
    let full = store.size_bytes();
    assert!(
        full > 400_000,
        "2,000 series with 200-byte labels take {full} bytes"
    );
    let count_at = |resolution_step: u64| {
        store
            .range(
                "size_test",
                &[],
                NOW - 3 * HOUR,
                NOW,
                resolution_step,
                AggregateFn::Count,
            )
            .unwrap()
            .series
            .len()
    };
    assert_eq!(store.last("size_test", &[]).unwrap().len(), 2_000);

    // 1 h later the raw samples are gone; the 1-minute roll-ups remain.
    clock.set(NOW + HOUR);
    writer.prune().unwrap();
    let last = store
        .last("size_test", &parse_selector(r#"{n="7"}"#).unwrap())
        .unwrap();
    assert_eq!((last[0].time_ms, last[0].value), (NOW - HOUR / 2, 7.0));
    assert_eq!(count_at(60_000), 2_000);
    // 2 h later only the hourly roll-ups remain; 3 h later nothing, and the series are gone.
    clock.set(NOW + 2 * HOUR);
    writer.prune().unwrap();
    assert_eq!(count_at(HOUR), 2_000);
    clock.set(NOW + 3 * HOUR);
    writer.prune().unwrap();
    assert_eq!(count_at(HOUR), 0);
    assert!(store.series(None, &[]).unwrap().is_empty());
    let pruned = store.size_bytes();
    assert!(
        pruned < full / 2,
        "after retention the store takes {pruned} bytes, it took {full}"
    );
    writer.close();
}

#[tokio::test]
async fn samples_published_on_the_bus_reach_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let clock = SystemClock;
    let (store, writer) =
        Store::open(dir.path(), Retention::default(), Arc::new(clock), 64).unwrap();
    let bus = Bus::new(16);
    let feeder = tokio::spawn(feed_from_bus(bus.subscribe(), writer.clone()));
    let now = clock.now_millis();
    for i in 0..10u64 {
        bus.publish(vec![Sample::new(
            "bus_test",
            Labels::default(),
            now - 1000 + i,
            i as f64,
        )]);
    }
    let stats = store.stats().clone();
    let arrived = tokio::task::spawn_blocking(move || {
        wait_until(Duration::from_secs(10), || {
            stats.samples_written.load(Ordering::Relaxed) == 10
        })
    })
    .await
    .unwrap();
    assert!(arrived, "{:?}", store.stats());
    assert_eq!(store.last("bus_test", &[]).unwrap()[0].value, 9.0);
    assert!(store.stats().write_batches.load(Ordering::Relaxed) >= 1);
    feeder.abort();
    let _ = feeder.await;
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .unwrap();
}

// ---- kill -9 ----

const CHILD_ENV: &str = "PIPESCOPE_TEST_STORE_CRASH_DIR";
const START_ENV: &str = "PIPESCOPE_TEST_STORE_CRASH_START";
const SAMPLES_PER_BATCH: u64 = 2_000;
const SERIES: u64 = 20;

/// Not a test: the child process that `the_store_survives_kill_9_while_writing` starts and
/// kills. It writes batches for ever, printing each one's number once it is committed.
#[test]
#[ignore = "child process of the_store_survives_kill_9_while_writing"]
fn crash_child() {
    let dir =
        std::env::var(CHILD_ENV).expect("run only by the_store_survives_kill_9_while_writing");
    let start: u64 = std::env::var(START_ENV).unwrap().parse().unwrap();
    let (_store, writer) = Store::open(
        std::path::Path::new(&dir),
        Retention::default(),
        Arc::new(SystemClock),
        4,
    )
    .unwrap();
    let base = SystemClock.now_millis() - HOUR;
    for batch in start.. {
        let samples = (0..SAMPLES_PER_BATCH)
            .map(|i| {
                let n = batch * SAMPLES_PER_BATCH + i;
                Sample::new(
                    "crash_test",
                    labels(&[("series", &(n % SERIES).to_string())]),
                    base + n / SERIES,
                    1.0,
                )
            })
            .collect();
        writer.submit(Arc::new(samples));
        writer.flush().unwrap();
        println!("committed {batch}");
    }
}

#[test]
fn the_store_survives_kill_9_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut committed: u64 = 0; // batches known to be committed
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env(START_ENV, committed.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut last_seen = None;
        // Kill it in the middle of writing, after a different number of batches each round.
        let kill_after = 5 + 7 * round;
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("committed ") {
                last_seen = Some(n.trim().parse::<u64>().unwrap());
                seen += 1;
                if seen == kill_after {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // What the child printed before it died was committed too.
        for line in lines {
            if let Some(n) = line.unwrap().strip_prefix("committed ") {
                last_seen = Some(n.trim().parse::<u64>().unwrap());
            }
        }
        let printed = last_seen.expect("the child committed nothing") + 1;
        assert!(printed >= committed + kill_after as u64);

        let (store, writer) =
            Store::open(dir.path(), Retention::default(), Arc::new(SystemClock), 4).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
        let now = SystemClock.now_millis();
        let raw: f64 = store
            .top(
                "crash_test",
                &[],
                SERIES as usize,
                now - 2 * HOUR,
                now,
                AggregateFn::Count,
            )
            .unwrap()
            .iter()
            .map(|s| s.value)
            .sum();
        let rolled: f64 = store
            .range(
                "crash_test",
                &[],
                now - 2 * HOUR,
                now,
                HOUR,
                AggregateFn::Count,
            )
            .unwrap()
            .series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.1))
            .sum();
        let batches = raw as u64 / SAMPLES_PER_BATCH;
        assert_eq!(
            raw as u64 % SAMPLES_PER_BATCH,
            0,
            "a half-written batch survived: {raw} samples"
        );
        // Everything printed is there; at most the one batch in flight beyond it.
        assert!(
            batches == printed || batches == printed + 1,
            "round {round}: {batches} batches stored, {printed} reported committed"
        );
        assert_eq!(rolled, raw, "roll-ups and raw samples are written together");
        committed = batches;
        writer.close();
    }
}

// ---- the query API ----

async fn get(store: &Store, uri: &str) -> (StatusCode, serde_json::Value) {
    crate::support::get_json(pipescope::store::api::router(store.clone()), uri).await
}

#[tokio::test]
async fn the_query_api_answers_and_rejects_bad_parameters_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    let samples = hour_of_samples();
    let w = writer.clone();
    tokio::task::spawn_blocking(move || {
        w.submit(Arc::new(samples));
        w.flush().unwrap();
    })
    .await
    .unwrap();

    let (status, json) = get(
        &store,
        "/api/v1/query?metric=lag&match=%7Btopic%3D%22b%22%7D&from=now-1h&to=now&step=5m&agg=max",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["resolution"], "1m");
    assert_eq!(json["step_ms"], 300_000);
    assert_eq!(json["series"].as_array().unwrap().len(), 1);
    assert_eq!(json["series"][0]["labels"]["topic"], "b");
    assert_eq!(
        json["series"][0]["points"][0],
        serde_json::json!([NOW - HOUR, 40.0])
    );
    assert_eq!(json["series"][0]["points"].as_array().unwrap().len(), 12);

    let from = NOW - HOUR;
    let (status, json) = get(
        &store,
        &format!("/api/v1/query?metric=lag&from={from}&to={NOW}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    // no step: about 300 points, at least 1 s apart
    assert_eq!(json["step_ms"], 12_000);
    assert_eq!(json["resolution"], "raw");

    let (status, json) = get(&store, "/api/v1/series?match=%7Btopic%3D~%22a%7Cz%22%7D").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json["series"],
        serde_json::json!([{"metric": "lag", "labels": {"topic": "a"}}])
    );

    let (status, json) = get(&store, "/api/v1/last?metric=lag").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["series"][0]["value"], 59.0);
    assert_eq!(json["series"][0]["time_ms"], NOW - 10_000);

    let (status, json) = get(&store, "/api/v1/top?metric=lag&n=1&agg=avg&from=now-1h").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["series"][0]["labels"]["topic"], "b");
    assert_eq!(json["series"][0]["value"], 295.0);

    let bad = [
        ("/api/v1/query?from=now-1h", "missing parameter metric"),
        (
            "/api/v1/query?metric=lag&match=%7Btopic%3Da%7D",
            "parameter match: bad label matcher at character 7",
        ),
        (
            "/api/v1/query?metric=lag&from=yesterday",
            "parameter from: cannot read \"yesterday\" as a time",
        ),
        (
            "/api/v1/query?metric=lag&from=now&to=now-1h",
            "must be before to",
        ),
        (
            "/api/v1/query?metric=lag&step=0",
            "parameter step: must be more than 0",
        ),
        (
            "/api/v1/query?metric=lag&step=fast",
            "parameter step: cannot read \"fast\"",
        ),
        (
            "/api/v1/query?metric=lag&step=1ms",
            "at most 11000: use a step of at least 328 ms",
        ),
        (
            "/api/v1/query?metric=lag&agg=median",
            "parameter agg: unknown aggregate \"median\"",
        ),
        ("/api/v1/query?metric=lag&stpe=1m", "unknown field `stpe`"),
        (
            "/api/v1/top?metric=lag&n=0",
            "parameter n: expected a number from 1 to 1000, got \"0\"",
        ),
        ("/api/v1/last", "missing parameter metric"),
    ];
    for (uri, expected) in bad {
        let (status, json) = get(&store, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {json}");
        let message = json["error"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{uri}: {message:?} lacks {expected:?}"
        );
    }
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .unwrap();
}

/// A query over more series than a query may answer is refused before any row is read: 422
/// (as Prometheus answers a query too large to run), naming the count and how to narrow it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_too_many_series_is_refused_saying_how_to_narrow_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    let wide = 20_001;
    let samples: Vec<Sample> = (0..wide)
        .map(|i| {
            let partition = i.to_string();
            Sample::new(
                "wide",
                labels(&[("partition", &partition)]),
                NOW - 1_000,
                1.0,
            )
        })
        .collect();
    let w = writer.clone();
    tokio::task::spawn_blocking(move || {
        w.submit(Arc::new(samples));
        w.flush().unwrap();
    })
    .await
    .unwrap();
    for uri in [
        "/api/v1/query?metric=wide&from=now-1h",
        "/api/v1/last?metric=wide",
    ] {
        let (status, json) = get(&store, uri).await;
        let error = json["error"].as_str().unwrap_or("(no error)");
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {error}");
        assert!(
            error.contains("20001 series")
                && error.contains("at most 20000")
                && error.contains("match="),
            "{uri}: {error}"
        );
    }
    // Narrowed, it answers.
    let (status, json) = get(
        &store,
        "/api/v1/query?metric=wide&from=now-1h&match=%7Bpartition%3D%227%22%7D",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["series"].as_array().unwrap().len(), 1);
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .unwrap();
}

/// The points of all series together are bounded too, counted as the answer is built; and
/// the time a query takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_too_many_points_or_out_of_time_is_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    let samples = hour_of_samples();
    let w = writer.clone();
    tokio::task::spawn_blocking(move || {
        w.submit(Arc::new(samples));
        w.flush().unwrap();
    })
    .await
    .unwrap();
    store.set_query_limits(pipescope::store::QueryLimits {
        max_points: 500,
        ..Default::default()
    });
    // Two series of 360 points at a 10 s step: 720.
    let (status, json) = get(&store, "/api/v1/query?metric=lag&from=now-1h&step=10s").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(
        json["error"],
        "the answer would hold more than 500 points — ask for a larger step, a shorter range, or fewer series with match="
    );
    let (status, json) = get(&store, "/api/v1/query?metric=lag&from=now-1h&step=1m").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["series"][0]["points"].as_array().unwrap().len(), 60);
    let refused = &store.stats().query_refused_points_limit;
    assert_eq!(refused.load(Ordering::Relaxed), 1);

    // Out of time: 503, as Prometheus answers a query that timed out.
    store.set_query_limits(pipescope::store::QueryLimits {
        time_budget: Duration::ZERO,
        ..Default::default()
    });
    let (status, json) = get(&store, "/api/v1/query?metric=lag&from=now-1h&step=1m").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert_eq!(
        json["error"],
        "the query took longer than its budget of 0ns and was stopped — ask for a shorter range, a larger step, or fewer series with match="
    );
    assert_eq!(store.stats().query_timed_out.load(Ordering::Relaxed), 1);
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .unwrap();
}

// ---- `pipescope run` ----

#[test]
fn run_opens_the_store_in_its_directory_and_serves_the_query_api_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = pipescope_testkit::free_port();
    let store_dir = dir.path().join("data");
    let config = dir.path().join("pipescope.toml");
    std::fs::write(
        &config,
        format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\n[store]\npath = {:?}\nretention_raw = \"2h\"\n\
             [export.influx]\nurl = \"http://127.0.0.1:9\"\ninterval = \"1s\"\n",
            store_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["run", "-c", config.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut series = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            series = pipescope_testkit::http_get(port, "/api/v1/series");
            series.is_some()
        }),
        "pipescope run did not serve /api/v1/series"
    );
    assert_eq!(series.unwrap(), (200, r#"{"series":[]}"#.to_string()));
    let (status, body) = pipescope_testkit::http_get(port, "/api/v1/query?from=now-1h").unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("missing parameter metric"), "{body}");
    let (status, metrics) = pipescope_testkit::http_get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    for name in [
        "pipescope_store_size_bytes ",
        "pipescope_store_samples_written_total 0",
        "pipescope_bus_dropped_batches_total 0",
        "pipescope_export_influx_buffer_lines 0",
    ] {
        assert!(metrics.contains(name), "{name} missing in:\n{metrics}");
    }
    assert!(store_dir.join(pipescope::store::DB_FILE).is_file());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut stopped = None;
    assert!(wait_until(Duration::from_secs(10), || {
        stopped = child.try_wait().unwrap();
        stopped.is_some()
    }));
    assert!(stopped.unwrap().success());
    let (store, writer) =
        Store::open(&store_dir, Retention::default(), Arc::new(SystemClock), 4).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    writer.close();
}

#[test]
fn run_reports_a_store_path_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let config = dir.path().join("pipescope.toml");
    let port = pipescope_testkit::free_port();
    std::fs::write(
        &config,
        format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\n[store]\npath = {:?}\n",
            not_a_dir.join("store").to_str().unwrap()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pipescope"))
        .args(["run", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot create the store directory {}",
            not_a_dir.join("store").display()
        )) && err.contains("check [store] path and its permissions"),
        "{err}"
    );
}

async fn post(app: axum::Router, uri: &str, body: &str) -> (StatusCode, String) {
    let response = app
        .oneshot(
            Request::post(uri)
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The store's database, opened beside the store to break it (a trigger that fails every
/// insert stands for a full disk: the writer's commit fails the same way, SQLITE_FULL or not).
fn failing_inserts(dir: &std::path::Path, fail: bool) {
    let conn = rusqlite::Connection::open(dir.join(pipescope::store::DB_FILE)).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let sql = if fail {
        "CREATE TRIGGER fail_inserts BEFORE INSERT ON raw BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;"
    } else {
        "DROP TRIGGER fail_inserts;"
    };
    conn.execute_batch(sql).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_endpoint_answers_503_when_the_commit_fails_and_stores_once_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    let app = pipescope::store::write_api::router(store.clone(), writer.clone(), Bus::new(8));
    failing_inserts(dir.path(), true);
    let body = format!("reading,machine=m1 value=1.5 {NOW}\n");
    let (status, answer) = post(app.clone(), "/write?db=x&precision=ms", &body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(
        answer.contains("the store could not commit the samples")
            && answer.contains("database or disk is full")
            && answer.contains("retry later"),
        "{answer}"
    );
    assert!(store.last("reading_value", &[]).unwrap().is_empty());

    // The client retries once the disk has room again: stored, 204.
    failing_inserts(dir.path(), false);
    let (status, answer) = post(app, "/write?db=x&precision=ms", &body).await;
    assert_eq!((status, answer.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_eq!(store.last("reading_value", &[]).unwrap()[0].value, 1.5);
    drop(store);
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_endpoint_refuses_pipescope_names_and_bodies_over_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    let app = pipescope::store::write_api::router(store.clone(), writer.clone(), Bus::new(8));

    // pipescope's own series cannot be forged: left out, named, counted on /metrics.
    let body = format!(
        "pipescope_kafka_group,cluster=c,group=g lag_offsets=0 {NOW}\n\
         reading value=2 {NOW}\n"
    );
    let (status, answer) = post(app.clone(), "/write?db=x&precision=ms", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer.contains("pipescope_kafka_group_lag_offsets left out: names starting with pipescope_ are pipescope's own series")
            && answer.contains("1 samples stored dropped=1"),
        "{answer}"
    );
    assert!(
        store
            .last("pipescope_kafka_group_lag_offsets", &[])
            .unwrap()
            .is_empty()
    );
    let mut registry = prometheus_client::registry::Registry::default();
    pipescope::store::metrics::register(&mut registry, store.clone());
    let text = pipescope::metrics::encode_prometheus_text(&registry);
    assert!(
        text.contains("pipescope_store_write_refused_samples_total{reason=\"reserved_name\"} 1\n")
            && text.contains(
                "pipescope_store_write_refused_samples_total{reason=\"series_limit\"} 0\n"
            ),
        "{text}"
    );

    // More new series than one write may create: refused whole, nothing stored.
    let max = pipescope_core::line_protocol::quota::MAX_NEW_SERIES_PER_WRITE;
    let body: String = (0..=max)
        .map(|i| format!("wide,n={i} v=1 {NOW}\n"))
        .collect();
    let (status, answer) = post(app.clone(), "/write?db=x&precision=ms", &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(
        answer.contains("MAX_NEW_SERIES_PER_WRITE): split it"),
        "{answer}"
    );
    assert!(store.last("wide_v", &[]).unwrap().is_empty());

    // A long measurement repeated in many fields: the line is refused, nothing amplified.
    let fields: Vec<String> = (0..2000).map(|i| format!("f{i}=1")).collect();
    let body = format!("{} {}\n", "x".repeat(1 << 20), fields.join(","));
    let (status, answer) = post(app.clone(), "/write?db=x", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer.contains("longer than 1024 bytes (MAX_NAME_BYTES)"),
        "{answer}"
    );

    // A body over MAX_BODY_BYTES: 413.
    let max_body = pipescope::store::write_api::MAX_BODY_BYTES;
    let body = "m v=1\n".repeat(max_body / 6 + 1);
    let (status, _) = post(app, "/write?db=x", &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    drop(store);
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_beyond_the_concurrency_bound_get_503_at_once() {
    use pipescope::store::write_api::MAX_CONCURRENT_WRITES;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    let app = pipescope::store::write_api::router(store.clone(), writer.clone(), Bus::new(8));
    // Another connection holds the write lock: the writer waits on it (its busy timeout), and
    // the writes waiting for their commit hold every permit.
    let lock = rusqlite::Connection::open(dir.path().join(pipescope::store::DB_FILE)).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let held: Vec<_> = (0..MAX_CONCURRENT_WRITES)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                post(
                    app,
                    "/write?db=x&precision=ms",
                    &format!("held,n={i} v=1 {NOW}"),
                )
                .await
            })
        })
        .collect();
    // A probe that gets a permit answers 400 at once (no db); once the held writes have both,
    // it gets 503. They hold them until the writer gives up on the lock (its busy timeout), so
    // the probe waits on that condition, not on a clock (a loaded machine is slow to start them).
    let answer = loop {
        let (status, answer) = post(app.clone(), "/write", "m v=1").await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break answer;
        }
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            !held.iter().all(|write| write.is_finished()),
            "the held writes ended before a probe was refused: {:?}",
            futures::future::join_all(held).await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(
        answer.contains(
            "too many writes at once (2 are being stored, MAX_CONCURRENT_WRITES): retry later"
        ),
        "{answer}"
    );
    lock.execute_batch("COMMIT").unwrap();
    for write in held {
        let (status, answer) = write.await.unwrap();
        // Stored once the lock is gone, or 503 if the writer's busy timeout ran out first.
        assert!(
            status == StatusCode::NO_CONTENT || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status} {answer}"
        );
    }
    drop(store);
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_influx_write_endpoint_stores_numbers_and_counts_rejected_lines() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    let bus = pipescope::bus::Bus::new(8);
    let (mut exported, mut fed_to_store) = (bus.subscribe(), bus.subscribe());
    let app = pipescope::store::write_api::router(store.clone(), writer.clone(), bus.clone());
    let t = NOW - 60_000;
    let body = format!(
        "reading,machine=m1 value=1.5,count=3i,ok=true {t}\n\
         reading,machine=m2 value=2.5,note=\"hot\" {t}\n\
         reading,machine=m3 value= {t}\n\
         reading,machine=m4 value=4.5\n"
    );
    let (status, answer) = post(app.clone(), "/write?db=any&precision=ms", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        "{\"error\":\"partial write: 2 of 4 lines rejected (line 2: string field note left out \
         (only numbers and booleans are stored; its other fields are kept); line 3: field \\\"value\\\": \
         \\\"\\\" is not a number, an integer or a boolean); 5 samples stored dropped=2\"}"
    );
    let last = |metric: &str| {
        let mut values: Vec<(String, u64, f64)> = store
            .last(metric, &[])
            .unwrap()
            .into_iter()
            .map(|v| {
                (
                    v.labels.get("machine").unwrap().to_string(),
                    v.time_ms,
                    v.value,
                )
            })
            .collect();
        values.sort_by(|a, b| a.0.cmp(&b.0));
        values
    };
    assert_eq!(
        last("reading_value"),
        vec![
            ("m1".to_string(), t, 1.5),
            ("m2".to_string(), t, 2.5),
            // no timestamp: the store's clock
            ("m4".to_string(), NOW, 4.5),
        ]
    );
    assert_eq!(last("reading_count"), vec![("m1".to_string(), t, 3.0)]);
    assert_eq!(last("reading_ok"), vec![("m1".to_string(), t, 1.0)]);
    assert!(store.last("reading_note", &[]).unwrap().is_empty());

    // What was stored goes on the bus for the exporters, once; the store's feeder skips it (a
    // batch published after it is the first the feeder gets).
    let published = exported.recv().await.unwrap();
    assert_eq!(published.len(), 5);
    assert!(published.iter().any(|s| s.metric == "reading_value"));
    bus.publish(vec![Sample::new("after", Labels::default(), NOW, 1.0)]);
    let first_unstored = fed_to_store.recv_unstored().await.unwrap();
    assert_eq!(first_unstored[0].metric, "after");

    // Everything accepted: 204, seconds precision, the same at /api/v1/write.
    let (status, answer) = post(
        app.clone(),
        "/api/v1/write?db=x&precision=s",
        &format!("reading,machine=m5 value=5 {}\n", t / 1000),
    )
    .await;
    assert_eq!((status, answer.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_eq!(last("reading_value")[3], ("m5".to_string(), t, 5.0));

    let (status, answer) = post(app.clone(), "/write", "m v=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer.contains("database is required"), "{answer}");
    let (status, answer) = post(app, "/write?db=x&precision=d", "m v=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer.contains("unknown precision \\\"d\\\""), "{answer}");
    drop(store);
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .unwrap();
}

/// Rows of each table of the store in `dir`, read beside the store (WAL readers see commits).
fn table_rows(dir: &std::path::Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(dir.join(pipescope::store::DB_FILE)).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Every answer of the query functions over the hour before NOW, to compare before and after.
fn answers(store: &Store) -> Vec<String> {
    let only_a = parse_selector(r#"{topic="a"}"#).unwrap();
    let mut out = Vec::new();
    for step in [10_000, 60_000, 300_000, HOUR] {
        for function in [AggregateFn::Avg, AggregateFn::Count, AggregateFn::Last] {
            let r = store
                .range("lag", &[], NOW - HOUR, NOW, step, function)
                .unwrap();
            out.push(format!("{step} {function:?} {r:?}"));
        }
    }
    for (from, to) in [(NOW - HOUR, NOW), (NOW - HOUR + 25_000, NOW - 95_000)] {
        for function in [AggregateFn::Sum, AggregateFn::Max, AggregateFn::Last] {
            let top = store.top("lag", &only_a, 2, from, to, function).unwrap();
            out.push(format!("top {from} {to} {function:?} {top:?}"));
        }
    }
    out.push(format!("{:?}", store.last("lag", &[]).unwrap()));
    out
}

#[test]
fn closed_hours_are_compacted_into_chunks_and_every_query_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    writer.submit(Arc::new(hour_of_samples()));
    writer.flush().unwrap();
    let before = answers(&store);
    assert_eq!(table_rows(dir.path(), "raw"), 720);

    // Ten minutes after the hour ends it is closed: its samples and minutes move into chunks.
    clock.set(NOW + 10 * 60_000);
    writer.prune().unwrap();
    assert_eq!(table_rows(dir.path(), "raw"), 0);
    assert_eq!(table_rows(dir.path(), "m1"), 0);
    assert_eq!(table_rows(dir.path(), "raw_chunks"), 2);
    assert_eq!(table_rows(dir.path(), "m1_chunks"), 2);
    assert_eq!(answers(&store), before);

    // A late repeat of a compacted sample is stored once; a late new one lands in the head and
    // joins the chunk at the next compaction.
    let a = labels(&[("topic", "a")]);
    let written = store.stats().samples_written.load(Ordering::Relaxed);
    writer
        .store(Arc::new(vec![
            Sample::new("lag", a.clone(), NOW - HOUR + 70_000, 99.0),
            Sample::new("lag", a.clone(), NOW - HOUR + 75_000, 100.0),
        ]))
        .unwrap();
    assert_eq!(
        store.stats().samples_written.load(Ordering::Relaxed),
        written + 1
    );
    let count_a = |store: &Store| {
        store
            .range("lag", &[], NOW - HOUR, NOW, HOUR, AggregateFn::Count)
            .unwrap()
            .series[0]
            .1
            .clone()
    };
    let raw_a = |store: &Store| {
        store
            .range("lag", &[], NOW - HOUR, NOW, 5_000, AggregateFn::Max)
            .unwrap()
            .series[0]
            .1[7..9]
            .to_vec()
    };
    assert_eq!(count_a(&store), vec![(NOW - HOUR, 361.0)]);
    let minute = |store: &Store| {
        store
            .range("lag", &[], NOW - HOUR, NOW, 60_000, AggregateFn::Max)
            .unwrap()
            .series[0]
            .1[1]
    };
    assert_eq!(minute(&store), (NOW - HOUR + 60_000, 100.0));
    let late = raw_a(&store);
    assert_eq!(
        late,
        [(NOW - HOUR + 70_000, 1.0), (NOW - HOUR + 75_000, 100.0)]
    );
    clock.set(NOW + HOUR + 10 * 60_000);
    writer.prune().unwrap();
    assert_eq!(table_rows(dir.path(), "raw"), 0);
    assert_eq!(table_rows(dir.path(), "raw_chunks"), 2);
    assert_eq!(count_a(&store), vec![(NOW - HOUR, 361.0)]);
    assert_eq!(minute(&store), (NOW - HOUR + 60_000, 100.0));
    assert_eq!(raw_a(&store), late);
    writer.close();
}

#[test]
fn a_store_written_before_chunks_opens_with_its_history() {
    let dir = tempfile::tempdir().unwrap();
    // The schema and rows of a store from before chunks: raw samples and roll-ups as rows.
    {
        let conn = rusqlite::Connection::open(dir.path().join(pipescope::store::DB_FILE)).unwrap();
        conn.execute_batch(
            "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;
             CREATE TABLE series (id INTEGER PRIMARY KEY, metric TEXT NOT NULL,
                 labels TEXT NOT NULL, UNIQUE (metric, labels));
             CREATE TABLE raw (series_id INTEGER NOT NULL, ts INTEGER NOT NULL,
                 value REAL NOT NULL, PRIMARY KEY (series_id, ts)) WITHOUT ROWID;
             CREATE TABLE m1 (series_id INTEGER NOT NULL, ts INTEGER NOT NULL,
                 count INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL,
                 max REAL NOT NULL, last REAL NOT NULL, last_ts INTEGER NOT NULL,
                 PRIMARY KEY (series_id, ts)) WITHOUT ROWID;
             CREATE TABLE h1 (series_id INTEGER NOT NULL, ts INTEGER NOT NULL,
                 count INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL,
                 max REAL NOT NULL, last REAL NOT NULL, last_ts INTEGER NOT NULL,
                 PRIMARY KEY (series_id, ts)) WITHOUT ROWID;
             INSERT INTO series VALUES (1, 'old', '{\"topic\":\"a\"}');",
        )
        .unwrap();
        for i in 0..120i64 {
            let ts = (NOW - 2 * HOUR) as i64 + i * 60_000;
            conn.execute(
                "INSERT INTO raw VALUES (1, ?1, ?2)",
                rusqlite::params![ts, i as f64],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO m1 VALUES (1, ?1, 1, ?2, ?2, ?2, ?2, ?1)",
                rusqlite::params![ts, i as f64],
            )
            .unwrap();
        }
        for (h, sum) in [(2, 1770.0), (1, 5370.0)] {
            conn.execute(
                "INSERT INTO h1 VALUES (1, ?1, 60, ?2, 0, 119, ?3, ?4)",
                rusqlite::params![
                    (NOW - h * HOUR) as i64,
                    sum,
                    if h == 2 { 59.0 } else { 119.0 },
                    (NOW - h * HOUR + 59 * 60_000) as i64
                ],
            )
            .unwrap();
        }
    }
    let clock = ManualClock::at(NOW + 10 * 60_000);
    let (store, writer) = open(dir.path(), &clock);
    writer.prune().unwrap();
    // The first prune compacted the closed hours of the old rows into chunks.
    assert_eq!(table_rows(dir.path(), "raw"), 0);
    assert_eq!(table_rows(dir.path(), "raw_chunks"), 2);
    assert_eq!(table_rows(dir.path(), "m1_chunks"), 2);
    let expected: Vec<(u64, f64)> = (0..120u64)
        .map(|i| (NOW - 2 * HOUR + i * 60_000, i as f64))
        .collect();
    for step in [10_000, 60_000] {
        let answer = store
            .range("old", &[], NOW - 2 * HOUR, NOW, step, AggregateFn::Last)
            .unwrap();
        assert_eq!(answer.series[0].1, expected, "step {step}");
    }
    let last = store.last("old", &[]).unwrap();
    assert_eq!((last[0].time_ms, last[0].value), (NOW - 60_000, 119.0));
    let top = store
        .top(
            "old",
            &[],
            1,
            NOW - 2 * HOUR + 30_000,
            NOW,
            AggregateFn::Count,
        )
        .unwrap();
    assert_eq!(top[0].value, 119.0);
    writer.close();
}

#[test]
fn past_its_disk_budget_the_store_drops_the_oldest_raw_data_first() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let (store, writer) = open(dir.path(), &clock);
    // 200 series, four hours of a sample every 10 s with noisy values (chunks of some size).
    let hours = 4;
    let mut samples = Vec::new();
    for s in 0..200u64 {
        let topic = labels(&[("topic", &s.to_string())]);
        for i in 0..hours * 360 {
            let value = ((s * 7919 + i * 104_729) % 10_007) as f64 / 7.0;
            samples.push(Sample::new(
                "noisy",
                topic.clone(),
                NOW - hours * HOUR + i * 10_000,
                value,
            ));
        }
    }
    for batch in samples.chunks(50_000) {
        writer.store(Arc::new(batch.to_vec())).unwrap();
    }
    clock.set(NOW + 10 * 60_000);
    writer.prune().unwrap();
    let full = store.size_bytes();
    let raw_points = |from: u64| {
        store
            .range(
                "noisy",
                &parse_selector(r#"{topic="3"}"#).unwrap(),
                from,
                from + HOUR - 1,
                10_000,
                AggregateFn::Last,
            )
            .unwrap()
            .series
            .first()
            .map_or(0, |s| s.1.len())
    };
    assert_eq!(raw_points(NOW - hours * HOUR), 360);

    let budget = full * 9 / 10;
    store.set_max_disk_size(Some(budget));
    writer.prune().unwrap();
    let size = store.size_bytes();
    assert!(
        size <= budget + 64 * 1024,
        "{size} bytes after the budget of {budget}, {full} before"
    );
    let dropped = store.stats().budget_dropped_raw.load(Ordering::Relaxed);
    assert!(dropped >= 200 * 360, "dropped {dropped} raw samples");
    assert_eq!(dropped % (200 * 360), 0, "whole hours of raw samples go");
    // The oldest hour's raw samples went first; the newest remain, and so do every hour's
    // 1-minute roll-ups.
    assert_eq!(raw_points(NOW - hours * HOUR), 0);
    assert_eq!(raw_points(NOW - HOUR), 360);
    assert_eq!(
        store.stats().budget_dropped_minute.load(Ordering::Relaxed),
        0
    );
    let minutes = store
        .range(
            "noisy",
            &parse_selector(r#"{topic="3"}"#).unwrap(),
            NOW - hours * HOUR,
            NOW,
            60_000,
            AggregateFn::Count,
        )
        .unwrap();
    assert_eq!(minutes.series[0].1.len() as u64, hours * 60);
    writer.close();
}

/// The id of each series of `metric`, by its labels' text.
fn series_ids(dir: &std::path::Path, metric: &str) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(dir.join(pipescope::store::DB_FILE)).unwrap();
    let mut stmt = conn
        .prepare("SELECT labels, id FROM series WHERE metric = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([metric], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn a_store_of_the_previous_layout_opens_reads_and_moves_to_the_new_one() {
    use pipescope_core::tsdb::Aggregate;
    use pipescope_core::tsdb::chunk::v1;
    let dir = tempfile::tempdir().unwrap();
    let block = NOW - 2 * HOUR;
    // The previous layout: a rowid series table with a unique index, chunks of version 1.
    {
        let conn = rusqlite::Connection::open(dir.path().join(pipescope::store::DB_FILE)).unwrap();
        conn.execute_batch(
            "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;
             CREATE TABLE series (id INTEGER PRIMARY KEY, metric TEXT NOT NULL,
                 labels TEXT NOT NULL, UNIQUE (metric, labels));
             CREATE TABLE raw (series_id INTEGER NOT NULL, ts INTEGER NOT NULL,
                 value REAL NOT NULL, PRIMARY KEY (series_id, ts)) WITHOUT ROWID;
             CREATE TABLE raw_chunks (series_id INTEGER NOT NULL, start_ts INTEGER NOT NULL,
                 end_ts INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL,
                 PRIMARY KEY (series_id, start_ts)) WITHOUT ROWID;
             CREATE TABLE m1_chunks (series_id INTEGER NOT NULL, start_ts INTEGER NOT NULL,
                 end_ts INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL,
                 PRIMARY KEY (series_id, start_ts)) WITHOUT ROWID;
             CREATE TABLE m1 (series_id INTEGER NOT NULL, ts INTEGER NOT NULL,
                 count INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL,
                 max REAL NOT NULL, last REAL NOT NULL, last_ts INTEGER NOT NULL,
                 PRIMARY KEY (series_id, ts)) WITHOUT ROWID;
             CREATE TABLE h1 (series_id INTEGER NOT NULL, ts INTEGER NOT NULL,
                 count INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL,
                 max REAL NOT NULL, last REAL NOT NULL, last_ts INTEGER NOT NULL,
                 PRIMARY KEY (series_id, ts)) WITHOUT ROWID;
             INSERT INTO series VALUES (7, 'old', '{\"topic\":\"a\"}'), (9, 'old', '{\"topic\":\"b\"}');",
        )
        .unwrap();
        for (id, scale) in [(7i64, 1.0), (9, 10.0)] {
            let points: Vec<(u64, f64)> = (0..360u64)
                .map(|i| (block + i * 10_000, i as f64 * scale))
                .collect();
            let mut minutes: Vec<(u64, Aggregate)> = Vec::new();
            for &(ts, value) in &points {
                let start = ts / 60_000 * 60_000;
                match minutes.last_mut() {
                    Some((s, a)) if *s == start => a.add(ts, value),
                    _ => minutes.push((start, Aggregate::single(ts, value))),
                }
            }
            let mut hour = minutes[0].1;
            for (_, a) in &minutes[1..] {
                hour.merge(a);
            }
            let end = block + 359 * 10_000;
            for (table, data, count) in [
                ("raw_chunks", v1::encode_raw(&points).unwrap(), 360),
                ("m1_chunks", v1::encode_rollup(&minutes).unwrap(), 360),
            ] {
                conn.execute(
                    &format!("INSERT INTO {table} VALUES (?1, ?2, ?3, ?4, ?5)"),
                    rusqlite::params![id, block as i64, end as i64, count, data],
                )
                .unwrap();
            }
            conn.execute(
                "INSERT INTO h1 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                rusqlite::params![
                    id,
                    block as i64,
                    hour.count as i64,
                    hour.sum,
                    hour.min,
                    hour.max,
                    hour.last,
                    hour.last_ms as i64
                ],
            )
            .unwrap();
        }
    }
    let clock = ManualClock::at(NOW + 10 * 60_000);
    let (store, writer) = open(dir.path(), &clock);
    // The series table was rewritten keyed by its text, ids kept; its unique index is gone.
    assert_eq!(
        series_ids(dir.path(), "old"),
        [
            (r#"{"topic":"a"}"#.to_string(), 7),
            (r#"{"topic":"b"}"#.to_string(), 9)
        ]
    );
    let conn = rusqlite::Connection::open(dir.path().join(pipescope::store::DB_FILE)).unwrap();
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'series'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 0);
    // Every query reads the version 1 chunks.
    let only_a = parse_selector(r#"{topic="a"}"#).unwrap();
    let raw = store
        .range(
            "old",
            &only_a,
            block,
            block + HOUR - 1,
            10_000,
            AggregateFn::Last,
        )
        .unwrap();
    let expected: Vec<(u64, f64)> = (0..360u64)
        .map(|i| (block + i * 10_000, i as f64))
        .collect();
    assert_eq!(raw.series[0].1, expected);
    let minutes = store
        .range(
            "old",
            &only_a,
            block,
            block + HOUR - 1,
            60_000,
            AggregateFn::Last,
        )
        .unwrap();
    assert_eq!(minutes.resolution, Resolution::Minute);
    let expected: Vec<(u64, f64)> = (0..60u64)
        .map(|m| (block + m * 60_000, (6 * m + 5) as f64))
        .collect();
    assert_eq!(minutes.series[0].1, expected);
    let top = store
        .top("old", &[], 2, block + 30_000, NOW, AggregateFn::Count)
        .unwrap();
    assert_eq!(
        top.iter().map(|t| t.value).collect::<Vec<_>>(),
        [357.0, 357.0]
    );
    let last = store.last("old", &[]).unwrap();
    assert_eq!(
        (last[1].time_ms, last[1].value),
        (block + 3_590_000, 3_590.0)
    );

    // A new series is numbered past the old ones; a late sample of the old hour is merged
    // into its chunk, which is written again in the current layout.
    writer
        .store(Arc::new(vec![
            Sample::new("old", labels(&[("topic", "c")]), NOW, 1.0),
            Sample::new("old", labels(&[("topic", "a")]), block + 5_000, 0.5),
        ]))
        .unwrap();
    assert_eq!(series_ids(dir.path(), "old")[2].1, 10);
    clock.set(NOW + HOUR + 10 * 60_000);
    writer.prune().unwrap();
    let tags: Vec<(i64, u8)> = conn
        .prepare("SELECT series_id, data FROM raw_chunks WHERE start_ts = ?1 ORDER BY series_id")
        .unwrap()
        .query_map([block as i64], |r| {
            Ok((r.get(0)?, r.get::<_, Vec<u8>>(1)?[0]))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(tags, [(7, 3), (9, 1)]);
    let count = store
        .range(
            "old",
            &only_a,
            block,
            block + HOUR - 1,
            HOUR,
            AggregateFn::Count,
        )
        .unwrap();
    assert_eq!(count.series[0].1, [(block, 361.0)]);
    writer.close();
}
