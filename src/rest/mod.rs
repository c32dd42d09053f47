//! Kafka Connect's REST API (`ConnectorsResource`, `ConnectorPluginsResource`,
//! `RootResource`), served with axum over the [`Herder`]'s operations: the same endpoints,
//! status codes and JSON shapes, so kcctl, Kafka UI and Connect's Python clients work.

mod handlers;

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::config::rest::{Listener, RestConfig};
use crate::herder::{Herder, HerderError};

/// What `GET /metrics` answers (the Prometheus text page); mounted only when given.
#[derive(Clone)]
pub struct MetricsRenderer(pub Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for MetricsRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsRenderer")
    }
}

/// The API's state: the herder and the settings the answers need.
#[derive(Debug, Clone)]
pub struct Api {
    pub(crate) herder: Herder,
    pub(crate) metrics: Option<MetricsRenderer>,
    pub(crate) allow_origin: Option<HeaderValue>,
    pub(crate) allow_methods: HeaderValue,
    /// With `ferry.rest.basic.auth.file`: user → password.
    pub(crate) users: Option<Arc<Users>>,
}

/// HTTP basic credentials, user → password. `Debug` shows the users only.
pub struct Users(pub std::collections::BTreeMap<String, crate::config::secret::Secret>);

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Users {
    /// Reads `ferry.rest.basic.auth.file` (`user=password` lines, Java properties syntax,
    /// as Kafka's `PropertyFileLoginModule` credentials file).
    pub fn load(rest: &RestConfig) -> Result<Option<Self>, String> {
        let Some(path) = &rest.basic_auth_file else {
            return Ok(None);
        };
        let file = crate::config::PropertiesFile::load(path).map_err(|e| e.to_string())?;
        if file.entries.is_empty() {
            return Err(format!(
                "{}: ferry.rest.basic.auth.file has no user=password line; add one, or remove the key to serve the API without authentication",
                path.display()
            ));
        }
        Ok(Some(Users(
            file.entries
                .into_iter()
                .map(|(u, p)| (u, crate::config::secret::Secret::new(p)))
                .collect(),
        )))
    }

    /// Whether an `Authorization` header carries a known user's password.
    pub(crate) fn allows(&self, header: Option<&HeaderValue>) -> bool {
        use base64::Engine;
        let Some(value) = header.and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let Some(encoded) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = text.split_once(':') else {
            return false;
        };
        self.0.get(user).is_some_and(|p| {
            // Same time for every wrong password of a given length.
            let (a, b) = (p.expose().as_bytes(), password.as_bytes());
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        })
    }
}

impl Api {
    pub fn new(
        herder: Herder,
        rest: &RestConfig,
        metrics: Option<MetricsRenderer>,
        users: Option<Users>,
    ) -> Self {
        Self {
            herder,
            metrics,
            users: users.map(Arc::new),
            allow_origin: rest
                .allow_origin
                .as_deref()
                .and_then(|o| HeaderValue::from_str(o).ok()),
            allow_methods: rest
                .allow_methods
                .as_deref()
                .and_then(|m| HeaderValue::from_str(m).ok())
                .unwrap_or(HeaderValue::from_static("GET,POST,HEAD")),
        }
    }
}

/// Connect's error body, `{"error_code": …, "message": …}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error_code": self.status.as_u16(),
            "message": self.message,
        });
        let mut r = (self.status, Json(body)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }
}

impl From<HerderError> for ApiError {
    fn from(e: HerderError) -> Self {
        let status = match &e {
            HerderError::NotFound(_) | HerderError::TaskNotFound(..) => StatusCode::NOT_FOUND,
            HerderError::Exists(_) | HerderError::Conflict(_) => StatusCode::CONFLICT,
            HerderError::BadRequest(_) | HerderError::Invalid(_) => StatusCode::BAD_REQUEST,
            HerderError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

/// Binds every listener, before anything is written to disk: a port in use stops ferry
/// with one line when the listener was configured, and is a warning (ferry runs without
/// the API) when it is the default `127.0.0.1:8083`.
pub fn bind(rest: &RestConfig) -> Result<Vec<std::net::TcpListener>, String> {
    let mut out = Vec::new();
    for l in &rest.listeners {
        match bind_one(l) {
            Ok(s) => out.push(s),
            Err(e) if !rest.explicit => {
                tracing::warn!(listener = %format!("http://{}", l.authority()), error = %e, "REST API not started: the default listener cannot be bound; set listeners=http://127.0.0.1:<port> in the worker file to choose a port, or ferry.rest.enable=false.");
                return Ok(Vec::new());
            }
            Err(e) => {
                return Err(format!(
                    "listeners: cannot listen on http://{}: {e}; stop what uses the port or choose another one in the worker file (listeners=http://127.0.0.1:<port>), or set ferry.rest.enable=false",
                    l.authority()
                ));
            }
        }
    }
    Ok(out)
}

fn bind_one(l: &Listener) -> std::io::Result<std::net::TcpListener> {
    let socket = std::net::TcpListener::bind((l.host.as_str(), l.port))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Serves the API on the bound listeners until `stop` is cancelled.
pub async fn serve(listeners: Vec<std::net::TcpListener>, api: Api, stop: CancellationToken) {
    let router = handlers::router(api);
    let mut servers = tokio::task::JoinSet::new();
    for l in listeners {
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let listener = match tokio::net::TcpListener::from_std(l) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(listener = %addr, error = %e, "REST API listener unusable.");
                continue;
            }
        };
        tracing::info!(listener = %format!("http://{addr}"), "REST API listening.");
        let token = stop.clone();
        let router = router.clone();
        servers.spawn(async move {
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
            {
                tracing::error!(error = %e, "REST API stopped.");
            }
        });
    }
    while servers.join_next().await.is_some() {}
}
