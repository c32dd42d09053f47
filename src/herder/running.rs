//! A running connector as the herder sees it: its worker handle, the status line, and the
//! `--exit-at-end` check.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;

use super::ConnectorSummary;
use crate::config::ConnectorConfig;
use crate::kafka;
use crate::worker::ConnectorHandle;
use crate::worker::status::{TaskState, lock, now_ms};

pub(crate) struct Running {
    pub(crate) config: ConnectorConfig,
    pub(crate) handle: ConnectorHandle,
    /// For `--exit-at-end`: a group-less client for metadata.
    pub(crate) metadata: Option<Arc<kafka::MetadataClient>>,
    pub(crate) last: (u64, u64, Instant),
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("connector", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl Running {
    pub(crate) fn summary(&self) -> ConnectorSummary {
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

    pub(crate) fn log_status(&mut self, exit_at_end: bool) {
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
    pub(crate) async fn at_end(&self) -> bool {
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
