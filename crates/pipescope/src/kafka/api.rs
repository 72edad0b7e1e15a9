//! The JSON API over the Kafka live state: `/api/v1/kafka/...`. Raw numbers and per-item errors
//! (a value that may be missing is the value, or `{"error": "why"}`), with the analyzer's rates,
//! lag and verdicts beside them (`null` until a scrape has been analysed).

use std::sync::Arc;

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use pipescope_core::kafka::Verdict;
use pipescope_core::kafka::analyzer::{GroupSkew, GroupView, RateNote, TopicView};
use pipescope_core::kafka::lag::{CatchUp, LagSecondsBasis};
use pipescope_core::paging::{Order, Page, PageQuery, SortValue};
use pipescope_core::windows::WindowCounts;
use pipescope_core::{Clock, EpochMillis};

use super::api_index::{ClusterIndex, Indexes};
use super::state::{
    ClusterState, GroupState, KafkaBrokerState, LiveState, PartitionState, ScrapeStage,
    TopicConfig, TopicState,
};
use crate::web::{ApiError, ErrorBody};

/// What the handlers read: the live state, and the monitor's clock (for the age of a scrape).
#[derive(Clone)]
struct KafkaApi {
    live: LiveState,
    clock: Arc<dyn Clock>,
    indexes: Indexes,
}

impl KafkaApi {
    /// The cluster named `name` with its lists' index, or 404.
    fn index(&self, name: &str) -> Result<Arc<ClusterIndex>, ApiError> {
        Ok(self.indexes.of(scraped(&self.live, name)?))
    }
}

impl FromRef<KafkaApi> for LiveState {
    fn from_ref(api: &KafkaApi) -> Self {
        api.live.clone()
    }
}

pub fn router(live: LiveState, clock: Arc<dyn Clock>) -> Router {
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
        .with_state(KafkaApi {
            indexes: Indexes::following(live.clone()),
            live,
            clock,
        })
}

