//! The message data and attributes Google's connector makes of a structured value (a JSON
//! or Avro converter's schema and data), after `CloudPubSubSinkTask.handleValue` in
//! googleapis/java-pubsub-group-kafka-connector,
//! `src/main/java/com/google/pubsub/kafka/sink/CloudPubSubSinkTask.java` (read at commit
//! 7841fc04b9ce95901970c7ae6e2af111665f41b6):
//!
//! * no schema (schemaless JSON): the data is the value's Java text (`toString()`), maps
//!   included — `{"a":"x","n":1}` becomes `{a=x, n=1}`; `messageBodyName` plays no part.
//! * a primitive schema: int8/16/32/64 and float32/64 as big-endian bytes (1, 2, 4, 8, 4,
//!   8), boolean as one byte 0 or 1, a string as UTF-8, bytes unchanged.
//! * a struct: the field named `messageBodyName` is the data, encoded as a primitive (or
//!   array) above; every other set field is an attribute with its Java text; no such field
//!   → empty data. A field that is a struct or a map is refused, as is a required field
//!   that is null; optional null fields are left out.
//! * a map: the entry keyed `messageBodyName` is the data as its Java text (UTF-8), every
//!   other entry an attribute, key and value as Java text. A null entry is refused.
//! * an array (of primitives or arrays): its elements' encodings, concatenated; arrays of
//!   structs or maps are refused.
//!
//! Where Google's connector throws (a refused value, a null where it calls `toString()`)
//! its task dies; ferry makes the record a record error, which `errors.tolerance` decides.
//! Two deliberate differences: Google's code casts an array to `Object[]`, which Connect's
//! lists are not, so every array fails there — ferry concatenates, as Google's README
//! says; and logical types (timestamp, date, time, decimal) as data, which fail in Google's
//! code, are record errors with a reason.

use bytes::Bytes;
use ferry_connector_api::RecordError;
use ferry_connector_api::data::{Data, Schema, SchemaKind, Structured};

use crate::java;

/// What a structured value becomes: data (`None` for a null value) and attributes.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Payload {
    pub(crate) data: Option<Bytes>,
    pub(crate) attributes: Vec<(String, String)>,
}

/// Maps a structured value by Google's rules; `body` is `messageBodyName`.
pub(crate) fn payload(value: &Structured, body: &str) -> Result<Payload, RecordError> {
    if matches!(value.data, Data::Null) {
        return Ok(Payload::default());
    }
    let Some(schema) = value.schema.as_deref() else {
        return Ok(Payload {
            data: Some(java::text(None, &value.data).into()),
            attributes: Vec::new(),
        });
    };
    match (&schema.kind, &value.data) {
        (SchemaKind::Struct(fields), Data::Struct(values)) => {
            let mut payload = Payload {
                data: Some(Bytes::new()),
                attributes: Vec::new(),
            };
            for (field, v) in fields.iter().zip(values) {
                // Checked before the value: a null nested struct is refused too.
                if let SchemaKind::Struct(_) | SchemaKind::Map { .. } = field.schema.kind {
                    return Err(RecordError::new(format!(
                        "its value's field `{}` is a {}; Google's connector maps structs of primitives and arrays only",
                        field.name,
                        kind_name(&field.schema.kind)
                    )));
                }
                if matches!(v, Data::Null) {
                    if field.schema.optional {
                        continue;
                    }
                    return Err(RecordError::new(format!(
                        "its value's required field `{}` is null",
                        field.name
                    )));
                }
                if field.name == body {
                    payload.data = Some(encode(&field.schema, v, &field.name)?.into());
                } else {
                    payload
                        .attributes
                        .push((field.name.clone(), java::text(Some(&field.schema), v)));
                }
            }
            Ok(payload)
        }
        (SchemaKind::Map { key, value: item }, Data::Map(entries)) => {
            let mut payload = Payload {
                data: Some(Bytes::new()),
                attributes: Vec::new(),
            };
            for (k, v) in entries {
                let name = java::text(Some(key), k);
                if matches!(k, Data::Null) || matches!(v, Data::Null) {
                    return Err(RecordError::new(format!(
                        "its value is a map with a null {} (entry `{name}`); Google's connector cannot map it",
                        if matches!(k, Data::Null) {
                            "key"
                        } else {
                            "value"
                        }
                    )));
                }
                let text = java::text(Some(item), v);
                if matches!(k, Data::String(s) if s == body) {
                    payload.data = Some(text.into());
                } else {
                    payload.attributes.push((name, text));
                }
            }
            Ok(payload)
        }
        _ => Ok(Payload {
            data: Some(encode(schema, &value.data, "value")?.into()),
            attributes: Vec::new(),
        }),
    }
}

