//! The testkit's own tests: each real service starts, answers, and does what later tests rely on.

mod influx;
mod kafka;
mod mqtt;
