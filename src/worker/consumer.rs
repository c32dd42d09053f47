//! A connector's Kafka consumer: its librdkafka context, the rebalance protocol with the
//! tasks, and group commits.
//!
//! The consumer is polled on a thread of its own (see `poll.rs`), not on the async runtime,
//! because librdkafka runs rebalance callbacks inside `poll` and the callback for revoked
//! partitions must wait until the tasks flushed and the commit finished before the
//! partitions go to another member.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_connector_api::{Assigned, OffsetAndMetadata, SinkRecord, TopicPartition};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::driver::Command;
use super::routing::Routing;
use super::status::{ConsumerStatus, lock, now_ms};
use super::tasks::{TaskFactory, TaskSet};
use crate::kafka::{RateLimiter, forward_log};
use crate::metrics::ConnectorMetrics;
use crate::offsets::{Commits, FileOffsetStore};

/// How often a repeated consumer error is logged.
pub(crate) const ERROR_LOG_PERIOD: Duration = Duration::from_secs(60);
/// How long `poll` waits when there is nothing to do; also the interval at which
/// librdkafka's main queue is served.
pub(crate) const IDLE_POLL: Duration = Duration::from_millis(100);

/// Records read and not yet handed to a task.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) records: Vec<SinkRecord>,
    pub(crate) bytes: usize,
}

/// Which task gets which partition, and the records waiting for each task.
#[derive(Debug)]
pub(crate) struct Dispatch {
    pub(crate) routing: Routing,
    pub(crate) batches: Vec<Batch>,
}

/// State shared between the poll loop and the callbacks librdkafka runs inside `poll`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) connector: String,
    /// The tasks started so far; `factory` starts more as partitions need them.
    pub(crate) tasks: Arc<TaskSet>,
    pub(crate) factory: TaskFactory,
    /// Whether the note that `tasks.max` exceeds the partitions was logged.
    pub(crate) idle_tasks_noted: AtomicBool,
    pub(crate) status: Arc<ConsumerStatus>,
    pub(crate) store: Option<Arc<FileOffsetStore>>,
    pub(crate) rt: Handle,
    /// How long a revoke waits for the tasks to take the revoke, flush and answer (see
    /// [`handover_timeout`]); also how long an assignment waits for them to take it.
    pub(crate) handover_timeout: Duration,
    /// How long a clean stop waits for the tasks' last flush (see [`stop_flush_timeout`]).
    pub(crate) stop_flush_timeout: Duration,
    /// Shutting down: do not wait on the tasks any more.
    pub(crate) stopping: AtomicBool,
    pub(crate) dispatch: Mutex<Dispatch>,
    /// Set by a task's driver when it fails, so the poll loop pauses its partitions.
    pub(crate) task_failed: Arc<AtomicBool>,
    pub(crate) errors: RateLimiter,
    /// Bumped on every assignment, so the poll loop can forget end-of-partition reports
    /// that predate it.
    pub(crate) assignments: AtomicU64,
    /// What the group has acknowledged, per assigned partition.
    pub(crate) group_committed: Mutex<Commits>,
    /// Positions resumed from the file store, to be committed to the group too, so that the
    /// group never lags behind the file after a restart or rebalance.
    pub(crate) resync: Mutex<Commits>,
    /// The connector's Prometheus series.
    pub(crate) metrics: Arc<ConnectorMetrics>,
    /// While a stop waits for the group to take its final commit: what the group still has
    /// to take. A rebalance served meanwhile commits it from here (the tasks have stopped
    /// and cannot be asked) and never hands partitions to the tasks.
    pub(crate) final_commit: Mutex<Option<Commits>>,
}

/// The librdkafka context of a connector's consumer.
pub(crate) struct ConnectorConsumerContext(pub(crate) Arc<Shared>);

