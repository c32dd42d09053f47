use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex as StdMutex;

use bytes::Bytes;
use ferry_connector_api::{ConnectorProps, NoCommitRequests, NoProducers, TaskContext, Value};
use sha2::{Digest, Sha512};

use super::*;
use crate::chunk::tests::{encode, encode_at};

/// Records what was reported; fails like `errors.tolerance=none` when `fatal`.
#[derive(Debug, Default)]
struct Reporter {
    fatal: bool,
    seen: StdMutex<Vec<(i64, String)>>,
}

impl ErrantRecordReporter for Reporter {
    fn report(&self, record: &SinkRecord, error: &RecordError) -> Result<(), TaskError> {
        self.seen
            .lock()
            .unwrap()
            .push((record.offset, error.to_string()));
        if self.fatal {
            Err(TaskError::fatal(error.to_string()))
        } else {
            Ok(())
        }
    }
}

fn connector(root: &Path, extra: &[(&str, &str)]) -> Box<dyn ferry_connector_api::Connector> {
    let mut map: BTreeMap<String, String> =
        BTreeMap::from([("directory.path".into(), root.display().to_string())]);
    for (k, v) in extra {
        map.insert(k.to_string(), v.to_string());
    }
    (crate::FACTORY.create)(&mut ConnectorProps::new(map)).unwrap()
}

fn task(
    c: &dyn ferry_connector_api::Connector,
    id: usize,
    reporter: Arc<Reporter>,
) -> Box<dyn SinkTask> {
    c.create_task(TaskContext {
        connector: "omsi".into(),
        task_id: id,
        errant: reporter,
        commits: Arc::new(NoCommitRequests),
        producers: Arc::new(NoProducers),
    })
    .unwrap()
}

fn rec(partition: i32, offset: i64, value: Vec<u8>) -> SinkRecord {
    SinkRecord {
        topic: "files".into(),
        partition,
        offset,
        timestamp: None,
        key: None,
        value: Some(Value::Bytes(Bytes::from(value))),
        headers: vec![],
        original_topic: None,
    }
}

