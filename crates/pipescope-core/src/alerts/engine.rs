//! The alert engine: rules turn a [`Snapshot`] into observations, the engine keeps one state
//! per (rule, labels) and moves it inactive → pending → firing → resolved.
//!
//! A rule kind is anything that implements [`RuleKind`]; the engine knows none of them, so a new
//! kind is one new file (see `rules/`). Time is the snapshot's `time_ms`, so every transition is
//! tested exactly.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::snapshot::Snapshot;
use super::{AlertLabels, AlertNotice, AlertState, Severity};
use crate::EpochMillis;

/// Longest label value an observation may carry (longer ones are cut): group and topic names
/// come from brokers.
pub const MAX_LABEL_VALUE_CHARS: usize = 256;

/// One instance of a rule's condition at one evaluation: which thing (`labels`, e.g. cluster and
/// group), its value, and whether the condition holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub labels: AlertLabels,
    pub value: f64,
    pub holds: bool,
}

impl Observation {
    pub fn new<'a>(
        labels: impl IntoIterator<Item = (&'a str, String)>,
        value: f64,
        holds: bool,
    ) -> Self {
        Self {
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            value,
            holds,
        }
    }
}

/// A kind of rule: what it observes in a snapshot. It may keep state between evaluations (the
/// silence rules remember when an offset last moved); it must bound that state itself.
pub trait RuleKind: Send + Sync + std::fmt::Debug {
    /// The kind's name in the configuration (`group_lag_offsets`, …).
    fn kind(&self) -> &'static str;
    /// The labels its observations carry, for checking summary templates.
    fn label_names(&self) -> &'static [&'static str];
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation>;

    /// Stored history the kind learns from before its first evaluation (the rate anomaly's
    /// baselines); most kinds want none.
    fn history(&self) -> Option<HistoryWanted> {
        None
    }
    /// Whether the stored series with `labels` (of [`HistoryWanted::metric`]) is one it follows.
    fn follows(&self, _labels: &AlertLabels) -> bool {
        false
    }
    /// One followed series' past counts per window, oldest first.
    fn learn(&mut self, _labels: &AlertLabels, _windows: &[(EpochMillis, f64)]) {}
}

/// What stored history a rule kind learns from ([`RuleKind::history`]): counts per window of a
/// stored rate in messages per minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryWanted {
    pub metric: &'static str,
    /// Labels the stored series must have besides those the rule reads (`window="1m"`).
    pub labels: Vec<(&'static str, &'static str)>,
    /// One count per window this long.
    pub window_ms: u64,
    /// How far back to read.
    pub lookback_ms: u64,
    /// The most series worth reading (the rule's own cap).
    pub max_series: usize,
}

/// One configured rule.
#[derive(Debug)]
pub struct RuleSpec {
    pub name: String,
    /// How long the condition must hold before the alert fires (0: at once).
    pub for_ms: u64,
    pub severity: Severity,
    /// The rule's own labels (`team`, …), added to every instance's.
    pub labels: BTreeMap<String, String>,
    /// Template of the `summary` annotation (see [`render`]).
    pub summary: String,
    /// Template of the `description` annotation; none when empty.
    pub description: String,
    pub kind: Box<dyn RuleKind>,
}

/// Bounds of the engine's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    /// Instances kept per rule (pending, firing and resolved); new ones past it are dropped
    /// and counted.
    pub max_instances_per_rule: usize,
    /// How long a resolved instance stays listed.
    pub keep_resolved_ms: u64,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            max_instances_per_rule: 1000,
            keep_resolved_ms: 15 * 60 * 1000,
        }
    }
}

/// One alert instance: what the API lists and the store keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertInstance {
    pub rule: String,
    /// `alertname`, `severity`, the rule's labels and the instance's.
    pub labels: AlertLabels,
    /// `summary`, `description` (when the rule has one), `value`.
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    /// When it entered its current state.
    pub since_ms: EpochMillis,
    /// When the condition began to hold (Alertmanager's `startsAt`).
    pub active_since_ms: EpochMillis,
    pub firing_since_ms: Option<EpochMillis>,
    pub resolved_at_ms: Option<EpochMillis>,
    /// The latest observed value; `None` when not a finite number (an ETA of never).
    pub value: Option<f64>,
}

