//! Kafka client settings for a sink's consumer: the layering Kafka Connect applies and the
//! translation of Java client keys to librdkafka's.
//!
//! Layering, lowest first: the worker's top-level `bootstrap.servers` (and its security
//! block when the `consumer.` block has none — ferry's generosity, announced in an INFO
//! line), then `consumer.*`, then the connector's `consumer.override.*` as the worker's
//! `connector.client.config.override.policy` allows. Then every key goes through
//! [`rule`], one table for the whole translation. Keys the table does not know are passed
//! through for librdkafka to accept (its own keys, such as `queued.max.messages.kbytes`) or
//! reject by name when the client is built.

use std::collections::BTreeMap;

use super::notes::{Note, NoteKind};
use super::{ConfigFileError, validate};

mod special;
use special::special;

/// A value and where it was written.
#[derive(Clone, PartialEq, Eq)]
pub struct Sourced {
    pub value: String,
    /// `path:line`.
    pub location: String,
    /// The key as written in the file, prefix included (`consumer.sasl.mechanism`).
    pub written_as: String,
}

impl std::fmt::Debug for Sourced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.written_as, self.location)
    }
}

/// `connector.client.config.override.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverridePolicy {
    /// `None`: connectors may not override client settings.
    None,
    /// `Principal`: only `security.protocol`, `sasl.mechanism` and `sasl.jaas.config`.
    Principal,
    /// `All` (Kafka's default since 3.0).
    #[default]
    All,
}

impl OverridePolicy {
    pub fn parse(value: &str) -> Option<Self> {
        match value.rsplit('.').next().unwrap_or(value) {
            "None" | "NoneConnectorClientConfigOverridePolicy" => Some(Self::None),
            "Principal" | "PrincipalConnectorClientConfigOverridePolicy" => Some(Self::Principal),
            "All" | "AllConnectorClientConfigOverridePolicy" => Some(Self::All),
            _ => None,
        }
    }

    fn allows(self, key: &str) -> bool {
        match self {
            Self::None => false,
            Self::Principal => {
                matches!(
                    key,
                    "security.protocol" | "sasl.mechanism" | "sasl.jaas.config"
                )
            }
            Self::All => true,
        }
    }
}

/// The three layers, keys without their prefixes.
#[derive(Debug, Clone, Default)]
pub struct ClientLayers {
    pub top: BTreeMap<String, Sourced>,
    pub consumer: BTreeMap<String, Sourced>,
    pub overrides: BTreeMap<String, Sourced>,
    pub policy: OverridePolicy,
}

/// One librdkafka property.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientProp {
    pub value: String,
    /// Where it came from, for error lines: `path:line key`.
    pub source: String,
    /// Not in ferry's table: librdkafka decides whether it exists.
    pub passthrough: bool,
}

impl std::fmt::Debug for ClientProp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

impl ClientProp {
    /// A value derived from the setting `s`.
    fn new(s: &Sourced, value: String, passthrough: bool) -> Self {
        Self {
            value,
            source: format!("{} {}", s.location, s.written_as),
            passthrough,
        }
    }
}

impl From<&Sourced> for ClientProp {
    /// The value as written, translated by ferry's table (not a pass-through).
    fn from(s: &Sourced) -> Self {
        Self::new(s, s.value.clone(), false)
    }
}

/// The consumer's librdkafka settings and what was noted on the way.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    pub props: BTreeMap<String, ClientProp>,
    pub notes: Vec<Note>,
    /// The Kerberos JAAS entry says `debug=true`: ferry's keytab login turns on MIT's
    /// trace (`KRB5_TRACE`), as Java's login module prints its debug lines.
    pub kerberos_debug: bool,
}

impl ClientSettings {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(|p| p.value.as_str())
    }
}

/// Keys that only make sense together (security and authentication).
fn is_security_key(key: &str) -> bool {
    key == "security.protocol" || key.starts_with("sasl.") || key.starts_with("ssl.")
}

