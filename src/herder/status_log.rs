//! A distributed cluster's status topic, like Kafka Connect's `KafkaStatusBackingStore`:
//! every worker writes the state of the connectors and tasks it runs, in Connect's format
//! (src/herder/status_records.rs), and follows the topic from its beginning, so that any
//! worker can show every live worker's tasks.
//!
//! Two things Connect gets from its worker group, ferry keeps in the same topic, under
//! `ferry-worker-<worker_id>` keys that Connect's reader discards:
//! - **liveness**: each worker writes its record every [`HEARTBEAT`]; a worker whose record
//!   is older than [`STALE`] (killed, cut off) is no longer live and its tasks are not shown.
//!   A worker that stops cleanly marks its tasks UNASSIGNED and deletes its record.
//! - **task ids**: each worker holds a slot, and numbers its tasks `slot × tasks.max +
//!   local index`, so ids are unique over the cluster. At start a worker takes its previous
//!   slot, if no live worker holds it, or else the lowest free one; claims go to partition 0
//!   so that they have one order, and of two workers claiming a slot the later one yields.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::status::{ConnectorStateInfo, TaskStateInfo};
use super::status_records::{
    self as records, StatusRecord, StatusValue, WorkerValue, connector_key, task_key, worker_key,
};
use crate::config::distributed::DistributedConfig;
use crate::kafka::ProbeContext;
use crate::worker::status::lock;

/// How often a worker writes its record.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(2);
/// A worker whose record is older than this is not live.
pub(crate) const STALE: Duration = Duration::from_secs(10);
/// How long the first read, a write, or the slot claim may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A worker as the topic shows it.
#[derive(Debug)]
struct Peer {
    value: WorkerValue,
    /// Partition 0's offset of its first record with this slot: the earlier claim wins.
    claimed_at: i64,
    /// When its last record was written, on this worker's clock; None: long ago.
    seen: Option<Instant>,
}

/// What this worker has read of the topic.
#[derive(Debug, Default)]
struct View {
    connectors: BTreeMap<String, StatusValue>,
    tasks: BTreeMap<(String, usize), StatusValue>,
    workers: BTreeMap<String, Peer>,
    /// One past the last offset read of partition 0 (where worker records go).
    read_p0: i64,
    caught_up: bool,
    /// Peers already named in the config-topic warning.
    warned: BTreeSet<String>,
    /// This worker's own record came back after it had been stale: the others may have
    /// marked its tasks UNASSIGNED.
    resync: bool,
}

impl View {
    fn live(&self, worker_id: &str) -> bool {
        self.workers
            .get(worker_id)
            .and_then(|p| p.seen)
            .is_some_and(|s| s.elapsed() < STALE)
    }

    /// The slot worker `me` should claim: its previous one if no other live worker holds
    /// it, else the lowest free one.
    fn free_slot(&self, me: &str) -> usize {
        let taken: BTreeSet<usize> = self
            .workers
            .iter()
            .filter(|(id, _)| *id != me && self.live(id))
            .map(|(_, p)| p.value.slot)
            .collect();
        let previous = self.workers.get(me).map(|p| p.value.slot);
        previous
            .filter(|s| !taken.contains(s))
            .unwrap_or_else(|| (0..).find(|s| !taken.contains(s)).unwrap_or(0))
    }

    /// Whether another live worker claimed `slot` before partition 0's `offset`.
    fn claimed_before(&self, me: &str, slot: usize, offset: i64) -> bool {
        self.workers.iter().any(|(id, p)| {
            id != me && p.value.slot == slot && p.claimed_at < offset && self.live(id)
        })
    }
}

/// Why the status topic cannot be used; one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("status.storage.topic {topic}: {reason}")]
pub(crate) struct StatusLogError {
    topic: String,
    reason: String,
}

pub(crate) struct StatusLog {
    topic: String,
    worker_id: String,
    config_topic: String,
    slot: usize,
    producer: FutureProducer<ProbeContext>,
    view: Arc<Mutex<View>>,
    /// What this worker last wrote per key (None: a tombstone).
    written: tokio::sync::Mutex<BTreeMap<String, Option<StatusValue>>>,
}

impl std::fmt::Debug for StatusLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusLog")
            .field("topic", &self.topic)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

