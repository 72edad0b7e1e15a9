//! Which record timestamps the scraper should fetch for exact lag in seconds, and putting the
//! answers back into the snapshot.
//!
//! Only lagging positions need one (lag 0 is 0 s), and many groups often sit at the same
//! position of a partition: ask once per distinct (partition, committed offset).

use crate::clock::EpochMillis;
use crate::kafka::{FastMap, OffsetsSnapshot, TopicPartition};

/// The distinct `(partition, committed offset)` positions behind their partition's end offset in
/// this snapshot, in the order of the snapshot's partitions and by offset within one. Partitions
/// whose offsets failed, and negative ("no commit") offsets, are left out. Borrowed from the
/// snapshot: a big cluster has ~200,000 lagging positions.
pub fn lagging_positions(snapshot: &OffsetsSnapshot) -> Vec<(&TopicPartition, i64)> {
    // Each partition by its place in the snapshot, so the positions sort as numbers.
    let ends: FastMap<&TopicPartition, (usize, i64)> = snapshot
        .partitions
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.offsets.as_ref().ok().map(|o| (&p.tp, (i, o.latest))))
        .collect();
    let mut wanted: Vec<(usize, i64)> = snapshot
        .commits
        .iter()
        .filter_map(|commit| {
            let &(index, latest) = ends.get(&commit.tp)?;
            (commit.committed >= 0 && commit.committed < latest)
                .then_some((index, commit.committed))
        })
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    wanted
        .into_iter()
        .map(|(index, offset)| (&snapshot.partitions[index].tp, offset))
        .collect()
}

/// Fills `record_time_ms` of every commit whose position has a fetched timestamp
/// (`time_at(topic, partition, offset)`). A position without one (record gone to retention or
/// compaction, fetch failed) keeps `None`, and the lag in seconds of that commit is then
/// estimated. A lookup, not a map: the caller's own map of what it fetched serves, borrowed.
pub fn set_record_times(
    snapshot: &mut OffsetsSnapshot,
    time_at: impl Fn(&str, i32, i64) -> Option<EpochMillis>,
) {
    for commit in &mut snapshot.commits {
        if let Some(t) = time_at(&commit.tp.topic, commit.tp.partition, commit.committed) {
            commit.record_time_ms = Some(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::{GroupCommit, OffsetRange, PartitionOffsets};

    fn snapshot() -> OffsetsSnapshot {
        let part = |t: &str, p, latest| PartitionOffsets {
            tp: TopicPartition::new(t, p),
            offsets: Ok(OffsetRange {
                earliest: 0,
                latest,
            }),
        };
        let commit = |g: &str, t: &str, p, committed| GroupCommit {
            group: g.into(),
            tp: TopicPartition::new(t, p),
            committed,
            record_time_ms: None,
        };
        OffsetsSnapshot {
            time_ms: 1_000,
            partitions: vec![
                part("a", 0, 100),
                part("a", 1, 100),
                PartitionOffsets {
                    tp: TopicPartition::new("b", 0),
                    offsets: Err("leader not available".into()),
                },
            ],
            commits: vec![
                commit("g1", "a", 0, 40),
                commit("g2", "a", 0, 40), // same position: one fetch
                commit("g3", "a", 0, 70),
                commit("g1", "a", 1, 100), // caught up: no fetch
                commit("g1", "b", 0, 5),   // end offset unknown: no fetch
                commit("g4", "a", 1, -1),  // no committed offset
            ],
        }
    }

    #[test]
    fn only_distinct_lagging_positions_are_asked_for() {
        assert_eq!(
            lagging_positions(&snapshot()),
            [
                (&TopicPartition::new("a", 0), 40),
                (&TopicPartition::new("a", 0), 70)
            ]
        );
    }

    #[test]
    fn lagging_positions_come_in_partition_order_whatever_the_commit_order() {
        let mut snap = snapshot();
        snap.commits.reverse();
        snap.commits.push(GroupCommit {
            group: "g5".into(),
            tp: TopicPartition::new("a", 1),
            committed: 10,
            record_time_ms: None,
        });
        assert_eq!(
            lagging_positions(&snap),
            [
                (&TopicPartition::new("a", 0), 40),
                (&TopicPartition::new("a", 0), 70),
                (&TopicPartition::new("a", 1), 10)
            ]
        );
    }

    #[test]
    fn fetched_times_land_on_every_commit_at_that_position() {
        let mut snap = snapshot();
        let times = FastMap::from_iter([(("a", 0, 40), 777), (("a", 1, 40), 888)]);
        set_record_times(&mut snap, |t, p, o| times.get(&(t, p, o)).copied());
        let got: Vec<_> = snap
            .commits
            .iter()
            .map(|c| (c.group.as_str(), c.committed, c.record_time_ms))
            .collect();
        assert_eq!(got[0], ("g1", 40, Some(777)));
        assert_eq!(got[1], ("g2", 40, Some(777)));
        assert_eq!(got[2], ("g3", 70, None));
    }
}
