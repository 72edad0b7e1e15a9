//! Fetch of the record at each lagging committed offset: its batch decompressed, its
//! timestamp read, the exact base of lag in seconds. The batches are read by
//! `pipescope_core::kafka::record_batch` (decompression bounded) on the blocking pool.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::join_all;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use pipescope_core::EpochMillis;
use pipescope_core::kafka::FastMap;
use pipescope_core::kafka::record_batch::{NoRecordTime, record_time};
use pipescope_core::kafka::record_time::lagging_positions;

use super::timing::StageTimer;
use super::{Item, Scraper, by_topic, code_error, name};
use crate::kafka::state::{ClusterState, GroupState, PartitionState, TopicState};

/// Fetch v12+ is flexible, and tansu 0.6 puts a top-level tagged field there that v12 does
/// not have (node endpoints, v16+): v11 carries everything needed here (and Fetch v13 names
/// topics by id).
const FETCH_MAX: i16 = 11;
/// Bytes asked for per partition when fetching the record at a committed offset: enough for
/// many batches; a larger batch is asked for again alone, and then comes whole (KIP-74).
const FETCH_PARTITION_BYTES: i32 = 16 * 1024;

/// Leaders asked for record times at once. Each leader's Fetch answers carry thousands of
/// partitions' batches: with all of a big cluster's leaders at once they were ~30 MB at the
/// scrape's peak. A leader whose offsets were not read (down, or slow) has no lagging position
/// here, so the cap does not queue healthy leaders behind timeouts.
const FETCH_LEADERS_AT_ONCE: usize = 4;

/// A partition of this scrape, by topic name (borrowed from the scrape's topics) and number.
type Key<'a> = (&'a str, i32);

/// The time of the record at each position this scrape knows, or why it is missing: (topic,
/// partition, offset) → time.
type RecordTimes<'a> = FastMap<(&'a str, i32, i64), Item<EpochMillis>>;

/// The offsets to fetch: leader → its partitions, each with its offsets in ascending order.
type Wanted<'a> = BTreeMap<i32, Vec<(Key<'a>, Vec<i64>)>>;

/// This scrape's partitions, found by topic name and partition. Found by place, so what is found
/// keeps the topics' lifetime whatever the name looked up with.
struct Partitions<'a> {
    list: Vec<(Key<'a>, &'a PartitionState)>,
    place: FastMap<Key<'a>, usize>,
}

impl<'a> Partitions<'a> {
    fn new(topics: &'a [TopicState]) -> Self {
        let list: Vec<(Key<'a>, &'a PartitionState)> = topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| ((t.name.as_str(), p.partition), p))
            })
            .collect();
        let place = list
            .iter()
            .enumerate()
            .map(|(i, (key, _))| (*key, i))
            .collect();
        Self { list, place }
    }

    fn get(&self, topic: &str, partition: i32) -> Option<(Key<'a>, &'a PartitionState)> {
        let &i = self.place.get(&(topic, partition))?;
        Some(self.list[i])
    }

    /// A partition's place in the list and its end offset, when its offsets are known.
    fn end_of(&self, topic: &str, partition: i32) -> Option<(usize, i64)> {
        let &i = self.place.get(&(topic, partition))?;
        let p = self.list[i].1;
        p.earliest.as_ref().ok()?;
        Some((i, *p.latest.as_ref().ok()?))
    }
}

impl Scraper {
    /// Phase: the timestamps of the records at lagging committed offsets (the positions
    /// `lagging_positions` gives). The record at an offset keeps its timestamp, so one the
    /// previous scrape read is not fetched again (a stalled group's commit stays put), unless
    /// its topic was made anew since; the rest are fetched from their leaders. The times, or why
    /// one is missing, go on the groups' commits.
    pub(super) async fn read_record_times(
        &self,
        stages: &StageTimer,
        previous: Option<&ClusterState>,
        addr_of: &HashMap<i32, String>,
        topics: &[TopicState],
        groups: &mut [GroupState],
    ) {
        let partitions = Partitions::new(topics);
        let known = KnownRecordTimes::new(previous, topics, &partitions);
        let commits = groups
            .iter()
            .filter_map(|g| g.offsets.as_ref().ok())
            .flatten()
            .map(|c| (&*c.topic, c.partition, c.committed));
        let positions = lagging_positions(commits, |topic, partition| {
            partitions.end_of(topic, partition)
        });
        let (mut times, wanted) = plan(&positions, &partitions, &known);
        // Not needed while the answers are waited for.
        drop((known, positions));
        // Collected first: a stream over the iterator's closures is not `Send` for every
        // lifetime the compiler asks about.
        let requests: Vec<_> = wanted
            .iter()
            .filter_map(|(leader, parts)| Some((addr_of.get(leader)?, parts)))
            .map(|(addr, parts)| self.record_times(addr, parts))
            .collect();
        let fetched: Vec<_> = stages
            .time(
                "Fetch",
                futures::stream::iter(requests)
                    .buffer_unordered(FETCH_LEADERS_AT_ONCE)
                    .collect(),
            )
            .await;
        times.extend(fetched.into_iter().flatten());
        mark_commits(groups, &partitions, &times);
    }

