//! An edge between two hops that see the same origins (upstream A, downstream B: the MQTT
//! filter `machine/#` and the Kafka topic `machine.data` the bridge writes, keyed alike by
//! (origin, stream)): what was lost, duplicated or late between them, and the latency B adds.
//!
//! The edge is fed the [`Outcome`] each hop gave a record, so it only matches first sightings:
//! - its base per stream is the first number A saw at or after the time B started watching;
//!   records A saw before that do not count, nor do numbers A never saw (loss upstream of A);
//! - numbers A saw below B's own base of the stream do not count either where B could never
//!   see them: below where B's reader jumped past deleted records, or below B's first record
//!   when A saw them within a tenth of the grace of B's start (written before B's start
//!   position; A's reader may run a little behind). A stream that began later was watched by
//!   B from its first record, so what B missed of it is lost, first records included;
//! - a number A saw that B has not seen `grace_ms` after A saw it is lost between them; should
//!   B see it later, it is taken off and counted late;
//! - B may see a record before A does (the two readers run at their own pace): it waits for A,
//!   and is counted `downstream_only` if A has not seen it within the horizon;
//! - duplicated between: copies at B beyond those at A, per stream (a copy at A gives a credit
//!   the next copy at B uses up).
//!
//! Time per stream: numbers A saw are kept as spans; a span holds numbers seen within
//! `grace_ms / 10` of its first, and is judged by the time of its last, so a number is never
//! judged early and at most a tenth of the grace late.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::CompletenessConfig;
use super::buckets::{BucketRing, Kinds};
use super::hop::AdoptError;
use super::latency::{AddedLatencyFigures, LatencyFigures, WindowedLatency};
use super::ranges::{Ranges, Span};
use super::seqset::{Outcome, SnapshotError};
use crate::EpochMillis;
use crate::windows::{Window, WindowCounts};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Cumulative counts of an edge (or of one origin kind on it).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct EdgeCounters {
    /// Records seen at both ends.
    pub matched: u64,
    /// Seen upstream, not downstream within the grace (a late arrival takes one off).
    pub lost: u64,
    /// Arrived downstream after being counted lost between.
    pub late: u64,
    /// Copies downstream beyond the copies upstream.
    pub duplicated: u64,
    /// Seen downstream, never upstream within the horizon (the upstream reader missed them).
    pub downstream_only: u64,
    /// Seen upstream below the first number the downstream hop saw of the stream (written
    /// before its reader's start position, or deleted before it read them): never judged.
    pub before_downstream_base: u64,
    /// Lost numbers forgotten past the horizon (a late copy then counts `downstream_only`).
    pub lost_trimmed: u64,
    /// Records of streams past the cap on streams: not matched.
    pub untracked: u64,
    /// Spans settled early because a stream held too many.
    pub spans_folded: u64,
}

/// What an edge counted over each window.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct EdgeWindows {
    pub matched: WindowCounts,
    pub lost: WindowCounts,
    pub late: WindowCounts,
    pub duplicated: WindowCounts,
}

const MATCHED: usize = 0;
const LOST: usize = 1;
const LATE: usize = 2;
const DUPLICATED: usize = 3;
const FIELDS: usize = 4;

/// An edge's figures for one origin kind, or for all.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct EdgeKindFigures {
    pub counters: EdgeCounters,
    pub windows: EdgeWindows,
    /// Latency at each end over the records of this edge's streams since its base.
    pub upstream_latency: LatencyFigures,
    pub downstream_latency: LatencyFigures,
    /// Downstream minus upstream quantiles (see `AddedLatency` for its error).
    pub added_latency: AddedLatencyFigures,
}

/// What an edge shows: totals and the split by origin kind.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct EdgeFigures {
    pub downstream_since_ms: EpochMillis,
    pub streams: u64,
    pub total: EdgeKindFigures,
    pub by_kind: BTreeMap<String, EdgeKindFigures>,
}

#[derive(Debug, Clone, Default)]
struct KindAccount {
    counters: EdgeCounters,
    windows: BucketRing<FIELDS>,
    upstream: WindowedLatency,
    downstream: WindowedLatency,
}

impl KindAccount {
    fn add(&mut self, field: usize, n: u64, now: EpochMillis) {
        let c = &mut self.counters;
        match field {
            MATCHED => c.matched = c.matched.saturating_add(n),
            LOST => c.lost = c.lost.saturating_add(n),
            LATE => {
                c.late = c.late.saturating_add(n);
                c.lost = c.lost.saturating_sub(n);
            }
            _ => c.duplicated = c.duplicated.saturating_add(n),
        }
        self.windows.add(field, n, now);
    }

