//! Kafka Connect's REST API on a running ferry, against the mock broker, driven with curl
//! (and, in `connect_clients.py`, with Python clients nobody here wrote).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A ferry with the API on a free loopback port.
struct Api {
    ferry: Ferry,
    base: String,
}

impl Api {
    fn start(dir: &Path, bootstrap: &str, connectors: &[&Path]) -> Api {
        Api::start_with(dir, bootstrap, connectors, &[])
    }

    /// With `keep`, a null-sink connector from the command line (ferry needs one file).
    fn start_with(
        dir: &Path,
        bootstrap: &str,
        connectors: &[&Path],
        extra: &[(&str, &str)],
    ) -> Api {
        let keep = dir.join("keep.properties");
        write_props(
            &keep,
            &[
                ("name", "keep"),
                ("connector.class", "null"),
                ("topics", "keep"),
            ],
        );
        let mut connectors = connectors.to_vec();
        if connectors.is_empty() {
            connectors.push(&keep);
        }
        let port = free_port();
        let listeners = format!("http://127.0.0.1:{port}");
        let mut props = vec![
            ("listeners", listeners.as_str()),
            ("ferry.rest.enable", "true"),
        ];
        props.extend_from_slice(extra);
        let worker = worker_props(dir, bootstrap, &props);
        let ferry = Ferry::standalone(dir, &worker, &connectors);
        let api = Api {
            ferry,
            base: listeners,
        };
        let up = wait_until(WAIT, || api.call("GET", "/health", None).0 == 200);
        assert!(up, "the API did not come up; log:\n{}", api.ferry.log());
        api
    }

