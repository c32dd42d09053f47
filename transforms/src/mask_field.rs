//! `MaskField$Key` / `MaskField$Value`: replaces fields by their type's empty value (`0`,
//! `""`, `false`, the epoch, an empty array or map) or by `replacement`.

use std::sync::Arc;

use bytes::Bytes;
use ferry_connector_api::data::{Data, Schema, SchemaKind};
use ferry_connector_api::{ConfigError, SinkRecord};

use crate::keys::Keys;
use crate::value::{Parts, Side, is_null, kind_of, require_map, require_struct};
use crate::{Result, Transform, TransformError};

const PURPOSE: &str = "masking fields";

#[derive(Debug)]
pub(crate) struct MaskField {
    side: Side,
    fields: Vec<String>,
    replacement: Option<String>,
}

pub(crate) fn build(keys: &mut Keys<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
    let fields = keys.required_list("fields", "the names of the fields to mask")?;
    let replacement = match keys.optional_keep_empty("replacement") {
        Some(r) if r.is_empty() => {
            return Err(keys.invalid(
                "replacement",
                "it must not be empty; remove it to mask with empty values",
            ));
        }
        r => r,
    };
    Ok(Box::new(MaskField {
        side,
        fields,
        replacement,
    }))
}

impl MaskField {
    fn mask(&self, data: &Data, schema: Option<&Schema>) -> Result<Data> {
        match &self.replacement {
            None => empty(data),
            Some(r) => replaced(data, schema, r),
        }
    }
}

/// The empty value Connect masks with.
fn empty(data: &Data) -> Result<Data> {
    Ok(match data {
        Data::Null => Data::Null,
        Data::Boolean(_) => Data::Boolean(false),
        Data::Int8(_) => Data::Int8(0),
        Data::Int16(_) => Data::Int16(0),
        Data::Int32(_) => Data::Int32(0),
        Data::Int64(_) => Data::Int64(0),
        Data::Float32(_) => Data::Float32(0.0),
        Data::Float64(_) => Data::Float64(0.0),
        Data::String(_) => Data::String(String::new()),
        Data::Timestamp(_) => Data::Timestamp(0),
        Data::Date(_) => Data::Date(0),
        Data::Time(_) => Data::Time(0),
        Data::Decimal(_) => Data::Decimal(Bytes::from_static(&[0])),
        Data::Array(_) => Data::Array(Vec::new()),
        Data::Map(_) => Data::Map(Vec::new()),
        other @ (Data::Bytes(_) | Data::Struct(_)) => {
            return Err(TransformError::new(format!(
                "cannot mask a value of type {}",
                kind_of(other)
            )));
        }
    })
}

fn replaced(data: &Data, schema: Option<&Schema>, r: &str) -> Result<Data> {
    let bad = || {
        TransformError::new(format!(
            "invalid value {} for configuration replacement: it is not {}",
            ferry_connector_api::text::shown(r),
            kind_of(data)
        ))
    };
    let t = r.trim();
    Ok(match data {
        Data::Null => Data::Null,
        Data::Int8(_) => Data::Int8(t.parse().map_err(|_| bad())?),
        Data::Int16(_) => Data::Int16(t.parse().map_err(|_| bad())?),
        Data::Int32(_) => Data::Int32(t.parse().map_err(|_| bad())?),
        Data::Int64(_) => Data::Int64(t.parse().map_err(|_| bad())?),
        Data::Float32(_) => Data::Float32(t.parse().map_err(|_| bad())?),
        Data::Float64(_) => Data::Float64(t.parse().map_err(|_| bad())?),
        Data::String(_) => Data::String(r.to_string()),
        Data::Decimal(_) => {
            let scale = match schema.map(|s| &s.kind) {
                Some(SchemaKind::Decimal { scale, .. }) => *scale,
                _ => 0,
            };
            Data::Decimal(decimal_bytes(t, scale).ok_or_else(bad)?)
        }
        other => {
            return Err(TransformError::new(format!(
                "cannot mask a value of type {} with a custom replacement",
                kind_of(other)
            )));
        }
    })
}

