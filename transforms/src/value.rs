//! Keys and values as Connect's transforms see them: an optional schema and data.

use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use ferry_connector_api::data::{Data, Schema, SchemaKind, Structured};
use ferry_connector_api::{SinkRecord, Value};

use crate::{Result, TransformError, json};

/// Which part of the record a `$Key`/`$Value` transform works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Key,
    Value,
}

impl Side {
    pub(crate) fn get(self, r: &SinkRecord) -> Option<&Value> {
        match self {
            Side::Key => r.key.as_ref(),
            Side::Value => r.value.as_ref(),
        }
    }

    pub(crate) fn slot(self, r: &mut SinkRecord) -> &mut Option<Value> {
        match self {
            Side::Key => &mut r.key,
            Side::Value => &mut r.value,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::Key => "key",
            Side::Value => "value",
        }
    }
}

// One shared schema each, so that the schema cache below recognises them by pointer.
static OPTIONAL_BYTES: LazyLock<Arc<Schema>> =
    LazyLock::new(|| Arc::new(Schema::new(SchemaKind::Bytes).optional()));
static OPTIONAL_STRING: LazyLock<Arc<Schema>> =
    LazyLock::new(|| Arc::new(Schema::new(SchemaKind::String).optional()));

/// The output schema a transform made for the last input schema it saw, as Connect's
/// transforms cache them: records with one schema in get one schema out, the same `Arc`,
/// so that a sink can still tell "same schema as the last record" by pointer (see
/// [`Structured::schema`]).
#[derive(Debug, Default)]
pub(crate) struct SchemaCache(Mutex<Option<(Arc<Schema>, Arc<Schema>)>>);

impl SchemaCache {
    /// The cached output for `input` (compared by pointer: the cache holds `input`, so its
    /// address cannot be reused), or `make`'s, cached.
    pub(crate) fn get(&self, input: &Arc<Schema>, make: impl FnOnce() -> Schema) -> Arc<Schema> {
        let Ok(mut last) = self.0.lock() else {
            // A poisoned lock only loses the cache.
            return Arc::new(make());
        };
        if let Some((i, o)) = &*last
            && Arc::ptr_eq(i, input)
        {
            return Arc::clone(o);
        }
        let out = Arc::new(make());
        *last = Some((Arc::clone(input), Arc::clone(&out)));
        out
    }
}

/// A key or value taken apart. `StringConverter` and `ByteArrayConverter` values get the
/// optional string and bytes schemas those converters give them in Connect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parts {
    pub(crate) schema: Option<Arc<Schema>>,
    pub(crate) data: Data,
}

impl Parts {
    pub(crate) fn of(value: Option<Value>) -> Parts {
        match value {
            None => Parts {
                schema: None,
                data: Data::Null,
            },
            Some(Value::Bytes(b)) => Parts {
                schema: Some(Arc::clone(&OPTIONAL_BYTES)),
                data: Data::Bytes(b),
            },
            Some(Value::String(s)) => Parts {
                schema: Some(Arc::clone(&OPTIONAL_STRING)),
                data: Data::String(s),
            },
            Some(Value::Structured(s)) => {
                let s = Arc::unwrap_or_clone(s);
                Parts {
                    schema: s.schema,
                    data: s.data,
                }
            }
            Some(other) => Parts {
                schema: Some(Arc::clone(&OPTIONAL_BYTES)),
                data: Data::Bytes(other.to_bytes()),
            },
        }
    }

    /// The value with new data. Its bytes are left empty here: the chain writes the JSON
    /// text once, after its last transform ([`finish_raw`]), rather than once per transform.
    pub(crate) fn into_value(self) -> Value {
        Value::Structured(Arc::new(Structured {
            schema: self.schema,
            data: self.data,
            raw: Bytes::new(),
        }))
    }
}

/// A structured key or value read with no bytes at all, kept so that the chain can tell it
/// from a value a transform made (whose bytes are empty until [`finish_raw`]). Holding it
/// keeps its address from being reused; only this rare case pays for a copy.
pub(crate) fn unwritten(v: &Option<Value>) -> Option<Arc<Structured>> {
    match v {
        Some(Value::Structured(s)) if s.raw.is_empty() => Some(Arc::clone(s)),
        _ => None,
    }
}