    /// One request; the status and the body parsed as JSON (Null when empty).
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let text = body.map(|b| b.to_string());
        let (status, out) = curl(
            method,
            &format!("{}{path}", self.base),
            &["Accept: application/json"],
            text.as_deref().map(|t| ("application/json", t.as_bytes())),
            30,
        );
        let value = if out.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&out).unwrap_or(Value::String(out))
        };
        (status, value)
    }

    fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let (status, out) = curl(
            method,
            &format!("{}{path}", self.base),
            &[],
            Some(("application/json", body)),
            30,
        );
        (
            status,
            serde_json::from_str(&out).unwrap_or(Value::String(out)),
        )
    }

    fn state(&self, name: &str) -> String {
        let (_, s) = self.call("GET", &format!("/connectors/{name}/status"), None);
        s["connector"]["state"].as_str().unwrap_or("?").to_string()
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn file_sink(name: &str, topic: &str, out: &Path) -> Value {
    json!({
        "connector.class": "FileStreamSink",
        "name": name,
        "tasks.max": "1",
        "topics": topic,
        "file": out.to_str().unwrap(),
    })
}

#[test]
fn a_connector_created_over_rest_runs_changes_pauses_moves_its_offsets_and_goes() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("t", 1);
    broker.create_topic("keep", 1);
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 10));
    let api = Api::start(dir.path(), &broker.bootstrap, &[]);
    let (out1, out2, out3) = (
        dir.path().join("out1.txt"),
        dir.path().join("out2.txt"),
        dir.path().join("out3.txt"),
    );

    // Create: 201, Connect's ConnectorInfo, and the records arrive.
    let (status, info) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "s", "config": file_sink("s", "t", &out1)})),
    );
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["name"], "s");
    assert_eq!(info["type"], "sink");
    assert_eq!(info["config"]["file"], out1.to_str().unwrap());
    assert!(
        wait_until(WAIT, || lines(&out1).len() == 10),
        "{:?}\n{}",
        lines(&out1),
        api.ferry.log()
    );
    assert_eq!(api.call("GET", "/connectors", None).1, json!(["keep", "s"]));
    let (_, st) = api.call("GET", "/connectors/s/status", None);
    assert_eq!(st["connector"]["state"], "RUNNING", "{st}");
    assert_eq!(st["tasks"][0]["state"], "RUNNING", "{st}");
    assert_eq!(st["tasks"][0]["id"], 0, "{st}");
    let (_, expanded) = api.call("GET", "/connectors?expand=status&expand=info", None);
    assert_eq!(expanded["s"]["status"]["name"], "s", "{expanded}");
    assert_eq!(expanded["s"]["info"]["type"], "sink", "{expanded}");
    let (_, tasks) = api.call("GET", "/connectors/s/tasks", None);
    assert_eq!(
        tasks[0]["id"],
        json!({"connector": "s", "task": 0}),
        "{tasks}"
    );
    let (code, ts) = api.call("GET", "/connectors/s/tasks/0/status", None);
    assert_eq!((code, ts["state"].clone()), (200, json!("RUNNING")), "{ts}");
    assert_eq!(
        api.call("GET", "/connectors/s/topics", None).1,
        json!({"s": {"topics": ["t"]}})
    );

    // The Prometheus page on the same listener, with the connector made over the API.
    let (code, page) = curl("GET", &format!("{}/metrics", api.base), &[], None, 10);
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("kafka_connect_worker_connector_count"),
        "{page}"
    );
    assert!(page.contains("connector=\"s\""), "{page}");

    // PUT a new config: the connector restarts with it and goes on where it was.
    let (status, info) = api.call(
        "PUT",
        "/connectors/s/config",
        Some(&file_sink("s", "t", &out2)),
    );
    assert_eq!(status, 200, "{info}");
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 15)[10..]);
    assert!(
        wait_until(WAIT, || lines(&out2).len() == 5),
        "{:?}\n{}",
        lines(&out2),
        api.ferry.log()
    );
    assert_eq!(lines(&out2), numbered(0, 15)[10..].to_vec());
    assert_eq!(
        lines(&out1).len(),
        10,
        "the old config's file gets nothing more"
    );

    // PATCH one key.
    let (status, info) = api.call(
        "PATCH",
        "/connectors/s/config",
        Some(&json!({"file": out3.to_str().unwrap()})),
    );
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        api.call("GET", "/connectors/s/config", None).1["file"],
        out3.to_str().unwrap()
    );

    // Pause: nothing delivered or committed while paused; resume: all arrive.
    assert_eq!(api.call("PUT", "/connectors/s/pause", None).0, 202);
    assert_eq!(api.state("s"), "PAUSED");
    let committed_before = committed(&broker.bootstrap, "connect-s", "t", 1);
    assert_eq!(committed_before, vec![15]);
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 20)[15..]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        lines(&out3).is_empty(),
        "delivered while paused: {:?}",
        lines(&out3)
    );
    assert_eq!(committed(&broker.bootstrap, "connect-s", "t", 1), vec![15]);
    assert_eq!(api.call("PUT", "/connectors/s/resume", None).0, 202);
    assert!(
        wait_until(WAIT, || lines(&out3).len() == 5),
        "{:?}\n{}",
        lines(&out3),
        api.ferry.log()
    );
    assert_eq!(api.state("s"), "RUNNING");

    // Offsets: read them; changing them while running is refused.
    assert!(wait_until(WAIT, || committed(
        &broker.bootstrap,
        "connect-s",
        "t",
        1
    ) == vec![20]));
    let (_, offs) = api.call("GET", "/connectors/s/offsets", None);
    assert_eq!(
        offs,
        json!({"offsets": [{"partition": {"kafka_topic": "t", "kafka_partition": 0}, "offset": {"kafka_offset": 20}}]})
    );
    let back = json!({"offsets": [{"partition": {"kafka_topic": "t", "kafka_partition": 0}, "offset": {"kafka_offset": 17}}]});
    let (code, err) = api.call("PATCH", "/connectors/s/offsets", Some(&back));
    assert_eq!(code, 400, "{err}");
    assert_eq!(err["error_code"], 400);
    assert!(
        err["message"].as_str().unwrap().contains("STOPPED"),
        "{err}"
    );

    // Stop, move back to 17: records 17..19 are delivered again.
    assert_eq!(api.call("PUT", "/connectors/s/stop", None).0, 204);
    let (_, st) = api.call("GET", "/connectors/s/status", None);
    assert_eq!(
        (st["connector"]["state"].clone(), st["tasks"].clone()),
        (json!("STOPPED"), json!([]))
    );
    let (code, msg) = api.call("PATCH", "/connectors/s/offsets", Some(&back));
    assert_eq!(code, 200, "{msg}");
    assert_eq!(
        msg["message"],
        "The offsets for this connector have been altered successfully"
    );
    assert_eq!(committed(&broker.bootstrap, "connect-s", "t", 1), vec![17]);
    assert_eq!(
        offset_file(&dir.path().join("connect.offsets"))["s"]["t-0"],
        17
    );
    assert_eq!(api.call("PUT", "/connectors/s/resume", None).0, 202);
    assert!(
        wait_until(WAIT, || lines(&out3).len() == 8),
        "{:?}\n{}",
        lines(&out3),
        api.ferry.log()
    );
    assert_eq!(lines(&out3)[5..].to_vec(), numbered(0, 20)[17..].to_vec());

    // Stop and reset: the offset file forgets the connector, the group goes back to where
    // auto.offset.reset (earliest) starts, and the connector delivers everything again.
    assert_eq!(api.call("PUT", "/connectors/s/stop", None).0, 204);
    let (code, msg) = api.call("DELETE", "/connectors/s/offsets", None);
    assert_eq!(code, 200, "{msg}\n{}", api.ferry.log());
    assert_eq!(
        msg["message"],
        "The offsets for this connector have been reset successfully"
    );
    assert!(!offset_file(&dir.path().join("connect.offsets")).contains_key("s"));
    assert_eq!(committed(&broker.bootstrap, "connect-s", "t", 1), vec![0]);
    let out4 = dir.path().join("out4.txt");
    let (code, _) = api.call(
        "PATCH",
        "/connectors/s/config",
        Some(&json!({"file": out4.to_str().unwrap()})),
    );
    assert_eq!(code, 200);
    assert_eq!(api.call("PUT", "/connectors/s/resume", None).0, 202);
    assert!(
        wait_until(WAIT, || lines(&out4).len() == 20),
        "{:?}\n{}",
        lines(&out4),
        api.ferry.log()
    );
    assert_eq!(lines(&out4), numbered(0, 20));

    // Delete.
    assert_eq!(api.call("DELETE", "/connectors/s", None).0, 204);
    let (code, err) = api.call("GET", "/connectors/s", None);
    assert_eq!(code, 404);
    assert_eq!(
        err,
        json!({"error_code": 404, "message": "Connector s not found"})
    );
    assert_eq!(api.call("GET", "/connectors", None).1, json!(["keep"]));
    api.ferry.signal("TERM");
    let mut ferry = api.ferry;
    assert!(ferry.wait(WAIT).success(), "{}", ferry.log());
}

