//! The connector's publisher: Google's client, or with `enableCompression=true` ferry's
//! compressing one ([`crate::gzip`]), behind the three calls the task makes.

use std::pin::Pin;

use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::error::PublishError;
use google_cloud_pubsub::model::Message;

use crate::gzip::{GzipError, GzipPublisher};

#[derive(Debug, Clone)]
pub(crate) enum AnyPublisher {
    Google(Publisher),
    Gzip(GzipPublisher),
}

/// Why a publish failed, from either publisher.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishFailure {
    #[error(transparent)]
    Google(PublishError),
    #[error(transparent)]
    Gzip(GzipError),
}

pub(crate) type Published =
    Pin<Box<dyn Future<Output = Result<String, PublishFailure>> + Send + 'static>>;

impl AnyPublisher {
    /// Queues the message now (messages with one ordering key keep the order of these
    /// calls); the future yields its message id.
    pub(crate) fn publish(&self, message: Message) -> Published {
        match self {
            AnyPublisher::Google(p) => {
                let sent = p.publish(message);
                Box::pin(async move { sent.await.map_err(PublishFailure::Google) })
            }
            AnyPublisher::Gzip(p) => {
                let message =
                    googleapis_tonic_google_pubsub_v1::google::pubsub::v1::PubsubMessage {
                        data: message.data,
                        attributes: message.attributes,
                        ordering_key: message.ordering_key,
                        ..Default::default()
                    };
                let sent = p.publish(message);
                Box::pin(async move { sent.await.map_err(PublishFailure::Gzip) })
            }
        }
    }

    /// Sends what is batched and waits for the results of everything published so far.
    pub(crate) async fn flush(&self) {
        match self {
            AnyPublisher::Google(p) => p.flush().await,
            AnyPublisher::Gzip(p) => p.flush().await,
        }
    }

    /// Lets an ordering key paused by a failed publish publish again.
    pub(crate) fn resume_publish(&self, key: String) {
        match self {
            AnyPublisher::Google(p) => p.resume_publish(key),
            AnyPublisher::Gzip(p) => p.resume_publish(key),
        }
    }
}
