//! Who is told about an alert, when, and in what words — Alertmanager's rules, without I/O.
//!
//! - Routing: routes are tried in order; the first whose matchers (equality and anchored regex on
//!   labels) all hold takes the alert, unless it says `continue`, then later routes are tried
//!   too. An alert no route takes goes to the fallback route, if there is one.
//! - Grouping: a route's `group_by` labels split its alerts into groups; each group is one
//!   notification.
//! - Timing: a new group is sent `group_wait` after its first alert; a change (new alert,
//!   resolution) is sent no sooner than `group_interval` after the group's last notification;
//!   a group still firing and unchanged is sent again every `repeat_interval`.
//! - Payloads: Alertmanager's API v2 `POST /api/v2/alerts` body, the way Prometheus sends it, and
//!   Alertmanager's webhook JSON version 4, which Slack and Teams relays read.
//! - Bounds: groups and alerts per group are capped ([`Limits`]), queues per receiver are capped
//!   ([`BoundedQueue`]), and what is dropped is counted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, UNIX_EPOCH};

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{AlertLabels, AlertNotice, AlertState};
use crate::EpochMillis;
use crate::backoff::Backoff;

/// One condition on one label of an alert. A missing label reads as "".
#[derive(Debug, Clone)]
pub enum Matcher {
    Equal {
        label: String,
        value: String,
    },
    /// The regex must match the whole value (Alertmanager anchors them too).
    Regex {
        label: String,
        regex: Regex,
    },
}

impl Matcher {
    /// `pattern` as written in the config; it is anchored here.
    pub fn regex(label: impl Into<String>, pattern: &str) -> Result<Self, regex::Error> {
        Ok(Matcher::Regex {
            label: label.into(),
            regex: Regex::new(&format!("^(?:{pattern})$"))?,
        })
    }

    pub fn matches(&self, labels: &AlertLabels) -> bool {
        let value = |label: &str| labels.get(label).map_or("", String::as_str);
        match self {
            Matcher::Equal { label, value: want } => value(label) == want,
            Matcher::Regex { label, regex } => regex.is_match(value(label)),
        }
    }

    /// Alertmanager's spelling, for group keys: `team="payments"`, `topic=~"orders.*"`.
    fn describe(&self) -> String {
        match self {
            Matcher::Equal { label, value } => format!("{label}={value:?}"),
            Matcher::Regex { label, regex } => {
                let pattern = regex.as_str();
                let inner = pattern
                    .strip_prefix("^(?:")
                    .and_then(|p| p.strip_suffix(")$"))
                    .unwrap_or(pattern);
                format!("{label}=~{inner:?}")
            }
        }
    }
}

/// Which labels split a route's alerts into groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// These labels (missing ones are left out of the group's labels).
    Labels(Vec<String>),
    /// Every label: each alert is its own group (Alertmanager's `group_by: ['...']`).
    All,
}

/// When a route's groups are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// From a group's first alert to its first notification, so alerts that fire together go out
    /// together.
    pub group_wait: Duration,
    /// Least time between two notifications of one group when it changed.
    pub group_interval: Duration,
    /// A group that still fires and did not change is sent again after this long.
    pub repeat_interval: Duration,
}

impl Default for Timing {
    /// Alertmanager's defaults: 30 s, 5 min, 4 h.
    fn default() -> Self {
        Self {
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(5 * 60),
            repeat_interval: Duration::from_secs(4 * 3600),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub receiver: String,
    /// All must hold; none means every alert.
    pub matchers: Vec<Matcher>,
    /// After this route took an alert, try the routes after it too.
    pub continue_matching: bool,
    pub group_by: GroupBy,
    pub timing: Timing,
}

impl Route {
    pub fn matches(&self, labels: &AlertLabels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// Indices of the routes that take an alert with `labels`: the first match, and the ones after
/// it while each match says `continue`. Empty when none matches.
pub fn matching_routes(routes: &[Route], labels: &AlertLabels) -> Vec<usize> {
    let mut taken = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        if route.matches(labels) {
            taken.push(i);
            if !route.continue_matching {
                break;
            }
        }
    }
    taken
}

/// Caps on what outside input (the alerts' labels) can make the dispatcher hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_groups: usize,
    pub max_alerts_per_group: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_groups: 10_000,
            max_alerts_per_group: 1_000,
        }
    }
}

/// One notification to send: a group's alerts, firing and just resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub receiver: String,
    /// Alertmanager's form: `{route matchers}:{group labels}`, the same for every notification
    /// of one group.
    pub group_key: String,
    pub group_labels: AlertLabels,
    /// Sorted by labels.
    pub alerts: Vec<AlertNotice>,
    /// When it was made; payload times (`endsAt` of firing alerts) count from here.
    pub at: EpochMillis,
}