/// Connect's state names, as the API's `&'static str`.
fn state_name(s: &str) -> &'static str {
    match s {
        "RUNNING" => "RUNNING",
        "PAUSED" => "PAUSED",
        "FAILED" => "FAILED",
        "RESTARTING" => "RESTARTING",
        "STOPPED" => "STOPPED",
        _ => "UNASSIGNED",
    }
}

impl StatusLog {
    /// Creates the topic when missing (compacted, `status.storage.partitions`), reads it to
    /// its end, starts the thread that follows it, and claims this worker's slot.
    pub(crate) async fn open(
        client: &ClientConfig,
        settings: &DistributedConfig,
        worker_id: String,
        cancel: CancellationToken,
    ) -> Result<Arc<StatusLog>, StatusLogError> {
        let topic = settings.status_topic.clone();
        let err = |reason: String| StatusLogError {
            topic: topic.clone(),
            reason,
        };
        super::config_log::create_topic(
            client,
            &topic,
            settings.status_partitions,
            settings.status_replication,
        )
        .await
        .map_err(err)?;
        let consumer: BaseConsumer<ProbeContext> = super::config_log::reader_config(
            client,
            &format!("ferry-status-{}", settings.group_id),
        )
        .set("group.id", format!("{}-status-reader", settings.group_id))
        .create_with_context(ProbeContext::default())
        .map_err(|e| err(format!("cannot create its consumer: {e}")))?;
        let reader_topic = topic.clone();
        let (consumer, ends) = tokio::task::spawn_blocking(move || {
            let md = consumer
                .fetch_metadata(Some(&reader_topic), TIMEOUT)
                .map_err(|e| format!("cannot read its metadata: {e}"))?;
            let count = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
            let mut ends = BTreeMap::new();
            let mut tpl = TopicPartitionList::new();
            for p in 0..count {
                let (_, high) = consumer
                    .fetch_watermarks(&reader_topic, p, TIMEOUT)
                    .map_err(|e| format!("cannot read its end offsets: {e}"))?;
                ends.insert(p, high);
                tpl.add_partition_offset(&reader_topic, p, Offset::Beginning)
                    .map_err(|e| e.to_string())?;
            }
            consumer.assign(&tpl).map_err(|e| e.to_string())?;
            Ok::<_, String>((consumer, ends))
        })
        .await
        .map_err(|e| err(e.to_string()))?
        .map_err(err)?;
        if ends.is_empty() {
            return Err(err("it has no partitions".into()));
        }
        let producer: FutureProducer<ProbeContext> = super::config_log::writer_config(
            client,
            &format!("ferry-status-{}", settings.group_id),
        )
        // The Java client's partitioner: a key lands where Connect would put it.
        .set("partitioner", "murmur2_random")
        .create_with_context(ProbeContext::default())
        .map_err(|e| err(format!("cannot create its producer: {e}")))?;
        let view = Arc::new(Mutex::new(View::default()));
        let reader = Reader {
            topic: topic.clone(),
            config_topic: settings.config_topic.clone(),
            worker_id: worker_id.clone(),
            view: view.clone(),
            ends,
        };
        std::thread::Builder::new()
            .name("ferry-status".into())
            .spawn(move || reader.follow(&consumer, &cancel))
            .map_err(|e| err(format!("cannot start its reader: {e}")))?;
        let read = wait(|| lock(&view).caught_up).await;
        if !read {
            return Err(err(format!("not read to its end within {TIMEOUT:?}")));
        }
        let mut log = StatusLog {
            topic: topic.clone(),
            worker_id,
            config_topic: settings.config_topic.clone(),
            slot: 0,
            producer,
            view,
            written: Default::default(),
        };
        log.slot = log.claim().await.map_err(err)?;
        // What this worker wrote in an earlier life is its own to update or delete.
        let mine: BTreeMap<String, Option<StatusValue>> = {
            let v = lock(&log.view);
            let me = |s: &StatusValue| s.worker_id == log.worker_id;
            v.connectors
                .iter()
                .filter(|(_, s)| me(s))
                .map(|(n, s)| (connector_key(n), Some(s.clone())))
                .chain(
                    v.tasks
                        .iter()
                        .filter(|(_, s)| me(s))
                        .map(|((c, t), s)| (task_key(c, *t), Some(s.clone()))),
                )
                .collect()
        };
        *log.written.get_mut() = mine;
        tracing::info!(topic = %log.topic, slot = log.slot, "Status topic read; this worker's tasks are numbered from slot × tasks.max.");
        Ok(Arc::new(log))
    }

