//! Alert notifications end to end: the notifiers fed notices as the engine sends them, posting
//! to a real Alertmanager (whose webhook is the test's receiver) and to webhooks directly.

use std::sync::Arc;
use std::time::Duration;

use pipescope::alerts::NoticeBatch;
use pipescope::alerts::notify::{
    NotifyMetrics, NotifySettings, ReceiverConfig, RouteConfig, SentLog,
};
use pipescope::config::Secret;
use pipescope::shutdown::Stop;
use pipescope::store::alerts::AlertTable;
use pipescope_core::alerts::engine::Emitted;
use pipescope_core::alerts::notify::{Limits, fingerprint};
use pipescope_core::alerts::{AlertLabels, AlertNotice, AlertState};
use pipescope_core::{Clock, SystemClock};
use pipescope_testkit::{Alertmanager, Received, WebhookSink, wait_until};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// The notifiers running on their own runtime, fed through `notices`.
struct Notifiers {
    notices: broadcast::Sender<Arc<NoticeBatch>>,
    registry: Registry,
    stop: Stop,
    runtime: tokio::runtime::Runtime,
}

impl Notifiers {
    fn start(settings: NotifySettings) -> Self {
        Self::start_with_log(settings, None)
    }

    fn start_with_log(settings: NotifySettings, log: Option<SentLog>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (notices, receiver) = broadcast::channel(64);
        let mut registry = Registry::default();
        let metrics = NotifyMetrics::register(&mut registry);
        let stop = Stop::new();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        runtime.spawn(pipescope::alerts::notify::run(
            settings,
            receiver,
            metrics,
            clock,
            stop.clone(),
            log,
        ));
        Self {
            notices,
            registry,
            stop,
            runtime,
        }
    }

    fn send(&self, notice: &AlertNotice) {
        let batch = NoticeBatch {
            time_ms: notice.ends_at.unwrap_or(notice.starts_at),
            notices: vec![Emitted {
                notice: notice.clone(),
                changed: true,
                silenced: false,
            }],
        };
        self.notices.send(Arc::new(batch)).unwrap();
    }

    fn metrics(&self) -> String {
        pipescope::metrics::encode_prometheus_text(&self.registry)
    }
}