impl Notification {
    /// "firing" while any alert fires, else "resolved".
    pub fn status(&self) -> &'static str {
        if self.alerts.iter().any(|a| a.state == AlertState::Firing) {
            "firing"
        } else {
            "resolved"
        }
    }
}

/// What became of one notice given to [`Dispatcher::ingest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ingested {
    /// Groups it went into.
    pub routed: usize,
    /// Groups it did not go into because a cap was reached.
    pub dropped: usize,
}

#[derive(Debug, Clone)]
struct Group {
    route: usize,
    key: String,
    labels: AlertLabels,
    alerts: BTreeMap<AlertLabels, AlertNotice>,
    created: EpochMillis,
    last_sent: Option<EpochMillis>,
    changed: bool,
    /// The firing alerts of the last notification: what the receiver believes fires.
    sent: Vec<AlertNotice>,
}

/// A group's last notification, kept across restarts ([`Dispatcher::sent`],
/// [`Dispatcher::restore`]) so that a restart neither sends it again nor forgets when its
/// repeat is due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentGroup {
    pub receiver: String,
    pub group_key: String,
    pub group_labels: AlertLabels,
    pub last_sent: EpochMillis,
    /// The firing alerts it carried.
    pub alerts: Vec<AlertNotice>,
}

impl Group {
    fn due_at(&self, timing: &Timing) -> Option<EpochMillis> {
        let after = |from: EpochMillis, d: Duration| from.saturating_add(d.as_millis() as u64);
        if self.changed {
            Some(match self.last_sent {
                None => after(self.created, timing.group_wait),
                Some(sent) => after(sent, timing.group_interval),
            })
        } else if self.alerts.values().any(|a| a.state == AlertState::Firing) {
            self.last_sent
                .map(|sent| after(sent, timing.repeat_interval))
        } else {
            None
        }
    }
}

/// Routes notices into groups and says which groups are due: the state between the engine's
/// notices and the receivers' queues. Time comes in as arguments.
#[derive(Debug)]
pub struct Dispatcher {
    routes: Vec<Route>,
    /// Index in `routes` of the route that takes what no other route takes.
    fallback: Option<usize>,
    limits: Limits,
    groups: BTreeMap<(usize, AlertLabels), Group>,
}

impl Dispatcher {
    /// `fallback` takes the alerts that no route in `routes` takes; None drops them.
    pub fn new(mut routes: Vec<Route>, fallback: Option<Route>, limits: Limits) -> Self {
        let fallback = fallback.map(|route| {
            routes.push(route);
            routes.len() - 1
        });
        Self {
            routes,
            fallback,
            limits,
            groups: BTreeMap::new(),
        }
    }

    /// Takes one notice from the engine. Pending notices are ignored (notifiers hear of firing
    /// and resolved alerts only). A resolution of an alert the dispatcher does not hold (a
    /// restart came between) is still sent: a needless "resolved" is better than a lost one.
    pub fn ingest(&mut self, notice: AlertNotice, now: EpochMillis) -> Ingested {
        let mut outcome = Ingested::default();
        if notice.state == AlertState::Pending {
            return outcome;
        }
        let explicit = &self.routes[..self.fallback.unwrap_or(self.routes.len())];
        let mut taken = matching_routes(explicit, &notice.labels);
        if taken.is_empty() {
            taken.extend(self.fallback);
        }
        for route_index in taken {
            let route = &self.routes[route_index];
            let group_labels = group_labels(&route.group_by, &notice.labels);
            let id = (route_index, group_labels);
            if !self.groups.contains_key(&id) {
                if self.groups.len() >= self.limits.max_groups {
                    outcome.dropped += 1;
                    continue;
                }
                let key = group_key(route, &id.1);
                self.groups.insert(
                    id.clone(),
                    Group {
                        route: route_index,
                        key,
                        labels: id.1.clone(),
                        alerts: BTreeMap::new(),
                        created: now,
                        last_sent: None,
                        changed: false,
                        sent: Vec::new(),
                    },
                );
            }
            let group = self.groups.get_mut(&id).expect("inserted above");
            let full = group.alerts.len() >= self.limits.max_alerts_per_group;
            match group.alerts.get_mut(&notice.labels) {
                Some(held) => {
                    // The engine may say "firing" again; only a change is news.
                    if held.state != notice.state || held.starts_at != notice.starts_at {
                        group.changed = true;
                    }
                    *held = notice.clone();
                }
                None if full => {
                    outcome.dropped += 1;
                    continue;
                }
                None => {
                    group.alerts.insert(notice.labels.clone(), notice.clone());
                    group.changed = true;
                }
            }
            outcome.routed += 1;
        }
        outcome
    }

