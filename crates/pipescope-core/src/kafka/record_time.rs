//! Which record timestamps the scraper should fetch for exact lag in seconds.
//!
//! Only lagging positions need one (lag 0 is 0 s), and many groups often sit at the same
//! position of a partition: ask once per distinct (partition, committed offset).

/// The distinct lagging positions among `commits` (topic, partition, committed offset): a
/// position is lagging when it is behind its partition's end offset. `end_of(topic, partition)`
/// gives a partition's place in the caller's list and its end offset, `None` when unknown (not
/// in the metadata, offsets failed): those are left out, as are negative ("no commit") offsets.
/// Returned as (place, offset), sorted by place and then offset: a big cluster has ~200,000
/// lagging positions, so the caller's partitions are not copied.
pub fn lagging_positions<'a>(
    commits: impl IntoIterator<Item = (&'a str, i32, i64)>,
    end_of: impl Fn(&str, i32) -> Option<(usize, i64)>,
) -> Vec<(usize, i64)> {
    let mut wanted: Vec<(usize, i64)> = commits
        .into_iter()
        .filter_map(|(topic, partition, committed)| {
            let (place, latest) = end_of(topic, partition)?;
            (committed >= 0 && committed < latest).then_some((place, committed))
        })
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partitions a/0 and a/1 end at 100 (places 0 and 1); b/0's end offset is unknown.
    fn end_of(topic: &str, partition: i32) -> Option<(usize, i64)> {
        match (topic, partition) {
            ("a", 0) => Some((0, 100)),
            ("a", 1) => Some((1, 100)),
            _ => None,
        }
    }

    fn commits() -> Vec<(&'static str, i32, i64)> {
        vec![
            ("a", 0, 40),
            ("a", 0, 40), // same position, another group: one fetch
            ("a", 0, 70),
            ("a", 1, 100), // caught up: no fetch
            ("b", 0, 5),   // end offset unknown: no fetch
            ("a", 1, -1),  // no committed offset
        ]
    }

    #[test]
    fn only_distinct_lagging_positions_are_asked_for() {
        assert_eq!(lagging_positions(commits(), end_of), [(0, 40), (0, 70)]);
    }

    #[test]
    fn lagging_positions_come_in_partition_order_whatever_the_commit_order() {
        let mut commits = commits();
        commits.reverse();
        commits.push(("a", 1, 10));
        commits.insert(0, ("a", 1, 20));
        assert_eq!(
            lagging_positions(commits, end_of),
            [(0, 40), (0, 70), (1, 10), (1, 20)]
        );
    }
}
