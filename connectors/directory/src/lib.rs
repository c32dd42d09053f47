//! Writes each record's value bytes, unchanged, to a file of its own under
//! `directory.path`, named by `directory.filename.template`
//! (default `{topic}/{partition}/{offset}`).
//!
//! Each file is written to a temporary name and renamed into place, so a reader (or a
//! worker restarted after `kill -9`) never sees a partial file under a final name. `flush`
//! syncs the file system before offsets are committed, so every file whose offset is
//! committed is on disk; a file written after the last commit may be rewritten on
//! redelivery, with identical bytes.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use ferry_connector_api::{
    ConfigError, Connector, ConnectorFactory, ConnectorProps, SinkRecord, SinkTask, TaskContext,
    TaskError, async_trait,
};

/// Registry entry.
pub const FACTORY: ConnectorFactory = ConnectorFactory {
    name: "directory",
    class_names: &[
        "io.ferry.connect.directory.DirectorySinkConnector",
        "DirectorySinkConnector",
        "DirectorySink",
        "directory",
    ],
    create,
};

const DEFAULT_TEMPLATE: &str = "{topic}/{partition}/{offset}";

/// Configuration of the directory sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorySinkConfig {
    /// `directory.path` (required): the root directory; created if absent.
    pub path: PathBuf,
    /// `directory.filename.template`: the file name relative to `directory.path`, from the
    /// placeholders `{topic}`, `{partition}` and `{offset}`, all three required so that two
    /// records never share a file. Default `{topic}/{partition}/{offset}`.
    pub template: Template,
}

impl DirectorySinkConfig {
    pub fn from_props(props: &mut ConnectorProps) -> Result<Self, ConfigError> {
        let path = props.take_required(
            "directory.path",
            "the directory the records are written under",
        )?;
        ferry_connector_api::text::path(&path)
            .map_err(|reason| ConfigError::invalid("directory.path", reason))?;
        let template = match props.take("directory.filename.template") {
            Some(t) => Template::parse(&t)
                .map_err(|reason| ConfigError::invalid("directory.filename.template", reason))?,
            None => Template::parse(DEFAULT_TEMPLATE)
                .map_err(|reason| ConfigError::invalid("directory.filename.template", reason))?,
        };
        Ok(Self {
            path: PathBuf::from(path),
            template,
        })
    }
}

/// A parsed file-name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Topic,
    Partition,
    Offset,
}