    /// Stops telling of a firing alert a silence now covers: it leaves every group holding it,
    /// with no notification (a group left empty is forgotten). When the silence ends, the
    /// engine's next notice of it is new to the groups and sent as such.
    pub fn mute(&mut self, labels: &AlertLabels) {
        self.groups.retain(|_, group| {
            group.alerts.remove(labels);
            group.sent.retain(|a| &a.labels != labels);
            !group.alerts.is_empty()
        });
    }

    /// The notifications due at `now`. A group sent forgets its resolved alerts, and is
    /// forgotten once nothing in it fires.
    pub fn due(&mut self, now: EpochMillis) -> Vec<Notification> {
        let mut out = Vec::new();
        let routes = &self.routes;
        self.groups.retain(|_, group| {
            let route = &routes[group.route];
            if group.due_at(&route.timing).is_none_or(|due| due > now) {
                return true;
            }
            out.push(Notification {
                receiver: route.receiver.clone(),
                group_key: group.key.clone(),
                group_labels: group.labels.clone(),
                alerts: group.alerts.values().cloned().collect(),
                at: now,
            });
            group.alerts.retain(|_, a| a.state == AlertState::Firing);
            group.sent = group.alerts.values().cloned().collect();
            group.last_sent = Some(now);
            group.changed = false;
            !group.alerts.is_empty()
        });
        out
    }

    /// The groups that have been sent: their last notification's firing alerts and time.
    pub fn sent(&self) -> Vec<SentGroup> {
        self.groups
            .values()
            .filter_map(|group| {
                Some(SentGroup {
                    receiver: self.routes[group.route].receiver.clone(),
                    group_key: group.key.clone(),
                    group_labels: group.labels.clone(),
                    last_sent: group.last_sent?,
                    alerts: group.sent.clone(),
                })
            })
            .filter(|g| !g.alerts.is_empty())
            .collect()
    }

    /// Takes back what a previous run had sent, before the engine's first notices: a group is
    /// rebuilt on the route with the same receiver and group key, holding the alerts it sent
    /// that still fire (`still_firing`: the engine's firing alerts, by labels), so the engine
    /// saying "firing" again is no news and the repeat stays due at its time. Alerts no longer
    /// firing are left out (the engine tells their resolution, which is sent); groups whose
    /// route is gone, or past the cap, are dropped.
    pub fn restore(&mut self, sent: Vec<SentGroup>, still_firing: &BTreeSet<AlertLabels>) {
        for saved in sent {
            if self.groups.len() >= self.limits.max_groups {
                return;
            }
            let Some(route_index) = self.routes.iter().enumerate().position(|(i, route)| {
                route.receiver == saved.receiver
                    && group_key(route, &saved.group_labels) == saved.group_key
                    && !self.groups.contains_key(&(i, saved.group_labels.clone()))
            }) else {
                continue;
            };
            let alerts: BTreeMap<AlertLabels, AlertNotice> = saved
                .alerts
                .into_iter()
                .filter(|a| a.state == AlertState::Firing && still_firing.contains(&a.labels))
                .take(self.limits.max_alerts_per_group)
                .map(|a| (a.labels.clone(), a))
                .collect();
            if alerts.is_empty() {
                continue;
            }
            self.groups.insert(
                (route_index, saved.group_labels.clone()),
                Group {
                    route: route_index,
                    key: saved.group_key,
                    labels: saved.group_labels,
                    sent: alerts.values().cloned().collect(),
                    alerts,
                    created: saved.last_sent,
                    last_sent: Some(saved.last_sent),
                    changed: false,
                },
            );
        }
    }

    /// The earliest time a group falls due, for the caller's timer; None when nothing will.
    pub fn next_due(&self) -> Option<EpochMillis> {
        self.groups
            .values()
            .filter_map(|g| g.due_at(&self.routes[g.route].timing))
            .min()
    }

    /// Groups held now.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }
}

fn group_labels(group_by: &GroupBy, labels: &AlertLabels) -> AlertLabels {
    match group_by {
        GroupBy::All => labels.clone(),
        GroupBy::Labels(names) => names
            .iter()
            .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
            .collect(),
    }
}

fn group_key(route: &Route, group_labels: &AlertLabels) -> String {
    let matchers: Vec<String> = route.matchers.iter().map(Matcher::describe).collect();
    let labels: Vec<String> = group_labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{{}}/{{{}}}:{{{}}}", matchers.join(","), labels.join(", "))
}

/// Alertmanager's fingerprint of a label set (Prometheus' `model.LabelSet.Fingerprint`): FNV-1a
/// 64 over each name and value, in name order, each followed by the byte 0xff.
pub fn fingerprint(labels: &AlertLabels) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    hash
}

/// RFC 3339 in UTC with milliseconds: `2026-12-05T01:02:03.456Z`.
pub fn rfc3339(at: EpochMillis) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(at)).to_string()
}

