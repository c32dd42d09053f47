//! Structured values: what a structured converter (Avro, JSON) makes of a record's bytes,
//! in Kafka Connect's data model — a [`Schema`] and [`Data`] that follows it. Sinks map
//! this model to their destination (BigQuery columns, …) without knowing which format the
//! bytes were in.
//!
//! Logical types (timestamps, dates, decimals) are kinds of their own rather than Connect's
//! name-plus-parameters on a primitive, so that a sink matches on them exhaustively.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// The unit of a timestamp or time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    Millis,
    Micros,
}

/// What a schema describes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchemaKind {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Bytes,
    /// An instant since the Unix epoch; the data is [`Data::Timestamp`] in microseconds
    /// whatever the unit the bytes had (the unit says what precision they carried).
    Timestamp(TimeUnit),
    /// Days since the Unix epoch ([`Data::Date`]).
    Date,
    /// Time of day; the data is [`Data::Time`] in microseconds.
    Time(TimeUnit),
    /// An arbitrary-precision decimal: [`Data::Decimal`] holds the unscaled two's-complement
    /// big-endian integer.
    Decimal {
        precision: u32,
        scale: u32,
    },
    Array(Box<Schema>),
    Map {
        key: Box<Schema>,
        value: Box<Schema>,
    },
    /// Fields in order; [`Data::Struct`] holds their values in the same order.
    Struct(Vec<Field>),
}

/// A field of a struct.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    pub name: String,
    pub schema: Schema,
    pub doc: Option<String>,
}

/// Kafka Connect's `Schema`: a kind, whether the value may be null, and the name and
/// documentation the format gave it (an Avro record's full name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schema {
    pub kind: SchemaKind,
    pub optional: bool,
    pub name: Option<String>,
    pub doc: Option<String>,
}

impl Schema {
    /// A required schema of `kind` with no name.
    pub fn new(kind: SchemaKind) -> Self {
        Self {
            kind,
            optional: false,
            name: None,
            doc: None,
        }
    }

    /// The same schema, nullable.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The struct's fields, or none for other kinds.
    pub fn fields(&self) -> &[Field] {
        match &self.kind {
            SchemaKind::Struct(fields) => fields,
            _ => &[],
        }
    }
}

/// A value following a [`Schema`] (or, for schemaless JSON, none).
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Null,
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    String(String),
    Bytes(Bytes),
    /// Microseconds since the Unix epoch.
    Timestamp(i64),
    /// Days since the Unix epoch.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// The unscaled value, two's-complement big-endian; the scale is the schema's.
    Decimal(Bytes),
    Array(Vec<Data>),
    /// Entries in the converter's order: JSON's as in the bytes, Avro's sorted by key
    /// (apache-avro reads maps into a hash map).
    Map(Vec<(Data, Data)>),
    /// Field values in the schema's field order.
    Struct(Vec<Data>),
}

/// A record key or value decoded by a structured converter.
#[derive(Clone, PartialEq)]
pub struct Structured {
    /// The schema the bytes carried or named; `None` for schemaless JSON. Converters share
    /// one `Arc` between records with the same schema, so a sink can tell "same schema as
    /// the last record" by pointer.
    pub schema: Option<Arc<Schema>>,
    pub data: Data,
    /// The record's bytes as read from Kafka, for sinks that pass them on unchanged.
    pub raw: Bytes,
}

impl fmt::Debug for Structured {
    // The data can be large (a ZTF alert holds three image cutouts); show its outline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.schema.as_ref().and_then(|s| s.name.as_deref());
        write!(
            f,
            "Structured({}, {} bytes)",
            name.unwrap_or(if self.schema.is_some() {
                "unnamed schema"
            } else {
                "schemaless"
            }),
            self.raw.len()
        )
    }
}
