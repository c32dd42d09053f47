//! The endpoints: each parses its request, calls one herder operation and shapes the
//! answer as Kafka Connect does.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, ApiError};
use crate::config::rest::MAX_BODY_BYTES;
use crate::herder::Target;
use crate::herder::status::{PartitionOffset, public_config};

type Result<T> = std::result::Result<T, ApiError>;

pub(super) fn router(api: Api) -> Router {
    let mut r = Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/connectors", get(list).post(create))
        .route("/connectors/{name}", get(info).delete(delete))
        .route(
            "/connectors/{name}/config",
            get(config).put(put_config).patch(patch_config),
        )
        .route("/connectors/{name}/status", get(status))
        .route("/connectors/{name}/tasks", get(tasks))
        .route("/connectors/{name}/tasks/{task}/status", get(task_status))
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(restart_task),
        )
        .route("/connectors/{name}/restart", post(restart))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route("/connectors/{name}/topics", get(topics))
        .route(
            "/connectors/{name}/offsets",
            get(offsets).patch(alter_offsets).delete(reset_offsets),
        )
        .route("/connector-plugins", get(plugins))
        .route("/connector-plugins/{plugin}/config/validate", put(validate));
    if api.metrics.is_some() {
        r = r.route("/metrics", get(metrics));
    }
    r.fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "HTTP 404 Not Found") })
        .layer(middleware::from_fn_with_state(api.clone(), auth))
        .layer(middleware::from_fn_with_state(api.clone(), cors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(api)
}

/// `ferry.rest.basic.auth.file`: every request but `GET /health` needs a known user's
/// password (HTTP basic), else 401.
async fn auth(State(api): State<Api>, req: Request, next: Next) -> Response {
    let Some(users) = &api.users else {
        return next.run(req).await;
    };
    if req.uri().path() == "/health" || users.allows(req.headers().get(header::AUTHORIZATION)) {
        return next.run(req).await;
    }
    let mut r = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "Credentials are required to access this resource",
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"ferry\""),
    );
    r
}

/// `access.control.allow.origin`/`methods`, as Connect's CORS filter: the headers on every
/// answer, and preflight `OPTIONS` answered here.
async fn cors(State(api): State<Api>, req: Request, next: Next) -> Response {
    let Some(origin) = api.allow_origin.clone() else {
        return next.run(req).await;
    };
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        api.allow_methods.clone(),
    );
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type,Accept,Origin,Authorization"),
        );
    }
    resp
}

/// The request's JSON body; a body over the bound is 413, anything unparsable 400.
fn body<T: serde::de::DeserializeOwned>(
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<T> {
    let bytes = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("Cannot deserialize the request body as JSON: {e}"))
    })
}

/// A config map: strings, and numbers and booleans as their text (Jackson's coercion);
/// null only where `nulls` allows it (PATCH: remove the key).
fn config_map(v: Value, nulls: bool) -> Result<BTreeMap<String, Option<String>>> {
    let Value::Object(map) = v else {
        return Err(ApiError::bad_request(
            "The connector configuration must be a JSON object of string values",
        ));
    };
    map.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                Value::Null if nulls => None,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Configuration value of `{k}` must be a string, not {other}"
                    )));
                }
            };
            Ok((k, v))
        })
        .collect()
}

fn strings(map: BTreeMap<String, Option<String>>) -> BTreeMap<String, String> {
    map.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
}

/// The values of a query parameter (repeatable, as `expand`).
fn query_values(q: &Option<String>, name: &str) -> Vec<String> {
    q.as_deref()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k) == name).then(|| decode(v))
        })
        .collect()
}

fn query_bool(q: &Option<String>, name: &str) -> Result<bool> {
    match query_values(q, name).last().map(|s| s.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(ApiError::bad_request(format!(
            "Query parameter {name} must be true or false, not `{v}`"
        ))),
    }
}

/// Connect's `ServerInfo`, its fields in Connect's order.
#[derive(serde::Serialize)]
struct ServerInfo {
    version: &'static str,
    commit: &'static str,
    kafka_cluster_id: Option<String>,
}

async fn root(State(api): State<Api>) -> Json<ServerInfo> {
    Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION"),
        commit: option_env!("FERRY_GIT_COMMIT").unwrap_or("unknown"),
        kafka_cluster_id: api.herder.cluster_id(),
    })
}

async fn health() -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "message": "Worker has completed startup and is ready to handle requests.",
    }))
}

async fn metrics(State(api): State<Api>) -> Response {
    match &api.metrics {
        Some(m) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            (m.0)(),
        )
            .into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "HTTP 404 Not Found").into_response(),
    }
}

