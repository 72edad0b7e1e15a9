//! Committed offsets read from `__consumer_offsets` (kminion's way) instead of asked group by
//! group: a reader task per cluster Fetches every partition of the topic from its leader, from
//! the log start on, into a [`CommittedOffsets`] table; a scrape takes the listed groups'
//! commits from the table once it has caught up (`committed_offsets` in the cluster's config:
//! docs/scale.md). Its requests go on connections of its own, so its waiting Fetch delays no
//! scrape.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, ListOffsetsRequest, TopicName};
use pipescope_core::kafka::offsets_topic::{CommittedOffsets, DEFAULT_MAX_COMMITS, OFFSETS_TOPIC};

use super::metadata::Layout;
use super::{Item, Scraper, code_error, name};
use crate::config::CommittedOffsetsMode;
use crate::kafka::conn::Pool;
use crate::kafka::state::{CommittedOffset, CommittedOffsetsSource, OffsetsTopicProgress};

/// `auto` reads `__consumer_offsets` past this many groups: below it OffsetFetch (many groups
/// per request on v8+) is cheap, and the reader's memory (every commit of the cluster) is not
/// worth it.
pub const AUTO_OFFSETS_TOPIC_GROUPS: usize = 2_000;
/// Fetch v11: as the record Fetch (records.rs).
const FETCH_MAX: i16 = 11;
const LIST_OFFSETS_MAX: i16 = 8;
/// Bytes asked per partition; doubled (up to the most) for a partition whose next batch is
/// bigger.
const PARTITION_BYTES: i32 = 1024 * 1024;
const MAX_PARTITION_BYTES: i32 = 64 * 1024 * 1024;
/// How long a Fetch waits at the end of the log for new commits.
const FETCH_WAIT_MS: i32 = 500;
/// Pause after a failed round before the next, doubling up to the most.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Committed offsets per group, as the group chain keeps them.
type GroupCommits = HashMap<String, Item<Vec<CommittedOffset>>>;

/// What the reader task and the scrapes share.
#[derive(Debug, Default)]
struct Shared {
    /// The leader's address of each partition of `__consumer_offsets` (index: partition), as
    /// the latest scrape's metadata gave them.
    leaders: Vec<Option<String>>,
    table: Option<CommittedOffsets>,
    error: Option<String>,
}

