//! The alert engine in `pipescope run`: every `[alerts] evaluate_every` it builds a snapshot of
//! the live state ([`snapshot`]), lets the core [`Engine`] evaluate the rules, keeps the states
//! in the store (`store::alerts`), and sends what it found to the notifiers (a broadcast of
//! [`NoticeBatch`]es, [`AlertsState::subscribe`]) and the portal (events on the hub).

pub mod api;
pub mod kinds;
pub mod metrics;
pub mod notify;
pub mod snapshot;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipescope_core::alerts::AlertState;
use pipescope_core::alerts::engine::{
    AlertInstance, Emitted, Engine, EngineLimits, Evaluation, RuleSpec, state_name,
};
use pipescope_core::alerts::silences::{Silence, SilenceError, SilenceRequest, Silences};
use pipescope_core::alerts::snapshot::Snapshot;
use pipescope_core::live::events::{Event, EventKind, alert_source};
use pipescope_core::{Clock, EpochMillis};
use tokio::sync::broadcast;

use crate::api::Hub;
use crate::config::Config;
use crate::store::alerts::AlertTable;
use crate::sync::lock;

/// How long the first evaluation waits for every source to be read once.
const WAIT_FOR_SOURCES: Duration = Duration::from_secs(60);

/// Evaluations' notices a slow notifier may fall behind before it misses some.
const NOTICE_BUFFER: usize = 64;

/// What one evaluation tells the notifiers: every firing alert (again, so they can resend),
/// and those that resolved now; `changed` marks the news.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeBatch {
    pub time_ms: EpochMillis,
    pub notices: Vec<Emitted>,
}

/// A configured rule as the API lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RuleInfo {
    pub name: String,
    pub kind: &'static str,
    #[schema(value_type = String)]
    pub severity: pipescope_core::alerts::Severity,
    /// The rule's `for`, in seconds.
    pub for_s: f64,
}

/// The engine and what the routes, metrics and notifiers read of it.
#[derive(Debug, Clone)]
pub struct AlertsState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Mutex<Engine>,
    rules: Vec<RuleInfo>,
    plan: snapshot::Plan,
    evaluate_every: Duration,
    notices: broadcast::Sender<Arc<NoticeBatch>>,
    /// Transitions per (rule, state entered).
    transitions: Mutex<BTreeMap<(String, &'static str), u64>>,
    table: Option<Mutex<AlertTable>>,
    silences: Mutex<Silences>,
    clock: Arc<dyn Clock>,
    last_evaluation_ms: Mutex<Option<EpochMillis>>,
}

