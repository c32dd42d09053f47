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

/// Which alerts a test loads. The real ones and the synthetic ones have different schemas,
/// so a decoded load puts each family in a table of its own.
#[derive(Clone, Copy)]
enum Alerts {
    /// The real alerts of tests/data/ztf (one schema, 3.3).
    Real,
    /// Synthetic ZTF-shaped alerts `0..n`.
    Synthetic(usize),
    /// The real ones, then synthetic ones up to `n` in all: records as bytes, never decoded
    /// into one table.
    RealThenSynthetic(usize),
}

/// `which` alerts copied into `dir/<sub>/NNN.avro` (their own directory, for check.py to
/// decode independently); returns the directory and the files.
fn alerts_dir(dir: &Path, sub: &str, which: Alerts) -> (PathBuf, Vec<PathBuf>) {
    use ferry_mock_broker::ztf;
    let scratch = dir.join(format!("{sub}-source"));
    let (files, what) = match which {
        Alerts::Real => {
            let files = ztf::real_alert_files().unwrap();
            let what = format!("{} real ZTF alerts (tests/data/ztf)", files.len());
            (files, what)
        }
        Alerts::Synthetic(n) => (
            ztf::write_synthetic_alerts(&scratch, n).unwrap(),
            format!("{n} synthetic ZTF-shaped alerts"),
        ),
        Alerts::RealThenSynthetic(n) => {
            let a = ztf::alert_files(&scratch, n).unwrap();
            let what = a.describe();
            (a.files, what)
        }
    };
    eprintln!("BigQuery test: {what}");
    let alerts = dir.join(sub);
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
    ztf_alerts_load(&bq, "bq-alerts", "alerts", &[]);
}

/// One connector, two topics decoded by two tasks: the real ZTF alerts over 3 partitions
/// into `table`, and 46 synthetic ZTF-shaped alerts (for volume, a schema of their own)
/// over 3 partitions into `<table>_synthetic`, with the connector's `extra` keys. check.py
/// compares every row of each table with its alert files, and every offset is committed.
/// Returns ferry's log.
fn ztf_alerts_load(
    bq: &BigQueryEmulator,
    name: &str,
    table: &str,
    extra: &[(&str, &str)],
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    let synthetic_table = format!("{table}_synthetic");
    let loads = [
        ("ztf_20260112_programid1", table, Alerts::Real),
        (
            "ztf_shaped_synthetic",
            synthetic_table.as_str(),
            Alerts::Synthetic(46),
        ),
    ];
    let mut sent = Vec::new();
    for (topic, table, which) in loads {
        let (alerts, files) = alerts_dir(dir.path(), table, which);
        let records = produce_alerts(&mut broker, topic, 3, &files);
        sent.push((topic, table, alerts, records));
    }
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let topics = format!("{},{}", loads[0].0, loads[1].0);
    let map = format!(
        "{}:{},{}:{}",
        loads[0].0, loads[0].1, loads[1].0, loads[1].1
    );
    let mut pairs = vec![
        ("tasks.max", "2"),
        ("value.converter", "ferry.converters.AvroContainerConverter"),
        ("topic2TableMap", map.as_str()),
    ];
    pairs.extend_from_slice(extra);
    let c = connector(dir.path(), name, &topics, bq, &pairs);
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    assert!(log.contains("Created the BigQuery table"), "{log}");
    for (topic, table, alerts, records) in &sent {
        let out = checked(
            bq.check(&[
                "ztf",
                "--table",
                &format!("{DATASET}.{table}"),
                "--alerts",
                alerts.to_str().unwrap(),
            ]),
            &format!("decoded alerts ({name}, {table})"),
        );
        assert!(
            out.contains(&format!("OK {} rows", records.len())),
            "check.py ({table}): {out}"
        );
        assert_eq!(
            committed(&broker.bootstrap, &format!("connect-{name}"), topic, 3),
            per_partition(records, 3),
            "{topic}"
        );
    }
    log
}

/// How many of `sent`'s records are in each of partitions `0..partitions`: what the group
/// must have committed once all are delivered.
fn per_partition<V>(sent: &BTreeMap<(i32, i64), V>, partitions: i32) -> Vec<i64> {
    (0..partitions)
        .map(|p| sent.keys().filter(|(q, _)| *q == p).count() as i64)
        .collect()
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
    raw_alerts_load(&bq, "bq-raw", "ztf_raw", &[]);
}