fn consumed(pairs: &[(i32, i64)]) -> Offsets {
    pairs
        .iter()
        .map(|(p, o)| (TopicPartition::new("files", *p), *o))
        .collect()
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Every file under `root`, relative, including hidden ones.
fn listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn chunks_out_of_order_over_partitions_and_tasks_rebuild_the_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = connector(dir.path(), &[]);
    let reporter = Arc::new(Reporter::default());
    let mut t0 = task(c.as_ref(), 0, reporter.clone());
    let mut t1 = task(c.as_ref(), 1, reporter.clone());
    let file = data(1000, 7);
    let chunk = |i| encode("a/b", "x.bin", "", &file, 128, i);
    // 8 chunks: odd ones on partition 0 (task 0), even ones on partition 1 (task 1),
    // reversed, with a duplicate.
    t0.put(&[
        rec(0, 0, chunk(7)),
        rec(0, 1, chunk(5)),
        rec(0, 2, chunk(5)),
    ])
    .await
    .unwrap();
    t1.put(&[
        rec(1, 0, chunk(8)),
        rec(1, 1, chunk(6)),
        rec(1, 2, chunk(4)),
    ])
    .await
    .unwrap();
    // Not durable before the flush: nothing committable.
    assert!(!dir.path().join("a/b/x.bin").exists());
    let c0 = t0.pre_commit(&consumed(&[(0, 3)])).await.unwrap();
    assert_eq!(
        c0,
        consumed(&[(0, 3)]),
        "written, fsync'd and in the state file"
    );
    let state: Vec<String> = listing(dir.path());
    assert!(
        state.iter().any(|f| f.ends_with(".ferry-state")),
        "{state:?}"
    );
    t0.put(&[rec(0, 3, chunk(3)), rec(0, 4, chunk(1))])
        .await
        .unwrap();
    t1.put(&[rec(1, 3, chunk(2))]).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("a/b/x.bin")).unwrap(), file);
    assert_eq!(
        listing(dir.path()),
        vec!["a/b/x.bin".to_string()],
        "no leftovers"
    );
    // The completion acknowledged the records of both tasks.
    assert_eq!(
        t1.pre_commit(&consumed(&[(1, 4)])).await.unwrap(),
        consumed(&[(1, 4)])
    );
    assert_eq!(
        t0.pre_commit(&consumed(&[(0, 5)])).await.unwrap(),
        consumed(&[(0, 5)])
    );
    // A redelivered chunk of the finished file changes nothing and is acknowledged.
    t0.put(&[rec(0, 5, chunk(3))]).await.unwrap();
    assert_eq!(
        t0.pre_commit(&consumed(&[(0, 6)])).await.unwrap(),
        consumed(&[(0, 6)])
    );
    assert_eq!(listing(dir.path()), vec!["a/b/x.bin".to_string()]);
    assert!(reporter.seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_a_commit_resumes_from_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = data(10_000, 3);
    let chunk = |i| encode("", "big.dat", "_copy", &file, 1024, i);
    let reporter = Arc::new(Reporter::default());
    {
        let c = connector(dir.path(), &[]);
        let mut t = task(c.as_ref(), 0, reporter.clone());
        let first: Vec<SinkRecord> = (1..=4).map(|i| rec(0, i as i64 - 1, chunk(i))).collect();
        t.put(&first).await.unwrap();
        assert_eq!(
            t.pre_commit(&consumed(&[(0, 4)])).await.unwrap(),
            consumed(&[(0, 4)])
        );
        // Written but never flushed: lost with the process ("kill -9"), not committed.
        t.put(&[rec(0, 4, chunk(5)), rec(0, 5, chunk(6))])
            .await
            .unwrap();
        // No pre_commit: the process dies here.
    }
    assert!(!dir.path().join("big_copy.dat").exists());
    let c = connector(dir.path(), &[]);
    let mut t = task(c.as_ref(), 0, reporter.clone());
    // Redelivery from the committed offset 4.
    let rest: Vec<SinkRecord> = (5..=10).map(|i| rec(0, i as i64 - 1, chunk(i))).collect();
    t.put(&rest).await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("big_copy.dat")).unwrap(),
        file
    );
    assert_eq!(listing(dir.path()), vec!["big_copy.dat".to_string()]);
    assert_eq!(
        t.pre_commit(&consumed(&[(0, 10)])).await.unwrap(),
        consumed(&[(0, 10)])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_records_go_to_the_reporter_and_never_escape_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let c = connector(&root, &[]);
    let reporter = Arc::new(Reporter::default());
    let mut t = task(c.as_ref(), 0, reporter.clone());
    let file = data(300, 1);
    let mut corrupt = encode("", "c.bin", "", &file, 300, 1);
    let n = corrupt.len();
    corrupt[n - 20] ^= 0xff;
    t.put(&[
        rec(0, 0, corrupt),
        rec(0, 1, encode("../..", "evil", "", &file, 300, 1)),
        rec(0, 2, b"not msgpack at all".to_vec()),
        rec(0, 3, encode("ok", "good.bin", "", &file, 300, 1)),
    ])
    .await
    .unwrap();
    let seen = reporter.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen[0]
            .1
            .contains("chunk 1 of `c.bin` does not match its SHA-512"),
        "{seen:?}"
    );
    assert!(
        seen[1].1.contains("`../../evil` climbs out with `..`"),
        "{seen:?}"
    );
    assert!(
        seen[2].1.starts_with("not an OpenMSIStream file chunk"),
        "{seen:?}"
    );
    assert_eq!(listing(dir.path()), vec!["out/ok/good.bin".to_string()]);
    // Skipped under errors.tolerance=all: the offsets advance.
    assert_eq!(
        t.pre_commit(&consumed(&[(0, 4)])).await.unwrap(),
        consumed(&[(0, 4)])
    );

    // errors.tolerance=none: the task fails and commits nothing past the bad record.
    let strict = Arc::new(Reporter {
        fatal: true,
        ..Reporter::default()
    });
    let mut t = task(c.as_ref(), 1, strict);
    let err = t
        .put(&[
            rec(1, 0, encode("", "y", "", &file, 100, 1)),
            rec(1, 1, encode("/etc", "passwd", "", &file, 300, 1)),
        ])
        .await
        .unwrap_err();
    assert!(!err.is_retriable());
    assert!(
        err.to_string().contains("`/etc/passwd` is absolute"),
        "{err}"
    );
    assert_eq!(
        t.pre_commit(&consumed(&[(1, 2)])).await.unwrap(),
        consumed(&[(1, 1)])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_regex_selects_files_and_a_newer_upload_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = connector(dir.path(), &[("download.regex", r"keep/.*\.dat")]);
    let reporter = Arc::new(Reporter::default());
    let mut t = task(c.as_ref(), 0, reporter.clone());
    let v1 = data(500, 1);
    let v2 = data(700, 2);
    t.put(&[
        rec(0, 0, encode("skip", "a.dat", "", &v1, 500, 1)),
        rec(0, 1, encode_at("keep", "a.dat", "", &v1, 500, 1, 1000.0)),
        rec(0, 2, encode("keep", "a.txt", "", &v1, 500, 1)),
    ])
    .await
    .unwrap();
    assert_eq!(listing(dir.path()), vec!["keep/a.dat".to_string()]);
    // Re-uploaded with new content (newer mtime), two chunks.
    t.put(&[
        rec(0, 3, encode_at("keep", "a.dat", "", &v2, 512, 2, 2000.0)),
        rec(0, 4, encode_at("keep", "a.dat", "", &v2, 512, 1, 2000.0)),
    ])
    .await
    .unwrap();
    assert_eq!(std::fs::read(dir.path().join("keep/a.dat")).unwrap(), v2);
    // A late chunk of the older upload is superseded, not rebuilt over the newer file.
    t.put(&[rec(
        0,
        5,
        encode_at("keep", "a.dat", "", &v1, 500, 1, 1000.0),
    )])
    .await
    .unwrap();
    assert_eq!(
        Sha512::digest(std::fs::read(dir.path().join("keep/a.dat")).unwrap()),
        Sha512::digest(&v2)
    );
    assert_eq!(listing(dir.path()), vec!["keep/a.dat".to_string()]);
    assert_eq!(
        t.pre_commit(&consumed(&[(0, 6)])).await.unwrap(),
        consumed(&[(0, 6)])
    );
    assert!(reporter.seen.lock().unwrap().is_empty());
}

