//! `ferry.converters.ProtobufDescriptorConverter`: records that are bare protocol buffer
//! messages (`proto.Marshal` bytes, no framing — ALICE's AliECS events, for one), decoded
//! with a FileDescriptorSet (`protoc --include_imports --descriptor_set_out=…`) and the name
//! of the message type, as `pq --msgtype events.Event` does. Decoding is `prost-reflect`'s;
//! this module maps its dynamic messages to Kafka Connect's data model:
//!
//! * message → struct (named by the message's full name), fields in declaration order;
//!   a message field is optional (null when unset);
//! * a `oneof` → its fields as optional fields of the message: only the one set has a value;
//! * proto3 scalars without presence read as their default when unset (as protobuf does),
//!   fields with presence (`optional`, proto2) are optional and null when unset;
//! * enums → the value's name (its number when the descriptor does not know it);
//! * `repeated` → array, `map<K, V>` → map (entries sorted by key);
//! * `int32`/`sint32`/`sfixed32` → int32; `int64`/`sint64`/`sfixed64` → int64;
//!   `uint32`/`fixed32` → int64; `uint64`/`fixed64` → int64 holding the same 64 bits (as
//!   Java's `long` holds them); `float` → float32, `double` → float64;
//! * well-known types: `google.protobuf.Timestamp` → timestamp; the wrappers
//!   (`StringValue`, `Int64Value`, …) → their optional primitive.
//!
//! The schema is derived once, when the converter is configured; a recursive message type
//! (e.g. `google.protobuf.Struct`) has no finite schema and is refused there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use ferry_connector_api::data::{Data, Field, Schema, SchemaKind, Structured, TimeUnit};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value as PValue,
};

use super::Hint;

/// The converter's settings (`*.converter.descriptor.file`, `*.converter.message.type`),
/// with the descriptor loaded and the schema derived from it.
#[derive(Debug)]
pub struct ProtobufSettings {
    /// `descriptor.file`: a serialized `google.protobuf.FileDescriptorSet`.
    pub descriptor_file: PathBuf,
    /// `message.type`: the full name of the records' message type (`events.Event`).
    pub message_type: String,
    descriptor: MessageDescriptor,
    schema: Arc<Schema>,
}

impl PartialEq for ProtobufSettings {
    fn eq(&self, other: &Self) -> bool {
        self.descriptor_file == other.descriptor_file && self.message_type == other.message_type
    }
}

impl Eq for ProtobufSettings {}

impl ProtobufSettings {
    /// Reads the converter's settings and its descriptor set; the error is the reason,
    /// naming the setting and the fix.
    pub(crate) fn parse(
        settings: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let file = settings.get("descriptor.file").map(|s| s.trim()).ok_or(
            "ProtobufDescriptorConverter needs descriptor.file: a FileDescriptorSet, made with `protoc --include_imports --descriptor_set_out=FILE your.proto`",
        )?;
        let message_type = settings
            .get("message.type")
            .map(|s| s.trim().trim_start_matches('.').to_string())
            .ok_or("ProtobufDescriptorConverter needs message.type: the full name of the records' message (e.g. events.Event)")?;
        let file = PathBuf::from(file);
        let descriptor = load(&file, &message_type)?;
        let schema = Arc::new(message_schema(&descriptor, &mut Vec::new()).map_err(|e| {
            format!(
                "descriptor.file {}: message.type {message_type}: {e}",
                file.display()
            )
        })?);
        Ok(Self {
            descriptor_file: file,
            message_type,
            descriptor,
            schema,
        })
    }
}

/// The message type `name` from the descriptor set in `file`.
fn load(file: &Path, name: &str) -> Result<MessageDescriptor, String> {
    let bytes = std::fs::read(file)
        .map_err(|e| format!("descriptor.file {}: cannot read it: {e}", file.display()))?;
    let pool = DescriptorPool::decode(bytes.as_slice()).map_err(|e| {
        format!(
            "descriptor.file {} is not a FileDescriptorSet ({e}); make one with `protoc --include_imports --descriptor_set_out=FILE your.proto`",
            file.display()
        )
    })?;
    pool.get_message_by_name(name).ok_or_else(|| {
        let names: Vec<String> = pool
            .all_messages()
            .filter(|m| !m.full_name().starts_with("google.protobuf."))
            .map(|m| m.full_name().to_string())
            .collect();
        // The same simple name in a package (`Event` → `events.Event`), else a near spelling.
        let simple = |n: &str| n.rsplit('.').next().unwrap_or(n).to_lowercase();
        let closest = names
            .iter()
            .find(|n| simple(n) == simple(name))
            .or_else(|| {
                names
                    .iter()
                    .map(|n| (strsim::damerau_levenshtein(&n.to_lowercase(), &name.to_lowercase()), n))
                    .filter(|(d, _)| *d <= 3)
                    .min()
                    .map(|(_, n)| n)
            });
        let hint = closest
            .map(|n| format!("did you mean {n}? "))
            .unwrap_or_default();
        format!(
            "message.type {name} is not in descriptor.file {} ({} message types); {hint}give the full name, package included",
            file.display(),
            names.len()
        )
    })
}

