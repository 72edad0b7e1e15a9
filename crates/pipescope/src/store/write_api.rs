//! An InfluxDB-1.x-compatible write endpoint into the store: `POST /write?db=...` (and the same
//! at `/api/v1/write`) with a line protocol body, so `pipescope sink influx` and other 1.x
//! clients can write into pipescope's own history.
//!
//! Each numeric or boolean field becomes a sample `<measurement>_<field>` with the tags as
//! labels (`pipescope_core::line_protocol::parse`). The answer comes once the samples are committed:
//! 204 when every line was stored; 400 naming the rejected lines (string fields, lines that do
//! not parse) with `dropped=N` as InfluxDB words a partial write, the other lines stored anyway;
//! 503 when the store's queue is full (retry later). `db` is required, as by InfluxDB, but the
//! store has no databases: it is not kept.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pipescope_core::line_protocol::parse::{Parsed, Precision, parse_body};
use serde::Deserialize;

use super::{Store, Writer};
use crate::bus::Bus;
use crate::web::{ApiError, ErrorBody};

/// Largest body taken (InfluxDB's clients send a few MB at most).
const MAX_BODY_BYTES: usize = 64 << 20;
/// Rejected lines named in an answer; the count covers all of them.
const REASONS_SHOWN: usize = 5;

#[derive(Clone)]
struct WriteState {
    store: Store,
    writer: Writer,
    bus: Bus,
}

/// The write endpoint stores what it is sent, then publishes it on `bus` (marked as stored) so
/// that exporters get it like the watchers' samples.
pub fn router(store: Store, writer: Writer, bus: Bus) -> Router {
    Router::new()
        .route("/write", post(write))
        .route("/api/v1/write", post(write))
        .route("/ping", get(ping).head(ping))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(WriteState { store, writer, bus })
}

#[derive(Debug, Deserialize)]
struct WriteParams {
    db: Option<String>,
    #[serde(default)]
    precision: String,
}

/// The timestamp units `precision` takes, as InfluxDB's clients spell them (what [`Precision`]
/// parses; empty is the default, nanoseconds): the document's enumeration.
struct PrecisionName;

impl utoipa::PartialSchema for PrecisionName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(["", "n", "ns", "u", "us", "µ", "ms", "s", "m", "h"]))
            .into()
    }
}

impl utoipa::ToSchema for PrecisionName {}

/// What InfluxDB's clients call to see that a server is there.
#[utoipa::path(
    get,
    path = "/ping",
    tag = "store",
    summary = "Answers 204 with X-Influxdb-Version, as InfluxDB 1.x does",
    responses((status = 204, description = "up"))
)]
async fn ping() -> Response {
    (
        StatusCode::NO_CONTENT,
        [("X-Influxdb-Version", "1.8-pipescope")],
    )
        .into_response()
}

/// Where the write endpoint is also served (InfluxDB's clients call `/write`).
pub const WRITE_ALIAS: &str = "/api/v1/write";

/// 204 when every line was stored; otherwise why not. Also served at [`WRITE_ALIAS`].
#[utoipa::path(
    post,
    path = "/write",
    tag = "store",
    summary = "InfluxDB 1.x line protocol into the embedded store: each number or boolean field becomes the sample `<measurement>_<field>`, tags become labels",
    params(
        ("db" = String, Query, description = "a database name (required by InfluxDB clients; pipescope has one store)", min_length = 1),
        ("precision" = inline(Option<PrecisionName>), Query, description = "timestamp unit (default n)"),
    ),
    request_body(content = String, content_type = "text/plain"),
    responses(
        (status = 204, description = "every line stored"),
        (status = 400, description = "lines rejected (the rest stored): which, why, how many", body = ErrorBody),
        (status = 415, description = "a compressed body (send it plain)", body = ErrorBody),
        (status = 503, description = "the store's queue is full: retry later", body = ErrorBody),
    )
)]
async fn write(
    State(state): State<WriteState>,
    params: Result<Query<WriteParams>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    // Every error is JSON, as InfluxDB answers them (axum's own rejections are plain text).
    let Query(params) = params?;
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return Err(ApiError::bad_request(
            "the body is not UTF-8: line protocol is UTF-8 text",
        ));
    };
    if params.db.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::bad_request(
            "database is required: add ?db=NAME (any name; pipescope keeps one store)",
        ));
    }
    let precision: Precision = params
        .precision
        .parse()
        .map_err(|e| ApiError::bad_request(format!("parameter precision: {e}")))?;
    if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() != b"identity")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "compressed bodies are not taken: send the line protocol uncompressed",
        ));
    }
    let now = state.store.now_ms();
    let result = tokio::task::spawn_blocking(move || {
        let parsed = parse_body(&body, precision, now);
        let Parsed {
            samples,
            lines,
            rejected,
        } = parsed;
        let stored = samples.len();
        if !samples.is_empty() {
            let batch = std::sync::Arc::new(samples);
            if !state.writer.submit(batch.clone()) {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store's write queue is full (the disk is slower than the writes): retry later",
                ));
            }
            if let Err(e) = state.writer.flush() {
                return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
            }
            state.bus.publish_stored(batch);
        }
        Ok((lines, stored, rejected))
    })
    .await;
    let (lines, stored, rejected) =
        result.map_err(|e| ApiError::internal(format!("write failed ({e})")))??;
    if rejected.is_empty() {
        return Ok(StatusCode::NO_CONTENT);
    }
    tracing::debug!(
        lines,
        stored,
        rejected = rejected.len(),
        "/write: lines rejected"
    );
    let reasons: Vec<String> = rejected
        .iter()
        .take(REASONS_SHOWN)
        .map(|r| format!("line {}: {}", r.line, r.reason))
        .collect();
    let more = rejected.len().saturating_sub(REASONS_SHOWN);
    let more = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    Err(ApiError::bad_request(format!(
        "partial write: {} of {lines} lines rejected ({}{more}); {stored} samples stored dropped={}",
        rejected.len(),
        reasons.join("; "),
        rejected.len()
    )))
}
