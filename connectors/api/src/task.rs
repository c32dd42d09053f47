use std::fmt::Debug;

use crate::{Offsets, RecordError, SinkRecord, TaskError, TopicPartition};

/// Kafka Connect's `SinkTask` contract.
///
/// The runtime calls, in order: [`open`](SinkTask::open) when partitions are assigned,
/// [`put`](SinkTask::put) with records of those partitions in offset order,
/// [`pre_commit`](SinkTask::pre_commit) every `offset.flush.interval.ms`, before partitions
/// are revoked and at shutdown, [`close`](SinkTask::close) when partitions are revoked, and
/// [`stop`](SinkTask::stop) once at the end.
///
/// Methods may block briefly on local I/O through `tokio::task::block_in_place` (the
/// runtime is multi-threaded); long waits should be `async`.
#[crate::async_trait]
pub trait SinkTask: Send + Debug {
    /// Partitions newly assigned to this task.
    async fn open(&mut self, _partitions: &[TopicPartition]) -> Result<(), TaskError> {
        Ok(())
    }

    /// Hands a batch to the sink (borrowed: values are reference-counted, so a sink that
    /// buffers clones them cheaply). The sink may deliver it now or buffer it; a record it
    /// cannot ever deliver goes to the [`ErrantRecordReporter`] given at creation.
    ///
    /// After a [`TaskError::Retriable`] the runtime calls `put` again with the same batch,
    /// so a sink must tolerate seeing records twice.
    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError>;

    /// Makes everything passed to `put` so far durable. Called by the default
    /// [`pre_commit`](SinkTask::pre_commit).
    async fn flush(&mut self) -> Result<(), TaskError> {
        Ok(())
    }

    /// `consumed` holds, per partition, the offset after the last record passed to `put`.
    /// Returns the offsets that are safe to commit: for each partition, an offset `o` such
    /// that every record before `o` is durably delivered. Never more than `consumed`.
    ///
    /// The default flushes and returns `consumed`, which is right for sinks whose `flush`
    /// delivers everything. Sinks with asynchronous acknowledgements return a
    /// [`Watermark`](crate::Watermark)'s committable offsets instead.
    async fn pre_commit(&mut self, consumed: &Offsets) -> Result<Offsets, TaskError> {
        self.flush().await?;
        Ok(consumed.clone())
    }

    /// Partitions taken away from this task (after a final `pre_commit`); drop any state
    /// held for them.
    async fn close(&mut self, _partitions: &[TopicPartition]) -> Result<(), TaskError> {
        Ok(())
    }

    /// The task is being shut down; release resources.
    async fn stop(&mut self) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Where a sink sends a record it cannot deliver (Kafka Connect's `ErrantRecordReporter`).
///
/// Under `errors.tolerance=all` the runtime logs the record and the sink then skips it, so
/// its offset advances; under `errors.tolerance=none` this returns a fatal error that the
/// sink must propagate from `put`.
pub trait ErrantRecordReporter: Send + Sync + Debug {
    fn report(&self, record: &SinkRecord, error: &RecordError) -> Result<(), TaskError>;
}
