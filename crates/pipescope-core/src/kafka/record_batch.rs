//! The timestamp of the record at an offset, read from the record batches of a Fetch answer.
//!
//! The batches come from a broker, so they are hostile input: a small compressed batch can
//! claim or expand to gigabytes (a zip bomb), and a batch's record and header counts come from
//! the wire. Decompression stops past [`MAX_DECOMPRESSED_BATCH`] bytes, whatever the codec, and
//! never allocates for a size a header claims before checking it; the counts are checked against
//! the bytes left by the decoder (kafka-protocol as patched in vendor/kafka-protocol). This is
//! CPU work of up to tens of milliseconds per batch: the scraper runs it off the async runtime.

use std::io::Read;

use bytes::{Buf, Bytes};
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use crate::clock::EpochMillis;

/// The most bytes one record batch may decompress to; a larger one is refused (that position's
/// lag in seconds is then estimated, and the reason shown). Kafka bounds a batch's *compressed*
/// size (`message.max.bytes`, 1 MiB by default) and producers fill batches of `batch.size`
/// (16 KiB by default): 16 MiB is room for a full default batch of text compressed 10:1 and more.
/// A bomb costs this, plus its decoded records (up to ~20 times this for records of empty
/// values, a few bytes each on the wire): a few hundred MB at worst, briefly, off the runtime.
pub const MAX_DECOMPRESSED_BATCH: usize = 16 * 1024 * 1024;

/// Why a Fetch answer gave no timestamp for the record at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRecordTime {
    pub message: String,
    /// No whole batch holding the offset came back (it exceeds the per-partition limit):
    /// asking for the partition alone gets it.
    pub incomplete: bool,
}

impl From<String> for NoRecordTime {
    fn from(message: String) -> Self {
        Self {
            message,
            incomplete: false,
        }
    }
}

/// The timestamp of the record at `offset` in a Fetch answer's record bytes.
pub fn record_time(records: Option<&Bytes>, offset: i64) -> Result<EpochMillis, NoRecordTime> {
    record_time_within(records, offset, MAX_DECOMPRESSED_BATCH)
}

/// [`record_time`] with batches refused past `limit` bytes decompressed.
pub fn record_time_within(
    records: Option<&Bytes>,
    offset: i64,
    limit: usize,
) -> Result<EpochMillis, NoRecordTime> {
    let mut data = records.cloned().unwrap_or_default();
    let decompress = |records: &mut Bytes, compression| decompress(records, compression, limit);
    // Only whole batches are decoded: the answer may end in a cut one.
    while data.len() >= 12 {
        let batch_len = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let total = 12 + batch_len.max(0) as usize;
        if data.len() < total {
            break;
        }
        let mut batch = data.split_to(total);
        let set = RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(decompress))
            .map_err(|e| {
                NoRecordTime::from(format!(
                    "cannot decode the record batch holding offset {offset}: {e:#}"
                ))
            })?;
        if let Some(record) = set.records.iter().find(|r| r.offset >= offset) {
            return if record.offset == offset {
                u64::try_from(record.timestamp).map_err(|_| {
                    NoRecordTime::from(format!("the record at offset {offset} has no timestamp"))
                })
            } else {
                Err(NoRecordTime::from(format!(
                    "the record at offset {offset} is gone (compacted); the next one is at {}",
                    record.offset
                )))
            };
        }
    }
    Err(NoRecordTime {
        message: format!(
            "no whole record batch holding offset {offset} was returned (its batch is larger than the fetch limit)"
        ),
        incomplete: true,
    })
}

fn too_large(compression: Compression, limit: usize) -> anyhow::Error {
    anyhow::anyhow!(
        "its {compression:?} records decompress to more than {limit} bytes (the limit for one batch)"
    )
}

/// The records of a batch, decompressed, refused past `limit` bytes: every codec in pure Rust
/// (kafka-protocol's gzip and snappy read without a limit, and its lz4 and zstd build C).
pub(crate) fn decompress(
    records: &mut Bytes,
    compression: Compression,
    limit: usize,
) -> anyhow::Result<Bytes> {
    let compressed = std::mem::take(records);
    let reader = compressed.clone().reader();
    let stream: Box<dyn Read> = match compression {
        Compression::None => return Ok(compressed),
        Compression::Snappy => return snappy(&compressed, limit),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(reader)),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(reader)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(reader)
                .map_err(|e| anyhow::anyhow!("zstd: {e}"))?,
        ),
    };
    let mut out = Vec::new();
    stream.take(limit as u64 + 1).read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(too_large(compression, limit));
    }
    Ok(Bytes::from(out))
}

/// The framing the Java client writes (xerial snappy-java): this magic, two version words, then
/// blocks, each a big-endian length and a raw snappy block.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

