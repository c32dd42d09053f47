//! The herder's read side: what `GET /connectors…` and `GET /connector-plugins` answer,
//! from this worker's table (and, in distributed mode, its peers' tasks in the status
//! topic).

use std::collections::BTreeMap;

use super::service::{Entry, Herder, HerderError, SINK};
use super::status::{
    ConnectorInfo, ConnectorStateInfo, PluginInfo, StateInfo, Target, TaskId, TaskInfo,
    TaskStateInfo, public_config,
};
use crate::worker::status::TaskState;

impl Herder {
    pub async fn list(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().await.keys().cloned().collect();
        names.extend(self.unrunnable_names());
        names.sort();
        names.dedup();
        names
    }

    pub async fn info(&self, name: &str) -> Result<ConnectorInfo, HerderError> {
        let mut info = self
            .lock()
            .await
            .get(name)
            .map(|e| info_of(e, self.task_base(e)));
        if let Some(i) = &mut info {
            self.add_peer_task_ids(name, &mut i.tasks);
        }
        info.or_else(|| {
            self.unrunnable(name).map(|u| ConnectorInfo {
                name: name.to_string(),
                config: public_config(&u.raw),
                tasks: Vec::new(),
                kind: SINK,
            })
        })
        .ok_or_else(|| HerderError::NotFound(name.to_string()))
    }

    /// The config as the API may show it (see [`public_config`]).
    pub async fn config(&self, name: &str) -> Result<BTreeMap<String, String>, HerderError> {
        self.raw_config(name).await.map(|raw| public_config(&raw))
    }

    pub async fn status(&self, name: &str) -> Result<ConnectorStateInfo, HerderError> {
        let mut status = self.own_status(name).await?;
        self.add_peer_tasks(&mut status);
        Ok(status)
    }

    /// This worker's view of its own share of a connector.
    pub(crate) async fn own_status(&self, name: &str) -> Result<ConnectorStateInfo, HerderError> {
        let status = self.lock().await.get(name).map(|e| self.status_of(e));
        status
            .or_else(|| {
                self.unrunnable(name).map(|u| ConnectorStateInfo {
                    name: name.to_string(),
                    connector: StateInfo {
                        state: "FAILED",
                        worker_id: self.shared.worker_id.clone(),
                        trace: Some(u.reason),
                    },
                    tasks: Vec::new(),
                    kind: SINK,
                })
            })
            .ok_or_else(|| HerderError::NotFound(name.to_string()))
    }

    pub async fn task_status(&self, name: &str, task: usize) -> Result<TaskStateInfo, HerderError> {
        self.status(name)
            .await?
            .tasks
            .into_iter()
            .find(|t| t.id == task)
            .ok_or_else(|| HerderError::TaskNotFound(name.to_string(), task))
    }

    pub async fn tasks(&self, name: &str) -> Result<Vec<TaskInfo>, HerderError> {
        let table = self.lock().await;
        let entry = table
            .get(name)
            .ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        let mut config = public_config(&entry.raw);
        config.insert(
            "task.class".into(),
            format!("ferry.{}.SinkTask", entry.config.factory.name),
        );
        let mut ids = info_of(entry, self.task_base(entry)).tasks;
        drop(table);
        self.add_peer_task_ids(name, &mut ids);
        Ok(ids
            .into_iter()
            .map(|id| TaskInfo {
                id,
                config: config.clone(),
            })
            .collect())
    }

    /// `GET …/topics`: Connect's active topics, the topics the connector has read from
    /// (been assigned) since it was created or its topics were last reset, sorted.
    pub async fn topics(&self, name: &str) -> Result<Vec<String>, HerderError> {
        let mut table = self.lock().await;
        let entry = table
            .get_mut(name)
            .ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        entry.note_active_topics();
        Ok(entry.active_topics.iter().cloned().collect())
    }

    /// `PUT …/topics/reset`: forgets the connector's active topics; a topic it still reads
    /// is recorded again the next time its topics are looked at.
    pub async fn reset_topics(&self, name: &str) -> Result<(), HerderError> {
        let mut table = self.lock().await;
        let entry = table
            .get_mut(name)
            .ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        entry.active_topics.clear();
        tracing::info!(connector = %name, "Active topics reset.");
        Ok(())
    }

    pub fn plugins(&self) -> Vec<PluginInfo> {
        crate::registry::factories()
            .into_iter()
            .map(|f| PluginInfo {
                class: f.class_names[0].to_string(),
                kind: SINK,
                version: env!("CARGO_PKG_VERSION"),
            })
            .collect()
    }

    pub(crate) fn status_of(&self, entry: &Entry) -> ConnectorStateInfo {
        let worker_id = self.shared.worker_id.clone();
        let name = entry.config.name.clone();
        let base = self.task_base(entry);
        let task = |id: usize, state: &'static str, trace: Option<String>| TaskStateInfo {
            id: base + id,
            state,
            worker_id: worker_id.clone(),
            trace,
        };
        let (state, tasks): (&'static str, Vec<TaskStateInfo>) =
            match (&entry.running, entry.target) {
                (_, Target::Stopped) => ("STOPPED", Vec::new()),
                (_, Target::Paused) => (
                    "PAUSED",
                    (0..entry.last_tasks.max(1))
                        .map(|id| task(id, "PAUSED", None))
                        .collect(),
                ),
                (None, Target::Started) => ("UNASSIGNED", Vec::new()),
                (Some(r), Target::Started) => {
                    let tasks: Vec<TaskStateInfo> = r
                        .handle
                        .task_statuses()
                        .iter()
                        .map(|t| match t.state() {
                            TaskState::Running => task(t.task_id, "RUNNING", None),
                            TaskState::Failed(trace) => task(t.task_id, "FAILED", Some(trace)),
                            TaskState::Stopped => task(t.task_id, "UNASSIGNED", None),
                        })
                        .collect();
                    let all_failed = !tasks.is_empty() && tasks.iter().all(|t| t.state == "FAILED");
                    (if all_failed { "FAILED" } else { "RUNNING" }, tasks)
                }
            };
        let trace = (state == "FAILED")
            .then(|| tasks.first().and_then(|t| t.trace.clone()))
            .flatten();
        ConnectorStateInfo {
            name,
            connector: StateInfo {
                state,
                worker_id,
                trace,
            },
            tasks,
            kind: SINK,
        }
    }
}

pub(crate) fn info_of(entry: &Entry, base: usize) -> ConnectorInfo {
    let name = entry.config.name.clone();
    let count = match (&entry.running, entry.target) {
        (_, Target::Stopped) => 0,
        (Some(r), _) => r.handle.task_statuses().len(),
        (None, _) => entry.last_tasks,
    };
    ConnectorInfo {
        name: name.clone(),
        config: public_config(&entry.raw),
        tasks: (base..base + count)
            .map(|task| TaskId {
                connector: name.clone(),
                task,
            })
            .collect(),
        kind: SINK,
    }
}
