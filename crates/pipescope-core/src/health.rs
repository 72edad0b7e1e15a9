//! What `/health` and `/ready` answer, as pure rules over observations with their times.
//!
//! - Liveness ([`TaskLiveness`]): a supervised task is failing when it ended for good or when it
//!   keeps failing ([`CRASH_LOOP_FAILURES`] failures within [`CRASH_LOOP_WINDOW_MS`]); one
//!   restart now and then is not a failure of the process.
//! - Readiness ([`Readiness`]): every configured source (Kafka cluster, MQTT broker, watched
//!   part, flow or quality reader) reached at least once, and every source that must stay up
//!   (the store, writable) up now. Each source keeps its state and since when.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::EpochMillis;

/// Failures within [`CRASH_LOOP_WINDOW_MS`] that make a task "in a crash loop".
pub const CRASH_LOOP_FAILURES: usize = 5;
/// 5 minutes: with the supervisor's backoff (100 ms doubling to 10 s) a task that fails at once
/// on every start fails 5 times in about 3 s; one that runs a minute each time, in 5 minutes.
pub const CRASH_LOOP_WINDOW_MS: u64 = 5 * 60 * 1000;

/// How a supervised task is doing, for `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TaskLiveness {
    /// Running, or restarted after a failure now and then.
    Running,
    /// Between a failure and its restart (not a failure of the process yet).
    Restarting,
    /// Failed [`CRASH_LOOP_FAILURES`] times within [`CRASH_LOOP_WINDOW_MS`].
    CrashLoop,
    /// Ended and not started again: the supervisor itself lost it.
    Dead,
}

impl TaskLiveness {
    /// Judges a task from whether it runs, whether it is gone for good, and its failure times
    /// (any order; only those within the window ending at `now_ms` count).
    pub fn judge(
        running: bool,
        dead: bool,
        failures_ms: &[EpochMillis],
        now_ms: EpochMillis,
    ) -> Self {
        let since = now_ms.saturating_sub(CRASH_LOOP_WINDOW_MS);
        let recent = failures_ms.iter().filter(|&&t| t > since).count();
        if dead {
            Self::Dead
        } else if recent >= CRASH_LOOP_FAILURES {
            Self::CrashLoop
        } else if running {
            Self::Running
        } else {
            Self::Restarting
        }
    }

    /// Whether `/health` fails (503) for this task.
    pub fn fails_liveness(self) -> bool {
        matches!(self, Self::CrashLoop | Self::Dead)
    }
}

/// A source's connection as `/ready` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SourceState {
    /// Not reached yet since the monitor started.
    NeverReached,
    Up,
    /// Reached before, not answering now.
    Down,
}

/// One source's state, since when, and its last error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceStatus {
    /// `kafka`, `mqtt`, `part`, `flow`, `quality` or `store`.
    pub kind: &'static str,
    pub name: String,
    pub state: SourceState,
    /// When it entered `state` (epoch ms); for `never_reached`, when the monitor started.
    pub since_ms: EpochMillis,
    /// When it was first reached; `null` while never reached.
    pub first_reached_ms: Option<EpochMillis>,
    /// The last error while not up; `null` once up.
    pub last_error: Option<String>,
    /// True for a source that must be up now for readiness (the store), not only reached once.
    pub must_stay_up: bool,
}

impl SourceStatus {
    /// Whether this source lets the monitor be ready.
    pub fn is_ready(&self) -> bool {
        if self.must_stay_up {
            self.state == SourceState::Up
        } else {
            self.first_reached_ms.is_some()
        }
    }
}

/// What one look at a source found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Not tried yet (a watcher that has not finished its first attempt): nothing changes.
    Pending,
    Up,
    Down(String),
}