impl AlertInstance {
    pub fn notice(&self, generator_url: &str) -> AlertNotice {
        AlertNotice {
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            state: self.state,
            starts_at: self.active_since_ms,
            ends_at: self.resolved_at_ms,
            generator_url: generator_url.to_string(),
        }
    }
}

/// A change of an instance's state; `None` is inactive.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub rule: String,
    pub labels: AlertLabels,
    pub from: Option<AlertState>,
    pub to: Option<AlertState>,
    pub at_ms: EpochMillis,
    pub value: Option<f64>,
}

/// The name of a state in metrics and events: `inactive` for `None`.
pub fn state_name(state: Option<AlertState>) -> &'static str {
    match state {
        None => "inactive",
        Some(AlertState::Pending) => "pending",
        Some(AlertState::Firing) => "firing",
        Some(AlertState::Resolved) => "resolved",
    }
}

/// A notice for the notifiers, and whether it is news (it just fired or resolved) or a repeat
/// of a firing alert (sent every evaluation, so notifiers can resend).
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    pub notice: AlertNotice,
    pub changed: bool,
    /// A firing alert an active silence covers: notifiers stop telling of it (the engine never
    /// sets this; whoever holds the silences does, see `silences`).
    pub silenced: bool,
}

/// What one evaluation changed and what the notifiers are told.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    pub time_ms: EpochMillis,
    pub transitions: Vec<Transition>,
    pub notices: Vec<Emitted>,
}

#[derive(Debug)]
pub struct Engine {
    rules: Vec<RuleSpec>,
    /// Per rule name, its instances by their full labels.
    instances: BTreeMap<String, BTreeMap<AlertLabels, AlertInstance>>,
    limits: EngineLimits,
    generator_url: String,
    dropped: BTreeMap<String, u64>,
}

impl Engine {
    pub fn new(rules: Vec<RuleSpec>, limits: EngineLimits, generator_url: String) -> Self {
        let instances = rules
            .iter()
            .map(|r| (r.name.clone(), BTreeMap::new()))
            .collect();
        let dropped = rules.iter().map(|r| (r.name.clone(), 0)).collect();
        Self {
            rules,
            instances,
            limits,
            generator_url,
            dropped,
        }
    }

    /// Takes back the instances a previous run kept (from the store): a firing alert stays
    /// firing with its original start, so it is neither forgotten nor announced again. Those of
    /// rules no longer configured, and those past the cap, are left out.
    pub fn restore(&mut self, kept: impl IntoIterator<Item = AlertInstance>) {
        for instance in kept {
            let max = self.limits.max_instances_per_rule;
            if let Some(map) = self.instances.get_mut(&instance.rule)
                && map.len() < max
            {
                map.insert(instance.labels.clone(), instance);
            }
        }
    }

    pub fn rules(&self) -> &[RuleSpec] {
        &self.rules
    }

    /// Each rule's name and kind, to feed the kinds their history ([`RuleKind::history`]).
    pub fn kinds_mut(&mut self) -> impl Iterator<Item = (&str, &mut dyn RuleKind)> {
        self.rules
            .iter_mut()
            .map(|r| (r.name.as_str(), &mut *r.kind as &mut dyn RuleKind))
    }

    /// Every instance, by rule name then labels.
    pub fn instances(&self) -> impl Iterator<Item = &AlertInstance> {
        self.instances.values().flat_map(|m| m.values())
    }

    /// Observations of new instances left out because the rule had its cap of instances.
    pub fn dropped(&self, rule: &str) -> u64 {
        self.dropped.get(rule).copied().unwrap_or(0)
    }

    pub fn generator_url(&self) -> &str {
        &self.generator_url
    }

