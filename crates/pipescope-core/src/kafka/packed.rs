//! Variable-length integers for the analyzer's per-partition histories.
//!
//! A busy partition's end-offset history and a group partition's verdict window are runs of
//! readings that differ little from one to the next (a scrape interval, a few hundred records).
//! Stored as LEB128 varints of those differences they take 4 to 6 bytes a reading instead of 16
//! or 24, exactly: every value round-trips, however large the step.

use integer_encoding::VarInt;

/// Appends `value` as an LEB128 varint (7 bits a byte, low bits first).
pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    put(out, value);
}

/// Reads the varint at `*at` and moves `*at` past it. The bytes are our own: a truncated one
/// is a bug, and panics.
pub(crate) fn get_u64(bytes: &[u8], at: &mut usize) -> u64 {
    get(bytes, at)
}

/// A signed difference as an unsigned varint, small either way (zigzag: 0, −1, 1, −2 … → 0, 1,
/// 2, 3 …).
pub(crate) fn put_i64(out: &mut Vec<u8>, value: i64) {
    put(out, value);
}

pub(crate) fn get_i64(bytes: &[u8], at: &mut usize) -> i64 {
    get(bytes, at)
}

fn put(out: &mut Vec<u8>, value: impl VarInt) {
    let mut encoded = [0u8; 10];
    let len = value.encode_var(&mut encoded);
    out.extend_from_slice(&encoded[..len]);
}

fn get<V: VarInt>(bytes: &[u8], at: &mut usize) -> V {
    let (value, len) = V::decode_var(&bytes[*at..]).expect("a whole varint, as written");
    *at += len;
    value
}

/// Makes room for `additional` more bytes, growing by a quarter rather than doubling: these
/// buffers live long and there are hundreds of thousands of them, so slack is what costs.
pub(crate) fn reserve(bytes: &mut Vec<u8>, additional: usize) {
    if bytes.capacity() - bytes.len() < additional {
        bytes.reserve_exact(additional.max(bytes.len() / 4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_in_as_few_bytes_as_it_needs() {
        let values = [0u64, 1, 127, 128, 16_383, 16_384, 1 << 35, u64::MAX];
        let mut out = Vec::new();
        for v in values {
            put_u64(&mut out, v);
        }
        assert_eq!(out.len(), 1 + 1 + 1 + 2 + 2 + 3 + 6 + 10);
        let mut at = 0;
        for v in values {
            assert_eq!(get_u64(&out, &mut at), v);
        }
        assert_eq!(at, out.len());
        let signed = [0i64, -1, 1, -64, 63, -65, i64::MIN, i64::MAX];
        out.clear();
        for v in signed {
            put_i64(&mut out, v);
        }
        assert_eq!(out[..5], [0, 1, 2, 127, 126]);
        let mut at = 0;
        for v in signed {
            assert_eq!(get_i64(&out, &mut at), v);
        }
    }
}
