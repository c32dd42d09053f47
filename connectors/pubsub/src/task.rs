//! The sink task: maps records to messages, publishes them with flow control, and answers
//! `pre_commit` from a watermark of acknowledged publishes, so no offset is committed past
//! an unacknowledged record.

use std::sync::Arc;
use std::time::Duration;

use ferry_connector_api::backoff::{Backoff, Retry};
use ferry_connector_api::{
    Assigned, Offsets, SinkRecord, SinkTask, TaskContext, TaskError, TopicPartition, Watermark,
    async_trait,
};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::task::JoinHandle;

use crate::client::{self, Endpoint, Failure};
use crate::config::PubSubConfig;
use crate::flow::{FlowControl, Permit};
use crate::mapping::{self, Mapped};
use crate::publish::{AnyPublisher as Publisher, PublishFailure};

/// Back-off between republishing a message whose publish failed after the client's own
/// retries (`maxTotalTimeoutMs`): doubling from 1 s up to this, for ever.
const MAX_REPUBLISH_BACKOFF: Duration = Duration::from_secs(30);

fn republish_policy() -> Backoff {
    Backoff::exponential(Duration::from_secs(1), MAX_REPUBLISH_BACKOFF)
}

/// The connector's publisher, built by the first task that needs it.
pub(crate) type SharedPublisher = Arc<tokio::sync::OnceCell<Publisher>>;

/// A publish under way, holding its share of the flow-control budget.
struct Flight {
    record: SinkRecord,
    mapped: Mapped,
    /// Its republishes so far.
    retry: Retry,
    /// Held until the publish is acknowledged or given up; dropping it returns the budget.
    _permit: Permit,
}

/// A finished publish attempt. An acknowledged one has already dropped its record and
/// returned its permit, so neither waits for this task to look.
enum Outcome {
    Acked(TopicPartition, i64),
    Failed(Box<Flight>, PublishFailure),
}

pub(crate) struct PubSubSinkTask {
    config: Arc<PubSubConfig>,
    endpoint: Endpoint,
    ctx: TaskContext,
    shared: SharedPublisher,
    publisher: Option<Publisher>,
    /// The connector's budget, shared with its other tasks.
    flow: FlowControl,
    watermark: Watermark,
    /// Each publish is awaited in a tokio task of its own, which returns its permit the
    /// moment it is acknowledged.
    in_flight: FuturesUnordered<JoinHandle<Outcome>>,
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
    pub(crate) fn new(
        config: Arc<PubSubConfig>,
        endpoint: Endpoint,
        shared: SharedPublisher,
        flow: FlowControl,
        ctx: TaskContext,
    ) -> Self {
        Self {
            config,
            endpoint,
            ctx,
            shared,
            publisher: None,
            flow,
            watermark: Watermark::new(),
            in_flight: FuturesUnordered::new(),
            fatal: None,
        }
    }

    async fn publisher(&mut self) -> Result<Publisher, TaskError> {
        if let Some(p) = &self.publisher {
            return Ok(p.clone());
        }
        let (config, endpoint) = (&self.config, &self.endpoint);
        let p = self
            .shared
            .get_or_try_init(|| async {
                let creds = client::credentials(config, endpoint)?;
                client::publisher(config, endpoint, creds).await
            })
            .await?
            .clone();
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
        let finish = |flight: Flight, result: Result<String, PublishFailure>| match result {
            Ok(_) => Outcome::Acked(flight.record.topic_partition(), flight.record.offset),
            Err(e) => Outcome::Failed(Box::new(flight), e),
        };
        let handle = match delay {
            // Publishing now, in put's order, keeps the per-key order the client guarantees.
            None => {
                let sent = publisher.publish(flight.mapped.message.clone());
                tokio::spawn(async move { finish(flight, sent.await) })
            }
            Some(d) => tokio::spawn(async move {
                tokio::time::sleep(d).await;
                let result = publisher.publish(flight.mapped.message.clone()).await;
                finish(flight, result)
            }),
        };
        self.in_flight.push(handle);
    }

    /// Records a finished attempt: acknowledges, republishes, reports or fails.
    fn settle(&mut self, joined: Result<Outcome, tokio::task::JoinError>) -> Result<(), TaskError> {
        let (flight, error) = match joined {
            Ok(Outcome::Acked(tp, offset)) => {
                self.watermark.acked(&tp, offset);
                return Ok(());
            }
            Ok(Outcome::Failed(flight, error)) => (flight, error),
            Err(e) => {
                let message = format!("a publish to Pub/Sub was lost by the runtime: {e}");
                self.fatal = Some(message.clone());
                return Err(TaskError::fatal(message));
            }
        };

        match client::classify(&error) {
            Failure::Retry => {
                let mut flight = *flight;
                let attempt = flight.retry.retries();
                // The policy has no limit: there is always a wait.
                let backoff = flight.retry.next_wait().unwrap_or(MAX_REPUBLISH_BACKOFF);
                if attempt == 0 || attempt.is_multiple_of(10) {
                    tracing::warn!(
                        connector = %self.ctx.connector,
                        task = self.ctx.task_id,
                        topic = %self.config.topic_path(),
                        record = %flight.record.coordinates(),
                        attempt = attempt + 1,
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
                self.launch(publisher, flight, Some(backoff));
                Ok(())
            }
            Failure::Fatal => {
                let message = format!(
                    "publishing {} to Pub/Sub topic {} failed: {error}",
                    flight.record.coordinates(),
                    self.config.topic_path()
                );
                self.fatal = Some(message.clone());
                Err(TaskError::fatal(message))
            }
        }
    }

    /// Flow control: waits, settling this task's finished publishes meanwhile, until the
    /// connector may have `bytes` more outstanding (maxOutstandingRequestBytes,
    /// maxOutstandingMessages).
    async fn permit(&mut self, bytes: usize) -> Result<Permit, TaskError> {
        if let Some(p) = self.flow.try_acquire(bytes) {
            return Ok(p);
        }

        let flow = self.flow.clone();
        let acquire = flow.acquire(bytes);
        tokio::pin!(acquire);
        loop {
            tokio::select! {
                permit = &mut acquire => return permit,
                Some(joined) = self.in_flight.next() => self.settle(joined)?,
            }
        }
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
    async fn open(&mut self, _partitions: &[Assigned]) -> Result<(), TaskError> {
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
                    let permit = self.permit(mapped.bytes).await?;
                    self.watermark.sent(&tp, record.offset);
                    let flight = Flight {
                        record: record.clone(),
                        mapped,
                        retry: republish_policy().start(),
                        _permit: permit,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn republishing_waits_double_from_a_second_up_to_half_a_minute() {
        let mut retry = republish_policy().start();
        let waits: Vec<u64> = (0..8)
            .map(|_| retry.next_wait().unwrap().as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(retry.retries(), 8);
    }
}
