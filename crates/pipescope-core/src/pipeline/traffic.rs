//! Pure logic of `pipescope simulate traffic`: the consumer-group knobs (`KIND:NAME[:ARG...]`),
//! what a behaviour does at a given moment, the produce schedule, per-partition consume
//! allowances and replay counting. Times are milliseconds since the simulator started.
//!
//! Behaviours, and the Kafka watcher's verdict each is made to produce (docs/pipeline.md):
//!
//! | spec | does | verdict |
//! |---|---|---|
//! | `healthy:NAME` | reads everything, commits after each burst | OK |
//! | `slow:NAME:FACTOR` | reads FACTOR (0 < F < 1) of what is produced | WARN |
//! | `stalled:NAME[:AFTER]` | healthy until AFTER, then stays in the group reading nothing and commits the same offsets again | STALLED |
//! | `stopped:NAME[:AFTER[:EXPIRE\|keep]]` | healthy until AFTER, then leaves the group; its offsets are deleted EXPIRE later (as offset expiry would); `keep` leaves them | STALLED, then STOPPED once deleted (`keep`: STALLED) |
//! | `rewinding:NAME:EVERY:BY` | seeks back BY records per partition at start and every EVERY, commits there, and reads at the produce rate (so it never catches up) | REWOUND |
//! | `crashing:NAME:EVERY:DOWN` | runs EVERY, drops out without committing its last work, comes back after DOWN | STALLED while down (DOWN > the verdict window), OK once caught up |

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What a consumer group does over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Healthy,
    Slow {
        factor: f64,
    },
    Stalled {
        after_ms: u64,
    },
    /// `expire_ms`: how long after leaving its offsets are deleted (`None`: never).
    Stopped {
        after_ms: u64,
        expire_ms: Option<u64>,
    },
    Rewinding {
        every_ms: u64,
        by: u64,
    },
    Crashing {
        every_ms: u64,
        down_ms: u64,
    },
}

/// One consumer group of the simulation: its name and behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    pub behaviour: Behaviour,
}

/// The default AFTER of `stalled` and `stopped`: long enough to have read and committed.
pub const DEFAULT_AFTER_MS: u64 = 5_000;
/// The default EXPIRE of `stopped`: long enough for the watcher's window to fill with the
/// growing lag first (a window with lag 0 in it reads OK, whatever else happens).
pub const DEFAULT_EXPIRE_MS: u64 = 30_000;

/// Why a `--group` spec could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--group {spec:?}: {reason}")]
pub struct SpecError {
    pub spec: String,
    pub reason: String,
}

const USAGE: &str = "write healthy:NAME, slow:NAME:FACTOR, stalled:NAME[:AFTER], \
stopped:NAME[:AFTER[:EXPIRE|keep]], rewinding:NAME:EVERY:BY or crashing:NAME:EVERY:DOWN \
(durations like 500ms, 10s, 2m)";

