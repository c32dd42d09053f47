//! BigQuery's REST API (v2): the table calls and `tabledata.insertAll`, over `reqwest`
//! with tokens from Google's `google-cloud-auth`.
//!
//! Written by hand because no maintained crate fits: Google's official Rust BigQuery
//! crates have no `insertAll`, and `gcp-bigquery-client` brings its own HTTP and OAuth
//! stack (a second `reqwest`, `yup-oauth2`) beside the one ferry already builds for
//! Pub/Sub. These are five JSON calls.

use std::time::Duration;

use ferry_connector_api::error_chain;
use google_cloud_auth::credentials::Credentials;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::config::{BigQueryConfig, Partitioning};
use crate::schema::Field;

/// Per request: BigQuery answers insertAll within seconds; a minute means it is stuck.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed call, by what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// 5xx, 429, quota and rate-limit errors, timeouts, a broken connection.
    #[error("{0}")]
    Retriable(String),
    /// 404: the dataset or table does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 409: what was to be created exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// Anything else (bad request, permission denied): retrying cannot help.
    #[error("{0}")]
    Fatal(String),
}

/// A row BigQuery refused, by its index in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRejection {
    pub index: usize,
    /// `reason: message` of each error; empty reasons are dropped.
    pub message: String,
    /// Only `stopped`: refused because another row of the request was invalid.
    pub stopped: bool,
}

/// A request's body.
enum Body<'a> {
    None,
    Json(&'a Json),
    /// JSON already written.
    Text(String),
}

/// The REST client of one connector: an HTTP connection pool and credentials.
#[derive(Debug, Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    project: String,
    dataset: String,
    credentials: Credentials,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct InsertResponse {
    #[serde(default, rename = "insertErrors")]
    insert_errors: Vec<InsertError>,
}

