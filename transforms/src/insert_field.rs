//! `InsertField$Key` / `InsertField$Value`: adds the record's topic, partition, offset,
//! timestamp and a static text as fields.

use ferry_connector_api::data::{Data, Field, Schema, SchemaKind, TimeUnit};
use ferry_connector_api::{ConfigError, SinkRecord};

use crate::keys::Keys;
use crate::value::{
    Parts, SchemaCache, Side, is_null, map_put, require_map, require_struct, struct_fields,
};
use crate::{Result, Transform, TransformError};

const PURPOSE: &str = "field insertion";

/// A field name as written, with Connect's `!` (required) and `?` (optional, the default)
/// suffixes.
#[derive(Debug, Clone)]
struct Name {
    name: String,
    optional: bool,
}

impl Name {
    fn parse(text: String) -> Name {
        if let Some(n) = text.strip_suffix('!') {
            Name {
                name: n.to_string(),
                optional: false,
            }
        } else {
            Name {
                name: text.strip_suffix('?').unwrap_or(&text).to_string(),
                optional: true,
            }
        }
    }

    fn schema(&self, kind: SchemaKind) -> Schema {
        Schema {
            optional: self.optional,
            ..Schema::new(kind)
        }
    }
}

#[derive(Debug)]
pub(crate) struct InsertField {
    side: Side,
    topic: Option<Name>,
    partition: Option<Name>,
    offset: Option<Name>,
    timestamp: Option<Name>,
    /// The static field and its value.
    fixed: Option<(Name, String)>,
    schemas: SchemaCache,
}

pub(crate) fn build(keys: &mut Keys<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
    let mut name = |k: &str| keys.optional(k).map(Name::parse);
    let topic = name("topic.field");
    let partition = name("partition.field");
    let offset = name("offset.field");
    let timestamp = name("timestamp.field");
    let static_field = name("static.field");
    let static_value = keys.optional_keep_empty("static.value");
    let fixed = match (static_field, static_value) {
        (Some(f), v) => Some((f, v.unwrap_or_default())),
        (None, Some(_)) => {
            return Err(keys.invalid(
                "static.value",
                "it needs `static.field` to name the field it is inserted as",
            ));
        }
        (None, None) => None,
    };
    // Connect's default, and the only behaviour ferry's schemas (no defaults) can have.
    keys.bool("replace.null.with.default", true)?;
    Ok(Box::new(InsertField {
        side,
        topic,
        partition,
        offset,
        timestamp,
        fixed,
        schemas: SchemaCache::default(),
    }))
}

impl InsertField {
    /// The inserted fields' names and values; `schema` chooses Connect's schema'd value for
    /// the timestamp (a `Timestamp`) over the schemaless one (epoch milliseconds).
    fn fields(&self, r: &SinkRecord, schema: bool) -> Vec<(&Name, SchemaKind, Data)> {
        let mut out = Vec::with_capacity(5);
        if let Some(n) = &self.topic {
            out.push((n, SchemaKind::String, Data::String(r.topic.to_string())));
        }
        if let Some(n) = &self.partition {
            out.push((n, SchemaKind::Int32, Data::Int32(r.partition)));
        }
        if let Some(n) = &self.offset {
            out.push((n, SchemaKind::Int64, Data::Int64(r.offset)));
        }
        if let Some(n) = &self.timestamp {
            let data = match (r.timestamp, schema) {
                (None, _) => Data::Null,
                (Some((ms, _)), true) => Data::Timestamp(ms.saturating_mul(1000)),
                (Some((ms, _)), false) => Data::Int64(ms),
            };
            out.push((n, SchemaKind::Timestamp(TimeUnit::Millis), data));
        }
        if let Some((n, v)) = &self.fixed {
            out.push((n, SchemaKind::String, Data::String(v.clone())));
        }
        out
    }
}

