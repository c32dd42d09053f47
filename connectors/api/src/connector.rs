use std::fmt::Debug;
use std::sync::Arc;

use crate::{ConfigError, ConnectorProps, ErrantRecordReporter, SinkTask, TaskError};

/// What a task is told about itself when it is created.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// The connector's `name`.
    pub connector: String,
    /// 0-based task number, below `tasks.max`.
    pub task_id: usize,
    /// Records the sink cannot deliver go here (see [`ErrantRecordReporter`]).
    pub errant: Arc<dyn ErrantRecordReporter>,
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
