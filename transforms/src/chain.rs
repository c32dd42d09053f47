//! The transformation chain, built from a connector's keys as Kafka Connect reads them.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_connector_api::{ConfigError, ConnectorProps, SinkRecord, Value};

use crate::keys::{Keys, split_list};
use crate::value::{Side, finish_raw, unwritten};
use crate::{
    Predicate, Result, Transform, cast, extract_hoist, filter, flatten, headers, insert_field,
    mask_field, replace_field, router, timestamp_converter, value_to_key,
};

type BuildTransform = fn(&mut Keys<'_>) -> Result<Box<dyn Transform>, ConfigError>;
type BuildPredicate = fn(&mut Keys<'_>) -> Result<Arc<dyn Predicate>, ConfigError>;

const PACKAGE: &str = "org.apache.kafka.connect.transforms.";
const PREDICATE_PACKAGE: &str = "org.apache.kafka.connect.transforms.predicates.";

/// Every transform ferry knows, by the short form of its Java class name.
const TRANSFORMS: &[(&str, BuildTransform)] = &[
    ("Cast$Key", |k| cast::build(k, Side::Key)),
    ("Cast$Value", |k| cast::build(k, Side::Value)),
    ("DropHeaders", headers::drop_headers),
    ("ExtractField$Key", |k| {
        extract_hoist::extract_field(k, Side::Key)
    }),
    ("ExtractField$Value", |k| {
        extract_hoist::extract_field(k, Side::Value)
    }),
    ("Filter", filter::filter),
    ("Flatten$Key", |k| flatten::build(k, Side::Key)),
    ("Flatten$Value", |k| flatten::build(k, Side::Value)),
    ("HeaderFrom$Key", |k| headers::header_from(k, Side::Key)),
    ("HeaderFrom$Value", |k| headers::header_from(k, Side::Value)),
    ("HoistField$Key", |k| {
        extract_hoist::hoist_field(k, Side::Key)
    }),
    ("HoistField$Value", |k| {
        extract_hoist::hoist_field(k, Side::Value)
    }),
    ("InsertField$Key", |k| insert_field::build(k, Side::Key)),
    ("InsertField$Value", |k| insert_field::build(k, Side::Value)),
    ("InsertHeader", headers::insert_header),
    ("MaskField$Key", |k| mask_field::build(k, Side::Key)),
    ("MaskField$Value", |k| mask_field::build(k, Side::Value)),
    ("RegexRouter", router::regex_router),
    ("ReplaceField$Key", |k| replace_field::build(k, Side::Key)),
    ("ReplaceField$Value", |k| {
        replace_field::build(k, Side::Value)
    }),
    ("SetSchemaMetadata$Key", |k| {
        value_to_key::set_schema_metadata(k, Side::Key)
    }),
    ("SetSchemaMetadata$Value", |k| {
        value_to_key::set_schema_metadata(k, Side::Value)
    }),
    ("TimestampConverter$Key", |k| {
        timestamp_converter::build(k, Side::Key)
    }),
    ("TimestampConverter$Value", |k| {
        timestamp_converter::build(k, Side::Value)
    }),
    ("TimestampRouter", router::timestamp_router),
    ("ValueToKey", value_to_key::value_to_key),
];

/// Every predicate ferry knows.
const PREDICATES: &[(&str, BuildPredicate)] = &[
    ("HasHeaderKey", filter::has_header_key),
    ("RecordIsTombstone", filter::record_is_tombstone),
    ("TopicNameMatches", filter::topic_name_matches),
];

/// The transforms of one connector, in order, each with its optional predicate.
#[derive(Debug, Default)]
pub struct Chain {
    steps: Vec<Step>,
}

#[derive(Debug)]
struct Step {
    alias: String,
    class: &'static str,
    transform: Box<dyn Transform>,
    predicate: Option<(String, Arc<dyn Predicate>)>,
    negate: bool,
}

impl Chain {
    /// Takes `transforms`, `predicates` and the keys of every listed alias from a
    /// connector's keys. Keys under an alias that is not listed, and keys a transform does
    /// not know, stay in `props` for the runtime to report as unknown.
    pub fn take(props: &mut ConnectorProps) -> Result<Chain, ConfigError> {
        Chain::take_with(props, crate::HeaderConverter::default())
    }

    /// Like [`take`](Chain::take), for a connector whose `header.converter` writes the
    /// headers its transforms make.
    pub fn take_with(
        props: &mut ConnectorProps,
        header_converter: crate::HeaderConverter,
    ) -> Result<Chain, ConfigError> {
        let transforms = aliases(props, "transforms")?;
        let predicate_aliases = aliases(props, "predicates")?;

        let mut predicates: BTreeMap<String, Arc<dyn Predicate>> = BTreeMap::new();
        for alias in predicate_aliases {
            let type_key = format!("predicates.{alias}.type");
            let class = props.take_required(
                &type_key,
                &format!("predicate `{alias}` is listed in `predicates`; name its class, e.g. TopicNameMatches"),
            )?;
            let (name, build) = lookup(PREDICATES, &class, PREDICATE_PACKAGE).ok_or_else(|| {
                unknown(
                    &type_key,
                    "predicate",
                    &class,
                    PREDICATES,
                    PREDICATE_PACKAGE,
                )
            })?;
            let mut keys = Keys::new(props, format!("predicates.{alias}."), name);
            predicates.insert(alias, build(&mut keys)?);
        }

        let mut steps = Vec::with_capacity(transforms.len());
        for alias in transforms {
            let type_key = format!("transforms.{alias}.type");
            let class = props.take_required(
                &type_key,
                &format!("transform `{alias}` is listed in `transforms`; name its class, e.g. InsertField$Value"),
            )?;
            let (name, build) = lookup(TRANSFORMS, &class, PACKAGE)
                .ok_or_else(|| unknown(&type_key, "transform", &class, TRANSFORMS, PACKAGE))?;
            let predicate_key = format!("transforms.{alias}.predicate");
            let predicate = match props.take(&predicate_key) {
                None => None,
                Some(p) => {
                    let p = p.trim().to_string();
                    let found = predicates.get(&p).cloned().ok_or_else(|| {
                        ConfigError::invalid(
                            &predicate_key,
                            format!(
                                "predicate `{}` is not declared; add it to `predicates` and set `predicates.{}.type`",
                                ferry_connector_api::text::shown(&p),
                                ferry_connector_api::text::shown(&p)
                            ),
                        )
                    })?;
                    Some((p, found))
                }
            };
            let negate_key = format!("transforms.{alias}.negate");
            let negate = props.take_bool(&negate_key)?;
            if negate.is_some() && predicate.is_none() {
                return Err(ConfigError::invalid(
                    negate_key,
                    format!("negate applies to a predicate; set `{predicate_key}` or remove it"),
                ));
            }
            let mut keys = Keys::new(props, format!("transforms.{alias}."), name);
            keys.header_converter = header_converter;
            let transform = build(&mut keys)?;
            steps.push(Step {
                alias,
                class: name,
                transform,
                predicate,
                negate: negate.unwrap_or(false),
            });
        }
        Ok(Chain { steps })
    }

    /// Builds a chain from keys alone (what a test or `ferry validate` has); keys no
    /// transform took are an error.
    pub fn from_map(values: BTreeMap<String, String>) -> Result<Chain, ConfigError> {
        let mut props = ConnectorProps::new(values);
        let chain = Chain::take(&mut props)?;
        if let Some((key, _)) = props.remaining().next() {
            let hint = ferry_connector_api::suggest(key, props.known_keys())
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            return Err(ConfigError::invalid(
                key,
                format!("no transform or predicate reads this key{hint}"),
            ));
        }
        Ok(chain)
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// One line per transform, for `ferry validate`: `a: InsertField$Value`, with
    /// `if p` / `unless p` when a predicate decides.
    pub fn describe(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| match &s.predicate {
                None => format!("{}: {}", s.alias, s.class),
                Some((p, _)) => format!(
                    "{}: {} {} {p}",
                    s.alias,
                    s.class,
                    if s.negate { "unless" } else { "if" }
                ),
            })
            .collect()
    }
}

impl Transform for Chain {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        let key_read = unwritten(&record.key);
        let value_read = unwritten(&record.value);
        let sizes = (
            record.key.as_ref().map_or(0, Value::len),
            record.value.as_ref().map_or(0, Value::len),
        );
        for step in &self.steps {
            if let Some((_, p)) = &step.predicate
                && p.test(&record) == step.negate
            {
                continue;
            }
            match step.transform.apply(record) {
                Ok(Some(r)) => record = r,
                Ok(None) => return Ok(None),
                Err(mut e) => {
                    e.transform = format!("`{}` ({})", step.alias, step.class);
                    if e.class.is_empty() {
                        e.class = format!("{PACKAGE}{}", step.class);
                    }
                    return Err(e);
                }
            }
        }
        finish_raw(&mut record.key, key_read, sizes.0);
        finish_raw(&mut record.value, value_read, sizes.1);
        Ok(Some(record))
    }
}

fn aliases(props: &mut ConnectorProps, key: &str) -> Result<Vec<String>, ConfigError> {
    let list = props.take(key).map(|v| split_list(&v)).unwrap_or_default();
    for (i, a) in list.iter().enumerate() {
        if list[..i].contains(a) {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "`{}` is listed twice; give each alias once",
                    ferry_connector_api::text::shown(a)
                ),
            ));
        }
    }
    Ok(list)
}

