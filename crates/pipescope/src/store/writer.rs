//! The writer thread: owns the write connection, commits each batch of queued samples in one
//! transaction (with its roll-ups), and prunes what is older than the retention.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipescope_core::tsdb::{Aggregate, Resolution, Retention, bucket_start, chunk, roll_up};
use pipescope_core::{Clock, EpochMillis, Labels, Sample};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::{CHUNK_MS, StoreError, StoreStats, chunk_error, encode_labels};
use crate::bus::{Batch, BusReceiver};

/// Samples committed together at most, so one transaction stays short.
const MAX_SAMPLES_PER_COMMIT: usize = 250_000;
/// How often data older than its retention is deleted (and closed blocks compacted).
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// A block of time is compacted into chunks once it ended this long ago, so that samples a
/// little late still land in the head.
const COMPACT_AFTER_MS: u64 = 10 * 60_000;

enum Message {
    Batch(Batch),
    /// A batch whose sender waits to know whether it was committed (`/write`).
    Store(Batch, SyncSender<Result<(), String>>),
    /// Answered once everything queued before it is committed.
    Flush(SyncSender<()>),
    /// Prune now, then answer.
    Prune(SyncSender<()>),
    /// Commit everything queued before it, then end the thread.
    Close,
}

/// The sending side of the writer thread's queue. [`Writer::close`] (or dropping every clone)
/// stops the thread after it has written what was queued.
#[derive(Debug, Clone)]
pub struct Writer {
    sender: SyncSender<Message>,
    stats: Arc<StoreStats>,
    thread: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Batch(b) => write!(f, "Batch({} samples)", b.len()),
            Message::Store(b, _) => write!(f, "Store({} samples)", b.len()),
            Message::Flush(_) => f.write_str("Flush"),
            Message::Prune(_) => f.write_str("Prune"),
            Message::Close => f.write_str("Close"),
        }
    }
}

impl Writer {
    pub(super) fn start(
        conn: Connection,
        retention: Retention,
        clock: Arc<dyn Clock>,
        stats: Arc<StoreStats>,
        queue_batches: usize,
    ) -> Self {
        let (sender, receiver) = sync_channel(queue_batches.max(1));
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("pipescope-store-writer".into())
            .spawn(move || {
                WriterThread {
                    conn,
                    retention,
                    clock,
                    stats: thread_stats,
                    series_ids: HashMap::new(),
                    next_series_id: None,
                    compacted_cut: None,
                    chunked_below: None,
                    over_budget: false,
                }
                .run(receiver)
            })
            .expect("spawn the store writer thread");
        Self {
            sender,
            stats,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
        }
    }

    /// Queues a batch without waiting. When the queue is full the batch is dropped and its
    /// samples are counted in `pipescope_store_samples_dropped_total`.
    pub fn submit(&self, batch: Batch) -> bool {
        let n = batch.len() as u64;
        self.stats.queue_depth.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(Message::Batch(batch)) {
            Ok(()) => true,
            Err(e) => {
                self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
                self.stats.samples_dropped.fetch_add(n, Ordering::Relaxed);
                match e {
                    TrySendError::Full(_) => tracing::warn!(
                        samples = n,
                        "store writer queue is full (the disk is slower than the samples arrive); batch dropped"
                    ),
                    TrySendError::Disconnected(_) => {
                        tracing::error!(samples = n, "store writer has stopped; batch dropped")
                    }
                }
                false
            }
        }
    }

    /// Queues a batch and waits until it is committed: an error when the queue is full, the
    /// writer has stopped or the commit failed (nothing of the batch is stored then).
    pub fn store(&self, batch: Batch) -> Result<(), StoreError> {
        let n = batch.len() as u64;
        let (tx, rx) = sync_channel(1);
        self.stats.queue_depth.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.sender.try_send(Message::Store(batch, tx)) {
            self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
            self.stats.samples_dropped.fetch_add(n, Ordering::Relaxed);
            return Err(match e {
                TrySendError::Full(_) => StoreError::QueueFull,
                TrySendError::Disconnected(_) => StoreError::WriterGone,
            });
        }
        rx.recv()
            .map_err(|_| StoreError::WriterGone)?
            .map_err(StoreError::WriteFailed)
    }

