//! The store's compressed chunks (pipescope-core `tsdb::chunk`), as read back from the database.

use pipescope_core::tsdb::Aggregate;
use pipescope_core::tsdb::chunk::{decode_raw, decode_rollup, encode_raw, encode_rollup, sealed};

/// The first byte picks what the rest is. 0, 1: a stored blob, decoded as raw samples or as
/// 1-minute roll-ups: an error or rows, never a panic, and rows re-encode to the same rows.
/// 0xfe, 0xff: the same with a right checksum appended, so that the decoders behind it are
/// reached. Otherwise: 16-byte (time, value) pairs encoded as a chunk decode to exactly
/// themselves, and the chunk with one byte changed (where the first pair's bytes say) decodes
/// without a panic, as it is and with its checksum made right.
pub fn store_chunk(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let blob = match mode {
        0xfe | 0xff => sealed(rest),
        _ => rest.to_vec(),
    };
    match mode {
        0 | 0xfe => {
            if let Ok(points) = decode_raw(&blob) {
                let again = decode_raw(&encode_raw(&points).expect("re-encode")).expect("decode");
                assert_eq!(bits(&again), bits(&points));
            }
        }
        1 | 0xff => {
            if let Ok(rows) = decode_rollup(&blob) {
                let again =
                    decode_rollup(&encode_rollup(&rows).expect("re-encode")).expect("decode");
                assert_eq!(rollup_bits(&again), rollup_bits(&rows));
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
                rollup_bits(&decode_rollup(&rollup).expect("decode roll-ups")),
                rollup_bits(&rows)
            );
            let mut damaged = bytes;
            let body = damaged.len() - 4;
            let at = points[0].0 as usize % body;
            damaged[at] ^= (points[0].0 >> 8) as u8 | 1;
            assert!(decode_raw(&damaged).is_err(), "the checksum tells");
            let _ = decode_raw(&sealed(&damaged[..body]));
        }
    }
}

fn bits(points: &[(u64, f64)]) -> Vec<(u64, u64)> {
    points.iter().map(|p| (p.0, p.1.to_bits())).collect()
}

fn rollup_bits(rows: &[(u64, Aggregate)]) -> Vec<[u64; 7]> {
    rows.iter()
        .map(|(t, a)| {
            [
                *t,
                a.count,
                a.sum.to_bits(),
                a.min.to_bits(),
                a.max.to_bits(),
                a.last.to_bits(),
                a.last_ms,
            ]
        })
        .collect()
}
