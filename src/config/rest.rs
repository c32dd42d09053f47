//! The worker's REST keys, with Kafka Connect's names: where the REST API listens, what it
//! advertises, and CORS. Read from the worker file's (resolved) entries; pure.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::secret::Secret;
use super::{ConfigFileError, PropertiesFile};

/// Where the REST API listens when the worker file does not say: loopback, unlike Kafka
/// Connect (all interfaces), so that an API that can stop connectors and move offsets is
/// not on the network unless the operator puts it there.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Kafka Connect's port.
pub const DEFAULT_PORT: u16 = 8083;
/// Request bodies larger than this are refused with 413 (a connector config is a few KB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One `http://host:port` or `https://host:port` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub host: String,
    pub port: u16,
    /// `https://`: served with the keystore of [`RestConfig::tls`].
    pub https: bool,
}

impl Listener {
    /// `http://host:port` or `https://host:port`.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.authority())
    }

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
    /// The keystore of the `https://` listeners, when there is one.
    pub tls: Option<TlsConfig>,
}

/// The keys Connect reads for an HTTPS listener, after the prefix.
pub const KEYSTORE_LOCATION: &str = "ssl.keystore.location";
pub const KEYSTORE_TYPE: &str = "ssl.keystore.type";
pub const KEYSTORE_PASSWORD: &str = "ssl.keystore.password";
pub const KEY_PASSWORD: &str = "ssl.key.password";
pub const KEYSTORE_CHAIN: &str = "ssl.keystore.certificate.chain";
pub const KEYSTORE_KEY: &str = "ssl.keystore.key";
const CLIENT_AUTH: &str = "ssl.client.auth";
/// Connect's prefix for the HTTPS listeners' own SSL keys.
pub const HTTPS_PREFIX: &str = "listeners.https.";

/// The keystore of the HTTPS listeners: `listeners.https.ssl.*` when any such key is set,
/// else the worker's un-prefixed `ssl.*` (Connect's `valuesWithPrefixAllOrNothing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub keystore: KeyStore,
    /// `ssl.key.password`: the private key's own password (PEM: of an encrypted PKCS#8
    /// key; PKCS#12: defaults to the keystore password).
    pub key_password: Option<Secret>,
    /// Each key read, as `file:line: key` for error lines (with the prefix as written).
    pub labels: BTreeMap<&'static str, String>,
}

impl TlsConfig {
    /// `file:line: listeners.https.ssl.keystore.location`, for an error about that key.
    pub fn label(&self, key: &'static str) -> String {
        self.labels
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }
}

/// Where the certificate chain and its private key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStore {
    /// `ssl.keystore.type=PKCS12` with `ssl.keystore.location` and `ssl.keystore.password`.
    Pkcs12 {
        location: PathBuf,
        password: Option<Secret>,
    },
    /// `ssl.keystore.type=PEM` with `ssl.keystore.location`: one file holding the private
    /// key and the certificate chain.
    PemFile(PathBuf),
    /// `ssl.keystore.type=PEM` with the PEM text in `ssl.keystore.certificate.chain` and
    /// `ssl.keystore.key`.
    PemText { chain: String, key: Secret },
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
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        other => {
            return Err(key_err(
                file,
                key,
                format!(
                    "`{text}`: unknown scheme `{other}`; write http://<host>:<port> or https://<host>:<port>"
                ),
            ));
        }
    };
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
        https,
    })
}

