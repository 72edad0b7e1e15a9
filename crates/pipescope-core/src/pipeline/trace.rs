//! The trace header every record produced by a pipeline part carries (docs/trace-headers.md):
//! origin id, sequence number per origin and partition, origin timestamp.
//!
//! The same three names and text values are used as Kafka record headers and as MQTT v5 user
//! properties, so a bridge can carry them over unchanged.

use std::collections::HashMap;
use std::fmt;

use crate::EpochMillis;

/// Header / user property holding the origin id (UTF-8 text).
pub const ORIGIN: &str = "pipescope-origin";
/// Header / user property holding the sequence number (decimal u64).
pub const SEQ: &str = "pipescope-seq";
/// Header / user property holding the origin timestamp (decimal epoch milliseconds).
pub const TS: &str = "pipescope-ts";
/// Header the bridge adds with the MQTT topic a record came from.
pub const MQTT_TOPIC: &str = "mqtt-topic";
/// Header naming the stream the sequence number counts in when it is not the Kafka partition
/// the record is in: the bridge sets it to the MQTT topic on a trace it carried over from MQTT.
pub const STREAM: &str = "pipescope-stream";

/// Where a record was first made, its place in its origin's sequence, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    pub origin: String,
    pub seq: u64,
    pub ts: EpochMillis,
}

/// Why a record's trace header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceError {
    /// Some of the three headers are there, this one is not.
    Missing(&'static str),
    /// A header's value is not what the format says (name, value as text).
    Invalid(&'static str, String),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Missing(name) => write!(
                f,
                "trace header {name:?} is missing while the others are there — the producer wrote an incomplete trace"
            ),
            TraceError::Invalid(name, value) => write!(
                f,
                "trace header {name:?} has the value {value:?}, which is not a valid {}",
                if *name == ORIGIN {
                    "non-empty origin id"
                } else {
                    "decimal number"
                }
            ),
        }
    }
}

impl std::error::Error for TraceError {}

impl TraceHeader {
    /// The headers as (name, value) pairs, in a fixed order.
    pub fn encode(&self) -> [(&'static str, String); 3] {
        [
            (ORIGIN, self.origin.clone()),
            (SEQ, self.seq.to_string()),
            (TS, self.ts.to_string()),
        ]
    }

    /// Reads the trace from a record's headers. `Ok(None)` when none of the three is there
    /// (the record was not traced); an error when only some are, or one is malformed.
    /// Other headers are ignored; when a name repeats, the last value counts (as Kafka clients
    /// read headers).
    pub fn decode<'a, I>(headers: I) -> Result<Option<TraceHeader>, TraceError>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        Ok(
            TraceRef::decode_with(headers, |_, _| {})?.map(|t| TraceHeader {
                origin: t.origin.to_owned(),
                seq: t.seq,
                ts: t.ts,
            }),
        )
    }
}

/// A trace read in place: the origin borrowed from the headers, nothing allocated (the trace
/// reader's per-record path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceRef<'a> {
    pub origin: &'a str,
    pub seq: u64,
    pub ts: EpochMillis,
}

impl<'a> TraceRef<'a> {
    /// [`TraceHeader::decode`] without allocating; every header that is not one of the three
    /// goes to `other` on the way, so a reader wanting more (the stream's name) reads the
    /// headers once.
    pub fn decode_with<I>(
        headers: I,
        mut other: impl FnMut(&'a str, &'a [u8]),
    ) -> Result<Option<TraceRef<'a>>, TraceError>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        let (mut origin, mut seq, mut ts) = (None, None, None);
        for (name, value) in headers {
            match name {
                ORIGIN => origin = Some(value),
                SEQ => seq = Some(value),
                TS => ts = Some(value),
                _ => other(name, value),
            }
        }
        if origin.is_none() && seq.is_none() && ts.is_none() {
            return Ok(None);
        }
        let origin = origin.ok_or(TraceError::Missing(ORIGIN))?;
        let seq = seq.ok_or(TraceError::Missing(SEQ))?;
        let ts = ts.ok_or(TraceError::Missing(TS))?;
        let invalid = |name: &'static str, v: &[u8]| {
            TraceError::Invalid(name, String::from_utf8_lossy(v).into_owned())
        };
        let origin = std::str::from_utf8(origin).map_err(|_| invalid(ORIGIN, origin))?;
        if origin.is_empty() {
            return Err(TraceError::Invalid(ORIGIN, String::new()));
        }
        // Only plain ASCII digits: "+1" or " 1" would parse but another reader may not.
        let number = |name: &'static str, v: &[u8]| {
            // Up to 19 digits cannot overflow a u64: one pass, no overflow check per digit.
            if v.is_empty() || v.len() > 19 {
                return u64_of_digits(v).ok_or_else(|| invalid(name, v));
            }
            let mut n = 0u64;
            for &b in v {
                let digit = b.wrapping_sub(b'0');
                if digit > 9 {
                    return Err(invalid(name, v));
                }
                n = n * 10 + u64::from(digit);
            }
            Ok(n)
        };
        Ok(Some(TraceRef {
            origin,
            seq: number(SEQ, seq)?,
            ts: number(TS, ts)?,
        }))
    }
}