    /// Timestamps of the records at the given offsets, from the partitions' leader: one Fetch
    /// per round, round k holding each partition's k-th wanted offset.
    async fn record_times<'a>(
        &self,
        addr: &str,
        parts: &[(Key<'a>, Vec<i64>)],
    ) -> Vec<((&'a str, i32, i64), Item<EpochMillis>)> {
        let rounds = parts.iter().map(|(_, offsets)| offsets.len()).max();
        let requests = (0..rounds.unwrap_or(0)).map(|round| {
            let wanted: Vec<(Key<'a>, i64)> = parts
                .iter()
                .filter_map(|(key, offsets)| Some((*key, *offsets.get(round)?)))
                .collect();
            async move {
                let answers = self.fetch_round(addr, &wanted).await;
                wanted.into_iter().zip(answers).collect::<Vec<_>>()
            }
        });
        let mut results: Vec<_> = join_all(requests).await.into_iter().flatten().collect();
        // A batch bigger than the per-partition limit comes whole only to a partition asked
        // for first: ask again for those alone (rare, so few requests).
        let retries = results
            .iter()
            .enumerate()
            .filter(|(_, (_, r))| matches!(r, Err(e) if e.incomplete))
            .map(|(i, (position, _))| {
                let wanted = [*position];
                async move {
                    let answer = self.fetch_round(addr, &wanted).await;
                    (i, answer.into_iter().next())
                }
            });
        for (i, answer) in join_all(retries).await {
            if let Some(answer) = answer {
                results[i].1 = answer;
            }
        }
        results
            .into_iter()
            .map(|(((topic, partition), offset), r)| {
                ((topic, partition, offset), r.map_err(|e| e.message))
            })
            .collect()
    }

    /// One Fetch of the records at `wanted` (at most one offset per partition): the answers in
    /// the order of `wanted`.
    async fn fetch_round(
        &self,
        addr: &str,
        wanted: &[(Key<'_>, i64)],
    ) -> Vec<Result<EpochMillis, NoRecordTime>> {
        let fail_all = |reason: NoRecordTime| vec![Err(reason); wanted.len()];
        let response = match self
            .pool
            .request(addr, FETCH_MAX, &fetch_request(wanted))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return fail_all(NoRecordTime::from(format!(
                    "Fetch of the record at the committed offset: {e}"
                )));
            }
        };
        if let Some(e) = code_error(response.error_code, None) {
            return fail_all(NoRecordTime::from(format!("Fetch: {e}")));
        }
        let alone = wanted.len() == 1;
        // Thousands of partitions per answer: look their place up, not scan for it.
        let place: FastMap<Key, usize> = wanted
            .iter()
            .enumerate()
            .map(|(i, (key, _))| (*key, i))
            .collect();
        let mut out: Vec<Option<Result<EpochMillis, NoRecordTime>>> = vec![None; wanted.len()];
        // The record batches to read: decompressing is CPU work, done off the runtime.
        let mut batches: Vec<(usize, i64, Option<Bytes>)> = Vec::new();
        for t in &response.responses {
            for p in &t.partitions {
                let Some(&i) = place.get(&(t.topic.0.as_str(), p.partition_index)) else {
                    continue;
                };
                let offset = wanted[i].1;
                out[i] = Some(match code_error(p.error_code, None) {
                    Some(e) if p.error_code == 1 => Err(NoRecordTime::from(format!(
                        "the record at offset {offset} is gone ({e}); the log starts at {}",
                        p.log_start_offset
                    ))),
                    Some(e) => Err(NoRecordTime::from(format!("Fetch: {e}"))),
                    None => {
                        batches.push((i, offset, p.records.clone()));
                        continue;
                    }
                });
            }
        }
        // The batches share the answer's buffer; the decoded answer around them is let go now,
        // not after they are read (a big cluster's Fetch answers are tens of MB together).
        drop(response);
        let read = tokio::task::spawn_blocking(move || {
            batches
                .into_iter()
                .map(|(i, offset, records)| (i, record_time(records.as_ref(), offset)))
                .collect::<Vec<_>>()
        })
        .await;
        match read {
            Ok(read) => {
                for (i, value) in read {
                    // Asked alone, the broker returns the whole first batch: no retry.
                    out[i] = Some(value.map_err(|e| NoRecordTime {
                        incomplete: e.incomplete && !alone,
                        ..e
                    }));
                }
            }
            Err(e) => {
                return fail_all(NoRecordTime::from(format!(
                    "reading the record batches failed: {e}"
                )));
            }
        }
        out.into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    Err(NoRecordTime::from(
                        "the broker left this partition out of its Fetch answer".to_string(),
                    ))
                })
            })
            .collect()
    }
}

