//! Kafka's config providers: `${env:VAR}`, `${file:/path:key}`, `${directory:/dir:file}`,
//! and a value that is only `$VAR` (the OpenMSIStream habit).
//!
//! Kafka Connect resolves a reference only when `config.providers` declares the provider;
//! ferry resolves `env`, `file` and `directory` without a declaration and honours declared
//! names bound to Kafka's provider classes. A reference to an unknown provider is an error
//! rather than a literal value, so a typo like `${evn:X}` cannot reach a broker as a
//! password.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use ferry_connector_api::text::shown;

use super::properties::PropertiesFile;

/// Where provider values come from; a trait so resolution is testable without touching the
/// process environment or the file system.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
}

/// The real process environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnvironment;

impl Environment for SystemEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Env,
    File,
    Directory,
}

/// The providers available to a worker and its connectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Providers {
    names: BTreeMap<String, Kind>,
}

/// A reference that could not be resolved. Never contains the resolved value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve {}: {reason}", shown(reference))]
pub struct ProviderError {
    pub reference: String,
    pub reason: String,
}

impl Default for Providers {
    fn default() -> Self {
        Self {
            names: BTreeMap::from([
                ("env".to_string(), Kind::Env),
                ("file".to_string(), Kind::File),
                ("directory".to_string(), Kind::Directory),
            ]),
        }
    }
}

impl Providers {
    /// Reads `config.providers` and `config.providers.<name>.class` from the worker's keys.
    /// Returns the providers, or the key and reason of the first problem.
    pub fn from_worker(entries: &BTreeMap<String, String>) -> Result<Self, (String, String)> {
        let mut providers = Self::default();
        let Some(list) = entries.get("config.providers") else {
            return Ok(providers);
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let key = format!("config.providers.{name}.class");
            let Some(class) = entries.get(&key) else {
                return Err((
                    key,
                    format!(
                        "provider `{}` is listed in config.providers but has no class",
                        shown(name)
                    ),
                ));
            };
            let kind = match class.trim() {
                "org.apache.kafka.common.config.provider.EnvVarConfigProvider" => Kind::Env,
                "org.apache.kafka.common.config.provider.FileConfigProvider" => Kind::File,
                "org.apache.kafka.common.config.provider.DirectoryConfigProvider" => {
                    Kind::Directory
                }
                other => {
                    return Err((
                        key,
                        format!(
                            "`{}` is not a provider ferry implements (EnvVarConfigProvider, FileConfigProvider, DirectoryConfigProvider)",
                            shown(other)
                        ),
                    ));
                }
            };
            providers.names.insert(name.to_string(), kind);
        }
        Ok(providers)
    }

