//! The connector's keys, named and defaulted as in the Kafka Connect BigQuery sink
//! (WePay's, now maintained by Confluent: `BigQuerySinkConfig`), plus ferry's own
//! `ferry.bigquery.*` keys for the mode and the endpoints.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ferry_connector_api::backoff::{Backoff, Jitter};
use ferry_connector_api::{ConfigError, ConnectorProps};

/// What a row is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `raw`: `topic`, `partition`, `offset`, `timestamp`, `key` and `value` (BYTES),
    /// `headers`: every record loads, whatever its bytes.
    Raw,
    /// `decoded` (the BigQuery connector's behaviour): one column per value field.
    Decoded,
}

/// Where Google credentials come from: `keyfile` with `keySource` (`FILE` → a path,
/// `JSON` → the key itself, `APPLICATION_DEFAULT`), or none for the emulator
/// (`ferry.bigquery.emulator=true`).
pub use ferry_gcp_auth::KeySource as Credentials;

/// `timePartitioningType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    Hour,
    Day,
    Month,
    Year,
    /// `NONE`: tables are created without partitioning.
    None,
}

/// The BigQuery sink's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigQueryConfig {
    /// `project` (required).
    pub project: String,
    /// `defaultDataset` (required; the 1.x key `datasets` is refused with a pointer).
    pub dataset: String,
    pub credentials: Credentials,
    /// `topic2TableMap` (empty): `topic:table,…`; other topics go to a table of their name.
    pub topic_tables: BTreeMap<String, String>,
    /// `sanitizeTopics` (false): turn a topic name into a valid table name.
    pub sanitize_topics: bool,
    /// `sanitizeFieldNames` (false).
    pub sanitize_field_names: bool,
    /// `autoCreateTables` (true, as in the maintained connector).
    pub auto_create_tables: bool,
    /// `allowNewBigQueryFields` (false).
    pub allow_new_fields: bool,
    /// `allowBigQueryRequiredFieldRelaxation` (false).
    pub allow_required_relaxation: bool,
    /// `allowSchemaUnionization` (false).
    pub allow_schema_unionization: bool,
    /// `allBQFieldsNullable` (false): no REQUIRED columns in created tables.
    pub all_fields_nullable: bool,
    /// `kafkaKeyFieldName` (none): a column holding the record key.
    pub kafka_key_field: Option<String>,
    /// `kafkaDataFieldName` (none): a column holding topic, partition, offset, time.
    pub kafka_data_field: Option<String>,
    /// `bigQueryRetry` (0): retries of a request that failed with a backend or quota error.
    pub retries: u32,
    /// `bigQueryRetryWait` (1000 ms): the least wait between those retries.
    pub retry_wait: Duration,
    /// `timePartitioningType` (`DAY`), for created tables.
    pub partitioning: Partitioning,
    /// `timestampPartitionFieldName` (none: ingestion-time partitioning).
    pub partition_field: Option<String>,
    /// `partitionExpirationMs` (none).
    pub partition_expiration: Option<Duration>,
    /// `clusteringPartitionFieldNames` (none; at most four).
    pub clustering_fields: Vec<String>,
    /// `bigQueryMessageTimePartitioning` (false).
    pub message_time_partitioning: bool,
    /// `bigQueryPartitionDecorator` (true).
    pub partition_decorator: bool,
    /// `convertDoubleSpecialValues` (false).
    pub convert_double_special_values: bool,
    /// `useStorageWriteApi` (false, as in the connector): rows go in through the Storage
    /// Write API (a `COMMITTED` stream per task and table, see `storage`) instead of
    /// `tabledata.insertAll`.
    pub storage_write_api: bool,
    /// `ferry.bigquery.mode` (`decoded`).
    pub mode: Mode,
    /// `ferry.bigquery.endpoint` (`https://bigquery.googleapis.com`): the REST API.
    pub rest_endpoint: String,
    /// `ferry.bigquery.storage.endpoint` (`https://bigquerystorage.googleapis.com`): gRPC,
    /// for `useStorageWriteApi=true`; with the emulator, its gRPC address (plaintext).
    pub storage_endpoint: String,
    /// `ferry.bigquery.emulator` (false): no credentials, and a plaintext Storage endpoint.
    pub emulator: bool,
}

