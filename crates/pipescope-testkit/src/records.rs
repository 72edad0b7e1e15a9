//! Kafka record batches (format v2) as producers write them and brokers hand them back in Fetch
//! answers: one builder for the tests, the scripted broker and the benchmarks.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
pub use kafka_protocol::records::Compression;
use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

/// Records to encode as Kafka record batches, in the order added.
///
/// kafka-protocol starts a new batch whenever a record's `offset - sequence` differs from the
/// first record's. By default records carry no producer sequence (as a non-idempotent producer
/// sends them), so each record is a batch of its own; [`Self::one_batch`] numbers the sequences
/// after the offsets so that all records share one batch. On tansu's memory engine, whose end
/// offset is the last batch's base offset + 1, only one-record batches give right end offsets.
///
/// ```
/// use pipescope_testkit::records::{Compression, RecordBatchBuilder};
/// let data = RecordBatchBuilder::new()
///     .record(0, 1_700_000_000_000, "{}")
///     .record(1, 1_700_000_001_000, "{}")
///     .compression(Compression::Zstd)
///     .build();
/// assert!(!data.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    records: Vec<Record>,
    compression: Compression,
    one_batch: bool,
}

impl Default for RecordBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordBatchBuilder {
    /// No records yet, uncompressed, one batch per record.
    pub fn new() -> Self {
        Self {
            records: Vec::new(),
            compression: Compression::None,
            one_batch: false,
        }
    }

    /// Adds a record at `offset` with creation time `timestamp_ms`, no key and `value`.
    pub fn record(mut self, offset: i64, timestamp_ms: i64, value: impl Into<Bytes>) -> Self {
        self.records.push(Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: -1,
            timestamp: timestamp_ms,
            key: None,
            value: Some(value.into()),
            headers: Default::default(),
        });
        self
    }

    /// Adds a record at `offset` with creation time `timestamp_ms`, `key` and `value` (`None`:
    /// a tombstone).
    pub fn keyed_record(
        mut self,
        offset: i64,
        timestamp_ms: i64,
        key: impl Into<Bytes>,
        value: Option<Bytes>,
    ) -> Self {
        self = self.record(offset, timestamp_ms, Bytes::new());
        let record = self.records.last_mut().expect("just added");
        record.key = Some(key.into());
        record.value = value;
        self
    }

    /// Compresses each batch with `compression`: every codec Kafka knows (lz4 in the frame
    /// format, as Kafka clients write it).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// All records in one batch (their sequences numbered after their offsets).
    pub fn one_batch(mut self) -> Self {
        self.one_batch = true;
        self
    }

    /// How many records were added.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The encoded batches, back to back, as a Produce request carries them and a Fetch answer
    /// returns them.
    pub fn build(&self) -> Bytes {
        let sequenced: Vec<Record>;
        let records = if self.one_batch {
            sequenced = self
                .records
                .iter()
                .map(|r| Record {
                    sequence: r.offset as i32,
                    ..r.clone()
                })
                .collect();
            &sequenced
        } else {
            &self.records
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: self.compression,
        };
        match self.compression {
            // kafka-protocol is built without these two codecs (they would need C builds).
            Compression::Lz4 | Compression::Zstd => {
                RecordBatchEncoder::encode_with_custom_compression(
                    &mut buf,
                    records.iter(),
                    &options,
                    Some(compress),
                )
            }
            _ => RecordBatchEncoder::encode(&mut buf, records.iter(), &options),
        }
        .expect("encode a record batch");
        buf.freeze()
    }
}

/// lz4 (frame format) and zstd in pure Rust, for the encoder.
fn compress(
    records: &mut BytesMut,
    out: &mut BytesMut,
    compression: Compression,
) -> anyhow::Result<()> {
    match compression {
        Compression::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(records)?;
            out.put_slice(&encoder.finish()?);
        }
        Compression::Zstd => out.put_slice(&ruzstd::encoding::compress_to_vec(
            &records[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
        other => anyhow::bail!("{other:?} is compressed by kafka-protocol itself"),
    }
    Ok(())
}
