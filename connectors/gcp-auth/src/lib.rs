//! Google credentials for ferry's Google sinks. Pub/Sub and BigQuery name their keys
//! differently (`gcp.credentials.file.path` vs `keyfile` + `keySource`) but load the same
//! kinds of credentials with Google's `google-cloud-auth`; this crate is that loader, so
//! both sinks accept the same files and fail with the same lines. It also writes the
//! routing header both sinks' gRPC calls carry. Like a connector, it depends on
//! `ferry-connector-api` only.

use std::fmt;
use std::path::PathBuf;

use google_cloud_auth::credentials::{self, CacheableResource, Credentials};
use http::{Extensions, HeaderMap};

/// Where credentials come from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JSON key file.
    File(PathBuf),
    /// The JSON key itself.
    Json(String),
    /// Application Default Credentials: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's ADC
    /// file, or the metadata server.
    ApplicationDefault,
    /// None (an emulator).
    Anonymous,
}

impl fmt::Debug for KeySource {
    // The JSON holds a private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "File({})", p.display()),
            KeySource::Json(_) => f.write_str("Json([redacted])"),
            KeySource::ApplicationDefault => f.write_str("ApplicationDefault"),
            KeySource::Anonymous => f.write_str("Anonymous"),
        }
    }
}

/// How the connector's keys are spelt, for error lines.
#[derive(Debug, Clone, Copy)]
pub struct KeyNames {
    /// The key naming a key file (`gcp.credentials.file.path`, `keyfile`).
    pub file: &'static str,
    /// The key holding the JSON itself (`gcp.credentials.json`, `keyfile` with
    /// `keySource=JSON`).
    pub json: &'static str,
}

/// Loads credentials from `source`. The error is one line naming the key and the fix; it
/// never quotes the key's content.
pub fn load(source: &KeySource, names: KeyNames) -> Result<Credentials, String> {
    match source {
        KeySource::Anonymous => Ok(credentials::anonymous::Builder::new().build()),
        KeySource::File(path) => {
            let json = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {} {}: {e}", names.file, path.display()))?;
            from_json(&json, &format!("{} {}", names.file, path.display()))
        }
        KeySource::Json(json) => from_json(json, names.json),
        KeySource::ApplicationDefault => credentials::Builder::default().build().map_err(|e| {
            format!(
                "no Google credentials: set {} (or {}), or GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login` ({e})",
                names.file, names.json
            )
        }),
    }
}

fn from_json(json: &str, origin: &str) -> Result<Credentials, String> {
    // serde_json's message names a line and column, never the text.
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        format!("{origin} is not JSON ({e}); give a service account key or an authorized_user file")
    })?;
    let kind = value
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .to_string();
    let built = match kind.as_str() {
        "service_account" => credentials::service_account::Builder::new(value).build(),
        "authorized_user" => credentials::user_account::Builder::new(value).build(),
        "external_account" => credentials::external_account::Builder::new(value).build(),
        "impersonated_service_account" => credentials::impersonated::Builder::new(value).build(),
        other => {
            return Err(format!(
                "{origin} has credential type `{other}`; ferry reads service_account, authorized_user, external_account and impersonated_service_account"
            ));
        }
    };
    built.map_err(|e| format!("{origin} cannot be used: {e}"))
}

/// Where credentials came from, as error lines name it: the key and file, the key holding
/// the JSON, or Application Default Credentials and where those were looked for.
pub fn origin(source: &KeySource, names: KeyNames) -> String {
    match source {
        KeySource::File(path) => format!("{} {}", names.file, path.display()),
        KeySource::Json(_) => names.json.to_string(),
        KeySource::ApplicationDefault => match std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
            Some(p) => format!(
                "Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS={})",
                std::path::Path::new(&p).display()
            ),
            None => "Application Default Credentials (gcloud's application-default file, else the metadata server)".to_string(),
        },
        KeySource::Anonymous => "no credentials (emulator)".to_string(),
    }
}

/// Gets a first access token within `timeout`, so that bad credentials stop ferry at
/// start-up rather than at the first write. The error is one line: where the credentials
/// came from, what is wrong with them (the library's causes, never the key) and the fix.
pub async fn check_token(
    creds: &Credentials,
    source: &KeySource,
    names: KeyNames,
    timeout: std::time::Duration,
) -> Result<(), String> {
    if *source == KeySource::Anonymous {
        return Ok(());
    }
    let from = origin(source, names);
    match tokio::time::timeout(timeout, creds.headers(Extensions::new())).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(describe_token_error(&from, &e, source, names)),
        Err(_) if *source == KeySource::ApplicationDefault => Err(format!(
            "{from}: no token within {timeout:?}: the metadata server did not answer (not on Google Cloud?); set {} (or {}) or GOOGLE_APPLICATION_CREDENTIALS",
            names.file, names.json
        )),
        Err(_) => Err(format!(
            "{from}: Google's token service did not answer within {timeout:?}; check the network (and a proxy) to oauth2.googleapis.com"
        )),
    }
}

