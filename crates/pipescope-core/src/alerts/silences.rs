//! Silences: "do not tell anyone about alerts that match these labels until then", as
//! Alertmanager has them. The engine still evaluates a silenced alert (the portal shows it, with
//! the silence); the notifiers are not told it fires while a silence covering it is active.
//!
//! A silence has label matchers (all must hold; equality or an anchored regex, Alertmanager's
//! `{name, value, isRegex}`), a start, an end, who made it and why. It is active from its start
//! until its end; expiring it early sets its end to now. Expired silences stay listed for a while
//! ([`KEEP_EXPIRED_MS`]) and are then forgotten. Their number is capped ([`MAX_SILENCES`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AlertLabels;
use super::notify::Matcher;
use crate::EpochMillis;

/// Silences kept at once, expired ones included (an HTTP client can make them).
pub const MAX_SILENCES: usize = 1000;
/// Matchers one silence may have.
pub const MAX_MATCHERS: usize = 32;
/// Longest comment, creator, label name or value kept (characters).
pub const MAX_TEXT_CHARS: usize = 1024;
/// The longest a silence may last: a forgotten silence should not hide alerts for ever.
pub const MAX_DURATION_MS: u64 = 366 * 24 * 3600 * 1000;
/// How long an expired silence stays listed.
pub const KEEP_EXPIRED_MS: u64 = 24 * 3600 * 1000;

/// One condition of a silence on one label, in Alertmanager's API spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SilenceMatcher {
    /// The label (`alertname`, `group`, `topic`, `team`, …).
    pub name: String,
    /// The value it must equal, or with `is_regex` the regex the whole value must match.
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
}

/// What a client asks for: matchers, an end, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SilenceRequest {
    pub matchers: Vec<SilenceMatcher>,
    /// When it begins (epoch ms); now when left out.
    #[serde(default)]
    pub starts_at_ms: Option<EpochMillis>,
    /// When it ends (epoch ms). Required: a silence without an end is refused.
    pub ends_at_ms: EpochMillis,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

/// A silence as kept and listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at_ms: EpochMillis,
    pub ends_at_ms: EpochMillis,
    pub created_at_ms: EpochMillis,
    pub created_by: String,
    pub comment: String,
}

/// Where a silence stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Its start is still to come.
    Pending,
    Active,
    Expired,
}

impl Silence {
    pub fn state(&self, now: EpochMillis) -> SilenceState {
        if now >= self.ends_at_ms {
            SilenceState::Expired
        } else if now < self.starts_at_ms {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }
}

/// Why a silence was refused; each says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error(
        "a silence needs at least one matcher (e.g. {{\"name\": \"alertname\", \"value\": \"lag\"}})"
    )]
    NoMatchers,
    #[error("a silence may have at most {MAX_MATCHERS} matchers")]
    TooManyMatchers,
    #[error("matcher {index}: the label name is empty")]
    EmptyName { index: usize },
    #[error("matcher {index}: {what} is longer than {MAX_TEXT_CHARS} characters")]
    TooLong { index: usize, what: &'static str },
    #[error("matcher {index}: the regex {value:?} does not compile: {reason}")]
    BadRegex {
        index: usize,
        value: String,
        reason: String,
    },
    #[error(
        "the matchers match alerts without any label (every alert): name at least one label value that is not empty"
    )]
    MatchesEverything,
    #[error("the end ({ends_at_ms}) is not after the start ({starts_at_ms}) and now")]
    EndsBeforeItStarts {
        starts_at_ms: EpochMillis,
        ends_at_ms: EpochMillis,
    },
    #[error("a silence may last at most 366 days")]
    TooLongLasting,
    #[error("the comment or creator is longer than {MAX_TEXT_CHARS} characters")]
    TextTooLong,
    #[error("{MAX_SILENCES} silences are kept already: expire some first")]
    Full,
    #[error("no silence {0:?}")]
    NotFound(String),
    #[error("silence {0:?} has expired already")]
    AlreadyExpired(String),
}

/// The silences, with their matchers compiled.
#[derive(Debug, Default)]
pub struct Silences {
    by_id: BTreeMap<String, (Silence, Vec<Matcher>)>,
}

impl Silences {
    /// Takes back what a previous run kept; silences that no longer compile are left out.
    pub fn restore(kept: impl IntoIterator<Item = Silence>) -> Self {
        let mut silences = Self::default();
        for silence in kept {
            if let Ok(compiled) = compile(&silence.matchers) {
                silences
                    .by_id
                    .insert(silence.id.clone(), (silence, compiled));
            }
        }
        silences
    }

