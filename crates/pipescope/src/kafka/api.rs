//! The JSON API over the Kafka live state: `/api/v1/kafka/...`. Raw numbers and per-item errors
//! (a value that may be missing is the value, or `{"error": "why"}`), with the analyzer's rates,
//! lag and verdicts beside them (`null` until a scrape has been analysed).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use pipescope_core::kafka::analyzer::{GroupView, PartitionView, RateNote, TopicView};
use pipescope_core::kafka::lag::{CatchUp, LagSecondsBasis};
use pipescope_core::kafka::{KafkaView, Verdict};

use super::state::{
    ClusterState, GroupState, LiveState, PartitionState, ScrapeStage, TopicConfig, TopicState,
};

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

#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    /// When each kind of request of the latest scrape ran: where its time went.
    pub scrape_stages: &'a [ScrapeStage],
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
        scrape_stages: &c.stages,
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopicSummary<'a> {
    name: &'a str,
    internal: bool,
    error: Option<&'a str>,
    /// The topic configs that matter, or `{"error": "why"}`.
    #[serde(serialize_with = "super::state::item::serialize_ref")]
    #[schema(value_type = Object)]
    config: &'a Result<TopicConfig, String>,
    partitions: usize,
    offline_partitions: usize,
    under_replicated_partitions: usize,
    /// Sum of the partitions' end offsets that are known.
    end_offset_sum: i64,
    /// Partitions whose offsets are unknown this scrape.
    partitions_with_errors: usize,
    #[serde(flatten)]
    rate: TopicRate,
}

/// A topic's produce rate: the sum over the partitions whose rate is known this scrape.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
struct TopicRate {
    messages_per_second: Option<f64>,
    messages_per_minute: Option<f64>,
    /// Partitions whose rate is known (and summed); fewer than `partitions` right after start,
    /// or when some partition's offsets failed.
    partitions_with_rate: usize,
}

impl TopicRate {
    fn of(view: Option<&TopicView>) -> Self {
        view.map_or_else(Self::default, |v| Self {
            messages_per_second: v.messages_per_second,
            messages_per_minute: v.messages_per_minute,
            partitions_with_rate: v.partitions_with_rate,
        })
    }
}

fn topic_view<'a>(view: Option<&'a KafkaView>, topic: &str) -> Option<&'a TopicView> {
    view?.topics.iter().find(|t| t.topic == topic)
}

fn partition_view<'a>(
    view: Option<&'a KafkaView>,
    topic: &str,
    partition: i32,
) -> Option<&'a PartitionView> {
    view?
        .partitions
        .iter()
        .find(|p| p.topic == topic && p.partition == partition)
}

fn group_view<'a>(view: Option<&'a KafkaView>, group: &str) -> Option<&'a GroupView> {
    view?.groups.iter().find(|g| g.group == group)
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
                rate: TopicRate::of(topic_view(c.view.as_deref(), &t.name)),
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
        Some(t) => Json(topic_detail(t, c.view.as_deref())).into_response(),
        None => not_found(format!("cluster {name:?} has no topic {topic:?}")),
    })
}

/// A topic with its partitions' offsets, replicas, producers and rates.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopicDetail<'a> {
    name: &'a str,
    /// The topic's id (a topic deleted and made again under the same name gets a new one).
    id: Option<&'a str>,
    internal: bool,
    error: Option<&'a str>,
    #[serde(serialize_with = "super::state::item::serialize_ref")]
    #[schema(schema_with = super::state::item::schema::<TopicConfig>)]
    config: &'a Result<TopicConfig, String>,
    partitions: Vec<PartitionDetail<'a>>,
    #[serde(flatten)]
    rate: TopicRate,
}

/// A partition with its produce rate.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PartitionDetail<'a> {
    #[serde(flatten)]
    partition: &'a PartitionState,
    messages_per_second: Option<f64>,
    messages_per_minute: Option<f64>,
    /// Why the rate is missing or how it was taken (`measured`, `first_reading`, `reset`...).
    rate_note: Option<RateNote>,
}

fn topic_detail<'a>(t: &'a TopicState, view: Option<&'a KafkaView>) -> TopicDetail<'a> {
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let v = partition_view(view, &t.name, p.partition);
            PartitionDetail {
                partition: p,
                messages_per_second: v.and_then(|v| v.messages_per_second),
                messages_per_minute: v.and_then(|v| v.messages_per_minute),
                rate_note: v.map(|v| v.rate_note),
            }
        })
        .collect();
    TopicDetail {
        name: &t.name,
        id: t.id.as_deref(),
        internal: t.internal,
        error: t.error.as_deref(),
        config: &t.config,
        partitions,
        rate: TopicRate::of(topic_view(view, &t.name)),
    }
}

