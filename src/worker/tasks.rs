//! A connector's tasks, started as its partitions need them.
//!
//! Kafka Connect starts `tasks.max` tasks, and those beyond the partition count idle. ferry
//! starts task 0 with the connector (so a sink that cannot make a task fails at start-up)
//! and each further task only when an assignment brings a partition that no idle task can
//! take, up to `tasks.max`. So `tasks.max` bounds sink parallelism, and a `tasks.max`
//! larger than the partition count costs nothing: no idle task holds a driver, a channel or
//! a sink resource. With `topics.regex`, tasks start as matching topics appear.
//!
//! A task that fails to start (a sink out of file descriptors, say) is one error line, and
//! no further task is tried: the connector runs with the tasks it has.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_connector_api::{Connector, TaskContext};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::dead_letter::{DeadLetterSink, DeadLetters, Pending};
use super::driver::{self, Command, CommitRequests};
use super::errant;
use super::originals::Originals;
use super::status::{TaskState, TaskStatus, lock};
use crate::config::connector::ErrorPolicy;
use crate::convert::{Converter, Decoder};
use crate::offsets::{Commits, FileOffsetStore};
use crate::producer::Producers;

/// Batches waiting between the consumer and each task. Small: the consumer's prefetch is
/// the buffer; this only keeps the sink busy while the next batch is assembled.
const CHANNEL_BATCHES: usize = 2;

/// One started task as the consumer sees it.
#[derive(Debug, Clone)]
pub(crate) struct TaskLink {
    /// None: the task failed to start.
    pub(crate) cmd_tx: Option<mpsc::Sender<Command>>,
    pub(crate) status: Arc<TaskStatus>,
    /// Asks the task's driver for an early commit.
    pub(crate) requests: Option<Arc<CommitRequests>>,
}

/// The tasks started so far; task ids are their indices.
#[derive(Debug, Default)]
pub struct TaskSet {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    links: Vec<TaskLink>,
    drivers: Vec<JoinHandle<()>>,
    /// A task failed to start: start no more.
    closed: bool,
}

impl TaskSet {
    /// The status of every task started (or that failed to start).
    pub fn statuses(&self) -> Vec<Arc<TaskStatus>> {
        lock(&self.inner)
            .links
            .iter()
            .map(|l| l.status.clone())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).links.len()
    }

    pub(crate) fn link(&self, task: usize) -> Option<TaskLink> {
        lock(&self.inner).links.get(task).cloned()
    }

    /// The drivers to wait for at shutdown.
    pub(crate) fn take_drivers(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut lock(&self.inner).drivers)
    }

    /// Records a task that could not start, and starts no more.
    pub(crate) fn push_failed(&self, connector: &str, reason: String) {
        let mut inner = lock(&self.inner);
        let status = Arc::new(TaskStatus::new(connector, inner.links.len()));
        status.set_state(TaskState::Failed(reason));
        inner.links.push(TaskLink {
            cmd_tx: None,
            status,
            requests: None,
        });
        inner.closed = true;
    }
}

/// What starting a task takes.
pub(crate) struct TaskFactory {
    pub(crate) connector: String,
    pub(crate) sink: Arc<dyn Connector>,
    pub(crate) tasks_max: usize,
    pub(crate) errors: ErrorPolicy,
    pub(crate) key_converter: Converter,
    pub(crate) value_converter: Converter,
    /// The connector's transformation chain, shared by its tasks.
    pub(crate) transforms: Arc<ferry_transforms::Chain>,
    pub(crate) store: Option<Arc<FileOffsetStore>>,
    /// The connector's producers, lent to its tasks.
    pub(crate) producers: Arc<Producers>,
    /// The connector's dead-letter queue, if it has one.
    pub(crate) dead_letter: Option<Arc<DeadLetterSink>>,
    pub(crate) flush_interval: Duration,
    pub(crate) flush_timeout: Duration,
    /// Positions for the consumer thread's group commits.
    pub(crate) commits: std_mpsc::Sender<Commits>,
    pub(crate) cancel: CancellationToken,
    /// Raised by a driver whose task failed.
    pub(crate) task_failed: Arc<AtomicBool>,
    pub(crate) rt: Handle,
    pub(crate) set: Arc<TaskSet>,
}

impl std::fmt::Debug for TaskFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFactory")
            .field("connector", &self.connector)
            .field("tasks_max", &self.tasks_max)
            .finish()
    }
}