    /// Adds a silence made from `request` at `now` with the id `id` (the caller picks it).
    pub fn add(
        &mut self,
        id: String,
        request: SilenceRequest,
        now: EpochMillis,
    ) -> Result<Silence, SilenceError> {
        let compiled = compile(&request.matchers)?;
        let empty = AlertLabels::new();
        if compiled.iter().all(|m| m.matches(&empty)) {
            return Err(SilenceError::MatchesEverything);
        }
        let starts_at_ms = request.starts_at_ms.unwrap_or(now).max(now);
        if request.ends_at_ms <= starts_at_ms {
            return Err(SilenceError::EndsBeforeItStarts {
                starts_at_ms,
                ends_at_ms: request.ends_at_ms,
            });
        }
        if request.ends_at_ms - starts_at_ms > MAX_DURATION_MS {
            return Err(SilenceError::TooLongLasting);
        }
        if too_long(&request.comment) || too_long(&request.created_by) {
            return Err(SilenceError::TextTooLong);
        }
        self.prune(now);
        if self.by_id.len() >= MAX_SILENCES {
            return Err(SilenceError::Full);
        }
        let silence = Silence {
            id: id.clone(),
            matchers: request.matchers,
            starts_at_ms,
            ends_at_ms: request.ends_at_ms,
            created_at_ms: now,
            created_by: request.created_by,
            comment: request.comment,
        };
        self.by_id.insert(id, (silence.clone(), compiled));
        Ok(silence)
    }

    /// Ends a silence now.
    pub fn expire(&mut self, id: &str, now: EpochMillis) -> Result<Silence, SilenceError> {
        let (silence, _) = self
            .by_id
            .get_mut(id)
            .ok_or_else(|| SilenceError::NotFound(id.to_string()))?;
        if silence.state(now) == SilenceState::Expired {
            return Err(SilenceError::AlreadyExpired(id.to_string()));
        }
        silence.ends_at_ms = now;
        silence.starts_at_ms = silence.starts_at_ms.min(now);
        Ok(silence.clone())
    }

    /// Forgets silences expired longer than [`KEEP_EXPIRED_MS`] ago; true when any went.
    pub fn prune(&mut self, now: EpochMillis) -> bool {
        let before = self.by_id.len();
        self.by_id
            .retain(|_, (s, _)| now.saturating_sub(s.ends_at_ms) < KEEP_EXPIRED_MS);
        self.by_id.len() != before
    }

    /// The ids of the silences active at `now` whose matchers all hold for `labels`.
    pub fn silencing(&self, labels: &AlertLabels, now: EpochMillis) -> Vec<String> {
        self.by_id
            .values()
            .filter(|(s, matchers)| {
                s.state(now) == SilenceState::Active && matchers.iter().all(|m| m.matches(labels))
            })
            .map(|(s, _)| s.id.clone())
            .collect()
    }

