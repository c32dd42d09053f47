//! One partition's writes: a `COMMITTED` stream, appended to at explicit offsets over one
//! long-lived `AppendRows` call, one request in flight at a time.
//!
//! The stream's row offsets are what make writes idempotent. The task appends a
//! partition's rows in record order, so each record has one position in its stream, and
//! the position after the last row is stored in the Kafka commit beside the record offset
//! (see [`Position`]). Whenever ferry cannot be sure how far the stream got — an append
//! whose answer was lost, a stream resumed after a restart or a rebalance — the writer is
//! *unsettled*: it appends the next rows at the position they had, and BigQuery's answer
//! says where the stream ends. `ALREADY_EXISTS` means the first row is in; the writer then
//! asks about the last row alone, and if the end lies between, finds it by bisection with
//! one-row appends (each either finds its row in, lands exactly at the end, or lies beyond
//! it: `OUT_OF_RANGE`). Rows found in the stream count as written and are never sent twice.

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
/// quiet partition (or yesterday's topic) holds no call open on the server, and the next
/// append does not find one the server has dropped meanwhile.
const IDLE_CALL: Duration = Duration::from_secs(60);

/// What became of an append.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Every row is in the table (written now, or found there).
    Written,
    /// The first `n` rows are in the table; the others go again.
    Prefix(usize),
    /// None is: BigQuery refused these rows (index in the request, reason); the others
    /// may go again.
    Refused(Vec<(usize, String)>),
    /// None was sent: the partition's stream is new, and rows go to it only once a commit
    /// has recorded it ([`StreamWriter::registered`]), so that a restart knows it.
    Held,
}

/// Why an append did not end with an answer about its rows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AppendError {
    Retriable(String),
    Fatal(String),
}

/// Where a partition's stream stands: `row` rows of the partition's records before the
/// committed offset are in `stream`, made for a row message with `fingerprint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) stream: String,
    pub(crate) row: i64,
    pub(crate) fingerprint: String,
}

/// What an answer (or its absence) says; decided in [`judge`].
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Written,
    /// `ALREADY_EXISTS`: the stream holds a row at the request's offset.
    Exists,
    /// `OUT_OF_RANGE`: the request's offset lies beyond the stream's end.
    Beyond,
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
    /// Every row appended to the stream follows this message; `None` for a resumed stream
    /// before its first append (known only by `fingerprint`).
    row_type: Option<Arc<RowType>>,
    fingerprint: String,
    /// Where the next rows go.
    offset: i64,
    /// Whether the stream may hold rows at and past `offset` (see the module's text).
    unsettled: bool,
    /// Resumed from a commit and not yet answered: an error naming the stream means it is
    /// gone.
    resumed: bool,
    /// Recorded in a commit. Rows go only to a recorded stream: rows in a stream no commit
    /// names could not be found again after a crash, and would be written twice.
    registered: bool,
}

#[derive(Debug)]
pub(crate) struct StreamWriter {
    client: Client,
    /// `connector`, `task`, `partition`: for log lines.
    connector: String,
    task: usize,
    partition: String,
    table: String,
    stream: Option<Stream>,
    connection: Option<Connection>,
    /// When the last append ended.
    used: Instant,
}

impl StreamWriter {
    pub(crate) fn new(
        client: Client,
        connector: &str,
        task: usize,
        partition: &str,
        table: &str,
    ) -> Self {
        Self {
            client,
            connector: connector.to_string(),
            task,
            partition: partition.to_string(),
            table: table.to_string(),
            stream: None,
            connection: None,
            used: Instant::now(),
        }
    }

    /// The table the writer's stream is on.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// A writer continuing the stream of a commit: its next rows go at `at.row`.
    pub(crate) fn resume(mut self, at: Position) -> Self {
        tracing::info!(connector = %self.connector, task = self.task, partition = %self.partition, stream = %at.stream, row = at.row, "Resuming the partition's write stream where the last commit left it.");
        self.stream = Some(Stream {
            name: at.stream,
            row_type: None,
            fingerprint: at.fingerprint,
            offset: at.row,
            unsettled: true,
            resumed: true,
            registered: true,
        });
        self
    }

