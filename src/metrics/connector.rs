//! A connector's series: its status and task counts (Connect's connector and worker
//! metrics), and what its Kafka consumer reads — bytes, and the lag of each partition.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferry_connector_api::TopicPartition;
use metrics::{Counter, Gauge};

use super::task::{StatusGauges, TaskMetrics};
use super::{Registry, lock, names};
use crate::worker::status::{TaskState, TaskStatus};

/// The handles of one connector.
pub struct ConnectorMetrics {
    registry: Registry,
    name: String,
    status: StatusGauges,
    total_tasks: Gauge,
    running_tasks: Gauge,
    failed_tasks: Gauge,
    bytes_in: Counter,
    /// Per partition the consumer reported a lag for.
    lag: Mutex<HashMap<TopicPartition, Gauge>>,
    /// Connect's connector-class, -type and -version (value 1, the value in a label).
    info: [Gauge; 3],
    worker_connectors: Gauge,
}

impl std::fmt::Debug for ConnectorMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorMetrics")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ConnectorMetrics {
    /// The connector's series in the process's registry, status `running`; `class` is its
    /// `connector.class` as written.
    pub fn new(connector: &str, class: &str) -> Self {
        Self::with(super::global(), connector, class)
    }

    pub fn with(registry: &Registry, connector: &str, class: &str) -> Self {
        let labels = [("connector", connector)];
        let info =
            |name, label, value| registry.gauge(name, &[("connector", connector), (label, value)]);
        let m = Self {
            registry: registry.clone(),
            name: connector.to_string(),
            status: StatusGauges::new(registry, names::CONNECTOR_STATUS, &labels),
            total_tasks: registry.gauge(names::CONNECTOR_TOTAL_TASKS, &labels),
            running_tasks: registry.gauge(names::CONNECTOR_RUNNING_TASKS, &labels),
            failed_tasks: registry.gauge(names::CONNECTOR_FAILED_TASKS, &labels),
            bytes_in: registry.counter(names::BYTES_IN, &labels),
            lag: Mutex::new(HashMap::new()),
            info: [
                info(names::CONNECTOR_CLASS, "connector_class", class),
                info(names::CONNECTOR_TYPE, "connector_type", "sink"),
                info(
                    names::CONNECTOR_VERSION,
                    "connector_version",
                    env!("CARGO_PKG_VERSION"),
                ),
            ],
            worker_connectors: registry.worker_connectors().clone(),
        };
        for g in &m.info {
            g.set(1.0);
        }
        m.status.set("running");
        m.worker_connectors.increment(1.0);
        m
    }

    /// The connector's state, as Connect names it (`running`, `failed`, …).
    pub fn state(&self, state: &str) {
        self.status.set(state);
    }

    /// Task counts and the connector's state from its tasks' states: FAILED when every
    /// task failed (as the status line says), else RUNNING.
    pub fn observe(&self, tasks: &[Arc<TaskStatus>]) {
        let states: Vec<TaskState> = tasks.iter().map(|t| t.state()).collect();
        let failed = states
            .iter()
            .filter(|s| matches!(s, TaskState::Failed(_)))
            .count();
        let running = states
            .iter()
            .filter(|s| matches!(s, TaskState::Running))
            .count();
        self.total_tasks.set(states.len() as f64);
        self.running_tasks.set(running as f64);
        self.failed_tasks.set(failed as f64);
        let all_failed = failed > 0 && failed == states.len();
        self.state(if all_failed { "failed" } else { "running" });
    }

    /// The consumer handed `bytes` bytes of records to a task.
    pub fn bytes_in(&self, bytes: usize) {
        self.bytes_in.increment(bytes as u64);
    }

    /// The lag of each assigned partition with a committed offset (`reported`), and the
    /// largest per task (`owner` says which task holds a partition, `task` gives its
    /// metrics). A partition no longer reported (revoked) reads 0.
    pub fn partition_lags(
        &self,
        reported: &[(TopicPartition, i64)],
        owner: impl Fn(&TopicPartition) -> Option<usize>,
        task: impl Fn(usize) -> Option<Arc<TaskStatus>>,
    ) {
        let mut per_task: HashMap<usize, i64> = HashMap::new();
        {
            let mut gauges = lock(&self.lag);
            // Set once each (a scrape meanwhile sees no false 0): revoked ones to 0.
            for (tp, gauge) in gauges.iter() {
                if !reported.iter().any(|(r, _)| r == tp) {
                    gauge.set(0.0);
                }
            }
            for (tp, lag) in reported {
                if let Some(t) = owner(tp) {
                    let max = per_task.entry(t).or_insert(0);
                    *max = (*max).max(*lag);
                }
                let partition = tp.partition.to_string();
                gauges
                    .entry(tp.clone())
                    .or_insert_with(|| {
                        self.registry.gauge(
                            names::CONSUMER_LAG,
                            &[
                                ("connector", self.name.as_str()),
                                ("topic", &tp.topic),
                                ("partition", &partition),
                            ],
                        )
                    })
                    .set(*lag as f64);
            }
        }
        let mut id = 0;
        while let Some(status) = task(id) {
            let metrics: &TaskMetrics = &status.metrics;
            metrics.lag_max(per_task.get(&id).copied().unwrap_or(0));
            id += 1;
        }
    }
}

impl Drop for ConnectorMetrics {
    fn drop(&mut self) {
        self.worker_connectors.decrement(1.0);
        if !self.status.owned() {
            // A newer connector of the same name has these series.
            return;
        }
        self.status.clear();
        for g in [&self.total_tasks, &self.running_tasks, &self.failed_tasks]
            .into_iter()
            .chain(&self.info)
        {
            g.set(0.0);
        }
        for g in lock(&self.lag).values() {
            g.set(0.0);
        }
    }
}
