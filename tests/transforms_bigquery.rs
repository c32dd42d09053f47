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
