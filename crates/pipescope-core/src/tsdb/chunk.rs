//! The store's compressed chunks: the samples (or 1-minute roll-up rows) of one series in one
//! block of time, as one blob. Each column is compressed with pcodec (`pco`: delta and
//! frequency detection, near-optimal bit packing of numbers), chosen over Gorilla (`tsz`) by
//! bytes on the store's bench data (docs/store.md).
//!
//! Layout (version 2, tags 3 and 4): a tag byte (what the chunk holds), the row count (LEB128),
//! pco's wrapped-format header, the columns, and last the CRC-32 of all that (u32 LE). An
//! integer column (times, counts) is a kind byte, then either a progression `first + i * step`
//! as two LEB128 numbers (a series sampled on a fixed grid, a steady count a minute: a few
//! bytes where pco's metadata alone takes 20 to 40) or pco's chunk metadata and one page; a
//! float column is pco's metadata and page. The previous layout (version 1, tags 1 and 2, still
//! read: [`v1`]) kept each column in pco's standalone format after its u32 length, a header
//! and a count in every column. A wrapped page holds no count of its own, so the checksum is
//! what tells a damaged blob (a wrong row count included) from a sound one. Decoding checks the
//! checksum and every count against the bytes: a damaged blob is an error, never a panic nor a
//! huge allocation.

use pco::ChunkConfig;
use pco::data_types::Number;
use pco::wrapped::{FileCompressor, FileDecompressor};

use super::Aggregate;
use crate::clock::EpochMillis;

/// Tags of the previous layout (pco standalone columns with u32 lengths).
const RAW_TAG_V1: u8 = 1;
const ROLLUP_TAG_V1: u8 = 2;
/// Tag of a chunk of raw samples (time, value).
const RAW_TAG: u8 = 3;
/// Tag of a chunk of 1-minute roll-up rows.
const ROLLUP_TAG: u8 = 4;
/// pco's compression level: 4 packs the bench's data as tightly as 8 and encodes faster.
const LEVEL: usize = 4;
/// Rows one chunk may hold (an hour of samples every millisecond is 3.6 million): a decoder
/// allocates no more than this whatever the bytes say.
pub const MAX_ROWS: usize = 4_000_000;
/// Kinds of an integer column: pco's, or a progression (`push_ints`).
const PCO: u8 = 0;
const PROGRESSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk is {0} bytes, shorter than its header")]
    Short(usize),
    #[error("chunk has tag {found}, expected {expected}")]
    WrongTag { found: u8, expected: u8 },
    #[error("chunk claims {0} rows (0 or more than {MAX_ROWS})")]
    BadRowCount(usize),
    #[error("chunk column {column} claims {claimed} bytes, {left} are left")]
    ColumnPastEnd {
        column: usize,
        claimed: usize,
        left: usize,
    },
    #[error("chunk column {column} does not decode ({reason})")]
    Column { column: usize, reason: String },
    #[error("chunk column {column} holds {found} values, the header says {expected}")]
    ColumnLength {
        column: usize,
        found: usize,
        expected: usize,
    },
    #[error("chunk has {0} bytes after its last column")]
    Trailing(usize),
    #[error("chunk's checksum is {stored:#010x}, its bytes sum to {computed:#010x}: it is damaged")]
    Checksum { stored: u32, computed: u32 },
    #[error("chunk column {0} cannot be encoded ({1})")]
    Encode(usize, String),
}

/// Samples `(time, value)`, in time order, as a chunk.
pub fn encode_raw(points: &[(EpochMillis, f64)]) -> Result<Vec<u8>, ChunkError> {
    let times: Vec<u64> = points.iter().map(|p| p.0).collect();
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let mut out = header(RAW_TAG, points.len());
    push_wrapped_header(&mut out);
    push_ints(&mut out, 0, &times)?;
    push_column(&mut out, 1, &values)?;
    push_checksum(&mut out);
    Ok(out)
}

/// The samples of a chunk made by [`encode_raw`] (or by the previous layout's encoder).
pub fn decode_raw(bytes: &[u8]) -> Result<Vec<(EpochMillis, f64)>, ChunkError> {
    if bytes.first() == Some(&RAW_TAG_V1) {
        return v1::decode_raw(bytes);
    }
    let (n, rest) = read_header(bytes, RAW_TAG)?;
    let mut columns = Columns::new(rest)?;
    let times = columns.take_ints(0, n)?;
    let values: Vec<f64> = columns.take(1, n)?;
    columns.finish()?;
    Ok(times.into_iter().zip(values).collect())
}