/// A decimal text as the unscaled two's-complement big-endian integer at `scale`.
fn decimal_bytes(text: &str, scale: u32) -> Option<Bytes> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale as usize || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac:0<width$}", width = scale as usize);
    let n: i128 = digits.parse().ok()?;
    let bytes = n.to_be_bytes();
    // The shortest two's-complement form: drop leading bytes that only repeat the sign.
    let mut start = 0;
    while start < 15
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    Some(Bytes::copy_from_slice(&bytes[start..]))
}

impl Transform for MaskField {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        if is_null(self.side.get(&record)) {
            return Ok(Some(record));
        }
        let mut parts = Parts::of(self.side.slot(&mut record).take());
        match &parts.schema {
            None => {
                for (k, v) in require_map(&mut parts.data, PURPOSE)? {
                    if matches!(k, Data::String(name) if self.fields.contains(name)) {
                        *v = self.mask(v, None)?;
                    }
                }
            }
            Some(schema) => {
                let fields = require_struct(schema, PURPOSE)?;
                if let Data::Struct(values) = &mut parts.data {
                    for (f, v) in fields.iter().zip(values.iter_mut()) {
                        if self.fields.contains(&f.name) {
                            *v = self.mask(v, Some(&f.schema))?;
                        }
                    }
                }
                parts.schema = Some(Arc::clone(schema));
            }
        }
        *self.side.slot(&mut record) = Some(parts.into_value());
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use ferry_connector_api::data::{Data, Schema, SchemaKind, TimeUnit};

    use crate::Transform;
    use crate::testing::*;

    const VALUES: &str = r#"{"bool":true,"double":42.5,"int":42,"list":[42],"magic":42,"map":{"key":"value"},"string":"55.121.20.20"}"#;

    fn with_schema() -> (Schema, Data) {
        let k = |kind| Schema::new(kind);
        let s = struct_schema(&[
            ("magic", k(SchemaKind::Int32)),
            ("bool", k(SchemaKind::Boolean)),
            ("byte", k(SchemaKind::Int8)),
            ("short", k(SchemaKind::Int16)),
            ("long", k(SchemaKind::Int64)),
            ("float", k(SchemaKind::Float32)),
            ("string", k(SchemaKind::String)),
            ("date", k(SchemaKind::Date)),
            ("time", k(SchemaKind::Time(TimeUnit::Millis))),
            ("timestamp", k(SchemaKind::Timestamp(TimeUnit::Millis))),
            (
                "decimal",
                k(SchemaKind::Decimal {
                    precision: 10,
                    scale: 0,
                }),
            ),
            (
                "array",
                k(SchemaKind::Array(Box::new(k(SchemaKind::Int32)))),
            ),
            (
                "map",
                k(SchemaKind::Map {
                    key: Box::new(k(SchemaKind::String)),
                    value: Box::new(k(SchemaKind::String)),
                }),
            ),
        ]);
        let d = Data::Struct(vec![
            Data::Int32(42),
            Data::Boolean(true),
            Data::Int8(42),
            Data::Int16(42),
            Data::Int64(42),
            Data::Float32(42.0),
            Data::String("hmm".into()),
            Data::Date(17000),
            Data::Time(1_000_000),
            Data::Timestamp(1_500_000_000_000_000),
            Data::Decimal(bytes::Bytes::from_static(&[42])),
            Data::Array(vec![Data::Int32(1), Data::Int32(2)]),
            Data::Map(vec![(
                Data::String("what".into()),
                Data::String("what".into()),
            )]),
        ]);
        (s, d)
    }

    const ALL_BUT_MAGIC: &str =
        "bool,byte,short,long,float,string,date,time,timestamp,decimal,array,map";

