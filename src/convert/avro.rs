//! `AvroContainerConverter`: each record is a whole Avro Object Container File holding one
//! datum, the way ZTF publishes alerts. The container framing (magic, metadata, sync
//! markers, blocks) is read here so that the embedded writer schema is parsed once per
//! distinct schema rather than once per record: ZTF repeats the same 23 KB schema in
//! every alert, and parsing it (0.7–1.3 ms in a release build) costs several times as
//! much as decoding the alert (0.15–0.2 ms). apache-avro parses schemas and decodes the
//! datum.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use apache_avro::schema::{Name, NamesRef, RecordSchema, ResolvedSchema, UnionSchema};
use apache_avro::types::Value as AvroValue;
use apache_avro::{Codec, DeflateSettings, GenericSingleObjectReader, Schema as AvroSchema};
use bytes::Bytes;
use ferry_connector_api::data::{Data, Field, Schema, SchemaKind, Structured, TimeUnit};

use super::{Hint, Mismatch, SchemaCache, join, kind_name, place};

const MAGIC: &[u8] = b"Obj\x01";
const SYNC_LEN: usize = 16;
/// Distinct writer schemas a task keeps parsed (ZTF: one per schema version in use).
const CACHED_SCHEMAS: usize = 16;

/// Why a record is not a usable Avro container.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum AvroError {
    #[error("not an Avro container (no Obj\\x01 magic)")]
    NotContainer,
    #[error("truncated Avro container: {0} ends early")]
    Truncated(&'static str),
    #[error("corrupt Avro container: {0}")]
    Corrupt(&'static str),
    #[error("the Avro container has no avro.schema")]
    NoSchema,
    #[error("avro.codec `{0}` is not supported; ferry reads null and deflate")]
    Codec(String),
    #[error("the Avro container holds {0} records; ferry maps one Kafka record to one value")]
    RecordCount(u64),
    #[error("the Avro container's schema: {0}")]
    Schema(String),
    #[error("the Avro container's block does not inflate (deflate codec): {0}")]
    Deflate(String),
    #[error("the Avro record does not decode with its container's schema: {0}")]
    Datum(String),
}

impl AvroError {
    pub(super) fn hint(&self) -> Hint {
        match self {
            AvroError::NotContainer => Hint::PassThrough,
            _ => Hint::None,
        }
    }
}

/// A writer schema parsed once: apache-avro's to decode with, ferry's for the sink.
pub(super) struct Writer {
    /// Holds the schema with its named types resolved, ready to decode datums. Built with
    /// an empty single-object header, so that it reads a bare datum. (A
    /// `GenericDatumReader` borrows its schema, so it would be rebuilt for every record,
    /// resolving the names again: about 30 µs per ZTF alert, some 15 % of its decoding.)
    reader: GenericSingleObjectReader,
    schema: Arc<Schema>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("name", &self.schema.name)
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub(super) fn parse(text: &[u8]) -> Result<Self, AvroError> {
        let json: serde_json::Value = serde_json::from_slice(text)
            .map_err(|e| AvroError::Schema(format!("avro.schema is not JSON: {e}")))?;
        let avro = AvroSchema::parse(&json).map_err(|e| AvroError::Schema(e.to_string()))?;
        let resolved =
            ResolvedSchema::try_from(&avro).map_err(|e| AvroError::Schema(e.to_string()))?;
        let mut mapper = Mapper {
            names: resolved.get_names(),
            done: HashMap::new(),
            open: Vec::new(),
        };
        let schema = Arc::new(mapper.map(&avro, "")?);
        let reader = GenericSingleObjectReader::builder()
            .schema(avro)
            .header(Vec::new())
            .build()
            .map_err(|e| AvroError::Schema(e.to_string()))?;
        Ok(Self { reader, schema })
    }

    pub(super) fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Decodes one bare datum, which must fill `bytes` exactly.
    pub(super) fn decode_datum(&self, bytes: &[u8]) -> Result<Data, AvroError> {
        let mut rest = bytes;
        let value = self
            .reader
            .read_value(&mut rest)
            .map_err(|e| AvroError::Datum(e.to_string()))?;
        if !rest.is_empty() {
            return Err(AvroError::Datum(format!(
                "{} bytes are left after the record",
                rest.len()
            )));
        }
        to_data(value, &self.schema).map_err(|e| AvroError::Datum(e.to_string()))
    }
}

/// A task's Avro container decoder, with its writer-schema cache.
#[derive(Debug)]
pub(crate) struct ContainerDecoder {
    /// Keyed by the `avro.schema` bytes. Failures are kept too, so that a stream with a
    /// schema ferry cannot map reports each record without parsing the schema again.
    schemas: SchemaCache<Result<Writer, AvroError>>,
}

impl Default for ContainerDecoder {
    fn default() -> Self {
        Self {
            schemas: SchemaCache::new(CACHED_SCHEMAS),
        }
    }
}

impl ContainerDecoder {
    pub(crate) fn decode(&mut self, raw: Bytes) -> Result<Structured, AvroError> {
        let container = Container::parse(&raw)?;
        let writer = self
            .schemas
            .get_or_insert_with(container.schema, || Writer::parse(container.schema))
            .as_ref()
            .map_err(Clone::clone)?;
        let block: Cow<'_, [u8]> = match container.codec {
            BlockCodec::Null => Cow::Borrowed(container.block),
            BlockCodec::Deflate => {
                let mut block = container.block.to_vec();
                // Bounded by apache-avro's allocation limit (a deflate bomb is an error).
                Codec::Deflate(DeflateSettings::default())
                    .decompress(&mut block)
                    .map_err(|e| AvroError::Deflate(e.to_string()))?;
                Cow::Owned(block)
            }
        };
        let data = writer.decode_datum(&block)?;
        Ok(Structured {
            schema: Some(writer.schema.clone()),
            data,
            raw,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockCodec {
    Null,
    Deflate,
}

/// The parts of a container file that decoding needs, borrowed from its bytes.
#[derive(Debug)]
struct Container<'a> {
    /// The `avro.schema` metadata: the writer schema's JSON.
    schema: &'a [u8],
    codec: BlockCodec,
    /// The (possibly compressed) block holding the one record.
    block: &'a [u8],
}

impl<'a> Container<'a> {
    /// Reads the framing: magic, metadata map, sync marker, then every block (checking its
    /// sync marker), counting records.
    fn parse(bytes: &'a [u8]) -> Result<Self, AvroError> {
        let Some(rest) = bytes.strip_prefix(MAGIC) else {
            return Err(AvroError::NotContainer);
        };
        let mut r = Cursor(rest);
        let (mut schema, mut codec) = (None, None);
        loop {
            let count = r.long("the metadata")?;
            if count == 0 {
                break;
            }
            if count < 0 {
                // A negative count is followed by the block's size in bytes.
                r.long("the metadata")?;
            }
            for _ in 0..count.unsigned_abs() {
                let key = r.bytes("a metadata key")?;
                let value = r.bytes("a metadata value")?;
                match key {
                    b"avro.schema" => schema = Some(value),
                    b"avro.codec" => codec = Some(value),
                    _ => {}
                }
            }
        }
        let sync = r.take(SYNC_LEN, "the sync marker")?;
        let (mut records, mut block) = (0u64, None);
        while !r.0.is_empty() {
            let count = r.long("a block's record count")?;
            let size = r.long("a block's size")?;
            let (Ok(count), Ok(size)) = (u64::try_from(count), usize::try_from(size)) else {
                return Err(AvroError::Corrupt("a block has a negative count or size"));
            };
            let data = r.take(size, "a block")?;
            if r.take(SYNC_LEN, "a block's sync marker")? != sync {
                return Err(AvroError::Corrupt(
                    "a block's sync marker differs from the header's",
                ));
            }
            records = records.saturating_add(count);
            if count > 0 {
                block = Some(data);
            }
        }
        let schema = schema.ok_or(AvroError::NoSchema)?;
        let codec = match codec {
            None | Some(b"null") => BlockCodec::Null,
            Some(b"deflate") => BlockCodec::Deflate,
            Some(other) => {
                return Err(AvroError::Codec(
                    String::from_utf8_lossy(other).into_owned(),
                ));
            }
        };
        match (records, block) {
            (1, Some(block)) => Ok(Self {
                schema,
                codec,
                block,
            }),
            (n, _) => Err(AvroError::RecordCount(n)),
        }
    }
}

/// Reads Avro's binary encoding of longs and byte strings.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], AvroError> {
        if self.0.len() < n {
            return Err(AvroError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    /// A zig-zag varint.
    fn long(&mut self, what: &'static str) -> Result<i64, AvroError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let [b, rest @ ..] = self.0 else {
                return Err(AvroError::Truncated(what));
            };
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((v >> 1) as i64 ^ -((v & 1) as i64));
            }
        }
        Err(AvroError::Corrupt("a number is longer than 10 bytes"))
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], AvroError> {
        let len = usize::try_from(self.long(what)?)
            .map_err(|_| AvroError::Corrupt("a negative length"))?;
        self.take(len, what)
    }
}

/// Maps an Avro schema to ferry's, resolving references to named types.
struct Mapper<'a> {
    names: &'a NamesRef<'a>,
    /// Named types already mapped.
    done: HashMap<Name, Schema>,
    /// Records being mapped (a reference to one of them is a recursive type).
    open: Vec<Name>,
}

