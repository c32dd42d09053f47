#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use super::task::PutTimes;
use super::{ConnectorMetrics, Registry, TaskMetrics, names};

/// The samples of a page: `name{labels}` → value, labels as rendered.
fn samples(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

/// The value of the one sample of `name` whose labels include every `labels` pair.
fn value(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples(page)
        .into_iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v)
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?}: {matching:?}");
    matching.first().copied()
}

#[test]
fn a_task_renders_connects_series_with_its_counts() {
    let registry = Registry::new();
    let task = TaskMetrics::with(&registry, "ztf-sink", 3);
    task.read(500);
    task.read(20);
    task.sent(510, 4096);
    task.commit_completed();
    task.commit_completed();
    task.commit_skipped();
    task.partitions(2);
    task.lag_max(17);
    task.record_error(true);
    task.record_error(false);
    task.retry();
    task.put_time(Duration::from_millis(4));
    task.put_time(Duration::from_millis(8));
    task.flush_time(Duration::from_millis(30));
    let page = registry.render();
    let l = [("connector", "ztf-sink"), ("task", "3")];
    let v = |name| value(&page, name, &l);
    assert_eq!(v(names::SINK_RECORD_READ), Some(520.0), "{page}");
    assert_eq!(v(names::SINK_RECORD_SEND), Some(510.0));
    assert_eq!(v(names::BYTES_OUT), Some(4096.0));
    assert_eq!(v(names::COMMIT_COMPLETION), Some(2.0));
    assert_eq!(v(names::COMMIT_SKIP), Some(1.0));
    assert_eq!(v(names::PARTITION_COUNT), Some(2.0));
    assert_eq!(v(names::SINK_RECORD_LAG_MAX), Some(17.0));
    assert_eq!(v(names::RECORD_ERRORS), Some(2.0));
    assert_eq!(v(names::RECORDS_SKIPPED), Some(1.0));
    assert_eq!(v(names::ERRORS_LOGGED), Some(1.0));
    assert_eq!(v(names::RETRIES), Some(1.0));
    assert_eq!(v(names::RECORD_FAILURES), Some(3.0));
    assert_eq!(v(names::DLQ_REQUESTS), Some(0.0));
    assert_eq!(v(names::PUT_AVG_MS), Some(6.0));
    assert_eq!(v(names::PUT_MAX_MS), Some(8.0));
    assert!(v(names::LAST_ERROR_TIMESTAMP).unwrap() > 1.6e12);
    // The histograms are per connector, in seconds, with buckets.
    let c = [("connector", "ztf-sink")];
    let put_count = value(&page, &format!("{}_count", names::PUT_DURATION), &c);
    assert_eq!(put_count, Some(2.0), "{page}");
    let le = [("connector", "ztf-sink"), ("le", "0.005")];
    let under_5ms = value(&page, &format!("{}_bucket", names::PUT_DURATION), &le);
    assert_eq!(under_5ms, Some(1.0), "{page}");
    let flush_sum = value(&page, &format!("{}_sum", names::FLUSH_DURATION), &c).unwrap();
    assert!((flush_sum - 0.03).abs() < 1e-9, "{flush_sum}");
    // Types and help as Strimzi's rules give them.
    assert!(page.contains(&format!("# TYPE {} counter", names::SINK_RECORD_READ)));
    assert!(page.contains(&format!("# TYPE {} gauge", names::RECORD_ERRORS)));
    assert!(page.contains(&format!("# TYPE {} histogram", names::PUT_DURATION)));
    assert!(page.contains(&format!(
        "# HELP {} Records the sink task",
        names::SINK_RECORD_READ
    )));
}