/// 52 alerts (the real ones, then synthetic ones) over 2 partitions in raw mode with the
/// connector's `extra` keys: check.py compares every row's bytes and coordinates. Returns
/// ferry's log, the group's committed offsets and the offsets it should hold.
fn raw_alerts_load(
    bq: &BigQueryEmulator,
    name: &str,
    topic: &str,
    extra: &[(&str, &str)],
) -> (String, Vec<i64>, Vec<i64>) {
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = alerts_dir(dir.path(), "alerts", Alerts::RealThenSynthetic(52));
    let mut broker = Broker::start(1, 0);
    let sent: BTreeMap<(i32, i64), Vec<u8>> = produce_alerts(&mut broker, topic, 2, &files)
        .into_iter()
        .map(|(at, f)| (at, std::fs::read(f).unwrap()))
        .collect();
    let expect = dir.path().join("expect.jsonl");
    std::fs::write(&expect, expectation(topic, &sent)).unwrap();
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let mut pairs = vec![
        ("ferry.bigquery.mode", "raw"),
        ("timePartitioningType", "NONE"),
    ];
    pairs.extend_from_slice(extra);
    let c = connector(dir.path(), name, topic, bq, &pairs);
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    let out = checked(
        bq.check(&[
            "raw",
            "--table",
            &format!("{DATASET}.{topic}"),
            "--expect",
            expect.to_str().unwrap(),
        ]),
        &format!("raw table ({name})"),
    );
    assert!(out.contains(&format!("OK {} rows", sent.len())), "{out}");
    let group = committed(&broker.bootstrap, &format!("connect-{name}"), topic, 2);
    (log, group, per_partition(&sent, 2))
}

/// The keys that send rows through the Storage Write API of `bq` instead of insertAll.
fn storage_write(bq: &BigQueryEmulator) -> [(&'static str, &str); 2] {
    [
        ("useStorageWriteApi", "true"),
        ("ferry.bigquery.storage.endpoint", bq.grpc.as_str()),
    ]
}

#[test]
fn ztf_alerts_load_through_the_storage_write_api() {
    let Some(bq) = emulator_or_skip("ztf_alerts_load_through_the_storage_write_api") else {
        return;
    };
    let log = ztf_alerts_load(&bq, "bq-alerts-sw", "alerts_sw", &storage_write(&bq));
    assert!(log.contains("Created a COMMITTED write stream"), "{log}");
}

#[test]
fn raw_mode_through_the_storage_write_api_loads_every_record_with_its_bytes() {
    let test = "raw_mode_through_the_storage_write_api_loads_every_record_with_its_bytes";
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    let (log, group, expected) =
        raw_alerts_load(&bq, "bq-raw-sw", "ztf_raw_sw", &storage_write(&bq));
    assert!(log.contains("Created a COMMITTED write stream"), "{log}");
    assert_eq!(group, expected);
}

#[test]
fn a_row_bigquery_refuses_through_the_storage_write_api_is_handled_by_errors_tolerance() {
    let test =
        "a_row_bigquery_refuses_through_the_storage_write_api_is_handled_by_errors_tolerance";
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    let topic = "people";
    broker.create_topic(topic, 1);
    // The third has no id: ferry encodes it (the column is there, only left out), and
    // BigQuery refuses it as a row error of the append.
    let lines: Vec<String> = [
        r#"{"id": 1, "name": "a"}"#,
        r#"{"id": 2, "name": "b"}"#,
        r#"{"name": "c"}"#,
        r#"{"id": 4, "name": "d"}"#,
    ]
    .map(str::to_string)
    .to_vec();
    produce_lines(&broker.bootstrap, topic, 0, &lines);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    bq.create_table(
        DATASET,
        "people_sw",
        serde_json::json!([
            {"name": "id", "type": "INTEGER", "mode": "REQUIRED"},
            {"name": "name", "type": "STRING", "mode": "NULLABLE"},
        ]),
    );
    let [sw, endpoint] = storage_write(&bq);
    let c = connector(
        dir.path(),
        "bq-refused-sw",
        topic,
        &bq,
        &[
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
            ("topic2TableMap", "people:people_sw"),
            ("errors.tolerance", "all"),
            sw,
            endpoint,
        ],
    );
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    assert!(
        log.contains("Skipping a record")
            && log.contains("offset=2")
            && log.contains("BigQuery refused its row for test.ztf.people_sw")
            && log.contains("Missing required field"),
        "{log}"
    );
    let rows = bq.query(&format!(
        "SELECT id, name FROM `{}.{DATASET}.people_sw` ORDER BY id",
        bq.project
    ));
    let got: Vec<(String, String)> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["f"][0]["v"].as_str().unwrap().to_string(),
                r["f"][1]["v"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("1", "a"), ("2", "b"), ("4", "d")].map(|(i, n)| (i.to_string(), n.to_string()))
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-bq-refused-sw", topic, 1),
        vec![4]
    );
}

/// A TCP proxy in front of the emulator's gRPC port that passes everything on, except that
/// it cuts the connection in place of the server's `cut_at`-th non-empty HTTP/2 DATA frame
/// (counted over all connections): the server has acted on the request, and its answer is
/// lost. Returns the proxy's `http://` address; its threads end with the test process.
fn answer_losing_proxy(upstream: &str, cut_at: usize) -> String {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let frames = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
            });
            let frames = frames.clone();
            std::thread::spawn(move || {
                let (mut from, mut to) = (server, client);
                let mut buf: Vec<u8> = Vec::new();
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    let n = match from.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    // Whole frames only: 9-byte header (24-bit length, type, flags, stream).
                    while buf.len() >= 9 {
                        let len = (usize::from(buf[0]) << 16)
                            | (usize::from(buf[1]) << 8)
                            | usize::from(buf[2]);
                        if buf.len() < 9 + len {
                            break;
                        }
                        if buf[3] == 0
                            && len > 0
                            && frames.fetch_add(1, Ordering::SeqCst) + 1 == cut_at
                        {
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                            return;
                        }
                        if to.write_all(&buf[..9 + len]).is_err() {
                            return;
                        }
                        buf.drain(..9 + len);
                    }
                }
                let _ = to.shutdown(Shutdown::Both);
            });
        }
    });
    addr
}