#[test]
fn a_failed_task_shows_its_trace_and_restart_only_failed_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("t", 1);
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 5));
    // A healthy connector from the command line keeps ferry up while the other fails.
    let keep = dir.path().join("keep.properties");
    write_props(
        &keep,
        &[
            ("name", "keep"),
            ("connector.class", "null"),
            ("topics", "t"),
        ],
    );
    let api = Api::start(dir.path(), &broker.bootstrap, &[&keep]);
    assert_eq!(api.call("GET", "/connectors", None).1, json!(["keep"]));
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let out = sub.join("out.txt");
    let (status, info) = api.call(
        "POST",
        "/connectors",
        Some(
            &json!({"name": "f", "config": file_sink("f", "t", &out), "initial_state": "STOPPED"}),
        ),
    );
    assert_eq!(status, 201, "{info}");
    assert_eq!(api.state("f"), "STOPPED");
    // The file's directory goes away: the task cannot open it, a fatal error.
    std::fs::remove_dir_all(&sub).unwrap();
    assert_eq!(api.call("PUT", "/connectors/f/resume", None).0, 202);
    assert!(
        wait_until(WAIT, || api.state("f") == "FAILED"),
        "{}",
        api.ferry.log()
    );
    let (_, st) = api.call("GET", "/connectors/f/status", None);
    assert_eq!(st["tasks"][0]["state"], "FAILED", "{st}");
    let trace = st["tasks"][0]["trace"].as_str().unwrap_or_default();
    assert!(trace.contains("cannot open `file`"), "{st}");
    // Nothing failed in `keep`: restarting only failed tasks restarts nothing there.
    let (code, body) = api.call(
        "POST",
        "/connectors/keep/restart?includeTasks=true&onlyFailed=true",
        None,
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["connector"]["state"], "RUNNING", "{body}");
    // The directory is back; restart?onlyFailed=true brings the task back.
    std::fs::create_dir(&sub).unwrap();
    let (code, body) = api.call(
        "POST",
        "/connectors/f/restart?includeTasks=true&onlyFailed=true",
        None,
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["tasks"][0]["state"], "RESTARTING", "{body}");
    assert!(
        wait_until(WAIT, || lines(&out).len() == 5),
        "{}",
        api.ferry.log()
    );
    assert_eq!(api.state("f"), "RUNNING");
    // A plain restart answers 204.
    assert_eq!(api.call("POST", "/connectors/f/restart", None).0, 204);
    assert_eq!(
        api.call("POST", "/connectors/f/tasks/0/restart", None).0,
        204
    );
    assert_eq!(
        api.call("POST", "/connectors/f/tasks/7/restart", None).0,
        404
    );
}

