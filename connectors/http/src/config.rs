//! The connector's keys: Confluent's `HttpSinkConnector` names and defaults, with the
//! names of Aiven's `http-connector-for-apache-kafka` accepted where they mean the same
//! setting. Pure: nothing here does I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use ferry_connector_api::text::shown;
use ferry_connector_api::{ConfigError, ConnectorProps};

/// A credential. `Debug` and `Display` print `[redacted]`, so a config printed whole, or
/// an error that names it, never shows the value.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `request.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// `request.body.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// Each record's value as text, unchanged.
    String,
    /// Each record's value as a JSON document (see `request::encode`).
    Json,
}

/// `behavior.on.null.values`: what a record without a value (a tombstone) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullValues {
    /// Skipped silently (Confluent's default).
    Ignore,
    /// Skipped with a log line naming the record.
    Log,
    /// A record error, handled by `errors.tolerance`.
    Fail,
}

/// `report.errors.as`: the value of a record on the error topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorsAs {
    /// A sentence saying what failed (Confluent's default).
    ErrorString,
    /// The server's response body.
    HttpResponse,
}

/// `oauth2.client.auth.mode`: how the client id and secret reach the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMode {
    /// HTTP basic authentication (Confluent's default).
    Header,
    /// `client_id` and `client_secret` in the form body.
    Url,
}

/// OAuth2 client credentials grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2 {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Sent only when set (Confluent sends `any` by default, which some identity providers
    /// refuse).
    pub scope: Option<String>,
    pub auth_mode: ClientAuthMode,
    /// The token's property in the token endpoint's JSON answer.
    pub token_property: String,
}

/// `auth.type` (or Aiven's `http.authorization.type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic {
        user: String,
        password: Secret,
    },
    /// `Authorization: Bearer <token>` (`bearer.token`).
    Bearer(Secret),
    /// A fixed `Authorization` header (Aiven's `static` with `http.headers.authorization`).
    Static(Secret),
    OAuth2(OAuth2),
}

/// HTTP status codes: single codes and ranges, in Confluent's `retry.on.status.codes`
/// syntax (`400-` = 400 and above, `500-599`, `408,429`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusCodes(Vec<(u16, u16)>);

impl StatusCodes {
    pub fn parse(key: &str, text: &str) -> Result<Self, ConfigError> {
        let bad = |part: &str| {
            ConfigError::invalid(
                key,
                format!(
                    "`{}` is not a status code or range (write e.g. `400-`, `500-599` or `408,429`)",
                    shown(part)
                ),
            )
        };
        let code = |s: &str, part: &str| -> Result<u16, ConfigError> {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| bad(part))
        };
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let range = match part.split_once('-') {
                None => {
                    let c = code(part, part)?;
                    (c, c)
                }
                Some((lo, "")) => (code(lo, part)?, 599),
                Some((lo, hi)) => (code(lo, part)?, code(hi, part)?),
            };
            if range.0 > range.1 {
                return Err(bad(part));
            }
            ranges.push(range);
        }
        Ok(Self(ranges))
    }

    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

/// Reply topics (Confluent's reporter): where responses and failures are produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// `reporter.result.topic.name`: a topic for each success answer, or none.
    pub result_topic: Option<String>,
    /// `reporter.error.topic.name`: a topic for each request that failed for good, or none.
    pub error_topic: Option<String>,
    /// `reporter.bootstrap.servers` and the other `reporter.*` client settings, without the
    /// prefix, for the runtime's producer. Values may be credentials: never printed.
    pub client: BTreeMap<String, Secret>,
    pub errors_as: ErrorsAs,
}

