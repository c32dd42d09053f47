//! The runtime's Kafka producer and the dead-letter queue, against the mock cluster
//! (`ferry-mock-broker`, its own process) with kcat as the independent reader.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::crabka;
use common::*;
use ferry::config::WorkerConfig;
use ferry::config::providers::SystemEnvironment;
use ferry::producer::Producers;
use ferry_connector_api::{Header, ProducerFactory, ProducerRecord};

/// Every message of a topic as kcat prints it: `key|value|headers|timestamp` (`NULL` for a
/// null key), one per line.
fn kcat_read(bootstrap: &str, topic: &str, expected: usize) -> Vec<String> {
    let args = ["-Z", "-f", "%k|%s|%h|%T\\n"];
    let got = kcat_read_until(bootstrap, topic, expected, Duration::from_secs(30), &args);
    assert!(
        got.len() >= expected,
        "kcat read {} of {expected} messages: {got:?}",
        got.len()
    );
    got
}

fn worker(dir: &Path, bootstrap: &str, extra: &[(&str, &str)]) -> WorkerConfig {
    let path = worker_props(dir, bootstrap, extra);
    WorkerConfig::load(&path, &SystemEnvironment).expect("worker file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_producer_writes_key_value_headers_and_timestamp_that_kcat_reads_back() {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("replies", 1);
    let dir = tempfile::tempdir().unwrap();
    let w = worker(
        dir.path(),
        &broker.bootstrap,
        &[("producer.linger.ms", "5")],
    );
    let producers = Producers::new(
        "c",
        ferry::config::dlq::producer_layers(&w, &BTreeMap::new()),
    );
    let overrides = BTreeMap::from([("compression.type".to_string(), "gzip".to_string())]);
    let p = producers.producer(&overrides, "test reporter.*").unwrap();
    let again = producers.producer(&overrides, "test reporter.*").unwrap();
    assert!(
        std::ptr::addr_eq(Arc::as_ptr(&p), Arc::as_ptr(&again)),
        "equal settings share one client"
    );
    p.send(ProducerRecord {
        topic: "replies".into(),
        key: Some(Bytes::from_static(b"k1")),
        value: Some(Bytes::from_static(b"v1")),
        headers: vec![
            Header {
                key: "h1".into(),
                value: Some(Bytes::from_static(b"x")),
            },
            Header {
                key: "h2".into(),
                value: Some(Bytes::from_static(b"y")),
            },
        ],
        timestamp: Some(1_600_000_000_123),
    })
    .await
    .unwrap();
    p.send(ProducerRecord {
        topic: "replies".into(),
        key: None,
        value: Some(Bytes::from_static(b"v2")),
        headers: vec![],
        timestamp: Some(1_600_000_000_456),
    })
    .await
    .unwrap();
    let got = kcat_read(&broker.bootstrap, "replies", 2);
    assert_eq!(
        got,
        vec![
            "k1|v1|h1=x,h2=y|1600000000123".to_string(),
            "NULL|v2||1600000000456".to_string()
        ]
    );
    producers.close(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_producer_setting_is_one_line_naming_its_key_and_origin() {
    let dir = tempfile::tempdir().unwrap();
    let w = worker(dir.path(), "127.0.0.1:9", &[("producer.acks", "banana")]);
    let producers = Producers::new(
        "c",
        ferry::config::dlq::producer_layers(&w, &BTreeMap::new()),
    );
    let err = producers
        .producer(&BTreeMap::new(), "test")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("worker.properties:")
            && err.contains("producer.acks: librdkafka rejects `banana` for acks"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
    let w = worker(dir.path(), "127.0.0.1:9", &[]);
    let producers = Producers::new(
        "c",
        ferry::config::dlq::producer_layers(&w, &BTreeMap::new()),
    );
    let overrides = BTreeMap::from([("linger.ms".to_string(), "-3".to_string())]);
    let err = producers
        .producer(&overrides, "sink.properties reporter.*")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "sink.properties reporter.* linger.ms: librdkafka rejects `-3` for linger.ms"
        ),
        "{err}"
    );
}

/// A source topic with two records the JSON converter refuses between good ones: a text
/// that is not JSON and bytes that are not UTF-8, each with a key and headers.
const BAD_BYTES: &[u8] = b"\xff\xfe not json \x00\x01";

fn produce_source(bootstrap: &str, topic: &str) {
    let mut cmd = kcat();
    cmd.args([
        "-b",
        bootstrap,
        "-K",
        "|",
        "-H",
        "trace=abc",
        "-H",
        "origin=ztf",
    ]);
    feed_kcat(
        cmd,
        topic,
        0,
        &[
            "k0|{\"n\":0}".to_string(),
            "k1|not json at all".to_string(),
            "k2|{\"n\":2}".to_string(),
        ],
    )
    .unwrap();
    // Raw bytes (no line protocol): kcat's file mode, one message, no key.
    let f = std::env::temp_dir().join(format!("ferry-dlq-bad-{}", std::process::id()));
    std::fs::write(&f, BAD_BYTES).unwrap();
    produce_files(bootstrap, topic, 0, std::slice::from_ref(&f));
    let _ = std::fs::remove_file(f);
    produce_lines(bootstrap, topic, 0, &["{\"n\":4}".to_string()]);
}

/// Messages as kcat's JSON envelope (`-J`), with raw key and value read separately with
/// `-f` so that bytes that are not UTF-8 compare exactly.
#[derive(Debug, Clone, PartialEq)]
struct Message {
    offset: i64,
    ts: i64,
    headers: Vec<(String, String)>,
    key: Vec<u8>,
    value: Vec<u8>,
}

fn consume(bootstrap: &str, topic: &str, expected: usize) -> Vec<Message> {
    let envelopes: Vec<serde_json::Value> =
        kcat_read_until(bootstrap, topic, expected, Duration::from_secs(30), &["-J"])
            .iter()
            .map(|l| serde_json::from_str(l).expect("kcat JSON"))
            .collect();
    assert!(
        envelopes.len() >= expected,
        "{topic}: {} of {expected} messages",
        envelopes.len()
    );
    envelopes
        .iter()
        .map(|e| {
            let offset = e["offset"].as_i64().unwrap();
            let raw = |fmt: &str| {
                kcat()
                    .args([
                        "-C",
                        "-b",
                        bootstrap,
                        "-t",
                        topic,
                        "-o",
                        &offset.to_string(),
                    ])
                    .args(["-c", "1", "-e", "-q", "-f", fmt])
                    .output()
                    .expect("kcat raw")
                    .stdout
            };
            let h = e["headers"].as_array().cloned().unwrap_or_default();
            Message {
                offset,
                ts: e["ts"].as_i64().unwrap(),
                headers: h
                    .chunks(2)
                    .map(|p| {
                        (
                            p[0].as_str().unwrap().to_string(),
                            p[1].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect(),
                key: raw("%k"),
                value: raw("%s"),
            }
        })
        .collect()
}

fn json_connector(dir: &Path, name: &str, extra: &[(&str, &str)]) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.properties"));
    let out = dir.join(format!("{name}.out"));
    let mut pairs = vec![
        ("name", name),
        ("connector.class", "FileStreamSink"),
        ("topics", "alerts"),
        ("file", out.to_str().unwrap()),
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("value.converter.schemas.enable", "false"),
        ("errors.tolerance", "all"),
    ];
    pairs.extend_from_slice(extra);
    write_props(&path, &pairs);
    path
}

/// The dead letters are the bad source records, byte for byte, with Connect's context.
fn check_dead_letters(source: &[Message], dlq: &[Message], connector: &str) {
    let bad: Vec<&Message> = source
        .iter()
        .filter(|m| m.offset == 1 || m.offset == 3)
        .collect();
    // The source is what the test meant it to be.
    assert_eq!(bad[0].key, b"k1");
    assert_eq!(bad[0].value, b"not json at all");
    assert_eq!(
        bad[0].headers,
        [
            ("trace".to_string(), "abc".to_string()),
            ("origin".to_string(), "ztf".to_string())
        ]
    );
    assert_eq!(bad[1].value, BAD_BYTES);
    assert_eq!(dlq.len(), 2, "{dlq:#?}");
    for (orig, letter) in bad.iter().zip(dlq) {
        assert_eq!(letter.key, orig.key, "key of offset {}", orig.offset);
        assert_eq!(letter.value, orig.value, "value of offset {}", orig.offset);
        assert_eq!(letter.ts, orig.ts, "timestamp of offset {}", orig.offset);
        let n = orig.headers.len();
        assert_eq!(
            &letter.headers[..n],
            &orig.headers[..],
            "original headers first"
        );
        let context: Vec<(&str, &str)> = letter.headers[n..]
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let message = context
            .iter()
            .find(|(k, _)| *k == "__connect.errors.exception.message")
            .map(|(_, v)| *v)
            .unwrap_or_default();
        assert!(
            message.starts_with("value.converter JsonConverter: "),
            "{message}"
        );
        let offset = orig.offset.to_string();
        let trace = format!("org.apache.kafka.connect.errors.DataException: {message}\n");
        assert_eq!(
            context,
            vec![
                ("__connect.errors.topic", "alerts"),
                ("__connect.errors.partition", "0"),
                ("__connect.errors.offset", offset.as_str()),
                ("__connect.errors.connector.name", connector),
                ("__connect.errors.task.id", "0"),
                ("__connect.errors.stage", "VALUE_CONVERTER"),
                (
                    "__connect.errors.class.name",
                    "org.apache.kafka.connect.json.JsonConverter"
                ),
                (
                    "__connect.errors.exception.class.name",
                    "org.apache.kafka.connect.errors.DataException"
                ),
                ("__connect.errors.exception.message", message),
                ("__connect.errors.exception.stacktrace", trace.as_str()),
            ]
        );
    }
}

#[test]
fn dead_letters_on_the_same_cluster_carry_the_original_bytes_and_connects_context() {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("alerts", 1);
    broker.create_topic("alerts-dlq", 1);
    produce_source(&broker.bootstrap, "alerts");
    let dir = tempfile::tempdir().unwrap();
    let w = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = json_connector(
        dir.path(),
        "same",
        &[
            ("errors.deadletterqueue.topic.name", "alerts-dlq"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
            ("errors.deadletterqueue.topic.replication.factor", "1"),
            // A Java-only producer key: noted in the log, not passed to librdkafka.
            ("producer.override.buffer.memory", "33554432"),
        ],
    );
    let log = run_to_end(dir.path(), &[], &w, &[&c], Duration::from_secs(60));
    assert!(
        log.contains("producer.override.buffer.memory: a Java client setting with no librdkafka equivalent; ignored."),
        "{log}"
    );
    let source = consume(&broker.bootstrap, "alerts", 5);
    let dlq = consume(&broker.bootstrap, "alerts-dlq", 2);
    check_dead_letters(&source, &dlq, "same");
    assert_eq!(lines_of(&dir.path().join("same.out")).len(), 3, "{log}");
    assert_eq!(
        committed(&broker.bootstrap, "connect-same", "alerts", 1),
        vec![5]
    );
}

#[test]
fn dead_letters_go_to_another_cluster_through_producer_override_bootstrap_servers() {
    let mut source = Broker::start(1, 0);
    source.create_topic("alerts", 1);
    let mut other = Broker::start(1, 0);
    other.create_topic("alerts-dlq", 1);
    produce_source(&source.bootstrap, "alerts");
    let dir = tempfile::tempdir().unwrap();
    let w = worker_props(dir.path(), &source.bootstrap, &[]);
    let c = json_connector(
        dir.path(),
        "other",
        &[
            ("errors.deadletterqueue.topic.name", "alerts-dlq"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
            ("producer.override.bootstrap.servers", &other.bootstrap),
        ],
    );
    run_to_end(dir.path(), &[], &w, &[&c], Duration::from_secs(60));
    let src = consume(&source.bootstrap, "alerts", 5);
    let dlq = consume(&other.bootstrap, "alerts-dlq", 2);
    check_dead_letters(&src, &dlq, "other");
    // Nothing went to the source cluster.
    let out = kcat()
        .args([
            "-C",
            "-b",
            &source.bootstrap,
            "-t",
            "alerts-dlq",
            "-o",
            "beginning",
            "-e",
            "-q",
        ])
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        committed(&source.bootstrap, "connect-other", "alerts", 1),
        vec![5]
    );
}

#[test]
fn dead_letters_go_to_a_directory_as_value_files_and_json_sidecars() {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("alerts", 1);
    produce_source(&broker.bootstrap, "alerts");
    let dir = tempfile::tempdir().unwrap();
    let dlq_dir = dir.path().join("dead");
    let w = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = json_connector(
        dir.path(),
        "files",
        &[(
            "ferry.errors.deadletterqueue.directory",
            dlq_dir.to_str().unwrap(),
        )],
    );
    run_to_end(dir.path(), &[], &w, &[&c], Duration::from_secs(60));
    let source = consume(&broker.bootstrap, "alerts", 5);
    let mut names: Vec<String> = std::fs::read_dir(dlq_dir.join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "alerts-0-1.json",
            "alerts-0-1.value",
            "alerts-0-3.json",
            "alerts-0-3.value"
        ],
        "one value and one sidecar per record, no temporary files left"
    );
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    for orig in source.iter().filter(|m| m.offset == 1 || m.offset == 3) {
        let base = dlq_dir.join(format!("files/alerts-0-{}", orig.offset));
        assert_eq!(
            std::fs::read(base.with_extension("value")).unwrap(),
            orig.value
        );
        let side: serde_json::Value =
            serde_json::from_slice(&std::fs::read(base.with_extension("json")).unwrap()).unwrap();
        assert_eq!(side["topic"], "alerts");
        assert_eq!(side["offset"], orig.offset);
        assert_eq!(side["timestamp"], orig.ts);
        let key = side["key"]
            .as_str()
            .map(|k| b64.decode(k).unwrap())
            .unwrap_or_default();
        assert_eq!(key, orig.key);
        let headers: Vec<(String, String)> = side["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let v = b64.decode(h["value"].as_str().unwrap()).unwrap();
                (
                    h["key"].as_str().unwrap().to_string(),
                    String::from_utf8(v).unwrap(),
                )
            })
            .collect();
        assert_eq!(headers, orig.headers);
        assert_eq!(side["context"]["__connect.errors.stage"], "VALUE_CONVERTER");
        assert_eq!(
            side["context"]["__connect.errors.offset"],
            orig.offset.to_string()
        );
        assert_eq!(side["context"]["__connect.errors.connector.name"], "files");
    }
    assert_eq!(
        committed(&broker.bootstrap, "connect-files", "alerts", 1),
        vec![5]
    );
}

/// The dead-letter cluster is down: the sink goes on delivering, but nothing is committed
/// past the first bad record — not by the first worker, not after it is killed with
/// `kill -9` and restarted — until the dead letter is acknowledged. Then everything is
/// committed and the dead letters are all there (duplicates allowed, loss not).
#[test]
fn a_dead_letter_cluster_outage_holds_the_offset_at_the_bad_record_across_kill_9() {
    let mut source = Broker::start(1, 0);
    source.create_topic("alerts", 1);
    let mut other = Broker::start(1, 0);
    other.create_topic("alerts-dlq", 1);
    other.command("down 1").unwrap();
    produce_source(&source.bootstrap, "alerts");
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("http://127.0.0.1:{}", free_port());
    let w = worker_props(
        dir.path(),
        &source.bootstrap,
        &[("ferry.metrics.listener", &metrics)],
    );
    let c = json_connector(
        dir.path(),
        "held",
        &[
            ("errors.deadletterqueue.topic.name", "alerts-dlq"),
            ("producer.override.bootstrap.servers", &other.bootstrap),
        ],
    );
    let out = dir.path().join("held.out");
    let offsets = dir.path().join("connect.offsets");
    let file_offset = || {
        std::fs::read_to_string(&offsets)
            .ok()
            .and_then(|_| offset_file(&offsets).get("held")?.get("alerts-0").copied())
    };
    let mut first = Ferry::standalone(dir.path(), &w, &[&c]);
    assert!(
        wait_until(Duration::from_secs(30), || lines_of(&out).len() == 3
            && file_offset() == Some(1)),
        "the good records are delivered and the offset stops at the bad one: {:?} {:?}\n{}",
        lines_of(&out),
        file_offset(),
        first.log()
    );
    // Several flush intervals (500 ms) later, still held.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(file_offset(), Some(1), "{}", first.log());
    assert_eq!(
        committed(&source.bootstrap, "connect-held", "alerts", 1),
        vec![1]
    );
    first.signal("KILL");
    first.wait(Duration::from_secs(10));

    let mut second = Ferry::standalone(dir.path(), &w, &[&c]);
    assert!(
        // Offsets 2 and 4 again: read from the held offset 1, and the bad records skipped.
        wait_until(Duration::from_secs(30), || lines_of(&out).len() == 5),
        "the restart redelivers from the held offset: {:?}\n{}",
        lines_of(&out),
        second.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(file_offset(), Some(1), "{}", second.log());
    assert_eq!(
        committed(&source.bootstrap, "connect-held", "alerts", 1),
        vec![1]
    );
    // Connect's dead-letter series: the two bad records sent; no failed attempt yet, since
    // the producer's own retries (delivery.timeout.ms) outlast this outage, as the Java
    // producer's would.
    let (status, page) = curl("GET", &format!("{metrics}/metrics"), &[], None, 10);
    assert_eq!(status, 200, "{page}");
    let requests = series_sum(
        &page,
        "kafka_connect_task_error_metrics_deadletterqueue_produce_requests",
    );
    let failures = series_sum(
        &page,
        "kafka_connect_task_error_metrics_deadletterqueue_produce_failures",
    );
    assert_eq!(requests, 2.0, "{page}");
    assert_eq!(failures, 0.0, "{page}");

    other.command("up 1").unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || file_offset() == Some(5)),
        "committed once the dead letters are acknowledged: {:?}\n{}",
        file_offset(),
        second.log()
    );
    assert_eq!(
        committed(&source.bootstrap, "connect-held", "alerts", 1),
        vec![5]
    );
    second.signal("TERM");
    assert!(
        second.wait(Duration::from_secs(20)).success(),
        "{}",
        second.log()
    );
    // Both bad records reached the dead-letter topic, each at least once.
    let dlq = consume(&other.bootstrap, "alerts-dlq", 2);
    for bad in [b"not json at all".as_slice(), BAD_BYTES] {
        assert!(dlq.iter().any(|m| m.value == bad), "{dlq:?}");
    }
}

/// `errors.tolerance=none` with a dead-letter queue behaves as Kafka Connect's
/// `RetryWithToleranceOperator`: the failed record is reported (written to the queue), then
/// the task fails, and nothing is committed past the record.
#[test]
fn tolerance_none_sends_the_record_to_the_queue_then_fails_the_task() {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("alerts", 1);
    broker.create_topic("alerts-dlq", 1);
    produce_source(&broker.bootstrap, "alerts");
    let dir = tempfile::tempdir().unwrap();
    let w = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = json_connector(
        dir.path(),
        "strict",
        &[
            ("errors.tolerance", "none"),
            ("errors.deadletterqueue.topic.name", "alerts-dlq"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &w, &[&c]);
    let status = ferry.wait(Duration::from_secs(60));
    let log = ferry.log();
    assert!(!status.success(), "the only task failed:\n{log}");
    let line = log
        .lines()
        .find(|l| l.contains("Task failed"))
        .expect("the task's failure line");
    assert!(
        line.contains("offset=1")
            && line.contains("(VALUE_CONVERTER)")
            && line.contains("also sent to the dead-letter queue"),
        "{line}"
    );
    let dlq = consume(&broker.bootstrap, "alerts-dlq", 1);
    assert_eq!(dlq[0].value, b"not json at all");
    assert!(
        dlq[0]
            .headers
            .contains(&("__connect.errors.offset".to_string(), "1".to_string())),
        "{dlq:?}"
    );
    assert!(
        committed(&broker.bootstrap, "connect-strict", "alerts", 1)[0] <= 1,
        "nothing committed past the failed record"
    );
}

/// A producer value librdkafka refuses: the connector does not start, with one line naming
/// the file, line and key.
#[test]
fn a_dead_letter_producer_setting_librdkafka_refuses_is_one_line_at_start() {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("alerts", 1);
    let dir = tempfile::tempdir().unwrap();
    let w = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = json_connector(
        dir.path(),
        "badacks",
        &[
            ("errors.deadletterqueue.topic.name", "alerts-dlq"),
            ("producer.override.acks", "banana"),
        ],
    );
    let mut ferry = Ferry::spawn(
        &ferry_bin(),
        &[
            "standalone",
            "--exit-at-end",
            w.to_str().unwrap(),
            c.to_str().unwrap(),
        ],
        dir.path(),
        "ferry",
    );
    let status = ferry.wait(Duration::from_secs(30));
    let log = ferry.log();
    assert!(!status.success(), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("producer.override.acks"))
        .unwrap_or_else(|| panic!("no line names the key:\n{log}"));
    let file = c.display().to_string();
    assert!(
        line.contains(&format!("the dead-letter queue's producer: {file}:9 producer.override.acks: librdkafka rejects `banana` for acks")),
        "{line}"
    );
}

/// Item 5 (KIP-610): an error the sink reports itself — the Pub/Sub sink's record over the
/// 10 MB message limit — reaches the dead-letter queue with the sink's reason, at stage
/// TASK_PUT, and the offset moves past it only once it is written.
#[test]
fn a_pubsub_oversize_record_reaches_the_dead_letter_directory_with_the_sinks_reason() {
    use common::emulator::{NOT_INSTALLED, emulator_bin, skip};
    let test = "a_pubsub_oversize_record_reaches_the_dead_letter_directory_with_the_sinks_reason";
    let Some(bin) = emulator_bin() else {
        skip(test, NOT_INSTALLED);
        return;
    };
    let emulator = common::emulator::Emulator::start(&bin);
    emulator.create_topic_and_subscription("my-gcp-project", "big-dlq", "big-dlq-check");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("big", 2);
    produce_lines(&broker.bootstrap, "big", 0, &numbered(0, 3));
    let big = dir.path().join("eleven-megabytes.bin");
    let payload = vec![b'x'; 11 * 1024 * 1024];
    std::fs::write(&big, &payload).unwrap();
    let status = kcat()
        .args(["-P", "-b", &broker.bootstrap, "-t", "big", "-p", "1"])
        .args(["-X", "message.max.bytes=20000000", "-q"])
        .arg(&big)
        .status()
        .unwrap();
    assert!(status.success());
    let dead = dir.path().join("dead");
    let w = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = dir.path().join("ps.properties");
    write_props(
        &c,
        &[
            ("name", "psdlq"),
            (
                "connector.class",
                "com.google.pubsub.kafka.sink.CloudPubSubSinkConnector",
            ),
            ("topics", "big"),
            ("cps.project", "my-gcp-project"),
            ("cps.topic", "big-dlq"),
            ("cps.endpoint", emulator.host.as_str()),
            ("cps.useEmulator", "true"),
            ("errors.tolerance", "all"),
            (
                "ferry.errors.deadletterqueue.directory",
                dead.to_str().unwrap(),
            ),
        ],
    );
    run_to_end(dir.path(), &[], &w, &[&c], Duration::from_secs(90));
    let value = std::fs::read(dead.join("psdlq/big-1-0.value")).unwrap();
    assert!(value == payload, "the 11 MB value, byte for byte");
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dead.join("psdlq/big-1-0.json")).unwrap()).unwrap();
    let ctx = &side["context"];
    assert_eq!(ctx["__connect.errors.stage"], "TASK_PUT");
    assert_eq!(
        ctx["__connect.errors.class.name"],
        "org.apache.kafka.connect.sink.SinkTask"
    );
    assert_eq!(
        ctx["__connect.errors.exception.class.name"],
        "org.apache.kafka.connect.errors.ConnectException"
    );
    let reason = ctx["__connect.errors.exception.message"].as_str().unwrap();
    assert!(reason.contains("10 MB"), "{reason}");
    assert_eq!(
        committed(&broker.bootstrap, "connect-psdlq", "big", 2),
        vec![3, 1]
    );
}

/// A tmpfs mounted for a test, unmounted when dropped (as tests/defects.rs's).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        let uid = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("mounting a tmpfs needs root".into());
        }
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
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
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
}

