//! The Kafka side of a task: one librdkafka consumer in the connector's group, polled on a
//! thread of its own.
//!
//! A dedicated thread (not a tokio task) because librdkafka runs rebalance callbacks inside
//! `poll`, and the callback for revoked partitions must wait for the sink to flush and for
//! the commit to finish before the partitions go to another member. Blocking there is
//! right on this thread and would be wrong on an async worker.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_connector_api::{Header, Offsets, SinkRecord, TimestampType, TopicPartition};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Headers, Message, Timestamp};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::driver::Command;
use super::status::{TaskState, TaskStatus, lock, now_ms};
use crate::config::Subscription;
use crate::convert::Converter;
use crate::kafka::{RateLimiter, forward_log};
use crate::offsets::FileOffsetStore;

/// A batch goes to the sink when it holds this many records…
const MAX_BATCH_RECORDS: usize = 500;
/// …or this many bytes, or when the consumer has nothing more queued.
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// How long `poll` waits when there is nothing to do.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How often a repeated consumer error is logged.
const ERROR_LOG_PERIOD: Duration = Duration::from_secs(60);
/// Metadata requests (topic discovery, end-of-topic checks) give up after this long.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared between the poll loop and the rebalance callbacks it triggers.
pub(crate) struct Shared {
    pub(crate) status: Arc<TaskStatus>,
    pub(crate) store: Option<Arc<FileOffsetStore>>,
    pub(crate) cmd_tx: mpsc::Sender<Command>,
    pub(crate) rt: Handle,
    pub(crate) flush_timeout: Duration,
    /// Failed or shutting down: do not wait on the driver any more.
    pub(crate) stopping: AtomicBool,
    /// Records read from Kafka and not yet handed to the driver.
    pub(crate) pending: Mutex<Vec<SinkRecord>>,
    /// Offsets partitions were assigned at when taken from the file store.
    pub(crate) file_starts: Mutex<HashMap<TopicPartition, i64>>,
    pub(crate) errors: RateLimiter,
    /// Bumped on every assignment, so the poll loop can forget end-of-partition reports
    /// that predate it.
    pub(crate) assignments: std::sync::atomic::AtomicU64,
    /// What the group has acknowledged, per partition this task holds.
    pub(crate) group_committed: Mutex<Offsets>,
    /// Offsets resumed from the file store, to be committed to the group too, so that the
    /// group never lags behind the file after a restart or rebalance.
    pub(crate) resync: Mutex<Offsets>,
}

/// The librdkafka context of a task's consumer.
pub(crate) struct TaskConsumerContext(pub(crate) Arc<Shared>);

impl ClientContext for TaskConsumerContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let s = &self.0.status;
        forward_log(
            level,
            facility,
            message,
            &format!("{}-{}", s.connector, s.task_id),
        );
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // End-of-partition reports also arrive here; the poll loop handles them.
        if matches!(
            error,
            KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        ) {
            return;
        }
        let s = &self.0.status;
        let line = format!("{error}: {reason}");
        if self.0.errors.allow(&line, ERROR_LOG_PERIOD) {
            tracing::warn!(connector = %s.connector, task = s.task_id, error = %line, "Kafka client error; librdkafka keeps retrying.");
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

fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

fn to_tpl(offsets: &Offsets) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::with_capacity(offsets.len());
    for (tp, o) in offsets {
        tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*o))?;
    }
    Ok(tpl)
}

