//! One task's writes to one table: a `COMMITTED` stream, appended to at explicit offsets
//! over one long-lived `AppendRows` call, one request in flight at a time.
//!
//! The offset is what makes a retry safe. Rows are appended at the stream's next offset;
//! when no answer comes (a timeout, a broken connection), the same rows are sent again at
//! the same offset, alone — the task keeps them at the front of its buffer, [`pinned`]
//! tells it how many — and BigQuery either writes them (the first attempt was lost) or
//! answers `ALREADY_EXISTS` (it was written): either way they are in the table once.
//!
//! [`pinned`]: TableWriter::pinned

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tonic::{Code, Status};

use super::client::{
    Answer, AppendRowsRequest, AppendRowsResponse, Client, Connection, ProtoData, ProtoRows,
    ProtoSchema, Rows, is_retriable, is_retriable_call,
};
use super::proto::RowType;

/// BigQuery answers an append within seconds; a minute means the call is stuck.
const APPEND_TIMEOUT: Duration = Duration::from_secs(60);
/// For CreateWriteStream and FinalizeWriteStream.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// An `AppendRows` call unused this long is closed; the next append opens another. A
/// quiet topic (or yesterday's table) holds no call open on the server, and the next append
/// does not find one the server has dropped meanwhile.
const IDLE_CALL: Duration = Duration::from_secs(60);

/// What became of an append.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Every row is in the table.
    Written,
    /// None is: BigQuery refused these rows (index in the request, reason); the others
    /// may go again.
    Refused(Vec<(usize, String)>),
}

/// Why an append did not end with an answer about its rows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AppendError {
    Retriable(String),
    Fatal(String),
}

/// What an answer (or its absence) means; decided in [`judge`], applied in `append`.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Written,
    /// `ALREADY_EXISTS` for rows whose earlier append went unanswered: it was written.
    AlreadyWritten,
    Refused(Vec<(usize, String)>),
    /// Try again on a new connection; the rows may or may not be in.
    Retry(String),
    /// The stream is gone (expired, or the server forgot it): append to a new one.
    StreamGone(String),
    Fatal(String),
}

/// The stream being written.
#[derive(Debug)]
struct Stream {
    name: String,
    /// Every row appended to the stream follows this message.
    row_type: Arc<RowType>,
    /// Where the next rows go.
    offset: i64,
    /// Rows appended at `offset` with no answer yet: they go again, alone, at `offset`.
    unsure: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct TableWriter {
    client: Client,
    /// The connector's name and the task's number, for log lines.
    connector: String,
    task: usize,
    table: String,
    stream: Option<Stream>,
    connection: Option<Connection>,
    /// When the last append ended.
    used: Instant,
}

impl TableWriter {
    pub(crate) fn new(client: Client, connector: &str, task: usize, table: &str) -> Self {
        Self {
            client,
            connector: connector.to_string(),
            task,
            table: table.to_string(),
            stream: None,
            connection: None,
            used: Instant::now(),
        }
    }

    /// Closes the `AppendRows` call if it has been idle for [`IDLE_CALL`].
    pub(crate) fn close_if_idle(&mut self) {
        if self.used.elapsed() >= IDLE_CALL {
            self.connection = None;
        }
    }

    /// How many rows the next append must hold: those of an append that got no answer.
    pub(crate) fn pinned(&self) -> Option<usize> {
        self.stream.as_ref().and_then(|s| s.unsure)
    }

