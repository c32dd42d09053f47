//! The Pub/Sub sink against Google's Pub/Sub emulator, with data produced by kcat into the
//! mock Kafka cluster and every message checked through the emulator's REST API (curl):
//! bytes, attributes, counts, and what is committed when.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::emulator::{Emulator, NOT_INSTALLED, Pulled, emulator_bin, skip};
use common::*;

const PROJECT: &str = "my-gcp-project";

fn emulator_or_skip(test: &str) -> Option<Emulator> {
    match emulator_bin() {
        Some(bin) => Some(Emulator::start(&bin)),
        None => {
            skip(test, NOT_INSTALLED);
            None
        }
    }
}

/// A connector file talking to the emulator through `cps.endpoint` + `cps.useEmulator`.
fn connector(
    dir: &Path,
    name: &str,
    topics: &str,
    emulator: &Emulator,
    cps_topic: &str,
    extra: &[(&str, &str)],
) -> PathBuf {
    let path = dir.join(format!("{name}.properties"));
    let mut pairs = vec![
        ("name", name),
        (
            "connector.class",
            "com.google.pubsub.kafka.sink.CloudPubSubSinkConnector",
        ),
        ("topics", topics),
        ("cps.project", PROJECT),
        ("cps.topic", cps_topic),
        ("cps.endpoint", emulator.host.as_str()),
        ("cps.useEmulator", "true"),
    ];
    pairs.extend_from_slice(extra);
    write_props(&path, &pairs);
    path
}

