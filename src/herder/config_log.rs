//! A distributed cluster's config topic as a log the herder writes to and follows, like
//! Kafka Connect's `KafkaBasedLog`: every worker reads the topic from its beginning at start
//! and then follows it, applying each record to its own herder in order; a write through
//! the REST API on any worker appends a record and answers once this worker has read its
//! own write back — so every worker sees the same history in the same order, and Kafka is
//! the only place the cluster's configuration lives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::config_records::{ConfigRecord, Encoded, decode};
use crate::config::distributed::DistributedConfig;
use crate::kafka::ProbeContext;
use crate::topics::{self, Ensured, TopicSpec};

/// How long a write may take to be acknowledged and read back (Connect's
/// `READ_TO_END_TIMEOUT_MS`).
const READ_BACK: Duration = Duration::from_secs(30);
/// How long the topic's first read may take at start.
const START: Duration = Duration::from_secs(30);

/// One record read from the topic, decoded, with its offset.
#[derive(Debug)]
pub(crate) struct Read {
    pub(crate) offset: i64,
    pub(crate) record: Result<ConfigRecord, String>,
}

/// The writing half, shared by the herder's operations.
pub(crate) struct ConfigLog {
    topic: String,
    producer: FutureProducer<ProbeContext>,
    /// One past the offset of the last record the herder has applied.
    applied: watch::Receiver<i64>,
    /// Set by the herder's follower as it applies records.
    pub(crate) progress: watch::Sender<i64>,
    /// False until the follower has applied everything the topic held at start.
    pub(crate) caught_up: AtomicBool,
}

impl std::fmt::Debug for ConfigLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigLog")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Why the config topic cannot be used; one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("config.storage.topic {topic}: {reason}")]
pub(crate) struct ConfigLogError {
    topic: String,
    reason: String,
}

impl ConfigLog {
    /// Creates the topic when it is missing (compacted, one partition), starts the thread
    /// that follows it, and returns the log with the records it reads. `client` holds the
    /// worker's connection and security settings.
    pub(crate) async fn open(
        client: &ClientConfig,
        settings: &DistributedConfig,
        cancel: CancellationToken,
    ) -> Result<(Arc<ConfigLog>, mpsc::Receiver<Read>, i64), ConfigLogError> {
        let topic = settings.config_topic.clone();
        let err = |reason: String| ConfigLogError {
            topic: topic.clone(),
            reason,
        };
        create_topic(
            client,
            &settings.config_topic,
            1,
            settings.config_replication,
        )
        .await
        .map_err(err)?;
        let consumer: BaseConsumer<ProbeContext> =
            reader_config(client, &format!("ferry-configs-{}", settings.group_id))
                .set("group.id", format!("{}-config-reader", settings.group_id))
                .create_with_context(ProbeContext::default())
                .map_err(|e| err(format!("cannot create its consumer: {e}")))?;
        let (partitions, end) = {
            let md = consumer
                .fetch_metadata(Some(&topic), START)
                .map_err(|e| err(format!("cannot read its metadata: {e}")))?;
            let count = md.topics().first().map_or(0, |t| t.partitions().len());
            let (_, high) = consumer
                .fetch_watermarks(&topic, 0, START)
                .map_err(|e| err(format!("cannot read its end offset: {e}")))?;
            (count, high)
        };
        if partitions != 1 {
            return Err(err(format!(
                "it has {partitions} partitions; Kafka Connect's config topic has exactly one (records of one connector must keep their order). Create it with one partition and cleanup.policy=compact"
            )));
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Beginning)
            .map_err(|e| err(e.to_string()))?;
        consumer.assign(&tpl).map_err(|e| err(e.to_string()))?;
        let producer: FutureProducer<ProbeContext> =
            writer_config(client, &format!("ferry-configs-{}", settings.group_id))
                .create_with_context(ProbeContext::default())
                .map_err(|e| err(format!("cannot create its producer: {e}")))?;
        let (tx, rx) = mpsc::channel(256);
        let thread_topic = topic.clone();
        std::thread::Builder::new()
            .name("ferry-configs".into())
            .spawn(move || follow(&consumer, &thread_topic, &tx, &cancel))
            .map_err(|e| err(format!("cannot start its reader: {e}")))?;
        let (progress, applied) = watch::channel(0);
        Ok((
            Arc::new(ConfigLog {
                topic,
                producer,
                applied,
                progress,
                caught_up: AtomicBool::new(end == 0),
            }),
            rx,
            end,
        ))
    }

    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    pub(crate) fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Appends records (in order) and waits until the herder has applied the last one.
    pub(crate) async fn write(&self, records: Vec<Encoded>) -> Result<(), String> {
        let mut last = -1;
        for (key, value) in records {
            let mut record: FutureRecord<'_, String, Vec<u8>> =
                FutureRecord::to(&self.topic).key(&key);
            if let Some(v) = &value {
                record = record.payload(v);
            }
            let delivered = self
                .producer
                .send(record, READ_BACK)
                .await
                .map_err(|(e, _)| {
                    format!("cannot write to the config topic {}: {e}", self.topic)
                })?;
            last = delivered.offset;
        }
        let mut applied = self.applied.clone();
        let read_back = applied.wait_for(|&a| a > last);
        match tokio::time::timeout(READ_BACK, read_back).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(format!(
                "the write to the config topic {} was not read back within {READ_BACK:?}",
                self.topic
            )),
        }
    }
}

