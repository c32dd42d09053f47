//! Runtime defects found by adversarial runs (issue 11 items 1, 2, 4, 5, 6; issue 10 item 5),
//! each against a mock cluster in its own process, with kcat producing and ferry as a child
//! process: a full disk mid-batch, `--exit-at-end` with a sink that cannot write, an absurd
//! `tasks.max`, two workers on one offset file, SIGHUP, and a start that cannot reach the
//! brokers.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::emulator::skip;
use common::*;

/// A file connector writing to `out`.
fn file_connector(
    dir: &Path,
    name: &str,
    topic: &str,
    out: &str,
    extra: &[(&str, &str)],
) -> PathBuf {
    let path = dir.join(format!("{name}.properties"));
    let mut pairs = vec![
        ("name", name),
        ("connector.class", "FileStreamSink"),
        ("topics", topic),
        ("file", out),
    ];
    pairs.extend_from_slice(extra);
    write_props(&path, &pairs);
    path
}

/// Lines `p<partition>-<n>-` padded to about 120 bytes, so that batches are large enough
/// to be cut by a full disk.
fn padded(partition: i32, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| format!("p{partition}-{n:06}-{}", "x".repeat(108)))
        .collect()
}

/// How often each line occurs.
fn counts(lines: &[String]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for l in lines {
        *seen.entry(l.clone()).or_insert(0) += 1;
    }
    seen
}

/// A tmpfs mounted for the test, unmounted when dropped (also when the test fails).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax) on `dir`; Err says why it cannot.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("mounting a tmpfs needs root".into());
        }
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success(), "remounting the tmpfs failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process that outlived the test): detach it now, freed later.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

#[test]
fn a_disk_that_fills_mid_batch_leaves_no_torn_line_and_no_duplicate() {
    const TEST: &str = "defects::a_disk_that_fills_mid_batch_leaves_no_torn_line_and_no_duplicate";
    let dir = tempfile::tempdir().unwrap();
    // 64 KiB hold about 540 of the 4 500 lines: the disk fills inside a batch.
    let disk = match Tmpfs::mount(&dir.path().join("disk"), "64k") {
        Ok(m) => m,
        Err(reason) => return skip(TEST, &reason),
    };
    let mut broker = Broker::start(1, 0);
    broker.create_topic("full", 3);
    let per = 1500;
    for p in 0..3 {
        produce_lines(&broker.bootstrap, "full", p, &padded(p, per));
    }
    let out = disk.dir.join("out.txt");
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let connector = file_connector(
        dir.path(),
        "filling",
        "full",
        out.to_str().unwrap(),
        // Two tasks append to the one file; retries come quickly.
        &[("tasks.max", "2"), ("errors.retry.delay.max.ms", "400")],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&connector]);
    let retries = |log: &str| log.matches("Sink could not take the batch").count();
    assert!(
        wait_until(Duration::from_secs(60), || retries(&ferry.log()) >= 3),
        "the disk never filled:\n{}",
        ferry.log()
    );
    let on_full_disk = lines_of(&out).len();
    assert!(on_full_disk < 3 * per, "{on_full_disk} lines fit");
    disk.resize("16m");

    let expected: Vec<String> = (0..3).flat_map(|p| padded(p, per)).collect();
    let complete = || {
        let seen = counts(&lines_of(&out));
        expected.iter().all(|l| seen.contains_key(l))
    };
    assert!(
        wait_until(Duration::from_secs(90), complete),
        "records missing after the disk grew:\n{}",
        ferry.log()
    );
    ferry.signal("TERM");
    assert!(
        ferry.wait(Duration::from_secs(30)).success(),
        "{}",
        ferry.log()
    );

    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with('\n'), "the file ends in a partial line");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let expected_set: std::collections::BTreeSet<&String> = expected.iter().collect();
    let torn: Vec<&String> = lines.iter().filter(|l| !expected_set.contains(l)).collect();
    assert!(
        torn.is_empty(),
        "{} torn or foreign lines, e.g. {:?}",
        torn.len(),
        &torn[..torn.len().min(3)]
    );
    let seen = counts(&lines);
    let duplicated: Vec<(&String, &usize)> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        duplicated.is_empty(),
        "{} records written more than once, e.g. {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(3)]
    );
    assert_eq!(lines.len(), 3 * per, "every record exactly once");
    for p in 0..3 {
        let order: Vec<usize> = lines
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("p{p}-")))
            .map(|rest| rest[..6].parse().unwrap())
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "partition {p} out of order"
        );
    }
    eprintln!(
        "full disk: {on_full_disk} lines fitted before the disk grew, {} retries, every record once",
        retries(&ferry.log())
    );
    drop(ferry);
    drop(disk);
}

