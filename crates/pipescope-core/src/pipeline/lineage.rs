//! The inputs a processor's output record was made from (docs/trace-headers.md, "Inputs"):
//! per input (origin, stream), the ranges of sequence numbers it took in, with the origin
//! timestamp of each range's first record. A processor that folds many records into one (a
//! window, a running total) writes them in the `pipescope-inputs` header of its output, so the
//! monitor can tell, per input record, whether it made it into an output: an edge from the
//! processor's input topic to its output topic, with loss (readings dropped as late, a crash
//! that lost state) and duplicates (an output made twice after a restart).
//!
//! The value is JSON: `[["origin","stream",[[from,to,ts],…]],…]`, numbers inclusive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::EpochMillis;

/// Header holding the inputs of an output record (JSON, see the module docs).
pub const INPUTS: &str = "pipescope-inputs";

/// Ranges one output names at most; a reader refuses more (hostile input), a processor folds
/// the rest into `folded`.
pub const MAX_RANGES: usize = 4_096;

/// One traced input record, by borrowed names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputRef<'a> {
    pub origin: &'a str,
    pub stream: &'a str,
    pub seq: u64,
    pub ts: EpochMillis,
}

/// Input records one output names at most: a reader refuses more (a hostile range would
/// otherwise make it count without end).
pub const MAX_RECORDS: u64 = 1_000_000;

/// Numbers `from..=to` of one input stream; `ts` is the origin timestamp of `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRange(pub u64, pub u64, pub EpochMillis);

/// One input stream's ranges, as written in the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputStream(pub String, pub String, pub Vec<InputRange>);

/// The inputs of one output record, as a processor gathers them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// origin → stream → ranges; nested so that an input finds its ranges by borrowed names.
    streams: BTreeMap<String, BTreeMap<String, Vec<InputRange>>>,
    ranges: usize,
    /// Inputs not written because the record named [`MAX_RANGES`] already.
    pub folded: u64,
}

