//! The query API the portal uses: `/api/v1/query`, `/api/v1/series`, `/api/v1/last`, `/api/v1/top`.
//!
//! Times (`from`, `to`) are epoch milliseconds, RFC 3339 (`2026-11-22T05:00:00Z`), `now` or
//! `now-1h`; `step` is a duration (`1m`, `30s`) or milliseconds. Label matchers go in `match` as
//! `{topic="orders",cluster=~"prod.*"}`. Bad parameters answer 400 with `{"error": "..."}`; a
//! query whose answer would break the store's bounds ([`super::QueryLimits`]) 422, one out of
//! time 503, as Prometheus answers them.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use pipescope_core::tsdb::{AggregateFn, Matcher, parse_selector, time_param};
use pipescope_core::{EpochMillis, Labels};
use serde::{Deserialize, Serialize};

use super::{SeriesValue, Store, StoreError};
use crate::web::{ApiError, ErrorBody};

/// Most points one series may have in one answer; ask for a larger step beyond that.
pub const MAX_POINTS: u64 = 11_000;
/// Points per series when no step is given.
const DEFAULT_POINTS: u64 = 300;

pub fn router(store: Store) -> Router {
    Router::new()
        .route("/api/v1/query", get(query))
        .route("/api/v1/series", get(series))
        .route("/api/v1/last", get(last))
        .route("/api/v1/top", get(top))
        .with_state(store)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // As Prometheus answers: 422 for a query too large to run, 503 for one out of time.
        let status = match &e {
            StoreError::TooManySeries { .. } | StoreError::TooManyPoints { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            StoreError::TimedOut { .. } | StoreError::ReadersBusy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => {
                tracing::error!("query API: {e}");
                return Self::internal(e.to_string());
            }
        };
        tracing::debug!("query API: {e}");
        Self::new(status, e.to_string())
    }
}

// How points are aggregated (`agg`), as the query string spells it (the document's
// enumeration of what `AggregateFn` parses).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
enum Agg {
    Avg,
    Min,
    Max,
    Last,
    Sum,
    Count,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeParams {
    metric: Option<String>,
    #[serde(rename = "match")]
    matchers: Option<String>,
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
    agg: Option<String>,
    n: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = StoreRange)]
pub struct RangeAnswer {
    metric: String,
    resolution: &'static str,
    from: EpochMillis,
    to: EpochMillis,
    step_ms: u64,
    series: Vec<RangeSeries>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RangeSeries {
    labels: BTreeMap<String, String>,
    /// `[time_ms, value]` pairs; a value that is not a number is `null`.
    #[schema(schema_with = points_schema)]
    points: Vec<(EpochMillis, f64)>,
}

/// The schema of `points`: pairs of an integer and a number or `null`.
fn points_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ArrayItems, ObjectBuilder, SchemaType, Type};
    let pair = ArrayBuilder::new()
        .prefix_items([
            ObjectBuilder::new().schema_type(Type::Integer).build(),
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
                .build(),
        ])
        .items(ArrayItems::False)
        .min_items(Some(2))
        .max_items(Some(2));
    ArrayBuilder::new().items(pair).build()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = StoreSeries)]
pub struct SeriesAnswer {
    series: Vec<SeriesEntry>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesEntry {
    metric: String,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = StoreValues)]
