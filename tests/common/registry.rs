//! A Confluent-Schema-Registry-compatible server for the tests of the Confluent Avro
//! converter: `crabka-schema-registry`, storing its schemas in a `crabka-broker` of its own
//! (both built by tests/schema-registry/install.sh, see its README), each in a child
//! process of the test on free 127.0.0.1 ports, with curl as the independent REST client.
//!
//! Each `SchemaRegistry` has its own broker ([`CrabkaBroker`]), data and logs in temporary
//! directories, so any number can run at once. Dropping it stops both processes by PID; if
//! the test is panicking, the last lines of both logs are printed first.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::crabka::{
    CrabkaBroker, StartError, installed_or_skip, log_has, spawn, stop, with_attempts,
};
use super::{free_port, tail};

/// From start to the registry accepting writes: ~3 s measured (it creates `_schemas` and
/// wins its leader election first).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

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

/// A running schema registry and the broker it stores schemas in.
pub struct SchemaRegistry {
    /// `http://127.0.0.1:Q`, the Confluent REST API.
    pub url: String,
    /// `127.0.0.1:P`, the registry's own Kafka-compatible broker (the `_schemas` topic).
    pub bootstrap: String,
    registry: Child,
    registry_log: PathBuf,
    dir: tempfile::TempDir,
    /// Declared last: dropped (stopped) after the registry.
    broker: CrabkaBroker,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("url", &self.url)
            .field("bootstrap", &self.bootstrap)
            .field("registry_pid", &self.registry.id())
            .field("broker", &self.broker)
            .finish()
    }
}

impl SchemaRegistry {
    /// Installs the servers if needed, starts a broker and a registry on free ports and
    /// waits until the registry accepts writes. If they cannot be installed here (no cargo,
    /// no network on a first install), records `test` as skipped with the reason and
    /// returns None. Anything else that goes wrong panics, with the logs.
    pub fn start_or_skip(test: &str) -> Option<SchemaRegistry> {
        let bin = installed_or_skip(test)?;
        let started = Instant::now();
        let registry = with_attempts("schema registry", || Self::start(&bin));
        eprintln!(
            "schema registry {} (broker {}) accepting writes after {:.1?}",
            registry.url,
            registry.bootstrap,
            started.elapsed()
        );
        Some(registry)
    }

    /// One attempt, in fresh directories: broker, then registry; whatever was started is
    /// stopped again if the attempt fails.
    fn start(bin: &Path) -> Result<SchemaRegistry, StartError> {
        let broker = CrabkaBroker::start(bin)?;
        let dir = tempfile::tempdir().expect("tempdir");
        let registry_port = free_port();
        let url = format!("http://127.0.0.1:{registry_port}");
        let registry_log = dir.path().join("registry.log");
        let registry = spawn(
            &bin.join("crabka-schema-registry"),
            &[
                format!("--bootstrap-servers={}", broker.bootstrap),
                format!("--listen-addr=127.0.0.1:{registry_port}"),
                format!("--advertised-url={url}"),
                "--schemas-topic-rf=1".into(),
            ],
            &registry_log,
        );
        // From here on, Drop stops both.
        let mut sr = SchemaRegistry {
            url,
            bootstrap: broker.bootstrap.clone(),
            registry,
            registry_log,
            dir,
            broker,
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
            let exited = match (sr.registry.try_wait(), sr.broker.has_exited()) {
                (Ok(Some(status)), _) => Some(("crabka-schema-registry", status)),
                (_, Some(status)) => Some(("crabka-broker", status)),
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

    /// The registry's temporary directory (its log); removed when this is dropped. The
    /// broker's data and log are in [`CrabkaBroker::path`].
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of both logs, for failure messages.
    pub fn log_tail(&self) -> String {
        format!(
            "registry log:\n{}\nbroker log:\n{}",
            tail(&self.registry_log, 40),
            self.broker.log_tail(20)
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
            eprintln!(
                "schema registry {}:\nregistry log:\n{}",
                self.url,
                tail(&self.registry_log, 40)
            );
        }
        stop(&mut self.registry);
        // The broker, a field, stops (and shows its log) after this.
    }
}
