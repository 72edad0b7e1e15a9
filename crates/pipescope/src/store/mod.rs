//! The embedded time-series store: SQLite (bundled) in WAL mode, in the directory `[store] path`.
//!
//! Series are a metric name plus labels. Raw samples are kept with 1-minute and 1-hour roll-ups
//! (count, sum, min, max, last), each pruned after its own retention. One writer thread owns the
//! write connection and commits whole batches in one transaction each, so a crash (even
//! `kill -9`) loses at most the batch being written and never leaves a half-written one; queries
//! use a small pool of read connections ([`READERS`]) and never wait for the writer (WAL readers
//! see the last commit) nor for each other. Each query is bounded ([`QueryLimits`]): in the
//! series and points it may answer, and in time (SQLite's progress handler stops it).

pub mod alerts;
pub mod api;
pub mod history;
pub mod metrics;
pub mod write_api;
mod writer;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pipescope_core::tsdb::{
    Aggregate, AggregateFn, Matcher, Resolution, Retention, choose_resolution, downsample,
    matcher::matches_all, split_exact, top_n,
};
use pipescope_core::{Clock, EpochMillis, Labels};
use rusqlite::{Connection, OpenFlags, params};

pub use writer::{Writer, feed_from_bus};

/// Width of the blocks of time the head's rows are compacted into, one chunk per series and
/// block (aligned to the epoch).
const CHUNK_MS: u64 = 3_600_000;

/// File name of the database inside the store directory.
pub const DB_FILE: &str = "store.db";

/// Queries that read the store at once, each on its own connection (more wait for one).
pub const READERS: usize = 4;
/// The time budget of reads that have none (a year stands for ever).
const UNBOUNDED: Duration = Duration::from_secs(365 * 24 * 3600);

/// What one query may cost before it is refused or stopped (see docs/store.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Series one answer of `/api/v1/query` or `/api/v1/last` may hold.
    pub max_series: usize,
    /// Points one answer of `/api/v1/query` may hold, all its series together (16 bytes each
    /// in memory, about 30 in JSON).
    pub max_points: usize,
    /// How long one query may take, waiting for a reader included.
    pub time_budget: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_series: 20_000,
            max_points: 4_000_000,
            time_budget: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot create the store directory {path} ({source}) — check [store] path and its permissions"
    )]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot open the store database {path} ({source}) — is another pipescope using it, or is the disk full?"
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the store database {path} is corrupt ({reason}) — start once with `pipescope run --move-corrupt-store-aside` to move it aside (renamed beside it and kept) and start with an empty store, or put back a backup of it"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "cannot move the corrupt store database {path} aside ({source}) — check the permissions of [store] path, or move the file away yourself"
    )]
    MoveAside {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store query failed ({0})")]
    Query(#[from] rusqlite::Error),
    #[error(
        "the query matches {found} series of {metric}; at most {max} are answered at once — narrow it with match=, e.g. match={{topic=\"orders\"}} (GET /api/v1/series?metric={metric} lists their labels)"
    )]
    TooManySeries {
        metric: String,
        found: usize,
        max: usize,
    },
    #[error(
        "the answer would hold more than {max} points — ask for a larger step, a shorter range, or fewer series with match="
    )]
    TooManyPoints { max: usize },
    #[error(
        "the query took longer than its budget of {budget:?} and was stopped — ask for a shorter range, a larger step, or fewer series with match="
    )]
    TimedOut { budget: Duration },
    #[error(
        "all {READERS} store readers stayed busy for the query's budget of {budget:?} (slow queries running) — retry later"
    )]
    ReadersBusy { budget: Duration },
    #[error("the store writer has stopped; restart pipescope (see the log for why it stopped)")]
    WriterGone,
    #[error("the store's write queue is full (the disk is slower than the writes): retry later")]
    QueueFull,
    #[error(
        "the store could not commit the samples ({0}) — is the disk full? Nothing was stored: retry later"
    )]
    WriteFailed(String),
}

/// Counters the writer keeps and `/metrics` exports.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub write_batches: AtomicU64,
    pub samples_written: AtomicU64,
    pub samples_dropped: AtomicU64,
    /// Commits that failed (disk full, I/O error): their samples are in `samples_dropped`.
    pub write_failures: AtomicU64,
    /// 1 while the newest commit failed, 0 once one succeeds.
    pub write_failing: AtomicU64,
    /// Batches waiting for the writer.
    pub queue_depth: AtomicI64,
    /// Samples `/write` refused because their name is pipescope's own (`pipescope_*`).
    pub write_refused_reserved_name: AtomicU64,
    /// Samples `/write` refused because its series cap was reached.
    pub write_refused_series_limit: AtomicU64,
    /// Queries refused or stopped, by [`QueryLimits`] bound.
    pub query_refused_series_limit: AtomicU64,
    pub query_refused_points_limit: AtomicU64,
    pub query_timed_out: AtomicU64,
    pub query_readers_busy: AtomicU64,
    /// Samples dropped to keep the database within `[store] max_disk_size`: raw samples, and
    /// the samples that dropped 1-minute roll-ups summarized.
    pub budget_dropped_raw: AtomicU64,
    pub budget_dropped_minute: AtomicU64,
    /// `[store] max_disk_size` in bytes, 0 for none; the writer reads it at each prune.
    pub max_disk_size: AtomicU64,
}