/// Roll-up rows `(bucket start, aggregate)`, in time order, as a chunk: the integer columns
/// (starts, counts, time of the last value from the start), then one column of the floats
/// (mins, lasts, maxes, sums one after the other: each column's metadata weighs more than a
/// minute chunk's data, and the nearest values side by side pack best).
pub fn encode_rollup(rows: &[(EpochMillis, Aggregate)]) -> Result<Vec<u8>, ChunkError> {
    let mut out = header(ROLLUP_TAG, rows.len());
    push_wrapped_header(&mut out);
    let starts: Vec<u64> = rows.iter().map(|r| r.0).collect();
    let counts: Vec<u64> = rows.iter().map(|r| r.1.count).collect();
    let lasts: Vec<u64> = rows.iter().map(|r| r.1.last_ms.wrapping_sub(r.0)).collect();
    let mut floats: Vec<f64> = rows.iter().map(|r| r.1.min).collect();
    floats.extend(rows.iter().map(|r| r.1.last));
    floats.extend(rows.iter().map(|r| r.1.max));
    floats.extend(rows.iter().map(|r| r.1.sum));
    push_ints(&mut out, 0, &starts)?;
    push_ints(&mut out, 1, &counts)?;
    push_ints(&mut out, 2, &lasts)?;
    push_column(&mut out, 3, &floats)?;
    push_checksum(&mut out);
    Ok(out)
}

/// The rows of a chunk made by [`encode_rollup`] (or by the previous layout's encoder).
pub fn decode_rollup(bytes: &[u8]) -> Result<Vec<(EpochMillis, Aggregate)>, ChunkError> {
    if bytes.first() == Some(&ROLLUP_TAG_V1) {
        return v1::decode_rollup(bytes);
    }
    let (n, rest) = read_header(bytes, ROLLUP_TAG)?;
    if n > MAX_ROWS / 4 {
        return Err(ChunkError::BadRowCount(n));
    }
    let mut columns = Columns::new(rest)?;
    let starts = columns.take_ints(0, n)?;
    let counts = columns.take_ints(1, n)?;
    let lasts = columns.take_ints(2, n)?;
    let floats: Vec<f64> = columns.take(3, 4 * n)?;
    columns.finish()?;
    Ok((0..n)
        .map(|i| {
            (
                starts[i],
                Aggregate {
                    count: counts[i],
                    min: floats[i],
                    last: floats[n + i],
                    max: floats[2 * n + i],
                    sum: floats[3 * n + i],
                    last_ms: starts[i].wrapping_add(lasts[i]),
                },
            )
        })
        .collect())
}

fn header(tag: u8, rows: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + rows);
    out.push(tag);
    push_varint(&mut out, rows as u64);
    out
}

/// `n` in LEB128: 7 bits a byte, low first, the high bit set on all but the last.
fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut n = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((n, &bytes[i + 1..]));
        }
    }
    None
}

/// `body` followed by its checksum: how tests and fuzzing reach the decoders behind the
/// checksum with damaged bytes.
#[doc(hidden)]
pub fn sealed(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    push_checksum(&mut out);
    out
}

fn push_checksum(out: &mut Vec<u8>) {
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

fn push_wrapped_header(out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    FileCompressor::default()
        .write_header(out)
        .expect("pco writes its header into memory");
}

/// One column as pco's chunk metadata and a single page of all its values.
fn push_column<T: Number>(
    out: &mut Vec<u8>,
    column: usize,
    values: &[T],
) -> Result<(), ChunkError> {
    let encode = |e: pco::errors::PcoError| ChunkError::Encode(column, e.to_string());
    let config = ChunkConfig::default()
        .with_compression_level(LEVEL)
        .with_paging_spec(pco::PagingSpec::Exact(vec![values.len()]));
    let mut compressor = FileCompressor::default()
        .chunk_compressor(values, &config)
        .map_err(encode)?;
    compressor.write_meta(&mut *out).map_err(encode)?;
    compressor.write_page(0, &mut *out).map_err(encode)?;
    Ok(())
}

/// An integer column: a progression `first + i * step` (a regular series' times, a steady
/// count a minute) as its kind byte and the two numbers, a few bytes where pco's metadata alone
/// takes 20 to 40; anything else as its kind byte and a pco column.
fn push_ints(out: &mut Vec<u8>, column: usize, values: &[u64]) -> Result<(), ChunkError> {
    let first = values.first().copied().unwrap_or(0);
    let step = values.get(1).map_or(0, |v| v.wrapping_sub(first));
    let progression = values
        .iter()
        .enumerate()
        .all(|(i, v)| *v == first.wrapping_add(step.wrapping_mul(i as u64)));
    if progression {
        out.push(PROGRESSION);
        push_varint(out, first);
        push_varint(out, step);
        Ok(())
    } else {
        out.push(PCO);
        push_column(out, column, values)
    }
}

/// The columns after a version 2 header, read in turn.
struct Columns<'a> {
    decompressor: FileDecompressor,
    rest: &'a [u8],
}