#[test]
fn an_append_whose_answer_is_lost_is_sent_again_at_its_offset_and_written_once() {
    let test = "an_append_whose_answer_is_lost_is_sent_again_at_its_offset_and_written_once";
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    let topic = "lost";
    broker.create_topic(topic, 1);
    let lines = numbered(0, 50);
    produce_lines(&broker.bootstrap, topic, 0, &lines);
    let sent: BTreeMap<(i32, i64), Vec<u8>> = lines
        .into_iter()
        .enumerate()
        .map(|(o, l)| ((0, o as i64), l.into_bytes()))
        .collect();
    let expect = dir.path().join("expect.jsonl");
    std::fs::write(&expect, expectation(topic, &sent)).unwrap();
    // DATA frames from the server: CreateWriteStream's answer, then the first append's.
    let proxy = answer_losing_proxy(&bq.grpc, 2);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = connector(
        dir.path(),
        "bq-lost",
        topic,
        &bq,
        &[
            ("ferry.bigquery.mode", "raw"),
            ("useStorageWriteApi", "true"),
            ("ferry.bigquery.storage.endpoint", &proxy),
            ("bigQueryRetry", "3"),
            ("bigQueryRetryWait", "200"),
        ],
    );
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    assert!(
        log.contains("BigQuery append failed; retrying")
            && log.contains("BigQuery already had these rows in the write stream"),
        "{log}"
    );
    // Exactly once: no --allow-duplicates.
    let out = checked(
        bq.check(&[
            "raw",
            "--table",
            &format!("{DATASET}.{topic}"),
            "--expect",
            expect.to_str().unwrap(),
        ]),
        "after a lost answer",
    );
    assert!(out.contains(&format!("OK {} rows", sent.len())), "{out}");
    assert_eq!(
        committed(&broker.bootstrap, "connect-bq-lost", topic, 1),
        vec![50]
    );
}

