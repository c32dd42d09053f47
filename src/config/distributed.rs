//! The worker keys of distributed mode, with Kafka Connect's names (`DistributedConfig`):
//! the cluster's name and its internal topics. Read from the worker file's (resolved)
//! entries; pure.

use ferry_connector_api::text::shown;

use super::{ConfigFileError, PropertiesFile};

/// Distributed mode's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributedConfig {
    /// `group.id` (required): the name of the cluster of workers. Workers with the same
    /// `group.id` and `config.storage.topic` share connectors.
    pub group_id: String,
    /// `config.storage.topic` (required): the compacted, one-partition topic that holds the
    /// connectors' configs and target states, in Kafka Connect's own format.
    pub config_topic: String,
    /// `config.storage.replication.factor` (-1: the broker's default, KIP-464): used when
    /// ferry creates the config topic.
    pub config_replication: i32,
    /// `status.storage.topic` (required, as in Connect): the compacted topic where every
    /// worker writes the state of its connectors and tasks, in Kafka Connect's format.
    pub status_topic: String,
    /// `status.storage.partitions` (Connect's default 5) and
    /// `status.storage.replication.factor` (-1: the broker's default): used when ferry
    /// creates the status topic.
    pub status_partitions: i32,
    pub status_replication: i32,
    /// `offset.storage.topic`: accepted; ferry keeps a sink's offsets in its consumer group
    /// (as Connect does for sinks).
    pub offset_topic: Option<String>,
    /// `ferry.static.membership` (false): each connector's consumer joins its group as a
    /// static member (KIP-345) with a `group.instance.id` of this worker's own
    /// ([`static_worker_name`], [`group_instance_id`]), so that a worker restarted within
    /// the session timeout gets its partitions back without a rebalance.
    pub static_membership: bool,
}

/// The worker keys distributed mode reads ([`DistributedConfig::from_worker`]); standalone
/// mode ignores them.
pub const KEYS: &[&str] = &[
    "group.id",
    "config.storage.topic",
    "config.storage.replication.factor",
    "status.storage.topic",
    "status.storage.partitions",
    "status.storage.replication.factor",
    "offset.storage.topic",
    "ferry.static.membership",
];

/// Whether a worker file is a distributed worker's (connect-distributed.properties): it
/// names one of the internal topics, which exist only in distributed mode. `group.id`
/// alone does not make one: standalone files carry it by mistake for `consumer.group.id`.
pub fn is_distributed(file: &PropertiesFile) -> bool {
    [
        "config.storage.topic",
        "status.storage.topic",
        "offset.storage.topic",
    ]
    .iter()
    .any(|k| file.entries.contains_key(*k))
}

/// Kafka's limit on a `group.instance.id` (that of a topic name).
const INSTANCE_ID_MAX: usize = 249;

