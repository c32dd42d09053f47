//! Bad input: each case gives one error line naming the file (and line) or key with the
//! cause, a non-zero exit, no panic, and nothing committed.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

struct Case {
    name: &'static str,
    /// Worker lines after `bootstrap.servers` (which points at a live broker unless the
    /// case overrides it).
    worker: &'static str,
    connector: &'static str,
    /// Bytes to put at the offset file's path before the run (None: no file).
    offsets: Option<&'static [u8]>,
    /// A directory at the offset file's path instead.
    offsets_is_dir: bool,
    /// Substrings the error line must contain; `{dir}` is the case's directory.
    expect: &'static [&'static str],
}

const OK_CONNECTOR: &str =
    "name=bad\nconnector.class=FileStreamSink\ntopics=t\nfile={dir}/out.txt\n";

const CASES: &[Case] = &[
    Case {
        name: "malformed properties (bad unicode escape)",
        worker: "",
        connector: "name=bad\nconnector.class=FileStreamSink\nfile=\\u12G4\ntopics=t\n",
        offsets: None,
        offsets_is_dir: false,
        expect: &["{dir}/connector.properties:3:"],
    },
    Case {
        name: "unknown connector class",
        worker: "",
        connector: "name=bad\nconnector.class=com.example.NopeSinkConnector\ntopics=t\n",
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "{dir}/connector.properties:2: connector.class: unknown connector class `com.example.NopeSinkConnector`",
        ],
    },
    Case {
        name: "missing required key",
        worker: "",
        connector: "name=bad\nconnector.class=directory\ntopics=t\n",
        offsets: None,
        offsets_is_dir: false,
        expect: &["{dir}/connector.properties: missing required key `directory.path`"],
    },
    Case {
        name: "misspelt key",
        worker: "",
        connector: "name=bad\nconnector.class=FileStreamSink\ntopics=t\nfiel={dir}/out.txt\n",
        offsets: None,
        offsets_is_dir: false,
        expect: &["{dir}/connector.properties:4: fiel: unknown key; did you mean `file`?"],
    },
    Case {
        name: "misspelt worker-level key in the connector file",
        worker: "",
        connector: "name=bad\nconnector.class=FileStreamSink\ntopics=t\nfile={dir}/out.txt\ntask.max=2\n",
        offsets: None,
        offsets_is_dir: false,
        expect: &["{dir}/connector.properties:5: task.max: unknown key; did you mean `tasks.max`?"],
    },
    Case {
        name: "a missing required key written with a typo",
        worker: "",
        connector: "name=bad\nconnector.class=FileStreamSink\ntopic=t\nfile={dir}/out.txt\n",
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "{dir}/connector.properties:3: topic: unknown key; did you mean `topics`? Correct it: that key is required",
        ],
    },
    Case {
        name: "a sink's required key written with a typo (directory)",
        worker: "",
        connector: "name=bad\nconnector.class=directory\ntopics=t\ndirectory.pth={dir}/out\n",
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "{dir}/connector.properties:4: directory.pth: unknown key; did you mean `directory.path`?",
        ],
    },
    Case {
        name: "a sink's required key written with a typo (Pub/Sub)",
        worker: "",
        connector: "name=bad\nconnector.class=CloudPubSubSinkConnector\ntopics=t\ncps.project=p\ncps.topc=alerts\n",
        offsets: None,
        offsets_is_dir: false,
        expect: &["{dir}/connector.properties:5: cps.topc: unknown key; did you mean `cps.topic`?"],
    },
    Case {
        name: "a misspelt worker key",
        worker: "offset.storage.file.filname={dir}/connect.offsets\n",
        connector: OK_CONNECTOR,
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "{dir}/worker.properties:2: offset.storage.file.filname: unknown key; did you mean `offset.storage.file.filename`?",
        ],
    },
    Case {
        name: "a topic name Kafka cannot have",
        worker: "",
        connector: "name=bad\nconnector.class=FileStreamSink\ntopics=my topic\nfile={dir}/out.txt\n",
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "{dir}/connector.properties:3: topics: topic name `my topic` has a space; Kafka topic names use only a-z, A-Z, 0-9, '.', '_' and '-'",
        ],
    },
    Case {
        name: "an invalid topics.regex",
        worker: "",
        connector: "name=bad\nconnector.class=FileStreamSink\ntopics.regex=[abc\nfile={dir}/out.txt\n",
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "{dir}/connector.properties:3: topics.regex: `[abc` is not a valid regular expression: unclosed character class (at column 1)",
        ],
    },
    Case {
        name: "a broker address with a port out of range",
        worker: "bootstrap.servers=127.0.0.1:70000\n",
        connector: OK_CONNECTOR,
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "{dir}/worker.properties:1: bootstrap.servers: `127.0.0.1:70000` has port `70000`; a port is a number from 1 to 65535",
        ],
    },
    Case {
        name: "unreadable offset file",
        worker: "offset.storage.file.filename={dir}/connect.offsets\n",
        connector: OK_CONNECTOR,
        offsets: None,
        offsets_is_dir: true,
        expect: &[
            "{dir}/connect.offsets: cannot read the offset file (offset.storage.file.filename)",
        ],
    },
    Case {
        name: "corrupt offset file",
        worker: "offset.storage.file.filename={dir}/connect.offsets\n",
        connector: OK_CONNECTOR,
        offsets: Some(
            b"{\"format\":\"ferry-offsets\",\"version\":1,\"connectors\":{\"bad\":{\"t\":{\"0\":12",
        ),
        offsets_is_dir: false,
        expect: &[
            "{dir}/connect.offsets: the offset file is corrupt",
            "move it aside",
        ],
    },
    Case {
        name: "Kafka Connect's own offset file",
        worker: "offset.storage.file.filename={dir}/connect.offsets\n",
        connector: OK_CONNECTOR,
        offsets: Some(&[0xAC, 0xED, 0x00, 0x05, 0x73, 0x72]),
        offsets_is_dir: false,
        expect: &["{dir}/connect.offsets: this is a Kafka Connect offset file (Java-serialized)"],
    },
    Case {
        name: "unreachable broker",
        worker: "bootstrap.servers=127.0.0.1:1\noffset.storage.file.filename={dir}/connect.offsets\n",
        connector: OK_CONNECTOR,
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "cannot reach the Kafka brokers 127.0.0.1:1",
            "Connection refused",
            "{dir}/worker.properties",
        ],
    },
    Case {
        name: "bad JAAS",
        worker: "consumer.security.protocol=SASL_PLAINTEXT\nconsumer.sasl.mechanism=PLAIN\nconsumer.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"hunter2\n",
        connector: OK_CONNECTOR,
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "{dir}/worker.properties:4: consumer.sasl.jaas.config: a double-quoted value is not closed",
        ],
    },
    Case {
        name: "login module that does not match the mechanism",
        worker: "consumer.security.protocol=SASL_PLAINTEXT\nconsumer.sasl.mechanism=SCRAM-SHA-512\nconsumer.sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/k\" principal=\"p@R\";\n",
        connector: OK_CONNECTOR,
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "consumer.sasl.jaas.config: Krb5LoginModule does not go with sasl.mechanism=SCRAM-SHA-512",
        ],
    },
    Case {
        name: "unsupported converter",
        worker: "value.converter=io.confluent.connect.protobuf.ProtobufConverter\n",
        connector: OK_CONNECTOR,
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "{dir}/worker.properties:2: value.converter: `io.confluent.connect.protobuf.ProtobufConverter` is not supported yet",
        ],
    },
    Case {
        name: "Confluent's AvroConverter without its registry",
        worker: "value.converter=io.confluent.connect.avro.AvroConverter\n",
        connector: OK_CONNECTOR,
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "{dir}/worker.properties:2: value.converter: AvroConverter needs schema.registry.url",
        ],
    },
    Case {
        name: "registry credentials that are not user:secret, and never printed",
        worker: "value.converter=io.confluent.connect.avro.AvroConverter\nvalue.converter.schema.registry.url=https://registry.example:8081\nvalue.converter.basic.auth.credentials.source=USER_INFO\nvalue.converter.basic.auth.user.info=hunter2-without-a-colon\n",
        connector: OK_CONNECTOR,
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "value.converter: AvroConverter basic.auth.user.info must be <user>:<password> (the value is not shown)",
        ],
    },
    Case {
        name: "an unknown transform class",
        worker: "",
        connector: "name=bad\nconnector.class=FileStreamSink\ntopics=t\nfile={dir}/out.txt\ntransforms=InsertSource\ntransforms.InsertSource.type=com.example.InsertSource\n",
        offsets: None,
        offsets_is_dir: false,
        expect: &[
            "{dir}/connector.properties:6: transforms.InsertSource.type: unknown transform class `com.example.InsertSource`; ferry knows Cast$Key,",
        ],
    },
    Case {
        name: "a librdkafka value out of range",
        worker: "consumer.session.timeout.ms=-3\n",
        connector: OK_CONNECTOR,
        offsets: None,
        offsets_is_dir: false,
        expect: &["{dir}/worker.properties:2 consumer.session.timeout.ms: librdkafka rejects `-3`"],
    },
];