/// A decoded-mode topic with a record that is not Avro in the middle.
fn mixed_topic(broker: &mut Broker, dir: &Path, topic: &str) -> usize {
    let (_, files) = alerts_dir(dir, "alerts", Alerts::Real);
    assert!(files.len() >= 6, "three alerts each side of the bad record");
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
        ferry.log().contains("Task failed")
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
    // The records before it reached the sink, which buffers rows until a request is full
    // or a flush; a failed task flushes nothing more, so they load after a restart.
    assert!(
        count.trim().parse::<usize>().unwrap() <= bad_offset,
        "no row of the bad record or after it: {count}"
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

#[test]
fn a_row_bigquery_refuses_is_handled_by_errors_tolerance() {
    let test = "a_row_bigquery_refuses_is_handled_by_errors_tolerance";
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    let topic = "people";
    broker.create_topic(topic, 1);
    let lines: Vec<String> = [
        r#"{"id": 1, "name": "a"}"#,
        r#"{"id": 2, "name": "b"}"#,
        r#"{"id": "three", "name": "c"}"#,
        r#"{"id": 4, "name": "d"}"#,
    ]
    .map(str::to_string)
    .to_vec();
    produce_lines(&broker.bootstrap, topic, 0, &lines);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let json = [
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("value.converter.schemas.enable", "false"),
    ];
    let columns = serde_json::json!([
        {"name": "id", "type": "INTEGER", "mode": "REQUIRED"},
        {"name": "name", "type": "STRING", "mode": "NULLABLE"},
    ]);

    // none: the task fails with one line naming the record and BigQuery's reason.
    bq.create_table(DATASET, "people_strict", columns.clone());
    let c = connector(
        dir.path(),
        "bq-refused-none",
        topic,
        &bq,
        &[json[0], json[1], ("topic2TableMap", "people:people_strict")],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&c]);
    assert!(
        wait_until(Duration::from_secs(60), || ferry
            .log()
            .contains("Task failed")),
        "{}",
        ferry.log()
    );
    let log = ferry.log();
    assert!(
        log.contains("offset=2")
            && log.contains("BigQuery refused its row for test.ztf.people_strict"),
        "{log}"
    );
    ferry.signal("TERM");
    ferry.wait(Duration::from_secs(30));
    assert!(committed(&broker.bootstrap, "connect-bq-refused-none", topic, 1)[0] <= 2);

    // all: the refused row is logged and skipped, the others load, offsets advance.
    bq.create_table(DATASET, "people_tolerant", columns);
    let c = connector(
        dir.path(),
        "bq-refused-all",
        topic,
        &bq,
        &[
            json[0],
            json[1],
            ("topic2TableMap", "people:people_tolerant"),
            ("errors.tolerance", "all"),
        ],
    );
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    assert!(
        log.contains("Skipping a record") && log.contains("offset=2"),
        "{log}"
    );
    let count = checked(
        bq.check(&["count", "--table", &format!("{DATASET}.people_tolerant")]),
        "tolerant",
    );
    assert_eq!(count.trim(), "3");
    assert_eq!(
        committed(&broker.bootstrap, "connect-bq-refused-all", topic, 1),
        vec![4]
    );
}

/// Issue 14 item 5 (KIP-610): the rows the BigQuery sink cannot load — one BigQuery
/// refuses (a string for an INTEGER column), one it cannot make a row of (a JSON array) —
/// reach the dead-letter topic as they were read, at stage TASK_PUT, with the sink's reason
/// in `__connect.errors.exception.message`; the other rows load and every offset is
/// committed.
#[test]
fn rows_bigquery_refuses_or_cannot_build_reach_the_dead_letter_topic_with_the_sinks_reason() {
    let test =
        "rows_bigquery_refuses_or_cannot_build_reach_the_dead_letter_topic_with_the_sinks_reason";
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    let topic = "people";
    broker.create_topic(topic, 1);
    broker.create_topic("people-dlq", 1);
    let lines: Vec<String> = [
        r#"{"id": 1, "name": "a"}"#,
        r#"{"id": 2, "name": "b"}"#,
        r#"{"id": "three", "name": "c"}"#,
        r#"[1, 2]"#,
        r#"{"id": 5, "name": "e"}"#,
    ]
    .map(str::to_string)
    .to_vec();
    produce_lines(&broker.bootstrap, topic, 0, &lines);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    bq.create_table(
        DATASET,
        "people_dlq",
        serde_json::json!([
            {"name": "id", "type": "INTEGER", "mode": "REQUIRED"},
            {"name": "name", "type": "STRING", "mode": "NULLABLE"},
        ]),
    );
    let c = connector(
        dir.path(),
        "bq-dlq",
        topic,
        &bq,
        &[
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
            ("topic2TableMap", "people:people_dlq"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", "people-dlq"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
        ],
    );
    run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    let count = checked(
        bq.check(&["count", "--table", &format!("{DATASET}.people_dlq")]),
        "people_dlq",
    );
    assert_eq!(count.trim(), "3");
    assert_eq!(
        committed(&broker.bootstrap, "connect-bq-dlq", topic, 1),
        vec![5]
    );
    let letters = kcat_records_until(&broker.bootstrap, "people-dlq", 2, Duration::from_secs(30));
    assert_eq!(letters.len(), 2, "{letters:?}");
    let header = |letter: &serde_json::Value, key: &str| -> String {
        letter["headers"][key]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // The row it cannot build is reported at put, the refused one once BigQuery answers.
    for (offset, reason) in [
        ("2", "BigQuery refused its row for test.ztf.people_dlq"),
        ("3", "a schemaless row needs a JSON object"),
    ] {
        let letter = letters
            .iter()
            .find(|l| header(l, "__connect.errors.offset") == offset)
            .unwrap_or_else(|| panic!("no dead letter for offset {offset}: {letters:?}"));
        let read = &lines[offset.parse::<usize>().unwrap()];
        assert_eq!(letter["payload"].as_str(), Some(read.as_str()));
        assert_eq!(header(letter, "__connect.errors.offset"), offset);
        assert_eq!(header(letter, "__connect.errors.stage"), "TASK_PUT");
        let message = header(letter, "__connect.errors.exception.message");
        assert!(message.contains(reason), "offset {offset}: {message}");
    }
}

/// An Avro container file holding one record of `schema`.
fn avro_file(schema: &str, fields: Vec<(&str, apache_avro::types::Value)>) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(schema).unwrap();
    let mut writer = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
    let record = apache_avro::types::Value::Record(
        fields
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
    );
    writer.append_value(record).unwrap();
    writer.into_inner().unwrap()
}

#[test]
fn a_schema_that_adds_a_field_widens_the_table_and_one_that_changes_a_type_is_refused() {
    let test = "a_schema_that_adds_a_field_widens_the_table_and_one_that_changes_a_type_is_refused";
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    widen_and_refuse(&bq, "bq-evolving", &[]);
}

#[test]
fn a_table_widened_under_the_storage_write_api_gets_a_new_stream_that_knows_its_columns() {
    let test =
        "a_table_widened_under_the_storage_write_api_gets_a_new_stream_that_knows_its_columns";
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    let log = widen_and_refuse(&bq, "bq-evolving-sw", &storage_write(&bq));
    // One stream for the first columns, one after `band` was added.
    assert_eq!(
        log.matches("Created a COMMITTED write stream").count(),
        2,
        "{log}"
    );
}

/// Three Avro schemas in one topic: v1, v2 adding a nullable `band`, one changing `id`'s
/// type, then v1 again. The table is widened for v2, the changed record is refused by
/// errors.tolerance=all, and rows 1, 2 and 4 load. Returns ferry's log.
fn widen_and_refuse(bq: &BigQueryEmulator, name: &str, extra: &[(&str, &str)]) -> String {
    use apache_avro::types::Value as A;
    let v1 = r#"{"type":"record","name":"obs","fields":[{"name":"id","type":"long"},{"name":"mag","type":"double"}]}"#;
    let v2 = r#"{"type":"record","name":"obs","fields":[{"name":"id","type":"long"},{"name":"mag","type":"double"},{"name":"band","type":["null","string"],"default":null}]}"#;
    let changed = r#"{"type":"record","name":"obs","fields":[{"name":"id","type":"string"},{"name":"mag","type":"double"}]}"#;
    let records = [
        avro_file(v1, vec![("id", A::Long(1)), ("mag", A::Double(18.5))]),
        avro_file(
            v2,
            vec![
                ("id", A::Long(2)),
                ("mag", A::Double(19.0)),
                ("band", A::Union(1, Box::new(A::String("g".into())))),
            ],
        ),
        avro_file(
            changed,
            vec![("id", A::String("three".into())), ("mag", A::Double(20.0))],
        ),
        avro_file(v1, vec![("id", A::Long(4)), ("mag", A::Double(17.0))]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = records
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let p = dir.path().join(format!("{i}.avro"));
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect();
    let mut broker = Broker::start(1, 0);
    let topic = "evolving";
    broker.create_topic(topic, 1);
    produce_files(&broker.bootstrap, topic, 0, &files);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let mut pairs = vec![
        ("value.converter", "ferry.converters.AvroContainerConverter"),
        ("allowNewBigQueryFields", "true"),
        ("errors.tolerance", "all"),
    ];
    pairs.extend_from_slice(extra);
    let c = connector(dir.path(), name, topic, bq, &pairs);
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    assert!(log.contains("Added columns"), "{log}");
    assert!(
        log.contains("offset=2") && log.contains("id: INTEGER in the table, STRING in the record"),
        "the refused record is named with both types: {log}"
    );
    let names: Vec<String> = bq
        .schema(DATASET, topic)
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["id", "mag", "band"]);
    let rows = bq.query(&format!(
        "SELECT id, band FROM `{}.{DATASET}.{topic}` ORDER BY id",
        bq.project
    ));
    let got: Vec<(String, serde_json::Value)> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["f"][0]["v"].as_str().unwrap().to_string(),
                r["f"][1]["v"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("1".into(), serde_json::Value::Null),
            ("2".into(), serde_json::json!("g")),
            ("4".into(), serde_json::Value::Null)
        ]
    );
    log
}

#[test]
fn kill_9_mid_run_and_restart_loses_no_row() {
    let Some(bq) = emulator_or_skip("kill_9_mid_run_and_restart_loses_no_row") else {
        return;
    };
    // insertId (topic-partition-offset) de-duplicates a retry within BigQuery's window, on
    // a best-effort basis: duplicates are allowed, up to the rows past the last commit.
    kill_9_and_restart(&bq, "bq-kill", &[], Restart::Bounded);
}

#[test]
fn kill_9_mid_run_and_restart_with_the_storage_write_api_writes_every_row_once() {
    let Some(bq) = emulator_or_skip(
        "kill_9_mid_run_and_restart_with_the_storage_write_api_writes_every_row_once",
    ) else {
        return;
    };
    // The restarted tasks continue the partitions' streams from the commit metadata in the
    // offset file: rows BigQuery got after the last commit are found, not written again.
    let grpc = bq.grpc.clone();
    kill_9_and_restart(
        &bq,
        "bq-kill-sw",
        &[
            ("useStorageWriteApi", "true"),
            ("ferry.bigquery.storage.endpoint", &grpc),
        ],
        Restart::ExactlyOnce,
    );
}

#[test]
fn kill_9_and_restart_from_the_groups_commits_alone_writes_every_row_once() {
    let test = "kill_9_and_restart_from_the_groups_commits_alone_writes_every_row_once";
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    // The offset file is deleted at the kill: the streams' positions come back from the
    // metadata of the consumer group's commits.
    let grpc = bq.grpc.clone();
    kill_9_and_restart(
        &bq,
        "bq-kill-group",
        &[
            ("useStorageWriteApi", "true"),
            ("ferry.bigquery.storage.endpoint", &grpc),
        ],
        Restart::ExactlyOnceWithoutTheFile,
    );
}

#[test]
fn a_restart_finds_where_the_stream_ends_inside_a_request_and_writes_every_row_once() {
    let test = "a_restart_finds_where_the_stream_ends_inside_a_request_and_writes_every_row_once";
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    // The first run gets its records a few at a time, so they go in small appends, and is
    // killed between commits; the second gets them all at once, so its first request
    // covers the stream's end and the writer must find it by bisection.
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    let topic = "trickle";
    broker.create_topic(topic, 1);
    let lines = numbered(0, 300);
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("offset.flush.interval.ms", "600000")],
    );
    let grpc = bq.grpc.clone();
    let c = connector(
        dir.path(),
        "bq-trickle",
        topic,
        &bq,
        &[
            ("ferry.bigquery.mode", "raw"),
            ("useStorageWriteApi", "true"),
            ("ferry.bigquery.storage.endpoint", &grpc),
        ],
    );
    let table = format!("{DATASET}.{topic}");
    let rows_now = || bq.row_count(&table);
    let mut first = Ferry::standalone(dir.path(), &worker, &[&c]);
    for chunk in lines[..120].chunks(12) {
        produce_lines(&broker.bootstrap, topic, 0, chunk);
        std::thread::sleep(Duration::from_millis(1300));
    }
    let written = wait_until(Duration::from_secs(30), || rows_now() >= 100);
    first.signal("KILL");
    first.wait(Duration::from_secs(10));
    assert!(written, "the first run wrote too little: {}", first.log());
    let at_kill = rows_now();
    let committed_at_kill =
        offset_file(&dir.path().join("connect.offsets"))["bq-trickle"][&format!("{topic}-0")];
    assert!(
        (at_kill as i64) > committed_at_kill,
        "{at_kill} rows, {committed_at_kill} committed: nothing past the commit"
    );
    produce_lines(&broker.bootstrap, topic, 0, &lines[120..]);
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    assert!(
        log.contains("Found where the write stream ends"),
        "no bisection: {log}"
    );
    let sent: BTreeMap<(i32, i64), Vec<u8>> = lines
        .into_iter()
        .enumerate()
        .map(|(o, l)| ((0, o as i64), l.into_bytes()))
        .collect();
    let expect = dir.path().join("expect.jsonl");
    std::fs::write(&expect, expectation(topic, &sent)).unwrap();
    // Exactly once: no --allow-duplicates.
    let out = checked(
        bq.check(&[
            "raw",
            "--table",
            &table,
            "--expect",
            expect.to_str().unwrap(),
        ]),
        "after the restart",
    );
    assert!(out.contains(&format!("OK {} rows", sent.len())), "{out}");
}

