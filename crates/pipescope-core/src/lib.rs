//! Pure logic of pipescope: model types, formulas (rates, lag, verdicts, roll-ups) and rules.
//!
//! Nothing here performs I/O or reads the wall clock directly: time comes in through [`Clock`],
//! so every formula can be unit tested exactly.

pub mod alerts;
pub mod backoff;
pub mod clock;
pub mod completeness;
pub mod exposition;
pub mod health;
pub mod kafka;
pub mod line_protocol;
pub mod live;
pub mod mqtt;
pub mod mqtt_filter;
pub mod paging;
pub mod pipeline;
pub mod quality;
pub mod sample;
pub mod series_budget;
#[cfg(test)]
mod test_rng;
pub mod tsdb;
pub mod windows;

pub use clock::{Clock, EpochMillis, ManualClock, SystemClock};
pub use sample::{Labels, Sample};
