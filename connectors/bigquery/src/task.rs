//! The sink task: turns records into rows, makes sure their table exists with the
//! columns they need, and inserts them with `tabledata.insertAll`.
//!
//! Rows are buffered across `put`s and sent when a request's worth is ready (500 rows or
//! 9 MB), when the oldest has waited [`LINGER`], and always in `flush`. The runtime's
//! default `pre_commit` flushes before it returns what was consumed, so no offset is
//! committed past a row BigQuery has not acknowledged (or that `errors.tolerance` did not
//! skip). Buffering matters: the runtime hands a task about 1 MB per batch (~14 ZTF
//! alerts), and one insertAll request per batch ran at a third of the speed of full
//! requests (benches/bigquery).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_connector_api::data::Schema;
use ferry_connector_api::{
    RecordError, SinkRecord, SinkTask, TaskContext, TaskError, TopicPartition, Value, async_trait,
};
use serde_json::{Map, Value as Json, json};

use crate::config::{BigQueryConfig, Mode};
use crate::raw;
use crate::rest::{CallError, Rest};
use crate::rows;
use crate::schema::{self, Field, Kind};

/// insertAll takes at most 50 000 rows and 10 MB per request; Google recommends 500 rows.
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
}

/// Rows wait at most this long for a full request, as long as records keep coming (a
/// quiet stream's last rows go at the next flush, `offset.flush.interval.ms`).
const LINGER: Duration = Duration::from_secs(1);

/// A row ready to go, serialized, with the record it came from.
struct Pending {
    record: SinkRecord,
    row: String,
}

pub(crate) struct BigQuerySinkTask {
    config: Arc<BigQueryConfig>,
    rest: Rest,
    tables: Tables,
    ctx: TaskContext,
    /// Per partition, the last offset buffered, acknowledged or skipped, so that a batch the
    /// runtime hands over again after a retriable error is not buffered twice.
    seen: HashMap<TopicPartition, i64>,
    /// Rows not yet acknowledged, per table, in record order. Only acknowledged or
    /// skipped rows leave it.
    buffer: Vec<(String, VecDeque<Pending>)>,
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
        tables: Tables,
        ctx: TaskContext,
    ) -> Self {
        Self {
            config,
            rest,
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

    /// The row of one record, after making sure its table can take it.
    async fn row_of(&self, table: &str, r: &SinkRecord) -> Result<Map<String, Json>, Failure> {
        if self.config.mode == Mode::Raw {
            self.ensure_table(table, None, raw::table_fields()).await?;
            return raw::row(r).map_err(|e| Failure::Record(e.to_string()));
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
        let mut row = match &value.schema {
            Some(schema) => {
                let mut wanted = schema::table_fields(schema, self.config.all_fields_nullable)
                    .map_err(|e| {
                        Failure::Record(format!("its schema has no BigQuery table: {e}"))
                    })?;
                self.kafka_columns(r, &mut wanted)?;
                self.ensure_table(table, Some((schema.clone(), key_schema)), wanted)
                    .await?;
                rows::row(schema, &value.data)
            }
            None => {
                self.ensure_existing(table).await?;
                rows::schemaless_row(&value.data)
            }
        }
        .map_err(|e| Failure::Record(e.to_string()))?;
        self.add_kafka_values(r, &mut row)?;
        Ok(row)
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
        state.fields = fields;
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
                        checked: Vec::new(),
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
        for i in 0..self.buffer.len() {
            loop {
                let (table, rows) = &mut self.buffer[i];
                if rows.is_empty() {
                    break;
                }
                let mut size = 0;
                let mut n = 0;
                while n < rows.len() && n < MAX_ROWS_PER_REQUEST {
                    if n > 0 && size + rows[n].row.len() > MAX_BYTES_PER_REQUEST {
                        break;
                    }
                    size += rows[n].row.len();
                    n += 1;
                }
                let full = n == MAX_ROWS_PER_REQUEST || n < rows.len();
                if full_only && !full {
                    break;
                }
                let mut chunk: Vec<Pending> = rows.drain(..n).collect();
                let table = table.clone();
                let sent = self.insert_chunk(&table, &mut chunk).await;
                // What is left (refused as stopped, or all of it after an error) goes back
                // in front.
                let rows = &mut self.buffer[i].1;
                for p in chunk.into_iter().rev() {
                    rows.push_front(p);
                }
                sent?;
            }
        }
        self.buffer.retain(|(_, q)| !q.is_empty());
        if self.buffer.is_empty() {
            self.since = None;
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
        let request: Vec<(String, &str)> = chunk
            .iter()
            .map(|p| {
                let r = &p.record;
                (
                    format!("{}-{}-{}", r.topic, r.partition, r.offset),
                    p.row.as_str(),
                )
            })
            .collect();
        let mut attempt = 0u32;
        let rejections = loop {
            match self.rest.insert_all(table, &request).await {
                Ok(rejections) => break rejections,
                Err(CallError::Retriable(m)) if attempt < self.config.retries => {
                    attempt += 1;
                    let wait = self.config.retry_wait + jitter(self.config.retry_wait);
                    tracing::warn!(connector = %self.ctx.connector, task = self.ctx.task_id, attempt, retry_in_ms = wait.as_millis() as u64, error = %m, "BigQuery insert failed; retrying (bigQueryRetry).");
                    tokio::time::sleep(wait).await;
                }
                Err(CallError::Retriable(m)) => return Err(TaskError::retriable(m)),
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

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn jitter(base: Duration) -> Duration {
    base.mul_f64(fastrand::f64() * 0.2)
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
                    // serde_json cannot fail on a map of JSON values.
                    let row = serde_json::to_string(&row).unwrap_or_default();
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
                    // A partition's records go to one table, in order.
                    match self.buffer.iter_mut().find(|(t, _)| *t == table) {
                        Some((_, rows)) => rows.push_back(pending),
                        None => self.buffer.push((table, VecDeque::from([pending]))),
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
        if self.since.is_some_and(|t| t.elapsed() >= LINGER) {
            self.send(false).await?;
        } else if rows >= MAX_ROWS_PER_REQUEST || bytes >= MAX_BYTES_PER_REQUEST {
            self.send(true).await?;
        }
        Ok(())
    }

    /// Sends every buffered row; the runtime's `pre_commit` calls this before it returns
    /// the consumed offsets.
    async fn flush(&mut self) -> Result<(), TaskError> {
        self.send(false).await
    }

    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<(), TaskError> {
        // The runtime flushed before revoking; nothing of these partitions is buffered.
        for tp in partitions {
            self.seen.remove(tp);
        }
        Ok(())
    }
}
