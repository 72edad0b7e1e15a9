//! Pure logic of the pipeline parts (simulators, bridge, processors, sink): trace headers,
//! partitioning, sampling, running totals, event-time windows and InfluxDB line protocol.

pub mod backoff;
pub mod calls;
pub mod line_protocol;
pub mod mapping;
pub mod partition;
pub mod totals;
pub mod trace;
pub mod traffic;
pub mod window;