/// (partition, offset) → timestamp, read back from Kafka by kcat.
fn kafka_timestamps(bootstrap: &str, topic: &str) -> BTreeMap<(i32, i64), String> {
    let out = kcat()
        .args([
            "-C",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-e",
            "-q",
            "-f",
            "%p %o %T\\n",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((
                (it.next()?.parse().ok()?, it.next()?.parse().ok()?),
                it.next()?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn the_seed_files_run_unchanged_and_ztf_alerts_arrive_byte_for_byte() {
    let Some(emulator) =
        emulator_or_skip("the_seed_files_run_unchanged_and_ztf_alerts_arrive_byte_for_byte")
    else {
        return;
    };
    emulator.create_topic_and_subscription(PROJECT, "ztf_alert_data-kafka_consumer", "ztf-check");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    let topic = "ztf_20210901_programid1";
    broker.create_topic(topic, 4);
    let alerts = ferry_mock_broker::ztf::alert_files(dir.path(), 52).unwrap();
    eprintln!("Pub/Sub seed test: {}", alerts.describe());
    let files = alerts.files;
    let mut sent: BTreeMap<(i32, i64), PathBuf> = BTreeMap::new();
    for p in 0..4 {
        let mine: Vec<PathBuf> = files.iter().skip(p).step_by(4).cloned().collect();
        produce_files(&broker.bootstrap, topic, p as i32, &mine);
        for (o, f) in mine.into_iter().enumerate() {
            sent.insert((p as i32, o as i64), f);
        }
    }
    // The seed worker file (Kerberos block aside: the mock cluster has no SASL) and the
    // seed connector file, as Pitt-Google runs them under Kafka Connect.
    let worker = dir.path().join("psconnect-worker.properties");
    std::fs::write(
        &worker,
        format!(
            "bootstrap.servers={}\nkey.converter=org.apache.kafka.connect.converters.ByteArrayConverter\nvalue.converter=org.apache.kafka.connect.converters.ByteArrayConverter\noffset.storage.file.filename={}\nplugin.path=/usr/local/share/kafka/plugins\nconsumer.auto.offset.reset=earliest\n",
            broker.bootstrap,
            dir.path().join("connect.offsets").display()
        ),
    )
    .unwrap();
    let seed = dir.path().join("ps-connector.properties");
    std::fs::write(
        &seed,
        format!("name=ps-sink-connector-ztf\nconnector.class=com.google.pubsub.kafka.sink.CloudPubSubSinkConnector\ntasks.max=10\ntopics={topic}\ncps.topic=ztf_alert_data-kafka_consumer\ncps.project={PROJECT}\nmetadata.publish=true\n"),
    )
    .unwrap();
    let mut ferry = Ferry::spawn_with_env(
        &connect_standalone_bin(),
        &[
            "--exit-at-end",
            worker.to_str().unwrap(),
            seed.to_str().unwrap(),
        ],
        &[("PUBSUB_EMULATOR_HOST", emulator.host.as_str())],
        dir.path(),
        "ferry",
    );
    let status = ferry.wait(Duration::from_secs(120));
    assert!(status.success(), "{}", ferry.log());

    let pulled = emulator.pull_all(PROJECT, "ztf-check", sent.len(), Duration::from_secs(60));
    let timestamps = kafka_timestamps(&broker.bootstrap, topic);
    let mut seen = BTreeSet::new();
    for m in &pulled {
        let a = &m.attributes;
        let keys: Vec<&str> = a.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "kafka.offset",
                "kafka.partition",
                "kafka.timestamp",
                "kafka.topic"
            ],
            "no key attribute for a null key"
        );
        assert_eq!(a["kafka.topic"], topic);
        let at: (i32, i64) = (
            a["kafka.partition"].parse().unwrap(),
            a["kafka.offset"].parse().unwrap(),
        );
        assert_eq!(
            a["kafka.timestamp"], timestamps[&at],
            "the record's own timestamp"
        );
        assert!(m.data.starts_with(b"Obj\x01"));
        assert!(
            m.data == std::fs::read(&sent[&at]).unwrap(),
            "{at:?}: bytes differ"
        );
        seen.insert(at);
    }
    assert_eq!(seen.len(), sent.len(), "every alert, once at least");
    assert_eq!(pulled.len(), sent.len(), "and no duplicates in a clean run");
    assert_eq!(
        committed(&broker.bootstrap, "connect-ps-sink-connector-ztf", topic, 4),
        vec![13, 13, 13, 13]
    );
}

#[test]
fn keys_headers_and_ordering_keys_map_as_in_googles_connector() {
    let Some(emulator) =
        emulator_or_skip("keys_headers_and_ordering_keys_map_as_in_googles_connector")
    else {
        return;
    };
    emulator.create_topic_and_subscription(PROJECT, "keyed", "keyed-check");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("k", 2);
    let mut child = kcat()
        .args([
            "-P",
            "-b",
            &broker.bootstrap,
            "-t",
            "k",
            "-p",
            "1",
            "-K",
            ":",
            "-H",
            "source=ztf",
            "-H",
            "survey=public",
            "-q",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..20 {
            writeln!(stdin, "ZTF21obj{}:payload-{i}", i % 3).unwrap();
        }
    }
    assert!(wait_child(&mut child, Duration::from_secs(30)).is_some_and(|s| s.success()));
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = connector(
        dir.path(),
        "keyed",
        "k",
        &emulator,
        "keyed",
        &[("headers.publish", "true"), ("orderingKeySource", "key")],
    );
    run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(90));
    let pulled = emulator.pull_all(PROJECT, "keyed-check", 20, Duration::from_secs(30));
    assert_eq!(pulled.len(), 20);
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &pulled {
        let expected: BTreeMap<String, String> = [
            ("key", m.ordering_key.as_str()),
            ("source", "ztf"),
            ("survey", "public"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(m.attributes, expected);
        assert!(m.ordering_key.starts_with("ZTF21obj"), "{m:?}");
        by_key
            .entry(m.ordering_key.clone())
            .or_default()
            .push(String::from_utf8(m.data.clone()).unwrap());
    }
    assert_eq!(by_key.len(), 3);
    // Within an ordering key, Pub/Sub keeps Kafka's order.
    for values in by_key.values() {
        let numbers: Vec<u32> = values
            .iter()
            .map(|v| v["payload-".len()..].parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    }
}

fn numbers_in(pulled: &[Pulled]) -> BTreeSet<String> {
    pulled
        .iter()
        .map(|m| String::from_utf8(m.data.clone()).unwrap())
        .collect()
}

fn total_committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    committed(bootstrap, group, topic, partitions)
        .iter()
        .map(|o| (*o).max(0))
        .sum()
}

#[test]
fn an_emulator_frozen_for_30_seconds_loses_nothing_and_nothing_is_committed_meanwhile() {
    let Some(emulator) = emulator_or_skip(
        "an_emulator_frozen_for_30_seconds_loses_nothing_and_nothing_is_committed_meanwhile",
    ) else {
        return;
    };
    frozen_for_30_seconds(&emulator, &[]);
}

#[test]
fn a_frozen_emulator_loses_nothing_with_compression_on() {
    let Some(emulator) = emulator_or_skip("a_frozen_emulator_loses_nothing_with_compression_on")
    else {
        return;
    };
    // ferry's own gzip publisher: its attempt timeouts, retries and republishing.
    frozen_for_30_seconds(&emulator, &[("enableCompression", "true")]);
}

/// Two waves of 800 records; Pub/Sub is frozen (SIGSTOP) for 30 s as the second arrives.
fn frozen_for_30_seconds(emulator: &Emulator, extra: &[(&str, &str)]) {
    emulator.create_topic_and_subscription(PROJECT, "outage", "outage-check");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("o", 4);
    let wave = |first: usize| {
        for p in 0..4 {
            let lines: Vec<String> = (first..first + 200).map(|n| format!("p{p}-{n}")).collect();
            produce_lines(&broker.bootstrap, "o", p, &lines);
        }
    };
    wave(0);
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("offset.flush.interval.ms", "500")],
    );
    let c = connector(dir.path(), "outage", "o", emulator, "outage", extra);
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&c]);
    let group = "connect-outage";
    assert!(
        wait_until(Duration::from_secs(60), || total_committed(
            &broker.bootstrap,
            group,
            "o",
            4
        ) == 800),
        "first wave never committed:\n{}",
        ferry.log()
    );
    emulator.signal("STOP");
    wave(200);
    std::thread::sleep(Duration::from_secs(3));
    let during = total_committed(&broker.bootstrap, group, "o", 4);
    std::thread::sleep(Duration::from_secs(27));
    let still = total_committed(&broker.bootstrap, group, "o", 4);
    emulator.signal("CONT");
    assert_eq!(
        during, 800,
        "nothing of the second wave is committed while Pub/Sub is frozen"
    );
    assert_eq!(still, 800, "nothing is committed during the whole outage");
    assert!(
        wait_until(Duration::from_secs(120), || total_committed(
            &broker.bootstrap,
            group,
            "o",
            4
        ) == 1600),
        "the run did not finish after the emulator came back:\n{}",
        ferry.log()
    );
    ferry.signal("TERM");
    assert!(
        ferry.wait(Duration::from_secs(60)).success(),
        "{}",
        ferry.log()
    );
    let pulled = emulator.pull_all(PROJECT, "outage-check", 1600, Duration::from_secs(60));
    let want: BTreeSet<String> = (0..4)
        .flat_map(|p| (0..400).map(move |n| format!("p{p}-{n}")))
        .collect();
    let got = numbers_in(&pulled);
    let missing: Vec<&String> = want.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "lost {} messages, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn kill_9_mid_run_and_restart_loses_nothing() {
    let Some(emulator) = emulator_or_skip("kill_9_mid_run_and_restart_loses_nothing") else {
        return;
    };
    emulator.create_topic_and_subscription(PROJECT, "crash", "crash-check");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("c", 4);
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("offset.flush.interval.ms", "300")],
    );
    let c = connector(
        dir.path(),
        "crash",
        "c",
        &emulator,
        "crash",
        &[("tasks.max", "2")],
    );
    let mut first = Ferry::standalone(dir.path(), &worker, &[&c]);
    for w in 0..10 {
        for p in 0..4 {
            let lines: Vec<String> = (w * 100..(w + 1) * 100)
                .map(|n| format!("p{p}-{n}"))
                .collect();
            produce_lines(&broker.bootstrap, "c", p, &lines);
        }
        if w == 5 {
            assert!(
                wait_until(Duration::from_secs(60), || total_committed(
                    &broker.bootstrap,
                    "connect-crash",
                    "c",
                    4
                ) > 0),
                "{}",
                first.log()
            );
            first.signal("KILL");
            first.wait(Duration::from_secs(10));
        }
    }
    run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    let pulled = emulator.pull_all(PROJECT, "crash-check", 4000, Duration::from_secs(60));
    let want: BTreeSet<String> = (0..4)
        .flat_map(|p| (0..1000).map(move |n| format!("p{p}-{n}")))
        .collect();
    let got = numbers_in(&pulled);
    let missing: Vec<&String> = want.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "lost {} messages, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(got.is_subset(&want));
    assert_eq!(
        total_committed(&broker.bootstrap, "connect-crash", "c", 4),
        4000
    );
}

