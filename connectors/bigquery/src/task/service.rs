//! The two write paths: `tabledata.insertAll` over REST and appends through the Storage
//! Write API ([`Streams`]), each retried as `bigQueryRetry` says; rows BigQuery refuses
//! go to `errors.tolerance`.

use std::collections::HashMap;
use std::sync::Arc;

use ferry_connector_api::{RecordError, SinkRecord, TaskContext, TaskError, TopicPartition};

use super::request::{self, Pending};
use crate::config::BigQueryConfig;
use crate::rest::{CallError, Rest};
use crate::storage::{Appended, Streams};

pub(super) struct Service {
    pub(super) config: Arc<BigQueryConfig>,
    pub(super) rest: Rest,
    /// With `useStorageWriteApi=true`: rows are appended to a write stream per partition,
    /// not inserted with insertAll.
    pub(super) streams: Option<Streams>,
    pub(super) ctx: TaskContext,
}

impl Service {
    /// Reports a record to `errors.tolerance`: an error under `none`, else it is skipped.
    pub(super) fn reject(&self, r: &SinkRecord, reason: String) -> Result<(), TaskError> {
        self.ctx.errant.report(r, &RecordError::new(reason))
    }

    /// One insertAll request. Leaves in `chunk` the rows to send again: none after
    /// success, those refused only because another row was, or all after an error.
    pub(super) async fn insert(
        &mut self,
        table: &str,
        chunk: &mut Vec<Pending>,
    ) -> Result<(), TaskError> {
        let request = request::insert_rows(chunk)?;
        let mut retry = self.config.retry_policy().start();
        let rejections = loop {
            match self.rest.insert_all(table, &request).await {
                Ok(rejections) => break rejections,
                Err(CallError::Retriable(m)) => {
                    let Ok(wait) = retry.next_wait() else {
                        return Err(TaskError::retriable(m));
                    };
                    let attempt = retry.retries();
                    tracing::warn!(connector = %self.ctx.connector, task = self.ctx.task_id, attempt, retry_in_ms = wait.as_millis() as u64, error = %m, "BigQuery insert failed; retrying (bigQueryRetry).");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(TaskError::fatal(e.to_string())),
            }
        };
        if rejections.is_empty() {
            chunk.clear();
            return Ok(());
        }
        // Rows with errors of their own go to errors.tolerance; the rest were only
        // stopped and go again.
        let mut own: HashMap<usize, String> = HashMap::new();
        for rej in rejections {
            if !rej.stopped {
                own.insert(rej.index, rej.message);
            }
        }
        if own.is_empty() {
            return Err(TaskError::retriable(format!(
                "BigQuery refused every row of a request to {} as stopped, naming none as invalid",
                self.rest.table_name(table)
            )));
        }
        self.refuse(table, chunk, own)
    }

    /// One Storage Write append of `tp`'s rows. Leaves in `chunk` the rows to send again,
    /// as `insert` does. False: none was sent, the partition's new stream waits for a
    /// commit to record it.
    pub(super) async fn append(
        &mut self,
        table: &str,
        tp: &TopicPartition,
        chunk: &mut Vec<Pending>,
    ) -> Result<bool, TaskError> {
        let (row_type, rows) = request::append_rows(chunk)?;
        let Some(streams) = self.streams.as_mut() else {
            return Err(TaskError::fatal(
                "a row for insertAll among Storage Write rows (a bug in ferry)",
            ));
        };
        let retry = self.config.retry_policy();
        match streams.append(tp, table, &row_type, rows, &retry).await? {
            Appended::Written => chunk.clear(),
            Appended::Prefix(n) => {
                chunk.drain(..n);
            }
            Appended::Held => {
                self.ctx.commits.request_commit();
                return Ok(false);
            }
            Appended::Refused(refused) => {
                self.refuse(table, chunk, refused.into_iter().collect())?
            }
        }
        Ok(true)
    }

    /// Hands the rows BigQuery refused (by index in `chunk`) to `errors.tolerance`, and
    /// leaves the others in `chunk` to go again.
    fn refuse(
        &self,
        table: &str,
        chunk: &mut Vec<Pending>,
        mut own: HashMap<usize, String>,
    ) -> Result<(), TaskError> {
        let mut again = Vec::with_capacity(chunk.len());
        for (i, p) in std::mem::take(chunk).into_iter().enumerate() {
            match own.remove(&i) {
                Some(message) => {
                    let reason = format!(
                        "BigQuery refused its row for {}: {message}",
                        self.rest.table_name(table)
                    );
                    self.reject(&p.record, reason)?;
                }
                None => again.push(p),
            }
        }
        *chunk = again;
        Ok(())
    }
}