    fn figures(&self, now: EpochMillis, since: EpochMillis) -> EdgeKindFigures {
        let w = |field| {
            WindowCounts::from_fn(|win: Window| self.windows.window(field, win, now, since))
        };
        let (up, down) = (self.upstream.figures(), self.downstream.figures());
        EdgeKindFigures {
            counters: self.counters,
            windows: EdgeWindows {
                matched: w(MATCHED),
                lost: w(LOST),
                late: w(LATE),
                duplicated: w(DUPLICATED),
            },
            added_latency: AddedLatencyFigures::between(&up, &down),
            upstream_latency: up,
            downstream_latency: down,
        }
    }
}

/// When the numbers of a span were seen: its first and its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenAt {
    first_ms: EpochMillis,
    last_ms: EpochMillis,
}

#[derive(Debug, Clone, Default)]
struct EdgeStream {
    base: Option<u64>,
    /// Seen upstream, not yet downstream.
    awaiting_downstream: Ranges<SeenAt>,
    /// Counted lost between; the value is when.
    lost: Ranges<EpochMillis>,
    /// Seen downstream first, not yet upstream.
    awaiting_upstream: Ranges<SeenAt>,
    /// Upstream copies not yet matched by a downstream copy (u32 keeps the state at 136 bytes).
    duplicate_credit: u32,
    /// The downstream hop saw the stream here: until then a shared downstream hop may be
    /// reading it in another instance, so nothing of it is judged lost here.
    downstream_seen: bool,
    last_seen_ms: EpochMillis,
    /// The downstream hop's base of the stream: it never sees a number below it first.
    downstream_base: u64,
    /// The base came from a jump past deleted records, not from the hop's first record.
    downstream_rebased: bool,
}

/// One edge stream's state handed from one monitor instance to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeStreamHandover {
    pub origin: String,
    pub stream: String,
    pub base: Option<u64>,
    #[serde(default)]
    pub downstream_base: u64,
    #[serde(default)]
    pub downstream_rebased: bool,
    pub awaiting_downstream: Vec<Span<SeenAt>>,
    pub lost: Vec<Span<EpochMillis>>,
    pub awaiting_upstream: Vec<Span<SeenAt>>,
    pub duplicate_credit: u64,
    pub last_seen_ms: EpochMillis,
}

#[derive(Debug, Clone, Default)]
struct OriginStreams {
    kind: usize,
    streams: Map<Box<str>, EdgeStream>,
}

/// Completeness accounting between two hops.
#[derive(Debug, Clone)]
pub struct Edge {
    config: CompletenessConfig,
    downstream_since_ms: EpochMillis,
    now_ms: EpochMillis,
    granularity_ms: u64,
    origins: Map<Box<str>, OriginStreams>,
    streams: usize,
    kinds: Kinds<KindAccount>,
    /// The downstream hop is read in part here (a Kafka topic whose partitions are shared
    /// between monitor instances): only streams it saw here are this edge's.
    shared_downstream: bool,
}

/// Which end of the edge a record was seen at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Upstream,
    Downstream,
}

impl Edge {
    /// An edge whose downstream hop started watching at `downstream_since_ms`; `config.grace_ms`
    /// is how long the downstream hop may take after the upstream one saw a record.
    pub fn new(config: CompletenessConfig, downstream_since_ms: EpochMillis) -> Self {
        Self {
            kinds: Kinds::new(config.max_kinds, config.kind_prefixes.clone()),
            granularity_ms: (config.grace_ms / 10).max(1),
            config,
            downstream_since_ms,
            now_ms: downstream_since_ms,
            origins: Map::default(),
            streams: 0,
            shared_downstream: false,
        }
    }

    /// The downstream hop's reader has been in place only since `since_ms` (see
    /// [`Hop::watching_from`](super::Hop::watching_from)).
    pub fn downstream_watching_from(&mut self, since_ms: EpochMillis) {
        self.downstream_since_ms = self.downstream_since_ms.max(since_ms);
        self.now_ms = self.now_ms.max(since_ms);
    }