impl<'a> Columns<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, ChunkError> {
        let (decompressor, rest) =
            FileDecompressor::new(bytes).map_err(|e| ChunkError::Column {
                column: 0,
                reason: e.to_string(),
            })?;
        Ok(Self { decompressor, rest })
    }

    fn take<T: Number>(&mut self, column: usize, n: usize) -> Result<Vec<T>, ChunkError> {
        let broken = |e: pco::errors::PcoError| ChunkError::Column {
            column,
            reason: e.to_string(),
        };
        let (mut chunk, rest) = self
            .decompressor
            .chunk_decompressor::<T, _>(self.rest)
            .map_err(broken)?;
        let mut page = chunk.page_decompressor(rest, n).map_err(broken)?;
        let mut values = vec![T::default(); n];
        let progress = page.read(&mut values).map_err(broken)?;
        if progress.n_processed != n || !progress.finished {
            return Err(ChunkError::ColumnLength {
                column,
                found: progress.n_processed,
                expected: n,
            });
        }
        self.rest = page.into_src();
        Ok(values)
    }

    fn take_ints(&mut self, column: usize, n: usize) -> Result<Vec<u64>, ChunkError> {
        let short = ChunkError::ColumnPastEnd {
            column,
            claimed: 1,
            left: self.rest.len(),
        };
        let (&kind, rest) = self.rest.split_first().ok_or(short.clone())?;
        self.rest = rest;
        match kind {
            PCO => self.take(column, n),
            PROGRESSION => {
                let (first, rest) = read_varint(self.rest).ok_or(short.clone())?;
                let (step, rest) = read_varint(rest).ok_or(short)?;
                self.rest = rest;
                Ok((0..n as u64)
                    .map(|i| first.wrapping_add(step.wrapping_mul(i)))
                    .collect())
            }
            _ => Err(ChunkError::Column {
                column,
                reason: format!("unknown kind {kind}"),
            }),
        }
    }

    fn finish(self) -> Result<(), ChunkError> {
        finish(self.rest)
    }
}

/// The row count and what follows it, once the tag and the checksum are as expected.
fn read_header(bytes: &[u8], expected: u8) -> Result<(usize, &[u8]), ChunkError> {
    let Some(&tag) = bytes.first() else {
        return Err(ChunkError::Short(bytes.len()));
    };
    if tag != expected {
        return Err(ChunkError::WrongTag {
            found: tag,
            expected,
        });
    }
    // The tag, a row count of one byte at least, the checksum.
    let Some((body, stored)) = bytes.split_last_chunk::<4>().filter(|(b, _)| b.len() >= 2) else {
        return Err(ChunkError::Short(bytes.len()));
    };
    let stored = u32::from_le_bytes(*stored);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(ChunkError::Checksum { stored, computed });
    }
    let rest = &body[1..];
    let (n, rest) = read_varint(rest).ok_or(ChunkError::Short(bytes.len()))?;
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n == 0 || n > MAX_ROWS {
        return Err(ChunkError::BadRowCount(n));
    }
    Ok((n, rest))
}

fn finish(rest: &[u8]) -> Result<(), ChunkError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(ChunkError::Trailing(rest.len()))
    }
}

