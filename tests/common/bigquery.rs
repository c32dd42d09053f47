//! The BigQuery emulator (`local-bigquery`, installed and started by the scripts in
//! tests/bigquery-emulator/, see its README) in a child process of the test, with curl as
//! the independent REST client and tests/bigquery/check.py (Google's Python client and
//! fastavro, from the emulator's venv) as the independent checker.
//!
//! Emulator quirk to keep in mind when reading rows back (local-bigquery 0.4.0): BYTES
//! inside a RECORD, or in a REPEATED column, are stored as the base64 text that was sent
//! (insertAll and Storage Write alike; only top-level BYTES columns are decoded), so they
//! come back base64-encoded twice. check.py detects and undoes this; `rows`/`records`
//! return what the emulator says.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{tail, wait_child, wait_until};

/// The project the emulator is started with (any other id also works in URLs).
const PROJECT: &str = "test";
/// A first install takes 35–50 s on 2 cores; concurrent installers queue on a lock.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// From start to the REST API answering: 3–5 s measured, more on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// From SIGTERM to exit (a clean shutdown takes well under a second).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// For one run of check.py (it gives up on the emulator itself after 30 s per call).
const CHECK_TIMEOUT: Duration = Duration::from_secs(180);

/// The install root: `$FERRY_BQ_EMULATOR_HOME`, else `~/.cache/ferry/bigquery-emulator`
/// (the same rule as install.sh).
pub fn emulator_home() -> PathBuf {
    match std::env::var_os("FERRY_BQ_EMULATOR_HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home),
        _ => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/ferry/bigquery-emulator")
        }
    }
}

fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bigquery-emulator")
}

/// Two distinct free ports on 127.0.0.1 (both bound at once, so they differ).
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = |l: &std::net::TcpListener| l.local_addr().expect("local addr").port();
    (port(&a), port(&b))
}

/// What install.sh printed as its reason for exit 3 (`SKIP: …`), or the log's last line.
fn skip_reason(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("SKIP:"))
        .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("the BigQuery emulator cannot be installed here (exit 3)")
        .trim()
        .to_string()
}