/// A handle for queries; clones share one pool of read connections.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    readers: Readers,
    limits: Mutex<QueryLimits>,
    retention: Retention,
    clock: Arc<dyn Clock>,
    stats: Arc<StoreStats>,
}

/// One series: a metric and its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInfo {
    pub metric: String,
    pub labels: Labels,
}

/// Answer of a range query.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeResult {
    pub resolution: Resolution,
    pub series: Vec<(Labels, Vec<(EpochMillis, f64)>)>,
}

/// One value per series (last value, or a top-N entry).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesValue {
    pub labels: Labels,
    pub time_ms: EpochMillis,
    pub value: f64,
}

impl Store {
    /// Opens (creating when absent) the store in `dir` and starts its writer thread, whose queue
    /// holds up to `queue_batches` batches before new ones are dropped (and counted).
    pub fn open(
        dir: &Path,
        retention: Retention,
        clock: Arc<dyn Clock>,
        queue_batches: usize,
    ) -> Result<(Store, Writer), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let db = dir.join(DB_FILE);
        if let Err(reason) = check_header(&db) {
            return Err(StoreError::Corrupt { path: db, reason });
        }
        let open_err = |source: rusqlite::Error| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt {
                    path: db.clone(),
                    reason: source.to_string(),
                }
            }
            _ => StoreError::Open {
                path: db.clone(),
                source,
            },
        };
        let write_conn = Connection::open(&db).map_err(open_err)?;
        init_schema(&write_conn).map_err(open_err)?;
        let reader = open_reader(&db).map_err(open_err)?;
        let stats = Arc::new(StoreStats::default());
        let store = Store {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                readers: Readers {
                    db: db.clone(),
                    pool: Mutex::new(Pool {
                        idle: vec![reader],
                        opened: 1,
                    }),
                    returned: Condvar::new(),
                },
                limits: Mutex::new(QueryLimits::default()),
                retention,
                clock: clock.clone(),
                stats: stats.clone(),
            }),
        };
        let writer = Writer::start(write_conn, retention, clock, stats, queue_batches);
        Ok((store, writer))
    }

    /// Bounds the bytes of the database's pages in use (`[store] max_disk_size`; `None`: no
    /// bound). Past it, each prune drops the oldest raw data, then the oldest 1-minute roll-ups.
    pub fn set_max_disk_size(&self, bytes: Option<u64>) {
        self.inner
            .stats
            .max_disk_size
            .store(bytes.unwrap_or(0), Ordering::Relaxed);
    }

    pub fn stats(&self) -> &Arc<StoreStats> {
        &self.inner.stats
    }

    pub fn retention(&self) -> Retention {
        self.inner.retention
    }

    pub fn now_ms(&self) -> EpochMillis {
        self.inner.clock.now_millis()
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Bytes the store takes on disk: the database, its write-ahead log and shared memory file.
    pub fn size_bytes(&self) -> u64 {
        size_bytes(&self.inner.dir)
    }

    pub fn query_limits(&self) -> QueryLimits {
        *self.inner.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the bounds on each query (tests use small ones).
    pub fn set_query_limits(&self, limits: QueryLimits) {
        *self.inner.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    /// Runs `f` on a read connection of the pool within the query's time budget: SQLite stops
    /// a statement that runs past it, and `f` checks it between steps (`Reading::in_time`).
    /// Counts what the bounds refused or stopped.
    fn reading<T>(
        &self,
        f: impl FnOnce(&Reading) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.reading_within(self.query_limits().time_budget, f)
    }

    fn reading_within<T>(
        &self,
        budget: Duration,
        f: impl FnOnce(&Reading) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let now = Instant::now();
        let deadline = now.checked_add(budget).unwrap_or(now + UNBOUNDED);
        let result = match self.inner.readers.take(deadline) {
            Some(conn) => {
                let reading = Reading {
                    conn: conn
                        .conn
                        .as_ref()
                        .expect("a taken reader holds its connection"),
                    deadline,
                    budget,
                };
                f(&reading).map_err(|e| match e {
                    StoreError::Query(rusqlite::Error::SqliteFailure(code, _))
                        if code.code == rusqlite::ErrorCode::OperationInterrupted =>
                    {
                        StoreError::TimedOut { budget }
                    }
                    e => e,
                })
            }
            None => Err(StoreError::ReadersBusy { budget }),
        };
        if let Err(e) = &result {
            let stats = &self.inner.stats;
            let counter = match e {
                StoreError::TooManySeries { .. } => &stats.query_refused_series_limit,
                StoreError::TooManyPoints { .. } => &stats.query_refused_points_limit,
                StoreError::TimedOut { .. } => &stats.query_timed_out,
                StoreError::ReadersBusy { .. } => &stats.query_readers_busy,
                _ => return result,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    #[cfg(test)]
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.reading(|r| Ok(f(r.conn)?))
    }

    /// Refuses an answer of more series than a query may hold.
    fn check_series_count(&self, metric: &str, found: usize) -> Result<(), StoreError> {
        self.check_series_within(metric, found, self.query_limits().max_series)
    }

    fn check_series_within(
        &self,
        metric: &str,
        found: usize,
        max: usize,
    ) -> Result<(), StoreError> {
        if found > max {
            return Err(StoreError::TooManySeries {
                metric: metric.to_string(),
                found,
                max,
            });
        }
        Ok(())
    }

    /// Series that exist, of one metric or of all, that match every matcher.
    pub fn series(
        &self,
        metric: Option<&str>,
        matchers: &[Matcher],
    ) -> Result<Vec<SeriesInfo>, StoreError> {
        self.reading(|r| {
            Ok(matching_series(r.conn, metric, matchers)?
                .into_iter()
                .map(|(_, info)| info)
                .collect())
        })
    }

    /// Values of every matching series of `metric` in `[from, to]`, one point per `step_ms`
    /// (aligned to the epoch), read from the resolution the step and the age of `from` call for.
    /// Series by series, so what is held is the answer and one series' rows.
    pub fn range(
        &self,
        metric: &str,
        matchers: &[Matcher],
        from_ms: EpochMillis,
        to_ms: EpochMillis,
        step_ms: u64,
        function: AggregateFn,
    ) -> Result<RangeResult, StoreError> {
        let limits = self.query_limits();
        self.range_within(metric, matchers, from_ms, to_ms, step_ms, function, limits)
    }

    /// [`Store::range`] without the bounds on queries, for pipescope's own reads at start
    /// (`kafka::restore`), whose size the configuration bounds and which must not fail
    /// because a cluster is large.
    pub fn range_unbounded(
        &self,
        metric: &str,
        matchers: &[Matcher],
        from_ms: EpochMillis,
        to_ms: EpochMillis,
        step_ms: u64,
        function: AggregateFn,
    ) -> Result<RangeResult, StoreError> {
        let limits = QueryLimits {
            max_series: usize::MAX,
            max_points: usize::MAX,
            time_budget: UNBOUNDED,
        };
        self.range_within(metric, matchers, from_ms, to_ms, step_ms, function, limits)
    }

    #[allow(clippy::too_many_arguments)]
    fn range_within(
        &self,
        metric: &str,
        matchers: &[Matcher],
        from_ms: EpochMillis,
        to_ms: EpochMillis,
        step_ms: u64,
        function: AggregateFn,
        limits: QueryLimits,
    ) -> Result<RangeResult, StoreError> {
        let resolution = choose_resolution(from_ms, step_ms, self.now_ms(), &self.inner.retention);
        let max_points = limits.max_points;
        self.reading_within(limits.time_budget, |r| {
            let series = matching_series(r.conn, Some(metric), matchers)?;
            self.check_series_within(metric, series.len(), limits.max_series)?;
            let lower = resolution.bucket_start(from_ms);
            let mut out = Vec::new();
            let mut points_held = 0;
            for (id, info) in series {
                r.in_time()?;
                let rows = read_rows(r.conn, id, resolution, lower, to_ms)?;
                if rows.is_empty() {
                    continue;
                }
                let points: Vec<(EpochMillis, f64)> = downsample(rows, lower, to_ms, step_ms)
                    .into_iter()
                    .map(|(ts, a)| (ts, a.get(function)))
                    .collect();
                points_held += points.len();
                if points_held > max_points {
                    return Err(StoreError::TooManyPoints { max: max_points });
                }
                out.push((info.labels, points));
            }
            Ok(RangeResult {
                resolution,
                series: out,
            })
        })
    }

    /// The newest value of each matching series of `metric` (from the finest resolution that
    /// still has one).
    pub fn last(&self, metric: &str, matchers: &[Matcher]) -> Result<Vec<SeriesValue>, StoreError> {
        self.reading(|r| {
            let series = matching_series(r.conn, Some(metric), matchers)?;
            self.check_series_count(metric, series.len())?;
            let mut out = Vec::new();
            for (id, info) in series {
                r.in_time()?;
                if let Some((time_ms, value)) = read_last(r.conn, id)? {
                    out.push(SeriesValue {
                        labels: info.labels,
                        time_ms,
                        value,
                    });
                }
            }
            Ok(out)
        })
    }

    /// The `n` matching series of `metric` with the highest `function` of their values in
    /// `[from, to]`, highest first. SQLite sums each series up, so any number of series may
    /// take part; only the time budget bounds it.
    pub fn top(
        &self,
        metric: &str,
        matchers: &[Matcher],
        n: usize,
        from_ms: EpochMillis,
        to_ms: EpochMillis,
        function: AggregateFn,
    ) -> Result<Vec<SeriesValue>, StoreError> {
        // The finest resolution that still holds `from`: exact over the whole range.
        let resolution = choose_resolution(from_ms, 1, self.now_ms(), &self.inner.retention);
        self.reading(|r| {
            let series = matching_series(r.conn, Some(metric), matchers)?;
            let ids: HashSet<i64> = series.iter().map(|(id, _)| *id).collect();
            let with_last = function == AggregateFn::Last;
            let mut totals: HashMap<i64, Aggregate> = HashMap::new();
            let mut add = |part: HashMap<i64, Aggregate>| {
                for (id, a) in part {
                    totals.entry(id).and_modify(|t| t.merge(&a)).or_insert(a);
                }
            };
            let read = |resolution, from, to| {
                read_totals(r.conn, metric, &ids, resolution, from, to, with_last)
            };
            if resolution == Resolution::Raw {
                // Whole hours from the 1-hour roll-ups, whole minutes from the 1-minute ones,
                // the edges from raw rows: the same aggregates from up to 60 or 3,600 times
                // fewer rows.
                for (part, from, to) in split_exact(from_ms, to_ms) {
                    r.in_time()?;
                    add(read(part, from, to)?);
                }
            } else {
                add(read(resolution, from_ms, to_ms)?);
            }
            let mut entries = Vec::new();
            for (id, info) in series {
                if let Some(t) = totals.get(&id) {
                    entries.push(((info.labels, t.last_ms), t.get(function)));
                }
            }
            Ok(top_n(entries, n)
                .into_iter()
                .map(|((labels, time_ms), value)| SeriesValue {
                    labels,
                    time_ms,
                    value,
                })
                .collect())
        })
    }

    /// `PRAGMA integrity_check`: "ok" for a sound database. It reads every page, beyond any
    /// query's budget, so on a connection of its own.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let conn = open_reader(&self.inner.readers.db)?;
        Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

/// A read connection taken for one query, and the query's deadline.
struct Reading<'a> {
    conn: &'a Connection,
    deadline: Instant,
    budget: Duration,
}

impl Reading<'_> {
    /// An error once the query's time is up (between statements; SQLite stops one inside).
    fn in_time(&self) -> Result<(), StoreError> {
        if Instant::now() >= self.deadline {
            return Err(StoreError::TimedOut {
                budget: self.budget,
            });
        }
        Ok(())
    }
}

/// Up to [`READERS`] read connections, opened when first needed and then kept.
#[derive(Debug)]
struct Readers {
    db: PathBuf,
    pool: Mutex<Pool>,
    returned: Condvar,
}

#[derive(Debug)]
struct Pool {
    idle: Vec<Connection>,
    opened: usize,
}

/// A connection out of the pool; it goes back when dropped.
struct TakenReader<'a> {
    conn: Option<Connection>,
    readers: &'a Readers,
}

impl Readers {
    /// A connection whose statements SQLite stops at `deadline`; `None` if none came free by
    /// then.
    fn take(&self, deadline: Instant) -> Option<TakenReader<'_>> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let mut conn = loop {
            if let Some(conn) = pool.idle.pop() {
                break conn;
            }
            if pool.opened < READERS {
                pool.opened += 1;
                drop(pool);
                match open_reader(&self.db) {
                    Ok(conn) => break conn,
                    Err(e) => {
                        tracing::error!("store: cannot open another read connection ({e})");
                        pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
                        pool.opened -= 1;
                        // Wait for one of the open ones instead.
                        if pool.opened == 0 {
                            return None;
                        }
                        continue;
                    }
                }
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return None;
            }
            pool = self
                .returned
                .wait_timeout(pool, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        };
        // Checked every 1,000 virtual-machine steps: microseconds apart.
        if let Err(e) = conn.progress_handler(1_000, Some(move || Instant::now() >= deadline)) {
            tracing::error!("store: cannot bound a query's time ({e}); it runs unbounded");
        }
        Some(TakenReader {
            conn: Some(conn),
            readers: self,
        })
    }
}

impl Drop for TakenReader<'_> {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = conn.progress_handler(0, None::<fn() -> bool>);
            let mut pool = self.readers.pool.lock().unwrap_or_else(|p| p.into_inner());
            pool.idle.push(conn);
            drop(pool);
            self.readers.returned.notify_one();
        }
    }
}

