//! MQTT topic filters (`a/+/c`, `a/#`): validation and matching, as the MQTT 3.1.1 and 5
//! specifications define them.

use std::fmt;

/// Why a topic filter is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    Empty,
    /// `#` must be the whole last level (`a/#`, `#`), not `a/b#` or `#/a`.
    MisplacedMultiLevel,
    /// `+` must be a whole level (`a/+/c`), not `a+`.
    MisplacedSingleLevel,
    /// The specifications forbid the NUL character in topics and filters.
    ContainsNul,
    /// A UTF-8 encoded filter is at most 65,535 bytes long.
    TooLong(usize),
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::Empty => write!(f, "a topic filter cannot be empty"),
            FilterError::MisplacedMultiLevel => {
                write!(f, "'#' must be the whole last level, as in \"sensors/#\"")
            }
            FilterError::MisplacedSingleLevel => {
                write!(f, "'+' must fill a whole level, as in \"sensors/+/temp\"")
            }
            FilterError::ContainsNul => write!(f, "a topic filter cannot contain NUL"),
            FilterError::TooLong(n) => {
                write!(f, "a topic filter is at most 65535 bytes, this one is {n}")
            }
        }
    }
}

impl std::error::Error for FilterError {}

/// Checks that `filter` is a topic filter a broker will accept.
pub fn validate(filter: &str) -> Result<(), FilterError> {
    if filter.is_empty() {
        return Err(FilterError::Empty);
    }
    if filter.len() > 65_535 {
        return Err(FilterError::TooLong(filter.len()));
    }
    if filter.contains('\0') {
        return Err(FilterError::ContainsNul);
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i != last) {
            return Err(FilterError::MisplacedMultiLevel);
        }
        if level.contains('+') && *level != "+" {
            return Err(FilterError::MisplacedSingleLevel);
        }
    }
    Ok(())
}

/// Whether `topic` matches a valid `filter`. Topics starting with `$` are not matched by a
/// filter starting with a wildcard (MQTT 3.1.1 §4.7.2), so `#` does not include `$SYS/...`.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('#') || filter.starts_with('+')) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if topic_levels.next().is_none() {
                    return false;
                }
            }
            exact => {
                if topic_levels.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_filters() {
        for f in [
            "#", "+", "a/b", "a/+/c", "a/#", "+/+", "/", "a//b", "$SYS/#", "+/#",
        ] {
            assert_eq!(validate(f), Ok(()), "{f}");
        }
    }

    #[test]
    fn rejects_invalid_filters_with_the_reason() {
        assert_eq!(validate(""), Err(FilterError::Empty));
        assert_eq!(validate("a/#/b"), Err(FilterError::MisplacedMultiLevel));
        assert_eq!(validate("a/b#"), Err(FilterError::MisplacedMultiLevel));
        assert_eq!(validate("a+/b"), Err(FilterError::MisplacedSingleLevel));
        assert_eq!(validate("a\0b"), Err(FilterError::ContainsNul));
        assert_eq!(
            validate(&"x".repeat(65_536)),
            Err(FilterError::TooLong(65_536))
        );
    }

    #[test]
    fn matches_as_the_specification_says() {
        assert!(matches("#", "a/b/c"));
        assert!(matches("a/#", "a"), "'#' also matches the parent level");
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/d"));
        assert!(!matches("a/+", "a/b/c"));
        assert!(matches("+/+", "/x"), "an empty level is a level");
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("#", "$SYS/broker/uptime"));
        assert!(!matches("+/broker", "$SYS/broker"));
        assert!(matches("$SYS/#", "$SYS/broker/uptime"));
    }
}
