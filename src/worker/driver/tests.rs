//! The driver's delivery rules with a scripted sink: nothing is committed past what the
//! sink acknowledged, retriable errors redeliver, fatal errors stop all commits.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ferry_connector_api::{Value, async_trait};

use super::*;
use crate::config::connector::{ErrorPolicy, ErrorTolerance};
use crate::convert::{Converter, JsonSettings};
use crate::worker::errant::Errant;

/// What the scripted sink answers to each `put`, in order; Ok once the script runs out.
#[derive(Debug, Default)]
struct Script {
    puts: VecDeque<Result<(), TaskError>>,
    /// Offsets `pre_commit` returns; None → everything consumed.
    safe: Option<Offsets>,
    received: Vec<i64>,
    /// How many received values a structured converter had decoded.
    structured: usize,
    /// `commit_metadata` answers `<prefix> <offset>` for partition 0.
    metadata_prefix: Option<String>,
    /// What `open` was given.
    opened: Vec<Assigned>,
    stopped: bool,
}

#[derive(Debug)]
struct ScriptedSink(Arc<Mutex<Script>>);

#[async_trait]
impl SinkTask for ScriptedSink {
    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        let mut s = self.0.lock().unwrap();
        let answer = s.puts.pop_front().unwrap_or(Ok(()));
        if answer.is_ok() {
            s.received.extend(records.iter().map(|r| r.offset));
            s.structured += records
                .iter()
                .filter(|r| r.value.as_ref().is_some_and(|v| v.structured().is_some()))
                .count();
        }
        answer
    }

    async fn open(&mut self, partitions: &[Assigned]) -> Result<(), TaskError> {
        self.0.lock().unwrap().opened.extend_from_slice(partitions);
        Ok(())
    }

    async fn pre_commit(&mut self, consumed: &Offsets) -> Result<Offsets, TaskError> {
        let s = self.0.lock().unwrap();
        Ok(s.safe.clone().unwrap_or_else(|| consumed.clone()))
    }

    fn commit_metadata(&self, partition: &TopicPartition, offset: i64) -> Option<String> {
        let s = self.0.lock().unwrap();
        let prefix = s.metadata_prefix.as_ref()?;
        (partition.partition == 0).then(|| format!("{prefix} {offset}"))
    }

    async fn stop(&mut self) -> Result<(), TaskError> {
        self.0.lock().unwrap().stopped = true;
        Ok(())
    }
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn records(p: i32, offsets: std::ops::Range<i64>) -> Vec<SinkRecord> {
    offsets
        .map(|o| SinkRecord {
            topic: "t".into(),
            original_topic: None,
            partition: p,
            offset: o,
            timestamp: None,
            key: None,
            value: Some(Value::Bytes(bytes::Bytes::from_static(b"v"))),
            headers: vec![],
        })
        .collect()
}

struct Harness {
    tx: mpsc::Sender<Command>,
    commits: std_mpsc::Receiver<Commits>,
    script: Arc<Mutex<Script>>,
    status: Arc<TaskStatus>,
    cancel: CancellationToken,
    failed: Arc<std::sync::atomic::AtomicBool>,
    driver: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    store: Arc<FileOffsetStore>,
}

fn start(script: Script, flush_interval: Duration) -> Harness {
    start_decoding(
        script,
        flush_interval,
        Converter::ByteArray,
        ErrorTolerance::None,
    )
}

/// A driver whose values go through `value_converter`, with `errors.tolerance`.
fn start_decoding(
    script: Script,
    flush_interval: Duration,
    value_converter: Converter,
    tolerance: ErrorTolerance,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileOffsetStore::open(&dir.path().join("offsets")).unwrap());
    let script = Arc::new(Mutex::new(script));
    let status = Arc::new(TaskStatus::new("c", 0));
    let (tx, rx) = mpsc::channel(2);
    let (commit_tx, commits) = std_mpsc::channel();
    let cancel = CancellationToken::new();
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let driver = Driver {
        task: Box::new(ScriptedSink(script.clone())),
        status: status.clone(),
        store: Some(store.clone()),
        flush_interval,
        flush_timeout: Duration::from_secs(5),
        retry_delay_max: Duration::from_millis(200),
        retry_timeout: None,
        commits: commit_tx,
        cancel: cancel.clone(),
        failed: failed.clone(),
        requests: Default::default(),
        assigned: Default::default(),
        decoder: Decoder::new(Converter::ByteArray, value_converter),
        errant: Arc::new(Errant {
            policy: ErrorPolicy {
                tolerance,
                log_enable: true,
                log_include_messages: false,
                retry_delay_max: Duration::from_millis(200),
                retry_timeout: None,
            },
            status: status.clone(),
            dead_letters: None,
            originals: None,
        }),
        dead_letters: Default::default(),
        transforms: Default::default(),
        originals: None,
        consumed: Default::default(),
        given: Default::default(),
        skipped_tail: Default::default(),
        committed: Default::default(),
    };
    let driver = tokio::spawn(driver.run(rx));
    Harness {
        tx,
        commits,
        script,
        status,
        cancel,
        failed,
        driver,
        _dir: dir,
        store,
    }
}