/// An Avro type as a schema author writes it, for error messages.
fn type_name(s: &AvroSchema) -> String {
    match s {
        AvroSchema::Record(r) => r.name.fullname(None),
        AvroSchema::Enum(e) => e.name.fullname(None),
        AvroSchema::Fixed(f) => f.name.fullname(None),
        AvroSchema::Ref { name } => name.fullname(None),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
    }
}

fn named(kind: SchemaKind, name: &Name, doc: &Option<String>) -> Schema {
    Schema {
        kind,
        optional: false,
        name: Some(name.fullname(None)),
        doc: doc.clone(),
    }
}

impl<'a> Mapper<'a> {
    fn map(&mut self, s: &'a AvroSchema, path: &str) -> Result<Schema, AvroError> {
        use AvroSchema as A;
        let kind = match s {
            A::Null => {
                return Err(AvroError::Schema(format!(
                    "{}: type null outside a union is not supported",
                    place(path)
                )));
            }
            A::Boolean => SchemaKind::Boolean,
            A::Int => SchemaKind::Int32,
            A::Long => SchemaKind::Int64,
            A::Float => SchemaKind::Float32,
            A::Double => SchemaKind::Float64,
            A::Bytes => SchemaKind::Bytes,
            // uuid reads as its text; big-decimal as its decimal text.
            A::String | A::Uuid(_) | A::BigDecimal => SchemaKind::String,
            A::Array(a) => SchemaKind::Array(Box::new(self.map(&a.items, &format!("{path}[]"))?)),
            A::Map(m) => SchemaKind::Map {
                key: Box::new(Schema::new(SchemaKind::String)),
                value: Box::new(self.map(&m.types, &format!("{path}{{}}"))?),
            },
            A::Union(u) => return self.union(u, path),
            A::Record(r) => return self.record(r, path),
            A::Enum(e) => return Ok(named(SchemaKind::String, &e.name, &e.doc)),
            A::Fixed(f) => return Ok(named(SchemaKind::Bytes, &f.name, &f.doc)),
            A::Decimal(d) => {
                let (Ok(precision), Ok(scale)) =
                    (u32::try_from(d.precision), u32::try_from(d.scale))
                else {
                    return Err(AvroError::Schema(format!(
                        "{}: decimal precision or scale out of range",
                        place(path)
                    )));
                };
                SchemaKind::Decimal { precision, scale }
            }
            A::Date => SchemaKind::Date,
            A::TimeMillis => SchemaKind::Time(TimeUnit::Millis),
            A::TimeMicros => SchemaKind::Time(TimeUnit::Micros),
            // A local timestamp has no time zone; ferry reads it as if it were UTC.
            A::TimestampMillis | A::LocalTimestampMillis => SchemaKind::Timestamp(TimeUnit::Millis),
            A::TimestampMicros | A::LocalTimestampMicros => SchemaKind::Timestamp(TimeUnit::Micros),
            // No nanosecond unit: the underlying long, as Avro readers do with a logical
            // type they do not know.
            A::TimestampNanos | A::LocalTimestampNanos => SchemaKind::Int64,
            // The underlying fixed(12): months, days, milliseconds, little-endian.
            A::Duration(_) => SchemaKind::Bytes,
            A::Ref { name } => return self.reference(name, path),
        };
        Ok(Schema::new(kind))
    }

