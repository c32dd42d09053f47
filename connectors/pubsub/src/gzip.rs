//! `enableCompression=true`: publish requests larger than `compressionBytesThreshold` go
//! gzip-compressed at the gRPC level, as Google's Java publisher sends them.
//!
//! Google's Rust client (google-cloud-pubsub 1.7) has no compression option and takes no
//! transport from outside, so with compression on ferry publishes through a publisher of
//! its own over tonic, with the generated protos and stub of
//! `googleapis-tonic-google-pubsub-v1`. It keeps the Google client's behaviour that the
//! task relies on: batches by `maxBufferSize`, `maxBufferBytes` and `delayThresholdMs`;
//! one batch in flight per ordering key, and after a failed batch the key is paused (its
//! queued messages fail) until the task resumes it; transient codes retried with
//! exponential back-off (Google's publisher defaults: 100 ms × 4 up to 60 s) within
//! `maxTotalTimeoutMs`, each attempt bounded by `maxRequestTimeoutMs`.
//!
//! [`Batcher`] is the batching and ordering state, without I/O; [`run`] drives it.

use std::collections::HashMap;
use std::time::Duration;

use ferry_connector_api::TaskError;
use ferry_connector_api::backoff::{Backoff, Deadline};
use futures_util::stream::{FuturesUnordered, StreamExt};
use google_cloud_auth::credentials::Credentials;
use googleapis_tonic_google_pubsub_v1::google::pubsub::v1::{
    PublishRequest, PubsubMessage, publisher_client::PublisherClient,
};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint as TonicEndpoint};
use tonic::{Code, Status};

use crate::client::Endpoint;
use crate::config::PubSubConfig;

/// Google's publisher retry defaults: waits from 100 ms, × 4, up to 60 s, no jitter, no
/// wait that would end past `maxTotalTimeoutMs` from the first attempt.
fn retry_policy(total_timeout: Duration) -> Backoff {
    Backoff::exponential(Duration::from_millis(100), Duration::from_secs(60))
        .factor(4.0)
        .deadline(Deadline::NoWaitPast(total_timeout))
}

/// Why a message was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GzipError {
    /// The publish request failed (after retries, for transient codes).
    #[error("{code:?}: {message}")]
    Rpc { code: Code, message: String },
    /// An earlier message with the same ordering key failed; this one was not sent.
    #[error("the ordering key is paused after a failed publish")]
    Paused,
    /// The publisher stopped before the message was sent.
    #[error("the publisher has shut down")]
    Shutdown,
}

type Reply = oneshot::Sender<Result<String, GzipError>>;

/// Messages of one ordering key (`""`: none) waiting to go.
#[derive(Debug, Default)]
struct Queue {
    pending: Vec<(PubsubMessage, Reply)>,
    bytes: usize,
    /// When the oldest pending message came.
    since: Option<Instant>,
    in_flight: usize,
    paused: bool,
}

/// A batch to send.
#[derive(Debug)]
pub(crate) struct Outgoing {
    key: String,
    messages: Vec<PubsubMessage>,
    replies: Vec<Reply>,
}

/// Batching and per-key ordering, without I/O.
#[derive(Debug)]
pub(crate) struct Batcher {
    queues: HashMap<String, Queue>,
    max_messages: usize,
    max_bytes: usize,
    delay: Duration,
}

impl Batcher {
    pub(crate) fn new(max_messages: usize, max_bytes: usize, delay: Duration) -> Self {
        Self {
            queues: HashMap::new(),
            max_messages: max_messages.max(1),
            max_bytes: max_bytes.max(1),
            delay,
        }
    }

    /// Queues a message; returns the batches that are full now.
    pub(crate) fn push(
        &mut self,
        message: PubsubMessage,
        reply: Reply,
        now: Instant,
    ) -> Vec<Outgoing> {
        let key = message.ordering_key.clone();
        let size = message.encoded_len();
        let q = self.queues.entry(key.clone()).or_default();
        if q.paused {
            let _ = reply.send(Err(GzipError::Paused));
            return Vec::new();
        }
        let mut out = Vec::new();
        if !q.pending.is_empty() && q.bytes + size > self.max_bytes && sendable(&key, q) {
            out.push(take(&key, q));
        }
        q.pending.push((message, reply));
        q.bytes += size;
        q.since.get_or_insert(now);
        if (q.pending.len() >= self.max_messages || q.bytes >= self.max_bytes) && sendable(&key, q)
        {
            out.push(take(&key, q));
        }
        out
    }