impl AlertsState {
    /// The engine of the configured rules (the configuration was validated: every kind builds),
    /// with the states `table` kept, when given.
    pub fn new(config: &Config, table: Option<AlertTable>, clock: Arc<dyn Clock>) -> Self {
        let alerts = &config.alerts;
        let mut specs = Vec::new();
        let mut rules = Vec::new();
        for (name, rule) in &alerts.rules {
            let kind = rule.kind.build().expect("validated configuration");
            rules.push(RuleInfo {
                name: name.clone(),
                kind: kind.kind(),
                severity: rule.severity,
                for_s: rule.for_duration.as_secs_f64(),
            });
            specs.push(RuleSpec {
                name: name.clone(),
                for_ms: u64::try_from(rule.for_duration.as_millis()).unwrap_or(u64::MAX),
                severity: rule.severity,
                labels: rule.labels.clone(),
                summary: rule
                    .summary
                    .clone()
                    .unwrap_or_else(|| rule.kind.default_summary().to_string()),
                description: rule.description.clone(),
                kind,
            });
        }
        let limits = EngineLimits {
            max_instances_per_rule: alerts.max_instances_per_rule,
            keep_resolved_ms: u64::try_from(alerts.keep_resolved.as_millis()).unwrap_or(u64::MAX),
        };
        let base = alerts
            .external_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.web.listen));
        let generator_url = format!("{}/#/alerts", base.trim_end_matches('/'));
        let mut engine = Engine::new(specs, limits, generator_url);
        let mut silences = Silences::default();
        if let Some(table) = &table {
            match table.load() {
                Ok(kept) => {
                    tracing::info!(alerts = kept.len(), "alert states read from the store");
                    engine.restore(kept);
                }
                Err(e) => tracing::error!("{e}; starting with no alert states"),
            }
            match table.load_silences() {
                Ok(kept) => {
                    silences = Silences::restore(kept);
                    silences.prune(clock.now_millis());
                }
                Err(e) => tracing::error!("{e}; starting with no silences"),
            }
        }
        Self {
            inner: Arc::new(Inner {
                engine: Mutex::new(engine),
                rules,
                plan: snapshot::Plan::of(config),
                evaluate_every: alerts.evaluate_every,
                notices: broadcast::channel(NOTICE_BUFFER).0,
                transitions: Mutex::new(BTreeMap::new()),
                table: table.map(Mutex::new),
                silences: Mutex::new(silences),
                clock,
                last_evaluation_ms: Mutex::new(None),
            }),
        }
    }

    /// Every evaluation's notices, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<NoticeBatch>> {
        self.inner.notices.subscribe()
    }

    pub fn rules(&self) -> &[RuleInfo] {
        &self.inner.rules
    }

    pub fn evaluate_every(&self) -> Duration {
        self.inner.evaluate_every
    }

    pub fn now(&self) -> EpochMillis {
        self.inner.clock.now_millis()
    }

    pub fn last_evaluation_ms(&self) -> Option<EpochMillis> {
        *lock(&self.inner.last_evaluation_ms)
    }

    /// Every alert instance (pending, firing, recently resolved).
    pub fn instances(&self) -> Vec<AlertInstance> {
        lock(&self.inner.engine).instances().cloned().collect()
    }

    /// New instances each rule left out at its cap.
    pub fn dropped(&self) -> Vec<(String, u64)> {
        let engine = lock(&self.inner.engine);
        self.inner
            .rules
            .iter()
            .map(|r| (r.name.clone(), engine.dropped(&r.name)))
            .collect()
    }

    pub fn transitions_total(&self) -> BTreeMap<(String, &'static str), u64> {
        lock(&self.inner.transitions).clone()
    }

    /// One evaluation over `snapshot`: states move, the store keeps them when one changed, the
    /// hub hears of each change and the notifiers get the notices. Blocking (the store).
    pub fn evaluate(&self, snapshot: &Snapshot, hub: Option<&Hub>) -> Evaluation {
        let (evaluation, kept) = {
            let mut engine = lock(&self.inner.engine);
            let mut evaluation = engine.evaluate(snapshot);
            self.mark_silenced(&mut evaluation);
            let kept: Option<Vec<AlertInstance>> =
                (!evaluation.transitions.is_empty()).then(|| engine.instances().cloned().collect());
            (evaluation, kept)
        };
        *lock(&self.inner.last_evaluation_ms) = Some(snapshot.time_ms);
        {
            let mut counts = lock(&self.inner.transitions);
            for t in &evaluation.transitions {
                *counts
                    .entry((t.rule.clone(), state_name(t.to)))
                    .or_default() += 1;
            }
        }
        if let (Some(kept), Some(table)) = (kept, &self.inner.table)
            && let Err(e) = lock(table).save(&kept)
        {
            tracing::error!("{e}; a restart now would not know the alerts' latest states");
        }
        if let Some(hub) = hub {
            self.tell_hub(hub, &evaluation);
        }
        if !evaluation.notices.is_empty() {
            // No notifier listening is not an error.
            let _ = self.inner.notices.send(Arc::new(NoticeBatch {
                time_ms: evaluation.time_ms,
                notices: evaluation.notices.clone(),
            }));
        }
        evaluation
    }

    /// Firing notices an active silence covers are marked, so notifiers stop telling of them.
    /// Resolutions always go out: a receiver told "firing" before the silence hears the end.
    fn mark_silenced(&self, evaluation: &mut Evaluation) {
        let silences = lock(&self.inner.silences);
        if silences.is_empty() {
            return;
        }
        for emitted in &mut evaluation.notices {
            emitted.silenced = emitted.notice.state == AlertState::Firing
                && !silences
                    .silencing(&emitted.notice.labels, evaluation.time_ms)
                    .is_empty();
        }
    }

    /// Every kept silence (active, pending, and expired within the last day).
    pub fn silences(&self) -> Vec<Silence> {
        let mut silences = lock(&self.inner.silences);
        silences.prune(self.now());
        silences.list().cloned().collect()
    }

    /// The ids of the active silences that cover an alert with `labels`.
    pub fn silencing(&self, labels: &pipescope_core::alerts::AlertLabels) -> Vec<String> {
        lock(&self.inner.silences).silencing(labels, self.now())
    }

    /// Adds a silence and keeps it in the store. Blocking (the store).
    pub fn add_silence(&self, request: SilenceRequest) -> Result<Silence, SilenceError> {
        let id = format!("{:016x}", rand::random::<u64>());
        let mut silences = lock(&self.inner.silences);
        let silence = silences.add(id, request, self.now())?;
        self.keep_silences(&silences);
        tracing::info!(
            id = %silence.id,
            by = %silence.created_by,
            until_ms = silence.ends_at_ms,
            "silence added"
        );
        Ok(silence)
    }

    /// Ends a silence now and keeps that in the store. Blocking (the store).
    pub fn expire_silence(&self, id: &str) -> Result<Silence, SilenceError> {
        let mut silences = lock(&self.inner.silences);
        let silence = silences.expire(id, self.now())?;
        self.keep_silences(&silences);
        tracing::info!(id = %silence.id, "silence expired");
        Ok(silence)
    }

    fn keep_silences(&self, silences: &Silences) {
        if let Some(table) = &self.inner.table
            && let Err(e) = lock(table).save_silences(silences.list())
        {
            tracing::error!("{e}; a restart now would lift the silences changed since");
        }
    }

    fn tell_hub(&self, hub: &Hub, evaluation: &Evaluation) {
        if evaluation.transitions.is_empty() {
            return;
        }
        let engine = lock(&self.inner.engine);
        let summaries: BTreeMap<_, _> = engine
            .instances()
            .map(|i| ((&i.rule, &i.labels), i.annotations.get("summary").cloned()))
            .collect();
        for t in &evaluation.transitions {
            let kind = match t.to {
                Some(AlertState::Pending) => EventKind::AlertPending,
                Some(AlertState::Firing) => EventKind::AlertFiring,
                Some(AlertState::Resolved) => EventKind::AlertResolved,
                None => EventKind::AlertCleared,
            };
            let subject = t
                .labels
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "severity"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let summary = summaries
                .get(&(&t.rule, &t.labels))
                .cloned()
                .flatten()
                .unwrap_or_default();
            let message = format!("{} → {}: {summary}", state_name(t.from), state_name(t.to));
            hub.emit(Event {
                at: t.at_ms,
                kind,
                source: alert_source(&t.rule),
                subject,
                message,
            });
        }
        hub.update("alerts");
    }
}

