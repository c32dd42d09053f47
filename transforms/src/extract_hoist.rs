//! `ExtractField` (replace the key or value by one of its fields) and `HoistField` (wrap
//! it in a one-field struct or map).

use ferry_connector_api::data::{Data, Field, Schema, SchemaKind};
use ferry_connector_api::{ConfigError, SinkRecord};

use crate::keys::Keys;
use crate::value::{Parts, SchemaCache, Side, is_null, map_get, require_map, require_struct};
use crate::{Result, Transform, TransformError};

#[derive(Debug)]
pub(crate) struct ExtractField {
    side: Side,
    /// The path: one name (`field.syntax.version=V1`, the default) or names split at dots
    /// (V2).
    path: Vec<String>,
    text: String,
    schemas: SchemaCache,
}

pub(crate) fn extract_field(
    keys: &mut Keys<'_>,
    side: Side,
) -> Result<Box<dyn Transform>, ConfigError> {
    let text = keys.required("field", "the name of the field to extract")?;
    let path = match keys
        .optional("field.syntax.version")
        .as_deref()
        .map(str::trim)
    {
        None | Some("V1" | "v1") => vec![text.clone()],
        Some("V2" | "v2") => text.split('.').map(str::to_string).collect(),
        Some(other) => {
            return Err(keys.invalid(
                "field.syntax.version",
                format!(
                    "`{}` is not V1 or V2",
                    ferry_connector_api::text::shown(other)
                ),
            ));
        }
    };
    Ok(Box::new(ExtractField {
        side,
        path,
        text,
        schemas: SchemaCache::default(),
    }))
}

impl Transform for ExtractField {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        if is_null(self.side.get(&record)) {
            return Ok(Some(record));
        }
        let parts = Parts::of(self.side.slot(&mut record).take());
        let extracted = match parts.schema {
            None => {
                let mut data = parts.data;
                for name in &self.path {
                    let entries = require_map(&mut data, "field extraction")?;
                    data = map_get(entries, name).cloned().unwrap_or(Data::Null);
                    if data == Data::Null {
                        break;
                    }
                }
                (data != Data::Null).then(|| Parts { schema: None, data })
            }
            Some(input) => {
                let mut schema: &Schema = &input;
                let mut data = parts.data;
                for name in &self.path {
                    let fields = require_struct(schema, "field extraction")?;
                    let Some(i) = fields.iter().position(|f| &f.name == name) else {
                        return Err(TransformError::new(format!("unknown field: {}", self.text)));
                    };
                    let field_schema = &fields[i].schema;
                    data = match data {
                        Data::Struct(mut values) if i < values.len() => values.swap_remove(i),
                        _ => Data::Null,
                    };
                    schema = field_schema;
                }
                let schema = schema.clone();
                Some(Parts {
                    schema: Some(self.schemas.get(&input, || schema)),
                    data,
                })
            }
        };
        *self.side.slot(&mut record) = extracted.map(Parts::into_value);
        Ok(Some(record))
    }
}

#[derive(Debug)]
pub(crate) struct HoistField {
    side: Side,
    field: String,
    schemas: SchemaCache,
}

pub(crate) fn hoist_field(
    keys: &mut Keys<'_>,
    side: Side,
) -> Result<Box<dyn Transform>, ConfigError> {
    let field = keys.required("field", "the name of the field to wrap the data in")?;
    Ok(Box::new(HoistField {
        side,
        field,
        schemas: SchemaCache::default(),
    }))
}

impl Transform for HoistField {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        let parts = Parts::of(self.side.slot(&mut record).take());
        let hoisted = match parts.schema {
            None => Parts {
                schema: None,
                data: Data::Map(vec![(Data::String(self.field.clone()), parts.data)]),
            },
            Some(schema) => Parts {
                schema: Some(self.schemas.get(&schema, || {
                    Schema::new(SchemaKind::Struct(vec![Field {
                        name: self.field.clone(),
                        schema: (*schema).clone(),
                        doc: None,
                    }]))
                })),
                data: Data::Struct(vec![parts.data]),
            },
        };
        *self.side.slot(&mut record) = Some(hoisted.into_value());
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use ferry_connector_api::data::{Data, Schema, SchemaKind};

    use crate::Transform;
    use crate::testing::*;

    fn keyed(key: Option<ferry_connector_api::Value>) -> ferry_connector_api::SinkRecord {
        let mut r = record("test", None);
        r.key = key;
        r
    }