impl Transform for InsertField {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        // A tombstone (or a null key) passes unchanged, as in Connect.
        if is_null(self.side.get(&record)) {
            return Ok(Some(record));
        }
        let mut parts = Parts::of(self.side.slot(&mut record).take());
        match &parts.schema {
            None => {
                let inserted = self.fields(&record, false);
                let entries = require_map(&mut parts.data, PURPOSE)?;
                for (n, _, data) in inserted {
                    map_put(entries, &n.name, data);
                }
            }
            Some(schema) => {
                let old = require_struct(schema, PURPOSE)?;
                let mut fields: Vec<Field> = old.to_vec();
                let mut values = struct_fields(std::mem::replace(&mut parts.data, Data::Null));
                for (n, kind, data) in self.fields(&record, true) {
                    if fields.iter().any(|f| f.name == n.name) {
                        return Err(TransformError::new(format!(
                            "the {} already has a field `{}`; choose another name for it",
                            self.side.name(),
                            n.name
                        )));
                    }
                    if data == Data::Null && !n.optional {
                        return Err(TransformError::new(format!(
                            "the record has no timestamp for the required field `{}`",
                            n.name
                        )));
                    }
                    fields.push(Field {
                        name: n.name.clone(),
                        schema: n.schema(kind),
                        doc: None,
                    });
                    values.push(data);
                }
                parts.schema = Some(self.schemas.get(schema, || Schema {
                    kind: SchemaKind::Struct(fields),
                    ..(**schema).clone()
                }));
                parts.data = Data::Struct(values);
            }
        }
        *self.side.slot(&mut record) = Some(parts.into_value());
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn xform(side: &str, extra: &[(&str, &str)]) -> crate::Chain {
        let mut keys = vec![
            ("topic.field", "topic_field!"),
            ("partition.field", "partition_field"),
            ("timestamp.field", "timestamp_field?"),
            ("static.field", "instance_id"),
            ("static.value", "my-instance-id"),
        ];
        keys.extend_from_slice(extra);
        chain(&format!("InsertField${side}"), &keys)
    }

    /// Kafka: InsertFieldTest.topLevelStructRequired
    #[test]
    fn a_schemad_value_must_be_a_struct() {
        let t = chain("InsertField$Value", &[("topic.field", "topic_field")]);
        let r = record(
            "",
            Some(schemad(Schema::new(SchemaKind::Int32), Data::Int32(42))),
        );
        let err = t.apply(r).unwrap_err();
        assert_eq!(
            err.to_string(),
            "transform `t` (InsertField$Value): only a struct is supported for [field insertion], found INT32"
        );
    }

