//! `Flatten$Key` / `Flatten$Value`: nested structs and maps become top-level fields named
//! by their path joined with `delimiter` (default `.`). Arrays and, in structs, maps are
//! kept as they are (Kafka ≥ 3.1).

use ferry_connector_api::data::{Data, Field, Schema, SchemaKind};
use ferry_connector_api::{ConfigError, SinkRecord};

use crate::keys::Keys;
use crate::value::{Parts, SchemaCache, Side, is_null, kind_of, require_map, require_struct};
use crate::{Result, Transform, TransformError};

const PURPOSE: &str = "flattening";

#[derive(Debug)]
pub(crate) struct Flatten {
    side: Side,
    delimiter: String,
    schemas: SchemaCache,
}

pub(crate) fn build(keys: &mut Keys<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
    let delimiter = keys
        .optional_keep_empty("delimiter")
        .unwrap_or_else(|| ".".into());
    Ok(Box::new(Flatten {
        side,
        delimiter,
        schemas: SchemaCache::default(),
    }))
}

impl Flatten {
    fn name(&self, prefix: &str, name: &str) -> String {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}{}{name}", self.delimiter)
        }
    }

    fn map(
        &self,
        prefix: &str,
        entries: Vec<(Data, Data)>,
        out: &mut Vec<(Data, Data)>,
    ) -> Result<()> {
        for (k, v) in entries {
            let Data::String(key) = k else {
                return Err(TransformError::new(format!(
                    "a map key is {} rather than a field name",
                    kind_of(&k)
                )));
            };
            let name = self.name(prefix, &key);
            match v {
                Data::Map(inner) => self.map(&name, inner, out)?,
                other => {
                    if out
                        .iter()
                        .any(|(k, _)| matches!(k, Data::String(s) if *s == name))
                    {
                        return Err(duplicate(&name));
                    }
                    out.push((Data::String(name), other));
                }
            }
        }
        Ok(())
    }

    fn fields(
        &self,
        prefix: &str,
        fields: &[Field],
        values: Option<Vec<Data>>,
        optional: bool,
        out: &mut (Vec<Field>, Vec<Data>),
    ) -> Result<()> {
        let mut values = values.map(Vec::into_iter);
        for f in fields {
            let value = values
                .as_mut()
                .and_then(Iterator::next)
                .unwrap_or(Data::Null);
            let name = self.name(prefix, &f.name);
            let optional = optional || f.schema.optional;
            match &f.schema.kind {
                SchemaKind::Struct(inner) => {
                    let inner_values = match value {
                        Data::Struct(v) => Some(v),
                        _ => None,
                    };
                    self.fields(&name, inner, inner_values, optional, out)?;
                }
                _ => {
                    if out.0.iter().any(|o| o.name == name) {
                        return Err(duplicate(&name));
                    }
                    out.0.push(Field {
                        name,
                        schema: Schema {
                            optional,
                            ..f.schema.clone()
                        },
                        doc: f.doc.clone(),
                    });
                    out.1.push(value);
                }
            }
        }
        Ok(())
    }
}

fn duplicate(name: &str) -> TransformError {
    TransformError::new(format!(
        "two fields flatten to the name `{name}`; choose another delimiter"
    ))
}

impl Transform for Flatten {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        if is_null(self.side.get(&record)) {
            return Ok(Some(record));
        }
        let mut parts = Parts::of(self.side.slot(&mut record).take());
        match parts.schema.take() {
            None => {
                let entries = std::mem::take(require_map(&mut parts.data, PURPOSE)?);
                let mut out = Vec::with_capacity(entries.len());
                self.map("", entries, &mut out)?;
                parts.data = Data::Map(out);
            }
            Some(schema) => {
                let fields = require_struct(&schema, PURPOSE)?;
                let values = match std::mem::replace(&mut parts.data, Data::Null) {
                    Data::Struct(v) => Some(v),
                    _ => None,
                };
                let mut out = (Vec::new(), Vec::new());
                self.fields("", fields, values, false, &mut out)?;
                parts.schema = Some(self.schemas.get(&schema, || Schema {
                    kind: SchemaKind::Struct(out.0),
                    ..(*schema).clone()
                }));
                parts.data = Data::Struct(out.1);
            }
        }
        *self.side.slot(&mut record) = Some(parts.into_value());
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferry_connector_api::data::{Data, Schema, SchemaKind};

    use crate::Transform;
    use crate::testing::*;

    /// Kafka: FlattenTest.topLevelStructRequired, topLevelMapRequired
    #[test]
    fn the_top_level_must_be_a_struct_or_map() {
        let t = chain("Flatten$Value", &[]);
        let err = t
            .apply(record(
                "t",
                Some(schemad(Schema::new(SchemaKind::Int32), Data::Int32(42))),
            ))
            .unwrap_err();
        assert_eq!(
            err.reason,
            "only a struct is supported for [flattening], found INT32"
        );
        let err = t.apply(record("t", Some(schemaless("42")))).unwrap_err();
        assert_eq!(
            err.reason,
            "only a map is supported without a schema for [flattening], found an integer"
        );
    }

