//! Kafka's `FileStreamSinkConnector`: appends each record's value to a file, one per line.
//!
//! Differences from Kafka's, on purpose: a byte-array value is written as its bytes (Kafka
//! prints the Java array's `toString`, e.g. `[B@1b6d3586`), and a batch is appended with a
//! single `write` so that a killed worker never leaves half a line followed by a new one.
//! A null value is written as `null`, as Kafka does.
//!
//! A batch is appended whole or not at all: when an append fails part-way (a full disk
//! takes what fits, then refuses the rest), the file is cut back to its length before the
//! batch, so the retry writes the batch once, after whole lines. Truncating is safe because
//! every task, of every connector in the process, appends to a file through one shared
//! handle under a lock (see [`Appender`]), so nothing else of ferry's can have appended in
//! between. (Writing to a side file and renaming cannot append; copying the whole file per
//! batch would cost its size per batch.)

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use ferry_connector_api::{
    ConfigError, Connector, ConnectorFactory, ConnectorProps, SinkRecord, SinkTask, TaskContext,
    TaskError, async_trait,
};

/// Registry entry: Kafka's class name, its short alias, and ferry's short name.
pub const FACTORY: ConnectorFactory = ConnectorFactory {
    name: "file",
    class_names: &[
        "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "FileStreamSinkConnector",
        "FileStreamSink",
        "file",
    ],
    create,
};

/// Configuration of the file sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSinkConfig {
    /// `file`: the file to append to. Absent → standard output, as in Kafka.
    pub file: Option<PathBuf>,
}

impl FileSinkConfig {
    pub fn from_props(props: &mut ConnectorProps) -> Result<Self, ConfigError> {
        let file = props.take("file");
        if let Some(f) = &file {
            ferry_connector_api::text::path(f)
                .map_err(|reason| ConfigError::invalid("file", reason))?;
        }
        Ok(Self {
            file: file.map(PathBuf::from),
        })
    }
}

fn create(props: &mut ConnectorProps) -> Result<Box<dyn Connector>, ConfigError> {
    Ok(Box::new(FileSinkConnector {
        config: FileSinkConfig::from_props(props)?,
    }))
}

#[derive(Debug)]
struct FileSinkConnector {
    config: FileSinkConfig,
}

#[async_trait]
impl Connector for FileSinkConnector {
    async fn preflight(&self) -> Result<(), TaskError> {
        let Some(path) = &self.config.file else {
            return Ok(());
        };
        ferry_connector_api::probe::probe_appendable_file(path).map_err(|e| {
            TaskError::fatal(format!(
                "`file`: {e}; choose a file this user can create (or append to) in a writable directory"
            ))
        })
    }

    fn create_task(&self, _ctx: TaskContext) -> Result<Box<dyn SinkTask>, TaskError> {
        let out = match &self.config.file {
            None => Output::Stdout(io::stdout()),
            Some(path) => Output::File(Appender::shared(path).map_err(|e| {
                TaskError::fatal(format!(
                    "cannot open `file` {} for appending; check the path and permissions",
                    path.display()
                ))
                .with_source(e)
            })?),
        };
        Ok(Box::new(FileSinkTask {
            out,
            buf: Vec::new(),
        }))
    }
}

/// Appends to one file on behalf of every task writing it.
#[derive(Debug)]
struct Appender {
    file: File,
    path: PathBuf,
    /// The length to cut the file back to before the next append, when cutting a failed
    /// append off did not succeed at once.
    cut_to: Option<u64>,
}

/// A file open for appending, known by device and inode (so two spellings of one path
/// share a handle). Weak: the file is closed when its last task is gone.
#[derive(Debug)]
struct OpenFile {
    dev: u64,
    ino: u64,
    appender: Weak<Mutex<Appender>>,
}

static OPEN: Mutex<Vec<OpenFile>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic mid-append leaves a file the next append cuts back (`cut_to`) or appends to.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Appender {
    /// The process's handle on `path`, opened (and a partial last line ended) by the first
    /// task that asks.
    fn shared(path: &Path) -> io::Result<Arc<Mutex<Appender>>> {
        let mut open = lock(&OPEN);
        open.retain(|o| o.appender.strong_count() > 0);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        let meta = file.metadata()?;
        let known = open
            .iter()
            .find(|o| o.dev == meta.dev() && o.ino == meta.ino())
            .and_then(|o| o.appender.upgrade());
        if let Some(shared) = known {
            return Ok(shared);
        }
        end_partial_line(&mut file, path)?;
        let shared = Arc::new(Mutex::new(Appender {
            file,
            path: path.to_path_buf(),
            cut_to: None,
        }));
        open.push(OpenFile {
            dev: meta.dev(),
            ino: meta.ino(),
            appender: Arc::downgrade(&shared),
        });
        Ok(shared)
    }

    /// Appends all of `bytes`, or leaves the file as it was.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(len) = self.cut_to {
            self.file.set_len(len)?;
            self.cut_to = None;
        }
        let meta = self.file.metadata()?;
        let before = meta.len();
        let result = self.file.write_all(bytes);
        // Only a regular file has a length to go back to (`/dev/full`, a FIFO have none).
        if result.is_err() && meta.is_file() && self.file.set_len(before).is_err() {
            self.cut_to = Some(before);
        }
        result
    }
}

