//! Router tests without a socket (tower oneshot).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures::StreamExt;
use pipescope_core::ManualClock;
use pipescope_core::kafka::KafkaView;
use pipescope_core::kafka::Verdict;
use pipescope_core::kafka::analyzer::{GroupPartitionView, GroupTopicView, GroupView, TopicView};
use pipescope_core::kafka::lag::{CatchUp, LagNote, LagSeconds, LagSecondsBasis, OffsetLag};
use pipescope_core::live::events::{Event, EventKind};
use pipescope_core::windows::{WindowCount, WindowCounts};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::config::{Secret, WebAuth};
use crate::kafka::state::{
    AssignedTopic, CommittedOffset, GroupDescription, GroupState, KafkaBrokerState, MemberState,
    PartitionState, ProducerState, TopicState,
};

fn hub() -> (Hub, ManualClock) {
    let clock = ManualClock::at(1_000_000);
    (Hub::new(Arc::new(clock.clone())), clock)
}

async fn get(router: Router, uri: &str) -> (StatusCode, Value) {
    send(router, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post(router: Router, uri: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    send(router, Request::post(uri).body(body.into()).unwrap()).await
}

/// The answer's status and JSON body (`null` when the body is not JSON).
async fn send(router: Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn event(at: u64, subject: &str) -> Event {
    Event {
        at,
        kind: EventKind::BrokerDown,
        source: "kafka/c".into(),
        subject: subject.into(),
        message: format!("{subject} is down"),
    }
}

#[tokio::test]
async fn events_newest_first_limited_and_bad_limits_rejected() {
    let (hub, _) = hub();
    for i in 1..=3 {
        hub.emit(event(i, &format!("broker {i}")));
    }
    let router = router(hub, LiveState::new(), FlowsState::default());
    let (status, body) = get(router.clone(), "/api/v1/events?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"events": [
            {"at": 3, "kind": "broker_down", "source": "kafka/c", "subject": "broker 3", "message": "broker 3 is down"},
            {"at": 2, "kind": "broker_down", "source": "kafka/c", "subject": "broker 2", "message": "broker 2 is down"},
        ]})
    );
    let (_, all) = get(router.clone(), "/api/v1/events").await;
    assert_eq!(all["events"].as_array().unwrap().len(), 3);
    let (status, body) = get(router.clone(), "/api/v1/events?limit=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("?limit=N"),
        "{body}"
    );
    let (status, _) = get(router, "/api/v1/events?lim=3").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_ring_keeps_a_thousand() {
    let (hub, _) = hub();
    for i in 0..1_005 {
        hub.emit(event(i, "b"));
    }
    let (_, body) = get(
        router(hub, LiveState::new(), FlowsState::default()),
        "/api/v1/events?limit=5000",
    )
    .await;
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1_000);
    assert_eq!(events[0]["at"], 1_004);
    assert_eq!(events[999]["at"], 5);
}

/// Reads SSE frames until `n` non-comment frames came, or 5 s passed.
async fn frames(body: Body, n: usize) -> Vec<String> {
    let mut stream = body.into_data_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let done: Vec<String> = text
            .split("\n\n")
            .filter(|f| f.starts_with("event:"))
            .map(str::to_owned)
            .collect();
        if done.len() >= n {
            return done;
        }
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(std::str::from_utf8(&chunk).unwrap()),
            other => panic!("live stream ended or stalled after {text:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_live_stream_sends_updates_throttled_and_events_and_ends_on_close() {
    let (hub, clock) = hub();
    let response = router(hub.clone(), LiveState::new(), FlowsState::default())
        .oneshot(Request::get("/api/v1/live").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    hub.update("kafka/c");
    // Within the second: dropped.
    clock.advance(Duration::from_millis(999));
    hub.update("kafka/c");
    hub.emit(event(5, "broker 1"));
    clock.advance(Duration::from_millis(1));
    hub.update("kafka/c");
    let body = response.into_body();
    let got = frames(body, 3).await;
    assert_eq!(
        got,
        [
            "event: update\ndata: {\"at\":1000000,\"source\":\"kafka/c\"}",
            "event: event\ndata: {\"at\":5,\"kind\":\"broker_down\",\"source\":\"kafka/c\",\"subject\":\"broker 1\",\"message\":\"broker 1 is down\"}",
            "event: update\ndata: {\"at\":1001000,\"source\":\"kafka/c\"}",
        ]
    );
    // A closed hub ends the stream, so a stopping server does not wait on open browsers.
    let response = router(hub.clone(), LiveState::new(), FlowsState::default())
        .oneshot(Request::get("/api/v1/live").body(Body::empty()).unwrap())
        .await
        .unwrap();
    hub.close();
    let rest = tokio::time::timeout(
        Duration::from_secs(5),
        axum::body::to_bytes(response.into_body(), 1 << 20),
    )
    .await
    .expect("the stream ends when the hub closes")
    .unwrap();
    assert!(!String::from_utf8_lossy(&rest).contains("event:"));
}

/// Each open live stream holds a connection and a task: past the cap, 503 until one closes.
#[tokio::test]
async fn live_streams_past_the_cap_are_answered_503_until_one_closes() {
    let (hub, _) = hub();
    let app = router(hub, LiveState::new(), FlowsState::default());
    let open = || async {
        app.clone()
            .oneshot(Request::get("/api/v1/live").body(Body::empty()).unwrap())
            .await
            .unwrap()
    };
    let mut streams = Vec::new();
    for _ in 0..MAX_LIVE_STREAMS {
        let response = open().await;
        assert_eq!(response.status(), StatusCode::OK);
        streams.push(response);
    }
    let refused = open().await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()[header::RETRY_AFTER], "30");
    let body = axum::body::to_bytes(refused.into_body(), 1 << 16)
        .await
        .unwrap();
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("too many live streams"),
        "{error}"
    );
    drop(streams.pop());
    assert_eq!(open().await.status(), StatusCode::OK);
}

