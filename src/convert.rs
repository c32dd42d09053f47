//! Converters: bytes from Kafka → [`Value`]s for the sink, at the edge of the runtime.

use std::collections::BTreeMap;

use bytes::BytesMut;
use ferry_connector_api::Value;

/// Size of the blocks small record bytes are copied into.
const ARENA_BLOCK: usize = 256 * 1024;
/// Larger values are copied into allocations of their own.
const ARENA_MAX_VALUE: usize = 8 * 1024;

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
        self.convert_in(bytes, &mut BytesMut::new())
    }

    /// Like [`convert`](Converter::convert), copying bytes into `arena`, a buffer shared by
    /// the records of a batch: one allocation per block instead of one per record, and the
    /// block is freed when the last record using it is.
    pub fn convert_in(self, bytes: Option<&[u8]>, arena: &mut BytesMut) -> Option<Value> {
        let bytes = bytes?;
        Some(match self {
            // Large values get an allocation of their own: a block would hold only a few of
            // them and stay alive as long as the last one.
            Converter::ByteArray if bytes.len() > ARENA_MAX_VALUE => {
                Value::Bytes(bytes::Bytes::copy_from_slice(bytes))
            }
            Converter::ByteArray => {
                if arena.capacity() - arena.len() < bytes.len() {
                    // Reuses the block in place when every record cut from it has been
                    // dropped (its memory is still in cache), else starts a new one.
                    arena.reserve(ARENA_BLOCK.max(bytes.len()));
                }
                arena.extend_from_slice(bytes);
                Value::Bytes(arena.split().freeze())
            }
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
    fn records_share_arena_blocks_without_mixing_bytes() {
        let mut arena = BytesMut::new();
        let a = Converter::ByteArray
            .convert_in(Some(b"first"), &mut arena)
            .unwrap();
        let b = Converter::ByteArray
            .convert_in(Some(b"second"), &mut arena)
            .unwrap();
        let big = vec![7u8; ARENA_BLOCK + 1];
        let medium = vec![9u8; ARENA_MAX_VALUE - 1];
        let m = Converter::ByteArray
            .convert_in(Some(&medium), &mut arena)
            .unwrap();
        let c = Converter::ByteArray
            .convert_in(Some(&big), &mut arena)
            .unwrap();
        let d = Converter::ByteArray
            .convert_in(Some(b""), &mut arena)
            .unwrap();
        assert_eq!(a.as_bytes(), b"first");
        assert_eq!(b.as_bytes(), b"second");
        assert_eq!(c.as_bytes(), &big[..]);
        assert_eq!(m.as_bytes(), &medium[..]);
        assert!(d.is_empty());
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