#[test]
fn a_task_with_more_partitions_than_the_server_has_call_slots_loads_them_all() {
    let test = "a_task_with_more_partitions_than_the_server_has_call_slots_loads_them_all";
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    // The emulator serves 16 calls at once; a task that kept an AppendRows call open per
    // partition would wait forever for its next CreateWriteStream.
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    let topic = "wide";
    let partitions = 24;
    broker.create_topic(topic, partitions);
    let mut sent: BTreeMap<(i32, i64), Vec<u8>> = BTreeMap::new();
    for p in 0..partitions {
        let lines = numbered(p, 20);
        produce_lines(&broker.bootstrap, topic, p, &lines);
        for (o, l) in lines.into_iter().enumerate() {
            sent.insert((p, o as i64), l.into_bytes());
        }
    }
    let expect = dir.path().join("expect.jsonl");
    std::fs::write(&expect, expectation(topic, &sent)).unwrap();
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let grpc = bq.grpc.clone();
    let c = connector(
        dir.path(),
        "bq-wide",
        topic,
        &bq,
        &[
            ("ferry.bigquery.mode", "raw"),
            ("useStorageWriteApi", "true"),
            ("ferry.bigquery.storage.endpoint", &grpc),
        ],
    );
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    assert_eq!(
        log.matches("Created a COMMITTED write stream").count(),
        partitions as usize,
        "{log}"
    );
    let out = checked(
        bq.check(&[
            "raw",
            "--table",
            &format!("{DATASET}.{topic}"),
            "--expect",
            expect.to_str().unwrap(),
        ]),
        "a table of many partitions",
    );
    assert!(out.contains(&format!("OK {} rows", sent.len())), "{out}");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restart {
    /// Duplicates allowed, at most the rows past the commit at the kill.
    Bounded,
    /// No duplicate, and rows past the commit at the kill (so the check means something).
    ExactlyOnce,
    /// The same, with the offset file removed before the restart.
    ExactlyOnceWithoutTheFile,
}

/// Raw mode, 4 × 5 000 records over two tasks: ferry is killed (SIGKILL) once the table is
/// partly loaded, then run again to the end. Every record must be in the table; the only
/// extra rows allowed are copies of rows in it at the kill past the committed offsets.
fn kill_9_and_restart(bq: &BigQueryEmulator, name: &str, extra: &[(&str, &str)], how: Restart) {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    let topic = "numbers";
    broker.create_topic(topic, 4);
    let per_partition = 5000;
    let mut sent: BTreeMap<(i32, i64), Vec<u8>> = BTreeMap::new();
    for p in 0..4 {
        let lines = numbered(p, per_partition);
        produce_lines(&broker.bootstrap, topic, p, &lines);
        for (o, l) in lines.into_iter().enumerate() {
            sent.insert((p, o as i64), l.into_bytes());
        }
    }
    let expect = dir.path().join("expect.jsonl");
    std::fs::write(&expect, expectation(topic, &sent)).unwrap();
    // Commits 2 s apart: the kill lands between commits with rows in BigQuery past them.
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("offset.flush.interval.ms", "2000")],
    );
    let mut pairs = vec![("ferry.bigquery.mode", "raw"), ("tasks.max", "2")];
    pairs.extend_from_slice(extra);
    let c = connector(dir.path(), name, topic, bq, &pairs);
    let group = format!("connect-{name}");
    let table = format!("{DATASET}.{topic}");
    let rows_now = || bq.row_count(&table);
    let offsets = dir.path().join("connect.offsets");
    // The file is replaced atomically, so it is whole whenever it exists.
    let committed_in_file = || -> i64 {
        if !offsets.exists() {
            return 0;
        }
        offset_file(&offsets)
            .get(name)
            .map_or(0, |p| p.values().sum())
    };
    let mut first = Ferry::standalone(dir.path(), &worker, &[&c]);
    // Killed once the table holds rows past the last commit (a kill right after a commit,
    // with nothing appended since, would prove nothing).
    let started = wait_until(Duration::from_secs(90), || {
        let n = rows_now();
        n >= 2000 && n < sent.len() && n as i64 > committed_in_file()
    });
    first.signal("KILL");
    first.wait(Duration::from_secs(10));
    assert!(started, "never saw a partial table: {}", first.log());
    let at_kill = rows_now();
    let in_file: i64 = offset_file(&offsets)
        .get(name)
        .map_or(0, |parts| parts.values().sum());
    let in_group: i64 = committed(&broker.bootstrap, &group, topic, 4)
        .iter()
        .map(|&o| o.max(0))
        .sum();
    eprintln!(
        "{name}: killed at {at_kill} rows; offsets committed: {in_file} in the file, {in_group} in the group"
    );
    let resumed_from = if how == Restart::ExactlyOnceWithoutTheFile {
        std::fs::remove_file(&offsets).unwrap();
        in_group
    } else {
        in_file
    };
    if how != Restart::Bounded {
        assert!(
            at_kill > resumed_from as usize,
            "the kill should leave rows past the commit ({at_kill} rows, {resumed_from} committed); the test proves nothing otherwise"
        );
    }

    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(180));
    if how != Restart::Bounded {
        assert!(
            log.contains("Resuming the partition's write stream")
                && log.contains("not written twice"),
            "{log}"
        );
    }
    let out = checked(
        bq.check(&[
            "raw",
            "--table",
            &table,
            "--expect",
            expect.to_str().unwrap(),
            "--allow-duplicates",
        ]),
        "after restart",
    );
    eprintln!("{name}: check.py: {}", out.trim());
    let duplicates: usize = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("duplicates="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        out.contains(&format!("OK {} rows", sent.len() + duplicates)),
        "every record once, plus the duplicates: {out}"
    );
    if how == Restart::Bounded {
        // Only rows inserted after the last commit can come again.
        assert!(
            duplicates <= at_kill.saturating_sub(resumed_from as usize),
            "{duplicates} duplicates; {at_kill} rows at the kill, {resumed_from} committed"
        );
    } else {
        assert_eq!(duplicates, 0, "{out}");
    }
}

