//! `/api/v1/quality`: each quality topic's records, invalid and error records per minute and
//! the rules it breaks; `/api/v1/quality/{name}`: its field profiles, rules with previews, drift
//! events and invalid records; `/api/v1/quality/reports`: the periodic HTML reports.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pipescope_core::EpochMillis;
use pipescope_core::quality::drift::{DriftCounts, DriftEvent};
use pipescope_core::quality::rules::{FailingRecord, RulesFigures};
use pipescope_core::windows::WindowCounts;
use serde::Serialize;

use super::observer::ProfileViews;
use super::reports::{self, ReportEntry};
use super::{QualityState, QualityTopic, ReaderState};
use crate::web::{ApiError, ErrorBody};

/// One rule broken on a topic, in the list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleBroken {
    /// `<field or name>:<check>`.
    pub rule: String,
    pub broken_total: u64,
    /// Records that broke it over the last minute (absent until a minute is covered).
    pub errors_per_minute: Option<f64>,
}

/// A quality topic's figures, as the list shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QualityTopicView {
    pub name: String,
    /// `kafka:<cluster>:<topic>` or `mqtt:<broker>:<filter>`.
    pub source: String,
    /// When these figures were taken (epoch ms).
    pub updated_ms: EpochMillis,
    pub window_s: f64,
    /// One record in this many is profiled (rules check every record).
    pub sample_every: u64,
    pub reader: ReaderState,
    pub records_total: u64,
    /// Records whose payload is not JSON.
    pub invalid_total: u64,
    /// Records breaking at least one rule, each counted once.
    pub error_records_total: u64,
    pub records: WindowCounts,
    pub invalid: WindowCounts,
    /// `per_minute` of the `1m` window: the error records per minute.
    pub error_records: WindowCounts,
    /// The rules broken at least once since start.
    pub rules_broken: Vec<RuleBroken>,
    pub drift: DriftCounts,
}

/// One quality topic in full.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QualityTopicDetail {
    #[serde(flatten)]
    pub topic: QualityTopicView,
    /// Every rule's errors per window and its newest failing records.
    pub rules: RulesFigures,
    /// The profile summary per field over the last window, 15 minutes and hour.
    pub profiles: ProfileViews,
    /// The newest drift events, newest first.
    pub drift_events: Vec<DriftEvent>,
    /// The newest records that are not JSON, newest first.
    pub invalid_previews: Vec<FailingRecord>,
}

fn view_with_rules(topic: &QualityTopic, now: EpochMillis) -> (QualityTopicView, RulesFigures) {
    let o = topic.observer();
    let rules = o.rules(now);
    let (records, invalid) = o.record_counts(now);
    let view = QualityTopicView {
        name: topic.name.clone(),
        source: topic.source.clone(),
        updated_ms: now,
        window_s: topic.window_ms as f64 / 1000.0,
        sample_every: o.sample_every(),
        reader: topic.reader(),
        records_total: o.records_total(),
        invalid_total: o.invalid_total(),
        error_records_total: rules.error_records_total,
        records,
        invalid,
        error_records: rules.error_records,
        rules_broken: rules
            .rules
            .iter()
            .filter(|r| r.broken_total > 0)
            .map(|r| RuleBroken {
                rule: r.rule.clone(),
                broken_total: r.broken_total,
                errors_per_minute: r.errors.one_minute.per_minute,
            })
            .collect(),
        drift: o.drift_counts(),
    };
    (view, rules)
}

pub fn topic_view(topic: &QualityTopic, now: EpochMillis) -> QualityTopicView {
    view_with_rules(topic, now).0
}

pub fn topic_detail(topic: &QualityTopic, now: EpochMillis) -> QualityTopicDetail {
    let (view, rules) = view_with_rules(topic, now);
    let o = topic.observer();
    QualityTopicDetail {
        topic: view,
        rules,
        profiles: o.profiles(),
        drift_events: o.drift_events(),
        invalid_previews: o.invalid_previews(),
    }
}

pub fn router(state: QualityState) -> Router {
    Router::new()
        .route("/api/v1/quality", get(quality_topics))
        .route("/api/v1/quality/reports", get(quality_reports))
        .route("/api/v1/quality/reports/{file}", get(quality_report))
        .route("/api/v1/quality/{name}", get(quality_topic))
        .with_state(state)
}

#[utoipa::path(
    get,
    path = "/api/v1/quality",
    tag = "quality",
    summary = "Quality topics ([quality.X]): records, invalid and error records per minute, the rules broken, drift counts (docs/quality-rules.md)",
    responses((status = 200, description = "OK", body = [QualityTopicView]))
)]
pub(crate) async fn quality_topics(
    State(state): State<QualityState>,
) -> Json<Vec<QualityTopicView>> {
    let now = state.now();
    Json(state.topics().map(|t| topic_view(t, now)).collect())
}

#[utoipa::path(
    get,
    path = "/api/v1/quality/{name}",
    tag = "quality",
    summary = "One quality topic: the profile summary per field, every rule's figures with previews, the recent drift events, the invalid records' previews",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "OK", body = QualityTopicDetail),
        (status = 404, description = "no such quality topic", body = ErrorBody),
    )
)]
pub(crate) async fn quality_topic(
    State(state): State<QualityState>,
    Path(name): Path<String>,
) -> Result<Json<QualityTopicDetail>, ApiError> {
    let now = state.now();
    state
        .get(&name)
        .map(|t| Json(topic_detail(t, now)))
        .ok_or_else(|| {
            let known: Vec<&str> = state.topics().map(|t| t.name.as_str()).collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no quality topic {name:?} — the quality topics are: {} (configured as [quality.<name>])",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })
}

/// A report is the monitor's own page, but its text comes from the records: no script may run
/// in it, nothing is loaded, only its inline style applies.
pub const REPORT_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox";

#[utoipa::path(
    get,
    path = "/api/v1/quality/reports",
    tag = "quality",
    summary = "The periodic HTML profile reports of the quality topics (report_every), newest first (docs/quality.md \"Reports\")",
    responses(
        (status = 200, description = "OK", body = [ReportEntry]),
        (status = 500, description = "the reports directory cannot be read", body = ErrorBody),
    )
)]
pub(crate) async fn quality_reports(
    State(state): State<QualityState>,
) -> Result<Json<Vec<ReportEntry>>, ApiError> {
    let dir = state.reports_dir().display().to_string();
    tokio::task::spawn_blocking(move || reports::list(&state))
        .await
        .map_err(|e| ApiError::internal(format!("the report lister failed: {e}")))?
        .map(Json)
        .map_err(|e| {
            ApiError::internal(format!(
                "cannot read the reports directory {dir}: {e} — check [store] reports_dir and its permissions"
            ))
        })
}

#[utoipa::path(
    get,
    path = "/api/v1/quality/reports/{file}",
    tag = "quality",
    summary = "One periodic report: a self-contained HTML page (no scripts); only a file name /api/v1/quality/reports lists",
    params(("file" = String, Path)),
    responses(
        (status = 200, description = "the report", content_type = "text/html", body = String),
        (status = 404, description = "no such report", body = ErrorBody),
    )
)]
pub(crate) async fn quality_report(
    State(state): State<QualityState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let name = file.clone();
    let html = tokio::task::spawn_blocking(move || reports::read(&state, &name))
        .await
        .map_err(|e| ApiError::internal(format!("the report reader failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("cannot read the report {file:?}: {e}")))?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no report {file:?} — GET /api/v1/quality/reports lists the reports kept"
            ))
        })?;
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(REPORT_CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    Ok(response)
}