impl Inputs {
    /// Input number `seq` of `origin` on `stream`, made at `ts`. Consecutive numbers extend
    /// the stream's last range; a number already held is not added again.
    pub fn add(&mut self, origin: &str, stream: &str, seq: u64, ts: EpochMillis) {
        let ranges = self
            .streams
            .get_mut(origin)
            .and_then(|streams| streams.get_mut(stream));
        if let Some(ranges) = ranges {
            if let Some(last) = ranges.last_mut()
                && last.1.checked_add(1) == Some(seq)
            {
                last.1 = seq;
                return;
            }
            if ranges.iter().any(|r| (r.0..=r.1).contains(&seq)) {
                return;
            }
        }
        if self.ranges >= MAX_RANGES {
            self.folded += 1;
            return;
        }
        self.ranges += 1;
        if !self.streams.contains_key(origin) {
            self.streams.insert(origin.to_owned(), BTreeMap::new());
        }
        let streams = self.streams.get_mut(origin).expect("just inserted");
        if !streams.contains_key(stream) {
            streams.insert(stream.to_owned(), Vec::new());
        }
        let ranges = streams.get_mut(stream).expect("just inserted");
        ranges.push(InputRange(seq, seq, ts));
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// How many input records the ranges name.
    pub fn records(&self) -> u64 {
        self.streams
            .values()
            .flat_map(BTreeMap::values)
            .flatten()
            .map(|r| r.1 - r.0 + 1)
            .sum()
    }

    /// The header's value.
    pub fn encode(&self) -> String {
        let streams: Vec<InputStream> = self
            .streams
            .iter()
            .flat_map(|(origin, streams)| {
                streams.iter().map(move |(stream, ranges)| {
                    let mut ranges = ranges.clone();
                    ranges.sort_by_key(|r| r.0);
                    InputStream(origin.clone(), stream.clone(), ranges)
                })
            })
            .collect();
        serde_json::to_string(&streams).expect("plain data serializes")
    }

    /// Reads a header's value: an error says what is wrong with it.
    pub fn decode(value: &[u8]) -> Result<Vec<InputStream>, String> {
        let streams: Vec<InputStream> = serde_json::from_slice(value)
            .map_err(|e| format!("the {INPUTS} header is not the documented JSON ({e})"))?;
        let ranges: usize = streams.iter().map(|s| s.2.len()).sum();
        if ranges > MAX_RANGES {
            return Err(format!(
                "the {INPUTS} header names {ranges} ranges, more than {MAX_RANGES}"
            ));
        }
        if let Some(r) = streams.iter().flat_map(|s| &s.2).find(|r| r.0 > r.1) {
            return Err(format!(
                "the {INPUTS} header has a range from {} down to {}",
                r.0, r.1
            ));
        }
        let records = streams
            .iter()
            .flat_map(|s| &s.2)
            .map(|r| r.1 - r.0)
            .fold(0u64, |sum, n| sum.saturating_add(n).saturating_add(1));
        if records > MAX_RECORDS {
            return Err(format!(
                "the {INPUTS} header names {records} records, more than {MAX_RECORDS}"
            ));
        }
        if streams.iter().any(|s| s.0.is_empty()) {
            return Err(format!("the {INPUTS} header has an empty origin"));
        }
        Ok(streams)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_inputs_make_one_range_and_others_their_own() {
        let mut inputs = Inputs::default();
        for seq in 10..20 {
            inputs.add("sim-1", "machine/a/m1", seq, 1_000 + seq);
        }
        inputs.add("sim-1", "machine/a/m1", 25, 2_000);
        inputs.add("sim-1", "machine/a/m1", 12, 3_000); // again: not added
        inputs.add("sim-2", "machine/a/m1", 0, 4_000);
        assert_eq!(inputs.records(), 12);
        assert_eq!(
            inputs.encode(),
            r#"[["sim-1","machine/a/m1",[[10,19,1010],[25,25,2000]]],["sim-2","machine/a/m1",[[0,0,4000]]]]"#
        );
        let decoded = Inputs::decode(inputs.encode().as_bytes()).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(
            decoded[0].2,
            vec![InputRange(10, 19, 1010), InputRange(25, 25, 2000)]
        );
    }

    #[test]
    fn an_input_arriving_out_of_order_is_written_in_order() {
        let mut inputs = Inputs::default();
        inputs.add("o", "s", 5, 50);
        inputs.add("o", "s", 3, 30);
        assert_eq!(inputs.encode(), r#"[["o","s",[[3,3,30],[5,5,50]]]]"#);
    }

    #[test]
    fn past_the_cap_inputs_are_folded_and_a_reader_refuses_more() {
        let mut inputs = Inputs::default();
        for seq in 0..(MAX_RANGES as u64 + 10) {
            inputs.add("o", "s", seq * 2, 0);
        }
        assert_eq!(inputs.folded, 10);
        assert!(Inputs::decode(inputs.encode().as_bytes()).is_ok());
        let too_many = format!(
            "[[\"o\",\"s\",[{}]]]",
            vec!["[1,1,0]"; MAX_RANGES + 1].join(",")
        );
        assert!(
            Inputs::decode(too_many.as_bytes())
                .unwrap_err()
                .contains("4097 ranges")
        );
    }

    #[test]
    fn a_malformed_header_is_an_error_that_says_what() {
        for (bad, says) in [
            (&b"not json"[..], "not the documented JSON"),
            (br#"[["o","s",[[5,3,0]]]]"#, "from 5 down to 3"),
            (br#"[["","s",[[1,1,0]]]]"#, "empty origin"),
            (br#"[["o","s",[[-1,1,0]]]]"#, "not the documented JSON"),
            (
                br#"[["o","s",[[0,18446744073709551615,0]]]]"#,
                "18446744073709551615 records",
            ),
            (br#"[["o","s",[[0,999999,0],[5,5,0]]]]"#, "1000001 records"),
        ] {
            let e = Inputs::decode(bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
