//! Kinds over what the record readers measure: an observed flow's edge (lost, duplicated,
//! latency), a quality topic's error records per minute and its schema drift.

use std::collections::BTreeMap;

use super::{NameMatch, seconds};
use crate::EpochMillis;
use crate::alerts::engine::{Observation, RuleKind};
use crate::alerts::snapshot::Snapshot;

/// Which figure of an edge a [`FlowEdge`] rule compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeFigure {
    /// Records lost over the last minute.
    Lost,
    /// Records duplicated over the last minute.
    Duplicated,
    /// p99 latency (ms) over the last minute; no records: does not hold.
    P99Ms,
}

/// An edge's figure above `above`.
#[derive(Debug)]
pub struct FlowEdge {
    pub flow: NameMatch,
    pub figure: EdgeFigure,
    pub above: f64,
}

impl RuleKind for FlowEdge {
    fn kind(&self) -> &'static str {
        match self.figure {
            EdgeFigure::Lost => "flow_lost",
            EdgeFigure::Duplicated => "flow_duplicated",
            EdgeFigure::P99Ms => "flow_latency_p99",
        }
    }
    fn label_names(&self) -> &'static [&'static str] {
        &["flow", "edge"]
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        snapshot
            .edges
            .iter()
            .filter(|e| self.flow.matches(&e.flow))
            .map(|e| {
                let value = match self.figure {
                    EdgeFigure::Lost => Some(e.lost_1m),
                    EdgeFigure::Duplicated => Some(e.duplicated_1m),
                    EdgeFigure::P99Ms => e.p99_ms_1m,
                };
                Observation::new(
                    [("flow", e.flow.clone()), ("edge", e.edge.clone())],
                    value.unwrap_or(f64::NAN),
                    value.is_some_and(|v| v > self.above),
                )
            })
            .collect()
    }
}

/// A quality topic's records breaking a rule over the last minute, above `above`.
#[derive(Debug)]
pub struct QualityErrors {
    pub quality: NameMatch,
    pub above: f64,
}

impl RuleKind for QualityErrors {
    fn kind(&self) -> &'static str {
        "quality_errors"
    }
    fn label_names(&self) -> &'static [&'static str] {
        &["quality"]
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        snapshot
            .quality
            .iter()
            .filter(|q| self.quality.matches(&q.name))
            .map(|q| {
                let errors = q.error_records_1m;
                Observation::new([("quality", q.name.clone())], errors, errors > self.above)
            })
            .collect()
    }
}

/// A quality topic had a schema drift event within the last `hold_ms` (value: seconds since
/// the newest one the rule saw). Drift is an event; this keeps it an alert for a while.
#[derive(Debug)]
pub struct QualityDrift {
    pub quality: NameMatch,
    pub hold_ms: u64,
    /// Per quality topic: the drift total last seen, and when it last grew.
    seen: BTreeMap<String, (u64, Option<EpochMillis>)>,
}

impl QualityDrift {
    pub fn new(quality: NameMatch, hold_ms: u64) -> Self {
        Self {
            quality,
            hold_ms,
            seen: BTreeMap::new(),
        }
    }
}

impl RuleKind for QualityDrift {
    fn kind(&self) -> &'static str {
        "quality_drift"
    }
    fn label_names(&self) -> &'static [&'static str] {
        &["quality"]
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        let now = snapshot.time_ms;
        // Quality topics are configured: as many entries as the file has.
        let mut out = Vec::new();
        for q in snapshot
            .quality
            .iter()
            .filter(|q| self.quality.matches(&q.name))
        {
            let entry = self
                .seen
                .entry(q.name.clone())
                .or_insert((q.drift_events_total, None));
            if q.drift_events_total > entry.0 {
                *entry = (q.drift_events_total, Some(now));
            }
            let since = entry.1.map(|t| now.saturating_sub(t));
            out.push(Observation::new(
                [("quality", q.name.clone())],
                since.map_or(f64::NAN, seconds),
                since.is_some_and(|s| s < self.hold_ms),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::snapshot::{FlowEdgeFacts, QualityFacts};

    fn snapshot(time_ms: EpochMillis, drift: u64) -> Snapshot {
        Snapshot {
            time_ms,
            edges: vec![
                FlowEdgeFacts {
                    flow: "machines".into(),
                    edge: "mqtt → kafka".into(),
                    lost_1m: 3.0,
                    duplicated_1m: 0.0,
                    p99_ms_1m: Some(250.0),
                },
                FlowEdgeFacts {
                    flow: "visits".into(),
                    edge: "a → b".into(),
                    p99_ms_1m: None,
                    ..Default::default()
                },
            ],
            quality: vec![
                QualityFacts {
                    name: "visits".into(),
                    error_records_1m: 12.0,
                    drift_events_total: drift,
                },
                QualityFacts {
                    name: "new".into(),
                    error_records_1m: 0.0,
                    drift_events_total: 0,
                },
            ],
            ..Snapshot::default()
        }
    }

    fn holding(kind: &mut dyn RuleKind, s: &Snapshot) -> Vec<(String, f64)> {
        kind.observe(s)
            .into_iter()
            .filter(|o| o.holds)
            .map(|o| {
                (
                    o.labels.values().cloned().collect::<Vec<_>>().join("/"),
                    o.value,
                )
            })
            .collect()
    }

    #[test]
    fn edge_figures_above_their_threshold() {
        let s = snapshot(0, 0);
        let mut lost = FlowEdge {
            flow: NameMatch::any(),
            figure: EdgeFigure::Lost,
            above: 0.0,
        };
        assert_eq!(
            holding(&mut lost, &s),
            [("mqtt → kafka/machines".to_string(), 3.0)]
        );
        let mut dup = FlowEdge {
            flow: NameMatch::any(),
            figure: EdgeFigure::Duplicated,
            above: 0.0,
        };
        assert!(holding(&mut dup, &s).is_empty());
        let mut slow = FlowEdge {
            flow: NameMatch::any(),
            figure: EdgeFigure::P99Ms,
            above: 200.0,
        };
        assert_eq!(
            holding(&mut slow, &s),
            [("mqtt → kafka/machines".to_string(), 250.0)]
        );
        assert_eq!(
            slow.observe(&s).len(),
            2,
            "an edge with no records is observed, not holding"
        );
    }

    #[test]
    fn quality_errors_over_the_last_minute_above_the_threshold() {
        let mut rule = QualityErrors {
            quality: NameMatch::any(),
            above: 10.0,
        };
        assert_eq!(
            holding(&mut rule, &snapshot(0, 0)),
            [("visits".to_string(), 12.0)]
        );
    }

    #[test]
    fn drift_holds_for_a_while_after_each_new_event() {
        let mut rule = QualityDrift::new(NameMatch::regex("visits").unwrap(), 60_000);
        assert!(
            holding(&mut rule, &snapshot(0, 2)).is_empty(),
            "events before the rule saw the topic"
        );
        assert_eq!(
            holding(&mut rule, &snapshot(1_000, 3)),
            [("visits".to_string(), 0.0)]
        );
        assert_eq!(
            holding(&mut rule, &snapshot(60_999, 3)),
            [("visits".to_string(), 59.999)]
        );
        assert!(holding(&mut rule, &snapshot(61_000, 3)).is_empty());
        assert_eq!(
            holding(&mut rule, &snapshot(70_000, 4)),
            [("visits".to_string(), 0.0)]
        );
    }
}
