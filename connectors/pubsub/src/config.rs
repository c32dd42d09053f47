//! The connector's keys, named and defaulted as in Google's `CloudPubSubSinkConnector`
//! (github.com/googleapis/java-pubsub-group-kafka-connector).

use std::path::PathBuf;
use std::time::Duration;

use ferry_connector_api::{ConfigError, ConnectorProps};

/// Pub/Sub's limit on one message (data, attributes and ordering key together).
pub(crate) const MAX_MESSAGE_BYTES: usize = 10_000_000;

/// Which Kafka field becomes the Pub/Sub ordering key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderingKeySource {
    /// `none`: no ordering key.
    None,
    /// `key`: the record key, as a string.
    Key,
    /// `partition`: the Kafka partition number.
    Partition,
}

/// Where Google credentials come from: `gcp.credentials.file.path`,
/// `gcp.credentials.json`, else Application Default Credentials.
pub use ferry_gcp_auth::KeySource as CredentialSource;

/// The Pub/Sub sink's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubConfig {
    /// `cps.project` (required).
    pub project: String,
    /// `cps.topic` (required): the topic id within the project.
    pub topic: String,
    /// `cps.endpoint` (`pubsub.googleapis.com:443`).
    pub endpoint: String,
    /// `cps.useEmulator` (false): plaintext to `cps.endpoint`, no credentials.
    /// `PUBSUB_EMULATOR_HOST` in the environment does the same with its address.
    pub use_emulator: bool,
    /// `maxBufferSize` (100): messages per publish request.
    pub max_buffer_size: u32,
    /// `maxBufferBytes` (9 500 000): bytes per publish request.
    pub max_buffer_bytes: u32,
    /// `delayThresholdMs` or `maxDelayThresholdMs` (100): how long a batch waits to fill.
    pub delay_threshold: Duration,
    /// `maxRequestTimeoutMs` (10 000): one publish attempt.
    pub max_request_timeout: Duration,
    /// `maxTotalTimeoutMs` (60 000): one publish, retries included, before ferry backs
    /// off and publishes again (offsets stay held).
    pub max_total_timeout: Duration,
    /// `maxShutdownTimeoutMs` (60 000): how long stopping waits for outstanding publishes.
    pub max_shutdown_timeout: Duration,
    /// `maxOutstandingRequestBytes`: bytes published and not yet acknowledged before
    /// `put` waits, for the connector (its tasks split it). Google's default is unlimited;
    /// ferry's is 6 MiB, so memory stays bounded: each outstanding byte is held about twice
    /// (the record, and its encoded request). Measured with benches/pubsub: 8 MiB peaked
    /// at 67 MB, 6 MiB at 59 MB, at the same throughput.
    pub max_outstanding_request_bytes: u64,
    /// `maxOutstandingMessages`: likewise for messages (Google: unlimited; ferry: 10 000).
    pub max_outstanding_messages: u64,
    /// `metadata.publish` (false): attributes `kafka.topic`, `kafka.partition`,
    /// `kafka.offset`, `kafka.timestamp`.
    pub metadata_publish: bool,
    /// `headers.publish` (false): Kafka headers as attributes.
    pub headers_publish: bool,
    /// `messageBodyName` (`cps_message_body`): the struct field (or the key of a map with
    /// a schema) whose value becomes the message data; the other fields become attributes.
    /// Values without a schema (schemaless JSON) and byte or string values are the data
    /// as a whole, as in Google's connector.
    pub message_body_name: String,
    /// `orderingKeySource` (`none`).
    pub ordering_key_source: OrderingKeySource,
    /// `enableCompression` (false). Google's Rust client cannot compress publish requests;
    /// `true` is accepted and announced at start-up.
    pub enable_compression: bool,
    /// `compressionBytesThreshold` (240).
    pub compression_bytes_threshold: u64,
    pub credentials: CredentialSource,
}

fn ms(props: &mut ConnectorProps, key: &str, default: u64) -> Result<Duration, ConfigError> {
    let v = props
        .take_parsed::<u64>(key, "a number of milliseconds")?
        .unwrap_or(default);
    if v == 0 {
        return Err(ConfigError::invalid(key, "must be greater than 0"));
    }
    Ok(Duration::from_millis(v))
}

fn positive<T: std::str::FromStr + PartialOrd + From<u8>>(
    props: &mut ConnectorProps,
    key: &str,
    default: T,
) -> Result<T, ConfigError> {
    let v = props
        .take_parsed::<T>(key, "a positive integer")?
        .unwrap_or(default);
    if v < T::from(1) {
        return Err(ConfigError::invalid(key, "must be at least 1"));
    }
    Ok(v)
}

/// Pub/Sub resource ids: 3–255 characters, a letter first, then letters, digits and
/// `-_.~+%` (the API's rule; the emulator enforces it too).
fn check_id(key: &str, id: &str) -> Result<(), ConfigError> {
    let valid = (3..=255).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c))
        && !id.starts_with("goog");
    if valid {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!(
                "`{id}` is not a Pub/Sub id (3–255 letters, digits or -_.~+%, starting with a letter, not with goog)"
            ),
        ))
    }
}