/// What Alertmanager writes as the `endsAt` of an alert still firing (Go's zero time).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One alert of Alertmanager's API v2 `POST /api/v2/alerts` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: AlertLabels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// The API v2 body for `alerts` sent at `now`, as Prometheus sends it: a firing alert's
/// `endsAt` is `now + 4 × resend_every`, so Alertmanager resolves it by itself if the monitor
/// stops re-sending; a resolved alert's `endsAt` is when it resolved.
pub fn alertmanager_body(
    alerts: &[AlertNotice],
    now: EpochMillis,
    resend_every: Duration,
) -> Vec<PostableAlert> {
    let expires = now.saturating_add(4 * resend_every.as_millis() as u64);
    alerts
        .iter()
        .map(|a| PostableAlert {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: rfc3339(a.starts_at),
            ends_at: rfc3339(match a.state {
                AlertState::Resolved => a.ends_at.unwrap_or(now),
                _ => expires,
            }),
            generator_url: a.generator_url.clone(),
        })
        .collect()
}

/// Alertmanager's webhook message, version 4.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    pub version: &'static str,
    pub group_key: String,
    pub truncated_alerts: usize,
    pub status: &'static str,
    pub receiver: String,
    pub group_labels: AlertLabels,
    pub common_labels: AlertLabels,
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: &'static str,
    pub labels: AlertLabels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    /// [`ZERO_TIME`] while firing.
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// [`fingerprint`] of the labels, 16 hex digits.
    pub fingerprint: String,
}

/// The webhook message of `notification`; `max_alerts` > 0 keeps that many alerts (firing ones
/// first) and counts the rest in `truncatedAlerts`. Common labels and annotations are those
/// equal in every alert, truncated ones included.
pub fn webhook_message(
    notification: &Notification,
    external_url: &str,
    max_alerts: usize,
) -> WebhookMessage {
    let mut alerts: Vec<&AlertNotice> = notification.alerts.iter().collect();
    // Stable: within each state the order stays by labels.
    alerts.sort_by_key(|a| a.state != AlertState::Firing);
    let kept = if max_alerts == 0 {
        alerts.len()
    } else {
        max_alerts.min(alerts.len())
    };
    WebhookMessage {
        version: "4",
        group_key: notification.group_key.clone(),
        truncated_alerts: alerts.len() - kept,
        status: notification.status(),
        receiver: notification.receiver.clone(),
        group_labels: notification.group_labels.clone(),
        common_labels: common(notification.alerts.iter().map(|a| &a.labels)),
        common_annotations: common(notification.alerts.iter().map(|a| &a.annotations)),
        external_url: external_url.to_string(),
        alerts: alerts[..kept]
            .iter()
            .map(|a| WebhookAlert {
                status: match a.state {
                    AlertState::Firing | AlertState::Pending => "firing",
                    AlertState::Resolved => "resolved",
                },
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: rfc3339(a.starts_at),
                ends_at: match (a.state, a.ends_at) {
                    (AlertState::Resolved, Some(at)) => rfc3339(at),
                    (AlertState::Resolved, None) => rfc3339(notification.at),
                    _ => ZERO_TIME.to_string(),
                },
                generator_url: a.generator_url.clone(),
                fingerprint: format!("{:016x}", fingerprint(&a.labels)),
            })
            .collect(),
    }
}

/// The pairs equal in every map.
fn common<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut common = first.clone();
    for map in maps {
        common.retain(|k, v| map.get(k) == Some(v));
    }
    common
}

/// Whether a send that got `status` is worth trying again: server errors, 408 and 429. Other
/// refusals (400, 401, 404) would be refused again.
pub fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// How many times one notification is tried, and how long to wait between tries.
#[derive(Debug, Clone)]
pub struct RetryPlan {
    backoff: Backoff,
    /// Tries after the first.
    retries: u32,
}

impl RetryPlan {
    /// Waits start at `first` and double up to `max`, jittered between half and all of it.
    pub fn new(retries: u32, first: Duration, max: Duration) -> Self {
        Self {
            backoff: Backoff::new(first, max),
            retries,
        }
    }

    /// After a failed try: how long to wait before the next, or None when none is left. `unit`
    /// is a random number in [0, 1).
    pub fn after_failure(&mut self, unit: f64) -> Option<Duration> {
        (self.backoff.attempts() < self.retries).then(|| self.backoff.next_delay_jittered(unit))
    }

    /// Before the next notification: tries start over.
    pub fn reset(&mut self) {
        self.backoff.reset();
    }
}

/// A first-in first-out queue that holds at most `capacity` items: pushing onto a full queue
/// drops the oldest item, and counts it.
#[derive(Debug)]
pub struct BoundedQueue<T> {
    items: VecDeque<T>,
    capacity: usize,
    dropped: u64,
}

