//! A sink task's series: Connect's sink-task and task-error metrics, ferry's bytes and
//! latency histograms. Created with the task (its handles registered once); the driver
//! reports per batch and per commit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram};

use super::{Registry, lock, names};
use crate::worker::status::now_ms;

/// Connect's sampled statistics keep two samples of `metrics.sample.window.ms` (30 s).
const SAMPLE_WINDOW: Duration = Duration::from_secs(30);

/// The handles of one task.
pub struct TaskMetrics {
    read: Counter,
    send: Counter,
    lag_max: Gauge,
    partitions: Gauge,
    commit_completed: Counter,
    commit_skipped: Counter,
    put_avg_ms: Gauge,
    put_max_ms: Gauge,
    record_errors: Gauge,
    record_failures: Gauge,
    records_skipped: Gauge,
    retries: Gauge,
    errors_logged: Gauge,
    last_error: Gauge,
    dlq_requests: Gauge,
    dlq_failures: Gauge,
    bytes_out: Counter,
    put_seconds: Histogram,
    flush_seconds: Histogram,
    status: StatusGauges,
    put_times: Mutex<PutTimes>,
    worker_tasks: Gauge,
}

impl std::fmt::Debug for TaskMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskMetrics").finish_non_exhaustive()
    }
}

impl TaskMetrics {
    /// The task's series in the process's registry, status `running`.
    pub fn new(connector: &str, task: usize) -> Self {
        Self::with(super::global(), connector, task)
    }

    pub fn with(registry: &Registry, connector: &str, task: usize) -> Self {
        let id = task.to_string();
        let labels = [("connector", connector), ("task", id.as_str())];
        let counter = |name| registry.counter(name, &labels);
        let gauge = |name| registry.gauge(name, &labels);
        let by_connector = [("connector", connector)];
        let m = Self {
            read: counter(names::SINK_RECORD_READ),
            send: counter(names::SINK_RECORD_SEND),
            lag_max: gauge(names::SINK_RECORD_LAG_MAX),
            partitions: gauge(names::PARTITION_COUNT),
            commit_completed: counter(names::COMMIT_COMPLETION),
            commit_skipped: counter(names::COMMIT_SKIP),
            put_avg_ms: gauge(names::PUT_AVG_MS),
            put_max_ms: gauge(names::PUT_MAX_MS),
            record_errors: gauge(names::RECORD_ERRORS),
            record_failures: gauge(names::RECORD_FAILURES),
            records_skipped: gauge(names::RECORDS_SKIPPED),
            retries: gauge(names::RETRIES),
            errors_logged: gauge(names::ERRORS_LOGGED),
            last_error: gauge(names::LAST_ERROR_TIMESTAMP),
            dlq_requests: gauge(names::DLQ_REQUESTS),
            dlq_failures: gauge(names::DLQ_FAILURES),
            bytes_out: counter(names::BYTES_OUT),
            put_seconds: registry.histogram(names::PUT_DURATION, &by_connector),
            flush_seconds: registry.histogram(names::FLUSH_DURATION, &by_connector),
            status: StatusGauges::new(registry, names::TASK_STATUS, &labels),
            put_times: Mutex::new(PutTimes::default()),
            worker_tasks: registry.worker_tasks().clone(),
        };
        // Present from the start (counters are, once registered), so that a quiet task
        // reads 0 rather than nothing.
        for g in [
            &m.lag_max,
            &m.partitions,
            &m.put_avg_ms,
            &m.put_max_ms,
            &m.record_errors,
            &m.record_failures,
            &m.records_skipped,
            &m.retries,
            &m.errors_logged,
            &m.last_error,
            &m.dlq_requests,
            &m.dlq_failures,
        ] {
            g.set(0.0);
        }
        m.status.set("running");
        m.worker_tasks.increment(1.0);
        m
    }

    /// A batch reached the task.
    pub fn read(&self, records: usize) {
        self.read.increment(records as u64);
    }

    /// One put call took `elapsed` (whether or not the sink took the batch).
    pub fn put_time(&self, elapsed: Duration) {
        self.put_seconds.record(elapsed.as_secs_f64());
        let (avg, max) = lock(&self.put_times).add(Instant::now(), elapsed);
        self.put_avg_ms.set(avg);
        self.put_max_ms.set(max);
    }

    /// The sink took a batch of `records` records of `bytes` bytes.
    pub fn sent(&self, records: usize, bytes: u64) {
        self.send.increment(records as u64);
        self.bytes_out.increment(bytes);
    }

    /// A batch is retried (the sink could not take it, or it cannot be decoded yet).
    pub fn retry(&self) {
        self.retries.increment(1.0);
        self.record_failures.increment(1.0);
    }

    /// A flush before a commit took `elapsed`.
    pub fn flush_time(&self, elapsed: Duration) {
        self.flush_seconds.record(elapsed.as_secs_f64());
    }