async fn list(State(api): State<Api>, RawQuery(q): RawQuery) -> Result<Json<Value>> {
    let expand = query_values(&q, "expand");
    let names = api.herder.list().await;
    if expand.is_empty() {
        return Ok(Json(json!(names)));
    }
    let mut out = serde_json::Map::new();
    for name in names {
        let mut one = serde_json::Map::new();
        for e in &expand {
            // A connector deleted meanwhile is left out, as Connect does.
            match e.as_str() {
                "status" => {
                    if let Ok(s) = api.herder.status(&name).await {
                        one.insert("status".into(), json!(s));
                    }
                }
                "info" => {
                    if let Ok(i) = api.herder.info(&name).await {
                        one.insert("info".into(), json!(i));
                    }
                }
                _ => {}
            }
        }
        out.insert(name, Value::Object(one));
    }
    Ok(Json(Value::Object(out)))
}

#[derive(Deserialize)]
struct CreateRequest {
    name: Option<String>,
    config: Option<Value>,
    initial_state: Option<String>,
}

fn created(name: &str, body: impl serde::Serialize) -> Response {
    let location = format!("/connectors/{name}");
    let mut r = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn check_name(url: &str, config: &mut BTreeMap<String, String>) -> Result<()> {
    match config.get("name") {
        Some(n) if n != url => Err(ApiError::bad_request(format!(
            "Connector name configuration ({n}) doesn't match connector name in the URL ({url})"
        ))),
        _ => {
            config.insert("name".into(), url.to_string());
            Ok(())
        }
    }
}

async fn create(
    State(api): State<Api>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let req: CreateRequest = body(raw)?;
    let name = req
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Connector name must be specified (\"name\")"))?;
    if name.contains('/') {
        return Err(ApiError::bad_request(
            "connector name should not contain '/'",
        ));
    }
    let mut config = strings(config_map(req.config.unwrap_or(json!({})), false)?);
    check_name(&name, &mut config)?;
    let target = match req.initial_state.as_deref() {
        None => Target::Started,
        Some(s) => Target::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "initial_state `{s}` is not one of RUNNING, PAUSED, STOPPED"
            ))
        })?,
    };
    let info = api.herder.create(config, target).await?;
    Ok(created(&name, info))
}

async fn info(State(api): State<Api>, Path(name): Path<String>) -> Result<Response> {
    Ok(Json(api.herder.info(&name).await?).into_response())
}