pub struct ValuesAnswer {
    metric: String,
    series: Vec<ValueEntry>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValueEntry {
    labels: BTreeMap<String, String>,
    time_ms: EpochMillis,
    value: f64,
}

fn label_map(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn values(metric: String, values: Vec<SeriesValue>) -> Json<ValuesAnswer> {
    Json(ValuesAnswer {
        metric,
        series: values
            .into_iter()
            .map(|v| ValueEntry {
                labels: label_map(&v.labels),
                time_ms: v.time_ms,
                value: v.value,
            })
            .collect(),
    })
}

impl RangeParams {
    fn metric(&self) -> Result<String, ApiError> {
        match self.metric.as_deref().map(str::trim) {
            None | Some("") => Err(ApiError::bad_request(
                "missing parameter metric: name the metric, e.g. metric=pipescope_kafka_group_lag_offsets (GET /api/v1/series lists them)",
            )),
            Some(m) => Ok(m.to_string()),
        }
    }

    fn matchers(&self) -> Result<Vec<Matcher>, ApiError> {
        parse_selector(self.matchers.as_deref().unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("parameter match: {e}")))
    }

    fn function(&self, default: AggregateFn) -> Result<AggregateFn, ApiError> {
        match &self.agg {
            None => Ok(default),
            Some(a) => a
                .parse()
                .map_err(|e| ApiError::bad_request(format!("parameter agg: {e}"))),
        }
    }

    /// `from` and `to`, defaulting to the last hour; `from` must come before `to`.
    fn range(&self, now: EpochMillis) -> Result<(EpochMillis, EpochMillis), ApiError> {
        let to = match &self.to {
            Some(t) => parse_time("to", t, now)?,
            None => now,
        };
        let from = match &self.from {
            Some(f) => parse_time("from", f, now)?,
            None => to.saturating_sub(3_600_000),
        };
        if from >= to {
            return Err(ApiError::bad_request(format!(
                "from ({from}) must be before to ({to})"
            )));
        }
        Ok((from, to))
    }
}

fn parse_time(name: &str, text: &str, now: EpochMillis) -> Result<EpochMillis, ApiError> {
    time_param::parse_time(name, text, now).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn parse_step(text: &str) -> Result<u64, ApiError> {
    time_param::parse_step(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("query failed ({e})")))?
        .map_err(ApiError::from)
}

#[utoipa::path(
    get,
    path = "/api/v1/query",
    tag = "store",
    summary = "Stored series of a metric over a time range, at a step",
    params(
        ("metric" = String, Query, description = "metric name", min_length = 1),
        ("match" = Option<String>, Query, description = "label matchers, e.g. {topic=\"orders\",cluster=~\"prod.*\"}"),
        ("from" = Option<String>, Query, description = "epoch ms, RFC 3339, now or now-1h (default now-1h)", min_length = 1),
        ("to" = Option<String>, Query, description = "epoch ms, RFC 3339 or now (default now)", min_length = 1),
        ("step" = Option<String>, Query, description = "a duration (1m, 30s) or milliseconds", min_length = 1),
        ("agg" = inline(Option<Agg>), Query, description = "how points are aggregated"),
    ),
    responses(
        (status = 200, description = "OK", body = RangeAnswer),
        (status = 400, description = "a parameter is wrong", body = ErrorBody),
        (status = 422, description = "the answer would hold too many series or points: narrow match, shorten the range or raise step", body = ErrorBody),
        (status = 503, description = "the query ran out of its time budget, or every store reader stayed busy: narrow it or retry later", body = ErrorBody),
    )
)]
async fn query(
    State(store): State<Store>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<RangeAnswer>, ApiError> {
    let Query(params) = params?;
    if params.n.is_some() {
        return Err(ApiError::bad_request("parameter n belongs to /api/v1/top"));
    }
    let metric = params.metric()?;
    let matchers = params.matchers()?;
    let (from, to) = params.range(store.now_ms())?;
    let span = to - from;
    let step = match &params.step {
        Some(s) => parse_step(s)?,
        None => span.div_ceil(DEFAULT_POINTS).max(1_000),
    };
    if span / step > MAX_POINTS {
        return Err(ApiError::bad_request(format!(
            "{} points per series asked for (from..to / step); at most {MAX_POINTS}: use a step of at least {} ms",
            span / step,
            span.div_ceil(MAX_POINTS)
        )));
    }
    let function = params.function(AggregateFn::Avg)?;
    let m = metric.clone();
    let result = blocking(move || store.range(&m, &matchers, from, to, step, function)).await?;
    Ok(Json(RangeAnswer {
        metric,
        resolution: result.resolution.name(),
        from,
        to,
        step_ms: step,
        series: result
            .series
            .into_iter()
            .map(|(labels, points)| RangeSeries {
                labels: label_map(&labels),
                points,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesParams {
    metric: Option<String>,
    #[serde(rename = "match")]
    matchers: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/series",
    tag = "store",
    summary = "Stored series (label sets) of a metric",
    params(
        ("metric" = Option<String>, Query, description = "metric name (default: every metric)"),
        ("match" = Option<String>, Query, description = "label matchers, e.g. {topic=\"orders\",cluster=~\"prod.*\"}"),
    ),
    responses(
        (status = 200, description = "OK", body = SeriesAnswer),
        (status = 400, description = "a parameter is wrong", body = ErrorBody),
        (status = 503, description = "the query ran out of its time budget, or every store reader stayed busy: narrow it or retry later", body = ErrorBody),
    )
)]
async fn series(
    State(store): State<Store>,
    params: Result<Query<SeriesParams>, QueryRejection>,
) -> Result<Json<SeriesAnswer>, ApiError> {
    let Query(params) = params?;
    let matchers = parse_selector(params.matchers.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("parameter match: {e}")))?;
    let metric = params.metric.filter(|m| !m.trim().is_empty());
    let found = blocking(move || store.series(metric.as_deref(), &matchers)).await?;
    Ok(Json(SeriesAnswer {
        series: found
            .into_iter()
            .map(|s| SeriesEntry {
                metric: s.metric,
                labels: label_map(&s.labels),
            })
            .collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/last",
    tag = "store",
    summary = "Each series' last value",
    params(
        ("metric" = String, Query, description = "metric name", min_length = 1),
        ("match" = Option<String>, Query, description = "label matchers, e.g. {topic=\"orders\",cluster=~\"prod.*\"}"),
    ),
    responses(
        (status = 200, description = "OK", body = ValuesAnswer),
        (status = 400, description = "a parameter is wrong", body = ErrorBody),
        (status = 422, description = "the answer would hold too many series: narrow match", body = ErrorBody),
        (status = 503, description = "the query ran out of its time budget, or every store reader stayed busy: narrow it or retry later", body = ErrorBody),
    )
)]
async fn last(
    State(store): State<Store>,
    params: Result<Query<SeriesParams>, QueryRejection>,
) -> Result<Json<ValuesAnswer>, ApiError> {
    let Query(params) = params?;
    let metric = RangeParams {
        metric: params.metric,
        matchers: params.matchers,
        from: None,
        to: None,
        step: None,
        agg: None,
        n: None,
    };
    let name = metric.metric()?;
    let matchers = metric.matchers()?;
    let m = name.clone();
    let found = blocking(move || store.last(&m, &matchers)).await?;
    Ok(values(name, found))
}

#[utoipa::path(
    get,
    path = "/api/v1/top",
    tag = "store",
    summary = "The n series with the largest value over a time range",
    params(
        ("metric" = String, Query, description = "metric name", min_length = 1),
        ("match" = Option<String>, Query, description = "label matchers, e.g. {topic=\"orders\",cluster=~\"prod.*\"}"),
        ("from" = Option<String>, Query, description = "epoch ms, RFC 3339, now or now-1h (default now-1h)", min_length = 1),
        ("to" = Option<String>, Query, description = "epoch ms, RFC 3339 or now (default now)", min_length = 1),
        ("agg" = inline(Option<Agg>), Query, description = "how points are aggregated"),
        ("n" = Option<u32>, Query, description = "how many series (default 10)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "OK", body = ValuesAnswer),
        (status = 400, description = "a parameter is wrong", body = ErrorBody),
        (status = 503, description = "the query ran out of its time budget, or every store reader stayed busy: narrow it or retry later", body = ErrorBody),
    )
)]
async fn top(
    State(store): State<Store>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<ValuesAnswer>, ApiError> {
    let Query(params) = params?;
    if params.step.is_some() {
        return Err(ApiError::bad_request(
            "parameter step belongs to /api/v1/query",
        ));
    }
    let metric = params.metric()?;
    let matchers = params.matchers()?;
    let (from, to) = params.range(store.now_ms())?;
    let n = match &params.n {
        None => 10,
        Some(n) => n
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "parameter n: expected a number from 1 to 1000, got {n:?}"
                ))
            })?,
    };
    let function = params.function(AggregateFn::Last)?;
    let m = metric.clone();
    let found = blocking(move || store.top(&m, &matchers, n, from, to, function)).await?;
    Ok(values(metric, found))
}