#[test]
fn status_gauges_say_the_current_state_and_the_worker_counts_follow() {
    let registry = Registry::new();
    let connector = ConnectorMetrics::with(&registry, "c1", "FileStreamSink");
    let t0 = TaskMetrics::with(&registry, "c1", 0);
    let t1 = TaskMetrics::with(&registry, "c1", 1);
    let page = registry.render();
    assert_eq!(value(&page, names::WORKER_CONNECTOR_COUNT, &[]), Some(1.0));
    assert_eq!(value(&page, names::WORKER_TASK_COUNT, &[]), Some(2.0));
    let task_status = |page: &str, task: &str, status: &str| {
        value(
            page,
            names::TASK_STATUS,
            &[("connector", "c1"), ("task", task), ("status", status)],
        )
    };
    assert_eq!(task_status(&page, "0", "running"), Some(1.0));
    assert_eq!(task_status(&page, "0", "failed"), None);
    let class = [("connector", "c1"), ("connector_class", "FileStreamSink")];
    assert_eq!(value(&page, names::CONNECTOR_CLASS, &class), Some(1.0));
    let kind = [("connector", "c1"), ("connector_type", "sink")];
    assert_eq!(value(&page, names::CONNECTOR_TYPE, &kind), Some(1.0));

    t0.state("FAILED");
    connector.state("failed");
    let page = registry.render();
    assert_eq!(task_status(&page, "0", "failed"), Some(1.0));
    assert_eq!(task_status(&page, "0", "running"), Some(0.0));
    assert_eq!(task_status(&page, "1", "running"), Some(1.0));
    let connector_status = |page: &str, status: &str| {
        value(
            page,
            names::CONNECTOR_STATUS,
            &[("connector", "c1"), ("status", status)],
        )
    };
    assert_eq!(connector_status(&page, "failed"), Some(1.0));
    assert_eq!(connector_status(&page, "running"), Some(0.0));

    drop(t1);
    drop(t0);
    drop(connector);
    let page = registry.render();
    assert_eq!(value(&page, names::WORKER_TASK_COUNT, &[]), Some(0.0));
    assert_eq!(value(&page, names::WORKER_CONNECTOR_COUNT, &[]), Some(0.0));
    assert_eq!(task_status(&page, "1", "running"), Some(0.0), "{page}");
    assert_eq!(connector_status(&page, "failed"), Some(0.0));
}