/// The final positions' offsets.
async fn shutdown(h: &Harness) -> Option<Offsets> {
    shutdown_with_metadata(h).await.map(|c| offsets_of(&c))
}

async fn shutdown_with_metadata(h: &Harness) -> Option<Commits> {
    let (reply, rx) = oneshot::channel();
    h.tx.send(Command::Shutdown(Duration::from_secs(5), reply))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap()
}

fn offsets_of(c: &Commits) -> Offsets {
    c.iter().map(|(tp, c)| (tp.clone(), c.offset)).collect()
}

/// Partitions assigned with no committed position.
fn assigned(parts: &[TopicPartition]) -> Vec<Assigned> {
    parts.iter().cloned().map(Assigned::new).collect()
}

/// The offset file's offset of partition `p`.
fn stored(h: &Harness, p: i32) -> Option<i64> {
    h.store.get("c", "t", p).map(|c| c.offset)
}

#[tokio::test(flavor = "multi_thread")]
async fn commits_one_past_the_last_delivered_record() {
    let mut h = start(Script::default(), Duration::from_secs(3600));
    h.tx.send(Command::Assigned(assigned(&[tp(0), tp(1)])))
        .await
        .unwrap();
    h.tx.send(Command::Records(records(0, 0..5))).await.unwrap();
    h.tx.send(Command::Records(records(1, 10..12)))
        .await
        .unwrap();
    let offsets = shutdown(&h).await.unwrap();
    assert_eq!(offsets, Offsets::from([(tp(0), 5), (tp(1), 12)]));
    assert_eq!(stored(&h, 0), Some(5));
    // The reply comes before the sink is closed and stopped (the consumer need not wait
    // for that to commit); the driver's end is when the task is Stopped.
    tokio::time::timeout(Duration::from_secs(5), &mut h.driver)
        .await
        .expect("the driver ends after Shutdown")
        .unwrap();
    assert_eq!(h.status.state(), TaskState::Stopped);
    assert!(h.script.lock().unwrap().stopped);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sinks_commit_metadata_is_stored_with_its_offset_and_given_back_at_open() {
    let script = Script {
        metadata_prefix: Some("stream-a".into()),
        ..Default::default()
    };
    let h = start(script, Duration::from_secs(3600));
    let resumed = Assigned {
        partition: tp(0),
        committed: Some(OffsetAndMetadata::new(3, Some("stream-a 3".into()))),
    };
    h.tx.send(Command::Assigned(vec![
        resumed.clone(),
        Assigned::new(tp(1)),
    ]))
    .await
    .unwrap();
    h.tx.send(Command::Records(records(0, 3..7))).await.unwrap();
    h.tx.send(Command::Records(records(1, 0..2))).await.unwrap();
    let commits = shutdown_with_metadata(&h).await.unwrap();
    assert_eq!(
        commits,
        Commits::from([
            (tp(0), OffsetAndMetadata::new(7, Some("stream-a 7".into()))),
            (tp(1), OffsetAndMetadata::new(2, None)),
        ])
    );
    assert_eq!(h.store.get("c", "t", 0), commits.get(&tp(0)).cloned());
    assert_eq!(h.store.get("c", "t", 1), commits.get(&tp(1)).cloned());
    assert_eq!(
        h.script.lock().unwrap().opened,
        vec![resumed, Assigned::new(tp(1))]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retriable_error_redelivers_the_same_batch_before_anything_is_committed() {
    let script = Script {
        puts: VecDeque::from([
            Err(TaskError::retriable("unavailable")),
            Err(TaskError::retriable("still down")),
        ]),
        ..Default::default()
    };
    let h = start(script, Duration::from_secs(3600));
    h.tx.send(Command::Assigned(assigned(&[tp(0)])))
        .await
        .unwrap();
    h.tx.send(Command::Records(records(0, 0..3))).await.unwrap();
    let offsets = shutdown(&h).await.unwrap();
    assert_eq!(
        h.script.lock().unwrap().received,
        vec![0, 1, 2],
        "delivered once, after two refusals"
    );
    assert_eq!(offsets[&tp(0)], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_that_acknowledges_less_holds_the_commit_back() {
    let script = Script {
        safe: Some(Offsets::from([(tp(0), 2), (tp(9), 100)])),
        ..Default::default()
    };
    let h = start(script, Duration::from_millis(50));
    h.tx.send(Command::Assigned(assigned(&[tp(0)])))
        .await
        .unwrap();
    h.tx.send(Command::Records(records(0, 0..5))).await.unwrap();
    let periodic = tokio::task::spawn_blocking(move || {
        h.commits
            .recv_timeout(Duration::from_secs(5))
            .map(|c| (offsets_of(&c), h))
    })
    .await
    .unwrap();
    let (offsets, h) = periodic.expect("a periodic commit");
    // Only what the sink acknowledged, and nothing for a partition the task does not own.
    assert_eq!(offsets, Offsets::from([(tp(0), 2)]));
    assert_eq!(stored(&h, 0), Some(2));
    assert_eq!(stored(&h, 9), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_claiming_more_than_it_was_given_is_clamped() {
    let script = Script {
        safe: Some(Offsets::from([(tp(0), 50)])),
        ..Default::default()
    };
    let h = start(script, Duration::from_secs(3600));
    h.tx.send(Command::Assigned(assigned(&[tp(0)])))
        .await
        .unwrap();
    h.tx.send(Command::Records(records(0, 0..5))).await.unwrap();
    assert_eq!(shutdown(&h).await.unwrap()[&tp(0)], 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fatal_error_fails_the_task_and_commits_nothing_more() {
    let script = Script {
        puts: VecDeque::from([Ok(()), Err(TaskError::fatal("bad credentials"))]),
        ..Default::default()
    };
    let h = start(script, Duration::from_secs(3600));
    h.tx.send(Command::Assigned(assigned(&[tp(0)])))
        .await
        .unwrap();
    h.tx.send(Command::Records(records(0, 0..2))).await.unwrap();
    h.tx.send(Command::Records(records(0, 2..4))).await.unwrap();
    assert_eq!(
        shutdown(&h).await,
        None,
        "a failed task answers but commits nothing"
    );
    assert!(matches!(h.status.state(), TaskState::Failed(ref m) if m == "bad credentials"));
    assert!(
        h.failed.load(std::sync::atomic::Ordering::Relaxed),
        "the consumer is told to pause the task's partitions"
    );
    assert!(!h.cancel.is_cancelled(), "the other tasks keep running");
    assert_eq!(stored(&h, 0), None);
    assert!(h.script.lock().unwrap().stopped);
    drop(h.tx);
    tokio::time::timeout(Duration::from_secs(5), h.driver)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn records_of_revoked_partitions_are_not_delivered() {
    let h = start(Script::default(), Duration::from_secs(3600));
    h.tx.send(Command::Assigned(assigned(&[tp(0), tp(1)])))
        .await
        .unwrap();
    h.tx.send(Command::Records(records(1, 0..2))).await.unwrap();
    let (reply, rx) = oneshot::channel();
    h.tx.send(Command::Revoked(vec![tp(1)], Duration::from_secs(5), reply))
        .await
        .unwrap();
    assert_eq!(
        rx.await.unwrap().map(|c| offsets_of(&c)),
        Some(Offsets::from([(tp(1), 2)]))
    );
    // Queued before the revoke reached the consumer thread: belongs to the new owner now.
    h.tx.send(Command::Records(records(1, 2..4))).await.unwrap();
    h.tx.send(Command::Records(records(0, 0..1))).await.unwrap();
    let offsets = shutdown(&h).await.unwrap();
    assert_eq!(h.script.lock().unwrap().received, vec![0, 1, 0]);
    assert_eq!(offsets, Offsets::from([(tp(0), 1)]));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_during_retries_abandons_the_batch_uncommitted() {
    let script = Script {
        puts: (0..1000)
            .map(|_| Err(TaskError::retriable("down")))
            .collect(),
        ..Default::default()
    };
    let h = start(script, Duration::from_secs(3600));
    h.tx.send(Command::Assigned(assigned(&[tp(0)])))
        .await
        .unwrap();
    h.tx.send(Command::Records(records(0, 0..3))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.cancel.cancel();
    assert_eq!(
        shutdown(&h).await,
        None,
        "nothing was delivered, so nothing to commit"
    );
    assert_eq!(
        h.status.records.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

/// JSON without schemas: `{"n": <offset>}` decodes, the offsets in `bad` hold non-JSON.
fn json_records(p: i32, offsets: std::ops::Range<i64>, bad: &[i64]) -> Vec<SinkRecord> {
    offsets
        .map(|o| {
            let text = if bad.contains(&o) {
                format!("ZTF alert {o}")
            } else {
                format!("{{\"n\": {o}}}")
            };
            SinkRecord {
                topic: "t".into(),
                original_topic: None,
                partition: p,
                offset: o,
                timestamp: None,
                key: None,
                value: Some(Value::Bytes(bytes::Bytes::from(text))),
                headers: vec![],
            }
        })
        .collect()
}

fn plain_json() -> Converter {
    Converter::Json(JsonSettings {
        schemas_enable: false,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn values_reach_the_sink_decoded() {
    let h = start_decoding(
        Script::default(),
        Duration::from_secs(3600),
        plain_json(),
        ErrorTolerance::None,
    );
    h.tx.send(Command::Assigned(assigned(&[tp(0)])))
        .await
        .unwrap();
    h.tx.send(Command::Records(json_records(0, 0..3, &[])))
        .await
        .unwrap();
    assert_eq!(shutdown(&h).await.unwrap()[&tp(0)], 3);
    let s = h.script.lock().unwrap();
    assert_eq!((s.received.clone(), s.structured), (vec![0, 1, 2], 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_does_not_decode_fails_the_task_under_tolerance_none() {
    let h = start_decoding(
        Script::default(),
        Duration::from_secs(3600),
        plain_json(),
        ErrorTolerance::None,
    );
    h.tx.send(Command::Assigned(assigned(&[tp(0)])))
        .await
        .unwrap();
    h.tx.send(Command::Records(json_records(0, 0..2, &[])))
        .await
        .unwrap();
    h.tx.send(Command::Records(json_records(0, 2..5, &[3])))
        .await
        .unwrap();
    assert_eq!(shutdown(&h).await, None, "a failed task commits nothing");
    let TaskState::Failed(line) = h.status.state() else {
        panic!("the task should have failed: {:?}", h.status.state())
    };
    assert!(
        line.starts_with("record topic=t partition=0 offset=3 (11 bytes) cannot be delivered (VALUE_CONVERTER): value.converter JsonConverter: not JSON: "),
        "{line}"
    );
    assert!(
        line.contains("; set value.converter=org.apache.kafka.connect.converters.ByteArrayConverter to pass bytes through"),
        "{line}"
    );
    assert!(!line.contains('\n'), "one line: {line}");
    // Everything before the bad record was delivered; nothing from it on.
    assert_eq!(h.script.lock().unwrap().received, vec![0, 1, 2]);
    assert_eq!(stored(&h, 0), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_does_not_decode_is_skipped_under_tolerance_all_and_counts_as_consumed() {
    let h = start_decoding(
        Script::default(),
        Duration::from_secs(3600),
        plain_json(),
        ErrorTolerance::All,
    );
    h.tx.send(Command::Assigned(assigned(&[tp(0), tp(1)])))
        .await
        .unwrap();
    // Skipped in the middle and at the end of a run; a batch entirely skipped.
    h.tx.send(Command::Records(json_records(0, 0..5, &[1, 4])))
        .await
        .unwrap();
    h.tx.send(Command::Records(json_records(1, 7..9, &[7, 8])))
        .await
        .unwrap();
    let offsets = shutdown(&h).await.unwrap();
    assert_eq!(offsets, Offsets::from([(tp(0), 5), (tp(1), 9)]));
    assert_eq!(h.script.lock().unwrap().received, vec![0, 2, 3]);
    assert_eq!(
        h.status.skipped.load(std::sync::atomic::Ordering::Relaxed),
        4
    );
    assert_eq!(
        h.status.records.load(std::sync::atomic::Ordering::Relaxed),
        3,
        "skipped records are not counted as delivered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn skipped_records_after_what_the_sink_acknowledged_become_committable() {
    // A sink that acknowledges like a Watermark: everything it was given (0..3), or less.
    for (acked, expected) in [(3, 5), (2, 2)] {
        let script = Script {
            safe: Some(Offsets::from([(tp(0), acked)])),
            ..Default::default()
        };
        let h = start_decoding(
            script,
            Duration::from_secs(3600),
            plain_json(),
            ErrorTolerance::All,
        );
        h.tx.send(Command::Assigned(assigned(&[tp(0), tp(1)])))
            .await
            .unwrap();
        h.tx.send(Command::Records(json_records(0, 0..5, &[3, 4])))
            .await
            .unwrap();
        // The sink was never given a record of partition 1 and says nothing of it.
        h.tx.send(Command::Records(json_records(1, 0..2, &[0, 1])))
            .await
            .unwrap();
        let offsets = shutdown(&h).await.unwrap();
        assert_eq!(
            offsets,
            Offsets::from([(tp(0), expected), (tp(1), 2)]),
            "sink acknowledged up to {acked}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn records_skipped_in_a_batch_that_is_then_abandoned_are_not_consumed() {
    let script = Script {
        puts: (0..1000)
            .map(|_| Err(TaskError::retriable("down")))
            .collect(),
        ..Default::default()
    };
    let h = start_decoding(
        script,
        Duration::from_secs(3600),
        plain_json(),
        ErrorTolerance::All,
    );
    h.tx.send(Command::Assigned(assigned(&[tp(0)])))
        .await
        .unwrap();
    h.tx.send(Command::Records(json_records(0, 0..3, &[2])))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.cancel.cancel();
    assert_eq!(shutdown(&h).await, None);
}
