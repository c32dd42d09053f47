//! One transform's or predicate's keys, taken from the connector's keys under its prefix
//! (`transforms.a.`), so that errors name the full key and keys nobody took are left for the
//! runtime to report as unknown.

use ferry_connector_api::{ConfigError, ConnectorProps};
use regex::Regex;

use crate::datefmt;

#[derive(Debug)]
pub(crate) struct Keys<'p> {
    props: &'p mut ConnectorProps,
    prefix: String,
    /// The class's short name (`InsertField$Value`), for hints.
    pub(crate) class: &'static str,
    /// The connector's `header.converter`, for transforms that write headers.
    pub(crate) header_converter: crate::HeaderConverter,
}

impl<'p> Keys<'p> {
    pub(crate) fn new(props: &'p mut ConnectorProps, prefix: String, class: &'static str) -> Self {
        Self {
            props,
            prefix,
            class,
            header_converter: crate::HeaderConverter::default(),
        }
    }

    /// The connector key for one of this transform's keys.
    pub(crate) fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub(crate) fn optional(&mut self, key: &str) -> Option<String> {
        let full = self.full(key);
        self.props.take(&full)
    }

    /// A key whose empty value is a value (Connect's `static.value=`, `replacement=`).
    pub(crate) fn optional_keep_empty(&mut self, key: &str) -> Option<String> {
        let full = self.full(key);
        let present = self.props.remaining().any(|(k, _)| k == full);
        let value = self.props.take(&full);
        if present && value.is_none() {
            Some(String::new())
        } else {
            value
        }
    }

    pub(crate) fn required(&mut self, key: &str, what: &str) -> Result<String, ConfigError> {
        let full = self.full(key);
        let class = self.class;
        self.props
            .take_required(&full, &format!("{class} needs {what}; set `{full}`"))
    }

    /// A comma-separated list, as Connect's `ConfigDef.Type.LIST` reads it.
    pub(crate) fn list(&mut self, key: &str) -> Vec<String> {
        self.optional(key)
            .map(|v| split_list(&v))
            .unwrap_or_default()
    }

    pub(crate) fn required_list(
        &mut self,
        key: &str,
        what: &str,
    ) -> Result<Vec<String>, ConfigError> {
        let list = split_list(&self.required(key, what)?);
        if list.is_empty() {
            return Err(self.invalid(key, format!("the list is empty; give {what}")));
        }
        Ok(list)
    }

    pub(crate) fn bool(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        let full = self.full(key);
        Ok(self.props.take_bool(&full)?.unwrap_or(default))
    }

    pub(crate) fn regex(&mut self, key: &str, what: &str) -> Result<Regex, ConfigError> {
        let text = self.required(key, what)?;
        // Connect matches the whole topic (`Matcher.matches`); anchoring does the same.
        Regex::new(&format!("^(?:{text})$")).map_err(|e| {
            let cause = match e {
                regex::Error::Syntax(s) => s
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("error:"))
                    .unwrap_or("invalid syntax")
                    .trim_start_matches("error:")
                    .trim()
                    .to_string(),
                other => other.to_string(),
            };
            self.invalid(
                key,
                format!(
                    "`{}` is not a regular expression ({cause}); correct it",
                    ferry_connector_api::text::shown(&text)
                ),
            )
        })
    }

    /// A Java `SimpleDateFormat` pattern.
    pub(crate) fn date_format(
        &mut self,
        key: &str,
        default: Option<&str>,
    ) -> Result<Option<datefmt::DateFormat>, ConfigError> {
        let Some(text) = self.optional(key).or(default.map(str::to_string)) else {
            return Ok(None);
        };
        datefmt::DateFormat::parse(&text)
            .map(Some)
            .map_err(|reason| self.invalid(key, reason))
    }

    pub(crate) fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.full(key), reason)
    }
}

pub(crate) fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
