//! `Cast$Key` / `Cast$Value`: casts fields (`spec=field:type,…`) or the whole key or value
//! (`spec=type`) to int8, int16, int32, int64, float32, float64, boolean or string, with
//! Java's conversions (narrowing integers wrap, floats truncate, a number is `true` when it
//! is not zero, a string is `true` only when it is `true`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_connector_api::data::{Data, Field, Schema, SchemaKind};
use ferry_connector_api::java_text;
use ferry_connector_api::{ConfigError, SinkRecord};

use crate::keys::Keys;
use crate::value::{Parts, SchemaCache, Side, is_null, kind_of, require_map, require_struct};
use crate::values::date_text;
use crate::{Result, Transform, TransformError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
}

impl Target {
    fn parse(t: &str) -> Option<Target> {
        Some(match t.trim().to_ascii_lowercase().as_str() {
            "int8" => Target::Int8,
            "int16" => Target::Int16,
            "int32" => Target::Int32,
            "int64" => Target::Int64,
            "float32" => Target::Float32,
            "float64" => Target::Float64,
            "boolean" => Target::Boolean,
            "string" => Target::String,
            _ => return None,
        })
    }

    fn kind(self) -> SchemaKind {
        match self {
            Target::Int8 => SchemaKind::Int8,
            Target::Int16 => SchemaKind::Int16,
            Target::Int32 => SchemaKind::Int32,
            Target::Int64 => SchemaKind::Int64,
            Target::Float32 => SchemaKind::Float32,
            Target::Float64 => SchemaKind::Float64,
            Target::Boolean => SchemaKind::Boolean,
            Target::String => SchemaKind::String,
        }
    }
}

#[derive(Debug)]
enum Spec {
    Whole(Target),
    Fields(Vec<(String, Target)>),
}

#[derive(Debug)]
pub(crate) struct Cast {
    side: Side,
    spec: Spec,
    schemas: SchemaCache,
}

pub(crate) fn build(keys: &mut Keys<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
    let items = keys.required_list("spec", "field:type pairs, or one type for the whole value")?;
    let bad_type = |keys: &Keys<'_>, t: &str| {
        keys.invalid(
            "spec",
            format!(
                "`{}` is not a type Cast can cast to; use int8, int16, int32, int64, float32, float64, boolean or string",
                ferry_connector_api::text::shown(t)
            ),
        )
    };
    let mut whole = None;
    let mut fields = Vec::new();
    for item in &items {
        match item.split(':').collect::<Vec<_>>()[..] {
            [t] => whole = Some(Target::parse(t).ok_or_else(|| bad_type(keys, t))?),
            [f, t] => fields.push((
                f.trim().to_string(),
                Target::parse(t).ok_or_else(|| bad_type(keys, t))?,
            )),
            _ => {
                return Err(keys.invalid(
                    "spec",
                    format!(
                        "`{}` is not field:type or a type",
                        ferry_connector_api::text::shown(item)
                    ),
                ));
            }
        }
    }
    let spec = match whole {
        Some(t) if items.len() == 1 => Spec::Whole(t),
        Some(_) => {
            return Err(keys.invalid(
                "spec",
                "a type for the whole value cannot be mixed with field:type pairs; give one or the other",
            ));
        }
        None => Spec::Fields(fields),
    };
    keys.bool("replace.null.with.default", true)?;
    Ok(Box::new(Cast {
        side,
        spec,
        schemas: SchemaCache::default(),
    }))
}

