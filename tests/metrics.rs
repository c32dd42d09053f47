//! Prometheus metrics end to end: ferry runs standalone against the mock Kafka cluster with
//! `ferry.metrics.listener`, kcat produces records, and the page is read by clients nobody
//! here wrote — curl, `promtool check metrics`, and a real Prometheus server (Debian's
//! `prometheus`) that scrapes ferry and answers through its own query API.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::emulator::skip;
use common::*;

const CONNECTOR: &str = "metered";
const TOPIC: &str = "metered";
const GENEROUS: Duration = Duration::from_secs(60);

/// Lint findings promtool reports on names kept as Kafka Connect's jmx_exporter rules make
/// them (listed in the README). Any other finding fails the test.
const CONNECT_NAME_FINDINGS: &[(&str, &str)] = &[
    (
        "kafka_connect_sink_task_put_batch_avg_time_ms",
        "metric names should not contain abbreviated units",
    ),
    (
        "kafka_connect_sink_task_put_batch_max_time_ms",
        "metric names should not contain abbreviated units",
    ),
    (
        "kafka_connect_sink_task_partition_count",
        "non-histogram and non-summary metrics should not have \"_count\" suffix",
    ),
    (
        "kafka_connect_worker_connector_count",
        "non-histogram and non-summary metrics should not have \"_count\" suffix",
    ),
    (
        "kafka_connect_worker_task_count",
        "non-histogram and non-summary metrics should not have \"_count\" suffix",
    ),
    (
        "kafka_connect_worker_connector_total_task_count",
        "non-histogram and non-summary metrics should not have \"_count\" suffix",
    ),
    (
        "kafka_connect_worker_connector_running_task_count",
        "non-histogram and non-summary metrics should not have \"_count\" suffix",
    ),
    (
        "kafka_connect_worker_connector_failed_task_count",
        "non-histogram and non-summary metrics should not have \"_count\" suffix",
    ),
];

/// Whether a program is on the PATH.
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A broker with the topic, ferry running a file sink over it with its metrics listener,
/// and the records produced.
struct Setup {
    _dir: tempfile::TempDir,
    broker: Broker,
    ferry: Ferry,
    metrics_url: String,
    port: u16,
    out: PathBuf,
    produced: Vec<String>,
}

fn start(partitions: i32, per_partition: usize) -> Setup {
    let lines: Vec<Vec<String>> = (0..partitions)
        .map(|p| numbered(p, per_partition))
        .collect();
    start_with(&lines, &[])
}

/// As [`start`], producing `lines[p]` to partition `p`, with extra connector settings.
fn start_with(lines: &[Vec<String>], extra: &[(&str, &str)]) -> Setup {
    let partitions = lines.len() as i32;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic(TOPIC, partitions);
    let port = free_port();
    let listener = format!("http://127.0.0.1:{port}");
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("ferry.metrics.listener", listener.as_str())],
    );
    let out = dir.path().join("out.txt");
    let connector = dir.path().join("metered.properties");
    let tasks = partitions.to_string();
    let mut pairs = vec![
        ("name", CONNECTOR),
        (
            "connector.class",
            "org.apache.kafka.connect.file.FileStreamSinkConnector",
        ),
        ("tasks.max", tasks.as_str()),
        ("topics", TOPIC),
        ("file", out.to_str().unwrap()),
    ];
    pairs.extend_from_slice(extra);
    write_props(&connector, &pairs);
    let ferry = Ferry::standalone(dir.path(), &worker, &[&connector]);
    let metrics_url = format!("{listener}/metrics");
    assert!(
        wait_until(GENEROUS, || curl("GET", &metrics_url, &[], None, 5).0
            == 200),
        "/metrics never answered; log:\n{}",
        ferry.log()
    );
    let mut produced = Vec::new();
    for (p, lines) in lines.iter().enumerate() {
        produce_lines(&broker.bootstrap, TOPIC, p as i32, lines);
        produced.extend(lines.iter().cloned());
    }
    Setup {
        _dir: dir,
        broker,
        ferry,
        metrics_url,
        port,
        out,
        produced,
    }
}

/// `name{labels}` → value of every sample on the page.
fn samples(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The samples of `name` whose labels include every pair of `labels`.
fn matching(page: &str, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    samples(page)
        .into_iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v)
        .collect()
}

fn sum(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    matching(page, name, labels).iter().sum()
}

fn scrape(url: &str) -> String {
    let (status, body) = curl("GET", url, &[], None, 5);
    assert_eq!(status, 200, "{url}: {body}");
    body
}

