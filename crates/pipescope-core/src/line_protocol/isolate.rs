//! Which answers to a line-protocol write are worth retrying, and the bisection that pins a
//! permanent refusal down to the lines that caused it.
//!
//! A batch InfluxDB refuses for good (400: a field type conflict, a bad line) would be refused
//! again on every retry and stop the writer. Splitting it in halves until each refused part is
//! one line writes every good line and isolates the bad ones in about `2 × bad × log2(lines)`
//! writes; lines written twice on the way are harmless (one point per series and timestamp).

use std::ops::Range;

/// Whether an HTTP status refuses these lines for good: a 4xx, except 408 (request timeout)
/// and 429 (too many requests), which say "later", and 401, 403 and 404 (credentials, rights,
/// no such database), which say the writer is misconfigured: isolating would drop every line,
/// while retrying writes them all once it is fixed.
pub fn is_permanent_refusal(status: u16) -> bool {
    (400..500).contains(&status) && ![401, 403, 404, 408, 429].contains(&status)
}

/// The parts of a batch of `n` lines still to write, the next one first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolate {
    /// A stack: the last range is written next.
    pending: Vec<Range<usize>>,
}

impl Isolate {
    pub fn new(lines: usize) -> Self {
        Self {
            pending: std::iter::once(0..lines)
                .filter(|r| !r.is_empty())
                .collect(),
        }
    }

    /// The lines to write next; None when every line was written or rejected.
    pub fn next(&self) -> Option<Range<usize>> {
        self.pending.last().cloned()
    }

    /// The part [`Self::next`] gave was written.
    pub fn written(&mut self) {
        self.pending.pop();
    }

    /// The part [`Self::next`] gave was refused for good: it is split in halves, to be written
    /// in order, or, when it is one line, returned as rejected.
    pub fn refused(&mut self) -> Option<Range<usize>> {
        let part = self.pending.pop()?;
        if part.len() <= 1 {
            return Some(part);
        }
        let middle = part.start + part.len() / 2;
        self.pending.push(middle..part.end);
        self.pending.push(part.start..middle);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_4xx_about_the_lines_refuse_for_good() {
        for status in [400, 405, 413, 415, 422, 499] {
            assert!(is_permanent_refusal(status), "{status}");
        }
        for status in [
            200,
            204,
            307,
            401,
            403,
            404,
            408,
            429,
            500,
            502,
            503,
            504,
            0,
            u16::MAX,
        ] {
            assert!(!is_permanent_refusal(status), "{status}");
        }
    }

    /// Drives an isolation against a writer that refuses any part holding a bad line.
    fn run(lines: usize, bad: &[usize]) -> (Vec<usize>, Vec<usize>, usize) {
        let mut isolate = Isolate::new(lines);
        let (mut written, mut rejected, mut writes) = (Vec::new(), Vec::new(), 0);
        while let Some(part) = isolate.next() {
            writes += 1;
            if part.clone().any(|i| bad.contains(&i)) {
                if let Some(line) = isolate.refused() {
                    assert_eq!(line.len(), 1);
                    rejected.push(line.start);
                }
            } else {
                written.extend(part);
                isolate.written();
            }
        }
        (written, rejected, writes)
    }

    #[test]
    fn a_refused_batch_writes_every_good_line_once_in_order_and_rejects_the_bad_ones() {
        let (written, rejected, writes) = run(100, &[37]);
        assert_eq!(rejected, [37]);
        assert_eq!(written, (0..100).filter(|&i| i != 37).collect::<Vec<_>>());
        // the batch, then both halves of each of the 6 halvings down to the bad line
        assert_eq!(writes, 13);

        let (written, rejected, _) = run(5, &[0, 4]);
        assert_eq!(rejected, [0, 4]);
        assert_eq!(written, [1, 2, 3]);

        let (written, rejected, writes) = run(3, &[0, 1, 2]);
        assert_eq!((written.len(), rejected, writes), (0, vec![0, 1, 2], 5));
    }

    #[test]
    fn a_good_batch_is_one_write_and_an_empty_one_none() {
        assert_eq!(run(5000, &[]), ((0..5000).collect(), vec![], 1));
        assert_eq!(Isolate::new(0).next(), None);
        assert_eq!(Isolate::new(0).refused(), None);
    }

    #[test]
    fn a_single_refused_line_is_rejected_at_once() {
        let mut isolate = Isolate::new(1);
        assert_eq!(isolate.refused(), Some(0..1));
        assert_eq!(isolate.next(), None);
    }
}