fn list(parts: &[TopicPartition]) -> String {
    parts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl Shared {
    /// Sends a command, waiting at most `timeout`; false if the driver is gone or slow.
    fn send_within(&self, cmd: Command, timeout: Duration) -> bool {
        let tx = self.cmd_tx.clone();
        matches!(
            self.rt
                .block_on(async move { tokio::time::timeout(timeout, tx.send(cmd)).await }),
            Ok(Ok(()))
        )
    }

    /// Asks the driver to flush and waits for the offsets to commit.
    fn flush_and_wait(
        &self,
        make: impl FnOnce(oneshot::Sender<Option<Offsets>>) -> Command,
    ) -> Option<Offsets> {
        if self.stopping.load(Ordering::Relaxed) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        if !self.send_within(make(tx), self.flush_timeout) {
            return None;
        }
        let timeout = self.flush_timeout;
        self.rt
            .block_on(async move { tokio::time::timeout(timeout, rx).await })
            .ok()
            .and_then(Result::ok)
            .flatten()
    }

    /// Commits to the group whatever it does not have yet of `offsets`.
    fn commit_sync(
        &self,
        consumer: &BaseConsumer<TaskConsumerContext>,
        offsets: &Offsets,
        why: &str,
    ) {
        let s = &self.status;
        let missing: Offsets = {
            let acked = lock(&self.group_committed);
            let resync = lock(&self.resync);
            // Offsets resumed from the file that the group lacks go along, unless the sink
            // reports newer ones for the same partitions.
            let mut wanted = resync.clone();
            wanted.extend(offsets.iter().map(|(tp, o)| (tp.clone(), *o)));
            wanted
                .into_iter()
                .filter(|(tp, o)| acked.get(tp) != Some(o))
                .collect()
        };
        if missing.is_empty() {
            return;
        }
        match to_tpl(&missing).and_then(|tpl| consumer.commit(&tpl, CommitMode::Sync)) {
            Ok(()) => {
                s.last_commit_ms.store(now_ms(), Ordering::Relaxed);
                let mut resync = lock(&self.resync);
                for tp in missing.keys() {
                    resync.remove(tp);
                }
                lock(&self.group_committed).extend(missing);
            }
            Err(e) => {
                tracing::warn!(connector = %s.connector, task = s.task_id, error = %e, why, "Group commit failed; the offset file still holds the delivered offsets.")
            }
        }
    }
}

impl ConsumerContext for TaskConsumerContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let shared = &self.0;
        let s = &shared.status;
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let parts = partitions_of(tpl);
                // Resume order: the file store, else the group's committed offset (librdkafka's
                // default for an unset offset), else auto.offset.reset.
                let mut from_file = 0;
                if let Some(store) = &shared.store {
                    let mut starts = lock(&shared.file_starts);
                    for tp in &parts {
                        if let Some(o) = store.get(&s.connector, &tp.topic, tp.partition)
                            && tpl
                                .set_partition_offset(&tp.topic, tp.partition, Offset::Offset(o))
                                .is_ok()
                        {
                            starts.insert(tp.clone(), o);
                            lock(&shared.resync).insert(tp.clone(), o);
                            from_file += 1;
                        }
                    }
                }
                let result = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = result {
                    tracing::error!(connector = %s.connector, task = s.task_id, error = %e, "Could not take the assigned partitions.");
                    return;
                }
                lock(&s.assigned).extend(parts.iter().cloned());
                s.joined.store(true, Ordering::Relaxed);
                s.caught_up.store(false, Ordering::Relaxed);
                shared.assignments.fetch_add(1, Ordering::Relaxed);
                tracing::info!(connector = %s.connector, task = s.task_id, partitions = %list(&parts), resumed_from_file = from_file, "Partitions assigned.");
                if !parts.is_empty() && !shared.stopping.load(Ordering::Relaxed) {
                    shared.send_within(Command::Assigned(parts), shared.flush_timeout);
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let parts = partitions_of(tpl);
                let revoked: BTreeSet<&TopicPartition> = parts.iter().collect();
                // Records not yet handed over are re-read by the next owner.
                lock(&shared.pending).retain(|r| !revoked.contains(&r.topic_partition()));
                if let Some(offsets) =
                    shared.flush_and_wait(|reply| Command::Revoked(parts.clone(), reply))
                {
                    shared.commit_sync(consumer, &offsets, "revoke");
                } else if !shared.stopping.load(Ordering::Relaxed) {
                    tracing::warn!(connector = %s.connector, task = s.task_id, "The sink did not flush before the partitions were revoked; their new owner resumes from the last commit and may redeliver.");
                }
                let result = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = result {
                    tracing::warn!(connector = %s.connector, task = s.task_id, error = %e, "Could not release the revoked partitions.");
                }
                {
                    let mut assigned = lock(&s.assigned);
                    let mut starts = lock(&shared.file_starts);
                    let mut acked = lock(&shared.group_committed);
                    let mut resync = lock(&shared.resync);
                    for tp in &parts {
                        assigned.remove(tp);
                        starts.remove(tp);
                        acked.remove(tp);
                        resync.remove(tp);
                    }
                }
                tracing::info!(connector = %s.connector, task = s.task_id, partitions = %list(&parts), "Partitions revoked.");
            }
            other => {
                tracing::error!(connector = %s.connector, task = s.task_id, error = ?other, "Rebalance error; releasing all partitions.");
                let _ = consumer.unassign();
                lock(&s.assigned).clear();
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

/// What the poll loop needs besides the consumer.
#[derive(Debug)]
pub(crate) struct PollSettings {
    pub(crate) subscription: Subscription,
    pub(crate) key_converter: Converter,
    pub(crate) value_converter: Converter,
    /// How often `topics.regex` is matched against the cluster's topics.
    pub(crate) metadata_refresh: Duration,
    /// Check whether everything has been read (for `--exit-at-end`).
    pub(crate) exit_at_end: bool,
}

/// Topic names as shared strings, so records do not each allocate their topic.
#[derive(Default)]
struct TopicNames(HashMap<String, Arc<str>>);

impl TopicNames {
    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(t) = self.0.get(name) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(name);
        self.0.insert(name.to_string(), t.clone());
        t
    }
}

fn to_record(
    m: &BorrowedMessage<'_>,
    topics: &mut TopicNames,
    settings: &PollSettings,
) -> SinkRecord {
    let timestamp = match m.timestamp() {
        Timestamp::NotAvailable => None,
        Timestamp::CreateTime(t) => Some((t, TimestampType::CreateTime)),
        Timestamp::LogAppendTime(t) => Some((t, TimestampType::LogAppendTime)),
    };
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| Header {
                    key: h.key.to_string(),
                    value: h.value.map(Bytes::copy_from_slice),
                })
                .collect()
        })
        .unwrap_or_default();
    SinkRecord {
        topic: topics.get(m.topic()),
        partition: m.partition(),
        offset: m.offset(),
        timestamp,
        key: settings.key_converter.convert(m.key()),
        value: settings.value_converter.convert(m.payload()),
        headers,
    }
}

