//! A Kafka record → a Pub/Sub message, as Google's connector maps it: the data is the
//! value's bytes unchanged (ByteArray and String converters) or, for a structured value
//! (JSON, Avro), what Google's rules make of it (see [`structured`](crate::structured)):
//! the `messageBodyName` field as data and the other fields as attributes. Then attribute
//! `key` (the key's text); with `metadata.publish`, `kafka.topic`, `kafka.partition`,
//! `kafka.offset`, `kafka.timestamp`; with `headers.publish`, headers as attributes (keys
//! under 257 bytes, values under 1025 bytes, at most 100 attributes). Later attributes
//! replace earlier ones of the same name, as in Google's connector.

use std::collections::HashMap;

use bytes::Bytes;
use ferry_connector_api::data::Data;
use ferry_connector_api::{RecordError, SinkRecord, Value};
use google_cloud_pubsub::model::Message;

use crate::config::{MAX_MESSAGE_BYTES, OrderingKeySource, PubSubConfig};
use crate::{java, structured};

/// Pub/Sub's attribute limits.
const MAX_ATTRIBUTES: usize = 100;
const MAX_ATTRIBUTE_KEY_BYTES: usize = 256;
const MAX_ATTRIBUTE_VALUE_BYTES: usize = 1024;
const MAX_ORDERING_KEY_BYTES: usize = 1024;

/// A message ready to publish, with its size for flow control.
#[derive(Debug, Clone)]
pub(crate) struct Mapped {
    pub(crate) message: Message,
    pub(crate) bytes: usize,
    pub(crate) ordering_key: Option<String>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The key as Google's connector writes it (`key.toString()`): a structured key's Java
/// text, raw bytes as UTF-8 (Java would print an object address); `None` for a null key.
fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::Structured(s) if matches!(s.data, Data::Null) => None,
        Value::Structured(s) => Some(java::text(s.schema.as_deref(), &s.data)),
        other => Some(text(other.as_bytes())),
    }
}

/// The message data and the attributes the value makes.
fn value_payload(
    value: Option<&Value>,
    config: &PubSubConfig,
) -> Result<(Bytes, Vec<(String, String)>), RecordError> {
    match value {
        None => Ok((Bytes::new(), Vec::new())),
        Some(Value::Structured(s)) => {
            let p = structured::payload(s, &config.message_body_name)?;
            Ok((p.data.unwrap_or_default(), p.attributes))
        }
        Some(other) => Ok((other.to_bytes(), Vec::new())),
    }
}

