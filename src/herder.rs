//! The control plane of standalone mode: loads the files, starts every connector's tasks,
//! reports status, and stops everything on a signal — SIGINT, SIGTERM or SIGHUP, each
//! drained and committed — or, with `--exit-at-end`, once every subscribed partition has
//! been read to its end and committed. The CLI is a thin wrapper over this.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use tokio::signal::unix::{Signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::config::providers::Environment;
use crate::config::{ConfigFileError, ConnectorConfig, Note, WorkerConfig};
use crate::kafka::{self, ClientConfigError, ProbeError};
use crate::offsets::{FileOffsetStore, OffsetStoreError};
use crate::worker::status::{TaskState, Undelivered, lock, now_ms};
use crate::worker::{self, ConnectorHandle};

/// Anything that stops ferry from starting. Displayed as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigFileError),
    #[error(transparent)]
    Store(#[from] OffsetStoreError),
    #[error(transparent)]
    Client(#[from] ClientConfigError),
    #[error(
        "connector {connector}: {source} (bootstrap.servers and the consumer's security settings in {worker}); check the address, the network and the credentials"
    )]
    Probe {
        connector: String,
        worker: String,
        #[source]
        source: ProbeError,
    },
    #[error("connector {connector} ({file}): {reason}")]
    Sink {
        connector: String,
        file: String,
        reason: String,
    },
    #[error("{second}: name `{name}` is already used by {first}; connector names must be unique")]
    DuplicateName {
        name: String,
        first: String,
        second: String,
    },
    #[error(
        "no connector files given; usage: ferry standalone <worker.properties> <connector.properties>..."
    )]
    NoConnectors,
    #[error(transparent)]
    MetricsListener(#[from] crate::metrics::ListenerError),
}

/// The validated files.
#[derive(Debug)]
pub struct Loaded {
    pub worker: WorkerConfig,
    pub connectors: Vec<ConnectorConfig>,
}

impl Loaded {
    /// Reads and validates the worker file and every connector file. Pure: no network.
    pub fn load(
        worker: &Path,
        connectors: &[PathBuf],
        env: &dyn Environment,
    ) -> Result<Self, StartupError> {
        let worker = WorkerConfig::load(worker, env)?;
        let mut loaded = Vec::new();
        let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in connectors {
            let c = ConnectorConfig::load(path, &worker, env)?;
            if let Some(first) = names.insert(c.name.clone(), path.clone()) {
                return Err(StartupError::DuplicateName {
                    name: c.name,
                    first: first.display().to_string(),
                    second: path.display().to_string(),
                });
            }
            // Surface librdkafka's verdict on the settings now, not in a task.
            let defaults = kafka::ferry_defaults(
                &c.name,
                c.connector.read_ahead_bytes(),
                worker.status_interval,
            );
            kafka::client_config(&c.consumer, &defaults)?;
            loaded.push(c);
        }
        Ok(Self {
            worker,
            connectors: loaded,
        })
    }

    /// Every note, each once (the worker's consumer keys are seen by every connector).
    pub fn notes(&self) -> Vec<Note> {
        let mut all: BTreeSet<Note> = self.worker.notes.iter().cloned().collect();
        for c in &self.connectors {
            all.extend(c.notes.iter().cloned());
            let defaults = kafka::ferry_defaults(
                &c.name,
                c.connector.read_ahead_bytes(),
                self.worker.status_interval,
            );
            if let Ok((_, notes)) = kafka::client_config(&c.consumer, &defaults) {
                all.extend(notes);
            }
        }
        all.into_iter().collect()
    }
}

/// How a run ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub connectors: Vec<ConnectorSummary>,
    /// Every task stopped within `task.shutdown.graceful.timeout.ms`.
    pub drained: bool,
    /// Every task of every connector failed.
    pub all_failed: bool,
    /// With `--exit-at-end`: partitions left with records not delivered and committed.
    pub undelivered: Vec<(String, Vec<Undelivered>)>,
    pub elapsed: Duration,
}