/// The reader of one cluster's `__consumer_offsets`; the task stops when this drops.
#[derive(Debug)]
pub(super) struct OffsetsTopicReader {
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OffsetsTopicReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The leaders of `__consumer_offsets`'s partitions in `layout`, or `None` when the cluster
/// has no such topic (tansu keeps commits elsewhere).
pub(super) fn offsets_topic_leaders(layout: &Layout) -> Option<Vec<Option<String>>> {
    let mut leaders: BTreeMap<i32, String> = BTreeMap::new();
    for (id, parts) in &layout.by_leader {
        for (topic, partition) in parts {
            if topic == OFFSETS_TOPIC
                && let Some(addr) = layout.addr_of.get(id)
            {
                leaders.insert(*partition, addr.clone());
            }
        }
    }
    let count = usize::try_from(*leaders.keys().next_back()? + 1).ok()?;
    let mut out = vec![None; count];
    for (p, addr) in leaders {
        if let Ok(p) = usize::try_from(p) {
            out[p] = Some(addr);
        }
    }
    Some(out)
}

/// Whether this scrape should read commits from the topic, and why not.
pub(super) fn wants_offsets_topic(
    mode: CommittedOffsetsMode,
    has_topic: bool,
    groups: usize,
) -> bool {
    match mode {
        CommittedOffsetsMode::OffsetFetch => false,
        CommittedOffsetsMode::OffsetsTopic => has_topic,
        CommittedOffsetsMode::Auto => has_topic && groups > AUTO_OFFSETS_TOPIC_GROUPS,
    }
}

impl OffsetsTopicReader {
    /// Starts reading on `pool` (connections of the reader's own) on the current runtime.
    pub fn start(pool: Pool, leaders: Vec<Option<String>>) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            leaders,
            ..Shared::default()
        }));
        let task = tokio::spawn(read_forever(pool, Arc::clone(&shared)));
        Self { shared, task }
    }

    /// The leaders as the latest metadata gives them.
    pub fn set_leaders(&self, leaders: Vec<Option<String>>) {
        self.shared.lock().expect("offsets topic lock").leaders = leaders;
    }

    /// The reader's progress now.
    pub fn progress(&self) -> OffsetsTopicProgress {
        let shared = self.shared.lock().expect("offsets topic lock");
        let mut progress = OffsetsTopicProgress {
            error: shared.error.clone(),
            ..OffsetsTopicProgress::default()
        };
        if let Some(table) = &shared.table {
            progress.caught_up = table.caught_up();
            progress.lag_records = table.lag_records();
            progress.commits = table.len();
            progress.undecodable_records = table.counts().undecodable;
            progress.dropped_commits = table.counts().dropped;
        }
        progress
    }

    /// The commits of `groups`, once the reader has caught up and is reading (no error since
    /// its last good round); else `None`: the scrape asks with OffsetFetch.
    pub fn commits(&self, groups: &[String]) -> Option<GroupCommits> {
        let shared = self.shared.lock().expect("offsets topic lock");
        if shared.error.is_some() {
            return None;
        }
        let table = shared.table.as_ref()?;
        let mut out = HashMap::with_capacity(groups.len());
        for group in groups {
            let commits = table.group(group)?;
            let commits = commits
                .into_iter()
                .map(|(topic, partition, c)| CommittedOffset {
                    topic: topic.into(),
                    partition,
                    committed: c.offset,
                    metadata: None,
                    record_time_ms: None,
                    record_time_error: None,
                })
                .collect();
            out.insert(group.clone(), Ok(commits));
        }
        Some(out)
    }
}

/// The source of a scrape's commits, for its state.
pub(super) fn source(
    reader: Option<&OffsetsTopicReader>,
    from_offsets_topic: bool,
) -> CommittedOffsetsSource {
    CommittedOffsetsSource {
        from_offsets_topic,
        reader: reader.map(OffsetsTopicReader::progress),
    }
}

impl Scraper {
    /// The commits of `groups` from `__consumer_offsets` when the mode says so and the reader
    /// has caught up (else `None`: OffsetFetch), and where they came from. Starts the reader
    /// when first wanted; stops it when no longer wanted.
    pub(super) fn commits_from_offsets_topic(
        &self,
        layout: &Layout,
        groups: &[String],
    ) -> (Option<GroupCommits>, CommittedOffsetsSource) {
        let leaders = if self.committed_offsets == CommittedOffsetsMode::OffsetFetch {
            None
        } else {
            offsets_topic_leaders(layout)
        };
        let mut reader = self.offsets_reader.lock().expect("offsets reader lock");
        let Some(leaders) =
            leaders.filter(|_| wants_offsets_topic(self.committed_offsets, true, groups.len()))
        else {
            *reader = None;
            return (None, source(None, false));
        };
        let reader = match &mut *reader {
            Some(r) => {
                r.set_leaders(leaders);
                r
            }
            empty => empty.insert(OffsetsTopicReader::start(
                Pool::new(self.pool.options().clone()),
                leaders,
            )),
        };
        let commits = reader.commits(groups);
        let from_topic = commits.is_some();
        (commits, source(Some(reader), from_topic))
    }
}