/// A topic with small records on partition 0 and one 11 MB record alone on partition 1
/// (alone: the mock keeps ~5 MB per partition, and would drop smaller records behind it).
fn oversize_topic(broker: &mut Broker, dir: &Path) {
    broker.create_topic("big", 2);
    produce_lines(&broker.bootstrap, "big", 0, &numbered(0, 10));
    let big = dir.join("eleven-megabytes.bin");
    std::fs::write(&big, vec![b'x'; 11 * 1024 * 1024]).unwrap();
    let status = kcat()
        .args([
            "-P",
            "-b",
            &broker.bootstrap,
            "-t",
            "big",
            "-p",
            "1",
            "-X",
            "message.max.bytes=20000000",
            "-q",
        ])
        .arg(&big)
        .status()
        .unwrap();
    assert!(status.success(), "kcat could not produce the 11 MB record");
}

#[test]
fn an_oversize_record_fails_the_task_under_tolerance_none() {
    let Some(emulator) = emulator_or_skip("an_oversize_record_fails_the_task_under_tolerance_none")
    else {
        return;
    };
    emulator.create_topic_and_subscription(PROJECT, "big-none", "big-none-check");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    oversize_topic(&mut broker, dir.path());
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = connector(dir.path(), "bignone", "big", &emulator, "big-none", &[]);
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&c]);
    let status = ferry.wait(Duration::from_secs(90));
    let log = ferry.log();
    assert!(
        !status.success(),
        "every task failed, so ferry exits 1:\n{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("Task failed"))
        .expect("an ERROR line");
    assert!(
        line.contains("topic=big partition=1 offset=0") && line.contains("10 MB"),
        "{line}"
    );
    assert!(
        line.contains(&format!("({} bytes)", 11 * 1024 * 1024)),
        "{line}"
    );
    assert!(!log.contains("panicked"));
    assert_eq!(
        committed(&broker.bootstrap, "connect-bignone", "big", 2)[1],
        -1,
        "nothing committed past the record"
    );
}

