//! The dead-letter queue: failed records written, as they were read, to a Kafka topic
//! (Kafka Connect's `errors.deadletterqueue.topic.name`) and/or to a directory (ferry's
//! `ferry.errors.deadletterqueue.directory`, for source brokers nobody may write to).
//!
//! A record sent here holds its partition's committable offset until every destination has
//! acknowledged it ([`Pending`]): an outage of the dead-letter cluster or a full disk stops
//! commits at that record, never drops it. Writes are retried with the connector's
//! `errors.retry.delay.max.ms` back-off until they succeed or ferry stops (then the record is
//! read again at the next start); a write that can never succeed (the cluster refuses the
//! record) fails the task, as a sink's fatal error would.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ferry_connector_api::{
    Header, ProducerRecord, RecordError, SinkRecord, Stage, TaskError, TimestampType,
    TopicPartition,
};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::config::dlq::DeadLetterQueue;
use crate::producer::KafkaProducer;

/// Records whose dead-letter writes are not acknowledged yet. The driver commits no offset
/// past the first of them, and waits for room before it takes more records.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    state: Mutex<State>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Per partition, per offset, how many destinations are still to acknowledge.
    records: BTreeMap<TopicPartition, BTreeMap<i64, usize>>,
    bytes: usize,
    /// A write that can never succeed: the task fails with this.
    failed: Option<String>,
}