    fn record(&mut self, r: &'a RecordSchema, path: &str) -> Result<Schema, AvroError> {
        if let Some(done) = self.done.get(&r.name) {
            return Ok(done.clone());
        }
        self.open.push(r.name.clone());
        let fields = r
            .fields
            .iter()
            .map(|f| {
                Ok(Field {
                    name: f.name.clone(),
                    schema: self.map(&f.schema, &join(path, &f.name))?,
                    doc: f.doc.clone(),
                })
            })
            .collect::<Result<Vec<_>, AvroError>>()?;
        self.open.pop();
        let schema = named(SchemaKind::Struct(fields), &r.name, &r.doc);
        self.done.insert(r.name.clone(), schema.clone());
        Ok(schema)
    }

    fn reference(&mut self, name: &Name, path: &str) -> Result<Schema, AvroError> {
        if let Some(done) = self.done.get(name) {
            return Ok(done.clone());
        }
        if self.open.contains(name) {
            return Err(AvroError::Schema(format!(
                "{}: record {} contains itself; recursive types are not supported",
                place(path),
                name.fullname(None)
            )));
        }
        let names = self.names;
        match names.get(name) {
            Some(s) => self.map(s, path),
            None => Err(AvroError::Schema(format!(
                "{}: unknown type {}",
                place(path),
                name.fullname(None)
            ))),
        }
    }