#[test]
fn bad_requests_get_connects_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("t", 1);
    broker.create_topic("keep", 1);
    let api = Api::start(dir.path(), &broker.bootstrap, &[]);
    let out = dir.path().join("out.txt");

    let (code, err) = api.raw("POST", "/connectors", b"{\"name\": \"x\", \"config\": {");
    assert_eq!(
        (code, err["error_code"].clone()),
        (400, json!(400)),
        "{err}"
    );

    let (code, err) = api.call("GET", "/connectors/nope/status", None);
    assert_eq!(code, 404);
    assert_eq!(err["message"], "Connector nope not found");
    assert_eq!(api.call("PUT", "/connectors/nope/pause", None).0, 404);
    assert_eq!(api.call("DELETE", "/connectors/nope", None).0, 404);

    // Every error of a bad config in one answer.
    let mut bad = file_sink("b", "t", &out);
    bad["tasks.max"] = json!("0");
    bad["errors.tolerance"] = json!("sometimes");
    let (code, err) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "b", "config": bad})),
    );
    assert_eq!(code, 400, "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("contains the following 2 error(s)"),
        "{message}"
    );
    assert!(
        message.contains("tasks.max") && message.contains("errors.tolerance"),
        "{message}"
    );
    let (code, infos) = api.call(
        "PUT",
        "/connector-plugins/FileStreamSinkConnector/config/validate",
        Some(&bad),
    );
    assert_eq!(code, 200, "{infos}");
    assert_eq!(infos["error_count"], 2, "{infos}");
    let mut with_errors: Vec<&str> = infos["configs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["value"]["errors"].as_array().unwrap().is_empty())
        .map(|c| c["value"]["name"].as_str().unwrap())
        .collect();
    with_errors.sort();
    assert_eq!(with_errors, vec!["errors.tolerance", "tasks.max"]);

    // The name in the URL and the one in the body differ.
    let (code, err) = api.call(
        "PUT",
        "/connectors/other/config",
        Some(&file_sink("b", "t", &out)),
    );
    assert_eq!(code, 400);
    assert_eq!(
        err["message"],
        "Connector name configuration (b) doesn't match connector name in the URL (other)"
    );

    // Too large.
    let big = format!(
        "{{\"name\":\"x\",\"config\":{{\"a\":\"{}\"}}}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (code, _) = api.raw("POST", "/connectors", big.as_bytes());
    assert_eq!(code, 413);

    // A second connector of the same name: 409, the first one untouched.
    let dup =
        json!({"name": "dup", "config": file_sink("dup", "t", &out), "initial_state": "STOPPED"});
    assert_eq!(api.call("POST", "/connectors", Some(&dup)).0, 201);
    let (code, err) = api.call("POST", "/connectors", Some(&dup));
    assert_eq!(code, 409, "{err}");
    assert_eq!(
        err,
        json!({"error_code": 409, "message": "Connector dup already exists"})
    );
    assert_eq!(api.state("dup"), "STOPPED");
    assert_eq!(api.call("DELETE", "/connectors/dup", None).0, 204);
    let (code, err) = api.call("GET", "/no/such/endpoint", None);
    assert_eq!(
        (code, err["error_code"].clone()),
        (404, json!(404)),
        "{err}"
    );

    // A keytab login this process did not make at start is refused, before any I/O.
    let mut krb = file_sink("krb", "t", &out);
    krb["consumer.override.security.protocol"] = json!("SASL_PLAINTEXT");
    krb["consumer.override.sasl.mechanism"] = json!("GSSAPI");
    krb["consumer.override.sasl.jaas.config"] = json!(
        "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/nonexistent/u.keytab\" principal=\"u@EXAMPLE.ORG\";"
    );
    let (code, err) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "krb", "config": krb})),
    );
    assert_eq!(code, 400, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("this ferry made no keytab login at start"),
        "{err}"
    );

    // A secret never comes back; a provider reference comes back as written.
    let mut secret = file_sink("sec", "t", &out);
    secret["consumer.override.ssl.key.password"] = json!("hunter2");
    secret["reporter.password"] = json!("${env:HOME}");
    let (code, info) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "sec", "config": secret, "initial_state": "PAUSED"})),
    );
    assert_eq!(code, 201, "{info}");
    assert!(!info.to_string().contains("hunter2"), "{info}");
    let (_, config) = api.call("GET", "/connectors/sec/config", None);
    assert_eq!(config["consumer.override.ssl.key.password"], "[hidden]");
    assert_eq!(config["reporter.password"], "${env:HOME}");
    let (_, tasks) = api.call("GET", "/connectors/sec/tasks", None);
    assert!(!tasks.to_string().contains("hunter2"), "{tasks}");
    assert_eq!(api.call("DELETE", "/connectors/sec", None).0, 204);

    // Nothing was created, and ferry still serves.
    assert_eq!(api.call("GET", "/connectors", None), (200, json!(["keep"])));
    assert!(!out.exists());
    let (code, root) = api.call("GET", "/", None);
    assert_eq!(code, 200);
    assert!(
        root["version"].is_string() && root.get("kafka_cluster_id").is_some(),
        "{root}"
    );
    let (code, plugins) = api.call("GET", "/connector-plugins", None);
    assert_eq!(code, 200);
    assert!(
        plugins.as_array().unwrap().iter().any(|p| p["class"]
            == "org.apache.kafka.connect.file.FileStreamSinkConnector"
            && p["type"] == "sink"),
        "{plugins}"
    );
    assert!(!api.ferry.log().contains("panicked"));
    assert!(!api.ferry.log().contains("hunter2"), "a secret in the log");
}

