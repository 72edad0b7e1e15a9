//! The JSON API over the Kafka live state: `/api/v1/kafka/...`. Raw numbers and per-item errors;
//! a value that may be missing is `{"Ok": value}` or `{"Err": "why"}`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use super::state::{ClusterState, LiveState, TopicConfig};

pub fn router(live: LiveState) -> Router {
    Router::new()
        .route("/api/v1/kafka/clusters", get(clusters))
        .route("/api/v1/kafka/clusters/{cluster}", get(cluster))
        .route("/api/v1/kafka/clusters/{cluster}/brokers", get(brokers))
        .route("/api/v1/kafka/clusters/{cluster}/topics", get(topics))
        .route(
            "/api/v1/kafka/clusters/{cluster}/topics/{topic}",
            get(topic),
        )
        .route("/api/v1/kafka/clusters/{cluster}/groups", get(groups))
        .route(
            "/api/v1/kafka/clusters/{cluster}/groups/{group}",
            get(group),
        )
        .with_state(live)
}

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": what }))).into_response()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn with_cluster(
    live: &LiveState,
    name: &str,
    f: impl FnOnce(&ClusterState) -> Response,
) -> Response {
    match live.get(name) {
        Some(state) => f(&state),
        None => not_found(format!(
            "no Kafka cluster named {name:?} has been scraped (configured clusters: {})",
            live.all()
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[derive(Debug, Serialize)]
pub struct ClusterSummary<'a> {
    pub name: &'a str,
    pub cluster_id: Option<&'a str>,
    pub controller_id: Option<i32>,
    pub scraped_at_ms: u64,
    pub scrape_duration_ms: u64,
    /// Milliseconds since the latest scrape started.
    pub age_ms: u64,
    /// How old the numbers were at the latest scrape (0 unless no broker answered it);
    /// `null` when no scrape has reached the cluster yet.
    pub staleness_ms: Option<u64>,
    pub error: Option<&'a str>,
    pub brokers: usize,
    pub brokers_up: usize,
    pub topics: usize,
    pub partitions: usize,
    pub offline_partitions: usize,
    pub under_replicated_partitions: usize,
    pub groups: usize,
    pub group_list_errors: &'a [String],
}

fn summary(c: &ClusterState) -> ClusterSummary<'_> {
    let partitions = c.topics.iter().flat_map(|t| &t.partitions);
    ClusterSummary {
        name: &c.name,
        cluster_id: c.cluster_id.as_deref(),
        controller_id: c.controller_id,
        scraped_at_ms: c.scraped_at_ms,
        scrape_duration_ms: c.scrape_duration_ms,
        age_ms: now_ms().saturating_sub(c.scraped_at_ms),
        staleness_ms: (c.data_time_ms > 0).then(|| c.scraped_at_ms.saturating_sub(c.data_time_ms)),
        error: c.error.as_deref(),
        brokers: c.brokers.len(),
        brokers_up: c.brokers.iter().filter(|b| b.up).count(),
        topics: c.topics.len(),
        partitions: partitions.clone().count(),
        offline_partitions: partitions.clone().filter(|p| p.offline).count(),
        under_replicated_partitions: partitions.filter(|p| p.under_replicated).count(),
        groups: c.groups.len(),
        group_list_errors: &c.group_list_errors,
    }
}

async fn clusters(State(live): State<LiveState>) -> Response {
    let all = live.all();
    Json(all.iter().map(|c| summary(c)).collect::<Vec<_>>()).into_response()
}

async fn cluster(State(live): State<LiveState>, Path(name): Path<String>) -> Response {
    with_cluster(&live, &name, |c| Json(summary(c)).into_response())
}

async fn brokers(State(live): State<LiveState>, Path(name): Path<String>) -> Response {
    with_cluster(&live, &name, |c| Json(&c.brokers).into_response())
}

#[derive(Debug, Serialize)]
struct TopicSummary<'a> {
    name: &'a str,
    internal: bool,
    error: Option<&'a str>,
    config: &'a Result<TopicConfig, String>,
    partitions: usize,
    offline_partitions: usize,
    under_replicated_partitions: usize,
    /// Sum of the partitions' end offsets that are known.
    end_offset_sum: i64,
    /// Partitions whose offsets are unknown this scrape.
    partitions_with_errors: usize,
}

async fn topics(State(live): State<LiveState>, Path(name): Path<String>) -> Response {
    with_cluster(&live, &name, |c| {
        let list: Vec<TopicSummary> = c
            .topics
            .iter()
            .map(|t| TopicSummary {
                name: &t.name,
                internal: t.internal,
                error: t.error.as_deref(),
                config: &t.config,
                partitions: t.partitions.len(),
                offline_partitions: t.partitions.iter().filter(|p| p.offline).count(),
                under_replicated_partitions: t
                    .partitions
                    .iter()
                    .filter(|p| p.under_replicated)
                    .count(),
                end_offset_sum: t
                    .partitions
                    .iter()
                    .filter_map(|p| p.latest.as_ref().ok())
                    .sum(),
                partitions_with_errors: t
                    .partitions
                    .iter()
                    .filter(|p| p.latest.is_err() || p.earliest.is_err())
                    .count(),
            })
            .collect();
        Json(list).into_response()
    })
}

async fn topic(
    State(live): State<LiveState>,
    Path((name, topic)): Path<(String, String)>,
) -> Response {
    with_cluster(&live, &name, |c| match c.topic(&topic) {
        Some(t) => Json(t).into_response(),
        None => not_found(format!("cluster {name:?} has no topic {topic:?}")),
    })
}

#[derive(Debug, Serialize)]
struct GroupSummary<'a> {
    name: &'a str,
    coordinator: Option<i32>,
    protocol_type: &'a str,
    state: Option<&'a str>,
    members: Option<usize>,
    /// Partitions with a committed offset.
    committed_partitions: Option<usize>,
    /// Why the group could not be described / its offsets read, if so.
    description_error: Option<&'a str>,
    offsets_error: Option<&'a str>,
}

async fn groups(State(live): State<LiveState>, Path(name): Path<String>) -> Response {
    with_cluster(&live, &name, |c| {
        let list: Vec<GroupSummary> = c
            .groups
            .iter()
            .map(|g| GroupSummary {
                name: &g.name,
                coordinator: g.coordinator.as_ref().ok().copied(),
                protocol_type: &g.protocol_type,
                state: g.description.as_ref().ok().map(|d| d.state.as_str()),
                members: g.description.as_ref().ok().map(|d| d.members.len()),
                committed_partitions: g.offsets.as_ref().ok().map(Vec::len),
                description_error: g.description.as_ref().err().map(String::as_str),
                offsets_error: g.offsets.as_ref().err().map(String::as_str),
            })
            .collect();
        Json(list).into_response()
    })
}

async fn group(
    State(live): State<LiveState>,
    Path((name, group)): Path<(String, String)>,
) -> Response {
    with_cluster(&live, &name, |c| match c.group(&group) {
        Some(g) => Json(g).into_response(),
        None => not_found(format!("cluster {name:?} has no group {group:?}")),
    })
}
