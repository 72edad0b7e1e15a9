//! Committed offsets read from `__consumer_offsets` instead of asked group by group (the way
//! kminion reads them): the record formats Kafka writes there, and the table of the last commit
//! per (group, topic, partition) that a reader of the topic keeps.
//!
//! The records come from a broker, so they are hostile input: every length is checked against
//! the bytes left, and a record that does not decode is counted and skipped.
//!
//! Formats (Kafka's `OffsetCommitKey`, `OffsetCommitValue`; big-endian):
//! - key: `version: i16`, then for versions 0 and 1 `group: string, topic: string,
//!   partition: i32` (an offset commit); version 2 is a group's metadata, later versions other
//!   group records: not commits, skipped;
//! - value: `version: i16`, then `offset: i64`, `leader_epoch: i32` (v3+), `metadata: string`,
//!   `commit_timestamp: i64`, `expire_timestamp: i64` (v1 only); v4 is flexible (compact string,
//!   tagged fields after). A null value is a tombstone: the commit was deleted.

use std::fmt;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use crate::kafka::FastMap;
use crate::kafka::record_batch::{MAX_DECOMPRESSED_BATCH, decompress};

/// `__consumer_offsets`: the topic Kafka keeps group commits in.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Group partitions kept by default: 10 times the 200,000 of the 10,000 groups.
pub const DEFAULT_MAX_COMMITS: usize = 2_000_000;

/// Where a commit applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffsetCommitKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

/// What was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// v3+ (-1 when unknown).
    pub leader_epoch: Option<i32>,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// v1 only.
    pub expire_timestamp_ms: Option<i64>,
}

/// One record of `__consumer_offsets`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    Commit(OffsetCommitKey, OffsetCommitValue),
    /// A null value: the commit under this key is gone.
    Tombstone(OffsetCommitKey),
    /// A group's metadata (key v2) or another group record: not a commit.
    NotACommit,
}

/// Why a record of `__consumer_offsets` could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndecodableRecord(pub String);

impl fmt::Display for UndecodableRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "undecodable {OFFSETS_TOPIC} record: {}", self.0)
    }
}

impl std::error::Error for UndecodableRecord {}

/// Reads big-endian fields, refusing to read past the end.
struct Reader<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], UndecodableRecord> {
        if self.data.len() < n {
            return Err(UndecodableRecord(format!(
                "the {} ends inside its {field} ({n} bytes wanted, {} left)",
                self.what,
                self.data.len()
            )));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn i16(&mut self, field: &str) -> Result<i16, UndecodableRecord> {
        Ok(i16::from_be_bytes(self.take(2, field)?.try_into().unwrap()))
    }

    fn i32(&mut self, field: &str) -> Result<i32, UndecodableRecord> {
        Ok(i32::from_be_bytes(self.take(4, field)?.try_into().unwrap()))
    }

    fn i64(&mut self, field: &str) -> Result<i64, UndecodableRecord> {
        Ok(i64::from_be_bytes(self.take(8, field)?.try_into().unwrap()))
    }

    fn text(&mut self, len: usize, field: &str) -> Result<String, UndecodableRecord> {
        let bytes = self.take(len, field)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| UndecodableRecord(format!("the {} {field} is not UTF-8", self.what)))
    }

    /// A string with an i16 length; -1 (null) reads as empty where `nullable`.
    fn string(&mut self, field: &str, nullable: bool) -> Result<String, UndecodableRecord> {
        match self.i16(field)? {
            -1 if nullable => Ok(String::new()),
            len if len < 0 => Err(UndecodableRecord(format!(
                "the {} {field} has length {len}",
                self.what
            ))),
            len => self.text(len as usize, field),
        }
    }

    /// An unsigned varint (at most 5 bytes: a u32).
    fn uvarint(&mut self, field: &str) -> Result<u32, UndecodableRecord> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let byte = self.take(1, field)?[0];
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(UndecodableRecord(format!(
            "the {} {field} is a varint longer than 5 bytes",
            self.what
        )))
    }

    /// A compact string (length + 1 as a varint; 0 is null, read as empty).
    fn compact_string(&mut self, field: &str) -> Result<String, UndecodableRecord> {
        match self.uvarint(field)? {
            0 => Ok(String::new()),
            n => self.text(n as usize - 1, field),
        }
    }

    /// Tagged fields, skipped (none is needed here).
    fn skip_tagged_fields(&mut self) -> Result<(), UndecodableRecord> {
        let count = self.uvarint("tagged field count")?;
        for _ in 0..count {
            self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")?;
            self.take(size as usize, "tagged field")?;
        }
        Ok(())
    }
}

