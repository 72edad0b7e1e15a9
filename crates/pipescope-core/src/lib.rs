//! Pure logic of pipescope: model types, formulas (rates, lag, verdicts, roll-ups) and rules.
//!
//! Nothing here performs I/O or reads the wall clock directly: time comes in through [`Clock`],
//! so every formula can be unit tested exactly.

pub mod backoff;
pub mod clock;
pub mod influx;
pub mod kafka;
pub mod mqtt;
pub mod mqtt_filter;
pub mod pipeline;
pub mod portal;
pub mod sample;
pub mod tsdb;

pub use clock::{Clock, EpochMillis, ManualClock, SystemClock};
pub use sample::{Labels, Sample};
