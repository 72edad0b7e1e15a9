//! Data quality: rules on the fields of a topic's records and schema drift between windows.
//!
//! A module of its own until it joins `quality` (profiles): the files already sit in quality/.

#[path = "quality/rules.rs"]
pub mod rules;

#[path = "quality/drift.rs"]
pub mod drift;