/// The longest the rules may spend reading their history at start (then they learn live).
const HISTORY_BUDGET: Duration = Duration::from_secs(60);

impl AlertsState {
    /// Feeds each rule kind that learns from stored history (the rate anomaly's baselines) what
    /// the store holds, so a restart does not cost weeks of learning. Blocking (the store);
    /// run before the first evaluation. Gives up after [`HISTORY_BUDGET`] (logged).
    pub fn learn_history(&self, store: &crate::store::Store) {
        let started = std::time::Instant::now();
        let now = self.now();
        let mut engine = lock(&self.inner.engine);
        for (rule, kind) in engine.kinds_mut() {
            let Some(wanted) = kind.history() else {
                continue;
            };
            let matchers: Vec<_> = wanted
                .labels
                .iter()
                .filter_map(|&(name, value)| {
                    pipescope_core::tsdb::Matcher::new(
                        name,
                        pipescope_core::tsdb::MatchOp::Eq,
                        value,
                    )
                    .ok()
                })
                .collect();
            let series = match crate::store::history::rate_series(
                store,
                wanted.metric,
                &matchers,
                usize::MAX,
            ) {
                Ok(series) => series,
                Err(e) => {
                    tracing::warn!(rule, "{e}; the rule learns its baselines live");
                    continue;
                }
            };
            let mut learnt = 0usize;
            for labels in series {
                let as_alert: pipescope_core::alerts::AlertLabels = labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                if !kind.follows(&as_alert) {
                    continue;
                }
                if learnt >= wanted.max_series || started.elapsed() > HISTORY_BUDGET {
                    tracing::warn!(
                        rule,
                        learnt,
                        "stopped reading stored history (the rule's max_series or {HISTORY_BUDGET:?} reached); the other series learn live"
                    );
                    break;
                }
                let from = now.saturating_sub(wanted.lookback_ms);
                match crate::store::history::window_counts(
                    store,
                    wanted.metric,
                    &labels,
                    wanted.window_ms,
                    from,
                    now,
                ) {
                    Ok(windows) => {
                        kind.learn(&as_alert, &windows);
                        learnt += 1;
                    }
                    Err(e) => tracing::warn!(rule, "{e}; this series learns live"),
                }
            }
            tracing::info!(
                rule,
                series = learnt,
                took = ?started.elapsed(),
                "rule learnt from the stored history"
            );
        }
    }
}

