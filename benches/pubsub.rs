//! ZTF alerts into Google's Pub/Sub emulator: a bare publisher (Google's Rust client, the
//! batch settings of Google's connector, the same payloads) against `ferry` reading the
//! same alerts from the mock Kafka cluster and publishing them with the Pub/Sub sink.
//!
//! Not a timed test: `cargo bench --bench pubsub` prints a table (also written to
//! target/bench-pubsub.md). Needs the emulator (Debian package
//! `google-cloud-cli-pubsub-emulator`, or `PUBSUB_EMULATOR_BIN`); says so and stops
//! without it.
//!
//! Throughput is measured from the first record to the last acknowledged publish: for the
//! bare publisher, its first `publish` to its last acknowledgement; for ferry, its first
//! delivery to the sink to its final commit, which follows the last acknowledgement.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_mock_broker::MockBroker;
use ferry_mock_broker::pubsub_emulator::{Emulator, NOT_INSTALLED, emulator_bin};
use futures_util::stream::{FuturesUnordered, StreamExt};
use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const PROJECT: &str = "bench-project";
const TOPIC: &str = "ztf-bench";
const KAFKA_TOPIC: &str = "ztf_bench";
/// Distinct alerts to cycle through when the optional real set is absent (see
/// `ferry_mock_broker::ztf::bench_alerts`); parent and child must agree.
const PAYLOADS: usize = 52;
/// Flow control for the bare publisher: ferry's default `maxOutstandingRequestBytes`.
const OUTSTANDING_BYTES: usize = 6 * 1024 * 1024;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[derive(Debug, Clone)]
struct Run {
    label: String,
    records: u64,
    first_ms: i64,
    last_ms: i64,
    peak_rss_mb: f64,
    cpu_seconds: f64,
    /// Share of the machine's CPU time busy during the run (every process).
    machine_busy: f64,
}

/// Runs one configuration and notes how busy the machine was meanwhile.
fn measured(run: impl FnOnce() -> Run) -> Run {
    let (busy0, total0) = common::machine_cpu();
    let mut r = run();
    let (busy1, total1) = common::machine_cpu();
    r.machine_busy = (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64;
    r
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.records as f64 / (((self.last_ms - self.first_ms).max(1)) as f64 / 1000.0)
    }
}

/// The baselines, in a child process: Google's client publishing the alerts straight from
/// memory, or (with `FERRY_BENCH_BOOTSTRAP`) a plain rdkafka consumer with ferry's fetch
/// settings feeding it the same alerts from the mock cluster, each payload copied once as
/// ferry does.
fn bare_publisher() {
    let host = std::env::var("FERRY_BENCH_EMULATOR").unwrap();
    let count: usize = std::env::var("FERRY_BENCH_COUNT").unwrap().parse().unwrap();
    let (payloads, _) = ferry_mock_broker::ztf::bench_alerts(PAYLOADS).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // rdkafka's StreamConsumer needs the runtime to exist.
    let _runtime = rt.enter();
    let consumer = std::env::var("FERRY_BENCH_BOOTSTRAP")
        .ok()
        .map(|bootstrap| {
            let mut config = ClientConfig::new();
            config
                .set("bootstrap.servers", bootstrap)
                .set("group.id", format!("bare-{}", std::process::id()))
                .set("auto.offset.reset", "earliest")
                .set("enable.auto.commit", "false");
            // The read-ahead ferry gives the Pub/Sub sink.
            let read_ahead = Some(ferry_connector_pubsub::READ_AHEAD_BYTES);
            for (k, v) in ferry::kafka::ferry_defaults("bench", read_ahead, Duration::ZERO) {
                if k.starts_with("fetch") || k.starts_with("queued") {
                    config.set(k, v);
                }
            }
            let consumer: StreamConsumer = config.create().unwrap();
            consumer.subscribe(&[KAFKA_TOPIC]).unwrap();
            consumer
        });
    rt.block_on(async move {
        let publisher = google_cloud_pubsub::client::Publisher::builder(format!("projects/{PROJECT}/topics/{TOPIC}"))
            .with_endpoint(format!("http://{host}"))
            .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
            // Google's connector defaults: maxBufferSize, maxBufferBytes, delayThresholdMs,
            // with a batch sent at half the outstanding budget, as ferry does.
            .set_message_count_threshold(100)
            .set_byte_threshold(9_500_000.min(OUTSTANDING_BYTES as u32 / 2))
            .set_delay_threshold(Duration::from_millis(100))
            .build()
            .await
            .unwrap();
        let mut in_flight = FuturesUnordered::new();
        let mut outstanding = 0usize;
        let mut first = now_ms();
        for i in 0..count {
            let data = match &consumer {
                None => bytes::Bytes::from(payloads[i % payloads.len()].clone()),
                Some(c) => {
                    let m = c.recv().await.unwrap();
                    if i == 0 {
                        first = now_ms();
                    }
                    bytes::Bytes::copy_from_slice(m.payload().unwrap_or_default())
                }
            };
            let size = data.len();
            while outstanding + size > OUTSTANDING_BYTES {
                let (r, s): (Result<String, _>, usize) = in_flight.next().await.unwrap();
                r.unwrap();
                outstanding -= s;
            }
            outstanding += size;
            let attributes = [("kafka.topic", "ztf_bench"), ("kafka.partition", "0")];
            let sent = publisher.publish(google_cloud_pubsub::model::Message::new().set_data(data).set_attributes(attributes));
            in_flight.push(async move { (sent.await, size) });
        }
        while let Some((r, _)) = in_flight.next().await {
            r.unwrap();
        }
        let last = now_ms();
        println!(
            "{{\"records\":{count},\"first_ms\":{first},\"last_ms\":{last},\"peak_rss_mb\":{},\"cpu_seconds\":{}}}",
            ferry::telemetry::peak_rss_kb().unwrap_or(0) as f64 / 1024.0,
            ferry::telemetry::cpu_seconds().unwrap_or(0.0)
        );
    });
}