    /// A commit recorded `stream` for the partition. True if that made the writer's new
    /// stream usable.
    pub(crate) fn registered(&mut self, stream: &str) -> bool {
        match &mut self.stream {
            Some(s) if s.name == stream && !s.registered => {
                s.registered = true;
                true
            }
            _ => false,
        }
    }

    /// The stream's position, for the commit metadata; `None` before any stream.
    pub(crate) fn position(&self) -> Option<Position> {
        self.stream.as_ref().map(|s| Position {
            stream: s.name.clone(),
            row: s.offset,
            fingerprint: s.fingerprint.clone(),
        })
    }

    /// Closes the `AppendRows` call if it has been idle for [`IDLE_CALL`].
    pub(crate) fn close_if_idle(&mut self) {
        if self.used.elapsed() >= IDLE_CALL {
            self.connection = None;
        }
    }

    /// When its open `AppendRows` call was last used; `None` without one.
    pub(crate) fn call_used(&self) -> Option<Instant> {
        self.connection.as_ref().map(|_| self.used)
    }

    /// Closes the `AppendRows` call; the next append opens another.
    pub(crate) fn close_call(&mut self) {
        self.connection = None;
    }

    /// Appends `rows`, encoded as `row_type`, and returns once BigQuery answered about
    /// them.
    pub(crate) async fn append(
        &mut self,
        row_type: &Arc<RowType>,
        rows: Vec<Bytes>,
    ) -> Result<Appended, AppendError> {
        let table = self.client.table_name(&self.table);
        self.close_if_idle();
        self.fit_stream(row_type, &table).await;
        if self.stream.is_none() {
            let name = self.create_stream(&table).await?;
            self.connection = None;
            self.stream = Some(Stream {
                name,
                row_type: Some(row_type.clone()),
                fingerprint: row_type.fingerprint().to_string(),
                offset: 0,
                unsettled: false,
                resumed: false,
                registered: false,
            });
        }
        if self.stream.as_ref().is_some_and(|s| !s.registered) {
            return Ok(Appended::Held);
        }
        let n = rows.len();
        let first = self.send(&rows, 0, n, &table).await?;
        let Some(stream) = self.stream.as_mut() else {
            return Err(AppendError::Fatal(format!(
                "appending to {table}: no stream (a bug in ferry)"
            )));
        };
        match first {
            Verdict::Written => {
                stream.offset += n as i64;
                stream.unsettled = false;
                Ok(Appended::Written)
            }
            Verdict::Refused(refused) => {
                // Refused rows were judged at the stream's end: nothing lies past it.
                stream.unsettled = false;
                Ok(Appended::Refused(refused))
            }
            Verdict::Exists => {
                if !stream.unsettled {
                    tracing::warn!(connector = %self.connector, task = self.task, partition = %self.partition, stream = %stream.name, offset = stream.offset, "The write stream already has rows where ferry appends; another writer was on this partition (a rebalance). Skipping the rows it holds.");
                    stream.unsettled = true;
                }
                self.find_end(&rows, &table).await
            }
            Verdict::Beyond => Err(self.shorter_than_committed(&table)),
            other => Err(self.failed(other, &table)),
        }
    }

    /// Makes `self.stream` fit for rows of `row_type`: a stream made for other columns is
    /// retired (finalized), so that a new one is created for the table as it is now.
    async fn fit_stream(&mut self, row_type: &Arc<RowType>, table: &str) {
        let Some(s) = &mut self.stream else { return };
        match &s.row_type {
            Some(t) if Arc::ptr_eq(t, row_type) => {}
            None if s.fingerprint == row_type.fingerprint() => s.row_type = Some(row_type.clone()),
            None => {
                tracing::warn!(connector = %self.connector, task = self.task, partition = %self.partition, table = %table, stream = %s.name, "The table's columns changed since the last commit's write stream was made; a new stream takes the partition's rows, and rows written after that commit may be in the table twice.");
                self.stream = None;
                self.connection = None;
            }
            Some(_) => {
                // The table gained columns: a stream created now knows them.
                self.retire().await;
            }
        }
    }