fn partition(p: i32, latest: i64, producers: Result<Vec<i64>, String>) -> PartitionState {
    let producers = producers.map(|ids| {
        ids.into_iter()
            .map(|producer_id| ProducerState {
                producer_id,
                producer_epoch: 0,
                last_sequence: 1,
                last_timestamp_ms: 1,
                current_txn_start_offset: None,
            })
            .collect()
    });
    PartitionState::healthy(p, latest, producers)
}

fn topic(name: &str, internal: bool, partitions: Vec<PartitionState>) -> TopicState {
    TopicState {
        id: None,
        name: name.into(),
        internal,
        error: None,
        config: Err("not asked".into()),
        partitions,
    }
}

fn cluster() -> ClusterState {
    ClusterState {
        name: "demo".into(),
        scraped_at_ms: 10,
        scrape_duration_ms: 1,
        data_time_ms: 10,
        error: None,
        cluster_id: None,
        controller_id: Some(1),
        brokers: vec![KafkaBrokerState {
            id: 1,
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            up: true,
            error: None,
        }],
        topics: vec![
            topic(
                "calls",
                false,
                vec![
                    partition(0, 10, Ok(vec![42])),
                    partition(1, 10, Err("broker does not report producers".into())),
                ],
            ),
            topic(
                "__consumer_offsets",
                true,
                vec![partition(0, 1, Ok(vec![]))],
            ),
            topic(
                "<img src=x onerror=alert(1)>",
                false,
                vec![partition(0, 0, Ok(vec![]))],
            ),
        ],
        groups: vec![
            GroupState {
                name: "proc".into(),
                coordinator: Ok(1),
                protocol_type: "consumer".into(),
                description: Err("tansu fails DescribeGroups".into()),
                offsets: Ok(vec![CommittedOffset {
                    topic: "calls".into(),
                    partition: 0,
                    committed: 5,
                    metadata: None,
                    record_time_ms: None,
                    record_time_error: None,
                }]),
            },
            GroupState {
                name: "idle".into(),
                coordinator: Ok(1),
                protocol_type: "consumer".into(),
                description: Ok(GroupDescription {
                    state: "Stable".into(),
                    protocol_type: "consumer".into(),
                    protocol: "range".into(),
                    members: vec![MemberState {
                        member_id: "m".into(),
                        group_instance_id: None,
                        client_id: "c".into(),
                        client_host: "/127.0.0.1".into(),
                        assignment: vec![AssignedTopic {
                            topic: "calls".into(),
                            partitions: vec![1],
                        }],
                        assignment_error: None,
                    }],
                }),
                offsets: Err("coordinator not available".into()),
            },
        ],
        group_list_errors: vec![],
        stages: vec![crate::kafka::state::ScrapeStage {
            name: "Metadata",
            start_ms: 0.0,
            duration_ms: 1.5,
        }],
        offsets_time_ms: None,
        committed_offsets: Default::default(),
        view: Some(Arc::new(KafkaView {
            time_ms: 10,
            partitions: vec![],
            topics: vec![TopicView {
                topic: "calls".into(),
                partitions: 2,
                partitions_with_rate: 2,
                rates: Some(WindowCounts::from_fn(|w| {
                    WindowCount::new(w, 600.0 * (w.millis() / 60_000) as f64, w.millis())
                })),
                instant_messages_per_second: Some(10.0),
                instant_interval_s: Some(10.0),
            }],
            groups: vec![GroupView {
                group: "proc".into(),
                lag_offsets: 5,
                partitions_lag_unknown: 0,
                partitions_beyond_end: 0,
                max_lag_seconds: None,
                max_lag_seconds_estimated: false,
                verdict: Verdict::Stalled,
                verdict_reason: None,
                lost_to_retention: 0,
                topics: vec![GroupTopicView {
                    topic: "calls".into(),
                    lag_offsets: 5,
                    partitions_lag_unknown: 0,
                    max_lag_seconds: Some(30.0),
                    verdict: Verdict::Stalled,
                    lost_to_retention: 0,
                    partitions: vec![GroupPartitionView {
                        partition: 0,
                        committed: 5,
                        latest: Some(10),
                        lag: OffsetLag {
                            offsets: Some(5),
                            note: LagNote::Measured,
                        },
                        lag_seconds: LagSeconds {
                            seconds: Some(30.0),
                            basis: LagSecondsBasis::Exact,
                            interpolated_over_s: None,
                        },
                        catch_up: CatchUp::FallingBehind {
                            rates_over_s: 45.0,
                            rates_over_intervals: 9,
                        },
                        verdict: Verdict::Stalled,
                        window_observations: 10,
                        window_complete: true,
                        last_commit_seen_ms: Some(5),
                        reported_this_scrape: true,
                        lost_to_retention: 0,
                        verdict_reason: None,
                    }],
                }],
            }],
            counters: Default::default(),
        })),
    }
}