fn open_reader(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// The series of one metric: a search of the series table's key.
const SERIES_OF_METRIC: &str =
    "SELECT id, metric, labels FROM series WHERE metric = ?1 ORDER BY labels";
/// Every series, in the key's order.
const EVERY_SERIES: &str = "SELECT id, metric, labels FROM series ORDER BY metric, labels";

fn matching_series(
    conn: &Connection,
    metric: Option<&str>,
    matchers: &[Matcher],
) -> rusqlite::Result<Vec<(i64, SeriesInfo)>> {
    let (mut stmt, mut rows);
    match metric {
        Some(metric) => {
            stmt = conn.prepare_cached(SERIES_OF_METRIC)?;
            rows = stmt.query(params![metric])?;
        }
        None => {
            stmt = conn.prepare_cached(EVERY_SERIES)?;
            rows = stmt.query([])?;
        }
    }
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let info = SeriesInfo {
            metric: row.get(1)?,
            labels: decode_labels(row.get_ref(2)?.as_str()?),
        };
        if matches_all(matchers, &info.labels) {
            out.push((row.get(0)?, info));
        }
    }
    Ok(out)
}

/// A chunk that does not decode, as the error of the query that read it.
fn chunk_error(e: pipescope_core::tsdb::chunk::ChunkError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
}

