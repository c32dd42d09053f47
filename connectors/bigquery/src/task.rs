//! The sink task: turns records into rows, makes sure their table exists with the
//! columns they need, and inserts them with `tabledata.insertAll` (rows as JSON) or, with
//! `useStorageWriteApi=true`, appends them through the Storage Write API (rows as protocol
//! buffers, [`crate::storage`]).
//!
//! As Vector splits a sink: [`encoder`] (record → row, [`tables`] keeping the tables fit
//! for them) → [`request`] (buffered rows → requests) → [`service`] (the two write paths,
//! their retries); the task only orchestrates them and the buffer.
//!
//! Rows are buffered across `put`s and sent when a request's worth is ready (500 rows or
//! 9 MB), when the oldest has waited [`LINGER`], and always in `flush`. The runtime's
//! default `pre_commit` flushes before it returns what was consumed, so no offset is
//! committed past a row BigQuery has not acknowledged (or that `errors.tolerance` did not
//! skip). Buffering matters: the runtime hands a task about 1 MB per batch (~14 ZTF
//! alerts), and one insertAll request per batch ran at a third of the speed of full
//! requests (benches/bigquery).

mod encoder;
mod request;
mod service;
mod tables;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_connector_api::{
    Assigned, OffsetAndMetadata, Offsets, SinkRecord, SinkTask, TaskContext, TaskError,
    TopicPartition, Value, async_trait,
};

use self::encoder::{Encoder, Failure};
use self::request::{Lane, Pending, chunk_len};
use self::service::Service;
use self::tables::Catalog;
pub(crate) use self::tables::Tables;
use crate::config::BigQueryConfig;
use crate::rest::{CallError, Rest};
use crate::storage::{self, Streams};

/// Rows wait at most this long for a full request, as long as records keep coming (a
/// quiet stream's last rows go at the next flush, `offset.flush.interval.ms`).
const LINGER: Duration = Duration::from_secs(1);

pub(crate) struct BigQuerySinkTask {
    config: Arc<BigQueryConfig>,
    encoder: Encoder,
    service: Service,
    ctx: TaskContext,
    /// Rows and bytes per request.
    limits: (usize, usize),
    /// Per partition, the last offset buffered, acknowledged or skipped, so that a batch the
    /// runtime hands over again after a retriable error is not buffered twice.
    seen: HashMap<TopicPartition, i64>,
    /// Rows not yet acknowledged, per lane, in record order. Only acknowledged or
    /// skipped rows leave it.
    buffer: Vec<(Lane, VecDeque<Pending>)>,
    /// When the oldest buffered row came.
    since: Option<Instant>,
}

impl std::fmt::Debug for BigQuerySinkTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigQuerySinkTask")
            .field("dataset", &self.config.dataset)
            .field("task", &self.ctx.task_id)
            .finish()
    }
}

impl BigQuerySinkTask {
    pub(crate) fn new(
        config: Arc<BigQueryConfig>,
        rest: Rest,
        storage: Option<storage::Client>,
        tables: Tables,
        ctx: TaskContext,
    ) -> Self {
        let streams = storage.map(|c| Streams::new(c, &ctx.connector, ctx.task_id));
        let limits = request::limits(streams.is_some(), config.emulator);
        let catalog = Catalog {
            config: config.clone(),
            rest: rest.clone(),
            tables,
            connector: ctx.connector.clone(),
        };
        Self {
            encoder: Encoder {
                config: config.clone(),
                catalog,
                storage_write: streams.is_some(),
                max_request_bytes: limits.1,
            },
            service: Service {
                config: config.clone(),
                rest,
                streams,
                ctx: ctx.clone(),
            },
            config,
            ctx,
            limits,
            seen: HashMap::new(),
            buffer: Vec::new(),
            since: None,
        }
    }

    fn is_seen(&self, r: &SinkRecord) -> bool {
        self.seen
            .get(&r.topic_partition())
            .is_some_and(|&o| r.offset <= o)
    }

    fn buffered(&self) -> (usize, usize) {
        self.buffer.iter().fold((0, 0), |(n, b), (_, q)| {
            (
                n + q.len(),
                b + q.iter().map(|p| p.row.len()).sum::<usize>(),
            )
        })
    }

    /// Sends buffered rows, request by request, retrying retriable errors `bigQueryRetry`
    /// times, handing refused rows to `errors.tolerance`. `full_only`: only whole requests
    /// (500 rows or 9 MB); the rest waits for more rows. On an error the rows not
    /// acknowledged stay buffered, in order.
    async fn send(&mut self, full_only: bool) -> Result<(), TaskError> {
        let (max_rows, max_bytes) = self.limits;
        for i in 0..self.buffer.len() {
            loop {
                let (lane, rows) = &mut self.buffer[i];
                if rows.is_empty() {
                    break;
                }
                let (n, full) = chunk_len(rows, max_rows, max_bytes);
                if full_only && !full {
                    break;
                }
                let mut chunk: Vec<Pending> = rows.drain(..n).collect();
                let lane = lane.clone();
                let sent = match &lane.partition {
                    Some(tp) => self.service.append(&lane.table, tp, &mut chunk).await,
                    None => self
                        .service
                        .insert(&lane.table, &mut chunk)
                        .await
                        .map(|()| true),
                };
                // What is left (refused as stopped, or all of it after an error) goes back
                // in front.
                let rows = &mut self.buffer[i].1;
                for p in chunk.into_iter().rev() {
                    rows.push_front(p);
                }
                if !sent? {
                    // This lane waits for the commit that records its stream; the others
                    // go on.
                    break;
                }
            }
        }
        self.buffer.retain(|(_, q)| !q.is_empty());
        if self.buffer.is_empty() {
            self.since = None;
        }
        if let Some(streams) = &mut self.service.streams {
            streams.close_idle_calls();
        }
        Ok(())
    }
}