impl Transform for Cast {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        if is_null(self.side.get(&record)) {
            return Ok(Some(record));
        }
        let mut parts = Parts::of(self.side.slot(&mut record).take());
        match (&self.spec, parts.schema.take()) {
            (Spec::Whole(t), schema) => {
                parts.data = cast(&parts.data, schema.as_deref(), *t)?;
                parts.schema = schema.map(|s| {
                    self.schemas.get(&s, || Schema {
                        optional: s.optional,
                        ..Schema::new(t.kind())
                    })
                });
            }
            (Spec::Fields(spec), None) => {
                for (k, v) in require_map(&mut parts.data, "cast")? {
                    if let Data::String(name) = k
                        && let Some((_, t)) = spec.iter().find(|(f, _)| f == name)
                    {
                        *v = cast(v, None, *t)?;
                    }
                }
            }
            (Spec::Fields(spec), Some(schema)) => {
                let old = require_struct(&schema, "cast")?;
                let mut fields: Vec<Field> = Vec::with_capacity(old.len());
                let values = match &mut parts.data {
                    Data::Struct(v) => v,
                    _ => {
                        return Err(TransformError::new(
                            "the struct's data does not follow its schema",
                        ));
                    }
                };
                for (f, v) in old.iter().zip(values.iter_mut()) {
                    match spec.iter().find(|(n, _)| *n == f.name) {
                        Some((_, t)) => {
                            *v = cast(v, Some(&f.schema), *t)?;
                            fields.push(Field {
                                name: f.name.clone(),
                                schema: Schema {
                                    optional: f.schema.optional,
                                    ..Schema::new(t.kind())
                                },
                                doc: f.doc.clone(),
                            });
                        }
                        None => fields.push(f.clone()),
                    }
                }
                parts.schema = Some(self.schemas.get(&schema, || Schema {
                    kind: SchemaKind::Struct(fields),
                    ..(*schema).clone()
                }));
            }
        }
        *self.side.slot(&mut record) = Some(parts.into_value());
        Ok(Some(record))
    }
}

/// A number of any kind, as Java's `Number` casts see it.
enum Num {
    Int(i64),
    Float(f64),
}

fn number(d: &Data, schema: Option<&Schema>) -> Option<Num> {
    Some(match d {
        Data::Int8(n) => Num::Int(i64::from(*n)),
        Data::Int16(n) => Num::Int(i64::from(*n)),
        Data::Int32(n) => Num::Int(i64::from(*n)),
        Data::Int64(n) => Num::Int(*n),
        Data::Float32(f) => Num::Float(f64::from(*f)),
        Data::Float64(f) => Num::Float(*f),
        Data::Boolean(b) => Num::Int(i64::from(*b)),
        // Connect's logical types cast as their underlying value: days, epoch milliseconds.
        Data::Date(days) => Num::Int(i64::from(*days)),
        Data::Timestamp(us) | Data::Time(us) => Num::Int(us.div_euclid(1000)),
        Data::Decimal(b) => {
            let unscaled = unscaled(b)?;
            let scale = decimal_scale(schema);
            // Java's `BigDecimal.longValue`: the integer part, wrapped to 64 bits.
            Num::Int((unscaled / 10i128.checked_pow(scale)?) as i64)
        }
        _ => return None,
    })
}

