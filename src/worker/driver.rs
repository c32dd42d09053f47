//! The sink side of a task: owns the [`SinkTask`], hands it batches, asks it for committable
//! offsets and records them. Runs as a tokio task; the consumer side (see `consumer.rs`)
//! talks to it through a bounded channel, which is the backpressure between Kafka and the
//! sink.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use ferry_connector_api::backoff::{Backoff, Deadline, Jitter, sleep_unless};
use ferry_connector_api::{
    Assigned, CommitRequester, ErrantRecordReporter, OffsetAndMetadata, Offsets, RecordError,
    SinkRecord, SinkTask, Stage, TaskError, TopicPartition,
};
use ferry_transforms::{Chain, Transform};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::dead_letter::Pending;
use super::originals::{Originals, Unchanged};
use super::status::{TaskState, TaskStatus};
use crate::convert::Decoder;
use crate::offsets::{Commits, FileOffsetStore};

/// Messages from the consumer thread.
#[derive(Debug)]
pub(crate) enum Command {
    /// Records in offset order per partition.
    Records(Vec<SinkRecord>),
    Assigned(Vec<Assigned>),
    /// Flush (within the bound given, which the consumer waits for the answer), answer the
    /// offsets to commit (None: nothing safe to commit), then close the partitions.
    Revoked(
        Vec<TopicPartition>,
        Duration,
        oneshot::Sender<Option<Commits>>,
    ),
    /// Flush (within the bound given), answer the offsets to commit, stop the task.
    Shutdown(Duration, oneshot::Sender<Option<Commits>>),
}

/// Why offsets are being committed, for the log line.
#[derive(Debug, Clone, Copy)]
enum Reason {
    Interval,
    /// The task asked (`CommitRequester`).
    Requested,
    Revoke,
    Shutdown,
    /// The originals kept for the reporters are over their bound.
    Originals,
}

/// How many more checkpoints a revoke or shutdown runs for a task that keeps requesting
/// commits (a sink that can only deliver some records once their destination is recorded
/// in a commit, such as a new BigQuery write stream).
const REQUESTED_ROUNDS: usize = 3;

/// A task's commit requests: set by the task, taken by its driver.
#[derive(Debug, Default)]
pub(crate) struct CommitRequests {
    pending: AtomicBool,
    notify: tokio::sync::Notify,
}

impl CommitRequester for CommitRequests {
    fn request_commit(&self) {
        self.pending.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

impl CommitRequests {
    fn take(&self) -> bool {
        self.pending.swap(false, Ordering::AcqRel)
    }
}

pub(crate) struct Driver {
    pub(crate) task: Box<dyn SinkTask>,
    pub(crate) status: Arc<TaskStatus>,
    pub(crate) store: Option<Arc<FileOffsetStore>>,
    pub(crate) flush_interval: Duration,
    pub(crate) flush_timeout: Duration,
    pub(crate) retry_delay_max: Duration,
    /// `errors.retry.timeout`: how long retriable errors are retried before the records
    /// become record errors (None: for ever).
    pub(crate) retry_timeout: Option<Duration>,
    /// Positions for the consumer thread to commit to the group asynchronously.
    pub(crate) commits: std_mpsc::Sender<Commits>,
    /// Cancelled at shutdown: a batch being retried is abandoned (not consumed).
    pub(crate) cancel: CancellationToken,
    /// Raised when this task fails, so the consumer pauses the task's partitions.
    pub(crate) failed: Arc<AtomicBool>,
    /// The task's requests for an early commit (the same object is in its `TaskContext`).
    pub(crate) requests: Arc<CommitRequests>,
    pub(crate) assigned: BTreeSet<TopicPartition>,
    /// Decodes keys and values of structured converters before `put`.
    pub(crate) decoder: Decoder,
    /// Where records that do not decode go (`errors.tolerance`); the task's own reporter.
    pub(crate) errant: Arc<dyn ErrantRecordReporter>,
    /// Dead letters not yet acknowledged: no offset is committed past them.
    pub(crate) dead_letters: Arc<Pending>,
    /// The TRANSFORMATION stage, between decoding and `put` (empty: no stage at all).
    pub(crate) transforms: Arc<Chain>,
    /// The originals of transformed records the sink holds, for the reporters (kept only
    /// with transforms and a reporter that shows record contents).
    pub(crate) originals: Option<Arc<Originals>>,
    /// Per partition, one past the last offset the sink accepted in `put` or the runtime
    /// skipped (a record that did not decode or failed a transform, under
    /// `errors.tolerance=all`, or that a Filter dropped).
    pub(crate) consumed: Offsets,
    /// Per partition, one past the last offset the sink accepted in `put`.
    pub(crate) given: Offsets,
    /// Per partition, records the runtime skipped after the last one the sink was given.
    pub(crate) skipped_tail: BTreeMap<TopicPartition, SkippedTail>,
    /// Last positions recorded, to skip commits that would change nothing.
    pub(crate) committed: Commits,
}

/// Records skipped by the runtime at the end of what a partition has delivered so far. A
/// sink that tracks acknowledgements itself (a [`Watermark`](ferry_connector_api::Watermark))
/// never saw them, so its safe offset stops before them; once it has acknowledged
/// everything it was given, they are safe too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SkippedTail {
    /// One past the last record the sink was given, if it was given any since assignment.
    after_given: Option<i64>,
    /// One past the last skipped record.
    end: i64,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("connector", &self.status.connector)
            .field("task", &self.status.task_id)
            .finish()
    }
}

