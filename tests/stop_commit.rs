//! The stop's final group commit against a group that refuses it: refusals that pass
//! (the group is rebalancing) are tried again until the group takes the commit; a member
//! the group has fenced stops at once instead of retrying until the stop's bound.
//! The refusals are pushed into the mock cluster's OffsetCommit answers right before
//! SIGTERM; the interval commits are an hour apart, so the final commit is the one that
//! meets them.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

const PARTITIONS: i32 = 3;
const PER_PARTITION: usize = 200;
/// `task.shutdown.graceful.timeout.ms`: the whole stop's bound.
const STOP_BOUND_MS: u64 = 20_000;

const FENCED_LINE: &str = "The group fenced this worker's consumer during the stop";

struct Stopped {
    log: String,
    took: Duration,
    committed: Vec<i64>,
    offset_file: BTreeMap<String, i64>,
}

/// A consumer of the test's own joining the connector's group (and polled so that it stays
/// a member), which makes the group rebalance.
struct Joiner {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Joiner {
    fn start(bootstrap: &str, group: &str) -> Joiner {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("session.timeout.ms", "6000")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&["s"]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                // Records are read and never committed: this member only makes the group
                // rebalance.
                let _ = consumer.poll(Duration::from_millis(100));
            }
        });
        Joiner { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}

/// Runs a FileStreamSink over a topic until every record is delivered, pushes `errors` into
/// the group's OffsetCommit answers, sends SIGTERM (then, with `join`, has another member
/// join the group), and reports how the stop went.
fn stop_meeting(dir: &Path, name: &str, errors: &str, bound_ms: u64, join: bool) -> Stopped {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("s", PARTITIONS);
    for p in 0..PARTITIONS {
        produce_lines(&broker.bootstrap, "s", p, &numbered(p, PER_PARTITION));
    }
    let out = dir.join("out.txt");
    let bound = bound_ms.to_string();
    let worker = worker_props(
        dir,
        &broker.bootstrap,
        &[
            // No interval commit before the stop: the final commit meets the errors.
            ("offset.flush.interval.ms", "3600000"),
            ("task.shutdown.graceful.timeout.ms", &bound),
        ],
    );
    let connector = dir.join("c.properties");
    write_props(
        &connector,
        &[
            ("name", name),
            ("connector.class", "FileStreamSink"),
            ("tasks.max", "2"),
            ("topics", "s"),
            ("file", out.to_str().unwrap()),
        ],
    );
    let mut ferry = Ferry::standalone(dir, &worker, &[&connector]);
    let total = PARTITIONS as usize * PER_PARTITION;
    assert!(
        wait_until(Duration::from_secs(60), || lines_of(&out).len() >= total),
        "not every record was delivered:\n{}",
        ferry.log()
    );
    assert_eq!(
        committed(
            &broker.bootstrap,
            &format!("connect-{name}"),
            "s",
            PARTITIONS
        ),
        vec![-1; PARTITIONS as usize],
        "no commit before the stop (the pushed errors must meet the final one):\n{}",
        ferry.log()
    );
    broker
        .command(&format!("errors OffsetCommit {errors}"))
        .unwrap();
    let t0 = Instant::now();
    ferry.signal("TERM");
    let joiner = join.then(|| Joiner::start(&broker.bootstrap, &format!("connect-{name}")));
    let status = ferry.wait(Duration::from_secs(60));
    let took = t0.elapsed();
    if let Some(j) = joiner {
        j.stop();
    }
    let log = ferry.log();
    assert!(status.success(), "ferry exited {status:?}:\n{log}");
    assert_eq!(
        lines_of(&out).len(),
        total,
        "nothing delivered twice:\n{log}"
    );
    let committed = committed(
        &broker.bootstrap,
        &format!("connect-{name}"),
        "s",
        PARTITIONS,
    );
    let offset_file = offset_file(&dir.join("connect.offsets"))
        .remove(name)
        .unwrap_or_default();
    Stopped {
        log,
        took,
        committed,
        offset_file,
    }
}

fn delivered() -> BTreeMap<String, i64> {
    (0..PARTITIONS)
        .map(|p| (format!("s-{p}"), PER_PARTITION as i64))
        .collect()
}

#[test]
fn a_final_commit_refused_while_the_group_rebalances_is_tried_again_until_taken() {
    let dir = tempfile::tempdir().unwrap();
    let s = stop_meeting(
        dir.path(),
        "rebalancing",
        "REBALANCE_IN_PROGRESS,REBALANCE_IN_PROGRESS,REBALANCE_IN_PROGRESS",
        STOP_BOUND_MS,
        false,
    );
    assert!(
        s.log.contains("Group commit failed")
            && s.log.contains("Broker: Group rebalance in progress"),
        "the final commit met the pushed refusals:\n{}",
        s.log
    );
    assert_eq!(
        s.committed,
        vec![PER_PARTITION as i64; PARTITIONS as usize],
        "the group holds what was delivered:\n{}",
        s.log
    );
    assert_eq!(s.offset_file, delivered(), "{}", s.log);
    assert!(
        !s.log.contains(FENCED_LINE) && !s.log.contains("did not take the final commit"),
        "{}",
        s.log
    );
}

