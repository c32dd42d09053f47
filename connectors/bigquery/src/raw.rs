//! Raw mode (`ferry.bigquery.mode=raw`): one row per record with its bytes and Kafka
//! metadata, whatever the bytes are — the replay and audit table of an alert stream.

use base64::Engine;
use bytes::Bytes;
use ferry_connector_api::data::Data;
use ferry_connector_api::{SinkRecord, Value};
use serde_json::{Map, Value as Json, json};

use crate::rows::{RowError, timestamp};
use crate::schema::{Field, Kind, Mode};
use crate::storage::RowType;

/// The raw table: `topic`, `partition`, `offset`, `timestamp`, `key`, `value`, `headers`.
pub fn table_fields() -> Vec<Field> {
    vec![
        Field::leaf("topic", Kind::String, Mode::Required),
        Field::leaf("partition", Kind::Integer, Mode::Required),
        Field::leaf("offset", Kind::Integer, Mode::Required),
        Field::leaf("timestamp", Kind::Timestamp, Mode::Nullable),
        Field::leaf("key", Kind::Bytes, Mode::Nullable),
        Field::leaf("value", Kind::Bytes, Mode::Nullable),
        Field::record(
            "headers",
            Mode::Repeated,
            vec![
                Field::leaf("key", Kind::String, Mode::Required),
                Field::leaf("value", Kind::Bytes, Mode::Nullable),
            ],
        ),
    ]
}

/// The raw row of `record`. The key and value are the bytes read from Kafka, whichever
/// converter ran.
pub fn row(record: &SinkRecord) -> Result<Map<String, Json>, RowError> {
    let b64 = |b: &[u8]| Json::String(base64::engine::general_purpose::STANDARD.encode(b));
    let mut r = Map::with_capacity(7);
    r.insert("topic".into(), Json::String(record.topic.to_string()));
    r.insert("partition".into(), json!(record.partition));
    r.insert("offset".into(), Json::String(record.offset.to_string()));
    let ts = match record.timestamp {
        Some((ms, _)) => Json::String(timestamp(ms.saturating_mul(1000), "timestamp")?),
        None => Json::Null,
    };
    r.insert("timestamp".into(), ts);
    r.insert(
        "key".into(),
        record
            .key
            .as_ref()
            .map_or(Json::Null, |k| b64(k.as_bytes())),
    );
    r.insert(
        "value".into(),
        record
            .value
            .as_ref()
            .map_or(Json::Null, |v| b64(v.as_bytes())),
    );
    r.insert(
        "headers".into(),
        Json::Array(
            record
                .headers
                .iter()
                .map(|h| json!({"key": h.key, "value": h.value.as_deref().map(b64)}))
                .collect(),
        ),
    );
    Ok(r)
}

/// The raw row of `record` as a protocol buffer of `row_type` (the Storage Write API).
pub(crate) fn proto_row(row_type: &RowType, r: &SinkRecord) -> Result<Bytes, RowError> {
    let mut w = row_type.writer();
    let bytes = |v: &Option<Value>| v.as_ref().map_or(Data::Null, |v| Data::Bytes(v.to_bytes()));
    w.column("topic", None, &Data::String(r.topic.to_string()))?;
    w.column("partition", None, &Data::Int32(r.partition))?;
    w.column("offset", None, &Data::Int64(r.offset))?;
    let ts = r.timestamp.map_or(Data::Null, |(ms, _)| {
        Data::Timestamp(ms.saturating_mul(1000))
    });
    w.column("timestamp", None, &ts)?;
    w.column("key", None, &bytes(&r.key))?;
    w.column("value", None, &bytes(&r.value))?;
    let headers = r
        .headers
        .iter()
        .map(|h| {
            Data::Map(vec![
                (Data::String("key".into()), Data::String(h.key.clone())),
                (
                    Data::String("value".into()),
                    h.value.clone().map_or(Data::Null, Data::Bytes),
                ),
            ])
        })
        .collect();
    w.column("headers", None, &Data::Array(headers))?;
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferry_connector_api::{Header, TimestampType, Value};

    use super::*;

    #[test]
    fn a_record_becomes_its_bytes_and_metadata() {
        let record = SinkRecord {
            topic: "ztf_20260112_programid1".into(),
            original_topic: None,
            partition: 3,
            offset: 42,
            timestamp: Some((1_768_200_000_123, TimestampType::CreateTime)),
            key: None,
            value: Some(Value::Bytes(Bytes::from_static(b"Obj\x01"))),
            headers: vec![Header {
                key: "h".into(),
                value: Some(Bytes::from_static(b"v")),
            }],
        };
        let r = Json::Object(row(&record).unwrap());
        assert_eq!(
            r,
            json!({
                "topic": "ztf_20260112_programid1", "partition": 3, "offset": "42",
                "timestamp": "2026-01-12 06:40:00.123000 UTC", "key": null,
                "value": "T2JqAQ==", "headers": [{"key": "h", "value": "dg=="}]
            })
        );
        let names: Vec<String> = table_fields().into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "topic",
                "partition",
                "offset",
                "timestamp",
                "key",
                "value",
                "headers"
            ]
        );
    }
}
