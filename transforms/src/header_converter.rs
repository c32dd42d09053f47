//! `header.converter`: how a header value a transform makes (`HeaderFrom`, `InsertHeader`)
//! becomes the bytes a sink writes — Connect's `HeaderConverter.fromConnectHeader`.
//!
//! Headers read from Kafka keep their bytes: Connect's three header converters read any
//! bytes without failing (`SimpleHeaderConverter` falls back to a string), and ferry's
//! sinks write a header's bytes, so the bytes read are what a sink writes.

use std::collections::BTreeMap;

use bytes::Bytes;
use ferry_connector_api::data::{Data, Schema, SchemaKind};

use crate::datefmt::DateFormat;
use crate::values::{self, HeaderValue};

/// The header converters ferry implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderConverter {
    /// `org.apache.kafka.connect.storage.SimpleHeaderConverter` (Connect's default): values
    /// as `Values.convertToString` writes them.
    #[default]
    Simple,
    /// `org.apache.kafka.connect.storage.StringConverter`: values as Java's `toString`
    /// prints them (UTF-8).
    String,
    /// `org.apache.kafka.connect.converters.ByteArrayConverter`: bytes only.
    ByteArray,
}

const KNOWN: &str = "org.apache.kafka.connect.storage.SimpleHeaderConverter (the default), \
org.apache.kafka.connect.storage.StringConverter, \
org.apache.kafka.connect.converters.ByteArrayConverter (or their short names)";

impl HeaderConverter {
    /// Parses a `header.converter` class and its `header.converter.*` settings; the error is
    /// the reason, for the caller to place at its key.
    pub fn parse(class: &str, settings: &BTreeMap<String, String>) -> Result<Self, String> {
        Ok(match class.trim() {
            "org.apache.kafka.connect.storage.SimpleHeaderConverter" | "SimpleHeaderConverter" => {
                HeaderConverter::Simple
            }
            "org.apache.kafka.connect.storage.StringConverter" | "StringConverter" => {
                for key in ["encoding", "converter.encoding"] {
                    if let Some(enc) = settings.get(key)
                        && !["UTF-8", "UTF8"].contains(&enc.trim().to_ascii_uppercase().as_str())
                    {
                        return Err(format!(
                            "StringConverter {key} `{}` is not supported; only UTF-8",
                            ferry_connector_api::text::shown(enc)
                        ));
                    }
                }
                HeaderConverter::String
            }
            "org.apache.kafka.connect.converters.ByteArrayConverter" | "ByteArrayConverter" => {
                HeaderConverter::ByteArray
            }
            other => {
                return Err(format!(
                    "`{}` is not a header converter ferry has; use {KNOWN}",
                    ferry_connector_api::text::shown(other)
                ));
            }
        })
    }

    pub fn class_name(self) -> &'static str {
        match self {
            HeaderConverter::Simple => "org.apache.kafka.connect.storage.SimpleHeaderConverter",
            HeaderConverter::String => "org.apache.kafka.connect.storage.StringConverter",
            HeaderConverter::ByteArray => "org.apache.kafka.connect.converters.ByteArrayConverter",
        }
    }

    fn short_name(self) -> &'static str {
        let full = self.class_name();
        full.rsplit('.').next().unwrap_or(full)
    }

    /// `fromConnectHeader`: the bytes of a header value (`None` for null); the error is the
    /// reason a HEADER_CONVERTER-stage error carries.
    pub(crate) fn write(self, v: &HeaderValue) -> Result<Option<Bytes>, String> {
        Ok(match (self, v) {
            (_, HeaderValue::Null) => None,
            (HeaderConverter::Simple, v) => values::to_text(v).map(Bytes::from),
            // Java would print a byte array's identity (`[B@1b6d3586`); the bytes are kept.
            (HeaderConverter::String | HeaderConverter::ByteArray, HeaderValue::Bytes(b)) => {
                Some(b.clone())
            }
            (HeaderConverter::String, v) => Some(Bytes::from(java_to_string(v))),
            (HeaderConverter::ByteArray, v) => {
                return Err(format!(
                    "header.converter {} writes only bytes, and this header holds {}; set header.converter=org.apache.kafka.connect.storage.SimpleHeaderConverter to write it as text",
                    self.short_name(),
                    kind(v)
                ));
            }
        })
    }
}