/// The evaluation task: the rules learn their stored history, then every `evaluate_every`, a
/// snapshot of the live state, evaluated.
pub async fn run(
    state: AlertsState,
    live: snapshot::Live,
    hub: Hub,
    store: Option<crate::store::Store>,
) {
    if let Some(store) = store {
        let learning = state.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || learning.learn_history(&store)).await {
            tracing::error!("reading the rules' history failed ({e}); they learn live");
        }
    }
    let mut tick = tokio::time::interval(state.evaluate_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        // Rules see nothing of a source not yet read: wait for every one (or give up waiting).
        let seen = snapshot::every_source_seen(&state.inner.plan, &live.kafka, &live.mqtt);
        if !seen && started.elapsed() < WAIT_FOR_SOURCES {
            continue;
        }
        let snapshot = snapshot::take(&state.inner.plan, &live, state.now());
        let (state, hub) = (state.clone(), hub.clone());
        let evaluated =
            tokio::task::spawn_blocking(move || state.evaluate(&snapshot, Some(&hub))).await;
        if let Err(e) = evaluated {
            tracing::error!("an alert evaluation failed ({e}); the next one runs as planned");
        }
    }
}

#[cfg(test)]
mod tests {
    use pipescope_core::ManualClock;
    use pipescope_core::alerts::snapshot::MqttBrokerFacts;

    use super::*;

    const CONFIG: &str = "[mqtt.edge]\nurl = \"mqtt://127.0.0.1:1\"\n\
        [alerts.rules.edge_down]\nkind = \"mqtt_unreachable\"\nfor = \"10s\"\nseverity = \"critical\"\nlabels = { team = \"ops\" }\n";