/// The cluster named `name`, or 404 naming the clusters there are.
fn scraped(live: &LiveState, name: &str) -> Result<Arc<ClusterState>, ApiError> {
    live.get(name).ok_or_else(|| {
        ApiError::not_found(format!(
            "no Kafka cluster named {name:?} has been scraped (configured clusters: {})",
            live.all()
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClusterSummary {
    pub name: String,
    pub cluster_id: Option<String>,
    pub controller_id: Option<i32>,
    pub scraped_at_ms: u64,
    pub scrape_duration_ms: u64,
    /// Milliseconds since the latest scrape started.
    pub age_ms: u64,
    /// How old the numbers were at the latest scrape (0 unless no broker answered it);
    /// `null` when no scrape has reached the cluster yet.
    pub staleness_ms: Option<u64>,
    pub error: Option<String>,
    pub brokers: usize,
    pub brokers_up: usize,
    pub topics: usize,
    pub partitions: usize,
    pub offline_partitions: usize,
    pub under_replicated_partitions: usize,
    pub groups: usize,
    /// Groups per verdict (`unknown`: not analysed yet), for an overview that does not list
    /// 10,000 groups.
    pub group_verdicts: std::collections::BTreeMap<String, usize>,
    /// Messages into all topics over the last minute (summed as the topics' `rates["1m"]`);
    /// `null` before the first analysed scrape.
    pub messages_last_minute: Option<pipescope_core::windows::WindowCount>,
    pub group_list_errors: Vec<String>,
    /// When each kind of request of the latest scrape ran: where its time went.
    pub scrape_stages: Vec<ScrapeStage>,
}

pub(super) fn summary(c: &ClusterState, now: EpochMillis) -> ClusterSummary {
    let partitions = c.topics.iter().flat_map(|t| &t.partitions);
    ClusterSummary {
        name: c.name.clone(),
        cluster_id: c.cluster_id.clone(),
        controller_id: c.controller_id,
        scraped_at_ms: c.scraped_at_ms,
        scrape_duration_ms: c.scrape_duration_ms,
        age_ms: now.saturating_sub(c.scraped_at_ms),
        staleness_ms: (c.data_time_ms > 0).then(|| c.scraped_at_ms.saturating_sub(c.data_time_ms)),
        error: c.error.clone(),
        brokers: c.brokers.len(),
        brokers_up: c.brokers.iter().filter(|b| b.up).count(),
        topics: c.topics.len(),
        partitions: partitions.clone().count(),
        offline_partitions: partitions.clone().filter(|p| p.offline).count(),
        under_replicated_partitions: partitions.filter(|p| p.under_replicated).count(),
        groups: c.groups.len(),
        group_verdicts: group_verdicts(c),
        messages_last_minute: c.view.as_deref().and_then(|v| {
            pipescope_core::windows::WindowCount::sum(
                v.topics
                    .iter()
                    .filter_map(|t| t.rates.as_ref().map(|r| r.one_minute)),
            )
        }),
        group_list_errors: c.group_list_errors.clone(),
        scrape_stages: c.stages.clone(),
    }
}

fn group_verdicts(c: &ClusterState) -> std::collections::BTreeMap<String, usize> {
    let analysed: HashMap<&str, Verdict> = c
        .view
        .as_deref()
        .map(|v| {
            v.groups
                .iter()
                .map(|g| (g.group.as_str(), g.verdict))
                .collect()
        })
        .unwrap_or_default();
    let mut counts = std::collections::BTreeMap::new();
    for g in &c.groups {
        let verdict = analysed
            .get(g.name.as_str())
            .map_or("unknown", |v| v.as_str());
        *counts.entry(verdict.to_string()).or_insert(0) += 1;
    }
    counts
}

#[utoipa::path(
    get,
    path = "/api/v1/kafka/clusters",
    tag = "kafka",
    summary = "Every scraped cluster's summary",
    responses((status = 200, description = "OK", body = [ClusterSummary]))
)]
async fn clusters(State(api): State<KafkaApi>) -> Json<Vec<ClusterSummary>> {
    let now = api.clock.now_millis();
    Json(
        api.live
            .all()
            .into_iter()
            .map(|c| aged(&api.indexes.of(c), now))
            .collect(),
    )
}

/// The summary computed once per scrape, with its age at `now`.
fn aged(index: &ClusterIndex, now: EpochMillis) -> ClusterSummary {
    ClusterSummary {
        age_ms: now.saturating_sub(index.summary.scraped_at_ms),
        ..index.summary.clone()
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/kafka/clusters/{cluster}",
    tag = "kafka",
    summary = "One cluster's summary",
    params(("cluster" = String, Path)),
    responses(
        (status = 200, description = "OK", body = ClusterSummary),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    )
)]
async fn cluster(
    State(api): State<KafkaApi>,
    Path(name): Path<String>,
) -> Result<Json<ClusterSummary>, ApiError> {
    let index = api.index(&name)?;
    Ok(Json(aged(&index, api.clock.now_millis())))
}

/// What a 404 of these endpoints means.
const NOT_FOUND: &str = "no such cluster, topic or group";

#[utoipa::path(
    get,
    path = "/api/v1/kafka/clusters/{cluster}/brokers",
    operation_id = "kafka_brokers",
    tag = "kafka",
    summary = "Brokers, up or down with why",
    params(("cluster" = String, Path)),
    responses(
        (status = 200, description = "OK", body = [KafkaBrokerState]),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    )
)]
async fn brokers(
    State(live): State<LiveState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<KafkaBrokerState>>, ApiError> {
    Ok(Json(scraped(&live, &name)?.brokers.clone()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopicSummary {
    name: String,
    internal: bool,
    error: Option<String>,
    /// The topic configs that matter, or `{"error": "why"}`.
    #[serde(serialize_with = "super::state::item::serialize")]
    #[schema(value_type = Object)]
    config: Result<TopicConfig, String>,
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

/// A topic's produce rates: sums over the partitions whose rates are known this scrape.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
struct TopicRate {
    /// Records produced over the last 1, 5 and 15 minutes as of the latest scrape, each with the
    /// seconds it covers and a per-minute figure once the whole window is covered; `null` until
    /// a scrape has been analysed.
    rates: Option<WindowCounts>,
    /// Records per second over the last scrape interval (for a live chart; bursty producers
    /// make it jump from scrape to scrape); `null` while no broker answers.
    instant_messages_per_second: Option<f64>,
    /// The interval that rate is over, in seconds.
    instant_interval_s: Option<f64>,
    /// Partitions whose rates are known (and summed); fewer than `partitions` when some
    /// partition's offsets failed.
    partitions_with_rate: usize,
}

impl TopicRate {
    fn of(view: Option<&TopicView>) -> Self {
        view.map_or_else(Self::default, |v| Self {
            rates: v.rates,
            instant_messages_per_second: v.instant_messages_per_second,
            instant_interval_s: v.instant_interval_s,
            partitions_with_rate: v.partitions_with_rate,
        })
    }
}

/// Sort keys of the topic list, the default first.
pub(super) const TOPIC_SORTS: [&str; 6] = [
    "name",
    "rate",
    "partitions",
    "end_offsets",
    "under_replicated",
    "offline",
];

/// A page of a list: `total` items after the filter, `items` from `offset`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListPage<T> {
    /// Items after the filter, all pages together.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub sort: String,
    #[schema(value_type = String)]
    pub order: Order,
    pub items: Vec<T>,
}

impl<T> From<Page<T>> for ListPage<T> {
    fn from(page: Page<T>) -> Self {
        Self {
            total: page.total,
            offset: page.offset,
            limit: page.limit,
            sort: page.sort,
            order: page.order,
            items: page.items,
        }
    }
}

/// A list's query string, read with a clear error.
fn list_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|e| {
        ApiError::bad_request(format!("{e}: see /api/openapi.json for the parameters"))
    })
}

/// The topic list's parameters (docs/portal-api.md).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TopicsQuery {
    /// First item of the page (0).
    offset: Option<usize>,
    /// Items per page (1,000; at most 10,000).
    limit: Option<usize>,
    /// name (default), rate (messages in the last minute), partitions, end_offsets,
    /// under_replicated, offline.
    sort: Option<String>,
    /// asc (default) or desc; unknown values last either way.
    #[param(value_type = Option<String>)]
    order: Option<Order>,
    /// Topics whose name contains this, ignoring case.
    q: Option<String>,
    /// false: leave out internal topics (`__consumer_offsets`, ...).
    internal: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/api/v1/kafka/clusters/{cluster}/topics",
    tag = "kafka",
    summary = "Topics with partition counts, end offsets and rates: a page, sorted and filtered on the server",
    params(("cluster" = String, Path), TopicsQuery),
    responses(
        (status = 200, description = "OK", body = ListPage<TopicSummary>),
        (status = 400, description = "A parameter is wrong: the error says which", body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    )
)]
async fn topics(
    State(api): State<KafkaApi>,
    Path(name): Path<String>,
    query: Result<Query<TopicsQuery>, QueryRejection>,
) -> Result<Json<ListPage<TopicSummary>>, ApiError> {
    let query = list_query(query)?;
    let checked = PageQuery {
        offset: query.offset,
        limit: query.limit,
        sort: query.sort,
        order: query.order,
        q: query.q,
    }
    .check(&TOPIC_SORTS)
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let index = api.index(&name)?;
    let (total, positions) = index.topic_page(&checked, query.internal);
    let items = positions
        .into_iter()
        .map(|i| topic_summary(&index.state.topics[i], index.topic_view(i)))
        .collect();
    Ok(Json(checked.page_with(total, items).into()))
}

/// A topic's value for a sort key of [`TOPIC_SORTS`].
pub(super) fn topic_sort_value(t: &TopicState, view: Option<&TopicView>, key: &str) -> SortValue {
    match key {
        "rate" => SortValue::Number(
            view.and_then(|v| v.rates.as_ref())
                .and_then(|r| r.one_minute.per_minute),
        ),
        "partitions" => SortValue::Number(Some(t.partitions.len() as f64)),
        "end_offsets" => SortValue::Number(Some(end_offset_sum(t) as f64)),
        "under_replicated" => SortValue::Number(Some(
            t.partitions.iter().filter(|p| p.under_replicated).count() as f64,
        )),
        "offline" => SortValue::Number(Some(
            t.partitions.iter().filter(|p| p.offline).count() as f64
        )),
        _ => SortValue::Text(t.name.clone()),
    }
}

fn end_offset_sum(t: &TopicState) -> i64 {
    t.partitions
        .iter()
        .filter_map(|p| p.latest.as_ref().ok())
        .sum()
}

fn topic_summary(t: &TopicState, view: Option<&TopicView>) -> TopicSummary {
    TopicSummary {
        name: t.name.clone(),
        internal: t.internal,
        error: t.error.clone(),
        config: t.config.clone(),
        partitions: t.partitions.len(),
        offline_partitions: t.partitions.iter().filter(|p| p.offline).count(),
        under_replicated_partitions: t.partitions.iter().filter(|p| p.under_replicated).count(),
        end_offset_sum: end_offset_sum(t),
        partitions_with_errors: t
            .partitions
            .iter()
            .filter(|p| p.latest.is_err() || p.earliest.is_err())
            .count(),
        rate: TopicRate::of(view),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/kafka/clusters/{cluster}/topics/{topic}",
    tag = "kafka",
    summary = "One topic: config and partitions (leader, ISR, offsets, producers, rate)",
    params(("cluster" = String, Path), ("topic" = String, Path)),
    responses(
        (status = 200, description = "OK", body = TopicDetail),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    )
)]
async fn topic(
    State(api): State<KafkaApi>,
    Path((name, topic)): Path<(String, String)>,
) -> Result<Json<TopicDetail>, ApiError> {
    let index = api.index(&name)?;
    let (at, t) = index
        .topic(&topic)
        .ok_or_else(|| ApiError::not_found(format!("cluster {name:?} has no topic {topic:?}")))?;
    Ok(Json(topic_detail(&index, at, t)))
}

/// A topic with its partitions' offsets, replicas, producers and rates.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopicDetail {
    name: String,
    /// The topic's id (a topic deleted and made again under the same name gets a new one).
    id: Option<String>,
    internal: bool,
    error: Option<String>,
    #[serde(serialize_with = "super::state::item::serialize")]
    #[schema(schema_with = super::state::item::schema::<TopicConfig>)]
    config: Result<TopicConfig, String>,
    partitions: Vec<PartitionDetail>,
    #[serde(flatten)]
    rate: TopicRate,
}

/// A partition with its produce rate.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PartitionDetail {
    #[serde(flatten)]
    partition: PartitionState,
    /// Records produced over the last 1, 5 and 15 minutes as of the latest scrape (see the
    /// topic's); `null` when this scrape read no usable offsets.
    rates: Option<WindowCounts>,
    /// Records per second over the last scrape interval (live chart only); `null` while no
    /// broker answers.
    instant_messages_per_second: Option<f64>,
    /// The interval that rate is over, in seconds.
    instant_interval_s: Option<f64>,
    /// Why the rate is missing or how it was taken (`measured`, `first_reading`, `reset`...).
    rate_note: Option<RateNote>,
}

