//! The worker: runs a connector's sink tasks behind one Kafka consumer.
//!
//! Kafka Connect gives every task a consumer of its own. ferry gives every *connector* one
//! consumer and spreads its partitions over the tasks, because each librdkafka consumer
//! brings its own threads, connections and buffers: measured with `benches/pipeline`, a
//! connector with `tasks.max=10` (the ZTF Pub/Sub file's setting) peaked at 87 MB with a
//! consumer per task, against 33 MB with one. Tasks remain the unit of sink parallelism
//! and of Kafka Connect's `open`/`put`/`pre_commit`/`close` contract.
//!
//! Per connector: one consumer thread (`poll.rs`, `consumer.rs`), one sink driver per task
//! on the async runtime (`driver.rs`), a bounded channel between them; tasks start as the
//! assigned partitions need them, up to `tasks.max` (`tasks.rs`). The consumer thread
//! only copies bytes; structured converters (Avro, JSON) decode in each task's driver, so
//! that decoding runs on as many threads as there are busy tasks.

mod consumer;
mod dead_letter;
mod dead_letter_topic;
mod driver;
mod errant;
mod lag;
mod originals;
mod poll;
mod routing;
pub mod status;
pub mod tasks;

use std::sync::atomic::AtomicBool;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::config::{ConnectorConfig, WorkerConfig};
use crate::kafka;
use crate::metrics::ConnectorMetrics;
use crate::offsets::FileOffsetStore;
use crate::producer::Producers;
use status::{ConsumerStatus, TaskState, TaskStatus};
use tasks::{TaskFactory, TaskSet};

/// Java's `metadata.max.age.ms` default: how often `topics.regex` is re-evaluated.
const DEFAULT_METADATA_REFRESH: Duration = Duration::from_secs(300);

/// What every connector shares.
#[derive(Debug)]
pub struct ConnectorEnv<'a> {
    pub worker: &'a WorkerConfig,
    pub store: Option<Arc<FileOffsetStore>>,
    /// Report when everything has been read (for `--exit-at-end`).
    pub exit_at_end: bool,
    pub rt: &'a Handle,
    /// The herder's token; each connector gets a child of it.
    pub parent: &'a CancellationToken,
}

/// A running connector.
#[derive(Debug)]
pub struct ConnectorHandle {
    pub name: String,
    /// The tasks started so far (see [`tasks`]).
    pub tasks: Arc<TaskSet>,
    pub consumer: Arc<ConsumerStatus>,
    pub cancel: CancellationToken,
    /// The connector's Prometheus series.
    pub metrics: Arc<ConnectorMetrics>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Flushed and dropped once the tasks have stopped.
    producers: Option<Arc<Producers>>,
}

impl ConnectorHandle {
    /// The status of each task started.
    pub fn task_statuses(&self) -> Vec<Arc<TaskStatus>> {
        self.tasks.statuses()
    }

    /// Waits for the connector to stop after its token was cancelled. False on timeout.
    pub async fn join(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || {
                // Polled, so the wait stays bounded.
                let start = std::time::Instant::now();
                while !thread.is_finished() {
                    if start.elapsed() > timeout {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                let _ = thread.join();
                true
            });
            if !matches!(joined.await, Ok(true)) {
                return false;
            }
        }
        for driver in self.tasks.take_drivers() {
            if tokio::time::timeout_at(deadline, driver).await.is_err() {
                return false;
            }
        }
        if let Some(producers) = self.producers.take() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            producers.close(left).await;
        }
        true
    }
}

fn fail_all(tasks: &TaskSet, name: &str, reason: &str) {
    tracing::error!(connector = %name, error = %reason, "Connector failed to start; other connectors keep running.");
    if tasks.len() == 0 {
        tasks.push_failed(name, reason.to_string());
    }
    for t in tasks.statuses() {
        t.set_state(TaskState::Failed(reason.to_string()));
    }
}