    /// Waits until everything queued so far is committed.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.request(Message::Flush)
    }

    /// Deletes what is older than the retention now (it also happens every minute).
    pub fn prune(&self) -> Result<(), StoreError> {
        self.request(Message::Prune)
    }

    fn request(&self, make: fn(SyncSender<()>) -> Message) -> Result<(), StoreError> {
        let (tx, rx) = sync_channel(1);
        self.sender
            .send(make(tx))
            .map_err(|_| StoreError::WriterGone)?;
        rx.recv().map_err(|_| StoreError::WriterGone)
    }

    /// Stops the thread after it has written what was queued, and waits for it. Batches that
    /// other clones submit afterwards are dropped and counted.
    pub fn close(self) {
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        let _ = self.sender.send(Message::Close);
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the store writer thread panicked");
        }
    }
}

/// Forwards every batch from the bus that is not stored yet to the writer until the bus closes.
pub async fn feed_from_bus(mut receiver: BusReceiver, writer: Writer) {
    while let Some(batch) = receiver.recv_unstored().await {
        writer.submit(batch);
    }
}

struct WriterThread {
    conn: Connection,
    retention: Retention,
    clock: Arc<dyn Clock>,
    stats: Arc<StoreStats>,
    series_ids: HashMap<String, HashMap<Labels, i64>>,
    /// The id the next new series gets (read from the table when first needed).
    next_series_id: Option<i64>,
    /// Blocks before this were compacted by the newest compaction (none yet: `None`).
    compacted_cut: Option<EpochMillis>,
    /// Samples before this may be in a chunk (read from the database when first needed).
    chunked_below: Option<EpochMillis>,
    /// Whether the store is in an episode of dropping data for its size budget (logged once).
    over_budget: bool,
}

impl WriterThread {
    fn run(mut self, receiver: Receiver<Message>) {
        let mut next_prune = Instant::now();
        loop {
            if Instant::now() >= next_prune {
                self.prune_logged();
                next_prune = Instant::now() + PRUNE_EVERY;
            }
            let first =
                match receiver.recv_timeout(next_prune.saturating_duration_since(Instant::now())) {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
            // Coalesce what is already queued into one transaction.
            let mut batches = Vec::new();
            let mut replies = Vec::new();
            let mut stored_replies = Vec::new();
            let mut prune = false;
            let mut closing = false;
            let mut samples = 0;
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Batch(b) => {
                        self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
                        samples += b.len();
                        batches.push(b);
                    }
                    Message::Store(b, reply) => {
                        self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
                        samples += b.len();
                        batches.push(b);
                        stored_replies.push(reply);
                    }
                    Message::Flush(reply) => replies.push(reply),
                    Message::Prune(reply) => {
                        prune = true;
                        replies.push(reply);
                    }
                    Message::Close => closing = true,
                }
                if samples < MAX_SAMPLES_PER_COMMIT
                    && replies.is_empty()
                    && stored_replies.is_empty()
                    && !closing
                {
                    next = receiver.try_recv().ok();
                }
            }
            let mut outcome = Ok(());
            if !batches.is_empty() {
                match self.write(&batches) {
                    Ok((written, invalid)) => {
                        if self.stats.write_failing.swap(0, Ordering::Relaxed) == 1 {
                            tracing::warn!("store: commits succeed again");
                        }
                        self.stats.write_batches.fetch_add(1, Ordering::Relaxed);
                        self.stats
                            .samples_written
                            .fetch_add(written, Ordering::Relaxed);
                        self.stats
                            .samples_dropped
                            .fetch_add(invalid, Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.stats
                            .samples_dropped
                            .fetch_add(samples as u64, Ordering::Relaxed);
                        self.stats.write_failures.fetch_add(1, Ordering::Relaxed);
                        self.stats.write_failing.store(1, Ordering::Relaxed);
                        // The cache may name series the rolled-back transaction created.
                        self.series_ids.clear();
                        self.next_series_id = None;
                        tracing::error!(
                            samples,
                            "store: cannot write a batch ({e}); it is dropped — is the disk full?"
                        );
                        outcome = Err(e.to_string());
                    }
                }
            }
            if prune {
                self.prune_logged();
            }
            for reply in replies {
                let _ = reply.send(());
            }
            for reply in stored_replies {
                let _ = reply.send(outcome.clone());
            }
            if closing {
                break;
            }
        }
        tracing::debug!("store writer stopped");
    }

