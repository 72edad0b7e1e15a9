//! pipescope: watches MQTT + Kafka data pipelines end to end.
//!
//! The binary's pieces: the command line ([`cli`]), the configuration ([`config`]), the monitor
//! that `pipescope run` starts ([`monitor`]), the internal bus of samples ([`bus`]), Prometheus
//! exposition ([`metrics`]) and the HTTP server ([`web`]). Pure logic lives in
//! the `pipescope-core` crate.

pub mod alerts;
pub mod allocator;
pub mod api;
pub mod bus;
pub mod cli;
pub mod completeness;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod export;
pub mod health;
pub mod isolated;
pub mod kafka;
pub mod log;
pub mod metrics;
pub mod monitor;
pub mod mqtt;
pub mod parts_watch;
pub mod pipeline;
pub mod portal;
pub mod probe;
pub mod profile;
pub mod quality;
pub mod series;
pub mod shutdown;
pub mod store;
pub mod sync;
pub mod tls;
pub mod web;