    /// Kafka: ExtractFieldTest.schemaless, schemalessAndNestedPath
    #[test]
    fn extracts_from_a_schemaless_map() {
        let t = chain("ExtractField$Key", &[("field", "magic")]);
        let out = t
            .apply(keyed(Some(schemaless(r#"{"magic":42}"#))))
            .unwrap()
            .unwrap();
        assert_eq!(data(&out.key), &Data::Int64(42));
        assert_eq!(raw(&out.key), "42");
        assert!(
            out.key
                .as_ref()
                .unwrap()
                .structured()
                .unwrap()
                .schema
                .is_none()
        );
        let t = chain(
            "ExtractField$Key",
            &[("field", "magic.foo"), ("field.syntax.version", "V2")],
        );
        let out = t
            .apply(keyed(Some(schemaless(r#"{"magic":{"foo":42}}"#))))
            .unwrap()
            .unwrap();
        assert_eq!(raw(&out.key), "42");
    }

    /// Kafka: ExtractFieldTest.nullSchemaless, nonExistentFieldSchemalessShouldReturnNull,
    /// nonExistentNestedFieldSchemalessShouldReturnNull
    #[test]
    fn a_null_or_missing_schemaless_field_is_null() {
        let t = chain("ExtractField$Key", &[("field", "magic")]);
        assert!(t.apply(keyed(None)).unwrap().unwrap().key.is_none());
        let t = chain("ExtractField$Key", &[("field", "nonexistent")]);
        assert!(
            t.apply(keyed(Some(schemaless(r#"{"magic":42}"#))))
                .unwrap()
                .unwrap()
                .key
                .is_none()
        );
        let t = chain("ExtractField$Key", &[("field", "magic.nonexistent")]);
        let out = t
            .apply(keyed(Some(schemaless(r#"{"magic":{"foo":42}}"#))))
            .unwrap()
            .unwrap();
        assert!(out.key.is_none());
    }

    /// Kafka: ExtractFieldTest.withSchema, withSchemaAndNestedPath
    #[test]
    fn extracts_from_a_struct() {
        let s = struct_schema(&[("magic", Schema::new(SchemaKind::Int32))]);
        let t = chain("ExtractField$Key", &[("field", "magic")]);
        let out = t
            .apply(keyed(Some(schemad(
                s.clone(),
                Data::Struct(vec![Data::Int32(42)]),
            ))))
            .unwrap()
            .unwrap();
        assert_eq!(schema(&out.key), &Schema::new(SchemaKind::Int32));
        assert_eq!(data(&out.key), &Data::Int32(42));
        let nested = struct_schema(&[("magic", s)]);
        let t = chain(
            "ExtractField$Key",
            &[("field", "magic.magic"), ("field.syntax.version", "V2")],
        );
        let value = Data::Struct(vec![Data::Struct(vec![Data::Int32(42)])]);
        let out = t
            .apply(keyed(Some(schemad(nested, value))))
            .unwrap()
            .unwrap();
        assert_eq!(data(&out.key), &Data::Int32(42));
    }

    /// Kafka: ExtractFieldTest.nonExistentFieldWithSchemaShouldFail,
    /// nonExistentNestedFieldWithSchemaShouldFail
    #[test]
    fn a_missing_field_of_a_struct_fails() {
        let s = struct_schema(&[("magic", Schema::new(SchemaKind::Int32))]);
        for field in ["nonexistent", "magic.nonexistent"] {
            let t = chain("ExtractField$Key", &[("field", field)]);
            let err = t
                .apply(keyed(Some(schemad(
                    s.clone(),
                    Data::Struct(vec![Data::Int32(42)]),
                ))))
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("transform `t` (ExtractField$Key): unknown field: {field}")
            );
        }
    }

    /// Kafka: HoistFieldTest.schemaless, withSchema
    #[test]
    fn hoists_into_a_map_or_a_struct() {
        let t = chain("HoistField$Key", &[("field", "magic")]);
        let out = t.apply(keyed(Some(schemaless("42")))).unwrap().unwrap();
        assert_eq!(raw(&out.key), r#"{"magic":42}"#);
        let out = t
            .apply(keyed(Some(schemad(
                Schema::new(SchemaKind::Int32),
                Data::Int32(42),
            ))))
            .unwrap()
            .unwrap();
        assert_eq!(
            schema(&out.key),
            &struct_schema(&[("magic", Schema::new(SchemaKind::Int32))])
        );
        assert_eq!(data(&out.key), &Data::Struct(vec![Data::Int32(42)]));
        // A StringConverter value gets Connect's optional string schema.
        let t = chain("HoistField$Value", &[("field", "line")]);
        let out = t
            .apply(record(
                "t",
                Some(ferry_connector_api::Value::String("hello".into())),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(raw(&out.value), r#"{"line":"hello"}"#);
        let second = t
            .apply(record(
                "t",
                Some(ferry_connector_api::Value::String("again".into())),
            ))
            .unwrap()
            .unwrap();
        let ptr = |v: &Option<ferry_connector_api::Value>| {
            v.as_ref()
                .unwrap()
                .structured()
                .unwrap()
                .schema
                .clone()
                .unwrap()
        };
        assert!(std::sync::Arc::ptr_eq(
            &ptr(&out.value),
            &ptr(&second.value)
        ));
        assert_eq!(
            chain_err("HoistField$Value", &[]),
            "missing required key `transforms.t.field`: HoistField$Value needs the name of the field to wrap the data in; set `transforms.t.field`"
        );
    }
}
