//! `ferry.config.storage.file`: the connectors created or changed over the REST API, with
//! their target states, kept in one JSON file so that they survive a restart. Written
//! atomically (temporary file, fsync, rename; owner-only permissions, since configs may
//! hold credentials) after every change; read once at start.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::status::Target;

const FORMAT: &str = "ferry-connectors";
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Document {
    format: String,
    version: u32,
    connectors: BTreeMap<String, Stored>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    config: BTreeMap<String, String>,
    state: String,
}

fn state_name(t: Target) -> &'static str {
    match t {
        Target::Started => "RUNNING",
        Target::Paused => "PAUSED",
        Target::Stopped => "STOPPED",
    }
}

/// One stored connector: its name, config as given, and target state.
pub(crate) type StoredConnector = (String, BTreeMap<String, String>, Target);

/// The stored connectors, in name order; none when the file does not exist yet.
pub(crate) fn load(path: &Path) -> Result<Vec<StoredConnector>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(format!(
                "{}: cannot read ferry.config.storage.file: {e}; check the path and its permissions",
                path.display()
            ));
        }
    };
    let doc: Document = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{}: ferry.config.storage.file is not ferry's connector store ({e}); move it aside",
            path.display()
        )
    })?;
    if doc.format != FORMAT || doc.version > VERSION {
        return Err(format!(
            "{}: ferry.config.storage.file has format {} version {}, which this ferry does not read; move it aside or upgrade ferry",
            path.display(),
            doc.format,
            doc.version
        ));
    }
    Ok(doc
        .connectors
        .into_iter()
        .map(|(name, s)| {
            let target = Target::parse(&s.state).unwrap_or(Target::Started);
            (name, s.config, target)
        })
        .collect())
}

/// Replaces the file with these connectors.
pub(crate) fn save<'a>(
    path: &Path,
    connectors: impl Iterator<Item = (&'a str, &'a BTreeMap<String, String>, Target)>,
) -> Result<(), String> {
    let doc = Document {
        format: FORMAT.into(),
        version: VERSION,
        connectors: connectors
            .map(|(name, config, target)| {
                (
                    name.to_string(),
                    Stored {
                        config: config.clone(),
                        state: state_name(target).into(),
                    },
                )
            })
            .collect(),
    };
    let fail = |e: std::io::Error| {
        format!(
            "{}: cannot write ferry.config.storage.file: {e}; check free space and permissions",
            path.display()
        )
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(fail)?;
    let mut bytes = serde_json::to_vec_pretty(&doc).map_err(|e| fail(std::io::Error::other(e)))?;
    bytes.push(b'\n');
    // tempfile creates the file 0600 and removes it if the write fails.
    let mut tmp = tempfile::Builder::new()
        .prefix(".ferry-connectors.")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(fail)?;
    tmp.write_all(&bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectors_round_trip_with_their_states() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/connectors.json");
        assert!(load(&path).unwrap().is_empty());
        let a: BTreeMap<String, String> = [("name".to_string(), "a".to_string())].into();
        let b: BTreeMap<String, String> = [("name".to_string(), "b".to_string())].into();
        save(
            &path,
            [("a", &a, Target::Paused), ("b", &b, Target::Started)].into_iter(),
        )
        .unwrap();
        let got = load(&path).unwrap();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), a, Target::Paused),
                ("b".to_string(), b, Target::Started)
            ]
        );
        std::fs::write(&path, "{").unwrap();
        assert!(load(&path).unwrap_err().contains("move it aside"));
    }
}
