//! The poll loop of a connector's consumer: reads records, converts them (bytes or text
//! only: structured converters decode in each task's driver, not in this one thread),
//! routes each to the task that owns its partition, and hands batches over. Also discovers
//! topics for `topics.regex`, reports the end of the data for `--exit-at-end`, and pauses
//! the partitions of failed tasks.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferry_connector_api::{CommitRequester, Header, SinkRecord, TimestampType, TopicPartition};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message, Timestamp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::consumer::{
    Batch, CommitOutcome, ConnectorConsumerContext, ERROR_LOG_PERIOD, IDLE_POLL, Shared, to_tpl,
};
use super::driver::Command;
use super::status::{TaskState, Undelivered, lock};
use crate::config::Subscription;
use crate::convert::Converter;

/// A batch goes to its task when it holds this many records, or `PollSettings::batch_bytes`,
/// or when the consumer has nothing more queued.
const MAX_BATCH_RECORDS: usize = 500;
/// Metadata requests (topic discovery) give up after this long.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a stop's refused group commit is tried again.
const STOP_COMMIT_RETRY: Duration = Duration::from_millis(250);

/// With `--exit-at-end`, how often the tasks are asked to commit once everything is read.
const COMMIT_REQUEST_PERIOD: Duration = Duration::from_millis(500);

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
    /// A batch goes to its task at this many bytes.
    pub(crate) batch_bytes: usize,
    /// How often the lag metrics are measured (`ferry.status.interval.ms`); zero: never.
    pub(crate) lag_interval: Duration,
}

/// Topic names as shared strings, so records do not each allocate their topic. The last
/// one is remembered by librdkafka's topic handle (compared, never dereferenced), which
/// skips the name lookup for runs of records from one topic.
#[derive(Default)]
struct TopicNames {
    names: HashMap<String, Arc<str>>,
    last: Option<(usize, Arc<str>)>,
}

impl TopicNames {
    fn get(&mut self, m: &BorrowedMessage<'_>) -> Arc<str> {
        let handle = m.topic_ptr() as usize;
        if let Some((h, t)) = &self.last
            && *h == handle
        {
            return t.clone();
        }
        let name = m.topic();
        let t = match self.names.get(name) {
            Some(t) => t.clone(),
            None => {
                let t: Arc<str> = Arc::from(name);
                self.names.insert(name.to_string(), t.clone());
                t
            }
        };
        self.last = Some((handle, t.clone()));
        t
    }

    /// Starts new shared names. Called when a batch leaves: its records' reference counts
    /// are then decremented by the task's thread while this thread counts up fresh ones,
    /// instead of both hammering one counter.
    fn renew(&mut self) {
        self.names.clear();
        self.last = None;
    }
}

fn to_record(
    m: &BorrowedMessage<'_>,
    topics: &mut TopicNames,
    settings: &PollSettings,
    arena: &mut BytesMut,
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
        topic: topics.get(m),
        original_topic: None,
        partition: m.partition(),
        offset: m.offset(),
        timestamp,
        key: settings.key_converter.convert_in(m.key(), arena),
        value: settings.value_converter.convert_in(m.payload(), arena),
        headers,
    }
}

