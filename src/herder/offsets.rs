//! KIP-875's offset operations for sink connectors: read the positions, move them, forget
//! them. Positions live in two places — the offset file (which wins at start) and the
//! consumer group — and every change is made in both. Changes need the connector STOPPED,
//! so that no consumer of the group is running while its offsets move.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::service::{Entry, Herder, HerderError};
use super::status::{PartitionOffset, Target};
use crate::config::ConnectorConfig;

const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a group may take to forget the members of a stopped connector.
const GROUP_SETTLE: Duration = Duration::from_secs(30);

fn settling(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(C::UnknownMemberId | C::IllegalGeneration | C::RebalanceInProgress)
    )
}

/// The offsets API's client: the connector's own client config, in its group.
fn group_client(entry: &Entry) -> rdkafka::ClientConfig {
    entry.client.side("offsets", &entry.config.name, true)
}

/// Every partition of the connector's topics, as the cluster knows them now.
fn partitions(
    consumer: &BaseConsumer,
    config: &ConnectorConfig,
) -> Result<Vec<(String, i32)>, HerderError> {
    let md = consumer
        .fetch_metadata(None, TIMEOUT)
        .map_err(|e| HerderError::Internal(format!("cannot read the cluster's metadata: {e}")))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && config.subscription.matches(t.name()))
        .flat_map(|t| {
            t.partitions()
                .iter()
                .map(|p| (t.name().to_string(), p.id()))
        })
        .collect())
}

/// The group's committed positions of every partition of the connector's topics.
fn group_offsets(
    client: &rdkafka::ClientConfig,
    config: &ConnectorConfig,
) -> Result<Vec<PartitionOffset>, HerderError> {
    let consumer: BaseConsumer = client
        .create()
        .map_err(|e| HerderError::Internal(format!("cannot create a Kafka client: {e}")))?;
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in partitions(&consumer, config)? {
        tpl.add_partition(&topic, partition);
    }
    if tpl.count() == 0 {
        return Ok(Vec::new());
    }
    let got = consumer
        .committed_offsets(tpl, TIMEOUT)
        .map_err(|e| HerderError::Internal(format!("cannot read the group's offsets: {e}")))?;
    Ok(got
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(PartitionOffset {
                topic: e.topic().to_string(),
                partition: e.partition(),
                offset: Some(o),
            }),
            _ => None,
        })
        .collect())
}

/// Commits `tpl` as a member of the group: subscribes to its topics, waits for the group
/// to assign (bounded), commits, leaves.
fn commit_as_member(
    mut client: rdkafka::ClientConfig,
    tpl: &TopicPartitionList,
) -> Result<(), HerderError> {
    client.set("enable.auto.commit", "false");
    let consumer: BaseConsumer = client
        .create()
        .map_err(|e| HerderError::Internal(format!("cannot create a Kafka client: {e}")))?;
    let mut topics: Vec<String> = tpl
        .elements()
        .iter()
        .map(|e| e.topic().to_string())
        .collect();
    topics.sort();
    topics.dedup();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&names)
        .map_err(|e| HerderError::Internal(format!("cannot join the consumer group: {e}")))?;
    let deadline = std::time::Instant::now() + GROUP_SETTLE;
    loop {
        let _ = consumer.poll(Duration::from_millis(100));
        let joined = consumer.assignment().is_ok_and(|a| a.count() > 0);
        if joined || std::time::Instant::now() >= deadline {
            break;
        }
    }
    let result = consumer.commit(tpl, CommitMode::Sync).map_err(|e| {
        HerderError::Internal(format!(
            "cannot commit the offsets to the consumer group: {e}"
        ))
    });
    consumer.unsubscribe();
    result
}

fn stopped(name: &str, entry: &Entry) -> Result<(), HerderError> {
    if entry.target == Target::Stopped && entry.running.is_none() {
        return Ok(());
    }
    Err(HerderError::BadRequest(format!(
        "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
    )))
}

impl Herder {
    /// `GET …/offsets`: the offset file's positions, else the group's.
    pub async fn offsets(&self, name: &str) -> Result<Vec<PartitionOffset>, HerderError> {
        let (config, client) = {
            let table = self.lock().await;
            let entry = table
                .get(name)
                .ok_or_else(|| HerderError::NotFound(name.to_string()))?;
            (entry.config.clone(), group_client(entry))
        };
        let store = self.shared.store.clone();
        let cfg = config.clone();
        let group = tokio::task::spawn_blocking(move || group_offsets(&client, &cfg))
            .await
            .map_err(|e| HerderError::Internal(e.to_string()))??;
        let mut all: BTreeMap<(String, i32), i64> = group
            .into_iter()
            .filter_map(|p| Some(((p.topic, p.partition), p.offset?)))
            .collect();
        if let Some(store) = store {
            for (t, p, o) in store.list(&config.name) {
                all.insert((t, p), o);
            }
        }
        Ok(all
            .into_iter()
            .map(|((topic, partition), o)| PartitionOffset {
                topic,
                partition,
                offset: Some(o),
            })
            .collect())
    }

