//! The sink task: turns records into rows, makes sure their table exists with the
//! columns they need, and inserts them with `tabledata.insertAll` (rows as JSON) or, with
//! `useStorageWriteApi=true`, appends them through the Storage Write API (rows as protocol
//! buffers, [`crate::storage`]).
//!
//! Rows are buffered across `put`s and sent when a request's worth is ready (500 rows or
//! 9 MB), when the oldest has waited [`LINGER`], and always in `flush`. The runtime's
//! default `pre_commit` flushes before it returns what was consumed, so no offset is
//! committed past a row BigQuery has not acknowledged (or that `errors.tolerance` did not
//! skip). Buffering matters: the runtime hands a task about 1 MB per batch (~14 ZTF
//! alerts), and one insertAll request per batch ran at a third of the speed of full
//! requests (benches/bigquery).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_connector_api::data::{Data, Schema, Structured};
use ferry_connector_api::{
    Assigned, OffsetAndMetadata, Offsets, RecordError, SinkRecord, SinkTask, TaskContext,
    TaskError, TopicPartition, Value, async_trait,
};
use serde_json::{Map, Value as Json, json};

use crate::config::{BigQueryConfig, Mode};
use crate::raw;
use crate::rest::{CallError, Rest};
use crate::rows;
use crate::schema::{self, Field, Kind};
use crate::storage::{self, Appended, RowType, Streams};

/// insertAll takes at most 50 000 rows and 10 MB per request; Google recommends 500 rows.
/// Storage Write appends have no row limit; they take as many, so both paths batch alike.
const MAX_ROWS_PER_REQUEST: usize = 500;
/// Bytes of row JSON per request, below the 10 MB limit with room for the envelope.
const MAX_BYTES_PER_REQUEST: usize = 9 * 1024 * 1024;

/// What is known of each table, shared by the connector's tasks so that a table is
/// created and widened once.
pub(crate) type Tables = Arc<tokio::sync::Mutex<HashMap<String, TableState>>>;

#[derive(Debug, Default)]
pub(crate) struct TableState {
    /// The table's columns, as last read or written.
    fields: Vec<Field>,
    /// (value schema, key schema) pairs whose rows are known to fit `fields`.
    checked: Vec<(Arc<Schema>, Option<Arc<Schema>>)>,
    /// `fields` as a protocol buffer message (Storage Write), made on first use; a new
    /// one when the columns change.
    row_type: Option<Arc<RowType>>,
}

/// Rows wait at most this long for a full request, as long as records keep coming (a
/// quiet stream's last rows go at the next flush, `offset.flush.interval.ms`).
const LINGER: Duration = Duration::from_secs(1);

/// A row ready to go, serialized, with the record it came from.
struct Pending {
    record: SinkRecord,
    row: Encoded,
}

/// Where buffered rows go: a table, and with the Storage Write API the partition's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lane {
    table: String,
    partition: Option<TopicPartition>,
}

/// A serialized row.
enum Encoded {
    /// For insertAll: JSON text.
    Json(String),
    /// For the Storage Write API: a protocol buffer of `row_type`.
    Proto { row: Bytes, row_type: Arc<RowType> },
}

impl Encoded {
    fn len(&self) -> usize {
        match self {
            Encoded::Json(row) => row.len(),
            Encoded::Proto { row, .. } => row.len(),
        }
    }

    /// Whether the two can go in one request: one writer schema per append.
    fn goes_with(&self, other: &Encoded) -> bool {
        match (self, other) {
            (Encoded::Proto { row_type: a, .. }, Encoded::Proto { row_type: b, .. }) => {
                Arc::ptr_eq(a, b)
            }
            _ => true,
        }
    }
}

