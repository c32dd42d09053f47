//! Rebuilds the files that OpenMSIStream (openmsi/openmsistream) uploads to a topic as
//! chunks, as its `DataFileDownloadDirectory` does: each file under
//! `<directory.path>/<subdir>/<stem><append><suffix>`, written only once every chunk is in
//! and the whole-file SHA-512 matches.
//!
//! * [`chunk`]: the wire format (msgpack array, key), with the facts cited from
//!   OpenMSIStream's source; paths that could leave the directory are refused.
//! * [`assembly`]: part files and their chunk state, crash-safe; shared by the tasks.
//! * [`task`]: the sink task — record errors, `download.regex`, acknowledgements.

mod assembly;
pub mod chunk;
pub mod heartbeat;
pub mod logs;
mod periodic;
mod task;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ferry_connector_api::{
    ConfigError, Connector, ConnectorFactory, ConnectorProps, SinkTask, TaskContext, TaskError,
    Watermark, async_trait,
};

use assembly::Assembler;
use ferry_connector_api::logs::LogReader;
use periodic::{Periodic, Source};

/// Registry entry.
pub const FACTORY: ConnectorFactory = ConnectorFactory {
    name: "openmsistream",
    class_names: &[
        "io.ferry.connect.openmsistream.OpenMSIStreamSinkConnector",
        "OpenMSIStreamSinkConnector",
        "OpenMSIStreamSink",
        "openmsistream",
    ],
    create,
};

/// Configuration of the OpenMSIStream sink.
#[derive(Debug, Clone)]
pub struct OpenMsiStreamConfig {
    /// `directory.path` (required): where files are rebuilt (OpenMSIStream's `output_dir`);
    /// created if absent.
    pub path: PathBuf,
    /// `download.regex`: only files whose `<subdir>/<filename>` matches this regular
    /// expression from its start (Python's `re.match`, as OpenMSIStream's
    /// `--download_regex`) are rebuilt; the others' records are skipped. Default: every
    /// file.
    pub regex: Option<fancy_regex::Regex>,
    /// `heartbeat.*`: OpenMSIStream's heartbeats, sent by task 0 (see [`heartbeat`]).
    pub heartbeat: Option<heartbeat::HeartbeatConfig>,
    /// `log.*`: the process's log lines as OpenMSIStream's logs, sent by task 0 (see
    /// [`logs`]).
    pub log: Option<logs::LogConfig>,
}

impl OpenMsiStreamConfig {
    pub fn from_props(props: &mut ConnectorProps) -> Result<Self, ConfigError> {
        let path = props.take_required("directory.path", "the directory files are rebuilt in")?;
        ferry_connector_api::text::path(&path)
            .map_err(|reason| ConfigError::invalid("directory.path", reason))?;
        let regex = match props.take("download.regex") {
            None => None,
            Some(r) => Some(
                compile_regex(&r)
                    .map_err(|reason| ConfigError::invalid("download.regex", reason))?,
            ),
        };
        Ok(Self {
            path: PathBuf::from(path),
            regex,
            heartbeat: heartbeat::HeartbeatConfig::from_props(props)?,
            log: logs::LogConfig::from_props(props)?,
        })
    }
}

/// Python's `re.match`: anchored at the start only. fancy-regex speaks Python's syntax,
/// look-arounds included (OpenMSIStream's own default upload regex uses one).
fn compile_regex(pattern: &str) -> Result<fancy_regex::Regex, String> {
    fancy_regex::Regex::new(&format!(r"\A(?:{pattern})")).map_err(|e| {
        format!(
            "`{}` is not a regular expression: {e}",
            ferry_connector_api::text::shown(pattern)
        )
    })
}

fn create(props: &mut ConnectorProps) -> Result<Box<dyn Connector>, ConfigError> {
    let config = OpenMsiStreamConfig::from_props(props)?;
    Ok(Box::new(OpenMsiStreamConnector {
        assembler: Arc::new(Mutex::new(Assembler::new(config.path.clone()))),
        counters: Arc::default(),
        config,
    }))
}

#[derive(Debug)]
struct OpenMsiStreamConnector {
    config: OpenMsiStreamConfig,
    /// One per connector: a file's chunks may be spread over partitions held by
    /// different tasks.
    assembler: Arc<Mutex<Assembler>>,
    counters: Arc<heartbeat::Counters>,
}

#[async_trait]
impl Connector for OpenMsiStreamConnector {
    async fn preflight(&self) -> Result<(), TaskError> {
        ferry_connector_api::probe::probe_writable_dir(&self.config.path).map_err(|e| {
            TaskError::fatal(format!(
                "`directory.path`: {e}; choose a directory this user can create and write"
            ))
        })
    }

    fn create_task(&self, ctx: TaskContext) -> Result<Box<dyn SinkTask>, TaskError> {
        std::fs::create_dir_all(&self.config.path).map_err(|e| {
            TaskError::fatal(format!(
                "cannot create `directory.path` {}; check the path and permissions",
                self.config.path.display()
            ))
            .with_source(e)
        })?;
        // One program sends one heartbeat and one log: task 0's.
        let mut periodic = Vec::new();
        if ctx.task_id == 0 {
            let program_id =
                |id: &Option<String>| id.clone().unwrap_or_else(|| ctx.connector.clone());
            if let Some(hb) = &self.config.heartbeat {
                let producer = ctx
                    .producers
                    .producer(&hb.producer, "heartbeat.producer.*")?;
                periodic.push(Periodic::new(
                    producer,
                    hb.topic.clone(),
                    program_id(&hb.program_id),
                    hb.interval,
                    Source::Heartbeat(self.counters.clone()),
                ));
            }
            if let Some(log) = &self.config.log {
                let producer = ctx.producers.producer(&log.producer, "log.producer.*")?;
                // Made now, so that the first message holds the lines of the start.
                let reader = LogReader::new(log.max_messages, log.level);
                periodic.push(Periodic::new(
                    producer,
                    log.topic.clone(),
                    program_id(&log.program_id),
                    log.interval,
                    Source::Log(Mutex::new(reader)),
                ));
            }
        }
        Ok(Box::new(task::OpenMsiStreamTask {
            assembler: self.assembler.clone(),
            counters: self.counters.clone(),
            periodic,
            regex: self.config.regex.clone(),
            task_id: ctx.task_id,
            errant: ctx.errant,
            watermark: Watermark::new(),
        }))
    }
}
