//! The runtime's Kafka producer, lent to tasks through
//! [`TaskContext::producers`](ferry_connector_api::TaskContext) and used by the dead-letter
//! queue.
//!
//! A connector's producers are built from Kafka Connect's layers — the worker's
//! `bootstrap.servers` and security block, the worker's `producer.*`, the connector's
//! `producer.override.*`, then the overrides of the caller (see
//! [`client::producer_settings`]) — through the same translation table and librdkafka
//! checks as the consumer's. ferry's defaults are Kafka's producer defaults since 3.0:
//! `acks=all` and `enable.idempotence=true`. Callers asking for equal settings share one
//! client; [`Producers::close`] flushes and drops them all within a bound.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_connector_api::{ProducerFactory, ProducerRecord, RecordProducer, TaskError};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;

use crate::config::client::{self, ClientLayers, ClientSettings, Sourced};
use crate::config::{ConfigFileError, Note, NoteKind};
use crate::kafka::{self, ClientConfigError, RateLimiter};

/// A producer that cannot be built: one line naming the setting (and where it was written)
/// and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error(transparent)]
    Config(#[from] ConfigFileError),
    #[error(transparent)]
    Client(#[from] ClientConfigError),
    /// librdkafka refused the combination when creating the client.
    #[error("{source_line}: {reason}")]
    Create { source_line: String, reason: String },
}

/// A producer's complete librdkafka configuration, sorted: equal keys share a client.
type ConfigKey = Vec<(String, String)>;

/// The producers of one connector, one client per distinct configuration.
pub struct Producers {
    connector: String,
    layers: ClientLayers,
    clients: Mutex<BTreeMap<ConfigKey, Arc<KafkaProducer>>>,
}

impl std::fmt::Debug for Producers {
    // The settings hold credentials: show how many clients there are, nothing else.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producers")
            .field("connector", &self.connector)
            .field("clients", &lock(&self.clients).len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Producers {
    /// `layers`: the worker's top-level keys, its `producer.*` (in `consumer`), the
    /// connector's `producer.override.*` (in `overrides`) and the override policy.
    pub fn new(connector: &str, layers: ClientLayers) -> Self {
        Self {
            connector: connector.to_string(),
            layers,
            clients: Mutex::new(BTreeMap::new()),
        }
    }

    /// The librdkafka settings for a producer with `extra` on top of the layers.
    pub fn settings(
        &self,
        extra: &BTreeMap<String, Sourced>,
    ) -> Result<ClientSettings, ProducerError> {
        Ok(client::producer_settings(&self.layers, extra)?)
    }

    /// The librdkafka configuration of a producer with `extra` on top of the layers, with
    /// the settings it comes from and the notes of its translation.
    fn client_config(
        &self,
        extra: &BTreeMap<String, Sourced>,
    ) -> Result<(ClientSettings, ClientConfig, Vec<Note>), ProducerError> {
        let settings = self.settings(extra)?;
        let defaults = kafka::producer_defaults(&format!("connector-producer-{}", self.connector));
        let (config, notes) = kafka::producer_config(&settings, &defaults)?;
        Ok((settings, config, notes))
    }

    /// The settings of an admin client that reaches the same cluster, with the same login,
    /// as the producer with `extra` (Kafka Connect's dead-letter admin client), named
    /// `client_id`. The producer-only settings that would make it act as one (idempotence,
    /// transactions) are left out.
    pub fn admin_config(
        &self,
        extra: &BTreeMap<String, Sourced>,
        client_id: &str,
    ) -> Result<ClientConfig, ProducerError> {
        let (_, mut config, _) = self.client_config(extra)?;
        for key in ["enable.idempotence", "transactional.id"] {
            config.remove(key);
        }
        config.set("client.id", client_id);
        Ok(config)
    }

    /// A producer with `extra` on top of the layers: the one already made for the same
    /// settings, or a new one.
    pub fn get(
        &self,
        extra: &BTreeMap<String, Sourced>,
    ) -> Result<Arc<KafkaProducer>, ProducerError> {
        let (settings, config, client_notes) = self.client_config(extra)?;
        let key: ConfigKey = config
            .config_map()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut clients = lock(&self.clients);
        if let Some(p) = clients.get(&key) {
            return Ok(p.clone());
        }
        let bootstrap = config
            .get("bootstrap.servers")
            .unwrap_or_default()
            .to_string();
        let context = ProducerContext {
            client: config.get("client.id").unwrap_or_default().to_string(),
            errors: RateLimiter::default(),
        };
        let inner: FutureProducer<ProducerContext> = config
            .create_with_context(context)
            .map_err(|e| creation_error(&settings, &e))?;
        // What the layers did with the keys, once per client (the consumer's notes are in
        // `ferry validate`; these depend on what the caller asks for).
        for note in settings.notes.iter().chain(&client_notes) {
            if note.kind == NoteKind::Inherited {
                continue;
            }
            if note.is_warning() {
                tracing::warn!(connector = %self.connector, "Producer setting: {note}.");
            } else {
                tracing::info!(connector = %self.connector, "Producer setting: {note}.");
            }
        }
        let producer = Arc::new(KafkaProducer { inner, bootstrap });
        clients.insert(key, producer.clone());
        Ok(producer)
    }

    /// Flushes every producer within `timeout` (together), then drops them. Records not
    /// acknowledged by then are not lost: whoever sent them holds their offsets back.
    pub async fn close(&self, timeout: Duration) {
        let clients: Vec<Arc<KafkaProducer>> = std::mem::take(&mut *lock(&self.clients))
            .into_values()
            .collect();
        if clients.is_empty() {
            return;
        }
        let connector = self.connector.clone();
        let flushed = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + timeout;
            for p in &clients {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if let Err(e) = p.inner.flush(Timeout::After(left)) {
                    tracing::warn!(connector = %connector, brokers = %p.bootstrap, error = %e, "Producer did not deliver everything before shutdown; the records' offsets stay uncommitted and they are sent again after restart.");
                }
            }
        });
        let _ = tokio::time::timeout(timeout + Duration::from_secs(1), flushed).await;
    }
}

/// librdkafka's refusal of a combination (`acks` with idempotence, say), naming the first
/// setting it mentions that the files set.
fn creation_error(settings: &ClientSettings, e: &KafkaError) -> ProducerError {
    let reason = match e {
        KafkaError::ClientCreation(m) => m.clone(),
        other => other.to_string(),
    };
    let named = settings
        .props
        .iter()
        .find(|(k, _)| reason.contains(&format!("`{k}`")) || reason.contains(&format!("\"{k}\"")));
    match named {
        Some((_, prop)) => ProducerError::Create {
            source_line: prop.source.clone(),
            reason: format!("librdkafka cannot make a producer with it: {reason}"),
        },
        None => ProducerError::Create {
            source_line: "producer settings".into(),
            reason: format!("librdkafka cannot make a producer: {reason}"),
        },
    }
}

/// Forwards the producer's librdkafka log lines, repeated connection errors once a minute.
struct ProducerContext {
    client: String,
    errors: RateLimiter,
}

impl ClientContext for ProducerContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let noisy = matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        );
        // librdkafka appends "(after 0ms in state CONNECT, 3 identical error(s) suppressed)":
        // the same failure, whatever the counts say.
        let gist = message.split(" (after ").next().unwrap_or(message);
        if !noisy || self.errors.allow(gist, Duration::from_secs(60)) {
            kafka::forward_log(level, facility, message, &self.client);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let gist = reason.split(" (after ").next().unwrap_or(reason);
        if self
            .errors
            .allow(&format!("{error}: {gist}"), Duration::from_secs(60))
        {
            tracing::warn!(target: "librdkafka", client = %self.client, error = %error, "{reason}");
        }
    }
}

