//! The offsets of every group in memory: committed ones, and transactional ones still
//! pending (written by TxnOffsetCommit, waiting for their transaction's marker), with
//! Kafka's rules for combining the two (`OffsetMetadataManager`). Pure: the group log
//! (`store.rs`) applies what it writes or reads back from `__consumer_offsets` here.
//!
//! Pending offsets are keyed by the `__consumer_offsets` partition holding their records
//! and the producer id, as a transaction marker ends "whatever this producer has open on
//! this partition", whichever groups that covers.
//!
//! When a transaction commits, each of its offsets replaces the committed one only if its
//! record lies later in the log than the committed one's. Compaction keeps the latest
//! record of a key, so this is the rule under which memory and a reload of a compacted
//! log always agree (a plain commit made while the transaction was open wins).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::store::Committed;

/// A committed offset and the offset of its record in `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The offset as committed.
    pub committed: Committed,
    /// Where its record is in the group's `__consumer_offsets` partition.
    pub record_offset: i64,
}

/// One group's offsets by (topic, partition).
pub type GroupOffsets = BTreeMap<(String, i32), Stored>;

/// A transaction's identity on one `__consumer_offsets` partition: (partition, producer id).
type TxnKey = (i32, i64);

/// Committed and pending offsets of every group.
#[derive(Debug, Default)]
pub struct Offsets {
    committed: HashMap<String, GroupOffsets>,
    /// Undecided transactional offsets, per transaction, per group.
    pending: HashMap<TxnKey, HashMap<String, GroupOffsets>>,
    /// The transactions with pending offsets of each group (OffsetFetch's
    /// `require_stable`, offset expiry).
    open_by_group: HashMap<String, BTreeSet<TxnKey>>,
    /// Pending offsets in all.
    pending_count: usize,
}

impl Offsets {
    /// A plain (non-transactional) commit: replaces the committed offset.
    pub fn put(&mut self, group: &str, topic: &str, partition: i32, stored: Stored) {
        self.committed
            .entry(group.to_owned())
            .or_default()
            .insert((topic.to_owned(), partition), stored);
    }

    /// A tombstone: the committed offset goes, and so does every pending one of the same
    /// partition (Kafka: a deletion also forgets what open transactions committed).
    pub fn delete(&mut self, group: &str, topic: &str, partition: i32) {
        let key = (topic.to_owned(), partition);
        if let Some(g) = self.committed.get_mut(group) {
            g.remove(&key);
            if g.is_empty() {
                self.committed.remove(group);
            }
        }
        let Some(open) = self.open_by_group.get_mut(group) else {
            return;
        };
        open.retain(|txn| {
            let Some(groups) = self.pending.get_mut(txn) else {
                return false;
            };
            let Some(g) = groups.get_mut(group) else {
                return false;
            };
            if g.remove(&key).is_some() {
                self.pending_count -= 1;
            }
            if !g.is_empty() {
                return true;
            }
            // Nothing of this group is left in the transaction.
            groups.remove(group);
            if groups.is_empty() {
                self.pending.remove(txn);
            }
            false
        });
        if open.is_empty() {
            self.open_by_group.remove(group);
        }
    }

    /// A transactional commit by `producer_id` whose record is on `__consumer_offsets`
    /// partition `txn_partition`: held until the transaction ends.
    pub fn put_pending(
        &mut self,
        (txn_partition, producer_id): (i32, i64),
        group: &str,
        topic: &str,
        partition: i32,
        stored: Stored,
    ) {
        let txn = (txn_partition, producer_id);
        let replaced = self
            .pending
            .entry(txn)
            .or_default()
            .entry(group.to_owned())
            .or_default()
            .insert((topic.to_owned(), partition), stored);
        if replaced.is_none() {
            self.pending_count += 1;
        }
        self.open_by_group
            .entry(group.to_owned())
            .or_default()
            .insert(txn);
    }

