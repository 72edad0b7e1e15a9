//! `[alerts.receivers.NAME]`, `[alerts.route]` and `[[alerts.routes]]`: who is told, and when.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use pipescope_core::alerts::notify::{GroupBy, Matcher, Route, Timing};

use crate::config::Secret;

/// Where notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiverKind {
    /// Alertmanager's API v2 (`POST <url>/api/v2/alerts`), the way Prometheus sends: every
    /// alert at once, again every `resend_every` while it fires; Alertmanager groups them.
    Alertmanager,
    /// A plain `POST` of Alertmanager's webhook JSON (version 4), grouped and timed by the route.
    Webhook,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    #[serde(rename = "type")]
    pub kind: ReceiverKind,
    /// The webhook's URL, or one Alertmanager's base URL (`http://am:9093`).
    #[serde(default)]
    pub url: Option<String>,
    /// Alertmanagers of one cluster: each gets every alert.
    #[serde(default)]
    pub urls: Vec<String>,
    /// `Authorization: Bearer <token>`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// HTTP basic auth, with `password`.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Extra request headers (webhooks); their values are kept out of logs like secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Webhook: at most this many alerts per message, the rest counted in `truncatedAlerts`;
    /// 0 sends all.
    #[serde(default)]
    pub max_alerts: usize,
    /// Alertmanager: how often a firing alert is sent again (Prometheus' `resend-delay`).
    #[serde(default = "default_resend_every", with = "humantime_serde")]
    pub resend_every: Duration,
    /// One request's limit, connect to answer.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Tries after a failed one (network error, 5xx, 408, 429), with backoff.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Notifications waiting for this receiver; beyond it the oldest are dropped (and counted).
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
}

impl ReceiverConfig {
    /// Every URL this receiver posts to (`url` and `urls`).
    pub fn all_urls(&self) -> Vec<String> {
        self.url.iter().chain(&self.urls).cloned().collect()
    }
}

fn default_resend_every() -> Duration {
    Duration::from_secs(60)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_retries() -> u32 {
    5
}

fn default_queue_capacity() -> usize {
    1_000
}

/// Grouping and timing of a route; every field falls back to `[alerts.route]`'s, then to
/// Alertmanager's defaults (30s, 5m, 4h).
#[derive(Debug, Clone, Default)]
pub struct RouteTiming {
    pub group_by: Option<Vec<String>>,
    pub group_wait: Option<Duration>,
    pub group_interval: Option<Duration>,
    pub repeat_interval: Option<Duration>,
}

/// `[alerts.route]`: what no route in `routes` takes goes to `receiver` (none: dropped), and
/// the timing every route inherits.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RootRoute {
    #[serde(default)]
    pub receiver: Option<String>,
    /// Labels that split alerts into groups (one notification each); `["..."]` is every label.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default, with = "humantime_serde")]
    pub group_wait: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub group_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub repeat_interval: Option<Duration>,
}

/// `[[alerts.routes]]`: tried in order; the first that matches takes the alert, unless it says
/// `continue = true`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub receiver: String,
    /// Labels that must equal these values.
    #[serde(default, rename = "match")]
    pub match_equal: BTreeMap<String, String>,
    /// Labels whose whole value must match these regexes.
    #[serde(default)]
    pub match_re: BTreeMap<String, String>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Labels that split alerts into groups (one notification each); `["..."]` is every label.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default, with = "humantime_serde")]
    pub group_wait: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub group_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub repeat_interval: Option<Duration>,
}

macro_rules! timing_of {
    ($($ty:ty),*) => {$(
        impl $ty {
            pub fn timing(&self) -> RouteTiming {
                RouteTiming {
                    group_by: self.group_by.clone(),
                    group_wait: self.group_wait,
                    group_interval: self.group_interval,
                    repeat_interval: self.repeat_interval,
                }
            }
        }
    )*};
}
timing_of!(RootRoute, RouteConfig);

/// Alertmanager's `group_by: ['...']`.
pub const GROUP_BY_ALL: &str = "...";

impl RouteTiming {
    fn resolve(&self, parent: &RouteTiming) -> (GroupBy, Timing) {
        let defaults = Timing::default();
        let group_by = match self.group_by.as_ref().or(parent.group_by.as_ref()) {
            Some(labels) if labels.iter().any(|l| l == GROUP_BY_ALL) => GroupBy::All,
            Some(labels) => GroupBy::Labels(labels.clone()),
            None => GroupBy::Labels(Vec::new()),
        };
        let timing = Timing {
            group_wait: self
                .group_wait
                .or(parent.group_wait)
                .unwrap_or(defaults.group_wait),
            group_interval: self
                .group_interval
                .or(parent.group_interval)
                .unwrap_or(defaults.group_interval),
            repeat_interval: self
                .repeat_interval
                .or(parent.repeat_interval)
                .unwrap_or(defaults.repeat_interval),
        };
        (group_by, timing)
    }
}

