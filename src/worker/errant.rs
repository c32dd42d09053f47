//! `errors.tolerance` applied to records that fail at any stage (the converters, the sink's
//! own errors), and Kafka Connect's reporters: the log line, and the dead-letter queue
//! (`dead_letter.rs`) when the connector has one.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ferry_connector_api::{ErrantRecordReporter, RecordError, SinkRecord, TaskError};

use super::dead_letter::DeadLetters;
use super::originals::Originals;
use super::status::TaskStatus;
use crate::config::connector::{ErrorPolicy, ErrorTolerance};

/// The runtime's [`ErrantRecordReporter`].
#[derive(Debug)]
pub(crate) struct Errant {
    pub(crate) policy: ErrorPolicy,
    pub(crate) status: Arc<TaskStatus>,
    /// The connector's dead-letter queue, if it has one.
    pub(crate) dead_letters: Option<DeadLetters>,
    /// The records transformed records were made from: reporters show what was read.
    pub(crate) originals: Option<Arc<Originals>>,
}

/// At most this much of a key or value goes into a log line.
const MAX_LOGGED_BYTES: usize = 256;

fn preview(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "null".into(),
        Some(b) => {
            let shown = &b[..b.len().min(MAX_LOGGED_BYTES)];
            let mut s = String::from_utf8_lossy(shown).escape_debug().to_string();
            if b.len() > MAX_LOGGED_BYTES {
                s.push_str(&format!("… ({} bytes)", b.len()));
            }
            s
        }
    }
}

impl ErrantRecordReporter for Errant {
    fn report(&self, record: &SinkRecord, error: &RecordError) -> Result<(), TaskError> {
        // A record the transforms changed is reported as it was read (Connect's reporters
        // write the original ConsumerRecord).
        let original = self.originals.as_ref().and_then(|o| o.original_of(record));
        let record = original.as_ref().unwrap_or(record);
        let size = record.size();
        let skipped = matches!(self.policy.tolerance, ErrorTolerance::All);
        self.status.metrics.record_error(skipped);
        // As Kafka Connect's reporters: the dead-letter queue gets the record under either
        // tolerance (under `none`, just before the task fails).
        let dead_letter = self.dead_letters.as_ref().map(|d| {
            d.send(record, error);
            d.sink.describe()
        });
        if let Some(reason) = self.dead_letters.as_ref().and_then(|d| d.pending.failure()) {
            return Err(TaskError::fatal(reason));
        }
        match self.policy.tolerance {
            ErrorTolerance::None => Err(TaskError::fatal(format!(
                "record {} ({size} bytes) cannot be delivered ({}): {error}. errors.tolerance=none stops the task{}; set errors.tolerance=all to {} such records",
                record.coordinates(),
                error.stage,
                if dead_letter.is_some() {
                    " (the record is also sent to the dead-letter queue, as Kafka Connect does)"
                } else {
                    ""
                },
                if dead_letter.is_some() {
                    "send to the dead-letter queue and skip"
                } else {
                    "log and skip"
                },
            ))),
            ErrorTolerance::All => {
                self.status.skipped.fetch_add(1, Ordering::Relaxed);
                // Kafka Connect logs only with errors.log.enable=true; ferry always names the
                // skipped record so that no record disappears without a trace.
                // tracing skips `None` fields, so key and value appear only when asked for.
                let (key, value) = if self.policy.log_include_messages {
                    (
                        Some(preview(record.key.as_ref().map(|k| k.as_bytes()))),
                        Some(preview(record.value.as_ref().map(|v| v.as_bytes()))),
                    )
                } else {
                    (None, None)
                };
                tracing::warn!(
                    connector = %self.status.connector,
                    task = self.status.task_id,
                    topic = %record.consumed_topic(),
                    partition = record.partition,
                    offset = record.offset,
                    size,
                    key,
                    value,
                    stage = %error.stage,
                    error = %error,
                    dead_letter,
                    "Skipping a record the sink cannot deliver (errors.tolerance=all)."
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn errant(tolerance: ErrorTolerance) -> Errant {
        Errant {
            policy: ErrorPolicy {
                tolerance,
                log_enable: true,
                log_include_messages: false,
                retry_delay_max: Duration::from_secs(60),
                retry_timeout: None,
            },
            status: Arc::new(TaskStatus::new("c", 0)),
            dead_letters: None,
            originals: None,
        }
    }

    fn record() -> SinkRecord {
        SinkRecord {
            topic: "alerts".into(),
            original_topic: None,
            partition: 2,
            offset: 17,
            timestamp: None,
            key: None,
            value: Some(ferry_connector_api::Value::Bytes(bytes::Bytes::from(
                vec![0u8; 11],
            ))),
            headers: vec![],
        }
    }

    #[test]
    fn none_fails_the_task_naming_the_record() {
        let err = errant(ErrorTolerance::None)
            .report(&record(), &RecordError::new("larger than the 10 MB limit"))
            .unwrap_err();
        assert!(!err.is_retriable());
        assert!(err.to_string().starts_with(
            "record topic=alerts partition=2 offset=17 (11 bytes) cannot be delivered (TASK_PUT): larger than the 10 MB limit"
        ), "{err}");
    }

    #[test]
    fn all_counts_and_continues() {
        let e = errant(ErrorTolerance::All);
        e.report(&record(), &RecordError::new("too big")).unwrap();
        assert_eq!(e.status.skipped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn previews_are_bounded() {
        assert_eq!(preview(None), "null");
        let long = vec![b'a'; 300];
        let p = preview(Some(&long));
        assert!(p.ends_with("… (300 bytes)") && p.len() < 300, "{p}");
    }
}