/// Names of a list page's items.
fn names(page: &serde_json::Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn topic_and_group_lists_are_pages_sorted_and_filtered_on_the_server() {
    let live = LiveState::new();
    live.set(cluster());
    let app = crate::kafka::api::router(live.clone(), Arc::new(pipescope_core::SystemClock));
    let base = "/api/v1/kafka/clusters/demo";
    let (status, all) = get(app.clone(), &format!("{base}/topics")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            all["total"].clone(),
            all["offset"].clone(),
            all["limit"].clone()
        ),
        (json!(3), json!(0), json!(1000))
    );
    assert_eq!(
        names(&all),
        [
            "<img src=x onerror=alert(1)>",
            "__consumer_offsets",
            "calls"
        ]
    );
    // By rate, highest first: the one topic with a rate, then the unknowns by name.
    let (_, by_rate) = get(
        app.clone(),
        &format!("{base}/topics?sort=rate&order=desc&limit=2"),
    )
    .await;
    assert_eq!(by_rate["total"], 3);
    assert_eq!(names(&by_rate), ["calls", "<img src=x onerror=alert(1)>"]);
    let (_, second) = get(
        app.clone(),
        &format!("{base}/topics?sort=rate&order=desc&limit=2&offset=2"),
    )
    .await;
    assert_eq!(names(&second), ["__consumer_offsets"]);
    let (_, filtered) = get(app.clone(), &format!("{base}/topics?q=CALL&internal=false")).await;
    assert_eq!(
        (filtered["total"].clone(), names(&filtered)),
        (json!(1), vec!["calls"])
    );
    let (_, not_internal) = get(
        app.clone(),
        &format!("{base}/topics?internal=false&sort=partitions&order=desc"),
    )
    .await;
    assert_eq!(
        names(&not_internal),
        ["calls", "<img src=x onerror=alert(1)>"]
    );

    // Groups: by lag (proc has 5, idle is not analysed: last), by verdict, filtered by verdict.
    let (_, by_lag) = get(app.clone(), &format!("{base}/groups?sort=lag&order=desc")).await;
    assert_eq!(names(&by_lag), ["proc", "idle"]);
    let (_, stalled) = get(app.clone(), &format!("{base}/groups?verdict=stalled,LOST")).await;
    assert_eq!(names(&stalled), ["proc"]);
    let (_, members) = get(
        app.clone(),
        &format!("{base}/groups?sort=members&order=desc"),
    )
    .await;
    assert_eq!(names(&members), ["idle", "proc"]);

    // Wrong parameters are refused, saying what to send.
    for (path, says) in [
        ("topics?limit=0", "limit=0: it must be 1 to 10000"),
        ("topics?limit=20000", "limit=20000"),
        ("topics?sort=size", "sort by one of name, rate, partitions"),
        ("topics?order=up", "order"),
        ("topics?offset=-1", "offset"),
        ("groups?verdict=BAD", "use OK, WARN, STOPPED"),
        ("groups?sort=rate", "sort by one of name, lag, lag_seconds"),
    ] {
        let (status, body) = get(app.clone(), &format!("{base}/{path}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{path}: {body}"
        );
    }

    // The cluster's summary carries what an overview needs without listing them.
    let (_, summary) = get(app.clone(), base).await;
    assert_eq!(
        summary["group_verdicts"],
        json!({"STALLED": 1, "unknown": 1})
    );
    assert_eq!(
        summary["messages_last_minute"],
        json!({"count": 600.0, "covered_s": 60.0, "per_minute": 600.0})
    );

    // The orders are kept per scrape: the next scrape's lists and summary replace them.
    let mut next = cluster();
    next.scraped_at_ms += 10_000;
    next.topics
        .push(topic("audit", false, vec![partition(0, 7, Ok(vec![]))]));
    next.groups.truncate(1);
    live.set(next);
    // The request that notices the new scrape is answered from the previous one's lists while
    // the new ones are built off the request path; they follow within milliseconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, by_name) = get(app.clone(), &format!("{base}/topics?internal=false")).await;
        let shown = names(&by_name);
        if shown == ["<img src=x onerror=alert(1)>", "audit", "calls"] {
            break;
        }
        assert_eq!(
            shown,
            ["<img src=x onerror=alert(1)>", "calls"],
            "neither scrape's list"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the new scrape's list never came"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (_, by_lag) = get(app.clone(), &format!("{base}/groups?sort=lag&order=desc")).await;
    assert_eq!(by_lag["total"], 1);
    let (_, summary) = get(app, base).await;
    assert_eq!(
        (summary["topics"].clone(), summary["groups"].clone()),
        (json!(4), json!(1))
    );
}

#[tokio::test]
async fn the_flow_graph_of_a_scraped_cluster() {
    let live = LiveState::new();
    live.set(cluster());
    let (hub, _) = hub();
    let (status, body) = get(router(hub, live, FlowsState::default()), "/api/v1/flow").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "nodes": [
                {"id": "producer:demo/42", "kind": "producer", "label": "producer 42", "cluster": "demo", "rate_per_min": 600.0, "last_minute": {"count": 600.0, "covered_s": 60.0, "per_minute": 600.0}, "verdict": null},
                {"id": "topic:demo/<img src=x onerror=alert(1)>", "kind": "topic", "label": "<img src=x onerror=alert(1)>", "cluster": "demo", "rate_per_min": null, "last_minute": null, "verdict": null},
                {"id": "topic:demo/calls", "kind": "topic", "label": "calls", "cluster": "demo", "rate_per_min": 600.0, "last_minute": {"count": 600.0, "covered_s": 60.0, "per_minute": 600.0}, "verdict": null},
                {"id": "group:demo/idle", "kind": "group", "label": "idle", "cluster": "demo", "rate_per_min": null, "last_minute": null, "verdict": null},
                {"id": "group:demo/proc", "kind": "group", "label": "proc", "cluster": "demo", "rate_per_min": null, "last_minute": null, "verdict": "STALLED"},
            ],
            "edges": [
                {"source": "producer:demo/42", "target": "topic:demo/calls", "rate_per_min": 600.0, "alarm": false},
                {"source": "topic:demo/calls", "target": "group:demo/idle", "rate_per_min": 600.0, "alarm": false},
                {"source": "topic:demo/calls", "target": "group:demo/proc", "rate_per_min": 600.0, "alarm": false},
            ]
        })
    );
}