/// The consumer settings of an internal topic's reader: the worker's client, assigned
/// partitions, nothing committed. The caller sets the `group.id` librdkafka's assign needs
/// (`<group>-<role>-reader`; the reader never joins or commits).
pub(super) fn reader_config(client: &ClientConfig, client_id: &str) -> ClientConfig {
    let mut c = client.clone();
    c.set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("client.id", client_id);
    c
}

/// The producer settings of an internal topic's writer: the worker's client without its
/// consumer keys, `acks=all`.
pub(super) fn writer_config(client: &ClientConfig, client_id: &str) -> ClientConfig {
    let mut c = client.clone();
    for key in [
        "enable.auto.commit",
        "enable.auto.offset.store",
        "enable.partition.eof",
        "auto.offset.reset",
        "group.id",
    ] {
        c.remove(key);
    }
    c.set("client.id", client_id).set("acks", "all");
    c
}

/// Creates a compacted internal topic unless the cluster already has it (a cluster where
/// workers may not create topics is fine as long as someone did). Shared by the config and
/// status topics.
pub(super) async fn create_topic(
    client: &ClientConfig,
    name: &str,
    partitions: i32,
    replication: i32,
) -> Result<(), String> {
    let spec = TopicSpec {
        name,
        partitions,
        replication,
        config: &[("cleanup.policy", "compact")],
    };
    match topics::ensure(client, &spec, None).await {
        Ok(Ensured::Created) => {
            tracing::info!(topic = %name, partitions, "Internal topic created (compacted).");
            Ok(())
        }
        Ok(Ensured::Existed) => Ok(()),
        Err(e) if e.is_creation() => Err(format!(
            "{e}; create it yourself with {partitions} partition(s) and cleanup.policy=compact, e.g. kafka-topics.sh --create --topic {name} --partitions {partitions} --config cleanup.policy=compact"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The reader thread: every record from the beginning, in order, until cancelled.
fn follow(
    consumer: &BaseConsumer<ProbeContext>,
    topic: &str,
    tx: &mpsc::Sender<Read>,
    cancel: &CancellationToken,
) {
    while !cancel.is_cancelled() {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        match message {
            Ok(m) => {
                let read = Read {
                    offset: m.offset(),
                    record: decode(m.key(), m.payload()),
                };
                if tx.blocking_send(read).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(topic, error = %e, "Cannot read the config topic; retrying.");
            }
        }
    }
}