    /// A transaction marker of `producer_id` on `txn_partition`: its pending offsets are
    /// applied (`commit`, each only if its record is later than the committed one's) or
    /// dropped. Nothing pending is fine (a repeated marker, or a transaction that
    /// committed no offsets here). Returns how many offsets were pending.
    pub fn end_transaction(&mut self, txn_partition: i32, producer_id: i64, commit: bool) -> usize {
        let txn = (txn_partition, producer_id);
        let Some(groups) = self.pending.remove(&txn) else {
            return 0;
        };
        let mut ended = 0;
        for (group, offsets) in groups {
            if let Some(open) = self.open_by_group.get_mut(&group) {
                open.remove(&txn);
                if open.is_empty() {
                    self.open_by_group.remove(&group);
                }
            }
            ended += offsets.len();
            self.pending_count -= offsets.len();
            if !commit {
                continue;
            }
            let committed = self.committed.entry(group).or_default();
            for (key, stored) in offsets {
                let later = committed
                    .get(&key)
                    .is_none_or(|current| stored.record_offset > current.record_offset);
                if later {
                    committed.insert(key, stored);
                }
            }
        }
        // A group whose every pending offset was older than its committed ones.
        self.committed.retain(|_, g| !g.is_empty());
        // Groups opened by transactions that were then emptied by tombstones.
        self.open_by_group.retain(|_, open| !open.is_empty());
        ended
    }

