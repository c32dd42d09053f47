//! `Filter` and the predicates `TopicNameMatches`, `HasHeaderKey`, `RecordIsTombstone`.

use std::sync::Arc;

use ferry_connector_api::{ConfigError, SinkRecord};
use regex::Regex;

use crate::keys::Keys;
use crate::{Predicate, Result, Transform};

/// Drops every record it is applied to; a predicate on the transform chooses which.
#[derive(Debug)]
pub(crate) struct Filter;

pub(crate) fn filter(_keys: &mut Keys<'_>) -> Result<Box<dyn Transform>, ConfigError> {
    Ok(Box::new(Filter))
}

impl Transform for Filter {
    fn apply(&self, _record: SinkRecord) -> Result<Option<SinkRecord>> {
        Ok(None)
    }
}

#[derive(Debug)]
pub(crate) struct TopicNameMatches(Regex);

pub(crate) fn topic_name_matches(keys: &mut Keys<'_>) -> Result<Arc<dyn Predicate>, ConfigError> {
    Ok(Arc::new(TopicNameMatches(keys.regex(
        "pattern",
        "a regular expression for the whole topic name",
    )?)))
}

impl Predicate for TopicNameMatches {
    fn test(&self, record: &SinkRecord) -> bool {
        self.0.is_match(&record.topic)
    }
}

#[derive(Debug)]
pub(crate) struct HasHeaderKey(String);

pub(crate) fn has_header_key(keys: &mut Keys<'_>) -> Result<Arc<dyn Predicate>, ConfigError> {
    Ok(Arc::new(HasHeaderKey(
        keys.required("name", "the header key to look for")?,
    )))
}

impl Predicate for HasHeaderKey {
    fn test(&self, record: &SinkRecord) -> bool {
        record.headers.iter().any(|h| h.key == self.0)
    }
}

#[derive(Debug)]
pub(crate) struct RecordIsTombstone;

pub(crate) fn record_is_tombstone(_keys: &mut Keys<'_>) -> Result<Arc<dyn Predicate>, ConfigError> {
    Ok(Arc::new(RecordIsTombstone))
}