impl Driver {
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let start = tokio::time::Instant::now() + self.flush_interval;
        let mut tick = tokio::time::interval_at(start, self.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let result = tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => break,
                    Some(cmd) => self.handle(cmd).await,
                },
                _ = tick.tick() => self.commit_now(Reason::Interval).await,
                _ = self.requests.notify.notified() => {
                    if self.requests.take() {
                        self.commit_now(Reason::Requested).await
                    } else {
                        Ok(false)
                    }
                }
            };
            match result {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    self.fail(e).await;
                    // Keep answering the consumer thread until it hangs up, so it never
                    // waits on a dead task.
                    while let Some(cmd) = rx.recv().await {
                        match cmd {
                            Command::Revoked(_, _, reply) | Command::Shutdown(_, reply) => {
                                let _ = reply.send(None);
                            }
                            Command::Records(_) | Command::Assigned(_) => {}
                        }
                    }
                    return;
                }
            }
        }
        // The consumer thread hung up without a Shutdown (it failed): release the sink.
        if let Err(e) = self.task.stop().await {
            tracing::warn!(connector = %self.status.connector, task = self.status.task_id, error = %e.one_line(), "Sink task did not stop cleanly.");
        }
    }

    /// A checkpoint whose positions go to the consumer thread for the group commit.
    async fn commit_now(&mut self, reason: Reason) -> Result<bool, TaskError> {
        if let Some(offsets) = self.checkpoint(reason, self.flush_timeout).await? {
            // The consumer thread may be gone at shutdown; the final commit happens
            // through `Shutdown` then.
            let _ = self.commits.send(offsets);
        }
        Ok(false)
    }

    /// The last checkpoint before partitions go, and the few more the task asks for, all
    /// within `within` (the handover bound of a revoke or stop, not offset.flush.timeout.ms).
    async fn final_checkpoint(
        &mut self,
        reason: Reason,
        within: Duration,
    ) -> Result<Option<Commits>, TaskError> {
        let deadline = tokio::time::Instant::now() + within;
        // Dead letters still in flight hold their partitions' offsets: give them half the
        // bound to be acknowledged, the flush the rest.
        self.dead_letters.settle(within / 2).await;
        self.requests.take();
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut positions = self.checkpoint(reason, left()).await?;
        for _ in 0..REQUESTED_ROUNDS {
            if !self.requests.take() {
                break;
            }
            if let Some(more) = self.checkpoint(reason, left()).await? {
                positions.get_or_insert_with(Commits::new).extend(more);
            }
        }
        Ok(positions)
    }

    /// Returns Ok(true) when the task has stopped.
    async fn handle(&mut self, cmd: Command) -> Result<bool, TaskError> {
        match cmd {
            Command::Records(batch) => {
                self.deliver(batch).await?;
                Ok(false)
            }
            Command::Assigned(partitions) => {
                self.assigned
                    .extend(partitions.iter().map(|a| a.partition.clone()));
                self.status.metrics.partitions(self.assigned.len());
                self.task.open(&partitions).await?;
                Ok(false)
            }
            Command::Revoked(partitions, within, reply) => {
                let offsets = self.final_checkpoint(Reason::Revoke, within).await?;
                let _ = reply.send(offsets);
                self.task.close(&partitions).await?;
                if let Some(o) = &self.originals {
                    o.revoked(&partitions);
                }
                for tp in &partitions {
                    self.assigned.remove(tp);
                    self.consumed.remove(tp);
                    self.given.remove(tp);
                    self.skipped_tail.remove(tp);
                    self.committed.remove(tp);
                }
                self.status.metrics.partitions(self.assigned.len());
                Ok(false)
            }
            Command::Shutdown(within, reply) => {
                let offsets = self.final_checkpoint(Reason::Shutdown, within).await?;
                let _ = reply.send(offsets);
                let partitions: Vec<_> = self.assigned.iter().cloned().collect();
                self.task.close(&partitions).await?;
                self.task.stop().await?;
                self.status.set_state(TaskState::Stopped);
                Ok(true)
            }
        }
    }

    /// Decodes a batch, then hands it to the sink, retrying retriable errors with backoff
    /// until it is accepted or the task is cancelled (then the batch counts as not
    /// consumed, records skipped while decoding included).
    async fn deliver(&mut self, mut batch: Vec<SinkRecord>) -> Result<(), TaskError> {
        // Records of partitions revoked while they were queued belong to the new owner.
        // Batches come in runs of one partition, so decide once per run.
        let mut run: Option<(Arc<str>, i32, bool)> = None;
        batch.retain(|r| match &run {
            Some((topic, partition, keep)) if same_partition(topic, *partition, r) => *keep,
            _ => {
                let keep = self.assigned.contains(&r.topic_partition());
                run = Some((r.consumed_topic().clone(), r.partition, keep));
                keep
            }
        });
        if batch.is_empty() {
            return Ok(());
        }
        // A dead-letter outage: stop taking records once its backlog is at its bound.
        tokio::select! {
            _ = self.dead_letters.room() => {}
            _ = self.cancel.cancelled() => return Ok(()),
        }
        self.status.metrics.read(batch.len());
        let mut skipped = Vec::new();
        let mut retry = self.retry_policy().start();
        let fatal = loop {
            let give_up = retry.expired();
            match self.decode(&mut batch, &mut skipped, give_up) {
                Ok(fatal) => break fatal,
                Err(reason) => {
                    self.status.metrics.retry();
                    // Past errors.retry.timeout: the next pass makes them record errors.
                    let Ok(wait) = retry.next_wait() else {
                        continue;
                    };
                    tracing::warn!(
                        connector = %self.status.connector,
                        task = self.status.task_id,
                        error = %reason,
                        retry_in_ms = wait.as_millis() as u64,
                        "Records cannot be decoded yet; retrying the batch."
                    );
                    if !sleep_unless(wait, self.cancel.cancelled()).await {
                        return Ok(());
                    }
                }
            }
        };
        // A transform error comes before any decoding error left in the batch: the batch
        // was cut at the latter, and the former is in what remains.
        let fatal = self.transform(&mut batch, &mut skipped).or(fatal);
        let mut retry = self.retry_policy().start();
        while !batch.is_empty() {
            let started = std::time::Instant::now();
            let put = self.task.put(&batch).await;
            self.status.metrics.put_time(started.elapsed());
            match put {
                Ok(()) => break,
                Err(e) if e.is_retriable() => {
                    let Ok(wait) = retry.next_wait() else {
                        self.give_up_put(&mut batch, &mut skipped, &e)?;
                        continue;
                    };
                    self.status.metrics.retry();
                    tracing::warn!(
                        connector = %self.status.connector,
                        task = self.status.task_id,
                        error = %e.one_line(),
                        retry_in_ms = wait.as_millis() as u64,
                        records = batch.len(),
                        "Sink could not take the batch; retrying it."
                    );
                    if !sleep_unless(wait, self.cancel.cancelled()).await {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let mut bytes = 0u64;
        for (i, r) in batch.iter().enumerate() {
            bytes += r.size() as u64;
            let run_ends = batch
                .get(i + 1)
                .is_none_or(|next| !same_partition(r.consumed_topic(), r.partition, next));
            if run_ends {
                let tp = r.topic_partition();
                self.consumed.insert(tp.clone(), r.offset + 1);
                self.given.insert(tp.clone(), r.offset + 1);
                self.skipped_tail.remove(&tp);
            }
        }
        for (tp, offset) in skipped {
            let end = offset + 1;
            let consumed = self.consumed.entry(tp.clone()).or_insert(end);
            *consumed = (*consumed).max(end);
            let after_given = self.given.get(&tp).copied();
            if after_given.is_none_or(|g| offset >= g) {
                self.skipped_tail
                    .entry(tp)
                    .and_modify(|t| t.end = t.end.max(end))
                    .or_insert(SkippedTail { after_given, end });
            }
        }
        self.status.add_delivered(batch.len() as u64, bytes);
        self.status.metrics.sent(batch.len(), bytes);
        if let Some(e) = fatal {
            return Err(e);
        }
        // The originals of what the sink holds are over their bound: a checkpoint forgets
        // those of delivered records.
        if self.originals.as_ref().is_some_and(|o| o.checkpoint_due()) {
            self.commit_now(Reason::Originals).await?;
        }
        Ok(())
    }

    /// Decodes the batch's keys and values in place. A record that does not decode goes to
    /// the errant reporter: under `errors.tolerance=all` it leaves the batch and its
    /// partition and offset are added to `skipped`; else the batch is cut before it and
    /// the reporter's error is returned, to fail the task once the records before it are
    /// delivered. A record that cannot be decoded *yet* (its schema registry is
    /// unreachable) stops decoding with the reason as the error: the records from it on
    /// stay undecoded, and decoding the batch again goes on from there.
    fn decode(
        &mut self,
        batch: &mut Vec<SinkRecord>,
        skipped: &mut Vec<(TopicPartition, i64)>,
        give_up: bool,
    ) -> Result<Option<TaskError>, String> {
        if !self.decoder.is_active() {
            return Ok(None);
        }
        let (decoder, errant) = (&mut self.decoder, &self.errant);
        // Decoding a batch of alerts takes milliseconds: off the async workers' hands.
        tokio::task::block_in_place(|| {
            let mut fatal = None;
            let mut retry = None;
            batch.retain_mut(|r| {
                if fatal.is_some() {
                    // The task fails at this record: nothing from it on is given.
                    return false;
                }
                if retry.is_some() {
                    return true;
                }
                let Err(e) = decoder.decode(r) else {
                    return true;
                };
                // Past errors.retry.timeout, a record that cannot be decoded yet is a
                // record error like any other.
                if e.is_retriable() && !give_up {
                    retry = Some(format!("{}: {e}", r.coordinates()));
                    return true;
                }
                match errant.report(r, &e.record_error()) {
                    Ok(()) => {
                        skipped.push((r.topic_partition(), r.offset));
                        false
                    }
                    Err(e) => {
                        fatal = Some(e);
                        false
                    }
                }
            });
            retry.map_or(Ok(fatal), Err)
        })
    }

    /// [`retry_backoff`] until `errors.retry.timeout` has passed since the first try (for
    /// ever without one).
    fn retry_policy(&self) -> Backoff {
        let policy = retry_backoff(self.retry_delay_max);
        match self.retry_timeout {
            Some(t) => policy.deadline(Deadline::After(t)),
            None => policy,
        }
    }

    /// The sink kept failing retriably for `errors.retry.timeout`: each record of the batch
    /// is a record error at stage TASK_PUT (logged, sent to the dead-letter queue, skipped
    /// under `errors.tolerance=all`; the task fails under `none`).
    fn give_up_put(
        &mut self,
        batch: &mut Vec<SinkRecord>,
        skipped: &mut Vec<(TopicPartition, i64)>,
        e: &TaskError,
    ) -> Result<(), TaskError> {
        let timeout_ms = self.retry_timeout.unwrap_or_default().as_millis();
        let error = ferry_connector_api::RecordError::new(format!(
            "{} (still failing after errors.retry.timeout={timeout_ms} ms)",
            e.one_line()
        ));
        for r in batch.iter() {
            self.errant.report(r, &error)?;
            skipped.push((r.topic_partition(), r.offset));
        }
        batch.clear();
        Ok(())
    }

    /// The TRANSFORMATION stage: runs the chain on each record. A record a Filter drops, and
    /// one whose transform fails under `errors.tolerance=all`, leave the batch and go to
    /// `skipped`, so that their offsets become committable in order like those of records
    /// that did not decode. A failure under `none` cuts the batch before the record and is
    /// returned, to fail the task once the records before it are delivered.
    fn transform(
        &mut self,
        batch: &mut Vec<SinkRecord>,
        skipped: &mut Vec<(TopicPartition, i64)>,
    ) -> Option<TaskError> {
        if self.transforms.is_empty() {
            return None;
        }
        let (chain, errant, originals) = (&self.transforms, &self.errant, &self.originals);
        tokio::task::block_in_place(|| {
            let records = std::mem::take(batch);
            batch.reserve(records.len());
            for r in records {
                // What the record was read as, for the error reporters (the log, a
                // dead-letter queue): its bytes, not its decoded form, which the
                // transforms may take over without a copy.
                let read = Unchanged::of(&r);
                match chain.apply(r) {
                    Ok(Some(t)) => {
                        if let Some(o) = originals {
                            o.keep(read);
                        }
                        batch.push(t);
                    }
                    Ok(None) => skipped.push((read.topic_partition(), read.offset)),
                    Err(e) => {
                        // A header the header converter cannot write fails at its stage.
                        let stage = e.stage.unwrap_or(Stage::Transformation);
                        let error = RecordError::at(stage, e.to_string()).with_class(e.class);
                        let read = read.into_record();
                        match errant.report(&read, &error) {
                            Ok(()) => skipped.push((read.topic_partition(), read.offset)),
                            // The task fails at this record: nothing from it on is given.
                            Err(fatal) => return Some(fatal),
                        }
                    }
                }
            }
            None
        })
    }

    /// The sink's safe offsets, extended over records the runtime skipped after everything
    /// the sink was given (see [`SkippedTail`]).
    fn extend_over_skipped(&self, mut safe: Offsets) -> Offsets {
        for (tp, tail) in &self.skipped_tail {
            let sink_done = match (safe.get(tp), tail.after_given) {
                (Some(s), Some(given)) => *s >= given,
                // The sink was given nothing of this partition since it was assigned.
                (_, None) => true,
                (None, Some(_)) => false,
            };
            if sink_done {
                safe.insert(tp.clone(), tail.end);
            }
        }
        safe
    }

    /// Asks the sink what is safe to commit, and its metadata for it, and records both in
    /// the file store. Returns the positions for the group commit, or None when there is
    /// nothing to commit or the flush did not complete within `timeout` (the next interval
    /// tries again).
    async fn checkpoint(
        &mut self,
        reason: Reason,
        timeout: Duration,
    ) -> Result<Option<Commits>, TaskError> {
        let started = std::time::Instant::now();
        let flushed = tokio::time::timeout(timeout, self.task.pre_commit(&self.consumed)).await;
        self.status.metrics.flush_time(started.elapsed());
        if !matches!(flushed, Ok(Ok(_))) {
            self.status.metrics.commit_skipped();
        }
        if let Some(reason) = self.dead_letters.failure() {
            return Err(TaskError::fatal(reason));
        }
        let safe = match flushed {
            // Never past a record whose dead letter is not acknowledged yet.
            Ok(Ok(safe)) => {
                if let Some(o) = &self.originals {
                    o.delivered(&safe);
                }
                self.dead_letters.cap(self.extend_over_skipped(safe))
            }
            Ok(Err(e)) if e.is_retriable() => {
                tracing::warn!(connector = %self.status.connector, task = self.status.task_id, error = %e.one_line(), ?reason, "Flush failed; offsets not committed this time.");
                return Ok(None);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                let bound = match reason {
                    Reason::Revoke => {
                        "the handover bound (nine tenths of the consumer's max.poll.interval.ms)"
                    }
                    Reason::Shutdown => "nine tenths of task.shutdown.graceful.timeout.ms",
                    Reason::Interval | Reason::Requested | Reason::Originals => {
                        "offset.flush.timeout.ms"
                    }
                };
                tracing::warn!(connector = %self.status.connector, task = self.status.task_id, timeout_ms = timeout.as_millis() as u64, ?reason, "Flush did not finish within {bound}; offsets not committed this time.");
                return Ok(None);
            }
        };
        // Never past what was consumed, never for a partition this task does not own, never
        // backwards.
        let safe: Commits = safe
            .into_iter()
            .filter_map(|(tp, o)| {
                let o = o.min(*self.consumed.get(&tp)?);
                let forward = self.committed.get(&tp).is_none_or(|c| o >= c.offset);
                (forward && self.assigned.contains(&tp)).then_some((tp, o))
            })
            .map(|(tp, o)| {
                let metadata = self.task.commit_metadata(&tp, o);
                (tp, OffsetAndMetadata::new(o, metadata))
            })
            .collect();
        let changed: Commits = safe
            .iter()
            .filter(|(tp, o)| self.committed.get(*tp) != Some(*o))
            .map(|(tp, c)| (tp.clone(), c.clone()))
            .collect();
        if !changed.is_empty() {
            let written = match &self.store {
                Some(store) => tokio::task::block_in_place(|| store.commit(&self.status.connector, &changed))
                    .map_err(|e| {
                        // The group commit still goes ahead: it only records delivered offsets.
                        tracing::error!(connector = %self.status.connector, task = self.status.task_id, error = %e, "Could not write the offset file; a restart would resume from older offsets and redeliver. Retrying at the next flush.");
                    })
                    .is_ok(),
                None => true,
            };
            tracing::info!(
                connector = %self.status.connector,
                task = self.status.task_id,
                ?reason,
                partitions = changed.len(),
                offsets = %summarize(&changed),
                "Committing offsets."
            );
            // Told even when the file write failed: the group commit records the positions
            // too, and a task that waits for its positions to be recorded (a new write
            // stream) would otherwise hold its records until the file can be written.
            self.task.committed(&changed);
            if written {
                self.committed.extend(changed);
                self.status.metrics.commit_completed();
            } else {
                self.status.metrics.commit_skipped();
            }
        } else {
            // Nothing new to record: complete, as in Connect.
            self.status.metrics.commit_completed();
        }
        // The whole safe set goes to the consumer thread, which commits to the group whatever
        // the group does not have yet — so a refused group commit is retried next time.
        Ok((!safe.is_empty()).then_some(safe))
    }

    async fn fail(&mut self, e: TaskError) {
        let line = e.one_line();
        tracing::error!(
            connector = %self.status.connector,
            task = self.status.task_id,
            error = %line,
            "Task failed; its partitions are paused until the group rebalances or ferry restarts, and its offsets stay at the last commit."
        );
        self.status.set_state(TaskState::Failed(line));
        self.failed.store(true, Ordering::Relaxed);
        if let Err(e) = self.task.stop().await {
            tracing::warn!(connector = %self.status.connector, task = self.status.task_id, error = %e.one_line(), "Sink task did not stop cleanly.");
        }
    }
}

/// Whether `r` was consumed from the partition (a routed record's offsets are its consumed
/// partition's); topic names are shared, so comparing pointers is the fast path.
fn same_partition(topic: &Arc<str>, partition: i32, r: &SinkRecord) -> bool {
    let consumed = r.consumed_topic();
    partition == r.partition && (Arc::ptr_eq(topic, consumed) || **topic == **consumed)
}

/// `topic-partition=offset` pairs, the first few of them.
fn summarize(offsets: &Commits) -> String {
    const SHOWN: usize = 8;
    let mut s: Vec<String> = offsets
        .iter()
        .take(SHOWN)
        .map(|(tp, c)| format!("{tp}={}", c.offset))
        .collect();
    if offsets.len() > SHOWN {
        s.push(format!("… {} more", offsets.len() - SHOWN));
    }
    s.join(" ")
}

/// ±20 % so that tasks hitting the same outage do not retry in lockstep.
/// The runtime's back-off (a batch the sink or a converter cannot take yet, a dead letter
/// that cannot be written yet): waits doubling from 100 ms (Kafka Connect's
/// `RETRIES_DELAY_MIN_MS`) up to `errors.retry.delay.max.ms`, ±20 % so that tasks do not
/// retry in step.
pub(super) fn retry_backoff(delay_max: Duration) -> Backoff {
    Backoff::exponential(Duration::from_millis(100), delay_max).jitter(Jitter::Around(0.2))
}

#[cfg(test)]
mod tests;
