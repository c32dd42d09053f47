//! `ferry check` against a real (mock) cluster: a failure is never marked ✓. The sinks'
//! start-up check proves the output can be created and written, Google credential errors
//! name the file they came from, and no colour codes reach a pipe.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Runs `ferry check WORKER CONNECTOR` with `args` before the files; returns the exit code,
/// standard output and standard error.
fn check(dir: &Path, connector: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("alerts", 1);
    let worker = worker_props(dir, &broker.bootstrap, &[]);
    let file = dir.join("c.properties");
    write_props(&file, connector);
    let mut child = Command::new(ferry_bin())
        .args(args)
        .arg("check")
        .args([&worker, &file])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_child(&mut child, Duration::from_secs(60)).expect("ferry check ended");
    let mut out = String::new();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    eprintln!("[check]\n{out}[stderr]\n{err}");
    (status.code(), out, err)
}

fn last_line(out: &str) -> &str {
    out.lines().last().unwrap_or_default()
}

#[test]
fn a_directory_that_cannot_be_created_fails_the_sink_step() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = check(
        dir.path(),
        &[
            ("name", "dir"),
            ("connector.class", "directory"),
            ("topics", "alerts"),
            ("directory.path", "/proc/nope/out"),
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        last_line(&out),
        "✗ sink ready: dir: `directory.path`: cannot create the directory /proc/nope/out: No such file or directory (os error 2); choose a directory this user can create and write",
        "{out}"
    );
    assert!(out.contains("✓ brokers answer"), "{out}");
}

#[test]
fn a_good_directory_passes_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out/alerts");
    let (code, out, err) = check(
        dir.path(),
        &[
            ("name", "dir"),
            ("connector.class", "directory"),
            ("topics", "alerts"),
            ("directory.path", target.to_str().unwrap()),
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(last_line(&out), "✓ sink ready: dir (directory)", "{out}");
    assert!(
        !dir.path().join("out").exists(),
        "check created nothing that stays"
    );
    assert!(
        !out.contains('\u{1b}') && !err.contains('\u{1b}'),
        "no colour codes into a pipe"
    );
}

#[test]
fn a_file_in_an_unwritable_place_fails_the_sink_step() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = check(
        dir.path(),
        &[
            ("name", "f"),
            ("connector.class", "FileStreamSink"),
            ("topics", "alerts"),
            ("file", "/proc/nope/out.txt"),
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{out}");
    let last = last_line(&out);
    assert!(
        last.starts_with("✗ sink ready: f: `file`: cannot create the directory /proc/nope: "),
        "{out}"
    );
}

/// A service-account key whose private key is damaged: the line names `keyfile` and the
/// file, says what is wrong and never quotes the key.
#[test]
fn a_damaged_google_key_is_named_by_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("sa.json");
    let json = serde_json::json!({
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k1",
        "private_key": "-----BEGIN PRIVATE KEY-----\nZmVycnktdGVzdC1ub3QtYS1rZXk=\n-----END PRIVATE KEY-----\n",
        "client_email": "loader@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    std::fs::write(&key, json.to_string()).unwrap();
    let (code, out, err) = check(
        dir.path(),
        &[
            ("name", "bq"),
            ("connector.class", "BigQuerySinkConnector"),
            ("topics", "alerts"),
            ("project", "p"),
            ("defaultDataset", "d"),
            ("keyfile", key.to_str().unwrap()),
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{out}");
    let last = last_line(&out);
    assert!(
        last.starts_with(&format!(
            "✗ sink ready: bq: keyfile {} does not produce an access token (",
            key.display()
        )),
        "{out}"
    );
    assert!(last.contains("create a new JSON key"), "{out}");
    assert!(
        !out.contains("ZmVycnkt") && !err.contains("ZmVycnkt"),
        "the key never appears"
    );
}

/// `--color=always` is the only way colour reaches a pipe; auto (the default) and NO_COLOR
/// keep it out. Standalone's INFO lines show it.
#[test]
fn colour_codes_only_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    // Two keys that ferry logs a note about (ignored, and Java-only) before it gives up.
    let worker = worker_props(
        dir.path(),
        "127.0.0.1:1",
        &[
            ("plugin.path", "/usr/share/java"),
            ("consumer.max.poll.records", "10"),
        ],
    );
    let connector = dir.path().join("c.properties");
    write_props(
        &connector,
        &[
            ("name", "f"),
            ("connector.class", "FileStreamSink"),
            ("topics", "alerts"),
        ],
    );
    let run = |color: Option<&str>| {
        let mut cmd = Command::new(ferry_bin());
        if let Some(c) = color {
            cmd.arg(format!("--color={c}"));
        }
        let out = cmd
            .args(["standalone", "--broker-timeout", "1"])
            .args([&worker, &connector])
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8(out.stderr).unwrap()
    };
    let always = run(Some("always"));
    assert!(always.contains("\u{1b}["), "{always}");
    for plain in [run(None), run(Some("auto")), run(Some("never"))] {
        assert!(plain.contains("INFO") || plain.contains("WARN"), "{plain}");
        assert!(!plain.contains('\u{1b}'), "{plain}");
    }
}