/// Every configured source's [`SourceStatus`], keyed by `kind/name`. The set of sources is the
/// configuration's, so it is bounded by it.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    sources: BTreeMap<(&'static str, String), SourceStatus>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a configured source, never reached as of `now_ms` (a second add changes nothing).
    pub fn add(&mut self, kind: &'static str, name: &str, must_stay_up: bool, now_ms: EpochMillis) {
        self.sources
            .entry((kind, name.to_owned()))
            .or_insert_with(|| SourceStatus {
                kind,
                name: name.to_owned(),
                state: SourceState::NeverReached,
                since_ms: now_ms,
                first_reached_ms: None,
                last_error: None,
                must_stay_up,
            });
    }

    /// Records what a look at `kind/name` found at `now_ms`; unknown sources are ignored.
    pub fn observe(
        &mut self,
        kind: &'static str,
        name: &str,
        seen: Observation,
        now_ms: EpochMillis,
    ) {
        let Some(source) = self.sources.get_mut(&(kind, name.to_owned())) else {
            return;
        };
        match seen {
            Observation::Pending => {}
            Observation::Up => {
                if source.state != SourceState::Up {
                    source.state = SourceState::Up;
                    source.since_ms = now_ms;
                }
                source.first_reached_ms.get_or_insert(now_ms);
                source.last_error = None;
            }
            Observation::Down(error) => {
                if source.state == SourceState::Up {
                    source.state = SourceState::Down;
                    source.since_ms = now_ms;
                }
                source.last_error = Some(error);
            }
        }
    }

    /// Ready when every source is ([`SourceStatus::is_ready`]); ready with no source at all.
    pub fn is_ready(&self) -> bool {
        self.sources.values().all(SourceStatus::is_ready)
    }

    /// Every source, by kind then name.
    pub fn sources(&self) -> Vec<SourceStatus> {
        self.sources.values().cloned().collect()
    }
}

/// What one poll of a part's `/health` and `/metrics` found.
#[derive(Debug, Clone, PartialEq)]
pub struct PartReading {
    /// `/health`'s HTTP status and its JSON `status` field; `Err` when it did not answer.
    pub health: Result<(u16, Option<String>), String>,
    /// The part's own `pipescope_part_health_status` gauge, when its `/metrics` has it.
    pub health_gauge: Option<f64>,
}

/// A part's up and healthy, from one [`PartReading`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartVerdict {
    /// It answered `/health` at all.
    pub up: bool,
    /// Its own gauge says 1, or (without the gauge) `/health` answered 200 with status `ok`.
    pub healthy: bool,
}

impl PartReading {
    pub fn verdict(&self) -> PartVerdict {
        let Ok((code, status)) = &self.health else {
            return PartVerdict {
                up: false,
                healthy: false,
            };
        };
        let healthy = match self.health_gauge {
            Some(gauge) => gauge == 1.0,
            None => *code == 200 && status.as_deref() == Some("ok"),
        };
        PartVerdict { up: true, healthy }
    }
}

/// The value of the first series of gauge `name` in a Prometheus text (or OpenMetrics)
/// exposition, e.g. a part's `pipescope_part_health_status`; `None` when absent or unreadable.
/// Label values may hold spaces, braces and escaped quotes.
pub fn gauge_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = match rest.chars().next()? {
            '{' => after_labels(rest)?,
            ' ' | '\t' => rest,
            _ => return None, // another metric whose name starts with `name`
        };
        let value = rest.split_whitespace().next()?;
        match value {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            _ => value.parse().ok(),
        }
    })
}

