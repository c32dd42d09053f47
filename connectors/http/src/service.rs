//! The I/O: sends a request with the configured method, headers, timeouts and
//! authentication, retries it on `retry.on.status.codes` and connection errors, and says
//! how it ended. One place decides what is retriable: [`classify`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use ferry_connector_api::backoff::{Backoff, Deadline, GiveUp, Jitter};
use ferry_connector_api::text::shown;
use ferry_connector_api::{TaskError, error_chain};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Mutex;

use crate::config::{Auth, BodyFormat, ClientAuthMode, HttpConfig, Method, OAuth2};
use crate::request::Request;

/// The most of a response body an error line shows.
const BODY_CHARS: usize = 300;

/// An answer the server gave.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// How a request ended, when it did not succeed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server or the network may do better later: the runtime backs off and
    /// redelivers the records (nothing is committed past them). `attempts`: how many were
    /// made so far, counting those of earlier deliveries, so that `max.retries` holds
    /// across them.
    Retriable { error: TaskError, attempts: u32 },
    /// The server refused the records (a 4xx not retried, or retried `max.retries` times):
    /// a record error under `errors.tolerance`.
    Rejected { answer: Answer, reason: String },
    /// Retrying cannot help and no record is at fault (the token endpoint refuses the
    /// client's credentials): the task fails.
    Fatal(TaskError),
}

/// What to do with one attempt's outcome.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Success,
    /// Try again within this request's `max.retries`; afterwards `then`.
    Retry {
        then: Final,
    },
    /// Without retrying.
    Now(Final),
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Final {
    Retriable,
    Rejected,
}

/// The one decision about statuses. 2xx succeeds. A status in `retry.on.status.codes` is
/// tried again up to `max.retries` times. What remains: server errors, 408 and 429 are
/// the server's state (hand back to the runtime, which redelivers; nothing is lost), any
/// other status is the request's fault (a record error). A missing status (connection
/// refused, timeout) is retried like a listed status, then handed back.
pub(crate) fn classify(config: &HttpConfig, status: Option<u16>) -> Verdict {
    let Some(status) = status else {
        return Verdict::Retry {
            then: Final::Retriable,
        };
    };
    if (200..300).contains(&status) {
        return Verdict::Success;
    }
    let then = if status >= 500 || status == 408 || status == 429 {
        Final::Retriable
    } else {
        Final::Rejected
    };
    if config.retry_on.contains(status) {
        Verdict::Retry { then }
    } else {
        Verdict::Now(then)
    }
}

/// A cached OAuth2 access token.
#[derive(Debug)]
struct Token {
    value: HeaderValue,
    /// Refreshed this long before the endpoint said it expires.
    renew_at: Instant,
}

#[derive(Debug)]
pub(crate) struct Service {
    client: reqwest::Client,
    config: Arc<HttpConfig>,
    /// Fixed headers, Authorization included for basic, bearer and static auth.
    headers: HeaderMap,
    token: Mutex<Option<Token>>,
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, TaskError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        // The value may be a credential: name the header only.
        TaskError::fatal(format!(
            "header `{name}` holds characters a header cannot carry; fix it in headers"
        ))
    })?;
    v.set_sensitive(true);
    Ok(v)
}

