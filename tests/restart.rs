//! `kill -9` of the worker mid-run, then a restart: zero records lost, and duplicates only
//! from the interval that had not been committed when the worker died.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;

const PARTITIONS: i32 = 4;
const PER_PARTITION: usize = 3000;
const WAVES: usize = 30;

#[test]
fn kill_9_and_restart_loses_nothing_and_only_redelivers_the_last_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("k", PARTITIONS);
    let bootstrap = broker.bootstrap.clone();

    // Records trickle in while ferry runs, so the kill lands between commits with records
    // delivered but not yet committed.
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let bootstrap = bootstrap.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let per_wave = PER_PARTITION / WAVES;
            for w in 0..WAVES {
                for p in 0..PARTITIONS {
                    let lines: Vec<String> = (w * per_wave..(w + 1) * per_wave)
                        .map(|n| format!("p{p}-{n}"))
                        .collect();
                    produce_lines(&bootstrap, "k", p, &lines);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let out = dir.path().join("out.txt");
    let worker = worker_props(
        dir.path(),
        &bootstrap,
        &[("offset.flush.interval.ms", "700")],
    );
    let connector = dir.path().join("c.properties");
    write_props(
        &connector,
        &[
            ("name", "crashy"),
            ("connector.class", "FileStreamSink"),
            ("tasks.max", "2"),
            ("topics", "k"),
            ("file", out.to_str().unwrap()),
        ],
    );
    let args = [
        "standalone",
        worker.to_str().unwrap(),
        connector.to_str().unwrap(),
    ];
    let mut first = Ferry::spawn(&ferry_bin(), &args, dir.path(), "first");
    let offsets_path = dir.path().join("connect.offsets");
    let has_commit = || {
        std::fs::read_to_string(&offsets_path)
            .map(|t| t.contains("k"))
            .unwrap_or(false)
    };
    let lines = || {
        std::fs::read_to_string(&out)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(60), || has_commit() && lines() >= 2000),
        "no progress:\n{}",
        first.log()
    );
    std::thread::sleep(Duration::from_millis(350));
    first.signal("KILL");
    let killed = first.wait(Duration::from_secs(10));
    assert!(!killed.success());
    let snapshot = offset_file(&offsets_path)["crashy"].clone();
    let delivered_before = lines();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a killed worker left half a line"
    );

    producer.join().unwrap();
    assert!(done.load(Ordering::SeqCst));
    let mut second = Ferry::spawn(
        &ferry_bin(),
        &["standalone", "--exit-at-end", args[1], args[2]],
        dir.path(),
        "second",
    );
    let status = second.wait(Duration::from_secs(120));
    let log = second.log();
    assert!(status.success(), "{log}");
    assert!(log.contains("resumed_from_file="), "{log}");

    let text = std::fs::read_to_string(&out).unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for l in text.lines() {
        *seen.entry(l.to_string()).or_default() += 1;
    }
    let expected: BTreeSet<String> = (0..PARTITIONS)
        .flat_map(|p| (0..PER_PARTITION).map(move |n| format!("p{p}-{n}")))
        .collect();
    let missing: Vec<&String> = expected.iter().filter(|v| !seen.contains_key(*v)).collect();
    assert!(
        missing.is_empty(),
        "lost {} records, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(
        seen.len(),
        expected.len(),
        "unexpected values in the output"
    );
    let duplicates: Vec<(&String, usize)> = seen
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(v, c)| (v, *c))
        .collect();
    for (value, count) in &duplicates {
        assert_eq!(*count, 2, "{value} delivered {count} times");
        let (p, n) = value[1..].split_once('-').unwrap();
        let committed_at_kill = snapshot.get(&format!("k-{p}")).copied().unwrap_or(0);
        assert!(
            n.parse::<i64>().unwrap() >= committed_at_kill,
            "{value} was committed (k-{p} at {committed_at_kill}) before the kill but delivered again"
        );
    }
    eprintln!(
        "kill -9 test: {delivered_before} lines before the kill, committed {snapshot:?}, {} duplicates after restart, 0 lost",
        duplicates.len()
    );
    assert_eq!(
        committed(&bootstrap, "connect-crashy", "k", PARTITIONS),
        vec![PER_PARTITION as i64; PARTITIONS as usize]
    );
}

