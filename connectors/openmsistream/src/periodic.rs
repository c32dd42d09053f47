//! Task 0's heartbeats and logs: one message at the start, one every interval, and a last
//! one when the task stops (as OpenMSIStream's programs send them), through the runtime's
//! producer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferry_connector_api::logs::LogReader;
use ferry_connector_api::{ConfigError, ProducerRecord, RecordProducer};

use crate::heartbeat::{self, Counters};
use crate::logs;

/// How long the last message at the stop may take.
const LAST: Duration = Duration::from_secs(5);

/// One heartbeat or log message as OpenMSIStream's producibles send them: key
/// `<program_id>_<kind>`, value the JSON object, no headers, the producer's clock.
pub(crate) fn record(
    topic: &str,
    program_id: &str,
    kind: &str,
    value: &serde_json::Value,
) -> ProducerRecord {
    ProducerRecord {
        topic: topic.to_string(),
        key: Some(Bytes::from(format!("{program_id}_{kind}"))),
        value: Some(Bytes::from(value.to_string())),
        headers: Vec::new(),
        timestamp: None,
    }
}

/// The `<prefix>.interval.secs` key (`key`) as read by `take_parsed`: `default` when absent,
/// else a positive, finite number of seconds.
pub(crate) fn interval(
    key: &str,
    secs: Option<f64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match secs {
        None => Ok(default),
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        Some(_) => Err(ConfigError::invalid(
            key,
            "must be a positive number of seconds",
        )),
    }
}

/// What a periodic message says.
#[derive(Debug)]
pub(crate) enum Source {
    Heartbeat(Arc<Counters>),
    Log(Mutex<LogReader>),
}

impl Source {
    fn record(&self, topic: &str, program_id: &str) -> ProducerRecord {
        match self {
            Source::Heartbeat(counters) => heartbeat::record(topic, program_id, counters.take()),
            Source::Log(reader) => {
                let read = reader.lock().unwrap_or_else(|p| p.into_inner()).read();
                logs::record(topic, program_id, read)
            }
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Source::Heartbeat(_) => "a heartbeat",
            Source::Log(_) => "the log lines",
        }
    }
}

#[derive(Debug)]
struct Shared {
    producer: Arc<dyn RecordProducer>,
    topic: String,
    program_id: String,
    source: Source,
}

impl Shared {
    async fn send(&self) {
        let rec = self.source.record(&self.topic, &self.program_id);
        if let Err(e) = self.producer.send(rec).await {
            tracing::warn!(topic = %self.topic, error = %e.one_line(), "Cannot send {}; trying again at the next interval.", self.source.what());
        }
    }
}

/// Messages to one topic every interval, from [`Periodic::start`] to [`Periodic::stop`].
#[derive(Debug)]
pub(crate) struct Periodic {
    shared: Arc<Shared>,
    interval: Duration,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

impl Periodic {
    pub(crate) fn new(
        producer: Arc<dyn RecordProducer>,
        topic: String,
        program_id: String,
        interval: Duration,
        source: Source,
    ) -> Self {
        Periodic {
            shared: Arc::new(Shared {
                producer,
                topic,
                program_id,
                source,
            }),
            interval,
            running: None,
        }
    }

    /// Starts sending, unless already started: the first message now.
    pub(crate) fn start(&mut self) {
        if self.running.is_some() {
            return;
        }
        let shared = self.shared.clone();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        // A message being sent is never cut off: the stop is only seen between messages.
        let handle = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tick.tick() => shared.send().await,
                }
            }
        });
        self.running = Some(Running { stop, handle });
    }

    /// Stops the interval and sends the last message (within a bound).
    pub(crate) async fn stop(&mut self) {
        let Some(Running { stop, handle }) = self.running.take() else {
            return;
        };
        let _ = stop.send(());
        let last = async {
            let _ = handle.await;
            self.shared.send().await;
        };
        if tokio::time::timeout(LAST, last).await.is_err() {
            tracing::warn!(topic = %self.shared.topic, "The last message of {} was not acknowledged within {LAST:?}.", self.shared.source.what());
        }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_connector_api::TaskError;

    #[derive(Debug, Default)]
    struct Sent(Mutex<Vec<ProducerRecord>>);

    #[ferry_connector_api::async_trait]
    impl RecordProducer for Sent {
        async fn send(&self, record: ProducerRecord) -> Result<(), TaskError> {
            self.0.lock().unwrap().push(record);
            Ok(())
        }
    }

    #[tokio::test]
    async fn one_message_at_the_start_and_one_at_the_stop_as_openmsistream_sends_them() {
        let sent = Arc::new(Sent::default());
        let counters = Arc::new(Counters::default());
        let mut p = Periodic::new(
            sent.clone(),
            "hb".into(),
            "lab".into(),
            Duration::from_secs(3600),
            Source::Heartbeat(counters.clone()),
        );
        p.start();
        p.start(); // a second assignment does not start a second loop
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while sent.0.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        counters
            .read
            .fetch_add(7, std::sync::atomic::Ordering::Relaxed);
        p.stop().await;
        p.stop().await; // stopped once
        let sent = sent.0.lock().unwrap();
        assert_eq!(sent.len(), 2, "{sent:?}");
        let last: serde_json::Value =
            serde_json::from_slice(sent[1].value.as_deref().unwrap()).unwrap();
        assert_eq!(
            last["n_messages_read"], 7,
            "the last one counts since the first"
        );
        assert_eq!(sent[1].key.as_deref(), Some(&b"lab_heartbeat"[..]));
    }
}