/// The test flow's figures once the loss of its sample (1 lost, 1 duplicated on the edge) is in
/// a complete 10 s bucket of the last minute.
fn lossy_view() -> crate::completeness::FlowView {
    use crate::completeness::tests_support::{flow_config, traced};
    let mut a = crate::completeness::FlowAccount::new("m", &flow_config(), 1_000);
    for seq in 0..5 {
        a.apply(traced(0, None, "machine/a", seq, 2_000 + seq));
    }
    for seq in [0, 1, 3, 3, 4] {
        a.apply(traced(1, Some(0), "machine/a", seq, 2_010 + seq));
    }
    a.tick(10_000);
    a.tick(21_000);
    a.view(21_000)
}

#[tokio::test]
async fn the_flow_graph_draws_an_observed_flow_with_its_loss() {
    let live = LiveState::new();
    live.set(cluster());
    let flows = FlowsState::default();
    flows.set(lossy_view());
    let (hub, _) = hub();
    let (status, body) = get(router(hub, live, flows), "/api/v1/flow").await;
    assert_eq!(status, StatusCode::OK);
    let nodes = body["nodes"].as_array().unwrap();
    let ids: Vec<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    // The admin plane's nodes first, unchanged; then the flow's MQTT subtree, its Kafka topic
    // (not scraped here) and its origin kind.
    assert_eq!(ids[..5].len(), 5);
    assert_eq!(
        ids[5..],
        [
            "mqtt:edge/machine/#",
            "topic:prod/machine.data",
            "origin:m/sim"
        ]
    );
    let flow_edges: Vec<&Value> = body["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["flow"] == "m")
        .collect();
    assert_eq!(flow_edges.len(), 2);
    assert_eq!(flow_edges[0]["source"], "origin:m/sim");
    assert_eq!(flow_edges[0]["alarm"], false);
    let edge = flow_edges[1];
    assert_eq!(
        (&edge["source"], &edge["target"]),
        (
            &json!("mqtt:edge/machine/#"),
            &json!("topic:prod/machine.data")
        )
    );
    assert_eq!(
        (&edge["lost"], &edge["duplicated"]),
        (&json!(1.0), &json!(1.0))
    );
    assert_eq!(edge["alarm"], true, "loss in the last minute: red");
}

#[test]
fn loss_on_a_flow_starts_one_event_not_one_per_record() {
    let (hub, _) = hub();
    let mut rx = hub.subscribe();
    let mut loss = crate::completeness::api::LossEvents::default();
    let mut view = crate::completeness::tests_support::sample_view();
    // The first look sets the base (1 lost already on the edge and at the Kafka hop).
    loss.look(std::slice::from_ref(&view), &hub);
    assert!(hub.events(10).is_empty());
    for _ in 0..4 {
        view.updated_ms += 1_000;
        view.edges[0].figures.total.counters.lost += 3;
        loss.look(std::slice::from_ref(&view), &hub);
    }
    // The same figures looked at again are not a quiet look.
    loss.look(std::slice::from_ref(&view), &hub);
    let found = hub.events(10);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, EventKind::LossStarted);
    assert_eq!(found[0].source, "flow/m");
    assert_eq!(
        found[0].subject,
        "edge mqtt:edge:machine/# → kafka:prod:machine.data"
    );
    for _ in 0..30 {
        view.updated_ms += 1_000;
        loss.look(std::slice::from_ref(&view), &hub);
    }
    let found = hub.events(10);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].kind, EventKind::LossStopped);
    assert!(found[0].message.contains("12 lost"), "{}", found[0].message);
    let mut saw_update = false;
    while let Ok(m) = rx.try_recv() {
        saw_update |= matches!(m, hub::LiveMessage::Update(u) if u.source == "flow/m");
    }
    assert!(saw_update);
}

