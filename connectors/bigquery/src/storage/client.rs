//! The Storage Write API's calls (`google.cloud.bigquery.storage.v1.BigQueryWrite`) over
//! tonic, with the messages and client stub generated from Google's protos by the
//! `googleapis-tonic-google-cloud-bigquery-storage-v1` crate (tonic and prost 0.14, the
//! versions `google-cloud-pubsub` already brings).
//!
//! TLS (aws-lc-rs, the system's roots) and a bearer token per call for Google; plaintext
//! and no token for the emulator. Each call names its resource in
//! `x-goog-request-params`, which Google's front ends route by.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use google_cloud_auth::credentials::Credentials;
use googleapis_tonic_google_cloud_bigquery_storage_v1::google::cloud::bigquery::storage::v1 as api;
use tokio::sync::mpsc;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status, Streaming};

pub(crate) use api::append_rows_request::{ProtoData, Rows};
pub(crate) use api::append_rows_response::Response as Answer;
pub(crate) use api::{AppendRowsRequest, AppendRowsResponse, ProtoRows, ProtoSchema};

use crate::config::BigQueryConfig;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The Storage Write client of one connector, shared by its tasks: one HTTP/2 connection,
/// opened on first use.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    endpoint: Endpoint,
    /// Built on first use: tonic spawns the connection's worker, which needs the runtime.
    channel: Arc<OnceLock<Channel>>,
    credentials: Credentials,
    project: String,
    dataset: String,
}

/// One `AppendRows` call: requests go out on `requests`, answers come back in order.
#[derive(Debug)]
pub(crate) struct Connection {
    requests: mpsc::Sender<AppendRowsRequest>,
    answers: Streaming<AppendRowsResponse>,
}

impl Client {
    /// `ferry.bigquery.storage.endpoint`: `https://…` (TLS), `http://…` (plaintext), or a
    /// bare `host:port`, plaintext for the emulator and TLS otherwise.
    pub(crate) fn new(config: &BigQueryConfig, credentials: Credentials) -> Result<Self, String> {
        let given = config.storage_endpoint.trim().trim_end_matches('/');
        let url = if given.contains("://") {
            given.to_string()
        } else if config.emulator {
            format!("http://{given}")
        } else {
            format!("https://{given}")
        };
        let bad = |e: &dyn std::fmt::Display| {
            format!("ferry.bigquery.storage.endpoint `{given}` cannot be used: {e}")
        };
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| bad(&e))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| bad(&e))?;
        if url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| bad(&e))?;
        }
        Ok(Self {
            endpoint,
            channel: Arc::default(),
            credentials,
            project: config.project.clone(),
            dataset: config.dataset.clone(),
        })
    }

    fn stub(&self) -> api::big_query_write_client::BigQueryWriteClient<Channel> {
        let channel = self
            .channel
            .get_or_init(|| self.endpoint.connect_lazy())
            .clone();
        api::big_query_write_client::BigQueryWriteClient::new(channel)
    }

    /// `projects/p/datasets/d/tables/t`, the API's name of a table.
    pub(crate) fn table_path(&self, table: &str) -> String {
        format!(
            "projects/{}/datasets/{}/tables/{table}",
            self.project, self.dataset
        )
    }

    /// `project.dataset.table`, the way error lines name a table.
    pub(crate) fn table_name(&self, table: &str) -> String {
        format!("{}.{}.{table}", self.project, self.dataset)
    }

    /// `message` with the credentials' headers and the routing header `key=value`.
    async fn request<T>(&self, message: T, key: &str, value: &str) -> Result<Request<T>, Status> {
        // A token that cannot be had now may be had later (the token server, the network).
        let headers = ferry_gcp_auth::headers(&self.credentials)
            .await
            .map_err(Status::unavailable)?;
        let mut request = Request::new(message);
        *request.metadata_mut() = MetadataMap::from_headers(headers);
        let routing = MetadataValue::try_from(ferry_gcp_auth::request_params(key, value))
            .map_err(|e| Status::invalid_argument(format!("routing header: {e}")))?;
        request
            .metadata_mut()
            .insert("x-goog-request-params", routing);
        Ok(request)
    }

    /// Creates a `COMMITTED` stream on `table`; returns its name.
    pub(crate) async fn create_stream(&self, table: &str) -> Result<String, Status> {
        let parent = self.table_path(table);
        let message = api::CreateWriteStreamRequest {
            parent: parent.clone(),
            write_stream: Some(api::WriteStream {
                r#type: api::write_stream::Type::Committed as i32,
                ..Default::default()
            }),
        };
        let request = self.request(message, "parent", &parent).await?;
        let stream = self.stub().create_write_stream(request).await?.into_inner();
        if stream.name.is_empty() {
            return Err(Status::internal(
                "CreateWriteStream answered without a name",
            ));
        }
        Ok(stream.name)
    }

    /// Finalizes a stream: it takes no more rows. Returns its row count.
    pub(crate) async fn finalize(&self, stream: &str) -> Result<i64, Status> {
        let message = api::FinalizeWriteStreamRequest {
            name: stream.to_string(),
        };
        let request = self.request(message, "name", stream).await?;
        let answer = self.stub().finalize_write_stream(request).await?;
        Ok(answer.into_inner().row_count)
    }

    /// Opens an `AppendRows` call with its first request (which must name the stream and
    /// carry the writer schema).
    pub(crate) async fn connect(&self, first: AppendRowsRequest) -> Result<Connection, Status> {
        let (requests, rx) = mpsc::channel(1);
        let stream = first.write_stream.clone();
        // Queued before the call starts: a server may answer the headers only once it has
        // a request.
        requests
            .send(first)
            .await
            .map_err(|_| Status::internal("the request queue closed"))?;
        let outgoing =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
            );
        let request = self.request(outgoing, "write_stream", &stream).await?;
        let answers = self.stub().append_rows(request).await?.into_inner();
        Ok(Connection { requests, answers })
    }
}