    /// Batches whose oldest message has waited `delayThresholdMs`, or every sendable one
    /// when `all` (a flush).
    pub(crate) fn due(&mut self, now: Instant, all: bool) -> Vec<Outgoing> {
        let delay = self.delay;
        self.queues
            .iter_mut()
            .filter(|(key, q)| {
                !q.pending.is_empty()
                    && sendable(key, q)
                    && (all || q.since.is_some_and(|t| now >= t + delay))
            })
            .map(|(key, q)| take(key, q))
            .collect()
    }

    /// When the next batch falls due by delay.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queues
            .iter()
            .filter(|(key, q)| !q.pending.is_empty() && sendable(key, q))
            .filter_map(|(_, q)| q.since)
            .min()
            .map(|t| t + self.delay)
    }

    /// A batch of `key` ended; a failed one pauses an ordering key, failing what waits.
    pub(crate) fn finished(&mut self, key: &str, ok: bool) {
        let Some(q) = self.queues.get_mut(key) else {
            return;
        };
        q.in_flight = q.in_flight.saturating_sub(1);
        if !ok && !key.is_empty() {
            q.paused = true;
            for (_, reply) in q.pending.drain(..) {
                let _ = reply.send(Err(GzipError::Paused));
            }
            q.bytes = 0;
            q.since = None;
        }
        if q.pending.is_empty() && q.in_flight == 0 && !q.paused {
            self.queues.remove(key);
        }
    }

    pub(crate) fn resume(&mut self, key: &str) {
        if let Some(q) = self.queues.get_mut(key) {
            q.paused = false;
        }
    }

    /// Nothing waits and nothing is in flight.
    pub(crate) fn idle(&self) -> bool {
        self.queues
            .values()
            .all(|q| q.pending.is_empty() && q.in_flight == 0)
    }
}

/// Messages without an ordering key may go in parallel; a key has one batch out at a time.
fn sendable(key: &str, q: &Queue) -> bool {
    key.is_empty() || q.in_flight == 0
}

fn take(key: &str, q: &mut Queue) -> Outgoing {
    q.in_flight += 1;
    q.bytes = 0;
    q.since = None;
    let (messages, replies) = q.pending.drain(..).unzip();
    Outgoing {
        key: key.to_string(),
        messages,
        replies,
    }
}

/// One topic's publish calls: two stubs on one channel, with and without gzip.
#[derive(Debug, Clone)]
struct Rpc {
    plain: PublisherClient<Channel>,
    gzip: PublisherClient<Channel>,
    threshold: usize,
    topic: String,
    credentials: Credentials,
    attempt_timeout: Duration,
    total_timeout: Duration,
}

/// Google's retryable codes for Publish.
fn is_retriable(code: Code) -> bool {
    matches!(
        code,
        Code::Aborted
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::ResourceExhausted
            | Code::Unavailable
            | Code::Unknown
    )
}

impl Rpc {
    async fn publish(&self, messages: Vec<PubsubMessage>) -> Result<Vec<String>, GzipError> {
        let request = PublishRequest {
            topic: self.topic.clone(),
            messages,
        };
        let compress = request.encoded_len() > self.threshold;
        let mut retry = retry_policy(self.total_timeout).start();
        loop {
            let status = match self.attempt(request.clone(), compress).await {
                Ok(ids) => return Ok(ids),
                Err(status) => status,
            };
            let wait = match retry.next_wait() {
                Ok(wait) if is_retriable(status.code()) => wait,
                _ => {
                    return Err(GzipError::Rpc {
                        code: status.code(),
                        message: status.message().to_string(),
                    });
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(
        &self,
        request: PublishRequest,
        compress: bool,
    ) -> Result<Vec<String>, Status> {
        // A token that cannot be had now may be had later (the token server, the network).
        let headers = ferry_gcp_auth::headers(&self.credentials)
            .await
            .map_err(Status::unavailable)?;
        let mut request = tonic::Request::new(request);
        *request.metadata_mut() = MetadataMap::from_headers(headers);
        let routing = ferry_gcp_auth::request_params("topic", &self.topic);
        let routing = MetadataValue::try_from(routing)
            .map_err(|e| Status::invalid_argument(format!("routing header: {e}")))?;
        request
            .metadata_mut()
            .insert("x-goog-request-params", routing);
        request.set_timeout(self.attempt_timeout);
        let mut stub = if compress {
            self.gzip.clone()
        } else {
            self.plain.clone()
        };
        let call = stub.publish(request);
        match tokio::time::timeout(self.attempt_timeout, call).await {
            Ok(answer) => Ok(answer?.into_inner().message_ids),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no answer within maxRequestTimeoutMs ({} ms)",
                self.attempt_timeout.as_millis()
            ))),
        }
    }
}

enum Command {
    Publish(PubsubMessage, Reply),
    Flush(oneshot::Sender<()>),
    Resume(String),
}

/// The handle tasks publish through; clones share one publisher.
#[derive(Debug, Clone)]
pub(crate) struct GzipPublisher {
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Publish(..) => f.write_str("Publish"),
            Command::Flush(_) => f.write_str("Flush"),
            Command::Resume(k) => write!(f, "Resume({k})"),
        }
    }
}