/// The chunk table of a resolution, if it has one.
fn chunk_table(resolution: Resolution) -> Option<&'static str> {
    match resolution {
        Resolution::Raw => Some("raw_chunks"),
        Resolution::Minute => Some("m1_chunks"),
        Resolution::Hour => None,
    }
}

/// Decodes a chunk of `resolution` into aggregates (a raw sample is an aggregate of one).
fn decode_chunk(
    resolution: Resolution,
    data: &[u8],
) -> rusqlite::Result<Vec<(EpochMillis, Aggregate)>> {
    use pipescope_core::tsdb::chunk;
    Ok(match resolution {
        Resolution::Raw => chunk::decode_raw(data)
            .map_err(chunk_error)?
            .into_iter()
            .map(|(ts, v)| (ts, Aggregate::single(ts, v)))
            .collect(),
        _ => chunk::decode_rollup(data).map_err(chunk_error)?,
    })
}

/// Rows of `resolution` of one series in `[from, to]` from its chunks (none for 1-hour).
fn read_chunk_rows(
    conn: &Connection,
    id: i64,
    resolution: Resolution,
    from_ms: EpochMillis,
    to_ms: EpochMillis,
) -> rusqlite::Result<Vec<(EpochMillis, Aggregate)>> {
    let Some(table) = chunk_table(resolution) else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT data FROM {table} WHERE series_id = ?1 AND start_ts BETWEEN ?2 AND ?3 AND end_ts >= ?4"
    ))?;
    let first_block = pipescope_core::tsdb::bucket_start(from_ms, CHUNK_MS);
    let mut rows = stmt.query(params![
        id,
        first_block as i64,
        to_ms as i64,
        from_ms as i64
    ])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let data = row.get_ref(0)?.as_blob()?;
        out.extend(
            decode_chunk(resolution, data)?
                .into_iter()
                .filter(|(ts, _)| (from_ms..=to_ms).contains(ts)),
        );
    }
    Ok(out)
}