#[test]
fn scraped_metrics_count_the_records_and_promtool_accepts_the_page() {
    let mut s = start(2, 40);
    let total = s.produced.len() as f64;
    let bytes: usize = s.produced.iter().map(String::len).sum();
    assert!(
        wait_until(GENEROUS, || lines_of(&s.out).len() == s.produced.len()),
        "records did not arrive; log:\n{}",
        s.ferry.log()
    );
    let c = [("connector", CONNECTOR)];
    // Committed (flush every 500 ms) and the lag reported (statistics every 1 s).
    let mut page = String::new();
    let settled = wait_until(GENEROUS, || {
        page = scrape(&s.metrics_url);
        let lags = matching(&page, "ferry_consumer_lag", &c);
        lags.len() == 2
            && lags.iter().all(|l| *l == 0.0)
            && sum(
                &page,
                "kafka_connect_sink_task_offset_commit_completion_total",
                &c,
            ) > 0.0
    });
    assert!(settled, "lag never reached 0; last page:\n{page}");

    assert_eq!(
        sum(&page, "kafka_connect_sink_task_sink_record_read_total", &c),
        total,
        "{page}"
    );
    assert_eq!(
        sum(&page, "kafka_connect_sink_task_sink_record_send_total", &c),
        total
    );
    assert_eq!(sum(&page, "ferry_bytes_in_total", &c), bytes as f64);
    assert_eq!(sum(&page, "ferry_bytes_out_total", &c), bytes as f64);
    for p in ["0", "1"] {
        let lag = matching(
            &page,
            "ferry_consumer_lag",
            &[("connector", CONNECTOR), ("topic", TOPIC), ("partition", p)],
        );
        assert_eq!(lag, vec![0.0], "partition {p}: {page}");
    }
    assert_eq!(
        sum(&page, "kafka_connect_sink_task_sink_record_lag_max", &c),
        0.0
    );
    // Two partitions, one task each (tasks.max=2), both running.
    assert_eq!(
        sum(&page, "kafka_connect_sink_task_partition_count", &c),
        2.0
    );
    for task in ["0", "1"] {
        let l = [("connector", CONNECTOR), ("task", task)];
        assert_eq!(
            matching(&page, "kafka_connect_sink_task_partition_count", &l),
            vec![1.0],
            "task {task}: {page}"
        );
        let running = [
            ("connector", CONNECTOR),
            ("task", task),
            ("status", "running"),
        ];
        assert_eq!(
            matching(&page, "kafka_connect_connector_task_status", &running),
            vec![1.0]
        );
    }
    assert_eq!(
        matching(
            &page,
            "kafka_connect_connector_status",
            &[("connector", CONNECTOR), ("status", "running")]
        ),
        vec![1.0]
    );
    assert_eq!(
        matching(
            &page,
            "kafka_connect_connector_connector_class",
            &[
                ("connector", CONNECTOR),
                (
                    "connector_class",
                    "org.apache.kafka.connect.file.FileStreamSinkConnector"
                )
            ]
        ),
        vec![1.0]
    );
    assert_eq!(
        matching(&page, "kafka_connect_worker_connector_count", &[]),
        vec![1.0]
    );
    assert_eq!(
        matching(&page, "kafka_connect_worker_task_count", &[]),
        vec![2.0]
    );
    assert_eq!(
        matching(
            &page,
            "kafka_connect_worker_connector_running_task_count",
            &c
        ),
        vec![2.0]
    );
    for zero in [
        "kafka_connect_task_error_metrics_total_record_errors",
        "kafka_connect_task_error_metrics_total_records_skipped",
        "kafka_connect_task_error_metrics_total_retries",
        "kafka_connect_task_error_metrics_deadletterqueue_produce_requests",
        "kafka_connect_sink_task_offset_commit_skip_total",
    ] {
        let values = matching(&page, zero, &c);
        assert_eq!(values, vec![0.0, 0.0], "{zero}: {page}");
    }
    // Every put and every offset-file write measured; the process measured at scrape.
    assert!(sum(&page, "ferry_sink_put_duration_seconds_count", &c) >= 2.0);
    assert!(sum(&page, "kafka_connect_sink_task_put_batch_max_time_ms", &c) > 0.0);
    assert!(sum(&page, "ferry_offset_file_write_duration_seconds_count", &[]) >= 1.0);
    assert!(sum(&page, "ferry_process_resident_memory_bytes", &[]) > 1e6);
    assert!(sum(&page, "ferry_process_cpu_seconds", &[]) > 0.0);

    promtool_accepts(&page);

    s.ferry.signal("TERM");
    let status = s.ferry.wait(GENEROUS);
    assert!(status.success(), "{status:?}: {}", s.ferry.log());
    let log = s.ferry.log();
    assert!(
        log.contains("Serving metrics at /metrics."),
        "the listener says where it serves: {log}"
    );
}

