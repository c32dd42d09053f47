//! Distributed mode: several `ferry distributed` workers (separate processes, REST API on
//! free ports) on one mock cluster share connectors through the config topic, in Kafka
//! Connect's format, and share each connector's partitions through its consumer group.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const CONFIGS: &str = "ferry-configs";
const STATUS: &str = "ferry-status";

/// The cluster's internal topics: the mock cluster does not serve CreateTopics (a real one
/// gets them from ferry).
fn internal_topics(broker: &mut Broker) {
    broker.create_topic(CONFIGS, 1);
    broker.create_topic(STATUS, 5);
}

/// A mock cluster with the internal topics, a directory for the workers and for the
/// directory sink's output, and the workers running on it, in the order the test keeps them.
/// Fields drop in order: the workers stop before their directory and the broker go.
struct Cluster {
    workers: Vec<Worker>,
    /// Records read over their lifetimes by the workers no longer running: those
    /// [`Cluster::stop`] stopped, and any a test killed and counted.
    stopped_read: f64,
    /// The WARN and ERROR lines of the workers [`Cluster::stop`] stopped.
    stopped_warnings: String,
    /// Keys every worker's file gets on top of the cluster keys.
    extra: Vec<(String, String)>,
    /// How many workers were started: the next one is worker `started + 1`.
    started: usize,
    out: PathBuf,
    root: tempfile::TempDir,
    broker: Broker,
}

impl Cluster {
    /// One broker (whose first assignment of a group waits `rebalance_delay_ms` for members
    /// to join) with the internal topics and `topics` (name, partitions), and no worker yet;
    /// every worker started on it gets `extra` in its file.
    fn new(rebalance_delay_ms: u64, topics: &[(&str, i32)], extra: &[(&str, &str)]) -> Cluster {
        Cluster::on(Broker::start(1, rebalance_delay_ms), topics, extra)
    }

    /// [`Cluster::new`] on a broker the test has set up.
    fn on(mut broker: Broker, topics: &[(&str, i32)], extra: &[(&str, &str)]) -> Cluster {
        for (name, partitions) in topics {
            broker.create_topic(name, *partitions);
        }
        internal_topics(&mut broker);
        let root = tempfile::tempdir().unwrap();
        Cluster {
            workers: Vec::new(),
            stopped_read: 0.0,
            stopped_warnings: String::new(),
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            started: 0,
            out: root.path().join("out"),
            root,
            broker,
        }
    }

    /// [`Cluster::new`] with `n` workers, started one after the other.
    fn start(
        rebalance_delay_ms: u64,
        topics: &[(&str, i32)],
        n: usize,
        extra: &[(&str, &str)],
    ) -> Cluster {
        let mut cluster = Cluster::new(rebalance_delay_ms, topics, extra);
        for _ in 0..n {
            cluster.add();
        }
        cluster
    }

    fn bootstrap(&self) -> &str {
        &self.broker.bootstrap
    }

    /// Starts the next worker on a free port, last in `workers`.
    fn add(&mut self) {
        self.add_with(&[]);
    }

    /// [`Cluster::add`], with `more` keys in this worker's file.
    fn add_with(&mut self, more: &[(&str, &str)]) {
        self.start_at(self.workers.len(), free_port(), more);
    }

    /// Starts the next worker on REST port `port`, at index `at` of `workers`.
    fn start_at(&mut self, at: usize, port: u16, more: &[(&str, &str)]) {
        self.started += 1;
        let mut extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        extra.extend_from_slice(more);
        let w = Worker::start_on(
            self.root.path(),
            self.started,
            port,
            self.bootstrap(),
            &extra,
        );
        self.workers.insert(at, w);
    }

    /// Starts `n` workers at the same time (their slot claims race), last in `workers`.
    fn add_together(&mut self, n: usize) {
        let (dir, bootstrap) = (self.root.path(), self.broker.bootstrap.as_str());
        let first = self.started + 1;
        let extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let extra = extra.as_slice();
        let started: Vec<Worker> = std::thread::scope(|s| {
            let starting: Vec<_> = (first..first + n)
                .map(|n| s.spawn(move || Worker::start(dir, n, bootstrap, extra)))
                .collect();
            starting.into_iter().map(|h| h.join().unwrap()).collect()
        });
        self.started += n;
        self.workers.extend(started);
    }

    /// Stops worker `i` cleanly (see [`Worker::stop`]) and takes it out of `workers`, after
    /// adding what it read over its lifetime to `stopped_read`, then its WARN and ERROR
    /// lines to `stopped_warnings`.
    fn stop(&mut self, i: usize) -> Worker {
        let mut old = self.workers.remove(i);
        self.stopped_read += old.records_read();
        old.stop();
        self.stopped_warnings.push_str(&old.warnings());
        old
    }

    /// Records read over their lifetimes by every worker, stopped or running.
    fn read_over_lifetimes(&self) -> f64 {
        self.stopped_read + self.workers.iter().map(Worker::records_read).sum::<f64>()
    }

    /// The WARN and ERROR lines of every worker, stopped or running.
    fn warnings(&self) -> String {
        let mut warnings = self.stopped_warnings.clone();
        for w in &self.workers {
            warnings.push_str(&w.warnings());
        }
        warnings
    }

    /// Creates `connector` through the first worker, which must answer 201.
    fn post(&self, connector: &Value) {
        let (status, body) = self.workers[0].call("POST", "/connectors", Some(connector));
        assert_eq!(status, 201, "{body}");
    }

    /// Creates directory sink `name` of `topic` (into `out`) through the first worker.
    fn create(&self, name: &str, topic: &str) {
        self.post(&directory_sink(name, topic, &self.out));
    }

    /// `per_partition` lines into each of `partitions` partitions of `topic`, numbered from
    /// `from`.
    fn produce(&self, topic: &str, partitions: i32, per_partition: usize, from: usize) {
        produce(self.bootstrap(), topic, partitions, per_partition, from);
    }

    /// See [`delivered`].
    fn delivered(&self, topic: &str) -> BTreeSet<(i32, i64)> {
        delivered(&self.out, topic)
    }
}

/// One worker of the cluster.
struct Worker {
    ferry: Ferry,
    base: String,
}

impl Worker {
    /// Connect's `worker_id`: the advertised `host:port`.
    fn id(&self) -> &str {
        self.base.strip_prefix("http://").unwrap()
    }

    fn start(root: &Path, n: usize, bootstrap: &str, extra: &[(&str, &str)]) -> Worker {
        Worker::start_on(root, n, free_port(), bootstrap, extra)
    }

