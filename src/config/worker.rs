//! The worker file (`connect-standalone.properties`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_connector_api::ConnectorProps;
use ferry_connector_api::text::shown;

use super::client::{self, OverridePolicy, Sourced};
use super::notes::{Note, NoteKind, suggest};
use super::providers::{Environment, Providers};
use super::{
    ConfigFileError, PropertiesFile, duplicate_notes, misspelt, resolve_file, take_ms, validate,
};
use crate::convert::Converter;

/// Kafka Connect worker keys that have no meaning in ferry, with the reason shown to users.
const IGNORED: &[(&str, &str)] = &[
    (
        "plugin.path",
        "ferry's connectors are built into the binary; no plugin scanning",
    ),
    (
        "plugin.discovery",
        "ferry's connectors are built into the binary; no plugin scanning",
    ),
    (
        "admin.listeners",
        "ferry serves its REST API on `listeners` only",
    ),
    ("rest.extension.classes", "ferry loads no REST extensions"),
    (
        "response.http.headers.config",
        "ferry sets no extra REST response headers",
    ),
    (
        "internal.key.converter",
        "deprecated in Kafka Connect; unused",
    ),
    (
        "internal.value.converter",
        "deprecated in Kafka Connect; unused",
    ),
    (
        "internal.key.converter.schemas.enable",
        "deprecated in Kafka Connect; unused",
    ),
    (
        "internal.value.converter.schemas.enable",
        "deprecated in Kafka Connect; unused",
    ),
    (
        "topic.creation.enable",
        "applies to source connectors; ferry runs sinks",
    ),
    (
        "exactly.once.source.support",
        "applies to source connectors; ferry runs sinks",
    ),
    ("offset.storage.topic", "distributed mode only"),
    ("offset.storage.partitions", "distributed mode only"),
    ("offset.storage.replication.factor", "distributed mode only"),
    ("config.storage.topic", "distributed mode only"),
    ("config.storage.replication.factor", "distributed mode only"),
    ("status.storage.topic", "distributed mode only"),
    ("status.storage.partitions", "distributed mode only"),
    ("status.storage.replication.factor", "distributed mode only"),
    (
        "group.id",
        "the Connect cluster's group in distributed mode; sink consumers use connect-<name> or consumer.group.id",
    ),
    ("scheduled.rebalance.max.delay.ms", "distributed mode only"),
    ("worker.sync.timeout.ms", "distributed mode only"),
    ("worker.unsync.backoff.ms", "distributed mode only"),
    ("ferry.static.membership", "distributed mode only"),
    (
        "config.action.reload",
        "ferry reads its files once at start",
    ),
    (
        "metric.reporters",
        "ferry exports Prometheus metrics (see /metrics), not JMX",
    ),
    (
        "metrics.num.samples",
        "ferry exports Prometheus metrics (see /metrics), not JMX",
    ),
    (
        "metrics.recording.level",
        "ferry exports Prometheus metrics (see /metrics), not JMX",
    ),
    (
        "metrics.sample.window.ms",
        "ferry exports Prometheus metrics (see /metrics), not JMX",
    ),
    ("auto.include.jmx.reporter", "ferry has no JMX"),
];