/// Decodes one record of `__consumer_offsets` from its key and value.
pub fn decode_record(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<OffsetsRecord, UndecodableRecord> {
    let key = key.ok_or_else(|| UndecodableRecord("a record without a key".to_string()))?;
    let Some(key) = decode_key(key)? else {
        return Ok(OffsetsRecord::NotACommit);
    };
    match value {
        None => Ok(OffsetsRecord::Tombstone(key)),
        Some(value) => Ok(OffsetsRecord::Commit(key, decode_value(value)?)),
    }
}

/// The key of an offset commit (versions 0 and 1), or `None` for another kind of record.
pub fn decode_key(data: &[u8]) -> Result<Option<OffsetCommitKey>, UndecodableRecord> {
    let mut r = Reader { data, what: "key" };
    let version = r.i16("version")?;
    match version {
        0 | 1 => Ok(Some(OffsetCommitKey {
            group: r.string("group", false)?,
            topic: r.string("topic", false)?,
            partition: r.i32("partition")?,
        })),
        v if v < 0 => Err(UndecodableRecord(format!("key version {v}"))),
        _ => Ok(None),
    }
}

/// The value of an offset commit, versions 0 to 4.
pub fn decode_value(data: &[u8]) -> Result<OffsetCommitValue, UndecodableRecord> {
    let mut r = Reader {
        data,
        what: "value",
    };
    let version = r.i16("version")?;
    if !(0..=4).contains(&version) {
        return Err(UndecodableRecord(format!(
            "value version {version} (0 to 4 are known)"
        )));
    }
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 {
        Some(r.i32("leader epoch")?)
    } else {
        None
    };
    let metadata = if version >= 4 {
        r.compact_string("metadata")?
    } else {
        r.string("metadata", true)?
    };
    let commit_timestamp_ms = r.i64("commit timestamp")?;
    let expire_timestamp_ms = if version == 1 {
        Some(r.i64("expire timestamp")?)
    } else {
        None
    };
    if version >= 4 {
        r.skip_tagged_fields()?;
    }
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

/// The key of an offset commit as Kafka writes it (version 1): for tests and the synthetic
/// cluster.
pub fn encode_key(key: &OffsetCommitKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + key.group.len() + key.topic.len());
    out.extend_from_slice(&1i16.to_be_bytes());
    for s in [&key.group, &key.topic] {
        out.extend_from_slice(&(s.len().min(i16::MAX as usize) as i16).to_be_bytes());
        out.extend_from_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
    }
    out.extend_from_slice(&key.partition.to_be_bytes());
    out
}

/// The value of an offset commit as Kafka 2.1+ writes it (version 3).
pub fn encode_value(value: &OffsetCommitValue) -> Vec<u8> {
    let metadata = &value.metadata.as_bytes()[..value.metadata.len().min(i16::MAX as usize)];
    let mut out = Vec::with_capacity(24 + metadata.len());
    out.extend_from_slice(&3i16.to_be_bytes());
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&value.leader_epoch.unwrap_or(-1).to_be_bytes());
    out.extend_from_slice(&(metadata.len() as i16).to_be_bytes());
    out.extend_from_slice(metadata);
    out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
    out
}

/// The partition of `__consumer_offsets` Kafka keeps `group`'s records in: the group's Java
/// `String.hashCode`, made non-negative as Kafka's `Utils.abs` does, modulo the partitions.
pub fn partition_for_group(group: &str, partitions: u32) -> u32 {
    let mut hash: i32 = 0;
    for unit in group.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs as u32 % partitions.max(1)
}

/// A commit kept by the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    pub offset: i64,
    pub commit_timestamp_ms: i64,
}