/// Ends a partial last line left by a machine crash, so the next record starts on a line
/// of its own.
fn end_partial_line(file: &mut File, path: &Path) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            tracing::warn!(
                file = %path.display(),
                "File ends in a partial line (the machine likely crashed mid-write); ending it so new records start on their own line."
            );
            file.write_all(b"\n")?;
        }
    }
    Ok(())
}

#[derive(Debug)]
enum Output {
    Stdout(io::Stdout),
    File(Arc<Mutex<Appender>>),
}

#[derive(Debug)]
struct FileSinkTask {
    out: Output,
    /// Reused between batches to avoid an allocation per `put`.
    buf: Vec<u8>,
}

impl FileSinkTask {
    fn io_error(&self, action: &str, e: io::Error) -> TaskError {
        let target = match &self.out {
            Output::Stdout(_) => "standard output".to_string(),
            Output::File(appender) => lock(appender).path.display().to_string(),
        };
        // A full or failing disk may recover: retry rather than fail the task.
        TaskError::retriable(format!("{action} {target}")).with_source(e)
    }
}

#[async_trait]
impl SinkTask for FileSinkTask {
    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        self.buf.clear();
        for r in records {
            match &r.value {
                Some(v) => self.buf.extend_from_slice(v.as_bytes()),
                None => self.buf.extend_from_slice(b"null"),
            }
            self.buf.push(b'\n');
        }
        let result = tokio::task::block_in_place(|| match &mut self.out {
            Output::File(appender) => lock(appender).append(&self.buf),
            Output::Stdout(s) => {
                let mut lock = s.lock();
                lock.write_all(&self.buf).and_then(|_| lock.flush())
            }
        });
        result.map_err(|e| self.io_error("cannot append to", e))
    }

    async fn flush(&mut self) -> Result<(), TaskError> {
        let result = tokio::task::block_in_place(|| match &mut self.out {
            Output::File(appender) => lock(appender).file.sync_data(),
            Output::Stdout(s) => s.flush(),
        });
        result.map_err(|e| self.io_error("cannot sync", e))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use bytes::Bytes;
    use ferry_connector_api::{RecordError, Value};

    use super::*;

    #[derive(Debug)]
    struct NoErrors;
    impl ferry_connector_api::ErrantRecordReporter for NoErrors {
        fn report(&self, _: &SinkRecord, e: &RecordError) -> Result<(), TaskError> {
            Err(TaskError::fatal(e.to_string()))
        }
    }

    fn record(offset: i64, value: Option<&str>) -> SinkRecord {
        SinkRecord {
            topic: "t".into(),
            original_topic: None,
            partition: 0,
            offset,
            timestamp: None,
            key: None,
            value: value.map(|v| Value::Bytes(Bytes::copy_from_slice(v.as_bytes()))),
            headers: vec![],
        }
    }

    fn task_for(path: &Path, task_id: usize) -> Box<dyn SinkTask> {
        let mut props = ConnectorProps::new(BTreeMap::from([(
            "file".to_string(),
            path.display().to_string(),
        )]));
        let connector = create(&mut props).unwrap();
        connector
            .create_task(TaskContext {
                connector: "c".into(),
                task_id,
                errant: Arc::new(NoErrors),
                commits: Arc::new(ferry_connector_api::NoCommitRequests),
                producers: Arc::new(ferry_connector_api::NoProducers),
            })
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn appends_one_line_per_value_and_null_as_null() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut task = task_for(&path, 0);
        task.put(&[record(0, Some("a")), record(1, None), record(2, Some("c"))])
            .await
            .unwrap();
        task.flush().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nnull\nc\n");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_partial_last_line_is_ended_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "whole\nhal").unwrap();
        let mut task = task_for(&path, 0);
        task.put(&[record(0, Some("next"))]).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "whole\nhal\nnext\n"
        );
    }

    #[test]
    fn an_unopenable_file_is_a_fatal_error_naming_it() {
        let mut props = ConnectorProps::new(BTreeMap::from([(
            "file".to_string(),
            "/nonexistent-dir/out.txt".to_string(),
        )]));
        let err = create(&mut props)
            .unwrap()
            .create_task(TaskContext {
                connector: "c".into(),
                task_id: 0,
                errant: Arc::new(NoErrors),
                commits: Arc::new(ferry_connector_api::NoCommitRequests),
                producers: Arc::new(ferry_connector_api::NoProducers),
            })
            .unwrap_err();
        assert!(!err.is_retriable());
        assert!(
            err.one_line().contains("/nonexistent-dir/out.txt"),
            "{}",
            err.one_line()
        );
    }
}
