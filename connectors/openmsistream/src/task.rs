//! The sink task: decode, check, select and hand each chunk to the shared assembler; answer
//! `pre_commit` with only the offsets whose chunks are durable.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use ferry_connector_api::{
    Assigned, ErrantRecordReporter, Offsets, RecordError, SinkRecord, SinkTask, TaskError,
    TopicPartition, Watermark, async_trait,
};

use crate::assembly::{AddError, Added, Assembler};
use crate::chunk::Chunk;
use crate::heartbeat::Counters;
use crate::periodic::Periodic;

#[derive(Debug)]
pub(crate) struct OpenMsiStreamTask {
    pub(crate) assembler: Arc<Mutex<Assembler>>,
    pub(crate) counters: Arc<Counters>,
    /// Task 0's heartbeats and logs, started with the first assignment.
    pub(crate) periodic: Vec<Periodic>,
    pub(crate) regex: Option<fancy_regex::Regex>,
    pub(crate) task_id: usize,
    pub(crate) errant: Arc<dyn ErrantRecordReporter>,
    pub(crate) watermark: Watermark,
}

/// What to do with a record after handling it.
enum Handled {
    /// Acknowledge now (skipped by the regex, a redelivery, superseded).
    Ack,
    /// The assembler acknowledges it once durable.
    Queued,
}

enum Failure {
    Record(String),
    Retry(TaskError),
}

fn lock(assembler: &Mutex<Assembler>) -> Result<MutexGuard<'_, Assembler>, TaskError> {
    assembler
        .lock()
        .map_err(|_| TaskError::fatal("a task of this connector panicked while rebuilding a file"))
}

impl OpenMsiStreamTask {
    /// `size` becomes what the heartbeat counts for the record: a chunk's file data bytes
    /// (OpenMSIStream counts `len()` of the consumed message, which is its chunk's size).
    fn handle(&self, record: &SinkRecord, size: &mut u64) -> Result<Handled, Failure> {
        let Some(value) = record.value.as_ref() else {
            return Err(Failure::Record(
                "a record without a value (tombstone) is not an OpenMSIStream file chunk".into(),
            ));
        };
        let chunk = Chunk::decode(value.as_bytes()).map_err(|e| Failure::Record(e.to_string()))?;
        *size = chunk.data.len() as u64;
        if let Some(regex) = &self.regex {
            // A regex that gives up (backtracking limit) selects nothing, as a mismatch.
            if !regex.is_match(&chunk.relative_path()).unwrap_or(false) {
                return Ok(Handled::Ack);
            }
        }
        let rel = chunk.target().map_err(|e| Failure::Record(e.to_string()))?;
        let waiting = (self.task_id, record.topic_partition(), record.offset);
        let added = lock(&self.assembler)
            .map_err(Failure::Retry)?
            .add(waiting, &chunk, rel);
        match added {
            Ok(Added::Queued) => Ok(Handled::Queued),
            Ok(Added::AlreadyDone | Added::Stale) => Ok(Handled::Ack),
            Err(AddError::Record(why)) => Err(Failure::Record(why)),
            Err(AddError::Io(what, e)) => Err(Failure::Retry(
                // A full disk or a permission the operator fixes can recover.
                TaskError::retriable(format!("{what} (record {})", record.coordinates()))
                    .with_source(e),
            )),
        }
    }

    fn collect_acks(&mut self) -> Result<(), TaskError> {
        let acks = lock(&self.assembler)?.take_acks(self.task_id);
        for (tp, offset) in acks {
            self.watermark.acked(&tp, offset);
        }
        Ok(())
    }
}

#[async_trait]
impl SinkTask for OpenMsiStreamTask {
    async fn open(&mut self, _partitions: &[Assigned]) -> Result<(), TaskError> {
        self.periodic.iter_mut().for_each(Periodic::start);
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        tokio::task::block_in_place(|| {
            for r in records {
                let tp = r.topic_partition();
                self.watermark.sent(&tp, r.offset);
                // A record that is not a chunk counts its value's bytes.
                let mut size = r.value.as_ref().map_or(0, |v| v.len()) as u64;
                let handled = self.handle(r, &mut size);
                self.counters.read.fetch_add(1, Ordering::Relaxed);
                self.counters.bytes_read.fetch_add(size, Ordering::Relaxed);
                if let Ok(Handled::Queued | Handled::Ack) = handled {
                    self.counters.processed.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .bytes_processed
                        .fetch_add(size, Ordering::Relaxed);
                }
                match handled {
                    Ok(Handled::Ack) => self.watermark.acked(&tp, r.offset),
                    Ok(Handled::Queued) => {}
                    Err(Failure::Record(why)) => {
                        self.errant.report(r, &RecordError::new(why))?;
                        self.watermark.acked(&tp, r.offset);
                    }
                    Err(Failure::Retry(e)) => return Err(e),
                }
            }
            self.collect_acks()
        })
    }

    async fn flush(&mut self) -> Result<(), TaskError> {
        tokio::task::block_in_place(|| {
            lock(&self.assembler)?.sync().map_err(|e| {
                TaskError::retriable("cannot make the rebuilt chunks durable").with_source(e)
            })?;
            self.collect_acks()
        })
    }

    async fn pre_commit(&mut self, consumed: &Offsets) -> Result<Offsets, TaskError> {
        self.flush().await?;
        Ok(self
            .watermark
            .committable()
            .into_iter()
            .filter_map(|(tp, o)| consumed.get(&tp).map(|c| (tp, o.min(*c))))
            .collect())
    }

    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<(), TaskError> {
        self.watermark.remove(partitions);
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), TaskError> {
        for p in &mut self.periodic {
            p.stop().await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
