//! Converters: bytes from Kafka → [`Value`]s for the sink, at the edge of the runtime.
//!
//! Two stages, on two sides of the worker:
//!
//! * [`Converter::convert_in`] runs in the connector's one poll thread and only copies
//!   bytes (or makes a string): it must stay cheap, since every task's records pass there.
//! * A [`Decoder`], one per task, runs in the task's driver just before `put` and turns the
//!   bytes of structured converters (Avro containers, JSON) into schema and data, so that
//!   tasks decode in parallel. A record that does not decode is a record error, handled by
//!   `errors.tolerance` like a record the sink cannot deliver.

mod avro;
mod confluent;
mod json;
mod protobuf;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferry_connector_api::data::SchemaKind;
use ferry_connector_api::{SinkRecord, Value};

pub use confluent::{BasicAuth, RegistrySettings};
pub use protobuf::ProtobufSettings;

/// Size of the blocks small record bytes are copied into.
const ARENA_BLOCK: usize = 256 * 1024;
/// Larger values are copied into allocations of their own.
const ARENA_MAX_VALUE: usize = 8 * 1024;

/// Kafka Connect's default for `schemas.cache.size`.
const DEFAULT_SCHEMA_CACHE: usize = 1000;

/// Every converter class ferry accepts, full names first, for the unknown-converter error.
const KNOWN: &str = "org.apache.kafka.connect.converters.ByteArrayConverter (bytes unchanged), \
org.apache.kafka.connect.storage.StringConverter (UTF-8 text), \
org.apache.kafka.connect.json.JsonConverter (JSON, with schemas.enable), \
ferry.converters.AvroContainerConverter (one Avro container file per record, as ZTF alerts), \
io.confluent.connect.avro.AvroConverter (Avro framed with a schema id, schemas from schema.registry.url), \
ferry.converters.ProtobufDescriptorConverter (protocol buffer messages, with descriptor.file and message.type); \
the short names ByteArrayConverter, StringConverter, JsonConverter, AvroContainerConverter, AvroConverter and ProtobufDescriptorConverter work too";

/// The converters ferry implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converter {
    /// `org.apache.kafka.connect.converters.ByteArrayConverter`: bytes unchanged.
    ByteArray,
    /// `org.apache.kafka.connect.storage.StringConverter`: UTF-8 text. Invalid UTF-8 is
    /// replaced with U+FFFD, as Java's `new String(bytes, UTF_8)` does.
    String,
    /// `ferry.converters.AvroContainerConverter`: each record is a complete Avro Object
    /// Container File holding one datum (ZTF alerts). The writer schema embedded in the
    /// file becomes the value's schema; files with the same schema share it.
    AvroContainer,
    /// `org.apache.kafka.connect.json.JsonConverter`.
    Json(JsonSettings),
    /// `io.confluent.connect.avro.AvroConverter`: Confluent's wire format (a zero byte,
    /// the schema's registry id, the Avro datum); schemas from `schema.registry.url`.
    ConfluentAvro(Arc<RegistrySettings>),
    /// `ferry.converters.ProtobufDescriptorConverter`: bare protocol buffer messages of
    /// `message.type`, decoded with the FileDescriptorSet in `descriptor.file`.
    Protobuf(Arc<ProtobufSettings>),
}

/// `JsonConverter`'s settings (`*.converter.<setting>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonSettings {
    /// `schemas.enable` (true, Connect's default): each record is an envelope
    /// `{"schema": …, "payload": …}`; false → any JSON, read without a schema.
    pub schemas_enable: bool,
    /// `replace.null.with.default` (true): a null for a field whose schema has a default
    /// reads as the default.
    pub replace_null_with_default: bool,
    /// `schemas.cache.size` (1000): distinct envelope schemas kept parsed.
    pub cache_size: usize,
}

impl Default for JsonSettings {
    fn default() -> Self {
        Self {
            schemas_enable: true,
            replace_null_with_default: true,
            cache_size: DEFAULT_SCHEMA_CACHE,
        }
    }
}

/// A Java `ConfigDef` boolean: `true`/`false`, any case.
fn parse_bool(
    settings: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, String> {
    match settings.get(key).map(|v| v.trim()) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(format!("JsonConverter {key} `{v}` is not true or false")),
    }
}

