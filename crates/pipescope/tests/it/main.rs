//! pipescope's integration tests: the binary as a user runs it, and the HTTP router.

mod cli;
mod demo;
mod web;