/// Google's encoding of a primitive or an array as message data; `what` names the value in
/// errors.
fn encode(schema: &Schema, data: &Data, what: &str) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::new();
    encode_into(&mut out, schema, data, what)?;
    Ok(out)
}

fn encode_into(
    out: &mut Vec<u8>,
    schema: &Schema,
    data: &Data,
    what: &str,
) -> Result<(), RecordError> {
    match (&schema.kind, data) {
        (SchemaKind::Int8, Data::Int8(v)) => out.extend(v.to_be_bytes()),
        (SchemaKind::Int16, Data::Int16(v)) => out.extend(v.to_be_bytes()),
        (SchemaKind::Int32, Data::Int32(v)) => out.extend(v.to_be_bytes()),
        (SchemaKind::Int64, Data::Int64(v)) => out.extend(v.to_be_bytes()),
        (SchemaKind::Float32, Data::Float32(v)) => out.extend(v.to_be_bytes()),
        (SchemaKind::Float64, Data::Float64(v)) => out.extend(v.to_be_bytes()),
        (SchemaKind::Boolean, Data::Boolean(b)) => out.push(u8::from(*b)),
        (SchemaKind::String, Data::String(s)) => out.extend_from_slice(s.as_bytes()),
        (SchemaKind::Bytes, Data::Bytes(b)) => out.extend_from_slice(b),
        (SchemaKind::Array(item), Data::Array(items)) => {
            if let SchemaKind::Struct(_) | SchemaKind::Map { .. } = item.kind {
                return Err(RecordError::new(format!(
                    "`{what}` is an array of {}s; Google's connector makes message data of arrays of primitives only",
                    kind_name(&item.kind)
                )));
            }
            for (i, v) in items.iter().enumerate() {
                if matches!(v, Data::Null) {
                    return Err(RecordError::new(format!(
                        "`{what}` is an array with a null at index {i}; Google's connector cannot encode it as message data"
                    )));
                }
                encode_into(out, item, v, what)?;
            }
        }
        (kind, Data::Null) => {
            return Err(RecordError::new(format!(
                "`{what}` holds a null {}; Google's connector cannot encode it as message data",
                kind_name(kind)
            )));
        }
        (kind, _) => {
            return Err(RecordError::new(format!(
                "`{what}` is a {}, which Google's connector cannot encode as message data (only primitives, strings, bytes and arrays of them)",
                kind_name(kind)
            )));
        }
    }
    Ok(())
}

