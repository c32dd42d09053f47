//! Shared harness for the integration tests: a mock Kafka cluster in its own process
//! (`ferry-mock-broker`), kcat as the independent producer, and ferry as a child process.
//! Every wait is bounded; every process is stopped by PID by the test that started it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod bigquery;
pub mod crabka;
pub mod emulator;
pub mod kerberos;
pub mod registry;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Polls `f` every 50 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ferry"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

/// The `ferry-mock-broker` binary. It belongs to another package of the workspace, which
/// `cargo test -p ferry` does not rebuild, so each test binary brings it up to date once
/// (a no-op when it is).
pub fn mock_broker_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "ferry-mock-broker"]);
        if target_dir().ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build -p ferry-mock-broker");
        assert!(status.success(), "building ferry-mock-broker failed");
        target_dir().join("ferry-mock-broker")
    })
    .clone()
}

pub fn ferry_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferry"))
}

/// `connect-standalone`: the ferry executable under Kafka's script name, through the link
/// `ferry install-aliases` makes (once per test binary).
pub fn connect_standalone_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Test binaries run one at a time; a second run finds the link there already.
        let dir = target_dir().join("aliases");
        std::fs::create_dir_all(&dir).expect("alias directory");
        let out = Command::new(ferry_bin())
            .arg("install-aliases")
            .arg(&dir)
            .output()
            .expect("run ferry install-aliases");
        assert!(
            out.status.success(),
            "ferry install-aliases: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir.join("connect-standalone")
    })
    .clone()
}

/// kcat, the independent Kafka client of these tests.
pub fn kcat() -> Command {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let found = Command::new("kcat")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "kcat is not installed: run tests/run.sh (it installs kcat), or apt-get install kcat"
        );
    });
    Command::new("kcat")
}

/// The lines kcat prints reading `topic` from the beginning (`-C -o beginning -e -q`, then
/// `extra_args`: `-J`, `-f FORMAT`, `-Z`…), read again until there are at least `n` of them
/// or `deadline` has passed; one read when `n` is 0. The caller asserts on what came back.
/// Each run of kcat is killed once the deadline has passed (it gets at least a second), so
/// a broker that does not answer cannot hang a test.
pub fn kcat_read_until(
    bootstrap: &str,
    topic: &str,
    n: usize,
    deadline: Duration,
    extra_args: &[&str],
) -> Vec<String> {
    let end = Instant::now() + deadline;
    let mut lines = Vec::new();
    wait_until(deadline, || {
        lines = kcat_read_once(bootstrap, topic, end, extra_args);
        lines.len() >= n
    });
    lines
}

fn kcat_read_once(bootstrap: &str, topic: &str, end: Instant, extra_args: &[&str]) -> Vec<String> {
    use std::io::Read;
    let mut child = kcat()
        .args([
            "-C",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
        ])
        .args(extra_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kcat");
    let mut stdout = child.stdout.take().expect("kcat stdout");
    // Read while waiting: a full pipe would otherwise stop kcat before it exits.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let left = end.saturating_duration_since(Instant::now());
    wait_child(&mut child, left.max(Duration::from_secs(1)));
    let out = reader.join().unwrap_or_default();
    String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_string)
        .collect()
}

/// kcat's JSON envelopes (`-J`) of `topic` as [`kcat_read_until`] reads them, with the
/// headers (kcat lists them as `[name, value, name, value, …]`) as an object of name →
/// value.
pub fn kcat_records_until(
    bootstrap: &str,
    topic: &str,
    n: usize,
    deadline: Duration,
) -> Vec<serde_json::Value> {
    kcat_read_until(bootstrap, topic, n, deadline, &["-J"])
        .iter()
        .map(|l| {
            let mut r: serde_json::Value = serde_json::from_str(l).expect("kcat JSON");
            let flat = r["headers"].as_array().cloned().unwrap_or_default();
            let map: serde_json::Map<String, serde_json::Value> = flat
                .chunks(2)
                .map(|kv| (kv[0].as_str().unwrap().to_string(), kv[1].clone()))
                .collect();
            r["headers"] = serde_json::Value::Object(map);
            r
        })
        .collect()
}

/// A mock Kafka cluster in a child process.
pub struct Broker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub bootstrap: String,
}

impl Broker {
    /// One broker; groups wait `rebalance_delay_ms` for members before the first assignment.
    pub fn start(brokers: u32, rebalance_delay_ms: u64) -> Broker {
        let mut child = Command::new(mock_broker_bin())
            .args([
                "--brokers",
                &brokers.to_string(),
                "--rebalance-delay-ms",
                &rebalance_delay_ms.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ferry-mock-broker");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read bootstrap line");
        let bootstrap = line
            .trim()
            .strip_prefix("bootstrap=")
            .expect("bootstrap=… line")
            .to_string();
        Broker {
            child,
            stdin,
            stdout,
            bootstrap,
        }
    }

    /// Sends a control command and returns its reply.
    pub fn command(&mut self, line: &str) -> Result<(), String> {
        writeln!(self.stdin, "{line}").map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())?;
        let mut reply = String::new();
        self.stdout
            .read_line(&mut reply)
            .map_err(|e| e.to_string())?;
        match reply.trim() {
            "ok" => Ok(()),
            other => Err(other.to_string()),
        }
    }