    /// Writes the batches in one transaction; returns how many samples were stored and how many
    /// were NaN (which cannot be stored). A repeated sample (same series and time) is stored once.
    fn write(&mut self, batches: &[Batch]) -> rusqlite::Result<(u64, u64)> {
        let mut invalid = 0;
        // IMMEDIATE: the write lock is taken first, so a lock another connection holds is waited
        // for (the busy timeout); a deferred transaction that read first would fail at once.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut rows: Vec<(i64, u64, f64)> =
            Vec::with_capacity(batches.iter().map(|b| b.len()).sum());
        for sample in batches.iter().flat_map(|b| b.iter()) {
            if sample.value.is_nan() {
                invalid += 1;
                continue;
            }
            let id = series_id(&tx, &mut self.series_ids, &mut self.next_series_id, sample)?;
            rows.push((id, sample.time_ms, sample.value));
        }
        // In key order the B-tree is filled page after page instead of jumping between series
        // (the stable sort keeps the first of two samples with the same series and time).
        rows.sort_by_key(|&(id, ts, _)| (id, ts));
        let mut fresh: Vec<(i64, u64, f64)> = Vec::with_capacity(rows.len());
        // Times already in a chunk (a late sample of a compacted block), per series and block.
        let mut chunked: HashMap<(i64, EpochMillis), HashSet<EpochMillis>> = HashMap::new();
        {
            let mut insert_raw = tx.prepare_cached(
                "INSERT OR IGNORE INTO raw (series_id, ts, value) VALUES (?1, ?2, ?3)",
            )?;
            let mut read_chunk = tx.prepare_cached(
                "SELECT data FROM raw_chunks WHERE series_id = ?1 AND start_ts = ?2",
            )?;
            let open_block = match self.chunked_below {
                Some(t) => t,
                None => *self.chunked_below.insert(chunked_below(&tx)?),
            };
            for (id, ts, value) in rows {
                if ts < open_block {
                    let block = bucket_start(ts, CHUNK_MS);
                    let times = match chunked.entry((id, block)) {
                        std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
                        std::collections::hash_map::Entry::Vacant(unknown) => {
                            let data: Option<Vec<u8>> = read_chunk
                                .query_row(params![id, block as i64], |r| r.get(0))
                                .optional()?;
                            let times = match data.map(|d| chunk::decode_raw(&d)) {
                                Some(Ok(points)) => points.into_iter().map(|p| p.0).collect(),
                                Some(Err(e)) => {
                                    tracing::error!(
                                        series_id = id,
                                        block,
                                        "store: a raw chunk is damaged ({e}); late samples of its hour are kept beside it"
                                    );
                                    HashSet::new()
                                }
                                None => HashSet::new(),
                            };
                            unknown.insert(times)
                        }
                    };
                    if times.contains(&ts) {
                        continue;
                    }
                }
                if insert_raw.execute(params![id, ts as i64, value])? == 1 {
                    fresh.push((id, ts, value));
                }
            }
            for (table, resolution) in [("m1", Resolution::Minute), ("h1", Resolution::Hour)] {
                let mut upsert = tx.prepare_cached(&format!(
                    "INSERT INTO {table} (series_id, ts, count, sum, min, max, last, last_ts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (series_id, ts) DO UPDATE SET
                         count = count + excluded.count,
                         sum = sum + excluded.sum,
                         min = min(min, excluded.min),
                         max = max(max, excluded.max),
                         last = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last ELSE last END,
                         last_ts = max(last_ts, excluded.last_ts)"
                ))?;
                for ((id, bucket), a) in roll_up(fresh.iter().copied(), resolution) {
                    upsert.execute(params![
                        id,
                        bucket as i64,
                        a.count as i64,
                        a.sum,
                        a.min,
                        a.max,
                        a.last,
                        a.last_ms as i64
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok((fresh.len() as u64, invalid))
    }

    fn prune_logged(&mut self) {
        if let Err(e) = self.prune() {
            tracing::error!("store: cannot delete data older than the retention ({e})");
        }
    }

    fn prune(&mut self) -> rusqlite::Result<()> {
        let now = self.clock.now_millis();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        for (table, resolution) in [
            ("raw", Resolution::Raw),
            ("m1", Resolution::Minute),
            ("h1", Resolution::Hour),
        ] {
            // Per series, so the primary key finds the old rows without a full scan.
            deleted += tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE series_id IN (SELECT id FROM series) AND ts < ?1"
                ),
                params![self.retention.cutoff(resolution, now) as i64],
            )?;
        }
        for table in ["raw_chunks", "m1_chunks"] {
            // Whole chunks: one whose newest row is past the cutoff stays until it is not.
            let resolution = if table == "raw_chunks" {
                Resolution::Raw
            } else {
                Resolution::Minute
            };
            deleted += tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE series_id IN (SELECT id FROM series) AND end_ts < ?1"
                ),
                params![self.retention.cutoff(resolution, now) as i64],
            )?;
        }
        let cut = bucket_start(now.saturating_sub(COMPACT_AFTER_MS), CHUNK_MS);
        if self.compacted_cut != Some(cut) {
            deleted += compact(&tx, cut)?;
        }
        let budget = self.stats.max_disk_size.load(Ordering::Relaxed);
        let dropped = keep_to_budget(&tx, budget, &mut self.over_budget)?;
        deleted += (dropped.0 + dropped.1) as usize;
        let gone = tx.execute(
            "DELETE FROM series WHERE NOT EXISTS (SELECT 1 FROM raw WHERE series_id = series.id)
               AND NOT EXISTS (SELECT 1 FROM m1 WHERE series_id = series.id)
               AND NOT EXISTS (SELECT 1 FROM h1 WHERE series_id = series.id)
               AND NOT EXISTS (SELECT 1 FROM raw_chunks WHERE series_id = series.id)
               AND NOT EXISTS (SELECT 1 FROM m1_chunks WHERE series_id = series.id)",
            [],
        )?;
        tx.commit()?;
        if self.compacted_cut != Some(cut) {
            self.compacted_cut = Some(cut);
            self.chunked_below = None;
        }
        self.stats
            .budget_dropped_raw
            .fetch_add(dropped.0, Ordering::Relaxed);
        self.stats
            .budget_dropped_minute
            .fetch_add(dropped.1, Ordering::Relaxed);
        if gone > 0 {
            self.series_ids.clear();
        }
        if deleted > 0 {
            // Give the freed pages back to the file system, and keep the WAL small.
            // Each step of this pragma frees pages: run it to the end.
            let mut vacuum = self.conn.prepare("PRAGMA incremental_vacuum")?;
            let mut rows = vacuum.query([])?;
            while rows.next()?.is_some() {}
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            tracing::debug!(rows = deleted, series = gone, "store: pruned old data");
        }
        Ok(())
    }
}

/// While the database's pages in use exceed `budget` bytes (`[store] max_disk_size`; 0: none),
/// drops the oldest block of time: raw chunks first, then the raw head, then 1-minute chunks and
/// rows (the 1-hour roll-ups are never dropped for the budget). Returns the samples dropped from
/// raw data and those the dropped 1-minute rows summarized; `over_budget` tells whether an
/// episode is under way, so that it is logged once.
fn keep_to_budget(
    tx: &Transaction,
    budget: u64,
    over_budget: &mut bool,
) -> rusqlite::Result<(u64, u64)> {
    if budget == 0 {
        return Ok((0, 0));
    }
    let mut dropped = (0, 0);
    while used_bytes(tx)? > budget {
        match drop_oldest(tx)? {
            Some((Resolution::Raw, samples)) => dropped.0 += samples,
            Some((_, samples)) => dropped.1 += samples,
            None => break,
        }
    }
    let over = used_bytes(tx)? > budget;
    if dropped != (0, 0) && !*over_budget {
        tracing::warn!(
            budget_bytes = budget,
            raw_samples = dropped.0,
            minute_samples = dropped.1,
            "store: the database reached [store] max_disk_size; dropping its oldest raw data (then 1-minute roll-ups) until it fits — raise max_disk_size or shorten the retention to keep more"
        );
    }
    if over && !*over_budget && dropped == (0, 0) {
        tracing::warn!(
            budget_bytes = budget,
            "store: the database exceeds [store] max_disk_size with only 1-hour roll-ups and series left — raise max_disk_size"
        );
    }
    *over_budget = dropped != (0, 0) || over;
    Ok(dropped)
}

/// Bytes of the database's pages in use (free pages are given back after the prune).
fn used_bytes(tx: &Transaction) -> rusqlite::Result<u64> {
    let pragma = |name: &str| tx.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    let used = pragma("page_count")? - pragma("freelist_count")?;
    Ok(used.max(0) as u64 * pragma("page_size")?.max(0) as u64)
}

/// Drops the oldest block of the finest data there is; what it was and how many samples it
/// held (or summarized), `None` when only 1-hour roll-ups are left.
fn drop_oldest(tx: &Transaction) -> rusqlite::Result<Option<(Resolution, u64)>> {
    let oldest = |sql: &str| tx.query_row(sql, [], |r| r.get::<_, Option<i64>>(0));
    if let Some(start) = oldest("SELECT min(start_ts) FROM raw_chunks")? {
        let samples: i64 = tx.query_row(
            "SELECT coalesce(sum(count), 0) FROM raw_chunks WHERE start_ts = ?1",
            params![start],
            |r| r.get(0),
        )?;
        tx.execute(
            "DELETE FROM raw_chunks WHERE series_id IN (SELECT id FROM series) AND start_ts = ?1",
            params![start],
        )?;
        return Ok(Some((Resolution::Raw, samples as u64)));
    }
    if let Some(ts) = oldest("SELECT min(ts) FROM raw")? {
        let end = bucket_start(ts as u64, CHUNK_MS) + CHUNK_MS;
        let samples = tx.execute(
            "DELETE FROM raw WHERE series_id IN (SELECT id FROM series) AND ts < ?1",
            params![end as i64],
        )?;
        return Ok(Some((Resolution::Raw, samples as u64)));
    }
    if let Some(start) = oldest("SELECT min(start_ts) FROM m1_chunks")? {
        let samples: i64 = tx.query_row(
            "SELECT coalesce(sum(count), 0) FROM m1_chunks WHERE start_ts = ?1",
            params![start],
            |r| r.get(0),
        )?;
        tx.execute(
            "DELETE FROM m1_chunks WHERE series_id IN (SELECT id FROM series) AND start_ts = ?1",
            params![start],
        )?;
        return Ok(Some((Resolution::Minute, samples as u64)));
    }
    if let Some(ts) = oldest("SELECT min(ts) FROM m1")? {
        let end = bucket_start(ts as u64, CHUNK_MS) + CHUNK_MS;
        let samples: i64 = tx.query_row(
            "SELECT coalesce(sum(count), 0) FROM m1 WHERE ts < ?1",
            params![end as i64],
            |r| r.get(0),
        )?;
        tx.execute(
            "DELETE FROM m1 WHERE series_id IN (SELECT id FROM series) AND ts < ?1",
            params![end as i64],
        )?;
        return Ok(Some((Resolution::Minute, samples as u64)));
    }
    Ok(None)
}

/// End of the newest raw chunk's block: samples before it may already be in a chunk.
fn chunked_below(tx: &Transaction) -> rusqlite::Result<EpochMillis> {
    let newest: Option<i64> =
        tx.query_row("SELECT max(start_ts) FROM raw_chunks", [], |r| r.get(0))?;
    Ok(newest.map_or(0, |s| s as u64 + CHUNK_MS))
}

/// Moves the head's rows (raw samples and 1-minute roll-ups) of every block that ends by `cut`
/// into one chunk per series and block, merged with the block's chunk if it has one (late
/// samples). Returns the head rows moved.
fn compact(tx: &Transaction, cut: EpochMillis) -> rusqlite::Result<usize> {
    let ids: Vec<i64> = tx
        .prepare("SELECT id FROM series")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut moved = 0;
    for id in ids {
        moved += compact_raw(tx, id, cut)?;
        moved += compact_minutes(tx, id, cut)?;
    }
    Ok(moved)
}

fn compact_raw(tx: &Transaction, id: i64, cut: EpochMillis) -> rusqlite::Result<usize> {
    let mut blocks: BTreeMap<EpochMillis, BTreeMap<EpochMillis, f64>> = BTreeMap::new();
    {
        let mut head =
            tx.prepare_cached("SELECT ts, value FROM raw WHERE series_id = ?1 AND ts < ?2")?;
        let mut rows = head.query(params![id, cut as i64])?;
        while let Some(row) = rows.next()? {
            let ts = row.get::<_, i64>(0)? as u64;
            blocks
                .entry(bucket_start(ts, CHUNK_MS))
                .or_default()
                .insert(ts, row.get(1)?);
        }
    }
    let mut moved = 0;
    for (block, mut points) in blocks {
        let existing: Option<Vec<u8>> = tx
            .prepare_cached("SELECT data FROM raw_chunks WHERE series_id = ?1 AND start_ts = ?2")?
            .query_row(params![id, block as i64], |r| r.get(0))
            .optional()?;
        if let Some(data) = existing {
            match chunk::decode_raw(&data) {
                // The chunk's sample wins over a head one at the same time (stored first).
                Ok(old) => points.extend(old),
                Err(e) => {
                    tracing::error!(
                        series_id = id,
                        block,
                        "store: a raw chunk is damaged ({e}); its hour's later samples stay in the head"
                    );
                    continue;
                }
            }
        }
        let points: Vec<(EpochMillis, f64)> = points.into_iter().collect();
        let data = chunk::encode_raw(&points).map_err(chunk_error)?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO raw_chunks (series_id, start_ts, end_ts, count, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            id,
            block as i64,
            points.last().map_or(block, |p| p.0) as i64,
            points.len() as i64,
            data
        ])?;
        moved += tx
            .prepare_cached("DELETE FROM raw WHERE series_id = ?1 AND ts >= ?2 AND ts < ?3")?
            .execute(params![id, block as i64, (block + CHUNK_MS) as i64])?;
    }
    Ok(moved)
}