impl Service {
    pub(crate) fn new(config: Arc<HttpConfig>) -> Result<Self, TaskError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // A POST answered with a redirect is the server's answer (as in Confluent's
            // connector, whose client does not follow redirects of POSTs).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TaskError::fatal("cannot build the HTTP client").with_source(e))?;
        let mut headers = HeaderMap::new();
        let content_type = match config.body_format {
            BodyFormat::Json => "application/json",
            BodyFormat::String => "text/plain; charset=utf-8",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        for (name, value) in &config.headers {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                TaskError::fatal(format!(
                    "`{}` is not a header name; fix it in headers",
                    shown(name)
                ))
            })?;
            headers.insert(n, header_value(name, value.expose())?);
        }
        match &config.auth {
            Auth::Basic { user, password } => {
                let pair = format!("{user}:{}", password.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                headers.insert(
                    AUTHORIZATION,
                    header_value("Authorization", &format!("Basic {encoded}"))?,
                );
            }
            Auth::Bearer(t) => {
                headers.insert(
                    AUTHORIZATION,
                    header_value("Authorization", &format!("Bearer {}", t.expose()))?,
                );
            }
            Auth::Static(v) => {
                headers.insert(AUTHORIZATION, header_value("Authorization", v.expose())?);
            }
            Auth::None | Auth::OAuth2(_) => {}
        }
        Ok(Self {
            client,
            config,
            headers,
            token: Mutex::new(None),
        })
    }

    /// Sends a request until it succeeds, fails for good, its retries run out, or it has
    /// been retried for [`HAND_BACK_AFTER`] (then it is handed back to the runtime with
    /// the attempts made). `prior`: attempts made for it in earlier deliveries.
    pub(crate) async fn send(&self, request: &Request, prior: u32) -> Result<Answer, Failure> {
        let c = &self.config;
        let mut retry = retry_policy(c).start_after(prior);
        let mut refreshed = false;
        loop {
            let outcome = self.attempt(request).await;
            let (status, detail) = match &outcome {
                Ok(a) => (Some(a.status), None),
                Err(e) => (None, Some(e.clone())),
            };
            // A 401 with OAuth2: the token may have been revoked early; fetch a new one once.
            if status == Some(401) && matches!(c.auth, Auth::OAuth2(_)) && !refreshed {
                refreshed = true;
                *self.token.lock().await = None;
                continue;
            }
            let verdict = classify(c, status);
            let attempt = retry.retries();
            let what = || {
                format!(
                    "{} {} ({} record(s) from {} offset {})",
                    c.method.as_str(),
                    c.url_shown(),
                    request.records.len(),
                    request
                        .partition()
                        .map(|tp| tp.to_string())
                        .unwrap_or_default(),
                    request.records.first().map_or(0, |r| r.offset),
                )
            };
            let then = match verdict {
                Verdict::Success => {
                    return outcome.map_err(|e| Failure::Retriable {
                        error: TaskError::retriable(e.to_string()),
                        attempts: attempt + 1,
                    });
                }
                Verdict::Retry { then } => match retry.next_wait() {
                    Ok(wait) => {
                        tracing::debug!(
                            url = %c.url_shown(),
                            status = status.unwrap_or(0),
                            attempt = attempt + 1,
                            retry_in_ms = wait.as_millis() as u64,
                            "Request failed; retrying."
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    Err(GiveUp::Retries) => then,
                    Err(GiveUp::Deadline) => {
                        return Err(hand_back(c, outcome, detail, what(), attempt));
                    }
                },
                Verdict::Now(then) => then,
            };
            let tries = attempt + 1;
            let what = what();
            return Err(match (outcome, then) {
                (Err(AttemptError::Fatal(m)), _) => Failure::Fatal(TaskError::fatal(m)),
                (Err(e), _) => Failure::Retriable {
                    error: TaskError::retriable(format!(
                        "{what} failed after {tries} attempt(s): {}",
                        detail
                            .map(|d| d.to_string())
                            .unwrap_or_else(|| e.to_string())
                    )),
                    attempts: tries,
                },
                (Ok(answer), Final::Retriable) => Failure::Retriable {
                    error: TaskError::retriable(format!(
                        "{what} answered {} after {tries} attempt(s): {}",
                        answer.status,
                        body_text(&answer.body)
                    )),
                    attempts: tries,
                },
                (Ok(answer), Final::Rejected) => Failure::Rejected {
                    reason: format!(
                        "{what} answered {} after {tries} attempt(s): {}",
                        answer.status,
                        body_text(&answer.body)
                    ),
                    answer,
                },
            });
        }
    }

    async fn attempt(&self, request: &Request) -> Result<Answer, AttemptError> {
        let method = match self.config.method {
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
        };
        let mut builder = self
            .client
            .request(method, &request.url)
            .headers(self.headers.clone())
            .body(request.body.clone());
        if let Auth::OAuth2(o) = &self.config.auth {
            builder = builder.header(AUTHORIZATION, self.token(o).await?);
        }
        let response = builder.send().await.map_err(AttemptError::transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(AttemptError::transport)?;
        Ok(Answer { status, body })
    }

    /// The cached access token, or a new one from the token endpoint.
    async fn token(&self, o: &OAuth2) -> Result<HeaderValue, AttemptError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.value.clone());
        }
        // Built before any await: the serializer is not Send.
        let (form, basic) = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = &o.scope {
                form.append_pair("scope", scope);
            }
            let basic = match o.auth_mode {
                ClientAuthMode::Header => true,
                ClientAuthMode::Url => {
                    form.append_pair("client_id", &o.client_id);
                    form.append_pair("client_secret", o.client_secret.expose());
                    false
                }
            };
            (form.finish(), basic)
        };
        let mut builder = self
            .client
            .post(&o.token_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if basic {
            builder = builder.basic_auth(&o.client_id, Some(o.client_secret.expose()));
        }
        let response = builder
            .body(form)
            .send()
            .await
            .map_err(AttemptError::transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(AttemptError::transport)?;
        let url = o.token_url.split('?').next().unwrap_or_default();
        if !(200..300).contains(&status) {
            let m = format!(
                "the OAuth2 token endpoint {url} answered {status}: {}",
                body_text(&body)
            );
            // The client's credentials are refused: an operator must fix them.
            return Err(if status == 400 || status == 401 || status == 403 {
                AttemptError::Fatal(format!(
                    "{m}; check oauth2.client.id and oauth2.client.secret"
                ))
            } else {
                AttemptError::Transport(m)
            });
        }
        let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            AttemptError::Fatal(format!(
                "the OAuth2 token endpoint {url} did not answer JSON"
            ))
        })?;
        let token = doc
            .get(&o.token_property)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                AttemptError::Fatal(format!(
                    "the OAuth2 token endpoint {url} answered no `{}` (set oauth2.token.property)",
                    o.token_property
                ))
            })?;
        let lifetime = doc
            .get("expires_in")
            .and_then(serde_json::Value::as_u64)
            .map_or(Duration::from_secs(3600), Duration::from_secs);
        let value = header_value("Authorization", &format!("Bearer {token}"))
            .map_err(|e| AttemptError::Fatal(e.to_string()))?;
        // Renew at 90 % of the lifetime, so that a token never expires in flight.
        *cached = Some(Token {
            value: value.clone(),
            renew_at: Instant::now() + lifetime.mul_f64(0.9),
        });
        Ok(value)
    }
}