/// `promtool check metrics` parses the page; its only findings are on Connect's names.
fn promtool_accepts(page: &str) {
    const TEST: &str =
        "metrics::scraped_metrics_count_the_records_and_promtool_accepts_the_page (promtool part)";
    if !installed("promtool") {
        skip(
            TEST,
            "promtool is not installed (Debian package prometheus; tests/run.sh installs it)",
        );
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 1 is a parse error; 3 means lint findings only.
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 3)),
        "promtool could not parse the page ({code:?}): {text}\n{page}"
    );
    let unexpected: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !CONNECT_NAME_FINDINGS
                .iter()
                .any(|(name, finding)| *l == format!("{name} {finding}"))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "promtool findings on names that are not Connect's: {unexpected:#?}"
    );
    assert_eq!(
        code == Some(3),
        text.lines().any(|l| !l.trim().is_empty()),
        "{text}"
    );
}

/// A Prometheus server on a free loopback port, stopped by PID when dropped.
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, target: &str) -> Prometheus {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ferry\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of an instant query with one result, if it has one.
    fn query(&self, promql: &str) -> Option<f64> {
        let url = format!(
            "{}/api/v1/query?query={}",
            self.url,
            percent_encoding::utf8_percent_encode(promql, percent_encoding::NON_ALPHANUMERIC)
        );
        let (status, body) = curl("GET", &url, &[], None, 5);
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_prometheus_server_scrapes_ferry_and_answers_with_its_counts() {
    const TEST: &str = "metrics::a_prometheus_server_scrapes_ferry_and_answers_with_its_counts";
    if !installed("prometheus") {
        skip(
            TEST,
            "the Prometheus server is not installed (Debian package prometheus; tests/run.sh installs it)",
        );
        return;
    }
    let mut s = start(1, 25);
    assert!(
        wait_until(GENEROUS, || lines_of(&s.out).len() == s.produced.len()),
        "records did not arrive; log:\n{}",
        s.ferry.log()
    );
    let dir = tempfile::tempdir().unwrap();
    let prometheus = Prometheus::start(dir.path(), &format!("127.0.0.1:{}", s.port));
    let read =
        format!("sum(kafka_connect_sink_task_sink_record_read_total{{connector=\"{CONNECTOR}\"}})");
    let mut last = None;
    let scraped = wait_until(GENEROUS, || {
        last = prometheus.query(&read);
        last == Some(s.produced.len() as f64)
    });
    assert!(
        scraped,
        "Prometheus never reported {} records read (last answer {last:?}); its log:\n{}",
        s.produced.len(),
        prometheus.log()
    );
    assert_eq!(prometheus.query("up{job=\"ferry\"}"), Some(1.0));
    let running = format!(
        "kafka_connect_connector_task_status{{connector=\"{CONNECTOR}\",task=\"0\",status=\"running\"}}"
    );
    assert_eq!(prometheus.query(&running), Some(1.0));
    // A histogram Prometheus can compute a quantile from.
    let p99 = format!(
        "histogram_quantile(0.99, sum by (le) (ferry_sink_put_duration_seconds_bucket{{connector=\"{CONNECTOR}\"}}))"
    );
    let quantile = prometheus.query(&p99);
    assert!(
        quantile.is_some_and(|q| q > 0.0 && q <= 60.0),
        "{p99} = {quantile:?}"
    );
    drop(prometheus);
    s.ferry.signal("TERM");
    let status = s.ferry.wait(GENEROUS);
    assert!(status.success(), "{status:?}: {}", s.ferry.log());
}

#[test]
fn a_metrics_port_in_use_stops_the_start_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(1, 0);
    broker.create_topic(TOPIC, 1);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let listener = format!("http://127.0.0.1:{port}");
    let worker = worker_props(
        dir.path(),
        &broker.bootstrap,
        &[("ferry.metrics.listener", listener.as_str())],
    );
    let out = dir.path().join("out.txt");
    let connector = dir.path().join("c.properties");
    write_props(
        &connector,
        &[
            ("name", CONNECTOR),
            (
                "connector.class",
                "org.apache.kafka.connect.file.FileStreamSinkConnector",
            ),
            ("topics", TOPIC),
            ("file", out.to_str().unwrap()),
        ],
    );
    let mut ferry = Ferry::standalone(dir.path(), &worker, &[&connector]);
    let status = ferry.wait(GENEROUS);
    let log = ferry.log();
    assert_eq!(status.code(), Some(1), "{log}");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ferry.metrics.listener"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    let expected = format!(
        "{}:9: ferry.metrics.listener={listener}: cannot listen on 127.0.0.1:{port}: ",
        worker.display()
    );
    assert!(lines[0].contains(&expected), "{}", lines[0]);
    assert!(lines[0].contains("choose a free port"), "{}", lines[0]);
    assert!(!out.exists(), "no connector started");
    drop(taken);
}

