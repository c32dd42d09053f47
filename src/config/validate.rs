//! Bounds and shapes of values, checked before anything reaches librdkafka or the brokers.
//!
//! librdkafka copies some values onto the stack (`bootstrap.servers` once per broker while
//! parsing the list, SASL PLAIN credentials at login) and sends Kafka protocol strings with
//! a 16-bit length (`client.id`, `group.id`): a 10 MiB value crashed ferry with SIGSEGV and
//! a 40 KB client id made every request malformed, so the client retried forever. Each
//! check returns the reason for the caller to place at its key.

use ferry_connector_api::text::shown;

/// The longest value a properties file may hold (a CA bundle written inline is ~200 KB).
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// The longest value of a client setting passed to librdkafka, except PEM contents
/// ([`PEM_KEYS`], up to [`MAX_VALUE_BYTES`]): well within the smallest thread stack
/// librdkafka may copy it onto.
pub const MAX_CLIENT_VALUE_BYTES: usize = 64 * 1024;

/// Client settings holding PEM text, which librdkafka keeps on the heap.
const PEM_KEYS: &[&str] = &[
    "ssl.truststore.certificates",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.ca.pem",
    "ssl.certificate.pem",
    "ssl.key.pem",
];

/// Kafka protocol strings have a signed 16-bit length.
pub const MAX_PROTOCOL_STRING_BYTES: usize = i16::MAX as usize;

/// Client settings sent to the brokers as Kafka protocol strings.
const PROTOCOL_STRING_KEYS: &[&str] =
    &["client.id", "group.id", "group.instance.id", "client.rack"];

/// Kafka's longest topic name.
pub const MAX_TOPIC_BYTES: usize = 249;

/// The longest connector name: a topic name's bound, so that the name fits in group ids
/// (`connect-<name>`), client ids and file names (255 bytes) with room to spare.
pub const MAX_NAME_BYTES: usize = 249;

/// The most brokers `bootstrap.servers` may list.
pub const MAX_BOOTSTRAP_ENTRIES: usize = 256;

/// A client setting's value (key without its `consumer.` prefix).
pub fn client_value(key: &str, value: &str) -> Result<(), String> {
    if PROTOCOL_STRING_KEYS.contains(&key) && value.len() > MAX_PROTOCOL_STRING_BYTES {
        return Err(format!(
            "the value is {} bytes; Kafka sends {key} as a protocol string of at most {MAX_PROTOCOL_STRING_BYTES} bytes",
            value.len()
        ));
    }
    let max = if PEM_KEYS.contains(&key) {
        MAX_VALUE_BYTES
    } else {
        MAX_CLIENT_VALUE_BYTES
    };
    if value.len() > max {
        return Err(format!(
            "the value is {} bytes; client settings are limited to {max} bytes",
            value.len()
        ));
    }
    if key == "bootstrap.servers" {
        bootstrap_servers(value)?;
    }
    Ok(())
}

/// `bootstrap.servers`: a comma-separated list of `[protocol://]host[:port]`, as librdkafka
/// reads it (without a port, 9092; an IPv6 address with a port in brackets: `[::1]:9092`).
pub fn bootstrap_servers(value: &str) -> Result<(), String> {
    let entries: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return Err("lists no broker; write host:port[,host:port…]".into());
    }
    if entries.len() > MAX_BOOTSTRAP_ENTRIES {
        return Err(format!(
            "lists {} brokers; ferry accepts at most {MAX_BOOTSTRAP_ENTRIES} (a few are enough: the client learns the others from them)",
            entries.len()
        ));
    }
    for entry in entries {
        broker(entry).map_err(|why| format!("`{}` {why}", shown(entry)))?;
    }
    Ok(())
}