/// What to do with a Java client key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Same name and meaning in librdkafka.
    Same,
    /// Same meaning under another name.
    Rename(&'static str),
    /// Needs its value translated, or other keys (handled in [`consumer_settings`]).
    Special,
    /// ferry sets it for at-least-once delivery.
    Managed,
    /// Java client behaviour librdkafka does not have.
    JavaOnly,
}

/// Same name and meaning in librdkafka.
const SAME: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "group.instance.id",
    "client.id",
    "client.rack",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "group.remote.assignor",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "isolation.level",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "connections.max.idle.ms",
    "client.dns.lookup",
    "allow.auto.create.topics",
    "check.crcs",
    "socket.connection.setup.timeout.ms",
    "sasl.kerberos.service.name",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.oauthbearer.token.endpoint.url",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.cipher.suites",
];

/// Same meaning under librdkafka's name.
const RENAMED: &[(&str, &str)] = &[
    ("sasl.mechanism", "sasl.mechanisms"),
    ("metadata.max.age.ms", "topic.metadata.refresh.interval.ms"),
    ("receive.buffer.bytes", "socket.receive.buffer.bytes"),
    ("send.buffer.bytes", "socket.send.buffer.bytes"),
    ("request.timeout.ms", "socket.timeout.ms"),
    ("fetch.max.wait.ms", "fetch.wait.max.ms"),
    ("ssl.truststore.certificates", "ssl.ca.pem"),
    ("ssl.keystore.certificate.chain", "ssl.certificate.pem"),
    ("ssl.keystore.key", "ssl.key.pem"),
];

/// Translated by value, or together with other keys ([`consumer_settings`]).
const SPECIAL: &[&str] = &[
    "security.protocol",
    "auto.offset.reset",
    "partition.assignment.strategy",
    "group.protocol",
    "sasl.jaas.config",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.truststore.password",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.endpoint.identification.algorithm",
];

/// Set by ferry for at-least-once delivery.
const MANAGED: &[&str] = &[
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "key.deserializer",
    "value.deserializer",
];

/// Java client behaviour librdkafka does not have.
const JAVA_ONLY: &[&str] = &[
    "max.poll.records",
    "exclude.internal.topics",
    "interceptor.classes",
    "metric.reporters",
    "metrics.num.samples",
    "metrics.recording.level",
    "metrics.sample.window.ms",
    "auto.include.jmx.reporter",
    "enable.metrics.push",
    "default.api.timeout.ms",
    "internal.leave.group.on.close",
    "security.providers",
    "sasl.login.class",
    "sasl.login.callback.handler.class",
    "sasl.client.callback.handler.class",
    "sasl.login.refresh.window.factor",
    "sasl.login.refresh.window.jitter",
    "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.buffer.seconds",
    "sasl.login.connect.timeout.ms",
    "sasl.login.read.timeout.ms",
    "sasl.login.retry.backoff.ms",
    "sasl.login.retry.backoff.max.ms",
    "sasl.kerberos.ticket.renew.window.factor",
    "sasl.kerberos.ticket.renew.jitter",
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.engine.factory.class",
    "ssl.provider",
];

/// The translation table: Java consumer / common client key → librdkafka.
pub fn rule(key: &str) -> Option<Rule> {
    if SAME.contains(&key) {
        Some(Rule::Same)
    } else if let Some((_, to)) = RENAMED.iter().find(|(k, _)| *k == key) {
        Some(Rule::Rename(to))
    } else if SPECIAL.contains(&key) {
        Some(Rule::Special)
    } else if MANAGED.contains(&key) {
        Some(Rule::Managed)
    } else if JAVA_ONLY.contains(&key) {
        Some(Rule::JavaOnly)
    } else {
        None
    }
}

/// Every Java client key the table knows.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    SAME.iter()
        .chain(RENAMED.iter().map(|(k, _)| k))
        .chain(SPECIAL)
        .chain(MANAGED)
        .chain(JAVA_ONLY)
        .copied()
}