    pub(crate) fn slot(&self) -> usize {
        self.slot
    }

    /// Takes this worker's slot: its previous one if no live worker holds it, else the
    /// lowest free one; yields to an earlier claim of the same slot and tries again.
    async fn claim(&self) -> Result<usize, String> {
        for _ in 0..16 {
            let slot = lock(&self.view).free_slot(&self.worker_id);
            let offset = self.beat(slot).await?;
            if !wait(|| lock(&self.view).read_p0 > offset).await {
                return Err(format!(
                    "this worker's record was not read back within {TIMEOUT:?}"
                ));
            }
            if !lock(&self.view).claimed_before(&self.worker_id, slot, offset) {
                return Ok(slot);
            }
            tracing::info!(
                slot,
                "Another worker claimed this slot first; claiming another."
            );
        }
        Err("no free slot could be claimed (workers keep claiming the same ones)".into())
    }

    /// Writes this worker's record (to partition 0); the offset it got.
    async fn beat(&self, slot: usize) -> Result<i64, String> {
        let value = records::encode(&WorkerValue {
            worker_id: self.worker_id.clone(),
            config_topic: self.config_topic.clone(),
            slot,
        });
        let key = worker_key(&self.worker_id);
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(&value)
            .partition(0);
        self.producer
            .send(record, TIMEOUT)
            .await
            .map(|d| d.offset)
            .map_err(|(e, _)| format!("cannot write to it: {e}"))
    }

    /// Refreshes this worker's record; a failure is logged and retried at the next beat.
    pub(crate) async fn heartbeat(&self) {
        if let Err(e) = self.beat(self.slot).await {
            tracing::warn!(topic = %self.topic, error = %e, "Worker record not written to the status topic; other workers may see this worker as gone if this goes on.");
        }
    }

    async fn send(&self, key: &str, value: Option<&StatusValue>) -> bool {
        let payload = value.map(records::encode);
        let mut record: FutureRecord<'_, str, Vec<u8>> = FutureRecord::to(&self.topic).key(key);
        if let Some(p) = &payload {
            record = record.payload(p);
        }
        match self.producer.send(record, TIMEOUT).await {
            Ok(_) => true,
            Err((e, _)) => {
                tracing::warn!(topic = %self.topic, key, error = %e, "Status not written to the status topic; retried at the next change check.");
                false
            }
        }
    }

