//! Logs as OpenMSIStream's programs send them (openmsistream `utilities/log_producibles.py`,
//! produced by `utilities/controlled_processes_heartbeats_logs.py`): key `<program_id>_log`,
//! value the JSON object `{"timestamp": <seconds since the epoch, a float>, "messages":
//! [<log line>, …]}` holding the lines logged since the previous message, every
//! `log.interval.secs` (60 by default), once at the start and once more at the stop.
//!
//! The lines are the process's own (ferry's logging keeps them in
//! [`ferry_connector_api::logs`], as OpenMSIStream's global `LoggingHandler` does):
//! `LEVEL message key=value …`, at the levels ferry prints (`RUST_LOG`, `/admin/loggers`)
//! and `log.level`. Sent through the runtime's producer: the connector holds no Kafka client.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_connector_api::logs::{LogLevel, LogLines};
use ferry_connector_api::{ConfigError, ConnectorProps, ProducerRecord};

use crate::periodic;

/// OpenMSIStream's `max.logs.per.message` default: lines kept between two messages.
const MAX_MESSAGES: usize = 65536;

/// `log.*` keys.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `log.topic.name`: OpenMSIStream's `--log_topic_name`; no logs to Kafka without it.
    pub topic: String,
    /// `log.program.id`: `--log_program_id`; default: the connector's name.
    pub program_id: Option<String>,
    /// `log.interval.secs`: `--log_interval_secs`, default 60 (OpenMSIStream's).
    pub interval: Duration,
    /// `log.max.messages`: lines kept between two messages (the `[log]` section's
    /// `max.logs.per.message`), default 65536; older ones are dropped and counted.
    pub max_messages: usize,
    /// `log.level`: the least severe level sent (the `[log]` section's `log.level`:
    /// `DEBUG`, `INFO`, `WARNING`, `ERROR`); default: every line ferry prints.
    pub level: LogLevel,
    /// `log.producer.*`: producer settings for the log topic's cluster (the `[log]`
    /// section), on top of the worker's.
    pub producer: BTreeMap<String, String>,
}

impl LogConfig {
    pub fn from_props(props: &mut ConnectorProps) -> Result<Option<Self>, ConfigError> {
        let program_id = props.take("log.program.id");
        let secs: Option<f64> =
            props.take_parsed("log.interval.secs", "a positive number of seconds")?;
        let max_messages: Option<usize> =
            props.take_parsed("log.max.messages", "a positive number of lines")?;
        let level = match props.take("log.level") {
            None => LogLevel::Trace,
            Some(l) => LogLevel::parse(&l).ok_or_else(|| {
                ConfigError::invalid(
                    "log.level",
                    "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
                )
            })?,
        };
        let producer = props.take_prefixed("log.producer.");
        let interval = periodic::interval("log.interval.secs", secs, Duration::from_secs(60))?;
        let max_messages = match max_messages {
            None => MAX_MESSAGES,
            Some(0) => {
                return Err(ConfigError::invalid(
                    "log.max.messages",
                    "must be a positive number of lines",
                ));
            }
            Some(n) => n,
        };
        let Some(topic) = props.take("log.topic.name") else {
            return Ok(None);
        };
        Ok(Some(Self {
            topic,
            program_id,
            interval,
            max_messages,
            level,
            producer,
        }))
    }
}

/// One log message.
pub(crate) fn record(topic: &str, program_id: &str, read: LogLines) -> ProducerRecord {
    let mut messages = Vec::with_capacity(read.lines.len() + 1);
    if read.missed > 0 {
        messages.push(format!(
            "WARN {} log lines were dropped before they could be sent; raise log.max.messages (max.logs.per.message) or lower log.interval.secs",
            read.missed
        ));
    }
    messages.extend(read.lines);
    // Python's time.time(): seconds since the epoch as a float.
    let now = jiff::Timestamp::now().as_microsecond() as f64 / 1e6;
    let value = serde_json::json!({ "timestamp": now, "messages": messages });
    periodic::record(topic, program_id, "log", &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_message_reads_as_openmsistreams() {
        let read = LogLines {
            lines: vec!["INFO File rebuilt. file=a.csv".into()],
            missed: 3,
        };
        let r = record("logs", "lab-1", read);
        assert_eq!(r.key.as_deref(), Some(&b"lab-1_log"[..]));
        let v: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        assert!(v["timestamp"].as_f64().unwrap() > 1.7e9, "{v}");
        let m = v["messages"].as_array().unwrap();
        assert_eq!(m.len(), 2);
        assert!(m[0].as_str().unwrap().contains("3 log lines were dropped"));
        assert_eq!(m[1], "INFO File rebuilt. file=a.csv");
        assert_eq!(v.as_object().unwrap().len(), 2);
    }

    #[test]
    fn keys_and_defaults() {
        let mut p = ConnectorProps::new(BTreeMap::from([
            ("log.topic.name".into(), "logs".into()),
            ("log.level".into(), "warning".into()),
            ("log.producer.acks".into(), "1".into()),
        ]));
        let c = LogConfig::from_props(&mut p).unwrap().unwrap();
        assert_eq!(c.interval, Duration::from_secs(60));
        assert_eq!(c.max_messages, MAX_MESSAGES);
        assert_eq!(c.level, LogLevel::Warn);
        assert_eq!(c.producer["acks"], "1");
        for (k, v) in [
            ("log.interval.secs", "0"),
            ("log.max.messages", "0"),
            ("log.level", "loud"),
        ] {
            let mut p = ConnectorProps::new(BTreeMap::from([(k.into(), v.into())]));
            let e = LogConfig::from_props(&mut p).unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
        let mut p = ConnectorProps::new(BTreeMap::new());
        assert_eq!(LogConfig::from_props(&mut p).unwrap(), None);
    }
}
