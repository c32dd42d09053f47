//! Files being rebuilt: one temporary file and one state file per upload (file path and
//! whole-file SHA-512), beside the file's final place:
//!
//! * `.<name>.<hash>.ferry-part`: chunks written at their offsets (`pwrite`);
//! * `.<name>.<hash>.ferry-state`: which chunks the part file holds, rewritten atomically
//!   (temporary file, fsync, rename, directory fsync) after the part file is fsync'd.
//!
//! A chunk's record is acknowledged (its offset may be committed) only once the chunk is in
//! the part file *and* named by the state file on disk, or once its whole file is renamed
//! into place. After `kill -9` the state file says which committed chunks the part file
//! holds, and the chunks not in it are redelivered: a file is neither lost nor corrupted.
//! The part file is renamed to `<name>` only when every chunk is in and the whole-file
//! SHA-512 matches.
//!
//! The assembler is shared by the connector's tasks (behind a mutex): chunks of one file
//! may arrive on several partitions, which the runtime may give to different tasks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_connector_api::TopicPartition;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use crate::chunk::{Chunk, Sha512Digest, short_hex};

/// A record waiting for its chunk to be durable: (task, partition, offset).
type Waiting = (usize, TopicPartition, i64);

/// What became of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    /// Written; the record is acknowledged through [`Assembler::take_acks`] once durable.
    Queued,
    /// The chunk is already durable (a redelivery): acknowledge the record now.
    AlreadyDone,
    /// A newer upload of the same file is already in place: skip the record.
    Stale,
}

/// Why a chunk could not be added.
#[derive(Debug)]
pub(crate) enum AddError {
    /// The record is at fault (error tolerance applies); the text is the cause.
    Record(String),
    /// The disk is (retry).
    Io(String, io::Error),
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> AddError {
    move |e| AddError::Io(what, e)
}

/// The state file's content (versioned).
#[derive(Debug, Serialize, Deserialize)]
struct State {
    version: u32,
    /// Hex SHA-512 of the whole file.
    file_hash: String,
    count: u32,
    mtime: Option<f64>,
    /// index → [offset, length] of each chunk the part file holds.
    chunks: BTreeMap<u32, (u64, u64)>,
}

const STATE_VERSION: u32 = 1;

#[derive(Debug)]
struct Generation {
    /// Final path, relative to the root.
    rel: PathBuf,
    part: PathBuf,
    state: PathBuf,
    file_hash: Sha512Digest,
    count: u32,
    mtime: Option<f64>,
    chunks: BTreeMap<u32, (u64, u64)>,
    /// Chunks written since the last sync.
    dirty: bool,
    waiting: Vec<Waiting>,
}

/// The files in progress under one download directory.
#[derive(Debug)]
pub(crate) struct Assembler {
    root: PathBuf,
    files: HashMap<(PathBuf, Sha512Digest), Generation>,
    acks: HashMap<usize, Vec<(TopicPartition, i64)>>,
    /// SHA-512 of final files, by path, valid while (length, mtime) are unchanged.
    final_hashes: HashMap<PathBuf, (u64, SystemTime, Sha512Digest)>,
    /// Files completed since start (for the log and tests).
    pub(crate) completed: u64,
}

impl Assembler {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self {
            root,
            files: HashMap::new(),
            acks: HashMap::new(),
            final_hashes: HashMap::new(),
            completed: 0,
        }
    }

    /// Adds a chunk whose final path (relative to the root, checked to stay inside) is `rel`.
    pub(crate) fn add(
        &mut self,
        waiting: Waiting,
        chunk: &Chunk<'_>,
        rel: PathBuf,
    ) -> Result<Added, AddError> {
        let key = (rel, chunk.file_hash);
        if !self.files.contains_key(&key) {
            match self.open(&key.0, chunk)? {
                Some(generation) => {
                    self.files.insert(key.clone(), generation);
                }
                None => return self.settled(&key.0, chunk),
            }
        }
        let Some(g) = self.files.get_mut(&key) else {
            return Err(AddError::Record("internal: file state vanished".into()));
        };
        if chunk.count != g.count {
            return Err(AddError::Record(format!(
                "chunk {} of `{}` says the file has {} chunks, its other chunks say {} (same SHA-512); the upload is inconsistent",
                chunk.index,
                chunk.relative_path(),
                chunk.count,
                g.count
            )));
        }
        let span = (chunk.offset, chunk.data.len() as u64);
        if let Some(seen) = g.chunks.get(&chunk.index) {
            if *seen != span {
                return Err(AddError::Record(format!(
                    "chunk {} of `{}` at offset {} ({} bytes) conflicts with the same chunk received before at offset {} ({} bytes)",
                    chunk.index,
                    chunk.relative_path(),
                    span.0,
                    span.1,
                    seen.0,
                    seen.1
                )));
            }
        } else {
            // Opened per chunk: an upload directory sends many files at once, and an open
            // descriptor per file in progress could exhaust the process's limit.
            OpenOptions::new()
                .write(true)
                .open(&g.part)
                .and_then(|f| f.write_all_at(chunk.data, chunk.offset))
                .map_err(io_err(format!("cannot write {}", g.part.display())))?;
            g.chunks.insert(chunk.index, span);
            g.dirty = true;
        }
        // Complete: also when a completion failed on the disk before (retried with the
        // redelivered batch) or a restart found every chunk in the state file.
        if g.chunks.len() == g.count as usize {
            self.finish(&key, chunk)?;
            // Acknowledged only once the file is in place (a mismatch reports it instead).
            self.release(vec![waiting]);
            return Ok(Added::Queued);
        }
        if !g.dirty {
            return Ok(Added::AlreadyDone);
        }
        g.waiting.push(waiting);
        Ok(Added::Queued)
    }