fn topic_detail(index: &ClusterIndex, at: usize, t: &TopicState) -> TopicDetail {
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let v = index.partition_view(at, p.partition);
            PartitionDetail {
                partition: p.clone(),
                rates: v.and_then(|v| v.rates),
                instant_messages_per_second: v.and_then(|v| v.instant_messages_per_second),
                instant_interval_s: v.and_then(|v| v.instant_interval_s),
                rate_note: v.map(|v| v.rate_note),
            }
        })
        .collect();
    TopicDetail {
        name: t.name.clone(),
        id: t.id.clone(),
        internal: t.internal,
        error: t.error.clone(),
        config: t.config.clone(),
        partitions,
        rate: TopicRate::of(index.topic_view(at)),
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
    /// When the group will have caught up (its ETA), from its partitions' estimates: falling
    /// behind when one partition is, caught up when all are, else the latest partition's time
    /// (`unknown` when no partition's is known); `null` when the group has no analysed partition.
    /// The partition's answer comes whole, with the span of its rates (`rates_over_s`).
    catch_up: Option<CatchUp>,
    /// Records deleted (retention, DeleteRecords) before the group read them, summed over its
    /// partitions since the monitor started watching them; `null` until analysed.
    lost_to_retention: Option<u64>,
    /// Why the verdict is LOST (the first losing partition's reason); `null` otherwise.
    verdict_reason: Option<String>,
    /// Processing skew: the worst partition's lag against the group's median partition lag, over
    /// the partitions whose lag this scrape reported; `null` when none is known.
    lag_skew: Option<GroupSkew>,
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
            catch_up: group_catch_up(
                g.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.catch_up),
            ),
            lost_to_retention: Some(g.lost_to_retention),
            verdict_reason: g.verdict_reason.clone(),
            lag_skew: g.lag_skew(),
        })
    }
}

