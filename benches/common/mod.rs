//! What both benchmarks share.

use std::path::{Path, PathBuf};

/// Writes the worker file of benchmark run `id`: ByteArray converters, its own offset
/// file, and the lines of `FERRY_BENCH_WORKER_EXTRA` (`;`-separated, for experiments such
/// as `consumer.fetch.max.bytes=4194304`).
pub(crate) fn worker_file(dir: &Path, bootstrap: &str, id: &str) -> PathBuf {
    let worker = dir.join(format!("worker-{id}.properties"));
    std::fs::write(
        &worker,
        format!(
            "bootstrap.servers={bootstrap}\nkey.converter=org.apache.kafka.connect.converters.ByteArrayConverter\nvalue.converter=org.apache.kafka.connect.converters.ByteArrayConverter\noffset.storage.file.filename={}\n{}",
            dir.join(format!("offsets-{id}")).display(),
            std::env::var("FERRY_BENCH_WORKER_EXTRA").unwrap_or_default().replace(';', "\n")
        ),
    )
    .expect("write the benchmark's worker file");
    worker
}