/// The merged, prefix-free view before translation.
fn merge(
    layers: &ClientLayers,
    notes: &mut Vec<Note>,
) -> Result<BTreeMap<String, Sourced>, ConfigFileError> {
    let mut merged = BTreeMap::new();
    if let Some(b) = layers.top.get("bootstrap.servers") {
        merged.insert("bootstrap.servers".to_string(), b.clone());
    }
    let consumer_has_security = layers.consumer.keys().any(|k| is_security_key(k));
    if !consumer_has_security {
        for (k, v) in layers.top.iter().filter(|(k, _)| is_security_key(k)) {
            notes.push(Note::new(&v.location, &v.written_as, NoteKind::Inherited));
            merged.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in &layers.consumer {
        merged.insert(k.clone(), v.clone());
    }
    for (k, v) in &layers.overrides {
        if !layers.policy.allows(k) {
            return Err(ConfigFileError::Key {
                location: v.location.clone(),
                key: v.written_as.clone(),
                reason: format!(
                    "the worker's connector.client.config.override.policy ({:?}) does not allow overriding `{k}`; remove the key or set the policy to All",
                    layers.policy
                ),
            });
        }
        merged.insert(k.clone(), v.clone());
    }
    Ok(merged)
}

fn key_error(s: &Sourced, reason: impl Into<String>) -> ConfigFileError {
    ConfigFileError::Key {
        location: s.location.clone(),
        key: s.written_as.clone(),
        reason: reason.into(),
    }
}

/// Builds the consumer's librdkafka settings from the three layers.
pub fn consumer_settings(layers: &ClientLayers) -> Result<ClientSettings, ConfigFileError> {
    let mut out = ClientSettings::default();
    let merged = merge(layers, &mut out.notes)?;
    translate(&merged, ClientKind::Consumer, out)
}

/// Builds a producer's librdkafka settings: the worker's `bootstrap.servers` (and its
/// security block when `producer.*` has none), the worker's `producer.*` (in
/// `layers.consumer`), the connector's `producer.override.*` (in `layers.overrides`, as the
/// override policy allows), then `extra` — settings a connector or the runtime asks for
/// (a dead-letter queue's, a reply topic's), not subject to the policy.
///
/// When the upper layers (`producer.override.*`, `extra`) point `bootstrap.servers` at
/// another cluster, the security settings of the layers below are not carried over: that
/// cluster gets the security block the upper layers write (none: PLAINTEXT), never the
/// source cluster's credentials.
pub fn producer_settings(
    layers: &ClientLayers,
    extra: &BTreeMap<String, Sourced>,
) -> Result<ClientSettings, ConfigFileError> {
    let mut out = ClientSettings::default();
    let below = ClientLayers {
        overrides: BTreeMap::new(),
        ..layers.clone()
    };
    let mut merged = merge(&below, &mut out.notes)?;
    let mut upper = merge(
        &ClientLayers {
            overrides: layers.overrides.clone(),
            policy: layers.policy,
            ..Default::default()
        },
        &mut Vec::new(),
    )?;
    upper.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    let other_cluster = upper.get("bootstrap.servers").is_some_and(|b| {
        merged
            .get("bootstrap.servers")
            .is_none_or(|below| below.value.trim() != b.value.trim())
    });
    if other_cluster {
        merged.retain(|k, _| !is_security_key(k));
        out.notes.retain(|n| n.kind != NoteKind::Inherited);
    }
    merged.extend(upper);
    translate(&merged, ClientKind::Producer, out)
}

/// Which client settings are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientKind {
    Consumer,
    Producer,
}

/// Consumer settings that mean nothing to a producer.
const CONSUMER_ONLY: &[&str] = &[
    "group.id",
    "group.instance.id",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "group.protocol",
    "group.remote.assignor",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.wait.ms",
    "isolation.level",
    "check.crcs",
    "auto.offset.reset",
    "partition.assignment.strategy",
    "allow.auto.create.topics",
    "max.poll.records",
    "exclude.internal.topics",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "key.deserializer",
    "value.deserializer",
];

/// Java producer keys ferry sets itself (records are bytes already).
const PRODUCER_MANAGED: &[&str] = &["key.serializer", "value.serializer"];

/// Java producer behaviour librdkafka does not have.
const PRODUCER_JAVA_ONLY: &[&str] = &[
    "buffer.memory",
    "max.block.ms",
    "partitioner.class",
    "partitioner.adaptive.partitioning.enable",
    "partitioner.availability.timeout.ms",
    "partitioner.ignore.keys",
    "metadata.max.idle.ms",
    "transactional.id",
    "transaction.timeout.ms",
];

/// Same meaning under librdkafka's name, for producers.
const PRODUCER_RENAMED: &[(&str, &str)] = &[("max.request.size", "message.max.bytes")];

/// The merged layers translated key by key through [`rule`] (and the producer's additions).
fn translate(
    merged: &BTreeMap<String, Sourced>,
    kind: ClientKind,
    mut out: ClientSettings,
) -> Result<ClientSettings, ConfigFileError> {
    let mut merged = merged.clone();
    for (key, s) in &merged {
        validate::client_value(key, &s.value).map_err(|reason| key_error(s, reason))?;
    }
    if kind == ClientKind::Producer {
        merged.retain(|key, s| {
            let note = if CONSUMER_ONLY.contains(&key.as_str()) {
                NoteKind::Ignored {
                    reason: "a consumer setting; producers do not use it".into(),
                }
            } else if PRODUCER_MANAGED.contains(&key.as_str()) {
                NoteKind::Managed
            } else if PRODUCER_JAVA_ONLY.contains(&key.as_str()) {
                NoteKind::JavaOnly
            } else {
                return true;
            };
            out.notes.push(Note::new(&s.location, &s.written_as, note));
            false
        });
    }
    let set = |out: &mut ClientSettings, key: &str, value: String, s: &Sourced, passthrough| {
        out.props
            .insert(key.to_string(), ClientProp::new(s, value, passthrough));
    };
    for (key, s) in &merged {
        let producer_rename = PRODUCER_RENAMED
            .iter()
            .find(|(k, _)| kind == ClientKind::Producer && k == key)
            .map(|(_, to)| Rule::Rename(to));
        match producer_rename.or_else(|| rule(key)) {
            Some(Rule::Same) => set(&mut out, key, s.value.clone(), s, false),
            Some(Rule::Rename(to)) => {
                // `sasl.mechanism` → `sasl.mechanisms` is a spelling, not worth a note.
                if key != "sasl.mechanism" {
                    out.notes.push(Note::new(
                        &s.location,
                        &s.written_as,
                        NoteKind::Translated { to: to.to_string() },
                    ));
                }
                set(&mut out, to, s.value.clone(), s, false)
            }
            Some(Rule::Managed) => {
                out.notes
                    .push(Note::new(&s.location, &s.written_as, NoteKind::Managed))
            }
            Some(Rule::JavaOnly) => {
                out.notes
                    .push(Note::new(&s.location, &s.written_as, NoteKind::JavaOnly))
            }
            Some(Rule::Special) => {}
            None => set(&mut out, key, s.value.clone(), s, true),
        }
    }
    special(&merged, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(prefix: &str, pairs: &[(&str, &str)]) -> BTreeMap<String, Sourced> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                (
                    k.to_string(),
                    Sourced {
                        value: v.to_string(),
                        location: format!("w.properties:{}", i + 1),
                        written_as: format!("{prefix}{k}"),
                    },
                )
            })
            .collect()
    }

    const KRB5: &str = "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKeyTab=true serviceName=\"kafka\" keyTab=\"/home/ztf/pitt-reader.user.keytab\" principal=\"pitt-reader@KAFKA.SECURE\" useTicketCache=false;";

    #[test]
    fn producer_layers_and_another_cluster_with_its_own_security() {
        let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"rubin\" password=\"pw\";";
        let top = layer(
            "",
            &[
                ("bootstrap.servers", "src:9092"),
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.jaas.config", scram),
            ],
        );
        let producer = layer(
            "producer.",
            &[("acks", "1"), ("group.id", "g"), ("buffer.memory", "1")],
        );
        // Same cluster: the worker's security block is inherited, producer.* applies,
        // consumer-only and Java-only keys are noted, not set.
        let s = producer_settings(
            &ClientLayers {
                top: top.clone(),
                consumer: producer.clone(),
                ..Default::default()
            },
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(s.get("bootstrap.servers"), Some("src:9092"));
        assert_eq!(s.get("sasl.username"), Some("rubin"));
        assert_eq!(s.get("acks"), Some("1"));
        assert_eq!(s.get("group.id"), None);
        assert_eq!(s.get("buffer.memory"), None);
        assert!(
            s.notes
                .iter()
                .any(|n| n.key == "producer.group.id" && n.label() == "ignored")
        );
        assert!(
            s.notes
                .iter()
                .any(|n| n.key == "producer.buffer.memory" && n.kind == NoteKind::JavaOnly)
        );
        // producer.override.bootstrap.servers: another cluster, with only its own security.
        let s = producer_settings(
            &ClientLayers {
                top: top.clone(),
                consumer: producer.clone(),
                overrides: layer("producer.override.", &[("bootstrap.servers", "dlq:9092")]),
                policy: OverridePolicy::All,
            },
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(s.get("bootstrap.servers"), Some("dlq:9092"));
        assert_eq!(s.get("security.protocol"), None);
        assert_eq!(
            s.get("sasl.username"),
            None,
            "the source's credentials stay with it"
        );
        assert_eq!(s.get("acks"), Some("1"));
        let s = producer_settings(
            &ClientLayers {
                top,
                consumer: producer,
                overrides: layer(
                    "producer.override.",
                    &[
                        ("bootstrap.servers", "dlq:9092"),
                        ("security.protocol", "SASL_PLAINTEXT"),
                        ("sasl.mechanism", "PLAIN"),
                        (
                            "sasl.jaas.config",
                            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"dlq\" password=\"x\";",
                        ),
                    ],
                ),
                policy: OverridePolicy::Principal,
            },
            &BTreeMap::new(),
        );
        // The policy applies to producer.override.* as to consumer.override.*.
        assert!(
            s.unwrap_err()
                .to_string()
                .contains("does not allow overriding `bootstrap.servers`")
        );
        // A caller's overrides come last and are not subject to the policy.
        let s = producer_settings(
            &ClientLayers {
                top: layer("", &[("bootstrap.servers", "src:9092")]),
                policy: OverridePolicy::None,
                ..Default::default()
            },
            &layer(
                "reporter.",
                &[("bootstrap.servers", "other:9092"), ("acks", "0")],
            ),
        )
        .unwrap();
        assert_eq!(s.get("bootstrap.servers"), Some("other:9092"));
        assert_eq!(s.get("acks"), Some("0"));
    }

    #[test]
    fn ztf_worker_kerberos_block_translates() {
        let security = [
            ("sasl.mechanism", "GSSAPI"),
            ("sasl.kerberos.service.name", "kafka"),
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.jaas.config", KRB5),
        ];
        let mut top = security.to_vec();
        top.push(("bootstrap.servers", "public2.alerts.ztf.uw.edu:9094"));
        let mut consumer = security.to_vec();
        consumer.push(("auto.offset.reset", "earliest"));
        let s = consumer_settings(&ClientLayers {
            top: layer("", &top),
            consumer: layer("consumer.", &consumer),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            s.get("bootstrap.servers"),
            Some("public2.alerts.ztf.uw.edu:9094")
        );
        assert_eq!(s.get("security.protocol"), Some("SASL_PLAINTEXT"));
        assert_eq!(s.get("sasl.mechanisms"), Some("GSSAPI"));
        assert_eq!(s.get("sasl.kerberos.service.name"), Some("kafka"));
        assert_eq!(
            s.get("sasl.kerberos.principal"),
            Some("pitt-reader@KAFKA.SECURE")
        );
        assert_eq!(
            s.get("sasl.kerberos.keytab"),
            Some("/home/ztf/pitt-reader.user.keytab")
        );
        assert_eq!(s.get("auto.offset.reset"), Some("earliest"));
        assert!(
            s.get("sasl.jaas.config").is_none(),
            "librdkafka has no JAAS key"
        );
        // The consumer block had its own security keys: nothing inherited.
        assert!(!s.notes.iter().any(|n| n.kind == NoteKind::Inherited));
        assert!(s.notes.iter().any(|n| n.key == "consumer.sasl.jaas.config"
            && n.kind
                == NoteKind::Translated {
                    to: "sasl.kerberos.principal, sasl.kerberos.keytab".into()
                }));
    }

    #[test]
    fn top_level_security_is_inherited_when_the_consumer_block_has_none() {
        let s = consumer_settings(&ClientLayers {
            top: layer("", &[("bootstrap.servers", "b:9092"), ("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-512"), ("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"rubin\" password=\"pw\";")]),
            consumer: layer("consumer.", &[("group.id", "pittgoogle-rubin")]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(s.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(s.get("sasl.username"), Some("rubin"));
        assert_eq!(s.get("sasl.password"), Some("pw"));
        assert_eq!(s.get("group.id"), Some("pittgoogle-rubin"));
        assert_eq!(
            s.notes
                .iter()
                .filter(|n| n.kind == NoteKind::Inherited)
                .count(),
            3
        );
    }

    #[test]
    fn other_top_level_client_keys_do_not_reach_consumers() {
        // As in Kafka Connect: a top-level key configures the worker's own clients.
        let s = consumer_settings(&ClientLayers {
            top: layer(
                "",
                &[
                    ("bootstrap.servers", "b:9092"),
                    ("auto.offset.reset", "latest"),
                ],
            ),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.get("auto.offset.reset"), None);
    }

    #[test]
    fn values_librdkafka_would_choke_on_are_refused_by_key() {
        let big = "c".repeat(40_000);
        let layers = |consumer: &[(&str, &str)], overrides: &[(&str, &str)]| ClientLayers {
            top: layer("", &[("bootstrap.servers", "b:9092")]),
            consumer: layer("consumer.", consumer),
            overrides: layer("consumer.override.", overrides),
            policy: OverridePolicy::All,
        };
        let err = consumer_settings(&layers(&[("client.id", &big)], &[]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "w.properties:1: consumer.client.id: the value is 40000 bytes; Kafka sends client.id as a protocol string of at most 32767 bytes"
        );
        let err = consumer_settings(&layers(&[], &[("group.instance.id", &big)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "w.properties:1: consumer.override.group.instance.id: the value is 40000 bytes"
            ),
            "{err}"
        );
        // Layers can replace the worker's brokers: checked there too.
        let err = consumer_settings(&layers(&[("bootstrap.servers", "b:0")], &[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("w.properties:1: consumer.bootstrap.servers: `b:0` has port"),
            "{err}"
        );
        // Any other value is bounded, PEM text less tightly.
        let huge = "u".repeat(100_000);
        assert!(consumer_settings(&layers(&[("sasl.username", &huge)], &[])).is_err());
        assert!(consumer_settings(&layers(&[("ssl.ca.pem", &huge)], &[])).is_ok());
    }

    #[test]
    fn overrides_win_and_obey_the_policy() {
        let layers = ClientLayers {
            top: layer("", &[("bootstrap.servers", "b:9092")]),
            consumer: layer(
                "consumer.",
                &[("fetch.max.wait.ms", "500"), ("max.poll.records", "10")],
            ),
            overrides: layer(
                "consumer.override.",
                &[
                    ("fetch.max.wait.ms", "100"),
                    ("queued.max.messages.kbytes", "2048"),
                ],
            ),
            policy: OverridePolicy::All,
        };
        let s = consumer_settings(&layers).unwrap();
        assert_eq!(s.get("fetch.wait.max.ms"), Some("100"));
        assert!(s.props["queued.max.messages.kbytes"].passthrough);
        assert!(
            s.notes
                .iter()
                .any(|n| n.key == "consumer.max.poll.records" && n.kind == NoteKind::JavaOnly)
        );
        let err = consumer_settings(&ClientLayers {
            policy: OverridePolicy::None,
            ..layers.clone()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("consumer.override.fetch.max.wait.ms"),
            "{err}"
        );
        let err = consumer_settings(&ClientLayers {
            policy: OverridePolicy::Principal,
            ..layers
        })
        .unwrap_err();
        assert!(err.to_string().contains("does not allow"), "{err}");
    }

    #[test]
    fn the_consumer_group_protocol_leaves_the_session_to_the_broker() {
        let settings = |consumer: &[(&str, &str)]| {
            consumer_settings(&ClientLayers {
                consumer: layer("consumer.", consumer),
                ..Default::default()
            })
        };
        let s = settings(&[
            ("group.protocol", "CONSUMER"),
            ("group.remote.assignor", "uniform"),
        ])
        .unwrap();
        assert_eq!(s.get("group.protocol"), Some("consumer"));
        assert_eq!(s.get("group.remote.assignor"), Some("uniform"));
        // Java's consumer and librdkafka refuse the classic protocol's timing keys with it.
        let err = settings(&[
            ("group.protocol", "consumer"),
            ("session.timeout.ms", "6000"),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "w.properties:2: consumer.session.timeout.ms: not used with consumer.group.protocol=consumer (w.properties:1): the broker's group.consumer.session.timeout.ms sets it; remove the key, or set group.protocol=classic"
        );
        let err = settings(&[
            ("partition.assignment.strategy", "range"),
            ("group.protocol", "consumer"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "w.properties:1: consumer.partition.assignment.strategy: not used with"
            ),
            "{err}"
        );
        assert!(
            settings(&[
                ("group.protocol", "classic"),
                ("session.timeout.ms", "6000")
            ])
            .is_ok()
        );
        let err = settings(&[("group.protocol", "kip848")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "w.properties:1: consumer.group.protocol: `kip848` is not classic or consumer"
        );
    }

    #[test]
    fn value_translations() {
        let s = consumer_settings(&ClientLayers {
            consumer: layer(
                "consumer.",
                &[
                    ("auto.offset.reset", "none"),
                    (
                        "partition.assignment.strategy",
                        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
                    ),
                    ("ssl.endpoint.identification.algorithm", ""),
                    ("metadata.max.age.ms", "1000"),
                    ("enable.auto.commit", "true"),
                ],
            ),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.get("auto.offset.reset"), Some("error"));
        assert_eq!(
            s.get("partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
        assert_eq!(s.get("ssl.endpoint.identification.algorithm"), Some("none"));
        assert_eq!(s.get("topic.metadata.refresh.interval.ms"), Some("1000"));
        assert_eq!(s.get("enable.auto.commit"), None);
        assert!(s.notes.iter().any(|n| n.kind == NoteKind::Managed));
    }

    #[test]
    fn plain_and_oauth_modules() {
        let s = consumer_settings(&ClientLayers {
            consumer: layer("consumer.", &[("sasl.mechanism", "PLAIN"), ("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p\";")]),
            ..Default::default()
        }).unwrap();
        assert_eq!(
            (s.get("sasl.username"), s.get("sasl.password")),
            (Some("u"), Some("p"))
        );
        let s = consumer_settings(&ClientLayers {
            consumer: layer("consumer.", &[
                ("sasl.mechanism", "OAUTHBEARER"),
                ("sasl.oauthbearer.token.endpoint.url", "https://auth.gcn.nasa.gov/oauth2/token"),
                ("sasl.login.callback.handler.class", "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler"),
                ("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"cid\" clientSecret=\"csec\";"),
            ]),
            ..Default::default()
        }).unwrap();
        assert_eq!(s.get("sasl.oauthbearer.method"), Some("oidc"));
        assert_eq!(s.get("sasl.oauthbearer.client.id"), Some("cid"));
        assert_eq!(s.get("sasl.oauthbearer.client.secret"), Some("csec"));
        assert_eq!(
            s.get("sasl.oauthbearer.token.endpoint.url"),
            Some("https://auth.gcn.nasa.gov/oauth2/token")
        );
    }

    #[test]
    fn scram_pkcs12_and_pem_stores_translate() {
        let s = consumer_settings(&ClientLayers {
            consumer: layer("consumer.", &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"p\";"),
                ("ssl.keystore.location", "/etc/client.p12"),
                ("ssl.keystore.type", "PKCS12"),
                ("ssl.keystore.password", "kspw"),
                ("ssl.truststore.certificates", "-----BEGIN CERTIFICATE-----"),
            ]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.get("sasl.mechanisms"), Some("SCRAM-SHA-256"));
        assert_eq!(
            (s.get("sasl.username"), s.get("sasl.password")),
            (Some("u"), Some("p"))
        );
        assert_eq!(s.get("ssl.keystore.location"), Some("/etc/client.p12"));
        assert_eq!(s.get("ssl.keystore.password"), Some("kspw"));
        assert_eq!(s.get("ssl.ca.pem"), Some("-----BEGIN CERTIFICATE-----"));
        let s = consumer_settings(&ClientLayers {
            consumer: layer(
                "consumer.",
                &[
                    ("ssl.keystore.certificate.chain", "CERT"),
                    ("ssl.keystore.key", "KEY"),
                ],
            ),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (s.get("ssl.certificate.pem"), s.get("ssl.key.pem")),
            (Some("CERT"), Some("KEY"))
        );
    }

    #[test]
    fn oauth_unsecured_jwt_and_a_missing_token_endpoint() {
        let s = consumer_settings(&ClientLayers {
            consumer: layer("consumer.", &[
                ("sasl.mechanism", "OAUTHBEARER"),
                ("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"alice\";"),
            ]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.get("enable.sasl.oauthbearer.unsecure.jwt"), Some("true"));
        assert_eq!(s.get("sasl.oauthbearer.config"), Some("principal=alice"));
        let e = consumer_settings(&ClientLayers {
            consumer: layer("consumer.", &[
                ("sasl.mechanism", "OAUTHBEARER"),
                ("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"c\" clientSecret=\"s3cret\";"),
            ]),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("sasl.oauthbearer.token.endpoint.url"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn jaas_errors_name_key_and_fix_without_values() {
        let bad = |mechanism: &str, jaas: &str| {
            consumer_settings(&ClientLayers {
                consumer: layer(
                    "consumer.",
                    &[("sasl.mechanism", mechanism), ("sasl.jaas.config", jaas)],
                ),
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
        };
        let e = bad("PLAIN", KRB5);
        assert!(
            e.contains("consumer.sasl.jaas.config") && e.contains("set sasl.mechanism to GSSAPI"),
            "{e}"
        );
        let e = bad(
            "GSSAPI",
            "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true principal=\"p@R\";",
        );
        assert!(e.contains("needs the option keyTab"), "{e}");
        let e = bad(
            "PLAIN",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\";",
        );
        assert!(e.contains("needs the option password"), "{e}");
        let e = bad(
            "PLAIN",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"hunter2",
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn java_keystores_get_a_conversion_hint() {
        let e = consumer_settings(&ClientLayers {
            consumer: layer(
                "consumer.",
                &[("ssl.truststore.location", "/etc/kafka/truststore.jks")],
            ),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("keytool -exportcert"), "{e}");
        let s = consumer_settings(&ClientLayers {
            consumer: layer(
                "consumer.",
                &[
                    ("ssl.truststore.location", "/etc/ca.pem"),
                    ("ssl.truststore.type", "PEM"),
                ],
            ),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.get("ssl.ca.location"), Some("/etc/ca.pem"));
    }
}