/// Schema v1 of the Confluent tests' records, and v2, which adds an optional `band`.
const OBS_V1: &str = r#"{"type":"record","name":"obs","namespace":"test.confluent","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"mag","type":["null","double"],"default":null},{"name":"tags","type":{"type":"array","items":"string"}}]}"#;
const OBS_V2: &str = r#"{"type":"record","name":"obs","namespace":"test.confluent","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"mag","type":["null","double"],"default":null},{"name":"tags","type":{"type":"array","items":"string"}},{"name":"band","type":["null","string"],"default":null}]}"#;

/// Frames `records` (plain values, one object each) for schema `id` with
/// tests/bigquery/confluent_frame.py — fastavro, not ferry — and returns the files.
fn confluent_frames(
    bq: &BigQueryEmulator,
    dir: &Path,
    tag: &str,
    schema: &str,
    id: i32,
    records: &[serde_json::Value],
) -> Vec<PathBuf> {
    let schema_path = dir.join(format!("{tag}.avsc"));
    std::fs::write(&schema_path, schema).unwrap();
    let lines = dir.join(format!("{tag}.jsonl"));
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&lines, text).unwrap();
    let out = dir.join(tag);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bigquery/confluent_frame.py");
    let status = std::process::Command::new(bq.python())
        .arg(script)
        .arg(&schema_path)
        .arg(id.to_string())
        .arg(&lines)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "confluent_frame.py failed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// `n` records of v1 (or v2 with a band) with ids from `first`.
