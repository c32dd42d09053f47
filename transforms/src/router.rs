//! `RegexRouter` and `TimestampRouter`: change the record's topic.

use std::sync::{Arc, Mutex};

use ferry_connector_api::{ConfigError, SinkRecord};
use regex::Regex;

use crate::datefmt::DateFormat;
use crate::keys::Keys;
use crate::{Result, Transform, TransformError};

/// Replaces a topic that the regular expression matches as a whole.
#[derive(Debug)]
pub(crate) struct RegexRouter {
    regex: Regex,
    /// The replacement in the regex crate's syntax.
    replacement: String,
}

pub(crate) fn regex_router(keys: &mut Keys<'_>) -> Result<Box<dyn Transform>, ConfigError> {
    let regex = keys.regex("regex", "a regular expression for the topic name")?;
    let java = keys.optional_keep_empty("replacement").ok_or_else(|| {
        ConfigError::missing(
            keys.full("replacement"),
            format!(
                "RegexRouter needs the new topic name ($1 for a group); set `{}`",
                keys.full("replacement")
            ),
        )
    })?;
    let replacement = java_replacement(&java, regex.captures_len() - 1)
        .map_err(|reason| keys.invalid("replacement", reason))?;
    Ok(Box::new(RegexRouter { regex, replacement }))
}

/// Java's `Matcher.replaceFirst` syntax (`$1`, `${name}`, `\$`) in the regex crate's
/// (`${1}`, `${name}`, `$$`). Java reads a group number digit by digit while it names a
/// group; so does this.
fn java_replacement(java: &str, groups: usize) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => return Err("it ends in a lone `\\`; write `\\\\` for a backslash".into()),
            },
            '$' => {
                if chars.peek() == Some(&'{') {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    out.push_str(&format!("${{{name}}}"));
                    continue;
                }
                let Some(first) = chars.next().and_then(|d| d.to_digit(10)) else {
                    return Err("`$` must be followed by a group number or {name}; write `\\$` for a dollar sign".into());
                };
                let mut n = first as usize;
                if n > groups {
                    return Err(format!("the regex has no group {n}"));
                }
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    let next = n * 10 + d as usize;
                    if next > groups {
                        break;
                    }
                    n = next;
                    chars.next();
                }
                out.push_str(&format!("${{{n}}}"));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

impl Transform for RegexRouter {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        if self.regex.is_match(&record.topic) {
            let topic = self.regex.replace(&record.topic, self.replacement.as_str());
            let topic: Arc<str> = topic.as_ref().into();
            route(&mut record, topic);
        }
        Ok(Some(record))
    }
}

/// Sets the topic to `topic.format` with `${topic}` and `${timestamp}` (the record's
/// timestamp in `timestamp.format`, in UTC) filled in.
#[derive(Debug)]
pub(crate) struct TimestampRouter {
    topic_format: String,
    timestamp_format: DateFormat,
    /// `timestamp_format.granularity_ms()`.
    span: i64,
    /// The last topic routed: (consumed topic, span index, routed topic), so that the
    /// records of one topic and day share one name without formatting it again.
    last: Mutex<Option<Routed>>,
}

/// A consumed topic, the index of a span of `timestamp.format`, and the routed topic.
type Routed = (Arc<str>, i64, Arc<str>);

pub(crate) fn timestamp_router(keys: &mut Keys<'_>) -> Result<Box<dyn Transform>, ConfigError> {
    let topic_format = keys
        .optional("topic.format")
        .unwrap_or_else(|| "${topic}-${timestamp}".into());
    let timestamp_format = keys
        .date_format("timestamp.format", Some("yyyyMMdd"))?
        .ok_or_else(|| keys.invalid("timestamp.format", "a date format is required"))?;
    Ok(Box::new(TimestampRouter {
        topic_format,
        span: timestamp_format.granularity_ms(),
        timestamp_format,
        last: Mutex::new(None),
    }))
}

impl Transform for TimestampRouter {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>> {
        let Some((millis, _)) = record.timestamp else {
            return Err(TransformError::new(format!(
                "the record has no timestamp to route by ({})",
                record.coordinates()
            )));
        };
        let index = millis.div_euclid(self.span);
        if let Ok(last) = self.last.lock()
            && let Some((topic, i, routed)) = &*last
            && *i == index
            && **topic == *record.topic
        {
            let routed = Arc::clone(routed);
            drop(last);
            route(&mut record, routed);
            return Ok(Some(record));
        }
        let stamp = self
            .timestamp_format
            .format(millis)
            .map_err(TransformError::new)?;
        let routed: Arc<str> = self
            .topic_format
            .replace("${topic}", &record.topic)
            .replace("${timestamp}", &stamp)
            .into();
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Arc::clone(&record.topic), index, Arc::clone(&routed)));
        }
        route(&mut record, routed);
        Ok(Some(record))
    }
}