/// A group's lag summary: sums and maxima over its partitions, and its worst partition's verdict.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
struct GroupLag {
    /// `null` until the group has been analysed.
    verdict: Option<Verdict>,
    /// Sum of the known lags.
    lag_offsets: Option<i64>,
    /// Partitions whose lag is unknown (not in `lag_offsets`).
    partitions_lag_unknown: usize,
    /// Of those, partitions whose committed offset is beyond the end offset.
    partitions_beyond_end: usize,
    max_lag_seconds: Option<f64>,
    max_lag_seconds_estimated: bool,
}

impl GroupLag {
    fn of(view: Option<&GroupView>) -> Self {
        view.map_or_else(Self::default, |g| Self {
            verdict: Some(g.verdict),
            lag_offsets: Some(g.lag_offsets),
            partitions_lag_unknown: g.partitions_lag_unknown,
            partitions_beyond_end: g.partitions_beyond_end,
            max_lag_seconds: g.max_lag_seconds,
            max_lag_seconds_estimated: g.max_lag_seconds_estimated,
        })
    }
}

/// One partition of a group, as the analyzer sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct GroupPartitionLag<'a> {
    topic: &'a str,
    partition: i32,
    committed: i64,
    /// The end offset the lag was taken against.
    latest: Option<i64>,
    /// `null` when unknown; `lag_note` then says why.
    lag_offsets: Option<i64>,
    /// e.g. "committed offset beyond end offset"; `null` when measured.
    lag_note: Option<&'static str>,
    lag_seconds: Option<f64>,
    /// `exact` (timestamp of the record at the committed offset), `estimated` (when the log end
    /// passed the committed offset, interpolated) or `unknown`.
    lag_seconds_basis: LagSecondsBasis,
    /// `{"state": "caught_up" | "in_seconds" (with `seconds`) | "falling_behind" | "unknown"}`.
    catch_up: CatchUp,
    verdict: Verdict,
    window_observations: usize,
    window_complete: bool,
    last_commit_seen_ms: Option<u64>,
    /// `false` when this scrape did not report the group on the partition (last known numbers).
    reported_this_scrape: bool,
}

/// A group with its members, committed offsets, and lag per topic and per partition.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupDetail<'a> {
    #[serde(flatten)]
    group: &'a GroupState,
    #[serde(flatten)]
    lag: GroupLag,
    /// Per topic: lag summed over its partitions, the largest lag in seconds, worst verdict.
    topics: Vec<GroupTopicLag<'a>>,
    /// Per partition, sorted by topic and partition.
    partitions: Vec<GroupPartitionLag<'a>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct GroupTopicLag<'a> {
    topic: &'a str,
    /// Sum of the known lags.
    lag_offsets: i64,
    partitions_lag_unknown: usize,
    max_lag_seconds: Option<f64>,
    verdict: Verdict,
}

fn group_detail<'a>(g: &'a GroupState, view: Option<&'a GroupView>) -> GroupDetail<'a> {
    let partitions = view
        .into_iter()
        .flat_map(|v| &v.topics)
        .flat_map(|t| {
            t.partitions.iter().map(move |p| GroupPartitionLag {
                topic: &t.topic,
                partition: p.partition,
                committed: p.committed,
                latest: p.latest,
                lag_offsets: p.lag.offsets,
                lag_note: p.lag.note.message(),
                lag_seconds: p.lag_seconds.seconds,
                lag_seconds_basis: p.lag_seconds.basis,
                catch_up: p.catch_up,
                verdict: p.verdict,
                window_observations: p.window_observations,
                window_complete: p.window_complete,
                last_commit_seen_ms: p.last_commit_seen_ms,
                reported_this_scrape: p.reported_this_scrape,
            })
        })
        .collect();
    let topics = view
        .into_iter()
        .flat_map(|v| &v.topics)
        .map(|t| GroupTopicLag {
            topic: &t.topic,
            lag_offsets: t.lag_offsets,
            partitions_lag_unknown: t.partitions_lag_unknown,
            max_lag_seconds: t.max_lag_seconds,
            verdict: t.verdict,
        })
        .collect();
    GroupDetail {
        group: g,
        lag: GroupLag::of(view),
        topics,
        partitions,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupSummary<'a> {
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
    #[serde(flatten)]
    lag: GroupLag,
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
                lag: GroupLag::of(group_view(c.view.as_deref(), &g.name)),
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
        Some(g) => Json(group_detail(g, group_view(c.view.as_deref(), &group))).into_response(),
        None => not_found(format!("cluster {name:?} has no group {group:?}")),
    })
}
