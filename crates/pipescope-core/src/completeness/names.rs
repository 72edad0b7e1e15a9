//! Shared copies of the origin and stream names a reader keeps seeing, so that handing a record
//! to the accounting costs a reference count instead of an allocation.

use std::collections::HashSet;
use std::sync::Arc;

/// A capped set of names. Producers choose the names, so the set is emptied when full: the
/// names in use come back at their next record, and a reader seeing more distinct names than
/// the cap just allocates more often.
#[derive(Debug, Clone)]
pub struct Names {
    names: HashSet<Arc<str>, foldhash::fast::RandomState>,
    cap: usize,
    emptied: u64,
}

impl Names {
    /// A set of at most `cap` names (at least one).
    pub fn new(cap: usize) -> Self {
        Self {
            names: HashSet::default(),
            cap: cap.max(1),
            emptied: 0,
        }
    }

    /// The shared copy of `name`.
    pub fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return shared.clone();
        }
        if self.names.len() >= self.cap {
            self.names.clear();
            self.emptied += 1;
        }
        let shared: Arc<str> = Arc::from(name);
        self.names.insert(shared.clone());
        shared
    }

    /// Forgets every name: the next `get` of each makes a new copy.
    pub fn clear(&mut self) {
        self.names.clear();
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Times the set was emptied for being full.
    pub fn emptied(&self) -> u64 {
        self.emptied
    }
}

/// Whether `stream` is `partition` written in decimal (the stream is the Kafka partition
/// itself), without formatting the number.
pub fn is_partition_text(stream: &str, partition: u32) -> bool {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    let mut n = partition;
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Byte by byte: shorter than a call to memcmp.
    let digits = &digits[start..];
    stream.len() == digits.len() && stream.bytes().zip(digits).all(|(a, &b)| a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_seen_again_is_the_same_shared_copy() {
        let mut names = Names::new(4);
        let a = names.get("sim-1");
        let b = names.get("sim-1");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "sim-1");
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_full_set_is_emptied_and_keeps_giving_the_right_names() {
        let mut names = Names::new(2);
        let a = names.get("a");
        names.get("b");
        assert_eq!((names.len(), names.emptied()), (2, 0));
        let c = names.get("c");
        assert_eq!((names.len(), names.emptied()), (1, 1));
        assert_eq!(&*c, "c");
        // "a" was dropped with the rest: a new copy, equal in text.
        let a_again = names.get("a");
        assert!(!Arc::ptr_eq(&a, &a_again));
        assert_eq!(&*a_again, "a");
        assert_eq!(names.len(), 2);
        assert_eq!(Names::new(0).get("x").as_ref(), "x");
        names.clear();
        assert!(names.is_empty());
        assert!(!Arc::ptr_eq(&a_again, &names.get("a")));
    }

    #[test]
    fn partition_text_is_the_plain_decimal_only() {
        for p in [0, 7, 10, 123, u32::MAX] {
            assert!(is_partition_text(&p.to_string(), p), "{p}");
        }
        for (stream, p) in [
            ("03", 3),
            ("+3", 3),
            ("3 ", 3),
            ("", 0),
            ("4", 3),
            ("34", 3),
            ("machine/a", 3),
            ("42949672950", 0),
        ] {
            assert!(!is_partition_text(stream, p), "{stream:?} {p}");
        }
    }
}