/// Rows of `resolution` of one series in `[from, to]`, as aggregates: from its chunks, then
/// its head (a minute may have a row in both: late samples; readers merge by bucket).
fn read_rows(
    conn: &Connection,
    id: i64,
    resolution: Resolution,
    from_ms: EpochMillis,
    to_ms: EpochMillis,
) -> rusqlite::Result<Vec<(EpochMillis, Aggregate)>> {
    let mut out = read_chunk_rows(conn, id, resolution, from_ms, to_ms)?;
    let sql = match resolution {
        Resolution::Raw => {
            "SELECT ts, 1, value, value, value, value, ts FROM raw
             WHERE series_id = ?1 AND ts BETWEEN ?2 AND ?3"
        }
        Resolution::Minute => {
            "SELECT ts, count, sum, min, max, last, last_ts FROM m1
             WHERE series_id = ?1 AND ts BETWEEN ?2 AND ?3"
        }
        Resolution::Hour => {
            "SELECT ts, count, sum, min, max, last, last_ts FROM h1
             WHERE series_id = ?1 AND ts BETWEEN ?2 AND ?3"
        }
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params![id, from_ms as i64, to_ms as i64])?;
    while let Some(row) = rows.next()? {
        let ts = row.get::<_, i64>(0)? as EpochMillis;
        out.push((
            ts,
            Aggregate {
                count: row.get::<_, i64>(1)? as u64,
                sum: row.get(2)?,
                min: row.get(3)?,
                max: row.get(4)?,
                last: row.get(5)?,
                last_ms: row.get::<_, i64>(6)? as EpochMillis,
            },
        ));
    }
    Ok(out)
}

/// The newest time and value of one series, from the finest resolution that has one (its
/// head or its newest chunk, whichever is newer).
fn read_last(conn: &Connection, id: i64) -> rusqlite::Result<Option<(EpochMillis, f64)>> {
    for (resolution, sql) in [
        (
            Resolution::Raw,
            "SELECT ts, value FROM raw WHERE series_id = ?1 ORDER BY ts DESC LIMIT 1",
        ),
        (
            Resolution::Minute,
            "SELECT last_ts, last FROM m1 WHERE series_id = ?1 ORDER BY ts DESC LIMIT 1",
        ),
        (
            Resolution::Hour,
            "SELECT last_ts, last FROM h1 WHERE series_id = ?1 ORDER BY ts DESC LIMIT 1",
        ),
    ] {
        let mut newest: Option<(EpochMillis, f64)> = None;
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![id])?;
        if let Some(row) = rows.next()? {
            newest = Some((row.get::<_, i64>(0)? as EpochMillis, row.get(1)?));
        }
        if let Some(table) = chunk_table(resolution) {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT data FROM {table} WHERE series_id = ?1 ORDER BY start_ts DESC LIMIT 1"
            ))?;
            let mut rows = stmt.query(params![id])?;
            if let Some(row) = rows.next()? {
                let chunk_last = decode_chunk(resolution, row.get_ref(0)?.as_blob()?)?
                    .into_iter()
                    .map(|(_, a)| (a.last_ms, a.last))
                    .max_by_key(|&(ts, _)| ts);
                if let Some(c) = chunk_last
                    && newest.is_none_or(|n| c.0 > n.0)
                {
                    newest = Some(c);
                }
            }
        }
        if newest.is_some() {
            return Ok(newest);
        }
    }
    Ok(None)
}

