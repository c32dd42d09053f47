//! The records of a distributed cluster's config topic, in Kafka Connect's own format
//! (`KafkaConfigBackingStore`): UTF-8 string keys, JSON values without schemas (Connect's
//! internal `JsonConverter` with `schemas.enable=false`). Pure: bytes in, bytes out.
//!
//! | key | value |
//! |---|---|
//! | `connector-<name>` | `{"properties":{…}}`; a tombstone deletes the connector |
//! | `target-state-<name>` | `{"state":"STARTED"\|"PAUSED","state.v2":…}` (STOPPED is `"state":"PAUSED","state.v2":"STOPPED"`, so that older workers pause) |
//! | `restart-connector-<name>` | `{"include-tasks":bool,"only-failed":bool}` (KIP-745) |
//! | `task-<name>-<n>`, `commit-<name>` | Connect's task configs; ferry derives its tasks from `tasks.max` and reads past them |
//! | `logger-cluster-<namespace>` | `{"level":"DEBUG"}`: a log level for every worker (KIP-976, `PUT /admin/loggers/…?scope=cluster`) |
//!
//! A Java Connect cluster's topic therefore reads as ferry's, and ferry's as Java's, for
//! connector configs and target states.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use super::status::Target;

/// What one record of the config topic says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfigRecord {
    /// A connector's config; `None`: deleted.
    Connector {
        name: String,
        properties: Option<BTreeMap<String, String>>,
    },
    /// A connector's target state; `None`: removed (with the connector).
    Target {
        name: String,
        target: Option<Target>,
    },
    Restart {
        name: String,
        include_tasks: bool,
        only_failed: bool,
    },
    /// Task configs and their commits: Connect's own bookkeeping of the tasks it split a
    /// connector into.
    Tasks,
    /// A log level every worker sets (the level's text as written: workers check it).
    LoggerLevel { namespace: String, level: String },
}

const CONNECTOR: &str = "connector-";
const TARGET: &str = "target-state-";
const RESTART: &str = "restart-connector-";
const LOGGER: &str = "logger-cluster-";

#[derive(Deserialize)]
struct ConnectorValue {
    // Connect's schema allows null values in the map.
    properties: BTreeMap<String, Option<String>>,
}

#[derive(Deserialize)]
struct TargetValue {
    state: String,
    #[serde(rename = "state.v2")]
    state_v2: Option<String>,
}

#[derive(Deserialize)]
struct LoggerValue {
    level: String,
}

#[derive(Deserialize)]
struct RestartValue {
    #[serde(rename = "include-tasks", default)]
    include_tasks: bool,
    #[serde(rename = "only-failed", default)]
    only_failed: bool,
}

fn target_of(name: &str) -> Option<Target> {
    match name {
        "STARTED" => Some(Target::Started),
        "PAUSED" => Some(Target::Paused),
        "STOPPED" => Some(Target::Stopped),
        _ => None,
    }
}

