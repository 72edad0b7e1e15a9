//! A pipeline part's health: each check (its Kafka brokers, its MQTT broker, its writes) is
//! either passing or failing since some time; the part is unhealthy once any check has failed
//! for longer than a short grace, so a reconnection or one retried write does not flap it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::EpochMillis;

/// How long a check may fail before the part counts as unhealthy.
pub const DEFAULT_GRACE_MS: u64 = 5_000;

/// The checks of one part, keyed by a name the part chooses from a fixed set (so the map is
/// bounded by the code, not by input).
#[derive(Debug, Clone)]
pub struct PartHealth {
    grace_ms: u64,
    checks: BTreeMap<&'static str, CheckState>,
}

#[derive(Debug, Clone)]
struct CheckState {
    passing: bool,
    /// When it last changed between passing and failing.
    since_ms: EpochMillis,
    detail: String,
}

/// One check as `/health` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub check: &'static str,
    /// Passing now, or failing for less than the grace.
    pub healthy: bool,
    pub passing: bool,
    /// Since when it has been passing or failing (epoch ms).
    pub since_ms: EpochMillis,
    /// Why it fails (empty while passing).
    pub detail: String,
}

/// The part's health at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    pub healthy: bool,
    pub checks: Vec<CheckReport>,
}

impl Default for PartHealth {
    fn default() -> Self {
        Self::new(DEFAULT_GRACE_MS)
    }
}

impl PartHealth {
    pub fn new(grace_ms: u64) -> Self {
        Self {
            grace_ms,
            checks: BTreeMap::new(),
        }
    }

    /// `check` works at `now_ms`.
    pub fn passing(&mut self, check: &'static str, now_ms: EpochMillis) {
        self.set(check, true, String::new(), now_ms);
    }

    /// `check` failed at `now_ms` because of `detail`; a failure already under way keeps its
    /// start (the grace runs from the first failure) and takes the newest detail.
    pub fn failing(&mut self, check: &'static str, detail: impl Into<String>, now_ms: EpochMillis) {
        self.set(check, false, detail.into(), now_ms);
    }

    fn set(&mut self, check: &'static str, passing: bool, detail: String, now_ms: EpochMillis) {
        match self.checks.get_mut(check) {
            Some(state) if state.passing == passing => state.detail = detail,
            Some(state) => {
                *state = CheckState {
                    passing,
                    since_ms: now_ms,
                    detail,
                }
            }
            None => {
                self.checks.insert(
                    check,
                    CheckState {
                        passing,
                        since_ms: now_ms,
                        detail,
                    },
                );
            }
        }
    }

    /// Healthy unless a check has been failing for longer than the grace at `now_ms`.
    pub fn report(&self, now_ms: EpochMillis) -> HealthReport {
        let checks: Vec<CheckReport> = self
            .checks
            .iter()
            .map(|(check, state)| CheckReport {
                check,
                healthy: state.passing || now_ms.saturating_sub(state.since_ms) <= self.grace_ms,
                passing: state.passing,
                since_ms: state.since_ms,
                detail: state.detail.clone(),
            })
            .collect();
        HealthReport {
            healthy: checks.iter().all(|c| c.healthy),
            checks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_with_no_checks_yet_is_healthy() {
        assert!(PartHealth::new(5_000).report(0).healthy);
    }

    #[test]
    fn a_failure_turns_the_part_unhealthy_only_after_the_grace_and_a_pass_heals_it_at_once() {
        let mut health = PartHealth::new(5_000);
        health.passing("kafka", 1_000);
        health.failing("kafka", "all brokers down", 10_000);
        health.failing("kafka", "timed out", 12_000);
        assert!(health.report(15_000).healthy, "exactly the grace");
        let report = health.report(15_001);
        assert!(!report.healthy);
        assert_eq!(
            report.checks,
            vec![CheckReport {
                check: "kafka",
                healthy: false,
                passing: false,
                since_ms: 10_000,
                detail: "timed out".into(),
            }]
        );
        health.passing("kafka", 20_000);
        let report = health.report(20_000);
        assert!(report.healthy);
        assert_eq!(report.checks[0].since_ms, 20_000);
        assert_eq!(report.checks[0].detail, "");
    }

    #[test]
    fn one_failing_check_makes_the_part_unhealthy_whatever_the_others_say() {
        let mut health = PartHealth::new(1_000);
        health.passing("kafka", 0);
        health.failing("mqtt", "connection refused", 0);
        let report = health.report(2_000);
        assert!(!report.healthy);
        assert_eq!(
            report
                .checks
                .iter()
                .map(|c| (c.check, c.healthy))
                .collect::<Vec<_>>(),
            vec![("kafka", true), ("mqtt", false)]
        );
    }
}
