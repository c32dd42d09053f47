//! Every example file in config/ is parsed by `ferry validate`, so none of them rots.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn validate(files: &[&Path], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(ferry_bin())
        .arg("validate")
        .args(files)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The worker an example connector is meant for, by its name.
fn worker_for(connector: &Path, dir: &Path) -> PathBuf {
    let name = connector
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let prefix = name.split('-').next().unwrap();
    let candidate = dir.join(format!("{prefix}-worker.properties"));
    if candidate.exists() {
        candidate
    } else {
        dir.join("connect-standalone.properties")
    }
}

#[test]
fn every_example_file_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let env = [
        ("FERRY_QUICKSTART_BOOTSTRAP", "127.0.0.1:9092"),
        ("FERRY_QUICKSTART_DIR", "/tmp/ferry-quickstart"),
        ("RUBIN_KAFKA_PASSWORD", "not-the-real-one"),
        ("ALIECS_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        (
            "ALIECS_DESCRIPTOR_SET",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/aliecs/events.desc"),
        ),
    ];
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "properties"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let mut connectors = 0;
    for file in &files {
        let distributed = file.ends_with("connect-distributed.properties");
        let is_worker = file.to_string_lossy().ends_with("worker.properties")
            || file.ends_with("connect-standalone.properties")
            || distributed;
        let (ok, text) = if is_worker {
            validate(&[file], &env)
        } else {
            connectors += 1;
            validate(&[&worker_for(file, &dir), file], &env)
        };
        assert!(ok, "{} does not validate:\n{text}", file.display());
        assert!(text.contains("OK: 1 worker file"), "{text}");
        // The distributed example is checked as `ferry distributed` reads it; no other is.
        assert_eq!(
            text.contains("OK: 1 worker file (distributed)"),
            distributed,
            "{}:\n{text}",
            file.display()
        );
        assert!(
            !text.contains("[unknown]"),
            "{} has keys nobody reads:\n{text}",
            file.display()
        );
        assert!(
            !text.contains("not-the-real-one"),
            "a secret was printed:\n{text}"
        );
    }
    assert!(connectors >= 4);
}

#[test]
fn validate_redacts_secrets_and_lists_translations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let (ok, text) = validate(
        &[
            &dir.join("rubin-worker.properties"),
            &dir.join("null-benchmark.properties"),
        ],
        &[("RUBIN_KAFKA_PASSWORD", "s3cr3t-value")],
    );
    assert!(ok, "{text}");
    assert!(!text.contains("s3cr3t-value"), "{text}");
    assert!(text.contains("sasl.password = [redacted]"), "{text}");
    assert!(text.contains("sasl.username = pittgoogle-idfint"), "{text}");
    assert!(text.contains("group.id = pittgoogle-rubin"), "{text}");
    assert!(
        text.contains("[translated]") && text.contains("consumer.sasl.jaas.config"),
        "{text}"
    );
    let (ok, text) = validate(
        &[
            &dir.join("ztf-worker.properties"),
            &dir.join("ztf-directory.properties"),
        ],
        &[],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("sasl.kerberos.keytab = /home/ztf_consumer/pitt-reader.user.keytab"),
        "{text}"
    );
    assert!(
        text.contains("Kerberos: ferry logs in as pitt-reader@KAFKA.SECURE with keytab /home/ztf_consumer/pitt-reader.user.keytab"),
        "{text}"
    );
    assert!(
        text.contains("sasl.kerberos.min.time.before.relogin = 0"),
        "librdkafka's kinit is off: {text}"
    );
    assert!(
        text.contains("[ignored]") && text.contains("plugin.path"),
        "{text}"
    );
    assert!(
        text.contains("topics.regex=ztf_\\d{8}_programid1"),
        "{text}"
    );
}

#[test]
fn a_missing_provider_variable_names_the_key_not_a_value() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let out = Command::new(ferry_bin())
        .args(["validate"])
        .arg(dir.join("rubin-worker.properties"))
        .env_remove("RUBIN_KAFKA_PASSWORD")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rubin-worker.properties:12: consumer.sasl.jaas.config: cannot resolve ${env:RUBIN_KAFKA_PASSWORD}: environment variable RUBIN_KAFKA_PASSWORD is not set"),
        "{err}"
    );
}

/// Runs `ferry ARGS FILE`: whether it succeeded, and its standard error.
fn ferry(args: &[&str], file: &Path) -> (bool, String) {
    let out = Command::new(ferry_bin())
        .args(args)
        .arg(file)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A connect-distributed.properties is validated as `ferry distributed` reads it: the
/// cluster's keys are shown, not listed as ignored; a missing internal topic is one line
/// naming the file and the key, as `ferry distributed` would print it.
#[test]
fn a_distributed_worker_file_is_validated_as_ferry_distributed_reads_it() {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/connect-distributed.properties");
    let (ok, text) = validate(&[&example], &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains("cluster (group.id) = connect-cluster"),
        "{text}"
    );
    assert!(
        text.contains(
            "status.storage.topic = connect-status    # 5 partition(s), replication factor 1"
        ),
        "{text}"
    );
    assert!(
        !text.contains("status.storage.topic: ignored") && !text.contains("group.id: ignored"),
        "keys distributed mode reads are not ignored:\n{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("connect-distributed.properties");
    let without_status: String = std::fs::read_to_string(&example)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("status.storage."))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&bad, without_status).unwrap();
    let (ok, text) = validate(&[&bad], &[]);
    assert!(!ok, "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains(&format!(
            "{}: missing required key `status.storage.topic`",
            bad.display()
        )),
        "{text}"
    );
    // The same line `ferry distributed` stops with.
    let (ok, err) = ferry(&["distributed", "--broker-timeout", "1"], &bad);
    assert!(!ok, "{err}");
    assert!(
        err.lines().any(|l| l == lines[0]),
        "{err}\nvs validate's {text}"
    );

    // group.id alone does not make a distributed file, but --distributed asks for the check.
    let standalone = dir.path().join("w.properties");
    write_props(
        &standalone,
        &[
            ("bootstrap.servers", "localhost:9092"),
            ("offset.storage.file.filename", "/tmp/o"),
            ("group.id", "meant-for-consumer.group.id"),
        ],
    );
    let (ok, text) = validate(&[&standalone], &[]);
    assert!(
        ok && text.contains("OK: 1 worker file, 0 connector file(s)."),
        "{text}"
    );
    let (ok, err) = ferry(&["validate", "--distributed"], &standalone);
    assert!(!ok, "{err}");
    assert!(
        err.contains("missing required key `config.storage.topic`"),
        "{err}"
    );
}
