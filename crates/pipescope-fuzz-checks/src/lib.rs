//! What every fuzz target checks, one `pub fn <target>(data: &[u8])` each, on stable.
//!
//! `fuzz/fuzz_targets/<target>.rs` (cargo-fuzz, nightly) calls the function of the same name in
//! one line; the replay test (tests/it) runs every file under `fuzz/regressions/<target>/`
//! through it, so the minimized corpora and every crash found stay fixed in the normal suite.
//! A check fails by panicking.

mod anomaly;
mod exposition;
mod kafka;
mod line_protocol;
mod lineage;
mod matchers;
mod mqtt;
mod quality_rules;
mod store_chunk;
mod time_param;
mod windower;

pub use anomaly::rate_anomaly;
pub use exposition::metrics_exposition;
pub use kafka::{kafka_assignment, kafka_offsets_topic, kafka_record_batch, kafka_response};
pub use line_protocol::line_protocol;
pub use lineage::lineage_inputs;
pub use matchers::label_matchers;
pub use mqtt::{mqtt_oversize, mqtt_sys, mqtt_tree};
pub use quality_rules::quality_rules;
pub use store_chunk::store_chunk;
pub use time_param::time_params;
pub use windower::windower;

/// A target's check: panics when the input breaks what the target checks.
pub type Check = fn(&[u8]);

/// Every target by name, as its file in fuzz/fuzz_targets and its folder in fuzz/regressions.
pub const TARGETS: &[(&str, Check)] = &[
    ("kafka_assignment", kafka_assignment),
    ("kafka_offsets_topic", kafka_offsets_topic),
    ("kafka_record_batch", kafka_record_batch),
    ("kafka_response", kafka_response),
    ("label_matchers", label_matchers),
    ("line_protocol", line_protocol),
    ("lineage_inputs", lineage_inputs),
    ("metrics_exposition", metrics_exposition),
    ("mqtt_oversize", mqtt_oversize),
    ("mqtt_sys", mqtt_sys),
    ("mqtt_tree", mqtt_tree),
    ("quality_rules", quality_rules),
    ("rate_anomaly", rate_anomaly),
    ("store_chunk", store_chunk),
    ("time_params", time_params),
    ("windower", windower),
];
