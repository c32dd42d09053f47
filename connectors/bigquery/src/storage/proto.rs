//! Rows as protocol buffers, the Storage Write API's encoding: a proto2 `DescriptorProto`
//! made from the table's columns (sent once per connection as the writer schema) and each
//! row serialized straight from the connector data model, with no JSON in between.
//!
//! | column | proto2 field | value |
//! |---|---|---|
//! | `INTEGER` | `int64` | |
//! | `FLOAT` | `double` | |
//! | `BOOLEAN` | `bool` | |
//! | `STRING`, `GEOGRAPHY`, `DATETIME` | `string` | |
//! | `NUMERIC`, `BIGNUMERIC` | `string` | the decimal's digits, as in insertAll |
//! | `TIME` | `string` | `HH:MM:SS.ffffff` |
//! | `JSON` | `string` | the value as JSON text |
//! | `BYTES` | `bytes` | |
//! | `TIMESTAMP` | `int64` | microseconds since the epoch |
//! | `DATE` | `int32` | days since the epoch |
//! | `RECORD` | a nested message | |
//!
//! `REPEATED` columns are `repeated` fields, every other one `optional` (a `REQUIRED`
//! column left out is BigQuery's row error to report, as with insertAll). BigQuery matches
//! fields to columns by name, so field numbers are free: they are the columns' positions.
//! A record's nested message is named `_TABLE_<field number>` and referred to by that
//! relative name (the emulator cannot resolve fully-qualified ones): a message's fields and
//! nested types share one namespace, and no column name may start with `_TABLE_`, so the
//! name never collides with a column.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use bytes::Bytes;
use ferry_connector_api::data::{Data, Schema, SchemaKind, TimeUnit};
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto};
use serde_json::Value as Json;
use sha2::Digest;

use crate::rows::{self, RowError};
use crate::schema::{Field, Kind, Mode};

/// The message of a table's rows: the descriptor BigQuery is sent and the field numbers
/// rows are written with.
#[derive(Debug)]
pub(crate) struct RowType {
    descriptor: DescriptorProto,
    columns: Columns,
    /// The descriptor's SHA-256, first 8 bytes in hex: tells a restarted task whether the
    /// stream it resumes was made for the table's columns as they are now.
    fingerprint: String,
}

/// Why a table's columns have no proto message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "column {path}: `{name}` is not a protocol buffer field name (ASCII letters, digits and underscores, not starting with a digit), so the Storage Write API cannot write it; set useStorageWriteApi=false to use insertAll"
)]
pub(crate) struct DescriptorError {
    path: String,
    name: String,
}

#[derive(Debug, Default)]
struct Columns {
    list: Vec<Column>,
    /// Position in `list` by exact name; names that differ only in case (BigQuery's names
    /// are case-insensitive) are found by a scan.
    exact: HashMap<String, usize>,
}

#[derive(Debug)]
struct Column {
    name: String,
    number: u32,
    kind: Kind,
    mode: Mode,
    fields: Columns,
}

impl Columns {
    fn get(&self, name: &str) -> Option<&Column> {
        match self.exact.get(name) {
            Some(&i) => self.list.get(i),
            None => self.list.iter().find(|c| c.name.eq_ignore_ascii_case(name)),
        }
    }
}

/// The name of the top-level message.
const ROW: &str = "Row";

impl RowType {
    pub(crate) fn new(fields: &[Field]) -> Result<Self, DescriptorError> {
        let (descriptor, columns) = message(ROW, fields, "")?;
        let digest = sha2::Sha256::digest(prost::Message::encode_to_vec(&descriptor));
        let fingerprint = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            descriptor,
            columns,
            fingerprint,
        })
    }

    pub(crate) fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The writer schema: a proto2 message whose nested types are named relatively.
    pub(crate) fn descriptor(&self) -> &DescriptorProto {
        &self.descriptor
    }

    /// A row to fill column by column.
    pub(crate) fn writer(&self) -> RowWriter<'_> {
        RowWriter {
            columns: &self.columns,
            out: Vec::new(),
        }
    }
}

fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn message(
    name: &str,
    fields: &[Field],
    prefix: &str,
) -> Result<(DescriptorProto, Columns), DescriptorError> {
    let mut descriptor = DescriptorProto {
        name: Some(name.to_string()),
        ..Default::default()
    };
    let mut columns = Columns::default();
    for (i, f) in fields.iter().enumerate() {
        let path = format!("{prefix}{}", f.name);
        if !is_identifier(&f.name) {
            return Err(DescriptorError {
                path,
                name: f.name.clone(),
            });
        }
        // Columns number at most 10 000, far below proto's 2^29.
        let number = i as u32 + 1;
        let (ty, type_name, sub) = match f.kind {
            Kind::Record => {
                let nested = format!("_TABLE_{number}");
                let (d, sub) = message(&nested, &f.fields, &format!("{path}."))?;
                descriptor.nested_type.push(d);
                (Type::Message, Some(nested), sub)
            }
            Kind::Integer | Kind::Timestamp => (Type::Int64, None, Columns::default()),
            Kind::Date => (Type::Int32, None, Columns::default()),
            Kind::Float => (Type::Double, None, Columns::default()),
            Kind::Boolean => (Type::Bool, None, Columns::default()),
            Kind::Bytes => (Type::Bytes, None, Columns::default()),
            Kind::String
            | Kind::Numeric
            | Kind::Bignumeric
            | Kind::Json
            | Kind::Datetime
            | Kind::Time
            | Kind::Geography => (Type::String, None, Columns::default()),
        };
        let label = if f.mode == Mode::Repeated {
            Label::Repeated
        } else {
            Label::Optional
        };
        descriptor.field.push(FieldDescriptorProto {
            name: Some(f.name.clone()),
            number: Some(number as i32),
            label: Some(label as i32),
            r#type: Some(ty as i32),
            type_name,
            ..Default::default()
        });
        columns.exact.insert(f.name.clone(), columns.list.len());
        columns.list.push(Column {
            name: f.name.clone(),
            number,
            kind: f.kind,
            mode: f.mode,
            fields: sub,
        });
    }
    Ok((descriptor, columns))
}

/// One row being written. Columns left out are NULL (or empty, when `REPEATED`).
#[derive(Debug)]
pub(crate) struct RowWriter<'a> {
    columns: &'a Columns,
    out: Vec<u8>,
}

impl RowWriter<'_> {
    /// The fields of a struct as columns.
    pub(crate) fn fields_of(&mut self, schema: &Schema, data: &Data) -> Result<(), RowError> {
        struct_fields(&mut self.out, self.columns, schema, data, &Path::Top)
    }

    /// The entries of a schemaless object (JsonConverter with `schemas.enable=false`) as
    /// columns, by name.
    pub(crate) fn entries_of(&mut self, data: &Data) -> Result<(), RowError> {
        object_entries(&mut self.out, self.columns, data, &Path::Top)
    }

    /// One column: `data` following `schema`, or schemaless.
    pub(crate) fn column(
        &mut self,
        name: &str,
        schema: Option<&Schema>,
        data: &Data,
    ) -> Result<(), RowError> {
        put_field(&mut self.out, self.columns, name, schema, data, &Path::Top)
    }

    pub(crate) fn finish(self) -> Bytes {
        Bytes::from(self.out)
    }
}

