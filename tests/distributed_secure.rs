//! Distributed mode on a Kerberos-secured cluster (tests/common/kerberos.rs: a real MIT KDC
//! and a SASL/GSSAPI front before each mock broker, which the brokers advertise, so every
//! connection ferry makes — the config topic's reader and writer as much as the
//! connectors' consumers — must pass a GSSAPI handshake). The worker file is the ZTF one,
//! with the cluster keys added: the worker logs in from its keytab once, for all its
//! clients, exactly as `ferry standalone` does.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::kerberos::{CLIENT, SecureCluster};
use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const CONFIGS: &str = "ferry-configs";

/// The cluster keys (and a REST listener on a free port) added to the ZTF worker file.
fn cluster_keys(port: u16) -> String {
    format!(
        "listeners=http://127.0.0.1:{port}\n\
         ferry.rest.enable=true\n\
         group.id=ferry-secure\n\
         config.storage.topic={CONFIGS}\n\
         status.storage.topic=ferry-status\n\
         offset.storage.topic=ferry-offsets\n\
         consumer.session.timeout.ms=6000\n\
         consumer.heartbeat.interval.ms=500\n"
    )
}

fn call(base: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (status, out) = curl(
        method,
        &format!("{base}{path}"),
        &["Accept: application/json"],
        text.as_deref().map(|t| ("application/json", t.as_bytes())),
        30,
    );
    (
        status,
        serde_json::from_str(&out).unwrap_or(Value::String(out)),
    )
}

/// `ferry distributed WORKER` in `dir` (its own default credential cache pointed at
/// `user_cache`, which ferry must never touch), up once `/health` answers.
fn start_worker(dir: &Path, worker: &Path, port: u16, tag: &str, user_cache: &Path) -> Ferry {
    let ferry = Ferry::spawn_with_env(
        &ferry_bin(),
        &["distributed", worker.to_str().unwrap()],
        &[("KRB5CCNAME", &format!("FILE:{}", user_cache.display()))],
        dir,
        tag,
    );
    let base = format!("http://127.0.0.1:{port}");
    assert!(
        wait_until(WAIT, || call(&base, "GET", "/health", None).0 == 200),
        "{tag} did not come up; log:\n{}",
        ferry.log()
    );
    ferry
}

fn file_sink(name: &str, out: &Path) -> Value {
    json!({
        "name": name,
        "config": {
            "connector.class": "FileStreamSink",
            "topics": "alerts",
            "file": out.to_str().unwrap(),
            "tasks.max": "2",
        }
    })
}

