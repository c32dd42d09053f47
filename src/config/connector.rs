//! A connector file: the keys every sink shares, the consumer settings, and the
//! connector's own keys, handed to its factory.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_connector_api::text::shown;
use ferry_connector_api::{Connector, ConnectorFactory, ConnectorProps};
use ferry_transforms::Chain;
use regex::Regex;

use super::client::{self, ClientLayers, ClientProp, ClientSettings, Sourced};
use super::notes::{Note, NoteKind, suggest};
use super::providers::Environment;
use super::{
    ConfigFileError, PropertiesFile, WorkerConfig, duplicate_notes, misspelt, resolve_file,
    take_ms, validate,
};
use crate::convert::Converter;
use crate::registry;

/// Connector keys Kafka Connect defines that ferry accepts without acting on them.
const IGNORED: &[(&str, &str)] = &[(
    "config.action.reload",
    "ferry reads its files once at start",
)];

/// Which topics the connector reads.
#[derive(Debug, Clone)]
pub enum Subscription {
    /// `topics`: a fixed list.
    Topics(Vec<String>),
    /// `topics.regex`: every topic whose whole name matches (Java's `Pattern.matches`),
    /// re-evaluated every `metadata.max.age.ms`, so topics created later are picked up.
    Regex(Regex),
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subscription::Topics(t) => write!(f, "topics={}", t.join(",")),
            Subscription::Regex(r) => {
                let s = r.as_str();
                write!(f, "topics.regex={}", &s[4..s.len() - 2])
            }
        }
    }
}

impl Subscription {
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Subscription::Topics(t) => t.iter().any(|x| x == topic),
            // Internal topics (`__consumer_offsets`) never match a pattern, as in Java's
            // consumer with `exclude.internal.topics=true`.
            Subscription::Regex(r) => !topic.starts_with("__") && r.is_match(topic),
        }
    }
}

/// `errors.tolerance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorTolerance {
    /// `none` (default): a record error fails the task.
    None,
    /// `all`: a record error is logged (with `errors.log.enable`) and the record skipped.
    All,
}

impl fmt::Display for ErrorTolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorTolerance::None => "none",
            ErrorTolerance::All => "all",
        })
    }
}

/// The error-handling keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorPolicy {
    pub tolerance: ErrorTolerance,
    /// `errors.log.enable` (false): log each tolerated record error.
    pub log_enable: bool,
    /// `errors.log.include.messages` (false): include the record's key and value in that log.
    pub log_include_messages: bool,
    /// `errors.retry.delay.max.ms` (60 000): the longest pause between retries of a
    /// retriable sink error.
    pub retry_delay_max: Duration,
    /// `errors.retry.timeout` (unset or -1: retry for ever): how long a retriable error at
    /// any stage (a schema registry that cannot be reached, a sink that is unavailable) is
    /// retried before its records become record errors under `errors.tolerance`.
    pub retry_timeout: Option<Duration>,
}

/// One connector, validated.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub file: PropertiesFile,
    /// `name` (required): identifies the connector in logs, offsets and the group id.
    pub name: String,
    /// `connector.class` as written.
    pub class: String,
    pub factory: &'static ConnectorFactory,
    pub connector: Arc<dyn Connector>,
    /// `tasks.max` (1): number of tasks; the connector's one consumer feeds them all.
    pub tasks_max: usize,
    pub subscription: Subscription,
    /// `key.converter` override, else the worker's.
    pub key_converter: Converter,
    /// `value.converter` override, else the worker's.
    pub value_converter: Converter,
    /// `header.converter` override, else the worker's: writes the headers transforms add.
    pub header_converter: ferry_transforms::HeaderConverter,
    pub errors: ErrorPolicy,
    /// Where failed records go besides the log (`errors.deadletterqueue.*`).
    pub dead_letter: super::dlq::DeadLetterQueue,
    /// `producer.override.*` (prefix removed): the connector's layer of producer settings.
    pub producer_overrides: std::collections::BTreeMap<String, Sourced>,
    /// `transforms` / `predicates`: the chain the driver runs between conversion and `put`
    /// (empty: none).
    pub transforms: Arc<Chain>,
    /// The consumer's librdkafka settings, group id included.
    pub consumer: ClientSettings,
    pub notes: Vec<Note>,
}

