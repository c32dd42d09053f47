//! The control plane of standalone mode. [`Herder`] owns the connectors for the life of
//! the process and takes operations (create, config, pause/resume/stop, restart, status,
//! offsets, validate) from its two thin callers: the CLI, whose connector files are created
//! through it at start, and the REST API. [`run`] drives a process: it loads and checks the
//! files, starts the connectors and the API, logs the status line, and stops everything on
//! a signal — SIGINT, SIGTERM or SIGHUP, each drained and committed — or, with
//! `--exit-at-end`, once every subscribed partition has been read to its end and committed.

mod config_log;
mod config_records;
mod distributed;
mod offsets;
mod queries;
mod running;
mod service;
pub mod status;
mod status_log;
mod status_records;
mod storage;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::config::providers::Environment;
use crate::config::rest::RestConfig;
use crate::config::{ConfigFileError, ConnectorConfig, Note, WorkerConfig};
use crate::kafka::{self, ClientConfigError, ProbeError};
use crate::offsets::{FileOffsetStore, OffsetStoreError};
use crate::worker::status::{TaskState, Undelivered, lock};

pub use service::{Herder, HerderError, Origin};
pub use status::Target;

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
    /// Distributed mode: the worker's own clients (top-level keys) cannot reach the cluster.
    #[error(
        "worker of cluster {group}: {source} (bootstrap.servers and the top-level security settings in {worker}, which the worker's own clients use); check the address, the network and the credentials"
    )]
    WorkerProbe {
        group: String,
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
    #[error("{0}")]
    Rest(String),
    #[error(transparent)]
    MetricsListener(#[from] crate::metrics::ListenerError),
}

/// The validated files.
#[derive(Debug)]
pub struct Loaded {
    pub worker: WorkerConfig,
    pub connectors: Vec<ConnectorConfig>,
    /// The worker file's REST keys.
    pub rest: RestConfig,
}

impl Loaded {
    /// Reads and validates the worker file and every connector file. Pure: no network.
    pub fn load(
        worker: &Path,
        connectors: &[PathBuf],
        env: &dyn Environment,
    ) -> Result<Self, StartupError> {
        let worker = WorkerConfig::load(worker, env)?;
        let rest = RestConfig::from_worker(&worker.file)?;
        // A keystore ferry cannot use stops it now, before it waits for the cluster.
        if rest.enabled {
            crate::rest::check_tls(&rest).map_err(StartupError::Rest)?;
        }
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
            kafka::ConsumerClient::build(&c, &worker)?;
            loaded.push(c);
        }
        Ok(Self {
            worker,
            connectors: loaded,
            rest,
        })
    }

    /// Every note, each once (the worker's consumer keys are seen by every connector).
    pub fn notes(&self) -> Vec<Note> {
        let mut all: BTreeSet<Note> = self.worker.notes.iter().cloned().collect();
        for c in &self.connectors {
            all.extend(c.notes.iter().cloned());
            if let Ok(client) = kafka::ConsumerClient::build(c, &self.worker) {
                all.extend(client.notes);
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
    /// Serve the REST API (as the worker file's REST keys say); off for the quickstart.
    pub rest: bool,
    /// What `GET /metrics` answers; none mounts no `/metrics`.
    pub metrics: Option<crate::rest::MetricsRenderer>,
    /// The process's Kerberos keytab login, if the files asked for one: a connector added
    /// later may use that login only.
    pub kerberos: Option<crate::auth::kerberos::KerberosPlan>,
    /// Distributed mode: connectors come from the cluster's config topic.
    pub distributed: Option<crate::config::distributed::DistributedConfig>,
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

/// The worker's own clients' settings: the worker file's top-level connection and
/// security keys, no connector's.
pub(crate) fn worker_settings(
    worker: &WorkerConfig,
) -> Result<crate::config::client::ClientSettings, ConfigFileError> {
    crate::config::client::consumer_settings(&crate::config::client::ClientLayers {
        top: worker.client_top.clone(),
        consumer: Default::default(),
        overrides: Default::default(),
        policy: worker.override_policy,
    })
}

/// The worker's own client (connection and security settings, no connector's): the
/// config topic's reader and writer in distributed mode. With GSSAPI it uses the process's
/// keytab login (`kerberos`, planned from the worker file at start and kept fresh), as the
/// connectors' consumers do: librdkafka's own `kinit` stays off.
fn worker_client(
    worker: &WorkerConfig,
    kerberos: Option<&crate::auth::kerberos::KerberosPlan>,
) -> Result<rdkafka::ClientConfig, StartupError> {
    let mut settings = worker_settings(worker)?;
    let planned = crate::auth::kerberos::plan_clients(
        worker,
        [(crate::auth::kerberos::WORKER_CLIENTS, &mut settings)],
    )?;
    if let Some(p) = planned
        && kerberos.is_none_or(|k| k.principal != p.principal || k.keytab != p.keytab)
    {
        return Err(StartupError::Rest(format!(
            "{}: the worker's own clients log in as {} with the keytab {}, but this process made no such login",
            p.source,
            p.principal,
            p.keytab.display()
        )));
    }
    let (config, _) = kafka::client_config(&settings, &[])?;
    Ok(config)
}

/// This worker's part of its static members' ids (`ferry.static.membership=true`): its
/// REST address, which tells the workers of a cluster apart.
fn static_member(rest: Option<&RestConfig>) -> Result<String, StartupError> {
    let Some(rest) = rest else {
        return Err(StartupError::Rest(
            "ferry.static.membership=true names each worker's consumers after its REST address, but the REST API is off (ferry.rest.enable=false); turn it on, or remove ferry.static.membership".into(),
        ));
    };
    // Linux's host name; ferry runs on Linux only.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    crate::config::distributed::static_worker_name(
        &rest.advertised.host,
        rest.advertised.port,
        hostname.as_deref(),
    )
    .map_err(StartupError::Rest)
}

/// The connector file as written (provider references unresolved), for the API to show.
fn as_written(config: &ConnectorConfig) -> BTreeMap<String, String> {
    crate::config::PropertiesFile::load(&config.file.path)
        .map(|f| f.entries)
        .unwrap_or_else(|_| config.file.entries.clone())
}

/// Runs the connectors until a signal (or the end of the data with `exit_at_end`): the
/// connector files' connectors from the start, and whatever the REST API adds.
pub async fn run(loaded: Loaded, opts: RunOptions) -> Result<Outcome, StartupError> {
    let Loaded {
        worker,
        connectors,
        rest,
    } = loaded;
    let rest = (opts.rest && rest.enabled).then_some(rest);
    // Without the API nothing could ever run; with it, connectors may come later (as with
    // Kafka Connect's standalone worker), but --exit-at-end needs something to finish.
    if connectors.is_empty() && opts.distributed.is_none() && (rest.is_none() || opts.exit_at_end) {
        return Err(StartupError::NoConnectors);
    }
    let started = Instant::now();
    let static_member = match &opts.distributed {
        Some(d) if d.static_membership => Some(static_member(rest.as_ref())?),
        _ => None,
    };
    let store = match (&worker.offset_file, &opts.distributed) {
        (Some(path), None) => Some(Arc::new(FileOffsetStore::open(path)?)),
        // Distributed: the consumer group is the one owner of a sink's offsets (a file per
        // worker would hold positions of partitions that moved to other workers).
        (Some(_), Some(_)) => {
            tracing::warn!(
                "offset.storage.file.filename is not used in distributed mode: each connector's consumer group holds its offsets."
            );
            None
        }
        (None, _) => None,
    };
    let mut cluster_id = None;
    // Each connector's client config, built once here (the Kerberos plan has filled in its
    // login) and used by all its clients from now on.
    let mut clients = Vec::with_capacity(connectors.len());
    for c in &connectors {
        let client = kafka::ConsumerClient::build(c, &worker)?;
        let probe_config = client.consumer().clone();
        clients.push(client);
        let timeout = opts.probe_timeout;
        let first = cluster_id.is_none();
        // The cluster's id, for `GET /`: asked once, of the first connector's brokers.
        let probed = tokio::task::spawn_blocking(move || {
            kafka::probe_cluster(&probe_config, timeout, first)
        })
        .await
        .unwrap_or_else(|e| {
            Err(ProbeError {
                bootstrap: String::new(),
                timeout,
                reason: e.to_string(),
            })
        });
        match probed {
            Ok((_, id)) => cluster_id = cluster_id.or(id),
            Err(source) => {
                return Err(StartupError::Probe {
                    connector: c.name.clone(),
                    worker: worker.file.path.display().to_string(),
                    source,
                });
            }
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
    // Read now, so that a store ferry cannot read stops it before anything is written.
    let stored = match rest.as_ref().and_then(|r| r.storage.as_deref()) {
        Some(path) => storage::load(path).map_err(StartupError::Rest)?,
        None => Vec::new(),
    };
    let users = match &rest {
        Some(r) => crate::rest::Users::load(r).map_err(StartupError::Rest)?,
        None => None,
    };
    let listeners = match &rest {
        Some(r) => crate::rest::bind(r).map_err(StartupError::Rest)?,
        None => Vec::new(),
    };
    // Only now that nothing stands in the way does the run leave a trace on disk.
    if let Some(store) = &store {
        store.create_if_missing()?;
    }
    let root = CancellationToken::new();
    let worker_id = match (&rest, &opts.distributed) {
        (Some(r), _) => r.advertised.authority(),
        // Without an API a worker of a cluster still needs an id of its own in the status
        // topic.
        (None, Some(_)) => format!(
            "{}:{}",
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "ferry".into()),
            std::process::id()
        ),
        (None, None) => "ferry".into(),
    };
    let distributed = match &opts.distributed {
        Some(d) => {
            let client = worker_client(&worker, opts.kerberos.as_ref())?;
            if cluster_id.is_none() {
                let (probe, timeout) = (client.clone(), opts.probe_timeout);
                let probed = tokio::task::spawn_blocking(move || {
                    kafka::probe_cluster(&probe, timeout, true)
                })
                .await;
                match probed {
                    Ok(Ok((_, id))) => cluster_id = id,
                    Ok(Err(source)) => {
                        return Err(StartupError::WorkerProbe {
                            group: d.group_id.clone(),
                            worker: worker.file.path.display().to_string(),
                            source,
                        });
                    }
                    Err(e) => return Err(StartupError::Rest(e.to_string())),
                }
            }
            let opened = config_log::ConfigLog::open(&client, d, root.clone())
                .await
                .map_err(|e| StartupError::Rest(e.to_string()))?;
            let status = status_log::StatusLog::open(&client, d, worker_id.clone(), root.clone())
                .await
                .map_err(|e| StartupError::Rest(e.to_string()))?;
            Some((opened, status))
        }
        None => None,
    };
    let (distributed, status_log) = match distributed {
        Some((log, status)) => (Some(log), Some(status)),
        None => (None, None),
    };
    if let Some(listener) = &worker.metrics_listener {
        crate::metrics::listener::serve(listener, root.clone()).await?;
    }
    let herder = Herder::new(service::Shared {
        worker_id,
        worker,
        store,
        exit_at_end: opts.exit_at_end,
        probe_timeout: opts.probe_timeout,
        rt: tokio::runtime::Handle::current(),
        root: root.clone(),
        cluster_id: std::sync::Mutex::new(cluster_id),
        kerberos: opts.kerberos.clone(),
        storage: rest.as_ref().and_then(|r| r.storage.clone()),
        log: distributed.as_ref().map(|(log, _, _)| log.clone()),
        status: status_log.clone(),
        unrunnable: Default::default(),
        static_member,
    });
    if let Some((log, reads, end)) = distributed {
        let follower = herder.clone();
        tokio::spawn(async move { follower.follow(reads, end).await });
        // Serve once this worker's view holds what the topic held at start.
        let caught_up = async {
            while !log.is_caught_up() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(60), caught_up)
            .await
            .is_err()
        {
            return Err(StartupError::Rest(format!(
                "config.storage.topic {}: not read to its end within 60 s",
                log.topic()
            )));
        }
    }
    // Distributed: this worker's states go to the status topic from now until it stops.
    let reporter = status_log.map(|status| {
        let herder = herder.clone();
        let log = status.clone();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move { herder.report_status(log, token).await });
        (status, task, stop)
    });
    for (config, client) in connectors.into_iter().zip(clients) {
        let raw = as_written(&config);
        let origin = Origin::File(config.file.path.clone());
        // Names are unique (checked at load), so this cannot be refused.
        if let Err(e) = herder
            .add(config, client, raw, origin, Target::Started)
            .await
        {
            tracing::error!(error = %e, "Connector not added.");
        }
    }
    for (name, raw, target) in stored {
        if herder.lock().await.contains_key(&name) {
            tracing::warn!(connector = %name, "A connector file names this connector too; the file's config is used, the stored one is dropped.");
            continue;
        }
        let parsed = herder.parse(&raw, &Origin::Rest);
        let mut config = match parsed {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(connector = %name, error = %e, "Stored connector not started: its config is no longer valid; create it again through the API.");
                continue;
            }
        };
        if let Err(e) = herder.kerberos(&mut config) {
            tracing::error!(connector = %name, error = %e, "Stored connector not started.");
            continue;
        }
        let client = match herder.client(&config) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(connector = %name, error = %e, "Stored connector not started.");
                continue;
            }
        };
        if let Err(e) = herder.add(config, client, raw, Origin::Rest, target).await {
            tracing::error!(connector = %name, error = %e, "Stored connector not added.");
        }
    }
    let api_token = CancellationToken::new();
    let server = match &rest {
        Some(r) if !listeners.is_empty() => Some(tokio::spawn(crate::rest::serve(
            listeners,
            crate::rest::Api::new(herder.clone(), r, opts.metrics.clone(), users),
            api_token.clone(),
        ))),
        _ => None,
    };
    let worker = &herder.shared.worker;

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
            _ = status_tick.tick() => {
                let mut table = herder.lock().await;
                for e in table.values_mut() {
                    e.note_active_topics();
                    if let Some(r) = e.running.as_mut() {
                        r.log_status(opts.exit_at_end);
                    }
                }
            }
            _ = check.tick() => {
                let table = herder.lock().await;
                let running: Vec<&running::Running> = table.values().filter_map(|e| e.running.as_ref()).collect();
                running.iter().for_each(|r| r.handle.metrics.observe(&r.handle.task_statuses()));
                let states: Vec<TaskState> = running.iter().flat_map(|r| r.handle.task_statuses().into_iter().map(|t| t.state())).collect();
                if !states.is_empty() && states.iter().all(|s| matches!(s, TaskState::Failed(_))) {
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
    // No operation may start a connector once the drain has begun.
    api_token.cancel();
    if let Some(server) = server {
        let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    }
    root.cancel();
    let deadline = tokio::time::Instant::now() + worker.shutdown_timeout;
    let mut drained = true;
    let mut table = herder.lock().await;
    for r in table.values_mut().filter_map(|e| e.running.as_mut()) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !r.handle.join(left).await {
            drained = false;
            tracing::error!(connector = %r.handle.name, timeout_ms = worker.shutdown_timeout.as_millis() as u64, "Connector did not stop within task.shutdown.graceful.timeout.ms; its last interval may be redelivered after restart.");
        }
    }
    if let Some((status, task, stop)) = reporter {
        // Its heartbeat ran through the drain; its state check may be waiting for the table
        // held here, so it is aborted rather than waited for. Then the clean stop's records.
        stop.cancel();
        task.abort();
        let _ = task.await;
        // Whatever is left of the stop's bound, and a moment even when nothing is.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        status.stop(left.max(Duration::from_secs(2))).await;
    }
    let running: Vec<&running::Running> =
        table.values().filter_map(|e| e.running.as_ref()).collect();
    let summaries: Vec<ConnectorSummary> = running.iter().map(|r| r.summary()).collect();
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
