//! The herder as a service: it owns the connectors for the life of the process and takes
//! operations — the CLI's (the connector files at start) and the REST API's — through one
//! cloneable handle.
//!
//! One `tokio::sync::Mutex` over the connector table serialises operations, as Kafka
//! Connect's herder thread does: a PUT and a DELETE of the same connector cannot interleave,
//! and an operation that stops a connector (drain + commit, bounded by
//! `task.shutdown.graceful.timeout.ms`) holds the table until it is done. A command channel
//! to an actor task would serialise the same way but add a task to supervise and a reply
//! channel per call; operations are rare and short, so the mutex is the simpler owner.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::{Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

use super::queries::info_of;
use super::running::Running;
use super::status::{ConnectorInfo, ConnectorStateInfo, Target};
use crate::config::providers::SystemEnvironment;
use crate::config::{ConfigFileError, ConnectorConfig, PropertiesFile, WorkerConfig};
use crate::kafka::{self, ProbeError};
use crate::offsets::FileOffsetStore;
use crate::worker;

/// Why an operation was refused; the REST API maps each to Connect's status code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HerderError {
    /// 404.
    #[error("Connector {0} not found")]
    NotFound(String),
    /// 404 for a task.
    #[error("No status found for task {0}-{1}")]
    TaskNotFound(String, usize),
    /// 409.
    #[error("Connector {0} already exists")]
    Exists(String),
    /// 409: the worker's view is behind (distributed mode).
    #[error("{0}")]
    Conflict(String),
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 400: a config with errors, each `(key, reason)`.
    #[error("Connector configuration is invalid and contains the following {} error(s):\n{}\nYou can also find the above list of errors at the endpoint `/connector-plugins/{{connectorType}}/config/validate`", .0.len(), .0.iter().map(|(k, r)| format!("{k}: {r}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<(String, String)>),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

/// Where a connector's config came from.
#[derive(Debug, Clone)]
pub enum Origin {
    File(PathBuf),
    Rest,
}

/// One connector the herder owns.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The config as written: provider references unresolved.
    pub(crate) raw: BTreeMap<String, String>,
    pub(crate) origin: Origin,
    pub(crate) config: ConnectorConfig,
    /// Its consumer's client config, built once when the config was accepted.
    pub(crate) client: kafka::ConsumerClient,
    pub(crate) target: Target,
    pub(crate) running: Option<Running>,
    /// Tasks of the last run, shown PAUSED while paused.
    pub(crate) last_tasks: usize,
    /// Connect's active topics: every topic the connector's consumer has been assigned
    /// since the connector was created or its topics were last reset.
    pub(crate) active_topics: BTreeSet<String>,
}

impl Entry {
    /// Records the topics the connector's consumer holds now as active.
    pub(crate) fn note_active_topics(&mut self) {
        if let Some(r) = &self.running {
            let assigned = crate::worker::status::lock(&r.handle.consumer.assigned);
            for tp in assigned.iter() {
                if !self.active_topics.contains(&*tp.topic) {
                    self.active_topics.insert(tp.topic.to_string());
                }
            }
        }
    }
}

/// What every operation needs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) worker: WorkerConfig,
    pub(crate) store: Option<Arc<FileOffsetStore>>,
    pub(crate) exit_at_end: bool,
    pub(crate) probe_timeout: Duration,
    pub(crate) rt: Handle,
    pub(crate) root: CancellationToken,
    /// `host:port` as advertised: Connect's `worker_id`.
    pub(crate) worker_id: String,
    pub(crate) cluster_id: std::sync::Mutex<Option<String>>,
    pub(crate) kerberos: Option<crate::auth::kerberos::KerberosPlan>,
    /// `ferry.config.storage.file`.
    pub(crate) storage: Option<PathBuf>,
    /// Distributed mode: the cluster's config topic, which every change goes through.
    pub(crate) log: Option<Arc<super::config_log::ConfigLog>>,
    /// Distributed mode: the cluster's status topic, where this worker writes its states
    /// and reads the other workers'.
    pub(crate) status: Option<Arc<super::status_log::StatusLog>>,
    /// Distributed mode: connectors of the config topic this worker cannot run (a class
    /// ferry does not have, a config it refuses), shown FAILED with the reason.
    pub(crate) unrunnable: std::sync::Mutex<BTreeMap<String, Unrunnable>>,
    /// Distributed mode with `ferry.static.membership=true`: this worker's part of its
    /// consumers' `group.instance.id`s.
    pub(crate) static_member: Option<String>,
}

