//! ZTF alerts into BigQuery (the `local-bigquery` emulator), and the Avro decoder alone.
//!
//! Not a timed test: `cargo bench --bench bigquery` prints two tables (also written to
//! target/bench-bigquery.md). Every row runs in a child process of its own, so its peak
//! RSS (VmHWM from /proc, read by the process itself at exit) is its own:
//!
//! * the decoder alone, one thread: ferry's `AvroContainerConverter` (`ferry::convert`;
//!   the writer schema parsed once, then cached) against apache-avro's `Reader` reading
//!   each alert as the container file it is, parsing its 23 KB schema every time, as a
//!   plain Avro consumer does;
//! * end to end: a bare `insertAll` loader (reqwest; requests of at most 500 rows / 9 MB,
//!   one at a time; rows built before the clock starts, so: the emulator's own ceiling)
//!   against `ferry standalone --exit-at-end` reading the same alerts from the mock Kafka
//!   cluster and loading them with the BigQuery sink, decoded (tasks.max=1 and 4) and raw
//!   (tasks.max=1). Each mode has its own baseline, built with ferry's row encoding for
//!   that mode: a raw row (the alert as base64) costs the emulator half a decoded one.
//!
//! Every end-to-end run is checked by counting its table's rows afterwards, and fails if
//! the count differs. Needs the emulator (tests/bigquery-emulator, installed on first use;
//! Python ≥ 3.13): where it cannot run, the decoder table is printed, then the reason, and
//! the bench exits 0.
//!
//! The emulator (DuckDB behind Python) takes ~170 decoded or ~400 raw rows/s of these
//! alerts, so the end-to-end rows use fewer alerts than the decoder rows, to stay within
//! ~5 minutes in all.
//! `FERRY_BENCH_REPEATS` (3), `FERRY_BENCH_COUNT` (end to end, 1 560),
//! `FERRY_BENCH_DECODE_COUNT` (5 200), `FERRY_BENCH_WORKER_EXTRA`,
//! `FERRY_BENCH_CONNECTOR_EXTRA` (`k=v;k=v`), `FERRY_BENCH_LOG` (ferry's `RUST_LOG`),
//! `FERRY_BENCH_VERBOSE` (print ferry's every log line) and `-- --quick` vary the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry::convert::{Converter, Decoder};
use ferry_connector_api::{SinkRecord, Value};
use ferry_mock_broker::MockBroker;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value as Json, json};

const PROJECT: &str = "test";
const DATASET: &str = "bench";
const KAFKA_TOPIC: &str = "ztf_bench";
const AVRO_CONVERTER: &str = "ferry.converters.AvroContainerConverter";
/// A first install takes 35–50 s on 2 cores.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Start to the REST API answering: 3–5 s measured, more on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The mock cluster keeps ~5 MB per partition: 40 alerts of ~70 KB is 2.8 MB.
const ALERTS_PER_PARTITION: usize = 40;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mb() -> f64 {
    ferry::telemetry::peak_rss_kb().unwrap_or(0) as f64 / 1024.0
}

fn cpu_seconds() -> f64 {
    ferry::telemetry::cpu_seconds().unwrap_or(0.0)
}

/// User + system CPU seconds of process `pid` so far (`/proc/PID/stat`, 100 ticks/s).
fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime, the 14th and 15th fields of the line.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One configuration's run.
#[derive(Debug, Clone)]
struct Run {
    label: String,
    records: u64,
    secs: f64,
    peak_rss_mb: f64,
    /// CPU time of the measured process over the timed part (ferry: its whole life).
    cpu_seconds: f64,
    /// Share of the machine's CPU time busy during the run (every process).
    machine_busy: f64,
    /// CPU seconds the emulator spent during the run (table calls and the count included).
    emulator_cpu: f64,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.records as f64 / self.secs.max(1e-9)
    }

    /// From a child's last stdout line: `{"records","secs","peak_rss_mb","cpu_seconds"}`.
    fn from_child(label: &str, v: &Json) -> Run {
        Run {
            label: label.into(),
            records: v["records"].as_u64().unwrap(),
            secs: v["secs"].as_f64().unwrap(),
            peak_rss_mb: v["peak_rss_mb"].as_f64().unwrap(),
            cpu_seconds: v["cpu_seconds"].as_f64().unwrap(),
            machine_busy: 0.0,
            emulator_cpu: 0.0,
        }
    }
}

