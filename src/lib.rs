//! ferry: a Kafka Connect compatible runtime for sink connectors.
//!
//! The pieces, each in its own module, follow Kafka Connect's concepts:
//! [`config`] (worker and connector files), [`registry`] (connector classes),
//! [`convert`] (converters), [`offsets`] (the file offset store), [`worker`] (consumers
//! and tasks), [`herder`] (the control plane the CLI and [`rest`] API drive), [`metrics`]
//! (Prometheus).

pub mod auth;
pub mod check;
pub mod cli;
pub mod config;
pub mod convert;
pub mod herder;
pub mod kafka;
pub mod metrics;
pub mod offsets;
pub mod openmsistream;
pub mod producer;
#[cfg(feature = "quickstart")]
pub mod quickstart;
pub mod registry;
pub mod rest;
pub mod telemetry;
pub(crate) mod topics;
pub mod worker;
