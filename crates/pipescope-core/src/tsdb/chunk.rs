//! The store's compressed chunks: the samples (or 1-minute roll-up rows) of one series in one
//! block of time, as one blob. Each column is compressed with pcodec (`pco`: delta and
//! frequency detection, near-optimal bit packing of numbers), chosen over Gorilla (`tsz`) by
//! bytes on the store's bench data (docs/store.md).
//!
//! Layout: a tag byte (what the chunk holds), the row count (u32 LE), then each column as its
//! length (u32 LE) and pco's standalone bytes. Decoding checks every length and count against
//! the bytes, so a damaged blob is an error, never a panic nor a huge allocation.

use super::Aggregate;
use crate::clock::EpochMillis;

/// Tag of a chunk of raw samples (time, value).
const RAW_TAG: u8 = 1;
/// Tag of a chunk of 1-minute roll-up rows.
const ROLLUP_TAG: u8 = 2;
/// pco's compression level: 4 packs the bench's data as tightly as 8 and encodes faster.
const LEVEL: usize = 4;
/// Rows one chunk may hold (an hour of samples every millisecond is 3.6 million): a decoder
/// allocates no more than this whatever the bytes say.
pub const MAX_ROWS: usize = 4_000_000;

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
    #[error("chunk column {0} cannot be encoded ({1})")]
    Encode(usize, String),
}

/// Samples `(time, value)`, in time order, as a chunk.
pub fn encode_raw(points: &[(EpochMillis, f64)]) -> Result<Vec<u8>, ChunkError> {
    let times: Vec<u64> = points.iter().map(|p| p.0).collect();
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let mut out = header(RAW_TAG, points.len());
    push_column(&mut out, 0, &times)?;
    push_column(&mut out, 1, &values)?;
    Ok(out)
}

/// The samples of a chunk made by [`encode_raw`].
pub fn decode_raw(bytes: &[u8]) -> Result<Vec<(EpochMillis, f64)>, ChunkError> {
    let (n, mut rest) = read_header(bytes, RAW_TAG)?;
    let times: Vec<u64> = take_column(&mut rest, 0, n)?;
    let values: Vec<f64> = take_column(&mut rest, 1, n)?;
    finish(rest)?;
    Ok(times.into_iter().zip(values).collect())
}

/// Roll-up rows `(bucket start, aggregate)`, in time order, as a chunk: two columns (each
/// column's header weighs more than a minute chunk's data): the integers (starts, counts, time
/// of the last value from the start) one after the other, then the floats (sums, mins, maxes,
/// lasts).
pub fn encode_rollup(rows: &[(EpochMillis, Aggregate)]) -> Result<Vec<u8>, ChunkError> {
    let mut out = header(ROLLUP_TAG, rows.len());
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

/// The rows of a chunk made by [`encode_rollup`].
pub fn decode_rollup(bytes: &[u8]) -> Result<Vec<(EpochMillis, Aggregate)>, ChunkError> {
    let (n, mut rest) = read_header(bytes, ROLLUP_TAG)?;
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

fn push_column<T: pco::data_types::Number>(
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

fn take_column<T: pco::data_types::Number>(
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
    let progress = pco::standalone::simple_decompress_into(bytes, &mut values).map_err(|e| {
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

fn finish(rest: &[u8]) -> Result<(), ChunkError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(ChunkError::Trailing(rest.len()))
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

    #[test]
    fn raw_chunks_round_trip_bit_exactly_and_small() {
        let points = bench_series(360);
        let bytes = encode_raw(&points).unwrap();
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
        assert_eq!(decode_rollup(&bytes).unwrap(), rows);
        assert_eq!(
            decode_raw(&bytes),
            Err(ChunkError::WrongTag {
                found: ROLLUP_TAG,
                expected: RAW_TAG
            })
        );
    }

    #[test]
    fn damaged_chunks_are_errors() {
        let bytes = encode_raw(&bench_series(100)).unwrap();
        assert_eq!(decode_raw(&[]), Err(ChunkError::Short(0)));
        assert_eq!(decode_raw(&bytes[..3]), Err(ChunkError::Short(3)));
        // Every truncation fails, none panics.
        for len in 0..bytes.len() {
            assert!(decode_raw(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut more = bytes.clone();
        more.push(0);
        assert_eq!(decode_raw(&more), Err(ChunkError::Trailing(1)));
        // The header claims more rows than the columns hold.
        let mut lying = bytes.clone();
        lying[1..5].copy_from_slice(&101u32.to_le_bytes());
        assert!(matches!(
            decode_raw(&lying),
            Err(ChunkError::ColumnLength {
                column: 0,
                found: 100,
                expected: 101
            })
        ));
        lying[1..5].copy_from_slice(&99u32.to_le_bytes());
        assert!(matches!(
            decode_raw(&lying),
            Err(ChunkError::ColumnLength { column: 0, .. })
        ));
        lying[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode_raw(&lying),
            Err(ChunkError::BadRowCount(u32::MAX as usize))
        );
        // Flipped bits anywhere: an error or some decoded rows, never a panic.
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x5a;
            let _ = decode_raw(&flipped);
        }
    }
}