#[test]
fn a_listener_port_in_use_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("t", 1);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[
            ("listeners", &format!("http://127.0.0.1:{port}")),
            ("ferry.rest.enable", "true"),
        ],
    );
    let keep = dir.path().join("keep.properties");
    write_props(
        &keep,
        &[
            ("name", "keep"),
            ("connector.class", "null"),
            ("topics", "t"),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&keep]);
    let status = ferry.wait(WAIT);
    assert_eq!(status.code(), Some(1), "{}", ferry.log());
    let log = ferry.log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains(&format!("cannot listen on http://127.0.0.1:{port}")),
        "{log}"
    );
    // A failed start changes nothing on disk.
    assert!(!dir.path().join("connect.offsets").exists(), "{log}");
    drop(taken);
}

/// kafka-connect-py (PyPI) in a venv under target/, installed on first use; None (and the
/// reason) when it cannot be installed here.
fn kafka_connect_py() -> Result<std::path::PathBuf, String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kafka-connect-py");
    let python = venv.join("bin/python");
    let ready = |p: &Path| {
        std::process::Command::new(p)
            .args(["-c", "import kafka_connect"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ready(&python) {
        return Ok(python);
    }
    let run = |cmd: &mut std::process::Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    };
    run(std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv))
    .map_err(|e| format!("python3 -m venv failed: {e}"))?;
    run(std::process::Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "kafka-connect-py==1.0.0",
    ]))
    .map_err(|e| format!("pip install kafka-connect-py failed: {e}"))?;
    if ready(&python) {
        Ok(python)
    } else {
        Err("kafka_connect does not import after installation".into())
    }
}

#[test]
fn kafka_connect_py_drives_ferry_as_it_drives_kafka_connect() {
    let python = match kafka_connect_py() {
        Ok(p) => p,
        Err(reason) => {
            common::emulator::skip(
                "rest::kafka_connect_py_drives_ferry_as_it_drives_kafka_connect",
                &reason,
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("t", 1);
    broker.create_topic("keep", 1);
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 10));
    let api = Api::start(dir.path(), &broker.bootstrap, &[]);
    let (out1, out2) = (dir.path().join("py1.txt"), dir.path().join("py2.txt"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rest/client.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .args([
            &api.base,
            "t",
            out1.to_str().unwrap(),
            out2.to_str().unwrap(),
            "10",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "OK",
        "kafka-connect-py: {}\n{}\nferry:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        api.ferry.log()
    );
    // What the client did, seen independently: every record once, committed, gone.
    assert_eq!(lines(&out1), numbered(0, 10));
    assert_eq!(committed(&broker.bootstrap, "connect-py", "t", 1), vec![10]);
    assert_eq!(api.call("GET", "/connectors", None).1, json!(["keep"]));
}

#[test]
fn with_a_config_storage_file_api_connectors_survive_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("t", 1);
    broker.create_topic("keep", 1);
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 10));
    let store = dir.path().join("state/connectors.json");
    let extra = [("ferry.config.storage.file", store.to_str().unwrap())];
    let out = dir.path().join("a.txt");
    let mut api = Api::start_with(dir.path(), &broker.bootstrap, &[], &extra);
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "a", "config": file_sink("a", "t", &out)})),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "b", "config": file_sink("b", "t", &dir.path().join("b.txt")), "initial_state": "PAUSED"})),
    );
    assert_eq!(code, 201, "{body}");
    assert!(
        wait_until(WAIT, || lines(&out).len() == 10),
        "{}",
        api.ferry.log()
    );
    let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the store may hold credentials");
    api.ferry.signal("TERM");
    assert!(api.ferry.wait(WAIT).success(), "{}", api.ferry.log());

    // Back after a restart, each in its state, and `a` goes on where it was.
    api = Api::start_with(dir.path(), &broker.bootstrap, &[], &extra);
    assert_eq!(
        api.call("GET", "/connectors", None).1,
        json!(["a", "b", "keep"])
    );
    assert_eq!(api.state("b"), "PAUSED");
    assert!(wait_until(WAIT, || api.state("a") == "RUNNING"));
    assert_eq!(
        api.call("GET", "/connectors/a/config", None).1["file"],
        out.to_str().unwrap()
    );
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 15)[10..]);
    assert!(
        wait_until(WAIT, || lines(&out).len() == 15),
        "{}",
        api.ferry.log()
    );
    assert_eq!(lines(&out), numbered(0, 15));
    assert!(!dir.path().join("b.txt").exists(), "b stayed paused");

    // A deletion is remembered too.
    assert_eq!(api.call("DELETE", "/connectors/b", None).0, 204);
    api.ferry.signal("TERM");
    assert!(api.ferry.wait(WAIT).success(), "{}", api.ferry.log());
    let api = Api::start_with(dir.path(), &broker.bootstrap, &[], &extra);
    assert_eq!(api.call("GET", "/connectors", None).1, json!(["a", "keep"]));
}