/// The worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The file as read, values resolved.
    pub file: PropertiesFile,
    pub providers: Providers,
    /// `bootstrap.servers` (required).
    pub bootstrap_servers: String,
    /// `key.converter` (default ByteArrayConverter; Kafka Connect requires the key).
    pub key_converter: Converter,
    /// `value.converter` (default ByteArrayConverter).
    pub value_converter: Converter,
    /// `header.converter` (default SimpleHeaderConverter): writes the headers transforms add.
    pub header_converter: ferry_transforms::HeaderConverter,
    /// `offset.storage.file.filename`: ferry's file offset store. Absent → resume from the
    /// consumer group only.
    pub offset_file: Option<PathBuf>,
    /// `offset.flush.interval.ms` (60 000): how often tasks flush and commit.
    pub flush_interval: Duration,
    /// `offset.flush.timeout.ms` (5 000): how long a flush may take before the commit is
    /// skipped until the next interval.
    pub flush_timeout: Duration,
    /// `task.shutdown.graceful.timeout.ms` (5 000): how long shutdown may drain.
    pub shutdown_timeout: Duration,
    /// `connector.client.config.override.policy` (All).
    pub override_policy: OverridePolicy,
    /// `ferry.status.interval.ms` (30 000): period of the per-connector status line; 0 = off.
    pub status_interval: Duration,
    /// `ferry.krb5.conf`: the Kerberos configuration for this worker's keytab login, with
    /// where it was set. Absent → `KRB5_CONFIG`, else `/etc/krb5.conf` (MIT's own rule).
    pub krb5_conf: Option<(PathBuf, String)>,
    /// `ferry.metrics.listener` (e.g. `http://127.0.0.1:9464`): a listener of its own for
    /// `GET /metrics`. Absent or empty → none.
    pub metrics_listener: Option<crate::metrics::MetricsListener>,
    /// Top-level Java client keys (only `bootstrap.servers` and the security block reach sink
    /// consumers).
    pub client_top: BTreeMap<String, Sourced>,
    /// `consumer.*`, prefix removed.
    pub client_consumer: BTreeMap<String, Sourced>,
    /// `producer.*`, prefix removed: the producer ferry lends tasks and writes dead letters
    /// with.
    pub client_producer: BTreeMap<String, Sourced>,
    pub notes: Vec<Note>,
}

/// Keys of Kafka's Java clients and Connect workers, and librdkafka's: another tool's key in
/// a worker file is never taken for a misspelling of one of ferry's.
const FOREIGN_KEYS: [&str; 2] = [
    include_str!("keys/kafka-keys.txt"),
    include_str!("keys/librdkafka-keys.txt"),
];

/// Prefixes of Kafka Connect worker keys built at run time (`listeners.https.ssl.*`).
const FOREIGN_PREFIXES: &[&str] = &["listeners.https.", "metrics.context."];

fn is_foreign(key: &str) -> bool {
    FOREIGN_PREFIXES.iter().any(|p| key.starts_with(p))
        || FOREIGN_KEYS
            .iter()
            .flat_map(|list| list.lines())
            .any(|k| k == key)
}

/// A key no table of ferry's holds. Close to a key ferry acts on (a worker key it reads, or
/// a Java client key it translates) and not another tool's key, it is a misspelling: an
/// error, since the setting the user meant would silently not apply. Otherwise a note —
/// with a suggestion when it is close to a key ferry ignores anyway — as Kafka Connect
/// ignores unknown worker keys too.
fn unknown_key<'a>(
    file: &PropertiesFile,
    key: &str,
    read: impl Iterator<Item = &'a str>,
) -> Result<Note, ConfigFileError> {
    if !is_foreign(key) {
        let mut acted_on: Vec<&str> = read.collect();
        for k in client::known_keys() {
            acted_on.push(k);
        }
        if let Some(intended) = suggest(key, acted_on) {
            return Err(misspelt(file, key, &intended, false));
        }
    }
    let suggestion = suggest(key, IGNORED.iter().map(|(k, _)| *k));
    Ok(Note::new(
        file.locate(key),
        key,
        NoteKind::Unknown { suggestion },
    ))
}

fn sourced(file: &PropertiesFile, written_as: &str, value: String) -> Sourced {
    Sourced {
        value,
        location: file.locate(written_as),
        written_as: written_as.to_string(),
    }
}

impl WorkerConfig {
    pub fn load(path: &Path, env: &dyn Environment) -> Result<Self, ConfigFileError> {
        Self::from_file(PropertiesFile::load(path)?, env)
    }

