//! `crabka-broker` 0.3.0, a Kafka-compatible broker in a child process of the test on a
//! free 127.0.0.1 port, with its data and log in a temporary directory of its own. Unlike
//! librdkafka's mock cluster it serves the admin APIs (CreateTopics), and it creates no
//! topic on a producer's or consumer's metadata request, so a topic it has was created on
//! purpose. It is built, with the schema registry that stores its schemas in one, by
//! tests/schema-registry/install.sh; where that cannot run, the test records a counted
//! skip.
//!
//! Caveat: librdkafka (so kcat and ferry) cannot consume from crabka-broker 0.3.0 — its
//! Fetch answer for an empty partition has MessageSetSize -1, which librdkafka rejects —
//! but metadata (`kcat -L`), producing and the admin APIs work.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::emulator::skip;
use super::{free_port, tail, wait_child, wait_until};

/// A cold install builds two Rust programs from crates.io sources: about 6 min (release) on
/// 2 cores, much more on a loaded machine. tests/run.sh runs install.sh before the tests,
/// so here it is normally the ~0.05 s no-op. Concurrent installers queue on a lock.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(40 * 60);
/// From start to the broker listening (about 0.1 s measured).
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);
/// From SIGTERM to exit (neither crabka program handles SIGTERM, so it is immediate).
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

/// The servers' bin directory, installed if needed; None, with `test` recorded as skipped
/// and the reason printed, where they cannot be installed here.
pub(super) fn installed_or_skip(test: &str) -> Option<PathBuf> {
    let dir = tempfile::tempdir().expect("tempdir");
    match install(dir.path()) {
        Ok(bin) => Some(bin),
        Err(reason) => {
            skip(test, &reason);
            None
        }
    }
}

/// Runs install.sh (a no-op in ~0.05 s once installed) and returns the bin directory it
/// printed last. `Err(reason)` when it exits 3 (it prints `SKIP: reason`); any other
/// failure panics with its log.
pub(super) fn install(dir: &Path) -> Result<PathBuf, String> {
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
pub(super) fn log_has(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.contains(needle))
}

/// Starts `bin args…` in a process group of its own, stdout and stderr to `log`.
pub(super) fn spawn(bin: &Path, args: &[String], log: &Path) -> Child {
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
pub(super) fn stop(child: &mut Child) {
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

/// Why an attempt at starting did not give a working server.
pub(super) enum StartError {
    /// Worth another attempt on fresh ports (a port was taken in the meantime).
    Retry(String),
    Fatal(String),
}

impl StartError {
    /// A server that exited because its port was taken is retried; anything else is not.
    pub(super) fn classify(why: String) -> StartError {
        if why.contains("Address already in use") || why.contains("AddrInUse") {
            StartError::Retry(why)
        } else {
            StartError::Fatal(why)
        }
    }
}

/// A random UUID, from the kernel.
fn new_uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .expect("read /proc/sys/kernel/random/uuid")
        .trim()
        .to_string()
}

/// Runs `start` up to [`ATTEMPTS`] times while it fails for a port taken in the meantime;
/// panics with the reason otherwise. `what` names the server in the messages.
pub(super) fn with_attempts<T>(what: &str, mut start: impl FnMut() -> Result<T, StartError>) -> T {
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match start() {
            Ok(server) => return server,
            Err(StartError::Retry(why)) => {
                eprintln!("{what}, attempt {attempt}: {why}\n(trying other ports)");
                last = why;
            }
            Err(StartError::Fatal(why)) => panic!("{why}"),
        }
    }
    panic!("the {what} did not start in {ATTEMPTS} attempts; the last:\n{last}")
}

/// A running crabka-broker. Dropping it stops it by PID (showing its log's last lines if
/// the test is panicking) and removes its data.
pub struct CrabkaBroker {
    /// `127.0.0.1:P`.
    pub bootstrap: String,
    child: Child,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for CrabkaBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrabkaBroker")
            .field("bootstrap", &self.bootstrap)
            .field("pid", &self.child.id())
            .finish()
    }
}

impl CrabkaBroker {
    /// Installs the broker if needed and starts one on a free port. If it cannot be
    /// installed here (no cargo, no network on a first install), records `test` as skipped
    /// with the reason and returns None. Anything else that goes wrong panics, with its log.
    pub fn start_or_skip(test: &str) -> Option<CrabkaBroker> {
        let bin = installed_or_skip(test)?;
        let broker = with_attempts("crabka-broker", || Self::start(&bin));
        eprintln!("crabka-broker listening on {}", broker.bootstrap);
        Some(broker)
    }

    /// One attempt, in a fresh directory, with the binaries of `bin`.
    pub(super) fn start(bin: &Path) -> Result<CrabkaBroker, StartError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("broker-data");
        std::fs::create_dir_all(&data).expect("broker data dir");
        // What `crabka format` would write; the broker refuses an unformatted log dir.
        let meta = json!({"cluster_id": new_uuid(), "directory_id": new_uuid(), "version": 1});
        std::fs::write(data.join("meta.properties.json"), meta.to_string())
            .expect("write meta.properties.json");

        let port = free_port();
        let log = dir.path().join("broker.log");
        let mut child = spawn(
            &bin.join("crabka-broker"),
            &[
                format!("--listen-addr=127.0.0.1:{port}"),
                // The ferry patch (install.sh): an OS-assigned controller port, not 9093.
                "--controller-listen-addr=127.0.0.1:0".into(),
                format!("--log-dir={}", data.display()),
                "--metrics-listen-addr=none".into(),
            ],
            &log,
        );
        let addr = format!("127.0.0.1:{port}");
        // Its own line, not a connection to the port: a free port found by binding port 0
        // may have been taken by another process since, which would accept connections.
        let listening = format!("crabka-broker listening addr={addr}");
        let mut exited = None;
        let up = wait_until(BROKER_TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            log_has(&log, &listening)
        });
        if let Some(status) = exited {
            return Err(StartError::classify(format!(
                "crabka-broker exited ({status}) before listening on {addr}; its log:\n{}",
                tail(&log, 40)
            )));
        }
        if !up {
            stop(&mut child);
            return Err(StartError::Fatal(format!(
                "crabka-broker did not listen on {addr} within {BROKER_TIMEOUT:?}; its log:\n{}",
                tail(&log, 40)
            )));
        }
        Ok(CrabkaBroker {
            bootstrap: addr,
            child,
            log,
            dir,
        })
    }

    /// Whether the broker process has exited.
    pub fn has_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }

    /// Its temporary directory (data, log); removed when this is dropped.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for CrabkaBroker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "crabka-broker {} log:\n{}",
                self.bootstrap,
                self.log_tail(20)
            );
        }
        stop(&mut self.child);
    }
}