/// Runs the consumer until `cancel`, then has every task flush and commits their offsets.
pub(crate) fn run(
    consumer: BaseConsumer<ConnectorConsumerContext>,
    settings: PollSettings,
    commits: std_mpsc::Receiver<crate::offsets::Commits>,
    cancel: CancellationToken,
) {
    let shared = consumer.context().0.clone();
    let mut poller = Poller {
        consumer: &consumer,
        shared: &shared,
        settings: &settings,
        cancel: &cancel,
        topics: TopicNames::default(),
        subscribed: BTreeSet::new(),
        next_refresh: Instant::now(),
        next_end_check: Instant::now(),
        at_eof: BTreeSet::new(),
        eof_generation: 0,
        arena: BytesMut::new(),
        frozen_tasks: BTreeSet::new(),
        queued: 0,
        next_commit_request: Instant::now(),
    };
    if let Subscription::Topics(topics) = &settings.subscription {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Err(e) = consumer.subscribe(&names) {
            tracing::error!(connector = %shared.connector, error = %e, "Cannot subscribe; the connector's tasks stop.");
            for t in shared.tasks.statuses() {
                t.set_state(TaskState::Failed(format!(
                    "cannot subscribe to {}: {e}",
                    topics.join(",")
                )));
            }
            cancel.cancel();
        }
    }
    // Interval commits run on a thread of their own so that a slow coordinator never stalls
    // consumption. They are synchronous: rust-rdkafka does not deliver asynchronous commit
    // results to the context when the main queue is redirected to the consumer queue, and a
    // definite result is what tells a refused commit to be retried.
    std::thread::scope(|scope| {
        let (shared_ref, consumer_ref) = (&shared, &consumer);
        let committer = scope.spawn(move || {
            loop {
                match commits.recv_timeout(IDLE_POLL) {
                    Ok(offsets) => {
                        shared_ref.commit_sync(consumer_ref, &offsets, "interval");
                    }
                    Err(std_mpsc::RecvTimeoutError::Timeout)
                        if !shared_ref.stopping.load(Ordering::Relaxed) => {}
                    Err(_) => break,
                }
            }
        });
        let lag_interval = settings.lag_interval;
        let lag = (!lag_interval.is_zero())
            .then(|| scope.spawn(move || super::lag::run(shared_ref, consumer_ref, lag_interval)));
        poller.run();
        poller.finish();
        shared.stopping.store(true, Ordering::Relaxed);
        let _ = committer.join();
        if let Some(lag) = lag {
            let _ = lag.join();
        }
    });
    // Dropping the consumer leaves the group (revoke callbacks see `stopping`).
    drop(poller);
    drop(consumer);
}

struct Poller<'a> {
    consumer: &'a BaseConsumer<ConnectorConsumerContext>,
    shared: &'a Arc<Shared>,
    settings: &'a PollSettings,
    cancel: &'a CancellationToken,
    topics: TopicNames,
    subscribed: BTreeSet<String>,
    next_refresh: Instant,
    next_end_check: Instant,
    /// Partitions librdkafka reported at their end since their last record.
    at_eof: BTreeSet<TopicPartition>,
    eof_generation: u64,
    /// Where record bytes are copied to (see `Converter::convert_in`).
    arena: BytesMut,
    /// Tasks whose failure has been handled (partitions paused).
    frozen_tasks: BTreeSet<usize>,
    /// Records routed since the batches were last all handed over (an upper bound: a
    /// revoke may have dropped some).
    queued: usize,
    /// For `--exit-at-end`: when the tasks may next be asked to commit what they delivered.
    next_commit_request: Instant,
}

