//! Everything that talks to Google: where the endpoint is, which credentials to use, the
//! publisher with Google's batching and retry settings, the start-up check, and the one
//! function that decides whether an error is worth retrying.

use std::time::Duration;

use ferry_connector_api::TaskError;
use google_cloud_auth::credentials::Credentials;
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::retry_policy::{RetryPolicy, RetryPolicyExt};
use google_cloud_gax::retry_result::RetryResult;
use google_cloud_gax::retry_state::RetryState;
use google_cloud_pubsub::client::{Publisher, TopicAdmin};
use google_cloud_pubsub::error::PublishError;

use crate::config::{CredentialSource, PubSubConfig};
use crate::gzip::{GzipError, GzipPublisher};
use crate::publish::{AnyPublisher, PublishFailure};

/// How long the start-up check waits for a token (a metadata server that does not answer
/// would otherwise hold ferry for close to a minute) and for the topic lookup.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to publish, as the client library wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `https://…` or, for the emulator, `http://…`.
    pub(crate) url: String,
    pub(crate) emulator: bool,
}

/// `PUBSUB_EMULATOR_HOST` wins, as in Google's clients; then `cps.useEmulator` with
/// `cps.endpoint`; else `cps.endpoint` over TLS.
pub(crate) fn endpoint(config: &PubSubConfig, emulator_host: Option<&str>) -> Endpoint {
    let with_scheme = |host: &str, scheme: &str| {
        if host.contains("://") {
            host.to_string()
        } else {
            format!("{scheme}://{host}")
        }
    };
    match emulator_host.filter(|h| !h.trim().is_empty()) {
        Some(host) => Endpoint {
            url: with_scheme(host.trim(), "http"),
            emulator: true,
        },
        None if config.use_emulator => Endpoint {
            url: with_scheme(&config.endpoint, "http"),
            emulator: true,
        },
        None => Endpoint {
            url: with_scheme(&config.endpoint, "https"),
            emulator: false,
        },
    }
}

fn fatal(message: String) -> TaskError {
    TaskError::fatal(message)
}

/// Loads the configured credentials. Anonymous for the emulator.
pub(crate) fn credentials(
    config: &PubSubConfig,
    endpoint: &Endpoint,
) -> Result<Credentials, TaskError> {
    let source = if endpoint.emulator {
        &CredentialSource::Anonymous
    } else {
        &config.credentials
    };
    ferry_gcp_auth::load(source, KEY_NAMES).map_err(fatal)
}

/// The connector's credential keys, as error lines name them.
const KEY_NAMES: ferry_gcp_auth::KeyNames = ferry_gcp_auth::KeyNames {
    file: "gcp.credentials.file.path",
    json: "gcp.credentials.json",
};

/// Retries what Google's client retries (transient transport and server errors), and
/// bounds each attempt by `maxRequestTimeoutMs`; the whole publish is bounded by
/// `maxTotalTimeoutMs` on top.
#[derive(Debug, Clone)]
struct PerAttempt {
    attempt_timeout: Duration,
}

impl RetryPolicy for PerAttempt {
    fn on_error(&self, state: &RetryState, error: google_cloud_pubsub::Error) -> RetryResult {
        google_cloud_pubsub::retry_policy::RetryableErrors.on_error(state, error)
    }

    fn remaining_time(&self, _state: &RetryState) -> Option<Duration> {
        Some(self.attempt_timeout)
    }
}

/// A publisher for the configured topic with Google's batching and timeout settings (a
/// batch goes early when half the flow-control budget is in it): Google's client, or with
/// `enableCompression=true` ferry's gzip publisher.
pub(crate) async fn publisher(
    config: &PubSubConfig,
    endpoint: &Endpoint,
    creds: Credentials,
) -> Result<AnyPublisher, TaskError> {
    if config.enable_compression {
        return GzipPublisher::new(config, endpoint, creds).map(AnyPublisher::Gzip);
    }
    google_publisher(config, endpoint, creds)
        .await
        .map(AnyPublisher::Google)
}

