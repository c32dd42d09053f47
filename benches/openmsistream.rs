//! `ferry openmsistream download` against OpenMSIStream's own `DataFileDownloadDirectory`,
//! in one run: both rebuild the same files from the same topic of the same mock broker,
//! uploaded once by OpenMSIStream's `UploadDataFile` (tests/openmsistream/upload.py).
//!
//! `cargo bench --bench openmsistream` runs the quick size (32 MiB); `-- --full` uploads
//! 1 GiB. Prints a table and writes it to target/bench-openmsistream.md. Each downloader is
//! a child process; its peak RSS is its VmHWM, read from /proc just before it is stopped.
//! Time is launch → every file rebuilt with the right SHA-512 (polled every 50 ms), so
//! start-up counts for both.
//!
//! The mock broker keeps only ~5 MB per partition, so the data are spread over many
//! partitions in 64 KiB chunks (an OpenMSIStream `--chunk_size`); every rebuilt file is
//! checked, so a loss would show as a failure, not as speed.
//!
//! Needs OpenMSIStream in a venv (`~/.cache/ferry/openmsistream` or
//! `$FERRY_OPENMSISTREAM_VENV`, made by `cargo test --test openmsistream`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_mock_broker::MockBroker;
use sha2::{Digest, Sha512};

const CHUNK: usize = 65_536;

fn venv_python() -> PathBuf {
    let venv = match std::env::var_os("FERRY_OPENMSISTREAM_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/ferry/openmsistream"),
    };
    venv.join("bin/python")
}

fn binary(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("bench.config");
    std::fs::write(
        &path,
        "[broker]\nbootstrap.servers = $LOCAL_KAFKA_BROKER_BOOTSTRAP_SERVERS\n\n\
         [producer]\nbatch.size = 2000000\nlinger.ms = 100\ncompression.type = lz4\n\
         key.serializer = StringSerializer\nvalue.serializer = DataFileChunkSerializer\n\n\
         [consumer]\ngroup.id = create_new\nauto.offset.reset = earliest\n\
         enable.auto.commit = False\nfetch.min.bytes = 100000\n\
         key.deserializer = StringDeserializer\nvalue.deserializer = DataFileChunkDeserializer\n",
    )
    .unwrap();
    path
}

fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Result {
    label: &'static str,
    seconds: f64,
    peak_rss_kb: u64,
}

