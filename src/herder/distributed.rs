//! The herder in distributed mode: operations become records of the config topic, and
//! every worker applies every record to its own table of connectors. Each worker runs each
//! connector's consumer in the connector's group, so Kafka's group coordinator spreads
//! the partitions over the workers and moves them when a worker joins, leaves or dies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::config_log::{ConfigLog, Read};
use super::config_records::{self as records, ConfigRecord};
use super::service::{Entry, Herder, HerderError, Origin, Unrunnable};
use super::status::{ConnectorInfo, ConnectorStateInfo, Target, TaskId};
use super::status_log::{HEARTBEAT, StatusLog};

impl Herder {
    fn log(&self) -> Option<&ConfigLog> {
        self.shared.log.as_deref()
    }

    /// Connect answers 409 while a worker's view of the config is behind.
    fn current(&self) -> Result<&ConfigLog, HerderError> {
        let log = self
            .log()
            .ok_or_else(|| HerderError::Internal("not in distributed mode".into()))?;
        if !log.is_caught_up() {
            return Err(HerderError::Conflict(
                "Cannot complete request momentarily due to stale configuration (typically caused by a concurrent config change)".into(),
            ));
        }
        Ok(log)
    }

    pub(crate) fn distributed(&self) -> bool {
        self.log().is_some()
    }

    /// Where this worker's task ids start for a connector: its slot in the status topic ×
    /// the connector's `tasks.max` (0 in standalone mode), so ids are unique over the
    /// cluster.
    pub(crate) fn task_base(&self, entry: &Entry) -> usize {
        self.shared
            .status
            .as_ref()
            .map_or(0, |s| s.slot() * entry.config.tasks_max.max(1))
    }

    /// Adds the tasks other live workers run, as the status topic shows them.
    pub(crate) fn add_peer_tasks(&self, status: &mut ConnectorStateInfo) {
        let Some(log) = &self.shared.status else {
            return;
        };
        let mine: BTreeSet<usize> = status.tasks.iter().map(|t| t.id).collect();
        status.tasks.extend(
            log.peer_tasks(&status.name)
                .into_iter()
                .filter(|t| !mine.contains(&t.id)),
        );
        status.tasks.sort_by_key(|t| t.id);
    }

    /// Adds to `ids` (this worker's task ids of `name`) the ids live peers report in the
    /// status topic, so `GET /connectors/{name}` and `…/tasks` list the cluster's tasks as
    /// `…/status` does.
    pub(crate) fn add_peer_task_ids(&self, name: &str, ids: &mut Vec<TaskId>) {
        let Some(log) = &self.shared.status else {
            return;
        };
        let mine: BTreeSet<usize> = ids.iter().map(|t| t.task).collect();
        ids.extend(
            log.peer_tasks(name)
                .into_iter()
                .filter(|t| !mine.contains(&t.id))
                .map(|t| TaskId {
                    connector: name.to_string(),
                    task: t.id,
                }),
        );
        ids.sort_by_key(|t| t.task);
    }

    /// This worker's share of every connector, as it writes it to the status topic.
    async fn own_statuses(&self) -> Vec<ConnectorStateInfo> {
        let mut all: Vec<ConnectorStateInfo> = self
            .lock()
            .await
            .values()
            .map(|e| self.status_of(e))
            .collect();
        for name in self.unrunnable_names() {
            if !all.iter().any(|s| s.name == name)
                && let Ok(s) = self.own_status(&name).await
            {
                all.push(s);
            }
        }
        all
    }

    /// Writes this worker's states to the status topic as they change (checked twice a
    /// second) and its own record every [`HEARTBEAT`], until cancelled. The two run side by
    /// side: a drain that holds the connector table for seconds must not stop the
    /// heartbeat, or the other workers would take this one for gone.
    pub(crate) async fn report_status(&self, log: Arc<StatusLog>, cancel: CancellationToken) {
        let states = async {
            let mut check = tokio::time::interval(Duration::from_millis(500));
            loop {
                check.tick().await;
                let own = self.own_statuses().await;
                log.sync(&own).await;
            }
        };
        let heartbeat = async {
            let mut beat = tokio::time::interval(HEARTBEAT);
            loop {
                beat.tick().await;
                log.heartbeat().await;
            }
        };
        tokio::select! {
            () = cancel.cancelled() => {}
            () = states => {}
            () = heartbeat => {}
        }
    }