#[test]
fn an_oversize_record_is_skipped_and_named_under_tolerance_all() {
    let Some(emulator) =
        emulator_or_skip("an_oversize_record_is_skipped_and_named_under_tolerance_all")
    else {
        return;
    };
    emulator.create_topic_and_subscription(PROJECT, "big-all", "big-all-check");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    oversize_topic(&mut broker, dir.path());
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let c = connector(
        dir.path(),
        "bigall",
        "big",
        &emulator,
        "big-all",
        &[("errors.tolerance", "all")],
    );
    let log = run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(90));
    let line = log
        .lines()
        .find(|l| l.contains("Skipping a record"))
        .expect("a line naming the skipped record");
    assert!(
        line.contains("partition=1") && line.contains("offset=0") && line.contains("10 MB"),
        "{line}"
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-bigall", "big", 2),
        vec![10, 1],
        "the offset advances past it"
    );
    let pulled = emulator.pull_all(PROJECT, "big-all-check", 10, Duration::from_secs(30));
    assert_eq!(numbers_in(&pulled), numbered(0, 10).into_iter().collect());
}

#[test]
fn a_missing_topic_or_credential_is_one_clear_line_at_startup() {
    let Some(emulator) =
        emulator_or_skip("a_missing_topic_or_credential_is_one_clear_line_at_startup")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("t", 1);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let run = |c: &Path, env: &[(&str, &str)], tag: &str| {
        let mut ferry = Ferry::spawn_with_env(
            &ferry_bin(),
            &["standalone", worker.to_str().unwrap(), c.to_str().unwrap()],
            env,
            dir.path(),
            tag,
        );
        let started = std::time::Instant::now();
        let status = ferry.wait(Duration::from_secs(60));
        (status, ferry.log(), started.elapsed())
    };
    let missing = connector(dir.path(), "missing", "t", &emulator, "no-such-topic", &[]);
    let (status, log, _) = run(&missing, &[], "missing");
    assert_eq!(status.code(), Some(1), "{log}");
    let error = log
        .lines()
        .find(|l| l.starts_with("ferry: error:"))
        .expect("one error line");
    assert!(
        error.contains("Pub/Sub topic projects/my-gcp-project/topics/no-such-topic does not exist"),
        "{error}"
    );

    // Not the emulator, and no credentials anywhere: a bounded wait, then one line.
    let remote = dir.path().join("remote.properties");
    write_props(
        &remote,
        &[
            ("name", "remote"),
            ("connector.class", "pubsub"),
            ("topics", "t"),
            ("cps.project", PROJECT),
            ("cps.topic", "alerts"),
            ("cps.endpoint", emulator.host.as_str()),
        ],
    );
    let home = tempfile::tempdir().unwrap();
    let (status, log, took) = run(
        &remote,
        &[
            ("HOME", home.path().to_str().unwrap()),
            ("GOOGLE_APPLICATION_CREDENTIALS", ""),
        ],
        "nocreds",
    );
    assert_eq!(status.code(), Some(1), "{log}");
    let error = log
        .lines()
        .find(|l| l.starts_with("ferry: error:"))
        .expect("one error line");
    assert!(
        error.contains("Google credentials") || error.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{error}"
    );
    assert!(
        took < Duration::from_secs(30),
        "the metadata-server probe is bounded: {took:?}"
    );

    let keyfile = dir.path().join("withkey.properties");
    write_props(
        &keyfile,
        &[
            ("name", "withkey"),
            ("connector.class", "pubsub"),
            ("topics", "t"),
            ("cps.project", PROJECT),
            ("cps.topic", "alerts"),
            ("gcp.credentials.file.path", "/nonexistent/key.json"),
        ],
    );
    let (status, log, _) = run(&keyfile, &[], "keyfile");
    assert_eq!(status.code(), Some(1), "{log}");
    let error = log
        .lines()
        .find(|l| l.starts_with("ferry: error:"))
        .expect("one error line");
    assert!(
        error.contains("cannot read gcp.credentials.file.path /nonexistent/key.json"),
        "{error}"
    );
}