#[test]
fn label_values_are_escaped() {
    let registry = Registry::new();
    let _task = TaskMetrics::with(&registry, "odd \"name\" \\ here", 0);
    let page = registry.render();
    assert!(
        page.contains(r#"connector="odd \"name\" \\ here""#),
        "{page}"
    );
}

#[test]
fn every_series_has_help_and_type_and_appears() {
    let registry = Registry::new();
    let connector = ConnectorMetrics::with(&registry, "c", "pubsub");
    let task = TaskMetrics::with(&registry, "c", 0);
    task.put_time(Duration::from_millis(1));
    task.flush_time(Duration::from_millis(1));
    connector.bytes_in(10);
    registry.kerberos_ticket(
        "reader@EXAMPLE.ORG",
        SystemTime::now() + Duration::from_secs(3600),
    );
    registry.offset_file_written(Duration::from_millis(2), true);
    // The lag of a partition comes from librdkafka's statistics; its gauge is registered
    // the same way.
    let _lag = registry.gauge(
        names::CONSUMER_LAG,
        &[("connector", "c"), ("topic", "t"), ("partition", "0")],
    );
    let page = registry.render();
    for name in names::all() {
        assert!(
            page.contains(&format!("# HELP {name} ")),
            "no help for {name}"
        );
        assert!(
            page.contains(&format!("# TYPE {name} ")),
            "no type for {name}"
        );
        assert!(
            page.lines()
                .any(|l| l.starts_with(name) && !l.starts_with('#')),
            "no sample of {name}"
        );
    }
    let left = value(&page, names::KERBEROS_EXPIRES_IN, &[]).unwrap();
    assert!((3590.0..=3600.0).contains(&left), "{left}");
    assert!(value(&page, names::PROCESS_RSS, &[]).unwrap() > 1e6);
    // A young test process may have used less than one clock tick.
    assert!(value(&page, names::PROCESS_CPU, &[]).unwrap() >= 0.0);
}

#[test]
fn put_times_cover_the_current_and_the_previous_window() {
    let mut times = PutTimes::default();
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    assert_eq!(times.add(t0, ms(10)), (10.0, 10.0));
    assert_eq!(times.add(t0 + ms(1_000), ms(30)), (20.0, 30.0));
    // A new window: the previous one still counts.
    assert_eq!(times.add(t0 + ms(31_000), ms(2)), (14.0, 30.0));
    // Two windows on, the first has aged out.
    assert_eq!(times.add(t0 + ms(62_000), ms(4)), (3.0, 4.0));
    // After a long pause, nothing old remains.
    assert_eq!(times.add(t0 + ms(200_000), ms(6)), (6.0, 6.0));
}

fn worker(text: &str) -> Result<crate::config::WorkerConfig, crate::config::ConfigFileError> {
    let file = crate::config::properties::PropertiesFile::parse(
        std::path::Path::new("worker.properties"),
        text.as_bytes(),
    )?;
    crate::config::WorkerConfig::from_file(file, &crate::config::providers::SystemEnvironment)
}

#[test]
fn the_worker_key_names_the_listener() {
    let w =
        worker("bootstrap.servers=b:9092\nferry.metrics.listener=http://127.0.0.1:9464\n").unwrap();
    let l = w.metrics_listener.unwrap();
    assert_eq!(l.addr.to_string(), "127.0.0.1:9464");
    assert_eq!(l.location, "worker.properties:2");
    assert!(
        w.notes.iter().all(|n| n.key != "ferry.metrics.listener"),
        "taken, not warned about: {:?}",
        w.notes
    );
    let off = worker("bootstrap.servers=b:9092\nferry.metrics.listener=\n").unwrap();
    assert!(off.metrics_listener.is_none());
    let none = worker("bootstrap.servers=b:9092\n").unwrap();
    assert!(none.metrics_listener.is_none());
}

#[test]
fn a_bad_listener_is_one_line_naming_file_line_and_key() {
    let e = worker("bootstrap.servers=b:9092\nferry.metrics.listener=https://0.0.0.0:9464\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("worker.properties:2: ferry.metrics.listener: `https://` is not supported"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
}

fn lags(partitions: &[(&str, i32, i64)]) -> Vec<(ferry_connector_api::TopicPartition, i64)> {
    partitions
        .iter()
        .map(|(t, p, lag)| (ferry_connector_api::TopicPartition::new(*t, *p), *lag))
        .collect()
}

#[test]
fn lags_are_per_partition_and_the_largest_per_task() {
    use std::sync::Arc;

    use ferry_connector_api::TopicPartition;

    use crate::worker::status::TaskStatus;

    let registry = Registry::new();
    let connector = ConnectorMetrics::with(&registry, "c", "pubsub");
    // Tasks in the global registry (as the worker makes them); their lag_max is read there.
    let tasks = [
        Arc::new(TaskStatus::new("lag-test", 0)),
        Arc::new(TaskStatus::new("lag-test", 1)),
    ];
    // t-0 and t-1 on task 0, t-2 on task 1; t-3 has no committed offset (not reported).
    let owner = |tp: &TopicPartition| match tp.partition {
        0 | 1 => Some(0),
        2 => Some(1),
        _ => None,
    };
    let task = |id: usize| tasks.get(id).cloned();
    connector.partition_lags(
        &lags(&[("t", 0, 5), ("t", 1, 40), ("t", 2, 0)]),
        owner,
        task,
    );
    let page = registry.render();
    let lag = |page: &str, p: &str| {
        value(
            page,
            names::CONSUMER_LAG,
            &[("connector", "c"), ("topic", "t"), ("partition", p)],
        )
    };
    assert_eq!(lag(&page, "0"), Some(5.0), "{page}");
    assert_eq!(lag(&page, "1"), Some(40.0));
    assert_eq!(lag(&page, "2"), Some(0.0));
    assert_eq!(lag(&page, "3"), None, "no lag without a committed offset");
    let global = super::render();
    let lag_max = |task: &str| {
        value(
            &global,
            names::SINK_RECORD_LAG_MAX,
            &[("connector", "lag-test"), ("task", task)],
        )
    };
    assert_eq!(lag_max("0"), Some(40.0), "{global}");
    assert_eq!(lag_max("1"), Some(0.0));

    // t-1 revoked: no longer reported, so 0.
    connector.partition_lags(&lags(&[("t", 0, 2), ("t", 2, 9)]), owner, task);
    let page = registry.render();
    assert_eq!(lag(&page, "0"), Some(2.0));
    assert_eq!(lag(&page, "1"), Some(0.0));
    assert_eq!(lag(&page, "2"), Some(9.0));
}

#[test]
fn a_task_restarted_under_its_id_keeps_its_status_when_the_old_one_goes() {
    let registry = Registry::new();
    let old = TaskMetrics::with(&registry, "c", 0);
    old.state("FAILED");
    let new = TaskMetrics::with(&registry, "c", 0);
    new.state("RUNNING");
    drop(old);
    let page = registry.render();
    let status = |s: &str| {
        value(
            &page,
            names::TASK_STATUS,
            &[("connector", "c"), ("task", "0"), ("status", s)],
        )
    };
    assert_eq!(status("running"), Some(1.0), "{page}");
    assert_eq!(status("failed"), Some(0.0));
    assert_eq!(value(&page, names::WORKER_TASK_COUNT, &[]), Some(1.0));
    drop(new);
    let page = registry.render();
    let running = [("connector", "c"), ("task", "0"), ("status", "running")];
    assert_eq!(value(&page, names::TASK_STATUS, &running), Some(0.0));
}

#[test]
fn a_misspelt_listener_key_is_caught_like_any_worker_key() {
    let e = worker("bootstrap.servers=b:9092\nferry.metrics.listner=http://127.0.0.1:9464\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("worker.properties:2: ferry.metrics.listner: unknown key; did you mean `ferry.metrics.listener`?"),
        "{e}"
    );
}
