//! `GET /connector-plugins/{plugin}/config`: Connect's `ConfigKeyInfo` list for each
//! connector ferry has — the connector's own keys first, then the sink keys every
//! connector takes (Connect's `SinkConnectorConfig`), as `AbstractHerder.connectorPluginConfig`
//! orders them. ferry's connectors read their keys one by one from a map (no `ConfigDef`),
//! so the descriptions are tables (plugin_keys.rs); a test checks each table against the keys the
//! connector actually asks for, so a key added to a connector without a row fails it.

use serde_json::{Value, json};

use super::plugin_keys as tables;

/// Connect's `ConfigDef.NO_DEFAULT_VALUE` (required), a null default, or a default.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DefaultValue {
    Required,
    Null,
    Value(&'static str),
}

/// One `ConfigKey`, as Connect's `define(...)` takes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub(crate) name: &'static str,
    /// Connect's `ConfigDef.Type` name: STRING, INT, LONG, BOOLEAN, LIST, CLASS, PASSWORD.
    pub(crate) kind: &'static str,
    pub(crate) default: DefaultValue,
    /// HIGH, MEDIUM or LOW.
    pub(crate) importance: &'static str,
    pub(crate) doc: &'static str,
    /// Group, order in group, width and display name (Connect's long `define`); None for
    /// keys defined without them (group null, order -1, width NONE, display name = name).
    pub(crate) display: Option<(&'static str, i32, &'static str, &'static str)>,
}

pub(super) const fn key(
    name: &'static str,
    kind: &'static str,
    default: DefaultValue,
    importance: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        name,
        kind,
        default,
        importance,
        doc,
        display: None,
    }
}

const fn common(
    k: Key,
    group: &'static str,
    order: i32,
    width: &'static str,
    display: &'static str,
) -> Key {
    Key {
        display: Some((group, order, width, display)),
        ..k
    }
}

use DefaultValue::{Null, Required, Value as Is};

const COMMON: &str = "Common";
const ERRORS: &str = "Error Handling";
const TRANSFORMS: &str = "Transforms";
const PREDICATES: &str = "Predicates";

