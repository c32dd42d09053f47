//! Avro values → BigQuery rows as JSON (the `tabledata.insertAll` and Storage Write JSON
//! encodings), following [`crate::schema`]'s column mapping.
//!
//! INT64 goes as a decimal string (JSON numbers lose precision past 2^53), BYTES as
//! base64, FLOAT64's non-finite values as `"NaN"`, `"Infinity"`, `"-Infinity"`,
//! timestamps and dates as strings (the API and the emulator refuse numeric timestamps),
//! a map as `[{key, value}]`.

use apache_avro::types::Value;
use base64::Engine;
use serde_json::{Map, Value as Json, json};

/// Why a value has no row (a schema the mapping refused would fail first; this is for
/// values that do not fit their own schema, which a corrupt record can cause).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Avro value at {path}: {reason}")]
pub struct RowError {
    pub path: String,
    pub reason: String,
}

/// One row from a record value.
pub fn row(value: &Value) -> Result<Map<String, Json>, RowError> {
    match value {
        Value::Record(fields) => record(fields, ""),
        other => Err(RowError {
            path: "(top level)".into(),
            reason: format!("a row needs a record, not {}", variant(other)),
        }),
    }
}

fn record(fields: &[(String, Value)], prefix: &str) -> Result<Map<String, Json>, RowError> {
    let mut out = Map::with_capacity(fields.len());
    for (name, v) in fields {
        out.insert(name.clone(), json_of(v, &format!("{prefix}{name}"))?);
    }
    Ok(out)
}

fn json_of(v: &Value, path: &str) -> Result<Json, RowError> {
    let b64 = |b: &[u8]| Json::String(base64::engine::general_purpose::STANDARD.encode(b));
    Ok(match v {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(i) => json!(i),
        Value::Long(l) => Json::String(l.to_string()),
        Value::Float(f) => float(f64::from(*f)),
        Value::Double(d) => float(*d),
        Value::Bytes(b) | Value::Fixed(_, b) => b64(b),
        Value::String(s) | Value::Enum(_, s) => Json::String(s.clone()),
        Value::Uuid(u) => Json::String(u.to_string()),
        Value::Union(_, inner) => json_of(inner, path)?,
        Value::Array(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| json_of(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Json::Array(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        Ok(json!({"key": k, "value": json_of(v, &format!("{path}.{k}"))?}))
                    })
                    .collect::<Result<_, RowError>>()?,
            )
        }
        Value::Record(fields) => Json::Object(record(fields, &format!("{path}."))?),
        Value::Date(days) => Json::String(date(*days, path)?),
        Value::TimeMillis(ms) => Json::String(time_of_day(i64::from(*ms) * 1000)),
        Value::TimeMicros(us) => Json::String(time_of_day(*us)),
        Value::TimestampMillis(ms) | Value::LocalTimestampMillis(ms) => {
            Json::String(timestamp(ms.saturating_mul(1000), path)?)
        }
        Value::TimestampMicros(us) | Value::LocalTimestampMicros(us) => {
            Json::String(timestamp(*us, path)?)
        }
        Value::TimestampNanos(ns) | Value::LocalTimestampNanos(ns) => {
            Json::String(timestamp(ns.div_euclid(1000), path)?)
        }
        Value::Decimal(_) => {
            // Its digits need the schema's scale, which a value does not carry.
            return Err(RowError {
                path: path.to_string(),
                reason: "Avro decimal values are not loaded yet".into(),
            });
        }
        Value::BigDecimal(b) => Json::String(b.to_string()),
        Value::Duration(_) => {
            return Err(RowError {
                path: path.to_string(),
                reason: "Avro durations have no BigQuery type".into(),
            });
        }
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
fn timestamp(micros: i64, path: &str) -> Result<String, RowError> {
    let ts = jiff::Timestamp::from_microsecond(micros).map_err(|e| RowError {
        path: path.to_string(),
        reason: format!("timestamp {micros} µs out of range: {e}"),
    })?;
    Ok(ts.strftime("%Y-%m-%d %H:%M:%S%.6f UTC").to_string())
}

fn date(days: i32, path: &str) -> Result<String, RowError> {
    let d = jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(i64::from(days)))
        .map_err(|e| RowError {
            path: path.to_string(),
            reason: format!("date {days} days from 1970 out of range: {e}"),
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

fn variant(v: &Value) -> &'static str {
    match v {
        Value::Record(_) => "record",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Union(..) => "union",
        _ => "a scalar",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_records_arrays_and_maps() {
        let v = Value::Record(vec![
            ("candid".into(), Value::Long(1_704_217_901_015_015_001)),
            ("fid".into(), Value::Int(2)),
            ("magpsf".into(), Value::Float(18.5)),
            ("rb".into(), Value::Union(0, Box::new(Value::Null))),
            ("drb".into(), Value::Double(f64::NAN)),
            ("stamp".into(), Value::Bytes(vec![0x1f, 0x8b, 0])),
            (
                "prv".into(),
                Value::Union(
                    1,
                    Box::new(Value::Array(vec![Value::Record(vec![(
                        "jd".into(),
                        Value::Double(2459458.5),
                    )])])),
                ),
            ),
            (
                "tags".into(),
                Value::Map(
                    [
                        ("b".to_string(), Value::Int(2)),
                        ("a".to_string(), Value::Int(1)),
                    ]
                    .into(),
                ),
            ),
            ("ts".into(), Value::TimestampMicros(1_630_454_400_123_456)),
            ("day".into(), Value::Date(18_871)),
        ]);
        let r = Json::Object(row(&v).unwrap());
        assert_eq!(r["candid"], "1704217901015015001");
        assert_eq!(r["fid"], 2);
        assert_eq!(r["magpsf"], 18.5);
        assert_eq!(r["rb"], Json::Null);
        assert_eq!(r["drb"], "NaN");
        assert_eq!(r["stamp"], "H4sA");
        assert_eq!(r["prv"], json!([{"jd": 2459458.5}]));
        assert_eq!(
            r["tags"],
            json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}])
        );
        assert_eq!(r["ts"], "2021-09-01 00:00:00.123456 UTC");
        assert_eq!(r["day"], "2021-09-01");
    }

    #[test]
    fn a_non_record_is_no_row() {
        assert!(
            row(&Value::Int(1))
                .unwrap_err()
                .to_string()
                .contains("needs a record")
        );
    }
}