    /// The downstream hop reads only some of the streams (its partitions are shared with other
    /// monitor instances): a stream the downstream hop has not seen here may be read by another
    /// instance, so what upstream saw of it waits the grace and is then let go, not counted lost.
    /// Once the downstream hop sees it here it is judged as usual from its downstream base.
    pub fn share_downstream(&mut self) {
        self.shared_downstream = true;
    }

    /// A record one end's hop judged `outcome` (what `Hop::observe` returned for it).
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        end: End,
        origin: &str,
        stream: &str,
        seq: u64,
        outcome: Outcome,
        origin_ms: EpochMillis,
        arrival_ms: EpochMillis,
    ) {
        self.now_ms = self.now_ms.max(arrival_ms);
        let now = self.now_ms;
        let first_sight = outcome.is_first_sight();
        if !first_sight && outcome != Outcome::Duplicate {
            return;
        }
        let sighting = Sighting {
            end,
            seq,
            outcome,
            origin_ms,
            arrival_ms,
            now,
            since_ms: self.downstream_since_ms,
            granularity_ms: self.granularity_ms,
        };
        // The common case, a stream already tracked: two lookups.
        if let Some(entry) = self.origins.get_mut(origin)
            && let Some(s) = entry.streams.get_mut(stream)
        {
            sighting.apply(s, self.kinds.get_mut(entry.kind));
            return;
        }
        // A stream starts with a record upstream after the downstream hop began watching, or
        // with any record downstream (it waits for its upstream sighting).
        let may_start =
            first_sight && (end == End::Downstream || arrival_ms >= self.downstream_since_ms);
        let found = Self::stream_in(
            &mut self.origins,
            &mut self.kinds,
            &mut self.streams,
            self.config.max_streams,
            origin,
            stream,
            may_start,
        );
        let Some((kind, s)) = found else {
            if may_start {
                let kind = self.kinds.slot_of(origin);
                self.kinds.get_mut(kind).counters.untracked += 1;
            }
            return;
        };
        sighting.apply(s, self.kinds.get_mut(kind));
    }

    /// The stream's kind slot and state, created when `may_start` and there is room.
    fn stream_in<'a>(
        origins: &'a mut Map<Box<str>, OriginStreams>,
        kinds: &mut Kinds<KindAccount>,
        streams: &mut usize,
        max_streams: usize,
        origin: &str,
        stream: &str,
        may_start: bool,
    ) -> Option<(usize, &'a mut EdgeStream)> {
        let room = *streams < max_streams;
        if !origins.contains_key(origin) {
            if !(may_start && room) {
                return None;
            }
            let kind = kinds.slot_of(origin);
            origins.insert(
                origin.into(),
                OriginStreams {
                    kind,
                    streams: Map::default(),
                },
            );
        }
        let entry = origins.get_mut(origin)?;
        if !entry.streams.contains_key(stream) {
            if !(may_start && room) {
                return None;
            }
            entry.streams.insert(stream.into(), EdgeStream::default());
            *streams += 1;
        }
        let kind = entry.kind;
        entry.streams.get_mut(stream).map(|s| (kind, s))
    }

    /// Settles what waited past the grace or the horizon; forgets idle streams.
    pub fn tick(&mut self, now: EpochMillis) {
        self.now_ms = self.now_ms.max(now);
        let now = self.now_ms;
        let shared = self.shared_downstream;
        let c = &self.config;
        let (grace, horizon, idle, cap) = (
            c.grace_ms,
            c.horizon_ms,
            c.idle_ms,
            c.max_gaps_per_stream.max(1),
        );
        let mut forgotten = 0;
        for entry in self.origins.values_mut() {
            let account = self.kinds.get_mut(entry.kind);
            entry.streams.retain(|_, s| {
                // Past the grace: lost between.
                let mut newly_lost = Vec::new();
                let judged = !shared || s.downstream_seen;
                s.awaiting_downstream.retain(|span| {
                    let due = span.value.last_ms.saturating_add(grace) <= now;
                    if due && judged {
                        newly_lost.push(*span);
                    }
                    !due
                });
                while s.awaiting_downstream.len() > cap {
                    if let Some(span) = s.awaiting_downstream.pop_front()
                        && judged
                    {
                        newly_lost.push(span);
                        account.counters.spans_folded += 1;
                    }
                }
                for span in newly_lost {
                    account.add(LOST, span.len(), now);
                    s.lost.insert(Span {
                        start: span.start,
                        end: span.end,
                        value: now,
                    });
                }
                // Past the horizon: forgotten.
                let mut trimmed = 0;
                s.lost.retain(|span| {
                    let old = span.value.saturating_add(horizon) <= now;
                    trimmed += if old { span.len() } else { 0 };
                    !old
                });
                while s.lost.len() > cap {
                    if let Some(span) = s.lost.pop_front() {
                        trimmed += span.len();
                        account.counters.spans_folded += 1;
                    }
                }
                let c = &mut account.counters;
                c.lost_trimmed = c.lost_trimmed.saturating_add(trimmed);
                let mut only_downstream = 0;
                s.awaiting_upstream.retain(|span| {
                    let old = span.value.last_ms.saturating_add(horizon) <= now;
                    only_downstream += if old { span.len() } else { 0 };
                    !old
                });
                while s.awaiting_upstream.len() > cap {
                    if let Some(span) = s.awaiting_upstream.pop_front() {
                        only_downstream += span.len();
                        account.counters.spans_folded += 1;
                    }
                }
                let c = &mut account.counters;
                c.downstream_only = c.downstream_only.saturating_add(only_downstream);
                s.awaiting_downstream.compact();
                s.awaiting_upstream.compact();
                s.lost.compact();
                let keep = !s.awaiting_downstream.is_empty()
                    || !s.awaiting_upstream.is_empty()
                    || s.last_seen_ms.saturating_add(idle) > now;
                forgotten += usize::from(!keep);
                keep
            });
        }
        self.origins.retain(|_, e| !e.streams.is_empty());
        self.streams -= forgotten;
        for account in self.kinds.iter_mut() {
            account.windows.rotate(now);
            account.upstream.rotate(now);
            account.downstream.rotate(now);
        }
    }

    pub fn stream_count(&self) -> usize {
        self.streams
    }

    /// Takes every origin's state of `stream` out of this edge, for another instance to adopt.
    /// Counters stay here.
    pub fn hand_over(&mut self, stream: &str) -> Vec<EdgeStreamHandover> {
        let origins: Vec<String> = self
            .origins
            .iter()
            .filter(|(_, e)| e.streams.contains_key(stream))
            .map(|(o, _)| o.to_string())
            .collect();
        let mut out: Vec<_> = origins
            .iter()
            .filter_map(|o| self.hand_over_one(o, stream))
            .collect();
        out.sort_by(|a, b| a.origin.cmp(&b.origin));
        out
    }

    /// Takes one (origin, stream) out of this edge.
    pub fn hand_over_one(&mut self, origin: &str, stream: &str) -> Option<EdgeStreamHandover> {
        let entry = self.origins.get_mut(origin)?;
        let s = entry.streams.remove(stream)?;
        if entry.streams.is_empty() {
            self.origins.remove(origin);
        }
        self.streams -= 1;
        Some(EdgeStreamHandover {
            origin: origin.to_owned(),
            stream: stream.to_owned(),
            base: s.base,
            downstream_base: s.downstream_base,
            downstream_rebased: s.downstream_rebased,
            awaiting_downstream: s.awaiting_downstream.to_vec(),
            lost: s.lost.to_vec(),
            awaiting_upstream: s.awaiting_upstream.to_vec(),
            duplicate_credit: u64::from(s.duplicate_credit),
            last_seen_ms: s.last_seen_ms,
        })
    }

    /// Takes over an edge stream another instance handed over.
    pub fn adopt(&mut self, h: EdgeStreamHandover) -> Result<(), AdoptError> {
        let local = self
            .origins
            .get(h.origin.as_str())
            .and_then(|e| e.streams.get(h.stream.as_str()));
        // What upstream saw here of a stream another instance read downstream gives way to that
        // instance's state (upstream records seen here since it handed over: not matched, and
        // counted downstream_only if they come).
        let replaces = self.shared_downstream && local.is_some_and(|s| !s.downstream_seen);
        if !replaces && self.streams >= self.config.max_streams {
            return Err(AdoptError::Full(self.streams));
        }
        if local.is_some() && !replaces {
            return Err(AdoptError::AlreadyTracked {
                origin: h.origin,
                stream: h.stream,
            });
        }
        let unsorted = SnapshotError::Inconsistent("edge spans overlap or are unsorted");
        let state = EdgeStream {
            base: h.base,
            downstream_base: h.downstream_base,
            downstream_rebased: h.downstream_rebased,
            awaiting_downstream: Ranges::from_spans(h.awaiting_downstream)
                .ok_or_else(|| unsorted.clone())?,
            lost: Ranges::from_spans(h.lost).ok_or_else(|| unsorted.clone())?,
            awaiting_upstream: Ranges::from_spans(h.awaiting_upstream).ok_or(unsorted)?,
            duplicate_credit: u32::try_from(h.duplicate_credit).unwrap_or(u32::MAX),
            // Handed over by the instance whose downstream hop read it.
            downstream_seen: true,
            last_seen_ms: h.last_seen_ms,
        };
        let kind = self.kinds.slot_of(&h.origin);
        self.origins
            .entry(h.origin.into_boxed_str())
            .or_insert_with(|| OriginStreams {
                kind,
                streams: Map::default(),
            })
            .streams
            .insert(h.stream.into_boxed_str(), state);
        if !replaces {
            self.streams += 1;
        }
        Ok(())
    }

    /// Heap bytes held by stream state, for the memory figures.
    pub fn stream_heap_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(Box<str>, EdgeStream)>() + 1;
        self.origins
            .iter()
            .map(|(origin, e)| {
                origin.len()
                    + std::mem::size_of::<(Box<str>, OriginStreams)>()
                    + e.streams.capacity() * slot
                    + e.streams
                        .iter()
                        .map(|(k, s)| {
                            k.len()
                                + s.awaiting_downstream.heap_bytes()
                                + s.awaiting_upstream.heap_bytes()
                                + s.lost.heap_bytes()
                        })
                        .sum::<usize>()
            })
            .sum()
    }

    pub fn figures(&self) -> EdgeFigures {
        let (now, since) = (self.now_ms, self.downstream_since_ms);
        let by_kind: BTreeMap<String, EdgeKindFigures> = self
            .kinds
            .iter()
            .map(|(k, a)| (k.to_owned(), a.figures(now, since)))
            .collect();
        let mut total = KindAccount::default();
        for (_, a) in self.kinds.iter() {
            total.upstream.merge(&a.upstream);
            total.downstream.merge(&a.downstream);
            let (t, c) = (&mut total.counters, &a.counters);
            t.matched = t.matched.saturating_add(c.matched);
            t.lost = t.lost.saturating_add(c.lost);
            t.late = t.late.saturating_add(c.late);
            t.duplicated = t.duplicated.saturating_add(c.duplicated);
            t.downstream_only = t.downstream_only.saturating_add(c.downstream_only);
            t.before_downstream_base = t
                .before_downstream_base
                .saturating_add(c.before_downstream_base);
            t.lost_trimmed = t.lost_trimmed.saturating_add(c.lost_trimmed);
            t.untracked = t.untracked.saturating_add(c.untracked);
            t.spans_folded = t.spans_folded.saturating_add(c.spans_folded);
        }
        let mut total = total.figures(now, since);
        if !by_kind.is_empty() {
            let sum = |pick: fn(&EdgeWindows) -> &WindowCounts| {
                WindowCounts::sum(by_kind.values().map(|f| pick(&f.windows))).unwrap_or_default()
            };
            total.windows = EdgeWindows {
                matched: sum(|w| &w.matched),
                lost: sum(|w| &w.lost),
                late: sum(|w| &w.late),
                duplicated: sum(|w| &w.duplicated),
            };
        }
        EdgeFigures {
            downstream_since_ms: since,
            streams: self.streams as u64,
            total,
            by_kind,
        }
    }
}