/// One partition of `__consumer_offsets` as the reader consumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionProgress {
    /// The next offset to read.
    pub position: i64,
    /// The end offset when reading started: caught up once `position` reaches it.
    pub target: i64,
    /// The latest high watermark seen.
    pub high_watermark: i64,
}

/// Counts of what the table did not keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounts {
    /// Commits read (tombstones included).
    pub applied: u64,
    /// Records that did not decode.
    pub undecodable: u64,
    /// Records that are not commits (group metadata).
    pub not_commits: u64,
    /// New keys refused because the table was full.
    pub dropped: u64,
}

/// The last commit per (group, topic, partition) read from `__consumer_offsets`: applied in log
/// order, so the last commit wins and a tombstone deletes. Holds at most `max_commits` keys
/// (new keys past that are dropped and counted). Gives numbers only once caught up: every
/// partition read up to the end offset it had when reading started.
#[derive(Debug)]
pub struct CommittedOffsets {
    /// group → (topic, partition) → commit.
    commits: FastMap<String, FastMap<(String, i32), Commit>>,
    len: usize,
    max_commits: usize,
    progress: Vec<PartitionProgress>,
    caught_up: bool,
    counts: TableCounts,
    last_error: Option<String>,
}

impl CommittedOffsets {
    /// A table for a topic whose partitions start at `starts` and end at `ends` (same length:
    /// one per partition, from ListOffsets earliest and latest when reading starts).
    pub fn new(starts: &[i64], ends: &[i64], max_commits: usize) -> Self {
        let progress = starts
            .iter()
            .zip(ends)
            .map(|(&start, &end)| PartitionProgress {
                position: start,
                target: end,
                high_watermark: end,
            })
            .collect();
        let mut table = Self {
            commits: FastMap::default(),
            len: 0,
            max_commits,
            progress,
            caught_up: false,
            counts: TableCounts::default(),
            last_error: None,
        };
        table.check_caught_up();
        table
    }

    /// Applies one record of `partition` at `offset` (records of a partition in log order).
    pub fn apply(
        &mut self,
        partition: usize,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        match decode_record(key, value) {
            Ok(OffsetsRecord::Commit(key, value)) => {
                self.counts.applied += 1;
                self.put(key, value);
            }
            Ok(OffsetsRecord::Tombstone(key)) => {
                self.counts.applied += 1;
                self.delete(&key);
            }
            Ok(OffsetsRecord::NotACommit) => self.counts.not_commits += 1,
            Err(e) => {
                self.counts.undecodable += 1;
                self.last_error = Some(format!("partition {partition} offset {offset}: {e}"));
            }
        }
    }

    fn put(&mut self, key: OffsetCommitKey, value: OffsetCommitValue) {
        let commit = Commit {
            offset: value.offset,
            commit_timestamp_ms: value.commit_timestamp_ms,
        };
        let full = self.len >= self.max_commits;
        if let Some(group) = self.commits.get_mut(&key.group) {
            if let Some(kept) = group.get_mut(&(key.topic.clone(), key.partition)) {
                *kept = commit;
                return;
            }
            if full {
                self.counts.dropped += 1;
                return;
            }
            group.insert((key.topic, key.partition), commit);
        } else {
            if full {
                self.counts.dropped += 1;
                return;
            }
            let mut group = FastMap::default();
            group.insert((key.topic, key.partition), commit);
            self.commits.insert(key.group, group);
        }
        self.len += 1;
    }

    fn delete(&mut self, key: &OffsetCommitKey) {
        let Some(group) = self.commits.get_mut(&key.group) else {
            return;
        };
        if group.remove(&(key.topic.clone(), key.partition)).is_some() {
            self.len -= 1;
        }
        if group.is_empty() {
            self.commits.remove(&key.group);
        }
    }

    /// Records of `partition` read up to `next` (the offset after the last batch read), with
    /// the high watermark the broker gave.
    pub fn advance(&mut self, partition: usize, next: i64, high_watermark: i64) {
        if let Some(p) = self.progress.get_mut(partition) {
            p.position = p.position.max(next);
            p.high_watermark = high_watermark;
        }
        self.check_caught_up();
    }

