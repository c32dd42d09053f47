//! The runtime's Kafka producer and the dead-letter queue, against the mock cluster
//! (`ferry-mock-broker`, its own process) with kcat as the independent reader.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use ferry::config::WorkerConfig;
use ferry::config::providers::SystemEnvironment;
use ferry::producer::Producers;
use ferry_connector_api::{Header, ProducerFactory, ProducerRecord};

/// Every message of a topic as kcat prints it: `key|value|headers|timestamp` (`NULL` for a
/// null key), one per line.
fn kcat_read(bootstrap: &str, topic: &str, expected: usize) -> Vec<String> {
    let mut got = Vec::new();
    let done = wait_until(Duration::from_secs(30), || {
        let out = kcat()
            .args([
                "-C",
                "-b",
                bootstrap,
                "-t",
                topic,
                "-o",
                "beginning",
                "-e",
                "-q",
                "-Z",
            ])
            .args(["-f", "%k|%s|%h|%T\\n"])
            .output()
            .expect("run kcat");
        got = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        got.len() >= expected
    });
    assert!(
        done,
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
