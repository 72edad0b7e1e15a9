//! Data quality: profiles of the records on a topic (docs/quality.md), the rules their fields
//! must keep and the schema drift between windows (docs/quality-rules.md).

pub mod drift;
pub mod profile;
pub mod reports;
pub mod rules;
pub mod sketch;
pub mod summary;

pub use profile::{FieldProfile, Observed, Profile, ProfileLimits, ValueType};
pub use summary::{Alert, FieldSummary, ProfileSummary};
