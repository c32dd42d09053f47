use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::ConfigError;
use crate::text::shown;

/// A connector's configuration keys, consumed as they are read.
///
/// Every `take_*` call removes the key and remembers that it was asked for, so after a
/// connector has read its configuration the runtime knows both the keys nobody read
/// ([`ConnectorProps::remaining`]) and the keys the connector understands
/// ([`ConnectorProps::known_keys`]) — enough to reject a misspelt key with a suggestion.
#[derive(Clone, Default)]
pub struct ConnectorProps {
    values: BTreeMap<String, String>,
    asked: BTreeSet<String>,
    asked_prefixes: BTreeSet<String>,
}

impl fmt::Debug for ConnectorProps {
    // Values may hold credentials (e.g. `gcp.credentials.json`); list keys only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorProps")
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ConnectorProps {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self {
            values,
            ..Self::default()
        }
    }

    /// Props from `key, value` pairs (a later pair replaces an earlier one of its key), as
    /// tests and examples write them.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// Takes a key's value; an empty value counts as absent (as Kafka Connect treats
    /// `key=` for most optional settings).
    pub fn take(&mut self, key: &str) -> Option<String> {
        self.asked.insert(key.to_string());
        self.values.remove(key).filter(|v| !v.trim().is_empty())
    }

    /// Takes the first key present among spellings that mean the same setting (e.g.
    /// `delayThresholdMs` and `maxDelayThresholdMs`); it is an error to give more than one.
    pub fn take_any(&mut self, keys: &[&str]) -> Result<Option<(String, String)>, ConfigError> {
        let mut found: Option<(String, String)> = None;
        for key in keys {
            if let Some(v) = self.take(key) {
                if let Some((first, _)) = &found {
                    return Err(ConfigError::Conflict {
                        first: first.clone(),
                        second: (*key).to_string(),
                        reason: "both spell the same setting; keep one".into(),
                    });
                }
                found = Some(((*key).to_string(), v));
            }
        }
        Ok(found)
    }

    /// Takes a key that must be set. When it is absent but an unknown key looks like its
    /// misspelling (`directory.pth`), the error names the misspelling instead.
    pub fn take_required(&mut self, key: &str, hint: &str) -> Result<String, ConfigError> {
        match self.take(key) {
            Some(v) => Ok(v),
            None => Err(self.missing(&[key], hint)),
        }
    }

    /// The error for a required setting that is absent, spelt as any of `keys` (the first
    /// is the one named): a [`ConfigError::Misspelt`] when a key nobody has taken is a likely
    /// misspelling of one of them, else [`ConfigError::Missing`].
    pub fn missing(&self, keys: &[&str], hint: &str) -> ConfigError {
        let near = self.values.keys().find_map(|written| {
            suggest(written, keys.iter().copied()).map(|intended| (written, intended))
        });
        match near {
            Some((written, intended)) => ConfigError::Misspelt {
                written: written.clone(),
                intended,
            },
            None => ConfigError::missing(keys.first().copied().unwrap_or_default(), hint),
        }
    }

    /// Takes and parses a key; `what` describes the expected form for the error line.
    pub fn take_parsed<T: FromStr>(
        &mut self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ConfigError::invalid(key, format!("`{}` is not {what}", shown(v.trim())))
            }),
        }
    }

    /// Java's `Boolean.parseBoolean` accepts only `true`/`false` (any case) in Connect's
    /// `ConfigDef`; anything else is an error rather than a silent `false`.
    pub fn take_bool(&mut self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(ConfigError::invalid(
                    key,
                    format!("`{}` is not a boolean (use true or false)", shown(v.trim())),
                )),
            },
        }
    }

    /// Takes every key that starts with `prefix`, returning them with the prefix removed.
    pub fn take_prefixed(&mut self, prefix: &str) -> BTreeMap<String, String> {
        self.asked_prefixes.insert(prefix.to_string());
        let keys: Vec<String> = self
            .values
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                let v = self.values.remove(&k)?;
                Some((k[prefix.len()..].to_string(), v))
            })
            .collect()
    }

    /// Keys not taken by anyone so far.
    pub fn remaining(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Removes and returns the keys nobody took.
    pub fn drain_remaining(&mut self) -> BTreeMap<String, String> {
        std::mem::take(&mut self.values)
    }

    /// Every key some reader asked for, present or not.
    pub fn known_keys(&self) -> impl Iterator<Item = &str> {
        self.asked.iter().map(String::as_str)
    }

    /// Every prefix some reader asked for.
    pub fn known_prefixes(&self) -> impl Iterator<Item = &str> {
        self.asked_prefixes.iter().map(String::as_str)
    }
}

