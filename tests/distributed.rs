//! Distributed mode: several `ferry distributed` workers (separate processes, REST API on
//! free ports) on one mock cluster share connectors through the config topic, in Kafka
//! Connect's format, and share each connector's partitions through its consumer group.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const CONFIGS: &str = "ferry-configs";

/// One worker of the cluster.
struct Worker {
    ferry: Ferry,
    base: String,
}

impl Worker {
    fn start(root: &Path, n: usize, bootstrap: &str, extra: &[(&str, &str)]) -> Worker {
        let dir = root.join(format!("worker{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let listeners = format!("http://127.0.0.1:{port}");
        let mut props = vec![
            ("listeners", listeners.as_str()),
            ("ferry.rest.enable", "true"),
            ("group.id", "ferry-cluster"),
            ("config.storage.topic", CONFIGS),
            ("status.storage.topic", "ferry-status"),
            ("offset.storage.topic", "ferry-offsets"),
        ];
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
    let mut broker = Broker::start(1, 3000);
    broker.create_topic("alerts", 6);
    // The mock cluster does not serve CreateTopics; a real one gets the topic from ferry.
    broker.create_topic(CONFIGS, 1);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let workers: Vec<Worker> = (1..=3)
        .map(|n| Worker::start(root.path(), n, &broker.bootstrap, &[]))
        .collect();
    produce(&broker.bootstrap, "alerts", 6, 100, 0);

    let (status, body) = workers[0].call(
        "POST",
        "/connectors",
        Some(&directory_sink("shared", "alerts", &out)),
    );
    assert_eq!(status, 201, "{body}");
    // Every worker runs it, having read the record from the config topic.
    for (i, w) in workers.iter().enumerate() {
        assert!(
            wait_until(WAIT, || w.state("shared") == "RUNNING"),
            "worker {} does not run the connector; log:\n{}",
            i + 1,
            w.ferry.log()
        );
    }
    assert!(
        wait_until(WAIT, || delivered(&out, "alerts") == expected(6, 100)),
        "not every record delivered: {} of 600",
        delivered(&out, "alerts").len()
    );
    // The partitions were shared: every worker read some of them.
    let read: Vec<f64> = workers.iter().map(Worker::records_read).collect();
    assert!(
        read.iter().all(|&r| r > 0.0),
        "a worker read nothing (records read per worker: {read:?})"
    );

    // kill -9 the third worker; what it held moves to the others, nothing is lost.
    let mut workers = workers;
    let third = workers.pop().unwrap();
    third.ferry.signal("KILL");
    produce(&broker.bootstrap, "alerts", 6, 100, 100);
    assert!(
        wait_until(WAIT, || delivered(&out, "alerts") == expected(6, 200)),
        "records lost after kill -9 of a worker: {} of 1200 delivered",
        delivered(&out, "alerts").len()
    );
    drop(third);
}

#[test]
fn changes_on_one_worker_take_effect_on_all_and_survive_a_cluster_restart() {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("lines", 2);
    broker.create_topic(CONFIGS, 1);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let mut workers: Vec<Worker> = (1..=2)
        .map(|n| Worker::start(root.path(), n, &broker.bootstrap, &[]))
        .collect();
    let (status, body) = workers[0].call(
        "POST",
        "/connectors",
        Some(&directory_sink("c", "lines", &out)),
    );
    assert_eq!(status, 201, "{body}");
    for w in &workers {
        assert!(wait_until(WAIT, || w.state("c") == "RUNNING"));
    }
    // Pause through the second worker: both pause.
    let (status, _) = workers[1].call("PUT", "/connectors/c/pause", None);
    assert_eq!(status, 202);
    for w in &workers {
        assert!(
            wait_until(WAIT, || w.state("c") == "PAUSED"),
            "{}",
            w.ferry.log()
        );
    }
    produce(&broker.bootstrap, "lines", 2, 20, 0);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        delivered(&out, "lines").is_empty(),
        "records delivered while paused"
    );
    let (status, _) = workers[1].call("PUT", "/connectors/c/resume", None);
    assert_eq!(status, 202);
    assert!(wait_until(WAIT, || delivered(&out, "lines") == expected(2, 20)));

    // The whole cluster stops and starts again: the connector comes back from the topic.
    for w in &workers {
        w.ferry.signal("TERM");
    }
    for w in &mut workers {
        w.ferry.wait(Duration::from_secs(30));
    }
    drop(workers);
    let workers: Vec<Worker> = (3..=4)
        .map(|n| Worker::start(root.path(), n, &broker.bootstrap, &[]))
        .collect();
    let (_, names) = workers[1].call("GET", "/connectors", None);
    assert_eq!(names, json!(["c"]));
    produce(&broker.bootstrap, "lines", 2, 20, 20);
    assert!(wait_until(WAIT, || delivered(&out, "lines") == expected(2, 40)));

    // Delete through one worker: gone everywhere.
    let (status, _) = workers[0].call("DELETE", "/connectors/c", None);
    assert_eq!(status, 204);
    for w in &workers {
        assert!(wait_until(WAIT, || w.call("GET", "/connectors", None).1 == json!([])));
    }
}

/// A config topic as a stopped Java Connect cluster leaves it, written with kcat: ferry runs
/// the connector it has, shows the one it has not as FAILED with the reason, and skips a
/// record that is not Connect's shape, naming its offset.
#[test]
fn a_config_topic_written_by_kafka_connect_is_picked_up() {
    let mut broker = Broker::start(1, 0);
    broker.create_topic("alerts", 1);
    broker.create_topic(CONFIGS, 1);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let records = [
        format!(
            r#"connector-ztf|{{"properties":{{"connector.class":"io.ferry.connect.directory.DirectorySinkConnector","name":"ztf","topics":"alerts","directory.path":"{}","tasks.max":"1"}}}}"#,
            out.display()
        ),
        r#"task-ztf-0|{"properties":{"task.class":"x"}}"#.to_string(),
        r#"commit-ztf|{"tasks":1}"#.to_string(),
        r#"connector-jdbc|{"properties":{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","name":"jdbc","topics":"alerts"}}"#.to_string(),
        "connector-broken|{not json".to_string(),
        r#"target-state-ztf|{"state":"STARTED","state.v2":"STARTED"}"#.to_string(),
    ];
    let mut cmd = kcat();
    cmd.args(["-b", &broker.bootstrap, "-K", "|"]);
    feed_kcat(cmd, CONFIGS, 0, &records).unwrap();
    produce_lines(&broker.bootstrap, "alerts", 0, &numbered(0, 10));

    let w = Worker::start(root.path(), 1, &broker.bootstrap, &[]);
    let (_, names) = w.call("GET", "/connectors", None);
    assert_eq!(names, json!(["jdbc", "ztf"]));
    assert!(wait_until(WAIT, || delivered(&out, "alerts").len() == 10));
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
    let mut broker = Broker::start(1, 3000);
    broker.create_topic("handover", 6);
    broker.create_topic(CONFIGS, 1);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let slow = [
        ("offset.flush.timeout.ms", "500"),
        ("offset.flush.interval.ms", "600000"),
    ];
    let first = Worker::start(root.path(), 1, &broker.bootstrap, &slow);
    let mut connector = directory_sink("handover", "handover", &out);
    connector["config"]["errors.retry.delay.max.ms"] = json!("200");
    let (status, body) = first.call("POST", "/connectors", Some(&connector));
    assert_eq!(status, 201, "{body}");
    produce(&broker.bootstrap, "handover", 6, 50, 0);
    assert!(
        wait_until(WAIT, || delivered(&out, "handover") == expected(6, 50)),
        "{} of 300 delivered by the first worker; log:\n{}",
        delivered(&out, "handover").len(),
        first.ferry.log()
    );
    // The sink's outage: its topic directory is gone, so every write fails (retriably).
    let moved = root.path().join("out-moved");
    std::fs::rename(out.join("handover"), &moved).unwrap();
    produce(&broker.bootstrap, "handover", 6, 50, 50);
    assert!(
        wait_until(WAIT, || first
            .ferry
            .log()
            .contains("Sink could not take the batch; retrying it.")),
        "the sink did not fail; log:\n{}",
        first.ferry.log()
    );
    let second = Worker::start(root.path(), 2, &broker.bootstrap, &slow);
    // The group's first assignment to the second worker is when the first starts revoking
    // (cooperative-sticky: only what moves).
    assert!(
        wait_until(WAIT, || second.ferry.log().contains("Partitions assigned.")),
        "the second worker did not join; log:\n{}",
        second.ferry.log()
    );
    // The outage outlasts the flush timeout six times over, then ends.
    std::thread::sleep(Duration::from_secs(3));
    std::fs::rename(&moved, out.join("handover")).unwrap();
    assert!(
        wait_until(WAIT, || delivered(&out, "handover") == expected(6, 100)),
        "{} of 600 delivered after the outage; log:\n{}",
        delivered(&out, "handover").len(),
        first.ferry.log()
    );
    produce(&broker.bootstrap, "handover", 6, 50, 100);
    assert!(
        wait_until(WAIT, || delivered(&out, "handover") == expected(6, 150)),
        "{} of 900 delivered after the join",
        delivered(&out, "handover").len()
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
    let mut broker = Broker::start(1, 3000);
    broker.create_topic("roll", 6);
    broker.create_topic(CONFIGS, 1);
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    // A revoke waits for the flush up to nine tenths of max.poll.interval.ms, whatever
    // offset.flush.timeout.ms says (the default here); a stop waits up to nine tenths of
    // task.shutdown.graceful.timeout.ms, which bounds the whole stop. The directory sink's
    // flush syncs the file system, which a machine busy with builds can hold for seconds
    // (CI once redelivered 100 records when both were 5 s): the stop gets room here.
    let patient = [("task.shutdown.graceful.timeout.ms", "30000")];
    let mut workers: Vec<Worker> = (1..=3)
        .map(|n| Worker::start(root.path(), n, &broker.bootstrap, &patient))
        .collect();
    let (status, body) = workers[0].call(
        "POST",
        "/connectors",
        Some(&directory_sink("roll", "roll", &out)),
    );
    assert_eq!(status, 201, "{body}");
    let mut produced = 0;
    let mut read = 0.0;
    // The warnings of every worker, shown if anything was read twice.
    let mut warnings = String::new();
    produce(&broker.bootstrap, "roll", 6, 50, 0);
    produced += 50;
    assert!(wait_until(WAIT, || delivered(&out, "roll")
        == expected(6, produced as i64)));
    for next in 4..=6 {
        let old = workers.remove(0);
        read += old.records_read();
        old.ferry.signal("TERM");
        let mut old = old;
        assert!(
            old.ferry.wait(Duration::from_secs(60)).success(),
            "{}",
            old.ferry.log()
        );
        warnings.extend(
            old.ferry
                .log()
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .map(|l| format!("{l}\n")),
        );
        workers.push(Worker::start(
            root.path(),
            next,
            &broker.bootstrap,
            &patient,
        ));
        produce(&broker.bootstrap, "roll", 6, 50, produced);
        produced += 50;
        assert!(
            wait_until(WAIT, || delivered(&out, "roll")
                == expected(6, produced as i64)),
            "after restarting into worker {next}: {} of {} delivered",
            delivered(&out, "roll").len(),
            6 * produced
        );
    }
    read += workers.iter().map(Worker::records_read).sum::<f64>();
    for w in &workers {
        warnings.extend(
            w.ferry
                .log()
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .map(|l| format!("{l}\n")),
        );
    }
    assert_eq!(
        read,
        (6 * produced) as f64,
        "records read over all workers' lifetimes vs produced: duplicates; warnings:\n{warnings}"
    );
}