/// The statements of [`read_totals`] for `resolution`: the totals of the head's rows, their last
/// values, and the chunks in range (none for 1-hour roll-ups).
fn totals_statements(resolution: Resolution) -> (String, String, Option<String>) {
    let (table, count, sum, min, max, last, last_ts) = match resolution {
        Resolution::Raw => ("raw", "1", "value", "value", "value", "value", "ts"),
        Resolution::Minute => ("m1", "count", "sum", "min", "max", "last", "last_ts"),
        Resolution::Hour => ("h1", "count", "sum", "min", "max", "last", "last_ts"),
    };
    let range = format!(
        "FROM {table} WHERE series_id IN (SELECT id FROM series WHERE metric = ?1)
         AND ts BETWEEN ?2 AND ?3 GROUP BY series_id"
    );
    (
        format!(
            "SELECT series_id, sum({count}), sum({sum}), min({min}), max({max}), max({last_ts}) {range}"
        ),
        // With max() the only aggregate, SQLite takes the bare column from the row holding it.
        format!("SELECT series_id, max({last_ts}), {last} {range}"),
        chunk_table(resolution).map(|table| {
            format!(
                "SELECT series_id, data FROM {table}
                 WHERE series_id IN (SELECT id FROM series WHERE metric = ?1)
                 AND start_ts BETWEEN ?2 AND ?3 AND end_ts >= ?4"
            )
        }),
    )
}

/// One aggregate per series of `metric` over the rows of `resolution` in `[from, to]`,
/// summed up by SQLite (no row leaves it). `last` is read only when `with_last`; otherwise
/// it is NaN, and `last_ms` is the newest time either way.
fn read_totals(
    conn: &Connection,
    metric: &str,
    ids: &HashSet<i64>,
    resolution: Resolution,
    from_ms: EpochMillis,
    to_ms: EpochMillis,
    with_last: bool,
) -> rusqlite::Result<HashMap<i64, Aggregate>> {
    let (totals_sql, last_sql, chunks_sql) = totals_statements(resolution);
    let lower = resolution.bucket_start(from_ms) as i64;
    let mut out = HashMap::new();
    let mut stmt = conn.prepare_cached(&totals_sql)?;
    let mut rows = stmt.query(params![metric, lower, to_ms as i64])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        if ids.contains(&id) {
            out.insert(
                id,
                Aggregate {
                    count: row.get::<_, i64>(1)? as u64,
                    sum: row.get(2)?,
                    min: row.get(3)?,
                    max: row.get(4)?,
                    last: f64::NAN,
                    last_ms: row.get::<_, i64>(5)? as EpochMillis,
                },
            );
        }
    }
    if with_last {
        let mut stmt = conn.prepare_cached(&last_sql)?;
        let mut rows = stmt.query(params![metric, lower, to_ms as i64])?;
        while let Some(row) = rows.next()? {
            if let Some(a) = out.get_mut(&row.get::<_, i64>(0)?) {
                a.last = row.get(2)?;
            }
        }
    }
    // Then the chunks' rows in range, summed up here.
    if let Some(chunks_sql) = chunks_sql {
        let mut stmt = conn.prepare_cached(&chunks_sql)?;
        let first_block = pipescope_core::tsdb::bucket_start(lower as u64, CHUNK_MS);
        let mut rows = stmt.query(params![metric, first_block as i64, to_ms as i64, lower])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            if !ids.contains(&id) {
                continue;
            }
            for (ts, a) in decode_chunk(resolution, row.get_ref(1)?.as_blob()?)? {
                if ts < lower as u64 || ts > to_ms {
                    continue;
                }
                out.entry(id).and_modify(|t| t.merge(&a)).or_insert(a);
            }
        }
    }
    Ok(out)
}

/// What SQLite's header of the database says against the file, without reading the rest: an
/// error naming what is wrong when the file is not a database, or shorter than the header says
/// (truncated). A missing or empty file is a new store. The size is judged only without a
/// write-ahead log: a checkpoint cut short may leave the file short, and the log completes it.
fn check_header(db: &Path) -> Result<(), String> {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(db) else {
        return Ok(()); // absent (new) or unreadable: opening it says why
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Ok(());
    }
    let mut header = [0u8; 100];
    if file.read_exact(&mut header).is_err() || !header.starts_with(b"SQLite format 3\0") {
        return Err(format!(
            "{len} bytes without an SQLite header: not a database"
        ));
    }
    let wal_len = std::fs::metadata(db.with_file_name(format!("{DB_FILE}-wal")))
        .map(|m| m.len())
        .unwrap_or(0);
    let be32 = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().unwrap());
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(be32(28));
    // SQLite trusts the page count only when the change counter matches "valid for".
    let count_valid = pages > 0 && be32(24) == be32(92);
    if wal_len == 0 && count_valid && len < pages * page_size {
        return Err(format!(
            "truncated: its header counts {pages} pages of {page_size} bytes, the file has {len} bytes"
        ));
    }
    Ok(())
}

