//! Google's Pub/Sub emulator (see `ferry_mock_broker::pubsub_emulator`), and how a test
//! that needs it records being skipped.

use std::path::PathBuf;

#[allow(unused_imports)] // Not every test binary uses every item.
pub use ferry_mock_broker::pubsub_emulator::{Emulator, NOT_INSTALLED, Pulled, emulator_bin};

/// Records that a test was skipped, and why (tests/run.sh counts and prints these).
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    eprintln!("SKIPPED {test}: {reason}");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-skips.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{test}: {reason}");
    }
}