#[tokio::test]
async fn kafka_scrapes_become_events_and_updates() {
    let live = LiveState::new();
    let (hub, clock) = hub();
    let mut rx = hub.subscribe();
    let task = tokio::spawn(hub::follow_kafka(live.clone(), hub.clone()));
    live.set(cluster());
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first,
        LiveMessage::Update(hub::Update {
            at: 1_000_000,
            source: "kafka/demo".into()
        })
    );
    clock.advance(Duration::from_secs(5));
    let mut down = cluster();
    down.scraped_at_ms = 20;
    down.brokers[0].up = false;
    down.brokers[0].error = Some("connection refused".into());
    live.set(down);
    let next = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let LiveMessage::Event(e) = next else {
        panic!("expected an event, got {next:?}")
    };
    assert_eq!(e.kind, EventKind::BrokerDown);
    assert_eq!(e.at, 1_005_000);
    assert_eq!(
        e.message,
        "Kafka broker 1 at 127.0.0.1:9092 is down: connection refused"
    );
    assert_eq!(hub.events(10).len(), 1);
    task.abort();
}

fn protected(auth: WebAuth) -> Router {
    let (hub, _) = hub();
    hub.close();
    let open = Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    auth::protect(
        open.merge(router(hub, LiveState::new(), FlowsState::default())),
        &auth,
    )
}

async fn status_and_challenge(
    router: Router,
    uri: &str,
    authorization: Option<&str>,
) -> (StatusCode, Option<String>) {
    let mut request = Request::get(uri);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = router
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), challenge)
}

#[tokio::test]
async fn without_auth_everything_is_open() {
    let r = protected(WebAuth::None);
    assert_eq!(
        status_and_challenge(r, "/api/v1/events", None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bearer_auth() {
    let r = protected(WebAuth::Bearer {
        token: Secret::new("s3cret-token"),
    });
    let bearer = Some("Bearer realm=\"pipescope\"".to_string());
    assert_eq!(
        status_and_challenge(r.clone(), "/health", None).await,
        (StatusCode::OK, None)
    );
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/events", None).await,
        (StatusCode::UNAUTHORIZED, bearer.clone())
    );
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/events", Some("Bearer wrong")).await,
        (StatusCode::UNAUTHORIZED, bearer.clone())
    );
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/events", Some("Bearer s3cret-token-")).await,
        (StatusCode::UNAUTHORIZED, bearer.clone())
    );
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/events", Some("Basic czNjcmV0LXRva2Vu")).await,
        (StatusCode::UNAUTHORIZED, bearer.clone())
    );
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/events", Some("Bearer s3cret-token")).await,
        (StatusCode::OK, None)
    );
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/events", Some("bearer  s3cret-token")).await,
        (StatusCode::OK, None)
    );
    // The portal's files hold no data: they load without the token (the page then asks for it).
    assert_ne!(
        status_and_challenge(r.clone(), "/index.html", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_and_challenge(r.clone(), "/metrics", None).await,
        (StatusCode::UNAUTHORIZED, bearer.clone())
    );
    // The live stream takes ?access_token= (EventSource cannot set headers); nothing else does.
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/live?access_token=s3cret-token", None).await,
        (StatusCode::OK, None)
    );
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/live?access_token=nope", None).await,
        (StatusCode::UNAUTHORIZED, bearer.clone())
    );
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/live", None).await,
        (StatusCode::UNAUTHORIZED, bearer.clone())
    );
    assert_eq!(
        status_and_challenge(r, "/api/v1/events?access_token=s3cret-token", None).await,
        (StatusCode::UNAUTHORIZED, bearer)
    );
}

#[tokio::test]
async fn basic_auth() {
    let r = protected(WebAuth::Basic {
        user: "ops".into(),
        password: Secret::new("pa:ss"),
    });
    let basic = Some("Basic realm=\"pipescope\", charset=\"UTF-8\"".to_string());
    use base64::Engine;
    let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(
        status_and_challenge(r.clone(), "/health", None).await,
        (StatusCode::OK, None)
    );
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/flow", None).await,
        (StatusCode::UNAUTHORIZED, basic.clone())
    );
    for wrong in ["ops:pa:sS", "ops:pa", "Ops:pa:ss", "ops"] {
        let header = format!("Basic {}", encode(wrong));
        assert_eq!(
            status_and_challenge(r.clone(), "/api/v1/flow", Some(&header)).await,
            (StatusCode::UNAUTHORIZED, basic.clone()),
            "{wrong}"
        );
    }
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/flow", Some("Basic !!not base64")).await,
        (StatusCode::UNAUTHORIZED, basic.clone())
    );
    let right = format!("Basic {}", encode("ops:pa:ss"));
    assert_eq!(
        status_and_challenge(r.clone(), "/api/v1/flow", Some(&right)).await,
        (StatusCode::OK, None)
    );
    let live = format!(
        "/api/v1/live?access_token={}",
        encode("ops:pa:ss").replace('=', "%3D")
    );
    assert_eq!(
        status_and_challenge(r, &live, None).await,
        (StatusCode::OK, None)
    );
}