/// Renames the store's database in `dir` (with its write-ahead log and shared memory, if any)
/// to `store.db.corrupt-<UTC time>`, beside it; returns the new path of the database.
pub fn move_aside(dir: &Path) -> Result<PathBuf, StoreError> {
    let db = dir.join(DB_FILE);
    let stamp: String = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let mut target = dir.join(format!("{DB_FILE}.corrupt-{stamp}"));
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = dir.join(format!("{DB_FILE}.corrupt-{stamp}-{n}"));
    }
    let moved = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|source| StoreError::MoveAside {
            path: from.to_path_buf(),
            source,
        })
    };
    moved(&db, &target)?;
    // The log belongs to the database it was written for: keep them together.
    for suffix in ["-wal", "-shm"] {
        let from = dir.join(format!("{DB_FILE}{suffix}"));
        if from.exists() {
            let mut to = target.clone().into_os_string();
            to.push(suffix);
            moved(&from, Path::new(&to))?;
        }
    }
    Ok(target)
}

/// The retention `[store]` in the configuration asks for.
pub fn retention_from(config: &crate::config::StoreConfig) -> Retention {
    Retention {
        raw_ms: config.retention_raw.as_millis() as u64,
        minute_ms: config.retention_1m.as_millis() as u64,
        hour_ms: config.retention_1h.as_millis() as u64,
    }
}

/// Bytes of the store's files in `dir`.
pub fn size_bytes(dir: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(dir.join(format!("{DB_FILE}{suffix}"))).ok())
        .map(|m| m.len())
        .sum()
}

fn init_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // auto_vacuum must be set before the first table exists; it lets pruning give pages back.
    conn.execute_batch(
        "PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         -- NORMAL in WAL mode: a commit survives a process crash; only a power loss can undo
         -- the newest commits, and it never corrupts the file.
         PRAGMA synchronous = NORMAL;
         PRAGMA journal_size_limit = 67108864;
         -- Batches touch the newest page of every series they carry, in key order: a cache
         -- smaller than those pages gains little from one commit to the next, so it is kept at
         -- 16 MiB (bench/store ingests as fast as with 64 MiB, which a big cluster's writer
         -- filled). The log is copied into the file less often (every 32 MiB), so a page
         -- written by several commits is copied once.
         PRAGMA cache_size = -16384;
         PRAGMA wal_autocheckpoint = 8192;
         -- Keyed by what names a series, so that text is stored once (a table with a rowid
         -- and a unique index held it twice). The writer numbers new series.
         CREATE TABLE IF NOT EXISTS series (
             metric TEXT NOT NULL,
             labels TEXT NOT NULL,
             id INTEGER NOT NULL,
             PRIMARY KEY (metric, labels)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS raw (
             series_id INTEGER NOT NULL,
             ts INTEGER NOT NULL,
             value REAL NOT NULL,
             PRIMARY KEY (series_id, ts)
         ) WITHOUT ROWID;",
    )?;
    migrate_series_table(conn)?;
    // Closed blocks of raw samples and of 1-minute roll-ups, compressed: one row per series
    // and block (tsdb::chunk). `end_ts` is the newest row's time, `count` the samples held (or,
    // for 1-minute chunks, summarized). Stores from before chunks open as they are: their rows
    // are the head, compacted by the first prune.
    for table in ["raw_chunks", "m1_chunks"] {
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                 series_id INTEGER NOT NULL, start_ts INTEGER NOT NULL, end_ts INTEGER NOT NULL,
                 count INTEGER NOT NULL, data BLOB NOT NULL,
                 PRIMARY KEY (series_id, start_ts)
             ) WITHOUT ROWID;"
        ))?;
    }
    // The rollups, per minute and per hour, have the same columns.
    for table in ["m1", "h1"] {
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                 series_id INTEGER NOT NULL, ts INTEGER NOT NULL,
                 count INTEGER NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
                 last REAL NOT NULL, last_ts INTEGER NOT NULL,
                 PRIMARY KEY (series_id, ts)
             ) WITHOUT ROWID;"
        ))?;
    }
    Ok(())
}

/// Moves the series of a store written before the series table was keyed by (metric, labels)
/// (a rowid table with a unique index: the text twice) into the current table, ids kept.
fn migrate_series_table(conn: &Connection) -> rusqlite::Result<()> {
    let with_rowid: bool = conn.query_row(
        "SELECT wr = 0 FROM pragma_table_list WHERE schema = 'main' AND name = 'series'",
        [],
        |r| r.get(0),
    )?;
    if !with_rowid {
        return Ok(());
    }
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         CREATE TABLE series_keyed (
             metric TEXT NOT NULL,
             labels TEXT NOT NULL,
             id INTEGER NOT NULL,
             PRIMARY KEY (metric, labels)
         ) WITHOUT ROWID;
         INSERT INTO series_keyed (metric, labels, id) SELECT metric, labels, id FROM series;
         DROP TABLE series;
         ALTER TABLE series_keyed RENAME TO series;
         COMMIT;",
    )?;
    // Give the old table's pages back to the file system.
    let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = vacuum.query([])?;
    while rows.next()?.is_some() {}
    tracing::info!("store: the series table was rewritten keyed by metric and labels");
    Ok(())
}