impl Converter {
    /// Parses a `*.converter` class name and its `*.converter.*` settings. The error is the
    /// reason, for the caller to place at its key.
    pub fn parse(class: &str, settings: &BTreeMap<String, String>) -> Result<Self, String> {
        let converter = match class.trim() {
            "org.apache.kafka.connect.converters.ByteArrayConverter" | "ByteArrayConverter" => {
                Converter::ByteArray
            }
            "org.apache.kafka.connect.storage.StringConverter" | "StringConverter" => {
                if let Some(enc) = settings.get("encoding")
                    && !enc.trim().eq_ignore_ascii_case("UTF-8")
                    && !enc.trim().eq_ignore_ascii_case("UTF8")
                {
                    return Err(format!(
                        "StringConverter encoding `{enc}` is not supported; only UTF-8"
                    ));
                }
                Converter::String
            }
            "ferry.converters.AvroContainerConverter" | "AvroContainerConverter" => {
                Converter::AvroContainer
            }
            "org.apache.kafka.connect.json.JsonConverter" | "JsonConverter" => {
                Converter::Json(Self::json_settings(settings)?)
            }
            "io.confluent.connect.avro.AvroConverter" | "AvroConverter" => {
                Converter::ConfluentAvro(Arc::new(RegistrySettings::parse(settings)?))
            }
            "ferry.converters.ProtobufDescriptorConverter" | "ProtobufDescriptorConverter" => {
                Converter::Protobuf(Arc::new(ProtobufSettings::parse(settings)?))
            }
            other => {
                return Err(format!(
                    "`{other}` is not supported yet; ferry's converters: {KNOWN}"
                ));
            }
        };
        Ok(converter)
    }

    fn json_settings(settings: &BTreeMap<String, String>) -> Result<JsonSettings, String> {
        let defaults = JsonSettings::default();
        let cache_size = match settings.get("schemas.cache.size").map(|v| v.trim()) {
            None => defaults.cache_size,
            Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("JsonConverter schemas.cache.size `{v}` is not a positive number")
            })?,
        };
        // Only writing depends on it; reading accepts both forms, as Connect's does.
        if let Some(format) = settings.get("decimal.format")
            && !["BASE64", "NUMERIC"].contains(&format.trim().to_ascii_uppercase().as_str())
        {
            return Err(format!(
                "JsonConverter decimal.format `{format}` is not BASE64 or NUMERIC"
            ));
        }
        Ok(JsonSettings {
            schemas_enable: parse_bool(settings, "schemas.enable", defaults.schemas_enable)?,
            replace_null_with_default: parse_bool(
                settings,
                "replace.null.with.default",
                defaults.replace_null_with_default,
            )?,
            cache_size,
        })
    }

    pub fn class_name(&self) -> &'static str {
        match self {
            Converter::ByteArray => "org.apache.kafka.connect.converters.ByteArrayConverter",
            Converter::String => "org.apache.kafka.connect.storage.StringConverter",
            Converter::AvroContainer => "ferry.converters.AvroContainerConverter",
            Converter::Json(_) => "org.apache.kafka.connect.json.JsonConverter",
            Converter::ConfluentAvro(_) => "io.confluent.connect.avro.AvroConverter",
            Converter::Protobuf(_) => "ferry.converters.ProtobufDescriptorConverter",
        }
    }

    /// The class's simple name, as error lines name the converter.
    fn short_name(&self) -> &'static str {
        let full = self.class_name();
        full.rsplit('.').next().unwrap_or(full)
    }

    /// Converts one key or value; `None` (a Kafka null) stays `None`.
    pub fn convert(&self, bytes: Option<&[u8]>) -> Option<Value> {
        self.convert_in(bytes, &mut BytesMut::new())
    }

    /// Like [`convert`](Converter::convert), copying bytes into `arena`, a buffer shared by
    /// the records of a batch: one allocation per block instead of one per record, and the
    /// block is freed when the last record using it is.
    ///
    /// Structured converters yield the bytes here too; the task's [`Decoder`] decodes them.
    pub fn convert_in(&self, bytes: Option<&[u8]>, arena: &mut BytesMut) -> Option<Value> {
        let bytes = bytes?;
        Some(match self {
            Converter::String => Value::String(String::from_utf8_lossy(bytes).into_owned()),
            // Large values get an allocation of their own: a block would hold only a few of
            // them and stay alive as long as the last one.
            _ if bytes.len() > ARENA_MAX_VALUE => Value::Bytes(Bytes::copy_from_slice(bytes)),
            Converter::ByteArray
            | Converter::AvroContainer
            | Converter::Json(_)
            | Converter::ConfluentAvro(_)
            | Converter::Protobuf(_) => {
                if arena.capacity() - arena.len() < bytes.len() {
                    // Reuses the block in place when every record cut from it has been
                    // dropped (its memory is still in cache), else starts a new one.
                    arena.reserve(ARENA_BLOCK.max(bytes.len()));
                }
                arena.extend_from_slice(bytes);
                Value::Bytes(arena.split().freeze())
            }
        })
    }
}

