//! HTTP sink, key for key compatible with Confluent's `HttpSinkConnector` (and with the
//! names of Aiven's `http-connector-for-apache-kafka` where they mean the same): each
//! record — or a batch with prefix, separator and suffix — is sent to `http.api.url`
//! with POST, PUT or PATCH, headers, timeouts and basic, bearer or OAuth2 authentication;
//! answers go to a result topic keyed by the request's key, failures to an error topic.
//!
//! Layered as Vector's sinks are: [`config`] (keys) → `request` (encoder and batcher) →
//! `service` (the client, retries, the one retry decision) → `task` (delivery, replies,
//! the watermark that `pre_commit` answers from).
//!
//! At-least-once from request to reply: a record's offset is committable only when its
//! request got a success answer (or was reported as a record error) and its reply, if
//! any, is acknowledged by Kafka.

pub mod config;
mod reply;
mod request;
mod service;
mod task;

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_connector_api::{
    ConfigError, Connector, ConnectorFactory, ConnectorProps, SinkTask, TaskContext, TaskError,
};

pub use config::HttpConfig;

/// Registry entry: Confluent's class name and its aliases.
pub const FACTORY: ConnectorFactory = ConnectorFactory {
    name: "http",
    class_names: &[
        "io.confluent.connect.http.HttpSinkConnector",
        "HttpSinkConnector",
        "http",
    ],
    create,
};

fn create(props: &mut ConnectorProps) -> Result<Box<dyn Connector>, ConfigError> {
    let config = HttpConfig::from_props(props)?;
    Ok(Box::new(HttpConnector {
        config: Arc::new(config),
    }))
}

#[derive(Debug)]
struct HttpConnector {
    config: Arc<HttpConfig>,
}

/// `${connector}` in a reply topic name (Confluent's defaults use it).
fn topic_for(template: &str, connector: &str) -> String {
    template.replace("${connector}", connector)
}

impl Connector for HttpConnector {
    fn create_task(&self, ctx: TaskContext) -> Result<Box<dyn SinkTask>, TaskError> {
        let service = service::Service::new(self.config.clone())?;
        let replies = match &self.config.reporter {
            None => None,
            Some(r) => {
                let overrides: BTreeMap<String, String> = r
                    .client
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose().to_string()))
                    .collect();
                let producer = ctx.producers.producer(&overrides, "reporter.*")?;
                Some(task::Replies {
                    producer,
                    result_topic: r
                        .result_topic
                        .as_deref()
                        .map(|t| topic_for(t, &ctx.connector)),
                    error_topic: r
                        .error_topic
                        .as_deref()
                        .map(|t| topic_for(t, &ctx.connector)),
                    errors_as: r.errors_as,
                })
            }
        };
        Ok(Box::new(task::HttpSinkTask::new(
            self.config.clone(),
            service,
            ctx,
            replies,
        )))
    }
}