impl ClientContext for ConnectorConsumerContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log(level, facility, message, &self.0.connector);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // End-of-partition reports also arrive here; the poll loop handles them.
        if matches!(
            error,
            KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        ) {
            return;
        }
        let line = format!("{error}: {reason}");
        if self.0.errors.allow(&line, ERROR_LOG_PERIOD) {
            tracing::warn!(connector = %self.0.connector, error = %line, "Kafka client error; librdkafka keeps retrying.");
        }
    }

    fn stats(&self, statistics: Statistics) {
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| p.consumer_lag)
            .sum();
        self.0.status.lag.store(lag, Ordering::Relaxed);
    }
}

pub(crate) fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

pub(crate) fn to_tpl(
    partitions: impl IntoIterator<Item = (TopicPartition, Option<i64>)>,
) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (tp, offset) in partitions {
        match offset {
            Some(o) => tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(o))?,
            None => {
                tpl.add_partition(&tp.topic, tp.partition);
            }
        }
    }
    Ok(tpl)
}

/// The positions as a list to commit, metadata included.
fn commit_tpl(commits: &Commits) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (tp, c) in commits {
        tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(c.offset))?;
        if let (Some(m), Some(mut e)) = (&c.metadata, tpl.find_partition(&tp.topic, tp.partition)) {
            e.set_metadata(m);
        }
    }
    Ok(tpl)
}

/// How a group commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitOutcome {
    /// The group has every offset asked for.
    Committed,
    /// Refused for now: the group is rebalancing, its coordinator is moving, loading or
    /// unreachable, or the request timed out. The same commit may succeed once the member
    /// has rejoined or the coordinator is back.
    Retriable,
    /// The group no longer counts this member (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
    /// STALE_MEMBER_EPOCH, FENCED_MEMBER_EPOCH, librdkafka's "assignment lost", or
    /// ILLEGAL_GENERATION once librdkafka has declared the assignment lost): its partitions
    /// belong to the next owner, and committing them again cannot succeed.
    Fenced,
    /// Anything else (authorization, metadata too large, a fatal client error…).
    Other,
}

impl CommitOutcome {
    /// Sorts a failed commit by what trying again can achieve. ILLEGAL_GENERATION is sorted
    /// as librdkafka handles it: when the member is taking part in a rebalance, the commit
    /// merely carried the generation the group just left, and the next try carries the new
    /// one (CI: a worker stopped mid-rebalance got it the moment the group settled); when
    /// the group moved on without the member, librdkafka declares its assignment lost
    /// (`assignment_lost`) and the member is fenced.
    pub(crate) fn of_error(error: &KafkaError, assignment_lost: bool) -> Self {
        use RDKafkaErrorCode as C;
        let KafkaError::ConsumerCommit(code) = error else {
            return Self::Other;
        };
        match code {
            C::RebalanceInProgress
            | C::CoordinatorLoadInProgress
            | C::CoordinatorNotAvailable
            | C::NotCoordinator
            | C::RequestTimedOut
            | C::NetworkException
            | C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::OperationTimedOut
            | C::WaitingForCoordinator => Self::Retriable,
            C::IllegalGeneration if !assignment_lost => Self::Retriable,
            C::IllegalGeneration
            | C::UnknownMemberId
            | C::FencedInstanceId
            | C::StaleMemberEpoch
            | C::FencedMemberEpoch
            | C::AssignmentLost => Self::Fenced,
            _ => Self::Other,
        }
    }
}

/// librdkafka's default `max.poll.interval.ms`.
pub(crate) const MAX_POLL_INTERVAL_DEFAULT: Duration = Duration::from_millis(300_000);

/// How long a revoke waits for the tasks' flush before it commits what they answered: as
/// in Kafka Connect, whose `WorkerSinkTask` commits synchronously on revoke
/// (`closePartitions` → `commitOffsets(closing = true)` → `preCommit`, then `commitSync`)
/// with no `offset.flush.timeout.ms` bound, so a slow flush delays the handover rather
/// than sending the next owner back to the last interval's commit. The bound is the one the
/// group sets: librdkafka runs the callback inside `poll`, and the coordinator waits up to
/// the rebalance timeout (the consumer's `max.poll.interval.ms`) for members to rejoin.
/// Nine tenths of it, leaving the rest for the commit and the rejoin; never less than
/// `offset.flush.timeout.ms`.
pub(crate) fn handover_timeout(max_poll_interval: Duration, flush_timeout: Duration) -> Duration {
    (max_poll_interval - max_poll_interval / 10).max(flush_timeout)
}