/// Reads one record; `Err` says why it is not Connect's shape (the caller logs it with the
/// record's offset and goes on).
pub(crate) fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<ConfigRecord, String> {
    let key = key.ok_or("the record has no key")?;
    let key = std::str::from_utf8(key).map_err(|_| "the key is not UTF-8".to_string())?;
    let json = |what: &str| -> Result<Option<serde_json::Value>, String> {
        value
            .map(|v| serde_json::from_slice(v).map_err(|e| format!("{what}: not JSON ({e})")))
            .transpose()
    };
    if let Some(name) = key.strip_prefix(CONNECTOR) {
        let properties = match json(key)? {
            None => None,
            Some(v) => {
                let c: ConnectorValue = serde_json::from_value(v)
                    .map_err(|e| format!("{key}: not a connector config ({e})"))?;
                Some(
                    c.properties
                        .into_iter()
                        .filter_map(|(k, v)| Some((k, v?)))
                        .collect(),
                )
            }
        };
        return Ok(ConfigRecord::Connector {
            name: name.to_string(),
            properties,
        });
    }
    if let Some(name) = key.strip_prefix(TARGET) {
        let target =
            match json(key)? {
                None => None,
                Some(v) => {
                    let t: TargetValue = serde_json::from_value(v)
                        .map_err(|e| format!("{key}: not a target state ({e})"))?;
                    // state.v2 (Kafka 3.5+) when present: it can say STOPPED.
                    let state = t.state_v2.unwrap_or(t.state);
                    Some(target_of(&state).ok_or_else(|| {
                        format!("{key}: `{state}` is not STARTED, PAUSED or STOPPED")
                    })?)
                }
            };
        return Ok(ConfigRecord::Target {
            name: name.to_string(),
            target,
        });
    }
    if let Some(name) = key.strip_prefix(RESTART) {
        let r: RestartValue = match json(key)? {
            None => return Ok(ConfigRecord::Tasks),
            Some(v) => serde_json::from_value(v)
                .map_err(|e| format!("{key}: not a restart request ({e})"))?,
        };
        return Ok(ConfigRecord::Restart {
            name: name.to_string(),
            include_tasks: r.include_tasks,
            only_failed: r.only_failed,
        });
    }
    if let Some(namespace) = key.strip_prefix(LOGGER) {
        let l: LoggerValue = json(key)?
            .ok_or_else(|| format!("{key}: a log level record without a value"))
            .and_then(|v| {
                serde_json::from_value(v).map_err(|e| format!("{key}: not a log level ({e})"))
            })?;
        return Ok(ConfigRecord::LoggerLevel {
            namespace: namespace.to_string(),
            level: l.level,
        });
    }
    if key.starts_with("task-") || key.starts_with("commit-") || key.starts_with("session-key") {
        return Ok(ConfigRecord::Tasks);
    }
    Err(format!(
        "`{key}` is not a key of Kafka Connect's config topic"
    ))
}

/// The key and value (None: tombstone) of a record.
pub(crate) type Encoded = (String, Option<Vec<u8>>);

pub(crate) fn connector(name: &str, properties: Option<&BTreeMap<String, String>>) -> Encoded {
    (
        format!("{CONNECTOR}{name}"),
        properties.map(|p| json!({ "properties": p }).to_string().into_bytes()),
    )
}

pub(crate) fn target(name: &str, target: Option<Target>) -> Encoded {
    let value = target.map(|t| {
        let (state, v2) = match t {
            Target::Started => ("STARTED", "STARTED"),
            Target::Paused => ("PAUSED", "PAUSED"),
            Target::Stopped => ("PAUSED", "STOPPED"),
        };
        json!({ "state": state, "state.v2": v2 })
            .to_string()
            .into_bytes()
    });
    (format!("{TARGET}{name}"), value)
}

pub(crate) fn restart(name: &str, include_tasks: bool, only_failed: bool) -> Encoded {
    (
        format!("{RESTART}{name}"),
        Some(
            json!({ "include-tasks": include_tasks, "only-failed": only_failed })
                .to_string()
                .into_bytes(),
        ),
    )
}