/// Unacknowledged dead letters a task may hold before it stops taking records: the bound on
/// the memory a dead-letter outage can take.
const MAX_PENDING_BYTES: usize = 32 * 1024 * 1024;

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, tp: &TopicPartition, offset: i64, bytes: usize) {
        let mut s = self.lock();
        *s.records
            .entry(tp.clone())
            .or_default()
            .entry(offset)
            .or_default() += 1;
        s.bytes += bytes;
    }

    fn done(&self, tp: &TopicPartition, offset: i64, bytes: usize) {
        let mut s = self.lock();
        if let Some(offsets) = s.records.get_mut(tp) {
            if let Some(n) = offsets.get_mut(&offset) {
                *n -= 1;
                if *n == 0 {
                    offsets.remove(&offset);
                }
            }
            if offsets.is_empty() {
                s.records.remove(tp);
            }
        }
        s.bytes = s.bytes.saturating_sub(bytes);
        drop(s);
        self.changed.notify_waiters();
    }

    fn fail(&self, reason: String) {
        self.lock().failed.get_or_insert(reason);
        self.changed.notify_waiters();
    }

    /// The write that can never succeed, if one failed.
    pub(crate) fn failure(&self) -> Option<String> {
        self.lock().failed.clone()
    }

    /// `safe` with each partition's offset capped at its first unacknowledged dead letter:
    /// that record is not delivered anywhere yet.
    pub(crate) fn cap(
        &self,
        mut safe: ferry_connector_api::Offsets,
    ) -> ferry_connector_api::Offsets {
        let s = self.lock();
        for (tp, o) in safe.iter_mut() {
            if let Some(first) = s.records.get(tp).and_then(|m| m.keys().next()) {
                *o = (*o).min(*first);
            }
        }
        safe
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().records.is_empty()
    }

    /// Waits until fewer than [`MAX_PENDING_BYTES`] are unacknowledged (or a write failed).
    pub(crate) async fn room(&self) {
        loop {
            let notified = self.changed.notified();
            {
                let s = self.lock();
                if s.bytes < MAX_PENDING_BYTES || s.failed.is_some() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Waits until every dead letter is acknowledged (or a write failed), at most `timeout`.
    pub(crate) async fn settle(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, async {
            loop {
                let notified = self.changed.notified();
                if self.is_empty() || self.failure().is_some() {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }
}

/// A connector's dead-letter destinations.
#[derive(Debug)]
pub(crate) struct DeadLetterSink {
    pub(crate) config: DeadLetterQueue,
    /// The producer for `config.topic`.
    pub(crate) producer: Option<Arc<KafkaProducer>>,
    pub(crate) connector: String,
    pub(crate) retry_delay_max: Duration,
}

impl DeadLetterSink {
    /// The connector's dead-letter queue (None: it has none), its producer built now so
    /// that a bad `producer.*` setting is one line at start-up.
    pub(crate) fn start(
        connector: &crate::config::ConnectorConfig,
        producers: &crate::producer::Producers,
    ) -> Result<Option<Self>, String> {
        let config = connector.dead_letter.clone();
        if !config.is_enabled() {
            return Ok(None);
        }
        let producer = match &config.topic {
            Some(_) => Some(
                producers
                    .get(&BTreeMap::new())
                    .map_err(|e| format!("the dead-letter queue's producer: {e}"))?,
            ),
            None => None,
        };
        let sink = Self {
            config,
            producer,
            connector: connector.name.clone(),
            retry_delay_max: connector.errors.retry_delay_max,
        };
        tracing::info!(connector = %sink.connector, destination = %sink.describe(), context_headers = sink.config.context_headers, "Failed records go to the dead-letter queue; their offsets are committed once it has them.");
        Ok(Some(sink))
    }

    /// Where dead letters go, for log lines.
    pub(crate) fn describe(&self) -> String {
        let mut d = Vec::new();
        if let (Some(t), Some(p)) = (&self.config.topic, &self.producer) {
            d.push(format!("topic {t} on {}", p.brokers()));
        }
        if let Some(dir) = &self.config.directory {
            d.push(format!("directory {}", dir.display()));
        }
        d.join(" and ")
    }
}

/// One task's way to its connector's dead-letter destinations.
#[derive(Debug)]
pub(crate) struct DeadLetters {
    pub(crate) sink: Arc<DeadLetterSink>,
    pub(crate) task_id: usize,
    pub(crate) pending: Arc<Pending>,
    pub(crate) rt: Handle,
    /// Cancelled at shutdown: retries stop, the records stay uncommitted.
    pub(crate) cancel: CancellationToken,
    /// The task's status, whose series count dead-letter requests and failures.
    pub(crate) status: Arc<super::status::TaskStatus>,
}

/// The Java exception class Kafka Connect would report for an error at `stage`: converters
/// and transforms throw `DataException`; a sink's own errors are `ConnectException`s.
fn exception_class(stage: Stage) -> &'static str {
    match stage {
        Stage::TaskPut => "org.apache.kafka.connect.errors.ConnectException",
        _ => "org.apache.kafka.connect.errors.DataException",
    }
}

/// Kafka Connect's class for errors a sink reports itself (`WorkerErrantRecordReporter`).
const SINK_TASK_CLASS: &str = "org.apache.kafka.connect.sink.SinkTask";

/// Kafka Connect's context headers (`DeadLetterQueueReporter`), in its order; every value
/// is UTF-8 text.
pub(crate) fn context(
    connector: &str,
    task_id: usize,
    record: &SinkRecord,
    error: &RecordError,
) -> Vec<(&'static str, String)> {
    let exception = exception_class(error.stage);
    vec![
        (
            "__connect.errors.topic",
            record.consumed_topic().to_string(),
        ),
        ("__connect.errors.partition", record.partition.to_string()),
        ("__connect.errors.offset", record.offset.to_string()),
        ("__connect.errors.connector.name", connector.to_string()),
        ("__connect.errors.task.id", task_id.to_string()),
        ("__connect.errors.stage", error.stage.as_str().to_string()),
        (
            "__connect.errors.class.name",
            error
                .class_name
                .clone()
                .unwrap_or_else(|| SINK_TASK_CLASS.to_string()),
        ),
        (
            "__connect.errors.exception.class.name",
            exception.to_string(),
        ),
        ("__connect.errors.exception.message", error.reason.clone()),
        // Java prints the exception's class and message, then its frames; ferry has no
        // frames to give.
        (
            "__connect.errors.exception.stacktrace",
            format!("{exception}: {}\n", error.reason),
        ),
    ]
}

impl DeadLetters {
    /// Starts the writes of `record` to every destination; its offset is held until they
    /// are acknowledged.
    pub(crate) fn send(&self, record: &SinkRecord, error: &RecordError) {
        let tp = record.topic_partition();
        let bytes = record.size();
        let context = context(&self.sink.connector, self.task_id, record, error);
        if let (Some(topic), Some(producer)) = (&self.sink.config.topic, &self.sink.producer) {
            let mut headers = record.headers.clone();
            if self.sink.config.context_headers {
                headers.extend(context.iter().map(|(k, v)| Header {
                    key: (*k).to_string(),
                    value: Some(bytes::Bytes::from(v.clone().into_bytes())),
                }));
            }
            let letter = ProducerRecord {
                topic: topic.clone(),
                key: record.key.as_ref().map(|k| k.to_bytes()),
                value: record.value.as_ref().map(|v| v.to_bytes()),
                headers,
                timestamp: record.timestamp.map(|(t, _)| t),
            };
            self.pending.add(&tp, record.offset, bytes);
            // Queued here, in the caller's order.
            let first = producer.enqueue(&letter);
            let producer = producer.clone();
            self.status.metrics.dead_letter_sent();
            let write = Retried {
                status: self.status.clone(),
                pending: self.pending.clone(),
                cancel: self.cancel.clone(),
                tp: tp.clone(),
                offset: record.offset,
                bytes,
                max_delay: self.sink.retry_delay_max,
                what: format!("topic {topic} on {}", producer.brokers()),
            };
            self.rt.spawn(write.run(first, move || {
                let producer = producer.clone();
                let letter = letter.clone();
                async move { producer.enqueue(&letter).await }
            }));
        }
        if let Some(dir) = &self.sink.config.directory {
            self.pending.add(&tp, record.offset, bytes);
            let file = DeadLetterFile::new(dir, &self.sink.connector, record, &context);
            self.status.metrics.dead_letter_sent();
            let write = Retried {
                status: self.status.clone(),
                pending: self.pending.clone(),
                cancel: self.cancel.clone(),
                tp,
                offset: record.offset,
                bytes,
                max_delay: self.sink.retry_delay_max,
                what: format!("directory {}", dir.display()),
            };
            let file = Arc::new(file);
            let attempt = move || {
                let file = file.clone();
                async move {
                    match tokio::task::spawn_blocking(move || file.write()).await {
                        Ok(result) => result,
                        Err(e) => Err(TaskError::retriable(format!(
                            "dead-letter write stopped: {e}"
                        ))),
                    }
                }
            };
            let first = attempt();
            self.rt.spawn(write.run(first, attempt));
        }
    }
}

/// One record's write to one destination, retried.
struct Retried {
    status: Arc<super::status::TaskStatus>,
    pending: Arc<Pending>,
    cancel: CancellationToken,
    tp: TopicPartition,
    offset: i64,
    bytes: usize,
    max_delay: Duration,
    what: String,
}

impl Retried {
    async fn run<F, Fut>(self, first: impl Future<Output = Result<(), TaskError>>, again: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), TaskError>>,
    {
        let mut result = first.await;
        let mut retry = super::driver::retry_backoff(self.max_delay).start();
        let mut warned = false;
        loop {
            match result {
                Ok(()) => {
                    if warned {
                        tracing::info!(partition = %self.tp, offset = self.offset, destination = %self.what, "Dead letter written after retries; the partition's offsets move on.");
                    }
                    self.pending.done(&self.tp, self.offset, self.bytes);
                    return;
                }
                Err(e) if e.is_retriable() => {
                    self.status.metrics.dead_letter_failed();
                    // One line per record, then the client's own (rate-limited) lines.
                    if !warned {
                        tracing::warn!(partition = %self.tp, offset = self.offset, destination = %self.what, error = %e.one_line(), "Cannot write a dead letter yet; retrying. Offsets of the partition are not committed past this record until it is written.");
                        warned = true;
                    }
                    // Stopping: the record stays uncommitted and is read again. (The
                    // policy has no limit: the wait always comes.)
                    if retry.wait(self.cancel.cancelled()).await != Ok(true) {
                        return;
                    }
                    result = again().await;
                }
                Err(e) => {
                    self.status.metrics.dead_letter_failed();
                    let line = format!(
                        "the dead letter of partition {} offset {} cannot be written to {}: {}; fix the destination (the record is read again at the next start)",
                        self.tp,
                        self.offset,
                        self.what,
                        e.one_line()
                    );
                    self.pending.fail(line);
                    return;
                }
            }
        }
    }
}

/// A record as files: its value (`<name>.value`) and a JSON sidecar (`<name>.json`) with
/// its key, headers, timestamp and Kafka Connect's error context. Names are
/// `<connector>/<topic>-<partition>-<offset>`: unique per record, so a record read again
/// after a restart replaces its own files instead of adding a copy.
#[derive(Debug)]
struct DeadLetterFile {
    dir: PathBuf,
    name: String,
    value: Option<bytes::Bytes>,
    sidecar: Vec<u8>,
}

impl DeadLetterFile {
    fn new(
        root: &Path,
        connector: &str,
        record: &SinkRecord,
        context: &[(&'static str, String)],
    ) -> Self {
        let name = format!(
            "{}-{}-{}",
            record.consumed_topic(),
            record.partition,
            record.offset
        );
        let value = record.value.as_ref().map(|v| v.to_bytes());
        let b64 = |b: &[u8]| serde_json::Value::String(BASE64.encode(b));
        let headers: Vec<serde_json::Value> = record
            .headers
            .iter()
            .map(|h| {
                serde_json::json!({
                    "key": h.key,
                    "value": h.value.as_deref().map(b64),
                })
            })
            .collect();
        let context: serde_json::Map<String, serde_json::Value> = context
            .iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::Value::String(v.clone())))
            .collect();
        let sidecar = serde_json::json!({
            "topic": record.consumed_topic().as_ref(),
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp.map(|(t, _)| t),
            "timestamp_type": record.timestamp.map(|(_, k)| match k {
                TimestampType::CreateTime => "CreateTime",
                TimestampType::LogAppendTime => "LogAppendTime",
            }),
            "key": record.key.as_ref().map(|k| b64(k.as_bytes())),
            "value_file": value.as_ref().map(|_| format!("{name}.value")),
            "value_bytes": value.as_ref().map(|v| v.len()),
            "headers": headers,
            "context": context,
        });
        Self {
            dir: root.join(connector),
            name,
            value,
            sidecar: serde_json::to_vec_pretty(&sidecar).unwrap_or_default(),
        }
    }

    /// Writes the value, then the sidecar (whose presence says the record is complete), each
    /// atomically: a temporary file, fsync, rename, fsync of the directory.
    fn write(&self) -> Result<(), TaskError> {
        let io = |what: &str, e: std::io::Error| {
            TaskError::retriable(format!("{what} {}", self.dir.display())).with_source(e)
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| io("create", e))?;
        if let Some(v) = &self.value {
            self.atomic(&format!("{}.value", self.name), v)
                .map_err(|e| io("write a dead letter in", e))?;
        }
        self.atomic(&format!("{}.json", self.name), &self.sidecar)
            .map_err(|e| io("write a dead letter in", e))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync", e))
    }

    fn atomic(&self, file: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".dead-letter-")
            .tempfile_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.dir.join(file)).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    #[test]
    fn pending_dead_letters_cap_the_committable_offset() {
        let p = Pending::default();
        let safe =
            ferry_connector_api::Offsets::from([(tp(), 10), (TopicPartition::new("u", 1), 4)]);
        assert_eq!(p.cap(safe.clone()), safe);
        p.add(&tp(), 5, 1);
        p.add(&tp(), 7, 1);
        p.add(&tp(), 5, 1); // the topic and the directory
        let capped = p.cap(safe.clone());
        assert_eq!(
            capped[&tp()],
            5,
            "the record at 5 is not delivered anywhere yet"
        );
        assert_eq!(capped[&TopicPartition::new("u", 1)], 4);
        p.done(&tp(), 5, 1);
        assert_eq!(p.cap(safe.clone())[&tp()], 5, "one destination still to go");
        p.done(&tp(), 5, 1);
        assert_eq!(p.cap(safe.clone())[&tp()], 7);
        p.done(&tp(), 7, 1);
        assert_eq!(p.cap(safe.clone()), safe);
        assert!(p.is_empty());
    }

    #[tokio::test]
    async fn a_backlog_at_its_bound_waits_until_writes_are_acknowledged() {
        let p = Arc::new(Pending::default());
        p.add(&tp(), 1, MAX_PENDING_BYTES);
        let waiting = tokio::spawn({
            let p = p.clone();
            async move { p.room().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "no room while the backlog is at its bound"
        );
        p.done(&tp(), 1, MAX_PENDING_BYTES);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("room once acknowledged")
            .unwrap();
        // settle: bounded when something stays pending, at once when nothing is.
        p.add(&tp(), 2, 1);
        let t = std::time::Instant::now();
        p.settle(Duration::from_millis(100)).await;
        assert!(t.elapsed() >= Duration::from_millis(100));
        p.fail("refused".into());
        p.settle(Duration::from_secs(60)).await;
        assert_eq!(p.failure().as_deref(), Some("refused"));
    }

    #[test]
    fn context_headers_are_connects() {
        let record = SinkRecord {
            topic: "alerts".into(),
            partition: 2,
            offset: 17,
            timestamp: None,
            key: None,
            value: None,
            headers: vec![],
            original_topic: None,
        };
        let error = RecordError::at(Stage::ValueConverter, "not JSON")
            .with_class("org.apache.kafka.connect.json.JsonConverter");
        let h = context("c", 3, &record, &error);
        let names: Vec<&str> = h.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "__connect.errors.topic",
                "__connect.errors.partition",
                "__connect.errors.offset",
                "__connect.errors.connector.name",
                "__connect.errors.task.id",
                "__connect.errors.stage",
                "__connect.errors.class.name",
                "__connect.errors.exception.class.name",
                "__connect.errors.exception.message",
                "__connect.errors.exception.stacktrace",
            ]
        );
        let values: Vec<&str> = h.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            &values[..8],
            &[
                "alerts",
                "2",
                "17",
                "c",
                "3",
                "VALUE_CONVERTER",
                "org.apache.kafka.connect.json.JsonConverter",
                "org.apache.kafka.connect.errors.DataException"
            ]
        );
        let h = context("c", 0, &record, &RecordError::new("too big"));
        assert_eq!(h[5].1, "TASK_PUT");
        assert_eq!(h[6].1, "org.apache.kafka.connect.sink.SinkTask");
    }
}
