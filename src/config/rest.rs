//! The worker's REST keys, with Kafka Connect's names: where the REST API listens, what it
//! advertises, and CORS. Read from the worker file's (resolved) entries; pure.

use super::{ConfigFileError, PropertiesFile};

/// Where the REST API listens when the worker file does not say: loopback, unlike Kafka
/// Connect (all interfaces), so that an API that can stop connectors and move offsets is
/// not on the network unless the operator puts it there.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Kafka Connect's port.
pub const DEFAULT_PORT: u16 = 8083;
/// Request bodies larger than this are refused with 413 (a connector config is a few KB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One `http://host:port` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub host: String,
    pub port: u16,
}

impl Listener {
    /// `host:port`, bracketing IPv6 addresses.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The REST settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestConfig {
    /// `ferry.rest.enable` (true): false serves no REST API.
    pub enabled: bool,
    /// `listeners` (`http://127.0.0.1:8083`), else the old `rest.host.name`/`rest.port`.
    pub listeners: Vec<Listener>,
    /// The listener was set in the file (a port in use then stops ferry); when it is the
    /// default, a port in use is a warning and ferry runs without the API.
    pub explicit: bool,
    /// `rest.advertised.host.name` / `rest.advertised.port` / `rest.advertised.listener`:
    /// what `worker_id` says in status answers.
    pub advertised: Listener,
    /// `access.control.allow.origin` (none): the CORS origin allowed, `*` for any.
    pub allow_origin: Option<String>,
    /// `access.control.allow.methods` (Connect's default `GET,POST,HEAD` when an origin is
    /// set).
    pub allow_methods: Option<String>,
    /// `ferry.config.storage.file` (none): where connectors created or changed over the API
    /// are kept so that they survive a restart; none keeps them until the process stops,
    /// as Kafka Connect's standalone mode does.
    pub storage: Option<std::path::PathBuf>,
    /// `ferry.rest.basic.auth.file` (none): a properties file of `user=password` lines;
    /// when set, every request but `GET /health` needs HTTP basic credentials from it.
    pub basic_auth_file: Option<std::path::PathBuf>,
    /// `topic.tracking.enable` (true): false answers `GET|PUT …/topics[/reset]` with 403,
    /// as Connect does.
    pub topic_tracking: bool,
    /// `topic.tracking.allow.reset` (true): false answers `PUT …/topics/reset` with 403.
    pub topic_tracking_reset: bool,
}

fn key_err(file: &PropertiesFile, key: &str, reason: String) -> ConfigFileError {
    ConfigFileError::Key {
        location: file.locate(key),
        key: key.to_string(),
        reason,
    }
}

fn parse_listener(
    file: &PropertiesFile,
    key: &str,
    text: &str,
) -> Result<Listener, ConfigFileError> {
    let text = text.trim();
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(key_err(
            file,
            key,
            format!(
                "`{text}` is not a URL; write http://<host>:<port>, e.g. http://127.0.0.1:8083"
            ),
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" => {}
        "https" => {
            return Err(key_err(
                file,
                key,
                format!(
                    "`{text}`: HTTPS listeners are not supported yet; listen on http:// on loopback and put a TLS proxy in front"
                ),
            ));
        }
        other => {
            return Err(key_err(
                file,
                key,
                format!("`{text}`: unknown scheme `{other}`; write http://<host>:<port>"),
            ));
        }
    }
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p),
        _ => {
            return Err(key_err(
                file,
                key,
                format!("`{text}` has no port; write http://<host>:<port>"),
            ));
        }
    };
    let port: u16 = port.parse().map_err(|_| {
        key_err(
            file,
            key,
            format!("`{port}` is not a port number (0-65535)"),
        )
    })?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    // Kafka Connect binds every interface for an empty host; so does ferry, when asked.
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok(Listener {
        host: host.to_string(),
        port,
    })
}

