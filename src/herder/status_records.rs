//! The records of a distributed cluster's status topic, in Kafka Connect's own format
//! (`KafkaStatusBackingStore`): UTF-8 string keys, JSON values without schemas. Pure: bytes
//! in, bytes out.
//!
//! | key | value |
//! |---|---|
//! | `status-connector-<name>` | `{"state":…,"trace":…\|null,"worker_id":"host:port","generation":0}`; a tombstone when the connector is deleted |
//! | `status-task-<name>-<id>` | the same, for one task |
//! | `ferry-worker-<worker_id>` | ferry's own: `{"worker_id":…,"config.storage.topic":…,"slot":n}`, a worker's heartbeat; a tombstone when it stops cleanly |
//!
//! Connect's reader logs "Discarding record with invalid key" for a `ferry-worker-…` key
//! and goes on, so the topic stays readable by Connect's tools.

use serde::{Deserialize, Serialize};

const CONNECTOR: &str = "status-connector-";
const TASK: &str = "status-task-";
const WORKER: &str = "ferry-worker-";

/// Connect's `AbstractStatus` as written to the topic (field order as Connect's schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StatusValue {
    pub(crate) state: String,
    pub(crate) trace: Option<String>,
    pub(crate) worker_id: String,
    pub(crate) generation: i32,
}

/// A ferry worker's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WorkerValue {
    pub(crate) worker_id: String,
    #[serde(rename = "config.storage.topic")]
    pub(crate) config_topic: String,
    /// The worker's slot: its tasks are numbered `slot × tasks.max + local index`.
    pub(crate) slot: usize,
}

/// What one record of the status topic says; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StatusRecord {
    Connector {
        name: String,
        value: Option<StatusValue>,
    },
    Task {
        connector: String,
        task: usize,
        value: Option<StatusValue>,
    },
    Worker {
        worker_id: String,
        value: Option<WorkerValue>,
    },
    /// Connect's `status-topic-…` (active topics) records and keys nobody knows: read past.
    Other,
}

pub(crate) fn connector_key(name: &str) -> String {
    format!("{CONNECTOR}{name}")
}

pub(crate) fn task_key(connector: &str, task: usize) -> String {
    format!("{TASK}{connector}-{task}")
}

pub(crate) fn worker_key(worker_id: &str) -> String {
    format!("{WORKER}{worker_id}")
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn value<'a, T: Deserialize<'a>>(payload: Option<&'a [u8]>) -> Result<Option<T>, String> {
    payload
        .map(|p| {
            serde_json::from_slice(p).map_err(|e| format!("value is not the expected JSON: {e}"))
        })
        .transpose()
}

/// Reads one record; `Err` says why it is not the expected shape (the caller logs it with
/// the record's offset and goes on).
pub(crate) fn decode(key: Option<&[u8]>, payload: Option<&[u8]>) -> Result<StatusRecord, String> {
    let key = key.ok_or("record without a key")?;
    let key = std::str::from_utf8(key).map_err(|_| "key is not UTF-8".to_string())?;
    if let Some(name) = key.strip_prefix(CONNECTOR) {
        if name.is_empty() {
            return Err(format!("key {key} names no connector"));
        }
        return Ok(StatusRecord::Connector {
            name: name.to_string(),
            value: value(payload).map_err(|e| format!("key {key}: {e}"))?,
        });
    }
    if let Some(rest) = key.strip_prefix(TASK) {
        // As Connect: the task number follows the last '-'.
        let (connector, task) = rest
            .rsplit_once('-')
            .filter(|(c, _)| !c.is_empty())
            .and_then(|(c, t)| Some((c, t.parse::<usize>().ok()?)))
            .ok_or_else(|| format!("key {key} is not status-task-<connector>-<number>"))?;
        return Ok(StatusRecord::Task {
            connector: connector.to_string(),
            task,
            value: value(payload).map_err(|e| format!("key {key}: {e}"))?,
        });
    }
    if let Some(worker_id) = key.strip_prefix(WORKER) {
        return Ok(StatusRecord::Worker {
            worker_id: worker_id.to_string(),
            value: value(payload).map_err(|e| format!("key {key}: {e}"))?,
        });
    }
    Ok(StatusRecord::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(worker: &str) -> StatusValue {
        StatusValue {
            state: "RUNNING".into(),
            trace: None,
            worker_id: worker.into(),
            generation: 0,
        }
    }

    #[test]
    fn values_are_connects_json_field_for_field() {
        let v: serde_json::Value = serde_json::from_slice(&encode(&running("h:8083"))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"state":"RUNNING","trace":null,"worker_id":"h:8083","generation":0})
        );
        let failed = StatusValue {
            state: "FAILED".into(),
            trace: Some("boom".into()),
            ..running("h:1")
        };
        let text = String::from_utf8(encode(&failed)).unwrap();
        assert_eq!(
            text,
            r#"{"state":"FAILED","trace":"boom","worker_id":"h:1","generation":0}"#
        );
    }

    #[test]
    fn keys_round_trip_as_connect_parses_them() {
        assert_eq!(task_key("my-sink", 12), "status-task-my-sink-12");
        let r = decode(
            Some(task_key("my-sink", 12).as_bytes()),
            Some(&encode(&running("w"))),
        )
        .unwrap();
        assert_eq!(
            r,
            StatusRecord::Task {
                connector: "my-sink".into(),
                task: 12,
                value: Some(running("w"))
            }
        );
        let r = decode(Some(connector_key("a-b").as_bytes()), None).unwrap();
        assert_eq!(
            r,
            StatusRecord::Connector {
                name: "a-b".into(),
                value: None
            }
        );
        // A value written by Java Connect (generation as a JSON number, trace absent).
        let r = decode(
            Some(b"status-connector-x"),
            Some(br#"{"state":"PAUSED","worker_id":"j:8083","generation":7}"#),
        )
        .unwrap();
        let StatusRecord::Connector { value: Some(v), .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(
            (v.state.as_str(), v.generation, v.trace),
            ("PAUSED", 7, None)
        );
    }

    #[test]
    fn worker_records_and_other_keys() {
        let w = WorkerValue {
            worker_id: "h:1".into(),
            config_topic: "cfg".into(),
            slot: 2,
        };
        let text = String::from_utf8(encode(&w)).unwrap();
        assert_eq!(
            text,
            r#"{"worker_id":"h:1","config.storage.topic":"cfg","slot":2}"#
        );
        assert_eq!(
            decode(Some(worker_key("h:1").as_bytes()), Some(text.as_bytes())).unwrap(),
            StatusRecord::Worker {
                worker_id: "h:1".into(),
                value: Some(w)
            }
        );
        assert_eq!(
            decode(Some(b"status-topic-t:connector-c"), Some(b"{}")).unwrap(),
            StatusRecord::Other
        );
    }

    #[test]
    fn bad_records_say_why() {
        for (key, value) in [
            (None, Some(&b"{}"[..])),
            (Some(&b"status-task-c-x"[..]), None),
            (Some(&b"status-task--1"[..]), None),
            (Some(&b"status-connector-"[..]), None),
            (Some(&b"status-connector-c"[..]), Some(&b"{not json"[..])),
            (
                Some(&b"status-task-c-1"[..]),
                Some(&br#"{"state":"RUNNING"}"#[..]),
            ),
        ] {
            let e = decode(key, value).unwrap_err();
            assert!(!e.is_empty());
        }
        let e = decode(Some(b"status-task-c-x"), None).unwrap_err();
        assert!(e.contains("status-task-c-x"), "{e}");
    }
}
