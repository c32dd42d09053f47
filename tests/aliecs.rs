//! AliECS events (protocol buffers, no framing) through `ProtobufDescriptorConverter` into
//! BigQuery's emulator: the descriptor set is compiled by `protoc` from fixtures with
//! AliECS's field numbers (tests/data/aliecs), events are encoded by Python's `protobuf`
//! package and produced with kcat, and every row is compared field by field with what
//! Python's protobuf decodes from the same bytes (tests/aliecs/events.py) — none of ferry's
//! code on the checking side.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::bigquery::BigQueryEmulator;
use common::emulator::{Emulator, NOT_INSTALLED, emulator_bin, skip};
use common::*;

const DATASET: &str = "aliecs";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command to its end within a minute; its stdout, or a panic with its stderr.
fn run(cmd: &mut Command, what: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = wait_child(&mut child, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("{what}: no answer within 60 s"));
    let mut out = String::new();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{what}: {status}\n{out}\n{err}");
    out
}

/// The descriptor set of the fixtures, made by protoc; `None` (a counted skip) without it.
fn descriptor_set(dir: &Path, test: &str) -> Option<PathBuf> {
    let out = dir.join("events.desc");
    match Command::new("protoc")
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", out.display()))
        .arg("-I")
        .arg(repo().join("tests/data/aliecs"))
        .arg("events.proto")
        .output()
    {
        Ok(o) if o.status.success() => Some(out),
        Ok(o) => panic!("protoc: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            skip(
                test,
                &format!(
                    "protoc not found ({e}); install the Debian package protobuf-compiler (tests/run.sh does)"
                ),
            );
            None
        }
    }
}

fn events_py() -> PathBuf {
    repo().join("tests/aliecs/events.py")
}

fn bin_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn aliecs_events_load_into_bigquery_field_by_field_including_a_topic_created_later() {
    let test =
        "aliecs::aliecs_events_load_into_bigquery_field_by_field_including_a_topic_created_later";
    let bq = match BigQueryEmulator::start() {
        Ok(e) => e,
        Err(reason) => return skip(test, &reason),
    };
    bq.create_dataset(DATASET);
    let dir = tempfile::tempdir().unwrap();
    let Some(desc) = descriptor_set(dir.path(), test) else {
        return;
    };
    let events = dir.path().join("events");
    let said = run(
        Command::new(bq.python())
            .arg(events_py())
            .args(["encode", "--descriptor"])
            .arg(&desc)
            .arg("--out")
            .arg(&events),
        "events.py encode",
    );
    assert_eq!(said.trim(), "OK 21 events");

    let mut broker = Broker::start(1, 0);
    let early = [
        "aliecs.environment",
        "aliecs.task",
        "aliecs.call",
        "aliecs.integrated_service.dcs",
        "aliecs.core",
    ];
    for topic in early {
        broker.create_topic(topic, 1);
        produce_files(&broker.bootstrap, topic, 0, &bin_files(&events.join(topic)));
    }
    // Not protocol buffers: a record error, skipped and named under errors.tolerance=all.
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, b"\xff\xff\xff\xff not an event").unwrap();
    produce_files(&broker.bootstrap, "aliecs.core", 0, &[garbage]);

    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[
            ("consumer.auto.offset.reset", "earliest"),
            ("consumer.metadata.max.age.ms", "1000"),
        ],
    );
    let connector = dir.path().join("aliecs.properties");
    let desc_text = desc.to_str().unwrap();
    write_props(
        &connector,
        &[
            ("name", "aliecs-bq"),
            ("connector.class", "BigQuerySinkConnector"),
            ("topics.regex", "aliecs\\..*"),
            ("tasks.max", "2"),
            ("project", bq.project.as_str()),
            ("defaultDataset", DATASET),
            ("sanitizeTopics", "true"),
            ("ferry.bigquery.endpoint", bq.rest.as_str()),
            ("ferry.bigquery.emulator", "true"),
            (
                "value.converter",
                "ferry.converters.ProtobufDescriptorConverter",
            ),
            ("value.converter.descriptor.file", desc_text),
            ("value.converter.message.type", "events.Event"),
            ("errors.tolerance", "all"),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&connector]);
    let count = |topic: &str| bq.row_count(&format!("{DATASET}.{}", topic.replace('.', "_")));
    assert!(
        wait_until(Duration::from_secs(120), || count("aliecs.core") == 4
            && count("aliecs.task") == 5),
        "rows of the first topics:\n{}",
        ferry.log()
    );

    // A topic AliECS creates when it first uses it: picked up by topics.regex, its first
    // message included (auto.offset.reset=earliest).
    broker.create_topic("aliecs.run", 1);
    produce_files(
        &broker.bootstrap,
        "aliecs.run",
        0,
        &bin_files(&events.join("aliecs.run")),
    );
    assert!(
        wait_until(Duration::from_secs(120), || count("aliecs.run") == 3),
        "rows of aliecs.run:\n{}",
        ferry.log()
    );
    ferry.signal("TERM");
    assert!(
        ferry.wait(Duration::from_secs(60)).success(),
        "{}",
        ferry.log()
    );

    for topic in early.iter().chain(["aliecs.run"].iter()) {
        let out = run(
            Command::new(bq.python())
                .arg(events_py())
                .args(["check", "--rest", &bq.rest, "--project", &bq.project])
                .arg("--table")
                .arg(format!("{DATASET}.{}", topic.replace('.', "_")))
                .arg("--descriptor")
                .arg(&desc)
                .arg("--events")
                .arg(events.join(topic)),
            &format!("events.py check {topic}"),
        );
        assert!(out.starts_with("OK "), "{topic}: {out}");
    }
    let log = ferry.log();
    assert!(
        log.contains("Skipping a record the sink cannot deliver (errors.tolerance=all).")
            && log.contains("topic=aliecs.core partition=0 offset=4"),
        "the malformed record is named:\n{log}"
    );
    assert!(
        log.contains("not a protocol buffer events.Event message"),
        "{log}"
    );
}

