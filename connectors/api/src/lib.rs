//! The contract between ferry's runtime and its sink connectors.
//!
//! A connector crate depends on this crate only — never on the runtime or on a Kafka
//! client — so that a sink can be built, tested and reasoned about on its own. The
//! concepts are Kafka Connect's:
//!
//! * [`SinkRecord`]: one Kafka record after the converters ran.
//! * [`SinkTask`]: `open → put → pre_commit → close → stop`; `pre_commit` returns only
//!   offsets whose records are durably delivered.
//! * [`Connector`]: validated configuration that creates `tasks.max` tasks.
//! * [`ConnectorProps`]: the connector's keys, *taken* one by one so that leftovers can be
//!   reported by name.
//! * [`data`]: Kafka Connect's data model (schema + data) that structured converters
//!   produce and sinks map to their destination.
//! * [`Watermark`]: the contiguous per-partition acknowledgement tracker that sinks with
//!   out-of-order acknowledgements use to answer `pre_commit`.
//! * [`RecordProducer`]: the runtime's Kafka producer, lent to a task for replies,
//!   heartbeats and dead letters (connectors still hold no Kafka client).
//! * [`logs`]: the process's own log lines, for sinks that ship them (OpenMSIStream).
//! * [`probe`]: start-up checks shared by sinks that write files.
//! * [`backoff`]: the one retry policy (waits, jitter, limits, deadlines) of every retry.
//! * [`decimal`]: the text of a Connect `Decimal` (unscaled two's-complement bytes).
//! * [`java_text`]: numbers as Java prints them (`Double.toString`, `BigDecimal.toString`).
//! * [`text`]: user-written values inside one-line messages, cut to a bound.

pub mod backoff;
mod connector;
pub mod data;
pub mod decimal;
mod error;
pub mod java_text;
pub mod logs;
pub mod probe;
mod producer;
mod props;
mod record;
mod task;
pub mod text;
mod watermark;

pub use connector::{CommitRequester, Connector, ConnectorFactory, NoCommitRequests, TaskContext};
pub use error::{ConfigError, RecordError, Stage, TaskError, error_chain};
pub use producer::{NoProducers, ProducerFactory, ProducerRecord, RecordProducer};
pub use props::{ConnectorProps, suggest};
pub use record::{
    Assigned, Header, OffsetAndMetadata, Offsets, SinkRecord, TimestampType, TopicPartition, Value,
};
pub use task::{ErrantRecordReporter, SinkTask};
pub use watermark::Watermark;

/// Re-exported so that connector crates implement [`SinkTask`] with the same macro version.
pub use async_trait::async_trait;
