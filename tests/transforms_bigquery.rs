//! Single message transforms into the BigQuery sink, against the `local-bigquery`
//! emulator: records produced by kcat into the mock Kafka cluster, routed by
//! TimestampRouter to one table per day, with an inserted field and an excluded one, test
//! topics filtered out; the rows read back through the emulator's REST API.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::bigquery::BigQueryEmulator;
use common::emulator::skip;
use common::*;

const DATASET: &str = "smt";

#[test]
fn routed_records_load_into_per_day_tables_with_the_inserted_field() {
    let test = "routed_records_load_into_per_day_tables_with_the_inserted_field";
    let bq = match BigQueryEmulator::start() {
        Ok(e) => e,
        Err(reason) => {
            skip(test, &reason);
            return;
        }
    };
    bq.create_dataset(DATASET);
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("people", 1);
    broker.create_topic("test-people", 1);
    let columns = serde_json::json!([
        {"name": "id", "type": "INTEGER", "mode": "REQUIRED"},
        {"name": "name", "type": "STRING", "mode": "NULLABLE"},
        {"name": "survey", "type": "STRING", "mode": "NULLABLE"},
    ]);
    // TimestampRouter names the table after the records' timestamps (kcat's: now, UTC).
    let today = || jiff::Timestamp::now().strftime("%Y%m%d").to_string();
    let before = today();
    bq.create_table(DATASET, &format!("people_{before}"), columns.clone());
    let people: Vec<String> = (1..=4)
        .map(|i| format!(r#"{{"id":{i},"name":"n{i}","secret":"s{i}"}}"#))
        .collect();
    produce_lines(&broker.bootstrap, "people", 0, &people);
    produce_lines(&broker.bootstrap, "test-people", 0, &people[..2]);
    let after = today();
    if after != before {
        bq.create_table(DATASET, &format!("people_{after}"), columns.clone());
    }

    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = dir.path().join("bq-smt.properties");
    write_props(
        &c,
        &[
            ("name", "bq-smt"),
            (
                "connector.class",
                "com.wepay.kafka.connect.bigquery.BigQuerySinkConnector",
            ),
            ("topics", "people,test-people"),
            ("project", bq.project.as_str()),
            ("defaultDataset", DATASET),
            ("ferry.bigquery.endpoint", bq.rest.as_str()),
            ("ferry.bigquery.emulator", "true"),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
            ("transforms", "tag,route,dropTests,slim"),
            (
                "transforms.tag.type",
                "org.apache.kafka.connect.transforms.InsertField$Value",
            ),
            ("transforms.tag.static.field", "survey"),
            ("transforms.tag.static.value", "ztf"),
            (
                "transforms.route.type",
                "org.apache.kafka.connect.transforms.TimestampRouter",
            ),
            ("transforms.route.topic.format", "${topic}_${timestamp}"),
            ("transforms.route.timestamp.format", "yyyyMMdd"),
            ("transforms.dropTests.type", "Filter"),
            ("transforms.dropTests.predicate", "isTest"),
            ("transforms.slim.type", "ReplaceField$Value"),
            ("transforms.slim.exclude", "secret"),
            ("predicates", "isTest"),
            ("predicates.isTest.type", "TopicNameMatches"),
            ("predicates.isTest.pattern", "test-.*"),
        ],
    );
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));

    let mut rows = bq.records(DATASET, &format!("people_{before}"));
    if after != before {
        rows.extend(bq.records(DATASET, &format!("people_{after}")));
    }
    let mut got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["survey"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String, String)> = (1..=4)
        .map(|i| (i.to_string(), format!("n{i}"), "ztf".to_string()))
        .collect();
    assert_eq!(got, want, "{log}");
    // Offsets stay with the consumed topics; the filtered topic is committed too.
    assert_eq!(
        committed(&broker.bootstrap, "connect-bq-smt", "people", 1),
        vec![4]
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-bq-smt", "test-people", 1),
        vec![2]
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// With the Storage Write API each partition writes through one stream on one table: a
/// router that sends one partition's records to two tables fails the task with one line,
/// rather than appending the second table's rows to the first table's stream.
#[test]
fn storage_write_refuses_one_partition_routed_to_two_tables() {
    let test = "storage_write_refuses_one_partition_routed_to_two_tables";
    let bq = match BigQueryEmulator::start() {
        Ok(e) => e,
        Err(reason) => {
            skip(test, &reason);
            return;
        }
    };
    bq.create_dataset(DATASET);
    let columns = serde_json::json!([
        {"name": "id", "type": "INTEGER", "mode": "REQUIRED"},
    ]);
    // TimestampRouter by the second: every possible table exists.
    for s in 0..60 {
        bq.create_table(DATASET, &format!("sec_{s:02}"), columns.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("sec", 1);
    // Two records in two different seconds, same partition.
    produce_lines(&broker.bootstrap, "sec", 0, &[r#"{"id":1}"#.to_string()]);
    let first = jiff::Timestamp::now().as_second();
    assert!(wait_until(Duration::from_secs(3), || {
        jiff::Timestamp::now().as_second() > first
    }));
    produce_lines(&broker.bootstrap, "sec", 0, &[r#"{"id":2}"#.to_string()]);

    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = dir.path().join("bq-sec.properties");
    write_props(
        &c,
        &[
            ("name", "bq-sec"),
            ("connector.class", "BigQuerySinkConnector"),
            ("topics", "sec"),
            ("project", bq.project.as_str()),
            ("defaultDataset", DATASET),
            ("ferry.bigquery.endpoint", bq.rest.as_str()),
            ("ferry.bigquery.emulator", "true"),
            ("useStorageWriteApi", "true"),
            ("ferry.bigquery.storage.endpoint", bq.grpc.as_str()),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
            ("transforms", "route"),
            ("transforms.route.type", "TimestampRouter"),
            ("transforms.route.topic.format", "${topic}_${timestamp}"),
            ("transforms.route.timestamp.format", "ss"),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&c]);
    let failed = wait_until(Duration::from_secs(60), || {
        ferry.log().contains("Task failed")
    });
    let log = ferry.log();
    assert!(failed, "{log}");
    assert!(
        log.contains("partition sec-0 has rows for table")
            && log.contains("remove useStorageWriteApi"),
        "{log}"
    );
    ferry.signal("TERM");
    ferry.wait(Duration::from_secs(30));
    // No table holds both records: the second did not go to the first one's table.
    for s in 0..60 {
        let rows = bq.rows(DATASET, &format!("sec_{s:02}"));
        assert!(rows.len() <= 1, "sec_{s:02}: {rows:?}\n{log}");
    }
    assert!(committed(&broker.bootstrap, "connect-bq-sec", "sec", 1)[0] <= 1);
}
