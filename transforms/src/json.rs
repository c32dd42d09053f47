//! The JSON text Connect's `JsonConverter` with `schemas.enable=false` writes for a value:
//! structs and string-keyed maps as objects in field order, other maps as `[key, value]`
//! pairs, bytes and decimals as base64 (its default `decimal.format=BASE64`), timestamps
//! and times as milliseconds, dates as days.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_connector_api::data::{Data, Schema, SchemaKind};

pub(crate) fn to_json(schema: Option<&Schema>, data: &Data) -> Vec<u8> {
    to_json_sized(schema, data, 128)
}

/// `to_json` into a buffer of `capacity` bytes to start with (the size of the bytes the
/// value was read from, up to 1 KiB, is a good guess: it saves growing the buffer as it is
/// written, and wastes little when a transform kept only a small part of a large value).
pub(crate) fn to_json_sized(schema: Option<&Schema>, data: &Data, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity.clamp(16, 1024));
    write(&mut out, schema, data);
    out
}

fn write(out: &mut Vec<u8>, schema: Option<&Schema>, data: &Data) {
    // Writing to a Vec cannot fail, and serde_json writes every string and float.
    let _ = write_fallible(out, schema, data);
}

fn write_fallible(
    out: &mut Vec<u8>,
    schema: Option<&Schema>,
    data: &Data,
) -> serde_json::Result<()> {
    match data {
        Data::Null => out.extend_from_slice(b"null"),
        Data::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // serde_json writes integers with itoa, several times faster than `write!`.
        Data::Int8(n) => serde_json::to_writer(&mut *out, n)?,
        Data::Int16(n) => serde_json::to_writer(&mut *out, n)?,
        Data::Int32(n) => serde_json::to_writer(&mut *out, n)?,
        Data::Int64(n) => serde_json::to_writer(&mut *out, n)?,
        Data::Float32(f) => serde_json::to_writer(&mut *out, f)?,
        Data::Float64(f) => serde_json::to_writer(&mut *out, f)?,
        Data::String(s) => serde_json::to_writer(&mut *out, s)?,
        Data::Bytes(b) | Data::Decimal(b) => {
            serde_json::to_writer(&mut *out, &STANDARD.encode(b))?;
        }
        Data::Timestamp(us) | Data::Time(us) => {
            serde_json::to_writer(&mut *out, &us.div_euclid(1000))?
        }
        Data::Date(days) => serde_json::to_writer(&mut *out, days)?,
        Data::Array(items) => {
            let inner = match schema.map(|s| &s.kind) {
                Some(SchemaKind::Array(inner)) => Some(&**inner),
                _ => None,
            };
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, inner, item);
            }
            out.push(b']');
        }
        Data::Map(entries) => {
            let (ks, vs) = match schema.map(|s| &s.kind) {
                Some(SchemaKind::Map { key, value }) => (Some(&**key), Some(&**value)),
                _ => (None, None),
            };
            if entries.iter().all(|(k, _)| matches!(k, Data::String(_))) {
                out.push(b'{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(out, ks, k);
                    out.push(b':');
                    write(out, vs, v);
                }
                out.push(b'}');
            } else {
                out.push(b'[');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.push(b'[');
                    write(out, ks, k);
                    out.push(b',');
                    write(out, vs, v);
                    out.push(b']');
                }
                out.push(b']');
            }
        }
        Data::Struct(values) => {
            let fields = schema.map(Schema::fields).unwrap_or_default();
            if fields.len() == values.len() {
                out.push(b'{');
                for (i, (f, v)) in fields.iter().zip(values).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, &f.name)?;
                    out.push(b':');
                    write(out, Some(&f.schema), v);
                }
                out.push(b'}');
            } else {
                // A struct without its schema has no field names to write.
                out.push(b'[');
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(out, None, v);
                }
                out.push(b']');
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_connector_api::data::{Field, TimeUnit};

    fn field(name: &str, kind: SchemaKind) -> Field {
        Field {
            name: name.into(),
            schema: Schema::new(kind),
            doc: None,
        }
    }

    #[test]
    fn structs_maps_and_logical_types_are_written_as_json_converter_does() {
        let schema = Schema::new(SchemaKind::Struct(vec![
            field("name", SchemaKind::String),
            field("mag", SchemaKind::Float64),
            field("at", SchemaKind::Timestamp(TimeUnit::Millis)),
            field("raw", SchemaKind::Bytes),
        ]));
        let data = Data::Struct(vec![
            Data::String("a\"b".into()),
            Data::Float64(18.5),
            Data::Timestamp(1_500_000_000_123_000),
            Data::Bytes(bytes::Bytes::from_static(b"hi")),
        ]);
        assert_eq!(
            String::from_utf8(to_json(Some(&schema), &data)).unwrap(),
            r#"{"name":"a\"b","mag":18.5,"at":1500000000123,"raw":"aGk="}"#
        );
        let map = Data::Map(vec![
            (Data::String("z".into()), Data::Int64(1)),
            (Data::String("a".into()), Data::Null),
        ]);
        assert_eq!(to_json(None, &map), br#"{"z":1,"a":null}"#);
        let int_keys = Data::Map(vec![(Data::Int32(1), Data::Boolean(true))]);
        assert_eq!(to_json(None, &int_keys), b"[[1,true]]");
    }
}
