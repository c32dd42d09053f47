//! The sink task: encodes and batches records, sends each request, produces its reply,
//! and acknowledges a record only when its request got a success answer (or was reported
//! as a record error) *and* its reply is acknowledged by Kafka. `pre_commit` answers from
//! a [`Watermark`], so nothing is committed past a record that is not done.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use ferry_connector_api::{
    Assigned, Offsets, ProducerRecord, RecordError, RecordProducer, SinkRecord, SinkTask,
    TaskContext, TaskError, TopicPartition, Watermark, async_trait,
};

use crate::config::{ErrorsAs, HttpConfig, NullValues};
use crate::reply;
use crate::request::{Batcher, Request, encode};
use crate::service::{Failure, Service};

/// Where replies go, resolved for this connector.
#[derive(Debug)]
pub(crate) struct Replies {
    pub producer: Arc<dyn RecordProducer>,
    pub result_topic: Option<String>,
    pub error_topic: Option<String>,
    pub errors_as: ErrorsAs,
}

/// A reply not yet acknowledged, and the records it holds back.
#[derive(Debug)]
struct PendingReply {
    record: ProducerRecord,
    holds: Vec<(TopicPartition, i64)>,
}

#[derive(Debug)]
pub(crate) struct HttpSinkTask {
    config: Arc<HttpConfig>,
    service: Service,
    ctx: TaskContext,
    replies: Option<Replies>,
    watermark: Watermark,
    /// Per partition, one past the last record whose request is answered: a batch the
    /// runtime redelivers after a retriable error is not sent again up to there.
    answered: BTreeMap<TopicPartition, i64>,
    /// Replies whose producing failed, in order; sent again before anything else.
    pending: VecDeque<PendingReply>,
    /// Per partition, the first offset of a request handed back to the runtime and the
    /// attempts made for it, so that `max.retries` counts across redeliveries.
    tries: BTreeMap<TopicPartition, (i64, u32)>,
}

impl HttpSinkTask {
    pub(crate) fn new(
        config: Arc<HttpConfig>,
        service: Service,
        ctx: TaskContext,
        replies: Option<Replies>,
    ) -> Self {
        Self {
            config,
            service,
            ctx,
            replies,
            watermark: Watermark::new(),
            answered: BTreeMap::new(),
            pending: VecDeque::new(),
            tries: BTreeMap::new(),
        }
    }

    /// The request's records are done: acknowledge them now, or once `reply` is produced.
    fn finish(&mut self, records: &[SinkRecord], reply: Option<ProducerRecord>) {
        for r in records {
            let tp = r.topic_partition();
            let next = self.answered.entry(tp).or_insert(r.offset + 1);
            *next = (*next).max(r.offset + 1);
        }
        let holds: Vec<_> = records
            .iter()
            .map(|r| (r.topic_partition(), r.offset))
            .collect();
        match reply {
            Some(record) => self.pending.push_back(PendingReply { record, holds }),
            None => {
                for (tp, o) in holds {
                    self.watermark.acked(&tp, o);
                }
            }
        }
    }

    /// Produces the pending replies in order; each acknowledged one releases its records.
    async fn flush_replies(&mut self) -> Result<(), TaskError> {
        let Some(replies) = &self.replies else {
            return Ok(());
        };
        while let Some(p) = self.pending.front() {
            if let Err(e) = replies.producer.send(p.record.clone()).await {
                let topic = p.record.topic.clone();
                return Err(TaskError::retriable(format!(
                    "producing a reply to {topic} failed (the request is not sent again; its offset waits for the reply)"
                ))
                .with_source(e));
            }
            if let Some(p) = self.pending.pop_front() {
                for (tp, o) in p.holds {
                    self.watermark.acked(&tp, o);
                }
            }
        }
        Ok(())
    }

