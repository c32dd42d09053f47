//! Broker faults injected through the mock cluster: brokers going down and coming back,
//! and request errors. Records are delayed, never lost.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

fn expected(partitions: i32, per: usize) -> BTreeSet<String> {
    (0..partitions).flat_map(|p| numbered(p, per)).collect()
}

#[test]
fn brokers_down_and_up_mid_run_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(3, 300);
    broker.create_topic("f", 6);
    for p in 0..6 {
        produce_lines(&broker.bootstrap, "f", p, &numbered(p, 500));
    }
    let out = dir.path().join("out.txt");
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[
            ("offset.flush.interval.ms", "300"),
            ("consumer.debug", "cgrp"),
        ],
    );
    let connector = dir.path().join("c.properties");
    write_props(
        &connector,
        &[
            ("name", "faulty"),
            ("connector.class", "FileStreamSink"),
            ("tasks.max", "2"),
            ("topics", "f"),
            ("file", out.to_str().unwrap()),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&connector]);
    assert!(
        wait_until(Duration::from_secs(60), || lines_of(&out).len() >= 3000),
        "{}",
        ferry.log()
    );

    // Two brokers (partition leaders and possibly the group coordinator) go away while more
    // data is waiting on them.
    broker.command("down 2").unwrap();
    broker.command("down 3").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    broker.command("up 2").unwrap();
    broker.command("up 3").unwrap();
    for p in 0..6 {
        let more: Vec<String> = (500..800).map(|n| format!("p{p}-{n}")).collect();
        produce_lines(&broker.bootstrap, "f", p, &more);
    }
    broker.command("down 1").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    broker.command("up 1").unwrap();

    let want = expected(6, 800);
    let complete = || lines_of(&out).into_iter().collect::<BTreeSet<_>>() == want;
    assert!(
        wait_until(Duration::from_secs(90), complete),
        "records missing after the brokers came back:\n{}",
        ferry.log()
    );
    ferry.signal("TERM");
    assert!(
        ferry.wait(Duration::from_secs(60)).success(),
        "{}",
        ferry.log()
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-faulty", "f", 6),
        vec![800; 6],
        "{}",
        ferry.log()
    );
}

#[test]
fn injected_request_errors_delay_but_never_lose_or_skip_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("e", 3);
    for p in 0..3 {
        produce_lines(&broker.bootstrap, "e", p, &numbered(p, 1000));
    }
    // Fetches fail a few times, and the first commits are refused.
    broker.command("errors Fetch NOT_LEADER_FOR_PARTITION,REQUEST_TIMED_OUT,NETWORK_EXCEPTION,NOT_LEADER_FOR_PARTITION").unwrap();
    broker.command("errors OffsetCommit COORDINATOR_NOT_AVAILABLE,REBALANCE_IN_PROGRESS,REQUEST_TIMED_OUT,REBALANCE_IN_PROGRESS").unwrap();
    let out = dir.path().join("out.txt");
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("offset.flush.interval.ms", "200")],
    );
    let connector = dir.path().join("c.properties");
    write_props(
        &connector,
        &[
            ("name", "errs"),
            ("connector.class", "FileStreamSink"),
            ("topics", "e"),
            ("file", out.to_str().unwrap()),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&connector]);
    let want = expected(3, 1000);
    let complete = || lines_of(&out).into_iter().collect::<BTreeSet<_>>() == want;
    assert!(
        wait_until(Duration::from_secs(60), complete),
        "{}",
        ferry.log()
    );
    // A refused commit is retried at the next flush: the group catches up while running.
    assert!(
        wait_until(Duration::from_secs(30), || committed(
            &broker.bootstrap,
            "connect-errs",
            "e",
            3
        ) == vec![1000; 3]),
        "{}",
        ferry.log()
    );
    ferry.signal("TERM");
    assert!(
        ferry.wait(Duration::from_secs(30)).success(),
        "{}",
        ferry.log()
    );
    assert_eq!(
        lines_of(&out).len(),
        3000,
        "no duplicates either: nothing was redelivered"
    );
    assert!(
        ferry.log().contains("Group commit failed"),
        "the injected commit errors were hit:\n{}",
        ferry.log()
    );
}
