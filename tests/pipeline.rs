//! End to end against a mock Kafka cluster in its own process, with data produced by kcat:
//! records arrive byte for byte, offsets are committed to the file and the group, and the
//! runtime behaves as Kafka Connect's does around it.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;

const GENEROUS: Duration = Duration::from_secs(90);

fn file_connector(
    dir: &Path,
    name: &str,
    topics: &str,
    out: &Path,
    extra: &[(&str, &str)],
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.properties"));
    let mut pairs = vec![
        ("name", name),
        (
            "connector.class",
            "org.apache.kafka.connect.file.FileStreamSinkConnector",
        ),
        ("tasks.max", "1"),
        ("topics", topics),
        ("file", out.to_str().unwrap()),
    ];
    pairs.extend_from_slice(extra);
    write_props(&path, &pairs);
    path
}

#[test]
fn file_sink_delivers_every_record_and_commits_to_file_and_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("lines", 3);
    for p in 0..3 {
        produce_lines(&broker.bootstrap, "lines", p, &numbered(p, 400));
    }
    let out = dir.path().join("out.txt");
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let connector = file_connector(
        dir.path(),
        "lines-to-file",
        "lines",
        &out,
        &[("tasks.max", "2")],
    );
    let log = run_to_end(dir.path(), &[], &worker, &[&connector], GENEROUS);

    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let expected: BTreeSet<String> = (0..3).flat_map(|p| numbered(p, 400)).collect();
    let got: BTreeSet<String> = lines.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, expected, "every record, nothing else");
    assert_eq!(lines.len(), 1200, "no duplicates in a clean run");
    // Per partition, records keep their order.
    for p in 0..3 {
        let seq: Vec<usize> = lines
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("p{p}-")))
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(
            seq.windows(2).all(|w| w[0] < w[1]),
            "partition {p} out of order"
        );
    }

    let offsets = offset_file(&dir.path().join("connect.offsets"));
    for p in 0..3 {
        assert_eq!(
            offsets["lines-to-file"][&format!("lines-{p}")],
            400,
            "{offsets:?}"
        );
    }
    assert_eq!(
        committed(&broker.bootstrap, "connect-lines-to-file", "lines", 3),
        vec![400, 400, 400]
    );
    assert!(log.contains("Committing offsets."), "{log}");
    assert!(
        log.contains("ferry stopped.") && !log.contains("panicked"),
        "{log}"
    );
}

#[test]
fn directory_sink_writes_exact_bytes_including_binary_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("blobs", 2);
    // Binary payloads with every byte value, NULs and newlines, one message per file.
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut files = [vec![], vec![]];
    for i in 0..40u32 {
        let bytes: Vec<u8> = (0..(1000 + i * 97))
            .map(|j| (j.wrapping_mul(31).wrapping_add(i)) as u8)
            .collect();
        let f = input.join(format!("blob-{i}"));
        std::fs::write(&f, &bytes).unwrap();
        files[(i % 2) as usize].push(f);
    }
    for (p, fs) in files.iter().enumerate() {
        produce_files(&broker.bootstrap, "blobs", p as i32, fs);
    }
    let out = dir.path().join("out");
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let connector = dir.path().join("dir.properties");
    write_props(
        &connector,
        &[
            ("name", "blobs"),
            ("connector.class", "directory"),
            ("topics", "blobs"),
            ("directory.path", out.to_str().unwrap()),
        ],
    );
    run_to_end(dir.path(), &[], &worker, &[&connector], GENEROUS);
    for (p, fs) in files.iter().enumerate() {
        for (offset, f) in fs.iter().enumerate() {
            let written = std::fs::read(out.join(format!("blobs/{p}/{offset}"))).unwrap();
            assert_eq!(written, std::fs::read(f).unwrap(), "blobs/{p}/{offset}");
        }
        assert_eq!(
            std::fs::read_dir(out.join(format!("blobs/{p}")))
                .unwrap()
                .count(),
            fs.len(),
            "no stray or temporary files"
        );
    }
}