/// What to do about each lagging position: its time or why there is none when known without a
/// Fetch (the record is gone to retention; the previous scrape read it), else its place in a
/// Fetch from its leader. `positions` are (place in `partitions`, offset), a partition's
/// together, ascending.
fn plan<'a>(
    positions: &[(usize, i64)],
    partitions: &Partitions<'a>,
    known: &KnownRecordTimes,
) -> (RecordTimes<'a>, Wanted<'a>) {
    let mut times: RecordTimes = FastMap::default();
    let mut wanted: Wanted = BTreeMap::new();
    for &(place, offset) in positions {
        let (key, p) = partitions.list[place];
        let time = match p.earliest {
            Ok(earliest) if offset < earliest => Some(Err(format!(
                "the record at offset {offset} is gone (the log starts at {earliest})"
            ))),
            _ => known.get(place, offset).map(Ok),
        };
        if let Some(time) = time {
            times.insert((key.0, key.1, offset), time);
        } else if let Some(leader) = p.leader {
            let parts = wanted.entry(leader).or_default();
            match parts.last_mut() {
                Some((last, offsets)) if *last == key => offsets.push(offset),
                _ => parts.push((key, vec![offset])),
            }
        }
    }
    (times, wanted)
}

/// Puts on every committed offset of `groups` its record's time, or why it is missing.
fn mark_commits(groups: &mut [GroupState], partitions: &Partitions, times: &RecordTimes) {
    for c in groups
        .iter_mut()
        .filter_map(|g| g.offsets.as_mut().ok())
        .flatten()
    {
        let Some((_, p)) = partitions.get(&c.topic, c.partition) else {
            c.record_time_error = Some("not fetched: the partition is not in the metadata".into());
            continue;
        };
        if let (Err(e), _) | (_, Err(e)) = (&p.earliest, &p.latest) {
            c.record_time_error = Some(
                format!("not fetched: the partition's offsets are unknown this scrape ({e})")
                    .into(),
            );
            continue;
        }
        match times.get(&(&*c.topic, c.partition, c.committed)) {
            Some(Ok(t)) => c.record_time_ms = Some(*t),
            Some(Err(e)) => c.record_time_error = Some(e.as_str().into()),
            None => {}
        }
    }
}

/// The Fetch request for the records at `wanted`, each partition with its own byte limit.
fn fetch_request(wanted: &[(Key, i64)]) -> FetchRequest {
    let by_topic = by_topic(
        wanted
            .iter()
            .map(|&((topic, partition), offset)| (topic, (partition, offset))),
    );
    let mut request = FetchRequest::default();
    request.replica_id = (-1).into();
    request.max_wait_ms = 0;
    request.min_bytes = 0;
    request.max_bytes = FETCH_PARTITION_BYTES.saturating_mul(wanted.len().max(1) as i32);
    request.isolation_level = 0;
    request.session_id = 0;
    request.session_epoch = -1;
    request.topics = by_topic
        .iter()
        .map(|(topic, partitions)| {
            let mut t = FetchTopic::default();
            t.topic = TopicName(name(topic));
            t.partitions = partitions
                .iter()
                .map(|(p, offset)| {
                    let mut fp = FetchPartition::default();
                    fp.partition = *p;
                    fp.fetch_offset = *offset;
                    fp.partition_max_bytes = FETCH_PARTITION_BYTES;
                    fp
                })
                .collect();
            t
        })
        .collect();
    request
}