    /// `["null", T]` and `[T, "null"]` are an optional `T`; a one-type union is that type.
    fn union(&mut self, u: &'a UnionSchema, path: &str) -> Result<Schema, AvroError> {
        let variants = u.variants();
        let mut types = variants.iter().filter(|v| !matches!(v, AvroSchema::Null));
        match (variants.len(), types.next(), types.next()) {
            (1, Some(t), None) => self.map(t, path),
            (2, Some(t), None) => Ok(self.map(t, path)?.optional()),
            _ => Err(AvroError::Schema(format!(
                "{}: union [{}] is not supported yet; ferry reads unions of null and one type",
                place(path),
                variants
                    .iter()
                    .map(type_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// apache-avro's value → ferry's data, following the mapped schema. Consumes the value so
/// that strings and bytes move rather than copy.
fn to_data(v: AvroValue, s: &Schema) -> Result<Data, Mismatch> {
    use AvroValue as V;
    use SchemaKind as K;
    Ok(match (v, &s.kind) {
        (V::Union(_, inner), _) => return to_data(*inner, s),
        (V::Null, _) if s.optional => Data::Null,
        (V::Boolean(b), K::Boolean) => Data::Boolean(b),
        (V::Int(i), K::Int32) => Data::Int32(i),
        (V::Long(i) | V::TimestampNanos(i) | V::LocalTimestampNanos(i), K::Int64) => Data::Int64(i),
        (V::Float(f), K::Float32) => Data::Float32(f),
        (V::Double(f), K::Float64) => Data::Float64(f),
        (V::String(t) | V::Enum(_, t), K::String) => Data::String(t),
        (V::Uuid(u), K::String) => Data::String(u.to_string()),
        (V::BigDecimal(d), K::String) => Data::String(d.to_string()),
        (V::Bytes(b) | V::Fixed(_, b), K::Bytes) => Data::Bytes(Bytes::from(b)),
        (V::Duration(d), K::Bytes) => Data::Bytes(Bytes::copy_from_slice(&<[u8; 12]>::from(d))),
        (V::Date(d), K::Date) => Data::Date(d),
        (V::TimeMillis(t), K::Time(_)) => Data::Time(i64::from(t) * 1000),
        (V::TimeMicros(t), K::Time(_)) => Data::Time(t),
        (V::TimestampMillis(t) | V::LocalTimestampMillis(t), K::Timestamp(_)) => {
            Data::Timestamp(t.checked_mul(1000).ok_or_else(|| {
                Mismatch::new(format!("timestamp {t} ms does not fit in microseconds"))
            })?)
        }
        (V::TimestampMicros(t) | V::LocalTimestampMicros(t), K::Timestamp(_)) => Data::Timestamp(t),
        (V::Decimal(d), K::Decimal { .. }) => Data::Decimal(Bytes::from(
            Vec::<u8>::try_from(&d).map_err(|e| Mismatch::new(e.to_string()))?,
        )),
        (V::Array(items), K::Array(item)) => Data::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_data(v, item).map_err(|e| e.at(format!("[{i}]"))))
                .collect::<Result<_, _>>()?,
        ),
        (V::Map(entries), K::Map { value, .. }) => {
            // apache-avro reads maps into a HashMap, which loses the written order: sort by
            // key, so that the same bytes always give the same data.
            let mut entries: Vec<(String, AvroValue)> = entries.into_iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            Data::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let d = to_data(v, value).map_err(|e| e.at(format!("{{{k}}}")))?;
                        Ok((Data::String(k), d))
                    })
                    .collect::<Result<_, Mismatch>>()?,
            )
        }
        (V::Record(values), K::Struct(fields)) if values.len() == fields.len() => Data::Struct(
            values
                .into_iter()
                .zip(fields)
                .map(|((name, v), f)| to_data(v, &f.schema).map_err(|e| e.at(name)))
                .collect::<Result<_, _>>()?,
        ),
        (v, kind) => {
            return Err(Mismatch::new(format!(
                "a {:?} value where the schema has {}",
                apache_avro::schema::SchemaKind::from(&v),
                kind_name(kind)
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use apache_avro::Writer as ContainerWriter;
    use apache_avro::types::Record;

    use super::*;

    /// Exercises every mapping: nested and referenced records, optional unions both ways
    /// round, arrays, maps, enums, fixed, and the logical types.
    const SCHEMA: &str = r#"{
      "type": "record", "name": "alert", "namespace": "test", "doc": "An alert.",
      "fields": [
        {"name": "id", "type": "string", "doc": "Object id"},
        {"name": "candid", "type": "long"},
        {"name": "flag", "type": "boolean"},
        {"name": "mag", "type": ["null", "float"]},
        {"name": "jd", "type": ["double", "null"]},
        {"name": "cand", "type": {"type": "record", "name": "cand",
          "fields": [{"name": "fid", "type": "int"}, {"name": "band", "type": {"type": "enum", "name": "band", "symbols": ["g", "r", "i"]}}]}},
        {"name": "prv", "type": ["null", {"type": "array", "items": "cand"}]},
        {"name": "tags", "type": {"type": "map", "values": "long"}},
        {"name": "stamp", "type": {"type": "fixed", "name": "stamp", "size": 2}},
        {"name": "image", "type": "bytes"},
        {"name": "at_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "local", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "tod", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}}
      ]}"#;

    fn cand(fid: i32, band: u32) -> AvroValue {
        let symbols = ["g", "r", "i"];
        AvroValue::Record(vec![
            ("fid".into(), AvroValue::Int(fid)),
            (
                "band".into(),
                AvroValue::Enum(band, symbols[band as usize].into()),
            ),
        ])
    }

    fn alert(schema: &AvroSchema, id: &str) -> AvroValue {
        let mut r = Record::new(schema).unwrap();
        r.put("id", id);
        r.put("candid", 1_703_222_170_415_010_089_i64);
        r.put("flag", true);
        r.put("mag", AvroValue::Union(1, Box::new(AvroValue::Float(18.5))));
        r.put("jd", AvroValue::Union(1, Box::new(AvroValue::Null)));
        r.put("cand", cand(1, 0));
        r.put(
            "prv",
            AvroValue::Union(1, Box::new(AvroValue::Array(vec![cand(2, 1), cand(3, 2)]))),
        );
        r.put(
            "tags",
            AvroValue::Map(
                [
                    ("b".to_string(), AvroValue::Long(2)),
                    ("a".into(), AvroValue::Long(1)),
                ]
                .into(),
            ),
        );
        r.put("stamp", AvroValue::Fixed(2, vec![0xca, 0xfe]));
        r.put("image", AvroValue::Bytes(vec![1, 2, 3]));
        r.put("at_ms", AvroValue::TimestampMillis(1_630_454_400_123));
        r.put("at_us", AvroValue::TimestampMicros(1_630_454_400_123_456));
        r.put("local", AvroValue::LocalTimestampMillis(5));
        r.put("day", AvroValue::Date(18_871));
        r.put("tod", AvroValue::TimeMillis(3_600_000));
        // -12345 as the unscaled value: -123.45.
        r.put(
            "price",
            AvroValue::Decimal(apache_avro::Decimal::from(vec![0xcf, 0xc7])),
        );
        r.put(
            "uid",
            AvroValue::Uuid(apache_avro::Uuid::from_u128(
                0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
            )),
        );
        r.into()
    }

    /// A container file written by apache-avro's own writer (not by ferry's reader).
    fn container(codec: Codec, ids: &[&str]) -> Bytes {
        let schema = AvroSchema::parse_str(SCHEMA).unwrap();
        let mut w = ContainerWriter::with_codec(&schema, Vec::new(), codec).unwrap();
        for id in ids {
            w.append_value(alert(&schema, id)).unwrap();
        }
        Bytes::from(w.into_inner().unwrap())
    }

    fn field<'a>(s: &'a Structured, name: &str) -> &'a Data {
        let schema = s.schema.as_ref().unwrap();
        let i = schema.fields().iter().position(|f| f.name == name).unwrap();
        let Data::Struct(values) = &s.data else {
            panic!("not a struct")
        };
        &values[i]
    }

    #[test]
    fn decodes_a_container_into_schema_and_data() {
        let raw = container(Codec::Null, &["ZTF18acyizaa"]);
        let s = ContainerDecoder::default().decode(raw.clone()).unwrap();
        assert_eq!(s.raw, raw, "the bytes travel with the data");
        let schema = s.schema.as_ref().unwrap();
        assert_eq!(schema.name.as_deref(), Some("test.alert"));
        assert_eq!(schema.doc.as_deref(), Some("An alert."));
        let fields = schema.fields();
        assert_eq!(fields[0].doc.as_deref(), Some("Object id"));
        let kinds: Vec<(&str, &SchemaKind, bool)> = fields
            .iter()
            .map(|f| (f.name.as_str(), &f.schema.kind, f.schema.optional))
            .collect();
        let cand = Schema {
            kind: SchemaKind::Struct(vec![
                Field {
                    name: "fid".into(),
                    schema: Schema::new(SchemaKind::Int32),
                    doc: None,
                },
                Field {
                    name: "band".into(),
                    schema: Schema {
                        name: Some("test.band".into()),
                        ..Schema::new(SchemaKind::String)
                    },
                    doc: None,
                },
            ]),
            optional: false,
            name: Some("test.cand".into()),
            doc: None,
        };
        assert_eq!(kinds[1], ("candid", &SchemaKind::Int64, false));
        assert_eq!(kinds[3], ("mag", &SchemaKind::Float32, true));
        assert_eq!(kinds[4], ("jd", &SchemaKind::Float64, true));
        assert_eq!(fields[5].schema, cand);
        assert_eq!(
            fields[6].schema,
            Schema::new(SchemaKind::Array(Box::new(cand.clone()))).optional(),
            "a reference to a named record is the record"
        );
        assert_eq!(
            kinds[7].1,
            &SchemaKind::Map {
                key: Box::new(Schema::new(SchemaKind::String)),
                value: Box::new(Schema::new(SchemaKind::Int64))
            }
        );
        assert_eq!(kinds[8].1, &SchemaKind::Bytes);
        assert_eq!(kinds[10].1, &SchemaKind::Timestamp(TimeUnit::Millis));
        assert_eq!(kinds[11].1, &SchemaKind::Timestamp(TimeUnit::Micros));
        assert_eq!(kinds[12].1, &SchemaKind::Timestamp(TimeUnit::Millis));
        assert_eq!(kinds[13].1, &SchemaKind::Date);
        assert_eq!(kinds[14].1, &SchemaKind::Time(TimeUnit::Millis));
        assert_eq!(
            kinds[15].1,
            &SchemaKind::Decimal {
                precision: 9,
                scale: 2
            }
        );
        assert_eq!(kinds[16].1, &SchemaKind::String);

        let cand_data =
            |fid, band: &str| Data::Struct(vec![Data::Int32(fid), Data::String(band.into())]);
        assert_eq!(field(&s, "id"), &Data::String("ZTF18acyizaa".into()));
        assert_eq!(field(&s, "candid"), &Data::Int64(1_703_222_170_415_010_089));
        assert_eq!(field(&s, "flag"), &Data::Boolean(true));
        assert_eq!(field(&s, "mag"), &Data::Float32(18.5));
        assert_eq!(field(&s, "jd"), &Data::Null);
        assert_eq!(field(&s, "cand"), &cand_data(1, "g"));
        assert_eq!(
            field(&s, "prv"),
            &Data::Array(vec![cand_data(2, "r"), cand_data(3, "i")])
        );
        assert_eq!(
            field(&s, "tags"),
            &Data::Map(vec![
                (Data::String("a".into()), Data::Int64(1)),
                (Data::String("b".into()), Data::Int64(2))
            ]),
            "map entries in key order"
        );
        assert_eq!(
            field(&s, "stamp"),
            &Data::Bytes(Bytes::from_static(&[0xca, 0xfe]))
        );
        assert_eq!(
            field(&s, "image"),
            &Data::Bytes(Bytes::from_static(&[1, 2, 3]))
        );
        assert_eq!(field(&s, "at_ms"), &Data::Timestamp(1_630_454_400_123_000));
        assert_eq!(field(&s, "at_us"), &Data::Timestamp(1_630_454_400_123_456));
        assert_eq!(field(&s, "local"), &Data::Timestamp(5_000));
        assert_eq!(field(&s, "day"), &Data::Date(18_871));
        assert_eq!(field(&s, "tod"), &Data::Time(3_600_000_000));
        assert_eq!(
            field(&s, "price"),
            &Data::Decimal(Bytes::from_static(&[0xcf, 0xc7]))
        );
        assert_eq!(
            field(&s, "uid"),
            &Data::String("01234567-89ab-cdef-0123-456789abcdef".into())
        );
    }

    #[test]
    fn records_with_the_same_schema_share_it_and_it_is_parsed_once() {
        let mut d = ContainerDecoder::default();
        let a = d.decode(container(Codec::Null, &["a"])).unwrap();
        let b = d.decode(container(Codec::Null, &["b"])).unwrap();
        assert!(Arc::ptr_eq(
            a.schema.as_ref().unwrap(),
            b.schema.as_ref().unwrap()
        ));
        assert_eq!(d.schemas.entries.len(), 1);
        assert_eq!(field(&b, "id"), &Data::String("b".into()));
    }

    #[test]
    fn deflate_blocks_are_inflated() {
        let raw = container(Codec::Deflate(DeflateSettings::default()), &["deflated"]);
        assert!(
            raw.windows(7).any(|w| w == b"deflate"),
            "the writer used the deflate codec"
        );
        let s = ContainerDecoder::default().decode(raw).unwrap();
        assert_eq!(field(&s, "id"), &Data::String("deflated".into()));
        assert_eq!(
            field(&s, "image"),
            &Data::Bytes(Bytes::from_static(&[1, 2, 3]))
        );
    }

    fn error(raw: &[u8]) -> String {
        ContainerDecoder::default()
            .decode(Bytes::copy_from_slice(raw))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bytes_that_are_not_a_container_say_so() {
        assert_eq!(
            error(b"{\"objectId\": 1}"),
            "not an Avro container (no Obj\\x01 magic)"
        );
        assert_eq!(error(b""), "not an Avro container (no Obj\\x01 magic)");
        assert_eq!(
            AvroError::NotContainer.hint(),
            Hint::PassThrough,
            "the error line suggests passing bytes through"
        );
    }

    #[test]
    fn a_container_must_hold_exactly_one_record() {
        assert_eq!(
            error(&container(Codec::Null, &["a", "b"])),
            "the Avro container holds 2 records; ferry maps one Kafka record to one value"
        );
        assert_eq!(
            error(&container(Codec::Null, &[])),
            "the Avro container holds 0 records; ferry maps one Kafka record to one value"
        );
        // Two blocks of one record each count as two too.
        let schema = AvroSchema::parse_str(SCHEMA).unwrap();
        let mut w = ContainerWriter::new(&schema, Vec::new()).unwrap();
        w.append_value(alert(&schema, "a")).unwrap();
        w.flush().unwrap();
        w.append_value(alert(&schema, "b")).unwrap();
        let two_blocks = w.into_inner().unwrap();
        assert!(error(&two_blocks).contains("holds 2 records"));
    }

    #[test]
    fn damaged_containers_are_record_errors() {
        let raw = container(Codec::Null, &["a"]);
        assert_eq!(
            error(&raw[..raw.len() - 20]),
            "truncated Avro container: a block ends early"
        );
        let mut bad_sync = raw.to_vec();
        let last = bad_sync.len() - 1;
        bad_sync[last] ^= 0xff;
        assert_eq!(
            error(&bad_sync),
            "corrupt Avro container: a block's sync marker differs from the header's"
        );
        assert_eq!(
            error(b"Obj\x01\x00"),
            "truncated Avro container: the sync marker ends early"
        );
        let mut no_schema = b"Obj\x01\x00".to_vec();
        no_schema.extend([7u8; 16]);
        assert_eq!(error(&no_schema), "the Avro container has no avro.schema");
    }

    /// A container with `schema` as its writer schema and an empty datum block (enough to
    /// reach schema mapping).
    fn with_schema(schema: &str, codec: &str) -> Vec<u8> {
        let mut out = b"Obj\x01".to_vec();
        let long = |out: &mut Vec<u8>, v: i64| {
            let mut z = ((v << 1) ^ (v >> 63)) as u64;
            while z >= 0x80 {
                out.push((z as u8) | 0x80);
                z >>= 7;
            }
            out.push(z as u8);
        };
        long(&mut out, 2);
        for (k, v) in [("avro.schema", schema), ("avro.codec", codec)] {
            long(&mut out, k.len() as i64);
            out.extend(k.as_bytes());
            long(&mut out, v.len() as i64);
            out.extend(v.as_bytes());
        }
        long(&mut out, 0);
        out.extend([9u8; 16]);
        long(&mut out, 1);
        long(&mut out, 1);
        out.push(0);
        out.extend([9u8; 16]);
        out
    }

    #[test]
    fn unsupported_schemas_and_codecs_are_named() {
        let union = r#"{"type": "record", "name": "r", "fields": [
            {"name": "outer", "type": {"type": "record", "name": "o", "fields": [
              {"name": "either", "type": ["null", "int", "string"]}]}}]}"#;
        assert_eq!(
            error(&with_schema(union, "null")),
            "the Avro container's schema: field `outer.either`: union [null, int, string] is not supported yet; ferry reads unions of null and one type"
        );
        let recursive = r#"{"type": "record", "name": "node", "fields": [
            {"name": "next", "type": ["null", "node"]}]}"#;
        assert!(
            error(&with_schema(recursive, "null"))
                .contains("field `next`: record node contains itself"),
            "{}",
            error(&with_schema(recursive, "null"))
        );
        assert_eq!(
            error(&with_schema(r#""int""#, "snappy")),
            "avro.codec `snappy` is not supported; ferry reads null and deflate"
        );
        assert!(
            error(&with_schema("{not json", "null"))
                .starts_with("the Avro container's schema: avro.schema is not JSON")
        );
        // A datum that leaves bytes over does not follow the schema.
        let mut d = ContainerDecoder::default();
        let err = d
            .decode(Bytes::from(with_schema(r#""null""#, "null")))
            .unwrap_err();
        assert!(
            err.to_string().contains("type null outside a union"),
            "{err}"
        );
        let err = d
            .decode(Bytes::from(with_schema(r#""boolean""#, "null")))
            .unwrap();
        assert_eq!(err.data, Data::Boolean(false));
    }

    /// A real ZTF alert of the repository's `tests/data/ztf` (see its README).
    fn ztf_alert(name: &str) -> Bytes {
        let path = ferry_mock_broker::ztf::real_alert_dir().join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Bytes::from(bytes)
    }

    const ZTF_ALERT: &str = "ZTF18acyizaa.1703222170415010089.ztf_20210831_programid1.avro";

    #[test]
    fn a_real_ztf_alert_decodes_to_the_values_fastavro_reads() {
        let raw = ztf_alert(ZTF_ALERT);
        let s = ContainerDecoder::default().decode(raw).unwrap();
        let schema = s.schema.as_ref().unwrap();
        // Expected values read independently with fastavro 1.13.1:
        //   r = fastavro.reader(open(ZTF_ALERT, 'rb')); a = next(r)
        //   r.writer_schema['name'], len(r.writer_schema['fields']) → 'ztf.alert', 9
        //   a['objectId'], a['candid'], a['candidate']['jd'] → 'ZTF18acyizaa',
        //     1703222170415010089, 2459457.7221759
        //   a['candidate']['magpsf'], a['candidate']['fid'] → 18.190082550048828, 1
        //   len(a['prv_candidates']) → 16, each with candid None
        //   len(a['cutoutScience']['stampData']) → 10572
        //   field count of ztf.alert.candidate → 103
        assert_eq!(schema.name.as_deref(), Some("ztf.alert"));
        assert_eq!(schema.fields().len(), 9);
        assert_eq!(field(&s, "objectId"), &Data::String("ZTF18acyizaa".into()));
        assert_eq!(field(&s, "candid"), &Data::Int64(1_703_222_170_415_010_089));
        let candidate_schema = &schema.fields()[4].schema;
        assert_eq!(
            candidate_schema.name.as_deref(),
            Some("ztf.alert.candidate")
        );
        assert_eq!(candidate_schema.fields().len(), 103);
        assert_eq!(
            candidate_schema.fields()[0].doc.as_deref(),
            Some("Observation Julian date at start of exposure [days]")
        );
        let Data::Struct(candidate) = field(&s, "candidate") else {
            panic!("candidate is not a struct")
        };
        let at = |name: &str| {
            let i = candidate_schema
                .fields()
                .iter()
                .position(|f| f.name == name)
                .unwrap();
            &candidate[i]
        };
        assert_eq!(at("jd"), &Data::Float64(2459457.7221759));
        assert_eq!(at("fid"), &Data::Int32(1));
        // fastavro prints the float widened to a double.
        assert_eq!(at("magpsf"), &Data::Float32(18.190082550048828_f64 as f32));
        let Data::Array(prv) = field(&s, "prv_candidates") else {
            panic!("prv_candidates is not an array")
        };
        assert_eq!(prv.len(), 16);
        let prv_schema = match &schema.fields()[5].schema.kind {
            SchemaKind::Array(item) => item.as_ref(),
            other => panic!("{other:?}"),
        };
        let candid = prv_schema
            .fields()
            .iter()
            .position(|f| f.name == "candid")
            .unwrap();
        assert!(
            prv.iter()
                .all(|p| matches!(p, Data::Struct(v) if v[candid] == Data::Null))
        );
        let Data::Struct(cutout) = field(&s, "cutoutScience") else {
            panic!("cutoutScience is not a struct")
        };
        assert!(matches!(&cutout[1], Data::Bytes(b) if b.len() == 10572));
        // cutoutTemplate refers to ztf.alert.cutout by name.
        assert_eq!(
            schema.fields()[7].schema.name.as_deref(),
            Some("ztf.alert.cutout")
        );
        assert!(schema.fields()[7].schema.optional);
    }

    #[test]
    fn every_real_ztf_alert_decodes() {
        let files = ferry_mock_broker::ztf::real_alert_files().unwrap();
        let mut d = ContainerDecoder::default();
        for path in &files {
            let raw = Bytes::from(std::fs::read(path).unwrap());
            let s = d
                .decode(raw)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(matches!(field(&s, "objectId"), Data::String(id) if id.starts_with("ZTF")));
        }
        // One schema (3.3), each alert embedding its own copy: parsed once.
        assert_eq!(d.schemas.entries.len(), 1);
    }

    /// The synthetic ZTF-shaped alerts the integration tests use for volume decode here
    /// to what they were written with.
    #[test]
    fn synthetic_ztf_shaped_alerts_decode() {
        use ferry_mock_broker::ztf;
        let mut d = ContainerDecoder::default();
        for (i, raw) in ztf::synthetic_alerts(20).into_iter().enumerate() {
            let s = d.decode(Bytes::from(raw)).unwrap();
            let schema = s.schema.as_ref().unwrap();
            assert_eq!(schema.name.as_deref(), Some("ferry.test.ztf_shaped.alert"));
            let candid = ztf::SYNTHETIC_CANDID + i as i64;
            assert_eq!(field(&s, "candid"), &Data::Int64(candid));
            assert!(matches!(field(&s, "objectId"), Data::String(id) if id.starts_with("ZTF99")));
            let Data::Struct(candidate) = field(&s, "candidate") else {
                panic!("candidate is not a struct")
            };
            let candidate_schema = &schema.fields()[4].schema;
            let at = |name: &str| {
                let i = candidate_schema
                    .fields()
                    .iter()
                    .position(|f| f.name == name)
                    .unwrap();
                &candidate[i]
            };
            assert_eq!(at("candid"), &Data::Int64(candid));
            assert!(matches!(at("magpsf"), Data::Float32(m) if (16.0..21.0).contains(m)));
            match field(&s, "prv_candidates") {
                Data::Null => assert_eq!(i % 7, 0, "alert {i}: only every 7th has no history"),
                Data::Array(prv) => assert!(!prv.is_empty()),
                other => panic!("prv_candidates: {other:?}"),
            }
            for c in ztf::CUTOUTS {
                let Data::Struct(cutout) = field(&s, c) else {
                    panic!("{c} is not a struct")
                };
                assert!(
                    matches!(&cutout[1], Data::Bytes(b) if b.len() >= 18_500),
                    "{c}"
                );
            }
            // cutoutTemplate and cutoutDifference name the cutout record.
            assert_eq!(
                schema.fields()[7].schema.name.as_deref(),
                Some("ferry.test.ztf_shaped.cutout")
            );
        }
        assert_eq!(d.schemas.entries.len(), 1);
    }

    /// Decode speed on one core: `cargo test --release -p ferry --lib ztf_decode_speed -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn ztf_decode_speed() {
        let raw = ztf_alert(ZTF_ALERT);
        let mut d = ContainerDecoder::default();
        let n = 20_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(d.decode(raw.clone()).unwrap());
        }
        let secs = start.elapsed().as_secs_f64();
        let parse = std::time::Instant::now();
        let container = Container::parse(&raw).unwrap();
        for _ in 0..100 {
            std::hint::black_box(Writer::parse(container.schema).unwrap());
        }
        let parse_us = parse.elapsed().as_secs_f64() * 1e6 / 100.0;
        println!(
            "ZTF alert ({} bytes): {:.0} alerts/s on one core ({:.1} µs each, {:.0} MB/s); parsing its schema alone takes {parse_us:.0} µs",
            raw.len(),
            n as f64 / secs,
            secs * 1e6 / n as f64,
            raw.len() as f64 * n as f64 / secs / 1e6
        );
    }
}