impl RestConfig {
    /// Reads the REST keys of a worker file.
    pub fn from_worker(file: &PropertiesFile) -> Result<Self, ConfigFileError> {
        let get = |k: &str| {
            file.entries
                .get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let bool_of = |key: &str, default: bool| match get(key).as_deref() {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(key_err(file, key, format!("`{v}` is not true or false"))),
        };
        let enabled = bool_of("ferry.rest.enable", true)?;
        let port_of = |key: &str| -> Result<Option<u16>, ConfigFileError> {
            get(key)
                .map(|v| {
                    v.parse::<u16>().map_err(|_| {
                        key_err(file, key, format!("`{v}` is not a port number (0-65535)"))
                    })
                })
                .transpose()
        };
        let (listeners, explicit) = match get("listeners") {
            Some(list) => {
                let mut out = Vec::new();
                for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    out.push(parse_listener(file, "listeners", item)?);
                }
                if out.is_empty() {
                    return Err(key_err(
                        file,
                        "listeners",
                        "is empty; write http://<host>:<port>".into(),
                    ));
                }
                (out, true)
            }
            None => {
                let host = get("rest.host.name");
                let port = port_of("rest.port")?;
                let explicit = host.is_some() || port.is_some();
                (
                    vec![Listener {
                        host: host.unwrap_or_else(|| DEFAULT_HOST.to_string()),
                        port: port.unwrap_or(DEFAULT_PORT),
                    }],
                    explicit,
                )
            }
        };
        let first = listeners[0].clone();
        if let Some(l) = get("rest.advertised.listener")
            && !l.eq_ignore_ascii_case("http")
        {
            return Err(key_err(
                file,
                "rest.advertised.listener",
                format!("`{l}`: only http listeners are supported"),
            ));
        }
        let advertised = Listener {
            host: get("rest.advertised.host.name").unwrap_or(first.host),
            port: port_of("rest.advertised.port")?.unwrap_or(first.port),
        };
        Ok(Self {
            enabled,
            listeners,
            explicit,
            advertised,
            allow_origin: get("access.control.allow.origin"),
            allow_methods: get("access.control.allow.methods"),
            storage: get("ferry.config.storage.file").map(std::path::PathBuf::from),
            basic_auth_file: get("ferry.rest.basic.auth.file").map(std::path::PathBuf::from),
            topic_tracking: bool_of("topic.tracking.enable", true)?,
            topic_tracking_reset: bool_of("topic.tracking.allow.reset", true)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Result<RestConfig, ConfigFileError> {
        let file = PropertiesFile::parse(Path::new("w.properties"), text.as_bytes()).unwrap();
        RestConfig::from_worker(&file)
    }

    #[test]
    fn the_default_is_loopback_8083_and_not_explicit() {
        let r = load("bootstrap.servers=b:9092\n").unwrap();
        assert!(r.enabled);
        assert!(!r.explicit);
        assert_eq!(
            r.listeners,
            vec![Listener {
                host: "127.0.0.1".into(),
                port: 8083
            }]
        );
        assert_eq!(r.advertised.authority(), "127.0.0.1:8083");
    }

    #[test]
    fn listeners_old_names_and_advertised_keys_are_read() {
        let r = load("listeners=http://:9000,http://[::1]:9001\nrest.advertised.host.name=w1\n")
            .unwrap();
        assert!(r.explicit);
        assert_eq!(r.listeners[0].authority(), "0.0.0.0:9000");
        assert_eq!(r.listeners[1].authority(), "[::1]:9001");
        assert_eq!(r.advertised.authority(), "w1:9000");
        let r = load("rest.port=9100\n").unwrap();
        assert_eq!(r.listeners[0].authority(), "127.0.0.1:9100");
        assert!(r.explicit);
        let r = load("ferry.rest.enable=false\n").unwrap();
        assert!(!r.enabled);
        assert!(r.topic_tracking && r.topic_tracking_reset);
        let r = load("topic.tracking.enable=false\ntopic.tracking.allow.reset=FALSE\n").unwrap();
        assert!(!r.topic_tracking && !r.topic_tracking_reset);
    }

    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        let e = load("listeners=https://x:1\n").unwrap_err().to_string();
        assert!(
            e.contains("w.properties:1: listeners:") && e.contains("HTTPS"),
            "{e}"
        );
        let e = load("listeners=http://x\n").unwrap_err().to_string();
        assert!(e.contains("has no port"), "{e}");
        let e = load("rest.port=eighty\n").unwrap_err().to_string();
        assert!(
            e.contains("rest.port: `eighty` is not a port number"),
            "{e}"
        );
        let e = load("ferry.rest.enable=yes\n").unwrap_err().to_string();
        assert!(
            e.contains("ferry.rest.enable: `yes` is not true or false"),
            "{e}"
        );
    }
}
