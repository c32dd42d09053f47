//! Kafka Connect configuration files, parsed once into typed structs.
//!
//! Everything here is pure: it reads the files it is given (and the files config providers
//! name) and never touches the network. Keys are *taken* as they are read; what nobody
//! read becomes a [`Note`] (worker) or, when it looks like a misspelling, an error
//! (connector).

pub mod client;
pub mod connector;
pub mod jaas;
pub mod notes;
pub mod properties;
pub mod providers;
pub mod rest;
pub mod secret;
pub mod worker;

use std::path::PathBuf;

pub use connector::{ConnectorConfig, ErrorTolerance, Subscription};
pub use notes::{Note, NoteKind};
pub use properties::PropertiesFile;
pub use worker::WorkerConfig;

/// A configuration error: one line naming the file (and line), the key, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("{}: cannot read the file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Syntax {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("{location}: {key}: {reason}")]
    Key {
        location: String,
        key: String,
        reason: String,
    },
    #[error("{}: missing required key `{key}`: {hint}", path.display())]
    Missing {
        path: PathBuf,
        key: String,
        hint: String,
    },
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
        }
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