/// Kafka accepts these characters in a `group.instance.id`; others become `-`.
fn legal(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The worker's part of its static members' ids: its advertised REST host and port, with
/// the machine's host name in place of a loopback, wildcard or empty host (the REST API
/// listens on loopback by default, and workers on different machines must never share an
/// id: the broker would fence one of them).
pub fn static_worker_name(host: &str, port: u16, hostname: Option<&str>) -> Result<String, String> {
    let host = host.trim_matches(|c| c == '[' || c == ']');
    let local = host.is_empty()
        || host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    let host = if local {
        match hostname.map(str::trim).filter(|h| !h.is_empty()) {
            Some(h) => h,
            None => {
                return Err(
                    "ferry.static.membership=true: this machine has no host name to tell its workers from other machines'; set rest.advertised.host.name to a name unique in the cluster".into(),
                );
            }
        }
    } else {
        host
    };
    Ok(legal(&format!("{host}-{port}")))
}

/// The `group.instance.id` of a connector's consumer on a worker: `<worker>-<connector>`.
/// Unique per worker, and per connector too, as connectors may share a group (a worker's
/// `consumer.group.id`); cut to Kafka's 249 characters from the end, which keeps the
/// worker's part that tells members of one group apart.
pub fn group_instance_id(worker: &str, connector: &str) -> String {
    legal(&format!("{worker}-{connector}"))
        .chars()
        .take(INSTANCE_ID_MAX)
        .collect()
}

fn key_err(file: &PropertiesFile, key: &str, reason: String) -> ConfigFileError {
    ConfigFileError::Key {
        location: file.locate(key),
        key: key.to_string(),
        reason,
    }
}

impl DistributedConfig {
    pub fn from_worker(file: &PropertiesFile) -> Result<Self, ConfigFileError> {
        let get = |k: &str| {
            file.entries
                .get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |key: &str, hint: &str| {
            get(key).ok_or_else(|| ConfigFileError::Missing {
                path: file.path.clone(),
                key: key.to_string(),
                hint: hint.to_string(),
            })
        };
        let group_id = required(
            "group.id",
            "the name of the cluster of workers, the same on every worker, e.g. group.id=ferry-cluster",
        )?;
        let config_topic = required(
            "config.storage.topic",
            "the topic that holds the connectors' configs, the same on every worker, e.g. config.storage.topic=ferry-configs",
        )?;
        let status_topic = required(
            "status.storage.topic",
            "the topic where workers write the connectors' and tasks' states, the same on every worker, e.g. status.storage.topic=ferry-status",
        )?;
        for (key, topic) in [
            ("group.id", &group_id),
            ("config.storage.topic", &config_topic),
            ("status.storage.topic", &status_topic),
        ] {
            super::validate::topic(topic).map_err(|reason| key_err(file, key, reason))?;
        }
        if status_topic == config_topic {
            return Err(key_err(
                file,
                "status.storage.topic",
                format!(
                    "`{status_topic}` is also config.storage.topic; the two internal topics must differ (e.g. status.storage.topic={group_id}-status)"
                ),
            ));
        }
        let replication = |key: &str| match get(key) {
            None => Ok(-1),
            Some(v) => match v.parse::<i32>() {
                Ok(n) if n == -1 || n >= 1 => Ok(n),
                _ => Err(key_err(
                    file,
                    key,
                    format!(
                        "`{}` is not a replication factor; give a number of replicas (1 or more) or -1 for the broker's default",
                        shown(&v)
                    ),
                )),
            },
        };
        let status_partitions = match get("status.storage.partitions") {
            None => 5,
            Some(v) => match v.parse::<i32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(key_err(
                        file,
                        "status.storage.partitions",
                        format!(
                            "`{}` is not a number of partitions; give 1 or more (Connect's default is 5)",
                            shown(&v)
                        ),
                    ));
                }
            },
        };
        let static_membership = match get("ferry.static.membership") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(key_err(
                    file,
                    "ferry.static.membership",
                    format!("`{}` is not true or false", shown(&v)),
                ));
            }
        };
        Ok(Self {
            group_id,
            config_topic,
            config_replication: replication("config.storage.replication.factor")?,
            status_topic,
            status_partitions,
            status_replication: replication("status.storage.replication.factor")?,
            offset_topic: get("offset.storage.topic"),
            static_membership,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> Result<DistributedConfig, ConfigFileError> {
        DistributedConfig::from_worker(
            &PropertiesFile::parse(Path::new("w.properties"), text.as_bytes()).unwrap(),
        )
    }

    #[test]
    fn connect_keys() {
        let c = config(
            "group.id=cluster\nconfig.storage.topic=cfg\nstatus.storage.topic=st\noffset.storage.topic=off\nconfig.storage.replication.factor=1\n",
        )
        .unwrap();
        assert_eq!(c.group_id, "cluster");
        assert_eq!(c.config_topic, "cfg");
        assert_eq!(c.config_replication, 1);
        assert_eq!(c.status_topic, "st");
        assert_eq!((c.status_partitions, c.status_replication), (5, -1));
        let c = config(
            "group.id=c\nconfig.storage.topic=cfg\nstatus.storage.topic=st\nstatus.storage.partitions=1\nstatus.storage.replication.factor=3\n",
        )
        .unwrap();
        assert_eq!((c.status_partitions, c.status_replication), (1, 3));
    }

    #[test]
    fn a_file_naming_an_internal_topic_is_a_distributed_workers() {
        let file = |text: &str| PropertiesFile::parse(Path::new("w"), text.as_bytes()).unwrap();
        assert!(is_distributed(&file("status.storage.topic=s\n")));
        assert!(is_distributed(&file("offset.storage.topic=o\n")));
        assert!(!is_distributed(&file("group.id=g\nbootstrap.servers=b\n")));
    }

    #[test]
    fn static_membership_is_off_unless_asked_for() {
        let base = "group.id=g\nconfig.storage.topic=c\nstatus.storage.topic=s\n";
        assert!(!config(base).unwrap().static_membership);
        let on = config(&format!("{base}ferry.static.membership=TRUE\n")).unwrap();
        assert!(on.static_membership);
        let e = config(&format!("{base}ferry.static.membership=yes\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("w.properties:4: ferry.static.membership:") && e.contains("`yes`"),
            "{e}"
        );
    }

    #[test]
    fn static_ids_name_the_worker_and_the_connector_in_kafkas_characters() {
        let host = Some("vm-7");
        assert_eq!(
            static_worker_name("10.0.0.5", 8083, host).unwrap(),
            "10.0.0.5-8083"
        );
        // Loopback, wildcard and empty hosts are the same on every machine.
        for local in ["127.0.0.1", "localhost", "0.0.0.0", "", "::1", "[::]"] {
            assert_eq!(static_worker_name(local, 8083, host).unwrap(), "vm-7-8083");
        }
        let e = static_worker_name("127.0.0.1", 8083, None).unwrap_err();
        assert!(e.contains("rest.advertised.host.name"), "{e}");
        assert_eq!(static_worker_name("fe80::1", 9, host).unwrap(), "fe80--1-9");
        assert_eq!(
            group_instance_id("vm-7-8083", "ztf sink/1"),
            "vm-7-8083-ztf-sink-1"
        );
        let long = group_instance_id("w-1", &"x".repeat(400));
        assert_eq!(long.len(), 249);
        assert!(long.starts_with("w-1-x"));
    }

    #[test]
    fn missing_and_bad_keys_name_themselves() {
        let e = config("config.storage.topic=cfg\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("w.properties: missing required key `group.id`"),
            "{e}"
        );
        let e = config("group.id=g\n").unwrap_err().to_string();
        assert!(e.contains("`config.storage.topic`"), "{e}");
        let e = config("group.id=g\nconfig.storage.topic=c\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`status.storage.topic`"), "{e}");
        let e = config("group.id=g\nconfig.storage.topic=c\nstatus.storage.topic=c\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("w.properties:3: status.storage.topic: `c` is also config.storage.topic"),
            "{e}"
        );
        let e = config("group.id=g\nconfig.storage.topic=a b\nstatus.storage.topic=s\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("w.properties:2: config.storage.topic:"),
            "{e}"
        );
        let e = config("group.id=g\nconfig.storage.topic=c\nconfig.storage.replication.factor=0\nstatus.storage.topic=s\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("w.properties:3: config.storage.replication.factor:"),
            "{e}"
        );
        let e = config("group.id=g\nconfig.storage.topic=c\nstatus.storage.topic=s\nstatus.storage.partitions=0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("w.properties:4: status.storage.partitions:"),
            "{e}"
        );
    }
}