/// Where a value is, built only when an error names it.
#[derive(Debug, Clone, Copy)]
enum Path<'a> {
    Top,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Top => f.write_str("(top level)"),
            Path::Field(Path::Top, name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn fail(path: &Path<'_>, reason: impl Into<String>) -> RowError {
    RowError {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn mismatch(column: &Column, data: &Data, path: &Path<'_>) -> RowError {
    let kind = format!("{:?}", column.kind).to_ascii_uppercase();
    let kind = if column.mode == Mode::Repeated {
        format!("REPEATED {kind}")
    } else {
        kind
    };
    fail(
        path,
        format!(
            "{} does not fit column {} ({kind})",
            what(data),
            column.name
        ),
    )
}

fn what(data: &Data) -> &'static str {
    match data {
        Data::Null => "null",
        Data::Boolean(_) => "a boolean",
        Data::Int8(_) | Data::Int16(_) | Data::Int32(_) | Data::Int64(_) => "an integer",
        Data::Float32(_) | Data::Float64(_) => "a float",
        Data::String(_) => "a string",
        Data::Bytes(_) => "bytes",
        Data::Timestamp(_) => "a timestamp",
        Data::Date(_) => "a date",
        Data::Time(_) => "a time of day",
        Data::Decimal(_) => "a decimal",
        Data::Array(_) => "an array",
        Data::Map(_) => "a map",
        Data::Struct(_) => "a struct",
    }
}

fn struct_fields(
    out: &mut Vec<u8>,
    columns: &Columns,
    schema: &Schema,
    data: &Data,
    path: &Path<'_>,
) -> Result<(), RowError> {
    match (&schema.kind, data) {
        (SchemaKind::Struct(fields), Data::Struct(values)) if fields.len() == values.len() => {
            for (f, v) in fields.iter().zip(values) {
                if crate::schema::has_column(&f.schema) {
                    put_field(out, columns, &f.name, Some(&f.schema), v, path)?;
                }
            }
            Ok(())
        }
        (SchemaKind::Struct(_), _) => Err(fail(path, "the data does not follow its struct schema")),
        _ => Err(fail(path, "a row needs a struct (an Avro record)")),
    }
}

fn object_entries(
    out: &mut Vec<u8>,
    columns: &Columns,
    data: &Data,
    path: &Path<'_>,
) -> Result<(), RowError> {
    let Data::Map(entries) = data else {
        return Err(fail(path, "a schemaless row needs a JSON object"));
    };
    for (k, v) in entries {
        let Data::String(name) = k else {
            return Err(fail(path, "a schemaless object needs string keys"));
        };
        put_field(out, columns, name, None, v, path)?;
    }
    Ok(())
}

fn put_field(
    out: &mut Vec<u8>,
    columns: &Columns,
    name: &str,
    schema: Option<&Schema>,
    data: &Data,
    parent: &Path<'_>,
) -> Result<(), RowError> {
    let path = Path::Field(parent, name);
    match columns.get(name) {
        Some(column) => put(out, column, schema, data, &path),
        None => Err(fail(&path, "the table has no such column")),
    }
}

fn put(
    out: &mut Vec<u8>,
    column: &Column,
    schema: Option<&Schema>,
    data: &Data,
    path: &Path<'_>,
) -> Result<(), RowError> {
    if column.mode == Mode::Repeated {
        let kind = schema.map(|s| &s.kind);
        return match (data, kind) {
            // BigQuery has no NULL array: it loads as an empty one.
            (Data::Null, _) => Ok(()),
            (Data::Array(items), _) => {
                let items_schema = match kind {
                    Some(SchemaKind::Array(items)) => Some(items.as_ref()),
                    _ => None,
                };
                for (i, item) in items.iter().enumerate() {
                    let p = Path::Index(path, i);
                    if matches!(item, Data::Null) {
                        return Err(fail(
                            &p,
                            "a null array element; BigQuery arrays cannot hold NULL",
                        ));
                    }
                    one(out, column, items_schema, item, &p)?;
                }
                Ok(())
            }
            // A map is a REPEATED RECORD of key and value (crate::schema).
            (Data::Map(entries), Some(SchemaKind::Map { key, value }))
                if column.kind == Kind::Record =>
            {
                for (i, (k, v)) in entries.iter().enumerate() {
                    let p = Path::Index(path, i);
                    nested(out, column.number, |out| {
                        put_field(out, &column.fields, "key", Some(key.as_ref()), k, &p)?;
                        put_field(out, &column.fields, "value", Some(value.as_ref()), v, &p)
                    })?;
                }
                Ok(())
            }
            _ => Err(mismatch(column, data, path)),
        };
    }
    if matches!(data, Data::Null) {
        return if column.mode == Mode::Required {
            Err(fail(path, "null in a required field"))
        } else {
            Ok(())
        };
    }
    one(out, column, schema, data, path)
}

/// One value of a column (an element, for `REPEATED`).
fn one(
    out: &mut Vec<u8>,
    column: &Column,
    schema: Option<&Schema>,
    data: &Data,
    path: &Path<'_>,
) -> Result<(), RowError> {
    let n = column.number;
    let bad = || mismatch(column, data, path);
    match column.kind {
        Kind::Record => match (data, schema) {
            (Data::Struct(_), Some(schema)) => nested(out, n, |out| {
                struct_fields(out, &column.fields, schema, data, path)
            }),
            (Data::Map(_), None) => nested(out, n, |out| {
                object_entries(out, &column.fields, data, path)
            }),
            _ => Err(bad()),
        },
        Kind::Integer => {
            let v = integer(data).ok_or_else(bad)?;
            varint_field(out, n, v as u64);
            Ok(())
        }
        Kind::Float => {
            let v = float(data).ok_or_else(bad)?;
            encode_key(n, WireType::SixtyFourBit, out);
            out.extend_from_slice(&v.to_le_bytes());
            Ok(())
        }
        Kind::Boolean => match data {
            Data::Boolean(b) => {
                varint_field(out, n, u64::from(*b));
                Ok(())
            }
            _ => Err(bad()),
        },
        Kind::String | Kind::Geography => {
            let text = text(data).ok_or_else(bad)?;
            bytes_field(out, n, text.as_bytes());
            Ok(())
        }
        Kind::Bytes => match data {
            Data::Bytes(b) | Data::Decimal(b) => {
                bytes_field(out, n, b);
                Ok(())
            }
            // Schemaless JSON spells bytes in base64, as insertAll does.
            Data::String(s) => {
                let b = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| fail(path, format!("a BYTES value must be base64: {e}")))?;
                bytes_field(out, n, &b);
                Ok(())
            }
            _ => Err(bad()),
        },
        Kind::Numeric | Kind::Bignumeric => {
            let digits = match (data, schema) {
                (Data::Decimal(_), Some(s)) if matches!(s.kind, SchemaKind::Decimal { .. }) => {
                    json_string(rows::json_of(s, data, &path.to_string())?)
                }
                (Data::Decimal(_), _) => {
                    let s = Schema::new(SchemaKind::Decimal {
                        precision: 38,
                        scale: 0,
                    });
                    json_string(rows::json_of(&s, data, &path.to_string())?)
                }
                _ => text(data).ok_or_else(bad)?.into_owned(),
            };
            bytes_field(out, n, digits.as_bytes());
            Ok(())
        }
        Kind::Timestamp => {
            let micros = match data {
                Data::Timestamp(us) => *us,
                Data::String(s) => parse_timestamp(s)
                    .ok_or_else(|| fail(path, format!("`{s}` is not a timestamp (RFC 3339)")))?,
                _ => return Err(bad()),
            };
            varint_field(out, n, micros as u64);
            Ok(())
        }
        Kind::Date => {
            let days = match data {
                Data::Date(d) => *d,
                Data::String(s) => parse_date(s)
                    .ok_or_else(|| fail(path, format!("`{s}` is not a date (YYYY-MM-DD)")))?,
                _ => return Err(bad()),
            };
            // int32: a negative value is sign-extended to ten bytes.
            varint_field(out, n, i64::from(days) as u64);
            Ok(())
        }
        Kind::Time => {
            let text = match data {
                Data::Time(_) => {
                    let s = Schema::new(SchemaKind::Time(TimeUnit::Micros));
                    json_string(rows::json_of(&s, data, &path.to_string())?)
                }
                Data::String(s) => s.clone(),
                _ => return Err(bad()),
            };
            bytes_field(out, n, text.as_bytes());
            Ok(())
        }
        Kind::Datetime => {
            let text = match data {
                Data::String(s) => s.clone(),
                Data::Timestamp(us) => civil(*us).ok_or_else(bad)?,
                _ => return Err(bad()),
            };
            bytes_field(out, n, text.as_bytes());
            Ok(())
        }
        Kind::Json => {
            let json = match schema {
                Some(s) => rows::json_of(s, data, &path.to_string())?,
                None => schemaless_json(data, path)?,
            };
            bytes_field(out, n, json.to_string().as_bytes());
            Ok(())
        }
    }
}

fn varint_field(out: &mut Vec<u8>, number: u32, v: u64) {
    encode_key(number, WireType::Varint, out);
    encode_varint(v, out);
}

fn bytes_field(out: &mut Vec<u8>, number: u32, b: &[u8]) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// A nested message written in place; its length goes in front once known.
fn nested(
    out: &mut Vec<u8>,
    number: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), RowError>,
) -> Result<(), RowError> {
    encode_key(number, WireType::LengthDelimited, out);
    let start = out.len();
    body(out)?;
    let mut prefix = [0u8; 10];
    let mut free = &mut prefix[..];
    encode_varint((out.len() - start) as u64, &mut free);
    let used = 10 - free.len();
    out.splice(start..start, prefix[..used].iter().copied());
    Ok(())
}

