//! Events worth showing as they happen, derived by comparing what a watcher saw at one moment
//! with what it saw before, a bounded ring of the latest ones, and the throttle that keeps the
//! portal's "new data" notifications to one per second per source.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use crate::EpochMillis;
use crate::kafka::Verdict;

/// One event, as `/api/v1/events` and the live stream send it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// When it was seen (ms since the epoch).
    pub at: EpochMillis,
    pub kind: EventKind,
    /// `kafka/<cluster>` or `mqtt/<broker>`.
    pub source: String,
    /// What it is about: a broker (`broker 1 (host:port)`), a group, a broker URL, a subtree.
    pub subject: String,
    pub message: String,
}

/// Makes the events of one source seen at one time.
fn event_maker(source: String, at: EpochMillis) -> impl Fn(EventKind, String, String) -> Event {
    move |kind, subject, message| Event {
        at,
        kind,
        source: source.clone(),
        subject,
        message,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    BrokerDown,
    BrokerUp,
    VerdictChanged,
    TopicsFolded,
    MqttDisconnected,
    MqttConnected,
    /// An observed flow's edge or hop started counting records lost after a quiet spell.
    LossStarted,
    /// ... and has counted none for a while since.
    LossStopped,
    /// A quality topic's field appeared, disappeared, changed type or null ratio.
    SchemaDrift,
    /// An alert's condition began to hold (it fires if it holds for the rule's `for`).
    AlertPending,
    AlertFiring,
    AlertResolved,
    /// A pending alert's condition cleared before it fired.
    AlertCleared,
}

/// The source name of a Kafka cluster's events.
pub fn kafka_source(cluster: &str) -> String {
    format!("kafka/{cluster}")
}

/// The source name of an MQTT broker's events.
pub fn mqtt_source(broker: &str) -> String {
    format!("mqtt/{broker}")
}

/// The source name of an observed flow's events.
pub fn flow_source(flow: &str) -> String {
    format!("flow/{flow}")
}

/// The source name of an alert rule's events.
pub fn alert_source(rule: &str) -> String {
    format!("alerts/{rule}")
}

/// The source name of a quality topic's events.
pub fn quality_source(name: &str) -> String {
    format!("quality/{name}")
}

/// Where a watched loss count is: what its events are about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LossSubject {
    pub flow: String,
    /// `edge <upstream> → <downstream>` or `hop <hop>`.
    pub subject: String,
}

#[derive(Debug, Clone, Copy, Default)]
struct LossTrack {
    last_lost: u64,
    /// The count when the current loss started, while it lasts.
    started_at_lost: Option<u64>,
    quiet_looks: u32,
}

/// Turns growing loss counts into "loss started" and "loss stopped" events, one of each per
/// spell of loss whatever the number of records lost: a loss starts when the count grows after a
/// quiet spell, and stops after `quiet_looks_to_stop` looks in a row without growth. The first
/// look at a subject, and a count that went down (the flow restarted), set a new base quietly.
#[derive(Debug, Clone)]
pub struct LossWatch {
    quiet_looks_to_stop: u32,
    max_subjects: usize,
    tracks: HashMap<LossSubject, LossTrack>,
    /// Subjects not watched because `max_subjects` were already.
    pub subjects_dropped: u64,
}

impl LossWatch {
    pub fn new(quiet_looks_to_stop: u32, max_subjects: usize) -> Self {
        Self {
            quiet_looks_to_stop: quiet_looks_to_stop.max(1),
            max_subjects,
            tracks: HashMap::new(),
            subjects_dropped: 0,
        }
    }

    /// One look at `subject`'s loss count since its flow started.
    pub fn look(&mut self, subject: &LossSubject, lost: u64, at: EpochMillis) -> Option<Event> {
        let quiet_looks_to_stop = self.quiet_looks_to_stop;
        let track = match self.tracks.get_mut(subject) {
            Some(track) => track,
            None => {
                if self.tracks.len() >= self.max_subjects {
                    self.subjects_dropped += 1;
                } else {
                    let base = LossTrack {
                        last_lost: lost,
                        ..LossTrack::default()
                    };
                    self.tracks.insert(subject.clone(), base);
                }
                return None;
            }
        };
        let event = event_maker(flow_source(&subject.flow), at);
        if lost < track.last_lost {
            *track = LossTrack {
                last_lost: lost,
                ..LossTrack::default()
            };
            return None;
        }
        let grew = lost - track.last_lost;
        track.last_lost = lost;
        if grew > 0 {
            track.quiet_looks = 0;
            if track.started_at_lost.is_none() {
                track.started_at_lost = Some(lost - grew);
                return Some(event(
                    EventKind::LossStarted,
                    subject.subject.clone(),
                    format!(
                        "flow {}: {} is losing records ({grew} lost since the last look)",
                        subject.flow, subject.subject
                    ),
                ));
            }
            return None;
        }
        let started_at_lost = track.started_at_lost?;
        track.quiet_looks += 1;
        if track.quiet_looks < quiet_looks_to_stop {
            return None;
        }
        track.started_at_lost = None;
        track.quiet_looks = 0;
        Some(event(
            EventKind::LossStopped,
            subject.subject.clone(),
            format!(
                "flow {}: {} lost no records in the last {quiet_looks_to_stop} looks \
                 ({} lost while it lasted)",
                subject.flow,
                subject.subject,
                lost - started_at_lost
            ),
        ))
    }