    pub fn evaluate(&mut self, snapshot: &Snapshot) -> Evaluation {
        let now = snapshot.time_ms;
        let mut evaluation = Evaluation {
            time_ms: now,
            ..Evaluation::default()
        };
        for rule in &mut self.rules {
            let first_transition = evaluation.transitions.len();
            let map = self.instances.entry(rule.name.clone()).or_default();
            let mut seen = BTreeSet::new();
            let mut cleared = Vec::new();
            for observation in rule.kind.observe(snapshot) {
                let labels = full_labels(rule, &observation.labels);
                if !seen.insert(labels.clone()) {
                    continue;
                }
                let value = observation.value.is_finite().then_some(observation.value);
                let holds = observation.holds;
                match map.get_mut(&labels) {
                    Some(instance) => {
                        let active = step(rule, instance, holds, value, now, &mut evaluation);
                        if !active {
                            cleared.push(labels);
                        }
                    }
                    None if observation.holds => {
                        if map.len() >= self.limits.max_instances_per_rule {
                            *self.dropped.entry(rule.name.clone()).or_default() += 1;
                            continue;
                        }
                        let instance =
                            start_pending(rule, labels.clone(), None, value, now, &mut evaluation);
                        map.insert(labels, instance);
                    }
                    None => {}
                }
            }
            // What the rule no longer observes (a group gone) no longer holds.
            for (labels, instance) in map.iter_mut() {
                if !seen.contains(labels) {
                    let value = instance.value;
                    if !step(rule, instance, false, value, now, &mut evaluation) {
                        cleared.push(labels.clone());
                    }
                }
            }
            for labels in cleared {
                map.remove(&labels);
            }
            let keep_resolved = self.limits.keep_resolved_ms;
            map.retain(|_, i| {
                i.state != AlertState::Resolved
                    || now.saturating_sub(i.resolved_at_ms.unwrap_or(now)) < keep_resolved
            });
            let news: BTreeSet<&AlertLabels> = evaluation.transitions[first_transition..]
                .iter()
                .filter(|t| matches!(t.to, Some(AlertState::Firing | AlertState::Resolved)))
                .map(|t| &t.labels)
                .collect();
            for instance in map.values() {
                let changed = news.contains(&instance.labels);
                if instance.state == AlertState::Firing
                    || (instance.state == AlertState::Resolved && changed)
                {
                    evaluation.notices.push(Emitted {
                        notice: instance.notice(&self.generator_url),
                        changed,
                        silenced: false,
                    });
                }
            }
        }
        evaluation
    }
}

fn start_pending(
    rule: &RuleSpec,
    labels: AlertLabels,
    from: Option<AlertState>,
    value: Option<f64>,
    now: EpochMillis,
    evaluation: &mut Evaluation,
) -> AlertInstance {
    let mut instance = AlertInstance {
        rule: rule.name.clone(),
        labels,
        annotations: BTreeMap::new(),
        state: AlertState::Pending,
        since_ms: now,
        active_since_ms: now,
        firing_since_ms: None,
        resolved_at_ms: None,
        value,
    };
    annotate(rule, &mut instance);
    record(evaluation, &instance, from);
    if rule.for_ms == 0 {
        fire(rule, &mut instance, now, evaluation);
    }
    instance
}

/// One evaluation of an existing instance; `false` when it went back to inactive (to remove).
fn step(
    rule: &RuleSpec,
    instance: &mut AlertInstance,
    holds: bool,
    value: Option<f64>,
    now: EpochMillis,
    evaluation: &mut Evaluation,
) -> bool {
    match (instance.state, holds) {
        (AlertState::Pending, true) => {
            instance.value = value;
            annotate(rule, instance);
            if now.saturating_sub(instance.active_since_ms) >= rule.for_ms {
                fire(rule, instance, now, evaluation);
            }
        }
        (AlertState::Pending, false) => {
            instance.value = value;
            evaluation.transitions.push(Transition {
                rule: rule.name.clone(),
                labels: instance.labels.clone(),
                from: Some(AlertState::Pending),
                to: None,
                at_ms: now,
                value,
            });
            return false;
        }
        (AlertState::Firing, true) => {
            instance.value = value;
            annotate(rule, instance);
        }
        (AlertState::Firing, false) => {
            instance.value = value;
            instance.state = AlertState::Resolved;
            instance.since_ms = now;
            instance.resolved_at_ms = Some(now);
            annotate(rule, instance);
            record(evaluation, instance, Some(AlertState::Firing));
        }
        (AlertState::Resolved, true) => {
            let labels = instance.labels.clone();
            *instance = start_pending(
                rule,
                labels,
                Some(AlertState::Resolved),
                value,
                now,
                evaluation,
            );
        }
        (AlertState::Resolved, false) => {}
    }
    true
}

