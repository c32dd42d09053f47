//! Structured data → BigQuery rows as JSON (the `tabledata.insertAll` encoding), following
//! [`crate::schema`]'s column mapping.
//!
//! INT64 goes as a decimal string (JSON numbers lose precision past 2^53), BYTES as
//! base64, FLOAT64's non-finite values as `"NaN"`, `"Infinity"`, `"-Infinity"`,
//! timestamps and dates as strings (the API and the emulator refuse numeric timestamps),
//! a map as `[{key, value}]`, a null array as `[]`.

use crate::schema::has_column;
use base64::Engine;
use ferry_connector_api::data::{Data, Schema, SchemaKind};
use serde_json::{Map, Value as Json, json};

/// Why data has no row: it does not follow its own schema (a converter bug or a corrupt
/// record), or holds a value BigQuery cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value at {path}: {reason}")]
pub struct RowError {
    pub path: String,
    pub reason: String,
}

fn err(path: &str, reason: impl Into<String>) -> RowError {
    RowError {
        path: if path.is_empty() {
            "(top level)".into()
        } else {
            path.to_string()
        },
        reason: reason.into(),
    }
}

/// One row from a struct and its schema.
pub fn row(schema: &Schema, data: &Data) -> Result<Map<String, Json>, RowError> {
    match (&schema.kind, data) {
        (SchemaKind::Struct(fields), Data::Struct(values)) if fields.len() == values.len() => {
            let mut out = Map::with_capacity(fields.len());
            for (f, v) in fields.iter().zip(values) {
                if has_column(&f.schema) {
                    out.insert(f.name.clone(), json_of(&f.schema, v, &f.name)?);
                }
            }
            Ok(out)
        }
        (SchemaKind::Struct(_), _) => Err(err("", "the data does not follow its struct schema")),
        _ => Err(err("", "a row needs a struct (an Avro record)")),
    }
}

/// A row from schemaless data (JsonConverter with `schemas.enable=false`): an object's
/// entries become columns by name; the table must already have them.
pub fn schemaless_row(data: &Data) -> Result<Map<String, Json>, RowError> {
    match data {
        Data::Map(entries) => {
            let mut out = Map::with_capacity(entries.len());
            for (k, v) in entries {
                let Data::String(name) = k else {
                    return Err(err("", "a schemaless row needs string keys"));
                };
                out.insert(name.clone(), schemaless(v, name)?);
            }
            Ok(out)
        }
        _ => Err(err("", "a schemaless row needs a JSON object")),
    }
}

fn b64(b: &[u8]) -> Json {
    Json::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// `data` as JSON, following `schema`.
pub fn json_of(schema: &Schema, data: &Data, path: &str) -> Result<Json, RowError> {
    let mismatch = || err(path, format!("{data:?} does not follow {:?}", schema.kind));
    Ok(match (&schema.kind, data) {
        (SchemaKind::Array(_), Data::Null) => Json::Array(Vec::new()),
        (_, Data::Null) if schema.optional => Json::Null,
        (_, Data::Null) => return Err(err(path, "null in a required field")),
        (SchemaKind::Boolean, Data::Boolean(b)) => Json::Bool(*b),
        (SchemaKind::Int8, Data::Int8(i)) => json!(i),
        (SchemaKind::Int16, Data::Int16(i)) => json!(i),
        (SchemaKind::Int32, Data::Int32(i)) => json!(i),
        (SchemaKind::Int64, Data::Int64(i)) => Json::String(i.to_string()),
        (SchemaKind::Float32, Data::Float32(f)) => float(f64::from(*f)),
        (SchemaKind::Float64, Data::Float64(f)) => float(*f),
        (SchemaKind::String, Data::String(s)) => Json::String(s.clone()),
        (SchemaKind::Bytes, Data::Bytes(b)) => b64(b),
        (SchemaKind::Timestamp(_), Data::Timestamp(us)) => Json::String(timestamp(*us, path)?),
        (SchemaKind::Date, Data::Date(days)) => Json::String(date(*days, path)?),
        (SchemaKind::Time(_), Data::Time(us)) => Json::String(time_of_day(*us)),
        (SchemaKind::Decimal { scale, .. }, Data::Decimal(unscaled)) => {
            Json::String(decimal(unscaled, *scale, path)?)
        }
        (SchemaKind::Struct(fields), Data::Struct(values)) if fields.len() == values.len() => {
            let mut out = Map::with_capacity(fields.len());
            for (f, v) in fields
                .iter()
                .zip(values)
                .filter(|(f, _)| has_column(&f.schema))
            {
                out.insert(
                    f.name.clone(),
                    json_of(&f.schema, v, &format!("{path}.{}", f.name))?,
                );
            }
            Json::Object(out)
        }
        (SchemaKind::Array(items), Data::Array(values)) => Json::Array(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let p = format!("{path}[{i}]");
                    if matches!(v, Data::Null) {
                        // BigQuery arrays hold no NULL element.
                        return Err(err(
                            &p,
                            "a null array element; BigQuery arrays cannot hold NULL",
                        ));
                    }
                    json_of(items, v, &p)
                })
                .collect::<Result<_, _>>()?,
        ),
        (SchemaKind::Map { key, value }, Data::Map(entries)) => Json::Array(
            entries
                .iter()
                .enumerate()
                .map(|(i, (k, v))| {
                    let p = format!("{path}[{i}]");
                    Ok(json!({"key": json_of(key, k, &p)?, "value": json_of(value, v, &p)?}))
                })
                .collect::<Result<_, RowError>>()?,
        ),
        _ => return Err(mismatch()),
    })
}