/// Every `.route("...")` in the files that build the monitor's router.
fn routes_in_sources() -> std::collections::BTreeSet<String> {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");
    let re = regex::Regex::new(r#"\.route\(\s*"([^"]+)""#).unwrap();
    let mut out = std::collections::BTreeSet::new();
    for file in [
        "web.rs",
        "api/mod.rs",
        "kafka/api.rs",
        "mqtt/api.rs",
        "completeness/api.rs",
        "probe/api.rs",
        "quality/api.rs",
        "alerts/api.rs",
        "store/api.rs",
        "store/write_api.rs",
        "health.rs",
        "parts_watch.rs",
    ] {
        let text = std::fs::read_to_string(format!("{src}{file}")).unwrap();
        out.extend(re.captures_iter(&text).map(|c| c[1].to_string()));
    }
    out
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_of_the_merged_router() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::parse("t", "", []).unwrap();
    let (store, writer) = crate::store::Store::open(
        dir.path(),
        crate::store::retention_from(&config.store),
        Arc::new(pipescope_core::SystemClock),
        4,
    )
    .unwrap();
    let live = LiveState::new();
    live.set(cluster());
    let mqtt_config =
        crate::config::parse("t", "[mqtt.m]\nurl = \"mqtt://127.0.0.1:1\"\n", []).unwrap();
    let mqtt =
        crate::mqtt::MqttState::new(&mqtt_config.mqtt, Arc::new(pipescope_core::SystemClock));
    let (hub, _) = hub();
    hub.close();
    let flows = crate::completeness::FlowsState::default();
    flows.set(crate::completeness::tests_support::sample_view());
    let quality = crate::quality::QualityState::new(
        &crate::config::parse(
            "t",
            "[kafka.k]\nbootstrap = \"a:1\"\n[quality.visits]\nkafka = \"k\"\ntopic = \"v\"\n",
            [],
        )
        .unwrap(),
        Arc::new(pipescope_core::SystemClock),
    );
    let parts_config = crate::config::parse(
        "t",
        "[watched_parts.bridge]\nurl = \"http://127.0.0.1:1\"\n",
        [],
    )
    .unwrap();
    let parts = crate::parts_watch::PartsState::new(&parts_config.watched_parts, 0);
    let ready = crate::health::ReadyState::new(
        &parts_config,
        crate::health::WatchedSources {
            kafka: live.clone(),
            mqtt: mqtt.clone(),
            parts: parts.clone(),
            flows: flows.clone(),
            quality: quality.clone(),
            store: store.clone(),
        },
        Arc::new(pipescope_core::SystemClock),
    );
    let sources = crate::monitor::Sources {
        bus: crate::bus::Bus::new(4),
        store,
        writer: writer.clone(),
        kafka: live,
        mqtt,
        flows,
        probes: crate::probe::ProbesState::default(),
        quality,
        parts,
        ready,
        alerts: crate::alerts::AlertsState::new(
            &crate::config::parse(
                "t",
                "[kafka.k]\nbootstrap = \"a:1\"\n[alerts.rules.lag]\nkind = \"group_lag_offsets\"\nabove = 15\n",
                [],
            )
            .unwrap(),
            None,
            Arc::new(pipescope_core::SystemClock),
        ),
        hub,
        tasks: crate::shutdown::Supervisor::new(
            crate::shutdown::Stop::new(),
            Arc::new(pipescope_core::SystemClock),
        ),
        clock: Arc::new(pipescope_core::SystemClock),
    };
    let app = crate::monitor::app(
        crate::metrics::new_registry(),
        &sources,
        &crate::config::Web::default(),
    );
    let (status, doc) = get(app.clone(), "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented: std::collections::BTreeSet<String> =
        doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(documented, routes_in_sources());
    assert!(doc["components"]["schemas"]["Event"].is_object());
    assert!(doc["components"]["schemas"]["FlowGraph"].is_object());
    // Every schema referred to is in the document.
    fn refs<'d>(value: &'d Value, out: &mut Vec<&'d str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(targets.len() > 20, "{targets:?}");
    for target in targets {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the schemas: {target}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{target} is referred to but not in the document"
        );
    }
    // Answers described field by field carry every required field and none undocumented.
    // A schema's fields and its required ones: its own, and those of the schemas it is made of
    // (`allOf`, which is how a flattened struct is described).
    type Names<'d> = std::collections::BTreeSet<&'d str>;
    fn fields<'d>(
        doc: &'d serde_json::Value,
        schema: &'d serde_json::Value,
        all: &mut Names<'d>,
        required: &mut Names<'d>,
    ) {
        let schema = match schema["$ref"].as_str() {
            Some(path) => {
                &doc["components"]["schemas"][path.trim_start_matches("#/components/schemas/")]
            }
            None => schema,
        };
        if let Some(properties) = schema["properties"].as_object() {
            all.extend(properties.keys().map(String::as_str));
        }
        required.extend(
            schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|name| name.as_str()),
        );
        for part in schema["allOf"].as_array().into_iter().flatten() {
            fields(doc, part, all, required);
        }
    }
    let documents = |schema: &str, value: &serde_json::Value| {
        let (mut documented, mut required) = (Names::new(), Names::new());
        fields(
            &doc,
            &doc["components"]["schemas"][schema],
            &mut documented,
            &mut required,
        );
        assert!(!documented.is_empty(), "{schema} has no properties");
        let answered: Names = value
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {value}"))
            .keys()
            .map(String::as_str)
            .collect();
        let undocumented: Vec<_> = answered.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "{schema}: {undocumented:?} not documented"
        );
        let missing: Vec<_> = required.difference(&answered).collect();
        assert!(
            missing.is_empty(),
            "{schema}: required {missing:?} not answered"
        );
    };
    let (_, clusters) = get(app.clone(), "/api/v1/kafka/clusters").await;
    documents("ClusterSummary", &clusters[0]);
    documents("ScrapeStage", &clusters[0]["scrape_stages"][0]);
    let (_, brokers) = get(app.clone(), "/api/v1/kafka/clusters/demo/brokers").await;
    documents("KafkaBrokerState", &brokers[0]);
    let (_, topics) = get(app.clone(), "/api/v1/kafka/clusters/demo/topics").await;
    documents("TopicSummary", &topics["items"][0]);
    let (_, groups) = get(app.clone(), "/api/v1/kafka/clusters/demo/groups").await;
    documents("GroupSummary", &groups["items"][0]);
    let topic_path = "/api/v1/kafka/clusters/demo/topics/calls";
    let (_, topic) = get(app.clone(), topic_path).await;
    documents("TopicDetail", &topic);
    documents("PartitionDetail", &topic["partitions"][0]);
    // "proc" has lag figures and a refused description; "idle" a description with a member.
    let (_, group) = get(app.clone(), "/api/v1/kafka/clusters/demo/groups/proc").await;
    documents("GroupDetail", &group);
    documents("GroupSkew", &group["lag_skew"]);
    documents("GroupPartitionLag", &group["partitions"][0]);
    documents("GroupTopicLag", &group["topics"][0]);
    let (_, group) = get(app.clone(), "/api/v1/kafka/clusters/demo/groups/idle").await;
    documents("GroupDetail", &group);
    documents("GroupDescription", &group["description"]);
    documents("MemberState", &group["description"]["members"][0]);
    let (_, health) = get(app.clone(), "/health").await;
    documents("Health", &health);
    let (status, ready) = get(app.clone(), "/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    documents("Ready", &ready);
    documents("SourceStatus", &ready["sources"][0]);
    let (_, parts) = get(app.clone(), "/api/v1/parts").await;
    documents("PartStatus", &parts[0]);
    let (_, mqtt_brokers) = get(app.clone(), "/api/v1/mqtt/brokers").await;
    documents("MqttBroker", &mqtt_brokers[0]);
    documents("MqttConnection", &mqtt_brokers[0]["connection"]);
    documents("TreeSummary", &mqtt_brokers[0]["tree"]);
    let (_, tree) = get(app.clone(), "/api/v1/mqtt/brokers/m/tree").await;
    documents("MqttTree", &tree);
    documents("NodeView", &tree["tree"]);
    let (_, sys) = get(app.clone(), "/api/v1/mqtt/brokers/m/sys").await;
    documents("MqttSys", &sys);
    // Parameters the server cannot read are answered as every error is: JSON `{"error"}`.
    let (status, answer) = get(app.clone(), "/api/v1/mqtt/brokers/m/tree?depth=deep").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().contains("depth"),
        "{answer}"
    );
    let (status, answer) = post(
        app.clone(),
        "/write?db=t&precision=ms&precision=s",
        "cpu usage=1",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().contains("precision"),
        "{answer}"
    );
    let (status, answer) = post(app.clone(), "/write?db=t", vec![0xff, 0xfe]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().contains("not UTF-8"),
        "{answer}"
    );
    // The store's endpoints refuse parameters they do not take: each is asked with every
    // parameter the document gives it.
    let (status, _) = post(app.clone(), "/write?db=t", "cpu,host=a usage=1.5").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let example = |name: &str| match name {
        "metric" => "cpu_usage",
        "match" => "{host=\"a\"}",
        "from" => "now-1h",
        "to" => "now",
        "step" => "1m",
        "agg" => "last",
        "n" => "5",
        other => panic!("no example value for parameter {other}"),
    };
    for (path, schema, element) in [
        ("/api/v1/query", "StoreRange", "RangeSeries"),
        ("/api/v1/series", "StoreSeries", "SeriesEntry"),
        ("/api/v1/last", "StoreValues", "ValueEntry"),
        ("/api/v1/top", "StoreValues", "ValueEntry"),
    ] {
        let query: Vec<String> = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let name = p["name"].as_str().unwrap();
                let value: String = example(name)
                    .bytes()
                    .map(|b| match b {
                        b'a'..=b'z' | b'0'..=b'9' | b'_' => char::from(b).to_string(),
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                format!("{name}={value}")
            })
            .collect();
        let uri = format!("{path}?{}", query.join("&"));
        let (status, answer) = get(app.clone(), &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {answer}");
        documents(schema, &answer);
        let first = &answer["series"][0];
        assert!(
            first.is_object(),
            "{uri}: the written sample is found: {answer}"
        );
        documents(element, first);
    }
    // And each documented path is served by the merged router (not the portal's fallback).
    for path in &documented {
        let uri = path
            .replace("{cluster}", "demo")
            .replace("{topic}", "calls")
            .replace("{group}", "proc")
            .replace("{broker}", "m")
            .replace("{flow}", "m")
            .replace("{name}", "visits")
            .replace("{id}", "no-such-silence");
        let uri = match path.as_str() {
            "/api/v1/query" | "/api/v1/last" | "/api/v1/top" | "/api/v1/series" => {
                format!("{uri}?metric=pipescope_kafka_broker_up")
            }
            _ => uri,
        };
        let (request, expected) = match path.as_str() {
            "/write" | "/api/v1/write" => (
                Request::post(format!("{uri}?db=t"))
                    .body(Body::from("openapi_check value=1 1700000000000000000"))
                    .unwrap(),
                StatusCode::NO_CONTENT,
            ),
            "/ping" => (
                Request::get(&uri).body(Body::empty()).unwrap(),
                StatusCode::NO_CONTENT,
            ),
            // No report is written here: the handler's own 404 (tests/it/quality.rs serves one).
            "/api/v1/quality/reports/{file}" => (
                Request::get(&uri).body(Body::empty()).unwrap(),
                StatusCode::NOT_FOUND,
            ),
            // DELETE only: expiring a silence there is not, the handler's own 404.
            "/api/v1/silences/{id}" => (
                Request::delete(&uri).body(Body::empty()).unwrap(),
                StatusCode::NOT_FOUND,
            ),
            // Its part, flow and MQTT broker are never reached here.
            "/ready" => (
                Request::get(&uri).body(Body::empty()).unwrap(),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            _ => (
                Request::get(&uri).body(Body::empty()).unwrap(),
                StatusCode::OK,
            ),
        };
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), expected, "{uri}");
    }
    drop(app);
    tokio::task::spawn_blocking(move || writer.close())
        .await
        .unwrap();
}

