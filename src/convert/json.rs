//! `JsonConverter`, reading what Kafka Connect's JsonConverter writes: with
//! `schemas.enable=true` each record is an envelope `{"schema": <Connect schema>,
//! "payload": <value>}`; without, any JSON value, read without a schema.
//!
//! JSON objects read without a schema become maps whose entries are in key order (serde_json
//! keeps objects sorted), not necessarily the order of the bytes.

use std::sync::Arc;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use ferry_connector_api::data::{Data, Field, Schema, SchemaKind, Structured, TimeUnit};
use serde::Deserialize;
use serde_json::Value as Json;
use serde_json::value::RawValue;

use super::{Hint, JsonSettings, Mismatch, SchemaCache, join, kind_name, place};

const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
const DATE: &str = "org.apache.kafka.connect.data.Date";
const TIME: &str = "org.apache.kafka.connect.data.Time";
const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
/// A Connect decimal's precision is optional (`connect.decimal.precision`); without it,
/// Confluent's AvroData assumes 64, and so does ferry.
const DEFAULT_DECIMAL_PRECISION: u32 = 64;

/// Jackson's base64: the standard alphabet, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a record is not usable JSON.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum JsonError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error(
        "with schemas.enable=true a record must be Kafka Connect's envelope, an object with exactly the fields `schema` and `payload`; this one is {0}"
    )]
    NoEnvelope(String),
    #[error("the envelope's schema: {0}")]
    Schema(String),
    #[error("the payload does not follow the envelope's schema: {0}")]
    Payload(String),
}