/// Record times the previous scrape read, by place in this scrape's partitions and offset; only
/// for partitions whose topic kept its id and whose log did not go back (a topic made anew
/// reuses offsets). Keyed by place, not by name: a big cluster has ~200,000 of them.
struct KnownRecordTimes {
    times: FastMap<(u32, i64), EpochMillis>,
}

impl KnownRecordTimes {
    fn new(
        previous: Option<&ClusterState>,
        topics: &[TopicState],
        partitions: &Partitions,
    ) -> Self {
        let mut times = FastMap::default();
        let Some(previous) = previous.filter(|p| p.offsets_time_ms.is_some()) else {
            return Self { times };
        };
        let ids: FastMap<&str, Option<&str>> = topics
            .iter()
            .map(|t| (t.name.as_str(), t.id.as_deref()))
            .collect();
        // Per place: the same topic, and an end offset known now that did not go back.
        let mut same_log = vec![false; partitions.list.len()];
        for t in &previous.topics {
            if ids.get(t.name.as_str()) != Some(&t.id.as_deref()) {
                continue;
            }
            for p in &t.partitions {
                if let (Some((place, latest)), Ok(before)) =
                    (partitions.end_of(&t.name, p.partition), &p.latest)
                {
                    same_log[place] = latest >= *before;
                }
            }
        }
        for group in &previous.groups {
            for c in group.offsets.iter().flatten() {
                let Some(&place) = partitions.place.get(&(&*c.topic, c.partition)) else {
                    continue;
                };
                if let (Some(time), true) = (c.record_time_ms, same_log[place]) {
                    times.insert((place as u32, c.committed), time);
                }
            }
        }
        Self { times }
    }

