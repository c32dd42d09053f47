//! `TimestampConverter$Key` / `$Value`: converts a timestamp (the whole key or value, or
//! one `field`) between text in a `format`, a Unix number in `unix.precision`, and
//! Connect's Date, Time and Timestamp, all in UTC.

use ferry_connector_api::data::{Data, Field, Schema, SchemaKind, TimeUnit};
use ferry_connector_api::{ConfigError, SinkRecord};

use crate::datefmt::DateFormat;
use crate::keys::Keys;
use crate::value::{
    Parts, SchemaCache, Side, is_null, kind_of, require_map, require_struct, schema_kind_name,
};
use crate::{Result, Transform, TransformError};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Unix,
    Date,
    Time,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precision {
    Seconds,
    Milliseconds,
    Microseconds,
    Nanoseconds,
}

#[derive(Debug)]
pub(crate) struct TimestampConverter {
    side: Side,
    field: Option<String>,
    target: Kind,
    format: Option<DateFormat>,
    precision: Precision,
    schemas: SchemaCache,
}

pub(crate) fn build(keys: &mut Keys<'_>, side: Side) -> Result<Box<dyn Transform>, ConfigError> {
    let target_text = keys.required(
        "target.type",
        "the type to convert to (string, unix, Date, Time or Timestamp)",
    )?;
    let target = match target_text.trim() {
        "string" => Kind::String,
        "unix" => Kind::Unix,
        "Date" => Kind::Date,
        "Time" => Kind::Time,
        "Timestamp" => Kind::Timestamp,
        other => {
            return Err(keys.invalid(
                "target.type",
                format!(
                    "`{}` is not string, unix, Date, Time or Timestamp",
                    ferry_connector_api::text::shown(other)
                ),
            ));
        }
    };
    let field = keys.optional("field");
    let format = keys.date_format("format", None)?;
    if target == Kind::String && format.is_none() {
        return Err(ConfigError::missing(
            keys.full("format"),
            format!(
                "TimestampConverter needs a date format (e.g. yyyy-MM-dd) to write string timestamps; set `{}`",
                keys.full("format")
            ),
        ));
    }
    let precision = match keys.optional("unix.precision").as_deref().map(str::trim) {
        None | Some("milliseconds") => Precision::Milliseconds,
        Some("seconds") => Precision::Seconds,
        Some("microseconds") => Precision::Microseconds,
        Some("nanoseconds") => Precision::Nanoseconds,
        Some(other) => {
            return Err(keys.invalid(
                "unix.precision",
                format!(
                    "`{}` is not seconds, milliseconds, microseconds or nanoseconds",
                    ferry_connector_api::text::shown(other)
                ),
            ));
        }
    };
    keys.bool("replace.null.with.default", true)?;
    Ok(Box::new(TimestampConverter {
        side,
        field,
        target,
        format,
        precision,
        schemas: SchemaCache::default(),
    }))
}

impl TimestampConverter {
    fn input_kind(&self, schema: Option<&Schema>, data: &Data) -> Result<Kind> {
        let kind = match schema.map(|s| &s.kind) {
            Some(SchemaKind::String) => Kind::String,
            Some(SchemaKind::Int64) => Kind::Unix,
            Some(SchemaKind::Date) => Kind::Date,
            Some(SchemaKind::Time(_)) => Kind::Time,
            Some(SchemaKind::Timestamp(_)) => Kind::Timestamp,
            Some(other) => {
                return Err(TransformError::new(format!(
                    "the schema {} is not a timestamp type TimestampConverter knows",
                    schema_kind_name(other)
                )));
            }
            None => match data {
                Data::String(_) => Kind::String,
                Data::Int64(_) | Data::Int32(_) => Kind::Unix,
                Data::Date(_) => Kind::Date,
                Data::Time(_) => Kind::Time,
                Data::Timestamp(_) => Kind::Timestamp,
                other => {
                    return Err(TransformError::new(format!(
                        "TimestampConverter cannot read a timestamp from {}",
                        kind_of(other)
                    )));
                }
            },
        };
        Ok(kind)
    }