impl Outcome {
    /// With `--exit-at-end`, the line saying which partitions were not delivered, if any
    /// were not: ferry then exits non-zero.
    pub fn undelivered_line(&self) -> Option<String> {
        const SHOWN: usize = 8;
        if self.undelivered.iter().all(|(_, u)| u.is_empty()) {
            return None;
        }
        let parts: Vec<String> = self
            .undelivered
            .iter()
            .filter(|(_, u)| !u.is_empty())
            .map(|(name, u)| {
                let mut shown: Vec<String> =
                    u.iter().take(SHOWN).map(ToString::to_string).collect();
                if u.len() > SHOWN {
                    shown.push(format!("… {} more", u.len() - SHOWN));
                }
                format!("connector {name}: {}", shown.join(", "))
            })
            .collect();
        Some(format!(
            "stopped before every record read was delivered and committed (--exit-at-end): {}; the next start delivers them from the committed offsets",
            parts.join("; ")
        ))
    }
}

/// Totals for one connector.
#[derive(Debug, Clone, Default)]
pub struct ConnectorSummary {
    pub name: String,
    pub tasks: usize,
    pub failed: usize,
    pub records: u64,
    pub bytes: u64,
    pub skipped: u64,
    /// Epoch milliseconds of the first and last delivery to the sink, if any.
    pub first_record_ms: Option<i64>,
    pub last_record_ms: Option<i64>,
}

/// Options of a standalone run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop once every subscribed partition has been read to its end and every record read
    /// is committed; report what a stop before that left undelivered.
    pub exit_at_end: bool,
    /// How long the start-up broker check may take.
    pub probe_timeout: Duration,
}

struct Running {
    config: ConnectorConfig,
    handle: ConnectorHandle,
    /// For `--exit-at-end`: a group-less client for metadata.
    metadata: Option<Arc<kafka::MetadataClient>>,
    last: (u64, u64, Instant),
}

impl Running {
    fn summary(&self) -> ConnectorSummary {
        let statuses = self.handle.task_statuses();
        let mut s = ConnectorSummary {
            name: self.config.name.clone(),
            tasks: statuses.len(),
            ..Default::default()
        };
        for st in &statuses {
            s.records += st.records.load(Ordering::Relaxed);
            s.bytes += st.bytes.load(Ordering::Relaxed);
            s.skipped += st.skipped.load(Ordering::Relaxed);
            if matches!(st.state(), TaskState::Failed(_)) {
                s.failed += 1;
            }
            let first = st.first_record_ms.load(Ordering::Relaxed);
            if first > 0 {
                s.first_record_ms = Some(s.first_record_ms.map_or(first, |f: i64| f.min(first)));
            }
            let last = st.last_record_ms.load(Ordering::Relaxed);
            s.last_record_ms = s.last_record_ms.max((last > 0).then_some(last));
        }
        s
    }

    fn log_status(&mut self, exit_at_end: bool) {
        let s = self.summary();
        let now = Instant::now();
        let secs = now.duration_since(self.last.2).as_secs_f64().max(1e-3);
        let rps = (s.records - self.last.0) as f64 / secs;
        let mbps = (s.bytes - self.last.1) as f64 / secs / 1e6;
        self.last = (s.records, s.bytes, now);
        let lag = self.handle.consumer.lag.load(Ordering::Relaxed).max(0);
        let last_commit = self.handle.consumer.last_commit_ms.load(Ordering::Relaxed);
        let last_commit = if last_commit == 0 {
            "never".to_string()
        } else {
            format!("{:.1}s ago", (now_ms() - last_commit) as f64 / 1000.0)
        };
        let state = if s.failed == s.tasks {
            "FAILED"
        } else {
            "RUNNING"
        };
        // With --exit-at-end: what ferry is still waiting for.
        let undelivered = exit_at_end
            .then(|| {
                let u = lock(&self.handle.consumer.undelivered);
                let mut shown: Vec<String> = u.iter().take(4).map(ToString::to_string).collect();
                if u.len() > 4 {
                    shown.push(format!("… {} more", u.len() - 4));
                }
                shown.join(", ")
            })
            .filter(|s| !s.is_empty());
        tracing::info!(
            connector = %s.name,
            state,
            tasks = s.tasks,
            failed_tasks = s.failed,
            records_per_sec = format!("{rps:.1}"),
            mb_per_sec = format!("{mbps:.2}"),
            consumer_lag = lag,
            last_commit = %last_commit,
            records = s.records,
            skipped = s.skipped,
            undelivered,
            "Connector status."
        );
    }