pub(crate) fn logger_level(namespace: &str, level: &str) -> Encoded {
    (
        format!("{LOGGER}{namespace}"),
        Some(json!({ "level": level }).to_string().into_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(e: Encoded) -> ConfigRecord {
        decode(Some(e.0.as_bytes()), e.1.as_deref()).unwrap()
    }

    #[test]
    fn connect_records_as_a_java_cluster_writes_them() {
        // Values as Kafka Connect's KafkaConfigBackingStore writes them.
        let r = decode(
            Some(b"connector-ztf"),
            Some(br#"{"properties":{"connector.class":"FileStreamSink","name":"ztf","topics":"t","x":null}}"#),
        )
        .unwrap();
        let ConfigRecord::Connector { name, properties } = r else {
            panic!("{r:?}")
        };
        assert_eq!(name, "ztf");
        let p = properties.unwrap();
        assert_eq!(p["connector.class"], "FileStreamSink");
        assert!(!p.contains_key("x"));
        assert_eq!(
            decode(
                Some(b"target-state-ztf"),
                Some(br#"{"state":"PAUSED","state.v2":"STOPPED"}"#)
            ),
            Ok(ConfigRecord::Target {
                name: "ztf".into(),
                target: Some(Target::Stopped)
            })
        );
        // Before Kafka 3.5: no state.v2.
        assert_eq!(
            decode(Some(b"target-state-ztf"), Some(br#"{"state":"PAUSED"}"#)),
            Ok(ConfigRecord::Target {
                name: "ztf".into(),
                target: Some(Target::Paused)
            })
        );
        assert_eq!(
            decode(Some(b"connector-ztf"), None),
            Ok(ConfigRecord::Connector {
                name: "ztf".into(),
                properties: None
            })
        );
        assert_eq!(
            decode(Some(b"task-ztf-0"), Some(br#"{"properties":{}}"#)),
            Ok(ConfigRecord::Tasks)
        );
        assert_eq!(
            decode(Some(b"commit-ztf"), Some(br#"{"tasks":1}"#)),
            Ok(ConfigRecord::Tasks)
        );
    }

    #[test]
    fn what_ferry_writes_reads_back() {
        let p: BTreeMap<String, String> = [("name".to_string(), "c".to_string())].into();
        assert_eq!(
            round(connector("c", Some(&p))),
            ConfigRecord::Connector {
                name: "c".into(),
                properties: Some(p)
            }
        );
        for t in [Target::Started, Target::Paused, Target::Stopped] {
            assert_eq!(
                round(target("c", Some(t))),
                ConfigRecord::Target {
                    name: "c".into(),
                    target: Some(t)
                }
            );
        }
        assert_eq!(
            target("c", Some(Target::Stopped)).1.unwrap(),
            br#"{"state":"PAUSED","state.v2":"STOPPED"}"#
        );
        assert_eq!(
            logger_level("ferry::worker", "DEBUG"),
            (
                "logger-cluster-ferry::worker".to_string(),
                Some(br#"{"level":"DEBUG"}"#.to_vec())
            )
        );
        assert_eq!(
            round(logger_level("org.apache.kafka", "WARN")),
            ConfigRecord::LoggerLevel {
                namespace: "org.apache.kafka".into(),
                level: "WARN".into()
            }
        );
        assert_eq!(
            round(restart("c", true, false)),
            ConfigRecord::Restart {
                name: "c".into(),
                include_tasks: true,
                only_failed: false
            }
        );
    }

    #[test]
    fn records_of_another_shape_say_why() {
        for (key, value, expect) in [
            (
                Some(&b"connector-c"[..]),
                Some(&b"{not json"[..]),
                "connector-c: not JSON",
            ),
            (
                Some(b"connector-c"),
                Some(br#"{"props":{}}"#),
                "connector-c: not a connector config",
            ),
            (
                Some(b"target-state-c"),
                Some(br#"{"state":"GONE"}"#),
                "`GONE` is not STARTED",
            ),
            (
                Some(b"what-is-this"),
                Some(b"{}"),
                "not a key of Kafka Connect's config topic",
            ),
            (
                Some(b"logger-cluster-x"),
                None,
                "logger-cluster-x: a log level record without a value",
            ),
            (
                Some(b"logger-cluster-x"),
                Some(br#"{"level":3}"#),
                "logger-cluster-x: not a log level",
            ),
            (None, Some(b"{}"), "no key"),
            (Some(&[0xff, 0xfe][..]), None, "not UTF-8"),
        ] {
            let e = decode(key, value).unwrap_err();
            assert!(e.contains(expect), "{e}");
        }
    }
}