/// How long a clean stop waits for the tasks' last flush: nine tenths of
/// `task.shutdown.graceful.timeout.ms`, which bounds the whole stop (a stop that overruns
/// it is abandoned, as Kafka Connect cancels such a task), leaving the rest for the commit.
pub(crate) fn stop_flush_timeout(shutdown_timeout: Duration) -> Duration {
    shutdown_timeout - shutdown_timeout / 10
}

/// How long assignment waits for the group's committed positions (compared with the offset
/// file's, or used where the file has none).
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

/// The group's committed positions of `parts`, with their metadata; empty when the group
/// does not answer in time (librdkafka then resumes from the committed offsets itself,
/// without metadata for the tasks).
fn group_positions(
    consumer: &BaseConsumer<ConnectorConsumerContext>,
    parts: &[TopicPartition],
    connector: &str,
) -> HashMap<TopicPartition, OffsetAndMetadata> {
    let Ok(tpl) = to_tpl(parts.iter().map(|tp| (tp.clone(), None))) else {
        return HashMap::new();
    };
    let committed = match consumer.committed_offsets(tpl, COMMITTED_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(connector, error = %e, "Could not read the group's committed offsets; resuming from them without the sink's commit metadata.");
            return HashMap::new();
        }
    };
    committed
        .elements()
        .iter()
        .filter_map(|e| {
            let Offset::Offset(offset) = e.offset() else {
                return None;
            };
            // rust-rdkafka panics on metadata that is not UTF-8, which only another
            // client could have written; such metadata is none of ferry's.
            let metadata =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| e.metadata().to_string()))
                    .ok()
                    .filter(|m| !m.is_empty());
            Some((
                TopicPartition::new(e.topic(), e.partition()),
                OffsetAndMetadata::new(offset, metadata),
            ))
        })
        .collect()
}

fn list(parts: &[TopicPartition]) -> String {
    const SHOWN: usize = 16;
    let mut s: Vec<String> = parts.iter().take(SHOWN).map(ToString::to_string).collect();
    if parts.len() > SHOWN {
        s.push(format!("… {} more", parts.len() - SHOWN));
    }
    s.join(",")
}

impl Shared {
    /// Sends a command to a task, waiting at most `timeout`; false if it is gone or slow.
    pub(crate) fn send_within(&self, task: usize, cmd: Command, timeout: Duration) -> bool {
        let Some(tx) = self.tasks.link(task).and_then(|l| l.cmd_tx) else {
            return false;
        };
        matches!(
            self.rt
                .block_on(async move { tokio::time::timeout(timeout, tx.send(cmd)).await }),
            Ok(Ok(()))
        )
    }

    /// Asks the given live tasks to flush (with `make` building each one's command), waits
    /// up to `timeout` for all of them together, and returns the offsets they report safe.
    pub(crate) fn flush_tasks(
        &self,
        tasks: impl IntoIterator<Item = usize>,
        timeout: Duration,
        make: impl Fn(usize, oneshot::Sender<Option<Commits>>) -> Command,
    ) -> (Commits, bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut replies = Vec::new();
        let mut complete = true;
        for task in tasks {
            if !self.tasks.link(task).is_some_and(|l| l.status.is_running()) {
                continue;
            }
            let (tx, rx) = oneshot::channel();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.send_within(task, make(task, tx), left) {
                replies.push(rx);
            } else {
                complete = false;
            }
        }
        let answers = self.rt.block_on(async move {
            let mut out = Vec::new();
            for rx in replies {
                out.push(
                    tokio::time::timeout_at(deadline, rx)
                        .await
                        .ok()
                        .and_then(Result::ok),
                );
            }
            out
        });
        let mut merged = Commits::new();
        for answer in answers {
            match answer {
                Some(Some(offsets)) => merged.extend(offsets),
                Some(None) => {}
                None => complete = false,
            }
        }
        (merged, complete)
    }