/// The keys of Connect's `ConnectorConfig` and `SinkConnectorConfig` that ferry reads
/// (those it refuses or ignores are left out). Defaults are ferry's where they differ
/// (`errors.retry.timeout`: retry for ever).
pub(crate) const SINK_BASE: &[Key] = &[
    common(
        key(
            "name",
            "STRING",
            Required,
            "HIGH",
            "Globally unique name to use for this connector.",
        ),
        COMMON,
        1,
        "MEDIUM",
        "Connector name",
    ),
    common(
        key(
            "connector.class",
            "STRING",
            Required,
            "HIGH",
            "Name or alias of the class for this connector. Must be a subclass of org.apache.kafka.connect.connector.Connector. If the connector is org.apache.kafka.connect.file.FileStreamSinkConnector, you can either specify this full name, or use \"FileStreamSink\" or \"FileStreamSinkConnector\" to make the configuration a bit shorter",
        ),
        COMMON,
        2,
        "LONG",
        "Connector class",
    ),
    common(
        key(
            "tasks.max",
            "INT",
            Is("1"),
            "HIGH",
            "Maximum number of tasks to use for this connector.",
        ),
        COMMON,
        3,
        "SHORT",
        "Tasks max",
    ),
    common(
        key(
            "key.converter",
            "CLASS",
            Null,
            "LOW",
            "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka. This controls the format of the keys in messages written to or read from Kafka. Examples of common formats include JSON and Avro.",
        ),
        COMMON,
        5,
        "SHORT",
        "Key converter class",
    ),
    common(
        key(
            "value.converter",
            "CLASS",
            Null,
            "LOW",
            "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka. This controls the format of the values in messages written to or read from Kafka. Examples of common formats include JSON and Avro.",
        ),
        COMMON,
        6,
        "SHORT",
        "Value converter class",
    ),
    common(
        key(
            "header.converter",
            "CLASS",
            Null,
            "LOW",
            "HeaderConverter class used to convert between Kafka Connect format and the serialized form that is written to Kafka. This controls the format of the header values in messages written to or read from Kafka, and since this is independent of connectors it allows any connector to work with any serialization format. Examples of common formats include JSON and Avro. By default, the SimpleHeaderConverter is used to serialize header values to strings and deserialize them by inferring the schemas.",
        ),
        COMMON,
        7,
        "SHORT",
        "Header converter class",
    ),
    common(
        key(
            "transforms",
            "LIST",
            Is(""),
            "LOW",
            "Aliases for the transformations to be applied to records.",
        ),
        TRANSFORMS,
        8,
        "LONG",
        "Transforms",
    ),
    common(
        key(
            "predicates",
            "LIST",
            Is(""),
            "LOW",
            "Aliases for the predicates used by transformations.",
        ),
        PREDICATES,
        9,
        "LONG",
        "Predicates",
    ),
    common(
        key(
            "errors.retry.timeout",
            "LONG",
            Is("-1"),
            "MEDIUM",
            "The maximum duration in milliseconds that a failed operation will be reattempted. 0 means no retries; -1 (ferry's default; Kafka Connect's is 0) retries for ever.",
        ),
        ERRORS,
        1,
        "MEDIUM",
        "Retry Timeout for Errors",
    ),
    common(
        key(
            "errors.retry.delay.max.ms",
            "LONG",
            Is("60000"),
            "MEDIUM",
            "The maximum duration in milliseconds between consecutive retry attempts. Jitter will be added to the delay once this limit is reached to prevent thundering herd issues.",
        ),
        ERRORS,
        2,
        "MEDIUM",
        "Maximum Delay Between Retries for Errors",
    ),
    common(
        key(
            "errors.tolerance",
            "STRING",
            Is("none"),
            "MEDIUM",
            "Behavior for tolerating errors during connector operation. 'none' is the default value and signals that any error will result in an immediate connector task failure; 'all' changes the behavior to skip over problematic records.",
        ),
        ERRORS,
        3,
        "SHORT",
        "Error Tolerance",
    ),
    common(
        key(
            "errors.log.enable",
            "BOOLEAN",
            Is("false"),
            "MEDIUM",
            "If true, write each error and the details of the failed operation and problematic record to the Connect application log. This is 'false' by default, so that only errors that are not tolerated are reported.",
        ),
        ERRORS,
        4,
        "SHORT",
        "Log Errors",
    ),
    common(
        key(
            "errors.log.include.messages",
            "BOOLEAN",
            Is("false"),
            "MEDIUM",
            "Whether to include in the log the Connect record that resulted in a failure. For sink records, the topic, partition, offset, and timestamp will be logged. This is 'false' by default, which will prevent record keys, values, and headers from being written to log files.",
        ),
        ERRORS,
        5,
        "SHORT",
        "Log Error Details",
    ),
    common(
        key(
            "topics",
            "LIST",
            Is(""),
            "HIGH",
            "List of topics to consume, separated by commas",
        ),
        COMMON,
        4,
        "LONG",
        "Topics",
    ),
    common(
        key(
            "topics.regex",
            "STRING",
            Is(""),
            "HIGH",
            "Regular expression giving topics to consume. Under the hood, the regex is compiled to a java.util.regex.Pattern. Only one of topics or topics.regex should be specified.",
        ),
        COMMON,
        4,
        "LONG",
        "Topics regex",
    ),
    common(
        key(
            "errors.deadletterqueue.topic.name",
            "STRING",
            Is(""),
            "MEDIUM",
            "The name of the topic to be used as the dead letter queue (DLQ) for messages that result in an error when processed by this sink connector, or its transformations or converters. The topic name is blank by default, which means that no messages are to be recorded in the DLQ.",
        ),
        ERRORS,
        6,
        "MEDIUM",
        "Dead Letter Queue Topic Name",
    ),
    common(
        key(
            "errors.deadletterqueue.context.headers.enable",
            "BOOLEAN",
            Is("false"),
            "MEDIUM",
            "If true, add headers containing error context to the messages written to the dead letter queue. To avoid clashing with headers from the original record, all error context header keys will start with __connect.errors.",
        ),
        ERRORS,
        8,
        "MEDIUM",
        "Enable Error Context Headers",
    ),
];

/// The table of a connector, by its registry name.
pub(crate) fn own_keys(connector: &str) -> Option<&'static [Key]> {
    Some(match connector {
        "file" => tables::FILE,
        "null" => tables::NULL,
        "directory" => tables::DIRECTORY,
        "pubsub" => tables::PUBSUB,
        "bigquery" => tables::BIGQUERY,
        "http" => tables::HTTP,
        "openmsistream" => tables::OPENMSISTREAM,
        _ => return None,
    })
}