fn run_bare(emulator: &Emulator, count: usize, bootstrap: Option<&str>) -> Run {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if let Some(b) = bootstrap {
        command.env("FERRY_BENCH_BOOTSTRAP", b);
    }
    let out = command
        .env("FERRY_BENCH_ROLE", "bare-publisher")
        .env("FERRY_BENCH_EMULATOR", &emulator.host)
        .env("FERRY_BENCH_COUNT", count.to_string())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Run {
        label: match bootstrap {
            None => "bare publisher (google-cloud-pubsub, same batching), from memory".into(),
            Some(_) => "bare rdkafka consumer → the same publisher".into(),
        },
        records: v["records"].as_u64().unwrap(),
        first_ms: v["first_ms"].as_i64().unwrap(),
        last_ms: v["last_ms"].as_i64().unwrap(),
        peak_rss_mb: v["peak_rss_mb"].as_f64().unwrap(),
        cpu_seconds: v["cpu_seconds"].as_f64().unwrap(),
        machine_busy: 0.0,
    }
}

fn run_ferry(
    bootstrap: &str,
    emulator: &Emulator,
    kafka_topic: &str,
    count: usize,
    (tasks, compression): (usize, bool),
    dir: &Path,
    id: usize,
) -> Run {
    let worker = common::worker_file(dir, bootstrap, &id.to_string());
    let connector = dir.join(format!("pubsub-{id}.properties"));
    std::fs::write(
        &connector,
        format!(
            "name=bench-{id}\nconnector.class=com.google.pubsub.kafka.sink.CloudPubSubSinkConnector\ntasks.max={tasks}\ntopics={kafka_topic}\ncps.project={PROJECT}\ncps.topic={TOPIC}\ncps.endpoint={}\ncps.useEmulator=true\nmetadata.publish=true\nenableCompression={compression}\n{}",
            emulator.host,
            // Extra connector lines for experiments, e.g. "maxOutstandingRequestBytes=8000000".
            std::env::var("FERRY_BENCH_CONNECTOR_EXTRA").unwrap_or_default().replace(';', "\n")
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
    let mut run = Run {
        label: format!(
            "ferry: mock Kafka → Pub/Sub sink, tasks.max={tasks}{}",
            if compression {
                ", enableCompression=true"
            } else {
                ""
            }
        ),
        records: 0,
        first_ms: 0,
        last_ms: 0,
        peak_rss_mb: 0.0,
        cpu_seconds: 0.0,
        machine_busy: 0.0,
    };
    let mut last_commit_ms = 0;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match v["message"].as_str() {
            Some("Committing offsets.") => {
                let ts = v["timestamp"].as_str().unwrap_or_default();
                last_commit_ms = parse_rfc3339_ms(ts);
            }
            Some("Connector stopped.") => {
                run.records = v["records"].as_u64().unwrap();
                run.first_ms = v["first_record_ms"].as_i64().unwrap();
            }
            Some("ferry stopped.") => {
                run.peak_rss_mb = v["peak_rss_mb"].as_str().unwrap().parse().unwrap();
                run.cpu_seconds = v["cpu_seconds"].as_str().unwrap().parse().unwrap();
            }
            _ if v["level"] == "ERROR" || v["level"] == "WARN" => eprintln!("ferry: {line}"),
            _ => {}
        }
    }
    assert!(child.wait().unwrap().success());
    run.last_ms = last_commit_ms;
    assert_eq!(run.records, count as u64);
    run
}

/// `2026-11-22T03:23:48.638426Z` → epoch milliseconds (UTC, as tracing writes it).
fn parse_rfc3339_ms(ts: &str) -> i64 {
    let (date, time) = ts.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let millis: i64 = format!("{:0<3}", &frac[..frac.len().min(3)])
        .parse()
        .unwrap();
    ((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1000) + millis
}

fn main() {
    if std::env::var("FERRY_BENCH_ROLE").as_deref() == Ok("bare-publisher") {
        return bare_publisher();
    }
    let Some(bin) = emulator_bin() else {
        println!("benches/pubsub: not run. {NOT_INSTALLED}");
        return;
    };
    let quick = std::env::args().any(|a| a == "--quick");
    let count: usize = std::env::var("FERRY_BENCH_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(if quick { 520 } else { 10_400 });
    let repeats: usize = std::env::var("FERRY_BENCH_REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    let (payloads, kind) = ferry_mock_broker::ztf::bench_alerts(PAYLOADS).unwrap();
    println!("ZTF alerts: {kind}");
    let avg = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len();
    let emulator = Emulator::start(&bin);
    // No subscription: the emulator keeps nothing, so its heap stays small.
    emulator.create_topic(PROJECT, TOPIC);
    let broker = MockBroker::start(1).unwrap();
    // ~70 KB alerts, at most 40 per partition: well under the mock's 5 MB per partition.
    let partitions = count.div_ceil(40).max(128) as i32;
    broker.create_topic(KAFKA_TOPIC, partitions).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "20")
        .create()
        .unwrap();
    for i in 0..count {
        let record = BaseRecord::<(), [u8]>::to(KAFKA_TOPIC)
            .payload(&payloads[i % payloads.len()])
            .partition((i % partitions as usize) as i32);
        producer.send(record).map_err(|(e, _)| e).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(300)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The emulator (a JVM) is twice as fast once warm: one unrecorded round first.
    let warm = run_bare(&emulator, count, None);
    eprintln!("  warm-up: {:.0} alerts/s", warm.per_sec());
    let mut samples: Vec<Vec<Run>> = Vec::new();
    for round in 0..repeats {
        let mut runs = vec![
            measured(|| run_bare(&emulator, count, None)),
            measured(|| run_bare(&emulator, count, Some(&broker.bootstrap()))),
        ];
        // With compression: ferry's own gzip publisher (ZTF alerts barely compress: their
        // cutouts are gzipped FITS already), so this row shows its cost.
        let ferry_runs = [(1, false), (10, false), (1, true)];
        for (i, setting) in ferry_runs.into_iter().enumerate() {
            runs.push(measured(|| {
                run_ferry(
                    &broker.bootstrap(),
                    &emulator,
                    KAFKA_TOPIC,
                    count,
                    setting,
                    dir.path(),
                    round * ferry_runs.len() + i,
                )
            }));
        }
        for r in &runs {
            eprintln!(
                "  round {round}: {:<60} {:>8.0} alerts/s, CPU {:.2} s, peak {:.1} MB, machine {:.0} % busy",
                r.label,
                r.per_sec(),
                r.cpu_seconds,
                r.peak_rss_mb,
                r.machine_busy * 100.0
            );
        }
        samples.push(runs);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut report = String::new();
    let _ = writeln!(
        report,
        "{count} ZTF alerts (~{} KB, cycling {kind}) into the Pub/Sub emulator, {repeats} rounds:\n",
        avg / 1000
    );
    let _ = writeln!(
        report,
        "| publisher | alerts/s (median) | MB/s | ratio vs bare | CPU per alert | peak RSS (max) | machine CPU busy (median) |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|---:|");
    let bare = median(samples.iter().map(|r| r[0].per_sec()).collect());
    for c in 0..samples[0].len() {
        let rate = median(samples.iter().map(|r| r[c].per_sec()).collect());
        let cpu = median(
            samples
                .iter()
                .map(|r| r[c].cpu_seconds * 1e3 / r[c].records as f64)
                .collect(),
        );
        let rss = samples.iter().map(|r| r[c].peak_rss_mb).fold(0.0, f64::max);
        let busy = median(samples.iter().map(|r| r[c].machine_busy * 100.0).collect());
        let _ = writeln!(
            report,
            "| {} | {rate:.0} | {:.1} | {:.2} | {cpu:.2} ms | {rss:.1} MB | {busy:.0} % |",
            samples[0][c].label,
            rate * avg as f64 / 1e6,
            rate / bare
        );
    }
    println!("\n{report}");
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-pubsub.md"),
        &report,
    );
}