impl Drop for Notifiers {
    fn drop(&mut self) {
        self.stop.stop();
        let runtime = std::mem::replace(
            &mut self.runtime,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        );
        runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

fn labels(pairs: &[(&str, &str)]) -> AlertLabels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn firing(pairs: &[(&str, &str)], summary: &str) -> AlertNotice {
    AlertNotice {
        labels: labels(pairs),
        annotations: [
            ("summary".to_string(), summary.to_string()),
            ("value".to_string(), "42".to_string()),
        ]
        .into(),
        state: AlertState::Firing,
        starts_at: pipescope_testkit::now_ms() as u64 - 60_000,
        ends_at: None,
        generator_url: "http://127.0.0.1:7575/alerts".to_string(),
    }
}

fn resolved(notice: &AlertNotice) -> AlertNotice {
    AlertNotice {
        state: AlertState::Resolved,
        ends_at: Some(pipescope_testkit::now_ms() as u64),
        ..notice.clone()
    }
}

fn receiver(kind: &str, url: &str) -> ReceiverConfig {
    let text = format!("type = \"{kind}\"\nurl = \"{url}\"\n");
    toml::from_str(&text).unwrap()
}

fn route(team: &str, receiver: &str) -> RouteConfig {
    let text = format!(
        "receiver = \"{receiver}\"\nmatch = {{ team = \"{team}\" }}\ngroup_by = [\"alertname\"]\n"
    );
    toml::from_str(&text).unwrap()
}

fn json_of(received: &Received) -> Value {
    serde_json::from_str(&received.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", received.body))
}

/// The webhook messages at `path` that were answered 200.
fn delivered(sink: &WebhookSink, path: &str) -> Vec<Value> {
    sink.received_at(path)
        .iter()
        .filter(|r| r.status == 200)
        .map(json_of)
        .collect()
}

#[test]
fn an_alert_reaches_alertmanager_and_its_webhook_then_its_resolution() {
    let sink = WebhookSink::start();
    let alertmanager = Alertmanager::start(&sink.url("/from-alertmanager"));
    let mut am = receiver("alertmanager", &alertmanager.url());
    am.resend_every = Duration::from_secs(60);
    let notifiers = Notifiers::start(NotifySettings {
        receivers: [("oncall".to_string(), am)].into(),
        route: toml::from_str("receiver = \"oncall\"").unwrap(),
        routes: Vec::new(),
        external_url: "http://127.0.0.1:7575".to_string(),
        limits: Limits::default(),
    });
    let lag = firing(
        &[
            ("alertname", "ConsumerLagHigh"),
            ("severity", "warning"),
            ("cluster", "prod"),
            ("group", "billing"),
            ("team", "payments"),
        ],
        "group billing lags 40 offsets behind on prod",
    );
    notifiers.send(&lag);

    let message_with = |status: &str| {
        delivered(&sink, "/from-alertmanager")
            .into_iter()
            .find(|m| m["status"] == status)
    };
    assert!(
        wait_until(Duration::from_secs(20), || message_with("firing").is_some()),
        "Alertmanager did not pass the alert on; the sink got {:?}\nAlertmanager holds {}",
        sink.received(),
        alertmanager.alerts()
    );
    let message = message_with("firing").unwrap();
    assert_eq!(message["version"], "4");
    assert_eq!(message["receiver"], "test");
    let alert = &message["alerts"][0];
    assert_eq!(alert["labels"], json!(lag.labels));
    assert_eq!(alert["annotations"], json!(lag.annotations));
    assert_eq!(alert["generatorURL"], "http://127.0.0.1:7575/alerts");
    // The core's fingerprint is Alertmanager's own.
    assert_eq!(
        alert["fingerprint"],
        format!("{:016x}", fingerprint(&lag.labels))
    );

    notifiers.send(&resolved(&lag));
    assert!(
        wait_until(Duration::from_secs(20), || message_with("resolved")
            .is_some()),
        "no resolution came through; the sink got {:?}",
        sink.received()
    );
    let alert = &message_with("resolved").unwrap()["alerts"][0];
    assert_eq!(alert["status"], "resolved");
    assert_eq!(alert["labels"], json!(lag.labels));
    let metrics = notifiers.metrics();
    assert!(
        metrics.contains(
            "pipescope_alert_notifications_total{receiver=\"oncall\",outcome=\"sent\"} 2\n"
        ),
        "{metrics}"
    );
}

#[test]
fn webhooks_get_version_4_json_routed_per_team_with_retries_repeats_and_resolution() {
    let sink = WebhookSink::start();
    let mut logistics = receiver("webhook", &sink.url("/logistics"));
    logistics.token = Some(Secret::new("s3cret-token"));
    logistics.headers = [("X-Team".to_string(), Secret::new("logistics"))].into();
    let root = toml::from_str(
        "group_wait = \"100ms\"\ngroup_interval = \"300ms\"\nrepeat_interval = \"1500ms\"",
    )
    .unwrap();
    let notifiers = Notifiers::start(NotifySettings {
        receivers: [
            (
                "payments".to_string(),
                receiver("webhook", &sink.url("/payments")),
            ),
            ("logistics".to_string(), logistics),
        ]
        .into(),
        route: root,
        routes: vec![
            route("payments", "payments"),
            route("logistics", "logistics"),
        ],
        external_url: "http://monitor.example:7575".to_string(),
        limits: Limits::default(),
    });

    // Fails twice, then is taken: the retries get it there.
    sink.fail_next(2, 503);
    let lag = firing(
        &[
            ("alertname", "ConsumerLagHigh"),
            ("group", "billing"),
            ("severity", "warning"),
            ("team", "payments"),
        ],
        "group billing lags",
    );
    notifiers.send(&lag);
    assert!(
        wait_until(Duration::from_secs(20), || !delivered(&sink, "/payments")
            .is_empty()),
        "{:?}",
        sink.received()
    );
    let statuses: Vec<u16> = sink
        .received_at("/payments")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
    // One notification, tried three times (not three notifications given up one by one).
    let metrics = notifiers.metrics();
    for line in [
        "pipescope_alert_notifications_total{receiver=\"payments\",outcome=\"retried\"} 2\n",
        "pipescope_alert_notifications_total{receiver=\"payments\",outcome=\"failed\"} 0\n",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    let first = sink.received_at("/payments")[2].clone();
    assert_eq!(first.method, "POST");
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.header("authorization"), None);
    let message = json_of(&first);
    let starts_at = pipescope_core::alerts::notify::rfc3339(lag.starts_at);
    assert_eq!(
        message,
        json!({
            "version": "4",
            "groupKey": "{}/{team=\"payments\"}:{alertname=\"ConsumerLagHigh\"}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "payments",
            "groupLabels": {"alertname": "ConsumerLagHigh"},
            "commonLabels": lag.labels,
            "commonAnnotations": lag.annotations,
            "externalURL": "http://monitor.example:7575",
            "alerts": [{
                "status": "firing",
                "labels": lag.labels,
                "annotations": lag.annotations,
                "startsAt": starts_at,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:7575/alerts",
                "fingerprint": format!("{:016x}", fingerprint(&lag.labels)),
            }]
        })
    );

    // The other team's alert goes to its own receiver only, with its auth and headers.
    let stalled = firing(
        &[
            ("alertname", "ConsumerStalled"),
            ("group", "trucks"),
            ("team", "logistics"),
        ],
        "group trucks is stalled",
    );
    notifiers.send(&stalled);
    assert!(wait_until(Duration::from_secs(10), || !delivered(
        &sink,
        "/logistics"
    )
    .is_empty()));
    let to_logistics = sink.received_at("/logistics")[0].clone();
    assert_eq!(
        to_logistics.header("authorization"),
        Some("Bearer s3cret-token")
    );
    assert_eq!(to_logistics.header("x-team"), Some("logistics"));
    assert_eq!(
        json_of(&to_logistics)["alerts"][0]["labels"]["team"],
        "logistics"
    );
    assert!(
        delivered(&sink, "/payments")
            .iter()
            .all(|m| m["commonLabels"]["team"] == "payments")
    );

    // Still firing, unchanged: sent again after repeat_interval, as it was.
    assert!(
        wait_until(Duration::from_secs(10), || delivered(&sink, "/payments")
            .len()
            >= 2),
        "no repeat: {:?}",
        sink.received_at("/payments")
    );
    assert_eq!(
        delivered(&sink, "/payments")[1]["alerts"],
        message["alerts"]
    );

    // Resolved: one message saying so, with when it ended.
    let done = resolved(&lag);
    notifiers.send(&done);
    let resolution = || {
        delivered(&sink, "/payments")
            .into_iter()
            .find(|m| m["status"] == "resolved")
    };
    assert!(wait_until(Duration::from_secs(10), || resolution().is_some()));
    let alert = &resolution().unwrap()["alerts"][0];
    assert_eq!(alert["status"], "resolved");
    assert_eq!(
        alert["endsAt"],
        pipescope_core::alerts::notify::rfc3339(done.ends_at.unwrap())
    );

    let metrics = notifiers.metrics();
    for line in [
        "pipescope_alert_notifications_total{receiver=\"payments\",outcome=\"retried\"} 2\n",
        "pipescope_alert_notifications_total{receiver=\"payments\",outcome=\"failed\"} 0\n",
        "pipescope_alert_notifications_queued{receiver=\"payments\"} 0\n",
        "pipescope_alert_notifications_dropped_total{receiver=\"payments\"} 0\n",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    assert!(!metrics.contains("s3cret"), "{metrics}");
}

/// A restart of the notifiers does not send a still-firing alert again: what each group sent is
/// kept in the store's table and read back; the resolution is still sent.
#[test]
fn a_restart_does_not_send_a_firing_alert_again_but_sends_its_resolution() {
    let sink = WebhookSink::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = || {
        NotifySettings {
        receivers: [("ops".to_string(), receiver("webhook", &sink.url("/ops")))].into(),
        route: toml::from_str(
            "receiver = \"ops\"\ngroup_wait = \"100ms\"\ngroup_interval = \"300ms\"\nrepeat_interval = \"1h\"",
        )
        .unwrap(),
        routes: vec![],
        external_url: "http://monitor.example:7575".to_string(),
        limits: Limits::default(),
    }
    };
    let log = |still_firing: &[&AlertNotice]| {
        Some(SentLog {
            table: AlertTable::open(dir.path()).unwrap(),
            still_firing: still_firing.iter().map(|n| n.labels.clone()).collect(),
        })
    };
    let lag = firing(
        &[
            ("alertname", "ConsumerLagHigh"),
            ("group", "billing"),
            ("severity", "warning"),
        ],
        "group billing lags",
    );
    let notifiers = Notifiers::start_with_log(settings(), log(&[]));
    notifiers.send(&lag);
    assert!(
        wait_until(Duration::from_secs(10), || delivered(&sink, "/ops").len()
            == 1),
        "{:?}",
        sink.received()
    );
    assert!(
        wait_until(Duration::from_secs(10), || !AlertTable::open(dir.path())
            .unwrap()
            .load_sent()
            .unwrap()
            .is_empty()),
        "the notification was not logged"
    );
    drop(notifiers);

    // Restarted: the engine says "firing" again, as it does after a restart. No news.
    let notifiers = Notifiers::start_with_log(settings(), log(&[&lag]));
    notifiers.send(&lag);
    assert!(
        !wait_until(Duration::from_secs(3), || delivered(&sink, "/ops").len()
            > 1),
        "sent again after the restart: {:?}",
        delivered(&sink, "/ops")
    );
    notifiers.send(&resolved(&lag));
    assert!(
        wait_until(Duration::from_secs(10), || delivered(&sink, "/ops").len()
            == 2),
        "{:?}",
        sink.received()
    );
    assert_eq!(delivered(&sink, "/ops")[1]["status"], "resolved");
}
