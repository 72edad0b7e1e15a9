//! A watched pipeline part that is down (its `/health` does not answer) or unhealthy (its own
//! `pipescope_part_health_status` is 0).

use super::NameMatch;
use crate::alerts::engine::{Observation, RuleKind};
use crate::alerts::snapshot::Snapshot;

/// Value: 1 healthy, 0 unhealthy, -1 down. Parts not yet polled are left out.
#[derive(Debug)]
pub struct PartDown {
    pub part: NameMatch,
    /// Also alert on a part that answers but says it is unhealthy.
    pub unhealthy_too: bool,
}

impl RuleKind for PartDown {
    fn kind(&self) -> &'static str {
        "part_down"
    }
    fn label_names(&self) -> &'static [&'static str] {
        &["part"]
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        snapshot
            .parts
            .iter()
            .filter(|p| p.polled && self.part.matches(&p.name))
            .map(|p| {
                let value = match (p.up, p.healthy) {
                    (false, _) => -1.0,
                    (true, false) => 0.0,
                    (true, true) => 1.0,
                };
                let holds = !p.up || (self.unhealthy_too && !p.healthy);
                Observation::new([("part", p.name.clone())], value, holds)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::snapshot::PartFacts;

    #[test]
    fn holds_for_parts_down_and_if_asked_unhealthy_but_not_before_a_poll() {
        let part = |name: &str, polled, up, healthy| PartFacts {
            name: name.into(),
            polled,
            up,
            healthy,
            error: None,
        };
        let snapshot = Snapshot {
            parts: vec![
                part("bridge", true, false, false),
                part("sink", true, true, false),
                part("sim", true, true, true),
                part("new", false, false, false),
            ],
            ..Snapshot::default()
        };
        let held = |unhealthy_too| {
            let obs = PartDown {
                part: NameMatch::any(),
                unhealthy_too,
            }
            .observe(&snapshot);
            assert_eq!(obs.len(), 3, "the part not polled yet is left out");
            obs.iter()
                .filter(|o| o.holds)
                .map(|o| (o.labels["part"].clone(), o.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(held(false), [("bridge".to_string(), -1.0)]);
        assert_eq!(
            held(true),
            [("bridge".to_string(), -1.0), ("sink".to_string(), 0.0)]
        );
    }
}