impl TaskFactory {
    /// Starts the next task, unless `tasks.max` are running or a task failed to start.
    /// Returns its id.
    pub(crate) fn start_next(&self) -> Option<usize> {
        // Held throughout, so ids stay dense and in order.
        let mut inner = lock(&self.set.inner);
        let id = inner.links.len();
        if inner.closed || id >= self.tasks_max {
            return None;
        }
        let status = Arc::new(TaskStatus::new(&self.connector, id));
        let pending = Arc::new(Pending::default());
        // Reporters that show a record's contents get the record as it was read; keeping
        // the originals costs memory, so only when transforms can change a record.
        let originals = (!self.transforms.is_empty()
            && (self.dead_letter.is_some() || self.errors.log_include_messages))
            .then(|| Arc::new(Originals::default()));
        let errant = Arc::new(errant::Errant {
            policy: self.errors,
            status: status.clone(),
            dead_letters: self.dead_letter.as_ref().map(|sink| DeadLetters {
                sink: sink.clone(),
                task_id: id,
                pending: pending.clone(),
                rt: self.rt.clone(),
                cancel: self.cancel.clone(),
                status: status.clone(),
            }),
            originals: originals.clone(),
        });
        let requests = Arc::new(CommitRequests::default());
        // Tasks after the first start on the consumer thread: give sinks the runtime
        // context they would have had at start-up.
        let _runtime = self.rt.enter();
        let task = match self.sink.create_task(TaskContext {
            connector: self.connector.clone(),
            task_id: id,
            errant: errant.clone(),
            commits: requests.clone(),
            producers: self.producers.clone(),
        }) {
            Ok(t) => t,
            Err(e) => {
                let line = e.one_line();
                let running = inner.links.iter().filter(|l| l.cmd_tx.is_some()).count();
                tracing::error!(connector = %self.connector, task = id, running_tasks = running, error = %line, "Task failed to start; no further task is started, and the connector runs with the tasks it has.");
                status.set_state(TaskState::Failed(line));
                inner.links.push(TaskLink {
                    cmd_tx: None,
                    status,
                    requests: None,
                });
                inner.closed = true;
                return None;
            }
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(CHANNEL_BATCHES);
        let driver = driver::Driver {
            task,
            status: status.clone(),
            store: self.store.clone(),
            flush_interval: self.flush_interval,
            flush_timeout: self.flush_timeout,
            retry_delay_max: self.errors.retry_delay_max,
            retry_timeout: self.errors.retry_timeout,
            commits: self.commits.clone(),
            cancel: self.cancel.clone(),
            failed: self.task_failed.clone(),
            requests: requests.clone(),
            assigned: Default::default(),
            decoder: Decoder::new(self.key_converter.clone(), self.value_converter.clone()),
            errant,
            dead_letters: pending,
            transforms: self.transforms.clone(),
            originals,
            consumed: Default::default(),
            given: Default::default(),
            skipped_tail: Default::default(),
            committed: Default::default(),
        };
        inner.drivers.push(self.rt.spawn(driver.run(cmd_rx)));
        inner.links.push(TaskLink {
            cmd_tx: Some(cmd_tx),
            status,
            requests: Some(requests),
        });
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ferry_connector_api::{SinkRecord, SinkTask, TaskError, async_trait};

    use super::*;
    use crate::config::connector::ErrorTolerance;

    /// A sink whose tasks from `fail_from` on cannot start (out of file descriptors).
    #[derive(Debug)]
    struct Sink {
        fail_from: usize,
        created: AtomicUsize,
    }

    #[derive(Debug)]
    struct Task;

    #[async_trait]
    impl SinkTask for Task {
        async fn put(&mut self, _: &[SinkRecord]) -> Result<(), TaskError> {
            Ok(())
        }
    }

    #[async_trait]
    impl Connector for Sink {
        fn create_task(&self, ctx: TaskContext) -> Result<Box<dyn SinkTask>, TaskError> {
            self.created.fetch_add(1, Ordering::Relaxed);
            if ctx.task_id >= self.fail_from {
                return Err(TaskError::fatal("Too many open files (os error 24)"));
            }
            Ok(Box::new(Task))
        }
    }

    fn factory(sink: Arc<Sink>, tasks_max: usize) -> TaskFactory {
        TaskFactory {
            connector: "c".into(),
            sink,
            tasks_max,
            errors: ErrorPolicy {
                tolerance: ErrorTolerance::None,
                log_enable: false,
                log_include_messages: false,
                retry_delay_max: Duration::from_secs(1),
                retry_timeout: None,
            },
            key_converter: Converter::ByteArray,
            value_converter: Converter::ByteArray,
            transforms: Default::default(),
            store: None,
            producers: Arc::new(Producers::new("c", Default::default())),
            dead_letter: None,
            flush_interval: Duration::from_secs(3600),
            flush_timeout: Duration::from_secs(5),
            commits: std_mpsc::channel().0,
            cancel: CancellationToken::new(),
            task_failed: Default::default(),
            rt: Handle::current(),
            set: Default::default(),
        }
    }

    #[tokio::test]
    async fn no_more_than_tasks_max_start() {
        let sink = Arc::new(Sink {
            fail_from: usize::MAX,
            created: AtomicUsize::new(0),
        });
        let f = factory(sink.clone(), 3);
        let ids: Vec<Option<usize>> = (0..5).map(|_| f.start_next()).collect();
        assert_eq!(ids, vec![Some(0), Some(1), Some(2), None, None]);
        assert_eq!(sink.created.load(Ordering::Relaxed), 3);
        assert_eq!(f.set.statuses().len(), 3);
    }

    #[tokio::test]
    async fn a_task_that_cannot_start_is_one_failure_and_the_last_one_tried() {
        let sink = Arc::new(Sink {
            fail_from: 2,
            created: AtomicUsize::new(0),
        });
        let f = factory(sink.clone(), 100_000);
        let ids: Vec<Option<usize>> = (0..50).map(|_| f.start_next()).collect();
        assert_eq!(&ids[..3], &[Some(0), Some(1), None]);
        assert!(ids[3..].iter().all(Option::is_none));
        assert_eq!(
            sink.created.load(Ordering::Relaxed),
            3,
            "no task is tried after one failed to start"
        );
        let states: Vec<TaskState> = f.set.statuses().iter().map(|s| s.state()).collect();
        assert_eq!(states.len(), 3);
        assert!(matches!(&states[2], TaskState::Failed(m) if m.contains("Too many open files")));
        assert!(f.set.link(0).is_some_and(|l| l.cmd_tx.is_some()));
        assert!(f.set.link(2).is_some_and(|l| l.cmd_tx.is_none()));
    }
}