/// Reads rounds until aborted; a failed round is retried after a pause.
async fn read_forever(pool: Pool, shared: Arc<Mutex<Shared>>) {
    let mut retry = FIRST_RETRY;
    let mut partition_bytes: Vec<i32> = Vec::new();
    loop {
        match read_round(&pool, &shared, &mut partition_bytes).await {
            Ok(()) => {
                shared.lock().expect("offsets topic lock").error = None;
                retry = FIRST_RETRY;
            }
            Err(e) => {
                tracing::debug!("{OFFSETS_TOPIC} reader: {e}");
                shared.lock().expect("offsets topic lock").error = Some(e);
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

/// One round: the table made when there is none (ListOffsets earliest and latest of every
/// partition), then one Fetch per leader of its partitions from their positions.
async fn read_round(
    pool: &Pool,
    shared: &Arc<Mutex<Shared>>,
    partition_bytes: &mut Vec<i32>,
) -> Result<(), String> {
    let leaders = shared.lock().expect("offsets topic lock").leaders.clone();
    let mut by_leader: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (p, leader) in leaders.iter().enumerate() {
        let leader = leader
            .as_deref()
            .ok_or_else(|| format!("partition {p} of {OFFSETS_TOPIC} has no leader"))?;
        by_leader.entry(leader).or_default().push(p as i32);
    }
    let table_fits = {
        let shared = shared.lock().expect("offsets topic lock");
        shared
            .table
            .as_ref()
            .is_some_and(|t| t.progress().len() == leaders.len())
    };
    if !table_fits {
        let table = new_table(pool, &by_leader, leaders.len()).await?;
        shared.lock().expect("offsets topic lock").table = Some(table);
        *partition_bytes = vec![PARTITION_BYTES; leaders.len()];
    }
    let (positions, at_end) = {
        let shared = shared.lock().expect("offsets topic lock");
        let table = shared.table.as_ref().expect("made above");
        let positions: Vec<i64> = table.progress().iter().map(|p| p.position).collect();
        (positions, table.lag_records() == 0)
    };
    let wait_ms = if at_end { FETCH_WAIT_MS } else { 0 };
    let answers = join_all(by_leader.iter().map(|(addr, parts)| {
        let request = fetch_request(parts, &positions, partition_bytes, wait_ms);
        async move {
            pool.request(addr, FETCH_MAX, &request)
                .await
                .map_err(|e| format!("Fetch of {OFFSETS_TOPIC}: {e}"))
        }
    }))
    .await;
    let mut first_error = None;
    let mut fetched = Vec::new();
    for answer in answers {
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        if let Some(e) = code_error(response.error_code, None) {
            first_error.get_or_insert(format!("Fetch of {OFFSETS_TOPIC}: {e}"));
            continue;
        }
        for t in response.responses {
            for p in t.partitions {
                fetched.push(p);
            }
        }
    }
    // Decoding is CPU work (all commits of the cluster at start): off the runtime.
    let shared_table = Arc::clone(shared);
    let partition_errors = tokio::task::spawn_blocking(move || {
        let mut shared = shared_table.lock().expect("offsets topic lock");
        let table = shared.table.as_mut().expect("made above");
        let mut grown = Vec::new();
        let mut errors = Vec::new();
        for p in fetched {
            let Ok(index) = usize::try_from(p.partition_index) else {
                continue;
            };
            match p.error_code {
                0 => {
                    let moved = table.apply_fetched(index, p.records.as_ref(), p.high_watermark);
                    let left = p.records.as_ref().is_some_and(|r| !r.is_empty());
                    if !moved && left {
                        grown.push(index);
                    }
                }
                // OFFSET_OUT_OF_RANGE: the log start moved past the position (compaction).
                1 if p.log_start_offset >= 0 => {
                    table.advance(index, p.log_start_offset, p.high_watermark);
                }
                code => errors.push(format!(
                    "Fetch of {OFFSETS_TOPIC} partition {index}: {}",
                    code_error(code, None).unwrap_or_default()
                )),
            }
        }
        (grown, errors)
    })
    .await
    .map_err(|e| format!("reading {OFFSETS_TOPIC} batches failed: {e}"))?;
    let (grown, errors) = partition_errors;
    for index in grown {
        if let Some(bytes) = partition_bytes.get_mut(index) {
            *bytes = bytes.saturating_mul(2).min(MAX_PARTITION_BYTES);
        }
    }
    match first_error.or(errors.into_iter().next()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A table starting at each partition's log start, caught up at its end of now.
async fn new_table(
    pool: &Pool,
    by_leader: &BTreeMap<&str, Vec<i32>>,
    partitions: usize,
) -> Result<CommittedOffsets, String> {
    let mut starts = vec![0i64; partitions];
    let mut ends = vec![0i64; partitions];
    for (timestamp, out) in [(-2i64, &mut starts), (-1, &mut ends)] {
        let answers = join_all(
            by_leader
                .iter()
                .map(|(addr, parts)| list_offsets(pool, addr, parts, timestamp)),
        )
        .await;
        for answer in answers {
            for (p, offset) in answer? {
                if let Some(slot) = usize::try_from(p).ok().and_then(|p| out.get_mut(p)) {
                    *slot = offset;
                }
            }
        }
    }
    Ok(CommittedOffsets::new(&starts, &ends, DEFAULT_MAX_COMMITS))
}

async fn list_offsets(
    pool: &Pool,
    addr: &str,
    parts: &[i32],
    timestamp: i64,
) -> Result<Vec<(i32, i64)>, String> {
    let mut request = ListOffsetsRequest::default();
    request.replica_id = (-1).into();
    request.timeout_ms = pool.options().timeout.as_millis() as i32;
    request.topics = vec![super::offsets::list_offsets_topic(
        OFFSETS_TOPIC,
        parts,
        timestamp,
    )];
    let response = pool
        .request(addr, LIST_OFFSETS_MAX, &request)
        .await
        .map_err(|e| format!("ListOffsets of {OFFSETS_TOPIC}: {e}"))?;
    let mut out = Vec::new();
    for t in &response.topics {
        for p in &t.partitions {
            if let Some(e) = code_error(p.error_code, None) {
                return Err(format!(
                    "ListOffsets of {OFFSETS_TOPIC} partition {} on {addr}: {e}",
                    p.partition_index
                ));
            }
            out.push((p.partition_index, p.offset));
        }
    }
    if out.len() != parts.len() {
        return Err(format!(
            "ListOffsets of {OFFSETS_TOPIC} on {addr}: {} of {} partitions answered",
            out.len(),
            parts.len()
        ));
    }
    Ok(out)
}

fn fetch_request(
    parts: &[i32],
    positions: &[i64],
    partition_bytes: &[i32],
    wait_ms: i32,
) -> FetchRequest {
    let mut request = FetchRequest::default();
    request.replica_id = (-1).into();
    request.max_wait_ms = wait_ms;
    request.min_bytes = 1;
    request.max_bytes = MAX_PARTITION_BYTES;
    // Read committed: an aborted transaction's commits never count.
    request.isolation_level = 1;
    request.session_id = 0;
    request.session_epoch = -1;
    let mut t = FetchTopic::default();
    t.topic = TopicName(name(OFFSETS_TOPIC));
    t.partitions = parts
        .iter()
        .map(|&p| {
            let mut fp = FetchPartition::default();
            fp.partition = p;
            fp.fetch_offset = positions.get(p as usize).copied().unwrap_or(0);
            fp.partition_max_bytes = partition_bytes
                .get(p as usize)
                .copied()
                .unwrap_or(PARTITION_BYTES);
            fp
        })
        .collect();
    request.topics = vec![t];
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_topic_auto_reads_the_topic_only_past_the_threshold_and_when_it_is_there() {
        use CommittedOffsetsMode::*;
        assert!(!wants_offsets_topic(Auto, true, AUTO_OFFSETS_TOPIC_GROUPS));
        assert!(wants_offsets_topic(
            Auto,
            true,
            AUTO_OFFSETS_TOPIC_GROUPS + 1
        ));
        assert!(!wants_offsets_topic(Auto, false, 1_000_000));
        assert!(wants_offsets_topic(OffsetsTopic, true, 1));
        assert!(!wants_offsets_topic(OffsetsTopic, false, 1));
        assert!(!wants_offsets_topic(OffsetFetch, true, 1_000_000));
    }
}