    /// Subjects watched.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
}

/// The latest events, oldest dropped first.
#[derive(Debug, Clone)]
pub struct EventRing {
    capacity: usize,
    events: VecDeque<Event>,
}

impl EventRing {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            events: VecDeque::new(),
        }
    }

    pub fn push(&mut self, event: Event) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Up to `limit` events, newest first.
    pub fn newest(&self, limit: usize) -> Vec<Event> {
        self.events.iter().rev().take(limit).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Lets through at most one notification per `min_interval_ms` for each source.
#[derive(Debug, Clone)]
pub struct Throttle {
    min_interval_ms: u64,
    last: HashMap<String, EpochMillis>,
}

impl Throttle {
    pub fn new(min_interval_ms: u64) -> Self {
        Self {
            min_interval_ms,
            last: HashMap::new(),
        }
    }

    /// Whether `source` may notify at `now`; if so, `now` becomes its last notification.
    pub fn allow(&mut self, source: &str, now: EpochMillis) -> bool {
        match self.last.get_mut(source) {
            Some(last) if now.saturating_sub(*last) < self.min_interval_ms => false,
            Some(last) => {
                *last = now;
                true
            }
            None => {
                self.last.insert(source.to_owned(), now);
                true
            }
        }
    }
}

/// One broker of a Kafka scrape, as far as events care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaBrokerPoint {
    pub id: i32,
    /// `host:port`.
    pub address: String,
    pub up: bool,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// What events are derived from in one Kafka scrape: its brokers and its groups' verdicts
/// (groups not analysed yet are left out).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaPoint {
    pub brokers: Vec<KafkaBrokerPoint>,
    pub verdicts: Vec<(String, Verdict)>,
}

fn verdict_name(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{v:?}"))
}

/// The events between two scrapes of `cluster`. On the first scrape (`prev` is `None`) only
/// brokers already down are reported: nothing else has changed yet.
pub fn kafka_events(
    cluster: &str,
    prev: Option<&KafkaPoint>,
    next: &KafkaPoint,
    at: EpochMillis,
) -> Vec<Event> {
    let event = event_maker(kafka_source(cluster), at);
    let broker_subject = |b: &KafkaBrokerPoint| format!("broker {} ({})", b.id, b.address);
    let down_message = |b: &KafkaBrokerPoint| match &b.error {
        Some(e) => format!("Kafka broker {} at {} is down: {e}", b.id, b.address),
        None => format!("Kafka broker {} at {} is down", b.id, b.address),
    };
    let mut out = Vec::new();
    let Some(prev) = prev else {
        for b in next.brokers.iter().filter(|b| !b.up) {
            out.push(event(
                EventKind::BrokerDown,
                broker_subject(b),
                down_message(b),
            ));
        }
        return out;
    };
    for b in &next.brokers {
        match prev.brokers.iter().find(|p| p.id == b.id) {
            Some(p) if p.up && !b.up => out.push(event(
                EventKind::BrokerDown,
                broker_subject(b),
                down_message(b),
            )),
            Some(p) if !p.up && b.up => out.push(event(
                EventKind::BrokerUp,
                broker_subject(b),
                format!("Kafka broker {} at {} is up again", b.id, b.address),
            )),
            Some(_) => {}
            None if b.up => out.push(event(
                EventKind::BrokerUp,
                broker_subject(b),
                format!("Kafka broker {} at {} joined the cluster", b.id, b.address),
            )),
            None => out.push(event(
                EventKind::BrokerDown,
                broker_subject(b),
                down_message(b),
            )),
        }
    }
    for p in &prev.brokers {
        if p.up && !next.brokers.iter().any(|b| b.id == p.id) {
            out.push(event(
                EventKind::BrokerDown,
                broker_subject(p),
                format!(
                    "Kafka broker {} at {} is no longer in the cluster's metadata",
                    p.id, p.address
                ),
            ));
        }
    }
    for (group, verdict) in &next.verdicts {
        let Some((_, before)) = prev.verdicts.iter().find(|(g, _)| g == group) else {
            continue;
        };
        if before != verdict {
            out.push(event(
                EventKind::VerdictChanged,
                group.clone(),
                format!(
                    "consumer group {group}: {} → {}",
                    verdict_name(*before),
                    verdict_name(*verdict)
                ),
            ));
        }
    }
    out
}