fn fill(s: &str, dir: &Path) -> String {
    s.replace("{dir}", dir.to_str().unwrap())
}

fn run_case(case: &Case, broker: &Broker) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let worker_text = if case.worker.contains("bootstrap.servers=") {
        fill(case.worker, d)
    } else {
        format!(
            "bootstrap.servers={}\n{}",
            broker.bootstrap,
            fill(case.worker, d)
        )
    };
    let worker: PathBuf = d.join("worker.properties");
    std::fs::write(&worker, worker_text).unwrap();
    let connector = d.join("connector.properties");
    std::fs::write(&connector, fill(case.connector, d)).unwrap();
    let offsets = d.join("connect.offsets");
    if let Some(bytes) = case.offsets {
        std::fs::write(&offsets, bytes).unwrap();
    }
    if case.offsets_is_dir {
        std::fs::create_dir(&offsets).unwrap();
    }
    let mut ferry = Ferry::spawn(
        &ferry_bin(),
        &[
            "standalone",
            "--broker-timeout",
            "3",
            worker.to_str().unwrap(),
            connector.to_str().unwrap(),
        ],
        d,
        "ferry",
    );
    let status = ferry.wait(Duration::from_secs(30));
    let log = ferry.log();
    assert!(!status.success(), "[{}] exited 0:\n{log}", case.name);
    assert!(
        !log.contains("panicked"),
        "[{}] panicked:\n{log}",
        case.name
    );
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("ferry: error:"))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "[{}] exactly one error line:\n{log}",
        case.name
    );
    for want in case.expect {
        let want = fill(want, d);
        assert!(
            errors[0].contains(&want),
            "[{}] error line lacks `{want}`:\n{}",
            case.name,
            errors[0]
        );
    }
    assert!(
        !log.contains("hunter2"),
        "[{}] a secret reached the log:\n{log}",
        case.name
    );
    // Nothing committed: the offset file is as it was (or holds no offsets), and the group
    // has no commits.
    match case.offsets {
        Some(bytes) => assert_eq!(
            std::fs::read(&offsets).unwrap(),
            bytes,
            "[{}] offset file changed",
            case.name
        ),
        None if !case.offsets_is_dir && offsets.exists() => {
            let doc = offset_file(&offsets);
            assert!(
                doc.values().all(|c| c.is_empty()),
                "[{}] offsets were written: {doc:?}",
                case.name
            );
        }
        None => {}
    }
    assert!(
        !d.join("out.txt").exists() || std::fs::read(d.join("out.txt")).unwrap().is_empty(),
        "[{}] records were delivered",
        case.name
    );
    assert_eq!(
        committed(&broker.bootstrap, "connect-bad", "t", 1),
        vec![-1],
        "[{}] the group has a commit",
        case.name
    );
}