/// Waits until every file under `out` has its source's SHA-512, then reads the peak RSS.
fn watch(
    label: &'static str,
    child: &mut Child,
    started: Instant,
    files: &[(PathBuf, Vec<u8>)],
    size: u64,
    out: &Path,
) -> Result {
    let deadline = started + Duration::from_secs(1800);
    let mut done = vec![false; files.len()];
    loop {
        for (i, (rel, hash)) in files.iter().enumerate() {
            if !done[i] {
                let path = out.join(rel);
                // OpenMSIStream writes under the final name as chunks arrive: hash only
                // once the size is right (a mismatch is hashed again on a later round).
                let full = std::fs::metadata(&path).is_ok_and(|m| m.len() == size);
                if let Some(bytes) = full.then(|| std::fs::read(&path).ok()).flatten() {
                    done[i] = Sha512::digest(&bytes).as_slice() == hash.as_slice();
                }
            }
        }
        if done.iter().all(|d| *d) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{label} exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{label} did not rebuild every file in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seconds = started.elapsed().as_secs_f64();
    Result {
        label,
        seconds,
        peak_rss_kb: vm_hwm_kb(child.id()),
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--full");
    let (n_files, size, partitions) = if full {
        (64, 16 << 20, 512)
    } else {
        (16, 2 << 20, 64)
    };
    let python = venv_python();
    assert!(
        python.exists(),
        "OpenMSIStream's venv is missing ({}): run `cargo test --test openmsistream` first",
        python.display()
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-openmsistream");
    let _ = std::fs::remove_dir_all(&root);
    let src = root.join("src");
    let mut files = Vec::new();
    for i in 0..n_files {
        let rel = PathBuf::from(format!("run{}/frame-{i:03}.raw", i % 4));
        let bytes = binary(size, i as u64 + 1);
        std::fs::create_dir_all(src.join(&rel).parent().unwrap()).unwrap();
        std::fs::write(src.join(&rel), &bytes).unwrap();
        files.push((rel, Sha512::digest(&bytes).to_vec()));
    }
    let total = (n_files * size) as f64;
    let broker = MockBroker::start(1).unwrap();
    broker.create_topic("bench", partitions).unwrap();
    let bootstrap = broker.bootstrap();
    let cfg = config(&root);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/openmsistream/upload.py");
    let uploaded = Instant::now();
    let mut args = vec![
        script.display().to_string(),
        cfg.display().to_string(),
        "bench".into(),
        src.display().to_string(),
        CHUNK.to_string(),
    ];
    args.extend(files.iter().map(|(r, _)| src.join(r).display().to_string()));
    let status = Command::new(&python)
        .args(&args)
        .env("LOCAL_KAFKA_BROKER_BOOTSTRAP_SERVERS", &bootstrap)
        .current_dir(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "upload.py failed");
    eprintln!(
        "uploaded {} MiB in {n_files} files over {partitions} partitions in {:.1} s",
        total / 1048576.0,
        uploaded.elapsed().as_secs_f64()
    );

    // ferry.
    let ferry_bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(if cfg!(debug_assertions) {
        "target/debug/ferry"
    } else {
        "target/release/ferry"
    });
    let out = root.join("ferry-out");
    let started = Instant::now();
    let mut ferry = Command::new(&ferry_bin)
        .args(["openmsistream", "download"])
        .arg(&out)
        .arg("--config")
        .arg(&cfg)
        .args(["--topic_name", "bench", "--n_threads", "2"])
        .env("LOCAL_KAFKA_BROKER_BOOTSTRAP_SERVERS", &bootstrap)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("ferry.log")).unwrap())
        .spawn()
        .expect("run target/…/ferry (cargo build --release first)");
    let f = watch(
        "ferry openmsistream download",
        &mut ferry,
        started,
        &files,
        size as u64,
        &out,
    );
    let _ = Command::new("kill")
        .args(["-TERM", &ferry.id().to_string()])
        .status();
    let _ = ferry.wait();

    // OpenMSIStream.
    let out = root.join("omsi-out");
    let started = Instant::now();
    let mut omsi = Command::new(python.with_file_name("DataFileDownloadDirectory"))
        .arg(&out)
        .arg("--config")
        .arg(&cfg)
        .args(["--topic_name", "bench", "--n_threads", "2"])
        .env("LOCAL_KAFKA_BROKER_BOOTSTRAP_SERVERS", &bootstrap)
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("omsi.log")).unwrap())
        .spawn()
        .unwrap();
    let o = watch(
        "OpenMSIStream DataFileDownloadDirectory",
        &mut omsi,
        started,
        &files,
        size as u64,
        &out,
    );
    if let Some(stdin) = omsi.stdin.as_mut() {
        let _ = writeln!(stdin, "q");
    }
    if !matches!(omsi.wait_timeout_secs(30), Some(true)) {
        let _ = omsi.kill();
        let _ = omsi.wait();
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "OpenMSIStream download: {} MiB in {n_files} files, {CHUNK}-byte chunks, {partitions} partitions, 2 threads/tasks each\n",
        total / 1048576.0
    );
    let _ = writeln!(
        table,
        "| downloader | seconds (launch → all files verified) | MiB/s | peak RSS MiB |"
    );
    let _ = writeln!(table, "|---|---|---|---|");
    for r in [&f, &o] {
        let _ = writeln!(
            table,
            "| {} | {:.2} | {:.1} | {:.1} |",
            r.label,
            r.seconds,
            total / 1048576.0 / r.seconds,
            r.peak_rss_kb as f64 / 1024.0
        );
    }
    let _ = writeln!(
        table,
        "\nferry: {:.2}× OpenMSIStream's throughput at {:.2}× its peak memory.",
        o.seconds / f.seconds,
        f.peak_rss_kb as f64 / o.peak_rss_kb.max(1) as f64
    );
    print!("{table}");
    std::fs::write(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-openmsistream.md"),
        &table,
    )
    .unwrap();
    drop(broker);
    // A full run leaves 3 GiB behind otherwise; the logs stay.
    for d in ["src", "ferry-out", "omsi-out"] {
        let _ = std::fs::remove_dir_all(root.join(d));
    }
}

trait WaitTimeout {
    fn wait_timeout_secs(&mut self, secs: u64) -> Option<bool>;
}

impl WaitTimeout for Child {
    fn wait_timeout_secs(&mut self, secs: u64) -> Option<bool> {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if let Ok(Some(s)) = self.try_wait() {
                return Some(s.success());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}