#[test]
fn directory_sink_never_leaves_a_partial_file_under_a_final_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("big", 4);
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // 4 partitions × 15 records × 256 KiB: big enough that writes are in flight at the kill,
    // small enough for the mock's 5 MB per-partition retention.
    let record = |p: i32, n: usize| -> Vec<u8> {
        (0..256 * 1024)
            .map(|i| ((i * 7 + n * 13 + p as usize) % 251) as u8)
            .collect()
    };
    for p in 0..4 {
        let files: Vec<_> = (0..15)
            .map(|n| {
                let f = input.join(format!("{p}-{n}"));
                std::fs::write(&f, record(p, n)).unwrap();
                f
            })
            .collect();
        produce_files(&broker.bootstrap, "big", p, &files);
    }
    let out = dir.path().join("out");
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("offset.flush.interval.ms", "200")],
    );
    let connector = dir.path().join("c.properties");
    write_props(
        &connector,
        &[
            ("name", "atomic"),
            ("connector.class", "directory"),
            ("topics", "big"),
            ("directory.path", out.to_str().unwrap()),
        ],
    );
    let args = [
        "standalone",
        worker.to_str().unwrap(),
        connector.to_str().unwrap(),
    ];
    let mut first = Ferry::spawn(&ferry_bin(), &args, dir.path(), "first");
    let count = || {
        walk(&out)
            .iter()
            .filter(|(name, _)| !name.starts_with('.'))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(60), || count() >= 3),
        "{}",
        first.log()
    );
    first.signal("KILL");
    first.wait(Duration::from_secs(10));
    let check_complete = || {
        for (name, path) in walk(&out) {
            if name.starts_with('.') {
                continue; // a temporary file, never counted as delivered
            }
            let rel = path
                .strip_prefix(&out)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let parts: Vec<&str> = rel.split('/').collect();
            let (p, n): (i32, usize) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
            assert_eq!(
                std::fs::read(&path).unwrap(),
                record(p, n),
                "{rel} is not the complete record"
            );
        }
    };
    check_complete();
    let mut second = Ferry::spawn(
        &ferry_bin(),
        &["standalone", "--exit-at-end", args[1], args[2]],
        dir.path(),
        "second",
    );
    assert!(
        second.wait(Duration::from_secs(120)).success(),
        "{}",
        second.log()
    );
    check_complete();
    assert_eq!(count(), 60, "every record is a file after the restart");
}

/// (file name, path) of every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push((e.file_name().to_string_lossy().into_owned(), path));
        }
    }
    out
}

/// Offsets have one owner where several processes share a group: a partition that moves
/// from worker A (offset file A) to worker B and back resumes, on A, from the group's
/// newer position — not from A's stale file — and the group never goes backwards.
#[test]
fn a_partition_that_moves_away_and_back_resumes_from_the_newer_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("moves", 1);
    let bs = broker.bootstrap.clone();
    let lines = |from: usize, to: usize| -> Vec<String> {
        (from..to).map(|n| format!("m-{n:04}")).collect()
    };
    let worker = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let w = worker_props(&d, &bs, &[]);
        let c = d.join("c.properties");
        write_props(
            &c,
            &[
                ("name", "shared"),
                ("connector.class", "FileStreamSink"),
                ("topics", "moves"),
                ("file", d.join("out.txt").to_str().unwrap()),
            ],
        );
        (d, w, c)
    };
    let run = |(d, w, c): &(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)| {
        let mut ferry = Ferry::spawn(
            &ferry_bin(),
            &[
                "standalone",
                "--exit-at-end",
                w.to_str().unwrap(),
                c.to_str().unwrap(),
            ],
            d,
            "ferry",
        );
        let status = ferry.wait(Duration::from_secs(120));
        assert!(status.success(), "{}", ferry.log());
        ferry.log()
    };
    let a = worker("a");
    let b = worker("b");

    produce_lines(&bs, "moves", 0, &lines(0, 100));
    run(&a);
    assert_eq!(lines_of(&a.0.join("out.txt")), lines(0, 100));
    // The partition moves to B, which delivers the next 100 (its own file is empty, so it
    // resumes from the group).
    produce_lines(&bs, "moves", 0, &lines(100, 200));
    run(&b);
    assert_eq!(lines_of(&b.0.join("out.txt")), lines(100, 200));
    assert_eq!(committed(&bs, "connect-shared", "moves", 1), vec![200]);
    // Back to A, whose file still says 100.
    produce_lines(&bs, "moves", 0, &lines(200, 250));
    let log = run(&a);
    assert_eq!(
        lines_of(&a.0.join("out.txt")),
        [lines(0, 100), lines(200, 250)].concat(),
        "A resumed from the group's 200, not its file's 100:\n{log}"
    );
    assert!(
        log.contains("The group's committed offset is ahead of the offset file"),
        "{log}"
    );
    assert_eq!(committed(&bs, "connect-shared", "moves", 1), vec![250]);
    assert_eq!(
        offset_file(&a.0.join("connect.offsets"))["shared"]["moves-0"],
        250
    );
}
