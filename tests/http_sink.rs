//! The HTTP sink end to end: hetida designer's execution requests produced with kcat `-K:`
//! as hetida's doc does, a real HTTP server standing in for hetida's execution endpoint
//! (tests/http/hetida_server.py, Python's standard library), a real ferry process and the
//! mock Kafka cluster. The server logs every request it receives; the test reads that log,
//! the group's committed offsets and (for replies) the reply topics with kcat.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const GENEROUS: Duration = Duration::from_secs(90);
const TOPIC: &str = "hd-execution-topic";
const URL_PATH: &str = "/api/transformations/execute";

/// hetida designer's Volatility Detection example request (docs/execution/
/// execution_via_kafka.md), with the job id given.
fn request(job_id: &str) -> String {
    let series = r#"{\"2018-05-19T22:20:00.000Z\":86.9358994238,\"2018-05-19T22:25:00.000Z\":78.6552569681,\"2018-05-19T22:30:00.000Z\":93.515633185,\"2018-05-19T22:35:00.000Z\":96.3497006614,\"2018-05-19T22:40:00.000Z\":83.1926874657,\"2018-05-22T05:50:00.000Z\":926.4357356548,\"2018-05-22T05:55:00.000Z\":934.7257131637,\"2018-05-22T06:00:00.000Z\":908.4082221891,\"2018-05-22T06:05:00.000Z\":917.7112901544,\"2018-05-22T06:10:00.000Z\":924.0958121497}"#;
    format!(
        r#"{{ "id": "79ce1eb1-3ef8-4c74-9114-c856fd88dc89", "wiring": {{ "input_wirings": [ {{ "workflow_input_name": "window_size", "adapter_id": "direct_provisioning", "filters": {{ "value": "180min" }} }}, {{ "workflow_input_name": "window_timestamp_location", "adapter_id": "direct_provisioning", "filters": {{ "value": "center" }} }}, {{ "workflow_input_name": "input_series", "adapter_id": "direct_provisioning", "filters": {{ "value": "{series}" }} }}, {{ "workflow_input_name": "threshold", "adapter_id": "direct_provisioning", "filters": {{ "value": "600.0" }} }} ], "output_wirings": [] }}, "run_pure_plot_operators": false, "job_id": "{job_id}"}}"#
    )
}

/// The test's HTTP server in its own process, stopped by PID when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    /// Starts the server on `port` (0: a free one); None (skip) without python3.
    fn start(dir: &Path, port: u16, expect_auth: Option<&str>) -> Option<Server> {
        Server::start_with(dir, port, expect_auth, &[])
    }

    /// Like `start`, with more environment for the server (`TOKEN_CLIENT`).
    fn start_with(
        dir: &Path,
        port: u16,
        expect_auth: Option<&str>,
        env: &[(&str, &str)],
    ) -> Option<Server> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http/hetida_server.py");
        let log = dir.join("server.log");
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = dir.join(format!("server-{n}.out"));
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .arg(port.to_string())
            .arg(&log)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::inherit())
            .envs(env.iter().copied());
        if let Some(a) = expect_auth {
            cmd.env("EXPECT_AUTH", a);
        }
        let mut child = cmd.spawn().ok()?;
        let mut port = 0;
        let up = wait_until(Duration::from_secs(20), || {
            port = std::fs::read_to_string(&out)
                .unwrap_or_default()
                .trim()
                .strip_prefix("port=")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            port != 0
        });
        if !up {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the test HTTP server did not start within 20 s");
        }
        Some(Server { child, port, log })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}{URL_PATH}", self.port)
    }

    /// Every request received so far.
    fn entries(&self) -> Vec<serde_json::Value> {
        read_entries(&self.log)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_entries(log: &Path) -> Vec<serde_json::Value> {
    lines_of(log)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn python_missing(test: &str) -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::emulator::skip(test, "python3 is not installed (the test's HTTP server)");
    }
    !ok
}

