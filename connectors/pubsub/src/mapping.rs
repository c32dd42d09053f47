//! A Kafka record → a Pub/Sub message, exactly as Google's connector maps it: the value's
//! bytes unchanged as data; attribute `key`; with `metadata.publish`, `kafka.topic`,
//! `kafka.partition`, `kafka.offset`, `kafka.timestamp`; with `headers.publish`, headers
//! as attributes (keys under 257 bytes, values under 1025 bytes, at most 100 attributes).

use std::collections::HashMap;

use ferry_connector_api::{RecordError, SinkRecord};
use google_cloud_pubsub::model::Message;

use crate::config::{MAX_MESSAGE_BYTES, OrderingKeySource, PubSubConfig};

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

/// Maps one record, or says why Pub/Sub would refuse it.
pub(crate) fn to_message(
    record: &SinkRecord,
    config: &PubSubConfig,
) -> Result<Mapped, RecordError> {
    let data = record
        .value
        .as_ref()
        .map(|v| v.to_bytes())
        .unwrap_or_default();
    let mut attributes: HashMap<String, String> = HashMap::new();
    if let Some(key) = &record.key {
        let key = text(key.as_bytes());
        if key.len() > MAX_ATTRIBUTE_VALUE_BYTES {
            return Err(RecordError::new(format!(
                "its key is {} bytes; Pub/Sub attribute values (the `key` attribute) are limited to {MAX_ATTRIBUTE_VALUE_BYTES} bytes",
                key.len()
            )));
        }
        attributes.insert("key".into(), key);
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
    if data.is_empty() && attributes.is_empty() {
        return Err(RecordError::new(
            "Pub/Sub needs data or attributes and the record has a null or empty value and no key; set metadata.publish=true to publish such records",
        ));
    }
    let ordering_key = match config.ordering_key_source {
        OrderingKeySource::None => None,
        OrderingKeySource::Key => record.key.as_ref().map(|k| text(k.as_bytes())),
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

    use bytes::Bytes;
    use ferry_connector_api::{ConnectorProps, Header, TimestampType, Value};

    use super::*;

    fn config(extra: &[(&str, &str)]) -> PubSubConfig {
        let mut pairs: BTreeMap<String, String> =
            [("cps.project", "proj"), ("cps.topic", "alerts")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        PubSubConfig::from_props(&mut ConnectorProps::new(pairs)).unwrap()
    }

    fn record(key: Option<&[u8]>, value: Option<&[u8]>) -> SinkRecord {
        SinkRecord {
            topic: "ztf_20210901_programid1".into(),
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
}