    pub fn create_topic(&mut self, name: &str, partitions: i32) {
        self.command(&format!("topic {name} {partitions}"))
            .expect("create topic");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces one message per line to a partition with kcat.
pub fn produce_lines(bootstrap: &str, topic: &str, partition: i32, lines: &[String]) {
    let mut cmd = kcat();
    cmd.args(["-b", bootstrap]);
    feed_kcat(cmd, topic, partition, lines)
        .unwrap_or_else(|status| panic!("kcat produce failed: {status}"));
}

/// Runs a prepared kcat command as a producer of one message per line to a partition;
/// `Err` says how it ended if it did not succeed within a minute.
pub fn feed_kcat(
    mut cmd: Command,
    topic: &str,
    partition: i32,
    lines: &[String],
) -> Result<(), String> {
    let mut child = cmd
        .args(["-P", "-t", topic, "-p", &partition.to_string(), "-q"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start kcat");
    {
        let mut stdin = child.stdin.take().expect("kcat stdin");
        for l in lines {
            writeln!(stdin, "{l}").expect("write to kcat");
        }
    }
    match wait_child(&mut child, Duration::from_secs(60)) {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(s.to_string()),
        None => Err("no exit within 60 s (killed)".into()),
    }
}

/// The lines of a file; none if it does not exist (yet).
pub fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Produces each file as one message (kcat's file mode) to a partition.
pub fn produce_files(bootstrap: &str, topic: &str, partition: i32, files: &[PathBuf]) {
    let mut cmd = kcat();
    cmd.args([
        "-P",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-p",
        &partition.to_string(),
        "-q",
    ]);
    cmd.args(files);
    let mut child = cmd.spawn().expect("start kcat");
    let status = wait_child(&mut child, Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "kcat produce (files) failed"
    );
}

/// Waits for a child with a bound; kills it (by PID) on timeout and returns None.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A ferry process with its logs captured to files.
pub struct Ferry {
    pub child: Child,
    pub stderr: PathBuf,
    pub stdout: PathBuf,
}

impl Ferry {
    pub fn spawn(bin: &Path, args: &[&str], dir: &Path, tag: &str) -> Ferry {
        Ferry::spawn_with_env(bin, args, &[], dir, tag)
    }

    /// Like `spawn`, with extra environment variables.
    pub fn spawn_with_env(
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
        tag: &str,
    ) -> Ferry {
        let stderr = dir.join(format!("{tag}.stderr"));
        let stdout = dir.join(format!("{tag}.stdout"));
        let child = Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("FERRY_TEST_LOG").unwrap_or("info".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start ferry");
        Ferry {
            child,
            stderr,
            stdout,
        }
    }

    /// `ferry standalone WORKER CONNECTOR…`, running until signalled.
    pub fn standalone(dir: &Path, worker: &Path, connectors: &[&Path]) -> Ferry {
        let mut args = vec!["standalone", worker.to_str().expect("utf-8 path")];
        args.extend(connectors.iter().map(|c| c.to_str().expect("utf-8 path")));
        Ferry::spawn(&ferry_bin(), &args, dir, "ferry")
    }

    pub fn log(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.stderr).unwrap_or_default())
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        match wait_child(&mut self.child, timeout) {
            Some(s) => s,
            None => panic!(
                "ferry did not exit within {timeout:?}; log:\n{}",
                self.log()
            ),
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs `ferry [flags] standalone --exit-at-end WORKER CONNECTOR…` to completion and
/// returns its log; panics with the log unless it exits 0 within `timeout`.
pub fn run_to_end(
    dir: &Path,
    flags: &[&str],
    worker: &Path,
    connectors: &[&Path],
    timeout: Duration,
) -> String {
    let mut args: Vec<&str> = flags.to_vec();
    args.extend([
        "standalone",
        "--exit-at-end",
        worker.to_str().expect("utf-8 path"),
    ]);
    args.extend(connectors.iter().map(|c| c.to_str().expect("utf-8 path")));
    let mut ferry = Ferry::spawn(&ferry_bin(), &args, dir, "ferry");
    let status = ferry.wait(timeout);
    let log = ferry.log();
    assert!(
        status.success(),
        "ferry exited {status:?}:
{log}"
    );
    log
}

/// Writes a properties file.
pub fn write_props(path: &Path, pairs: &[(&str, &str)]) {
    let mut text = String::new();
    for (k, v) in pairs {
        text.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(path, text).expect("write properties");
}

/// A worker file for the mock cluster: ByteArray converters, the offset file, quick
/// flushes, and a short session so a killed worker's member leaves the group quickly.
/// `extra` replaces or adds keys; `("!key", "")` removes one of these defaults.
pub fn worker_props(dir: &Path, bootstrap: &str, extra: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("worker.properties");
    let offsets = dir.join("connect.offsets");
    let offsets = offsets.to_str().expect("utf-8 path");
    let mut pairs = vec![
        ("bootstrap.servers", bootstrap),
        (
            "key.converter",
            "org.apache.kafka.connect.converters.ByteArrayConverter",
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.converters.ByteArrayConverter",
        ),
        ("offset.storage.file.filename", offsets),
        ("offset.flush.interval.ms", "500"),
        ("consumer.session.timeout.ms", "6000"),
        ("consumer.heartbeat.interval.ms", "500"),
        ("ferry.status.interval.ms", "1000"),
    ];
    for (k, v) in extra {
        // `!key` takes one of the defaults above out.
        let k = k.strip_prefix('!').map_or(*k, |removed| {
            pairs.retain(|(key, _)| *key != removed);
            ""
        });
        if !k.is_empty() {
            pairs.retain(|(key, _)| *key != k);
            pairs.push((k, v));
        }
    }
    // Many ferries run at once here; the REST API is tested on free ports in tests/rest.rs,
    // which turns it back on. Last, so that the lines of the keys above stay where tests
    // expect them.
    if !pairs.iter().any(|(k, _)| *k == "ferry.rest.enable") {
        pairs.push(("ferry.rest.enable", "false"));
    }
    write_props(&path, &pairs);
    path
}

/// The group's committed offsets for partitions `0..partitions` of a topic (-1: none).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer for committed offsets");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

/// The offsets file, as connector → "topic-partition" → offset.
pub fn offset_file(path: &Path) -> BTreeMap<String, BTreeMap<String, i64>> {
    let text = std::fs::read_to_string(path).expect("offset file");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("offset file is JSON");
    let mut out = BTreeMap::new();
    for (c, topics) in doc["connectors"].as_object().expect("connectors") {
        let entry: &mut BTreeMap<String, i64> = out.entry(c.clone()).or_default();
        for (t, parts) in topics.as_object().expect("topics") {
            for (p, o) in parts.as_object().expect("partitions") {
                entry.insert(format!("{t}-{p}"), o.as_i64().expect("offset"));
            }
        }
    }
    out
}

/// Lines `p<partition>-<n>` for n in 0..count: the value names its own offset.
pub fn numbered(partition: i32, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("p{partition}-{n}")).collect()
}

/// A TCP proxy on 127.0.0.1 passing everything to `upstream` (`host:port`) and counting
/// the bytes clients send through it. Returns its `host:port` and the counter; its
/// threads end with the test process.
pub fn counting_proxy(upstream: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let upstream = upstream.to_string();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address").to_string();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut from_client, mut to_server) = match (client.try_clone(), server.try_clone()) {
                (Ok(c), Ok(s)) => (c, s),
                _ => continue,
            };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64 * 1024];
                loop {
                    match std::io::Read::read(&mut from_client, &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                            if to_server.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = to_server.shutdown(Shutdown::Write);
            });
            let (mut from_server, mut to_client) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_server, &mut to_client);
                let _ = to_client.shutdown(Shutdown::Write);
            });
        }
    });
    (addr, sent)
}