    /// Appends `rows`, encoded as `row_type`, and returns once BigQuery answered about
    /// them.
    pub(crate) async fn append(
        &mut self,
        row_type: &Arc<RowType>,
        rows: Vec<Bytes>,
    ) -> Result<Appended, AppendError> {
        let n = rows.len();
        let table = self.client.table_name(&self.table);
        self.close_if_idle();
        if let Some(s) = &self.stream {
            if s.unsure.is_some_and(|pinned| pinned != n)
                || (s.unsure.is_some() && !Arc::ptr_eq(&s.row_type, row_type))
            {
                return Err(AppendError::Fatal(format!(
                    "appending to {table}: the rows of an unanswered append must go again alone and unchanged (a bug in ferry)"
                )));
            }
            if !Arc::ptr_eq(&s.row_type, row_type) {
                // The table gained columns: a stream created now knows them.
                self.retire().await;
            }
        }
        let stream = match &mut self.stream {
            Some(s) => s,
            None => {
                let name = match tokio::time::timeout(
                    CALL_TIMEOUT,
                    self.client.create_stream(&self.table),
                )
                .await
                {
                    Err(_) => {
                        return Err(AppendError::Retriable(format!(
                            "creating a write stream on {table}: no answer within {} s",
                            CALL_TIMEOUT.as_secs()
                        )));
                    }
                    Ok(Err(status)) => {
                        let line = format!(
                            "creating a write stream on {table}: {:?}: {}",
                            status.code(),
                            status.message()
                        );
                        return Err(if is_retriable_call(&status) {
                            AppendError::Retriable(line)
                        } else {
                            AppendError::Fatal(line)
                        });
                    }
                    Ok(Ok(name)) => name,
                };
                tracing::info!(connector = %self.connector, task = self.task, table = %table, stream = %name, "Created a COMMITTED write stream (Storage Write API).");
                self.connection = None;
                self.stream.insert(Stream {
                    name,
                    row_type: row_type.clone(),
                    offset: 0,
                    unsure: None,
                })
            }
        };
        let was_unsure = stream.unsure.is_some();
        let request = AppendRowsRequest {
            write_stream: stream.name.clone(),
            offset: Some(stream.offset),
            trace_id: concat!("ferry/", env!("CARGO_PKG_VERSION")).to_string(),
            rows: Some(Rows::ProtoRows(ProtoData {
                // Once per call: later requests on it follow the same schema.
                writer_schema: self.connection.is_none().then(|| ProtoSchema {
                    proto_descriptor: Some(stream.row_type.descriptor().clone()),
                }),
                rows: Some(ProtoRows {
                    serialized_rows: rows,
                }),
            })),
            ..Default::default()
        };
        stream.unsure = Some(n);
        let answer = match tokio::time::timeout(
            APPEND_TIMEOUT,
            exchange(&self.client, &mut self.connection, request),
        )
        .await
        {
            Ok(answer) => answer,
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no answer within {} s",
                APPEND_TIMEOUT.as_secs()
            ))),
        };
        self.used = Instant::now();
        let what = format!(
            "appending {n} rows to {table} at offset {} of stream {}",
            stream.offset, stream.name
        );
        match judge(answer, was_unsure, n) {
            Verdict::Written => {
                stream.offset += n as i64;
                stream.unsure = None;
                Ok(Appended::Written)
            }
            Verdict::AlreadyWritten => {
                tracing::info!(connector = %self.connector, task = self.task, table = %table, stream = %stream.name, offset = stream.offset, rows = n, "BigQuery already had the rows of an unanswered append; not written twice.");
                stream.offset += n as i64;
                stream.unsure = None;
                Ok(Appended::Written)
            }
            Verdict::Refused(rows) => {
                stream.unsure = None;
                Ok(Appended::Refused(rows))
            }
            Verdict::Retry(reason) => {
                self.connection = None;
                Err(AppendError::Retriable(format!("{what}: {reason}")))
            }
            Verdict::StreamGone(reason) => {
                if was_unsure {
                    tracing::warn!(connector = %self.connector, task = self.task, table = %table, stream = %stream.name, rows = n, "The write stream is gone with an append unanswered; its rows go to a new stream and may be in the table twice.");
                }
                self.connection = None;
                self.stream = None;
                Err(AppendError::Retriable(format!("{what}: {reason}")))
            }
            Verdict::Fatal(reason) => {
                self.connection = None;
                Err(AppendError::Fatal(format!("{what}: {reason}")))
            }
        }
    }

    /// Ends the stream: closes the call and finalizes it (best effort: its rows are
    /// committed already).
    pub(crate) async fn retire(&mut self) {
        self.connection = None;
        let Some(stream) = self.stream.take() else {
            return;
        };
        match tokio::time::timeout(CALL_TIMEOUT, self.client.finalize(&stream.name)).await {
            Ok(Ok(rows)) => {
                tracing::debug!(stream = %stream.name, rows, "Finalized the write stream.")
            }
            Ok(Err(status)) => {
                tracing::debug!(stream = %stream.name, code = ?status.code(), error = %status.message(), "Could not finalize the write stream; its rows are committed all the same.")
            }
            Err(_) => {
                tracing::debug!(stream = %stream.name, "No answer to finalizing the write stream; its rows are committed all the same.")
            }
        }
    }
}

/// Sends `request` on the open call, or opens one with it, and waits for its answer. The
/// call is put back only once answered: if this is cancelled (a flush timeout) or fails,
/// an answer may still be on its way, and the next request must not take it for its own.
async fn exchange(
    client: &Client,
    connection: &mut Option<Connection>,
    request: AppendRowsRequest,
) -> Result<AppendRowsResponse, Status> {
    let mut c = match connection.take() {
        Some(mut c) => {
            c.send(request).await?;
            c
        }
        None => client.connect(request).await?,
    };
    let answer = c.answer().await?;
    *connection = Some(c);
    Ok(answer)
}

