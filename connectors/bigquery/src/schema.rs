//! A record's schema (Kafka Connect's data model, as a structured converter made it) →
//! BigQuery table columns, so an alert stream whose messages carry their own schema
//! (ZTF's Avro container files) loads without a schema written by hand.
//!
//! | Connect (Avro) | BigQuery |
//! |---|---|
//! | `boolean` | `BOOLEAN` |
//! | `int8`…`int64` (`int`, `long`) | `INTEGER` |
//! | `float32`, `float64` | `FLOAT` |
//! | `string` (`enum`, `uuid`) | `STRING` |
//! | `bytes` (`fixed`) | `BYTES` |
//! | `Decimal` | `NUMERIC` (precision ≤ 38, scale ≤ 9), else `BIGNUMERIC` |
//! | `Date` | `DATE` |
//! | `Time` | `TIME` |
//! | `Timestamp` | `TIMESTAMP` |
//! | `struct` (`record`) | `RECORD` with its fields |
//! | `array<T>` | `T` in mode `REPEATED` |
//! | `map<K, V>` | `REPEATED RECORD {key K, value V}` |
//! | optional (`["null", T]`) | `NULLABLE` (a null array loads as an empty one) |
//!
//! A field that is not optional is `REQUIRED`, as in the Kafka Connect BigQuery
//! connector, unless `allBQFieldsNullable=true`. What BigQuery cannot hold is an error
//! naming the field path: an array of arrays.

use ferry_connector_api::data::{Schema, SchemaKind};
use serde::{Deserialize, Serialize};

/// One column, as BigQuery's REST API spells a `TableFieldSchema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(default = "nullable")]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn nullable() -> Mode {
    Mode::Nullable
}

impl Field {
    /// A column of `kind` in `mode` with no sub-fields.
    pub fn leaf(name: &str, kind: Kind, mode: Mode) -> Self {
        Self {
            name: name.to_string(),
            kind,
            mode,
            fields: Vec::new(),
            description: None,
        }
    }

    /// A `RECORD` column.
    pub fn record(name: &str, mode: Mode, fields: Vec<Field>) -> Self {
        Self {
            fields,
            ..Self::leaf(name, Kind::Record, mode)
        }
    }
}

/// BigQuery's column types. The table API answers with the legacy names (`INTEGER`,
/// `FLOAT`, `BOOLEAN`, `RECORD`); the standard SQL aliases are read as the same types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    #[serde(alias = "BOOL")]
    Boolean,
    #[serde(alias = "INT64")]
    Integer,
    #[serde(alias = "FLOAT64")]
    Float,
    String,
    Bytes,
    Numeric,
    Bignumeric,
    Date,
    Time,
    Datetime,
    Timestamp,
    Json,
    Geography,
    #[serde(alias = "STRUCT")]
    Record,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    Nullable,
    Required,
    Repeated,
}

/// Why a schema has no BigQuery table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {path}: {reason}")]
pub struct SchemaError {
    /// Dotted path from the top, e.g. `candidate.magpsf`.
    pub path: String,
    pub reason: String,
}

/// Whether a value of `schema` has a column: a struct with no fields (an empty protocol
/// buffer message) holds no value, and BigQuery has no `RECORD` without fields, so it is
/// left out of tables and rows.
pub fn has_column(schema: &Schema) -> bool {
    !matches!(&schema.kind, SchemaKind::Struct(fields) if fields.is_empty())
}

/// The columns for records of `schema` (a struct). `all_nullable` is
/// `allBQFieldsNullable`: no column is `REQUIRED`.
pub fn table_fields(schema: &Schema, all_nullable: bool) -> Result<Vec<Field>, SchemaError> {
    match &schema.kind {
        SchemaKind::Struct(fields) => fields
            .iter()
            .filter(|f| has_column(&f.schema))
            .map(|f| {
                let mut c = column(&f.name, &f.schema, &f.name, all_nullable)?;
                c.description = f.doc.clone();
                Ok(c)
            })
            .collect(),
        other => Err(SchemaError {
            path: "(top level)".into(),
            reason: format!(
                "a table needs a struct (an Avro record), not {}",
                kind_name(other)
            ),
        }),
    }
}

