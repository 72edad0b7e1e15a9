//! A sorted list of disjoint inclusive ranges of sequence numbers, each carrying a value.
//!
//! Written here rather than taken from `rangemap`: ranges are almost always added at the top
//! and removed at the bottom (traffic is mostly in order), so a `VecDeque` gives O(1) at both
//! ends and a binary search in between, with no tree node per range; and the value of a range
//! (when a gap was noticed, whether it is lost) must survive a split unchanged, where `rangemap`
//! coalesces neighbours with equal values.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// `start..=end` with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span<M> {
    pub start: u64,
    pub end: u64,
    pub value: M,
}

impl<M> Span<M> {
    /// How many numbers it holds (never 0: `start <= end`).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// Disjoint spans sorted by `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranges<M> {
    spans: VecDeque<Span<M>>,
}

impl<M> Default for Ranges<M> {
    fn default() -> Self {
        Self {
            spans: VecDeque::new(),
        }
    }
}

impl<M: Copy> Ranges<M> {
    /// Spans from a list; `None` unless sorted, disjoint and each `start <= end`.
    pub fn from_spans(spans: Vec<Span<M>>) -> Option<Self> {
        let sorted = spans.iter().all(|s| s.start <= s.end)
            && spans.windows(2).all(|w| w[0].end < w[1].start);
        sorted.then(|| Self {
            spans: spans.into(),
        })
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Span<M>> {
        self.spans.iter()
    }

    pub fn get(&self, index: usize) -> Option<&Span<M>> {
        self.spans.get(index)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut Span<M>> {
        self.spans.get_mut(index)
    }

    pub fn last_mut(&mut self) -> Option<&mut Span<M>> {
        self.spans.back_mut()
    }

    pub fn front(&self) -> Option<&Span<M>> {
        self.spans.front()
    }

    pub fn pop_front(&mut self) -> Option<Span<M>> {
        self.spans.pop_front()
    }

    /// Sum of the lengths of all spans.
    pub fn count(&self) -> u64 {
        self.spans
            .iter()
            .map(Span::len)
            .fold(0, u64::saturating_add)
    }

    /// The index of the span holding `seq`.
    pub fn find(&self, seq: u64) -> Option<usize> {
        // Fast path: most lookups hit the lowest or the highest span.
        if let Some(first) = self.spans.front()
            && first.start <= seq
            && seq <= first.end
        {
            return Some(0);
        }
        let after = self.spans.partition_point(|s| s.start <= seq);
        let index = after.checked_sub(1)?;
        (self.spans[index].end >= seq).then_some(index)
    }

    /// Adds `seq`, which no span holds: extends the top span when `seq` follows it and
    /// `extend` agrees (it may update the value), else adds a span of one.
    pub fn add(&mut self, seq: u64, value: M, extend: impl FnOnce(&mut M) -> bool) {
        if let Some(last) = self.spans.back_mut() {
            if last.end.checked_add(1) == Some(seq) && extend(&mut last.value) {
                last.end = seq;
                return;
            }
            if last.end < seq {
                self.spans.push_back(Span {
                    start: seq,
                    end: seq,
                    value,
                });
                return;
            }
        }
        let at = self.spans.partition_point(|s| s.start < seq);
        self.spans.insert(
            at,
            Span {
                start: seq,
                end: seq,
                value,
            },
        );
    }

    /// Inserts a span that overlaps none, in its place.
    pub fn insert(&mut self, span: Span<M>) {
        let at = self.spans.partition_point(|s| s.start < span.start);
        debug_assert!(at == 0 || self.spans[at - 1].end < span.start);
        self.spans.insert(at, span);
    }

    /// Appends a span above all others.
    pub fn push_top(&mut self, span: Span<M>) {
        debug_assert!(self.spans.back().is_none_or(|l| l.end < span.start));
        self.spans.push_back(span);
    }

    /// Takes `seq` out of the span at `index` (splitting it); returns that span's value.
    pub fn remove_at(&mut self, index: usize, seq: u64) -> M {
        let span = &mut self.spans[index];
        let value = span.value;
        if span.start == span.end {
            self.spans.remove(index);
        } else if seq == span.start {
            span.start += 1;
        } else if seq == span.end {
            span.end -= 1;
        } else {
            let upper = Span {
                start: seq + 1,
                end: span.end,
                value,
            };
            span.end = seq - 1;
            self.spans.insert(index + 1, upper);
        }
        value
    }

    /// Removes every seq below `bound`, calling `gone` with each removed part.
    pub fn remove_below(&mut self, bound: u64, mut gone: impl FnMut(Span<M>)) {
        while let Some(first) = self.spans.front_mut() {
            if first.start >= bound {
                break;
            }
            if first.end < bound {
                let span = *first;
                self.spans.pop_front();
                gone(span);
            } else {
                gone(Span {
                    start: first.start,
                    end: bound - 1,
                    value: first.value,
                });
                first.start = bound;
                break;
            }
        }
    }

    /// Keeps the spans for which `keep` is true, passing the others to it by value.
    pub fn retain(&mut self, mut keep: impl FnMut(&Span<M>) -> bool) {
        self.spans.retain(|s| keep(s));
    }

    /// Gives memory back once most spans are gone (after a burst of gaps was settled, or
    /// when nothing waits: most streams most of the time).
    pub fn compact(&mut self) {
        if self.spans.is_empty() || self.spans.capacity() > 4 * self.spans.len().max(4) {
            self.spans.shrink_to(self.spans.len() * 2);
        }
    }

    pub fn to_vec(&self) -> Vec<Span<M>> {
        self.spans.iter().copied().collect()
    }

    /// Heap bytes held (for the memory figures).
    pub fn heap_bytes(&self) -> usize {
        self.spans.capacity() * std::mem::size_of::<Span<M>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(r: &Ranges<u8>) -> Vec<(u64, u64, u8)> {
        r.iter().map(|s| (s.start, s.end, s.value)).collect()
    }

    #[test]
    fn adding_in_order_extends_one_span_while_allowed() {
        let mut r = Ranges::default();
        for seq in 0..5 {
            r.add(seq, 1, |_| true);
        }
        assert_eq!(spans(&r), [(0, 4, 1)]);
        r.add(5, 2, |_| false);
        r.add(9, 3, |_| true);
        r.add(7, 4, |_| true);
        assert_eq!(spans(&r), [(0, 4, 1), (5, 5, 2), (7, 7, 4), (9, 9, 3)]);
        assert_eq!(r.count(), 8);
    }

    #[test]
    fn find_and_remove_split_spans_keeping_their_values() {
        let mut r = Ranges::from_spans(vec![
            Span {
                start: 0,
                end: 9,
                value: 1,
            },
            Span {
                start: 20,
                end: 20,
                value: 2,
            },
        ])
        .unwrap();
        assert_eq!(r.find(10), None);
        assert_eq!(r.find(25), None);
        let i = r.find(5).unwrap();
        assert_eq!(r.remove_at(i, 5), 1);
        assert_eq!(spans(&r), [(0, 4, 1), (6, 9, 1), (20, 20, 2)]);
        let i = r.find(20).unwrap();
        r.remove_at(i, 20);
        let i = r.find(0).unwrap();
        r.remove_at(i, 0);
        let i = r.find(9).unwrap();
        r.remove_at(i, 9);
        assert_eq!(spans(&r), [(1, 4, 1), (6, 8, 1)]);
        let mut gone = Vec::new();
        r.remove_below(7, |s| gone.push((s.start, s.end)));
        assert_eq!(gone, [(1, 4), (6, 6)]);
        assert_eq!(spans(&r), [(7, 8, 1)]);
    }

    #[test]
    fn unsorted_or_overlapping_spans_are_refused() {
        let s = |start, end| Span {
            start,
            end,
            value: 0u8,
        };
        assert!(Ranges::from_spans(vec![s(5, 6), s(1, 2)]).is_none());
        assert!(Ranges::from_spans(vec![s(1, 5), s(5, 6)]).is_none());
        assert!(Ranges::from_spans(vec![s(3, 2)]).is_none());
        assert!(Ranges::from_spans(vec![s(1, 2), s(4, 6)]).is_some());
    }
}