/// The poll loop of one task. Returns when the task's token is cancelled.
pub(crate) fn run(
    consumer: BaseConsumer<TaskConsumerContext>,
    settings: PollSettings,
    commits: std_mpsc::Receiver<Offsets>,
    cancel: CancellationToken,
    latch: Arc<super::ShutdownLatch>,
) {
    let shared = consumer.context().0.clone();
    let mut poller = Poller {
        consumer: &consumer,
        shared: &shared,
        settings: &settings,
        cancel: &cancel,
        topics: TopicNames::default(),
        pending_bytes: 0,
        subscribed: BTreeSet::new(),
        next_refresh: Instant::now(),
        next_end_check: Instant::now(),
        at_eof: BTreeSet::new(),
        eof_generation: 0,
    };
    if let Subscription::Topics(topics) = &settings.subscription {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Err(e) = consumer.subscribe(&names) {
            poller.fail(format!("cannot subscribe to {}: {e}", topics.join(",")));
        }
    }
    // Interval commits run on a thread of their own so that a slow coordinator never
    // stalls consumption. They are synchronous: rust-rdkafka does not deliver asynchronous
    // commit results to the context when the main queue is redirected to the consumer
    // queue, and a definite result is what tells a refused commit to be retried.
    std::thread::scope(|scope| {
        let (shared_ref, consumer_ref) = (&shared, &consumer);
        let committer = scope.spawn(move || {
            loop {
                match commits.recv_timeout(IDLE_POLL) {
                    Ok(offsets) => shared_ref.commit_sync(consumer_ref, &offsets, "interval"),
                    Err(std_mpsc::RecvTimeoutError::Timeout)
                        if !shared_ref.stopping.load(Ordering::Relaxed) => {}
                    Err(_) => break,
                }
            }
        });
        poller.run();
        shared.stopping.store(true, Ordering::Relaxed);
        let _ = committer.join();
    });
    // Leaving the group starts a rebalance, during which the other tasks' final commits
    // would be refused: wait until every task of the connector has committed.
    latch.arrive_and_wait(
        matches!(
            shared.status.state(),
            TaskState::Running | TaskState::Stopped
        ),
        shared.flush_timeout,
    );
    // Dropping the consumer leaves the group (revoke callbacks see `stopping`).
    drop(poller);
    drop(consumer);
}

struct Poller<'a> {
    consumer: &'a BaseConsumer<TaskConsumerContext>,
    shared: &'a Arc<Shared>,
    settings: &'a PollSettings,
    cancel: &'a CancellationToken,
    topics: TopicNames,
    pending_bytes: usize,
    subscribed: BTreeSet<String>,
    next_refresh: Instant,
    next_end_check: Instant,
    /// Partitions librdkafka reported at their end since their last record.
    at_eof: BTreeSet<TopicPartition>,
    eof_generation: u64,
}