impl<T> BoundedQueue<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// True when the oldest item was dropped to make room.
    pub fn push(&mut self, item: T) -> bool {
        let full = self.items.len() >= self.capacity;
        if full {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(item);
        full
    }

    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Items dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: EpochMillis = 1_796_000_000_000;

    fn labels(pairs: &[(&str, &str)]) -> AlertLabels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn notice(pairs: &[(&str, &str)], state: AlertState, starts_at: EpochMillis) -> AlertNotice {
        AlertNotice {
            labels: labels(pairs),
            annotations: [("summary".to_string(), "lag is high".to_string())].into(),
            state,
            starts_at,
            ends_at: (state == AlertState::Resolved).then_some(starts_at + 60_000),
            generator_url: "http://monitor:7575/alerts".to_string(),
        }
    }

    fn route(receiver: &str, matchers: Vec<Matcher>, group_by: &[&str]) -> Route {
        Route {
            receiver: receiver.to_string(),
            matchers,
            continue_matching: false,
            group_by: GroupBy::Labels(group_by.iter().map(|s| s.to_string()).collect()),
            timing: Timing {
                group_wait: Duration::from_secs(10),
                group_interval: Duration::from_secs(60),
                repeat_interval: Duration::from_secs(3600),
            },
        }
    }

    fn team(value: &str) -> Matcher {
        Matcher::Equal {
            label: "team".to_string(),
            value: value.to_string(),
        }
    }

    #[test]
    fn the_first_matching_route_takes_an_alert_unless_it_says_continue() {
        let mut routes = vec![
            route("payments", vec![team("payments")], &[]),
            route(
                "kafka",
                vec![Matcher::regex("topic", "orders|pay.*").unwrap()],
                &[],
            ),
            route("everyone", vec![], &[]),
        ];
        let pay = labels(&[("team", "payments"), ("topic", "payouts")]);
        assert_eq!(matching_routes(&routes, &pay), [0]);
        routes[0].continue_matching = true;
        assert_eq!(matching_routes(&routes, &pay), [0, 1]);
        // The regex is anchored: "xorders" is not "orders".
        let other = labels(&[("team", "ops"), ("topic", "xorders")]);
        assert_eq!(matching_routes(&routes, &other), [2]);
        // A missing label reads as "": it matches an empty value and nothing else.
        assert!(
            Matcher::Equal {
                label: "team".into(),
                value: String::new()
            }
            .matches(&labels(&[]))
        );
        assert!(!team("payments").matches(&labels(&[])));
    }

    #[test]
    fn a_new_group_waits_group_wait_then_repeats_while_firing() {
        let mut d = Dispatcher::new(
            vec![route("ops", vec![], &["alertname"])],
            None,
            Limits::default(),
        );
        let lag = &[("alertname", "Lag"), ("group", "billing")];
        assert_eq!(
            d.ingest(notice(lag, AlertState::Firing, T0), T0),
            Ingested {
                routed: 1,
                dropped: 0
            }
        );
        assert_eq!(d.next_due(), Some(T0 + 10_000));
        assert!(d.due(T0 + 9_999).is_empty());
        let sent = d.due(T0 + 10_000);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].receiver, "ops");
        assert_eq!(sent[0].group_labels, labels(&[("alertname", "Lag")]));
        assert_eq!(sent[0].group_key, "{}/{}:{alertname=\"Lag\"}");
        assert_eq!(sent[0].status(), "firing");
        // The engine saying "firing" again is not news: the next send is the repeat.
        d.ingest(notice(lag, AlertState::Firing, T0), T0 + 20_000);
        assert_eq!(d.next_due(), Some(T0 + 10_000 + 3_600_000));
        assert!(d.due(T0 + 3_609_999).is_empty());
        assert_eq!(d.due(T0 + 3_610_000).len(), 1);
        assert_eq!(d.next_due(), Some(T0 + 3_610_000 + 3_600_000));
    }

    #[test]
    fn a_restored_dispatcher_does_not_resend_and_keeps_the_repeat_time() {
        let routes = || vec![route("ops", vec![], &["alertname"])];
        let mut d = Dispatcher::new(routes(), None, Limits::default());
        let a = &[("alertname", "Lag"), ("group", "a")];
        let b = &[("alertname", "Lag"), ("group", "b")];
        d.ingest(notice(a, AlertState::Firing, T0), T0);
        d.ingest(notice(b, AlertState::Firing, T0), T0);
        assert!(d.sent().is_empty(), "nothing sent yet");
        assert_eq!(d.due(T0 + 10_000).len(), 1);
        let sent = d.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].receiver.as_str(), sent[0].last_sent),
            ("ops", T0 + 10_000)
        );
        assert_eq!(sent[0].alerts.len(), 2);
        // The log survives JSON (it is kept in the store).
        let sent: Vec<SentGroup> =
            serde_json::from_str(&serde_json::to_string(&sent).unwrap()).unwrap();

        // A restart: `b` resolved meanwhile, `a` still fires.
        let mut d = Dispatcher::new(routes(), None, Limits::default());
        d.restore(sent.clone(), &BTreeSet::from([labels(a)]));
        assert_eq!(d.groups(), 1);
        let restart = T0 + 60_000;
        d.ingest(notice(a, AlertState::Firing, T0), restart);
        assert_eq!(
            d.next_due(),
            Some(T0 + 10_000 + 3_600_000),
            "no resend, the repeat as planned"
        );
        assert!(d.due(restart + 10_000).is_empty());
        let repeat = d.due(T0 + 10_000 + 3_600_000);
        assert_eq!(repeat[0].alerts.len(), 1);
        assert_eq!(repeat[0].alerts[0].labels, labels(a));

        // Nothing fires any more, or the route went away: nothing is rebuilt.
        let mut d = Dispatcher::new(routes(), None, Limits::default());
        d.restore(sent.clone(), &BTreeSet::new());
        assert_eq!(d.groups(), 0);
        let mut d = Dispatcher::new(
            vec![route("payments", vec![], &["alertname"])],
            None,
            Limits::default(),
        );
        d.restore(sent, &BTreeSet::from([labels(a)]));
        assert_eq!(d.groups(), 0);
    }

    #[test]
    fn a_muted_alert_is_not_repeated_and_is_news_again_when_its_silence_ends() {
        let mut d = Dispatcher::new(
            vec![route("ops", vec![], &["alertname"])],
            None,
            Limits::default(),
        );
        let a = &[("alertname", "Lag"), ("group", "a")];
        let b = &[("alertname", "Lag"), ("group", "b")];
        d.ingest(notice(a, AlertState::Firing, T0), T0);
        d.ingest(notice(b, AlertState::Firing, T0), T0);
        assert_eq!(d.due(T0 + 10_000)[0].alerts.len(), 2);
        // A silence covers `a`: the repeat carries `b` only.
        d.mute(&labels(a));
        let repeat = d.due(T0 + 10_000 + 3_600_000);
        assert_eq!(repeat.len(), 1);
        assert_eq!(repeat[0].alerts.len(), 1);
        assert_eq!(repeat[0].alerts[0].labels, labels(b));
        // Both muted: the group is gone, nothing is sent, not even a "resolved".
        d.mute(&labels(b));
        assert_eq!(d.groups(), 0);
        assert_eq!(d.next_due(), None);
        // The silence ended and `a` still fires: a new group, sent after group_wait.
        let t = T0 + 2 * 3_600_000;
        d.ingest(notice(a, AlertState::Firing, T0), t);
        assert_eq!(d.next_due(), Some(t + 10_000));
        assert_eq!(d.due(t + 10_000)[0].alerts[0].labels, labels(a));
    }

    #[test]
    fn a_change_waits_group_interval_after_the_last_send_and_a_resolved_group_is_forgotten() {
        let mut d = Dispatcher::new(
            vec![route("ops", vec![], &["alertname"])],
            None,
            Limits::default(),
        );
        let a = &[("alertname", "Lag"), ("group", "a")];
        let b = &[("alertname", "Lag"), ("group", "b")];
        d.ingest(notice(a, AlertState::Firing, T0), T0);
        assert_eq!(d.due(T0 + 10_000)[0].alerts.len(), 1);
        // A second alert of the group 5 s later goes out group_interval after the first send.
        d.ingest(notice(b, AlertState::Firing, T0), T0 + 15_000);
        assert_eq!(d.next_due(), Some(T0 + 70_000));
        let second = d.due(T0 + 70_000);
        assert_eq!(second[0].alerts.len(), 2);
        // Both resolve: one notification says so, then the group is gone.
        d.ingest(notice(a, AlertState::Resolved, T0), T0 + 80_000);
        d.ingest(notice(b, AlertState::Resolved, T0), T0 + 81_000);
        let resolved = d.due(T0 + 130_000);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status(), "resolved");
        assert_eq!(resolved[0].alerts.len(), 2);
        assert_eq!(d.groups(), 0);
        assert_eq!(d.next_due(), None);
    }

    #[test]
    fn one_of_two_resolving_is_sent_once_and_only_the_firing_one_repeats() {
        let mut d = Dispatcher::new(vec![route("ops", vec![], &[])], None, Limits::default());
        let a = &[("alertname", "Lag"), ("group", "a")];
        let b = &[("alertname", "Lag"), ("group", "b")];
        d.ingest(notice(a, AlertState::Firing, T0), T0);
        d.ingest(notice(b, AlertState::Firing, T0), T0);
        d.due(T0 + 10_000);
        d.ingest(notice(b, AlertState::Resolved, T0), T0 + 20_000);
        let change = d.due(T0 + 70_000);
        let states: Vec<AlertState> = change[0].alerts.iter().map(|a| a.state).collect();
        assert_eq!(states, [AlertState::Firing, AlertState::Resolved]);
        let repeat = d.due(T0 + 70_000 + 3_600_000);
        assert_eq!(repeat[0].alerts.len(), 1);
        assert_eq!(repeat[0].alerts[0].labels, labels(a));
    }

    #[test]
    fn pending_is_ignored_and_an_unknown_resolution_is_still_sent() {
        let mut d = Dispatcher::new(vec![route("ops", vec![], &[])], None, Limits::default());
        let a = &[("alertname", "Lag")];
        assert_eq!(
            d.ingest(notice(a, AlertState::Pending, T0), T0),
            Ingested::default()
        );
        assert_eq!(d.groups(), 0);
        d.ingest(notice(a, AlertState::Resolved, T0), T0);
        let sent = d.due(T0 + 10_000);
        assert_eq!(sent[0].status(), "resolved");
        assert_eq!(d.groups(), 0);
    }

    #[test]
    fn routes_split_teams_continue_copies_and_the_fallback_takes_the_rest() {
        let mut payments = route("payments", vec![team("payments")], &["alertname"]);
        payments.continue_matching = true;
        let routes = vec![
            payments,
            route("audit", vec![Matcher::regex("team", "pay.*").unwrap()], &[]),
            route("logistics", vec![team("logistics")], &["alertname"]),
        ];
        let mut d = Dispatcher::new(
            routes,
            Some(route("default", vec![], &[])),
            Limits::default(),
        );
        d.ingest(
            notice(
                &[("alertname", "Lag"), ("team", "payments")],
                AlertState::Firing,
                T0,
            ),
            T0,
        );
        d.ingest(
            notice(
                &[("alertname", "Lag"), ("team", "logistics")],
                AlertState::Firing,
                T0,
            ),
            T0,
        );
        d.ingest(
            notice(
                &[("alertname", "Lag"), ("team", "ops")],
                AlertState::Firing,
                T0,
            ),
            T0,
        );
        let mut receivers: Vec<String> =
            d.due(T0 + 10_000).into_iter().map(|n| n.receiver).collect();
        receivers.sort();
        assert_eq!(receivers, ["audit", "default", "logistics", "payments"]);
    }

    #[test]
    fn group_by_all_makes_each_alert_its_own_group() {
        let mut r = route("am", vec![], &[]);
        r.group_by = GroupBy::All;
        r.timing = Timing {
            group_wait: Duration::ZERO,
            group_interval: Duration::ZERO,
            repeat_interval: Duration::from_secs(60),
        };
        let mut d = Dispatcher::new(vec![r], None, Limits::default());
        d.ingest(notice(&[("alertname", "A")], AlertState::Firing, T0), T0);
        d.ingest(notice(&[("alertname", "B")], AlertState::Firing, T0), T0);
        assert_eq!(d.due(T0).len(), 2);
        // A resolution goes out at once (group_interval 0), a repeat a minute on.
        d.ingest(
            notice(&[("alertname", "A")], AlertState::Resolved, T0),
            T0 + 5_000,
        );
        let sent = d.due(T0 + 5_000);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].status(), "resolved");
        assert_eq!(d.next_due(), Some(T0 + 60_000));
    }

    #[test]
    fn caps_drop_and_count_groups_and_alerts_beyond_them() {
        let limits = Limits {
            max_groups: 2,
            max_alerts_per_group: 2,
        };
        let mut d = Dispatcher::new(vec![route("ops", vec![], &["group"])], None, limits);
        for g in ["a", "b", "c"] {
            let n = notice(
                &[("alertname", "Lag"), ("group", g)],
                AlertState::Firing,
                T0,
            );
            let outcome = d.ingest(n, T0);
            assert_eq!(outcome.dropped, usize::from(g == "c"), "group {g}");
        }
        assert_eq!(d.groups(), 2);
        for topic in ["x", "y", "z"] {
            let n = notice(
                &[("alertname", "Lag"), ("group", "a"), ("topic", topic)],
                AlertState::Firing,
                T0,
            );
            assert_eq!(
                d.ingest(n, T0).dropped,
                usize::from(topic != "x"),
                "{topic}"
            );
        }
    }

    #[test]
    fn fingerprints_are_alertmanagers() {
        // Prometheus' model: an empty set hashes to the FNV offset basis.
        assert_eq!(fingerprint(&labels(&[])), 0xcbf2_9ce4_8422_2325);
        // Order-independent (sorted by name) and separated, so "ab"+"c" is not "a"+"bc".
        let a = fingerprint(&labels(&[("ab", "c")]));
        let b = fingerprint(&labels(&[("a", "bc")]));
        assert_ne!(a, b);
        // The value Alertmanager 0.25 shows for {alertname="Lag"} (checked by the integration
        // test against a real one).
        assert_eq!(
            format!("{:016x}", fingerprint(&labels(&[("alertname", "Lag")]))),
            format!("{:016x}", fnv_reference(b"alertname\xffLag\xff"))
        );
    }

    /// FNV-1a 64 written out plainly, as a reference.
    fn fnv_reference(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf29ce484222325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
        })
    }

    #[test]
    fn the_api_v2_body_is_what_prometheus_sends() {
        let firing = notice(
            &[("alertname", "Lag"), ("severity", "warning")],
            AlertState::Firing,
            T0,
        );
        let resolved = notice(&[("alertname", "Old")], AlertState::Resolved, T0);
        let body = alertmanager_body(&[firing, resolved], T0 + 1_000, Duration::from_secs(60));
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {
                    "labels": {"alertname": "Lag", "severity": "warning"},
                    "annotations": {"summary": "lag is high"},
                    "startsAt": "2026-11-30T00:53:20.000Z",
                    "endsAt": "2026-11-30T00:57:21.000Z",
                    "generatorURL": "http://monitor:7575/alerts"
                },
                {
                    "labels": {"alertname": "Old"},
                    "annotations": {"summary": "lag is high"},
                    "startsAt": "2026-11-30T00:53:20.000Z",
                    "endsAt": "2026-11-30T00:54:20.000Z",
                    "generatorURL": "http://monitor:7575/alerts"
                }
            ])
        );
    }

    #[test]
    fn the_webhook_message_is_alertmanagers_version_4() {
        let n = Notification {
            receiver: "payments".to_string(),
            group_key: "{}/{team=\"payments\"}:{alertname=\"Lag\"}".to_string(),
            group_labels: labels(&[("alertname", "Lag")]),
            alerts: vec![
                notice(
                    &[("alertname", "Lag"), ("group", "a"), ("team", "payments")],
                    AlertState::Resolved,
                    T0,
                ),
                notice(
                    &[("alertname", "Lag"), ("group", "b"), ("team", "payments")],
                    AlertState::Firing,
                    T0,
                ),
            ],
            at: T0 + 120_000,
        };
        let json = serde_json::to_value(webhook_message(&n, "http://monitor:7575", 0)).unwrap();
        let fp = |g: &str| {
            format!(
                "{:016x}",
                fingerprint(&labels(&[
                    ("alertname", "Lag"),
                    ("group", g),
                    ("team", "payments")
                ]))
            )
        };
        assert_eq!(
            json,
            serde_json::json!({
                "version": "4",
                "groupKey": "{}/{team=\"payments\"}:{alertname=\"Lag\"}",
                "truncatedAlerts": 0,
                "status": "firing",
                "receiver": "payments",
                "groupLabels": {"alertname": "Lag"},
                "commonLabels": {"alertname": "Lag", "team": "payments"},
                "commonAnnotations": {"summary": "lag is high"},
                "externalURL": "http://monitor:7575",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "Lag", "group": "b", "team": "payments"},
                        "annotations": {"summary": "lag is high"},
                        "startsAt": "2026-11-30T00:53:20.000Z",
                        "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://monitor:7575/alerts",
                        "fingerprint": fp("b")
                    },
                    {
                        "status": "resolved",
                        "labels": {"alertname": "Lag", "group": "a", "team": "payments"},
                        "annotations": {"summary": "lag is high"},
                        "startsAt": "2026-11-30T00:53:20.000Z",
                        "endsAt": "2026-11-30T00:54:20.000Z",
                        "generatorURL": "http://monitor:7575/alerts",
                        "fingerprint": fp("a")
                    }
                ]
            })
        );
        let truncated = webhook_message(&n, "", 1);
        assert_eq!(truncated.truncated_alerts, 1);
        assert_eq!(truncated.alerts.len(), 1);
        assert_eq!(truncated.alerts[0].status, "firing");
    }

    #[test]
    fn retries_back_off_with_jitter_and_stop_after_the_last() {
        let mut plan = RetryPlan::new(3, Duration::from_millis(100), Duration::from_millis(300));
        let waits: Vec<Option<Duration>> = (0..4).map(|_| plan.after_failure(1.0)).collect();
        let ms = |v: u64| Some(Duration::from_millis(v));
        assert_eq!(waits, [ms(100), ms(200), ms(300), None]);
        plan.reset();
        assert_eq!(plan.after_failure(0.0), ms(50));
        assert!(retryable_status(503) && retryable_status(429) && retryable_status(408));
        assert!(!retryable_status(400) && !retryable_status(401) && !retryable_status(404));
    }

    #[test]
    fn a_full_queue_drops_its_oldest_and_counts_it() {
        let mut q = BoundedQueue::new(2);
        assert!(!q.push(1));
        assert!(!q.push(2));
        assert!(q.push(3));
        assert_eq!((q.len(), q.dropped()), (2, 1));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(3));
        assert!(q.is_empty());
    }
}
