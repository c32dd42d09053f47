//! The BigQuery test harness itself: the emulator starts from the project's own scripts
//! (or the test records a counted skip), answers REST calls made with curl, and the
//! independent checker (tests/bigquery/check.py, Google's Python client) reads what was
//! written, and fails on what was not.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::json;

use common::bigquery::BigQueryEmulator;
use common::emulator::skip;

#[test]
fn emulator_starts_and_answers() {
    let test = "emulator_starts_and_answers";
    let bq = match BigQueryEmulator::start() {
        Ok(bq) => bq,
        Err(reason) => return skip(test, &reason),
    };
    bq.create_dataset("harness");
    // The shape of ferry's raw table: one Kafka record per row.
    bq.create_table(
        "harness",
        "raw",
        json!([
            {"name": "topic", "type": "STRING", "mode": "REQUIRED"},
            {"name": "partition", "type": "INT64", "mode": "REQUIRED"},
            {"name": "offset", "type": "INT64", "mode": "REQUIRED"},
            {"name": "timestamp", "type": "TIMESTAMP"},
            {"name": "key", "type": "BYTES"},
            {"name": "value", "type": "BYTES"},
            {"name": "headers", "type": "RECORD", "mode": "REPEATED", "fields": [
                {"name": "key", "type": "STRING"},
                {"name": "value", "type": "BYTES"},
            ]},
        ]),
    );
    // "AP8Q" = 00 ff 10, "aGk=" = "hi", "AQI=" = 01 02.
    bq.insert_rows(
        "harness",
        "raw",
        &[
            json!({"topic": "t", "partition": 0, "offset": 7,
                   "timestamp": "2024-01-02T03:04:05.123Z", "key": "aGk=", "value": "AP8Q",
                   "headers": [{"key": "h", "value": "AQI="}]}),
            json!({"topic": "t", "partition": 1, "offset": 0,
                   "timestamp": "2024-01-02T03:04:05Z", "key": null, "value": null,
                   "headers": []}),
        ],
    );

    let rows = bq.rows("harness", "raw");
    assert_eq!(rows.len(), 2, "tabledata.list: {rows:?}");
    let mut records = bq.records("harness", "raw");
    records.sort_by_key(|r| r["partition"].as_str().unwrap().to_string());
    let first = &records[0];
    assert_eq!(first["topic"], "t");
    assert_eq!(first["offset"], "7");
    assert_eq!(first["timestamp"], "1704164645123000", "int64 micros");
    assert_eq!(first["key"], "aGk=");
    assert_eq!(first["value"], "AP8Q");
    assert_eq!(first["headers"][0]["key"], "h");
    // Nested BYTES come back encoded once more by local-bigquery 0.4.0 (base64 of "AQI=");
    // a BigQuery that stores them right gives "AQI=".
    let nested = first["headers"][0]["value"].as_str().unwrap();
    assert!(
        nested == "QVFJPQ==" || nested == "AQI=",
        "header value {nested}"
    );
    let second = &records[1];
    assert_eq!(second["key"], json!(null));
    assert_eq!(second["value"], json!(null));
    assert_eq!(second["headers"], json!([]));

    let count = bq.query("SELECT COUNT(*) AS n FROM `test.harness.raw`");
    assert_eq!(count["rows"][0]["f"][0]["v"], "2", "jobs.query: {count}");

    let out = bq.check(&["count", "--table", "harness.raw"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check.py count: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "2");

    // The raw checker passes on exactly what was written (headers included, through its
    // nested-BYTES probe), and fails, naming the row, on a value with another digest.
    let expect = |name: &str, value_sha256: &str| {
        let path = bq.path().join(name);
        let lines = [
            json!({"topic": "t", "partition": 0, "offset": 7, "value_sha256": value_sha256,
                   "key_b64": "aGk=", "timestamp_ms": 1_704_164_645_123_i64,
                   "headers": [["h", "AQI="]]}),
            json!({"topic": "t", "partition": 1, "offset": 0, "value_sha256": null,
                   "key_b64": null}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, text).unwrap();
        path
    };
    // sha256 of 00 ff 10, and of 00 ff 11.
    let good = expect(
        "good.jsonl",
        "2da45f2cd1f9c8e69a67abf7a6b26c282533d0a7686787a9533265418680d4d2",
    );
    let bad = expect(
        "bad.jsonl",
        "30839c5ca1457fbfcc1eb092105577319fe48cb01ba11aee56736d17f2d2d406",
    );
    let raw = |expect: &std::path::Path| {
        let out = bq.check(&[
            "raw",
            "--table",
            "harness.raw",
            "--expect",
            expect.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };
    let (code, stdout, stderr) = raw(&good);
    assert_eq!(code, Some(0), "check.py raw: {stdout}{stderr}");
    assert_eq!(stdout.trim(), "OK 2 rows");
    let (code, stdout, stderr) = raw(&bad);
    assert_eq!(
        code,
        Some(1),
        "check.py raw (wrong digest): {stdout}{stderr}"
    );
    assert!(
        stdout.starts_with("t/0@7: value sha256 2da45f2c"),
        "check.py raw (wrong digest): {stdout}"
    );
}
