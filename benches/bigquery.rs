//! ZTF alerts into BigQuery (the `local-bigquery` emulator), and the Avro decoder alone.
//!
//! Not a timed test: `cargo bench --bench bigquery` prints a table (also written to
//! target/bench-bigquery.md). Rows:
//!
//! * the decoder alone, one core: ferry's `AvroContainerConverter` (writer schema parsed
//!   once and cached) against apache-avro's `Reader` reading each alert as a file of its
//!   own (parsing the schema every time, as a plain Avro consumer does);
//! * end to end: a bare `insertAll` loader posting pre-built rows of the same alerts (the
//!   emulator's own ceiling: no Kafka, no decoding, rows ready before the clock starts)
//!   against `ferry` reading the alerts from the mock Kafka cluster, decoding them and
//!   loading them with the BigQuery sink, decoded and raw.
//!
//! Needs the emulator (tests/bigquery-emulator; installed on first use, Python ≥ 3.13);
//! says so and stops without it. Every end-to-end run is checked by counting the table's
//! rows afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The emulator, stopped by PID when dropped.
struct Emulator {
    child: Child,
    rest: String,
    _dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(method: &str, url: &str, body: Option<&Json>) -> (u16, Json) {
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
    let out = cmd.arg(url).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Json::Null),
    )
}