fn kind(v: &HeaderValue) -> &'static str {
    match v {
        HeaderValue::Null => "null",
        HeaderValue::Boolean(_) => "a boolean",
        HeaderValue::Int8(_) => "an int8",
        HeaderValue::Int16(_) => "an int16",
        HeaderValue::Int32(_) => "an int32",
        HeaderValue::Int64(_) => "an int64",
        HeaderValue::Float32(_) => "a float32",
        HeaderValue::Float64(_) => "a float64",
        HeaderValue::Decimal(_) => "a decimal",
        HeaderValue::String(_) => "a string",
        HeaderValue::Bytes(_) => "bytes",
        HeaderValue::Date(_) => "a date",
        HeaderValue::Time(_) => "a time",
        HeaderValue::Timestamp(_) => "a timestamp",
        HeaderValue::Array(_) => "an array",
        HeaderValue::Map(_) => "a map",
        HeaderValue::Struct(_) => "a struct",
    }
}

/// Java's `toString` of the value Connect would hold: lists `[a, b]`, maps `{k=v}`, structs
/// `Struct{f=v}` (null fields left out), dates as `java.util.Date` prints them in UTC; bytes
/// inside a list or map as base64.
fn java_to_string(v: &HeaderValue) -> String {
    match v {
        HeaderValue::Null => "null".into(),
        HeaderValue::String(s) => s.clone(),
        HeaderValue::Bytes(b) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(b)
        }
        HeaderValue::Date(ms) | HeaderValue::Time(ms) | HeaderValue::Timestamp(ms) => {
            DateFormat::parse("EEE MMM dd HH:mm:ss zzz yyyy")
                .and_then(|f| f.format(*ms))
                .unwrap_or_else(|_| ms.to_string())
        }
        HeaderValue::Array(items) => {
            let items: Vec<String> = items.iter().map(java_to_string).collect();
            format!("[{}]", items.join(", "))
        }
        HeaderValue::Map(entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}={}", java_to_string(k), java_to_string(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        HeaderValue::Struct(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .filter(|(_, v)| *v != HeaderValue::Null)
                .map(|(name, v)| format!("{name}={}", java_to_string(v)))
                .collect();
            format!("Struct{{{}}}", fields.join(","))
        }
        scalar => values::scalar_text(scalar),
    }
}