/// The HTTP sink's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `http.api.url` (Aiven: `http.url`); may hold `${topic}` and `${key}`.
    pub url: String,
    /// `request.method` (POST).
    pub method: Method,
    /// `headers` split at `header.separator` (`|`), Aiven's `http.headers.additional`
    /// (comma-separated) and `http.headers.content.type`. Values may be credentials.
    pub headers: Vec<(String, Secret)>,
    /// `request.body.format` (string).
    pub body_format: BodyFormat,
    /// `batch.max.size` (1; Aiven's `batching.enabled=true`: 500).
    pub batch_max_size: usize,
    /// `batch.prefix` ("").
    pub batch_prefix: String,
    /// `batch.separator` (`,`; Aiven with batching: a newline).
    pub batch_separator: String,
    /// `batch.suffix` ("").
    pub batch_suffix: String,
    /// `max.retries` (10): attempts after the first, per request, before the batch is
    /// handed back to the runtime (which backs off and redelivers; at most ~3 s of retries for a
    /// server that cannot answer) or, for a 4xx, reported.
    pub max_retries: u32,
    /// `retry.backoff.ms` (3000): the wait between attempts, with ±20 % jitter.
    pub retry_backoff: Duration,
    /// `retry.on.status.codes` (`400-`).
    pub retry_on: StatusCodes,
    /// `http.connect.timeout.ms` (30 000).
    pub connect_timeout: Duration,
    /// `http.request.timeout.ms` (30 000; Aiven's `http.timeout` in seconds).
    pub request_timeout: Duration,
    pub auth: Auth,
    /// `behavior.on.null.values` (ignore).
    pub null_values: NullValues,
    pub reporter: Option<Reporter>,
}

fn ms(props: &mut ConnectorProps, key: &str, default: u64) -> Result<Duration, ConfigError> {
    let v = props
        .take_parsed::<u64>(key, "a number of milliseconds")?
        .unwrap_or(default);
    Ok(Duration::from_millis(v))
}

/// One of `choices` (case ignored), or the error listing them.
fn choice<T: Copy>(key: &str, value: &str, choices: &[(&str, T)]) -> Result<T, ConfigError> {
    let v = value.trim();
    choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(v))
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            ConfigError::invalid(
                key,
                format!("`{}` is not one of {}", shown(v), names.join(", ")),
            )
        })
}

/// `Name:Value` pairs separated by `sep`.
fn parse_headers(key: &str, text: &str, sep: &str) -> Result<Vec<(String, Secret)>, ConfigError> {
    let mut out = Vec::new();
    for part in text.split(sep).map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = part.split_once(':') else {
            // The part may be a credential: name only its position.
            return Err(ConfigError::invalid(
                key,
                format!(
                    "header {} has no `:` (write Name:Value, separated by `{sep}`)",
                    out.len() + 1
                ),
            ));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::invalid(
                key,
                format!("`{}` is not a header name", shown(name)),
            ));
        }
        out.push((name.to_string(), Secret::new(value.trim())));
    }
    Ok(out)
}

/// `http://` or `https://` and a host; user info is refused so that no credential
/// travels in a URL that log lines show.
fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            ConfigError::invalid(key, "must start with http:// or https://".to_string())
        })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(ConfigError::invalid(
            key,
            "holds a user and password; give them as connection.user and connection.password",
        ));
    }
    if authority.is_empty() {
        return Err(ConfigError::invalid(key, "has no host"));
    }
    Ok(())
}

