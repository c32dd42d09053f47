//! `io.confluent.connect.avro.AvroConverter`: Confluent's wire format — a zero byte, the
//! id of the writer schema in a schema registry (4 bytes, big-endian), then the Avro
//! binary datum. The schema is fetched once per id from `schema.registry.url`
//! (`GET /schemas/ids/{id}`, the Confluent Schema Registry API) and kept: ids are
//! immutable, so nothing ever needs refetching. Parsing and decoding are the Avro
//! container converter's ([`super::avro::Writer`]).
//!
//! A registry that cannot be reached (or answers 5xx) is not a record error: the record
//! would decode a moment later, and `errors.tolerance=all` must not skip good records
//! because the registry restarted. The driver retries the batch instead
//! ([`RegistryError::is_retriable`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferry_connector_api::data::Structured;

use super::Hint;
use super::avro::{AvroError, Writer};
use crate::config::secret::Secret;

/// One registry request, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Confluent's `schemas.cache.config` / `max.schemas.per.subject` default.
pub(crate) const DEFAULT_CACHE: usize = 1000;

/// The converter's settings (`*.converter.schema.registry.url` and friends).
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// `schema.registry.url`: one or more base URLs, tried in order. Without credentials.
    pub urls: Vec<String>,
    /// `basic.auth.credentials.source` `USER_INFO` (`basic.auth.user.info`) or `URL`
    /// (user info in the URL).
    pub auth: Option<BasicAuth>,
    /// Schemas kept parsed (`schemas.cache.config`, 1000).
    pub cache_size: usize,
}

impl fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrySettings")
            .field("urls", &self.urls)
            .field("auth", &self.auth.as_ref().map(|a| &a.user))
            .field("cache_size", &self.cache_size)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub user: String,
    pub password: Secret,
}

impl RegistrySettings {
    /// Reads the converter's settings; the error is the reason, naming the setting.
    pub(crate) fn parse(
        settings: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let get = |k: &str| settings.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let Some(list) = get("schema.registry.url") else {
            return Err("AvroConverter needs schema.registry.url (the schema registry's address, e.g. http://registry:8081): set <key>.schema.registry.url".into());
        };
        let source = get("basic.auth.credentials.source").unwrap_or("URL");
        let mut auth = None;
        let mut urls = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let url = reqwest::Url::parse(raw).map_err(|e| {
                format!(
                    "AvroConverter schema.registry.url `{}` is not a URL: {e}",
                    redact_url(raw)
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!(
                    "AvroConverter schema.registry.url `{}` is not http:// or https://",
                    redact_url(raw)
                ));
            }
            if !url.username().is_empty() && source.eq_ignore_ascii_case("URL") {
                auth = Some(BasicAuth {
                    user: percent_decode(url.username()),
                    password: Secret::new(percent_decode(url.password().unwrap_or(""))),
                });
            }
            let mut bare = url;
            // Cannot fail on an http(s) URL.
            let _ = bare.set_username("");
            let _ = bare.set_password(None);
            urls.push(bare.as_str().trim_end_matches('/').to_string());
        }
        if urls.is_empty() {
            return Err("AvroConverter schema.registry.url is empty".into());
        }
        match source.to_ascii_uppercase().as_str() {
            "URL" => {}
            "USER_INFO" => {
                let info = get("basic.auth.user.info")
                    .or_else(|| get("schema.registry.basic.auth.user.info"))
                    .ok_or("AvroConverter basic.auth.credentials.source=USER_INFO needs basic.auth.user.info=<user>:<password>")?;
                let Some((user, password)) = info.split_once(':') else {
                    return Err("AvroConverter basic.auth.user.info must be <user>:<password> (the value is not shown)".into());
                };
                auth = Some(BasicAuth {
                    user: user.to_string(),
                    password: Secret::new(password),
                });
            }
            "SASL_INHERIT" => {
                return Err("AvroConverter basic.auth.credentials.source=SASL_INHERIT is not supported; use USER_INFO with basic.auth.user.info".into());
            }
            other => {
                return Err(format!(
                    "AvroConverter basic.auth.credentials.source `{other}` is not URL, USER_INFO or SASL_INHERIT"
                ));
            }
        }
        if let Some(k) = settings
            .keys()
            .find(|k| k.starts_with("bearer.auth.") || k.starts_with("schema.registry.ssl."))
        {
            return Err(format!(
                "AvroConverter {k} is not supported; ferry reaches the registry over http or https with the system's CA certificates, optionally with basic auth"
            ));
        }
        let cache_size = match get("schemas.cache.config") {
            None => DEFAULT_CACHE,
            Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("AvroConverter schemas.cache.config `{v}` is not a positive number")
            })?,
        };
        Ok(Self {
            urls,
            auth,
            cache_size,
        })
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A URL for error lines: user info replaced.
fn redact_url(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}[redacted]@{}", &raw[..s + 3], &raw[at + 1..]),
        _ => raw.to_string(),
    }
}

