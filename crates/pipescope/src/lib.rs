//! pipescope: watches MQTT + Kafka data pipelines end to end.
//!
//! The binary's pieces: the command line ([`cli`]), the configuration ([`config`]), the monitor
//! that `pipescope run` starts ([`monitor`]) and the HTTP server ([`web`]). Pure logic lives in
//! the `pipescope-core` crate.

pub mod cli;
pub mod config;
pub mod monitor;
pub mod web;