fn integer(data: &Data) -> Option<i64> {
    match data {
        Data::Int8(i) => Some(i64::from(*i)),
        Data::Int16(i) => Some(i64::from(*i)),
        Data::Int32(i) => Some(i64::from(*i)),
        Data::Int64(i) => Some(*i),
        // BigQuery's JSON takes an INT64 as a decimal string.
        Data::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn float(data: &Data) -> Option<f64> {
    match data {
        Data::Float32(f) => Some(f64::from(*f)),
        Data::Float64(f) => Some(*f),
        Data::Int8(_) | Data::Int16(_) | Data::Int32(_) | Data::Int64(_) => {
            integer(data).map(|i| i as f64)
        }
        Data::String(s) => match s.trim() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

/// A scalar as text, for a `STRING` column (JSON's numbers and booleans load there too).
fn text(data: &Data) -> Option<Cow<'_, str>> {
    Some(match data {
        Data::String(s) => Cow::Borrowed(s.as_str()),
        Data::Boolean(b) => Cow::Owned(b.to_string()),
        Data::Int8(_) | Data::Int16(_) | Data::Int32(_) | Data::Int64(_) => {
            Cow::Owned(integer(data)?.to_string())
        }
        Data::Float32(f) => Cow::Owned(f.to_string()),
        Data::Float64(f) => Cow::Owned(f.to_string()),
        _ => return None,
    })
}

fn json_string(json: Json) -> String {
    match json {
        Json::String(s) => s,
        other => other.to_string(),
    }
}

/// Schemaless data as JSON, as insertAll would have sent it.
fn schemaless_json(data: &Data, path: &Path<'_>) -> Result<Json, RowError> {
    match data {
        Data::Map(_) => rows::schemaless_row(data).map(Json::Object),
        Data::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| schemaless_json(v, &Path::Index(path, i)))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array),
        // A scalar: the one-entry object's value.
        scalar => {
            let wrapped = Data::Map(vec![(Data::String(String::new()), scalar.clone())]);
            let mut object = rows::schemaless_row(&wrapped).map_err(|e| fail(path, e.reason))?;
            Ok(object.remove("").unwrap_or(Json::Null))
        }
    }
}

/// `2024-01-02T03:04:05.123456Z`, `2024-01-02 03:04:05+02:00`, `… UTC`, or with no zone
/// (UTC), as BigQuery reads a TIMESTAMP string.
fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_suffix(" UTC").unwrap_or(s);
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts.as_microsecond());
    }
    let civil: jiff::civil::DateTime = s.parse().ok()?;
    let zoned = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
    Some(zoned.timestamp().as_microsecond())
}