impl Template {
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| format!("`{template}` has an unclosed `{{`"))?;
            let name = &rest[start + 1..start + end];
            parts.push(match name {
                "topic" => Part::Topic,
                "partition" => Part::Partition,
                "offset" => Part::Offset,
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{other}}}` in `{template}`; use {{topic}}, {{partition}} and {{offset}}"
                    ));
                }
            });
            rest = &rest[start + end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        for required in [Part::Topic, Part::Partition, Part::Offset] {
            if !parts.contains(&required) {
                return Err(format!(
                    "`{template}` lacks a placeholder, so records would overwrite each other; include {{topic}}, {{partition}} and {{offset}}"
                ));
            }
        }
        let parsed = Self { parts };
        let sample = parsed.render("t", 0, 0);
        if Path::new(&sample)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(format!(
                "`{template}` must be a relative path without `..` or `.` components"
            ));
        }
        Ok(parsed)
    }

    pub fn render(&self, topic: &str, partition: i32, offset: i64) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Topic => out.push_str(topic),
                Part::Partition => out.push_str(&partition.to_string()),
                Part::Offset => out.push_str(&offset.to_string()),
            }
        }
        out
    }
}

fn create(props: &mut ConnectorProps) -> Result<Box<dyn Connector>, ConfigError> {
    Ok(Box::new(DirectorySinkConnector {
        config: DirectorySinkConfig::from_props(props)?,
    }))
}

#[derive(Debug)]
struct DirectorySinkConnector {
    config: DirectorySinkConfig,
}

#[async_trait]
impl Connector for DirectorySinkConnector {
    async fn preflight(&self) -> Result<(), TaskError> {
        ferry_connector_api::probe::probe_writable_dir(&self.config.path).map_err(|e| {
            TaskError::fatal(format!(
                "`directory.path`: {e}; choose a directory this user can create and write"
            ))
        })
    }

    fn create_task(&self, ctx: TaskContext) -> Result<Box<dyn SinkTask>, TaskError> {
        fs::create_dir_all(&self.config.path).map_err(|e| {
            TaskError::fatal(format!(
                "cannot create `directory.path` {}; check the path and permissions",
                self.config.path.display()
            ))
            .with_source(e)
        })?;
        Ok(Box::new(DirectorySinkTask {
            config: self.config.clone(),
            task_id: ctx.task_id,
            made_dirs: HashSet::new(),
        }))
    }
}

#[derive(Debug)]
struct DirectorySinkTask {
    config: DirectorySinkConfig,
    task_id: usize,
    /// Directories known to exist, to skip a `create_dir_all` per record.
    made_dirs: HashSet<PathBuf>,
}

impl DirectorySinkTask {
    fn write_one(&mut self, record: &SinkRecord) -> io::Result<()> {
        let rel = self
            .config
            .template
            .render(&record.topic, record.partition, record.offset);
        let target = self.config.path.join(rel);
        let dir = target.parent().unwrap_or(&self.config.path).to_path_buf();
        if !self.made_dirs.contains(&dir) {
            fs::create_dir_all(&dir)?;
            self.made_dirs.insert(dir.clone());
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Hidden, task-specific temporary name in the same directory, so the rename is atomic
        // and two tasks briefly owning the same partition during a rebalance cannot collide.
        let tmp = dir.join(format!(".{name}.ferry-tmp-{}", self.task_id));
        let written = File::create(&tmp).and_then(|mut f| match &record.value {
            Some(v) => f.write_all(v.as_bytes()),
            None => Ok(()),
        });
        if let Err(e) = written {
            // A full disk gets back the space of the partial file while the batch waits.
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &target)
    }
}

#[async_trait]
impl SinkTask for DirectorySinkTask {
    async fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        tokio::task::block_in_place(|| {
            for r in records {
                self.write_one(r).map_err(|e| {
                    // A full disk or a permission fixed by the operator can recover: retry.
                    TaskError::retriable(format!(
                        "cannot write record {} under {}",
                        r.coordinates(),
                        self.config.path.display()
                    ))
                    .with_source(e)
                })?;
            }
            Ok(())
        })
    }

    async fn flush(&mut self) -> Result<(), TaskError> {
        tokio::task::block_in_place(|| {
            let dir = File::open(&self.config.path)?;
            rustix::fs::syncfs(&dir).map_err(io::Error::from)
        })
        .map_err(|e| {
            TaskError::retriable(format!("cannot sync {}", self.config.path.display()))
                .with_source(e)
        })
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

    fn props(pairs: &[(&str, &str)]) -> ConnectorProps {
        ConnectorProps::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn templates_need_every_placeholder_and_stay_relative() {
        assert!(Template::parse("{topic}/{partition}/{offset}.avro").is_ok());
        let err = Template::parse("{topic}/{offset}").unwrap_err();
        assert!(err.contains("overwrite"), "{err}");
        let err = Template::parse("{topic}/{partition}/{offset}/{key}").unwrap_err();
        assert!(err.contains("unknown placeholder `{key}`"), "{err}");
        assert!(Template::parse("../{topic}/{partition}/{offset}").is_err());
        assert!(Template::parse("/abs/{topic}/{partition}/{offset}").is_err());
        assert!(Template::parse("{topic}/{partition}/{offset").is_err());
        assert_eq!(
            Template::parse("{topic}-{partition}-{offset}.avro")
                .unwrap()
                .render("ztf", 3, 42),
            "ztf-3-42.avro"
        );
    }

    #[test]
    fn directory_path_is_required() {
        let err = DirectorySinkConfig::from_props(&mut props(&[])).unwrap_err();
        assert_eq!(err.key(), "directory.path");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn writes_each_value_to_its_own_file_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let connector = create(&mut props(&[("directory.path", root.to_str().unwrap())])).unwrap();
        let mut task = connector
            .create_task(TaskContext {
                connector: "c".into(),
                task_id: 0,
                errant: Arc::new(NoErrors),
                commits: Arc::new(ferry_connector_api::NoCommitRequests),
                producers: Arc::new(ferry_connector_api::NoProducers),
            })
            .unwrap();
        let payload = Bytes::from(vec![0u8, 159, 146, 150, b'O', b'b', b'j', 1]);
        let rec = |offset, value: Option<Bytes>| SinkRecord {
            topic: "alerts".into(),
            original_topic: None,
            partition: 2,
            offset,
            timestamp: None,
            key: None,
            value: value.map(Value::Bytes),
            headers: vec![],
        };
        task.put(&[rec(7, Some(payload.clone())), rec(8, None)])
            .await
            .unwrap();
        task.flush().await.unwrap();
        assert_eq!(fs::read(root.join("alerts/2/7")).unwrap(), payload.to_vec());
        assert_eq!(fs::read(root.join("alerts/2/8")).unwrap(), Vec::<u8>::new());
        let names: Vec<_> = fs::read_dir(root.join("alerts/2"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temporary files remain: {names:?}");
    }
}