/// Labels as a JSON object with sorted keys: one canonical text per label set.
fn encode_labels(labels: &Labels) -> String {
    let map: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn decode_labels(text: &str) -> Labels {
    match serde_json::from_str::<BTreeMap<String, String>>(text) {
        Ok(map) => Labels::new(map),
        Err(e) => {
            // Only this module writes the column, so this is a bug or a damaged file: say so.
            tracing::error!("store: unreadable labels {text:?} ({e}); shown as no labels");
            Labels::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_through_their_canonical_text() {
        let labels = Labels::new([("topic", "a\"b"), ("cluster", "prod")]);
        let text = encode_labels(&labels);
        assert_eq!(text, r#"{"cluster":"prod","topic":"a\"b"}"#);
        assert_eq!(decode_labels(&text), labels);
        assert_eq!(encode_labels(&Labels::default()), "{}");
    }

    /// SQL that keeps a reader busy for seconds (well beyond the query budget the tests set).
    const SLOW_SQL: &str = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 40000000) SELECT count(*) FROM n";

    fn open_empty(dir: &Path) -> (Store, Writer) {
        Store::open(
            dir,
            Retention::default(),
            Arc::new(pipescope_core::ManualClock::at(0)),
            4,
        )
        .unwrap()
    }

    /// What SQLite plans for `sql` (parameters bound to 1), one step a line.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let params = vec![1; stmt.parameter_count()];
        stmt.query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect::<Vec<_>>()
        .join("\n")
    }

    #[test]
    fn queries_by_metric_or_series_search_an_index_and_scan_no_table() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, writer) = open_empty(dir.path());
        writer.close();
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let mut statements = vec![SERIES_OF_METRIC.to_string(), writer::SERIES_ID.to_string()];
        for resolution in [Resolution::Raw, Resolution::Minute, Resolution::Hour] {
            let (totals, last, chunks) = totals_statements(resolution);
            statements.extend([totals, last]);
            statements.extend(chunks);
        }
        for sql in &statements {
            let plan = plan(&conn, sql);
            assert!(
                plan.contains("SEARCH series USING PRIMARY KEY (metric=?"),
                "{sql}:\n{plan}"
            );
            assert!(!plan.contains("SCAN"), "{sql}:\n{plan}");
        }
        // Listing every series reads the table in its key's order, with no sort.
        let plan = plan(&conn, EVERY_SERIES);
        assert_eq!(plan, "SCAN series", "{plan}");
    }

    #[test]
    fn a_slow_query_does_not_hold_up_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let (store, writer) = open_empty(dir.path());
        // So that the slow query ends soon after the test has what it needs.
        store.set_query_limits(QueryLimits {
            time_budget: Duration::from_secs(3),
            ..QueryLimits::default()
        });
        let (started_tx, started) = std::sync::mpsc::channel();
        let slow = store.clone();
        std::thread::spawn(move || {
            slow.with_reader(|conn| {
                started_tx.send(()).unwrap();
                conn.query_row(SLOW_SQL, [], |r| r.get::<_, i64>(0))
            })
        });
        started.recv().unwrap();
        let (answered_tx, answered) = std::sync::mpsc::channel();
        let quick = store.clone();
        std::thread::spawn(move || answered_tx.send(quick.series(None, &[]).map(|s| s.len())));
        let answer = answered
            .recv_timeout(std::time::Duration::from_secs(2))
            .expect("a quick query waited behind a slow one");
        assert_eq!(answer.unwrap(), 0);
        writer.close();
    }

    #[test]
    fn a_query_past_its_time_budget_is_stopped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (store, writer) = open_empty(dir.path());
        store.set_query_limits(QueryLimits {
            time_budget: Duration::from_millis(200),
            ..QueryLimits::default()
        });
        let started = Instant::now();
        let err = store
            .with_reader(|conn| conn.query_row(SLOW_SQL, [], |r| r.get::<_, i64>(0)))
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "stopped only after {:?}",
            started.elapsed()
        );
        assert!(matches!(err, StoreError::TimedOut { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the query took longer than its budget of 200ms and was stopped — ask for a shorter range, a larger step, or fewer series with match="
        );
        assert_eq!(store.stats().query_timed_out.load(Ordering::Relaxed), 1);
        // The connection goes back to the pool unbounded by the old deadline.
        store.set_query_limits(QueryLimits::default());
        assert_eq!(store.series(None, &[]).unwrap().len(), 0);
        writer.close();
    }

    #[test]
    fn a_query_waits_for_a_free_reader_within_its_budget_then_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let (store, writer) = open_empty(dir.path());
        store.set_query_limits(QueryLimits {
            time_budget: Duration::from_millis(300),
            ..QueryLimits::default()
        });
        let far = Instant::now() + Duration::from_secs(60);
        let taken: Vec<_> = (0..READERS)
            .map(|_| store.inner.readers.take(far).expect("a free reader"))
            .collect();
        let err = store.series(None, &[]).unwrap_err();
        assert!(matches!(err, StoreError::ReadersBusy { .. }), "{err:?}");
        assert_eq!(store.stats().query_readers_busy.load(Ordering::Relaxed), 1);
        drop(taken);
        assert_eq!(store.series(None, &[]).unwrap().len(), 0);
        writer.close();
    }
}