#[test]
fn with_basic_auth_every_request_but_health_needs_a_known_user() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("keep", 1);
    let users = dir.path().join("rest-users.properties");
    std::fs::write(&users, "admin=s3cret-pw\nreader: other\n").unwrap();
    let extra = [("ferry.rest.basic.auth.file", users.to_str().unwrap())];
    let api = Api::start_with(dir.path(), &broker.bootstrap, &[], &extra);
    let url = format!("{}/connectors", api.base);
    let basic = |user: &str, pw: &str| {
        format!(
            "Authorization: Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
    };
    let (code, body) = curl("GET", &url, &[], None, 10);
    assert_eq!(code, 401, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error_code"], 401);
    assert_eq!(
        curl("GET", &url, &[&basic("admin", "wrong")], None, 10).0,
        401
    );
    assert_eq!(
        curl("GET", &url, &[&basic("nobody", "s3cret-pw")], None, 10).0,
        401
    );
    assert_eq!(
        curl("GET", &url, &["Authorization: Bearer x"], None, 10).0,
        401
    );
    let (code, body) = curl("GET", &url, &[&basic("admin", "s3cret-pw")], None, 10);
    assert_eq!((code, body.trim()), (200, "[\"keep\"]"));
    assert_eq!(
        curl("GET", &url, &[&basic("reader", "other")], None, 10).0,
        200
    );
    // A refused request changes nothing.
    let create =
        json!({"name": "x", "config": {"connector.class": "null", "topics": "keep"}}).to_string();
    let (code, _) = curl(
        "POST",
        &url,
        &[],
        Some(("application/json", create.as_bytes())),
        10,
    );
    assert_eq!(code, 401);
    assert_eq!(
        curl("GET", &url, &[&basic("admin", "s3cret-pw")], None, 10)
            .1
            .trim(),
        "[\"keep\"]"
    );
    // Liveness probes need no credentials.
    assert_eq!(
        curl("GET", &format!("{}/health", api.base), &[], None, 10).0,
        200
    );
    assert!(!api.ferry.log().contains("s3cret-pw"));
}

#[test]
fn a_missing_basic_auth_file_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("t", 1);
    let missing = dir.path().join("no-such-users.properties");
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[
            ("listeners", &format!("http://127.0.0.1:{}", free_port())),
            ("ferry.rest.enable", "true"),
            ("ferry.rest.basic.auth.file", missing.to_str().unwrap()),
        ],
    );
    let keep = dir.path().join("keep.properties");
    write_props(
        &keep,
        &[
            ("name", "keep"),
            ("connector.class", "null"),
            ("topics", "t"),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&keep]);
    assert_eq!(ferry.wait(WAIT).code(), Some(1), "{}", ferry.log());
    let log = ferry.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains(&format!("{}: cannot read the file", missing.display())),
        "{log}"
    );
    assert!(!dir.path().join("connect.offsets").exists(), "{log}");
}

