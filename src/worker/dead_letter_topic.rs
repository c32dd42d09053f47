//! The dead-letter topic, created at the connector's start when its cluster lacks it, as
//! Kafka Connect's `DeadLetterQueueReporter` does: one partition, replicated
//! `errors.deadletterqueue.topic.replication.factor` times (-1: the broker's default), by an
//! admin client with the dead-letter producer's own settings (its cluster, its login). A
//! topic that exists is left alone.
//!
//! Where Connect fails the task when it cannot create the topic, ferry logs one line with
//! the command that creates it and goes on: a cluster that creates topics on their first
//! write still works, and on any other the dead letters wait for the topic, holding their
//! offsets back, as they would for an unreachable dead-letter cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use tokio_util::sync::CancellationToken;

use crate::config::ConnectorConfig;
use crate::producer::Producers;
use crate::topics::{self, Ensured, TopicError, TopicSpec};

/// Connect's `DLQ_NUM_DESIRED_PARTITIONS`.
const PARTITIONS: i32 = 1;
/// How long the creation may take, the wait for the cluster's controller included: the
/// connector reads nothing until it is done (a cluster that serves no CreateTopics, as
/// librdkafka's mock cluster, names no controller and is waited for this long).
const CREATE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connector's dead-letter topic, to be created if missing.
pub(crate) struct DeadLetterTopic {
    connector: String,
    topic: String,
    replication: i16,
    brokers: String,
    /// The admin client's settings; they hold credentials.
    admin: ClientConfig,
}

impl std::fmt::Debug for DeadLetterTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterTopic")
            .field("connector", &self.connector)
            .field("topic", &self.topic)
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

impl DeadLetterTopic {
    /// The connector's dead-letter topic (None: it writes dead letters to no topic).
    pub(crate) fn new(
        connector: &ConnectorConfig,
        producers: &Producers,
    ) -> Result<Option<Self>, String> {
        let Some(topic) = &connector.dead_letter.topic else {
            return Ok(None);
        };
        // Connect's name for it.
        let client_id = format!("connector-dlq-adminclient-{}", connector.name);
        let admin = producers
            .admin_config(&BTreeMap::new(), &client_id)
            .map_err(|e| format!("the dead-letter queue's admin client: {e}"))?;
        Ok(Some(Self {
            connector: connector.name.clone(),
            topic: topic.clone(),
            replication: connector.dead_letter.replication_factor,
            brokers: admin
                .get("bootstrap.servers")
                .unwrap_or_default()
                .to_string(),
            admin,
        }))
    }

    /// Creates the topic if it is missing; logs what happened (one line when it cannot).
    /// Stops early, quietly, when `cancel` fires.
    pub(crate) async fn ensure(&self, cancel: &CancellationToken) {
        let spec = TopicSpec {
            name: &self.topic,
            partitions: PARTITIONS,
            replication: i32::from(self.replication),
            config: &[],
        };
        let result = tokio::select! {
            r = topics::ensure(&self.admin, &spec, Some(CREATE_TIMEOUT)) => r,
            () = cancel.cancelled() => return,
        };
        match result {
            Ok(Ensured::Created) => {
                tracing::info!(connector = %self.connector, topic = %self.topic, brokers = %self.brokers, partitions = PARTITIONS, replication_factor = %self.replication_shown(), "Dead-letter topic created.");
            }
            Ok(Ensured::Existed) => {
                tracing::debug!(connector = %self.connector, topic = %self.topic, "Dead-letter topic exists.");
            }
            Err(e) => self.warn(&e),
        }
    }

    fn warn(&self, e: &TopicError) {
        let what = if e.is_creation() {
            "The dead-letter topic is missing and ferry cannot create it"
        } else {
            "Cannot check whether the dead-letter topic exists"
        };
        tracing::warn!(
            connector = %self.connector,
            topic = %self.topic,
            brokers = %self.brokers,
            error = %e,
            "{what}; create it with `{}` (or let the cluster create topics on first write). Until it exists, failed records wait for it and their offsets are not committed.",
            self.command()
        );
    }

    fn replication_shown(&self) -> String {
        match self.replication {
            -1 => "broker default".into(),
            n => n.to_string(),
        }
    }

    /// The `kafka-topics.sh` line that creates the topic as ferry would.
    pub(crate) fn command(&self) -> String {
        let replication = match self.replication {
            // Without the flag, the broker's default.
            -1 => String::new(),
            n => format!(" --replication-factor {n}"),
        };
        format!(
            "kafka-topics.sh --bootstrap-server {} --create --topic {} --partitions {PARTITIONS}{replication}",
            self.brokers, self.topic
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(replication: i16) -> DeadLetterTopic {
        DeadLetterTopic {
            connector: "c".into(),
            topic: "alerts-dlq".into(),
            replication,
            brokers: "b1:9092,b2:9092".into(),
            admin: ClientConfig::new(),
        }
    }

    #[test]
    fn the_command_creates_it_as_ferry_would() {
        assert_eq!(
            topic(3).command(),
            "kafka-topics.sh --bootstrap-server b1:9092,b2:9092 --create --topic alerts-dlq --partitions 1 --replication-factor 3"
        );
        assert_eq!(
            topic(-1).command(),
            "kafka-topics.sh --bootstrap-server b1:9092,b2:9092 --create --topic alerts-dlq --partitions 1",
            "-1: the broker's default replication factor"
        );
    }
}
