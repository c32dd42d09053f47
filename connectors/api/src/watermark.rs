use std::collections::{BTreeMap, BTreeSet};

use crate::{Offsets, TopicPartition};

/// Tracks, per partition, which records are acknowledged and answers the highest offset
/// below which *every* record is acknowledged.
///
/// Records are [`sent`](Watermark::sent) in offset order per partition and may be
/// [`acked`](Watermark::acked) in any order. Offsets need not be contiguous (compacted
/// topics, transaction markers): only offsets that were sent count.
#[derive(Debug, Default, Clone)]
pub struct Watermark {
    partitions: BTreeMap<TopicPartition, Partition>,
}

#[derive(Debug, Default, Clone)]
struct Partition {
    /// Offsets sent and not yet acknowledged.
    pending: BTreeSet<i64>,
    /// One past the highest offset sent so far.
    next: Option<i64>,
}

impl Watermark {
    pub fn new() -> Self {
        Self::default()
    }

    /// A record was handed to the destination.
    pub fn sent(&mut self, tp: &TopicPartition, offset: i64) {
        let p = self.partitions.entry(tp.clone()).or_default();
        p.pending.insert(offset);
        p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// The destination acknowledged a record. Unknown offsets are ignored.
    pub fn acked(&mut self, tp: &TopicPartition, offset: i64) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.pending.remove(&offset);
        }
    }

    /// Number of records sent and not yet acknowledged, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }

    /// Per partition, the offset up to which everything sent is acknowledged: the lowest
    /// pending offset, or one past the highest sent when nothing is pending.
    pub fn committable(&self) -> Offsets {
        self.partitions
            .iter()
            .filter_map(|(tp, p)| {
                let next = p.next?;
                let safe = p.pending.first().copied().unwrap_or(next);
                Some((tp.clone(), safe))
            })
            .collect()
    }

    /// Forget partitions that were revoked.
    pub fn remove(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.partitions.remove(tp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn nothing_sent_means_nothing_committable() {
        assert!(Watermark::new().committable().is_empty());
    }

    #[test]
    fn out_of_order_acks_hold_the_watermark_at_the_gap() {
        let mut w = Watermark::new();
        for o in 10..15 {
            w.sent(&tp(0), o);
        }
        w.acked(&tp(0), 10);
        w.acked(&tp(0), 12);
        w.acked(&tp(0), 13);
        // 11 is still pending: only 10 is safe, so commit 11.
        assert_eq!(w.committable()[&tp(0)], 11);
        w.acked(&tp(0), 11);
        // 14 pending.
        assert_eq!(w.committable()[&tp(0)], 14);
        w.acked(&tp(0), 14);
        assert_eq!(w.committable()[&tp(0)], 15);
        assert_eq!(w.in_flight(), 0);
    }

    #[test]
    fn offset_gaps_from_compaction_do_not_block() {
        let mut w = Watermark::new();
        w.sent(&tp(0), 3);
        w.sent(&tp(0), 7);
        w.acked(&tp(0), 7);
        assert_eq!(w.committable()[&tp(0)], 3);
        w.acked(&tp(0), 3);
        assert_eq!(w.committable()[&tp(0)], 8);
    }

    #[test]
    fn partitions_are_independent_and_removable() {
        let mut w = Watermark::new();
        w.sent(&tp(0), 0);
        w.sent(&tp(1), 0);
        w.acked(&tp(1), 0);
        let c = w.committable();
        assert_eq!(c[&tp(0)], 0);
        assert_eq!(c[&tp(1)], 1);
        w.remove(&[tp(0)]);
        assert_eq!(w.committable().len(), 1);
    }

    #[test]
    fn redelivered_records_are_tracked_again() {
        let mut w = Watermark::new();
        w.sent(&tp(0), 5);
        w.acked(&tp(0), 5);
        // A retry sends 5 again (after a rebalance the task may see it twice).
        w.sent(&tp(0), 5);
        assert_eq!(w.committable()[&tp(0)], 5);
        w.acked(&tp(0), 5);
        assert_eq!(w.committable()[&tp(0)], 6);
    }
}