    /// Applies the records of a Fetch answer for `partition` (whole batches only; records
    /// before the position, which a batch may repeat, are skipped) and moves the position past
    /// the last whole batch. A batch that does not decode is counted and skipped. Returns
    /// whether the position moved (false with records left means the batch is larger than the
    /// bytes asked for).
    pub fn apply_fetched(
        &mut self,
        partition: usize,
        records: Option<&Bytes>,
        high_watermark: i64,
    ) -> bool {
        let Some(start) = self.progress.get(partition).map(|p| p.position) else {
            return false;
        };
        let mut position = start;
        let mut data = records.cloned().unwrap_or_default();
        let decompress = |records: &mut Bytes, compression| {
            decompress(records, compression, MAX_DECOMPRESSED_BATCH)
        };
        while data.len() >= 27 {
            let base_offset = i64::from_be_bytes(data[0..8].try_into().unwrap());
            let batch_len = i32::from_be_bytes(data[8..12].try_into().unwrap());
            let total = 12 + batch_len.max(0) as usize;
            if data.len() < total || batch_len < 15 {
                break;
            }
            let last_delta = i32::from_be_bytes(data[23..27].try_into().unwrap());
            let next = base_offset
                .saturating_add(i64::from(last_delta.max(0)))
                .saturating_add(1);
            let mut batch = data.split_to(total);
            match RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(decompress)) {
                Ok(set) => {
                    for r in set
                        .records
                        .iter()
                        .filter(|r| r.offset >= position && !r.control)
                    {
                        self.apply(partition, r.offset, r.key.as_deref(), r.value.as_deref());
                    }
                }
                Err(e) => {
                    self.counts.undecodable += 1;
                    self.last_error = Some(format!(
                        "partition {partition}: the record batch at offset {base_offset}: {e:#}"
                    ));
                }
            }
            position = position.max(next);
        }
        self.advance(partition, position, high_watermark);
        position > start
    }

    fn check_caught_up(&mut self) {
        if !self.caught_up {
            self.caught_up = self.progress.iter().all(|p| p.position >= p.target);
        }
    }

    /// Whether every partition was read up to its end offset of when reading started (stays
    /// true after).
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// Records not yet read: the sum over partitions of high watermark minus position.
    pub fn lag_records(&self) -> i64 {
        self.progress
            .iter()
            .map(|p| (p.high_watermark - p.position).max(0))
            .sum()
    }

    pub fn progress(&self) -> &[PartitionProgress] {
        &self.progress
    }

    pub fn counts(&self) -> TableCounts {
        self.counts
    }

    /// The last undecodable record's reason.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Group partitions kept.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The commits of `group`, or `None` before the table caught up.
    pub fn group(&self, group: &str) -> Option<Vec<(&str, i32, Commit)>> {
        if !self.caught_up {
            return None;
        }
        let mut commits: Vec<(&str, i32, Commit)> = self
            .commits
            .get(group)
            .into_iter()
            .flatten()
            .map(|((topic, partition), c)| (topic.as_str(), *partition, *c))
            .collect();
        commits.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        Some(commits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: &str, topic: &str, partition: i32) -> OffsetCommitKey {
        OffsetCommitKey {
            group: group.into(),
            topic: topic.into(),
            partition,
        }
    }

    fn value(offset: i64) -> OffsetCommitValue {
        OffsetCommitValue {
            offset,
            leader_epoch: Some(7),
            metadata: "m".into(),
            commit_timestamp_ms: 1_000 + offset,
            expire_timestamp_ms: None,
        }
    }

    fn string(s: &str) -> Vec<u8> {
        let mut out = (s.len() as i16).to_be_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn key_bytes(version: i16, group: &str, topic: &str, partition: i32) -> Vec<u8> {
        let mut out = version.to_be_bytes().to_vec();
        out.extend(string(group));
        out.extend(string(topic));
        out.extend(partition.to_be_bytes());
        out
    }

    #[test]
    fn offsets_topic_keys_of_versions_0_and_1_are_commits_and_2_is_skipped() {
        for version in [0, 1] {
            assert_eq!(
                decode_key(&key_bytes(version, "g", "orders", 3)),
                Ok(Some(key("g", "orders", 3)))
            );
        }
        // Version 2: a group's metadata (the group name only).
        let mut metadata = 2i16.to_be_bytes().to_vec();
        metadata.extend(string("g"));
        assert_eq!(decode_key(&metadata), Ok(None));
        assert_eq!(
            decode_record(Some(&metadata), Some(b"whatever")),
            Ok(OffsetsRecord::NotACommit)
        );
        assert!(decode_key(&(-1i16).to_be_bytes()).is_err());
    }

    #[test]
    fn offsets_topic_values_of_every_version_decode() {
        let mut v0 = 0i16.to_be_bytes().to_vec();
        v0.extend(42i64.to_be_bytes());
        v0.extend(string("meta"));
        v0.extend(5_000i64.to_be_bytes());
        assert_eq!(
            decode_value(&v0),
            Ok(OffsetCommitValue {
                offset: 42,
                leader_epoch: None,
                metadata: "meta".into(),
                commit_timestamp_ms: 5_000,
                expire_timestamp_ms: None,
            })
        );
        let mut v1 = 1i16.to_be_bytes().to_vec();
        v1.extend(42i64.to_be_bytes());
        v1.extend(string(""));
        v1.extend(5_000i64.to_be_bytes());
        v1.extend(9_000i64.to_be_bytes());
        let d = decode_value(&v1).unwrap();
        assert_eq!(
            (d.offset, d.commit_timestamp_ms, d.expire_timestamp_ms),
            (42, 5_000, Some(9_000))
        );
        let mut v2 = 2i16.to_be_bytes().to_vec();
        v2.extend(42i64.to_be_bytes());
        v2.extend((-1i16).to_be_bytes()); // null metadata
        v2.extend(5_000i64.to_be_bytes());
        let d = decode_value(&v2).unwrap();
        assert_eq!(
            (d.offset, d.metadata.as_str(), d.leader_epoch),
            (42, "", None)
        );
        // v3 as encoded here (and by Kafka 2.1+).
        assert_eq!(decode_value(&encode_value(&value(42))), Ok(value(42)));
        // v4: flexible, compact metadata, then tagged fields (one, skipped).
        let mut v4 = 4i16.to_be_bytes().to_vec();
        v4.extend(42i64.to_be_bytes());
        v4.extend(7i32.to_be_bytes());
        v4.push(2); // "m": length 1 + 1
        v4.push(b'm');
        v4.extend(1_042i64.to_be_bytes());
        v4.extend([1, 0, 2, 0xAA, 0xBB]); // one tagged field: tag 0, 2 bytes
        assert_eq!(decode_value(&v4), Ok(value(42)));
        let mut v5 = v4.clone();
        v5[1] = 5;
        assert!(decode_value(&v5).unwrap_err().0.contains("value version 5"));
    }

    #[test]
    fn offsets_topic_a_null_value_is_a_tombstone() {
        let k = encode_key(&key("g", "t", 0));
        assert_eq!(
            decode_record(Some(&k), None),
            Ok(OffsetsRecord::Tombstone(key("g", "t", 0)))
        );
        assert_eq!(
            decode_record(Some(&k), Some(&encode_value(&value(3)))),
            Ok(OffsetsRecord::Commit(key("g", "t", 0), value(3)))
        );
    }

    #[test]
    fn offsets_topic_garbage_is_an_error_never_a_panic() {
        let good_key = key_bytes(1, "group", "topic", 1);
        for cut in 0..good_key.len() {
            assert!(decode_key(&good_key[..cut]).is_err(), "cut at {cut}");
        }
        let good_value = encode_value(&value(9));
        for cut in 0..good_value.len() {
            assert!(decode_value(&good_value[..cut]).is_err(), "cut at {cut}");
        }
        // A length past the end, a negative length, bad UTF-8, a runaway varint.
        let mut long = 1i16.to_be_bytes().to_vec();
        long.extend(i16::MAX.to_be_bytes());
        assert!(
            decode_key(&long)
                .unwrap_err()
                .0
                .contains("ends inside its group")
        );
        let mut negative = 1i16.to_be_bytes().to_vec();
        negative.extend((-5i16).to_be_bytes());
        assert!(decode_key(&negative).is_err());
        let mut not_utf8 = 1i16.to_be_bytes().to_vec();
        not_utf8.extend([0, 1, 0xFF]);
        assert!(decode_key(&not_utf8).unwrap_err().0.contains("not UTF-8"));
        let mut runaway = 4i16.to_be_bytes().to_vec();
        runaway.extend([0; 12]);
        runaway.extend([0xFF; 6]);
        assert!(decode_value(&runaway).unwrap_err().0.contains("varint"));
        assert!(decode_record(None, None).is_err());
    }

    #[test]
    fn offsets_topic_partition_follows_java_string_hash_code() {
        // "g".hashCode() = 103; "group-1".hashCode() = 293427299 (Java).
        assert_eq!(partition_for_group("g", 50), 103 % 50);
        assert_eq!(partition_for_group("group-1", 50), 293_427_299 % 50);
        // "polygenelubricants".hashCode() = Integer.MIN_VALUE: Kafka's abs maps it to 0.
        assert_eq!(partition_for_group("polygenelubricants", 50), 0);
        // A negative hash: "g-00007".hashCode() = -1742282927 in Java.
        assert_eq!(partition_for_group("g-00007", 50), 1_742_282_927 % 50);
    }

    fn table(ends: &[i64], max: usize) -> CommittedOffsets {
        CommittedOffsets::new(&vec![0; ends.len()], ends, max)
    }

    fn commit(t: &mut CommittedOffsets, p: usize, o: i64, k: &OffsetCommitKey, v: Option<i64>) {
        let value = v.map(|v| encode_value(&value(v)));
        t.apply(p, o, Some(&encode_key(k)), value.as_deref());
    }

    #[test]
    fn offsets_topic_last_commit_wins_and_a_tombstone_deletes() {
        let mut t = table(&[4], 10);
        let (a, b) = (key("g", "t", 0), key("g", "t", 1));
        commit(&mut t, 0, 0, &a, Some(5));
        commit(&mut t, 0, 1, &b, Some(8));
        commit(&mut t, 0, 2, &a, Some(6));
        commit(&mut t, 0, 3, &b, None);
        t.advance(0, 4, 4);
        let commits = t.group("g").unwrap();
        assert_eq!(commits.len(), 1);
        assert_eq!(
            (commits[0].0, commits[0].1, commits[0].2.offset),
            ("t", 0, 6)
        );
        assert_eq!(t.len(), 1);
        // Deleting the last commit of a group forgets the group; a commit after comes back.
        commit(&mut t, 0, 4, &a, None);
        assert_eq!(t.group("g"), Some(vec![]));
        assert!(t.is_empty());
        commit(&mut t, 0, 5, &a, Some(9));
        assert_eq!(t.group("g").unwrap()[0].2.offset, 9);
        assert_eq!(t.counts().applied, 6);
    }

    #[test]
    fn offsets_topic_gives_no_numbers_before_every_partition_reached_its_start_end() {
        let mut t = table(&[2, 0, 3], 10);
        commit(&mut t, 0, 0, &key("g", "t", 0), Some(5));
        assert_eq!(t.group("g"), None);
        t.advance(0, 2, 2);
        assert!(!t.caught_up(), "partition 2 is not read yet");
        assert_eq!(t.lag_records(), 3);
        t.advance(2, 2, 5); // more arrived meanwhile: the target stays 3
        assert!(!t.caught_up());
        assert_eq!(t.lag_records(), 3);
        t.advance(2, 3, 5);
        assert!(t.caught_up());
        assert_eq!(t.lag_records(), 2);
        assert_eq!(t.group("g").unwrap()[0].2.offset, 5);
        // Caught up stays so while later records arrive.
        t.advance(0, 2, 100);
        assert!(t.caught_up());
        assert_eq!(t.lag_records(), 100);
        // An empty topic is caught up at once; a log that starts late is read from its start.
        assert!(table(&[0, 0], 1).caught_up());
        let late = CommittedOffsets::new(&[7], &[7], 1);
        assert!(late.caught_up());
    }

    #[test]
    fn offsets_topic_the_table_is_capped_and_counts_what_it_drops() {
        let mut t = table(&[0], 2);
        commit(&mut t, 0, 0, &key("a", "t", 0), Some(1));
        commit(&mut t, 0, 1, &key("b", "t", 0), Some(1));
        commit(&mut t, 0, 2, &key("c", "t", 0), Some(1));
        commit(&mut t, 0, 3, &key("a", "t", 1), Some(1));
        // Known keys still update.
        commit(&mut t, 0, 4, &key("a", "t", 0), Some(2));
        assert_eq!(t.len(), 2);
        assert_eq!(t.counts().dropped, 2);
        assert_eq!(t.group("c"), Some(vec![]));
        assert_eq!(t.group("a").unwrap()[0].2.offset, 2);
        // A tombstone makes room.
        commit(&mut t, 0, 5, &key("b", "t", 0), None);
        commit(&mut t, 0, 6, &key("c", "t", 0), Some(3));
        assert_eq!(t.group("c").unwrap()[0].2.offset, 3);
    }

    #[test]
    fn offsets_topic_garbage_records_are_counted_and_skipped() {
        let mut t = table(&[0], 10);
        t.apply(0, 0, Some(b"\x00"), Some(b"x"));
        t.apply(0, 1, None, Some(b"x"));
        let k = encode_key(&key("g", "t", 0));
        t.apply(0, 2, Some(&k), Some(b"\x00\x03"));
        commit(&mut t, 0, 3, &key("g", "t", 0), Some(4));
        assert_eq!(t.counts().undecodable, 3);
        assert_eq!(t.len(), 1);
        assert!(t.last_error().unwrap().contains("partition 0 offset 2"));
    }

    /// Record batches (format v2, one per record) of commits or tombstones at their offsets.
    fn batches(records: &[(i64, OffsetCommitKey, Option<i64>)]) -> Bytes {
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<Record> = records
            .iter()
            .map(|(offset, k, v)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: *offset,
                sequence: -1,
                timestamp: 0,
                key: Some(Bytes::from(encode_key(k))),
                value: v.map(|v| Bytes::from(encode_value(&value(v)))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
        buf.freeze()
    }

    #[test]
    fn offsets_topic_fetched_batches_are_applied_from_the_position_on() {
        let a = key("g", "t", 0);
        let mut t = table(&[3], 10);
        let data = batches(&[(0, a.clone(), Some(1)), (1, a.clone(), Some(2))]);
        assert!(t.apply_fetched(0, Some(&data), 3));
        assert_eq!(t.progress()[0].position, 2);
        assert!(!t.caught_up());
        // The broker repeats what was read (a whole batch from before the position): skipped.
        // A tombstone after, then a cut batch that is left for the next Fetch.
        let mut data = bytes::BytesMut::new();
        data.extend_from_slice(&batches(&[(1, a.clone(), Some(2)), (2, a.clone(), None)]));
        let cut = batches(&[(3, a.clone(), Some(7))]);
        data.extend_from_slice(&cut[..cut.len() - 2]);
        assert!(t.apply_fetched(0, Some(&data.freeze()), 4));
        assert_eq!(t.progress()[0].position, 3);
        assert!(t.caught_up());
        assert_eq!(t.group("g"), Some(vec![]));
        assert_eq!(t.counts().applied, 3);
        // Only a cut batch: no progress (ask for more bytes).
        assert!(!t.apply_fetched(0, Some(&cut.slice(..cut.len() - 2)), 4));
        assert!(t.apply_fetched(0, Some(&cut), 4));
        assert_eq!(t.group("g").unwrap()[0].2.offset, 7);
        assert_eq!(t.lag_records(), 0);
        // A batch that does not decode (its CRC broken) is counted and passed.
        let mut broken = batches(&[(4, a.clone(), Some(8))]).to_vec();
        let last = broken.len() - 1;
        broken[last] ^= 0xFF;
        assert!(t.apply_fetched(0, Some(&Bytes::from(broken)), 5));
        assert_eq!(t.progress()[0].position, 5);
        assert_eq!(t.counts().undecodable, 1);
        assert_eq!(t.group("g").unwrap()[0].2.offset, 7);
        // A partition the table does not have: nothing.
        assert!(!t.apply_fetched(9, Some(&cut), 4));
    }
}