fn observations(first: i64, n: i64, v2: bool) -> Vec<serde_json::Value> {
    (first..first + n)
        .map(|i| {
            let mut r = serde_json::json!({
                "id": i,
                "name": format!("obj-{i}"),
                // Never a whole number, so that its text is the same in Rust and BigQuery.
                "mag": if i % 3 == 0 { serde_json::Value::Null } else { serde_json::json!((2 * i + 1) as f64 / 8.0) },
                "tags": (0..1 + i % 3).map(|t| format!("t{t}")).collect::<Vec<_>>(),
            });
            if v2 {
                r["band"] = serde_json::json!(if i % 2 == 0 { "g" } else { "r" });
            }
            r
        })
        .collect()
}

/// `SELECT id, name, mag, ARRAY_LENGTH(tags), band` of a table, ordered by id, as text.
fn observation_rows(bq: &BigQueryEmulator, table: &str, with_band: bool) -> Vec<String> {
    let band = if with_band { "band" } else { "NULL" };
    let reply = bq.query(&format!(
        "SELECT id, name, mag, ARRAY_LENGTH(tags), {band} FROM `{}.{DATASET}.{table}` ORDER BY id",
        bq.project
    ));
    reply["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    let cells: Vec<String> = r["f"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c["v"].as_str().unwrap_or("null").to_string())
                        .collect();
                    cells.join("|")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What `observation_rows` must read for the records of `observations`.
fn expected_rows(records: &[serde_json::Value]) -> Vec<String> {
    let mut rows: Vec<(i64, String)> = records
        .iter()
        .map(|r| {
            let id = r["id"].as_i64().unwrap();
            let mag = match r["mag"].as_f64() {
                Some(m) => format!("{m}"),
                None => "null".into(),
            };
            let band = r["band"].as_str().unwrap_or("null");
            let tags = r["tags"].as_array().unwrap().len();
            (
                id,
                format!("{id}|{}|{mag}|{tags}|{band}", r["name"].as_str().unwrap()),
            )
        })
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, r)| r).collect()
}

