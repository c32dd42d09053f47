//! The sink task: maps records to messages, publishes them with flow control, and answers
//! `pre_commit` from a watermark of acknowledged publishes, so no offset is committed past
//! an unacknowledged record.

use std::sync::Arc;
use std::time::Duration;

use ferry_connector_api::{
    Offsets, RecordError, SinkRecord, SinkTask, TaskContext, TaskError, TopicPartition, Watermark,
    async_trait,
};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::error::PublishError;

use crate::client::{self, Endpoint, Failure};
use crate::config::PubSubConfig;
use crate::mapping::{self, Mapped};

/// Back-off between republishing a message whose publish failed after the client's own
/// retries (`maxTotalTimeoutMs`): doubling from 1 s up to this.
const MAX_REPUBLISH_BACKOFF: Duration = Duration::from_secs(30);

/// A publish under way.
struct Flight {
    record: SinkRecord,
    mapped: Mapped,
    attempt: u32,
}

/// A finished publish attempt.
struct Outcome {
    flight: Flight,
    result: Result<String, PublishError>,
}

pub(crate) struct PubSubSinkTask {
    config: Arc<PubSubConfig>,
    endpoint: Endpoint,
    ctx: TaskContext,
    publisher: Option<Publisher>,
    watermark: Watermark,
    in_flight: FuturesUnordered<BoxFuture<'static, Outcome>>,
    outstanding_messages: u64,
    outstanding_bytes: u64,
    /// Set when nothing more can be published; every later call fails with it.
    fatal: Option<String>,
}

impl std::fmt::Debug for PubSubSinkTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSubSinkTask")
            .field("topic", &self.config.topic_path())
            .field("task", &self.ctx.task_id)
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl PubSubSinkTask {
    pub(crate) fn new(config: Arc<PubSubConfig>, endpoint: Endpoint, ctx: TaskContext) -> Self {
        Self {
            config,
            endpoint,
            ctx,
            publisher: None,
            watermark: Watermark::new(),
            in_flight: FuturesUnordered::new(),
            outstanding_messages: 0,
            outstanding_bytes: 0,
            fatal: None,
        }
    }

    async fn publisher(&mut self) -> Result<Publisher, TaskError> {
        if let Some(p) = &self.publisher {
            return Ok(p.clone());
        }
        let creds = client::credentials(&self.config, &self.endpoint)?;
        let p = client::publisher(&self.config, &self.endpoint, creds).await?;
        self.publisher = Some(p.clone());
        Ok(p)
    }

    fn check_fatal(&self) -> Result<(), TaskError> {
        match &self.fatal {
            Some(m) => Err(TaskError::fatal(m.clone())),
            None => Ok(()),
        }
    }

    /// Starts a publish, at once or after `delay`.
    fn launch(&mut self, publisher: Publisher, flight: Flight, delay: Option<Duration>) {
        let message = flight.mapped.message.clone();
        let future: BoxFuture<'static, Outcome> = match delay {
            // Publishing now keeps the per-key order the client guarantees.
            None => {
                let sent = publisher.publish(message);
                async move {
                    Outcome {
                        result: sent.await,
                        flight,
                    }
                }
                .boxed()
            }
            Some(d) => async move {
                tokio::time::sleep(d).await;
                let result = publisher.publish(message).await;
                Outcome { result, flight }
            }
            .boxed(),
        };
        self.in_flight.push(future);
    }

    /// Records a finished attempt: acknowledges, republishes, reports or fails.
    fn settle(&mut self, outcome: Outcome) -> Result<(), TaskError> {
        let Outcome { flight, result } = outcome;
        let tp = flight.record.topic_partition();
        let error = match result {
            Ok(_) => {
                self.release(&flight);
                self.watermark.acked(&tp, flight.record.offset);
                return Ok(());
            }
            Err(e) => e,
        };
        match client::classify(&error) {
            Failure::Retry => {
                let backoff =
                    Duration::from_secs(1 << flight.attempt.min(5)).min(MAX_REPUBLISH_BACKOFF);
                if flight.attempt == 0 || flight.attempt.is_multiple_of(10) {
                    tracing::warn!(
                        connector = %self.ctx.connector,
                        task = self.ctx.task_id,
                        topic = %self.config.topic_path(),
                        record = %flight.record.coordinates(),
                        attempt = flight.attempt + 1,
                        retry_in_s = backoff.as_secs(),
                        error = %error,
                        "Publishing to Pub/Sub failed; publishing again. Offsets stay at the last acknowledged record."
                    );
                }
                if let (Some(key), Some(p)) = (&flight.mapped.ordering_key, &self.publisher) {
                    p.resume_publish(key.clone());
                }
                let publisher = match &self.publisher {
                    Some(p) => p.clone(),
                    None => return Err(TaskError::fatal("the Pub/Sub publisher is gone")),
                };
                let next = Flight {
                    attempt: flight.attempt + 1,
                    ..flight
                };
                self.launch(publisher, next, Some(backoff));
                Ok(())
            }
            Failure::Record => {
                self.release(&flight);
                self.ctx.errant.report(
                    &flight.record,
                    &RecordError::new(format!("Pub/Sub refused the message: {error}")),
                )?;
                self.watermark.acked(&tp, flight.record.offset);
                Ok(())
            }
            Failure::Fatal => {
                let message = format!(
                    "publishing to Pub/Sub topic {} failed: {error}",
                    self.config.topic_path()
                );
                self.fatal = Some(message.clone());
                Err(TaskError::fatal(message))
            }
        }
    }

    fn release(&mut self, flight: &Flight) {
        self.outstanding_messages = self.outstanding_messages.saturating_sub(1);
        self.outstanding_bytes = self
            .outstanding_bytes
            .saturating_sub(flight.mapped.bytes as u64);
    }

    fn over_limits(&self, next_bytes: usize) -> bool {
        self.outstanding_messages >= self.config.max_outstanding_messages
            || self.outstanding_bytes + next_bytes as u64
                > self.config.max_outstanding_request_bytes
    }

    /// Settles whatever has finished, without waiting.
    fn settle_ready(&mut self) -> Result<(), TaskError> {
        while let Some(Some(outcome)) = self.in_flight.next().now_or_never() {
            self.settle(outcome)?;
        }
        Ok(())
    }

    /// Waits until nothing is in flight (cancel-safe: unfinished publishes stay queued).
    async fn drain(&mut self) -> Result<(), TaskError> {
        while let Some(outcome) = self.in_flight.next().await {
            self.settle(outcome)?;
        }
        Ok(())
    }
}

