//! The consumer lag of each assigned partition, for the metrics: the partition's end, asked
//! of its broker, minus the committed offset (the group's or the offset file's, whichever
//! is further).
//!
//! Not librdkafka's statistics: librdkafka learns a partition's end from its fetches, so the
//! lag of a paused partition (a failed task's, a task that is behind) would stay as it was
//! when the pause began. Runs on a thread of its own beside the poll loop, so that a slow
//! broker delays the lag, never consumption or commits.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ferry_connector_api::TopicPartition;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::consumer::{ConnectorConsumerContext, IDLE_POLL, Shared};
use super::status::lock;

/// How long one partition's end may take to learn.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);

/// Measures the lag every `period` until the connector stops.
pub(crate) fn run(
    shared: &Shared,
    consumer: &BaseConsumer<ConnectorConsumerContext>,
    period: Duration,
) {
    let stopping = || shared.stopping.load(Ordering::Relaxed);
    loop {
        let next = Instant::now() + period;
        while Instant::now() < next {
            if stopping() {
                return;
            }
            std::thread::sleep(IDLE_POLL);
        }
        let assigned: Vec<TopicPartition> = lock(&shared.status.assigned).iter().cloned().collect();
        let mut lags = Vec::with_capacity(assigned.len());
        for tp in assigned {
            if stopping() {
                return;
            }
            let Ok((_, end)) =
                consumer.fetch_watermarks(&tp.topic, tp.partition, WATERMARK_TIMEOUT)
            else {
                continue;
            };
            let in_group = lock(&shared.group_committed).get(&tp).map(|c| c.offset);
            let in_file = shared.store.as_ref().and_then(|s| {
                s.get(&shared.connector, &tp.topic, tp.partition)
                    .map(|c| c.offset)
            });
            // Nothing committed yet: no lag to tell (as kafka-consumer-groups shows `-`).
            if let Some(committed) = in_group.max(in_file) {
                lags.push((tp, (end - committed).max(0)));
            }
        }
        shared.metrics.partition_lags(
            &lags,
            |tp| lock(&shared.dispatch).routing.owner_of(tp),
            |task| shared.tasks.link(task).map(|l| l.status),
        );
    }
}