/// The closest of `known` to `key`, when it is close enough for `key` to be its likely
/// misspelling: a Damerau–Levenshtein distance (case ignored) of at most 2 (or an eighth of
/// the known key's length, for long keys), and under half its length, so that short keys
/// are not matched by strangers.
pub fn suggest<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    known
        .into_iter()
        .filter(|k| *k != key)
        .map(|k| {
            (
                strsim::damerau_levenshtein(&lower, &k.to_ascii_lowercase()),
                k,
            )
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 8) && *d < k.len() / 2)
        .min()
        .map(|(_, k)| k.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> ConnectorProps {
        ConnectorProps::from_pairs(pairs)
    }

    #[test]
    fn taking_removes_and_remembers() {
        let mut p = props(&[("file", "/tmp/out"), ("extra", "1")]);
        assert_eq!(p.take("file").as_deref(), Some("/tmp/out"));
        assert_eq!(p.take("file"), None);
        assert_eq!(p.take("absent"), None);
        assert_eq!(p.remaining().collect::<Vec<_>>(), vec![("extra", "1")]);
        assert_eq!(p.known_keys().collect::<Vec<_>>(), vec!["absent", "file"]);
    }

    #[test]
    fn empty_values_count_as_absent() {
        let mut p = props(&[("file", "  ")]);
        assert_eq!(p.take("file"), None);
    }

    #[test]
    fn parse_errors_name_key_and_value() {
        let mut p = props(&[("tasks.max", "ten")]);
        let err = p
            .take_parsed::<u32>("tasks.max", "a positive integer")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for `tasks.max`: `ten` is not a positive integer"
        );
    }

    #[test]
    fn booleans_are_strict() {
        let mut p = props(&[("a", "TRUE"), ("b", "false"), ("c", "yes")]);
        assert_eq!(p.take_bool("a"), Ok(Some(true)));
        assert_eq!(p.take_bool("b"), Ok(Some(false)));
        assert!(p.take_bool("c").unwrap_err().to_string().contains("`yes`"));
    }

    #[test]
    fn alternative_spellings_conflict_when_both_given() {
        let mut p = props(&[("delayThresholdMs", "5"), ("maxDelayThresholdMs", "6")]);
        let err = p
            .take_any(&["delayThresholdMs", "maxDelayThresholdMs"])
            .unwrap_err();
        assert!(matches!(err, ConfigError::Conflict { .. }));
        let mut p = props(&[("maxDelayThresholdMs", "6")]);
        assert_eq!(
            p.take_any(&["delayThresholdMs", "maxDelayThresholdMs"]),
            Ok(Some(("maxDelayThresholdMs".into(), "6".into())))
        );
    }

    #[test]
    fn suggestions_catch_typos_not_strangers() {
        let known = ["topics", "topics.regex", "tasks.max", "connector.class"];
        assert_eq!(suggest("topic", known).as_deref(), Some("topics"));
        assert_eq!(suggest("task.max", known).as_deref(), Some("tasks.max"));
        assert_eq!(
            suggest("Topics.Regex", known).as_deref(),
            Some("topics.regex")
        );
        assert_eq!(
            suggest("connecter.class", known).as_deref(),
            Some("connector.class")
        );
        assert_eq!(suggest("cps.project", known), None);
        assert_eq!(suggest("a", known), None);
    }

    #[test]
    fn a_missing_required_key_is_reported_as_its_misspelling() {
        let mut p = props(&[("directory.pth", "/out"), ("tasks.max", "2")]);
        assert_eq!(
            p.take_required("directory.path", "where to write"),
            Err(ConfigError::Misspelt {
                written: "directory.pth".into(),
                intended: "directory.path".into()
            })
        );
        // Nothing like it: the plain missing-key error.
        let mut p = props(&[("tasks.max", "2")]);
        assert_eq!(
            p.take_required("directory.path", "where to write"),
            Err(ConfigError::missing("directory.path", "where to write"))
        );
        // Any of several spellings of one setting.
        let p = props(&[("topic.regex", "a.*")]);
        assert_eq!(
            p.missing(&["topics", "topics.regex"], "set one"),
            ConfigError::Misspelt {
                written: "topic.regex".into(),
                intended: "topics.regex".into()
            }
        );
        // A key already taken is never blamed.
        let mut p = props(&[("topics", "t")]);
        p.take("topics");
        assert_eq!(
            p.missing(&["topics.regex"], "set one"),
            ConfigError::missing("topics.regex", "set one")
        );
    }

    #[test]
    fn long_values_are_cut_in_errors() {
        let big = "9".repeat(1 << 20) + "x";
        let mut p = props(&[("tasks.max", big.as_str())]);
        let err = p.take_parsed::<u32>("tasks.max", "a number").unwrap_err();
        assert!(err.to_string().len() < 250, "{err}");
        assert!(err.to_string().contains("… (1048577 bytes)"), "{err}");
    }

    #[test]
    fn prefixed_keys_come_out_stripped() {
        let mut p = props(&[
            ("consumer.override.a", "1"),
            ("consumer.override.b", "2"),
            ("x", "3"),
        ]);
        let got = p.take_prefixed("consumer.override.");
        assert_eq!(got.get("a").map(String::as_str), Some("1"));
        assert_eq!(got.len(), 2);
        assert_eq!(p.remaining().count(), 1);
    }
}