    /// A chunk of an upload that is not in progress: already in place, superseded, or new.
    /// `Ok(None)`: settled without a generation (see [`Assembler::settled`]).
    fn open(&mut self, rel: &Path, chunk: &Chunk<'_>) -> Result<Option<Generation>, AddError> {
        let target = self.root.join(rel);
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = format!(".{name}.{}", short_hex(&chunk.file_hash, 8));
        let part = dir.join(format!("{stem}.ferry-part"));
        let state = dir.join(format!("{stem}.ferry-state"));
        if self.final_matches(&target, chunk)? || self.superseded(&target, chunk) {
            // Leftovers of a completion that crashed before removing its state file.
            remove_if_present(&state)
                .map_err(io_err(format!("cannot remove {}", state.display())))?;
            return Ok(None);
        }
        fs::create_dir_all(&dir)
            .map_err(io_err(format!("cannot create directory {}", dir.display())))?;
        let mut chunks = BTreeMap::new();
        let resumed = match fs::read(&state) {
            Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
                Ok(s)
                    if s.version == STATE_VERSION
                        && s.file_hash == short_hex(&chunk.file_hash, 64)
                        && s.count == chunk.count
                        && part.is_file() =>
                {
                    chunks = s.chunks;
                    true
                }
                _ => {
                    tracing::warn!(
                        state = %state.display(),
                        "Discarding an unreadable or inconsistent chunk state file; chunks it named that were committed must be uploaded again."
                    );
                    false
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(AddError::Io(format!("cannot read {}", state.display()), e)),
        };
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(!resumed)
            .open(&part)
            .map_err(io_err(format!("cannot open {}", part.display())))?;
        if resumed {
            tracing::info!(file = %rel.display(), chunks = chunks.len(), of = chunk.count, "Resuming a file from its chunk state.");
        }
        Ok(Some(Generation {
            rel: rel.to_path_buf(),
            part,
            state,
            file_hash: chunk.file_hash,
            count: chunk.count,
            mtime: chunk.mtime,
            chunks,
            dirty: false,
            waiting: Vec::new(),
        }))
    }

    fn settled(&self, rel: &Path, chunk: &Chunk<'_>) -> Result<Added, AddError> {
        if self
            .final_hashes
            .get(rel)
            .is_some_and(|(_, _, h)| *h == chunk.file_hash)
        {
            Ok(Added::AlreadyDone)
        } else {
            Ok(Added::Stale)
        }
    }

    /// Whether the file in place is this upload (SHA-512 of its content, cached).
    fn final_matches(&mut self, target: &Path, chunk: &Chunk<'_>) -> Result<bool, AddError> {
        let meta = match fs::metadata(target) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(AddError::Io(format!("cannot stat {}", target.display()), e)),
        };
        let end = chunk.offset + chunk.data.len() as u64;
        if meta.len() < end {
            return Ok(false);
        }
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let rel = target
            .strip_prefix(&self.root)
            .unwrap_or(target)
            .to_path_buf();
        let hash = match self.final_hashes.get(&rel) {
            Some((len, m, h)) if *len == meta.len() && *m == modified => *h,
            _ => {
                let h = hash_file(target)
                    .map_err(io_err(format!("cannot read {}", target.display())))?;
                self.final_hashes.insert(rel, (meta.len(), modified, h));
                h
            }
        };
        Ok(hash == chunk.file_hash)
    }