#[derive(Deserialize)]
struct InsertError {
    index: usize,
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct TableResource {
    #[serde(default)]
    schema: Option<TableSchema>,
}

#[derive(Deserialize)]
struct TableSchema {
    #[serde(default)]
    fields: Vec<Field>,
}

impl Rest {
    pub fn new(config: &BigQueryConfig, credentials: Credentials) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: format!("{}/bigquery/v2", config.rest_endpoint.trim_end_matches('/')),
            project: config.project.clone(),
            dataset: config.dataset.clone(),
            credentials,
        })
    }

    /// `project.dataset.table`, the way error lines name a table.
    pub fn table_name(&self, table: &str) -> String {
        format!("{}.{}.{table}", self.project, self.dataset)
    }

    fn dataset_url(&self) -> String {
        format!(
            "{}/projects/{}/datasets/{}",
            self.base, self.project, self.dataset
        )
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Body<'_>,
        what: &str,
    ) -> Result<Json, CallError> {
        let headers = ferry_gcp_auth::headers(&self.credentials)
            .await
            .map_err(CallError::Retriable)?;
        let mut request = self.http.request(method, url).headers(headers);
        match body {
            Body::None => {}
            Body::Json(json) => request = request.json(json),
            Body::Text(text) => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(text);
            }
        }
        let response = request
            .send()
            .await
            .map_err(|e| CallError::Retriable(format!("{what}: {}", error_chain(&e))))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| CallError::Retriable(format!("{what}: reading the answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|e| CallError::Fatal(format!("{what}: the answer is not JSON ({e})")));
        }
        Err(classify(status.as_u16(), &text, what))
    }

    /// The credentials the calls are made with.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The dataset exists and the credentials may read it.
    pub async fn check_dataset(&self) -> Result<(), CallError> {
        let what = format!("looking up dataset {}.{}", self.project, self.dataset);
        self.call(reqwest::Method::GET, &self.dataset_url(), Body::None, &what)
            .await
            .map(|_| ())
    }

    /// The table's columns, or `None` when it does not exist.
    pub async fn table_fields(&self, table: &str) -> Result<Option<Vec<Field>>, CallError> {
        let url = format!("{}/tables/{table}", self.dataset_url());
        let what = format!("looking up table {}", self.table_name(table));
        match self
            .call(reqwest::Method::GET, &url, Body::None, &what)
            .await
        {
            Ok(json) => {
                let t: TableResource = serde_json::from_value(json).map_err(|e| {
                    CallError::Fatal(format!("{what}: unexpected table resource ({e})"))
                })?;
                Ok(Some(t.schema.map(|s| s.fields).unwrap_or_default()))
            }
            Err(CallError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the table with `fields`, partitioned and clustered as configured. A table
    /// that appeared meanwhile (another task) is fine.
    pub async fn create_table(
        &self,
        table: &str,
        fields: &[Field],
        config: &BigQueryConfig,
    ) -> Result<(), CallError> {
        let mut resource = json!({
            "tableReference": {"projectId": self.project, "datasetId": self.dataset, "tableId": table},
            "schema": {"fields": fields},
        });
        if let Some(tp) = time_partitioning(config) {
            resource["timePartitioning"] = tp;
        }
        if !config.clustering_fields.is_empty() {
            resource["clustering"] = json!({"fields": config.clustering_fields});
        }
        let url = format!("{}/tables", self.dataset_url());
        let what = format!("creating table {}", self.table_name(table));
        match self
            .call(reqwest::Method::POST, &url, Body::Json(&resource), &what)
            .await
        {
            Ok(_) => Ok(()),
            Err(CallError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Replaces the table's columns with `fields` (which must keep every existing one).
    pub async fn update_fields(&self, table: &str, fields: &[Field]) -> Result<(), CallError> {
        let url = format!("{}/tables/{table}", self.dataset_url());
        let what = format!("adding columns to table {}", self.table_name(table));
        let body = json!({"schema": {"fields": fields}});
        self.call(reqwest::Method::PATCH, &url, Body::Json(&body), &what)
            .await
            .map(|_| ())
    }

    /// `tabledata.insertAll` of `rows` (insertId, row as JSON text). All or nothing: when
    /// a row is refused, none is inserted and the refusals come back.
    pub async fn insert_all(
        &self,
        table: &str,
        rows: &[(String, &str)],
    ) -> Result<Vec<RowRejection>, CallError> {
        let url = format!("{}/tables/{table}/insertAll", self.dataset_url());
        let what = format!(
            "inserting {} rows into {}",
            rows.len(),
            self.table_name(table)
        );
        // The rows are JSON already: spliced in, not parsed and written again.
        let mut body = String::with_capacity(rows.iter().map(|(_, r)| r.len() + 64).sum());
        body.push_str(r#"{"skipInvalidRows":false,"ignoreUnknownValues":false,"rows":["#);
        for (i, (id, row)) in rows.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(r#"{"insertId":"#);
            body.push_str(&Json::String(id.clone()).to_string());
            body.push_str(r#","json":"#);
            body.push_str(row);
            body.push('}');
        }
        body.push_str("]}");
        let body = Body::Text(body);
        let answer = self.call(reqwest::Method::POST, &url, body, &what).await?;
        let parsed: InsertResponse = serde_json::from_value(answer)
            .map_err(|e| CallError::Fatal(format!("{what}: unexpected answer ({e})")))?;
        Ok(parsed
            .insert_errors
            .into_iter()
            .map(|e| {
                let stopped =
                    !e.errors.is_empty() && e.errors.iter().all(|i| i.reason == "stopped");
                let message = e
                    .errors
                    .iter()
                    .filter(|i| i.reason != "stopped")
                    .map(|i| {
                        if i.reason.is_empty() {
                            i.message.clone()
                        } else {
                            format!("{}: {}", i.reason, i.message)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                RowRejection {
                    index: e.index,
                    message,
                    stopped,
                }
            })
            .collect())
    }
}

fn time_partitioning(config: &BigQueryConfig) -> Option<Json> {
    let kind = match config.partitioning {
        Partitioning::None => return None,
        Partitioning::Hour => "HOUR",
        Partitioning::Day => "DAY",
        Partitioning::Month => "MONTH",
        Partitioning::Year => "YEAR",
    };
    let mut tp = json!({"type": kind});
    if let Some(field) = &config.partition_field {
        tp["field"] = json!(field);
    }
    if let Some(expiry) = config.partition_expiration {
        tp["expirationMs"] = json!(expiry.as_millis().to_string());
    }
    Some(tp)
}

/// What an HTTP error status means for a retry. BigQuery reports quota and rate limits as
/// 403 with a reason, and transient backend trouble as 5xx.
pub fn classify(status: u16, body: &str, what: &str) -> CallError {
    let (message, reasons) = match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) => (
            b.error.message,
            b.error.errors.into_iter().map(|e| e.reason).collect(),
        ),
        Err(_) => (body.chars().take(300).collect(), Vec::new()),
    };
    let line = format!("{what}: HTTP {status}: {message}");
    let transient_reason = reasons.iter().any(|r| {
        matches!(
            r.as_str(),
            "quotaExceeded" | "rateLimitExceeded" | "backendError" | "internalError"
        )
    });
    match status {
        404 => CallError::NotFound(line),
        409 => CallError::AlreadyExists(line),
        408 | 429 | 500..=599 => CallError::Retriable(line),
        403 if transient_reason => CallError::Retriable(line),
        _ => CallError::Fatal(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_and_server_errors_are_retried_the_rest_are_not() {
        let quota = r#"{"error":{"code":403,"message":"Exceeded rate limits","errors":[{"reason":"rateLimitExceeded","message":"x"}]}}"#;
        assert!(matches!(classify(403, quota, "w"), CallError::Retriable(_)));
        let denied = r#"{"error":{"code":403,"message":"Access Denied","errors":[{"reason":"accessDenied"}]}}"#;
        let e = classify(403, denied, "inserting 3 rows into p.d.t");
        assert_eq!(
            e,
            CallError::Fatal("inserting 3 rows into p.d.t: HTTP 403: Access Denied".into())
        );
        assert!(matches!(
            classify(503, "<html>", "w"),
            CallError::Retriable(_)
        ));
        assert!(matches!(classify(404, "{}", "w"), CallError::NotFound(_)));
        assert!(matches!(classify(400, "{}", "w"), CallError::Fatal(_)));
    }
}