/// A fenced member stops at once: well inside the bound, where retrying would have spent
/// nine twentieths of it (9 s here) before the close.
fn a_fenced_member_stops_at_once(name: &str, error: &str) {
    let dir = tempfile::tempdir().unwrap();
    // More than one, so that a stop that retries meets it again.
    let s = stop_meeting(
        dir.path(),
        name,
        &[error; 4].join(","),
        STOP_BOUND_MS,
        false,
    );
    assert!(
        s.took < Duration::from_secs(6),
        "the stop took {:?} of its {STOP_BOUND_MS} ms bound:\n{}",
        s.took,
        s.log
    );
    assert_eq!(
        s.log.matches(FENCED_LINE).count(),
        1,
        "one line says why the final commit was given up:\n{}",
        s.log
    );
    assert_eq!(
        s.log.matches("Group commit failed").count(),
        1,
        "the refused commit was not tried again:\n{}",
        s.log
    );
    // Nothing reached the group; the offset file holds what was delivered.
    assert_eq!(s.committed, vec![-1; PARTITIONS as usize], "{}", s.log);
    assert_eq!(s.offset_file, delivered(), "{}", s.log);
}

#[test]
fn a_member_fenced_by_illegal_generation_stops_without_retrying() {
    a_fenced_member_stops_at_once("illegal-generation", "ILLEGAL_GENERATION");
}

#[test]
fn a_member_fenced_by_unknown_member_id_stops_without_retrying() {
    a_fenced_member_stops_at_once("unknown-member", "UNKNOWN_MEMBER_ID");
}

/// The CI case, with a real rebalance: another member joins the group while the stop's
/// final commit is being refused. The stop must serve the consumer so that the member
/// rejoins; its commit then carries the new generation and is taken. (Without polling, the
/// member never rejoins, the group moves on without it and every try is refused until the
/// bound.) The mock cluster waits the joiner's session timeout less one second (5 s) for
/// members to rejoin, and refuses commits meanwhile.
#[test]
fn a_final_commit_during_a_real_rebalance_is_taken_after_the_member_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    // Refusals that hold the final commit until the other member has joined (at 250 ms a
    // try, 2 s); from then on the group itself refuses it until the rebalance completes.
    let s = stop_meeting(
        dir.path(),
        "rejoining",
        &["REBALANCE_IN_PROGRESS"; 8].join(","),
        30_000,
        true,
    );
    assert_eq!(
        s.committed,
        vec![PER_PARTITION as i64; PARTITIONS as usize],
        "the group holds what was delivered:\n{}",
        s.log
    );
    assert!(
        s.log.contains("Partitions assigned during the stop"),
        "the group rebalanced during the stop and the member rejoined it:\n{}",
        s.log
    );
    assert_eq!(s.offset_file, delivered(), "{}", s.log);
    assert!(!s.log.contains(FENCED_LINE), "{}", s.log);
}

/// ILLEGAL_GENERATION met while the member is rejoining (librdkafka has not declared its
/// assignment lost) only means the commit carried the generation the group is leaving:
/// it is tried again after the rejoin, not taken for fencing. (CI: a worker of a rolling
/// restart got it the moment the group settled, gave up, and 50 records were read twice.)
/// Here the group itself answers it: the try sent while the member's JoinGroup waits
/// for the other member is queued behind it on the coordinator's connection and reaches
/// the group after the new generation is made.
#[test]
fn an_illegal_generation_met_while_the_member_rejoins_is_tried_again() {
    let dir = tempfile::tempdir().unwrap();
    // Refusals that hold the final commit until the other member has joined (from then on
    // the group refuses it itself). Two: the first try and the revoke's commit take them
    // whatever the timing, so none is left for the try queued behind the JoinGroup.
    let errors = ["REBALANCE_IN_PROGRESS"; 2].join(",");
    let s = stop_meeting(dir.path(), "regenerating", &errors, 30_000, true);
    assert_eq!(
        s.committed,
        vec![PER_PARTITION as i64; PARTITIONS as usize],
        "the group holds what was delivered:\n{}",
        s.log
    );
    assert!(
        s.log.contains("IllegalGeneration"),
        "the stale-generation answer was met:\n{}",
        s.log
    );
    assert!(!s.log.contains(FENCED_LINE), "{}", s.log);
    assert_eq!(s.offset_file, delivered(), "{}", s.log);
}
