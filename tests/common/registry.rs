//! A Confluent-Schema-Registry-compatible server for the tests of the Confluent Avro
//! converter: `crabka-schema-registry`, storing its schemas in a `crabka-broker` of its own
//! (both built by tests/schema-registry/install.sh, see its README), each in a child
//! process of the test on free 127.0.0.1 ports, with curl as the independent REST client.
//!
//! Each `SchemaRegistry` has its own broker, data and logs in a temporary directory, so any
//! number can run at once. Dropping it stops both processes by PID; if the test is
//! panicking, the last lines of both logs are printed first.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::emulator::skip;
use super::{free_port, tail, wait_child, wait_until};

/// A cold install builds two Rust programs from crates.io sources: about 6 min (release) on
/// 2 cores, much more on a loaded machine. tests/run.sh runs install.sh before the tests,
/// so here it is normally the ~0.05 s no-op. Concurrent installers queue on a lock.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(40 * 60);
/// From start to the broker listening (about 0.1 s measured).
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);
/// From start to the registry accepting writes: ~3 s measured (it creates `_schemas` and
/// wins its leader election first).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// From SIGTERM to exit (neither program handles SIGTERM, so it is immediate).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at starting, each on fresh ports: a free port found by binding port 0 can be
/// taken by another process before the server binds it.
const ATTEMPTS: usize = 3;
/// Inherited variables with these prefixes configure the servers (clap `env = …`, OTLP
/// export); none of them is meant for a test's private servers.
const ENV_PREFIXES: [&str; 3] = ["CRABKA_", "SCHEMA_REGISTRY_", "OTEL_"];

fn install_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schema-registry/install.sh")
}

/// Runs install.sh (a no-op in ~0.05 s once installed) and returns the bin directory it
/// printed last. `Err(reason)` when it exits 3 (it prints `SKIP: reason`); any other
/// failure panics with its log.
fn install(dir: &Path) -> Result<PathBuf, String> {
    let (out, log) = (dir.join("install.out"), dir.join("install.log"));
    let mut child = Command::new(install_script())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("install stdout file"))
        .stderr(std::fs::File::create(&log).expect("install log file"))
        .spawn()
        .expect("run tests/schema-registry/install.sh");
    match wait_child(&mut child, INSTALL_TIMEOUT) {
        Some(s) if s.success() => {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let bin = text.lines().last().unwrap_or_default().trim();
            assert!(
                !bin.is_empty(),
                "install.sh printed no bin directory:\n{}",
                tail(&log, 40)
            );
            Ok(PathBuf::from(bin))
        }
        Some(s) if s.code() == Some(3) => {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            Err(text
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("SKIP:"))
                .unwrap_or("the schema registry cannot be installed here (install.sh exit 3)")
                .trim()
                .to_string())
        }
        Some(s) => panic!(
            "tests/schema-registry/install.sh failed ({s}):\n{}",
            tail(&log, 40)
        ),
        None => panic!(
            "tests/schema-registry/install.sh did not finish within {INSTALL_TIMEOUT:?} (killed):\n{}",
            tail(&log, 40)
        ),
    }
}

/// Whether the log file has a line containing `needle`.
fn log_has(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.contains(needle))
}

/// A random UUID, from the kernel.
fn new_uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .expect("read /proc/sys/kernel/random/uuid")
        .trim()
        .to_string()
}

/// Starts `bin args…` in a process group of its own, stdout and stderr to `log`.
fn spawn(bin: &Path, args: &[String], log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file handle"))
        .stderr(file)
        .process_group(0);
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if ENV_PREFIXES.iter().any(|p| name.starts_with(p)) {
            cmd.env_remove(&key);
        }
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()))
}

/// SIGTERM, then SIGKILL if it is still there after `STOP_TIMEOUT`; by PID.
fn stop(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    if !wait_until(STOP_TIMEOUT, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    }
    let _ = child.wait();
}

/// `s` with every byte outside RFC 3986's unreserved set percent-encoded.
fn encode_path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Why an attempt at starting did not give a working registry.
enum StartError {
    /// Worth another attempt on fresh ports (a port was taken in the meantime).
    Retry(String),
    Fatal(String),
}

impl StartError {
    /// A server that exited because its port was taken is retried; anything else is not.
    fn classify(why: String) -> StartError {
        if why.contains("Address already in use") || why.contains("AddrInUse") {
            StartError::Retry(why)
        } else {
            StartError::Fatal(why)
        }
    }
}