/// Connect's `ConfigKeyInfo` JSON of one key.
pub(crate) fn key_info(k: &Key) -> Value {
    let (required, default) = match k.default {
        DefaultValue::Required => (true, None),
        DefaultValue::Null => (false, None),
        DefaultValue::Value(v) => (false, Some(v)),
    };
    let (group, order, width, display) = k.display.unwrap_or(("", -1, "NONE", k.name));
    json!({
        "name": k.name,
        "type": k.kind,
        "required": required,
        "default_value": default,
        "importance": k.importance,
        "documentation": k.doc,
        "group": if group.is_empty() { Value::Null } else { json!(group) },
        "width": width,
        "display_name": display,
        "dependents": [],
        "order": order,
    })
}

/// A connector's keys, then the sink keys it does not define itself (Connect's order).
pub(crate) fn keys_of(connector: &str) -> Vec<&'static Key> {
    let own = own_keys(connector).unwrap_or_default();
    own.iter()
        .chain(
            SINK_BASE
                .iter()
                .filter(|b| !own.iter().any(|o| o.name == b.name)),
        )
        .collect()
}

/// `GET /connector-plugins/{plugin}/config` for a `connector.class` name or alias: the
/// connector's keys, then the sink keys it does not define itself. None: no such plugin.
pub(crate) fn plugin_config(plugin: &str) -> Option<Vec<Value>> {
    let factory = crate::registry::factories()
        .into_iter()
        .find(|f| f.class_names.contains(&plugin))?;
    own_keys(factory.name)?;
    Some(keys_of(factory.name).into_iter().map(key_info).collect())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use ferry_connector_api::ConnectorProps;

    use super::*;

    /// Keys a connector asks for that the table leaves out on purpose: accepted only to be
    /// refused with a pointer, or accepted with no effect in ferry (said in a note).
    fn undescribed(connector: &str) -> BTreeSet<&'static str> {
        let mut out = BTreeSet::new();
        #[cfg(feature = "connector-bigquery")]
        if connector == "bigquery" {
            out.extend([
                "datasets",
                "upsertEnabled",
                "deleteEnabled",
                "enableBatchMode",
                "enableBatchLoad",
            ]);
            out.extend(
                ferry_connector_bigquery::config::NO_EFFECT
                    .iter()
                    .map(|(k, _)| *k),
            );
        }
        if connector == "http" {
            // Refused by name (not supported yet), or read with no effect in ferry.
            out.extend([
                "oauth2.client.headers",
                "http.proxy.host",
                "http.proxy.port",
                "behavior.on.error",
                "retry.backoff.policy",
                "reporter.result.topic.replication.factor",
                "reporter.result.topic.partitions",
                "reporter.error.topic.replication.factor",
                "reporter.error.topic.partitions",
            ]);
        }
        out
    }

    /// Every table lists exactly the keys its connector asks for (so none can drift), and
    /// its required keys are the ones the connector cannot do without.
    #[test]
    fn each_table_is_the_keys_its_connector_reads() {
        let examples: BTreeMap<&str, &str> = [
            ("directory.path", "/tmp/out"),
            ("cps.project", "my-project"),
            ("cps.topic", "my-topic"),
            ("project", "my-project"),
            ("defaultDataset", "my_dataset"),
            ("http.api.url", "http://localhost:8080/api/messages"),
        ]
        .into_iter()
        .collect();
        let factories = crate::registry::factories();
        assert!(!factories.is_empty());
        for f in factories {
            let table =
                own_keys(f.name).unwrap_or_else(|| panic!("connector {} has no key table", f.name));
            let required: BTreeMap<String, String> = table
                .iter()
                .filter(|k| matches!(k.default, DefaultValue::Required))
                .map(|k| {
                    let v = examples
                        .get(k.name)
                        .unwrap_or_else(|| panic!("no example for {}", k.name));
                    (k.name.to_string(), v.to_string())
                })
                .collect();
            let mut props = ConnectorProps::new(required.clone());
            if let Err(e) = (f.create)(&mut props) {
                panic!("{} with its required keys only: {e}", f.name);
            }
            let asked: BTreeSet<&str> = props.known_keys().collect();
            let described: BTreeSet<&str> = table.iter().map(|k| k.name).collect();
            let skipped = undescribed(f.name);
            let missing: Vec<&&str> = asked
                .iter()
                .filter(|k| !described.contains(**k) && !skipped.contains(**k))
                .collect();
            assert!(
                missing.is_empty(),
                "{}: keys read but not described in src/rest/plugin_keys.rs: {missing:?}",
                f.name
            );
            let unread: Vec<&&str> = described.iter().filter(|k| !asked.contains(**k)).collect();
            assert!(
                unread.is_empty(),
                "{}: keys described that the connector does not read: {unread:?}",
                f.name
            );
            // Each required key really is: without it the connector refuses.
            for k in required.keys() {
                let mut without = required.clone();
                without.remove(k);
                assert!(
                    (f.create)(&mut ConnectorProps::new(without)).is_err(),
                    "{}: {k} is described as required but is not",
                    f.name
                );
            }
        }
    }

    /// The sink keys described are ones the runtime reads: a connector file setting each
    /// of them (to its default, or an example) loads without a note that it is unknown or
    /// ignored — and an unknown key does get such a note, so the check can fail.
    #[test]
    fn the_sink_keys_described_are_read_by_the_runtime() {
        use crate::config::{ConnectorConfig, PropertiesFile, WorkerConfig};
        let worker = WorkerConfig::from_file(
            PropertiesFile::parse(
                std::path::Path::new("w.properties"),
                b"bootstrap.servers=localhost:9092\noffset.storage.file.filename=/tmp/o\n",
            )
            .unwrap(),
            &crate::config::providers::SystemEnvironment,
        )
        .unwrap();
        let load = |extra: &str| {
            let text = format!("name=n\nconnector.class=null\ntopics=t\n{extra}");
            ConnectorConfig::from_file(
                PropertiesFile::parse(std::path::Path::new("c.properties"), text.as_bytes())
                    .unwrap(),
                &worker,
                &crate::config::providers::SystemEnvironment,
            )
            .map(|c| c.notes.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        };
        assert!(!load("no.such.key=1\n").unwrap().is_empty());
        for k in SINK_BASE {
            let value = match (k.name, k.default) {
                ("name" | "connector.class" | "topics", _) => continue,
                // topics.regex instead of topics.
                ("topics.regex", _) => {
                    let text = "name=n\nconnector.class=null\ntopics.regex=t.*\n";
                    let c = ConnectorConfig::from_file(
                        PropertiesFile::parse(
                            std::path::Path::new("c.properties"),
                            text.as_bytes(),
                        )
                        .unwrap(),
                        &worker,
                        &crate::config::providers::SystemEnvironment,
                    );
                    assert!(c.is_ok(), "topics.regex");
                    continue;
                }
                ("key.converter" | "value.converter", _) => {
                    "org.apache.kafka.connect.converters.ByteArrayConverter"
                }
                ("header.converter", _) => "org.apache.kafka.connect.storage.SimpleHeaderConverter",
                (_, DefaultValue::Value(v)) => v,
                (name, _) => panic!("no value to try for {name}"),
            };
            let notes = load(&format!("{}={value}\n", k.name))
                .unwrap_or_else(|e| panic!("{}={value}: {e}", k.name));
            assert!(notes.is_empty(), "{}: {notes:?}", k.name);
        }
    }

    #[test]
    fn aliases_resolve_unknown_plugins_do_not_and_connect_shapes_are_kept() {
        let full = plugin_config("org.apache.kafka.connect.file.FileStreamSinkConnector").unwrap();
        assert_eq!(full, plugin_config("FileStreamSink").unwrap());
        assert_eq!(full[0]["name"], "file");
        assert_eq!(full[0]["required"], false);
        assert_eq!(full[0]["default_value"], Value::Null);
        assert_eq!(full[0]["group"], Value::Null);
        assert_eq!(full[0]["order"], -1);
        let name = full.iter().find(|k| k["name"] == "name").unwrap();
        assert_eq!(name["required"], true);
        assert_eq!(name["group"], "Common");
        assert_eq!(name["display_name"], "Connector name");
        let keys: BTreeSet<&str> = name
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "name",
                "type",
                "required",
                "default_value",
                "importance",
                "documentation",
                "group",
                "width",
                "display_name",
                "dependents",
                "order"
            ]
            .into_iter()
            .collect()
        );
        assert!(plugin_config("com.example.Nope").is_none());
        assert!(plugin_config("FileStreamSource").is_none());
    }
}