#[test]
fn every_bad_input_gives_one_clear_line_and_commits_nothing() {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("t", 1);
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 10));
    for case in CASES {
        run_case(case, &broker);
    }
}

#[test]
fn a_missing_worker_file_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::spawn(
        &ferry_bin(),
        &[
            "standalone",
            "/nonexistent/worker.properties",
            "/nonexistent/c.properties",
        ],
        dir.path(),
        "ferry",
    );
    assert_eq!(ferry.wait(Duration::from_secs(10)).code(), Some(1));
    let log = ferry.log();
    assert_eq!(
        log.trim(),
        "ferry: error: /nonexistent/worker.properties: cannot read the file: No such file or directory (os error 2)"
    );
}

#[test]
fn usage_errors_exit_2_with_help() {
    let dir = tempfile::tempdir().unwrap();
    let mut ferry = Ferry::spawn(
        &ferry_bin(),
        &["standalone", "only-a-worker.properties"],
        dir.path(),
        "ferry",
    );
    assert_eq!(ferry.wait(Duration::from_secs(10)).code(), Some(2));
    assert!(ferry.log().contains("<CONNECTOR>..."), "{}", ferry.log());
    let mut daemon = Ferry::spawn(
        &connect_standalone_bin(),
        &["-daemon", "w.properties", "c.properties"],
        dir.path(),
        "cs",
    );
    assert_eq!(daemon.wait(Duration::from_secs(10)).code(), Some(1));
    assert!(
        daemon.log().contains("-daemon is not supported"),
        "{}",
        daemon.log()
    );
}