/// What the answer to an append of `n` rows means. `was_unsure`: these rows went before,
/// at the same offset, and got no answer.
fn judge(answer: Result<AppendRowsResponse, Status>, was_unsure: bool, n: usize) -> Verdict {
    let (code, message, row_errors) = match answer {
        Err(status) if is_retriable_call(&status) => {
            return Verdict::Retry(format!("{:?}: {}", status.code(), status.message()));
        }
        Err(status) => (status.code(), status.message().to_string(), Vec::new()),
        Ok(AppendRowsResponse {
            response: Some(Answer::AppendResult(_)),
            ..
        }) => return Verdict::Written,
        Ok(AppendRowsResponse {
            response: Some(Answer::Error(status)),
            row_errors,
            ..
        }) => (Code::from_i32(status.code), status.message, row_errors),
        Ok(AppendRowsResponse { response: None, .. }) => {
            return Verdict::Fatal("an answer with neither a result nor an error".into());
        }
    };
    let line = format!("{code:?}: {message}");
    match code {
        Code::AlreadyExists if was_unsure => Verdict::AlreadyWritten,
        Code::AlreadyExists | Code::OutOfRange => Verdict::Fatal(format!(
            "{line} (the stream's offsets disagree with ferry's count; a bug, or another writer on the stream)"
        )),
        Code::InvalidArgument if !row_errors.is_empty() => {
            let refused: Vec<(usize, String)> = row_errors
                .into_iter()
                .filter_map(|e| {
                    let i = usize::try_from(e.index).ok().filter(|&i| i < n)?;
                    Some((i, e.message))
                })
                .collect();
            if refused.is_empty() {
                Verdict::Fatal(format!("{line} (row errors name no row of the request)"))
            } else {
                Verdict::Refused(refused)
            }
        }
        Code::NotFound => Verdict::StreamGone(line),
        c if is_retriable(c) => Verdict::Retry(line),
        _ => Verdict::Fatal(line),
    }
}

#[cfg(test)]
mod tests {
    use googleapis_tonic_google_cloud_bigquery_storage_v1::google::cloud::bigquery::storage::v1 as api;
    use googleapis_tonic_google_cloud_bigquery_storage_v1::google::rpc;

    use super::*;

    fn result() -> Result<AppendRowsResponse, Status> {
        Ok(AppendRowsResponse {
            response: Some(Answer::AppendResult(
                api::append_rows_response::AppendResult { offset: Some(0) },
            )),
            ..Default::default()
        })
    }

    fn error(
        code: Code,
        message: &str,
        rows: &[(i64, &str)],
    ) -> Result<AppendRowsResponse, Status> {
        Ok(AppendRowsResponse {
            response: Some(Answer::Error(rpc::Status {
                code: code as i32,
                message: message.into(),
                details: Vec::new(),
            })),
            row_errors: rows
                .iter()
                .map(|(index, message)| api::RowError {
                    index: *index,
                    code: api::row_error::RowErrorCode::FieldsError as i32,
                    message: message.to_string(),
                })
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn a_result_is_written_and_already_exists_only_after_a_lost_answer() {
        assert_eq!(judge(result(), false, 3), Verdict::Written);
        let exists = || error(Code::AlreadyExists, "Offset 0 exists", &[]);
        assert_eq!(judge(exists(), true, 3), Verdict::AlreadyWritten);
        assert!(
            matches!(judge(exists(), false, 3), Verdict::Fatal(m) if m.contains("Offset 0 exists"))
        );
        let beyond = error(Code::OutOfRange, "Offset 9 is beyond the end", &[]);
        assert!(matches!(judge(beyond, true, 3), Verdict::Fatal(_)));
    }

    #[test]
    fn row_errors_name_the_refused_rows() {
        let e = error(
            Code::InvalidArgument,
            "Rows are invalid",
            &[
                (1, "Missing required field: id."),
                (7, "out of the request"),
            ],
        );
        assert_eq!(
            judge(e, false, 3),
            Verdict::Refused(vec![(1, "Missing required field: id.".into())])
        );
        let bad = error(Code::InvalidArgument, "Stream is finalized", &[]);
        assert_eq!(
            judge(bad, false, 3),
            Verdict::Fatal("InvalidArgument: Stream is finalized".into())
        );
    }

    #[test]
    fn transient_failures_retry_and_a_lost_stream_is_replaced() {
        let e = judge(Err(Status::unavailable("connection refused")), false, 3);
        assert_eq!(e, Verdict::Retry("Unavailable: connection refused".into()));
        let cut = Status::unknown("error reading a body from connection");
        assert!(matches!(judge(Err(cut), true, 3), Verdict::Retry(_)));
        let answered = error(Code::Unknown, "no idea", &[]);
        assert!(matches!(judge(answered, false, 3), Verdict::Fatal(_)));
        let e = judge(error(Code::Internal, "backend", &[]), true, 3);
        assert!(matches!(e, Verdict::Retry(_)));
        let e = judge(Err(Status::not_found("stream expired")), true, 3);
        assert!(matches!(e, Verdict::StreamGone(_)));
        let e = judge(Err(Status::permission_denied("no")), false, 3);
        assert_eq!(e, Verdict::Fatal("PermissionDenied: no".into()));
    }
}
