use std::fmt::Debug;
use std::sync::Arc;

use crate::{
    ConfigError, ConnectorProps, ErrantRecordReporter, ProducerFactory, SinkTask, TaskError,
};

/// What a task is told about itself when it is created.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// The connector's `name`.
    pub connector: String,
    /// 0-based task number, below `tasks.max`.
    pub task_id: usize,
    /// Records the sink cannot deliver go here (see [`ErrantRecordReporter`]).
    pub errant: Arc<dyn ErrantRecordReporter>,
    /// Asks for an early commit (see [`CommitRequester`]).
    pub commits: Arc<dyn CommitRequester>,
    /// Kafka producers for records the task writes itself (replies, heartbeats); see
    /// [`ProducerFactory`].
    pub producers: Arc<dyn ProducerFactory>,
}

/// Asks the runtime to commit the task's offsets soon rather than at the next
/// `offset.flush.interval.ms` (Kafka Connect's `SinkTaskContext.requestCommit()`): the
/// runtime then calls `pre_commit`, stores the offsets with their metadata and tells the
/// task through [`SinkTask::committed`](crate::SinkTask::committed). A request made while
/// partitions are being revoked or the task is stopping is honoured before they go (a
/// few rounds at most).
pub trait CommitRequester: Send + Sync + Debug {
    fn request_commit(&self);
}

/// A [`CommitRequester`] that ignores requests, for tasks run outside the runtime (tests,
/// tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCommitRequests;

impl CommitRequester for NoCommitRequests {
    fn request_commit(&self) {}
}

/// A validated sink connector configuration that creates tasks.
#[crate::async_trait]
pub trait Connector: Send + Sync + Debug {
    /// Checks, once at start-up, what can be checked before any record flows: that
    /// credentials load and the destination exists. An error stops ferry with its message
    /// as the one line the operator sees, so it must name the key or setting to fix. Must
    /// bound its own waits (a metadata server that does not answer, a hung endpoint).
    async fn preflight(&self) -> Result<(), TaskError> {
        Ok(())
    }

    /// How many bytes of records the runtime should read ahead of this connector's tasks
    /// when the files do not say (the consumer's prefetch). `None` takes the runtime's
    /// default, sized for sinks that keep up with a local disk. A sink bound by a remote
    /// service, which holds its own outstanding budget, can ask for less: memory is
    /// read-ahead plus what the sink holds.
    fn read_ahead_bytes(&self) -> Option<usize> {
        None
    }

    /// Creates one task; called `tasks.max` times with distinct `task_id`s.
    fn create_task(&self, ctx: TaskContext) -> Result<Box<dyn SinkTask>, TaskError>;
}

/// An entry of the runtime's connector registry.
#[derive(Debug, Clone, Copy)]
pub struct ConnectorFactory {
    /// The short name ferry uses in its own docs and status lines (`file`, `pubsub`).
    pub name: &'static str,
    /// Every `connector.class` value that selects this connector: full Java class names
    /// first, then short aliases. Matched exactly.
    pub class_names: &'static [&'static str],
    /// Reads (takes) the connector's own keys and validates them without doing I/O.
    pub create: fn(&mut ConnectorProps) -> Result<Box<dyn Connector>, ConfigError>,
}
