//! A connector's dead-letter queue (`errors.deadletterqueue.*`, ferry's
//! `ferry.errors.deadletterqueue.directory`) and its producer settings
//! (`producer.override.*`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferry_connector_api::ConnectorProps;
use ferry_connector_api::text::shown;

use super::client::{self, ClientLayers, Sourced};
use super::connector::Subscription;
use super::{ConfigFileError, PropertiesFile, WorkerConfig, validate};

/// Where records that fail go, besides the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeadLetterQueue {
    /// `errors.deadletterqueue.topic.name` (empty: none): a topic on the producer's cluster —
    /// the worker's, or another through `producer.override.bootstrap.servers`.
    pub topic: Option<String>,
    /// `errors.deadletterqueue.topic.replication.factor` (3; -1: the broker's default): the
    /// replication of the dead-letter topic when ferry creates it (one partition) at the
    /// connector's start because its cluster lacks it, as Connect does.
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

/// Translates the dead-letter queue's producer settings now, so that a setting ferry
/// cannot use (a policy violation, a JAAS line, an unknown protocol) is one line naming its
/// file, line and key before anything starts. librdkafka's own checks of the values follow
/// when the producer is built at the connector's start.
pub fn check_producer(
    worker: &WorkerConfig,
    overrides: &BTreeMap<String, Sourced>,
    dlq: &DeadLetterQueue,
) -> Result<(), ConfigFileError> {
    if dlq.topic.is_some() {
        client::producer_settings(&producer_layers(worker, overrides), &BTreeMap::new())?;
    }
    Ok(())
}

/// `errors.retry.timeout` in milliseconds: `-1` (or unset) retries for ever, `0` not at all.
///
/// Kafka Connect's default is 0 and applies it to converters and transforms only (a sink's
/// retriable errors are retried for ever). ferry's default is to retry for ever at every
/// stage, so that a schema registry or a sink that is down for a while never turns good
/// records into skipped ones unless the file asks for it; a value set applies to every
/// stage, `put` included.
pub fn take_retry_timeout(
    file: &PropertiesFile,
    props: &mut ConnectorProps,
) -> Result<Option<std::time::Duration>, ConfigFileError> {
    const KEY: &str = "errors.retry.timeout";
    let ms = props
        .take_parsed::<i64>(KEY, "a number of milliseconds, or -1 to retry for ever")
        .map_err(|e| ConfigFileError::from_api(file, e))?;
    match ms {
        None | Some(-1) => Ok(None),
        Some(ms) if ms >= 0 => Ok(Some(std::time::Duration::from_millis(ms as u64))),
        Some(ms) => Err(ConfigFileError::Key {
            location: file.locate(KEY),
            key: KEY.into(),
            reason: format!(
                "{ms} is not a timeout; use milliseconds (0: no retries) or -1 to retry for ever"
            ),
        }),
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::providers::SystemEnvironment;
    use super::super::{ConnectorConfig, PropertiesFile, WorkerConfig};

    fn load(worker: &str, text: &str) -> Result<ConnectorConfig, String> {
        let w = PropertiesFile::parse(Path::new("worker.properties"), worker.as_bytes()).unwrap();
        let w = WorkerConfig::from_file(w, &SystemEnvironment).unwrap();
        let f = PropertiesFile::parse(Path::new("sink.properties"), text.as_bytes()).unwrap();
        ConnectorConfig::from_file(f, &w, &SystemEnvironment).map_err(|e| e.to_string())
    }

    const W: &str = "bootstrap.servers=b:9092\n";
    const C: &str = "name=n\nconnector.class=null\ntopics=alerts\nerrors.tolerance=all\n";

    #[test]
    fn dead_letter_keys() {
        let c = load(W, &format!("{C}errors.deadletterqueue.topic.name=alerts-dlq\nerrors.deadletterqueue.topic.replication.factor=1\nerrors.deadletterqueue.context.headers.enable=true\nproducer.override.bootstrap.servers=dlq:9092\n")).unwrap();
        assert_eq!(c.dead_letter.topic.as_deref(), Some("alerts-dlq"));
        assert_eq!(c.dead_letter.replication_factor, 1);
        assert!(c.dead_letter.context_headers);
        assert_eq!(c.producer_overrides["bootstrap.servers"].value, "dlq:9092");
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        let c = load(
            W,
            &format!("{C}ferry.errors.deadletterqueue.directory=/var/lib/ferry/dead\n"),
        )
        .unwrap();
        assert!(c.dead_letter.topic.is_none());
        assert_eq!(
            c.dead_letter.directory.as_deref(),
            Some(Path::new("/var/lib/ferry/dead"))
        );
        // Connect's default: an empty name is no queue.
        let c = load(W, &format!("{C}errors.deadletterqueue.topic.name=\n")).unwrap();
        assert!(!c.dead_letter.is_enabled());
    }

    #[test]
    fn errors_retry_timeout() {
        let t = |v: &str| {
            load(W, &format!("{C}errors.retry.timeout={v}\n")).map(|c| c.errors.retry_timeout)
        };
        assert_eq!(
            load(W, C).unwrap().errors.retry_timeout,
            None,
            "unset: for ever"
        );
        assert_eq!(t("-1"), Ok(None));
        assert_eq!(t("0"), Ok(Some(std::time::Duration::ZERO)));
        assert_eq!(t("30000"), Ok(Some(std::time::Duration::from_secs(30))));
        assert!(
            t("-5")
                .unwrap_err()
                .starts_with("sink.properties:5: errors.retry.timeout: -5 is not a timeout")
        );
        assert!(t("soon").unwrap_err().contains("errors.retry.timeout"));
    }

    #[test]
    fn bad_dead_letter_settings_are_one_line_each() {
        let cases = [
            (
                format!("{C}errors.deadletterqueue.topic.name=alerts\n"),
                "sink.properties:5: errors.deadletterqueue.topic.name: the dead-letter topic `alerts` is one of the topics the connector reads (topics=alerts); its failed records would come back forever. Choose another topic",
            ),
            (
                format!("{C}errors.deadletterqueue.topic.name=bad topic\n"),
                "sink.properties:5: errors.deadletterqueue.topic.name: topic name `bad topic` has a space",
            ),
            (
                format!(
                    "{C}errors.deadletterqueue.topic.name=d\nerrors.deadletterqueue.topic.replication.factor=0\n"
                ),
                "sink.properties:6: errors.deadletterqueue.topic.replication.factor: 0 is not a replication factor",
            ),
            (
                format!(
                    "{C}errors.deadletterqueue.topic.name=d\nproducer.override.security.protocol=TLS\n"
                ),
                "sink.properties:6: producer.override.security.protocol: `TLS` is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
            ),
        ];
        for (text, want) in &cases {
            let err = load(W, text).unwrap_err();
            assert!(err.starts_with(want), "\n got: {err}\nwant: {want}");
            assert!(!err.contains('\n'));
        }
        let err = load(
            "bootstrap.servers=b:9092\nconnector.client.config.override.policy=None\n",
            &format!("{C}errors.deadletterqueue.topic.name=d\nproducer.override.bootstrap.servers=x:9092\n"),
        )
        .unwrap_err();
        assert!(err.starts_with("sink.properties:6: producer.override.bootstrap.servers: the worker's connector.client.config.override.policy (None) does not allow"), "{err}");
    }
}
