//! Records a connector asks the runtime to write to Kafka: replies to requests (the HTTP
//! sink's result and error topics), heartbeats and logs (OpenMSIStream), dead letters.
//!
//! Connectors never hold a Kafka client: the runtime owns the producer, builds its client
//! configuration from the worker's `producer.*` settings, the connector's
//! `producer.override.*` and the overrides the connector passes (e.g. the HTTP sink's
//! `reporter.bootstrap.servers`), and lends it through [`TaskContext`](crate::TaskContext).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;

use crate::{Header, TaskError};

/// One record to produce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub topic: String,
    /// `None`: a record without a key (the producer's partitioner then spreads them).
    pub key: Option<Bytes>,
    /// `None`: a tombstone.
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    /// Milliseconds since the epoch; `None`: the producer's clock.
    pub timestamp: Option<i64>,
}

/// A Kafka producer lent by the runtime.
#[crate::async_trait]
pub trait RecordProducer: Send + Sync + Debug {
    /// Sends one record and resolves once the cluster has acknowledged it (`acks=all`
    /// unless the settings say otherwise), or with the error that ended the producer's own
    /// retries (`delivery.timeout.ms`). A caller that must not lose the record keeps its
    /// offset uncommitted until this resolves `Ok` — at-least-once from request to reply.
    /// Records sent one after another without awaiting in between keep their order per
    /// partition.
    async fn send(&self, record: ProducerRecord) -> Result<(), TaskError>;
}

/// Makes producers for a task.
pub trait ProducerFactory: Send + Sync + Debug {
    /// A producer to the worker's cluster with the worker's `producer.*` settings and the
    /// connector's `producer.override.*`, then `overrides` on top (client property names
    /// without any prefix: `bootstrap.servers`, `security.protocol`, `sasl.mechanism`…).
    /// `origin` says where the overrides came from for error lines (`reporter.*`), so that a
    /// bad setting names the key the user wrote. Calls with equal overrides may share one
    /// client.
    fn producer(
        &self,
        overrides: &BTreeMap<String, String>,
        origin: &str,
    ) -> Result<Arc<dyn RecordProducer>, TaskError>;
}

/// A [`ProducerFactory`] for tasks run outside the runtime (tests, tools): every request
/// fails with a message saying so.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProducers;

impl ProducerFactory for NoProducers {
    fn producer(
        &self,
        _overrides: &BTreeMap<String, String>,
        origin: &str,
    ) -> Result<Arc<dyn RecordProducer>, TaskError> {
        Err(TaskError::fatal(format!(
            "{origin}: this task runs without a Kafka producer (outside ferry's runtime)"
        )))
    }
}