/// `errors.retry.timeout`: a sink that keeps failing retriably (its file on a full disk:
/// "No space left on device") is retried for that long, then its records are record
/// errors — under `all` they go to the dead-letter queue and the offsets advance; under
/// `none` the task fails naming the timeout. (Unset, ferry retries for ever:
/// tests/defects.rs.)
#[test]
fn errors_retry_timeout_turns_a_sink_that_keeps_failing_into_record_errors() {
    const TEST: &str =
        "dlq::errors_retry_timeout_turns_a_sink_that_keeps_failing_into_record_errors";
    let dir = tempfile::tempdir().unwrap();
    let disk = match Tmpfs::mount(&dir.path().join("disk"), "16k") {
        Ok(d) => d,
        Err(reason) => {
            common::emulator::skip(TEST, &reason);
            return;
        }
    };
    let mut broker = Broker::start(1, 0);
    broker.create_topic("full-a", 1);
    broker.create_topic("full-n", 1);
    let dead = dir.path().join("dead");
    let w = worker_props(dir.path(), &broker.bootstrap, &[]);
    let connector = |name: &str, topic: &str, tolerance: &str| {
        let path = dir.path().join(format!("{name}.properties"));
        let out = disk.0.join(format!("{name}.out"));
        write_props(
            &path,
            &[
                ("name", name),
                ("connector.class", "FileStreamSink"),
                ("topics", topic),
                ("file", out.to_str().unwrap()),
                ("errors.tolerance", tolerance),
                ("errors.retry.timeout", "2000"),
                ("errors.retry.delay.max.ms", "300"),
                (
                    "ferry.errors.deadletterqueue.directory",
                    dead.to_str().unwrap(),
                ),
            ],
        );
        path
    };
    let all = connector("full-all", "full-a", "all");
    let none = connector("full-none", "full-n", "none");
    let mut ferry = Ferry::standalone(dir.path(), &w, &[&all, &none]);
    assert!(
        wait_until(Duration::from_secs(30), || ferry
            .log()
            .matches("Partitions assigned")
            .count()
            == 2),
        "{}",
        ferry.log()
    );
    // The start-up checks passed; now the disk fills, and every append fails.
    let _ = std::fs::write(disk.0.join("filler"), vec![0u8; 64 * 1024]);
    let started = std::time::Instant::now();
    produce_lines(&broker.bootstrap, "full-a", 0, &numbered(0, 5));
    produce_lines(&broker.bootstrap, "full-n", 0, &numbered(0, 5));
    assert!(
        wait_until(Duration::from_secs(30), || {
            committed(&broker.bootstrap, "connect-full-all", "full-a", 1) == vec![5]
        }),
        "errors.tolerance=all: the records went to the dead-letter queue and were committed:\n{}",
        ferry.log()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "retried for errors.retry.timeout first"
    );
    let log = ferry.log();
    assert!(
        log.contains("Sink could not take the batch; retrying it."),
        "{log}"
    );
    for offset in 0..5 {
        let side: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dead.join(format!("full-all/full-a-0-{offset}.json"))).unwrap(),
        )
        .unwrap();
        let ctx = &side["context"];
        assert_eq!(ctx["__connect.errors.stage"], "TASK_PUT");
        let message = ctx["__connect.errors.exception.message"].as_str().unwrap();
        assert!(
            message.contains("No space left on device")
                && message.ends_with("(still failing after errors.retry.timeout=2000 ms)"),
            "{message}"
        );
        let value = std::fs::read(dead.join(format!("full-all/full-a-0-{offset}.value"))).unwrap();
        assert_eq!(value, format!("p0-{offset}").into_bytes());
    }
    // errors.tolerance=none: the task fails naming the record and the timeout.
    assert!(
        wait_until(Duration::from_secs(30), || ferry
            .log()
            .contains("Task failed")),
        "{}",
        ferry.log()
    );
    let log = ferry.log();
    let line = log
        .lines()
        .find(|l| l.contains("Task failed"))
        .expect("failure line");
    assert!(
        line.contains("connector=full-none")
            && line.contains("offset=0")
            && line.contains("errors.retry.timeout=2000 ms"),
        "{line}"
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-full-none", "full-n", 1),
        vec![-1]
    );
    ferry.signal("TERM");
    let _ = ferry.wait(Duration::from_secs(30));
    drop(disk);
}