impl JsonError {
    pub(super) fn hint(&self) -> Hint {
        match self {
            JsonError::NotJson(_) => Hint::PassThrough,
            JsonError::NoEnvelope(_) => Hint::DisableSchemas,
            JsonError::Schema(_) | JsonError::Payload(_) => Hint::None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    /// Kept as text: the cache key, parsed only when new.
    #[serde(borrow)]
    schema: &'a RawValue,
    payload: Json,
}

/// A parsed envelope schema: ferry's schema for the sink, and the defaults beside it.
#[derive(Debug)]
struct Parsed {
    schema: Arc<Schema>,
    defaults: Defaults,
}

/// The `default`s of a schema and its children (array items; map keys and values; struct
/// fields in order), which ferry's schema type does not carry.
#[derive(Debug)]
struct Defaults {
    default: Option<Json>,
    children: Vec<Defaults>,
}

static NO_DEFAULTS: Defaults = Defaults {
    default: None,
    children: Vec::new(),
};

impl Defaults {
    fn child(&self, i: usize) -> &Defaults {
        // Built together with the schema, so the child exists.
        self.children.get(i).unwrap_or(&NO_DEFAULTS)
    }
}

/// A task's JSON decoder, with its envelope-schema cache.
#[derive(Debug)]
pub(crate) struct JsonDecoder {
    settings: JsonSettings,
    /// Keyed by the schema's text as written.
    schemas: SchemaCache<Result<Parsed, JsonError>>,
}

impl JsonDecoder {
    pub(crate) fn new(settings: JsonSettings) -> Self {
        Self {
            settings,
            schemas: SchemaCache::new(settings.cache_size),
        }
    }

    /// Decodes one record's bytes. `None` is a null value: what Kafka's JsonConverter reads
    /// from a value with no JSON in it (zero bytes, or whitespace only) with
    /// `schemas.enable=false` — Jackson reads no content as a missing node, which the
    /// converter turns into a null value, so the record reaches the sink as a tombstone
    /// does. With `schemas.enable=true` such a value is not an envelope, an error there too.
    pub(crate) fn decode(&mut self, raw: Bytes) -> Result<Option<Structured>, JsonError> {
        if raw
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            return if self.settings.schemas_enable {
                Err(JsonError::NoEnvelope(if raw.is_empty() {
                    "empty".into()
                } else {
                    "only whitespace".into()
                }))
            } else {
                Ok(None)
            };
        }
        self.decode_value(raw).map(Some)
    }

    fn decode_value(&mut self, raw: Bytes) -> Result<Structured, JsonError> {
        if !self.settings.schemas_enable {
            let json: Json =
                serde_json::from_slice(&raw).map_err(|e| JsonError::NotJson(e.to_string()))?;
            return Ok(Structured {
                schema: None,
                data: schemaless(json),
                raw,
            });
        }
        let envelope: Envelope<'_> =
            serde_json::from_slice(&raw).map_err(|_| not_an_envelope(&raw))?;
        let text = envelope.schema.get();
        if text == "null" {
            return Ok(Structured {
                schema: None,
                data: schemaless(envelope.payload),
                raw,
            });
        }
        let parsed = self
            .schemas
            .get_or_insert_with(text.as_bytes(), || parse_schema_text(text))
            .as_ref()
            .map_err(Clone::clone)?;
        let payload = Payload {
            replace_null_with_default: self.settings.replace_null_with_default,
        };
        let data = payload
            .data(envelope.payload, &parsed.schema, &parsed.defaults)
            .map_err(|e| JsonError::Payload(e.to_string()))?;
        Ok(Structured {
            schema: Some(parsed.schema.clone()),
            data,
            raw,
        })
    }
}

/// Says what a record that is not an envelope is instead.
fn not_an_envelope(raw: &[u8]) -> JsonError {
    let json: Json = match serde_json::from_slice(raw) {
        Ok(json) => json,
        Err(e) => return JsonError::NotJson(e.to_string()),
    };
    JsonError::NoEnvelope(match json {
        Json::Object(fields) => {
            const SHOWN: usize = 5;
            let mut names: Vec<String> = fields
                .keys()
                .take(SHOWN)
                .map(|k| format!("`{k}`"))
                .collect();
            if fields.len() > SHOWN {
                names.push(format!("… ({} fields)", fields.len()));
            }
            if names.is_empty() {
                "an empty object".into()
            } else {
                format!("an object with {}", names.join(", "))
            }
        }
        other => json_kind(&other).into(),
    })
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Any JSON, without a schema: integers → int64, other numbers → float64, objects → maps
/// with string keys.
fn schemaless(v: Json) -> Data {
    match v {
        Json::Null => Data::Null,
        Json::Bool(b) => Data::Boolean(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Data::Int64(i),
            // Integers beyond int64 too: as Jackson's `doubleValue`.
            None => n.as_f64().map_or(Data::Null, Data::Float64),
        },
        Json::String(s) => Data::String(s),
        Json::Array(items) => Data::Array(items.into_iter().map(schemaless).collect()),
        Json::Object(fields) => Data::Map(
            fields
                .into_iter()
                .map(|(k, v)| (Data::String(k), schemaless(v)))
                .collect(),
        ),
    }
}

fn parse_schema_text(text: &str) -> Result<Parsed, JsonError> {
    let json: Json = serde_json::from_str(text).map_err(|e| JsonError::Schema(e.to_string()))?;
    let (schema, defaults) = parse_schema(&json, "").map_err(JsonError::Schema)?;
    Ok(Parsed {
        schema: Arc::new(schema),
        defaults,
    })
}

/// A `parameters` entry as a number (Connect writes parameters as strings).
fn parameter(
    schema: &serde_json::Map<String, Json>,
    key: &str,
    path: &str,
) -> Result<Option<u32>, String> {
    let value = schema.get("parameters").and_then(|p| p.get(key));
    let number = match value {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::String(s)) => s.trim().parse::<u32>().ok(),
        Some(Json::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(_) => None,
    };
    number.map(Some).ok_or_else(|| {
        format!(
            "{}: parameters.{key} is not a non-negative number",
            place(path)
        )
    })
}

/// Parses a Connect JSON schema (`JsonConverter.asConnectSchema`).
fn parse_schema(v: &Json, path: &str) -> Result<(Schema, Defaults), String> {
    let Json::Object(o) = v else {
        return Err(format!(
            "{}: a schema must be an object, not {}",
            place(path),
            json_kind(v)
        ));
    };
    let Some(ty) = o.get("type").and_then(Json::as_str) else {
        return Err(format!("{}: the schema has no `type`", place(path)));
    };
    let optional = match o.get("optional") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(format!("{}: `optional` is not true or false", place(path))),
    };
    let text = |key: &str| o.get(key).and_then(Json::as_str).map(str::to_string);
    let name = text("name");
    let doc = text("doc");
    let mut children = Vec::new();
    let mut child = |v: Option<&Json>, key: &str, child_path: String| match v {
        Some(v) => {
            let (schema, defaults) = parse_schema(v, &child_path)?;
            children.push(defaults);
            Ok(Box::new(schema))
        }
        None => Err(format!(
            "{}: a schema of type {ty} needs `{key}`",
            place(path)
        )),
    };
    let kind = match (ty, name.as_deref()) {
        ("bytes", Some(DECIMAL)) => SchemaKind::Decimal {
            precision: parameter(o, "connect.decimal.precision", path)?
                .unwrap_or(DEFAULT_DECIMAL_PRECISION),
            scale: parameter(o, "scale", path)?
                .ok_or_else(|| format!("{}: a Decimal needs parameters.scale", place(path)))?,
        },
        ("int32", Some(DATE)) => SchemaKind::Date,
        ("int32", Some(TIME)) => SchemaKind::Time(TimeUnit::Millis),
        ("int64", Some(TIMESTAMP)) => SchemaKind::Timestamp(TimeUnit::Millis),
        ("boolean", _) => SchemaKind::Boolean,
        ("int8", _) => SchemaKind::Int8,
        ("int16", _) => SchemaKind::Int16,
        ("int32", _) => SchemaKind::Int32,
        ("int64", _) => SchemaKind::Int64,
        ("float", _) => SchemaKind::Float32,
        ("double", _) => SchemaKind::Float64,
        ("string", _) => SchemaKind::String,
        ("bytes", _) => SchemaKind::Bytes,
        ("array", _) => SchemaKind::Array(child(o.get("items"), "items", format!("{path}[]"))?),
        ("map", _) => SchemaKind::Map {
            key: child(o.get("keys"), "keys", format!("{path}{{key}}"))?,
            value: child(o.get("values"), "values", format!("{path}{{}}"))?,
        },
        ("struct", _) => {
            let Some(Json::Array(fields)) = o.get("fields") else {
                return Err(format!(
                    "{}: a struct schema needs a `fields` array",
                    place(path)
                ));
            };
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                let Some(field) = f.get("field").and_then(Json::as_str) else {
                    return Err(format!(
                        "{}: a struct field has no `field` name",
                        place(path)
                    ));
                };
                let (schema, defaults) = parse_schema(f, &join(path, field))?;
                children.push(defaults);
                out.push(Field {
                    name: field.to_string(),
                    doc: schema.doc.clone(),
                    schema,
                });
            }
            SchemaKind::Struct(out)
        }
        (other, _) => {
            return Err(format!(
                "{}: unknown type `{other}` (Connect's are boolean, int8, int16, int32, int64, float, double, string, bytes, array, map, struct)",
                place(path)
            ));
        }
    };
    let schema = Schema {
        kind,
        optional,
        name,
        doc,
    };
    let default = o.get("default").filter(|d| !d.is_null()).cloned();
    Ok((schema, Defaults { default, children }))
}