/// A key or value that its converter could not decode: the record error's reason.
#[derive(Debug, thiserror::Error)]
#[error("{setting} {converter}: {problem}{}", hint(self.setting, self.problem.hint()))]
pub struct DecodeError {
    /// `key.converter` or `value.converter`.
    setting: &'static str,
    /// The converter's simple class name.
    converter: &'static str,
    /// Its full class name, for the dead-letter queue's `__connect.errors.class.name`.
    class: &'static str,
    problem: Problem,
}

/// What went wrong, in the converter's own terms.
#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error(transparent)]
    Avro(#[from] avro::AvroError),
    #[error(transparent)]
    Json(#[from] json::JsonError),
    #[error(transparent)]
    Registry(#[from] confluent::RegistryError),
    #[error(transparent)]
    Protobuf(#[from] protobuf::ProtobufError),
}

impl DecodeError {
    /// As a record error: Connect's stage (KEY_CONVERTER or VALUE_CONVERTER) and the
    /// converter's class.
    pub fn record_error(&self) -> ferry_connector_api::RecordError {
        let stage = if self.setting == "key.converter" {
            ferry_connector_api::Stage::KeyConverter
        } else {
            ferry_connector_api::Stage::ValueConverter
        };
        ferry_connector_api::RecordError::at(stage, self.to_string()).with_class(self.class)
    }

    /// The record may decode later (its schema registry is unreachable): the batch is
    /// retried instead of the record being handed to `errors.tolerance`.
    pub fn is_retriable(&self) -> bool {
        matches!(&self.problem, Problem::Registry(e) if e.is_retriable())
    }
}

/// What the operator can change when records are not in the converter's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    None,
    /// The bytes are not in this format at all: pass them through instead.
    PassThrough,
    /// Plain JSON read with `schemas.enable=true`.
    DisableSchemas,
}

impl Problem {
    fn hint(&self) -> Hint {
        match self {
            Problem::Avro(e) => e.hint(),
            Problem::Json(e) => e.hint(),
            Problem::Registry(e) => e.hint(),
            Problem::Protobuf(e) => e.hint(),
        }
    }
}

fn hint(setting: &str, hint: Hint) -> String {
    match hint {
        Hint::None => String::new(),
        Hint::PassThrough => format!(
            "; set {setting}=org.apache.kafka.connect.converters.ByteArrayConverter to pass bytes through"
        ),
        Hint::DisableSchemas => {
            format!("; set {setting}.schemas.enable=false to read JSON without a schema")
        }
    }
}

/// One side's decoding state: the converter and its schema cache.
#[derive(Debug)]
enum Format {
    Avro(avro::ContainerDecoder),
    Json(json::JsonDecoder),
    Confluent(confluent::ConfluentDecoder),
    Protobuf(protobuf::ProtobufDecoder),
}

#[derive(Debug)]
struct Side {
    setting: &'static str,
    converter: Converter,
    format: Format,
}

impl Side {
    fn new(setting: &'static str, converter: Converter) -> Option<Self> {
        let format = match &converter {
            Converter::AvroContainer => Format::Avro(avro::ContainerDecoder::default()),
            Converter::Json(settings) => Format::Json(json::JsonDecoder::new(*settings)),
            Converter::ConfluentAvro(settings) => {
                Format::Confluent(confluent::ConfluentDecoder::new(settings.clone()))
            }
            Converter::Protobuf(settings) => {
                Format::Protobuf(protobuf::ProtobufDecoder::new(settings.clone()))
            }
            Converter::ByteArray | Converter::String => return None,
        };
        Some(Self {
            setting,
            converter,
            format,
        })
    }

    /// Decodes `value` in place when it holds bytes (it may already be decoded: a batch
    /// that the sink refused is delivered again as it is).
    fn decode(&mut self, value: &mut Option<Value>) -> Result<(), DecodeError> {
        let Some(Value::Bytes(raw)) = value else {
            return Ok(());
        };
        let raw = raw.clone();
        let decoded = match &mut self.format {
            Format::Avro(d) => d.decode(raw).map(Some).map_err(Problem::from),
            // `None`: JsonConverter reads a value with no JSON in it as null.
            Format::Json(d) => d.decode(raw).map_err(Problem::from),
            Format::Confluent(d) => d.decode(raw).map(Some).map_err(Problem::from),
            Format::Protobuf(d) => d.decode(raw).map(Some).map_err(Problem::from),
        };
        match decoded {
            Ok(s) => {
                *value = s.map(|s| Value::Structured(Arc::new(s)));
                Ok(())
            }
            Err(problem) => Err(DecodeError {
                setting: self.setting,
                converter: self.converter.short_name(),
                class: self.converter.class_name(),
                problem,
            }),
        }
    }
}

/// A task's decoder for its structured converters, with their schema caches. Lives in the
/// task's driver, so tasks decode in parallel and each keeps its own cache. Public for
/// the benchmarks.
pub struct Decoder {
    key: Option<Side>,
    value: Option<Side>,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |s: &Option<Side>| s.as_ref().map(|s| s.converter.short_name());
        f.debug_struct("Decoder")
            .field("key", &name(&self.key))
            .field("value", &name(&self.value))
            .finish()
    }
}

impl Decoder {
    pub fn new(key: Converter, value: Converter) -> Self {
        Self {
            key: Side::new("key.converter", key),
            value: Side::new("value.converter", value),
        }
    }

    /// Whether any record needs decoding (not for ByteArray and String converters).
    pub fn is_active(&self) -> bool {
        self.key.is_some() || self.value.is_some()
    }

    /// Decodes the record's key and value in place.
    pub fn decode(&mut self, record: &mut SinkRecord) -> Result<(), DecodeError> {
        if let Some(side) = &mut self.key {
            side.decode(&mut record.key)?;
        }
        if let Some(side) = &mut self.value {
            side.decode(&mut record.value)?;
        }
        Ok(())
    }
}

/// A most-recently-used list of parsed schemas keyed by their bytes. Linear: streams carry
/// a handful of schemas, and comparing a ZTF schema (23 KB) with `memcmp` is cheaper than
/// hashing it. The most recent entry is first.
#[derive(Debug)]
struct SchemaCache<T> {
    entries: Vec<(Box<[u8]>, T)>,
    capacity: usize,
}

impl<T> SchemaCache<T> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// The entry for `key`, parsed with `parse` on a miss.
    fn get_or_insert_with(&mut self, key: &[u8], parse: impl FnOnce() -> T) -> &T {
        match self.entries.iter().position(|(k, _)| **k == *key) {
            Some(0) => {}
            Some(i) => self.entries[..=i].rotate_right(1),
            None => {
                if self.entries.len() >= self.capacity {
                    self.entries.pop();
                }
                self.entries.insert(0, (key.into(), parse()));
            }
        }
        // Just found or inserted at the front.
        &self.entries[0].1
    }
}