/// JSON values through `JsonConverter`, as Google's connector maps them
/// (`CloudPubSubSinkTask.handleValue`): without schemas a value has no schema, so its data
/// is the value's Java text and `messageBodyName` plays no part; with a struct schema the
/// `cps_message_body` field is the data and the other fields are attributes. A struct
/// Google's connector refuses (a nested struct) is a record error under
/// `errors.tolerance`.
#[test]
fn json_values_map_by_googles_rules_for_schemaless_maps_and_structs() {
    let Some(emulator) =
        emulator_or_skip("json_values_map_by_googles_rules_for_schemaless_maps_and_structs")
    else {
        return;
    };
    emulator.create_topic_and_subscription(PROJECT, "json-schemaless", "json-schemaless-check");
    emulator.create_topic_and_subscription(PROJECT, "json-struct", "json-struct-check");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("jsonless", 1);
    broker.create_topic("jsonstruct", 1);
    let schemaless = [
        r#"{"cps_message_body":"hello","source":"ztf"}"#,
        r#""hello""#,
        "42",
        "2459457.5",
        r#"["a",1,null]"#,
    ];
    produce_lines(
        &broker.bootstrap,
        "jsonless",
        0,
        &schemaless.map(str::to_string),
    );
    let fields = r#"[{"field":"cps_message_body","type":"string"},{"field":"source","type":"string"},{"field":"candid","type":"int64"},{"field":"magpsf","type":"float","optional":true}]"#;
    let nested = r#"[{"field":"cps_message_body","type":"string"},{"field":"candidate","type":"struct","fields":[{"field":"ra","type":"double"}]}]"#;
    let enveloped = [
        format!(
            r#"{{"schema":{{"type":"struct","fields":{fields}}},"payload":{{"cps_message_body":"hello","source":"ztf","candid":1703222170415010089,"magpsf":18.5}}}}"#
        ),
        format!(
            r#"{{"schema":{{"type":"struct","fields":{nested}}},"payload":{{"cps_message_body":"x","candidate":{{"ra":1.5}}}}}}"#
        ),
        format!(
            r#"{{"schema":{{"type":"struct","fields":{fields}}},"payload":{{"cps_message_body":"again","source":"ztf","candid":2,"magpsf":null}}}}"#
        ),
    ];
    produce_lines(&broker.bootstrap, "jsonstruct", 0, &enveloped);

    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let json = (
        "value.converter",
        "org.apache.kafka.connect.json.JsonConverter",
    );
    let a = connector(
        dir.path(),
        "jsonless",
        "jsonless",
        &emulator,
        "json-schemaless",
        &[json, ("value.converter.schemas.enable", "false")],
    );
    let b = connector(
        dir.path(),
        "jsonstruct",
        "jsonstruct",
        &emulator,
        "json-struct",
        &[json, ("errors.tolerance", "all")],
    );
    let log = run_to_end(dir.path(), &[], &worker, &[&a, &b], Duration::from_secs(90));

    let pulled = emulator.pull_all(
        PROJECT,
        "json-schemaless-check",
        schemaless.len(),
        Duration::from_secs(30),
    );
    assert!(
        pulled.iter().all(|m| m.attributes.is_empty()),
        "no attributes from a value without a schema: {pulled:?}"
    );
    assert_eq!(
        numbers_in(&pulled),
        [
            // java.util.HashMap's toString, in its iteration order.
            "{cps_message_body=hello, source=ztf}",
            "hello",
            "42",
            "2459457.5",
            "[a, 1, null]",
        ]
        .map(str::to_string)
        .into_iter()
        .collect()
    );

    let pulled = emulator.pull_all(PROJECT, "json-struct-check", 2, Duration::from_secs(30));
    let mut got: Vec<(String, BTreeMap<String, String>)> = pulled
        .iter()
        .map(|m| {
            (
                String::from_utf8(m.data.clone()).unwrap(),
                m.attributes.clone(),
            )
        })
        .collect();
    got.sort();
    let attrs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        got,
        vec![
            (
                "again".to_string(),
                attrs(&[("candid", "2"), ("source", "ztf")])
            ),
            (
                "hello".to_string(),
                attrs(&[
                    ("candid", "1703222170415010089"),
                    ("magpsf", "18.5"),
                    ("source", "ztf")
                ])
            ),
        ]
    );
    let skipped = log
        .lines()
        .find(|l| l.contains("Skipping a record"))
        .expect("a line naming the refused record");
    assert!(
        skipped.contains("topic=jsonstruct")
            && skipped.contains("offset=1")
            && skipped.contains("`candidate` is a struct"),
        "{skipped}"
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-jsonstruct", "jsonstruct", 1),
        vec![3],
        "the offset advances past the refused record"
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-jsonless", "jsonless", 1),
        vec![schemaless.len() as i64]
    );
}