impl Connection {
    pub(crate) async fn send(&mut self, request: AppendRowsRequest) -> Result<(), Status> {
        self.requests
            .send(request)
            .await
            .map_err(|_| Status::unavailable("the AppendRows call has ended"))
    }

    /// The next answer, in the order of the requests.
    pub(crate) async fn answer(&mut self) -> Result<AppendRowsResponse, Status> {
        self.answers
            .message()
            .await?
            .ok_or_else(|| Status::unavailable("the server ended the AppendRows call"))
    }
}

/// Codes worth another try: the service's transient ones (Google's list for the Storage
/// Write API), a deadline, and tonic's own for a call cut short.
pub(crate) fn is_retriable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::Internal
            | Code::Aborted
            | Code::DeadlineExceeded
            | Code::Cancelled
    )
}

/// Whether a call that ended with `status` (rather than an answer) is worth another try:
/// the codes above, and UNKNOWN, which is how tonic reports a connection cut mid-call
/// ("error reading a body from connection").
pub(crate) fn is_retriable_call(status: &Status) -> bool {
    is_retriable(status.code()) || status.code() == Code::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes_are_retried_the_rest_are_not() {
        for code in [
            Code::Unavailable,
            Code::ResourceExhausted,
            Code::Internal,
            Code::Aborted,
            Code::DeadlineExceeded,
        ] {
            assert!(is_retriable(code), "{code:?}");
        }
        assert!(is_retriable_call(&Status::unknown(
            "error reading a body from connection"
        )));
        assert!(!is_retriable(Code::Unknown));
        for code in [
            Code::InvalidArgument,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::NotFound,
            Code::AlreadyExists,
            Code::OutOfRange,
        ] {
            assert!(!is_retriable(code), "{code:?}");
        }
    }
}