/// How errors name a place in the schema.
fn place(path: &str) -> String {
    if path.is_empty() {
        "the top-level type".into()
    } else {
        format!("field `{path}`")
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Data that does not follow its schema, and where.
#[derive(Debug)]
struct Mismatch {
    /// Innermost first.
    path: Vec<String>,
    reason: String,
}

impl Mismatch {
    fn new(reason: String) -> Self {
        Self {
            path: Vec::new(),
            reason,
        }
    }

    fn at(mut self, segment: impl Into<String>) -> Self {
        self.path.push(segment.into());
        self
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = String::new();
        for segment in self.path.iter().rev() {
            // Array indexes and map keys attach to their field: `a[3]`, `m{k}.b`.
            if !path.is_empty() && !segment.starts_with(['[', '{']) {
                path.push('.');
            }
            path.push_str(segment);
        }
        write!(f, "{}: {}", place(&path), self.reason)
    }
}

/// A kind without its contents (a struct's Debug would print every field).
fn kind_name(kind: &SchemaKind) -> &'static str {
    match kind {
        SchemaKind::Boolean => "boolean",
        SchemaKind::Int8 => "int8",
        SchemaKind::Int16 => "int16",
        SchemaKind::Int32 => "int32",
        SchemaKind::Int64 => "int64",
        SchemaKind::Float32 => "float32",
        SchemaKind::Float64 => "float64",
        SchemaKind::String => "string",
        SchemaKind::Bytes => "bytes",
        SchemaKind::Timestamp(_) => "timestamp",
        SchemaKind::Date => "date",
        SchemaKind::Time(_) => "time",
        SchemaKind::Decimal { .. } => "decimal",
        SchemaKind::Array(_) => "array",
        SchemaKind::Map { .. } => "map",
        SchemaKind::Struct(_) => "struct",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_and_aliases() {
        let none = BTreeMap::new();
        assert_eq!(
            Converter::parse(
                "org.apache.kafka.connect.converters.ByteArrayConverter",
                &none
            ),
            Ok(Converter::ByteArray)
        );
        assert_eq!(
            Converter::parse("StringConverter", &none),
            Ok(Converter::String)
        );
        assert_eq!(
            Converter::parse("ferry.converters.AvroContainerConverter", &none),
            Ok(Converter::AvroContainer)
        );
        assert_eq!(
            Converter::parse("AvroContainerConverter", &none),
            Ok(Converter::AvroContainer)
        );
        assert_eq!(
            Converter::parse("org.apache.kafka.connect.json.JsonConverter", &none),
            Ok(Converter::Json(JsonSettings::default()))
        );
        let latin1 = BTreeMap::from([("encoding".to_string(), "ISO-8859-1".to_string())]);
        assert!(Converter::parse("StringConverter", &latin1).is_err());
        for c in [
            Converter::ByteArray,
            Converter::String,
            Converter::AvroContainer,
            Converter::Json(JsonSettings::default()),
        ] {
            assert_eq!(Converter::parse(c.class_name(), &none), Ok(c.clone()));
            assert_eq!(Converter::parse(c.short_name(), &none), Ok(c));
        }
        let registry = BTreeMap::from([(
            "schema.registry.url".to_string(),
            "http://registry:8081".to_string(),
        )]);
        for class in ["io.confluent.connect.avro.AvroConverter", "AvroConverter"] {
            let c = Converter::parse(class, &registry).unwrap();
            assert!(
                matches!(&c, Converter::ConfluentAvro(s) if s.urls == ["http://registry:8081"]),
                "{c:?}"
            );
            assert_eq!(c.class_name(), "io.confluent.connect.avro.AvroConverter");
        }
    }

    #[test]
    fn unknown_converters_list_the_known_ones() {
        let none = BTreeMap::new();
        let err = Converter::parse("com.example.XmlConverter", &none).unwrap_err();
        assert!(
            err.starts_with("`com.example.XmlConverter` is not supported yet; ferry's converters: org.apache.kafka.connect.converters.ByteArrayConverter"),
            "{err}"
        );
        assert!(
            err.contains("ferry.converters.AvroContainerConverter"),
            "{err}"
        );
        let err = Converter::parse("io.confluent.connect.avro.AvroConverter", &none).unwrap_err();
        assert!(err.contains("needs schema.registry.url"), "{err}");
    }

    #[test]
    fn json_settings_are_read_and_checked() {
        let settings = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let off = Converter::parse(
            "JsonConverter",
            &settings(&[
                ("schemas.enable", "FALSE"),
                ("schemas.cache.size", "5"),
                ("decimal.format", "numeric"),
            ]),
        );
        assert_eq!(
            off,
            Ok(Converter::Json(JsonSettings {
                schemas_enable: false,
                replace_null_with_default: true,
                cache_size: 5
            }))
        );
        let err =
            Converter::parse("JsonConverter", &settings(&[("schemas.enable", "yes")])).unwrap_err();
        assert_eq!(
            err,
            "JsonConverter schemas.enable `yes` is not true or false"
        );
        assert!(
            Converter::parse("JsonConverter", &settings(&[("schemas.cache.size", "0")])).is_err()
        );
        assert!(
            Converter::parse("JsonConverter", &settings(&[("decimal.format", "HEX")])).is_err()
        );
    }

    #[test]
    fn records_share_arena_blocks_without_mixing_bytes() {
        let mut arena = BytesMut::new();
        let a = Converter::ByteArray
            .convert_in(Some(b"first"), &mut arena)
            .unwrap();
        let b = Converter::ByteArray
            .convert_in(Some(b"second"), &mut arena)
            .unwrap();
        let big = vec![7u8; ARENA_BLOCK + 1];
        let medium = vec![9u8; ARENA_MAX_VALUE - 1];
        let m = Converter::ByteArray
            .convert_in(Some(&medium), &mut arena)
            .unwrap();
        let c = Converter::ByteArray
            .convert_in(Some(&big), &mut arena)
            .unwrap();
        let d = Converter::ByteArray
            .convert_in(Some(b""), &mut arena)
            .unwrap();
        assert_eq!(a.as_bytes(), b"first");
        assert_eq!(b.as_bytes(), b"second");
        assert_eq!(c.as_bytes(), &big[..]);
        assert_eq!(m.as_bytes(), &medium[..]);
        assert!(d.is_empty());
    }

    #[test]
    fn conversions_keep_bytes_and_nulls() {
        let raw = [0u8, 0xff, b'O', b'b', b'j', 1];
        assert_eq!(
            Converter::ByteArray.convert(Some(&raw)).unwrap().as_bytes(),
            &raw
        );
        assert_eq!(Converter::ByteArray.convert(None), None);
        assert_eq!(
            Converter::String.convert(Some("héllo".as_bytes())),
            Some(Value::String("héllo".into()))
        );
        assert_eq!(
            Converter::String.convert(Some(&[b'a', 0xff])),
            Some(Value::String("a\u{fffd}".into()))
        );
        // Structured converters leave decoding to the task.
        assert_eq!(
            Converter::AvroContainer.convert(Some(&raw)),
            Some(Value::Bytes(Bytes::copy_from_slice(&raw)))
        );
    }

    fn record(key: Option<&[u8]>, value: Option<&[u8]>) -> SinkRecord {
        SinkRecord {
            topic: "t".into(),
            original_topic: None,
            partition: 0,
            offset: 7,
            timestamp: None,
            key: key.map(|k| Value::Bytes(Bytes::copy_from_slice(k))),
            value: value.map(|v| Value::Bytes(Bytes::copy_from_slice(v))),
            headers: vec![],
        }
    }

    #[test]
    fn the_decoder_decodes_structured_sides_only_and_names_the_failing_one() {
        let json = Converter::Json(JsonSettings {
            schemas_enable: false,
            ..Default::default()
        });
        let mut d = Decoder::new(Converter::String, json);
        assert!(d.is_active());
        assert!(!Decoder::new(Converter::ByteArray, Converter::String).is_active());
        let mut r = record(Some(b"k"), Some(b"{\"a\": 1}"));
        r.key = Converter::String.convert(Some(b"k"));
        d.decode(&mut r).unwrap();
        assert_eq!(r.key, Some(Value::String("k".into())));
        let s = r.value.as_ref().unwrap().structured().unwrap();
        assert_eq!(s.raw, Bytes::from_static(b"{\"a\": 1}"));
        // Decoding again (a redelivered batch) leaves it as it is.
        let before = r.value.clone();
        d.decode(&mut r).unwrap();
        assert_eq!(r.value, before);
        // A tombstone stays null.
        let mut tombstone = record(None, None);
        d.decode(&mut tombstone).unwrap();
        assert_eq!(tombstone.value, None);
        // An empty value is null too, as Kafka's JsonConverter reads it.
        let mut empty = record(None, Some(b""));
        d.decode(&mut empty).unwrap();
        assert_eq!(empty.value, None);

        let mut d = Decoder::new(Converter::AvroContainer, Converter::ByteArray);
        let err = d
            .decode(&mut record(Some(b"ZTF18"), Some(b"x")))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "key.converter AvroContainerConverter: not an Avro container (no Obj\\x01 magic); set key.converter=org.apache.kafka.connect.converters.ByteArrayConverter to pass bytes through"
        );
    }

    #[test]
    fn the_schema_cache_keeps_the_most_recent_first_and_evicts_the_oldest() {
        let mut cache = SchemaCache::new(2);
        let mut parsed = Vec::new();
        for key in [b"a", b"b", b"a", b"c", b"a", b"b"] {
            let value = *cache.get_or_insert_with(key, || {
                parsed.push(key[0]);
                key[0]
            });
            assert_eq!(value, key[0]);
        }
        // c evicted b, the least recently used; a stayed.
        assert_eq!(parsed, b"abcb");
        let keys: Vec<&[u8]> = cache.entries.iter().map(|(k, _)| &**k).collect();
        assert_eq!(keys, [b"b", b"a"]);
    }
}
