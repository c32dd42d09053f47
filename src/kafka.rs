//! librdkafka clients from [`ClientSettings`]: ferry's consumer defaults, validation of
//! pass-through keys, log forwarding, and the start-up reachability probe.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;

use crate::config::client::ClientSettings;
use crate::config::notes::{Note, NoteKind};
use crate::config::secret::is_secret_key;

/// A consumer setting librdkafka refused.
#[derive(Debug, thiserror::Error)]
#[error("{source_line}: {reason}")]
pub struct ClientConfigError {
    /// `path:line key` of the setting.
    pub source_line: String,
    pub reason: String,
}

/// The settings ferry chooses for every sink consumer unless the files set them.
///
/// Memory: librdkafka prefetches up to `queued.max.messages.kbytes` (64 MB by default),
/// and a fetch response can reach `fetch.max.bytes` (50 MB); ferry bounds both per
/// connector (one consumer each, whatever `tasks.max`) at [`PREFETCH_BUDGET_KB`], or at
/// the connector's `read_ahead` when it asks for one (at least 1 MiB).
pub fn ferry_defaults(
    connector: &str,
    read_ahead: Option<usize>,
    status_interval: Duration,
) -> Vec<(&'static str, String)> {
    let prefetch_kb = read_ahead.map_or(PREFETCH_BUDGET_KB, |b| (b / 1024).max(1024));
    let mut d = vec![
        ("client.id", format!("connector-consumer-{connector}")),
        // Kafka Connect's sink default (a plain Java consumer's is `latest`).
        ("auto.offset.reset", "earliest".to_string()),
        ("queued.max.messages.kbytes", prefetch_kb.to_string()),
        ("fetch.max.bytes", (prefetch_kb * 1024).to_string()),
        // With a bounded prefetch queue, librdkafka's default 1 s pause after the queue
        // fills stalls the tail of every burst (measured: 1–1.5 s gaps in benches/pipeline);
        // its documentation recommends lowering it with low queue thresholds.
        ("fetch.queue.backoff.ms", "20".to_string()),
        // librdkafka keeps one fetch in flight per broker. When it holds only partitions at
        // their end, the broker parks it for up to this long while the other partitions'
        // data waits behind it (measured: 500 ms stalls at librdkafka's default).
        ("fetch.wait.max.ms", "100".to_string()),
        // Idle connection closes by the broker are normal; do not log each one.
        ("log.connection.close", "false".to_string()),
    ];
    if !status_interval.is_zero() {
        d.push((
            "statistics.interval.ms",
            status_interval.as_millis().to_string(),
        ));
    }
    d
}

/// Prefetch budget of a connector's consumer.
pub const PREFETCH_BUDGET_KB: usize = 16 * 1024;

/// Settings ferry always sets: it stores and commits offsets itself, after delivery.
pub const MANAGED: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("enable.partition.eof", "false"),
];