impl PubSubConfig {
    pub fn from_props(props: &mut ConnectorProps) -> Result<Self, ConfigError> {
        let project = props.take_required(
            "cps.project",
            "the Google Cloud project that owns the topic",
        )?;
        let topic = props.take_required("cps.topic", "the Pub/Sub topic id to publish to")?;
        check_id("cps.topic", &topic)?;
        let endpoint = props
            .take("cps.endpoint")
            .unwrap_or_else(|| "pubsub.googleapis.com:443".to_string());
        let use_emulator = props.take_bool("cps.useEmulator")?.unwrap_or(false);
        let max_buffer_size = positive::<u32>(props, "maxBufferSize", 100)?;
        let max_buffer_bytes = positive::<u32>(props, "maxBufferBytes", 9_500_000)?;
        if max_buffer_bytes as usize > MAX_MESSAGE_BYTES {
            return Err(ConfigError::invalid(
                "maxBufferBytes",
                format!("{max_buffer_bytes} is above Pub/Sub's 10 MB request limit"),
            ));
        }
        let delay_threshold = match props.take_any(&["delayThresholdMs", "maxDelayThresholdMs"])? {
            Some((key, v)) => {
                let n: u64 = v.trim().parse().map_err(|_| {
                    ConfigError::invalid(
                        key.clone(),
                        format!("`{}` is not a number of milliseconds", v.trim()),
                    )
                })?;
                Duration::from_millis(n)
            }
            None => Duration::from_millis(100),
        };
        let max_request_timeout = ms(props, "maxRequestTimeoutMs", 10_000)?;
        let max_total_timeout = ms(props, "maxTotalTimeoutMs", 60_000)?;
        let max_shutdown_timeout = ms(props, "maxShutdownTimeoutMs", 60_000)?;
        let max_outstanding_request_bytes =
            positive::<u64>(props, "maxOutstandingRequestBytes", 6 * 1024 * 1024)?;
        let max_outstanding_messages = positive::<u64>(props, "maxOutstandingMessages", 10_000)?;
        let metadata_publish = props.take_bool("metadata.publish")?.unwrap_or(false);
        let headers_publish = props.take_bool("headers.publish")?.unwrap_or(false);
        let message_body_name = props
            .take("messageBodyName")
            .unwrap_or_else(|| "cps_message_body".to_string());
        let ordering_key_source = match props.take("orderingKeySource").as_deref().map(str::trim) {
            None | Some("none") => OrderingKeySource::None,
            Some("key") => OrderingKeySource::Key,
            Some("partition") => OrderingKeySource::Partition,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "orderingKeySource",
                    format!("`{other}` is not none, key or partition"),
                ));
            }
        };
        let enable_compression = props.take_bool("enableCompression")?.unwrap_or(false);
        let compression_bytes_threshold = props
            .take_parsed::<u64>("compressionBytesThreshold", "a number of bytes")?
            .unwrap_or(240);
        let credentials = match (
            props.take("gcp.credentials.file.path"),
            props.take("gcp.credentials.json"),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Conflict {
                    first: "gcp.credentials.file.path".into(),
                    second: "gcp.credentials.json".into(),
                    reason: "give the key file or its contents, not both".into(),
                });
            }
            (Some(path), None) => CredentialSource::File(PathBuf::from(path)),
            (None, Some(json)) => CredentialSource::Json(json),
            (None, None) => CredentialSource::ApplicationDefault,
        };
        Ok(Self {
            project,
            topic,
            endpoint,
            use_emulator,
            max_buffer_size,
            max_buffer_bytes,
            delay_threshold,
            max_request_timeout,
            max_total_timeout,
            max_shutdown_timeout,
            max_outstanding_request_bytes,
            max_outstanding_messages,
            metadata_publish,
            headers_publish,
            message_body_name,
            ordering_key_source,
            enable_compression,
            compression_bytes_threshold,
            credentials,
        })
    }

    /// Bytes at which a batch is sent: `maxBufferBytes`, or half of
    /// `maxOutstandingRequestBytes` when that is less. Otherwise, with a budget under two
    /// batches, flow control blocks while the unsent batch waits out `delayThresholdMs`
    /// (measured: 10× slower with ZTF alerts and a 4 MiB budget; flushing whenever flow
    /// control blocks instead sent many small batches and halved throughput).
    pub fn batch_bytes(&self) -> u32 {
        let half = u32::try_from(self.max_outstanding_request_bytes / 2).unwrap_or(u32::MAX);
        self.max_buffer_bytes.min(half.max(1))
    }

    /// Messages at which a batch is sent: `maxBufferSize`, or half of
    /// `maxOutstandingMessages` when that is less (as [`batch_bytes`](Self::batch_bytes)).
    pub fn batch_messages(&self) -> u32 {
        let half = u32::try_from(self.max_outstanding_messages / 2).unwrap_or(u32::MAX);
        self.max_buffer_size.min(half.max(1))
    }

    /// `projects/<project>/topics/<topic>`.
    pub fn topic_path(&self) -> String {
        format!("projects/{}/topics/{}", self.project, self.topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> ConnectorProps {
        ConnectorProps::from_pairs(pairs)
    }

    const SEED: &[(&str, &str)] = &[
        ("cps.topic", "ztf_alert_data-kafka_consumer"),
        ("cps.project", "my-gcp-project"),
    ];

    #[test]
    fn the_seed_connector_file_gets_googles_defaults() {
        let mut p = props(&[SEED, &[("metadata.publish", "true")]].concat());
        let c = PubSubConfig::from_props(&mut p).unwrap();
        assert_eq!(
            c.topic_path(),
            "projects/my-gcp-project/topics/ztf_alert_data-kafka_consumer"
        );
        assert_eq!(c.endpoint, "pubsub.googleapis.com:443");
        assert_eq!((c.max_buffer_size, c.max_buffer_bytes), (100, 9_500_000));
        assert_eq!(c.delay_threshold, Duration::from_millis(100));
        assert_eq!(c.max_request_timeout, Duration::from_secs(10));
        assert_eq!(c.max_total_timeout, Duration::from_secs(60));
        assert_eq!(c.max_shutdown_timeout, Duration::from_secs(60));
        assert!(c.metadata_publish && !c.headers_publish);
        assert_eq!(c.message_body_name, "cps_message_body");
        assert_eq!(c.ordering_key_source, OrderingKeySource::None);
        assert_eq!(c.credentials, CredentialSource::ApplicationDefault);
        assert_eq!(p.remaining().count(), 0);
    }

    #[test]
    fn a_batch_never_needs_more_than_half_the_outstanding_budget() {
        let c = PubSubConfig::from_props(&mut props(SEED)).unwrap();
        assert_eq!(c.batch_bytes() as u64, c.max_outstanding_request_bytes / 2);
        assert_eq!(c.batch_messages(), 100);
        let roomy = PubSubConfig::from_props(&mut props(
            &[
                SEED,
                &[
                    ("maxOutstandingRequestBytes", "1000000000"),
                    ("maxOutstandingMessages", "60"),
                ],
            ]
            .concat(),
        ))
        .unwrap();
        assert_eq!(roomy.batch_bytes(), 9_500_000);
        assert_eq!(roomy.batch_messages(), 30);
    }

    #[test]
    fn both_delay_spellings_are_accepted_but_not_together() {
        let c = PubSubConfig::from_props(&mut props(
            &[SEED, &[("maxDelayThresholdMs", "7")]].concat(),
        ))
        .unwrap();
        assert_eq!(c.delay_threshold, Duration::from_millis(7));
        let c =
            PubSubConfig::from_props(&mut props(&[SEED, &[("delayThresholdMs", "9")]].concat()))
                .unwrap();
        assert_eq!(c.delay_threshold, Duration::from_millis(9));
        let err = PubSubConfig::from_props(&mut props(
            &[
                SEED,
                &[("delayThresholdMs", "9"), ("maxDelayThresholdMs", "7")],
            ]
            .concat(),
        ))
        .unwrap_err();
        assert!(matches!(err, ConfigError::Conflict { .. }));
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("cps.project", "p")], "cps.topic"),
            (&[("cps.topic", "t1x")], "cps.project"),
            (&[("cps.project", "p"), ("cps.topic", "x")], "cps.topic"),
            (
                &[SEED[0], SEED[1], ("orderingKeySource", "offset")],
                "orderingKeySource",
            ),
            (
                &[SEED[0], SEED[1], ("maxBufferBytes", "20000000")],
                "maxBufferBytes",
            ),
            (&[SEED[0], SEED[1], ("maxBufferSize", "0")], "maxBufferSize"),
            (
                &[SEED[0], SEED[1], ("maxTotalTimeoutMs", "soon")],
                "maxTotalTimeoutMs",
            ),
            (
                &[SEED[0], SEED[1], ("metadata.publish", "yes")],
                "metadata.publish",
            ),
            (
                &[
                    SEED[0],
                    SEED[1],
                    ("gcp.credentials.file.path", "/k.json"),
                    ("gcp.credentials.json", "{}"),
                ],
                "gcp.credentials.file.path",
            ),
        ];
        for (pairs, key) in cases {
            let err = PubSubConfig::from_props(&mut props(pairs)).unwrap_err();
            assert_eq!(err.key(), *key, "{err}");
        }
    }

    #[test]
    fn inline_credentials_never_print() {
        let c = PubSubConfig::from_props(&mut props(
            &[
                SEED,
                &[("gcp.credentials.json", "{\"private_key\":\"SECRET\"}")],
            ]
            .concat(),
        ))
        .unwrap();
        assert!(!format!("{c:?}").contains("SECRET"));
    }
}
