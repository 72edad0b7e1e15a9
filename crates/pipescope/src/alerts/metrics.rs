//! `pipescope_alerts_*`, read at scrape time. Bounded: the `rule` label is a configured rule's
//! name, `severity` and `to` are from short fixed lists.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::AlertsState;
use crate::completeness::metrics::{Series, encode_families};
use pipescope_core::alerts::AlertState;

/// Every metric name this module emits (deploy/metrics.txt lists them).
pub const NAMES: [&str; 4] = [
    "pipescope_alerts_firing",
    "pipescope_alerts_pending",
    "pipescope_alerts_transitions_total",
    "pipescope_alerts_dropped_total",
];

fn help(name: &str) -> &'static str {
    match name {
        "pipescope_alerts_firing" => "Alerts of the rule firing now",
        "pipescope_alerts_pending" => {
            "Alerts of the rule pending now (holding, for less than the rule's for)"
        }
        "pipescope_alerts_transitions_total" => {
            "Alert state changes of the rule, by the state entered (pending, firing, resolved, inactive)"
        }
        "pipescope_alerts_dropped_total" => {
            "New alerts of the rule left out because it had max_instances_per_rule"
        }
        _ => "",
    }
}

fn label(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

pub fn series(state: &AlertsState) -> Vec<Series> {
    let instances = state.instances();
    let mut out = Vec::new();
    for rule in state.rules() {
        let count = |s: AlertState| {
            instances
                .iter()
                .filter(|i| i.rule == rule.name && i.state == s)
                .count() as f64
        };
        out.push(Series {
            name: "pipescope_alerts_firing",
            labels: vec![
                label("rule", &rule.name),
                label("severity", rule.severity.as_str()),
            ],
            value: count(AlertState::Firing),
        });
        out.push(Series {
            name: "pipescope_alerts_pending",
            labels: vec![label("rule", &rule.name)],
            value: count(AlertState::Pending),
        });
    }
    for ((rule, to), n) in state.transitions_total() {
        out.push(Series {
            name: "pipescope_alerts_transitions_total",
            labels: vec![label("rule", &rule), label("to", to)],
            value: n as f64,
        });
    }
    for (rule, n) in state.dropped() {
        out.push(Series {
            name: "pipescope_alerts_dropped_total",
            labels: vec![label("rule", &rule)],
            value: n as f64,
        });
    }
    out
}

#[derive(Debug, Clone)]
pub struct AlertsCollector {
    state: AlertsState,
}

impl AlertsCollector {
    pub fn new(state: AlertsState) -> Self {
        Self { state }
    }
}

impl Collector for AlertsCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_families(encoder, series(&self.state), help)
    }
}