async fn delete(State(api): State<Api>, Path(name): Path<String>) -> Result<StatusCode> {
    api.herder.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn config(State(api): State<Api>, Path(name): Path<String>) -> Result<Response> {
    Ok(Json(api.herder.config(&name).await?).into_response())
}

async fn put_config(
    State(api): State<Api>,
    Path(name): Path<String>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let mut config = strings(config_map(body(raw)?, false)?);
    check_name(&name, &mut config)?;
    let (was_created, info) = api.herder.put_config(&name, config).await?;
    Ok(if was_created {
        created(&name, info)
    } else {
        Json(info).into_response()
    })
}

async fn patch_config(
    State(api): State<Api>,
    Path(name): Path<String>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let patch = config_map(body(raw)?, true)?;
    Ok(Json(api.herder.patch_config(&name, patch).await?).into_response())
}

async fn status(State(api): State<Api>, Path(name): Path<String>) -> Result<Response> {
    Ok(Json(api.herder.status(&name).await?).into_response())
}

async fn tasks(State(api): State<Api>, Path(name): Path<String>) -> Result<Response> {
    Ok(Json(api.herder.tasks(&name).await?).into_response())
}

async fn task_status(
    State(api): State<Api>,
    Path((name, task)): Path<(String, usize)>,
) -> Result<Response> {
    Ok(Json(api.herder.task_status(&name, task).await?).into_response())
}

async fn restart_task(
    State(api): State<Api>,
    Path((name, task)): Path<(String, usize)>,
) -> Result<StatusCode> {
    api.herder.restart_task(&name, task).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart(
    State(api): State<Api>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let include_tasks = query_bool(&q, "includeTasks")?;
    let only_failed = query_bool(&q, "onlyFailed")?;
    Ok(
        match api
            .herder
            .restart(&name, include_tasks, only_failed)
            .await?
        {
            Some(states) => (StatusCode::ACCEPTED, Json(states)).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    )
}

async fn pause(State(api): State<Api>, Path(name): Path<String>) -> Result<StatusCode> {
    api.herder.set_target(&name, Target::Paused).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn resume(State(api): State<Api>, Path(name): Path<String>) -> Result<StatusCode> {
    api.herder.set_target(&name, Target::Started).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn stop(State(api): State<Api>, Path(name): Path<String>) -> Result<StatusCode> {
    api.herder.set_target(&name, Target::Stopped).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn topics(State(api): State<Api>, Path(name): Path<String>) -> Result<Json<Value>> {
    let topics = api.herder.topics(&name).await?;
    Ok(Json(json!({ name: { "topics": topics } })))
}

async fn offsets(State(api): State<Api>, Path(name): Path<String>) -> Result<Json<Value>> {
    let list: Vec<Value> = api
        .herder
        .offsets(&name)
        .await?
        .into_iter()
        .map(|p| {
            json!({
                "partition": {"kafka_topic": p.topic, "kafka_partition": p.partition},
                "offset": {"kafka_offset": p.offset},
            })
        })
        .collect();
    Ok(Json(json!({ "offsets": list })))
}

fn as_i64(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_offsets(v: Value) -> Result<Vec<PartitionOffset>> {
    let bad = |m: &str| ApiError::bad_request(m.to_string());
    let list = v
        .get("offsets")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            bad("The offsets to alter must be given as a non-empty list under \"offsets\"")
        })?;
    list.iter()
        .map(|item| {
            let partition = item
                .get("partition")
                .ok_or_else(|| bad("Every offset needs a \"partition\""))?;
            let topic = partition
                .get("kafka_topic")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bad("A sink connector's partition needs \"kafka_topic\" (a string)")
                })?;
            let part = as_i64(partition.get("kafka_partition"))
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| {
                    bad("A sink connector's partition needs \"kafka_partition\" (an integer)")
                })?;
            let offset = match item.get("offset") {
                None | Some(Value::Null) => None,
                Some(o) => Some(as_i64(o.get("kafka_offset")).ok_or_else(|| {
                    bad("A sink connector's offset needs \"kafka_offset\" (an integer)")
                })?),
            };
            Ok(PartitionOffset {
                topic: topic.to_string(),
                partition: part,
                offset,
            })
        })
        .collect()
}

async fn alter_offsets(
    State(api): State<Api>,
    Path(name): Path<String>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let changes = parse_offsets(body(raw)?)?;
    api.herder.alter_offsets(&name, changes).await?;
    Ok(Json(
        json!({"message": "The offsets for this connector have been altered successfully"}),
    ))
}

async fn reset_offsets(State(api): State<Api>, Path(name): Path<String>) -> Result<Json<Value>> {
    api.herder.reset_offsets(&name).await?;
    Ok(Json(
        json!({"message": "The offsets for this connector have been reset successfully"}),
    ))
}

async fn plugins(State(api): State<Api>) -> Json<Value> {
    Json(json!(api.herder.plugins()))
}

/// `PUT /connector-plugins/{plugin}/config/validate`: Connect's `ConfigInfos`, one entry
/// per key given (and per key in error), each with its errors.
async fn validate(
    State(api): State<Api>,
    Path(plugin): Path<String>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let config = strings(config_map(body(raw)?, false)?);
    let class = config.get("connector.class").cloned().ok_or_else(|| {
        ApiError::bad_request("Connector config contains no connector type (connector.class)")
    })?;
    let same = |a: &str, b: &str| {
        a == b || a.rsplit('.').next() == Some(b) || b.rsplit('.').next() == Some(a)
    };
    let factory = crate::registry::lookup(&class).map_err(ApiError::bad_request)?;
    if !factory.class_names.iter().any(|c| same(c, &plugin)) {
        return Err(ApiError::bad_request(format!(
            "Included connector type {class} does not match request type {plugin}"
        )));
    }
    let errors = api.herder.validate(&config);
    let shown = public_config(&config);
    let mut keys: Vec<String> = config.keys().cloned().collect();
    for (k, _) in &errors {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    let configs: Vec<Value> = keys
        .iter()
        .map(|k| {
            let errs: Vec<&String> = errors
                .iter()
                .filter(|(e, _)| e == k)
                .map(|(_, r)| r)
                .collect();
            json!({
                "definition": {
                    "name": k, "type": "STRING", "required": false, "default_value": null,
                    "importance": "MEDIUM", "documentation": "", "group": "Common",
                    "width": "NONE", "display_name": k, "dependents": [], "order": -1,
                },
                "value": {
                    "name": k, "value": shown.get(k), "recommended_values": [],
                    "errors": errs, "visible": true,
                },
            })
        })
        .collect();
    Ok(Json(json!({
        "name": factory.class_names[0],
        "error_count": errors.len(),
        "groups": ["Common"],
        "configs": configs,
    })))
}
