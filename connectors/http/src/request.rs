//! Records → request bodies (the encoder) and bodies → requests (the batcher):
//! `request.body.format`, `batch.max.size`, `batch.prefix`/`batch.separator`/`batch.suffix`,
//! and `${topic}`/`${key}` in `http.api.url`.

use bytes::Bytes;
use ferry_connector_api::data::{Data, Schema, SchemaKind};
use ferry_connector_api::{RecordError, SinkRecord, TopicPartition, Value};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::{BodyFormat, HttpConfig};

/// One HTTP request: a body made of one or more records of one partition, in offset order.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub url: String,
    pub body: Bytes,
    pub records: Vec<SinkRecord>,
}

impl Request {
    pub(crate) fn partition(&self) -> Option<TopicPartition> {
        self.records.first().map(SinkRecord::topic_partition)
    }
}

/// A record's part of a body.
pub(crate) fn encode(record: &SinkRecord, format: BodyFormat) -> Result<Vec<u8>, RecordError> {
    let Some(value) = &record.value else {
        return Err(RecordError::new("the record has no value"));
    };
    match format {
        BodyFormat::String => Ok(value.as_bytes().to_vec()),
        BodyFormat::Json => json(value),
    }
}

/// The JSON document of a value: values that already are JSON text (the JSON converter's
/// bytes, a string or bytes holding JSON) unchanged; other structured values rendered from
/// their data; any other text as a JSON string (Confluent's rendering of a string value).
fn json(value: &Value) -> Result<Vec<u8>, RecordError> {
    let bytes = value.as_bytes();
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Ok(bytes.to_vec());
    }
    match value {
        Value::Structured(s) => {
            let v = data_json(&s.data, s.schema.as_deref());
            serde_json::to_vec(&v).map_err(|e| RecordError::new(format!("cannot write JSON: {e}")))
        }
        Value::String(s) => {
            serde_json::to_vec(s).map_err(|e| RecordError::new(format!("cannot write JSON: {e}")))
        }
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => serde_json::to_vec(s)
                .map_err(|e| RecordError::new(format!("cannot write JSON: {e}"))),
            Err(_) => Err(RecordError::new(
                "request.body.format=json: the value is neither JSON nor UTF-8 text",
            )),
        },
        _ => Err(RecordError::new(
            "request.body.format=json: the value's kind cannot be written as JSON",
        )),
    }
}

/// Connect data as JSON, field names from the schema: timestamps and dates as their epoch
/// numbers (micro­seconds, days), bytes and decimals as base-10 / lossy text where no
/// better form exists.
fn data_json(data: &Data, schema: Option<&Schema>) -> serde_json::Value {
    use serde_json::Value as J;
    match data {
        Data::Null => J::Null,
        Data::Boolean(b) => J::Bool(*b),
        Data::Int8(i) => J::from(*i),
        Data::Int16(i) => J::from(*i),
        Data::Int32(i) => J::from(*i),
        Data::Int64(i) | Data::Timestamp(i) | Data::Time(i) => J::from(*i),
        Data::Date(d) => J::from(*d),
        Data::Float32(f) => J::from(f64::from(*f)),
        Data::Float64(f) => J::from(*f),
        Data::String(s) => J::String(s.clone()),
        Data::Bytes(b) | Data::Decimal(b) => J::String(String::from_utf8_lossy(b).into_owned()),
        Data::Array(items) => {
            let item = match schema.map(|s| &s.kind) {
                Some(SchemaKind::Array(i)) => Some(i.as_ref()),
                _ => None,
            };
            J::Array(items.iter().map(|d| data_json(d, item)).collect())
        }
        Data::Map(entries) => {
            let value = match schema.map(|s| &s.kind) {
                Some(SchemaKind::Map { value, .. }) => Some(value.as_ref()),
                _ => None,
            };
            J::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Data::String(s) => s.clone(),
                            other => data_json(other, None).to_string(),
                        };
                        (key, data_json(v, value))
                    })
                    .collect(),
            )
        }
        Data::Struct(values) => {
            let fields = schema.map(Schema::fields).unwrap_or_default();
            J::Object(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let field = fields.get(i);
                        let name = field.map_or_else(|| format!("field{i}"), |f| f.name.clone());
                        (name, data_json(v, field.map(|f| &f.schema)))
                    })
                    .collect(),
            )
        }
    }
}

/// What `${key}` may leave unencoded in a URL: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `http.api.url` with `${topic}` and `${key}` (percent-encoded; empty when the record has
/// no key) replaced.
pub(crate) fn url_for(template: &str, record: &SinkRecord) -> String {
    if !template.contains("${") {
        return template.to_string();
    }
    let key = record
        .key
        .as_ref()
        .map(|k| utf8_percent_encode(&String::from_utf8_lossy(k.as_bytes()), SEGMENT).to_string())
        .unwrap_or_default();
    let topic = utf8_percent_encode(&record.topic, SEGMENT).to_string();
    template.replace("${topic}", &topic).replace("${key}", &key)
}

/// Groups encoded records into requests: consecutive records of one partition with the
/// same URL, at most `batch.max.size` each, bodies joined with the batch prefix, separator
/// and suffix.
#[derive(Debug)]
pub(crate) struct Batcher<'a> {
    config: &'a HttpConfig,
    open: Option<(String, Vec<u8>, Vec<SinkRecord>)>,
    done: Vec<Request>,
}