#[test]
fn record_errors_skips_and_a_failed_task_show_in_the_metrics() {
    // Partition 0: JSON with 3 records that are not, skipped (errors.tolerance=all would
    // apply to both tasks, so the failing case is the next run). Partition 1: JSON only.
    let json = |p: i32, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{{\"p\":{p},\"n\":{i}}}")).collect()
    };
    let mut p0 = json(0, 7);
    for i in 0..3 {
        p0.insert(2 * i + 1, format!("not json {i}"));
    }
    let converter = [
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("value.converter.schemas.enable", "false"),
    ];
    let mut tolerant = converter.to_vec();
    tolerant.push(("errors.tolerance", "all"));
    let mut s = start_with(&[p0, json(1, 5)], &tolerant);
    assert!(
        wait_until(GENEROUS, || lines_of(&s.out).len() == 12),
        "valid records did not arrive; log:\n{}",
        s.ferry.log()
    );
    let c = [("connector", CONNECTOR)];
    let t0 = [("connector", CONNECTOR), ("task", "0")];
    let mut page = String::new();
    assert!(
        wait_until(GENEROUS, || {
            page = scrape(&s.metrics_url);
            sum(&page, "kafka_connect_sink_task_sink_record_send_total", &c) == 12.0
        }),
        "{page}"
    );
    assert_eq!(
        sum(&page, "kafka_connect_sink_task_sink_record_read_total", &c),
        15.0
    );
    for (name, want) in [
        ("kafka_connect_task_error_metrics_total_record_errors", 3.0),
        (
            "kafka_connect_task_error_metrics_total_records_skipped",
            3.0,
        ),
        ("kafka_connect_task_error_metrics_total_errors_logged", 3.0),
    ] {
        assert_eq!(matching(&page, name, &t0), vec![want], "{name}: {page}");
        assert_eq!(sum(&page, name, &c), want, "{name}: only task 0 saw errors");
    }
    assert!(
        matching(
            &page,
            "kafka_connect_task_error_metrics_last_error_timestamp",
            &t0
        )[0] > 1.6e12
    );
    s.ferry.signal("TERM");
    assert!(s.ferry.wait(GENEROUS).success());

    // errors.tolerance=none: the first bad record fails task 0; task 1 keeps running.
    let mut p0 = json(0, 3);
    p0.push("not json".into());
    let mut s = start_with(&[p0, json(1, 5)], &converter);
    let mut page = String::new();
    let c = [("connector", CONNECTOR)];
    let status = |page: &str, task: &str, status: &str| {
        matching(
            page,
            "kafka_connect_connector_task_status",
            &[("connector", CONNECTOR), ("task", task), ("status", status)],
        )
    };
    assert!(
        wait_until(GENEROUS, || {
            page = scrape(&s.metrics_url);
            // The herder counts the connector's tasks every 100 ms.
            status(&page, "0", "failed") == vec![1.0]
                && matching(
                    &page,
                    "kafka_connect_worker_connector_failed_task_count",
                    &c,
                ) == vec![1.0]
        }),
        "task 0 never reported failed; page:\n{page}\nlog:\n{}",
        s.ferry.log()
    );
    assert_eq!(status(&page, "0", "running"), vec![0.0], "{page}");
    assert_eq!(status(&page, "1", "running"), vec![1.0], "{page}");
    let connector = |status: &str| {
        matching(
            &page,
            "kafka_connect_connector_status",
            &[("connector", CONNECTOR), ("status", status)],
        )
    };
    assert_eq!(connector("running"), vec![1.0], "not every task failed");
    assert_eq!(
        matching(
            &page,
            "kafka_connect_worker_connector_failed_task_count",
            &c
        ),
        vec![1.0]
    );
    assert_eq!(
        matching(
            &page,
            "kafka_connect_task_error_metrics_total_record_errors",
            &t0
        ),
        vec![1.0]
    );
    s.ferry.signal("TERM");
    s.ferry.wait(GENEROUS);
}