    /// Commits to the group whatever it does not have yet of `offsets` (plus positions
    /// resumed from the file store), each with its metadata. A refused commit is retried
    /// by the next call; the outcome says whether retrying can help.
    pub(crate) fn commit_sync(
        &self,
        consumer: &BaseConsumer<ConnectorConsumerContext>,
        offsets: &Commits,
        why: &str,
    ) -> CommitOutcome {
        let missing: Commits = {
            let acked = lock(&self.group_committed);
            let mut wanted = lock(&self.resync).clone();
            wanted.extend(offsets.iter().map(|(tp, c)| (tp.clone(), c.clone())));
            wanted
                .into_iter()
                .filter(|(tp, c)| acked.get(tp) != Some(c))
                .collect()
        };
        if missing.is_empty() {
            return CommitOutcome::Committed;
        }
        let tpl = commit_tpl(&missing);
        match tpl.and_then(|tpl| consumer.commit(&tpl, CommitMode::Sync)) {
            Ok(()) => {
                self.status
                    .last_commit_ms
                    .store(now_ms(), Ordering::Relaxed);
                let mut resync = lock(&self.resync);
                for tp in missing.keys() {
                    resync.remove(tp);
                }
                lock(&self.group_committed).extend(missing);
                CommitOutcome::Committed
            }
            Err(e) => {
                let outcome = CommitOutcome::of_error(&e, consumer.assignment_lost());
                let line = e.to_string();
                if self
                    .errors
                    .allow(&format!("commit {line}"), ERROR_LOG_PERIOD)
                    || why == "revoke"
                    || why == "shutdown"
                    || why == "shutdown, revoke"
                    || (why == "shutdown, again" && outcome != CommitOutcome::Retriable)
                {
                    tracing::warn!(connector = %self.connector, error = %line, why, "Group commit failed; the offset file still holds the delivered offsets, and the next flush retries.");
                }
                outcome
            }
        }
    }

    fn on_assign(
        &self,
        consumer: &BaseConsumer<ConnectorConsumerContext>,
        tpl: &mut TopicPartitionList,
        cooperative: bool,
    ) {
        let parts = partitions_of(tpl);
        if lock(&self.final_commit).is_some() {
            self.assign_while_stopping(consumer, tpl, cooperative, &parts);
            return;
        }
        // Resume order: the newer of the offset file's and the group's committed position
        // (the file may be stale: the partition may have been delivered by another worker
        // of the group since this process last had it), else auto.offset.reset. Each
        // position set here goes to the task with its metadata.
        let group = group_positions(consumer, &parts, &self.connector);
        let mut positions: HashMap<TopicPartition, OffsetAndMetadata> = HashMap::new();
        let mut from_file = 0;
        for tp in &parts {
            let file = self
                .store
                .as_ref()
                .and_then(|store| store.get(&self.connector, &tp.topic, tp.partition));
            let chosen = match (file, group.get(tp)) {
                (Some(f), Some(g)) if g.offset > f.offset => {
                    tracing::info!(connector = %self.connector, partition = %tp, file = f.offset, group = g.offset, "The group's committed offset is ahead of the offset file (another worker delivered these records); resuming from the group's.");
                    g.clone()
                }
                (Some(f), _) => {
                    // The file is ahead of the group, or the group has nothing: its position
                    // is committed to the group too (resync), so the group never lags it.
                    from_file += 1;
                    lock(&self.resync).insert(tp.clone(), f.clone());
                    f
                }
                (None, Some(g)) => g.clone(),
                (None, None) => continue,
            };
            if tpl
                .set_partition_offset(&tp.topic, tp.partition, Offset::Offset(chosen.offset))
                .is_ok()
            {
                positions.insert(tp.clone(), chosen);
            }
        }
        let result = if cooperative {
            consumer.incremental_assign(tpl)
        } else {
            consumer.assign(tpl)
        };
        if let Err(e) = result {
            tracing::error!(connector = %self.connector, error = %e, "Could not take the assigned partitions.");
            return;
        }
        lock(&self.status.assigned).extend(parts.iter().cloned());
        self.status.joined.store(true, Ordering::Relaxed);
        self.status.caught_up.store(false, Ordering::Relaxed);
        self.assignments.fetch_add(1, Ordering::Relaxed);
        let groups = {
            let mut dispatch = lock(&self.dispatch);
            let groups = dispatch
                .routing
                .add(&parts, &mut || self.factory.start_next());
            let started = self.tasks.len();
            dispatch.batches.resize_with(started, Batch::default);
            groups
        };
        tracing::info!(connector = %self.connector, partitions = %list(&parts), tasks = groups.len(), resumed_from_file = from_file, "Partitions assigned.");
        self.note_idle_tasks();
        for (task, ps) in groups {
            let ps = ps
                .into_iter()
                .map(|partition| Assigned {
                    committed: positions.get(&partition).cloned(),
                    partition,
                })
                .collect();
            if !self.send_within(task, Command::Assigned(ps), self.handover_timeout)
                && !self.stopping.load(Ordering::Relaxed)
            {
                tracing::warn!(connector = %self.connector, task, "A task did not take its new partitions in time.");
            }
        }
    }