/// `web/openapi.json`, which the portal's TypeScript types are generated from, is the document
/// the server serves. `PIPESCOPE_WRITE_OPENAPI=1` rewrites it (docs/portal-api.md).
#[test]
fn the_checked_in_openapi_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/openapi.json");
    let current = super::openapi::document_text();
    if std::env::var_os("PIPESCOPE_WRITE_OPENAPI").is_some() {
        std::fs::write(path, &current).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == current,
        "web/openapi.json is not the document the server serves: run \
         `PIPESCOPE_WRITE_OPENAPI=1 cargo test -p pipescope --lib the_checked_in_openapi_document_is_current`, \
         then `npm run api-types` in web/, and commit both (docs/portal-api.md)"
    );
}

/// Two types with one schema name overwrite each other silently in the document: the MQTT
/// preview and a quality rule's failing record were both `Preview`, and the portal's types lost
/// the MQTT one.
#[test]
fn types_of_one_name_do_not_overwrite_each_others_schema() {
    let doc: serde_json::Value = serde_json::from_str(&super::openapi::document_text()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let properties = |name: &str| -> Vec<String> {
        let mut p: Vec<String> = schemas[name]["properties"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        p.sort();
        p
    };
    assert_eq!(
        properties("Preview"),
        ["encoding", "size", "text", "truncated"]
    );
    assert_eq!(
        properties("FailingRecord"),
        ["at_ms", "origin", "reason", "record", "record_bytes"]
    );
}

/// The group list carries what the Groups page shows, the ETA included (one request a refresh).
#[tokio::test]
async fn the_group_list_carries_each_groups_eta() {
    let live = LiveState::new();
    live.set(cluster());
    let app = crate::kafka::api::router(live, Arc::new(pipescope_core::SystemClock));
    let (status, groups) = get(app, "/api/v1/kafka/clusters/demo/groups").await;
    assert_eq!(status, StatusCode::OK);
    let eta = |name: &str| {
        groups["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .unwrap_or_else(|| panic!("no group {name}: {groups}"))["catch_up"]
            .clone()
    };
    assert_eq!(
        eta("proc"),
        json!({"state": "falling_behind", "rates_over_s": 45.0, "rates_over_intervals": 9})
    );
    assert_eq!(eta("idle"), Value::Null);
}
