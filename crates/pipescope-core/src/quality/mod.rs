//! Data quality: profiles of the records on a topic (see docs/quality.md).

pub mod profile;
pub mod sketch;
pub mod summary;

pub use profile::{FieldProfile, Observed, Profile, ProfileLimits, ValueType};
pub use summary::{Alert, FieldSummary, ProfileSummary};