    pub fn from_file(raw: PropertiesFile, env: &dyn Environment) -> Result<Self, ConfigFileError> {
        let providers =
            Providers::from_worker(&raw.entries).map_err(|(key, reason)| ConfigFileError::Key {
                location: raw.locate(&key),
                key,
                reason,
            })?;
        let file = resolve_file(raw, &providers, env)?;
        let mut notes = duplicate_notes(&file);
        let mut props = ConnectorProps::new(file.entries.clone());
        let api = |e| ConfigFileError::from_api(&file, e);

        let bootstrap_servers = props
            .take_required(
                "bootstrap.servers",
                "the Kafka brokers to read from, e.g. broker1:9092,broker2:9092",
            )
            .map_err(api)?;
        validate::client_value("bootstrap.servers", &bootstrap_servers).map_err(|reason| {
            ConfigFileError::Key {
                location: file.locate("bootstrap.servers"),
                key: "bootstrap.servers".into(),
                reason,
            }
        })?;
        let converter = |props: &mut ConnectorProps,
                         notes: &mut Vec<Note>,
                         key: &str|
         -> Result<Converter, ConfigFileError> {
            let settings = props.take_prefixed(&format!("{key}."));
            match props.take(key) {
                Some(class) => {
                    Converter::parse(&class, &settings).map_err(|reason| ConfigFileError::Key {
                        location: file.locate(key),
                        key: key.to_string(),
                        reason,
                    })
                }
                None => {
                    notes.push(Note::new(
                        file.path.display().to_string(),
                        key,
                        NoteKind::Defaulted {
                            value: Converter::ByteArray.class_name().into(),
                            reason: "not set; Kafka Connect would refuse to start".into(),
                        },
                    ));
                    Ok(Converter::ByteArray)
                }
            }
        };
        let key_converter = converter(&mut props, &mut notes, "key.converter")?;
        let value_converter = converter(&mut props, &mut notes, "value.converter")?;
        let header_converter =
            super::connector::take_header_converter(&file, &mut props)?.unwrap_or_default();
        let path_err = |key: &str, reason: String| ConfigFileError::Key {
            location: file.locate(key),
            key: key.to_string(),
            reason,
        };
        let offset_file = props.take("offset.storage.file.filename");
        if let Some(v) = &offset_file {
            validate::path(v).map_err(|r| path_err("offset.storage.file.filename", r))?;
        }
        let offset_file = offset_file.map(PathBuf::from);
        let flush_interval = take_ms(&file, &mut props, "offset.flush.interval.ms", 60_000)?;
        let flush_timeout = take_ms(&file, &mut props, "offset.flush.timeout.ms", 5_000)?;
        let shutdown_timeout = take_ms(
            &file,
            &mut props,
            "task.shutdown.graceful.timeout.ms",
            5_000,
        )?;
        let status_interval = take_ms(&file, &mut props, "ferry.status.interval.ms", 30_000)?;
        let krb5_conf = props.take("ferry.krb5.conf");
        if let Some(v) = &krb5_conf {
            validate::path(v.trim()).map_err(|r| path_err("ferry.krb5.conf", r))?;
        }
        let krb5_conf =
            krb5_conf.map(|v| (PathBuf::from(v.trim()), file.locate("ferry.krb5.conf")));
        let metrics_listener = match props.take("ferry.metrics.listener") {
            Some(url) if !url.trim().is_empty() => {
                let location = file.locate("ferry.metrics.listener");
                match crate::metrics::listener::parse(&url) {
                    Ok(addr) => Some(crate::metrics::MetricsListener {
                        addr,
                        url: url.trim().to_string(),
                        location,
                    }),
                    Err(reason) => {
                        return Err(ConfigFileError::Key {
                            location,
                            key: "ferry.metrics.listener".into(),
                            reason,
                        });
                    }
                }
            }
            _ => None,
        };
        let override_policy = match props.take("connector.client.config.override.policy") {
            None => OverridePolicy::All,
            Some(v) => OverridePolicy::parse(&v).ok_or_else(|| ConfigFileError::Key {
                location: file.locate("connector.client.config.override.policy"),
                key: "connector.client.config.override.policy".into(),
                reason: format!("`{}` is not None, Principal or All", shown(&v)),
            })?,
        };
        props.take_prefixed("config.providers");
        // Read by config::rest (RestConfig::from_worker).
        for key in [
            "listeners",
            "rest.host.name",
            "rest.port",
            "rest.advertised.host.name",
            "rest.advertised.port",
            "rest.advertised.listener",
            "access.control.allow.origin",
            "access.control.allow.methods",
            "ferry.rest.enable",
            "ferry.config.storage.file",
            "ferry.rest.basic.auth.file",
            "topic.tracking.enable",
            "topic.tracking.allow.reset",
        ] {
            props.take(key);
        }
        props.take_prefixed(crate::config::rest::HTTPS_PREFIX);

        let client_consumer = props
            .take_prefixed("consumer.")
            .into_iter()
            .map(|(k, v)| {
                let written = format!("consumer.{k}");
                let s = sourced(&file, &written, v);
                (k, s)
            })
            .collect();
        let client_producer = props
            .take_prefixed("producer.")
            .into_iter()
            .map(|(k, v)| {
                let written = format!("producer.{k}");
                let s = sourced(&file, &written, v);
                (k, s)
            })
            .collect();
        for (k, _) in props.take_prefixed("admin.") {
            let key = format!("admin.{k}");
            notes.push(Note::new(
                file.locate(&key),
                &key,
                NoteKind::Ignored {
                    reason: "ferry creates no topics; the admin client is unused".into(),
                },
            ));
        }
        let mut client_top = BTreeMap::new();
        client_top.insert(
            "bootstrap.servers".to_string(),
            sourced(&file, "bootstrap.servers", bootstrap_servers.clone()),
        );
        for (key, value) in props.drain_remaining() {
            if let Some((_, reason)) = IGNORED.iter().find(|(k, _)| *k == key) {
                notes.push(Note::new(
                    file.locate(&key),
                    &key,
                    NoteKind::Ignored {
                        reason: (*reason).into(),
                    },
                ));
            } else if client::rule(&key).is_some()
                || key.starts_with("sasl.")
                || key.starts_with("ssl.")
            {
                let security = key == "security.protocol"
                    || key.starts_with("sasl.")
                    || key.starts_with("ssl.");
                if !security {
                    notes.push(Note::new(
                        file.locate(&key),
                        &key,
                        NoteKind::Ignored {
                            reason: format!("top-level client settings configure Kafka Connect's own clients, not sink consumers; write consumer.{key} to apply it"),
                        },
                    ));
                }
                client_top.insert(key.clone(), sourced(&file, &key, value));
            } else {
                notes.push(unknown_key(&file, &key, props.known_keys())?);
            }
        }
        Ok(Self {
            file,
            providers,
            bootstrap_servers,
            key_converter,
            value_converter,
            header_converter,
            offset_file,
            flush_interval,
            flush_timeout,
            shutdown_timeout,
            override_policy,
            status_interval,
            krb5_conf,
            metrics_listener,
            client_top,
            client_consumer,
            client_producer,
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::providers::SystemEnvironment;
    use super::*;

    fn load(text: &str) -> Result<WorkerConfig, ConfigFileError> {
        let file = PropertiesFile::parse(Path::new("worker.properties"), text.as_bytes())?;
        WorkerConfig::from_file(file, &SystemEnvironment)
    }

    #[test]
    fn the_ztf_worker_file_loads() {
        let w = load(include_str!("../../config/ztf-worker.properties")).unwrap();
        assert_eq!(w.bootstrap_servers, "public2.alerts.ztf.uw.edu:9094");
        assert_eq!(w.value_converter, Converter::ByteArray);
        assert_eq!(
            w.offset_file.as_deref(),
            Some(Path::new("/var/lib/ferry/connect.offsets"))
        );
        assert!(w.client_top.contains_key("sasl.jaas.config"));
        assert_eq!(w.client_consumer["auto.offset.reset"].value, "earliest");
        assert_eq!(
            w.client_consumer["sasl.mechanism"].written_as,
            "consumer.sasl.mechanism"
        );
        assert!(
            w.notes
                .iter()
                .any(|n| n.key == "plugin.path" && n.label() == "ignored")
        );
    }

    #[test]
    fn defaults_match_kafka_connect() {
        let w = load("bootstrap.servers=b:9092\nkey.converter=ByteArrayConverter\nvalue.converter=StringConverter\n").unwrap();
        assert_eq!(w.flush_interval, Duration::from_secs(60));
        assert_eq!(w.flush_timeout, Duration::from_secs(5));
        assert_eq!(w.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(w.override_policy, OverridePolicy::All);
        assert_eq!(w.value_converter, Converter::String);
        assert_eq!(w.offset_file, None);
    }

    #[test]
    fn structured_converters_and_their_settings_load() {
        let w = load("bootstrap.servers=b\nkey.converter=org.apache.kafka.connect.json.JsonConverter\nkey.converter.schemas.enable=false\nvalue.converter=ferry.converters.AvroContainerConverter\n").unwrap();
        assert_eq!(
            w.key_converter,
            Converter::Json(crate::convert::JsonSettings {
                schemas_enable: false,
                ..Default::default()
            })
        );
        assert_eq!(w.value_converter, Converter::AvroContainer);
        assert!(
            w.notes.iter().all(|n| !n.key.starts_with("key.converter")),
            "{:?}",
            w.notes
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let err = load("key.converter=ByteArrayConverter\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("worker.properties: missing required key `bootstrap.servers`"),
            "{err}"
        );
        let err = load("bootstrap.servers=b\noffset.flush.interval.ms=soon\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "worker.properties:2: offset.flush.interval.ms: `soon` is not a number of milliseconds"
        );
        let err = load(
            "bootstrap.servers=b\nvalue.converter=io.confluent.connect.protobuf.ProtobufConverter\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("worker.properties:2: value.converter: `io.confluent.connect.protobuf.ProtobufConverter` is not supported yet; ferry's converters: "), "{err}");
        let err = load(
            "bootstrap.servers=b\nvalue.converter=JsonConverter\nvalue.converter.schemas.enable=maybe\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "worker.properties:2: value.converter: JsonConverter schemas.enable `maybe` is not true or false"
        );
    }

    #[test]
    fn unknown_keys_are_noted_and_misspellings_are_errors() {
        let w = load(
            "bootstrap.servers=b\nproducer.acks=all\nmax.poll.records=5\nsome.other.tool.key=1\n",
        )
        .unwrap();
        assert_eq!(w.client_producer["acks"].written_as, "producer.acks");
        assert!(
            w.notes
                .iter()
                .any(|n| n.key == "max.poll.records" && n.label() == "ignored")
        );
        assert!(
            w.notes.iter().any(|n| n.key == "some.other.tool.key"
                && n.kind == NoteKind::Unknown { suggestion: None })
        );
        let err = |text: &str| load(text).unwrap_err().to_string();
        assert_eq!(
            err("bootstrap.servers=b\noffset.flush.intervl.ms=10\n"),
            "worker.properties:2: offset.flush.intervl.ms: unknown key; did you mean `offset.flush.interval.ms`? Correct or remove it"
        );
        assert_eq!(
            err("bootstrap.servers=b\noffset.storage.file.filname=/var/lib/ferry/offsets\n"),
            "worker.properties:2: offset.storage.file.filname: unknown key; did you mean `offset.storage.file.filename`? Correct or remove it"
        );
        assert_eq!(
            err("key.converter=ByteArrayConverter\nbootstrap.server=b:9092\n"),
            "worker.properties:2: bootstrap.server: unknown key; did you mean `bootstrap.servers`? Correct it: that key is required"
        );
        // Java client keys count as known: a misspelt one is caught too.
        assert!(
            err("bootstrap.servers=b\nsecurity.protocl=SSL\n")
                .contains("did you mean `security.protocol`?")
        );
        assert!(
            err("bootstrap.servers=b\nferry.status.intervl.ms=0\n")
                .contains("did you mean `ferry.status.interval.ms`?")
        );
    }

    /// Keys another tool may have put in a worker file: each must load as a known, ignored or
    /// unknown key, never as a misspelling of one of ferry's.
    fn is_misspelling_error(key: &str) -> Option<String> {
        match load(&format!("bootstrap.servers=b\n{key}=1\n")) {
            Err(e) if e.to_string().contains("unknown key") => Some(e.to_string()),
            _ => None,
        }
    }

    #[test]
    fn no_kafka_or_librdkafka_key_is_taken_for_a_misspelling() {
        let mut checked = 0;
        for key in FOREIGN_KEYS
            .iter()
            .flat_map(|l| l.lines())
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert_eq!(is_misspelling_error(key), None, "{key}");
            checked += 1;
        }
        assert!(checked > 350, "{checked}");
    }

    #[test]
    fn kafkas_and_ferrys_example_worker_files_load() {
        // Kafka's config/connect-standalone.properties and connect-distributed.properties.
        let kafka_standalone = "bootstrap.servers=localhost:9092\nkey.converter=org.apache.kafka.connect.json.JsonConverter\nvalue.converter=org.apache.kafka.connect.json.JsonConverter\nkey.converter.schemas.enable=true\nvalue.converter.schemas.enable=true\noffset.storage.file.filename=/tmp/connect.offsets\noffset.flush.interval.ms=10000\n";
        let kafka_distributed = "bootstrap.servers=localhost:9092\ngroup.id=connect-cluster\nkey.converter=org.apache.kafka.connect.json.JsonConverter\nvalue.converter=org.apache.kafka.connect.json.JsonConverter\nkey.converter.schemas.enable=true\nvalue.converter.schemas.enable=true\noffset.storage.topic=connect-offsets\noffset.storage.replication.factor=1\nconfig.storage.topic=connect-configs\nconfig.storage.replication.factor=1\nstatus.storage.topic=connect-status\nstatus.storage.replication.factor=1\noffset.flush.interval.ms=10000\n";
        for text in [
            kafka_standalone,
            kafka_distributed,
            include_str!("../../config/connect-standalone.properties"),
            include_str!("../../config/ztf-worker.properties"),
        ] {
            let w = load(text).unwrap();
            assert!(
                w.notes.iter().all(|n| n.label() != "unknown"),
                "{:?}",
                w.notes
            );
        }
    }

    #[test]
    fn paths_longer_than_the_system_allows_are_refused() {
        let err = load(&format!(
            "bootstrap.servers=b\noffset.storage.file.filename=/{}\n",
            "o".repeat(300_000)
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("worker.properties:2: offset.storage.file.filename: `/ooo"),
            "{err}"
        );
        assert!(
            err.ends_with("… (300001 bytes)` is longer than a path can be (4096 bytes)"),
            "{err}"
        );
    }

    #[test]
    fn bootstrap_servers_are_checked_before_librdkafka_sees_them() {
        let err = load(&format!("bootstrap.servers={}\n", "a".repeat(300)))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("worker.properties:1: bootstrap.servers: `aaaa")
                && err.contains("… (300 bytes)` has a 300-byte host name"),
            "{err}"
        );
        let err = load("bootstrap.servers=broker:90920\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "worker.properties:1: bootstrap.servers: `broker:90920` has port `90920`; a port is a number from 1 to 65535"
        );
    }
}