impl FromStr for GroupSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let fail = |reason: String| SpecError {
            spec: spec.to_owned(),
            reason,
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (kind, name, args) = match parts.as_slice() {
            [kind, name, args @ ..] if !name.trim().is_empty() => (*kind, name.trim(), args),
            _ => return Err(fail(format!("no group name; {USAGE}"))),
        };
        let duration = |what: &str, text: &str| -> Result<u64, SpecError> {
            let d = humantime::parse_duration(text.trim())
                .map_err(|e| fail(format!("{what} {text:?} is not a duration ({e})")))?;
            Ok(d.as_millis() as u64)
        };
        let positive = |what: &str, text: &str| -> Result<u64, SpecError> {
            let ms = duration(what, text)?;
            if ms == 0 {
                return Err(fail(format!("{what} must be longer than 0")));
            }
            Ok(ms)
        };
        let arity = |min: usize, max: usize| -> Result<(), SpecError> {
            if args.len() < min || args.len() > max {
                return Err(fail(format!(
                    "{kind} takes {} after the name; {USAGE}",
                    if min == max {
                        format!("{min} argument(s)")
                    } else {
                        format!("{min} to {max} arguments")
                    }
                )));
            }
            Ok(())
        };
        let behaviour = match kind {
            "healthy" => {
                arity(0, 0)?;
                Behaviour::Healthy
            }
            "slow" => {
                arity(1, 1)?;
                let factor: f64 = args[0]
                    .trim()
                    .parse()
                    .map_err(|_| fail(format!("FACTOR {:?} is not a number", args[0])))?;
                if !(factor > 0.0 && factor < 1.0) {
                    return Err(fail(format!(
                        "FACTOR {factor} must be between 0 and 1 (the share of the produced records it reads)"
                    )));
                }
                Behaviour::Slow { factor }
            }
            "stalled" => {
                arity(0, 1)?;
                let after_ms = match args.first() {
                    Some(a) => duration("AFTER", a)?,
                    None => DEFAULT_AFTER_MS,
                };
                Behaviour::Stalled { after_ms }
            }
            "stopped" => {
                arity(0, 2)?;
                let after_ms = match args.first() {
                    Some(a) => duration("AFTER", a)?,
                    None => DEFAULT_AFTER_MS,
                };
                let expire_ms = match args.get(1).map(|s| s.trim()) {
                    None => Some(DEFAULT_EXPIRE_MS),
                    Some("keep") => None,
                    Some(other) => Some(duration("EXPIRE (or keep)", other)?),
                };
                Behaviour::Stopped {
                    after_ms,
                    expire_ms,
                }
            }
            "rewinding" => {
                arity(2, 2)?;
                let every_ms = positive("EVERY", args[0])?;
                let by: u64 = args[1]
                    .trim()
                    .parse()
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| {
                        fail(format!(
                            "BY {:?} must be a whole number of records above 0",
                            args[1]
                        ))
                    })?;
                Behaviour::Rewinding { every_ms, by }
            }
            "crashing" => {
                arity(2, 2)?;
                Behaviour::Crashing {
                    every_ms: positive("EVERY", args[0])?,
                    down_ms: positive("DOWN", args[1])?,
                }
            }
            other => return Err(fail(format!("unknown behaviour {other:?}; {USAGE}"))),
        };
        Ok(GroupSpec {
            name: name.to_owned(),
            behaviour,
        })
    }
}

impl fmt::Display for GroupSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |ms: u64| humantime::format_duration(Duration::from_millis(ms)).to_string();
        let name = &self.name;
        match self.behaviour {
            Behaviour::Healthy => write!(f, "healthy:{name}"),
            Behaviour::Slow { factor } => write!(f, "slow:{name}:{factor}"),
            Behaviour::Stalled { after_ms } => write!(f, "stalled:{name}:{}", d(after_ms)),
            Behaviour::Stopped {
                after_ms,
                expire_ms,
            } => match expire_ms {
                Some(e) => write!(f, "stopped:{name}:{}:{}", d(after_ms), d(e)),
                None => write!(f, "stopped:{name}:{}:keep", d(after_ms)),
            },
            Behaviour::Rewinding { every_ms, by } => {
                write!(f, "rewinding:{name}:{}:{by}", d(every_ms))
            }
            Behaviour::Crashing { every_ms, down_ms } => {
                write!(f, "crashing:{name}:{}:{}", d(every_ms), d(down_ms))
            }
        }
    }
}