/// `header.converter` and its `header.converter.*` settings, if the file sets it (worker
/// and connector files alike).
pub(super) fn take_header_converter(
    file: &PropertiesFile,
    props: &mut ConnectorProps,
) -> Result<Option<ferry_transforms::HeaderConverter>, ConfigFileError> {
    let settings = props.take_prefixed("header.converter.");
    let Some(class) = props.take("header.converter") else {
        return Ok(None);
    };
    ferry_transforms::HeaderConverter::parse(&class, &settings)
        .map(Some)
        .map_err(|reason| ConfigFileError::Key {
            location: file.locate("header.converter"),
            key: "header.converter".into(),
            reason,
        })
}

impl ConnectorConfig {
    pub fn load(
        path: &Path,
        worker: &WorkerConfig,
        env: &dyn Environment,
    ) -> Result<Self, ConfigFileError> {
        Self::from_file(PropertiesFile::load(path)?, worker, env)
    }

    pub fn from_file(
        raw: PropertiesFile,
        worker: &WorkerConfig,
        env: &dyn Environment,
    ) -> Result<Self, ConfigFileError> {
        let file = resolve_file(raw, &worker.providers, env)?;
        let mut notes = duplicate_notes(&file);
        let mut props = ConnectorProps::new(file.entries.clone());
        let api = |e| ConfigFileError::from_api(&file, e);
        let key_err = |key: &str, reason: String| ConfigFileError::Key {
            location: file.locate(key),
            key: key.to_string(),
            reason,
        };

        let name = props
            .take_required(
                "name",
                "a unique name for this connector, e.g. name=ztf-to-pubsub",
            )
            .map_err(api)?;
        validate::connector_name(&name).map_err(|reason| key_err("name", reason))?;
        let class = props
            .take_required(
                "connector.class",
                "the sink to run, e.g. org.apache.kafka.connect.file.FileStreamSinkConnector",
            )
            .map_err(api)?;
        let factory =
            registry::lookup(&class).map_err(|reason| key_err("connector.class", reason))?;
        let tasks_max = props
            .take_parsed::<usize>("tasks.max", "a positive integer")
            .map_err(api)?
            .unwrap_or(1);
        if tasks_max == 0 {
            return Err(key_err("tasks.max", "must be at least 1".into()));
        }
        let subscription = match (props.take("topics"), props.take("topics.regex")) {
            (Some(_), Some(_)) => {
                return Err(ConfigFileError::from_api(
                    &file,
                    ferry_connector_api::ConfigError::Conflict {
                        first: "topics".into(),
                        second: "topics.regex".into(),
                        reason: "give a list of topics or a pattern, not both".into(),
                    },
                ));
            }
            (Some(list), None) => {
                let topics: Vec<String> = list.split(',').map(|t| t.trim().to_string()).collect();
                if topics.iter().any(String::is_empty) {
                    return Err(key_err(
                        "topics",
                        format!(
                            "`{}` has an empty topic name; separate names with single commas",
                            shown(&list)
                        ),
                    ));
                }
                // A name Kafka cannot have would be waited for forever.
                for topic in &topics {
                    validate::topic(topic).map_err(|reason| key_err("topics", reason))?;
                }
                Subscription::Topics(topics)
            }
            (None, Some(pattern)) => {
                let pattern = pattern.trim();
                if let Some(reason) = validate::regex_error(pattern) {
                    return Err(key_err("topics.regex", reason));
                }
                // Parsed above: only the compiled size can fail here.
                Subscription::Regex(Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                    key_err(
                        "topics.regex",
                        format!("`{}` cannot be used: {e}", shown(pattern)),
                    )
                })?)
            }
            (None, None) => {
                return Err(api(props.missing(
                    &["topics", "topics.regex"],
                    "set topics=<name>[,<name>…] or topics.regex=<pattern>",
                )));
            }
        };
        let converter = |props: &mut ConnectorProps,
                         key: &str,
                         inherited: Converter|
         -> Result<Converter, ConfigFileError> {
            let settings = props.take_prefixed(&format!("{key}."));
            match props.take(key) {
                Some(class) => {
                    Converter::parse(&class, &settings).map_err(|reason| key_err(key, reason))
                }
                None => Ok(inherited),
            }
        };
        let key_converter = converter(&mut props, "key.converter", worker.key_converter.clone())?;
        let value_converter = converter(
            &mut props,
            "value.converter",
            worker.value_converter.clone(),
        )?;
        let tolerance = match props.take("errors.tolerance").as_deref().map(str::trim) {
            None | Some("none") => ErrorTolerance::None,
            Some("all") => ErrorTolerance::All,
            Some(other) => {
                return Err(key_err(
                    "errors.tolerance",
                    format!("`{}` is not none or all", shown(other)),
                ));
            }
        };
        let errors = ErrorPolicy {
            tolerance,
            log_enable: props
                .take_bool("errors.log.enable")
                .map_err(api)?
                .unwrap_or(false),
            log_include_messages: props
                .take_bool("errors.log.include.messages")
                .map_err(api)?
                .unwrap_or(false),
            retry_delay_max: take_ms(&file, &mut props, "errors.retry.delay.max.ms", 60_000)?,
            retry_timeout: super::dlq::take_retry_timeout(&file, &mut props)?,
        };
        let header_converter =
            take_header_converter(&file, &mut props)?.unwrap_or(worker.header_converter);
        let transforms = Arc::new(Chain::take_with(&mut props, header_converter).map_err(api)?);
        let dead_letter = super::dlq::take(&file, &mut props, &subscription)?;
        let producer_overrides = super::dlq::take_producer_overrides(&file, &mut props);
        super::dlq::check_producer(worker, &producer_overrides, &dead_letter)?;
        let overrides = props
            .take_prefixed("consumer.override.")
            .into_iter()
            .map(|(k, v)| {
                let written = format!("consumer.override.{k}");
                let s = Sourced {
                    value: v,
                    location: file.locate(&written),
                    written_as: written,
                };
                (k, s)
            })
            .collect();
        let mut consumer = client::consumer_settings(&ClientLayers {
            top: worker.client_top.clone(),
            consumer: worker.client_consumer.clone(),
            overrides,
            policy: worker.override_policy,
        })?;
        if !consumer.props.contains_key("group.id") {
            consumer.props.insert(
                "group.id".into(),
                ClientProp {
                    value: format!("connect-{name}"),
                    source: "Kafka Connect's connect-<name>".into(),
                    passthrough: false,
                },
            );
        }

        let connector = (factory.create)(&mut props).map_err(api)?;

        // Whatever is left was read by nobody.
        for (key, _) in props.remaining() {
            let known: Vec<&str> = props
                .known_keys()
                .chain(IGNORED.iter().map(|(k, _)| *k))
                .collect();
            if let Some((_, reason)) = IGNORED.iter().find(|(k, _)| *k == key) {
                notes.push(Note::new(
                    file.locate(key),
                    key,
                    NoteKind::Ignored {
                        reason: (*reason).into(),
                    },
                ));
            } else if let Some(s) = suggest(key, known) {
                return Err(misspelt(&file, key, &s, false));
            } else if let Some(prefix) = props.known_prefixes().find(|p| key.starts_with(p)) {
                // Unreachable in practice (prefixes are drained when taken); kept for clarity.
                notes.push(Note::new(
                    file.locate(key),
                    key,
                    NoteKind::Ignored {
                        reason: format!("under {prefix}"),
                    },
                ));
            } else {
                notes.push(Note::new(
                    file.locate(key),
                    key,
                    NoteKind::Unknown { suggestion: None },
                ));
            }
        }
        notes.append(&mut consumer.notes);
        Ok(Self {
            file,
            name,
            class,
            factory,
            connector: Arc::from(connector),
            tasks_max,
            subscription,
            key_converter,
            value_converter,
            header_converter,
            errors,
            dead_letter,
            producer_overrides,
            transforms,
            consumer,
            notes,
        })
    }

    pub fn group_id(&self) -> &str {
        self.consumer.get("group.id").unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::providers::SystemEnvironment;
    use super::*;

    fn worker(text: &str) -> WorkerConfig {
        let f = PropertiesFile::parse(Path::new("worker.properties"), text.as_bytes()).unwrap();
        WorkerConfig::from_file(f, &SystemEnvironment).unwrap()
    }

    fn load(w: &WorkerConfig, text: &str) -> Result<ConnectorConfig, ConfigFileError> {
        let f = PropertiesFile::parse(Path::new("sink.properties"), text.as_bytes())?;
        ConnectorConfig::from_file(f, w, &SystemEnvironment)
    }

    const W: &str = "bootstrap.servers=b:9092\nkey.converter=org.apache.kafka.connect.converters.ByteArrayConverter\nvalue.converter=org.apache.kafka.connect.converters.ByteArrayConverter\n";

    #[test]
    fn a_file_sink_with_defaults() {
        let c = load(&worker(W), "name=local-file-sink\nconnector.class=FileStreamSink\ntasks.max=1\nfile=/tmp/test.sink.txt\ntopics=connect-test\n").unwrap();
        assert_eq!(c.name, "local-file-sink");
        assert_eq!(c.factory.name, "file");
        assert_eq!(c.group_id(), "connect-local-file-sink");
        assert_eq!(c.consumer.get("bootstrap.servers"), Some("b:9092"));
        assert!(matches!(&c.subscription, Subscription::Topics(t) if t == &["connect-test"]));
        assert_eq!(c.errors.tolerance, ErrorTolerance::None);
        assert!(c.notes.is_empty(), "{:?}", c.notes);
    }

    #[test]
    fn converter_overrides_replace_the_workers() {
        let c = load(
            &worker(W),
            "name=n\nconnector.class=null\ntopics=t\nvalue.converter=AvroContainerConverter\nkey.converter=JsonConverter\nkey.converter.schemas.enable=false\n",
        )
        .unwrap();
        assert_eq!(c.value_converter, Converter::AvroContainer);
        assert!(matches!(c.key_converter, Converter::Json(j) if !j.schemas_enable));
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        let err = load(
            &worker(W),
            "name=n\nconnector.class=null\ntopics=t\nvalue.converter=io.confluent.connect.avro.AvroConverter\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "sink.properties:4: value.converter: AvroConverter needs schema.registry.url"
            ),
            "{err}"
        );
        let c = load(
            &worker(W),
            "name=n\nconnector.class=null\ntopics=t\nvalue.converter=io.confluent.connect.avro.AvroConverter\nvalue.converter.schema.registry.url=http://registry:8081\nvalue.converter.basic.auth.credentials.source=USER_INFO\nvalue.converter.basic.auth.user.info=key:s3cret\n",
        );
        let c = c.unwrap();
        assert!(
            matches!(&c.value_converter, Converter::ConfluentAvro(s) if s.urls == ["http://registry:8081"] && s.auth.is_some()),
            "{:?}",
            c.value_converter
        );
    }

    /// `header.converter`: the worker's (SimpleHeaderConverter by default), overridden per
    /// connector, with no note (it is read now); an unknown class is one line naming it.
    #[test]
    fn header_converter_defaults_overrides_and_unknown_classes() {
        use ferry_transforms::HeaderConverter;
        let c = load(&worker(W), "name=n\nconnector.class=null\ntopics=t\n").unwrap();
        assert_eq!(c.header_converter, HeaderConverter::Simple);
        let w = worker(&format!(
            "{W}header.converter=org.apache.kafka.connect.storage.StringConverter\n"
        ));
        assert!(
            w.notes.iter().all(|n| n.key != "header.converter"),
            "{:?}",
            w.notes
        );
        let c = load(&w, "name=n\nconnector.class=null\ntopics=t\n").unwrap();
        assert_eq!(c.header_converter, HeaderConverter::String);
        let c = load(
            &w,
            "name=n\nconnector.class=null\ntopics=t\nheader.converter=ByteArrayConverter\n",
        )
        .unwrap();
        assert_eq!(c.header_converter, HeaderConverter::ByteArray);
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        let err = load(
            &w,
            "name=n\nconnector.class=null\ntopics=t\nheader.converter=io.confluent.connect.avro.AvroConverter\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "sink.properties:4: header.converter: `io.confluent.connect.avro.AvroConverter` is not a header converter ferry has; use org.apache.kafka.connect.storage.SimpleHeaderConverter (the default), org.apache.kafka.connect.storage.StringConverter, org.apache.kafka.connect.converters.ByteArrayConverter (or their short names)"
        );
        // The connector's converter writes what its transforms add: checked when the file
        // is read.
        let err = load(
            &w,
            "name=n\nconnector.class=null\ntopics=t\nheader.converter=ByteArrayConverter\ntransforms=h\ntransforms.h.type=InsertHeader\ntransforms.h.header=origin\ntransforms.h.value.literal=ztf\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("transforms.h.value.literal")
                && err.contains(
                    "ByteArrayConverter writes only bytes, and this header holds a string"
                ),
            "{err}"
        );
    }

    #[test]
    fn group_id_precedence() {
        let w = worker(&format!("{W}consumer.group.id=pittgoogle-rubin\n"));
        let c = load(&w, "name=n\nconnector.class=null\ntopics=t\n").unwrap();
        assert_eq!(c.group_id(), "pittgoogle-rubin");
        let c = load(
            &w,
            "name=n\nconnector.class=null\ntopics=t\nconsumer.override.group.id=mine\n",
        )
        .unwrap();
        assert_eq!(c.group_id(), "mine");
    }

    #[test]
    fn regex_subscriptions_match_whole_names_and_skip_internal_topics() {
        let c = load(
            &worker(W),
            "name=n\nconnector.class=null\ntopics.regex=ztf_\\\\d{8}_programid1\n",
        )
        .unwrap();
        assert!(c.subscription.matches("ztf_20210107_programid1"));
        assert!(!c.subscription.matches("ztf_20210107_programid1_old"));
        assert!(!c.subscription.matches("xztf_20210107_programid1"));
        assert_eq!(
            c.subscription.to_string(),
            "topics.regex=ztf_\\d{8}_programid1"
        );
        let c = load(
            &worker(W),
            "name=n\nconnector.class=null\ntopics.regex=.*\n",
        )
        .unwrap();
        assert!(!c.subscription.matches("__consumer_offsets"));
    }

    #[test]
    fn bad_connector_files_give_one_line_each() {
        let w = worker(W);
        let cases = [
            (
                "connector.class=null\ntopics=t\n",
                "sink.properties: missing required key `name`",
            ),
            (
                "name=n\nconnector.class=com.example.Nope\ntopics=t\n",
                "sink.properties:2: connector.class: unknown connector class `com.example.Nope`",
            ),
            (
                "name=n\nconnector.class=file\n",
                "sink.properties: missing required key `topics`",
            ),
            (
                "name=n\nconnector.class=directory\ntopics=t\n",
                "sink.properties: missing required key `directory.path`",
            ),
            (
                "name=n\nconnector.class=file\ntopic=t\n",
                "sink.properties:3: topic: unknown key; did you mean `topics`? Correct it: that key is required",
            ),
            (
                "name=n\nconnector.class=file\ntopic.regex=t.*\n",
                "sink.properties:3: topic.regex: unknown key; did you mean `topics.regex`?",
            ),
            (
                "nmae=n\nconnector.class=file\ntopics=t\n",
                "sink.properties:1: nmae: unknown key; did you mean `name`?",
            ),
            (
                "name=n\nconnector.class=directory\ntopics=t\ndirectory.pth=/out\n",
                "sink.properties:4: directory.pth: unknown key; did you mean `directory.path`? Correct it: that key is required",
            ),
            (
                "name=n\nconnector.class=pubsub\ntopics=t\ncps.project=p\ncps.topc=alerts\n",
                "sink.properties:5: cps.topc: unknown key; did you mean `cps.topic`? Correct it: that key is required",
            ),
            (
                "name=n\nconnector.class=file\ntopics=my topic\n",
                "sink.properties:3: topics: topic name `my topic` has a space; Kafka topic names use only a-z, A-Z, 0-9, '.', '_' and '-'",
            ),
            (
                "name=n\nconnector.class=file\ntopics=ok,café\n",
                "sink.properties:3: topics: topic name `café` has `é`",
            ),
            (
                "name=n\nconnector.class=file\ntopics.regex=[abc\n",
                "sink.properties:3: topics.regex: `[abc` is not a valid regular expression: unclosed character class (at column 1)",
            ),
            (
                "name=a/b\nconnector.class=file\ntopics=t\n",
                "sink.properties:1: name: `a/b` has `/`; names have no control characters, '/' or '\\'",
            ),
            (
                "name=n\nconnector.class=file\ntopics=t\nfiel=/tmp/x\n",
                "sink.properties:4: fiel: unknown key; did you mean `file`?",
            ),
            (
                "name=n\nconnector.class=file\ntopics=t\ntasks.max=ten\n",
                "sink.properties:4: tasks.max: `ten` is not a positive integer",
            ),
            (
                "name=n\nconnector.class=file\ntopics=t\ntopics.regex=t.*\n",
                "sink.properties:4: topics / topics.regex: give a list of topics or a pattern, not both",
            ),
            (
                "name=n\nconnector.class=file\ntopics=t\nerrors.tolerance=some\n",
                "sink.properties:4: errors.tolerance: `some` is not none or all",
            ),
            (
                "name=n\nconnector.class=file\ntopics=t\ntransforms=mask\n",
                "sink.properties: missing required key `transforms.mask.type`: transform `mask` is listed in `transforms`; name its class",
            ),
            (
                "name=n\nconnector.class=file\ntopics=t\ntransforms=m\ntransforms.m.type=com.example.Mystery\n",
                "sink.properties:5: transforms.m.type: unknown transform class `com.example.Mystery`; ferry knows Cast$Key, Cast$Value,",
            ),
            (
                "name=n\nconnector.class=file\ntopics=t\ntransforms=h\ntransforms.h.type=HoistField$Value\n",
                "sink.properties: missing required key `transforms.h.field`: HoistField$Value needs",
            ),
            (
                "name=n\nconnector.class=file\ntopics=t\ntransforms=f\ntransforms.f.type=Filter\ntransforms.f.predicate=isTest\n",
                "sink.properties:6: transforms.f.predicate: predicate `isTest` is not declared; add it to `predicates` and set `predicates.isTest.type`",
            ),
            (
                "name=n\nconnector.class=file\ntopics=t\npredicates=p\npredicates.p.type=TopicNameMatches\npredicates.p.pattern=[a-z\n",
                "sink.properties:6: predicates.p.pattern: `[a-z` is not a regular expression",
            ),
            (
                "name=n\nconnector.class=file\ntopics=a,,b\n",
                "sink.properties:3: topics: `a,,b` has an empty topic name",
            ),
        ];
        for (text, expected) in cases {
            let err = load(&w, text).unwrap_err().to_string();
            assert!(err.starts_with(expected), "\n got: {err}\nwant: {expected}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn a_misspelt_key_without_a_near_miss_is_a_warning() {
        let c = load(
            &worker(W),
            "name=n\nconnector.class=null\ntopics=t\ncps.project=x\n",
        )
        .unwrap();
        assert!(c.notes.iter().any(|n| n.key == "cps.project" && n.kind == NoteKind::Unknown { suggestion: None }));
    }
}
