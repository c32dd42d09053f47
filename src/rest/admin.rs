//! Connect's `LoggingResource`: `GET /admin/loggers`, `GET|PUT /admin/loggers/{name}`, over
//! the process's log filter ([`crate::telemetry::loggers`]).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::handlers::{body, query_values};
use super::{Api, ApiError};
use crate::telemetry::loggers::{Level, Loggers};

type Result<T> = std::result::Result<T, ApiError>;

fn loggers() -> Result<&'static Loggers> {
    crate::telemetry::loggers().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The log filter of this process is not ferry's to change",
        )
    })
}

pub(super) async fn list() -> Result<Response> {
    Ok(Json(loggers()?.all()).into_response())
}

pub(super) async fn get_one(Path(name): Path<String>) -> Result<Response> {
    match loggers()?.level(&name) {
        Some(level) => Ok(Json(level).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Logger {name} not found."),
        )),
    }
}

/// Connect's answers: `worker` scope (the default, and what an unknown scope falls back
/// to, with a warning) → 200 and the loggers changed; `cluster` → 204, once every worker
/// has been told through the config topic (in standalone mode this worker is the whole
/// cluster). An unknown level is 404, as in Connect.
pub(super) async fn put_one(
    State(api): State<Api>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let levels: BTreeMap<String, Value> = body(raw)?;
    let text = match levels.get("level") {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(
                "Desired 'level' parameter was not specified in request.",
            ));
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let level = Level::parse(&text).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("invalid log level '{text}'."),
        )
    })?;
    let scope = query_values(&q, "scope")
        .pop()
        .unwrap_or_else(|| "worker".into());
    let cluster = match scope.to_ascii_lowercase().as_str() {
        "worker" => false,
        "cluster" => true,
        _ => {
            tracing::warn!(scope = %scope, "Unknown scope in a request to set a log level; using worker.");
            false
        }
    };
    if cluster && api.herder.distributed() {
        crate::telemetry::loggers::check_name(&name)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        api.herder
            .cluster_log_level(&name, &level.to_string())
            .await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let affected = loggers()?
        .set(&name, level)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(if cluster {
        StatusCode::NO_CONTENT.into_response()
    } else {
        Json(affected).into_response()
    })
}