/// The dead-letter directory on a full disk: the good records are delivered, the offset is
/// held at the first bad record until the disk has room, then both dead letters are
/// written whole and everything is committed.
#[test]
fn a_full_dead_letter_directory_holds_the_offset_until_it_has_room() {
    const TEST: &str = "dlq::a_full_dead_letter_directory_holds_the_offset_until_it_has_room";
    let dir = tempfile::tempdir().unwrap();
    let disk = match Tmpfs::mount(&dir.path().join("disk"), "16k") {
        Ok(d) => d,
        Err(reason) => {
            common::emulator::skip(TEST, &reason);
            return;
        }
    };
    let mut broker = Broker::start(1, 0);
    broker.create_topic("alerts", 1);
    let w = worker_props(dir.path(), &broker.bootstrap, &[]);
    let dead = disk.0.join("dead");
    let c = json_connector(
        dir.path(),
        "dirfull",
        &[(
            "ferry.errors.deadletterqueue.directory",
            dead.to_str().unwrap(),
        )],
    );
    let _ = std::fs::write(disk.0.join("filler"), vec![0u8; 64 * 1024]);
    produce_source(&broker.bootstrap, "alerts");
    let mut ferry = Ferry::standalone(dir.path(), &w, &[&c]);
    let out = dir.path().join("dirfull.out");
    assert!(
        wait_until(Duration::from_secs(30), || lines_of(&out).len() == 3
            && ferry.log().contains("Cannot write a dead letter yet")),
        "{}",
        ferry.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let held = committed(&broker.bootstrap, "connect-dirfull", "alerts", 1)[0];
    assert!(
        held <= 1,
        "committed {held}, past the unwritten dead letter at offset 1"
    );
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || {
            committed(&broker.bootstrap, "connect-dirfull", "alerts", 1) == vec![5]
        }),
        "{}",
        ferry.log()
    );
    let source = consume(&broker.bootstrap, "alerts", 5);
    for offset in [1, 3] {
        let value = std::fs::read(dead.join(format!("dirfull/alerts-0-{offset}.value"))).unwrap();
        assert_eq!(value, source[offset as usize].value);
        assert!(
            dead.join(format!("dirfull/alerts-0-{offset}.json"))
                .exists()
        );
    }
    assert!(ferry.log().contains("Dead letter written after retries"));
    let leftovers: Vec<String> = std::fs::read_dir(dead.join("dirfull"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".dead-letter-"))
        .collect();
    assert!(leftovers.is_empty(), "failed writes left {leftovers:?}");
    ferry.signal("TERM");
    let _ = ferry.wait(Duration::from_secs(30));
    drop(disk);
}