    fn at(time_ms: EpochMillis, connected: bool) -> Snapshot {
        Snapshot {
            time_ms,
            kafka: vec![],
            mqtt: vec![MqttBrokerFacts {
                broker: "edge".into(),
                connected,
                ..MqttBrokerFacts::default()
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn states_are_kept_in_the_store_counted_on_metrics_told_to_the_hub_and_the_notifiers() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::parse("t", CONFIG, []).unwrap();
        let clock = Arc::new(ManualClock::at(0));
        let open = || Some(AlertTable::open(dir.path()).unwrap());
        let state = AlertsState::new(&config, open(), clock.clone());
        let hub = Hub::new(clock.clone());
        let mut notices = state.subscribe();
        state.evaluate(&at(1_000, false), Some(&hub));
        state.evaluate(&at(11_000, false), Some(&hub));
        let batch = notices.try_recv().unwrap();
        assert_eq!(batch.notices.len(), 1);
        let notice = &batch.notices[0];
        assert!(notice.changed);
        assert_eq!(notice.notice.state, AlertState::Firing);
        assert_eq!(notice.notice.starts_at, 1_000);
        assert_eq!(notice.notice.labels["team"], "ops");
        assert_eq!(
            notice.notice.annotations["summary"],
            "MQTT broker edge cannot be reached"
        );
        assert_eq!(
            notice.notice.generator_url,
            "http://127.0.0.1:7575/#/alerts"
        );
        let events: Vec<_> = hub.events(10).into_iter().map(|e| e.kind).collect();
        assert_eq!(events, [EventKind::AlertFiring, EventKind::AlertPending]);

        let mut registry = crate::metrics::new_registry();
        registry.register_collector(Box::new(metrics::AlertsCollector::new(state.clone())));
        let text = crate::metrics::encode_prometheus_text(&registry);
        for line in [
            "pipescope_alerts_firing{rule=\"edge_down\",severity=\"critical\"} 1",
            "pipescope_alerts_pending{rule=\"edge_down\"} 0",
            "pipescope_alerts_transitions_total{rule=\"edge_down\",to=\"pending\"} 1",
            "pipescope_alerts_transitions_total{rule=\"edge_down\",to=\"firing\"} 1",
            "pipescope_alerts_dropped_total{rule=\"edge_down\"} 0",
        ] {
            assert!(text.contains(line), "no {line} in {text}");
        }
        let listed = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/metrics.txt"
        ))
        .unwrap();
        for name in metrics::NAMES {
            assert!(
                listed
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(name)),
                "{name} is not in deploy/metrics.txt"
            );
        }

        // A restart: the firing alert is read back, still firing from 1 s, and not news.
        drop(state);
        let restarted = AlertsState::new(&config, open(), clock);
        let mut notices = restarted.subscribe();
        let evaluation = restarted.evaluate(&at(60_000, false), None);
        assert!(evaluation.transitions.is_empty());
        let batch = notices.try_recv().unwrap();
        assert!(!batch.notices[0].changed);
        assert_eq!(batch.notices[0].notice.starts_at, 1_000);
        // It resolves, and the store keeps that too.
        restarted.evaluate(&at(61_000, true), None);
        let kept = AlertTable::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].state, AlertState::Resolved);
        assert_eq!(kept[0].resolved_at_ms, Some(61_000));
    }

    #[test]
    fn a_silence_marks_firing_notices_until_it_ends_and_outlives_a_restart() {
        use pipescope_core::alerts::silences::{SilenceMatcher, SilenceRequest};
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::parse("t", CONFIG, []).unwrap();
        let clock = Arc::new(ManualClock::at(0));
        let open = || Some(AlertTable::open(dir.path()).unwrap());
        let state = AlertsState::new(&config, open(), clock.clone());
        let silence = state
            .add_silence(SilenceRequest {
                matchers: vec![SilenceMatcher {
                    name: "team".into(),
                    value: "ops".into(),
                    is_regex: false,
                }],
                starts_at_ms: None,
                ends_at_ms: 30_000,
                created_by: "me".into(),
                comment: "upgrade".into(),
            })
            .unwrap();
        state.evaluate(&at(1_000, false), None);
        let fired = state.evaluate(&at(11_000, false), None);
        assert!(fired.notices[0].changed);
        assert!(fired.notices[0].silenced);

        // A restart keeps the silence.
        drop(state);
        let restarted = AlertsState::new(&config, open(), clock.clone());
        assert_eq!(restarted.silences(), std::slice::from_ref(&silence));
        clock.set(20_000);
        let labels = restarted.instances()[0].labels.clone();
        assert_eq!(
            restarted.silencing(&labels),
            std::slice::from_ref(&silence.id)
        );
        assert!(restarted.evaluate(&at(20_000, false), None).notices[0].silenced);
        // Past its end, the firing alert is told again; expired early, likewise.
        assert!(!restarted.evaluate(&at(30_000, false), None).notices[0].silenced);
        clock.set(30_000);
        assert!(restarted.silencing(&labels).is_empty());
        assert!(matches!(
            restarted.expire_silence(&silence.id),
            Err(SilenceError::AlreadyExpired(_))
        ));
        // A resolution is never silenced.
        let again = restarted
            .add_silence(SilenceRequest {
                matchers: vec![SilenceMatcher {
                    name: "alertname".into(),
                    value: "edge_down".into(),
                    is_regex: false,
                }],
                starts_at_ms: None,
                ends_at_ms: 90_000,
                created_by: String::new(),
                comment: String::new(),
            })
            .unwrap();
        let resolved = restarted.evaluate(&at(31_000, true), None);
        assert_eq!(resolved.notices[0].notice.state, AlertState::Resolved);
        assert!(!resolved.notices[0].silenced);
        restarted.expire_silence(&again.id).unwrap();
        let kept = AlertTable::open(dir.path())
            .unwrap()
            .load_silences()
            .unwrap();
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|s| s.ends_at_ms == 30_000), "{kept:?}");
    }

    #[test]
    fn a_rate_anomaly_rule_learns_its_baseline_from_the_store_before_its_first_evaluation() {
        use pipescope_core::alerts::snapshot::{KafkaClusterFacts, KafkaPartitionFacts};
        use pipescope_core::kafka::metrics::TOPIC_MESSAGES_PER_MINUTE;
        use pipescope_core::tsdb::Retention;
        use pipescope_core::{Labels, Sample};

        const MIN: u64 = 60_000;
        const WEEK: u64 = 7 * 24 * 60 * MIN;
        let config = crate::config::parse(
            "t",
            "[kafka.prod]\nbootstrap = \"127.0.0.1:1\"\n\
             [alerts.rules.orders_rate]\nkind = \"rate_anomaly\"\ncluster = \"prod\"\ntopic = \"orders\"\nwindow = \"1m\"\n",
            [],
        )
        .unwrap();
        let now = 5 * WEEK;
        let clock = Arc::new(ManualClock::at(now));
        let dir = tempfile::tempdir().unwrap();
        let (store, writer) =
            crate::store::Store::open(dir.path(), Retention::default(), clock.clone(), 4).unwrap();
        // Three weeks of 1,000 messages a minute, as the watcher stores them (a sample a minute),
        // and a topic the rule does not follow.
        let orders = Labels::new([("cluster", "prod"), ("topic", "orders"), ("window", "1m")]);
        let audit = Labels::new([("cluster", "prod"), ("topic", "audit"), ("window", "1m")]);
        let samples: Vec<Sample> = (now - 3 * WEEK..now)
            .step_by(MIN as usize)
            .flat_map(|t| {
                [
                    Sample::new(TOPIC_MESSAGES_PER_MINUTE, orders.clone(), t, 1_000.0),
                    Sample::new(TOPIC_MESSAGES_PER_MINUTE, audit.clone(), t, 5.0),
                ]
            })
            .collect();
        writer.store(Arc::new(samples)).unwrap();

        let snapshot = |time_ms: u64, offset: i64| Snapshot {
            time_ms,
            kafka: vec![KafkaClusterFacts {
                cluster: "prod".into(),
                scraped: true,
                partitions: vec![KafkaPartitionFacts {
                    topic: "orders".into(),
                    partition: 0,
                    latest: Some(offset),
                    under_replicated: false,
                    offline: false,
                }],
                ..KafkaClusterFacts::default()
            }],
            ..Snapshot::default()
        };
        // After the restart the topic runs at 300 a minute, from the first window on.
        let run = |learn: bool| {
            let state = AlertsState::new(&config, None, clock.clone());
            if learn {
                state.learn_history(&store);
            }
            let (mut t, mut offset) = (now + 5_000, 7_000_000i64);
            for _ in 0..8 * 4 {
                t += 15_000;
                offset += 75;
                state.evaluate(&snapshot(t, offset), None);
            }
            state.instances()
        };
        let learnt = run(true);
        assert_eq!(learnt.len(), 1, "{learnt:?}");
        assert_eq!(learnt[0].labels["anomaly"], "drop");
        assert_eq!(learnt[0].labels["topic"], "orders");
        // Without the stored weeks, 300 a minute is all it knows: no alert.
        assert!(run(false).is_empty());
        writer.close();
    }
}