/// Builds the librdkafka configuration: the files' settings, ferry's defaults where the
/// files are silent, and the managed settings. A pass-through key librdkafka does not know
/// is dropped with a note (Kafka Connect likewise ignores unknown consumer keys); a value
/// librdkafka rejects is an error naming the file and key — without the value when it is a
/// secret.
pub fn client_config(
    settings: &ClientSettings,
    defaults: &[(&'static str, String)],
) -> Result<(ClientConfig, Vec<Note>), ClientConfigError> {
    build_config(settings, defaults, MANAGED)
}

/// The settings ferry chooses for every producer unless the files set them: Kafka's own
/// producer defaults since 3.0 (`acks=all`, idempotence), so that an acknowledged record is
/// on every in-sync replica, once and in order.
pub fn producer_defaults(client_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client.id", client_id.to_string()),
        ("acks", "all".to_string()),
        ("enable.idempotence", "true".to_string()),
        ("log.connection.close", "false".to_string()),
    ]
}

/// A producer's librdkafka configuration: as [`client_config`], without the consumer's
/// managed settings.
pub fn producer_config(
    settings: &ClientSettings,
    defaults: &[(&'static str, String)],
) -> Result<(ClientConfig, Vec<Note>), ClientConfigError> {
    build_config(settings, defaults, &[])
}

fn build_config(
    settings: &ClientSettings,
    defaults: &[(&'static str, String)],
    managed: &[(&str, &str)],
) -> Result<(ClientConfig, Vec<Note>), ClientConfigError> {
    let mut config = ClientConfig::new();
    let mut notes = Vec::new();
    for (key, prop) in &settings.props {
        let mut probe = ClientConfig::new();
        probe.set(key, &prop.value);
        match probe.create_native_config() {
            Ok(_) => {
                config.set(key, &prop.value);
            }
            Err(KafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, ..))
                if prop.passthrough =>
            {
                let (location, written) =
                    prop.source.split_once(' ').unwrap_or((&prop.source, key));
                notes.push(Note::new(
                    location,
                    written,
                    NoteKind::Unknown { suggestion: None },
                ));
            }
            Err(KafkaError::ClientConfig(_, description, ..)) => {
                return Err(ClientConfigError {
                    source_line: prop.source.clone(),
                    reason: rejection(key, &prop.value, &description),
                });
            }
            Err(other) => {
                return Err(ClientConfigError {
                    source_line: prop.source.clone(),
                    reason: other.to_string(),
                });
            }
        }
    }
    for (key, value) in defaults {
        if !settings.props.contains_key(*key) {
            config.set(*key, value);
        }
    }
    for (key, value) in managed {
        config.set(*key, *value);
    }
    Ok((config, notes))
}

/// A connector's consumer client configuration, built once when the connector is accepted
/// (after its Kerberos login is planned) and shared by every client ferry opens for it: the
/// consumer, the start-up probe, the offsets API's group client and `--exit-at-end`'s
/// metadata client. Before there was one, each built its own and the copies differed
/// (statistics on in one, the read-ahead budget missing in another).
#[derive(Clone)]
pub struct ConsumerClient {
    config: ClientConfig,
    /// Pass-through keys librdkafka does not know (dropped, noted).
    pub notes: Vec<Note>,
}

impl std::fmt::Debug for ConsumerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds secrets (SASL passwords); only its size is shown.
        f.debug_struct("ConsumerClient")
            .field("settings", &self.config.config_map().len())
            .finish_non_exhaustive()
    }
}

impl ConsumerClient {
    /// The consumer of `connector`, with the worker's status interval as its statistics
    /// interval (the lag gauges and the status line come from the statistics).
    pub fn build(
        connector: &crate::config::ConnectorConfig,
        worker: &crate::config::WorkerConfig,
    ) -> Result<Self, ClientConfigError> {
        Self::from_settings(
            &connector.name,
            &connector.consumer,
            connector.connector.read_ahead_bytes(),
            worker.status_interval,
        )
    }

    /// The same from client settings alone (`ferry check` without connector files).
    pub fn from_settings(
        name: &str,
        settings: &ClientSettings,
        read_ahead: Option<usize>,
        status_interval: Duration,
    ) -> Result<Self, ClientConfigError> {
        let defaults = ferry_defaults(name, read_ahead, status_interval);
        let (config, notes) = client_config(settings, &defaults)?;
        Ok(Self { config, notes })
    }

    /// Sets `key` unless the files did.
    pub fn set_default(&mut self, key: &str, value: &str) {
        if self.config.get(key).is_none() {
            self.config.set(key, value);
        }
    }

    /// The consumer's own configuration.
    pub fn consumer(&self) -> &ClientConfig {
        &self.config
    }

    /// A short-lived side client to the same cluster with the same login (offsets API,
    /// metadata): its own `client.id` (`ferry-<purpose>-<connector>`), no statistics, no
    /// `group.instance.id` and, unless `group` says so, no group.
    pub fn side(&self, purpose: &str, connector: &str, group: bool) -> ClientConfig {
        let mut config = self.config.clone();
        config.remove("statistics.interval.ms");
        if !group {
            config.remove("group.id");
        }
        // A side client never joins the group: as a static member it would fence the
        // connector's consumer (or be fenced).
        config.remove("group.instance.id");
        config.set("client.id", format!("ferry-{purpose}-{connector}"));
        config
    }
}

/// Why librdkafka refused a value, without the value when it is a secret.
fn rejection(key: &str, value: &str, description: &str) -> String {
    if is_secret_key(key) {
        format!("librdkafka rejects the value of {key} (not shown: it is a secret)")
    } else {
        format!(
            "librdkafka rejects `{}` for {key}: {description}",
            ferry_connector_api::text::shown(value)
        )
    }
}

/// Forwards librdkafka's log lines to `tracing` under the target `librdkafka`.
pub fn forward_log(level: RDKafkaLogLevel, facility: &str, message: &str, client: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", client, facility, "{message}")
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "librdkafka", client, facility, "{message}")
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", client, facility, "{message}")
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "librdkafka", client, facility, "{message}")
        }
    }
}

