//! Converters: bytes from Kafka → [`Value`]s for the sink, at the edge of the runtime.

use std::collections::BTreeMap;

use bytes::Bytes;
use ferry_connector_api::Value;

/// The converters ferry implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converter {
    /// `org.apache.kafka.connect.converters.ByteArrayConverter`: bytes unchanged.
    ByteArray,
    /// `org.apache.kafka.connect.storage.StringConverter`: UTF-8 text. Invalid UTF-8 is
    /// replaced with U+FFFD, as Java's `new String(bytes, UTF_8)` does.
    String,
}

impl Converter {
    /// Parses a `*.converter` class name and its `*.converter.*` settings. The error is the
    /// reason, for the caller to place at its key.
    pub fn parse(class: &str, settings: &BTreeMap<String, String>) -> Result<Self, String> {
        let converter = match class.trim() {
            "org.apache.kafka.connect.converters.ByteArrayConverter" | "ByteArrayConverter" => {
                Converter::ByteArray
            }
            "org.apache.kafka.connect.storage.StringConverter" | "StringConverter" => {
                Converter::String
            }
            other => {
                return Err(format!(
                    "`{other}` is not supported yet; ferry converts with org.apache.kafka.connect.converters.ByteArrayConverter (bytes unchanged) or org.apache.kafka.connect.storage.StringConverter"
                ));
            }
        };
        if converter == Converter::String
            && let Some(enc) = settings.get("encoding")
            && !enc.trim().eq_ignore_ascii_case("UTF-8")
            && !enc.trim().eq_ignore_ascii_case("UTF8")
        {
            return Err(format!(
                "StringConverter encoding `{enc}` is not supported; only UTF-8"
            ));
        }
        Ok(converter)
    }

    pub fn class_name(self) -> &'static str {
        match self {
            Converter::ByteArray => "org.apache.kafka.connect.converters.ByteArrayConverter",
            Converter::String => "org.apache.kafka.connect.storage.StringConverter",
        }
    }

    /// Converts one key or value; `None` (a Kafka null) stays `None`.
    pub fn convert(self, bytes: Option<&[u8]>) -> Option<Value> {
        let bytes = bytes?;
        Some(match self {
            Converter::ByteArray => Value::Bytes(Bytes::copy_from_slice(bytes)),
            Converter::String => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_and_aliases() {
        let none = BTreeMap::new();
        assert_eq!(
            Converter::parse(
                "org.apache.kafka.connect.converters.ByteArrayConverter",
                &none
            ),
            Ok(Converter::ByteArray)
        );
        assert_eq!(
            Converter::parse("StringConverter", &none),
            Ok(Converter::String)
        );
        let err =
            Converter::parse("org.apache.kafka.connect.json.JsonConverter", &none).unwrap_err();
        assert!(err.contains("not supported yet"), "{err}");
        let latin1 = BTreeMap::from([("encoding".to_string(), "ISO-8859-1".to_string())]);
        assert!(Converter::parse("StringConverter", &latin1).is_err());
    }

    #[test]
    fn conversions_keep_bytes_and_nulls() {
        let raw = [0u8, 0xff, b'O', b'b', b'j', 1];
        assert_eq!(
            Converter::ByteArray.convert(Some(&raw)).unwrap().as_bytes(),
            &raw
        );
        assert_eq!(Converter::ByteArray.convert(None), None);
        assert_eq!(
            Converter::String.convert(Some("héllo".as_bytes())),
            Some(Value::String("héllo".into()))
        );
        assert_eq!(
            Converter::String.convert(Some(&[b'a', 0xff])),
            Some(Value::String("a\u{fffd}".into()))
        );
    }
}
