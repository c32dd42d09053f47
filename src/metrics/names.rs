//! Every series ferry exports: its name and its help text, in one table.
//!
//! Kafka Connect's names are those Strimzi's jmx_exporter rules
//! (`packaging/examples/metrics/prometheus-jmx-exporter/kafka-connect-metrics.yaml`) and
//! Confluent's give Connect's MBeans: `kafka.connect:type=sink-task-metrics` attribute
//! `sink-record-read-total` becomes `kafka_connect_sink_task_sink_record_read_total`. Their
//! types follow those rules too: `…-total` attributes are counters, the rest gauges.

use metrics::{Recorder, SharedString};
use metrics_exporter_prometheus::PrometheusRecorder;

// Sink task metrics (labels connector, task).
pub(crate) const SINK_RECORD_READ: &str = "kafka_connect_sink_task_sink_record_read_total";
pub(crate) const SINK_RECORD_SEND: &str = "kafka_connect_sink_task_sink_record_send_total";
pub(crate) const SINK_RECORD_LAG_MAX: &str = "kafka_connect_sink_task_sink_record_lag_max";
pub(crate) const PARTITION_COUNT: &str = "kafka_connect_sink_task_partition_count";
pub(crate) const COMMIT_COMPLETION: &str = "kafka_connect_sink_task_offset_commit_completion_total";
pub(crate) const COMMIT_SKIP: &str = "kafka_connect_sink_task_offset_commit_skip_total";
pub(crate) const PUT_AVG_MS: &str = "kafka_connect_sink_task_put_batch_avg_time_ms";
pub(crate) const PUT_MAX_MS: &str = "kafka_connect_sink_task_put_batch_max_time_ms";

// Task error metrics (labels connector, task).
pub(crate) const RECORD_ERRORS: &str = "kafka_connect_task_error_metrics_total_record_errors";
pub(crate) const RECORD_FAILURES: &str = "kafka_connect_task_error_metrics_total_record_failures";
pub(crate) const RECORDS_SKIPPED: &str = "kafka_connect_task_error_metrics_total_records_skipped";
pub(crate) const RETRIES: &str = "kafka_connect_task_error_metrics_total_retries";
pub(crate) const ERRORS_LOGGED: &str = "kafka_connect_task_error_metrics_total_errors_logged";
pub(crate) const DLQ_REQUESTS: &str =
    "kafka_connect_task_error_metrics_deadletterqueue_produce_requests";
pub(crate) const DLQ_FAILURES: &str =
    "kafka_connect_task_error_metrics_deadletterqueue_produce_failures";
pub(crate) const LAST_ERROR_TIMESTAMP: &str =
    "kafka_connect_task_error_metrics_last_error_timestamp";

// Status (value 1, the state in the `status` label).
pub(crate) const CONNECTOR_STATUS: &str = "kafka_connect_connector_status";
pub(crate) const TASK_STATUS: &str = "kafka_connect_connector_task_status";
// Connector information (value 1, the value in a label).
pub(crate) const CONNECTOR_CLASS: &str = "kafka_connect_connector_connector_class";
pub(crate) const CONNECTOR_TYPE: &str = "kafka_connect_connector_connector_type";
pub(crate) const CONNECTOR_VERSION: &str = "kafka_connect_connector_connector_version";

// Worker.
pub(crate) const WORKER_CONNECTOR_COUNT: &str = "kafka_connect_worker_connector_count";
pub(crate) const WORKER_TASK_COUNT: &str = "kafka_connect_worker_task_count";
pub(crate) const CONNECTOR_TOTAL_TASKS: &str = "kafka_connect_worker_connector_total_task_count";
pub(crate) const CONNECTOR_RUNNING_TASKS: &str =
    "kafka_connect_worker_connector_running_task_count";
pub(crate) const CONNECTOR_FAILED_TASKS: &str = "kafka_connect_worker_connector_failed_task_count";

