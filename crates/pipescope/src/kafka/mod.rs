//! The Kafka watcher: an admin connection layer over `kafka-protocol` ([`conn`]), the scrape of
//! a whole cluster in few batched requests ([`scrape`]), the live state it keeps ([`state`]),
//! and its outputs: samples on the bus, the JSON API ([`api`]) and Prometheus metrics ([`metrics`]).

pub mod conn;
pub mod scram;
pub mod scrape;
pub mod state;
pub mod tls;
