//! The file offset store (`offset.storage.file.filename`).
//!
//! One JSON document for the whole worker, namespaced by connector, rewritten atomically on
//! every commit: temporary file, `fsync`, rename over the old file, `fsync` of the
//! directory. A reader therefore sees the old or the new document, never half of one.
//! Format (version 1):
//!
//! ```json
//! {"format":"ferry-offsets","version":1,
//!  "connectors":{"ztf-sink":{"ztf_20210107_programid1":{"0":1234,"1":999}}}}
//! ```
//!
//! One process at a time owns the file: `open` takes an exclusive lock (see [`lock`]) for
//! the store's life, so two workers pointed at one file cannot overwrite each other's
//! connectors. A new file is written by [`FileOffsetStore::create_if_missing`], after the
//! start-up checks, so a start that fails leaves nothing on disk.
//!
//! Offsets are Kafka's commit convention: the next offset to read. A sink's commit metadata
//! (see `SinkTask::commit_metadata`) is kept beside its offset in `"metadata"`, same
//! nesting, written and dropped together with the offset; the key is optional, so files
//! without it (and ferry versions that ignore it) read the same.

mod lock;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ferry_connector_api::{OffsetAndMetadata, TopicPartition};
use serde::{Deserialize, Serialize};

const FORMAT: &str = "ferry-offsets";
const VERSION: u32 = 1;

/// Why the store could not be used. Each message names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum OffsetStoreError {
    #[error("{}: cannot read the offset file (offset.storage.file.filename): {source}; check the path and its permissions", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: the offset file is corrupt ({reason}); move it aside to resume from the consumer group's committed offsets", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: this is a Kafka Connect offset file (Java-serialized), which holds source connector offsets only; sink offsets live in the consumer group, which ferry resumes from. Point offset.storage.file.filename at a new file", path.display())]
    JavaFormat { path: PathBuf },
    #[error("{}: offset file version {version} is newer than this ferry understands (version {VERSION}); upgrade ferry or move the file aside", path.display())]
    Version { path: PathBuf, version: u32 },
    #[error("{}: cannot write the offset file: {source}; check free space and permissions", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: the offset file is in use by another process ({}, lock file {}); two workers cannot share offset.storage.file.filename: stop the other one or give each worker its own file", path.display(), holder.map_or("pid unknown".to_string(), |p| format!("pid {p}")), lock.display())]
    Locked {
        path: PathBuf,
        lock: PathBuf,
        holder: Option<u32>,
    },
    #[error("{}: cannot lock the offset file (offset.storage.file.filename): {source}; check the directory's permissions", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Document {
    format: String,
    version: u32,
    /// connector → topic → partition → next offset.
    connectors: BTreeMap<String, BTreeMap<String, BTreeMap<i32, i64>>>,
    /// connector → topic → partition → the sink's metadata for that offset.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, BTreeMap<String, BTreeMap<i32, String>>>,
}

/// Per partition, a position to commit with its metadata.
pub type Commits = BTreeMap<TopicPartition, OffsetAndMetadata>;

/// The worker's file offset store; shared by all tasks.
#[derive(Debug)]
pub struct FileOffsetStore {
    path: PathBuf,
    doc: Mutex<Document>,
    /// Dropped last: the file is ours until the store is gone.
    _lock: lock::OffsetFileLock,
}