impl Predicate for RecordIsTombstone {
    fn test(&self, record: &SinkRecord) -> bool {
        // Connect: `record.value() == null`; a JSON `null` value converts to null too.
        crate::value::is_null(record.value.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferry_connector_api::Header;

    use crate::Transform;
    use crate::testing::*;

    fn with_predicate(class: &str, keys: &[(&str, &str)], negate: bool) -> crate::Chain {
        let pairs = [
            ("transforms", "drop".to_string()),
            (
                "transforms.drop.type",
                "org.apache.kafka.connect.transforms.Filter".into(),
            ),
            ("transforms.drop.predicate", "p".into()),
            ("transforms.drop.negate", negate.to_string()),
            ("predicates", "p".into()),
            (
                "predicates.p.type",
                format!("org.apache.kafka.connect.transforms.predicates.{class}"),
            ),
        ];
        let owned: Vec<(String, String)> = keys
            .iter()
            .map(|(k, v)| (format!("predicates.p.{k}"), v.to_string()))
            .collect();
        let mut all: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend(owned.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        chain_of(&all).unwrap()
    }

    fn kept(c: &crate::Chain, r: ferry_connector_api::SinkRecord) -> bool {
        c.apply(r).unwrap().is_some()
    }

    /// Kafka has no FilterTest; Filter's documentation: without a predicate it drops every record.
    #[test]
    fn filter_drops_everything_without_a_predicate() {
        let c = chain("Filter", &[]);
        assert!(!kept(&c, record("any", Some(schemaless("{}")))));
        assert!(!kept(&c, record("any", None)));
    }

    /// Kafka: TopicNameMatchesTest.testTest
    #[test]
    fn topic_name_matches_the_whole_topic() {
        let c = with_predicate("TopicNameMatches", &[("pattern", "my-prefix-.*")], false);
        assert!(!kept(&c, record("my-prefix-", None)));
        assert!(!kept(&c, record("my-prefix-foo", None)));
        assert!(kept(&c, record("x-my-prefix-", None)));
        assert!(kept(&c, record("your-prefix-", None)));
        let negated = with_predicate("TopicNameMatches", &[("pattern", "my-prefix-.*")], true);
        assert!(kept(&negated, record("my-prefix-foo", None)));
        assert!(!kept(&negated, record("other", None)));
    }

    /// Kafka: TopicNameMatchesTest.testConfig (an invalid regex), and a missing pattern
    #[test]
    fn a_bad_or_missing_pattern_is_a_config_error() {
        let err = chain_of(&[
            ("transforms", "f"),
            ("transforms.f.type", "Filter"),
            ("transforms.f.predicate", "p"),
            ("predicates", "p"),
            ("predicates.p.type", "TopicNameMatches"),
            ("predicates.p.pattern", "[a-z"),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            "invalid value for `predicates.p.pattern`: `[a-z` is not a regular expression (unclosed character class); correct it"
        );
        let err = chain_of(&[
            ("predicates", "p"),
            ("predicates.p.type", "TopicNameMatches"),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            "missing required key `predicates.p.pattern`: TopicNameMatches needs a regular expression for the whole topic name; set `predicates.p.pattern`"
        );
    }

    /// Kafka: HasHeaderKeyTest.testTest, testNameRequiredInConfig, testNameMayNotBeEmptyInConfig
    #[test]
    fn has_header_key_tests_the_header_keys() {
        let c = with_predicate("HasHeaderKey", &[("name", "foo")], false);
        let with = |keys: &[&str]| {
            let mut r = record("t", None);
            r.headers = keys
                .iter()
                .map(|k| Header {
                    key: k.to_string(),
                    value: Some(Bytes::from_static(b"v")),
                })
                .collect();
            r
        };
        assert!(!kept(&c, with(&["foo"])));
        assert!(!kept(&c, with(&["bar", "foo", "bar", "foo"])));
        assert!(kept(&c, with(&["bar"])));
        assert!(kept(&c, with(&[])));
        for name in [None, Some("")] {
            let mut keys = vec![("predicates", "p"), ("predicates.p.type", "HasHeaderKey")];
            keys.extend(name.map(|n| ("predicates.p.name", n)));
            assert_eq!(
                chain_of(&keys).unwrap_err(),
                "missing required key `predicates.p.name`: HasHeaderKey needs the header key to look for; set `predicates.p.name`"
            );
        }
    }

    /// Kafka has no RecordIsTombstoneTest; its documentation: true when the value is null.
    #[test]
    fn record_is_tombstone_tests_the_value() {
        let c = with_predicate("RecordIsTombstone", &[], false);
        assert!(!kept(&c, record("t", None)));
        assert!(kept(&c, record("t", Some(schemaless("{}")))));
        assert!(kept(
            &c,
            record("t", Some(ferry_connector_api::Value::String(String::new())))
        ));
    }

    #[test]
    fn an_undeclared_predicate_and_unknown_classes_are_config_errors() {
        assert_eq!(
            chain_of(&[
                ("transforms", "f"),
                ("transforms.f.type", "Filter"),
                ("transforms.f.predicate", "q")
            ])
            .unwrap_err(),
            "invalid value for `transforms.f.predicate`: predicate `q` is not declared; add it to `predicates` and set `predicates.q.type`"
        );
        assert_eq!(
            chain_of(&[
                ("transforms", "f"),
                ("transforms.f.type", "com.example.Mystery")
            ])
            .unwrap_err(),
            format!(
                "invalid value for `transforms.f.type`: unknown transform class `com.example.Mystery`; ferry knows {} (short or with their org.apache.kafka.connect.transforms package)",
                crate::chain::known_transforms().join(", ")
            )
        );
        assert_eq!(
            chain_of(&[("predicates", "p"), ("predicates.p.type", "IsBig")]).unwrap_err(),
            "invalid value for `predicates.p.type`: unknown predicate class `IsBig`; ferry knows HasHeaderKey, RecordIsTombstone, TopicNameMatches (short or with their org.apache.kafka.connect.transforms.predicates package)"
        );
        assert_eq!(
            chain_of(&[("transforms", "f")]).unwrap_err(),
            "missing required key `transforms.f.type`: transform `f` is listed in `transforms`; name its class, e.g. InsertField$Value"
        );
        assert_eq!(
            chain_of(&[("transforms", "f,f"), ("transforms.f.type", "Filter")]).unwrap_err(),
            "invalid value for `transforms`: `f` is listed twice; give each alias once"
        );
        assert_eq!(
            chain_of(&[
                ("transforms", "f"),
                ("transforms.f.type", "Filter"),
                ("transforms.f.negate", "true")
            ])
            .unwrap_err(),
            "invalid value for `transforms.f.negate`: negate applies to a predicate; set `transforms.f.predicate` or remove it"
        );
        assert_eq!(
            chain_of(&[
                ("transforms", "f"),
                ("transforms.f.type", "Filter"),
                ("transforms.f.pattern", "x")
            ])
            .unwrap_err(),
            "invalid value for `transforms.f.pattern`: no transform or predicate reads this key"
        );
    }
}