/// Every error of a list of specs at once, plus names used twice.
pub fn parse_groups<'a>(
    specs: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<GroupSpec>, Vec<SpecError>> {
    let mut groups: Vec<GroupSpec> = Vec::new();
    let mut errors = Vec::new();
    for spec in specs {
        match spec.parse::<GroupSpec>() {
            Ok(g) if groups.iter().any(|o| o.name == g.name) => errors.push(SpecError {
                spec: spec.to_owned(),
                reason: format!("group {:?} is given twice", g.name),
            }),
            Ok(g) => groups.push(g),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// What a group's members do at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Reading and committing. `speed`: the share of the produced records it may read
    /// (`None`: as fast as it can).
    Consuming { speed: Option<f64> },
    /// In the group, reading nothing, committing the same offsets again.
    Frozen,
    /// Left the group for good; its offsets are deleted at `delete_at_ms` (`None`: never).
    Left { delete_at_ms: Option<u64> },
    /// Crashed; back at `until_ms`.
    Down { until_ms: u64 },
}

impl Behaviour {
    /// What the group does at `elapsed_ms`.
    pub fn phase_at(&self, elapsed_ms: u64) -> Phase {
        match *self {
            Behaviour::Healthy => Phase::Consuming { speed: None },
            Behaviour::Slow { factor } => Phase::Consuming {
                speed: Some(factor),
            },
            Behaviour::Stalled { after_ms } if elapsed_ms >= after_ms => Phase::Frozen,
            Behaviour::Stopped {
                after_ms,
                expire_ms,
            } if elapsed_ms >= after_ms => Phase::Left {
                delete_at_ms: expire_ms.map(|e| after_ms + e),
            },
            Behaviour::Stalled { .. } | Behaviour::Stopped { .. } => {
                Phase::Consuming { speed: None }
            }
            Behaviour::Rewinding { .. } => Phase::Consuming { speed: Some(1.0) },
            Behaviour::Crashing { every_ms, down_ms } => {
                let cycle = every_ms + down_ms;
                let into = elapsed_ms % cycle;
                if into < every_ms {
                    Phase::Consuming { speed: None }
                } else {
                    Phase::Down {
                        until_ms: elapsed_ms - into + cycle,
                    }
                }
            }
        }
    }

    /// How many rewinds are due by `elapsed_ms`: one at the start, then one every EVERY.
    /// A runner that did fewer does one now (missed ones are not repeated).
    pub fn rewinds_due(&self, elapsed_ms: u64) -> u64 {
        match *self {
            Behaviour::Rewinding { every_ms, .. } => elapsed_ms / every_ms + 1,
            _ => 0,
        }
    }

    /// Which run of the member this is: 0 at the start, +1 after each crash.
    pub fn incarnation_at(&self, elapsed_ms: u64) -> u64 {
        match *self {
            Behaviour::Crashing { every_ms, down_ms } => elapsed_ms / (every_ms + down_ms),
            _ => 0,
        }
    }
}

/// Where a rewind of `by` records seeks to from `position`, not below the log start `low`.
pub fn rewind_target(position: i64, by: u64, low: i64) -> i64 {
    position.saturating_sub(by as i64).max(low).min(position)
}

/// A steady rate as whole records: how many are due by a given time, with no drift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSchedule {
    per_second: f64,
}

impl RateSchedule {
    pub fn new(per_second: f64) -> Self {
        Self {
            per_second: per_second.max(0.0),
        }
    }

    /// Records due from the start to `elapsed_ms` (floor of rate × time).
    pub fn due(&self, elapsed_ms: u64) -> u64 {
        // The epsilon keeps a decimal rate like 33.3/s from losing a record to rounding.
        (self.per_second * elapsed_ms as f64 / 1000.0 + 1e-6).floor() as u64
    }
}

/// The rate (records/s per topic) each of `producers` sends so that they add up to `total`.
pub fn producer_share(total: f64, producers: u32) -> f64 {
    if producers == 0 {
        return 0.0;
    }
    total / f64::from(producers)
}

/// Per-partition allowances of a consumer that may read only a share of what is produced.
/// Produced counts come in cumulatively; each grants `speed` × the new records.
#[derive(Debug, Clone, Default)]
pub struct Allowance<K> {
    partitions: HashMap<K, (u64, f64)>,
}

impl<K: std::hash::Hash + Eq + Clone> Allowance<K> {
    pub fn new() -> Self {
        Self {
            partitions: HashMap::new(),
        }
    }

    /// Notes that `produced` records (cumulative) were produced to `key`; the first call only
    /// sets the starting point.
    pub fn produced(&mut self, key: &K, produced: u64, speed: f64) {
        match self.partitions.get_mut(key) {
            Some((last, tokens)) => {
                let new = produced.saturating_sub(*last);
                *last = produced.max(*last);
                *tokens += new as f64 * speed;
            }
            None => {
                self.partitions.insert(key.clone(), (produced, 0.0));
            }
        }
    }

    /// Takes one record's allowance on `key`; false when there is none left.
    pub fn take(&mut self, key: &K) -> bool {
        match self.partitions.get_mut(key) {
            Some((_, tokens)) if *tokens >= 1.0 => {
                *tokens -= 1.0;
                true
            }
            _ => false,
        }
    }

    /// Forgets a partition (revoked, or sought back).
    pub fn forget(&mut self, key: &K) {
        self.partitions.remove(key);
    }
}

/// Counts records read again: per (origin, stream) the highest sequence number seen; a record
/// at or below it is a replay (after a rewind, or work redone after a crash). Keeps one number
/// per stream, so it runs for ever; exact because a partition is read in order.
#[derive(Debug, Clone, Default)]
pub struct ReplayCounter {
    high: HashMap<(String, String), u64>,
    replayed: u64,
    records: u64,
}

impl ReplayCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes one record; true when it is a replay.
    pub fn record(&mut self, origin: &str, stream: &str, seq: u64) -> bool {
        self.records += 1;
        match self.high.get_mut(&(origin.to_owned(), stream.to_owned())) {
            Some(high) if seq <= *high => {
                self.replayed += 1;
                true
            }
            Some(high) => {
                *high = seq;
                false
            }
            None => {
                self.high
                    .insert((origin.to_owned(), stream.to_owned()), seq);
                false
            }
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn replayed(&self) -> u64 {
        self.replayed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> Behaviour {
        s.parse::<GroupSpec>().unwrap().behaviour
    }

    #[test]
    fn every_behaviour_parses_and_prints_back() {
        assert_eq!(spec("healthy:a"), Behaviour::Healthy);
        assert_eq!(spec("slow:a:0.5"), Behaviour::Slow { factor: 0.5 });
        assert_eq!(spec("stalled:a"), Behaviour::Stalled { after_ms: 5_000 });
        assert_eq!(spec("stalled:a:3s"), Behaviour::Stalled { after_ms: 3_000 });
        assert_eq!(
            spec("stopped:a:1m"),
            Behaviour::Stopped {
                after_ms: 60_000,
                expire_ms: Some(30_000)
            }
        );
        assert_eq!(
            spec("stopped:a:1m:10s"),
            Behaviour::Stopped {
                after_ms: 60_000,
                expire_ms: Some(10_000)
            }
        );
        assert_eq!(
            spec("stopped:a:500ms:keep"),
            Behaviour::Stopped {
                after_ms: 500,
                expire_ms: None
            }
        );
        assert_eq!(
            spec("rewinding:a:10s:300"),
            Behaviour::Rewinding {
                every_ms: 10_000,
                by: 300
            }
        );
        assert_eq!(
            spec("crashing:a:4s:5s"),
            Behaviour::Crashing {
                every_ms: 4_000,
                down_ms: 5_000
            }
        );
        for text in [
            "healthy:a",
            "slow:a:0.25",
            "stalled:a:3s",
            "stopped:a:1m:30s",
            "stopped:a:500ms:keep",
            "rewinding:a:10s:300",
            "crashing:a:4s:5s",
        ] {
            let parsed: GroupSpec = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parsed.name, "a");
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |s: &str| s.parse::<GroupSpec>().unwrap_err().to_string();
        assert!(err("slow").contains("no group name"), "{}", err("slow"));
        assert!(err("slow::0.5").contains("no group name"));
        assert!(err("slow:a").contains("slow takes 1 argument(s)"));
        assert!(err("slow:a:1.5").contains("between 0 and 1"));
        assert!(err("slow:a:x").contains("FACTOR \"x\" is not a number"));
        assert!(err("stalled:a:soon").contains("AFTER \"soon\" is not a duration"));
        assert!(err("stopped:a:1s:forget").contains("EXPIRE (or keep) \"forget\""));
        assert!(err("rewinding:a:0s:5").contains("EVERY must be longer than 0"));
        assert!(err("rewinding:a:1s:-5").contains("BY \"-5\""));
        assert!(err("crashing:a:1s").contains("crashing takes 2 argument(s)"));
        assert_eq!(
            err("lazy:a"),
            format!("--group \"lazy:a\": unknown behaviour \"lazy\"; {USAGE}")
        );
    }

    #[test]
    fn every_error_of_a_list_at_once_and_duplicate_names() {
        let errors = parse_groups(["slow:a:2", "healthy:b", "healthy:b", "x:c"]).unwrap_err();
        assert_eq!(errors.len(), 3);
        assert!(errors[1].reason.contains("\"b\" is given twice"));
        let ok = parse_groups(["healthy:a", "slow:b:0.5"]).unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn phases_over_time() {
        let c = |speed| Phase::Consuming { speed };
        assert_eq!(Behaviour::Healthy.phase_at(1_000_000), c(None));
        assert_eq!(spec("slow:a:0.5").phase_at(0), c(Some(0.5)));
        let stalled = spec("stalled:a:3s");
        assert_eq!(stalled.phase_at(2_999), c(None));
        assert_eq!(stalled.phase_at(3_000), Phase::Frozen);
        let stopped = spec("stopped:a:3s:keep");
        assert_eq!(stopped.phase_at(2_999), c(None));
        assert_eq!(stopped.phase_at(10_000), Phase::Left { delete_at_ms: None });
        assert_eq!(
            spec("stopped:a:3s:10s").phase_at(3_000),
            Phase::Left {
                delete_at_ms: Some(13_000)
            }
        );
        assert_eq!(spec("rewinding:a:4s:300").phase_at(5), c(Some(1.0)));
        let crashing = spec("crashing:a:4s:5s");
        assert_eq!(crashing.phase_at(0), c(None));
        assert_eq!(crashing.phase_at(3_999), c(None));
        assert_eq!(crashing.phase_at(4_000), Phase::Down { until_ms: 9_000 });
        assert_eq!(crashing.phase_at(8_999), Phase::Down { until_ms: 9_000 });
        assert_eq!(crashing.phase_at(9_000), c(None));
        assert_eq!(crashing.phase_at(13_500), Phase::Down { until_ms: 18_000 });
        assert_eq!(
            [0, 8_999, 9_000, 18_000].map(|t| crashing.incarnation_at(t)),
            [0, 0, 1, 2]
        );
        assert_eq!(Behaviour::Healthy.incarnation_at(99_999), 0);
    }

    #[test]
    fn rewinds_one_at_the_start_then_every_period() {
        let r = spec("rewinding:a:4s:300");
        assert_eq!(
            [0, 3_999, 4_000, 8_000, 9_000].map(|t| r.rewinds_due(t)),
            [1, 1, 2, 3, 3]
        );
        assert_eq!(Behaviour::Healthy.rewinds_due(10_000), 0);
        assert_eq!(rewind_target(1_000, 300, 0), 700);
        assert_eq!(rewind_target(200, 300, 50), 50);
        assert_eq!(rewind_target(20, 300, 50), 20, "never forwards");
    }

    #[test]
    fn rate_schedule_has_no_drift() {
        let s = RateSchedule::new(33.3);
        assert_eq!(s.due(0), 0);
        assert_eq!(s.due(100), 3);
        assert_eq!(s.due(1_000), 33);
        assert_eq!(s.due(60_000), 1_998);
        // Tick by tick the increments add up to the total.
        let sum: u64 = (1..=600)
            .map(|i| s.due(i * 100) - s.due((i - 1) * 100))
            .sum();
        assert_eq!(sum, s.due(60_000));
        assert_eq!(RateSchedule::new(-5.0).due(1_000), 0);
        assert_eq!(producer_share(300.0, 3), 100.0);
        assert_eq!(producer_share(300.0, 0), 0.0);
    }

    #[test]
    fn allowance_grants_a_share_of_new_records_per_partition() {
        let mut a = Allowance::new();
        a.produced(&0, 1_000, 0.5); // starting point only
        assert!(!a.take(&0));
        a.produced(&0, 1_010, 0.5);
        let taken = (0..10).filter(|_| a.take(&0)).count();
        assert_eq!(taken, 5);
        a.produced(&0, 1_013, 0.5); // 1.5 more: one whole record, half carried
        assert!(a.take(&0));
        assert!(!a.take(&0));
        a.produced(&0, 1_014, 0.5);
        assert!(a.take(&0), "the carried half and this half make one");
        assert!(!a.take(&1), "an unknown partition has no allowance");
        a.forget(&0);
        a.produced(&0, 2_000, 0.5);
        assert!(!a.take(&0), "after forget the next count is a new start");
    }

    #[test]
    fn replays_are_counted_per_origin_and_stream() {
        let mut r = ReplayCounter::new();
        for seq in 0..5 {
            assert!(!r.record("o", "t/0", seq));
        }
        assert!(!r.record("o", "t/1", 0));
        assert!(!r.record("p", "t/0", 0));
        // A rewind by 3 on o t/0: records 2, 3, 4 come again.
        assert!(r.record("o", "t/0", 2));
        assert!(r.record("o", "t/0", 3));
        assert!(r.record("o", "t/0", 4));
        assert!(!r.record("o", "t/0", 5));
        assert_eq!((r.records(), r.replayed()), (11, 3));
    }
}