/// The core's route for a receiver: an Alertmanager receiver is sent every alert at once and
/// again every `resend_every` (Alertmanager groups them itself); a webhook gets the route's
/// grouping and timing.
fn core_route(
    receiver: &str,
    receivers: &BTreeMap<String, ReceiverConfig>,
    matchers: Vec<Matcher>,
    continue_matching: bool,
    (group_by, timing): (GroupBy, Timing),
) -> Route {
    let (group_by, timing) = match receivers.get(receiver) {
        Some(r) if r.kind == ReceiverKind::Alertmanager => (
            GroupBy::All,
            Timing {
                group_wait: Duration::ZERO,
                group_interval: Duration::ZERO,
                repeat_interval: r.resend_every,
            },
        ),
        _ => (group_by, timing),
    };
    Route {
        receiver: receiver.to_string(),
        matchers,
        continue_matching,
        group_by,
        timing,
    }
}

/// The core's routes and fallback route of a validated config.
///
/// # Errors
/// A `match_re` that is not a regex (validation reports it first).
pub fn core_routes(
    receivers: &BTreeMap<String, ReceiverConfig>,
    root: &RootRoute,
    routes: &[RouteConfig],
) -> Result<(Vec<Route>, Option<Route>), regex::Error> {
    let mut out = Vec::with_capacity(routes.len());
    for route in routes {
        let mut matchers: Vec<Matcher> = route
            .match_equal
            .iter()
            .map(|(label, value)| Matcher::Equal {
                label: label.clone(),
                value: value.clone(),
            })
            .collect();
        for (label, pattern) in &route.match_re {
            matchers.push(Matcher::regex(label, pattern)?);
        }
        out.push(core_route(
            &route.receiver,
            receivers,
            matchers,
            route.continue_matching,
            route.timing().resolve(&root.timing()),
        ));
    }
    let fallback = root.receiver.as_deref().map(|receiver| {
        core_route(
            receiver,
            receivers,
            Vec::new(),
            false,
            root.timing().resolve(&RouteTiming::default()),
        )
    });
    Ok((out, fallback))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<crate::config::Config, Vec<String>> {
        crate::config::parse("test.toml", text, [])
            .map_err(|e| e.errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn the_example_receivers_and_routes_are_valid_once_uncommented() {
        let example = crate::config::EXAMPLE;
        let block = crate::config::example_block("# [alerts.receivers.oncall]");
        let config = parse(&format!("{example}\n{block}")).unwrap();
        let alerts = &config.alerts;
        assert_eq!(alerts.receivers["oncall"].kind, ReceiverKind::Alertmanager);
        assert_eq!(alerts.receivers["payments"].max_alerts, 20);
        let (routes, fallback) =
            core_routes(&alerts.receivers, &alerts.route, &alerts.routes).unwrap();
        // The webhook route inherits the root's timing and keeps its own group_by.
        assert_eq!(routes[0].receiver, "payments");
        assert!(routes[0].continue_matching);
        assert_eq!(
            routes[0].group_by,
            GroupBy::Labels(vec!["alertname".into(), "group".into()])
        );
        assert_eq!(
            routes[0].timing.repeat_interval,
            Duration::from_secs(4 * 3600)
        );
        // An Alertmanager receiver is sent every alert at once and again every resend_every.
        let fallback = fallback.unwrap();
        assert_eq!(fallback.group_by, GroupBy::All);
        assert_eq!(
            fallback.timing,
            Timing {
                group_wait: Duration::ZERO,
                group_interval: Duration::ZERO,
                repeat_interval: Duration::from_secs(60),
            }
        );
        // Secrets stay out of Debug.
        let debug = format!("{alerts:?}");
        assert!(!debug.contains("change-me"), "{debug}");
        assert!(
            parse(example).unwrap().alerts.receivers.is_empty(),
            "off unless configured"
        );
    }

    #[test]
    fn mistakes_are_reported_with_their_place_and_a_fix() {
        let errors = parse(
            r#"
            [alerts.receivers.hook]
            type = "webhook"
            url = "http://user:pw@relay/hook"
            user = "x"
            headers = { "Bad Header" = "v" }
            [alerts.receivers.am]
            type = "alertmanager"
            [[alerts.routes]]
            receiver = "nobody"
            match_re = { topic = "(" }
            "#,
        )
        .unwrap_err();
        let expected = [
            "alerts.receivers.am: an alertmanager receiver needs its address",
            "alerts.receivers.hook.url: the URL holds credentials",
            "alerts.receivers.hook: basic auth needs both user and password",
            "alerts.receivers.hook.headers: \"Bad Header\" cannot be sent as a header name",
            "alerts.routes[0].receiver: no receiver is named \"nobody\" — define [alerts.receivers.nobody] or use one of: am, hook",
            "alerts.routes[0].match_re.topic: not a regex",
        ];
        for want in expected {
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "{want}\n{errors:#?}"
            );
        }
        assert!(!errors.iter().any(|e| e.contains("pw")), "{errors:#?}");
        let unrouted =
            parse("[alerts.receivers.hook]\ntype = \"webhook\"\nurl = \"http://relay/hook\"\n")
                .unwrap_err();
        assert!(
            unrouted[0].starts_with("alerts: receivers are defined but nothing routes"),
            "{unrouted:?}"
        );
        let unknown_key = parse("[alerts.route]\nreceivr = \"x\"\n").unwrap_err();
        assert!(unknown_key[0].contains("receivr"), "{unknown_key:?}");
    }
}