/// One `[protocol://]host[:port]` entry.
fn broker(entry: &str) -> Result<(), String> {
    let rest = match entry.split_once("://") {
        Some((protocol, rest)) => {
            if !["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
                .iter()
                .any(|p| p.eq_ignore_ascii_case(protocol))
            {
                return Err(
                    "has an unknown protocol; use PLAINTEXT://, SSL://, SASL_PLAINTEXT:// or SASL_SSL://, or none"
                        .into(),
                );
            }
            // librdkafka ignores a URL's path.
            rest.split('/').next().unwrap_or_default()
        }
        None => entry,
    };
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or("opens a bracket it does not close; write [IPv6]:port")?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("has text after its bracketed address; write [IPv6]:port")?,
            ),
        };
        ipv6(inside)?;
        (inside, port)
    } else {
        match rest.matches(':').count() {
            0 => (rest, None),
            1 => rest
                .split_once(':')
                .map(|(h, p)| (h, Some(p)))
                .unwrap_or((rest, None)),
            // librdkafka reads an address with several colons as IPv6 without a port.
            _ => {
                ipv6(rest)?;
                (rest, None)
            }
        }
    };
    if host.len() > 255 {
        return Err(format!(
            "has a {}-byte host name; host names are at most 255 bytes",
            host.len()
        ));
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%')))
    {
        return Err(format!(
            "has {} in its host name; write host:port with a DNS name or IP address",
            describe(c)
        ));
    }
    if let Some(port) = port {
        match port.parse::<u32>() {
            Ok(1..=65535) => {}
            _ => {
                return Err(format!(
                    "has port `{}`; a port is a number from 1 to 65535",
                    shown(port)
                ));
            }
        }
    }
    Ok(())
}

fn ipv6(address: &str) -> Result<(), String> {
    // Hex digits, colons, an embedded IPv4 address's dots, and a `%zone` suffix.
    match address
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '%')))
    {
        Some(c) => Err(format!("has {} in its IPv6 address", describe(c))),
        None if address.len() > 255 => Err("has an IPv6 address longer than 255 bytes".into()),
        None => Ok(()),
    }
}

/// A character as error lines name it.
fn describe(c: char) -> String {
    if c == ' ' {
        "a space".into()
    } else if c.is_control() || c.is_whitespace() {
        format!("the character {}", c.escape_unicode())
    } else {
        format!("`{c}`")
    }
}

pub use ferry_connector_api::text::path;

/// A topic name, as Kafka's `Topic.validate` allows it.
pub fn topic(name: &str) -> Result<(), String> {
    let why = if name.len() > MAX_TOPIC_BYTES {
        format!(
            "is {} bytes; Kafka allows at most {MAX_TOPIC_BYTES}",
            name.len()
        )
    } else if name == "." || name == ".." {
        "is not allowed by Kafka".into()
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        format!(
            "has {}; Kafka topic names use only a-z, A-Z, 0-9, '.', '_' and '-'",
            describe(c)
        )
    } else {
        return Ok(());
    };
    Err(format!("topic name `{}` {why}", shown(name)))
}

/// A connector name: Kafka Connect's rule (not empty, no control characters), a length that
/// fits group ids and file names, and no path separator (it names per-connector state and
/// appears in Kafka Connect's REST paths).
pub fn connector_name(name: &str) -> Result<(), String> {
    let why = if name.len() > MAX_NAME_BYTES {
        format!(
            "is {} bytes; ferry allows at most {MAX_NAME_BYTES}",
            name.len()
        )
    } else if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || matches!(c, '/' | '\\'))
    {
        format!(
            "has {}; names have no control characters, '/' or '\\'",
            describe(c)
        )
    } else {
        return Ok(());
    };
    Err(format!("`{}` {why}", shown(name)))
}