/// One attempt that got no answer.
#[derive(Debug, Clone)]
enum AttemptError {
    /// Connection refused, reset, timed out: retried.
    Transport(String),
    Fatal(String),
}

impl AttemptError {
    fn transport(e: reqwest::Error) -> Self {
        // reqwest's errors name the URL, which holds no credentials (refused at start).
        AttemptError::Transport(error_chain(&e))
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Transport(m) | AttemptError::Fatal(m) => f.write_str(m),
        }
    }
}

/// Retries within a request: `retry.backoff.ms` apart with ±20 % jitter so that tasks do
/// not retry in step, `max.retries` times, and no wait that would end past
/// [`HAND_BACK_AFTER`]. Constant, not growing: a long outage is the runtime's to wait out
/// (its back-off grows to `errors.retry.delay.max.ms` and yields to shutdown), so a
/// request never holds `put` for long.
fn retry_policy(c: &HttpConfig) -> Backoff {
    Backoff::constant(c.retry_backoff)
        .jitter(Jitter::Around(0.2))
        .retries(c.max_retries)
        .deadline(Deadline::NoWaitPast(HAND_BACK_AFTER))
}

/// A request still failing retriably after [`HAND_BACK_AFTER`], with `attempt` retries
/// made: handed back to the runtime, the attempts counting on at its next delivery.
fn hand_back(
    c: &HttpConfig,
    outcome: Result<Answer, AttemptError>,
    detail: Option<AttemptError>,
    what: String,
    attempt: u32,
) -> Failure {
    let got = match (&outcome, &detail) {
        (Ok(a), _) => format!("answered {}", a.status),
        (Err(_), Some(d)) => format!("failed: {d}"),
        (Err(e), None) => format!("failed: {e}"),
    };
    if let Err(AttemptError::Fatal(m)) = outcome {
        return Failure::Fatal(TaskError::fatal(m));
    }
    Failure::Retriable {
        error: TaskError::retriable(format!(
            "{what} {got} (attempt {} of {}; sent again after a back-off)",
            attempt + 1,
            c.max_retries + 1
        )),
        attempts: attempt + 1,
    }
}