    fn get(&self, place: usize, offset: i64) -> Option<EpochMillis> {
        self.times.get(&(place as u32, offset)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::scrape::offsets::NO_PRODUCERS;
    use crate::kafka::state::CommittedOffset;
    use bytes::{BufMut, BytesMut};
    use pipescope_testkit::records::{Compression, RecordBatchBuilder};

    fn batch(offsets: &[i64]) -> Bytes {
        compressed_batch(offsets, Compression::None)
    }

    /// A cluster with topic `t` (id `id`, one partition ending at `latest`) and a group
    /// committed at 5 whose record time is 1,000.
    fn scraped(id: &str, latest: i64, offsets_read: bool) -> ClusterState {
        let partition = PartitionState::healthy(0, latest, Err(NO_PRODUCERS.to_string()));
        ClusterState {
            name: "c".into(),
            scraped_at_ms: 1,
            scrape_duration_ms: 1,
            data_time_ms: 1,
            error: None,
            cluster_id: None,
            controller_id: Some(1),
            brokers: vec![],
            topics: vec![TopicState {
                name: "t".into(),
                id: Some(id.into()),
                internal: false,
                error: None,
                config: Err("not read".into()),
                partitions: vec![partition],
            }],
            groups: vec![GroupState {
                name: "g".into(),
                coordinator: Ok(1),
                protocol_type: "consumer".into(),
                description: Err("not described".into()),
                offsets: Ok(vec![CommittedOffset {
                    topic: "t".into(),
                    partition: 0,
                    committed: 5,
                    metadata: None,
                    record_time_ms: Some(1_000),
                    record_time_error: None,
                }]),
            }],
            group_list_errors: vec![],
            stages: vec![],
            offsets_time_ms: offsets_read.then_some(1),
            committed_offsets: Default::default(),
            view: None,
        }
    }

    #[test]
    fn a_record_time_is_reused_only_while_the_topic_and_its_log_are_the_same() {
        let before = scraped("id-1", 10, true);
        let reused_at = |now: &ClusterState, before: Option<&ClusterState>, offset| {
            let partitions = Partitions::new(&now.topics);
            KnownRecordTimes::new(before, &now.topics, &partitions).get(0, offset)
        };
        let reused = |now: &ClusterState, before: Option<&ClusterState>| reused_at(now, before, 5);
        // Same topic, log grown: the time read before.
        assert_eq!(
            reused(&scraped("id-1", 12, true), Some(&before)),
            Some(1_000)
        );
        assert_eq!(
            reused(&scraped("id-1", 10, true), Some(&before)),
            Some(1_000)
        );
        // Another offset, or no previous scrape: nothing known.
        assert_eq!(
            reused_at(&scraped("id-1", 12, true), Some(&before), 6),
            None
        );
        assert_eq!(reused(&scraped("id-1", 12, true), None), None);
        // The topic made anew (new id), or its log went back: fetched again.
        assert_eq!(reused(&scraped("id-2", 12, true), Some(&before)), None);
        assert_eq!(reused(&scraped("id-1", 9, true), Some(&before)), None);
        // The previous state is a stale copy (no broker answered): not trusted.
        let stale = scraped("id-1", 10, false);
        assert_eq!(reused(&scraped("id-1", 12, true), Some(&stale)), None);
    }

    fn compressed_batch(offsets: &[i64], compression: Compression) -> Bytes {
        offsets
            .iter()
            .fold(RecordBatchBuilder::new(), |batch, &offset| {
                batch.record(offset, 1_000_000 + offset * 10, "v")
            })
            .compression(compression)
            .build()
    }

    #[test]
    fn record_time_is_read_from_compressed_batches_of_every_codec() {
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut data = BytesMut::new();
            data.put(compressed_batch(&[0, 1, 2], compression));
            data.put(compressed_batch(&[3, 4, 5], compression));
            let data = data.freeze();
            assert_eq!(
                record_time(Some(&data), 4),
                Ok(1_000_040),
                "{compression:?}"
            );
            assert_eq!(
                record_time(Some(&data), 0),
                Ok(1_000_000),
                "{compression:?}"
            );
        }
    }

    #[test]
    fn record_time_is_the_base_timestamp_plus_the_records_delta() {
        let data = batch(&[10, 11, 12, 13]);
        assert_eq!(record_time(Some(&data), 12), Ok(1_000_120));
        assert_eq!(record_time(Some(&data), 10), Ok(1_000_100));
    }

    #[test]
    fn record_time_reads_past_earlier_batches_and_ignores_a_cut_last_one() {
        let mut data = BytesMut::new();
        data.put(batch(&[0, 1]));
        data.put(batch(&[2, 3]));
        let cut = batch(&[4, 5]);
        data.put(cut.slice(..cut.len() - 3));
        let data = data.freeze();
        assert_eq!(record_time(Some(&data), 3), Ok(1_000_030));
        let missing = record_time(Some(&data), 5).unwrap_err();
        assert!(missing.incomplete);
        assert!(
            missing.message.contains("no whole record batch"),
            "{missing:?}"
        );
    }

    /// One batch whose one record holds `size` zero bytes: compresses to almost nothing.
    fn bomb(size: usize, compression: Compression) -> Bytes {
        RecordBatchBuilder::new()
            .record(0, 1_000_000, vec![0u8; size])
            .compression(compression)
            .build()
    }

    #[test]
    fn a_batch_that_decompresses_past_the_limit_is_refused_for_every_codec() {
        use pipescope_core::kafka::record_batch::record_time_within;
        const LIMIT: usize = 1024 * 1024;
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let data = bomb(8 * LIMIT, compression);
            // Smaller than the limit, it expands past it.
            assert!(data.len() < LIMIT / 2, "{compression:?}: {}", data.len());
            let refused = record_time_within(Some(&data), 0, LIMIT).unwrap_err();
            assert!(!refused.incomplete);
            assert!(
                refused.message.contains(&format!(
                    "records decompress to more than {LIMIT} bytes (the limit for one batch)"
                )),
                "{compression:?}: {refused:?}"
            );
            // Under the limit, the same codec reads the record.
            let fits = bomb(LIMIT / 2, compression);
            assert_eq!(
                record_time_within(Some(&fits), 0, LIMIT),
                Ok(1_000_000),
                "{compression:?}"
            );
        }
    }

    #[test]
    fn a_compacted_away_record_is_reported_with_the_next_offset() {
        let data = batch(&[20, 25]);
        let gone = record_time(Some(&data), 22).unwrap_err();
        assert!(!gone.incomplete);
        assert!(
            gone.message
                .contains("gone (compacted); the next one is at 25"),
            "{gone:?}"
        );
        assert!(record_time(None, 1).unwrap_err().incomplete);
    }
}
