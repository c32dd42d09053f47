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

/// Busy and total CPU time of the whole machine so far, in clock ticks (`/proc/stat`).
// The pipeline bench does not report the machine's load.
#[allow(dead_code)]
pub(crate) fn machine_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    let total: u64 = ticks.iter().take(8).sum();
    (total - idle, total)
}
