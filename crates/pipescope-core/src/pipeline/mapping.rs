//! How the bridge maps MQTT topics to Kafka topics and keys.
//!
//! A mapping is written `FILTER=TOPIC`, for example `machine/+/+/#=machine.data`. The Kafka
//! topic may name levels of the MQTT topic as `{N}` (0-based): `machine/+/#=machine.{1}`.
//! The record key is the levels matched by the filter's `+` wildcards joined by `/`
//! (`machine/l1/m3/temp` → `l1/m3`); with no `+` it is the whole MQTT topic.

use std::fmt;

use crate::mqtt_filter;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMapping {
    pub filter: String,
    pub topic: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError(pub String);

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MappingError {}

impl TopicMapping {
    /// Parses `FILTER=TOPIC`.
    pub fn parse(spec: &str) -> Result<Self, MappingError> {
        let (filter, topic) = spec.rsplit_once('=').ok_or_else(|| {
            MappingError(format!(
                "mapping {spec:?} has no '=': write it as FILTER=TOPIC, for example 'machine/+/+/#=machine.data'"
            ))
        })?;
        Self::new(filter.trim(), topic.trim())
    }

    pub fn new(filter: &str, topic: &str) -> Result<Self, MappingError> {
        mqtt_filter::validate(filter)
            .map_err(|e| MappingError(format!("mapping filter {filter:?}: {e}")))?;
        if topic.is_empty() {
            return Err(MappingError(format!(
                "mapping of {filter:?} has an empty Kafka topic"
            )));
        }
        // Check the placeholders once, so mapping a message cannot fail on them later.
        let mut rest = topic;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').ok_or_else(|| {
                MappingError(format!(
                    "Kafka topic template {topic:?} has an unclosed '{{'"
                ))
            })?;
            let inner = &rest[open + 1..open + close];
            inner.parse::<usize>().map_err(|_| {
                MappingError(format!(
                    "Kafka topic template {topic:?}: {{{inner}}} is not a level number such as {{1}}"
                ))
            })?;
            rest = &rest[open + close + 1..];
        }
        Ok(Self {
            filter: filter.to_owned(),
            topic: topic.to_owned(),
        })
    }

    pub fn matches(&self, mqtt_topic: &str) -> bool {
        mqtt_filter::matches(&self.filter, mqtt_topic)
    }

    /// The Kafka topic for `mqtt_topic`; `None` when a `{N}` names a level the topic lacks
    /// or the result is not a legal Kafka topic name.
    pub fn kafka_topic(&self, mqtt_topic: &str) -> Option<String> {
        let levels: Vec<&str> = mqtt_topic.split('/').collect();
        let mut out = String::new();
        let mut rest = self.topic.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = open + rest[open..].find('}')?;
            let n: usize = rest[open + 1..close].parse().ok()?;
            out.push_str(levels.get(n)?);
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        let legal = !out.is_empty()
            && out.len() <= 249
            && out
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        legal.then_some(out)
    }

    /// The record key for `mqtt_topic` (which must match the filter).
    pub fn key(&self, mqtt_topic: &str) -> String {
        let levels: Vec<&str> = mqtt_topic.split('/').collect();
        let picked: Vec<&str> = self
            .filter
            .split('/')
            .enumerate()
            .filter(|(_, f)| *f == "+")
            .filter_map(|(i, _)| levels.get(i).copied())
            .collect();
        if picked.is_empty() {
            mqtt_topic.to_owned()
        } else {
            picked.join("/")
        }
    }
}

/// The first mapping whose filter matches, with its index.
pub fn route<'a>(
    mappings: &'a [TopicMapping],
    mqtt_topic: &str,
) -> Option<(usize, &'a TopicMapping)> {
    mappings
        .iter()
        .enumerate()
        .find(|(_, m)| m.matches(mqtt_topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_maps_topic_and_key() {
        let m = TopicMapping::parse("machine/+/+/#=machine.data").unwrap();
        assert!(m.matches("machine/l1/m3/temp"));
        assert!(!m.matches("plant/l1/m3/temp"));
        assert_eq!(m.kafka_topic("machine/l1/m3/temp").unwrap(), "machine.data");
        assert_eq!(m.key("machine/l1/m3/temp"), "l1/m3");
        let whole = TopicMapping::parse("alarms/#=alarms").unwrap();
        assert_eq!(whole.key("alarms/a/b"), "alarms/a/b");
    }

    #[test]
    fn templates_take_levels() {
        let m = TopicMapping::parse("machine/+/#=machine.{1}").unwrap();
        assert_eq!(m.kafka_topic("machine/l2/m/t").unwrap(), "machine.l2");
        assert_eq!(m.kafka_topic("machine/bad level/m").as_deref(), None);
        let m = TopicMapping::parse("a/#=x.{5}").unwrap();
        assert_eq!(m.kafka_topic("a/b"), None);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(
            TopicMapping::parse("machine/#")
                .unwrap_err()
                .0
                .contains("no '='")
        );
        assert!(
            TopicMapping::parse("machine/#a=x")
                .unwrap_err()
                .0
                .contains("'#'")
        );
        assert!(
            TopicMapping::parse("a/#=")
                .unwrap_err()
                .0
                .contains("empty Kafka topic")
        );
        assert!(
            TopicMapping::parse("a/#=x.{y}")
                .unwrap_err()
                .0
                .contains("level number")
        );
        assert!(
            TopicMapping::parse("a/#=x.{1")
                .unwrap_err()
                .0
                .contains("unclosed")
        );
    }

    #[test]
    fn the_first_matching_mapping_routes() {
        let maps = [
            TopicMapping::parse("machine/l1/#=first").unwrap(),
            TopicMapping::parse("machine/#=second").unwrap(),
        ];
        assert_eq!(route(&maps, "machine/l1/x").unwrap().0, 0);
        assert_eq!(route(&maps, "machine/l2/x").unwrap().0, 1);
        assert!(route(&maps, "other").is_none());
    }
}
