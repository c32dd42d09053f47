//! The README's REST examples, run as written: every `$ curl …` line of the "An example
//! session" and "Authentication" blocks is run with bash against a live ferry (only the
//! port and /tmp are substituted), and its output compared with the README's (`…` matches
//! anything). A command shown without output must not answer with an error.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

/// One `$ ` command of a README block (continuation lines joined) and the lines shown after it.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The commands of the `nth` code block (0-based) after `heading` in the README.
fn block(readme: &str, heading: &str, nth: usize) -> Vec<Step> {
    let at = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading}"));
    let text = readme[at..].split("```").nth(2 * nth + 1).unwrap();
    let mut steps: Vec<Step> = Vec::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: cmd.to_string(),
                expected: Vec::new(),
            });
        } else if let Some(step) = steps.last_mut() {
            if line.starts_with("    ") && step.expected.is_empty() {
                step.command.push('\n');
                step.command.push_str(line);
            } else if !line.trim().is_empty() {
                step.expected.push(line.to_string());
            }
        }
    }
    assert!(!steps.is_empty(), "no commands under {heading}");
    steps
}

/// `…` in the README's output stands for anything.
fn matches(expected: &str, actual: &str) -> bool {
    let pattern = expected
        .split('…')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(".*");
    regex::Regex::new(&format!("^{pattern}$"))
        .unwrap()
        .is_match(actual)
}

/// Runs a step as written (port and /tmp substituted); the output's lines.
fn run(step: &Step, port: u16, dir: &Path) -> Vec<String> {
    let command = step
        .command
        .replace("localhost:8083", &format!("127.0.0.1:{port}"))
        .replace("/tmp/", &format!("{}/", dir.display()));
    assert!(
        command.starts_with("curl "),
        "not a curl command: {command}"
    );
    let out = Command::new("bash")
        .args(["-c", &format!("{command} --max-time 30")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{command}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Runs a step until its output is what the README shows; a GET may be retried while the
/// state settles, anything else runs once.
fn check(step: &Step, port: u16, dir: &Path, ferry: &Ferry) {
    let get = !step.command.contains(" -X ");
    // The worker id in answers carries the port too.
    let expected: Vec<String> = step
        .expected
        .iter()
        .map(|e| e.replace("127.0.0.1:8083", &format!("127.0.0.1:{port}")))
        .collect();
    let mut last = Vec::new();
    let ok = wait_until(if get { WAIT } else { Duration::ZERO }, || {
        last = run(step, port, dir);
        if expected.is_empty() {
            !last.iter().any(|l| l.contains("\"error_code\""))
        } else {
            last.len() == expected.len() && expected.iter().zip(&last).all(|(e, a)| matches(e, a))
        }
    });
    assert!(
        ok,
        "README step `{}`:\nexpected {:?}\ngot      {last:?}\nlog:\n{}",
        step.command,
        expected,
        ferry.log()
    );
}

fn ferry_with_api(dir: &Path, bootstrap: &str, keep: &str, extra: &[(&str, &str)]) -> (Ferry, u16) {
    let port = free_port();
    let listeners = format!("http://127.0.0.1:{port}");
    let keep_file = dir.join("keep.properties");
    write_props(
        &keep_file,
        &[
            ("name", keep),
            ("connector.class", "null"),
            ("topics", "keep"),
        ],
    );
    let mut props = vec![
        ("listeners", listeners.as_str()),
        ("ferry.rest.enable", "true"),
    ];
    props.extend_from_slice(extra);
    let worker = worker_props(dir, bootstrap, &props);
    let ferry = Ferry::standalone(dir, &worker, &[&keep_file]);
    let up = wait_until(WAIT, || {
        curl("GET", &format!("{listeners}/health"), &[], None, 5).0 == 200
    });
    assert!(up, "the API did not come up; log:\n{}", ferry.log());
    (ferry, port)
}

#[test]
fn the_example_session_runs_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let steps = block(&readme, "### An example session", 0);
    let mut broker = Broker::start(1, 0);
    broker.create_topic("lines", 1);
    broker.create_topic("keep", 1);
    produce_lines(&broker.bootstrap, "lines", 0, &numbered(0, 150));
    let dir = tempfile::tempdir().unwrap();
    let (ferry, port) = ferry_with_api(dir.path(), &broker.bootstrap, "keep", &[]);
    let first = dir.path().join("lines.txt");
    let second = dir.path().join("lines2.txt");
    for step in &steps {
        // What the session's comments promise happens between its steps.
        if step.command.contains("/config -d") {
            assert!(
                wait_until(WAIT, || lines_of(&first).len() == 150),
                "the created connector did not deliver the topic: {} lines",
                lines_of(&first).len()
            );
        }
        if step.command.contains("-X DELETE") {
            // Moved back to offset 100 and resumed: the last 50 records again, into the
            // file the PATCH named.
            assert!(
                wait_until(WAIT, || lines_of(&second) == numbered(0, 150)[100..]),
                "after the offsets moved back to 100 and resume: {:?}",
                lines_of(&second)
            );
        }
        check(step, port, dir.path(), &ferry);
    }
    assert_eq!(lines_of(&first), numbered(0, 150));
}

#[test]
fn the_authentication_example_runs_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let steps = block(&readme, "### Authentication", 1);
    // The users file is the README's first block under the heading.
    let at = readme.find("### Authentication").unwrap();
    let users: String = readme[at..]
        .split("```")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(users.contains('='), "no users file in the README: {users}");
    let mut broker = Broker::start(1, 0);
    broker.create_topic("keep", 1);
    let dir = tempfile::tempdir().unwrap();
    let users_file = dir.path().join("rest-users.properties");
    std::fs::write(&users_file, users).unwrap();
    let users_path = users_file.display().to_string();
    let (ferry, port) = ferry_with_api(
        dir.path(),
        &broker.bootstrap,
        "lines-to-file",
        &[("ferry.rest.basic.auth.file", &users_path)],
    );
    let curl_steps: Vec<&Step> = steps
        .iter()
        .filter(|s| s.command.starts_with("curl"))
        .collect();
    assert_eq!(curl_steps.len(), 2, "{steps:?}");
    for step in curl_steps {
        check(step, port, dir.path(), &ferry);
    }
}

#[test]
fn the_log_levels_example_runs_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let steps = block(&readme, "### Log levels at run time", 0);
    let mut broker = Broker::start(1, 0);
    broker.create_topic("keep", 1);
    let dir = tempfile::tempdir().unwrap();
    let (ferry, port) = ferry_with_api(dir.path(), &broker.bootstrap, "keep", &[]);
    for step in &steps {
        check(step, port, dir.path(), &ferry);
    }
}
