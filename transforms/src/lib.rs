//! Kafka Connect's single message transforms and predicates.
//!
//! A [`Chain`] is built from a connector's keys exactly as Connect reads them
//! (`transforms=a,b`, `transforms.a.type=…`, `transforms.a.predicate=p`,
//! `transforms.a.negate=true`, `predicates=p`, `predicates.p.type=…`) and applies its
//! transforms in order to each record. The crate is pure: no I/O, no Kafka client.
//!
//! A transformed structured value carries new `raw` bytes — the JSON text Connect's
//! `JsonConverter` with `schemas.enable=false` would write for it — so a sink that writes
//! bytes writes readable JSON; an untouched value keeps the bytes it was read from.
//!
//! The runtime builds one chain per connector with [`Chain::take`] while it reads the
//! connector's keys (keys the chain does not read stay behind to be reported as unknown),
//! then runs [`Transform::apply`] on each converted record: `Ok(None)` is a record a Filter
//! dropped, `Err` a TRANSFORMATION-stage error for `errors.tolerance`.

mod cast;
mod chain;
mod datefmt;
mod extract_hoist;
mod filter;
mod flatten;
mod header_converter;
mod headers;
mod insert_field;
mod json;
mod keys;
mod mask_field;
mod replace_field;
mod router;
#[cfg(test)]
mod testing;
mod timestamp_converter;
mod value;
mod value_to_key;
mod values;

use std::fmt;

use ferry_connector_api::SinkRecord;

pub use chain::{Chain, known_transforms};
pub use header_converter::HeaderConverter;

/// One single message transform.
pub trait Transform: Send + Sync + fmt::Debug {
    /// The transformed record, or `None` when the transform drops it (Filter).
    fn apply(&self, record: SinkRecord) -> Result<Option<SinkRecord>, TransformError>;
}

/// A condition on a record that decides whether a transform applies.
pub trait Predicate: Send + Sync + fmt::Debug {
    fn test(&self, record: &SinkRecord) -> bool;
}

/// A transform that cannot transform a record (a field that is missing, a value of the
/// wrong kind). The runtime treats it as a TRANSFORMATION-stage error under
/// `errors.tolerance`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", if transform.is_empty() { String::new() } else { format!("transform {transform}: ") })]
pub struct TransformError {
    /// The transform's alias and class, as the chain names it (`a (InsertField$Value)`);
    /// empty when the transform ran outside a chain.
    pub transform: String,
    /// The failing transform's full Java class name
    /// (`org.apache.kafka.connect.transforms.TimestampRouter`), for the error's
    /// `class_name` (the dead-letter queue's `__connect.errors.class.name`); empty outside
    /// a chain.
    pub class: String,
    pub reason: String,
    /// The stage when it is not TRANSFORMATION: HEADER_CONVERTER for a header value the
    /// header converter cannot write (`class` is then the converter's).
    pub stage: Option<ferry_connector_api::Stage>,
}

impl TransformError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            transform: String::new(),
            class: String::new(),
            reason: reason.into(),
            stage: None,
        }
    }
}

pub(crate) type Result<T, E = TransformError> = std::result::Result<T, E>;
