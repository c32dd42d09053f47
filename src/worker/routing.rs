//! Which task handles which partition. A connector has one Kafka consumer; its partitions
//! are spread over the connector's live tasks, least loaded first, so `tasks.max` bounds
//! sink parallelism without a consumer (and its buffers and threads) per task. A partition
//! that finds no idle task starts a new one, while `tasks.max` allows (see `tasks.rs`).
//!
//! Routing also remembers, per partition, how far records have been handed towards the
//! tasks, which `--exit-at-end` compares with what is committed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ferry_connector_api::TopicPartition;

#[derive(Debug)]
pub(crate) struct Routing {
    owner: HashMap<TopicPartition, usize>,
    /// Per task id: alive (started and not failed).
    live: Vec<bool>,
    /// Partitions of failed tasks: paused, their records dropped (never delivered, never
    /// committed) until the next rebalance gives them to a live task.
    frozen: BTreeSet<TopicPartition>,
    /// Per assigned partition, one past the last offset routed to its task.
    read_to: HashMap<TopicPartition, i64>,
    /// The last lookup: records arrive in runs of one partition.
    last: Option<Last>,
}

#[derive(Debug)]
struct Last {
    topic: Arc<str>,
    partition: i32,
    owner: Option<usize>,
    /// One past the last offset routed in this run, not yet in `read_to`.
    read_to: Option<i64>,
}

impl Routing {
    /// `live`: the tasks started so far, and whether each is alive.
    pub(crate) fn new(live: Vec<bool>) -> Self {
        Self {
            owner: HashMap::new(),
            live,
            frozen: BTreeSet::new(),
            read_to: HashMap::new(),
            last: None,
        }
    }

    fn load(&self, task: usize) -> usize {
        self.owner.values().filter(|t| **t == task).count()
    }

    /// Moves the run's position into `read_to` and forgets the run.
    fn end_run(&mut self) {
        if let Some(Last {
            topic,
            partition,
            read_to: Some(end),
            ..
        }) = self.last.take()
        {
            self.read_to
                .insert(TopicPartition { topic, partition }, end);
        }
    }