#[test]
fn confluent_avro_records_load_with_their_schemas_from_the_registry() {
    let test = "confluent_avro_records_load_with_their_schemas_from_the_registry";
    let Some(registry) = common::registry::SchemaRegistry::start_or_skip(test) else {
        return;
    };
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let v1 = registry.register("observations-value", OBS_V1);
    let v2 = registry.register("observations-value", OBS_V2);
    assert_ne!(v1, v2);
    let first = observations(0, 10, false);
    let second = observations(10, 10, true);
    let mut files = confluent_frames(&bq, dir.path(), "v1", OBS_V1, v1, &first);
    // Offset 10: an id the registry does not have; offset 11: not Confluent-framed at all.
    let unknown = dir.path().join("unknown.bin");
    let mut framed = std::fs::read(&files[0]).unwrap();
    framed[1..5].copy_from_slice(&(v2 + 1000).to_be_bytes());
    std::fs::write(&unknown, framed).unwrap();
    let plain = dir.path().join("plain.bin");
    std::fs::write(&plain, b"{\"id\": 99}").unwrap();
    files.push(unknown);
    files.push(plain);
    files.extend(confluent_frames(&bq, dir.path(), "v2", OBS_V2, v2, &second));
    let mut broker = Broker::start(1, 0);
    let topic = "observations";
    broker.create_topic(topic, 1);
    produce_files(&broker.bootstrap, topic, 0, &files);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = connector(
        dir.path(),
        "bq-confluent",
        topic,
        &bq,
        &[
            ("value.converter", "io.confluent.connect.avro.AvroConverter"),
            ("value.converter.schema.registry.url", &registry.url),
            ("allowNewBigQueryFields", "true"),
            ("errors.tolerance", "all"),
            ("timePartitioningType", "NONE"),
        ],
    );
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    assert!(
        log.contains("offset=10")
            && log.contains(&format!(
                "schema id {} is not in the schema registry",
                v2 + 1000
            )),
        "{log}"
    );
    assert!(
        log.contains("offset=11") && log.contains("not in Confluent's wire format"),
        "{log}"
    );
    let mut all = first.clone();
    all.extend(second);
    assert_eq!(observation_rows(&bq, topic, true), expected_rows(&all));
    assert_eq!(
        committed(&broker.bootstrap, "connect-bq-confluent", topic, 1),
        vec![22]
    );
}

#[test]
fn an_unreachable_schema_registry_holds_records_back_instead_of_skipping_them() {
    let test = "an_unreachable_schema_registry_holds_records_back_instead_of_skipping_them";
    let Some(registry) = common::registry::SchemaRegistry::start_or_skip(test) else {
        return;
    };
    let Some(bq) = emulator_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let id = registry.register("frozen-value", OBS_V1);
    let records = observations(0, 30, false);
    let files = confluent_frames(&bq, dir.path(), "v1", OBS_V1, id, &records);
    let mut broker = Broker::start(1, 0);
    let topic = "frozen";
    broker.create_topic(topic, 2);
    produce_files(&broker.bootstrap, topic, 0, &files[..15]);
    produce_files(&broker.bootstrap, topic, 1, &files[15..]);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = connector(
        dir.path(),
        "bq-frozen-registry",
        topic,
        &bq,
        &[
            ("value.converter", "io.confluent.connect.avro.AvroConverter"),
            ("value.converter.schema.registry.url", &registry.url),
            // A skip would be allowed: the test proves none happens.
            ("errors.tolerance", "all"),
            ("errors.retry.delay.max.ms", "2000"),
            ("timePartitioningType", "NONE"),
        ],
    );
    // Frozen: connections are accepted by the kernel and never answered, so each fetch
    // waits out ferry's 10 s request timeout, as with a hung registry.
    registry.signal("STOP");
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&c]);
    let held = wait_until(Duration::from_secs(60), || {
        ferry.log().contains("Records cannot be decoded yet")
    });
    registry.signal("CONT");
    assert!(held, "{}", ferry.log());
    let table = format!("{DATASET}.{topic}");
    let loaded = wait_until(Duration::from_secs(90), || {
        bq.row_count(&table) == records.len()
    });
    ferry.signal("TERM");
    let status = ferry.wait(Duration::from_secs(30));
    let log = ferry.log();
    assert!(loaded && status.success(), "{status:?}\n{log}");
    assert!(!log.contains("Skipping a record"), "{log}");
    assert_eq!(observation_rows(&bq, topic, false), expected_rows(&records));
    assert_eq!(
        committed(&broker.bootstrap, "connect-bq-frozen-registry", topic, 2),
        vec![15, 15]
    );
}
