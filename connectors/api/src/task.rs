use std::fmt::Debug;

use std::collections::BTreeMap;

use crate::{
    Assigned, OffsetAndMetadata, Offsets, RecordError, SinkRecord, TaskError, TopicPartition,
};

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
    /// Partitions newly assigned to this task, each with the position it resumes from and
    /// the metadata [`commit_metadata`](SinkTask::commit_metadata) gave for that position.
    async fn open(&mut self, _partitions: &[Assigned]) -> Result<(), TaskError> {
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

    /// Text to store beside `offset`, which the last `pre_commit` made committable for
    /// `partition` (Kafka's offset commit metadata). It comes back in
    /// [`open`](SinkTask::open) when reading resumes from exactly that offset. A sink that
    /// writes to a destination with its own positions (a BigQuery write stream) stores them
    /// here, so that after a restart it knows which redelivered records the destination
    /// already holds. Kept short: brokers refuse more than `offset.metadata.max.bytes`
    /// (4 096 by default). `None`: no metadata (the default), and any stored for the
    /// partition before is dropped.
    fn commit_metadata(&self, _partition: &TopicPartition, _offset: i64) -> Option<String> {
        None
    }

    /// The runtime has recorded these positions, with the metadata
    /// [`commit_metadata`](SinkTask::commit_metadata) gave: in the offset file, which is
    /// what a restart reads first (a failed file write is logged as an error and retried),
    /// and in the group commit, which follows asynchronously and is all there is when the
    /// worker has no `offset.storage.file.filename`. Only positions that changed.
    fn committed(&mut self, _positions: &BTreeMap<TopicPartition, OffsetAndMetadata>) {}

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
