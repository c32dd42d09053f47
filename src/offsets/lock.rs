//! The offset file's owner: one process at a time.
//!
//! The offset file itself is replaced by a rename on every commit, so a lock on it would
//! be a lock on a file that no longer has the name. The lock is therefore taken on a
//! sibling, `<file>.lock`, with `flock` (released by the kernel when the process dies, even
//! by `kill -9`), and the file holds the owner's process id for the message a second
//! process prints. The lock file is removed again when the store is dropped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use super::OffsetStoreError;

/// How often acquiring retries when the previous owner removed the lock file between our
/// open and our lock (it exits at that moment, so one retry is normally enough).
const ATTEMPTS: usize = 8;

/// An exclusive lock on an offset file, held until dropped.
#[derive(Debug)]
pub(super) struct OffsetFileLock {
    offsets: PathBuf,
    path: PathBuf,
    file: Option<File>,
    /// Directories made for the lock, outermost first; removed at drop if the offset file
    /// was never written in them (a failed start leaves nothing behind).
    created: Vec<PathBuf>,
}

/// `<file>.lock` beside the offset file.
pub(super) fn lock_path(offsets: &Path) -> PathBuf {
    let mut name = offsets.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    offsets.with_file_name(name)
}

/// The offset file's directory (`.` for a bare file name).
pub(super) fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl OffsetFileLock {
    /// Takes the lock, or names the process holding it.
    pub(super) fn acquire(offsets: &Path) -> Result<Self, OffsetStoreError> {
        let fail = |source| OffsetStoreError::Lock {
            path: offsets.to_path_buf(),
            source,
        };
        let mut lock = Self {
            offsets: offsets.to_path_buf(),
            path: lock_path(offsets),
            file: None,
            created: Vec::new(),
        };
        lock.created = create_dirs(&dir_of(offsets)).map_err(fail)?;
        for _ in 0..ATTEMPTS {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock.path)
                .map_err(fail)?;
            match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    return Err(OffsetStoreError::Locked {
                        path: offsets.to_path_buf(),
                        lock: lock.path.clone(),
                        holder: text.trim().parse().ok(),
                    });
                }
                Err(e) => return Err(fail(e.into())),
            }
            // The previous owner removes the file as it lets go: a lock on the inode we
            // opened before that is a lock on nothing. Then open the name again.
            let ours = file.metadata().map_err(fail)?;
            let named = fs::metadata(&lock.path).ok();
            if named.is_some_and(|n| n.dev() == ours.dev() && n.ino() == ours.ino()) {
                file.set_len(0).map_err(fail)?;
                file.write_all(format!("{}\n", std::process::id()).as_bytes())
                    .map_err(fail)?;
                lock.file = Some(file);
                return Ok(lock);
            }
        }
        Err(fail(io::Error::other(
            "the lock file keeps being replaced by another process",
        )))
    }
}

/// Creates `dir` and its missing ancestors; returns the ones it made, outermost first.
fn create_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        at = d.parent();
    }
    missing.reverse();
    fs::create_dir_all(dir)?;
    Ok(missing)
}

impl Drop for OffsetFileLock {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            // Removed while still locked, so no other process can be holding this inode.
            let _ = fs::remove_file(&self.path);
            drop(file);
        }
        if !self.offsets.exists() {
            for d in self.created.iter().rev() {
                // Fails, harmlessly, when the directory is not empty.
                let _ = fs::remove_dir(d);
            }
        }
    }
}