/// The keystore keys of the HTTPS listeners (pure: the files are read when the listener
/// is bound, see `rest::tls`).
fn tls_config(file: &PropertiesFile) -> Result<TlsConfig, ConfigFileError> {
    let prefixed = file.entries.keys().any(|k| k.starts_with(HTTPS_PREFIX));
    let prefix = if prefixed { HTTPS_PREFIX } else { "" };
    let mut labels = BTreeMap::new();
    let mut get = |key: &'static str| {
        let written = format!("{prefix}{key}");
        labels.insert(key, format!("{}: {written}", file.locate(&written)));
        file.entries
            .get(&written)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let location = get(KEYSTORE_LOCATION);
    let kind = get(KEYSTORE_TYPE);
    let password = get(KEYSTORE_PASSWORD).map(Secret::new);
    let key_password = get(KEY_PASSWORD).map(Secret::new);
    let chain = get(KEYSTORE_CHAIN);
    let key = get(KEYSTORE_KEY).map(Secret::new);
    let client_auth = get(CLIENT_AUTH);
    let err = |key: &str, reason: String| key_err(file, &format!("{prefix}{key}"), reason);
    if let Some(auth) = client_auth
        && !auth.eq_ignore_ascii_case("none")
    {
        return Err(err(
            CLIENT_AUTH,
            format!(
                "`{auth}`: client certificates are not supported on ferry's HTTPS listeners; remove the key (or set it to none) and use ferry.rest.basic.auth.file to require credentials"
            ),
        ));
    }
    let kind = kind.map(|k| k.to_ascii_uppercase());
    let keystore = match (location, chain, key) {
        (None, None, None) => {
            return Err(err(
                KEYSTORE_LOCATION,
                format!(
                    "is not set, and an https:// listener needs a certificate and its key; set {prefix}{KEYSTORE_LOCATION} (with {prefix}{KEYSTORE_TYPE}=PKCS12 or PEM), or {prefix}{KEYSTORE_CHAIN} and {prefix}{KEYSTORE_KEY}"
                ),
            ));
        }
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(err(
                KEYSTORE_LOCATION,
                format!(
                    "give a keystore file or the PEM text ({prefix}{KEYSTORE_CHAIN} and {prefix}{KEYSTORE_KEY}), not both"
                ),
            ));
        }
        (None, Some(_), None) => {
            return Err(err(
                KEYSTORE_KEY,
                format!("is not set; {prefix}{KEYSTORE_CHAIN} needs the private key beside it"),
            ));
        }
        (None, None, Some(_)) => {
            return Err(err(
                KEYSTORE_CHAIN,
                format!("is not set; {prefix}{KEYSTORE_KEY} needs the certificate chain beside it"),
            ));
        }
        (None, Some(chain), Some(key)) => {
            if kind.as_deref().is_some_and(|k| k != "PEM") {
                return Err(err(
                    KEYSTORE_TYPE,
                    format!(
                        "must be PEM (or unset) with {prefix}{KEYSTORE_CHAIN} and {prefix}{KEYSTORE_KEY}"
                    ),
                ));
            }
            KeyStore::PemText { chain, key }
        }
        (Some(location), None, None) => {
            // Java's default type is JKS, as for ferry's Kafka clients.
            match kind.as_deref().unwrap_or("JKS") {
                "PKCS12" => KeyStore::Pkcs12 {
                    location: PathBuf::from(&location),
                    password: password.clone(),
                },
                "PEM" => KeyStore::PemFile(PathBuf::from(&location)),
                other => {
                    return Err(err(
                        KEYSTORE_LOCATION,
                        format!(
                            "ferry reads PKCS12 and PEM keystores, not {other}; convert it (keytool -importkeystore -srckeystore {location} -destkeystore rest.p12 -deststoretype PKCS12) and set {prefix}{KEYSTORE_TYPE}=PKCS12"
                        ),
                    ));
                }
            }
        }
    };
    if !matches!(keystore, KeyStore::Pkcs12 { .. }) && password.is_some() {
        // Kafka refuses it too: a PEM keystore has no store password.
        return Err(err(
            KEYSTORE_PASSWORD,
            format!(
                "cannot be set for a PEM keystore; remove it, and give an encrypted private key's password as {prefix}{KEY_PASSWORD}"
            ),
        ));
    }
    Ok(TlsConfig {
        keystore,
        key_password,
        labels,
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
                        https: false,
                    }],
                    explicit,
                )
            }
        };
        let first = listeners[0].clone();
        let advertised_https = match get("rest.advertised.listener") {
            None => first.https,
            Some(l) if l.eq_ignore_ascii_case("http") => false,
            Some(l) if l.eq_ignore_ascii_case("https") => true,
            Some(l) => {
                return Err(key_err(
                    file,
                    "rest.advertised.listener",
                    format!("`{l}` is not http or https"),
                ));
            }
        };
        let advertised = Listener {
            host: get("rest.advertised.host.name").unwrap_or(first.host),
            port: port_of("rest.advertised.port")?.unwrap_or(first.port),
            https: advertised_https,
        };
        let tls = if listeners.iter().any(|l| l.https) {
            Some(tls_config(file)?)
        } else {
            None
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
            tls,
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
                port: 8083,
                https: false,
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
        let e = load("listeners=ftp://x:1\n").unwrap_err().to_string();
        assert!(
            e.contains("w.properties:1: listeners:") && e.contains("unknown scheme `ftp`"),
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

    #[test]
    fn https_listeners_read_connects_keystore_keys() {
        let r = load(
            "listeners=https://127.0.0.1:8443\nlisteners.https.ssl.keystore.location=/k.p12\nlisteners.https.ssl.keystore.type=pkcs12\nlisteners.https.ssl.keystore.password=s3cret\nssl.keystore.location=/client.jks\n",
        )
        .unwrap();
        assert!(r.listeners[0].https && r.advertised.https);
        let tls = r.tls.unwrap();
        assert_eq!(
            tls.keystore,
            KeyStore::Pkcs12 {
                location: "/k.p12".into(),
                password: Some(Secret::new("s3cret")),
            }
        );
        assert_eq!(
            tls.label(KEYSTORE_PASSWORD),
            "w.properties:4: listeners.https.ssl.keystore.password"
        );
        // No listeners.https.* key: the worker's ssl.* keys, as Connect.
        let r = load(
            "listeners=https://:8443\nssl.keystore.type=PEM\nssl.keystore.certificate.chain=C\nssl.keystore.key=K\nssl.key.password=p\n",
        )
        .unwrap();
        let tls = r.tls.unwrap();
        assert_eq!(
            tls.keystore,
            KeyStore::PemText {
                chain: "C".into(),
                key: Secret::new("K")
            }
        );
        assert_eq!(tls.key_password, Some(Secret::new("p")));
        // Plain http reads no keystore.
        assert_eq!(
            load("listeners=http://:1\nssl.keystore.location=/x.jks\n")
                .unwrap()
                .tls,
            None
        );
    }

    #[test]
    fn bad_https_settings_name_the_key_and_the_fix() {
        let e = load("listeners=https://x:1\n").unwrap_err().to_string();
        assert!(e.contains("ssl.keystore.location: is not set"), "{e}");
        let e = load("listeners=https://x:1\nlisteners.https.ssl.keystore.location=/k.jks\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("w.properties:2: listeners.https.ssl.keystore.location: ferry reads PKCS12 and PEM keystores, not JKS")
                && e.contains("keytool -importkeystore"),
            "{e}"
        );
        let e = load("listeners=https://x:1\nssl.keystore.type=PEM\nssl.keystore.location=/k.pem\nssl.keystore.password=hunter2\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ssl.keystore.password: cannot be set for a PEM keystore"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = load("listeners=https://x:1\nlisteners.https.ssl.keystore.key=K\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("listeners.https.ssl.keystore.certificate.chain: is not set"),
            "{e}"
        );
        let e = load("listeners=https://x:1\nlisteners.https.ssl.keystore.location=/k.p12\nlisteners.https.ssl.keystore.type=PKCS12\nlisteners.https.ssl.client.auth=required\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("client certificates are not supported"), "{e}");
    }
}
