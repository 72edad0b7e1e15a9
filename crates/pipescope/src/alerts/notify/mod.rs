//! The notifiers: the engine's [`AlertNotice`](pipescope_core::alerts::AlertNotice)s, routed and grouped by the core's
//! [`Dispatcher`], go into one bounded queue per receiver; one task per receiver posts them
//! (Alertmanager's API v2, or a webhook in Alertmanager's JSON) with retries and backoff.
//!
//! [`run`] is the whole of it: the monitor hands it the engine's broadcast of notices:
//!
//! ```ignore
//! let metrics = NotifyMetrics::register(&mut registry);
//! let settings = NotifySettings::from_config(&config);
//! tokio::spawn(notify::run(settings, alerts.subscribe(), metrics, clock, stop.clone()));
//! ```

pub mod config;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipescope_core::Clock;
use pipescope_core::alerts::AlertLabels;
use pipescope_core::alerts::notify::{
    BoundedQueue, Dispatcher, Limits, Notification, RetryPlan, SentGroup, alertmanager_body,
    retryable_status, webhook_message,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

pub use config::{ReceiverConfig, ReceiverKind, RootRoute, RouteConfig};

use super::NoticeBatch;
use crate::shutdown::Stop;
use crate::store::alerts::AlertTable;

/// Every metric name this module emits (deploy/metrics.txt lists them).
pub const NAMES: [&str; 3] = [
    "pipescope_alert_notifications_total",
    "pipescope_alert_notifications_dropped_total",
    "pipescope_alert_notifications_queued",
];

/// The receiver label of notices lost before routing (the engine's broadcast outran the
/// dispatcher), so no receiver can be named.
pub const ANY_RECEIVER: &str = "*";

/// First wait after a failed send; waits double up to [`MAX_RETRY_WAIT`].
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(500);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// The dispatcher looks at its groups at least this often, even when none is due.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// What the notifiers need of the config: the `[alerts]` receivers and routes, and the
/// monitor's own address for links (`externalURL`).
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub receivers: BTreeMap<String, ReceiverConfig>,
    pub route: RootRoute,
    pub routes: Vec<RouteConfig>,
    pub external_url: String,
    pub limits: Limits,
}

impl NotifySettings {
    /// The `[alerts]` receivers and routes of `config`; `externalURL` defaults to
    /// `http://<web.listen>`.
    pub fn from_config(config: &crate::config::Config) -> Self {
        let alerts = &config.alerts;
        Self {
            receivers: alerts.receivers.clone(),
            route: alerts.route.clone(),
            routes: alerts.routes.clone(),
            external_url: alerts
                .external_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", config.web.listen)),
            limits: Limits::default(),
        }
    }