    /// A worker on a given REST port: a restarted worker keeps its port, and with it the
    /// `group.instance.id`s of its static members.
    fn start_on(
        root: &Path,
        n: usize,
        port: u16,
        bootstrap: &str,
        extra: &[(&str, &str)],
    ) -> Worker {
        let dir = root.join(format!("worker{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let listeners = format!("http://127.0.0.1:{port}");
        let mut props = vec![
            ("listeners", listeners.as_str()),
            ("ferry.rest.enable", "true"),
            ("group.id", "ferry-cluster"),
            ("config.storage.topic", CONFIGS),
            ("status.storage.topic", STATUS),
            ("offset.storage.topic", "ferry-offsets"),
        ];
        props.retain(|(k, _)| extra.iter().all(|(e, _)| e != k));
        props.extend_from_slice(extra);
        let worker = worker_props(&dir, bootstrap, &props);
        let ferry = Ferry::spawn(
            &ferry_bin(),
            &["distributed", worker.to_str().unwrap()],
            &dir,
            &format!("worker{n}"),
        );
        let w = Worker {
            ferry,
            base: listeners,
        };
        let up = wait_until(WAIT, || w.call("GET", "/health", None).0 == 200);
        assert!(up, "worker {n} did not come up; log:\n{}", w.ferry.log());
        w
    }

    /// Whether this worker's consumer has been assigned partitions.
    fn holds_partitions(&self) -> bool {
        self.ferry
            .log()
            .lines()
            .any(|l| l.contains("Partitions assigned.") && !l.contains("partitions= "))
    }

    /// The `group.instance.id` this worker's consumer of `connector` joined with, from its
    /// log line.
    fn instance_id(&self, connector: &str) -> Option<String> {
        self.ferry
            .log()
            .lines()
            .filter(|l| l.contains(&format!("connector={connector}")))
            .find_map(|l| {
                let (_, rest) = l.split_once("group_instance_id=")?;
                Some(rest.split_whitespace().next()?.to_string())
            })
    }

    /// SIGTERM, and the clean exit it must make within a minute.
    fn stop(&mut self) {
        self.ferry.signal("TERM");
        assert!(
            self.ferry.wait(Duration::from_secs(60)).success(),
            "{}",
            self.ferry.log()
        );
    }

    /// This worker's WARN and ERROR lines, each ending in a newline.
    fn warnings(&self) -> String {
        self.ferry
            .log()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let text = body.map(|b| b.to_string());
        let (status, out) = curl(
            method,
            &format!("{}{path}", self.base),
            &["Accept: application/json"],
            text.as_deref().map(|t| ("application/json", t.as_bytes())),
            30,
        );
        let value = serde_json::from_str(&out).unwrap_or(Value::String(out));
        (status, value)
    }

    fn state(&self, name: &str) -> String {
        let (_, s) = self.call("GET", &format!("/connectors/{name}/status"), None);
        s["connector"]["state"].as_str().unwrap_or("?").to_string()
    }

    /// Records this worker's tasks have read, from its own /metrics page.
    fn records_read(&self) -> f64 {
        let (_, page) = self.call("GET", "/metrics", None);
        page.as_str()
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("kafka_connect_sink_task_sink_record_read_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

fn directory_sink(name: &str, topic: &str, out: &Path) -> Value {
    json!({
        "name": name,
        "config": {
            "connector.class": "directory",
            "topics": topic,
            "directory.path": out.to_str().unwrap(),
            "tasks.max": "2",
        }
    })
}

/// `topic/partition/offset` of every file the directory sink wrote.
fn delivered(out: &Path, topic: &str) -> BTreeSet<(i32, i64)> {
    let mut all = BTreeSet::new();
    let Ok(parts) = std::fs::read_dir(out.join(topic)) else {
        return all;
    };
    for p in parts.flatten() {
        let partition: i32 = p.file_name().to_string_lossy().parse().unwrap();
        for f in std::fs::read_dir(p.path()).unwrap().flatten() {
            if let Ok(offset) = f.file_name().to_string_lossy().parse::<i64>() {
                all.insert((partition, offset));
            }
        }
    }
    all
}

fn produce(bootstrap: &str, topic: &str, partitions: i32, per_partition: usize, from: usize) {
    for p in 0..partitions {
        let lines: Vec<String> = (from..from + per_partition)
            .map(|i| format!("p{p}-{i}"))
            .collect();
        produce_lines(bootstrap, topic, p, &lines);
    }
}

fn expected(partitions: i32, per_partition: i64) -> BTreeSet<(i32, i64)> {
    (0..partitions)
        .flat_map(|p| (0..per_partition).map(move |o| (p, o)))
        .collect()
}

#[test]
fn three_workers_share_a_connector_created_on_one_and_survive_a_kill() {
    // The group's first assignment waits for members to join (as a broker's
    // group.initial.rebalance.delay.ms does), so that all three get a share.
    let mut c = Cluster::start(3000, &[("alerts", 6)], 3, &[]);
    c.produce("alerts", 6, 100, 0);

    c.create("shared", "alerts");
    // Every worker runs it, having read the record from the config topic.
    for (i, w) in c.workers.iter().enumerate() {
        assert!(
            wait_until(WAIT, || w.state("shared") == "RUNNING"),
            "worker {} does not run the connector; log:\n{}",
            i + 1,
            w.ferry.log()
        );
    }
    assert!(
        wait_until(WAIT, || c.delivered("alerts") == expected(6, 100)),
        "not every record delivered: {} of 600",
        c.delivered("alerts").len()
    );
    // The partitions were shared: every worker read some of them.
    let read: Vec<f64> = c.workers.iter().map(Worker::records_read).collect();
    assert!(
        read.iter().all(|&r| r > 0.0),
        "a worker read nothing (records read per worker: {read:?})"
    );

    // kill -9 the third worker; what it held moves to the others, nothing is lost.
    let third = c.workers.pop().unwrap();
    third.ferry.signal("KILL");
    c.produce("alerts", 6, 100, 100);
    assert!(
        wait_until(WAIT, || c.delivered("alerts") == expected(6, 200)),
        "records lost after kill -9 of a worker: {} of 1200 delivered",
        c.delivered("alerts").len()
    );
    drop(third);
}

#[test]
fn changes_on_one_worker_take_effect_on_all_and_survive_a_cluster_restart() {
    let mut c = Cluster::start(0, &[("lines", 2)], 2, &[]);
    c.create("c", "lines");
    for w in &c.workers {
        assert!(wait_until(WAIT, || w.state("c") == "RUNNING"));
    }
    // Pause through the second worker: both pause.
    let (status, _) = c.workers[1].call("PUT", "/connectors/c/pause", None);
    assert_eq!(status, 202);
    for w in &c.workers {
        assert!(
            wait_until(WAIT, || w.state("c") == "PAUSED"),
            "{}",
            w.ferry.log()
        );
    }
    c.produce("lines", 2, 20, 0);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        c.delivered("lines").is_empty(),
        "records delivered while paused"
    );
    let (status, _) = c.workers[1].call("PUT", "/connectors/c/resume", None);
    assert_eq!(status, 202);
    assert!(wait_until(WAIT, || c.delivered("lines") == expected(2, 20)));

    // The whole cluster stops and starts again: the connector comes back from the topic.
    for w in &c.workers {
        w.ferry.signal("TERM");
    }
    for w in &mut c.workers {
        w.ferry.wait(Duration::from_secs(30));
    }
    c.workers.clear();
    c.add();
    c.add();
    let (_, names) = c.workers[1].call("GET", "/connectors", None);
    assert_eq!(names, json!(["c"]));
    c.produce("lines", 2, 20, 20);
    assert!(wait_until(WAIT, || c.delivered("lines") == expected(2, 40)));

    // Delete through one worker: gone everywhere.
    let (status, _) = c.workers[0].call("DELETE", "/connectors/c", None);
    assert_eq!(status, 204);
    for w in &c.workers {
        assert!(wait_until(WAIT, || w.call("GET", "/connectors", None).1 == json!([])));
    }
}

/// A config topic as a stopped Java Connect cluster leaves it, written with kcat: ferry runs
/// the connector it has, shows the one it has not as FAILED with the reason, and skips a
/// record that is not Connect's shape, naming its offset.
#[test]
fn a_config_topic_written_by_kafka_connect_is_picked_up() {
    let mut c = Cluster::new(0, &[("alerts", 1)], &[]);
    let records = [
        format!(
            r#"connector-ztf|{{"properties":{{"connector.class":"io.ferry.connect.directory.DirectorySinkConnector","name":"ztf","topics":"alerts","directory.path":"{}","tasks.max":"1"}}}}"#,
            c.out.display()
        ),
        r#"task-ztf-0|{"properties":{"task.class":"x"}}"#.to_string(),
        r#"commit-ztf|{"tasks":1}"#.to_string(),
        r#"connector-jdbc|{"properties":{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","name":"jdbc","topics":"alerts"}}"#.to_string(),
        "connector-broken|{not json".to_string(),
        r#"target-state-ztf|{"state":"STARTED","state.v2":"STARTED"}"#.to_string(),
    ];
    let mut cmd = kcat();
    cmd.args(["-b", c.bootstrap(), "-K", "|"]);
    feed_kcat(cmd, CONFIGS, 0, &records).unwrap();
    produce_lines(c.bootstrap(), "alerts", 0, &numbered(0, 10));

    c.add();
    let w = &c.workers[0];
    let (_, names) = w.call("GET", "/connectors", None);
    assert_eq!(names, json!(["jdbc", "ztf"]));
    assert!(wait_until(WAIT, || c.delivered("alerts").len() == 10));
    let (_, status) = w.call("GET", "/connectors/jdbc/status", None);
    assert_eq!(status["connector"]["state"], "FAILED", "{status}");
    let trace = status["connector"]["trace"].as_str().unwrap();
    assert!(
        trace.contains("io.confluent.connect.jdbc.JdbcSinkConnector"),
        "{trace}"
    );
    let log = w.ferry.log();
    assert!(
        log.contains("Config topic record skipped") && log.contains("offset=4"),
        "{log}"
    );
}

/// `PUT /admin/loggers/…?scope=cluster` on one worker sets the level on every worker through
/// a `logger-cluster-<namespace>` record in the config topic, Kafka Connect's own (KIP-976):
/// kcat reads ferry's record, and a record kcat writes as a Java worker would is applied
/// too. A worker started afterwards leaves both alone, as Connect's do: levels written
/// before a worker read the topic to its end are history.
#[test]
fn a_cluster_scoped_log_level_reaches_every_worker_through_the_config_topic() {
    let mut c = Cluster::start(0, &[], 2, &[]);
    let level = |w: &Worker, namespace: &str| {
        let (_, body) = w.call("GET", &format!("/admin/loggers/{namespace}"), None);
        body["level"].as_str().unwrap_or("none").to_string()
    };
    let (code, body) = c.workers[0].call(
        "PUT",
        "/admin/loggers/ferry::herder?scope=cluster",
        Some(&json!({"level": "debug"})),
    );
    assert_eq!((code, body), (204, json!("")), "204, no body");
    // Answered once read back: the worker asked has applied it already.
    assert_eq!(level(&c.workers[0], "ferry::herder"), "DEBUG");
    assert!(
        wait_until(WAIT, || level(&c.workers[1], "ferry::herder") == "DEBUG"),
        "worker 2 did not apply the cluster's level; log:\n{}",
        c.workers[1].ferry.log()
    );
    assert_eq!(
        latest_records(c.bootstrap(), CONFIGS).get("logger-cluster-ferry::herder"),
        Some(&Some(r#"{"level":"DEBUG"}"#.to_string()))
    );
    let mut cmd = kcat();
    cmd.args(["-b", c.bootstrap(), "-K", "|"]);
    feed_kcat(
        cmd,
        CONFIGS,
        0,
        &[r#"logger-cluster-ferry::rest|{"level":"WARN"}"#.to_string()],
    )
    .unwrap();
    for (i, w) in c.workers.iter().enumerate() {
        assert!(
            wait_until(WAIT, || level(w, "ferry::rest") == "WARN"),
            "worker {} did not apply the level kcat wrote; log:\n{}",
            i + 1,
            w.ferry.log()
        );
    }
    c.add();
    let late = &c.workers[2];
    assert_eq!(late.call("GET", "/connectors", None).0, 200);
    assert_ne!(level(late, "ferry::herder"), "DEBUG");
    assert_ne!(level(late, "ferry::rest"), "WARN");
    assert!(
        !late.ferry.log().contains("Config topic record skipped"),
        "{}",
        late.ferry.log()
    );
}

/// A worker file without the keys distributed mode needs: one line, exit 1.
#[test]
fn a_worker_file_without_the_cluster_keys_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let worker = worker_props(dir.path(), "127.0.0.1:9", &[("group.id", "cluster")]);
    let mut ferry = Ferry::spawn(
        &ferry_bin(),
        &["distributed", worker.to_str().unwrap()],
        dir.path(),
        "worker",
    );
    let status = ferry.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    let errors: Vec<String> = strip_ansi(&ferry.log())
        .lines()
        .filter(|l| l.contains("error"))
        .map(str::to_string)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("missing required key `config.storage.topic`"),
        "{errors:?}"
    );
}

/// A revoke waits for the tasks' flush up to the handover bound (nine tenths of the
/// consumer's `max.poll.interval.ms`), not `offset.flush.timeout.ms`, and commits what they
/// flushed, as Kafka Connect's synchronous commit on revoke does. The first worker's sink
/// cannot write for 3 s (its output directory is moved away, a retriable error) while a
/// second worker joins: the revoke's flush waits behind the batch being retried, far longer
/// than the 500 ms flush timeout. With no interval commit in the test's time, the
/// partitions the second worker takes over must resume where the first delivered up to:
/// nothing is read twice.
#[test]
fn partitions_moved_to_a_joining_worker_resume_after_a_flush_slower_than_the_flush_timeout() {
    let slow = [
        ("offset.flush.timeout.ms", "500"),
        ("offset.flush.interval.ms", "600000"),
    ];
    let mut c = Cluster::start(3000, &[("handover", 6)], 1, &slow);
    let mut connector = directory_sink("handover", "handover", &c.out);
    connector["config"]["errors.retry.delay.max.ms"] = json!("200");
    c.post(&connector);
    c.produce("handover", 6, 50, 0);
    assert!(
        wait_until(WAIT, || c.delivered("handover") == expected(6, 50)),
        "{} of 300 delivered by the first worker; log:\n{}",
        c.delivered("handover").len(),
        c.workers[0].ferry.log()
    );
    // The sink's outage: its topic directory is gone, so every write fails (retriably).
    let moved = c.root.path().join("out-moved");
    std::fs::rename(c.out.join("handover"), &moved).unwrap();
    c.produce("handover", 6, 50, 50);
    assert!(
        wait_until(WAIT, || c.workers[0]
            .ferry
            .log()
            .contains("Sink could not take the batch; retrying it.")),
        "the sink did not fail; log:\n{}",
        c.workers[0].ferry.log()
    );
    c.add();
    let (first, second) = (&c.workers[0], &c.workers[1]);
    // The group's first assignment to the second worker is when the first starts revoking
    // (cooperative-sticky: only what moves).
    assert!(
        wait_until(WAIT, || second.ferry.log().contains("Partitions assigned.")),
        "the second worker did not join; log:\n{}",
        second.ferry.log()
    );
    // The outage outlasts the flush timeout six times over, then ends.
    std::thread::sleep(Duration::from_secs(3));
    std::fs::rename(&moved, c.out.join("handover")).unwrap();
    assert!(
        wait_until(WAIT, || c.delivered("handover") == expected(6, 100)),
        "{} of 600 delivered after the outage; log:\n{}",
        c.delivered("handover").len(),
        first.ferry.log()
    );
    c.produce("handover", 6, 50, 100);
    assert!(
        wait_until(WAIT, || c.delivered("handover") == expected(6, 150)),
        "{} of 900 delivered after the join",
        c.delivered("handover").len()
    );
    let (read_first, read_second) = (first.records_read(), second.records_read());
    assert!(
        read_second > 0.0,
        "the second worker read nothing: no partition moved"
    );
    assert_eq!(
        read_first + read_second,
        900.0,
        "records read by the two workers ({read_first} + {read_second}) vs 900 produced: the moved partitions were read again; first worker's log:\n{}",
        first.ferry.log()
    );
}

/// A rolling restart (SIGTERM, start a new worker, next): every record delivered, and none
/// read twice — each stopping worker drains and commits before its partitions move, so the
/// next owner resumes exactly where it stopped. Reads are counted from each worker's own
/// `/metrics` just before it stops, and at the end.
#[test]
fn a_rolling_restart_loses_nothing_and_reads_nothing_twice() {
    // A revoke waits for the flush up to nine tenths of max.poll.interval.ms, whatever
    // offset.flush.timeout.ms says (the default here); a stop waits up to nine tenths of
    // task.shutdown.graceful.timeout.ms, which bounds the whole stop. The directory sink's
    // flush syncs the file system, which a machine busy with builds can hold for seconds
    // (CI once redelivered 100 records when both were 5 s): the stop gets room here.
    let patient = [("task.shutdown.graceful.timeout.ms", "30000")];
    let mut c = Cluster::start(3000, &[("roll", 6)], 3, &patient);
    c.create("roll", "roll");
    let mut produced = 0;
    c.produce("roll", 6, 50, 0);
    produced += 50;
    assert!(wait_until(WAIT, || c.delivered("roll") == expected(6, produced as i64)));
    // Each stopped worker's reads and warnings are kept (the warnings of every worker are
    // shown if anything was read twice).
    for next in 4..=6 {
        c.stop(0);
        c.add();
        c.produce("roll", 6, 50, produced);
        produced += 50;
        assert!(
            wait_until(WAIT, || c.delivered("roll") == expected(6, produced as i64)),
            "after restarting into worker {next}: {} of {} delivered",
            c.delivered("roll").len(),
            6 * produced
        );
    }
    let read = c.read_over_lifetimes();
    let warnings = c.warnings();
    assert_eq!(
        read,
        (6 * produced) as f64,
        "records read over all workers' lifetimes vs produced: duplicates; warnings:\n{warnings}"
    );
}

/// `ferry.static.membership=true`: each worker's consumer of a connector joins as a static
/// member, `group.instance.id` = `<host>-<REST port>-<connector>` (the machine's host name
/// for a loopback REST host), the same after a restart on the same port.
///
/// What the mock cluster can show: librdkafka got the id — a static member sends no
/// LeaveGroup when it closes (KIP-345; librdkafka's `rd_kafka_cgrp_leave_maybe`), so a
/// stopped worker's partitions stay with it until its session times out instead of moving
/// at once — and a rolling restart with it on loses nothing and reads nothing twice. What
/// it cannot show: that a worker back within the session timeout gets its partitions with
/// no rebalance at all; the mock coordinator finds members by member id only
/// (`rd_kafka_mock_cgrp_classic_member_add` → `rd_kafka_mock_cgrp_classic_member_find`),
/// so the restarted member is a new one to it.
#[test]
fn static_members_keep_their_partitions_until_the_session_ends_and_roll_without_loss() {
    const SESSION_MS: u64 = 10_000;
    let session = SESSION_MS.to_string();
    let extra = [
        ("ferry.static.membership", "true"),
        ("consumer.session.timeout.ms", session.as_str()),
        // Room for the directory sink's flush on a busy machine (see the rolling test).
        ("offset.flush.timeout.ms", "30000"),
        ("task.shutdown.graceful.timeout.ms", "30000"),
    ];
    let mut c = Cluster::new(3000, &[("static", 4)], &extra);
    let ports = [free_port(), free_port()];
    for (i, port) in ports.into_iter().enumerate() {
        c.start_at(i, port, &[]);
    }
    c.create("static", "static");
    c.produce("static", 4, 20, 0);
    let mut produced = 20;
    assert!(wait_until(WAIT, || c.delivered("static") == expected(4, produced)));
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let ids: Vec<String> = c
        .workers
        .iter()
        .map(|w| w.instance_id("static").expect("a group_instance_id line"))
        .collect();
    for (id, port) in ids.iter().zip(ports) {
        assert_eq!(id, &format!("{}-{port}-static", hostname.trim()));
    }
    let read: Vec<f64> = c.workers.iter().map(Worker::records_read).collect();
    assert!(
        read.iter().all(|&r| r > 0.0),
        "both workers hold partitions (records read per worker: {read:?})"
    );
    // Stop each worker in turn and start it again on its port.
    for i in [1, 0] {
        c.stop(i);
        let stopped = std::time::Instant::now();
        c.produce("static", 4, 20, produced as usize);
        produced += 20;
        if i == 1 {
            // No LeaveGroup: the coordinator keeps the stopped member until its session
            // ends, then rebalances. The mock's rebalance itself waits up to the session
            // timeout less 1 s for members to rejoin (`rd_kafka_mock_cgrp_classic_rebalance`),
            // so a member that leaves has its partitions moved after ~9 s here, a static
            // one after ~19 s (measured: 9.0 s with the key off, 18.8 s with it on).
            assert!(wait_until(WAIT, || c.delivered("static") == expected(4, produced)));
            let moved = stopped.elapsed();
            assert!(
                moved >= Duration::from_millis(SESSION_MS + 4000),
                "the stopped worker's partitions moved after {moved:?}, before its session of {SESSION_MS} ms ended: it left the group (a LeaveGroup), so it was no static member"
            );
        }
        c.start_at(i, ports[i], &[]);
        let again = &c.workers[i];
        assert!(wait_until(WAIT, || again.instance_id("static").is_some()));
        assert_eq!(
            again.instance_id("static").unwrap(),
            ids[i],
            "same id after a restart"
        );
        // The next worker stops once this one holds partitions again, as an operator's
        // rolling restart waits for each worker to be back: a worker stopped while its
        // group is mid-rebalance cannot commit (REBALANCE_IN_PROGRESS), and its successor
        // re-reads what it delivered since its last commit (at-least-once).
        assert!(
            wait_until(WAIT, || again.holds_partitions()),
            "{}",
            again.ferry.log()
        );
        assert!(
            wait_until(WAIT, || c.delivered("static") == expected(4, produced)),
            "after restarting worker {}: {} of {} delivered",
            i + 1,
            c.delivered("static").len(),
            4 * produced
        );
    }
    let total_read = c.read_over_lifetimes();
    let warnings = &c.stopped_warnings;
    assert_eq!(
        total_read,
        (4 * produced) as f64,
        "records read over all workers' lifetimes vs produced: duplicates; warnings:\n{warnings}"
    );
}

/// The partitions a worker's consumer holds now, from its `Partitions assigned.` and
/// `Partitions revoked.` lines (KIP-848 assigns incrementally: a share can come in steps).
fn held(w: &Worker) -> BTreeSet<String> {
    let mut held = BTreeSet::new();
    for line in w.ferry.log().lines() {
        let Some((_, rest)) = line.split_once(" partitions=") else {
            continue;
        };
        // An empty list is written as `partitions= tasks=0`.
        let parts = rest.split(' ').next().unwrap_or_default();
        let parts = parts.split(',').filter(|p| !p.is_empty()).map(String::from);
        if line.contains("Partitions assigned.") {
            held.extend(parts);
        } else if line.contains("Partitions revoked.") {
            for p in parts {
                held.remove(&p);
            }
        }
    }
    held
}

/// How many times a worker's consumer was assigned or revoked partitions.
fn moves(w: &Worker) -> usize {
    w.ferry
        .log()
        .lines()
        .filter(|l| l.contains("Partitions assigned.") || l.contains("Partitions revoked."))
        .count()
}

/// KIP-848's group protocol (`consumer.group.protocol=consumer`): the broker assigns the
/// partitions and owns the session (the mock's `group.consumer.session.timeout.ms` and
/// heartbeat interval, set to 6 s and 0.5 s here). The mock's KIP-848 coordinator, unlike
/// its classic one, knows static members by `group.instance.id`: a member that leaves as
/// static keeps its assignment until its session ends and gets it back when it returns.
/// So the mock can show here what it cannot with the classic protocol (see the test
/// above): a static worker restarted within the session moves no partition on any worker,
/// and gets its own partitions back; and a killed worker's partitions move once its
/// session ends. `benches/distributed.rs` measures how long that takes.
#[test]
fn with_the_consumer_group_protocol_a_static_restart_moves_nothing_and_a_kill_moves_the_rest() {
    let mut broker = Broker::start(1, 0);
    broker.command("consumer-group 6000 500").unwrap();
    let extra = [
        // The broker owns these under KIP-848 (ferry refuses them with one line).
        ("!consumer.session.timeout.ms", ""),
        ("!consumer.heartbeat.interval.ms", ""),
        ("consumer.group.protocol", "consumer"),
        ("ferry.static.membership", "true"),
        ("task.shutdown.graceful.timeout.ms", "30000"),
    ];
    let mut c = Cluster::on(broker, &[("kip848", 6)], &extra);
    let ports = [free_port(), free_port(), free_port()];
    for (i, port) in ports.into_iter().enumerate() {
        c.start_at(i, port, &[]);
    }
    c.create("kip848", "kip848");
    // The broker spreads the partitions over the three workers, each partition to one
    // (in steps: a member joining later takes partitions from the others).
    let spread = |workers: &[Worker]| {
        let shares: Vec<BTreeSet<String>> = workers.iter().map(held).collect();
        shares.iter().all(|s| !s.is_empty()) && shares.iter().map(BTreeSet::len).sum::<usize>() == 6
    };
    assert!(
        wait_until(WAIT, || spread(&c.workers)),
        "every worker holds partitions, each partition held once: {:?}",
        c.workers.iter().map(held).collect::<Vec<_>>()
    );
    let shares: Vec<BTreeSet<String>> = c.workers.iter().map(held).collect();
    c.produce("kip848", 6, 50, 0);
    let mut produced = 50;
    assert!(wait_until(WAIT, || c.delivered("kip848") == expected(6, produced)));
    assert_eq!(
        c.workers.iter().map(held).collect::<Vec<_>>(),
        shares,
        "the spread was settled"
    );
    // Everything delivered is committed before anything stops, so that a redelivery
    // below can only be a defect.
    let group = "connect-kip848";
    assert!(
        wait_until(WAIT, || committed(c.bootstrap(), group, "kip848", 6)
            == vec![produced; 6]),
        "committed: {:?}",
        committed(c.bootstrap(), group, "kip848", 6)
    );

    // A rolling restart: each worker in turn stops and starts again on its port, the
    // next one once this one is back.
    for i in 0..3 {
        let before: Vec<usize> = c.workers.iter().map(moves).collect();
        c.stop(i);
        c.produce("kip848", 6, 50, produced as usize);
        produced += 50;
        c.start_at(i, ports[i], &[]);
        let again = &c.workers[i];
        assert!(
            wait_until(WAIT, || held(again) == shares[i]),
            "the restarted static member got {:?}, it held {:?}; log:\n{}",
            held(again),
            shares[i],
            again.ferry.log()
        );
        assert!(
            wait_until(WAIT, || c.delivered("kip848") == expected(6, produced)),
            "after restarting worker {}: {} of {} delivered",
            i + 1,
            c.delivered("kip848").len(),
            6 * produced
        );
        for j in (0..3).filter(|&j| j != i) {
            assert_eq!(
                moves(&c.workers[j]),
                before[j],
                "worker {}'s partitions moved during worker {}'s restart as a static member; log:\n{}",
                j + 1,
                i + 1,
                c.workers[j].ferry.log()
            );
        }
        assert!(
            wait_until(WAIT, || committed(c.bootstrap(), group, "kip848", 6)
                == vec![produced; 6]),
            "committed: {:?}",
            committed(c.bootstrap(), group, "kip848", 6)
        );
    }

    // kill -9 worker 3: once its session ends the broker gives its partitions to the
    // others; nothing is lost, and nothing is read twice since everything it delivered was
    // committed.
    let third = c.workers.pop().unwrap();
    c.stopped_read += third.records_read();
    third.ferry.signal("KILL");
    c.produce("kip848", 6, 50, produced as usize);
    produced += 50;
    assert!(
        wait_until(WAIT, || c.delivered("kip848") == expected(6, produced)),
        "records lost after kill -9 of a worker: {} of {} delivered",
        c.delivered("kip848").len(),
        6 * produced
    );
    // The broker may still be balancing what it moved (a partition revoked from one
    // worker reaches the other at its next heartbeat).
    let union = |workers: &[Worker]| workers.iter().flat_map(held).collect::<BTreeSet<_>>();
    assert!(
        wait_until(WAIT, || union(&c.workers).len() == 6),
        "the two left hold every partition: {:?}; logs:\n{}\n{}",
        union(&c.workers),
        c.workers[0].ferry.log(),
        c.workers[1].ferry.log()
    );
    let read = c.read_over_lifetimes();
    assert_eq!(
        read,
        (6 * produced) as f64,
        "records read over all workers' lifetimes vs produced"
    );
    drop(third);
}

/// Static membership names each worker's consumers after its REST address: without the
/// REST API there is nothing to tell the workers apart, which is one line and exit 1
/// (before any connection is made).
#[test]
fn static_membership_without_the_rest_api_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let worker = worker_props(
        dir.path(),
        "127.0.0.1:9",
        &[
            ("group.id", "cluster"),
            ("config.storage.topic", CONFIGS),
            ("status.storage.topic", STATUS),
            ("ferry.static.membership", "true"),
        ],
    );
    let mut ferry = Ferry::spawn(
        &ferry_bin(),
        &["distributed", worker.to_str().unwrap()],
        dir.path(),
        "worker",
    );
    let status = ferry.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{}", ferry.log());
    let errors: Vec<String> = strip_ansi(&ferry.log())
        .lines()
        .filter(|l| l.contains("error"))
        .map(str::to_string)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("ferry.static.membership=true")
            && errors[0].contains("ferry.rest.enable=false"),
        "{errors:?}"
    );
}

/// A connector that would log in with a keytab of its own, on a worker that made no
/// Kerberos login at start: refused before it reaches the config topic, saying that the
/// login belongs in the worker files (connectors come from the topic, not from files).
#[test]
fn a_connector_with_its_own_keytab_login_is_refused_with_the_distributed_fix() {
    let c = Cluster::start(0, &[("t", 1)], 1, &[]);
    let w = &c.workers[0];
    let mut krb = directory_sink("krb", "t", &c.out);
    krb["config"]["consumer.override.security.protocol"] = json!("SASL_PLAINTEXT");
    krb["config"]["consumer.override.sasl.mechanism"] = json!("GSSAPI");
    krb["config"]["consumer.override.sasl.jaas.config"] = json!(
        "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/nonexistent/u.keytab\" principal=\"u@EXAMPLE.ORG\";"
    );
    let (status, body) = w.call("POST", "/connectors", Some(&krb));
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("this ferry made no keytab login at start")
            && message.contains("put that login in every worker file"),
        "{message}"
    );
    assert_eq!(w.call("GET", "/connectors", None).1, json!([]));
}

/// The latest record of every key of the status topic, read with kcat: key → value (None:
/// a tombstone).
fn status_topic(bootstrap: &str) -> BTreeMap<String, Option<String>> {
    latest_records(bootstrap, STATUS)
}

/// The latest value (None: a tombstone) of every key of a topic, read with kcat.
fn latest_records(bootstrap: &str, topic: &str) -> BTreeMap<String, Option<String>> {
    let lines = kcat_read_until(
        bootstrap,
        topic,
        0,
        WAIT,
        &["-Z", "-f", "%p\\t%o\\t%k\\t%s\\n"],
    );
    let mut latest: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    for line in &lines {
        let mut f = line.splitn(4, '\t');
        let (_, offset, key, value) = (f.next(), f.next(), f.next(), f.next());
        let offset: i64 = offset.unwrap().parse().unwrap();
        let value = value.filter(|v| *v != "NULL").map(str::to_string);
        let key = key.unwrap().to_string();
        if latest.get(&key).is_none_or(|(o, _)| *o < offset) {
            latest.insert(key, (offset, value));
        }
    }
    latest.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

/// `(task id, state, worker_id)` of a connector's status on one worker.
fn tasks_of(w: &Worker, name: &str) -> Vec<(u64, String, String)> {
    let (_, s) = w.call("GET", &format!("/connectors/{name}/status"), None);
    s["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .map(|t| {
                    (
                        t["id"].as_u64().unwrap(),
                        t["state"].as_str().unwrap().to_string(),
                        t["worker_id"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Three workers write their tasks' states to the status topic in Kafka Connect's format;
/// any worker's `GET …/status` shows every live worker's tasks, with ids unique over the
/// cluster (`slot × tasks.max + local index`); a worker killed with `kill -9` drops out of
/// the listing once its record is stale; a clean stop leaves its tasks UNASSIGNED in the
/// topic and deletes its record.
#[test]
fn status_on_any_worker_shows_every_workers_tasks_in_connects_format() {
    let mut c = Cluster::new(3000, &[("alerts", 6)], &[]);
    // Started at the same time: their slot claims race, and must still end distinct.
    c.add_together(3);
    let ids: BTreeSet<String> = c.workers.iter().map(|w| w.id().to_string()).collect();
    c.produce("alerts", 6, 20, 0);
    c.create("shared", "alerts");

    // Worker 2 shows the running tasks of all three workers.
    let all_running = |tasks: &[(u64, String, String)]| {
        let owners: BTreeSet<String> = tasks.iter().map(|t| t.2.clone()).collect();
        owners == ids && tasks.iter().all(|t| t.1 == "RUNNING")
    };
    let mut tasks = Vec::new();
    assert!(
        wait_until(WAIT, || {
            tasks = tasks_of(&c.workers[1], "shared");
            all_running(&tasks)
        }),
        "worker 2 does not show every worker's running tasks: {tasks:?}; worker ids {ids:?}; log:\n{}",
        c.workers[1].ferry.log()
    );
    // Ids are unique, and each worker's lie in its own block of tasks.max (2) ids.
    let unique: BTreeSet<u64> = tasks.iter().map(|t| t.0).collect();
    assert_eq!(unique.len(), tasks.len(), "{tasks:?}");
    let mut blocks = BTreeMap::new();
    for (id, _, worker) in &tasks {
        let block = blocks.entry(worker.clone()).or_insert(id / 2);
        assert_eq!(*block, id / 2, "{worker}'s tasks in two blocks: {tasks:?}");
    }
    let distinct: BTreeSet<u64> = blocks.values().copied().collect();
    assert_eq!(distinct.len(), 3, "workers share a block of ids: {tasks:?}");
    // One task's status, asked of another worker; and the listing with ?expand=status.
    let (id, _, owner) = tasks.iter().find(|t| t.2 == c.workers[0].id()).unwrap();
    // (Worker 3 may read worker 1's records a moment after worker 2 did.)
    let (mut code, mut task) = (0, Value::Null);
    let found = wait_until(WAIT, || {
        (code, task) = c.workers[2].call(
            "GET",
            &format!("/connectors/shared/tasks/{id}/status"),
            None,
        );
        code == 200
    });
    assert!(found, "{code} {task}");
    assert_eq!(
        (task["state"].as_str(), task["worker_id"].as_str()),
        (Some("RUNNING"), Some(owner.as_str()))
    );
    let (_, listing) = c.workers[1].call("GET", "/connectors?expand=status", None);
    assert_eq!(
        listing["shared"]["status"]["tasks"]
            .as_array()
            .map(Vec::len),
        Some(tasks.len()),
        "{listing}"
    );
    // The connector's info and its tasks list the same ids as its status, on any worker.
    let ids_of_status: Vec<u64> = tasks.iter().map(|t| t.0).collect();
    let (_, info) = c.workers[1].call("GET", "/connectors/shared", None);
    let info_ids: Vec<u64> = info["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"].as_u64().unwrap())
        .collect();
    assert_eq!(info_ids, ids_of_status, "{info}");
    let (_, listed) = c.workers[1].call("GET", "/connectors/shared/tasks", None);
    let listed_ids: Vec<u64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"]["task"].as_u64().unwrap())
        .collect();
    assert_eq!(listed_ids, ids_of_status, "{listed}");

    // The topic, read with kcat, holds Connect's records: exactly Connect's fields.
    let mut topic = BTreeMap::new();
    assert!(
        wait_until(WAIT, || {
            topic = status_topic(c.bootstrap());
            tasks
                .iter()
                .all(|t| topic.contains_key(&format!("status-task-shared-{}", t.0)))
        }),
        "{topic:?}"
    );
    let value = |key: &str| -> Value {
        let v = topic
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {topic:?}"));
        serde_json::from_str(v.as_deref().unwrap()).unwrap()
    };
    for (id, state, worker) in &tasks {
        let v = value(&format!("status-task-shared-{id}"));
        let fields: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            BTreeSet::from(["state", "trace", "worker_id", "generation"]),
            "{v}"
        );
        assert_eq!(v["state"], state.as_str(), "{v}");
        assert_eq!(v["worker_id"], worker.as_str(), "{v}");
        assert_eq!(v["trace"], Value::Null, "{v}");
        assert!(v["generation"].is_i64(), "{v}");
    }
    let connector = value("status-connector-shared");
    assert_eq!(connector["state"], "RUNNING", "{connector}");
    assert!(
        ids.contains(connector["worker_id"].as_str().unwrap()),
        "{connector}"
    );
    for id in &ids {
        let w = value(&format!("ferry-worker-{id}"));
        assert_eq!(w["config.storage.topic"], CONFIGS, "{w}");
    }

    // kill -9 of worker 3: within the staleness bound (10 s) and a margin, worker 2 no
    // longer shows its tasks RUNNING.
    let third = c.workers.pop().unwrap();
    let third_id = third.id().to_string();
    let third_tasks: Vec<u64> = tasks
        .iter()
        .filter(|t| t.2 == third_id)
        .map(|t| t.0)
        .collect();
    third.ferry.signal("KILL");
    let killed = std::time::Instant::now();
    assert!(
        wait_until(Duration::from_secs(20), || {
            tasks = tasks_of(&c.workers[1], "shared");
            !tasks.iter().any(|t| t.2 == third_id && t.1 == "RUNNING")
        }),
        "the killed worker's tasks still shown RUNNING after 20 s: {tasks:?}"
    );
    assert!(
        killed.elapsed() >= Duration::from_secs(2),
        "dropped before it could be stale"
    );
    drop(third);
    // And the topic no longer says they run: a live worker marked them UNASSIGNED.
    let mut topic = BTreeMap::new();
    let tidied = wait_until(WAIT, || {
        topic = status_topic(c.bootstrap());
        third_tasks.iter().all(|id| {
            topic
                .get(&format!("status-task-shared-{id}"))
                .and_then(|v| serde_json::from_str::<Value>(v.as_deref()?).ok())
                .is_some_and(|v| v["state"] == "UNASSIGNED" && v["worker_id"] == third_id.as_str())
        })
    });
    assert!(
        tidied,
        "the killed worker's tasks {third_tasks:?}: {topic:?}"
    );

    // A clean stop of worker 1: its tasks UNASSIGNED in the topic, its record deleted.
    let mut first = c.workers.remove(0);
    let first_id = first.id().to_string();
    let first_tasks: Vec<u64> = tasks
        .iter()
        .filter(|t| t.2 == first_id)
        .map(|t| t.0)
        .collect();
    assert!(!first_tasks.is_empty(), "{tasks:?}");
    first.stop();

    let topic = status_topic(c.bootstrap());
    for id in &first_tasks {
        let v: Value = serde_json::from_str(
            topic[&format!("status-task-shared-{id}")]
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (v["state"].as_str(), v["worker_id"].as_str()),
            (Some("UNASSIGNED"), Some(first_id.as_str())),
            "{v}"
        );
    }
    assert_eq!(
        topic.get(&format!("ferry-worker-{first_id}")),
        Some(&None),
        "{topic:?}"
    );
    // And worker 2 lists only its own tasks now.
    assert!(
        wait_until(WAIT, || {
            tasks = tasks_of(&c.workers[0], "shared");
            !tasks.is_empty() && tasks.iter().all(|t| t.2 == c.workers[0].id())
        }),
        "{tasks:?}"
    );

    // Deleted: the connector's record and every task's (the gone workers' too) are
    // tombstones, as Connect leaves them.
    let (code, _) = c.workers[0].call("DELETE", "/connectors/shared", None);
    assert_eq!(code, 204);
    let mut topic = BTreeMap::new();
    let all_gone = wait_until(WAIT, || {
        topic = status_topic(c.bootstrap());
        topic
            .iter()
            .filter(|(k, _)| k.starts_with("status-"))
            .all(|(_, v)| v.is_none())
    });
    assert!(all_gone, "{topic:?}");
    for id in unique {
        assert!(
            topic.contains_key(&format!("status-task-shared-{id}")),
            "{topic:?}"
        );
    }
}

/// A worker started with another config.storage.topic but the same status topic is named
/// in one warning in its peer's log, with both topics.
#[test]
fn a_worker_with_another_config_topic_is_named_in_a_warning() {
    let mut c = Cluster::start(0, &[("other-configs", 1)], 1, &[]);
    c.add_with(&[("config.storage.topic", "other-configs")]);
    let (first, stray) = (&c.workers[0], &c.workers[1]);
    let named = |log: &str| {
        strip_ansi(log)
            .lines()
            .filter(|l| {
                l.contains("WARN")
                    && l.contains(stray.id())
                    && l.contains("other-configs")
                    && l.contains(CONFIGS)
            })
            .count()
    };
    assert!(
        wait_until(WAIT, || named(&first.ferry.log()) >= 1),
        "no warning naming {}; log:\n{}",
        stray.id(),
        first.ferry.log()
    );
    // Several heartbeats later, still one warning.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(named(&first.ferry.log()), 1, "{}", first.ferry.log());
}

/// A worker the others took for gone (stopped with SIGSTOP past the staleness bound): its
/// peer marks its tasks UNASSIGNED in the topic; once it runs again (SIGCONT) it writes its
/// states again, and its peer lists its tasks RUNNING.
#[test]
fn a_worker_taken_for_gone_writes_its_states_again() {
    let c = Cluster::start(0, &[("lines", 2)], 2, &[]);
    c.create("c", "lines");
    let second = c.workers[1].id().to_string();

    let runs =
        |tasks: &[(u64, String, String)]| tasks.iter().any(|t| t.2 == second && t.1 == "RUNNING");
    let mut tasks = Vec::new();
    assert!(
        wait_until(WAIT, || {
            tasks = tasks_of(&c.workers[0], "c");
            runs(&tasks)
        }),
        "{tasks:?}"
    );
    let task_state = |topic: &BTreeMap<String, Option<String>>| -> Vec<String> {
        topic
            .iter()
            .filter(|(k, _)| k.starts_with("status-task-c-"))
            .filter_map(|(_, v)| serde_json::from_str::<Value>(v.as_deref()?).ok())
            .filter(|v| v["worker_id"] == second.as_str())
            .map(|v| v["state"].as_str().unwrap().to_string())
            .collect()
    };

    c.workers[1].ferry.signal("STOP");
    let mut topic = BTreeMap::new();
    let marked = wait_until(WAIT, || {
        tasks = tasks_of(&c.workers[0], "c");
        topic = status_topic(c.bootstrap());
        let states = task_state(&topic);
        !runs(&tasks) && !states.is_empty() && states.iter().all(|s| s == "UNASSIGNED")
    });
    c.workers[1].ferry.signal("CONT");
    assert!(marked, "{tasks:?} {topic:?}");

    let back = wait_until(WAIT, || {
        tasks = tasks_of(&c.workers[0], "c");
        topic = status_topic(c.bootstrap());
        runs(&tasks) && task_state(&topic).iter().any(|s| s == "RUNNING")
    });
    assert!(
        back,
        "{tasks:?} {topic:?}; log of the stopped worker:\n{}",
        c.workers[1].ferry.log()
    );
}

/// SIGTERM while the brokers are gone: the worker stops within its bound. Before, each of its
/// final status records waited out librdkafka's delivery timeout (`message.timeout.ms`, five
/// minutes), one after the other, and the worker outlived any service manager's stop
/// timeout.
#[test]
fn a_worker_stops_within_its_bound_when_the_brokers_are_gone() {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("gone", 2);
    internal_topics(&mut broker);
    let root = tempfile::tempdir().unwrap();
    let mut w = Worker::start(root.path(), 1, &broker.bootstrap, &[]);
    let (status, body) = w.call(
        "POST",
        "/connectors",
        Some(&directory_sink("gone", "gone", &root.path().join("out"))),
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        wait_until(WAIT, || w.holds_partitions()),
        "{}",
        w.ferry.log()
    );
    drop(broker);
    let stopping = std::time::Instant::now();
    w.ferry.signal("TERM");
    let exit = w.ferry.wait(WAIT);
    let took = stopping.elapsed();
    let log = w.ferry.log();
    // task.shutdown.graceful.timeout.ms is 5 s here; the consumer's close with no broker
    // adds a few seconds at most.
    assert!(
        took < Duration::from_secs(30),
        "the stop took {took:?}; log:\n{log}"
    );
    assert!(exit.success(), "{exit:?}; log:\n{log}");
    assert!(
        log.contains("The status topic did not take this worker's final states in time"),
        "{log}"
    );
}