async fn google_publisher(
    config: &PubSubConfig,
    endpoint: &Endpoint,
    creds: Credentials,
) -> Result<Publisher, TaskError> {
    let retry = PerAttempt {
        attempt_timeout: config.max_request_timeout,
    }
    .with_time_limit(config.max_total_timeout);
    Publisher::builder(config.topic_path())
        .with_endpoint(&endpoint.url)
        .with_credentials(creds)
        .with_retry_policy(retry)
        .set_message_count_threshold(config.batch_messages())
        .set_byte_threshold(config.batch_bytes())
        .set_delay_threshold(config.delay_threshold)
        .build()
        .await
        .map_err(|e| {
            fatal(format!(
                "cannot create the Pub/Sub publisher for {}: {e}",
                endpoint.url
            ))
        })
}

/// The start-up check: credentials produce a token, and the topic exists. Bounded.
pub(crate) async fn preflight(config: &PubSubConfig, endpoint: &Endpoint) -> Result<(), TaskError> {
    let creds = credentials(config, endpoint)?;
    if !endpoint.emulator {
        ferry_gcp_auth::check_token(&creds, &config.credentials, KEY_NAMES, PREFLIGHT_TIMEOUT)
            .await
            .map_err(fatal)?;
    }
    let admin = TopicAdmin::builder()
        .with_endpoint(&endpoint.url)
        .with_credentials(creds)
        .build()
        .await
        .map_err(|e| {
            fatal(format!(
                "cannot create a Pub/Sub admin client for {}: {e}",
                endpoint.url
            ))
        })?;
    let lookup = admin.get_topic().set_topic(config.topic_path()).send();
    match tokio::time::timeout(PREFLIGHT_TIMEOUT, lookup).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.status().is_some_and(|s| s.code == Code::NotFound) => Err(fatal(format!(
            "Pub/Sub topic {} does not exist at {}; create it or fix cps.project / cps.topic",
            config.topic_path(),
            endpoint.url
        ))),
        Ok(Err(e)) if e.status().is_some_and(|s| s.code == Code::PermissionDenied) => {
            Err(fatal(format!(
                "the credentials may not use Pub/Sub topic {}: {e}; grant roles/pubsub.publisher (and pubsub.topics.get) to the account",
                config.topic_path()
            )))
        }
        Ok(Err(e)) => Err(fatal(format!(
            "cannot look up Pub/Sub topic {} at {}: {e}",
            config.topic_path(),
            endpoint.url
        ))),
        Err(_) => Err(fatal(format!(
            "Pub/Sub at {} did not answer within {PREFLIGHT_TIMEOUT:?}; check cps.endpoint and the network",
            endpoint.url
        ))),
    }
}

/// What to do about a failed publish.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Try again later (the service or the network will recover).
    Retry,
    /// Fail the task: nothing will be accepted (credentials, permissions, missing topic),
    /// or the request was refused as invalid. Pub/Sub refuses a request as a whole, so
    /// skipping under `errors.tolerance=all` would drop the good messages batched with a
    /// bad one; the limits ferry knows are checked per record before publishing.
    Fatal,
}

/// Codes that refuse what was sent, or who sent it: trying again changes nothing.
fn is_fatal_code(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::Unimplemented
    )
}

/// The one place that classifies publish errors.
pub(crate) fn classify(error: &PublishFailure) -> Failure {
    match error {
        PublishFailure::Google(e) => classify_google(e),
        PublishFailure::Gzip(GzipError::Paused) => Failure::Retry,
        PublishFailure::Gzip(GzipError::Shutdown) => Failure::Fatal,
        PublishFailure::Gzip(GzipError::Rpc { code, .. }) => {
            // tonic's codes, by their numbers (gRPC's, as are gax's).
            if is_fatal_code(Code::from(*code as i32)) {
                Failure::Fatal
            } else {
                Failure::Retry
            }
        }
    }
}

fn classify_google(error: &PublishError) -> Failure {
    match error {
        PublishError::OrderingKeyPaused => Failure::Retry,
        PublishError::Shutdown => Failure::Fatal,
        PublishError::Rpc(e) => {
            if e.is_timeout() || e.is_io() || e.is_transient_and_before_rpc() || e.is_exhausted() {
                return Failure::Retry;
            }
            if let Some(status) = e.status() {
                return if is_fatal_code(status.code) {
                    Failure::Fatal
                } else {
                    Failure::Retry
                };
            }
            match e.http_status_code() {
                Some(400 | 401 | 403 | 404) => Failure::Fatal,
                _ => Failure::Retry,
            }
        }
        _ => Failure::Retry,
    }
}

#[cfg(test)]
mod tests {
    use ferry_connector_api::ConnectorProps;

    use super::*;

