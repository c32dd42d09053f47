//! Which task handles which partition. A connector has one Kafka consumer; its partitions
//! are spread over the connector's live tasks, least loaded first, so `tasks.max` bounds
//! sink parallelism without a consumer (and its buffers and threads) per task.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ferry_connector_api::TopicPartition;

#[derive(Debug)]
pub(crate) struct Routing {
    owner: HashMap<TopicPartition, usize>,
    live: Vec<bool>,
    /// Partitions of failed tasks: paused, their records dropped (never delivered, never
    /// committed) until the next rebalance gives them to a live task.
    frozen: BTreeSet<TopicPartition>,
    /// The last lookup: records arrive in runs of one partition.
    last: Option<(Arc<str>, i32, Option<usize>)>,
}

impl Routing {
    pub(crate) fn new(live: Vec<bool>) -> Self {
        Self {
            owner: HashMap::new(),
            live,
            frozen: BTreeSet::new(),
            last: None,
        }
    }

    fn load(&self, task: usize) -> usize {
        self.owner.values().filter(|t| **t == task).count()
    }

    /// Gives newly assigned partitions to the least loaded live tasks. Returns them grouped
    /// by task; empty when no task is alive.
    pub(crate) fn add(
        &mut self,
        partitions: &[TopicPartition],
    ) -> BTreeMap<usize, Vec<TopicPartition>> {
        self.last = None;
        let mut sorted: Vec<&TopicPartition> = partitions.iter().collect();
        sorted.sort();
        let mut loads: Vec<usize> = (0..self.live.len()).map(|t| self.load(t)).collect();
        let mut out: BTreeMap<usize, Vec<TopicPartition>> = BTreeMap::new();
        for tp in sorted {
            let Some(task) = (0..self.live.len())
                .filter(|t| self.live[*t])
                .min_by_key(|t| (loads[*t], *t))
            else {
                break;
            };
            loads[task] += 1;
            self.owner.insert(tp.clone(), task);
            self.frozen.remove(tp);
            out.entry(task).or_default().push(tp.clone());
        }
        out
    }

    /// Forgets revoked partitions. Returns the live tasks that held them, with theirs.
    pub(crate) fn remove(
        &mut self,
        partitions: &[TopicPartition],
    ) -> BTreeMap<usize, Vec<TopicPartition>> {
        self.last = None;
        let mut out: BTreeMap<usize, Vec<TopicPartition>> = BTreeMap::new();
        for tp in partitions {
            self.frozen.remove(tp);
            if let Some(task) = self.owner.remove(tp)
                && self.live[task]
            {
                out.entry(task).or_default().push(tp.clone());
            }
        }
        out
    }

    /// The task for a record's partition; None for a partition not assigned or frozen.
    pub(crate) fn owner_of(&mut self, topic: &Arc<str>, partition: i32) -> Option<usize> {
        if let Some((t, p, owner)) = &self.last
            && *p == partition
            && Arc::ptr_eq(t, topic)
        {
            return *owner;
        }
        let tp = TopicPartition {
            topic: topic.clone(),
            partition,
        };
        let owner = if self.frozen.contains(&tp) {
            None
        } else {
            self.owner.get(&tp).copied()
        };
        self.last = Some((topic.clone(), partition, owner));
        owner
    }

    /// A task failed: freezes its partitions and returns them (to pause).
    pub(crate) fn fail(&mut self, task: usize) -> Vec<TopicPartition> {
        self.last = None;
        self.live[task] = false;
        let parts: Vec<TopicPartition> = self
            .owner
            .iter()
            .filter(|(_, t)| **t == task)
            .map(|(tp, _)| tp.clone())
            .collect();
        self.frozen.extend(parts.iter().cloned());
        parts
    }

    pub(crate) fn is_frozen(&self, tp: &TopicPartition) -> bool {
        self.frozen.contains(tp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(topic: &str, n: i32) -> Vec<TopicPartition> {
        (0..n).map(|p| TopicPartition::new(topic, p)).collect()
    }

    #[test]
    fn partitions_spread_evenly_and_stay_put() {
        let mut r = Routing::new(vec![true; 3]);
        let groups = r.add(&tps("t", 7));
        let sizes: Vec<usize> = groups.values().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 2, 2]);
        let topic: Arc<str> = "t".into();
        let owner = r.owner_of(&topic, 4);
        assert_eq!(r.owner_of(&topic, 4), owner, "cached lookup agrees");
        // Incremental additions go to the least loaded tasks.
        let more = r.add(&[TopicPartition::new("u", 0), TopicPartition::new("u", 1)]);
        assert_eq!(more.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(r.owner_of(&topic, 99), None);
    }

    #[test]
    fn removal_reports_the_holders() {
        let mut r = Routing::new(vec![true; 2]);
        r.add(&tps("t", 4));
        let gone = r.remove(&[TopicPartition::new("t", 0), TopicPartition::new("t", 1)]);
        assert_eq!(gone.values().map(Vec::len).sum::<usize>(), 2);
        assert_eq!(r.owner_of(&"t".into(), 0), None);
    }

    #[test]
    fn a_failed_task_freezes_its_partitions_until_they_are_reassigned() {
        let mut r = Routing::new(vec![true; 2]);
        r.add(&tps("t", 4));
        let topic: Arc<str> = "t".into();
        let frozen = r.fail(0);
        assert_eq!(frozen.len(), 2);
        for tp in &frozen {
            assert!(r.is_frozen(tp));
            assert_eq!(
                r.owner_of(&topic, tp.partition),
                None,
                "records of a failed task are not routed"
            );
        }
        // A rebalance hands everything to the live task.
        r.remove(&tps("t", 4));
        let groups = r.add(&tps("t", 4));
        assert_eq!(groups.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert!(!r.is_frozen(&TopicPartition::new("t", 0)));
        r.fail(1);
        assert!(r.add(&tps("v", 1)).is_empty(), "no live task to give it to");
    }
}