/// Keys of the BigQuery connector that ferry accepts and that change nothing here, with
/// why (shown as a note).
pub const NO_EFFECT: &[(&str, &str)] = &[
    (
        "threadPoolSize",
        "ferry sizes its writes by flow control, not a thread pool",
    ),
    (
        "queueSize",
        "ferry bounds memory by its read-ahead and outstanding budget",
    ),
    (
        "avroDataCacheSize",
        "ferry converts schemas without a cache",
    ),
    (
        "schemaRetriever",
        "ferry reads the schema each message carries",
    ),
    (
        "max.retries",
        "retriable errors are retried until they succeed or the task is stopped",
    ),
    ("enableRetries", "retriable errors are always retried"),
    ("runtimeProvider", "used for user-agent tracking only"),
    (
        "commitInterval",
        "ferry commits every offset.flush.interval.ms",
    ),
    ("intermediateTableSuffix", "upsert/delete is not supported"),
    ("mergeIntervalMs", "upsert/delete is not supported"),
    ("mergeRecordsThreshold", "upsert/delete is not supported"),
    ("autoCreateBucket", "GCS batch loading is not supported"),
    ("gcsBucketName", "GCS batch loading is not supported"),
    ("gcsFolderName", "GCS batch loading is not supported"),
    ("batchLoadIntervalSec", "GCS batch loading is not supported"),
    (
        "convertDebeziumTimestampToInteger",
        "no Debezium-specific conversion",
    ),
];

fn flag(props: &mut ConnectorProps, key: &str, default: bool) -> Result<bool, ConfigError> {
    Ok(props.take_bool(key)?.unwrap_or(default))
}