/// Produces `n` JSON-like records of about 4 KB (they compress well) keyed by `obj<i % 5>`
/// to partitions 0 and 1; returns the SHA-256 of each value, and their bytes in all.
fn compressible_records(
    broker: &mut Broker,
    topic: &str,
    n: usize,
) -> (BTreeMap<String, usize>, usize) {
    broker.create_topic(topic, 2);
    let mut hashes = BTreeMap::new();
    let mut total = 0;
    for p in 0..2 {
        let mut lines = Vec::new();
        for i in (p as usize..n).step_by(2) {
            let value: String = (0..80)
                .map(|j| format!("{{\"alert\":{i},\"seq\":{j},\"band\":\"g\",\"status\":\"ok\"}},"))
                .collect();
            hashes.insert(hex_sha256(value.as_bytes()), i);
            total += value.len();
            lines.push(format!("obj{}|{value}", i % 5));
        }
        let mut cmd = kcat();
        cmd.args(["-b", &broker.bootstrap, "-K", "|"]);
        feed_kcat(cmd, topic, p, &lines).unwrap();
    }
    (hashes, total)
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs the records of `topic` into `cps_topic` through a byte-counting proxy in front of
/// the emulator; checks every message arrived intact, keyed and in order per key, and
/// returns the bytes ferry sent to Pub/Sub.
fn publish_through_a_counting_proxy(
    emulator: &Emulator,
    broker: &Broker,
    topic: &str,
    cps_topic: &str,
    hashes: &BTreeMap<String, usize>,
    extra: &[(&str, &str)],
) -> u64 {
    let subscription = format!("{cps_topic}-check");
    emulator.create_topic_and_subscription(PROJECT, cps_topic, &subscription);
    let (proxy, sent) = counting_proxy(&emulator.host);
    let dir = tempfile::tempdir().unwrap();
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let mut pairs = vec![
        ("cps.endpoint", proxy.as_str()),
        ("orderingKeySource", "key"),
        ("metadata.publish", "true"),
    ];
    pairs.extend_from_slice(extra);
    let c = connector(dir.path(), cps_topic, topic, emulator, cps_topic, &pairs);
    run_to_end(dir.path(), &[], &worker, &[&c], Duration::from_secs(120));
    let pulled = emulator.pull_all(
        PROJECT,
        &subscription,
        hashes.len(),
        Duration::from_secs(60),
    );
    assert_eq!(pulled.len(), hashes.len());
    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for m in &pulled {
        let i = *hashes
            .get(&hex_sha256(&m.data))
            .unwrap_or_else(|| panic!("a message whose bytes were not sent: {:?}", m.attributes));
        assert_eq!(m.ordering_key, format!("obj{}", i % 5));
        assert_eq!(m.attributes["key"], m.ordering_key);
        assert_eq!(m.attributes["kafka.topic"], topic);
        by_key.entry(m.ordering_key.clone()).or_default().push(i);
    }
    let distinct: BTreeSet<usize> = by_key.values().flatten().copied().collect();
    assert_eq!(distinct.len(), hashes.len(), "every record exactly once");
    for (key, order) in &by_key {
        // A key's records come from both partitions; each partition's are published in
        // offset order, and Pub/Sub keeps a key's publish order.
        for p in 0..2 {
            let mine: Vec<usize> = order.iter().copied().filter(|i| i % 2 == p).collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "{key}, partition {p}: {mine:?}"
            );
        }
    }
    sent.load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn enable_compression_gzips_publish_requests_and_every_message_arrives_intact() {
    let test = "enable_compression_gzips_publish_requests_and_every_message_arrives_intact";
    let Some(emulator) = emulator_or_skip(test) else {
        return;
    };
    let mut broker = Broker::start(1, 0);
    let (hashes, payload) = compressible_records(&mut broker, "texts", 300);
    let plain =
        publish_through_a_counting_proxy(&emulator, &broker, "texts", "plain", &hashes, &[]);
    let gzip = publish_through_a_counting_proxy(
        &emulator,
        &broker,
        "texts",
        "gzipped",
        &hashes,
        &[("enableCompression", "true")],
    );
    eprintln!("bytes sent to Pub/Sub: {plain} uncompressed, {gzip} with enableCompression=true");
    assert!(
        plain as usize >= payload,
        "{plain} bytes for ~{payload} of data"
    );
    assert!(
        gzip * 5 < plain,
        "gzip should shrink this text at least fivefold: {gzip} vs {plain}"
    );
    // With a threshold above every request's size nothing is compressed: about the bytes
    // of publishing without compression.
    let above = publish_through_a_counting_proxy(
        &emulator,
        &broker,
        "texts",
        "thresholded",
        &hashes,
        &[
            ("enableCompression", "true"),
            ("compressionBytesThreshold", "100000000"),
        ],
    );
    assert!(above * 10 > plain * 9, "{above} vs {plain}");
}

/// `header.converter` decides the bytes of the headers transforms add — what the Pub/Sub
/// sink publishes as attributes with `headers.publish=true` — while headers read from Kafka
/// are published byte for byte under every converter. A header ByteArrayConverter cannot
/// write is a HEADER_CONVERTER-stage record error: under `errors.tolerance=all` the record
/// goes to the dead-letter topic as it was read, naming the stage and the converter.
#[test]
fn header_converter_decides_the_attributes_of_headers_transforms_add() {
    let test = "header_converter_decides_the_attributes_of_headers_transforms_add";
    let Some(emulator) = emulator_or_skip(test) else {
        return;
    };
    for t in ["hc-simple", "hc-string"] {
        emulator.create_topic_and_subscription(PROJECT, t, &format!("{t}-check"));
    }
    emulator.create_topic_and_subscription(PROJECT, "hc-bytes", "hc-bytes-check");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic("hc", 1);
    broker.create_topic("hc-dlq", 1);
    let value = r#"{"n": 42, "tags": ["a", "b"]}"#;
    let mut cmd = kcat();
    cmd.args([
        "-b",
        &broker.bootstrap,
        "-H",
        "raw=007",
        "-H",
        "list=[1, 2]",
    ]);
    feed_kcat(cmd, "hc", 0, &[value.to_string()]).unwrap();
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let chain = [
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("value.converter.schemas.enable", "false"),
        ("headers.publish", "true"),
        ("transforms", "hf,lit"),
        ("transforms.hf.type", "HeaderFrom$Value"),
        ("transforms.hf.fields", "n,tags"),
        ("transforms.hf.headers", "n,tags"),
        ("transforms.hf.operation", "copy"),
        ("transforms.lit.type", "InsertHeader"),
        ("transforms.lit.header", "lit"),
        ("transforms.lit.value.literal", "[1, 2]"),
    ];
    let simple = connector(
        dir.path(),
        "hc-simple",
        "hc",
        &emulator,
        "hc-simple",
        &chain,
    );
    let mut with_string = chain.to_vec();
    with_string.push(("header.converter", "StringConverter"));
    let string = connector(
        dir.path(),
        "hc-string",
        "hc",
        &emulator,
        "hc-string",
        &with_string,
    );
    // ByteArrayConverter writes only bytes: HeaderFrom's int8 cannot be a header.
    let bytes = connector(
        dir.path(),
        "hc-bytes",
        "hc",
        &emulator,
        "hc-bytes",
        &[
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
            ("headers.publish", "true"),
            (
                "header.converter",
                "org.apache.kafka.connect.converters.ByteArrayConverter",
            ),
            ("transforms", "hf"),
            ("transforms.hf.type", "HeaderFrom$Value"),
            ("transforms.hf.fields", "n"),
            ("transforms.hf.headers", "n"),
            ("transforms.hf.operation", "copy"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", "hc-dlq"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
        ],
    );
    run_to_end(
        dir.path(),
        &[],
        &worker,
        &[&simple, &string, &bytes],
        Duration::from_secs(90),
    );
    let attributes = |sub: &str| {
        let pulled = emulator.pull_all(PROJECT, sub, 1, Duration::from_secs(30));
        assert_eq!(pulled.len(), 1, "{sub}: {pulled:?}");
        pulled[0].attributes.clone()
    };
    let expected = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // Headers as read: byte for byte (Google's connector publishes the text it was given).
    assert_eq!(
        attributes("hc-simple-check"),
        expected(&[
            ("raw", "007"),
            ("list", "[1, 2]"),
            ("n", "42"),
            ("tags", r#"["a","b"]"#),
            ("lit", "[1,2]"),
        ])
    );
    assert_eq!(
        attributes("hc-string-check"),
        expected(&[
            ("raw", "007"),
            ("list", "[1, 2]"),
            ("n", "42"),
            ("tags", "[a, b]"),
            ("lit", "[1, 2]"),
        ])
    );
    // Nothing reached Pub/Sub from the ByteArrayConverter connector …
    let none = emulator.pull_all(PROJECT, "hc-bytes-check", 1, Duration::from_secs(3));
    assert!(none.is_empty(), "{none:?}");
    // … the record went to the dead-letter topic as it was read.
    let mut letters = String::new();
    let found = wait_until(Duration::from_secs(30), || {
        let out = kcat()
            .args(["-C", "-b", &broker.bootstrap, "-t", "hc-dlq"])
            .args(["-o", "beginning", "-e", "-q", "-J"])
            .output()
            .unwrap();
        letters = String::from_utf8_lossy(&out.stdout).into_owned();
        !letters.trim().is_empty()
    });
    assert!(found, "no dead letter");
    let letter: serde_json::Value = serde_json::from_str(letters.lines().next().unwrap()).unwrap();
    assert_eq!(letter["payload"], value);
    let h: Vec<&str> = letter["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap_or(""))
        .collect();
    let get = |k: &str| {
        h.chunks(2)
            .find(|p| p[0] == k)
            .map(|p| p[1].to_string())
            .unwrap_or_default()
    };
    assert_eq!(&h[..4], ["raw", "007", "list", "[1, 2]"], "{h:?}");
    assert!(!h.contains(&"n"), "no header from the transform: {h:?}");
    assert_eq!(get("__connect.errors.stage"), "HEADER_CONVERTER");
    assert_eq!(
        get("__connect.errors.class.name"),
        "org.apache.kafka.connect.converters.ByteArrayConverter"
    );
    assert!(
        get("__connect.errors.exception.message")
            .contains("ByteArrayConverter writes only bytes, and this header holds an int"),
        "{h:?}"
    );
}
