//! An InfluxDB-1.x-compatible write endpoint into the store: `POST /write?db=...` (and the same
//! at `/api/v1/write`) with a line protocol body, so `pipescope sink influx` and other 1.x
//! clients can write into pipescope's own history.
//!
//! Each numeric or boolean field becomes a sample `<measurement>_<field>` with the tags as
//! labels (`pipescope_core::line_protocol::parse`). The answer comes once the samples are committed:
//! 204 when every line was stored; 400 naming the rejected lines (string fields, lines that do
//! not parse or break a per-line limit, `pipescope_*` names, series over the cap) with
//! `dropped=N` as InfluxDB words a partial write, the other lines stored anyway; 413 when the
//! body breaks a per-request limit (nothing stored: split it); 503 when nothing was stored and
//! a retry may succeed (queue full, commit failed, too many writes at once). `db` is required,
//! as by InfluxDB, but the store has no databases: it is not kept. The limits are in
//! docs/store.md.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pipescope_core::line_protocol::parse::{
    MAX_SAMPLES_PER_BODY, Parsed, Precision, RESERVED_PREFIX, parse_body,
};
use pipescope_core::line_protocol::quota::{MAX_WRITE_SERIES, SeriesQuota};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::{Store, StoreError, Writer};
use crate::bus::Bus;
use crate::web::{ApiError, ErrorBody};

/// Largest body taken (InfluxDB 1.x takes 25 MB; its clients send a few MB at most). With
/// [`MAX_CONCURRENT_WRITES`] and the parser's memory budget (16 bytes per byte of body) it
/// bounds what `/write` can hold.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Writes read, parsed and stored at once; more are answered 503 at once.
pub const MAX_CONCURRENT_WRITES: usize = 2;
/// How often, at most, the count of series `/write` created is read again from the store
/// when the cap is reached (series older than the retention are gone from it by then).
const SERIES_RECOUNT_EVERY: Duration = Duration::from_secs(60);
/// Rejected lines named in an answer; the count covers all of them.
const REASONS_SHOWN: usize = 5;

#[derive(Clone)]
struct WriteState {
    store: Store,
    writer: Writer,
    bus: Bus,
    quota: Arc<Mutex<Quota>>,
}

/// The series `/write` created, read from the store at the first write and again when the cap
/// is reached (at most every [`SERIES_RECOUNT_EVERY`]).
#[derive(Default)]
struct Quota {
    series: SeriesQuota,
    counted_at: Option<Instant>,
}

impl Quota {
    fn recount_if_due(&mut self, store: &Store) -> Result<(), StoreError> {
        let due = match self.counted_at {
            None => true,
            Some(at) => self.series.is_full() && at.elapsed() >= SERIES_RECOUNT_EVERY,
        };
        if due {
            let series = store.series(None, &[])?;
            self.series.reset(
                series
                    .iter()
                    .filter(|s| !s.metric.starts_with(RESERVED_PREFIX))
                    .map(|s| (s.metric.as_str(), &s.labels)),
            );
            self.counted_at = Some(Instant::now());
        }
        Ok(())
    }
}

/// The write endpoint stores what it is sent, then publishes it on `bus` (marked as stored) so
/// that exporters get it like the watchers' samples.
pub fn router(store: Store, writer: Writer, bus: Bus) -> Router {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_WRITES));
    // The permit is taken before the body is read, so waiting bodies take no memory.
    let writes = Router::new()
        .route("/write", post(write))
        .route("/api/v1/write", post(write))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(permits, one_of_few_writes));
    Router::new()
        .merge(writes)
        .route("/ping", get(ping).head(ping))
        .with_state(WriteState {
            store,
            writer,
            bus,
            quota: Arc::default(),
        })
}

