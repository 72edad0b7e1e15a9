//! DescribeConfigs: the topic configs that matter for monitoring, and the ones kept between
//! scrapes.

use std::collections::HashMap;

use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::protocol::StrBytes;

use super::refusals::Refusable;
use super::{Item, Scraper, code_error, name, text};
use crate::kafka::conn::{KafkaError, Lane};
use crate::kafka::state::{ClusterState, TopicConfig, TopicState};

/// Topic configs are read for every topic once in this many scrapes (and for new topics at
/// once); in between, the previous scrape's are kept.
pub const CONFIG_REFRESH_SCRAPES: u64 = 6;
/// Highest version asked for (the code below was written for it).
const DESCRIBE_CONFIGS_MAX: i16 = 4;
const CONFIG_KEYS: [&str; 4] = [
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "min.insync.replicas",
];

/// Topic configs change rarely: the ones the previous scrape read are kept (same topic id) and
/// all are read again every few scrapes; new topics are read at once.
pub(super) struct ConfigCache<'a> {
    known: HashMap<&'a str, TopicConfig>,
}

impl<'a> ConfigCache<'a> {
    /// The configs of `previous` still good for this scrape's `topics`; none on a refresh.
    pub fn new(previous: Option<&'a ClusterState>, scrape: u64, topics: &[TopicState]) -> Self {
        let mut known = HashMap::new();
        if let Some(previous) = previous.filter(|_| !scrape.is_multiple_of(CONFIG_REFRESH_SCRAPES))
        {
            let ids: HashMap<&str, Option<&str>> = topics
                .iter()
                .map(|t| (t.name.as_str(), t.id.as_deref()))
                .collect();
            for t in &previous.topics {
                if let (Ok(config), Some(id)) = (&t.config, ids.get(t.name.as_str()))
                    && *id == t.id.as_deref()
                {
                    known.insert(t.name.as_str(), config.clone());
                }
            }
        }
        Self { known }
    }

    /// The topics whose configs must be read this scrape.
    pub fn to_read(&self, topics: &[TopicState]) -> Vec<String> {
        topics
            .iter()
            .filter(|t| !self.known.contains_key(t.name.as_str()))
            .map(|t| t.name.clone())
            .collect()
    }

    /// Puts on every topic its kept config or the one read now (or why there is none).
    pub fn fill(
        &mut self,
        topics: &mut [TopicState],
        read: Item<HashMap<String, Item<TopicConfig>>>,
    ) {
        let (configs, config_error) = match read {
            Ok(map) => (map, None),
            Err(e) => (HashMap::new(), Some(e)),
        };
        for topic in topics {
            topic.config = match self.known.remove(topic.name.as_str()) {
                Some(known) => Ok(known),
                None => match (&config_error, configs.get(&topic.name)) {
                    (Some(e), _) => Err(e.clone()),
                    (None, Some(result)) => result.clone(),
                    (None, None) => Err("the broker did not describe this topic".to_string()),
                },
            };
        }
    }
}

impl Scraper {
    /// The monitoring-relevant configs of every topic, in one request.
    pub(super) async fn describe_configs(
        &self,
        scrape: u64,
        addr: Option<&str>,
        topics: &[String],
    ) -> Item<HashMap<String, Item<TopicConfig>>> {
        if topics.is_empty() {
            return Ok(HashMap::new());
        }
        let addr = addr.ok_or("no broker to ask for topic configs")?;
        let request = |keys: Option<Vec<StrBytes>>| {
            let mut request = DescribeConfigsRequest::default();
            request.resources = topics
                .iter()
                .map(|t| {
                    let mut r = DescribeConfigsResource::default();
                    r.resource_type = 2; // TOPIC
                    r.resource_name = name(t);
                    r.configuration_keys = keys.clone();
                    r
                })
                .collect();
            request
        };
        // tansu 0.6 drops the connection when asked for named keys; all keys it answers.
        // Once refused, all keys are asked for (no reconnect per scrape) until the retry.
        let refusable = Refusable::ConfigKeys {
            addr: addr.to_string(),
        };
        let all_keys = || async {
            self.pool
                .request_on(addr, Lane::Configs, DESCRIBE_CONFIGS_MAX, &request(None))
                .await
        };
        let response = if self.refusals.refusal(&refusable, scrape).is_some() {
            all_keys().await.map_err(|e| e.to_string())?
        } else {
            let keys = Some(CONFIG_KEYS.iter().map(|k| name(k)).collect());
            match self
                .pool
                .request_on(addr, Lane::Configs, DESCRIBE_CONFIGS_MAX, &request(keys))
                .await
            {
                Err(e @ KafkaError::Disconnected { .. }) => {
                    self.refusals.refuse(refusable, scrape, e.to_string());
                    all_keys().await.map_err(|e| e.to_string())?
                }
                Ok(response) => {
                    self.refusals.accept(&refusable);
                    response
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        Ok(response
            .results
            .iter()
            .map(|r| (text(&r.resource_name), topic_config(r)))
            .collect())
    }
}

/// The config of one topic in a DescribeConfigs answer.
fn topic_config(r: &DescribeConfigsResult) -> Item<TopicConfig> {
    if let Some(e) = code_error(r.error_code, r.error_message.as_ref()) {
        return Err(format!("DescribeConfigs: {e}"));
    }
    let get = |key: &str| {
        r.configs
            .iter()
            .find(|c| c.name.as_str() == key)
            .and_then(|c| c.value.as_ref().map(text))
    };
    Ok(TopicConfig {
        cleanup_policy: get("cleanup.policy"),
        retention_ms: get("retention.ms").and_then(|v| v.parse().ok()),
        retention_bytes: get("retention.bytes").and_then(|v| v.parse().ok()),
        min_insync_replicas: get("min.insync.replicas").and_then(|v| v.parse().ok()),
    })
}
