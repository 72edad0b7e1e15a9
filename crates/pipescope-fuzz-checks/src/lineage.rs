//! The `pipescope-inputs` header a processor writes and the monitor reads (hostile input: any
//! producer may write it).

use pipescope_core::pipeline::lineage::{InputStream, Inputs, MAX_RANGES, MAX_RECORDS};

/// Any bytes as the header: no panic; what is accepted names at most the documented ranges and
/// records, no range runs backwards, and written back it reads the same. Also any bytes as a
/// processor's inputs (pairs of stream pick and number): written, they read back to as many
/// records, within the cap on ranges.
pub fn lineage_inputs(data: &[u8]) {
    if let Ok(streams) = Inputs::decode(data) {
        let ranges: usize = streams.iter().map(|s| s.2.len()).sum();
        assert!(ranges <= MAX_RANGES);
        let records: u64 = streams
            .iter()
            .flat_map(|s| &s.2)
            .map(|r| {
                assert!(r.0 <= r.1);
                r.1 - r.0 + 1
            })
            .sum();
        assert!(records <= MAX_RECORDS);
        let written = serde_json::to_vec(&streams).unwrap();
        assert_eq!(Inputs::decode(&written).unwrap(), streams);
    }
    let mut inputs = Inputs::default();
    for pair in data.chunks_exact(2) {
        let stream = ["a", "b", "c/d"][usize::from(pair[0] % 3)];
        inputs.add("o", stream, u64::from(pair[1]), u64::from(pair[0]));
    }
    let decoded: Vec<InputStream> = Inputs::decode(inputs.encode().as_bytes()).unwrap();
    let records: u64 = decoded
        .iter()
        .flat_map(|s| &s.2)
        .map(|r| r.1 - r.0 + 1)
        .sum();
    assert_eq!(records, inputs.records());
}