#[test]
fn exit_at_end_with_the_directory_sink_on_a_full_disk_waits_for_space_then_ends() {
    const TEST: &str =
        "defects::exit_at_end_with_the_directory_sink_on_a_full_disk_waits_for_space_then_ends";
    let dir = tempfile::tempdir().unwrap();
    let disk = match Tmpfs::mount(&dir.path().join("disk"), "64k") {
        Ok(m) => m,
        Err(reason) => return skip(TEST, &reason),
    };
    let mut broker = Broker::start(1, 0);
    broker.create_topic("files", 2);
    // 2 × 40 records of 4 KiB: the first 16 or so fill the disk.
    let record = |p: i32, n: usize| format!("p{p}-{n:03}-{}", "y".repeat(4090));
    for p in 0..2 {
        let lines: Vec<String> = (0..40).map(|n| record(p, n)).collect();
        produce_lines(&broker.bootstrap, "files", p, &lines);
    }
    let out = disk.dir.join("out");
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let connector = dir.path().join("dir.properties");
    write_props(
        &connector,
        &[
            ("name", "to-full-disk"),
            ("connector.class", "directory"),
            ("topics", "files"),
            ("directory.path", out.to_str().unwrap()),
            ("errors.retry.delay.max.ms", "400"),
        ],
    );
    let args = [
        "standalone",
        "--exit-at-end",
        worker.to_str().unwrap(),
        connector.to_str().unwrap(),
    ];
    let mut ferry = Ferry::spawn(&ferry_bin(), &args, dir.path(), "ferry");
    let exited = wait_until(Duration::from_secs(6), || {
        matches!(ferry.child.try_wait(), Ok(Some(_)))
    });
    assert!(
        !exited,
        "ferry exited while the disk was full:\n{}",
        ferry.log()
    );
    assert!(
        ferry.log().contains("No space left on device"),
        "{}",
        ferry.log()
    );
    disk.resize("16m");
    let status = ferry.wait(Duration::from_secs(60));
    let log = ferry.log();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("every record read is committed; stopping"),
        "{log}"
    );
    for p in 0..2 {
        for n in 0..40 {
            let file = out.join(format!("files/{p}/{n}"));
            assert_eq!(
                std::fs::read_to_string(&file).unwrap_or_default(),
                record(p, n),
                "{}",
                file.display()
            );
        }
        let names: Vec<String> = std::fs::read_dir(out.join(format!("files/{p}")))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 40, "no temporary file left: {names:?}");
    }
    assert_eq!(
        committed(&broker.bootstrap, "connect-to-full-disk", "files", 2),
        vec![40, 40]
    );
    drop(ferry);
    drop(disk);
}