#[test]
fn active_topics_outlive_a_stop_and_reset_clears_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("t", 1);
    broker.create_topic("keep", 1);
    produce_lines(&broker.bootstrap, "t", 0, &numbered(0, 3));
    let api = Api::start(dir.path(), &broker.bootstrap, &[]);
    let out = dir.path().join("out.txt");
    let (status, _) = api.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "s", "config": file_sink("s", "t", &out)})),
    );
    assert_eq!(status, 201);
    assert!(
        wait_until(WAIT, || lines(&out).len() == 3),
        "{}",
        api.ferry.log()
    );
    let topics = || api.call("GET", "/connectors/s/topics", None);
    assert_eq!(topics(), (200, json!({"s": {"topics": ["t"]}})));

    // Stopped, the connector keeps its active topics (Connect keeps them in its status
    // store); reset forgets them: 202 and no body.
    assert_eq!(api.call("PUT", "/connectors/s/stop", None).0, 204);
    assert!(wait_until(WAIT, || api.state("s") == "STOPPED"));
    assert_eq!(topics(), (200, json!({"s": {"topics": ["t"]}})));
    assert_eq!(
        api.call("PUT", "/connectors/s/topics/reset", None),
        (202, Value::Null)
    );
    assert_eq!(topics(), (200, json!({"s": {"topics": []}})));
    let (code, err) = api.call("PUT", "/connectors/nope/topics/reset", None);
    assert_eq!(
        (code, err["error_code"].clone()),
        (404, json!(404)),
        "{err}"
    );

    // Running again, the topic it reads is active again.
    assert_eq!(api.call("PUT", "/connectors/s/resume", None).0, 202);
    assert!(
        wait_until(WAIT, || topics().1 == json!({"s": {"topics": ["t"]}})),
        "{:?}\n{}",
        topics(),
        api.ferry.log()
    );
    drop(api);

    // topic.tracking.allow.reset=false / topic.tracking.enable=false: 403, as Connect.
    let api = Api::start_with(
        dir.path(),
        &broker.bootstrap,
        &[],
        &[("topic.tracking.allow.reset", "false")],
    );
    let (code, err) = api.call("PUT", "/connectors/keep/topics/reset", None);
    assert_eq!(code, 403, "{err}");
    assert_eq!(err["message"], "Topic tracking reset is disabled.");
    assert_eq!(api.call("GET", "/connectors/keep/topics", None).0, 200);
    drop(api);
    let api = Api::start_with(
        dir.path(),
        &broker.bootstrap,
        &[],
        &[("topic.tracking.enable", "false")],
    );
    let (code, err) = api.call("GET", "/connectors/keep/topics", None);
    assert_eq!(
        (code, err["message"].clone()),
        (403, json!("Topic tracking is disabled."))
    );
}

