//! Google Cloud Pub/Sub sink, key for key compatible with Google's
//! `CloudPubSubSinkConnector`: each Kafka record becomes one Pub/Sub message whose data is
//! the record value's bytes, unchanged, with Kafka metadata as attributes.
//!
//! Publishing uses Google's official Rust client (`google-cloud-pubsub`), which batches
//! by count, bytes and delay as Google's Java connector does and retries transient errors
//! within a total deadline. ferry adds what the Java connector's settings add there: a
//! per-attempt timeout, flow control by outstanding messages and bytes, and offsets that
//! advance only over acknowledged messages.

mod client;
mod config;
mod mapping;
mod task;

use std::sync::Arc;

use ferry_connector_api::{
    ConfigError, Connector, ConnectorFactory, ConnectorProps, SinkTask, TaskContext, TaskError,
    async_trait,
};

pub use config::{CredentialSource, OrderingKeySource, PubSubConfig};

/// Registry entry: Google's class name and its aliases.
pub const FACTORY: ConnectorFactory = ConnectorFactory {
    name: "pubsub",
    class_names: &[
        "com.google.pubsub.kafka.sink.CloudPubSubSinkConnector",
        "CloudPubSubSinkConnector",
        "pubsub",
    ],
    create,
};

fn create(props: &mut ConnectorProps) -> Result<Box<dyn Connector>, ConfigError> {
    let config = PubSubConfig::from_props(props)?;
    // Google's clients switch to the emulator when this is set; so does ferry.
    let emulator_host = std::env::var("PUBSUB_EMULATOR_HOST").ok();
    let endpoint = client::endpoint(&config, emulator_host.as_deref());
    Ok(Box::new(PubSubConnector {
        config: Arc::new(config),
        endpoint,
    }))
}

#[derive(Debug)]
struct PubSubConnector {
    config: Arc<PubSubConfig>,
    endpoint: client::Endpoint,
}

#[async_trait]
impl Connector for PubSubConnector {
    async fn preflight(&self) -> Result<(), TaskError> {
        if self.config.enable_compression {
            tracing::warn!(
                topic = %self.config.topic_path(),
                "enableCompression=true: Google's Rust Pub/Sub client cannot compress publish requests; publishing uncompressed."
            );
        }
        tracing::info!(
            topic = %self.config.topic_path(),
            endpoint = %self.endpoint.url,
            emulator = self.endpoint.emulator,
            "Checking the Pub/Sub topic and credentials."
        );
        client::preflight(&self.config, &self.endpoint).await
    }

    fn create_task(&self, ctx: TaskContext) -> Result<Box<dyn SinkTask>, TaskError> {
        Ok(Box::new(task::PubSubSinkTask::new(
            self.config.clone(),
            self.endpoint.clone(),
            ctx,
        )))
    }
}