/// Plain ASCII digits as a u64; None when empty, not digits, or too large.
fn u64_of_digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Hands out sequence numbers per stream (a Kafka partition, or an MQTT topic for MQTT
/// origins), starting at 0 for each.
#[derive(Debug, Clone, Default)]
pub struct Sequencer<K> {
    next: HashMap<K, u64>,
}

impl<K: std::hash::Hash + Eq> Sequencer<K> {
    pub fn new() -> Self {
        Self {
            next: HashMap::new(),
        }
    }

    /// The next sequence number of `stream`.
    pub fn next(&mut self, stream: K) -> u64 {
        let n = self.next.entry(stream).or_insert(0);
        let seq = *n;
        *n += 1;
        seq
    }
}

/// Counts what a reader of traced records saw per (origin, stream): distinct sequence numbers,
/// duplicates, and gaps below the highest number seen. Used by tests and by loss accounting.
#[derive(Debug, Clone, Default)]
pub struct TraceTally {
    seen: HashMap<(String, String), std::collections::BTreeSet<u64>>,
    duplicates: u64,
}

impl TraceTally {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one traced record of `stream` (the partition, or the MQTT topic).
    pub fn record(&mut self, trace: &TraceHeader, stream: &str) {
        let set = self
            .seen
            .entry((trace.origin.clone(), stream.to_owned()))
            .or_default();
        if !set.insert(trace.seq) {
            self.duplicates += 1;
        }
    }

    /// Distinct records seen.
    pub fn distinct(&self) -> u64 {
        self.seen.values().map(|s| s.len() as u64).sum()
    }

    /// Records seen more than once (each extra copy counts one).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Sequence numbers missing below the highest one seen, over all streams (sequences start at 0).
    pub fn gaps(&self) -> u64 {
        self.seen
            .values()
            .map(|s| s.last().map_or(0, |max| max + 1) - s.len() as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static [u8])> {
        pairs.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
    }

    #[test]
    fn encode_then_decode_is_the_same_header() {
        let trace = TraceHeader {
            origin: "sim-calls-7".into(),
            seq: 18_446_744_073_709_551_615,
            ts: 1_700_000_000_123,
        };
        let encoded = trace.encode();
        assert_eq!(
            encoded,
            [
                ("pipescope-origin", "sim-calls-7".to_string()),
                ("pipescope-seq", "18446744073709551615".to_string()),
                ("pipescope-ts", "1700000000123".to_string()),
            ]
        );
        let decoded = TraceHeader::decode(encoded.iter().map(|(n, v)| (*n, v.as_bytes()))).unwrap();
        assert_eq!(decoded, Some(trace));
    }

    #[test]
    fn untraced_records_decode_to_none_and_other_headers_are_ignored() {
        assert_eq!(TraceHeader::decode(headers(&[("x", "1")])), Ok(None));
        assert_eq!(TraceHeader::decode(Vec::new()), Ok(None));
    }

    #[test]
    fn incomplete_or_malformed_traces_are_errors() {
        assert_eq!(
            TraceHeader::decode(headers(&[(ORIGIN, "a"), (SEQ, "1")])),
            Err(TraceError::Missing(TS))
        );
        assert_eq!(
            TraceHeader::decode(headers(&[(ORIGIN, "a"), (SEQ, "-1"), (TS, "5")])),
            Err(TraceError::Invalid(SEQ, "-1".into()))
        );
        assert_eq!(
            TraceHeader::decode(headers(&[(ORIGIN, "a"), (SEQ, "1"), (TS, "+5")])),
            Err(TraceError::Invalid(TS, "+5".into()))
        );
        assert_eq!(
            TraceHeader::decode(headers(&[(ORIGIN, ""), (SEQ, "1"), (TS, "5")])),
            Err(TraceError::Invalid(ORIGIN, "".into()))
        );
        assert_eq!(
            TraceHeader::decode(headers(&[
                (ORIGIN, "a"),
                (SEQ, "99999999999999999999"),
                (TS, "5")
            ])),
            Err(TraceError::Invalid(SEQ, "99999999999999999999".into()))
        );
        let bad_utf8: Vec<(&str, &[u8])> = vec![(ORIGIN, &[0xff]), (SEQ, b"1"), (TS, b"1")];
        assert!(matches!(
            TraceHeader::decode(bad_utf8),
            Err(TraceError::Invalid(ORIGIN, _))
        ));
    }

    #[test]
    fn the_last_of_repeated_headers_counts() {
        let h = headers(&[(ORIGIN, "a"), (SEQ, "1"), (TS, "5"), (SEQ, "2")]);
        assert_eq!(TraceHeader::decode(h).unwrap().unwrap().seq, 2);
    }

    #[test]
    fn a_trace_read_in_place_hands_on_the_other_headers_in_order() {
        let h = headers(&[
            (MQTT_TOPIC, "machine/a"),
            (ORIGIN, "sim-1"),
            (SEQ, "7"),
            (STREAM, "s1"),
            (TS, "5"),
            (STREAM, "s2"),
        ]);
        let mut others = Vec::new();
        let trace = TraceRef::decode_with(h, |n, v| others.push((n, v)));
        assert_eq!(
            trace,
            Ok(Some(TraceRef {
                origin: "sim-1",
                seq: 7,
                ts: 5
            }))
        );
        assert_eq!(
            others,
            headers(&[(MQTT_TOPIC, "machine/a"), (STREAM, "s1"), (STREAM, "s2")])
        );
    }

    #[test]
    fn sequences_count_per_stream_from_zero() {
        let mut s = Sequencer::new();
        assert_eq!(
            [s.next(0), s.next(1), s.next(0), s.next(0), s.next(1)],
            [0, 0, 1, 2, 1]
        );
    }

    #[test]
    fn tally_counts_distinct_duplicates_and_gaps() {
        let mut t = TraceTally::new();
        let h = |o: &str, seq| TraceHeader {
            origin: o.into(),
            seq,
            ts: 0,
        };
        for seq in [0, 1, 1, 2, 4] {
            t.record(&h("a", seq), "p0");
        }
        t.record(&h("a", 0), "p1");
        t.record(&h("b", 0), "p0");
        assert_eq!(t.distinct(), 6);
        assert_eq!(t.duplicates(), 1);
        assert_eq!(t.gaps(), 1); // a/p0 lacks 3
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn trace() -> impl Strategy<Value = TraceHeader> {
            (".+", any::<u64>(), any::<u64>()).prop_map(|(origin, seq, ts)| TraceHeader {
                origin,
                seq,
                ts,
            })
        }

        /// Headers that are not the trace's: other names (near misses too), any bytes.
        fn other_headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
            let name = prop_oneof![
                Just(MQTT_TOPIC.to_string()),
                Just("Pipescope-Seq".to_string()),
                Just("pipescope-seq ".to_string()),
                "[a-z-]{0,16}".prop_filter("not a trace header", |n| ![ORIGIN, SEQ, TS]
                    .contains(&n.as_str())),
            ];
            prop::collection::vec((name, prop::collection::vec(any::<u8>(), 0..16)), 0..6)
        }

        /// Earlier values of the trace's own names, which a later one overrides.
        fn stale_trace_headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
            let name = prop_oneof![Just(ORIGIN), Just(SEQ), Just(TS)];
            prop::collection::vec((name, prop::collection::vec(any::<u8>(), 0..12)), 0..6)
        }

        fn decode(headers: &[(String, Vec<u8>)]) -> Result<Option<TraceHeader>, TraceError> {
            TraceHeader::decode(headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())))
        }

        fn owned(
            pairs: impl IntoIterator<Item = (&'static str, String)>,
        ) -> Vec<(String, Vec<u8>)> {
            pairs
                .into_iter()
                .map(|(n, v)| (n.to_string(), v.into_bytes()))
                .collect()
        }

        /// The format read the plain way (owned text, `str::parse`).
        fn reference(headers: &[(&str, Vec<u8>)]) -> Result<Option<TraceHeader>, TraceError> {
            let last = |name| {
                headers
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v)
            };
            let (origin, seq, ts) = (last(ORIGIN), last(SEQ), last(TS));
            if origin.is_none() && seq.is_none() && ts.is_none() {
                return Ok(None);
            }
            let (origin, seq, ts) = (
                origin.ok_or(TraceError::Missing(ORIGIN))?,
                seq.ok_or(TraceError::Missing(SEQ))?,
                ts.ok_or(TraceError::Missing(TS))?,
            );
            let lossy = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
            let origin = String::from_utf8(origin.clone())
                .map_err(|_| TraceError::Invalid(ORIGIN, lossy(origin)))?;
            if origin.is_empty() {
                return Err(TraceError::Invalid(ORIGIN, origin));
            }
            let number = |name, v: &Vec<u8>| {
                let s = lossy(v);
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(TraceError::Invalid(name, s));
                }
                s.parse::<u64>().map_err(|_| TraceError::Invalid(name, s))
            };
            Ok(Some(TraceHeader {
                origin,
                seq: number(SEQ, seq)?,
                ts: number(TS, ts)?,
            }))
        }

        proptest! {
            #[test]
            fn decode_of_encode_is_the_same_header(t in trace()) {
                prop_assert_eq!(decode(&owned(t.encode())), Ok(Some(t)));
            }

            /// Other headers are ignored and, when a name repeats, the last value counts:
            /// in any order, with stale values of the three names before the real ones.
            #[test]
            fn other_headers_and_earlier_repeats_do_not_change_it(
                t in trace(),
                (stale, others) in (stale_trace_headers(), other_headers()),
                order in Just((0..16usize).collect::<Vec<_>>()).prop_shuffle(),
            ) {
                let mut tail = owned(t.encode());
                tail.extend(others);
                // Shuffle the real headers among the others with the generated permutation.
                let mut keyed: Vec<(usize, (String, Vec<u8>))> =
                    tail.into_iter().enumerate().map(|(i, h)| (order[i % 16] * 16 + i, h)).collect();
                keyed.sort_by_key(|(k, _)| *k);
                let mut headers: Vec<(String, Vec<u8>)> =
                    stale.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
                headers.extend(keyed.into_iter().map(|(_, h)| h));
                prop_assert_eq!(decode(&headers), Ok(Some(t)));
            }

            /// Any headers (any bytes) decode as the plain reading of the format says: the
            /// in-place digit parser against str::parse.
            #[test]
            fn any_headers_decode_as_the_plain_reading_of_the_format(
                headers in prop::collection::vec(
                    (prop_oneof![Just(ORIGIN), Just(SEQ), Just(TS), Just("x")],
                     prop_oneof![
                        prop::collection::vec(any::<u8>(), 0..24),
                        "[0-9]{0,21}".prop_map(String::into_bytes),
                     ]),
                    0..6,
                ),
            ) {
                let pairs = headers.iter().map(|(n, v)| (*n, v.as_slice()));
                prop_assert_eq!(TraceHeader::decode(pairs), reference(&headers));
            }

            /// None of the three: not traced. Some but not all: the first missing one is named.
            #[test]
            fn a_partial_trace_names_what_is_missing(
                t in trace(),
                keep in prop::collection::vec(any::<bool>(), 3),
                others in other_headers(),
            ) {
                let mut headers = owned(
                    t.encode().into_iter().zip(&keep).filter(|(_, k)| **k).map(|(h, _)| h),
                );
                headers.extend(others);
                let expected = match keep.iter().position(|k| !k) {
                    None => Ok(Some(t)),
                    Some(_) if keep.iter().all(|k| !k) => Ok(None),
                    Some(i) => Err(TraceError::Missing([ORIGIN, SEQ, TS][i])),
                };
                prop_assert_eq!(decode(&headers), expected);
            }
        }
    }
}