/// Snappy, raw or in xerial blocks. A raw snappy block starts with its decompressed length:
/// checked against what is left of `limit` before allocating for it.
fn snappy(compressed: &Bytes, limit: usize) -> anyhow::Result<Bytes> {
    let mut out: Vec<u8> = Vec::new();
    let block = |raw: &[u8], out: &mut Vec<u8>| -> anyhow::Result<()> {
        let length = snap::raw::decompress_len(raw)?;
        if length > limit - out.len() {
            return Err(too_large(Compression::Snappy, limit));
        }
        let start = out.len();
        out.resize(start + length, 0);
        snap::raw::Decoder::new().decompress(raw, &mut out[start..])?;
        Ok(())
    };
    if !compressed.starts_with(XERIAL_MAGIC) {
        block(compressed, &mut out)?;
        return Ok(Bytes::from(out));
    }
    let mut rest = compressed.slice(XERIAL_MAGIC.len()..);
    if rest.len() < 8 {
        anyhow::bail!("snappy: xerial header cut short");
    }
    rest.advance(8); // version, compatible version
    while rest.has_remaining() {
        if rest.len() < 4 {
            anyhow::bail!("snappy: block length cut short");
        }
        let size = rest.get_u32() as usize;
        if size > rest.len() {
            anyhow::bail!("snappy: a block of {size} bytes with {} left", rest.len());
        }
        let raw = rest.split_to(size);
        block(&raw, &mut out)?;
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kafka_record_batch fuzz target does with its input: the first 8 bytes pick the
    /// offset, the rest is a batch given the right length, magic and CRC.
    fn fuzz_case(data: &[u8]) -> (i64, Bytes) {
        let (offset, batch) = data.split_at(8);
        let offset = i64::from_be_bytes(offset.try_into().unwrap()) % 64;
        let mut batch = batch.to_vec();
        let length = (batch.len() - 12) as i32;
        batch[8..12].copy_from_slice(&length.to_be_bytes());
        batch[16] = 2;
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        (offset, Bytes::from(batch))
    }

    /// Found by the kafka_record_batch fuzz target: a record whose timestamp and offset deltas
    /// overflow the batch's base timestamp and offset (the decoder panicked on the addition;
    /// it now wraps, as Kafka's own long arithmetic does, and the garbage is just garbage).
    const OVERFLOWING_DELTAS: &[u8] = &[
        0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF9, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xEF, 0xFF, 0xFF, 0x30, 0x30, 0x30, 0x30, 0x31, 0xD7, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30,
        0x30, 0xCE, 0xCF, 0xCF, 0xCF, 0xCF, 0xD7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x30,
        0x00, 0x00, 0x32, 0x30, 0xED, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x32, 0x30, 0x30, 0x30,
        0x30, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x30, 0x00, 0x00, 0x06, 0x01, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x30, 0xED, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x80, 0x39, 0xFF, 0xFF, 0x30, 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF9, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xEF, 0xFF, 0xFF, 0x30, 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x30, 0xFF, 0x30, 0x31, 0xD7, 0x30,
        0x30, 0x30, 0x30, 0x30, 0xEF, 0xFF,
    ];

    #[test]
    fn record_deltas_that_overflow_the_batch_base_do_not_panic() {
        let (offset, batch) = fuzz_case(OVERFLOWING_DELTAS);
        let _ = record_time_within(Some(&batch), offset, 1024 * 1024);
    }

    /// A raw snappy block whose header claims 2^32 - 1 bytes, then a literal of one byte.
    const CLAIMS_4_GIB: &[u8] = &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00, 0x00];

    #[test]
    fn a_snappy_block_claiming_more_than_the_limit_is_refused_before_allocating() {
        let error = snappy(&Bytes::from_static(CLAIMS_4_GIB), MAX_DECOMPRESSED_BATCH).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "its Snappy records decompress to more than {MAX_DECOMPRESSED_BATCH} bytes (the limit for one batch)"
            )
        );
        // In xerial blocks, the limit holds over the blocks together.
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        for _ in 0..3 {
            // A block of 5 bytes: its length (3), then the literal "abc".
            xerial.extend_from_slice(&[0, 0, 0, 5, 3, 0x08, b'a', b'b', b'c']);
        }
        let xerial = Bytes::from(xerial);
        assert_eq!(
            snappy(&xerial, 9).unwrap(),
            Bytes::from_static(b"abcabcabc")
        );
        assert!(snappy(&xerial, 8).is_err());
    }

    #[test]
    fn a_xerial_block_longer_than_what_is_left_is_an_error() {
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x7F, 0xFF, 0xFF, 0xFF, 1]);
        let error = snappy(&Bytes::from(xerial), MAX_DECOMPRESSED_BATCH).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("a block of 2147483647 bytes with 1 left"),
            "{error}"
        );
    }
}