impl GzipPublisher {
    pub(crate) fn new(
        config: &PubSubConfig,
        endpoint: &Endpoint,
        credentials: Credentials,
    ) -> Result<Self, TaskError> {
        let bad = |e: &dyn std::fmt::Display| {
            TaskError::fatal(format!(
                "cannot create the compressing Pub/Sub publisher for {}: {e}",
                endpoint.url
            ))
        };
        let mut channel = TonicEndpoint::from_shared(endpoint.url.clone())
            .map_err(|e| bad(&e))?
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| bad(&e))?;
        if endpoint.url.starts_with("https://") {
            channel = channel
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| bad(&e))?;
        }
        let channel = channel.connect_lazy();
        // Pub/Sub takes requests up to 10 MB; answers are small.
        let plain = PublisherClient::new(channel).max_encoding_message_size(usize::MAX);
        let rpc = Rpc {
            gzip: plain.clone().send_compressed(CompressionEncoding::Gzip),
            plain,
            threshold: usize::try_from(config.compression_bytes_threshold).unwrap_or(usize::MAX),
            topic: config.topic_path(),
            credentials,
            attempt_timeout: config.max_request_timeout,
            total_timeout: config.max_total_timeout,
        };
        let batcher = Batcher::new(
            config.batch_messages() as usize,
            config.batch_bytes() as usize,
            config.delay_threshold,
        );
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, batcher, rpc));
        Ok(Self { commands })
    }

    /// Queues `message` at once (so messages of one key keep the order of the calls) and
    /// returns its result: the message id, or why it was not published.
    pub(crate) fn publish(
        &self,
        message: PubsubMessage,
    ) -> impl Future<Output = Result<String, GzipError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let sent = self.commands.send(Command::Publish(message, reply)).is_ok();
        async move {
            if !sent {
                return Err(GzipError::Shutdown);
            }
            answer.await.unwrap_or(Err(GzipError::Shutdown))
        }
    }

    /// Sends everything queued and waits until every message so far has its result.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// Lets a paused ordering key publish again.
    pub(crate) fn resume_publish(&self, key: String) {
        let _ = self.commands.send(Command::Resume(key));
    }
}