    /// Caught up, and the consumer holds every partition of the subscription (asked of the
    /// cluster with a client of its own, whose requests do not queue behind fetches).
    async fn at_end(&self) -> bool {
        if self.handle.task_statuses().iter().all(|t| !t.is_running()) {
            // Failed (or stopped) everywhere: nothing more will be delivered.
            return true;
        }
        let consumer = &self.handle.consumer;
        if !consumer.caught_up.load(Ordering::Relaxed) {
            return false;
        }
        let assigned: BTreeSet<(String, i32)> = lock(&consumer.assigned)
            .iter()
            .map(|tp| (tp.topic.to_string(), tp.partition))
            .collect();
        let Some(client) = self.metadata.clone() else {
            return false;
        };
        let subscription = self.config.subscription.clone();
        let expected = tokio::task::spawn_blocking(move || {
            let md = client.fetch_metadata(None, Duration::from_secs(5)).ok()?;
            Some(
                md.topics()
                    .iter()
                    .filter(|t| t.error().is_none() && subscription.matches(t.name()))
                    .flat_map(|t| {
                        t.partitions()
                            .iter()
                            .map(|p| (t.name().to_string(), p.id()))
                    })
                    .collect::<BTreeSet<_>>(),
            )
        })
        .await
        .ok()
        .flatten();
        expected.is_some_and(|e| e.is_subset(&assigned))
    }
}

fn signal(kind: SignalKind) -> Option<Signal> {
    match tokio::signal::unix::signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(signal = ?kind, error = %e, "Cannot handle the signal; it stops ferry without draining.");
            None
        }
    }
}

