//! Reading `.properties` files with Java's grammar (the `java-properties` crate): `\`
//! continuations, `#`/`!` comments, `=`/`:`/whitespace separators, escapes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use java_properties::{LineContent, PropertiesIter};

use super::ConfigFileError;

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
    fn latin1_files_are_still_read() {
        let f = PropertiesFile::parse(Path::new("x"), b"name=caf\xe9\n").unwrap();
        assert_eq!(f.entries["name"], "café");
    }
}