    pub(crate) fn unrunnable(&self, name: &str) -> Option<Unrunnable> {
        crate::worker::status::lock(&self.shared.unrunnable)
            .get(name)
            .cloned()
    }

    pub(crate) fn unrunnable_names(&self) -> Vec<String> {
        crate::worker::status::lock(&self.shared.unrunnable)
            .keys()
            .cloned()
            .collect()
    }

    async fn exists(&self, name: &str) -> bool {
        self.lock().await.contains_key(name) || self.unrunnable(name).is_some()
    }

    async fn write(&self, records: Vec<records::Encoded>) -> Result<(), HerderError> {
        self.current()?
            .write(records)
            .await
            .map_err(HerderError::Internal)
    }

    /// `POST /connectors`: the target state first when it is not RUNNING (as Connect writes
    /// it), then the config; answered once read back.
    pub(crate) async fn create_distributed(
        &self,
        raw: BTreeMap<String, String>,
        target: Target,
    ) -> Result<ConnectorInfo, HerderError> {
        self.current()?;
        let (config, _) = self.parse_checked(&raw).await?;
        let name = config.name.clone();
        if self.exists(&name).await {
            return Err(HerderError::Exists(name));
        }
        let mut out = Vec::new();
        if target != Target::Started {
            out.push(records::target(&name, Some(target)));
        }
        out.push(records::connector(&name, Some(&raw)));
        self.write(out).await?;
        self.info(&name).await
    }

    /// `PUT …/config`: true when created.
    pub(crate) async fn put_distributed(
        &self,
        name: &str,
        raw: BTreeMap<String, String>,
    ) -> Result<(bool, ConnectorInfo), HerderError> {
        self.current()?;
        let created = !self.exists(name).await;
        self.parse_checked(&raw).await?;
        self.write(vec![records::connector(name, Some(&raw))])
            .await?;
        Ok((created, self.info(name).await?))
    }

    pub(crate) async fn delete_distributed(&self, name: &str) -> Result<(), HerderError> {
        self.current()?;
        if !self.exists(name).await {
            return Err(HerderError::NotFound(name.to_string()));
        }
        self.write(vec![
            records::connector(name, None),
            records::target(name, None),
        ])
        .await
    }

    pub(crate) async fn target_distributed(
        &self,
        name: &str,
        target: Target,
    ) -> Result<(), HerderError> {
        self.current()?;
        if !self.exists(name).await {
            return Err(HerderError::NotFound(name.to_string()));
        }
        self.write(vec![records::target(name, Some(target))]).await
    }