/// One line for a failed token request, with a fix that fits the cause.
fn describe_token_error(
    from: &str,
    e: &(dyn std::error::Error + 'static),
    source: &KeySource,
    names: KeyNames,
) -> String {
    let cause = ferry_connector_api::error_chain(e);
    let lower = cause.to_ascii_lowercase();
    let fix = if lower.contains("private key") {
        format!(
            "its private_key is damaged or not a private key: create a new JSON key for the service account (gcloud iam service-accounts keys create) and point {} at it",
            names.file
        )
    } else if lower.contains("invalid_grant") || lower.contains("unauthorized") {
        "Google refused it (a deleted or disabled key or account, or a revoked login): create a new key or log in again".to_string()
    } else if *source == KeySource::ApplicationDefault {
        format!(
            "set {} (or {}) or GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`",
            names.file, names.json
        )
    } else {
        "check the file and the network to Google's token service".to_string()
    };
    format!("{from} does not produce an access token ({cause}); {fix}")
}

/// The headers that authorize one request (`authorization: Bearer …`, quota project), for
/// REST calls made without Google's generated clients. Tokens are cached and refreshed by
/// the credentials.
pub async fn headers(creds: &Credentials) -> Result<HeaderMap, String> {
    match creds.headers(Extensions::new()).await {
        Ok(CacheableResource::New { data, .. }) => Ok(data),
        // Only returned when asked with an entity tag, which this never does.
        Ok(CacheableResource::NotModified) => Ok(HeaderMap::new()),
        Err(e) => Err(format!("cannot get a Google access token: {e}")),
    }
}

/// The `x-goog-request-params` value `key=value` Google's front ends route a gRPC call by,
/// the value percent-encoded but for unreserved characters, as Google's clients write it.
pub fn request_params(key: &str, value: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "{key}={}",
        percent_encoding::utf8_percent_encode(value, UNRESERVED)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_values_are_percent_encoded() {
        assert_eq!(
            request_params(
                "write_stream",
                "projects/p-1/datasets/d_2/tables/t.3/streams/_default"
            ),
            "write_stream=projects%2Fp-1%2Fdatasets%2Fd_2%2Ftables%2Ft.3%2Fstreams%2F_default"
        );
    }

    const NAMES: KeyNames = KeyNames {
        file: "keyfile",
        json: "keyfile (keySource=JSON)",
    };

    #[test]
    fn errors_name_the_key_and_never_the_secret() {
        let e = load(&KeySource::Json("{\"private_key\": 12 oops".into()), NAMES).unwrap_err();
        assert!(e.starts_with("keyfile (keySource=JSON) is not JSON"), "{e}");
        assert!(!e.contains("private_key"), "{e}");
        let e = load(&KeySource::Json("{\"type\": \"magic\"}".into()), NAMES).unwrap_err();
        assert!(e.contains("credential type `magic`"), "{e}");
        let e = load(&KeySource::File("/nonexistent/k.json".into()), NAMES).unwrap_err();
        assert!(
            e.starts_with("cannot read keyfile /nonexistent/k.json"),
            "{e}"
        );
        assert_eq!(
            format!("{:?}", KeySource::Json("secret".into())),
            "Json([redacted])"
        );
    }

    /// A service-account file whose `private_key` is not a key: the line names the file and
    /// the cause, never the key (google-cloud-auth alone says "cannot create auth headers and
    /// future attempts will not succeed").
    #[tokio::test]
    async fn a_damaged_private_key_is_named_with_its_file() {
        let dir = std::env::temp_dir().join(format!("ferry-gcp-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key.json");
        let key = serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "abc",
            "private_key": "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
            "client_email": "x@p.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        std::fs::write(&file, key.to_string()).unwrap();
        let source = KeySource::File(file.clone());
        let creds = load(&source, NAMES).unwrap();
        let e = check_token(&creds, &source, NAMES, std::time::Duration::from_secs(5))
            .await
            .unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            e.starts_with(&format!(
                "keyfile {} does not produce an access token (",
                file.display()
            )),
            "{e}"
        );
        assert!(e.contains("failed to parse private key"), "{e}");
        assert!(e.contains("create a new JSON key"), "{e}");
        assert!(!e.contains("bm90IGEga2V5"), "the key never appears: {e}");
    }

    #[tokio::test]
    async fn anonymous_credentials_add_no_authorization() {
        let creds = load(&KeySource::Anonymous, NAMES).unwrap();
        let h = headers(&creds).await.unwrap();
        assert!(h.get("authorization").is_none());
    }
}
