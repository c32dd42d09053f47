//! Heartbeats as OpenMSIStream's download programs send them
//! (openmsistream `utilities/heartbeat_producibles.py`, `MessageProcessorHeartbeatProducible`
//! produced by `kafka_wrapper/controlled_message_processor.py`): key
//! `<program_id>_heartbeat`, value the JSON object `{"timestamp": <UTC ISO 8601>,
//! "n_messages_read", "n_messages_processed", "n_bytes_read", "n_bytes_processed"}`, the
//! counts since the previous heartbeat, every `heartbeat.interval.secs`, once at the start and
//! once more at the stop (see [`crate::periodic`]).
//!
//! Sent through the runtime's producer ([`ferry_connector_api::RecordProducer`]): the
//! connector never holds a Kafka client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry_connector_api::{ConfigError, ConnectorProps, ProducerRecord};

use crate::periodic;

/// `heartbeat.*` keys.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatConfig {
    /// `heartbeat.topic.name`: OpenMSIStream's `--heartbeat_topic_name`; no heartbeats
    /// without it.
    pub topic: String,
    /// `heartbeat.program.id`: `--heartbeat_program_id`; default: the connector's name.
    pub program_id: Option<String>,
    /// `heartbeat.interval.secs`: `--heartbeat_interval_secs`, default 900 (OpenMSIStream's
    /// 15 minutes).
    pub interval: Duration,
    /// `heartbeat.producer.*`: producer settings for the heartbeat's cluster (OpenMSIStream's
    /// `[heartbeat]` section), on top of the worker's.
    pub producer: BTreeMap<String, String>,
}

impl HeartbeatConfig {
    pub fn from_props(props: &mut ConnectorProps) -> Result<Option<Self>, ConfigError> {
        let program_id = props.take("heartbeat.program.id");
        let secs: Option<f64> =
            props.take_parsed("heartbeat.interval.secs", "a positive number of seconds")?;
        let producer = props.take_prefixed("heartbeat.producer.");
        let interval =
            periodic::interval("heartbeat.interval.secs", secs, Duration::from_secs(900))?;
        let Some(topic) = props.take("heartbeat.topic.name") else {
            return Ok(None);
        };
        Ok(Some(Self {
            topic,
            program_id,
            interval,
            producer,
        }))
    }
}

/// Counts since the last heartbeat, shared by the connector's tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) read: AtomicU64,
    pub(crate) processed: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) bytes_processed: AtomicU64,
}

impl Counters {
    pub(crate) fn take(&self) -> [u64; 4] {
        [
            self.read.swap(0, Ordering::Relaxed),
            self.processed.swap(0, Ordering::Relaxed),
            self.bytes_read.swap(0, Ordering::Relaxed),
            self.bytes_processed.swap(0, Ordering::Relaxed),
        ]
    }
}

/// One heartbeat record.
pub(crate) fn record(topic: &str, program_id: &str, counts: [u64; 4]) -> ProducerRecord {
    let now = jiff::Timestamp::now();
    // Python's datetime.now(timezone.utc).isoformat().
    let timestamp = now.strftime("%Y-%m-%dT%H:%M:%S.%6f+00:00").to_string();
    let value = serde_json::json!({
        "timestamp": timestamp,
        "n_messages_read": counts[0],
        "n_messages_processed": counts[1],
        "n_bytes_read": counts[2],
        "n_bytes_processed": counts[3],
    });
    periodic::record(topic, program_id, "heartbeat", &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_reads_as_openmsistreams() {
        let r = record("hb", "lab-1", [5, 4, 3000, 2000]);
        assert_eq!(r.key.as_deref(), Some(&b"lab-1_heartbeat"[..]));
        let v: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        assert_eq!(v["n_messages_read"], 5);
        assert_eq!(v["n_bytes_processed"], 2000);
        let ts = v["timestamp"].as_str().unwrap();
        assert!(ts.ends_with("+00:00") && ts.len() == 32, "{ts}");
    }

    #[test]
    fn keys_and_defaults() {
        let mut p = ConnectorProps::new(BTreeMap::from([
            ("heartbeat.topic.name".into(), "hb".into()),
            ("heartbeat.interval.secs".into(), "0.5".into()),
        ]));
        let c = HeartbeatConfig::from_props(&mut p).unwrap().unwrap();
        assert_eq!(c.interval, Duration::from_millis(500));
        assert_eq!(c.program_id, None);
        let mut p = ConnectorProps::new(BTreeMap::from([(
            "heartbeat.interval.secs".into(),
            "-1".into(),
        )]));
        // Without a topic there are no heartbeats, but a bad interval is still named.
        assert!(HeartbeatConfig::from_props(&mut p).is_err());
        let mut p = ConnectorProps::new(BTreeMap::new());
        assert_eq!(HeartbeatConfig::from_props(&mut p).unwrap(), None);
    }
}