/// A running schema registry and the broker it stores schemas in.
pub struct SchemaRegistry {
    /// `http://127.0.0.1:Q`, the Confluent REST API.
    pub url: String,
    /// `127.0.0.1:P`, the registry's own Kafka-compatible broker (the `_schemas` topic).
    pub bootstrap: String,
    registry: Child,
    broker: Child,
    registry_log: PathBuf,
    broker_log: PathBuf,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("url", &self.url)
            .field("bootstrap", &self.bootstrap)
            .field("registry_pid", &self.registry.id())
            .field("broker_pid", &self.broker.id())
            .finish()
    }
}

impl SchemaRegistry {
    /// Installs the servers if needed, starts a broker and a registry on free ports and
    /// waits until the registry accepts writes. If they cannot be installed here (no cargo,
    /// no network on a first install), records `test` as skipped with the reason and
    /// returns None. Anything else that goes wrong panics, with the logs.
    pub fn start_or_skip(test: &str) -> Option<SchemaRegistry> {
        let bin = {
            let dir = tempfile::tempdir().expect("tempdir");
            match install(dir.path()) {
                Ok(bin) => bin,
                Err(reason) => {
                    skip(test, &reason);
                    return None;
                }
            }
        };
        let started = Instant::now();
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match Self::start(&bin) {
                Ok(registry) => {
                    eprintln!(
                        "schema registry {} (broker {}) accepting writes after {:.1?}",
                        registry.url,
                        registry.bootstrap,
                        started.elapsed()
                    );
                    return Some(registry);
                }
                Err(StartError::Retry(why)) => {
                    eprintln!(
                        "schema registry, attempt {attempt}: {why}
(trying other ports)"
                    );
                    last = why;
                }
                Err(StartError::Fatal(why)) => panic!("{why}"),
            }
        }
        panic!("the schema registry did not start in {ATTEMPTS} attempts; the last:\n{last}")
    }

    /// One attempt, in a fresh directory: broker, then registry; whatever was started is
    /// stopped again if the attempt fails.
    fn start(bin: &Path) -> Result<SchemaRegistry, StartError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("broker-data");
        std::fs::create_dir_all(&data).expect("broker data dir");
        // What `crabka format` would write; the broker refuses an unformatted log dir.
        let meta = json!({"cluster_id": new_uuid(), "directory_id": new_uuid(), "version": 1});
        std::fs::write(data.join("meta.properties.json"), meta.to_string())
            .expect("write meta.properties.json");

        let broker_port = free_port();
        let broker_log = dir.path().join("broker.log");
        let mut broker = spawn(
            &bin.join("crabka-broker"),
            &[
                format!("--listen-addr=127.0.0.1:{broker_port}"),
                // The ferry patch (install.sh): an OS-assigned controller port, not 9093.
                "--controller-listen-addr=127.0.0.1:0".into(),
                format!("--log-dir={}", data.display()),
                "--metrics-listen-addr=none".into(),
            ],
            &broker_log,
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], broker_port));
        // Its own line, not a connection to the port: a free port found by binding port 0
        // may have been taken by another process since, which would accept connections.
        let listening = format!("crabka-broker listening addr={addr}");
        let mut exited = None;
        let up = wait_until(BROKER_TIMEOUT, || {
            if let Ok(Some(status)) = broker.try_wait() {
                exited = Some(status);
                return true;
            }
            log_has(&broker_log, &listening)
        });
        if let Some(status) = exited {
            return Err(StartError::classify(format!(
                "crabka-broker exited ({status}) before listening on {addr}; its log:\n{}",
                tail(&broker_log, 40)
            )));
        }
        if !up {
            stop(&mut broker);
            return Err(StartError::Fatal(format!(
                "crabka-broker did not listen on {addr} within {BROKER_TIMEOUT:?}; its log:\n{}",
                tail(&broker_log, 40)
            )));
        }

        let registry_port = free_port();
        let url = format!("http://127.0.0.1:{registry_port}");
        let registry_log = dir.path().join("registry.log");
        let registry = spawn(
            &bin.join("crabka-schema-registry"),
            &[
                format!("--bootstrap-servers=127.0.0.1:{broker_port}"),
                format!("--listen-addr=127.0.0.1:{registry_port}"),
                format!("--advertised-url={url}"),
                "--schemas-topic-rf=1".into(),
            ],
            &registry_log,
        );
        // From here on, Drop stops both.
        let mut sr = SchemaRegistry {
            url,
            bootstrap: addr.to_string(),
            registry,
            broker,
            broker_log,
            registry_log,
            dir,
        };
        let listening = format!("listening addr=127.0.0.1:{registry_port}");
        let end = Instant::now() + READY_TIMEOUT;
        loop {
            // Writes pass only once this node has won the leader election (503 before);
            // a compatibility check against a subject that does not exist answers 404.
            // The log line makes sure it is this registry that answers (see the broker's).
            let (status, _) = request(
                &sr.url,
                "POST",
                "/compatibility/subjects/__ready/versions/latest",
                Some(r#"{"schema":"\"string\""}"#),
            );
            if status != 0 && status != 503 && log_has(&sr.registry_log, &listening) {
                return Ok(sr);
            }
            let exited = match (sr.registry.try_wait(), sr.broker.try_wait()) {
                (Ok(Some(status)), _) => Some(("crabka-schema-registry", status)),
                (_, Ok(Some(status))) => Some(("crabka-broker", status)),
                _ => None,
            };
            if let Some((name, status)) = exited {
                return Err(StartError::classify(format!(
                    "{name} exited ({status}) before the registry accepted writes on {}; {}",
                    sr.url,
                    sr.log_tail()
                )));
            }
            if Instant::now() >= end {
                return Err(StartError::Fatal(format!(
                    "the schema registry did not accept writes on {} within {READY_TIMEOUT:?} (last HTTP status {status}); {}",
                    sr.url,
                    sr.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the registry process (not its broker), by PID.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.registry.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} the registry failed");
    }

    /// The temporary directory (broker data, logs); removed when this is dropped.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of both logs, for failure messages.
    pub fn log_tail(&self) -> String {
        format!(
            "registry log:\n{}\nbroker log:\n{}",
            tail(&self.registry_log, 40),
            tail(&self.broker_log, 20)
        )
    }

    /// One REST call with curl, `path` under `url` (e.g. `/subjects`), JSON `body` sent as
    /// `application/vnd.schemaregistry.v1+json`: the HTTP status and the JSON reply (Null if
    /// empty). Panics if curl itself fails (status 0) or the reply is not JSON.
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(Value::to_string);
        let (status, text) = request(&self.url, method, path, body.as_deref());
        assert!(
            status != 0,
            "curl {method} {}{path} failed: {text}\n{}",
            self.url,
            self.log_tail()
        );
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path} -> {status}: not JSON ({e}): {text}"))
        };
        (status, value)
    }

    /// Registers an Avro schema (its JSON text) under `subject`; returns its global id.
    /// Registering the same schema again returns the same id.
    pub fn register(&self, subject: &str, avro_schema_json: &str) -> i32 {
        let path = format!("/subjects/{}/versions", encode_path_segment(subject));
        let (status, reply) = self.api("POST", &path, Some(&json!({"schema": avro_schema_json})));
        assert_eq!(
            status,
            200,
            "POST {path} -> {status}: {reply}\n{}",
            self.log_tail()
        );
        reply["id"]
            .as_i64()
            .and_then(|id| i32::try_from(id).ok())
            .unwrap_or_else(|| panic!("POST {path}: no id in {reply}"))
    }

    /// The schema text stored under global `id` (`GET /schemas/ids/{id}`), as the registry
    /// returns it (it may be normalized: compare parsed JSON, not text).
    pub fn schema_by_id(&self, id: i32) -> String {
        let path = format!("/schemas/ids/{id}");
        let (status, reply) = self.api("GET", &path, None);
        assert_eq!(
            status,
            200,
            "GET {path} -> {status}: {reply}\n{}",
            self.log_tail()
        );
        reply["schema"]
            .as_str()
            .unwrap_or_else(|| panic!("GET {path}: no schema in {reply}"))
            .to_string()
    }
}

/// One HTTP request to the registry with curl: `(status, body)`, status 0 without an
/// HTTP answer.
fn request(url: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    super::curl(
        method,
        &format!("{url}{path}"),
        &["Accept: application/vnd.schemaregistry.v1+json, application/json"],
        body.map(|b| ("application/vnd.schemaregistry.v1+json", b.as_bytes())),
        30,
    )
}

impl Drop for SchemaRegistry {
    /// Stops the registry, then its broker, by PID; shows their logs if the test failed.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("schema registry {}:\n{}", self.url, self.log_tail());
        }
        stop(&mut self.registry);
        stop(&mut self.broker);
    }
}