fn unscaled(b: &[u8]) -> Option<i128> {
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    let fill = if b[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[16 - b.len()..].copy_from_slice(b);
    Some(i128::from_be_bytes(buf))
}

fn decimal_scale(schema: Option<&Schema>) -> u32 {
    match schema.map(|s| &s.kind) {
        Some(SchemaKind::Decimal { scale, .. }) => *scale,
        _ => 0,
    }
}

fn cast(d: &Data, schema: Option<&Schema>, t: Target) -> Result<Data> {
    if *d == Data::Null {
        return Ok(Data::Null);
    }
    let unsupported = || {
        TransformError::new(format!(
            "Cast does not cast {} to {}",
            kind_of(d),
            crate::value::schema_kind_name(&t.kind()).to_ascii_lowercase()
        ))
    };
    if t == Target::String {
        return Ok(Data::String(to_string(d, schema)));
    }
    if let Data::String(s) = d {
        let s = s.trim();
        let bad = || {
            TransformError::new(format!(
                "`{}` is not {}",
                ferry_connector_api::text::shown(s),
                crate::value::schema_kind_name(&t.kind()).to_ascii_lowercase()
            ))
        };
        return Ok(match t {
            Target::Int8 => Data::Int8(s.parse().map_err(|_| bad())?),
            Target::Int16 => Data::Int16(s.parse().map_err(|_| bad())?),
            Target::Int32 => Data::Int32(s.parse().map_err(|_| bad())?),
            Target::Int64 => Data::Int64(s.parse().map_err(|_| bad())?),
            Target::Float32 => Data::Float32(s.parse().map_err(|_| bad())?),
            Target::Float64 => Data::Float64(s.parse().map_err(|_| bad())?),
            Target::Boolean => Data::Boolean(s.eq_ignore_ascii_case("true")),
            Target::String => Data::String(s.to_string()),
        });
    }
    let n = number(d, schema).ok_or_else(unsupported)?;
    // Java's narrowing: integers wrap, floats truncate towards zero (saturating at the
    // int/long bounds) and then wrap.
    Ok(match (t, n) {
        (Target::Boolean, Num::Int(i)) => Data::Boolean(i != 0),
        (Target::Boolean, Num::Float(f)) => Data::Boolean(f != 0.0),
        (Target::Int8, Num::Int(i)) => Data::Int8(i as i8),
        (Target::Int16, Num::Int(i)) => Data::Int16(i as i16),
        (Target::Int32, Num::Int(i)) => Data::Int32(i as i32),
        (Target::Int64, Num::Int(i)) => Data::Int64(i),
        (Target::Int8, Num::Float(f)) => Data::Int8(f as i32 as i8),
        (Target::Int16, Num::Float(f)) => Data::Int16(f as i32 as i16),
        (Target::Int32, Num::Float(f)) => Data::Int32(f as i32),
        (Target::Int64, Num::Float(f)) => Data::Int64(f as i64),
        (Target::Float32, Num::Int(i)) => Data::Float32(i as f32),
        (Target::Float64, Num::Int(i)) => Data::Float64(i as f64),
        (Target::Float32, Num::Float(f)) => Data::Float32(f as f32),
        (Target::Float64, Num::Float(f)) => Data::Float64(f),
        (Target::String, _) => return Err(unsupported()),
    })
}

/// What Connect's Cast writes for a value cast to string.
pub(crate) fn to_string(d: &Data, schema: Option<&Schema>) -> String {
    match d {
        Data::Null => "null".into(),
        Data::Boolean(b) => b.to_string(),
        Data::Int8(n) => n.to_string(),
        Data::Int16(n) => n.to_string(),
        Data::Int32(n) => n.to_string(),
        Data::Int64(n) => n.to_string(),
        Data::Float32(f) => java_text::float(*f),
        Data::Float64(f) => java_text::double(*f),
        Data::String(s) => s.clone(),
        Data::Bytes(b) => STANDARD.encode(b),
        Data::Decimal(b) => ferry_connector_api::decimal::plain(b, decimal_scale(schema)),
        // Connect's Cast formats dates with `Values.dateFormatFor`, as header values are.
        Data::Date(days) => date_text(i64::from(*days) * 86_400_000),
        Data::Timestamp(us) | Data::Time(us) => date_text(us.div_euclid(1000)),
        Data::Array(_) | Data::Map(_) | Data::Struct(_) => {
            String::from_utf8_lossy(&crate::json::to_json(schema, d)).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferry_connector_api::data::{Data, Schema, SchemaKind, TimeUnit};

    use crate::Transform;
    use crate::testing::*;

    const DAY_US: i64 = 86_400_000_000;

    /// Kafka: CastTest.testConfigEmpty, testConfigInvalidSchemaType,
    /// testConfigInvalidTargetType, testUnsupportedTargetType, testConfigInvalidMap,
    /// testConfigMixWholeAndFieldTransformation
    #[test]
    fn bad_specs_are_config_errors() {
        assert!(
            chain_err("Cast$Key", &[("spec", "")])
                .starts_with("missing required key `transforms.t.spec`")
        );
        for t in ["faketype", "array", "bytes"] {
            assert_eq!(
                chain_err("Cast$Key", &[("spec", &format!("foo:{t}"))]),
                format!(
                    "invalid value for `transforms.t.spec`: `{t}` is not a type Cast can cast to; use int8, int16, int32, int64, float32, float64, boolean or string"
                )
            );
        }
        assert_eq!(
            chain_err("Cast$Key", &[("spec", "foo:int8:extra")]),
            "invalid value for `transforms.t.spec`: `foo:int8:extra` is not field:type or a type"
        );
        assert_eq!(
            chain_err("Cast$Key", &[("spec", "foo:int8,int32")]),
            "invalid value for `transforms.t.spec`: a type for the whole value cannot be mixed with field:type pairs; give one or the other"
        );
    }

    /// Kafka: CastTest.castNullValueRecordWithSchema, castNullValueRecordSchemaless,
    /// castNullKeyRecordWithSchema, castNullKeyRecordSchemaless
    #[test]
    fn a_null_key_or_value_is_left_alone() {
        let t = chain("Cast$Value", &[("spec", "foo:int64")]);
        assert!(
            t.apply(record("topic", None))
                .unwrap()
                .unwrap()
                .value
                .is_none()
        );
        let t = chain("Cast$Key", &[("spec", "foo:int64")]);
        assert!(
            t.apply(record("topic", None))
                .unwrap()
                .unwrap()
                .key
                .is_none()
        );
    }

    /// Kafka: CastTest.castWholeRecordValueWithSchema{Int8,…,String},
    /// castWholeRecordKeyWithSchema, castWholeBigDecimalRecordValueWithSchemaString,
    /// castWholeDateRecordValueWithSchemaString
    #[test]
    fn casts_a_whole_schemad_value() {
        let cases = [
            ("int8", SchemaKind::Int8, Data::Int8(42)),
            ("int16", SchemaKind::Int16, Data::Int16(42)),
            ("int32", SchemaKind::Int32, Data::Int32(42)),
            ("int64", SchemaKind::Int64, Data::Int64(42)),
            ("float32", SchemaKind::Float32, Data::Float32(42.0)),
            ("float64", SchemaKind::Float64, Data::Float64(42.0)),
            ("boolean", SchemaKind::Boolean, Data::Boolean(true)),
            ("string", SchemaKind::String, Data::String("42".into())),
        ];
        for (spec, kind, expected) in cases {
            let t = chain("Cast$Value", &[("spec", spec)]);
            let out = t
                .apply(record(
                    "topic",
                    Some(schemad(Schema::new(SchemaKind::Int32), Data::Int32(42))),
                ))
                .unwrap()
                .unwrap();
            assert_eq!(schema(&out.value).kind, kind, "{spec}");
            assert_eq!(data(&out.value), &expected, "{spec}");
        }
        let t = chain("Cast$Value", &[("spec", "boolean")]);
        let out = t
            .apply(record(
                "t",
                Some(schemad(Schema::new(SchemaKind::Int32), Data::Int32(0))),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(data(&out.value), &Data::Boolean(false));
        let t = chain("Cast$Value", &[("spec", "string")]);
        let dec = Schema::new(SchemaKind::Decimal {
            precision: 2,
            scale: 0,
        });
        let out = t
            .apply(record(
                "t",
                Some(schemad(dec, Data::Decimal(Bytes::from_static(&[42])))),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(data(&out.value), &Data::String("42".into()));
        let ts = Schema::new(SchemaKind::Timestamp(TimeUnit::Millis));
        let out = t
            .apply(record(
                "t",
                Some(schemad(ts, Data::Timestamp(DAY_US + 1000))),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(
            data(&out.value),
            &Data::String("1970-01-02T00:00:00.001Z".into())
        );
    }

    /// Kafka: CastTest.castWholeRecordValueSchemaless{Int8,…,String},
    /// castWholeRecordKeySchemaless, castWholeRecordValueSchemalessUnsupportedType
    #[test]
    fn casts_a_whole_schemaless_value() {
        for (spec, text) in [
            ("int8", "42"),
            ("float64", "42.0"),
            ("boolean", "true"),
            ("string", "\"42\""),
        ] {
            let t = chain("Cast$Value", &[("spec", spec)]);
            let out = t
                .apply(record("t", Some(schemaless("42"))))
                .unwrap()
                .unwrap();
            assert_eq!(raw(&out.value), text, "{spec}");
        }
        let t = chain("Cast$Value", &[("spec", "int8")]);
        let out = t
            .apply(record("t", Some(schemaless("42"))))
            .unwrap()
            .unwrap();
        assert_eq!(data(&out.value), &Data::Int8(42));
        let err = t
            .apply(record("t", Some(schemaless(r#"["foo"]"#))))
            .unwrap_err();
        assert_eq!(err.reason, "Cast does not cast an array to int8");
    }

    /// Kafka: CastTest.castLogicalToPrimitive, castLogicalToString
    #[test]
    fn casts_logical_types() {
        let k = |kind| Schema::new(kind);
        let s = struct_schema(&[
            ("date_to_int32", k(SchemaKind::Date)),
            (
                "timestamp_to_int64",
                k(SchemaKind::Timestamp(TimeUnit::Millis)),
            ),
            ("time_to_int64", k(SchemaKind::Time(TimeUnit::Millis))),
            (
                "decimal_to_int32",
                k(SchemaKind::Decimal {
                    precision: 10,
                    scale: 0,
                }),
            ),
            (
                "timestamp_to_float64",
                k(SchemaKind::Timestamp(TimeUnit::Millis)),
            ),
            (
                "null_timestamp_to_int32",
                k(SchemaKind::Timestamp(TimeUnit::Millis)).optional(),
            ),
            ("time", k(SchemaKind::Time(TimeUnit::Millis))),
        ]);
        let v = Data::Struct(vec![
            Data::Date(1),
            Data::Timestamp(0),
            Data::Time(1000),
            // Integer.MAX_VALUE + 1
            Data::Decimal(Bytes::from_static(&[0x00, 0x80, 0, 0, 0])),
            Data::Timestamp(i64::MAX / 1000 * 1000),
            Data::Null,
            Data::Time(3_600_000_000),
        ]);
        let t = chain(
            "Cast$Value",
            &[(
                "spec",
                "date_to_int32:int32,timestamp_to_int64:int64,time_to_int64:int64,decimal_to_int32:int32,timestamp_to_float64:float64,null_timestamp_to_int32:int32,time:string",
            )],
        );
        let out = t.apply(record("t", Some(schemad(s, v)))).unwrap().unwrap();
        assert_eq!(
            data(&out.value),
            &Data::Struct(vec![
                Data::Int32(1),
                Data::Int64(0),
                Data::Int64(1),
                Data::Int32(i32::MIN),
                Data::Float64(9.223372036854776E15),
                Data::Null,
                // Connect: Values.dateFormatFor(time).format(time) (CastTest.castLogicalToString).
                Data::String("01:00:00.000Z".into()),
            ])
        );
        assert!(schema(&out.value).fields()[5].schema.optional);
    }

    /// Kafka: CastTest.castFieldsWithSchema
    #[test]
    fn casts_struct_fields() {
        let k = |kind| Schema::new(kind);
        let s = struct_schema(&[
            ("int8", k(SchemaKind::Int8)),
            ("int16", k(SchemaKind::Int16).optional()),
            ("int64", k(SchemaKind::Int64)),
            ("float32", k(SchemaKind::Float32)),
            ("float64", k(SchemaKind::Float64)),
            ("boolean", k(SchemaKind::Boolean)),
            ("string", k(SchemaKind::String)),
            ("date", k(SchemaKind::Date)),
            ("optional", k(SchemaKind::Float32).optional()),
            ("timestamp", k(SchemaKind::Timestamp(TimeUnit::Millis))),
            ("bytes", k(SchemaKind::Bytes)),
        ]);
        let v = Data::Struct(vec![
            Data::Int8(8),
            Data::Int16(16),
            Data::Int64(64),
            Data::Float32(32.0),
            Data::Float64(-64.0),
            Data::Boolean(true),
            Data::String("42".into()),
            Data::Date(1),
            Data::Null,
            Data::Timestamp(0),
            Data::Bytes(Bytes::from_static(&[
                0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10,
            ])),
        ]);
        let t = chain(
            "Cast$Value",
            &[(
                "spec",
                "int8:int16,int16:int32,int64:boolean,float32:float64,float64:boolean,boolean:int8,string:int32,date:string,optional:int32,bytes:string",
            )],
        );
        let out = t.apply(record("t", Some(schemad(s, v)))).unwrap().unwrap();
        assert_eq!(
            data(&out.value),
            &Data::Struct(vec![
                Data::Int16(8),
                Data::Int32(16),
                Data::Boolean(true),
                Data::Float64(32.0),
                Data::Boolean(true),
                Data::Int8(1),
                Data::Int32(42),
                Data::String("1970-01-02".into()),
                Data::Null,
                Data::Timestamp(0),
                Data::String("/ty6mHZUMhA=".into()),
            ])
        );
        let f = schema(&out.value).fields();
        assert!(f[1].schema.optional && f[8].schema.optional);
        assert_eq!(f[9].schema.kind, SchemaKind::Timestamp(TimeUnit::Millis));
    }

    /// Kafka: CastTest.castFieldsSchemaless
    #[test]
    fn casts_schemaless_fields() {
        let t = chain(
            "Cast$Value",
            &[(
                "spec",
                "int16:int32,int32:int64,int64:boolean,float32:float64,float64:boolean,boolean:int8,string:int32",
            )],
        );
        let v = r#"{"boolean":true,"float32":32.5,"float64":-64.0,"int16":16,"int32":32,"int64":64,"string":"42"}"#;
        let out = t.apply(record("t", Some(schemaless(v)))).unwrap().unwrap();
        assert_eq!(
            raw(&out.value),
            r#"{"boolean":1,"float32":32.5,"float64":true,"int16":16,"int32":32,"int64":true,"string":42}"#
        );
        assert_eq!(
            data(&out.value),
            &Data::Map(vec![
                (Data::String("boolean".into()), Data::Int8(1)),
                (Data::String("float32".into()), Data::Float64(32.5)),
                (Data::String("float64".into()), Data::Boolean(true)),
                (Data::String("int16".into()), Data::Int32(16)),
                (Data::String("int32".into()), Data::Int64(32)),
                (Data::String("int64".into()), Data::Boolean(true)),
                (Data::String("string".into()), Data::Int32(42)),
            ])
        );
    }

    #[test]
    fn floats_become_text_as_java_writes_them() {
        let double = |f| super::to_string(&Data::Float64(f), None);
        assert_eq!(double(42.0), "42.0");
        assert_eq!(double(1e10), "1.0E10");
        assert_eq!(double(1.5e-5), "1.5E-5");
        // A float outside 10⁻³..10⁷ prints with `float`'s digits (`Float.toString`), not
        // those of the double it widens to (`1.000000013351432E-10`).
        assert_eq!(super::to_string(&Data::Float32(1.0e-10), None), "1.0E-10");
        assert_eq!(super::to_string(&Data::Float32(3.0e38), None), "3.0E38");
        let dec = |scale| {
            Schema::new(SchemaKind::Decimal {
                precision: 10,
                scale,
            })
        };
        let text = |b: &'static [u8], scale| {
            super::to_string(&Data::Decimal(Bytes::from_static(b)), Some(&dec(scale)))
        };
        assert_eq!(text(&[0x04, 0xD2], 2), "12.34");
        assert_eq!(text(&[0xFF], 1), "-0.1");
        // Wider than 128 bits: still its digits (the copy this replaced printed base64).
        let two_pow_128 = &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            text(two_pow_128, 0),
            "340282366920938463463374607431768211456"
        );
    }
}