fn compact_minutes(tx: &Transaction, id: i64, cut: EpochMillis) -> rusqlite::Result<usize> {
    let mut blocks: BTreeMap<EpochMillis, BTreeMap<EpochMillis, Aggregate>> = BTreeMap::new();
    {
        let mut head = tx.prepare_cached(
            "SELECT ts, count, sum, min, max, last, last_ts FROM m1 WHERE series_id = ?1 AND ts < ?2",
        )?;
        let mut rows = head.query(params![id, cut as i64])?;
        while let Some(row) = rows.next()? {
            let ts = row.get::<_, i64>(0)? as u64;
            let a = Aggregate {
                count: row.get::<_, i64>(1)? as u64,
                sum: row.get(2)?,
                min: row.get(3)?,
                max: row.get(4)?,
                last: row.get(5)?,
                last_ms: row.get::<_, i64>(6)? as u64,
            };
            blocks
                .entry(bucket_start(ts, CHUNK_MS))
                .or_default()
                .insert(ts, a);
        }
    }
    let mut moved = 0;
    for (block, mut rows) in blocks {
        let existing: Option<Vec<u8>> = tx
            .prepare_cached("SELECT data FROM m1_chunks WHERE series_id = ?1 AND start_ts = ?2")?
            .query_row(params![id, block as i64], |r| r.get(0))
            .optional()?;
        if let Some(data) = existing {
            match chunk::decode_rollup(&data) {
                Ok(old) => {
                    for (ts, a) in old {
                        rows.entry(ts).and_modify(|r| r.merge(&a)).or_insert(a);
                    }
                }
                Err(e) => {
                    tracing::error!(
                        series_id = id,
                        block,
                        "store: a 1-minute chunk is damaged ({e}); its hour's later roll-ups stay in the head"
                    );
                    continue;
                }
            }
        }
        let rows: Vec<(EpochMillis, Aggregate)> = rows.into_iter().collect();
        let data = chunk::encode_rollup(&rows).map_err(chunk_error)?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO m1_chunks (series_id, start_ts, end_ts, count, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            id,
            block as i64,
            rows.last().map_or(block, |r| r.0) as i64,
            rows.iter().map(|r| r.1.count).sum::<u64>() as i64,
            data
        ])?;
        moved += tx
            .prepare_cached("DELETE FROM m1 WHERE series_id = ?1 AND ts >= ?2 AND ts < ?3")?
            .execute(params![id, block as i64, (block + CHUNK_MS) as i64])?;
    }
    Ok(moved)
}

