//! A connector's dead-letter queue (`errors.deadletterqueue.*`, ferry's
//! `ferry.errors.deadletterqueue.directory`) and its producer settings
//! (`producer.override.*`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferry_connector_api::ConnectorProps;
use ferry_connector_api::text::shown;

use super::client::{ClientLayers, Sourced};
use super::connector::Subscription;
use super::{ConfigFileError, PropertiesFile, WorkerConfig, validate};

/// Where records that fail go, besides the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeadLetterQueue {
    /// `errors.deadletterqueue.topic.name` (empty: none): a topic on the producer's cluster —
    /// the worker's, or another through `producer.override.bootstrap.servers`.
    pub topic: Option<String>,
    /// `errors.deadletterqueue.topic.replication.factor` (3): accepted for Connect's files;
    /// ferry creates no topics (Connect creates the dead-letter topic when missing), so the
    /// topic must exist or the cluster must create it on first write.
    pub replication_factor: i16,
    /// `errors.deadletterqueue.context.headers.enable` (false): add Connect's
    /// `__connect.errors.*` headers (and, for the directory, fill the sidecar's context).
    pub context_headers: bool,
    /// `ferry.errors.deadletterqueue.directory`: one file per failed record (its value) and a
    /// JSON sidecar (key, headers, timestamp, context), for sources ferry cannot write to.
    pub directory: Option<PathBuf>,
}

impl DeadLetterQueue {
    /// Whether any destination is configured.
    pub fn is_enabled(&self) -> bool {
        self.topic.is_some() || self.directory.is_some()
    }
}

/// The connector's `producer.override.*`, keys without the prefix.
pub fn take_producer_overrides(
    file: &PropertiesFile,
    props: &mut ConnectorProps,
) -> BTreeMap<String, Sourced> {
    props
        .take_prefixed("producer.override.")
        .into_iter()
        .map(|(k, v)| {
            let written = format!("producer.override.{k}");
            let s = Sourced {
                value: v,
                location: file.locate(&written),
                written_as: written,
            };
            (k, s)
        })
        .collect()
}

/// The layers a connector's producers are built from.
pub fn producer_layers(
    worker: &WorkerConfig,
    overrides: &BTreeMap<String, Sourced>,
) -> ClientLayers {
    ClientLayers {
        top: worker.client_top.clone(),
        consumer: worker.client_producer.clone(),
        overrides: overrides.clone(),
        policy: worker.override_policy,
    }
}

/// Reads the dead-letter-queue keys.
pub fn take(
    file: &PropertiesFile,
    props: &mut ConnectorProps,
    subscription: &Subscription,
) -> Result<DeadLetterQueue, ConfigFileError> {
    let api = |e| ConfigFileError::from_api(file, e);
    let key_err = |key: &str, reason: String| ConfigFileError::Key {
        location: file.locate(key),
        key: key.to_string(),
        reason,
    };
    const TOPIC: &str = "errors.deadletterqueue.topic.name";
    let topic = props
        .take(TOPIC)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    if let Some(t) = &topic {
        validate::topic(t).map_err(|reason| key_err(TOPIC, reason))?;
        // Connect's SinkConnectorConfig refuses this too: the dead letters would be read
        // back, fail again and be written again, forever.
        if subscription.matches(t) {
            return Err(key_err(
                TOPIC,
                format!(
                    "the dead-letter topic `{}` is one of the topics the connector reads ({subscription}); its failed records would come back forever. Choose another topic",
                    shown(t)
                ),
            ));
        }
    }
    const RF: &str = "errors.deadletterqueue.topic.replication.factor";
    let replication_factor = props
        .take_parsed::<i16>(
            RF,
            "a replication factor (a positive number, or -1 for the broker's default)",
        )
        .map_err(api)?
        .unwrap_or(3);
    if replication_factor == 0 || replication_factor < -1 {
        return Err(key_err(
            RF,
            format!(
                "{replication_factor} is not a replication factor; use a positive number, or -1 for the broker's default"
            ),
        ));
    }
    let context_headers = props
        .take_bool("errors.deadletterqueue.context.headers.enable")
        .map_err(api)?
        .unwrap_or(false);
    const DIR: &str = "ferry.errors.deadletterqueue.directory";
    let directory = match props.take(DIR).map(|d| d.trim().to_string()) {
        Some(d) if !d.is_empty() => {
            validate::path(&d).map_err(|reason| key_err(DIR, reason))?;
            Some(PathBuf::from(d))
        }
        _ => None,
    };
    Ok(DeadLetterQueue {
        topic,
        replication_factor,
        context_headers,
        directory,
    })
}