/// Runs `run` and notes how busy the machine, and the emulator (`emulator`, a PID), were
/// meanwhile.
fn measured(emulator: Option<u32>, run: impl FnOnce() -> Run) -> Run {
    let (busy0, total0) = common::machine_cpu();
    let emulator0 = emulator.map_or(0.0, process_cpu_seconds);
    let mut r = run();
    let (busy1, total1) = common::machine_cpu();
    r.machine_busy = (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64;
    r.emulator_cpu = emulator.map_or(0.0, process_cpu_seconds) - emulator0;
    r
}

/// This bench again as a child in `role`, its stdout's last line parsed as JSON.
fn child(role: &str, envs: &[(&str, String)]) -> Json {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("FERRY_BENCH_ROLE", role)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{role} failed: {}", out.status);
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{role} printed no result ({e}): {text}"))
}

fn child_result(records: usize, secs: f64, cpu_seconds: f64) {
    println!(
        "{}",
        json!({"records": records, "secs": secs, "peak_rss_mb": peak_rss_mb(), "cpu_seconds": cpu_seconds})
    );
}

fn record(value: &[u8]) -> SinkRecord {
    SinkRecord {
        topic: KAFKA_TOPIC.into(),
        original_topic: None,
        partition: 0,
        offset: 0,
        timestamp: None,
        key: None,
        value: Some(Value::Bytes(Bytes::copy_from_slice(value))),
        headers: Vec::new(),
    }
}

fn avro_decoder() -> Decoder {
    let avro = Converter::parse(AVRO_CONVERTER, &BTreeMap::new()).unwrap();
    Decoder::new(Converter::ByteArray, avro)
}

/// Child role `decode`: `FERRY_BENCH_COUNT` alerts through one decoder, one thread.
fn decode_child() {
    let n: usize = env_or("FERRY_BENCH_COUNT", 0);
    let (alerts, _) = ferry_mock_broker::ztf::bench_alerts(0).unwrap();
    let which = std::env::var("FERRY_BENCH_DECODER").unwrap();
    let (start, cpu0);
    match which.as_str() {
        "ferry" => {
            let mut decoder = avro_decoder();
            let records: Vec<SinkRecord> = alerts.iter().map(|a| record(a)).collect();
            (start, cpu0) = (Instant::now(), cpu_seconds());
            for i in 0..n {
                let mut r = records[i % records.len()].clone();
                decoder.decode(&mut r).unwrap();
                // Decoded for real, not passed through as bytes.
                assert!(r.value.as_ref().and_then(Value::structured).is_some());
                std::hint::black_box(&r);
            }
        }
        "apache-avro" => {
            (start, cpu0) = (Instant::now(), cpu_seconds());
            let mut values = 0;
            for i in 0..n {
                let reader = apache_avro::Reader::new(&alerts[i % alerts.len()][..]).unwrap();
                for v in reader {
                    std::hint::black_box(v.unwrap());
                    values += 1;
                }
            }
            assert_eq!(values, n, "one record per alert");
        }
        other => panic!("unknown decoder {other}"),
    }
    child_result(n, start.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
}

fn run_decoder(which: &str, n: usize) -> Run {
    let label = match which {
        "ferry" => "ferry `AvroContainerConverter` (schema parsed once, cached)",
        _ => "apache-avro `Reader` per alert (schema parsed every time)",
    };
    let v = child(
        "decode",
        &[
            ("FERRY_BENCH_DECODER", which.into()),
            ("FERRY_BENCH_COUNT", n.to_string()),
        ],
    );
    Run::from_child(label, &v)
}

/// `curl` to the emulator: the HTTP status and the JSON body (Null if none).
fn api(rest: &str, method: &str, path: &str, body: Option<&Json>) -> (u16, Json) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-m",
        "120",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ]);
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "--data-binary"])
            .arg(b.to_string());
    }
    let out = cmd
        .arg(format!("{rest}/bigquery/v2/projects/{PROJECT}{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Json::Null),
    )
}