    /// A record the sink cannot send: reported under errors.tolerance, then done.
    fn reject(&mut self, record: &SinkRecord, error: RecordError) -> Result<(), TaskError> {
        self.ctx.errant.report(record, &error)?;
        let tp = record.topic_partition();
        self.watermark.sent(&tp, record.offset);
        self.finish(std::slice::from_ref(record), None);
        Ok(())
    }

    async fn deliver(&mut self, request: Request) -> Result<(), TaskError> {
        for r in &request.records {
            self.watermark.sent(&r.topic_partition(), r.offset);
        }
        let tp = request.partition();
        let first = request.records.first().map_or(0, |r| r.offset);
        let prior = tp
            .as_ref()
            .and_then(|tp| self.tries.get(tp))
            .filter(|(offset, _)| *offset == first)
            .map_or(0, |(_, n)| *n);
        let sent = self.service.send(&request, prior).await;
        if let Some(tp) = tp {
            match &sent {
                Err(Failure::Retriable { attempts, .. }) => {
                    self.tries.insert(tp, (first, *attempts));
                }
                _ => {
                    self.tries.remove(&tp);
                }
            }
        }
        match sent {
            Ok(answer) => {
                let reply = self.replies.as_ref().and_then(|rep| {
                    rep.result_topic
                        .as_deref()
                        .map(|t| reply::result(t, &request.records, &answer))
                });
                self.finish(&request.records, reply);
                Ok(())
            }
            Err(Failure::Retriable { error, .. } | Failure::Fatal(error)) => Err(error),
            Err(Failure::Rejected { answer, reason }) => {
                for r in &request.records {
                    // errors.tolerance=none: fails the task here, before any reply.
                    self.ctx
                        .errant
                        .report(r, &RecordError::new(reason.clone()))?;
                }
                let reply = self.replies.as_ref().and_then(|rep| {
                    rep.error_topic.as_deref().map(|t| {
                        reply::error(t, &request.records, Some(&answer), &reason, rep.errors_as)
                    })
                });
                self.finish(&request.records, reply);
                Ok(())
            }
        }
    }
}

#[async_trait]
impl SinkTask for HttpSinkTask {
    async fn open(&mut self, partitions: &[Assigned]) -> Result<(), TaskError> {
        for a in partitions {
            self.answered.remove(&a.partition);
        }
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        self.flush_replies().await?;
        let config = self.config.clone();
        let mut batcher = Batcher::new(&config);
        for record in records {
            let tp = record.topic_partition();
            if self.answered.get(&tp).is_some_and(|a| record.offset < *a) {
                continue;
            }
            if record.value.is_none() {
                match config.null_values {
                    NullValues::Ignore => {
                        self.watermark.sent(&tp, record.offset);
                        self.finish(std::slice::from_ref(record), None);
                    }
                    NullValues::Log => {
                        tracing::info!(
                            connector = %self.ctx.connector,
                            record = %record.coordinates(),
                            "Skipped a record without a value (behavior.on.null.values=log)."
                        );
                        self.watermark.sent(&tp, record.offset);
                        self.finish(std::slice::from_ref(record), None);
                    }
                    NullValues::Fail => self.reject(
                        record,
                        RecordError::new("the record has no value (behavior.on.null.values=fail)"),
                    )?,
                }
                continue;
            }
            match encode(record, config.body_format) {
                Ok(part) => batcher.push(record, &part),
                Err(e) => self.reject(record, e)?,
            }
        }
        for request in batcher.finish() {
            self.deliver(request).await?;
            self.flush_replies().await?;
        }
        Ok(())
    }

    async fn pre_commit(&mut self, _consumed: &Offsets) -> Result<Offsets, TaskError> {
        self.flush_replies().await?;
        Ok(self.watermark.committable())
    }

    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<(), TaskError> {
        self.watermark.remove(partitions);
        for tp in partitions {
            self.answered.remove(tp);
            self.tries.remove(tp);
        }
        self.pending
            .retain(|p| p.holds.iter().all(|(tp, _)| !partitions.contains(tp)));
        Ok(())
    }
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