impl Poller<'_> {
    fn connector(&self) -> &str {
        &self.shared.connector
    }

    fn run(&mut self) {
        while !self.cancel.is_cancelled() {
            if self.shared.task_failed.swap(false, Ordering::Relaxed) {
                self.freeze_failed_tasks();
            }
            if matches!(self.settings.subscription, Subscription::Regex(_))
                && Instant::now() >= self.next_refresh
            {
                self.refresh_subscription();
                self.next_refresh = Instant::now() + self.settings.metadata_refresh;
            }
            // Records may be waiting in batches: then do not block in poll.
            let busy = self.queued > 0;
            match self
                .consumer
                .poll(if busy { Duration::ZERO } else { IDLE_POLL })
            {
                Some(Ok(m)) => {
                    let record = to_record(&m, &mut self.topics, self.settings, &mut self.arena);
                    drop(m);
                    if let Some((task, true)) = self.route(record) {
                        self.hand_over(task);
                    }
                }
                Some(Err(e)) => self.on_error(e),
                None => {
                    for task in 0..self.shared.tasks.len() {
                        self.hand_over(task);
                    }
                    self.queued = 0;
                    if self.settings.exit_at_end && Instant::now() >= self.next_end_check {
                        self.check_end();
                        self.next_end_check = Instant::now() + Duration::from_millis(200);
                    }
                }
            }
        }
    }

    /// Queues a record for the task that owns its partition; returns that task and whether
    /// its batch is full.
    fn route(&mut self, record: SinkRecord) -> Option<(usize, bool)> {
        let status = &self.shared.status;
        if status.caught_up.load(Ordering::Relaxed) {
            status.caught_up.store(false, Ordering::Relaxed);
        }
        if !self.at_eof.is_empty() {
            self.at_eof.remove(&record.topic_partition());
        }
        let mut dispatch = lock(&self.shared.dispatch);
        // None: a partition of a failed task (paused; the record is not consumed) or one
        // revoked since the fetch.
        let task = dispatch
            .routing
            .route(&record.topic, record.partition, record.offset)?;
        let batch = dispatch.batches.get_mut(task)?;
        batch.bytes += record.size();
        batch.records.push(record);
        let full =
            batch.records.len() >= MAX_BATCH_RECORDS || batch.bytes >= self.settings.batch_bytes;
        self.queued += 1;
        Some((task, full))
    }

    /// Hands a task's pending records over. When the task is slower than Kafka its channel
    /// is full: wait, and if that takes long, pause the partitions while still polling so
    /// the group membership and rebalances are served.
    fn hand_over(&mut self, task: usize) {
        let batch = lock(&self.shared.dispatch)
            .batches
            .get_mut(task)
            .map(std::mem::take)
            .unwrap_or_default();
        if batch.records.is_empty() {
            return;
        }
        self.shared.metrics.bytes_in(batch.bytes);
        self.topics.renew();
        let Some(tx) = self.shared.tasks.link(task).and_then(|l| l.cmd_tx) else {
            return;
        };
        let mut cmd = Command::Records(batch.records);
        let mut paused: Option<rdkafka::TopicPartitionList> = None;
        loop {
            match tx.try_send(cmd) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(c)) => cmd = c,
            }
            if self.cancel.is_cancelled() {
                return;
            }
            let waiting = tx.clone();
            let reserved = self.shared.rt.block_on(async move {
                tokio::time::timeout(Duration::from_millis(200), waiting.reserve_owned()).await
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
                        tracing::debug!(connector = %self.connector(), task, "A task is behind; pausing fetches until it catches up.");
                        paused = Some(assignment);
                    }
                    // Serve callbacks; a record that still arrives waits in its batch.
                    if let Some(Ok(m)) = self.consumer.poll(Duration::ZERO) {
                        let record =
                            to_record(&m, &mut self.topics, self.settings, &mut self.arena);
                        drop(m);
                        self.route(record);
                    }
                }
            }
        }
        if let Some(p) = paused {
            // Partitions revoked meanwhile are simply not resumed; frozen ones stay paused.
            let frozen: Vec<bool> = p
                .elements()
                .iter()
                .map(|e| {
                    lock(&self.shared.dispatch)
                        .routing
                        .is_frozen(&TopicPartition::new(e.topic(), e.partition()))
                })
                .collect();
            let resume = to_tpl(
                p.elements()
                    .iter()
                    .zip(frozen)
                    .filter(|(_, f)| !f)
                    .map(|(e, _)| (TopicPartition::new(e.topic(), e.partition()), None)),
            );
            if let Ok(resume) = resume {
                let _ = self.consumer.resume(&resume);
            }
        }
    }

    /// Pauses the partitions of tasks that failed, and drops their pending records (never
    /// delivered, so never committed).
    fn freeze_failed_tasks(&mut self) {
        for task in 0..self.shared.tasks.len() {
            let running = self
                .shared
                .tasks
                .link(task)
                .is_some_and(|l| l.status.is_running());
            if running || !self.frozen_tasks.insert(task) {
                continue;
            }
            let parts = {
                let mut dispatch = lock(&self.shared.dispatch);
                if let Some(batch) = dispatch.batches.get_mut(task) {
                    *batch = Batch::default();
                }
                dispatch.routing.fail(task)
            };
            if let Ok(tpl) = to_tpl(parts.iter().map(|tp| (tp.clone(), None))) {
                let _ = self.consumer.pause(&tpl);
            }
            tracing::warn!(connector = %self.connector(), task, partitions = parts.len(), "Paused the failed task's partitions; they resume when the group next rebalances or ferry restarts.");
        }
    }

    /// Graceful stop: records not handed over are not consumed (they are re-read after a
    /// restart). Every running task flushes; their offsets are committed together, before
    /// the consumer leaves the group.
    fn finish(&mut self) {
        for batch in &mut lock(&self.shared.dispatch).batches {
            *batch = Batch::default();
        }
        let shared = self.shared;
        let all = 0..shared.tasks.len();
        let within = shared.stop_flush_timeout;
        let deadline = Instant::now() + within;
        let (offsets, complete) =
            shared.flush_tasks(all, within, |_, reply| Command::Shutdown(within, reply));
        // A commit the group refuses for now (it is rebalancing because a worker joined or
        // left a moment before, or its coordinator is moving) is tried again, within the same
        // bound, until the group has settled: else the partitions' next owner would redeliver
        // what this worker delivered. (Kafka's commitSync likewise retries such errors until
        // default.api.timeout.ms.) Between tries the consumer is polled, so that librdkafka
        // can serve the rebalance (revoke, rejoin, assign) and the next try carries the new
        // generation; a revoke meanwhile commits the offsets itself (see `on_revoke`).
        // A member the group has fenced (its generation or member id is gone) cannot commit
        // however often it tries: the stop goes on at once. The retries end halfway through
        // the bound: the consumer's close (leaving the group) still has to fit in it.
        let retry_until = deadline - within / 2;
        *lock(&shared.final_commit) = Some(offsets.clone());
        let mut outcome = shared.commit_sync(self.consumer, &offsets, "shutdown");
        while outcome == CommitOutcome::Retriable
            && Instant::now() + STOP_COMMIT_RETRY < retry_until
        {
            self.serve_while_stopping(STOP_COMMIT_RETRY);
            let left = lock(&shared.final_commit).clone().unwrap_or_default();
            outcome = shared.commit_sync(self.consumer, &left, "shutdown, again");
        }
        *lock(&shared.final_commit) = None;
        match outcome {
            CommitOutcome::Committed => {}
            CommitOutcome::Retriable => {
                tracing::warn!(connector = %self.connector(), "The group did not take the final commit (tried again for half of nine tenths of task.shutdown.graceful.timeout.ms); the partitions' next owner resumes from the last commit and may redeliver.");
            }
            CommitOutcome::Fenced => {
                tracing::warn!(connector = %self.connector(), "The group fenced this worker's consumer during the stop (a rebalance gave its partitions to the group's other members), so the final commit is not tried again; the partitions' next owner resumes from the group's last commit and may redeliver; the offset file still holds the delivered offsets.");
            }
            CommitOutcome::Other => {
                tracing::warn!(connector = %self.connector(), "The group refused the final commit (see the error above) and trying again would not help; the partitions' next owner resumes from the last commit and may redeliver; the offset file still holds the delivered offsets.");
            }
        }
        if !complete {
            tracing::warn!(connector = %self.connector(), "Not every task flushed in time at shutdown; the next start resumes from the last commit.");
        }
        // What the stop leaves undelivered, for `--exit-at-end`'s exit status.
        *lock(&shared.status.undelivered) = self.undelivered();
    }

    /// Polls the consumer for `period` while a stop waits for the group, so that librdkafka
    /// serves the group protocol and its rebalance callbacks. A record that arrives is
    /// dropped: it is not delivered, its offset is not stored (`enable.auto.offset.store` is
    /// off) nor committed, so whoever owns its partition next reads it again.
    fn serve_while_stopping(&self, period: Duration) {
        let end = Instant::now() + period;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.consumer.poll(left.min(IDLE_POLL)) {
                Some(Ok(m)) => drop(m),
                Some(Err(e)) => {
                    tracing::debug!(connector = %self.connector(), error = %e, "Kafka consumer error while the stop waits for the group.");
                }
                None => {}
            }
        }
    }

    fn on_error(&mut self, e: KafkaError) {
        match e {
            KafkaError::PartitionEOF(p) => self.on_eof(p),
            KafkaError::MessageConsumptionFatal(code) => {
                let reason = format!("the Kafka consumer hit a fatal error: {code}");
                tracing::error!(connector = %self.connector(), error = %reason, "The connector's tasks stop; restart ferry.");
                for t in self.shared.tasks.statuses() {
                    t.set_state(TaskState::Failed(reason.clone()));
                }
                self.cancel.cancel();
            }
            other => {
                let line = other.to_string();
                if self.shared.errors.allow(&line, ERROR_LOG_PERIOD) {
                    tracing::warn!(connector = %self.connector(), error = %line, "Kafka consumer error.");
                }
            }
        }
    }

    /// Matches `topics.regex` against the cluster's topics and re-subscribes on a change.
    fn refresh_subscription(&mut self) {
        let md = match self.consumer.fetch_metadata(None, METADATA_TIMEOUT) {
            Ok(md) => md,
            Err(e) => {
                let line = format!("cannot list topics for topics.regex: {e}");
                if self.shared.errors.allow(&line, ERROR_LOG_PERIOD) {
                    tracing::warn!(connector = %self.connector(), error = %line, "Topic discovery failed; trying again later.");
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
        tracing::info!(connector = %self.connector(), ?added, ?removed, "Topics matching topics.regex changed; updating the subscription.");
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
                tracing::warn!(connector = %self.connector(), error = %e, "Could not update the subscription; trying again later.")
            }
        }
    }

    /// End-of-partition reports from before the latest assignment no longer hold.
    fn forget_stale_eofs(&mut self) {
        let generation = self.shared.assignments.load(Ordering::Relaxed);
        if generation != self.eof_generation {
            self.at_eof.clear();
            self.eof_generation = generation;
        }
    }

    /// An end-of-partition report (`enable.partition.eof`), which names the partition
    /// number only: it counts when exactly one assigned topic has that partition number.
    fn on_eof(&mut self, partition: i32) {
        self.forget_stale_eofs();
        let assigned = lock(&self.shared.status.assigned);
        let mut matching = assigned.iter().filter(|tp| tp.partition == partition);
        if let (Some(tp), None) = (matching.next(), matching.next()) {
            self.at_eof.insert(tp.clone());
        }
    }

    /// For `--exit-at-end`: publishes whether every assigned partition is read to its end,
    /// nothing waits to be handed over, and everything read is committed. Once everything
    /// is read, asks the tasks to commit rather than wait for `offset.flush.interval.ms`.
    fn check_end(&mut self) {
        self.forget_stale_eofs();
        let status = &self.shared.status;
        let joined = status.joined.load(Ordering::Relaxed)
            || (matches!(self.settings.subscription, Subscription::Regex(_))
                && self.subscribed.is_empty());
        let idle = lock(&self.shared.dispatch)
            .batches
            .iter()
            .all(|b| b.records.is_empty());
        let read = joined && idle && self.assigned_at_end();
        let undelivered = self.undelivered();
        // A failed task's partitions never catch up; they are reported at exit.
        let waiting = undelivered.iter().any(|u| !u.task_failed);
        if read && waiting && Instant::now() >= self.next_commit_request {
            for task in 0..self.shared.tasks.len() {
                if let Some(requests) = self.shared.tasks.link(task).and_then(|l| l.requests) {
                    requests.request_commit();
                }
            }
            self.next_commit_request = Instant::now() + COMMIT_REQUEST_PERIOD;
        }
        *lock(&status.undelivered) = undelivered;
        status.caught_up.store(read && !waiting, Ordering::Relaxed);
    }

    /// Partitions with records read and not committed (to the group or the offset file),
    /// and those of failed tasks.
    fn undelivered(&self) -> Vec<Undelivered> {
        let (read, frozen) = {
            let mut dispatch = lock(&self.shared.dispatch);
            let read = dispatch.routing.read_positions().clone();
            (read, dispatch.routing.frozen().clone())
        };
        let group = lock(&self.shared.group_committed);
        let committed = |tp: &TopicPartition| {
            let in_group = group.get(tp).map(|c| c.offset);
            let in_file = self.shared.store.as_ref().and_then(|s| {
                s.get(&self.shared.connector, &tp.topic, tp.partition)
                    .map(|c| c.offset)
            });
            in_group.max(in_file)
        };
        let mut out: Vec<Undelivered> = read
            .iter()
            .filter_map(|(tp, end)| {
                let committed = committed(tp);
                let task_failed = frozen.contains(tp);
                (task_failed || committed.is_none_or(|c| c < *end)).then(|| Undelivered {
                    partition: tp.clone(),
                    committed,
                    read_to: Some(*end),
                    task_failed,
                })
            })
            .collect();
        out.extend(
            frozen
                .iter()
                .filter(|tp| !read.contains_key(*tp))
                .map(|tp| Undelivered {
                    partition: tp.clone(),
                    committed: committed(tp),
                    read_to: None,
                    task_failed: true,
                }),
        );
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        out
    }

    fn assigned_at_end(&self) -> bool {
        let assigned: Vec<TopicPartition> =
            lock(&self.shared.status.assigned).iter().cloned().collect();
        let dispatch = lock(&self.shared.dispatch);
        assigned.iter().all(|tp| {
            if self.at_eof.contains(tp) || dispatch.routing.is_frozen(tp) {
                return true;
            }
            // Two assigned topics share this partition number, so the report was
            // ambiguous: ask for the watermark (slower: it queues behind the fetch
            // long-poll on the broker connection).
            let ambiguous = assigned
                .iter()
                .filter(|o| o.partition == tp.partition)
                .count()
                > 1;
            ambiguous && self.at_watermark(tp)
        })
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
                rdkafka::Offset::Offset(o) => Some(o),
                _ => None,
            }
        });
        position.is_some_and(|o| o >= hi)
    }
}
