//! The store's compressed chunks (pipescope-core `tsdb::chunk`), as read back from the database.

use pipescope_core::tsdb::Aggregate;
use pipescope_core::tsdb::chunk::{decode_raw, decode_rollup, encode_raw, encode_rollup};

/// The first byte picks what the rest is. 0, 1: a stored blob, decoded as raw samples or as
/// 1-minute roll-ups: an error or rows, never a panic, and rows re-encode to the same rows.
/// Otherwise: 16-byte (time, value) pairs encoded as a chunk decode to exactly themselves, and
/// the chunk with one byte changed (where the first pair's bytes say) decodes without a panic.
pub fn store_chunk(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => {
            if let Ok(points) = decode_raw(rest) {
                let again = decode_raw(&encode_raw(&points).expect("re-encode")).expect("decode");
                assert_eq!(bits(&again), bits(&points));
            }
        }
        1 => {
            if let Ok(rows) = decode_rollup(rest) {
                let again =
                    decode_rollup(&encode_rollup(&rows).expect("re-encode")).expect("decode");
                assert_eq!(again.len(), rows.len());
            }
        }
        _ => {
            let points: Vec<(u64, f64)> = rest
                .chunks_exact(16)
                .map(|p| {
                    let (t, v) = p.split_at(8);
                    let value = f64::from_le_bytes(v.try_into().expect("8 bytes"));
                    (u64::from_le_bytes(t.try_into().expect("8 bytes")), value)
                })
                .collect();
            if points.is_empty() {
                return;
            }
            let bytes = encode_raw(&points).expect("encode");
            assert_eq!(bits(&decode_raw(&bytes).expect("decode")), bits(&points));
            let rows: Vec<(u64, Aggregate)> = points
                .iter()
                .map(|&(t, v)| (t, Aggregate::single(t, v)))
                .collect();
            let rollup = encode_rollup(&rows).expect("encode roll-ups");
            assert_eq!(
                decode_rollup(&rollup).expect("decode roll-ups").len(),
                rows.len()
            );
            let mut damaged = bytes;
            let at = points[0].0 as usize % damaged.len();
            damaged[at] ^= (points[0].0 >> 8) as u8 | 1;
            let _ = decode_raw(&damaged);
        }
    }
}

fn bits(points: &[(u64, f64)]) -> Vec<(u64, u64)> {
    points.iter().map(|p| (p.0, p.1.to_bits())).collect()
}