#[test]
fn connect_standalone_is_a_drop_in_with_kafka_connect_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("connect-test", 1);
    produce_lines(&broker.bootstrap, "connect-test", 0, &numbered(0, 50));
    // Kafka's own example files, as shipped in config/ of the Kafka distribution, with the
    // paths and the JSON converter (not supported yet) adapted.
    let out = dir.path().join("test.sink.txt");
    let worker = dir.path().join("connect-standalone.properties");
    // The REST listener on a free loopback port rather than Kafka's HTTP://:8083 (every
    // interface, and a port another run may hold).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(&worker, format!(
        "bootstrap.servers={}\nkey.converter=org.apache.kafka.connect.storage.StringConverter\nvalue.converter=org.apache.kafka.connect.storage.StringConverter\nkey.converter.schemas.enable=true\nvalue.converter.schemas.enable=true\noffset.storage.file.filename={}\noffset.flush.interval.ms=10000\nplugin.path=/usr/share/java\nlisteners=HTTP://127.0.0.1:{port}\n",
        broker.bootstrap,
        dir.path().join("connect.offsets").display()
    )).unwrap();
    let connector = dir.path().join("connect-file-sink.properties");
    std::fs::write(&connector, format!(
        "name=local-file-sink\nconnector.class=FileStreamSink\ntasks.max=1\nfile={}\ntopics=connect-test\n",
        out.display()
    )).unwrap();
    let mut ferry = Ferry::spawn(
        &connect_standalone_bin(),
        &[
            "--exit-at-end",
            worker.to_str().unwrap(),
            connector.to_str().unwrap(),
        ],
        dir.path(),
        "cs",
    );
    let status = ferry.wait(GENEROUS);
    let log = ferry.log();
    assert!(status.success(), "{log}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        numbered(0, 50).join("\n") + "\n"
    );
    assert!(log.contains("plugin.path: ignored"), "{log}");
    assert_eq!(
        committed(
            &broker.bootstrap,
            "connect-local-file-sink",
            "connect-test",
            1
        ),
        vec![50]
    );
}

#[test]
fn topics_regex_picks_up_topics_created_later_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("ztf_20260101_programid1", 1);
    broker.create_topic("other", 1);
    produce_lines(
        &broker.bootstrap,
        "ztf_20260101_programid1",
        0,
        &numbered(0, 10),
    );
    produce_lines(&broker.bootstrap, "other", 0, &["not-for-us".to_string()]);
    let out = dir.path().join("out.txt");
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("consumer.metadata.max.age.ms", "500")],
    );
    let connector = dir.path().join("regex.properties");
    write_props(
        &connector,
        &[
            ("name", "nightly"),
            ("connector.class", "FileStreamSink"),
            ("topics.regex", "ztf_\\\\d{8}_programid1"),
            ("file", out.to_str().unwrap()),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&connector]);
    let lines = |n: usize| {
        std::fs::read_to_string(&out)
            .map(|t| t.lines().count() >= n)
            .unwrap_or(false)
    };
    assert!(
        wait_until(Duration::from_secs(60), || lines(10)),
        "first night never arrived:\n{}",
        ferry.log()
    );
    // The next night's topic appears while ferry runs.
    broker.create_topic("ztf_20260102_programid1", 2);
    produce_lines(
        &broker.bootstrap,
        "ztf_20260102_programid1",
        0,
        &numbered(0, 5),
    );
    produce_lines(
        &broker.bootstrap,
        "ztf_20260102_programid1",
        1,
        &numbered(1, 5),
    );
    assert!(
        wait_until(Duration::from_secs(60), || lines(20)),
        "new topic not picked up:\n{}",
        ferry.log()
    );
    ferry.signal("TERM");
    let status = ferry.wait(Duration::from_secs(30));
    assert!(status.success(), "{}", ferry.log());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        !text.contains("not-for-us"),
        "a non-matching topic was read"
    );
    assert_eq!(text.lines().count(), 20);
    assert!(ferry.log().contains("Topics matching topics.regex changed"));
}