    /// Gives newly assigned partitions to the least loaded live tasks; a partition that
    /// finds no idle task first asks `start` for a new one (its id, or None when no more
    /// may start). Returns the partitions grouped by task; empty when no task is alive.
    pub(crate) fn add(
        &mut self,
        partitions: &[TopicPartition],
        start: &mut dyn FnMut() -> Option<usize>,
    ) -> BTreeMap<usize, Vec<TopicPartition>> {
        self.end_run();
        let mut sorted: Vec<&TopicPartition> = partitions.iter().collect();
        sorted.sort();
        let mut loads: Vec<usize> = (0..self.live.len()).map(|t| self.load(t)).collect();
        let mut out: BTreeMap<usize, Vec<TopicPartition>> = BTreeMap::new();
        let mut can_start = true;
        for tp in sorted {
            let best = (0..self.live.len())
                .filter(|t| self.live[*t])
                .min_by_key(|t| (loads[*t], *t));
            let task = match best {
                Some(t) if loads[t] == 0 => t,
                _ => match if can_start { start() } else { None } {
                    Some(new) => {
                        if self.live.len() <= new {
                            self.live.resize(new + 1, false);
                            loads.resize(new + 1, 0);
                        }
                        self.live[new] = true;
                        new
                    }
                    None => {
                        can_start = false;
                        match best {
                            Some(t) => t,
                            None => break,
                        }
                    }
                },
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
        self.end_run();
        let mut out: BTreeMap<usize, Vec<TopicPartition>> = BTreeMap::new();
        for tp in partitions {
            self.frozen.remove(tp);
            self.read_to.remove(tp);
            if let Some(task) = self.owner.remove(tp)
                && self.live.get(task).copied().unwrap_or(false)
            {
                out.entry(task).or_default().push(tp.clone());
            }
        }
        out
    }

    /// The task for a record; None for a partition not assigned or frozen. A record given
    /// a task counts as read (see [`Self::read_positions`]).
    pub(crate) fn route(&mut self, topic: &Arc<str>, partition: i32, offset: i64) -> Option<usize> {
        if let Some(last) = &mut self.last
            && last.partition == partition
            && Arc::ptr_eq(&last.topic, topic)
        {
            if last.owner.is_some() {
                last.read_to = Some(offset + 1);
            }
            return last.owner;
        }
        self.end_run();
        let tp = TopicPartition {
            topic: topic.clone(),
            partition,
        };
        let owner = if self.frozen.contains(&tp) {
            None
        } else {
            self.owner.get(&tp).copied()
        };
        self.last = Some(Last {
            topic: topic.clone(),
            partition,
            owner,
            read_to: owner.map(|_| offset + 1),
        });
        owner
    }

    /// Per assigned partition, one past the last offset routed to a task.
    pub(crate) fn read_positions(&mut self) -> &HashMap<TopicPartition, i64> {
        self.end_run();
        &self.read_to
    }

    /// A task failed: freezes its partitions and returns them (to pause).
    pub(crate) fn fail(&mut self, task: usize) -> Vec<TopicPartition> {
        self.end_run();
        if let Some(live) = self.live.get_mut(task) {
            *live = false;
        }
        let parts: Vec<TopicPartition> = self
            .owner
            .iter()
            .filter(|(_, t)| **t == task)
            .map(|(tp, _)| tp.clone())
            .collect();
        self.frozen.extend(parts.iter().cloned());
        parts
    }

    /// The task that holds a partition, if any.
    pub(crate) fn owner_of(&self, tp: &TopicPartition) -> Option<usize> {
        self.owner.get(tp).copied()
    }

    pub(crate) fn is_frozen(&self, tp: &TopicPartition) -> bool {
        self.frozen.contains(tp)
    }

    /// The partitions of failed tasks.
    pub(crate) fn frozen(&self) -> &BTreeSet<TopicPartition> {
        &self.frozen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(topic: &str, n: i32) -> Vec<TopicPartition> {
        (0..n).map(|p| TopicPartition::new(topic, p)).collect()
    }

    /// No task may start.
    fn none() -> Option<usize> {
        None
    }

    #[test]
    fn a_task_starts_only_for_a_partition_that_finds_no_idle_task() {
        let mut r = Routing::new(vec![true]);
        let mut started = 1;
        let mut start = || {
            (started < 4).then(|| {
                started += 1;
                started - 1
            })
        };
        let groups = r.add(&tps("t", 2), &mut start);
        assert_eq!(groups.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        // tasks.max=4 and 6 more partitions: two more tasks, then the partitions share.
        let groups = r.add(&tps("u", 6), &mut start);
        let sizes: Vec<usize> = groups.values().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 1, 2, 2], "{groups:?}");
        assert_eq!(started, 4, "never more than tasks.max");
        // A partition for a connector at its limit never asks again in the same round.
        let mut asked = 0;
        r.add(&tps("v", 3), &mut || {
            asked += 1;
            None
        });
        assert_eq!(asked, 1);
    }

    #[test]
    fn read_positions_follow_routed_records_and_leave_with_their_partition() {
        let mut r = Routing::new(vec![true]);
        r.add(&tps("t", 2), &mut none);
        let t: Arc<str> = "t".into();
        for o in 0..5 {
            r.route(&t, 0, o);
        }
        r.route(&t, 1, 7);
        r.route(&t, 0, 5);
        // Not assigned: not read.
        assert_eq!(r.route(&t, 9, 3), None);
        let read = r.read_positions().clone();
        assert_eq!(
            read,
            HashMap::from([
                (TopicPartition::new("t", 0), 6),
                (TopicPartition::new("t", 1), 8)
            ])
        );
        r.route(&t, 1, 8);
        r.remove(&[TopicPartition::new("t", 0)]);
        assert_eq!(
            r.read_positions().clone(),
            HashMap::from([(TopicPartition::new("t", 1), 9)])
        );
    }

    #[test]
    fn partitions_spread_evenly_and_stay_put() {
        let mut r = Routing::new(vec![true; 3]);
        let groups = r.add(&tps("t", 7), &mut none);
        let sizes: Vec<usize> = groups.values().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 2, 2]);
        let topic: Arc<str> = "t".into();
        let owner = r.route(&topic, 4, 0);
        assert_eq!(r.route(&topic, 4, 0), owner, "cached lookup agrees");
        // Incremental additions go to the least loaded tasks.
        let more = r.add(
            &[TopicPartition::new("u", 0), TopicPartition::new("u", 1)],
            &mut none,
        );
        assert_eq!(more.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(r.route(&topic, 99, 0), None);
    }

    #[test]
    fn removal_reports_the_holders() {
        let mut r = Routing::new(vec![true; 2]);
        r.add(&tps("t", 4), &mut none);
        let gone = r.remove(&[TopicPartition::new("t", 0), TopicPartition::new("t", 1)]);
        assert_eq!(gone.values().map(Vec::len).sum::<usize>(), 2);
        assert_eq!(r.route(&"t".into(), 0, 0), None);
    }

    #[test]
    fn a_failed_task_freezes_its_partitions_until_they_are_reassigned() {
        let mut r = Routing::new(vec![true; 2]);
        r.add(&tps("t", 4), &mut none);
        let topic: Arc<str> = "t".into();
        let frozen = r.fail(0);
        assert_eq!(frozen.len(), 2);
        for tp in &frozen {
            assert!(r.is_frozen(tp));
            assert_eq!(
                r.route(&topic, tp.partition, 0),
                None,
                "records of a failed task are not routed"
            );
        }
        // A rebalance hands everything to the live task.
        r.remove(&tps("t", 4));
        let groups = r.add(&tps("t", 4), &mut none);
        assert_eq!(groups.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert!(!r.is_frozen(&TopicPartition::new("t", 0)));
        r.fail(1);
        assert!(
            r.add(&tps("v", 1), &mut none).is_empty(),
            "no live task to give it to"
        );
    }
}