    /// True when there is a receiver to tell: otherwise [`run`] need not be started.
    pub fn has_receivers(&self) -> bool {
        !self.receivers.is_empty()
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    receiver: String,
    /// `sent`, `retried` (a try failed, another follows) or `failed` (given up).
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReceiverLabel {
    receiver: String,
}

/// `pipescope_alert_notifications_*`. Receiver names come from the config, not from alerts.
#[derive(Debug, Default)]
pub struct NotifyMetrics {
    notifications: Family<OutcomeLabels, Counter>,
    dropped: Family<ReceiverLabel, Counter>,
    queued: Family<ReceiverLabel, Gauge>,
}

impl NotifyMetrics {
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let metrics = Arc::new(Self::default());
        registry.register(
            "pipescope_alert_notifications",
            "Notification sends per receiver: sent, retried (a try failed), failed (given up)",
            metrics.notifications.clone(),
        );
        registry.register(
            "pipescope_alert_notifications_dropped",
            "Notifications or notices dropped: a full receiver queue, a group or alert cap, or (receiver \"*\") notices the dispatcher fell behind on",
            metrics.dropped.clone(),
        );
        registry.register(
            "pipescope_alert_notifications_queued",
            "Notifications waiting to be sent, per receiver",
            metrics.queued.clone(),
        );
        metrics
    }

    fn count(&self, receiver: &str, outcome: &str) {
        self.notifications
            .get_or_create(&OutcomeLabels {
                receiver: receiver.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    fn dropped(&self, receiver: &str, n: u64) {
        self.dropped
            .get_or_create(&ReceiverLabel {
                receiver: receiver.to_string(),
            })
            .inc_by(n);
    }

    fn queued(&self, receiver: &str, n: usize) {
        self.queued
            .get_or_create(&ReceiverLabel {
                receiver: receiver.to_string(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Every receiver's series at 0, so dashboards see them before the first alert.
    fn touch(&self, receiver: &str) {
        for outcome in ["sent", "retried", "failed"] {
            let _ = self.notifications.get_or_create(&OutcomeLabels {
                receiver: receiver.to_string(),
                outcome: outcome.to_string(),
            });
        }
        self.dropped(receiver, 0);
        self.queued(receiver, 0);
    }
}

/// One receiver's queue, shared by the dispatcher (pushes) and the receiver's task (pops).
#[derive(Debug)]
struct ReceiverQueue {
    items: Mutex<BoundedQueue<Notification>>,
    ready: tokio::sync::Notify,
}

impl ReceiverQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, BoundedQueue<Notification>> {
        // A panic while holding it leaves a queue that is still whole.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Routes, groups and sends the notices until `stop`. Returns at once with an error when a
/// route's regex does not compile (validation reports that first).
///
/// # Errors
/// A `match_re` that is not a regex.
pub async fn run(
    settings: NotifySettings,
    mut notices: broadcast::Receiver<Arc<NoticeBatch>>,
    metrics: Arc<NotifyMetrics>,
    clock: Arc<dyn Clock>,
    stop: Stop,
    log: Option<SentLog>,
) -> anyhow::Result<()> {
    let (routes, fallback) =
        config::core_routes(&settings.receivers, &settings.route, &settings.routes)?;
    let mut dispatcher = Dispatcher::new(routes, fallback, settings.limits);
    let log = log.map(|log| {
        match log.table.load_sent() {
            Ok(sent) => dispatcher.restore(sent, &log.still_firing),
            Err(e) => tracing::error!("{e}; groups notified before the restart may be sent again"),
        }
        Arc::new(Mutex::new(log.table))
    });
    let mut logged = dispatcher.sent();
    let settings = Arc::new(settings);
    let mut queues = BTreeMap::new();
    let mut senders = Vec::new();
    for (name, receiver) in &settings.receivers {
        metrics.touch(name);
        let queue = Arc::new(ReceiverQueue {
            items: Mutex::new(BoundedQueue::new(receiver.queue_capacity)),
            ready: tokio::sync::Notify::new(),
        });
        queues.insert(name.clone(), queue.clone());
        let sender = Sender {
            name: name.clone(),
            receiver: receiver.clone(),
            external_url: settings.external_url.clone(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(receiver.timeout))
                .build()
                .into(),
            metrics: metrics.clone(),
        };
        senders.push(tokio::spawn(sender.run(queue, stop.clone())));
    }

    let mut open = true;
    loop {
        let now = clock.now_millis();
        let wait = dispatcher
            .next_due()
            .map_or(IDLE_TICK, |due| {
                Duration::from_millis(due.saturating_sub(now))
            })
            .min(IDLE_TICK);
        tokio::select! {
            () = stop.stopped() => break,
            received = notices.recv(), if open => match received {
                Ok(batch) => {
                    let now = clock.now_millis();
                    let dropped: usize = batch
                        .notices
                        .iter()
                        .map(|emitted| {
                            if emitted.silenced {
                                dispatcher.mute(&emitted.notice.labels);
                                0
                            } else {
                                dispatcher.ingest(emitted.notice.clone(), now).dropped
                            }
                        })
                        .sum();
                    if dropped > 0 {
                        tracing::warn!(
                            "an alert was not notified to {dropped} route(s): the caps of {} groups or {} alerts per group are reached",
                            settings.limits.max_groups,
                            settings.limits.max_alerts_per_group
                        );
                        metrics.dropped(ANY_RECEIVER, dropped as u64);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!("the notifiers fell behind the alert engine and missed {missed} notices");
                    metrics.dropped(ANY_RECEIVER, missed);
                }
                Err(RecvError::Closed) => open = false,
            },
            () = tokio::time::sleep(wait) => {}
        }
        let due = dispatcher.due(clock.now_millis());
        if let Some(table) = &log {
            let sent = dispatcher.sent();
            if sent != logged {
                keep_log(table.clone(), sent.clone()).await;
                logged = sent;
            }
        }
        for notification in due {
            let Some(queue) = queues.get(&notification.receiver) else {
                continue;
            };
            let name = notification.receiver.clone();
            let (dropped, len) = {
                let mut items = queue.lock();
                (items.push(notification), items.len())
            };
            if dropped {
                tracing::warn!(
                    receiver = %name,
                    "the receiver's queue is full; its oldest notification was dropped — is it reachable?"
                );
                metrics.dropped(&name, 1);
            }
            metrics.queued(&name, len);
            queue.ready.notify_one();
        }
    }
    for sender in senders {
        let _ = sender.await;
    }
    Ok(())
}

/// Where the notifiers keep what they sent, and what fires now (the engine's states as the
/// store kept them), so a restart sends neither twice ([`Dispatcher::restore`]).
#[derive(Debug)]
pub struct SentLog {
    pub table: AlertTable,
    pub still_firing: BTreeSet<AlertLabels>,
}

async fn keep_log(table: Arc<Mutex<AlertTable>>, sent: Vec<SentGroup>) {
    let saved = tokio::task::spawn_blocking(move || {
        table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .save_sent(&sent)
    })
    .await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("{e}; after a restart some notifications may be sent again"),
        Err(e) => tracing::error!("keeping the notification log failed: {e}"),
    }
}

struct Sender {
    name: String,
    receiver: ReceiverConfig,
    external_url: String,
    agent: ureq::Agent,
    metrics: Arc<NotifyMetrics>,
}

/// Why one post did not land.
#[derive(Debug)]
struct PostError {
    message: String,
    retryable: bool,
}

impl Sender {
    async fn run(self, queue: Arc<ReceiverQueue>, stop: Stop) {
        let this = Arc::new(self);
        loop {
            let next = queue.lock().pop();
            let Some(notification) = next else {
                tokio::select! {
                    () = stop.stopped() => return,
                    () = queue.ready.notified() => continue,
                }
            };
            this.metrics.queued(&this.name, queue.lock().len());
            if Arc::clone(&this)
                .deliver(notification, &stop)
                .await
                .is_none()
            {
                return;
            }
        }
    }

    /// Posts one notification to each of the receiver's URLs, retrying those that failed;
    /// None when stopped.
    async fn deliver(self: Arc<Self>, notification: Notification, stop: &Stop) -> Option<()> {
        let body = match self.receiver.kind {
            ReceiverKind::Alertmanager => serde_json::to_vec(&alertmanager_body(
                &notification.alerts,
                notification.at,
                self.receiver.resend_every,
            )),
            ReceiverKind::Webhook => serde_json::to_vec(&webhook_message(
                &notification,
                &self.external_url,
                self.receiver.max_alerts,
            )),
        }
        .expect("maps of strings serialize");
        let body = Arc::new(body);
        let mut left = self.receiver.all_urls();
        let mut plan = RetryPlan::new(self.receiver.retries, FIRST_RETRY_WAIT, MAX_RETRY_WAIT);
        loop {
            let mut failed = Vec::new();
            let mut give_up = false;
            for url in left {
                let (this, body, target) = (self.clone(), body.clone(), url.clone());
                let posted = tokio::task::spawn_blocking(move || this.post(&target, &body))
                    .await
                    .unwrap_or_else(|e| {
                        Err(PostError {
                            message: format!("the sending task failed ({e})"),
                            retryable: true,
                        })
                    });
                if let Err(e) = posted {
                    give_up |= !e.retryable;
                    tracing::warn!(
                        receiver = %self.name,
                        %url,
                        "cannot send alert notification {}: {}",
                        notification.group_key,
                        e.message
                    );
                    failed.push(url);
                }
            }
            if failed.is_empty() {
                self.metrics.count(&self.name, "sent");
                return Some(());
            }
            let wait = if give_up {
                None
            } else {
                plan.after_failure(fastrand::f64())
            };
            let Some(wait) = wait else {
                tracing::error!(
                    receiver = %self.name,
                    "gave up on alert notification {} after {} tries — check the receiver's url and that it answers 2xx",
                    notification.group_key,
                    self.receiver.retries + 1
                );
                self.metrics.count(&self.name, "failed");
                return Some(());
            };
            self.metrics.count(&self.name, "retried");
            if stop.sleep(wait).await {
                return None;
            }
            left = failed;
        }
    }

    /// One blocking POST of `body`.
    fn post(&self, url: &str, body: &[u8]) -> Result<(), PostError> {
        let target = match self.receiver.kind {
            ReceiverKind::Alertmanager => format!("{}/api/v2/alerts", url.trim_end_matches('/')),
            ReceiverKind::Webhook => url.to_string(),
        };
        let mut request = self
            .agent
            .post(&target)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("pipescope/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &self.receiver.headers {
            request = request.header(name, value.expose());
        }
        if let Some(token) = &self.receiver.token {
            request = request.header("Authorization", format!("Bearer {}", token.expose()));
        } else if let (Some(user), Some(password)) = (&self.receiver.user, &self.receiver.password)
        {
            use base64::Engine as _;
            let pair = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.expose()));
            request = request.header("Authorization", format!("Basic {pair}"));
        }
        match request.send(body) {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => {
                let status = response.status().as_u16();
                Err(PostError {
                    message: format!("{target} answered {status}"),
                    retryable: retryable_status(status),
                })
            }
            Err(e) => Err(PostError {
                message: format!("{target}: {e}"),
                retryable: true,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_name_is_listed_in_deploy() {
        let mut registry = Registry::default();
        let metrics = NotifyMetrics::register(&mut registry);
        metrics.touch("ops");
        let text = crate::metrics::encode_prometheus_text(&registry);
        let listed = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/metrics.txt"
        ))
        .unwrap();
        for name in NAMES {
            assert!(
                text.contains(&format!("\n{name}{{")),
                "{name} not in {text}"
            );
            assert!(
                listed
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(name)),
                "{name} is not in deploy/metrics.txt"
            );
        }
    }
}