fn fire(
    rule: &RuleSpec,
    instance: &mut AlertInstance,
    now: EpochMillis,
    evaluation: &mut Evaluation,
) {
    instance.state = AlertState::Firing;
    instance.since_ms = now;
    instance.firing_since_ms = Some(now);
    annotate(rule, instance);
    record(evaluation, instance, Some(AlertState::Pending));
}

fn record(evaluation: &mut Evaluation, instance: &AlertInstance, from: Option<AlertState>) {
    evaluation.transitions.push(Transition {
        rule: instance.rule.clone(),
        labels: instance.labels.clone(),
        from,
        to: Some(instance.state),
        at_ms: instance.since_ms,
        value: instance.value,
    });
}

fn annotate(rule: &RuleSpec, instance: &mut AlertInstance) {
    let value = instance.value;
    let fill = |template: &str| render(template, &instance.labels, value);
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), fill(&rule.summary));
    if !rule.description.is_empty() {
        annotations.insert("description".to_string(), fill(&rule.description));
    }
    annotations.insert("value".to_string(), format_value(value));
    instance.annotations = annotations;
}

/// `alertname` and `severity`, then the rule's labels, then the instance's (cleaned).
fn full_labels(rule: &RuleSpec, instance: &AlertLabels) -> AlertLabels {
    let mut labels = rule.labels.clone();
    for (name, value) in instance {
        labels.insert(name.clone(), sanitize_label_value(value));
    }
    labels.insert("alertname".to_string(), rule.name.clone());
    labels.insert("severity".to_string(), rule.severity.as_str().to_string());
    labels
}

