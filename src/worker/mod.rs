//! The worker: runs sink tasks, one Kafka consumer per task (Kafka Connect's model), each
//! task made of a consumer thread and a sink driver connected by a bounded channel.

mod consumer;
mod driver;
mod errant;
pub mod status;

use std::sync::atomic::AtomicBool;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_connector_api::TaskContext;
use rdkafka::consumer::BaseConsumer;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::config::{ConnectorConfig, WorkerConfig};
use crate::kafka;
use crate::offsets::FileOffsetStore;
use status::{TaskState, TaskStatus};

/// Batches waiting between a task's consumer and its sink. Small: the consumer's prefetch
/// is the buffer; this only keeps the sink busy while the next batch is assembled.
const CHANNEL_BATCHES: usize = 2;

/// Java's `metadata.max.age.ms` default: how often `topics.regex` is re-evaluated.
const DEFAULT_METADATA_REFRESH: Duration = Duration::from_secs(300);

/// Holds a connector's consumers in the group until every task has made its final commit:
/// the first consumer to leave starts a rebalance, during which brokers refuse the others'
/// commits.
#[derive(Debug)]
pub struct ShutdownLatch {
    remaining: std::sync::atomic::AtomicUsize,
}

impl ShutdownLatch {
    pub fn new(tasks: usize) -> Arc<Self> {
        Arc::new(Self {
            remaining: std::sync::atomic::AtomicUsize::new(tasks),
        })
    }

    /// Counts this task out; with `wait`, blocks until every task is out or `timeout`.
    fn arrive_and_wait(&self, wait: bool, timeout: Duration) {
        use std::sync::atomic::Ordering;
        self.remaining.fetch_sub(1, Ordering::SeqCst);
        let end = std::time::Instant::now() + timeout;
        while wait && self.remaining.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A running task.
#[derive(Debug)]
pub struct TaskHandle {
    pub status: Arc<TaskStatus>,
    pub cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    driver: Option<tokio::task::JoinHandle<()>>,
}

impl TaskHandle {
    /// A task that failed before it could start.
    fn failed(
        status: Arc<TaskStatus>,
        reason: String,
        parent: &CancellationToken,
        latch: &ShutdownLatch,
    ) -> Self {
        latch.arrive_and_wait(false, Duration::ZERO);
        tracing::error!(connector = %status.connector, task = status.task_id, error = %reason, "Task failed to start; the connector's other tasks and other connectors keep running.");
        status.set_state(TaskState::Failed(reason));
        Self {
            status,
            cancel: parent.child_token(),
            thread: None,
            driver: None,
        }
    }

    /// Waits for the task to finish after its token was cancelled. False on timeout.
    pub async fn join(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || {
                // Poll for the thread's end so the wait stays bounded.
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
        match self.driver.take() {
            Some(driver) => tokio::time::timeout_at(deadline, driver).await.is_ok(),
            None => true,
        }
    }
}

/// What every task of a connector shares.
#[derive(Debug)]
pub struct TaskEnv<'a> {
    pub worker: &'a WorkerConfig,
    pub store: Option<Arc<FileOffsetStore>>,
    /// Report when everything has been read (for `--exit-at-end`).
    pub exit_at_end: bool,
    pub rt: &'a Handle,
    /// The herder's token; each task gets a child of it.
    pub parent: &'a CancellationToken,
    pub latch: Arc<ShutdownLatch>,
}

/// Starts task `task_id` of a connector.
pub fn start_task(connector: &ConnectorConfig, task_id: usize, env: &TaskEnv<'_>) -> TaskHandle {
    let TaskEnv {
        worker,
        store,
        exit_at_end,
        rt,
        parent,
        latch,
    } = env;
    let (worker, store, exit_at_end, rt, parent) =
        (*worker, store.clone(), *exit_at_end, *rt, *parent);
    let status = Arc::new(TaskStatus::new(&connector.name, task_id));
    let errant = Arc::new(errant::Errant {
        policy: connector.errors,
        status: status.clone(),
    });
    let task = match connector.connector.create_task(TaskContext {
        connector: connector.name.clone(),
        task_id,
        errant,
    }) {
        Ok(t) => t,
        Err(e) => return TaskHandle::failed(status, e.one_line(), parent, latch),
    };
    let defaults = kafka::ferry_defaults(
        &connector.name,
        task_id,
        connector.tasks_max,
        worker.status_interval,
    );
    let mut config = match kafka::client_config(&connector.consumer, &defaults) {
        Ok((config, _notes)) => config,
        Err(e) => return TaskHandle::failed(status, e.to_string(), parent, latch),
    };
    if exit_at_end {
        // End-of-partition events tell the poll loop when everything has been read.
        config.set("enable.partition.eof", "true");
    }
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(CHANNEL_BATCHES);
    let (commit_tx, commit_rx) = std_mpsc::channel();
    let shared = Arc::new(consumer::Shared {
        status: status.clone(),
        store: store.clone(),
        cmd_tx,
        rt: rt.clone(),
        flush_timeout: worker.flush_timeout,
        stopping: AtomicBool::new(false),
        pending: Mutex::new(Vec::new()),
        file_starts: Mutex::new(Default::default()),
        errors: kafka::RateLimiter::default(),
        assignments: Default::default(),
        group_committed: Default::default(),
        resync: Default::default(),
    });
    let kafka_consumer: BaseConsumer<consumer::TaskConsumerContext> =
        match config.create_with_context(consumer::TaskConsumerContext(shared)) {
            Ok(c) => c,
            Err(e) => {
                return TaskHandle::failed(
                    status,
                    format!("cannot create the Kafka consumer: {e}"),
                    parent,
                    latch,
                );
            }
        };
    let cancel = parent.child_token();
    let driver = driver::Driver {
        task,
        status: status.clone(),
        store,
        flush_interval: worker.flush_interval,
        flush_timeout: worker.flush_timeout,
        retry_delay_max: connector.errors.retry_delay_max,
        commits: commit_tx,
        cancel: cancel.clone(),
        assigned: Default::default(),
        consumed: Default::default(),
        committed: Default::default(),
    };
    let driver = rt.spawn(driver.run(cmd_rx));
    let settings = consumer::PollSettings {
        subscription: connector.subscription.clone(),
        key_converter: connector.key_converter,
        value_converter: connector.value_converter,
        metadata_refresh: connector
            .consumer
            .get("topic.metadata.refresh.interval.ms")
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_METADATA_REFRESH),
        exit_at_end,
    };
    let token = cancel.clone();
    let task_latch = latch.clone();
    let thread = std::thread::Builder::new()
        .name(format!("ferry-{}-{task_id}", connector.name))
        .spawn(move || consumer::run(kafka_consumer, settings, commit_rx, token, task_latch));
    match thread {
        Ok(thread) => TaskHandle {
            status,
            cancel,
            thread: Some(thread),
            driver: Some(driver),
        },
        Err(e) => {
            cancel.cancel();
            TaskHandle::failed(
                status,
                format!("cannot start the consumer thread: {e}"),
                parent,
                latch,
            )
        }
    }
}