    pub fn commit_completed(&self) {
        self.commit_completed.increment(1);
    }

    pub fn commit_skipped(&self) {
        self.commit_skipped.increment(1);
    }

    pub fn partitions(&self, count: usize) {
        self.partitions.set(count as f64);
    }

    pub fn lag_max(&self, lag: i64) {
        self.lag_max.set(lag as f64);
    }

    /// A record could not be converted or delivered; `skipped` under
    /// `errors.tolerance=all` (and then logged).
    pub fn record_error(&self, skipped: bool) {
        self.record_errors.increment(1.0);
        self.record_failures.increment(1.0);
        self.last_error.set(now_ms() as f64);
        if skipped {
            self.records_skipped.increment(1.0);
            self.errors_logged.increment(1.0);
        }
    }

    /// A record was sent to the dead-letter queue (each destination counts).
    pub fn dead_letter_sent(&self) {
        self.dlq_requests.increment(1.0);
    }

    /// A write to the dead-letter queue failed (each failed attempt counts, as Connect's
    /// producer callback does).
    pub fn dead_letter_failed(&self) {
        self.dlq_failures.increment(1.0);
    }

    /// The task's state, as Connect names it (`running`, `failed`, …).
    pub fn state(&self, state: &str) {
        self.status.set(state);
    }
}

impl Drop for TaskMetrics {
    fn drop(&mut self) {
        self.status.clear();
        self.worker_tasks.decrement(1.0);
    }
}

/// Put times in Connect's two sampling windows: the average and the maximum cover the
/// current window and the one before it.
#[derive(Debug, Default)]
pub(crate) struct PutTimes {
    current: Sample,
    previous: Sample,
}

#[derive(Debug, Default, Clone, Copy)]
struct Sample {
    start: Option<Instant>,
    count: u64,
    sum: Duration,
    max: Duration,
}

impl PutTimes {
    /// Adds a put time at `now`; returns the average and maximum in milliseconds.
    pub(crate) fn add(&mut self, now: Instant, elapsed: Duration) -> (f64, f64) {
        let start = *self.current.start.get_or_insert(now);
        if now.duration_since(start) >= SAMPLE_WINDOW {
            // A window passed with no put at all: the previous sample is stale too.
            self.previous = if now.duration_since(start) >= 2 * SAMPLE_WINDOW {
                Sample::default()
            } else {
                self.current
            };
            self.current = Sample {
                start: Some(now),
                ..Sample::default()
            };
        }
        let c = &mut self.current;
        c.count += 1;
        c.sum += elapsed;
        c.max = c.max.max(elapsed);
        let count = c.count + self.previous.count;
        let sum = c.sum + self.previous.sum;
        let avg = sum.as_secs_f64() * 1000.0 / count as f64;
        let max = c.max.max(self.previous.max).as_secs_f64() * 1000.0;
        (avg, max)
    }
}

/// A Connect status series: one gauge per state seen, 1 for the current one.
///
/// A task or connector restarted under the same name gets new handles to the same series
/// before the old ones are dropped: only the latest owner sets or clears them, and the
/// states seen are kept in the registry, shared by every owner.
pub(crate) struct StatusGauges {
    registry: Registry,
    name: &'static str,
    labels: Vec<(&'static str, String)>,
    /// `name` and `labels`, as the registry knows the series.
    key: String,
    /// This owner's number (see [`Registry::claim`]).
    owner: u64,
}

impl StatusGauges {
    pub(crate) fn new(
        registry: &Registry,
        name: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Self {
        let labels: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
        let key = format!("{name}{labels:?}");
        let owner = registry.claim(&key);
        Self {
            registry: registry.clone(),
            name,
            labels,
            key,
            owner,
        }
    }

    /// Whether no newer task or connector of the same name has taken these series.
    pub(crate) fn owned(&self) -> bool {
        self.registry
            .with_status(&self.key, self.owner, |_| ())
            .is_some()
    }

    /// Makes `state` (lower case, as Connect writes it) the current one.
    pub(crate) fn set(&self, state: &str) {
        let state = state.to_ascii_lowercase();
        self.registry.with_status(&self.key, self.owner, |seen| {
            if !seen.iter().any(|(s, _)| *s == state) {
                let mut labels: Vec<(&'static str, &str)> =
                    self.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                labels.push(("status", &state));
                let gauge = self.registry.gauge(self.name, &labels);
                seen.push((state.clone(), gauge));
            }
            for (s, g) in seen.iter() {
                g.set(if *s == state { 1.0 } else { 0.0 });
            }
        });
    }

    /// No current state any more (the task or connector is gone).
    pub(crate) fn clear(&self) {
        self.registry.with_status(&self.key, self.owner, |seen| {
            for (_, g) in seen.iter() {
                g.set(0.0);
            }
        });
    }
}
