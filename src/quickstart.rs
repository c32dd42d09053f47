//! `ferry quickstart`: the main job end to end with nothing installed — an embedded mock
//! Kafka cluster, sample records produced into it, and the connector files in `config/`
//! writing them to a local directory.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_mock_broker::MockBroker;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::providers::{Environment, SystemEnvironment};
use crate::config::{ConnectorConfig, PropertiesFile, WorkerConfig};
use crate::herder::{self, Loaded, RunOptions};

const WORKER: &str = include_str!("../config/quickstart-worker.properties");
const CONNECTOR: &str = include_str!("../config/quickstart-directory.properties");
const TOPIC: &str = "alerts";
const PARTITIONS: i32 = 3;

/// What the quickstart did, for its summary line.
#[derive(Debug)]
pub struct Report {
    pub produced: usize,
    pub files: usize,
    pub out: PathBuf,
    pub offsets: PathBuf,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum QuickstartError {
    #[error("cannot start the embedded Kafka cluster: {0}")]
    Broker(String),
    #[error("cannot produce the sample records: {0}")]
    Produce(String),
    #[error("{0}")]
    Startup(#[from] herder::StartupError),
    #[error("cannot prepare {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("expected {expected} files under {}, found {found}", out.display())]
    Mismatch {
        expected: usize,
        found: usize,
        out: PathBuf,
    },
}

/// The process environment plus the quickstart's own variables.
struct Overlay(BTreeMap<&'static str, String>);

impl Environment for Overlay {
    fn var(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .cloned()
            .or_else(|| SystemEnvironment.var(name))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        SystemEnvironment.read(path)
    }
}

/// A small alert-like JSON document; deterministic.
fn sample(i: usize) -> String {
    let x = (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let ra = (x >> 11) as f64 / (1u64 << 53) as f64 * 360.0;
    let dec = ((x >> 7) % 18_000) as f64 / 100.0 - 90.0;
    let mag = 14.0 + ((x >> 3) % 700) as f64 / 100.0;
    format!(
        r#"{{"objectId":"ZTF-SAMPLE-{i:06}","candid":{},"ra":{ra:.6},"dec":{dec:.6},"magpsf":{mag:.2}}}"#,
        1_700_000_000_000u64 + i as u64
    )
}

pub async fn run(records: usize, dir: &Path) -> Result<Report, QuickstartError> {
    let started = Instant::now();
    let out = dir.join("out");
    let offsets = dir.join("connect.offsets");
    // The mock cluster starts empty each time, so offsets from an earlier run would skip
    // every record: start from a clean slate (only the quickstart's own files).
    for path in [&out, &offsets] {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(QuickstartError::Io {
                    path: path.clone(),
                    source: e,
                });
            }
            _ => {}
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| QuickstartError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let dir_abs = std::fs::canonicalize(dir).map_err(|source| QuickstartError::Io {
        path: dir.to_path_buf(),
        source,
    })?;

    let broker = MockBroker::start(1).map_err(|e| QuickstartError::Broker(e.to_string()))?;
    broker
        .create_topic(TOPIC, PARTITIONS)
        .map_err(|e| QuickstartError::Broker(e.to_string()))?;
    tracing::info!(bootstrap = %broker.bootstrap(), topic = TOPIC, partitions = PARTITIONS, "Embedded Kafka cluster started.");

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "5")
        .create()
        .map_err(|e| QuickstartError::Produce(e.to_string()))?;
    let mut deliveries = Vec::with_capacity(records);
    for i in 0..records {
        let key = format!("alert-{i}");
        let value = sample(i);
        let record = FutureRecord::to(TOPIC).key(&key).payload(&value);
        // Enqueued now; the delivery report is awaited below.
        let delivery = producer
            .send_result(record)
            .map_err(|(e, _)| QuickstartError::Produce(e.to_string()))?;
        deliveries.push(delivery);
    }
    for d in deliveries {
        match d.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(QuickstartError::Produce(e.to_string())),
            Err(_) => return Err(QuickstartError::Produce("the producer went away".into())),
        }
    }
    tracing::info!(records, topic = TOPIC, "Sample records produced.");

    let env = Overlay(BTreeMap::from([
        ("FERRY_QUICKSTART_BOOTSTRAP", broker.bootstrap()),
        ("FERRY_QUICKSTART_DIR", dir_abs.display().to_string()),
    ]));
    let worker_file = PropertiesFile::parse(
        Path::new("config/quickstart-worker.properties"),
        WORKER.as_bytes(),
    )
    .map_err(herder::StartupError::Config)?;
    let worker =
        WorkerConfig::from_file(worker_file, &env).map_err(herder::StartupError::Config)?;
    let connector_file = PropertiesFile::parse(
        Path::new("config/quickstart-directory.properties"),
        CONNECTOR.as_bytes(),
    )
    .map_err(herder::StartupError::Config)?;
    let connector = ConnectorConfig::from_file(connector_file, &worker, &env)
        .map_err(herder::StartupError::Config)?;
    let outcome = herder::run(
        Loaded {
            rest: crate::config::rest::RestConfig::from_worker(&worker.file)
                .map_err(herder::StartupError::Config)?,
            worker,
            connectors: vec![connector],
        },
        // The quickstart ends by itself; an API would only take a port.
        RunOptions {
            exit_at_end: true,
            probe_timeout: Duration::from_secs(10),
            rest: false,
            metrics: None,
            kerberos: None,
            distributed: None,
        },
    )
    .await?;
    drop(outcome);

    let files = count_files(&out);
    if files != records {
        return Err(QuickstartError::Mismatch {
            expected: records,
            found: files,
            out,
        });
    }
    Ok(Report {
        produced: records,
        files,
        out,
        offsets,
        elapsed: started.elapsed(),
    })
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                count_files(&path)
            } else if e.file_name().to_string_lossy().starts_with('.') {
                0
            } else {
                1
            }
        })
        .sum()
}