/// The topics of a cluster and their partition counts, from `kcat -L -J` (all topics: a
/// listing creates none, even on a cluster that creates topics when one is named).
fn topics_of(bootstrap: &str) -> BTreeMap<String, usize> {
    let out = kcat()
        .args(["-L", "-J", "-b", bootstrap, "-m", "10"])
        .output()
        .expect("kcat -L");
    assert!(
        out.status.success(),
        "kcat -L -b {bootstrap}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kcat -L -J JSON");
    md["topics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["error"].is_null())
        .map(|t| {
            let name = t["topic"].as_str().unwrap().to_string();
            (name, t["partitions"].as_array().map_or(0, Vec::len))
        })
        .collect()
}

/// The log's lines about the dead-letter topic's creation.
fn topic_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("Dead-letter topic created")
                || l.contains("The dead-letter topic is missing")
                || l.contains("Cannot check whether the dead-letter topic exists")
        })
        .collect()
}

/// Kafka Connect's `DeadLetterQueueReporter`: a dead-letter topic missing at the connector's
/// start is created with one partition and `errors.deadletterqueue.topic.replication.factor`,
/// on the producer's cluster (here another one, through
/// `producer.override.bootstrap.servers`), and the dead letters land in it. The cluster is
/// a crabka-broker (the mock cluster serves no CreateTopics), which creates no topic unless
/// asked; kcat lists it independently.
#[test]
fn a_missing_dead_letter_topic_is_created_on_the_producers_cluster_with_one_partition() {
    const TEST: &str =
        "dlq::a_missing_dead_letter_topic_is_created_on_the_producers_cluster_with_one_partition";
    let Some(dlq_cluster) = crabka::CrabkaBroker::start_or_skip(TEST) else {
        return;
    };
    assert!(
        !topics_of(&dlq_cluster.bootstrap).contains_key("alerts-dlq"),
        "a fresh broker"
    );
    let mut source = Broker::start(1, 0);
    source.create_topic("alerts", 1);
    produce_source(&source.bootstrap, "alerts");
    let dir = tempfile::tempdir().unwrap();
    let w = worker_props(dir.path(), &source.bootstrap, &[]);
    let c = json_connector(
        dir.path(),
        "created",
        &[
            ("errors.deadletterqueue.topic.name", "alerts-dlq"),
            ("errors.deadletterqueue.topic.replication.factor", "1"),
            (
                "producer.override.bootstrap.servers",
                &dlq_cluster.bootstrap,
            ),
        ],
    );
    let log = run_to_end(dir.path(), &[], &w, &[&c], Duration::from_secs(60));
    let lines = topic_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    for part in [
        "INFO",
        "Dead-letter topic created.",
        "connector=created",
        "topic=alerts-dlq",
        &format!("brokers={}", dlq_cluster.bootstrap),
        "partitions=1",
        "replication_factor=1",
    ] {
        assert!(lines[0].contains(part), "{part}: {}", lines[0]);
    }
    assert_eq!(
        topics_of(&dlq_cluster.bootstrap).get("alerts-dlq"),
        Some(&1),
        "created with one partition on the producer's cluster"
    );
    assert!(
        !topics_of(&source.bootstrap).contains_key("alerts-dlq"),
        "nothing created on the source cluster"
    );
    // Both dead letters are in it (its end offset), the bad records' values in order.
    let end = kcat()
        .args(["-Q", "-b", &dlq_cluster.bootstrap, "-t", "alerts-dlq:0:-1"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&end.stdout).trim(),
        "alerts-dlq [0] offset 2",
        "{}",
        String::from_utf8_lossy(&end.stderr)
    );
    let values = kcat()
        .args(["-C", "-b", &dlq_cluster.bootstrap, "-t", "alerts-dlq"])
        .args(["-o", "beginning", "-c", "2", "-q", "-f", "%s"])
        .output()
        .unwrap();
    assert_eq!(
        values.stdout,
        [b"not json at all".as_slice(), BAD_BYTES].concat()
    );
    assert_eq!(
        committed(&source.bootstrap, "connect-created", "alerts", 1),
        vec![5]
    );

    // Started again: the topic exists and is left alone, without a line.
    let log = run_to_end(dir.path(), &[], &w, &[&c], Duration::from_secs(60));
    assert!(topic_lines(&log).is_empty(), "{log}");
}

