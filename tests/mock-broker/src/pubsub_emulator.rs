//! Google's Pub/Sub emulator for ferry's tests and benchmarks: started on a free port in its
//! own process group (the launcher script forks the JVM), driven and checked through its
//! REST API with curl — a client independent of the one ferry publishes with — and stopped
//! by process group id.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;

/// Polls `f` every 50 ms until it is true or `timeout` passes.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the emulator is: `PUBSUB_EMULATOR_BIN`, or the Debian package
/// `google-cloud-cli-pubsub-emulator`'s path.
pub fn emulator_bin() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("PUBSUB_EMULATOR_BIN").map(PathBuf::from),
        Some(PathBuf::from(
            "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
        )),
    ];
    candidates.into_iter().flatten().find(|p| p.exists())
}

/// What to do when [`emulator_bin`] finds nothing.
pub const NOT_INSTALLED: &str = "Google's Pub/Sub emulator is not installed: install the Debian package google-cloud-cli-pubsub-emulator (from Google's apt repository, packages.cloud.google.com) or set PUBSUB_EMULATOR_BIN to its bin/cloud-pubsub-emulator";

/// A running emulator; stopped (its whole process group) on drop.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    pub host: String,
}

/// One pulled message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    pub data: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
    pub ordering_key: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

impl Emulator {
    pub fn start(bin: &std::path::Path) -> Emulator {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let child = Command::new(bin)
            .args(["--host=127.0.0.1".to_string(), format!("--port={port}")])
            .env("JAVA_OPTS", "-Xmx256m")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the Pub/Sub emulator");
        let host = format!("127.0.0.1:{port}");
        let emulator = Emulator { child, host };
        let ready = wait_until(Duration::from_secs(60), || {
            emulator.get("/").is_some_and(|b| b.trim() == "Ok")
        });
        assert!(
            ready,
            "the Pub/Sub emulator did not answer on {} within 60 s",
            emulator.host
        );
        emulator
    }

    fn curl(&self, method: &str, path: &str, body: Option<&str>) -> Option<String> {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "--max-time",
            "30",
            "-X",
            method,
            &format!("http://{}{path}", self.host),
        ]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "-d", b]);
        }
        let out = cmd.output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn get(&self, path: &str) -> Option<String> {
        self.curl("GET", path, None)
    }

    /// Creates a topic (names ≥ 3 characters). Without a subscription the emulator keeps
    /// nothing it receives.
    pub fn create_topic(&self, project: &str, topic: &str) {
        let t = self
            .curl(
                "PUT",
                &format!("/v1/projects/{project}/topics/{topic}"),
                None,
            )
            .expect("create topic");
        assert!(t.contains("\"name\""), "create topic: {t}");
    }

    /// Creates a topic and a subscription on it (names ≥ 3 characters).
    pub fn create_topic_and_subscription(&self, project: &str, topic: &str, subscription: &str) {
        self.create_topic(project, topic);
        let body = format!(
            "{{\"topic\":\"projects/{project}/topics/{topic}\",\"ackDeadlineSeconds\":600}}"
        );
        let s = self
            .curl(
                "PUT",
                &format!("/v1/projects/{project}/subscriptions/{subscription}"),
                Some(&body),
            )
            .expect("create subscription");
        assert!(s.contains("\"name\""), "create subscription: {s}");
    }

    /// Pulls and acknowledges up to 1000 messages (REST `:pull`, much faster on the
    /// emulator than streaming pull).
    pub fn pull(&self, project: &str, subscription: &str) -> Vec<Pulled> {
        let path = format!("/v1/projects/{project}/subscriptions/{subscription}");
        let Some(body) = self.curl(
            "POST",
            &format!("{path}:pull"),
            Some("{\"maxMessages\":1000,\"returnImmediately\":true}"),
        ) else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("pull answer is not JSON ({e}): {body}"));
        let mut out = Vec::new();
        let mut ack_ids = Vec::new();
        for m in v["receivedMessages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            ack_ids.push(m["ackId"].clone());
            let msg = &m["message"];
            let data = base64::engine::general_purpose::STANDARD
                .decode(msg["data"].as_str().unwrap_or_default())
                .expect("base64 data");
            let attributes = msg["attributes"]
                .as_object()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let ordering_key = msg["orderingKey"].as_str().unwrap_or_default().to_string();
            out.push(Pulled {
                data,
                attributes,
                ordering_key,
            });
        }
        if !ack_ids.is_empty() {
            let body = serde_json::json!({ "ackIds": ack_ids }).to_string();
            self.curl("POST", &format!("{path}:acknowledge"), Some(&body))
                .expect("acknowledge");
        }
        out
    }

    /// Pulls until `expected` messages have arrived or nothing more comes for 3 s.
    pub fn pull_all(
        &self,
        project: &str,
        subscription: &str,
        expected: usize,
        timeout: Duration,
    ) -> Vec<Pulled> {
        let mut all = Vec::new();
        let end = std::time::Instant::now() + timeout;
        let mut quiet_since = std::time::Instant::now();
        while std::time::Instant::now() < end {
            let got = self.pull(project, subscription);
            if got.is_empty() {
                if all.len() >= expected && quiet_since.elapsed() > Duration::from_secs(3) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            } else {
                quiet_since = std::time::Instant::now();
                all.extend(got);
            }
        }
        all
    }

    /// Sends a signal to the emulator's whole process group (the JVM included).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([
                &format!("-{signal}"),
                "--",
                &format!("-{}", self.child.id()),
            ])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} the emulator's group");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}