/// The previous layout (tags 1 and 2): pco's standalone format per column, each after its
/// length (u32 LE), the row count as a u32 LE. Stores written before version 2 hold these; the
/// encoders are kept so that tests can write such stores.
#[doc(hidden)]
pub mod v1 {
    use super::{
        Aggregate, ChunkError, EpochMillis, LEVEL, MAX_ROWS, Number, RAW_TAG_V1, ROLLUP_TAG_V1,
        finish,
    };

    pub fn encode_raw(points: &[(EpochMillis, f64)]) -> Result<Vec<u8>, ChunkError> {
        let times: Vec<u64> = points.iter().map(|p| p.0).collect();
        let values: Vec<f64> = points.iter().map(|p| p.1).collect();
        let mut out = header(RAW_TAG_V1, points.len());
        push_column(&mut out, 0, &times)?;
        push_column(&mut out, 1, &values)?;
        Ok(out)
    }

    pub fn decode_raw(bytes: &[u8]) -> Result<Vec<(EpochMillis, f64)>, ChunkError> {
        let (n, mut rest) = read_header(bytes, RAW_TAG_V1)?;
        let times: Vec<u64> = take_column(&mut rest, 0, n)?;
        let values: Vec<f64> = take_column(&mut rest, 1, n)?;
        finish(rest)?;
        Ok(times.into_iter().zip(values).collect())
    }

    pub fn encode_rollup(rows: &[(EpochMillis, Aggregate)]) -> Result<Vec<u8>, ChunkError> {
        let mut out = header(ROLLUP_TAG_V1, rows.len());
        let mut ints: Vec<u64> = rows.iter().map(|r| r.0).collect();
        ints.extend(rows.iter().map(|r| r.1.count));
        ints.extend(rows.iter().map(|r| r.1.last_ms.wrapping_sub(r.0)));
        let mut floats: Vec<f64> = rows.iter().map(|r| r.1.sum).collect();
        floats.extend(rows.iter().map(|r| r.1.min));
        floats.extend(rows.iter().map(|r| r.1.max));
        floats.extend(rows.iter().map(|r| r.1.last));
        push_column(&mut out, 0, &ints)?;
        push_column(&mut out, 1, &floats)?;
        Ok(out)
    }

    pub fn decode_rollup(bytes: &[u8]) -> Result<Vec<(EpochMillis, Aggregate)>, ChunkError> {
        let (n, mut rest) = read_header(bytes, ROLLUP_TAG_V1)?;
        if n > MAX_ROWS / 4 {
            return Err(ChunkError::BadRowCount(n));
        }
        let ints: Vec<u64> = take_column(&mut rest, 0, 3 * n)?;
        let floats: Vec<f64> = take_column(&mut rest, 1, 4 * n)?;
        finish(rest)?;
        Ok((0..n)
            .map(|i| {
                (
                    ints[i],
                    Aggregate {
                        count: ints[n + i],
                        sum: floats[i],
                        min: floats[n + i],
                        max: floats[2 * n + i],
                        last: floats[3 * n + i],
                        last_ms: ints[i].wrapping_add(ints[2 * n + i]),
                    },
                )
            })
            .collect())
    }