/// The config topic's records as `key|value` lines, read with kcat through the GSSAPI
/// front (an independent client).
fn config_topic(cluster: &SecureCluster) -> Vec<String> {
    let out = cluster
        .kcat()
        .args(["-C", "-t", CONFIGS, "-e", "-q", "-K", "|"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kcat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_gssapi_worker_logs_in_once_for_its_config_topic_and_its_connectors() {
    let test =
        "distributed_secure::a_gssapi_worker_logs_in_once_for_its_config_topic_and_its_connectors";
    let Some(mut cluster) = SecureCluster::start(test, 2, Duration::from_secs(600), None) else {
        return;
    };
    // The mock cluster does not serve CreateTopics; a real one gets the topic from ferry.
    cluster.broker.create_topic(CONFIGS, 1);
    cluster.broker.create_topic("ferry-status", 5);
    let mut sent = Vec::new();
    for p in 0..2 {
        let lines = numbered(p, 100);
        cluster.produce(p, &lines);
        sent.extend(lines);
    }
    let dir = cluster.path().join("worker1");
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let worker = cluster.ztf_worker(&dir, &[], &cluster_keys(port));
    let user_cache = cluster.path().join("user-default.cc");
    let base = format!("http://127.0.0.1:{port}");
    let out = cluster.path().join("out.txt");
    let mut ferry = start_worker(&dir, &worker, port, "worker1", &user_cache);

    // Created over REST: answered once the worker has written the config record and read
    // it back, through GSSAPI (the front is the only way to the broker).
    let (status, body) = call(
        &base,
        "POST",
        "/connectors",
        Some(&file_sink("ztf-file", &out)),
    );
    assert_eq!(status, 201, "{body}\n{}", ferry.log());
    // A connector that would log in as another principal is refused: one login per
    // process, the worker's.
    let mut other = file_sink("other", &out);
    other["config"]["consumer.override.sasl.jaas.config"] = json!(format!(
        "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"{}\" principal=\"other@FERRY.TEST\";",
        cluster.other_keytab.display()
    ));
    let (status, body) = call(&base, "POST", "/connectors", Some(&other));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(&format!(
            "connector other logs in as other@FERRY.TEST ({}) but this ferry logs in as {CLIENT}",
            cluster.other_keytab.display()
        )),
        "{body}"
    );
    let records = config_topic(&cluster);
    assert!(
        records
            .iter()
            .any(|r| r.starts_with("connector-ztf-file|") && r.contains("FileStreamSink")),
        "the config topic holds the connector's record: {records:?}"
    );
    assert!(
        !records.iter().any(|r| r.starts_with("connector-other|")),
        "a refused connector reached the config topic: {records:?}"
    );
    let state = || {
        call(&base, "GET", "/connectors/ztf-file/status", None).1["connector"]["state"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    };
    assert!(
        wait_until(WAIT, || state() == "RUNNING"),
        "state {}; log:\n{}",
        state(),
        ferry.log()
    );
    let mut want = sent.clone();
    want.sort();
    let got = || {
        let mut g = lines_of(&out);
        g.sort();
        g
    };
    assert!(
        wait_until(WAIT, || got() == want),
        "every record once: {} of {} delivered; log:\n{}",
        got().len(),
        want.len(),
        ferry.log()
    );

    // A restarted worker reads the connector back from the config topic, through the same
    // login, and carries on from the group's offsets: new records only, once.
    ferry.signal("TERM");
    assert!(
        ferry.wait(Duration::from_secs(60)).success(),
        "{}",
        ferry.log()
    );
    let first_log = ferry.log();
    let more: Vec<String> = (100..120).map(|i| format!("p0-{i}")).collect();
    cluster.produce(0, &more);
    let dir2 = cluster.path().join("worker2");
    std::fs::create_dir_all(&dir2).unwrap();
    let port2 = free_port();
    let worker2 = cluster.ztf_worker(&dir2, &[], &cluster_keys(port2));
    let base2 = format!("http://127.0.0.1:{port2}");
    let second = start_worker(&dir2, &worker2, port2, "worker2", &user_cache);
    let (_, names) = call(&base2, "GET", "/connectors", None);
    assert_eq!(names, json!(["ztf-file"]), "{}", second.log());
    want.extend(more);
    want.sort();
    assert!(
        wait_until(WAIT, || got() == want),
        "after the restart: {} of {} delivered; log:\n{}",
        got().len(),
        want.len(),
        second.log()
    );
    second.signal("TERM");
    let mut second = second;
    assert!(second.wait(Duration::from_secs(60)).success());

    for log in [first_log, second.log()] {
        assert!(
            log.contains("Kerberos login succeeded.")
                && log.contains(&format!("principal={CLIENT}")),
            "{log}"
        );
        // One login, made by ferry: no kinit, and no connector refused for want of one.
        assert!(!log.contains("kinit"), "{log}");
        assert!(!log.contains("ERROR"), "a clean run logs no ERROR:\n{log}");
        assert_eq!(log.matches("Kerberos login succeeded.").count(), 1, "{log}");
    }
    // Every connection authenticated, as the client principal, and there were several
    // (config topic reader and writer, the consumer, per worker).
    let principals = cluster.authenticated();
    assert!(principals.len() >= 4, "{:?}", cluster.events());
    assert!(principals.iter().all(|p| p == CLIENT), "{principals:?}");
    assert!(
        !user_cache.exists(),
        "ferry touched the user's default credential cache"
    );
    for f in [&ferry, &second] {
        let cache = std::env::temp_dir().join(format!("ferry-krb5-{}", f.child.id()));
        assert!(!cache.exists(), "left {}", cache.display());
    }
}

/// The one `ferry: error:` line of a run that must be refused.
fn one_error_line(mut ferry: Ferry) -> String {
    let status = ferry.wait(Duration::from_secs(60));
    let log = ferry.log();
    assert_eq!(status.code(), Some(1), "{log}");
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("ferry: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    let cache = std::env::temp_dir().join(format!("ferry-krb5-{}", ferry.child.id()));
    assert!(!cache.exists(), "left {}", cache.display());
    errors[0].to_string()
}

/// What a login error says after its `file:line key:` location.
fn after_location(line: &str) -> &str {
    line.split_once(" keytab ").map_or(line, |(_, rest)| rest)
}

#[test]
fn a_bad_keytab_in_the_worker_file_is_one_line_as_in_standalone() {
    let test = "distributed_secure::a_bad_keytab_in_the_worker_file_is_one_line_as_in_standalone";
    let Some(mut cluster) = SecureCluster::start(test, 1, Duration::from_secs(600), None) else {
        return;
    };
    cluster.broker.create_topic(CONFIGS, 1);
    cluster.broker.create_topic("ferry-status", 5);
    let keytab = format!("keyTab=\"{}\"", cluster.client_keytab.display());
    let other = format!("keyTab=\"{}\"", cluster.other_keytab.display());
    for (case, to, want) in [
        (
            "missing",
            "{dir}/missing.keytab".to_string(),
            "No such file",
        ),
        ("wrong-key", other, "has no usable key for ferry@FERRY.TEST"),
    ] {
        let dir = cluster.path().join(case);
        std::fs::create_dir_all(&dir).unwrap();
        let to = if to.contains("{dir}") {
            format!("keyTab=\"{}\"", to.replace("{dir}", dir.to_str().unwrap()))
        } else {
            to
        };
        let port = free_port();
        let worker: PathBuf = cluster.ztf_worker(&dir, &[(&keytab, &to)], &cluster_keys(port));
        let distributed = one_error_line(Ferry::spawn_with_env(
            &ferry_bin(),
            &["distributed", worker.to_str().unwrap()],
            &[("FERRY_BROKER_TIMEOUT", "10")],
            &dir,
            "distributed",
        ));
        let connector = dir.join("c.properties");
        write_props(
            &connector,
            &[
                ("name", "c"),
                ("connector.class", "FileStreamSink"),
                ("topics", "alerts"),
                ("file", dir.join("out.txt").to_str().unwrap()),
            ],
        );
        let standalone = one_error_line(Ferry::spawn_with_env(
            &ferry_bin(),
            &[
                "standalone",
                "--exit-at-end",
                worker.to_str().unwrap(),
                connector.to_str().unwrap(),
            ],
            &[("FERRY_BROKER_TIMEOUT", "10")],
            &dir,
            "standalone",
        ));
        eprintln!("[{case}] {distributed}");
        assert!(distributed.contains(want), "{case}: {distributed}");
        assert!(
            distributed.contains("worker.properties:") && distributed.contains("sasl.jaas.config"),
            "{case}: names where the keytab is set: {distributed}"
        );
        // The same words as standalone, but for where in the file the keytab was read
        // (the top-level block here, the consumer. block there).
        assert_eq!(
            after_location(&distributed),
            after_location(&standalone),
            "{case}"
        );
        // Nothing delivered.
        assert!(
            !dir.join("out.txt").exists() || lines_of(&dir.join("out.txt")).is_empty(),
            "{case}"
        );
    }
    // No security block at all: the worker's own clients cannot get through the front,
    // and the line says which settings they use.
    let dir = cluster.path().join("plaintext");
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let listeners = format!("http://127.0.0.1:{port}");
    let worker = worker_props(
        &dir,
        &cluster.bootstrap,
        &[
            ("listeners", listeners.as_str()),
            ("ferry.rest.enable", "true"),
            ("group.id", "ferry-secure"),
            ("config.storage.topic", CONFIGS),
            ("status.storage.topic", "ferry-status"),
        ],
    );
    let line = one_error_line(Ferry::spawn_with_env(
        &ferry_bin(),
        &["distributed", worker.to_str().unwrap()],
        &[("FERRY_BROKER_TIMEOUT", "5")],
        &dir,
        "plaintext",
    ));
    eprintln!("[plaintext] {line}");
    assert!(
        line.contains("worker of cluster ferry-secure")
            && line.contains(&cluster.bootstrap)
            && line.contains("top-level security settings"),
        "{line}"
    );
    assert!(cluster.authenticated().iter().all(|p| p == CLIENT));
}

/// Renewal serves the worker's own clients too: tickets live 60 s, the front closes every
/// connection after 20 s (so the config topic's reader and writer authenticate again and
/// again), and well after the first ticket expired a connector created over REST is
/// written to the config topic, read back and run — with the renewed ticket of the one
/// login. `FERRY_KERBEROS_RENEWAL_SECS` lengthens the run.
#[test]
fn the_worker_keeps_its_config_topic_clients_logged_in_past_the_first_ticket() {
    let test = "distributed_secure::the_worker_keeps_its_config_topic_clients_logged_in_past_the_first_ticket";
    let life = Duration::from_secs(60);
    let Some(mut cluster) = SecureCluster::start(test, 2, life, Some(Duration::from_secs(20)))
    else {
        return;
    };
    cluster.broker.create_topic(CONFIGS, 1);
    cluster.broker.create_topic("ferry-status", 5);
    let run = Duration::from_secs(
        std::env::var("FERRY_KERBEROS_RENEWAL_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(100),
    )
    .max(life + Duration::from_secs(20));
    let dir = cluster.path().join("worker");
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let worker = cluster.ztf_worker(&dir, &[], &cluster_keys(port));
    let base = format!("http://127.0.0.1:{port}");
    let user_cache = cluster.path().join("user-default.cc");
    let started = std::time::Instant::now();
    let mut ferry = start_worker(&dir, &worker, port, "worker", &user_cache);
    let first = cluster.path().join("first.txt");
    let (status, body) = call(
        &base,
        "POST",
        "/connectors",
        Some(&file_sink("first", &first)),
    );
    assert_eq!(status, 201, "{body}");
    // A batch every 10 s, alternating partitions; the second connector is created once
    // the first ticket has expired.
    let mut sent = Vec::new();
    let mut batch = 0u64;
    let second = cluster.path().join("second.txt");
    let mut created_late = false;
    while started.elapsed() < run {
        let p = (batch % 2) as i32;
        let lines: Vec<String> = (0..10).map(|n| format!("b{batch}-p{p}-{n}")).collect();
        cluster.produce(p, &lines);
        sent.extend(lines);
        batch += 1;
        if !created_late && started.elapsed() > life + Duration::from_secs(5) {
            let (status, body) = call(
                &base,
                "POST",
                "/connectors",
                Some(&file_sink("second", &second)),
            );
            assert_eq!(status, 201, "{body}\n{}", ferry.log());
            created_late = true;
        }
        let next = Duration::from_secs(10 * batch);
        std::thread::sleep(
            next.saturating_sub(started.elapsed())
                .min(run.saturating_sub(started.elapsed())),
        );
        assert!(
            ferry.child.try_wait().unwrap().is_none(),
            "ferry exited early:\n{}",
            ferry.log()
        );
    }
    assert!(
        created_late,
        "the run ended before the first ticket expired"
    );
    let all_in = |path: &Path| {
        wait_until(WAIT, || {
            let got: std::collections::BTreeSet<String> = lines_of(path).into_iter().collect();
            sent.iter().all(|l| got.contains(l))
        })
    };
    assert!(
        all_in(&first),
        "records lost (first); log:\n{}",
        ferry.log()
    );
    assert!(
        all_in(&second),
        "records lost (second); log:\n{}",
        ferry.log()
    );
    ferry.signal("TERM");
    let status = ferry.wait(Duration::from_secs(60));
    let log = ferry.log();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("Kerberos ticket renewed."), "{log}");
    assert_eq!(log.matches("Kerberos login succeeded.").count(), 1, "{log}");
    for bad in ["renewal failed", "GSSAPI Error", "Authentication", "kinit"] {
        assert!(!log.contains(bad), "`{bad}` in the log:\n{log}");
    }
    let rejected: Vec<String> = cluster
        .events()
        .into_iter()
        .filter(|l| l.starts_with("reject") && l.contains("authentication failed"))
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
    let late = cluster
        .timed_events()
        .iter()
        .filter(|(t, l)| l.starts_with("auth ") && t.duration_since(started) > life)
        .count();
    assert!(late > 0, "no authentication after the first ticket expired");
    assert!(cluster.authenticated().iter().all(|p| p == CLIENT));
    assert!(!user_cache.exists());
}