/// One column for a value of `schema`.
pub fn column(
    name: &str,
    schema: &Schema,
    path: &str,
    all_nullable: bool,
) -> Result<Field, SchemaError> {
    let mode = if schema.optional || all_nullable {
        Mode::Nullable
    } else {
        Mode::Required
    };
    let leaf = |kind| Field::leaf(name, kind, mode);
    Ok(match &schema.kind {
        SchemaKind::Boolean => leaf(Kind::Boolean),
        SchemaKind::Int8 | SchemaKind::Int16 | SchemaKind::Int32 | SchemaKind::Int64 => {
            leaf(Kind::Integer)
        }
        SchemaKind::Float32 | SchemaKind::Float64 => leaf(Kind::Float),
        SchemaKind::String => leaf(Kind::String),
        SchemaKind::Bytes => leaf(Kind::Bytes),
        SchemaKind::Decimal { precision, scale } if *precision <= 38 && *scale <= 9 => {
            leaf(Kind::Numeric)
        }
        SchemaKind::Decimal { .. } => leaf(Kind::Bignumeric),
        SchemaKind::Date => leaf(Kind::Date),
        SchemaKind::Time(_) => leaf(Kind::Time),
        SchemaKind::Timestamp(_) => leaf(Kind::Timestamp),
        SchemaKind::Struct(fields) => Field::record(
            name,
            mode,
            fields
                .iter()
                .filter(|f| has_column(&f.schema))
                .map(|f| {
                    let mut c = column(
                        &f.name,
                        &f.schema,
                        &format!("{path}.{}", f.name),
                        all_nullable,
                    )?;
                    c.description = f.doc.clone();
                    Ok(c)
                })
                .collect::<Result<_, _>>()?,
        ),
        SchemaKind::Array(items) => {
            if matches!(items.kind, SchemaKind::Array(_)) {
                return Err(SchemaError {
                    path: path.to_string(),
                    reason: "an array of arrays; BigQuery has no nested REPEATED without a RECORD between".into(),
                });
            }
            // BigQuery has no NULLABLE REPEATED; a null array loads as an empty one.
            Field {
                mode: Mode::Repeated,
                ..column(name, items, path, all_nullable)?
            }
        }
        SchemaKind::Map { key, value } => Field::record(
            name,
            Mode::Repeated,
            vec![
                column("key", key, &format!("{path}.key"), all_nullable)?,
                column("value", value, &format!("{path}.value"), all_nullable)?,
            ],
        ),
    })
}