/// Completes when the signal arrives; never without a handler.
async fn received(signal: &mut Option<Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Runs the connectors until a signal (or the end of the data with `exit_at_end`).
pub async fn run(loaded: Loaded, opts: RunOptions) -> Result<Outcome, StartupError> {
    let Loaded { worker, connectors } = loaded;
    if connectors.is_empty() {
        return Err(StartupError::NoConnectors);
    }
    let started = Instant::now();
    let store = match &worker.offset_file {
        Some(path) => Some(Arc::new(FileOffsetStore::open(path)?)),
        None => None,
    };
    for c in &connectors {
        let defaults = kafka::ferry_defaults(
            &c.name,
            c.connector.read_ahead_bytes(),
            worker.status_interval,
        );
        let (config, _) = kafka::client_config(&c.consumer, &defaults)?;
        let probe_config = config.clone();
        let timeout = opts.probe_timeout;
        let probed = tokio::task::spawn_blocking(move || kafka::probe(&probe_config, timeout))
            .await
            .unwrap_or_else(|e| {
                Err(ProbeError {
                    bootstrap: String::new(),
                    timeout,
                    reason: e.to_string(),
                })
            });
        if let Err(source) = probed {
            return Err(StartupError::Probe {
                connector: c.name.clone(),
                worker: worker.file.path.display().to_string(),
                source,
            });
        }
    }
    for c in &connectors {
        // Bounded by the connector itself; this outer bound is a backstop.
        let checked = tokio::time::timeout(opts.probe_timeout, c.connector.preflight()).await;
        let reason = match checked {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.one_line()),
            Err(_) => Some(format!(
                "the sink's start-up check did not finish within {:?}",
                opts.probe_timeout
            )),
        };
        if let Some(reason) = reason {
            return Err(StartupError::Sink {
                connector: c.name.clone(),
                file: c.file.path.display().to_string(),
                reason,
            });
        }
    }
    // Only now that nothing stands in the way does the run leave a trace on disk.
    if let Some(store) = &store {
        store.create_if_missing()?;
    }
    let rt = tokio::runtime::Handle::current();
    let root = CancellationToken::new();
    if let Some(listener) = &worker.metrics_listener {
        crate::metrics::listener::serve(listener, root.clone()).await?;
    }
    let mut running: Vec<Running> = Vec::new();
    for config in connectors {
        tracing::info!(
            connector = %config.name,
            class = %config.class,
            tasks = config.tasks_max,
            subscription = %config.subscription,
            group = %config.group_id(),
            "Starting connector."
        );
        let env = worker::ConnectorEnv {
            worker: &worker,
            store: store.clone(),
            exit_at_end: opts.exit_at_end,
            rt: &rt,
            parent: &root,
        };
        let handle = worker::start_connector(&config, &env);
        let metadata = if opts.exit_at_end {
            let defaults = kafka::ferry_defaults(
                &config.name,
                config.connector.read_ahead_bytes(),
                Duration::ZERO,
            );
            let (client, _) = kafka::client_config(&config.consumer, &defaults)?;
            kafka::metadata_client(client, &config.name).map(Arc::new)
        } else {
            None
        };
        running.push(Running {
            config,
            handle,
            metadata,
            last: (0, 0, Instant::now()),
        });
    }

    let mut terminate = signal(SignalKind::terminate());
    // A closed terminal or `kill -HUP`: the JVM runs Kafka's shutdown hook for SIGHUP as
    // for SIGTERM (connect-standalone drains and commits), and so does ferry.
    let mut hangup = signal(SignalKind::hangup());
    let status_period = if worker.status_interval.is_zero() {
        Duration::from_secs(86_400 * 365)
    } else {
        worker.status_interval
    };
    let mut status_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + status_period, status_period);
    let mut check = tokio::time::interval(Duration::from_millis(100));
    let mut ends_seen = 0;
    let mut all_failed = false;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("Interrupted; draining and committing before exit.");
                break;
            }
            _ = received(&mut terminate) => {
                tracing::info!("Terminated; draining and committing before exit.");
                break;
            }
            _ = received(&mut hangup) => {
                tracing::info!("Hung up (SIGHUP); draining and committing before exit, as for SIGTERM.");
                break;
            }
            _ = status_tick.tick() => running.iter_mut().for_each(|r| r.log_status(opts.exit_at_end)),
            _ = check.tick() => {
                running.iter().for_each(|r| r.handle.metrics.observe(&r.handle.task_statuses()));
                let states: Vec<TaskState> = running.iter().flat_map(|r| r.handle.task_statuses().into_iter().map(|t| t.state())).collect();
                if states.iter().all(|s| matches!(s, TaskState::Failed(_))) {
                    tracing::error!("Every task has failed; stopping. Fix the cause named above and restart.");
                    all_failed = true;
                    break;
                }
                if opts.exit_at_end {
                    // Twice in a row, so a rebalance between two checks cannot fool it.
                    let mut all = true;
                    for r in &running {
                        all = all && r.at_end().await;
                    }
                    ends_seen = if all { ends_seen + 1 } else { 0 };
                    if ends_seen >= 2 {
                        tracing::info!("Every subscribed partition has been read to its end and every record read is committed; stopping (--exit-at-end).");
                        break;
                    }
                }
            }
        }
    }
    root.cancel();
    let deadline = tokio::time::Instant::now() + worker.shutdown_timeout;
    let mut drained = true;
    for r in &mut running {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !r.handle.join(left).await {
            drained = false;
            tracing::error!(connector = %r.handle.name, timeout_ms = worker.shutdown_timeout.as_millis() as u64, "Connector did not stop within task.shutdown.graceful.timeout.ms; its last interval may be redelivered after restart.");
        }
    }
    let summaries: Vec<ConnectorSummary> = running.iter().map(Running::summary).collect();
    let undelivered = if opts.exit_at_end {
        running
            .iter()
            .map(|r| {
                let u = lock(&r.handle.consumer.undelivered).clone();
                (r.config.name.clone(), u)
            })
            .collect()
    } else {
        Vec::new()
    };
    for s in &summaries {
        tracing::info!(
            connector = %s.name,
            tasks = s.tasks,
            failed_tasks = s.failed,
            records = s.records,
            bytes = s.bytes,
            skipped = s.skipped,
            first_record_ms = s.first_record_ms.unwrap_or(0),
            last_record_ms = s.last_record_ms.unwrap_or(0),
            "Connector stopped."
        );
    }
    Ok(Outcome {
        connectors: summaries,
        drained,
        all_failed,
        undelivered,
        elapsed: started.elapsed(),
    })
}
