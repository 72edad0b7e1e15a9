//! An MQTT broker the watcher is not connected to.

use super::NameMatch;
use crate::alerts::engine::{Observation, RuleKind};
use crate::alerts::snapshot::Snapshot;

/// The watcher is not connected to the broker (value: 1 connected, 0 not).
#[derive(Debug)]
pub struct MqttUnreachable {
    pub broker: NameMatch,
}

impl RuleKind for MqttUnreachable {
    fn kind(&self) -> &'static str {
        "mqtt_unreachable"
    }
    fn label_names(&self) -> &'static [&'static str] {
        &["broker"]
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        snapshot
            .mqtt
            .iter()
            .filter(|b| self.broker.matches(&b.broker))
            .map(|b| {
                Observation::new(
                    [("broker", b.broker.clone())],
                    if b.connected { 1.0 } else { 0.0 },
                    !b.connected,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::snapshot::MqttBrokerFacts;

    #[test]
    fn holds_for_each_broker_not_connected() {
        let b = |name: &str, connected| MqttBrokerFacts {
            broker: name.into(),
            connected,
            ..Default::default()
        };
        let snapshot = Snapshot {
            time_ms: 0,
            kafka: vec![],
            mqtt: vec![b("edge", true), b("plant", false)],
            ..Snapshot::default()
        };
        let obs = MqttUnreachable {
            broker: NameMatch::any(),
        }
        .observe(&snapshot);
        let held: Vec<_> = obs
            .iter()
            .filter(|o| o.holds)
            .map(|o| o.labels["broker"].as_str())
            .collect();
        assert_eq!(held, ["plant"]);
        assert_eq!(obs.len(), 2);
    }
}