    /// Kafka: InsertFieldTest.copySchemaAndInsertConfiguredFields
    #[test]
    fn copies_the_schema_and_inserts_the_configured_fields() {
        let t = xform("Value", &[]);
        let schema = Schema {
            name: Some("name".into()),
            doc: Some("doc".into()),
            ..struct_schema(&[("magic", Schema::new(SchemaKind::Int64).optional())])
        };
        let mut r = record(
            "test",
            Some(schemad(schema, Data::Struct(vec![Data::Int64(42)]))),
        );
        r.timestamp = Some((789, ferry_connector_api::TimestampType::CreateTime));
        let out = t.apply(r).unwrap().unwrap();
        let v = out.value.as_ref().unwrap().structured().unwrap();
        let s = v.schema.as_ref().unwrap();
        assert_eq!(s.name.as_deref(), Some("name"));
        assert_eq!(s.doc.as_deref(), Some("doc"));
        let kinds: Vec<(&str, &SchemaKind, bool)> = s
            .fields()
            .iter()
            .map(|f| (f.name.as_str(), &f.schema.kind, f.schema.optional))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("magic", &SchemaKind::Int64, true),
                ("topic_field", &SchemaKind::String, false),
                ("partition_field", &SchemaKind::Int32, true),
                (
                    "timestamp_field",
                    &SchemaKind::Timestamp(TimeUnit::Millis),
                    true
                ),
                ("instance_id", &SchemaKind::String, true),
            ]
        );
        assert_eq!(
            v.data,
            Data::Struct(vec![
                Data::Int64(42),
                Data::String("test".into()),
                Data::Int32(0),
                Data::Timestamp(789_000),
                Data::String("my-instance-id".into()),
            ])
        );
        assert_eq!(
            raw(&out.value),
            r#"{"magic":42,"topic_field":"test","partition_field":0,"timestamp_field":789,"instance_id":"my-instance-id"}"#
        );
        // Kafka's "exercise caching": a second record with the same schema gets the same
        // output schema, so sinks can keep recognising it by pointer.
        let input = std::sync::Arc::new(struct_schema(&[(
            "magic",
            Schema::new(SchemaKind::Int64).optional(),
        )]));
        let again = |data: Data| {
            let value = ferry_connector_api::Value::Structured(std::sync::Arc::new(
                ferry_connector_api::data::Structured {
                    schema: Some(input.clone()),
                    data,
                    raw: bytes::Bytes::from_static(b"x"),
                },
            ));
            let out = t.apply(record("test", Some(value))).unwrap().unwrap();
            out.value
                .unwrap()
                .structured()
                .unwrap()
                .schema
                .clone()
                .unwrap()
        };
        let values = |m| Data::Struct(vec![Data::Int64(m)]);
        assert!(std::sync::Arc::ptr_eq(&again(values(1)), &again(values(2))));
    }

    /// Kafka: InsertFieldTest.schemalessInsertConfiguredFields
    #[test]
    fn inserts_into_a_schemaless_map() {
        let t = xform("Value", &[]);
        let mut r = record("test", Some(schemaless(r#"{"magic":42}"#)));
        r.timestamp = Some((123, ferry_connector_api::TimestampType::CreateTime));
        let out = t.apply(r).unwrap().unwrap();
        assert_eq!(
            raw(&out.value),
            r#"{"magic":42,"topic_field":"test","partition_field":0,"timestamp_field":123,"instance_id":"my-instance-id"}"#
        );
    }

    /// Kafka: InsertFieldTest.insertConfiguredFieldsIntoTombstoneEventWithoutSchemaLeavesValueUnchanged
    /// and …WithSchemaLeavesValueUnchanged, insertIntoNullKeyLeavesRecordUnchanged
    #[test]
    fn a_tombstone_or_null_key_is_left_unchanged() {
        let out = xform("Value", &[])
            .apply(record("test", None))
            .unwrap()
            .unwrap();
        assert!(out.value.is_none());
        let mut r = record("test", Some(schemaless(r#"{"magic":42}"#)));
        let before = raw(&r.value);
        r.key = None;
        let out = xform("Key", &[]).apply(r).unwrap().unwrap();
        assert!(out.key.is_none());
        assert_eq!(raw(&out.value), before);
    }

    /// Kafka: InsertFieldTest.insertKeyFieldsIntoTombstoneEvent
    #[test]
    fn inserts_into_the_key_of_a_tombstone() {
        let mut r = record("test", None);
        r.key = Some(schemaless(r#"{"magic":42}"#));
        let out = xform("Key", &[]).apply(r).unwrap().unwrap();
        assert_eq!(
            raw(&out.key),
            r#"{"magic":42,"topic_field":"test","partition_field":0,"timestamp_field":null,"instance_id":"my-instance-id"}"#
        );
        assert!(out.value.is_none());
    }

    #[test]
    fn offset_field_and_required_timestamp_without_one() {
        let t = chain(
            "InsertField$Value",
            &[("offset.field", "off"), ("timestamp.field", "ts!")],
        );
        let r = record("t", Some(schemad(struct_schema(&[]), Data::Struct(vec![]))));
        let err = t.apply(r).unwrap_err();
        assert!(
            err.reason
                .contains("no timestamp for the required field `ts`"),
            "{err}"
        );
        let t = chain("InsertField$Value", &[("offset.field", "off")]);
        let mut r = record("t", Some(schemaless("{}")));
        r.offset = 77;
        assert_eq!(raw(&t.apply(r).unwrap().unwrap().value), r#"{"off":77}"#);
    }

    #[test]
    fn static_value_without_static_field_is_a_config_error() {
        let err = chain_err("InsertField$Value", &[("static.value", "x")]);
        assert_eq!(
            err,
            "invalid value for `transforms.t.static.value`: it needs `static.field` to name the field it is inserted as"
        );
    }
}
