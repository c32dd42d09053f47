//! Records to rows: JSON text for insertAll, protocol buffers for the Storage Write API,
//! with the `kafkaDataFieldName` and `kafkaKeyFieldName` columns, after making sure the
//! row's table can take it ([`Catalog`]).

use std::sync::Arc;

use bytes::Bytes;
use ferry_connector_api::data::{Data, Structured};
use ferry_connector_api::{SinkRecord, Value};
use serde_json::{Map, Value as Json, json};

use super::tables::Catalog;
use crate::config::{BigQueryConfig, Mode};
use crate::raw;
use crate::rest::CallError;
use crate::rows;
use crate::schema::{self, Field, Kind};
use crate::storage::RowType;

/// A serialized row.
pub(super) enum Encoded {
    /// For insertAll: JSON text.
    Json(String),
    /// For the Storage Write API: a protocol buffer of `row_type`.
    Proto { row: Bytes, row_type: Arc<RowType> },
}

impl Encoded {
    pub(super) fn len(&self) -> usize {
        match self {
            Encoded::Json(row) => row.len(),
            Encoded::Proto { row, .. } => row.len(),
        }
    }

    /// Whether the two can go in one request: one writer schema per append.
    pub(super) fn goes_with(&self, other: &Encoded) -> bool {
        match (self, other) {
            (Encoded::Proto { row_type: a, .. }, Encoded::Proto { row_type: b, .. }) => {
                Arc::ptr_eq(a, b)
            }
            _ => true,
        }
    }
}

/// Why a record has no row yet.
pub(super) enum Failure {
    /// This record cannot be loaded: `errors.tolerance` decides.
    Record(String),
    /// No record of this table can be loaded until the configuration changes.
    Fatal(String),
    /// A call to BigQuery failed.
    Call(CallError),
}

pub(super) struct Encoder {
    pub(super) config: Arc<BigQueryConfig>,
    pub(super) catalog: Catalog,
    /// `useStorageWriteApi=true`: rows are protocol buffers.
    pub(super) storage_write: bool,
    /// The most bytes of rows a request takes.
    pub(super) max_request_bytes: usize,
}

impl Encoder {
    /// The row of one record, after making sure its table can take it.
    pub(super) async fn encode(&self, table: &str, r: &SinkRecord) -> Result<Encoded, Failure> {
        let invalid = |e: rows::RowError| Failure::Record(e.to_string());
        if self.config.mode == Mode::Raw {
            self.catalog
                .ensure_table(table, None, raw::table_fields())
                .await?;
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
                self.catalog
                    .ensure_table(table, Some((schema.clone(), key_schema)), wanted)
                    .await?;
            }
            None => self.catalog.ensure_existing(table).await?,
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
        let max = self.max_request_bytes;
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

    /// The table's protocol buffer message, with the Storage Write API (else `None`). The
    /// table is known: `ensure_table` or `ensure_existing` ran.
    async fn row_type(&self, table: &str) -> Result<Option<Arc<RowType>>, Failure> {
        if !self.storage_write {
            return Ok(None);
        }
        self.catalog.row_type(table).await.map(Some)
    }
}

fn json_text(row: Map<String, Json>) -> String {
    // serde_json cannot fail on a map of JSON values.
    serde_json::to_string(&row).unwrap_or_default()
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