#[test]
fn exit_at_end_waits_while_the_sink_fails_and_a_stop_then_names_the_undelivered_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("stuck", 2);
    for p in 0..2 {
        produce_lines(&broker.bootstrap, "stuck", p, &numbered(p, 100));
    }
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    // Every write to /dev/full fails with "No space left on device".
    let full = file_connector(
        dir.path(),
        "to-dev-full",
        "stuck",
        "/dev/full",
        &[("errors.retry.delay.max.ms", "500")],
    );
    let args = [
        "standalone",
        "--exit-at-end",
        worker.to_str().unwrap(),
        full.to_str().unwrap(),
    ];
    let mut ferry = Ferry::spawn(&ferry_bin(), &args, dir.path(), "stuck");
    // Everything is read within a second or two; ferry must keep trying, not declare the end.
    let exited = wait_until(Duration::from_secs(8), || {
        matches!(ferry.child.try_wait(), Ok(Some(_)))
    });
    let log = ferry.log();
    assert!(
        !exited,
        "ferry exited while no record was delivered:\n{log}"
    );
    assert!(log.contains("Sink could not take the batch"), "{log}");
    // The status line shows what ferry waits for.
    let status = log
        .lines()
        .rev()
        .find(|l| l.contains("Connector status."))
        .unwrap_or_default();
    assert!(
        status.contains("undelivered=") && status.contains("stuck-0") && status.contains("stuck-1"),
        "{status}"
    );

    ferry.signal("TERM");
    let stopped = ferry.wait(Duration::from_secs(30));
    let log = ferry.log();
    assert!(
        !stopped.success(),
        "a stop with undelivered records exited 0:\n{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("stopped before every record read was delivered and committed"))
        .unwrap_or_else(|| panic!("no line names the undelivered partitions:\n{log}"));
    assert!(
        line.starts_with("ferry: error: ")
            && line.contains("connector to-dev-full: stuck-0 (nothing committed, read up to 100)")
            && line.contains("stuck-1 (nothing committed, read up to 100)"),
        "{line}"
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-to-dev-full", "stuck", 2),
        vec![-1, -1],
        "nothing was delivered, so nothing is committed"
    );

    // The same records to a writable file: the end is reached, everything committed, exit 0.
    let out = dir.path().join("out.txt");
    let good = file_connector(dir.path(), "to-file", "stuck", out.to_str().unwrap(), &[]);
    let log = run_to_end(dir.path(), &[], &worker, &[&good], Duration::from_secs(60));
    assert!(
        log.contains("every record read is committed; stopping (--exit-at-end)"),
        "{log}"
    );
    assert_eq!(lines_of(&out).len(), 200);
    assert_eq!(
        committed(&broker.bootstrap, "connect-to-file", "stuck", 2),
        vec![100, 100]
    );
    let offsets = offset_file(&dir.path().join("connect.offsets"));
    assert_eq!(offsets["to-file"]["stuck-0"], 100, "{offsets:?}");
    assert!(!offsets.contains_key("to-dev-full"), "{offsets:?}");
}

#[test]
fn a_tasks_max_far_beyond_the_partitions_starts_only_the_tasks_the_partitions_need() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("few", 4);
    for p in 0..4 {
        produce_lines(&broker.bootstrap, "few", p, &numbered(p, 200));
    }
    let out = dir.path().join("out.txt");
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let connector = file_connector(
        dir.path(),
        "many-tasks",
        "few",
        out.to_str().unwrap(),
        &[("tasks.max", "100000")],
    );
    // Under an ordinary descriptor limit, whatever this machine's is.
    let script = "ulimit -n 1024 && exec \"$0\" \"$@\"";
    let ferry_path = ferry_bin();
    let mut ferry = Ferry::spawn(
        Path::new("sh"),
        &[
            "-c",
            script,
            ferry_path.to_str().unwrap(),
            "standalone",
            "--exit-at-end",
            worker.to_str().unwrap(),
            connector.to_str().unwrap(),
        ],
        dir.path(),
        "ferry",
    );
    let status = ferry.wait(Duration::from_secs(60));
    let log = ferry.log();
    assert!(status.success(), "{log}");
    assert_eq!(lines_of(&out).len(), 800, "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(!log.contains("Task failed to start"), "{log}");
    assert_eq!(
        log.matches("tasks.max is more than the assigned partitions")
            .count(),
        1,
        "one warning:\n{log}"
    );
    let stopped = log
        .lines()
        .find(|l| l.contains("Connector stopped."))
        .unwrap_or_default();
    assert!(stopped.contains(" tasks=4 "), "{stopped}");
    assert!(
        log.lines().count() < 200,
        "the log is flooded: {} lines",
        log.lines().count()
    );
}

