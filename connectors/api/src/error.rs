use std::error::Error as StdError;
use std::fmt;

use crate::text::shown;

type Source = Box<dyn StdError + Send + Sync + 'static>;

/// A configuration problem with one key of a connector file. The runtime adds the file's
/// path when it reports it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required key is absent.
    #[error("missing required key `{key}`: {hint}")]
    Missing { key: String, hint: String },
    /// A key is present but its value cannot be used. `reason` must not repeat a secret value.
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: String, reason: String },
    /// Two keys contradict each other.
    #[error("`{first}` and `{second}` cannot be used together: {reason}")]
    Conflict {
        first: String,
        second: String,
        reason: String,
    },
    /// A required key is absent and a key nobody knows looks like its misspelling: the
    /// misspelling is what the user must fix, so it is what the error names.
    #[error(
        "unknown key `{}`; did you mean `{intended}`? {}",
        shown(written),
        Self::REQUIRED
    )]
    Misspelt { written: String, intended: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub fn missing(key: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Missing {
            key: key.into(),
            hint: hint.into(),
        }
    }

    /// The key the error is about (the first one, for a conflict; the key as written, for
    /// a misspelling).
    pub fn key(&self) -> &str {
        match self {
            ConfigError::Missing { key, .. } | ConfigError::Invalid { key, .. } => key,
            ConfigError::Conflict { first, .. } => first,
            ConfigError::Misspelt { written, .. } => written,
        }
    }

    /// The end of a misspelling's line: the fix, and why it matters.
    pub const REQUIRED: &'static str = "Correct it: that key is required";
}

/// Where in the record pipeline a record failed: Kafka Connect's stage names, which the
/// dead-letter queue's `__connect.errors.stage` header and the log line carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    KeyConverter,
    ValueConverter,
    HeaderConverter,
    Transformation,
    /// The sink's `put` (and whatever the sink does with the record afterwards).
    #[default]
    TaskPut,
}

impl Stage {
    /// Connect's name (`org.apache.kafka.connect.runtime.errors.Stage`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeyConverter => "KEY_CONVERTER",
            Self::ValueConverter => "VALUE_CONVERTER",
            Self::HeaderConverter => "HEADER_CONVERTER",
            Self::Transformation => "TRANSFORMATION",
            Self::TaskPut => "TASK_PUT",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem with one record that retrying will not fix (too large, malformed for the sink).
/// The runtime applies `errors.tolerance` to it: fail the task, or log and skip (and send
/// it to the dead-letter queue).
#[derive(Debug)]
pub struct RecordError {
    pub reason: String,
    /// Where it failed; `TASK_PUT` unless said otherwise.
    pub stage: Stage,
    /// The class that failed, as Connect names it in `__connect.errors.class.name` (the
    /// converter's or transform's class, the connector's); `None`: the runtime fills in the
    /// connector's class.
    pub class_name: Option<String>,
}

impl RecordError {
    /// A sink's error (stage `TASK_PUT`).
    pub fn new(reason: impl Into<String>) -> Self {
        Self::at(Stage::TaskPut, reason)
    }

    /// An error at another stage of the pipeline.
    pub fn at(stage: Stage, reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            stage,
            class_name: None,
        }
    }

    /// Names the class that failed.
    #[must_use]
    pub fn with_class(mut self, class_name: impl Into<String>) -> Self {
        self.class_name = Some(class_name.into());
        self
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl StdError for RecordError {}

/// How a task operation failed; the runtime's reaction is decided by the variant alone.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The destination is unavailable for now (timeouts, 5xx, disk full). The runtime pauses
    /// the partitions, backs off and redelivers; nothing is committed past what was delivered.
    #[error("{message}")]
    Retriable {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// Retrying cannot help (bad credentials, missing destination, a record error under
    /// `errors.tolerance=none`). The task is marked FAILED and commits nothing more.
    #[error("{message}")]
    Fatal {
        message: String,
        #[source]
        source: Option<Source>,
    },
}

impl TaskError {
    pub fn retriable(message: impl Into<String>) -> Self {
        Self::Retriable {
            message: message.into(),
            source: None,
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        Self::Fatal {
            message: message.into(),
            source: None,
        }
    }

    /// Attach the underlying error (kept out of `message` so it is not printed twice).
    pub fn with_source(self, source: impl StdError + Send + Sync + 'static) -> Self {
        match self {
            TaskError::Retriable { message, .. } => TaskError::Retriable {
                message,
                source: Some(Box::new(source)),
            },
            TaskError::Fatal { message, .. } => TaskError::Fatal {
                message,
                source: Some(Box::new(source)),
            },
        }
    }

    pub fn is_retriable(&self) -> bool {
        matches!(self, TaskError::Retriable { .. })
    }

    /// The message and its chain of causes on one line, for log output.
    pub fn one_line(&self) -> String {
        error_chain(self)
    }
}

/// An error and its chain of causes on one line, `outer: cause: root cause`; a cause whose
/// text its parent already ends with is not repeated.
pub fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_the_cause_chain() {
        let io = std::io::Error::other("disk full");
        let err = TaskError::retriable("write /out/t/0/5").with_source(io);
        assert!(err.is_retriable());
        assert_eq!(err.one_line(), "write /out/t/0/5: disk full");
    }

    #[test]
    fn config_error_names_its_key() {
        let err = ConfigError::missing("file", "the path FileStreamSink appends to");
        assert_eq!(err.key(), "file");
        assert_eq!(
            err.to_string(),
            "missing required key `file`: the path FileStreamSink appends to"
        );
        let err = ConfigError::Misspelt {
            written: "fiel".into(),
            intended: "file".into(),
        };
        assert_eq!(err.key(), "fiel");
        assert_eq!(
            err.to_string(),
            "unknown key `fiel`; did you mean `file`? Correct it: that key is required"
        );
    }
}