    /// Resolves every reference in `value`. Returns the new value and whether any reference
    /// was resolved.
    pub fn resolve(
        &self,
        value: &str,
        env: &dyn Environment,
    ) -> Result<(String, bool), ProviderError> {
        if let Some(name) = bare_variable(value) {
            return env
                .var(name)
                .map(|v| (v, true))
                .ok_or_else(|| ProviderError {
                    reference: value.to_string(),
                    reason: format!("environment variable {name} is not set"),
                });
        }
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        let mut resolved_any = false;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            let reference = &rest[start..start + len + 1];
            if reference.contains(':') {
                out.push_str(&self.resolve_one(reference, env)?);
                resolved_any = true;
            } else {
                // Not a provider reference (Connect's pattern needs `provider:`): text the
                // key's reader uses, such as TimestampRouter's `${topic}-${timestamp}`.
                out.push_str(reference);
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        Ok((out, resolved_any))
    }

    fn resolve_one(&self, reference: &str, env: &dyn Environment) -> Result<String, ProviderError> {
        let fail = |reason: String| ProviderError {
            reference: reference.to_string(),
            reason,
        };
        let inner = &reference[2..reference.len() - 1];
        let (provider, rest) = inner
            .split_once(':')
            .ok_or_else(|| fail("expected ${provider:path:key} or ${provider:key}".into()))?;
        let kind = self.names.get(provider).ok_or_else(|| {
            fail(format!(
                "unknown config provider `{provider}` (known: {})",
                self.names.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        match kind {
            Kind::Env => env
                .var(rest)
                .ok_or_else(|| fail(format!("environment variable {rest} is not set"))),
            Kind::File => {
                let (path, key) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| fail("expected ${file:/path/to/file:key}".into()))?;
                let bytes = env
                    .read(Path::new(path))
                    .map_err(|e| fail(format!("cannot read {path}: {e}")))?;
                let file = PropertiesFile::parse(Path::new(path), &bytes)
                    .map_err(|e| fail(e.to_string()))?;
                file.entries
                    .get(key)
                    .cloned()
                    .ok_or_else(|| fail(format!("{path} has no key `{key}`")))
            }
            Kind::Directory => {
                let (dir, name) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| fail("expected ${directory:/path/to/dir:file}".into()))?;
                let path = Path::new(dir).join(name);
                let bytes = env
                    .read(&path)
                    .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
                String::from_utf8(bytes)
                    .map_err(|_| fail(format!("{} is not UTF-8 text", path.display())))
            }
        }
    }
}

/// `$NAME` as the entire value.
fn bare_variable(value: &str) -> Option<&str> {
    let name = value.strip_prefix('$')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    ((first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some(name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;

    #[derive(Default)]
    struct FakeEnv {
        vars: HashMap<String, String>,
        files: HashMap<PathBuf, Vec<u8>>,
    }

    impl Environment for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file"))
        }
    }

    fn env() -> FakeEnv {
        let mut e = FakeEnv::default();
        e.vars.insert("BROKER".into(), "b1:9092".into());
        e.vars.insert("PASS".into(), "s3cret".into());
        e.files.insert(
            "/etc/ferry/creds.properties".into(),
            b"username=alice\npassword=hunter2\n".to_vec(),
        );
        e.files.insert("/run/secrets/token".into(), b"tok".to_vec());
        e
    }

    #[test]
    fn env_file_directory_and_bare_variables() {
        let p = Providers::default();
        let e = env();
        assert_eq!(
            p.resolve("${env:BROKER}", &e).unwrap(),
            ("b1:9092".into(), true)
        );
        assert_eq!(
            p.resolve("user=${file:/etc/ferry/creds.properties:username};", &e)
                .unwrap()
                .0,
            "user=alice;"
        );
        assert_eq!(
            p.resolve("${directory:/run/secrets:token}", &e).unwrap().0,
            "tok"
        );
        assert_eq!(p.resolve("$PASS", &e).unwrap(), ("s3cret".into(), true));
        assert_eq!(p.resolve("plain", &e).unwrap(), ("plain".into(), false));
        // `$` inside a value is not a variable.
        assert_eq!(p.resolve("a$PASS", &e).unwrap().0, "a$PASS");
        // Without `provider:` it is not a reference either (Connect's ConfigTransformer).
        assert_eq!(
            p.resolve("${topic}_${timestamp}", &e).unwrap(),
            ("${topic}_${timestamp}".into(), false)
        );
    }

    #[test]
    fn failures_name_the_reference_not_a_value() {
        let p = Providers::default();
        let e = env();
        let err = p.resolve("${env:MISSING}", &e).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot resolve ${env:MISSING}: environment variable MISSING is not set"
        );
        let err = p
            .resolve("${file:/etc/ferry/creds.properties:token}", &e)
            .unwrap_err();
        assert!(err.to_string().contains("has no key `token`"), "{err}");
        assert!(!err.to_string().contains("hunter2"));
        let err = p.resolve("${evn:BROKER}", &e).unwrap_err();
        assert!(
            err.to_string().contains("unknown config provider `evn`"),
            "{err}"
        );
    }

    #[test]
    fn declared_providers_bind_kafka_classes() {
        let entries = BTreeMap::from([
            ("config.providers".to_string(), "secrets".to_string()),
            (
                "config.providers.secrets.class".to_string(),
                "org.apache.kafka.common.config.provider.FileConfigProvider".to_string(),
            ),
        ]);
        let p = Providers::from_worker(&entries).unwrap();
        assert_eq!(
            p.resolve("${secrets:/etc/ferry/creds.properties:password}", &env())
                .unwrap()
                .0,
            "hunter2"
        );
        let bad = BTreeMap::from([
            ("config.providers".to_string(), "vault".to_string()),
            (
                "config.providers.vault.class".to_string(),
                "com.example.Vault".to_string(),
            ),
        ]);
        let (key, reason) = Providers::from_worker(&bad).unwrap_err();
        assert_eq!(key, "config.providers.vault.class");
        assert!(reason.contains("com.example.Vault"));
    }
}
