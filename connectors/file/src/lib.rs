//! Kafka's `FileStreamSinkConnector`: appends each record's value to a file, one per line.
//!
//! Differences from Kafka's, on purpose: a byte-array value is written as its bytes (Kafka
//! prints the Java array's `toString`, e.g. `[B@1b6d3586`), and a batch is appended with a
//! single `write` so that a killed worker never leaves half a line followed by a new one.
//! A null value is written as `null`, as Kafka does.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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
        Ok(Self {
            file: props.take("file").map(PathBuf::from),
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

    fn create_task(&self, ctx: TaskContext) -> Result<Box<dyn SinkTask>, TaskError> {
        let out = match &self.config.file {
            None => Output::Stdout(io::stdout()),
            Some(path) => {
                let file = open_for_append(path, ctx.task_id == 0).map_err(|e| {
                    TaskError::fatal(format!(
                        "cannot open `file` {} for appending; check the path and permissions",
                        path.display()
                    ))
                    .with_source(e)
                })?;
                Output::File {
                    file,
                    path: path.clone(),
                }
            }
        };
        Ok(Box::new(FileSinkTask {
            out,
            buf: Vec::new(),
        }))
    }
}

/// Opens `path` for appending. The first task also ends a partial last line left by a
/// machine crash, so the next record starts on a line of its own.
fn open_for_append(path: &Path, repair: bool) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    if repair {
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
    }
    Ok(file)
}

#[derive(Debug)]
enum Output {
    Stdout(io::Stdout),
    File { file: File, path: PathBuf },
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
            Output::File { path, .. } => path.display().to_string(),
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
            // One write of the whole batch: O_APPEND keeps concurrent tasks' batches whole.
            Output::File { file, .. } => file.write_all(&self.buf),
            Output::Stdout(s) => {
                let mut lock = s.lock();
                lock.write_all(&self.buf).and_then(|_| lock.flush())
            }
        });
        result.map_err(|e| self.io_error("cannot append to", e))
    }

    async fn flush(&mut self) -> Result<(), TaskError> {
        let result = tokio::task::block_in_place(|| match &mut self.out {
            Output::File { file, .. } => file.sync_data(),
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