#[test]
fn the_kerberos_tickets_remaining_life_is_a_gauge() {
    use common::kerberos::{CLIENT, SecureCluster};
    const TEST: &str = "metrics::the_kerberos_tickets_remaining_life_is_a_gauge";
    let life = Duration::from_secs(600);
    let Some(cluster) = SecureCluster::start(TEST, 1, life, None) else {
        return;
    };
    let dir = cluster.path();
    let port = free_port();
    let worker = cluster.ztf_worker(
        dir,
        &[],
        &format!("ferry.metrics.listener=http://127.0.0.1:{port}\n"),
    );
    let connector = dir.join("alerts.properties");
    write_props(
        &connector,
        &[
            ("name", "ztf-file"),
            ("connector.class", "FileStreamSink"),
            ("topics", "alerts"),
            ("file", dir.join("out.txt").to_str().unwrap()),
        ],
    );
    let mut ferry = Ferry::standalone(dir, &worker, &[&connector]);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let principal = [("principal", CLIENT)];
    let mut page = String::new();
    assert!(
        wait_until(GENEROUS, || {
            let (status, body) = curl("GET", &url, &[], None, 5);
            page = body;
            status == 200
                && !matching(
                    &page,
                    "ferry_kerberos_ticket_expires_in_seconds",
                    &principal,
                )
                .is_empty()
        }),
        "no ticket expiry on the page:\n{page}\nlog:\n{}",
        ferry.log()
    );
    let left = matching(
        &page,
        "ferry_kerberos_ticket_expires_in_seconds",
        &principal,
    )[0];
    // The KDC issues 600 s tickets; a few seconds have passed since the login.
    assert!(
        left > 500.0 && left <= life.as_secs_f64(),
        "{left}; page:\n{page}"
    );
    // Measured at each scrape: it counts down.
    std::thread::sleep(Duration::from_millis(2100));
    let later = matching(
        &scrape(&url),
        "ferry_kerberos_ticket_expires_in_seconds",
        &principal,
    )[0];
    assert!(later < left && later >= left - 10.0, "{left} then {later}");
    ferry.signal("TERM");
    assert!(ferry.wait(GENEROUS).success(), "{}", ferry.log());
}

#[test]
fn a_paused_partitions_lag_keeps_growing() {
    // Task 0 delivers and commits 3 records, then fails on a record that is not JSON: its
    // partition is paused, and the records produced after it show as lag.
    let json = |n: std::ops::Range<usize>| -> Vec<String> {
        n.map(|i| format!("{{\"n\":{i}}}")).collect()
    };
    let converter = [
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("value.converter.schemas.enable", "false"),
    ];
    let mut s = start_with(&[json(0..3), json(0..5)], &converter);
    let p0 = [("connector", CONNECTOR), ("partition", "0")];
    let t0 = [("connector", CONNECTOR), ("task", "0")];
    let mut page = String::new();
    assert!(
        wait_until(GENEROUS, || {
            page = scrape(&s.metrics_url);
            matching(&page, "ferry_consumer_lag", &p0) == vec![0.0]
        }),
        "{page}"
    );
    produce_lines(&s.broker.bootstrap, TOPIC, 0, &["not json".to_string()]);
    let failed = [
        ("connector", CONNECTOR),
        ("task", "0"),
        ("status", "failed"),
    ];
    assert!(
        wait_until(GENEROUS, || matching(
            &scrape(&s.metrics_url),
            "kafka_connect_connector_task_status",
            &failed
        ) == vec![1.0]),
        "task 0 did not fail; log:\n{}",
        s.ferry.log()
    );
    produce_lines(&s.broker.bootstrap, TOPIC, 0, &json(100..120));
    // The record that failed and the 20 after it, none committed.
    assert!(
        wait_until(GENEROUS, || {
            page = scrape(&s.metrics_url);
            matching(&page, "ferry_consumer_lag", &p0) == vec![21.0]
        }),
        "the paused partition's lag did not grow to 21; last page:\n{page}"
    );
    assert_eq!(
        matching(&page, "kafka_connect_sink_task_sink_record_lag_max", &t0),
        vec![21.0]
    );
    s.ferry.signal("TERM");
    s.ferry.wait(GENEROUS);
}