    /// The instant a value stands for, in epoch milliseconds.
    fn millis(&self, kind: Kind, data: &Data) -> Result<i64> {
        let wrong =
            || TransformError::new(format!("the value is {}, not a timestamp", kind_of(data)));
        Ok(match (kind, data) {
            (Kind::String, Data::String(s)) => {
                let Some(f) = &self.format else {
                    return Err(TransformError::new(
                        "a string timestamp needs `format` to be read; set it on the transform",
                    ));
                };
                f.parse_text(s).map_err(TransformError::new)?
            }
            (Kind::Unix, Data::Int64(n)) => self.unix_millis(*n),
            (Kind::Unix, Data::Int32(n)) => self.unix_millis(i64::from(*n)),
            (Kind::Date, Data::Date(days)) => i64::from(*days) * DAY_MS,
            (Kind::Time, Data::Time(us)) | (Kind::Timestamp, Data::Timestamp(us)) => {
                us.div_euclid(1000)
            }
            _ => return Err(wrong()),
        })
    }

    fn unix_millis(&self, n: i64) -> i64 {
        match self.precision {
            Precision::Seconds => n.saturating_mul(1000),
            Precision::Milliseconds => n,
            Precision::Microseconds => n.div_euclid(1000),
            Precision::Nanoseconds => n.div_euclid(1_000_000),
        }
    }

    fn convert(&self, millis: i64) -> Result<Data> {
        Ok(match self.target {
            Kind::String => {
                let f = self
                    .format
                    .as_ref()
                    .ok_or_else(|| TransformError::new("no format to write the timestamp in"))?;
                Data::String(f.format(millis).map_err(TransformError::new)?)
            }
            Kind::Unix => Data::Int64(match self.precision {
                Precision::Seconds => millis.div_euclid(1000),
                Precision::Milliseconds => millis,
                Precision::Microseconds => millis.saturating_mul(1000),
                Precision::Nanoseconds => millis.saturating_mul(1_000_000),
            }),
            Kind::Date => Data::Date(
                i32::try_from(millis.div_euclid(DAY_MS))
                    .map_err(|_| TransformError::new("the date is out of range"))?,
            ),
            Kind::Time => Data::Time(millis.rem_euclid(DAY_MS) * 1000),
            Kind::Timestamp => Data::Timestamp(millis.saturating_mul(1000)),
        })
    }

    fn target_schema(&self, optional: bool) -> Schema {
        let kind = match self.target {
            Kind::String => SchemaKind::String,
            Kind::Unix => SchemaKind::Int64,
            Kind::Date => SchemaKind::Date,
            Kind::Time => SchemaKind::Time(TimeUnit::Millis),
            Kind::Timestamp => SchemaKind::Timestamp(TimeUnit::Millis),
        };
        Schema {
            optional,
            ..Schema::new(kind)
        }
    }

    fn one(&self, schema: Option<&Schema>, data: &Data) -> Result<Data> {
        if *data == Data::Null {
            return Ok(Data::Null);
        }
        let kind = self.input_kind(schema, data)?;
        self.convert(self.millis(kind, data)?)
    }
}

