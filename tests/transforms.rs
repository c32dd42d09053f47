//! Single message transforms end to end: a real ferry process reading the mock Kafka
//! cluster (data produced by kcat), a chain of Kafka Connect's transforms in the connector
//! file, the file sink's output and the committed offsets checked; and the bad inputs
//! (`ferry validate`'s one line) and a transform failing on a record under both
//! tolerances.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const GENEROUS: Duration = Duration::from_secs(90);

const JSON: [(&str, &str); 2] = [
    (
        "value.converter",
        "org.apache.kafka.connect.json.JsonConverter",
    ),
    ("value.converter.schemas.enable", "false"),
];

/// Issue 14's chain: a static field, routing by timestamp, test topics filtered out, a
/// field excluded. Records with a `raw` header pass through the value transforms
/// untouched (only routed), so that their bytes must reach the file unchanged.
const CHAIN: &[(&str, &str)] = &[
    ("transforms", "tag,route,dropTests,slim"),
    (
        "transforms.tag.type",
        "org.apache.kafka.connect.transforms.InsertField$Value",
    ),
    ("transforms.tag.static.field", "survey"),
    ("transforms.tag.static.value", "ztf"),
    ("transforms.tag.predicate", "isRaw"),
    ("transforms.tag.negate", "true"),
    ("transforms.route.type", "TimestampRouter"),
    ("transforms.route.topic.format", "${topic}_${timestamp}"),
    ("transforms.route.timestamp.format", "yyyyMMdd"),
    ("transforms.dropTests.type", "Filter"),
    ("transforms.dropTests.predicate", "isTest"),
    ("transforms.slim.type", "ReplaceField$Value"),
    ("transforms.slim.exclude", "cutout"),
    ("transforms.slim.predicate", "isRaw"),
    ("transforms.slim.negate", "true"),
    ("predicates", "isTest,isRaw"),
    (
        "predicates.isTest.type",
        "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
    ),
    ("predicates.isTest.pattern", "test-.*"),
    ("predicates.isRaw.type", "HasHeaderKey"),
    ("predicates.isRaw.name", "raw"),
];

fn file_connector(
    dir: &Path,
    name: &str,
    topics: &str,
    out: &Path,
    extra: &[(&str, &str)],
) -> PathBuf {
    let path = dir.join(format!("{name}.properties"));
    let mut pairs = vec![
        ("name", name),
        ("connector.class", "FileStreamSink"),
        ("topics", topics),
        ("file", out.to_str().unwrap()),
    ];
    pairs.extend_from_slice(extra);
    write_props(&path, &pairs);
    path
}

