//! The rule kinds. Each is a [`RuleKind`](super::engine::RuleKind) in its own file; the engine
//! knows none of them. To add a kind: a file here with its struct and tests, and one arm where
//! the configuration builds kinds (`crates/pipescope/src/alerts/kinds.rs`).

pub mod anomaly;
pub mod kafka;
pub mod mqtt;
pub mod parts;
pub mod pipeline;
pub mod silence;

use regex::Regex;

/// Which names a rule covers: all, or those the anchored regex matches whole.
#[derive(Debug, Clone, Default)]
pub struct NameMatch(Option<Regex>);

impl NameMatch {
    /// All names.
    pub fn any() -> Self {
        Self(None)
    }

    /// Names matching `pattern` whole (`orders-.*`); a plain name matches itself.
    pub fn regex(pattern: &str) -> Result<Self, regex::Error> {
        Regex::new(&format!("^(?:{pattern})$")).map(|r| Self(Some(r)))
    }

    /// `None` means all names.
    pub fn optional(pattern: Option<&str>) -> Result<Self, regex::Error> {
        pattern.map_or(Ok(Self::any()), Self::regex)
    }

    pub fn matches(&self, name: &str) -> bool {
        self.0.as_ref().is_none_or(|r| r.is_match(name))
    }
}

/// Seconds from milliseconds.
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_match_is_anchored_and_none_matches_all() {
        let m = NameMatch::regex("orders|pay.*").unwrap();
        assert!(m.matches("orders"));
        assert!(m.matches("payments"));
        assert!(!m.matches("old-orders"));
        assert!(!m.matches("orders-2"));
        assert!(NameMatch::any().matches("anything"));
        assert!(NameMatch::regex("(").is_err());
    }
}