/// The id of a series by its metric and labels' text.
pub(super) const SERIES_ID: &str = "SELECT id FROM series WHERE metric = ?1 AND labels = ?2";

/// The id of the sample's series, numbering it `next_id` (then the highest id + 1, read once)
/// when new.
fn series_id(
    conn: &Connection,
    cache: &mut HashMap<String, HashMap<Labels, i64>>,
    next_id: &mut Option<i64>,
    sample: &Sample,
) -> rusqlite::Result<i64> {
    if let Some(id) = cache
        .get(&*sample.metric)
        .and_then(|by_labels| by_labels.get(&sample.labels))
    {
        return Ok(*id);
    }
    let labels = encode_labels(&sample.labels);
    let known: Option<i64> = conn
        .prepare_cached(SERIES_ID)?
        .query_row(params![sample.metric, labels], |r| r.get(0))
        .optional()?;
    let id = match known {
        Some(id) => id,
        None => {
            let id = match *next_id {
                Some(id) => id,
                None => conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM series", [], |r| {
                    r.get(0)
                })?,
            };
            conn.prepare_cached("INSERT INTO series (metric, labels, id) VALUES (?1, ?2, ?3)")?
                .execute(params![sample.metric, labels, id])?;
            *next_id = Some(id + 1);
            id
        }
    };
    cache
        .entry(sample.metric.to_string())
        .or_default()
        .insert(sample.labels.clone(), id);
    Ok(id)
}