fn schemaless(data: &Data, path: &str) -> Result<Json, RowError> {
    Ok(match data {
        Data::Null => Json::Null,
        Data::Boolean(b) => Json::Bool(*b),
        Data::Int8(i) => json!(i),
        Data::Int16(i) => json!(i),
        Data::Int32(i) => json!(i),
        Data::Int64(i) => Json::String(i.to_string()),
        Data::Float32(f) => float(f64::from(*f)),
        Data::Float64(f) => float(*f),
        Data::String(s) => Json::String(s.clone()),
        Data::Bytes(b) | Data::Decimal(b) => b64(b),
        Data::Timestamp(us) => Json::String(timestamp(*us, path)?),
        Data::Date(d) => Json::String(date(*d, path)?),
        Data::Time(us) => Json::String(time_of_day(*us)),
        Data::Array(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| schemaless(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Data::Map(_) => Json::Object(schemaless_row(data).map_err(|e| err(path, e.reason))?),
        Data::Struct(_) => return Err(err(path, "a struct without its schema")),
    })
}

fn float(f: f64) -> Json {
    if f.is_nan() {
        Json::String("NaN".into())
    } else if f.is_infinite() {
        Json::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        json!(f)
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff UTC` from microseconds since the epoch.
pub fn timestamp(micros: i64, path: &str) -> Result<String, RowError> {
    let ts = jiff::Timestamp::from_microsecond(micros)
        .map_err(|e| err(path, format!("timestamp {micros} µs out of range: {e}")))?;
    Ok(ts.strftime("%Y-%m-%d %H:%M:%S%.6f UTC").to_string())
}

fn date(days: i32, path: &str) -> Result<String, RowError> {
    let d = jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(i64::from(days)))
        .map_err(|e| {
            err(
                path,
                format!("date {days} days from 1970 out of range: {e}"),
            )
        })?;
    Ok(d.to_string())
}

fn time_of_day(micros: i64) -> String {
    let m = micros.rem_euclid(86_400_000_000);
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        m / 3_600_000_000,
        m / 60_000_000 % 60,
        m / 1_000_000 % 60,
        m % 1_000_000
    )
}

/// The decimal string of a two's-complement big-endian unscaled value, up to 128 bits.
fn decimal(unscaled: &[u8], scale: u32, path: &str) -> Result<String, RowError> {
    if unscaled.len() > 16 {
        return Err(err(
            path,
            format!(
                "a decimal of {} bytes; ferry loads decimals up to 128 bits",
                unscaled.len()
            ),
        ));
    }
    Ok(ferry_connector_api::decimal::plain(unscaled, scale))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferry_connector_api::data::{Field, TimeUnit};

    use super::*;

    fn f(name: &str, schema: Schema) -> Field {
        Field {
            name: name.into(),
            schema,
            doc: None,
        }
    }

    fn s(kind: SchemaKind) -> Schema {
        Schema::new(kind)
    }

    #[test]
    fn scalars_records_arrays_and_maps() {
        let schema = s(SchemaKind::Struct(vec![
            f("candid", s(SchemaKind::Int64)),
            f("fid", s(SchemaKind::Int32)),
            f("magpsf", s(SchemaKind::Float32)),
            f("rb", s(SchemaKind::Float32).optional()),
            f("drb", s(SchemaKind::Float64)),
            f("stamp", s(SchemaKind::Bytes)),
            f(
                "prv",
                s(SchemaKind::Array(Box::new(s(SchemaKind::Struct(vec![f(
                    "jd",
                    s(SchemaKind::Float64),
                )])))))
                .optional(),
            ),
            f(
                "none",
                s(SchemaKind::Array(Box::new(s(SchemaKind::Int32)))).optional(),
            ),
            f(
                "tags",
                s(SchemaKind::Map {
                    key: Box::new(s(SchemaKind::String)),
                    value: Box::new(s(SchemaKind::Int32)),
                }),
            ),
            f("ts", s(SchemaKind::Timestamp(TimeUnit::Micros))),
            f("day", s(SchemaKind::Date)),
            f(
                "price",
                s(SchemaKind::Decimal {
                    precision: 9,
                    scale: 2,
                }),
            ),
        ]));
        let data = Data::Struct(vec![
            Data::Int64(1_704_217_901_015_015_001),
            Data::Int32(2),
            Data::Float32(18.5),
            Data::Null,
            Data::Float64(f64::NAN),
            Data::Bytes(Bytes::from_static(&[0x1f, 0x8b, 0])),
            Data::Array(vec![Data::Struct(vec![Data::Float64(2459458.5)])]),
            Data::Null,
            Data::Map(vec![(Data::String("a".into()), Data::Int32(1))]),
            Data::Timestamp(1_630_454_400_123_456),
            Data::Date(18_871),
            Data::Decimal(Bytes::from_static(&[0xfe, 0x0c])), // -500 → -5.00
        ]);
        let r = Json::Object(row(&schema, &data).unwrap());
        assert_eq!(r["candid"], "1704217901015015001");
        assert_eq!(r["fid"], 2);
        assert_eq!(r["magpsf"], 18.5);
        assert_eq!(r["rb"], Json::Null);
        assert_eq!(r["drb"], "NaN");
        assert_eq!(r["stamp"], "H4sA");
        assert_eq!(r["prv"], json!([{"jd": 2459458.5}]));
        assert_eq!(r["none"], json!([]));
        assert_eq!(r["tags"], json!([{"key": "a", "value": 1}]));
        assert_eq!(r["ts"], "2021-09-01 00:00:00.123456 UTC");
        assert_eq!(r["day"], "2021-09-01");
        assert_eq!(r["price"], "-5.00");
    }

    #[test]
    fn data_that_breaks_its_schema_is_named_by_path() {
        let schema = s(SchemaKind::Struct(vec![f(
            "c",
            s(SchemaKind::Struct(vec![f("jd", s(SchemaKind::Float64))])),
        )]));
        let e = row(&schema, &Data::Struct(vec![Data::Struct(vec![Data::Null])])).unwrap_err();
        assert_eq!(e.path, "c.jd");
        assert_eq!(e.reason, "null in a required field");
        let e = row(&schema, &Data::Int32(1)).unwrap_err();
        assert_eq!(e.path, "(top level)");
        assert!(row(&s(SchemaKind::Int32), &Data::Int32(1)).is_err());
    }

    #[test]
    fn decimals_keep_their_digits() {
        assert_eq!(decimal(&[0x30, 0x39], 2, "p").unwrap(), "123.45");
        assert_eq!(decimal(&[0x05], 3, "p").unwrap(), "0.005");
        assert_eq!(decimal(&[0xff], 0, "p").unwrap(), "-1");
        assert!(decimal(&[1; 17], 0, "p").is_err());
    }

    #[test]
    fn schemaless_objects_become_rows() {
        let data = Data::Map(vec![
            (Data::String("id".into()), Data::Int64(7)),
            (Data::String("name".into()), Data::String("x".into())),
        ]);
        let r = schemaless_row(&data).unwrap();
        assert_eq!(Json::Object(r), json!({"id": "7", "name": "x"}));
        assert!(schemaless_row(&Data::Int32(1)).is_err());
    }
}