/// Why a message type has no schema.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SchemaError(String);

fn message_schema(
    message: &MessageDescriptor,
    stack: &mut Vec<String>,
) -> Result<Schema, SchemaError> {
    let name = message.full_name().to_string();
    if stack.contains(&name) {
        return Err(SchemaError(format!(
            "{name} contains itself ({} → {name}); recursive message types have no fixed schema",
            stack.join(" → ")
        )));
    }
    stack.push(name.clone());
    let mut fields = Vec::new();
    for field in message.fields() {
        let schema = field_schema(&field, stack)?;
        fields.push(Field {
            name: field.name().to_string(),
            schema,
            doc: None,
        });
    }
    stack.pop();
    Ok(Schema {
        kind: SchemaKind::Struct(fields),
        optional: false,
        name: Some(name),
        doc: None,
    })
}

/// A field's schema: its value's, in an array for `repeated`, optional when the field can
/// be unset (a message, a oneof member, a field with presence).
fn field_schema(field: &FieldDescriptor, stack: &mut Vec<String>) -> Result<Schema, SchemaError> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err(SchemaError(format!(
                "map field {} has no entry type",
                field.name()
            )));
        };
        let key = value_schema(&entry.map_entry_key_field().kind(), stack)?;
        let value = value_schema(&entry.map_entry_value_field().kind(), stack)?;
        return Ok(Schema::new(SchemaKind::Map {
            key: Box::new(key),
            value: Box::new(value),
        }));
    }
    let value = value_schema(&field.kind(), stack)?;
    if field.is_list() {
        return Ok(Schema::new(SchemaKind::Array(Box::new(value))));
    }
    if field.supports_presence() {
        Ok(value.optional())
    } else {
        Ok(value)
    }
}

fn value_schema(kind: &Kind, stack: &mut Vec<String>) -> Result<Schema, SchemaError> {
    let kind = match kind {
        Kind::Bool => SchemaKind::Boolean,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => SchemaKind::Int32,
        Kind::Int64
        | Kind::Sint64
        | Kind::Sfixed64
        | Kind::Uint32
        | Kind::Fixed32
        | Kind::Uint64
        | Kind::Fixed64 => SchemaKind::Int64,
        Kind::Float => SchemaKind::Float32,
        Kind::Double => SchemaKind::Float64,
        Kind::String => SchemaKind::String,
        Kind::Bytes => SchemaKind::Bytes,
        Kind::Enum(e) => {
            return Ok(Schema {
                kind: SchemaKind::String,
                optional: false,
                name: Some(e.full_name().to_string()),
                doc: None,
            });
        }
        Kind::Message(m) => {
            return match well_known(m) {
                Some(WellKnown::Timestamp) => {
                    Ok(Schema::new(SchemaKind::Timestamp(TimeUnit::Micros)))
                }
                Some(WellKnown::Wrapper(inner)) => value_schema(&inner, stack),
                None => message_schema(m, stack),
            };
        }
    };
    Ok(Schema::new(kind))
}

/// The well-known types that map to a primitive rather than a struct.
enum WellKnown {
    Timestamp,
    /// `google.protobuf.*Value`: the kind of its `value` field.
    Wrapper(Kind),
}

fn well_known(m: &MessageDescriptor) -> Option<WellKnown> {
    match m.full_name() {
        "google.protobuf.Timestamp" => Some(WellKnown::Timestamp),
        "google.protobuf.DoubleValue"
        | "google.protobuf.FloatValue"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.BoolValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => m
            .get_field_by_name("value")
            .map(|f| WellKnown::Wrapper(f.kind())),
        _ => None,
    }
}

/// Bytes that are not a message of the configured type.
#[derive(Debug, thiserror::Error)]
#[error("not a protocol buffer {message_type} message ({cause})")]
pub(super) struct ProtobufError {
    message_type: String,
    cause: String,
}

