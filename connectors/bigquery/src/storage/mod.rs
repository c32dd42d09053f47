//! `useStorageWriteApi=true`: rows go in through the BigQuery Storage Write API
//! (`BigQueryWrite.AppendRows`, bidirectional gRPC) as protocol buffers instead of
//! `tabledata.insertAll` as JSON. Tables are still created and widened over REST.
//!
//! # Which stream
//!
//! Each partition is written through a `COMMITTED` stream of its own, at explicit row
//! offsets, rather than the table's `_default` stream:
//!
//! * rows of a `COMMITTED` stream are visible as soon as the append is acknowledged, as on
//!   `_default`, so `put`/`flush` still return only once BigQuery holds the rows and the
//!   runtime's default `pre_commit` stays right;
//! * a partition's rows go in in record order, so every record has one row position in
//!   its stream. ferry stores the stream and the position reached beside each Kafka offset
//!   commit (the commit metadata, [`writer::metadata`]). After a crash, a restart or a
//!   rebalance, the partition's new task continues the same stream: it appends the
//!   redelivered records at the positions they had, BigQuery answers `ALREADY_EXISTS` for
//!   rows it holds, and those are skipped ([`writer`]). A redelivered record is therefore
//!   written once, not once per delivery — the rows acknowledged but not yet committed to
//!   Kafka when ferry died are not duplicated. The same holds for an append whose answer
//!   was lost. `_default` takes no offset, so the same retries could write rows twice,
//!   and it has no `insertId` de-duplication either.
//!
//! What offsets cannot cover: a stream that is gone when the partition resumes (expired,
//! deleted), and a stream whose table gained columns after the last commit: then a new
//! stream takes the rows, and those written after the last commit may be in twice (a
//! warning says so). A stream is not finalized when a task stops, so that the next run can
//! continue it; when a table gains columns the partition's stream is finalized and a new
//! one, which knows the new columns, takes over.
//!
//! # Client
//!
//! Generated code from `googleapis-tonic-google-cloud-bigquery-storage-v1` (see
//! [`client`]); the rows are written by hand from ferry's data model ([`proto`]), with no
//! dynamic message in between.

pub(crate) mod client;
pub(crate) mod proto;
mod streams;
pub(crate) mod writer;

pub(crate) use client::Client;
pub(crate) use proto::RowType;
pub(crate) use streams::Streams;
pub(crate) use writer::Appended;

/// The most bytes of rows in one append. BigQuery takes requests up to 10 MB; the rest is
/// for the writer schema (~20 KB for a ZTF alert) and framing.
pub(crate) const MAX_REQUEST_BYTES: usize = 9 * 1024 * 1024;

/// The same for the emulator, whose gRPC server keeps grpc's default 4 MiB limit on a
/// received message (local-bigquery 0.4.0).
pub(crate) const MAX_EMULATOR_REQUEST_BYTES: usize = 3 * 1024 * 1024 + 512 * 1024;