/// Why `topics.regex` does not compile, on one line: the pattern as written, the cause and
/// where (the regex crate's own message draws the rewritten pattern over several lines).
pub fn regex_error(pattern: &str) -> Option<String> {
    use regex_syntax::Error as E;
    let (kind, span) = match regex_syntax::Parser::new().parse(pattern) {
        Ok(_) => return None,
        Err(E::Parse(e)) => (e.kind().to_string(), *e.span()),
        Err(E::Translate(e)) => (e.kind().to_string(), *e.span()),
        Err(other) => {
            return Some(format!(
                "`{}` is not a valid regular expression: {other}",
                shown(pattern)
            ));
        }
    };
    let at = if pattern.contains('\n') {
        format!("line {}, column {}", span.start.line, span.start.column)
    } else {
        format!("column {}", span.start.column)
    };
    Some(format!(
        "`{}` is not a valid regular expression: {kind} (at {at})",
        shown(pattern)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_entries_as_librdkafka_reads_them() {
        for ok in [
            "b",
            "b:9092",
            "broker-1.example.com:9094,broker_2:9094",
            " a:1 , b:2 ",
            "SASL_SSL://b:9093",
            "plaintext://b:9092/ignored",
            "127.0.0.1:1",
            "[::1]:9092",
            "[fe80::1%eth0]:9092",
            "::1",
            "public2.alerts.ztf.uw.edu:9094",
        ] {
            assert_eq!(bootstrap_servers(ok), Ok(()), "{ok}");
        }
        let err = |v: &str| bootstrap_servers(v).unwrap_err();
        assert_eq!(err(" , "), "lists no broker; write host:port[,host:port…]");
        assert_eq!(
            err("b:0"),
            "`b:0` has port `0`; a port is a number from 1 to 65535"
        );
        assert!(err("b:65536").contains("port `65536`"));
        assert!(err("b:http").contains("port `http`"));
        assert_eq!(
            err("my broker:9092"),
            "`my broker:9092` has a space in its host name; write host:port with a DNS name or IP address"
        );
        assert!(err("HTTP://b:1").contains("unknown protocol"));
        assert!(err("[::1:9092").contains("does not close"));
        let long = format!("{}:9092", "h".repeat(256));
        assert!(err(&long).contains("256-byte host name"), "{}", err(&long));
        assert!(err(&long).len() < 300);
        let many = vec!["b:1"; MAX_BOOTSTRAP_ENTRIES + 1].join(",");
        assert!(err(&many).contains("lists 257 brokers"));
    }

    #[test]
    fn client_values_are_bounded_before_librdkafka() {
        assert_eq!(client_value("client.id", &"c".repeat(32767)), Ok(()));
        let err = client_value("client.id", &"c".repeat(40_000)).unwrap_err();
        assert_eq!(
            err,
            "the value is 40000 bytes; Kafka sends client.id as a protocol string of at most 32767 bytes"
        );
        assert!(client_value("group.id", &"g".repeat(32768)).is_err());
        assert!(client_value("sasl.username", &"u".repeat(70_000)).is_err());
        assert_eq!(client_value("ssl.ca.pem", &"p".repeat(300_000)), Ok(()));
        assert!(client_value("bootstrap.servers", "a b").is_err());
    }

    #[test]
    fn topic_names_as_kafka_allows_them() {
        for ok in ["t", "ztf_20210107_programid1", "a.b-c_D9", &"x".repeat(249)] {
            assert_eq!(topic(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            topic("my topic").unwrap_err(),
            "topic name `my topic` has a space; Kafka topic names use only a-z, A-Z, 0-9, '.', '_' and '-'"
        );
        assert!(topic("é").unwrap_err().contains("`é`"));
        assert!(topic("..").is_err());
        assert!(topic(&"x".repeat(250)).unwrap_err().contains("250 bytes"));
        assert!(topic("a\tb").unwrap_err().contains("\\u{9}"));
    }

    #[test]
    fn connector_names_fit_group_ids_and_file_names() {
        for ok in [
            "local-file-sink",
            "ps-sink-connector-ztf",
            "my connector",
            "café",
        ] {
            assert_eq!(connector_name(ok), Ok(()), "{ok}");
        }
        assert!(connector_name("a/b").unwrap_err().contains("`/`"));
        assert!(connector_name("a\u{7}b").unwrap_err().contains("\\u{7}"));
        let err = connector_name(&"n".repeat(10 << 20)).unwrap_err();
        assert!(err.contains("10485760 bytes") && err.len() < 300, "{err}");
    }

    #[test]
    fn regex_errors_are_one_line_with_the_users_pattern() {
        assert_eq!(regex_error("ztf_\\d{8}_programid1"), None);
        assert_eq!(
            regex_error("[abc").as_deref(),
            Some(
                "`[abc` is not a valid regular expression: unclosed character class (at column 1)"
            )
        );
        let err = regex_error("ztf_(\\d{8}").unwrap();
        assert!(err.starts_with("`ztf_(\\d{8}` is not a valid"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = regex_error("(?x)a\n(").unwrap();
        assert!(
            err.contains("(at line 2, column 1)") && !err.contains('\n'),
            "{err}"
        );
    }
}
