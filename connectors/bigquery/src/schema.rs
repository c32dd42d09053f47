//! Avro schema → BigQuery table schema, so an alert stream whose messages carry their own
//! schema (ZTF's Avro container files) loads without a schema written by hand.
//!
//! | Avro | BigQuery |
//! |---|---|
//! | `boolean` | `BOOLEAN` |
//! | `int`, `long` | `INTEGER` |
//! | `float`, `double` | `FLOAT` |
//! | `string`, `enum`, `uuid` | `STRING` |
//! | `bytes`, `fixed` | `BYTES` |
//! | `decimal` | `BIGNUMERIC` |
//! | `date` | `DATE` |
//! | `time-millis`, `time-micros` | `TIME` |
//! | `timestamp-*`, `local-timestamp-*` | `TIMESTAMP` |
//! | `record` | `RECORD` with its fields |
//! | `array<T>` | `T` in mode `REPEATED` |
//! | `map<T>` | `REPEATED RECORD {key STRING, value T}` |
//! | `["null", T]`, `[T, "null"]` | `T` in mode `NULLABLE` (a null array is an empty one) |
//!
//! A field that is not a union with `null` is `REQUIRED`, as in the Kafka Connect
//! BigQuery connector. What BigQuery cannot hold is an error naming the field path:
//! unions of two or more non-null types, arrays of arrays, recursive records.

use apache_avro::Schema;
use apache_avro::schema::{Name, RecordSchema, UnionSchema};
use serde::Serialize;

/// One column, as BigQuery's REST API spells a `TableFieldSchema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub mode: Mode,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    Boolean,
    Integer,
    Float,
    String,
    Bytes,
    Bignumeric,
    Date,
    Time,
    Timestamp,
    Record,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    Nullable,
    Required,
    Repeated,
}

/// Why an Avro schema has no BigQuery table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Avro field {path}: {reason}")]
pub struct SchemaError {
    /// Dotted path from the top record, e.g. `candidate.magpsf`.
    pub path: String,
    pub reason: String,
}

/// The columns of a table for records of `schema` (a record schema).
pub fn table_fields(schema: &Schema) -> Result<Vec<Field>, SchemaError> {
    let mut names = Names::default();
    match schema {
        Schema::Record(r) => record_fields(r, "", &mut names),
        other => Err(SchemaError {
            path: "(top level)".into(),
            reason: format!("a table needs a record schema, not {}", kind_name(other)),
        }),
    }
}

/// Named types seen so far (Avro refers to a record by name after its first definition).
#[derive(Default)]
struct Names {
    defined: Vec<(Name, RecordSchema)>,
    open: Vec<Name>,
}

fn record_fields(
    r: &RecordSchema,
    prefix: &str,
    names: &mut Names,
) -> Result<Vec<Field>, SchemaError> {
    if names.open.contains(&r.name) {
        return Err(SchemaError {
            path: prefix.trim_end_matches('.').to_string(),
            reason: format!(
                "record {} contains itself; BigQuery has no recursive types",
                r.name
            ),
        });
    }
    if !names.defined.iter().any(|(n, _)| n == &r.name) {
        names.defined.push((r.name.clone(), r.clone()));
    }
    names.open.push(r.name.clone());
    let out = r
        .fields
        .iter()
        .map(|f| field(&f.name, &f.schema, &format!("{prefix}{}", f.name), names))
        .collect();
    names.open.pop();
    out
}

fn field(name: &str, schema: &Schema, path: &str, names: &mut Names) -> Result<Field, SchemaError> {
    let err = |reason: String| SchemaError {
        path: path.to_string(),
        reason,
    };
    let (schema, mode) = match schema {
        Schema::Union(u) => (non_null(u).map_err(err)?, Mode::Nullable),
        s => (s, Mode::Required),
    };
    let mut f = column(name, schema, path, names)?;
    if f.mode == Mode::Repeated {
        // BigQuery has no NULLABLE REPEATED; a null array loads as an empty one.
        return Ok(f);
    }
    f.mode = mode;
    Ok(f)
}

