//! Completeness accounting: is anything lost, duplicated or late between the hops of a
//! pipeline, and how long do records take to get there (docs/completeness.md).
//!
//! Readers (the Kafka trace reader, the MQTT reader, the probes) decode each record's trace
//! (`pipeline::trace::TraceHeader`) and feed it to a [`Hop`]: one observed point, such as an
//! MQTT filter on a broker or a Kafka topic on a cluster. A hop keeps, per (origin, stream),
//! which sequence numbers it saw ([`seqset`]), and counts per origin kind. An [`Edge`] between
//! two hops that see the same origins is fed the outcome of both and counts what was lost,
//! duplicated or late between them. Everything takes time as an argument (arrival time of the
//! record, or "now" for [`Hop::tick`]); nothing here reads a clock.
//!
//! Memory, measured on x86-64 (`hop::tests::memory_per_stream_is_as_documented`,
//! `edge::tests::memory_per_edge_stream_is_as_documented`, 10,000 streams with 4-byte names):
//! a hop's stream with in-order traffic holds no gap, so it costs its state
//! (`size_of::<StreamSeqs>()` = 80 bytes), its map slot and its name: 178 bytes measured. Each
//! open or remembered gap adds 32 bytes, at most `max_gaps_per_stream` of them. An edge stream
//! costs 136 bytes of state (278 measured with slot and name) plus 32 per span waiting and 24 per
//! lost span remembered. Per origin kind, a hop holds 91 ten-second buckets of 5 counters
//! (3.6 KiB) and up to 17 latency sketches (a few hundred bytes each for latencies within one to
//! two orders of magnitude).

pub mod buckets;
pub mod edge;
pub mod flow;
pub mod hop;
pub mod latency;
pub mod names;
pub mod probe;
pub mod ranges;
pub mod seqset;

pub use edge::{Edge, EdgeCounters, EdgeFigures, End};
pub use flow::{Flow, FlowFigures, FlowHandover, HopId};
pub use hop::{AdoptError, Hop, HopCounters, HopFigures, StreamHandover};
pub use latency::{AddedLatency, AddedLatencyFigures, LatencyFigures, Quantiles};
pub use names::{Names, is_partition_text};
pub use seqset::{Outcome, StreamSeqs};

use serde::{Deserialize, Serialize};

/// The kind figures of origins beyond the cap on kinds are counted under.
pub const FOLDED_KIND: &str = "_folded";

/// How a hop or an edge judges and bounds what it sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompletenessConfig {
    /// How long a gap may stay open (in arrival time since it was noticed) before it is loss.
    /// For an edge: how long after the upstream hop saw a record the downstream hop may take.
    pub grace_ms: u64,
    /// How long lost gaps are remembered so a late arrival can still un-lose them; past it they
    /// stay lost and a late copy is counted `past_horizon`.
    pub horizon_ms: u64,
    /// A stream with no record for this long and no open gap is forgotten (a restarted part's
    /// old origin); should it come back, its next record sets a new base.
    pub idle_ms: u64,
    /// Streams tracked per hop or edge; records of further streams are counted, not tracked.
    pub max_streams: usize,
    /// Gaps (or edge spans) kept per stream; past it the oldest is settled early.
    pub max_gaps_per_stream: usize,
    /// Origin kinds figures are split by (including the folded one).
    pub max_kinds: usize,
    /// Origin id prefixes that name a kind; an origin matching none has the kind up to its
    /// first '-'.
    pub kind_prefixes: Vec<String>,
}

impl Default for CompletenessConfig {
    fn default() -> Self {
        Self {
            grace_ms: 10_000,
            horizon_ms: 60_000,
            idle_ms: 900_000,
            max_streams: 100_000,
            max_gaps_per_stream: 1_024,
            max_kinds: 16,
            kind_prefixes: Vec::new(),
        }
    }
}

/// Longest origin kind, in bytes: a producer chooses its origin id.
pub const MAX_KIND_BYTES: usize = 64;

/// The kind of an origin, the only origin label figures are split by (an origin id names an
/// instance, so as a label it would grow without bound): the longest configured prefix it
/// starts with, else the id up to its first '-', else the whole id; at most
/// [`MAX_KIND_BYTES`], cut at a character boundary.
pub fn origin_kind<'a>(origin: &'a str, prefixes: &'a [String]) -> &'a str {
    let kind = prefixes
        .iter()
        .filter(|p| !p.is_empty() && origin.starts_with(p.as_str()))
        .max_by_key(|p| p.len())
        .map_or_else(
            || origin.split('-').next().unwrap_or(origin),
            String::as_str,
        );
    let mut end = kind.len().min(MAX_KIND_BYTES);
    while !kind.is_char_boundary(end) {
        end -= 1;
    }
    &kind[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_of_an_origin_is_a_configured_prefix_or_the_id_up_to_its_first_dash() {
        let none: Vec<String> = Vec::new();
        assert_eq!(origin_kind("sim-machines-7", &none), "sim");
        assert_eq!(origin_kind("bridge", &none), "bridge");
        assert_eq!(origin_kind("-x", &none), "");
        let prefixes = vec!["sim-machines".to_string(), "sim".into(), String::new()];
        assert_eq!(origin_kind("sim-machines-7", &prefixes), "sim-machines");
        assert_eq!(origin_kind("simulator-2", &prefixes), "sim");
        assert_eq!(origin_kind("calls-3", &prefixes), "calls");
        // A hostile id cannot make a long label: cut at 64 bytes, on a character boundary.
        let long = "é".repeat(100);
        assert_eq!(origin_kind(&long, &none), "é".repeat(32));
        assert_eq!(origin_kind(&format!("a{long}"), &none).len(), 63);
    }

    #[test]
    fn the_config_reads_from_toml_like_maps_with_defaults() {
        let c: CompletenessConfig =
            serde_json::from_str(r#"{"grace_ms": 5000, "kind_prefixes": ["sim-"]}"#).unwrap();
        assert_eq!(c.grace_ms, 5_000);
        assert_eq!(c.horizon_ms, 60_000);
        assert!(serde_json::from_str::<CompletenessConfig>(r#"{"grace": 1}"#).is_err());
    }
}