/// Starts the emulator, or None (with the reason printed) when it cannot run here.
fn start_emulator() -> Option<Emulator> {
    let dir = tempfile::tempdir().unwrap();
    let (port, grpc) = (free_port(), free_port());
    let serve = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bigquery-emulator/serve.sh");
    let mut child = Command::new(serve)
        .args(["127.0.0.1", &port.to_string(), &grpc.to_string()])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rest = format!("http://127.0.0.1:{port}");
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            println!(
                "benches/bigquery: the emulator did not start ({status}): {}",
                err.lines().last().unwrap_or_default()
            );
            return None;
        }
        let (code, _) = curl(
            "GET",
            &format!("{rest}/bigquery/v2/projects/{PROJECT}/datasets"),
            None,
        );
        if code == 200 {
            // Its log goes nowhere from here on (the pipe is dropped unread otherwise).
            drop(child.stderr.take());
            return Some(Emulator {
                child,
                rest,
                _dir: dir,
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the BigQuery emulator did not answer within 120 s");
}

fn rows_in(rest: &str, table: &str) -> u64 {
    let (code, v) = curl(
        "POST",
        &format!("{rest}/bigquery/v2/projects/{PROJECT}/queries"),
        Some(
            &json!({"query": format!("SELECT COUNT(*) AS n FROM `{PROJECT}.{DATASET}.{table}`"), "useLegacySql": false, "timeoutMs": 60000}),
        ),
    );
    assert_eq!(code, 200, "count {table}: {v}");
    v["rows"][0]["f"][0]["v"].as_str().unwrap().parse().unwrap()
}

#[derive(Debug, Clone)]
struct Run {
    label: String,
    records: u64,
    secs: f64,
    peak_rss_mb: f64,
    cpu_seconds: f64,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.records as f64 / self.secs.max(1e-9)
    }
}

fn record(value: &[u8]) -> SinkRecord {
    SinkRecord {
        topic: "t".into(),
        partition: 0,
        offset: 0,
        timestamp: None,
        key: None,
        value: Some(Value::Bytes(Bytes::copy_from_slice(value))),
        headers: Vec::new(),
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Decoding alone, one core: ferry's decoder vs apache-avro's Reader per alert.
fn decoders(alerts: &[Vec<u8>], n: usize) -> (Run, Run) {
    let avro = Converter::parse(
        "ferry.converters.AvroContainerConverter",
        &Default::default(),
    )
    .unwrap();
    let mut decoder = Decoder::new(Converter::ByteArray, avro);
    let records: Vec<SinkRecord> = alerts.iter().map(|a| record(a)).collect();
    let start = Instant::now();
    for i in 0..n {
        let mut r = records[i % records.len()].clone();
        decoder.decode(&mut r).unwrap();
        std::hint::black_box(&r);
    }
    let ferry = Run {
        label: "ferry AvroContainerConverter (schema cached)".into(),
        records: n as u64,
        secs: start.elapsed().as_secs_f64(),
        peak_rss_mb: 0.0,
        cpu_seconds: 0.0,
    };
    let start = Instant::now();
    for i in 0..n {
        let reader = apache_avro::Reader::new(&alerts[i % alerts.len()][..]).unwrap();
        for v in reader {
            std::hint::black_box(v.unwrap());
        }
    }
    let naive = Run {
        label: "apache-avro Reader per alert (schema parsed each time)".into(),
        records: n as u64,
        secs: start.elapsed().as_secs_f64(),
        peak_rss_mb: 0.0,
        cpu_seconds: 0.0,
    };
    (ferry, naive)
}

/// The bare loader, in a child process (for its own peak RSS): rows built from the
/// alerts before the clock starts, then insertAll requests of at most 500 rows / 9 MB,
/// one at a time, as one ferry task sends them.
fn bare_loader() {
    let rest = std::env::var("FERRY_BENCH_REST").unwrap();
    let table = std::env::var("FERRY_BENCH_TABLE").unwrap();
    let count: usize = std::env::var("FERRY_BENCH_COUNT").unwrap().parse().unwrap();
    let (alerts, _) = ferry_mock_broker::ztf::alerts().unwrap();
    let avro = Converter::parse(
        "ferry.converters.AvroContainerConverter",
        &Default::default(),
    )
    .unwrap();
    let mut decoder = Decoder::new(Converter::ByteArray, avro);
    let mut rows: Vec<String> = Vec::with_capacity(count);
    let mut fields = None;
    for i in 0..count {
        let mut r = record(&alerts[i % alerts.len()]);
        decoder.decode(&mut r).unwrap();
        let s = r.value.as_ref().unwrap().structured().unwrap();
        let schema = s.schema.as_ref().unwrap();
        if fields.is_none() {
            fields = Some(ferry_connector_bigquery::schema::table_fields(schema, false).unwrap());
        }
        let row = ferry_connector_bigquery::rows::row(schema, &s.data).unwrap();
        rows.push(json!({"insertId": format!("bare-{i}"), "json": row}).to_string());
    }
    let (code, v) = curl(
        "POST",
        &format!("{rest}/bigquery/v2/projects/{PROJECT}/datasets/{DATASET}/tables"),
        Some(&json!({
            "tableReference": {"projectId": PROJECT, "datasetId": DATASET, "tableId": table},
            "schema": {"fields": fields.unwrap()},
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
    let start = Instant::now();
    runtime.block_on(async {
        let mut i = 0;
        while i < rows.len() {
            let mut body = String::from("{\"skipInvalidRows\":false,\"rows\":[");
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
            assert!(
                answer.status().is_success(),
                "insertAll: {}",
                answer.status()
            );
            let text = answer.text().await.unwrap();
            assert!(!text.contains("insertErrors"), "{text}");
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"records": count, "secs": secs, "peak_rss_mb": peak_rss_mb()})
    );
}

fn run_bare(rest: &str, count: usize, table: &str) -> Run {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("FERRY_BENCH_ROLE", "bare-loader")
        .env("FERRY_BENCH_REST", rest)
        .env("FERRY_BENCH_TABLE", table)
        .env("FERRY_BENCH_COUNT", count.to_string())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows_in(rest, table), count as u64, "bare loader rows");
    Run {
        label: "bare insertAll loader, rows pre-built (the emulator's ceiling)".into(),
        records: count as u64,
        secs: v["secs"].as_f64().unwrap(),
        peak_rss_mb: v["peak_rss_mb"].as_f64().unwrap(),
        cpu_seconds: 0.0,
    }
}

#[allow(clippy::too_many_arguments)]
fn run_ferry(
    bootstrap: &str,
    rest: &str,
    count: usize,
    tasks: usize,
    mode: &str,
    table: &str,
    dir: &Path,
    id: usize,
) -> Run {
    let worker = common::worker_file(dir, bootstrap, &id.to_string());
    let connector = dir.join(format!("bigquery-{id}.properties"));
    let converter = if mode == "decoded" {
        "value.converter=ferry.converters.AvroContainerConverter\n"
    } else {
        ""
    };
    std::fs::write(
        &connector,
        format!(
            "name=bench-{id}\nconnector.class=bigquery\ntasks.max={tasks}\ntopics={KAFKA_TOPIC}\nproject={PROJECT}\ndefaultDataset={DATASET}\nferry.bigquery.endpoint={rest}\nferry.bigquery.emulator=true\nferry.bigquery.mode={mode}\ntopic2TableMap={KAFKA_TOPIC}:{table}\ntimePartitioningType=NONE\n{converter}"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--log-format", "json", "standalone", "--exit-at-end"])
        .arg(&worker)
        .arg(&connector)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let launched = now_ms();
    let (mut records, mut first_ms, mut stopped_ms, mut rss, mut cpu) = (0, 0, 0, 0.0, 0.0);
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let Ok(v) = serde_json::from_str::<Json>(&line) else {
            continue;
        };
        match v["message"].as_str() {
            Some("Connector stopped.") => {
                records = v["records"].as_u64().unwrap();
                first_ms = v["first_record_ms"].as_i64().unwrap_or(launched);
                stopped_ms = now_ms();
            }
            Some("ferry stopped.") => {
                rss = v["peak_rss_mb"].as_str().unwrap().parse().unwrap();
                cpu = v["cpu_seconds"].as_str().unwrap().parse().unwrap();
            }
            _ if v["level"] == "ERROR" || v["level"] == "WARN" => eprintln!("ferry: {line}"),
            _ => {}
        }
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(records, count as u64);
    assert_eq!(rows_in(rest, table), count as u64, "{table} rows");
    Run {
        label: format!("ferry: mock Kafka → BigQuery sink, {mode}, tasks.max={tasks}"),
        records,
        secs: (stopped_ms - first_ms).max(1) as f64 / 1000.0,
        peak_rss_mb: rss,
        cpu_seconds: cpu,
    }
}

fn main() {
    if std::env::var("FERRY_BENCH_ROLE").as_deref() == Ok("bare-loader") {
        return bare_loader();
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let count: usize = std::env::var("FERRY_BENCH_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(if quick { 260 } else { 2080 });
    let repeats: usize = std::env::var("FERRY_BENCH_REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    let (alerts, kind) = ferry_mock_broker::ztf::alerts().unwrap();
    let avg = alerts.iter().map(Vec::len).sum::<usize>() / alerts.len();

    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut report = String::new();
    let mut decode: Vec<(Run, Run)> = Vec::new();
    for _ in 0..repeats {
        decode.push(decoders(&alerts, if quick { 2000 } else { 10_000 }));
    }
    let ferry_rate = median(decode.iter().map(|(f, _)| f.per_sec()).collect());
    let naive_rate = median(decode.iter().map(|(_, n)| n.per_sec()).collect());
    let _ = writeln!(
        report,
        "Decoding {kind} (~{} KB each) on one core, {repeats} rounds:\n\n| decoder | alerts/s (median) | µs per alert | ratio vs apache-avro Reader |\n|---|---:|---:|---:|\n| {} | {ferry_rate:.0} | {:.0} | {:.2} |\n| {} | {naive_rate:.0} | {:.0} | 1.00 |\n",
        avg / 1000,
        decode[0].0.label,
        1e6 / ferry_rate,
        ferry_rate / naive_rate,
        decode[0].1.label,
        1e6 / naive_rate,
    );
    println!("{report}");

    let Some(emulator) = start_emulator() else {
        return;
    };
    let rest = emulator.rest.clone();
    let (code, v) = curl(
        "POST",
        &format!("{rest}/bigquery/v2/projects/{PROJECT}/datasets"),
        Some(&json!({"datasetReference": {"projectId": PROJECT, "datasetId": DATASET}})),
    );
    assert_eq!(code, 200, "create dataset: {v}");
    let broker = MockBroker::start(1).unwrap();
    // ~70 KB alerts, at most 40 per partition: well under the mock's 5 MB per partition.
    let partitions = count.div_ceil(40).max(8) as i32;
    broker.create_topic(KAFKA_TOPIC, partitions).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "20")
        .create()
        .unwrap();
    for i in 0..count {
        let record = BaseRecord::<(), [u8]>::to(KAFKA_TOPIC)
            .payload(&alerts[i % alerts.len()])
            .partition((i % partitions as usize) as i32);
        producer.send(record).map_err(|(e, _)| e).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(300)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut samples: Vec<Vec<Run>> = Vec::new();
    let mut id = 0;
    let mut next = || {
        id += 1;
        id
    };
    for round in 0..repeats {
        let mut runs = vec![run_bare(&rest, count, &format!("bare_{round}"))];
        for (tasks, mode) in [(1, "decoded"), (4, "decoded"), (1, "raw")] {
            let n = next();
            runs.push(run_ferry(
                &broker.bootstrap(),
                &rest,
                count,
                tasks,
                mode,
                &format!("ferry_{n}"),
                dir.path(),
                n,
            ));
        }
        for r in &runs {
            eprintln!(
                "  round {round}: {:<62} {:>7.0} alerts/s, peak {:.1} MB, ferry CPU {:.1} s",
                r.label,
                r.per_sec(),
                r.peak_rss_mb,
                r.cpu_seconds
            );
        }
        samples.push(runs);
    }
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{count} ZTF alerts ({kind}) into the local-bigquery emulator, {repeats} rounds:\n\n| loader | alerts/s (median) | ratio vs bare loader | peak RSS (max) |\n|---|---:|---:|---:|"
    );
    let bare = median(samples.iter().map(|r| r[0].per_sec()).collect());
    for c in 0..samples[0].len() {
        let rate = median(samples.iter().map(|r| r[c].per_sec()).collect());
        let rss = samples.iter().map(|r| r[c].peak_rss_mb).fold(0.0, f64::max);
        let _ = writeln!(
            table,
            "| {} | {rate:.0} | {:.2} | {rss:.1} MB |",
            samples[0][c].label,
            rate / bare
        );
    }
    println!("{table}");
    report.push('\n');
    report.push_str(&table);
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-bigquery.md"),
        &report,
    );
    drop(emulator);
}