/// A connector of the config topic that this worker cannot run.
#[derive(Debug, Clone)]
pub(crate) struct Unrunnable {
    pub(crate) raw: BTreeMap<String, String>,
    pub(crate) reason: String,
}

/// The herder's handle; clones share one herder.
#[derive(Debug, Clone)]
pub struct Herder {
    pub(crate) shared: Arc<Shared>,
    pub(crate) table: Arc<Mutex<BTreeMap<String, Entry>>>,
}

pub(crate) const SINK: &str = "sink";

/// A config given over the API as a file without lines, named for error messages.
fn rest_file(raw: &BTreeMap<String, String>) -> PropertiesFile {
    let name = raw.get("name").map(String::as_str).unwrap_or("?");
    PropertiesFile {
        path: PathBuf::from(format!("connector {name} (REST request)")),
        entries: raw.clone(),
        lines: BTreeMap::new(),
        duplicates: Vec::new(),
    }
}

impl Herder {
    pub(crate) fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
            table: Arc::default(),
        }
    }

    pub(crate) async fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.table.lock().await
    }

    pub fn worker_id(&self) -> &str {
        &self.shared.worker_id
    }

    pub fn cluster_id(&self) -> Option<String> {
        crate::worker::status::lock(&self.shared.cluster_id).clone()
    }

    /// Parses a connector config from a key/value map and where it came from. Pure but for
    /// config providers.
    pub fn parse(
        &self,
        raw: &BTreeMap<String, String>,
        origin: &Origin,
    ) -> Result<ConnectorConfig, ConfigFileError> {
        let mut file = rest_file(raw);
        if let Origin::File(p) = origin {
            file.path = p.clone();
        }
        ConnectorConfig::from_file(file, &self.shared.worker, &SystemEnvironment)
    }

    /// Every problem of a config the parser can find, each `(key, reason)` (the same
    /// validation as `ferry validate`).
    pub fn validate(&self, raw: &BTreeMap<String, String>) -> Vec<(String, String)> {
        let file = rest_file(raw);
        crate::config::problems::connector_problems(&file, &self.shared.worker, &SystemEnvironment)
            .iter()
            .map(|p| (p.key.clone(), p.reason()))
            .collect()
    }

    /// Writes the API's connectors to `ferry.config.storage.file`, if set.
    fn persist(&self, table: &BTreeMap<String, Entry>) {
        let Some(path) = &self.shared.storage else {
            return;
        };
        let stored = table
            .iter()
            .filter(|(_, e)| matches!(e.origin, Origin::Rest))
            .map(|(n, e)| (n.as_str(), &e.raw, e.target));
        if let Err(e) = super::storage::save(path, stored) {
            tracing::error!(error = %e, "Connector store not written; changes made through the API since its last write are lost at restart.");
        }
    }

    /// The client config of an accepted connector (Kerberos planned), built once.
    pub(crate) fn client(
        &self,
        config: &ConnectorConfig,
    ) -> Result<kafka::ConsumerClient, HerderError> {
        let mut client = kafka::ConsumerClient::build(config, &self.shared.worker)
            .map_err(|e| HerderError::BadRequest(e.to_string()))?;
        // KIP-848's protocol assigns on the broker, incrementally: it takes no assignor.
        let broker_assigns = client.consumer().get("group.protocol") == Some("consumer");
        if self.shared.log.is_some() && !broker_assigns {
            // Distributed: a worker joining or leaving moves only the partitions that must
            // move; the others keep flowing (Connect's incremental cooperative rebalancing).
            client.set_default("partition.assignment.strategy", "cooperative-sticky");
        }
        if let Some(worker) = &self.shared.static_member {
            // An id set in the files (consumer.group.instance.id) wins.
            client.set_default(
                "group.instance.id",
                &crate::config::distributed::group_instance_id(worker, &config.name),
            );
        }
        Ok(client)
    }

    fn start(&self, config: &ConnectorConfig, client: &kafka::ConsumerClient) -> Running {
        tracing::info!(
            connector = %config.name,
            class = %config.class,
            tasks = config.tasks_max,
            subscription = %config.subscription,
            group = %config.group_id(),
            "Starting connector."
        );
        if let Some(id) = client.consumer().get("group.instance.id") {
            tracing::info!(connector = %config.name, group = %config.group_id(), group_instance_id = %id, "The connector's consumer is a static member of its group: a restart within its session.timeout.ms keeps its partitions.");
        }
        let env = worker::ConnectorEnv {
            worker: &self.shared.worker,
            store: self.shared.store.clone(),
            exit_at_end: self.shared.exit_at_end,
            rt: &self.shared.rt,
            parent: &self.shared.root,
        };
        let handle = worker::start_connector(config, client, &env);
        let metadata = if self.shared.exit_at_end {
            kafka::metadata_client(client, &config.name).map(Arc::new)
        } else {
            None
        };
        Running {
            config: config.clone(),
            handle,
            metadata,
            last: (0, 0, Instant::now()),
        }
    }

    /// Stops a connector's tasks: drain, flush, commit. False when they did not stop within
    /// `task.shutdown.graceful.timeout.ms`.
    async fn halt(&self, entry: &mut Entry) -> bool {
        // What it read until now stays among its active topics.
        entry.note_active_topics();
        let Some(mut running) = entry.running.take() else {
            return true;
        };
        entry.last_tasks = running.handle.task_statuses().len().max(1);
        running.handle.cancel.cancel();
        let stopped = running
            .handle
            .join(self.shared.worker.shutdown_timeout)
            .await;
        if !stopped {
            tracing::error!(connector = %running.handle.name, timeout_ms = self.shared.worker.shutdown_timeout.as_millis() as u64, "Connector did not stop within task.shutdown.graceful.timeout.ms; its last interval may be redelivered.");
        }
        let s = running.summary();
        tracing::info!(connector = %s.name, records = s.records, failed_tasks = s.failed, "Connector stopped.");
        stopped
    }

    /// What can be checked before a connector starts: the brokers answer with its
    /// consumer's settings, and the sink's own start-up check passes.
    pub async fn preflight(
        &self,
        config: &ConnectorConfig,
        client: &kafka::ConsumerClient,
    ) -> Result<(), String> {
        let client = client.consumer().clone();
        let timeout = self.shared.probe_timeout;
        let probed = tokio::task::spawn_blocking(move || kafka::probe(&client, timeout))
            .await
            .unwrap_or_else(|e| {
                Err(ProbeError {
                    bootstrap: String::new(),
                    timeout,
                    reason: e.to_string(),
                })
            });
        probed.map_err(|e| e.to_string())?;
        match tokio::time::timeout(timeout, config.connector.preflight()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.one_line()),
            Err(_) => Err(format!(
                "the sink's start-up check did not finish within {timeout:?}"
            )),
        }
    }

    /// Adds a parsed connector and starts it unless `target` says otherwise. The one way
    /// connectors come into being: from the command line's files and from the REST API.
    pub(crate) async fn add(
        &self,
        config: ConnectorConfig,
        client: kafka::ConsumerClient,
        raw: BTreeMap<String, String>,
        origin: Origin,
        target: Target,
    ) -> Result<ConnectorInfo, HerderError> {
        let mut table = self.lock().await;
        if table.contains_key(&config.name) {
            return Err(HerderError::Exists(config.name.clone()));
        }
        let running = (target == Target::Started).then(|| self.start(&config, &client));
        let entry = Entry {
            raw,
            origin,
            config,
            client,
            target,
            running,
            last_tasks: 0,
            active_topics: BTreeSet::new(),
        };
        let info = info_of(&entry, self.task_base(&entry));
        let from_api = matches!(entry.origin, Origin::Rest);
        table.insert(entry.config.name.clone(), entry);
        if from_api {
            self.persist(&table);
        }
        Ok(info)
    }

    /// Parses and checks a config given over the API; every problem in one error.
    pub(crate) async fn parse_checked(
        &self,
        raw: &BTreeMap<String, String>,
    ) -> Result<(ConnectorConfig, kafka::ConsumerClient), HerderError> {
        let mut config = match self.parse(raw, &Origin::Rest) {
            Ok(c) => c,
            Err(_) => return Err(HerderError::Invalid(self.validate(raw))),
        };
        self.kerberos(&mut config)?;
        let client = self.client(&config)?;
        self.preflight(&config, &client).await.map_err(|reason| {
            HerderError::BadRequest(format!("Connector {}: {reason}", config.name))
        })?;
        Ok((config, client))
    }

    /// A connector added at run time may log in with Kerberos only as the process already
    /// does (MIT Kerberos holds one login per process, made at start).
    pub(crate) fn kerberos(&self, config: &mut ConnectorConfig) -> Result<(), HerderError> {
        let planned =
            crate::auth::kerberos::plan(&self.shared.worker, std::slice::from_mut(config))
                .map_err(|e| HerderError::BadRequest(e.to_string()))?;
        let Some(p) = planned else {
            return Ok(());
        };
        match &self.shared.kerberos {
            Some(q) if q.principal == p.principal && q.keytab == p.keytab => Ok(()),
            Some(q) => Err(HerderError::BadRequest(format!(
                "connector {} logs in as {} ({}) but this ferry logs in as {} ({}); one process holds one Kerberos login: use that login or run the connector in another ferry",
                config.name,
                p.principal,
                p.keytab.display(),
                q.principal,
                q.keytab.display()
            ))),
            None => Err(HerderError::BadRequest(format!(
                "connector {} logs in with the keytab {} ({}), but this ferry made no keytab login at start; {}",
                config.name,
                p.keytab.display(),
                p.principal,
                if self.distributed() {
                    "put that login in every worker file (sasl.jaas.config at the top level or under consumer.) and restart the workers"
                } else {
                    "put the connector in a file on the command line and restart ferry"
                }
            ))),
        }
    }

    /// `POST /connectors`.
    pub async fn create(
        &self,
        raw: BTreeMap<String, String>,
        target: Target,
    ) -> Result<ConnectorInfo, HerderError> {
        if self.distributed() {
            return self.create_distributed(raw, target).await;
        }
        if let Some(name) = raw.get("name")
            && self.lock().await.contains_key(name)
        {
            return Err(HerderError::Exists(name.clone()));
        }
        let (config, client) = self.parse_checked(&raw).await?;
        self.add(config, client, raw, Origin::Rest, target).await
    }

    /// `PUT /connectors/{name}/config`: creates, or replaces the config and restarts the
    /// connector with it (its state — running, paused, stopped — is kept). True when created.
    pub async fn put_config(
        &self,
        name: &str,
        raw: BTreeMap<String, String>,
    ) -> Result<(bool, ConnectorInfo), HerderError> {
        if self.distributed() {
            return self.put_distributed(name, raw).await;
        }
        let exists = self.lock().await.contains_key(name);
        if !exists {
            return self.create(raw, Target::Started).await.map(|i| (true, i));
        }
        let (config, client) = self.parse_checked(&raw).await?;
        self.replace_local(name, raw, config, client)
            .await
            .map(|info| (false, info))
    }

    /// Replaces a connector's config and restarts it with it (its state is kept).
    pub(crate) async fn replace_local(
        &self,
        name: &str,
        raw: BTreeMap<String, String>,
        config: ConnectorConfig,
        client: kafka::ConsumerClient,
    ) -> Result<ConnectorInfo, HerderError> {
        let mut table = self.lock().await;
        let entry = table
            .get_mut(name)
            .ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        self.halt(entry).await;
        tracing::info!(connector = %name, "Connector config changed; restarting it with the new config.");
        entry.raw = raw;
        entry.origin = Origin::Rest;
        entry.config = config;
        entry.client = client;
        if entry.target == Target::Started {
            entry.running = Some(self.start(&entry.config, &entry.client));
        }
        let info = info_of(entry, self.task_base(entry));
        self.persist(&table);
        Ok(info)
    }

    /// `PATCH /connectors/{name}/config`: null removes a key.
    pub async fn patch_config(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> Result<ConnectorInfo, HerderError> {
        let mut raw = self.raw_config(name).await?;
        for (k, v) in patch {
            match v {
                Some(v) => raw.insert(k, v),
                None => raw.remove(&k),
            };
        }
        if raw.get("name").is_some_and(|n| n != name) {
            return Err(HerderError::BadRequest(format!(
                "Connector name configuration ({}) doesn't match connector name in the URL ({name})",
                raw["name"]
            )));
        }
        raw.insert("name".into(), name.to_string());
        self.put_config(name, raw).await.map(|(_, info)| info)
    }

    pub(crate) async fn raw_config(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, HerderError> {
        let raw = self.lock().await.get(name).map(|e| e.raw.clone());
        raw.or_else(|| self.unrunnable(name).map(|u| u.raw))
            .ok_or_else(|| HerderError::NotFound(name.to_string()))
    }

    /// `DELETE /connectors/{name}`: stops it (drain + commit) and forgets it.
    pub async fn delete(&self, name: &str) -> Result<(), HerderError> {
        if self.distributed() {
            return self.delete_distributed(name).await;
        }
        self.delete_local(name).await
    }

    pub(crate) async fn delete_local(&self, name: &str) -> Result<(), HerderError> {
        let mut table = self.lock().await;
        let entry = table
            .get_mut(name)
            .ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        self.halt(entry).await;
        table.remove(name);
        self.persist(&table);
        tracing::info!(connector = %name, "Connector deleted.");
        Ok(())
    }

    /// `PUT …/pause`, `…/resume`, `…/stop`: ferry stops a paused connector's tasks (drain +
    /// commit) as it does a stopped one's; only the state shown differs.
    pub async fn set_target(&self, name: &str, target: Target) -> Result<(), HerderError> {
        if self.distributed() {
            return self.target_distributed(name, target).await;
        }
        self.set_target_local(name, target).await
    }

    pub(crate) async fn set_target_local(
        &self,
        name: &str,
        target: Target,
    ) -> Result<(), HerderError> {
        let mut table = self.lock().await;
        let entry = table
            .get_mut(name)
            .ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        if entry.target == target {
            return Ok(());
        }
        match target {
            Target::Started => {
                entry.running = Some(self.start(&entry.config, &entry.client));
            }
            Target::Paused | Target::Stopped => {
                self.halt(entry).await;
                if target == Target::Stopped {
                    entry.last_tasks = 0;
                }
            }
        }
        tracing::info!(connector = %name, state = ?target, "Connector state changed.");
        entry.target = target;
        self.persist(&table);
        Ok(())
    }

    /// `POST …/restart`. Without `include_tasks`/`only_failed` Connect restarts the connector
    /// object alone and answers 204 (None here); with them it answers 202 with the states,
    /// the restarted ones RESTARTING. ferry's tasks share their connector's consumer, so a
    /// restart restarts the connector and all its tasks; `only_failed` restarts nothing when
    /// nothing has failed.
    pub async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<Option<ConnectorStateInfo>, HerderError> {
        if self.distributed() {
            // Every worker restarts its share when it reads the request; the answer is
            // this worker's view with the states the restart changes marked.
            let mut before = self.status(name).await?;
            restart_marks(&mut before, include_tasks, only_failed);
            self.restart_distributed(name, include_tasks, only_failed)
                .await?;
            return Ok((include_tasks || only_failed).then_some(before));
        }
        self.restart_local(name, include_tasks, only_failed).await
    }

    pub(crate) async fn restart_local(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<Option<ConnectorStateInfo>, HerderError> {
        let mut table = self.lock().await;
        let entry = table
            .get_mut(name)
            .ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        let mut before = self.status_of(entry);
        let restart = entry.target == Target::Started
            && restart_marks(&mut before, include_tasks, only_failed);
        if restart {
            self.halt(entry).await;
            entry.running = Some(self.start(&entry.config, &entry.client));
            tracing::info!(connector = %name, "Connector restarted.");
        }
        Ok((include_tasks || only_failed).then_some(before))
    }

    /// `POST …/tasks/{id}/restart`: restarts the connector's consumer and tasks (see
    /// [`Self::restart`]).
    pub async fn restart_task(&self, name: &str, task: usize) -> Result<(), HerderError> {
        self.task_status(name, task).await?;
        self.restart(name, true, false).await.map(|_| ())
    }
}

/// Marks in `status` what a restart with these parameters restarts (Connect's RESTARTING);
/// false when it restarts nothing (`only_failed` and nothing failed).
fn restart_marks(status: &mut ConnectorStateInfo, include_tasks: bool, only_failed: bool) -> bool {
    let failed = |s: &str| s == "FAILED";
    let any_failed = failed(status.connector.state) || status.tasks.iter().any(|t| failed(t.state));
    if only_failed && !any_failed {
        return false;
    }
    if !only_failed || failed(status.connector.state) {
        status.connector.state = "RESTARTING";
    }
    for t in &mut status.tasks {
        if include_tasks && (!only_failed || failed(t.state)) {
            t.state = "RESTARTING";
        }
    }
    true
}
