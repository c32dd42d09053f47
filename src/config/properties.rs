//! Reading `.properties` files with Java's grammar (the `java-properties` crate): `\`
//! continuations, `#`/`!` comments, `=`/`:`/whitespace separators, escapes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use java_properties::{LineContent, PropertiesIter};

use super::ConfigFileError;
use super::validate::MAX_VALUE_BYTES;

/// One properties file: its keys, values, and the line each key was last set on.
#[derive(Clone, PartialEq, Eq)]
pub struct PropertiesFile {
    pub path: PathBuf,
    pub entries: BTreeMap<String, String>,
    pub lines: BTreeMap<String, usize>,
    /// Keys set more than once, with the line of each earlier setting (the last one wins,
    /// as in Java).
    pub duplicates: Vec<(String, usize)>,
}

impl std::fmt::Debug for PropertiesFile {
    // Values may be secrets; list keys only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PropertiesFile")
            .field("path", &self.path)
            .field("keys", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PropertiesFile {
    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let bytes = fs::read(path).map_err(|source| ConfigFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &bytes)
    }

    /// Parses file contents. UTF-8 when the bytes are valid UTF-8, else ISO-8859-1 as the
    /// Java specification says (Kafka Connect always reads ISO-8859-1, which garbles UTF-8
    /// paths; ferry reads what the editor most likely wrote).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, ConfigFileError> {
        // Before the grammar: a line of megabytes is refused at once, not parsed for seconds.
        if let Some(err) = overlong_line(path, bytes) {
            return Err(err);
        }
        let encoding = if std::str::from_utf8(bytes).is_ok() {
            encoding_rs::UTF_8
        } else {
            encoding_rs::WINDOWS_1252
        };
        let mut file = PropertiesFile {
            path: path.to_path_buf(),
            entries: BTreeMap::new(),
            lines: BTreeMap::new(),
            duplicates: Vec::new(),
        };
        for line in PropertiesIter::new_with_encoding(bytes, encoding) {
            let line = line.map_err(|e| ConfigFileError::Syntax {
                path: path.to_path_buf(),
                line: e.line_number(),
                // The crate's message ends with its own "(line_number = N)"; drop that, the
                // line is reported in the `path:line:` prefix.
                message: e
                    .to_string()
                    .split(" (line_number")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            })?;
            let number = line.line_number();
            if let LineContent::KVPair(key, value) = line.consume_content() {
                let key = key.trim().to_string();
                if let Some(previous) = file.lines.insert(key.clone(), number) {
                    file.duplicates.push((key.clone(), previous));
                }
                // Trailing whitespace in a value is never intended and breaks Java's JAAS
                // parser (the ZTF guide warns about it); ferry trims it.
                file.entries.insert(key, value.trim_end().to_string());
            }
        }
        // Continuation lines can still add up to a value past the bound.
        if let Some((key, value)) = file.entries.iter().find(|(_, v)| v.len() > MAX_VALUE_BYTES) {
            return Err(ConfigFileError::Key {
                location: file.locate(key),
                key: key.clone(),
                reason: too_long(value.len()),
            });
        }
        Ok(file)
    }