    /// Kafka: MaskFieldTest.testSchemaless
    #[test]
    fn masks_schemaless_fields_with_empty_values() {
        let t = chain(
            "MaskField$Value",
            &[("fields", "bool,double,int,list,map,string")],
        );
        let out = t
            .apply(record("", Some(schemaless(VALUES))))
            .unwrap()
            .unwrap();
        assert_eq!(
            raw(&out.value),
            r#"{"bool":false,"double":0.0,"int":0,"list":[],"magic":42,"map":{},"string":""}"#
        );
    }

    /// Kafka: MaskFieldTest.testWithSchema
    #[test]
    fn masks_struct_fields_with_empty_values() {
        let t = chain("MaskField$Value", &[("fields", ALL_BUT_MAGIC)]);
        let (s, d) = with_schema();
        let out = t
            .apply(record("", Some(schemad(s.clone(), d))))
            .unwrap()
            .unwrap();
        assert_eq!(schema(&out.value), &s);
        assert_eq!(
            data(&out.value),
            &Data::Struct(vec![
                Data::Int32(42),
                Data::Boolean(false),
                Data::Int8(0),
                Data::Int16(0),
                Data::Int64(0),
                Data::Float32(0.0),
                Data::String(String::new()),
                Data::Date(0),
                Data::Time(0),
                Data::Timestamp(0),
                Data::Decimal(bytes::Bytes::from_static(&[0])),
                Data::Array(vec![]),
                Data::Map(vec![]),
            ])
        );
    }

    /// Kafka: MaskFieldTest.testSchemalessWithReplacement, testWithSchemaAndReplacement
    #[test]
    fn masks_with_a_replacement() {
        let t = chain(
            "MaskField$Value",
            &[("fields", "int,double,string"), ("replacement", "123")],
        );
        let out = t
            .apply(record("", Some(schemaless(VALUES))))
            .unwrap()
            .unwrap();
        assert!(
            raw(&out.value).contains(r#""double":123.0,"int":123,"#),
            "{}",
            raw(&out.value)
        );
        assert!(raw(&out.value).contains(r#""string":"123""#));
        let t = chain(
            "MaskField$Value",
            &[
                ("fields", "byte,short,long,float,string,decimal"),
                ("replacement", "123"),
            ],
        );
        let (s, d) = with_schema();
        let out = t.apply(record("", Some(schemad(s, d)))).unwrap().unwrap();
        let Data::Struct(v) = data(&out.value) else {
            panic!()
        };
        assert_eq!(
            v[2..7],
            [
                Data::Int8(123),
                Data::Int16(123),
                Data::Int64(123),
                Data::Float32(123.0),
                Data::String("123".into())
            ]
        );
        assert_eq!(v[10], Data::Decimal(bytes::Bytes::from_static(&[123])));
    }

    /// Kafka: MaskFieldTest.testSchemalessUnsupportedReplacementType,
    /// testWithSchemaUnsupportedReplacementType, testReplacementTypeMismatch,
    /// testEmptyStringReplacementValue
    #[test]
    fn unsupported_and_mismatched_replacements_fail() {
        let t = chain(
            "MaskField$Value",
            &[("fields", "bool"), ("replacement", "false")],
        );
        let err = t.apply(record("", Some(schemaless(VALUES)))).unwrap_err();
        assert_eq!(
            err.reason,
            "cannot mask a value of type a boolean with a custom replacement"
        );
        let t = chain(
            "MaskField$Value",
            &[("fields", "timestamp"), ("replacement", "1")],
        );
        let (s, d) = with_schema();
        assert!(t.apply(record("", Some(schemad(s, d)))).is_err());
        let t = chain(
            "MaskField$Value",
            &[("fields", "string,int"), ("replacement", "foo")],
        );
        let err = t.apply(record("", Some(schemaless(VALUES)))).unwrap_err();
        assert_eq!(
            err.reason,
            "invalid value foo for configuration replacement: it is not an integer"
        );
        assert_eq!(
            chain_err("MaskField$Value", &[("fields", "int"), ("replacement", "")]),
            "invalid value for `transforms.t.replacement`: it must not be empty; remove it to mask with empty values"
        );
    }
}
