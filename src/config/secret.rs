//! Keeping credentials out of logs, errors and `ferry validate` output.

use std::fmt;

/// A value that must never be printed. `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for handing to the client that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

pub const REDACTED: &str = "[redacted]";

/// Whether a key's value is a credential, by Kafka's and librdkafka's naming conventions.
/// Errs on the side of hiding.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas.config",
        "credentials",
        "ssl.key.pem",
        "ssl.keystore.key",
        "private.key",
        "sasl.oauthbearer.config",
        "token.value",
        "api.key",
        "apikey",
        // Confluent's schema registry credentials: basic.auth.user.info=<key>:<secret>.
        "user.info",
        // The HTTP sink's bearer.token and Aiven's http.headers.authorization.
        "bearer.token",
        "authorization",
    ]
    .iter()
    .any(|s| k.contains(s))
        // The HTTP sink's fixed request headers, which may carry an Authorization or API key.
        || k == "headers"
        || k == "http.headers.additional"
}

/// The value to print for a key: the value itself, or `[redacted]`; a URL's user info
/// (`https://user:password@host`, as in `schema.registry.url`) is redacted too.
pub fn display_value<'a>(key: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    if is_secret_key(key) {
        return REDACTED.into();
    }
    match (value.find("://"), value.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !value[scheme + 3..at].contains('/') => {
            format!("{}{REDACTED}@{}", &value[..scheme + 3], &value[at + 1..]).into()
        }
        _ => value.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_recognised() {
        for k in [
            "sasl.jaas.config",
            "consumer.sasl.jaas.config",
            "sasl.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "gcp.credentials.json",
            "ssl.key.pem",
            "bearer.token",
            "http.headers.authorization",
            "headers",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "bootstrap.servers",
            "sasl.mechanism",
            "sasl.kerberos.keytab",
            "topics",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(display_value("sasl.password", "hunter2"), "[redacted]");
        assert_eq!(
            display_value(
                "value.converter.schema.registry.url",
                "https://key:hunter2@registry:8081"
            ),
            "https://[redacted]@registry:8081"
        );
        assert_eq!(
            display_value(
                "value.converter.schema.registry.url",
                "http://registry:8081"
            ),
            "http://registry:8081"
        );
        assert_eq!(
            display_value("value.converter.basic.auth.user.info", "key:hunter2"),
            "[redacted]"
        );
    }
}
