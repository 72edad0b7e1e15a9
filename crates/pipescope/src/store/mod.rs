//! The embedded time-series store: SQLite (bundled) in WAL mode, in the directory `[store] path`.
//!
//! Series are a metric name plus labels. Raw samples are kept with 1-minute and 1-hour roll-ups
//! (count, sum, min, max, last), each pruned after its own retention. One writer thread owns the
//! write connection and commits whole batches in one transaction each, so a crash (even
//! `kill -9`) loses at most the batch being written and never leaves a half-written one; queries
//! use their own connection and never wait for the writer (WAL readers see the last commit).

pub mod api;
pub mod metrics;
pub mod write_api;
mod writer;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};

use pipescope_core::tsdb::{
    Aggregate, AggregateFn, Matcher, Resolution, Retention, choose_resolution, downsample,
    matcher::matches_all, split_exact, top_n,
};
use pipescope_core::{Clock, EpochMillis, Labels};
use rusqlite::{Connection, OpenFlags, params};

pub use writer::{Writer, feed_from_bus};

/// File name of the database inside the store directory.
pub const DB_FILE: &str = "store.db";

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
    #[error("store query failed ({0})")]
    Query(#[from] rusqlite::Error),
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
    /// Batches waiting for the writer.
    pub queue_depth: AtomicI64,
    /// Samples `/write` refused because their name is pipescope's own (`pipescope_*`).
    pub write_refused_reserved_name: AtomicU64,
    /// Samples `/write` refused because its series cap was reached.
    pub write_refused_series_limit: AtomicU64,
}