/// `ferry validate` exits 1 on a misspelt worker key, with one line naming file, line, key
/// and the key meant — also when the key meant is a required one.
#[test]
fn validate_refuses_misspelt_worker_keys() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expect) in [
        (
            "key.converter=ByteArrayConverter\nbootstrap.server=127.0.0.1:9092\n",
            "worker.properties:2: bootstrap.server: unknown key; did you mean `bootstrap.servers`? Correct it: that key is required",
        ),
        (
            "bootstrap.servers=127.0.0.1:9092\noffset.storage.file.filname=/tmp/x\n",
            "worker.properties:2: offset.storage.file.filname: unknown key; did you mean `offset.storage.file.filename`? Correct or remove it",
        ),
    ] {
        let worker = dir.path().join("worker.properties");
        std::fs::write(&worker, text).unwrap();
        let out = std::process::Command::new(ferry_bin())
            .arg("validate")
            .arg(&worker)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("ferry: error:"))
            .collect();
        assert_eq!(
            errors,
            vec![format!("ferry: error: {}/{expect}", dir.path().display())],
            "{stderr}"
        );
    }
}

/// Absurdly long values: exit 1 with one short error line, never a crash or a hang. librdkafka
/// copies `bootstrap.servers` onto the stack (SIGSEGV at 10 MiB), and a client id past
/// 32 767 bytes does not fit Kafka's protocol string (the client retried forever). The
/// files are written here, in a temporary directory.
#[test]
fn very_long_values_give_one_short_line_and_no_crash() {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("t", 1);
    let bs = broker.bootstrap.clone();
    let big = "a".repeat(10 << 20);
    let ok_connector = "name=bad\nconnector.class=FileStreamSink\ntopics=t\nfile={dir}/out.txt\n";
    let ok_worker = format!("bootstrap.servers={bs}\n");
    let cases: Vec<(&str, String, String, String)> = vec![
        (
            "10 MiB bootstrap.servers",
            format!("bootstrap.servers={big}\n"),
            ok_connector.into(),
            "worker.properties:1: bootstrap.servers: the line is 10485778 bytes; ferry reads values of at most 1 MiB (1048576 bytes)".into(),
        ),
        (
            "10 MiB name",
            ok_worker.clone(),
            format!("name={big}\nconnector.class=FileStreamSink\ntopics=t\nfile={{dir}}/out.txt\n"),
            "connector.properties:1: name: the line is 10485765 bytes".into(),
        ),
        (
            "10 MiB consumer.client.id",
            format!("bootstrap.servers={bs}\nconsumer.client.id={big}\n"),
            ok_connector.into(),
            "worker.properties:2: consumer.client.id: the line is 10485779 bytes".into(),
        ),
        (
            "40 KB consumer.client.id",
            format!("bootstrap.servers={bs}\nconsumer.client.id={}\n", "c".repeat(40_000)),
            ok_connector.into(),
            "worker.properties:2: consumer.client.id: the value is 40000 bytes; Kafka sends client.id as a protocol string of at most 32767 bytes".into(),
        ),
        (
            "1 MB client.id override",
            ok_worker.clone(),
            format!("{ok_connector}consumer.override.client.id={}\n", "c".repeat(1_000_000)),
            "connector.properties:5: consumer.override.client.id: the value is 1000000 bytes".into(),
        ),
        (
            "a 300 KB offset file path",
            format!(
                "bootstrap.servers={bs}\noffset.storage.file.filename=/{}\n",
                "o".repeat(300_000)
            ),
            ok_connector.into(),
            format!(
                "worker.properties:2: offset.storage.file.filename: `/{}… (300001 bytes)` is longer than a path can be (4096 bytes)",
                "o".repeat(99)
            ),
        ),
        (
            "a 300-byte broker host",
            format!("bootstrap.servers={}:9092\n", "h".repeat(300)),
            ok_connector.into(),
            format!(
                "worker.properties:1: bootstrap.servers: `{}… (305 bytes)` has a 300-byte host name; host names are at most 255 bytes",
                "h".repeat(100)
            ),
        ),
        (
            "a 300 KB file sink path",
            ok_worker.clone(),
            format!(
                "name=bad\nconnector.class=FileStreamSink\ntopics=t\nfile=/{}\n",
                "f".repeat(300_000)
            ),
            format!(
                "connector.properties:4: file: `/{}… (300001 bytes)` is longer than a path can be (4096 bytes)",
                "f".repeat(99)
            ),
        ),
        (
            "a 300 KB directory.path",
            ok_worker.clone(),
            format!(
                "name=bad\nconnector.class=directory\ntopics=t\ndirectory.path=/{}\n",
                "d".repeat(300_000)
            ),
            format!(
                "connector.properties:4: directory.path: `/{}… (300001 bytes)` is longer than a path can be (4096 bytes)",
                "d".repeat(99)
            ),
        ),
        (
            "a 300-byte connector name",
            ok_worker.clone(),
            format!("name={}\nconnector.class=FileStreamSink\ntopics=t\nfile={{dir}}/out.txt\n", "n".repeat(300)),
            format!(
                "connector.properties:1: name: `{}… (300 bytes)` is 300 bytes; ferry allows at most 249",
                "n".repeat(100)
            ),
        ),
    ];
    for (name, worker_text, connector_text, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let worker = d.join("worker.properties");
        let connector = d.join("connector.properties");
        std::fs::write(&worker, fill(&worker_text, d)).unwrap();
        std::fs::write(&connector, fill(&connector_text, d)).unwrap();
        let mut ferry = Ferry::spawn(
            &ferry_bin(),
            &[
                "standalone",
                "--broker-timeout",
                "3",
                worker.to_str().unwrap(),
                connector.to_str().unwrap(),
            ],
            d,
            "ferry",
        );
        let status = wait_child(&mut ferry.child, Duration::from_secs(60));
        let log = ferry.log();
        // Never quote a 10 MiB log in a failure message.
        let head: String = log.chars().take(2000).collect();
        let status = status.unwrap_or_else(|| panic!("[{name}] no exit within 60 s:\n{head}"));
        assert_eq!(status.code(), Some(1), "[{name}] {status}:\n{head}");
        assert!(!log.contains("panicked"), "[{name}] panicked:\n{head}");
        assert!(
            log.len() < 16 * 1024,
            "[{name}] {} bytes of log:\n{head}",
            log.len()
        );
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("ferry: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "[{name}] one error line:\n{head}");
        assert!(
            errors[0].len() < 600,
            "[{name}] {} bytes: {}",
            errors[0].len(),
            errors[0]
        );
        let want = format!("ferry: error: {}/{expect}", d.display());
        assert!(
            errors[0].starts_with(&want),
            "[{name}]\n got: {}\nwant: {want}",
            errors[0]
        );
        assert!(
            !d.join("out.txt").exists(),
            "[{name}] records were delivered"
        );
    }
    assert_eq!(committed(&bs, "connect-bad", "t", 1), vec![-1]);
}

/// `ferry validate` lists every problem of every connector file, each on its own line naming
/// the file and line — the same validation `PUT …/config/validate` answers with.
#[test]
fn validate_lists_every_problem_of_every_connector_file() {
    let dir = tempfile::tempdir().unwrap();
    let worker = dir.path().join("worker.properties");
    std::fs::write(&worker, "bootstrap.servers=127.0.0.1:9092\n").unwrap();
    let a = dir.path().join("a.properties");
    std::fs::write(
        &a,
        "name=a\nconnector.class=file\ntasks.max=0\ntopics=t\nerrors.tolerance=some\nfile=/tmp/x\n",
    )
    .unwrap();
    let b = dir.path().join("b.properties");
    std::fs::write(&b, "connector.class=nosuch\ntopics=t\n").unwrap();
    let out = std::process::Command::new(ferry_bin())
        .arg("validate")
        .args([&worker, &a, &b])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let d = dir.path().display();
    let errors: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("ferry: error: "))
        .map(|l| l.replace(&format!("{d}/"), ""))
        .map(|l| l.split(':').take(3).collect::<Vec<_>>().join(":"))
        .collect();
    assert_eq!(
        errors,
        [
            "a.properties:3: tasks.max",
            "a.properties:5: errors.tolerance",
            "b.properties: missing required key `name`: a unique name for this connector, e.g. name=ztf-to-pubsub",
            "b.properties:1: connector.class",
        ],
        "{stderr}"
    );
}
