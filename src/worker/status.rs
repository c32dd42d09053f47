//! What a connector's consumer and each of its tasks report about themselves. Written by
//! the worker's threads, read by the herder's status line and `--exit-at-end` check.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_connector_api::TopicPartition;

use crate::metrics::TaskMetrics;

/// Kafka Connect's task states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Running,
    Failed(String),
    Stopped,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Running => "RUNNING",
            TaskState::Failed(_) => "FAILED",
            TaskState::Stopped => "STOPPED",
        })
    }
}

/// Status of one task.
#[derive(Debug)]
pub struct TaskStatus {
    pub connector: String,
    pub task_id: usize,
    state: Mutex<TaskState>,
    /// Records and bytes the sink accepted (`put` returned Ok).
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    /// Records skipped under `errors.tolerance=all`.
    pub skipped: AtomicU64,
    /// Epoch milliseconds when the sink first accepted records; 0 not yet.
    pub first_record_ms: AtomicI64,
    /// Epoch milliseconds when the sink last accepted records; 0 not yet.
    pub last_record_ms: AtomicI64,
    /// The task's Prometheus series.
    pub metrics: TaskMetrics,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl TaskStatus {
    pub fn new(connector: &str, task_id: usize) -> Self {
        Self {
            connector: connector.to_string(),
            task_id,
            state: Mutex::new(TaskState::Running),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            first_record_ms: AtomicI64::new(0),
            last_record_ms: AtomicI64::new(0),
            metrics: TaskMetrics::new(connector, task_id),
        }
    }

    pub fn state(&self) -> TaskState {
        lock(&self.state).clone()
    }

    pub fn is_running(&self) -> bool {
        matches!(*lock(&self.state), TaskState::Running)
    }

    /// Moves to a new state; a FAILED task stays FAILED.
    pub fn set_state(&self, state: TaskState) {
        let mut s = lock(&self.state);
        if !matches!(*s, TaskState::Failed(_)) {
            *s = state;
        }
        self.metrics.state(&s.to_string());
    }

    pub fn add_delivered(&self, records: u64, bytes: u64) {
        if records > 0 {
            let now = now_ms();
            if self.first_record_ms.load(Ordering::Relaxed) == 0 {
                self.first_record_ms.store(now, Ordering::Relaxed);
            }
            self.last_record_ms.store(now, Ordering::Relaxed);
        }
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Status of a connector's Kafka consumer.
#[derive(Debug, Default)]
pub struct ConsumerStatus {
    /// Sum of consumer lag over assigned partitions, from librdkafka statistics; -1 unknown.
    pub lag: AtomicI64,
    /// Epoch milliseconds of the last successful group commit; 0 never.
    pub last_commit_ms: AtomicI64,
    /// Partitions currently assigned.
    pub assigned: Mutex<BTreeSet<TopicPartition>>,
    /// The group assigned this consumer at least once (possibly nothing).
    pub joined: AtomicBool,
    /// For `--exit-at-end`: every assigned partition is read to its end, nothing is
    /// waiting to be handed to a task, and every record read is committed.
    pub caught_up: AtomicBool,
    /// Partitions whose records read are not all committed, and those of failed tasks: as
    /// of the last `--exit-at-end` check while running, and as of the final commit once
    /// stopped.
    pub undelivered: Mutex<Vec<Undelivered>>,
}

/// A partition with records not delivered and committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    pub partition: TopicPartition,
    /// The committed offset (the group's or the offset file's), if any.
    pub committed: Option<i64>,
    /// One past the last record read; None when nothing was read (a failed task's
    /// partition, paused).
    pub read_to: Option<i64>,
    /// The task that held the partition failed.
    pub task_failed: bool,
}

impl fmt::Display for Undelivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (", self.partition)?;
        match self.committed {
            Some(c) => write!(f, "committed up to offset {c}")?,
            None => f.write_str("nothing committed")?,
        }
        if let Some(r) = self.read_to {
            write!(f, ", read up to {r}")?;
        }
        if self.task_failed {
            f.write_str(", its task failed")?;
        }
        f.write_str(")")
    }
}

impl ConsumerStatus {
    pub fn new() -> Self {
        Self {
            lag: AtomicI64::new(-1),
            ..Self::default()
        }
    }
}

/// Locks a status mutex; a poisoned lock still holds usable data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