/// How long a request that the server cannot answer now (5xx, 408, 429, no answer) is
/// retried within `put` before it is handed back to the runtime, whatever `max.retries`
/// says: the runtime then backs off (its wait yields to shutdown), commits what is done
/// and redelivers. Below `task.shutdown.graceful.timeout.ms` (5 s by default), so that
/// SIGTERM during an outage still stops in time. Statuses that end as record errors always
/// get their `max.retries`.
const HAND_BACK_AFTER: Duration = Duration::from_secs(3);

/// A response body as an error line quotes it.
pub(crate) fn body_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        "(empty body)".into()
    } else {
        shown(text.trim()).max(BODY_CHARS).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_connector_api::ConnectorProps;

    fn config(pairs: &[(&str, &str)]) -> HttpConfig {
        HttpConfig::from_props(&mut ConnectorProps::from_pairs(pairs)).unwrap()
    }

    #[test]
    fn statuses_are_classified_in_one_place() {
        let c = config(&[
            ("http.api.url", "http://h/"),
            ("retry.on.status.codes", "500-"),
        ]);
        assert_eq!(classify(&c, Some(200)), Verdict::Success);
        assert_eq!(classify(&c, Some(204)), Verdict::Success);
        assert_eq!(
            classify(&c, Some(503)),
            Verdict::Retry {
                then: Final::Retriable
            }
        );
        assert_eq!(classify(&c, Some(400)), Verdict::Now(Final::Rejected));
        assert_eq!(classify(&c, Some(429)), Verdict::Now(Final::Retriable));
        assert_eq!(classify(&c, Some(302)), Verdict::Now(Final::Rejected));
        assert_eq!(
            classify(&c, None),
            Verdict::Retry {
                then: Final::Retriable
            }
        );
        // Confluent's default 400-: a 4xx is retried, then reported as the record's fault.
        let c = config(&[("http.api.url", "http://h/")]);
        assert_eq!(
            classify(&c, Some(404)),
            Verdict::Retry {
                then: Final::Rejected
            }
        );
    }

    #[test]
    fn retries_follow_confluents_keys() {
        let c = config(&[
            ("http.api.url", "http://h/"),
            ("retry.backoff.ms", "100"),
            ("max.retries", "2"),
        ]);
        assert_eq!(
            retry_policy(&c),
            Backoff::constant(Duration::from_millis(100))
                .jitter(Jitter::Around(0.2))
                .retries(2)
                .deadline(Deadline::NoWaitPast(HAND_BACK_AFTER))
        );
    }

    #[test]
    fn long_bodies_are_cut_in_error_lines() {
        let t = body_text(&vec![b'x'; 10_000]);
        assert!(t.len() < 400 && t.ends_with("(10000 bytes)"), "{t}");
        assert_eq!(body_text(b"  "), "(empty body)");
    }
}