/// Lets the same message through at most once per period (librdkafka repeats connection
/// errors every retry).
#[derive(Debug, Default)]
pub struct RateLimiter {
    seen: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    pub fn allow(&self, message: &str, period: Duration) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match seen.get(message) {
            Some(t) if now.duration_since(*t) < period => false,
            _ => {
                if seen.len() > 1000 {
                    seen.clear();
                }
                seen.insert(message.to_string(), now);
                true
            }
        }
    }
}

/// Context of the start-up probe: remembers the last error librdkafka reported, which
/// says *why* brokers are unreachable (refused, DNS, authentication).
#[derive(Debug, Default)]
pub struct ProbeContext {
    errors: Mutex<Vec<String>>,
}

impl ProbeContext {
    fn record(&self, message: String) {
        // "[thrd:…]: 127.0.0.1:1/bootstrap: Connect to … failed: Connection refused (after 0ms
        // in state CONNECT, 1 identical error(s) suppressed)" → the part that explains.
        let message = match message.strip_prefix("[thrd:") {
            Some(rest) => rest.split_once("]: ").map_or(rest, |(_, m)| m).to_string(),
            None => message,
        };
        let message = message
            .split(" (after ")
            .next()
            .unwrap_or_default()
            .to_string();
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if !errors.contains(&message) && errors.len() < 16 {
            errors.push(message);
        }
    }

    /// The first authentication failure, if any: retrying will not change it.
    fn auth_failure(&self) -> Option<String> {
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        let first = errors.iter().find(|e| is_auth_failure(e))?;
        let hint = if first.contains("not found in Kerberos database") && first.contains("Server ")
        {
            "; the brokers' service principal is <sasl.kerberos.service.name>/<broker host>: check sasl.kerberos.service.name and the JAAS serviceName"
        } else {
            ""
        };
        Some(format!("{first}{hint}"))
    }

    /// The most telling errors: the specific ones (refused, resolve, authentication) before
    /// librdkafka's summary that all brokers are down.
    fn explanation(&self) -> Option<String> {
        if let Some(auth) = self.auth_failure() {
            return Some(auth);
        }
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        let (summary, specific): (Vec<&String>, Vec<&String>) =
            errors.iter().partition(|e| e.contains("brokers are down"));
        let chosen: Vec<&str> = specific
            .iter()
            .chain(summary.iter())
            .take(2)
            .map(|s| s.as_str())
            .collect();
        let hint = if chosen.iter().any(|e| e.contains("Disconnected")) {
            "; the broker closes the connection after it opens: if its listener requires SASL or SSL, set security.protocol (and sasl.mechanism) to match it"
        } else {
            ""
        };
        (!chosen.is_empty()).then(|| format!("{}{hint}", chosen.join("; ")))
    }
}

impl ClientContext for ProbeContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        ) || message.contains("Disconnected")
        {
            self.record(message.to_string());
        }
        forward_log(RDKafkaLogLevel::Debug, facility, message, "probe");
    }

    fn error(&self, _error: KafkaError, reason: &str) {
        self.record(reason.to_string());
    }
}

impl ConsumerContext for ProbeContext {}

/// A client for metadata only, outside the connector's group (so it never joins or
/// talks to the group coordinator); what librdkafka reports goes to DEBUG, as the
/// connector's own consumer reports the same brokers' trouble.
pub type MetadataClient = BaseConsumer<ProbeContext>;

pub fn metadata_client(client: &ConsumerClient, name: &str) -> Option<MetadataClient> {
    client
        .side("metadata", name, false)
        .create_with_context(ProbeContext::default())
        .ok()
}