    /// Writes what changed in this worker's connectors and tasks since the last call:
    /// new states, and tombstones for the connectors and tasks that are gone.
    pub(crate) async fn sync(&self, own: &[ConnectorStateInfo]) {
        let value = |state: &str, trace: &Option<String>| StatusValue {
            state: state.to_string(),
            trace: trace.clone(),
            worker_id: self.worker_id.clone(),
            generation: 0,
        };
        let mut now: BTreeMap<String, Option<StatusValue>> = BTreeMap::new();
        for c in own {
            now.insert(
                connector_key(&c.name),
                Some(value(c.connector.state, &c.connector.trace)),
            );
            for t in &c.tasks {
                now.insert(task_key(&c.name, t.id), Some(value(t.state, &t.trace)));
            }
        }
        let mut written = self.written.lock().await;
        // The connector's record names one worker (the last to write it; every worker runs
        // every connector): when that worker is gone or left it UNASSIGNED, the others
        // write theirs again. And a worker the others took for gone (its records marked
        // UNASSIGNED meanwhile) writes all of its own again.
        let (stale, resync): (BTreeSet<String>, bool) = {
            let mut v = lock(&self.view);
            let stale = own
                .iter()
                .filter(|c| {
                    v.connectors.get(&c.name).is_some_and(|s| {
                        s.worker_id != self.worker_id
                            && (s.state == "UNASSIGNED" || !v.live(&s.worker_id))
                    })
                })
                .map(|c| connector_key(&c.name))
                .collect();
            (stale, std::mem::take(&mut v.resync))
        };
        for key in &stale {
            if written.get(key).is_some_and(Option::is_some) {
                written.remove(key);
            }
        }

        let mut gone: BTreeSet<String> = written
            .iter()
            .filter(|(k, v)| v.is_some() && !now.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        // A connector gone from this worker is deleted (every worker has every connector):
        // as Connect, its tasks' records go too, whichever worker wrote them.
        let deleted: Vec<&str> = gone
            .iter()
            .filter_map(|k| k.strip_prefix("status-connector-"))
            .collect();
        let tasks: Vec<String> = {
            let v = lock(&self.view);
            deleted
                .iter()
                .flat_map(|name| {
                    v.tasks
                        .range((name.to_string(), 0)..=(name.to_string(), usize::MAX))
                        .map(|((c, t), _)| task_key(c, *t))
                })
                .collect()
        };
        gone.extend(tasks);
        for key in gone {
            if self.send(&key, None).await {
                written.remove(&key);
            }
        }
        for (key, value) in now {
            if (resync || written.get(&key) != Some(&value))
                && self.send(&key, value.as_ref()).await
            {
                written.insert(key, value);
            }
        }
        drop(written);
        self.tidy().await;
    }

    /// The records of workers that are gone (killed, cut off) still say RUNNING: the live
    /// worker with the lowest id marks them UNASSIGNED, for the tools that read the topic.
    async fn tidy(&self) {
        let dead: Vec<(String, StatusValue)> = {
            let v = lock(&self.view);
            let lowest = v
                .workers
                .keys()
                .filter(|id| v.live(id))
                .chain(std::iter::once(&self.worker_id))
                .min();
            if lowest != Some(&self.worker_id) {
                return;
            }
            v.tasks
                .iter()
                .filter(|(_, s)| {
                    s.worker_id != self.worker_id
                        && s.state != "UNASSIGNED"
                        && !v.live(&s.worker_id)
                })
                .map(|((c, t), s)| {
                    let mut s = s.clone();
                    s.state = "UNASSIGNED".into();
                    s.trace = None;
                    (task_key(c, *t), s)
                })
                .collect()
        };
        for (key, value) in dead {
            self.send(&key, Some(&value)).await;
        }
    }

    /// A clean stop: this worker's tasks UNASSIGNED, its connectors' records too where they
    /// are this worker's, and its own record deleted (Connect's `onShutdown`). Sent
    /// together and waited for `within` at most: with the brokers gone, each record would
    /// otherwise wait for its delivery timeout (librdkafka's `message.timeout.ms`, 5 min),
    /// one after the other, and hold the process long after its stop bound. What is not
    /// written then, the other workers make up for: this worker's record goes stale after
    /// 10 s, and the live worker with the lowest id marks its tasks UNASSIGNED.
    pub(crate) async fn stop(&self, within: Duration) {
        let written = self.written.lock().await.clone();
        let mut finals = Vec::new();
        for (key, value) in written {
            let Some(mut value) = value else { continue };
            if let Some(name) = key.strip_prefix("status-connector-") {
                let theirs = lock(&self.view)
                    .connectors
                    .get(name)
                    .is_some_and(|s| s.worker_id != self.worker_id);
                if theirs {
                    continue;
                }
            }
            value.state = "UNASSIGNED".into();
            value.trace = None;
            finals.push((key, value));
        }
        // Everything is queued at once (librdkafka sends it together), then awaited.
        let mut deliveries = Vec::new();
        for (key, value) in &finals {
            let payload = records::encode(value);
            let record = FutureRecord::to(&self.topic).key(key).payload(&payload);
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push((key.clone(), delivery)),
                Err((e, _)) => {
                    tracing::warn!(topic = %self.topic, key = %key, error = %e, "Final state not written to the status topic.");
                }
            }
        }
        let key = worker_key(&self.worker_id);
        let record: FutureRecord<'_, String, Vec<u8>> =
            FutureRecord::to(&self.topic).key(&key).partition(0);
        match self.producer.send_result(record) {
            Ok(delivery) => deliveries.push((key, delivery)),
            Err((e, _)) => {
                tracing::warn!(topic = %self.topic, error = %e, "Worker record not deleted from the status topic; other workers see this worker as gone once it is stale.");
            }
        }
        let all = async {
            for (key, delivery) in deliveries {
                if let Ok(Err((e, _))) = delivery.await {
                    tracing::warn!(topic = %self.topic, key = %key, error = %e, "Final state not written to the status topic.");
                }
            }
        };
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!(topic = %self.topic, timeout_ms = within.as_millis() as u64, "The status topic did not take this worker's final states in time; the other workers see this worker as gone once its record is stale, and mark its tasks UNASSIGNED.");
        }
    }

    /// The tasks of `connector` that live workers other than this one wrote.
    pub(crate) fn peer_tasks(&self, connector: &str) -> Vec<TaskStateInfo> {
        let v = lock(&self.view);
        v.tasks
            .range((connector.to_string(), 0)..=(connector.to_string(), usize::MAX))
            .filter(|(_, s)| s.worker_id != self.worker_id && v.live(&s.worker_id))
            .map(|((_, id), s)| TaskStateInfo {
                id: *id,
                state: state_name(&s.state),
                worker_id: s.worker_id.clone(),
                trace: s.trace.clone(),
            })
            .collect()
    }
}