impl BigQueryConfig {
    /// Takes every key of the connector from `props` (what is left is the runtime's to
    /// report), or the first invalid one.
    pub fn from_props(props: &mut ConnectorProps) -> Result<Self, ConfigError> {
        if props.take("datasets").is_some() {
            return Err(ConfigError::invalid(
                "datasets",
                "the 1.x key is gone; write defaultDataset=<dataset> (and topic2TableMap for per-topic tables)",
            ));
        }
        let project = props.take_required("project", "the Google Cloud project of the dataset")?;
        let dataset = props.take_required("defaultDataset", "the BigQuery dataset to write to")?;
        let emulator = flag(props, "ferry.bigquery.emulator", false)?;
        let keyfile = props.take("keyfile");
        let source = props
            .take("keySource")
            .map(|s| s.trim().to_ascii_uppercase())
            .unwrap_or_else(|| "FILE".into());
        let credentials = match (emulator, source.as_str(), keyfile) {
            (true, _, _) => Credentials::Anonymous,
            (false, "FILE", Some(path)) => Credentials::File(PathBuf::from(path.trim())),
            (false, "FILE", None) | (false, "APPLICATION_DEFAULT", None) => {
                Credentials::ApplicationDefault
            }
            (false, "JSON", Some(json)) => Credentials::Json(json),
            (false, "JSON", None) => {
                return Err(props.missing(
                    &["keyfile"],
                    "keySource=JSON needs the service account's JSON key in keyfile",
                ));
            }
            (false, "APPLICATION_DEFAULT", Some(_)) => {
                return Err(ConfigError::invalid(
                    "keyfile",
                    "keySource=APPLICATION_DEFAULT takes no keyfile; remove one of the two",
                ));
            }
            (false, other, _) => {
                return Err(ConfigError::invalid(
                    "keySource",
                    format!("`{other}` is not FILE, JSON or APPLICATION_DEFAULT"),
                ));
            }
        };
        let topic_tables = topic_tables(props.take("topic2TableMap").as_deref().unwrap_or(""))?;
        let partitioning = match props
            .take("timePartitioningType")
            .map(|s| s.trim().to_ascii_uppercase())
            .as_deref()
        {
            None | Some("DAY") => Partitioning::Day,
            Some("HOUR") => Partitioning::Hour,
            Some("MONTH") => Partitioning::Month,
            Some("YEAR") => Partitioning::Year,
            Some("NONE") => Partitioning::None,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "timePartitioningType",
                    format!("`{other}` is not HOUR, DAY, MONTH, YEAR or NONE"),
                ));
            }
        };
        let clustering_fields: Vec<String> = props
            .take("clusteringPartitionFieldNames")
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if clustering_fields.len() > 4 {
            return Err(ConfigError::invalid(
                "clusteringPartitionFieldNames",
                format!(
                    "{} fields; BigQuery clusters by at most four",
                    clustering_fields.len()
                ),
            ));
        }
        for (key, what) in [
            ("upsertEnabled", "upsert"),
            ("deleteEnabled", "delete"),
            ("enableBatchMode", "Storage Write batch mode"),
        ] {
            if flag(props, key, false)? {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "{what} is not supported by ferry's BigQuery sink; remove the key or set it to false"
                    ),
                ));
            }
        }
        if props.take("enableBatchLoad").is_some() {
            return Err(ConfigError::invalid(
                "enableBatchLoad",
                "GCS batch loading is not supported; ferry streams every topic",
            ));
        }
        let mode = match props.take("ferry.bigquery.mode").as_deref().map(str::trim) {
            None | Some("decoded") => Mode::Decoded,
            Some("raw") => Mode::Raw,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "ferry.bigquery.mode",
                    format!("`{other}` is not raw or decoded"),
                ));
            }
        };
        let storage_write_api = flag(props, "useStorageWriteApi", false)?;
        let non_empty = |props: &mut ConnectorProps, key: &str| {
            props
                .take(key)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let config = Self {
            project,
            dataset,
            credentials,
            topic_tables,
            sanitize_topics: flag(props, "sanitizeTopics", false)?,
            sanitize_field_names: flag(props, "sanitizeFieldNames", false)?,
            auto_create_tables: flag(props, "autoCreateTables", true)?,
            allow_new_fields: flag(props, "allowNewBigQueryFields", false)?,
            allow_required_relaxation: flag(props, "allowBigQueryRequiredFieldRelaxation", false)?,
            allow_schema_unionization: flag(props, "allowSchemaUnionization", false)?,
            all_fields_nullable: flag(props, "allBQFieldsNullable", false)?,
            kafka_key_field: non_empty(props, "kafkaKeyFieldName"),
            kafka_data_field: non_empty(props, "kafkaDataFieldName"),
            retries: props
                .take_parsed("bigQueryRetry", "a number of retries (0 or more)")?
                .unwrap_or(0),
            retry_wait: Duration::from_millis(
                props
                    .take_parsed("bigQueryRetryWait", "milliseconds (0 or more)")?
                    .unwrap_or(1000),
            ),
            partitioning,
            partition_field: non_empty(props, "timestampPartitionFieldName"),
            partition_expiration: props
                .take_parsed::<u64>("partitionExpirationMs", "milliseconds (1 or more)")?
                .map(|ms| {
                    if ms == 0 {
                        Err(ConfigError::invalid(
                            "partitionExpirationMs",
                            "must be at least 1",
                        ))
                    } else {
                        Ok(Duration::from_millis(ms))
                    }
                })
                .transpose()?,
            clustering_fields,
            message_time_partitioning: flag(props, "bigQueryMessageTimePartitioning", false)?,
            partition_decorator: flag(props, "bigQueryPartitionDecorator", true)?,
            convert_double_special_values: flag(props, "convertDoubleSpecialValues", false)?,
            storage_write_api,
            mode,
            rest_endpoint: props
                .take("ferry.bigquery.endpoint")
                .unwrap_or_else(|| "https://bigquery.googleapis.com".into()),
            storage_endpoint: match props.take("ferry.bigquery.storage.endpoint") {
                Some(e) => e,
                None if emulator && storage_write_api => {
                    return Err(props.missing(
                        &["ferry.bigquery.storage.endpoint"],
                        "useStorageWriteApi=true with ferry.bigquery.emulator=true needs the emulator's gRPC address (http://host:port)",
                    ));
                }
                None => "https://bigquerystorage.googleapis.com".into(),
            },
            emulator,
        };
        for (key, _) in NO_EFFECT {
            props.take(key);
        }
        Ok(config)
    }

    /// `bigQueryRetry` and `bigQueryRetryWait` as a back-off: that many retries of a
    /// request, each after the wait plus up to 20 % so that tasks do not retry in step.
    /// After them the batch goes back to the runtime, whose back-off takes over.
    pub fn retry_policy(&self) -> Backoff {
        Backoff::constant(self.retry_wait)
            .jitter(Jitter::Above(0.2))
            .retries(self.retries)
    }

    /// The table a topic's records go to: `topic2TableMap`, else the topic's name
    /// (sanitized when `sanitizeTopics=true`); an invalid name is an error naming the fix.
    pub fn table_for(&self, topic: &str) -> Result<String, String> {
        if let Some(t) = self.topic_tables.get(topic) {
            return Ok(t.clone());
        }
        if self.sanitize_topics {
            return Ok(sanitize(topic));
        }
        if is_valid_table(topic) {
            Ok(topic.to_string())
        } else {
            Err(format!(
                "topic {topic} is not a valid BigQuery table name; set sanitizeTopics=true or map it in topic2TableMap"
            ))
        }
    }
}