/// A label value as notifiers and the portal get it: control characters replaced by `?`, cut
/// at [`MAX_LABEL_VALUE_CHARS`] characters (a broker may name a group anything).
pub fn sanitize_label_value(value: &str) -> String {
    value
        .chars()
        .take(MAX_LABEL_VALUE_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A value as a summary shows it: an integer without decimals, otherwise up to 3 decimals;
/// `none` when unknown or infinite.
pub fn format_value(value: Option<f64>) -> String {
    match value {
        None => "none".to_string(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Some(v) => {
            let text = format!("{v:.3}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

/// Fills a summary template: `{name}` is the label `name` (`{group}`, `{topic}`, `{alertname}`,
/// a rule label), `{value}` the observed value; `{{` and `}}` are literal braces. An unknown
/// name is left as written (configuration checks refuse those, see [`template_names`]).
pub fn render(template: &str, labels: &AlertLabels, value: Option<f64>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(end) = tail.find('}').filter(|_| tail.starts_with('{')) {
            let name = &tail[1..end];
            match name {
                "value" => out.push_str(&format_value(value)),
                _ => match labels.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&tail[..=end]),
                },
            }
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The `{name}`s a template uses, for checking them against the labels a rule has.
pub fn template_names(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            rest = &tail[2..];
            continue;
        }
        match tail.find('}').filter(|_| tail.starts_with('{')) {
            Some(end) => {
                names.push(tail[1..end].to_string());
                rest = &tail[end + 1..];
            }
            None => rest = &tail[1..],
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A kind whose observations the test sets before each evaluation.
    #[derive(Debug, Clone, Default)]
    struct Scripted(Arc<Mutex<Vec<Observation>>>);

    impl Scripted {
        fn set(&self, observations: &[(&str, f64, bool)]) {
            *self.0.lock().unwrap() = observations
                .iter()
                .map(|&(group, value, holds)| {
                    Observation::new([("group", group.to_string())], value, holds)
                })
                .collect();
        }
    }

    impl RuleKind for Scripted {
        fn kind(&self) -> &'static str {
            "scripted"
        }
        fn label_names(&self) -> &'static [&'static str] {
            &["group"]
        }
        fn observe(&mut self, _: &Snapshot) -> Vec<Observation> {
            self.0.lock().unwrap().clone()
        }
    }

    fn engine_with(for_ms: u64, limits: EngineLimits) -> (Engine, Scripted) {
        let scripted = Scripted::default();
        let rule = RuleSpec {
            name: "lag".into(),
            for_ms,
            severity: Severity::Warning,
            labels: [("team".to_string(), "data".to_string())].into(),
            summary: "{group} is {value} behind ({team}, {{literal}})".into(),
            description: String::new(),
            kind: Box::new(scripted.clone()),
        };
        (
            Engine::new(vec![rule], limits, "http://monitor/#/alerts".into()),
            scripted,
        )
    }

    fn at(time_ms: EpochMillis) -> Snapshot {
        Snapshot {
            time_ms,
            ..Snapshot::default()
        }
    }

    fn moves(e: &Evaluation) -> Vec<(&'static str, &'static str)> {
        e.transitions
            .iter()
            .map(|t| (state_name(t.from), state_name(t.to)))
            .collect()
    }

    fn notices(e: &Evaluation) -> Vec<(AlertState, bool, EpochMillis, Option<EpochMillis>)> {
        e.notices
            .iter()
            .map(|n| {
                (
                    n.notice.state,
                    n.changed,
                    n.notice.starts_at,
                    n.notice.ends_at,
                )
            })
            .collect()
    }

    #[test]
    fn inactive_pending_firing_resolved_and_dropped_after_the_keep() {
        let (mut engine, script) = engine_with(
            10_000,
            EngineLimits {
                max_instances_per_rule: 10,
                keep_resolved_ms: 60_000,
            },
        );
        script.set(&[("billing", 20.0, true)]);
        let e = engine.evaluate(&at(1_000));
        assert_eq!(moves(&e), [("inactive", "pending")]);
        assert!(e.notices.is_empty(), "pending is not notified");
        let e = engine.evaluate(&at(10_999));
        assert!(e.transitions.is_empty(), "9.999 s of the 10 s");
        let e = engine.evaluate(&at(11_000));
        assert_eq!(moves(&e), [("pending", "firing")]);
        assert_eq!(notices(&e), [(AlertState::Firing, true, 1_000, None)]);
        let firing = &e.notices[0].notice;
        assert_eq!(
            firing.labels,
            AlertLabels::from([
                ("alertname".into(), "lag".into()),
                ("group".into(), "billing".into()),
                ("severity".into(), "warning".into()),
                ("team".into(), "data".into()),
            ])
        );
        assert_eq!(
            firing.annotations["summary"],
            "billing is 20 behind (data, {literal})"
        );
        assert_eq!(firing.annotations["value"], "20");
        assert_eq!(firing.generator_url, "http://monitor/#/alerts");
        // Still firing: re-emitted, not news; the value follows.
        script.set(&[("billing", 21.5, true)]);
        let e = engine.evaluate(&at(20_000));
        assert!(e.transitions.is_empty());
        assert_eq!(notices(&e), [(AlertState::Firing, false, 1_000, None)]);
        assert_eq!(
            e.notices[0].notice.annotations["summary"],
            "billing is 21.5 behind (data, {literal})"
        );
        script.set(&[("billing", 3.0, false)]);
        let e = engine.evaluate(&at(30_000));
        assert_eq!(moves(&e), [("firing", "resolved")]);
        assert_eq!(
            notices(&e),
            [(AlertState::Resolved, true, 1_000, Some(30_000))]
        );
        let e = engine.evaluate(&at(40_000));
        assert!(
            e.notices.is_empty() && e.transitions.is_empty(),
            "resolved is told once"
        );
        assert_eq!(engine.instances().count(), 1, "kept for the portal");
        engine.evaluate(&at(89_999));
        assert_eq!(engine.instances().count(), 1);
        engine.evaluate(&at(90_000));
        assert_eq!(engine.instances().count(), 0, "dropped after keep_resolved");
    }

    #[test]
    fn a_condition_that_clears_while_pending_never_fires() {
        let (mut engine, script) = engine_with(10_000, EngineLimits::default());
        for (t, holds) in [
            (0, true),
            (5_000, false),
            (9_000, true),
            (15_000, false),
            (18_000, true),
        ] {
            script.set(&[("billing", 20.0, holds)]);
            let e = engine.evaluate(&at(t));
            assert!(e.notices.is_empty(), "flapping at {t} ms notified");
            let expected = if holds {
                ("inactive", "pending")
            } else {
                ("pending", "inactive")
            };
            assert_eq!(moves(&e), [expected], "at {t} ms");
        }
        // The pending clock restarted at 18 s: fires at 28 s, not at 10 s from the first start.
        assert!(engine.evaluate(&at(27_999)).transitions.is_empty());
        let e = engine.evaluate(&at(28_000));
        assert_eq!(notices(&e), [(AlertState::Firing, true, 18_000, None)]);
    }

    #[test]
    fn for_zero_fires_at_once_and_a_resolved_alert_can_fire_again_with_a_new_start() {
        let (mut engine, script) = engine_with(0, EngineLimits::default());
        script.set(&[("billing", 20.0, true)]);
        let e = engine.evaluate(&at(1_000));
        assert_eq!(moves(&e), [("inactive", "pending"), ("pending", "firing")]);
        assert_eq!(notices(&e), [(AlertState::Firing, true, 1_000, None)]);
        script.set(&[]);
        let e = engine.evaluate(&at(2_000));
        assert_eq!(
            moves(&e),
            [("firing", "resolved")],
            "an instance no longer observed resolves"
        );
        script.set(&[("billing", 20.0, true)]);
        let e = engine.evaluate(&at(3_000));
        assert_eq!(moves(&e), [("resolved", "pending"), ("pending", "firing")]);
        assert_eq!(notices(&e), [(AlertState::Firing, true, 3_000, None)]);
    }

    #[test]
    fn instances_per_rule_are_capped_and_the_rest_counted() {
        let (mut engine, script) = engine_with(
            0,
            EngineLimits {
                max_instances_per_rule: 2,
                keep_resolved_ms: 0,
            },
        );
        script.set(&[
            ("a", 1.0, true),
            ("b", 1.0, true),
            ("c", 1.0, true),
            ("d", 1.0, false),
        ]);
        engine.evaluate(&at(0));
        assert_eq!(engine.instances().count(), 2);
        assert_eq!(
            engine.dropped("lag"),
            1,
            "d does not hold: not an instance, not dropped"
        );
        // Once a and b resolve (and are dropped at once: keep 0), c gets in.
        script.set(&[("c", 1.0, true)]);
        engine.evaluate(&at(1));
        script.set(&[("c", 1.0, true)]);
        engine.evaluate(&at(2));
        let groups: Vec<_> = engine
            .instances()
            .map(|i| i.labels["group"].clone())
            .collect();
        assert_eq!(groups, ["c"]);
    }

    #[test]
    fn a_restored_firing_alert_keeps_firing_with_its_start_and_is_not_news() {
        let (mut engine, script) = engine_with(10_000, EngineLimits::default());
        script.set(&[("billing", 20.0, true)]);
        engine.evaluate(&at(0));
        engine.evaluate(&at(10_000));
        let kept: Vec<AlertInstance> = engine.instances().cloned().collect();
        let json = serde_json::to_string(&kept).unwrap();

        let (mut restarted, script) = engine_with(10_000, EngineLimits::default());
        restarted.restore(serde_json::from_str::<Vec<AlertInstance>>(&json).unwrap());
        script.set(&[("billing", 25.0, true)]);
        let e = restarted.evaluate(&at(50_000));
        assert!(e.transitions.is_empty());
        assert_eq!(notices(&e), [(AlertState::Firing, false, 0, None)]);
        // Instances of a rule no longer configured are not taken back.
        let mut other = kept[0].clone();
        other.rule = "gone".into();
        restarted.restore([other]);
        assert_eq!(restarted.instances().count(), 1);
    }

    #[test]
    fn label_values_from_brokers_are_cleaned_and_cut() {
        let (mut engine, script) = engine_with(0, EngineLimits::default());
        let long = format!("a\nb\u{1b}[31m{}", "x".repeat(400));
        script.set(&[(&long, 1.0, true)]);
        let e = engine.evaluate(&at(0));
        let group = &e.notices[0].notice.labels["group"];
        assert!(group.starts_with("a?b?[31m"));
        assert_eq!(group.chars().count(), MAX_LABEL_VALUE_CHARS);
    }

    #[test]
    fn templates_fill_labels_and_value_and_keep_unknown_names() {
        let labels = AlertLabels::from([("group".into(), "g".into())]);
        assert_eq!(
            render("{group}: {value} {nope} {{x}} }", &labels, Some(0.1234)),
            "g: 0.123 {nope} {x} }"
        );
        assert_eq!(render("{value}", &labels, None), "none");
        assert_eq!(render("open {", &labels, Some(1.0)), "open {");
        assert_eq!(template_names("{group} {{no}} {value}"), ["group", "value"]);
        assert_eq!(format_value(Some(300.0)), "300");
        assert_eq!(format_value(Some(2.5)), "2.5");
    }
}
