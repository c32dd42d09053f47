use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::data::Structured;

/// A topic and partition; cheap to clone (the topic name is shared).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl fmt::Debug for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Per partition, the offset of the *next* record to read — Kafka's commit convention
/// (last delivered offset + 1).
pub type Offsets = BTreeMap<TopicPartition, i64>;

/// A committed position: the next offset to read, and the text the sink asked to store
/// beside it (Kafka's offset commit metadata, Kafka Connect's `OffsetAndMetadata`). ferry
/// keeps the two together in the offset file and in the group commit, so a sink reads
/// back exactly the metadata it gave for that offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub offset: i64,
    pub metadata: Option<String>,
}

impl OffsetAndMetadata {
    pub fn new(offset: i64, metadata: Option<String>) -> Self {
        Self { offset, metadata }
    }
}

/// A partition given to a task, with where reading resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assigned {
    pub partition: TopicPartition,
    /// The committed position reading resumes from (the offset file's, else the group's),
    /// with its metadata; `None` when there is none and `auto.offset.reset` decides.
    pub committed: Option<OffsetAndMetadata>,
}

impl Assigned {
    /// A partition with no committed position.
    pub fn new(partition: TopicPartition) -> Self {
        Self {
            partition,
            committed: None,
        }
    }
}

/// A key or value after the converter ran.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `ByteArrayConverter`: the record's bytes, unchanged.
    Bytes(Bytes),
    /// `StringConverter`: the bytes decoded as UTF-8.
    String(String),
    /// A structured converter's schema and data (Avro, JSON), with the bytes it read.
    Structured(Arc<Structured>),
}

impl Value {
    /// The value's bytes as they would be written out: raw bytes, the UTF-8 encoding of a
    /// string, or the bytes a structured value was decoded from.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Bytes(b) => b,
            Value::String(s) => s.as_bytes(),
            Value::Structured(s) => &s.raw,
        }
    }

    /// The bytes as a shared buffer: a reference-counted clone for raw bytes and structured
    /// values, a copy of a string's UTF-8.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Value::Bytes(b) => b.clone(),
            Value::String(s) => Bytes::copy_from_slice(s.as_bytes()),
            Value::Structured(s) => s.raw.clone(),
        }
    }

    /// The structured converter's result, if a structured converter made this value.
    pub fn structured(&self) -> Option<&Structured> {
        match self {
            Value::Structured(s) => Some(s),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Value {
    // Values can be large binary blobs (a ZTF alert is ~70 KB); show their size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Value::String(s) => write!(f, "String({} bytes)", s.len()),
            Value::Structured(s) => fmt::Debug::fmt(s, f),
        }
    }
}

/// Kafka's record timestamp kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// A record header; the value is raw bytes (Connect's `SimpleHeaderConverter` would parse
/// it, ferry passes it through).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

/// One Kafka record, as a sink task receives it.
///
/// **Routed topics.** A transform may change the topic (`RegexRouter`, `TimestampRouter`).
/// As in Kafka Connect (KIP-793), `topic` is then the *routed* name — the one a sink uses
/// for its destination (a BigQuery table, Pub/Sub's `kafka.topic` attribute, a file name
/// template) — and `original_topic` keeps the topic the record was consumed from.
/// Offsets belong to the consumed partition: [`SinkRecord::topic_partition`] returns it,
/// so a sink that tracks acknowledgements (a [`Watermark`](crate::Watermark)) or answers
/// `pre_commit` must key them by `topic_partition()`, never by `topic`. No transform
/// changes the partition or the offset.
#[derive(Clone, Debug)]
pub struct SinkRecord {
    /// The topic as the sink should see it: the consumed topic, or the name a router gave.
    pub topic: Arc<str>,
    /// The consumed topic, when a transform routed the record to another `topic`; `None`
    /// when `topic` is the consumed one.
    pub original_topic: Option<Arc<str>>,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch, when the record has a timestamp.
    pub timestamp: Option<(i64, TimestampType)>,
    pub key: Option<Value>,
    pub value: Option<Value>,
    pub headers: Vec<Header>,
}

impl SinkRecord {
    /// The partition the record was consumed from — what offsets are committed for — even
    /// when a transform routed it to another topic.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition {
            topic: self.consumed_topic().clone(),
            partition: self.partition,
        }
    }

    /// The topic the record was consumed from (`original_topic`, else `topic`).
    pub fn consumed_topic(&self) -> &Arc<str> {
        self.original_topic.as_ref().unwrap_or(&self.topic)
    }

    /// Bytes of key and value, for throughput accounting.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Value::len) + self.value.as_ref().map_or(0, Value::len)
    }

    /// `topic/partition/offset`, the way error lines name a record.
    pub fn coordinates(&self) -> String {
        format!(
            "topic={} partition={} offset={}",
            self.consumed_topic(),
            self.partition,
            self.offset
        )
    }
}
