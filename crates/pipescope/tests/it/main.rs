//! pipescope's integration tests: the binary as a user runs it, and the HTTP router.

mod alerts;
mod cli;
mod completeness;
#[cfg(feature = "demo")]
mod demo;
mod deploy;
mod faults;
mod health;
mod hostile_kafka;
mod influx;
mod kafka;
mod mqtt;
mod notify;
mod offsets_topic;
mod part_health;
mod pipeline;
mod probes;
mod profile;
mod prometheus;
mod quality;
mod retention;
mod secure_kafka;
mod series;
mod shared_flow;
mod shutdown;
mod store;
mod store_faults;
mod support;
mod synthetic_cluster;
mod traffic;
mod visits;
mod web;