    async fn create_stream(&mut self, table: &str) -> Result<String, AppendError> {
        match tokio::time::timeout(CALL_TIMEOUT, self.client.create_stream(&self.table)).await {
            Err(_) => Err(AppendError::Retriable(format!(
                "creating a write stream on {table}: no answer within {} s",
                CALL_TIMEOUT.as_secs()
            ))),
            Ok(Err(status)) => {
                let line = format!(
                    "creating a write stream on {table}: {:?}: {}",
                    status.code(),
                    status.message()
                );
                Err(if is_retriable_call(&status) {
                    AppendError::Retriable(line)
                } else {
                    AppendError::Fatal(line)
                })
            }
            Ok(Ok(name)) => {
                tracing::info!(connector = %self.connector, task = self.task, partition = %self.partition, table = %table, stream = %name, "Created a COMMITTED write stream (Storage Write API).");
                Ok(name)
            }
        }
    }

    /// The first row is in the stream: finds how many of `rows` are, appending those that
    /// land exactly at its end. Each probe is one row.
    async fn find_end(&mut self, rows: &[Bytes], table: &str) -> Result<Appended, AppendError> {
        let n = rows.len();
        if n == 1 {
            return Ok(self.found(1));
        }
        match self.send(rows, n - 1, n, table).await? {
            Verdict::Exists => return Ok(self.found(n)),
            Verdict::Written => return Ok(self.settle(n)),
            Verdict::Beyond => {}
            other => return Err(self.failed(other, table)),
        }
        // The end lies after row 0 and before row n-1: at row lo..=hi.
        let (mut lo, mut hi) = (1, n - 2);
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            match self.send(rows, mid, mid + 1, table).await? {
                Verdict::Exists => lo = mid + 1,
                Verdict::Beyond => hi = mid - 1,
                Verdict::Written => {
                    // Rows up to mid are in now; the rest follow as a normal append.
                    self.settle(mid + 1);
                    return Ok(Appended::Prefix(mid + 1));
                }
                other => return Err(self.failed(other, table)),
            }
        }
        Err(AppendError::Fatal(format!(
            "appending to {table}: the write stream's answers about its end contradict each other (a bug in ferry, or another writer on the stream)"
        )))
    }

    /// All `n` rows of the request were found in the stream, which may hold more.
    fn found(&mut self, n: usize) -> Appended {
        if let Some(s) = &mut self.stream {
            tracing::info!(connector = %self.connector, task = self.task, partition = %self.partition, stream = %s.name, row = s.offset, rows = n, "BigQuery already had these rows in the write stream (an append whose answer was lost, or a run before a restart); not written twice.");
            s.offset += n as i64;
        }
        Appended::Written
    }

    /// The stream ends after `n` more rows (the last was just appended).
    fn settle(&mut self, n: usize) -> Appended {
        if let Some(s) = &mut self.stream {
            s.offset += n as i64;
            s.unsettled = false;
            tracing::info!(connector = %self.connector, task = self.task, partition = %self.partition, stream = %s.name, row = s.offset, "Found where the write stream ends; rows before it were already in the table and are not written twice.");
        }
        Appended::Written
    }

    /// `OUT_OF_RANGE` at the position the last commit (or ferry's own count) gave: the
    /// stream holds fewer rows than it should. Nothing can be done about rows BigQuery no
    /// longer has; ferry goes on with a new stream rather than stop the partition.
    fn shorter_than_committed(&mut self, table: &str) -> AppendError {
        let stream = self.stream.take();
        self.connection = None;
        let (name, offset) = stream.map_or((String::new(), 0), |s| (s.name, s.offset));
        tracing::error!(connector = %self.connector, task = self.task, partition = %self.partition, table = %table, stream = %name, row = offset, "The write stream holds fewer rows than the offsets committed to Kafka say it should; BigQuery lost rows ferry had acknowledged. Going on with a new stream.");
        AppendError::Retriable(format!(
            "appending to {table}: stream {name} ends before row {offset}; a new stream takes the rows"
        ))
    }

    /// An error verdict as the append's error, dropping what it makes useless.
    fn failed(&mut self, verdict: Verdict, table: &str) -> AppendError {
        let Some(stream) = &mut self.stream else {
            return AppendError::Fatal(format!("appending to {table}: no stream (a bug in ferry)"));
        };
        let what = format!(
            "appending to {table} at row {} of stream {}",
            stream.offset, stream.name
        );
        match verdict {
            Verdict::Retry(reason) => {
                // The rows may be in: the next append finds out.
                stream.unsettled = true;
                self.connection = None;
                AppendError::Retriable(format!("{what}: {reason}"))
            }
            Verdict::StreamGone(reason) => self.gone(what, reason),
            Verdict::Fatal(reason) if stream.resumed => {
                // A resumed stream that cannot be appended to (finalized, unknown to this
                // server): the same as gone.
                self.gone(what, reason)
            }
            Verdict::Fatal(reason) => {
                self.connection = None;
                AppendError::Fatal(format!("{what}: {reason}"))
            }
            Verdict::Written | Verdict::Exists | Verdict::Beyond | Verdict::Refused(_) => {
                AppendError::Fatal(format!("{what}: an answer out of place (a bug in ferry)"))
            }
        }
    }

    fn gone(&mut self, what: String, reason: String) -> AppendError {
        if let Some(s) = self.stream.take()
            && s.unsettled
        {
            tracing::warn!(connector = %self.connector, task = self.task, partition = %self.partition, stream = %s.name, "The write stream is gone before ferry knew how far it got; a new stream takes the rows, and rows written to the old one since the last commit may be in the table twice.");
        }
        self.connection = None;
        AppendError::Retriable(format!("{what}: {reason}"))
    }

    /// Sends `rows[from..to]` at their positions and judges the answer; a probe when
    /// `to - from` is one row of several.
    async fn send(
        &mut self,
        rows: &[Bytes],
        from: usize,
        to: usize,
        table: &str,
    ) -> Result<Verdict, AppendError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(AppendError::Fatal(format!(
                "appending to {table}: no stream (a bug in ferry)"
            )));
        };
        let Some(row_type) = stream.row_type.clone() else {
            return Err(AppendError::Fatal(format!(
                "appending to {table}: a stream with no row type (a bug in ferry)"
            )));
        };
        let request = AppendRowsRequest {
            write_stream: stream.name.clone(),
            offset: Some(stream.offset + from as i64),
            trace_id: concat!("ferry/", env!("CARGO_PKG_VERSION")).to_string(),
            rows: Some(Rows::ProtoRows(ProtoData {
                // Once per call: later requests on it follow the same schema.
                writer_schema: self.connection.is_none().then(|| ProtoSchema {
                    proto_descriptor: Some(row_type.descriptor().clone()),
                }),
                rows: Some(ProtoRows {
                    serialized_rows: rows[from..to].to_vec(),
                }),
            })),
            ..Default::default()
        };
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
        let verdict = judge(answer, to - from);
        if let Some(s) = &mut self.stream
            && !matches!(
                verdict,
                Verdict::Retry(_) | Verdict::StreamGone(_) | Verdict::Fatal(_)
            )
        {
            s.resumed = false;
        }
        Ok(verdict)
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