/// The last `n` lines of a log file (empty when it cannot be read).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A free loopback port (bound and released; a test binds it again at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The sum of a Prometheus series over its label sets, from a `/metrics` page (0 when
/// absent).
pub fn series_sum(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One HTTP request with curl — the tests' independent HTTP client — sending `body` (if
/// any) through stdin with `content_type`, extra `headers` as `Name: value`. Returns the
/// status and the body; status 0 when curl got no HTTP answer (the body is then curl's
/// error). Bounded by curl's `--max-time`.
pub fn curl(
    method: &str,
    url: &str,
    headers: &[&str],
    body: Option<(&str, &[u8])>,
    max_time_s: u32,
) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", &max_time_s.to_string(), "-X", method])
        .args(["-w", "\n%{http_code}"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some((content_type, _)) = body {
        // Through stdin: rows of alerts are too big for an argument.
        cmd.args(["-H", &format!("Content-Type: {content_type}")])
            .args(["--data-binary", "@-"]);
    }
    let mut child = cmd
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start curl");
    {
        let mut stdin = child.stdin.take().expect("curl stdin");
        if let Some((_, bytes)) = body {
            // curl reads all of `@-` before it sends anything, so this cannot block on its
            // output.
            stdin
                .write_all(bytes)
                .expect("write the request body to curl");
        }
    }
    let out = child.wait_with_output().expect("curl output");
    let text = String::from_utf8_lossy(&out.stdout);
    let (reply, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    match status.trim().parse::<u16>() {
        Ok(status) if status != 0 => (status, reply.to_string()),
        _ => (0, String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}