/// Runs a command to its end with stdout and stderr captured; panics if it takes longer
/// than `timeout` (it is then killed by PID).
fn output_within(mut cmd: Command, timeout: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("stdout")));
    let stderr = reader(Box::new(child.stderr.take().expect("stderr")));
    let status = wait_child(&mut child, timeout)
        .unwrap_or_else(|| panic!("{what} did not finish within {timeout:?} (killed)"));
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Runs install.sh (a no-op in ~0.05 s once installed). `Err(reason)` when it exits 3
/// (no Python >= 3.13 here); any other failure panics.
fn install(log: &Path) -> Result<(), String> {
    let file = std::fs::File::create(log).expect("install log file");
    let mut child = Command::new(scripts_dir().join("install.sh"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("run tests/bigquery-emulator/install.sh");
    match wait_child(&mut child, INSTALL_TIMEOUT) {
        Some(s) if s.success() => Ok(()),
        Some(s) if s.code() == Some(3) => Err(skip_reason(log)),
        Some(s) => panic!(
            "tests/bigquery-emulator/install.sh failed ({s}):\n{}",
            tail(log, 40)
        ),
        None => panic!(
            "tests/bigquery-emulator/install.sh did not finish within {INSTALL_TIMEOUT:?} (killed):\n{}",
            tail(log, 40)
        ),
    }
}

/// A running emulator with its data in a temporary directory of its own.
pub struct BigQueryEmulator {
    /// `http://127.0.0.1:P`, the REST API (under `/bigquery/v2`).
    pub rest: String,
    /// `http://127.0.0.1:G`, the Storage Read/Write APIs (plaintext gRPC).
    pub grpc: String,
    pub project: String,
    child: Child,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl std::fmt::Debug for BigQueryEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigQueryEmulator")
            .field("rest", &self.rest)
            .field("grpc", &self.grpc)
            .field("pid", &self.child.id())
            .finish()
    }
}

impl BigQueryEmulator {
    /// Installs the emulator if needed and starts it on two free ports. `Err(reason)` means
    /// it cannot be had on this machine (no Python >= 3.13): call `skip(test, &reason)`.
    /// Anything else that goes wrong panics, with the emulator's log.
    pub fn start() -> Result<BigQueryEmulator, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        // Installing first, with its own bound, keeps the readiness bound below about
        // starting only.
        install(&dir.path().join("install.log"))?;
        let (rest_port, grpc_port) = free_ports();
        let log = dir.path().join("emulator.log");
        let file = std::fs::File::create(&log).expect("emulator log file");
        let child = Command::new(scripts_dir().join("serve.sh"))
            .args([
                "127.0.0.1".to_string(),
                rest_port.to_string(),
                grpc_port.to_string(),
                dir.path().join("data").display().to_string(),
            ])
            .env("FERRY_BQ_PROJECT", PROJECT)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            // Its own group, so that stopping it also stops an install.sh still running.
            .process_group(0)
            .spawn()
            .expect("start tests/bigquery-emulator/serve.sh");
        let mut emulator = BigQueryEmulator {
            rest: format!("http://127.0.0.1:{rest_port}"),
            grpc: format!("http://127.0.0.1:{grpc_port}"),
            project: PROJECT.to_string(),
            child,
            dir,
            log,
        };
        let end = Instant::now() + READY_TIMEOUT;
        loop {
            if emulator.answers() {
                return Ok(emulator);
            }
            if let Ok(Some(status)) = emulator.child.try_wait() {
                if status.code() == Some(3) {
                    return Err(skip_reason(&emulator.log));
                }
                panic!(
                    "the BigQuery emulator exited ({status}) before answering on {}; its log:\n{}",
                    emulator.rest,
                    emulator.log_tail()
                );
            }
            if Instant::now() >= end {
                panic!(
                    "the BigQuery emulator did not answer on {} within {READY_TIMEOUT:?}; its log:\n{}",
                    emulator.rest,
                    emulator.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Whether `GET …/projects/test/datasets` answers 200 (the README's readiness probe:
    /// gRPC binds before HTTP).
    fn answers(&self) -> bool {
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "2",
            ])
            .arg(format!(
                "{}/bigquery/v2/projects/{PROJECT}/datasets",
                self.rest
            ))
            .output()
            .is_ok_and(|o| o.stdout == b"200")
    }

    /// The temporary directory (data, logs); removed when the emulator is dropped.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of the emulator's log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 40)
    }

    /// One REST call with curl, `path` under `{rest}/bigquery/v2` (e.g.
    /// `/projects/test/datasets`): the HTTP status and the JSON body (Null if empty).
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let text = body.map(Value::to_string);
        let (status, body) = super::curl(
            method,
            &format!("{}/bigquery/v2{path}", self.rest),
            &[],
            text.as_deref().map(|t| ("application/json", t.as_bytes())),
            60,
        );
        assert!(
            status != 0,
            "curl {method} {path} failed: {body}\nemulator log:\n{}",
            self.log_tail()
        );
        let value = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{method} {path} -> {status}: not JSON ({e}): {body}"))
        };
        (status, value)
    }

    /// Like `api`, panicking unless the status is 200.
    fn api_ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, value) = self.api(method, path, body);
        assert_eq!(status, 200, "{method} {path} -> {status}: {value}");
        value
    }

    pub fn create_dataset(&self, dataset: &str) {
        let body = json!({"datasetReference": {"projectId": self.project, "datasetId": dataset}});
        self.api_ok(
            "POST",
            &format!("/projects/{}/datasets", self.project),
            Some(&body),
        );
    }

    /// Creates a table; `fields` is the REST schema's field list
    /// (`[{"name","type","mode","fields"}, …]`).
    pub fn create_table(&self, dataset: &str, table: &str, fields: Value) {
        let body = json!({
            "tableReference": {"projectId": self.project, "datasetId": dataset, "tableId": table},
            "schema": {"fields": fields},
        });
        self.api_ok(
            "POST",
            &format!("/projects/{}/datasets/{dataset}/tables", self.project),
            Some(&body),
        );
    }

    /// insertAll of rows given as JSON objects (no insertId, so nothing is de-duplicated);
    /// panics on any row error.
    pub fn insert_rows(&self, dataset: &str, table: &str, rows: &[Value]) {
        let body = json!({
            "rows": rows.iter().map(|r| json!({"json": r})).collect::<Vec<_>>(),
            "skipInvalidRows": false,
            "ignoreUnknownValues": false,
        });
        let reply = self.api_ok(
            "POST",
            &format!(
                "/projects/{}/datasets/{dataset}/tables/{table}/insertAll",
                self.project
            ),
            Some(&body),
        );
        assert!(
            reply.get("insertErrors").is_none(),
            "insertAll into {dataset}.{table}: {reply}"
        );
    }

    /// jobs.query with standard SQL, TIMESTAMPs as int64 micros; panics unless the job
    /// completed. Returns the whole response (`schema`, `rows`, `totalRows`, …).
    pub fn query(&self, sql: &str) -> Value {
        let body = json!({
            "query": sql,
            "useLegacySql": false,
            "timeoutMs": 30000,
            "formatOptions": {"useInt64Timestamp": true},
        });
        let reply = self.api_ok(
            "POST",
            &format!("/projects/{}/queries", self.project),
            Some(&body),
        );
        assert_eq!(reply["jobComplete"], json!(true), "query {sql}: {reply}");
        reply
    }

    /// Every row of a table through tabledata.list, all pages, in the REST encoding:
    /// `{"f":[{"v":…},…]}` in schema order, scalars as strings, TIMESTAMP as int64 micros,
    /// BYTES as base64, NULL as `{"v":null}`.
    pub fn rows(&self, dataset: &str, table: &str) -> Vec<Value> {
        let base = format!(
            "/projects/{}/datasets/{dataset}/tables/{table}/data?maxResults=500&formatOptions.useInt64Timestamp=true",
            self.project
        );
        let mut rows = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let path = match &token {
                Some(t) => format!("{base}&pageToken={t}"),
                None => base.clone(),
            };
            let page = self.api_ok("GET", &path, None);
            let got = page["rows"].as_array().cloned().unwrap_or_default();
            let empty = got.is_empty();
            rows.extend(got);
            match page["pageToken"].as_str() {
                // A page without rows that still points on would loop forever.
                Some(next) if !empty && token.as_deref() != Some(next) => {
                    token = Some(next.to_string());
                }
                _ => return rows,
            }
        }
    }

    /// The table's REST schema fields.
    pub fn schema(&self, dataset: &str, table: &str) -> Value {
        let t = self.api_ok(
            "GET",
            &format!(
                "/projects/{}/datasets/{dataset}/tables/{table}",
                self.project
            ),
            None,
        );
        t["schema"]["fields"].clone()
    }

    /// `rows`, each as an object keyed by column name (RECORDs as objects, REPEATED as
    /// arrays); scalars stay as the REST API gives them (strings, or null).
    pub fn records(&self, dataset: &str, table: &str) -> Vec<Value> {
        let fields = self.schema(dataset, table);
        self.rows(dataset, table)
            .iter()
            .map(|row| decode_record(&fields, row))
            .collect()
    }

    /// The emulator venv's python (it has google-cloud-bigquery and fastavro).
    pub fn python(&self) -> PathBuf {
        emulator_home().join("venv/bin/python")
    }

    /// The row count of `dataset.table` by check.py; 0 while the table does not exist.
    pub fn row_count(&self, table: &str) -> usize {
        let out = self.check(&["count", "--table", table]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// Runs tests/bigquery/check.py with `--rest … --project …` then `args` (a subcommand
    /// and its options); bounded, and killed after `CHECK_TIMEOUT`.
    pub fn check(&self, args: &[&str]) -> Output {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bigquery/check.py");
        let mut cmd = Command::new(self.python());
        cmd.arg(script)
            .args(["--rest", &self.rest, "--project", &self.project])
            .args(args);
        output_within(cmd, CHECK_TIMEOUT, "tests/bigquery/check.py")
    }
}

/// A REST row (`{"f":[…]}`) as an object, by the schema's `fields`.
fn decode_record(fields: &Value, row: &Value) -> Value {
    let fields = fields.as_array().expect("schema fields");
    let cells = row["f"].as_array().expect("row cells");
    assert_eq!(fields.len(), cells.len(), "row {row} against {fields:?}");
    let mut out = serde_json::Map::new();
    for (field, cell) in fields.iter().zip(cells) {
        let name = field["name"].as_str().expect("field name").to_string();
        let value = if field["mode"] == "REPEATED" {
            let items = cell["v"].as_array().cloned().unwrap_or_default();
            Value::Array(items.iter().map(|i| decode_value(field, &i["v"])).collect())
        } else {
            decode_value(field, &cell["v"])
        };
        out.insert(name, value);
    }
    Value::Object(out)
}

fn decode_value(field: &Value, v: &Value) -> Value {
    let nested = matches!(field["type"].as_str(), Some("RECORD" | "STRUCT"));
    if nested && !v.is_null() {
        decode_record(&field["fields"], v)
    } else {
        v.clone()
    }
}

impl Drop for BigQueryEmulator {
    /// SIGTERM to the emulator's group, SIGKILL if it is still there after `STOP_TIMEOUT`.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let child = &mut self.child;
        if !wait_until(STOP_TIMEOUT, || matches!(child.try_wait(), Ok(Some(_)))) {
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        }
        let _ = self.child.wait();
    }
}