#[test]
fn sigterm_drains_commits_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("t", 1);
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 300));
    let out = dir.path().join("out.txt");
    // A flush interval far longer than the test: only the shutdown commit can record the
    // offsets.
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("offset.flush.interval.ms", "3600000")],
    );
    let connector = file_connector(dir.path(), "drain", "t", &out, &[]);
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&connector]);
    assert!(
        wait_until(GENEROUS, || std::fs::read_to_string(&out)
            .map(|t| t.lines().count() == 300)
            .unwrap_or(false)),
        "{}",
        ferry.log()
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-drain", "t", 1),
        vec![-1],
        "nothing committed before the signal"
    );
    ferry.signal("TERM");
    let status = ferry.wait(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", ferry.log());
    assert_eq!(
        committed(&broker.bootstrap, "connect-drain", "t", 1),
        vec![300]
    );
    assert_eq!(
        offset_file(&dir.path().join("connect.offsets"))["drain"]["t-0"],
        300
    );
    assert!(
        ferry.log().contains("Terminated; draining"),
        "{}",
        ferry.log()
    );
}

#[test]
fn a_failing_connector_is_marked_failed_while_the_other_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("t", 1);
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 20));
    let good_out = dir.path().join("good.txt");
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let good = file_connector(dir.path(), "good", "t", &good_out, &[]);
    // Its file cannot be opened: the task fails at start.
    let bad = file_connector(
        dir.path(),
        "bad",
        "t",
        Path::new("/nonexistent-dir/out.txt"),
        &[],
    );
    // The worker keeps running (and exits 0) while one connector works.
    let log = run_to_end(dir.path(), &[], &worker, &[&good, &bad], GENEROUS);
    assert_eq!(
        std::fs::read_to_string(&good_out).unwrap().lines().count(),
        20
    );
    let error = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("connector=bad"))
        .expect("an ERROR line for the failed connector");
    assert!(error.contains("/nonexistent-dir/out.txt"), "{error}");
    assert_eq!(
        committed(&broker.bootstrap, "connect-bad", "t", 1),
        vec![-1],
        "the failed connector committed nothing"
    );
}

#[test]
fn json_log_format_emits_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("t", 1);
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 5));
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let connector = file_connector(dir.path(), "json", "t", &dir.path().join("o.txt"), &[]);
    let log = run_to_end(
        dir.path(),
        &["--log-format", "json"],
        &worker,
        &[&connector],
        GENEROUS,
    );
    let mut messages = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        messages.push(v["message"].as_str().unwrap_or_default().to_string());
    }
    assert!(
        messages.iter().any(|m| m == "Committing offsets."),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m == "Connector stopped."),
        "{messages:?}"
    );
}

#[test]
fn periodic_commits_reach_the_group_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("t", 2);
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 30));
    produce_lines(&broker.bootstrap, "t", 1, &numbered(1, 20));
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("offset.flush.interval.ms", "200")],
    );
    let connector = file_connector(dir.path(), "periodic", "t", &dir.path().join("o.txt"), &[]);
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&connector]);
    let committed_now = || committed(&broker.bootstrap, "connect-periodic", "t", 2) == vec![30, 20];
    assert!(
        wait_until(Duration::from_secs(30), committed_now),
        "{}",
        ferry.log()
    );
    // The status line reports the commit.
    assert!(
        wait_until(Duration::from_secs(10), || ferry
            .log()
            .lines()
            .any(|l| l.contains("Connector status.") && l.contains("s ago"))),
        "{}",
        ferry.log()
    );
    ferry.signal("TERM");
    assert!(ferry.wait(Duration::from_secs(30)).success());
}