/// Why a record does not decode.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum RegistryError {
    #[error("not in Confluent's wire format (no zero magic byte followed by a 4-byte schema id)")]
    NotFramed,
    #[error("schema id {id} is not in the schema registry at {url} (404)")]
    UnknownId { id: i32, url: String },
    #[error("schema id {id} is a {kind} schema; AvroConverter reads Avro only")]
    NotAvro { id: i32, kind: String },
    #[error(
        "schema id {id} refers to other schemas (schema references), which ferry does not resolve yet"
    )]
    References { id: i32 },
    #[error("schema id {id}: {source}")]
    Avro { id: i32, source: AvroError },
    #[error(
        "the schema registry at {url} refused ferry's credentials ({status}); check basic.auth.user.info"
    )]
    Auth { url: String, status: u16 },
    #[error("the schema registry at {url} answered {detail}")]
    Answer { url: String, detail: String },
    /// Worth another try: the registry is down, slow or overloaded.
    #[error("the schema registry cannot be reached: {0}")]
    Unavailable(String),
}

impl RegistryError {
    pub(super) fn hint(&self) -> Hint {
        match self {
            RegistryError::NotFramed => Hint::PassThrough,
            _ => Hint::None,
        }
    }

    pub(crate) fn is_retriable(&self) -> bool {
        matches!(self, RegistryError::Unavailable(_))
    }
}

/// A task's decoder for Confluent-framed Avro: the registry client and the schemas by id.
pub(crate) struct ConfluentDecoder {
    settings: Arc<RegistrySettings>,
    client: Option<reqwest::Client>,
    /// Parsed schemas by id, and ids that can never decode (kept so that a stream of bad
    /// records does not ask the registry for each). Transient failures are not kept.
    schemas: HashMap<i32, Result<Arc<Writer>, RegistryError>>,
}

impl fmt::Debug for ConfluentDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfluentDecoder")
            .field("urls", &self.settings.urls)
            .field("schemas", &self.schemas.len())
            .finish()
    }
}

/// `GET /schemas/ids/{id}`'s answer.
#[derive(Debug, serde::Deserialize)]
struct SchemaById {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<serde_json::Value>,
}

impl ConfluentDecoder {
    pub(crate) fn new(settings: Arc<RegistrySettings>) -> Self {
        Self {
            settings,
            client: None,
            schemas: HashMap::new(),
        }
    }

    /// Decodes one framed datum; blocks on the registry the first time an id is seen, so
    /// it must run where blocking is allowed (the driver's `block_in_place`).
    pub(crate) fn decode(&mut self, raw: Bytes) -> Result<Structured, RegistryError> {
        let (id, body) = match raw.as_ref() {
            [0, a, b, c, d, body @ ..] => (i32::from_be_bytes([*a, *b, *c, *d]), body),
            _ => return Err(RegistryError::NotFramed),
        };
        let writer = self.writer(id)?;
        let data = writer
            .decode_datum(body)
            .map_err(|source| RegistryError::Avro { id, source })?;
        Ok(Structured {
            schema: Some(writer.schema().clone()),
            data,
            raw,
        })
    }

    fn writer(&mut self, id: i32) -> Result<Arc<Writer>, RegistryError> {
        if let Some(known) = self.schemas.get(&id) {
            return known.clone();
        }
        let fetched = self.fetch(id).and_then(|s| {
            if let Some(kind) = s.schema_type.filter(|t| !t.eq_ignore_ascii_case("AVRO")) {
                return Err(RegistryError::NotAvro { id, kind });
            }
            if !s.references.is_empty() {
                return Err(RegistryError::References { id });
            }
            Writer::parse(s.schema.as_bytes())
                .map(Arc::new)
                .map_err(|source| RegistryError::Avro { id, source })
        });
        if fetched.as_ref().is_err_and(RegistryError::is_retriable) {
            return fetched;
        }
        if self.schemas.len() >= self.settings.cache_size {
            // Ids are immutable; dropping one only costs a fetch if it comes back.
            if let Some(k) = self.schemas.keys().next().copied() {
                self.schemas.remove(&k);
            }
        }
        self.schemas.insert(id, fetched.clone());
        fetched
    }