/// What follows the label set that `text` starts with (`{...}`).
fn after_labels(text: &str) -> Option<&str> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(&text[i + 1..]),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_healthy_by_its_own_gauge_or_else_by_its_health_answer() {
        let reading = |health, health_gauge| PartReading {
            health,
            health_gauge,
        };
        let ok = Ok((200, Some("ok".to_owned())));
        let up_healthy = PartVerdict {
            up: true,
            healthy: true,
        };
        let up_unhealthy = PartVerdict {
            up: true,
            healthy: false,
        };
        assert_eq!(reading(ok.clone(), None).verdict(), up_healthy);
        assert_eq!(reading(ok.clone(), Some(1.0)).verdict(), up_healthy);
        assert_eq!(
            reading(ok, Some(0.0)).verdict(),
            up_unhealthy,
            "its gauge wins"
        );
        assert_eq!(
            reading(Ok((503, Some("failing".to_owned()))), None).verdict(),
            up_unhealthy
        );
        assert_eq!(
            reading(Ok((200, Some("degraded".to_owned()))), None).verdict(),
            up_unhealthy
        );
        assert_eq!(reading(Ok((200, None)), None).verdict(), up_unhealthy);
        assert_eq!(
            reading(Err("connection refused".to_owned()), Some(1.0)).verdict(),
            PartVerdict {
                up: false,
                healthy: false
            }
        );
    }

    #[test]
    fn a_gauge_is_read_from_an_exposition_with_or_without_labels() {
        let text = "# HELP pipescope_part_health_status 1 healthy\n\
                    # TYPE pipescope_part_health_status gauge\n\
                    pipescope_part_health_status_other 7\n\
                    pipescope_part_health_status{part=\"a } \\\" b\"} 0 1700000000\n";
        assert_eq!(gauge_value(text, "pipescope_part_health_status"), Some(0.0));
        assert_eq!(gauge_value("x 1\ny 2.5\n", "y"), Some(2.5));
        assert_eq!(gauge_value("y +Inf\n", "y"), Some(f64::INFINITY));
        assert_eq!(gauge_value("yy 1\n", "y"), None);
        assert_eq!(
            gauge_value("y{a=\"1\" 1\n", "y"),
            None,
            "labels never closed"
        );
        assert_eq!(gauge_value("y nope\n", "y"), None);
        assert_eq!(gauge_value("", "y"), None);
    }

    #[test]
    fn a_task_restarted_now_and_then_is_live_and_one_in_a_crash_loop_is_not() {
        let now = 1_000_000;
        assert_eq!(
            TaskLiveness::judge(true, false, &[], now),
            TaskLiveness::Running
        );
        assert_eq!(
            TaskLiveness::judge(false, false, &[now - 100], now),
            TaskLiveness::Restarting
        );
        assert!(!TaskLiveness::Restarting.fails_liveness());
        let four = [now - 4_000, now - 3_000, now - 2_000, now - 1_000];
        assert_eq!(
            TaskLiveness::judge(true, false, &four, now),
            TaskLiveness::Running
        );
        let five = [
            now - 5_000,
            now - 4_000,
            now - 3_000,
            now - 2_000,
            now - 1_000,
        ];
        assert_eq!(
            TaskLiveness::judge(true, false, &five, now),
            TaskLiveness::CrashLoop
        );
        assert!(TaskLiveness::CrashLoop.fails_liveness());
        // Failures older than the window are forgotten: exactly the window's edge is out.
        let old = [
            now - CRASH_LOOP_WINDOW_MS,
            now - 4_000,
            now - 3_000,
            now - 2_000,
            now - 1_000,
        ];
        assert_eq!(
            TaskLiveness::judge(true, false, &old, now),
            TaskLiveness::Running
        );
        assert_eq!(
            TaskLiveness::judge(true, true, &[], now),
            TaskLiveness::Dead
        );
        assert!(TaskLiveness::Dead.fails_liveness());
    }

    #[test]
    fn a_source_is_never_reached_until_up_then_down_since_it_went_away() {
        let mut r = Readiness::new();
        r.add("kafka", "prod", false, 1_000);
        assert!(!r.is_ready());
        r.observe("kafka", "prod", Observation::Pending, 1_500);
        r.observe("kafka", "prod", Observation::Down("refused".into()), 2_000);
        let s = &r.sources()[0];
        assert_eq!((s.state, s.since_ms), (SourceState::NeverReached, 1_000));
        assert_eq!(s.last_error.as_deref(), Some("refused"));
        assert!(!r.is_ready());

        r.observe("kafka", "prod", Observation::Up, 3_000);
        r.observe("kafka", "prod", Observation::Up, 4_000);
        let s = &r.sources()[0];
        assert_eq!(
            (s.state, s.since_ms, s.first_reached_ms),
            (SourceState::Up, 3_000, Some(3_000))
        );
        assert_eq!(s.last_error, None);
        assert!(r.is_ready());

        // Reached once is enough for readiness; the state says it is down, since when.
        r.observe("kafka", "prod", Observation::Down("timeout".into()), 5_000);
        r.observe("kafka", "prod", Observation::Down("timeout".into()), 6_000);
        let s = &r.sources()[0];
        assert_eq!((s.state, s.since_ms), (SourceState::Down, 5_000));
        assert_eq!(s.first_reached_ms, Some(3_000));
        assert!(r.is_ready());
    }

    #[test]
    fn a_source_that_must_stay_up_makes_the_monitor_unready_while_down() {
        let mut r = Readiness::new();
        r.add("store", "store", true, 0);
        r.add("mqtt", "plant", false, 0);
        r.observe("store", "store", Observation::Up, 10);
        r.observe("mqtt", "plant", Observation::Up, 10);
        assert!(r.is_ready());
        r.observe("store", "store", Observation::Down("disk full".into()), 20);
        assert!(!r.is_ready());
        r.observe("store", "store", Observation::Up, 30);
        assert!(r.is_ready());
        // Unknown sources are ignored, and a second add keeps the state.
        r.observe("kafka", "other", Observation::Up, 40);
        r.add("store", "store", true, 50);
        assert_eq!(r.sources().len(), 2);
        assert_eq!(r.sources()[1].since_ms, 30);
        assert!(Readiness::new().is_ready());
    }
}