/// What events are derived from in one look at an MQTT broker's watcher.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MqttPoint {
    /// `mqtt://host:port`.
    pub url: String,
    pub connected: bool,
    /// Successful connections so far.
    pub connects: u64,
    /// Connections lost after having been up.
    pub outages: u64,
    /// Failed attempts since the last successful connection.
    pub failed_attempts: u64,
    pub last_error: Option<String>,
    /// Messages counted in the topic tree and in `$SYS`.
    pub messages: u64,
    pub sys_messages: u64,
    /// The tree's `(other)` nodes and the messages folded into them.
    pub other_nodes: usize,
    pub folded_messages: u64,
    pub topics: usize,
    pub max_topics: usize,
}

/// The events between two looks at `broker`, and whether the broker's figures changed (new
/// messages or a connection change: the portal should refresh).
pub fn mqtt_events(
    broker: &str,
    prev: &MqttPoint,
    next: &MqttPoint,
    at: EpochMillis,
) -> (Vec<Event>, bool) {
    let event = event_maker(mqtt_source(broker), at);
    let why = next
        .last_error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    let mut out = Vec::new();
    if next.outages > prev.outages {
        out.push(event(
            EventKind::MqttDisconnected,
            next.url.clone(),
            format!("lost the connection to {}{why}", next.url),
        ));
    } else if next.connects == 0 && prev.failed_attempts == 0 && next.failed_attempts > 0 {
        out.push(event(
            EventKind::MqttDisconnected,
            next.url.clone(),
            format!("cannot connect to {}{why}", next.url),
        ));
    }
    if next.connects > prev.connects {
        let message = if next.connects > 1 {
            format!("reconnected to {} (connection {})", next.url, next.connects)
        } else {
            format!("connected to {}", next.url)
        };
        out.push(event(EventKind::MqttConnected, next.url.clone(), message));
    }
    if next.other_nodes > prev.other_nodes {
        out.push(event(
            EventKind::TopicsFolded,
            next.url.clone(),
            format!(
                "the topic tree holds {} of at most {} topics: new topics fold into (other) nodes \
                 ({} now, {} messages folded so far)",
                next.topics, next.max_topics, next.other_nodes, next.folded_messages
            ),
        ));
    }
    let changed = !out.is_empty()
        || next.messages != prev.messages
        || next.sys_messages != prev.sys_messages
        || next.connected != prev.connected;
    (out, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge() -> LossSubject {
        LossSubject {
            flow: "m".into(),
            subject: "edge mqtt:edge:machine/# → kafka:prod:machine.data".into(),
        }
    }

    /// The kinds of the events of successive looks at `counts`.
    fn kinds(watch: &mut LossWatch, subject: &LossSubject, counts: &[u64]) -> Vec<EventKind> {
        counts
            .iter()
            .zip(1_000u64..)
            .filter_map(|(lost, at)| watch.look(subject, *lost, at))
            .map(|e| e.kind)
            .collect()
    }

    #[test]
    fn a_spell_of_loss_makes_one_start_and_one_stop_however_much_is_lost() {
        let mut watch = LossWatch::new(3, 10);
        let counts = [0, 0, 5, 9, 9, 20, 20, 20, 20, 20];
        assert_eq!(
            kinds(&mut watch, &edge(), &counts),
            [EventKind::LossStarted, EventKind::LossStopped]
        );
        assert!(
            LossWatch::new(3, 10).look(&edge(), 9, 1).is_none(),
            "the first look sets the base"
        );
    }

    #[test]
    fn the_stop_waits_for_enough_quiet_looks_and_says_how_many_were_lost() {
        let mut watch = LossWatch::new(3, 10);
        assert!(watch.look(&edge(), 2, 1).is_none(), "base, even when not 0");
        let start = watch.look(&edge(), 7, 2).unwrap();
        assert_eq!(start.kind, EventKind::LossStarted);
        assert_eq!(start.source, "flow/m");
        assert_eq!(start.subject, edge().subject);
        assert!(start.message.contains("5 lost"), "{}", start.message);
        assert!(watch.look(&edge(), 7, 3).is_none());
        assert!(watch.look(&edge(), 7, 4).is_none());
        let stop = watch.look(&edge(), 7, 5).unwrap();
        assert_eq!((stop.kind, stop.at), (EventKind::LossStopped, 5));
        assert!(stop.message.contains("(5 lost while"), "{}", stop.message);
        // A new spell after the stop starts again.
        assert_eq!(
            watch.look(&edge(), 8, 6).unwrap().kind,
            EventKind::LossStarted
        );
    }

    #[test]
    fn loss_that_keeps_growing_now_and_then_is_one_spell() {
        let mut watch = LossWatch::new(3, 10);
        // Growth every third look: never three quiet looks in a row.
        let counts = [0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4];
        assert_eq!(
            kinds(&mut watch, &edge(), &counts),
            [EventKind::LossStarted]
        );
    }

    #[test]
    fn a_count_that_went_down_is_a_restarted_flow_not_an_event() {
        let mut watch = LossWatch::new(2, 10);
        let counts = [0, 4, 0, 0, 0];
        // Started at 4; the restart sets a new base quietly, ending the spell with no stop.
        assert_eq!(
            kinds(&mut watch, &edge(), &counts),
            [EventKind::LossStarted]
        );
        assert_eq!(
            watch.look(&edge(), 1, 9).unwrap().kind,
            EventKind::LossStarted
        );
    }

    #[test]
    fn subjects_past_the_cap_are_not_watched_and_are_counted() {
        let mut watch = LossWatch::new(2, 2);
        let subject = |i: u32| LossSubject {
            flow: "m".into(),
            subject: format!("hop {i}"),
        };
        for i in 0..5 {
            assert!(watch.look(&subject(i), 0, 1).is_none());
            assert!(watch.look(&subject(i), 3, 2).is_none() == (i >= 2));
        }
        assert_eq!(watch.len(), 2);
        assert_eq!(watch.subjects_dropped, 6);
    }

    fn broker(id: i32, up: bool) -> KafkaBrokerPoint {
        KafkaBrokerPoint {
            id,
            address: format!("h{id}:9092"),
            up,
            error: (!up).then(|| "connection refused".to_string()),
        }
    }

    fn point(brokers: Vec<KafkaBrokerPoint>, verdicts: &[(&str, Verdict)]) -> KafkaPoint {
        KafkaPoint {
            brokers,
            verdicts: verdicts.iter().map(|(g, v)| (g.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_and_gives_them_newest_first() {
        let mut ring = EventRing::new(3);
        for at in 1..=5 {
            ring.push(Event {
                at,
                kind: EventKind::BrokerUp,
                source: "kafka/c".into(),
                subject: "s".into(),
                message: "m".into(),
            });
        }
        assert_eq!(ring.len(), 3);
        let ats: Vec<u64> = ring.newest(10).iter().map(|e| e.at).collect();
        assert_eq!(ats, [5, 4, 3]);
        let ats: Vec<u64> = ring.newest(2).iter().map(|e| e.at).collect();
        assert_eq!(ats, [5, 4]);
    }

    #[test]
    fn the_throttle_lets_one_through_per_interval_and_source() {
        let mut t = Throttle::new(1_000);
        assert!(t.allow("kafka/a", 10_000));
        assert!(!t.allow("kafka/a", 10_999));
        assert!(t.allow("mqtt/b", 10_999));
        assert!(t.allow("kafka/a", 11_000));
        assert!(!t.allow("kafka/a", 11_500));
        assert!(t.allow("kafka/a", 12_000));
    }

    #[test]
    fn first_scrape_reports_only_brokers_already_down() {
        let next = point(
            vec![broker(1, true), broker(2, false)],
            &[("g", Verdict::Warn)],
        );
        let events = kafka_events("c", None, &next, 7);
        assert_eq!(
            events,
            [Event {
                at: 7,
                kind: EventKind::BrokerDown,
                source: "kafka/c".into(),
                subject: "broker 2 (h2:9092)".into(),
                message: "Kafka broker 2 at h2:9092 is down: connection refused".into(),
            }]
        );
    }

    #[test]
    fn brokers_going_down_coming_up_joining_and_leaving() {
        let prev = point(
            vec![broker(1, true), broker(2, false), broker(3, true)],
            &[],
        );
        let next = point(
            vec![broker(1, false), broker(2, true), broker(4, true)],
            &[],
        );
        let events = kafka_events("c", Some(&prev), &next, 9);
        let got: Vec<(EventKind, &str, &str)> = events
            .iter()
            .map(|e| (e.kind, e.subject.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    EventKind::BrokerDown,
                    "broker 1 (h1:9092)",
                    "Kafka broker 1 at h1:9092 is down: connection refused"
                ),
                (
                    EventKind::BrokerUp,
                    "broker 2 (h2:9092)",
                    "Kafka broker 2 at h2:9092 is up again"
                ),
                (
                    EventKind::BrokerUp,
                    "broker 4 (h4:9092)",
                    "Kafka broker 4 at h4:9092 joined the cluster"
                ),
                (
                    EventKind::BrokerDown,
                    "broker 3 (h3:9092)",
                    "Kafka broker 3 at h3:9092 is no longer in the cluster's metadata"
                ),
            ]
        );
        assert!(kafka_events("c", Some(&next), &next, 10).is_empty());
    }

    #[test]
    fn verdict_changes_of_groups_seen_before() {
        let prev = point(vec![], &[("a", Verdict::Ok), ("b", Verdict::Warn)]);
        let next = point(
            vec![],
            &[
                ("a", Verdict::Stalled),
                ("b", Verdict::Warn),
                ("new", Verdict::Stopped),
            ],
        );
        let events = kafka_events("c", Some(&prev), &next, 1);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::VerdictChanged);
        assert_eq!(events[0].subject, "a");
        assert_eq!(events[0].message, "consumer group a: OK → STALLED");
    }

    fn mqtt() -> MqttPoint {
        MqttPoint {
            url: "mqtt://h:1883".into(),
            max_topics: 100,
            ..MqttPoint::default()
        }
    }

    #[test]
    fn mqtt_connects_losses_and_first_failures() {
        let start = mqtt();
        // Never connected, first attempt fails.
        let failing = MqttPoint {
            failed_attempts: 1,
            last_error: Some("connection refused".into()),
            ..start.clone()
        };
        let (events, changed) = mqtt_events("b", &start, &failing, 5);
        assert!(changed);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::MqttDisconnected);
        assert_eq!(events[0].source, "mqtt/b");
        assert_eq!(
            events[0].message,
            "cannot connect to mqtt://h:1883: connection refused"
        );
        // Further failures are not news.
        let still = MqttPoint {
            failed_attempts: 4,
            ..failing.clone()
        };
        assert_eq!(mqtt_events("b", &failing, &still, 6), (vec![], false));
        let up = MqttPoint {
            connected: true,
            connects: 1,
            failed_attempts: 0,
            ..still.clone()
        };
        let (events, _) = mqtt_events("b", &still, &up, 7);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::MqttConnected);
        assert_eq!(events[0].message, "connected to mqtt://h:1883");
        // Lost and back within one look: both, loss first.
        let flapped = MqttPoint {
            connects: 2,
            outages: 1,
            last_error: Some("connection reset".into()),
            ..up.clone()
        };
        let kinds: Vec<(EventKind, String)> = mqtt_events("b", &up, &flapped, 8)
            .0
            .into_iter()
            .map(|e| (e.kind, e.message))
            .collect();
        assert_eq!(
            kinds,
            [
                (
                    EventKind::MqttDisconnected,
                    "lost the connection to mqtt://h:1883: connection reset".to_string()
                ),
                (
                    EventKind::MqttConnected,
                    "reconnected to mqtt://h:1883 (connection 2)".to_string()
                ),
            ]
        );
    }

    #[test]
    fn mqtt_new_fold_points_and_new_messages() {
        let prev = MqttPoint {
            connected: true,
            connects: 1,
            messages: 10,
            topics: 100,
            ..mqtt()
        };
        let more = MqttPoint {
            messages: 11,
            ..prev.clone()
        };
        assert_eq!(mqtt_events("b", &prev, &more, 1), (vec![], true));
        let sys = MqttPoint {
            sys_messages: 3,
            ..prev.clone()
        };
        assert_eq!(mqtt_events("b", &prev, &sys, 1), (vec![], true));
        let folded = MqttPoint {
            messages: 15,
            other_nodes: 1,
            folded_messages: 5,
            ..prev.clone()
        };
        let (events, changed) = mqtt_events("b", &prev, &folded, 2);
        assert!(changed);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::TopicsFolded);
        assert_eq!(
            events[0].message,
            "the topic tree holds 100 of at most 100 topics: new topics fold into (other) nodes \
             (1 now, 5 messages folded so far)"
        );
        // More messages into the same (other) node: no new event.
        let again = MqttPoint {
            folded_messages: 9,
            messages: 19,
            ..folded.clone()
        };
        assert!(mqtt_events("b", &folded, &again, 3).0.is_empty());
    }
}
