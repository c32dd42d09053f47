//! The BigQuery sink against the `local-bigquery` emulator, with data produced by kcat into
//! the mock Kafka cluster and every table checked by tests/bigquery/check.py — Google's
//! Python BigQuery client for the rows and fastavro for the alerts, not ferry's code.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::bigquery::BigQueryEmulator;
use common::emulator::skip;
use common::*;
use sha2::{Digest, Sha256};

const DATASET: &str = "ztf";

fn emulator_or_skip(test: &str) -> Option<BigQueryEmulator> {
    match BigQueryEmulator::start() {
        Ok(e) => {
            e.create_dataset(DATASET);
            Some(e)
        }
        Err(reason) => {
            skip(test, &reason);
            None
        }
    }
}

/// A BigQuery connector file for the emulator.
fn connector(
    dir: &Path,
    name: &str,
    topics: &str,
    emulator: &BigQueryEmulator,
    extra: &[(&str, &str)],
) -> PathBuf {
    let path = dir.join(format!("{name}.properties"));
    let mut pairs = vec![
        ("name", name),
        (
            "connector.class",
            "com.wepay.kafka.connect.bigquery.BigQuerySinkConnector",
        ),
        ("topics", topics),
        ("project", emulator.project.as_str()),
        ("defaultDataset", DATASET),
        ("ferry.bigquery.endpoint", emulator.rest.as_str()),
        ("ferry.bigquery.emulator", "true"),
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k, v));
    }
    write_props(&path, &pairs);
    path
}

/// Produces the alerts round-robin over `partitions`; returns (partition, offset) → file.
fn produce_alerts(
    broker: &mut Broker,
    topic: &str,
    partitions: i32,
    files: &[PathBuf],
) -> BTreeMap<(i32, i64), PathBuf> {
    broker.create_topic(topic, partitions);
    let mut sent = BTreeMap::new();
    for p in 0..partitions {
        let mine: Vec<PathBuf> = files
            .iter()
            .skip(p as usize)
            .step_by(partitions as usize)
            .cloned()
            .collect();
        produce_files(&broker.bootstrap, topic, p, &mine);
        for (o, f) in mine.into_iter().enumerate() {
            sent.insert((p, o as i64), f);
        }
    }
    sent
}

fn checked(out: std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: check.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The real alerts (or synthetic ones when they are absent) in a directory of their own,
/// for check.py to decode independently.
fn alerts_dir(dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let (files, kind) = ferry_mock_broker::ztf::alert_files(dir).unwrap();
    eprintln!("BigQuery test: {} {kind}", files.len());
    let alerts = dir.join("alerts");
    std::fs::create_dir_all(&alerts).unwrap();
    let copies = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let to = alerts.join(format!("{i:03}.avro"));
            std::fs::copy(f, &to).unwrap();
            to
        })
        .collect();
    (alerts, copies)
}

#[test]
fn ztf_alerts_load_as_rows_with_no_schema_written_by_hand() {
    let Some(bq) = emulator_or_skip("ztf_alerts_load_as_rows_with_no_schema_written_by_hand")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (alerts, files) = alerts_dir(dir.path());
    let mut broker = Broker::start(1, 0);
    let topic = "ztf_20260112_programid1";
    let sent = produce_alerts(&mut broker, topic, 3, &files);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = connector(
        dir.path(),
        "bq-alerts",
        topic,
        &bq,
        &[
            ("tasks.max", "2"),
            ("value.converter", "ferry.converters.AvroContainerConverter"),
            ("topic2TableMap", &format!("{topic}:alerts")),
        ],
    );
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    assert!(log.contains("Created the BigQuery table"), "{log}");
    let out = checked(
        bq.check(&[
            "ztf",
            "--table",
            &format!("{DATASET}.alerts"),
            "--alerts",
            alerts.to_str().unwrap(),
        ]),
        "decoded alerts",
    );
    assert!(
        out.contains(&format!("OK {} rows", sent.len())),
        "check.py: {out}"
    );
    let per_partition: Vec<i64> = (0..3)
        .map(|p| sent.keys().filter(|(q, _)| *q == p).count() as i64)
        .collect();
    assert_eq!(
        committed(&broker.bootstrap, "connect-bq-alerts", topic, 3),
        per_partition
    );
}

/// One JSON line per record for check.py's `raw` mode.
fn expectation(topic: &str, sent: &BTreeMap<(i32, i64), Vec<u8>>) -> String {
    sent.iter()
        .map(|((p, o), value)| {
            serde_json::json!({
                "topic": topic, "partition": p, "offset": o,
                "value_sha256": Sha256::digest(value).iter().map(|b| format!("{b:02x}")).collect::<String>(), "key_b64": null,
            })
            .to_string()
                + "\n"
        })
        .collect()
}

