//! Kafka Connect configuration files, parsed once into typed structs.
//!
//! Everything here is pure: it reads the files it is given (and the files config providers
//! name) and never touches the network. Keys are *taken* as they are read; what nobody
//! read becomes a [`Note`] (worker) or, when it looks like a misspelling, an error
//! (connector).

pub mod client;
pub mod connector;
pub mod distributed;
pub mod dlq;
pub mod jaas;
pub mod notes;
pub mod problems;
pub mod properties;
pub mod providers;
pub mod rest;
pub mod secret;
pub mod validate;
pub mod worker;

use std::path::PathBuf;

use ferry_connector_api::text::{one_line, shown};

pub use connector::{ConnectorConfig, ErrorTolerance, Subscription};
pub use notes::{Note, NoteKind};
pub use properties::PropertiesFile;
pub use worker::WorkerConfig;

/// A configuration error: one line naming the file (and line), the key, and the fix. Every
/// part is shown through [`text`](ferry_connector_api::text), so that a huge or multi-line
/// value the reason quotes, or a huge key, still makes one short line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("{}: cannot read the file: {}", place(path), one_line(&source.to_string()))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}{}: {}", place(path), line.map(|l| format!(":{l}")).unwrap_or_default(), one_line(message))]
    Syntax {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("{}: {}: {}", one_line(location).max(PLACE_CHARS), shown(key), one_line(reason))]
    Key {
        location: String,
        key: String,
        reason: String,
    },
    #[error("{}: missing required key `{key}`: {}", place(path), one_line(hint))]
    Missing {
        path: PathBuf,
        key: String,
        hint: String,
    },
}

/// The most characters of a file's path an error line shows.
const PLACE_CHARS: usize = 500;

fn place(path: &std::path::Path) -> String {
    one_line(&path.display().to_string())
        .max(PLACE_CHARS)
        .to_string()
}

impl ConfigFileError {
    /// Places a connector's [`ConfigError`](ferry_connector_api::ConfigError) in its file.
    pub fn from_api(file: &PropertiesFile, err: ferry_connector_api::ConfigError) -> Self {
        use ferry_connector_api::ConfigError as E;
        match err {
            E::Missing { key, hint } => ConfigFileError::Missing {
                path: file.path.clone(),
                key,
                hint,
            },
            E::Invalid { key, reason } => ConfigFileError::Key {
                location: file.locate(&key),
                key,
                reason,
            },
            E::Conflict {
                first,
                second,
                reason,
            } => ConfigFileError::Key {
                location: file.locate(&second),
                key: format!("{first} / {second}"),
                reason,
            },
            E::Misspelt { written, intended } => misspelt(file, &written, &intended, true),
        }
    }
}

/// A key nobody knows that looks like the misspelling of `intended`, placed at its line.
/// `required`: `intended` is absent and required, so removing the key is no fix.
pub fn misspelt(
    file: &PropertiesFile,
    written: &str,
    intended: &str,
    required: bool,
) -> ConfigFileError {
    let fix = if required {
        ferry_connector_api::ConfigError::REQUIRED
    } else {
        "Correct or remove it"
    };
    ConfigFileError::Key {
        location: file.locate(written),
        key: written.to_string(),
        reason: format!("unknown key; did you mean `{intended}`? {fix}"),
    }
}

/// Resolves config-provider references in every value of a file. Keys listing the providers
/// themselves (`config.providers*`) are left as written.
pub fn resolve_file(
    mut file: PropertiesFile,
    providers: &providers::Providers,
    env: &dyn providers::Environment,
) -> Result<PropertiesFile, ConfigFileError> {
    for (key, value) in file.entries.iter_mut() {
        if key.starts_with("config.providers") {
            continue;
        }
        let (resolved, _) = providers
            .resolve(value, env)
            .map_err(|e| ConfigFileError::Key {
                location: match file.lines.get(key) {
                    Some(l) => format!("{}:{l}", file.path.display()),
                    None => file.path.display().to_string(),
                },
                key: key.clone(),
                reason: e.to_string(),
            })?;
        *value = resolved;
    }
    Ok(file)
}

/// Notes for keys set twice in a file.
fn duplicate_notes(file: &PropertiesFile) -> Vec<Note> {
    file.duplicates
        .iter()
        .map(|(key, earlier_line)| {
            Note::new(
                file.locate(key),
                key,
                NoteKind::Duplicate {
                    earlier_line: *earlier_line,
                },
            )
        })
        .collect()
}

/// Parses a millisecond duration key.
fn take_ms(
    file: &PropertiesFile,
    props: &mut ferry_connector_api::ConnectorProps,
    key: &str,
    default_ms: u64,
) -> Result<std::time::Duration, ConfigFileError> {
    let ms = props
        .take_parsed::<u64>(key, "a number of milliseconds")
        .map_err(|e| ConfigFileError::from_api(file, e))?
        .unwrap_or(default_ms);
    Ok(std::time::Duration::from_millis(ms))
}
