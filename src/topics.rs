//! Creating a topic the runtime needs when its cluster lacks it, as Kafka Connect does for
//! its internal topics and a sink's dead-letter topic: look for it, and create it only when
//! it is missing. A topic that exists is left as it is (nothing described, nothing
//! altered), so a cluster where ferry may not create topics works as long as someone did.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::ProbeContext;

/// How long the look at the cluster's metadata may take.
const METADATA: Duration = Duration::from_secs(10);
/// How long the brokers may take to create the topic.
const CREATE: Duration = Duration::from_secs(30);

/// The topic wanted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) partitions: i32,
    /// -1: the broker's `default.replication.factor` (KIP-464, brokers ≥ 2.4).
    pub(crate) replication: i32,
    /// Topic configs set at creation (`cleanup.policy=compact`, …).
    pub(crate) config: &'a [(&'a str, &'a str)],
}

/// What [`ensure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ensured {
    /// The cluster had it (or another client created it at the same moment).
    Existed,
    Created,
}

/// Why the topic could not be looked up or created.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TopicError {
    #[error("cannot create an admin client: {0}")]
    Client(String),
    #[error("cannot read the cluster's metadata: {0}")]
    Metadata(String),
    /// The request failed, or the brokers refused it; the caller adds how to create it
    /// by hand.
    #[error("cannot create it: {0}")]
    Create(String),
}

impl TopicError {
    /// Whether the cluster was reached and answered the creation with a refusal or an
    /// error (as opposed to not being reachable or not being asked).
    pub(crate) fn is_creation(&self) -> bool {
        matches!(self, TopicError::Create(_))
    }
}

/// Creates the topic unless the cluster already has it. `client` holds the connection and
/// security settings (any consumer's or producer's: the keys that do not apply to an admin
/// client are ignored; `group.id` is dropped). `request_timeout` bounds the creation
/// request, the wait for the cluster's controller included (None: librdkafka's
/// `socket.timeout.ms`, 60 s by default).
pub(crate) async fn ensure(
    client: &ClientConfig,
    spec: &TopicSpec<'_>,
    request_timeout: Option<Duration>,
) -> Result<Ensured, TopicError> {
    let mut config = client.clone();
    config.remove("group.id");
    // Looking a topic up must not create it with the broker's defaults (librdkafka asks
    // brokers to auto-create topics in a producer-type client's metadata requests, and an
    // admin client is one).
    config.set("allow.auto.create.topics", "false");
    let admin: AdminClient<ProbeContext> = config
        .create_with_context(ProbeContext::default())
        .map_err(|e| TopicError::Client(e.to_string()))?;
    let name = spec.name.to_string();
    let (admin, exists) = tokio::task::spawn_blocking(move || {
        let exists = admin
            .inner()
            .fetch_metadata(Some(&name), METADATA)
            .map(|md| {
                md.topics()
                    .first()
                    .is_some_and(|t| t.error().is_none() && !t.partitions().is_empty())
            })
            .map_err(|e| TopicError::Metadata(e.to_string()));
        (admin, exists)
    })
    .await
    .map_err(|e| TopicError::Metadata(e.to_string()))?;
    if exists? {
        return Ok(Ensured::Existed);
    }
    let mut topic = NewTopic::new(
        spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication),
    );
    for (key, value) in spec.config {
        topic = topic.set(key, value);
    }
    let answer = admin
        .create_topics(
            [&topic],
            &AdminOptions::new()
                .operation_timeout(Some(CREATE))
                .request_timeout(request_timeout),
        )
        .await
        .map_err(|e| TopicError::Create(e.to_string()))?;
    // One topic asked for, one answer.
    match answer.into_iter().next() {
        Some(Ok(_)) => Ok(Ensured::Created),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(Ensured::Existed),
        Some(Err((_, code))) => Err(TopicError::Create(code.to_string())),
        None => Err(TopicError::Create("the cluster gave no answer".into())),
    }
}