/// Reads a payload by its schema (`JsonConverter.convertToConnect`).
struct Payload {
    replace_null_with_default: bool,
}

fn integer<T: TryFrom<i64>>(n: &serde_json::Number, kind: &SchemaKind) -> Result<T, Mismatch> {
    n.as_i64()
        .and_then(|i| T::try_from(i).ok())
        .ok_or_else(|| Mismatch::new(format!("{n} is not an {}", kind_name(kind))))
}

impl Payload {
    fn data(&self, v: Json, s: &Schema, defaults: &Defaults) -> Result<Data, Mismatch> {
        use SchemaKind as K;
        if v.is_null() {
            return match &defaults.default {
                Some(d) if self.replace_null_with_default => self.data(d.clone(), s, defaults),
                _ if s.optional => Ok(Data::Null),
                _ => Err(Mismatch::new(format!(
                    "null for a required {}",
                    kind_name(&s.kind)
                ))),
            };
        }
        Ok(match (&s.kind, v) {
            (K::Boolean, Json::Bool(b)) => Data::Boolean(b),
            (K::Int8, Json::Number(n)) => Data::Int8(integer(&n, &s.kind)?),
            (K::Int16, Json::Number(n)) => Data::Int16(integer(&n, &s.kind)?),
            (K::Int32, Json::Number(n)) => Data::Int32(integer(&n, &s.kind)?),
            (K::Int64, Json::Number(n)) => Data::Int64(integer(&n, &s.kind)?),
            (K::Date, Json::Number(n)) => Data::Date(integer(&n, &s.kind)?),
            (K::Time(_), Json::Number(n)) => {
                Data::Time(i64::from(integer::<i32>(&n, &s.kind)?) * 1000)
            }
            (K::Timestamp(_), Json::Number(n)) => {
                let ms: i64 = integer(&n, &s.kind)?;
                Data::Timestamp(ms.checked_mul(1000).ok_or_else(|| {
                    Mismatch::new(format!("timestamp {ms} ms does not fit in microseconds"))
                })?)
            }
            (K::Float32, Json::Number(n)) => {
                n.as_f64().map_or(Data::Null, |f| Data::Float32(f as f32))
            }
            (K::Float64, Json::Number(n)) => n.as_f64().map_or(Data::Null, Data::Float64),
            (K::String, Json::String(t)) => Data::String(t),
            (K::Bytes, Json::String(t)) => Data::Bytes(base64(&t)?),
            (K::Decimal { .. }, Json::String(t)) => Data::Decimal(base64(&t)?),
            // decimal.format=NUMERIC.
            (K::Decimal { scale, .. }, Json::Number(n)) => {
                Data::Decimal(unscaled(&n.to_string(), *scale).map_err(Mismatch::new)?)
            }
            (K::Array(item), Json::Array(items)) => Data::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        self.data(v, item, defaults.child(0))
                            .map_err(|e| e.at(format!("[{i}]")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            // String keys: an object. Other keys: an array of [key, value] pairs.
            (K::Map { key, value }, Json::Object(entries))
                if matches!(key.kind, SchemaKind::String) =>
            {
                Data::Map(
                    entries
                        .into_iter()
                        .map(|(k, v)| {
                            let d = self
                                .data(v, value, defaults.child(1))
                                .map_err(|e| e.at(format!("{{{k}}}")))?;
                            Ok((Data::String(k), d))
                        })
                        .collect::<Result<_, Mismatch>>()?,
                )
            }
            (K::Map { key, value }, Json::Array(pairs)) => Data::Map(
                pairs
                    .into_iter()
                    .enumerate()
                    .map(|(i, pair)| {
                        let at = |e: Mismatch| e.at(format!("[{i}]"));
                        let Json::Array(pair) = pair else {
                            return Err(at(Mismatch::new("not a [key, value] pair".into())));
                        };
                        let [k, v]: [Json; 2] = pair
                            .try_into()
                            .map_err(|_| at(Mismatch::new("not a [key, value] pair".into())))?;
                        let k = self.data(k, key, defaults.child(0)).map_err(at)?;
                        let v = self.data(v, value, defaults.child(1)).map_err(at)?;
                        Ok((k, v))
                    })
                    .collect::<Result<_, Mismatch>>()?,
            ),
            (K::Struct(fields), Json::Object(mut values)) => Data::Struct(
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let v = values.remove(&f.name).unwrap_or(Json::Null);
                        self.data(v, &f.schema, defaults.child(i))
                            .map_err(|e| e.at(f.name.clone()))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (kind, v) => {
                return Err(Mismatch::new(format!(
                    "{} where the schema has {}",
                    json_kind(&v),
                    kind_name(kind)
                )));
            }
        })
    }
}

fn base64(text: &str) -> Result<Bytes, Mismatch> {
    BASE64
        .decode(text)
        .map(Bytes::from)
        .map_err(|e| Mismatch::new(format!("not base64: {e}")))
}

/// A decimal number's text → its unscaled value at `scale`, as minimal two's-complement
/// big-endian bytes (what Connect's `Decimal` holds).
fn unscaled(text: &str, scale: u32) -> Result<Bytes, String> {
    let bad =
        || format!("{text} is not a decimal with at most {scale} decimal places within 38 digits");
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().map_err(|_| bad())?),
        None => (text, 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    // value = digits × 10^(exponent − |frac|); unscaled = value × 10^scale.
    let shift = exponent - frac.len() as i64 + i64::from(scale);
    if shift < 0 {
        // Only zeros may be cut: no rounding.
        let cut = usize::try_from(-shift).map_err(|_| bad())?;
        if cut > digits.len() || digits[digits.len() - cut..].iter().any(|d| *d != b'0') {
            return Err(bad());
        }
        digits.truncate(digits.len() - cut);
    }
    let mut v: i128 = 0;
    for d in &digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(d - b'0')))
            .ok_or_else(bad)?;
    }
    for _ in 0..shift.max(0) {
        v = v.checked_mul(10).ok_or_else(bad)?;
    }
    if negative {
        v = -v;
    }
    let bytes = v.to_be_bytes();
    // The shortest form that keeps the sign: drop leading bytes that only extend it.
    let mut start = 0;
    while start < bytes.len() - 1 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    Ok(Bytes::copy_from_slice(&bytes[start..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder(schemas_enable: bool) -> JsonDecoder {
        JsonDecoder::new(JsonSettings {
            schemas_enable,
            ..Default::default()
        })
    }

    fn decode(d: &mut JsonDecoder, text: &str) -> Result<Structured, JsonError> {
        d.decode(Bytes::copy_from_slice(text.as_bytes()))
            .map(|s| s.expect("a value, not a null"))
    }

    #[test]
    fn an_empty_value_is_null_without_schemas_and_no_envelope_with_them() {
        // Kafka's JsonConverterTest.emptyBytesToConnect: schemas.enable=false, "" →
        // SchemaAndValue.NULL. With schemas.enable=true, Jackson's missing node is not an
        // envelope and Kafka's converter throws.
        for empty in ["", " ", "\r\n\t "] {
            let got = decoder(false)
                .decode(Bytes::copy_from_slice(empty.as_bytes()))
                .unwrap();
            assert!(got.is_none(), "{empty:?}: {got:?}");
        }
        let err = decoder(true).decode(Bytes::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "with schemas.enable=true a record must be Kafka Connect's envelope, an object with exactly the fields `schema` and `payload`; this one is empty"
        );
        assert_eq!(err.hint(), Hint::DisableSchemas);
        let err = decoder(true).decode(Bytes::from_static(b"  ")).unwrap_err();
        assert!(
            err.to_string().ends_with("this one is only whitespace"),
            "{err}"
        );
        // The JSON text `null` is still a JSON null, as before.
        assert_eq!(
            decode(&mut decoder(false), "null").unwrap().data,
            Data::Null
        );
    }

    #[test]
    fn schemaless_json_reads_as_data_without_a_schema() {
        let s = decode(
            &mut decoder(false),
            r#"{"id": "ZTF18", "n": 3, "big": 18446744073709551615, "mag": 18.5, "ok": true, "none": null, "tags": ["a", 1]}"#,
        )
        .unwrap();
        assert_eq!(s.schema, None);
        let s_ = |t: &str| Data::String(t.into());
        assert_eq!(
            s.data,
            Data::Map(vec![
                (s_("big"), Data::Float64(18446744073709551615.0)),
                (s_("id"), s_("ZTF18")),
                (s_("mag"), Data::Float64(18.5)),
                (s_("n"), Data::Int64(3)),
                (s_("none"), Data::Null),
                (s_("ok"), Data::Boolean(true)),
                (s_("tags"), Data::Array(vec![s_("a"), Data::Int64(1)])),
            ])
        );
        assert_eq!(
            decode(&mut decoder(false), "\"text\"").unwrap().data,
            s_("text")
        );
        let err = decode(&mut decoder(false), "Obj\u{1}").unwrap_err();
        assert!(err.to_string().starts_with("not JSON: "), "{err}");
        assert_eq!(err.hint(), Hint::PassThrough);
    }

    /// What Kafka Connect's JsonConverter writes for a struct with every kind of field.
    const ENVELOPE: &str = r#"{"schema": {"type": "struct", "name": "alert", "optional": false, "fields": [
        {"field": "i8", "type": "int8"},
        {"field": "i16", "type": "int16"},
        {"field": "i32", "type": "int32", "doc": "an int"},
        {"field": "i64", "type": "int64"},
        {"field": "f", "type": "float"},
        {"field": "d", "type": "double"},
        {"field": "b", "type": "boolean"},
        {"field": "s", "type": "string", "optional": true},
        {"field": "raw", "type": "bytes"},
        {"field": "list", "type": "array", "items": {"type": "int32"}},
        {"field": "m", "type": "map", "keys": {"type": "string"}, "values": {"type": "int64"}},
        {"field": "im", "type": "map", "keys": {"type": "int32"}, "values": {"type": "string"}},
        {"field": "inner", "type": "struct", "optional": true, "fields": [{"field": "x", "type": "int32", "default": 7}]},
        {"field": "price", "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "parameters": {"scale": "2"}},
        {"field": "price2", "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "parameters": {"scale": "2", "connect.decimal.precision": "10"}},
        {"field": "at", "type": "int64", "name": "org.apache.kafka.connect.data.Timestamp"},
        {"field": "day", "type": "int32", "name": "org.apache.kafka.connect.data.Date"},
        {"field": "tod", "type": "int32", "name": "org.apache.kafka.connect.data.Time"},
        {"field": "dflt", "type": "string", "default": "none given"}
      ]},
      "payload": {"i8": -8, "i16": 300, "i32": 70000, "i64": 1703222170415010089, "f": 1.5, "d": 2459457.7221759,
        "b": false, "s": null, "raw": "AQID", "list": [1, 2], "m": {"k": 5}, "im": [[1, "one"], [2, "two"]],
        "inner": {"x": null}, "price": "z8c=", "price2": -123.45, "at": 1630454400123, "day": 18871,
        "tod": 3600000, "dflt": null, "ignored": 1}}"#;

    #[test]
    fn an_envelope_reads_with_its_schema() {
        let s = decode(&mut decoder(true), ENVELOPE).unwrap();
        let schema = s.schema.as_ref().unwrap();
        assert_eq!(schema.name.as_deref(), Some("alert"));
        let f = schema.fields();
        let kind = |i: usize| &f[i].schema.kind;
        assert_eq!(f[2].doc.as_deref(), Some("an int"));
        assert_eq!(
            [kind(0), kind(1), kind(2), kind(3), kind(4), kind(5)],
            [
                &SchemaKind::Int8,
                &SchemaKind::Int16,
                &SchemaKind::Int32,
                &SchemaKind::Int64,
                &SchemaKind::Float32,
                &SchemaKind::Float64
            ]
        );
        assert!(f[7].schema.optional && !f[6].schema.optional);
        assert_eq!(
            kind(13),
            &SchemaKind::Decimal {
                precision: 64,
                scale: 2
            }
        );
        assert_eq!(
            kind(14),
            &SchemaKind::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(kind(15), &SchemaKind::Timestamp(TimeUnit::Millis));
        assert_eq!(kind(16), &SchemaKind::Date);
        assert_eq!(kind(17), &SchemaKind::Time(TimeUnit::Millis));
        let s_ = |t: &str| Data::String(t.into());
        // -12345, the unscaled -123.45, in two bytes.
        let minus = Data::Decimal(Bytes::from_static(&[0xcf, 0xc7]));
        assert_eq!(
            s.data,
            Data::Struct(vec![
                Data::Int8(-8),
                Data::Int16(300),
                Data::Int32(70000),
                Data::Int64(1_703_222_170_415_010_089),
                Data::Float32(1.5),
                Data::Float64(2459457.7221759),
                Data::Boolean(false),
                Data::Null,
                Data::Bytes(Bytes::from_static(&[1, 2, 3])),
                Data::Array(vec![Data::Int32(1), Data::Int32(2)]),
                Data::Map(vec![(s_("k"), Data::Int64(5))]),
                Data::Map(vec![
                    (Data::Int32(1), s_("one")),
                    (Data::Int32(2), s_("two"))
                ]),
                Data::Struct(vec![Data::Int32(7)]),
                minus.clone(),
                minus,
                Data::Timestamp(1_630_454_400_123_000),
                Data::Date(18871),
                Data::Time(3_600_000_000),
                s_("none given"),
            ])
        );
    }

    #[test]
    fn envelopes_with_the_same_schema_share_it() {
        let mut d = decoder(true);
        let a = decode(&mut d, r#"{"schema": {"type": "int32"}, "payload": 1}"#).unwrap();
        let b = decode(&mut d, r#"{"schema": {"type": "int32"}, "payload": 2}"#).unwrap();
        assert!(Arc::ptr_eq(
            a.schema.as_ref().unwrap(),
            b.schema.as_ref().unwrap()
        ));
        assert_eq!(b.data, Data::Int32(2));
        let c = decode(&mut d, r#"{"schema": {"type": "int64"}, "payload": 2}"#).unwrap();
        assert!(!Arc::ptr_eq(
            a.schema.as_ref().unwrap(),
            c.schema.as_ref().unwrap()
        ));
        // A null schema: the payload without one.
        let n = decode(&mut d, r#"{"schema": null, "payload": {"a": 1}}"#).unwrap();
        assert_eq!(n.schema, None);
        assert_eq!(
            n.data,
            Data::Map(vec![(Data::String("a".into()), Data::Int64(1))])
        );
    }

    #[test]
    fn records_that_are_not_envelopes_suggest_disabling_schemas() {
        let mut d = decoder(true);
        let err = decode(&mut d, r#"{"objectId": "ZTF18", "candid": 1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "with schemas.enable=true a record must be Kafka Connect's envelope, an object with exactly the fields `schema` and `payload`; this one is an object with `candid`, `objectId`"
        );
        assert_eq!(err.hint(), Hint::DisableSchemas);
        let err = decode(&mut d, r#"{"schema": null, "payload": 1, "extra": 2}"#).unwrap_err();
        assert!(matches!(err, JsonError::NoEnvelope(_)), "{err}");
        let err = decode(&mut d, "[1]").unwrap_err();
        assert!(err.to_string().ends_with("this one is an array"), "{err}");
        let err = decode(&mut d, "{").unwrap_err();
        assert!(matches!(err, JsonError::NotJson(_)), "{err}");
    }

    #[test]
    fn payloads_that_do_not_follow_the_schema_name_the_field() {
        let mut d = decoder(true);
        let schema = r#"{"type": "struct", "fields": [{"field": "list", "type": "array", "items": {"type": "struct", "fields": [{"field": "n", "type": "int8"}]}}]}"#;
        let err = decode(
            &mut d,
            &format!(
                r#"{{"schema": {schema}, "payload": {{"list": [{{"n": 1}}, {{"n": 300}}]}}}}"#
            ),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the payload does not follow the envelope's schema: field `list[1].n`: 300 is not an int8"
        );
        let err = decode(
            &mut d,
            &format!(r#"{{"schema": {schema}, "payload": {{"list": null}}}}"#),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("field `list`: null for a required array"),
            "{err}"
        );
        let err = decode(&mut d, r#"{"schema": {"type": "string"}, "payload": 5}"#).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("the top-level type: a number where the schema has string"),
            "{err}"
        );
        let err = decode(&mut d, r#"{"schema": {"type": "uuid"}, "payload": 5}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the envelope's schema: the top-level type: unknown type `uuid`"),
            "{err}"
        );
        let err = decode(&mut d, r#"{"schema": {"type": "array"}, "payload": []}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the envelope's schema: the top-level type: a schema of type array needs `items`"
        );
    }

    #[test]
    fn null_is_replaced_with_the_default_only_when_asked() {
        let text =
            r#"{"schema": {"type": "int32", "optional": true, "default": 3}, "payload": null}"#;
        assert_eq!(
            decode(&mut decoder(true), text).unwrap().data,
            Data::Int32(3)
        );
        let mut keep = JsonDecoder::new(JsonSettings {
            replace_null_with_default: false,
            ..Default::default()
        });
        assert_eq!(decode(&mut keep, text).unwrap().data, Data::Null);
    }

    #[test]
    fn numeric_decimals_become_unscaled_bytes() {
        let u = |text: &str, scale| unscaled(text, scale).map(|b| b.to_vec());
        assert_eq!(u("-123.45", 2), Ok(vec![0xcf, 0xc7]));
        assert_eq!(u("1.5e2", 0), Ok(vec![0x00, 0x96]));
        assert_eq!(u("0", 3), Ok(vec![0]));
        assert_eq!(u("127", 0), Ok(vec![0x7f]));
        assert_eq!(u("128", 0), Ok(vec![0x00, 0x80]));
        assert_eq!(u("-128", 0), Ok(vec![0x80]));
        assert_eq!(u("-129", 0), Ok(vec![0xff, 0x7f]));
        assert_eq!(u("1.10", 1), Ok(vec![11]));
        assert_eq!(u("1e-1", 1), Ok(vec![1]));
        assert!(u("1.25", 1).is_err(), "no rounding");
        assert!(u("1e40", 0).is_err(), "beyond 38 digits");
        assert!(u("abc", 0).is_err());
    }
}