fn kind_name(k: &SchemaKind) -> String {
    match k {
        SchemaKind::Struct(_) => "a struct".into(),
        SchemaKind::Array(_) => "an array".into(),
        SchemaKind::Map { .. } => "a map".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Columns of `wanted` that `table` lacks, as dotted paths (nested records included).
pub fn missing_columns(table: &[Field], wanted: &[Field]) -> Vec<String> {
    let mut out = Vec::new();
    missing_into(table, wanted, "", &mut out);
    out
}

fn missing_into(table: &[Field], wanted: &[Field], prefix: &str, out: &mut Vec<String>) {
    for w in wanted {
        match table.iter().find(|t| t.name.eq_ignore_ascii_case(&w.name)) {
            None => out.push(format!("{prefix}{}", w.name)),
            Some(t) if t.kind == Kind::Record && w.kind == Kind::Record => {
                missing_into(&t.fields, &w.fields, &format!("{prefix}{}.", w.name), out);
            }
            Some(_) => {}
        }
    }
}

/// Columns whose type in `wanted` differs from the table's (BigQuery cannot change a
/// column's type), as `path: TABLE_TYPE in the table, RECORD_TYPE in the record`.
pub fn changed_columns(table: &[Field], wanted: &[Field]) -> Vec<String> {
    let mut out = Vec::new();
    changed_into(table, wanted, "", &mut out);
    out
}

fn changed_into(table: &[Field], wanted: &[Field], prefix: &str, out: &mut Vec<String>) {
    for w in wanted {
        let Some(t) = table.iter().find(|t| t.name.eq_ignore_ascii_case(&w.name)) else {
            continue;
        };
        let repeated = |f: &Field| f.mode == Mode::Repeated;
        if t.kind != w.kind || repeated(t) != repeated(w) {
            let show = |f: &Field| {
                let kind = serde_json::to_value(f.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                if repeated(f) {
                    format!("REPEATED {kind}")
                } else {
                    kind
                }
            };
            out.push(format!(
                "{prefix}{}: {} in the table, {} in the record",
                w.name,
                show(t),
                show(w)
            ));
        } else if t.kind == Kind::Record {
            changed_into(&t.fields, &w.fields, &format!("{prefix}{}.", w.name), out);
        }
    }
}

/// `table` with the columns of `wanted` it lacks added, as `NULLABLE` (BigQuery adds no
/// `REQUIRED` column to a table with rows), for `allowNewBigQueryFields=true`.
pub fn with_new_columns(table: &[Field], wanted: &[Field]) -> Vec<Field> {
    let mut out = table.to_vec();
    for w in wanted {
        match out
            .iter_mut()
            .find(|t| t.name.eq_ignore_ascii_case(&w.name))
        {
            None => out.push(relaxed(w.clone())),
            Some(t) if t.kind == Kind::Record && w.kind == Kind::Record => {
                t.fields = with_new_columns(&t.fields, &w.fields);
            }
            Some(_) => {}
        }
    }
    out
}

fn relaxed(mut f: Field) -> Field {
    if f.mode == Mode::Required {
        f.mode = Mode::Nullable;
    }
    f.fields = f.fields.into_iter().map(relaxed).collect();
    f
}

#[cfg(test)]
mod tests {
    use ferry_connector_api::data::{Field as ConnectField, TimeUnit};

    use super::*;

    fn f(name: &str, schema: Schema) -> ConnectField {
        ConnectField {
            name: name.into(),
            schema,
            doc: None,
        }
    }

    fn s(kind: SchemaKind) -> Schema {
        Schema::new(kind)
    }

    /// The shape of a ZTF alert, cut down: nested candidate record, a nullable array of
    /// records, nullable scalars, cutout bytes.
    fn alert() -> Schema {
        let cutout = s(SchemaKind::Struct(vec![
            f("fileName", s(SchemaKind::String)),
            f("stampData", s(SchemaKind::Bytes)),
        ]))
        .optional();
        s(SchemaKind::Struct(vec![
            f("objectId", s(SchemaKind::String)),
            f("candid", s(SchemaKind::Int64)),
            f(
                "candidate",
                s(SchemaKind::Struct(vec![
                    f("jd", s(SchemaKind::Float64)),
                    f("magpsf", s(SchemaKind::Float32)),
                    f("rb", s(SchemaKind::Float32).optional()),
                ])),
            ),
            f(
                "prv_candidates",
                s(SchemaKind::Array(Box::new(s(SchemaKind::Struct(vec![f(
                    "jd",
                    s(SchemaKind::Float64),
                )])))))
                .optional(),
            ),
            f("cutoutScience", cutout),
        ]))
    }

    fn find<'a>(fields: &'a [Field], name: &str) -> &'a Field {
        fields.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn a_ztf_shaped_alert_maps_to_nested_and_repeated_columns() {
        let c = table_fields(&alert(), false).unwrap();
        assert_eq!(
            (find(&c, "candid").kind, find(&c, "candid").mode),
            (Kind::Integer, Mode::Required)
        );
        let cand = find(&c, "candidate");
        assert_eq!((cand.kind, cand.mode), (Kind::Record, Mode::Required));
        assert_eq!(find(&cand.fields, "magpsf").kind, Kind::Float);
        assert_eq!(find(&cand.fields, "rb").mode, Mode::Nullable);
        let prv = find(&c, "prv_candidates");
        assert_eq!((prv.kind, prv.mode), (Kind::Record, Mode::Repeated));
        let cut = find(&c, "cutoutScience");
        assert_eq!((cut.kind, cut.mode), (Kind::Record, Mode::Nullable));
        assert_eq!(find(&cut.fields, "stampData").kind, Kind::Bytes);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json[1],
            serde_json::json!({"name": "candid", "type": "INTEGER", "mode": "REQUIRED"})
        );
        let all = table_fields(&alert(), true).unwrap();
        assert_eq!(find(&all, "candid").mode, Mode::Nullable);
        assert_eq!(find(&all, "prv_candidates").mode, Mode::Repeated);
    }

    #[test]
    fn logical_types_and_maps() {
        let c = table_fields(
            &s(SchemaKind::Struct(vec![
                f("ts", s(SchemaKind::Timestamp(TimeUnit::Micros))),
                f("day", s(SchemaKind::Date)),
                f(
                    "price",
                    s(SchemaKind::Decimal {
                        precision: 10,
                        scale: 2,
                    }),
                ),
                f(
                    "tags",
                    s(SchemaKind::Map {
                        key: Box::new(s(SchemaKind::String)),
                        value: Box::new(s(SchemaKind::Int64)),
                    }),
                ),
            ])),
            false,
        )
        .unwrap();
        assert_eq!(find(&c, "ts").kind, Kind::Timestamp);
        assert_eq!(find(&c, "day").kind, Kind::Date);
        assert_eq!(find(&c, "price").kind, Kind::Numeric);
        let tags = find(&c, "tags");
        assert_eq!((tags.kind, tags.mode), (Kind::Record, Mode::Repeated));
        assert_eq!(find(&tags.fields, "value").kind, Kind::Integer);
    }

    #[test]
    fn what_bigquery_cannot_hold_is_named_by_path() {
        let e = table_fields(
            &s(SchemaKind::Struct(vec![f(
                "c",
                s(SchemaKind::Struct(vec![f(
                    "m",
                    s(SchemaKind::Array(Box::new(s(SchemaKind::Array(Box::new(
                        s(SchemaKind::Int32),
                    )))))),
                )])),
            )])),
            false,
        )
        .unwrap_err();
        assert_eq!(e.path, "c.m");
        assert!(e.reason.starts_with("an array of arrays"), "{e}");
        assert!(table_fields(&s(SchemaKind::String), false).is_err());
    }

    #[test]
    fn new_columns_are_found_and_added_nullable() {
        let old = table_fields(&alert(), false).unwrap();
        let mut wider = alert();
        if let SchemaKind::Struct(fields) = &mut wider.kind {
            fields.push(f("schemavsn", s(SchemaKind::String)));
            if let SchemaKind::Struct(c) = &mut fields[2].schema.kind {
                c.push(f("drb", s(SchemaKind::Float32)));
            }
        }
        let new = table_fields(&wider, false).unwrap();
        assert_eq!(
            missing_columns(&old, &new),
            vec!["candidate.drb", "schemavsn"]
        );
        let merged = with_new_columns(&old, &new);
        assert!(missing_columns(&merged, &new).is_empty());
        assert_eq!(find(&merged, "schemavsn").mode, Mode::Nullable);
        assert_eq!(
            find(&find(&merged, "candidate").fields, "drb").mode,
            Mode::Nullable
        );
        assert_eq!(find(&merged, "candid").mode, Mode::Required, "kept as is");
    }

    #[test]
    fn a_changed_type_is_named_with_both_types() {
        let old = table_fields(&alert(), false).unwrap();
        let mut changed = alert();
        if let SchemaKind::Struct(fields) = &mut changed.kind {
            fields[1].schema = s(SchemaKind::String);
            if let SchemaKind::Struct(c) = &mut fields[2].schema.kind {
                c[0].schema = s(SchemaKind::Array(Box::new(s(SchemaKind::Float64))));
            }
        }
        let new = table_fields(&changed, false).unwrap();
        assert_eq!(
            changed_columns(&old, &new),
            vec![
                "candid: INTEGER in the table, STRING in the record",
                "candidate.jd: FLOAT in the table, REPEATED FLOAT in the record"
            ]
        );
        assert!(changed_columns(&old, &old).is_empty());
    }
}
