//! A task's write streams: one [`StreamWriter`] per partition it owns, resumed from the
//! commit metadata when a partition is assigned, and described in it at every commit.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use ferry_connector_api::backoff::Backoff;
use ferry_connector_api::{Assigned, OffsetAndMetadata, TaskError, TopicPartition};

use super::client::Client;
use super::proto::RowType;
use super::writer::{self, AppendError, Appended, StreamWriter};

/// `AppendRows` calls a task keeps open. A task appends to one stream at a time, so an
/// open call only saves setting one up again (a round trip and the writer schema) the next
/// time its partition has rows; a server serves a bounded number of calls at once (the
/// emulator: 16), and a task with many partitions would otherwise hold one per partition.
const MAX_OPEN_CALLS: usize = 4;

#[derive(Debug)]
pub(crate) struct Streams {
    client: Client,
    connector: String,
    task: usize,
    writers: HashMap<TopicPartition, StreamWriter>,
}

impl Streams {
    pub(crate) fn new(client: Client, connector: &str, task: usize) -> Self {
        Self {
            client,
            connector: connector.to_string(),
            task,
            writers: HashMap::new(),
        }
    }

    /// Takes up the streams that the commits of newly assigned partitions name, when the
    /// stream is on the partition's table (`table_of` the topic) and the metadata was
    /// written for the offset reading resumes from.
    pub(crate) fn open(
        &mut self,
        partitions: &[Assigned],
        table_of: impl Fn(&str) -> Option<String>,
    ) {
        for a in partitions {
            let Some(committed) = &a.committed else {
                continue;
            };
            let Some(at) = committed
                .metadata
                .as_deref()
                .and_then(writer::parse_metadata)
            else {
                continue;
            };
            let Some(table) = table_of(&a.partition.topic) else {
                continue;
            };
            let prefix = format!("{}/streams/", self.client.table_path(&table));
            if !at.stream.starts_with(&prefix) {
                tracing::info!(connector = %self.connector, task = self.task, partition = %a.partition, stream = %at.stream, table = %self.client.table_name(&table), "The last commit's write stream is on another table (topic2TableMap changed?); a new stream takes the partition's rows.");
                continue;
            }
            let w = self.writer(&a.partition, &table).resume(at);
            self.writers.insert(a.partition.clone(), w);
        }
    }

    fn writer(&self, tp: &TopicPartition, table: &str) -> StreamWriter {
        StreamWriter::new(
            self.client.clone(),
            &self.connector,
            self.task,
            &tp.to_string(),
            table,
        )
    }

    /// Appends `rows` of `tp` (going to `table`), retrying retriable failures as `retry`
    /// says (`bigQueryRetry`, `bigQueryRetryWait`).
    pub(crate) async fn append(
        &mut self,
        tp: &TopicPartition,
        table: &str,
        row_type: &Arc<RowType>,
        rows: Vec<Bytes>,
        retry: &Backoff,
    ) -> Result<Appended, TaskError> {
        if !self.writers.contains_key(tp) {
            let w = self.writer(tp, table);
            self.writers.insert(tp.clone(), w);
        }
        let Some(w) = self.writers.get_mut(tp) else {
            return Err(TaskError::fatal("no stream writer (a bug in ferry)"));
        };
        if w.table() != table {
            // A partition's commit names one stream, so its rows can go to one table only.
            return Err(TaskError::fatal(format!(
                "partition {tp} has rows for table {table} after rows for {}: a transform routes one partition to several tables (TimestampRouter, say), which the Storage Write API mode cannot commit safely (one stream per partition); remove useStorageWriteApi to load such routed records with insertAll",
                w.table()
            )));
        }
        let mut retry = retry.start();
        loop {
            match w.append(row_type, rows.clone()).await {
                Ok(appended) => {
                    self.close_extra_calls();
                    return Ok(appended);
                }
                Err(AppendError::Retriable(m)) => {
                    let Ok(wait) = retry.next_wait() else {
                        return Err(TaskError::retriable(m));
                    };
                    let attempt = retry.retries();
                    tracing::warn!(connector = %self.connector, task = self.task, partition = %tp, attempt, retry_in_ms = wait.as_millis() as u64, error = %m, "BigQuery append failed; retrying (bigQueryRetry).");
                    tokio::time::sleep(wait).await;
                }
                Err(AppendError::Fatal(m)) => return Err(TaskError::fatal(m)),
            }
        }
    }

    /// The commit metadata for `tp`: its stream and the position after its rows.
    pub(crate) fn metadata(&self, tp: &TopicPartition) -> Option<String> {
        self.writers
            .get(tp)?
            .position()
            .map(|at| writer::metadata(&at))
    }

    /// Marks new streams recorded by a commit as usable; true if any was.
    pub(crate) fn committed<'a>(
        &mut self,
        positions: impl IntoIterator<Item = (&'a TopicPartition, &'a OffsetAndMetadata)>,
    ) -> bool {
        let mut any = false;
        for (tp, c) in positions {
            let Some(at) = c.metadata.as_deref().and_then(writer::parse_metadata) else {
                continue;
            };
            if let Some(w) = self.writers.get_mut(tp)
                && w.registered(&at.stream)
            {
                any = true;
            }
        }
        any
    }

    /// Forgets revoked partitions' writers. Their streams stay open for the partitions'
    /// next owner, which resumes them from the commit.
    pub(crate) fn close(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.writers.remove(tp);
        }
    }

    /// Closes the least recently used calls beyond [`MAX_OPEN_CALLS`].
    fn close_extra_calls(&mut self) {
        let mut open: Vec<(std::time::Instant, TopicPartition)> = self
            .writers
            .iter()
            .filter_map(|(tp, w)| w.call_used().map(|t| (t, tp.clone())))
            .collect();
        if open.len() <= MAX_OPEN_CALLS {
            return;
        }
        open.sort();
        for (_, tp) in open.iter().take(open.len() - MAX_OPEN_CALLS) {
            if let Some(w) = self.writers.get_mut(tp) {
                w.close_call();
            }
        }
    }

    pub(crate) fn close_idle_calls(&mut self) {
        for w in self.writers.values_mut() {
            w.close_if_idle();
        }
    }
}
