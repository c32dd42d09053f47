//! Prometheus metrics: the series Kafka Connect users already scrape through jmx_exporter,
//! and what ferry can add, rendered as Prometheus text on demand ([`render`]) for
//! `GET /metrics` on the REST listener or on `ferry.metrics.listener` ([`listener`]).
//! A router serves the page with `.route("/metrics", get(metrics::listener::metrics_page))`
//! (or [`render`] with [`CONTENT_TYPE`]).
//!
//! Where the numbers come from: the worker's driver (per batch: records read and sent, put
//! and flush times, retries; per commit), the errant-record reporter (record errors and
//! skips), each task's state, the consumer's librdkafka statistics (lag per partition,
//! every `ferry.status.interval.ms`), the offset store (write times), the keytab login
//! (ticket expiry) and /proc at scrape time (memory, CPU).
//!
//! # The library
//!
//! The `metrics` crate's handles with its Prometheus exporter (`metrics-exporter-prometheus`),
//! rather than `prometheus-client`, because:
//!
//! - **The page must be Prometheus text that `promtool check metrics` accepts.**
//!   `prometheus-client` writes only OpenMetrics text, whose counters (`# TYPE x counter`
//!   over samples `x_total`) Prometheus's text parser — the one promtool lints with — reads
//!   as untyped series without help, a finding on every counter that cannot be fixed. The
//!   exporter writes the text format 0.0.4, every family with its `# HELP` and `# TYPE`.
//! - **Names are ours, exactly.** The exporter's default naming adds no suffix, so
//!   Connect's names (`…_sink_record_read_total`, `…_total_record_errors`,
//!   `…_put_batch_avg_time_ms`) come out as Strimzi's jmx_exporter rules make them.
//! - **The record path stays cheap.** A handle (`Counter`, `Gauge`, `Histogram`) is
//!   registered once per task, connector or partition and kept; using it is an atomic add
//!   (a histogram sample goes to a lock-free bucket). The driver counts per batch, never per
//!   record, so at ~800 k records/s (batches of up to 500) that is a few thousand atomic
//!   operations a second.
//!
//! What it cannot do: delete a series. A deleted connector's series stay (their status
//! gauges drop to 0), and a status gauge is kept for each state a task or connector has
//! been in, 1 for the current one and 0 for the others — query `…_status == 1`.
//!
//! The recorder is ferry's own instance, not installed as the `metrics` facade's global
//! recorder: nothing else in the process records through the facade, and tests can render
//! a registry of their own.

mod connector;
pub mod listener;
mod names;
mod process;
mod task;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

pub use connector::ConnectorMetrics;
pub use listener::{ListenerError, MetricsListener};
pub use task::TaskMetrics;

/// The `Content-Type` of [`render`]'s page (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histogram samples are folded into their buckets when nobody scrapes, so that
/// they do not pile up.
const UPKEEP: Duration = Duration::from_secs(5);

/// The metrics of this process as Prometheus text (format 0.0.4; serve it with
/// [`CONTENT_TYPE`]). What is measured at scrape time (memory, CPU, the Kerberos ticket's
/// remaining life) is measured now.
pub fn render() -> String {
    global().render()
}

/// The process's registry, created (and its upkeep thread started) on first use.
pub(crate) fn global() -> &'static Registry {
    static GLOBAL: OnceLock<Registry> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let registry = Registry::new();
        let handle = registry.0.handle.clone();
        let started = std::thread::Builder::new()
            .name("ferry-metrics".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP);
                    handle.run_upkeep();
                }
            });
        if let Err(e) = started {
            // Rendering drains the samples too; only an unscraped ferry keeps them.
            tracing::warn!(error = %e, "Cannot start the metrics upkeep thread; histogram samples are folded in only when /metrics is scraped.");
        }
        registry
    })
}

/// The time a ticket-granting ticket of `principal` expires; `…_expires_in_seconds` counts
/// down to it at every scrape.
pub fn kerberos_ticket(principal: &str, expires: SystemTime) {
    global().kerberos_ticket(principal, expires);
}

/// One write of the offset file: how long it took and whether it succeeded.
pub fn offset_file_written(elapsed: Duration, ok: bool) {
    global().offset_file_written(elapsed, ok);
}

/// The states a status series has been in, each with its gauge.
pub(crate) type StatesSeen = Vec<(String, Gauge)>;