/// librdkafka's words for a failed SASL login (any mechanism).
fn is_auth_failure(message: &str) -> bool {
    [
        "SASL authentication error",
        "Authentication failed",
        "GSSAPI Error",
        "SASL handshake failed",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// The brokers did not answer in time.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the Kafka brokers {bootstrap} within {timeout:?}: {reason}")]
pub struct ProbeError {
    pub bootstrap: String,
    pub timeout: Duration,
    pub reason: String,
}

/// Asks the brokers for metadata once, so that an unreachable cluster or a failing login is
/// one clear line at start-up instead of retries in the background. Returns the topic names.
pub fn probe(config: &ClientConfig, timeout: Duration) -> Result<Vec<String>, ProbeError> {
    probe_cluster(config, timeout, false).map(|(topics, _)| topics)
}

/// As [`probe`], and with `cluster_id` also the cluster's id (for the REST API's `GET /`),
/// asked through the same client: a second client would cost its own start and its
/// teardown (about a second in librdkafka) before the first record.
pub fn probe_cluster(
    config: &ClientConfig,
    timeout: Duration,
    cluster_id: bool,
) -> Result<(Vec<String>, Option<String>), ProbeError> {
    let bootstrap = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string();
    let fail = |reason: String| ProbeError {
        bootstrap: bootstrap.clone(),
        timeout,
        reason,
    };
    let mut config = config.clone();
    config.set("client.id", "ferry-probe");
    config.remove("statistics.interval.ms");
    // Disconnects are reported at INFO; the context keeps what explains a failure.
    config.set_log_level(RDKafkaLogLevel::Info);
    // A broker closing the connection is often the whole story (a SASL listener, say).
    config.set("log.connection.close", "true");
    let consumer: BaseConsumer<ProbeContext> = config
        .create_with_context(ProbeContext::default())
        .map_err(|e| fail(e.to_string()))?;
    // Short attempts, serving the client's event queue in between: librdkafka reports why a
    // connection failed (refused, DNS, authentication) as error events, which only reach
    // the context while the queue is polled.
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match consumer.fetch_metadata(None, left.min(Duration::from_millis(500))) {
            Ok(md) => {
                let topics = md.topics().iter().map(|t| t.name().to_string()).collect();
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let id = if cluster_id {
                    consumer
                        .client()
                        .fetch_cluster_id(left.min(Duration::from_secs(2)))
                } else {
                    None
                };
                return Ok((topics, id));
            }
            Err(e) => {
                let _ = consumer.poll(Duration::ZERO);
                if let Some(auth) = consumer.context().auth_failure() {
                    return Err(fail(auth));
                }
                if std::time::Instant::now() >= deadline {
                    let why = consumer.context().explanation();
                    return Err(fail(why.unwrap_or_else(|| e.to_string())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::client::ClientProp;

    fn settings(pairs: &[(&str, &str, bool)]) -> ClientSettings {
        ClientSettings {
            props: pairs
                .iter()
                .map(|(k, v, passthrough)| {
                    (
                        k.to_string(),
                        ClientProp {
                            value: v.to_string(),
                            source: format!("c.properties:3 consumer.override.{k}"),
                            passthrough: *passthrough,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            notes: vec![],
            kerberos_debug: false,
        }
    }

    #[test]
    fn defaults_bound_the_prefetch_and_yield_to_the_files() {
        let d = ferry_defaults("c", None, Duration::from_secs(30));
        let get = |k: &str| d.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone());
        assert_eq!(get("queued.max.messages.kbytes").as_deref(), Some("16384"));
        assert_eq!(get("client.id").as_deref(), Some("connector-consumer-c"));
        let (config, _) = client_config(
            &settings(&[("queued.max.messages.kbytes", "100", true)]),
            &d,
        )
        .unwrap();
        assert_eq!(config.get("queued.max.messages.kbytes"), Some("100"));
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
        assert_eq!(config.get("auto.offset.reset"), Some("earliest"));
    }

    #[test]
    fn a_connector_may_ask_for_less_read_ahead() {
        let d = ferry_defaults("c", Some(4 << 20), Duration::ZERO);
        let get = |k: &str| d.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone());
        assert_eq!(get("queued.max.messages.kbytes").as_deref(), Some("4096"));
        assert_eq!(get("fetch.max.bytes").as_deref(), Some("4194304"));
        let tiny = ferry_defaults("c", Some(10), Duration::ZERO);
        assert!(tiny.contains(&("queued.max.messages.kbytes", "1024".to_string())));
    }

    #[test]
    fn unknown_pass_through_keys_are_dropped_with_a_note() {
        let (config, notes) =
            client_config(&settings(&[("not.a.real.key", "1", true)]), &[]).unwrap();
        assert_eq!(config.get("not.a.real.key"), None);
        assert_eq!(notes[0].key, "consumer.override.not.a.real.key");
        assert_eq!(notes[0].location, "c.properties:3");
    }

    #[test]
    fn rejected_values_name_the_key_and_hide_secrets() {
        let err =
            client_config(&settings(&[("session.timeout.ms", "-5", false)]), &[]).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "c.properties:3 consumer.override.session.timeout.ms: librdkafka rejects `-5`"
            ),
            "{err}"
        );
        let reason = rejection("sasl.password", "hunter2", "Invalid value");
        assert!(
            reason.contains("sasl.password") && !reason.contains("hunter2"),
            "{reason}"
        );
    }

    #[test]
    fn rate_limiter_repeats_after_the_period() {
        let r = RateLimiter::default();
        assert!(r.allow("down", Duration::from_secs(60)));
        assert!(!r.allow("down", Duration::from_secs(60)));
        assert!(r.allow("other", Duration::from_secs(60)));
        assert!(r.allow("down", Duration::ZERO));
    }
}