/// One record seen at one end, as the edge applies it to a stream.
#[derive(Debug, Clone, Copy)]
struct Sighting {
    end: End,
    seq: u64,
    outcome: Outcome,
    origin_ms: EpochMillis,
    arrival_ms: EpochMillis,
    now: EpochMillis,
    since_ms: EpochMillis,
    granularity_ms: u64,
}

impl Sighting {
    fn apply(&self, s: &mut EdgeStream, account: &mut KindAccount) {
        let Sighting {
            end,
            seq,
            outcome,
            origin_ms,
            arrival_ms,
            now,
            ..
        } = *self;
        let first_sight = outcome.is_first_sight();
        s.last_seen_ms = now;
        s.downstream_seen |= end == End::Downstream;
        if s.base.is_none() && end == End::Upstream && first_sight {
            if arrival_ms < self.since_ms {
                return;
            }
            s.base = Some(seq);
            // What downstream saw below the base is not this edge's.
            s.awaiting_upstream.remove_below(seq, |_| {});
        }
        if s.base.is_some_and(|base| seq < base) {
            return;
        }
        if outcome == Outcome::Duplicate {
            if s.base.is_none() {
                return;
            }
            match end {
                End::Upstream => s.duplicate_credit = s.duplicate_credit.saturating_add(1),
                End::Downstream if s.duplicate_credit > 0 => s.duplicate_credit -= 1,
                End::Downstream => account.add(DUPLICATED, 1, now),
            }
            return;
        }
        let granularity = self.granularity_ms;
        let extend = |at: &mut SeenAt| {
            let fits = now < at.first_ms.saturating_add(granularity);
            if fits {
                at.last_ms = at.last_ms.max(now);
            }
            fits
        };
        let seen = SeenAt {
            first_ms: now,
            last_ms: now,
        };
        // Seen upstream before this, the downstream reader may have started past it.
        let watched_from = self.since_ms.saturating_add(granularity);
        match end {
            End::Upstream => {
                account.upstream.record(origin_ms, arrival_ms);
                if seq < s.downstream_base && (s.downstream_rebased || now < watched_from) {
                    let c = &mut account.counters;
                    c.before_downstream_base = c.before_downstream_base.saturating_add(1);
                } else if let Some(i) = s.awaiting_upstream.find(seq) {
                    s.awaiting_upstream.remove_at(i, seq);
                    account.add(MATCHED, 1, now);
                } else if s.awaiting_downstream.find(seq).is_none() {
                    s.awaiting_downstream.add(seq, seen, extend);
                }
            }
            End::Downstream => {
                account.downstream.record(origin_ms, arrival_ms);
                if matches!(outcome, Outcome::First | Outcome::Rebased) {
                    // The downstream hop's base: below a jump past deleted records, downstream
                    // never could see what upstream saw; below its first record, only what
                    // upstream saw right after the downstream reader started.
                    let rebased = outcome == Outcome::Rebased;
                    if seq > s.downstream_base {
                        s.downstream_base = seq;
                        s.downstream_rebased = rebased;
                    }
                    let (mut unseeable, mut judged) = (0, Vec::new());
                    s.awaiting_downstream.remove_below(seq, |span| {
                        if rebased || span.value.first_ms < watched_from {
                            unseeable += span.len();
                        } else {
                            judged.push(span);
                        }
                    });
                    for span in judged {
                        s.awaiting_downstream.insert(span);
                    }
                    let c = &mut account.counters;
                    c.before_downstream_base = c.before_downstream_base.saturating_add(unseeable);
                }
                if let Some(i) = s.awaiting_downstream.find(seq) {
                    s.awaiting_downstream.remove_at(i, seq);
                    account.add(MATCHED, 1, now);
                } else if let Some(i) = s.lost.find(seq) {
                    s.lost.remove_at(i, seq);
                    account.add(LATE, 1, now);
                } else if s.awaiting_upstream.find(seq).is_none() {
                    s.awaiting_upstream.add(seq, seen, extend);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn memory_per_edge_stream_is_as_documented() {
        assert_eq!(std::mem::size_of::<EdgeStream>(), 136);
        assert_eq!(std::mem::size_of::<Span<SeenAt>>(), 32);
        assert_eq!(std::mem::size_of::<Span<EpochMillis>>(), 24);
        let mut edge = Edge::new(CompletenessConfig::default(), T0);
        let n = 10_000u64;
        for p in 0..n {
            let (origin, stream) = (format!("sim-{}", p % 10), format!("{:04}", p / 10));
            for seq in 0..3 {
                edge.observe(
                    End::Upstream,
                    &origin,
                    &stream,
                    seq,
                    Outcome::InOrder,
                    T0,
                    T0 + 1,
                );
                edge.observe(
                    End::Downstream,
                    &origin,
                    &stream,
                    seq,
                    Outcome::InOrder,
                    T0,
                    T0 + 2,
                );
            }
        }
        edge.tick(T0 + 1_000);
        let per_stream = edge.stream_heap_bytes() as f64 / n as f64;
        eprintln!("{per_stream} bytes per edge stream");
        // 128 bytes of state + a 16-byte key + a control byte, at the map's load factor, +
        // the 4-byte name; the span buffers are given back once empty: under 300 bytes.
        assert!(per_stream < 300.0, "{per_stream} bytes per edge stream");
    }
}