    /// `path:line` for a key, or `path` when the key was not in the file.
    pub fn locate(&self, key: &str) -> String {
        match self.lines.get(key) {
            Some(line) => format!("{}:{line}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }
}

fn too_long(len: usize) -> String {
    format!(
        "the value is {len} bytes; ferry reads values of at most 1 MiB ({MAX_VALUE_BYTES} bytes)"
    )
}

/// The first physical line longer than a value may be, as an error naming its key.
fn overlong_line(path: &Path, bytes: &[u8]) -> Option<ConfigFileError> {
    let (number, line) = bytes
        .split(|b| *b == b'\n' || *b == b'\r')
        .enumerate()
        // Room for the key beside a value of the largest size.
        .find(|(_, line)| line.len() > MAX_VALUE_BYTES + 4096)?;
    let head = String::from_utf8_lossy(&line[..line.len().min(512)]);
    let head = head.trim_start_matches([' ', '\t', '\x0c']);
    let line_no = number + 1;
    let location = format!("{}:{line_no}", path.display());
    if head.starts_with(['#', '!']) {
        return Some(ConfigFileError::Syntax {
            path: path.to_path_buf(),
            line: Some(line_no),
            message: format!(
                "the comment is {} bytes; ferry reads lines of at most 1 MiB ({MAX_VALUE_BYTES} bytes)",
                line.len()
            ),
        });
    }
    // The key ends at the first unescaped `=`, `:` or whitespace.
    let mut key = String::new();
    let mut escaped = false;
    for c in head.chars() {
        if !escaped && matches!(c, '=' | ':' | ' ' | '\t' | '\x0c') {
            break;
        }
        escaped = !escaped && c == '\\';
        key.push(c);
    }
    Some(ConfigFileError::Key {
        location,
        key,
        reason: format!(
            "the line is {} bytes; ferry reads values of at most 1 MiB ({MAX_VALUE_BYTES} bytes)",
            line.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PropertiesFile {
        PropertiesFile::parse(Path::new("w.properties"), text.as_bytes()).unwrap()
    }

    #[test]
    fn java_grammar_separators_comments_and_escapes() {
        let f = parse(
            "# comment\n! also a comment\na=1\nb : 2\nc 3\nd=tab\\there\ne=\\u00e9t\\u00e9\nkey\\ with\\ spaces=x\n",
        );
        assert_eq!(f.entries["a"], "1");
        assert_eq!(f.entries["b"], "2");
        assert_eq!(f.entries["c"], "3");
        assert_eq!(f.entries["d"], "tab\there");
        assert_eq!(f.entries["e"], "été");
        assert_eq!(f.entries["key with spaces"], "x");
        assert_eq!(f.lines["c"], 5);
    }

    #[test]
    fn the_ztf_multi_line_jaas_value_parses_with_trailing_spaces() {
        // Exactly the shape of the ZTF worker file, including a trailing space after a `\`
        // continuation line's content and at the end of the value.
        let text = "sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required \\\n   useKeyTab=true \\\n   storeKeyTab=true \\\n   serviceName=\"kafka\" \\\n   keyTab=\"/home/ztf_consumer/pitt-reader.user.keytab\" \\\n   principal=\"pitt-reader@KAFKA.SECURE\" \\\n   useTicketCache=false;   \nsasl.mechanism=GSSAPI\n";
        let f = parse(text);
        assert_eq!(
            f.entries["sasl.jaas.config"],
            "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKeyTab=true serviceName=\"kafka\" keyTab=\"/home/ztf_consumer/pitt-reader.user.keytab\" principal=\"pitt-reader@KAFKA.SECURE\" useTicketCache=false;"
        );
        assert_eq!(f.entries["sasl.mechanism"], "GSSAPI");
        assert_eq!(f.lines["sasl.mechanism"], 8);
    }

    #[test]
    fn duplicates_keep_the_last_value_and_are_recorded() {
        let f = parse("a=1\nb=2\na=3\n");
        assert_eq!(f.entries["a"], "3");
        assert_eq!(f.duplicates, vec![("a".to_string(), 1)]);
    }

    #[test]
    fn a_bad_unicode_escape_names_file_and_line() {
        let err =
            PropertiesFile::parse(Path::new("c.properties"), b"a=1\nb=\\u12G4\n").unwrap_err();
        assert_eq!(
            err.to_string().split(": ").next().unwrap(),
            "c.properties:2",
            "{err}"
        );
    }

    #[test]
    fn values_past_one_mib_are_refused_with_a_short_line() {
        let big = "a".repeat(10 << 20);
        let err = PropertiesFile::parse(
            Path::new("w.properties"),
            format!("a=1\nbootstrap.servers={big}\n").as_bytes(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "w.properties:2: bootstrap.servers: the line is 10485778 bytes; ferry reads values of at most 1 MiB (1048576 bytes)"
        );
        // A value made of continuation lines, each short.
        let lines =
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\\n".repeat(17_000);
        let err = PropertiesFile::parse(
            Path::new("c.properties"),
            format!("name=x\nfile={lines}\n").as_bytes(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("c.properties:2: file: the value is 107"),
            "{err}"
        );
        // A huge key is cut too.
        let err = PropertiesFile::parse(Path::new("c.properties"), format!("{big}=1\n").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.len() < 300, "{}", &err[..300.min(err.len())]);
        let err = PropertiesFile::parse(Path::new("c.properties"), format!("# {big}\n").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.properties:1: the comment is"), "{err}");
        // One MiB exactly is fine.
        let f = PropertiesFile::parse(
            Path::new("c.properties"),
            format!("k={}\n", "v".repeat(MAX_VALUE_BYTES)).as_bytes(),
        )
        .unwrap();
        assert_eq!(f.entries["k"].len(), MAX_VALUE_BYTES);
    }

    #[test]
    fn latin1_files_are_still_read() {
        let f = PropertiesFile::parse(Path::new("x"), b"name=caf\xe9\n").unwrap();
        assert_eq!(f.entries["name"], "café");
    }
}