/// Polls `done` every 20 ms for up to [`TIMEOUT`].
async fn wait(mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + TIMEOUT;
    while !done() {
        if Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// The reader thread's state.
struct Reader {
    topic: String,
    config_topic: String,
    worker_id: String,
    view: Arc<Mutex<View>>,
    /// Each partition's end at start: caught up once read past all of them.
    ends: BTreeMap<i32, i64>,
}

impl Reader {
    fn follow(mut self, consumer: &BaseConsumer<ProbeContext>, cancel: &CancellationToken) {
        self.ends.retain(|_, end| *end > 0);
        lock(&self.view).caught_up = self.ends.is_empty();
        while !cancel.is_cancelled() {
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                self.check_positions(consumer);
                continue;
            };
            match message {
                Ok(m) => {
                    let age = m
                        .timestamp()
                        .to_millis()
                        .map(|ts| crate::worker::status::now_ms() - ts)
                        .unwrap_or(0);
                    let record = records::decode(m.key(), m.payload());
                    self.apply(m.partition(), m.offset(), age, record);
                }
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "Cannot read the status topic; retrying.");
                }
            }
        }
    }

    /// Caught up also when a partition's position passed its end without a record there
    /// (compaction, transaction markers).
    fn check_positions(&mut self, consumer: &BaseConsumer<ProbeContext>) {
        if self.ends.is_empty() {
            return;
        }
        let Ok(positions) = consumer.position() else {
            return;
        };
        for e in positions.elements() {
            if let Offset::Offset(at) = e.offset()
                && self.ends.get(&e.partition()).is_some_and(|end| at >= *end)
            {
                self.ends.remove(&e.partition());
            }
        }
        if self.ends.is_empty() {
            lock(&self.view).caught_up = true;
        }
    }

    fn apply(
        &mut self,
        partition: i32,
        offset: i64,
        age_ms: i64,
        record: Result<StatusRecord, String>,
    ) {
        let mut v = lock(&self.view);
        if partition == 0 {
            v.read_p0 = offset + 1;
        }
        match record {
            Err(reason) => {
                tracing::warn!(topic = %self.topic, partition, offset, reason = %reason, "Status topic record skipped.");
            }
            Ok(StatusRecord::Connector { name, value }) => match value {
                Some(s) => {
                    v.connectors.insert(name, s);
                }
                // Its tasks' records stay until their own tombstones: the workers that see
                // the deletion write those (for every worker's tasks, gone ones included).
                None => {
                    v.connectors.remove(&name);
                }
            },
            Ok(StatusRecord::Task {
                connector,
                task,
                value,
            }) => match value {
                Some(s) => {
                    v.tasks.insert((connector, task), s);
                }
                None => {
                    v.tasks.remove(&(connector, task));
                }
            },
            Ok(StatusRecord::Worker { worker_id, value }) => match value {
                None => {
                    v.workers.remove(&worker_id);
                }
                Some(w) => {
                    // Once caught up a record is as fresh as its reading (no clock skew);
                    // before, its age is its timestamp's.
                    let age = if v.caught_up {
                        Duration::ZERO
                    } else {
                        Duration::from_millis(age_ms.max(0) as u64)
                    };
                    let seen = Instant::now().checked_sub(age);
                    if w.config_topic != self.config_topic
                        && worker_id != self.worker_id
                        && v.warned.insert(worker_id.clone())
                    {
                        tracing::warn!(
                            status_topic = %self.topic,
                            "Worker {worker_id} shares this status topic but reads its connectors from config.storage.topic {}, this worker from {}; the workers of one cluster need the same config.storage.topic: set it alike in every worker's file.",
                            w.config_topic,
                            self.config_topic
                        );
                    }
                    if worker_id == self.worker_id && v.caught_up && !v.live(&worker_id) {
                        v.resync = true;
                    }
                    let claimed_at = match v.workers.get(&worker_id) {
                        Some(p) if p.value.slot == w.slot => p.claimed_at,
                        _ => offset,
                    };
                    v.workers.insert(
                        worker_id,
                        Peer {
                            value: w,
                            claimed_at,
                            seen,
                        },
                    );
                }
            },
            Ok(StatusRecord::Other) => {}
        }
        if !v.caught_up {
            if self
                .ends
                .get(&partition)
                .is_some_and(|end| offset + 1 >= *end)
            {
                self.ends.remove(&partition);
            }
            v.caught_up = self.ends.is_empty();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> Reader {
        Reader {
            topic: "st".into(),
            config_topic: "cfg".into(),
            worker_id: "me:1".into(),
            view: Arc::default(),
            ends: BTreeMap::new(),
        }
    }

    fn beat(r: &mut Reader, worker: &str, slot: usize, offset: i64, age_ms: i64) {
        let record = StatusRecord::Worker {
            worker_id: worker.into(),
            value: Some(WorkerValue {
                worker_id: worker.into(),
                config_topic: "cfg".into(),
                slot,
            }),
        };
        r.apply(0, offset, age_ms, Ok(record));
    }

    #[test]
    fn the_earlier_claim_of_a_slot_wins_and_the_later_worker_moves() {
        let mut r = reader();
        lock(&r.view).caught_up = true;
        beat(&mut r, "a:1", 0, 5, 0);
        beat(&mut r, "b:1", 0, 7, 0);
        // a's later heartbeats keep its first claim.
        beat(&mut r, "a:1", 0, 9, 0);
        let v = lock(&r.view);
        assert!(!v.claimed_before("a:1", 0, 5));
        assert!(v.claimed_before("b:1", 0, 7));
        assert_eq!(v.free_slot("b:1"), 1);
        assert_eq!(v.free_slot("c:1"), 1);
        assert_eq!(v.read_p0, 10);
    }

    #[test]
    fn a_stale_worker_holds_no_slot_and_a_returning_one_takes_its_own_back() {
        let mut r = reader();
        // Read before catching up (the end is further on): the records' ages count.
        r.ends.insert(0, 100);
        beat(&mut r, "gone:1", 0, 1, STALE.as_millis() as i64 + 5_000);
        beat(&mut r, "back:1", 3, 2, 0);
        beat(&mut r, "live:1", 1, 3, 0);
        let v = lock(&r.view);
        assert!(!v.live("gone:1") && v.live("live:1"));
        assert_eq!(v.free_slot("new:1"), 0, "the stale worker's slot is free");
        assert_eq!(v.free_slot("back:1"), 3, "its previous slot");
        assert_eq!(v.free_slot("live:1"), 1);
        assert!(!v.claimed_before("new:1", 0, 50));
        assert!(v.claimed_before("new:1", 1, 50));
    }

    #[test]
    fn tombstones_remove_and_records_of_a_deleted_connector_wait_for_their_own() {
        let mut r = reader();
        let running = StatusValue {
            state: "RUNNING".into(),
            trace: None,
            worker_id: "a:1".into(),
            generation: 0,
        };
        for (task, offset) in [(0, 1), (1, 2)] {
            let record = StatusRecord::Task {
                connector: "c".into(),
                task,
                value: Some(running.clone()),
            };
            r.apply(1, offset, 0, Ok(record));
        }
        let connector = |value| StatusRecord::Connector {
            name: "c".into(),
            value,
        };
        r.apply(2, 1, 0, Ok(connector(Some(running.clone()))));
        r.apply(2, 2, 0, Ok(connector(None)));
        let task0 = StatusRecord::Task {
            connector: "c".into(),
            task: 0,
            value: None,
        };
        r.apply(1, 3, 0, Ok(task0));
        r.apply(1, 4, 0, Err("not JSON".into()));
        let v = lock(&r.view);
        assert!(v.connectors.is_empty());
        assert_eq!(
            v.tasks.keys().cloned().collect::<Vec<_>>(),
            vec![("c".to_string(), 1)]
        );
    }
}