    /// Whether the file in place comes from a newer upload than this chunk (by the
    /// uploader's mtime, which ferry gives the files it rebuilds).
    fn superseded(&self, target: &Path, chunk: &Chunk<'_>) -> bool {
        let (Some(mtime), Ok(meta)) = (chunk.mtime, fs::metadata(target)) else {
            return false;
        };
        if !meta.is_file() {
            return false;
        }
        let in_place = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64());
        in_place.is_some_and(|t| t > mtime)
    }

    /// Every chunk is in: verify, rename into place, acknowledge the file's records.
    fn finish(&mut self, key: &(PathBuf, Sha512Digest), chunk: &Chunk<'_>) -> Result<(), AddError> {
        let Some(g) = self.files.get(key) else {
            return Ok(());
        };
        if !g.part.exists() {
            // Renamed into place by an earlier attempt that failed afterwards (the
            // directory's fsync): only the bookkeeping is left.
            if let Some(g) = self.files.remove(key) {
                remove_if_present(&g.state)
                    .map_err(io_err(format!("cannot remove {}", g.state.display())))?;
                self.release(g.waiting);
            }
            return Ok(());
        }
        let target = self.root.join(&g.rel);
        let size = g.chunks.values().map(|(o, l)| o + l).max().unwrap_or(0);
        let part = g.part.clone();
        let ctx = || format!("cannot complete {}", part.display());
        let file = OpenOptions::new()
            .write(true)
            .open(&g.part)
            .map_err(io_err(ctx()))?;
        file.set_len(size).map_err(io_err(ctx()))?;
        file.sync_all().map_err(io_err(ctx()))?;
        let hash = hash_file(&g.part).map_err(io_err(ctx()))?;
        if hash != g.file_hash {
            let g = self.files.remove(key);
            if let Some(g) = g {
                let _ = fs::remove_file(&g.part);
                let _ = fs::remove_file(&g.state);
                self.release(g.waiting);
            }
            return Err(AddError::Record(format!(
                "`{}` rebuilt from its {} chunks does not match the file's SHA-512 (the uploader's chunks disagree with its file hash); the file was not written, upload it again",
                chunk.relative_path(),
                chunk.count
            )));
        }
        if self.superseded(&target, chunk) {
            tracing::info!(file = %key.0.display(), "A newer upload of this file is already in place; discarding this one.");
        } else {
            if let Some(mtime) = g.mtime {
                let t = UNIX_EPOCH + Duration::from_secs_f64(mtime);
                file.set_modified(t).map_err(io_err(ctx()))?;
            }
            fs::rename(&g.part, &target).map_err(io_err(format!(
                "cannot rename {} to {}",
                g.part.display(),
                target.display()
            )))?;
            sync_dir(target.parent().unwrap_or(&self.root)).map_err(io_err(ctx()))?;
            if let Ok(meta) = fs::metadata(&target) {
                self.final_hashes.insert(
                    key.0.clone(),
                    (meta.len(), meta.modified().unwrap_or(UNIX_EPOCH), hash),
                );
            }
            self.completed += 1;
            tracing::info!(file = %key.0.display(), bytes = size, chunks = chunk.count, "File rebuilt.");
        }
        if let Some(g) = self.files.remove(key) {
            remove_if_present(&g.part).map_err(io_err(ctx()))?;
            remove_if_present(&g.state).map_err(io_err(ctx()))?;
            self.release(g.waiting);
        }
        Ok(())
    }

    fn release(&mut self, waiting: Vec<Waiting>) {
        for (task, tp, offset) in waiting {
            self.acks.entry(task).or_default().push((tp, offset));
        }
    }

    /// Makes every written chunk durable: fsync each part file, then its state file.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        let mut dirs = BTreeSet::new();
        let mut released = Vec::new();
        for g in self.files.values_mut() {
            if g.dirty {
                OpenOptions::new().write(true).open(&g.part)?.sync_data()?;
                write_state(g)?;
                if let Some(dir) = g.state.parent() {
                    dirs.insert(dir.to_path_buf());
                }
                g.dirty = false;
            }
            released.append(&mut g.waiting);
        }
        for dir in dirs {
            sync_dir(&dir)?;
        }
        self.release(released);
        Ok(())
    }

    /// Records of `task` whose chunks became durable since the last call.
    pub(crate) fn take_acks(&mut self, task: usize) -> Vec<(TopicPartition, i64)> {
        self.acks.remove(&task).unwrap_or_default()
    }
}

fn write_state(g: &Generation) -> io::Result<()> {
    let state = State {
        version: STATE_VERSION,
        file_hash: short_hex(&g.file_hash, 64),
        count: g.count,
        mtime: g.mtime,
        chunks: g.chunks.clone(),
    };
    let bytes = serde_json::to_vec(&state).map_err(io::Error::other)?;
    let mut tmp = g.state.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, &g.state)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn hash_file(path: &Path) -> io::Result<Sha512Digest> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut hasher = Sha512::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}