/// The single non-null branch of a union with null.
fn non_null(u: &UnionSchema) -> Result<&Schema, String> {
    let others: Vec<&Schema> = u
        .variants()
        .iter()
        .filter(|s| !matches!(s, Schema::Null))
        .collect();
    match others.as_slice() {
        [one] => Ok(one),
        [] => Err("a union of only null has no BigQuery type".into()),
        many => Err(format!(
            "a union of {} types ({}); BigQuery columns hold one type, so only [\"null\", T] unions map",
            many.len(),
            many.iter()
                .map(|s| kind_name(s))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn column(
    name: &str,
    schema: &Schema,
    path: &str,
    names: &mut Names,
) -> Result<Field, SchemaError> {
    let leaf = |kind| Field {
        name: name.to_string(),
        kind,
        mode: Mode::Required,
        fields: Vec::new(),
    };
    Ok(match schema {
        Schema::Boolean => leaf(Kind::Boolean),
        Schema::Int | Schema::Long => leaf(Kind::Integer),
        Schema::Float | Schema::Double => leaf(Kind::Float),
        Schema::String | Schema::Enum(_) | Schema::Uuid(_) => leaf(Kind::String),
        Schema::Bytes | Schema::Fixed(_) | Schema::Duration(_) => leaf(Kind::Bytes),
        Schema::Decimal(_) | Schema::BigDecimal => leaf(Kind::Bignumeric),
        Schema::Date => leaf(Kind::Date),
        Schema::TimeMillis | Schema::TimeMicros => leaf(Kind::Time),
        Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => leaf(Kind::Timestamp),
        Schema::Record(r) => Field {
            fields: record_fields(r, &format!("{path}."), names)?,
            ..leaf(Kind::Record)
        },
        Schema::Ref { name: n } => {
            let r = names
                .defined
                .iter()
                .find(|(d, _)| d == n)
                .map(|(_, r)| r.clone())
                .ok_or_else(|| SchemaError {
                    path: path.to_string(),
                    reason: format!("refers to {n}, which is not defined before it"),
                })?;
            Field {
                fields: record_fields(&r, &format!("{path}."), names)?,
                ..leaf(Kind::Record)
            }
        }
        Schema::Array(a) => {
            let items = match a.items.as_ref() {
                Schema::Union(u) => non_null(u).map_err(|reason| SchemaError {
                    path: path.to_string(),
                    reason: format!("array items: {reason}"),
                })?,
                s => s,
            };
            if matches!(items, Schema::Array(_)) {
                return Err(SchemaError {
                    path: path.to_string(),
                    reason: "an array of arrays; BigQuery has no nested REPEATED without a RECORD between".into(),
                });
            }
            Field {
                mode: Mode::Repeated,
                ..column(name, items, path, names)?
            }
        }
        Schema::Map(m) => Field {
            mode: Mode::Repeated,
            fields: vec![
                Field {
                    name: "key".into(),
                    kind: Kind::String,
                    mode: Mode::Required,
                    fields: Vec::new(),
                },
                field("value", &m.types, &format!("{path}.value"), names)?,
            ],
            ..leaf(Kind::Record)
        },
        Schema::Union(u) => {
            // A union inside an array item or map value: same rule, nullable.
            let inner = non_null(u).map_err(|reason| SchemaError {
                path: path.to_string(),
                reason,
            })?;
            Field {
                mode: Mode::Nullable,
                ..column(name, inner, path, names)?
            }
        }
        Schema::Null => {
            return Err(SchemaError {
                path: path.to_string(),
                reason: "a field that is always null has no BigQuery type".into(),
            });
        }
    })
}

fn kind_name(s: &Schema) -> String {
    match s {
        Schema::Record(r) => format!("record {}", r.name),
        Schema::Ref { name } => format!("record {name}"),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a ZTF alert (schema 3.3/4.02), cut down: nested candidate record,
    /// a nullable array of records, nullable scalars, cutout bytes.
    const ALERT: &str = r#"{
      "type": "record", "name": "alert", "namespace": "ztf",
      "fields": [
        {"name": "schemavsn", "type": "string"},
        {"name": "objectId", "type": "string"},
        {"name": "candid", "type": "long"},
        {"name": "candidate", "type": {"type": "record", "name": "candidate", "fields": [
            {"name": "jd", "type": "double"},
            {"name": "fid", "type": "int"},
            {"name": "magpsf", "type": "float"},
            {"name": "ra", "type": "double"},
            {"name": "isdiffpos", "type": "string"},
            {"name": "rb", "type": ["null", "float"], "default": null}
        ]}},
        {"name": "prv_candidates", "type": ["null", {"type": "array", "items": {
            "type": "record", "name": "prv_candidate", "fields": [
              {"name": "jd", "type": "double"},
              {"name": "magpsf", "type": ["null", "float"], "default": null}
            ]}}], "default": null},
        {"name": "cutoutScience", "type": ["null", {"type": "record", "name": "cutout", "fields": [
            {"name": "fileName", "type": "string"},
            {"name": "stampData", "type": "bytes"}
        ]}], "default": null},
        {"name": "cutoutTemplate", "type": ["null", "cutout"], "default": null}
      ]}"#;

    fn fields(json: &str) -> Result<Vec<Field>, SchemaError> {
        table_fields(&Schema::parse_str(json).unwrap())
    }

    fn find<'a>(fields: &'a [Field], name: &str) -> &'a Field {
        fields.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn a_ztf_shaped_alert_maps_to_nested_and_repeated_columns() {
        let f = fields(ALERT).unwrap();
        assert_eq!(find(&f, "candid").kind, Kind::Integer);
        assert_eq!(find(&f, "candid").mode, Mode::Required);
        let cand = find(&f, "candidate");
        assert_eq!((cand.kind, cand.mode), (Kind::Record, Mode::Required));
        assert_eq!(find(&cand.fields, "magpsf").kind, Kind::Float);
        assert_eq!(find(&cand.fields, "rb").mode, Mode::Nullable);
        let prv = find(&f, "prv_candidates");
        assert_eq!((prv.kind, prv.mode), (Kind::Record, Mode::Repeated));
        assert_eq!(find(&prv.fields, "magpsf").mode, Mode::Nullable);
        // The second cutout refers to the first by name.
        let tmpl = find(&f, "cutoutTemplate");
        assert_eq!((tmpl.kind, tmpl.mode), (Kind::Record, Mode::Nullable));
        assert_eq!(find(&tmpl.fields, "stampData").kind, Kind::Bytes);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(
            json[2],
            serde_json::json!({"name": "candid", "type": "INTEGER", "mode": "REQUIRED"})
        );
    }

    #[test]
    fn logical_types_maps_and_enums() {
        let f = fields(
            r#"{"type": "record", "name": "r", "fields": [
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "day", "type": {"type": "int", "logicalType": "date"}},
            {"name": "band", "type": {"type": "enum", "name": "band", "symbols": ["g", "r", "i"]}},
            {"name": "tags", "type": {"type": "map", "values": "long"}},
            {"name": "hash", "type": {"type": "fixed", "name": "h", "size": 4}}
        ]}"#,
        )
        .unwrap();
        assert_eq!(find(&f, "ts").kind, Kind::Timestamp);
        assert_eq!(find(&f, "day").kind, Kind::Date);
        assert_eq!(find(&f, "band").kind, Kind::String);
        let tags = find(&f, "tags");
        assert_eq!((tags.kind, tags.mode), (Kind::Record, Mode::Repeated));
        assert_eq!(find(&tags.fields, "value").kind, Kind::Integer);
        assert_eq!(find(&f, "hash").kind, Kind::Bytes);
    }

    #[test]
    fn what_bigquery_cannot_hold_is_named_by_path() {
        let e = fields(
            r#"{"type": "record", "name": "r", "fields": [
            {"name": "c", "type": {"type": "record", "name": "c", "fields": [
                {"name": "v", "type": ["null", "string", "long"]}]}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.path, "c.v");
        assert!(e.reason.contains("union of 2 types"), "{e}");
        let e = fields(r#"{"type": "record", "name": "r", "fields": [
            {"name": "m", "type": {"type": "array", "items": {"type": "array", "items": "int"}}}]}"#)
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Avro field m: an array of arrays"),
            "{e}"
        );
        let e = fields(
            r#"{"type": "record", "name": "node", "fields": [
            {"name": "next", "type": ["null", "node"]}]}"#,
        )
        .unwrap_err();
        assert!(e.reason.contains("contains itself"), "{e}");
        assert!(fields(r#""string""#).is_err());
    }
}