impl Poller<'_> {
    fn status(&self) -> &TaskStatus {
        &self.shared.status
    }

    fn run(&mut self) {
        while !self.cancel.is_cancelled() {
            if matches!(self.settings.subscription, Subscription::Regex(_))
                && Instant::now() >= self.next_refresh
            {
                self.refresh_subscription();
                self.next_refresh = Instant::now() + self.settings.metadata_refresh;
            }
            let busy = !lock(&self.shared.pending).is_empty();
            match self
                .consumer
                .poll(if busy { Duration::ZERO } else { IDLE_POLL })
            {
                Some(Ok(m)) => {
                    self.status().caught_up.store(false, Ordering::Relaxed);
                    let record = to_record(&m, &mut self.topics, self.settings);
                    if !self.at_eof.is_empty() {
                        self.at_eof.remove(&record.topic_partition());
                    }
                    self.pending_bytes += record.size();
                    let full = {
                        let mut pending = lock(&self.shared.pending);
                        pending.push(record);
                        pending.len() >= MAX_BATCH_RECORDS
                    };
                    if full || self.pending_bytes >= MAX_BATCH_BYTES {
                        self.hand_over();
                    }
                }
                Some(Err(e)) => self.on_error(e),
                None => {
                    self.hand_over();
                    if self.settings.exit_at_end && Instant::now() >= self.next_end_check {
                        self.check_end();
                        self.next_end_check = Instant::now() + Duration::from_millis(200);
                    }
                }
            }
        }
        if self.status().state() != TaskState::Running {
            return;
        }
        // Graceful stop: records not handed over are not consumed; they are re-read after a
        // restart. Flush what the sink has and commit it.
        lock(&self.shared.pending).clear();
        let shared = self.shared;
        let (tx, rx) = oneshot::channel();
        if shared.send_within(Command::Shutdown(tx), shared.flush_timeout) {
            let timeout = shared.flush_timeout;
            match shared
                .rt
                .block_on(async move { tokio::time::timeout(timeout, rx).await })
            {
                Ok(Ok(Some(offsets))) => shared.commit_sync(self.consumer, &offsets, "shutdown"),
                Ok(Ok(None)) => {}
                _ => {
                    tracing::warn!(connector = %self.status().connector, task = self.status().task_id, "The sink did not flush in time at shutdown; the next start resumes from the last commit.")
                }
            }
        }
    }

    /// Hands the pending records to the driver. When the sink is slower than Kafka the
    /// channel is full: wait, and if that takes long, pause the partitions while still
    /// polling so the group membership and rebalances are served.
    fn hand_over(&mut self) {
        let batch = std::mem::take(&mut *lock(&self.shared.pending));
        self.pending_bytes = 0;
        if batch.is_empty() {
            return;
        }
        let mut cmd = Command::Records(batch);
        let mut paused: Option<rdkafka::TopicPartitionList> = None;
        loop {
            match self.shared.cmd_tx.try_send(cmd) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(c)) => cmd = c,
            }
            if self.cancel.is_cancelled() {
                return;
            }
            let tx = self.shared.cmd_tx.clone();
            let reserved = self.shared.rt.block_on(async move {
                tokio::time::timeout(Duration::from_millis(200), tx.reserve_owned()).await
            });
            match reserved {
                Ok(Ok(permit)) => {
                    permit.send(cmd);
                    break;
                }
                Ok(Err(_)) => return,
                Err(_) => {
                    if paused.is_none()
                        && let Ok(assignment) = self.consumer.assignment()
                        && self.consumer.pause(&assignment).is_ok()
                    {
                        tracing::debug!(connector = %self.status().connector, task = self.status().task_id, "The sink is behind; pausing fetches until it catches up.");
                        paused = Some(assignment);
                    }
                    // Serve callbacks; a record that still arrives is kept for the next batch.
                    if let Some(Ok(m)) = self.consumer.poll(Duration::ZERO) {
                        let record = to_record(&m, &mut self.topics, self.settings);
                        self.pending_bytes += record.size();
                        lock(&self.shared.pending).push(record);
                    }
                }
            }
        }
        if let Some(p) = paused {
            // Only partitions still assigned can be resumed; others were revoked meanwhile.
            let _ = self.consumer.resume(&p);
        }
    }

    fn on_error(&mut self, e: KafkaError) {
        match e {
            KafkaError::PartitionEOF(p) => self.on_eof(p),
            KafkaError::MessageConsumptionFatal(code) => {
                self.fail(format!("the Kafka consumer hit a fatal error: {code}"));
            }
            other => {
                let line = other.to_string();
                if self.shared.errors.allow(&line, ERROR_LOG_PERIOD) {
                    tracing::warn!(connector = %self.status().connector, task = self.status().task_id, error = %line, "Kafka consumer error.");
                }
            }
        }
    }

    fn fail(&mut self, reason: String) {
        let s = self.status();
        tracing::error!(connector = %s.connector, task = s.task_id, error = %reason, "Task failed and will not resume until ferry is restarted; its offsets stay at the last commit.");
        s.set_state(TaskState::Failed(reason));
        self.shared.stopping.store(true, Ordering::Relaxed);
        self.cancel.cancel();
    }

    /// Matches `topics.regex` against the cluster's topics and re-subscribes on a change.
    fn refresh_subscription(&mut self) {
        let md = match self.consumer.fetch_metadata(None, METADATA_TIMEOUT) {
            Ok(md) => md,
            Err(e) => {
                let line = format!("cannot list topics for topics.regex: {e}");
                if self.shared.errors.allow(&line, ERROR_LOG_PERIOD) {
                    tracing::warn!(connector = %self.status().connector, task = self.status().task_id, error = %line, "Topic discovery failed; trying again later.");
                }
                return;
            }
        };
        let matched: BTreeSet<String> = md
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && self.settings.subscription.matches(t.name()))
            .map(|t| t.name().to_string())
            .collect();
        if matched == self.subscribed {
            return;
        }
        let added: Vec<&String> = matched.difference(&self.subscribed).collect();
        let removed: Vec<&String> = self.subscribed.difference(&matched).collect();
        tracing::info!(connector = %self.status().connector, task = self.status().task_id, ?added, ?removed, "Topics matching topics.regex changed; updating the subscription.");
        let result = if matched.is_empty() {
            self.consumer.unsubscribe();
            Ok(())
        } else {
            let names: Vec<&str> = matched.iter().map(String::as_str).collect();
            self.consumer.subscribe(&names)
        };
        match result {
            Ok(()) => self.subscribed = matched,
            Err(e) => {
                tracing::warn!(connector = %self.status().connector, task = self.status().task_id, error = %e, "Could not update the subscription; trying again later.")
            }
        }
    }

    /// For `--exit-at-end`: publishes whether every assigned partition is read to its end.
    ///
    /// librdkafka reports the end of a partition (`enable.partition.eof`) with the partition
    /// number only; when two assigned topics share a partition number the report is
    /// ambiguous, and the watermark is asked instead (slower: it queues behind the fetch
    /// long-poll on the broker connection).
    fn check_end(&mut self) {
        self.forget_stale_eofs();
        let s = &self.shared.status;
        let joined = s.joined.load(Ordering::Relaxed)
            || (matches!(self.settings.subscription, Subscription::Regex(_))
                && self.subscribed.is_empty());
        let caught_up = joined && lock(&self.shared.pending).is_empty() && self.assigned_at_end();
        s.caught_up.store(caught_up, Ordering::Relaxed);
    }

    fn assigned_at_end(&self) -> bool {
        let assigned: Vec<TopicPartition> =
            lock(&self.shared.status.assigned).iter().cloned().collect();
        for tp in &assigned {
            if self.at_eof.contains(tp) {
                continue;
            }
            let ambiguous = assigned
                .iter()
                .filter(|o| o.partition == tp.partition)
                .count()
                > 1;
            if !ambiguous || !self.at_watermark(tp) {
                return false;
            }
        }
        true
    }

    fn at_watermark(&self, tp: &TopicPartition) -> bool {
        let Ok((_, hi)) = self
            .consumer
            .fetch_watermarks(&tp.topic, tp.partition, METADATA_TIMEOUT)
        else {
            return false;
        };
        let position = self.consumer.position().ok().and_then(|p| {
            match p.find_partition(&tp.topic, tp.partition)?.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            }
        });
        position.is_some_and(|o| o >= hi)
    }

    /// End-of-partition reports from before the latest assignment no longer hold.
    fn forget_stale_eofs(&mut self) {
        let generation = self.shared.assignments.load(Ordering::Relaxed);
        if generation != self.eof_generation {
            self.at_eof.clear();
            self.eof_generation = generation;
        }
    }

    /// An end-of-partition report: which assigned partition it is about, if unambiguous.
    fn on_eof(&mut self, partition: i32) {
        self.forget_stale_eofs();
        let assigned = lock(&self.shared.status.assigned);
        let mut matching = assigned.iter().filter(|tp| tp.partition == partition);
        if let (Some(tp), None) = (matching.next(), matching.next()) {
            self.at_eof.insert(tp.clone());
        }
    }
}