/// One librdkafka producer.
pub struct KafkaProducer {
    inner: FutureProducer<ProducerContext>,
    bootstrap: String,
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl KafkaProducer {
    /// The cluster it writes to, for log lines.
    pub fn brokers(&self) -> &str {
        &self.bootstrap
    }
}

/// Errors the producer's own retries cannot fix; anything else (brokers down, timeouts,
/// leader changes) is retriable.
fn is_fatal(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::InvalidTopic
            | RDKafkaErrorCode::InvalidRequiredAcks
    )
}

fn future_record(record: &ProducerRecord) -> FutureRecord<'_, [u8], [u8]> {
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
    for h in &record.headers {
        headers = headers.insert(KafkaHeader {
            key: &h.key,
            value: h.value.as_deref(),
        });
    }
    let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&record.topic).headers(headers);
    if let Some(k) = record.key.as_deref() {
        fr = fr.key(k);
    }
    if let Some(v) = record.value.as_deref() {
        fr = fr.payload(v);
    }
    if let Some(ts) = record.timestamp {
        fr = fr.timestamp(ts);
    }
    fr
}

impl KafkaProducer {
    fn failure(&self, topic: &str, e: KafkaError) -> TaskError {
        let message = format!(
            "Kafka producer to {} could not write to topic `{topic}`",
            self.bootstrap
        );
        let fatal = matches!(&e, KafkaError::MessageProduction(code) if is_fatal(*code));
        let err = if fatal {
            TaskError::fatal(message)
        } else {
            TaskError::retriable(message)
        };
        err.with_source(e)
    }

    /// Queues the record now (so records queued one after another keep their order) and
    /// returns the wait for its acknowledgement. A full queue is a retriable error.
    pub fn enqueue(
        self: &Arc<Self>,
        record: &ProducerRecord,
    ) -> impl Future<Output = Result<(), TaskError>> + Send + 'static {
        let queued = self
            .inner
            .send_result(future_record(record))
            .map_err(|(e, _)| e);
        let this = self.clone();
        let topic = record.topic.clone();
        async move {
            match queued {
                Err(e) => Err(this.failure(&topic, e)),
                Ok(delivery) => match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(this.failure(&topic, e)),
                    Err(_) => Err(TaskError::retriable(format!(
                        "Kafka producer to {} was closed before `{topic}` acknowledged the record",
                        this.bootstrap
                    ))),
                },
            }
        }
    }
}

#[ferry_connector_api::async_trait]
impl RecordProducer for KafkaProducer {
    async fn send(&self, record: ProducerRecord) -> Result<(), TaskError> {
        match self
            .inner
            .send(future_record(&record), Timeout::Never)
            .await
        {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(self.failure(&record.topic, e)),
        }
    }
}

/// What tasks get in [`TaskContext::producers`](ferry_connector_api::TaskContext).
impl ProducerFactory for Producers {
    fn producer(
        &self,
        overrides: &BTreeMap<String, String>,
        origin: &str,
    ) -> Result<Arc<dyn RecordProducer>, TaskError> {
        let extra = overrides
            .iter()
            .map(|(k, v)| {
                let s = Sourced {
                    value: v.clone(),
                    location: origin.to_string(),
                    written_as: k.clone(),
                };
                (k.clone(), s)
            })
            .collect();
        match self.get(&extra) {
            Ok(p) => Ok(p),
            Err(e) => Err(TaskError::fatal(e.to_string())),
        }
    }
}