/// Starts a connector: its first task and the consumer thread, which starts further tasks
/// as partitions are assigned.
pub fn start_connector(
    connector: &ConnectorConfig,
    client: &kafka::ConsumerClient,
    env: &ConnectorEnv<'_>,
) -> ConnectorHandle {
    let name = connector.name.clone();
    let cancel = env.parent.child_token();
    let consumer_status = Arc::new(ConsumerStatus::new());
    let set = Arc::new(TaskSet::default());
    let mut handle = ConnectorHandle {
        name: name.clone(),
        tasks: set.clone(),
        consumer: consumer_status.clone(),
        cancel: cancel.clone(),
        metrics: Arc::new(ConnectorMetrics::new(&name, &connector.class)),
        thread: None,
        producers: None,
    };
    let mut config = client.consumer().clone();
    if env.exit_at_end {
        // End-of-partition events tell the poll loop when everything has been read.
        config.set("enable.partition.eof", "true");
    }

    let producers = Arc::new(Producers::new(
        &name,
        crate::config::dlq::producer_layers(env.worker, &connector.producer_overrides),
    ));
    handle.producers = Some(producers.clone());
    let dead_letter = match dead_letter::DeadLetterSink::start(connector, &producers) {
        Ok(d) => d.map(Arc::new),
        Err(e) => {
            fail_all(&set, &name, &e);
            return handle;
        }
    };
    let dead_letter_topic = match dead_letter_topic::DeadLetterTopic::new(connector, &producers) {
        Ok(t) => t,
        Err(e) => {
            fail_all(&set, &name, &e);
            return handle;
        }
    };
    let task_failed = Arc::new(AtomicBool::new(false));
    let (commit_tx, commit_rx) = std_mpsc::channel();
    let factory = TaskFactory {
        connector: name.clone(),
        sink: connector.connector.clone(),
        tasks_max: connector.tasks_max,
        errors: connector.errors,
        key_converter: connector.key_converter.clone(),
        value_converter: connector.value_converter.clone(),
        transforms: connector.transforms.clone(),
        store: env.store.clone(),
        producers,
        dead_letter,
        flush_interval: env.worker.flush_interval,
        flush_timeout: env.worker.flush_timeout,
        commits: commit_tx,
        cancel: cancel.clone(),
        task_failed: task_failed.clone(),
        rt: env.rt.clone(),
        set: set.clone(),
    };
    // Task 0 now, so that a sink that cannot make tasks fails at start-up.
    if factory.start_next().is_none() {
        tracing::error!(connector = %name, "No task of the connector could start; it does not consume.");
        return handle;
    }
    let shared = Arc::new(consumer::Shared {
        connector: name.clone(),
        status: consumer_status,
        store: env.store.clone(),
        rt: env.rt.clone(),
        handover_timeout: consumer::handover_timeout(
            config
                .get("max.poll.interval.ms")
                .and_then(|v| v.trim().parse().ok())
                .map_or(consumer::MAX_POLL_INTERVAL_DEFAULT, Duration::from_millis),
            env.worker.flush_timeout,
        ),
        stop_flush_timeout: consumer::stop_flush_timeout(env.worker.shutdown_timeout),
        stopping: AtomicBool::new(false),
        dispatch: Mutex::new(consumer::Dispatch {
            routing: routing::Routing::new(vec![true]),
            batches: vec![consumer::Batch::default()],
        }),
        tasks: set.clone(),
        factory,
        idle_tasks_noted: AtomicBool::new(false),
        task_failed,
        errors: kafka::RateLimiter::default(),
        assignments: Default::default(),
        group_committed: Default::default(),
        resync: Default::default(),
        final_commit: Default::default(),
        metrics: handle.metrics.clone(),
    });
    let kafka_consumer: BaseConsumer<consumer::ConnectorConsumerContext> =
        match config.create_with_context(consumer::ConnectorConsumerContext(shared)) {
            Ok(c) => c,
            Err(e) => {
                fail_all(
                    &set,
                    &name,
                    &format!("cannot create the Kafka consumer: {e}"),
                );
                cancel.cancel();
                return handle;
            }
        };
    let settings = poll::PollSettings {
        subscription: connector.subscription.clone(),
        key_converter: connector.key_converter.clone(),
        value_converter: connector.value_converter.clone(),
        metadata_refresh: connector
            .consumer
            .get("topic.metadata.refresh.interval.ms")
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_METADATA_REFRESH),
        exit_at_end: env.exit_at_end,
        // Bounded per connector: each task holds up to its channel's batches + 1, and
        // the batches of all tasks together stay near 2 MB.
        batch_bytes: (2 * 1024 * 1024 / connector.tasks_max).clamp(128 * 1024, 1024 * 1024),
        lag_interval: env.worker.status_interval,
    };
    let token = cancel.clone();
    let rt = env.rt.clone();
    match std::thread::Builder::new()
        .name(format!("ferry-{name}"))
        .spawn(move || {
            // Before the first record is read, so that no dead letter goes to a missing
            // topic that could be made; the herder does not wait for it.
            if let Some(topic) = dead_letter_topic {
                rt.block_on(topic.ensure(&token));
            }
            poll::run(kafka_consumer, settings, commit_rx, token)
        }) {
        Ok(thread) => handle.thread = Some(thread),
        Err(e) => {
            fail_all(
                &set,
                &name,
                &format!("cannot start the consumer thread: {e}"),
            );
            cancel.cancel();
        }
    }
    handle
}