    /// An assignment served while a stop waits for the group to take its final commit: taken
    /// (so that the member completes the rejoin and its commit carries the new generation)
    /// and paused at once. Nothing reaches the stopped tasks, nothing from these partitions
    /// is delivered or committed, and their next owner reads them from the group's commit.
    fn assign_while_stopping(
        &self,
        consumer: &BaseConsumer<ConnectorConsumerContext>,
        tpl: &TopicPartitionList,
        cooperative: bool,
        parts: &[TopicPartition],
    ) {
        let result = if cooperative {
            consumer.incremental_assign(tpl)
        } else {
            consumer.assign(tpl)
        };
        if let Err(e) = result {
            tracing::warn!(connector = %self.connector, error = %e, "Could not take the partitions assigned during the stop.");
            return;
        }
        let _ = consumer.pause(tpl);
        lock(&self.status.assigned).extend(parts.iter().cloned());
        tracing::info!(connector = %self.connector, partitions = %list(parts), "Partitions assigned during the stop; the member holds them (paused, not consumed) until the final commit is done.");
    }

    /// Says once that `tasks.max` is more than the partitions need: Kafka Connect would
    /// start the tasks beyond the partition count and leave them idle; ferry does not start
    /// them until partitions come for them.
    fn note_idle_tasks(&self) {
        let assigned = lock(&self.status.assigned).len();
        let tasks_max = self.factory.tasks_max;
        if assigned > 0
            && assigned < tasks_max
            && !self.idle_tasks_noted.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(connector = %self.connector, tasks_max, partitions = assigned, tasks = self.tasks.len(), "tasks.max is more than the assigned partitions; a task starts only when a partition needs one (in Kafka Connect, tasks beyond the partition count idle).");
        }
    }

    fn on_revoke(
        &self,
        consumer: &BaseConsumer<ConnectorConsumerContext>,
        tpl: &mut TopicPartitionList,
        cooperative: bool,
    ) {
        let parts = partitions_of(tpl);
        let revoked: BTreeSet<&TopicPartition> = parts.iter().collect();
        let groups = {
            let mut dispatch = lock(&self.dispatch);
            // Records not yet handed over are re-read by the next owner.
            for batch in &mut dispatch.batches {
                batch
                    .records
                    .retain(|r| !revoked.contains(&r.topic_partition()));
                batch.bytes = batch.records.iter().map(SinkRecord::size).sum();
            }
            dispatch.routing.remove(&parts)
        };
        let final_commit = lock(&self.final_commit).clone();
        if let Some(offsets) = final_commit {
            // A rebalance served by a stop's final commit: the tasks have stopped and their
            // offsets are known. This is the last moment the partitions are this member's,
            // so commit them now; if the group refuses, the stop tries again after the rejoin.
            if self.commit_sync(consumer, &offsets, "shutdown, revoke") == CommitOutcome::Committed
            {
                *lock(&self.final_commit) = Some(Commits::new());
            }
        } else if !self.stopping.load(Ordering::Relaxed) {
            let within = self.handover_timeout;
            let (offsets, complete) =
                self.flush_tasks(groups.keys().copied(), within, |task, reply| {
                    Command::Revoked(groups[&task].clone(), within, reply)
                });
            self.commit_sync(consumer, &offsets, "revoke");
            if !complete {
                tracing::warn!(connector = %self.connector, timeout_ms = self.handover_timeout.as_millis() as u64, "Not every task flushed within the handover bound (nine tenths of the consumer's max.poll.interval.ms) before the partitions were revoked; their new owner resumes from the last commit and may redeliver.");
            }
        }
        let result = if cooperative {
            consumer.incremental_unassign(tpl)
        } else {
            consumer.unassign()
        };
        if let Err(e) = result {
            tracing::warn!(connector = %self.connector, error = %e, "Could not release the revoked partitions.");
        }
        {
            let mut assigned = lock(&self.status.assigned);
            let mut acked = lock(&self.group_committed);
            let mut resync = lock(&self.resync);
            for tp in &parts {
                assigned.remove(tp);
                acked.remove(tp);
                resync.remove(tp);
            }
        }
        tracing::info!(connector = %self.connector, partitions = %list(&parts), "Partitions revoked.");
    }
}