/// A dead-letter topic the cluster refuses to create (Connect's default replication factor
/// 3 on a one-broker cluster): one warn line naming the connector, the topic, the reason
/// and the command that creates it; the connector runs, delivers the good records, and
/// holds its offset at the first bad record, whose dead letter waits for the topic.
#[test]
fn a_dead_letter_topic_the_cluster_refuses_to_create_is_one_warn_line_and_holds_the_offset() {
    const TEST: &str = "dlq::a_dead_letter_topic_the_cluster_refuses_to_create_is_one_warn_line_and_holds_the_offset";
    let Some(dlq_cluster) = crabka::CrabkaBroker::start_or_skip(TEST) else {
        return;
    };
    let mut source = Broker::start(1, 0);
    source.create_topic("alerts", 1);
    produce_source(&source.bootstrap, "alerts");
    let dir = tempfile::tempdir().unwrap();
    let w = worker_props(dir.path(), &source.bootstrap, &[]);
    let c = json_connector(
        dir.path(),
        "refused",
        &[
            ("errors.deadletterqueue.topic.name", "refused-dlq"),
            (
                "producer.override.bootstrap.servers",
                &dlq_cluster.bootstrap,
            ),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &w, &[&c]);
    let out = dir.path().join("refused.out");
    assert!(
        wait_until(Duration::from_secs(30), || lines_of(&out).len() == 3
            && !topic_lines(&ferry.log()).is_empty()),
        "{}",
        ferry.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let log = ferry.log();
    let lines = topic_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    let want = format!(
        "The dead-letter topic is missing and ferry cannot create it; create it with `kafka-topics.sh --bootstrap-server {} --create --topic refused-dlq --partitions 1 --replication-factor 3` (or let the cluster create topics on first write). Until it exists, failed records wait for it and their offsets are not committed.",
        dlq_cluster.bootstrap
    );
    for part in [
        "WARN",
        want.as_str(),
        "connector=refused",
        "topic=refused-dlq",
        "error=cannot create it: InvalidReplicationFactor",
    ] {
        assert!(lines[0].contains(part), "{part}: {}", lines[0]);
    }
    assert!(
        !topics_of(&dlq_cluster.bootstrap).contains_key("refused-dlq"),
        "not created"
    );
    assert!(
        committed(&source.bootstrap, "connect-refused", "alerts", 1)[0] <= 1,
        "nothing committed past the first dead letter"
    );
    ferry.signal("TERM");
    let _ = ferry.wait(Duration::from_secs(30));
}

/// On librdkafka's mock cluster, which has no CreateTopics, the missing dead-letter topic
/// cannot be created: one warn line (after the creation request's 10 s bound: the mock
/// names no controller to send it to); the dead letters then go as before, the cluster
/// creating the topic on the producer's first write (as a Kafka cluster with
/// `auto.create.topics.enable=true` does).
#[test]
fn a_missing_dead_letter_topic_on_a_cluster_without_create_topics_is_one_warn_line() {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("alerts", 1);
    produce_source(&broker.bootstrap, "alerts");
    let dir = tempfile::tempdir().unwrap();
    let w = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = json_connector(
        dir.path(),
        "nocreate",
        &[
            ("errors.deadletterqueue.topic.name", "alerts-dlq"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
            ("errors.deadletterqueue.topic.replication.factor", "1"),
            // Credentials the admin client gets with the producer's settings (unused on a
            // PLAINTEXT listener): they appear nowhere in the log.
            ("producer.override.sasl.username", "dlq-user"),
            ("producer.override.sasl.password", "hunter2-dlq-secret"),
        ],
    );
    let log = run_to_end(dir.path(), &[], &w, &[&c], Duration::from_secs(60));
    assert!(!log.contains("hunter2"), "{log}");
    let lines = topic_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    let want = format!(
        "The dead-letter topic is missing and ferry cannot create it; create it with `kafka-topics.sh --bootstrap-server {} --create --topic alerts-dlq --partitions 1 --replication-factor 1`",
        broker.bootstrap
    );
    for part in [
        "WARN",
        want.as_str(),
        "connector=nocreate",
        "topic=alerts-dlq",
        "error=cannot create it: ",
    ] {
        assert!(lines[0].contains(part), "{part}: {}", lines[0]);
    }
    // Created by the producer's first write, with the cluster's default partition count
    // (the mock's is 4), not Connect's one partition: that is what the line is about.
    assert_eq!(topics_of(&broker.bootstrap).get("alerts-dlq"), Some(&4));
    // Several partitions: each letter read back by partition and offset, matched to its
    // source record by Connect's offset header.
    let source = consume(&broker.bootstrap, "alerts", 5);
    let envelopes = kcat_read_until(
        &broker.bootstrap,
        "alerts-dlq",
        2,
        Duration::from_secs(30),
        &["-J"],
    );
    assert_eq!(envelopes.len(), 2, "{envelopes:?}");
    let mut letters: Vec<(i64, Vec<u8>, Vec<u8>)> = envelopes
        .iter()
        .map(|line| {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            let headers = e["headers"].as_array().unwrap();
            let at = headers
                .chunks(2)
                .find(|h| h[0] == "__connect.errors.offset")
                .map(|h| h[1].as_str().unwrap().parse::<i64>().unwrap())
                .unwrap();
            let raw = |fmt: &str| {
                kcat()
                    .args(["-C", "-b", &broker.bootstrap, "-t", "alerts-dlq"])
                    .args(["-p", &e["partition"].to_string()])
                    .args(["-o", &e["offset"].to_string()])
                    .args(["-c", "1", "-e", "-q", "-f", fmt])
                    .output()
                    .unwrap()
                    .stdout
            };
            (at, raw("%k"), raw("%s"))
        })
        .collect();
    letters.sort();
    let bad: Vec<(i64, Vec<u8>, Vec<u8>)> = source
        .iter()
        .filter(|m| m.offset == 1 || m.offset == 3)
        .map(|m| (m.offset, m.key.clone(), m.value.clone()))
        .collect();
    assert_eq!(bad[1].2, BAD_BYTES, "the source is what the test meant");
    assert_eq!(letters, bad);
    assert_eq!(
        committed(&broker.bootstrap, "connect-nocreate", "alerts", 1),
        vec![5]
    );
}