#[async_trait]
impl SinkTask for BigQuerySinkTask {
    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        for r in records {
            if self.is_seen(r) {
                continue;
            }
            let table = self.config.table_for(&r.topic).map_err(TaskError::fatal)?;
            match self.encoder.encode(&table, r).await {
                Ok(row) => {
                    // The row holds what BigQuery needs; the record is kept for its
                    // coordinates and bytes (errors.tolerance), without its decoded form.
                    let undecoded =
                        |v: &Option<Value>| v.as_ref().map(|v| Value::Bytes(v.to_bytes()));
                    let pending = Pending {
                        record: SinkRecord {
                            key: undecoded(&r.key),
                            value: undecoded(&r.value),
                            ..r.clone()
                        },
                        row,
                    };
                    // A partition's records go to one table, in order; with the Storage
                    // Write API each partition has a lane (a stream) of its own.
                    let lane = Lane {
                        table,
                        partition: self.service.streams.is_some().then(|| r.topic_partition()),
                    };
                    match self.buffer.iter_mut().find(|(l, _)| *l == lane) {
                        Some((_, rows)) => rows.push_back(pending),
                        None => self.buffer.push((lane, VecDeque::from([pending]))),
                    }
                    self.since.get_or_insert_with(Instant::now);
                }
                Err(Failure::Record(reason)) => self.service.reject(r, reason)?,
                Err(Failure::Fatal(m)) => return Err(TaskError::fatal(m)),
                Err(Failure::Call(CallError::Retriable(m))) => {
                    return Err(TaskError::retriable(m));
                }
                Err(Failure::Call(e)) => return Err(TaskError::fatal(e.to_string())),
            }
            self.seen.insert(r.topic_partition(), r.offset);
        }
        let (rows, bytes) = self.buffered();
        let (max_rows, max_bytes) = self.limits;
        if self.since.is_some_and(|t| t.elapsed() >= LINGER) {
            self.send(false).await?;
        } else if rows >= max_rows || bytes >= max_bytes {
            // insertAll has a lane per table: whole requests fill quickly, so only those
            // go. The Storage Write API has one per partition, and a request's worth may
            // be spread over many of them: then everything goes, so that what a task holds
            // stays near one request.
            self.send(self.service.streams.is_none()).await?;
        }
        Ok(())
    }

    /// Sends every buffered row that can go: all of them, but those waiting for their new
    /// write stream to be recorded by a commit.
    async fn flush(&mut self) -> Result<(), TaskError> {
        self.send(false).await
    }

    /// Flushes, then returns the consumed offsets, but for a partition with rows still
    /// buffered (a new write stream not yet recorded), the offset of its first such row.
    async fn pre_commit(&mut self, consumed: &Offsets) -> Result<Offsets, TaskError> {
        self.flush().await?;
        let mut safe = consumed.clone();
        for (lane, rows) in &self.buffer {
            if let (Some(tp), Some(first)) = (&lane.partition, rows.front()) {
                safe.insert(tp.clone(), first.record.offset);
            }
        }
        Ok(safe)
    }

    /// New write streams recorded by this commit take their rows from now on; another
    /// commit is asked for, so that they go (and are committed) soon.
    fn committed(&mut self, positions: &BTreeMap<TopicPartition, OffsetAndMetadata>) {
        if let Some(streams) = &mut self.service.streams
            && streams.committed(positions)
        {
            self.ctx.commits.request_commit();
        }
    }

    /// With the Storage Write API, takes up the write streams the partitions' last commits
    /// name, so that redelivered records already in them are not written again.
    async fn open(&mut self, partitions: &[Assigned]) -> Result<(), TaskError> {
        let config = self.config.clone();
        if let Some(streams) = &mut self.service.streams {
            streams.open(partitions, |topic| config.table_for(topic).ok());
        }
        Ok(())
    }

    /// The partition's write stream and the row position after its rows (Storage Write
    /// API). True of `offset` when every record before it has its row in the stream, and
    /// none after it: `pre_commit` flushed, and rows still buffered (held for a new
    /// stream) start at or after `offset`.
    fn commit_metadata(&self, partition: &TopicPartition, offset: i64) -> Option<String> {
        let first_buffered = self
            .buffer
            .iter()
            .find(|(l, _)| l.partition.as_ref() == Some(partition))
            .and_then(|(_, q)| q.front())
            .map(|p| p.record.offset);
        if first_buffered.is_some_and(|first| first < offset) {
            return None;
        }
        self.service.streams.as_ref()?.metadata(partition)
    }

    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<(), TaskError> {
        // The runtime flushed before revoking; nothing of these partitions is buffered.
        for tp in partitions {
            self.seen.remove(tp);
        }
        self.buffer
            .retain(|(l, _)| l.partition.as_ref().is_none_or(|p| !partitions.contains(p)));
        if let Some(streams) = &mut self.service.streams {
            streams.close(partitions);
        }
        Ok(())
    }
}