impl HttpConfig {
    pub fn from_props(props: &mut ConnectorProps) -> Result<Self, ConfigError> {
        let (url_key, url) = match props.take_any(&["http.api.url", "http.url"])? {
            Some(found) => found,
            None => {
                return Err(props.missing(
                    &["http.api.url", "http.url"],
                    "the API every record is sent to, e.g. http://localhost:8090/api/transformations/execute",
                ));
            }
        };
        let url = url.trim().to_string();
        check_url(&url_key, &url)?;

        // Confluent's ssl.enabled: the URL's scheme decides here; a contradiction is an error.
        if props.take_bool("ssl.enabled")? == Some(true) && url.starts_with("http://") {
            return Err(ConfigError::Conflict {
                first: "ssl.enabled".into(),
                second: url_key,
                reason: "ssl.enabled=true needs an https:// URL".into(),
            });
        }
        // Client certificates and private trust stores are not supported yet: refused by
        // name rather than ignored (TLS uses the system's roots).
        if let Some(k) = props.take_prefixed("https.ssl.").into_keys().next() {
            return Err(ConfigError::invalid(
                format!("https.ssl.{k}"),
                "is not supported by ferry yet (TLS uses the system's trusted roots); remove it",
            ));
        }
        let method = match props.take("request.method") {
            None => Method::Post,
            Some(v) => choice(
                "request.method",
                &v,
                &[
                    ("POST", Method::Post),
                    ("PUT", Method::Put),
                    ("PATCH", Method::Patch),
                ],
            )?,
        };

        let separator = props.take("header.separator").unwrap_or_else(|| "|".into());
        let mut headers = match props.take("headers") {
            Some(h) => parse_headers("headers", &h, &separator)?,
            None => Vec::new(),
        };
        if let Some(h) = props.take("http.headers.additional") {
            headers.extend(parse_headers("http.headers.additional", &h, ",")?);
        }
        if let Some(ct) = props.take("http.headers.content.type") {
            headers.push(("Content-Type".into(), Secret::new(ct.trim())));
        }

        let body_format = match props.take("request.body.format") {
            None => BodyFormat::String,
            Some(v) => choice(
                "request.body.format",
                &v,
                &[("string", BodyFormat::String), ("json", BodyFormat::Json)],
            )?,
        };

        let batching = props.take_bool("batching.enabled")?;
        let batch_max_size = props.take_parsed::<usize>("batch.max.size", "a number of records")?;
        let batch_max_size = match (batching, batch_max_size) {
            (Some(false), Some(n)) if n > 1 => {
                return Err(ConfigError::Conflict {
                    first: "batching.enabled".into(),
                    second: "batch.max.size".into(),
                    reason: "batching.enabled=false sends one record per request".into(),
                });
            }
            (Some(false), _) => 1,
            (Some(true), None) => 500,
            (_, Some(0)) => {
                return Err(ConfigError::invalid("batch.max.size", "must be at least 1"));
            }
            (_, Some(n)) => n,
            (None, None) => 1,
        };
        let json_array = props.take_bool("batch.json.as.array")?.unwrap_or(false);
        let default_separator = match (batching, json_array) {
            (_, true) => ",",
            (Some(true), false) => "\n",
            _ => ",",
        };
        let batch_prefix = props
            .take("batch.prefix")
            .unwrap_or_else(|| if json_array { "[" } else { "" }.into());
        let batch_separator = props
            .take("batch.separator")
            .unwrap_or_else(|| default_separator.into());
        let batch_suffix = props
            .take("batch.suffix")
            .unwrap_or_else(|| if json_array { "]" } else { "" }.into());

        let max_retries = props
            .take_parsed::<u32>("max.retries", "a number of retries")?
            .unwrap_or(10);
        let retry_backoff = ms(props, "retry.backoff.ms", 3000)?;
        // Confluent's retry.backoff.policy: ferry waits retry.backoff.ms with jitter between
        // attempts of a request and leaves long outages to the runtime's growing back-off;
        // the key is read so that files naming it still load.
        if let Some(p) = props.take("retry.backoff.policy") {
            choice(
                "retry.backoff.policy",
                &p,
                &[("EXPONENTIAL_WITH_JITTER", ()), ("CONSTANT_VALUE", ())],
            )?;
        }
        let retry_on = match props.take("retry.on.status.codes") {
            Some(v) => StatusCodes::parse("retry.on.status.codes", &v)?,
            None => StatusCodes::parse("retry.on.status.codes", "400-")?,
        };
        let connect_timeout = ms(props, "http.connect.timeout.ms", 30_000)?;
        let request_timeout = match (
            props.take_parsed::<u64>("http.request.timeout.ms", "a number of milliseconds")?,
            props.take_parsed::<u64>("http.timeout", "a number of seconds")?,
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Conflict {
                    first: "http.request.timeout.ms".into(),
                    second: "http.timeout".into(),
                    reason: "both spell the request timeout; keep one".into(),
                });
            }
            (Some(ms), None) => Duration::from_millis(ms),
            (None, Some(s)) => Duration::from_secs(s),
            (None, None) => Duration::from_millis(30_000),
        };
        for (key, d) in [
            ("http.connect.timeout.ms", connect_timeout),
            ("http.request.timeout.ms", request_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::invalid(key, "must be greater than 0"));
            }
        }

        let auth = auth(props)?;

        let null_values = match props.take("behavior.on.null.values") {
            None => NullValues::Ignore,
            Some(v) if v.trim().eq_ignore_ascii_case("delete") => {
                return Err(ConfigError::invalid(
                    "behavior.on.null.values",
                    "`delete` is not supported by ferry yet (use ignore, log or fail)",
                ));
            }
            Some(v) => choice(
                "behavior.on.null.values",
                &v,
                &[
                    ("ignore", NullValues::Ignore),
                    ("log", NullValues::Log),
                    ("fail", NullValues::Fail),
                ],
            )?,
        };
        // Confluent's behavior.on.error: ferry's errors.tolerance decides instead.
        if let Some(v) = props.take("behavior.on.error") {
            choice(
                "behavior.on.error",
                &v,
                &[("fail", ()), ("log", ()), ("ignore", ())],
            )?;
            tracing::info!(
                "behavior.on.error is read but errors.tolerance decides what a rejected request does (none: the task fails; all: it is logged, reported and skipped)."
            );
        }

        let reporter = reporter(props)?;

        Ok(Self {
            url,
            method,
            headers,
            body_format,
            batch_max_size,
            batch_prefix,
            batch_separator,
            batch_suffix,
            max_retries,
            retry_backoff,
            retry_on,
            connect_timeout,
            request_timeout,
            auth,
            null_values,
            reporter,
        })
    }

    /// The URL as log lines show it: without query (it may carry an API key).
    pub fn url_shown(&self) -> &str {
        self.url.split(['?', '#']).next().unwrap_or_default()
    }
}