impl Transform for TimestampConverter {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        if is_null(self.side.get(&record)) {
            return Ok(Some(record));
        }
        let mut parts = Parts::of(self.side.slot(&mut record).take());
        match (&self.field, parts.schema.take()) {
            (None, schema) => {
                parts.data = self.one(schema.as_deref(), &parts.data)?;
                parts.schema =
                    schema.map(|s| self.schemas.get(&s, || self.target_schema(s.optional)));
            }
            (Some(name), None) => {
                for (k, v) in require_map(&mut parts.data, "converting timestamp formats")? {
                    if matches!(k, Data::String(s) if s == name) {
                        *v = self.one(None, v)?;
                    }
                }
            }
            (Some(name), Some(schema)) => {
                let old = require_struct(&schema, "converting timestamp formats")?;
                let Data::Struct(values) = &mut parts.data else {
                    return Err(TransformError::new(
                        "the struct's data does not follow its schema",
                    ));
                };
                let mut fields: Vec<Field> = Vec::with_capacity(old.len());
                for (f, v) in old.iter().zip(values.iter_mut()) {
                    if f.name == *name {
                        *v = self.one(Some(&f.schema), v)?;
                        fields.push(Field {
                            schema: self.target_schema(f.schema.optional),
                            ..f.clone()
                        });
                    } else {
                        fields.push(f.clone());
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

#[cfg(test)]
mod tests {
    use ferry_connector_api::data::{Data, Schema, SchemaKind, TimeUnit};

    use crate::Transform;
    use crate::testing::*;

    // Kafka's facts (TimestampConverterTest): one day and 1234 ms after the epoch, in UTC.
    const DATE_PLUS_TIME_MS: i64 = 86_401_234;
    const FMT: &str = "yyyy MM dd HH mm ss SSS z";
    const DATE_PLUS_TIME_STRING: &str = "1970 01 02 00 00 01 234 UTC";

    fn ts() -> Schema {
        Schema::new(SchemaKind::Timestamp(TimeUnit::Millis))
    }

    fn convert(
        keys: &[(&str, &str)],
        v: ferry_connector_api::Value,
    ) -> ferry_connector_api::SinkRecord {
        chain("TimestampConverter$Value", keys)
            .apply(record("t", Some(v)))
            .unwrap()
            .unwrap()
    }

    /// Kafka: TimestampConverterTest.testConfigNoTargetType, testConfigInvalidTargetType,
    /// testConfigInvalidUnixPrecision, testConfigMissingFormat, testConfigInvalidFormat
    #[test]
    fn bad_configurations_are_refused() {
        assert!(
            chain_err("TimestampConverter$Value", &[])
                .starts_with("missing required key `transforms.t.target.type`")
        );
        assert_eq!(
            chain_err("TimestampConverter$Value", &[("target.type", "invalid")]),
            "invalid value for `transforms.t.target.type`: `invalid` is not string, unix, Date, Time or Timestamp"
        );
        assert_eq!(
            chain_err(
                "TimestampConverter$Value",
                &[("target.type", "unix"), ("unix.precision", "invalid")]
            ),
            "invalid value for `transforms.t.unix.precision`: `invalid` is not seconds, milliseconds, microseconds or nanoseconds"
        );
        assert_eq!(
            chain_err("TimestampConverter$Value", &[("target.type", "string")]),
            "missing required key `transforms.t.format`: TimestampConverter needs a date format (e.g. yyyy-MM-dd) to write string timestamps; set `transforms.t.format`"
        );
        assert!(
            chain_err("TimestampConverter$Value", &[("target.type", "string"), ("format", "bad-format")])
                .starts_with("invalid value for `transforms.t.format`: the date format `bad-format` uses the pattern letter `b`")
        );
    }

    /// Kafka: TimestampConverterTest.testWithSchemaTimestampToDate/Time/Unix/String,
    /// testWithSchemaIdentity
    #[test]
    fn converts_a_schemad_timestamp() {
        let v = || schemad(ts(), Data::Timestamp(DATE_PLUS_TIME_MS * 1000));
        let out = convert(&[("target.type", "Date")], v());
        assert_eq!(schema(&out.value).kind, SchemaKind::Date);
        assert_eq!(data(&out.value), &Data::Date(1));
        let out = convert(&[("target.type", "Time")], v());
        assert_eq!(schema(&out.value).kind, SchemaKind::Time(TimeUnit::Millis));
        assert_eq!(data(&out.value), &Data::Time(1_234_000));
        let out = convert(&[("target.type", "unix")], v());
        assert_eq!(schema(&out.value).kind, SchemaKind::Int64);
        assert_eq!(data(&out.value), &Data::Int64(DATE_PLUS_TIME_MS));
        let out = convert(&[("target.type", "string"), ("format", FMT)], v());
        assert_eq!(
            data(&out.value),
            &Data::String(DATE_PLUS_TIME_STRING.into())
        );
        let out = convert(&[("target.type", "Timestamp")], v());
        assert_eq!(data(&out.value), &Data::Timestamp(DATE_PLUS_TIME_MS * 1000));
    }

    /// Kafka: TimestampConverterTest.testWithSchemaStringToTimestamp,
    /// testWithSchemaUnixToTimestamp, testWithSchemaDateToTimestamp, testWithSchemaTimeToTimestamp
    #[test]
    fn converts_to_a_timestamp() {
        let s = Schema::new(SchemaKind::String);
        let out = convert(
            &[("target.type", "Timestamp"), ("format", FMT)],
            schemad(s, Data::String(DATE_PLUS_TIME_STRING.into())),
        );
        assert_eq!(data(&out.value), &Data::Timestamp(DATE_PLUS_TIME_MS * 1000));
        let out = convert(
            &[("target.type", "Timestamp")],
            schemad(
                Schema::new(SchemaKind::Int64),
                Data::Int64(DATE_PLUS_TIME_MS),
            ),
        );
        assert_eq!(schema(&out.value), &ts());
        assert_eq!(data(&out.value), &Data::Timestamp(DATE_PLUS_TIME_MS * 1000));
        let out = convert(
            &[("target.type", "Timestamp")],
            schemad(Schema::new(SchemaKind::Date), Data::Date(1)),
        );
        assert_eq!(data(&out.value), &Data::Timestamp(86_400_000_000));
        let out = convert(
            &[("target.type", "Timestamp")],
            schemad(
                Schema::new(SchemaKind::Time(TimeUnit::Millis)),
                Data::Time(1_000_000),
            ),
        );
        assert_eq!(data(&out.value), &Data::Timestamp(1_000_000));
    }

    /// Kafka: TimestampConverterTest's unix.precision facts: 86401 s, 86 401 234 123 µs and
    /// 86 401 234 123 456 ns all read as 86 401 234 ms (finer digits truncated), and
    /// a millisecond timestamp written in each precision.
    #[test]
    fn unix_precisions() {
        for (p, n, back) in [
            ("seconds", 86_401i64, 86_401i64),
            ("microseconds", 86_401_234_123, 86_401_234_000),
            ("nanoseconds", 86_401_234_123_456, 86_401_234_000_000),
        ] {
            let expected_ms = if p == "seconds" {
                86_401_000
            } else {
                DATE_PLUS_TIME_MS
            };
            let out = convert(
                &[("target.type", "Timestamp"), ("unix.precision", p)],
                schemaless(&n.to_string()),
            );
            assert_eq!(
                data(&out.value),
                &Data::Timestamp(expected_ms * 1000),
                "{p}"
            );
            let out = convert(
                &[("target.type", "unix"), ("unix.precision", p)],
                schemad(ts(), Data::Timestamp(DATE_PLUS_TIME_MS * 1000)),
            );
            assert_eq!(data(&out.value), &Data::Int64(back), "{p}");
        }
    }

    /// Kafka: TimestampConverterTest.testSchemalessStringToTimestamp, testSchemalessFieldConversion,
    /// testWithSchemaFieldConversion, testSchemalessNullValueTo*/testWithSchemaNullValueTo*
    #[test]
    fn converts_one_field() {
        let out = convert(
            &[
                ("target.type", "string"),
                ("format", "yyyy-MM-dd"),
                ("field", "ts"),
            ],
            schemaless(&format!(r#"{{"other":"test","ts":{DATE_PLUS_TIME_MS}}}"#)),
        );
        assert_eq!(raw(&out.value), r#"{"other":"test","ts":"1970-01-02"}"#);
        let s = struct_schema(&[
            ("ts", ts().optional()),
            ("other", Schema::new(SchemaKind::String)),
        ]);
        let out = convert(
            &[("target.type", "Date"), ("field", "ts")],
            schemad(
                s.clone(),
                Data::Struct(vec![
                    Data::Timestamp(DATE_PLUS_TIME_MS * 1000),
                    Data::String("x".into()),
                ]),
            ),
        );
        assert_eq!(
            schema(&out.value).fields()[0].schema,
            Schema::new(SchemaKind::Date).optional()
        );
        assert_eq!(
            data(&out.value),
            &Data::Struct(vec![Data::Date(1), Data::String("x".into())])
        );
        let out = convert(
            &[("target.type", "Date"), ("field", "ts")],
            schemad(s, Data::Struct(vec![Data::Null, Data::String("x".into())])),
        );
        assert_eq!(
            data(&out.value),
            &Data::Struct(vec![Data::Null, Data::String("x".into())])
        );
        let err = chain(
            "TimestampConverter$Value",
            &[("target.type", "Date"), ("format", "yyyy")],
        )
        .apply(record("t", Some(schemaless("\"20x\""))))
        .unwrap_err();
        assert_eq!(err.reason, "`20x` does not match the date format");
    }
}
