//! Pure logic of the pipeline parts (simulators, bridge, processors, sink): trace headers,
//! fault injection,
//! partitioning, sampling, running totals, event-time windows, counts over the last minute
//! (their InfluxDB line protocol is in [`crate::line_protocol`]).

pub mod calls;
pub mod fault;
pub mod health;
pub mod lineage;
pub mod mapping;
pub mod partition;
pub mod recent;
pub mod topic_template;
pub mod totals;
pub mod trace;
pub mod traffic;
pub mod visits;
pub mod window;