    /// Every kept silence, by id.
    pub fn list(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values().map(|(s, _)| s)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

fn too_long(text: &str) -> bool {
    text.chars().count() > MAX_TEXT_CHARS
}

fn compile(matchers: &[SilenceMatcher]) -> Result<Vec<Matcher>, SilenceError> {
    if matchers.is_empty() {
        return Err(SilenceError::NoMatchers);
    }
    if matchers.len() > MAX_MATCHERS {
        return Err(SilenceError::TooManyMatchers);
    }
    matchers
        .iter()
        .enumerate()
        .map(|(index, m)| {
            if m.name.is_empty() {
                return Err(SilenceError::EmptyName { index });
            }
            if too_long(&m.name) {
                return Err(SilenceError::TooLong {
                    index,
                    what: "name",
                });
            }
            if too_long(&m.value) {
                return Err(SilenceError::TooLong {
                    index,
                    what: "value",
                });
            }
            if m.is_regex {
                Matcher::regex(m.name.clone(), &m.value).map_err(|e| SilenceError::BadRegex {
                    index,
                    value: m.value.clone(),
                    reason: e.to_string(),
                })
            } else {
                Ok(Matcher::Equal {
                    label: m.name.clone(),
                    value: m.value.clone(),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn equal(name: &str, value: &str) -> SilenceMatcher {
        SilenceMatcher {
            name: name.into(),
            value: value.into(),
            is_regex: false,
        }
    }

    fn regex(name: &str, value: &str) -> SilenceMatcher {
        SilenceMatcher {
            is_regex: true,
            ..equal(name, value)
        }
    }

    fn request(matchers: Vec<SilenceMatcher>, ends_at_ms: EpochMillis) -> SilenceRequest {
        SilenceRequest {
            matchers,
            starts_at_ms: None,
            ends_at_ms,
            created_by: "ops".into(),
            comment: "maintenance".into(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> AlertLabels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_silence_covers_matching_alerts_from_its_start_until_its_end() {
        let mut s = Silences::default();
        let mut req = request(
            vec![equal("alertname", "lag"), regex("group", "pay.*")],
            3 * HOUR,
        );
        req.starts_at_ms = Some(HOUR);
        let made = s.add("a".into(), req, 0).unwrap();
        assert_eq!((made.starts_at_ms, made.ends_at_ms), (HOUR, 3 * HOUR));
        let hit = labels(&[
            ("alertname", "lag"),
            ("group", "payments"),
            ("severity", "warning"),
        ]);
        let other_group = labels(&[("alertname", "lag"), ("group", "reporting")]);
        let other_rule = labels(&[("alertname", "silent"), ("group", "payments")]);
        assert_eq!(s.list().next().unwrap().state(0), SilenceState::Pending);
        assert!(s.silencing(&hit, HOUR - 1).is_empty());
        assert_eq!(s.silencing(&hit, HOUR), ["a"]);
        assert_eq!(s.silencing(&hit, 3 * HOUR - 1), ["a"]);
        assert!(s.silencing(&hit, 3 * HOUR).is_empty());
        assert!(s.silencing(&other_group, 2 * HOUR).is_empty());
        assert!(s.silencing(&other_rule, 2 * HOUR).is_empty());
        // The regex is anchored: "pay" alone, or "xpayments", does not match.
        assert!(
            s.silencing(
                &labels(&[("alertname", "lag"), ("group", "xpayments")]),
                2 * HOUR
            )
            .is_empty()
        );
    }

    #[test]
    fn expiring_ends_it_now_and_it_is_forgotten_a_day_later() {
        let mut s = Silences::default();
        s.add(
            "a".into(),
            request(vec![equal("team", "ops")], 10 * HOUR),
            0,
        )
        .unwrap();
        let team = labels(&[("team", "ops")]);
        assert_eq!(s.silencing(&team, HOUR), ["a"]);
        let expired = s.expire("a", 2 * HOUR).unwrap();
        assert_eq!(expired.ends_at_ms, 2 * HOUR);
        assert!(s.silencing(&team, 2 * HOUR).is_empty());
        assert_eq!(
            s.expire("a", 3 * HOUR),
            Err(SilenceError::AlreadyExpired("a".into()))
        );
        assert_eq!(
            s.expire("b", 3 * HOUR),
            Err(SilenceError::NotFound("b".into()))
        );
        assert!(!s.prune(2 * HOUR + KEEP_EXPIRED_MS - 1));
        assert_eq!(s.len(), 1);
        assert!(s.prune(2 * HOUR + KEEP_EXPIRED_MS));
        assert!(s.is_empty());
    }

    #[test]
    fn silences_that_are_unclear_or_unbounded_are_refused_with_what_to_change() {
        let mut s = Silences::default();
        let add = |s: &mut Silences, r| s.add("x".into(), r, HOUR);
        assert_eq!(
            add(&mut s, request(vec![], 2 * HOUR)),
            Err(SilenceError::NoMatchers)
        );
        assert_eq!(
            add(&mut s, request(vec![equal("", "x")], 2 * HOUR)),
            Err(SilenceError::EmptyName { index: 0 })
        );
        assert!(matches!(
            add(&mut s, request(vec![regex("group", "(")], 2 * HOUR)),
            Err(SilenceError::BadRegex { index: 0, .. })
        ));
        // ".*" and "" match a missing label: such a silence would hide every alert.
        assert_eq!(
            add(
                &mut s,
                request(vec![regex("group", ".*"), equal("x", "")], 2 * HOUR)
            ),
            Err(SilenceError::MatchesEverything)
        );
        assert_eq!(
            add(&mut s, request(vec![equal("team", "ops")], HOUR)),
            Err(SilenceError::EndsBeforeItStarts {
                starts_at_ms: HOUR,
                ends_at_ms: HOUR
            })
        );
        assert_eq!(
            add(
                &mut s,
                request(vec![equal("team", "ops")], HOUR + MAX_DURATION_MS + 1)
            ),
            Err(SilenceError::TooLongLasting)
        );
        let mut long = request(vec![equal("team", "ops")], 2 * HOUR);
        long.comment = "x".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(add(&mut s, long), Err(SilenceError::TextTooLong));
        // A start in the past is taken as now.
        let mut past = request(vec![equal("team", "ops")], 2 * HOUR);
        past.starts_at_ms = Some(0);
        assert_eq!(add(&mut s, past).unwrap().starts_at_ms, HOUR);
    }

    #[test]
    fn the_number_kept_is_capped_and_expired_ones_make_room() {
        let mut s = Silences::default();
        for i in 0..MAX_SILENCES {
            s.add(i.to_string(), request(vec![equal("team", "ops")], HOUR), 0)
                .unwrap();
        }
        assert_eq!(
            s.add(
                "full".into(),
                request(vec![equal("team", "ops")], 2 * HOUR),
                0
            ),
            Err(SilenceError::Full)
        );
        // A day after they expired they are forgotten, and there is room again.
        let later = HOUR + KEEP_EXPIRED_MS;
        s.add(
            "next".into(),
            request(vec![equal("team", "ops")], later + HOUR),
            later,
        )
        .unwrap();
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn restored_silences_keep_working_and_broken_ones_are_left_out() {
        let mut s = Silences::default();
        let kept = s
            .add("a".into(), request(vec![equal("team", "ops")], HOUR), 0)
            .unwrap();
        let mut broken = kept.clone();
        broken.id = "b".into();
        broken.matchers = vec![regex("team", "(")];
        let restored = Silences::restore([kept, broken]);
        assert_eq!(restored.len(), 1);
        assert_eq!(restored.silencing(&labels(&[("team", "ops")]), 1), ["a"]);
    }
}
