//! `useStorageWriteApi=true`: rows go in through the BigQuery Storage Write API
//! (`BigQueryWrite.AppendRows`, bidirectional gRPC) as protocol buffers instead of
//! `tabledata.insertAll` as JSON. Tables are still created and widened over REST.
//!
//! # Which stream
//!
//! Each task writes each table through a `COMMITTED` stream of its own, at explicit
//! offsets, rather than the table's `_default` stream:
//!
//! * rows of a `COMMITTED` stream are visible as soon as the append is acknowledged, as on
//!   `_default`, so `put`/`flush` still return only once BigQuery holds the rows and the
//!   runtime's default `pre_commit` stays right;
//! * the offset makes a retry idempotent. An append whose answer was lost is sent again at
//!   the same offset with the same rows, and BigQuery answers `ALREADY_EXISTS` if it had
//!   written them ([`writer`]). `_default` takes no offset, so the same retry could write
//!   the rows twice, and it has no `insertId` de-duplication either.
//!
//! What offsets cannot cover: a stream lives as long as its task. After a crash or a
//! restart the task creates a new stream, and Kafka redelivers from the last committed
//! offset, so the rows acknowledged by BigQuery but not yet committed to Kafka (at most
//! `offset.flush.interval.ms` worth) are written again. That is the at-least-once bound,
//! as with insertAll past its de-duplication window.
//!
//! When a table gains columns, the task finalizes its stream on it and creates a new one,
//! which knows the new columns.
//!
//! # Client
//!
//! Generated code from `googleapis-tonic-google-cloud-bigquery-storage-v1` (see
//! [`client`]); the rows are written by hand from ferry's data model ([`proto`]), with no
//! dynamic message in between.

pub(crate) mod client;
pub(crate) mod proto;
pub(crate) mod writer;

pub(crate) use client::Client;
pub(crate) use proto::{RowType, raw_row};
pub(crate) use writer::{AppendError, Appended, TableWriter};

/// The most bytes of rows in one append. BigQuery takes requests up to 10 MB; the rest is
/// for the writer schema (~20 KB for a ZTF alert) and framing.
pub(crate) const MAX_REQUEST_BYTES: usize = 9 * 1024 * 1024;

/// The same for the emulator, whose gRPC server keeps grpc's default 4 MiB limit on a
/// received message (local-bigquery 0.4.0).
pub(crate) const MAX_EMULATOR_REQUEST_BYTES: usize = 3 * 1024 * 1024 + 512 * 1024;
