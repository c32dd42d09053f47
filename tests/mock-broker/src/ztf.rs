//! ZTF alerts for tests and benchmarks: the real ones in `../shared/data/ztf/alerts` (or
//! the directory `FERRY_ZTF_ALERTS` names), else synthetic payloads of the same sizes and
//! magic (60–78 KB Avro container files starting `Obj\x01`), and a description that says
//! which.

use std::path::{Path, PathBuf};

/// Where the real alerts are looked for.
pub fn alert_dir() -> PathBuf {
    std::env::var_os("FERRY_ZTF_ALERTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ztf/alerts")
        })
}

/// The real alert files, sorted; empty when there are none.
pub fn real_alert_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(alert_dir())
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "avro"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// 52 synthetic alert-sized payloads (pseudo-random bytes, so they do not compress).
pub fn synthetic_alerts() -> Vec<Vec<u8>> {
    (0..52u64)
        .map(|i| {
            let len = 60_000 + (i * 350) as usize;
            let mut bytes = b"Obj\x01".to_vec();
            let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            while bytes.len() < len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(x as u8);
            }
            bytes
        })
        .collect()
}

/// The alerts as files: the real ones, or the synthetic ones written under `scratch`.
pub fn alert_files(scratch: &Path) -> std::io::Result<(Vec<PathBuf>, &'static str)> {
    let real = real_alert_files();
    if !real.is_empty() {
        return Ok((real, "real ZTF alerts"));
    }
    let dir = scratch.join("synthetic-alerts");
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::new();
    for (i, bytes) in synthetic_alerts().into_iter().enumerate() {
        let f = dir.join(format!("alert-{i}.avro"));
        std::fs::write(&f, bytes)?;
        files.push(f);
    }
    Ok((files, SYNTHETIC))
}

/// The alerts' bytes: the real ones, or the synthetic ones.
pub fn alerts() -> std::io::Result<(Vec<Vec<u8>>, &'static str)> {
    let real = real_alert_files();
    if real.is_empty() {
        return Ok((synthetic_alerts(), SYNTHETIC));
    }
    let bytes = real.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    Ok((bytes, "real ZTF alerts"))
}

const SYNTHETIC: &str =
    "synthetic alert-sized Avro container payloads (../shared/data/ztf/alerts not found)";