/// What the answer to an append of `n` rows means.
fn judge(answer: Result<AppendRowsResponse, Status>, n: usize) -> Verdict {
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
        Code::AlreadyExists => Verdict::Exists,
        Code::OutOfRange => Verdict::Beyond,
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

/// The commit metadata of a position: `ferry.bigquery/1 row=<n> schema=<fingerprint>
/// stream=<name>`, the stream last (resource names have no spaces, but it is the longest).
pub(crate) fn metadata(at: &Position) -> String {
    format!(
        "{METADATA_TAG} row={} schema={} stream={}",
        at.row, at.fingerprint, at.stream
    )
}

const METADATA_TAG: &str = "ferry.bigquery/1";

/// A position read back from commit metadata; `None` for anything else (another
/// connector's, or a damaged one).
pub(crate) fn parse_metadata(text: &str) -> Option<Position> {
    let mut words = text.split(' ');
    if words.next()? != METADATA_TAG {
        return None;
    }
    let row = words.next()?.strip_prefix("row=")?.parse().ok()?;
    let fingerprint = words.next()?.strip_prefix("schema=")?.to_string();
    let stream = words.next()?.strip_prefix("stream=")?.to_string();
    (words.next().is_none() && row >= 0 && !stream.is_empty()).then_some(Position {
        stream,
        row,
        fingerprint,
    })
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
    fn offsets_before_and_past_the_end_are_told_apart() {
        assert_eq!(judge(result(), 3), Verdict::Written);
        assert_eq!(
            judge(error(Code::AlreadyExists, "Offset 0 exists", &[]), 3),
            Verdict::Exists
        );
        assert_eq!(
            judge(
                error(Code::OutOfRange, "Offset 9 is beyond the end", &[]),
                3
            ),
            Verdict::Beyond
        );
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
            judge(e, 3),
            Verdict::Refused(vec![(1, "Missing required field: id.".into())])
        );
        let bad = error(Code::InvalidArgument, "Stream is finalized", &[]);
        assert_eq!(
            judge(bad, 3),
            Verdict::Fatal("InvalidArgument: Stream is finalized".into())
        );
    }

    #[test]
    fn transient_failures_retry_and_a_lost_stream_is_replaced() {
        let e = judge(Err(Status::unavailable("connection refused")), 3);
        assert_eq!(e, Verdict::Retry("Unavailable: connection refused".into()));
        let cut = Status::unknown("error reading a body from connection");
        assert!(matches!(judge(Err(cut), 3), Verdict::Retry(_)));
        let answered = error(Code::Unknown, "no idea", &[]);
        assert!(matches!(judge(answered, 3), Verdict::Fatal(_)));
        let e = judge(error(Code::Internal, "backend", &[]), 3);
        assert!(matches!(e, Verdict::Retry(_)));
        let e = judge(Err(Status::not_found("stream expired")), 3);
        assert!(matches!(e, Verdict::StreamGone(_)));
        let e = judge(Err(Status::permission_denied("no")), 3);
        assert_eq!(e, Verdict::Fatal("PermissionDenied: no".into()));
    }

    #[test]
    fn positions_survive_the_commit_metadata_and_nothing_else_passes_for_one() {
        let at = Position {
            stream: "projects/p/datasets/d/tables/t/streams/abc".into(),
            row: 1234,
            fingerprint: "0123456789abcdef".into(),
        };
        let text = metadata(&at);
        assert_eq!(
            text,
            "ferry.bigquery/1 row=1234 schema=0123456789abcdef stream=projects/p/datasets/d/tables/t/streams/abc"
        );
        assert_eq!(parse_metadata(&text), Some(at));
        for other in [
            "",
            "ferry.bigquery/2 row=1 schema=x stream=s",
            "ferry.bigquery/1 row=-1 schema=x stream=s",
            "ferry.bigquery/1 row=1 schema=x",
            "ferry.bigquery/1 row=1 schema=x stream=s extra",
            "ferry.bigquery/1 stream=s row=1 schema=x",
            "some other sink's metadata",
        ] {
            assert_eq!(parse_metadata(other), None, "{other}");
        }
    }
}
