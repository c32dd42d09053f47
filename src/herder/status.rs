//! Kafka Connect's state and info entities (`rest/entities/*.java`), as the herder answers
//! them; the REST API serialises them unchanged.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::secret::is_secret_key;

/// What the operator asked a connector to be (Connect's `TargetState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Started,
    Paused,
    Stopped,
}

impl Target {
    /// `initial_state` of `POST /connectors`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "RUNNING" => Some(Target::Started),
            "PAUSED" => Some(Target::Paused),
            "STOPPED" => Some(Target::Stopped),
            _ => None,
        }
    }
}

/// `ConnectorTaskId`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TaskId {
    pub connector: String,
    pub task: usize,
}

/// `ConnectorInfo`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorInfo {
    pub name: String,
    pub config: BTreeMap<String, String>,
    pub tasks: Vec<TaskId>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// `TaskInfo`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub id: TaskId,
    pub config: BTreeMap<String, String>,
}

/// `ConnectorStateInfo.ConnectorState`.
#[derive(Debug, Clone, Serialize)]
pub struct StateInfo {
    pub state: &'static str,
    pub worker_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// `ConnectorStateInfo.TaskState`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStateInfo {
    pub id: usize,
    pub state: &'static str,
    pub worker_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// `ConnectorStateInfo`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorStateInfo {
    pub name: String,
    pub connector: StateInfo,
    pub tasks: Vec<TaskStateInfo>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// `PluginInfo`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub class: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub version: &'static str,
}

/// A sink partition's position (KIP-875's `ConnectorOffset` for sinks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    /// None: forget the partition's position.
    pub offset: Option<i64>,
}

/// What Connect shows instead of a password-type value.
pub const HIDDEN: &str = "[hidden]";

/// A connector config as the API shows it: values as written (config-provider references
/// such as `${file:/etc/secrets:password}` unresolved), credentials `[hidden]`, the user
/// info of URLs redacted.
pub fn public_config(raw: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    raw.iter()
        .map(|(k, v)| (k.clone(), public_value(k, v)))
        .collect()
}

fn public_value(key: &str, value: &str) -> String {
    let is_reference = value.trim_start().starts_with("${") && value.trim_end().ends_with('}');
    if is_reference {
        return value.to_string();
    }
    // BigQuery's `keyfile` holds the service account's JSON itself when keySource=JSON.
    let inline_key = key.eq_ignore_ascii_case("keyfile") && value.trim_start().starts_with('{');
    if is_secret_key(key) || inline_key {
        return HIDDEN.to_string();
    }
    crate::config::secret::display_value(key, value).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_hidden_and_references_kept() {
        let raw: BTreeMap<String, String> = [
            ("sasl.password", "s3cret"),
            (
                "consumer.override.sasl.jaas.config",
                "x required password=\"p\";",
            ),
            ("basic.auth.user.info", "u:p"),
            ("gcp.credentials.json", "{\"private_key\":\"k\"}"),
            ("keyfile", "{\"private_key\":\"k\"}"),
            ("cps.project", "proj"),
            ("db.password", "${file:/etc/s.properties:pw}"),
            ("schema.registry.url", "https://user:pw@registry:8081"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let shown = public_config(&raw);
        for k in [
            "sasl.password",
            "consumer.override.sasl.jaas.config",
            "basic.auth.user.info",
            "gcp.credentials.json",
            "keyfile",
        ] {
            assert_eq!(shown[k], HIDDEN, "{k}");
        }
        assert_eq!(shown["cps.project"], "proj");
        assert_eq!(shown["db.password"], "${file:/etc/s.properties:pw}");
        assert!(!shown["schema.registry.url"].contains("pw"));
    }
}