// ferry's own.
pub(crate) const CONSUMER_LAG: &str = "ferry_consumer_lag";
pub(crate) const BYTES_IN: &str = "ferry_bytes_in_total";
pub(crate) const BYTES_OUT: &str = "ferry_bytes_out_total";
pub(crate) const PUT_DURATION: &str = "ferry_sink_put_duration_seconds";
pub(crate) const FLUSH_DURATION: &str = "ferry_sink_flush_duration_seconds";
pub(crate) const OFFSET_FILE_WRITE: &str = "ferry_offset_file_write_duration_seconds";
pub(crate) const OFFSET_FILE_WRITE_ERRORS: &str = "ferry_offset_file_write_errors_total";
pub(crate) const KERBEROS_EXPIRES_IN: &str = "ferry_kerberos_ticket_expires_in_seconds";
pub(crate) const PROCESS_RSS: &str = "ferry_process_resident_memory_bytes";
pub(crate) const PROCESS_CPU: &str = "ferry_process_cpu_seconds";

/// Bucket upper bounds of every histogram (all measure seconds): from a fast in-memory
/// put to a Pub/Sub or BigQuery request at its timeout.
pub(crate) const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Name, kind and help text of every series.
const TABLE: &[(&str, Kind, &str)] = &[
    (
        SINK_RECORD_READ,
        Kind::Counter,
        "Records the sink task received from the connector's Kafka consumer (Connect's sink-record-read-total).",
    ),
    (
        SINK_RECORD_SEND,
        Kind::Counter,
        "Records the sink task accepted in put (Connect's sink-record-send-total).",
    ),
    (
        SINK_RECORD_LAG_MAX,
        Kind::Gauge,
        "Largest consumer lag (records after the committed offset) among the task's partitions, measured every ferry.status.interval.ms (Connect's sink-record-lag-max).",
    ),
    (
        PARTITION_COUNT,
        Kind::Gauge,
        "Topic partitions assigned to the task (Connect's partition-count).",
    ),
    (
        COMMIT_COMPLETION,
        Kind::Counter,
        "Offset commits the task completed: the sink flushed and the offsets were recorded (Connect's offset-commit-completion-total).",
    ),
    (
        COMMIT_SKIP,
        Kind::Counter,
        "Offset commits skipped: the flush failed, timed out or the offset file could not be written; the next one retries (Connect's offset-commit-skip-total).",
    ),
    (
        PUT_AVG_MS,
        Kind::Gauge,
        "Average time of the task's put calls in the last 30 to 60 seconds, in milliseconds (Connect's put-batch-avg-time-ms).",
    ),
    (
        PUT_MAX_MS,
        Kind::Gauge,
        "Longest put call of the task in the last 30 to 60 seconds, in milliseconds (Connect's put-batch-max-time-ms).",
    ),
    (
        RECORD_ERRORS,
        Kind::Gauge,
        "Records that could not be converted or delivered (Connect's total-record-errors).",
    ),
    (
        RECORD_FAILURES,
        Kind::Gauge,
        "Failed attempts to convert or deliver records, retries included (Connect's total-record-failures).",
    ),
    (
        RECORDS_SKIPPED,
        Kind::Gauge,
        "Records skipped under errors.tolerance=all (Connect's total-records-skipped).",
    ),
    (
        RETRIES,
        Kind::Gauge,
        "Retries of batches the sink could not take or decode yet (Connect's total-retries).",
    ),
    (
        ERRORS_LOGGED,
        Kind::Gauge,
        "Errant records logged; ferry logs every skipped record (Connect's total-errors-logged).",
    ),
    (
        DLQ_REQUESTS,
        Kind::Gauge,
        "Records sent to the dead-letter queue, one per destination (Connect's deadletterqueue-produce-requests).",
    ),
    (
        DLQ_FAILURES,
        Kind::Gauge,
        "Failed attempts to write to the dead-letter queue; each is retried (Connect's deadletterqueue-produce-failures).",
    ),
    (
        LAST_ERROR_TIMESTAMP,
        Kind::Gauge,
        "Epoch milliseconds of the task's last record error; 0 none (Connect's last-error-timestamp).",
    ),
    (
        CONNECTOR_STATUS,
        Kind::Gauge,
        "1 for the connector's current state in the status label (running, failed), 0 for states it left.",
    ),
    (
        TASK_STATUS,
        Kind::Gauge,
        "1 for the task's current state in the status label (running, failed, stopped), 0 for states it left.",
    ),
    (
        CONNECTOR_CLASS,
        Kind::Gauge,
        "1, with the connector's connector.class as written in the connector_class label (Connect's connector-class).",
    ),
    (
        CONNECTOR_TYPE,
        Kind::Gauge,
        "1, with connector_type=\"sink\" (Connect's connector-type).",
    ),
    (
        CONNECTOR_VERSION,
        Kind::Gauge,
        "1, with the ferry version in the connector_version label (Connect's connector-version).",
    ),
    (
        WORKER_CONNECTOR_COUNT,
        Kind::Gauge,
        "Connectors run by this worker (Connect's connector-count).",
    ),
    (
        WORKER_TASK_COUNT,
        Kind::Gauge,
        "Tasks run by this worker; ferry starts a task when a partition needs one (Connect's task-count).",
    ),
    (
        CONNECTOR_TOTAL_TASKS,
        Kind::Gauge,
        "Tasks of the connector on this worker (Connect's connector-total-task-count).",
    ),
    (
        CONNECTOR_RUNNING_TASKS,
        Kind::Gauge,
        "Running tasks of the connector on this worker (Connect's connector-running-task-count).",
    ),
    (
        CONNECTOR_FAILED_TASKS,
        Kind::Gauge,
        "Failed tasks of the connector on this worker (Connect's connector-failed-task-count).",
    ),
    (
        CONSUMER_LAG,
        Kind::Gauge,
        "Records in the partition after the connector's committed offset (the broker's high watermark minus the group's or offset file's offset), measured every ferry.status.interval.ms, paused partitions included; 0 once the partition is no longer assigned.",
    ),
    (
        BYTES_IN,
        Kind::Counter,
        "Bytes of record keys and values the connector's consumer read and handed to its tasks.",
    ),
    (
        BYTES_OUT,
        Kind::Counter,
        "Bytes of record keys and values the sink task accepted in put.",
    ),
    (
        PUT_DURATION,
        Kind::Histogram,
        "Duration of the sink's put calls (one per batch), retried calls included.",
    ),
    (
        FLUSH_DURATION,
        Kind::Histogram,
        "Duration of the sink's flushes before an offset commit (pre_commit): the wait for outstanding requests.",
    ),
    (
        OFFSET_FILE_WRITE,
        Kind::Histogram,
        "Duration of an offset file write (temporary file, fsync, rename, fsync of the directory).",
    ),
    (
        OFFSET_FILE_WRITE_ERRORS,
        Kind::Counter,
        "Offset file writes that failed (each is retried at the next flush).",
    ),
    (
        KERBEROS_EXPIRES_IN,
        Kind::Gauge,
        "Seconds until the Kerberos ticket-granting ticket of the keytab login expires (negative once expired); ferry renews it at about 80 % of its life.",
    ),
    (
        PROCESS_RSS,
        Kind::Gauge,
        "Resident set size of the ferry process in bytes (Linux VmRSS).",
    ),
    (
        PROCESS_CPU,
        Kind::Gauge,
        "CPU time (user and system) the ferry process has used, in seconds; it only grows (use rate()).",
    ),
];

/// Gives every series its help text.
pub(crate) fn describe(recorder: &PrometheusRecorder) {
    for (name, kind, help) in TABLE {
        let help = SharedString::const_str(help);
        let name = metrics::KeyName::from_const_str(name);
        match kind {
            Kind::Counter => recorder.describe_counter(name, None, help),
            Kind::Gauge => recorder.describe_gauge(name, None, help),
            Kind::Histogram => recorder.describe_histogram(name, None, help),
        }
    }
}

#[cfg(test)]
pub(crate) fn all() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(name, _, _)| *name)
}