/// A group's catch-up from its partitions' (see [`GroupLag::catch_up`]): the chosen partition's
/// answer whole, with the span of the rates it was taken from.
fn group_catch_up(partitions: impl Iterator<Item = CatchUp>) -> Option<CatchUp> {
    let mut any = false;
    let mut all_caught_up = true;
    let mut latest: Option<CatchUp> = None;
    for c in partitions {
        any = true;
        match c {
            CatchUp::FallingBehind { .. } => return Some(c),
            CatchUp::CaughtUp => {}
            CatchUp::InSeconds { seconds, .. } => {
                all_caught_up = false;
                let later = match latest {
                    Some(CatchUp::InSeconds { seconds: l, .. }) => seconds > l,
                    _ => true,
                };
                if later {
                    latest = Some(c);
                }
            }
            CatchUp::Unknown => all_caught_up = false,
        }
    }
    if !any {
        return None;
    }
    Some(if all_caught_up {
        CatchUp::CaughtUp
    } else {
        latest.unwrap_or(CatchUp::Unknown)
    })
}

/// One partition of a group, as the analyzer sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct GroupPartitionLag {
    topic: String,
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
    /// passed the committed offset, interpolated between two end-offset readings) or `unknown`
    /// (no timestamp, and the readings do not reach back to the committed offset).
    lag_seconds_basis: LagSecondsBasis,
    /// For an estimate: seconds between the two end-offset readings it was interpolated between
    /// (the estimate is off by at most that); `null` otherwise.
    lag_seconds_interpolated_over_s: Option<f64>,
    /// `{"state": "caught_up" | "in_seconds" (with `seconds`) | "falling_behind" | "unknown"}`;
    /// `in_seconds` and `falling_behind` carry `rates_over_s` and `rates_over_intervals`, the
    /// span (and scrape intervals) of the consume and produce rates they were taken from.
    catch_up: CatchUp,
    verdict: Verdict,
    window_observations: usize,
    window_complete: bool,
    last_commit_seen_ms: Option<u64>,
    /// `false` when this scrape did not report the group on the partition (last known numbers).
    reported_this_scrape: bool,
    /// Records deleted (retention, DeleteRecords) before the group read them: the committed
    /// offset was found below the log start. Since the monitor started watching.
    lost_to_retention: u64,
    /// Why the verdict is LOST; `null` otherwise.
    verdict_reason: Option<String>,
}