/// Gives a value a transform made (`size`: a guess of its length) the JSON text `JsonConverter` with
/// `schemas.enable=false` would write for it; a value read (`read`) keeps its bytes.
pub(crate) fn finish_raw(v: &mut Option<Value>, read: Option<Arc<Structured>>, size: usize) {
    if let Some(Value::Structured(s)) = v
        && s.raw.is_empty()
        && !read.is_some_and(|r| Arc::ptr_eq(&r, s))
    {
        let raw = Bytes::from(json::to_json_sized(s.schema.as_deref(), &s.data, size));
        Arc::make_mut(s).raw = raw;
    }
}

/// Whether a key or value is null (absent, or JSON `null`).
pub(crate) fn is_null(v: Option<&Value>) -> bool {
    match v {
        None => true,
        Some(Value::Structured(s)) => s.data == Data::Null,
        Some(_) => false,
    }
}

/// A schemaless value must be a map (Connect's `Requirements.requireMap`).
pub(crate) fn require_map<'d>(
    data: &'d mut Data,
    purpose: &str,
) -> Result<&'d mut Vec<(Data, Data)>> {
    match data {
        Data::Map(entries) => Ok(entries),
        other => Err(TransformError::new(format!(
            "only a map is supported without a schema for [{purpose}], found {}",
            kind_of(other)
        ))),
    }
}

/// A schema'd value must be a struct (Connect's `Requirements.requireStruct`).
pub(crate) fn require_struct<'s>(schema: &'s Schema, purpose: &str) -> Result<&'s [Field]> {
    match &schema.kind {
        SchemaKind::Struct(fields) => Ok(fields),
        other => Err(TransformError::new(format!(
            "only a struct is supported for [{purpose}], found {}",
            schema_kind_name(other)
        ))),
    }
}

use ferry_connector_api::data::Field;

/// Sets a map entry, replacing one with the same key in place or appending.
pub(crate) fn map_put(entries: &mut Vec<(Data, Data)>, name: &str, value: Data) {
    match entries
        .iter_mut()
        .find(|(k, _)| matches!(k, Data::String(s) if s == name))
    {
        Some((_, v)) => *v = value,
        None => entries.push((Data::String(name.to_string()), value)),
    }
}

pub(crate) fn struct_fields(data: Data) -> Vec<Data> {
    match data {
        Data::Struct(values) => values,
        _ => Vec::new(),
    }
}

/// A data's kind, as error lines name it.
pub(crate) fn kind_of(d: &Data) -> &'static str {
    match d {
        Data::Null => "null",
        Data::Boolean(_) => "a boolean",
        Data::Int8(_) | Data::Int16(_) | Data::Int32(_) | Data::Int64(_) => "an integer",
        Data::Float32(_) | Data::Float64(_) => "a floating-point number",
        Data::String(_) => "a string",
        Data::Bytes(_) => "bytes",
        Data::Timestamp(_) => "a timestamp",
        Data::Date(_) => "a date",
        Data::Time(_) => "a time",
        Data::Decimal(_) => "a decimal",
        Data::Array(_) => "an array",
        Data::Map(_) => "a map",
        Data::Struct(_) => "a struct",
    }
}

pub(crate) fn schema_kind_name(k: &SchemaKind) -> &'static str {
    match k {
        SchemaKind::Boolean => "BOOLEAN",
        SchemaKind::Int8 => "INT8",
        SchemaKind::Int16 => "INT16",
        SchemaKind::Int32 => "INT32",
        SchemaKind::Int64 => "INT64",
        SchemaKind::Float32 => "FLOAT32",
        SchemaKind::Float64 => "FLOAT64",
        SchemaKind::String => "STRING",
        SchemaKind::Bytes => "BYTES",
        SchemaKind::Timestamp(_) => "Timestamp",
        SchemaKind::Date => "Date",
        SchemaKind::Time(_) => "Time",
        SchemaKind::Decimal { .. } => "Decimal",
        SchemaKind::Array(_) => "ARRAY",
        SchemaKind::Map { .. } => "MAP",
        SchemaKind::Struct(_) => "STRUCT",
    }
}
/// The entry of a map with string keys.
pub(crate) fn map_get<'d>(entries: &'d [(Data, Data)], name: &str) -> Option<&'d Data> {
    entries
        .iter()
        .find(|(k, _)| matches!(k, Data::String(s) if s == name))
        .map(|(_, v)| v)
}