/// Gives the record its routed topic, keeping the consumed one in `original_topic` (offsets
/// belong to it; see [`SinkRecord`]). Routed back to the consumed name, the record is as
/// it was read.
fn route(record: &mut SinkRecord, topic: Arc<str>) {
    if *record.topic == *topic {
        return;
    }
    let previous = std::mem::replace(&mut record.topic, topic);
    match &record.original_topic {
        None => record.original_topic = Some(previous),
        Some(consumed) if **consumed == *record.topic => {
            record.topic = Arc::clone(consumed);
            record.original_topic = None;
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::Transform;
    use crate::testing::*;

    fn route(regex: &str, replacement: &str, topic: &str) -> String {
        let t = chain(
            "RegexRouter",
            &[("regex", regex), ("replacement", replacement)],
        );
        t.apply(record(topic, None))
            .unwrap()
            .unwrap()
            .topic
            .to_string()
    }

    /// Kafka: RegexRouterTest.staticReplacement, doesntMatch, identity, addPrefix,
    /// addSuffix, slice
    #[test]
    fn regex_router_cases_from_kafka() {
        assert_eq!(route("foo", "bar", "foo"), "bar");
        assert_eq!(route("foo", "bar", "orig"), "orig");
        assert_eq!(route("(.*)", "$1", "orig"), "orig");
        assert_eq!(route("(.*)", "prefix-$1", "orig"), "prefix-orig");
        assert_eq!(route("(.*)", "$1-suffix", "orig"), "orig-suffix");
        assert_eq!(
            route(r"(.*)-(\d\d\d\d\d\d\d\d)", "$1", "index-20160117"),
            "index"
        );
    }

    #[test]
    fn java_replacement_syntax() {
        // `$1a` is group 1 then `a` in Java (the regex crate would read a group named `1a`).
        assert_eq!(route("(.*)", "$1a", "x"), "xa");
        assert_eq!(route("(.*)", r"\$$1", "x"), "$x");
        assert_eq!(route("(?<name>.*)", "${name}!", "x"), "x!");
        // Only a prefix match: Connect matches the whole topic.
        assert_eq!(route("foo", "bar", "foobar"), "foobar");
        assert_eq!(
            chain_err("RegexRouter", &[("regex", "(.*)"), ("replacement", "$2")]),
            "invalid value for `transforms.t.replacement`: the regex has no group 2"
        );
        assert_eq!(
            chain_err("RegexRouter", &[("regex", "(.*")]),
            "invalid value for `transforms.t.regex`: `(.*` is not a regular expression (unclosed group); correct it"
        );
        assert_eq!(
            chain_err("RegexRouter", &[("regex", "(.*)")]),
            "missing required key `transforms.t.replacement`: RegexRouter needs the new topic name ($1 for a group); set `transforms.t.replacement`"
        );
    }

    /// Kafka: TimestampRouterTest.defaultConfiguration
    #[test]
    fn timestamp_router_default_configuration() {
        let t = chain("TimestampRouter", &[]);
        let mut r = record("test", None);
        r.timestamp = Some((
            1483425001864,
            ferry_connector_api::TimestampType::CreateTime,
        ));
        assert_eq!(t.apply(r).unwrap().unwrap().topic.as_ref(), "test-20170103");
    }

    #[test]
    fn timestamp_router_formats_and_needs_a_timestamp() {
        let t = chain(
            "TimestampRouter",
            &[
                ("topic.format", "alerts_${timestamp}_${topic}"),
                ("timestamp.format", "yyyy-MM-dd'T'HH"),
            ],
        );
        let mut r = record("ztf", None);
        r.timestamp = Some((
            1483425001864,
            ferry_connector_api::TimestampType::CreateTime,
        ));
        assert_eq!(
            t.apply(r).unwrap().unwrap().topic.as_ref(),
            "alerts_2017-01-03T06_ztf"
        );
        let err = t.apply(record("ztf", None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "transform `t` (TimestampRouter): the record has no timestamp to route by (topic=ztf partition=0 offset=0)"
        );
        assert_eq!(
            chain_err("TimestampRouter", &[("timestamp.format", "yyyyww")]),
            "invalid value for `transforms.t.timestamp.format`: the date format `yyyyww` uses the pattern letter `w`, which ferry does not support; use letters from yMdHkKhmsSEauDZXz or quote literal text with '"
        );
    }

    /// A routed record keeps its consumed topic for offsets; routing back to it, or not
    /// matching, leaves the record as read.
    #[test]
    fn a_routed_record_keeps_its_consumed_partition() {
        let t = chain(
            "RegexRouter",
            &[("regex", "ztf_(.*)"), ("replacement", "alerts_$1")],
        );
        let r = t.apply(record("ztf_1", None)).unwrap().unwrap();
        assert_eq!(r.topic.as_ref(), "alerts_1");
        assert_eq!(r.original_topic.as_deref(), Some("ztf_1"));
        assert_eq!(r.topic_partition().to_string(), "ztf_1-0");
        assert!(r.coordinates().starts_with("topic=ztf_1 "));
        let same = t.apply(record("other", None)).unwrap().unwrap();
        assert_eq!(same.original_topic, None);
        let back = chain(
            "RegexRouter",
            &[("regex", "alerts_(.*)"), ("replacement", "ztf_$1")],
        );
        let r = back.apply(r).unwrap().unwrap();
        assert_eq!((r.topic.as_ref(), r.original_topic), ("ztf_1", None));
    }

    /// The last routed name is reused only for the same topic and the same day.
    #[test]
    fn timestamp_router_reuses_a_name_only_within_its_day_and_topic() {
        let t = chain("TimestampRouter", &[]);
        let at = |topic: &str, millis: i64| {
            let mut r = record(topic, None);
            r.timestamp = Some((millis, ferry_connector_api::TimestampType::CreateTime));
            t.apply(r).unwrap().unwrap().topic.to_string()
        };
        let day = 86_400_000;
        assert_eq!(at("a", 1483425001864), "a-20170103");
        assert_eq!(at("a", 1483425001864 + 1000), "a-20170103");
        assert_eq!(at("b", 1483425001864), "b-20170103");
        assert_eq!(at("b", 1483425001864 + day), "b-20170104");
        assert_eq!(at("b", 1483425001864 - day), "b-20170102");
    }
}