impl ProtobufError {
    pub(super) fn hint(&self) -> Hint {
        Hint::PassThrough
    }
}

/// Decodes records with one converter's settings.
#[derive(Debug)]
pub(super) struct ProtobufDecoder {
    settings: Arc<ProtobufSettings>,
}

impl ProtobufDecoder {
    pub(super) fn new(settings: Arc<ProtobufSettings>) -> Self {
        Self { settings }
    }

    pub(super) fn decode(&self, raw: Bytes) -> Result<Structured, ProtobufError> {
        let message = DynamicMessage::decode(self.settings.descriptor.clone(), raw.clone())
            .map_err(|e| ProtobufError {
                message_type: self.settings.message_type.clone(),
                cause: e.to_string(),
            })?;
        Ok(Structured {
            schema: Some(self.settings.schema.clone()),
            data: message_data(&message),
            raw,
        })
    }
}

fn message_data(message: &DynamicMessage) -> Data {
    let fields = message
        .descriptor()
        .fields()
        .map(|f| {
            if f.supports_presence() && !f.is_list() && !f.is_map() && !message.has_field(&f) {
                Data::Null
            } else {
                field_data(&f, &message.get_field(&f))
            }
        })
        .collect();
    Data::Struct(fields)
}

fn field_data(field: &FieldDescriptor, value: &PValue) -> Data {
    match value {
        PValue::List(items) => {
            Data::Array(items.iter().map(|v| value_data(&field.kind(), v)).collect())
        }
        PValue::Map(entries) => {
            let value_kind = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            };
            let mut pairs: Vec<(&MapKey, &PValue)> = entries.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            Data::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (key_data(k), value_data(&value_kind, v)))
                    .collect(),
            )
        }
        other => value_data(&field.kind(), other),
    }
}

fn key_data(key: &MapKey) -> Data {
    match key {
        MapKey::Bool(b) => Data::Boolean(*b),
        MapKey::I32(n) => Data::Int32(*n),
        MapKey::I64(n) => Data::Int64(*n),
        MapKey::U32(n) => Data::Int64(i64::from(*n)),
        // The same 64 bits, as Java's long holds a uint64.
        MapKey::U64(n) => Data::Int64(*n as i64),
        MapKey::String(s) => Data::String(s.clone()),
    }
}