async fn one_of_few_writes(
    State(permits): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = permits.try_acquire() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many writes at once ({MAX_CONCURRENT_WRITES} are being stored, MAX_CONCURRENT_WRITES): retry later"
            ),
        )
        .into_response();
    };
    next.run(request).await
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
        (status = 400, description = "lines or samples rejected (the rest stored): which, why, how many", body = ErrorBody),
        (status = 413, description = "the body breaks a per-request limit (nothing stored): split it", body = ErrorBody),
        (status = 415, description = "a compressed body (send it plain)", body = ErrorBody),
        (status = 503, description = "nothing stored, retry later: the store's queue is full, its commit failed (disk full?) or too many writes at once", body = ErrorBody),
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
    let result =
        tokio::task::spawn_blocking(move || store_body(&state, &body, precision, now)).await;
    let Stored {
        lines,
        stored,
        rejected_lines,
        rejected,
        series_refused,
    } = result.map_err(|e| ApiError::internal(format!("write failed ({e})")))??;
    if rejected_lines == 0 && series_refused == 0 {
        return Ok(StatusCode::NO_CONTENT);
    }
    tracing::debug!(
        lines,
        stored,
        rejected_lines,
        series_refused,
        "/write: not all stored"
    );
    let mut reasons: Vec<String> = rejected
        .iter()
        .take(REASONS_SHOWN)
        .map(|r| format!("line {}: {}", r.line, r.reason))
        .collect();
    let more = rejected_lines.saturating_sub(reasons.len());
    if more > 0 {
        reasons.push(format!("and {more} more"));
    }
    let mut parts = Vec::new();
    if rejected_lines > 0 {
        parts.push(format!(
            "{rejected_lines} of {lines} lines rejected ({})",
            reasons.join("; ")
        ));
    }
    if series_refused > 0 {
        parts.push(format!(
            "{series_refused} samples of new series refused (/write may create {MAX_WRITE_SERIES} series, MAX_WRITE_SERIES, and has: write to the series that exist, or wait for the retention to remove old ones)"
        ));
    }
    Err(ApiError::bad_request(format!(
        "partial write: {}; {stored} samples stored dropped={}",
        parts.join("; "),
        rejected_lines + series_refused
    )))
}

/// What a write stored and left out.
struct Stored {
    lines: usize,
    stored: usize,
    rejected_lines: usize,
    rejected: Vec<pipescope_core::line_protocol::parse::Rejected>,
    series_refused: usize,
}

/// Parses, checks and stores a body (blocking: it waits for the commit).
fn store_body(
    state: &WriteState,
    body: &[u8],
    precision: Precision,
    now: pipescope_core::EpochMillis,
) -> Result<Stored, ApiError> {
    let Ok(body) = std::str::from_utf8(body) else {
        return Err(ApiError::bad_request(
            "the body is not UTF-8: line protocol is UTF-8 text",
        ));
    };
    let too_large = |e: String| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e);
    let Parsed {
        samples,
        lines,
        rejected_lines,
        rejected,
        reserved_samples,
    } = parse_body(body, precision, now).map_err(|e| too_large(e.to_string()))?;
    let stats = state.store.stats();
    stats
        .write_refused_reserved_name
        .fetch_add(reserved_samples as u64, Ordering::Relaxed);
    let admitted = {
        let mut quota = state.quota.lock().unwrap_or_else(|p| p.into_inner());
        quota
            .recount_if_due(&state.store)
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        quota
            .series
            .admit(samples)
            .map_err(|e| too_large(e.to_string()))?
    };
    if admitted.refused > 0 {
        stats
            .write_refused_series_limit
            .fetch_add(admitted.refused as u64, Ordering::Relaxed);
        tracing::warn!(
            refused = admitted.refused,
            "/write: the cap of {MAX_WRITE_SERIES} series is reached; samples of new series refused"
        );
    }
    let stored = admitted.samples.len();
    if stored > 0 {
        debug_assert!(stored <= MAX_SAMPLES_PER_BODY);
        let batch = Arc::new(admitted.samples);
        // Answer 503 unless stored: a client that gets 2xx drops its copy.
        state
            .writer
            .store(batch.clone())
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        state.bus.publish_stored(batch);
    }
    Ok(Stored {
        lines,
        stored,
        rejected_lines,
        rejected,
        series_refused: admitted.refused,
    })
}