pub(crate) struct BigQuerySinkTask {
    config: Arc<BigQueryConfig>,
    rest: Rest,
    /// With `useStorageWriteApi=true`: rows are appended to a write stream per partition,
    /// not inserted with insertAll.
    streams: Option<Streams>,
    tables: Tables,
    ctx: TaskContext,
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
        Self {
            config,
            rest,
            streams,
            tables,
            ctx,
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

    /// Reports a record to `errors.tolerance`: an error under `none`, else it is skipped.
    fn reject(&self, r: &SinkRecord, reason: String) -> Result<(), TaskError> {
        self.ctx.errant.report(r, &RecordError::new(reason))
    }

    /// Rows and bytes per request: insertAll's, or the Storage Write API's.
    fn limits(&self) -> (usize, usize) {
        match &self.streams {
            None => (MAX_ROWS_PER_REQUEST, MAX_BYTES_PER_REQUEST),
            Some(_) if self.config.emulator => {
                (MAX_ROWS_PER_REQUEST, storage::MAX_EMULATOR_REQUEST_BYTES)
            }
            Some(_) => (MAX_ROWS_PER_REQUEST, storage::MAX_REQUEST_BYTES),
        }
    }

    /// The row of one record, after making sure its table can take it.
    async fn row_of(&self, table: &str, r: &SinkRecord) -> Result<Encoded, Failure> {
        let invalid = |e: rows::RowError| Failure::Record(e.to_string());
        if self.config.mode == Mode::Raw {
            self.ensure_table(table, None, raw::table_fields()).await?;
            return match self.row_type(table).await? {
                Some(row_type) => {
                    let row = raw::proto_row(&row_type, r).map_err(invalid)?;
                    self.proto(row, row_type)
                }
                None => Ok(Encoded::Json(json_text(raw::row(r).map_err(invalid)?))),
            };
        }
        let value = match &r.value {
            Some(Value::Structured(s)) => s,
            Some(_) => {
                return Err(Failure::Record(
                    "ferry.bigquery.mode=decoded needs a structured value.converter (ferry.converters.AvroContainerConverter or org.apache.kafka.connect.json.JsonConverter); set one, or ferry.bigquery.mode=raw to load the bytes".into(),
                ));
            }
            None => {
                return Err(Failure::Record(
                    "the record has no value (a tombstone); the BigQuery sink has nothing to insert".into(),
                ));
            }
        };
        let key_schema = match &r.key {
            Some(Value::Structured(k)) => k.schema.clone(),
            _ => None,
        };
        match &value.schema {
            Some(schema) => {
                let mut wanted = schema::table_fields(schema, self.config.all_fields_nullable)
                    .map_err(|e| {
                        Failure::Record(format!("its schema has no BigQuery table: {e}"))
                    })?;
                self.kafka_columns(r, &mut wanted)?;
                self.ensure_table(table, Some((schema.clone(), key_schema)), wanted)
                    .await?;
            }
            None => self.ensure_existing(table).await?,
        }
        match self.row_type(table).await? {
            Some(row_type) => {
                let row = self.proto_row(&row_type, r, value)?;
                self.proto(row, row_type)
            }
            None => {
                let mut row = match &value.schema {
                    Some(schema) => rows::row(schema, &value.data),
                    None => rows::schemaless_row(&value.data),
                }
                .map_err(invalid)?;
                self.add_kafka_values(r, &mut row)?;
                Ok(Encoded::Json(json_text(row)))
            }
        }
    }

    /// A protocol buffer row, unless it is too big for any request.
    fn proto(&self, row: Bytes, row_type: Arc<RowType>) -> Result<Encoded, Failure> {
        let (_, max) = self.limits();
        if row.len() > max {
            return Err(Failure::Record(format!(
                "its row is {} bytes; a Storage Write request takes at most {max} bytes of rows",
                row.len()
            )));
        }
        Ok(Encoded::Proto { row, row_type })
    }

    /// The Storage Write row of a decoded record, with the `kafkaDataFieldName` and
    /// `kafkaKeyFieldName` columns.
    fn proto_row(
        &self,
        row_type: &RowType,
        r: &SinkRecord,
        value: &Structured,
    ) -> Result<Bytes, Failure> {
        let invalid = |e: rows::RowError| Failure::Record(e.to_string());
        let mut w = row_type.writer();
        match &value.schema {
            Some(schema) => w.fields_of(schema, &value.data),
            None => w.entries_of(&value.data),
        }
        .map_err(invalid)?;
        if let Some(name) = &self.config.kafka_data_field {
            let entry = |k: &str, v: Data| (Data::String(k.to_string()), v);
            let meta = Data::Map(vec![
                entry("topic", Data::String(r.topic.to_string())),
                entry("partition", Data::Int32(r.partition)),
                entry("offset", Data::Int64(r.offset)),
                entry(
                    "insertTime",
                    Data::Timestamp(jiff::Timestamp::now().as_microsecond()),
                ),
            ]);
            w.column(name, None, &meta).map_err(invalid)?;
        }
        if let Some(name) = &self.config.kafka_key_field {
            match &r.key {
                None => Ok(()),
                Some(Value::Structured(k)) => w.column(name, k.schema.as_deref(), &k.data),
                Some(Value::String(s)) => w.column(name, None, &Data::String(s.clone())),
                Some(v) => w.column(name, None, &Data::Bytes(v.to_bytes())),
            }
            .map_err(|e| Failure::Record(format!("its key: {e}")))?;
        }
        Ok(w.finish())
    }

    /// The table's protocol buffer message, with the Storage Write API (else `None`). The
    /// table is known: `ensure_table` or `ensure_existing` ran.
    async fn row_type(&self, table: &str) -> Result<Option<Arc<RowType>>, Failure> {
        if self.streams.is_none() {
            return Ok(None);
        }
        let mut tables = self.tables.lock().await;
        let state = tables.entry(table.to_string()).or_default();
        if let Some(row_type) = &state.row_type {
            return Ok(Some(row_type.clone()));
        }
        let row_type =
            Arc::new(RowType::new(&state.fields).map_err(|e| {
                Failure::Fatal(format!("table {}: {e}", self.rest.table_name(table)))
            })?);
        state.row_type = Some(row_type.clone());
        Ok(Some(row_type))
    }

    /// The columns `kafkaDataFieldName` and `kafkaKeyFieldName` add.
    fn kafka_columns(&self, r: &SinkRecord, wanted: &mut Vec<Field>) -> Result<(), Failure> {
        use schema::Mode as M;
        if let Some(name) = &self.config.kafka_data_field {
            wanted.push(Field::record(
                name,
                M::Nullable,
                vec![
                    Field::leaf("topic", Kind::String, M::Nullable),
                    Field::leaf("partition", Kind::Integer, M::Nullable),
                    Field::leaf("offset", Kind::Integer, M::Nullable),
                    Field::leaf("insertTime", Kind::Timestamp, M::Nullable),
                ],
            ));
        }
        if let Some(name) = &self.config.kafka_key_field {
            let column = match &r.key {
                Some(Value::Structured(k)) => match &k.schema {
                    Some(s) => {
                        schema::column(name, &s.clone().as_ref().clone().optional(), name, true)
                            .map_err(|e| {
                                Failure::Record(format!("its key has no BigQuery column: {e}"))
                            })?
                    }
                    None => Field::leaf(name, Kind::Json, M::Nullable),
                },
                Some(Value::String(_)) => Field::leaf(name, Kind::String, M::Nullable),
                _ => Field::leaf(name, Kind::Bytes, M::Nullable),
            };
            wanted.push(column);
        }
        Ok(())
    }

    fn add_kafka_values(&self, r: &SinkRecord, row: &mut Map<String, Json>) -> Result<(), Failure> {
        if let Some(name) = &self.config.kafka_data_field {
            let now = jiff::Timestamp::now().as_microsecond();
            row.insert(
                name.clone(),
                json!({
                    "topic": r.topic.as_ref(),
                    "partition": r.partition,
                    "offset": r.offset.to_string(),
                    "insertTime": rows::timestamp(now, name).map_err(|e| Failure::Record(e.to_string()))?,
                }),
            );
        }
        if let Some(name) = &self.config.kafka_key_field {
            let key = match &r.key {
                None => Json::Null,
                Some(Value::Structured(k)) => match &k.schema {
                    Some(s) => rows::json_of(&s.as_ref().clone().optional(), &k.data, name),
                    None => rows::schemaless_row(&k.data).map(Json::Object),
                }
                .map_err(|e| Failure::Record(format!("its key: {e}")))?,
                Some(Value::String(s)) => Json::String(s.clone()),
                Some(v) => Json::String(base64_of(v.as_bytes())),
            };
            row.insert(name.clone(), key);
        }
        Ok(())
    }

    /// Makes sure `table` exists and has the columns `wanted`: creates it
    /// (`autoCreateTables`), adds missing columns (`allowNewBigQueryFields`), or fails
    /// naming what to change.
    async fn ensure_table(
        &self,
        table: &str,
        schemas: Option<(Arc<Schema>, Option<Arc<Schema>>)>,
        wanted: Vec<Field>,
    ) -> Result<(), Failure> {
        let mut tables = self.tables.lock().await;
        let seen = |state: &TableState| match &schemas {
            None => true,
            Some((v, k)) => state.checked.iter().any(|(cv, ck)| {
                Arc::ptr_eq(cv, v)
                    && match (ck, k) {
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        (None, None) => true,
                        _ => false,
                    }
            }),
        };
        if let Some(state) = tables.get(table)
            && seen(state)
        {
            return Ok(());
        }
        let name = self.rest.table_name(table);
        let current = match tables.get(table) {
            Some(state) => Some(state.fields.clone()),
            None => self.rest.table_fields(table).await.map_err(Failure::Call)?,
        };
        let fields = match current {
            None if self.config.auto_create_tables => {
                self.rest
                    .create_table(table, &wanted, &self.config)
                    .await
                    .map_err(Failure::Call)?;
                tracing::info!(connector = %self.ctx.connector, table = %name, columns = wanted.len(), "Created the BigQuery table.");
                // Another task may have created it first, with other columns: read it back.
                self.rest
                    .table_fields(table)
                    .await
                    .map_err(Failure::Call)?
                    .unwrap_or(wanted.clone())
            }
            None => {
                return Err(Failure::Fatal(format!(
                    "table {name} does not exist; create it, or set autoCreateTables=true"
                )));
            }
            Some(fields) => fields,
        };
        let changed = schema::changed_columns(&fields, &wanted);
        if !changed.is_empty() {
            return Err(Failure::Record(format!(
                "its schema changed a column's type, which BigQuery cannot do: table {name} {}; send such records to a new table (topic2TableMap)",
                changed.join("; ")
            )));
        }
        let missing = schema::missing_columns(&fields, &wanted);
        let fields = if missing.is_empty() {
            fields
        } else if self.config.allow_new_fields {
            let merged = schema::with_new_columns(&fields, &wanted);
            self.rest
                .update_fields(table, &merged)
                .await
                .map_err(Failure::Call)?;
            tracing::info!(connector = %self.ctx.connector, table = %name, added = %missing.join(","), "Added columns to the BigQuery table (allowNewBigQueryFields=true).");
            merged
        } else {
            return Err(Failure::Record(format!(
                "table {name} has no column {}; set allowNewBigQueryFields=true to add new fields as NULLABLE",
                missing.join(", ")
            )));
        };
        let state = tables.entry(table.to_string()).or_default();
        if state.fields != fields {
            state.row_type = None;
            state.fields = fields;
        }
        if let Some(pair) = schemas {
            state.checked.push(pair);
        }
        Ok(())
    }

    /// Schemaless rows need a table that exists.
    async fn ensure_existing(&self, table: &str) -> Result<(), Failure> {
        let mut tables = self.tables.lock().await;
        if tables.contains_key(table) {
            return Ok(());
        }
        match self.rest.table_fields(table).await.map_err(Failure::Call)? {
            Some(fields) => {
                tables.insert(
                    table.to_string(),
                    TableState {
                        fields,
                        ..TableState::default()
                    },
                );
                Ok(())
            }
            None => Err(Failure::Fatal(format!(
                "table {} does not exist, and schemaless JSON records (schemas.enable=false) cannot create it; create the table, or send records with a schema",
                self.rest.table_name(table)
            ))),
        }
    }

    /// Sends buffered rows, request by request, retrying retriable errors `bigQueryRetry`
    /// times, handing refused rows to `errors.tolerance`. `full_only`: only whole requests
    /// (500 rows or 9 MB); the rest waits for more rows. On an error the rows not
    /// acknowledged stay buffered, in order.
    async fn send(&mut self, full_only: bool) -> Result<(), TaskError> {
        let (max_rows, max_bytes) = self.limits();
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
                    Some(tp) => self.append_chunk(&lane.table, tp, &mut chunk).await,
                    None => self
                        .insert_chunk(&lane.table, &mut chunk)
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
        if let Some(streams) = &mut self.streams {
            streams.close_idle_calls();
        }
        Ok(())
    }

    /// One insertAll request. Leaves in `chunk` the rows to send again: none after
    /// success, those refused only because another row was, or all after an error.
    async fn insert_chunk(
        &mut self,
        table: &str,
        chunk: &mut Vec<Pending>,
    ) -> Result<(), TaskError> {
        let mut request: Vec<(String, &str)> = Vec::with_capacity(chunk.len());
        for p in chunk.iter() {
            let r = &p.record;
            let Encoded::Json(row) = &p.row else {
                return Err(TaskError::fatal(
                    "a Storage Write row among insertAll rows (a bug in ferry)",
                ));
            };
            request.push((
                format!("{}-{}-{}", r.topic, r.partition, r.offset),
                row.as_str(),
            ));
        }
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
    /// as `insert_chunk` does. False: none was sent, the partition's new stream waits for
    /// a commit to record it.
    async fn append_chunk(
        &mut self,
        table: &str,
        tp: &TopicPartition,
        chunk: &mut Vec<Pending>,
    ) -> Result<bool, TaskError> {
        let mut row_type = None;
        let mut rows = Vec::with_capacity(chunk.len());
        for p in chunk.iter() {
            if let Encoded::Proto { row, row_type: t } = &p.row {
                row_type.get_or_insert_with(|| t.clone());
                rows.push(row.clone());
            }
        }
        let (Some(row_type), true, Some(streams)) =
            (row_type, rows.len() == chunk.len(), self.streams.as_mut())
        else {
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

/// Why a record has no row yet.
enum Failure {
    /// This record cannot be loaded: `errors.tolerance` decides.
    Record(String),
    /// No record of this table can be loaded until the configuration changes.
    Fatal(String),
    /// A call to BigQuery failed.
    Call(CallError),
}

/// How many rows of `rows` make the next request, and whether that is a whole one (the
/// limits are reached, or rows are left over).
fn chunk_len(rows: &VecDeque<Pending>, max_rows: usize, max_bytes: usize) -> (usize, bool) {
    let mut size = 0;
    let mut n = 0;
    while n < rows.len() && n < max_rows {
        if n > 0 && (size + rows[n].row.len() > max_bytes || !rows[n].row.goes_with(&rows[0].row)) {
            break;
        }
        size += rows[n].row.len();
        n += 1;
    }
    (n, n == max_rows || n < rows.len())
}

fn json_text(row: Map<String, Json>) -> String {
    // serde_json cannot fail on a map of JSON values.
    serde_json::to_string(&row).unwrap_or_default()
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[async_trait]
impl SinkTask for BigQuerySinkTask {
    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        for r in records {
            if self.is_seen(r) {
                continue;
            }
            let table = self.config.table_for(&r.topic).map_err(TaskError::fatal)?;
            match self.row_of(&table, r).await {
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
                        partition: self.streams.is_some().then(|| r.topic_partition()),
                    };
                    match self.buffer.iter_mut().find(|(l, _)| *l == lane) {
                        Some((_, rows)) => rows.push_back(pending),
                        None => self.buffer.push((lane, VecDeque::from([pending]))),
                    }
                    self.since.get_or_insert_with(Instant::now);
                }
                Err(Failure::Record(reason)) => self.reject(r, reason)?,
                Err(Failure::Fatal(m)) => return Err(TaskError::fatal(m)),
                Err(Failure::Call(CallError::Retriable(m))) => {
                    return Err(TaskError::retriable(m));
                }
                Err(Failure::Call(e)) => return Err(TaskError::fatal(e.to_string())),
            }
            self.seen.insert(r.topic_partition(), r.offset);
        }
        let (rows, bytes) = self.buffered();
        let (max_rows, max_bytes) = self.limits();
        if self.since.is_some_and(|t| t.elapsed() >= LINGER) {
            self.send(false).await?;
        } else if rows >= max_rows || bytes >= max_bytes {
            // insertAll has a lane per table: whole requests fill quickly, so only those
            // go. The Storage Write API has one per partition, and a request's worth may
            // be spread over many of them: then everything goes, so that what a task holds
            // stays near one request.
            self.send(self.streams.is_none()).await?;
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
        if let Some(streams) = &mut self.streams
            && streams.committed(positions)
        {
            self.ctx.commits.request_commit();
        }
    }

    /// With the Storage Write API, takes up the write streams the partitions' last commits
    /// name, so that redelivered records already in them are not written again.
    async fn open(&mut self, partitions: &[Assigned]) -> Result<(), TaskError> {
        let config = self.config.clone();
        if let Some(streams) = &mut self.streams {
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
        self.streams.as_ref()?.metadata(partition)
    }

    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<(), TaskError> {
        // The runtime flushed before revoking; nothing of these partitions is buffered.
        for tp in partitions {
            self.seen.remove(tp);
        }
        self.buffer
            .retain(|(l, _)| l.partition.as_ref().is_none_or(|p| !partitions.contains(p)));
        if let Some(streams) = &mut self.streams {
            streams.close(partitions);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(rows: Vec<Encoded>) -> VecDeque<Pending> {
        rows.into_iter()
            .enumerate()
            .map(|(i, row)| Pending {
                record: SinkRecord {
                    topic: "t".into(),
                    original_topic: None,
                    partition: 0,
                    offset: i as i64,
                    timestamp: None,
                    key: None,
                    value: None,
                    headers: Vec::new(),
                },
                row,
            })
            .collect()
    }

    #[test]
    fn requests_end_at_the_row_and_byte_limits_and_at_a_new_writer_schema() {
        let a = Arc::new(RowType::new(&raw::table_fields()).unwrap());
        let b = Arc::new(RowType::new(&raw::table_fields()).unwrap());
        let proto = |t: &Arc<RowType>, n: usize| Encoded::Proto {
            row: Bytes::from(vec![0u8; n]),
            row_type: t.clone(),
        };
        let rows = pending(vec![
            proto(&a, 10),
            proto(&a, 10),
            proto(&a, 10),
            proto(&b, 10),
        ]);
        assert_eq!(chunk_len(&rows, 500, 1000), (3, true), "not across schemas");
        assert_eq!(chunk_len(&rows, 2, 1000), (2, true));
        assert_eq!(chunk_len(&rows, 500, 25), (2, true));
        let rows = pending(vec![proto(&b, 10)]);
        assert_eq!(chunk_len(&rows, 500, 1000), (1, false), "waits for more");
        let rows = pending(vec![proto(&a, 50), proto(&a, 1)]);
        assert_eq!(chunk_len(&rows, 500, 25), (1, true), "a big row goes alone");
        let rows = pending(vec![Encoded::Json("{}".into()), Encoded::Json("{}".into())]);
        assert_eq!(chunk_len(&rows, 500, 1000), (2, false));
    }
}