fn value_data(kind: &Kind, value: &PValue) -> Data {
    match value {
        PValue::Bool(b) => Data::Boolean(*b),
        PValue::I32(n) => Data::Int32(*n),
        PValue::I64(n) => Data::Int64(*n),
        PValue::U32(n) => Data::Int64(i64::from(*n)),
        // The same 64 bits, as Java's long holds a uint64.
        PValue::U64(n) => Data::Int64(*n as i64),
        PValue::F32(x) => Data::Float32(*x),
        PValue::F64(x) => Data::Float64(*x),
        PValue::String(s) => Data::String(s.clone()),
        PValue::Bytes(b) => Data::Bytes(b.clone()),
        PValue::EnumNumber(n) => match kind {
            Kind::Enum(e) => match e.get_value(*n) {
                Some(v) => Data::String(v.name().to_string()),
                None => Data::String(n.to_string()),
            },
            _ => Data::String(n.to_string()),
        },
        PValue::Message(m) => match well_known(&m.descriptor()) {
            Some(WellKnown::Timestamp) => {
                let get = |name: &str| m.get_field_by_name(name).map(|v| v.into_owned());
                let seconds = match get("seconds") {
                    Some(PValue::I64(s)) => s,
                    _ => 0,
                };
                let nanos = match get("nanos") {
                    Some(PValue::I32(n)) => i64::from(n),
                    _ => 0,
                };
                Data::Timestamp(
                    seconds
                        .saturating_mul(1_000_000)
                        .saturating_add(nanos / 1_000),
                )
            }
            Some(WellKnown::Wrapper(inner)) => match m.get_field_by_name("value") {
                Some(v) => value_data(&inner, &v),
                None => Data::Null,
            },
            None => message_data(m),
        },
        // A list or map inside a list does not occur in protobuf.
        PValue::List(_) | PValue::Map(_) => Data::Null,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use prost::Message as _;

    use super::*;

    fn settings(message: &str) -> Result<ProtobufSettings, String> {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/aliecs/events.desc");
        let map: BTreeMap<String, String> = [
            ("descriptor.file".to_string(), file.to_string()),
            ("message.type".to_string(), message.to_string()),
        ]
        .into_iter()
        .collect();
        ProtobufSettings::parse(&map)
    }

    fn field<'a>(schema: &'a Schema, name: &str) -> &'a Schema {
        &schema
            .fields()
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no field {name}"))
            .schema
    }

    #[test]
    fn aliecs_event_schema_follows_the_mapping() {
        let s = settings("events.Event").unwrap();
        let event = &*s.schema;
        assert_eq!(event.name.as_deref(), Some("events.Event"));
        let names: Vec<&str> = event.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            &names[..3],
            ["timestamp", "timestampNano", "environmentEvent"]
        );
        // proto3 scalars without presence: required; oneof members: optional.
        assert_eq!(field(event, "timestamp").kind, SchemaKind::Int64);
        assert!(!field(event, "timestamp").optional);
        let env = field(event, "environmentEvent");
        assert!(env.optional);
        assert_eq!(field(env, "runNumber").kind, SchemaKind::Int64, "uint32");
        assert_eq!(field(env, "transitionStatus").kind, SchemaKind::String);
        assert!(matches!(field(env, "vars").kind, SchemaKind::Map { .. }));
        let user = field(env, "lastRequestUser");
        assert!(user.optional);
        let external = field(user, "externalId");
        assert_eq!(
            (&external.kind, external.optional),
            (&SchemaKind::Int32, true)
        );
        assert!(field(event, "mesosHeartbeatEvent").fields().is_empty());
    }

    #[test]
    fn an_event_decodes_to_its_set_member_enum_names_and_sorted_map() {
        let s = Arc::new(settings("events.Event").unwrap());
        let pool = s.descriptor.parent_pool().clone();
        let mut env = DynamicMessage::new(
            pool.get_message_by_name("events.Ev_EnvironmentEvent")
                .unwrap(),
        );
        env.set_field_by_name("environmentId", PValue::String("2oDv".into()));
        env.set_field_by_name("runNumber", PValue::U32(550_001));
        env.set_field_by_name("transitionStatus", PValue::EnumNumber(3));
        let mut vars = std::collections::HashMap::new();
        vars.insert(MapKey::String("z".into()), PValue::String("1".into()));
        vars.insert(MapKey::String("a".into()), PValue::String("2".into()));
        env.set_field_by_name("vars", PValue::Map(vars));
        let mut event = DynamicMessage::new(s.descriptor.clone());
        event.set_field_by_name("timestamp", PValue::I64(1_733_400_000_001));
        event.set_field_by_name("environmentEvent", PValue::Message(env));
        let raw = Bytes::from(event.encode_to_vec());

        let decoded = ProtobufDecoder::new(s.clone()).decode(raw).unwrap();
        let Data::Struct(values) = decoded.data else {
            panic!("a struct")
        };
        assert_eq!(values[0], Data::Int64(1_733_400_000_001));
        assert_eq!(
            values[1],
            Data::Int64(0),
            "unset proto3 scalar reads as its default"
        );
        let Data::Struct(env) = &values[2] else {
            panic!("environmentEvent set: {:?}", values[2])
        };
        assert_eq!(env[0], Data::String("2oDv".into()));
        assert_eq!(env[2], Data::Int64(550_001));
        assert_eq!(env[7], Data::String("DONE_OK".into()));
        assert_eq!(
            env[8],
            Data::Map(vec![
                (Data::String("a".into()), Data::String("2".into())),
                (Data::String("z".into()), Data::String("1".into())),
            ])
        );
        assert_eq!(env[9], Data::Null, "an unset message field is null");
        assert!(
            values[3..].iter().all(|v| *v == Data::Null),
            "the other oneof members"
        );
    }

    #[test]
    fn bad_bytes_and_bad_settings_are_named() {
        let s = Arc::new(settings("events.Event").unwrap());
        let err = ProtobufDecoder::new(s)
            .decode(Bytes::from_static(b"\xff\xff\xff\xff"))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("not a protocol buffer events.Event message ("),
            "{err}"
        );
        let err = settings("Event").unwrap_err();
        assert!(err.contains("did you mean events.Event?"), "{err}");
        let mut map = BTreeMap::new();
        map.insert("message.type".to_string(), "events.Event".to_string());
        assert!(
            ProtobufSettings::parse(&map)
                .unwrap_err()
                .contains("needs descriptor.file")
        );
    }
}
