//! Buffered rows to requests: which rows go together (a lane: a table, with the Storage
//! Write API a partition's stream; at most a request's rows and bytes; one writer schema
//! per append), and the request bodies of both write paths.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use ferry_connector_api::{SinkRecord, TaskError, TopicPartition};

use super::encoder::Encoded;
use crate::storage::{self, RowType};

/// insertAll takes at most 50 000 rows and 10 MB per request; Google recommends 500 rows.
/// Storage Write appends have no row limit; they take as many, so both paths batch alike.
const MAX_ROWS_PER_REQUEST: usize = 500;
/// Bytes of row JSON per request, below the 10 MB limit with room for the envelope.
const MAX_BYTES_PER_REQUEST: usize = 9 * 1024 * 1024;

/// A row ready to go, serialized, with the record it came from.
pub(super) struct Pending {
    pub(super) record: SinkRecord,
    pub(super) row: Encoded,
}

/// Where buffered rows go: a table, and with the Storage Write API the partition's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lane {
    pub(super) table: String,
    pub(super) partition: Option<TopicPartition>,
}

/// Rows and bytes per request: insertAll's, or the Storage Write API's (the emulator's
/// with `emulator`).
pub(super) fn limits(storage_write: bool, emulator: bool) -> (usize, usize) {
    match storage_write {
        false => (MAX_ROWS_PER_REQUEST, MAX_BYTES_PER_REQUEST),
        true if emulator => (MAX_ROWS_PER_REQUEST, storage::MAX_EMULATOR_REQUEST_BYTES),
        true => (MAX_ROWS_PER_REQUEST, storage::MAX_REQUEST_BYTES),
    }
}

/// How many rows of `rows` make the next request, and whether that is a whole one (the
/// limits are reached, or rows are left over).
pub(super) fn chunk_len(
    rows: &VecDeque<Pending>,
    max_rows: usize,
    max_bytes: usize,
) -> (usize, bool) {
    let mut size = 0;
    let mut n = 0;
    while n < rows.len() && n < max_rows {
        if n > 0 && (size + rows[n].row.len() > max_bytes || !rows[n].row.goes_with(&rows[0].row)) {
            break;
        }
        size += rows[n].row.len();
        n += 1;
    }
    (n, n == max_rows || n < rows.len())
}

/// An insertAll request's rows: (`insertId` = topic-partition-offset, JSON row).
pub(super) fn insert_rows(chunk: &[Pending]) -> Result<Vec<(String, &str)>, TaskError> {
    let mut request: Vec<(String, &str)> = Vec::with_capacity(chunk.len());
    for p in chunk.iter() {
        let r = &p.record;
        let Encoded::Json(row) = &p.row else {
            return Err(TaskError::fatal(
                "a Storage Write row among insertAll rows (a bug in ferry)",
            ));
        };
        request.push((
            format!("{}-{}-{}", r.topic, r.partition, r.offset),
            row.as_str(),
        ));
    }
    Ok(request)
}

/// A Storage Write append's rows, with their one writer schema.
pub(super) fn append_rows(chunk: &[Pending]) -> Result<(Arc<RowType>, Vec<Bytes>), TaskError> {
    let mut row_type = None;
    let mut rows = Vec::with_capacity(chunk.len());
    for p in chunk.iter() {
        if let Encoded::Proto { row, row_type: t } = &p.row {
            row_type.get_or_insert_with(|| t.clone());
            rows.push(row.clone());
        }
    }
    match (row_type, rows.len() == chunk.len()) {
        (Some(row_type), true) => Ok((row_type, rows)),
        _ => Err(TaskError::fatal(
            "a row for insertAll among Storage Write rows (a bug in ferry)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw;

    fn pending(rows: Vec<Encoded>) -> VecDeque<Pending> {
        rows.into_iter()
            .enumerate()
            .map(|(i, row)| Pending {
                record: SinkRecord {
                    topic: "t".into(),
                    original_topic: None,
                    partition: 0,
                    offset: i as i64,
                    timestamp: None,
                    key: None,
                    value: None,
                    headers: Vec::new(),
                },
                row,
            })
            .collect()
    }

    #[test]
    fn requests_end_at_the_row_and_byte_limits_and_at_a_new_writer_schema() {
        let a = Arc::new(RowType::new(&raw::table_fields()).unwrap());
        let b = Arc::new(RowType::new(&raw::table_fields()).unwrap());
        let proto = |t: &Arc<RowType>, n: usize| Encoded::Proto {
            row: Bytes::from(vec![0u8; n]),
            row_type: t.clone(),
        };
        let rows = pending(vec![
            proto(&a, 10),
            proto(&a, 10),
            proto(&a, 10),
            proto(&b, 10),
        ]);
        assert_eq!(chunk_len(&rows, 500, 1000), (3, true), "not across schemas");
        assert_eq!(chunk_len(&rows, 2, 1000), (2, true));
        assert_eq!(chunk_len(&rows, 500, 25), (2, true));
        let rows = pending(vec![proto(&b, 10)]);
        assert_eq!(chunk_len(&rows, 500, 1000), (1, false), "waits for more");
        let rows = pending(vec![proto(&a, 50), proto(&a, 1)]);
        assert_eq!(chunk_len(&rows, 500, 25), (1, true), "a big row goes alone");
        let rows = pending(vec![Encoded::Json("{}".into()), Encoded::Json("{}".into())]);
        assert_eq!(chunk_len(&rows, 500, 1000), (2, false));
    }
}