fn auth(props: &mut ConnectorProps) -> Result<Auth, ConfigError> {
    #[derive(Clone, Copy)]
    enum Kind {
        None,
        Basic,
        Bearer,
        Static,
        OAuth2,
    }
    let kind = match props.take_any(&["auth.type", "http.authorization.type"])? {
        None => Kind::None,
        Some((key, v)) => choice(
            &key,
            &v,
            &[
                ("none", Kind::None),
                ("basic", Kind::Basic),
                ("bearer", Kind::Bearer),
                ("static", Kind::Static),
                ("oauth2", Kind::OAuth2),
            ],
        )?,
    };
    let user = props.take("connection.user");
    let password = props.take("connection.password").map(Secret::new);
    let bearer = props.take("bearer.token").map(Secret::new);
    let authorization = props.take("http.headers.authorization").map(Secret::new);
    let token_url = props.take_any(&["oauth2.token.url", "oauth2.access.token.url"])?;
    let client_id = props.take("oauth2.client.id");
    let client_secret = props.take("oauth2.client.secret").map(Secret::new);
    let scope = props.take("oauth2.client.scope");
    let mode = props.take_any(&[
        "oauth2.client.auth.mode",
        "oauth2.client.authorization.mode",
    ])?;
    let property = props.take_any(&["oauth2.token.property", "oauth2.response.token.property"])?;
    // Confluent's extra token request headers and proxy settings are not supported: say so
    // rather than ignore them silently.
    for key in [
        "oauth2.client.headers",
        "http.proxy.host",
        "http.proxy.port",
    ] {
        if props.take(key).is_some() {
            return Err(ConfigError::invalid(
                key,
                "is not supported by ferry yet; remove it",
            ));
        }
    }
    let need =
        |v: Option<String>, key: &str, hint: &str| v.ok_or_else(|| ConfigError::missing(key, hint));
    Ok(match kind {
        Kind::None => Auth::None,
        Kind::Basic => Auth::Basic {
            user: need(user, "connection.user", "auth.type=BASIC needs a user")?,
            password: password.ok_or_else(|| {
                ConfigError::missing("connection.password", "auth.type=BASIC needs a password")
            })?,
        },
        Kind::Bearer => Auth::Bearer(bearer.ok_or_else(|| {
            ConfigError::missing("bearer.token", "auth.type=BEARER needs the token")
        })?),
        Kind::Static => Auth::Static(authorization.ok_or_else(|| {
            ConfigError::missing(
                "http.headers.authorization",
                "http.authorization.type=static needs the Authorization header's value",
            )
        })?),
        Kind::OAuth2 => {
            let token_url = match token_url {
                Some((key, url)) => {
                    check_url(&key, url.trim())?;
                    url.trim().to_string()
                }
                None => {
                    return Err(ConfigError::missing(
                        "oauth2.token.url",
                        "auth.type=OAUTH2 needs the token endpoint",
                    ));
                }
            };
            OAuth2 {
                token_url,
                client_id: need(
                    client_id,
                    "oauth2.client.id",
                    "auth.type=OAUTH2 needs a client id",
                )?,
                client_secret: client_secret.ok_or_else(|| {
                    ConfigError::missing(
                        "oauth2.client.secret",
                        "auth.type=OAUTH2 needs a client secret",
                    )
                })?,
                scope,
                auth_mode: match mode {
                    None => ClientAuthMode::Header,
                    Some((key, v)) => choice(
                        &key,
                        &v,
                        &[
                            ("header", ClientAuthMode::Header),
                            ("url", ClientAuthMode::Url),
                        ],
                    )?,
                },
                token_property: property.map_or_else(|| "access_token".into(), |(_, v)| v),
            }
            .into()
        }
    })
}