/// A group with its members, committed offsets, and lag per topic and per partition.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupDetail {
    #[serde(flatten)]
    group: GroupState,
    #[serde(flatten)]
    lag: GroupLag,
    /// Per topic: lag summed over its partitions, the largest lag in seconds, worst verdict.
    topics: Vec<GroupTopicLag>,
    /// Per partition, sorted by topic and partition.
    partitions: Vec<GroupPartitionLag>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct GroupTopicLag {
    topic: String,
    /// Sum of the known lags.
    lag_offsets: i64,
    partitions_lag_unknown: usize,
    max_lag_seconds: Option<f64>,
    verdict: Verdict,
    /// Records deleted before the group read them, over the topic's partitions.
    lost_to_retention: u64,
}

fn group_detail(g: &GroupState, view: Option<&GroupView>) -> GroupDetail {
    let partitions = view
        .into_iter()
        .flat_map(|v| &v.topics)
        .flat_map(|t| {
            t.partitions.iter().map(move |p| GroupPartitionLag {
                topic: t.topic.clone(),
                partition: p.partition,
                committed: p.committed,
                latest: p.latest,
                lag_offsets: p.lag.offsets,
                lag_note: p.lag.note.message(),
                lag_seconds: p.lag_seconds.seconds,
                lag_seconds_basis: p.lag_seconds.basis,
                lag_seconds_interpolated_over_s: p.lag_seconds.interpolated_over_s,
                catch_up: p.catch_up,
                verdict: p.verdict,
                window_observations: p.window_observations as usize,
                window_complete: p.window_complete,
                last_commit_seen_ms: p.last_commit_seen_ms,
                reported_this_scrape: p.reported_this_scrape,
                lost_to_retention: p.lost_to_retention,
                verdict_reason: p.verdict_reason.as_deref().map(String::from),
            })
        })
        .collect();
    let topics = view
        .into_iter()
        .flat_map(|v| &v.topics)
        .map(|t| GroupTopicLag {
            topic: t.topic.clone(),
            lag_offsets: t.lag_offsets,
            partitions_lag_unknown: t.partitions_lag_unknown,
            max_lag_seconds: t.max_lag_seconds,
            verdict: t.verdict,
            lost_to_retention: t.lost_to_retention,
        })
        .collect();
    GroupDetail {
        group: g.clone(),
        lag: GroupLag::of(view),
        topics,
        partitions,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupSummary {
    name: String,
    coordinator: Option<i32>,
    protocol_type: String,
    state: Option<String>,
    members: Option<usize>,
    /// Partitions with a committed offset.
    committed_partitions: Option<usize>,
    /// Why the group could not be described / its offsets read, if so.
    description_error: Option<String>,
    offsets_error: Option<String>,
    #[serde(flatten)]
    lag: GroupLag,
}

/// Sort keys of the group list, the default first.
pub(super) const GROUP_SORTS: [&str; 6] =
    ["name", "lag", "lag_seconds", "verdict", "members", "state"];

/// The group list's parameters (docs/portal-api.md).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct GroupsQuery {
    /// First item of the page (0).
    offset: Option<usize>,
    /// Items per page (1,000; at most 10,000).
    limit: Option<usize>,
    /// name (default), lag (offsets), lag_seconds (the largest), verdict (OK, WARN, STOPPED,
    /// STALLED, REWOUND, LOST in that order), members, state.
    sort: Option<String>,
    /// asc (default) or desc; unknown values last either way.
    #[param(value_type = Option<String>)]
    order: Option<Order>,
    /// Groups whose name contains this, ignoring case.
    q: Option<String>,
    /// Only groups with one of these verdicts, comma-separated (`STALLED,STOPPED`).
    verdict: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/kafka/clusters/{cluster}/groups",
    tag = "kafka",
    summary = "Consumer groups: state, members, lag, ETA and verdict: a page, sorted and filtered on the server",
    params(("cluster" = String, Path), GroupsQuery),
    responses(
        (status = 200, description = "OK", body = ListPage<GroupSummary>),
        (status = 400, description = "A parameter is wrong: the error says which", body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    )
)]
async fn groups(
    State(api): State<KafkaApi>,
    Path(name): Path<String>,
    query: Result<Query<GroupsQuery>, QueryRejection>,
) -> Result<Json<ListPage<GroupSummary>>, ApiError> {
    let query = list_query(query)?;
    let checked = PageQuery {
        offset: query.offset,
        limit: query.limit,
        sort: query.sort,
        order: query.order,
        q: query.q,
    }
    .check(&GROUP_SORTS)
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let verdicts: Option<Vec<Verdict>> = query
        .verdict
        .as_deref()
        .map(|list| {
            list.split(',')
                .filter(|v| !v.trim().is_empty())
                .map(|v| {
                    Verdict::parse(v.trim()).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "verdict={v:?}: use OK, WARN, STOPPED, STALLED, REWOUND or LOST"
                        ))
                    })
                })
                .collect()
        })
        .transpose()?;
    let index = api.index(&name)?;
    let (total, positions) = index.group_page(&checked, verdicts.as_deref());
    let items = positions
        .into_iter()
        .map(|i| {
            let g = &index.state.groups[i];
            GroupSummary {
                name: g.name.clone(),
                coordinator: g.coordinator.as_ref().ok().copied(),
                protocol_type: g.protocol_type.clone(),
                state: g.description.as_ref().ok().map(|d| d.state.clone()),
                members: g.description.as_ref().ok().map(|d| d.members.len()),
                committed_partitions: g.offsets.as_ref().ok().map(Vec::len),
                description_error: g.description.as_ref().err().cloned(),
                offsets_error: g.offsets.as_ref().err().cloned(),
                lag: GroupLag::of(index.group_view(i)),
            }
        })
        .collect();
    Ok(Json(checked.page_with(total, items).into()))
}