    /// The committed offset of one partition.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&Stored> {
        self.committed
            .get(group)?
            .get(&(topic.to_owned(), partition))
    }

    /// Every committed offset of a group.
    pub fn group(&self, group: &str) -> Option<&GroupOffsets> {
        self.committed.get(group)
    }

    /// Whether an open transaction holds an offset of this partition for the group.
    pub fn has_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        let Some(open) = self.open_by_group.get(group) else {
            return false;
        };
        let key = (topic.to_owned(), partition);
        open.iter().any(|txn| {
            self.pending
                .get(txn)
                .and_then(|groups| groups.get(group))
                .is_some_and(|g| g.contains_key(&key))
        })
    }

    /// Whether any transaction with offsets of the group is still open.
    pub fn has_open_transactions(&self, group: &str) -> bool {
        self.open_by_group.contains_key(group)
    }

    /// The partitions of the group that open transactions hold offsets for.
    pub fn pending_partitions(&self, group: &str) -> BTreeSet<(String, i32)> {
        let mut out = BTreeSet::new();
        for txn in self.open_by_group.get(group).into_iter().flatten() {
            if let Some(g) = self.pending.get(txn).and_then(|groups| groups.get(group)) {
                out.extend(g.keys().cloned());
            }
        }
        out
    }

    /// How many of `partitions` one transaction would newly hold for the group, and how
    /// many it holds already.
    pub fn pending_growth<'a>(
        &self,
        txn: (i32, i64),
        group: &str,
        partitions: impl IntoIterator<Item = (&'a str, i32)>,
    ) -> (usize, usize) {
        let held = self.pending.get(&txn).and_then(|groups| groups.get(group));
        let new: BTreeSet<(&str, i32)> = partitions
            .into_iter()
            .filter(|(t, p)| !held.is_some_and(|g| g.contains_key(&((*t).to_owned(), *p))))
            .collect();
        (new.len(), held.map_or(0, BTreeMap::len))
    }

    /// Pending offsets in all.
    pub fn pending_count(&self) -> usize {
        self.pending_count
    }

    /// Every group with committed offsets or an open transaction.
    pub fn groups(&self) -> Vec<String> {
        let mut out: BTreeSet<&String> = self.committed.keys().collect();
        out.extend(self.open_by_group.keys());
        out.into_iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64, record_offset: i64) -> Stored {
        Stored {
            committed: Committed {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 0,
            },
            record_offset,
        }
    }

    fn offset(o: &Offsets, p: i32) -> Option<i64> {
        o.get("g", "t", p).map(|s| s.committed.offset)
    }

    #[test]
    fn pending_offsets_are_invisible_until_committed() {
        let mut o = Offsets::default();
        o.put("g", "t", 0, at(1, 0));
        o.put_pending((7, 42), "g", "t", 0, at(5, 1));
        o.put_pending((7, 42), "g", "t", 1, at(6, 1));
        assert_eq!(offset(&o, 0), Some(1));
        assert_eq!(offset(&o, 1), None);
        assert!(o.has_pending("g", "t", 0) && o.has_pending("g", "t", 1));
        assert!(!o.has_pending("g", "t", 2) && !o.has_pending("other", "t", 0));
        assert_eq!(o.pending_count(), 2);
        assert_eq!(o.end_transaction(7, 42, true), 2);
        assert_eq!((offset(&o, 0), offset(&o, 1)), (Some(5), Some(6)));
        assert!(!o.has_pending("g", "t", 0) && !o.has_open_transactions("g"));
        assert_eq!(o.pending_count(), 0);
        // A repeated marker finds nothing and changes nothing.
        assert_eq!(o.end_transaction(7, 42, true), 0);
        assert_eq!(o.end_transaction(7, 42, false), 0);
        assert_eq!(offset(&o, 0), Some(5));
    }

    #[test]
    fn aborted_offsets_are_dropped() {
        let mut o = Offsets::default();
        o.put("g", "t", 0, at(1, 0));
        o.put_pending((7, 42), "g", "t", 0, at(5, 1));
        assert_eq!(o.end_transaction(7, 42, false), 1);
        assert_eq!(offset(&o, 0), Some(1));
        assert!(!o.has_open_transactions("g"));
        assert_eq!(o.groups(), vec!["g".to_owned()]);
    }

    #[test]
    fn a_plain_commit_after_the_transactional_record_wins() {
        let mut o = Offsets::default();
        o.put_pending((7, 42), "g", "t", 0, at(5, 10));
        o.put("g", "t", 0, at(9, 11));
        o.end_transaction(7, 42, true);
        assert_eq!(offset(&o, 0), Some(9), "the record at 11 is the later one");
        // And the other way round.
        o.put("g", "t", 1, at(9, 12));
        o.put_pending((7, 42), "g", "t", 1, at(5, 13));
        o.end_transaction(7, 42, true);
        assert_eq!(offset(&o, 1), Some(5));
    }

    #[test]
    fn transactions_are_told_apart_by_partition_and_producer() {
        let mut o = Offsets::default();
        o.put_pending((7, 42), "g", "t", 0, at(5, 1));
        o.put_pending((7, 43), "g", "t", 1, at(6, 2));
        o.put_pending((8, 42), "h", "t", 0, at(7, 3));
        o.end_transaction(7, 42, true);
        assert_eq!(offset(&o, 0), Some(5));
        assert!(o.has_pending("g", "t", 1) && o.has_pending("h", "t", 0));
        assert_eq!(o.groups(), vec!["g".to_owned(), "h".to_owned()]);
        o.end_transaction(7, 43, false);
        o.end_transaction(8, 42, false);
        assert_eq!(o.pending_count(), 0);
        assert_eq!(o.groups(), vec!["g".to_owned()]);
    }

    #[test]
    fn a_tombstone_removes_pending_offsets_of_its_partition() {
        let mut o = Offsets::default();
        o.put("g", "t", 0, at(1, 0));
        o.put_pending((7, 42), "g", "t", 0, at(5, 1));
        o.put_pending((7, 42), "g", "t", 1, at(6, 1));
        o.delete("g", "t", 0);
        assert!(!o.has_pending("g", "t", 0) && o.has_pending("g", "t", 1));
        assert_eq!(o.pending_count(), 1);
        assert_eq!(
            o.pending_partitions("g").into_iter().collect::<Vec<_>>(),
            vec![("t".to_owned(), 1)]
        );
        o.end_transaction(7, 42, true);
        assert_eq!((offset(&o, 0), offset(&o, 1)), (None, Some(6)));

        // A transaction whose every offset of the group was deleted no longer holds it.
        o.put_pending((7, 43), "h", "t", 0, at(5, 2));
        o.delete("h", "t", 0);
        assert!(!o.has_open_transactions("h"));
        assert_eq!(o.groups(), vec!["g".to_owned()]);
        assert_eq!(o.end_transaction(7, 43, true), 0);
        assert_eq!(o.get("h", "t", 0), None);
    }

    #[test]
    fn growth_counts_distinct_new_partitions() {
        let mut o = Offsets::default();
        o.put_pending((7, 42), "g", "t", 0, at(5, 1));
        let asked = [("t", 0), ("t", 1), ("t", 1), ("u", 0)];
        assert_eq!(o.pending_growth((7, 42), "g", asked), (2, 1));
        assert_eq!(o.pending_growth((7, 43), "g", asked), (3, 0));
    }
}
