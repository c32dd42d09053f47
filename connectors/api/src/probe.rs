//! Start-up checks that file-writing sinks share: prove that a directory can be created and
//! written, and leave nothing behind, so that `ferry check` and ferry's start-up preflight
//! fail where the first `put` would.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Creates `dir` (and any missing parents), writes, syncs and removes a probe file in it,
/// then removes the directories it created. The error names the path that failed.
pub fn probe_writable_dir(dir: &Path) -> Result<(), ProbeError> {
    let created = missing_ancestors(dir);
    let result = (|| {
        fs::create_dir_all(dir).map_err(|e| ProbeError::new("create the directory", dir, e))?;
        let probe = dir.join(format!(".ferry-probe-{}", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .and_then(|mut f| {
                f.write_all(b"ferry")?;
                f.sync_all()
            });
        let _ = fs::remove_file(&probe);
        written.map_err(|e| ProbeError::new("write a file in", dir, e))
    })();
    // Deepest first; a directory that is not empty (someone else wrote there) stays.
    for d in created.iter().rev() {
        let _ = fs::remove_dir(d);
    }
    result
}

/// Proves that `file` can be appended to: opens it if it exists (writing nothing),
/// otherwise proves its directory writable.
pub fn probe_appendable_file(file: &Path) -> Result<(), ProbeError> {
    if file.exists() {
        return OpenOptions::new()
            .append(true)
            .open(file)
            .map(drop)
            .map_err(|e| ProbeError::new("open for appending", file, e));
    }
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    probe_writable_dir(dir)
}

/// `dir` and each of its ancestors that does not exist yet, outermost first.
fn missing_ancestors(dir: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && fs::symlink_metadata(a).is_err())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}

/// A path that cannot be created or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct ProbeError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl ProbeError {
    fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_creatable_directory_passes_and_is_removed_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        probe_writable_dir(&dir).unwrap();
        assert!(!tmp.path().join("a").exists(), "nothing left behind");
    }

    #[test]
    fn an_existing_directory_keeps_its_contents_and_gains_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("keep"), b"x").unwrap();
        probe_writable_dir(tmp.path()).unwrap();
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["keep"]);
    }

    #[test]
    fn a_path_under_proc_fails_naming_the_path() {
        let err = probe_writable_dir(Path::new("/proc/nope/out")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("cannot create the directory /proc/nope/out: "),
            "{text}"
        );
    }

    #[test]
    fn a_file_path_is_probed_through_its_directory_unless_it_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("out/records.txt");
        probe_appendable_file(&file).unwrap();
        assert!(!tmp.path().join("out").exists());
        let existing = tmp.path().join("existing.txt");
        fs::write(&existing, b"line\n").unwrap();
        probe_appendable_file(&existing).unwrap();
        assert_eq!(fs::read(&existing).unwrap(), b"line\n");
        let err = probe_appendable_file(Path::new("/proc/nope/out.txt")).unwrap_err();
        assert!(err.to_string().contains("/proc/nope"), "{err}");
    }
}