#[async_trait]
impl SinkTask for PubSubSinkTask {
    async fn open(&mut self, _partitions: &[TopicPartition]) -> Result<(), TaskError> {
        self.publisher().await.map(|_| ())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        self.check_fatal()?;
        let publisher = self.publisher().await?;
        for record in records {
            let tp = record.topic_partition();
            match mapping::to_message(record, &self.config) {
                Err(e) => {
                    // errors.tolerance=none: a fatal error; all: logged, and the offset
                    // advances past it.
                    self.ctx.errant.report(record, &e)?;
                    self.watermark.sent(&tp, record.offset);
                    self.watermark.acked(&tp, record.offset);
                }
                Ok(mapped) => {
                    // Flow control: wait for acknowledgements before exceeding
                    // maxOutstandingMessages / maxOutstandingRequestBytes.
                    while self.over_limits(mapped.bytes) && !self.in_flight.is_empty() {
                        if let Some(outcome) = self.in_flight.next().await {
                            self.settle(outcome)?;
                        }
                    }
                    self.watermark.sent(&tp, record.offset);
                    self.outstanding_messages += 1;
                    self.outstanding_bytes += mapped.bytes as u64;
                    let flight = Flight {
                        record: record.clone(),
                        mapped,
                        attempt: 0,
                    };
                    self.launch(publisher.clone(), flight, None);
                }
            }
        }
        self.settle_ready()
    }

    async fn pre_commit(&mut self, _consumed: &Offsets) -> Result<Offsets, TaskError> {
        self.check_fatal()?;
        // Send what is batched now, then wait for every outstanding publish, as Google's
        // connector's flush does. The runtime bounds this by offset.flush.timeout.ms; if it
        // gives up, nothing is committed this time and the publishes carry on.
        if let Some(p) = &self.publisher {
            p.flush().await;
        }
        self.drain().await?;
        Ok(self.watermark.committable())
    }

    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<(), TaskError> {
        self.watermark.remove(partitions);
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), TaskError> {
        if let Some(p) = self.publisher.clone() {
            let timeout = self.config.max_shutdown_timeout;
            let drained = tokio::time::timeout(timeout, async {
                p.flush().await;
                while let Some(outcome) = self.in_flight.next().await {
                    if self.settle(outcome).is_err() {
                        break;
                    }
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    connector = %self.ctx.connector,
                    task = self.ctx.task_id,
                    unacknowledged = self.in_flight.len(),
                    timeout_ms = timeout.as_millis() as u64,
                    "Stopped with publishes unacknowledged after maxShutdownTimeoutMs; their records are redelivered from the last commit."
                );
            }
        }
        Ok(())
    }
}
