//! Samples: the typed, timestamped values that watchers emit and the store and exporters read.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::clock::EpochMillis;

/// Label pairs of a series, kept sorted by name with unique names, so equal sets compare equal.
/// Shared and immutable: the several samples of one series (a scrape yields ~6 per group
/// partition) clone the set without copying its strings. Names are usually constants and values
/// repeat across series (a cluster, a topic, a group), so [`Labels::shared`] shares both rather
/// than copying them: a big cluster's scrape builds ~300,000 sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Arc<[(Cow<'static, str>, LabelValue)]>);

/// A label value: the `String` it was given (moved, not copied), or a string shared with other
/// sets. Compares, orders and hashes as its text.
#[derive(Debug, Clone)]
enum LabelValue {
    Owned(String),
    Shared(Arc<str>),
}

impl LabelValue {
    fn as_str(&self) -> &str {
        match self {
            Self::Owned(s) => s,
            Self::Shared(s) => s,
        }
    }
}

impl PartialEq for LabelValue {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for LabelValue {}

impl PartialOrd for LabelValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LabelValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for LabelValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Labels {
    /// Builds a label set; a name given twice keeps its last value.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self::sorted(
            pairs
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into()), LabelValue::Owned(v.into())))
                .collect(),
        )
    }

    /// [`Labels::new`] from constant names and values already shared: the values' strings are
    /// not copied (for the sets a scrape builds by the hundred thousand).
    pub fn shared(pairs: impl IntoIterator<Item = (&'static str, Arc<str>)>) -> Self {
        Self::sorted(
            pairs
                .into_iter()
                .map(|(k, v)| (Cow::Borrowed(k), LabelValue::Shared(v)))
                .collect(),
        )
    }

    fn sorted(mut pairs: Vec<(Cow<'static, str>, LabelValue)>) -> Self {
        // Stable sort keeps the order of equal names, so dedup can keep the last one given.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(Cow<'static, str>, LabelValue)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match unique.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => unique.push(pair),
            }
        }
        Self(unique.into())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `{name="value",...}` with Prometheus escaping of `\`, `"` and newlines.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}=\"")?;
            for c in v.as_str().chars() {
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// One value of one series at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, as exported: `pipescope_kafka_partition_end_offset`. Borrowed when it is
    /// a constant: a scrape makes ~100,000 samples of a few dozen names.
    pub metric: Cow<'static, str>,
    pub labels: Labels,
    pub time_ms: EpochMillis,
    pub value: f64,
}

impl Sample {
    pub fn new(
        metric: impl Into<Cow<'static, str>>,
        labels: Labels,
        time_ms: EpochMillis,
        value: f64,
    ) -> Self {
        Self {
            metric: metric.into(),
            labels,
            time_ms,
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_and_unique_keeping_the_last_value() {
        let labels = Labels::new([("topic", "a"), ("cluster", "prod"), ("topic", "b")]);
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            [("cluster", "prod"), ("topic", "b")]
        );
        assert_eq!(labels, Labels::new([("topic", "b"), ("cluster", "prod")]));
        assert_eq!(labels.get("topic"), Some("b"));
        assert_eq!(labels.get("nope"), None);
    }

    #[test]
    fn labels_display_escapes_like_prometheus() {
        let labels = Labels::new([("t", "a\"b\\c\nd"), ("a", "x")]);
        assert_eq!(labels.to_string(), r#"{a="x",t="a\"b\\c\nd"}"#);
        assert_eq!(Labels::default().to_string(), "{}");
    }

    #[test]
    fn shared_labels_equal_copied_ones_and_sort_and_dedup_alike() {
        let topic: Arc<str> = Arc::from("t");
        let shared = Labels::shared([
            ("topic", Arc::from("old")),
            ("cluster", Arc::from("prod")),
            ("topic", Arc::clone(&topic)),
        ]);
        let copied = Labels::new([("cluster", "prod"), ("topic", "t")]);
        assert_eq!(shared, copied);
        assert_eq!(shared.cmp(&copied), std::cmp::Ordering::Equal);
        use std::hash::BuildHasher;
        let state = std::hash::RandomState::new();
        assert_eq!(state.hash_one(&shared), state.hash_one(&copied));
        assert_eq!(shared.to_string(), r#"{cluster="prod",topic="t"}"#);
        // The value's string is the one given, not a copy.
        assert!(std::ptr::eq(shared.get("topic").unwrap(), &*topic));
        let given = String::from("moved");
        let at = given.as_ptr();
        assert_eq!(Labels::new([("k", given)]).get("k").unwrap().as_ptr(), at);
        // A value is no bigger than the `String` it replaced.
        assert_eq!(
            std::mem::size_of::<LabelValue>(),
            std::mem::size_of::<String>()
        );
    }
}
