//! Records as they were read from Kafka, kept while a transformed copy is with the sink, so
//! that a record the sink reports (`put` errors, KIP-610's `ErrantRecordReporter`) reaches
//! the dead-letter queue and the log with the key, value, headers and timestamp it was
//! READ with — as Kafka Connect's reporters write the original `ConsumerRecord` — not the
//! ones the transforms made.
//!
//! Only connectors with transforms and a reporter that shows record contents (a dead-letter
//! queue, `errors.log.include.messages`) keep them. An entry holds shared handles on the
//! record's bytes, not a copy (a string value's bytes are copied). Entries go when the
//! sink's `pre_commit` says their offsets are delivered, or their partition is revoked; the
//! driver checkpoints early (at most once a second) when they exceed [`MAX_BYTES`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferry_connector_api::{Header, Offsets, SinkRecord, TimestampType, TopicPartition, Value};

/// Bytes of kept originals past which the driver checkpoints (and so prunes) before taking
/// more records.
pub(crate) const MAX_BYTES: usize = 64 * 1024 * 1024;

/// A record as it was read: shared handles on its bytes (a string value's are copied),
/// never its decoded form.
#[derive(Debug, Clone)]
pub(crate) struct Unchanged {
    topic: Arc<str>,
    partition: i32,
    pub(crate) offset: i64,
    timestamp: Option<(i64, TimestampType)>,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<Header>,
}

impl Unchanged {
    pub(crate) fn of(r: &SinkRecord) -> Self {
        Self {
            topic: r.consumed_topic().clone(),
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.as_ref().map(Value::to_bytes),
            value: r.value.as_ref().map(Value::to_bytes),
            headers: r.headers.clone(),
        }
    }

    pub(crate) fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }

    fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + self
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
                .sum::<usize>()
    }

    pub(crate) fn into_record(self) -> SinkRecord {
        SinkRecord {
            topic: self.topic,
            original_topic: None,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.map(Value::Bytes),
            value: self.value.map(Value::Bytes),
            headers: self.headers,
        }
    }
}

/// The originals of the records a task's sink holds, by consumed partition and offset.
#[derive(Debug, Default)]
pub(crate) struct Originals {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    records: BTreeMap<TopicPartition, BTreeMap<i64, Unchanged>>,
    bytes: usize,
    /// When [`Originals::checkpoint_due`] last said yes.
    last_due: Option<std::time::Instant>,
}

impl Originals {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `original` for the transformed record the sink is about to be given.
    pub(crate) fn keep(&self, original: Unchanged) {
        let mut s = self.lock();
        let size = original.size();
        let old = s
            .records
            .entry(original.topic_partition())
            .or_default()
            .insert(original.offset, original);
        s.bytes = s.bytes + size - old.map_or(0, |o| o.size());
    }

    /// The record `record` was transformed from, if it is kept.
    pub(crate) fn original_of(&self, record: &SinkRecord) -> Option<SinkRecord> {
        let s = self.lock();
        let original = s
            .records
            .get(&record.topic_partition())?
            .get(&record.offset)?;
        Some(original.clone().into_record())
    }

    /// Forgets the originals of records before the sink's safe offsets (delivered).
    pub(crate) fn delivered(&self, safe: &Offsets) {
        let mut s = self.lock();
        let mut freed = 0;
        for (tp, end) in safe {
            if let Some(offsets) = s.records.get_mut(tp) {
                let kept = offsets.split_off(end);
                freed += offsets.values().map(Unchanged::size).sum::<usize>();
                *offsets = kept;
            }
        }
        s.records.retain(|_, offsets| !offsets.is_empty());
        s.bytes = s.bytes.saturating_sub(freed);
    }

    /// Forgets the originals of revoked partitions' records.
    pub(crate) fn revoked(&self, partitions: &[TopicPartition]) {
        let mut s = self.lock();
        let mut freed = 0;
        for tp in partitions {
            if let Some(offsets) = s.records.remove(tp) {
                freed += offsets.values().map(Unchanged::size).sum::<usize>();
            }
        }
        s.bytes = s.bytes.saturating_sub(freed);
    }

    /// Whether the kept originals exceed [`MAX_BYTES`] and no early checkpoint was asked
    /// for in the last second (a sink that holds its records long is not asked to flush
    /// after every batch).
    pub(crate) fn checkpoint_due(&self) -> bool {
        let mut s = self.lock();
        let due = s.bytes > MAX_BYTES
            && s.last_due
                .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1));
        if due {
            s.last_due = Some(std::time::Instant::now());
        }
        due
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().records.values().map(BTreeMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, value: &str) -> SinkRecord {
        SinkRecord {
            topic: "t".into(),
            original_topic: None,
            partition: 0,
            offset,
            timestamp: Some((5, TimestampType::CreateTime)),
            key: None,
            value: Some(Value::String(value.into())),
            headers: vec![Header {
                key: "h".into(),
                value: Some(Bytes::from_static(b"v")),
            }],
        }
    }

    #[test]
    fn a_routed_transformed_record_finds_its_original_until_it_is_delivered() {
        let o = Originals::default();
        for n in 0..3 {
            o.keep(Unchanged::of(&record(n, "read")));
        }
        let mut transformed = record(1, "changed");
        transformed.original_topic = Some(transformed.topic.clone());
        transformed.topic = "routed".into();
        transformed.headers.clear();
        let original = o.original_of(&transformed).unwrap();
        assert_eq!(original.topic.as_ref(), "t");
        assert_eq!(original.value.unwrap().as_bytes(), b"read");
        assert_eq!(original.headers.len(), 1);
        assert_eq!(original.timestamp, Some((5, TimestampType::CreateTime)));
        o.delivered(&Offsets::from([(TopicPartition::new("t", 0), 2)]));
        assert_eq!(o.len(), 1);
        assert!(o.original_of(&transformed).is_none());
        assert!(o.original_of(&record(2, "x")).is_some());
        o.revoked(&[TopicPartition::new("t", 0)]);
        assert_eq!(o.len(), 0);
        assert_eq!(o.lock().bytes, 0);
        assert!(!o.checkpoint_due());
        o.lock().bytes = MAX_BYTES + 1;
        assert!(o.checkpoint_due());
        assert!(!o.checkpoint_due(), "at most once a second");
    }
}