#[test]
fn admin_loggers_show_and_change_the_log_filter_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("keep", 1);
    let api = Api::start(dir.path(), &broker.bootstrap, &[]);

    // Connect's shapes: every logger with a level of its own, and root.
    let (code, all) = api.call("GET", "/admin/loggers", None);
    assert_eq!(code, 200, "{all}");
    assert!(all["root"]["level"].is_string(), "{all}");
    assert_eq!(all["root"]["last_modified"], Value::Null, "{all}");
    // A target ferry has logged at (the REST API's start-up line) is a logger.
    let (code, rest) = api.call("GET", "/admin/loggers/ferry::rest", None);
    assert_eq!(code, 200, "{rest}");
    assert_eq!(rest["level"], all["root"]["level"], "{rest}");
    let (code, err) = api.call("GET", "/admin/loggers/nobody::here", None);
    assert_eq!(
        (code, err["message"].clone()),
        (404, json!("Logger nobody::here not found."))
    );

    // ferry at WARN: the INFO line of a topics reset is not written.
    let (code, changed) = api.call(
        "PUT",
        "/admin/loggers/ferry",
        Some(&json!({"level": "WARN"})),
    );
    assert_eq!(code, 200, "{changed}");
    let changed: Vec<&str> = changed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        changed.contains(&"ferry") && changed.contains(&"ferry::rest"),
        "{changed:?}"
    );
    let mut sorted = changed.clone();
    sorted.sort();
    assert_eq!(changed, sorted);
    let (_, ferry) = api.call("GET", "/admin/loggers/ferry", None);
    assert_eq!(ferry["level"], "WARN", "{ferry}");
    assert!(ferry["last_modified"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(
        api.call("PUT", "/connectors/keep/topics/reset", None).0,
        202
    );
    // The request that follows is served after the reset's line would have been written.
    api.call("GET", "/connectors", None);
    assert!(
        !api.ferry.log().contains("Active topics reset."),
        "{}",
        api.ferry.log()
    );

    // The herder back at INFO (cluster scope: 204 in Connect; standalone = this worker).
    let (code, body) = api.call(
        "PUT",
        "/admin/loggers/ferry::herder?scope=cluster",
        Some(&json!({"level": "info"})),
    );
    assert_eq!((code, body), (204, Value::Null));
    assert_eq!(
        api.call("PUT", "/connectors/keep/topics/reset", None).0,
        202
    );
    assert!(
        wait_until(WAIT, || api.ferry.log().contains("Active topics reset.")),
        "{}",
        api.ferry.log()
    );
    let (_, all) = api.call("GET", "/admin/loggers", None);
    assert_eq!(all["ferry"]["level"], "WARN", "{all}");
    assert_eq!(all["ferry::herder"]["level"], "INFO", "{all}");

    // Connect's errors: an unknown level is 404, a missing one 400; nothing changes.
    let (code, err) = api.call(
        "PUT",
        "/admin/loggers/ferry",
        Some(&json!({"level": "LOUD"})),
    );
    assert_eq!(
        (code, err["message"].clone()),
        (404, json!("invalid log level 'LOUD'.")),
        "{err}"
    );
    let (code, err) = api.call("PUT", "/admin/loggers/ferry", Some(&json!({"lvl": "INFO"})));
    assert_eq!(
        (code, err["message"].clone()),
        (
            400,
            json!("Desired 'level' parameter was not specified in request.")
        ),
        "{err}"
    );
    assert_eq!(
        api.call("GET", "/admin/loggers/ferry", None).1["level"],
        "WARN"
    );

    // Root: every logger, root included.
    let (code, changed) = api.call(
        "PUT",
        "/admin/loggers/root",
        Some(&json!({"level": "INFO"})),
    );
    assert_eq!(code, 200, "{changed}");
    assert!(
        changed.as_array().unwrap().contains(&json!("root")),
        "{changed}"
    );
    assert_eq!(
        api.call("GET", "/admin/loggers/ferry", None).1["level"],
        "INFO"
    );
}

#[test]
fn connector_plugin_config_lists_connects_config_key_infos() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 300);
    broker.create_topic("keep", 1);
    let api = Api::start(dir.path(), &broker.bootstrap, &[]);

    let (code, keys) = api.call("GET", "/connector-plugins/FileStreamSink/config", None);
    assert_eq!(code, 200, "{keys}");
    let keys = keys.as_array().unwrap().clone();
    // The connector's own key first, then the sink keys, in Connect's ConfigKeyInfo shape.
    assert_eq!(
        keys[0],
        json!({
            "name": "file", "type": "STRING", "required": false, "default_value": null,
            "importance": "HIGH",
            "documentation": "Destination filename. If not specified, the standard output will be used",
            "group": null, "width": "NONE", "display_name": "file", "dependents": [], "order": -1,
        })
    );
    let by_name = |keys: &[Value], n: &str| keys.iter().find(|k| k["name"] == n).cloned();
    let name = by_name(&keys, "name").unwrap();
    assert_eq!(
        (
            name["required"].clone(),
            name["group"].clone(),
            name["order"].clone()
        ),
        (json!(true), json!("Common"), json!(1)),
        "{name}"
    );
    assert_eq!(by_name(&keys, "tasks.max").unwrap()["default_value"], "1");
    assert!(by_name(&keys, "topics.regex").is_some());
    // The same plugin by its full class name.
    let (code, full) = api.call(
        "GET",
        "/connector-plugins/org.apache.kafka.connect.file.FileStreamSinkConnector/config",
        None,
    );
    assert_eq!((code, full), (200, Value::Array(keys)));

    let (code, pubsub) = api.call(
        "GET",
        "/connector-plugins/com.google.pubsub.kafka.sink.CloudPubSubSinkConnector/config",
        None,
    );
    assert_eq!(code, 200, "{pubsub}");
    let pubsub = pubsub.as_array().unwrap();
    let project = by_name(pubsub, "cps.project").unwrap();
    assert_eq!(project["required"], true, "{project}");
    let json_key = by_name(pubsub, "gcp.credentials.json").unwrap();
    assert_eq!(json_key["type"], "PASSWORD", "{json_key}");
    assert_eq!(
        by_name(pubsub, "maxBufferSize").unwrap()["default_value"],
        "100"
    );

    // Validation answers carry the same definitions, every key of the plugin included
    // (its default as the value when not given), as Connect's ConfigInfos.
    let (code, infos) = api.call(
        "PUT",
        "/connector-plugins/FileStreamSink/config/validate",
        Some(&json!({"connector.class": "FileStreamSink", "name": "v", "topics": "t"})),
    );
    assert_eq!(code, 200, "{infos}");
    assert_eq!(infos["error_count"], 0, "{infos}");
    assert_eq!(
        infos["groups"],
        json!(["Common", "Transforms", "Predicates", "Error Handling"]),
        "{infos}"
    );
    let configs = infos["configs"].as_array().unwrap();
    let entry = |n: &str| {
        configs
            .iter()
            .find(|c| c["definition"]["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no {n} in {infos}"))
    };
    assert_eq!(entry("file")["definition"], keys_of_file_sink(&api));
    assert_eq!(entry("tasks.max")["value"]["value"], "1");
    assert_eq!(entry("topics")["value"]["value"], "t");
    assert_eq!(entry("tasks.max")["definition"]["group"], "Common");

    let (code, err) = api.call("GET", "/connector-plugins/com.example.Nope/config", None);
    assert_eq!(
        (code, err),
        (
            404,
            json!({"error_code": 404, "message": "Unknown plugin com.example.Nope."})
        )
    );
}

/// The file sink's `file` key as `GET /connector-plugins/FileStreamSink/config` gives it.
fn keys_of_file_sink(api: &Api) -> Value {
    let (_, keys) = api.call("GET", "/connector-plugins/FileStreamSink/config", None);
    keys.as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "file")
        .cloned()
        .unwrap()
}