/// A field's data as the header value Connect's `HeaderFrom` would put in the header.
pub(crate) fn from_data(d: &Data, schema: Option<&Schema>) -> HeaderValue {
    let kind = schema.map(|s| &s.kind);
    match d {
        Data::Null => HeaderValue::Null,
        Data::Boolean(b) => HeaderValue::Boolean(*b),
        Data::Int8(n) => HeaderValue::Int8(*n),
        Data::Int16(n) => HeaderValue::Int16(*n),
        Data::Int32(n) => HeaderValue::Int32(*n),
        Data::Int64(n) => HeaderValue::Int64(*n),
        Data::Float32(f) => HeaderValue::Float32(*f),
        Data::Float64(f) => HeaderValue::Float64(*f),
        Data::String(s) => HeaderValue::String(s.clone()),
        Data::Bytes(b) => HeaderValue::Bytes(b.clone()),
        Data::Decimal(_) => HeaderValue::Decimal(crate::cast::to_string(d, schema)),
        Data::Date(days) => HeaderValue::Date(i64::from(*days) * 86_400_000),
        Data::Time(us) => HeaderValue::Time(us.div_euclid(1000)),
        Data::Timestamp(us) => HeaderValue::Timestamp(us.div_euclid(1000)),
        Data::Array(items) => {
            let inner = match kind {
                Some(SchemaKind::Array(s)) => Some(&**s),
                _ => None,
            };
            HeaderValue::Array(items.iter().map(|i| from_data(i, inner)).collect())
        }
        Data::Map(entries) => {
            let (ks, vs) = match kind {
                Some(SchemaKind::Map { key, value }) => (Some(&**key), Some(&**value)),
                _ => (None, None),
            };
            HeaderValue::Map(
                entries
                    .iter()
                    .map(|(k, v)| (from_data(k, ks), from_data(v, vs)))
                    .collect(),
            )
        }
        Data::Struct(values) => {
            let fields = schema.map(Schema::fields).unwrap_or_default();
            HeaderValue::Struct(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let field = fields.get(i);
                        (
                            field.map(|f| f.name.clone()).unwrap_or_default(),
                            from_data(v, field.map(|f| &f.schema)),
                        )
                    })
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderValue as V;
    use super::*;

    fn text(c: HeaderConverter, v: &V) -> Option<String> {
        c.write(v)
            .unwrap()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn class_names_short_names_and_an_unknown_class() {
        let none = BTreeMap::new();
        for c in [
            HeaderConverter::Simple,
            HeaderConverter::String,
            HeaderConverter::ByteArray,
        ] {
            assert_eq!(HeaderConverter::parse(c.class_name(), &none), Ok(c));
            assert_eq!(HeaderConverter::parse(c.short_name(), &none), Ok(c));
        }
        assert_eq!(
            HeaderConverter::parse("com.example.XmlHeaderConverter", &none).unwrap_err(),
            format!(
                "`com.example.XmlHeaderConverter` is not a header converter ferry has; use {KNOWN}"
            )
        );
        let latin1 = BTreeMap::from([("converter.encoding".to_string(), "ISO-8859-1".to_string())]);
        assert!(HeaderConverter::parse("StringConverter", &latin1).is_err());
    }

    /// What each converter writes for the values HeaderFrom and InsertHeader make.
    #[test]
    fn each_converter_writes_values_as_connects_does() {
        use HeaderConverter::*;
        let list = V::Array(vec![V::String("a".into()), V::Int8(1)]);
        let map = V::Map(vec![(V::String("k".into()), V::Float32(1.5))]);
        let date = V::Date(1_566_518_400_000);
        let st = V::Struct(vec![
            ("f".into(), V::String("x".into())),
            ("g".into(), V::Null),
            ("n".into(), V::Int32(2)),
        ]);
        assert_eq!(text(Simple, &V::Int32(42)).as_deref(), Some("42"));
        assert_eq!(text(Simple, &list).as_deref(), Some("[\"a\",1]"));
        assert_eq!(text(Simple, &map).as_deref(), Some("{\"k\":1.5}"));
        assert_eq!(text(Simple, &date).as_deref(), Some("2019-08-23"));
        assert_eq!(
            text(Simple, &st).as_deref(),
            Some("{\"f\":\"x\",\"g\":null,\"n\":2}")
        );
        assert_eq!(text(Simple, &V::Null), None);
        assert_eq!(text(String, &V::Int32(42)).as_deref(), Some("42"));
        assert_eq!(text(String, &list).as_deref(), Some("[a, 1]"));
        assert_eq!(text(String, &map).as_deref(), Some("{k=1.5}"));
        assert_eq!(
            text(String, &date).as_deref(),
            Some("Fri Aug 23 00:00:00 UTC 2019")
        );
        assert_eq!(text(String, &st).as_deref(), Some("Struct{f=x,n=2}"));
        assert_eq!(text(String, &V::Float32(1e20)).as_deref(), Some("1.0E20"));
        let raw = V::Bytes(Bytes::from_static(&[0, 0xff]));
        for c in [Simple, String, ByteArray] {
            assert_eq!(text(c, &V::Null), None);
        }
        assert_eq!(
            ByteArray.write(&raw).unwrap().as_deref(),
            Some(&[0u8, 0xff][..])
        );
        assert_eq!(text(Simple, &raw).as_deref(), Some("AP8="));
        assert_eq!(
            ByteArray.write(&V::String("x".into())).unwrap_err(),
            "header.converter ByteArrayConverter writes only bytes, and this header holds a string; set header.converter=org.apache.kafka.connect.storage.SimpleHeaderConverter to write it as text"
        );
    }
}