/// A handle for queries; clones share one read connection.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    reader: Mutex<Connection>,
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
        let open_err = |source| StoreError::Open {
            path: db.clone(),
            source,
        };
        let write_conn = Connection::open(&db).map_err(open_err)?;
        init_schema(&write_conn).map_err(open_err)?;
        let reader = Connection::open_with_flags(
            &db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        reader
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        let stats = Arc::new(StoreStats::default());
        let store = Store {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                reader: Mutex::new(reader),
                retention,
                clock: clock.clone(),
                stats: stats.clone(),
            }),
        };
        let writer = Writer::start(write_conn, retention, clock, stats, queue_batches);
        Ok((store, writer))
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

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        // A panic in another query cannot leave the connection half-used: take it anyway.
        let conn = self
            .inner
            .reader
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(f(&conn)?)
    }

    /// Series that exist, of one metric or of all, that match every matcher.
    pub fn series(
        &self,
        metric: Option<&str>,
        matchers: &[Matcher],
    ) -> Result<Vec<SeriesInfo>, StoreError> {
        Ok(self
            .matching_series(metric, matchers)?
            .into_iter()
            .map(|(_, info)| info)
            .collect())
    }

    fn matching_series(
        &self,
        metric: Option<&str>,
        matchers: &[Matcher],
    ) -> Result<Vec<(i64, SeriesInfo)>, StoreError> {
        let rows = self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, metric, labels FROM series WHERE ?1 IS NULL OR metric = ?1 ORDER BY metric, labels",
            )?;
            let rows = stmt.query_map(params![metric], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, metric, labels)| {
                (
                    id,
                    SeriesInfo {
                        metric,
                        labels: decode_labels(&labels),
                    },
                )
            })
            .filter(|(_, s)| matches_all(matchers, &s.labels))
            .collect())
    }

    /// Rows of `resolution` for the series `ids` of `metric` in `[from, to]`, as aggregates.
    fn read_rows(
        &self,
        metric: &str,
        ids: &HashSet<i64>,
        resolution: Resolution,
        from_ms: EpochMillis,
        to_ms: EpochMillis,
    ) -> Result<BTreeMap<i64, Vec<(EpochMillis, Aggregate)>>, StoreError> {
        let sql = match resolution {
            Resolution::Raw => {
                "SELECT series_id, ts, 1, value, value, value, value, ts FROM raw
                 WHERE series_id IN (SELECT id FROM series WHERE metric = ?1) AND ts BETWEEN ?2 AND ?3"
            }
            Resolution::Minute => {
                "SELECT series_id, ts, count, sum, min, max, last, last_ts FROM m1
                 WHERE series_id IN (SELECT id FROM series WHERE metric = ?1) AND ts BETWEEN ?2 AND ?3"
            }
            Resolution::Hour => {
                "SELECT series_id, ts, count, sum, min, max, last, last_ts FROM h1
                 WHERE series_id IN (SELECT id FROM series WHERE metric = ?1) AND ts BETWEEN ?2 AND ?3"
            }
        };
        // A roll-up bucket that starts before `from` still holds samples inside the range.
        let lower = resolution.bucket_start(from_ms);
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(sql)?;
            let mut rows = stmt.query(params![metric, lower as i64, to_ms as i64])?;
            let mut out: BTreeMap<i64, Vec<(EpochMillis, Aggregate)>> = BTreeMap::new();
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                if !ids.contains(&id) {
                    continue;
                }
                let ts = row.get::<_, i64>(1)? as EpochMillis;
                let aggregate = Aggregate {
                    count: row.get::<_, i64>(2)? as u64,
                    sum: row.get(3)?,
                    min: row.get(4)?,
                    max: row.get(5)?,
                    last: row.get(6)?,
                    last_ms: row.get::<_, i64>(7)? as EpochMillis,
                };
                out.entry(id).or_default().push((ts, aggregate));
            }
            Ok(out)
        })
    }

    /// One aggregate per series of `metric` over the rows of `resolution` in `[from, to]`,
    /// summed up by SQLite (no row leaves it). `last` is read only when `with_last`; otherwise
    /// it is NaN, and `last_ms` is the newest time either way.
    fn read_totals(
        &self,
        metric: &str,
        ids: &HashSet<i64>,
        resolution: Resolution,
        from_ms: EpochMillis,
        to_ms: EpochMillis,
        with_last: bool,
    ) -> Result<HashMap<i64, Aggregate>, StoreError> {
        let (table, count, sum, min, max, last, last_ts) = match resolution {
            Resolution::Raw => ("raw", "1", "value", "value", "value", "value", "ts"),
            Resolution::Minute => ("m1", "count", "sum", "min", "max", "last", "last_ts"),
            Resolution::Hour => ("h1", "count", "sum", "min", "max", "last", "last_ts"),
        };
        let range = format!(
            "FROM {table} WHERE series_id IN (SELECT id FROM series WHERE metric = ?1)
             AND ts BETWEEN ?2 AND ?3 GROUP BY series_id"
        );
        let totals_sql = format!(
            "SELECT series_id, sum({count}), sum({sum}), min({min}), max({max}), max({last_ts}) {range}"
        );
        // With max() the only aggregate, SQLite takes the bare column from the row holding it.
        let last_sql = format!("SELECT series_id, max({last_ts}), {last} {range}");
        let lower = resolution.bucket_start(from_ms) as i64;
        self.with_reader(|conn| {
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
            Ok(out)
        })
    }

    /// Values of every matching series of `metric` in `[from, to]`, one point per `step_ms`
    /// (aligned to the epoch), read from the resolution the step and the age of `from` call for.
    pub fn range(
        &self,
        metric: &str,
        matchers: &[Matcher],
        from_ms: EpochMillis,
        to_ms: EpochMillis,
        step_ms: u64,
        function: AggregateFn,
    ) -> Result<RangeResult, StoreError> {
        let resolution = choose_resolution(from_ms, step_ms, self.now_ms(), &self.inner.retention);
        let series = self.matching_series(Some(metric), matchers)?;
        let ids: HashSet<i64> = series.iter().map(|(id, _)| *id).collect();
        let mut rows = self.read_rows(metric, &ids, resolution, from_ms, to_ms)?;
        let lower = resolution.bucket_start(from_ms);
        let mut out = Vec::new();
        for (id, info) in series {
            let Some(points) = rows.remove(&id) else {
                continue;
            };
            let points = downsample(points, lower, to_ms, step_ms)
                .into_iter()
                .map(|(ts, a)| (ts, a.get(function)))
                .collect();
            out.push((info.labels, points));
        }
        Ok(RangeResult {
            resolution,
            series: out,
        })
    }

    /// The newest value of each matching series of `metric` (from the finest resolution that
    /// still has one).
    pub fn last(&self, metric: &str, matchers: &[Matcher]) -> Result<Vec<SeriesValue>, StoreError> {
        let series = self.matching_series(Some(metric), matchers)?;
        let mut out = Vec::new();
        for (id, info) in series {
            let found = self.with_reader(|conn| {
                for sql in [
                    "SELECT ts, value FROM raw WHERE series_id = ?1 ORDER BY ts DESC LIMIT 1",
                    "SELECT last_ts, last FROM m1 WHERE series_id = ?1 ORDER BY ts DESC LIMIT 1",
                    "SELECT last_ts, last FROM h1 WHERE series_id = ?1 ORDER BY ts DESC LIMIT 1",
                ] {
                    let mut stmt = conn.prepare_cached(sql)?;
                    let mut rows = stmt.query(params![id])?;
                    if let Some(row) = rows.next()? {
                        return Ok(Some((row.get::<_, i64>(0)? as EpochMillis, row.get(1)?)));
                    }
                }
                Ok(None)
            })?;
            if let Some((time_ms, value)) = found {
                out.push(SeriesValue {
                    labels: info.labels,
                    time_ms,
                    value,
                });
            }
        }
        Ok(out)
    }

    /// The `n` matching series of `metric` with the highest `function` of their values in
    /// `[from, to]`, highest first.
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
        let series = self.matching_series(Some(metric), matchers)?;
        let ids: HashSet<i64> = series.iter().map(|(id, _)| *id).collect();
        let with_last = function == AggregateFn::Last;
        let mut totals: HashMap<i64, Aggregate> = HashMap::new();
        let mut add = |part: HashMap<i64, Aggregate>| {
            for (id, a) in part {
                totals.entry(id).and_modify(|t| t.merge(&a)).or_insert(a);
            }
        };
        let read =
            |resolution, from, to| self.read_totals(metric, &ids, resolution, from, to, with_last);
        if resolution == Resolution::Raw {
            // Whole hours from the 1-hour roll-ups, whole minutes from the 1-minute ones, the
            // edges from raw rows: the same aggregates from up to 60 or 3,600 times fewer rows.
            for (part, from, to) in split_exact(from_ms, to_ms) {
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
    }

    /// `PRAGMA integrity_check`: "ok" for a sound database.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.with_reader(|conn| conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
    }
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
         -- Batches touch the newest page of every series they carry: keep those pages in
         -- memory (64 MiB at most) and copy the log into the file less often (every 32 MiB),
         -- so a page written by several commits is copied once.
         PRAGMA cache_size = -65536;
         PRAGMA wal_autocheckpoint = 8192;
         CREATE TABLE IF NOT EXISTS series (
             id INTEGER PRIMARY KEY,
             metric TEXT NOT NULL,
             labels TEXT NOT NULL,
             UNIQUE (metric, labels)
         );
         CREATE TABLE IF NOT EXISTS raw (
             series_id INTEGER NOT NULL,
             ts INTEGER NOT NULL,
             value REAL NOT NULL,
             PRIMARY KEY (series_id, ts)
         ) WITHOUT ROWID;",
    )?;
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
}