/// Produces `key:value` lines with kcat `-K:`, as hetida's doc does with its console
/// producer.
fn produce_keyed(bootstrap: &str, partition: i32, lines: &[String]) {
    let mut cmd = kcat();
    cmd.args(["-b", bootstrap, "-K:"]);
    feed_kcat(cmd, TOPIC, partition, lines).unwrap();
}

fn connector(dir: &Path, url: &str, extra: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("hetida-http.properties");
    let mut pairs = vec![
        ("name", "hetida"),
        (
            "connector.class",
            "io.confluent.connect.http.HttpSinkConnector",
        ),
        ("tasks.max", "1"),
        ("topics", TOPIC),
        ("http.api.url", url),
        ("request.body.format", "json"),
        ("retry.on.status.codes", "500-"),
        ("max.retries", "5"),
        ("retry.backoff.ms", "100"),
        ("http.connect.timeout.ms", "1000"),
        ("errors.tolerance", "all"),
        ("errors.log.enable", "true"),
    ];
    for (k, v) in extra {
        pairs.retain(|(key, _)| key != k);
        pairs.push((k, v));
    }
    write_props(&path, &pairs);
    path
}

/// Statuses the server answered per job id, in order.
fn statuses_by_job(entries: &[serde_json::Value]) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in entries {
        let body: serde_json::Value =
            serde_json::from_str(e["body"].as_str().unwrap()).unwrap_or_default();
        let job = body["job_id"].as_str().unwrap_or("(none)").to_string();
        out.entry(job)
            .or_default()
            .push(e["status"].as_u64().unwrap());
    }
    out
}

