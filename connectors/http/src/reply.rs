//! Replies: each answer produced to the result topic, each failure to the error topic,
//! keyed by the request's key and with headers naming the request, so that a caller can
//! match a reply to its request (hetida designer's own consumer answers with no key).

use bytes::Bytes;
use ferry_connector_api::{Header, ProducerRecord, SinkRecord};

use crate::config::ErrorsAs;
use crate::service::Answer;

/// Header names, after Confluent's reporter (`input_record_*`) plus the HTTP status.
pub(crate) const TOPIC: &str = "input_record_topic";
pub(crate) const PARTITION: &str = "input_record_partition";
pub(crate) const OFFSET: &str = "input_record_offset";
pub(crate) const TIMESTAMP: &str = "input_record_timestamp";
/// The offset of the last record of a batched request (absent for one record).
pub(crate) const LAST_OFFSET: &str = "input_record_last_offset";
pub(crate) const STATUS: &str = "http_status_code";
pub(crate) const ERROR: &str = "error_message";

fn header(key: &str, value: impl Into<String>) -> Header {
    Header {
        key: key.to_string(),
        value: Some(Bytes::from(value.into())),
    }
}

/// The headers and key every reply to `records` (one request, one partition) carries.
fn base(topic: &str, records: &[SinkRecord]) -> ProducerRecord {
    let mut headers = Vec::new();
    if let (Some(first), Some(last)) = (records.first(), records.last()) {
        headers.push(header(TOPIC, first.topic.to_string()));
        headers.push(header(PARTITION, first.partition.to_string()));
        headers.push(header(OFFSET, first.offset.to_string()));
        if let Some((ts, _)) = first.timestamp {
            headers.push(header(TIMESTAMP, ts.to_string()));
        }
        if records.len() > 1 {
            headers.push(header(LAST_OFFSET, last.offset.to_string()));
        }
    }
    ProducerRecord {
        topic: topic.to_string(),
        key: records
            .first()
            .and_then(|r| r.key.as_ref())
            .map(|k| k.to_bytes()),
        value: None,
        headers,
        timestamp: None,
    }
}

/// The server's answer, for the result topic.
pub(crate) fn result(topic: &str, records: &[SinkRecord], answer: &Answer) -> ProducerRecord {
    let mut r = base(topic, records);
    r.headers.push(header(STATUS, answer.status.to_string()));
    r.value = Some(answer.body.clone());
    r
}

/// A request that failed for good, for the error topic: the reason (or the server's body,
/// with `report.errors.as=http_response`), the status when there was an answer.
pub(crate) fn error(
    topic: &str,
    records: &[SinkRecord],
    answer: Option<&Answer>,
    reason: &str,
    errors_as: ErrorsAs,
) -> ProducerRecord {
    let mut r = base(topic, records);
    if let Some(a) = answer {
        r.headers.push(header(STATUS, a.status.to_string()));
    }
    r.headers.push(header(ERROR, reason));
    r.value = Some(match (errors_as, answer) {
        (ErrorsAs::HttpResponse, Some(a)) => a.body.clone(),
        _ => Bytes::from(reason.to_string()),
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_connector_api::{TimestampType, Value};
    use std::sync::Arc;

    fn rec(offset: i64) -> SinkRecord {
        SinkRecord {
            topic: Arc::from("hd-execution-topic"),
            partition: 3,
            offset,
            timestamp: Some((1_700_000_000_000, TimestampType::CreateTime)),
            key: Some(Value::Bytes(Bytes::from_static(b"exec_job_1"))),
            value: Some(Value::Bytes(Bytes::from_static(b"{}"))),
            headers: vec![],
            original_topic: None,
        }
    }

    fn h(r: &ProducerRecord, k: &str) -> Option<String> {
        r.headers
            .iter()
            .find(|h| h.key == k)
            .and_then(|h| h.value.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn a_result_carries_the_request_key_and_coordinates() {
        let answer = Answer {
            status: 200,
            body: Bytes::from_static(br#"{"result":"ok"}"#),
        };
        let r = result("replies", &[rec(41)], &answer);
        assert_eq!(r.topic, "replies");
        assert_eq!(r.key.as_deref(), Some(&b"exec_job_1"[..]));
        assert_eq!(r.value.as_deref(), Some(&br#"{"result":"ok"}"#[..]));
        assert_eq!(h(&r, TOPIC).as_deref(), Some("hd-execution-topic"));
        assert_eq!(h(&r, PARTITION).as_deref(), Some("3"));
        assert_eq!(h(&r, OFFSET).as_deref(), Some("41"));
        assert_eq!(h(&r, TIMESTAMP).as_deref(), Some("1700000000000"));
        assert_eq!(h(&r, STATUS).as_deref(), Some("200"));
        assert_eq!(h(&r, LAST_OFFSET), None);
        let r = result("replies", &[rec(41), rec(42)], &answer);
        assert_eq!(h(&r, LAST_OFFSET).as_deref(), Some("42"));
    }

    #[test]
    fn an_error_carries_the_reason_or_the_body() {
        let answer = Answer {
            status: 400,
            body: Bytes::from_static(b"bad wiring"),
        };
        let r = error(
            "errs",
            &[rec(7)],
            Some(&answer),
            "POST … answered 400",
            ErrorsAs::ErrorString,
        );
        assert_eq!(
            r.value.as_deref(),
            Some(&b"POST \xe2\x80\xa6 answered 400"[..])
        );
        assert_eq!(h(&r, STATUS).as_deref(), Some("400"));
        assert_eq!(h(&r, ERROR).as_deref(), Some("POST … answered 400"));
        let r = error(
            "errs",
            &[rec(7)],
            Some(&answer),
            "x",
            ErrorsAs::HttpResponse,
        );
        assert_eq!(r.value.as_deref(), Some(&b"bad wiring"[..]));
    }
}