#[test]
fn a_second_worker_on_the_same_offset_file_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("shared", 2);
    for p in 0..2 {
        produce_lines(&broker.bootstrap, "shared", p, &numbered(p, 100));
    }
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let out_a = dir.path().join("a.txt");
    let a = file_connector(dir.path(), "a", "shared", out_a.to_str().unwrap(), &[]);
    let b = file_connector(
        dir.path(),
        "b",
        "shared",
        dir.path().join("b.txt").to_str().unwrap(),
        &[],
    );
    let args = |c: &Path| {
        vec![
            "standalone".to_string(),
            worker.to_str().unwrap().to_string(),
            c.to_str().unwrap().to_string(),
        ]
    };
    let args_a = args(&a);
    let args_a: Vec<&str> = args_a.iter().map(String::as_str).collect();
    let mut first = Ferry::spawn(&ferry_bin(), &args_a, dir.path(), "first");
    assert!(
        wait_until(Duration::from_secs(60), || lines_of(&out_a).len() == 200),
        "{}",
        first.log()
    );
    let args_b = args(&b);
    let args_b: Vec<&str> = args_b.iter().map(String::as_str).collect();
    let mut second = Ferry::spawn(&ferry_bin(), &args_b, dir.path(), "second");
    let status = second.wait(Duration::from_secs(30));
    let log = second.log();
    assert_eq!(status.code(), Some(1), "{log}");
    let offsets = dir.path().join("connect.offsets");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one line:\n{log}");
    assert!(
        errors[0].contains(&format!(
            "{}: the offset file is in use by another process (pid {}",
            offsets.display(),
            first.child.id()
        )),
        "{}",
        errors[0]
    );
    assert!(
        !dir.path().join("b.txt").exists(),
        "the second worker wrote nothing"
    );

    // The first one runs on, undisturbed, and its offsets are its own.
    assert!(
        matches!(first.child.try_wait(), Ok(None)),
        "{}",
        first.log()
    );
    for p in 0..2 {
        let more: Vec<String> = (100..150).map(|n| format!("p{p}-{n}")).collect();
        produce_lines(&broker.bootstrap, "shared", p, &more);
    }
    assert!(
        wait_until(Duration::from_secs(30), || lines_of(&out_a).len() == 300),
        "{}",
        first.log()
    );
    first.signal("TERM");
    assert!(
        first.wait(Duration::from_secs(30)).success(),
        "{}",
        first.log()
    );
    let stored = offset_file(&offsets);
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        vec!["a"],
        "only the first worker's connector: {stored:?}"
    );
    assert_eq!(stored["a"]["shared-0"], 150);
    assert!(
        !dir.path().join("connect.offsets.lock").exists(),
        "the lock file goes with the worker"
    );
}

#[test]
fn sighup_drains_commits_and_exits_0_like_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("hup", 3);
    for p in 0..3 {
        produce_lines(&broker.bootstrap, "hup", p, &numbered(p, 300));
    }
    let out = dir.path().join("out.txt");
    // No interval commit during the test: whatever is committed, the stop committed.
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("offset.flush.interval.ms", "600000")],
    );
    let connector = file_connector(dir.path(), "hangup", "hup", out.to_str().unwrap(), &[]);
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&connector]);
    assert!(
        wait_until(Duration::from_secs(60), || lines_of(&out).len() == 900),
        "{}",
        ferry.log()
    );
    ferry.signal("HUP");
    let status = ferry.wait(Duration::from_secs(30));
    let log = ferry.log();
    assert!(
        status.success(),
        "SIGHUP ended ferry with {status:?}:\n{log}"
    );
    assert!(
        log.contains("Hung up (SIGHUP); draining and committing"),
        "{log}"
    );
    let offsets = offset_file(&dir.path().join("connect.offsets"));
    for p in 0..3 {
        assert_eq!(offsets["hangup"][&format!("hup-{p}")], 300, "{offsets:?}");
    }
    assert_eq!(
        committed(&broker.bootstrap, "connect-hangup", "hup", 3),
        vec![300; 3]
    );
}

#[test]
fn a_start_that_cannot_reach_the_brokers_leaves_nothing_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = dir.path().join("state");
    let offsets = state.join("connect.offsets");
    let worker = dir.path().join("worker.properties");
    write_props(
        &worker,
        &[
            ("bootstrap.servers", &format!("127.0.0.1:{port}")),
            (
                "key.converter",
                "org.apache.kafka.connect.converters.ByteArrayConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.converters.ByteArrayConverter",
            ),
            ("offset.storage.file.filename", offsets.to_str().unwrap()),
        ],
    );
    let connector = file_connector(
        dir.path(),
        "unreachable",
        "t",
        dir.path().join("out.txt").to_str().unwrap(),
        &[],
    );
    let mut ferry = Ferry::spawn(
        &ferry_bin(),
        &[
            "standalone",
            "--broker-timeout",
            "2",
            worker.to_str().unwrap(),
            connector.to_str().unwrap(),
        ],
        dir.path(),
        "ferry",
    );
    let status = ferry.wait(Duration::from_secs(30));
    let log = ferry.log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("cannot reach the Kafka brokers"), "{log}");
    assert!(!offsets.exists(), "an offset file was created:\n{log}");
    assert!(
        !state.exists(),
        "the failed start left {:?}",
        std::fs::read_dir(&state).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
}