    /// `PATCH …/offsets`: sets positions in the offset file and the group.
    pub async fn alter_offsets(
        &self,
        name: &str,
        changes: Vec<PartitionOffset>,
    ) -> Result<(), HerderError> {
        let table = self.lock().await;
        let entry = table
            .get(name)
            .ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        stopped(name, entry)?;
        if changes.iter().any(|c| c.offset.is_none()) {
            return Err(HerderError::BadRequest(
                "resetting single partitions (a null offset) is not supported; DELETE /connectors/{name}/offsets resets every partition".replace("{name}", name),
            ));
        }
        if let Some(c) = changes
            .iter()
            .find(|c| c.partition < 0 || c.offset.is_some_and(|o| o < 0))
        {
            return Err(HerderError::BadRequest(format!(
                "Partitions and offsets must be non-negative; got partition {} offset {:?} of topic {}",
                c.partition, c.offset, c.topic
            )));
        }
        let client = group_client(entry);
        let member_client = client.clone();
        let commits = changes.clone();
        tokio::task::spawn_blocking(move || -> Result<(), HerderError> {
            let consumer: BaseConsumer = client
                .create()
                .map_err(|e| HerderError::Internal(format!("cannot create a Kafka client: {e}")))?;
            let mut tpl = TopicPartitionList::new();
            for c in &commits {
                if let Some(o) = c.offset {
                    tpl.add_partition_offset(&c.topic, c.partition, Offset::Offset(o))
                        .map_err(|e| HerderError::Internal(e.to_string()))?;
                }
            }
            match consumer.commit(&tpl, CommitMode::Sync) {
                Ok(()) => Ok(()),
                // Some coordinators (librdkafka's mock cluster) take commits from members
                // only: join the group briefly, as the connector's consumer would.
                Err(e) if settling(&e) => {
                    drop(consumer);
                    commit_as_member(member_client, &tpl)
                }
                Err(e) => Err(HerderError::Internal(format!(
                    "cannot commit the offsets to the consumer group: {e}"
                ))),
            }
        })
        .await
        .map_err(|e| HerderError::Internal(e.to_string()))??;
        if let Some(store) = &self.shared.store {
            let list: Vec<(String, i32, Option<i64>)> = changes
                .iter()
                .map(|c| (c.topic.clone(), c.partition, c.offset))
                .collect();
            store
                .alter(name, &list)
                .map_err(|e| HerderError::Internal(e.to_string()))?;
        }
        tracing::info!(connector = %name, partitions = changes.len(), "Connector offsets altered.");
        Ok(())
    }

    /// `DELETE …/offsets`: the offset file forgets the connector, and the group's positions
    /// go to where `auto.offset.reset` starts a group without any (each partition's first
    /// or next offset). Connect deletes the group instead; librdkafka's admin client
    /// aborted the process doing that against the mock cluster, so ferry commits.
    pub async fn reset_offsets(&self, name: &str) -> Result<(), HerderError> {
        let table = self.lock().await;
        let entry = table
            .get(name)
            .ok_or_else(|| HerderError::NotFound(name.to_string()))?;
        stopped(name, entry)?;
        let client = group_client(entry);
        let config = entry.config.clone();
        let group = config.group_id().to_string();
        tokio::task::spawn_blocking(move || -> Result<(), HerderError> {
            let earliest = matches!(
                client.get("auto.offset.reset").unwrap_or("latest"),
                "earliest" | "smallest" | "beginning"
            );
            let consumer: BaseConsumer = client
                .clone()
                .create()
                .map_err(|e| HerderError::Internal(format!("cannot create a Kafka client: {e}")))?;
            let mut tpl = TopicPartitionList::new();
            for (topic, partition) in partitions(&consumer, &config)? {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, partition, TIMEOUT)
                    .map_err(|e| {
                        HerderError::Internal(format!(
                            "cannot read the offsets of {topic}-{partition}: {e}"
                        ))
                    })?;
                let at = if earliest { low } else { high };
                tpl.add_partition_offset(&topic, partition, Offset::Offset(at))
                    .map_err(|e| HerderError::Internal(e.to_string()))?;
            }
            if tpl.count() == 0 {
                return Ok(());
            }
            match consumer.commit(&tpl, CommitMode::Sync) {
                Ok(()) => Ok(()),
                Err(e) if settling(&e) => {
                    drop(consumer);
                    commit_as_member(client, &tpl)
                }
                Err(e) => Err(HerderError::Internal(format!(
                    "cannot commit the offsets to the consumer group: {e}"
                ))),
            }
        })
        .await
        .map_err(|e| HerderError::Internal(e.to_string()))??;
        if let Some(store) = &self.shared.store {
            store
                .forget(name)
                .map_err(|e| HerderError::Internal(e.to_string()))?;
        }
        tracing::info!(connector = %name, group = %group, "Connector offsets reset.");
        Ok(())
    }
}