/// A recorder and what the registry itself measures. Cheap to clone (shared).
#[derive(Clone)]
pub struct Registry(Arc<Inner>);

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    worker_connectors: Gauge,
    worker_tasks: Gauge,
    process: process::ProcessGauges,
    kerberos: Mutex<Option<(String, SystemTime, Gauge)>>,
    /// Per status series (see `task::StatusGauges`): its latest owner and the states seen.
    statuses: Mutex<HashMap<String, (u64, StatesSeen)>>,
    next_owner: AtomicU64,
    offset_write: Histogram,
    offset_write_errors: Counter,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

/// Where a handle was registered from; the exporter ignores it.
static METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

impl Registry {
    /// A registry of its own, with every series described and histogram buckets set.
    pub fn new() -> Self {
        // Every histogram of ferry measures seconds; `set_buckets` fails only on an empty
        // list, which this is not (else histograms would render as summaries).
        let recorder = PrometheusBuilder::new()
            .set_buckets(names::SECONDS_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        names::describe(&recorder);
        let handle = recorder.handle();
        let gauge = |name| recorder.register_gauge(&Key::from_name(name), &METADATA);
        let inner = Inner {
            worker_connectors: gauge(names::WORKER_CONNECTOR_COUNT),
            worker_tasks: gauge(names::WORKER_TASK_COUNT),
            process: process::ProcessGauges {
                rss: gauge(names::PROCESS_RSS),
                cpu: gauge(names::PROCESS_CPU),
            },
            kerberos: Mutex::new(None),
            statuses: Mutex::new(HashMap::new()),
            next_owner: AtomicU64::new(0),
            offset_write: recorder
                .register_histogram(&Key::from_name(names::OFFSET_FILE_WRITE), &METADATA),
            offset_write_errors: recorder
                .register_counter(&Key::from_name(names::OFFSET_FILE_WRITE_ERRORS), &METADATA),
            recorder,
            handle,
        };
        // Present from the start, so that a worker with no connector says 0.
        inner.worker_connectors.set(0.0);
        inner.worker_tasks.set(0.0);
        Self(Arc::new(inner))
    }

    /// The page, with the scrape-time measurements taken now.
    pub fn render(&self) -> String {
        self.0.process.refresh();
        if let Some((_, expires, gauge)) = &*lock(&self.0.kerberos) {
            gauge.set(process::seconds_until(*expires));
        }
        self.0.handle.render()
    }

    fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::new(*k, (*v).to_string()))
            .collect();
        Key::from_parts(name, labels)
    }

    pub(crate) fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.0
            .recorder
            .register_counter(&Self::key(name, labels), &METADATA)
    }

    pub(crate) fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.0
            .recorder
            .register_gauge(&Self::key(name, labels), &METADATA)
    }

    pub(crate) fn histogram(
        &self,
        name: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Histogram {
        self.0
            .recorder
            .register_histogram(&Self::key(name, labels), &METADATA)
    }

    /// Makes a new owner the latest of a status series (`key`: its name and labels);
    /// returns its number.
    pub(crate) fn claim(&self, key: &str) -> u64 {
        let owner = self.0.next_owner.fetch_add(1, Ordering::Relaxed);
        lock(&self.0.statuses).entry(key.to_string()).or_default().0 = owner;
        owner
    }

    /// Runs `f` on the states seen of a status series if `owner` is its latest owner.
    pub(crate) fn with_status<T>(
        &self,
        key: &str,
        owner: u64,
        f: impl FnOnce(&mut StatesSeen) -> T,
    ) -> Option<T> {
        let mut statuses = lock(&self.0.statuses);
        match statuses.get_mut(key) {
            Some((latest, seen)) if *latest == owner => Some(f(seen)),
            _ => None,
        }
    }

    pub(crate) fn worker_connectors(&self) -> &Gauge {
        &self.0.worker_connectors
    }

    pub(crate) fn worker_tasks(&self) -> &Gauge {
        &self.0.worker_tasks
    }

    pub fn kerberos_ticket(&self, principal: &str, expires: SystemTime) {
        let mut slot = lock(&self.0.kerberos);
        match &mut *slot {
            Some((p, e, _)) if p == principal => *e = expires,
            _ => {
                let gauge = self.gauge(names::KERBEROS_EXPIRES_IN, &[("principal", principal)]);
                gauge.set(process::seconds_until(expires));
                *slot = Some((principal.to_string(), expires, gauge));
            }
        }
    }

    pub fn offset_file_written(&self, elapsed: Duration, ok: bool) {
        self.0.offset_write.record(elapsed.as_secs_f64());
        if !ok {
            self.0.offset_write_errors.increment(1);
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// Locks a metrics mutex; a poisoned one still holds usable handles.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