fn alert(id: &str) -> String {
    format!(r#"{{"id":"{id}","cutout":"AAAA","mag":17}}"#)
}

#[test]
fn a_chain_transforms_filters_and_routes_records_into_the_file_sink() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("alerts", 2);
    broker.create_topic("test-alerts", 1);
    for p in 0..2 {
        let lines: Vec<String> = (0..20).map(|n| alert(&format!("p{p}-{n}"))).collect();
        produce_lines(&broker.bootstrap, "alerts", p, &lines);
    }
    let tests: Vec<String> = (0..10).map(|n| alert(&format!("test-{n}"))).collect();
    produce_lines(&broker.bootstrap, "test-alerts", 0, &tests);
    // Untouched by the value transforms: written as read, odd spacing included.
    let raw: Vec<String> = (0..3)
        .map(|n| format!(r#" {{ "id" : "raw-{n}" ,  "cutout":"keep" }}"#))
        .collect();
    let mut kcat_raw = kcat();
    kcat_raw.args(["-b", &broker.bootstrap, "-H", "raw=1"]);
    feed_kcat(kcat_raw, "alerts", 0, &raw).unwrap();

    let out = dir.path().join("out.txt");
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let mut extra = JSON.to_vec();
    extra.extend_from_slice(CHAIN);
    let connector = file_connector(dir.path(), "smt", "alerts,test-alerts", &out, &extra);

    // `ferry validate` shows the chain it will run.
    let v = Command::new(ferry_bin())
        .arg("validate")
        .args([&worker, &connector])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(
        v.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(
        text.contains(
            "  transforms, in order (before put):\n    tag: InsertField$Value unless isRaw\n    route: TimestampRouter\n    dropTests: Filter if isTest\n    slim: ReplaceField$Value unless isRaw\n"
        ),
        "{text}"
    );

    let log = run_to_end(dir.path(), &[], &worker, &[&connector], GENEROUS);
    let lines = lines_of(&out);
    let mut expected: Vec<String> = Vec::new();
    for p in 0..2 {
        expected.extend((0..20).map(|n| format!(r#"{{"id":"p{p}-{n}","mag":17,"survey":"ztf"}}"#)));
    }
    expected.extend(raw.iter().cloned());
    let mut got = lines.clone();
    got.sort();
    expected.sort();
    assert_eq!(
        got, expected,
        "transformed alerts, raw ones as read, no test alert"
    );

    // Filtered records are committed too, and offsets stay with the consumed topics
    // (never the routed `alerts_<date>`).
    let offsets = offset_file(&dir.path().join("connect.offsets"));
    let mine = &offsets["smt"];
    assert_eq!(mine.get("alerts-0"), Some(&23), "{offsets:?}");
    assert_eq!(mine.get("alerts-1"), Some(&20), "{offsets:?}");
    assert_eq!(mine.get("test-alerts-0"), Some(&10), "{offsets:?}");
    assert_eq!(mine.len(), 3, "{offsets:?}");
    assert_eq!(
        committed(&broker.bootstrap, "connect-smt", "alerts", 2),
        vec![23, 20]
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-smt", "test-alerts", 1),
        vec![10]
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// A record the chain cannot transform (an array where InsertField needs a map): under
/// `none` the task fails naming the record, the transform and its stage, nothing is
/// committed past it; under `all` it is logged and skipped and its offset committed.
#[test]
fn a_transform_failing_on_a_record_is_a_transformation_error_under_both_tolerances() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("mixed", 1);
    let lines: Vec<String> = [
        r#"{"n":0}"#,
        r#"{"n":1}"#,
        "[1,2]",
        r#"{"n":3}"#,
        r#"{"n":4}"#,
    ]
    .map(str::to_string)
    .to_vec();
    produce_lines(&broker.bootstrap, "mixed", 0, &lines);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let chain = [
        JSON[0],
        JSON[1],
        ("transforms", "tag"),
        ("transforms.tag.type", "InsertField$Value"),
        ("transforms.tag.static.field", "survey"),
        ("transforms.tag.static.value", "ztf"),
    ];

    // none
    let out = dir.path().join("none.txt");
    let c = file_connector(dir.path(), "smt-none", "mixed", &out, &chain);
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&c]);
    let failed = wait_until(Duration::from_secs(60), || {
        ferry.log().contains("Task failed")
    });
    let log = ferry.log();
    assert!(failed, "{log}");
    assert!(
        log.contains("record topic=mixed partition=0 offset=2")
            && log.contains(
                "transform `tag` (InsertField$Value): only a map is supported without a schema"
            ),
        "the line names the record and the transform: {log}"
    );
    // The records before it are delivered (and may be committed); nothing from it on.
    assert!(
        wait_until(Duration::from_secs(20), || lines_of(&out).len() == 2),
        "{log}"
    );
    ferry.signal("TERM");
    ferry.wait(Duration::from_secs(30));
    assert_eq!(
        lines_of(&out),
        vec![r#"{"n":0,"survey":"ztf"}"#, r#"{"n":1,"survey":"ztf"}"#]
    );
    assert!(committed(&broker.bootstrap, "connect-smt-none", "mixed", 1)[0] <= 2);

    // all
    let out = dir.path().join("all.txt");
    let mut tolerant = chain.to_vec();
    tolerant.push(("errors.tolerance", "all"));
    let c = file_connector(dir.path(), "smt-all", "mixed", &out, &tolerant);
    let log = run_to_end(dir.path(), &[], &worker, &[&c], GENEROUS);
    assert!(
        log.contains("Skipping a record")
            && log.contains("offset=2")
            && log.contains("transform `tag`"),
        "{log}"
    );
    assert_eq!(
        lines_of(&out),
        vec![
            r#"{"n":0,"survey":"ztf"}"#,
            r#"{"n":1,"survey":"ztf"}"#,
            r#"{"n":3,"survey":"ztf"}"#,
            r#"{"n":4,"survey":"ztf"}"#
        ]
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-smt-all", "mixed", 1),
        vec![5]
    );
}

/// Bad transform configurations: `ferry validate` exits 1 with one line naming the file
/// (and line), the key, the cause and the fix.
#[test]
fn bad_transform_configurations_are_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let worker = worker_props(dir.path(), "127.0.0.1:9", &[]);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("transforms", "m"),
                ("transforms.m.type", "com.example.Mystery"),
            ],
            "c.properties:5: transforms.m.type: unknown transform class `com.example.Mystery`; ferry knows Cast$Key,",
        ),
        (
            &[
                ("transforms", "h"),
                ("transforms.h.type", "HoistField$Value"),
            ],
            "c.properties: missing required key `transforms.h.field`: HoistField$Value needs",
        ),
        (
            &[
                ("transforms", "f"),
                ("transforms.f.type", "Filter"),
                ("transforms.f.predicate", "isTest"),
            ],
            "c.properties:6: transforms.f.predicate: predicate `isTest` is not declared; add it to `predicates` and set `predicates.isTest.type`",
        ),
        (
            &[
                ("transforms", "r"),
                ("transforms.r.type", "RegexRouter"),
                ("transforms.r.regex", "ztf_(.*"),
                ("transforms.r.replacement", "$1"),
            ],
            "c.properties:6: transforms.r.regex: `ztf_(.*` is not a regular expression (unclosed group); correct it",
        ),
    ];
    for (keys, want) in cases {
        let c = dir.path().join("c.properties");
        let mut pairs = vec![
            ("name", "c"),
            ("connector.class", "FileStreamSink"),
            ("topics", "t"),
        ];
        pairs.extend_from_slice(keys);
        write_props(&c, &pairs);
        let out = Command::new(ferry_bin())
            .arg("validate")
            .args([&worker, &c])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(want), "\n got: {err}\nwant: {want}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