#[test]
fn hetida_requests_reach_the_server_byte_for_byte_with_500s_retried_and_400s_reported() {
    let test = "hetida_requests_reach_the_server_byte_for_byte_with_500s_retried_and_400s_reported";
    if python_missing(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // hetida:s3cret-pw
    let auth = "Basic aGV0aWRhOnMzY3JldC1wdw==";
    let server = Server::start(dir.path(), 0, Some(auth)).unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic(TOPIC, 2);

    // Per partition: good jobs, a job the server fails twice with 500, one it refuses with
    // 400, a request that is not one (422), a run that fails inside (200, result=failure).
    let mut sent: BTreeMap<String, String> = BTreeMap::new();
    for p in 0..2 {
        let mut lines = Vec::new();
        for (key, value) in [
            (format!("exec_job_{p}_0"), request(&format!("job-{p}-0"))),
            (format!("exec_job_{p}_1"), request(&format!("fail500-{p}"))),
            (format!("exec_job_{p}_2"), request(&format!("job-{p}-2"))),
            (format!("exec_job_{p}_3"), request(&format!("bad400-{p}"))),
            (format!("exec_job_{p}_4"), r#"{"wiring": {}}"#.to_string()),
            (
                format!("exec_job_{p}_5"),
                request(&format!("job-{p}-5")).replace(r#""value": "600.0""#, r#""value": "abc""#),
            ),
        ] {
            lines.push(format!("{key}:{value}"));
            sent.insert(key, value);
        }
        produce_keyed(&broker.bootstrap, p, &lines);
    }

    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let conn = connector(
        dir.path(),
        &server.url(),
        &[
            ("auth.type", "BASIC"),
            ("connection.user", "hetida"),
            ("connection.password", "s3cret-pw"),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&conn]);
    let done = wait_until(GENEROUS, || {
        committed(&broker.bootstrap, "connect-hetida", TOPIC, 2) == [6, 6]
    });
    ferry.signal("TERM");
    ferry.wait(Duration::from_secs(30));
    let log = ferry.log();
    assert!(done, "offsets never reached [6, 6]; ferry log:\n{log}");

    let entries = server.entries();
    // Every record's value arrived byte for byte, as JSON, with the credentials.
    let bodies: Vec<&str> = entries
        .iter()
        .map(|e| e["body"].as_str().unwrap())
        .collect();
    for (key, value) in &sent {
        assert!(bodies.contains(&value.as_str()), "{key} never arrived");
    }
    assert!(
        bodies.iter().all(|b| sent.values().any(|v| v == b)),
        "the server got a body nobody produced"
    );
    for e in &entries {
        assert_eq!(e["method"], "POST");
        assert_eq!(e["path"], URL_PATH);
        assert_eq!(e["auth"], auth);
        assert_eq!(e["content_type"], "application/json");
    }
    let by_job = statuses_by_job(&entries);
    for p in 0..2 {
        for job in [
            format!("job-{p}-0"),
            format!("job-{p}-2"),
            format!("job-{p}-5"),
        ] {
            assert_eq!(by_job[&job], [200], "{job}: one request, answered");
        }
        // 500 is in retry.on.status.codes=500-: retried until answered.
        assert_eq!(by_job[&format!("fail500-{p}")], [500, 500, 200]);
        // 400 is not: one attempt, a record error.
        assert_eq!(by_job[&format!("bad400-{p}")], [400]);
    }
    assert_eq!(
        by_job["(none)"],
        [422, 422],
        "the two non-requests, once each"
    );

    // errors.log.enable: each refused record is logged with the server's answer.
    for p in 0..2 {
        assert!(
            log.lines().any(|l| l.contains(&format!("partition={p}"))
                && l.contains("answered 400 after 1 attempt(s)")
                && l.contains(&format!("bad400-{p}"))),
            "no record error line for bad400-{p}:\n{log}"
        );
    }
    assert!(log.contains("answered 422"), "{log}");
    assert!(
        !log.contains("s3cret-pw"),
        "the password leaked into the log"
    );
}

#[test]
fn a_server_down_for_20_s_loses_nothing_and_commits_nothing_meanwhile() {
    let test = "a_server_down_for_20_s_loses_nothing_and_commits_nothing_meanwhile";
    if python_missing(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let auth = "Bearer tok-4711";
    let mut server = Server::start(dir.path(), 0, Some(auth)).unwrap();
    let port = server.port;
    let mut broker = Broker::start(1, 300);
    broker.create_topic(TOPIC, 1);
    let lines = |range: std::ops::Range<usize>| -> Vec<String> {
        range
            .map(|i| format!("exec_job_{i}:{}", request(&format!("job-{i}"))))
            .collect()
    };
    produce_keyed(&broker.bootstrap, 0, &lines(0..5));

    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let conn = connector(
        dir.path(),
        &server.url(),
        &[
            ("auth.type", "bearer"),
            ("bearer.token", "tok-4711"),
            ("max.retries", "2"),
            ("retry.backoff.ms", "200"),
            ("errors.retry.delay.max.ms", "1000"),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&conn]);
    let first = wait_until(GENEROUS, || {
        committed(&broker.bootstrap, "connect-hetida", TOPIC, 1) == [5]
    });
    assert!(first, "the first five were not committed:\n{}", ferry.log());

    // The server goes away; five more requests arrive meanwhile.
    server.stop();
    produce_keyed(&broker.bootstrap, 0, &lines(5..10));
    let down_until = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < down_until {
        seen.push(committed(&broker.bootstrap, "connect-hetida", TOPIC, 1)[0]);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        seen.iter().all(|o| *o == 5),
        "offsets moved while the server was down: {seen:?}\n{}",
        ferry.log()
    );
    let offsets_file = offset_file(&dir.path().join("connect.offsets"));
    assert_eq!(offsets_file["hetida"][&format!("{TOPIC}-0")], 5);

    // Back on the same port: everything is delivered and committed.
    let server = Server::start(dir.path(), port, Some(auth)).unwrap();
    let all = wait_until(GENEROUS, || {
        committed(&broker.bootstrap, "connect-hetida", TOPIC, 1) == [10]
    });
    ferry.signal("TERM");
    ferry.wait(Duration::from_secs(30));
    let log = ferry.log();
    assert!(
        all,
        "not everything was committed after the server came back:\n{log}"
    );
    let by_job = statuses_by_job(&server.entries());
    for i in 0..10 {
        let statuses = &by_job[&format!("job-{i}")];
        assert!(
            statuses.contains(&200),
            "job-{i} never answered: {statuses:?}"
        );
    }
    assert!(
        server.entries().iter().all(|e| e["auth"] == auth),
        "a request without the bearer token"
    );
    assert!(
        log.contains("Sink could not take the batch; retrying it."),
        "no retry while the server was down:\n{log}"
    );
    assert!(!log.contains("tok-4711"), "the token leaked into the log");
}

#[test]
fn oauth2_client_credentials_fetch_a_token_once_and_send_it() {
    let test = "oauth2_client_credentials_fetch_a_token_once_and_send_it";
    if python_missing(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        0,
        Some("Bearer oauth-token-1"),
        &[("TOKEN_CLIENT", "ferry-client:cl1ent-s3cret")],
    )
    .unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic(TOPIC, 1);
    let lines: Vec<String> = (0..3)
        .map(|i| format!("exec_job_{i}:{}", request(&format!("job-{i}"))))
        .collect();
    produce_keyed(&broker.bootstrap, 0, &lines);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let token_url = format!("http://127.0.0.1:{}/token", server.port);
    let conn = connector(
        dir.path(),
        &server.url(),
        &[
            ("auth.type", "OAUTH2"),
            ("oauth2.token.url", &token_url),
            ("oauth2.client.id", "ferry-client"),
            ("oauth2.client.secret", "cl1ent-s3cret"),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&conn]);
    let done = wait_until(GENEROUS, || {
        committed(&broker.bootstrap, "connect-hetida", TOPIC, 1) == [3]
    });
    ferry.signal("TERM");
    ferry.wait(Duration::from_secs(30));
    let log = ferry.log();
    assert!(done, "not committed:\n{log}");
    let entries = server.entries();
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/token", URL_PATH, URL_PATH, URL_PATH],
        "one token, then the requests with it"
    );
    for e in &entries[1..] {
        assert_eq!(e["status"], 200);
        assert_eq!(e["auth"], "Bearer oauth-token-1");
    }
    assert!(!log.contains("cl1ent-s3cret") && !log.contains("oauth-token-1"));
}

/// Records of a topic (kcat's JSON envelopes, headers as an object), once `n` are there
/// or 30 s have passed.
fn records(bootstrap: &str, topic: &str, n: usize) -> Vec<serde_json::Value> {
    kcat_records_until(bootstrap, topic, n, Duration::from_secs(30))
}

#[test]
fn replies_go_to_the_result_and_error_topics_keyed_by_the_request() {
    let test = "replies_go_to_the_result_and_error_topics_keyed_by_the_request";
    if python_missing(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), 0, None).unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic(TOPIC, 1);
    broker.create_topic("hd-execution-response-topic", 1);
    broker.create_topic("hd-execution-error-topic", 1);
    let jobs = ["job-0", "fail500-1", "bad400-2", "job-3"];
    let lines: Vec<String> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| format!("exec_job_{i}:{}", request(j)))
        .collect();
    produce_keyed(&broker.bootstrap, 0, &lines);
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let conn = connector(
        dir.path(),
        &server.url(),
        &[
            ("reporter.result.topic.name", "hd-execution-response-topic"),
            ("reporter.error.topic.name", "hd-execution-error-topic"),
            ("reporter.bootstrap.servers", &broker.bootstrap),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&conn]);
    let mut no_producer = false;
    let done = wait_until(GENEROUS, || {
        no_producer = ferry.log().contains("runs without a Kafka producer");
        no_producer || committed(&broker.bootstrap, "connect-hetida", TOPIC, 1) == [4]
    });
    ferry.signal("TERM");
    let _ = wait_child(&mut ferry.child, Duration::from_secs(30));
    let log = ferry.log();
    if no_producer {
        common::emulator::skip(
            test,
            "this ferry lends tasks no Kafka producer yet (the runtime's producer is not merged)",
        );
        return;
    }
    assert!(done, "not committed:\n{log}");

    // The server's answer for each job, from its own log.
    let answers: BTreeMap<String, String> = server
        .entries()
        .iter()
        .filter(|e| e["status"] == 200)
        .map(|e| {
            let body: serde_json::Value =
                serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
            (
                body["job_id"].as_str().unwrap().to_string(),
                e["answer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let requests = records(&broker.bootstrap, TOPIC, 4);
    let replies = records(&broker.bootstrap, "hd-execution-response-topic", 3);
    let got: Vec<(String, String, String, String)> = replies
        .iter()
        .map(|r| {
            let h = &r["headers"];
            assert_eq!(h["input_record_topic"], TOPIC, "{r}");
            assert_eq!(h["input_record_partition"], "0", "{r}");
            assert_eq!(h["http_status_code"], "200", "{r}");
            let offset: usize = h["input_record_offset"].as_str().unwrap().parse().unwrap();
            assert_eq!(
                h["input_record_timestamp"],
                requests[offset]["ts"].to_string(),
                "the request's timestamp"
            );
            (
                r["key"].as_str().unwrap().to_string(),
                h["input_record_offset"].as_str().unwrap().to_string(),
                r["payload"].as_str().unwrap().to_string(),
                String::new(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String, String)> =
        [(0, "job-0"), (1, "fail500-1"), (3, "job-3")]
            .iter()
            .map(|(i, j)| {
                (
                    format!("exec_job_{i}"),
                    i.to_string(),
                    answers[*j].clone(),
                    String::new(),
                )
            })
            .collect();
    assert_eq!(
        got, expected,
        "one reply per answered request, keyed by it, in order"
    );
    let result: serde_json::Value = serde_json::from_str(&got[0].2).unwrap();
    assert_eq!(result["result"], "ok");
    assert_eq!(result["job_id"], "job-0");

    let errors = records(&broker.bootstrap, "hd-execution-error-topic", 1);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e["key"], "exec_job_2");
    assert_eq!(e["headers"]["input_record_offset"], "2");
    assert_eq!(e["headers"]["http_status_code"], "400");
    let reason = e["payload"].as_str().unwrap();
    assert!(
        reason.contains("answered 400 after 1 attempt(s)") && reason.contains("bad400-2"),
        "{reason}"
    );
    assert_eq!(e["headers"]["error_message"], reason);
}

#[test]
fn a_request_is_committed_only_after_its_reply_is_acknowledged() {
    let test = "a_request_is_committed_only_after_its_reply_is_acknowledged";
    if python_missing(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), 0, None).unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic(TOPIC, 1);
    // The replies go to a cluster of their own (reporter.bootstrap.servers), which the
    // test takes down.
    let mut replies = Broker::start(1, 300);
    replies.create_topic("hd-execution-response-topic", 1);
    let lines = |range: std::ops::Range<usize>| -> Vec<String> {
        range
            .map(|i| format!("exec_job_{i}:{}", request(&format!("job-{i}"))))
            .collect()
    };
    produce_keyed(&broker.bootstrap, 0, &lines(0..3));
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let conn = connector(
        dir.path(),
        &server.url(),
        &[
            ("reporter.result.topic.name", "hd-execution-response-topic"),
            ("reporter.bootstrap.servers", &replies.bootstrap),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&conn]);
    let mut no_producer = false;
    let first = wait_until(GENEROUS, || {
        no_producer = ferry.log().contains("runs without a Kafka producer");
        no_producer || committed(&broker.bootstrap, "connect-hetida", TOPIC, 1) == [3]
    });
    if no_producer {
        common::emulator::skip(
            test,
            "this ferry lends tasks no Kafka producer yet (the runtime's producer is not merged)",
        );
        return;
    }
    assert!(
        first,
        "the first three were not committed:\n{}",
        ferry.log()
    );

    replies.command("down 1").unwrap();
    produce_keyed(&broker.bootstrap, 0, &lines(3..6));
    // The next request is answered, but its reply cannot be written: nothing moves.
    assert!(
        wait_until(GENEROUS, || statuses_by_job(&server.entries())
            .contains_key("job-3")),
        "job-3 never reached the server"
    );
    let until = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < until {
        seen.push(committed(&broker.bootstrap, "connect-hetida", TOPIC, 1)[0]);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        seen.iter().all(|o| *o == 3),
        "committed past a reply that was not acknowledged: {seen:?}"
    );

    replies.command("up 1").unwrap();
    let all = wait_until(GENEROUS, || {
        committed(&broker.bootstrap, "connect-hetida", TOPIC, 1) == [6]
    });
    ferry.signal("TERM");
    let _ = wait_child(&mut ferry.child, Duration::from_secs(30));
    assert!(
        all,
        "not committed after the reply cluster came back:\n{}",
        ferry.log()
    );
    let keys: Vec<String> = records(&replies.bootstrap, "hd-execution-response-topic", 6)
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..6).map(|i| format!("exec_job_{i}")).collect();
    assert_eq!(keys, expected, "every reply, once, in order");
    // Waiting for the reply never sent a request twice.
    for (job, statuses) in statuses_by_job(&server.entries()) {
        assert_eq!(statuses, [200], "{job}");
    }
}

fn validate(files: &[&Path]) -> (bool, String) {
    let out = Command::new(ferry_bin())
        .arg("validate")
        .args(files)
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

#[test]
fn ferry_validate_hides_the_sinks_credentials_and_names_a_misspelt_key() {
    let dir = tempfile::tempdir().unwrap();
    let worker = worker_props(dir.path(), "127.0.0.1:9092", &[]);
    let good = dir.path().join("good.properties");
    write_props(
        &good,
        &[
            ("name", "hetida"),
            ("connector.class", "HttpSinkConnector"),
            ("topics", TOPIC),
            (
                "http.api.url",
                "https://hetida.example/api/transformations/execute",
            ),
            ("auth.type", "basic"),
            ("connection.user", "hetida"),
            ("connection.password", "pw-one"),
            ("headers", "X-Api-Key:key-two|Accept:application/json"),
            ("bearer.token", "token-three"),
            ("http.headers.authorization", "Bearer token-four"),
            ("reporter.result.topic.name", "replies"),
            ("reporter.sasl.password", "pw-five"),
        ],
    );
    let (ok, text) = validate(&[&worker, &good]);
    assert!(ok, "{text}");
    for secret in ["pw-one", "key-two", "token-three", "token-four", "pw-five"] {
        assert!(!text.contains(secret), "{secret} shown:\n{text}");
    }
    assert!(text.contains("ferry's http sink"), "{text}");

    let bad = dir.path().join("bad.properties");
    write_props(
        &bad,
        &[
            ("name", "hetida"),
            (
                "connector.class",
                "io.confluent.connect.http.HttpSinkConnector",
            ),
            ("topics", TOPIC),
            (
                "http.api.ur",
                "http://localhost:8080/api/transformations/execute",
            ),
        ],
    );
    let (ok, text) = validate(&[&worker, &bad]);
    assert!(!ok, "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("http.api.ur: unknown key"))
        .unwrap_or_else(|| panic!("no line names the key:\n{text}"));
    assert!(line.contains("bad.properties:4"), "{line}");
    assert!(line.contains("did you mean `http.api.url`?"), "{line}");
}

#[test]
fn sigterm_while_the_server_fails_stops_in_time_and_commits_nothing() {
    let test = "sigterm_while_the_server_fails_stops_in_time_and_commits_nothing";
    if python_missing(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), 0, None).unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic(TOPIC, 1);
    produce_keyed(
        &broker.bootstrap,
        0,
        &[format!("exec_job_0:{}", request("down503-0"))],
    );
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    // 503 is retried; Confluent's retry defaults (10 retries, 3 s apart) would hold the
    // request inside the sink for 30 s, past task.shutdown.graceful.timeout.ms (5 s).
    let conn = connector(
        dir.path(),
        &server.url(),
        &[("max.retries", "10"), ("retry.backoff.ms", "3000")],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&conn]);
    assert!(
        wait_until(GENEROUS, || !server.entries().is_empty()),
        "no request reached the server:\n{}",
        ferry.log()
    );
    let asked = Instant::now();
    ferry.signal("TERM");
    let status = ferry.wait(Duration::from_secs(60));
    let took = asked.elapsed();
    let log = ferry.log();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(
        took < Duration::from_secs(6),
        "stopping took {took:?}\n{log}"
    );
    assert!(!log.contains("did not stop within"), "{log}");
    assert_eq!(
        committed(&broker.bootstrap, "connect-hetida", TOPIC, 1),
        [-1]
    );
}

/// A record the server refuses (400) after the transforms changed its value and headers
/// reaches the dead-letter topic as it was READ — key, value, headers and timestamp — with
/// the HTTP sink's reason in `__connect.errors.exception.message` at stage TASK_PUT, as
/// Kafka Connect's reporters write the original `ConsumerRecord`. The server saw the
/// transformed request.
#[test]
fn a_refused_transformed_record_reaches_the_dead_letter_topic_as_it_was_read() {
    let test = "a_refused_transformed_record_reaches_the_dead_letter_topic_as_it_was_read";
    if python_missing(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), 0, None).unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic(TOPIC, 1);
    broker.create_topic("hd-dlq", 1);
    let mut cmd = kcat();
    cmd.args(["-b", &broker.bootstrap, "-K:", "-H", "trace=abc"]);
    let lines = [
        format!("k0:{}", request("job-0")),
        format!("k1:{}", request("bad400-1")),
        format!("k2:{}", request("job-2")),
    ];
    feed_kcat(cmd, TOPIC, 0, &lines).unwrap();
    let worker = worker_props(dir.path(), &broker.bootstrap, &[]);
    let conn = connector(
        dir.path(),
        &server.url(),
        &[
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
            ("transforms", "tag,hdr"),
            (
                "transforms.tag.type",
                "org.apache.kafka.connect.transforms.InsertField$Value",
            ),
            ("transforms.tag.static.field", "ferry_tag"),
            ("transforms.tag.static.value", "v1"),
            ("transforms.hdr.type", "InsertHeader"),
            ("transforms.hdr.header", "added"),
            ("transforms.hdr.value.literal", "yes"),
            ("errors.deadletterqueue.topic.name", "hd-dlq"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&conn]);
    let done = wait_until(GENEROUS, || {
        committed(&broker.bootstrap, "connect-hetida", TOPIC, 1) == [3]
    });
    ferry.signal("TERM");
    ferry.wait(Duration::from_secs(30));
    let log = ferry.log();
    assert!(done, "offsets never reached [3]; ferry log:\n{log}");

    // The server got the transformed requests: the inserted field is in each body.
    let by_job = statuses_by_job(&server.entries());
    assert_eq!(by_job["bad400-1"], [400], "{by_job:?}");
    for e in server.entries() {
        let body: serde_json::Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["ferry_tag"], "v1", "{body}");
    }

    let source = records(&broker.bootstrap, TOPIC, 3);
    let dlq = records(&broker.bootstrap, "hd-dlq", 1);
    assert_eq!(dlq.len(), 1, "{dlq:#?}");
    let (read, letter) = (&source[1], &dlq[0]);
    assert_eq!(read["key"], "k1");
    assert_eq!(letter["key"], read["key"]);
    assert_eq!(
        letter["payload"], read["payload"],
        "the value as read, byte for byte"
    );
    assert_eq!(letter["payload"].as_str().unwrap(), request("bad400-1"));
    assert_eq!(letter["ts"], read["ts"]);
    let headers = letter["headers"].as_object().unwrap();
    assert_eq!(headers["trace"], "abc");
    assert!(
        !headers.contains_key("added"),
        "a header the transforms added is not in the dead letter: {headers:?}"
    );
    assert_eq!(headers["__connect.errors.stage"], "TASK_PUT");
    assert_eq!(headers["__connect.errors.offset"], "1");
    assert_eq!(headers["__connect.errors.topic"], TOPIC);
    let reason = headers["__connect.errors.exception.message"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("answered 400") && reason.contains("bad400-1 cannot be executed"),
        "the sink's reason: {reason}"
    );
}