#[test]
fn bad_regexes_and_missing_paths_name_their_key() {
    let err = (crate::FACTORY.create)(&mut ConnectorProps::new(BTreeMap::from([
        ("directory.path".into(), "/tmp/x".into()),
        ("download.regex".into(), "(".into()),
    ])))
    .unwrap_err();
    assert_eq!(err.key(), "download.regex");
    let err = (crate::FACTORY.create)(&mut ConnectorProps::new(BTreeMap::new())).unwrap_err();
    assert_eq!(err.key(), "directory.path");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completion_that_fails_on_the_disk_is_retried_with_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let c = connector(dir.path(), &[]);
    let reporter = Arc::new(Reporter::default());
    let mut t = task(c.as_ref(), 0, reporter.clone());
    let file = data(300, 9);
    let chunk = |i| encode("", "x.bin", "", &file, 100, i);
    t.put(&[rec(0, 0, chunk(1)), rec(0, 1, chunk(2))])
        .await
        .unwrap();
    // Something in the way of the rename: the completion fails, retriably.
    std::fs::create_dir_all(dir.path().join("x.bin/in-the-way")).unwrap();
    let batch = [rec(0, 2, chunk(3))];
    let err = t.put(&batch).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert_eq!(
        t.pre_commit(&consumed(&[(0, 3)])).await.unwrap(),
        consumed(&[(0, 2)])
    );
    // The operator clears it; the runtime redelivers the same batch.
    std::fs::remove_dir_all(dir.path().join("x.bin")).unwrap();
    t.put(&batch).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("x.bin")).unwrap(), file);
    assert_eq!(listing(dir.path()), vec!["x.bin".to_string()]);
    assert_eq!(
        t.pre_commit(&consumed(&[(0, 3)])).await.unwrap(),
        consumed(&[(0, 3)])
    );
}