    /// Kafka: FlattenTest.testNestedStruct
    #[test]
    fn flattens_nested_structs() {
        let k = |kind| Schema::new(kind);
        let leaf = struct_schema(&[
            ("int8", k(SchemaKind::Int8)),
            ("float64", k(SchemaKind::Float64)),
            ("boolean", k(SchemaKind::Boolean)),
            ("string", k(SchemaKind::String)),
            ("bytes", k(SchemaKind::Bytes)),
        ]);
        let s = struct_schema(&[("A", struct_schema(&[("B", leaf)]))]);
        let v = Data::Struct(vec![Data::Struct(vec![Data::Struct(vec![
            Data::Int8(8),
            Data::Float64(64.0),
            Data::Boolean(true),
            Data::String("stringy".into()),
            Data::Bytes(Bytes::from_static(b"bytes")),
        ])])]);
        let out = chain("Flatten$Value", &[])
            .apply(record("t", Some(schemad(s, v))))
            .unwrap()
            .unwrap();
        let names: Vec<&str> = schema(&out.value)
            .fields()
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "A.B.int8",
                "A.B.float64",
                "A.B.boolean",
                "A.B.string",
                "A.B.bytes"
            ]
        );
        assert_eq!(
            raw(&out.value),
            r#"{"A.B.int8":8,"A.B.float64":64.0,"A.B.boolean":true,"A.B.string":"stringy","A.B.bytes":"Ynl0ZXM="}"#
        );
    }

    /// Kafka: FlattenTest.testNestedMapWithDelimiter, testOptionalFieldMap, testKey
    #[test]
    fn flattens_nested_maps() {
        let t = chain("Flatten$Value", &[("delimiter", "#")]);
        let v = r#"{"A":{"B":{"boolean":true,"int32":32,"none":null,"string":"stringy"}}}"#;
        let out = t.apply(record("t", Some(schemaless(v)))).unwrap().unwrap();
        assert_eq!(
            raw(&out.value),
            r##"{"A#B#boolean":true,"A#B#int32":32,"A#B#none":null,"A#B#string":"stringy"}"##
        );
        let t = chain("Flatten$Key", &[]);
        let mut r = record("t", None);
        r.key = Some(schemaless(r#"{"A":{"B":12}}"#));
        assert_eq!(raw(&t.apply(r).unwrap().unwrap().key), r#"{"A.B":12}"#);
    }

    /// Kafka: FlattenTest.testOptionalFieldStruct, testOptionalNestedStruct,
    /// testOptionalAndDefaultValuesNested (optionality; ferry's schemas carry no defaults)
    #[test]
    fn fields_under_an_optional_struct_become_optional() {
        let inner = struct_schema(&[
            ("opt_int32", Schema::new(SchemaKind::Int32).optional()),
            ("req", Schema::new(SchemaKind::String)),
        ])
        .optional();
        let s = struct_schema(&[("B", inner)]);
        let out = chain("Flatten$Value", &[])
            .apply(record(
                "t",
                Some(schemad(s, Data::Struct(vec![Data::Null]))),
            ))
            .unwrap()
            .unwrap();
        let f = schema(&out.value).fields();
        assert_eq!(
            (f[0].name.as_str(), f[0].schema.optional),
            ("B.opt_int32", true)
        );
        assert_eq!((f[1].name.as_str(), f[1].schema.optional), ("B.req", true));
        assert_eq!(
            data(&out.value),
            &Data::Struct(vec![Data::Null, Data::Null])
        );
    }

    /// Kafka: FlattenTest.tombstoneEventWithoutSchemaShouldPassThrough,
    /// tombstoneEventWithSchemaShouldPassThrough
    #[test]
    fn a_tombstone_passes_through() {
        assert!(
            chain("Flatten$Value", &[])
                .apply(record("t", None))
                .unwrap()
                .unwrap()
                .value
                .is_none()
        );
    }

    #[test]
    fn arrays_are_kept_and_collisions_fail() {
        let t = chain("Flatten$Value", &[]);
        let out = t
            .apply(record("t", Some(schemaless(r#"{"foo":["bar","baz"]}"#))))
            .unwrap()
            .unwrap();
        assert_eq!(raw(&out.value), r#"{"foo":["bar","baz"]}"#);
        let err = t
            .apply(record("t", Some(schemaless(r#"{"a":{"b":1},"a.b":2}"#))))
            .unwrap_err();
        assert_eq!(
            err.reason,
            "two fields flatten to the name `a.b`; choose another delimiter"
        );
    }
}
