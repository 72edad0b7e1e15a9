//! Alerts that pipescope evaluates and sends itself.
//!
//! The types here are what the engine (rules → states) hands to the notifiers (Alertmanager's
//! API, webhooks): one [`AlertNotice`] per alert instance, in the shape Alertmanager and
//! Prometheus use, so the notifiers need nothing else of the engine.

pub mod anomaly;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::EpochMillis;

pub mod notify;

/// An alert instance's identity and routing keys: `alertname`, `severity` and the rule's own
/// labels (`cluster`, `group`, `topic`, `team`, …). Sorted, so equal sets compare equal.
pub type AlertLabels = BTreeMap<String, String>;

/// Where an alert instance stands. Inactive instances are not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds, for less than the rule's `for` duration.
    Pending,
    /// The condition has held for the rule's `for` duration: notifiers are told.
    Firing,
    /// It fired, and the condition no longer holds.
    Resolved,
}

/// How urgent a rule says its alerts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What a notifier is told about one alert instance that fires or has resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNotice {
    /// Includes `alertname` and `severity`.
    pub labels: AlertLabels,
    /// `summary` (the rule's template filled in), `description`, `value`.
    pub annotations: BTreeMap<String, String>,
    /// [`AlertState::Firing`] or [`AlertState::Resolved`].
    pub state: AlertState,
    /// When the condition began to hold (Alertmanager's `startsAt`).
    pub starts_at: EpochMillis,
    /// When it resolved; `None` while firing.
    pub ends_at: Option<EpochMillis>,
    /// A link back to the monitor's page for the alert (Alertmanager's `generatorURL`).
    pub generator_url: String,
}

pub mod engine;
pub mod rules;
pub mod silences;
pub mod snapshot;