/// A group's value for a sort key of [`GROUP_SORTS`].
pub(super) fn group_sort_value(g: &GroupState, view: Option<&GroupView>, key: &str) -> SortValue {
    match key {
        "lag" => SortValue::Number(view.map(|v| v.lag_offsets as f64)),
        "lag_seconds" => SortValue::Number(view.and_then(|v| v.max_lag_seconds)),
        "verdict" => SortValue::Number(view.map(|v| f64::from(v.verdict.code()))),
        "members" => SortValue::Number(g.description.as_ref().ok().map(|d| d.members.len() as f64)),
        "state" => SortValue::Text(
            g.description
                .as_ref()
                .map(|d| d.state.clone())
                .unwrap_or_default(),
        ),
        _ => SortValue::Text(g.name.clone()),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/kafka/clusters/{cluster}/groups/{group}",
    tag = "kafka",
    summary = "One group: members with assignments, lag per topic and partition (offsets, seconds, ETA, verdict)",
    params(("cluster" = String, Path), ("group" = String, Path)),
    responses(
        (status = 200, description = "OK", body = GroupDetail),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    )
)]
async fn group(
    State(api): State<KafkaApi>,
    Path((name, group)): Path<(String, String)>,
) -> Result<Json<GroupDetail>, ApiError> {
    let index = api.index(&name)?;
    let (at, g) = index
        .group(&group)
        .ok_or_else(|| ApiError::not_found(format!("cluster {name:?} has no group {group:?}")))?;
    Ok(Json(group_detail(g, index.group_view(at))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_groups_catch_up_is_its_worst_partitions() {
        let in_s = |seconds: f64, rates_over_s: f64| CatchUp::InSeconds {
            seconds,
            rates_over_s,
            rates_over_intervals: 2,
        };
        let soon = in_s(5.0, 20.0);
        let later = in_s(60.0, 10.0);
        let behind = CatchUp::FallingBehind {
            rates_over_s: 45.0,
            rates_over_intervals: 9,
        };
        let of = |p: &[CatchUp]| group_catch_up(p.iter().copied());
        assert_eq!(of(&[]), None);
        assert_eq!(
            of(&[CatchUp::CaughtUp, CatchUp::CaughtUp]),
            Some(CatchUp::CaughtUp)
        );
        assert_eq!(of(&[soon, behind, later]), Some(behind));
        // The latest partition's answer, with the span of its own rates.
        assert_eq!(
            of(&[soon, CatchUp::CaughtUp, later, CatchUp::Unknown]),
            Some(later)
        );
        assert_eq!(
            of(&[CatchUp::CaughtUp, CatchUp::Unknown]),
            Some(CatchUp::Unknown)
        );
    }
}