/// Connect's name for a kind, for error messages.
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
    use std::sync::Arc;

    use ferry_connector_api::data::{Field, TimeUnit};

    use super::*;

    fn field(name: &str, schema: Schema) -> Field {
        Field {
            name: name.into(),
            schema,
            doc: None,
        }
    }

    fn of(kind: SchemaKind) -> Schema {
        Schema::new(kind)
    }

    fn structured(schema: Option<Schema>, data: Data) -> Structured {
        Structured {
            schema: schema.map(Arc::new),
            data,
            raw: Bytes::from_static(b"raw bytes"),
        }
    }

    fn s(t: &str) -> Data {
        Data::String(t.into())
    }

    fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn alert_schema(body: Schema) -> Schema {
        of(SchemaKind::Struct(vec![
            field("cps_message_body", body),
            field("source", of(SchemaKind::String)),
            field("candid", of(SchemaKind::Int64)),
            field("magpsf", of(SchemaKind::Float32).optional()),
            field("note", of(SchemaKind::String).optional()),
            field(
                "fids",
                of(SchemaKind::Array(Box::new(of(SchemaKind::Int32)))),
            ),
        ]))
    }

    #[test]
    fn a_struct_field_named_message_body_is_the_data_and_the_others_attributes() {
        let v = structured(
            Some(alert_schema(of(SchemaKind::String))),
            Data::Struct(vec![
                s("hello"),
                s("ztf"),
                Data::Int64(1_703_222_170_415_010_089),
                Data::Float32(18.5),
                Data::Null,
                Data::Array(vec![Data::Int32(1), Data::Int32(2)]),
            ]),
        );
        let p = payload(&v, "cps_message_body").unwrap();
        assert_eq!(p.data.as_deref(), Some(&b"hello"[..]));
        assert_eq!(
            p.attributes,
            attrs(&[
                ("source", "ztf"),
                ("candid", "1703222170415010089"),
                ("magpsf", "18.5"),
                ("fids", "[1, 2]"),
            ])
        );
        // The body keeps its type's encoding: an int64 body is eight big-endian bytes.
        let v = structured(
            Some(alert_schema(of(SchemaKind::Int64))),
            Data::Struct(vec![
                Data::Int64(258),
                s("ztf"),
                Data::Int64(1),
                Data::Null,
                Data::Null,
                Data::Array(vec![]),
            ]),
        );
        let p = payload(&v, "cps_message_body").unwrap();
        assert_eq!(p.data.as_deref(), Some(&[0, 0, 0, 0, 0, 0, 1, 2][..]));
        assert_eq!(
            p.attributes,
            attrs(&[("source", "ztf"), ("candid", "1"), ("fids", "[]")])
        );
    }

    #[test]
    fn without_the_body_field_every_field_is_an_attribute_and_the_data_is_empty() {
        let v = structured(
            Some(alert_schema(of(SchemaKind::String))),
            Data::Struct(vec![
                s("hello"),
                s("ztf"),
                Data::Int64(7),
                Data::Null,
                s("n"),
                Data::Array(vec![]),
            ]),
        );
        let p = payload(&v, "payload").unwrap();
        assert_eq!(p.data.as_deref(), Some(&b""[..]));
        assert_eq!(
            p.attributes,
            attrs(&[
                ("cps_message_body", "hello"),
                ("source", "ztf"),
                ("candid", "7"),
                ("note", "n"),
                ("fids", "[]"),
            ])
        );
    }

    #[test]
    fn structs_refuse_nested_structs_and_maps_and_required_nulls() {
        let nested = of(SchemaKind::Struct(vec![
            field("cps_message_body", of(SchemaKind::String)),
            field(
                "candidate",
                of(SchemaKind::Struct(vec![field(
                    "ra",
                    of(SchemaKind::Float64),
                )]))
                .optional(),
            ),
        ]));
        // Refused even when the nested field is null: Google checks the schema first.
        let v = structured(Some(nested), Data::Struct(vec![s("x"), Data::Null]));
        let err = payload(&v, "cps_message_body").unwrap_err();
        assert!(
            err.reason.contains("field `candidate` is a struct"),
            "{err}"
        );

        let v = structured(
            Some(alert_schema(of(SchemaKind::String))),
            Data::Struct(vec![
                s("x"),
                Data::Null,
                Data::Int64(1),
                Data::Null,
                Data::Null,
                Data::Array(vec![]),
            ]),
        );
        let err = payload(&v, "cps_message_body").unwrap_err();
        assert_eq!(err.reason, "its value's required field `source` is null");
    }

    #[test]
    fn schemaless_values_are_their_java_text() {
        // What JsonConverter with schemas.enable=false gives: no schema, so Google's
        // connector calls toString() on the whole value and publishes no attributes.
        let map = structured(
            None,
            Data::Map(vec![
                (s("cps_message_body"), s("hello")),
                (s("source"), s("ztf")),
            ]),
        );
        let p = payload(&map, "cps_message_body").unwrap();
        assert_eq!(
            p.data.as_deref(),
            Some(&b"{cps_message_body=hello, source=ztf}"[..])
        );
        assert!(p.attributes.is_empty());
        let cases = [
            (s("hello"), "hello"),
            (Data::Int64(42), "42"),
            (Data::Float64(2459457.5), "2459457.5"),
            (Data::Boolean(true), "true"),
            (
                Data::Array(vec![s("a"), Data::Int64(1), Data::Null]),
                "[a, 1, null]",
            ),
        ];
        for (data, text) in cases {
            let p = payload(&structured(None, data), "cps_message_body").unwrap();
            assert_eq!(p.data.as_deref(), Some(text.as_bytes()));
        }
        // JSON null: no data at all (the record still needs attributes to be published).
        assert_eq!(
            payload(&structured(None, Data::Null), "b").unwrap(),
            Payload::default()
        );
    }

    #[test]
    fn primitives_with_a_schema_are_googles_binary_encodings() {
        let cases: Vec<(SchemaKind, Data, Vec<u8>)> = vec![
            (SchemaKind::Int8, Data::Int8(-2), vec![0xfe]),
            (SchemaKind::Int16, Data::Int16(258), vec![1, 2]),
            (SchemaKind::Int32, Data::Int32(-1), vec![0xff; 4]),
            (
                SchemaKind::Int64,
                Data::Int64(1),
                vec![0, 0, 0, 0, 0, 0, 0, 1],
            ),
            (
                SchemaKind::Float32,
                Data::Float32(1.0),
                vec![0x3f, 0x80, 0, 0],
            ),
            (
                SchemaKind::Float64,
                Data::Float64(-2.0),
                vec![0xc0, 0, 0, 0, 0, 0, 0, 0],
            ),
            (SchemaKind::Boolean, Data::Boolean(true), vec![1]),
            (SchemaKind::Boolean, Data::Boolean(false), vec![0]),
            (SchemaKind::String, s("héllo"), "héllo".as_bytes().to_vec()),
            (
                SchemaKind::Bytes,
                Data::Bytes(Bytes::from_static(b"Obj\x01")),
                b"Obj\x01".to_vec(),
            ),
            (
                SchemaKind::Array(Box::new(of(SchemaKind::Int16))),
                Data::Array(vec![Data::Int16(1), Data::Int16(2)]),
                vec![0, 1, 0, 2],
            ),
            (
                SchemaKind::Array(Box::new(of(SchemaKind::String))),
                Data::Array(vec![s("ab"), s("c")]),
                b"abc".to_vec(),
            ),
        ];
        for (kind, data, want) in cases {
            let p = payload(&structured(Some(of(kind.clone())), data), "b").unwrap();
            assert_eq!(p.data.as_deref(), Some(&want[..]), "{kind:?}");
            assert!(p.attributes.is_empty());
        }
    }

    #[test]
    fn values_google_cannot_encode_are_record_errors() {
        let cases: Vec<(Schema, Data, &str)> = vec![
            (
                of(SchemaKind::Timestamp(TimeUnit::Millis)),
                Data::Timestamp(0),
                "`value` is a timestamp",
            ),
            (
                of(SchemaKind::Decimal {
                    precision: 5,
                    scale: 2,
                }),
                Data::Decimal(Bytes::from_static(&[1])),
                "`value` is a decimal",
            ),
            (
                of(SchemaKind::Array(Box::new(of(SchemaKind::Struct(vec![]))))),
                Data::Array(vec![]),
                "array of structs",
            ),
            (
                of(SchemaKind::Array(Box::new(
                    of(SchemaKind::Int32).optional(),
                ))),
                Data::Array(vec![Data::Int32(1), Data::Null]),
                "null at index 1",
            ),
        ];
        for (schema, data, want) in cases {
            let err = payload(&structured(Some(schema), data), "b").unwrap_err();
            assert!(err.reason.contains(want), "{err}");
        }
        // A logical type as an attribute is fine: its Java text.
        let v = structured(
            Some(of(SchemaKind::Struct(vec![
                field("at", of(SchemaKind::Timestamp(TimeUnit::Millis))),
                field(
                    "flux",
                    of(SchemaKind::Decimal {
                        precision: 5,
                        scale: 2,
                    }),
                ),
            ]))),
            Data::Struct(vec![
                Data::Timestamp(1_630_540_800_123_000),
                Data::Decimal(Bytes::from_static(&[0x30, 0x39])),
            ]),
        );
        assert_eq!(
            payload(&v, "b").unwrap().attributes,
            attrs(&[("at", "Thu Sep 02 00:00:00 UTC 2021"), ("flux", "123.45")])
        );
    }

    #[test]
    fn a_map_with_a_schema_splits_into_body_text_and_attributes() {
        let schema = of(SchemaKind::Map {
            key: Box::new(of(SchemaKind::String)),
            value: Box::new(of(SchemaKind::Int64).optional()),
        });
        let v = structured(
            Some(schema.clone()),
            Data::Map(vec![
                (s("cps_message_body"), Data::Int64(258)),
                (s("fid"), Data::Int64(2)),
            ]),
        );
        let p = payload(&v, "cps_message_body").unwrap();
        // A map's body is its value's text, not the int64's eight bytes.
        assert_eq!(p.data.as_deref(), Some(&b"258"[..]));
        assert_eq!(p.attributes, attrs(&[("fid", "2")]));
        let v = structured(
            Some(schema.clone()),
            Data::Map(vec![(s("fid"), Data::Int64(2))]),
        );
        assert_eq!(
            payload(&v, "cps_message_body").unwrap().data.as_deref(),
            Some(&b""[..])
        );
        let v = structured(Some(schema), Data::Map(vec![(s("fid"), Data::Null)]));
        let err = payload(&v, "cps_message_body").unwrap_err();
        assert!(err.reason.contains("null value (entry `fid`)"), "{err}");
    }
}