#[test]
fn raw_mode_loads_every_record_with_its_bytes_and_metadata() {
    let Some(bq) = emulator_or_skip("raw_mode_loads_every_record_with_its_bytes_and_metadata")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = alerts_dir(dir.path());
    let mut broker = Broker::start(1, 0);
    let topic = "ztf_raw";
    let sent: BTreeMap<(i32, i64), Vec<u8>> = produce_alerts(&mut broker, topic, 2, &files)
        .into_iter()
        .map(|(at, f)| (at, std::fs::read(f).unwrap()))
        .collect();
    let expect = dir.path().join("expect.jsonl");
    std::fs::write(&expect, expectation(topic, &sent)).unwrap();
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = connector(
        dir.path(),
        "bq-raw",
        topic,
        &bq,
        &[
            ("ferry.bigquery.mode", "raw"),
            ("timePartitioningType", "NONE"),
        ],
    );
    run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    let out = checked(
        bq.check(&[
            "raw",
            "--table",
            &format!("{DATASET}.{topic}"),
            "--expect",
            expect.to_str().unwrap(),
        ]),
        "raw table",
    );
    assert!(out.contains(&format!("OK {} rows", sent.len())), "{out}");
}

/// A decoded-mode topic with a record that is not Avro in the middle.
fn mixed_topic(broker: &mut Broker, dir: &Path, topic: &str) -> usize {
    let (_, files) = alerts_dir(dir);
    broker.create_topic(topic, 1);
    let bad = dir.join("not-avro.txt");
    std::fs::write(&bad, b"this is not an Avro container").unwrap();
    let mut batch: Vec<PathBuf> = files.iter().take(3).cloned().collect();
    batch.push(bad);
    batch.extend(files.iter().skip(3).take(3).cloned());
    produce_files(&broker.bootstrap, topic, 0, &batch);
    3
}

#[test]
fn a_record_that_is_not_avro_fails_the_task_under_tolerance_none_and_is_skipped_under_all() {
    let test =
        "a_record_that_is_not_avro_fails_the_task_under_tolerance_none_and_is_skipped_under_all";
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    let topic = "mixed";
    let bad_offset = mixed_topic(&mut broker, dir.path(), topic);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let avro = ("value.converter", "ferry.converters.AvroContainerConverter");

    // none: the task fails naming the record; rows before it are in, nothing after.
    let c = connector(
        dir.path(),
        "bq-none",
        topic,
        &bq,
        &[avro, ("topic2TableMap", "mixed:strict")],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&c]);
    let failed = wait_until(Duration::from_secs(60), || {
        ferry.log().contains("FAILED") || ferry.log().contains("failed")
    });
    let log = ferry.log();
    assert!(failed, "{log}");
    assert!(
        log.contains(&format!("offset={bad_offset}")) && log.contains("AvroContainerConverter"),
        "the line names the record and the converter: {log}"
    );
    ferry.signal("TERM");
    ferry.wait(Duration::from_secs(30));
    let count = checked(
        bq.check(&["count", "--table", &format!("{DATASET}.strict")]),
        "strict",
    );
    assert_eq!(
        count.trim(),
        bad_offset.to_string(),
        "rows before the bad record"
    );
    assert!(
        committed(&broker.bootstrap, "connect-bq-none", topic, 1)[0] <= bad_offset as i64,
        "nothing committed past the bad record"
    );

    // all: logged, skipped, and every other alert loads.
    let c = connector(
        dir.path(),
        "bq-all",
        topic,
        &bq,
        &[
            avro,
            ("topic2TableMap", "mixed:tolerant"),
            ("errors.tolerance", "all"),
        ],
    );
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    assert!(log.contains("Skipping a record"), "{log}");
    let count = checked(
        bq.check(&["count", "--table", &format!("{DATASET}.tolerant")]),
        "tolerant",
    );
    assert_eq!(count.trim(), "6");
    assert_eq!(
        committed(&broker.bootstrap, "connect-bq-all", topic, 1),
        vec![7]
    );
}

#[test]
fn a_missing_dataset_is_one_clear_line_at_startup() {
    let Some(bq) = emulator_or_skip("a_missing_dataset_is_one_clear_line_at_startup") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("t", 1);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = connector(
        dir.path(),
        "bq-missing",
        "t",
        &bq,
        &[("defaultDataset", "nope"), ("ferry.bigquery.mode", "raw")],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&c]);
    let status = ferry.wait(Duration::from_secs(60));
    let log = ferry.log();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("dataset test.nope does not exist (defaultDataset)"),
        "{log}"
    );
}
