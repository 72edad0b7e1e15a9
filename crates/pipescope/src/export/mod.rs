//! Exporters: copies of the sample stream sent to other systems.

pub mod influx;