fn lookup<B: Copy>(
    table: &[(&'static str, B)],
    class: &str,
    package: &str,
) -> Option<(&'static str, B)> {
    let class = class.trim();
    let short = class.strip_prefix(package).unwrap_or(class);
    table.iter().find(|(name, _)| *name == short).copied()
}

/// The short names of every transform ferry knows.
pub fn known_transforms() -> Vec<&'static str> {
    TRANSFORMS.iter().map(|(n, _)| *n).collect()
}

fn unknown<B>(
    key: &str,
    what: &str,
    class: &str,
    table: &[(&str, B)],
    package: &str,
) -> ConfigError {
    let known: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
    ConfigError::invalid(
        key,
        format!(
            "unknown {what} class `{}`; ferry knows {} (short or with their {} package)",
            ferry_connector_api::text::shown(class.trim()),
            known.join(", "),
            package.trim_end_matches('.')
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferry_connector_api::{ConnectorProps, TimestampType};

    use super::*;
    use crate::testing::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The chain of issue 14's end-to-end test, as a connector file would spell it.
    fn alert_chain() -> Chain {
        Chain::from_map(props(&[
            ("transforms", "tag, route, dropTests, slim"),
            (
                "transforms.tag.type",
                "org.apache.kafka.connect.transforms.InsertField$Value",
            ),
            ("transforms.tag.static.field", "survey"),
            ("transforms.tag.static.value", "ztf"),
            ("transforms.route.type", "TimestampRouter"),
            ("transforms.route.topic.format", "${topic}_${timestamp}"),
            ("transforms.route.timestamp.format", "yyyyMMdd"),
            ("transforms.dropTests.type", "Filter"),
            ("transforms.dropTests.predicate", "isTest"),
            ("transforms.slim.type", "ReplaceField$Value"),
            ("transforms.slim.exclude", "cutout"),
            ("predicates", "isTest"),
            (
                "predicates.isTest.type",
                "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            ),
            ("predicates.isTest.pattern", "test-.*"),
        ]))
        .unwrap()
    }

    #[test]
    fn a_chain_applies_its_transforms_in_order() {
        let c = alert_chain();
        assert_eq!(
            c.describe(),
            [
                "tag: InsertField$Value",
                "route: TimestampRouter",
                "dropTests: Filter if isTest",
                "slim: ReplaceField$Value"
            ]
        );
        let mut r = record(
            "alerts",
            Some(schemaless(r#"{"cutout":"AAAA","id":"ZTF18"}"#)),
        );
        r.timestamp = Some((1483425001864, TimestampType::CreateTime));
        let out = c.apply(r).unwrap().unwrap();
        assert_eq!(out.topic.as_ref(), "alerts_20170103");
        assert_eq!(raw(&out.value), r#"{"id":"ZTF18","survey":"ztf"}"#);
        // The predicate sees the topic as the transforms before it left it.
        let mut r = record("test-alerts", Some(schemaless(r#"{"id":"x"}"#)));
        r.timestamp = Some((0, TimestampType::CreateTime));
        assert!(c.apply(r).unwrap().is_none());
    }

    #[test]
    fn a_failing_transform_names_itself_and_stops_the_chain() {
        let err = alert_chain()
            .apply(record("alerts", Some(schemaless(r#"{"id":"x"}"#))))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "transform `route` (TimestampRouter): the record has no timestamp to route by (topic=alerts partition=0 offset=0)"
        );
        assert_eq!(
            err.class,
            "org.apache.kafka.connect.transforms.TimestampRouter"
        );
    }

    #[test]
    fn an_untouched_value_keeps_its_bytes() {
        let c = Chain::from_map(props(&[
            ("transforms", "r"),
            ("transforms.r.type", "RegexRouter"),
            ("transforms.r.regex", "(.*)"),
            ("transforms.r.replacement", "copy-$1"),
        ]))
        .unwrap();
        let value = schemaless(r#"{ "spaced" : 1 }"#);
        let out = c.apply(record("t", Some(value.clone()))).unwrap().unwrap();
        assert_eq!(out.topic.as_ref(), "copy-t");
        assert_eq!(out.value.unwrap().as_bytes(), value.as_bytes());
        assert!(Chain::from_map(BTreeMap::new()).unwrap().is_empty());
        // A value read with no bytes stays so when untouched, and gets its JSON when changed.
        let empty = ferry_connector_api::Value::Structured(std::sync::Arc::new(
            ferry_connector_api::data::Structured {
                schema: None,
                data: ferry_connector_api::data::Data::Map(vec![]),
                raw: bytes::Bytes::new(),
            },
        ));
        let out = c.apply(record("t", Some(empty.clone()))).unwrap().unwrap();
        assert!(out.value.unwrap().as_bytes().is_empty());
        let hoist = Chain::from_map(props(&[
            ("transforms", "h"),
            ("transforms.h.type", "HoistField$Value"),
            ("transforms.h.field", "f"),
        ]))
        .unwrap();
        let out = hoist.apply(record("t", Some(empty))).unwrap().unwrap();
        assert_eq!(raw(&out.value), r#"{"f":{}}"#);
    }

    #[test]
    fn keys_nobody_reads_are_left_for_the_runtime() {
        let mut p = ConnectorProps::new(props(&[
            ("transforms", "f"),
            ("transforms.f.type", "Filter"),
            ("transforms.f.extra", "1"),
            ("transforms.unlisted.type", "Filter"),
            ("file", "/tmp/out"),
        ]));
        let chain = Chain::take(&mut p).unwrap();
        assert_eq!(chain.len(), 1);
        let left: Vec<&str> = p.remaining().map(|(k, _)| k).collect();
        assert_eq!(
            left,
            ["file", "transforms.f.extra", "transforms.unlisted.type"]
        );
        assert_eq!(
            Chain::from_map(props(&[
                ("transforms", "f"),
                ("transforms.f.type", "Filter"),
                ("transforms.f.predicat", "p"),
            ]))
            .unwrap_err()
            .to_string(),
            "invalid value for `transforms.f.predicat`: no transform or predicate reads this key; did you mean `transforms.f.predicate`?"
        );
    }
}