impl FileOffsetStore {
    /// Takes the file's lock and reads the file if it exists. Writes nothing but the lock
    /// file (removed again when the store is dropped): see [`Self::create_if_missing`].
    pub fn open(path: &Path) -> Result<Self, OffsetStoreError> {
        let lock = lock::OffsetFileLock::acquire(path)?;
        let doc = match fs::read(path) {
            Ok(bytes) => parse(path, &bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Document {
                format: FORMAT.into(),
                version: VERSION,
                connectors: BTreeMap::new(),
                metadata: BTreeMap::new(),
            },
            Err(source) => {
                return Err(OffsetStoreError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            doc: Mutex::new(doc),
            _lock: lock,
        })
    }

    /// Writes the (empty) file if there is none yet, so an unwritable location fails at
    /// start-up rather than at the first commit. Called once the start-up checks passed.
    pub fn create_if_missing(&self) -> Result<(), OffsetStoreError> {
        if self.path.exists() {
            return Ok(());
        }
        let doc = self.doc.lock().unwrap_or_else(|p| p.into_inner());
        write_atomically(&self.path, &doc)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored position of a partition for a connector.
    pub fn get(&self, connector: &str, topic: &str, partition: i32) -> Option<OffsetAndMetadata> {
        let doc = self.doc.lock().unwrap_or_else(|p| p.into_inner());
        let offset = *doc.connectors.get(connector)?.get(topic)?.get(&partition)?;
        let metadata = doc
            .metadata
            .get(connector)
            .and_then(|t| t.get(topic))
            .and_then(|p| p.get(&partition))
            .cloned();
        Some(OffsetAndMetadata { offset, metadata })
    }

    /// Records positions for a connector and rewrites the file if anything changed. A
    /// position without metadata drops what was stored for the partition.
    pub fn commit(&self, connector: &str, commits: &Commits) -> Result<(), OffsetStoreError> {
        // A poisoned lock only means another task panicked mid-update of the in-memory copy;
        // the file on disk is intact, and the next write replaces it whole.
        let mut doc = self.doc.lock().unwrap_or_else(|p| p.into_inner());
        let Document {
            connectors,
            metadata,
            ..
        } = &mut *doc;
        let offsets = connectors.entry(connector.to_string()).or_default();
        let notes = metadata.entry(connector.to_string()).or_default();
        let mut changed = false;
        for (tp, c) in commits {
            let slot = offsets.entry(tp.topic.to_string()).or_default();
            if slot.insert(tp.partition, c.offset) != Some(c.offset) {
                changed = true;
            }
            let before = match &c.metadata {
                Some(m) => notes
                    .entry(tp.topic.to_string())
                    .or_default()
                    .insert(tp.partition, m.clone()),
                None => notes
                    .get_mut(tp.topic.as_ref())
                    .and_then(|p| p.remove(&tp.partition)),
            };
            if before != c.metadata {
                changed = true;
            }
        }
        notes.retain(|_, p| !p.is_empty());
        if notes.is_empty() {
            metadata.remove(connector);
        }
        if changed {
            let started = std::time::Instant::now();
            let written = write_atomically(&self.path, &doc);
            crate::metrics::offset_file_written(started.elapsed(), written.is_ok());
            written?;
        }
        Ok(())
    }
}

impl FileOffsetStore {
    /// Every stored position of a connector, as (topic, partition, next offset).
    pub fn list(&self, connector: &str) -> Vec<(String, i32, i64)> {
        let doc = self.doc.lock().unwrap_or_else(|p| p.into_inner());
        doc.connectors
            .get(connector)
            .map(|topics| {
                topics
                    .iter()
                    .flat_map(|(t, parts)| parts.iter().map(|(p, o)| (t.clone(), *p, *o)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets (Some) or forgets (None) positions of a connector, as an operator asked
    /// (KIP-875's `PATCH …/offsets`); the sink's metadata for those partitions is dropped,
    /// since it described the old position. Rewrites the file atomically.
    pub fn alter(
        &self,
        connector: &str,
        changes: &[(String, i32, Option<i64>)],
    ) -> Result<(), OffsetStoreError> {
        let mut doc = self.doc.lock().unwrap_or_else(|p| p.into_inner());
        let Document {
            connectors,
            metadata,
            ..
        } = &mut *doc;
        for (topic, partition, offset) in changes {
            let topics = connectors.entry(connector.to_string()).or_default();
            match offset {
                Some(o) => {
                    topics
                        .entry(topic.clone())
                        .or_default()
                        .insert(*partition, *o);
                }
                None => {
                    if let Some(parts) = topics.get_mut(topic) {
                        parts.remove(partition);
                    }
                }
            }
            topics.retain(|_, p| !p.is_empty());
            if let Some(notes) = metadata.get_mut(connector) {
                if let Some(parts) = notes.get_mut(topic) {
                    parts.remove(partition);
                }
                notes.retain(|_, p| !p.is_empty());
            }
        }
        connectors.retain(|_, t| !t.is_empty());
        metadata.retain(|_, t| !t.is_empty());
        write_atomically(&self.path, &doc)
    }

    /// Forgets every position of a connector (KIP-875's `DELETE …/offsets`).
    pub fn forget(&self, connector: &str) -> Result<(), OffsetStoreError> {
        let mut doc = self.doc.lock().unwrap_or_else(|p| p.into_inner());
        doc.connectors.remove(connector);
        doc.metadata.remove(connector);
        write_atomically(&self.path, &doc)
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Document, OffsetStoreError> {
    // Java serialization's stream magic: Kafka Connect's FileOffsetBackingStore format.
    if bytes.starts_with(&[0xAC, 0xED]) {
        return Err(OffsetStoreError::JavaFormat {
            path: path.to_path_buf(),
        });
    }
    let corrupt = |reason: String| OffsetStoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not JSON: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(corrupt(format!("no \"format\": \"{FORMAT}\" marker")));
    }
    let version = value
        .get("version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| corrupt("no version".into()))?;
    if version > u64::from(VERSION) {
        return Err(OffsetStoreError::Version {
            path: path.to_path_buf(),
            version: u32::try_from(version).unwrap_or(u32::MAX),
        });
    }
    let doc: Document = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
    if let Some((c, t, p, o)) = doc.connectors.iter().find_map(|(c, topics)| {
        topics.iter().find_map(|(t, parts)| {
            parts
                .iter()
                .find(|(_, o)| **o < 0)
                .map(|(p, o)| (c.clone(), t.clone(), *p, *o))
        })
    }) {
        return Err(corrupt(format!(
            "negative offset {o} for connector {c}, {t}-{p}"
        )));
    }
    Ok(doc)
}

fn write_atomically(path: &Path, doc: &Document) -> Result<(), OffsetStoreError> {
    let fail = |source| OffsetStoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = lock::dir_of(path);
    fs::create_dir_all(&dir).map_err(fail)?;
    let mut bytes = serde_json::to_vec_pretty(doc).map_err(|e| fail(io::Error::other(e)))?;
    bytes.push(b'\n');
    // A name no other writer can hold (created with O_EXCL), removed if the write fails
    // (a full disk keeps no half-written temporary file).
    let mut prefix = path.file_name().unwrap_or_default().to_os_string();
    prefix.push(".");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(fail)?;
    tmp.write_all(&bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    // Make the rename itself durable.
    File::open(&dir).and_then(|d| d.sync_all()).map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use ferry_connector_api::TopicPartition;

    use super::*;

    fn offsets(pairs: &[(&str, i32, i64)]) -> Commits {
        pairs
            .iter()
            .map(|(t, p, o)| {
                (
                    TopicPartition::new(*t, *p),
                    OffsetAndMetadata::new(*o, None),
                )
            })
            .collect()
    }

    fn offset(store: &FileOffsetStore, c: &str, t: &str, p: i32) -> Option<i64> {
        store.get(c, t, p).map(|c| c.offset)
    }

    #[test]
    fn round_trip_namespaced_by_connector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/connect.offsets");
        let store = FileOffsetStore::open(&path).unwrap();
        assert!(!path.exists(), "opening writes nothing");
        store.create_if_missing().unwrap();
        assert!(path.exists(), "written once the start-up checks passed");
        store
            .commit("a", &offsets(&[("t", 0, 10), ("t", 1, 5)]))
            .unwrap();
        store.commit("b", &offsets(&[("t", 0, 99)])).unwrap();
        store.commit("a", &offsets(&[("t", 0, 12)])).unwrap();
        drop(store);
        let reopened = FileOffsetStore::open(&path).unwrap();
        assert_eq!(offset(&reopened, "a", "t", 0), Some(12));
        assert_eq!(offset(&reopened, "a", "t", 1), Some(5));
        assert_eq!(offset(&reopened, "b", "t", 0), Some(99));
        assert_eq!(offset(&reopened, "c", "t", 0), None);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"format\": \"ferry-offsets\"") && text.contains("\"version\": 1"));
        assert!(
            !text.contains("metadata"),
            "no metadata key when no sink stored any: {text}"
        );
        let mut names: Vec<String> = fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["connect.offsets", "connect.offsets.lock"],
            "no temporary file left"
        );
    }

    #[test]
    fn a_second_owner_is_refused_with_the_first_ones_pid_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connect.offsets");
        let first = FileOffsetStore::open(&path).unwrap();
        let lock = dir.path().join("connect.offsets.lock");
        assert_eq!(
            fs::read_to_string(&lock).unwrap(),
            format!("{}\n", std::process::id())
        );
        // flock locks belong to an open file description: a second open in this process
        // is refused just as another process is.
        let err = FileOffsetStore::open(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: the offset file is in use by another process (pid {}, lock file {}); two workers cannot share offset.storage.file.filename: stop the other one or give each worker its own file",
                path.display(),
                std::process::id(),
                lock.display()
            )
        );
        drop(first);
        assert!(!lock.exists(), "the lock file goes with its owner");
        let second = FileOffsetStore::open(&path).unwrap();
        second.create_if_missing().unwrap();
        drop(second);
        assert!(path.exists() && !lock.exists());
    }

    #[test]
    fn a_store_dropped_before_writing_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/ferry/connect.offsets");
        let store = FileOffsetStore::open(&path).unwrap();
        assert!(dir.path().join("state/ferry/connect.offsets.lock").exists());
        drop(store);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "neither the lock file nor the directories made for it remain"
        );
    }

    #[test]
    fn metadata_travels_with_its_offset_and_is_dropped_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connect.offsets");
        let store = FileOffsetStore::open(&path).unwrap();
        let at = |o: i64, m: Option<&str>| {
            [(
                TopicPartition::new("t", 0),
                OffsetAndMetadata::new(o, m.map(String::from)),
            )]
            .into_iter()
            .collect::<Commits>()
        };
        store.commit("a", &at(10, Some("stream s row 7"))).unwrap();
        drop(store);
        let reopened = FileOffsetStore::open(&path).unwrap();
        assert_eq!(
            reopened.get("a", "t", 0),
            Some(OffsetAndMetadata::new(10, Some("stream s row 7".into())))
        );
        // A later offset without metadata must not leave the old metadata beside it.
        reopened.commit("a", &at(12, None)).unwrap();
        drop(reopened);
        let again = FileOffsetStore::open(&path).unwrap();
        assert_eq!(
            again.get("a", "t", 0),
            Some(OffsetAndMetadata::new(12, None))
        );
        assert!(!fs::read_to_string(&path).unwrap().contains("stream s"));
    }

    #[test]
    fn a_file_without_metadata_reads_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connect.offsets");
        fs::write(
            &path,
            r#"{"format":"ferry-offsets","version":1,"connectors":{"a":{"t":{"0":4}}}}"#,
        )
        .unwrap();
        let store = FileOffsetStore::open(&path).unwrap();
        assert_eq!(
            store.get("a", "t", 0),
            Some(OffsetAndMetadata::new(4, None))
        );
    }

    #[test]
    fn corrupt_and_foreign_files_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], &str); 5] = [
            (b"{\"format\":\"ferry-offsets\",\"version\":1,\"connectors\":{\"a\":{\"t\":{\"0\":", "corrupt (not JSON"),
            (b"{}", "no \"format\""),
            (&[0xAC, 0xED, 0x00, 0x05, 0x73], "Kafka Connect offset file (Java-serialized)"),
            (b"{\"format\":\"ferry-offsets\",\"version\":7,\"connectors\":{}}", "version 7 is newer"),
            (b"{\"format\":\"ferry-offsets\",\"version\":1,\"connectors\":{\"a\":{\"t\":{\"0\":-4}}}}", "negative offset -4"),
        ];
        for (bytes, expected) in cases {
            let path = dir.path().join("offsets");
            fs::write(&path, bytes).unwrap();
            let err = FileOffsetStore::open(&path).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.starts_with(&path.display().to_string()), "{err}");
            // The bad file is left for the operator to inspect.
            assert_eq!(fs::read(&path).unwrap(), bytes);
        }
    }

    #[test]
    fn an_unreadable_path_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: unreadable as a file even for root.
        let err = FileOffsetStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("offset.storage.file.filename"), "{err}");
    }
}