    fn header(tag: u8, rows: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + rows);
        out.push(tag);
        out.extend_from_slice(&(rows as u32).to_le_bytes());
        out
    }

    fn push_column<T: Number>(
        out: &mut Vec<u8>,
        column: usize,
        values: &[T],
    ) -> Result<(), ChunkError> {
        let config = pco::ChunkConfig::default().with_compression_level(LEVEL);
        let bytes = pco::standalone::simple_compress(values, &config)
            .map_err(|e| ChunkError::Encode(column, e.to_string()))?;
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
        Ok(())
    }

    fn read_u32(bytes: &[u8]) -> Option<(usize, &[u8])> {
        let (head, rest) = bytes.split_first_chunk::<4>()?;
        Some((u32::from_le_bytes(*head) as usize, rest))
    }

    fn read_header(bytes: &[u8], expected: u8) -> Result<(usize, &[u8]), ChunkError> {
        let Some((&tag, rest)) = bytes.split_first() else {
            return Err(ChunkError::Short(bytes.len()));
        };
        if tag != expected {
            return Err(ChunkError::WrongTag {
                found: tag,
                expected,
            });
        }
        let (n, rest) = read_u32(rest).ok_or(ChunkError::Short(bytes.len()))?;
        if n == 0 || n > MAX_ROWS {
            return Err(ChunkError::BadRowCount(n));
        }
        Ok((n, rest))
    }

    fn take_column<T: Number>(
        rest: &mut &[u8],
        column: usize,
        n: usize,
    ) -> Result<Vec<T>, ChunkError> {
        let (len, after) = read_u32(rest).ok_or(ChunkError::ColumnPastEnd {
            column,
            claimed: 4,
            left: rest.len(),
        })?;
        if len > after.len() {
            return Err(ChunkError::ColumnPastEnd {
                column,
                claimed: len,
                left: after.len(),
            });
        }
        let (bytes, after) = after.split_at(len);
        // One more slot than expected: a column holding more values than the header says shows.
        let mut values = vec![T::default(); n + 1];
        let progress =
            pco::standalone::simple_decompress_into(bytes, &mut values).map_err(|e| {
                ChunkError::Column {
                    column,
                    reason: e.to_string(),
                }
            })?;
        if progress.n_processed != n || !progress.finished {
            return Err(ChunkError::ColumnLength {
                column,
                found: progress.n_processed,
                expected: n,
            });
        }
        values.truncate(n);
        *rest = after;
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench_series(n: u64) -> Vec<(u64, f64)> {
        (0..n)
            .map(|i| (1_000_000 * 3_600_000 + i * 10_000, ((i + 7) % 1000) as f64))
            .collect()
    }

    /// Minute roll-ups of `points`, as the store makes them.
    fn minutes_of(points: &[(u64, f64)]) -> Vec<(u64, Aggregate)> {
        let mut rows: Vec<(u64, Aggregate)> = Vec::new();
        for &(ts, value) in points {
            let start = ts / 60_000 * 60_000;
            match rows.last_mut() {
                Some((s, a)) if *s == start => a.add(ts, value),
                _ => rows.push((start, Aggregate::single(ts, value))),
            }
        }
        rows
    }

    #[test]
    fn raw_chunks_round_trip_bit_exactly_and_small() {
        let points = bench_series(360);
        let bytes = encode_raw(&points).unwrap();
        assert_eq!(bytes[0], RAW_TAG);
        assert_eq!(decode_raw(&bytes).unwrap(), points);
        // A regular hour of 360 samples: well under a byte a sample.
        assert!(bytes.len() < 360, "{} bytes", bytes.len());
        let odd = vec![
            (1, -0.0),
            (2, f64::INFINITY),
            (3, f64::NEG_INFINITY),
            (7, f64::MIN_POSITIVE / 3.0),
            (u64::MAX, 1e300),
        ];
        let decoded = decode_raw(&encode_raw(&odd).unwrap()).unwrap();
        let bits = |v: &[(u64, f64)]| v.iter().map(|p| (p.0, p.1.to_bits())).collect::<Vec<_>>();
        assert_eq!(bits(&decoded), bits(&odd));
    }

    #[test]
    fn rollup_chunks_round_trip() {
        let rows: Vec<(u64, Aggregate)> = (0..60u64)
            .map(|m| {
                let start = 3_600_000 + m * 60_000;
                let mut a = Aggregate::single(start + 5_000, m as f64);
                a.add(start + 55_000, m as f64 * 2.5);
                (start, a)
            })
            .collect();
        let bytes = encode_rollup(&rows).unwrap();
        assert_eq!(bytes[0], ROLLUP_TAG);
        assert_eq!(decode_rollup(&bytes).unwrap(), rows);
        assert_eq!(
            decode_raw(&bytes),
            Err(ChunkError::WrongTag {
                found: ROLLUP_TAG,
                expected: RAW_TAG
            })
        );
        // Starts that are not whole minutes apart (and out of order) are kept to the ms.
        let odd: Vec<(u64, Aggregate)> = [(u64::MAX - 5, 1.0), (7, -2.0), (60_007, 3.0)]
            .into_iter()
            .map(|(t, v)| (t, Aggregate::single(t, v)))
            .collect();
        assert_eq!(decode_rollup(&encode_rollup(&odd).unwrap()).unwrap(), odd);
    }

    #[test]
    fn chunks_of_the_previous_layout_still_decode() {
        let points = bench_series(300);
        let old = v1::encode_raw(&points).unwrap();
        assert_eq!(old[0], RAW_TAG_V1);
        assert_eq!(decode_raw(&old).unwrap(), points);
        let rows = minutes_of(&points);
        let old = v1::encode_rollup(&rows).unwrap();
        assert_eq!(old[0], ROLLUP_TAG_V1);
        assert_eq!(decode_rollup(&old).unwrap(), rows);
        assert!(matches!(
            decode_rollup(&v1::encode_raw(&points).unwrap()),
            Err(ChunkError::WrongTag { found: 1, .. })
        ));
    }

    #[test]
    fn the_layout_takes_fewer_bytes_than_the_previous_one() {
        // The store bench's series: 300 samples 10 s apart, 50 minutes.
        let points = bench_series(300);
        let rows = minutes_of(&points);
        let sizes = [
            v1::encode_raw(&points).unwrap().len(),
            encode_raw(&points).unwrap().len(),
            v1::encode_rollup(&rows).unwrap().len(),
            encode_rollup(&rows).unwrap().len(),
        ];
        // The standalone header, count and length of each column are gone, and the regular
        // times and counts are progressions.
        assert!(sizes[1] + 50 <= sizes[0], "raw {sizes:?}");
        assert!(sizes[3] + 80 <= sizes[2], "roll-ups {sizes:?}");
    }

    #[test]
    fn varints_round_trip_and_refuse_overlong_input() {
        for n in [0, 1, 127, 128, 300, 3_600_000_000_000, u64::MAX] {
            let mut out = Vec::new();
            push_varint(&mut out, n);
            out.push(9);
            assert_eq!(read_varint(&out), Some((n, &[9u8][..])), "{n}");
        }
        assert_eq!(read_varint(&[0x80; 11]), None);
        assert_eq!(read_varint(&[0xff]), None);
    }

    /// `bytes` with its checksum made right again.
    fn resealed(bytes: Vec<u8>) -> Vec<u8> {
        sealed(&bytes[..bytes.len() - 4])
    }

    #[test]
    fn damaged_chunks_are_errors() {
        let points = bench_series(100);
        let raw = encode_raw(&points).unwrap();
        let rollup = encode_rollup(&minutes_of(&points)).unwrap();
        assert_eq!(decode_raw(&[]), Err(ChunkError::Short(0)));
        assert_eq!(
            decode_raw(&[RAW_TAG, 1, 0, 0, 0]),
            Err(ChunkError::Short(5))
        );
        // Every truncation fails, none panics.
        for len in 0..raw.len() {
            assert!(decode_raw(&raw[..len]).is_err(), "raw cut at {len}");
        }
        for len in 0..rollup.len() {
            assert!(
                decode_rollup(&rollup[..len]).is_err(),
                "roll-up cut at {len}"
            );
        }
        let mut more = raw.clone();
        more.push(0);
        assert!(matches!(
            decode_raw(&more),
            Err(ChunkError::Checksum { .. })
        ));
        assert_eq!(decode_raw(&resealed(more)), Err(ChunkError::Trailing(1)));
        // The header claims more or fewer rows than the columns hold (100 is one byte): the
        // checksum tells.
        for lie in [101u8, 99, 1, 127] {
            let mut lying = raw.clone();
            lying[1] = lie;
            assert!(
                matches!(decode_raw(&lying), Err(ChunkError::Checksum { .. })),
                "{lie} rows claimed"
            );
            // Resealed, the lie decodes to an error or to rows, never to a panic.
            let _ = decode_raw(&resealed(lying));
        }
        // An integer column of a kind this version does not know.
        let mut unknown = raw.clone();
        unknown[4] = 7;
        assert!(matches!(
            decode_raw(&resealed(unknown)),
            Err(ChunkError::Column { column: 0, .. })
        ));
        let mut lying = raw.clone();
        lying.splice(1..2, [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(
            decode_raw(&resealed(lying)),
            Err(ChunkError::BadRowCount(u32::MAX as usize))
        );
        // Flipped bits anywhere: an error, and with the checksum made right, an error or some
        // decoded rows, never a panic.
        for bytes in [&raw, &rollup] {
            for at in 0..bytes.len() {
                let mut flipped = bytes.clone();
                flipped[at] ^= 0x5a;
                assert!(decode_raw(&flipped).is_err() && decode_rollup(&flipped).is_err());
                let flipped = resealed(flipped);
                let _ = decode_raw(&flipped);
                let _ = decode_rollup(&flipped);
            }
        }
    }
}
