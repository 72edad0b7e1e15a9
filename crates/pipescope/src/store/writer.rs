//! The writer thread: owns the write connection, commits each batch of queued samples in one
//! transaction (with its roll-ups), and prunes what is older than the retention.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipescope_core::tsdb::{Resolution, Retention, roll_up};
use pipescope_core::{Clock, Labels, Sample};
use rusqlite::{Connection, params};

use super::{StoreError, StoreStats, encode_labels};
use crate::bus::{Batch, BusReceiver};

/// Samples committed together at most, so one transaction stays short.
const MAX_SAMPLES_PER_COMMIT: usize = 250_000;
/// How often data older than its retention is deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

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
        let tx = self.conn.transaction()?;
        let mut rows: Vec<(i64, u64, f64)> =
            Vec::with_capacity(batches.iter().map(|b| b.len()).sum());
        for sample in batches.iter().flat_map(|b| b.iter()) {
            if sample.value.is_nan() {
                invalid += 1;
                continue;
            }
            let id = series_id(&tx, &mut self.series_ids, sample)?;
            rows.push((id, sample.time_ms, sample.value));
        }
        // In key order the B-tree is filled page after page instead of jumping between series
        // (the stable sort keeps the first of two samples with the same series and time).
        rows.sort_by_key(|&(id, ts, _)| (id, ts));
        let mut fresh: Vec<(i64, u64, f64)> = Vec::with_capacity(rows.len());
        {
            let mut insert_raw = tx.prepare_cached(
                "INSERT OR IGNORE INTO raw (series_id, ts, value) VALUES (?1, ?2, ?3)",
            )?;
            for (id, ts, value) in rows {
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
        let tx = self.conn.transaction()?;
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
        let gone = tx.execute(
            "DELETE FROM series WHERE NOT EXISTS (SELECT 1 FROM raw WHERE series_id = series.id)
               AND NOT EXISTS (SELECT 1 FROM m1 WHERE series_id = series.id)
               AND NOT EXISTS (SELECT 1 FROM h1 WHERE series_id = series.id)",
            [],
        )?;
        tx.commit()?;
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

fn series_id(
    conn: &Connection,
    cache: &mut HashMap<String, HashMap<Labels, i64>>,
    sample: &Sample,
) -> rusqlite::Result<i64> {
    if let Some(id) = cache
        .get(&*sample.metric)
        .and_then(|by_labels| by_labels.get(&sample.labels))
    {
        return Ok(*id);
    }
    let labels = encode_labels(&sample.labels);
    conn.prepare_cached("INSERT OR IGNORE INTO series (metric, labels) VALUES (?1, ?2)")?
        .execute(params![sample.metric, labels])?;
    let id = conn
        .prepare_cached("SELECT id FROM series WHERE metric = ?1 AND labels = ?2")?
        .query_row(params![sample.metric, labels], |r| r.get(0))?;
    cache
        .entry(sample.metric.to_string())
        .or_default()
        .insert(sample.labels.clone(), id);
    Ok(id)
}
