//! BigQuery sink, key for key compatible with the Kafka Connect BigQuery sink
//! (`com.wepay.kafka.connect.bigquery.BigQuerySinkConnector`), with two row shapes:
//!
//! * `decoded` (the connector's behaviour): one column per field of the record value as a
//!   structured converter decoded it — for ZTF, `ferry.converters.AvroContainerConverter`
//!   reads the schema each alert carries, so the table needs no schema written by hand;
//! * `raw`: the record's bytes and Kafka metadata, whatever the bytes are.
//!
//! Rows go in with `tabledata.insertAll`, `insertId = topic-partition-offset`, or with
//! `useStorageWriteApi=true` through the Storage Write API (a `COMMITTED` stream per task
//! and table, at explicit offsets: [`storage`]); either way `put`/`flush` return once
//! BigQuery acknowledged the rows. Tables are created and widened over REST.

pub mod config;
pub mod raw;
pub mod rest;
pub mod rows;
pub mod schema;
mod storage;
mod task;

use std::sync::Arc;
use std::time::Duration;

use ferry_connector_api::{
    ConfigError, Connector, ConnectorFactory, ConnectorProps, SinkTask, TaskContext, TaskError,
    async_trait,
};

pub use config::{BigQueryConfig, Credentials, Mode};

/// Registry entry: the connector's class name and its aliases.
pub const FACTORY: ConnectorFactory = ConnectorFactory {
    name: "bigquery",
    class_names: &[
        "com.wepay.kafka.connect.bigquery.BigQuerySinkConnector",
        "BigQuerySinkConnector",
        "bigquery",
    ],
    create,
};

/// How long the start-up check waits for a token and the dataset lookup.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(15);

fn create(props: &mut ConnectorProps) -> Result<Box<dyn Connector>, ConfigError> {
    let config = BigQueryConfig::from_props(props)?;
    Ok(Box::new(BigQueryConnector {
        config: Arc::new(config),
        clients: Arc::default(),
        tables: task::Tables::default(),
    }))
}

#[derive(Debug)]
struct BigQueryConnector {
    config: Arc<BigQueryConfig>,
    /// Built by the start-up check (they need credentials), shared by the tasks.
    clients: Arc<std::sync::OnceLock<Clients>>,
    tables: task::Tables,
}

/// The connector's clients, sharing one set of credentials.
#[derive(Debug, Clone)]
struct Clients {
    rest: rest::Rest,
    /// With `useStorageWriteApi=true`.
    storage: Option<storage::Client>,
}

impl BigQueryConnector {
    fn clients(&self) -> Result<Clients, TaskError> {
        if let Some(c) = self.clients.get() {
            return Ok(c.clone());
        }
        let creds =
            ferry_gcp_auth::load(&self.config.credentials, KEY_NAMES).map_err(TaskError::fatal)?;
        let storage = if self.config.storage_write_api {
            Some(storage::Client::new(&self.config, creds.clone()).map_err(TaskError::fatal)?)
        } else {
            None
        };
        let rest = rest::Rest::new(&self.config, creds).map_err(TaskError::fatal)?;
        Ok(self
            .clients
            .get_or_init(|| Clients { rest, storage })
            .clone())
    }
}

/// The connector's credential keys, as error lines name them.
const KEY_NAMES: ferry_gcp_auth::KeyNames = ferry_gcp_auth::KeyNames {
    file: "keyfile",
    json: "keyfile (keySource=JSON)",
};

/// What the sink asks the runtime to read ahead (see `Connector::read_ahead_bytes`).
pub const READ_AHEAD_BYTES: usize = 4 * 1024 * 1024;

#[async_trait]
impl Connector for BigQueryConnector {
    /// BigQuery takes rows far slower than Kafka gives them (a task buffers up to a 9 MB
    /// request of its own), so 4 MiB of read-ahead instead of the runtime's 16 MiB; the
    /// files' `queued.max.messages.kbytes` and `fetch.max.bytes` still win.
    fn read_ahead_bytes(&self) -> Option<usize> {
        Some(READ_AHEAD_BYTES)
    }

    async fn preflight(&self) -> Result<(), TaskError> {
        tracing::info!(
            project = %self.config.project,
            dataset = %self.config.dataset,
            endpoint = %self.config.rest_endpoint,
            mode = ?self.config.mode,
            writes = if self.config.storage_write_api { "Storage Write API, a COMMITTED stream per task and table" } else { "tabledata.insertAll" },
            "Checking the BigQuery dataset and credentials."
        );
        let rest = self.clients()?.rest;
        ferry_gcp_auth::check_token(
            rest.credentials(),
            &self.config.credentials,
            KEY_NAMES,
            PREFLIGHT_TIMEOUT,
        )
        .await
        .map_err(TaskError::fatal)?;
        match tokio::time::timeout(PREFLIGHT_TIMEOUT, rest.check_dataset()).await {
            Err(_) => Err(TaskError::fatal(format!(
                "BigQuery at {} did not answer within {} s (ferry.bigquery.endpoint, network, or the credentials' token server)",
                self.config.rest_endpoint,
                PREFLIGHT_TIMEOUT.as_secs()
            ))),
            Ok(Err(rest::CallError::NotFound(_))) => Err(TaskError::fatal(format!(
                "dataset {}.{} does not exist (defaultDataset); create it with `bq mk {}:{}` — ferry creates tables, not datasets",
                self.config.project, self.config.dataset, self.config.project, self.config.dataset
            ))),
            Ok(Err(e)) => Err(TaskError::fatal(e.to_string())),
            Ok(Ok(())) => Ok(()),
        }
    }

    fn create_task(&self, ctx: TaskContext) -> Result<Box<dyn SinkTask>, TaskError> {
        let clients = self.clients()?;
        Ok(Box::new(task::BigQuerySinkTask::new(
            self.config.clone(),
            clients.rest,
            clients.storage,
            self.tables.clone(),
            ctx,
        )))
    }
}