    pub(crate) async fn restart_distributed(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<(), HerderError> {
        self.current()?;
        if !self.exists(name).await {
            return Err(HerderError::NotFound(name.to_string()));
        }
        self.write(vec![records::restart(name, include_tasks, only_failed)])
            .await
    }

    /// `PUT /admin/loggers/{namespace}?scope=cluster`: a `logger-cluster-` record that every
    /// worker applies once it reads it (Kafka Connect's KIP-976); answered once this worker
    /// has read it back, and so applied it.
    pub(crate) async fn cluster_log_level(
        &self,
        namespace: &str,
        level: &str,
    ) -> Result<(), HerderError> {
        self.write(vec![records::logger_level(namespace, level)])
            .await
    }

    /// Applies the config topic's records as they are read, in order, until the reader
    /// stops; `end` is where the topic ended at start (caught up once applied).
    pub(crate) async fn follow(&self, mut reads: mpsc::Receiver<Read>, end: i64) {
        let mut targets: BTreeMap<String, Target> = BTreeMap::new();
        while let Some(read) = reads.recv().await {
            match read.record {
                Ok(record) => self.apply(record, &mut targets).await,
                Err(reason) => {
                    tracing::warn!(offset = read.offset, reason = %reason, "Config topic record skipped: not Kafka Connect's shape.");
                }
            }
            if let Some(log) = self.log() {
                log.progress.send_replace(read.offset + 1);
                if read.offset + 1 >= end && !log.is_caught_up() {
                    log.caught_up
                        .store(true, std::sync::atomic::Ordering::Release);
                    tracing::info!(
                        topic = log.topic(),
                        records = end,
                        "Config topic read; this worker's view is current."
                    );
                }
            }
        }
    }

    async fn apply(&self, record: ConfigRecord, targets: &mut BTreeMap<String, Target>) {
        match record {
            ConfigRecord::Connector {
                name,
                properties: Some(raw),
            } => {
                let target = targets.get(&name).copied().unwrap_or(Target::Started);
                self.apply_config(&name, raw, target).await;
            }
            ConfigRecord::Connector {
                name,
                properties: None,
            } => {
                targets.remove(&name);
                crate::worker::status::lock(&self.shared.unrunnable).remove(&name);
                if self.lock().await.contains_key(&name) {
                    let _ = self.delete_local(&name).await;
                }
            }
            ConfigRecord::Target {
                name,
                target: Some(target),
            } => {
                targets.insert(name.clone(), target);
                if self.lock().await.contains_key(&name) {
                    let _ = self.set_target_local(&name, target).await;
                }
            }
            ConfigRecord::Target { target: None, .. } | ConfigRecord::Tasks => {}
            ConfigRecord::LoggerLevel { namespace, level } => {
                self.apply_log_level(&namespace, &level)
            }
            ConfigRecord::Restart {
                name,
                include_tasks,
                only_failed,
            } => {
                if self.lock().await.contains_key(&name) {
                    let _ = self.restart_local(&name, include_tasks, only_failed).await;
                }
            }
        }
    }

    /// A cluster-wide log level. As in Connect, only levels written after this worker read
    /// the topic to its end at start apply: older ones are history, and the worker's own
    /// settings (`RUST_LOG`, its files) stand.
    fn apply_log_level(&self, namespace: &str, level: &str) {
        if !self.log().is_some_and(ConfigLog::is_caught_up) {
            return;
        }
        let Some(loggers) = crate::telemetry::loggers() else {
            return;
        };
        let set = crate::telemetry::loggers::Level::parse(level)
            .ok_or_else(|| format!("`{level}` is not a log level"))
            .and_then(|l| loggers.set(namespace, l).map_err(|e| e.to_string()));
        if let Err(e) = set {
            tracing::warn!(namespace, error = %e, "Cluster-wide log level from the config topic not applied.");
        }
    }

    /// A connector's config from the topic: started, replaced, or recorded as one this
    /// worker cannot run.
    async fn apply_config(&self, name: &str, raw: BTreeMap<String, String>, target: Target) {
        let unchanged = self.lock().await.get(name).is_some_and(|e| e.raw == raw);
        if unchanged {
            return;
        }
        let accepted = self.parse(&raw, &Origin::Rest).map_err(|e| e.to_string());
        let accepted = match accepted {
            Ok(mut config) if config.name == name => self
                .kerberos(&mut config)
                .and_then(|()| self.client(&config).map(|client| (config, client)))
                .map_err(|e| e.to_string()),
            Ok(config) => Err(format!(
                "its config names it {}, its key in the config topic {name}",
                config.name
            )),
            Err(e) => Err(e),
        };
        match accepted {
            Ok((config, client)) => {
                crate::worker::status::lock(&self.shared.unrunnable).remove(name);
                if self.lock().await.contains_key(name) {
                    let _ = self.replace_local(name, raw, config, client).await;
                } else if let Err(e) = self.add(config, client, raw, Origin::Rest, target).await {
                    tracing::error!(connector = %name, error = %e, "Connector of the config topic not added.");
                }
            }
            Err(reason) => {
                tracing::error!(connector = %name, reason = %reason, "Connector of the config topic cannot run on this worker; it shows FAILED.");
                if self.lock().await.contains_key(name) {
                    let _ = self.delete_local(name).await;
                }
                crate::worker::status::lock(&self.shared.unrunnable)
                    .insert(name.to_string(), Unrunnable { raw, reason });
            }
        }
    }
}