/// A descriptor set that does not hold the message type, or a file that is not a
/// descriptor set: one line at start-up naming the setting, nothing runs.
#[test]
fn a_wrong_message_type_or_descriptor_file_is_one_line() {
    let test = "aliecs::a_wrong_message_type_or_descriptor_file_is_one_line";
    let dir = tempfile::tempdir().unwrap();
    let Some(desc) = descriptor_set(dir.path(), test) else {
        return;
    };
    let worker = worker_props(dir.path(), "127.0.0.1:9", &[]);
    let validate = |descriptor: &Path, message: &str| {
        let connector = dir.path().join("c.properties");
        write_props(
            &connector,
            &[
                ("name", "c"),
                ("connector.class", "FileStreamSink"),
                ("topics", "aliecs.run"),
                (
                    "value.converter",
                    "ferry.converters.ProtobufDescriptorConverter",
                ),
                (
                    "value.converter.descriptor.file",
                    descriptor.to_str().unwrap(),
                ),
                ("value.converter.message.type", message),
            ],
        );
        let out = Command::new(ferry_bin())
            .arg("validate")
            .args([&worker, &connector])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = validate(&desc, "events.Evnt");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("message.type events.Evnt is not in descriptor.file")
            && err.contains("did you mean events.Event? give the full name, package included"),
        "{err}"
    );
    let (code, err) = validate(
        &repo().join("tests/data/aliecs/events.proto"),
        "events.Event",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is not a FileDescriptorSet"), "{err}");
    let (code, out) = validate(&desc, "events.Event");
    assert_eq!(code, Some(0), "{out}");
}

/// The BigQuery emulator venv's python, which has Google's `protobuf` (installed by starting
/// the emulator once when it is not there yet); `None` (a counted skip) when it cannot be had.
fn protobuf_python(test: &str) -> Option<PathBuf> {
    let python = common::bigquery::emulator_home().join("venv/bin/python");
    let ready = || {
        Command::new(&python)
            .args(["-c", "import google.protobuf"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready() {
        return Some(python);
    }
    match BigQueryEmulator::start() {
        Ok(_installed) if ready() => Some(python),
        Ok(_) => {
            skip(test, "the BigQuery emulator's venv has no protobuf package");
            None
        }
        Err(reason) => {
            skip(test, &reason);
            None
        }
    }
}

/// AliECS events through the protobuf converter into Google's Pub/Sub emulator, mapped by
/// Google's connector's rules for a struct: Flatten$Value makes the nested event one level
/// (`taskEvent_traits_trigger`), ReplaceField drops the one map (`environmentEvent_vars`,
/// which Google's rules refuse), `messageBodyName=timestampNano` is the data and every other
/// set field an attribute. Pulled by curl from the emulator's REST API and compared, message
/// by message, with what Python's protobuf decodes from the same bytes.
#[test]
fn aliecs_events_reach_pubsub_as_googles_connector_maps_a_struct() {
    let test = "aliecs::aliecs_events_reach_pubsub_as_googles_connector_maps_a_struct";
    let Some(bin) = emulator_bin() else {
        return skip(test, NOT_INSTALLED);
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(desc) = descriptor_set(dir.path(), test) else {
        return;
    };
    let Some(python) = protobuf_python(test) else {
        return;
    };
    let events = dir.path().join("events");
    let said = run(
        Command::new(&python)
            .arg(events_py())
            .args(["encode", "--descriptor"])
            .arg(&desc)
            .arg("--out")
            .arg(&events),
        "events.py encode",
    );
    assert_eq!(said.trim(), "OK 21 events");
    let emulator = Emulator::start(&bin);
    let project = "alice-o2";
    emulator.create_topic_and_subscription(project, "aliecs-events", "aliecs-check");
    let mut broker = Broker::start(1, 0);
    let topics = [
        "aliecs.environment",
        "aliecs.task",
        "aliecs.run",
        "aliecs.call",
        "aliecs.integrated_service.dcs",
        "aliecs.core",
    ];
    for topic in topics {
        broker.create_topic(topic, 1);
        produce_files(&broker.bootstrap, topic, 0, &bin_files(&events.join(topic)));
    }
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("consumer.auto.offset.reset", "earliest")],
    );
    let connector = dir.path().join("aliecs-pubsub.properties");
    write_props(
        &connector,
        &[
            ("name", "aliecs-pubsub"),
            ("connector.class", "CloudPubSubSinkConnector"),
            ("topics.regex", "aliecs\\..*"),
            ("cps.project", project),
            ("cps.topic", "aliecs-events"),
            ("cps.endpoint", emulator.host.as_str()),
            ("cps.useEmulator", "true"),
            (
                "value.converter",
                "ferry.converters.ProtobufDescriptorConverter",
            ),
            ("value.converter.descriptor.file", desc.to_str().unwrap()),
            ("value.converter.message.type", "events.Event"),
            ("transforms", "flatten,novars"),
            (
                "transforms.flatten.type",
                "org.apache.kafka.connect.transforms.Flatten$Value",
            ),
            ("transforms.flatten.delimiter", "_"),
            (
                "transforms.novars.type",
                "org.apache.kafka.connect.transforms.ReplaceField$Value",
            ),
            ("transforms.novars.exclude", "environmentEvent_vars"),
            ("messageBodyName", "timestampNano"),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&connector]);
    let pulled = emulator.pull_all(project, "aliecs-check", 21, Duration::from_secs(90));
    ferry.signal("TERM");
    assert!(
        ferry.wait(Duration::from_secs(60)).success(),
        "{}",
        ferry.log()
    );
    assert_eq!(pulled.len(), 21, "{}", ferry.log());
    let as_json: Vec<serde_json::Value> = pulled
        .iter()
        .map(|m| {
            let hex: String = m.data.iter().map(|b| format!("{b:02x}")).collect();
            serde_json::json!({ "data": hex, "attributes": m.attributes })
        })
        .collect();
    let file = dir.path().join("pulled.json");
    std::fs::write(&file, serde_json::to_vec(&as_json).unwrap()).unwrap();
    let out = run(
        Command::new(&python)
            .arg(events_py())
            .args(["pubsub", "--descriptor"])
            .arg(&desc)
            .arg("--events")
            .arg(&events)
            .arg("--pulled")
            .arg(&file),
        "events.py pubsub",
    );
    assert_eq!(out.trim(), "OK 21 messages", "{out}");
}