impl ConsumerContext for ConnectorConsumerContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.0.on_assign(consumer, tpl, cooperative)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.0.on_revoke(consumer, tpl, cooperative)
            }
            other => {
                tracing::error!(connector = %self.0.connector, error = ?other, "Rebalance error; releasing all partitions.");
                let _ = consumer.unassign();
                lock(&self.0.status.assigned).clear();
            }
        }
    }

    // librdkafka's main queue (errors, statistics, and rebalances while closing) is served
    // at this interval inside `poll`; rust-rdkafka's default of 1 s would add up to a second
    // to every shutdown.
    fn main_queue_min_poll_interval(&self) -> rdkafka::util::Timeout {
        rdkafka::util::Timeout::After(IDLE_POLL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoke_waits_nine_tenths_of_the_poll_interval_and_a_stop_of_its_grace() {
        let s = Duration::from_secs;
        assert_eq!(handover_timeout(MAX_POLL_INTERVAL_DEFAULT, s(5)), s(270));
        assert_eq!(handover_timeout(s(10), s(5)), s(9));
        // Never shorter than an interval commit's bound.
        assert_eq!(handover_timeout(s(4), s(5)), s(5));
        assert_eq!(stop_flush_timeout(s(30)), s(27));
        assert_eq!(stop_flush_timeout(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_refused_commit_is_retriable_fenced_or_other_by_its_code() {
        use RDKafkaErrorCode as C;
        let of = |c| CommitOutcome::of_error(&KafkaError::ConsumerCommit(c), true);
        for c in [
            C::RebalanceInProgress,
            C::CoordinatorLoadInProgress,
            C::CoordinatorNotAvailable,
            C::NotCoordinator,
            C::RequestTimedOut,
            C::BrokerTransportFailure,
        ] {
            assert_eq!(of(c), CommitOutcome::Retriable, "{c:?}");
        }
        for c in [
            C::IllegalGeneration,
            C::UnknownMemberId,
            C::FencedInstanceId,
            C::StaleMemberEpoch,
            C::FencedMemberEpoch,
        ] {
            assert_eq!(of(c), CommitOutcome::Fenced, "{c:?}");
        }
        // The member is rejoining: the next try carries the new generation.
        assert_eq!(
            CommitOutcome::of_error(&KafkaError::ConsumerCommit(C::IllegalGeneration), false),
            CommitOutcome::Retriable
        );
        assert_eq!(
            CommitOutcome::of_error(&KafkaError::ConsumerCommit(C::UnknownMemberId), false),
            CommitOutcome::Fenced
        );
        assert_eq!(of(C::GroupAuthorizationFailed), CommitOutcome::Other);
        assert_eq!(
            CommitOutcome::of_error(&KafkaError::Canceled, false),
            CommitOutcome::Other
        );
    }
}