impl<'a> Batcher<'a> {
    pub(crate) fn new(config: &'a HttpConfig) -> Self {
        Self {
            config,
            open: None,
            done: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, record: &SinkRecord, part: &[u8]) {
        let url = url_for(&self.config.url, record);
        let fits = self.open.as_ref().is_some_and(|(u, _, recs)| {
            *u == url
                && recs.len() < self.config.batch_max_size
                && recs
                    .last()
                    .is_some_and(|r| r.topic == record.topic && r.partition == record.partition)
        });
        if !fits {
            self.close();
        }
        let c = self.config;
        let (_, body, records) = self
            .open
            .get_or_insert_with(|| (url, c.batch_prefix.as_bytes().to_vec(), Vec::new()));
        if !records.is_empty() {
            body.extend_from_slice(c.batch_separator.as_bytes());
        }
        body.extend_from_slice(part);
        records.push(record.clone());
    }

    fn close(&mut self) {
        if let Some((url, mut body, records)) = self.open.take() {
            body.extend_from_slice(self.config.batch_suffix.as_bytes());
            self.done.push(Request {
                url,
                body: Bytes::from(body),
                records,
            });
        }
    }

    pub(crate) fn finish(mut self) -> Vec<Request> {
        self.close();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_connector_api::ConnectorProps;
    use std::sync::Arc;

    fn record(
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&str>,
        value: &str,
    ) -> SinkRecord {
        SinkRecord {
            topic: Arc::from(topic),
            partition,
            offset,
            timestamp: None,
            key: key.map(|k| Value::Bytes(Bytes::copy_from_slice(k.as_bytes()))),
            value: Some(Value::Bytes(Bytes::copy_from_slice(value.as_bytes()))),
            headers: vec![],
            original_topic: None,
        }
    }

    fn config(pairs: &[(&str, &str)]) -> HttpConfig {
        let mut p = ConnectorProps::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        HttpConfig::from_props(&mut p).unwrap()
    }

    #[test]
    fn json_values_pass_unchanged_and_text_becomes_a_json_string() {
        let r = record("t", 0, 0, None, r#"{"id": "79ce", "job_id": 2}"#);
        assert_eq!(
            encode(&r, BodyFormat::Json).unwrap(),
            br#"{"id": "79ce", "job_id": 2}"#
        );
        let r = record("t", 0, 0, None, "plain text");
        assert_eq!(encode(&r, BodyFormat::Json).unwrap(), br#""plain text""#);
        assert_eq!(encode(&r, BodyFormat::String).unwrap(), b"plain text");
        let mut r = record("t", 0, 0, None, "");
        r.value = Some(Value::Bytes(Bytes::from_static(&[0xff, 0xfe])));
        assert!(encode(&r, BodyFormat::Json).is_err());
        r.value = None;
        assert_eq!(
            encode(&r, BodyFormat::String).unwrap_err().to_string(),
            "the record has no value"
        );
    }

    #[test]
    fn structured_values_are_rendered_with_their_field_names() {
        use ferry_connector_api::data::{Field, Structured};
        let schema = Schema::new(SchemaKind::Struct(vec![
            Field {
                name: "a".into(),
                schema: Schema::new(SchemaKind::Int32),
                doc: None,
            },
            Field {
                name: "b".into(),
                schema: Schema::new(SchemaKind::Array(Box::new(Schema::new(SchemaKind::String)))),
                doc: None,
            },
        ]));
        let mut r = record("t", 0, 0, None, "");
        r.value = Some(Value::Structured(Arc::new(Structured {
            schema: Some(Arc::new(schema)),
            data: Data::Struct(vec![
                Data::Int32(7),
                Data::Array(vec![Data::String("x".into())]),
            ]),
            raw: Bytes::from_static(b"\x00avro"),
        })));
        assert_eq!(
            encode(&r, BodyFormat::Json).unwrap(),
            br#"{"a":7,"b":["x"]}"#
        );
    }

    #[test]
    fn batches_respect_size_partition_and_url() {
        let c = config(&[
            ("http.api.url", "http://h/${topic}/${key}"),
            ("batch.max.size", "2"),
            ("batch.prefix", "["),
            ("batch.separator", ";"),
            ("batch.suffix", "]"),
        ]);
        let recs = [
            record("t", 0, 0, Some("k"), "a"),
            record("t", 0, 1, Some("k"), "b"),
            record("t", 0, 2, Some("k"), "c"),
            record("t", 1, 0, Some("k"), "d"),
            record("t", 1, 1, Some("a b/c"), "e"),
        ];
        let mut b = Batcher::new(&c);
        for r in &recs {
            b.push(r, &encode(r, c.body_format).unwrap());
        }
        let reqs = b.finish();
        let got: Vec<(&str, &[u8], usize)> = reqs
            .iter()
            .map(|r| (r.url.as_str(), &r.body[..], r.records.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("http://h/t/k", &b"[a;b]"[..], 2),
                ("http://h/t/k", &b"[c]"[..], 1),
                ("http://h/t/k", &b"[d]"[..], 1),
                ("http://h/t/a%20b%2Fc", &b"[e]"[..], 1),
            ]
        );
    }
}
