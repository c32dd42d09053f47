//! Every problem of a connector config at once — what `ferry validate` prints and what
//! `PUT /connector-plugins/{p}/config/validate` answers, from one function.
//!
//! The parser stops at a config's first error, which is right for starting a connector
//! (one line to fix) but not for validating one. Rather than a second parser that could
//! disagree with the first, each offending key is set aside and the rest parsed again; a
//! missing required key gets a stand-in value so that the keys after it are still checked.

use ferry_connector_api::text::one_line;

use super::providers::Environment;
use super::{ConfigFileError, ConnectorConfig, PropertiesFile, WorkerConfig};

/// One problem: the key it is about (empty when it is about no single key) and the error
/// as the parser gives it (its one line names the file, line and fix).
#[derive(Debug)]
pub struct Problem {
    pub key: String,
    pub error: ConfigFileError,
}

impl Problem {
    /// The reason alone, as Connect's validate answer lists it under the key.
    pub fn reason(&self) -> String {
        match &self.error {
            ConfigFileError::Key { reason, .. } => one_line(reason).to_string(),
            ConfigFileError::Missing { key, hint, .. } => format!(
                "Missing required configuration \"{key}\" which has no default value; {}",
                one_line(hint)
            ),
            other => other.to_string(),
        }
    }
}

/// At most this many rounds: a config has far fewer keys with errors.
const ROUNDS: usize = 64;

/// A value the parser accepts for a required key that is missing, so that checking can go
/// on. Only keys whose stand-in cannot produce an error of its own.
fn stand_in(key: &str) -> Option<&'static str> {
    match key {
        "name" | "topics" => Some("validate"),
        _ => None,
    }
}

/// Every problem of the connector config in `file`; empty when it is valid.
pub fn connector_problems(
    file: &PropertiesFile,
    worker: &WorkerConfig,
    env: &dyn Environment,
) -> Vec<Problem> {
    let mut file = file.clone();
    let mut problems: Vec<Problem> = Vec::new();
    for _ in 0..ROUNDS {
        let Err(error) = ConnectorConfig::from_file(file.clone(), worker, env) else {
            break;
        };
        let (key, missing) = match &error {
            ConfigFileError::Key { key, .. } => (key.clone(), false),
            ConfigFileError::Missing { key, .. } => (key.clone(), true),
            _ => (String::new(), true),
        };
        // A conflict names both keys (`topics / topics.regex`): set aside the second.
        let key = key.rsplit(" / ").next().unwrap_or(&key).to_string();
        if problems.iter().any(|p| p.key == key) {
            break;
        }
        problems.push(Problem {
            key: key.clone(),
            error,
        });
        if missing {
            let Some(value) = stand_in(&key) else {
                break;
            };
            file.entries.insert(key, value.to_string());
        } else {
            file.entries.remove(&key);
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::providers::SystemEnvironment;
    use super::*;

    fn file(text: &str) -> PropertiesFile {
        PropertiesFile::parse(Path::new("c.properties"), text.as_bytes()).unwrap()
    }

    fn worker() -> WorkerConfig {
        WorkerConfig::from_file(
            PropertiesFile::parse(Path::new("w.properties"), b"bootstrap.servers=b:9092\n")
                .unwrap(),
            &SystemEnvironment,
        )
        .unwrap()
    }

    #[test]
    fn every_problem_of_a_config_each_naming_its_line() {
        let problems = connector_problems(
            &file("connector.class=file\ntasks.max=0\nerrors.tolerance=some\nfile=/tmp/x\n"),
            &worker(),
            &SystemEnvironment,
        );
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["name", "tasks.max", "topics", "errors.tolerance"]);
        let lines: Vec<String> = problems.iter().map(|p| p.error.to_string()).collect();
        assert!(
            lines[1].starts_with("c.properties:2: tasks.max:"),
            "{lines:?}"
        );
        assert!(
            lines[3].starts_with("c.properties:3: errors.tolerance:"),
            "{lines:?}"
        );
        assert!(
            problems[0]
                .reason()
                .starts_with("Missing required configuration \"name\"")
        );
    }

    #[test]
    fn a_valid_config_has_none() {
        let problems = connector_problems(
            &file("name=n\nconnector.class=file\ntopics=t\nfile=/tmp/x\n"),
            &worker(),
            &SystemEnvironment,
        );
        assert!(problems.is_empty(), "{problems:?}");
    }
}