    fn config(extra: &[(&str, &str)]) -> PubSubConfig {
        let pairs = [
            &[("cps.project", "proj"), ("cps.topic", "alerts")][..],
            extra,
        ]
        .concat();
        PubSubConfig::from_props(&mut ConnectorProps::from_pairs(&pairs)).unwrap()
    }

    #[test]
    fn endpoints_follow_googles_precedence() {
        let c = config(&[]);
        assert_eq!(
            endpoint(&c, None),
            Endpoint {
                url: "https://pubsub.googleapis.com:443".into(),
                emulator: false
            }
        );
        assert_eq!(
            endpoint(&c, Some("127.0.0.1:8085")),
            Endpoint {
                url: "http://127.0.0.1:8085".into(),
                emulator: true
            }
        );
        let c = config(&[
            ("cps.endpoint", "127.0.0.1:9999"),
            ("cps.useEmulator", "true"),
        ]);
        assert_eq!(
            endpoint(&c, None),
            Endpoint {
                url: "http://127.0.0.1:9999".into(),
                emulator: true
            }
        );
        assert_eq!(endpoint(&c, Some(" ")).url, "http://127.0.0.1:9999");
        let c = config(&[("cps.endpoint", "us-east1-pubsub.googleapis.com:443")]);
        assert_eq!(
            endpoint(&c, None).url,
            "https://us-east1-pubsub.googleapis.com:443"
        );
    }

    #[test]
    fn credential_files_are_checked_with_a_clear_reason() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Endpoint {
            url: "https://pubsub.googleapis.com".into(),
            emulator: false,
        };
        let missing = config(&[("gcp.credentials.file.path", "/nonexistent/key.json")]);
        let err = credentials(&missing, &remote).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read gcp.credentials.file.path /nonexistent/key.json"),
            "{err}"
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "not json").unwrap();
        let err = credentials(
            &config(&[("gcp.credentials.file.path", bad.to_str().unwrap())]),
            &remote,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("is not JSON"), "{err}");
        let err = credentials(
            &config(&[(
                "gcp.credentials.json",
                "{\"type\":\"api_key\",\"secret\":\"hunter2\"}",
            )]),
            &remote,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("credential type `api_key`") && !err.contains("hunter2"),
            "{err}"
        );
        // The emulator needs none.
        let emulator = Endpoint {
            url: "http://127.0.0.1:1".into(),
            emulator: true,
        };
        assert!(credentials(&missing, &emulator).is_ok());
    }

    #[test]
    fn publish_errors_are_classified_once() {
        use google_cloud_gax::error::rpc::Status;
        let rpc = |code: Code| {
            PublishFailure::Google(PublishError::Rpc(std::sync::Arc::new(
                google_cloud_pubsub::Error::service(
                    Status::default().set_code(code).set_message("x"),
                ),
            )))
        };
        // ferry's gzip publisher reports tonic's codes.
        let gzip = |code: tonic::Code| {
            PublishFailure::Gzip(GzipError::Rpc {
                code,
                message: "x".into(),
            })
        };
        for (google, tonic_code, expected) in [
            (Code::Unavailable, tonic::Code::Unavailable, Failure::Retry),
            (
                Code::DeadlineExceeded,
                tonic::Code::DeadlineExceeded,
                Failure::Retry,
            ),
            (
                Code::ResourceExhausted,
                tonic::Code::ResourceExhausted,
                Failure::Retry,
            ),
            (
                Code::InvalidArgument,
                tonic::Code::InvalidArgument,
                Failure::Fatal,
            ),
            (Code::NotFound, tonic::Code::NotFound, Failure::Fatal),
            (
                Code::PermissionDenied,
                tonic::Code::PermissionDenied,
                Failure::Fatal,
            ),
        ] {
            assert_eq!(classify(&rpc(google)), expected, "{google:?}");
            assert_eq!(classify(&gzip(tonic_code)), expected, "{tonic_code:?}");
        }
        let google = |e| PublishFailure::Google(e);
        assert_eq!(
            classify(&google(PublishError::OrderingKeyPaused)),
            Failure::Retry
        );
        assert_eq!(classify(&google(PublishError::Shutdown)), Failure::Fatal);
        assert_eq!(
            classify(&PublishFailure::Gzip(GzipError::Paused)),
            Failure::Retry
        );
        assert_eq!(
            classify(&PublishFailure::Gzip(GzipError::Shutdown)),
            Failure::Fatal
        );
    }
}