impl From<OAuth2> for Auth {
    fn from(o: OAuth2) -> Self {
        Auth::OAuth2(o)
    }
}

fn reporter(props: &mut ConnectorProps) -> Result<Option<Reporter>, ConfigError> {
    let result_topic = props.take("reporter.result.topic.name");
    let error_topic = props.take("reporter.error.topic.name");
    // Topic creation settings: ferry's producer does not create topics (the broker's
    // auto-creation or the operator does).
    for key in [
        "reporter.result.topic.replication.factor",
        "reporter.result.topic.partitions",
        "reporter.error.topic.replication.factor",
        "reporter.error.topic.partitions",
    ] {
        if props.take(key).is_some() {
            tracing::info!(
                key,
                "Reply topics are not created by ferry; this key is ignored (create the topic, or let the broker auto-create it)."
            );
        }
    }
    let errors_as = match props.take("report.errors.as") {
        None => ErrorsAs::ErrorString,
        Some(v) => choice(
            "report.errors.as",
            &v,
            &[
                ("error_string", ErrorsAs::ErrorString),
                ("http_response", ErrorsAs::HttpResponse),
            ],
        )?,
    };
    let client: BTreeMap<String, Secret> = props
        .take_prefixed("reporter.")
        .into_iter()
        .map(|(k, v)| (k, Secret::new(v)))
        .collect();
    if result_topic.is_none() && error_topic.is_none() {
        if let Some(k) = client.keys().next() {
            return Err(ConfigError::invalid(
                format!("reporter.{k}"),
                "reporter.* client settings need reporter.result.topic.name or reporter.error.topic.name",
            ));
        }
        return Ok(None);
    }
    for (key, topic) in [
        ("reporter.result.topic.name", &result_topic),
        ("reporter.error.topic.name", &error_topic),
    ] {
        if let Some(t) = topic {
            let ok = t.len() <= 249
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-${}".contains(c));
            if !ok {
                return Err(ConfigError::invalid(
                    key,
                    format!("`{}` is not a Kafka topic name", shown(t)),
                ));
            }
        }
    }
    Ok(Some(Reporter {
        result_topic,
        error_topic,
        client,
        errors_as,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> ConnectorProps {
        ConnectorProps::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn config(pairs: &[(&str, &str)]) -> Result<HttpConfig, ConfigError> {
        let mut p = props(pairs);
        let c = HttpConfig::from_props(&mut p)?;
        let left: Vec<_> = p.remaining().map(|(k, _)| k.to_string()).collect();
        assert!(left.is_empty(), "keys not taken: {left:?}");
        Ok(c)
    }

    #[test]
    fn confluent_defaults() {
        let c = config(&[("http.api.url", "http://localhost:8090/api/x")]).unwrap();
        assert_eq!(c.method, Method::Post);
        assert_eq!(c.body_format, BodyFormat::String);
        assert_eq!(c.batch_max_size, 1);
        assert_eq!(c.batch_separator, ",");
        assert_eq!(c.max_retries, 10);
        assert_eq!(c.retry_backoff, Duration::from_millis(3000));
        assert!(c.retry_on.contains(400) && c.retry_on.contains(503));
        assert!(!c.retry_on.contains(302));
        assert_eq!(c.connect_timeout, Duration::from_secs(30));
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.auth, Auth::None);
        assert_eq!(c.null_values, NullValues::Ignore);
        assert_eq!(c.reporter, None);
    }

    #[test]
    fn status_code_syntax() {
        let s = StatusCodes::parse("k", "400-, 500-599,408").unwrap();
        assert!(s.contains(400) && s.contains(599) && s.contains(408));
        let s = StatusCodes::parse("k", "500-").unwrap();
        assert!(!s.contains(499) && s.contains(500) && s.contains(504));
        let s = StatusCodes::parse("k", "429").unwrap();
        assert!(s.contains(429) && !s.contains(430));
        assert!(StatusCodes::parse("k", "").unwrap() == StatusCodes::default());
        let err = StatusCodes::parse("retry.on.status.codes", "500-400").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for `retry.on.status.codes`: `500-400` is not a status code or range (write e.g. `400-`, `500-599` or `408,429`)"
        );
        assert!(StatusCodes::parse("k", "abc").is_err());
        assert!(StatusCodes::parse("k", "99").is_err());
    }

    #[test]
    fn headers_split_at_the_separator_and_hide_their_values() {
        let c = config(&[
            ("http.api.url", "https://api.example/x"),
            (
                "headers",
                "Content-Type:application/json; x|X-Api-Key: s3cret",
            ),
        ])
        .unwrap();
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.headers[0].0, "Content-Type");
        assert_eq!(c.headers[0].1.expose(), "application/json; x");
        assert_eq!(c.headers[1].1.expose(), "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = config(&[
            ("http.api.url", "https://api.example/x"),
            ("header.separator", ";"),
            ("headers", "A:1;B:2"),
        ])
        .unwrap();
        assert_eq!(c.headers.len(), 2);
        let err = config(&[
            ("http.api.url", "http://h/"),
            ("headers", "Authorization Bearer s3cret"),
        ])
        .unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(err.to_string().contains("header 1 has no `:`"), "{err}");
    }

    #[test]
    fn aiven_names_map_to_the_same_settings() {
        let c = config(&[
            ("http.url", "http://localhost:1/x"),
            ("http.authorization.type", "static"),
            ("http.headers.authorization", "Bearer t0ken"),
            ("http.headers.content.type", "application/json"),
            ("http.headers.additional", "X-A:1,X-B:2"),
            ("batching.enabled", "true"),
            ("http.timeout", "5"),
            ("oauth2.access.token.url", "http://idp/token"),
        ])
        .unwrap();
        assert_eq!(c.url, "http://localhost:1/x");
        assert_eq!(c.auth, Auth::Static(Secret::new("Bearer t0ken")));
        assert_eq!(c.batch_max_size, 500);
        assert_eq!(c.batch_separator, "\n");
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        assert_eq!(c.headers.len(), 3);
        let err = config(&[("http.url", "http://a/"), ("http.api.url", "http://b/")]).unwrap_err();
        assert!(matches!(err, ConfigError::Conflict { .. }), "{err}");
        let err = config(&[
            ("http.url", "http://a/"),
            ("batching.enabled", "false"),
            ("batch.max.size", "10"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("one record per request"), "{err}");
    }

    #[test]
    fn auth_kinds_need_their_keys_and_hide_secrets() {
        let c = config(&[
            ("http.api.url", "http://h/"),
            ("auth.type", "BASIC"),
            ("connection.user", "hd"),
            ("connection.password", "pw-123"),
        ])
        .unwrap();
        assert!(
            matches!(&c.auth, Auth::Basic { user, password } if user == "hd" && password.expose() == "pw-123")
        );
        assert!(!format!("{c:?}").contains("pw-123"));
        let err = config(&[
            ("http.api.url", "http://h/"),
            ("auth.type", "basic"),
            ("connection.user", "u"),
        ])
        .unwrap_err();
        assert_eq!(err.key(), "connection.password");
        let c = config(&[
            ("http.api.url", "http://h/"),
            ("auth.type", "OAUTH2"),
            ("oauth2.token.url", "http://idp/token"),
            ("oauth2.client.id", "cid"),
            ("oauth2.client.secret", "csecret"),
            ("oauth2.client.auth.mode", "url"),
        ])
        .unwrap();
        let Auth::OAuth2(o) = &c.auth else {
            panic!("{c:?}")
        };
        assert_eq!(o.auth_mode, ClientAuthMode::Url);
        assert_eq!(o.token_property, "access_token");
        assert_eq!(o.scope, None);
        assert!(!format!("{c:?}").contains("csecret"));
        let err = config(&[("http.api.url", "http://h/"), ("auth.type", "digest")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for `auth.type`: `digest` is not one of none, basic, bearer, static, oauth2"
        );
    }

    #[test]
    fn urls_are_checked_and_never_carry_credentials() {
        let err = config(&[("http.api.url", "localhost:8090")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for `http.api.url`: must start with http:// or https://"
        );
        let err = config(&[("http.api.url", "http://u:hunter2@h/x")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = config(&[("http.api.ur", "http://h/")]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Misspelt {
                written: "http.api.ur".into(),
                intended: "http.api.url".into()
            }
        );
    }

    #[test]
    fn reporter_keys() {
        let c = config(&[
            ("http.api.url", "http://h/"),
            ("reporter.result.topic.name", "hd-execution-response-topic"),
            ("reporter.error.topic.name", "hd-errors"),
            ("reporter.bootstrap.servers", "localhost:9092"),
            ("reporter.sasl.password", "pw"),
            ("reporter.result.topic.replication.factor", "1"),
            ("report.errors.as", "http_response"),
        ])
        .unwrap();
        let r = c.reporter.clone().unwrap();
        assert_eq!(
            r.result_topic.as_deref(),
            Some("hd-execution-response-topic")
        );
        assert_eq!(r.client.len(), 2);
        assert_eq!(r.errors_as, ErrorsAs::HttpResponse);
        assert!(!format!("{c:?}").contains("pw\""));
        let err = config(&[
            ("http.api.url", "http://h/"),
            ("reporter.bootstrap.servers", "b:9092"),
        ])
        .unwrap_err();
        assert_eq!(err.key(), "reporter.bootstrap.servers");
    }

    #[test]
    fn tls_keys() {
        assert!(config(&[("http.api.url", "https://h/"), ("ssl.enabled", "true")]).is_ok());
        let err = config(&[("http.api.url", "http://h/"), ("ssl.enabled", "true")]).unwrap_err();
        assert!(err.to_string().contains("needs an https:// URL"), "{err}");
        let err = config(&[
            ("http.api.url", "https://h/"),
            ("https.ssl.keystore.location", "/k.jks"),
        ])
        .unwrap_err();
        assert_eq!(err.key(), "https.ssl.keystore.location");
    }

    #[test]
    fn json_arrays_and_batches() {
        let c = config(&[
            ("http.api.url", "http://h/"),
            ("request.body.format", "json"),
            ("batch.json.as.array", "true"),
            ("batch.max.size", "50"),
        ])
        .unwrap();
        assert_eq!(
            (
                c.batch_prefix.as_str(),
                c.batch_separator.as_str(),
                c.batch_suffix.as_str()
            ),
            ("[", ",", "]")
        );
        assert_eq!(c.batch_max_size, 50);
        let err = config(&[("http.api.url", "http://h/"), ("batch.max.size", "0")]).unwrap_err();
        assert_eq!(err.key(), "batch.max.size");
    }
}