/// The publisher's loop: queues messages, sends batches as they fill or fall due, hands
/// results back. Ends when every handle is gone and everything queued has its result.
async fn run(mut commands: mpsc::UnboundedReceiver<Command>, mut batcher: Batcher, rpc: Rpc) {
    let mut flights = FuturesUnordered::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    let mut open = true;
    let send = |flights: &mut FuturesUnordered<_>, b: Outgoing| {
        let rpc = rpc.clone();
        flights.push(tokio::spawn(async move {
            let result = rpc.publish(b.messages).await;
            (b.key, b.replies, result)
        }));
    };
    loop {
        let deadline = batcher.next_due();
        tokio::select! {
            command = commands.recv(), if open => match command {
                Some(Command::Publish(message, reply)) => {
                    for b in batcher.push(message, reply, Instant::now()) {
                        send(&mut flights, b);
                    }
                }
                Some(Command::Flush(done)) => flushes.push(done),
                Some(Command::Resume(key)) => batcher.resume(&key),
                None => open = false,
            },
            Some(joined) = flights.next(), if !flights.is_empty() => {
                let Ok((key, replies, result)) = joined else {
                    // A panicked publish drops its replies: those messages fail as shut down.
                    continue;
                };
                batcher.finished(&key, result.is_ok());
                match result {
                    Ok(ids) => {
                        let mut ids = ids.into_iter();
                        for reply in replies {
                            let id = ids.next().ok_or(GzipError::Rpc {
                                code: Code::Internal,
                                message: "Pub/Sub answered fewer message ids than messages".into(),
                            });
                            let _ = reply.send(id);
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                for b in batcher.due(Instant::now(), false) {
                    send(&mut flights, b);
                }
            }
        }
        if !flushes.is_empty() || !open {
            for b in batcher.due(Instant::now(), true) {
                send(&mut flights, b);
            }
            if flights.is_empty() && batcher.idle() {
                for done in flushes.drain(..) {
                    let _ = done.send(());
                }
                if !open {
                    return;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(key: &str, n: usize) -> PubsubMessage {
        PubsubMessage {
            data: vec![b'x'; n].into(),
            ordering_key: key.into(),
            ..Default::default()
        }
    }

    fn push(
        b: &mut Batcher,
        key: &str,
        n: usize,
        now: Instant,
    ) -> (Vec<Outgoing>, oneshot::Receiver<Result<String, GzipError>>) {
        let (reply, rx) = oneshot::channel();
        (b.push(message(key, n), reply, now), rx)
    }

    #[test]
    fn publish_retries_follow_googles_publisher_defaults() {
        // Waits 100 ms × 4 up to 60 s; none that would end past maxTotalTimeoutMs.
        let mut r = retry_policy(Duration::from_secs(10)).start();
        let waits: Vec<u64> = std::iter::from_fn(|| r.next_wait().ok())
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 400, 1600, 6400]);
        let mut r = retry_policy(Duration::from_secs(600)).start();
        let waits: Vec<u64> = (0..6)
            .map(|_| r.next_wait().unwrap().as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 400, 1600, 6400, 25_600, 60_000]);
    }

    #[test]
    fn batches_close_at_the_message_count_the_byte_size_and_the_delay() {
        let now = Instant::now();
        let mut b = Batcher::new(3, 1000, Duration::from_millis(100));
        assert!(push(&mut b, "", 10, now).0.is_empty());
        assert!(push(&mut b, "", 10, now).0.is_empty());
        let (full, _) = push(&mut b, "", 10, now);
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].messages.len(), 3);
        // 600 + 600 > 1000: the first goes alone when the second comes.
        assert!(push(&mut b, "", 600, now).0.is_empty());
        let (out, _) = push(&mut b, "", 600, now);
        assert_eq!(
            out.iter().map(|o| o.messages.len()).collect::<Vec<_>>(),
            [1]
        );
        assert!(b.due(now + Duration::from_millis(50), false).is_empty());
        assert_eq!(b.next_due(), Some(now + Duration::from_millis(100)));
        let late = b.due(now + Duration::from_millis(100), false);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].messages.len(), 1);
        assert!(b.next_due().is_none());
    }

    #[test]
    fn an_ordering_key_has_one_batch_out_and_pauses_after_a_failure() {
        let now = Instant::now();
        let mut b = Batcher::new(1, 1000, Duration::from_millis(100));
        let (first, _) = push(&mut b, "k", 10, now);
        assert_eq!(first.len(), 1);
        // Full, but the key's first batch is still out: it waits.
        let (second, mut waiting) = push(&mut b, "k", 10, now);
        assert!(second.is_empty());
        assert!(b.due(now, true).is_empty(), "not even a flush sends it");
        // Messages without a key are not held back by it.
        assert_eq!(push(&mut b, "", 10, now).0.len(), 1);
        b.finished("k", false);
        assert_eq!(waiting.try_recv().unwrap(), Err(GzipError::Paused));
        let (_, mut refused) = push(&mut b, "k", 10, now);
        assert_eq!(refused.try_recv().unwrap(), Err(GzipError::Paused));
        b.resume("k");
        assert_eq!(push(&mut b, "k", 10, now).0.len(), 1);
        b.finished("k", true);
        b.finished("", true);
        assert!(b.idle());
    }
}