fn parse_date(s: &str) -> Option<i32> {
    let date: jiff::civil::Date = s.trim().parse().ok()?;
    let zoned = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
    i32::try_from(zoned.timestamp().as_second().div_euclid(86_400)).ok()
}

/// A timestamp's UTC date and time, for a `DATETIME` column.
fn civil(micros: i64) -> Option<String> {
    let ts = jiff::Timestamp::from_microsecond(micros).ok()?;
    Some(
        ts.to_zoned(jiff::tz::TimeZone::UTC)
            .datetime()
            .strftime("%Y-%m-%d %H:%M:%S%.6f")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferry_connector_api::data::Field as ConnectField;
    use ferry_connector_api::{Header, SinkRecord, TimestampType, Value};
    use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage};
    use prost_types::{FileDescriptorProto, FileDescriptorSet};

    use super::*;
    use crate::schema::table_fields;

    fn f(name: &str, schema: Schema) -> ConnectField {
        ConnectField {
            name: name.into(),
            schema,
            doc: None,
        }
    }

    fn s(kind: SchemaKind) -> Schema {
        Schema::new(kind)
    }

    /// The descriptor in a file of its own, resolved the way a protobuf runtime does (the
    /// emulator's Python `DescriptorPool`, BigQuery's), so that a relative type name that
    /// does not resolve fails here.
    fn pool(row_type: &RowType) -> DescriptorPool {
        let file = FileDescriptorProto {
            name: Some("row.proto".into()),
            package: Some("ferry_test".into()),
            message_type: vec![row_type.descriptor().clone()],
            syntax: Some("proto2".into()),
            ..Default::default()
        };
        DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file: vec![file] })
            .expect("the descriptor resolves")
    }

    fn decode(row_type: &RowType, bytes: &[u8]) -> DynamicMessage {
        let pool = pool(row_type);
        let message = pool.get_message_by_name("ferry_test.Row").unwrap();
        DynamicMessage::decode(message, bytes).expect("the row decodes")
    }

    /// A ZTF-shaped alert: nested record, nullable array of records, nullable record with
    /// bytes, a map, logical types.
    fn alert() -> Schema {
        s(SchemaKind::Struct(vec![
            f("objectId", s(SchemaKind::String)),
            f("candid", s(SchemaKind::Int64)),
            f(
                "candidate",
                s(SchemaKind::Struct(vec![
                    f("jd", s(SchemaKind::Float64)),
                    f("fid", s(SchemaKind::Int32)),
                    f("magpsf", s(SchemaKind::Float32)),
                    f("rb", s(SchemaKind::Float32).optional()),
                ])),
            ),
            f(
                "prv_candidates",
                s(SchemaKind::Array(Box::new(s(SchemaKind::Struct(vec![f(
                    "jd",
                    s(SchemaKind::Float64),
                )])))))
                .optional(),
            ),
            f(
                "cutoutScience",
                s(SchemaKind::Struct(vec![f(
                    "stampData",
                    s(SchemaKind::Bytes),
                )]))
                .optional(),
            ),
            f(
                "tags",
                s(SchemaKind::Map {
                    key: Box::new(s(SchemaKind::String)),
                    value: Box::new(s(SchemaKind::Int32)),
                }),
            ),
            f("ts", s(SchemaKind::Timestamp(TimeUnit::Micros))),
            f("day", s(SchemaKind::Date).optional()),
            f("tod", s(SchemaKind::Time(TimeUnit::Micros))),
            f(
                "price",
                s(SchemaKind::Decimal {
                    precision: 9,
                    scale: 2,
                }),
            ),
        ]))
    }

    fn field<'a>(d: &'a DescriptorProto, name: &str) -> &'a FieldDescriptorProto {
        d.field
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("no field {name}"))
    }

    #[test]
    fn the_descriptor_mirrors_the_columns_with_relative_nested_names() {
        let columns = table_fields(&alert(), false).unwrap();
        let rt = RowType::new(&columns).unwrap();
        let d = rt.descriptor();
        assert_eq!(d.name(), "Row");
        let candid = field(d, "candid");
        assert_eq!(
            (candid.number(), candid.r#type(), candid.label()),
            (2, Type::Int64, Label::Optional)
        );
        let candidate = field(d, "candidate");
        assert_eq!(candidate.r#type(), Type::Message);
        assert_eq!(candidate.type_name(), "_TABLE_3");
        let nested = d
            .nested_type
            .iter()
            .find(|n| n.name() == "_TABLE_3")
            .unwrap();
        assert_eq!(field(nested, "jd").r#type(), Type::Double);
        assert_eq!(field(nested, "fid").r#type(), Type::Int64);
        let prv = field(d, "prv_candidates");
        assert_eq!(
            (prv.r#type(), prv.label()),
            (Type::Message, Label::Repeated)
        );
        assert_eq!(field(d, "ts").r#type(), Type::Int64);
        assert_eq!(field(d, "day").r#type(), Type::Int32);
        assert_eq!(field(d, "tod").r#type(), Type::String);
        assert_eq!(field(d, "price").r#type(), Type::String);
        let stamp = &d
            .nested_type
            .iter()
            .find(|n| n.name() == "_TABLE_5")
            .unwrap();
        assert_eq!(field(stamp, "stampData").r#type(), Type::Bytes);
        // And a protobuf runtime resolves it.
        let pool = pool(&rt);
        let row = pool.get_message_by_name("ferry_test.Row").unwrap();
        let kind = row.get_field_by_name("candidate").unwrap().kind();
        assert_eq!(
            kind.as_message().unwrap().full_name(),
            "ferry_test.Row._TABLE_3"
        );
    }

    #[test]
    fn a_column_that_is_no_field_name_is_refused_naming_it() {
        let columns = vec![Field::record(
            "a",
            Mode::Nullable,
            vec![Field::leaf("my-col", Kind::String, Mode::Nullable)],
        )];
        let e = RowType::new(&columns).unwrap_err();
        assert_eq!(e.path, "a.my-col");
        assert!(e.to_string().contains("useStorageWriteApi=false"), "{e}");
    }

    #[test]
    fn a_row_encodes_every_kind_and_decodes_with_the_descriptor() {
        let columns = table_fields(&alert(), false).unwrap();
        let rt = RowType::new(&columns).unwrap();
        let data = Data::Struct(vec![
            Data::String("ZTF21aaaaaaa".into()),
            Data::Int64(1_704_217_901_015_015_001),
            Data::Struct(vec![
                Data::Float64(2459458.5),
                Data::Int32(-2),
                Data::Float32(18.5),
                Data::Null,
            ]),
            Data::Array(vec![
                Data::Struct(vec![Data::Float64(1.0)]),
                Data::Struct(vec![Data::Float64(0.0)]),
            ]),
            Data::Struct(vec![Data::Bytes(Bytes::from_static(&[0x1f, 0x8b, 0]))]),
            Data::Map(vec![(Data::String("a".into()), Data::Int32(1))]),
            Data::Timestamp(1_630_454_400_123_456),
            Data::Date(-1),
            Data::Time(3_723_000_004),
            Data::Decimal(Bytes::from_static(&[0xfe, 0x0c])),
        ]);
        let mut w = rt.writer();
        w.fields_of(&alert(), &data).unwrap();
        let row = decode(&rt, &w.finish());
        let get = |name: &str| row.get_field_by_name(name).unwrap().into_owned();
        assert_eq!(get("objectId").as_str(), Some("ZTF21aaaaaaa"));
        assert_eq!(get("candid").as_i64(), Some(1_704_217_901_015_015_001));
        let cand = get("candidate");
        let cand = cand.as_message().unwrap();
        assert_eq!(
            cand.get_field_by_name("jd").unwrap().as_f64(),
            Some(2459458.5)
        );
        assert_eq!(cand.get_field_by_name("fid").unwrap().as_i64(), Some(-2));
        assert_eq!(
            cand.get_field_by_name("magpsf").unwrap().as_f64(),
            Some(18.5)
        );
        assert!(!cand.has_field_by_name("rb"), "a null is left out");
        let prv = get("prv_candidates");
        let prv = prv.as_list().unwrap();
        assert_eq!(prv.len(), 2);
        let second = prv[1].as_message().unwrap();
        assert!(second.has_field_by_name("jd"), "a zero is kept (proto2)");
        let cut = get("cutoutScience");
        let stamp = cut
            .as_message()
            .unwrap()
            .get_field_by_name("stampData")
            .unwrap();
        assert_eq!(stamp.as_bytes().unwrap().as_ref(), &[0x1f, 0x8b, 0]);
        let tags = get("tags");
        let tag = tags.as_list().unwrap()[0].as_message().unwrap().clone();
        assert_eq!(tag.get_field_by_name("key").unwrap().as_str(), Some("a"));
        assert_eq!(tag.get_field_by_name("value").unwrap().as_i64(), Some(1));
        assert_eq!(get("ts").as_i64(), Some(1_630_454_400_123_456));
        assert_eq!(get("day").as_i32(), Some(-1));
        assert_eq!(get("tod").as_str(), Some("01:02:03.000004"));
        assert_eq!(get("price").as_str(), Some("-5.00"));
    }

    #[test]
    fn fields_are_found_by_name_in_any_order_and_case() {
        let columns = vec![
            Field::leaf("ID", Kind::Integer, Mode::Required),
            Field::leaf("name", Kind::String, Mode::Nullable),
        ];
        let rt = RowType::new(&columns).unwrap();
        let schema = s(SchemaKind::Struct(vec![
            f("name", s(SchemaKind::String)),
            f("id", s(SchemaKind::Int64)),
        ]));
        let mut w = rt.writer();
        w.fields_of(
            &schema,
            &Data::Struct(vec![Data::String("x".into()), Data::Int64(7)]),
        )
        .unwrap();
        let row = decode(&rt, &w.finish());
        assert_eq!(row.get_field_by_name("ID").unwrap().as_i64(), Some(7));
        assert_eq!(row.get_field_by_name("name").unwrap().as_str(), Some("x"));
    }

    #[test]
    fn schemaless_objects_load_by_column_name() {
        let columns = vec![
            Field::leaf("id", Kind::Integer, Mode::Required),
            Field::leaf("at", Kind::Timestamp, Mode::Nullable),
            Field::leaf("day", Kind::Date, Mode::Nullable),
            Field::leaf("blob", Kind::Bytes, Mode::Nullable),
            Field::leaf("doc", Kind::Json, Mode::Nullable),
            Field::record(
                "where",
                Mode::Nullable,
                vec![Field::leaf("x", Kind::Float, Mode::Nullable)],
            ),
        ];
        let rt = RowType::new(&columns).unwrap();
        let object = |entries: Vec<(&str, Data)>| {
            Data::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (Data::String(k.into()), v))
                    .collect(),
            )
        };
        let data = object(vec![
            ("id", Data::String("12".into())),
            ("at", Data::String("2024-01-02 03:04:05.5 UTC".into())),
            ("day", Data::String("2024-01-02".into())),
            ("blob", Data::String("AP8Q".into())),
            ("doc", object(vec![("a", Data::Int64(1))])),
            ("where", object(vec![("x", Data::Int64(3))])),
        ]);
        let mut w = rt.writer();
        w.entries_of(&data).unwrap();
        let row = decode(&rt, &w.finish());
        let get = |name: &str| row.get_field_by_name(name).unwrap().into_owned();
        assert_eq!(get("id").as_i64(), Some(12));
        assert_eq!(get("at").as_i64(), Some(1_704_164_645_500_000));
        assert_eq!(get("day").as_i32(), Some(19_724));
        assert_eq!(get("blob").as_bytes().unwrap().as_ref(), &[0, 0xff, 0x10]);
        assert_eq!(get("doc").as_str(), Some(r#"{"a":"1"}"#));
        let at = get("where");
        assert_eq!(
            at.as_message()
                .unwrap()
                .get_field_by_name("x")
                .unwrap()
                .as_f64(),
            Some(3.0)
        );

        let mut w = rt.writer();
        let e = w
            .entries_of(&object(vec![("id", Data::String("three".into()))]))
            .unwrap_err();
        assert_eq!(e.path, "id");
        assert_eq!(e.reason, "a string does not fit column id (INTEGER)");
        let mut w = rt.writer();
        let e = w
            .entries_of(&object(vec![("nope", Data::Int32(1))]))
            .unwrap_err();
        assert_eq!(
            (e.path.as_str(), e.reason.as_str()),
            ("nope", "the table has no such column")
        );
    }

    #[test]
    fn data_that_breaks_its_columns_is_named_by_path() {
        let columns = table_fields(&alert(), false).unwrap();
        let rt = RowType::new(&columns).unwrap();
        let schema = s(SchemaKind::Struct(vec![f(
            "prv_candidates",
            s(SchemaKind::Array(Box::new(s(SchemaKind::Struct(vec![f(
                "jd",
                s(SchemaKind::Float64),
            )]))))),
        )]));
        let data = Data::Struct(vec![Data::Array(vec![
            Data::Struct(vec![Data::Float64(1.0)]),
            Data::Null,
        ])]);
        let e = rt.writer().fields_of(&schema, &data).unwrap_err();
        assert_eq!(e.path, "prv_candidates[1]");
        assert!(e.reason.starts_with("a null array element"), "{e}");
        let schema = s(SchemaKind::Struct(vec![f(
            "candidate",
            s(SchemaKind::Struct(vec![f("jd", s(SchemaKind::Float64))])),
        )]));
        let data = Data::Struct(vec![Data::Struct(vec![Data::Null])]);
        let e = rt.writer().fields_of(&schema, &data).unwrap_err();
        assert_eq!(
            (e.path.as_str(), e.reason.as_str()),
            ("candidate.jd", "null in a required field")
        );
    }

    #[test]
    fn a_raw_row_holds_the_bytes_and_metadata() {
        let rt = RowType::new(&crate::raw::table_fields()).unwrap();
        let record = SinkRecord {
            topic: "ztf_20260112_programid1".into(),
            original_topic: None,
            partition: 3,
            offset: 42,
            timestamp: Some((1_768_200_000_123, TimestampType::CreateTime)),
            key: None,
            value: Some(Value::Bytes(Bytes::from_static(b"Obj\x01"))),
            headers: vec![
                Header {
                    key: "h".into(),
                    value: Some(Bytes::from_static(b"v")),
                },
                Header {
                    key: "n".into(),
                    value: None,
                },
            ],
        };
        let row = decode(&rt, &crate::raw::proto_row(&rt, &record).unwrap());
        let get = |name: &str| row.get_field_by_name(name).unwrap().into_owned();
        assert_eq!(get("topic").as_str(), Some("ztf_20260112_programid1"));
        assert_eq!(get("partition").as_i64(), Some(3));
        assert_eq!(get("offset").as_i64(), Some(42));
        assert_eq!(get("timestamp").as_i64(), Some(1_768_200_000_123_000));
        assert!(!row.has_field_by_name("key"));
        assert_eq!(get("value").as_bytes().unwrap().as_ref(), b"Obj\x01");
        let headers = get("headers");
        let headers = headers.as_list().unwrap();
        assert_eq!(headers.len(), 2);
        let first = headers[0].as_message().unwrap();
        assert_eq!(first.get_field_by_name("key").unwrap().as_str(), Some("h"));
        assert_eq!(
            first
                .get_field_by_name("value")
                .unwrap()
                .as_bytes()
                .unwrap()
                .as_ref(),
            b"v"
        );
        assert!(!headers[1].as_message().unwrap().has_field_by_name("value"));
        assert_eq!(row.descriptor().name(), "Row");
    }

    #[test]
    fn nested_lengths_of_every_size_are_right() {
        let columns = vec![Field::record(
            "r",
            Mode::Repeated,
            vec![Field::leaf("b", Kind::Bytes, Mode::Nullable)],
        )];
        let rt = RowType::new(&columns).unwrap();
        let schema = s(SchemaKind::Struct(vec![f(
            "r",
            s(SchemaKind::Array(Box::new(s(SchemaKind::Struct(vec![f(
                "b",
                s(SchemaKind::Bytes),
            )]))))),
        )]));
        let sizes = [0usize, 1, 125, 126, 127, 128, 16_381, 16_384, 70_000];
        let items = sizes
            .iter()
            .map(|&n| Data::Struct(vec![Data::Bytes(Bytes::from(vec![7u8; n]))]))
            .collect();
        let mut w = rt.writer();
        w.fields_of(&schema, &Data::Struct(vec![Data::Array(items)]))
            .unwrap();
        let row = decode(&rt, &w.finish());
        let r = row.get_field_by_name("r").unwrap();
        let got: Vec<usize> = r
            .as_list()
            .unwrap()
            .iter()
            .map(|m| {
                let m = m.as_message().unwrap();
                m.get_field_by_name("b").unwrap().as_bytes().unwrap().len()
            })
            .collect();
        assert_eq!(got, sizes);
    }
}