/// Maps one record, or says why Pub/Sub would refuse it.
pub(crate) fn to_message(
    record: &SinkRecord,
    config: &PubSubConfig,
) -> Result<Mapped, RecordError> {
    let (data, value_attributes) = value_payload(record.value.as_ref(), config)?;
    let mut attributes: HashMap<String, String> = value_attributes.into_iter().collect();
    let key = record.key.as_ref().and_then(key_text);
    if let Some(key) = &key {
        if key.len() > MAX_ATTRIBUTE_VALUE_BYTES {
            return Err(RecordError::new(format!(
                "its key is {} bytes; Pub/Sub attribute values (the `key` attribute) are limited to {MAX_ATTRIBUTE_VALUE_BYTES} bytes",
                key.len()
            )));
        }
        attributes.insert("key".into(), key.clone());
    }
    if config.metadata_publish {
        attributes.insert("kafka.topic".into(), record.topic.to_string());
        attributes.insert("kafka.partition".into(), record.partition.to_string());
        attributes.insert("kafka.offset".into(), record.offset.to_string());
        if let Some((ts, _)) = record.timestamp {
            attributes.insert("kafka.timestamp".into(), ts.to_string());
        }
    }
    if config.headers_publish {
        for h in &record.headers {
            if attributes.len() >= MAX_ATTRIBUTES {
                break;
            }
            let value = h.value.as_deref().map(text).unwrap_or_default();
            if h.key.len() <= MAX_ATTRIBUTE_KEY_BYTES && value.len() <= MAX_ATTRIBUTE_VALUE_BYTES {
                attributes.insert(h.key.clone(), value);
            }
        }
    }
    // Headers were filtered to fit; a structured value's fields were not (Google's
    // connector publishes them, and Pub/Sub refuses the message).
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(RecordError::new(format!(
            "it makes {} attributes (its value's fields, key and metadata); Pub/Sub allows {MAX_ATTRIBUTES}",
            attributes.len()
        )));
    }
    if let Some((k, v)) = attributes
        .iter()
        .find(|(k, v)| k.len() > MAX_ATTRIBUTE_KEY_BYTES || v.len() > MAX_ATTRIBUTE_VALUE_BYTES)
    {
        return Err(RecordError::new(format!(
            "its attribute `{}` has a {}-byte name and a {}-byte value; Pub/Sub allows {MAX_ATTRIBUTE_KEY_BYTES} and {MAX_ATTRIBUTE_VALUE_BYTES}",
            k.chars().take(64).collect::<String>(),
            k.len(),
            v.len()
        )));
    }
    if data.is_empty() && attributes.is_empty() {
        return Err(RecordError::new(
            "Pub/Sub needs data or attributes and the record has a null or empty value and no key; set metadata.publish=true to publish such records",
        ));
    }
    let ordering_key = match config.ordering_key_source {
        OrderingKeySource::None => None,
        OrderingKeySource::Key => key.filter(|k| !k.is_empty()),
        OrderingKeySource::Partition => Some(record.partition.to_string()),
    };
    if let Some(k) = &ordering_key
        && k.len() > MAX_ORDERING_KEY_BYTES
    {
        return Err(RecordError::new(format!(
            "its ordering key is {} bytes; Pub/Sub allows {MAX_ORDERING_KEY_BYTES}",
            k.len()
        )));
    }
    let bytes = data.len()
        + attributes
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
        + ordering_key.as_ref().map_or(0, String::len);
    if bytes > MAX_MESSAGE_BYTES {
        return Err(RecordError::new(format!(
            "the message would be {bytes} bytes; Pub/Sub's limit is 10 MB ({MAX_MESSAGE_BYTES} bytes)"
        )));
    }
    let mut message = Message::new().set_data(data).set_attributes(attributes);
    if let Some(k) = &ordering_key {
        message = message.set_ordering_key(k.clone());
    }
    Ok(Mapped {
        message,
        bytes,
        ordering_key,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use ferry_connector_api::data::{Field, Schema, SchemaKind, Structured};
    use ferry_connector_api::{ConnectorProps, Header, TimestampType};

    use super::*;

    fn config(extra: &[(&str, &str)]) -> PubSubConfig {
        let pairs = [
            &[("cps.project", "proj"), ("cps.topic", "alerts")][..],
            extra,
        ]
        .concat();
        PubSubConfig::from_props(&mut ConnectorProps::from_pairs(&pairs)).unwrap()
    }

    fn record(key: Option<&[u8]>, value: Option<&[u8]>) -> SinkRecord {
        SinkRecord {
            topic: "ztf_20210901_programid1".into(),
            original_topic: None,
            partition: 3,
            offset: 12345,
            timestamp: Some((1_630_540_800_123, TimestampType::CreateTime)),
            key: key.map(|k| Value::Bytes(Bytes::copy_from_slice(k))),
            value: value.map(|v| Value::Bytes(Bytes::copy_from_slice(v))),
            headers: vec![],
        }
    }

    #[test]
    fn data_is_the_value_unchanged_and_metadata_uses_googles_names() {
        let avro = b"Obj\x01\x00\xff binary";
        let m = to_message(
            &record(Some(b"ZTF21abc"), Some(avro)),
            &config(&[("metadata.publish", "true")]),
        )
        .unwrap();
        assert_eq!(&m.message.data[..], avro);
        let a = &m.message.attributes;
        assert_eq!(a["key"], "ZTF21abc");
        assert_eq!(a["kafka.topic"], "ztf_20210901_programid1");
        assert_eq!(a["kafka.partition"], "3");
        assert_eq!(a["kafka.offset"], "12345");
        assert_eq!(a["kafka.timestamp"], "1630540800123");
        assert_eq!(a.len(), 5);
        assert!(m.message.ordering_key.is_empty());
    }

    /// A record a transform routed carries the routed topic in `kafka.topic`, as Google's
    /// connector (`record.topic()` after Connect's transforms) does.
    #[test]
    fn a_routed_record_publishes_its_routed_topic() {
        let mut r = record(None, Some(b"v"));
        r.original_topic = Some("ztf_alerts".into());
        let m = to_message(&r, &config(&[("metadata.publish", "true")])).unwrap();
        assert_eq!(
            m.message.attributes["kafka.topic"],
            "ztf_20210901_programid1"
        );
        assert_eq!(r.topic_partition().to_string(), "ztf_alerts-3");
    }

    #[test]
    fn without_metadata_only_the_key_attribute_and_no_timestamp_without_one() {
        let m = to_message(&record(None, Some(b"v")), &config(&[])).unwrap();
        assert!(m.message.attributes.is_empty());
        let mut r = record(None, Some(b"v"));
        r.timestamp = None;
        let m = to_message(&r, &config(&[("metadata.publish", "true")])).unwrap();
        assert!(!m.message.attributes.contains_key("kafka.timestamp"));
    }

    #[test]
    fn headers_follow_googles_size_and_count_rules() {
        let mut r = record(None, Some(b"v"));
        r.headers = vec![
            Header {
                key: "ok".into(),
                value: Some(Bytes::from_static(b"yes")),
            },
            Header {
                key: "k".repeat(257),
                value: Some(Bytes::from_static(b"long key")),
            },
            Header {
                key: "long-value".into(),
                value: Some(Bytes::from(vec![b'x'; 1025])),
            },
            Header {
                key: "null".into(),
                value: None,
            },
        ];
        r.headers.extend((0..150).map(|i| Header {
            key: format!("h{i}"),
            value: Some(Bytes::from_static(b"1")),
        }));
        let m = to_message(&r, &config(&[("headers.publish", "true")])).unwrap();
        let a = &m.message.attributes;
        assert_eq!(a["ok"], "yes");
        assert_eq!(a["null"], "");
        assert!(!a.contains_key("long-value"));
        assert!(a.keys().all(|k| k.len() <= 256));
        assert_eq!(a.len(), 100);
    }

    #[test]
    fn ordering_keys() {
        let r = record(Some(b"obj-1"), Some(b"v"));
        let m = to_message(&r, &config(&[("orderingKeySource", "key")])).unwrap();
        assert_eq!(m.message.ordering_key, "obj-1");
        let m = to_message(&r, &config(&[("orderingKeySource", "partition")])).unwrap();
        assert_eq!(m.message.ordering_key, "3");
        let m = to_message(
            &record(None, Some(b"v")),
            &config(&[("orderingKeySource", "key")]),
        )
        .unwrap();
        assert!(m.ordering_key.is_none());
    }

    #[test]
    fn records_pubsub_would_refuse_are_record_errors() {
        let big = vec![0u8; MAX_MESSAGE_BYTES + 1];
        let err = to_message(&record(None, Some(&big)), &config(&[])).unwrap_err();
        assert!(err.reason.contains("10 MB"), "{err}");
        let long_key = vec![b'k'; 1025];
        assert!(to_message(&record(Some(&long_key), Some(b"v")), &config(&[])).is_err());
        let err = to_message(&record(None, None), &config(&[])).unwrap_err();
        assert!(err.reason.contains("metadata.publish=true"), "{err}");
        assert!(
            to_message(
                &record(None, None),
                &config(&[("metadata.publish", "true")])
            )
            .is_ok()
        );
    }

    fn structured(schema: Option<Schema>, data: Data) -> Value {
        Value::Structured(Arc::new(Structured {
            schema: schema.map(Arc::new),
            data,
            raw: Bytes::from_static(b"{\"raw\": true}"),
        }))
    }

    fn string_field(name: &str) -> Field {
        Field {
            name: name.into(),
            schema: Schema::new(SchemaKind::String),
            doc: None,
        }
    }

    fn s(t: &str) -> Data {
        Data::String(t.into())
    }

    fn with_value(value: Value) -> SinkRecord {
        SinkRecord {
            value: Some(value),
            ..record(None, None)
        }
    }

    fn attributes(m: &Mapped) -> BTreeMap<&str, &str> {
        m.message
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn a_struct_publishes_its_body_field_as_data_and_its_other_fields_as_attributes() {
        let schema = Schema::new(SchemaKind::Struct(vec![
            string_field("cps_message_body"),
            string_field("source"),
        ]));
        let value = structured(
            Some(schema.clone()),
            Data::Struct(vec![s("hello"), s("ztf")]),
        );
        let m = to_message(&with_value(value.clone()), &config(&[])).unwrap();
        assert_eq!(&m.message.data[..], b"hello");
        assert_eq!(attributes(&m), BTreeMap::from([("source", "ztf")]));
        // Record attributes come after the value's and win a clash, as in Google's code.
        let clash = Schema::new(SchemaKind::Struct(vec![
            string_field("cps_message_body"),
            string_field("kafka.topic"),
            string_field("key"),
        ]));
        let mut r = with_value(structured(
            Some(clash),
            Data::Struct(vec![s("x"), s("from the value"), s("from the value")]),
        ));
        r.key = Some(Value::Bytes(Bytes::from_static(b"ZTF21abc")));
        let m = to_message(&r, &config(&[("metadata.publish", "true")])).unwrap();
        let a = attributes(&m);
        assert_eq!(a["kafka.topic"], "ztf_20210901_programid1");
        assert_eq!(a["key"], "ZTF21abc");
        // Another body name: no field matches, so every field is an attribute and the
        // data is empty, which Pub/Sub accepts because there are attributes.
        let m = to_message(&with_value(value), &config(&[("messageBodyName", "alert")])).unwrap();
        assert!(m.message.data.is_empty());
        assert_eq!(
            attributes(&m),
            BTreeMap::from([("cps_message_body", "hello"), ("source", "ztf")])
        );
    }

    #[test]
    fn a_struct_without_the_body_field_is_all_attributes() {
        let schema = Schema::new(SchemaKind::Struct(vec![
            string_field("objectId"),
            Field {
                name: "candid".into(),
                schema: Schema::new(SchemaKind::Int64),
                doc: None,
            },
        ]));
        let r = with_value(structured(
            Some(schema),
            Data::Struct(vec![s("ZTF21abc"), Data::Int64(1_703_222_170_415_010_089)]),
        ));
        let m = to_message(&r, &config(&[])).unwrap();
        assert!(m.message.data.is_empty());
        assert_eq!(
            attributes(&m),
            BTreeMap::from([("objectId", "ZTF21abc"), ("candid", "1703222170415010089")])
        );
        // All fields null and nothing else to publish: Pub/Sub would refuse the message.
        let empty = Schema::new(SchemaKind::Struct(vec![Field {
            schema: Schema::new(SchemaKind::String).optional(),
            ..string_field("note")
        }]));
        let err = to_message(
            &with_value(structured(Some(empty), Data::Struct(vec![Data::Null]))),
            &config(&[]),
        )
        .unwrap_err();
        assert!(err.reason.contains("needs data or attributes"), "{err}");
    }

    #[test]
    fn a_schemaless_map_is_published_as_its_java_text_without_attributes() {
        let r = with_value(structured(
            None,
            Data::Map(vec![
                (s("cps_message_body"), s("hello")),
                (s("source"), s("ztf")),
            ]),
        ));
        let m = to_message(&r, &config(&[])).unwrap();
        assert_eq!(&m.message.data[..], b"{cps_message_body=hello, source=ztf}");
        assert!(m.message.attributes.is_empty());
    }

    #[test]
    fn primitive_structured_values_use_googles_encoding() {
        let m = to_message(
            &with_value(structured(
                Some(Schema::new(SchemaKind::Int32)),
                Data::Int32(258),
            )),
            &config(&[]),
        )
        .unwrap();
        assert_eq!(&m.message.data[..], &[0, 0, 1, 2]);
        let m = to_message(
            &with_value(structured(None, Data::Int64(258))),
            &config(&[]),
        )
        .unwrap();
        assert_eq!(&m.message.data[..], b"258", "schemaless: its text");
        let m = to_message(
            &with_value(structured(
                Some(Schema::new(SchemaKind::String)),
                s("hello"),
            )),
            &config(&[]),
        )
        .unwrap();
        assert_eq!(&m.message.data[..], b"hello");
        let m = to_message(
            &with_value(structured(
                Some(Schema::new(SchemaKind::Float64)),
                Data::Float64(1.0),
            )),
            &config(&[]),
        )
        .unwrap();
        assert_eq!(&m.message.data[..], &1.0f64.to_be_bytes());
    }

    #[test]
    fn a_structured_key_is_its_java_text() {
        let mut r = record(None, Some(b"v"));
        r.key = Some(structured(None, s("ZTF21abc")));
        let m = to_message(&r, &config(&[("orderingKeySource", "key")])).unwrap();
        assert_eq!(m.message.attributes["key"], "ZTF21abc", "not the JSON text");
        assert_eq!(m.message.ordering_key, "ZTF21abc");
        r.key = Some(structured(None, Data::Null));
        let m = to_message(&r, &config(&[("orderingKeySource", "key")])).unwrap();
        assert!(!m.message.attributes.contains_key("key"), "a null key");
        assert!(m.ordering_key.is_none());
    }

    #[test]
    fn values_pubsub_or_google_would_refuse_are_record_errors() {
        let nested = Schema::new(SchemaKind::Struct(vec![Field {
            name: "candidate".into(),
            schema: Schema::new(SchemaKind::Struct(vec![])),
            doc: None,
        }]));
        let err = to_message(
            &with_value(structured(
                Some(nested),
                Data::Struct(vec![Data::Struct(vec![])]),
            )),
            &config(&[]),
        )
        .unwrap_err();
        assert!(err.reason.contains("`candidate` is a struct"), "{err}");
        let many = (0..101).map(|i| string_field(&format!("f{i}"))).collect();
        let err = to_message(
            &with_value(structured(
                Some(Schema::new(SchemaKind::Struct(many))),
                Data::Struct((0..101).map(|_| s("v")).collect()),
            )),
            &config(&[]),
        )
        .unwrap_err();
        assert!(err.reason.contains("101 attributes"), "{err}");
        let err = to_message(
            &with_value(structured(
                Some(Schema::new(SchemaKind::Struct(vec![string_field("long")]))),
                Data::Struct(vec![s(&"x".repeat(1025))]),
            )),
            &config(&[]),
        )
        .unwrap_err();
        assert!(
            err.reason
                .contains("`long` has a 4-byte name and a 1025-byte value"),
            "{err}"
        );
    }
}