/// `topic2TableMap`: `topic:table` pairs, each topic and each table once.
fn topic_tables(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut map = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad =
            || ConfigError::invalid("topic2TableMap", format!("`{pair}` is not <topic>:<table>"));
        let (topic, table) = pair.split_once(':').ok_or_else(bad)?;
        let (topic, table) = (topic.trim(), table.trim());
        if topic.is_empty() || table.is_empty() || table.contains(':') {
            return Err(bad());
        }
        if map.values().any(|t| t == table) {
            return Err(ConfigError::invalid(
                "topic2TableMap",
                format!("table {table} is named twice; each table takes one topic"),
            ));
        }
        if map.insert(topic.to_string(), table.to_string()).is_some() {
            return Err(ConfigError::invalid(
                "topic2TableMap",
                format!("topic {topic} is named twice"),
            ));
        }
    }
    Ok(map)
}

/// BigQuery table names: letters, digits and underscores (ferry does not try the
/// Unicode categories BigQuery also allows), at most 1024 bytes.
fn is_valid_table(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 1024
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The connector's rule: invalid characters become `_`, and a leading digit gets a `_`.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_connector_api::backoff::GiveUp;

    fn props(pairs: &[(&str, &str)]) -> ConnectorProps {
        ConnectorProps::from_pairs(pairs)
    }

    fn config(pairs: &[(&str, &str)]) -> Result<BigQueryConfig, ConfigError> {
        BigQueryConfig::from_props(&mut props(pairs))
    }

    #[test]
    fn defaults_are_the_connectors() {
        let c = config(&[("project", "p"), ("defaultDataset", "ztf")]).unwrap();
        assert_eq!(c.credentials, Credentials::ApplicationDefault);
        assert!(c.auto_create_tables && c.partition_decorator && !c.storage_write_api);
        assert!(!c.sanitize_topics && !c.allow_new_fields && !c.all_fields_nullable);
        assert_eq!((c.retries, c.retry_wait), (0, Duration::from_millis(1000)));
        assert_eq!(c.retry_policy().start().next_wait(), Err(GiveUp::Retries));
        // bigQueryRetry waits of bigQueryRetryWait + 0–20 %.
        let c = config(&[
            ("project", "p"),
            ("defaultDataset", "ztf"),
            ("bigQueryRetry", "2"),
            ("bigQueryRetryWait", "500"),
        ])
        .unwrap();
        let mut retry = c.retry_policy().start();
        for _ in 0..2 {
            let wait = retry.next_wait().unwrap();
            assert!((500..=600).contains(&wait.as_millis()), "{wait:?}");
        }
        assert_eq!(retry.next_wait(), Err(GiveUp::Retries));
        assert_eq!(c.partitioning, Partitioning::Day);
        assert_eq!(c.mode, Mode::Decoded);
        assert_eq!(c.rest_endpoint, "https://bigquery.googleapis.com");
    }

    #[test]
    fn the_storage_write_api_needs_the_emulators_grpc_address() {
        let c = config(&[
            ("project", "p"),
            ("defaultDataset", "d"),
            ("useStorageWriteApi", "true"),
        ])
        .unwrap();
        assert!(c.storage_write_api && !c.emulator);
        assert_eq!(c.storage_endpoint, "https://bigquerystorage.googleapis.com");
        let e = config(&[
            ("project", "p"),
            ("defaultDataset", "d"),
            ("useStorageWriteApi", "true"),
            ("ferry.bigquery.emulator", "true"),
        ])
        .unwrap_err();
        assert_eq!(e.key(), "ferry.bigquery.storage.endpoint");
        assert!(e.to_string().contains("gRPC address"), "{e}");
        let c = config(&[
            ("project", "p"),
            ("defaultDataset", "d"),
            ("useStorageWriteApi", "true"),
            ("ferry.bigquery.emulator", "true"),
            ("ferry.bigquery.storage.endpoint", "http://127.0.0.1:9060"),
        ])
        .unwrap();
        assert!(c.emulator);
        assert_eq!(c.storage_endpoint, "http://127.0.0.1:9060");
    }

    #[test]
    fn credentials_by_key_source() {
        let c = config(&[
            ("project", "p"),
            ("defaultDataset", "d"),
            ("keyfile", "/k.json"),
        ])
        .unwrap();
        assert_eq!(c.credentials, Credentials::File("/k.json".into()));
        let c = config(&[
            ("project", "p"),
            ("defaultDataset", "d"),
            ("keySource", "JSON"),
            ("keyfile", "{\"private_key\": \"secret\"}"),
        ])
        .unwrap();
        assert!(matches!(c.credentials, Credentials::Json(_)));
        assert!(
            !format!("{c:?}").contains("secret"),
            "the key stays out of Debug"
        );
        let e = config(&[
            ("project", "p"),
            ("defaultDataset", "d"),
            ("keySource", "JSON"),
        ])
        .unwrap_err();
        assert_eq!(e.key(), "keyfile");
        let c = config(&[
            ("project", "p"),
            ("defaultDataset", "d"),
            ("ferry.bigquery.emulator", "true"),
            ("keyfile", "/k"),
        ])
        .unwrap();
        assert_eq!(c.credentials, Credentials::Anonymous);
    }

    #[test]
    fn tables_from_the_map_or_the_topic() {
        let c = config(&[
            ("project", "p"),
            ("defaultDataset", "d"),
            (
                "topic2TableMap",
                "ztf_20260112_programid1:alerts, raw-topic:raw",
            ),
        ])
        .unwrap();
        assert_eq!(c.table_for("ztf_20260112_programid1").unwrap(), "alerts");
        assert_eq!(c.table_for("raw-topic").unwrap(), "raw");
        assert_eq!(
            c.table_for("ztf_20260113_programid1").unwrap(),
            "ztf_20260113_programid1"
        );
        let e = c.table_for("lsst.alerts").unwrap_err();
        assert!(e.contains("sanitizeTopics=true"), "{e}");
        let c = config(&[
            ("project", "p"),
            ("defaultDataset", "d"),
            ("sanitizeTopics", "true"),
        ])
        .unwrap();
        assert_eq!(c.table_for("9lsst.alerts-v1").unwrap(), "_9lsst_alerts_v1");
        for bad in ["a", "a:b,a:c", "a:t,b:t", ":t"] {
            let e = config(&[
                ("project", "p"),
                ("defaultDataset", "d"),
                ("topic2TableMap", bad),
            ])
            .unwrap_err();
            assert_eq!(e.key(), "topic2TableMap", "{bad}: {e}");
        }
    }

    #[test]
    fn what_ferry_does_not_do_is_refused_or_noted() {
        for (key, value) in [
            ("upsertEnabled", "true"),
            ("deleteEnabled", "true"),
            ("enableBatchLoad", "t1"),
            ("datasets", ".*=d"),
        ] {
            let e = config(&[("project", "p"), ("defaultDataset", "d"), (key, value)]).unwrap_err();
            assert_eq!(e.key(), key);
        }
        let mut p = props(&[
            ("project", "p"),
            ("defaultDataset", "d"),
            ("threadPoolSize", "4"),
            ("queueSize", "-1"),
        ]);
        BigQueryConfig::from_props(&mut p).unwrap();
        assert_eq!(p.remaining().count(), 0, "no-effect keys are taken");
        let e = config(&[
            ("project", "p"),
            ("defaultDataset", "d"),
            ("clusteringPartitionFieldNames", "a,b,c,d,e"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("at most four"), "{e}");
        assert_eq!(
            config(&[("project", "p")]).unwrap_err().key(),
            "defaultDataset"
        );
    }
}