    /// Asks each registry URL in turn; the first definite answer counts.
    fn fetch(&mut self, id: i32) -> Result<SchemaById, RegistryError> {
        let client = match &self.client {
            Some(c) => c.clone(),
            None => {
                let c = reqwest::Client::builder()
                    .timeout(REQUEST_TIMEOUT)
                    .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| {
                        RegistryError::Unavailable(format!("cannot build an HTTP client: {e}"))
                    })?;
                self.client = Some(c.clone());
                c
            }
        };
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            RegistryError::Unavailable(
                "no async runtime to reach the registry from (a bug in ferry)".into(),
            )
        })?;
        let mut last = RegistryError::Unavailable("no schema.registry.url".into());
        for base in &self.settings.urls {
            let url = format!("{base}/schemas/ids/{id}");
            let mut request = client.get(&url).header(
                "Accept",
                "application/vnd.schemaregistry.v1+json, application/json",
            );
            if let Some(a) = &self.settings.auth {
                request = request.basic_auth(&a.user, Some(a.password.expose()));
            }
            let answer = handle.block_on(async move {
                let response = request.send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, body))
            });
            let (status, body) = match answer {
                Ok(a) => a,
                Err(e) => {
                    last = RegistryError::Unavailable(format!("{base}: {e}"));
                    continue;
                }
            };
            match status.as_u16() {
                200 => {
                    return serde_json::from_slice(&body).map_err(|e| RegistryError::Answer {
                        url: base.clone(),
                        detail: format!("200 with a body that is not a schema: {e}"),
                    });
                }
                404 => {
                    return Err(RegistryError::UnknownId {
                        id,
                        url: base.clone(),
                    });
                }
                401 | 403 => {
                    return Err(RegistryError::Auth {
                        url: base.clone(),
                        status: status.as_u16(),
                    });
                }
                s if s == 429 || status.is_server_error() => {
                    last = RegistryError::Unavailable(format!("{base} answered {status}"));
                }
                _ => {
                    let text = String::from_utf8_lossy(&body);
                    return Err(RegistryError::Answer {
                        url: base.clone(),
                        detail: format!("{status}: {}", text.chars().take(200).collect::<String>()),
                    });
                }
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<RegistrySettings, String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RegistrySettings::parse(&map)
    }

    #[test]
    fn the_registry_url_is_required_and_credentials_leave_it() {
        let e = settings(&[]).unwrap_err();
        assert!(e.contains("schema.registry.url"), "{e}");
        let s = settings(&[(
            "schema.registry.url",
            "https://alice:p%40ss@registry.example:8081/, http://backup:8081",
        )])
        .unwrap();
        assert_eq!(
            s.urls,
            ["https://registry.example:8081", "http://backup:8081"]
        );
        let auth = s.auth.clone().unwrap();
        assert_eq!(
            (auth.user.as_str(), auth.password.expose()),
            ("alice", "p@ss")
        );
        assert!(!format!("{s:?}").contains("p@ss"));
        let e = settings(&[("schema.registry.url", "ftp://x")]).unwrap_err();
        assert!(e.contains("not http"), "{e}");
        let e = settings(&[("schema.registry.url", "https://bob:hunter2@[bad")]).unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("[redacted]"), "{e}");
    }

    #[test]
    fn user_info_credentials() {
        let s = settings(&[
            ("schema.registry.url", "http://r:8081"),
            ("basic.auth.credentials.source", "USER_INFO"),
            ("basic.auth.user.info", "key:se:cret"),
        ])
        .unwrap();
        let auth = s.auth.unwrap();
        assert_eq!(
            (auth.user.as_str(), auth.password.expose()),
            ("key", "se:cret")
        );
        let e = settings(&[
            ("schema.registry.url", "http://r:8081"),
            ("basic.auth.credentials.source", "USER_INFO"),
        ])
        .unwrap_err();
        assert!(e.contains("basic.auth.user.info"), "{e}");
        let e = settings(&[
            ("schema.registry.url", "http://r:8081"),
            ("basic.auth.credentials.source", "USER_INFO"),
            ("basic.auth.user.info", "no-colon-secret"),
        ])
        .unwrap_err();
        assert!(!e.contains("no-colon-secret"), "{e}");
        let e = settings(&[
            ("schema.registry.url", "http://r:8081"),
            ("bearer.auth.token", "t"),
        ])
        .unwrap_err();
        assert!(e.contains("bearer.auth.token is not supported"), "{e}");
    }

    #[test]
    fn records_out_of_the_wire_format_say_so_without_asking_the_registry() {
        let s = settings(&[("schema.registry.url", "http://127.0.0.1:9")]).unwrap();
        let mut d = ConfluentDecoder::new(Arc::new(s));
        for raw in [&b""[..], b"\x00\x00\x00", b"Obj\x01...", b"{\"a\":1}"] {
            let e = d.decode(Bytes::copy_from_slice(raw)).unwrap_err();
            assert!(matches!(e, RegistryError::NotFramed), "{e}");
        }
    }

    #[test]
    fn an_unreachable_registry_is_worth_retrying_and_not_remembered() {
        // Port 9 on loopback: nothing listens (discard is not served here).
        let s = settings(&[("schema.registry.url", "http://127.0.0.1:9")]).unwrap();
        let mut d = ConfluentDecoder::new(Arc::new(s));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt.block_on(async {
            tokio::task::block_in_place(|| {
                d.decode(Bytes::from_static(b"\x00\x00\x00\x00\x07\x02"))
            })
        });
        let e = e.unwrap_err();
        assert!(e.is_retriable(), "{e}");
        assert!(d.schemas.is_empty(), "a transient failure is not cached");
    }
}