/// The table's row count by a query, as a user would check it.
fn rows_in(rest: &str, table: &str) -> u64 {
    let query = format!("SELECT COUNT(*) FROM `{PROJECT}.{DATASET}.{table}`");
    let (code, v) = api(
        rest,
        "POST",
        "/queries",
        Some(&json!({"query": query, "useLegacySql": false, "timeoutMs": 60000})),
    );
    assert!(
        code == 200 && v["jobComplete"] == true,
        "{query}: {code} {v}"
    );
    v["rows"][0]["f"][0]["v"].as_str().unwrap().parse().unwrap()
}

/// Fails loudly unless `table` holds exactly `count` rows; then drops it, so every run
/// meets an emulator in the same state.
fn check_and_drop(rest: &str, table: &str, count: usize) {
    let rows = rows_in(rest, table);
    assert_eq!(
        rows, count as u64,
        "{PROJECT}.{DATASET}.{table} holds {rows} rows, {count} were loaded"
    );
    let (code, v) = api(
        rest,
        "DELETE",
        &format!("/datasets/{DATASET}/tables/{table}"),
        None,
    );
    assert!(matches!(code, 200 | 204), "delete {table}: {code} {v}");
}

/// The emulator in its own process group, stopped by PID when dropped.
struct Emulator {
    child: Child,
    rest: String,
    /// The Storage Write API (gRPC).
    grpc: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The `SKIP: …` line install.sh printed before exit 3.
fn skip_reason(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .find(|l| l.starts_with("SKIP:"))
        .unwrap_or("SKIP: the BigQuery emulator cannot run here (exit 3)")
        .to_string()
}

/// Waits for `child` up to `timeout`; kills it (by PID) and panics after that.
fn wait_within(child: &mut Child, timeout: Duration, what: &str) -> std::process::ExitStatus {
    let end = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?} (killed)");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Installs (if needed) and starts the emulator on free ports. `Err` is install.sh's
/// `SKIP: …` reason (exit 3: no Python ≥ 3.13 here); any other failure panics with the log.
fn start_emulator() -> Result<Emulator, String> {
    let dir = tempfile::tempdir().unwrap();
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bigquery-emulator");
    // Installing first, under its own bound, keeps READY_TIMEOUT about starting only.
    let install_log = dir.path().join("install.log");
    let mut install = Command::new(scripts.join("install.sh"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&install_log).unwrap())
        .spawn()
        .expect("run tests/bigquery-emulator/install.sh");
    match wait_within(&mut install, INSTALL_TIMEOUT, "install.sh").code() {
        Some(0) => {}
        Some(3) => return Err(skip_reason(&install_log)),
        code => panic!("install.sh failed ({code:?}):\n{}", tail(&install_log, 40)),
    }
    let ports: Vec<u16> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let log = dir.path().join("emulator.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(scripts.join("serve.sh"))
        .args(["127.0.0.1", &ports[0].to_string(), &ports[1].to_string()])
        .arg(dir.path().join("data"))
        .env("FERRY_BQ_PROJECT", PROJECT)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        // Its own group, so that stopping it by PID also stops anything it started.
        .process_group(0)
        .spawn()
        .expect("run tests/bigquery-emulator/serve.sh");
    let mut emulator = Emulator {
        child,
        rest: format!("http://127.0.0.1:{}", ports[0]),
        grpc: format!("http://127.0.0.1:{}", ports[1]),
        log,
        _dir: dir,
    };
    let end = Instant::now() + READY_TIMEOUT;
    while api(&emulator.rest, "GET", "/datasets", None).0 != 200 {
        if let Ok(Some(status)) = emulator.child.try_wait() {
            if status.code() == Some(3) {
                return Err(skip_reason(&emulator.log));
            }
            panic!(
                "the BigQuery emulator exited ({status}) before answering:\n{}",
                tail(&emulator.log, 40)
            );
        }
        assert!(
            Instant::now() < end,
            "the BigQuery emulator did not answer within {READY_TIMEOUT:?}:\n{}",
            tail(&emulator.log, 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(emulator)
}

/// Child role `bare-loader`: builds every row first (ferry's row encoding for
/// `FERRY_BENCH_MODE`, so the same bytes go over the wire), creates the table, then times
/// insertAll requests of at most 500 rows / 9 MB, one at a time, as one ferry task sends
/// them.
fn bare_loader() {
    use ferry_connector_bigquery::{raw, rows::row, schema};
    let rest = std::env::var("FERRY_BENCH_REST").unwrap();
    let table = std::env::var("FERRY_BENCH_TABLE").unwrap();
    let count: usize = env_or("FERRY_BENCH_COUNT", 0);
    let raw_mode = std::env::var("FERRY_BENCH_MODE").as_deref() == Ok("raw");
    let (alerts, _) = ferry_mock_broker::ztf::bench_alerts(0).unwrap();
    let mut decoder = avro_decoder();
    let mut fields = if raw_mode {
        raw::table_fields()
    } else {
        Vec::new()
    };
    let mut rows: Vec<String> = Vec::with_capacity(count);
    let now_ms = jiff::Timestamp::now().as_millisecond();
    for i in 0..count {
        let mut r = record(&alerts[i % alerts.len()]);
        let json = if raw_mode {
            // What the mock cluster hands ferry: a producer's timestamp and an offset.
            r.offset = i as i64;
            r.timestamp = Some((now_ms, ferry_connector_api::TimestampType::CreateTime));
            raw::row(&r).unwrap()
        } else {
            decoder.decode(&mut r).unwrap();
            let s = r.value.as_ref().unwrap().structured().unwrap();
            let avro = s.schema.as_ref().unwrap();
            if i < alerts.len() {
                // The alerts span schema versions (3.2 lacks two columns of 3.3): the
                // first alert's columns, plus the others' as NULLABLE, as ferry's table
                // ends up.
                let wanted = schema::table_fields(avro, false).unwrap();
                fields = if i == 0 {
                    wanted
                } else {
                    schema::with_new_columns(&fields, &wanted)
                };
            }
            row(avro, &s.data).unwrap()
        };
        rows.push(json!({"insertId": format!("{KAFKA_TOPIC}-0-{i}"), "json": json}).to_string());
    }
    let (code, v) = api(
        &rest,
        "POST",
        &format!("/datasets/{DATASET}/tables"),
        Some(&json!({
            "tableReference": {"projectId": PROJECT, "datasetId": DATASET, "tableId": table},
            "schema": {"fields": fields},
        })),
    );
    assert_eq!(code, 200, "create {table}: {v}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!(
        "{rest}/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables/{table}/insertAll"
    );
    let (start, cpu0) = (Instant::now(), cpu_seconds());
    runtime.block_on(async {
        let mut i = 0;
        while i < rows.len() {
            let mut body =
                String::from(r#"{"skipInvalidRows":false,"ignoreUnknownValues":false,"rows":["#);
            let first = i;
            while i < rows.len() && i - first < 500 && body.len() + rows[i].len() < 9 << 20 {
                if i > first {
                    body.push(',');
                }
                body.push_str(&rows[i]);
                i += 1;
            }
            body.push_str("]}");
            let answer = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let text = answer.text().await.unwrap();
            assert!(
                status.is_success() && !text.contains("insertErrors"),
                "insertAll: {status} {text}"
            );
        }
    });
    child_result(count, start.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
}

/// What every end-to-end run shares.
struct Setup {
    bootstrap: String,
    rest: String,
    grpc: String,
    count: usize,
    dir: tempfile::TempDir,
}

fn run_bare(s: &Setup, count: usize, mode: &str, table: &str) -> Run {
    let v = child(
        "bare-loader",
        &[
            ("FERRY_BENCH_REST", s.rest.clone()),
            ("FERRY_BENCH_TABLE", table.into()),
            ("FERRY_BENCH_COUNT", count.to_string()),
            ("FERRY_BENCH_MODE", mode.into()),
        ],
    );
    check_and_drop(&s.rest, table, count);
    Run::from_child(
        &format!("bare insertAll loader, {mode} rows pre-built (the emulator's ceiling)"),
        &v,
    )
}

fn log_ms(v: &Json) -> f64 {
    let ts: jiff::Timestamp = v["timestamp"].as_str().unwrap().parse().unwrap();
    ts.as_millisecond() as f64
}

/// ferry from the mock cluster into table `table`; timed from its first record (its own
/// `first_record_ms`) to "Connector stopped." (after the last insertAll and commit).
/// How ferry writes: `tabledata.insertAll`, or the Storage Write API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writes {
    InsertAll,
    StorageWrite,
}

fn run_ferry(s: &Setup, tasks: usize, mode: &str, writes: Writes, table: &str) -> Run {
    let worker = common::worker_file(s.dir.path(), &s.bootstrap, table);
    // The emulator takes seconds for one request of ZTF rows (it decodes them in Python):
    // the defaults (5 s to flush, 5 s to stop) are meant for a real BigQuery.
    let mut text = std::fs::read_to_string(&worker).unwrap();
    text.push_str("\noffset.flush.timeout.ms=60000\ntask.shutdown.graceful.timeout.ms=120000\n");
    std::fs::write(&worker, text).unwrap();
    let connector = s.dir.path().join(format!("{table}.properties"));
    let decoded = if mode == "decoded" {
        // allowNewBigQueryFields: one of the 52 alerts is ZTF schema 3.2, two columns short
        // of 3.3; whichever task creates the table first decides its columns.
        format!("value.converter={AVRO_CONVERTER}\nallowNewBigQueryFields=true\n")
    } else {
        String::new()
    };
    let storage = match writes {
        Writes::InsertAll => String::new(),
        Writes::StorageWrite => format!(
            "useStorageWriteApi=true\nferry.bigquery.storage.endpoint={}\n",
            s.grpc
        ),
    };
    std::fs::write(
        &connector,
        format!(
            "name={table}\nconnector.class=bigquery\ntasks.max={tasks}\ntopics={KAFKA_TOPIC}\nproject={PROJECT}\ndefaultDataset={DATASET}\nferry.bigquery.endpoint={}\nferry.bigquery.emulator=true\nferry.bigquery.mode={mode}\ntopic2TableMap={KAFKA_TOPIC}:{table}\ntimePartitioningType=NONE\n{decoded}{storage}{}\n",
            s.rest,
            // Extra connector lines for experiments, e.g. "errors.tolerance=all".
            std::env::var("FERRY_BENCH_CONNECTOR_EXTRA")
                .unwrap_or_default()
                .replace(';', "\n")
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--log-format", "json", "standalone", "--exit-at-end"])
        .arg(&worker)
        .arg(&connector)
        .env(
            "RUST_LOG",
            std::env::var("FERRY_BENCH_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // Far beyond a healthy run, which loads 100–400 alerts/s.
    let deadline =
        Instant::now() + Duration::from_secs(120) + Duration::from_millis(100) * s.count as u32;
    let (mut stopped, mut exited) = (None::<Json>, None::<Json>);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ferry ({table}) did not finish within its deadline (killed)");
            }
        };
        let Ok(v) = serde_json::from_str::<Json>(&line) else {
            continue;
        };
        match v["message"].as_str() {
            Some("Connector stopped.") => stopped = Some(v),
            Some("ferry stopped.") => exited = Some(v),
            _ if v["level"] == "ERROR"
                || v["level"] == "WARN"
                || std::env::var_os("FERRY_BENCH_VERBOSE").is_some() =>
            {
                eprintln!("ferry: {line}")
            }
            _ => {}
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "ferry ({table}) exited {status}");
    let (stopped, exited) = (stopped.unwrap(), exited.unwrap());
    assert_eq!(stopped["failed_tasks"], 0, "ferry ({table}): {stopped}");
    let records = stopped["records"].as_u64().unwrap();
    assert_eq!(records, s.count as u64, "ferry ({table}) delivered");
    check_and_drop(&s.rest, table, s.count);
    let first = stopped["first_record_ms"].as_f64().unwrap();
    Run {
        label: format!(
            "ferry: mock Kafka → BigQuery sink, {mode}, tasks.max={tasks}, {}",
            match writes {
                Writes::InsertAll => "insertAll",
                Writes::StorageWrite => "Storage Write API",
            }
        ),
        records,
        secs: (log_ms(&stopped) - first).max(1.0) / 1000.0,
        peak_rss_mb: exited["peak_rss_mb"].as_str().unwrap().parse().unwrap(),
        cpu_seconds: exited["cpu_seconds"].as_str().unwrap().parse().unwrap(),
        machine_busy: 0.0,
        emulator_cpu: 0.0,
    }
}

/// `samples[round][column]` as markdown rows: median rate, ratio to the median rate of
/// column `bases[column]`, max peak RSS, median CPU per alert, median machine busy share
/// and, `with_emulator`, the emulator's CPU per alert and how busy that kept it at the
/// measured rate.
fn rows_of(samples: &[Vec<Run>], bases: &[usize], with_emulator: bool, report: &mut String) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let col =
        |c: usize, f: &dyn Fn(&Run) -> f64| median(samples.iter().map(|r| f(&r[c])).collect());
    for c in 0..samples[0].len() {
        let rate = col(c, &Run::per_sec);
        let base = col(bases[c], &Run::per_sec);
        let rss = samples.iter().map(|r| r[c].peak_rss_mb).fold(0.0, f64::max);
        let cpu = col(c, &|r| r.cpu_seconds * 1e3 / r.records as f64);
        let busy = col(c, &|r| r.machine_busy * 100.0);
        let emulator = if with_emulator {
            let per_alert = col(c, &|r| r.emulator_cpu * 1e3 / r.records as f64);
            format!(" {per_alert:.2} ms | {:.0} % |", per_alert * rate / 10.0)
        } else {
            String::new()
        };
        let _ = writeln!(
            report,
            "| {} | {rate:.0} | {:.2} | {rss:.1} MB | {cpu:.2} ms | {busy:.0} % |{emulator}",
            samples[0][c].label,
            rate / base
        );
    }
}

fn print_round(round: usize, runs: &[Run]) {
    for r in runs {
        eprintln!(
            "  round {round}: {:<62} {:>7.0} alerts/s, {:>6.1} s, peak {:.1} MB, CPU {:.2} s, machine {:.0} % busy, emulator CPU {:.1} s",
            r.label,
            r.per_sec(),
            r.secs,
            r.peak_rss_mb,
            r.cpu_seconds,
            r.machine_busy * 100.0,
            r.emulator_cpu
        );
    }
}

/// The alerts round-robin over the topic's partitions of an in-process mock cluster.
fn produce(broker: &MockBroker, alerts: &[Vec<u8>], count: usize) {
    let partitions = count.div_ceil(ALERTS_PER_PARTITION).max(8);
    broker.create_topic(KAFKA_TOPIC, partitions as i32).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "20")
        .create()
        .unwrap();
    for i in 0..count {
        let record = BaseRecord::<(), [u8]>::to(KAFKA_TOPIC)
            .payload(&alerts[i % alerts.len()])
            .partition((i % partitions) as i32);
        producer.send(record).map_err(|(e, _)| e).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(300)).unwrap();
}

fn main() {
    match std::env::var("FERRY_BENCH_ROLE").as_deref() {
        Ok("decode") => return decode_child(),
        Ok("bare-loader") => return bare_loader(),
        _ => {}
    }
    let started = Instant::now();
    let quick = std::env::args().any(|a| a == "--quick");
    let count: usize = env_or("FERRY_BENCH_COUNT", if quick { 208 } else { 1560 });
    let decode_count: usize = env_or("FERRY_BENCH_DECODE_COUNT", if quick { 1040 } else { 5200 });
    let repeats: usize = env_or("FERRY_BENCH_REPEATS", if quick { 1 } else { 3 }).max(1);
    // Every alert is decoded into one table: without the optional set, the real alerts of
    // tests/data/ztf alone (one schema), no synthetic ones.
    let (alerts, kind) = ferry_mock_broker::ztf::bench_alerts(0).unwrap();
    println!("ZTF alerts: {kind}");
    let avg = alerts.iter().map(Vec::len).sum::<usize>() / alerts.len();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load_before = loadavg();

    let mut report = String::new();
    let mut samples: Vec<Vec<Run>> = Vec::new();
    for round in 0..repeats {
        let runs = vec![
            measured(None, || run_decoder("apache-avro", decode_count)),
            measured(None, || run_decoder("ferry", decode_count)),
        ];
        print_round(round, &runs);
        samples.push(runs);
    }
    let _ = writeln!(
        report,
        "{decode_count} ZTF alerts (~{} KB each, cycling {} distinct: {kind}) decoded on one thread, {repeats} rounds:\n\n| decoder | alerts/s (median) | ratio vs apache-avro Reader | peak RSS (max) | CPU per alert (median) | machine CPU busy (median) |\n|---|---:|---:|---:|---:|---:|",
        avg / 1000,
        alerts.len()
    );
    rows_of(&samples, &[0, 0], false, &mut report);
    println!("\n{report}");

    let emulator = match start_emulator() {
        Ok(e) => e,
        Err(reason) => {
            println!("benches/bigquery: end-to-end rows not run. {reason}");
            return;
        }
    };
    let rest = emulator.rest.clone();
    let (code, v) = api(
        &rest,
        "POST",
        "/datasets",
        Some(&json!({"datasetReference": {"projectId": PROJECT, "datasetId": DATASET}})),
    );
    assert_eq!(code, 200, "create dataset: {v}");
    let broker = MockBroker::start(1).unwrap();
    produce(&broker, &alerts, count);
    let setup = Setup {
        bootstrap: broker.bootstrap(),
        rest,
        grpc: emulator.grpc.clone(),
        count,
        dir: tempfile::tempdir().unwrap(),
    };
    // The emulator's first requests are slower (Python and DuckDB warming up): one short,
    // unrecorded load first, so that the baseline of round 0 is not the one that pays.
    let warm = run_bare(&setup, alerts.len() * 2, "decoded", "warm_up");
    eprintln!("  warm-up: {:.0} alerts/s", warm.per_sec());
    let mut samples: Vec<Vec<Run>> = Vec::new();
    for round in 0..repeats {
        let pid = Some(emulator.child.id());
        let mut runs = Vec::new();
        // Each mode's baseline first: columns 0 and 4 for `rows_of`.
        use Writes::{InsertAll, StorageWrite};
        for (i, (tasks, mode, writes)) in [
            (0, "decoded", InsertAll),
            (1, "decoded", InsertAll),
            (4, "decoded", InsertAll),
            (1, "decoded", StorageWrite),
            (0, "raw", InsertAll),
            (1, "raw", InsertAll),
            (1, "raw", StorageWrite),
        ]
        .into_iter()
        .enumerate()
        {
            let table = format!("{mode}_{i}_{round}");
            runs.push(measured(pid, || match tasks {
                0 => run_bare(&setup, count, mode, &table),
                _ => run_ferry(&setup, tasks, mode, writes, &table),
            }));
        }
        print_round(round, &runs);
        samples.push(runs);
    }
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{count} ZTF alerts (cycling {kind}) over {} partitions into the local-bigquery emulator, {repeats} rounds (every run's table counted afterwards):\n\n| loader | alerts/s (median) | ratio vs bare loader, same mode | peak RSS (max) | CPU per alert (median) | machine CPU busy (median) | emulator CPU per alert (median) | emulator busy at that rate (% of one core) |\n|---|---:|---:|---:|---:|---:|---:|---:|",
        count.div_ceil(ALERTS_PER_PARTITION).max(8)
    );
    rows_of(&samples, &[0, 0, 0, 0, 4, 4, 4], true, &mut table);
    let _ = writeln!(
        table,
        "\nCPU per alert: ferry's whole process (start-up included), the bare loader's timed part only. The emulator's busy share is its CPU per alert times the rate, in % of one core: one Python process, whose DuckDB threads can take it past 100 %; table creation and the count are in it too. The bare loader's RSS holds every pre-built row.\n\nMachine: {cores} cores, load average {load_before} before, {} after; {:.0} s in all.",
        loadavg(),
        started.elapsed().as_secs_f64()
    );
    println!("{table}");
    report.push('\n');
    report.push_str(&table);
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-bigquery.md"),
        &report,
    );
    drop(broker);
    drop(emulator);
}
